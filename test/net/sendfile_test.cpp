// test/net/sendfile_test.cpp — loop.sock_sendfile() and loop.sendfile()
// (net/sendfile.cpp) with real temporary files in /tmp, real loopback TCP
// pairs, SocketTransport, and CPython's asyncio as the receiving peer
// (test/net/peers/asyncio_peer.py's `server sink-sha256`, unchanged) (CONTRACT §22).
// Python-only parts: 334's "file should be opened in binary mode" and the
// TypeErrors of non-int count/offset (C++ types; the closest analogue, a
// write-only fd, is tested); 326's "sendfile is not supported for transport"
// (a datagram transport is not a Transport: it does not compile); 332's
// RuntimeError from the stand-in protocol (ours passes data on instead).
// The asyncio cases run from the repo root and are skipped without /usr/bin/python3.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/task_helpers.hpp"
#include "net/connection.hpp"
#include "net/sock.hpp"
#include "net/socket_transport.hpp"
#include "net/stream.hpp"
#include "test/net/sha256.hpp"
#include "test/net/stream_pair.hpp"

extern char** environ;

using namespace evloop;
using evloop::test::Recorder;
using evloop::test::run_until;

namespace {

constexpr std::size_t kMiB = 1024 * 1024;

std::string make_data(std::size_t n) {
    std::string data(n, '\0');
    std::uint32_t x = 0x2545F491;
    for (auto& c : data) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 24);
    }
    return data;
}

/// A real file under /tmp holding `content`, position 0; unlinked at the end.
struct TempFile {
    explicit TempFile(std::string_view content, int flags = O_RDWR) {
        char name[] = "/tmp/evloop-sendfile-XXXXXX";
        int fd = ::mkostemp(name, O_CLOEXEC);
        REQUIRE(fd >= 0);
        path = name;
        for (std::size_t done = 0; done < content.size();) {
            ssize_t n = ::write(fd, content.data() + done, content.size() - done);
            REQUIRE(n > 0);
            done += static_cast<std::size_t>(n);
        }
        ::close(fd);
        file = Fd(::open(name, flags | O_CLOEXEC));
        REQUIRE(file);
    }
    ~TempFile() { ::unlink(path.c_str()); }
    std::int64_t position() const { return ::lseek(file.get(), 0, SEEK_CUR); }
    int fd() const { return file.get(); }
    std::string path;
    Fd file;
};

/// Reads `fd` from inside the loop (a reader), so a sender waiting for
/// writability is never stuck behind a test that only reads between iterations.
struct PeerSink {
    PeerSink(EventLoop& loop, int fd) : loop(loop), fd(fd) {
        REQUIRE(!loop.add_reader(fd, [this] {
            if (!test::drain(this->fd, got)) {
                eof = true;
                (void)this->loop.remove_reader(this->fd);
            }
        }));
    }
    ~PeerSink() { (void)loop.remove_reader(fd); }
    EventLoop& loop;
    int fd;
    std::string got;
    bool eof = false;
};

/// Reads a non-blocking fd until EOF, without the loop.
std::string read_to_eof(int fd) {
    std::string got;
    for (int i = 0; i < 1000; ++i) {
        if (!test::drain(fd, got)) break;
        pollfd p{fd, POLLIN, 0};
        ::poll(&p, 1, 10);
    }
    return got;
}

/// Makes the peer reset the connection: SO_LINGER 0, then close.
void reset(Fd& peer) {
    linger off{1, 0};
    REQUIRE(::setsockopt(peer.get(), SOL_SOCKET, SO_LINGER, &off, sizeof off) == 0);
    peer.reset();
}

bool is_reset(std::error_code error) {
    return error == std::error_code(ECONNRESET, std::system_category()) ||
           error == std::error_code(EPIPE, std::system_category());
}

