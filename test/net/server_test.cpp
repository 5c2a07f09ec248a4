// test/net/server_test.cpp — the Server object (net/server.cpp): the accept
// loop, EMFILE, close / wait_closed, close_clients / abort_clients,
// serve_forever, lifetime. CONTRACT §10 items 153, 155–167.
// Real servers on 127.0.0.1 (and a Unix path for the 1,000-connection
// burst); clients are plain blocking sockets. Every test counts the entries
// of /proc/self/fd before and after, so a leaked fd fails the test that
// leaked it.
// 166 (`async with server:`) is Python-only: C++ has no async context
// manager; a caller writes close() then co_await wait_closed(), which 162
// proves. create_server's arguments and binding: create_server_test.cpp.
#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/server.hpp"
#include "net/socket_transport.hpp"
#include "test/net/stream_pair.hpp"
#include "test/support.hpp"

using namespace evloop;
using evloop::test::Recorder;
using evloop::test::run_until;

namespace {

int open_fds() {
    int count = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    REQUIRE(dir);
    while (dirent* entry = ::readdir(dir))
        if (entry->d_name[0] != '.') ++count;
    ::closedir(dir);
    return count - 1;  // the DIR's own
}

// First local of every test, so it checks after everything else is gone.
struct FdLeakCheck {
    int before = open_fds();
    ~FdLeakCheck() { CHECK(open_fds() == before); }
};

// What the factory made, and on which loop iteration (the accept batch).
struct AcceptLog {
    EventLoop* loop = nullptr;
    std::vector<std::shared_ptr<Recorder>> protocols{};
    std::vector<std::uint64_t> iterations{};
    int made() const {
        int n = 0;
        for (auto& p : protocols) n += p->count("made");
        return n;
    }
    int lost() const {
        int n = 0;
        for (auto& p : protocols) n += p->lost;
        return n;
    }
};

ProtocolFactory recording(AcceptLog* accepted) {
    return [accepted] {
        auto protocol = std::make_shared<Recorder>();
        accepted->protocols.push_back(protocol);
        if (accepted->loop) accepted->iterations.push_back(accepted->loop->metrics().iterations);
        return protocol;
    };
}

std::shared_ptr<Server> start_server(EventLoop& loop, ProtocolFactory factory, ServerOptions options = {}) {
    auto future = loop.create_server(std::move(factory), "127.0.0.1", 0, options);
    REQUIRE(run_until(loop, [&] { return future.done(); }));
    Result<std::shared_ptr<Server>> server = future.result();
    REQUIRE(server);
    return *server;
}

// A blocking client connect; returns the errno (0: connected).
int connect_errno(const SocketAddress& to, Fd* out = nullptr) {
    Fd sock(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(sock);
    if (::connect(sock.get(), to.data(), to.size()) < 0) return errno;
    REQUIRE(!set_nonblocking(sock.get()));
    if (out) *out = std::move(sock);
    return 0;
}

Fd connect_to(const SocketAddress& to) {
    Fd sock;
    REQUIRE(connect_errno(to, &sock) == 0);
    return sock;
}

// Closes the server and its clients, and waits until every connection_lost ran.
void shut(EventLoop& loop, Server& server, const AcceptLog& accepted) {
    server.close();
    server.close_clients();
    CHECK(run_until(loop, [&] { return accepted.lost() == accepted.made(); }));
}

bool peer_sees_eof(EventLoop& loop, int fd, double seconds = 5.0) {
    std::string ignored;
    return run_until(loop, [&] { return !test::drain(fd, ignored); }, seconds);
}

}  // namespace

TEST_CASE("153, 155: start_serving=false binds without listening; start_serving() listens and is idempotent") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted;
    auto server = start_server(loop, recording(&accepted), {.backlog = 7, .start_serving = false});
    CHECK_FALSE(server->is_serving());
    REQUIRE(server->addresses().size() == 1);
    SocketAddress address = server->addresses()[0];
    CHECK(address.port() != 0);
    // Bound but not listening: the kernel refuses the connect (CONTRACT 153).
    CHECK(connect_errno(address) == ECONNREFUSED);

