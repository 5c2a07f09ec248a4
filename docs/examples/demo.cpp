// docs/examples/demo.cpp — what `make demo` runs: a tour of evloop.
//
// It shows, printing as it goes: callbacks and their FIFO order, timers (one
// of them cancelled), a pipe watched with add_reader while another thread
// writes into it, worker threads handing results back with
// call_soon_threadsafe, run_until_complete on a future that a worker
// completes, and the same kind of work written as coroutines (tasks, sleep,
// gather, wait_for with a timeout that cancels). Then streams: an echo server
// and four clients over loopback play ping-pong for two seconds (the figures
// every half second), and close down in order: each client closes after its
// last echo, the server's side of each connection follows, then the server.
// It ends with the loop's own counters. About 2.5 s in all.
// Read next: docs/examples/echo_server.cpp and the other examples beside it.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "evloop.hpp"

namespace {

double started = 0;
evloop::EventLoop* demo_loop = nullptr;

// Every line is stamped with the loop's clock, relative to the start.
__attribute__((format(printf, 1, 2))) void say(const char* format, ...) {
    std::printf("[%7.2f ms] ", (demo_loop->time() - started) * 1e3);
    va_list args;
    va_start(args, format);
    std::vprintf(format, args);
    va_end(args);
    std::printf("\n");
    std::fflush(stdout);
}

// A coroutine: its steps run as loop callbacks; co_await yields a Result.
evloop::Task<int> brew(const char* what, double seconds) {
    say("task %s: started, needs %.0f ms", what, seconds * 1e3);
    if (auto slept = co_await evloop::sleep(seconds); !slept) {
        say("task %s: %s", what, slept.error().message().c_str());  // cancelled
        co_return slept.error();
    }
    say("task %s: done", what);
    co_return static_cast<int>(seconds * 1e3);
}

evloop::Task<void> coroutines() {
    // Two tasks at once: gather waits for both.
    auto both = co_await evloop::gather(evloop::create_task(brew("tea", 0.03)),
                                        evloop::create_task(brew("coffee", 0.02)));
    auto& [tea, coffee] = *both;
    say("gather: tea %d ms, coffee %d ms", *tea, *coffee);
    // One too slow: wait_for cancels it and says timed out.
    auto slow = co_await evloop::wait_for(brew("stew", 10.0), 0.02);
    say("wait_for: %s", slow ? "in time" : slow.error().message().c_str());
}

// ---- 7. streams: an echo server and ping-pong clients -----------------------

// The server side of each connection: whatever arrives goes straight back.
class Echo final : public evloop::Protocol {
public:
    void connection_made(evloop::Transport& transport) override {
        transport_ = &transport;
        evloop::ExtraInfo peer = transport.get_extra_info("peername");
        say("server: connection from %s", std::get<evloop::SocketAddress>(peer).to_string().c_str());
    }
    void data_received(std::string_view data) override { (void)transport_->write(data); }
    // The client closed its side: false closes ours (asyncio's default).
    bool eof_received() override { return false; }
    void connection_lost(std::error_code) override { ++echo_connections_closed; }

    static inline int echo_connections_closed = 0;

private:
    evloop::Transport* transport_ = nullptr;
};

// A client: sends a message, waits for all of it to come back (checking
// every byte), sends it again; after stop() it closes at the next full echo.
class PingClient final : public evloop::Protocol {
public:
    PingClient(evloop::EventLoop& loop, int id) : closed(loop), id_(id), message_(4096, static_cast<char>('a' + id)) {}

    void connection_made(evloop::Transport& transport) override {
        transport_ = &transport;
        (void)transport_->write(message_);
    }
    void data_received(std::string_view data) override {
        if (data != std::string_view(message_).substr(got_, data.size())) corrupted = true;
        got_ += data.size();
        if (got_ < message_.size()) return;
        got_ = 0;
        ++round_trips;
        if (stopping_)
            transport_->close();
        else
            (void)transport_->write(message_);
    }
    void connection_lost(std::error_code error) override {
        say("client %d: connection closed after %llu round trips%s%s", id_,
            static_cast<unsigned long long>(round_trips), error ? ": " : "", error ? error.message().c_str() : "");
        (void)closed.set_result();
    }
    void stop() { stopping_ = true; }
    std::size_t message_size() const { return message_.size(); }

