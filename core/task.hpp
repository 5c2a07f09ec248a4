// core/task.hpp — Task<T>: a C++20 coroutine whose steps run as loop callbacks.
//
//     evloop::Task<int> answer(evloop::EventLoop& loop) {
//         auto r = co_await evloop::sleep(0.1);   // Result<void>
//         if (!r) co_return r.error();            // cancelled, most likely
//         co_return 42;
//     }
//     auto task = loop.create_task(answer(loop));  // scheduled, as asyncio
//     evloop::Result<int> v = loop.run_until_complete(task);
//
// Calling a coroutine function creates the frame suspended; nothing runs yet.
// Then, as in Python:
//  - loop.create_task(t) makes it an independent task; its first step is
//    scheduled with call_soon (CONTRACT 89);
//  - `co_await t` inside another task runs it inline, in the awaiting task,
//    with no loop iteration in between (Python's `await coro()`); cancelling
//    the outer task reaches whatever the inner one awaits;
//  - `co_await t` of a task already scheduled waits for it like a future.
// co_await yields a Result<T>: errors (the cancellation error included) are
// values, so the same code works with and without exceptions. In exception
// builds an exception escaping a coroutine is stored and rethrown by co_await
// and result(). A coroutine ends with an error by `co_return error_code`
// (Task<T>) or `co_await evloop::fail(ec)` (any coroutine, Task<void> too).
// Layer: core. Read next: core/task_core.hpp, core/task_helpers.hpp.
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>

#include "core/future.hpp"
#include "core/task_core.hpp"

namespace evloop {

template <class T>
class Task;

namespace detail {

template <class T>
struct TaskState final : FutureState<T> {
    TaskState() noexcept : FutureState<T>(nullptr), core(*this) { this->task = &core; }
    TaskCore core;
};

/// Ends the frame: the outcome is already in the state. Destroys the frame
/// (its locals are gone before anyone sees the task done) and continues with
/// an inline awaiter, if there is one.
template <class Promise>
std::coroutine_handle<> end_frame(std::coroutine_handle<Promise> h) noexcept {
    Promise& p = h.promise();
    std::coroutine_handle<> next = p.continuation ? p.continuation : std::noop_coroutine();
    TaskCore& core = p.state->core;
    core.frame_detached();
    h.destroy();
    core.frame_finished();
    return next;
}

struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
        return end_frame(h);
    }
    void await_resume() const noexcept {}
};

template <class T>
struct TaskPromise;

template <class T>
struct TaskPromiseBase : PromiseBase {
    TaskState<T>* state = nullptr;

    Task<T> get_return_object();
    std::suspend_always initial_suspend() const noexcept { return {}; }
    FinalAwaiter final_suspend() const noexcept { return {}; }
    void unhandled_exception() noexcept {
#if EVLOOP_EXCEPTIONS
        state->exception = std::current_exception();
#else
        std::terminate();  // unreachable: nothing can throw without exceptions
#endif
    }
    /// co_await evloop::fail(ec): end now with `ec`.
    std::coroutine_handle<> fail(std::error_code ec, std::coroutine_handle<> self) noexcept {
        state->error = ec ? ec : make_error_code(errc::invalid_state);
        return end_frame(std::coroutine_handle<TaskPromise<T>>::from_address(self.address()));
    }
    /// co_await detail::finish_with(result): end now with a Result<T>, the
    /// same way for T = void and not (generic helpers use it).
    std::coroutine_handle<> finish_with(Result<T>&& result, std::coroutine_handle<> self) noexcept {
        if (!result) {
            state->error = result.error();
        } else if constexpr (std::is_void_v<T>) {
            state->value.emplace();
        } else {
            state->value.emplace(std::move(result).value());
        }
        return end_frame(std::coroutine_handle<TaskPromise<T>>::from_address(self.address()));
    }
};

/// The awaiter behind finish_with (see TaskPromiseBase::finish_with).
template <class T>
struct FinishWith {
    Result<T> result;
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
        return h.promise().finish_with(std::move(result), h);
    }
    void await_resume() const noexcept {}
};
template <class T>
FinishWith<T> finish_with(Result<T> result) {
    return FinishWith<T>{std::move(result)};
}

template <class T>
struct TaskPromise : TaskPromiseBase<T> {
    void return_value(Result<T> result) {
        if (result)
            this->state->value.emplace(std::move(result).value());
        else
            this->state->error = result.error();
    }
};

template <>
struct TaskPromise<void> : TaskPromiseBase<void> {
    void return_void() noexcept { state->value.emplace(); }
};

template <class T>
Task<T> TaskPromiseBase<T>::get_return_object() {
    state = new TaskState<T>();
    auto& self = static_cast<TaskPromise<T>&>(*this);
    state->core.set_frame(std::coroutine_handle<TaskPromise<T>>::from_promise(self), *this);
    return Task<T>(state);
}

/// co_await of a plain future inside a task.
template <class T>
struct FutureAwaiter {
    Future<T> future;
    TaskCore* runner = nullptr;
    errc refused{};  // errc{} (zero): not refused. An enum: no error category to look up

