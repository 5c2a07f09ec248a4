// core/future.hpp — Future<T>: a result that will be set later, on the loop.
//
// The foundation needs a future for run_until_complete; the futures issue
// grows this into asyncio's whole Future (exceptions, co_await, tasks).
// A Future is a cheap reference to shared state owned by everyone holding it.
// The count is not atomic: futures belong to one loop and are only touched on
// its thread (work from other threads comes back through call_soon_threadsafe).
// Done callbacks are never called synchronously: completing a future schedules
// each one with call_soon, in registration order (CONTRACT 77, 78).
// Layer: core. Read next: core/event_loop.hpp (run_until_complete).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/callback.hpp"
#include "core/errors.hpp"
#include "core/result.hpp"

namespace evloop {

class EventLoop;

namespace detail {
// Defined in event_loop.cpp: schedules `cb` with loop.call_soon. Kept out of
// line so this header need not include the whole loop.
void future_call_soon(EventLoop& loop, Callback&& cb);
}  // namespace detail

template <class T>
class Future {
    struct Unit {};
    using Stored = std::conditional_t<std::is_void_v<T>, Unit, T>;
    enum class Status : std::uint8_t { pending, finished, cancelled };

    struct State {
        explicit State(EventLoop* l) : loop(l) {}
        EventLoop* loop;
        std::uint32_t refs = 1;
        Status status = Status::pending;
        std::optional<Stored> value;
        std::error_code error;
        std::string cancel_message;
        std::uint64_t next_token = 1;
        std::vector<std::pair<std::uint64_t, UniqueFunction<void(Future&)>>> callbacks;
    };

public:
    using DoneCallback = UniqueFunction<void(Future&)>;

    /// A pending future bound to `loop` (loop.create_future() does the same).
    explicit Future(EventLoop& loop) : state_(new State(&loop)) {}
    Future(const Future& other) noexcept : state_(other.state_) { ++state_->refs; }
    Future(Future&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
    Future& operator=(Future other) noexcept {
        std::swap(state_, other.state_);
        return *this;
    }
    ~Future() {
        if (state_ && --state_->refs == 0) delete state_;
    }

    /// The loop this future is bound to.
    EventLoop& get_loop() const noexcept { return *state_->loop; }
    /// True once a result or an error was set, or it was cancelled.
    bool done() const noexcept { return state_->status != Status::pending; }
    bool cancelled() const noexcept { return state_->status == Status::cancelled; }

    /// Sets the result and schedules the done callbacks. Refused
    /// (errc::invalid_state) if the future is already done.
    template <class U = T, class = std::enable_if_t<!std::is_void_v<U>>>
    std::error_code set_result(U value) {
        if (done()) return detail::refuse(errc::invalid_state, "Future::set_result: the future is already done");
        state_->value.emplace(std::move(value));
        finish(Status::finished);
        return {};
    }
    template <class U = T, class = std::enable_if_t<std::is_void_v<U>>>
    std::error_code set_result() {
        if (done()) return detail::refuse(errc::invalid_state, "Future::set_result: the future is already done");
        state_->value.emplace();
        finish(Status::finished);
        return {};
    }
    /// Completes the future with an error (asyncio's set_exception).
    std::error_code set_error(std::error_code error) {
        if (done()) return detail::refuse(errc::invalid_state, "Future::set_error: the future is already done");
        state_->error = error;
        finish(Status::finished);
        return {};
    }
    /// Cancels a pending future; false if it was already done (CONTRACT 73).
    bool cancel(std::string message = {}) {
        if (done()) return false;
        state_->cancel_message = std::move(message);
        state_->error = make_error_code(errc::cancelled);
        finish(Status::cancelled);
        return true;
    }
    /// The message given to cancel().
    const std::string& cancel_message() const noexcept { return state_->cancel_message; }

    /// The value, or the error: errc::invalid_state while pending, errc::cancelled
    /// after cancel(), the set error otherwise.
    Result<T> result() const {
        if (!done()) return errc::invalid_state;
        if (state_->error) return state_->error;
        if constexpr (std::is_void_v<T>)
            return {};
        else
            return *state_->value;
    }
    /// The error (empty on success or while pending).
    std::error_code error() const noexcept { return state_->error; }

    /// Calls `cb(future)` once the future is done, through call_soon; a future
    /// already done schedules it at once. Returns a token for remove_done_callback.
    std::uint64_t add_done_callback(DoneCallback cb) {
        std::uint64_t token = state_->next_token++;
        if (done())
            schedule(std::move(cb));
        else
            state_->callbacks.emplace_back(token, std::move(cb));
        return token;
    }
    /// Removes a registration that has not been scheduled yet; returns how many
    /// were removed (0 or 1).
    std::size_t remove_done_callback(std::uint64_t token) {
        auto& cbs = state_->callbacks;
        for (auto it = cbs.begin(); it != cbs.end(); ++it)
            if (it->first == token) {
                cbs.erase(it);
                return 1;
            }
        return 0;
    }

    friend bool operator==(const Future& a, const Future& b) noexcept { return a.state_ == b.state_; }

private:
    void finish(Status status) {
        state_->status = status;
        // Move the list out first: a callback may add or remove others (CONTRACT 80).
        auto callbacks = std::move(state_->callbacks);
        state_->callbacks.clear();
        for (auto& entry : callbacks) schedule(std::move(entry.second));
    }
    void schedule(DoneCallback cb) {
        detail::future_call_soon(*state_->loop, [self = *this, cb = std::move(cb)]() mutable { cb(self); });
    }

    State* state_;
};

}  // namespace evloop
