// test/net/connection_test.cpp — create_connection, create_unix_connection and
// connect_accepted_socket (net/connection.cpp) over real sockets on
// 127.0.0.1, ::1 and AF_UNIX. CONTRACT §9 (122, 125–142), §19 (307, 308),
// §20 (314, 315). The listening sockets are made here with plain
// socket()/bind()/listen(), so these tests do not depend on the Server.
// A connect that hangs is made deterministically, without any network: a
// listener with backlog 0 whose one queue slot is taken drops further SYNs.
// Not testable here: 118's empty getaddrinfo list from a real resolver (the
// same path is proven through detail::connect_to_addresses), 123/124 (no
// ssl yet), 122's ssl.SSLSocket TypeError (Python-only).
#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "net/connection.hpp"
#include "net/dns.hpp"
#include "net/socket_transport.hpp"
#include "net/staggered.hpp"
#include "test/support.hpp"

using namespace evloop;

namespace {

int fd_count() {
    int n = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    while (dirent* entry = ::readdir(dir))
        if (entry->d_name[0] != '.') ++n;
    ::closedir(dir);
    return n;
}

/// A listening socket made by hand: TCP on host:port, or AF_UNIX at a path.
struct Listener {
    Fd fd;
    SocketAddress address;
    Listener(const SocketAddress& where, int backlog = 128) {
        fd.reset(::socket(where.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(::bind(fd.get(), where.data(), where.size()) == 0);
        REQUIRE(::listen(fd.get(), backlog) == 0);
        address = *local_address(fd.get());
    }
    Listener(const char* host, int backlog = 128) : Listener(*SocketAddress::parse(host, 0), backlog) {}
    int port() const { return address.port(); }
    bool pending() const {
        pollfd p{fd.get(), POLLIN, 0};
        return ::poll(&p, 1, 0) == 1;
    }
    Fd accept() const { return Fd(::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC)); }
};

/// A listener on ::1 whose accept queue is full: connects to it hang.
struct HangingListener : Listener {
    Fd filler;
    HangingListener() : Listener("::1", 0) {
        filler.reset(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(::connect(filler.get(), address.data(), address.size()) == 0);
    }
};

/// A port on 127.0.0.1 where nothing listens.
int closed_port() {
    Listener l("127.0.0.1");
    return l.port();
}

AddrInfo tcp(const char* host, int port) {
    SocketAddress a = *SocketAddress::parse(host, port);
    return AddrInfo{.family = a.family(), .type = SOCK_STREAM, .address = a};
}

struct Recorder : Protocol {
    Transport* transport = nullptr;
    int made = 0;
    bool lost = false;
    std::error_code lost_error;
    std::string data;
    std::function<void(Transport&)> on_made;
    void connection_made(Transport& t) override {
        ++made;
        transport = &t;
        if (on_made) on_made(t);
    }
    void data_received(std::string_view d) override { data += d; }
    void connection_lost(std::error_code e) override {
        lost = true;
        lost_error = e;
    }
};

/// A factory that remembers the protocol it made.
struct Factory {
    std::shared_ptr<Recorder> last;
    int calls = 0;
    std::function<void()> on_call;
    ProtocolFactory get() {
        return [this] {
            ++calls;
            if (on_call) on_call();
            last = std::make_shared<Recorder>();
            return last;
        };
    }
};

Result<Connection> wait(EventLoop& loop, Future<Connection>& f) {
    REQUIRE(test::run_until(loop, [&] { return f.done(); }));
    return f.result();
}

void close_and_wait(EventLoop& loop, const Connection& c) {
    c.transport->close();
    REQUIRE(test::run_until(loop, [&] { return c.protocol_as<Recorder>().lost; }));
}

const std::error_code kRefused(ECONNREFUSED, std::system_category());

}  // namespace

TEST_CASE("argument checks are refused with asyncio's messages (CONTRACT 122)") {
    EventLoop loop;
    Factory f;
    int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_connection(f.get(), "127.0.0.1", 80, {.sock = sock}));
    CHECK_FALSE(is_open_fd(sock));  // a passed sock belongs to the call, also on failure
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_connection(f.get(), "", 0));
    int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_connection(f.get(), "", 0, {.sock = udp}));
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_connection(f.get(), "127.0.0.1", -1));
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_connection(f.get(), "127.0.0.1", 65536));
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_connection(f.get(), "127.0.0.1", 80, {.local_port = 70000}));
    CHECK(f.calls == 0);
}

