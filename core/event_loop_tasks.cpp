// core/event_loop_tasks.cpp — what the loop does for futures, tasks and async
// generators: create_task and the task factory, current_task, the lists of
// live tasks and unretrieved errors, and what close() and the destructor do
// with them.
//
// Why close() destroys the frames of pending tasks: a task waiting on a
// future that only its own frame holds is a reference cycle (frame → future
// → waiter entry → task → frame). Python's garbage collector finds such
// cycles and reports "Task was destroyed but it is pending!"; evloop has no
// collector, so close() reports each pending task (CONTRACT 107) and destroys
// its frame, which breaks the cycle and runs its locals' destructors.
// Layer: core.
#include "core/event_loop.hpp"

namespace evloop {

namespace detail {

struct LoopAccess {
    static TaskCore*& current(EventLoop& loop) noexcept { return loop.current_task_; }
    static ListLink& tasks(EventLoop& loop) noexcept { return loop.tasks_; }
    static ListLink& unretrieved(EventLoop& loop) noexcept { return loop.unretrieved_; }
    static ListLink& asyncgens(EventLoop& loop) noexcept { return loop.asyncgens_; }
    static void post(EventLoop& loop, Callback&& cb) { loop.post(std::move(cb)); }
};

void loop_post(EventLoop& loop, Callback&& cb) { LoopAccess::post(loop, std::move(cb)); }

void loop_track_error(EventLoop& loop, FutureCore& future) { future.insert_after(&LoopAccess::unretrieved(loop)); }

void loop_track_task(EventLoop& loop, FutureCore& task) { task.insert_after(&LoopAccess::tasks(loop)); }

void loop_track_asyncgen(EventLoop& loop, AsyncGenHook& gen) {
    gen.loop = &loop;
    gen.insert_after(&LoopAccess::asyncgens(loop));
}

void loop_report(EventLoop& loop, const char* message, const FutureCore& future) {
    ExceptionContext context;
    context.message = message;
    context.error = future.error;
#if EVLOOP_EXCEPTIONS
    context.exception = future.exception;
#endif
    (future.task ? context.task : context.future) = future.describe();
    loop.call_exception_handler(context);
}

TaskCore*& loop_current_task(EventLoop& loop) noexcept { return LoopAccess::current(loop); }

TaskCore* running_task(EventLoop& loop) noexcept { return LoopAccess::current(loop); }

}  // namespace detail

using detail::FutureCore;
using detail::ListLink;

std::error_code EventLoop::start_task(TaskRef task, std::string name) {
    if (!name.empty()) task.set_name(std::move(name));
    // A closed loop refuses before any factory sees the task (asyncio checks first too).
    if (is_closed() || !task_factory_) return task.schedule(*this);
    task_factory_(*this, task);
    return {};
}

TaskRef EventLoop::current_task() const {
    return current_task_ ? TaskRef(&current_task_->state()) : TaskRef();
}

std::vector<TaskRef> EventLoop::all_tasks() const {
    std::vector<TaskRef> out;
    for (ListLink* link = tasks_.next; link != &tasks_; link = link->next) {
        auto* state = static_cast<FutureCore*>(link);
        if (!state->done()) out.emplace_back(state);
    }
    return out;
}

void EventLoop::close_tasks() noexcept {
    // Hold a reference to each pending task first: destroying one frame can
    // drop the last reference to another task, which then unlinks itself.
    std::vector<detail::CoreRef> pending;
    for (ListLink* link = tasks_.next; link != &tasks_; link = link->next) {
        auto* state = static_cast<FutureCore*>(link);
        if (!state->done() && state->task->frame()) pending.emplace_back(state);
    }
    for (detail::CoreRef& ref : pending) {
        if (!ref->task->frame()) continue;  // closed meanwhile, by another's frame
        detail::loop_report(*this, "Task was destroyed but it is pending!", *ref);
        ref->task->destroy_frame();
    }
}

void EventLoop::detach_tasks() noexcept {
    // The states may outlive the loop; from now on they must not report to it.
    for (ListLink* head : {&tasks_, &unretrieved_, &asyncgens_}) {
        while (head->linked()) {
            ListLink* link = head->next;
            if (head == &asyncgens_) static_cast<detail::AsyncGenHook*>(link)->loop = nullptr;
            link->unlink();
        }
    }
}

Future<void> EventLoop::shutdown_asyncgens() {
    Future<void> done(*this);
    // Take one generator at a time off the list: closing one may destroy
    // others (a generator it owned), and those unlink themselves.
    ListLink running;
    while (asyncgens_.linked()) {
        auto* gen = static_cast<detail::AsyncGenHook*>(asyncgens_.next);
        gen->unlink();
        if (gen->running) {
            gen->insert_after(&running);
            ExceptionContext context;
            context.message = "an error occurred during closing of asynchronous generator";
            context.error = make_error_code(errc::generator_running);
            context.asyncgen = "<AsyncGenerator running>";
            call_exception_handler(context);
            continue;
        }
        gen->close_frame(*gen);  // frees the hook with the frame
    }
    while (running.linked()) {
        ListLink* link = running.next;
        link->unlink();
        link->insert_after(&asyncgens_);
    }
    (void)done.set_result();
    return done;
}

}  // namespace evloop
