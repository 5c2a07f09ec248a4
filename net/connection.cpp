// net/connection.cpp — create_connection, create_unix_connection and
// connect_accepted_socket: from a host name (or a path, or a socket) to a
// SocketTransport whose connection_made has run.
//
// One Connector object carries a call through its stages, each started by
// a loop callback:
//   resolve (loop.getaddrinfo, remote and local in parallel)
//   → race the addresses (net/staggered.hpp; one after another without a
//     happy eyeballs delay): socket(), bind(), connect(); EINPROGRESS waits
//     for writability, then SO_ERROR says how it went
//   → call the protocol factory, make the transport, wait for its waiter
//     (connection_made ran) → complete the future.
// The Connector keeps itself alive (self_) until it finishes; every callback
// holds it weakly and takes a strong reference for its duration, so no
// callback keeps a finished or cancelled call alive. Cancelling the returned
// future closes whatever exists at that moment: the sockets still
// connecting, or the transport (CONTRACT 129, 141).
// Layer: net. Read next: net/staggered.cpp, net/socket_transport.cpp.
#include "net/connection.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <utility>

#include "core/log.hpp"
#include "net/dns.hpp"
#include "net/socket_transport.hpp"
#include "net/staggered.hpp"
#include "platform/fd.hpp"

namespace evloop {

std::string ConnectFailure::to_string() const {
    return "connect to " + address.to_string() + " failed: " + error.message();
}

std::string describe_failures(const std::vector<ConnectFailure>& failures) {
    if (failures.size() == 1) return failures.front().to_string();
    std::string text;
    for (const ConnectFailure& failure : failures) text += (text.empty() ? "Multiple exceptions: " : ", ") + failure.to_string();
    return text;
}

namespace {

// asyncio compares the errors' str(), whose text names the address, so two
// refused addresses make "Multiple exceptions". Error codes name no
// address: equal codes give that code (CONTRACT 127), and options.failures
// names the addresses.
std::error_code combine_errors(const std::vector<std::error_code>& errors) {
    std::error_code first;
    for (std::error_code error : errors) {
        if (!error) continue;
        if (!first)
            first = error;
        else if (error != first)
            return make_error_code(errc::multiple_errors);
    }
    return first;
}

Future<Connection> failed(EventLoop& loop, std::error_code error) {
    Future<Connection> future(loop);
    (void)future.set_error(error);
    return future;
}

// A closed loop runs no callback, so nothing could ever complete the call.
std::error_code check_open(EventLoop& loop, const char* what) {
    return loop.is_closed() ? detail::refuse(errc::loop_closed, what) : std::error_code();
}

// SO_TYPE must be SOCK_STREAM (CONTRACT 122, 314), and AF_UNIX when asked
// (307). Refused with asyncio's message, or the getsockopt error (EBADF,
// ENOTSOCK) for something that is not an open socket.
std::error_code check_stream_socket(int fd, bool unix_only) {
    int type = 0;
    socklen_t size = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0) return last_error();
    int family = AF_UNSPEC;
    if (unix_only) {
        Result<SocketAddress> local = local_address(fd);
        if (!local) return local.error();
        family = local->family();
    }
    if (type == SOCK_STREAM && (!unix_only || family == AF_UNIX)) return set_nonblocking(fd);  // CONTRACT 125
    std::string message = unix_only ? "A UNIX Domain Stream Socket was expected, got family=" + std::to_string(family) + " "
                                    : "A Stream Socket was expected, got ";
    return detail::refuse(errc::invalid_argument, message + "type=" + std::to_string(type));
}

class Connector final : public std::enable_shared_from_this<Connector>, private detail::LoopResource {
public:
    static std::shared_ptr<Connector> make(EventLoop& loop, ProtocolFactory factory, const ConnectionOptions& options) {
        std::shared_ptr<Connector> connector(new Connector(loop, std::move(factory), options));
        connector->self_ = connector;
        loop.attach_resource(*connector);
        connector->result_.add_done_callback([weak = connector->weak_from_this()](Future<Connection>& future) {
            if (auto self = weak.lock(); self && future.cancelled()) self->cancel();
        });
        return connector;
    }
    Future<Connection> result() const { return result_; }
    void resolve(std::string_view host, int port, const ConnectionOptions& options);
    void connect(std::vector<AddrInfo> remotes, std::optional<std::vector<AddrInfo>> locals);
    /// Wraps an already connected socket, from a callback of its own.
    void wrap(Fd sock);

private:
    struct Attempt {
        Fd fd;
        bool watching = false;  // a writer waits for the connect to finish
    };

