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

bool ensure_scheduled(FutureCore& future, const char* caller) {
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
    (void)refuse(errc::no_running_loop, caller);
    return false;
}

EventLoop* gather_loop(const std::vector<FutureCore*>& children) {
    for (FutureCore* child : children)
        if (child->loop) return child->loop;
    if (EventLoop* loop = running_loop()) return loop;
    (void)refuse(errc::no_running_loop, "gather");
    return &orphan_loop();
}

namespace {
// Lives inside a done callback: clears the gather's raw pointer to the future
// the callback is registered on when the callback goes (run, or dropped with
// a future that died pending). See GatherCore.
struct SlotGuard {
    std::shared_ptr<GatherCore> core;
    FutureCore** slot;
    SlotGuard(std::shared_ptr<GatherCore> c, FutureCore** s) noexcept : core(std::move(c)), slot(s) {}
    SlotGuard(SlotGuard&& other) noexcept : core(std::move(other.core)), slot(other.slot) {}
    SlotGuard& operator=(SlotGuard&&) = delete;
    ~SlotGuard() {
        if (core) *slot = nullptr;
    }
};
}  // namespace

void GatherCore::start(const std::shared_ptr<GatherCore>& core) {
    for (std::size_t i = 0; i < core->children.size(); ++i) {
        core->children[i]->add_callback([guard = SlotGuard(core, &core->children[i]), i](FutureCore& child) {
            guard.core->child_done(i, child);
        });
    }
    core->outer->add_callback([guard = SlotGuard(core, &core->outer)](FutureCore& outer) {
        if (outer.status != FutureCore::Status::cancelled) return;
        for (FutureCore* child : guard.core->children)
            if (child) child->cancel(outer.cancel_message);
    });
}

void GatherCore::child_done(std::size_t i, FutureCore& child) {
    child.retrieved = true;  // the gather reports it, one way or the other
    if (!outer || outer->done()) return;
    bool failed = child.status == FutureCore::Status::cancelled || child.error;
    if (failed && !return_exceptions) {
#if EVLOOP_EXCEPTIONS
        if (child.exception) {
            (void)outer->set_exception(child.exception);
            return;
        }
#endif
        (void)outer->set_error(child.error);
        return;
    }
    store(i, child);
    if (--left == 0) complete();
}

}  // namespace evloop::detail
