// test/net/datagram_endpoint_test.cpp — loop.create_datagram_endpoint
// (net/datagram_endpoint.cpp): the argument checks, resolution and pairing
// by family, the socket options, AF_UNIX endpoints, and CPython's asyncio as
// the real peer (test/net/peers/asyncio_udp_peer.py, started with
// posix_spawn; skipped without /usr/bin/python3). CONTRACT 313, 316–325.
// Python-only: 323's "reuse_address raises TypeError" (there is no such
// field to pass). Run from the repo root (the script path is relative).
// Read next: test/net/datagram_transport_test.cpp.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "net/datagram.hpp"
#include "net/datagram_transport.hpp"
#include "net/dns.hpp"
#include "test/support.hpp"

extern char** environ;

using namespace evloop;
using evloop::test::run_until;

namespace {

struct Recorder : DatagramProtocol {
    std::vector<std::pair<std::string, SocketAddress>> datagrams;
    std::vector<std::error_code> errors;
    DatagramTransport* transport = nullptr;
    bool echo = false;  // send every datagram back to its sender
    int lost = 0;

    void connection_made(DatagramTransport& t) override { transport = &t; }
    void datagram_received(std::string_view data, const SocketAddress& from) override {
        datagrams.emplace_back(std::string(data), from);
        if (echo) (void)transport->sendto(data, from);
    }
    void error_received(std::error_code error) override { errors.push_back(error); }
    void connection_lost(std::error_code) override { ++lost; }
};

using RecorderPtr = std::shared_ptr<Recorder>;

/// create_datagram_endpoint with a fresh Recorder; REQUIREs success.
DatagramEndpoint make_endpoint(EventLoop& loop, const DatagramOptions& options) {
    auto endpoint = loop.run_until_complete(
        loop.create_datagram_endpoint([] { return std::make_shared<Recorder>(); }, options));
    REQUIRE_MESSAGE(endpoint.has_value(), "create_datagram_endpoint: ", endpoint.error().message());
    return *endpoint;
}

Recorder& recorder(const DatagramEndpoint& e) { return e.protocol_as<Recorder>(); }

void close_endpoint(EventLoop& loop, const DatagramEndpoint& e) {
    e.transport->close();
    REQUIRE(run_until(loop, [&] { return recorder(e).lost == 1; }));
}

SocketAddress sockname(const DatagramEndpoint& e) { return std::get<SocketAddress>(e.transport->get_extra_info("sockname")); }
bool has_peer(const DatagramEndpoint& e) { return !std::holds_alternative<std::monostate>(e.transport->get_extra_info("peername")); }
int fd_of(const DatagramEndpoint& e) { return std::get<int>(e.transport->get_extra_info("socket")); }

int option(int fd, int name) {
    int value = -1;
    socklen_t size = sizeof value;
    REQUIRE(::getsockopt(fd, SOL_SOCKET, name, &value, &size) == 0);
    return value;
}

/// Calls create_datagram_endpoint and waits: refusals made inside the task
/// (CONTRACT 320) are thrown by result() or logged, as CHECK_REFUSED expects.
void attempt(EventLoop& loop, const DatagramOptions& options) {
    (void)loop.run_until_complete(loop.create_datagram_endpoint([] { return std::make_shared<Recorder>(); }, options));
}

std::string temp_path(const char* name) {
    return "/tmp/evloop-dgram-" + std::to_string(::getpid()) + "-" + name;
}

/// run_until with a ticker every 10 ms, so `done()` is asked also when
/// nothing happens on the loop's fds (a peer's exit is no event it sees).
bool drive(EventLoop& loop, const std::function<bool()>& done, double seconds) {
    struct Ticker {
        EventLoop& loop;
        TimerHandle timer{};
        void arm() { timer = loop.call_later(0.01, [this] { arm(); }); }
    } ticker{loop};
    ticker.arm();
    bool ok = run_until(loop, done, seconds);
    ticker.timer.cancel();
    return ok;
}

}  // namespace

