// proc/signal_handlers.cpp — EventLoop::add_signal_handler and
// remove_signal_handler, and proc/'s internal signal listeners: the
// per-loop half of signal handling (the process-wide half is
// platform/signals.cpp).
//
// A loop's handlers live in a SignalHandlers table, made on first use and
// owned by the loop as its detail::SignalDispatch. How a signal travels:
//   1. the sigaction handler writes the signal number to the self-pipe of
//      every loop watching it (platform/signals.cpp);
//   2. the loop drains its self-pipe in its I/O phase and calls
//      signal_arrived(sig) once per byte (core/event_loop_threadsafe.cpp);
//   3. signal_arrived queues one run of that signal with call_soon, unless
//      one is already queued: a burst costs one run;
//   4. the run, a normal loop callback, calls the internal listener and the
//      user's handler as they are *then*, so a handler replaced or removed
//      after the signal arrived but before it ran behaves as replaced or
//      removed (CONTRACT 201). An exception it throws reaches the exception
//      handler as "Exception in callback" with the handle (CONTRACT 208).
// The loop's close() reaches loop_closing() (a detail::LoopResource) before
// it closes the self-pipe: every watch is dropped and the signals nobody
// else watches go back to SIG_DFL (CONTRACT 7).
// Unlike asyncio, any thread's loop may handle signals (CONTRACT 196).
// Layer: proc. Read next: platform/signals.cpp.
#include "proc/signal_handlers.hpp"

#include <signal.h>

#include <array>
#include <cstdio>
#include <memory>

#include "core/errors.hpp"
#include "platform/signals.hpp"

namespace evloop {
namespace {

class SignalHandlers final : public detail::SignalDispatch, private detail::LoopResource {
public:
    explicit SignalHandlers(EventLoop& loop) : loop_(loop), wakeup_fd_(loop.self_pipe_write_fd()) {
        loop.attach_resource(*this);
    }

    /// The table of `loop`, made on first use.
    static SignalHandlers& of(EventLoop& loop) {
        if (!loop.signal_dispatch()) loop.set_signal_dispatch(std::make_unique<SignalHandlers>(loop));
        // Only this file sets the loop's SignalDispatch.
        return static_cast<SignalHandlers&>(*loop.signal_dispatch());
    }

    /// The table of `loop` if it has one.
    static SignalHandlers* find(EventLoop& loop) noexcept {
        return static_cast<SignalHandlers*>(loop.signal_dispatch());
    }

    /// Sets the user's handler (or proc/'s listener) for `sig`; the first of
    /// the two starts watching the signal. Returns watch_signal's error.
    std::error_code set_handler(int sig, Callback callback) {
        if (std::error_code ec = watch(sig)) return ec;
        entries_[sig].handler = std::make_shared<Callback>(std::move(callback));
        return {};
    }
    std::error_code set_listener(int sig, UniqueFunction<void()> listener) {
        if (std::error_code ec = watch(sig)) return ec;
        entries_[sig].listener = std::make_shared<UniqueFunction<void()>>(std::move(listener));
        return {};
    }

    /// True if a user handler was there.
    bool clear_handler(int sig) noexcept {
        bool had = entries_[sig].handler != nullptr;
        entries_[sig].handler.reset();
        unwatch_if_unused(sig);
        return had;
    }
    void clear_listener(int sig) noexcept {
        entries_[sig].listener.reset();
        unwatch_if_unused(sig);
    }

    void signal_arrived(int sig) override {
        if (sig <= 0 || sig >= NSIG) return;
        Entry& entry = entries_[sig];
        // Nothing here wants it (CONTRACT 202), or a run is already queued.
        if (!entry.used() || entry.queued) return;
        entry.queued = loop_.call_soon([this, sig] { run(sig); });
    }

private:
    struct Entry {
        // shared_ptr: a handler may replace or remove itself while it runs;
        // the run holds a reference so the running callable outlives that.
        std::shared_ptr<Callback> handler;                 // add_signal_handler's
        std::shared_ptr<UniqueFunction<void()>> listener;  // proc/'s own (SIGCHLD)
        Handle queued;  // the run queued for this signal, until it starts
        bool used() const noexcept { return handler || listener; }
    };

