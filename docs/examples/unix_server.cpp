// docs/examples/unix_server.cpp — an echo server on a Unix stream socket:
// the TCP echo server with create_unix_server in place of create_server.
//
// The protocol does not change: transports hide which kind of socket they
// carry. What differs is the address: a path in the filesystem. The server
// refuses a path that exists and is not a socket; when it closes it unlinks
// the path, if the socket there is still its own (UnixServerOptions'
// cleanup_socket, on by default, as in asyncio 3.13).
//
//   unix_server [PATH]       serve at PATH (default /tmp/evloop-example.sock);
//                            try it with `nc -U /tmp/evloop-example.sock`;
//                            type "/shutdown" to stop it and remove the path
//   unix_server --selftest   serve at a path of its own, echo to a client in
//                            the same loop, close, check the path is gone
// Read next: net/server.cpp (how accepting works).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "evloop.hpp"

namespace {

class EchoProtocol final : public evloop::Protocol {
public:
    explicit EchoProtocol(evloop::EventLoop& loop) : loop_(loop) {}
    void connection_made(evloop::Transport& transport) override {
        transport_ = &transport;
        std::printf("client connected\n");
    }
    void data_received(std::string_view data) override {
        // So that a manual run can end cleanly (and remove its path).
        if (data.starts_with("/shutdown")) {
            loop_.stop();
            return;
        }
        (void)transport_->write(data);
    }
    void connection_lost(std::error_code) override { std::printf("client gone\n"); }

private:
    evloop::EventLoop& loop_;
    evloop::Transport* transport_ = nullptr;  // valid until connection_lost returns
};

bool path_exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
}

// ---- the self-test: a client of our own, in the same loop ------------------

class Collector final : public evloop::Protocol {
public:
    explicit Collector(evloop::EventLoop& loop) : arrived(loop) {}
    void data_received(std::string_view data) override {
        received.append(data);
        if (received.size() >= wanted && !arrived.done()) (void)arrived.set_result();
    }
    void connection_lost(std::error_code error) override {
        if (received.size() < wanted && !arrived.done())
            (void)arrived.set_error(error ? error : make_error_code(std::errc::connection_aborted));
    }

    std::string received;
    std::size_t wanted = 0;
    evloop::Future<void> arrived;
};

evloop::Task<void> selftest(evloop::EventLoop& loop, std::string path) {
    auto server = co_await loop.create_unix_server([&loop] { return std::make_shared<EchoProtocol>(loop); }, path);
    if (!server) co_await evloop::fail(server.error());
    std::printf("selftest: serving at %s\n", path.c_str());

    auto client = co_await loop.create_unix_connection([&loop] { return std::make_shared<Collector>(loop); }, path);
    if (!client) co_await evloop::fail(client.error());
    Collector& collector = client->protocol_as<Collector>();
    const std::string message = "over a unix socket\n";
    collector.wanted = message.size();
    (void)client->transport->write(message);
    if (auto got = co_await collector.arrived; !got) co_await evloop::fail(got.error());
    std::printf("selftest: echoed %s", collector.received.c_str());
    if (collector.received != message) co_await evloop::fail(evloop::errc::invalid_state);

    client->transport->close();
    (*server)->close();
    if (auto closed = co_await (*server)->wait_closed(); !closed) co_await evloop::fail(closed.error());
    if (path_exists(path)) {
        std::printf("selftest: %s is still there after close()\n", path.c_str());
        co_await evloop::fail(evloop::errc::invalid_state);
    }
    std::printf("selftest: %s removed; passed\n", path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    evloop::EventLoop loop;
    if (argc > 1 && std::strcmp(argv[1], "--selftest") == 0) {
        // A path of our own, so parallel CI jobs do not collide.
        std::string path = "/tmp/evloop-selftest-" + std::to_string(::getpid()) + ".sock";
        // wait_for: a broken build fails in two seconds instead of hanging CI.
        auto result = loop.run_until_complete(evloop::wait_for(selftest(loop, path), 2.0));
        if (!result) std::fprintf(stderr, "selftest FAILED: %s\n", result.error().message().c_str());
        (void)loop.close();
        ::unlink(path.c_str());  // in case the test failed before the server closed
        return result ? 0 : 1;
    }

    const std::string path = argc > 1 ? argv[1] : "/tmp/evloop-example.sock";
    auto server = loop.run_until_complete(
        loop.create_unix_server([&loop] { return std::make_shared<EchoProtocol>(loop); }, path));
    if (!server) {
        std::fprintf(stderr, "cannot listen at %s: %s\n", path.c_str(), server.error().message().c_str());
        return 1;
    }
    std::printf("serving at %s (send \"/shutdown\" to stop)\n", path.c_str());
    (void)loop.run_forever();
    (*server)->close();          // stops listening and unlinks the path
    (*server)->close_clients();  // or wait_closed() would wait for them
    (void)loop.run_until_complete((*server)->wait_closed());
    std::printf("closed; %s %s\n", path.c_str(), path_exists(path) ? "is still there" : "removed");
    return 0;
}