TEST_CASE("sock= must be a datagram socket and comes without address options (CONTRACT 316)") {
    EventLoop loop;
    int stream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_REFUSED(errc::invalid_argument, attempt(loop, {.sock = stream}));
    CHECK(!is_open_fd(stream));  // ours from the call on: closed on refusal
    int dgram = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK_REFUSED(errc::invalid_argument, attempt(loop, {.local_host = "127.0.0.1", .sock = dgram}));
    for (DatagramOptions o : {DatagramOptions{.remote_host = "127.0.0.1", .remote_port = 9},
                              DatagramOptions{.family = AF_INET}, DatagramOptions{.protocol = IPPROTO_UDP},
                              DatagramOptions{.flags = AI_PASSIVE}, DatagramOptions{.reuse_port = true},
                              DatagramOptions{.allow_broadcast = true}}) {
        o.sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        CHECK_REFUSED(errc::invalid_argument, attempt(loop, o));
    }
    test::LogCapture capture;  // the message, in asyncio's words (logged or thrown)
    std::string message;
#if EVLOOP_EXCEPTIONS
    try {
        attempt(loop, {.allow_broadcast = true, .sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)});
    } catch (const Error& e) {
        message = e.what();
    }
#else
    attempt(loop, {.allow_broadcast = true, .sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)});
    message = capture.contains("(allow_broadcast=True)") ? "(allow_broadcast=True)" : "";
#endif
    CHECK(message.find("(allow_broadcast=True)") != std::string::npos);
}

TEST_CASE("a blocking datagram sock= is accepted and made non-blocking (CONTRACT 316)") {
    EventLoop loop;
    int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    Result<SocketAddress> any = SocketAddress::parse("127.0.0.1", 0);
    REQUIRE(::bind(sock, any->data(), any->size()) == 0);
    DatagramEndpoint e = make_endpoint(loop, {.sock = sock});
    CHECK((::fcntl(sock, F_GETFL) & O_NONBLOCK) != 0);
    CHECK(fd_of(e) == sock);
    CHECK(!has_peer(e));
    close_endpoint(loop, e);
    CHECK(!is_open_fd(sock));
}

TEST_CASE("no address and no family is refused; a family alone gives an unbound, unconnected socket (CONTRACT 317, 318)") {
    EventLoop loop;
    CHECK_REFUSED(errc::invalid_argument, attempt(loop, {}));
    for (int family : {AF_INET, AF_INET6, AF_UNIX}) {
        CAPTURE(family);
        DatagramEndpoint e = make_endpoint(loop, {.family = family});
        CHECK(sockname(e).family() == family);
        CHECK(sockname(e).port() == 0);  // unbound
        CHECK(!has_peer(e));
        close_endpoint(loop, e);
    }
}

TEST_CASE("half an address, a bad port, or paths with an IP family are refused (CONTRACT 319, 313)") {
    EventLoop loop;
    CHECK_REFUSED(errc::invalid_argument, attempt(loop, {.remote_port = 9}));
    CHECK_REFUSED(errc::invalid_argument, attempt(loop, {.local_host = "127.0.0.1", .local_port = 70000}));
    CHECK_REFUSED(errc::invalid_argument, attempt(loop, {.local_path = "/tmp/x", .family = AF_INET}));
    CHECK_REFUSED(errc::invalid_argument, attempt(loop, {.local_host = "127.0.0.1", .family = AF_UNIX}));
}

TEST_CASE("local and remote of different families cannot pair (CONTRACT 320)") {
    EventLoop loop;
    CHECK_REFUSED(errc::invalid_argument,
                  attempt(loop, {.local_host = "127.0.0.1", .remote_host = "::1", .remote_port = 9}));
}

TEST_CASE("remote_addr connects: peername, default destination, incoming filter (CONTRACT 321, 290, 325)") {
    EventLoop loop;
    for (const char* host : {"127.0.0.1", "::1"}) {
        CAPTURE(host);
        DatagramEndpoint server = make_endpoint(loop, {.local_host = host, .local_port = 0});
        SocketAddress server_name = sockname(server);
        DatagramEndpoint client = make_endpoint(loop, {.remote_host = host, .remote_port = server_name.port()});
        // The future completed after connection_made, with reading on (325).
        CHECK(recorder(client).transport == client.transport.get());
        CHECK(std::get<SocketAddress>(client.transport->get_extra_info("peername")) == server_name);
        CHECK(!has_peer(server));
        CHECK(!client.transport->sendto("ping"));
        REQUIRE(run_until(loop, [&] { return !recorder(server).datagrams.empty(); }));
        CHECK(recorder(server).datagrams[0].first == "ping");
        CHECK(recorder(server).datagrams[0].second == sockname(client));
        // A stranger's datagram is filtered out by the connected socket; the server's arrives.
        DatagramEndpoint stranger = make_endpoint(loop, {.family = server_name.family()});
        CHECK(!stranger.transport->sendto("stranger", sockname(client)));
        CHECK(!server.transport->sendto("pong", sockname(client)));
        REQUIRE(run_until(loop, [&] { return !recorder(client).datagrams.empty(); }));
        for (int i = 0; i < 3; ++i) {  // iterations that never block: the stranger's datagram had its chance
            loop.call_soon([] {});
            (void)loop.run_once();
        }
        REQUIRE(recorder(client).datagrams.size() == 1);
        CHECK(recorder(client).datagrams[0].first == "pong");
        close_endpoint(loop, stranger);
        close_endpoint(loop, client);
        close_endpoint(loop, server);
    }
}

