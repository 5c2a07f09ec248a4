#!/usr/bin/python3
"""test/bench/peers/py_micro.py — test/bench/core_bench.cpp's three workloads on
asyncio (or uvloop with --uvloop), with the same asyncio calls evloop mirrors,
printed in core_bench's rows for test/bench/bench_suite.py:

 1. call_soon+run: N loop.call_soon(callback), then run_forever until the
    last one stops the loop (one pass runs them all);
 2. timers: N loop.call_later with core_bench's delays (1-1000 ms, fixed
    seed), every other handle cancelled at once, the loop run until the rest
    fired; process CPU time per timer;
 3. threadsafe flood: N loop.call_soon_threadsafe from another thread while
    the loop runs, timed from the first post to the last callback (the GIL
    makes the two threads take turns: that is what a Python program gets).
    With --cpus L,P the loop's thread runs on CPU L and the producer on CPU P,
    as the C programs and core_bench.

Use a smaller N than the C programs (Python is ~100x slower per operation;
the figures are per operation).

  /usr/bin/python3 py_micro.py [--uvloop] [--repeat R] [--n COUNT] [--cpus LOOP,PRODUCER]
Layer: test. Read first: test/bench/core_bench.cpp.
"""
import argparse
import asyncio
import os
import statistics
import threading
import time

MASK = (1 << 64) - 1


def delays_ns(n):
    """core_bench's splitmix64 delays from seed 0x5eed: 1 ms .. 1000 ms."""
    state, out = 0x5EED, []
    for _ in range(n):
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        out.append(1_000_000 + z % 999_000_001)
    return out


def fail(what):
    raise SystemExit(f"py_micro.py: FAILED: {what}")


class Counter:
    def __init__(self, loop, limit):
        self.loop, self.limit, self.count, self.last_ns = loop, limit, 0, 0

    def tick(self):
        self.count += 1
        if self.count == self.limit:
            self.last_ns = time.perf_counter_ns()
            self.loop.stop()


def bench_call_soon(loop, n):
    counter = Counter(loop, n)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        loop.call_soon(counter.tick)
    loop.run_forever()
    t1 = time.perf_counter_ns()
    if counter.count != n:
        fail("call_soon: not every callback ran")
    return (t1 - t0) / n


def bench_timers(loop, delays):
    n = len(delays)
    live = Counter(loop, (n + 1) // 2)
    cancelled_ran = []
    c0 = time.process_time_ns()
    doomed = []
    for i, delay in enumerate(delays):
        if i % 2 == 0:
            loop.call_later(delay / 1e9, live.tick)
        else:
            doomed.append(loop.call_later(delay / 1e9, cancelled_ran.append, i))
    for handle in doomed:
        handle.cancel()
    del doomed
    loop.run_forever()
    c1 = time.process_time_ns()
    if live.count != live.limit or cancelled_ran:
        fail("timers: wrong timers ran")
    return (c1 - c0) / n


def pin(cpu):
    """Pins the calling thread (pid 0 is the calling thread to Linux's sched_setaffinity)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def bench_flood(loop, n, producer_cpu):
    ran = bytearray(n)
    counter = Counter(loop, n)
    running = threading.Event()
    first = []

    def mark(i):
        ran[i] += 1
        counter.tick()

    def producer():
        pin(producer_cpu)  # a new thread inherits its creator's CPUs
        running.wait()  # time the flood, not the thread's start
        first.append(time.perf_counter_ns())
        post = loop.call_soon_threadsafe
        for i in range(n):
            post(mark, i)

    thread = threading.Thread(target=producer)
    thread.start()
    loop.call_soon(running.set)
    loop.run_forever()
    thread.join()
    if counter.count != n or any(v != 1 for v in ran):
        fail("flood: a callback did not run exactly once")
    return (counter.last_ns - first[0]) / n


def row(name, samples):
    span = f"{min(samples):.1f}–{max(samples):.1f}"
    print(f"  {name:<28} {statistics.median(samples):12.1f}   {span}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uvloop", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--cpus", help="LOOP,PRODUCER: pin the loop's thread and the flood's producer")
    args = parser.parse_args()
    if args.repeat < 1 or args.n < 2:
        parser.error("--repeat and --n must be positive")
    loop_cpu = producer_cpu = None
    if args.cpus:
        try:
            loop_cpu, producer_cpu = (int(c) for c in args.cpus.split(","))
        except ValueError:
            parser.error("--cpus takes LOOP,PRODUCER")
    pin(loop_cpu)  # every loop below runs on this thread
    if args.uvloop:
        import uvloop

        new_loop, name = uvloop.new_event_loop, f"uvloop {uvloop.__version__}"
    else:
        import platform

        new_loop, name = asyncio.new_event_loop, f"asyncio (Python {platform.python_version()})"
    pinning = f"loop on CPU {loop_cpu}, producer on CPU {producer_cpu}" if args.cpus else "not pinned"
    print(f"{name} micro: n = {args.n}, {args.repeat} repeats, {pinning}", flush=True)
    delays = delays_ns(args.n)
    results = {"call_soon+run": [], "timers total CPU/timer": [], "threadsafe flood/callback": []}
    # One loop per workload, run 0 warms up: as core_bench.
    for key, work in (("call_soon+run", lambda loop: bench_call_soon(loop, args.n)),
                      ("timers total CPU/timer", lambda loop: bench_timers(loop, delays)),
                      ("threadsafe flood/callback", lambda loop: bench_flood(loop, args.n, producer_cpu))):
        loop = new_loop()
        for r in range(args.repeat + 1):
            value = work(loop)
            if r:
                results[key].append(value)
        loop.close()
    print(f"\n  {'benchmark':<28} {'median ns/op':>12}   min–max")
    for key, samples in results.items():
        row(key, samples)


if __name__ == "__main__":
    main()
