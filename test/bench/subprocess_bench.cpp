// test/bench/subprocess_bench.cpp — subprocess spawn+exit round trips per
// second on evloop: how fast a loop can start /bin/true, learn that it
// exited and reap it.
//
// Workloads (the same rows, names and counts as subprocess_bench.py runs on
// asyncio and uvloop, so `make bench-subprocess` can set them side by side):
//  - "serial, stdio devnull": start one child, wait for connection_lost
//    (exited and reaped), start the next;
//  - "serial, stdout pipe": the same with the child's stdout a pipe, so the
//    loop also sees the pipe's EOF before connection_lost;
//  - "16 in flight, devnull": 16 children alive at all times.
// Each row prints the median spawns per second over --repeat runs, with the
// min–max. Run: `make bench-subprocess` (interleaved with asyncio/uvloop), or
// build/<config>/bench/subprocess_bench [--repeat R] [--count N]
// [--watcher pidfd|sigchld].
// Layer: test. Read next: test/bench/subprocess_bench.py (the driver).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "evloop.hpp"
#include "platform/clock.hpp"
#include "test/bench/bench_stats.hpp"

using namespace evloop;

namespace {

struct Waiter : SubprocessProtocol {
    std::function<void()> on_lost;
    void connection_lost(std::error_code) override {
        if (on_lost) on_lost();
    }
};

/// Starts `count` children of /bin/true, at most `flying` at a time, and
/// returns spawns per second (0 after a failure, which is printed).
double run(EventLoop& loop, int count, int flying, bool stdout_pipe) {
    SubprocessOptions options{.std_in = Stdio::devnull(),
                              .std_out = stdout_pipe ? Stdio::pipe() : Stdio::devnull(),
                              .std_err = Stdio::devnull()};
    int started = 0, finished = 0;
    bool failed = false;
    std::function<void()> start_one = [&] {
        ++started;
        auto future = loop.subprocess_exec(
            [&] {
                auto protocol = std::make_shared<Waiter>();  // the transport holds it until lost
                protocol->on_lost = [&] {
                    ++finished;
                    if (finished == count) loop.stop();
                    else if (started < count) loop.call_soon([&] { start_one(); });
                };
                return protocol;
            },
            "/bin/true", {}, options);
        future.add_done_callback([&](Future<SubprocessConnection>& f) {
            if (!f.result()) {
                std::fprintf(stderr, "subprocess_exec failed: %s\n", f.result().error().message().c_str());
                failed = true;
                loop.stop();
            }
        });
    };
    const std::int64_t begin = monotonic_ns();
    for (int i = 0; i < flying && i < count; ++i) start_one();
    (void)loop.run_forever();
    const double seconds = static_cast<double>(monotonic_ns() - begin) / 1e9;
    return failed ? 0.0 : count / seconds;
}

}  // namespace

int main(int argc, char** argv) {
    int repeat = 5, count = 2000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--repeat") == 0) repeat = std::atoi(argv[i + 1]);
        else if (std::strcmp(argv[i], "--count") == 0) count = std::atoi(argv[i + 1]);
        else if (std::strcmp(argv[i], "--watcher") == 0)
            set_default_child_watcher(std::strcmp(argv[i + 1], "sigchld") == 0 ? ChildWatcherKind::sigchld
                                                                                 : ChildWatcherKind::pidfd);
    }
    struct Row {
        const char* name;
        int flying;
        bool pipe;
        std::vector<double> samples;
    } rows[] = {{"serial, stdio devnull", 1, false, {}},
                {"serial, stdout pipe", 1, true, {}},
                {"16 in flight, devnull", 16, false, {}}};
    EventLoop loop;
    std::printf("evloop subprocess_bench: %d spawns of /bin/true per run, %d runs, %s child watcher\n", count, repeat,
                detail::child_watcher_kind(loop) == ChildWatcherKind::pidfd ? "pidfd" : "sigchld");
    for (int r = 0; r < repeat; ++r)
        for (Row& row : rows) row.samples.push_back(run(loop, count, row.flying, row.pipe));
    std::printf("\n  %-28s %12s   %-17s\n", "workload", "spawns/s", "min–max");
    for (const Row& row : rows) {
        const bench::Stat s = bench::summarize(row.samples);
        std::printf("  %-28s %12.1f   %.1f–%.1f\n", row.name, s.median, s.min, s.max);
    }
    (void)loop.close();
}
