// test/net/datagram_transport_test.cpp — DatagramSocketTransport
// (net/datagram_transport.cpp) over real sockets: UDP on 127.0.0.1 and ::1,
// and AF_UNIX SOCK_DGRAM socketpairs, whose sender blocks (EAGAIN) when the
// receiver does not read — the reliable way to force the send queue (UDP on
// Linux loopback almost never blocks). The other end is a plain socket the
// test drives with send/recv. CONTRACT 282–290, 304, 325; the endpoint
// options (316–324, 313) are in datagram_endpoint_test.cpp.
// Python-only: 285 (a non-OSError from a socket call: C++ syscalls return
// errno values, there is nothing else they can raise).
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <variant>
#include <vector>

#include "net/datagram_transport.hpp"
#include "test/support.hpp"

using namespace evloop;
using evloop::test::run_until;

namespace {

struct Recorder : DatagramProtocol {
    std::vector<std::string> events;
    std::vector<std::pair<std::string, SocketAddress>> datagrams;
    std::vector<std::error_code> errors;
    DatagramTransport* transport = nullptr;
    int lost = 0;
    std::error_code lost_error;
    std::function<void(Recorder&)> on_made, on_datagram, on_lost;

    void connection_made(DatagramTransport& t) override {
        transport = &t;
        events.push_back("made");
        if (on_made) on_made(*this);
    }
    void datagram_received(std::string_view data, const SocketAddress& from) override {
        datagrams.emplace_back(std::string(data), from);
        events.push_back("datagram");
        if (on_datagram) on_datagram(*this);
    }
    void error_received(std::error_code error) override {
        errors.push_back(error);
        events.push_back("error");
    }
    void connection_lost(std::error_code error) override {
        lost_error = error;
        ++lost;
        events.push_back("lost");
        if (on_lost) on_lost(*this);
    }
    void pause_writing() override { events.push_back("pause"); }
    void resume_writing() override { events.push_back("resume"); }
    int count(std::string_view name) const {
        int n = 0;
        for (auto& e : events) n += e == name;
        return n;
    }
};

/// A non-blocking UDP socket bound to the loopback address of `family`, port 0.
Fd udp_socket(int family) {
    Fd sock(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    REQUIRE(sock);
    Result<SocketAddress> any = SocketAddress::parse(family == AF_INET ? "127.0.0.1" : "::1", 0);
    REQUIRE(::bind(sock.get(), any->data(), any->size()) == 0);
    return sock;
}

SocketAddress name_of(int fd) { return local_address(fd).value(); }

/// A port on 127.0.0.1 nobody listens on (bound, then closed).
SocketAddress closed_port() {
    Fd sock = udp_socket(AF_INET);
    return name_of(sock.get());
}

/// Receives one datagram from a non-blocking socket, running the loop meanwhile.
std::optional<std::string> peer_recv(EventLoop& loop, int fd, SocketAddress* from = nullptr) {
    std::optional<std::string> got;
    run_until(loop, [&] {
        if (got) return true;  // run_until asks once more at the end
        char buffer[70000];
        SocketAddress sender;
        socklen_t size = SocketAddress::capacity();
        ssize_t n = ::recvfrom(fd, buffer, sizeof buffer, 0, sender.data(), &size);
        if (n < 0) return false;
        sender.set_size(size);
        if (from) *from = sender;
        got.emplace(buffer, static_cast<std::size_t>(n));
        return true;
    });
    return got;
}

struct Endpoint {
    EventLoop& loop;
    std::shared_ptr<Recorder> protocol = std::make_shared<Recorder>();
    std::shared_ptr<DatagramSocketTransport> transport;

    Endpoint(EventLoop& loop, Fd sock, SocketAddress destination = {}) : loop(loop) {
        transport = DatagramSocketTransport::make(loop, std::move(sock), protocol, nullptr, std::move(destination));
        REQUIRE(run_until(loop, [&] { return protocol->transport != nullptr; }));
    }
    void close_and_wait() {
        transport->close();
        REQUIRE(run_until(loop, [&] { return protocol->lost == 1; }));
    }
};

// A Unix datagram socketpair whose `peer` end the test reads (or not).
struct UnixPair {
    Fd ours, peer;
};
UnixPair unix_pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
    return {Fd(fds[0]), Fd(fds[1])};
}

// Runs `n` iterations that never block (run_once would wait for an event).
void spin(EventLoop& loop, int n) {
    for (int i = 0; i < n; ++i) {
        loop.call_soon([] {});
        (void)loop.run_once();
    }
}

// The i-th datagram of a queue test: its size and bytes say which it is.
std::string numbered(int i) { return std::to_string(i) + ":" + std::string(1000 + 37 * i, static_cast<char>('a' + i % 26)); }

}  // namespace

