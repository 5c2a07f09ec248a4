// test/net/interop_test.cpp — evloop's stream transports against a peer no
// one here wrote: CPython's asyncio (test/net/peers/asyncio_peer.py, whose
// docstring lists its modes), over real TCP on 127.0.0.1 and ::1.
// Each case starts the peer with posix_spawn (there is no proc/ layer to use
// yet), runs the loop until both sides are done or a deadline passes, then
// reaps the peer and wants exit status 0 on top of its own checks: the peer
// verifies what evloop sent with hashlib, evloop verifies what the peer sent
// against the same pattern and with test/net/sha256.hpp.
// Run from the repo root (the script path is relative). Without
// /usr/bin/python3 every case is skipped, and the binary says so.
// Read next: test/net/peers/asyncio_peer.py, test/net/socket_transport_test.cpp.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "core/event_loop.hpp"
#include "core/task_helpers.hpp"
#include "net/connection.hpp"
#include "net/server.hpp"
#include "net/stream.hpp"
#include "net/transport.hpp"
#include "platform/fd.hpp"
#include "test/net/sha256.hpp"
#include "test/support.hpp"

extern char** environ;

using namespace evloop;

namespace {

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kPeerScript = "test/net/peers/asyncio_peer.py";
constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr double kCaseSeconds = 20;  // a case that needs this long has failed (they take 0.5–3 s)

// Decided once, when the cases register (a doctest skip decorator takes a
// bool), and said once, so a skipped run explains itself.
bool peer_missing() {
    static const bool missing = [] {
        const char* why = ::access(kPython, X_OK) != 0         ? "/usr/bin/python3 is not installed"
                          : ::access(kPeerScript, R_OK) != 0 ? "test/net/peers/asyncio_peer.py is not here "
                                                               "(run the binary from the repo root)"
                                                             : nullptr;
        if (why) std::fprintf(stderr, "interop_test: %s: the asyncio interop cases are skipped\n", why);
        return why != nullptr;
    }();
    return missing;
}

// ---- the peer's data ---------------------------------------------------------

/// asyncio_peer.py's pattern: a 65,521-byte block of a 32-bit LCG's top
/// bytes, repeated. Stored twice over, so any piece up to a block long
/// starting anywhere is one contiguous view.
class Pattern {
public:
    static constexpr std::size_t kSize = 65521;

