// net/sock.cpp — the sock_* awaitables: asyncio's loop.sock_recv, sock_sendall,
// sock_connect, sock_accept… on a raw non-blocking socket the caller owns.
//
// Every call goes the same way:
//  1. refusals (check_socket): a closed loop, an fd a transport owns
//     (CONTRACT 174), a blocking socket (asyncio checks it in debug mode
//     only, §0.B; we always do), an fd that already has a reader (writer):
//     asyncio silently orphans the first call there (item 179), we refuse;
//  2. the syscall, tried at once (CONTRACT 172); most calls end here, with
//     nothing registered and nothing allocated for waiting;
//  3. only when it would block, a Waiter: a heap object owned by the one-shot
//     reader (writer) it registers, holding the future and what a retry needs.
//     Each readiness retries; once the future is done the Waiter removes its
//     reader, and the loop destroys it with the handle.
// The future's done callback holds the Waiter weakly. If the future was
// cancelled, the Waiter is still alive and removes its reader there, as
// asyncio's _sock_read_done does: no byte is consumed after a cancel and the
// next call on the fd works (CONTRACT 175–178). A readiness that arrives
// between cancel() and that done callback sees a done future and only removes
// the reader. A new call in that same window (before the loop has run the done
// callback, i.e. in the step that called cancel()) is refused as fd_busy.
// Errors from the kernel are errno values in the future; refusals fail as
// core/errors.hpp says (evloop::Error, or logged with the code in the future).
// Layer: net. Read next: net/sendfile.cpp (sock_sendfile, which falls back to
// sock_sendall).
#include "net/sock.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "core/event_loop.hpp"
#include "platform/fd.hpp"

namespace evloop {

namespace {

enum class Wait : bool { read, write };

template <class T>
Future<T> failed(Future<T> future, std::error_code error) {
    (void)future.set_error(error);
    return future;
}

std::string naming(const char* what, int fd) { return std::string(what) + ": fd " + std::to_string(fd); }

// Step 1 of the file comment. An fd that is not open is not a refusal but an
// OS error (EBADF in the future), as asyncio's fileno()/send() would raise.
std::error_code check_socket(EventLoop& loop, int fd, Wait wait, const char* what) {
    // A closed loop runs no callback: nothing could ever complete the call.
    if (loop.is_closed()) return detail::refuse(errc::loop_closed, what);
    if (loop.is_transport_fd(fd)) return detail::refuse(errc::fd_used_by_transport, naming(what, fd));
    int flags = ::fcntl(fd, F_GETFL);
    if (flags == -1) return last_error();
    if (!(flags & O_NONBLOCK)) return detail::refuse(errc::socket_blocking, naming(what, fd));
    if (wait == Wait::read ? loop.has_reader(fd) : loop.has_writer(fd))
        return detail::refuse(errc::fd_busy, naming(what, fd));
    return {};
}

// After a syscall returned -1: EAGAIN means "wait" (false); anything else
// completes `future` with the errno (true). EINTR never gets here: the calls
// retry it at once (retry_eintr), which is what waiting for readiness would do.
template <class T>
bool finish_with_errno(Future<T>& future) {
    int error = errno;
    if (error == EAGAIN || error == EWOULDBLOCK) return false;
    (void)future.set_error({error, std::system_category()});
    return true;
}

// Step 3. `attempt(future)` is one try: true once it completed the future.
template <class T, class Attempt>
class Waiter {
public:
    Waiter(EventLoop& loop, int fd, Wait wait, Future<T> future, Attempt attempt)
        : loop_(&loop), fd_(fd), wait_(wait), future_(std::move(future)), attempt_(std::move(attempt)) {}

