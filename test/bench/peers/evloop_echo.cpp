// test/bench/peers/evloop_echo.cpp — evloop's echo server for the side-by-side
// suite, written as a user would: create_server with a protocol factory.
//
//  - Protocol (default): data_received(data) → transport.write(data), as
//    py_echo.py does on asyncio;
//  - --buffered: a BufferedProtocol whose get_buffer hands every connection
//    the same 256 KiB buffer (the loop is single-threaded and buffer_updated
//    writes the bytes before the next read: write() sends them or copies what
//    the socket refuses), so an idle connection owns no buffer.
//
//   evloop_echo --port 0 [--buffered]   prints "port N", echoes until SIGTERM
// Built by test/bench/bench_suite.py against build/<config>/libevloop.a.
// Layer: test. Read first: net/socket_transport.cpp (the read and write paths).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>

#include "evloop.hpp"

namespace {

class EchoProtocol final : public evloop::Protocol {
public:
    void connection_made(evloop::Transport& transport) override { transport_ = &transport; }
    void data_received(std::string_view data) override { (void)transport_->write(data); }

private:
    evloop::Transport* transport_ = nullptr;
};

char g_shared_buffer[256 * 1024];

class EchoBufferedProtocol final : public evloop::BufferedProtocol {
public:
    void connection_made(evloop::Transport& transport) override { transport_ = &transport; }
    std::span<char> get_buffer(std::size_t) override { return g_shared_buffer; }
    void buffer_updated(std::size_t nbytes) override { (void)transport_->write({g_shared_buffer, nbytes}); }

private:
    evloop::Transport* transport_ = nullptr;
};

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: evloop_echo --port N [--buffered]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    int port = -1;
    bool buffered = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--port" && i + 1 < argc)
            port = std::atoi(argv[++i]);
        else if (arg == "--buffered")
            buffered = true;
        else
            usage();
    }
    if (port < 0 || port > 65535) usage();

    evloop::EventLoop loop;
    evloop::ProtocolFactory factory;
    if (buffered)
        factory = [] { return std::make_shared<EchoBufferedProtocol>(); };
    else
        factory = [] { return std::make_shared<EchoProtocol>(); };
    evloop::ServerOptions options;
    options.backlog = 1024;  // PEER_BACKLOG in peer_common.h
    auto server = loop.run_until_complete(loop.create_server(std::move(factory), "127.0.0.1", port, options));
    if (!server) {
        std::fprintf(stderr, "evloop_echo: create_server: %s\n", server.error().message().c_str());
        return 2;
    }
    std::printf("port %d\n", (*server)->addresses().at(0).port());
    std::fflush(stdout);
    (void)loop.run_forever();
    return 0;
}
