// core/task_helpers.cpp — the untyped parts of gather and ensure_scheduled.
// Layer: core.
#include "core/task_helpers.hpp"

namespace evloop::detail {

namespace {
// Where a future goes when there is no loop at all to bind it to (gather()
// of nothing, outside any loop): a loop closed at once. Completing a future
// on it schedules nothing, so the caller still gets a future holding the
// error instead of a crash.
EventLoop& orphan_loop() {
    static EventLoop* loop = [] {
        auto* l = new EventLoop();  // never destroyed: futures may outlive any static
        (void)l->close();
        return l;
    }();
    return *loop;
}
}  // namespace

bool ensure_scheduled(FutureCore& future) {
    TaskCore* task = future.task;
    if (!task || task->scheduled() || task->started() || future.done()) return true;
    if (EventLoop* loop = running_loop()) {
        (void)loop->start_task(TaskRef(&future), {});
        return true;
    }
    // No loop to run it: it never will. Close it and say why.
    task->destroy_frame();
    future.loop = &orphan_loop();
    future.error = make_error_code(errc::no_running_loop);
    future.finish(FutureCore::Status::finished);
    (void)refuse(errc::no_running_loop, "ensure_future (a coroutine given to gather, shield or wait_for)");
    return false;
}

EventLoop* gather_loop(const std::vector<FutureCore*>& children) {
    for (FutureCore* child : children)
        if (child->loop) return child->loop;
    if (EventLoop* loop = running_loop()) return loop;
    (void)refuse(errc::no_running_loop, "gather");
    return &orphan_loop();
}

void GatherCore::start(const std::shared_ptr<GatherCore>& core) {
    for (CoreRef& child : core->children)
        child->add_callback([core](FutureCore& c) { core->child_done(c); });
    core->outer->add_callback([core](FutureCore& outer) {
        if (outer.status != FutureCore::Status::cancelled) return;
        for (CoreRef& child : core->children) child->cancel(outer.cancel_message);
    });
}

void GatherCore::child_done(FutureCore& child) {
    child.retrieved = true;  // the gather reports it, one way or the other
    FutureCore& o = *outer;
    if (o.done()) return;
    bool failed = child.status == FutureCore::Status::cancelled || child.error;
    if (failed && !return_exceptions) {
#if EVLOOP_EXCEPTIONS
        if (child.exception) {
            (void)o.set_exception(child.exception);
            return;
        }
#endif
        (void)o.set_error(child.error);
        return;
    }
    if (--left == 0) complete();
}

}  // namespace evloop::detail