/// A pipe holding `content` (write end closed): a non-regular file.
Fd pipe_with(std::string_view content) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    Fd reader(fds[0]), writer(fds[1]);
    REQUIRE(::fcntl(writer.get(), F_SETPIPE_SZ, 1 << 20) >= static_cast<int>(content.size()));
    REQUIRE(::write(writer.get(), content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    return reader;
}

struct Fixture {
    EventLoop loop;
    test::TcpPair pair = test::tcp_pair();
    std::shared_ptr<Recorder> protocol = std::make_shared<Recorder>();
    std::shared_ptr<SocketTransport> transport;

    Fixture() {
        transport = SocketTransport::make(loop, std::move(pair.ours), protocol);
        REQUIRE(run_until(loop, [&] { return protocol->transport != nullptr; }));
    }
};

/// A transport with no socket of its own (as TLS will be): it forwards to a
/// SocketTransport but answers native_sendfile_transport() with nullptr.
class NoSocketTransport final : public Transport {
public:
    explicit NoSocketTransport(std::shared_ptr<SocketTransport> inner) : inner_(std::move(inner)) {}
    void close() override { inner_->close(); }
    bool is_closing() const noexcept override { return inner_->is_closing(); }
    ExtraInfo get_extra_info(std::string_view name) const override { return inner_->get_extra_info(name); }
    std::error_code set_protocol(std::shared_ptr<BaseProtocol> p) override { return inner_->set_protocol(std::move(p)); }
    std::shared_ptr<BaseProtocol> get_protocol() const override { return inner_->get_protocol(); }
    bool is_reading() const noexcept override { return inner_->is_reading(); }
    void pause_reading() override { inner_->pause_reading(); }
    void resume_reading() override { inner_->resume_reading(); }
    std::error_code write(std::string_view data) override { return inner_->write(data); }
    std::error_code writelines(std::span<const std::string_view> pieces) override { return inner_->writelines(pieces); }
    bool can_write_eof() const noexcept override { return true; }
    void write_eof() override { inner_->write_eof(); }
    void abort() override { inner_->abort(); }
    std::size_t get_write_buffer_size() const noexcept override { return inner_->get_write_buffer_size(); }
    WriteBufferLimits get_write_buffer_limits() const noexcept override { return inner_->get_write_buffer_limits(); }
    std::error_code set_write_buffer_limits(std::optional<std::size_t> high, std::optional<std::size_t> low) override {
        return inner_->set_write_buffer_limits(high, low);
    }

private:
    std::shared_ptr<SocketTransport> inner_;
};

}  // namespace

// ---- sock_sendfile ------------------------------------------------------------------

TEST_CASE("sock_sendfile refuses bad arguments (CONTRACT 334, 174)") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    TempFile file("abc");
    Fd udp(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    CHECK_REFUSED(errc::invalid_argument, (void)loop.sock_sendfile(udp.get(), file.fd()));  // only SOCK_STREAM
    CHECK_REFUSED(errc::invalid_argument, (void)loop.sock_sendfile(pair.ours.get(), file.fd(), 0, 0));  // count > 0
    CHECK_REFUSED(errc::invalid_argument, (void)loop.sock_sendfile(pair.ours.get(), file.fd(), -1));
    TempFile write_only("abc", O_WRONLY);
    CHECK_REFUSED(errc::invalid_argument, (void)loop.sock_sendfile(pair.ours.get(), write_only.fd()));
    CHECK_REFUSED(errc::invalid_fd, (void)loop.sock_sendfile(pair.ours.get(), -1));
    REQUIRE(!set_nonblocking(pair.peer.get(), false));
    CHECK_REFUSED(errc::socket_blocking, (void)loop.sock_sendfile(pair.peer.get(), file.fd()));
    // A closed file is an OS error in the future, as a closed socket is.
    auto closed = loop.sock_sendfile(pair.ours.get(), 1000);
    CHECK(closed.error() == std::error_code(EBADF, std::system_category()));
    auto protocol = std::make_shared<Recorder>();
    int owned = pair.ours.get();
    auto transport = SocketTransport::make(loop, std::move(pair.ours), protocol);
    CHECK_REFUSED(errc::fd_used_by_transport, (void)loop.sock_sendfile(owned, file.fd()));
    transport->abort();
    REQUIRE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST_CASE("sock_sendfile sends the file, returns the count, leaves the position after it (CONTRACT 330)") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    std::string data = make_data(3 * kMiB + 123);
    TempFile file(data);
    PeerSink sink(loop, pair.peer.get());
    SUBCASE("the whole file") {
        auto sent = loop.run_until_complete(loop.sock_sendfile(pair.ours.get(), file.fd()));
        REQUIRE(sent);
        CHECK(*sent == data.size());
        CHECK(file.position() == static_cast<std::int64_t>(data.size()));
        REQUIRE(run_until(loop, [&] { return sink.got.size() >= data.size(); }));
        CHECK(sink.got == data);
    }
    SUBCASE("offset and count") {
        auto sent = loop.run_until_complete(loop.sock_sendfile(pair.ours.get(), file.fd(), 1000, 100000));
        REQUIRE(sent);
        CHECK(*sent == 100000);
        CHECK(file.position() == 101000);
        REQUIRE(run_until(loop, [&] { return sink.got.size() >= 100000; }));
        CHECK(sink.got == data.substr(1000, 100000));
    }
    SUBCASE("a count past the end sends what there is") {
        auto sent = loop.run_until_complete(loop.sock_sendfile(pair.ours.get(), file.fd(), data.size() - 10, 100));
        REQUIRE(sent);
        CHECK(*sent == 10);
        CHECK(file.position() == static_cast<std::int64_t>(data.size()));
    }
}

