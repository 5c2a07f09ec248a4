// docs/examples/echo_client.cpp — a TCP echo client in the coroutine style:
// a Task co_awaits create_connection, then, for each line, writes it and
// co_awaits the echo.
//
// A Protocol is still what the transport talks to; LineReader turns its
// callbacks into something a coroutine can wait on: read_line() returns a
// Future that data_received completes once a whole line has arrived (or
// connection_lost fails, if the connection ends first). That is the bridge
// asyncio's StreamReader makes between protocols and `await`.
//
//   echo_client [--host HOST] [--port PORT] [LINE ...]
//       connect to HOST:PORT (127.0.0.1:8888, docs/examples/echo_server.cpp's
//       default), send each LINE (default: three of ours), print each echo
//   echo_client --selftest
//       the same against an echo server of its own, in the same loop; exit 0
//       if every echo matched
// Read next: docs/examples/chat_server.cpp.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "evloop.hpp"

namespace {

class LineReader final : public evloop::Protocol {
public:
    explicit LineReader(evloop::EventLoop& loop) : loop_(loop) {}

    /// The next line, without its '\n': done at once if it is already here.
    evloop::Future<std::string> read_line() {
        waiter_.emplace(loop_);
        evloop::Future<std::string> line = *waiter_;
        deliver();
        return line;
    }

    void data_received(std::string_view data) override {
        buffer_.append(data);  // `data` is only lent for this call: keep a copy
        deliver();
    }
    void connection_lost(std::error_code error) override {
        closed_ = error ? error : make_error_code(std::errc::connection_aborted);
        deliver();
    }

private:
    void deliver() {
        if (!waiter_ || waiter_->done()) return;
        if (std::size_t nl = buffer_.find('\n'); nl != std::string::npos) {
            (void)waiter_->set_result(buffer_.substr(0, nl));
            buffer_.erase(0, nl + 1);
        } else if (closed_) {
            (void)waiter_->set_error(closed_);
        }
    }

    evloop::EventLoop& loop_;
    std::string buffer_;
    std::optional<evloop::Future<std::string>> waiter_;
    std::error_code closed_;
};

// The client proper: connect, then one line out, one echo back, in turn.
evloop::Task<void> talk(evloop::EventLoop& loop, std::string host, int port, std::vector<std::string> lines) {
    auto connection = co_await loop.create_connection([&loop] { return std::make_shared<LineReader>(loop); },
                                                      host, port);
    if (!connection) {
        std::fprintf(stderr, "cannot connect to %s:%d: %s\n", host.c_str(), port,
                     connection.error().message().c_str());
        co_await evloop::fail(connection.error());
    }
    std::printf("connected to %s:%d\n", host.c_str(), port);
    LineReader& reader = connection->protocol_as<LineReader>();
    for (const std::string& line : lines) {
        (void)connection->transport->write(line + "\n");
        auto echo = co_await reader.read_line();
        if (!echo) {
            std::fprintf(stderr, "no echo for \"%s\": %s\n", line.c_str(), echo.error().message().c_str());
            co_await evloop::fail(echo.error());
        }
        std::printf("sent \"%s\", got back \"%s\"\n", line.c_str(), echo->c_str());
        if (*echo != line) co_await evloop::fail(evloop::errc::invalid_state);
    }
    connection->transport->close();
}

// ---- the self-test: an echo server of our own, in the same loop ------------

class Echo final : public evloop::Protocol {
public:
    void connection_made(evloop::Transport& transport) override { transport_ = &transport; }
    void data_received(std::string_view data) override { (void)transport_->write(data); }

private:
    evloop::Transport* transport_ = nullptr;
};

evloop::Task<void> selftest(evloop::EventLoop& loop) {
    auto server = co_await loop.create_server([] { return std::make_shared<Echo>(); }, "127.0.0.1", 0);
    if (!server) co_await evloop::fail(server.error());
    const int port = (*server)->addresses().at(0).port();
    // co_await of a task not yet scheduled runs it inline, like Python's `await talk(...)`.
    // A named vector: g++ 12 fails on a braced list of literals as an argument here.
    std::vector<std::string> lines{"hello", "from a coroutine", "bye"};
    auto talked = co_await talk(loop, "127.0.0.1", port, std::move(lines));
    (*server)->close();
    if (!talked) co_await evloop::fail(talked.error());
    if (auto closed = co_await (*server)->wait_closed(); !closed) co_await evloop::fail(closed.error());
    std::printf("selftest: passed\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    std::string host = "127.0.0.1";
    int port = 8888;
    bool self_test = false;
    std::vector<std::string> lines;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--selftest")
            self_test = true;
        else if (arg == "--host" && i + 1 < argc)
            host = argv[++i];
        else if (arg == "--port" && i + 1 < argc)
            port = std::atoi(argv[++i]);
        else
            lines.emplace_back(arg);
    }
    if (lines.empty()) lines = {"hello", "evloop", "goodbye"};

    evloop::EventLoop loop;
    evloop::Result<void> result;
    if (self_test)  // wait_for: a broken build fails in two seconds instead of hanging CI
        result = loop.run_until_complete(evloop::wait_for(selftest(loop), 2.0));
    else
        result = loop.run_until_complete(talk(loop, host, port, lines));
    // talk() has said what went wrong; the self-test adds its verdict.
    if (!result && self_test) std::fprintf(stderr, "selftest FAILED: %s\n", result.error().message().c_str());
    (void)loop.close();
    return result ? 0 : 1;
}
