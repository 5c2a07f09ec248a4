/* test/bench/peers/uv_micro.c — test/bench/core_bench.cpp's three workloads
 * on libuv, as near as libuv comes, printed in core_bench's rows:
 *
 *  1. call_soon+run: libuv has no "call this soon". Its nearest is an idle
 *     handle: uv_idle_start puts it on a list the next pass walks (O(1),
 *     no clock, no heap), and a callback that calls uv_idle_stop on its own
 *     handle has run once, as a call_soon callback does. N handles started,
 *     then one uv_run(UV_RUN_NOWAIT) pass. The handles are initialised once
 *     (uv_idle_init links each into the loop's handle list for good; a
 *     program reuses its handles rather than init and close them per call).
 *     Not uv_timer_start(0), which pays a heap insert and the clock: that is
 *     workload 2; not uv_async_send, which coalesces: that is workload 3.
 *  2. timers: N uv_timer_t (initialised once, as above) started with
 *     core_bench's delays (1-1000 ms, fixed seed; libuv counts whole ms),
 *     every other one stopped at once, the loop run until the rest fired;
 *     process CPU time per timer.
 *  3. threadsafe flood: libuv has no threadsafe callback queue, so the one
 *     every libuv program writes: a mutex-protected array of callbacks plus
 *     uv_async_send (which coalesces: only the first send of a batch writes
 *     to the eventfd). N posts from another thread while the loop runs,
 *     timed from the first post to the last callback.
 *
 *   uv_micro [--repeat R] [--n COUNT] [--cpus LOOP,PRODUCER]   (run by test/bench/bench_suite.py)
 * Layer: test. Read next: py_micro.py.
 */
#define _GNU_SOURCE /* pthread_setaffinity_np, in micro_common.h */
#include <stdatomic.h>
#include <uv.h>

#include "micro_common.h"

static size_t g_count;

/* ---- 1. idle handles as call_soon --------------------------------------------------- */

static void on_idle(uv_idle_t* handle) {
    uv_idle_stop(handle);
    ++g_count;
}

static double bench_idle(uv_loop_t* loop, uv_idle_t* handles) {
    g_count = 0;
    int64_t t0 = wall_ns();
    for (size_t i = 0; i < g_n; ++i) uv_idle_start(&handles[i], on_idle);
    uv_run(loop, UV_RUN_NOWAIT);
    int64_t t1 = wall_ns();
    if (g_count != g_n) micro_fail("idle: not every callback ran");
    return (double)(t1 - t0) / (double)g_n;
}

/* ---- 2. timers ------------------------------------------------------------------- */

static size_t g_live, g_fired_cancelled;

static void on_timer(uv_timer_t* timer) {
    if (++g_count == g_live) uv_stop(timer->loop);
}

static void on_cancelled_timer(uv_timer_t* timer) {
    (void)timer;
    ++g_fired_cancelled;
}

static double bench_timers(uv_loop_t* loop, uv_timer_t* timers, const int64_t* delays) {
    g_count = g_fired_cancelled = 0;
    g_live = (g_n + 1) / 2;
    int64_t c0 = cpu_ns();
    uv_update_time(loop);
    for (size_t i = 0; i < g_n; ++i)
        uv_timer_start(&timers[i], i % 2 == 0 ? on_timer : on_cancelled_timer,
                       (uint64_t)((delays[i] + 999999) / 1000000), 0);
    for (size_t i = 1; i < g_n; i += 2) uv_timer_stop(&timers[i]);
    uv_run(loop, UV_RUN_DEFAULT);
    int64_t c1 = cpu_ns();
    if (g_count != g_live || g_fired_cancelled) micro_fail("timers: wrong timers ran");
    return (double)(c1 - c0) / (double)g_n;
}

/* ---- 3. threadsafe flood ----------------------------------------------------------- */

struct flood {
    uv_loop_t* loop;
    uv_async_t async;
    uv_prepare_t started;
    struct micro_queue queue, spare;
    atomic_int running;
    unsigned char* ran;
    int64_t first_ns, last_ns;
};

static struct flood g_flood;

