// test/net/socket_transport_test.cpp — SocketTransport (net/socket_transport.cpp)
// over real TCP and Unix socket pairs: the read path, the write path, flow
// control, close/abort/EOF and the protocol state machine (CONTRACT 17, 18).
// The other end of each pair is a plain socket the test reads and writes.
// Python-only items: 256 (write's accepted types: C++ takes string_view),
// 305 (__slots__), 306 (NotImplementedError of abstract methods: C++ pure
// virtuals do not compile when missing), 168 (TransportSocket: Server::sockets()
// gives fds). Items of later issues: 124, 279, 297 (TLS), 280, 298 (pipes),
// 304, 313 (datagrams).
#include <netinet/tcp.h>

#include "net/socket_transport.hpp"
#include "test/net/stream_pair.hpp"

using namespace evloop;
using evloop::test::drain;
using evloop::test::Recorder;
using evloop::test::run_until;

namespace {

// Runs `n` iterations that never block (run_once would wait for an event).
void spin(EventLoop& loop, int n) {
    for (int i = 0; i < n; ++i) {
        loop.call_soon([] {});
        (void)loop.run_once();
    }
}

struct Fixture {
    EventLoop loop;
    test::TcpPair pair = test::tcp_pair();
    std::shared_ptr<Recorder> protocol = std::make_shared<Recorder>();
    std::shared_ptr<SocketTransport> transport;

    void start(bool wait_made = true) {
        transport = SocketTransport::make(loop, std::move(pair.ours), protocol);
        if (wait_made) REQUIRE(run_until(loop, [&] { return protocol->transport != nullptr; }));
    }
    void peer_send(std::string_view data) {
        REQUIRE(::send(pair.peer.get(), data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size()));
    }
    // Reads from the peer until `size` bytes or EOF arrived, running the loop meanwhile.
    std::string peer_read(std::size_t size, double seconds = 5) {
        std::string got;
        run_until(loop, [&] { return !drain(pair.peer.get(), got) || got.size() >= size; }, seconds);
        return got;
    }
    bool peer_saw_eof(double seconds = 2) {
        std::string ignored;
        return run_until(loop, [&] { return !drain(pair.peer.get(), ignored); }, seconds);
    }
    // Fills the transport's buffer: the peer does not read, the kernel's
    // buffers fill, and the rest stays in the transport.
    void fill_until_buffered(std::size_t at_least) {
        std::string chunk(64 * 1024, 'x');
        while (transport->get_write_buffer_size() < at_least) (void)transport->write(chunk);
    }
};

}  // namespace

TEST_CASE("connection_made comes from a later callback; then data, eof, lost in order (CONTRACT 277, 291)") {
    Fixture f;
    f.start(false);
    CHECK(f.protocol->events.empty());  // not from inside make()
    Future<void> waiter = f.loop.create_future();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->transport != nullptr; }));
    CHECK(f.protocol->transport == f.transport.get());
    f.peer_send("hello");
    REQUIRE(run_until(f.loop, [&] { return f.protocol->data == "hello"; }));
    ::shutdown(f.pair.peer.get(), SHUT_WR);
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    CHECK(f.protocol->events == std::vector<std::string>{"made", "data", "eof", "lost"});
    CHECK(!f.protocol->lost_error);  // a normal EOF (CONTRACT 293, 295)
}

TEST_CASE("the waiter completes after connection_made (CONTRACT 139)") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    auto protocol = std::make_shared<Recorder>();
    Future<void> waiter = loop.create_future();
    bool made_when_done = false;
    waiter.add_done_callback([&](Future<void>&) { made_when_done = protocol->transport != nullptr; });
    auto transport = SocketTransport::make(loop, std::move(pair.ours), protocol, &waiter);
    REQUIRE(loop.run_until_complete(waiter));
    CHECK(made_when_done);
    transport->close();
    REQUIRE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST_CASE("a megabyte arrives intact in chunks of at most 256 KiB (CONTRACT 272, 303)") {
    Fixture f;
    std::size_t largest = 0;
    f.protocol->on_data = [&](Recorder& r) { largest = std::max(largest, r.data.size()); };
    f.start();
    std::string sent;
    for (int i = 0; sent.size() < (1 << 20); ++i) sent += std::to_string(i) + ",";
    std::size_t offset = 0;
    std::size_t previous = 0;
    REQUIRE(run_until(f.loop, [&] {
        if (offset < sent.size()) {
            ssize_t n = ::send(f.pair.peer.get(), sent.data() + offset, sent.size() - offset, MSG_NOSIGNAL);
            if (n > 0) offset += static_cast<std::size_t>(n);
        }
        largest = std::max(largest, f.protocol->data.size() - previous);
        previous = f.protocol->data.size();
        return f.protocol->data.size() == sent.size();
    }));
    CHECK(f.protocol->data == sent);
    f.transport->close();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
}

