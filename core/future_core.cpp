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
    // Nothing runs here (CONTRACT 77), so the list cannot change under us;
    // callbacks added later are appended and scheduled on their own (80).
    for (std::size_t i = 0; i < callbacks_.size(); ++i) schedule(i);
}

void FutureCore::schedule(std::size_t i) {
    if (!loop) return;  // a task refused before it had a loop: nothing can run
    DoneEntry& entry = callbacks_[i];
    if (entry.waiter) {
        // An awaiting task: its next step. Eight bytes of capture, so the
        // callback sits in the handle's inline storage.
        loop_post(*loop, [t = std::move(entry.waiter)]() { t->task->step(); });
    } else {
        // The function stays in the list and the loop callback names it by
        // index: moving it into the callback would not fit the inline storage
        // and would cost an allocation per done callback.
        loop_post(*loop, [self = CoreRef(this), i]() { self->run_callback(i); });
    }
}

void FutureCore::run_callback(std::size_t i) {
    // Taken out first: its captures go as soon as it returns, as asyncio drops
    // a callback once called.
    UniqueFunction<void(FutureCore&)> fn = std::move(callbacks_[i].fn);
    if (fn) fn(*this);
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
    std::uint64_t token = next_token_++;
    callbacks_.push_back(DoneEntry{token, {}, std::move(fn)});
    if (done()) schedule(callbacks_.size() - 1);  // CONTRACT 78
    return token;
}

void FutureCore::add_waiter(FutureCore& task_state) {
    callbacks_.push_back(DoneEntry{next_token_++, CoreRef(&task_state), {}});
    if (done()) schedule(callbacks_.size() - 1);
}

std::size_t FutureCore::remove_callback(std::uint64_t token) noexcept {
    if (done()) return 0;  // every entry is scheduled already (CONTRACT 80)
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