    std::uint64_t round_trips = 0;
    bool corrupted = false;
    evloop::Future<void> closed;  // done at connection_lost

private:
    evloop::Transport* transport_ = nullptr;
    int id_;
    std::string message_;
    std::size_t got_ = 0;  // bytes of the current message echoed so far
    bool stopping_ = false;
};

evloop::Task<void> echo_demo(evloop::EventLoop& loop) {
    auto server = co_await loop.create_server([] { return std::make_shared<Echo>(); }, "127.0.0.1", 0);
    if (!server) co_await evloop::fail(server.error());
    const int port = (*server)->addresses().at(0).port();
    say("echo server listening on 127.0.0.1:%d", port);

    std::vector<std::shared_ptr<PingClient>> clients;
    for (int id = 0; id < 4; ++id) {
        auto connection = co_await loop.create_connection(
            [&loop, id] { return std::make_shared<PingClient>(loop, id); }, "127.0.0.1", port);
        if (!connection) co_await evloop::fail(connection.error());
        evloop::ExtraInfo local = connection->transport->get_extra_info("sockname");
        say("client %d: connected from %s", id, std::get<evloop::SocketAddress>(local).to_string().c_str());
        clients.push_back(std::static_pointer_cast<PingClient>(connection->protocol));
    }

    const double start = loop.time();
    std::uint64_t last = 0;
    for (int tick = 1; tick <= 4; ++tick) {
        (void)co_await evloop::sleep(0.5);
        std::uint64_t total = 0;
        for (auto& c : clients) total += c->round_trips;
        const double bytes = 2.0 * static_cast<double>(total * clients[0]->message_size());  // both ways
        say("echo: %llu round trips of 4 KiB, %.1f MiB through the server, %.0f round trips/s in the last 0.5 s",
            static_cast<unsigned long long>(total), bytes / (1024 * 1024), static_cast<double>(total - last) / 0.5);
        last = total;
    }
    const double elapsed = loop.time() - start;

    for (auto& c : clients) c->stop();
    for (auto& c : clients) (void)co_await c->closed;
    (*server)->close();
    // Done when the server is closed and its side of every connection is gone.
    if (auto closed = co_await (*server)->wait_closed(); !closed) co_await evloop::fail(closed.error());
    std::uint64_t total = 0;
    bool corrupted = false;
    for (auto& c : clients) {
        total += c->round_trips;
        corrupted = corrupted || c->corrupted;
    }
    say("echo server closed: %d connections served, %.0f round trips/s, %.1f MiB/s each way, every byte %s",
        Echo::echo_connections_closed, static_cast<double>(total) / elapsed,
        static_cast<double>(total * clients[0]->message_size()) / elapsed / (1024 * 1024),
        corrupted ? "NOT as sent" : "as sent");
    if (corrupted || Echo::echo_connections_closed != 4) co_await evloop::fail(evloop::errc::invalid_state);
}

}  // namespace

int main() {
    evloop::EventLoop loop;
    demo_loop = &loop;
    started = loop.time();
    say("evloop demo, selector backend: %.*s", static_cast<int>(loop.backend_name().size()),
        loop.backend_name().data());

    // 1. call_soon: runs on the next iteration, in order.
    for (int i = 1; i <= 3; ++i) loop.call_soon([i] { say("call_soon #%d", i); });

    // 2. timers: call_later; one is cancelled and never runs.
    loop.call_later(0.030, [] { say("timer after 30 ms"); });
    loop.call_later(0.010, [] { say("timer after 10 ms"); });
    evloop::TimerHandle doomed = loop.call_later(0.020, [] { say("this never prints"); });
    loop.call_later(0.005, [doomed]() mutable {
        doomed.cancel();
        say("cancelled the 20 ms timer (cancelled() = %s)", doomed.cancelled() ? "true" : "false");
    });

    // 3. add_reader: a thread writes three lines into a pipe; the loop reads them.
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return 1;
    int lines_read = 0;
    std::string pending;
    (void)loop.add_reader(fds[0], [&] {
        char buf[256];
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) {  // EOF: the writer closed its end
            say("pipe closed by the writer after %d lines", lines_read);
            loop.remove_reader(fds[0]);
            return;
        }
        pending.append(buf, static_cast<std::size_t>(n));
        for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
            ++lines_read;
            say("read from pipe: \"%s\"", pending.substr(0, nl).c_str());
        }
    });
    std::thread writer([fd = fds[1]] {
        for (const char* line : {"hello\n", "from another\n", "thread\n"}) {
            std::this_thread::sleep_for(std::chrono::milliseconds(15));
            if (::write(fd, line, std::string(line).size()) < 0) break;
        }
        ::close(fd);
    });

    // 4. call_soon_threadsafe: at 40 ms four workers start computing; the
    //    loop collects what they hand back.
    std::vector<std::thread> workers;
    long total = 0;
    int reported = 0;
    loop.call_later(0.040, [&] {
        say("starting 4 worker threads");
        for (int w = 0; w < 4; ++w) {
            workers.emplace_back([&loop, &total, &reported, w] {
                long sum = 0;
                for (long i = 0; i < 200'000; ++i) sum += i % (w + 2);
                (void)loop.call_soon_threadsafe([&total, &reported, w, sum] {
                    total += sum;
                    say("worker %d handed back %ld (call_soon_threadsafe)", w, sum);
                    ++reported;
                });
            });
        }
    });

    // 5. run_until_complete: a future a worker completes through the loop.
    evloop::Future<std::string> answer(loop);
    // A Future belongs to its loop's thread: the copy made here (on the loop's
    // thread) is *moved* into the callback, so the worker never copies it.
    std::thread oracle([&loop, f = answer]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(60));
        (void)loop.call_soon_threadsafe([f = std::move(f)]() mutable { (void)f.set_result("42"); });
    });

    auto result = loop.run_until_complete(answer);
    say("run_until_complete: the answer is %s", result ? result->c_str() : "(error)");

    // 6. The same style of work with coroutines.
    auto coro = loop.run_until_complete(coroutines());
    say("coroutines: %s", coro ? "finished" : coro.error().message().c_str());

    // 7. Streams: an echo server and four clients over loopback, for 2 s.
    auto echo = loop.run_until_complete(echo_demo(loop));
    say("streams: %s", echo ? "finished" : echo.error().message().c_str());

    oracle.join();
    writer.join();
    for (auto& w : workers) w.join();
    // Whatever is still queued (the pipe's EOF, late worker results) runs now.
    loop.call_later(0.01, [&loop] { loop.stop(); });
    (void)loop.run_forever();
    loop.remove_reader(fds[0]);
    ::close(fds[0]);

    evloop::LoopMetrics m = loop.metrics();
    say("workers reported %d of 4, total %ld", reported, total);
    say("loop metrics: %llu iterations, %llu callbacks run, %llu wakeup bytes written",
        static_cast<unsigned long long>(m.iterations), static_cast<unsigned long long>(m.callbacks_run),
        static_cast<unsigned long long>(m.wakeups_written));
    (void)loop.close();
    return reported == 4 && lines_read == 3 && result && coro && echo ? 0 : 1;
}
