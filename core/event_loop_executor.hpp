// core/event_loop_executor.hpp — the loop side of run_in_executor: how a
// result made on a pool thread reaches a Future that lives on the loop.
//
// A Future's count is not atomic, so a Future must never be copied or
// destroyed on a pool thread. Each run_in_executor call is therefore split:
//  - detail::ExecutorCall<R> (loop thread only) holds the Future<R>. It is
//    linked into the loop's list of calls in flight, so close() can free it
//    when its result can no longer arrive;
//  - the work given to the pool holds the function, the call's address (only
//    carried back, never dereferenced there) and a GateRef;
//  - detail::ExecutorGate (shared, atomic count) is the one way back into the
//    loop. It holds the loop's address until close() shuts it; a pool thread
//    posts the result through it with its mutex held, so a post either lands
//    before close() (and close() drops it unrun) or finds the gate shut and
//    drops the result: nothing ever calls into a closed or destroyed loop.
// Layer: core. Read next: core/event_loop_executor.cpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "core/callback.hpp"
#include "core/errors.hpp"
#include "core/executor.hpp"
#include "core/future.hpp"

namespace evloop {

class EventLoop;

namespace detail {

/// The door from pool threads back into one loop (see the file comment).
class ExecutorGate {
public:
    explicit ExecutorGate(EventLoop* loop) noexcept : loop_(loop) {}
    ExecutorGate(const ExecutorGate&) = delete;
    ExecutorGate& operator=(const ExecutorGate&) = delete;
    void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }
    /// Any thread: loop.call_soon_threadsafe(cb) unless the gate is shut;
    /// false (and `cb` destroyed here) if it is.
    bool post(Callback&& cb);
    /// The loop's close(): after it returns, post() never touches the loop.
    void shut() noexcept;

private:
    std::atomic<std::uint32_t> refs_{1};
    std::mutex mutex_;      // held across a post, so shut() waits for it
    EventLoop* loop_;       // null once shut
};

/// An owning reference to the gate, carried by work on its way to the pool.
class GateRef {
public:
    explicit GateRef(ExecutorGate* gate) noexcept : gate_(gate) { gate_->add_ref(); }
    GateRef(GateRef&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
    GateRef(const GateRef&) = delete;
    GateRef& operator=(const GateRef&) = delete;
    GateRef& operator=(GateRef&&) = delete;
    ~GateRef() {
        if (gate_) gate_->release();
    }
    bool post(Callback&& cb) { return gate_->post(std::move(cb)); }

private:
    ExecutorGate* gate_;
};

/// A link of the loop's circular list of calls in flight (the loop holds
/// the sentinel). Loop thread only.
struct ExecutorCallLink {
    ExecutorCallLink() noexcept = default;
    ExecutorCallLink(const ExecutorCallLink&) = delete;
    ExecutorCallLink& operator=(const ExecutorCallLink&) = delete;
    void insert_before(ExecutorCallLink* at) noexcept {
        prev = at->prev;
        next = at;
        at->prev->next = this;
        at->prev = this;
    }
    void unlink() noexcept {
        prev->next = next;
        next->prev = prev;
        prev = next = this;
    }
    ExecutorCallLink* prev = this;
    ExecutorCallLink* next = this;
};

/// The loop side of one run_in_executor call, whatever its result type.
struct ExecutorCallBase : ExecutorCallLink {
    virtual ~ExecutorCallBase() = default;
    /// close(): stop watching the future for cancellation (it stays pending,
    /// as asyncio leaves it). The caller then deletes the call.
    virtual void forget() = 0;
};

/// What the work produced, carried from the pool thread to the loop.
template <class R>
struct ExecutorOutcome {
    struct Unit {};
    std::optional<std::conditional_t<std::is_void_v<R>, Unit, R>> value;  // empty if it threw
#if EVLOOP_EXCEPTIONS
    std::exception_ptr exception;
#endif
};

/// Runs `fn` on the pool thread, catching what escapes it (exception builds).
template <class R, class F>
ExecutorOutcome<R> run_work(F& fn) {
    ExecutorOutcome<R> outcome;
#if EVLOOP_EXCEPTIONS
    try {
#endif
        if constexpr (std::is_void_v<R>) {
            fn();
            outcome.value.emplace();
        } else {
            outcome.value.emplace(fn());
        }
#if EVLOOP_EXCEPTIONS
    } catch (...) {
        outcome.exception = std::current_exception();
    }
#endif
    return outcome;
}

template <class R>
class ExecutorCall final : public ExecutorCallBase {
public:
    explicit ExecutorCall(Future<R> future) noexcept : future_(std::move(future)) {}

    /// After a successful submit: cancelling the future cancels the work if
    /// it has not started (CONTRACT 68). The check runs as a done callback,
    /// so work a worker takes before it runs is not dropped: its result is.
    void watch_cancel(WorkTicket ticket) {
        token_ = future_.add_done_callback([this, ticket = std::move(ticket)](Future<R>& future) mutable {
            // A successful ticket.cancel() means the work will never run and
            // never post, so nobody else would free this call, and nobody
            // could have: complete() needs the work to have run, and close()
            // drops this callback unrun. Otherwise complete() frees it.
            if (future.cancelled() && ticket.cancel()) {
                unlink();
                delete this;
            }
        });
    }

    /// On the loop: the result arrived. Sets it unless the future is already
    /// done (cancelled, or completed by its owner), then frees the call.
    void complete(ExecutorOutcome<R>&& outcome) {
        unlink();
        future_.remove_done_callback(token_);  // no cancel watch left to schedule
        if (!future_.done()) deliver(std::move(outcome));
        delete this;
    }

    void forget() override { future_.remove_done_callback(token_); }

private:
    void deliver(ExecutorOutcome<R>&& outcome) {
#if EVLOOP_EXCEPTIONS
        if (outcome.exception) {
            // As asyncio: the future carries it; nobody retrieving it is
            // reported when the future goes ("exception was never retrieved").
            (void)future_.set_exception(std::move(outcome.exception));
            return;
        }
#endif
        if constexpr (std::is_void_v<R>)
            (void)future_.set_result();
        else
            (void)future_.set_result(std::move(*outcome.value));
    }

    Future<R> future_;
    std::uint64_t token_ = 0;
};

}  // namespace detail
}  // namespace evloop