    std::error_code watch(int sig) {
        if (entries_[sig].used()) return {};
        return watch_signal(sig, wakeup_fd_);
    }

    void unwatch_if_unused(int sig) noexcept {
        Entry& entry = entries_[sig];
        if (entry.used()) return;
        // A signal that arrived before the removal is not run either.
        entry.queued.cancel();
        entry.queued = Handle();
        unwatch_signal(sig, wakeup_fd_);
    }

    void run(int sig) {
        // From here a new signal queues a new run, even one that arrives
        // while the handler below is running.
        entries_[sig].queued = Handle();
        // Each is read just before its call: the listener may not undo the
        // removal of a handler it does not know of.
        if (auto listener = entries_[sig].listener) (*listener)();
        if (auto handler = entries_[sig].handler) (*handler)();
    }

    void loop_closing() noexcept override {
        for (Entry& entry : entries_) entry = Entry();
        // Before the loop closes its self-pipe: when this returns, no signal
        // handler can still write to that fd.
        unwatch_all_signals(wakeup_fd_);
    }

    EventLoop& loop_;
    const int wakeup_fd_;  // the loop's self-pipe write end: fixed for its life
    std::array<Entry, NSIG> entries_{};
};

// detail::refuse with "<call>(<sig>)" as context, e.g. "add_signal_handler(9):
// signal cannot be caught" (asyncio: "sig 9 cannot be caught").
std::error_code refuse_signal(errc code, const char* call, int sig) {
    char context[64];
    std::snprintf(context, sizeof context, "%s(%d)", call, sig);
    return detail::refuse(code, context);
}

}  // namespace

std::error_code EventLoop::add_signal_handler(int sig, Callback callback) {
    // asyncio's order: the number, then the loop, then sigaction's verdict.
    if (!is_valid_signal(sig)) return refuse_signal(errc::invalid_signal, "add_signal_handler", sig);
    if (is_closed()) return detail::refuse(errc::loop_closed, "add_signal_handler");
    if (!is_catchable_signal(sig)) return refuse_signal(errc::signal_uncatchable, "add_signal_handler", sig);
    if (!callback) return detail::refuse(errc::invalid_argument, "add_signal_handler: a callback is expected");
    std::error_code ec = SignalHandlers::of(*this).set_handler(sig, std::move(callback));
    // sigaction's EINVAL (glibc reserves signals 32 and 33) is asyncio's
    // RuntimeError; other errors are returned as they are (CONTRACT 207).
    if (ec == std::errc::invalid_argument) return refuse_signal(errc::signal_uncatchable, "add_signal_handler", sig);
    return ec;
}

bool EventLoop::remove_signal_handler(int sig) {
    if (!is_valid_signal(sig)) {
        (void)refuse_signal(errc::invalid_signal, "remove_signal_handler", sig);
        return false;
    }
    SignalHandlers* handlers = SignalHandlers::find(*this);
    return handlers != nullptr && handlers->clear_handler(sig);  // SIGKILL: false (CONTRACT 204)
}

namespace detail {

std::error_code add_internal_signal_listener(EventLoop& loop, int sig, UniqueFunction<void()> listener) {
    if (!is_valid_signal(sig) || !is_catchable_signal(sig)) return make_error_code(errc::invalid_signal);
    if (loop.is_closed()) return make_error_code(errc::loop_closed);
    return SignalHandlers::of(loop).set_listener(sig, std::move(listener));
}

void remove_internal_signal_listener(EventLoop& loop, int sig) noexcept {
    if (!is_valid_signal(sig)) return;
    if (SignalHandlers* handlers = SignalHandlers::find(loop)) handlers->clear_listener(sig);
}

}  // namespace detail
}  // namespace evloop