TEST_CASE("write goes straight to the socket when nothing is buffered (CONTRACT 258)") {
    Fixture f;
    f.start();
    CHECK(!f.transport->write("ping"));
    CHECK(f.transport->get_write_buffer_size() == 0);
    // No loop iteration: the bytes were sent inside write().
    char buffer[8];
    CHECK(::recv(f.pair.peer.get(), buffer, sizeof buffer, 0) == 4);
    CHECK(!f.transport->write(""));  // CONTRACT 257
    CHECK(f.transport->get_write_buffer_size() == 0);
}

TEST_CASE("a short write buffers only the rest, keeps the order, and copies the caller's bytes (CONTRACT 258, 259, 273)") {
    Fixture f;
    f.start();
    CHECK(!f.transport->set_write_buffer_limits(std::size_t{1} << 30));  // no pausing here
    std::string expected;
    std::string chunk(256 * 1024, '\0');
    for (int i = 0; f.transport->get_write_buffer_size() == 0; ++i) {
        for (std::size_t j = 0; j < chunk.size(); ++j) chunk[j] = static_cast<char>('a' + (i + j) % 26);
        CHECK(!f.transport->write(chunk));
        expected += chunk;
    }
    CHECK(f.transport->get_write_buffer_size() < chunk.size() + 1);
    // Later writes are appended behind the buffered tail, even small ones.
    chunk.assign("tail");
    CHECK(!f.transport->write(chunk));
    expected += "tail";
    chunk.assign("XXXX");  // the caller reuses its memory: the buffer kept a copy
    CHECK(f.peer_read(expected.size()) == expected);
    CHECK(f.transport->get_write_buffer_size() == 0);
}

TEST_CASE("writelines sends the pieces as one gathered write, also behind a buffer (CONTRACT 260)") {
    Fixture f;
    f.start();
    CHECK(!f.transport->writelines({"GET ", "/ ", "HTTP/1.0\r\n"}));
    CHECK(f.peer_read(16) == "GET / HTTP/1.0\r\n");
    std::vector<std::string> many;
    std::vector<std::string_view> views;
    std::string expected;
    for (int i = 0; i < 200; ++i) many.push_back(std::to_string(i) + ";");  // more pieces than one sendmsg takes
    for (auto& piece : many) {
        views.push_back(piece);
        expected += piece;
    }
    CHECK(!f.transport->writelines(views));
    CHECK(f.peer_read(expected.size()) == expected);
}

TEST_CASE("write buffer limits: defaults and derived marks (CONTRACT 248, 249, 250)") {
    Fixture f;
    f.start();
    WriteBufferLimits limits = f.transport->get_write_buffer_limits();
    CHECK(limits.high == 65536);
    CHECK(limits.low == 16384);
    CHECK(!f.transport->set_write_buffer_limits(1000));
    CHECK(f.transport->get_write_buffer_limits().low == 250);
    CHECK(!f.transport->set_write_buffer_limits(std::nullopt, 100));
    CHECK(f.transport->get_write_buffer_limits().high == 400);
    CHECK(!f.transport->set_write_buffer_limits(0));
    CHECK(f.transport->get_write_buffer_limits().low == 0);
    CHECK_REFUSED(errc::invalid_argument, (void)f.transport->set_write_buffer_limits(10, 20));
    CHECK(f.transport->get_write_buffer_limits().high == 0);  // unchanged by the refusal
}