    CHECK_FALSE(server->start_serving());
    CHECK(server->is_serving());
    CHECK_FALSE(server->start_serving());  // idempotent (CONTRACT 155)
    CHECK(server->is_serving());
    Fd client = connect_to(address);
    CHECK(run_until(loop, [&] { return accepted.made() == 1; }));
    server->close();
    CHECK_FALSE(peer_sees_eof(loop, client.get(), 0.05));  // the accepted connection stays open
    CHECK_REFUSED(errc::server_closed, (void)server->start_serving());
    server->close_clients();
    CHECK(run_until(loop, [&] { return accepted.lost() == 1; }));
}

TEST_CASE("156: one readiness accepts at most `backlog` connections") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted{.loop = &loop};
    auto server = start_server(loop, recording(&accepted), {.backlog = 2});
    // Linux queues backlog + 1 connections: three wait before the loop runs.
    std::vector<Fd> clients;
    for (int i = 0; i < 3; ++i) clients.push_back(connect_to(server->addresses()[0]));
    CHECK(run_until(loop, [&] { return accepted.made() == 3; }));
    REQUIRE(accepted.iterations.size() == 3);
    // Two in one callback, the third on a later readiness.
    CHECK(accepted.iterations[0] == accepted.iterations[1]);
    CHECK(accepted.iterations[2] > accepted.iterations[1]);
    server->close();
    server->abort_clients();
    CHECK(run_until(loop, [&] { return accepted.lost() == 3; }));
}

TEST_CASE("156: 1,000 connections in one burst, backlog 8: all accepted, 8 at most per readiness") {
    // A Unix server: a connect to a full Unix backlog waits in the kernel
    // until there is room. A full TCP backlog drops the SYN and the client
    // retries after 1 s, which would time the test rather than the server.
    FdLeakCheck leaks;
    char dir_template[] = "/tmp/evloop-server-test-XXXXXX";
    REQUIRE(::mkdtemp(dir_template));
    std::string path = std::string(dir_template) + "/burst.sock";
    {
        EventLoop loop;
        AcceptLog accepted{.loop = &loop};
        auto future = loop.create_unix_server(recording(&accepted), path, {.backlog = 8});
        REQUIRE(run_until(loop, [&] { return future.done(); }));
        std::shared_ptr<Server> server = *future.result();
        constexpr int kClients = 1000;
        std::vector<Fd> clients;
        clients.reserve(kClients);
        std::thread connector([&] {
            Result<SocketAddress> address = SocketAddress::unix_path(path);
            for (int i = 0; i < kClients; ++i) {
                Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
                if (::connect(sock.get(), address->data(), address->size()) < 0) break;
                clients.push_back(std::move(sock));
            }
        });
        bool all = run_until(loop, [&] { return accepted.made() == kClients; }, 30.0);
        connector.join();
        CHECK(all);
        CHECK(clients.size() == kClients);
        CHECK(server->client_count() == kClients);
        std::map<std::uint64_t, int> per_iteration;
        for (std::uint64_t iteration : accepted.iterations) ++per_iteration[iteration];
        int largest = 0;
        for (auto& [iteration, count] : per_iteration) largest = std::max(largest, count);
        CHECK(largest <= 8);
        CHECK(per_iteration.size() >= kClients / 8);
        Future<void> closed = server->wait_closed();
        server->close();
        server->abort_clients();
        CHECK(run_until(loop, [&] { return closed.done(); }, 10.0));
        CHECK(accepted.lost() == kClients);
    }
    CHECK(::rmdir(dir_template) == 0);  // close() removed the socket file (CONTRACT 312)
}