TEST_CASE("TCP over 127.0.0.1 and ::1: factory after connect, done after connection_made, TCP_NODELAY (CONTRACT 138, 139, 142)") {
    for (const char* host : {"127.0.0.1", "::1"}) {
        CAPTURE(host);
        EventLoop loop;
        Listener server(host);
        Factory f;
        bool connected_at_factory = false;
        f.on_call = [&] { connected_at_factory = server.pending(); };  // 138: the handshake is done
        Future<Connection> future = loop.create_connection(f.get(), host, server.port());
        int made_when_done = -1;
        future.add_done_callback([&](Future<Connection>&) { made_when_done = f.last ? f.last->made : -1; });
        Result<Connection> c = wait(loop, future);
        REQUIRE(c);
        REQUIRE(test::run_until(loop, [&] { return made_when_done >= 0; }));
        CHECK(connected_at_factory);
        CHECK(f.calls == 1);
        CHECK(made_when_done == 1);  // 139
        CHECK(c->protocol.get() == f.last.get());
        int fd = std::get<int>(c->transport->get_extra_info("socket"));
        int nodelay = 0;
        socklen_t size = sizeof nodelay;
        REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &size) == 0);
        CHECK(nodelay == 1);  // 142
        CHECK(std::get<SocketAddress>(c->transport->get_extra_info("peername")) == server.address);
        // Data both ways.
        Fd peer = server.accept();
        REQUIRE(c->transport->write("ping") == std::error_code());
        char buffer[8] = {};
        CHECK(::recv(peer.get(), buffer, sizeof buffer, 0) == 4);
        CHECK(::send(peer.get(), "pong", 4, 0) == 4);
        REQUIRE(test::run_until(loop, [&] { return f.last->data == "pong"; }));
        close_and_wait(loop, *c);
    }
}

TEST_CASE("a passed sock is made non-blocking and wrapped (CONTRACT 125)") {
    EventLoop loop;
    Listener server("127.0.0.1");
    int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // blocking
    REQUIRE(::connect(sock, server.address.data(), server.address.size()) == 0);
    Factory f;
    Future<Connection> future = loop.create_connection(f.get(), "", 0, {.sock = sock});
    Result<Connection> c = wait(loop, future);
    REQUIRE(c);
    CHECK((::fcntl(sock, F_GETFL) & O_NONBLOCK) != 0);
    CHECK(std::get<int>(c->transport->get_extra_info("socket")) == sock);
    CHECK(f.last->made == 1);
    close_and_wait(loop, *c);
}

TEST_CASE("a refused port keeps ECONNREFUSED and names the address (CONTRACT 127, 128)") {
    EventLoop loop;
    Factory f;
    int port = closed_port();
    std::vector<ConnectFailure> failures;
    int before = fd_count();
    Future<Connection> future = loop.create_connection(f.get(), "127.0.0.1", port, {.failures = &failures});
    Result<Connection> c = wait(loop, future);
    CHECK(c.error() == kRefused);
    REQUIRE(failures.size() == 1);
    CHECK(failures[0].address == *SocketAddress::parse("127.0.0.1", port));
    CHECK(failures[0].to_string() == "connect to 127.0.0.1:" + std::to_string(port) + " failed: " + kRefused.message());
    CHECK(f.calls == 0);
    CHECK(fd_count() == before);  // the failed socket is closed (126)
}

TEST_CASE("an unknown host and strings that are no address fail in the resolver's category (CONTRACT 113)") {
    EventLoop loop;
    Factory f;
    for (const char* host : {"nonexistent.invalid", "1.2.3.4.5", "::1::2"}) {
        CAPTURE(host);
        Future<Connection> future = loop.create_connection(f.get(), host, 80);
        Result<Connection> c = wait(loop, future);
        REQUIRE_FALSE(c);
        CHECK(c.error().category() == gai_category());
    }
    CHECK(f.calls == 0);
}

