#!/usr/bin/env python3
"""test/bench/task_bench.py — task_bench.cpp's workloads on asyncio and uvloop,
and the driver of `make bench-tasks`, which compares the three.

As a benchmark (`--loop asyncio|uvloop`) it runs the workloads of
test/bench/task_bench.cpp (read its opening comment for what each one does)
on a Python loop, with smaller counts (Python is slower; the per-operation
figures are what compare), and prints the same rows in the same format.

As the driver (`--compare path/to/task_bench`) it runs evloop, asyncio and
uvloop in turn, several rounds (evloop, asyncio, uvloop, evloop, ...), and
prints each workload's median over the rounds side by side with the ratio
uvloop / evloop. Interleaved because this machine's speed drifts up to 2x
from one minute to the next and other builds may share it: a drift then
touches all three alike instead of whichever happened to run during it.

Run: `make bench-tasks`, or by hand:
  python3 test/bench/task_bench.py --loop asyncio [--repeat R] [--scale S]
  python3 test/bench/task_bench.py --compare build/g++-12/bench/task_bench [--rounds K]
uvloop comes from Debian's python3-uvloop, for /usr/bin/python3 (a python3
earlier in PATH, pyenv's say, does not see it).
Layer: test. Read first: test/bench/task_bench.cpp.
"""
import argparse
import asyncio
import os
import platform
import re
import statistics
import subprocess
import sys
import time

# Row names, shared with task_bench.cpp: the driver finds the figures by them.
WORKLOADS = [
    "task create+complete",
    "task handles dropped",
    "task batches of 1000",
    "co_await done future",
    "co_await child task",
    "run_in_executor serial",
    "run_in_executor 1000 flying",
]
# The figure the issue sets a target for: evloop >= 20x uvloop.
TARGET_WORKLOAD, TARGET_RATIO = "task create+complete", 20.0

BATCH_SIZE = 1000
IN_FLIGHT = 1000
ANSWER = 42

# Sizes, multiplied by --scale: smaller than task_bench.cpp's, so a run takes
# about as long; the figures are per operation.
sizes = {"tasks": 200_000, "awaits": 1_000_000, "serial": 5_000, "in_flight_total": 20_000}


# ---- the coroutines -----------------------------------------------------------------


async def answer(fut):
    return await fut


async def await_done_future(fut, m):
    total = 0
    for _ in range(m):
        total += await fut
    return total


async def child(v):
    return v


async def await_children(m):
    total = 0
    for _ in range(m):
        total += await child(1)
    return total


def one():
    return 1


async def executor_serial(loop, m):
    total = 0
    for _ in range(m):
        total += await loop.run_in_executor(None, one)
    return total


async def executor_in_flight(loop, count):
    total = 0
    for _ in range(0, count, IN_FLIGHT):
        batch = [loop.run_in_executor(None, one) for _ in range(IN_FLIGHT)]
        for f in batch:
            total += await f
    return total


def fail(what):
    sys.exit(f"task_bench.py: FAILED: {what}")


# ---- 1. task create+complete ----------------------------------------------------------


def bench_tasks_kept(loop, fut):
    """ns per task: (create, run, release, total), handles kept in a list."""
    n = sizes["tasks"]
    t0 = time.perf_counter_ns()
    tasks = [loop.create_task(answer(fut)) for _ in range(n)]
    t1 = time.perf_counter_ns()
    last = loop.run_until_complete(tasks[-1])
    t2 = time.perf_counter_ns()
    if last != ANSWER or any(t.result() != ANSWER for t in tasks):
        fail("tasks: a task did not finish with its result")
    t3 = time.perf_counter_ns()
    del tasks
    t4 = time.perf_counter_ns()
    return ((t1 - t0) / n, (t2 - t1) / n, (t4 - t3) / n, ((t2 - t0) + (t4 - t3)) / n)


def bench_tasks_dropped(loop, fut):
    n = sizes["tasks"]
    t0 = time.perf_counter_ns()
    for _ in range(n - 1):
        loop.create_task(answer(fut))
    last = loop.run_until_complete(loop.create_task(answer(fut)))
    t1 = time.perf_counter_ns()
    if last != ANSWER or asyncio.all_tasks(loop):
        fail("tasks dropped: a task is still pending")
    return (t1 - t0) / n