TEST_CASE("157: EMFILE on accept is reported, accepting pauses for 1 s without spinning, then resumes") {
    FdLeakCheck leaks;
    EventLoop loop;
    std::vector<ExceptionContext> reports;
    loop.set_exception_handler([&](EventLoop&, const ExceptionContext& context) { reports.push_back(context); });
    AcceptLog accepted;
    auto server = start_server(loop, recording(&accepted));
    int listener = server->sockets()[0];
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(client);

    // No new fd from here on: a new fd takes the lowest free number, and
    // the limit is set to exactly that number.
    int lowest_free = ::dup(0);
    REQUIRE(lowest_free >= 0);
    ::close(lowest_free);
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    rlimit low = saved;
    low.rlim_cur = static_cast<rlim_t>(lowest_free);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    REQUIRE(::connect(client.get(), server->addresses()[0].data(), server->addresses()[0].size()) == 0);

    std::uint64_t before = loop.metrics().iterations;
    run_until(loop, [] { return false; }, 0.3);
    std::uint64_t spent = loop.metrics().iterations - before;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);

    REQUIRE(reports.size() == 1);
    CHECK(reports[0].message == "socket.accept() out of system resource");
    CHECK(reports[0].error == std::error_code(EMFILE, std::system_category()));
    CHECK(reports[0].socket == listener);
    CHECK(spent < 20);  // a spinning loop would count thousands
    CHECK(accepted.protocols.empty());
    // Still serving, on the same listening socket.
    CHECK(server->is_serving());
    CHECK(server->sockets() == std::vector<int>{listener});

    // The fds are back: the retry, one second after the failure, accepts.
    CHECK(run_until(loop, [&] { return accepted.made() == 1; }, 3.0));
    CHECK(reports.size() == 1);
    shut(loop, *server, accepted);
}

TEST_CASE("158: accepted sockets are non-blocking and close-on-exec; peername is accept()'s address") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted;
    auto server = start_server(loop, recording(&accepted));
    Fd client = connect_to(server->addresses()[0]);
    REQUIRE(run_until(loop, [&] { return accepted.made() == 1; }));
    Transport& transport = *accepted.protocols[0]->transport;
    int fd = std::get<int>(transport.get_extra_info("socket"));
    CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(std::get<SocketAddress>(transport.get_extra_info("peername")) == *local_address(client.get()));
    CHECK(std::get<SocketAddress>(transport.get_extra_info("sockname")) == server->addresses()[0]);
    shut(loop, *server, accepted);
}

TEST_CASE("149, 159: a protocol per connection; SO_KEEPALIVE when asked; a failing factory closes only that connection") {
    FdLeakCheck leaks;
    EventLoop loop;
    std::vector<ExceptionContext> reports;
    loop.set_exception_handler([&](EventLoop&, const ExceptionContext& context) { reports.push_back(context); });
    AcceptLog accepted;
    bool fail_next = false;
    ProtocolFactory factory = [&]() -> std::shared_ptr<StreamProtocol> {
        if (std::exchange(fail_next, false)) return nullptr;
        return recording(&accepted)();
    };
    auto server = start_server(loop, factory, {.keep_alive = true});
    Fd a = connect_to(server->addresses()[0]);
    Fd b = connect_to(server->addresses()[0]);
    REQUIRE(run_until(loop, [&] { return accepted.made() == 2; }));
    CHECK(accepted.protocols[0] != accepted.protocols[1]);
    int fd = std::get<int>(accepted.protocols[0]->transport->get_extra_info("socket"));
    int keepalive = 0;
    socklen_t size = sizeof keepalive;
    REQUIRE(::getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &keepalive, &size) == 0);
    CHECK(keepalive == 1);

    // nullptr from the factory: that connection is closed, silently outside debug mode...
    fail_next = true;
    Fd c = connect_to(server->addresses()[0]);
    CHECK(peer_sees_eof(loop, c.get()));
    CHECK(reports.empty());
    // ...and reported in debug mode (CONTRACT 159).
    loop.set_debug(true);
    fail_next = true;
    Fd d = connect_to(server->addresses()[0]);
    CHECK(peer_sees_eof(loop, d.get()));
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].message == "Error on transport creation for incoming connection");
    CHECK(server->is_serving());
    CHECK(server->client_count() == 2);
    shut(loop, *server, accepted);
}