    Connector(EventLoop& loop, ProtocolFactory factory, const ConnectionOptions& options)
        : loop_(&loop), factory_(std::move(factory)), result_(loop), failures_(options.failures),
          delay_(options.happy_eyeballs_delay) {}

    void lookup_done();
    void start_attempt(std::size_t index);
    std::error_code open_socket(const AddrInfo& remote, Attempt& attempt);
    void connect_ready(std::size_t index);
    void attempt_done(std::size_t index, std::error_code error);
    void close_attempt(std::size_t index);
    void race_over(std::optional<std::size_t> winner, std::vector<std::error_code> errors);
    void make_transport(Fd sock);
    void transport_ready();
    void cancel();
    void fail(std::error_code error);
    void finish();
    void loop_closing() noexcept override;

    template <class F>
    auto weakly(F fn) {
        return [weak = weak_from_this(), fn = std::move(fn)](auto&&... args) mutable {
            if (std::shared_ptr<Connector> self = weak.lock(); self && !self->finished_) fn(*self, args...);
        };
    }

    EventLoop* loop_;
    ProtocolFactory factory_;
    Future<Connection> result_;
    std::vector<ConnectFailure>* failures_;
    std::optional<double> delay_;
    std::shared_ptr<Connector> self_;  // alive until finish()
    bool finished_ = false;

    std::optional<Future<std::vector<AddrInfo>>> remote_lookup_, local_lookup_;
    std::vector<AddrInfo> remotes_;
    std::optional<std::vector<AddrInfo>> locals_;
    std::vector<Attempt> attempts_;
    std::vector<std::error_code> errors_;  // per attempt, once the race is over
    std::optional<StaggeredRace> race_;

