/* test/bench/peers/ev_micro.c — test/bench/core_bench.cpp's three workloads
 * on libev, as near as libev comes, printed in core_bench's rows:
 *
 *  1. call_soon+run: ev_feed_event on N initialised (not started) watchers,
 *     then one ev_run(EVRUN_NOWAIT) pass that invokes them: libev's "run
 *     this callback on the next pass" (the issue quotes it). The watchers
 *     are the caller's memory, allocated once and initialised (ev_idle_init)
 *     per callback inside the timing, as evloop's call_soon takes a node
 *     from its pool; evloop also returns a handle, libev has none to give.
 *  2. timers: N ev_timer with core_bench's delays (1-1000 ms, fixed seed),
 *     every other one stopped at once, the loop run until the rest fired;
 *     process CPU time per timer. ev_timer_init+start per timer (init only
 *     sets fields), the watchers preallocated as above.
 *  3. threadsafe flood: libev has no threadsafe callback queue, so the one
 *     every libev program writes: a mutex-protected array of callbacks plus
 *     ev_async_send (which coalesces: only the first send of a batch writes
 *     to the wakeup fd). N posts from another thread while the loop runs,
 *     timed from the first post to the last callback.
 *
 *   ev_micro [--repeat R] [--n COUNT] [--cpus LOOP,PRODUCER]   (run by test/bench/bench_suite.py)
 * Layer: test. Read next: uv_micro.c.
 */
#define _GNU_SOURCE /* pthread_setaffinity_np, in micro_common.h */
#include <ev.h>
#include <stdatomic.h>

#include "micro_common.h"

static size_t g_count;

/* ---- 1. feed + run --------------------------------------------------------------- */

static void on_fed(struct ev_loop* loop, ev_idle* w, int revents) {
    (void)loop;
    (void)w;
    (void)revents;
    ++g_count;
}

static double bench_feed(struct ev_loop* loop, ev_idle* watchers) {
    g_count = 0;
    int64_t t0 = wall_ns();
    for (size_t i = 0; i < g_n; ++i) {
        ev_idle_init(&watchers[i], on_fed); /* a fresh callback in reused memory, as a pool gives */
        ev_feed_event(loop, &watchers[i], EV_CUSTOM);
    }
    ev_run(loop, EVRUN_NOWAIT);
    int64_t t1 = wall_ns();
    if (g_count != g_n) micro_fail("feed: not every callback ran");
    return (double)(t1 - t0) / (double)g_n;
}

/* ---- 2. timers ------------------------------------------------------------------- */

static size_t g_live, g_fired_cancelled;

static void on_timer(struct ev_loop* loop, ev_timer* w, int revents) {
    (void)w;
    (void)revents;
    if (++g_count == g_live) ev_break(loop, EVBREAK_ALL);
}

static void on_cancelled_timer(struct ev_loop* loop, ev_timer* w, int revents) {
    (void)loop;
    (void)w;
    (void)revents;
    ++g_fired_cancelled;
}

static double bench_timers(struct ev_loop* loop, ev_timer* timers, const int64_t* delays) {
    g_count = g_fired_cancelled = 0;
    g_live = (g_n + 1) / 2;
    int64_t c0 = cpu_ns();
    ev_now_update(loop);
    for (size_t i = 0; i < g_n; ++i) {
        ev_timer_init(&timers[i], i % 2 == 0 ? on_timer : on_cancelled_timer, (double)delays[i] / 1e9, 0.);
        ev_timer_start(loop, &timers[i]);
    }
    for (size_t i = 1; i < g_n; i += 2) ev_timer_stop(loop, &timers[i]);
    ev_run(loop, 0);
    int64_t c1 = cpu_ns();
    if (g_count != g_live || g_fired_cancelled) micro_fail("timers: wrong timers ran");
    return (double)(c1 - c0) / (double)g_n;
}

/* ---- 3. threadsafe flood ----------------------------------------------------------- */

struct flood {
    struct ev_loop* loop;
    ev_async async;
    ev_prepare started;
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
        ev_break(g_flood.loop, EVBREAK_ALL);
    }
}

static void on_async(struct ev_loop* loop, ev_async* w, int revents) {
    (void)loop;
    (void)w;
    (void)revents;
    micro_queue_run(&g_flood.queue, &g_flood.spare);
}

static void on_started(struct ev_loop* loop, ev_prepare* w, int revents) {
    (void)revents;
    ev_prepare_stop(loop, w);
    atomic_store(&g_flood.running, 1);
}

static void* producer(void* arg) {
    (void)arg;
    micro_pin(g_producer_cpu);
    while (!atomic_load(&g_flood.running)) sched_yield(); /* time the flood, not the thread's start */
    g_flood.first_ns = wall_ns();
    for (size_t i = 0; i < g_n; ++i) {
        micro_queue_push(&g_flood.queue, flood_callback, g_flood.ran + i);
        ev_async_send(g_flood.loop, &g_flood.async);
    }
    return NULL;
}

static double bench_flood(void) {
    g_count = 0;
    memset(g_flood.ran, 0, g_n);
    atomic_store(&g_flood.running, 0);
    ev_prepare_start(g_flood.loop, &g_flood.started);
    pthread_t thread;
    if (pthread_create(&thread, NULL, producer, NULL) != 0) micro_fail("pthread_create");
    ev_run(g_flood.loop, 0);
    pthread_join(thread, NULL);
    for (size_t i = 0; i < g_n; ++i)
        if (g_flood.ran[i] != 1) micro_fail("flood: a callback did not run exactly once");
    return (double)(g_flood.last_ns - g_flood.first_ns) / (double)g_n;
}

int main(int argc, char** argv) {
    micro_parse(argc, argv, "ev_micro");
    micro_pin(g_loop_cpu); /* every loop below runs on this thread */
    printf("libev %d.%d micro: n = %zu, %d repeats", ev_version_major(), ev_version_minor(), g_n, g_repeat);
    micro_print_pinning();
    double* soon = calloc((size_t)g_repeat, sizeof(double));
    double* timers_cpu = calloc((size_t)g_repeat, sizeof(double));
    double* flood = calloc((size_t)g_repeat, sizeof(double));
    ev_idle* watchers = calloc(g_n, sizeof *watchers);
    ev_timer* timers = calloc(g_n, sizeof *timers);
    g_flood.ran = calloc(g_n, 1);
    int64_t* delays = micro_delays_ns(g_n);
    if (!soon || !timers_cpu || !flood || !watchers || !timers || !g_flood.ran) micro_fail("calloc");

    struct ev_loop* loop = ev_loop_new(EVFLAG_AUTO);
    for (int r = 0; r <= g_repeat; ++r) {
        double v = bench_feed(loop, watchers);
        if (r) soon[r - 1] = v;
    }
    ev_loop_destroy(loop);

    loop = ev_loop_new(EVFLAG_AUTO);
    for (int r = 0; r <= g_repeat; ++r) {
        double v = bench_timers(loop, timers, delays);
        if (r) timers_cpu[r - 1] = v;
        if (r) printf("  run %d/%d: timers %.1f ns CPU per timer\n", r, g_repeat, v);
    }
    ev_loop_destroy(loop);

    g_flood.loop = ev_loop_new(EVFLAG_AUTO);
    pthread_mutex_init(&g_flood.queue.lock, NULL);
    ev_async_init(&g_flood.async, on_async);
    ev_async_start(g_flood.loop, &g_flood.async);
    ev_prepare_init(&g_flood.started, on_started);
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
