// test/bench/task_bench.cpp — what a task, a co_await and a run_in_executor
// round trip cost, in nanoseconds. A benchmark, not a test: it prints figures
// and checks only that every task it started finished with the right result.
// test/bench/task_bench.py runs the same workloads on asyncio and uvloop and
// prints the same rows, so the per-op figures compare line for line; run
// through `make bench-tasks`, it interleaves the three and prints the ratios.
//
// Workloads, each in its own loop, each run once to warm up and then R times
// (the machine's speed drifts up to 2x from one minute to the next, so we
// print the median and the min–max):
//  1. task create+complete: N tasks, each `co_await` of a future already done
//     and `co_return` of its value, created with loop.create_task() into a
//     vector (the handles are kept, as `[create_task(...) for ...]` does in
//     Python), then run_until_complete(last task); the vector is cleared
//     afterwards and that release is timed too;
//     as details, the same with the handles dropped at once, and in batches
//     of 1,000 (create 1,000, run until the last is done, drop them) so that
//     the working set stays in cache;
//  2. co_await of a done future: one task awaiting the same done Future<int>
//     M times;
//  3. co_await of a child Task never scheduled (Python's `await coro()`, run
//     inline): one task doing it M times;
//  4. run_in_executor round trips on the default executor, serial (await each
//     before submitting the next) and with 1,000 in flight.
// A counting operator new (loop thread only: pool threads are not counted)
// gives the heap allocations per operation, to spot one that should not be
// there.
//
// Run: `make bench-tasks` (builds with -O2, runs this, asyncio and uvloop
// interleaved), or by hand:
//   g++ -std=c++20 -O2 -I. -pthread test/bench/task_bench.cpp core/*.cpp platform/*.cpp -o /tmp/task_bench
//   /tmp/task_bench [--repeat R] [--scale S]
// (--scale 0.1 shrinks every workload tenfold, e.g. for valgrind.)
// Public API only. Layer: test. Read first: core/task.hpp, core/task_core.hpp.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string_view>
#include <vector>

#include "core/event_loop.hpp"
#include "test/bench/bench_stats.hpp"

// ---- counting allocator ------------------------------------------------------------
// thread_local, not atomic: an atomic increment would add a locked
// instruction to every allocation and so to the figures being measured.
namespace {
thread_local std::uint64_t t_allocations = 0;
}  // namespace

// Replacing the global operator new is the standard's way to observe every
// allocation, coroutine frames included. Out of memory ends a benchmark.
void* operator new(std::size_t size) {
    ++t_allocations;
    if (void* p = std::malloc(size ? size : 1)) return p;
    std::fputs("task_bench: out of memory\n", stderr);
    std::abort();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using evloop::EventLoop;
using evloop::Future;
using evloop::Result;
using evloop::Task;

// Sizes, multiplied by --scale.
std::size_t g_tasks = 1'000'000;        // workload 1
std::size_t g_awaits = 10'000'000;      // workloads 2 and 3
std::size_t g_serial = 20'000;          // workload 4, serial round trips
std::size_t g_in_flight_total = 200'000;  // workload 4, round trips 1,000 at a time
constexpr std::size_t batch_size = 1'000;
constexpr std::size_t in_flight = 1'000;
constexpr int answer_value = 42;

std::int64_t wall_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

double per_op(std::int64_t ns, std::size_t ops) { return static_cast<double>(ns) / static_cast<double>(ops); }
double per_op(std::uint64_t count, std::size_t ops) { return static_cast<double>(count) / static_cast<double>(ops); }

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "task_bench: FAILED: %s\n", what);
    std::exit(1);
}

// ---- the coroutines -----------------------------------------------------------------

// Takes the future by value, as Python's coro(fut) holds a reference to it.
Task<int> answer(Future<int> fut) {
    Result<int> r = co_await fut;
    co_return r;
}

Task<std::int64_t> await_done_future(Future<int> fut, std::size_t m) {
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < m; ++i) sum += *(co_await fut);
    co_return sum;
}

Task<int> child(int v) { co_return v; }

Task<std::int64_t> await_children(std::size_t m) {
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < m; ++i) sum += *(co_await child(1));
    co_return sum;
}

Task<std::int64_t> executor_serial(EventLoop& loop, std::size_t m) {
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < m; ++i) sum += *(co_await loop.run_in_executor(nullptr, [] { return 1; }));
    co_return sum;
}

// `batch` lives outside the frame and is reused from run to run, as `kept` is
// in bench_tasks_kept (the reason is there).
Task<std::int64_t> executor_in_flight(EventLoop& loop, std::size_t total, std::vector<Future<int>>& batch) {
    std::int64_t sum = 0;
    for (std::size_t done = 0; done < total; done += in_flight) {
        batch.clear();
        for (std::size_t i = 0; i < in_flight; ++i) batch.push_back(loop.run_in_executor(nullptr, [] { return 1; }));
        for (Future<int>& f : batch) sum += *(co_await f);
    }
    batch.clear();
    co_return sum;
}

// ---- 1. task create+complete ----------------------------------------------------------

