// core/executor.hpp — ThreadPoolExecutor: a fixed-size pool of worker threads
// (Python's concurrent.futures.ThreadPoolExecutor, without its futures).
//
// The loop must never block, so blocking work (a DNS lookup, a file read, a
// long computation) goes to other threads: EventLoop::run_in_executor sends it
// here and gets the result back through call_soon_threadsafe. The pool itself
// knows nothing about loops: submit() takes a UniqueFunction<void()> and
// returns a WorkTicket that can cancel the work until a worker starts it.
//
// As Python's pool: threads are created on demand, one per submit that finds
// no idle worker, up to max_workers (never in the constructor), named
// "<prefix>_<N>"; shutdown(wait=false) refuses new work and lets the queued
// work run; shutdown(wait=true) also joins the threads. There is no
// cancel_futures: every accepted item runs unless its ticket cancelled it.
// Layer: core (no loop, no platform/). Read next: core/event_loop_executor.hpp.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "core/callback.hpp"
#include "core/errors.hpp"

namespace evloop {

namespace detail {

/// One submitted work item: the pool's queue links it (intrusive FIFO through
/// `next`), a WorkTicket shares it. The count is atomic because the ticket
/// lives on the submitter's thread and the queue on the workers'.
struct WorkItem {
    enum State : std::uint8_t { pending, running, finished, cancelled };

    explicit WorkItem(UniqueFunction<void()>&& fn) : work(std::move(fn)) {}
    void add_ref() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
    }

    WorkItem* next = nullptr;                 // queue link, guarded by the pool's mutex
    std::atomic<std::uint32_t> refs{1};
    std::atomic<std::uint8_t> state{pending};  // pending -> running -> finished | pending -> cancelled
    UniqueFunction<void()> work;              // touched only by whoever moved `state` off pending
};

}  // namespace detail

/// What submit() returns: a shared reference to one work item, usable from
/// any thread (Python's concurrent Future without the result). Empty when the
/// submit was refused; error() then says why.
class WorkTicket {
public:
    WorkTicket() noexcept = default;
    WorkTicket(const WorkTicket& other) noexcept : item_(other.item_), error_(other.error_) {
        if (item_) item_->add_ref();
    }
    WorkTicket(WorkTicket&& other) noexcept : item_(std::exchange(other.item_, nullptr)), error_(other.error_) {}
    WorkTicket& operator=(WorkTicket other) noexcept {
        std::swap(item_, other.item_);
        std::swap(error_, other.error_);
        return *this;
    }
    ~WorkTicket() {
        if (item_) item_->release();
    }

    /// Drops work that has not started: it will never run, and its captures
    /// are destroyed now, on this thread. False if it is running or done
    /// (then nothing changes, CONTRACT 69). The queue entry is skipped lazily.
    bool cancel() noexcept;
    /// True if cancel() dropped the work.
    bool cancelled() const noexcept { return state() == detail::WorkItem::cancelled; }
    /// True while a worker runs the work.
    bool running() const noexcept { return state() == detail::WorkItem::running; }
    /// True once the work ran to its end or was cancelled.
    bool done() const noexcept {
        auto s = state();
        return s == detail::WorkItem::finished || s == detail::WorkItem::cancelled;
    }
    /// False for a refused submit.
    explicit operator bool() const noexcept { return item_ != nullptr; }
    /// Why the submit was refused (empty for accepted work).
    std::error_code error() const noexcept { return error_; }

    /// Wraps an item, adopting one reference.
    static WorkTicket adopt(detail::WorkItem* item) noexcept {
        WorkTicket t;
        t.item_ = item;
        return t;
    }
    static WorkTicket refused(std::error_code ec) noexcept {
        WorkTicket t;
        t.error_ = ec;
        return t;
    }

private:
    std::uint8_t state() const noexcept {
        return item_ ? item_->state.load(std::memory_order_acquire) : std::uint8_t{detail::WorkItem::pending};
    }
    detail::WorkItem* item_ = nullptr;
    std::error_code error_;
};

/// A pool of worker threads running submitted work in FIFO order.
///
/// One mutex guards the queue and the thread list, and one condition variable
/// wakes idle workers. A lock-free queue would save little here: each item is
/// a function that blocks or computes for far longer than a lock handoff, and
/// idle workers must sleep in the kernel anyway (a condition variable is the
/// portable way to do it). The mutex also makes "refuse after shutdown" and
/// "spawn a thread if none is idle" one atomic decision.
class ThreadPoolExecutor {
public:
    /// Python's default size: min(32, CPU count + 4).
    static std::size_t default_max_workers() noexcept;

    /// A pool of at most `max_workers` threads (0: default_max_workers()),
    /// named "<thread_name_prefix>_<N>". No thread starts until submit().
    explicit ThreadPoolExecutor(std::size_t max_workers = 0, std::string thread_name_prefix = "evloop");
    /// shutdown(wait=true): runs the queued work, then joins every thread.
    /// Destroying a pool from one of its own threads is a bug: it aborts.
    ~ThreadPoolExecutor();
    ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
    ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

    /// Queues `work` to run on a pool thread, starting a thread if none is idle
    /// and fewer than max_workers exist. After shutdown() it is refused with
    /// errc::executor_submit_after_shutdown ("cannot schedule new futures
    /// after shutdown"). An exception escaping `work` is logged; the worker goes on.
    WorkTicket submit(UniqueFunction<void()> work);
    /// As submit(), but a refusal is only returned (an empty ticket whose
    /// error() says why), never thrown or logged: for callers that must clean
    /// up before they report it (run_in_executor does).
    WorkTicket try_submit(UniqueFunction<void()> work);

    /// Refuses new work from now on. Queued work still runs (Python's
    /// cancel_futures=False); cancel tickets to drop it. wait=true then joins
    /// every thread, so all accepted work has run when it returns (called on
    /// a pool thread it cannot join itself: it joins the others). Idempotent,
    /// and safe from any thread, even several at once.
    void shutdown(bool wait = true);

    /// The size limit given to the constructor (or the default).
    std::size_t max_workers() const noexcept { return max_workers_; }
    /// Threads started so far (they stay until shutdown).
    std::size_t thread_count() const;
    /// Threads waiting for work right now.
    std::size_t idle_threads() const;
    /// True once shutdown() was called.
    bool is_shutdown() const;

private:
    // The queue: an intrusive FIFO through WorkItem::next.
    struct Queue {
        detail::WorkItem* head = nullptr;
        detail::WorkItem* tail = nullptr;
        std::size_t size = 0;
        void push(detail::WorkItem* item) noexcept;
        detail::WorkItem* pop() noexcept;
    };

    bool start_thread_locked();
    void worker_main(std::size_t index);
    static void run_item(detail::WorkItem* item) noexcept;

    const std::size_t max_workers_;
    const std::string thread_name_prefix_;

    mutable std::mutex mutex_;       // guards everything below except join_mutex_
    std::condition_variable wake_;   // a worker waits on it while the queue is empty
    Queue queue_;
    std::vector<std::thread> threads_;
    std::size_t idle_ = 0;           // workers blocked in wake_.wait
    bool shutdown_ = false;

    std::mutex join_mutex_;          // serialises shutdown(wait=true) callers
};

}  // namespace evloop