TEST_CASE("connection_made, then reading, then the waiter, from one later callback (CONTRACT 325, 304)") {
    EventLoop loop;
    Fd ours = udp_socket(AF_INET);
    Fd peer = udp_socket(AF_INET);
    SocketAddress our_name = name_of(ours.get());
    // Already waiting in the socket before the transport exists.
    REQUIRE(::sendto(peer.get(), "early", 5, 0, our_name.data(), our_name.size()) == 5);
    auto protocol = std::make_shared<Recorder>();
    Future<void> waiter = loop.create_future();
    std::vector<std::string> at_waiter;
    waiter.add_done_callback([&](Future<void>&) { at_waiter = protocol->events; });
    auto transport = DatagramSocketTransport::make(loop, std::move(ours), protocol, &waiter);
    CHECK(protocol->events.empty());  // nothing from inside make()
    REQUIRE(loop.run_until_complete(waiter));
    CHECK(at_waiter == std::vector<std::string>{"made"});
    REQUIRE(run_until(loop, [&] { return protocol->datagrams.size() == 1; }));
    CHECK(protocol->datagrams[0].first == "early");
    CHECK(protocol->datagrams[0].second == name_of(peer.get()));  // datagram_received(data, addr)
    transport->close();
    REQUIRE(run_until(loop, [&] { return protocol->lost == 1; }));
    CHECK(protocol->events == std::vector<std::string>{"made", "datagram", "lost"});
    CHECK(!protocol->lost_error);
}

TEST_CASE("zero-length datagrams are sent and received (CONTRACT 282)") {
    EventLoop loop;
    for (int family : {AF_INET, AF_INET6}) {
        CAPTURE(family);
        Fd peer = udp_socket(family);
        SocketAddress peer_name = name_of(peer.get());
        Endpoint e(loop, udp_socket(family));
        CHECK(!e.transport->sendto("", peer_name));
        CHECK(peer_recv(loop, peer.get()) == std::string());
        SocketAddress our_name = name_of(e.transport->fd());
        REQUIRE(::sendto(peer.get(), "", 0, 0, our_name.data(), our_name.size()) == 0);
        REQUIRE(run_until(loop, [&] { return e.protocol->datagrams.size() == 1; }));
        CHECK(e.protocol->datagrams[0].first.empty());
        e.close_and_wait();
    }
}