TEST_CASE("addresses are tried in order; failures are closed and reported (CONTRACT 126, 127)") {
    EventLoop loop;
    Listener server("127.0.0.1");
    Factory f;
    int refused = closed_port();
    std::vector<ConnectFailure> failures;
    int before = fd_count();
    Future<Connection> future = detail::connect_to_addresses(
        loop, f.get(), {tcp("127.0.0.1", refused), tcp("127.0.0.1", server.port())}, std::nullopt, {.failures = &failures});
    Result<Connection> c = wait(loop, future);
    REQUIRE(c);
    CHECK(std::get<SocketAddress>(c->transport->get_extra_info("peername")) == server.address);
    REQUIRE(failures.size() == 1);
    CHECK(failures[0].error == kRefused);
    CHECK(fd_count() == before + 1);  // only the transport's socket
    close_and_wait(loop, *c);
    CHECK(fd_count() == before);
}

TEST_CASE("every address failing: identical errors give that error, different ones multiple_errors (CONTRACT 127, 131)") {
    EventLoop loop;
    Factory f;
    int p1 = closed_port(), p2 = closed_port();
    Future<Connection> same =
        detail::connect_to_addresses(loop, f.get(), {tcp("127.0.0.1", p1), tcp("127.0.0.1", p2)}, std::nullopt, {});
    CHECK(wait(loop, same).error() == kRefused);

    // ::1 finds no local address of its family, 127.0.0.1 is refused.
    std::vector<ConnectFailure> failures;
    Future<Connection> mixed = detail::connect_to_addresses(loop, f.get(), {tcp("::1", p1), tcp("127.0.0.1", p2)},
                                                            std::vector<AddrInfo>{tcp("127.0.0.1", 0)},
                                                            {.failures = &failures});
    CHECK(wait(loop, mixed).error() == errc::multiple_errors);
    REQUIRE(failures.size() == 2);
    CHECK(failures[0].error == errc::no_matching_local_address);
    CHECK(failures[1].error == kRefused);
    CHECK(describe_failures(failures) ==
          "Multiple exceptions: " + failures[0].to_string() + ", " + failures[1].to_string());
    CHECK(describe_failures({failures[1]}) == failures[1].to_string());
    CHECK(f.calls == 0);
}

TEST_CASE("local_host/local_port: bound before connecting, other families skipped (CONTRACT 130, 131)") {
    EventLoop loop;
    Listener server("127.0.0.1");
    Factory f;
    int local_port = closed_port();
    Future<Connection> future =
        loop.create_connection(f.get(), "127.0.0.1", server.port(), {.local_host = "127.0.0.1", .local_port = local_port});
    Result<Connection> c = wait(loop, future);
    REQUIRE(c);
    CHECK(std::get<SocketAddress>(c->transport->get_extra_info("sockname")) == *SocketAddress::parse("127.0.0.1", local_port));
    close_and_wait(loop, *c);

    // An IPv6 local address first: skipped for the IPv4 remote.
    Future<Connection> skip = detail::connect_to_addresses(loop, f.get(), {tcp("127.0.0.1", server.port())},
                                                           std::vector<AddrInfo>{tcp("::1", 0), tcp("127.0.0.1", 0)}, {});
    Result<Connection> c2 = wait(loop, skip);
    REQUIRE(c2);
    CHECK(std::get<SocketAddress>(c2->transport->get_extra_info("sockname")).host() == "127.0.0.1");
    close_and_wait(loop, *c2);

    Future<Connection> nomatch = loop.create_connection(f.get(), "::1", server.port(), {.local_host = "127.0.0.1"});
    CHECK(wait(loop, nomatch).error() == errc::no_matching_local_address);
}

TEST_CASE("a bind failure keeps its errno; a local address that resolves to nothing fails (CONTRACT 132, 133, 118)") {
    EventLoop loop;
    Listener server("127.0.0.1");
    Factory f;
    Future<Connection> in_use =
        loop.create_connection(f.get(), "127.0.0.1", server.port(), {.local_host = "127.0.0.1", .local_port = server.port()});
    CHECK(wait(loop, in_use).error() == std::error_code(EADDRINUSE, std::system_category()));

    Future<Connection> unresolvable =
        loop.create_connection(f.get(), "127.0.0.1", server.port(), {.local_host = "nonexistent.invalid"});
    CHECK(wait(loop, unresolvable).error().category() == gai_category());

    Future<Connection> no_local = detail::connect_to_addresses(loop, f.get(), {tcp("127.0.0.1", server.port())},
                                                               std::vector<AddrInfo>{}, {});
    CHECK(wait(loop, no_local).error() == errc::getaddrinfo_empty);
    Future<Connection> no_remote = detail::connect_to_addresses(loop, f.get(), {}, std::nullopt, {});
    CHECK(wait(loop, no_remote).error() == errc::getaddrinfo_empty);
    CHECK(f.calls == 0);
}

