// core/future.hpp — Future<T>: a result that will be set later, on the loop.
//
// A Future is a cheap reference to a shared state that everyone holding it
// owns. The state has two halves: detail::FutureCore, which knows nothing of
// T (status, error, exception, done callbacks, the loop), and FutureState<T>,
// which adds the value. Tasks (core/task.hpp) derive their state from the same
// FutureState<T>, so a Task<T> is a Future<T>, as in asyncio.
// The count is not atomic: futures belong to one loop and are only touched on
// its thread (work from other threads comes back through call_soon_threadsafe).
// Done callbacks are never called synchronously: completing a future schedules
// each one with call_soon, in registration order (CONTRACT 77, 78).
// Layer: core. Read next: core/future_core.hpp (the untyped half), core/task.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "core/callback.hpp"
#include "core/errors.hpp"
#include "core/future_core.hpp"
#include "core/result.hpp"

namespace evloop {

template <class T>
class Future;

namespace detail {

template <class T>
using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
struct FutureState : FutureCore {
    explicit FutureState(EventLoop* loop) noexcept : FutureCore(loop) {}
    std::optional<Stored<T>> value;
};

}  // namespace detail

template <class T>
class Future {
public:
    using value_type = T;

    /// A pending future bound to `loop` (loop.create_future<T>() does the same).
    explicit Future(EventLoop& loop) : core_(new detail::FutureState<T>(&loop)) {}
    Future(const Future& other) noexcept : core_(other.core_) { core_->add_ref(); }
    Future(Future&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
    Future& operator=(Future other) noexcept {
        std::swap(core_, other.core_);
        return *this;
    }
    ~Future() {
        if (core_) core_->release();
    }

    /// The loop this future is bound to.
    EventLoop& get_loop() const noexcept { return *core_->loop; }
    /// True once a result or an error was set, or it was cancelled.
    bool done() const noexcept { return core_->done(); }
    bool cancelled() const noexcept { return core_->status == detail::FutureCore::Status::cancelled; }

    /// Sets the result and schedules the done callbacks. Refused
    /// (errc::invalid_state) if the future is already done, or is a Task's.
    template <class U = T, class = std::enable_if_t<!std::is_void_v<U>>>
    std::error_code set_result(U value) {
        if (std::error_code ec = core_->check_settable("set_result")) return ec;
        state().value.emplace(std::move(value));
        core_->finish(detail::FutureCore::Status::finished);
        return {};
    }
    template <class U = T, class = std::enable_if_t<std::is_void_v<U>>>
    std::error_code set_result() {
        if (std::error_code ec = core_->check_settable("set_result")) return ec;
        state().value.emplace();
        core_->finish(detail::FutureCore::Status::finished);
        return {};
    }
    /// Completes the future with an error code (asyncio's set_exception).
    std::error_code set_error(std::error_code error) { return core_->set_error(error); }
#if EVLOOP_EXCEPTIONS
    /// Completes the future with an exception (exception builds); result()
    /// and co_await rethrow it, error() gives its code when it is a
    /// std::system_error and errc::exception_raised otherwise.
    std::error_code set_exception(std::exception_ptr exception) { return core_->set_exception(std::move(exception)); }
    /// The stored exception, or null. Counts as retrieving the error.
    std::exception_ptr exception() const noexcept {
        core_->retrieved = true;
        return core_->exception;
    }
#endif
    /// Cancels a pending future; false if it was already done (CONTRACT 73).
    /// For a Task this asks the task to cancel (CONTRACT 93).
    bool cancel(std::string message = {}) { return core_->cancel(std::move(message)); }
    /// The message given to cancel().
    const std::string& cancel_message() const noexcept { return core_->cancel_message; }

    /// The value or the error: errc::invalid_state while pending (CONTRACT 71),
    /// errc::cancelled after cancel() (74), the error set otherwise. A stored
    /// exception is rethrown. The value is copied; take_result() moves it.
    Result<T> result() const { return outcome</*move=*/false>(); }
    /// result(), moving the value out (for move-only T): later calls see a
    /// moved-from value.
    Result<T> take_result() { return outcome</*move=*/true>(); }
    /// The error (empty on success or while pending). Counts as retrieving it.
    std::error_code error() const noexcept {
        core_->retrieved = true;
        return core_->error;
    }

    /// Calls `cb(future)` once the future is done, through call_soon; a future
    /// already done schedules it at once. Returns a token for remove_done_callback.
    template <class F>
    std::uint64_t add_done_callback(F&& cb) {
        return core_->add_callback([cb = std::forward<F>(cb)](detail::FutureCore& core) mutable {
            Future self = Future::borrow(&core);
            cb(self);
        });
    }
    /// Removes a registration that has not been scheduled yet; returns how many
    /// were removed (0 or 1).
    std::size_t remove_done_callback(std::uint64_t token) { return core_->remove_callback(token); }

    friend bool operator==(const Future& a, const Future& b) noexcept { return a.core_ == b.core_; }

    /// A new reference to an existing state (for awaiters and helpers).
    static Future borrow(detail::FutureCore* core) noexcept {
        core->add_ref();
        return Future(core);
    }
    detail::FutureCore* core() const noexcept { return core_; }

protected:
    explicit Future(detail::FutureCore* adopted) noexcept : core_(adopted) {}
    template <bool Move>
    Result<T> outcome() const {
        if (!done()) return errc::invalid_state;
        core_->rethrow_or_retrieve();
        if (core_->error) return core_->error;
        if constexpr (std::is_void_v<T>)
            return {};
        else if constexpr (Move)
            return std::move(*state().value);
        else
            return *state().value;
    }
    detail::FutureState<T>& state() const noexcept { return *static_cast<detail::FutureState<T>*>(core_); }

    detail::FutureCore* core_;
};

namespace detail {
/// Copies `from`'s outcome (value, error, exception, cancellation) into the
/// pending `to` (shield, wait_for, gather use it).
template <class T>
void copy_outcome(const Future<T>& from, Future<T>& to) {
    if (to.done()) return;
    FutureCore& src = *from.core();
    src.retrieved = true;
    if (src.status == FutureCore::Status::cancelled) {
        to.cancel(src.cancel_message);
        return;
    }
#if EVLOOP_EXCEPTIONS
    if (src.exception) {
        (void)to.set_exception(src.exception);
        return;
    }
#endif
    if (src.error) {
        (void)to.set_error(src.error);
        return;
    }
    if constexpr (std::is_void_v<T>)
        (void)to.set_result();
    else
        (void)to.set_result(*static_cast<FutureState<T>&>(src).value);
}
}  // namespace detail

}  // namespace evloop
