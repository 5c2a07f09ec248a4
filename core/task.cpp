// core/task.cpp — TaskCore: a task's steps, its waiting, its cancellation.
// The order of events follows asyncio's Task.__step and Task.cancel; the
// comments cite the CONTRACT.md items each branch exists for.
// Layer: core.
#include "core/task_core.hpp"

#include <atomic>

#include "core/event_loop.hpp"

namespace evloop::detail {

namespace {
// asyncio's _task_name_counter: one per process, shared by every loop. Each
// thread takes numbers in blocks, so naming a task costs no atomic operation
// (a locked add on every create_task showed in the task benchmark); tasks
// made one after another on one thread still get consecutive numbers.
std::atomic<std::uint64_t> task_counter{0};
constexpr std::uint64_t kNumberBlock = 1024;

std::uint64_t next_task_number() noexcept {
    thread_local std::uint64_t next = 0;
    thread_local std::uint64_t end = 0;
    if (next == end) {
        next = task_counter.fetch_add(kNumberBlock, std::memory_order_relaxed) + 1;
        end = next + kNumberBlock;
    }
    return next++;
}
}  // namespace

TaskCore::TaskCore(FutureCore& state) noexcept : state_(state), number_(0) {}

TaskCore::~TaskCore() { destroy_frame(); }

std::string TaskCore::name() const {
    if (!name_.empty()) return name_;
    if (number_ == 0) return "Task (not scheduled)";
    return "Task-" + std::to_string(number_);
}

std::error_code TaskCore::schedule(EventLoop& loop) {
    if (scheduled_ || started_) return refuse(errc::invalid_state, "create_task: the task was already started");
    state_.loop = &loop;
    if (loop.is_closed()) {
        // CONTRACT 87, 88: refused, and the coroutine is closed so it never runs.
        destroy_frame();
        state_.error = make_error_code(errc::loop_closed);
        state_.retrieved = true;
        state_.finish(FutureCore::Status::finished);
        return refuse(errc::loop_closed, "create_task");
    }
    scheduled_ = true;
    number_ = next_task_number();
    loop_track_task(loop, state_);
    schedule_step();  // CONTRACT 89: never starts synchronously
    return {};
}

std::coroutine_handle<> TaskCore::start_inline(TaskCore& runner, std::coroutine_handle<> continuation) noexcept {
    state_.loop = &runner.loop();
    started_ = true;
    if (must_cancel_) {
        finish_unstarted_cancelled();
        return nullptr;
    }
    promise_->runner = &runner;
    promise_->continuation = continuation;
    return frame_;
}

void TaskCore::schedule_step() {
    loop_post(loop(), [self = CoreRef(&state_)]() { self->task->step(); });
}

void TaskCore::step() {
    if (state_.done() || !resume_point_) return;  // finished, or its frame was closed
    if (!started_) {
        started_ = true;
        if (must_cancel_) {  // CONTRACT 95: cancelled before its first step
            finish_unstarted_cancelled();
            return;
        }
        promise_->runner = this;
    } else if (must_cancel_) {
        // The coroutine sees the cancellation at the co_await it resumes from.
        must_cancel_ = false;
        deliver_cancel_ = true;
    }
    waiter_.reset();
    TaskCore*& current = loop_current_task(loop());
    TaskCore* outer = current;
    current = this;
    resume_point_.resume();
    current = outer;
}

void TaskCore::finish_unstarted_cancelled() noexcept {
    must_cancel_ = false;
    destroy_frame();
    state_.error = make_error_code(errc::cancelled);
    state_.finish(FutureCore::Status::cancelled);
}

bool TaskCore::cancel(std::string message) {
    if (state_.done()) return false;  // CONTRACT 93
    ++cancel_requests_;
    state_.cancel_message = message;
    // Cancelling the awaited future wakes the task with the cancellation
    // error; a future that is already done cannot be cancelled, so the
    // request waits for the next step (must_cancel).
    if (waiter_ && waiter_->cancel(std::move(message))) return true;
    must_cancel_ = true;
    return true;  // CONTRACT 94: every request while pending returns true
}

int TaskCore::uncancel() noexcept {
    if (cancel_requests_ > 0) --cancel_requests_;
    if (cancel_requests_ == 0) must_cancel_ = false;  // CONTRACT 98
    return cancel_requests_;
}

errc TaskCore::wait_on(FutureCore& future, std::coroutine_handle<> at) {
    if (future.loop != state_.loop) return errc::future_other_loop;  // CONTRACT 100
    if (&future == &state_) return errc::await_itself;              // CONTRACT 101
    resume_point_ = at;
    waiter_ = CoreRef(&future);
    future.add_waiter(state_);
    return errc{};
}

void TaskCore::yield(std::coroutine_handle<> at) {
    resume_point_ = at;
    schedule_step();
}

void TaskCore::frame_finished() noexcept {
    FutureCore::Status status = FutureCore::Status::finished;
#if EVLOOP_EXCEPTIONS
    if (state_.exception) state_.error = exception_code(state_.exception);
#endif
    if (must_cancel_) {
        // CONTRACT 99: cancelled itself, then returned without awaiting.
        must_cancel_ = false;
        state_.error = make_error_code(errc::cancelled);
        status = FutureCore::Status::cancelled;
    } else if (state_.error == errc::cancelled) {
        // The cancellation error escaped the coroutine: the task is cancelled.
        status = FutureCore::Status::cancelled;
    }
    state_.finish(status);
}

void TaskCore::destroy_frame() noexcept {
    // The awaited future too: it holds this task in its waiter entry, so
    // keeping it would keep a cycle alive with nothing left to break it.
    waiter_.reset();
    if (!frame_) return;
    std::coroutine_handle<> frame = frame_;
    frame_ = resume_point_ = nullptr;
    frame.destroy();
}

}  // namespace evloop::detail
