// test/net/sock_test.cpp — the sock_* awaitables (net/sock.cpp) over real
// sockets: TCP on 127.0.0.1 and ::1, UDP, AF_UNIX stream and datagram.
// CONTRACT §11, items 169–185, and the §26 decisions on 169/170 (a blocking
// socket is always refused) and 179 (a second reader is refused).
// Not tested here: 171 (ssl.SSLSocket: C++ passes fds, a TLS stream is a
// transport); 183 (name resolution inside sock_connect: ours takes a resolved
// SocketAddress, callers use loop.getaddrinfo, shown in the round trip).
// sock_sendfile is tested in test/net/sendfile_test.cpp.
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "core/task_helpers.hpp"
#include "net/dns.hpp"
#include "net/sock.hpp"
#include "net/socket_transport.hpp"
#include "test/net/stream_pair.hpp"

using namespace evloop;
using evloop::test::run_until;

namespace {

// Runs `n` iterations that never block (run_once would wait for an event).
void spin(EventLoop& loop, int n) {
    for (int i = 0; i < n; ++i) {
        loop.call_soon([] {});
        (void)loop.run_once();
    }
}

template <class T>
bool settle(EventLoop& loop, const Future<T>& future, double seconds = 5) {
    return run_until(loop, [&] { return future.done(); }, seconds);
}

// A socket of `family` and `type`, non-blocking and close-on-exec; empty if
// the family is unavailable here (IPv6 in some containers).
Fd make_socket(int family, int type) {
    return Fd(::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
}

SocketAddress loopback(int family, int port = 0) {
    return SocketAddress::parse(family == AF_INET6 ? "::1" : "127.0.0.1", port).value();
}

SocketAddress local_of(int fd) { return local_address(fd).value(); }

// Bound to loopback (port 0) or to a fresh abstract Unix name.
bool bind_any(int fd, int family) {
    static int serial = 0;
    SocketAddress address = family == AF_UNIX
        ? SocketAddress::unix_path(std::string("\0evloop-sock-test-", 18) + std::to_string(::getpid()) + "-" +
                                   std::to_string(++serial)).value()
        : loopback(family);
    return ::bind(fd, address.data(), address.size()) == 0;
}

Fd listener(int family, int backlog = 16) {
    Fd fd = make_socket(family, SOCK_STREAM);
    if (!fd || !bind_any(fd.get(), family) || ::listen(fd.get(), backlog) != 0) return Fd();
    return fd;
}

Fd bound_datagram(int family) {
    Fd fd = make_socket(family, SOCK_DGRAM);
    if (!fd || !bind_any(fd.get(), family)) return Fd();
    return fd;
}

std::string pattern(std::size_t size) {
    std::string data(size, '\0');
    for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    return data;
}

// What is readable now, also from a blocking socket.
std::string read_now(int fd) {
    std::string got;
    char buffer[65536];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT)) > 0;) got.append(buffer, static_cast<std::size_t>(n));
    return got;
}

bool has_flag(int fd, int get, int flag) { return (::fcntl(fd, get) & flag) != 0; }

// Waits (without the loop) until `fd` has something to read.
bool readable(int fd) {
    pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
    return ::poll(&p, 1, 5000) == 1;
}

}  // namespace

// ---- refusals -----------------------------------------------------------------

