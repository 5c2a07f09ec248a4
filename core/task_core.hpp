// core/task_core.hpp — what a task is, below the templates: the machinery that
// runs a coroutine's steps as loop callbacks and delivers cancellation.
//
// asyncio's Task.__step, in C++: a task's step is a loop callback that resumes
// the coroutine where it last suspended (resume_point, which may be a frame
// nested inside the task's own: a coroutine awaited inline, an async
// generator). When the coroutine awaits a pending future the awaiter calls
// wait_on(), which registers the task as the future's waiter; completing the
// future schedules the next step with call_soon. cancel() cancels that future
// if there is one (the task then wakes with the cancellation error), and
// otherwise sets must_cancel, which the next step turns into the cancellation
// error returned by the awaiter it resumes (CONTRACT 93–99).
// Layer: core. Read next: core/task.hpp.
#pragma once

#include <coroutine>
#include <cstdint>
#include <string>
#include <system_error>

#include "core/future_core.hpp"

namespace evloop {

class EventLoop;

namespace detail {

class TaskCore;

/// What every evloop coroutine promise has: the task its frame runs under and
/// the frame to resume when it finishes (an inline awaiter or a generator's
/// consumer).
struct PromiseBase : Pooled {  // frames come from the pool (core/frame_pool.hpp)
    TaskCore* runner = nullptr;
    std::coroutine_handle<> continuation;
};

class TaskCore {
public:
    explicit TaskCore(FutureCore& state) noexcept;
    ~TaskCore();  // destroys a frame that never finished
    TaskCore(const TaskCore&) = delete;
    TaskCore& operator=(const TaskCore&) = delete;

    FutureCore& state() const noexcept { return state_; }

    // ---- identity ----
    /// "Task-<N>" unless set_name() gave another (CONTRACT 90, 91).
    std::string name() const;
    void set_name(std::string name) { name_ = std::move(name); }

    // ---- scheduling ----
    /// Binds the task to `loop`, tracks it there, and schedules its first step
    /// with call_soon (CONTRACT 89). Refused if the loop is closed (87) or the
    /// task was already scheduled.
    std::error_code schedule(EventLoop& loop);
    bool scheduled() const noexcept { return scheduled_; }
    /// One step: resume the coroutine where it suspended. A loop callback.
    void step();

    // ---- cancellation ----
    bool cancel(std::string message);
    int cancelling() const noexcept { return cancel_requests_; }
    int uncancel() noexcept;

    // ---- used by awaiters (core/awaiters.hpp) ----
    /// Suspends the task on `future` until it is done. Returns errc{} (zero),
    /// or the error (and does not suspend) for a future of another loop or
    /// the task itself (CONTRACT 100, 101).
    errc wait_on(FutureCore& future, std::coroutine_handle<> at);
    /// Suspends the task for exactly one loop iteration (sleep(0), CONTRACT 102).
    void yield(std::coroutine_handle<> at);
    /// True once, if the step that just resumed must deliver a cancellation.
    bool take_cancel() noexcept {
        bool c = deliver_cancel_;
        deliver_cancel_ = false;
        return c;
    }
    EventLoop& loop() const noexcept { return *state_.loop; }

    // ---- the frame ----
    void set_frame(std::coroutine_handle<> frame, PromiseBase& promise) noexcept {
        frame_ = resume_point_ = frame;
        promise_ = &promise;
    }
    PromiseBase& promise() const noexcept { return *promise_; }
    bool started() const noexcept { return started_; }
    /// Starts the frame inline, under another task (co_await of a Task that
    /// was never scheduled: Python's `await coro()`). Returns the frame to
    /// resume, or null if the task was cancelled before it started (it is
    /// then done, cancelled, and its body never runs).
    std::coroutine_handle<> start_inline(TaskCore& runner, std::coroutine_handle<> continuation) noexcept;
    std::coroutine_handle<> frame() const noexcept { return frame_; }
    /// Called by a finished frame (final suspend) right before it destroys
    /// itself: the outcome is in the state; decide the status and complete.
    void frame_finished() noexcept;
    /// The frame is about to destroy itself: forget it.
    void frame_detached() noexcept { frame_ = resume_point_ = nullptr; }
    /// Destroys a frame that will never resume (loop closed, task dropped).
    void destroy_frame() noexcept;
    /// True if cancel() was requested and nothing has consumed the request
    /// yet (a task cancelled before it started, or that cancelled itself).
    bool must_cancel() const noexcept { return must_cancel_; }

private:
    void schedule_step();
    void finish_unstarted_cancelled() noexcept;

    FutureCore& state_;
    std::coroutine_handle<> frame_;         // the task's own coroutine, until it finishes
    std::coroutine_handle<> resume_point_;  // the innermost suspended frame
    PromiseBase* promise_ = nullptr;
    CoreRef waiter_;                        // the future being awaited, if any
    std::uint64_t number_;                  // for the default name
    std::string name_;
    int cancel_requests_ = 0;
    bool scheduled_ = false;
    bool started_ = false;
    bool must_cancel_ = false;
    bool deliver_cancel_ = false;
};

/// The task running on `loop` right now, or null (current_task()).
TaskCore* running_task(EventLoop& loop) noexcept;

/// How the loop sees an async generator (core/async_generator.hpp): enough to
/// close it from shutdown_asyncgens() without knowing its value type.
struct AsyncGenHook : ListLink {
    AsyncGenHook() = default;
    AsyncGenHook(const AsyncGenHook&) = delete;
    AsyncGenHook& operator=(const AsyncGenHook&) = delete;
    ~AsyncGenHook() { unlink(); }
    void (*close_frame)(AsyncGenHook&) noexcept = nullptr;  // destroys the frame
    bool running = false;   // a consumer is inside next() right now
    EventLoop* loop = nullptr;
};
/// Links a generator on its first iteration (asyncio's firstiter hook).
void loop_track_asyncgen(EventLoop& loop, AsyncGenHook& gen);

struct LoopAccess;

}  // namespace detail
}  // namespace evloop