    Fd pending_sock_;  // wrap(): the socket until the factory is called
    std::optional<Future<void>> waiter_;
    std::shared_ptr<SocketTransport> transport_;
    std::shared_ptr<StreamProtocol> protocol_;
};

void Connector::resolve(std::string_view host, int port, const ConnectionOptions& options) {
    AddrInfoOptions hints{.family = options.family, .type = SOCK_STREAM, .protocol = options.protocol,
                          .flags = options.flags};
    remote_lookup_ = loop_->getaddrinfo(host, port, hints);
    if (options.local_host || options.local_port != 0) {
        // Resolved with the same family, type and flags (CONTRACT 130); a
        // port alone means the wildcard address (AI_PASSIVE).
        std::string_view local_host = options.local_host ? std::string_view(*options.local_host) : std::string_view();
        if (local_host.empty()) hints.flags |= AI_PASSIVE;
        local_lookup_ = loop_->getaddrinfo(local_host, options.local_port, hints);
    }
    remote_lookup_->add_done_callback(weakly([](Connector& self, auto&) { self.lookup_done(); }));
    if (local_lookup_) local_lookup_->add_done_callback(weakly([](Connector& self, auto&) { self.lookup_done(); }));
}

void Connector::lookup_done() {
    // Called once per lookup: the last one to finish goes on.
    if (!remote_lookup_ || !remote_lookup_->done() || (local_lookup_ && !local_lookup_->done())) return;
    Result<std::vector<AddrInfo>> remotes = remote_lookup_->take_result();
    std::optional<Result<std::vector<AddrInfo>>> found;
    if (local_lookup_) found.emplace(local_lookup_->take_result());
    remote_lookup_.reset();
    local_lookup_.reset();
    if (!remotes) return fail(remotes.error());  // resolver errors unchanged (CONTRACT 113)
    std::optional<std::vector<AddrInfo>> locals;
    if (found) {
        if (!*found) return fail(found->error());
        locals = std::move(**found);
    }
    connect(std::move(*remotes), std::move(locals));
}

void Connector::connect(std::vector<AddrInfo> remotes, std::optional<std::vector<AddrInfo>> locals) {
    // asyncio: OSError('getaddrinfo() returned empty list') for either (CONTRACT 118, 132).
    if (remotes.empty() || (locals && locals->empty())) return fail(make_error_code(errc::getaddrinfo_empty));
    remotes_ = std::move(remotes);
    locals_ = std::move(locals);
    attempts_.resize(remotes_.size());
    race_.emplace(
        *loop_, remotes_.size(), delay_, [this](std::size_t i) { start_attempt(i); },
        [this](std::size_t i) { close_attempt(i); },
        [this](std::optional<std::size_t> winner, std::vector<std::error_code> errors) {
            race_over(winner, std::move(errors));
        });
    race_->start();
}

std::error_code Connector::open_socket(const AddrInfo& remote, Attempt& attempt) {
    attempt.fd.reset(::socket(remote.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, remote.protocol));
    if (!attempt.fd) return last_error();
    if (!locals_) return {};
    // The first local address of the remote's family that binds; other
    // families are skipped; when all fail, the last bind error (CONTRACT 130–133).
    std::error_code bind_error = make_error_code(errc::no_matching_local_address);
    for (const AddrInfo& local : *locals_) {
        if (local.family != remote.family) continue;
        if (::bind(attempt.fd.get(), local.address.data(), local.address.size()) == 0) return {};
        bind_error = last_error();
    }
    return bind_error;
}

void Connector::start_attempt(std::size_t index) {
    Attempt& attempt = attempts_[index];
    const SocketAddress& address = remotes_[index].address;
    std::error_code error = open_socket(remotes_[index], attempt);
    if (!error && ::connect(attempt.fd.get(), address.data(), address.size()) != 0) {
        // EINPROGRESS: TCP's handshake goes on in the background (EINTR too,
        // as asyncio's sock_connect). EAGAIN from an AF_UNIX connect means
        // the listener's backlog is full and nothing was queued: a writable
        // event would only report the still unconnected socket, and the
        // kernel has no event for "the backlog has room", so it fails with
        // EAGAIN and the caller may retry. Everything else is a failure.
        if (errno == EINPROGRESS || errno == EINTR) {
            error = loop_->add_writer(attempt.fd.get(), weakly([index](Connector& self) { self.connect_ready(index); }));
            if (!error) {
                attempt.watching = true;
                return;
            }
        } else {
            error = last_error();
        }
    }
    // Done already (connected at once, as Unix sockets are, or failed): the
    // race hears it from a callback of its own.
    loop_->call_soon(weakly([index, error](Connector& self) { self.attempt_done(index, error); }));
}

void Connector::connect_ready(std::size_t index) {
    Attempt& attempt = attempts_[index];
    int error = 0;
    socklen_t size = sizeof error;
    if (::getsockopt(attempt.fd.get(), SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
    // Connect failure errno kept, e.g. ECONNREFUSED (CONTRACT 128).
    attempt_done(index, error ? std::error_code(error, std::system_category()) : std::error_code());
}

void Connector::attempt_done(std::size_t index, std::error_code error) {
    if (!race_->running(index)) return;  // cancelled meanwhile; its socket is closed
    if (attempts_[index].watching) {
        (void)loop_->remove_writer(attempts_[index].fd.get());
        attempts_[index].watching = false;
    }
    if (error) close_attempt(index);  // each failed socket is closed (CONTRACT 126)
    race_->attempt_finished(index, error);
}

void Connector::close_attempt(std::size_t index) {
    Attempt& attempt = attempts_[index];
    // The watch goes before the fd: a reused fd number must not inherit it.
    if (attempt.watching) (void)loop_->remove_writer(attempt.fd.get());
    attempt.watching = false;
    attempt.fd.reset();
}

void Connector::race_over(std::optional<std::size_t> winner, std::vector<std::error_code> errors) {
    errors_ = std::move(errors);
    if (!winner) return fail(combine_errors(errors_));  // CONTRACT 127, 137
    make_transport(std::move(attempts_[*winner].fd));
}

void Connector::wrap(Fd sock) {
    pending_sock_ = std::move(sock);
    // From a callback, as asyncio's coroutine runs the factory only once awaited.
    loop_->call_soon(weakly([](Connector& self) { self.make_transport(std::move(self.pending_sock_)); }));
}

void Connector::make_transport(Fd sock) {
    if (result_.done()) return finish();  // cancelled meanwhile: `sock` closes here (CONTRACT 129)
    // Connected, no transport yet: the factory's moment (CONTRACT 138).
    std::shared_ptr<StreamProtocol> protocol;
#if EVLOOP_EXCEPTIONS
    try {
        protocol = factory_();
    } catch (...) {
        (void)result_.set_exception(std::current_exception());
        return finish();
    }
#else
    protocol = factory_();
#endif
    if (!protocol) return fail(make_error_code(errc::invalid_argument));  // the factory made no protocol
    protocol_ = protocol;
    waiter_.emplace(*loop_);
    // The waiter is set right after connection_made (CONTRACT 139); a
    // connection_lost scheduled inside connection_made runs before it (140).
    transport_ = SocketTransport::make(*loop_, std::move(sock), std::move(protocol), &*waiter_);
    waiter_->add_done_callback(weakly([](Connector& self, auto&) { self.transport_ready(); }));
}

void Connector::transport_ready() {
    Result<void> ready = waiter_->result();
    if (result_.done() || !ready) {
        transport_->close();  // the waiter failed or the call was cancelled (CONTRACT 141)
        if (!ready) return fail(ready.error());
        return finish();
    }
    (void)result_.set_result(Connection{transport_, protocol_});
    finish();
}

void Connector::cancel() {
    if (remote_lookup_) remote_lookup_->cancel();
    if (local_lookup_) local_lookup_->cancel();
    if (race_) {
        race_->cancel();  // closes every socket still connecting (CONTRACT 129)
        if (errors_.empty()) errors_ = race_->errors();  // what failed before the cancel
    }
    pending_sock_.reset();
    if (transport_) transport_->close();  // CONTRACT 141
    finish();
}

void Connector::fail(std::error_code error) {
    (void)result_.set_error(error);
    if (loop_->get_debug()) {
        std::vector<ConnectFailure> list;
        for (std::size_t i = 0; i < errors_.size(); ++i)
            if (errors_[i]) list.push_back({remotes_[i].address, errors_[i]});
        log(LogLevel::debug, "create_connection failed: %s (%s)", error.message().c_str(),
            describe_failures(list).c_str());
    }
    finish();
}

void Connector::finish() {
    if (finished_) return;
    finished_ = true;
    if (failures_) {
        // Attempts that failed, in the order tried.
        for (std::size_t i = 0; i < errors_.size(); ++i)
            if (errors_[i]) failures_->push_back({remotes_[i].address, errors_[i]});
    }
    unlink();
    self_.reset();  // the callback that got here holds a strong reference
}

void Connector::loop_closing() noexcept {
    // The loop forgets every watch and callback; only the fds are left to close.
    finished_ = true;
    for (Attempt& attempt : attempts_) {
        attempt.watching = false;
        attempt.fd.reset();
    }
    pending_sock_.reset();
    std::shared_ptr<Connector> keep = std::move(self_);  // may destroy *this
}

}  // namespace

Future<Connection> detail::connect_to_addresses(EventLoop& loop, ProtocolFactory factory,
                                                std::vector<AddrInfo> remotes,
                                                std::optional<std::vector<AddrInfo>> locals,
                                                const ConnectionOptions& options) {
    if (std::error_code error = check_open(loop, "create_connection")) return failed(loop, error);
    std::shared_ptr<Connector> connector = Connector::make(loop, std::move(factory), options);
    connector->connect(std::move(remotes), std::move(locals));
    return connector->result();
}

Future<Connection> EventLoop::create_connection(ProtocolFactory factory, std::string_view host, int port,
                                                const ConnectionOptions& options) {
    Fd sock(options.sock);  // ours now (if given), closed on every failure
    if (std::error_code error = check_open(*this, "create_connection")) return failed(*this, error);
    if (sock) {
        if (!host.empty() || port != 0)
            return failed(*this, detail::refuse(errc::invalid_argument,
                                                "host/port and sock can not be specified at the same time"));
        if (std::error_code error = check_stream_socket(sock.get(), false)) return failed(*this, error);
        std::shared_ptr<Connector> connector = Connector::make(*this, std::move(factory), options);
        connector->wrap(std::move(sock));
        return connector->result();
    }
    if (host.empty() && port == 0)
        return failed(*this, detail::refuse(errc::invalid_argument,
                                            "host and port was not specified and no sock specified"));
    if (port < 0 || port > 65535 || options.local_port < 0 || options.local_port > 65535)
        return failed(*this, detail::refuse(errc::invalid_argument, "create_connection: port must be 0-65535"));
    std::shared_ptr<Connector> connector = Connector::make(*this, std::move(factory), options);
    connector->resolve(host, port, options);
    return connector->result();
}

Future<Connection> EventLoop::create_connection(ProtocolFactory factory, std::string_view host, int port) {
    return create_connection(std::move(factory), host, port, ConnectionOptions{});
}

Future<Connection> EventLoop::create_unix_connection(ProtocolFactory factory, std::string_view path,
                                                     const UnixConnectionOptions& options) {
    Fd sock(options.sock);
    if (std::error_code error = check_open(*this, "create_unix_connection")) return failed(*this, error);
    if (sock) {
        if (!path.empty())
            return failed(*this, detail::refuse(errc::invalid_argument,
                                                "path and sock can not be specified at the same time"));
        if (std::error_code error = check_stream_socket(sock.get(), true)) return failed(*this, error);
        std::shared_ptr<Connector> connector = Connector::make(*this, std::move(factory), {});
        connector->wrap(std::move(sock));
        return connector->result();
    }
    if (path.empty())
        return failed(*this, detail::refuse(errc::invalid_argument, "no path and sock were specified"));
    // ENAMETOOLONG past sun_path; a missing path fails in connect with ENOENT (CONTRACT 308).
    Result<SocketAddress> address = SocketAddress::unix_path(path);
    if (!address) return failed(*this, address.error());
    return detail::connect_to_addresses(*this, std::move(factory),
                                        {AddrInfo{.family = AF_UNIX, .type = SOCK_STREAM, .address = *address}},
                                        std::nullopt, {});
}

Future<Connection> EventLoop::create_unix_connection(ProtocolFactory factory, std::string_view path) {
    return create_unix_connection(std::move(factory), path, UnixConnectionOptions{});
}

Future<Connection> EventLoop::connect_accepted_socket(ProtocolFactory factory, int sock) {
    Fd owned(sock);  // the transport's, closed on failure too
    if (std::error_code error = check_open(*this, "connect_accepted_socket")) return failed(*this, error);
    if (std::error_code error = check_stream_socket(owned.get(), false)) return failed(*this, error);  // CONTRACT 314
    std::shared_ptr<Connector> connector = Connector::make(*this, std::move(factory), {});
    connector->wrap(std::move(owned));
    return connector->result();  // CONTRACT 315
}

}  // namespace evloop