TEST_CASE("a connected endpoint accepts no address or its peer's, nothing else (CONTRACT 283, 290)") {
    EventLoop loop;
    Fd ours = udp_socket(AF_INET);
    Fd peer = udp_socket(AF_INET);
    SocketAddress peer_name = name_of(peer.get());
    REQUIRE(::connect(ours.get(), peer_name.data(), peer_name.size()) == 0);
    Endpoint e(loop, std::move(ours));
    CHECK(e.transport->connected());
    CHECK(!e.transport->sendto("one"));
    CHECK(!e.transport->sendto("two", peer_name));
    CHECK(!e.transport->sendto("three", *SocketAddress::parse("127.0.0.1", peer_name.port())));  // same, parsed
    CHECK(peer_recv(loop, peer.get()) == "one");
    CHECK(peer_recv(loop, peer.get()) == "two");
    CHECK(peer_recv(loop, peer.get()) == "three");
    SocketAddress other = closed_port();
    CHECK_REFUSED(errc::invalid_address, (void)e.transport->sendto("x", other));
    // get_extra_info: the peer, our name and the fd (CONTRACT 290).
    CHECK(std::get<SocketAddress>(e.transport->get_extra_info("peername")) == peer_name);
    CHECK(std::get<SocketAddress>(e.transport->get_extra_info("sockname")) == name_of(e.transport->fd()));
    CHECK(std::get<int>(e.transport->get_extra_info("socket")) == e.transport->fd());
    CHECK(std::holds_alternative<std::monostate>(e.transport->get_extra_info("nonsense")));
    CHECK(!e.transport->is_closing());
    e.close_and_wait();
    CHECK(std::holds_alternative<std::monostate>(e.transport->get_extra_info("peername")));
}

TEST_CASE("an unconnected endpoint sends where it is told, needs an address, and has no peername (CONTRACT 283, 290)") {
    EventLoop loop;
    Endpoint e(loop, udp_socket(AF_INET6));
    CHECK(!e.transport->connected());
    CHECK(std::holds_alternative<std::monostate>(e.transport->get_extra_info("peername")));
    CHECK(std::get<SocketAddress>(e.transport->get_extra_info("sockname")).family() == AF_INET6);
    CHECK_REFUSED(errc::invalid_address, (void)e.transport->sendto("nowhere"));
    CHECK_REFUSED(errc::invalid_address, (void)e.transport->sendto("nowhere", SocketAddress()));
    Fd a = udp_socket(AF_INET6);
    Fd b = udp_socket(AF_INET6);
    CHECK(!e.transport->sendto("to a", name_of(a.get())));
    CHECK(!e.transport->sendto("to b", name_of(b.get())));
    SocketAddress from;
    CHECK(peer_recv(loop, a.get(), &from) == "to a");
    CHECK(from == name_of(e.transport->fd()));
    CHECK(peer_recv(loop, b.get()) == "to b");
    e.close_and_wait();
}

TEST_CASE("a default destination (allow_broadcast's remote_addr) is used when no address is given (CONTRACT 322, 290)") {
    EventLoop loop;
    Fd peer = udp_socket(AF_INET);
    Endpoint e(loop, udp_socket(AF_INET), name_of(peer.get()));
    CHECK(!e.transport->connected());
    CHECK(std::holds_alternative<std::monostate>(e.transport->get_extra_info("peername")));
    CHECK(!e.transport->sendto("default"));
    CHECK(peer_recv(loop, peer.get()) == "default");
    Fd other = udp_socket(AF_INET);  // and any other address (our decision, see the header)
    CHECK(!e.transport->sendto("other", name_of(other.get())));
    CHECK(peer_recv(loop, other.get()) == "other");
    e.close_and_wait();
}

TEST_CASE("an address of another family is refused before any syscall") {
    EventLoop loop;
    Endpoint v4(loop, udp_socket(AF_INET));
    Fd v6_peer = udp_socket(AF_INET6);
    CHECK_REFUSED(errc::invalid_address, (void)v4.transport->sendto("x", name_of(v6_peer.get())));
    UnixPair pair = unix_pair();
    Endpoint local(loop, std::move(pair.ours));
    CHECK_REFUSED(errc::invalid_address, (void)local.transport->sendto("x", *SocketAddress::parse("127.0.0.1", 9)));
    CHECK(!v4.transport->is_closing());
    CHECK(v4.protocol->errors.empty());
    v4.close_and_wait();
    local.close_and_wait();
}

