// core/future_core.hpp — the half of a future's state that does not depend on
// its value type: status, error, exception, done callbacks, the loop.
//
// Keeping it untyped lets non-template code (tasks, the loop's reports, gather)
// treat every future alike, and keeps the templates in future.hpp small.
// A task's state is a FutureCore whose `task` points at its TaskCore
// (core/task_core.hpp); cancel() and set_result() look there first.
// Reports that asyncio makes from __del__ ("exception was never retrieved",
// "Task was destroyed but it is pending!") happen when the last reference is
// dropped, through the loop's exception handler, but only while the loop
// exists: a state that needs a report is linked into a list the loop owns,
// and the loop unlinks them all when it is destroyed.
// Layer: core. Read next: core/future.hpp.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <system_error>
#include <vector>

#include "core/callback.hpp"
#include "core/errors.hpp"
#include "core/frame_pool.hpp"

namespace evloop {

class EventLoop;

namespace detail {

class FutureCore;
class TaskCore;

/// An owning reference to a FutureCore (an intrusive pointer).
class CoreRef {
public:
    CoreRef() noexcept = default;
    explicit CoreRef(FutureCore* core) noexcept;  // takes a new reference
    CoreRef(const CoreRef& other) noexcept : CoreRef(other.core_) {}
    CoreRef(CoreRef&& other) noexcept : core_(other.core_) { other.core_ = nullptr; }
    CoreRef& operator=(CoreRef other) noexcept {
        std::swap(core_, other.core_);
        return *this;
    }
    ~CoreRef();
    FutureCore* get() const noexcept { return core_; }
    FutureCore* operator->() const noexcept { return core_; }
    FutureCore& operator*() const noexcept { return *core_; }
    explicit operator bool() const noexcept { return core_ != nullptr; }
    void reset() noexcept { *this = CoreRef(); }

private:
    FutureCore* core_ = nullptr;
};

/// One done callback: a task to wake (awaiting tasks use this, it allocates
/// nothing), or a function to call.
struct DoneEntry {
    std::uint64_t token = 0;
    CoreRef waiter;                            // the awaiting task's state
    UniqueFunction<void(FutureCore&)> fn;      // or this
};

/// Intrusive list link; the loop keeps its tasks, its unretrieved errors and its
/// async generators in such lists.
struct ListLink {
    ListLink* prev = this;
    ListLink* next = this;
    bool linked() const noexcept { return next != this; }
    void unlink() noexcept {
        prev->next = next;
        next->prev = prev;
        prev = next = this;
    }
    void insert_after(ListLink* head) noexcept {
        prev = head;
        next = head->next;
        head->next->prev = this;
        head->next = this;
    }
};

class FutureCore : public ListLink, public Pooled {
public:
    enum class Status : std::uint8_t { pending, finished, cancelled };

    explicit FutureCore(EventLoop* l) noexcept : loop(l) {}
    virtual ~FutureCore();
    FutureCore(const FutureCore&) = delete;
    FutureCore& operator=(const FutureCore&) = delete;

    void add_ref() noexcept { ++refs; }
    void release() noexcept {
        if (--refs == 0) last_reference_dropped();
    }

    bool done() const noexcept { return status != Status::pending; }
    /// errc::invalid_state (refused) if done or a task's; `what` names the call.
    std::error_code check_settable(const char* what);
    /// Marks the future done and schedules its callbacks.
    void finish(Status s);
    std::error_code set_error(std::error_code ec);
#if EVLOOP_EXCEPTIONS
    std::error_code set_exception(std::exception_ptr e);
#endif
    /// Plain futures: cancel now. Tasks: request cancellation (TaskCore::cancel).
    bool cancel(std::string message);
    /// result()'s common part: marks the error retrieved, rethrows an exception.
    void rethrow_or_retrieve() const {
        retrieved = true;
#if EVLOOP_EXCEPTIONS
        if (exception) std::rethrow_exception(exception);
#endif
    }

    std::uint64_t add_callback(UniqueFunction<void(FutureCore&)> fn);
    /// Registers `task` to be woken (TaskCore::step) when this is done.
    void add_waiter(FutureCore& task_state);
    std::size_t remove_callback(std::uint64_t token) noexcept;

    /// asyncio's repr: "<Future pending>", "<Task finished name='Task-3'>".
    std::string describe() const;

    EventLoop* loop;
    TaskCore* task = nullptr;  // set when this is a task's state
    std::uint32_t refs = 1;
    Status status = Status::pending;
    mutable bool retrieved = false;  // result/error/exception/cancel was called (CONTRACT 82)
    std::error_code error;
#if EVLOOP_EXCEPTIONS
    std::exception_ptr exception;
#endif
    std::string cancel_message;

private:
    void schedule(std::size_t i);
    void run_callback(std::size_t i);
    void last_reference_dropped() noexcept;

    std::uint64_t next_token_ = 1;
    std::vector<DoneEntry> callbacks_;
};

// The loop services futures and tasks use; defined in core/event_loop_tasks.cpp
// so this header need not include the whole loop.
/// call_soon, except that on a closed loop the callback is dropped (a closed
/// loop runs nothing) instead of refused.
void loop_post(EventLoop& loop, Callback&& cb);
/// Links a plain future holding an error, so it can be reported if nobody
/// retrieves it before it dies.
void loop_track_error(EventLoop& loop, FutureCore& future);
/// Links a scheduled task (reported if it dies pending; closed with the loop).
void loop_track_task(EventLoop& loop, FutureCore& task);
/// Calls the loop's exception handler with `message` about `future`.
void loop_report(EventLoop& loop, const char* message, const FutureCore& future);
#if EVLOOP_EXCEPTIONS
/// The code an exception stands for: a std::system_error's own, otherwise
/// errc::exception_raised.
std::error_code exception_code(const std::exception_ptr& e);
#endif
/// The loop's "task running now" slot.
TaskCore*& loop_current_task(EventLoop& loop) noexcept;

inline CoreRef::CoreRef(FutureCore* core) noexcept : core_(core) {
    if (core_) core_->add_ref();
}
inline CoreRef::~CoreRef() {
    if (core_) core_->release();
}

}  // namespace detail
}  // namespace evloop
