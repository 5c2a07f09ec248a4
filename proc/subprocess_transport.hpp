// proc/subprocess_transport.hpp — UnixSubprocessTransport: the transport of
// one child (asyncio's BaseSubprocessTransport and _UnixSubprocessTransport).
//
// It owns the child's pipe transports (stdin a WritePipeTransport, stdout
// and stderr ReadPipeTransports) whose protocols forward every event to it,
// and hears the child's exit from the loop's child watcher. It turns those
// into the SubprocessProtocol's calls in asyncio's order (CONTRACT 215–219):
// connection_made once every pipe is connected; events that come earlier
// queued and replayed after it, in arrival order; connection_lost once and
// last, after the exit and after every pipe closed.
// Lifetime: as the socket transport — it holds itself until its protocol's
// connection_lost has returned, or until the loop closes (then it kills a
// child still running; the watcher reaps it).
// Layer: proc. Read next: proc/subprocess_transport.cpp, proc/child_watcher.hpp.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/event_loop.hpp"
#include "core/future.hpp"
#include "core/result.hpp"
#include "proc/pipe_transport.hpp"
#include "proc/spawn.hpp"
#include "proc/subprocess.hpp"

namespace evloop::detail {

class UnixSubprocessTransport final : public SubprocessTransport,
                                      private LoopResource,
                                      public std::enable_shared_from_this<UnixSubprocessTransport> {
public:
    /// Takes over a started child: watches it, wraps its pipes, and on later
    /// iterations calls connection_made and then completes `waiter` with
    /// the connection. If the child cannot be watched it is killed and
    /// reaped here and the error returned (nothing is left behind).
    static Result<std::shared_ptr<UnixSubprocessTransport>> make(EventLoop& loop, SpawnedChild child,
                                                                 std::shared_ptr<SubprocessProtocol> protocol,
                                                                 Future<SubprocessConnection> waiter);
    ~UnixSubprocessTransport() override;

    // BaseTransport
    /// Closes the pipes, then kills the child if it still runs (CONTRACT 225–227).
    void close() override;
    bool is_closing() const noexcept override { return closing_; }
    /// "subprocess": the pid (asyncio gives the Popen object, CONTRACT 222).
    ExtraInfo get_extra_info(std::string_view name) const override;
    std::error_code set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
    std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }
    // SubprocessTransport
    int get_pid() const noexcept override { return pid_; }
    std::shared_ptr<Transport> get_pipe_transport(int fd) const override;
    std::optional<int> get_returncode() const noexcept override { return returncode_; }
    std::error_code send_signal(int sig) override;
    std::error_code terminate() override;
    std::error_code kill() override;

    /// "<UnixSubprocessTransport pid=123 running>", for logs and exception contexts.
    std::string describe() const;

private:
    class PipeProtocol;  // what each pipe transport calls; forwards here

    // A protocol call that arrived before connection_made (CONTRACT 216).
    struct Pending {
        enum class Kind : unsigned char { data, pipe_lost, exited, lost } kind;
        int fd = -1;
        std::string data{};
        std::error_code error{};
    };

    UnixSubprocessTransport(EventLoop& loop, int pid, std::shared_ptr<SubprocessProtocol> protocol,
                            Future<SubprocessConnection> waiter);
    void start_pipes(SpawnedChild& child);
    void pipe_connected();
    void connected();
    void pipe_data(int fd, std::string_view data);
    void pipe_lost(int fd, std::error_code error);
    void process_exited(int returncode);
    void try_finish();
    void deliver(const Pending& event);
    void call_connection_lost();
    template <class Call>
    void call_protocol(const char* name, Call&& call);
    void loop_closing() noexcept override;

    EventLoop* loop_;
    int pid_;
    std::shared_ptr<SubprocessProtocol> protocol_;
    std::shared_ptr<UnixSubprocessTransport> self_;  // the live transport keeps itself
    std::optional<Future<SubprocessConnection>> waiter_;  // until connection_made ran
    std::shared_ptr<Transport> pipes_[3];  // stdin, stdout, stderr; null: not a pipe
    bool pipe_lost_[3] = {false, false, false};
    int pipe_count_ = 0;
    int pipes_connected_ = 0;
    std::optional<int> returncode_;
    std::vector<Pending> pending_;  // until connected_
    bool connected_ = false;        // connection_made ran
    bool closing_ = false;          // close() or the loop's close
    bool finished_ = false;         // connection_lost is scheduled (or queued, or done)
    bool gone_ = false;             // connection_lost ran or the loop closed: no process any more
};

}  // namespace evloop::detail