struct TaskResult {
    double create, run, release, total;  // ns per task
    double allocations;                  // per task, create to release
};

// `kept` is reused from run to run: a big vector freed between runs would
// make glibc trim its heap, and the next run would pay page faults the
// benchmark itself caused.
TaskResult bench_tasks_kept(EventLoop& loop, const Future<int>& fut, std::vector<Task<int>>& kept) {
    const std::size_t n = g_tasks;
    const std::uint64_t a0 = t_allocations;
    const std::int64_t t0 = wall_ns();
    for (std::size_t i = 0; i < n; ++i) kept.push_back(loop.create_task(answer(fut)));
    const std::int64_t t1 = wall_ns();
    const Result<int> last = loop.run_until_complete(kept.back());
    const std::int64_t t2 = wall_ns();
    const std::uint64_t a1 = t_allocations;
    if (!last || *last != answer_value) fail("tasks: the last task has no result");
    for (const Task<int>& task : kept) {
        const Result<int> r = task.result();
        if (!r || *r != answer_value) fail("tasks: a task did not finish with its result");
    }
    const std::int64_t t3 = wall_ns();
    kept.clear();
    const std::int64_t t4 = wall_ns();
    const std::int64_t total = (t2 - t0) + (t4 - t3);
    return {per_op(t1 - t0, n), per_op(t2 - t1, n), per_op(t4 - t3, n), per_op(total, n), per_op(a1 - a0, n)};
}

// The same, keeping only the last handle: each task is freed by its own
// last step.
double bench_tasks_dropped(EventLoop& loop, const Future<int>& fut) {
    const std::size_t n = g_tasks;
    const std::int64_t t0 = wall_ns();
    for (std::size_t i = 0; i + 1 < n; ++i) (void)loop.create_task(answer(fut));
    const Result<int> last = loop.run_until_complete(loop.create_task(answer(fut)));
    const std::int64_t t1 = wall_ns();
    if (!last || *last != answer_value) fail("tasks dropped: the last task has no result");
    if (!loop.all_tasks().empty()) fail("tasks dropped: a task is still pending");
    return per_op(t1 - t0, n);
}

// Batches of 1,000 kept handles, released before the next batch.
double bench_tasks_batched(EventLoop& loop, const Future<int>& fut, std::vector<Task<int>>& batch) {
    const std::size_t batches = std::max<std::size_t>(1, g_tasks / batch_size);
    const std::int64_t t0 = wall_ns();
    for (std::size_t b = 0; b < batches; ++b) {
        for (std::size_t i = 0; i < batch_size; ++i) batch.push_back(loop.create_task(answer(fut)));
        const Result<int> last = loop.run_until_complete(batch.back());
        if (!last || *last != answer_value) fail("tasks batched: the last task has no result");
        batch.clear();
    }
    const std::int64_t t1 = wall_ns();
    return per_op(t1 - t0, batches * batch_size);
}

// ---- 2, 3, 4. one task doing M operations -----------------------------------------------

struct LoopResult {
    double ns;           // per operation
    double allocations;  // per operation, loop thread only
};

// Runs `task` to completion and checks that its sum is `expected`.
LoopResult time_task(EventLoop& loop, Task<std::int64_t> task, std::size_t ops, std::int64_t expected,
                     const char* what) {
    const std::uint64_t a0 = t_allocations;
    const std::int64_t t0 = wall_ns();
    const Result<std::int64_t> sum = loop.run_until_complete(task);
    const std::int64_t t1 = wall_ns();
    const std::uint64_t a1 = t_allocations;
    if (!sum || *sum != expected) fail(what);
    return {per_op(t1 - t0, ops), per_op(a1 - a0, ops)};
}

// ---- reporting ----------------------------------------------------------------------

using evloop::bench::Stat;
using evloop::bench::print_detail;
using evloop::bench::summarize;

// The rows test/bench/task_bench.py prints too, and parses: keep them alike.
void print_row(const char* name, const std::vector<double>& samples) {
    const Stat s = summarize(samples);
    char range[48];
    std::snprintf(range, sizeof range, "%.1f–%.1f", s.min, s.max);
    // %-19s: the en dash is 3 bytes but one column wide.
    std::printf("  %-28s %12.1f   %-19s %14.0f\n", name, s.median, range, 1e9 / s.median);
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: task_bench [--repeat R] [--scale S]\n");
    std::exit(2);
}

std::size_t scaled(std::size_t n, double scale, std::size_t minimum) {
    return std::max(minimum, static_cast<std::size_t>(static_cast<double>(n) * scale));
}

}  // namespace

int main(int argc, char** argv) {
    int repeat = 5;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (i + 1 >= argc) usage();
        char* end = nullptr;
        if (arg == "--repeat") {
            const long r = std::strtol(argv[++i], &end, 10);
            if (*end != '\0' || r < 1) usage();
            repeat = static_cast<int>(r);
        } else if (arg == "--scale") {
            const double s = std::strtod(argv[++i], &end);
            if (*end != '\0' || !(s > 0)) usage();
            // Whole batches, so every workload does the count it reports.
            g_tasks = scaled(g_tasks, s, batch_size) / batch_size * batch_size;
            g_awaits = scaled(g_awaits, s, 1);
            g_serial = scaled(g_serial, s, 1);
            g_in_flight_total = scaled(g_in_flight_total, s, in_flight) / in_flight * in_flight;
        } else {
            usage();
        }
    }