TEST_CASE("happy eyeballs over real sockets: the delay starts the second attempt, the loser is closed (CONTRACT 136)") {
    EventLoop loop;
    HangingListener hanging;
    Listener server("127.0.0.1");
    Factory f;
    std::vector<ConnectFailure> failures;
    int before = fd_count();
    double t0 = loop.time();
    Future<Connection> future = detail::connect_to_addresses(
        loop, f.get(), {tcp("::1", hanging.port()), tcp("127.0.0.1", server.port())}, std::nullopt,
        {.happy_eyeballs_delay = 0.1, .failures = &failures});
    Result<Connection> c = wait(loop, future);
    REQUIRE(c);
    CHECK(loop.time() - t0 >= 0.099);
    CHECK(std::get<SocketAddress>(c->transport->get_extra_info("peername")) == server.address);
    CHECK(failures.empty());          // the loser was cancelled, it did not fail
    CHECK(fd_count() == before + 1);  // the loser's socket is closed
    close_and_wait(loop, *c);

    // A failure starts the next attempt at once, long before the delay.
    t0 = loop.time();
    Future<Connection> fast = detail::connect_to_addresses(
        loop, f.get(), {tcp("127.0.0.1", closed_port()), tcp("127.0.0.1", server.port())}, std::nullopt,
        {.happy_eyeballs_delay = 30.0});
    Result<Connection> c2 = wait(loop, fast);
    REQUIRE(c2);
    CHECK(loop.time() - t0 < 5.0);
    close_and_wait(loop, *c2);

    // Through create_connection, with the numeric host.
    Future<Connection> direct = loop.create_connection(f.get(), "127.0.0.1", server.port(), {.happy_eyeballs_delay = 0.25});
    Result<Connection> c3 = wait(loop, direct);
    REQUIRE(c3);
    close_and_wait(loop, *c3);
}

TEST_CASE("cancelling while resolving or connecting closes every socket (CONTRACT 129)") {
    EventLoop loop;
    HangingListener hanging;
    Factory f;
    int before = fd_count();
    Future<Connection> connecting = loop.create_connection(f.get(), "::1", hanging.port());
    (void)test::run_until(loop, [] { return false; }, 0.05);
    CHECK(fd_count() == before + 1);  // the socket waiting for the handshake
    CHECK(connecting.cancel());
    REQUIRE(test::run_until(loop, [&] { return fd_count() == before; }));

    Future<Connection> resolving = loop.create_connection(f.get(), "localhost", hanging.port());
    CHECK(resolving.cancel());
    (void)test::run_until(loop, [] { return false; }, 0.1);
    CHECK(f.calls == 0);
    CHECK(fd_count() == before);
}

TEST_CASE("closing the loop while a connect is in flight closes its socket") {
    HangingListener hanging;
    int before = fd_count();
    {
        EventLoop loop;
        Factory f;
        Future<Connection> connecting = loop.create_connection(f.get(), "::1", hanging.port());
        (void)test::run_until(loop, [] { return false; }, 0.05);
        REQUIRE(loop.close() == std::error_code());
        CHECK_FALSE(connecting.done());  // nothing runs on a closed loop
        CHECK(f.calls == 0);
    }
    CHECK(fd_count() == before);
}

TEST_CASE("a closed loop refuses every call, and a passed socket is closed") {
    EventLoop loop;
    REQUIRE(loop.close() == std::error_code());
    Factory f;
    CHECK_REFUSED(errc::loop_closed, (void)loop.create_connection(f.get(), "127.0.0.1", 80));
    CHECK_REFUSED(errc::loop_closed, (void)loop.create_unix_connection(f.get(), "/nonexistent"));
    int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_REFUSED(errc::loop_closed, (void)loop.connect_accepted_socket(f.get(), sock));
    CHECK_FALSE(is_open_fd(sock));
}