TEST_CASE("169/170 decision: every sock_* call refuses a blocking socket, in any mode") {
    EventLoop loop;
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);  // blocking
    Fd a(fds[0]), b(fds[1]);
    char buffer[8];
    SocketAddress somewhere = loopback(AF_INET, 9);
    for (bool debug : {false, true}) {
        loop.set_debug(debug);  // asyncio checks only in debug mode (§0.B); we always do
        CHECK_REFUSED(errc::socket_blocking, auto f = loop.sock_recv(a.get(), 8); CHECK(f.error() == errc::socket_blocking));
        CHECK_REFUSED(errc::socket_blocking, auto f = loop.sock_recv_into(a.get(), buffer); (void)f.error());
        CHECK_REFUSED(errc::socket_blocking, auto f = loop.sock_recvfrom(a.get(), 8); (void)f.error());
        CHECK_REFUSED(errc::socket_blocking, auto f = loop.sock_recvfrom_into(a.get(), buffer); (void)f.error());
        CHECK_REFUSED(errc::socket_blocking, auto f = loop.sock_sendall(a.get(), "x"); (void)f.error());
        CHECK_REFUSED(errc::socket_blocking, auto f = loop.sock_sendto(a.get(), "x", somewhere); (void)f.error());
        CHECK_REFUSED(errc::socket_blocking, auto f = loop.sock_connect(a.get(), somewhere); (void)f.error());
        CHECK_REFUSED(errc::socket_blocking, auto f = loop.sock_accept(a.get()); (void)f.error());
    }
    CHECK(read_now(b.get()).empty());  // nothing was sent
    CHECK(!loop.has_reader(a.get()));
    CHECK(!loop.has_writer(a.get()));
}

TEST_CASE("sock_* on a closed loop are refused; a closed fd is EBADF in the future") {
    auto pair = test::unix_pair();
    {
        EventLoop loop;
        REQUIRE(!loop.close());
        CHECK_REFUSED(errc::loop_closed, auto f = loop.sock_recv(pair.ours.get(), 8); CHECK(f.error() == errc::loop_closed));
        CHECK_REFUSED(errc::loop_closed, auto f = loop.sock_sendall(pair.ours.get(), "x"); (void)f.error());
        CHECK_REFUSED(errc::loop_closed, auto f = loop.sock_accept(pair.ours.get()); (void)f.error());
    }
    EventLoop loop;
    int closed = ::dup(pair.ours.get());
    ::close(closed);
    Future<std::string> f = loop.sock_recv(closed, 8);
    REQUIRE(f.done());
    CHECK(f.error() == std::errc::bad_file_descriptor);
}

TEST_CASE("174: an fd wrapped by a transport is refused") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    int fd = pair.ours.get();
    auto protocol = std::make_shared<test::Recorder>();
    auto transport = SocketTransport::make(loop, std::move(pair.ours), protocol);
    REQUIRE(run_until(loop, [&] { return protocol->transport != nullptr; }));
    CHECK_REFUSED(errc::fd_used_by_transport, auto f = loop.sock_recv(fd, 8); CHECK(f.error() == errc::fd_used_by_transport));
    CHECK_REFUSED(errc::fd_used_by_transport, auto f = loop.sock_sendall(fd, "x"); (void)f.error());
    transport->close();
    REQUIRE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST_CASE("179 decision: a second concurrent reader (writer) is refused; the first still completes") {
    EventLoop loop;
    auto pair = test::unix_pair();
    int fd = pair.ours.get();
    Future<std::string> first = loop.sock_recv(fd, 64);
    REQUIRE(!first.done());
    // asyncio's second sock_recv replaces the first's reader, and the first
    // never completes (CONTRACT 179); refusing keeps the first one working.
    CHECK_REFUSED(errc::fd_busy, auto f = loop.sock_recv(fd, 64); CHECK(f.error() == errc::fd_busy));
    char buffer[8];
    CHECK_REFUSED(errc::fd_busy, auto f = loop.sock_recv_into(fd, buffer); (void)f.error());
    CHECK_REFUSED(errc::fd_busy, auto f = loop.sock_accept(fd); (void)f.error());
    // A user's add_reader on the fd counts too: it would replace the waiter's.
    Fd other = std::move(pair.peer);
    REQUIRE(!loop.add_reader(other.get(), [] {}));
    CHECK_REFUSED(errc::fd_busy, auto f = loop.sock_recv(other.get(), 8); (void)f.error());
    CHECK(loop.remove_reader(other.get()));

    // Reading and writing are independent: a sendall may run meanwhile.
    Future<void> sent = loop.sock_sendall(fd, "ping");
    CHECK(sent.done());
    REQUIRE(::send(other.get(), "pong", 4, MSG_NOSIGNAL) == 4);
    REQUIRE(settle(loop, first));
    CHECK(first.result().value() == "pong");
    CHECK(!loop.has_reader(fd));

    // The same for writers: fill the socket, then a second sendall is refused.
    std::size_t progress = 0;
    Future<void> big = loop.sock_sendall(fd, std::string(4 << 20, 'w'), &progress);
    REQUIRE(!big.done());
    CHECK_REFUSED(errc::fd_busy, auto f = loop.sock_sendall(fd, "x"); (void)f.error());
    CHECK_REFUSED(errc::fd_busy, auto f = loop.sock_connect(fd, loopback(AF_INET, 9)); (void)f.error());
    std::string got;
    REQUIRE(run_until(loop, [&] { (void)test::drain(other.get(), got); return big.done(); }));
    CHECK(big.result().has_value());
    (void)test::drain(other.get(), got);
    CHECK(got.size() == 4 + (4u << 20));
}