static void flood_callback(void* arg) {
    ++*(unsigned char*)arg;
    if (++g_count == g_n) {
        g_flood.last_ns = wall_ns();
        uv_stop(g_flood.loop);
    }
}

static void on_async(uv_async_t* handle) {
    (void)handle;
    micro_queue_run(&g_flood.queue, &g_flood.spare);
}

static void on_started(uv_prepare_t* handle) {
    uv_prepare_stop(handle);
    atomic_store(&g_flood.running, 1);
}

static void* producer(void* arg) {
    (void)arg;
    micro_pin(g_producer_cpu);
    while (!atomic_load(&g_flood.running)) sched_yield(); /* time the flood, not the thread's start */
    g_flood.first_ns = wall_ns();
    for (size_t i = 0; i < g_n; ++i) {
        micro_queue_push(&g_flood.queue, flood_callback, g_flood.ran + i);
        uv_async_send(&g_flood.async);
    }
    return NULL;
}

static double bench_flood(void) {
    g_count = 0;
    memset(g_flood.ran, 0, g_n);
    atomic_store(&g_flood.running, 0);
    uv_prepare_start(&g_flood.started, on_started);
    pthread_t thread;
    if (pthread_create(&thread, NULL, producer, NULL) != 0) micro_fail("pthread_create");
    uv_run(g_flood.loop, UV_RUN_DEFAULT);
    pthread_join(thread, NULL);
    for (size_t i = 0; i < g_n; ++i)
        if (g_flood.ran[i] != 1) micro_fail("flood: a callback did not run exactly once");
    return (double)(g_flood.last_ns - g_flood.first_ns) / (double)g_n;
}

int main(int argc, char** argv) {
    micro_parse(argc, argv, "uv_micro");
    micro_pin(g_loop_cpu); /* every loop below runs on this thread */
    printf("libuv %s micro: n = %zu, %d repeats", uv_version_string(), g_n, g_repeat);
    micro_print_pinning();
    double* soon = calloc((size_t)g_repeat, sizeof(double));
    double* timers_cpu = calloc((size_t)g_repeat, sizeof(double));
    double* flood = calloc((size_t)g_repeat, sizeof(double));
    uv_idle_t* idles = calloc(g_n, sizeof *idles);
    uv_timer_t* timers = calloc(g_n, sizeof *timers);
    g_flood.ran = calloc(g_n, 1);
    int64_t* delays = micro_delays_ns(g_n);
    if (!soon || !timers_cpu || !flood || !idles || !timers || !g_flood.ran) micro_fail("calloc");

    uv_loop_t loop;
    uv_loop_init(&loop);
    for (size_t i = 0; i < g_n; ++i) uv_idle_init(&loop, &idles[i]);
    for (int r = 0; r <= g_repeat; ++r) {
        double v = bench_idle(&loop, idles);
        if (r) soon[r - 1] = v;
    }

    uv_loop_t timer_loop;
    uv_loop_init(&timer_loop);
    for (size_t i = 0; i < g_n; ++i) uv_timer_init(&timer_loop, &timers[i]);
    for (int r = 0; r <= g_repeat; ++r) {
        double v = bench_timers(&timer_loop, timers, delays);
        if (r) timers_cpu[r - 1] = v;
        if (r) printf("  run %d/%d: timers %.1f ns CPU per timer\n", r, g_repeat, v);
    }

    uv_loop_t flood_loop;
    uv_loop_init(&flood_loop);
    g_flood.loop = &flood_loop;
    pthread_mutex_init(&g_flood.queue.lock, NULL);
    uv_async_init(&flood_loop, &g_flood.async, on_async);
    uv_prepare_init(&flood_loop, &g_flood.started);
    for (int r = 0; r <= g_repeat; ++r) {
        double v = bench_flood();
        if (r) flood[r - 1] = v;
    }

    printf("\n  %-28s %12s   %s\n", "benchmark", "median ns/op", "min–max");
    micro_row("call_soon+run", soon, g_repeat);
    micro_row("timers total CPU/timer", timers_cpu, g_repeat);
    micro_row("threadsafe flood/callback", flood, g_repeat);
    return 0;
}
