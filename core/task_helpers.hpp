// core/task_helpers.hpp — what users of asyncio reach for around tasks:
// sleep, wait_for, gather, shield, and the free create_task / current_task.
//
// sleep and gather are not coroutines: sleep is an awaitable (a future and a
// timer, as asyncio's), gather and shield return futures wired together with
// done callbacks. wait_for is a coroutine, because it has to wait twice (for
// the first of result and timeout, then for the cancellation to land).
// Layer: core. Read next: core/async_generator.hpp.
#pragma once

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include "core/event_loop.hpp"
#include "core/policy.hpp"

namespace evloop {

// ---- sleep -----------------------------------------------------------------

/// The awaitable sleep() returns: co_await gives Result<void> (errc::cancelled
/// if the task was cancelled meanwhile).
class [[nodiscard]] Sleep {
public:
    explicit Sleep(double seconds) noexcept : delay_(seconds) {}
    Sleep(const Sleep&) = delete;
    Sleep& operator=(const Sleep&) = delete;
    ~Sleep() { timer_.cancel(); }  // a frame destroyed mid-sleep leaves no timer (CONTRACT 105)

    bool await_ready() const noexcept { return std::isnan(delay_); }
    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        runner_ = h.promise().runner;
        if (delay_ <= 0) {
            runner_->yield(h);  // exactly one iteration (CONTRACT 102, 103)
            return;
        }
        EventLoop& loop = runner_->loop();
        wake_.emplace(loop);
        timer_ = loop.call_later(delay_, [wake = *wake_]() mutable {
            if (!wake.done()) (void)wake.set_result();
        });
        (void)runner_->wait_on(*wake_->core(), h);  // same loop: cannot be refused
    }
    Result<void> await_resume() {
        if (std::isnan(delay_)) return detail::refuse(errc::invalid_time, "sleep");  // CONTRACT 104
        timer_.cancel();  // CONTRACT 105: also when the sleep was cancelled
        if (runner_ && runner_->take_cancel()) return errc::cancelled;
        if (wake_) return wake_->result();
        return {};
    }

private:
    double delay_;
    detail::TaskCore* runner_ = nullptr;
    std::optional<Future<void>> wake_;
    TimerHandle timer_;
};

/// co_await sleep(seconds): suspends the task; sleep(0) yields one iteration.
inline Sleep sleep(double seconds) noexcept { return Sleep(seconds); }
// An exact match for sleep(0), so `using namespace evloop;` code does not
// find POSIX ::sleep(unsigned) just as good a match and call it ambiguous.
inline Sleep sleep(int seconds) noexcept { return Sleep(seconds); }
template <class Rep, class Period>
Sleep sleep(std::chrono::duration<Rep, Period> d) noexcept {
    return Sleep(std::chrono::duration<double>(d).count());
}

// ---- create_task, current_task ---------------------------------------------

/// create_task on the running loop (asyncio.create_task). Refused with
/// errc::no_running_loop outside one; the coroutine is then destroyed.
template <class T>
Task<T> create_task(Task<T> task, std::string name = {}) {
    EventLoop* loop = detail::running_loop();
    if (!loop) {
        task.task_core().destroy_frame();
        (void)detail::refuse(errc::no_running_loop, "create_task");
        return task;
    }
    return loop->create_task(std::move(task), std::move(name));
}

/// The task running on this thread's running loop, or an empty TaskRef.
inline TaskRef current_task() {
    EventLoop* loop = detail::running_loop();
    return loop ? loop->current_task() : TaskRef();
}

namespace detail {
/// A Task never scheduled becomes a task of the running loop (asyncio's
/// ensure_future); anything else is left alone. False if there is none.
bool ensure_scheduled(FutureCore& future);
}  // namespace detail

// ---- shield ----------------------------------------------------------------

/// A future that mirrors `inner` but whose cancellation does not reach it.
/// `inner` itself when it is already done (CONTRACT 110).
template <class T>
Future<T> shield(Future<T> inner) {
    detail::ensure_scheduled(*inner.core());
    if (inner.done()) return inner;
    Future<T> outer(inner.get_loop());
    inner.add_done_callback([outer](Future<T>& f) mutable {
        if (!outer.done())
            detail::copy_outcome(f, outer);
        else
            (void)f.error();  // outer was cancelled: nobody else will look at inner's error
    });
    return outer;
}

// ---- wait_for --------------------------------------------------------------