// ---- receiving -------------------------------------------------------------------

TEST_CASE("172: the syscall is tried at once; only a would-block registers a reader") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    REQUIRE(::send(pair.peer.get(), "ready", 5, MSG_NOSIGNAL) == 5);
    REQUIRE(readable(pair.ours.get()));
    // Data waiting: done on return, before the loop runs, and nothing watched.
    Future<std::string> now = loop.sock_recv(pair.ours.get(), 100);
    REQUIRE(now.done());
    CHECK(now.result().value() == "ready");
    CHECK(!loop.has_reader(pair.ours.get()));
    Future<void> sent = loop.sock_sendall(pair.ours.get(), "reply");
    CHECK(sent.done());
    CHECK(!loop.has_writer(pair.ours.get()));

    // No data: pending, with a reader that goes away once it completes.
    Future<std::string> later = loop.sock_recv(pair.ours.get(), 100);
    REQUIRE(!later.done());
    CHECK(loop.has_reader(pair.ours.get()));
    REQUIRE(::send(pair.peer.get(), "later", 5, MSG_NOSIGNAL) == 5);
    REQUIRE(settle(loop, later));
    CHECK(later.result().value() == "later");
    CHECK(!loop.has_reader(pair.ours.get()));
    CHECK(read_now(pair.peer.get()) == "reply");
}

TEST_CASE("173: sock_recv returns an empty string at EOF; sock_recv_into writes into the caller's span") {
    EventLoop loop;
    auto pair = test::unix_pair();
    std::vector<char> buffer(16, '.');
    Future<std::size_t> into = loop.sock_recv_into(pair.ours.get(), buffer);
    REQUIRE(!into.done());
    REQUIRE(::send(pair.peer.get(), "abc", 3, MSG_NOSIGNAL) == 3);
    REQUIRE(settle(loop, into));
    CHECK(into.result().value() == 3);
    CHECK(std::string(buffer.data(), 4) == "abc.");

    Future<std::string> eof = loop.sock_recv(pair.ours.get(), 100);
    REQUIRE(!eof.done());
    pair.peer.reset();
    REQUIRE(settle(loop, eof));
    CHECK(eof.result().value().empty());
    Future<std::string> again = loop.sock_recv(pair.ours.get(), 100);
    REQUIRE(again.done());  // EOF stays readable: answered at once
    CHECK(again.result().value().empty());
}

TEST_CASE("175: cancelling a pending sock_recv / sock_recv_into removes the reader and consumes nothing") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    int fd = pair.ours.get();
    Future<std::string> cancelled = loop.sock_recv(fd, 100);
    REQUIRE(!cancelled.done());
    CHECK(cancelled.cancel());
    spin(loop, 2);  // the done callback removes the reader
    CHECK(!loop.has_reader(fd));
    REQUIRE(::send(pair.peer.get(), "first", 5, MSG_NOSIGNAL) == 5);
    Future<std::string> next = loop.sock_recv(fd, 100);
    REQUIRE(settle(loop, next));
    CHECK(next.result().value() == "first");

    // Data arriving in the same iteration as the cancel is not consumed either.
    char buffer[32];
    Future<std::size_t> into = loop.sock_recv_into(fd, buffer);
    REQUIRE(!into.done());
    REQUIRE(::send(pair.peer.get(), "second", 6, MSG_NOSIGNAL) == 6);
    REQUIRE(readable(fd));
    CHECK(into.cancel());
    spin(loop, 3);
    CHECK(!loop.has_reader(fd));
    Future<std::string> after = loop.sock_recv(fd, 100);
    REQUIRE(after.done());
    CHECK(after.result().value() == "second");
}

