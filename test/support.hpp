// test/support.hpp — helpers shared by the test files.
//
// CHECK_REFUSED(expr, errc) proves that a call is refused the way
// core/errors.hpp promises in *this* build: an evloop::Error with that code
// when exceptions are on, an ERROR log line with that message when they are off.
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/errors.hpp"
#include "core/event_loop.hpp"
#include "core/log.hpp"
#include "platform/clock.hpp"

// Which sanitizer this binary is built with (gcc and clang spell it differently).
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EVLOOP_TEST_TSAN 1
#endif
#if __has_feature(address_sanitizer)
#define EVLOOP_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define EVLOOP_TEST_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__)
#define EVLOOP_TEST_ASAN 1
#endif

namespace evloop::test {

/// A non-blocking, close-on-exec pipe with raw fds, for tests that watch one
/// (test/proc/pipe_support.hpp has an Fd-owning one for the pipe transports).
struct RawPipe {
    int r = -1, w = -1;
    RawPipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
        r = fds[0];
        w = fds[1];
    }
    RawPipe(const RawPipe&) = delete;
    RawPipe& operator=(const RawPipe&) = delete;
    ~RawPipe() {
        if (r >= 0) ::close(r);
        if (w >= 0) ::close(w);
    }
    /// Makes the read end readable.
    void put(const char* s = "x") const { REQUIRE(::write(w, s, std::strlen(s)) > 0); }
};

/// Captures log lines while alive (the sink is process-wide; tests are serial).
class LogCapture {
public:
    LogCapture() { previous_ = set_log_sink(&sink); lines().clear(); }
    ~LogCapture() { set_log_sink(previous_); }
    static std::vector<std::pair<LogLevel, std::string>>& lines() {
        static std::vector<std::pair<LogLevel, std::string>> captured;
        return captured;
    }
    bool contains(std::string_view text) const {
        std::lock_guard lock(mutex());
        for (auto& line : lines())
            if (line.second.find(text) != std::string::npos) return true;
        return false;
    }
    std::size_t count() const {
        std::lock_guard lock(mutex());
        return lines().size();
    }

private:
    static std::mutex& mutex() {
        static std::mutex m;
        return m;
    }
    static void sink(LogLevel level, std::string_view message) {
        std::lock_guard lock(mutex());
        lines().emplace_back(level, std::string(message));
    }
    LogSink previous_;
};

/// True if running `fn` was refused with `code` (see file comment).
inline bool refused_with(errc code, const std::function<void()>& fn) {
#if EVLOOP_EXCEPTIONS
    try {
        fn();
    } catch (const Error& e) {
        return e.code() == make_error_code(code);
    }
    return false;
#else
    LogCapture capture;
    fn();
    return capture.contains(make_error_code(code).message());
#endif
}

#define CHECK_REFUSED(code, ...) CHECK(::evloop::test::refused_with((code), [&] { __VA_ARGS__; }))

/// Counts the Live objects that exist, so a test can see that a coroutine
/// frame was destroyed (its locals' and parameters' destructors ran).
struct Counter {
    int alive = 0;
    int destroyed = 0;
    int finished_normally = 0;  // bodies that got past their suspension point
    bool body_ran = false;
};

struct Live {
    explicit Live(Counter* c) noexcept : counter(c) { ++counter->alive; }
    Live(const Live& other) noexcept : counter(other.counter) { ++counter->alive; }
    Live& operator=(const Live&) = delete;
    ~Live() {
        --counter->alive;
        ++counter->destroyed;
    }
    Counter* counter;
};

/// Runs the loop until `done()` or `seconds` pass (a guard against hangs:
/// a test that needs the guard has failed). Returns done().
inline bool run_until(EventLoop& loop, const std::function<bool()>& done, double seconds = 5.0) {
    std::int64_t deadline = monotonic_ns() + static_cast<std::int64_t>(seconds * 1e9);
    // A timer at the deadline, so run_once cannot block past it.
    TimerHandle guard = loop.call_later(seconds, [] {});
    // done() is called once per iteration and never again after it said
    // true: a predicate that consumes data (reads a socket) may rely on it.
    bool finished = done();
    while (!finished && monotonic_ns() < deadline) {
        if (loop.run_once()) return false;
        finished = done();
    }
    guard.cancel();
    return finished;
}

}  // namespace evloop::test