def bench_tasks_batched(loop, fut):
    batches = max(1, sizes["tasks"] // BATCH_SIZE)
    t0 = time.perf_counter_ns()
    for _ in range(batches):
        batch = [loop.create_task(answer(fut)) for _ in range(BATCH_SIZE)]
        if loop.run_until_complete(batch[-1]) != ANSWER:
            fail("tasks batched: the last task has no result")
        del batch
    t1 = time.perf_counter_ns()
    return (t1 - t0) / (batches * BATCH_SIZE)


# ---- 2, 3, 4. one task doing M operations -----------------------------------------------


def time_task(loop, coro, ops, expected, what):
    t0 = time.perf_counter_ns()
    total = loop.run_until_complete(loop.create_task(coro))
    t1 = time.perf_counter_ns()
    if total != expected:
        fail(what)
    return (t1 - t0) / ops


# ---- reporting ----------------------------------------------------------------------


def summarize(samples):
    return statistics.median(samples), min(samples), max(samples)


def print_detail(name, samples, unit):
    median, lo, hi = summarize(samples)
    print(f"  {name:<34} {median:10.1f}   {lo:.1f}–{hi:.1f} {unit}")


def print_row(name, samples):
    median, lo, hi = summarize(samples)
    span = f"{lo:.1f}–{hi:.1f}"
    print(f"  {name:<28} {median:12.1f}   {span:<17} {1e9 / median:14.0f}")


def new_loop(kind):
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_benchmark(kind, repeat):
    if kind == "uvloop":
        import uvloop

        version = f"uvloop {uvloop.__version__}"
    else:
        version = "asyncio"
    print(
        f"{kind} task_bench.py: {platform.python_implementation()} {platform.python_version()}, {version}, "
        f"tasks {sizes['tasks']}, awaits {sizes['awaits']}, executor {sizes['serial']} serial + "
        f"{sizes['in_flight_total']} in flight, {repeat} repeats",
        flush=True,
    )
    kept_create, kept_run, kept_release, kept_total, dropped, batched = [], [], [], [], [], []
    await_future, await_child, serial, parallel = [], [], [], []
    # One loop per workload, living across its runs; run 0 warms up (as task_bench.cpp).
    loop = new_loop(kind)
    fut = loop.create_future()
    fut.set_result(ANSWER)
    for r in range(repeat + 1):
        create, run, release, total = bench_tasks_kept(loop, fut)
        drop = bench_tasks_dropped(loop, fut)
        batch = bench_tasks_batched(loop, fut)
        if r == 0:
            continue
        kept_create.append(create)
        kept_run.append(run)
        kept_release.append(release)
        kept_total.append(total)
        dropped.append(drop)
        batched.append(batch)
        print(f"  run {r}/{repeat}: task create+complete {total:.1f} ns (dropped {drop:.1f}, batched {batch:.1f})",
              flush=True)
    loop.close()

    loop = new_loop(kind)
    fut = loop.create_future()
    fut.set_result(ANSWER)
    m = sizes["awaits"]
    for r in range(repeat + 1):
        f = time_task(loop, await_done_future(fut, m), m, m * ANSWER, "await future: wrong sum")
        c = time_task(loop, await_children(m), m, m, "await child: wrong sum")
        if r == 0:
            continue
        await_future.append(f)
        await_child.append(c)
        print(f"  run {r}/{repeat}: co_await done future {f:.2f} ns, co_await child task {c:.1f} ns", flush=True)
    loop.close()

    loop = new_loop(kind)
    s_count, p_count = sizes["serial"], sizes["in_flight_total"]
    for r in range(repeat + 1):
        s = time_task(loop, executor_serial(loop, s_count), s_count, s_count, "executor serial: wrong sum")
        p = time_task(loop, executor_in_flight(loop, p_count), p_count, p_count, "executor: wrong sum")
        if r == 0:
            continue
        serial.append(s)
        parallel.append(p)
        print(f"  run {r}/{repeat}: run_in_executor serial {s:.0f} ns, 1,000 in flight {p:.0f} ns", flush=True)
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()

    print("\ndetails                                  median   min–max")
    print_detail("tasks: create_task", kept_create, "ns/task")
    print_detail("tasks: run", kept_run, "ns/task")
    print_detail("tasks: release the handles", kept_release, "ns/task")
    print(f"\n  {'benchmark':<28} {'median ns/op':>12}   {'min–max':<17} {'ops/s':>14}")
    for name, samples in zip(WORKLOADS, [kept_total, dropped, batched, await_future, await_child, serial, parallel]):
        print_row(name, samples)


# ---- the driver ---------------------------------------------------------------------

ROW = re.compile(r"^  (?P<name>\S.*?)\s+(?P<median>[0-9.]+)\s+[0-9.]+–")


def run_one(label, command):
    """Runs one benchmark process, echoing its output; returns {workload: median ns/op}."""
    print(f"\n---- {label}: {' '.join(command)}", flush=True)
    figures = {}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            match = ROW.match(line)
            if match and match["name"] in WORKLOADS:
                figures[match["name"]] = float(match["median"])
    sys.stdout.flush()
    if proc.returncode != 0:
        sys.exit(f"task_bench.py: {label} failed (exit {proc.returncode})")
    return figures


def uvloop_missing_hint():
    try:
        import uvloop  # noqa: F401

        return None
    except ImportError:
        pass
    hint = f"uvloop is not importable by {sys.executable}: "
    if sys.executable.startswith("/usr/bin/"):
        return hint + "install it with `apt-get install python3-uvloop` (as root)"
    return hint + (f"run with Debian's python3 after `apt-get install python3-uvloop`, "
                   f"or install it for this one: `{sys.executable} -m pip install uvloop`")


def fmt(value, width, decimals, suffix=""):
    text = "n/a" if value is None else f"{value:.{decimals}f}{suffix}"
    return f"{text:>{width}}"


def compare(binary, rounds, repeat, scale):
    missing = uvloop_missing_hint()
    if missing:
        print(f"task_bench.py: {missing}; comparing with asyncio only", flush=True)
    script = os.path.abspath(__file__)
    common = ["--repeat", str(repeat)] + (["--scale", str(scale)] if scale != 1 else [])
    runs = [("evloop", [binary] + common), ("asyncio", [sys.executable, script, "--loop", "asyncio"] + common)]
    if not missing:
        runs.append(("uvloop", [sys.executable, script, "--loop", "uvloop"] + common))
    samples = {label: {w: [] for w in WORKLOADS} for label, _ in runs}
    for r in range(1, rounds + 1):
        for label, command in runs:
            for name, value in run_one(f"round {r}/{rounds}, {label}", command).items():
                samples[label][name].append(value)

    def median(label, name):
        values = samples.get(label, {}).get(name)
        return statistics.median(values) if values else None

    print(f"\nmedians over {rounds} interleaved rounds (each the median of {repeat} runs), ns per operation")
    print(f"  {'workload':<28} {'evloop':>10} {'asyncio':>10} {'uvloop':>10} {'uvloop/evloop':>14} "
          f"{'evloop ops/s':>14}")
    for name in WORKLOADS:
        ev, aio, uv = median("evloop", name), median("asyncio", name), median("uvloop", name)
        ratio = uv / ev if uv and ev else None
        print(f"  {name:<28} {fmt(ev, 10, 1)} {fmt(aio, 10, 1)} {fmt(uv, 10, 1)} {fmt(ratio, 14, 1, 'x')} "
              f"{fmt(1e9 / ev if ev else None, 14, 0)}")
    if median("uvloop", TARGET_WORKLOAD) is None:
        print(f"\ntarget {TARGET_WORKLOAD} >= {TARGET_RATIO:.0f}x uvloop: not measured ({missing})")
        return
    # The batched variant too: with N tasks alive at once, Python's figure
    # includes its cyclic GC walking them all and fresh arenas faulting in;
    # batches of 1,000 are the in-cache cost of a task on both sides.
    print(f"\ntarget {TARGET_WORKLOAD} >= {TARGET_RATIO:.0f}x uvloop:")
    for name in (TARGET_WORKLOAD, "task batches of 1000"):
        ratio = median("uvloop", name) / median("evloop", name)
        print(f"  {name:<28} {ratio:6.1f}x  {'met' if ratio >= TARGET_RATIO else 'MISSED'}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--loop", choices=["asyncio", "uvloop"], help="benchmark this loop")
    mode.add_argument("--compare", metavar="TASK_BENCH", help="interleave evloop's task_bench, asyncio, uvloop")
    parser.add_argument("--repeat", type=int, default=5, help="runs after the warm-up (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="--compare: rounds of the three (default 3)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every workload's count")
    args = parser.parse_args()
    if args.repeat < 1 or args.rounds < 1 or not args.scale > 0:
        parser.error("--repeat, --rounds and --scale must be positive")
    if args.compare:
        compare(args.compare, args.rounds, args.repeat, args.scale)
        return
    for key, minimum in (("tasks", BATCH_SIZE), ("awaits", 1), ("serial", 1), ("in_flight_total", IN_FLIGHT)):
        sizes[key] = max(minimum, int(sizes[key] * args.scale))
    sizes["tasks"] -= sizes["tasks"] % BATCH_SIZE  # whole batches
    sizes["in_flight_total"] -= sizes["in_flight_total"] % IN_FLIGHT
    run_benchmark(args.loop, args.repeat)


if __name__ == "__main__":
    main()