namespace {
Task<std::string> recv_after_cancel(EventLoop* loop, int fd) {
    Result<std::string> first = co_await loop->sock_recv(fd, 100);
    CHECK(first.error() == errc::cancelled);
    // The same step calls again: the cancelled call's done callback, queued
    // before this task's wakeup, has already removed its reader.
    co_return co_await loop->sock_recv(fd, 100);
}
}  // namespace

TEST_CASE("175: a task cancelled in sock_recv may call sock_recv again at once") {
    EventLoop loop;
    auto pair = test::unix_pair();
    Task<std::string> task = loop.create_task(recv_after_cancel(&loop, pair.ours.get()));
    REQUIRE(run_until(loop, [&] { return loop.has_reader(pair.ours.get()); }));
    CHECK(task.cancel());
    spin(loop, 2);
    CHECK(loop.has_reader(pair.ours.get()));  // the second call's
    REQUIRE(::send(pair.peer.get(), "again", 5, MSG_NOSIGNAL) == 5);
    REQUIRE(settle(loop, task));
    CHECK(task.result().value() == "again");
}

TEST_CASE("181, 182: sock_sendto returns the bytes sent; sock_recvfrom(_into) return the data and the sender") {
    EventLoop loop;
    for (int family : {AF_INET, AF_INET6}) {
        CAPTURE(family);
        Fd a = bound_datagram(family), b = bound_datagram(family);
        if (!a || !b) {
            MESSAGE("no loopback for this family here; skipped");
            continue;
        }
        Future<ReceivedFrom> from = loop.sock_recvfrom(b.get(), 100);
        REQUIRE(!from.done());
        Future<std::size_t> sent = loop.sock_sendto(a.get(), "hello", local_of(b.get()));
        REQUIRE(sent.done());
        CHECK(sent.result().value() == 5);
        REQUIRE(settle(loop, from));
        CHECK(from.result()->data == "hello");
        CHECK(from.result()->address == local_of(a.get()));

        // recvfrom_into: nbytes 0 is the whole buffer (182); a smaller nbytes
        // truncates the datagram, as recvfrom(2) does.
        std::vector<char> buffer(16, '.');
        REQUIRE(loop.sock_sendto(a.get(), "datagram", local_of(b.get())).done());
        Future<ReceivedInto> whole = loop.sock_recvfrom_into(b.get(), buffer);
        REQUIRE(settle(loop, whole));
        CHECK(whole.result()->nbytes == 8);
        CHECK(whole.result()->address == local_of(a.get()));
        CHECK(std::string(buffer.data(), 9) == "datagram.");
        REQUIRE(loop.sock_sendto(a.get(), "XYZW", local_of(b.get())).done());
        Future<ReceivedInto> part = loop.sock_recvfrom_into(b.get(), buffer, 2);
        REQUIRE(settle(loop, part));
        CHECK(part.result()->nbytes == 2);
        CHECK(std::string(buffer.data(), 4) == "XYta");
        // asyncio: ValueError "nbytes is greater than the length of the buffer".
        CHECK_REFUSED(errc::invalid_argument, auto f = loop.sock_recvfrom_into(b.get(), buffer, 17); (void)f.error());
        CHECK(!loop.has_reader(b.get()));
    }
}