    void ready() {
        // A cancelled future must not consume anything (CONTRACT 175).
        if (future_.done() || attempt_(future_)) unwatch();
    }
    // Only ever removes the reader this Waiter registered: once it is
    // removed (or replaced through add_reader), the flag or the Waiter is gone.
    void unwatch() {
        if (!watching_) return;
        watching_ = false;
        if (wait_ == Wait::read)
            (void)loop_->remove_reader(fd_);
        else
            (void)loop_->remove_writer(fd_);
    }
    void set_watching() noexcept { watching_ = true; }

private:
    EventLoop* loop_;
    int fd_;
    Wait wait_;
    bool watching_ = false;
    Future<T> future_;
    Attempt attempt_;
};

template <class T, class Attempt>
Future<T> wait_and_retry(EventLoop& loop, int fd, Wait wait, Future<T> future, Attempt attempt) {
    auto waiter = std::make_shared<Waiter<T, Attempt>>(loop, fd, wait, future, std::move(attempt));
    Callback on_ready = [waiter] { waiter->ready(); };
    std::error_code error = wait == Wait::read ? loop.add_reader(fd, std::move(on_ready))
                                               : loop.add_writer(fd, std::move(on_ready));
    if (error) return failed(std::move(future), error);
    waiter->set_watching();
    future.add_done_callback([weak = std::weak_ptr(waiter)](Future<T>&) {
        if (auto alive = weak.lock()) alive->unwatch();
    });
    return future;
}

// Steps 2 and 3 for calls whose first try and retries are the same.
template <class T, class Attempt>
Future<T> try_then_wait(EventLoop& loop, int fd, Wait wait, Attempt attempt) {
    Future<T> future(loop);
    if (attempt(future)) return future;
    return wait_and_retry(loop, fd, wait, std::move(future), std::move(attempt));
}

// One recv/recvfrom into `into`: the byte count, or -1 with errno.
ssize_t receive(int fd, char* into, std::size_t size, SocketAddress* from) {
    if (!from) return retry_eintr([&] { return ::recv(fd, into, size, 0); });
    socklen_t length = SocketAddress::capacity();
    ssize_t n = retry_eintr([&] {
        length = SocketAddress::capacity();
        return ::recvfrom(fd, into, size, 0, from->data(), &length);
    });
    // A connected stream socket reports no sender (length 0): an empty address.
    if (n >= 0) from->set_size(length);
    return n;
}

// sock_sendall's progress: data[offset..] is still to send; `before` bytes
// were sent by an earlier stage (the first try, whose tail this is a copy of).
struct SendAll {
    int fd;
    std::string tail;
    std::size_t offset = 0;
    std::size_t before = 0;
    std::size_t* sent = nullptr;

