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

namespace detail {
/// A Task never scheduled becomes a task of the running loop (asyncio's
/// ensure_future); anything else is left alone. Without a running loop the
/// task ends at once with errc::no_running_loop (refused, naming `caller`).
bool ensure_scheduled(FutureCore& future, const char* caller = "gather, shield or wait_for");
}  // namespace detail

// ---- create_task, current_task ---------------------------------------------

/// create_task on the running loop (asyncio.create_task). Refused with
/// errc::no_running_loop outside one; the coroutine is then destroyed.
template <class T>
Task<T> create_task(Task<T> task, std::string name = {}) {
    EventLoop* loop = detail::running_loop();
    if (!loop) {
        // The refused value says why: the task is done with the error, its
        // coroutine destroyed unrun.
        detail::ensure_scheduled(*task.core(), "create_task");
        return task;
    }
    return loop->create_task(std::move(task), std::move(name));
}

/// The task running on this thread's running loop, or an empty TaskRef.
inline TaskRef current_task() {
    EventLoop* loop = detail::running_loop();
    return loop ? loop->current_task() : TaskRef();
}

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
    // Scheduled when wait_for's own body first runs (ensure_scheduled there),
    // so run_until_complete(wait_for(work(), t)) works outside a running loop.
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

/// What a gather's callbacks share. It owns nothing but the results: the
/// outer future and the children are held by raw pointers, each cleared by
/// the destructor of the done callback registered on it (SlotGuard), so a
/// pointer is valid exactly while that callback exists. Owning them instead
/// (as asyncio's _GatheringFuture does) would make reference cycles that
/// nothing breaks when a gather is abandoned: Python's collector would.
struct GatherCore {
    FutureCore* outer = nullptr;
    std::vector<FutureCore*> children;
    std::size_t left = 0;
    bool return_exceptions = false;

    virtual ~GatherCore() = default;
    /// Keeps child `i`'s outcome (typed).
    virtual void store(std::size_t i, FutureCore& child) = 0;
    /// Sets the outer future's value from what was stored (typed).
    virtual void complete() = 0;
    void child_done(std::size_t i, FutureCore& child);
    /// Registers the done callbacks: children's to child_done, the outer's
    /// to cancelling the children if the outer is cancelled.
    static void start(const std::shared_ptr<GatherCore>& core);
};

/// The outcome of a done future as a Result, without rethrowing (an
/// exception is represented by its code).
template <class T>
Result<T> outcome_of(FutureCore& f) {
    f.retrieved = true;
    if (f.error) return f.error;
    if constexpr (std::is_void_v<T>)
        return {};
    else
        return *static_cast<FutureState<T>&>(f).value;
}

template <class T>
struct RangeGather final : GatherCore {
    std::vector<std::optional<Result<T>>> results;
    void store(std::size_t i, FutureCore& child) override { results[i].emplace(outcome_of<T>(child)); }
    void complete() override {
        std::vector<Result<T>> out;
        out.reserve(results.size());
        for (auto& r : results) out.push_back(std::move(*r));
        (void)Future<std::vector<Result<T>>>::borrow(outer).set_result(std::move(out));
    }
};

template <class... Ts>
struct TupleGather final : GatherCore {
    std::tuple<std::optional<Result<Ts>>...> results;
    void store(std::size_t i, FutureCore& child) override { store_at(i, child, std::index_sequence_for<Ts...>{}); }
    void complete() override { complete_with(std::index_sequence_for<Ts...>{}); }

private:
    template <std::size_t... Is>
    void store_at(std::size_t i, FutureCore& child, std::index_sequence<Is...>) {
        ((i == Is ? (void)std::get<Is>(results).emplace(outcome_of<Ts>(child)) : void()), ...);
    }
    template <std::size_t... Is>
    void complete_with(std::index_sequence<Is...>) {
        (void)Future<std::tuple<Result<Ts>...>>::borrow(outer).set_result(
            std::tuple<Result<Ts>...>(std::move(*std::get<Is>(results))...));
    }
};

/// The loop a gather's outer future belongs to: the first child's, or the
/// running one; refused (errc::no_running_loop) if neither exists, and then
/// a closed stand-in loop, so the caller still gets a future.
EventLoop* gather_loop(const std::vector<FutureCore*>& children);

template <class Outer>
Outer start_gather(std::shared_ptr<GatherCore> core, std::vector<FutureCore*> children, GatherOptions options) {
    for (FutureCore* child : children) ensure_scheduled(*child);
    Outer outer(*gather_loop(children));
    if constexpr (std::is_default_constructible_v<typename Outer::value_type>) {
        if (children.empty()) {  // an empty vector or tuple
            (void)outer.set_result({});  // CONTRACT 109
            return outer;
        }
    }
    core->outer = outer.core();
    core->children = std::move(children);
    core->left = core->children.size();
    core->return_exceptions = options.return_exceptions;
    GatherCore::start(core);
    return outer;
}

}  // namespace detail

/// Waits for every future of the range; the result holds each one's Result
/// in order. gather of an empty range is done at once (CONTRACT 109).
/// Cancelling the gather cancels every child still pending.
template <class T>
Future<std::vector<Result<T>>> gather(const std::vector<Future<T>>& children, GatherOptions options = {}) {
    auto core = std::make_shared<detail::RangeGather<T>>();
    core->results.resize(children.size());
    std::vector<detail::FutureCore*> cores;
    for (const auto& child : children) cores.push_back(child.core());
    return detail::start_gather<Future<std::vector<Result<T>>>>(std::move(core), std::move(cores), options);
}

/// gather over a fixed list of futures and tasks of any types.
template <class... Ts>
Future<std::tuple<Result<Ts>...>> gather(GatherOptions options, const Future<Ts>&... children) {
    return detail::start_gather<Future<std::tuple<Result<Ts>...>>>(
        std::make_shared<detail::TupleGather<Ts...>>(), std::vector<detail::FutureCore*>{children.core()...}, options);
}
template <class... Ts>
Future<std::tuple<Result<Ts>...>> gather(const Future<Ts>&... children) {
    return gather(GatherOptions{}, children...);
}

}  // namespace evloop
