// proc/signal_handlers.hpp — the per-loop half of signal handling.
//
// EventLoop::add_signal_handler / remove_signal_handler (declared in
// core/event_loop.hpp) are defined in proc/signal_handlers.cpp over a
// SignalHandlers table the loop owns (its detail::SignalDispatch). A signal
// reaches it this way: the process-wide handler (platform/signals.hpp)
// writes the signal number to the loop's self-pipe; the loop drains the
// pipe and calls signal_arrived(sig); that queues the signal's handler once
// (a burst that arrived within one drain runs it once), and the handler runs
// in a normal iteration on the loop's thread (CONTRACT 197).
// proc/ itself also listens to signals — the child watcher's SIGCHLD — beside
// the user's handler and independently of it: the internal listeners below.
// Layer: proc. Read next: platform/signals.hpp.
#pragma once

#include <system_error>

#include "core/callback.hpp"
#include "core/event_loop.hpp"

namespace evloop::detail {

/// proc/'s own listener for `sig` on `loop` (one per signal; a second call
/// replaces it). `listener` runs on the loop's thread as a loop callback
/// after the signal arrived, whether or not the user has a handler for
/// `sig`, and the user's add/remove_signal_handler never disturb it.
std::error_code add_internal_signal_listener(EventLoop& loop, int sig, UniqueFunction<void()> listener);
/// Removes it; the disposition returns to SIG_DFL when nothing else
/// (user handler, another loop) watches `sig`.
void remove_internal_signal_listener(EventLoop& loop, int sig) noexcept;

}  // namespace evloop::detail