TEST_CASE("pause_writing once above high, resume_writing once at low, strictly alternating (CONTRACT 251, 252)") {
    Fixture f;
    f.start();
    f.fill_until_buffered(1);
    // The kernel is full now; what follows stays in the buffer.
    CHECK(!f.transport->set_write_buffer_limits(100 * 1024, 10 * 1024));
    std::size_t base = f.transport->get_write_buffer_size();
    CHECK(f.protocol->count("pause") == (base > 100 * 1024 ? 1 : 0));
    if (base <= 100 * 1024) {
        std::string exact(100 * 1024 - base, 'y');
        CHECK(!f.transport->write(exact));  // equal to high: no pause
        CHECK(f.protocol->count("pause") == 0);
        CHECK(!f.transport->write("z"));  // one byte over: pause, synchronously
        CHECK(f.protocol->count("pause") == 1);
    }
    CHECK(!f.transport->write(std::string(200 * 1024, 'w')));
    CHECK(f.protocol->count("pause") == 1);  // not again while paused
    std::string got;
    REQUIRE(run_until(f.loop, [&] { drain(f.pair.peer.get(), got); return f.protocol->count("resume") == 1; }));
    CHECK(f.transport->get_write_buffer_size() <= 10 * 1024);
    REQUIRE(run_until(f.loop, [&] { drain(f.pair.peer.get(), got); return f.transport->get_write_buffer_size() == 0; }));
    CHECK(f.protocol->count("resume") == 1);
    CHECK(f.protocol->events.back() == "resume");
}

TEST_CASE("high=0 pauses on any buffered byte and resumes only when empty (CONTRACT 253)") {
    Fixture f;
    f.start();
    CHECK(!f.transport->set_write_buffer_limits(0));
    f.fill_until_buffered(1);
    CHECK(f.protocol->count("pause") == 1);
    std::string got;
    std::size_t size_at_resume = 1;
    f.protocol->on_resume = [&](Recorder&) { size_at_resume = f.transport->get_write_buffer_size(); };
    REQUIRE(run_until(f.loop, [&] { drain(f.pair.peer.get(), got); return f.protocol->count("resume") == 1; }));
    CHECK(size_at_resume == 0);
}

TEST_CASE("set_write_buffer_limits may pause at once but never resumes (CONTRACT 254)") {
    Fixture f;
    f.start();
    f.fill_until_buffered(1);
    std::size_t buffered = f.transport->get_write_buffer_size();
    CHECK(!f.transport->set_write_buffer_limits(buffered - 1, 0));
    CHECK(f.protocol->count("pause") == 1);
    CHECK(!f.transport->set_write_buffer_limits(std::size_t{1} << 30));
    CHECK(f.protocol->count("resume") == 0);
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("an exception from pause_writing goes to the handler and the transport stays open (CONTRACT 255)") {
    Fixture f;
    std::vector<std::string> messages;
    f.loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) { messages.push_back(c.message); });
    f.protocol->on_pause = [](Recorder&) { throw std::runtime_error("no"); };
    f.start();
    CHECK(!f.transport->set_write_buffer_limits(1));
    f.fill_until_buffered(2);
    CHECK(messages == std::vector<std::string>{"protocol.pause_writing() failed"});
    CHECK(!f.transport->is_closing());
}
#endif

TEST_CASE("close() stops reading at once, flushes the buffer, then connection_lost(none) (CONTRACT 261, 264)") {
    Fixture f;
    f.start();
    CHECK(!f.transport->set_write_buffer_limits(std::size_t{1} << 30));
    f.fill_until_buffered(512 * 1024);
    std::size_t total = 0;
    f.peer_send("late data");  // must never reach data_received
    f.transport->close();
    CHECK(f.transport->is_closing());
    f.transport->close();  // idempotent
    std::string got;
    REQUIRE(run_until(f.loop, [&] { return !drain(f.pair.peer.get(), got); }));
    total = got.size();
    CHECK(total >= 512 * 1024);
    CHECK(f.protocol->lost == 1);
    CHECK(!f.protocol->lost_error);
    CHECK(f.protocol->count("data") == 0);
}