    // Sends until everything is out (true, future completed), the kernel's
    // buffer is full (false), or an error (true, future holds it).
    static bool send_from(int fd, std::string_view data, std::size_t& offset, std::size_t before,
                          std::size_t* sent, Future<void>& future) {
        while (offset < data.size()) {
            // MSG_NOSIGNAL: a peer that went away is EPIPE, never SIGPIPE.
            ssize_t n = retry_eintr([&] { return ::send(fd, data.data() + offset, data.size() - offset, MSG_NOSIGNAL); });
            if (n < 0) return finish_with_errno(future);
            offset += static_cast<std::size_t>(n);  // a partial send continues (CONTRACT 180)
            if (sent) *sent = before + offset;       // kept true after an error or cancel (176)
        }
        (void)future.set_result();
        return true;
    }
    bool operator()(Future<void>& future) { return send_from(fd, tail, offset, before, sent, future); }
};

}  // namespace

// ---- receiving ---------------------------------------------------------------

Future<std::string> EventLoop::sock_recv(int sock, std::size_t nbytes) {
    if (std::error_code error = check_socket(*this, sock, Wait::read, "sock_recv"))
        return failed(Future<std::string>(*this), error);
    return try_then_wait<std::string>(*this, sock, Wait::read, [sock, nbytes](Future<std::string>& future) {
        std::string data(nbytes, '\0');
        ssize_t n = receive(sock, data.data(), nbytes, nullptr);
        if (n < 0) return finish_with_errno(future);
        data.resize(static_cast<std::size_t>(n));  // "" at EOF (CONTRACT 173)
        (void)future.set_result(std::move(data));
        return true;
    });
}

Future<std::size_t> EventLoop::sock_recv_into(int sock, std::span<char> buffer) {
    if (std::error_code error = check_socket(*this, sock, Wait::read, "sock_recv_into"))
        return failed(Future<std::size_t>(*this), error);
    return try_then_wait<std::size_t>(*this, sock, Wait::read, [sock, buffer](Future<std::size_t>& future) {
        ssize_t n = receive(sock, buffer.data(), buffer.size(), nullptr);
        if (n < 0) return finish_with_errno(future);
        (void)future.set_result(static_cast<std::size_t>(n));
        return true;
    });
}

Future<ReceivedFrom> EventLoop::sock_recvfrom(int sock, std::size_t bufsize) {
    if (std::error_code error = check_socket(*this, sock, Wait::read, "sock_recvfrom"))
        return failed(Future<ReceivedFrom>(*this), error);
    return try_then_wait<ReceivedFrom>(*this, sock, Wait::read, [sock, bufsize](Future<ReceivedFrom>& future) {
        ReceivedFrom got{.data = std::string(bufsize, '\0')};
        ssize_t n = receive(sock, got.data.data(), bufsize, &got.address);
        if (n < 0) return finish_with_errno(future);
        got.data.resize(static_cast<std::size_t>(n));  // a longer datagram is truncated, as recvfrom(2) does
        (void)future.set_result(std::move(got));
        return true;
    });
}

Future<ReceivedInto> EventLoop::sock_recvfrom_into(int sock, std::span<char> buffer, std::size_t nbytes) {
    if (std::error_code error = check_socket(*this, sock, Wait::read, "sock_recvfrom_into"))
        return failed(Future<ReceivedInto>(*this), error);
    if (nbytes > buffer.size())  // asyncio's socket.recvfrom_into raises ValueError here
        return failed(Future<ReceivedInto>(*this),
                      detail::refuse(errc::invalid_argument,
                                     "sock_recvfrom_into: nbytes is greater than the length of the buffer"));
    std::span<char> into = buffer.first(nbytes ? nbytes : buffer.size());  // 0: the whole buffer (CONTRACT 182)
    return try_then_wait<ReceivedInto>(*this, sock, Wait::read, [sock, into](Future<ReceivedInto>& future) {
        ReceivedInto got;
        ssize_t n = receive(sock, into.data(), into.size(), &got.address);
        if (n < 0) return finish_with_errno(future);
        got.nbytes = static_cast<std::size_t>(n);
        (void)future.set_result(std::move(got));
        return true;
    });
}

// ---- sending -------------------------------------------------------------------

Future<void> EventLoop::sock_sendall(int sock, std::string_view data, std::size_t* sent) {
    if (sent) *sent = 0;
    if (std::error_code error = check_socket(*this, sock, Wait::write, "sock_sendall"))
        return failed(Future<void>(*this), error);
    Future<void> future(*this);
    std::size_t offset = 0;
    if (SendAll::send_from(sock, data, offset, 0, sent, future)) return future;
    // Only the unsent tail is copied, and only now that we must wait: the
    // caller's `data` need not outlive the call.
    SendAll rest{.fd = sock, .tail = std::string(data.substr(offset)), .before = offset, .sent = sent};
    return wait_and_retry(*this, sock, Wait::write, std::move(future), std::move(rest));
}

Future<std::size_t> EventLoop::sock_sendto(int sock, std::string_view data, const SocketAddress& address) {
    if (std::error_code error = check_socket(*this, sock, Wait::write, "sock_sendto"))
        return failed(Future<std::size_t>(*this), error);
    auto send_once = [sock](std::string_view datagram, const SocketAddress& to, Future<std::size_t>& future) {
        ssize_t n = retry_eintr([&] {
            return ::sendto(sock, datagram.data(), datagram.size(), MSG_NOSIGNAL, to.data(), to.size());
        });
        if (n < 0) return finish_with_errno(future);
        (void)future.set_result(static_cast<std::size_t>(n));  // what sendto(2) returned (CONTRACT 181)
        return true;
    };
    Future<std::size_t> future(*this);
    if (send_once(data, address, future)) return future;
    // The datagram is copied whole to wait for writability; it is sent by one
    // sendto, never split.
    return wait_and_retry(*this, sock, Wait::write, std::move(future),
                          [send_once, datagram = std::string(data), to = address](Future<std::size_t>& f) {
                              return send_once(datagram, to, f);
                          });
}

// ---- connecting and accepting ----------------------------------------------------

// Unlike asyncio (CONTRACT 183) `address` is already resolved: asyncio calls
// getaddrinfo for AF_INET/AF_INET6 and takes the first result, which may
// block on DNS inside the loop's thread when given a host name. Callers
// resolve with loop.getaddrinfo (on the executor) and pass one of its answers.
Future<void> EventLoop::sock_connect(int sock, const SocketAddress& address) {
    if (std::error_code error = check_socket(*this, sock, Wait::write, "sock_connect"))
        return failed(Future<void>(*this), error);
    Future<void> future(*this);
    if (::connect(sock, address.data(), address.size()) == 0) {
        (void)future.set_result();  // Unix sockets and loopback may connect at once
        return future;
    }
    switch (int error = errno) {
        case EINPROGRESS:
        case EINTR:     // the connect goes on in the kernel (connect(2)); retrying would say EALREADY
        case EALREADY:  // an earlier connect still runs, e.g. a cancelled sock_connect (CONTRACT 177)
            break;
        case EISCONN: {
            // That earlier connect already finished: done if it reached this peer.
            Result<SocketAddress> peer = peer_address(sock);
            if (peer && *peer == address)
                (void)future.set_result();
            else
                (void)future.set_error({EISCONN, std::system_category()});
            return future;
        }
        default:
            // Including EAGAIN, which Linux gives for a Unix socket whose
            // listener's backlog is full: not in progress, so an error (as libuv).
            (void)future.set_error({error, std::system_category()});
            return future;
    }
    // Writable means the handshake ended; SO_ERROR says how (CONTRACT 184).
    return wait_and_retry(*this, sock, Wait::write, std::move(future), [sock](Future<void>& f) {
        int error = 0;
        socklen_t size = sizeof error;
        if (::getsockopt(sock, SOL_SOCKET, SO_ERROR, &error, &size) != 0)
            (void)f.set_error(last_error());
        else if (error != 0)
            (void)f.set_error({error, std::system_category()});  // e.g. ECONNREFUSED
        else
            (void)f.set_result();
        return true;
    });
}

Future<Accepted> EventLoop::sock_accept(int sock) {
    if (std::error_code error = check_socket(*this, sock, Wait::read, "sock_accept"))
        return failed(Future<Accepted>(*this), error);
    return try_then_wait<Accepted>(*this, sock, Wait::read, [sock](Future<Accepted>& future) {
        SocketAddress peer;
        socklen_t size = SocketAddress::capacity();
        // Non-blocking and close-on-exec from birth (CONTRACT 185).
        int fd = retry_eintr([&] {
            size = SocketAddress::capacity();
            return ::accept4(sock, peer.data(), &size, SOCK_NONBLOCK | SOCK_CLOEXEC);
        });
        if (fd < 0) return finish_with_errno(future);
        peer.set_size(size);
        // The future is pending here (Waiter::ready checked), so set_result
        // cannot refuse; if it ever did, the new fd must not leak.
        if (future.set_result(Accepted{.fd = fd, .address = peer})) ::close(fd);
        return true;
    });
}

}  // namespace evloop
