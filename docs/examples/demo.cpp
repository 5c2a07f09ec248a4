// docs/examples/demo.cpp — what `make demo` runs: a tour of the loop core.
//
// It shows, printing as it goes: callbacks and their FIFO order, timers (one
// of them cancelled), a pipe watched with add_reader while another thread
// writes into it, worker threads handing results back with
// call_soon_threadsafe, run_until_complete on a future that a worker
// completes, and the same kind of work written as coroutines (tasks, sleep,
// gather, wait_for with a timeout that cancels). It ends with the loop's own
// counters. (The echo server and
// client over TCP arrive with the stream transports.)
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <string>
#include <thread>
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
    return reported == 4 && lines_read == 3 && result && coro ? 0 : 1;
}
