// net/server.cpp — Server: the accept loop, close/wait_closed, serve_forever
// and the client bookkeeping (asyncio's base_events.Server together with
// selector_events' _accept_connection).
//
// Each listening socket has one reader while the server accepts. A
// readiness accepts a bounded batch (at most `backlog` connections, as
// asyncio, CONTRACT 156), so a flood of connects cannot starve the rest of
// the loop. Running out of fds or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM)
// is reported, and the readers are removed for one second: level-triggered
// readiness on a queue we cannot drain would otherwise spin (CONTRACT 157).
// Lifetime: see net/server.hpp; the rule that keeps it simple is "self_ is
// held while serving, and after close() until the last client detaches", so
// a reader callback and a client transport never see a destroyed server.
// Layer: net. Read next: net/create_server.cpp (how servers are made).
#include "net/server.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "core/log.hpp"
#include "net/socket_transport.hpp"

namespace evloop {

namespace {

// asyncio's constants.ACCEPT_RETRY_DELAY (CONTRACT 157).
constexpr double kAcceptRetryDelay = 1.0;

bool out_of_resources(int error) noexcept {
    return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

}  // namespace

std::shared_ptr<Server> Server::make(EventLoop& loop, ProtocolFactory factory, std::vector<Fd> sockets, int backlog,
                                     bool keep_alive, std::string unix_path) {
    std::shared_ptr<Server> server(
        new Server(loop, std::move(factory), std::move(sockets), backlog, keep_alive, std::move(unix_path)));
    server->weak_self_ = server;
    loop.attach_resource(*server);
    return server;
}

Server::Server(EventLoop& loop, ProtocolFactory factory, std::vector<Fd> sockets, int backlog, bool keep_alive,
               std::string unix_path)
    : loop_(&loop), factory_(std::move(factory)), sockets_(std::move(sockets)), backlog_(backlog > 0 ? backlog : 1),
      keep_alive_(keep_alive), unix_path_(std::move(unix_path)) {
    // Remember which file we bound, so close() never unlinks a socket
    // someone else has put at the same path since (CONTRACT 312).
    struct stat info {};
    if (!unix_path_.empty() && ::stat(unix_path_.c_str(), &info) == 0)
        unix_inode_ = info.st_ino;
    else
        unix_path_.clear();
}

Server::~Server() = default;

// ---- serving --------------------------------------------------------------------

std::error_code Server::start_serving() {
    if (closed_) return detail::refuse(errc::server_closed, "Server::start_serving");
    if (serving_) return {};  // idempotent (CONTRACT 155)
    // listen() now, not at bind time (CONTRACT 153).
    for (const Fd& sock : sockets_)
        if (::listen(sock.get(), backlog_) < 0) return last_error();
    if (std::error_code ec = add_readers()) return ec;
    serving_ = true;
    self_ = weak_self_.lock();
    return {};
}

std::error_code Server::add_readers() {
    accepting_ = true;
    for (const Fd& sock : sockets_) {
        int fd = sock.get();
        if (std::error_code ec = loop_->add_reader(fd, [this, fd] { accept_ready(fd); })) {
            remove_readers();  // the ones already added; the others answer false
            return ec;
        }
    }
    return {};
}

void Server::remove_readers() {
    if (!accepting_) return;
    accepting_ = false;
    for (const Fd& sock : sockets_) (void)loop_->remove_reader(sock.get());
}

void Server::accept_ready(int listener) {
    // The factory or a protocol may close the server (and drop self_) from
    // inside this batch: keep it alive to the end.
    std::shared_ptr<Server> keep = self_;
    for (int i = 0; i < backlog_ && accepting_; ++i) {
        SocketAddress peer;
        socklen_t size = SocketAddress::capacity();
        int fd = ::accept4(listener, peer.data(), &size, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int error = errno;
            // Drained, interrupted, or the peer gave up first (CONTRACT 156).
            if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR || error == ECONNABORTED) return;
            if (out_of_resources(error)) {
                pause_accepting(listener, {error, std::system_category()});
                return;
            }
            // Anything else concerns this one connection (EPERM from a
            // firewall, EPROTO): report it, as asyncio's callback would
            // raise, and go on serving.
            ExceptionContext context{.message = "socket.accept() failed", .error = {error, std::system_category()}};
            context.socket = listener;
            loop_->call_exception_handler(context);
            return;
        }
        new_connection(Fd(fd));
    }
}

void Server::new_connection(Fd sock) {
    if (keep_alive_) {  // CONTRACT 149
        int one = 1;
        (void)::setsockopt(sock.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    }
    // A protocol per connection (CONTRACT 159). If the factory fails, the
    // connection is closed; asyncio reports that in debug mode only.
    std::shared_ptr<StreamProtocol> protocol;
    ExceptionContext context{.message = "Error on transport creation for incoming connection"};
#if EVLOOP_EXCEPTIONS
    try {
        protocol = factory_();
    } catch (...) {
        context.exception = std::current_exception();
        context.error = make_error_code(errc::exception_raised);
    }
#else
    protocol = factory_();
#endif
    if (!protocol) {
        if (loop_->get_debug()) {
            if (!context.error) context.error = make_error_code(errc::wrong_protocol);
            context.socket = sock.get();
            loop_->call_exception_handler(context);
        }
        return;  // `sock` closes here
    }
    // The transport holds itself and attaches to us (attach_client).
    (void)SocketTransport::make(*loop_, std::move(sock), std::move(protocol), nullptr, this);
}

void Server::pause_accepting(int listener, std::error_code error) {
    // CONTRACT 157: report, stop watching, try again in a second; the
    // listening sockets stay open, so connects still queue meanwhile.
    ExceptionContext context{.message = "socket.accept() out of system resource", .error = error};
    context.socket = listener;
    loop_->call_exception_handler(context);
    remove_readers();
    if (closed_ || !serving_) return;  // the handler may have closed us
    accept_retry_ = loop_->call_later(kAcceptRetryDelay, [weak = weak_self_] {
        if (std::shared_ptr<Server> server = weak.lock()) server->resume_accepting();
    });
}

void Server::resume_accepting() {
    accept_retry_ = TimerHandle{};
    if (closed_ || !serving_ || accepting_) return;
    if (std::error_code ec = add_readers()) {
        ExceptionContext context{.message = "Server: could not watch the listening sockets again", .error = ec};
        loop_->call_exception_handler(context);
    }
}

Future<void> Server::serve_forever() {
    Future<void> future(*loop_);
    // asyncio raises RuntimeError for both (CONTRACT 164).
    if (serving_forever_ && !serving_forever_->done()) {
        (void)future.set_error(detail::refuse(errc::already_serving, "Server::serve_forever"));
        return future;
    }
    if (closed_) {
        (void)future.set_error(detail::refuse(errc::server_closed, "Server::serve_forever"));
        return future;
    }
    if (std::error_code ec = start_serving()) {
        (void)future.set_error(ec);
        return future;
    }
    serving_forever_ = future;
    // Cancelling the future stops the server (CONTRACT 165); close() cancels
    // it in turn, and close() is idempotent, so the loop ends there.
    future.add_done_callback([weak = weak_self_](Future<void>& done) {
        if (!done.cancelled()) return;
        if (std::shared_ptr<Server> server = weak.lock()) server->close();
    });
    return future;
}

// ---- closing --------------------------------------------------------------------

void Server::close_listeners() noexcept {
    // Unlink first, while the inode we recorded is certainly still ours;
    // a file someone put there since, or none at all, is left alone
    // (CONTRACT 312).
    struct stat info {};
    if (!unix_path_.empty() && ::stat(unix_path_.c_str(), &info) == 0 && info.st_ino == unix_inode_)
        (void)::unlink(unix_path_.c_str());
    unix_path_.clear();
    sockets_.clear();  // closes them: new connects are refused (CONTRACT 161)
}

void Server::close() {
    if (closed_) return;  // idempotent (CONTRACT 161)
    closed_ = true;
    remove_readers();
    close_listeners();
    serving_ = false;
    accept_retry_.cancel();
    accept_retry_ = TimerHandle{};
    detail::LoopResource::unlink();  // nothing left for the loop's close() to shut
    if (serving_forever_) {
        std::optional<Future<void>> forever = std::exchange(serving_forever_, std::nullopt);
        (void)forever->cancel();  // CONTRACT 165: serve_forever ends with the server
    }
    maybe_wake_waiters();
    // The last statement: this may be the last reference. Clients still
    // attached keep the server until they detach (detach_client).
    if (client_count_ == 0) std::shared_ptr<Server> last = std::move(self_);
}

void Server::loop_closing() noexcept {
    // The loop is closing with the server open: its readers and timers are
    // already gone with the loop. Close the sockets, call nobody back.
    closed_ = true;
    serving_ = accepting_ = false;
    close_listeners();
    accept_retry_ = TimerHandle{};  // dropped now: the handle must not outlive the loop
    serving_forever_.reset();
    waiters_.clear();
    if (client_count_ == 0) std::shared_ptr<Server> last = std::move(self_);  // may destroy *this
}

Future<void> Server::wait_closed() {
    Future<void> future(*loop_);
    // Closed with no client left: done at once, and from then on (CONTRACT 162).
    if (closed_ && client_count_ == 0)
        (void)future.set_result();
    else
        waiters_.push_back(future);
    return future;
}

void Server::maybe_wake_waiters() {
    if (!closed_ || client_count_ != 0) return;
    std::vector<Future<void>> waiters = std::move(waiters_);
    waiters_.clear();
    for (Future<void>& waiter : waiters)
        if (!waiter.done()) (void)waiter.set_result();
}

void Server::close_clients() {
    // A copy: close() never detaches at once (connection_lost comes later),
    // but a protocol's callbacks are not ours to reason about.
    std::vector<SocketTransport*> clients = clients_;
    for (SocketTransport* client : clients) client->close();
}

void Server::abort_clients() {
    std::vector<SocketTransport*> clients = clients_;
    for (SocketTransport* client : clients) client->abort();
}

// ---- clients ----------------------------------------------------------------------

void Server::attach_client(SocketTransport& transport) noexcept {
    // A factory may have closed the server (dropping self_) just before this
    // connection's transport was made: the transport points back at us, so
    // hold on until it detaches.
    if (!self_) self_ = weak_self_.lock();
    clients_.push_back(&transport);
    ++client_count_;
}

void Server::detach_client(SocketTransport& transport) noexcept {
    auto found = std::find(clients_.rbegin(), clients_.rend(), &transport);
    if (found == clients_.rend()) return;
    *found = clients_.back();
    clients_.pop_back();
    --client_count_;
    if (!closed_ || client_count_ != 0) return;
    maybe_wake_waiters();
    std::shared_ptr<Server> last = std::move(self_);  // may destroy *this: the last statement
}

// ---- introspection ----------------------------------------------------------------

std::vector<int> Server::sockets() const {
    std::vector<int> fds;
    for (const Fd& sock : sockets_) fds.push_back(sock.get());
    return fds;
}

std::vector<SocketAddress> Server::addresses() const {
    std::vector<SocketAddress> result;
    for (const Fd& sock : sockets_)
        if (Result<SocketAddress> address = local_address(sock.get())) result.push_back(*address);
    return result;
}

}  // namespace evloop
