// test/thread_event.hpp — synchronisation for tests that use threads.
//
// ThreadEvent is a one-shot flag any thread can set and any thread can wait
// for, with a bound, so a broken test fails instead of hanging (std::latch has
// no timed wait). wait_for_condition polls a predicate, also bounded, for
// states the code under test exposes no event for (a pool thread going idle).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace evloop::test {

class ThreadEvent {
public:
    void set() {
        {
            std::lock_guard lock(mutex_);
            set_ = true;
        }
        cv_.notify_all();
    }
    bool is_set() const {
        std::lock_guard lock(mutex_);
        return set_;
    }
    /// True once set(); false if `seconds` pass first.
    bool wait(double seconds = 5.0) {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, std::chrono::duration<double>(seconds), [&] { return set_; });
    }

private:
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    bool set_ = false;
};

/// Polls `done` until it holds or `seconds` pass; returns done().
inline bool wait_for_condition(const std::function<bool()>& done, double seconds = 5.0) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::yield();
    }
    return true;
}

}  // namespace evloop::test