TEST_CASE("ECONNREFUSED goes to error_received; the endpoint stays open and keeps working (CONTRACT 284, 286)") {
    EventLoop loop;
    SocketAddress target = closed_port();
    Fd ours = udp_socket(AF_INET);
    REQUIRE(::connect(ours.get(), target.data(), target.size()) == 0);
    Endpoint e(loop, std::move(ours));
    const std::error_code refused(ECONNREFUSED, std::system_category());
    // The ICMP port unreachable arrives as a socket error: through the read
    // path, or as the result of the next send (whichever comes first).
    CHECK(!e.transport->sendto("anyone?"));
    REQUIRE(run_until(loop, [&] {
        if (e.protocol->errors.empty()) (void)e.transport->sendto("anyone?");
        return !e.protocol->errors.empty();
    }));
    CHECK(e.protocol->errors[0] == refused);
    CHECK(!e.transport->is_closing());
    CHECK(e.protocol->lost == 0);
    // Someone listens there now: both directions work on the same transport.
    Fd peer(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    REQUIRE(::bind(peer.get(), target.data(), target.size()) == 0);
    CHECK(!e.transport->sendto("hello"));
    CHECK(peer_recv(loop, peer.get()) == "hello");
    SocketAddress our_name = name_of(e.transport->fd());
    REQUIRE(::sendto(peer.get(), "back", 4, 0, our_name.data(), our_name.size()) == 4);
    REQUIRE(run_until(loop, [&] { return !e.protocol->datagrams.empty(); }));
    CHECK(e.protocol->datagrams.back().first == "back");
    e.close_and_wait();
}

TEST_CASE("an unconnected endpoint receives after sending to a port nobody listens on (CONTRACT 286)") {
    EventLoop loop;
    Endpoint e(loop, udp_socket(AF_INET));
    CHECK(!e.transport->sendto("lost", closed_port()));
    Fd peer = udp_socket(AF_INET);
    SocketAddress our_name = name_of(e.transport->fd());
    REQUIRE(::sendto(peer.get(), "still here", 10, 0, our_name.data(), our_name.size()) == 10);
    REQUIRE(run_until(loop, [&] { return !e.protocol->datagrams.empty(); }));
    CHECK(e.protocol->datagrams[0].first == "still here");
    CHECK(!e.transport->is_closing());
    e.close_and_wait();
}

TEST_CASE("a datagram too large is the kernel's EMSGSIZE, returned and reported; the endpoint stays open") {
    EventLoop loop;
    Fd peer = udp_socket(AF_INET);
    Endpoint e(loop, udp_socket(AF_INET));
    const std::error_code too_long(EMSGSIZE, std::system_category());
    CHECK(e.transport->sendto(std::string(70000, 'x'), name_of(peer.get())) == too_long);
    REQUIRE(e.protocol->errors.size() == 1);
    CHECK(e.protocol->errors[0] == too_long);
    CHECK(e.transport->get_write_buffer_size() == 0);  // not queued
    CHECK(!e.transport->is_closing());
    std::string largest(65507, 'y');  // IPv4's maximum payload goes through
    CHECK(!e.transport->sendto(largest, name_of(peer.get())));
    CHECK(peer_recv(loop, peer.get()) == largest);
    e.close_and_wait();
}

TEST_CASE("a blocked socket queues whole datagrams, flushes them FIFO, and pauses/resumes (CONTRACT 287, 251, 252)") {
    EventLoop loop;
    UnixPair pair = unix_pair();
    int sndbuf = 4096;  // a handful of datagrams fill it
    REQUIRE(::setsockopt(pair.ours.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf) == 0);
    Endpoint e(loop, std::move(pair.ours));
    REQUIRE(!e.transport->set_write_buffer_limits(20000, 5000));
    std::vector<std::string> sent;
    std::size_t expected_queue = 0;
    int first_queued = -1;
    for (int i = 0; i < 60; ++i) {
        sent.push_back(numbered(i));
        std::string copy = sent.back();
        CHECK(!e.transport->sendto(copy));
        copy.assign(copy.size(), '#');  // the queue kept its own copy
        if (first_queued < 0 && e.transport->get_write_buffer_size() > 0) first_queued = i;
        if (first_queued >= 0) expected_queue += sent.back().size();
    }
    REQUIRE(first_queued >= 0);  // the peer never read: the socket blocked
    // Only the data sizes are counted (no 8-byte header, CONTRACT 287).
    CHECK(e.transport->get_write_buffer_size() == expected_queue);
    CHECK(e.transport->queued_datagrams() == static_cast<std::size_t>(60 - first_queued));
    CHECK(e.protocol->count("pause") == 1);  // once, when over high
    CHECK(e.protocol->count("resume") == 0);
    // The peer reads everything: whole datagrams, in the order sent.
    std::vector<std::string> got;
    REQUIRE(run_until(loop, [&] {
        char buffer[8192];
        for (ssize_t n; (n = ::recv(pair.peer.get(), buffer, sizeof buffer, 0)) >= 0;)
            got.emplace_back(buffer, static_cast<std::size_t>(n));
        return got.size() == sent.size();
    }));
    CHECK(got == sent);
    CHECK(e.transport->get_write_buffer_size() == 0);
    CHECK(e.protocol->count("resume") == 1);
    e.close_and_wait();
}

TEST_CASE("close() flushes the queue, then connection_lost(no error); sendto after close is refused (CONTRACT 289, 288)") {
    EventLoop loop;
    UnixPair pair = unix_pair();
    Endpoint e(loop, std::move(pair.ours));
    std::vector<std::string> sent;
    for (int i = 0; e.transport->get_write_buffer_size() == 0 || e.transport->queued_datagrams() < 3; ++i) {
        sent.push_back(numbered(i));
        REQUIRE(!e.transport->sendto(sent.back()));
    }
    e.transport->close();
    CHECK(e.transport->is_closing());
    e.transport->close();  // idempotent
    {
        test::LogCapture capture;
        for (int i = 0; i < 4; ++i) CHECK(e.transport->sendto("late") == make_error_code(errc::transport_closing));
        CHECK(!capture.contains("refused"));
        CHECK(e.transport->sendto("late") == make_error_code(errc::transport_closing));  // the 5th is logged
        CHECK(capture.contains("socket.send() refused"));
    }
    spin(loop, 5);
    CHECK(e.protocol->lost == 0);  // still flushing: the peer has not read
    std::vector<std::string> got;
    REQUIRE(run_until(loop, [&] {
        char buffer[8192];
        for (ssize_t n; (n = ::recv(pair.peer.get(), buffer, sizeof buffer, 0)) >= 0;)
            got.emplace_back(buffer, static_cast<std::size_t>(n));
        return e.protocol->lost == 1;
    }));
    CHECK(got == sent);
    CHECK(!e.protocol->lost_error);
    CHECK(e.transport->fd() == -1);
}

TEST_CASE("abort() drops the queue; connection_lost comes once from a later callback") {
    EventLoop loop;
    UnixPair pair = unix_pair();
    Endpoint e(loop, std::move(pair.ours));
    std::size_t sent_now = 0;
    for (int i = 0; e.transport->get_write_buffer_size() == 0; ++i)
        if (!e.transport->sendto(numbered(i)) && e.transport->get_write_buffer_size() == 0) ++sent_now;
    e.transport->abort();
    CHECK(e.transport->get_write_buffer_size() == 0);
    CHECK(e.protocol->lost == 0);  // not from inside abort()
    e.transport->abort();
    REQUIRE(run_until(loop, [&] { return e.protocol->lost == 1; }));
    spin(loop, 3);
    CHECK(e.protocol->lost == 1);
    std::size_t got = 0;
    char buffer[8192];
    while (::recv(pair.peer.get(), buffer, sizeof buffer, 0) >= 0) ++got;
    CHECK(got == sent_now);  // what had reached the kernel, nothing queued
}

TEST_CASE("each readiness reads a bounded batch of datagrams") {
    EventLoop loop;
    Fd peer = udp_socket(AF_INET);
    Endpoint e(loop, udp_socket(AF_INET));
    SocketAddress our_name = name_of(e.transport->fd());
    for (int i = 0; i < 40; ++i) REQUIRE(::sendto(peer.get(), "d", 1, 0, our_name.data(), our_name.size()) == 1);
    REQUIRE(!loop.run_once());
    CHECK(e.protocol->datagrams.size() == static_cast<std::size_t>(DatagramSocketTransport::kReadBatch));
    REQUIRE(run_until(loop, [&] { return e.protocol->datagrams.size() == 40; }));
    e.close_and_wait();
}

TEST_CASE("closing from datagram_received stops delivery; connection_lost once (CONTRACT 293, 304)") {
    EventLoop loop;
    Fd peer = udp_socket(AF_INET);
    Endpoint e(loop, udp_socket(AF_INET));
    e.protocol->on_datagram = [](Recorder& r) { r.transport->close(); };
    SocketAddress our_name = name_of(e.transport->fd());
    for (int i = 0; i < 5; ++i) REQUIRE(::sendto(peer.get(), "d", 1, 0, our_name.data(), our_name.size()) == 1);
    REQUIRE(run_until(loop, [&] { return e.protocol->lost == 1; }));
    CHECK(e.protocol->events == std::vector<std::string>{"made", "datagram", "lost"});
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("an exception from datagram_received is reported; the endpoint keeps reading (as asyncio)") {
    EventLoop loop;
    std::vector<std::string> reported;
    loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) { reported.push_back(c.message); });
    Fd peer = udp_socket(AF_INET);
    Endpoint e(loop, udp_socket(AF_INET));
    e.protocol->on_datagram = [](Recorder& r) {
        if (r.datagrams.size() == 1) throw std::runtime_error("boom");
    };
    SocketAddress our_name = name_of(e.transport->fd());
    for (int i = 0; i < 2; ++i) REQUIRE(::sendto(peer.get(), "d", 1, 0, our_name.data(), our_name.size()) == 1);
    REQUIRE(run_until(loop, [&] { return e.protocol->datagrams.size() == 2; }));
    REQUIRE(reported.size() == 1);
    CHECK(reported[0].find("datagram_received") != std::string::npos);
    CHECK(!e.transport->is_closing());
    e.close_and_wait();
}
#endif