TEST_CASE("writes after close() are refused and lose nothing already accepted (issue 4; differs from CONTRACT 262)") {
    Fixture f;
    f.start();
    CHECK(!f.transport->set_write_buffer_limits(std::size_t{1} << 30));
    f.fill_until_buffered(128 * 1024);
    std::size_t accepted = 0;
    // What the peer must receive: everything write() accepted before close().
    f.transport->close();
    std::size_t buffered_at_close = f.transport->get_write_buffer_size();
    CHECK(f.transport->write("more") == errc::transport_closing);
    CHECK(f.transport->get_write_buffer_size() == buffered_at_close);
    test::LogCapture log;
    for (int i = 0; i < 5; ++i) (void)f.transport->write("x");
    CHECK(log.contains("refused"));  // from the 5th refused write on, a warning (CONTRACT 263)
    std::string got;
    REQUIRE(run_until(f.loop, [&] { return !drain(f.pair.peer.get(), got); }));
    accepted = got.size();
    CHECK(accepted >= 128 * 1024);
    CHECK(got.find("more") == std::string::npos);
    CHECK(f.protocol->lost == 1);
}

TEST_CASE("abort() drops the buffer and calls connection_lost(none) from a later callback (CONTRACT 265, 266, 293)") {
    Fixture f;
    f.start();
    f.fill_until_buffered(1);
    f.transport->abort();
    CHECK(f.transport->get_write_buffer_size() == 0);
    CHECK(f.protocol->lost == 0);  // not re-entrantly
    f.transport->abort();
    f.transport->close();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    CHECK(!f.protocol->lost_error);
    CHECK(f.transport->write("x") == errc::transport_closing);
    spin(f.loop, 1);
    CHECK(f.protocol->lost == 1);
}

TEST_CASE("write_eof shuts the write side now or after the buffer drains (CONTRACT 267, 268)") {
    SUBCASE("empty buffer") {
        Fixture f;
        f.start();
        CHECK(f.transport->can_write_eof());
        CHECK(!f.transport->write("last"));
        f.transport->write_eof();
        f.transport->write_eof();  // a second call is a no-op
        CHECK(f.peer_read(100) == "last");
        CHECK_REFUSED(errc::write_after_eof, (void)f.transport->write("x"));
        CHECK_REFUSED(errc::write_after_eof, (void)f.transport->writelines({"x"}));
        // Half-closed: we still read.
        f.peer_send("reply");
        REQUIRE(run_until(f.loop, [&] { return f.protocol->data == "reply"; }));
        CHECK(!f.transport->is_closing());
    }
    SUBCASE("after the buffer drains") {
        Fixture f;
        f.start();
        f.fill_until_buffered(64 * 1024);
        std::size_t expected = 0;
        f.transport->write_eof();
        std::string got;
        REQUIRE(run_until(f.loop, [&] { return !drain(f.pair.peer.get(), got); }));
        CHECK(got.size() > expected);
        CHECK(f.transport->get_write_buffer_size() == 0);
    }
    SUBCASE("no-op after close") {
        Fixture f;
        f.start();
        f.transport->close();
        f.transport->write_eof();
        REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    }
}

TEST_CASE("pause_reading / resume_reading are idempotent and hold data back (CONTRACT 269)") {
    Fixture f;
    f.start();
    CHECK(f.transport->is_reading());
    f.transport->pause_reading();
    f.transport->pause_reading();
    CHECK(!f.transport->is_reading());
    f.peer_send("held");
    spin(f.loop, 5);
    CHECK(f.protocol->data.empty());
    f.transport->resume_reading();
    f.transport->resume_reading();
    CHECK(f.transport->is_reading());
    REQUIRE(run_until(f.loop, [&] { return f.protocol->data == "held"; }));
    f.transport->close();
    CHECK(!f.transport->is_reading());
    f.transport->resume_reading();  // no effect once closing
    CHECK(!f.transport->is_reading());
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
}

TEST_CASE("pause_reading inside connection_made: reading waits for resume_reading (CONTRACT 270)") {
    Fixture f;
    f.protocol->on_made = [](Recorder& r) { r.transport->pause_reading(); };
    f.peer_send("queued");
    f.start();
    spin(f.loop, 5);
    CHECK(f.protocol->data.empty());
    f.transport->resume_reading();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->data == "queued"; }));
}

