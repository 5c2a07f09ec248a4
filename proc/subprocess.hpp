// proc/subprocess.hpp — subprocesses: loop.subprocess_exec / subprocess_shell,
// the SubprocessProtocol they call back and the SubprocessTransport that
// drives a child (asyncio's base_subprocess.py and unix_events.py).
//
// A child is started by proc/spawn.cpp (fork and exec, with the child's end
// of each pipe dup'ed onto 0, 1, 2); its stdin becomes a WritePipeTransport
// and its stdout / stderr ReadPipeTransports whose protocols forward to the
// SubprocessProtocol (pipe_data_received(fd, …), pipe_connection_lost(fd, …));
// proc/child_watcher.cpp reports its exit (process_exited). The order is
// asyncio's (CONTRACT 215–219): connection_made after every pipe is
// connected; for each fd every pipe_data_received before its
// pipe_connection_lost; connection_lost once and last, after the process
// exited and every pipe closed.
// Layer: proc. Read next: proc/subprocess_transport.cpp, proc/spawn.hpp.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "net/protocol.hpp"
#include "net/transport.hpp"

namespace evloop {

class SubprocessTransport;

/// Where one of the child's standard streams goes (asyncio's PIPE, DEVNULL,
/// None, an fd, STDOUT).
class Stdio {
public:
    enum class Kind : unsigned char {
        pipe,       ///< a pipe to the parent, seen through a pipe transport
        devnull,    ///< /dev/null
        inherit,    ///< the parent's own stream (asyncio's None)
        fd,         ///< an fd of the parent's, dup'ed (the caller keeps it)
        to_stdout,  ///< stderr only: wherever stdout goes (asyncio's STDOUT)
    };
    static constexpr Stdio pipe() noexcept { return Stdio(Kind::pipe, -1); }
    static constexpr Stdio devnull() noexcept { return Stdio(Kind::devnull, -1); }
    static constexpr Stdio inherit() noexcept { return Stdio(Kind::inherit, -1); }
    static constexpr Stdio from_fd(int fd) noexcept { return Stdio(Kind::fd, fd); }
    static constexpr Stdio to_stdout() noexcept { return Stdio(Kind::to_stdout, -1); }

    constexpr Kind kind() const noexcept { return kind_; }
    constexpr int fd() const noexcept { return fd_; }

private:
    constexpr Stdio(Kind kind, int fd) noexcept : kind_(kind), fd_(fd) {}
    Kind kind_;
    int fd_;
};

/// subprocess_exec's keyword arguments. `stdin`, `stdout` and `stderr` are
/// macros in C's <stdio.h>, hence std_in, std_out, std_err.
struct SubprocessOptions {
    Stdio std_in = Stdio::pipe();
    Stdio std_out = Stdio::pipe();
    Stdio std_err = Stdio::pipe();
    /// The child's working directory (empty: the parent's).
    std::string cwd{};
    /// The child's whole environment, "NAME=value" each (nullopt: the parent's).
    /// PATH is searched in this environment's PATH when it has one.
    std::optional<std::vector<std::string>> env{};
    /// Close every fd but 0, 1, 2 and pass_fds in the child (asyncio's default).
    bool close_fds = true;
    /// fds the child keeps open under the same numbers (even close-on-exec ones).
    std::vector<int> pass_fds{};
    /// setsid() in the child: a new session and process group.
    bool start_new_session = false;
};

/// What a subprocess transport calls (asyncio.SubprocessProtocol).
class SubprocessProtocol : public BaseProtocol {
public:
    SubprocessProtocol() noexcept : BaseProtocol(Kind::subprocess) {}
    /// The child runs and every pipe is connected; `transport` is valid
    /// until connection_lost returns.
    virtual void connection_made(SubprocessTransport& transport) { (void)transport; }
    /// The child wrote `data` to its stdout (fd 1) or stderr (fd 2). `data`
    /// is valid only during the call.
    virtual void pipe_data_received(int fd, std::string_view data) {
        (void)fd;
        (void)data;
    }
    /// The pipe for `fd` (0, 1 or 2) closed: EOF, a close, or `error`.
    virtual void pipe_connection_lost(int fd, std::error_code error) {
        (void)fd;
        (void)error;
    }
    /// The child exited; get_returncode() now has its status.
    virtual void process_exited() {}
};

/// Makes the protocol for one subprocess: any callable returning a
/// std::shared_ptr to a SubprocessProtocol (or a subclass).
class SubprocessProtocolFactory {
public:
    SubprocessProtocolFactory() = default;
    template <class F, class R = std::invoke_result_t<F&>,
              class = std::enable_if_t<std::is_convertible_v<R, std::shared_ptr<SubprocessProtocol>>>>
    SubprocessProtocolFactory(F fn)  // NOLINT: implicit, so a lambda can be passed directly
        : fn_([fn = std::move(fn)]() mutable -> std::shared_ptr<SubprocessProtocol> { return fn(); }) {}

    explicit operator bool() const noexcept { return static_cast<bool>(fn_); }
    std::shared_ptr<SubprocessProtocol> operator()() const { return fn_ ? fn_() : nullptr; }

private:
    std::function<std::shared_ptr<SubprocessProtocol>()> fn_;
};

/// The transport of one child (asyncio.SubprocessTransport).
class SubprocessTransport : public virtual BaseTransport {
public:
    /// The child's pid.
    virtual int get_pid() const noexcept = 0;
    /// The pipe transport for fd 0 (stdin, a write transport), 1 or 2 (read
    /// transports), or nullptr when that stream is not a pipe (CONTRACT 223, 224).
    virtual std::shared_ptr<Transport> get_pipe_transport(int fd) const = 0;
    /// nullopt until the child exited; then its exit status, or -N when
    /// signal N killed it (CONTRACT 212, 220).
    virtual std::optional<int> get_returncode() const noexcept = 0;
    /// Sends `sig`. No-op once the child exited and before connection_lost;
    /// ESRCH after connection_lost (CONTRACT 228). Never signals a pid the
    /// watcher already reaped (it may belong to another process by then).
    virtual std::error_code send_signal(int sig) = 0;
    /// send_signal(SIGTERM).
    virtual std::error_code terminate() = 0;
    /// send_signal(SIGKILL).
    virtual std::error_code kill() = 0;
};

/// What subprocess_exec / subprocess_shell complete with (asyncio's
/// (transport, protocol)). Holding it keeps both objects alive.
struct SubprocessConnection {
    std::shared_ptr<SubprocessTransport> transport{};
    std::shared_ptr<SubprocessProtocol> protocol{};

    /// The protocol as the type the factory made (unchecked, no RTTI).
    template <class P>
    P& protocol_as() const noexcept { return static_cast<P&>(*protocol); }
};

}  // namespace evloop