TEST_CASE("160, 167: sockets() and addresses() while open, empty after close; get_loop()") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted;
    auto server = start_server(loop, recording(&accepted));
    CHECK(&server->get_loop() == &loop);
    REQUIRE(server->sockets().size() == 1);
    int fd = server->sockets()[0];
    CHECK(is_open_fd(fd));
    REQUIRE(server->addresses().size() == 1);
    CHECK(server->addresses()[0].host() == "127.0.0.1");
    CHECK(server->addresses()[0] == *local_address(fd));
    server->close();
    CHECK(server->sockets().empty());
    CHECK(server->addresses().empty());
}

TEST_CASE("161: close() refuses new connects, keeps accepted ones, stops serving; a second close() is a no-op") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted;
    auto server = start_server(loop, recording(&accepted));
    SocketAddress address = server->addresses()[0];
    Fd client = connect_to(address);
    REQUIRE(run_until(loop, [&] { return accepted.made() == 1; }));
    server->close();
    CHECK_FALSE(server->is_serving());
    CHECK(connect_errno(address) == ECONNREFUSED);
    server->close();  // idempotent
    CHECK_FALSE(server->is_serving());
    // The accepted connection still carries data both ways.
    REQUIRE(::send(client.get(), "ping", 4, 0) == 4);
    CHECK(run_until(loop, [&] { return accepted.protocols[0]->data == "ping"; }));
    CHECK_FALSE(accepted.protocols[0]->transport->write("pong"));
    std::string reply;
    CHECK(run_until(loop, [&] {
        test::drain(client.get(), reply);
        return reply == "pong";
    }));
    CHECK(server->client_count() == 1);
    accepted.protocols[0]->transport->close();
    CHECK(run_until(loop, [&] { return server->client_count() == 0; }));
}

TEST_CASE("162: wait_closed() waits for close() and for every client, in either order; then returns at once") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted;
    auto server = start_server(loop, recording(&accepted));
    Fd a = connect_to(server->addresses()[0]);
    Fd b = connect_to(server->addresses()[0]);
    REQUIRE(run_until(loop, [&] { return accepted.made() == 2; }));

    Future<void> early = server->wait_closed();  // before close()
    run_until(loop, [] { return false; }, 0.05);
    CHECK_FALSE(early.done());
    // A client goes first, the server next, the last client last.
    accepted.protocols[0]->transport->close();
    CHECK(run_until(loop, [&] { return accepted.lost() == 1; }));
    CHECK_FALSE(early.done());
    server->close();
    Future<void> late = server->wait_closed();  // after close(), a client still attached
    run_until(loop, [] { return false; }, 0.05);
    CHECK_FALSE(early.done());
    CHECK_FALSE(late.done());
    accepted.protocols[1]->transport->close();
    CHECK(run_until(loop, [&] { return early.done() && late.done(); }));
    CHECK(early.result());
    CHECK(server->wait_closed().done());  // from now on, at once
}

TEST_CASE("162: wait_closed() on a server closed with no client is done at once") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted;
    auto server = start_server(loop, recording(&accepted));
    server->close();
    Future<void> closed = server->wait_closed();
    CHECK(closed.done());
    CHECK(closed.result());
}

TEST_CASE("163: close_clients() closes and abort_clients() aborts every client; wait_closed() then finishes") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted;
    auto server = start_server(loop, recording(&accepted));
    Fd a = connect_to(server->addresses()[0]);
    Fd b = connect_to(server->addresses()[0]);
    REQUIRE(run_until(loop, [&] { return accepted.made() == 2; }));
    server->close();
    Future<void> closed = server->wait_closed();

    SUBCASE("close_clients") {
        // close() still sends what is buffered; abort() would not.
        CHECK_FALSE(accepted.protocols[0]->transport->write("bye"));
        server->close_clients();
        CHECK(run_until(loop, [&] { return closed.done(); }));
        std::string got;
        CHECK(run_until(loop, [&] { return !test::drain(a.get(), got); }));
        CHECK(got == "bye");
    }
    SUBCASE("abort_clients") {
        server->abort_clients();
        CHECK(run_until(loop, [&] { return closed.done(); }));
    }
    CHECK(accepted.lost() == 2);
    for (auto& protocol : accepted.protocols) CHECK_FALSE(protocol->lost_error);
    CHECK(server->client_count() == 0);
}