TEST_CASE("sock_sendfile of an empty file returns 0 and leaves the position at 0 (CONTRACT 335)") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    TempFile file("");
    auto sent = loop.run_until_complete(loop.sock_sendfile(pair.ours.get(), file.fd()));
    REQUIRE(sent);
    CHECK(*sent == 0);
    CHECK(file.position() == 0);
}

namespace {
Task<std::size_t> send_mixed(EventLoop& loop, int sock, int file) {
    if (Result<void> r = co_await loop.sock_sendall(sock, "head:"); !r) co_return r.error();
    Result<std::size_t> n = co_await loop.sock_sendfile(sock, file);
    if (!n) co_return n.error();
    if (Result<void> r = co_await loop.sock_sendall(sock, ":tail"); !r) co_return r.error();
    co_return *n;
}
}  // namespace

TEST_CASE("sock_sendfile mixed with sock_sendall keeps the byte order (CONTRACT 336)") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    std::string data = make_data(2 * kMiB);
    TempFile file(data);
    PeerSink sink(loop, pair.peer.get());
    auto sent = loop.run_until_complete(send_mixed(loop, pair.ours.get(), file.fd()));
    REQUIRE(sent);
    CHECK(*sent == data.size());
    REQUIRE(run_until(loop, [&] { return sink.got.size() >= data.size() + 10; }));
    CHECK(sink.got == "head:" + data + ":tail");
}

TEST_CASE("a non-regular file falls back to read+send in 256 KiB blocks, or is not supported (CONTRACT 337, 338, 331)") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    std::string data = make_data(600 * 1024 + 5);  // three blocks, the last one short
    PeerSink sink(loop, pair.peer.get());
    SUBCASE("fallback on: every byte, across block boundaries") {
        Fd pipe = pipe_with(data);
        auto sent = loop.run_until_complete(loop.sock_sendfile(pair.ours.get(), pipe.get()));
        REQUIRE(sent);
        CHECK(*sent == data.size());
        REQUIRE(run_until(loop, [&] { return sink.got.size() >= data.size(); }));
        CHECK(sink.got == data);
    }
    SUBCASE("fallback on, with a count that ends inside the second block") {
        Fd pipe = pipe_with(data);
        auto sent = loop.run_until_complete(loop.sock_sendfile(pair.ours.get(), pipe.get(), 0, 300 * 1024));
        REQUIRE(sent);
        CHECK(*sent == 300 * 1024);
        REQUIRE(run_until(loop, [&] { return sink.got.size() >= 300 * 1024; }));
        CHECK(sink.got == data.substr(0, 300 * 1024));
    }
    SUBCASE("fallback off: sendfile_not_supported, nothing sent") {
        Fd pipe = pipe_with(data);
        auto sent = loop.run_until_complete(loop.sock_sendfile(pair.ours.get(), pipe.get(), 0, std::nullopt, false));
        CHECK(sent.error() == errc::sendfile_not_supported);
    }
    SUBCASE("an offset into a pipe cannot be honoured: ESPIPE") {
        Fd pipe = pipe_with(data);
        auto sent = loop.run_until_complete(loop.sock_sendfile(pair.ours.get(), pipe.get(), 10));
        CHECK(sent.error() == std::error_code(ESPIPE, std::system_category()));
    }
}