TEST_CASE("eof_received returning true leaves the transport half-open for writing (CONTRACT 271, 296)") {
    Fixture f;
    f.protocol->keep_open_on_eof = true;
    f.start();
    ::shutdown(f.pair.peer.get(), SHUT_WR);
    REQUIRE(run_until(f.loop, [&] { return f.protocol->count("eof") == 1; }));
    // We differ from CPython here (§26, item 271): reading has stopped, so
    // is_reading() says so.
    CHECK(!f.transport->is_reading());
    CHECK(!f.transport->is_closing());
    CHECK(!f.transport->write("still writing"));
    CHECK(f.peer_read(13) == "still writing");
    CHECK(f.protocol->lost == 0);
    f.transport->close();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    CHECK(f.peer_saw_eof());
}

TEST_CASE("eof_received returning false closes the transport (CONTRACT 295)") {
    Fixture f;
    f.start();
    ::shutdown(f.pair.peer.get(), SHUT_WR);
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    CHECK(f.transport->is_closing());
    CHECK(f.peer_saw_eof());
}

TEST_CASE("a reset from the peer ends in connection_lost(ECONNRESET), no handler call (CONTRACT 247, 274)") {
    Fixture f;
    bool handler_called = false;
    f.loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) { handler_called = true; });
    f.start();
    CHECK(!f.transport->write("x"));  // unread data on the peer side makes close() send RST
    linger hard{1, 0};
    ::setsockopt(f.pair.peer.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    f.pair.peer.reset();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    CHECK(f.protocol->lost_error == std::errc::connection_reset);
    CHECK(!handler_called);
}

