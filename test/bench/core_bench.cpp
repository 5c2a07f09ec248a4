// test/bench/core_bench.cpp — how many nanoseconds the core loop spends per
// callback, per timer and per threadsafe post. A benchmark, not a test: it
// prints figures and checks only that every callback it scheduled ran (once).
//
// Three workloads, each in its own loop, each run once to warm up and then R
// times (the machine's speed drifts up to 2x from one minute to the next, so
// we print the median and the min–max):
//  1. call_soon + run: 1,000,000 callbacks scheduled, then run by one loop pass;
//  2. timers: 1,000,000 call_later with delays uniform in 1–1000 ms (fixed
//     seed), every other one cancelled, the loop run until the last one fired;
//     the figure is process CPU time, since the loop mostly sleeps;
//  3. call_soon_threadsafe flood: 1,000,000 posts from another thread while the
//     loop runs, timed from the first post to the last callback (with --cpus
//     L,P the loop's thread runs on CPU L and the producer on CPU P, as
//     test/bench/bench_suite.py pins every micro program);
// and, as a detail, workload 1 again after workload 2 has recycled the node
// pool in random order (what scattered nodes cost).
//
// Run: `make bench-core` (builds with -O2 and runs it), or by hand:
//   g++ -std=c++20 -O2 -I. -pthread test/bench/core_bench.cpp core/*.cpp platform/*.cpp -o /tmp/core_bench
//   /tmp/core_bench [--repeat R] [--backend poll|epoll] [--n COUNT] [--cpus L,P]
// (--n shrinks the workloads, e.g. for valgrind --tool=callgrind.)
// Public API only. Layer: test. Read first: core/event_loop.cpp (run_once).
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string_view>
#include <thread>
#include <vector>

#include "core/event_loop.hpp"
#include "test/bench/bench_stats.hpp"

namespace {

using evloop::EventLoop;

std::size_t g_n = 1'000'000;  // operations per workload (--n)
int g_loop_cpu = -1;           // --cpus L,P: the loop's thread on CPU L (-1: not pinned)
int g_producer_cpu = -1;       // ... and the flood's producer thread on CPU P

std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// User + system time of every thread of the process.
std::int64_t cpu_ns() {
    timespec ts;
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double per_op(std::int64_t ns, std::size_t ops) { return static_cast<double>(ns) / static_cast<double>(ops); }

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "core_bench: FAILED: %s\n", what);
    std::exit(1);
}

// Pins the calling thread to `cpu` (a new thread inherits its creator's CPUs,
// so the producer pins itself after it starts).
void pin_this_thread(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::pthread_setaffinity_np(::pthread_self(), sizeof set, &set) != 0) fail("pthread_setaffinity_np (--cpus)");
}

// ---- 1. call_soon + run ---------------------------------------------------------

struct SoonResult {
    double schedule, run, total;  // ns per callback
};

SoonResult bench_call_soon(EventLoop& loop) {
    std::size_t count = 0;
    const std::size_t limit = g_n;
    const std::int64_t t0 = wall_ns();
    // Three captured pointers, as a typical small callback.
    for (std::size_t i = 0; i < g_n; ++i)
        (void)loop.call_soon([c = &count, l = &loop, n = &limit] {
            if (++*c == *n) l->stop();
        });
    const std::int64_t t1 = wall_ns();
    if (loop.run_forever()) fail("call_soon: run_forever refused");
    const std::int64_t t2 = wall_ns();
    if (count != g_n) fail("call_soon: not every callback ran");
    return {per_op(t1 - t0, g_n), per_op(t2 - t1, g_n), per_op(t2 - t0, g_n)};
}

// ---- 2. timers ---------------------------------------------------------------------

// splitmix64: a fixed-seed generator whose output is the same with every
// standard library (std::uniform_int_distribution's is not).
std::vector<std::int64_t> random_delays_ns(std::size_t n) {
    std::uint64_t state = 0x5eed;
    std::vector<std::int64_t> delays(n);
    for (std::int64_t& delay : delays) {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
        z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
        z ^= z >> 31;
        delay = 1'000'000 + static_cast<std::int64_t>(z % 999'000'001);  // 1 ms .. 1000 ms
    }
    return delays;
}

struct TimerResult {
    double schedule;  // wall ns per call_later
    double cancel;    // wall ns per cancel()
    double cpu;       // CPU ns per timer over the whole phase
    double seconds;   // wall time of the whole phase
};