TEST_CASE("cancelling a waiting sock_sendfile removes the writer; the position says what the kernel took (CONTRACT 339, 330)") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    std::string data = make_data(32 * kMiB);
    TempFile file(data);
    int sock = pair.ours.get();
    auto sending = loop.sock_sendfile(sock, file.fd());
    // The peer reads nothing: the socket's buffers fill and sendfile waits.
    REQUIRE(run_until(loop, [&] { return loop.has_writer(sock); }));
    CHECK(sending.cancel());
    REQUIRE(run_until(loop, [&] { return sending.done(); }));
    CHECK(sending.cancelled());
    CHECK(!loop.has_writer(sock));
    std::int64_t position = file.position();
    CHECK(position > 0);
    CHECK(position < static_cast<std::int64_t>(data.size()));
    ::shutdown(sock, SHUT_WR);
    std::string got = read_to_eof(pair.peer.get());
    CHECK(static_cast<std::int64_t>(got.size()) == position);
    CHECK(got == data.substr(0, got.size()));
}

TEST_CASE("the peer resetting mid-sock_sendfile is the error; the position tells how far it got (CONTRACT 331, 333)") {
    EventLoop loop;
    auto pair = test::tcp_pair();
    std::string data = make_data(32 * kMiB);
    TempFile file(data);
    auto sending = loop.sock_sendfile(pair.ours.get(), file.fd());
    REQUIRE(run_until(loop, [&] { return loop.has_writer(pair.ours.get()); }));
    std::string some;
    test::drain(pair.peer.get(), some);
    reset(pair.peer);
    REQUIRE(run_until(loop, [&] { return sending.done(); }));
    CHECK_MESSAGE(is_reset(sending.error()), sending.error().message());
    CHECK(!loop.has_writer(pair.ours.get()));
    CHECK(file.position() > 0);
    CHECK(file.position() < static_cast<std::int64_t>(data.size()));
}

// ---- sendfile over a transport ----------------------------------------------------------

TEST_CASE("sendfile refuses a closing transport, and a socketless one with fallback off (CONTRACT 326)") {
    Fixture f;
    TempFile file("abc");
    NoSocketTransport no_socket(f.transport);
    CHECK_REFUSED(errc::sendfile_not_supported, (void)f.loop.sendfile(no_socket, file.fd(), 0, std::nullopt, false));
    CHECK_REFUSED(errc::invalid_argument, (void)f.loop.sendfile(*f.transport, file.fd(), 0, 0));
    f.transport->close();
    CHECK_REFUSED(errc::transport_closing, (void)f.loop.sendfile(*f.transport, file.fd()));
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
}

TEST_CASE("native sendfile waits for the buffer to drain, holds writes and reading, keeps order (CONTRACT 327, 328, 329)") {
    Fixture f;
    // The peer reads nothing yet: the transport's buffer keeps some "pre" bytes.
    std::string pre;
    for (int i = 0; f.transport->get_write_buffer_size() == 0; ++i) {
        std::string chunk = "pre" + std::to_string(i) + std::string(64 * 1024, '.');
        REQUIRE(!f.transport->write(chunk));
        pre += chunk;
    }
    std::string data = make_data(8 * kMiB);
    TempFile file(data);
    auto sending = f.loop.sendfile(*f.transport, file.fd());
    REQUIRE(run_until(f.loop, [&] { return !f.transport->is_reading(); }));
    CHECK_REFUSED(errc::sendfile_in_progress, (void)f.transport->write("x"));
    CHECK_REFUSED(errc::sendfile_in_progress, (void)f.transport->writelines({"a", "b"}));
    PeerSink sink(f.loop, f.pair.peer.get());
    auto sent = f.loop.run_until_complete(sending);
    REQUIRE(sent);
    CHECK(*sent == data.size());
    CHECK(file.position() == static_cast<std::int64_t>(data.size()));
    CHECK(f.transport->is_reading());  // restored
    CHECK(!f.transport->write(":post"));
    REQUIRE(run_until(f.loop, [&] { return sink.got.size() >= pre.size() + data.size() + 5; }));
    CHECK(sink.got == pre + data + ":post");
    f.transport->close();
    REQUIRE(run_until(f.loop, [&] { return f.protocol->lost == 1; }));
}

