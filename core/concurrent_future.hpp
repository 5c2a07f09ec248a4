// core/concurrent_future.hpp — run_coroutine_threadsafe and the thread-safe
// future it returns (Python's concurrent.futures.Future).
//
// The other way in from other threads: a thread that is not the loop's hands
// the loop a Task and gets a ConcurrentFuture it can block on. The task is
// moved, never copied, across (a Task's count is not atomic), and is scheduled
// on the loop's thread through call_soon_threadsafe (CONTRACT 60).
// Cancelling either side cancels the other (CONTRACT 61). If the loop drops
// the task unrun (closed first) or the task dies pending (its loop closed),
// the future completes with errc::loop_closed rather than leave a waiter
// blocked forever.
// Layer: core.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>

#include "core/event_loop.hpp"

namespace evloop {

template <class T>
class ConcurrentFuture {
    struct State {
        std::mutex mutex;
        std::condition_variable changed;
        std::optional<Result<T>> outcome;  // set once
#if EVLOOP_EXCEPTIONS
        std::exception_ptr exception;
#endif
        bool cancelled = false;
        EventLoop* loop = nullptr;
        // The task, not owned (a strong reference would keep a task that
        // dies with its loop alive, and its count is not atomic): set and
        // cleared on the loop's thread, by the task's done callback, which
        // clears it before the task can go.
        detail::FutureCore* task = nullptr;
    };

public:
    ConcurrentFuture() : state_(std::make_shared<State>()) {}

    /// True once a result, an error or a cancellation is in.
    bool done() const {
        std::lock_guard lock(state_->mutex);
        return state_->outcome.has_value();
    }
    bool cancelled() const {
        std::lock_guard lock(state_->mutex);
        return state_->cancelled;
    }
    /// Blocks until done, or at most `timeout` seconds (errc::timeout then).
    /// An exception the task raised is rethrown.
    Result<T> result(std::optional<double> timeout = std::nullopt) const {
        std::unique_lock lock(state_->mutex);
        auto ready = [&] { return state_->outcome.has_value(); };
        if (!timeout) {
            state_->changed.wait(lock, ready);
        } else if (!state_->changed.wait_for(lock, std::chrono::duration<double>(*timeout), ready)) {
            return errc::timeout;
        }
#if EVLOOP_EXCEPTIONS
        if (state_->exception) std::rethrow_exception(state_->exception);
#endif
        return *state_->outcome;
    }
    /// Cancels the future and asks the loop to cancel the task; false if
    /// already done. Any thread.
    bool cancel() {
        EventLoop* loop;
        {
            std::lock_guard lock(state_->mutex);
            if (state_->outcome) return false;
            state_->outcome.emplace(errc::cancelled);
            state_->cancelled = true;
            loop = state_->loop;
        }
        state_->changed.notify_all();
        if (loop) {
            // The loop may close meanwhile: a refused post is fine, the task dies with it.
            post_quietly(*loop, [s = state_]() {
                if (s->task) s->task->cancel({});
            });
        }
        return true;
    }

    // ---- the loop's side (run_coroutine_threadsafe) ----
    void complete(Result<T> outcome, bool was_cancelled = false) {
        {
            std::lock_guard lock(state_->mutex);
            if (state_->outcome) return;
            state_->outcome.emplace(std::move(outcome));
            state_->cancelled = was_cancelled;
        }
        state_->changed.notify_all();
    }
#if EVLOOP_EXCEPTIONS
    void complete_exception(std::exception_ptr e) {
        {
            std::lock_guard lock(state_->mutex);
            if (state_->outcome) return;
            state_->outcome.emplace(detail::exception_code(e));
            state_->exception = std::move(e);
        }
        state_->changed.notify_all();
    }
#endif
    void attach(EventLoop& loop, detail::FutureCore* task) {
        std::lock_guard lock(state_->mutex);
        state_->loop = &loop;
        state_->task = task;
    }
    void detach_task() {
        std::lock_guard lock(state_->mutex);
        state_->task = nullptr;
    }

private:
    template <class F>
    static void post_quietly(EventLoop& loop, F&& fn) {
#if EVLOOP_EXCEPTIONS
        try {
            (void)loop.call_soon_threadsafe(std::forward<F>(fn));
        } catch (const Error&) {
        }
#else
        if (!loop.is_closed()) (void)loop.call_soon_threadsafe(std::forward<F>(fn));
#endif
    }

    std::shared_ptr<State> state_;
};

namespace detail {
/// Completes a ConcurrentFuture with errc::loop_closed if destroyed before
/// it was used: the loop dropped the callback that carried it.
template <class T>
struct CompleteOnDrop {
    std::optional<ConcurrentFuture<T>> future;
    explicit CompleteOnDrop(ConcurrentFuture<T> f) : future(std::move(f)) {}
    CompleteOnDrop(CompleteOnDrop&& other) noexcept : future(std::exchange(other.future, std::nullopt)) {}
    CompleteOnDrop& operator=(CompleteOnDrop&&) = delete;
    ~CompleteOnDrop() {
        if (!future) return;
        future->detach_task();
        future->complete(errc::loop_closed);
    }
    ConcurrentFuture<T> take() { return *std::exchange(future, std::nullopt); }
};
}  // namespace detail

/// Schedules `task` on `loop` from any thread and returns a future to wait on
/// (CONTRACT 60–62). The task must not be used on this thread afterwards.
/// Refused (errc::loop_closed) if the loop is closed; the future then holds
/// the same error.
template <class T>
ConcurrentFuture<T> run_coroutine_threadsafe(Task<T> task, EventLoop& loop) {
    ConcurrentFuture<T> future;
    auto start = [task = std::move(task), guard = detail::CompleteOnDrop<T>(future), &loop]() mutable {
        ConcurrentFuture<T> cf = guard.take();
        cf.attach(loop, task.core());
        // Done on the loop: pass the outcome over. The callback's own guard
        // covers a task that dies pending (loop closed).
        task.add_done_callback([g = detail::CompleteOnDrop<T>(cf)](Future<T>& f) mutable {
            ConcurrentFuture<T> target = g.take();
            target.detach_task();
            if (f.cancelled()) {
                target.complete(errc::cancelled, true);  // CONTRACT 61
                return;
            }
#if EVLOOP_EXCEPTIONS
            if (std::exception_ptr e = f.exception()) {
                target.complete_exception(e);
                return;
            }
#endif
            target.complete(f.take_result());
        });
#if EVLOOP_EXCEPTIONS
        try {
            (void)loop.start_task(TaskRef(task), {});
        } catch (...) {
            cf.complete_exception(std::current_exception());  // CONTRACT 62: and the loop reports it once
            throw;
        }
#else
        if (std::error_code ec = loop.start_task(TaskRef(task), {})) cf.complete(ec);
#endif
        if (cf.cancelled()) task.cancel();  // cancelled before the loop got to it
    };
    Handle posted = loop.call_soon_threadsafe(std::move(start));
    if (!posted) future.complete(posted.error());
    return future;
}

}  // namespace evloop