    Pattern() : twice_(2 * kSize, '\0') {
        std::uint32_t x = 0x12345678;
        for (std::size_t i = 0; i < kSize; ++i) {
            x = x * 1103515245u + 12345u;
            twice_[i] = twice_[i + kSize] = static_cast<char>(x >> 24);
        }
    }
    /// Bytes [offset, offset + n) of the endless stream; n <= kSize.
    std::string_view at(std::uint64_t offset, std::size_t n) const {
        return std::string_view(twice_).substr(static_cast<std::size_t>(offset % kSize), n);
    }
    /// The first n bytes of the stream.
    std::string bytes(std::uint64_t n) const {
        std::string out;
        for (std::uint64_t done = 0; done < n; done += kSize) out += at(done, std::min<std::uint64_t>(kSize, n - done));
        return out;
    }
    /// True if `data` is bytes [offset, offset + data.size()) of the stream.
    bool matches(std::uint64_t offset, std::string_view data) const {
        while (!data.empty()) {
            std::size_t n = std::min(data.size(), kSize);
            if (data.substr(0, n) != at(offset, n)) return false;
            data.remove_prefix(n);
            offset += n;
        }
        return true;
    }

private:
    std::string twice_;
};

const Pattern& pattern() {
    static const Pattern instance;
    return instance;
}

/// What a sink answers at EOF: "<sha256 hex> <count>\n" (hashlib's hexdigest).
std::string sink_reply(test::Sha256 hash, std::uint64_t count) {
    return hash.hex_digest() + " " + std::to_string(count) + "\n";
}

// ---- the peer process ----------------------------------------------------------

/// One run of asyncio_peer.py. The destructor kills and reaps a peer still
/// running, so a failed check never leaves a process behind.
class Peer {
public:
    /// `asyncio_peer.py client MODE [N] --host H --port P`.
    static std::unique_ptr<Peer> client(const std::string& mode, std::uint64_t n, const std::string& host, int port) {
        return std::unique_ptr<Peer>(
            new Peer({"client", mode, std::to_string(n), "--host", host, "--port", std::to_string(port)}, {}));
    }
    /// `asyncio_peer.py server MODE [N] --host H --port-file F`; returns
    /// once the peer is listening (port() > 0) or has failed (port() == 0).
    static std::unique_ptr<Peer> server(const std::string& mode, std::uint64_t n = 0,
                                        const std::string& host = "127.0.0.1") {
        char dir[] = "/tmp/evloop-interop-XXXXXX";
        REQUIRE(::mkdtemp(dir) != nullptr);
        std::string port_file = std::string(dir) + "/port";
        std::unique_ptr<Peer> peer(
            new Peer({"server", mode, std::to_string(n), "--host", host, "--port-file", port_file}, dir));
        // The peer renames the file into place, so a file that exists is whole.
        for (int i = 0; i < 1000 && !peer->exited(); ++i) {
            std::ifstream in(port_file);
            if (in >> peer->port_) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        REQUIRE_MESSAGE(peer->port_ > 0, "the asyncio server did not start");
        return peer;
    }

    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;
    ~Peer() {
        if (!reaped_) {
            ::kill(pid_, SIGKILL);
            (void)retry_eintr([&] { return ::waitpid(pid_, &status_, 0); });
        }
        if (!dir_.empty()) {
            ::unlink((dir_ + "/port").c_str());
            ::rmdir(dir_.c_str());
        }
    }

    int port() const noexcept { return port_; }
    /// True once the peer has exited (it is reaped then).
    bool exited() {
        if (!reaped_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
        return reaped_;
    }
    /// True once the peer has exited with a failure: no use waiting for more.
    bool failed() { return exited() && exit_status() != 0; }
    /// Waits up to `seconds` for the peer to exit, then kills it. Returns its
    /// exit status; 128 + N if signal N ended it.
    int wait(double seconds = 10) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        while (!exited() && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (!exited()) {
            MESSAGE("the asyncio peer did not exit in time: killed");
            ::kill(pid_, SIGKILL);
            (void)retry_eintr([&] { return ::waitpid(pid_, &status_, 0); });
            reaped_ = true;
        }
        return exit_status();
    }

private:
    Peer(std::vector<std::string> args, std::string dir) : dir_(std::move(dir)) {
        // -I: the standard library only, whatever PYTHONPATH or ~/.local hold.
        args.insert(args.begin(), {kPython, "-I", kPeerScript});
        std::vector<char*> argv;
        for (auto& arg : args) argv.push_back(arg.data());
        argv.push_back(nullptr);
        // The child starts with no blocked signals, whatever this thread has.
        posix_spawnattr_t attr;
        ::posix_spawnattr_init(&attr);
        sigset_t none;
        sigemptyset(&none);
        ::posix_spawnattr_setsigmask(&attr, &none);
        ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
        int error = ::posix_spawn(&pid_, kPython, nullptr, &attr, argv.data(), environ);
        ::posix_spawnattr_destroy(&attr);
        REQUIRE_MESSAGE(error == 0, "posix_spawn ", kPython, ": ", std::strerror(error));
    }
    int exit_status() const {
        if (WIFEXITED(status_)) return WEXITSTATUS(status_);
        return WIFSIGNALED(status_) ? 128 + WTERMSIG(status_) : -1;
    }

    pid_t pid_ = -1;
    int status_ = 0;
    bool reaped_ = false;
    int port_ = 0;
    std::string dir_;  // holds the port file
};

// ---- driving the loop ----------------------------------------------------------

/// Runs the loop until `done()` or kCaseSeconds. A ticker wakes it every
/// 10 ms, so `done()` is asked also when nothing happens on the loop's fds
/// (the peer's exit is no event the loop sees).
bool drive(EventLoop& loop, const std::function<bool()>& done, double seconds = kCaseSeconds) {
    struct Ticker {
        EventLoop& loop;
        TimerHandle timer{};
        void arm() {
            timer = loop.call_later(0.01, [this] { arm(); });
        }
    } ticker{loop};
    ticker.arm();
    bool ok = test::run_until(loop, done, seconds);
    ticker.timer.cancel();
    return ok;
}

/// create_connection with a deadline, handing over a protocol made beforehand.
Result<Connection> connect(EventLoop& loop, std::shared_ptr<StreamProtocol> protocol, const std::string& host,
                           int port) {
    return loop.run_until_complete(
        wait_for(loop.create_connection([protocol] { return protocol; }, host, port), 10.0));
}

/// create_server on host, port 0, with a deadline; REQUIREs that it worked.
std::shared_ptr<Server> serve(EventLoop& loop, ProtocolFactory factory, const std::string& host,
                              ServerOptions options = {}) {
    auto server = loop.run_until_complete(wait_for(loop.create_server(std::move(factory), host, 0, options), 10.0));
    REQUIRE_MESSAGE(server.has_value(), "create_server: ", server.error().message());
    REQUIRE(!(*server)->addresses().empty());
    return *server;
}

void close_server(EventLoop& loop, Server& server) {
    server.close();
    CHECK(loop.run_until_complete(wait_for(server.wait_closed(), 10.0)).has_value());
}

bool is_reset(std::error_code error) {
    return error == std::error_code(ECONNRESET, std::system_category()) ||
           error == std::error_code(EPIPE, std::system_category());
}

// ---- evloop's side of the conversations -----------------------------------------

/// Writes `total` pattern bytes in `chunk`-sized writes as fast as flow
/// control lets it, then write_eof(); keeps (the first few MiB of) what it
/// receives. Records what flow control did, for the slow-reader case.
struct Sender : Protocol {
    Sender(EventLoop& loop, std::uint64_t total, std::size_t chunk) : loop(loop), total(total), chunk(chunk) {}

    EventLoop& loop;
    std::uint64_t total;
    std::size_t chunk;
    std::function<void(Transport&)> on_made;  // runs before the first write
    Transport* transport = nullptr;
    test::Sha256 sent_hash;
    std::uint64_t sent = 0;
    bool eof_written = false;
    bool late_write_refused = false;   // write() after write_eof() was refused
    bool paused = false;
    int pauses = 0, resumes = 0;
    std::size_t max_buffered = 0;      // the write buffer's peak, read after every write
    std::size_t min_buffered_at_pause = SIZE_MAX;
    std::size_t max_buffered_at_resume = 0;
    std::string received;              // the first kKeep bytes
    std::uint64_t received_count = 0;
    std::uint64_t received_when_eof_written = 0;
    bool eof = false;
    int lost = 0;
    std::error_code lost_error;
    bool pump_scheduled = false;       // a pump() is queued with call_soon

    static constexpr std::size_t kKeep = 4 * kMiB;
    // Written per callback at most: when the peer reads as fast as we write,
    // flow control never pauses us, and one endless callback would starve
    // this connection's own reads.
    static constexpr std::size_t kBurst = 1 * kMiB;

    void connection_made(Transport& t) override {
        transport = &t;
        if (on_made) on_made(t);
        pump();
    }
    void pump() {
        if (lost > 0) return;
        for (std::size_t burst = 0; !paused && sent < total && !transport->is_closing(); burst += chunk) {
            if (burst >= kBurst) {
                if (!std::exchange(pump_scheduled, true)) loop.call_soon([this] {
                    pump_scheduled = false;
                    pump();
                });
                return;
            }
            std::string_view piece = pattern().at(sent, static_cast<std::size_t>(std::min<std::uint64_t>(chunk, total - sent)));
            if (transport->write(piece)) return;  // the connection failed; connection_lost follows
            sent_hash.update(piece);
            sent += piece.size();
            max_buffered = std::max(max_buffered, transport->get_write_buffer_size());
        }
        if (sent == total && !eof_written && lost == 0) {
            transport->write_eof();
            eof_written = true;
            received_when_eof_written = received_count;
            late_write_refused = test::refused_with(errc::write_after_eof, [&] { (void)transport->write("late"); });
        }
    }
    void pause_writing() override {
        ++pauses;
        paused = true;
        min_buffered_at_pause = std::min(min_buffered_at_pause, transport->get_write_buffer_size());
    }
    void resume_writing() override {
        ++resumes;
        paused = false;
        max_buffered_at_resume = std::max(max_buffered_at_resume, transport->get_write_buffer_size());
        pump();
    }
    void data_received(std::string_view data) override {
        received_count += data.size();
        if (received.size() < kKeep) received += data.substr(0, kKeep - received.size());
    }
    bool eof_received() override {
        eof = true;
        return false;
    }
    void connection_lost(std::error_code error) override {
        ++lost;
        lost_error = error;
        transport = nullptr;
    }
};

/// A sink on evloop's side: checks every byte against the pattern and hashes
/// it; at EOF it keeps the transport open (eof_received returns true) and,
/// one timer later, sends the sink reply, preceded by everything it got when
/// `echo_at_eof` (what asyncio_peer's half-close mode expects), then closes.
struct Sink : Protocol {
    explicit Sink(EventLoop& loop, bool echo_at_eof = false) : loop(loop), echo_at_eof(echo_at_eof) {}

    EventLoop& loop;
    bool echo_at_eof;
    Transport* transport = nullptr;
    test::Sha256 hash;
    std::uint64_t count = 0;
    bool matches_pattern = true;
    std::string kept;  // echo_at_eof only
    bool eof = false;
    bool open_after_eof = false;  // still open and writable once eof_received had returned true
    bool replied = false;
    int lost = 0;
    std::error_code lost_error;

    void connection_made(Transport& t) override { transport = &t; }
    void data_received(std::string_view data) override {
        matches_pattern = matches_pattern && pattern().matches(count, data);
        hash.update(data);
        count += data.size();
        if (echo_at_eof) kept += data;
    }
    bool eof_received() override {
        eof = true;
        // A timer later, so the writing clearly happens after eof_received
        // returned: the half-open transport must still take writes.
        loop.call_later(0.02, [this] { reply(); });
        return true;
    }
    void reply() {
        if (lost > 0) return;
        open_after_eof = !transport->is_closing();
        if (echo_at_eof) CHECK(!transport->write(kept));
        CHECK(!transport->write(sink_reply(hash, count)));
        replied = true;
        transport->close();
    }
    void connection_lost(std::error_code error) override {
        ++lost;
        lost_error = error;
        transport = nullptr;
    }
};

/// The same sink reading through get_buffer()/buffer_updated(): the
/// transport's zero-copy path.
struct BufferedSink : BufferedProtocol {
    explicit BufferedSink(EventLoop& loop) : sink(loop) {}
    Sink sink;
    char buffer[64 * 1024];

    std::span<char> get_buffer(std::size_t) override { return buffer; }
    void buffer_updated(std::size_t n) override { sink.data_received({buffer, n}); }
    void connection_made(Transport& t) override { sink.connection_made(t); }
    bool eof_received() override { return sink.eof_received(); }
    void connection_lost(std::error_code error) override { sink.connection_lost(error); }
};

/// Answers every "ping <i>\n" with "pong <i>\n"; counts in `stats`.
struct PongStats {
    int made = 0, lost = 0, peak = 0, answered = 0, errors = 0;
};
struct Pong : Protocol {
    explicit Pong(PongStats& stats) : stats(stats) {}
    PongStats& stats;
    Transport* transport = nullptr;
    std::string line;

    void connection_made(Transport& t) override {
        transport = &t;
        ++stats.made;
        stats.peak = std::max(stats.peak, stats.made - stats.lost);
    }
    void data_received(std::string_view data) override {
        for (char c : data) {
            if (c != '\n') {
                line += c;
                continue;
            }
            if (line.rfind("ping ", 0) == 0 && !transport->write("pong " + line.substr(5) + "\n")) ++stats.answered;
            line.clear();
        }
    }
    void connection_lost(std::error_code error) override {
        ++stats.lost;
        if (error) ++stats.errors;
    }
};

// ---- the transfers, shared by the IPv4 and IPv6 cases ----------------------------

/// `total` bytes from an evloop client to an asyncio sink on `host`.
void evloop_client_to_asyncio_server(const std::string& host, std::uint64_t total) {
    EventLoop loop;
    auto peer = Peer::server("sink-sha256", 0, host);
    auto sender = std::make_shared<Sender>(loop, total, 256 * 1024);
    auto connection = connect(loop, sender, host, peer->port());
    REQUIRE_MESSAGE(connection.has_value(), "create_connection: ", connection.error().message());
    CHECK(drive(loop, [&] { return (sender->lost > 0 && peer->exited()) || peer->failed(); }));
    CHECK(peer->wait() == 0);
    CHECK(sender->sent == total);
    CHECK(sender->eof_written);
    CHECK(sender->eof);
    CHECK(sender->lost == 1);
    CHECK(!sender->lost_error);
    CHECK(sender->received == sink_reply(sender->sent_hash, total));  // asyncio's hashlib agrees
}

/// `total` bytes from an asyncio client to an evloop server on `host`,
/// read by a Protocol or (`buffered`) a BufferedProtocol.
void asyncio_client_to_evloop_server(const std::string& host, std::uint64_t total, bool buffered = false) {
    EventLoop loop;
    std::vector<std::shared_ptr<StreamProtocol>> made;  // keeps each Sink alive for the checks
    std::vector<Sink*> sinks;
    auto server = serve(loop, [&]() -> std::shared_ptr<StreamProtocol> {
        if (buffered) {
            auto protocol = std::make_shared<BufferedSink>(loop);
            sinks.push_back(&protocol->sink);
            return made.emplace_back(std::move(protocol));
        }
        auto protocol = std::make_shared<Sink>(loop);
        sinks.push_back(protocol.get());
        return made.emplace_back(std::move(protocol));
    }, host);
    auto peer = Peer::client("source", total, host, server->addresses()[0].port());
    CHECK(drive(loop, [&] { return (sinks.size() == 1 && sinks[0]->lost > 0 && peer->exited()) || peer->failed(); }));
    CHECK(peer->wait() == 0);  // the peer checked evloop's sha256 of what arrived
    REQUIRE(sinks.size() == 1);
    CHECK(sinks[0]->count == total);
    CHECK(sinks[0]->matches_pattern);
    CHECK(sinks[0]->replied);
    CHECK(!sinks[0]->lost_error);
    close_server(loop, *server);
}

/// True if this host can bind a TCP socket to ::1.
bool have_ipv6_loopback() {
    Fd sock(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!sock) return false;
    sockaddr_in6 address{};
    address.sin6_family = AF_INET6;
    address.sin6_addr = in6addr_loopback;
    return ::bind(sock.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
}

}  // namespace

TEST_SUITE_BEGIN("interop" * doctest::skip(peer_missing()));

TEST_CASE("interop: 100 MiB from an evloop client to an asyncio server arrive intact (sha256 both sides)") {
    evloop_client_to_asyncio_server("127.0.0.1", 100 * kMiB);
}

TEST_CASE("interop: 100 MiB from an asyncio client to an evloop server arrive intact (sha256 both sides)") {
    asyncio_client_to_evloop_server("127.0.0.1", 100 * kMiB);
}

TEST_CASE("interop: after evloop's write_eof the asyncio peer's echo and reply still arrive") {
    EventLoop loop;
    auto peer = Peer::server("echo");
    const std::uint64_t total = 1 * kMiB;
    auto sender = std::make_shared<Sender>(loop, total, 64 * 1024);
    auto connection = connect(loop, sender, "127.0.0.1", peer->port());
    REQUIRE(connection.has_value());
    CHECK(drive(loop, [&] { return (sender->lost > 0 && peer->exited()) || peer->failed(); }));
    CHECK(peer->wait() == 0);
    CHECK(sender->eof_written);
    CHECK(sender->late_write_refused);
    CHECK(sender->received_count > sender->received_when_eof_written);
    CHECK(sender->received == pattern().bytes(total) + sink_reply(sender->sent_hash, total));
    CHECK(sender->eof);
    CHECK(!sender->lost_error);
}

TEST_CASE("interop: after asyncio's write_eof, eof_received returning true keeps evloop's side writable") {
    EventLoop loop;
    const std::uint64_t total = 1 * kMiB;
    std::vector<std::shared_ptr<Sink>> sinks;
    auto server = serve(loop, [&] { return sinks.emplace_back(std::make_shared<Sink>(loop, true)); }, "127.0.0.1");
    // The peer sends, write_eof()s, and wants its bytes back and the reply.
    auto peer = Peer::client("half-close", total, "127.0.0.1", server->addresses()[0].port());
    CHECK(drive(loop, [&] { return (sinks.size() == 1 && sinks[0]->lost > 0 && peer->exited()) || peer->failed(); }));
    CHECK(peer->wait() == 0);
    REQUIRE(sinks.size() == 1);
    CHECK(sinks[0]->eof);
    CHECK(sinks[0]->open_after_eof);
    CHECK(sinks[0]->replied);
    CHECK(sinks[0]->count == total);
    CHECK(sinks[0]->matches_pattern);
    CHECK(!sinks[0]->lost_error);
    close_server(loop, *server);
}

TEST_CASE("interop: an asyncio server's RST mid-transfer gives the evloop client connection_lost(ECONNRESET)") {
    EventLoop loop;
    auto peer = Peer::server("reset", 200);  // reads and sends for 200 ms, then RST
    auto sender = std::make_shared<Sender>(loop, 1024 * kMiB, 64 * 1024);
    auto connection = connect(loop, sender, "127.0.0.1", peer->port());
    REQUIRE(connection.has_value());
    CHECK(drive(loop, [&] { return (sender->lost > 0 && peer->exited()) || peer->failed(); }));
    CHECK(peer->wait() == 0);
    CHECK(sender->lost == 1);
    CHECK_MESSAGE(is_reset(sender->lost_error), sender->lost_error.message());
    CHECK(sender->sent > 0);
    CHECK(sender->sent < sender->total);
    CHECK(sender->received_count > 0);  // traffic both ways when the RST came
}

TEST_CASE("interop: an asyncio client's RST mid-transfer gives the evloop server connection_lost(ECONNRESET)") {
    EventLoop loop;
    std::vector<std::shared_ptr<Sink>> sinks;
    auto server = serve(loop, [&] { return sinks.emplace_back(std::make_shared<Sink>(loop)); }, "127.0.0.1");
    auto peer = Peer::client("reset", 200, "127.0.0.1", server->addresses()[0].port());
    CHECK(drive(loop, [&] { return (sinks.size() == 1 && sinks[0]->lost > 0 && peer->exited()) || peer->failed(); }));
    CHECK(peer->wait() == 0);
    REQUIRE(sinks.size() == 1);
    CHECK(sinks[0]->lost == 1);
    CHECK_MESSAGE(is_reset(sinks[0]->lost_error), sinks[0]->lost_error.message());
    CHECK(sinks[0]->count > 0);
    CHECK(sinks[0]->matches_pattern);
    CHECK(!sinks[0]->eof);  // a RST, not a FIN
    close_server(loop, *server);
}

TEST_CASE("interop: 1,000 concurrent asyncio clients are all served by one evloop server") {
    constexpr int kClients = 1000;
    // Both processes need an fd per connection (the peer inherits the limit).
    rlimit original{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &original) == 0);
    const rlim_t needed = kClients + 200;
    if (original.rlim_max != RLIM_INFINITY && original.rlim_max < needed) {
        MESSAGE("skipped: RLIMIT_NOFILE's hard limit (", original.rlim_max, ") is below ", needed);
        return;
    }
    if (original.rlim_cur != RLIM_INFINITY && original.rlim_cur < needed) {
        rlimit raised{original.rlim_max, original.rlim_max};
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &raised) == 0);
    }
    {
        EventLoop loop;
        PongStats stats;
        // A backlog that holds every connect at once: with asyncio's default
        // of 100 the kernel would drop SYNs and the retries take seconds.
        auto server = serve(loop, [&] { return std::make_shared<Pong>(stats); }, "127.0.0.1", {.backlog = 1024});
        auto peer = Peer::client("many", kClients, "127.0.0.1", server->addresses()[0].port());
        CHECK(drive(loop, [&] { return (stats.lost == kClients && peer->exited()) || peer->failed(); }));
        CHECK(peer->wait() == 0);  // every ping got its pong
        CHECK(stats.made == kClients);
        CHECK(stats.peak == kClients);  // all open at once
        CHECK(stats.answered == kClients);
        CHECK(stats.lost == kClients);
        CHECK(stats.errors == 0);
        CHECK(server->client_count() == 0);
        close_server(loop, *server);
    }
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &original) == 0);
}