TEST_CASE("181: sock_sendto waits for writability when the receiver's queue is full (AF_UNIX datagrams)") {
    EventLoop loop;
    Fd receiver = bound_datagram(AF_UNIX), sender = bound_datagram(AF_UNIX);
    REQUIRE(receiver);
    REQUIRE(sender);
    SocketAddress to = local_of(receiver.get());
    int queued = 0;
    while (::sendto(sender.get(), "fill", 4, MSG_NOSIGNAL, to.data(), to.size()) == 4) ++queued;
    REQUIRE(errno == EAGAIN);
    std::string datagram = "the last one";
    Future<std::size_t> sent = loop.sock_sendto(sender.get(), datagram, to);
    REQUIRE(!sent.done());
    datagram.assign(datagram.size(), '!');  // it was copied: the caller's buffer is free
    CHECK(loop.has_writer(sender.get()));
    // The receiver reads one datagram per iteration: its queue has room and
    // the datagram goes, whole. (Linux reports an unconnected Unix datagram
    // socket writable even then, so the writer retries until it fits.)
    std::vector<std::string> received;
    auto receive_one = [&] {
        char buffer[64];
        ssize_t n = ::recv(receiver.get(), buffer, sizeof buffer, MSG_DONTWAIT);
        if (n >= 0) received.emplace_back(buffer, static_cast<std::size_t>(n));
        return n >= 0;
    };
    REQUIRE(run_until(loop, [&] {
        (void)receive_one();
        return sent.done();
    }));
    while (receive_one()) {
    }
    CHECK(sent.result().value() == 12);
    REQUIRE(received.size() == static_cast<std::size_t>(queued) + 1);
    CHECK(received.back() == "the last one");
    CHECK(!loop.has_writer(sender.get()));
}

// ---- sendall -----------------------------------------------------------------------

TEST_CASE("180: sock_sendall sends several MiB to a slow reader, continuing after partial sends") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    const std::string expected = pattern(12 << 20);
    std::size_t sent = 123;
    Future<void> done(loop);
    {
        std::string data = expected;
        done = loop.sock_sendall(pair.ours.get(), data, &sent);
        // Only the unsent tail was copied: the caller's string may change now.
        std::fill(data.begin(), data.end(), '!');
    }
    REQUIRE(!done.done());
    CHECK(sent > 0);
    CHECK(sent < expected.size());
    // The peer reads at most 64 KiB per millisecond.
    std::string got;
    std::function<void()> slow_read = [&] {
        char buffer[65536];
        ssize_t n = ::recv(pair.peer.get(), buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) got.append(buffer, static_cast<std::size_t>(n));
        if (got.size() < expected.size()) loop.call_later(0.001, [&] { slow_read(); });
    };
    slow_read();
    REQUIRE(run_until(loop, [&] { return done.done() && got.size() == expected.size(); }, 30));
    CHECK(done.result().has_value());  // completes with void (asyncio: None)
    CHECK(sent == expected.size());
    CHECK(got == expected);
    CHECK(!loop.has_writer(pair.ours.get()));
}

TEST_CASE("176: cancelling sock_sendall removes the writer; sent tells what went out; the next sendall works") {
    EventLoop loop;
    auto pair = test::unix_pair();
    const std::string data = pattern(8 << 20);
    std::size_t sent = 0;
    Future<void> cancelled = loop.sock_sendall(pair.ours.get(), data, &sent);
    REQUIRE(!cancelled.done());
    spin(loop, 3);
    std::size_t partial = sent;
    CHECK(partial > 0);
    CHECK(partial < data.size());
    CHECK(cancelled.cancel());
    spin(loop, 2);
    CHECK(!loop.has_writer(pair.ours.get()));
    CHECK(sent == partial);  // nothing more after the cancel

    Future<void> next = loop.sock_sendall(pair.ours.get(), "tail");
    std::string got;
    REQUIRE(run_until(loop, [&] { (void)test::drain(pair.peer.get(), got); return next.done() && got.size() >= partial + 4; }));
    CHECK(next.result().has_value());
    CHECK(got.size() == partial + 4);
    CHECK(got.compare(0, partial, data, 0, partial) == 0);
    CHECK(got.substr(partial) == "tail");
}

