// proc/subprocess_transport.cpp — the subprocess transport: the pipes'
// events and the child's exit become SubprocessProtocol calls in asyncio's
// order, and close / kill / send_signal never touch a reaped pid.
//
// Events reach the protocol as they happen, from the pipe transport's or
// the watcher's loop callback (asyncio adds a call_soon per event; a view
// of the pipe's read buffer cannot wait for one, and the order is the same).
// Before connection_made they are copied into pending_ and replayed right
// after it (CONTRACT 216). An exception escaping a protocol callback is
// reported to the exception handler and changes nothing else, as in
// asyncio, where each of these calls is a loop callback of its own.
// Layer: proc. Read next: proc/subprocess_exec.cpp.
#include "proc/subprocess_transport.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cstdio>

#include "core/log.hpp"
#include "proc/child_watcher.hpp"

namespace evloop::detail {

template <class Call>
void UnixSubprocessTransport::call_protocol(const char* name, Call&& call) {
#if EVLOOP_EXCEPTIONS
    try {
        call();
    } catch (...) {
        char message[96];
        std::snprintf(message, sizeof message, "Exception in callback SubprocessProtocol.%s()", name);
        ExceptionContext context{.message = message};
        context.exception = std::current_exception();
        context.transport = describe();
        loop_->call_exception_handler(context);
    }
#else
    (void)name;
    call();
#endif
}

// The protocol of one pipe transport: forwards to the subprocess transport
// (asyncio's ReadSubprocessPipeProto / WriteSubprocessPipeProto). It holds
// the transport weakly: a pipe may outlive it when the loop closes.
class UnixSubprocessTransport::PipeProtocol final : public Protocol {
public:
    PipeProtocol(std::weak_ptr<UnixSubprocessTransport> owner, int fd) : owner_(std::move(owner)), fd_(fd) {}
    void connection_made(Transport&) override {
        if (auto owner = owner_.lock()) owner->pipe_connected();
    }
    void data_received(std::string_view data) override {
        if (auto owner = owner_.lock()) owner->pipe_data(fd_, data);
    }
    void connection_lost(std::error_code error) override {
        if (auto owner = owner_.lock()) owner->pipe_lost(fd_, error);
    }
    // stdin's flow control goes straight to the user's protocol.
    void pause_writing() override {
        if (auto owner = owner_.lock(); owner && owner->protocol_)
            owner->call_protocol("pause_writing", [&] { owner->protocol_->pause_writing(); });
    }
    void resume_writing() override {
        if (auto owner = owner_.lock(); owner && owner->protocol_)
            owner->call_protocol("resume_writing", [&] { owner->protocol_->resume_writing(); });
    }

private:
    std::weak_ptr<UnixSubprocessTransport> owner_;
    int fd_;
};

Result<std::shared_ptr<UnixSubprocessTransport>> UnixSubprocessTransport::make(
    EventLoop& loop, SpawnedChild child, std::shared_ptr<SubprocessProtocol> protocol,
    Future<SubprocessConnection> waiter) {
    std::shared_ptr<UnixSubprocessTransport> transport(
        new UnixSubprocessTransport(loop, child.pid, std::move(protocol), std::move(waiter)));
    // Watched first: the watcher (made on first use) is then attached to the
    // loop before the transport, so the loop's close(), which walks newest
    // first, kills the child (transport) before reaping it (watcher).
    std::weak_ptr<UnixSubprocessTransport> weak = transport;
    if (std::error_code ec = watch_child(loop, child.pid, [weak](int returncode) {
            if (auto self = weak.lock()) self->process_exited(returncode);
        })) {
        (void)::kill(child.pid, SIGKILL);  // CONTRACT 231: killed and reaped, its pipes closed
        int status = 0;
        (void)retry_eintr([&] { return ::waitpid(child.pid, &status, 0); });
        return ec;
    }
    transport->self_ = transport;
    loop.attach_resource(*transport);
    transport->start_pipes(child);
    return transport;
}

UnixSubprocessTransport::UnixSubprocessTransport(EventLoop& loop, int pid, std::shared_ptr<SubprocessProtocol> protocol,
                                                 Future<SubprocessConnection> waiter)
    : loop_(&loop), pid_(pid), protocol_(std::move(protocol)), waiter_(std::move(waiter)) {}

UnixSubprocessTransport::~UnixSubprocessTransport() = default;

void UnixSubprocessTransport::start_pipes(SpawnedChild& child) {
    Fd* ends[3] = {&child.stdin_pipe, &child.stdout_pipe, &child.stderr_pipe};
    for (int fd = 0; fd < 3; ++fd) {
        if (!*ends[fd]) continue;
        auto protocol = std::make_shared<PipeProtocol>(weak_from_this(), fd);
        if (fd == 0)
            pipes_[fd] = WritePipeTransport::make(*loop_, std::move(*ends[fd]), std::move(protocol));
        else
            pipes_[fd] = ReadPipeTransport::make(*loop_, std::move(*ends[fd]), std::move(protocol));
        ++pipe_count_;
    }
    if (pipe_count_ == 0) loop_->call_soon([this] { connected(); });
}

// ---- events -----------------------------------------------------------------

void UnixSubprocessTransport::pipe_connected() {
    // connection_made waits for every pipe (CONTRACT 215), then comes from a
    // callback of its own, as asyncio's call_soon.
    if (++pipes_connected_ == pipe_count_) loop_->call_soon([this] { connected(); });
}

void UnixSubprocessTransport::connected() {
    connected_ = true;
    if (protocol_) call_protocol("connection_made", [&] { protocol_->connection_made(*this); });
    // What came before, in arrival order (CONTRACT 216). A protocol call
    // cannot add to the list: connected_ is set.
    std::vector<Pending> pending = std::move(pending_);
    pending_.clear();
    for (const Pending& event : pending) deliver(event);
    if (waiter_ && !waiter_->done()) (void)waiter_->set_result(SubprocessConnection{shared_from_this(), protocol_});
    waiter_.reset();
}

void UnixSubprocessTransport::pipe_data(int fd, std::string_view data) {
    if (!connected_) return pending_.push_back({Pending::Kind::data, fd, std::string(data), {}});
    if (protocol_) call_protocol("pipe_data_received", [&] { protocol_->pipe_data_received(fd, data); });
}

void UnixSubprocessTransport::pipe_lost(int fd, std::error_code error) {
    pipe_lost_[fd] = true;
    Pending event{Pending::Kind::pipe_lost, fd, {}, error};
    if (!connected_)
        pending_.push_back(std::move(event));
    else
        deliver(event);
    try_finish();
}

void UnixSubprocessTransport::process_exited(int returncode) {
    if (loop_->get_debug()) log(LogLevel::info, "%s exited with return code %d", describe().c_str(), returncode);
    returncode_ = returncode;  // get_returncode() has it from now (CONTRACT 220)
    Pending event{Pending::Kind::exited, -1, {}, {}};
    if (!connected_)
        pending_.push_back(std::move(event));
    else
        deliver(event);
    try_finish();
}

void UnixSubprocessTransport::try_finish() {
    // connection_lost once and last: after the exit and every pipe's loss
    // (CONTRACT 219). A grandchild holding stdout open delays it.
    if (!returncode_ || finished_) return;
    for (int fd = 0; fd < 3; ++fd)
        if (pipes_[fd] && !pipe_lost_[fd]) return;
    finished_ = true;
    if (!connected_)
        pending_.push_back({Pending::Kind::lost, -1, {}, {}});
    else
        deliver({Pending::Kind::lost, -1, {}, {}});
}

void UnixSubprocessTransport::deliver(const Pending& event) {
    if (!protocol_) return;
    switch (event.kind) {
        case Pending::Kind::data:
            call_protocol("pipe_data_received", [&] { protocol_->pipe_data_received(event.fd, event.data); });
            break;
        case Pending::Kind::pipe_lost:
            call_protocol("pipe_connection_lost", [&] { protocol_->pipe_connection_lost(event.fd, event.error); });
            break;
        case Pending::Kind::exited:
            call_protocol("process_exited", [&] { protocol_->process_exited(); });
            break;
        case Pending::Kind::lost:
            // From a callback of its own: a protocol may close anything from
            // process_exited or pipe_connection_lost.
            loop_->call_soon([this] { call_connection_lost(); });
            break;
    }
}

void UnixSubprocessTransport::call_connection_lost() {
    // Keeps *this alive to the end; letting go is the last thing done here.
    std::shared_ptr<UnixSubprocessTransport> keep = std::move(self_);
    std::shared_ptr<SubprocessProtocol> protocol = std::move(protocol_);
    gone_ = true;  // from now on, send_signal says ESRCH (CONTRACT 228)
    LoopResource::unlink();
    if (protocol) call_protocol("connection_lost", [&] { protocol->connection_lost({}); });
}

// ---- the child ----------------------------------------------------------------

void UnixSubprocessTransport::close() {
    if (closing_) return;  // CONTRACT 227
    closing_ = true;
    for (const std::shared_ptr<Transport>& pipe : pipes_)
        if (pipe) pipe->close();
    // Killed only if it still runs: an exited child not yet reported by the
    // watcher keeps its returncode (CONTRACT 225, 226). waitid(WNOWAIT)
    // looks without reaping, so the pid stays ours to signal.
    if (!returncode_ && !gone_ && !child_has_exited(*loop_, pid_)) {
        if (loop_->get_debug()) log(LogLevel::warning, "Close running child process: kill %s", describe().c_str());
        (void)::kill(pid_, SIGKILL);
    }
}

std::error_code UnixSubprocessTransport::send_signal(int sig) {
    // After connection_lost the pid may belong to another process (CONTRACT 228).
    if (gone_) return std::make_error_code(std::errc::no_such_process);
    // Exited, reported or not: nothing to signal, and no error (Popen's).
    if (returncode_ || child_has_exited(*loop_, pid_)) return {};
    if (::kill(pid_, sig) != 0 && errno != ESRCH) return last_error();
    return {};
}

std::error_code UnixSubprocessTransport::terminate() { return send_signal(SIGTERM); }

std::error_code UnixSubprocessTransport::kill() { return send_signal(SIGKILL); }

void UnixSubprocessTransport::loop_closing() noexcept {
    // The loop closes with the child's transport open (CONTRACT 232): the
    // child is killed if it runs, and the watcher, closed after us, reaps
    // it. The pipes released their fds already (they are newer resources).
    // Nothing calls back into the protocol.
    if (!closing_ && loop_->get_debug()) log(LogLevel::warning, "unclosed transport %s", describe().c_str());
    closing_ = true;
    if (!returncode_ && !gone_ && !child_has_exited(*loop_, pid_)) (void)::kill(pid_, SIGKILL);
    gone_ = true;
    finished_ = true;
    protocol_.reset();
    pending_.clear();
    waiter_.reset();
    std::shared_ptr<UnixSubprocessTransport> keep = std::move(self_);  // may destroy *this
}

// ---- introspection ----------------------------------------------------------------

std::shared_ptr<Transport> UnixSubprocessTransport::get_pipe_transport(int fd) const {
    return fd >= 0 && fd < 3 ? pipes_[fd] : nullptr;  // CONTRACT 223, 224
}

ExtraInfo UnixSubprocessTransport::get_extra_info(std::string_view name) const {
    if (name == "subprocess") return pid_;
    return {};
}

std::error_code UnixSubprocessTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
    if (!protocol || protocol->kind() != BaseProtocol::Kind::subprocess)
        return detail::refuse(errc::wrong_protocol, "SubprocessTransport::set_protocol");
    protocol_ = std::static_pointer_cast<SubprocessProtocol>(std::move(protocol));
    return {};
}

std::string UnixSubprocessTransport::describe() const {
    char text[96];
    if (returncode_)
        std::snprintf(text, sizeof text, "<UnixSubprocessTransport pid=%d returncode=%d%s>", pid_, *returncode_,
                      closing_ ? " closing" : "");
    else
        std::snprintf(text, sizeof text, "<UnixSubprocessTransport pid=%d running%s>", pid_, closing_ ? " closing" : "");
    return text;
}

}  // namespace evloop::detail
