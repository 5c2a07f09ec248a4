// core/executor.cpp — the worker threads of ThreadPoolExecutor.
//
// A worker takes the oldest item, runs it with the mutex released, and goes
// back for the next; with nothing queued it sleeps on the condition variable.
// After shutdown() it keeps taking items until the queue is empty, then exits.
// Cancellation is a compare-and-swap on the item's state (pending ->
// cancelled against the worker's pending -> running), so exactly one side
// wins and only the winner touches the work's function.
// Layer: core. Read next: core/event_loop_executor.cpp.
#include "core/executor.hpp"

#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "core/log.hpp"

namespace evloop {

using detail::WorkItem;

bool WorkTicket::cancel() noexcept {
    if (!item_) return false;
    std::uint8_t expected = WorkItem::pending;
    if (!item_->state.compare_exchange_strong(expected, WorkItem::cancelled, std::memory_order_acq_rel))
        return false;
    item_->work.reset();  // a worker that reaches the item now only skips it
    return true;
}

std::size_t ThreadPoolExecutor::default_max_workers() noexcept {
    // Python 3.13: min(32, (os.process_cpu_count() or 1) + 4).
    std::size_t cpus = std::max(1u, std::thread::hardware_concurrency());
    return std::min<std::size_t>(32, cpus + 4);
}

ThreadPoolExecutor::ThreadPoolExecutor(std::size_t max_workers, std::string thread_name_prefix)
    : max_workers_(max_workers ? max_workers : default_max_workers()),
      thread_name_prefix_(std::move(thread_name_prefix)) {}

ThreadPoolExecutor::~ThreadPoolExecutor() {
    {
        std::lock_guard lock(mutex_);
        for (const std::thread& t : threads_)
            if (t.get_id() == std::this_thread::get_id()) {
                // The thread would have to join itself, and its own stack is in use.
                log(LogLevel::error, "ThreadPoolExecutor destroyed by one of its own threads; aborting");
                std::abort();
            }
    }
    shutdown(true);
}

WorkTicket ThreadPoolExecutor::submit(UniqueFunction<void()> work) {
    WorkTicket ticket = try_submit(std::move(work));
    if (!ticket) {
        std::error_code ec = ticket.error();
        if (ec.category() == error_category())
            (void)detail::refuse(static_cast<errc>(ec.value()), "ThreadPoolExecutor::submit");
        else
            log(LogLevel::error, "ThreadPoolExecutor::submit: cannot start a thread: %s", ec.message().c_str());
    }
    return ticket;
}

WorkTicket ThreadPoolExecutor::try_submit(UniqueFunction<void()> work) {
    auto* item = new WorkItem(std::move(work));
    {
        std::lock_guard lock(mutex_);
        if (shutdown_) {
            item->release();
            return WorkTicket::refused(make_error_code(errc::executor_submit_after_shutdown));
        }
        // As Python's _adjust_thread_count: a new thread only when the idle
        // ones cannot take everything queued (this item included), and never
        // beyond the limit. The new thread waits for the mutex we hold.
        if (queue_.size + 1 > idle_ && threads_.size() < max_workers_ && !start_thread_locked() &&
            threads_.empty()) {
            // No thread could be made and none exists: the item would never run.
            item->release();
            return WorkTicket::refused(std::make_error_code(std::errc::resource_unavailable_try_again));
        }
        queue_.push(item);
        item->add_ref();  // the queue's reference; the ticket adopts the first
    }
    wake_.notify_one();
    return WorkTicket::adopt(item);
}

bool ThreadPoolExecutor::start_thread_locked() {
    std::size_t index = threads_.size();
#if EVLOOP_EXCEPTIONS
    try {
        threads_.emplace_back([this, index] { worker_main(index); });
    } catch (const std::system_error& e) {
        log(LogLevel::warning, "ThreadPoolExecutor: cannot start a thread: %s", e.what());
        return false;
    }
#else
    // Without exceptions the library aborts if the OS refuses a thread, as for
    // any failed allocation.
    threads_.emplace_back([this, index] { worker_main(index); });
#endif
    return true;
}

void ThreadPoolExecutor::worker_main(std::size_t index) {
#if defined(__linux__) || defined(__APPLE__)
    // Names show in top -H, gdb and /proc: "<prefix>_<N>", cut to the 15
    // characters Linux allows (Python: "asyncio_0" for asyncio's pool).
    char name[16];
    std::snprintf(name, sizeof name, "%s_%zu", thread_name_prefix_.c_str(), index);
#if defined(__APPLE__)
    pthread_setname_np(name);
#else
    pthread_setname_np(pthread_self(), name);
#endif
#endif
    std::unique_lock lock(mutex_);
    for (;;) {
        while (!queue_.head && !shutdown_) {
            ++idle_;
            wake_.wait(lock);
            --idle_;
        }
        if (!queue_.head) return;  // shut down and drained
        WorkItem* item = queue_.pop();
        lock.unlock();
        run_item(item);
        lock.lock();
    }
}

void ThreadPoolExecutor::run_item(WorkItem* item) noexcept {
    std::uint8_t expected = WorkItem::pending;
    if (item->state.compare_exchange_strong(expected, WorkItem::running, std::memory_order_acq_rel)) {
#if EVLOOP_EXCEPTIONS
        try {
            item->work();
        } catch (const std::exception& e) {
            log(LogLevel::error, "Exception in ThreadPoolExecutor work: %s", e.what());
        } catch (...) {
            log(LogLevel::error, "Exception in ThreadPoolExecutor work (not a std::exception)");
        }
#else
        item->work();
#endif
        item->work.reset();  // captures die here, on the worker, before done() turns true
        item->state.store(WorkItem::finished, std::memory_order_release);
    }
    item->release();  // the queue's reference
}

void ThreadPoolExecutor::shutdown(bool wait) {
    {
        std::lock_guard lock(mutex_);
        shutdown_ = true;
    }
    wake_.notify_all();  // idle workers see the flag and exit; busy ones drain the queue first
    if (!wait) return;
    // One joiner at a time; a later caller finds the threads joined and
    // returns only after the first has finished. threads_ no longer changes:
    // start_thread_locked() runs only before shutdown_ is set.
    std::lock_guard join_lock(join_mutex_);
    for (std::thread& t : threads_)
        if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
}

std::size_t ThreadPoolExecutor::thread_count() const {
    std::lock_guard lock(mutex_);
    return threads_.size();
}

std::size_t ThreadPoolExecutor::idle_threads() const {
    std::lock_guard lock(mutex_);
    return idle_;
}

bool ThreadPoolExecutor::is_shutdown() const {
    std::lock_guard lock(mutex_);
    return shutdown_;
}

void ThreadPoolExecutor::Queue::push(WorkItem* item) noexcept {
    item->next = nullptr;
    if (tail)
        tail->next = item;
    else
        head = item;
    tail = item;
    ++size;
}

WorkItem* ThreadPoolExecutor::Queue::pop() noexcept {
    WorkItem* item = head;
    head = item->next;
    if (!head) tail = nullptr;
    --size;
    return item;
}

}  // namespace evloop