// `doomed` is reused from run to run (as `ran` below): a big vector freed
// between runs would make glibc consolidate and trim its heap, and the loop's
// next run would pay page faults the benchmark itself caused.
TimerResult bench_timers(EventLoop& loop, const std::vector<std::int64_t>& delays_ns,
                         std::vector<evloop::TimerHandle>& doomed) {
    std::size_t fired = 0, fired_cancelled = 0;
    const std::size_t live = (g_n + 1) / 2;  // even indices live, odd ones are cancelled
    const std::int64_t cpu0 = cpu_ns(), t0 = wall_ns();
    for (std::size_t i = 0; i < g_n; ++i) {
        const std::chrono::nanoseconds delay(delays_ns[i]);
        if (i % 2 == 0)
            (void)loop.call_later(delay, [f = &fired, l = &loop, n = &live] {
                if (++*f == *n) l->stop();
            });
        else
            doomed.push_back(loop.call_later(delay, [f = &fired_cancelled] { ++*f; }));
    }
    const std::int64_t t1 = wall_ns();
    for (evloop::TimerHandle& handle : doomed) handle.cancel();
    const std::int64_t t2 = wall_ns();
    doomed.clear();  // dropping the last reference frees the node: part of the CPU cost
    if (loop.scheduled_timers() != live) fail("timers: cancel() left timers in the heap");
    if (loop.run_forever()) fail("timers: run_forever refused");
    const std::int64_t cpu1 = cpu_ns(), t3 = wall_ns();

    if (fired != live) fail("timers: not every live timer ran");
    if (fired_cancelled != 0) fail("timers: a cancelled timer ran");
    if (loop.scheduled_timers() != 0) fail("timers: timers left in the heap");
    return {per_op(t1 - t0, g_n), per_op(t2 - t1, g_n / 2), per_op(cpu1 - cpu0, g_n),
            static_cast<double>(t3 - t0) / 1e9};
}

// ---- 3. call_soon_threadsafe flood ---------------------------------------------------

struct FloodResult {
    double per_callback;        // wall ns, first post to last callback
    std::uint64_t wakeups;      // self-pipe bytes written during the flood
    std::uint64_t iterations;   // loop iterations during the flood
};

struct FloodState {
    EventLoop* loop;
    std::size_t count = 0;
    std::size_t limit;
    std::int64_t last_ns = 0;
};

FloodResult bench_flood(EventLoop& loop, std::vector<std::uint8_t>& ran) {
    ran.assign(g_n, 0);  // written by the loop thread only
    FloodState state{&loop, 0, g_n, 0};
    std::atomic<std::int64_t> first_ns{0};
    const evloop::LoopMetrics before = loop.metrics();

    std::thread producer([&] {
        pin_this_thread(g_producer_cpu);
        while (!loop.is_running()) std::this_thread::yield();  // time the flood, not thread start-up
        first_ns.store(wall_ns());
        for (std::size_t i = 0; i < g_n; ++i)
            (void)loop.call_soon_threadsafe([s = &state, r = ran.data() + i] {
                ++*r;
                if (++s->count == s->limit) {
                    s->last_ns = wall_ns();
                    s->loop->stop();
                }
            });
    });
    const std::error_code ec = loop.run_forever();
    producer.join();
    if (ec) fail("flood: run_forever refused");
    const evloop::LoopMetrics after = loop.metrics();

    if (state.count != g_n) fail("flood: not every callback ran");
    if (std::any_of(ran.begin(), ran.end(), [](std::uint8_t n) { return n != 1; }))
        fail("flood: a callback did not run exactly once");
    return {per_op(state.last_ns - first_ns.load(), g_n), after.wakeups_written - before.wakeups_written,
            after.iterations - before.iterations};
}

// ---- reporting ----------------------------------------------------------------------

using evloop::bench::Stat;
using evloop::bench::print_detail;
using evloop::bench::summarize;

void print_row(const char* name, const std::vector<double>& samples, double target) {
    const Stat s = summarize(samples);
    char range[48];
    std::snprintf(range, sizeof range, "%.1f–%.1f", s.min, s.max);
    // %-17s: the en dash is 3 bytes but one column wide.
    std::printf("  %-28s %12.1f   %-17s ≤ %-6.0f %s\n", name, s.median, range, target,
                s.median <= target ? "ok" : "MISSED");
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: core_bench [--repeat R] [--backend poll|epoll] [--n COUNT] [--cpus LOOP,PRODUCER]\n");
    std::exit(2);
}

long parse_count(const char* text) {
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < 1) usage();
    return value;
}

}  // namespace