TEST_CASE("sendfile with offset and count returns the count; the position follows (CONTRACT 330)") {
    Fixture f;
    std::string data = make_data(kMiB);
    TempFile file(data);
    PeerSink sink(f.loop, f.pair.peer.get());
    auto sent = f.loop.run_until_complete(f.loop.sendfile(*f.transport, file.fd(), 10, 5000));
    REQUIRE(sent);
    CHECK(*sent == 5000);
    CHECK(file.position() == 5010);
    REQUIRE(run_until(f.loop, [&] { return sink.got.size() >= 5000; }));
    CHECK(sink.got == data.substr(10, 5000));
}

TEST_CASE("the peer resetting mid-sendfile: an error, the transport closes, the position tells how far (CONTRACT 333, 330)") {
    Fixture f;
    std::string data = make_data(32 * kMiB);
    TempFile file(data);
    bool fallback = false;
    SUBCASE("native") {}
    SUBCASE("the transport fallback") { fallback = true; }
    NoSocketTransport no_socket(f.transport);
    Transport& through = fallback ? static_cast<Transport&>(no_socket) : *f.transport;
    auto sending = f.loop.sendfile(through, file.fd());
    REQUIRE(run_until(f.loop, [&] { return f.transport->get_write_buffer_size() > 0 || f.loop.has_writer(f.transport->fd()); }));
    reset(f.pair.peer);
    REQUIRE(run_until(f.loop, [&] { return sending.done() && f.protocol->lost == 1; }));
    CHECK_MESSAGE(is_reset(sending.error()), sending.error().message());
    CHECK(f.transport->is_closing());
    CHECK(is_reset(f.protocol->lost_error));
    CHECK(file.position() > 0);
    CHECK(file.position() < static_cast<std::int64_t>(data.size()));
}

TEST_CASE("the transport fallback writes 16 KiB blocks under flow control the user's protocol never sees (CONTRACT 332, 330)") {
    Fixture f;
    NoSocketTransport no_socket(f.transport);
    std::string data = make_data(32 * kMiB);  // more than the kernel's buffers hold
    TempFile file(data);
    auto sending = f.loop.sendfile(no_socket, file.fd(), 0, std::nullopt, true);
    // The peer reads nothing: the buffer passes the high mark and the fallback waits.
    REQUIRE(run_until(f.loop, [&] { return f.transport->get_write_buffer_size() > 64 * 1024; }));
    CHECK(f.transport->get_protocol() != f.protocol);  // the stand-in
    CHECK(!f.transport->is_reading());
    CHECK(f.protocol->count("pause") == 0);
    PeerSink sink(f.loop, f.pair.peer.get());
    auto sent = f.loop.run_until_complete(sending);
    REQUIRE(sent);
    CHECK(*sent == data.size());
    CHECK(file.position() == static_cast<std::int64_t>(data.size()));
    CHECK(f.transport->get_protocol() == f.protocol);  // restored
    CHECK(f.transport->is_reading());
    REQUIRE(run_until(f.loop, [&] { return sink.got.size() >= data.size() && f.transport->get_write_buffer_size() == 0; }));
    CHECK(sink.got == data);
    // Levelled: a pause handed on at the end is matched by its resume.
    CHECK(f.protocol->count("pause") == f.protocol->count("resume"));
    CHECK(f.protocol->count("pause") <= 1);
}

// ---- CPython's asyncio as the receiver --------------------------------------------------

