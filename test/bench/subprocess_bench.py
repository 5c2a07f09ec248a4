#!/usr/bin/env python3
"""test/bench/subprocess_bench.py — subprocess_bench.cpp's workloads on asyncio
and uvloop, and the driver of `make bench-subprocess`, which compares them.

As a benchmark (`--loop asyncio|uvloop`) it starts /bin/true the way
test/bench/subprocess_bench.cpp does (read its opening comment), with
asyncio.create_subprocess_exec and proc.wait() (plus reading stdout to EOF in
the pipe row), and prints the same rows in the same format.

As the driver (`--compare path/to/subprocess_bench`) it runs evloop, asyncio
and uvloop in turn for several rounds (evloop, asyncio, uvloop, evloop, ...)
and prints each row's median over the rounds with the ratio evloop /
asyncio. Interleaved because this machine's speed drifts: a drift then
touches all of them alike.

Run: `make bench-subprocess`, or by hand:
  python3 test/bench/subprocess_bench.py --loop asyncio [--repeat R] [--count N]
  python3 test/bench/subprocess_bench.py --compare build/g++/bench/subprocess_bench [--rounds K]
Layer: test. Read first: test/bench/subprocess_bench.cpp.
"""
import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time

ROWS = ["serial, stdio devnull", "serial, stdout pipe", "16 in flight, devnull"]


async def one(stdout_pipe):
    out = asyncio.subprocess.PIPE if stdout_pipe else asyncio.subprocess.DEVNULL
    proc = await asyncio.create_subprocess_exec(
        "/bin/true", stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.DEVNULL)
    if stdout_pipe:
        await proc.stdout.read()
    await proc.wait()


async def run(count, flying, stdout_pipe):
    start = time.perf_counter()
    left = count

    async def worker():
        nonlocal left
        while left > 0:
            left -= 1
            await one(stdout_pipe)

    await asyncio.gather(*(worker() for _ in range(flying)))
    return count / (time.perf_counter() - start)


def benchmark(kind, repeat, count):
    if kind == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    print(f"{kind} subprocess_bench: {count} spawns of /bin/true per run, {repeat} runs, Python {sys.version.split()[0]}")
    samples = {row: [] for row in ROWS}
    for _ in range(repeat):
        for row, flying, pipe in zip(ROWS, (1, 1, 16), (False, True, False)):
            samples[row].append(loop.run_until_complete(run(count, flying, pipe)))
    loop.close()
    print(f"\n  {'workload':<28} {'spawns/s':>12}   {'min–max':<17}")
    for row in ROWS:
        values = samples[row]
        print(f"  {row:<28} {statistics.median(values):12.1f}   {min(values):.1f}–{max(values):.1f}")


ROW = re.compile(r"^  (?P<name>\S.*?)\s+(?P<median>[0-9.]+)\s+[0-9.]+–")


def run_one(label, command):
    print(f"\n---- {label}: {' '.join(command)}", flush=True)
    figures = {}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            match = ROW.match(line)
            if match and match["name"] in ROWS:
                figures[match["name"]] = float(match["median"])
    if proc.returncode != 0:
        sys.exit(f"subprocess_bench.py: {label} failed (exit {proc.returncode})")
    return figures


def compare(binary, rounds, repeat, count):
    python = sys.executable
    kinds = ["asyncio"]
    try:
        import uvloop  # noqa: F401
        kinds.append("uvloop")
    except ImportError:
        print("subprocess_bench.py: uvloop not installed (Debian: python3-uvloop); comparing with asyncio only")
    results = {label: [] for label in ["evloop"] + kinds}
    for r in range(rounds):
        results["evloop"].append(run_one(f"round {r + 1}/{rounds} evloop",
                                         [binary, "--repeat", str(repeat), "--count", str(count)]))
        for kind in kinds:
            results[kind].append(run_one(f"round {r + 1}/{rounds} {kind}",
                                         [python, __file__, "--loop", kind, "--repeat", str(repeat), "--count", str(count)]))

    def median(label, row):
        values = [figures[row] for figures in results[label] if row in figures]
        return statistics.median(values) if values else None

    print(f"\nmedians over {rounds} interleaved rounds (each the median of {repeat} runs of {count} spawns), spawns/s")
    header = f"  {'workload':<28} {'evloop':>10}" + "".join(f" {k:>10}" for k in kinds) + f" {'evloop/asyncio':>15}"
    print(header)
    for row in ROWS:
        ev = median("evloop", row)
        others = [median(k, row) for k in kinds]
        ratio = ev / others[0] if ev and others[0] else None
        cells = "".join(f" {v:10.0f}" if v else f" {'-':>10}" for v in others)
        print(f"  {row:<28} {ev or 0:10.0f}{cells} {ratio or 0:14.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--loop", choices=["asyncio", "uvloop"])
    mode.add_argument("--compare", metavar="SUBPROCESS_BENCH")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    if args.loop:
        benchmark(args.loop, args.repeat, args.count)
    else:
        compare(args.compare, args.rounds, args.repeat, args.count)


if __name__ == "__main__":
    main()