TEST_CASE("cancelled once the transport exists: the transport is closed (CONTRACT 141)") {
    EventLoop loop;
    Listener server("127.0.0.1");
    Factory f;
    std::optional<Future<Connection>> future;
    f.on_call = [&] { future->cancel(); };  // connected, transport not made yet
    future.emplace(loop.create_connection(f.get(), "127.0.0.1", server.port()));
    REQUIRE(test::run_until(loop, [&] { return f.last && f.last->lost; }));
    CHECK(future->cancelled());
    CHECK(f.last->made == 1);

    // Cancelled inside connection_made: the waiter sees it and closes.
    std::shared_ptr<Recorder> made;
    ProtocolFactory cancel_in_made = [&] {
        made = std::make_shared<Recorder>();
        made->on_made = [&](Transport&) { future->cancel(); };
        return made;
    };
    future.emplace(loop.create_connection(cancel_in_made, "127.0.0.1", server.port()));
    REQUIRE(test::run_until(loop, [&] { return made && made->lost; }));
    CHECK(future->cancelled());
}

TEST_CASE("closed inside connection_made: the pair is returned, connection_lost already ran (CONTRACT 140)") {
    EventLoop loop;
    Listener server("127.0.0.1");
    std::shared_ptr<Recorder> protocol;
    Future<Connection> future = loop.create_connection(
        [&] {
            protocol = std::make_shared<Recorder>();
            protocol->on_made = [](Transport& t) { t.close(); };
            return protocol;
        },
        "127.0.0.1", server.port());
    bool lost_when_done = false;
    future.add_done_callback([&](Future<Connection>&) { lost_when_done = protocol->lost; });
    Result<Connection> c = wait(loop, future);
    REQUIRE(c);
    CHECK(c->protocol == protocol);
    CHECK(c->transport->is_closing());
    REQUIRE(test::run_until(loop, [&] { return lost_when_done; }));
}

TEST_CASE("a factory that makes no protocol fails the call and closes the socket") {
    EventLoop loop;
    Listener server("127.0.0.1");
    int before = fd_count();
    Future<Connection> future =
        loop.create_connection([] { return std::shared_ptr<Protocol>(); }, "127.0.0.1", server.port());
    CHECK(wait(loop, future).error() == errc::invalid_argument);
    CHECK(fd_count() == before);
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("an exception from the factory fails the call with it and closes the socket") {
    EventLoop loop;
    Listener server("127.0.0.1");
    int before = fd_count();
    Future<Connection> future = loop.create_connection(
        []() -> std::shared_ptr<Protocol> { throw std::runtime_error("no protocol today"); }, "127.0.0.1", server.port());
    REQUIRE(test::run_until(loop, [&] { return future.done(); }));
    CHECK_THROWS_AS((void)future.result(), std::runtime_error);
    CHECK(fd_count() == before);
}
#endif

TEST_CASE("debug mode logs every failed address") {
    EventLoop loop;
    loop.set_debug(true);
    test::LogCapture capture;
    Factory f;
    int port = closed_port();
    Future<Connection> future = loop.create_connection(f.get(), "127.0.0.1", port);
    CHECK(wait(loop, future).error() == kRefused);
    CHECK(capture.contains("connect to 127.0.0.1:" + std::to_string(port) + " failed"));
}

TEST_CASE("1,000 sequential connects leak no fd (CONTRACT 126, 129)") {
    EventLoop loop;
    Listener server("127.0.0.1", 4096);
    // The server side accepts and closes at once.
    REQUIRE(loop.add_reader(server.fd.get(), [&] { Fd peer = server.accept(); }) == std::error_code());
    Factory f;
    int before = fd_count();
    int refused = closed_port();
    for (int i = 0; i < 1000; ++i) {
        Future<Connection> future = loop.create_connection(f.get(), "127.0.0.1", i % 10 == 9 ? refused : server.port());
        Result<Connection> c = wait(loop, future);
        if (i % 10 == 9) {
            REQUIRE(c.error() == kRefused);
            continue;
        }
        REQUIRE(c);
        close_and_wait(loop, *c);
    }
    (void)test::run_until(loop, [&] { return !server.pending(); });
    CHECK(fd_count() == before);
    CHECK(loop.remove_reader(server.fd.get()));
}

TEST_CASE("Unix connections: a path, an abstract name, and the checks (CONTRACT 307, 308)") {
    EventLoop loop;
    std::string path = "/tmp/evloop-connection-test-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    std::string abstract = std::string(1, '\0') + "evloop-connection-test-" + std::to_string(::getpid());
    for (const std::string& name : {path, abstract}) {
        Listener server(*SocketAddress::unix_path(name));
        Factory f;
        Future<Connection> future = loop.create_unix_connection(f.get(), name);
        Result<Connection> c = wait(loop, future);
        REQUIRE(c);
        CHECK(f.last->made == 1);
        Fd peer = server.accept();
        REQUIRE(c->transport->write("hi") == std::error_code());
        char buffer[4] = {};
        CHECK(::recv(peer.get(), buffer, sizeof buffer, 0) == 2);
        CHECK(::send(peer.get(), "yo", 2, 0) == 2);
        REQUIRE(test::run_until(loop, [&] { return f.last->data == "yo"; }));
        close_and_wait(loop, *c);
    }
    ::unlink(path.c_str());
    Factory f;
    Future<Connection> missing = loop.create_unix_connection(f.get(), path);
    CHECK(wait(loop, missing).error() == std::error_code(ENOENT, std::system_category()));
    Future<Connection> too_long = loop.create_unix_connection(f.get(), "/tmp/" + std::string(200, 'x'));
    CHECK(wait(loop, too_long).error() == std::error_code(ENAMETOOLONG, std::system_category()));

    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_unix_connection(f.get(), ""));
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_unix_connection(f.get(), path, {.sock = pair[0]}));
    int inet = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_unix_connection(f.get(), "", {.sock = inet}));
    Future<Connection> by_sock = loop.create_unix_connection(f.get(), "", {.sock = pair[1]});
    Result<Connection> c = wait(loop, by_sock);
    REQUIRE(c);
    close_and_wait(loop, *c);
    CHECK(f.calls == 1);
}