    bool await_ready() const noexcept { return future.done(); }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        static_assert(std::is_base_of_v<PromiseBase, Promise>,
                      "evloop futures can be co_awaited in evloop::Task and AsyncGenerator coroutines");
        runner = h.promise().runner;
        refused = runner->wait_on(*future.core(), h);
        return refused == errc{};
    }
    Result<T> await_resume() {
        if (refused != errc{}) return refused;
        if (runner && runner->take_cancel()) return errc::cancelled;
        return future.result();
    }
};

/// co_await of a Task: inline if it never started, as a future otherwise.
template <class T>
struct TaskAwaiter {
    Task<T> task;
    TaskCore* runner = nullptr;
    errc refused{};  // errc{} (zero): not refused. An enum: no error category to look up
    bool inline_child = false;

    bool await_ready() const noexcept { return task.done(); }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) {
        static_assert(std::is_base_of_v<PromiseBase, Promise>,
                      "evloop tasks can be co_awaited in evloop::Task and AsyncGenerator coroutines");
        runner = h.promise().runner;
        TaskCore& child = *task.core()->task;
        if (!child.started() && !child.scheduled()) {
            inline_child = true;
            std::coroutine_handle<> start = child.start_inline(*runner, h);
            return start ? start : h;
        }
        refused = runner->wait_on(*task.core(), h);
        if (refused != errc{}) return h;
        return std::noop_coroutine();
    }
    Result<T> await_resume() {
        if (refused != errc{}) return refused;
        if (inline_child) return task.take_result();
        if (runner && runner->take_cancel()) return errc::cancelled;
        return task.result();
    }
};

}  // namespace detail

/// A coroutine returning T (or void), run by an EventLoop. Also a Future<T>.
template <class T>
class [[nodiscard]] Task : public Future<T> {
public:
    using promise_type = detail::TaskPromise<T>;

    /// "Task-<N>" unless named (CONTRACT 90, 91).
    std::string get_name() const { return task_core().name(); }
    void set_name(std::string name) { task_core().set_name(std::move(name)); }
    /// Pending cancel() requests not undone by uncancel() (CONTRACT 93, 97, 98).
    int cancelling() const noexcept { return task_core().cancelling(); }
    int uncancel() noexcept { return task_core().uncancel(); }

    detail::TaskCore& task_core() const noexcept { return *this->core_->task; }

private:
    friend struct detail::TaskPromiseBase<T>;
    explicit Task(detail::TaskState<T>* state) noexcept : Future<T>(state) {}
};

template <class T>
detail::FutureAwaiter<T> operator co_await(const Future<T>& future) {
    return {future};
}
template <class T>
detail::TaskAwaiter<T> operator co_await(const Task<T>& task) {
    return {task};
}

/// Ends the running coroutine with `ec` (its frame is destroyed at once, its
/// locals' destructors run): `co_await evloop::fail(ec);`. For Task<void> and
/// AsyncGenerator, which have no co_return for an error.
struct Fail {
    std::error_code error;
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
        return h.promise().fail(error, h);
    }
    void await_resume() const noexcept {}
};
inline Fail fail(std::error_code ec) noexcept { return Fail{ec}; }
inline Fail fail(errc ec) noexcept { return Fail{make_error_code(ec)}; }

/// A task of any result type: what current_task() and task factories see.
class TaskRef {
public:
    TaskRef() noexcept = default;
    template <class T>
    TaskRef(const Task<T>& task) noexcept : ref_(task.core()) {}  // NOLINT: any task is a TaskRef
    explicit TaskRef(detail::FutureCore* state) noexcept : ref_(state) {}

    explicit operator bool() const noexcept { return static_cast<bool>(ref_); }
    std::string get_name() const { return core().name(); }
    void set_name(std::string name) { core().set_name(std::move(name)); }
    bool done() const noexcept { return ref_->done(); }
    bool cancelled() const noexcept { return ref_->status == detail::FutureCore::Status::cancelled; }
    bool cancel(std::string message = {}) { return ref_->cancel(std::move(message)); }
    int cancelling() const noexcept { return core().cancelling(); }
    int uncancel() noexcept { return core().uncancel(); }
    EventLoop& get_loop() const noexcept { return *ref_->loop; }
    /// What the default task factory does: bind the task to `loop` and
    /// schedule its first step. A custom factory calls this (or not).
    std::error_code schedule(EventLoop& loop) { return core().schedule(loop); }
    friend bool operator==(const TaskRef& a, const TaskRef& b) noexcept { return a.ref_.get() == b.ref_.get(); }
    detail::TaskCore& core() const noexcept { return *ref_->task; }

private:
    detail::CoreRef ref_;
};

/// set_task_factory's type: called by create_task with the new task, which it
/// must schedule (task.schedule(loop)) for it to run.
using TaskFactory = std::function<void(EventLoop&, TaskRef)>;

}  // namespace evloop