#if defined(__clang__)
    const char* compiler = "clang";
#else
    const char* compiler = "gcc";
#endif
    std::printf("evloop task_bench: %s %s, tasks %zu, awaits %zu, executor %zu serial + %zu in flight, %d repeats\n",
                compiler, __VERSION__, g_tasks, g_awaits, g_serial, g_in_flight_total, repeat);

    std::vector<double> kept_create, kept_run, kept_release, kept_total, kept_allocs, dropped, batched;
    std::vector<double> await_future, await_future_allocs, await_child, await_child_allocs;
    std::vector<double> serial, serial_allocs, parallel, parallel_allocs;
    // One loop per workload, living across its runs, as in a real program: the
    // figures are the steady state. Run 0 of each warms up (first-touch page
    // faults, the pool's threads) and is not counted.
    {
        EventLoop loop;
        Future<int> fut = loop.create_future<int>();
        (void)fut.set_result(answer_value);
        std::vector<Task<int>> tasks;
        tasks.reserve(g_tasks);
        for (int r = 0; r <= repeat; ++r) {
            const TaskResult kept = bench_tasks_kept(loop, fut, tasks);
            const double drop = bench_tasks_dropped(loop, fut);
            const double batch = bench_tasks_batched(loop, fut, tasks);
            if (r == 0) continue;
            kept_create.push_back(kept.create);
            kept_run.push_back(kept.run);
            kept_release.push_back(kept.release);
            kept_total.push_back(kept.total);
            kept_allocs.push_back(kept.allocations);
            dropped.push_back(drop);
            batched.push_back(batch);
            std::printf("  run %d/%d: task create+complete %.1f ns (dropped %.1f, batched %.1f)\n", r, repeat,
                        kept.total, drop, batch);
        }
    }
    {
        EventLoop loop;
        Future<int> fut = loop.create_future<int>();
        (void)fut.set_result(answer_value);
        const auto m = static_cast<std::int64_t>(g_awaits);
        for (int r = 0; r <= repeat; ++r) {
            const LoopResult f = time_task(loop, loop.create_task(await_done_future(fut, g_awaits)), g_awaits,
                                           m * answer_value, "await future: wrong sum");
            const LoopResult c =
                time_task(loop, loop.create_task(await_children(g_awaits)), g_awaits, m, "await child: wrong sum");
            if (r == 0) continue;
            await_future.push_back(f.ns);
            await_future_allocs.push_back(f.allocations);
            await_child.push_back(c.ns);
            await_child_allocs.push_back(c.allocations);
            std::printf("  run %d/%d: co_await done future %.2f ns, co_await child task %.1f ns\n", r, repeat, f.ns,
                        c.ns);
        }
    }
    {
        EventLoop loop;
        std::vector<Future<int>> batch;
        batch.reserve(in_flight);
        for (int r = 0; r <= repeat; ++r) {
            const LoopResult s = time_task(loop, loop.create_task(executor_serial(loop, g_serial)), g_serial,
                                           static_cast<std::int64_t>(g_serial), "executor serial: wrong sum");
            const LoopResult p =
                time_task(loop, loop.create_task(executor_in_flight(loop, g_in_flight_total, batch)),
                          g_in_flight_total, static_cast<std::int64_t>(g_in_flight_total), "executor: wrong sum");
            if (r == 0) continue;
            serial.push_back(s.ns);
            serial_allocs.push_back(s.allocations);
            parallel.push_back(p.ns);
            parallel_allocs.push_back(p.allocations);
            std::printf("  run %d/%d: run_in_executor serial %.0f ns, 1,000 in flight %.0f ns\n", r, repeat, s.ns,
                        p.ns);
        }
    }
    std::fflush(stdout);

    std::printf("\ndetails                                  median   min–max\n");
    print_detail("tasks: create_task", kept_create, "ns/task");
    print_detail("tasks: run", kept_run, "ns/task");
    print_detail("tasks: release the handles", kept_release, "ns/task");
    print_detail("tasks: heap allocations", kept_allocs, "per task (create to release)");
    print_detail("co_await done future: allocations", await_future_allocs, "per co_await");
    print_detail("co_await child task: allocations", await_child_allocs, "per co_await");
    print_detail("executor serial: allocations", serial_allocs, "per round trip (loop thread)");
    print_detail("executor in flight: allocations", parallel_allocs, "per round trip (loop thread)");

    std::printf("\n  %-28s %12s   %-19s %14s\n", "benchmark", "median ns/op", "min–max", "ops/s");
    print_row("task create+complete", kept_total);
    print_row("task handles dropped", dropped);
    print_row("task batches of 1000", batched);
    print_row("co_await done future", await_future);
    print_row("co_await child task", await_child);
    print_row("run_in_executor serial", serial);
    print_row("run_in_executor 1000 flying", parallel);
    return 0;
}