TEST_CASE("164: serve_forever() is refused while already awaited and after close()") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted;
    auto server = start_server(loop, recording(&accepted), {.start_serving = false});
    Future<void> forever = server->serve_forever();
    CHECK(server->is_serving());  // it starts serving
    CHECK_FALSE(forever.done());
    CHECK_REFUSED(errc::already_serving, (void)server->serve_forever().error());
    server->close();
    CHECK(forever.cancelled());  // the server closed: serve_forever ends
    CHECK_REFUSED(errc::server_closed, (void)server->serve_forever().error());
}

TEST_CASE("165: cancelling serve_forever() closes the server") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted;
    auto server = start_server(loop, recording(&accepted));
    Future<void> forever = server->serve_forever();  // already serving: just waits
    Fd client = connect_to(server->addresses()[0]);
    REQUIRE(run_until(loop, [&] { return accepted.made() == 1; }));
    CHECK(forever.cancel());
    CHECK(run_until(loop, [&] { return !server->is_serving(); }));
    CHECK(server->sockets().empty());
    // Closing does not touch the clients; wait_closed waits for them.
    Future<void> closed = server->wait_closed();
    CHECK_FALSE(closed.done());
    server->close_clients();
    CHECK(run_until(loop, [&] { return closed.done(); }));
}

TEST_CASE("lifetime: a serving server holds itself; after close() it lives until its last client detaches") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted;
    std::weak_ptr<Server> weak;
    SocketAddress address;
    {
        auto server = start_server(loop, recording(&accepted));
        weak = server;
        address = server->addresses()[0];
    }
    REQUIRE_FALSE(weak.expired());  // still serving with no pointer left
    Fd client = connect_to(address);
    REQUIRE(run_until(loop, [&] { return accepted.made() == 1; }));
    weak.lock()->close();
    CHECK_FALSE(weak.expired());  // the client still points at it
    accepted.protocols[0]->transport->close();
    CHECK(run_until(loop, [&] { return weak.expired(); }));
}

TEST_CASE("lifetime: a factory that closes the server still gets its connection; the server lives until it ends") {
    FdLeakCheck leaks;
    EventLoop loop;
    AcceptLog accepted;
    std::weak_ptr<Server> weak;
    ProtocolFactory closing = [&]() -> std::shared_ptr<StreamProtocol> {
        weak.lock()->close();
        return recording(&accepted)();
    };
    SocketAddress address;
    {
        auto server = start_server(loop, closing);
        weak = server;
        address = server->addresses()[0];
    }
    Fd client = connect_to(address);
    REQUIRE(run_until(loop, [&] { return accepted.made() == 1; }));
    CHECK_FALSE(weak.expired());
    CHECK(weak.lock()->client_count() == 1);
    CHECK_FALSE(weak.lock()->is_serving());
    REQUIRE(::send(client.get(), "x", 1, 0) == 1);
    CHECK(run_until(loop, [&] { return accepted.protocols[0]->data == "x"; }));
    accepted.protocols[0]->transport->close();
    CHECK(run_until(loop, [&] { return weak.expired(); }));
}

TEST_CASE("lifetime: closing the loop closes an open server and its clients without calling back") {
    FdLeakCheck leaks;
    AcceptLog accepted;
    std::weak_ptr<Server> weak;
    {
        EventLoop loop;
        auto server = start_server(loop, recording(&accepted));
        weak = server;
        Fd client = connect_to(server->addresses()[0]);
        REQUIRE(run_until(loop, [&] { return accepted.made() == 1; }));
        server.reset();
        CHECK(loop.close() == std::error_code());
        CHECK(weak.expired());
    }
    CHECK(accepted.lost() == 0);  // asyncio only warns about unclosed transports
}
