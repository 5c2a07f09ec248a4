// test/bench/peers/asio_echo.cpp — the standalone Asio echo server, the
// shape of Asio's own async echo example: a session object per connection,
// owned by the shared_ptr its pending handler holds, with one buffer of its
// own; async_read_some into it, async_write of what came, read again.
//
// One thread runs the io_context (concurrency hint 1: no locking inside).
// The buffer is 64 KiB as the floor's (epoll_echo.c); it is part of every
// connection, so it also shows in the idle-memory figure (only the pages
// the first byte touched count: RSS).
//
//   asio_echo --port 0       prints "port N", echoes until SIGTERM
// Layer: test (a peer of test/bench/bench_suite.py). Read next: py_echo.py.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include <asio.hpp>

using asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
public:
    explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

    void start() {
        socket_.set_option(tcp::no_delay(true));
        read();
    }

private:
    void read() {
        socket_.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](std::error_code ec, std::size_t n) {
            if (!ec) self->write(n);
        });
    }

    void write(std::size_t n) {
        asio::async_write(socket_, asio::buffer(buffer_, n),
                          [self = shared_from_this()](std::error_code ec, std::size_t) {
                              if (!ec) self->read();
                          });
    }

    tcp::socket socket_;
    std::array<char, 64 * 1024> buffer_;
};

void accept(tcp::acceptor& acceptor) {
    acceptor.async_accept([&acceptor](std::error_code ec, tcp::socket socket) {
        if (!ec) std::make_shared<Session>(std::move(socket))->start();
        accept(acceptor);
    });
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3 || std::strcmp(argv[1], "--port") != 0) {
        std::fprintf(stderr, "usage: asio_echo --port N (0: any free port)\n");
        return 2;
    }
    asio::io_context io(1);
    tcp::acceptor acceptor(io);
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(std::atoi(argv[2])));
    acceptor.open(endpoint.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(1024);  // PEER_BACKLOG in peer_common.h
    std::printf("port %d\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    accept(acceptor);
    io.run();
    return 0;
}