TEST_CASE("sock_sendall to a closed peer: EPIPE in the future, never SIGPIPE; sent stays true after the error") {
    EventLoop loop;
    auto pair = test::unix_pair();
    pair.peer.reset();
    std::size_t sent = 99;
    Future<void> f = loop.sock_sendall(pair.ours.get(), "nobody listens", &sent);
    REQUIRE(f.done());
    CHECK(f.error() == std::errc::broken_pipe);
    CHECK(sent == 0);
}

// ---- connect and accept -------------------------------------------------------------

TEST_CASE("184: a refused connect fails with ECONNREFUSED") {
    EventLoop loop;
    for (int family : {AF_INET, AF_INET6}) {
        CAPTURE(family);
        Fd closed_port = listener(family);
        if (!closed_port) {
            MESSAGE("no loopback for this family here; skipped");
            continue;
        }
        SocketAddress address = local_of(closed_port.get());
        closed_port.reset();  // nobody listens there now
        Fd sock = make_socket(family, SOCK_STREAM);
        Future<void> f = loop.sock_connect(sock.get(), address);
        REQUIRE(settle(loop, f));
        CHECK(f.error() == std::errc::connection_refused);
        CHECK(!loop.has_writer(sock.get()));
    }
}

TEST_CASE("177: cancelling a pending sock_connect removes the writer; the socket can be connected again") {
    EventLoop loop;
    // A listener with a full accept queue drops SYNs, so a connect to it
    // stays in progress (Linux retransmits the SYN after a second).
    Fd server = listener(AF_INET, 0);
    REQUIRE(server);
    SocketAddress address = local_of(server.get());
    Fd filler = make_socket(AF_INET, SOCK_STREAM);
    Future<void> filled = loop.sock_connect(filler.get(), address);
    REQUIRE(settle(loop, filled));
    REQUIRE(filled.result().has_value());
    spin(loop, 2);

    Fd sock = make_socket(AF_INET, SOCK_STREAM);
    Future<void> cancelled = loop.sock_connect(sock.get(), address);
    REQUIRE(!cancelled.done());
    CHECK(loop.has_writer(sock.get()));
    CHECK(cancelled.cancel());
    spin(loop, 2);
    CHECK(!loop.has_writer(sock.get()));

    // Make room in the queue and connect the same socket again: the kernel's
    // connect goes on (EALREADY) or has finished (EISCONN); either way it ends well.
    Future<Accepted> first = loop.sock_accept(server.get());
    REQUIRE(settle(loop, first));
    Fd first_conn(first.result()->fd);
    Future<void> again = loop.sock_connect(sock.get(), address);
    REQUIRE(settle(loop, again, 10));
    CHECK(again.result().has_value());
    Future<Accepted> second = loop.sock_accept(server.get());
    REQUIRE(settle(loop, second));
    Fd second_conn(second.result()->fd);
    CHECK(second.result()->address == local_of(sock.get()));
}

namespace {
Task<Accepted> accept_with_timeout(EventLoop* loop, int listener, double seconds) {
    co_return co_await wait_for(loop->sock_accept(listener), seconds);
}
}  // namespace

TEST_CASE("178: a sock_accept cancelled by wait_for removes its reader; the listener closes cleanly") {
    EventLoop loop;
    Fd server = listener(AF_INET);
    REQUIRE(server);
    int fd = server.get();
    Result<Accepted> timed_out = loop.run_until_complete(loop.create_task(accept_with_timeout(&loop, fd, 0.05)));
    CHECK(timed_out.error() == errc::timeout);
    spin(loop, 1);
    CHECK(!loop.has_reader(fd));
    server.reset();  // no reader left on a closed fd; the fd count proves it is closed
    spin(loop, 1);
}

