// core/future_core.cpp — the untyped half of a future: completion, done
// callbacks, cancellation, and the reports made when the last reference goes.
// Layer: core.
#include "core/future_core.hpp"

#include <cstdio>

#include "core/task_core.hpp"

namespace evloop::detail {

FutureCore::~FutureCore() = default;

std::error_code FutureCore::check_settable(const char* what) {
    if (task) {
        // asyncio: "Task does not support set_result() operation" (CONTRACT 92).
        std::string context = std::string("Task does not support ") + what + "()";
        return refuse(errc::invalid_state, context);
    }
    if (done()) return refuse(errc::invalid_state, std::string("Future::") + what + ": the future is already done");
    return {};
}

void FutureCore::finish(Status s) {
    status = s;
    // Move the list out first: a callback may add or remove others (CONTRACT 80).
    std::vector<DoneEntry> entries = std::move(callbacks_);
    callbacks_.clear();
    for (DoneEntry& entry : entries) schedule(entry);
}

void FutureCore::schedule(DoneEntry& entry) {
    if (!loop) return;  // a task refused before it had a loop: nothing can run
    if (entry.waiter) {
        // An awaiting task: its next step. Eight bytes of capture, so the
        // callback sits in the handle's inline storage.
        loop_post(*loop, [t = std::move(entry.waiter)]() { t->task->step(); });
    } else {
        loop_post(*loop, [self = CoreRef(this), fn = std::move(entry.fn)]() mutable { fn(*self); });
    }
}

std::error_code FutureCore::set_error(std::error_code ec) {
    if (std::error_code refused = check_settable("set_exception")) return refused;
    error = ec ? ec : make_error_code(errc::invalid_state);
    if (!linked() && loop) loop_track_error(*loop, *this);
    finish(Status::finished);
    return {};
}

#if EVLOOP_EXCEPTIONS
// A std::system_error keeps its code, so error() still says what failed.
std::error_code exception_code(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::system_error& se) {
        return se.code();
    } catch (...) {
        return make_error_code(errc::exception_raised);
    }
}

std::error_code FutureCore::set_exception(std::exception_ptr e) {
    if (std::error_code refused = check_settable("set_exception")) return refused;
    error = exception_code(e);
    exception = std::move(e);
    if (!linked() && loop) loop_track_error(*loop, *this);
    finish(Status::finished);
    return {};
}
#endif

bool FutureCore::cancel(std::string message) {
    retrieved = true;  // even a cancel() that returns false silences the report (CONTRACT 82)
    if (task) return task->cancel(std::move(message));
    if (done()) return false;
    cancel_message = std::move(message);
    error = make_error_code(errc::cancelled);
    finish(Status::cancelled);
    return true;
}

std::uint64_t FutureCore::add_callback(UniqueFunction<void(FutureCore&)> fn) {
    DoneEntry entry{next_token_++, {}, std::move(fn)};
    std::uint64_t token = entry.token;
    if (done())
        schedule(entry);  // CONTRACT 78
    else
        callbacks_.push_back(std::move(entry));
    return token;
}

void FutureCore::add_waiter(FutureCore& task_state) {
    callbacks_.push_back(DoneEntry{next_token_++, CoreRef(&task_state), {}});
}

std::size_t FutureCore::remove_callback(std::uint64_t token) noexcept {
    for (auto it = callbacks_.begin(); it != callbacks_.end(); ++it)
        if (it->token == token) {
            callbacks_.erase(it);
            return 1;
        }
    return 0;
}

std::string FutureCore::describe() const {
    std::string text = task ? "<Task " : "<Future ";
    text += status == Status::pending ? "pending" : status == Status::cancelled ? "cancelled" : "finished";
    if (task) text += " name='" + task->name() + "'";
    if (status == Status::finished && error) text += " error=" + error.message();
    return text + ">";
}

void FutureCore::last_reference_dropped() noexcept {
    // linked(): the loop still exists and asked to hear about this one.
    if (linked()) {
        if (task && status == Status::pending && task->frame())
            loop_report(*loop, "Task was destroyed but it is pending!", *this);  // CONTRACT 107
        else if (status == Status::finished && error && !retrieved)
            loop_report(*loop, task ? "Task exception was never retrieved" : "Future exception was never retrieved",
                        *this);  // CONTRACT 81
        unlink();
    }
    delete this;
}

}  // namespace evloop::detail