int main(int argc, char** argv) {
    int repeat = 5;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (i + 1 >= argc) usage();
        if (arg == "--repeat") {
            repeat = static_cast<int>(parse_count(argv[++i]));
        } else if (arg == "--n") {
            g_n = static_cast<std::size_t>(parse_count(argv[++i]));
        } else if (arg == "--cpus") {
            char* end = nullptr;
            const char* text = argv[++i];
            g_loop_cpu = static_cast<int>(std::strtol(text, &end, 10));
            if (end == text || *end != ',' || g_loop_cpu < 0) usage();
            text = end + 1;
            g_producer_cpu = static_cast<int>(std::strtol(text, &end, 10));
            if (end == text || *end != '\0' || g_producer_cpu < 0) usage();
        } else if (arg == "--backend") {
            const std::string_view name = argv[++i];
            if (name == "epoll")
                evloop::set_default_backend(evloop::Backend::epoll);
            else if (name == "poll")
                evloop::set_default_backend(evloop::Backend::poll);
            else
                usage();
        } else {
            usage();
        }
    }

    pin_this_thread(g_loop_cpu);  // every loop below runs on this thread
    {
        EventLoop probe;
        if (probe.creation_error()) fail("cannot create the selector for this backend");
#if defined(__clang__)
        const char* compiler = "clang";
#else
        const char* compiler = "gcc";
#endif
        std::printf("evloop core_bench: backend %.*s, %s %s, n = %zu, %d repeats",
                    static_cast<int>(probe.backend_name().size()), probe.backend_name().data(), compiler,
                    __VERSION__, g_n, repeat);
        if (g_loop_cpu >= 0)
            std::printf(", loop on CPU %d, producer on CPU %d\n", g_loop_cpu, g_producer_cpu);
        else
            std::printf(", not pinned\n");
    }

    const std::vector<std::int64_t> delays = random_delays_ns(g_n);
    std::vector<evloop::TimerHandle> doomed;
    doomed.reserve(g_n / 2);
    std::vector<std::uint8_t> ran(g_n);
    std::vector<double> soon_schedule, soon_run, soon_total;
    std::vector<double> timer_schedule, timer_cancel, timer_cpu;
    std::vector<double> flood, flood_wakeups, flood_iterations;
    // One loop per workload, living across its runs, as in a real program: the
    // figures are the steady state. Run 0 of each warms up (first-touch page
    // faults of fresh memory cost ~12 us per page on this VM) and is not
    // counted. The workloads run one after the other, not interleaved: nodes
    // freed in random order by the timer workload would otherwise leave the
    // call_soon workload a scrambled pool (see "interleaved" below).
    {
        EventLoop loop;
        for (int r = 0; r <= repeat; ++r) {
            const SoonResult soon = bench_call_soon(loop);
            if (r == 0) continue;
            soon_schedule.push_back(soon.schedule);
            soon_run.push_back(soon.run);
            soon_total.push_back(soon.total);
            std::printf("  run %d/%d: call_soon+run %.1f ns\n", r, repeat, soon.total);
        }
    }
    {
        EventLoop loop;
        for (int r = 0; r <= repeat; ++r) {
            const TimerResult timers = bench_timers(loop, delays, doomed);
            if (r == 0) continue;
            timer_schedule.push_back(timers.schedule);
            timer_cancel.push_back(timers.cancel);
            timer_cpu.push_back(timers.cpu);
            std::printf("  run %d/%d: timers %.1f ns CPU per timer (%.2f s)\n", r, repeat, timers.cpu, timers.seconds);
        }
    }
    {
        EventLoop loop;
        for (int r = 0; r <= repeat; ++r) {
            const FloodResult flooded = bench_flood(loop, ran);
            if (r == 0) continue;
            flood.push_back(flooded.per_callback);
            flood_wakeups.push_back(static_cast<double>(flooded.wakeups));
            flood_iterations.push_back(static_cast<double>(flooded.iterations));
            std::printf("  run %d/%d: flood %.1f ns per callback (%llu wakeups, %llu iterations)\n", r, repeat,
                        flooded.per_callback, static_cast<unsigned long long>(flooded.wakeups),
                        static_cast<unsigned long long>(flooded.iterations));
        }
    }
    // The same call_soon workload once more, now that the timer and flood
    // workloads have recycled the node pool in random order: the cost of
    // cache and TLB misses on scattered nodes.
    std::vector<double> soon_interleaved;
    {
        EventLoop loop;
        for (int r = 0; r < repeat; ++r) {
            soon_interleaved.push_back(bench_call_soon(loop).total);
            (void)bench_timers(loop, delays, doomed);
        }
    }
    std::fflush(stdout);

    std::printf("\ndetails                                  median   min–max\n");
    print_detail("call_soon: schedule", soon_schedule, "ns/callback");
    print_detail("call_soon: run", soon_run, "ns/callback");
    print_detail("timers: call_later", timer_schedule, "ns/timer");
    print_detail("timers: cancel", timer_cancel, "ns/cancelled timer");
    print_detail("flood: self-pipe wakeups written", flood_wakeups, "bytes");
    print_detail("flood: loop iterations", flood_iterations, "");
    print_detail("call_soon+run, interleaved", soon_interleaved, "ns/callback (after the timer workload)");

    std::printf("\n  %-28s %12s   %-17s %-8s\n", "benchmark", "median ns/op", "min–max", "target");
    print_row("call_soon+run", soon_total, 30);
    print_row("timers total CPU/timer", timer_cpu, 500);
    print_row("threadsafe flood/callback", flood, 100);
    return 0;
}
