// platform/signals.hpp — the process-wide half of signal handling: one
// sigaction handler per signal, shared by every loop of the process.
//
// A signal is process-wide; loops are per thread. Each loop that wants a
// signal registers its self-pipe's write end here; the handler installed
// with sigaction writes the signal number, as one byte, to every such fd
// (libuv and Asio fan out the same way; asyncio allows the main thread's
// loop only). The handler takes no lock and allocates nothing: it walks a
// fixed table of slots whose fields are atomics (platform/signals.cpp says
// how a slot is retired safely while a handler may be reading it). It also
// ignores, in a forked child that did not exec, the watches it inherited
// (each watch records the pid that made it), so a child never wakes its
// parent's loop through the inherited pipe (CONTRACT 209); a loop the child
// makes itself watches signals normally.
// Registration and removal take a mutex and are thread-safe.
// Layer: platform. Read next: proc/signal_handlers.cpp (the per-loop half).
#pragma once

#include <system_error>

namespace evloop {

/// True for 1..NSIG-1 (signal.valid_signals()).
bool is_valid_signal(int sig) noexcept;
/// False for SIGKILL and SIGSTOP, which no handler can catch.
bool is_catchable_signal(int sig) noexcept;

/// From now on, signal `sig` writes its number to `wakeup_fd` (a
/// non-blocking pipe's write end). The first watcher of `sig` in the process
/// installs the handler (SA_RESTART: interrupted syscalls restart, CONTRACT
/// 203). Watching twice with the same fd is one watch. Errors: EINVAL for an
/// invalid or uncatchable signal, ENOSPC when every slot is taken, or what
/// sigaction(2) said (the watch is then rolled back, CONTRACT 207).
std::error_code watch_signal(int sig, int wakeup_fd);
/// Stops writing `sig` to `wakeup_fd`. When no fd watches `sig` any more its
/// disposition returns to SIG_DFL (CONTRACT 205). When this returns, no
/// handler still running can write `sig` to `wakeup_fd`.
void unwatch_signal(int sig, int wakeup_fd) noexcept;
/// unwatch_signal for every signal `wakeup_fd` watches (a loop closing).
/// When this returns no handler can write to `wakeup_fd`: the caller may
/// close it.
void unwatch_all_signals(int wakeup_fd) noexcept;

}  // namespace evloop
