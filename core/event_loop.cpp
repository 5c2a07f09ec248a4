// core/event_loop.cpp — the loop itself: run_once() and the steps it calls,
// lifecycle (run_forever, stop, close), and scheduling (call_soon, timers).
// call_soon_threadsafe is in core/event_loop_threadsafe.cpp, watching fds in
// core/event_loop_io.cpp, error reporting in core/event_loop_errors.cpp.
//
// asyncio's rule holds here too: callbacks are *called* in one place only,
// run_ready(); everything else appends to the ready queue.
// Layer: core (uses platform/ only). Read next: core/event_loop_io.cpp.
#include "core/event_loop.hpp"

#include <cmath>
#include <limits>
#include <thread>

#include "core/log.hpp"
#include "core/policy.hpp"
#include "platform/clock.hpp"

namespace evloop {

using detail::HandleNode;

namespace {

constexpr std::int64_t kMaxSelectTimeoutNs = 24LL * 3600 * 1'000'000'000;  // asyncio: one day
// Deadlines are clamped to ±73 years so deadline arithmetic can never overflow.
constexpr std::int64_t kMaxDeadlineNs = std::numeric_limits<std::int64_t>::max() / 4;

}  // namespace

// One iteration, asyncio's _run_once. docs/internals.md walks the same list.
//  1. take the callbacks other threads posted (call_soon_threadsafe);
//  2. compute the timeout: 0 if something is ready or stop() was asked,
//     else until the nearest timer (at most a day), else forever;
//  3. select: wait for fd readiness;
//  4. process events: queue the reader/writer of every ready fd;
//  5. move due timers to the ready queue;
//  6. run exactly the callbacks that are ready now. What they schedule waits
//     for the next iteration, after another poll (CONTRACT 28, 29).
std::error_code EventLoop::run_once() {
    if (is_closed()) return detail::refuse(errc::loop_closed, "run_once");
    if (in_run_once_) return detail::refuse(errc::loop_running, "run_once");  // called from a callback
    in_run_once_ = true;
    // Driven by hand (not from run_forever), the loop is still this thread's
    // running loop for the iteration: tasks and get_running_loop() rely on it.
    EventLoop* running = detail::running_loop();
    if (running != nullptr && running != this) {
        in_run_once_ = false;
        return detail::refuse(errc::another_loop_running, "run_once");
    }
    bool claims_thread = running == nullptr;
    if (claims_thread) detail::set_running_loop(this);
    struct ClearOnExit {  // on every way out, exceptions included
        bool& flag;
        bool release_thread;
        ~ClearOnExit() {
            flag = false;
            if (release_thread) detail::set_running_loop(nullptr);
        }
    } clear{in_run_once_, claims_thread};
    if (wake_pending_.load(std::memory_order_relaxed)) take_inbox();
    std::int64_t timeout_ns = compute_timeout();
    std::span<const SelectorEvent> events;
    if (std::error_code ec = selector_->select(timeout_ns, events)) return ec;
    process_events(events);
    move_due_timers();
    run_ready(ready_.size);
    ++metrics_.iterations;
    return {};
}

std::int64_t EventLoop::compute_timeout() noexcept {
    if (ready_.size > 0 || stopping_.load(std::memory_order_relaxed)) return 0;
    if (timers_.empty()) return -1;
    std::int64_t wait = timers_.top_when_ns() - monotonic_ns();
    if (wait < 0) return 0;
    return wait > kMaxSelectTimeoutNs ? kMaxSelectTimeoutNs : wait;
}

inline void EventLoop::enqueue(WatchRef entry) noexcept {
    // An fd's reader or writer is queued at most once per iteration, and never
    // after it was removed.
    if (entry.is_watcher()) {
        detail::FdWatcher* watcher = entry.watcher();
        if (watcher->queued) return;
        watcher->queued = true;
        // The queue never holds 2^32 entries, so the low bits index it.
        watcher->ready_slot = static_cast<std::uint32_t>(ready_.push(entry));
        return;
    }
    HandleNode* node = entry.node();
    if (node->flags & (HandleNode::queued | HandleNode::cancelled)) return;
    node->flags |= HandleNode::queued;
    ready_.push(node);
}

void EventLoop::process_events(std::span<const SelectorEvent> events) {
    for (const SelectorEvent& event : events) {
        if (event.key.data == &self_pipe_) {
            on_self_pipe();
            continue;
        }
        int fd = event.key.fd;
        if (static_cast<std::size_t>(fd) >= watches_.size()) continue;
        FdWatch& watch = watches_[static_cast<std::size_t>(fd)];
        if ((event.ready & EVENT_READ) && watch.reader) enqueue(watch.reader);
        if ((event.ready & EVENT_WRITE) && watch.writer) enqueue(watch.writer);
    }
}

void EventLoop::move_due_timers() {
    // asyncio's clock-resolution rule (CONTRACT 41): due means before now + resolution.
    if (timers_.empty()) return;  // no clock read on a loop without timers
    const std::int64_t end = monotonic_ns() + clock_resolution_ns_;
    while (!timers_.empty() && timers_.top_when_ns() < end) {
        HandleNode* node = timers_.pop();
        node->flags &= static_cast<std::uint8_t>(~HandleNode::scheduled);
        node->flags |= HandleNode::queued;  // the heap's reference becomes the queue's
        ready_.push(node);
    }
}

// A reader/writer embedded in a transport: most of what a busy server runs,
// so it is called from run_ready inline; debug mode's timing is apart.
inline void EventLoop::call_watcher(detail::FdWatcher* watcher) {
#if EVLOOP_EXCEPTIONS
    try {
        watcher->on_ready(*watcher);
    } catch (...) {
        // Transports catch their protocol's exceptions themselves; anything
        // else is reported like any callback's (CONTRACT 32).
        ExceptionContext context{
            .message = "Exception in callback", .error = {}, .exception = std::current_exception()};
        call_exception_handler(context);
    }
#else
    watcher->on_ready(*watcher);
#endif
    ++metrics_.callbacks_run;
}

void EventLoop::call_watcher_timed(detail::FdWatcher* watcher) {
    const std::int64_t start = monotonic_ns();
    call_watcher(watcher);
    std::int64_t took = monotonic_ns() - start;
    if (static_cast<double>(took) >= slow_callback_duration_ * 1e9) report_slow(watcher, took);
}

void EventLoop::run_ready(std::size_t count) {
    constexpr std::size_t kPrefetchDistance = 8;
    while (count-- > 0) {
        // Nodes are scattered in memory; ask for one a few places ahead now so
        // its cache miss overlaps with running this one.
        if (ready_.size > kPrefetchDistance)
            __builtin_prefetch(reinterpret_cast<const void*>(ready_.peek(kPrefetchDistance).bits), 1);
        WatchRef entry = ready_.pop();
        if (!entry) continue;  // a watcher removed after it was queued
        if (entry.is_watcher()) {
            entry.watcher()->queued = false;  // its callback may remove or re-add it
            if (debug_) [[unlikely]]
                call_watcher_timed(entry.watcher());
            else
                call_watcher(entry.watcher());
            continue;  // its owner may be gone now: not touched again
        }
        HandleNode* node = entry.node();
        node->flags &= static_cast<std::uint8_t>(~HandleNode::queued);
        if (!(node->flags & HandleNode::cancelled)) run_handle(node);
        // A reader/writer stays with its FdWatch until remove_reader/writer
        // cancels it; any other handle was the queue's to release.
        if (!(node->flags & HandleNode::persistent) || (node->flags & HandleNode::cancelled)) {
            node->callback.reset();
            node->release();
        }
    }
}

void EventLoop::run_handle(HandleNode* node) {
    node->flags |= HandleNode::running;
    const std::int64_t start = debug_ ? monotonic_ns() : 0;
#if EVLOOP_EXCEPTIONS
    try {
        node->callback();
    } catch (...) {
        // As asyncio: an exception from a callback goes to the handler and the
        // loop goes on (CONTRACT 32).
        node->add_ref();
        ExceptionContext context{.message = "Exception in callback",
                                 .error = {},
                                 .exception = std::current_exception(),
                                 .handle = Handle::adopt(node)};
        call_exception_handler(context);
    }
#else
    node->callback();
#endif
    node->flags &= static_cast<std::uint8_t>(~HandleNode::running);
    ++metrics_.callbacks_run;
    if (debug_) {
        std::int64_t took = monotonic_ns() - start;
        if (static_cast<double>(took) >= slow_callback_duration_ * 1e9) report_slow(node, took);
    }
}

void EventLoop::ReadyQueue::grow() {
    // Each entry keeps its absolute position (head + i): a queued watcher's
    // ready_slot stays valid under the new mask.
    std::vector<WatchRef> bigger(ring.empty() ? 64 : ring.size() * 2);
    for (std::size_t i = 0; i < size; ++i) bigger[(head + i) & (bigger.size() - 1)] = peek(i);
    ring.swap(bigger);
    mask = ring.size() - 1;
}

// ---- lifecycle ---------------------------------------------------------------

EventLoop::EventLoop(Backend backend) {
    clock_resolution_ns_ = monotonic_resolution_ns();
    std::error_code ec;
    selector_ = make_selector(backend, ec);
    if (!ec) ec = self_pipe_.open();
    if (!ec) ec = selector_->register_fd(self_pipe_.read_fd(), EVENT_READ, &self_pipe_);
    if (ec) {
        // A loop that cannot watch anything is useless; it starts closed and
        // every call is refused with "Event loop is closed".
        creation_error_ = ec;
        log(LogLevel::error, "EventLoop: cannot create the %.*s selector: %s",
            static_cast<int>(evloop::backend_name(backend).size()), evloop::backend_name(backend).data(),
            ec.message().c_str());
        self_pipe_.close();
        if (selector_) selector_->close();
        closed_.store(true);
        (void)close_inbox();
    }
}

EventLoop::~EventLoop() {
    if (is_running()) {
        log(LogLevel::error, "EventLoop destroyed while running; aborting");
        std::abort();  // its frames are still on the stack: no safe way on
    }
    (void)close();
    detach_tasks();
}

std::error_code EventLoop::check_can_run() {
    if (is_closed()) return detail::refuse(errc::loop_closed, "run_forever");
    if (is_running()) return detail::refuse(errc::loop_running, "run_forever");
    if (detail::running_loop() != nullptr) return detail::refuse(errc::another_loop_running, "run_forever");
    return {};
}

std::error_code EventLoop::run_forever() {
    if (std::error_code ec = check_can_run()) return ec;
    detail::set_running_loop(this);
    running_.store(true, std::memory_order_release);
    // Reset on every way out, exceptions included (CONTRACT 13, 15).
    struct Cleanup {
        EventLoop& loop;
        ~Cleanup() {
            loop.stopping_.store(false, std::memory_order_relaxed);
            loop.running_.store(false, std::memory_order_release);
            detail::set_running_loop(nullptr);
        }
    } cleanup{*this};
    for (;;) {
        if (std::error_code ec = run_once()) return ec;
        if (stopping_.load(std::memory_order_relaxed)) return {};
    }
}

std::error_code EventLoop::close() {
    // in_run_once_: close() from a callback of a loop driven by run_once().
    if (is_running() || in_run_once_) return detail::refuse(errc::close_running_loop, "close");
    if (closed_.exchange(true)) return {};
    close_executors();  // before the inbox shuts: core/event_loop_executor.cpp says why
    // Shut the inbox; posts it still held are dropped like the ready queue.
    for (HandleNode* node : close_inbox()) {
        node->flags |= HandleNode::cancelled;
        node->callback.reset();
        node->release();
    }
    drop_all_handles();
    close_tasks();  // after the handles: core/event_loop_tasks.cpp says why
    close_resources();  // after the tasks, whose frames may hold transports
    selector_->close();
    self_pipe_.close();
    return {};
}

void EventLoop::close_resources() noexcept {
    // Unlink before the call: loop_closing() may destroy the object.
    while (resources_.linked()) {
        auto* resource = static_cast<detail::LoopResource*>(resources_.next);
        resource->unlink();
        resource->loop_closing();
    }
}

void EventLoop::drop_all_handles() noexcept {
    // Every dropped callback's handle reports cancelled(): a call accepted by
    // the loop either runs or visibly does not (asyncio just forgets them).
    while (ready_.size > 0) {
        WatchRef entry = ready_.pop();
        if (!entry) continue;
        if (entry.is_watcher()) {
            entry.watcher()->queued = false;  // forgotten below, as every watch
            continue;
        }
        HandleNode* node = entry.node();
        node->flags = static_cast<std::uint8_t>((node->flags & ~HandleNode::queued) | HandleNode::cancelled);
        node->callback.reset();
        if (!(node->flags & HandleNode::persistent)) node->release();
    }
    timers_.for_each([](HandleNode* node) {
        node->flags = static_cast<std::uint8_t>((node->flags & ~HandleNode::scheduled) | HandleNode::cancelled);
        node->loop = nullptr;
        node->callback.reset();
        node->release();
    });
    timers_.clear();
    for (std::size_t fd = 0; fd < watches_.size(); ++fd) {
        remove_watch(static_cast<int>(fd), false);
        remove_watch(static_cast<int>(fd), true);
    }
}

// ---- scheduling --------------------------------------------------------------

double EventLoop::time() const noexcept { return static_cast<double>(monotonic_ns()) / 1e9; }
std::int64_t EventLoop::time_ns() const noexcept { return monotonic_ns(); }

Handle EventLoop::call_soon(Callback cb) {
    if (is_closed()) return Handle::refused(detail::refuse(errc::loop_closed, "call_soon"));
    // Posts this thread made with call_soon_threadsafe go first (CONTRACT 53).
    if (wake_pending_.load(std::memory_order_relaxed)) take_inbox();
    HandleNode* node = HandleNode::create(2, HandleNode::queued, this, std::move(cb));
    ready_.push(node);
    return Handle::adopt(node);
}

void EventLoop::post(Callback cb) {
    // call_soon for the loop's own use (task steps, done callbacks): nobody
    // gets a Handle, so the node starts with the queue's reference alone and
    // is freed without an atomic decrement. A closed loop drops it.
    if (is_closed()) return;
    if (wake_pending_.load(std::memory_order_relaxed)) take_inbox();
    ready_.push(HandleNode::create(1, HandleNode::queued, this, std::move(cb)));
}

std::int64_t EventLoop::to_ns(double seconds) noexcept {
    double ns = seconds * 1e9;
    if (ns >= static_cast<double>(kMaxDeadlineNs)) return kMaxDeadlineNs;
    if (ns <= -static_cast<double>(kMaxDeadlineNs)) return -kMaxDeadlineNs;
    return static_cast<std::int64_t>(ns);
}

std::int64_t EventLoop::saturating_add(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t sum = a + b;  // both are within ±kMaxDeadlineNs: cannot overflow
    if (sum > kMaxDeadlineNs) return kMaxDeadlineNs;
    if (sum < -kMaxDeadlineNs) return -kMaxDeadlineNs;
    return sum;
}

TimerHandle EventLoop::call_later(double delay, Callback cb) {
    if (std::isnan(delay)) return TimerHandle(Handle::refused(detail::refuse(errc::invalid_time, "call_later")));
    return call_at_ns(saturating_add(time_ns(), to_ns(delay)), std::move(cb));
}

TimerHandle EventLoop::call_at(double when, Callback cb) {
    if (std::isnan(when)) return TimerHandle(Handle::refused(detail::refuse(errc::invalid_time, "call_at")));
    return call_at_ns(to_ns(when), std::move(cb));
}

TimerHandle EventLoop::call_at_ns(std::int64_t when_ns, Callback cb) {
    if (is_closed()) return TimerHandle(Handle::refused(detail::refuse(errc::loop_closed, "call_at")));
    HandleNode* node = HandleNode::create(2, HandleNode::scheduled | HandleNode::timer, this, std::move(cb));
    node->when_ns = when_ns;
    node->sequence = timer_sequence_++;
    timers_.push(node);
    return TimerHandle(Handle::adopt(node));
}

void EventLoop::timer_cancelled(HandleNode* node) noexcept {
    // Eager removal: the heap never holds a cancelled timer (core/timer_heap.hpp).
    timers_.remove(node);
    node->flags &= static_cast<std::uint8_t>(~HandleNode::scheduled);
    node->release();
}

LoopMetrics EventLoop::metrics() const noexcept {
    LoopMetrics m = metrics_;
    m.wakeups_written = self_pipe_.writes();
    return m;
}

std::string_view EventLoop::backend_name() const noexcept { return selector_ ? selector_->name() : "none"; }

}  // namespace evloop