TEST_CASE("set_protocol takes datagram protocols only") {
    EventLoop loop;
    Endpoint e(loop, udp_socket(AF_INET));
    struct Stream : Protocol {};
    CHECK_REFUSED(errc::wrong_protocol, (void)e.transport->set_protocol(std::make_shared<Stream>()));
    auto other = std::make_shared<Recorder>();
    CHECK(!e.transport->set_protocol(other));
    CHECK(e.transport->get_protocol() == other);
    e.transport->close();
    REQUIRE(run_until(loop, [&] { return other->lost == 1; }));
    CHECK(e.protocol->lost == 0);
}

TEST_CASE("closing the loop with an open endpoint closes its socket without calling back") {
    int fd = -1;
    auto protocol = std::make_shared<Recorder>();
    std::weak_ptr<DatagramSocketTransport> weak;
    {
        EventLoop loop;
        UnixPair pair = unix_pair();
        auto transport = DatagramSocketTransport::make(loop, std::move(pair.ours), protocol);
        REQUIRE(run_until(loop, [&] { return protocol->transport != nullptr; }));
        fd = transport->fd();
        for (int i = 0; transport->get_write_buffer_size() == 0; ++i) (void)transport->sendto(numbered(i));
        weak = transport;
        transport.reset();
        REQUIRE(!loop.close());
        CHECK(!is_open_fd(fd));
        CHECK(weak.expired());
    }
    CHECK(protocol->lost == 0);
}