TEST_CASE("185: sock_accept returns a non-blocking, close-on-exec fd and the peer's address") {
    EventLoop loop;
    for (int family : {AF_INET, AF_INET6, AF_UNIX}) {
        CAPTURE(family);
        Fd server = listener(family);
        if (!server) {
            MESSAGE("no loopback for this family here; skipped");
            continue;
        }
        Future<Accepted> accepted = loop.sock_accept(server.get());
        REQUIRE(!accepted.done());
        CHECK(loop.has_reader(server.get()));
        Fd client = make_socket(family, SOCK_STREAM);
        Future<void> connected = loop.sock_connect(client.get(), local_of(server.get()));
        REQUIRE(settle(loop, accepted));
        REQUIRE(settle(loop, connected));
        CHECK(connected.result().has_value());
        Fd conn(accepted.result()->fd);
        CHECK(has_flag(conn.get(), F_GETFL, O_NONBLOCK));
        CHECK(has_flag(conn.get(), F_GETFD, FD_CLOEXEC));
        if (family != AF_UNIX) CHECK(accepted.result()->address == local_of(client.get()));
        CHECK(!loop.has_reader(server.get()));
    }
}

// ---- a round trip through coroutines ---------------------------------------------------

namespace {
// Echoes until EOF, then closes the connection.
Task<void> echo_once(EventLoop* loop, int listener) {
    Result<Accepted> accepted = co_await loop->sock_accept(listener);
    if (!accepted) co_await fail(accepted.error());
    Fd conn(accepted->fd);
    for (;;) {
        Result<std::string> data = co_await loop->sock_recv(conn.get(), 4096);
        if (!data) co_await fail(data.error());
        if (data->empty()) break;
        Result<void> sent = co_await loop->sock_sendall(conn.get(), *data);
        if (!sent) co_await fail(sent.error());
    }
}

// Connects, sends `message`, shuts down writing and reads until EOF.
Task<std::string> talk(EventLoop* loop, int family, SocketAddress address, std::string message) {
    Fd sock = make_socket(family, SOCK_STREAM);
    Result<void> connected = co_await loop->sock_connect(sock.get(), address);
    if (!connected) co_return connected.error();
    Result<void> sent = co_await loop->sock_sendall(sock.get(), message);
    if (!sent) co_return sent.error();
    ::shutdown(sock.get(), SHUT_WR);
    std::string reply;
    for (;;) {
        Result<std::string> data = co_await loop->sock_recv(sock.get(), 65536);
        if (!data) co_return data.error();
        if (data->empty()) co_return reply;
        reply += *data;
    }
}

// sock_connect takes a resolved address (unlike asyncio, CONTRACT 183):
// getaddrinfo on the loop first, then the first answer.
Task<SocketAddress> resolve(EventLoop* loop, std::string host, int port) {
    Result<std::vector<AddrInfo>> found =
        co_await loop->getaddrinfo(host, port, AddrInfoOptions{.type = SOCK_STREAM});
    if (!found) co_return found.error();
    co_return found->front().address;
}
}  // namespace

TEST_CASE("sock_accept, sock_connect, sock_sendall and sock_recv round trip through co_await (TCP v4/v6, Unix)") {
    EventLoop loop;
    const std::string message = pattern(300'000);
    for (int family : {AF_INET, AF_INET6, AF_UNIX}) {
        CAPTURE(family);
        Fd server = listener(family);
        if (!server) {
            MESSAGE("no loopback for this family here; skipped");
            continue;
        }
        SocketAddress address = local_of(server.get());
        if (family != AF_UNIX) {
            Result<SocketAddress> resolved = loop.run_until_complete(
                loop.create_task(resolve(&loop, family == AF_INET ? "127.0.0.1" : "::1", address.port())));
            REQUIRE(resolved.has_value());
            CHECK(*resolved == address);
        }
        Task<void> echo = loop.create_task(echo_once(&loop, server.get()));
        Result<std::string> reply = loop.run_until_complete(loop.create_task(talk(&loop, family, address, message)));
        REQUIRE(reply.has_value());
        CHECK(*reply == message);
        REQUIRE(settle(loop, echo));
        CHECK(echo.result().has_value());
    }
}