TEST_CASE("a Unix listener with a full backlog fails the connect with EAGAIN, and nothing leaks") {
    // Our choice, not asyncio's: asyncio waits for writability, which an
    // unconnected AF_UNIX socket reports at once (see net/connection.cpp).
    EventLoop loop;
    std::string name = std::string(1, '\0') + "evloop-eagain-" + std::to_string(::getpid());
    Listener server(*SocketAddress::unix_path(name), 0);
    SocketAddress address = *SocketAddress::unix_path(name);
    std::vector<Fd> fillers;
    for (int i = 0; i < 64; ++i) {  // until the backlog is full
        Fd c(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (::connect(c.get(), address.data(), address.size()) != 0) break;
        fillers.push_back(std::move(c));
    }
    Factory f;
    int before = fd_count();
    Future<Connection> future = loop.create_unix_connection(f.get(), name);
    CHECK(wait(loop, future).error() == std::error_code(EAGAIN, std::system_category()));
    CHECK(fd_count() == before);
    CHECK(f.calls == 0);
}

TEST_CASE("connect_accepted_socket wraps an accepted socket; data flows both ways (CONTRACT 314, 315)") {
    EventLoop loop;
    Listener server("127.0.0.1");
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(client.get(), server.address.data(), server.address.size()) == 0);
    Factory f;
    Future<Connection> future = loop.connect_accepted_socket(f.get(), server.accept().release());
    Result<Connection> c = wait(loop, future);
    REQUIRE(c);
    CHECK(f.last->made == 1);
    REQUIRE(c->transport->write("from server") == std::error_code());
    char buffer[16] = {};
    CHECK(::recv(client.get(), buffer, sizeof buffer, 0) == 11);
    CHECK(::send(client.get(), "from client", 11, 0) == 11);
    REQUIRE(test::run_until(loop, [&] { return f.last->data == "from client"; }));
    close_and_wait(loop, *c);
    CHECK(::recv(client.get(), buffer, sizeof buffer, 0) == 0);  // EOF: the transport closed it

    int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK_REFUSED(errc::invalid_argument, (void)loop.connect_accepted_socket(f.get(), udp));
    CHECK_FALSE(is_open_fd(udp));
}
