// docs/examples/echo_server.cpp — a TCP echo server in the Protocol style,
// asyncio's "TCP Echo Server" example in C++.
//
// The loop calls the protocol: connection_made once, data_received for
// every chunk read, eof_received when the peer shuts its writing side,
// connection_lost once at the end. Echoing is one transport.write() per
// chunk: the transport sends at once, and buffers only what the kernel did
// not take.
//
//   echo_server [PORT]      serve on every interface (default port 8888);
//                           try it with `nc localhost 8888`, stop with Ctrl-C
//   echo_server --selftest  serve on an ephemeral port, echo three messages
//                           to a client in the same loop, check, exit 0
// Read next: docs/examples/echo_client.cpp (the coroutine style).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <variant>

#include "evloop.hpp"

namespace {

class EchoProtocol final : public evloop::Protocol {
public:
    void connection_made(evloop::Transport& transport) override {
        transport_ = &transport;
        evloop::ExtraInfo peer = transport.get_extra_info("peername");
        if (auto* address = std::get_if<evloop::SocketAddress>(&peer)) peer_ = address->to_string();
        std::printf("connection from %s\n", peer_.c_str());
    }
    void data_received(std::string_view data) override { (void)transport_->write(data); }
    // The client will send no more: false lets the transport close once
    // what is buffered has been sent (asyncio's default).
    bool eof_received() override { return false; }
    void connection_lost(std::error_code error) override {
        std::printf("%s: connection closed%s%s\n", peer_.c_str(), error ? ": " : "",
                    error ? error.message().c_str() : "");
    }

private:
    evloop::Transport* transport_ = nullptr;  // valid until connection_lost returns
    std::string peer_ = "?";
};

// ---- the self-test: a client of our own, in the same loop ------------------

// Collects what comes back, and completes `arrived` once `wanted` bytes did.
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

evloop::Task<void> selftest(evloop::EventLoop& loop) {
    auto server = co_await loop.create_server([] { return std::make_shared<EchoProtocol>(); }, "127.0.0.1", 0);
    if (!server) co_await evloop::fail(server.error());
    const int port = (*server)->addresses().at(0).port();
    std::printf("selftest: serving on 127.0.0.1:%d\n", port);

    auto client = co_await loop.create_connection([&loop] { return std::make_shared<Collector>(loop); },
                                                  "127.0.0.1", port);
    if (!client) co_await evloop::fail(client.error());
    Collector& collector = client->protocol_as<Collector>();
    std::string sent;
    for (std::string_view message : {"hello\n", "echo\n", "world\n"}) {
        sent += message;
        collector.wanted = sent.size();
        (void)client->transport->write(message);
        if (auto got = co_await collector.arrived; !got) co_await evloop::fail(got.error());
        collector.arrived = evloop::Future<void>(loop);  // a fresh one for the next message
        std::printf("selftest: echoed %.*s", static_cast<int>(message.size()), message.data());
    }
    if (collector.received != sent) co_await evloop::fail(evloop::errc::invalid_state);

    client->transport->close();
    (*server)->close();
    // Done once the server is closed and its side of the connection is gone.
    if (auto closed = co_await (*server)->wait_closed(); !closed) co_await evloop::fail(closed.error());
    std::printf("selftest: passed\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line at once, also into a pipe
    evloop::EventLoop loop;
    if (argc > 1 && std::strcmp(argv[1], "--selftest") == 0) {
        // wait_for: a broken build fails in two seconds instead of hanging CI.
        auto result = loop.run_until_complete(evloop::wait_for(selftest(loop), 2.0));
        if (!result) std::fprintf(stderr, "selftest FAILED: %s\n", result.error().message().c_str());
        (void)loop.close();
        return result ? 0 : 1;
    }

    const int port = argc > 1 ? std::atoi(argv[1]) : 8888;
    auto server = loop.run_until_complete(
        loop.create_server([] { return std::make_shared<EchoProtocol>(); }, "", port));
    if (!server) {
        std::fprintf(stderr, "cannot listen on port %d: %s\n", port, server.error().message().c_str());
        return 1;
    }
    for (const evloop::SocketAddress& address : (*server)->addresses())
        std::printf("serving on %s\n", address.to_string().c_str());
    (void)loop.run_forever();  // until the process is interrupted
    return 0;
}