TEST_CASE("a write error clears the buffer and ends in connection_lost(error) (CONTRACT 275)") {
    Fixture f;
    f.start();
    f.fill_until_buffered(1);
    linger hard{1, 0};
    ::setsockopt(f.pair.peer.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    f.pair.peer.reset();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    CHECK((f.protocol->lost_error == std::errc::connection_reset || f.protocol->lost_error == std::errc::broken_pipe));
    CHECK(f.transport->get_write_buffer_size() == 0);
}

TEST_CASE("get_extra_info: socket, peername, sockname; unknown names and a closed socket give nothing (CONTRACT 278)") {
    Fixture f;
    f.start();
    auto socket = f.transport->get_extra_info("socket");
    REQUIRE(std::holds_alternative<int>(socket));
    CHECK(std::get<int>(socket) == f.transport->fd());
    auto peer = f.transport->get_extra_info("peername");
    auto local = f.transport->get_extra_info("sockname");
    REQUIRE(std::holds_alternative<SocketAddress>(peer));
    REQUIRE(std::holds_alternative<SocketAddress>(local));
    CHECK(std::get<SocketAddress>(peer) == *local_address(f.pair.peer.get()));
    CHECK(std::get<SocketAddress>(local).host() == "127.0.0.1");
    CHECK(std::holds_alternative<std::monostate>(f.transport->get_extra_info("nonsense")));
    f.transport->close();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    CHECK(std::holds_alternative<std::monostate>(f.transport->get_extra_info("peername")));
}

TEST_CASE("an AF_UNIX socketpair reports unnamed addresses (CONTRACT 278)") {
    EventLoop loop;
    auto pair = test::unix_pair();
    auto protocol = std::make_shared<Recorder>();
    auto transport = SocketTransport::make(loop, std::move(pair.ours), protocol);
    REQUIRE(run_until(loop, [&] { return protocol->transport != nullptr; }));
    auto peer = transport->get_extra_info("peername");
    REQUIRE(std::holds_alternative<SocketAddress>(peer));
    CHECK(std::get<SocketAddress>(peer).family() == AF_UNIX);
    CHECK(std::get<SocketAddress>(peer).host().empty());
    transport->close();
    REQUIRE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST_CASE("TCP transports get TCP_NODELAY (CONTRACT 142)") {
    Fixture f;
    f.start();
    int value = 0;
    socklen_t size = sizeof value;
    REQUIRE(::getsockopt(f.transport->fd(), IPPROTO_TCP, TCP_NODELAY, &value, &size) == 0);
    CHECK(value == 1);
}

namespace {
struct Buffered : BufferedProtocol {
    std::vector<char> memory = std::vector<char>(100);
    std::string data;
    std::vector<std::string> events;
    std::size_t largest = 0;
    bool give_empty = false;
    void connection_made(Transport&) override { events.push_back("made"); }
    std::span<char> get_buffer(std::size_t hint) override {
        CHECK(hint == 0);
        events.push_back("get_buffer");
        if (give_empty) return {};
        return memory;
    }
    void buffer_updated(std::size_t n) override {
        events.push_back("updated");
        largest = std::max(largest, n);
        data.append(memory.data(), n);
    }
    bool eof_received() override {
        events.push_back("eof");
        return false;
    }
    void connection_lost(std::error_code error) override {
        events.push_back("lost");
        lost_error = error;
    }
    std::error_code lost_error;
};
}  // namespace

TEST_CASE("BufferedProtocol: get_buffer then buffer_updated, the whole stream in order (CONTRACT 301, 303)") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    auto protocol = std::make_shared<Buffered>();
    auto transport = SocketTransport::make(loop, std::move(pair.ours), protocol);
    std::string sent;
    for (int i = 0; sent.size() < 100000; ++i) sent += std::to_string(i) + " ";
    std::size_t offset = 0;
    REQUIRE(run_until(loop, [&] {
        if (offset < sent.size()) {
            ssize_t n = ::send(pair.peer.get(), sent.data() + offset, sent.size() - offset, MSG_NOSIGNAL);
            if (n > 0) offset += static_cast<std::size_t>(n);
            if (offset == sent.size()) ::shutdown(pair.peer.get(), SHUT_WR);
        }
        return !protocol->events.empty() && protocol->events.back() == "lost";
    }));
    CHECK(protocol->data == sent);
    CHECK(protocol->largest <= 100);
    CHECK(protocol->events.front() == "made");
    CHECK(protocol->events[1] == "get_buffer");
    CHECK(protocol->events[2] == "updated");
    CHECK(protocol->events[protocol->events.size() - 2] == "eof");
}

TEST_CASE("an empty buffer from get_buffer is fatal and buffer_updated is not called (CONTRACT 276, 302)") {
    EventLoop loop;
    std::vector<std::string> messages;
    loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) { messages.push_back(c.message); });
    auto pair = test::tcp_pair();
    auto protocol = std::make_shared<Buffered>();
    protocol->give_empty = true;
    auto transport = SocketTransport::make(loop, std::move(pair.ours), protocol);
    REQUIRE(::send(pair.peer.get(), "x", 1, 0) == 1);
    REQUIRE(run_until(loop, [&] { return !protocol->events.empty() && protocol->events.back() == "lost"; }));
    CHECK(protocol->lost_error == errc::empty_buffer);
    CHECK(std::count(protocol->events.begin(), protocol->events.end(), "updated") == 0);
    CHECK(messages == std::vector<std::string>{"Fatal error: protocol.get_buffer() call failed."});
}

TEST_CASE("set_protocol switches between Protocol and BufferedProtocol at once (CONTRACT 281)") {
    Fixture f;
    f.start();
    f.peer_send("one");
    REQUIRE(run_until(f.loop, [&] { return f.protocol->data == "one"; }));
    auto buffered = std::make_shared<Buffered>();
    CHECK(!f.transport->set_protocol(buffered));
    CHECK(f.transport->get_protocol() == buffered);
    f.peer_send("two");
    REQUIRE(run_until(f.loop, [&] { return buffered->data == "two"; }));
    CHECK(f.protocol->data == "one");
    CHECK_REFUSED(errc::wrong_protocol, (void)f.transport->set_protocol(nullptr));
    f.transport->close();
    REQUIRE(run_until(f.loop, [&] { return buffered->events.back() == "lost"; }));
}

TEST_CASE("closing inside data_received: no more data, connection_lost once and later (CONTRACT 292, 293)") {
    Fixture f;
    f.protocol->on_data = [](Recorder& r) {
        r.transport->close();
        r.transport->close();
        r.transport->abort();
        CHECK(r.lost == 0);
    };
    f.start();
    f.peer_send("first");
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    f.peer_send("second");
    spin(f.loop, 3);
    CHECK(f.protocol->events == std::vector<std::string>{"made", "data", "lost"});
}

