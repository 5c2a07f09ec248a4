// core/handle.hpp — Handle and TimerHandle: a scheduled callback you can cancel.
//
// A Handle is a reference-counted pointer to a detail::HandleNode. The node
// holds the callback; the loop's ready queue and timer heap hold pointers to
// it, so scheduling allocates no container cell of its own. Nodes come
// from a per-thread cache backed by a shared depot (see handle.cpp): in a steady state call_soon
// allocates nothing at all. The count is atomic only because a Handle returned
// by call_soon_threadsafe is dropped on another thread than the loop's; the
// last owner frees without an atomic write when it can see it is alone.
//
// As in asyncio, Handle methods are not thread-safe: cancel a Handle on the
// loop's thread (from another thread, call_soon_threadsafe a lambda that does).
// Layer: core. Read next: core/event_loop.hpp.
#pragma once

#include <atomic>
#include <cstdint>
#include <system_error>
#include <utility>

#include "core/callback.hpp"

namespace evloop {

class EventLoop;

namespace detail {

struct alignas(64) HandleNode {
    enum Flags : std::uint8_t {
        cancelled = 1,   ///< cancel() was called
        queued = 2,      ///< linked in the ready queue
        scheduled = 4,   ///< in the timer heap
        running = 8,     ///< its callback is executing right now
        persistent = 16, ///< a reader/writer: runs on every readiness, until removed
        timer = 32,      ///< created by call_later/call_at
    };

    // 64 bytes, one cache line (asserted in handle.cpp): a node costs one
    // miss, not two, and the loop streams through a million of them.
    std::atomic<std::uint32_t> refs{1};
    std::uint32_t heap_index = 0;     // timers: position in the heap, for O(log n) cancel
    EventLoop* loop = nullptr;        // for timer cancel; cleared when the loop closes
    Callback callback;
    std::int64_t when_ns = 0;         // timers: absolute deadline, monotonic ns
    // Flags and the sequence share one word to keep the node in its line; 2^56
    // timers are never scheduled, so the sequence cannot wrap.
    std::uint64_t flags : 8 = 0;
    std::uint64_t sequence : 56 = 0;  // timers: tie-break, so equal deadlines run FIFO

    /// A recycled node (see handle.cpp), or a new one from the heap.
    static HandleNode* create(std::uint32_t refs, std::uint8_t flags, EventLoop* loop, Callback&& cb);
    void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
    /// Drops one reference; the last one recycles the node.
    void release() noexcept {
        // Alone (count 1): nobody else can add a reference, so no atomic write.
        if (refs.load(std::memory_order_acquire) == 1 || refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
            destroy();
    }

private:
    void destroy() noexcept;
};

}  // namespace detail

/// A callback scheduled by call_soon / call_soon_threadsafe (asyncio.Handle).
/// Empty when the call was refused; error() then says why.
class Handle {
public:
    Handle() noexcept = default;
    Handle(const Handle& other) noexcept : node_(other.node_), error_(other.error_) {
        if (node_) node_->add_ref();
    }
    Handle(Handle&& other) noexcept : node_(std::exchange(other.node_, nullptr)), error_(other.error_) {}
    Handle& operator=(Handle other) noexcept {
        std::swap(node_, other.node_);
        std::swap(error_, other.error_);
        return *this;
    }
    ~Handle() {
        if (node_) node_->release();
    }

    /// Cancels the callback: it will not run, and its captures are destroyed
    /// (at once, or right after it returns if it is running). Idempotent.
    void cancel() noexcept;
    /// True once cancel() was called (also for callbacks dropped by close()).
    bool cancelled() const noexcept { return node_ && (node_->flags & detail::HandleNode::cancelled); }
    /// False for a refused call.
    explicit operator bool() const noexcept { return node_ != nullptr; }
    /// Why the call was refused (empty for a scheduled one).
    std::error_code error() const noexcept { return error_; }

    /// Wraps a node, adopting one reference.
    static Handle adopt(detail::HandleNode* node) noexcept {
        Handle h;
        h.node_ = node;
        return h;
    }
    static Handle refused(std::error_code ec) noexcept {
        Handle h;
        h.error_ = ec;
        return h;
    }
    detail::HandleNode* node() const noexcept { return node_; }
    friend bool operator==(const Handle& a, const Handle& b) noexcept { return a.node_ == b.node_; }

protected:
    detail::HandleNode* node_ = nullptr;
    std::error_code error_;
};

/// A callback scheduled by call_later / call_at (asyncio.TimerHandle).
class TimerHandle : public Handle {
public:
    TimerHandle() noexcept = default;
    explicit TimerHandle(Handle h) noexcept : Handle(std::move(h)) {}

    /// The absolute deadline in loop.time() seconds.
    double when() const noexcept { return node_ ? static_cast<double>(node_->when_ns) / 1e9 : 0.0; }
    /// The absolute deadline in monotonic nanoseconds.
    std::int64_t when_ns() const noexcept { return node_ ? node_->when_ns : 0; }

    /// Ordered by deadline, as asyncio's TimerHandle comparisons.
    friend bool operator<(const TimerHandle& a, const TimerHandle& b) noexcept { return a.when_ns() < b.when_ns(); }
};

}  // namespace evloop
