// proc/spawn.hpp — starting a child process: vfork, then in the child set up
// fds 0, 1, 2, the working directory, the session, and exec.
//
// Everything the child needs (argv, envp, the resolved program path, the fd
// plan) is prepared in the parent before fork: between fork and exec the
// child only makes async-signal-safe system calls and ends in execve or
// _exit — it never allocates, never runs the parent's atexit handlers, its
// loops or its signal handlers. An exec that fails is reported through a
// close-on-exec pipe: the parent reads the child's errno from it (EOF means
// exec succeeded) and returns that error; the failed child is reaped.
// proc/spawn.cpp explains why fork/exec rather than posix_spawn.
// Layer: proc. Read next: proc/spawn.cpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "platform/fd.hpp"
#include "proc/subprocess.hpp"

namespace evloop::detail {

/// A started child and the parent's ends of its pipes (non-blocking,
/// close-on-exec; empty where that stream is not Stdio::pipe()).
struct SpawnedChild {
    int pid = -1;
    Fd stdin_pipe;   // write end
    Fd stdout_pipe;  // read end
    Fd stderr_pipe;  // read end
};

/// Starts `program` (searched in PATH — the one in options.env if it has
/// one — unless it contains a '/') with argv `argv` (argv[0] included).
/// Errors: the errno of the failed step (ENOENT, EACCES, ENOEXEC from exec;
/// ENOTDIR/ENOENT from chdir; EBADF for a bad Stdio::from_fd or pass_fds
/// entry), or errc::invalid_argument for an empty program or argv, or
/// Stdio::to_stdout() given for stdin or stdout. Nothing is left behind on
/// failure: no fd, no zombie.
Result<SpawnedChild> spawn_child(std::string_view program, const std::vector<std::string>& argv,
                                 const SubprocessOptions& options);

/// Tests only: false makes close_fds take the fallback of kernels without
/// close_range(2) (the child walks /proc/self/fd), so both paths are tested.
void set_close_range_for_testing(bool enabled) noexcept;

}  // namespace evloop::detail
