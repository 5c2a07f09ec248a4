/* test/bench/peers/micro_common.h — what the C micro benchmarks beside
 * test/bench/core_bench.cpp share (uv_micro.c, ev_micro.c): the command line,
 * pinning the loop's thread and the flood's producer (--cpus, as core_bench),
 * clocks, core_bench's fixed-seed timer delays, a mutex-protected queue of
 * callbacks for the threadsafe flood, and core_bench's table rows, so that
 * test/bench/bench_suite.py reads every program's output the same way.
 * Each .c file defines _GNU_SOURCE before any #include: pthread_setaffinity_np.
 * Layer: test. Read first: test/bench/core_bench.cpp (the workloads).
 */
#ifndef EVLOOP_BENCH_MICRO_COMMON_H
#define EVLOOP_BENCH_MICRO_COMMON_H

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t g_n = 1000000; /* operations per workload (--n) */
static int g_repeat = 5;     /* measured runs after one warm-up (--repeat) */
static int g_loop_cpu = -1;  /* --cpus L,P: the loop's thread on CPU L (-1: not pinned) */
static int g_producer_cpu = -1; /* ... and the flood's producer thread on CPU P */

static inline void micro_fail(const char* what) {
    fprintf(stderr, "micro: FAILED: %s\n", what);
    exit(1);
}

static inline void micro_parse(int argc, char** argv, const char* name) {
    for (int i = 1; i < argc; ++i) {
        if (i + 1 < argc && strcmp(argv[i], "--n") == 0)
            g_n = (size_t)strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--repeat") == 0)
            g_repeat = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--cpus") == 0) {
            char end = 0;
            if (sscanf(argv[++i], "%d,%d%c", &g_loop_cpu, &g_producer_cpu, &end) != 2) g_repeat = 0;
        } else
            g_repeat = 0;
    }
    if (g_n < 2 || g_repeat < 1 || (g_loop_cpu >= 0) != (g_producer_cpu >= 0)) {
        fprintf(stderr, "usage: %s [--repeat R] [--n COUNT] [--cpus LOOP,PRODUCER]\n", name);
        exit(2);
    }
}

/* Pins the calling thread to `cpu` (-1: leaves it). A new thread inherits its
 * creator's CPUs, so the producer pins itself once it runs. */
static inline void micro_pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) micro_fail("pthread_setaffinity_np (--cpus)");
}

/* What the header line says about pinning. */
static inline void micro_print_pinning(void) {
    if (g_loop_cpu >= 0)
        printf(", loop on CPU %d, producer on CPU %d\n", g_loop_cpu, g_producer_cpu);
    else
        printf(", not pinned\n");
}

static inline int64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* User + system time of every thread of the process. */
static inline int64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* core_bench's delays: splitmix64 from seed 0x5eed, 1 ms .. 1000 ms. */
static inline int64_t* micro_delays_ns(size_t n) {
    int64_t* delays = malloc(n * sizeof *delays);
    if (!delays) micro_fail("malloc");
    uint64_t state = 0x5eed;
    for (size_t i = 0; i < n; ++i) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        delays[i] = 1000000 + (int64_t)(z % 999000001ull);
    }
    return delays;
}

/* ---- what call_soon_threadsafe is in a C loop: a locked queue + a wakeup ---- */

struct micro_item {
    void (*fn)(void*);
    void* arg;
};

/* Items posted by other threads; the loop thread swaps the whole array out
 * under the lock and runs it outside, so a post never waits for callbacks. */
struct micro_queue {
    pthread_mutex_t lock;
    struct micro_item* items;
    size_t len, cap;
};

static inline void micro_queue_push(struct micro_queue* q, void (*fn)(void*), void* arg) {
    pthread_mutex_lock(&q->lock);
    if (q->len == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 1024;
        q->items = realloc(q->items, q->cap * sizeof *q->items);
        if (!q->items) micro_fail("realloc");
    }
    q->items[q->len++] = (struct micro_item){fn, arg};
    pthread_mutex_unlock(&q->lock);
}

/* Runs what is queued; `spare` is the array the queue gets back (no allocation
 * once both have grown). */
static inline void micro_queue_run(struct micro_queue* q, struct micro_queue* spare) {
    pthread_mutex_lock(&q->lock);
    struct micro_item* items = q->items;
    size_t len = q->len, cap = q->cap;
    q->items = spare->items;
    q->cap = spare->cap;
    q->len = 0;
    pthread_mutex_unlock(&q->lock);
    for (size_t i = 0; i < len; ++i) items[i].fn(items[i].arg);
    spare->items = items;
    spare->cap = cap;
}

/* ---- reporting: core_bench's rows -------------------------------------------- */

static inline int micro_compare(const void* a, const void* b) {
    double x = *(const double*)a, y = *(const double*)b;
    return (x > y) - (x < y);
}

static inline void micro_row(const char* name, double* samples, int n) {
    qsort(samples, (size_t)n, sizeof *samples, micro_compare);
    double median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
    char range[64];
    snprintf(range, sizeof range, "%.1f–%.1f", samples[0], samples[n - 1]);
    printf("  %-28s %12.1f   %s\n", name, median, range);
}

#endif