TEST_CASE("allow_broadcast sets SO_BROADCAST, does not connect, and sends to remote_addr by default (CONTRACT 322, 290, 323)") {
    EventLoop loop;
    DatagramEndpoint server = make_endpoint(loop, {.local_host = "127.0.0.1"});
    DatagramEndpoint e = make_endpoint(loop, {.remote_host = "127.0.0.1", .remote_port = sockname(server).port(),
                                     .allow_broadcast = true});
    CHECK(option(fd_of(e), SO_BROADCAST) == 1);
    CHECK(option(fd_of(e), SO_REUSEPORT) == 0);
    CHECK(option(fd_of(e), SO_REUSEADDR) == 0);
    CHECK(!has_peer(e));  // CONTRACT 290
    CHECK(!e.transport->sendto("hello"));
    REQUIRE(run_until(loop, [&] { return !recorder(server).datagrams.empty(); }));
    CHECK(recorder(server).datagrams[0].first == "hello");
    close_endpoint(loop, e);
    close_endpoint(loop, server);
}

TEST_CASE("reuse_port sets SO_REUSEPORT and never SO_REUSEADDR; without it neither is set (CONTRACT 323)") {
    EventLoop loop;
    DatagramEndpoint plain = make_endpoint(loop, {.local_host = "127.0.0.1"});
    CHECK(option(fd_of(plain), SO_REUSEPORT) == 0);
    CHECK(option(fd_of(plain), SO_REUSEADDR) == 0);
    CHECK(option(fd_of(plain), SO_BROADCAST) == 0);
    // The same port again fails without reuse_port...
    Result<DatagramEndpoint> again = loop.run_until_complete(loop.create_datagram_endpoint(
        [] { return std::make_shared<Recorder>(); }, {.local_host = "127.0.0.1", .local_port = sockname(plain).port()}));
    CHECK(again.error() == std::error_code(EADDRINUSE, std::system_category()));
    close_endpoint(loop, plain);
    // ...and works for two endpoints that both ask for it.
    DatagramEndpoint a = make_endpoint(loop, {.local_host = "127.0.0.1", .reuse_port = true});
    DatagramEndpoint b = make_endpoint(loop, {.local_host = "127.0.0.1", .local_port = sockname(a).port(), .reuse_port = true});
    CHECK(option(fd_of(a), SO_REUSEPORT) == 1);
    CHECK(option(fd_of(b), SO_REUSEADDR) == 0);
    CHECK(sockname(a) == sockname(b));
    close_endpoint(loop, a);
    close_endpoint(loop, b);
}

TEST_CASE("each candidate is tried in turn; when all fail, the first error (CONTRACT 324)") {
    EventLoop loop;
    // "localhost" with both families: occupy the port on the family
    // getaddrinfo lists first, so only the second candidate can bind.
    // Every interface of both families (0.0.0.0, then ::): with 127.0.0.1's
    // port taken, both fail (:: is dual-stack), and the answer is the first error.
    {
        DatagramEndpoint blocker = make_endpoint(loop, {.local_host = "127.0.0.1"});
        Result<DatagramEndpoint> failed = loop.run_until_complete(loop.create_datagram_endpoint(
            [] { return std::make_shared<Recorder>(); }, {.local_host = "", .local_port = sockname(blocker).port()}));
        CHECK(failed.error() == std::error_code(EADDRINUSE, std::system_category()));
        close_endpoint(loop, blocker);
    }
    Result<std::vector<AddrInfo>> infos = getaddrinfo_blocking("localhost", "0", {.type = SOCK_DGRAM});
    REQUIRE(infos);
    if (infos->size() < 2 || (*infos)[0].family == (*infos)[1].family) {
        MESSAGE("localhost does not resolve to both families here: the fallback case is skipped");
        return;
    }
    int first = (*infos)[0].family, second = (*infos)[1].family;
    const char* first_host = first == AF_INET ? "127.0.0.1" : "::1";
    DatagramEndpoint blocker = make_endpoint(loop, {.local_host = first_host});
    int port = sockname(blocker).port();
    DatagramEndpoint e = make_endpoint(loop, {.local_host = "localhost", .local_port = port});
    CHECK(sockname(e).family() == second);
    CHECK(sockname(e).port() == port);
    // Both taken: the first candidate's error.
    Result<DatagramEndpoint> failed = loop.run_until_complete(loop.create_datagram_endpoint(
        [] { return std::make_shared<Recorder>(); }, {.local_host = "localhost", .local_port = port}));
    CHECK(failed.error() == std::error_code(EADDRINUSE, std::system_category()));
    close_endpoint(loop, e);
    close_endpoint(loop, blocker);
}