/// co_await wait_for(x, seconds): x's result, or errc::timeout after
/// `seconds`, in which case x is cancelled and waited for first (a task that
/// ignores the cancellation and returns a value gives that value). Cancelling
/// the waiting task cancels x too.
template <class T>
Task<T> wait_for(Future<T> inner, double timeout) {
    if (std::isnan(timeout)) co_await fail(detail::refuse(errc::invalid_time, "wait_for"));
    detail::ensure_scheduled(*inner.core());
    bool timed_out = false;
    bool cancelled = false;
    if (!inner.done() && timeout > 0) {
        EventLoop& loop = inner.get_loop();
        Future<void> wake(loop);
        auto token = inner.add_done_callback([wake](Future<T>&) mutable {
            if (!wake.done()) (void)wake.set_result();
        });
        TimerHandle timer = loop.call_later(timeout, [wake]() mutable {
            if (!wake.done()) (void)wake.set_result();
        });
        Result<void> woke = co_await wake;
        timer.cancel();
        inner.remove_done_callback(token);
        cancelled = !woke;
        timed_out = woke && !inner.done();
    } else if (!inner.done()) {
        timed_out = true;
    }
    if (timed_out || cancelled) {
        inner.cancel();
        while (!inner.done()) (void)co_await inner;  // wait for the cancellation to land
        if (cancelled) co_await detail::finish_with(Result<T>(errc::cancelled));
        if (inner.cancelled()) co_await detail::finish_with(Result<T>(errc::timeout));
    }
    if constexpr (std::is_void_v<T>) {
        Result<void> r = inner.result();
        if (!r) co_await fail(r.error());
        co_return;
    } else {
        co_return inner.result();
    }
}
template <class T>
Task<T> wait_for(Task<T> inner, double timeout) {
    detail::ensure_scheduled(*inner.core());
    return wait_for(Future<T>(std::move(inner)), timeout);
}

// ---- gather ----------------------------------------------------------------

/// gather's option (asyncio's keyword argument).
struct GatherOptions {
    /// false: the first child to fail (error or cancellation) fails the
    /// gather at once; the others keep running. true: wait for every child
    /// and report each one's Result.
    bool return_exceptions = false;
};

namespace detail {
/// What every child's done callback shares.
struct GatherCore {
    CoreRef outer;
    std::size_t left = 0;
    bool return_exceptions = false;
    std::vector<CoreRef> children;
    UniqueFunction<void()> complete;  // sets the outer's value from the children
    void child_done(FutureCore& child);
    /// Wires the callbacks: each child's to child_done, the outer's to
    /// cancelling the children if the outer is cancelled.
    static void start(const std::shared_ptr<GatherCore>& core);
};
/// The loop a gather's outer future belongs to: the first child's, or the
/// running one; null (refused) if neither exists.
EventLoop* gather_loop(const std::vector<FutureCore*>& children);
}  // namespace detail

/// Waits for every future of the range; the result holds each one's Result
/// in order. gather of an empty range is done at once (CONTRACT 109).
/// Cancelling the gather cancels every child still pending.
template <class T>
Future<std::vector<Result<T>>> gather(std::vector<Future<T>> children, GatherOptions options = {}) {
    std::vector<detail::FutureCore*> cores;
    for (auto& child : children) {
        detail::ensure_scheduled(*child.core());
        cores.push_back(child.core());
    }
    EventLoop* loop = detail::gather_loop(cores);
    Future<std::vector<Result<T>>> outer(*loop);
    if (children.empty()) {
        (void)outer.set_result({});
        return outer;
    }
    auto core = std::make_shared<detail::GatherCore>();
    core->outer = detail::CoreRef(outer.core());
    core->left = children.size();
    core->return_exceptions = options.return_exceptions;
    for (auto* c : cores) core->children.emplace_back(c);
    core->complete = [outer, children]() mutable {
        std::vector<Result<T>> results;
        results.reserve(children.size());
        for (auto& child : children) results.push_back(child.result());
        (void)outer.set_result(std::move(results));
    };
    detail::GatherCore::start(core);
    return outer;
}

/// gather over a fixed list of futures and tasks of any types.
template <class... Ts>
Future<std::tuple<Result<Ts>...>> gather(GatherOptions options, Future<Ts>... children) {
    std::vector<detail::FutureCore*> cores{children.core()...};
    for (auto* c : cores) detail::ensure_scheduled(*c);
    EventLoop* loop = detail::gather_loop(cores);
    Future<std::tuple<Result<Ts>...>> outer(*loop);
    if constexpr (sizeof...(Ts) == 0) {
        (void)outer.set_result({});
        return outer;
    } else {
        auto core = std::make_shared<detail::GatherCore>();
        core->outer = detail::CoreRef(outer.core());
        core->left = sizeof...(Ts);
        core->return_exceptions = options.return_exceptions;
        for (auto* c : cores) core->children.emplace_back(c);
        core->complete = [outer, children...]() mutable {
            (void)outer.set_result(std::tuple<Result<Ts>...>(children.result()...));
        };
        detail::GatherCore::start(core);
        return outer;
    }
}
template <class... Ts>
Future<std::tuple<Result<Ts>...>> gather(Future<Ts>... children) {
    return gather(GatherOptions{}, std::move(children)...);
}

}  // namespace evloop