namespace {

constexpr const char* kPython = "/usr/bin/python3";
constexpr const char* kPeerScript = "test/net/peers/asyncio_peer.py";

bool python_missing() {
    static const bool missing = [] {
        bool gone = ::access(kPython, X_OK) != 0 || ::access(kPeerScript, R_OK) != 0;
        if (gone)
            std::fprintf(stderr, "sendfile_test: /usr/bin/python3 or %s (run from the repo root) is missing: "
                                 "the asyncio cases are skipped\n", kPeerScript);
        return gone;
    }();
    return missing;
}

/// `asyncio_peer.py server sink-sha256` on 127.0.0.1: reads to EOF, replies
/// "<sha256 hex> <count>\n", exits 0. Killed and reaped if still running.
class SinkPeer {
public:
    SinkPeer() {
        char dir[] = "/tmp/evloop-sendfile-peer-XXXXXX";
        REQUIRE(::mkdtemp(dir) != nullptr);
        dir_ = dir;
        std::string port_file = dir_ + "/port";
        std::vector<std::string> args = {kPython, "-I", kPeerScript, "server", "sink-sha256", "0",
                                         "--host", "127.0.0.1", "--port-file", port_file};
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
        REQUIRE(error == 0);
        for (int i = 0; i < 1000 && port_ == 0 && !exited(); ++i) {
            std::ifstream in(port_file);  // renamed into place: whole when it exists
            if (!(in >> port_)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        REQUIRE_MESSAGE(port_ > 0, "the asyncio peer did not start");
    }
    ~SinkPeer() {
        if (!reaped_) {
            ::kill(pid_, SIGKILL);
            (void)retry_eintr([&] { return ::waitpid(pid_, &status_, 0); });
        }
        ::unlink((dir_ + "/port").c_str());
        ::rmdir(dir_.c_str());
    }
    int port() const { return port_; }
    bool exited() {
        if (!reaped_ && ::waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
        return reaped_;
    }
    /// The exit status after up to 20 s (then killed: -1).
    int wait() {
        for (int i = 0; i < 2000 && !exited(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return exited() && WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
    }

private:
    pid_t pid_ = -1;
    int status_ = 0;
    bool reaped_ = false;
    int port_ = 0;
    std::string dir_;
};

struct BigFile {
    BigFile() : data(make_data(32 * kMiB)), file(data) {
        test::Sha256 hash;
        hash.update(data);
        reply = hash.hex_digest() + " " + std::to_string(data.size()) + "\n";
    }
    std::string data;
    TempFile file;
    std::string reply;  // what the sink answers for all of it
};

}  // namespace

TEST_CASE("asyncio receives 32 MiB sent with loop.sendfile over a transport, checksum verified (CONTRACT 327, 330)" *
          doctest::skip(python_missing())) {
    EventLoop loop;
    BigFile big;
    SinkPeer peer;
    auto protocol = std::make_shared<Recorder>();
    auto connection = loop.run_until_complete(
        wait_for(loop.create_connection([protocol] { return protocol; }, "127.0.0.1", peer.port()), 10.0));
    REQUIRE(connection);
    auto sent = loop.run_until_complete(wait_for(loop.sendfile(*connection->transport, big.file.fd()), 30.0));
    REQUIRE_MESSAGE(sent, sent.error().message());
    CHECK(*sent == big.data.size());
    connection->transport->write_eof();
    REQUIRE(run_until(loop, [&] { return protocol->lost == 1; }, 30));
    CHECK(protocol->data == big.reply);
    CHECK(peer.wait() == 0);
}

TEST_CASE("asyncio receives 32 MiB sent with loop.sock_sendfile, checksum verified (CONTRACT 330)" *
          doctest::skip(python_missing())) {
    EventLoop loop;
    BigFile big;
    SinkPeer peer;
    Fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(peer.port()));
    REQUIRE(::connect(sock.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(!set_nonblocking(sock.get()));
    auto sent = loop.run_until_complete(wait_for(loop.sock_sendfile(sock.get(), big.file.fd()), 30.0));
    REQUIRE_MESSAGE(sent, sent.error().message());
    CHECK(*sent == big.data.size());
    CHECK(big.file.position() == static_cast<std::int64_t>(big.data.size()));
    ::shutdown(sock.get(), SHUT_WR);
    std::string reply;
    for (int i = 0; i < 3000 && test::drain(sock.get(), reply); ++i) {
        pollfd p{sock.get(), POLLIN, 0};
        ::poll(&p, 1, 10);
    }
    CHECK(reply == big.reply);
    CHECK(peer.wait() == 0);
}
