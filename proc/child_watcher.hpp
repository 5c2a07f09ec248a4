// proc/child_watcher.hpp — learning that a child exited, and reaping it.
//
// Two ways, one interface (asyncio's PidfdChildWatcher and the SIGCHLD
// watchers, CONTRACT 371):
//  - pidfd: pidfd_open(2) gives an fd that becomes readable when the child
//    exits; it is registered with the loop's selector like any reader. No
//    signal involved, and the fd names the process, not a reusable number.
//  - sigchld: where the kernel has no pidfd_open (before Linux 5.3), the
//    loop listens to SIGCHLD through its self-pipe and, on each, calls
//    waitpid(pid, WNOHANG) for each of *its own* children — never
//    waitpid(-1), which would reap children it did not start.
// Either way the child is reaped exactly once, by its loop, on the loop's
// thread, so a pid is never signalled after it was reaped (a reaped pid may
// already belong to another process: asyncio's gh-127049).
// When the loop closes, children still watched are reaped with a blocking
// waitpid (their transports killed them first): no zombie is left.
// Layer: proc. Read next: proc/child_watcher.cpp.
#pragma once

#include <optional>
#include <system_error>

#include "core/callback.hpp"

namespace evloop {

class EventLoop;

/// Which way loops learn of child exits.
enum class ChildWatcherKind : unsigned char {
    automatic,  ///< pidfd where the kernel has it, else sigchld
    pidfd,
    sigchld,
};

/// The way new loops' watchers use (a loop's watcher keeps the way it was
/// created with). For old kernels and for testing both paths.
void set_default_child_watcher(ChildWatcherKind kind) noexcept;
ChildWatcherKind default_child_watcher() noexcept;

namespace detail {

/// asyncio's waitstatus_to_exitcode: the exit status, or -N for signal N.
int returncode_from_wait_status(int status) noexcept;

/// Called once with the child's returncode when it has been reaped
/// (255 if something else reaped it first, with a warning: CONTRACT 213).
using ChildExitCallback = UniqueFunction<void(int returncode)>;

/// Starts watching child `pid` of this process for `loop`: `on_exit` runs
/// as a loop callback once the child has exited and been reaped. Call it on
/// the loop's thread, right after the child was started.
std::error_code watch_child(EventLoop& loop, int pid, ChildExitCallback on_exit);
/// True if child `pid`, watched by `loop`, has exited but was not yet
/// reported (waitid with WNOWAIT: it stays a zombie for the watcher).
bool child_has_exited(EventLoop& loop, int pid) noexcept;
/// The kind `loop`'s watcher uses (creating the watcher if needed).
ChildWatcherKind child_watcher_kind(EventLoop& loop) noexcept;

}  // namespace detail
}  // namespace evloop