TEST_CASE("abort inside connection_made: connection_lost still follows, once (CONTRACT 291, 293)") {
    Fixture f;
    f.protocol->on_made = [](Recorder& r) { r.transport->abort(); };
    f.start();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    CHECK(f.protocol->events == std::vector<std::string>{"made", "lost"});
}

TEST_CASE("after connection_lost the transport lets go of its protocol and socket (CONTRACT 294)") {
    Fixture f;
    std::weak_ptr<Recorder> watch = f.protocol;
    f.start();
    int fd = f.transport->fd();
    f.transport->close();
    std::shared_ptr<Recorder> held = f.protocol;
    f.protocol.reset();
    REQUIRE(run_until(f.loop, [&] { return held->lost == 1; }));
    CHECK(!f.transport->get_protocol());
    CHECK(f.transport->fd() == -1);
    CHECK(!is_open_fd(fd));
    held.reset();
    CHECK(watch.expired());
}

TEST_CASE("an open transport keeps itself alive without outside references") {
    Fixture f;
    f.start();
    std::weak_ptr<SocketTransport> watch = f.transport;
    f.transport.reset();
    CHECK(!watch.expired());
    f.peer_send("still here");
    REQUIRE(run_until(f.loop, [&] { return f.protocol->data == "still here"; }));
    f.protocol->transport->close();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    CHECK(watch.expired());  // gone once connection_lost returned
}

TEST_CASE("closing the loop releases open transports: fd closed, protocol dropped, no callback") {
    std::weak_ptr<Recorder> watch;
    int fd = -1;
    {
        EventLoop loop;
        auto pair = test::tcp_pair();
        auto protocol = std::make_shared<Recorder>();
        watch = protocol;
        auto transport = SocketTransport::make(loop, std::move(pair.ours), protocol);
        REQUIRE(run_until(loop, [&] { return protocol->transport != nullptr; }));
        fd = transport->fd();
        transport.reset();
        protocol.reset();
        CHECK(!watch.expired());
        CHECK(!loop.close());
        CHECK(watch.expired());
        CHECK(!is_open_fd(fd));
    }
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("an exception from data_received is reported and aborts the transport (CONTRACT 299)") {
    Fixture f;
    std::vector<std::string> messages;
    f.loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) {
        messages.push_back(c.message);
        CHECK(c.exception);
        CHECK(!c.transport.empty());
    });
    f.protocol->on_data = [](Recorder&) { throw std::runtime_error("bad data"); };
    f.start();
    f.peer_send("x");
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    CHECK(messages == std::vector<std::string>{"Fatal error: protocol.data_received() call failed."});
    CHECK(f.protocol->lost_error == errc::exception_raised);
}

TEST_CASE("an exception from eof_received is reported and aborts the transport (CONTRACT 299)") {
    Fixture f;
    std::vector<std::string> messages;
    f.loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) { messages.push_back(c.message); });
    f.protocol->on_eof = [](Recorder&) { throw std::runtime_error("bad eof"); };
    f.start();
    ::shutdown(f.pair.peer.get(), SHUT_WR);
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    CHECK(messages == std::vector<std::string>{"Fatal error: protocol.eof_received() call failed."});
}

TEST_CASE("an exception from connection_made is only reported; reading goes on (CONTRACT 277)") {
    Fixture f;
    int reported = 0;
    f.loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) { ++reported; });
    f.protocol->on_made = [](Recorder&) { throw std::runtime_error("made"); };
    f.start();
    f.peer_send("data");
    REQUIRE(run_until(f.loop, [&] { return f.protocol->data == "data"; }));
    CHECK(reported == 1);
    CHECK(!f.transport->is_closing());
}

TEST_CASE("an exception from connection_lost is reported and the socket is still closed (CONTRACT 300)") {
    Fixture f;
    int reported = 0;
    f.loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) { ++reported; });
    f.protocol->on_lost = [](Recorder&) { throw std::runtime_error("lost"); };
    f.start();
    int fd = f.transport->fd();
    f.transport->close();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
    spin(f.loop, 1);
    CHECK(reported == 1);
    CHECK(!is_open_fd(fd));
}
#endif
