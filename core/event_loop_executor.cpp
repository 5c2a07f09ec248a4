// core/event_loop_executor.cpp — run_in_executor's loop side, the default
// executor, shutdown_default_executor, and what close() does about them.
//
// How a result gets home (core/event_loop_executor.hpp has the objects): the
// pool thread runs the work, then posts the outcome through the loop's
// ExecutorGate with call_soon_threadsafe; the posted callback completes the
// Future on the loop's thread and frees the call. The gate's mutex is held
// across that post, and close() shuts the gate (under the same mutex) before
// it shuts the inbox, so every post either lands in the inbox while it is
// open (close() then drops it unrun) or sees the gate shut and drops the
// result on the pool thread. No pool thread ever calls into a closed loop, so
// none is refused ("Event loop is closed") or touches a destroyed one.
//
// Why close() does not join: asyncio's close() calls shutdown(wait=False)
// (CONTRACT 5), and a thread busy in user code cannot be interrupted, so a
// join could block close() for as long as that code runs. The gate already
// keeps pool threads away from the loop; what they still touch is the
// executor object and the gate. The gate is counted and outlives them; the
// default executor lives until the loop is destroyed, and its destructor
// joins. So ~EventLoop (not close()) may wait for default-executor work that
// is still running; an explicit executor is joined by whoever owns it.
// Layer: core. Read next: core/executor.cpp.
#include "core/event_loop.hpp"
#include "core/log.hpp"

namespace evloop {

namespace detail {

bool ExecutorGate::post(Callback&& cb) {
    std::lock_guard lock(mutex_);
    if (!loop_) return false;  // `cb` (the result) dies with the caller's temporary
    (void)loop_->call_soon_threadsafe(std::move(cb));
    return true;
}

void ExecutorGate::shut() noexcept {
    std::lock_guard lock(mutex_);  // waits for a post in progress
    loop_ = nullptr;
}

}  // namespace detail

std::error_code EventLoop::pick_executor(ThreadPoolExecutor*& executor) {
    // The closed check comes first: after close() that is the error (CONTRACT 66).
    if (is_closed()) return detail::refuse(errc::loop_closed, "run_in_executor");
    if (executor) return {};
    if (executor_shutdown_called_) return detail::refuse(errc::executor_shutdown_called, "run_in_executor");
    // Created on first use, as asyncio's (CONTRACT 63); threads start on submit.
    if (!default_executor_) default_executor_ = std::make_unique<ThreadPoolExecutor>();
    executor = default_executor_.get();
    return {};
}

detail::GateRef EventLoop::executor_gate() {
    if (!executor_gate_) executor_gate_ = new detail::ExecutorGate(this);
    return detail::GateRef(executor_gate_);
}

void EventLoop::drop_executor_call(detail::ExecutorCallBase* call) noexcept {
    call->unlink();
    delete call;
}

std::error_code EventLoop::refuse_submit(std::error_code ec) {
    if (ec.category() == error_category()) return detail::refuse(static_cast<errc>(ec.value()), "run_in_executor");
    log(LogLevel::error, "run_in_executor: %s", ec.message().c_str());  // the OS refused a thread
    return ec;
}

void EventLoop::close_executors() {
    // 1. No pool thread calls into this loop from here on (see the file comment).
    if (executor_gate_) {
        executor_gate_->shut();
        std::exchange(executor_gate_, nullptr)->release();
    }
    // 2. Free the calls whose results can no longer arrive. Their futures
    //    stay pending, as asyncio leaves them; their work, if not started,
    //    still runs (an executor owes its submitters that), its result dropped.
    while (executor_calls_.next != &executor_calls_) {
        auto* call = static_cast<detail::ExecutorCallBase*>(executor_calls_.next);
        call->unlink();
        call->forget();
        delete call;
    }
    // 3. asyncio: shutdown(wait=False) and the "shutdown called" flag (CONTRACT 5).
    executor_shutdown_called_ = true;
    if (default_executor_) default_executor_->shutdown(false);
    // 4. shutdown_default_executor futures stay pending too (their timers are
    //    dropped with the other handles).
    executor_shutdown_waiters_.clear();
}

void EventLoop::set_default_executor(std::unique_ptr<ThreadPoolExecutor> executor) {
    // C++ types already reject anything but a ThreadPoolExecutor; null is the
    // one value left to refuse (CONTRACT 65).
    if (!executor) {
        (void)detail::refuse(errc::invalid_executor, "set_default_executor");
        return;
    }
    // The shutdown thread uses the old executor: let it finish first.
    if (executor_shutdown_thread_.joinable()) executor_shutdown_thread_.join();
    default_executor_ = std::move(executor);  // the old one's destructor joins its threads
}

Future<void> EventLoop::shutdown_default_executor(std::optional<double> timeout) {
    Future<void> future(*this);
    if (is_closed()) {
        // Nothing could ever complete the future: refuse instead.
        (void)future.set_error(detail::refuse(errc::loop_closed, "shutdown_default_executor"));
        return future;
    }
    executor_shutdown_called_ = true;
    if (!default_executor_) {
        (void)future.set_result();
        return future;
    }
    TimerHandle timer;
    if (timeout) {
        const double seconds = *timeout;
        timer = call_later(seconds, [this, future, seconds]() mutable {
            if (future.done()) return;
            // asyncio's RuntimeWarning, word for word.
            log(LogLevel::warning, "The executor did not finishing joining its threads within %g seconds.", seconds);
            if (default_executor_) default_executor_->shutdown(false);
            (void)future.set_result();
        });
    }
    executor_shutdown_waiters_.push_back({future, std::move(timer)});
    // One joining thread serves every waiter; it only touches the executor
    // and the gate, and hands the news back like any executor result.
    if (!executor_shutdown_thread_.joinable()) {
        ThreadPoolExecutor* pool = default_executor_.get();
        executor_shutdown_thread_ = std::jthread([this, pool, gate = executor_gate()]() mutable {
            pool->shutdown(true);
            gate.post([this] { default_executor_joined(); });
        });
    }
    return future;
}

void EventLoop::default_executor_joined() {
    // The thread posted this as its last act: the join is immediate.
    if (executor_shutdown_thread_.joinable()) executor_shutdown_thread_.join();
    auto waiters = std::move(executor_shutdown_waiters_);
    executor_shutdown_waiters_.clear();
    for (ExecutorShutdownWaiter& waiter : waiters) {
        waiter.timeout.cancel();
        if (!waiter.future.done()) (void)waiter.future.set_result();
    }
}

}  // namespace evloop