TEST_CASE("AF_UNIX endpoints: paths, a stale socket file removed, a regular file kept (CONTRACT 313)") {
    EventLoop loop;
    std::string server_path = temp_path("server"), client_path = temp_path("client");
    // A socket file left by an earlier run.
    {
        Fd stale(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        Result<SocketAddress> address = SocketAddress::unix_path(server_path);
        REQUIRE(::bind(stale.get(), address->data(), address->size()) == 0);
    }
    DatagramEndpoint server = make_endpoint(loop, {.local_path = server_path});
    DatagramEndpoint client = make_endpoint(loop, {.local_path = client_path, .remote_path = server_path});
    CHECK(sockname(server).host() == server_path);
    CHECK(std::get<SocketAddress>(client.transport->get_extra_info("peername")).host() == server_path);
    CHECK(!client.transport->sendto("over unix"));
    REQUIRE(run_until(loop, [&] { return !recorder(server).datagrams.empty(); }));
    CHECK(recorder(server).datagrams[0].first == "over unix");
    CHECK(recorder(server).datagrams[0].second.host() == client_path);
    CHECK(!server.transport->sendto("reply", recorder(server).datagrams[0].second));
    REQUIRE(run_until(loop, [&] { return !recorder(client).datagrams.empty(); }));
    close_endpoint(loop, client);
    close_endpoint(loop, server);
    ::unlink(client_path.c_str());
    // A regular file is not ours to delete: bind fails with EADDRINUSE.
    ::unlink(server_path.c_str());
    { std::ofstream(server_path) << "keep me"; }
    Result<DatagramEndpoint> failed = loop.run_until_complete(
        loop.create_datagram_endpoint([] { return std::make_shared<Recorder>(); }, {.local_path = server_path}));
    CHECK(failed.error() == std::error_code(EADDRINUSE, std::system_category()));
    struct stat info {};
    CHECK(::stat(server_path.c_str(), &info) == 0);
    CHECK(S_ISREG(info.st_mode));
    ::unlink(server_path.c_str());
    // Abstract names are never stat'ed or unlinked; they just work.
    DatagramEndpoint abstract = make_endpoint(loop, {.local_path = std::string(1, '\0') + "evloop-dgram-" + std::to_string(::getpid())});
    CHECK(sockname(abstract).host()[0] == '\0');
    close_endpoint(loop, abstract);
}

TEST_CASE("errors of the OS and the resolver are the future's error") {
    EventLoop loop;
    Result<DatagramEndpoint> refused = loop.run_until_complete(loop.create_datagram_endpoint(
        [] { return std::make_shared<Recorder>(); }, {.remote_path = temp_path("nobody")}));
    CHECK(refused.error() == std::error_code(ENOENT, std::system_category()));
    Result<DatagramEndpoint> unknown = loop.run_until_complete(loop.create_datagram_endpoint(
        [] { return std::make_shared<Recorder>(); }, {.remote_host = "no-such-host.invalid", .remote_port = 9, .flags = AI_NUMERICHOST}));
    CHECK(unknown.error().category() == gai_category());
}

TEST_CASE("a closed loop refuses; a loop closed with an open endpoint leaks nothing") {
    int fd = -1;
    {
        EventLoop loop;
        DatagramEndpoint e = make_endpoint(loop, {.local_host = "127.0.0.1"});
        fd = fd_of(e);
        REQUIRE(!loop.close());
        CHECK(!is_open_fd(fd));
        CHECK(recorder(e).lost == 0);
        CHECK_REFUSED(errc::loop_closed, (void)loop.create_datagram_endpoint(
                                             [] { return std::make_shared<Recorder>(); }, {.family = AF_INET}));
    }
}

// ---- CPython's asyncio as the peer ------------------------------------------------

namespace {

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kPeerScript = "test/net/peers/asyncio_udp_peer.py";

bool peer_missing() {
    static const bool missing = [] {
        const char* why = ::access(kPython, X_OK) != 0        ? "/usr/bin/python3 is not installed"
                          : ::access(kPeerScript, R_OK) != 0 ? "the peer script is not here (run from the repo root)"
                                                             : nullptr;
        if (why) std::fprintf(stderr, "datagram_endpoint_test: %s: the asyncio cases are skipped\n", why);
        return why != nullptr;
    }();
    return missing;
}

/// One run of asyncio_udp_peer.py; killed and reaped by the destructor if still running.
class Peer {
public:
    explicit Peer(std::vector<std::string> args) {
        args.insert(args.begin(), {kPython, "-I", kPeerScript});
        std::vector<char*> argv;
        for (auto& arg : args) argv.push_back(arg.data());
        argv.push_back(nullptr);
        posix_spawnattr_t attr;
        ::posix_spawnattr_init(&attr);
        sigset_t none;
        sigemptyset(&none);
        ::posix_spawnattr_setsigmask(&attr, &none);
        ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        int error = ::posix_spawn(&pid_, kPython, nullptr, &attr, argv.data(), environ);
        ::posix_spawnattr_destroy(&attr);
        REQUIRE_MESSAGE(error == 0, "posix_spawn: ", std::strerror(error));
    }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;
    ~Peer() {
        if (!reaped_) {
            ::kill(pid_, SIGKILL);
            (void)retry_eintr([&] { return ::waitpid(pid_, &status_, 0); });
        }
    }
    bool exited() {
        if (!reaped_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
        return reaped_;
    }
    /// The exit status once exited (128 + N for signal N).
    int status() const { return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_); }

private:
    pid_t pid_ = -1;
    int status_ = 0;
    bool reaped_ = false;
};

/// Sends `total` numbered datagrams (the script's format) with `window` in
/// flight and checks every echo.
struct WindowedSender : DatagramProtocol {
    int total, window, sent = 0, echoed = 0, bad = 0;
    DatagramTransport* transport = nullptr;
    WindowedSender(int total, int window) : total(total), window(window) {}

    static std::string datagram(int i) {
        std::string data = std::to_string(i) + ":";
        for (int k = 0; k < i % 1400; ++k) data += static_cast<char>((i * 7 + k) & 0xFF);
        return data;
    }
    void send_next() { CHECK(!transport->sendto(datagram(sent++))); }
    void connection_made(DatagramTransport& t) override {
        transport = &t;
        while (sent < std::min(window, total)) send_next();
    }
    void datagram_received(std::string_view data, const SocketAddress&) override {
        int i = std::atoi(std::string(data.substr(0, data.find(':'))).c_str());
        if (data != datagram(i)) ++bad;
        ++echoed;
        if (sent < total) send_next();
    }
};

}  // namespace

TEST_CASE("asyncio's UDP echo server echoes 1,000 datagrams evloop sends" * doctest::skip(peer_missing())) {
    for (const char* host : {"127.0.0.1", "::1"}) {
        CAPTURE(host);
        EventLoop loop;
        std::string port_file = temp_path("port");
        ::unlink(port_file.c_str());
        Peer peer({"server", "--host", host, "--port-file", port_file, "--count", "1000"});
        int port = 0;
        for (int i = 0; i < 1000 && !peer.exited() && port == 0; ++i) {
            std::ifstream(port_file) >> port;
            if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ::unlink(port_file.c_str());
        REQUIRE_MESSAGE(port > 0, "the asyncio server did not start");
        auto sender = std::make_shared<WindowedSender>(1000, 32);
        auto endpoint = loop.run_until_complete(loop.create_datagram_endpoint(
            [sender] { return sender; }, {.remote_host = host, .remote_port = port}));
        REQUIRE(endpoint);
        CHECK(drive(loop, [&] { return sender->echoed == 1000 || peer.exited(); }, 20));
        CHECK(sender->echoed == 1000);
        CHECK(sender->bad == 0);
        endpoint->transport->close();
        CHECK(drive(loop, [&] { return peer.exited(); }, 10));
        CHECK(peer.status() == 0);
    }
}

TEST_CASE("asyncio's UDP client gets 1,000 datagrams echoed by an evloop endpoint" * doctest::skip(peer_missing())) {
    for (const char* host : {"127.0.0.1", "::1"}) {
        CAPTURE(host);
        EventLoop loop;
        DatagramEndpoint server = make_endpoint(loop, {.local_host = host});
        recorder(server).echo = true;
        Peer peer({"client", "--host", host, "--port", std::to_string(sockname(server).port()), "--count", "1000"});
        CHECK(drive(loop, [&] { return peer.exited(); }, 20));
        CHECK(peer.status() == 0);
        CHECK(recorder(server).datagrams.size() == 1000);
        CHECK(recorder(server).errors.empty());
        close_endpoint(loop, server);
    }
}
