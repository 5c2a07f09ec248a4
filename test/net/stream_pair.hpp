// test/net/stream_pair.hpp — connected socket pairs and a recording protocol
// for the transport tests: one end wrapped in a SocketTransport, the other a
// plain blocking-capable socket the test drives with send/recv directly.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "net/socket_transport.hpp"
#include "test/support.hpp"

namespace evloop::test {

/// A TCP connection over 127.0.0.1: `ours` (non-blocking, for the
/// transport) and `peer` (non-blocking too; the tests poll it).
struct TcpPair {
    Fd ours;
    Fd peer;
};

inline TcpPair tcp_pair() {
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), size) == 0);
    REQUIRE(::listen(listener.get(), 1) == 0);
    REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &size) == 0);
    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&address), size) == 0);
    Fd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    REQUIRE(server);
    REQUIRE(!set_nonblocking(client.get()));
    return {std::move(server), std::move(client)};
}

/// A Unix socketpair: ours, peer (both non-blocking).
inline TcpPair unix_pair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0);
    return {Fd(fds[0]), Fd(fds[1])};
}

/// Reads what is available on a non-blocking fd (appends; returns false at EOF).
inline bool drain(int fd, std::string& into) {
    char buffer[65536];
    for (;;) {
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n > 0) {
            into.append(buffer, static_cast<std::size_t>(n));
            continue;
        }
        return n != 0;
    }
}

/// Records every callback, in order, and offers hooks to act inside them.
struct Recorder : Protocol {
    std::vector<std::string> events;
    std::string data;
    Transport* transport = nullptr;
    std::error_code lost_error;
    int lost = 0;
    bool keep_open_on_eof = false;
    std::function<void(Recorder&)> on_made, on_data, on_eof, on_lost, on_pause, on_resume;

    void connection_made(Transport& t) override {
        transport = &t;
        events.push_back("made");
        if (on_made) on_made(*this);
    }
    void data_received(std::string_view d) override {
        CHECK(!d.empty());
        data += d;
        events.push_back("data");
        if (on_data) on_data(*this);
    }
    bool eof_received() override {
        events.push_back("eof");
        if (on_eof) on_eof(*this);
        return keep_open_on_eof;
    }
    void connection_lost(std::error_code error) override {
        lost_error = error;
        ++lost;
        events.push_back("lost");
        if (on_lost) on_lost(*this);
    }
    void pause_writing() override {
        events.push_back("pause");
        if (on_pause) on_pause(*this);
    }
    void resume_writing() override {
        events.push_back("resume");
        if (on_resume) on_resume(*this);
    }
    int count(std::string_view name) const {
        int n = 0;
        for (auto& e : events) n += e == name;
        return n;
    }
};

}  // namespace evloop::test