TEST_CASE("interop: a slow asyncio reader pauses the evloop writer, whose buffer stays bounded") {
    EventLoop loop;
    auto peer = Peer::server("slow-reader");  // 1 KiB every 10 ms, small receive buffer
    const std::uint64_t total = 192 * 1024;
    const std::size_t chunk = 16 * 1024;
    const WriteBufferLimits limits{.low = 16 * 1024, .high = 64 * 1024};
    auto sender = std::make_shared<Sender>(loop, total, chunk);
    sender->on_made = [&](Transport& t) {
        // A small kernel send buffer, so the transport's own buffer is what fills.
        ExtraInfo socket = t.get_extra_info("socket");
        if (const int* fd = std::get_if<int>(&socket)) {
            int size = 8 * 1024;
            CHECK(::setsockopt(*fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
        }
        CHECK(!t.set_write_buffer_limits(limits.high, limits.low));
    };
    // While paused the writer must not write: within one pause the buffer
    // may only shrink.
    int sampled_pause = 0;
    std::size_t buffered_while_paused = 0;
    bool grew_while_paused = false;
    struct Sampler {
        EventLoop& loop;
        std::function<void()> sample;
        TimerHandle timer{};
        void arm() {
            timer = loop.call_later(0.002, [this] {
                sample();
                arm();
            });
        }
    } sampler{loop, [&] {
        if (!sender->transport || !sender->paused) return;
        std::size_t now = sender->transport->get_write_buffer_size();
        if (sampled_pause == sender->pauses && now > buffered_while_paused) grew_while_paused = true;
        sampled_pause = sender->pauses;
        buffered_while_paused = now;
    }};
    sampler.arm();
    auto connection = connect(loop, sender, "127.0.0.1", peer->port());
    REQUIRE(connection.has_value());
    CHECK(drive(loop, [&] { return (sender->lost > 0 && peer->exited()) || peer->failed(); }));
    sampler.timer.cancel();
    CHECK(peer->wait() == 0);
    CHECK(sender->pauses >= 1);
    CHECK(sender->resumes == sender->pauses);  // strictly alternating, and the buffer drained
    CHECK(sender->min_buffered_at_pause > limits.high);
    CHECK(sender->max_buffered_at_resume <= limits.low);
    CHECK(sender->max_buffered <= limits.high + chunk);
    CHECK(!grew_while_paused);
    CHECK(sender->received == sink_reply(sender->sent_hash, total));
    CHECK(!sender->lost_error);
}

TEST_CASE("interop: the transfers both ways over IPv6 (::1), evloop reading through a BufferedProtocol") {
    if (!have_ipv6_loopback()) {
        MESSAGE("skipped: ::1 is unavailable on this host");
        return;
    }
    evloop_client_to_asyncio_server("::1", 32 * kMiB);
    asyncio_client_to_evloop_server("::1", 32 * kMiB, /*buffered=*/true);
}

TEST_SUITE_END();
