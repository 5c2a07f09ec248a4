// test/proc/pipe_support.hpp — what the pipe tests share: pipes, a FIFO in a
// temporary folder, connecting a transport with a Recorder, SIGPIPE at its
// default action for a test's duration, a recording BufferedProtocol.
// Used by test/proc/pipe_transport_test.cpp and connect_pipe_test.cpp.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "net/stream.hpp"
#include "proc/pipe_transport.hpp"
#include "test/net/stream_pair.hpp"


namespace evloop::test {

struct Pipe {
    Fd read;
    Fd write;
};

inline Pipe make_pipe(int flags = O_CLOEXEC | O_NONBLOCK) {
    int fds[2];
    REQUIRE(::pipe2(fds, flags) == 0);
    return {Fd(fds[0]), Fd(fds[1])};
}

// Appends what a non-blocking fd has; false at EOF.
inline bool drain_fd(int fd, std::string& into) {
    char buffer[65536];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) {
            into.append(buffer, static_cast<std::size_t>(n));
            continue;
        }
        return n != 0;
    }
}

// Runs `n` iterations that never block.
inline void spin(EventLoop& loop, int n) {
    for (int i = 0; i < n; ++i) {
        loop.call_soon([] {});
        (void)loop.run_once();
    }
}

// connect_read_pipe / connect_write_pipe with `protocol`, run until done.
inline Connection connect(EventLoop& loop, bool write, Fd fd, std::shared_ptr<StreamProtocol> protocol) {
    ProtocolFactory factory = [protocol] { return protocol; };
    Future<Connection> future = write ? loop.connect_write_pipe(factory, fd.release())
                                      : loop.connect_read_pipe(factory, fd.release());
    REQUIRE(run_until(loop, [&] { return future.done(); }));
    Result<Connection> connection = future.result();
    REQUIRE(connection);
    return *connection;
}

WritePipeTransport& as_writer(const Connection& c) { return static_cast<WritePipeTransport&>(*c.transport); }
ReadPipeTransport& as_reader(const Connection& c) { return static_cast<ReadPipeTransport&>(*c.transport); }

// Writes until the pipe is full and at least `at_least` bytes wait in the buffer.
inline void fill_until_buffered(Transport& transport, std::size_t at_least) {
    std::string chunk(64 * 1024, 'x');
    while (transport.get_write_buffer_size() < at_least) REQUIRE(!transport.write(chunk));
}

// SIGPIPE at its default action (death) while alive, whatever it was before.
struct DefaultSigpipe {
    struct sigaction old {};
    DefaultSigpipe() {
        struct sigaction action {};
        action.sa_handler = SIG_DFL;
        sigemptyset(&action.sa_mask);
        REQUIRE(::sigaction(SIGPIPE, &action, &old) == 0);
    }
    ~DefaultSigpipe() { ::sigaction(SIGPIPE, &old, nullptr); }
};

inline bool sigpipe_pending() {
    sigset_t pending;
    REQUIRE(::sigpending(&pending) == 0);
    return sigismember(&pending, SIGPIPE) == 1;
}

struct TempDir {
    std::string path;
    TempDir() {
        char name[] = "/tmp/evloop-pipe-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        path = name;
    }
    ~TempDir() { ::rmdir(path.c_str()); }
};

struct Buffered : BufferedProtocol {
    std::vector<char> memory = std::vector<char>(100);
    std::string data;
    std::vector<std::string> events;
    std::error_code lost_error;
    bool give_empty = false;
    void connection_made(Transport&) override { events.push_back("made"); }
    std::span<char> get_buffer(std::size_t hint) override {
        CHECK(hint == 0);
        if (give_empty) return {};
        return memory;
    }
    void buffer_updated(std::size_t n) override {
        events.push_back("updated");
        data.append(memory.data(), n);
    }
    bool eof_received() override {
        events.push_back("eof");
        return true;  // no effect on a read pipe
    }
    void connection_lost(std::error_code error) override {
        events.push_back("lost");
        lost_error = error;
    }
};

}  // namespace evloop::test
