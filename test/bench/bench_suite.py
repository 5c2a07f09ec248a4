#!/usr/bin/env python3
"""test/bench/bench_suite.py — evloop side by side with the event loops people
would pick instead: one command that builds the peers, runs every figure and
writes them all to a JSON file (test/bench/chart.py draws it).

Echo servers (test/bench/peers/): a bare-epoll floor, evloop (Protocol and
BufferedProtocol), libuv (uv_try_write, and the textbook version), libev,
libevent, standalone Asio, asyncio and uvloop; each is `<server> --port 0`,
prints "port N" and echoes until SIGTERM. Four parts, each skippable:

 1. echo: test/bench/echo_client (plain epoll, verifies every byte) against
    each server, 10 connections ping-pong, 1 / 10 / 100 KiB; interleaved
    (every server once per round, A B C ... A B C ...) so that the machine's
    drift touches all alike; server pinned to one CPU, client to another.
    Per run: round trips/s, p50/p99, and the server's own CPU time per round
    trip (its on-CPU nanoseconds from /proc/PID/task/*/schedstat, read before
    the client starts and after it ends, over every round trip the client
    made, warm-up included; each server has first served one connection that
    came and went, see warm_up()). A fixed busy loop probes the CPU speed before
    each run: this VM's vCPUs switch between a fast state and one about 1.7x
    slower for minutes at a time, so the tables use only the runs whose probe
    is within --fast-margin (15 %) of the best probe, and say how many were slow.
 2. syscalls: `strace -c -f -p PID` on each server over a fixed number of
    round trips (echo_client --round-trips), per round trip: read/recv,
    write/send, epoll_wait, epoll_ctl. strace slows the server, so more events
    gather per epoll_wait than at full speed: the epoll_wait figure is a
    lower bound, the read and write ones are exact.
 3. idle memory: 5,000 connections, each having echoed one byte (so the
    server has accepted and set it up), then idle; the growth of the server's
    anonymous RSS (RssAnon) and of VmRSS, per connection.
 4. micro: test/bench/core_bench beside the nearest equivalents on libuv,
    libev (test/bench/peers/{uv,ev}_micro.c) and asyncio, uvloop
    (test/bench/peers/py_micro.py): call_soon + run, timers, threadsafe flood.
    Each program's loop thread pinned to the server's CPU, the flood's
    producer thread to the client's (--cpus), the same for every program.

Missing packages (libuv1-dev libev-dev libevent-dev libasio-dev python3-uvloop
strace pkg-config) are installed with apt-get when root on Debian/Ubuntu;
otherwise the suite says what to install and skips what needs them.

  python3 test/bench/bench_suite.py --build build/g++     (after `make lib`
      and build/g++/bench/{echo_client,core_bench}; about 7 minutes on 2 CPUs:
      echo ~4, syscalls ~1, memory ~0.3, micro ~1.5, building the peers ~0.5)
  ... --quick                 a smoke run: every part, tiny counts (under a minute)
  ... --only echo,memory      some parts; --servers epoll,evloop,libuv: some servers
Output: tables on stdout; every figure, the machine and the command in
build/bench/results.json (--json). Read first: test/bench/echo_client.cpp.
"""
import argparse
import datetime
import json
import os
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from bench_peers import FLOOR, PEERS, PEERS_SRC, PYTHON, REPO, Server, build_micro, build_peers, \
    ensure_packages, evloop_compile_line, live_processes, log, machine_info

PARTS = ("echo", "syscalls", "memory", "micro")

# Micro programs beside core_bench: row names shared with core_bench's table.
MICRO_ROWS = ["call_soon+run", "timers total CPU/timer", "threadsafe flood/callback"]
MICRO_ROW = re.compile(r"^  (?P<name>\S.*?)\s+(?P<median>[0-9.]+)\s+(?P<min>[0-9.]+)–(?P<max>[0-9.]+)")


def fail(text):
    sys.exit(f"bench_suite.py: FAILED: {text}")


PARSABLE = re.compile(r"rtps=(?P<rtps>[0-9.]+) mibps=(?P<mibps>[0-9.]+) p50_us=(?P<p50>[0-9.]+) "
                      r"p99_us=(?P<p99>[0-9.]+) total_round_trips=(?P<total>\d+)")


def run_client(client, port, size, connections, cpu, timing):
    command = [client, "--port", str(port), "--size", str(size), "--connections", str(connections), "--parsable"]
    command += timing + (["--cpu", str(cpu)] if cpu is not None else [])
    out = subprocess.run(command, capture_output=True, text=True, timeout=300)
    match = PARSABLE.search(out.stdout)
    if out.returncode != 0 or not match:
        raise RuntimeError(f"echo_client failed: {(out.stderr or out.stdout).strip()[-500:]}")
    figures = {k: float(v) for k, v in match.groupdict().items()}
    figures["total"] = int(figures["total"])
    return figures


def warm_up(port, size):
    """One connection that echoes one message and goes, before anything is measured.

    A long-running server has seen connections come and go, and some need
    that to reach their steady state: a fresh asyncio server's 256 KiB recv
    buffer is mmap'd, shrunk with mremap and munmap'd on every read (~100 µs
    per round trip here) until a first connection's EOF frees one whole,
    after which glibc raises its mmap threshold and serves it from the heap."""
    message = bytes(range(256)) * (size // 256) + bytes(size % 256)
    sent = got = 0
    deadline = time.monotonic() + 10
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.setblocking(False)  # send and receive together: a big message fills both ways at once
        while got < size:
            writable = [s] if sent < size else []
            readable, writable, _ = select.select([s], writable, [], max(0.0, deadline - time.monotonic()))
            if not readable and not writable:
                raise RuntimeError("the warm-up message was not echoed within 10 s")
            if writable:
                sent += s.send(message[sent:sent + 65536])
            if readable:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("the warm-up connection was closed")
                got += len(chunk)
    time.sleep(0.02)  # the server reads the EOF and closes its side


def probe_cpu(cpu):
    """ns for a fixed busy loop on `cpu` (best of 5): the CPU's speed state now."""
    old = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    best = None
    try:
        for _ in range(5):
            t0 = time.perf_counter_ns()
            x = 0
            for i in range(100_000):
                x += i
            elapsed = time.perf_counter_ns() - t0
            best = elapsed if best is None else min(best, elapsed)
    finally:
        os.sched_setaffinity(0, old)
    return best


def pick_cpus():
    usable = sorted(os.sched_getaffinity(0))
    return (usable[0], usable[1]) if len(usable) >= 2 else (None, None)


def size_label(size):
    return f"{size // 1024} KiB" if size % 1024 == 0 else f"{size} B"


def stat(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


# ---- 1. echo ------------------------------------------------------------------------


def run_echo(peers, args, client, cpus):
    server_cpu, client_cpu = cpus
    runs, broken = [], {}
    timing = ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    log(f"\n== echo: {args.connections} connections ping-pong, {args.rounds} interleaved rounds of "
        f"{args.seconds:g} s (+{args.warmup:g} s warm-up) per server and size; "
        + (f"server on CPU {server_cpu}, client on CPU {client_cpu}" if server_cpu is not None
           else "one CPU: server and client share it"))
    for size in args.sizes:
        for r in range(1, args.rounds + 1):
            line = []
            for p in peers:
                if p.name in broken:
                    continue
                probe = probe_cpu(server_cpu)
                try:
                    server = Server(p, server_cpu)
                    try:
                        warm_up(server.port, size)
                        before = server.cpu_ns()
                        f = run_client(client, server.port, size, args.connections, client_cpu, timing)
                        after = server.cpu_ns()
                        if not server.alive():
                            raise RuntimeError(f"died during the run: {server.error_text()}")
                    finally:
                        server.stop()
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    broken[p.name] = f"{size_label(size)}, round {r}: {e}"
                    log(f"  {p.name}: FAILED ({broken[p.name]}); left out from here on")
                    continue
                cpu_us = (after - before) / 1e3 / f["total"]
                runs.append({"server": p.name, "size": size, "round": r, "probe_ns": probe, "rtps": f["rtps"],
                             "mibps": f["mibps"], "p50_us": f["p50"], "p99_us": f["p99"],
                             "total_round_trips": f["total"], "server_cpu_ns": after - before,
                             "cpu_us_per_rt": cpu_us})
                line.append(f"{p.name} {f['rtps'] / 1e3:.0f}k {cpu_us:.1f}us")
            log(f"  {size_label(size)} round {r}/{args.rounds}: " + ", ".join(line))
    return runs, broken


def summarize_echo(runs, peers, sizes, margin):
    probes = [run["probe_ns"] for run in runs]
    best = min(probes) if probes else None
    limit = best * (1 + margin) if best else None
    for run in runs:
        run["fast"] = run["probe_ns"] <= limit
    summary = {}
    for size in sizes:
        rows = {}
        for p in peers:
            mine = [run for run in runs if run["server"] == p.name and run["size"] == size]
            if not mine:
                continue
            fast = [run for run in mine if run["fast"]]
            used = fast or mine  # all slow: say so rather than print nothing
            rows[p.name] = {
                "rtps": stat([run["rtps"] for run in used]),
                "cpu_us_per_rt": stat([run["cpu_us_per_rt"] for run in used]),
                "p50_us": statistics.median(run["p50_us"] for run in used),
                "p99_us": statistics.median(run["p99_us"] for run in used),
                "mibps": statistics.median(run["mibps"] for run in used),
                "fast_runs": len(fast), "slow_runs": len(mine) - len(fast), "all_slow": not fast,
            }
        floor = rows.get(FLOOR)
        for row in rows.values():
            row["rtps_vs_floor"] = row["rtps"]["median"] / floor["rtps"]["median"] if floor else None
            row["cpu_vs_floor"] = row["cpu_us_per_rt"]["median"] / floor["cpu_us_per_rt"]["median"] if floor else None
        summary[str(size)] = rows
    return {"best_probe_ns": best, "fast_margin": margin, "fast_limit_ns": limit, "by_size": summary,
            "slow_runs": sum(1 for run in runs if not run["fast"]), "runs_total": len(runs)}


def print_echo(summary, peers):
    labels = {p.name: p.label for p in peers}
    log(f"\n== echo results: medians of the fast-state runs (probe within {summary['fast_margin'] * 100:.0f} % "
        f"of the best, {summary['best_probe_ns'] / 1e6:.2f} ms); {summary['slow_runs']} of "
        f"{summary['runs_total']} runs were slow and left out")
    log(f"{'size':<7} {'server':<24} {'round trips/s':>13} {'[min-max]':>17} {'÷ floor':>7} "
        f"{'CPU µs/rt':>9} {'[min-max]':>13} {'÷ floor':>7} {'p50 µs':>7} {'p99 µs':>7} {'fast':>5}")
    for size, rows in summary["by_size"].items():
        for name, row in rows.items():
            rt, cpu = row["rtps"], row["cpu_us_per_rt"]
            fast = f"{row['fast_runs']}/{row['fast_runs'] + row['slow_runs']}" + ("!" if row["all_slow"] else "")
            log(f"{size_label(int(size)):<7} {labels[name]:<24} {rt['median']:13.0f} "
                f"{'[%.0f-%.0f]' % (rt['min'], rt['max']):>17} {fmt(row['rtps_vs_floor'], 7, 2)} "
                f"{cpu['median']:9.2f} {'[%.1f-%.1f]' % (cpu['min'], cpu['max']):>13} "
                f"{fmt(row['cpu_vs_floor'], 7, 2)} {row['p50_us']:7.1f} {row['p99_us']:7.1f} {fast:>5}")
    if any(row["all_slow"] for rows in summary["by_size"].values() for row in rows.values()):
        log("  (a '!' after fast: every run of that row was slow; its figures are from the slow runs)")


def fmt(value, width, decimals):
    return f"{'n/a':>{width}}" if value is None else f"{value:{width}.{decimals}f}"


# ---- 2. syscalls -----------------------------------------------------------------------

SYSCALL_GROUPS = {
    "read": {"read", "recvfrom", "recvmsg", "readv", "recv", "recvmmsg"},
    "write": {"write", "sendto", "sendmsg", "writev", "send", "sendmmsg"},
    "epoll_wait": {"epoll_wait", "epoll_pwait", "epoll_pwait2"},
    "epoll_ctl": {"epoll_ctl"},
}


def parse_strace_summary(text):
    counts = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 5 or not re.match(r"^[0-9.]+$", words[0]) or words[-1] == "total":
            continue
        counts[words[-1]] = counts.get(words[-1], 0) + int(words[3])
    return counts


def strace_round_trips(args, size):
    """--strace-round-trips up to 10 KiB, fewer above (a traced syscall costs ~35 µs here, and libevent
    makes 128 per round trip at 100 KiB): the same number of bytes as 10 KiB messages."""
    return max(100, min(args.strace_round_trips, args.strace_round_trips * 10240 // size))


def strace_one(p, size, args, client, cpus):
    server_cpu, client_cpu = cpus
    server = Server(p, server_cpu)
    summary_file = tempfile.NamedTemporaryFile(prefix="bench-strace-", suffix=".txt", delete=False)
    summary_file.close()
    tracer = None
    try:
        warm_up(server.port, size)
        tracer = subprocess.Popen(["strace", "-c", "-f", "-o", summary_file.name, "-p", str(server.proc.pid)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        live_processes.append(tracer)
        # strace says "Process N attached" once it traces: only then start counting.
        seen, deadline = b"", time.monotonic() + 10
        while b"attached" not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([tracer.stderr], [], [], left)[0]:
                raise RuntimeError(f"strace did not attach: {seen.decode(errors='replace')}")
            chunk = os.read(tracer.stderr.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"strace exited: {seen.decode(errors='replace')}")
            seen += chunk
        timing = ["--warmup", "0", "--round-trips", str(strace_round_trips(args, size))]
        f = run_client(client, server.port, size, args.connections, client_cpu, timing)
        tracer.send_signal(signal.SIGINT)
        tracer.communicate(timeout=30)
        with open(summary_file.name) as fh:
            counts = parse_strace_summary(fh.read())
    finally:
        if tracer and tracer.poll() is None:
            tracer.kill()
            tracer.wait()
        if tracer in live_processes:
            live_processes.remove(tracer)
        server.stop()
        os.unlink(summary_file.name)
    total = f["total"]
    grouped = {g: sum(counts.get(s, 0) for s in names) / total for g, names in SYSCALL_GROUPS.items()}
    known = set().union(*SYSCALL_GROUPS.values())
    grouped["other"] = sum(n for s, n in counts.items() if s not in known) / total
    return {"round_trips": total, "per_rt": grouped, "counts": counts}


def run_syscalls(peers, args, client, cpus):
    log(f"\n== syscalls per round trip: strace -c -f over "
        + ", ".join(f"{strace_round_trips(args, s)} round trips at {size_label(s)}" for s in args.sizes) + " "
        f"({args.connections} connections; under strace more events gather per epoll_wait, so that column "
        "is a lower bound)")
    log(f"{'size':<7} {'server':<24} {'read':>6} {'write':>6} {'epoll_wait':>10} {'epoll_ctl':>9} {'other':>6}  "
        "(the others, ≥ 0.05 per round trip)")
    results = {}
    for size in args.sizes:
        results[str(size)] = {}
        for p in peers:
            try:
                res = strace_one(p, size, args, client, cpus)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                log(f"{size_label(size):<7} {p.label:<24} FAILED: {e}")
                results[str(size)][p.name] = {"error": str(e)}
                continue
            results[str(size)][p.name] = res
            g = res["per_rt"]
            known = set().union(*SYSCALL_GROUPS.values())
            others = sorted(((n / res["round_trips"], s) for s, n in res["counts"].items() if s not in known),
                            reverse=True)
            detail = ", ".join(f"{s} {v:.2f}" for v, s in others if v >= 0.05)
            log(f"{size_label(size):<7} {p.label:<24} {g['read']:6.2f} {g['write']:6.2f} {g['epoll_wait']:10.2f} "
                f"{g['epoll_ctl']:9.2f} {g['other']:6.2f}  {detail}")
    return results


# ---- 3. idle memory ---------------------------------------------------------------------


def open_idle(port, count, batch=100):
    """`count` connections that have each echoed one byte; the caller closes them."""
    socks = []
    try:
        while len(socks) < count:
            group = []
            for _ in range(min(batch, count - len(socks))):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                socks.append(s)
                group.append(s)
                s.sendall(b"x")
            for s in group:
                if s.recv(1) != b"x":
                    raise RuntimeError("a connection did not echo its byte")
    except (OSError, RuntimeError):
        close_all(socks)
        raise
    return socks


def close_all(socks):
    # A reset, not a FIN: no TIME_WAIT left behind for the next server's run.
    linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")
    for s in socks:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        except OSError:
            pass
        s.close()


def run_memory(peers, args, cpus):
    count = args.idle
    log(f"\n== idle memory: {count} connections, each having echoed one byte; growth of the server's RSS "
        "per connection (RssAnon: anonymous memory, what the program allocated; VmRSS: all of it)")
    log(f"{'server':<24} {'RssAnon B/conn':>14} {'VmRSS B/conn':>12} {'RssAnon before':>14} {'after':>10}")
    results = {}
    for p in peers:
        try:
            server = Server(p, cpus[0])
            warm = []
            try:
                warm_up(server.port, 1024)
                warm = open_idle(server.port, 1)  # what the first connection sets up once is not per connection
                before = server.memory_kb()
                socks = open_idle(server.port, count)
                after = server.memory_kb()
                close_all(socks)
            finally:
                close_all(warm)
                server.stop()
        except (RuntimeError, OSError) as e:
            log(f"{p.label:<24} FAILED: {e}")
            results[p.name] = {"error": str(e)}
            continue
        anon = (after["RssAnon"] - before["RssAnon"]) * 1024 / count
        rss = (after["VmRSS"] - before["VmRSS"]) * 1024 / count
        results[p.name] = {"connections": count, "before_kb": before, "after_kb": after,
                           "rss_anon_bytes_per_conn": anon, "vm_rss_bytes_per_conn": rss}
        log(f"{p.label:<24} {anon:14.0f} {rss:12.0f} {before['RssAnon']:11d} kB {after['RssAnon']:7d} kB")
    return results


# ---- 4. micro -----------------------------------------------------------------------------


def run_micro_program(label, command):
    out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    rows = {}
    for line in out.stdout.splitlines():
        m = MICRO_ROW.match(line)
        if m and m["name"] in MICRO_ROWS:
            rows[m["name"]] = {"median": float(m["median"]), "min": float(m["min"]), "max": float(m["max"])}
    if out.returncode != 0 or not rows:
        raise RuntimeError(f"{label}: exit {out.returncode}: {(out.stderr or out.stdout).strip()[-500:]}")
    return rows, out.stdout


def run_micro(args, core_bench, programs, python_loops, cpus, best_probe):
    # Every program pins its loop's thread to the server's CPU and the flood's
    # producer thread to the client's, itself (a thread each: taskset cannot).
    pin = ["--cpus", f"{cpus[0]},{cpus[1]}"] if cpus[0] is not None else []
    counts = ["--repeat", str(args.micro_repeat), "--n", str(args.micro_n)] + pin
    runs = [("evloop", [core_bench] + counts)] if core_bench else []
    for name in ("libuv", "libev"):
        if name in programs:
            runs.append((name, programs[name] + counts))
    script = os.path.join(PEERS_SRC, "py_micro.py")
    py_n = max(1, args.micro_n // 10)  # Python is ~100x slower per operation: keep each run short
    py_counts = ["--repeat", str(args.micro_repeat), "--n", str(py_n)] + pin
    if "asyncio" in python_loops:
        runs.append(("asyncio", [PYTHON, script] + py_counts))
    if "uvloop" in python_loops:
        runs.append(("uvloop", [PYTHON, script, "--uvloop"] + py_counts))
    log(f"\n== micro: ns per operation, {args.micro_rounds} interleaved rounds, each the median of "
        f"{args.micro_repeat} runs; n = {args.micro_n} (Python: {py_n}); "
        + (f"loop thread on CPU {cpus[0]}, the flood's producer thread on CPU {cpus[1]}" if pin else "not pinned"))
    samples, results = {label: {row: [] for row in MICRO_ROWS} for label, _ in runs}, {}
    failed = set()
    for r in range(1, args.micro_rounds + 1):
        for label, command in runs:
            if label in failed:
                continue
            probe = probe_cpu(cpus[0])
            try:
                rows, _ = run_micro_program(label, command)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                log(f"  {label}: FAILED: {e}")
                failed.add(label)
                continue
            for name, row in rows.items():
                samples[label][name].append({**row, "probe_ns": probe, "round": r})
            log(f"  round {r}/{args.micro_rounds} {label}: " +
                ", ".join(f"{n} {rows[n]['median']:.1f}" for n in MICRO_ROWS if n in rows))
    # The fast-state rule of the echo part, against the best probe of the whole suite.
    probes = [v["probe_ns"] for rows in samples.values() for values in rows.values() for v in values]
    best = min(probes + ([best_probe] if best_probe else []), default=None)
    slow = 0
    for label, command in runs:
        results[label] = {"command": command, "rows": {}}
        for name in MICRO_ROWS:
            values = samples[label][name]
            fast = [v for v in values if v["probe_ns"] <= best * (1 + args.fast_margin)]
            slow += len(values) - len(fast) if name == MICRO_ROWS[0] else 0
            if values:
                results[label]["rows"][name] = {"median": statistics.median(v["median"] for v in fast or values),
                                                "fast_runs": len(fast), "runs": values}
    log(f"\n  ns per operation, medians of the fast-state rounds ({slow} slow program runs left out, "
        "unless a program had no fast one)")
    log(f"  {'':<28}" + "".join(f"{label:>12}" for label, _ in runs))
    for name in MICRO_ROWS:
        cells = []
        for label, _ in runs:
            row = results[label]["rows"].get(name)
            cells.append(fmt(row["median"] if row else None, 12, 1))
        log(f"  {name:<28}" + "".join(cells))
    log("  (what each peer's row measures: the opening comments of test/bench/peers/{uv,ev}_micro.c, py_micro.py)")
    return results


# ---- main ---------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(REPO, "build", "g++"),
                        help="evloop's build folder: libevloop.a, bench/echo_client, bench/core_bench (build/g++)")
    parser.add_argument("--client", help="echo_client (default: BUILD/bench/echo_client)")
    parser.add_argument("--core-bench", help="core_bench (default: BUILD/bench/core_bench)")
    parser.add_argument("--peers-dir", default=os.path.join(REPO, "build", "bench-peers"),
                        help="where the peers are built (build/bench-peers)")
    parser.add_argument("--json", default=os.path.join(REPO, "build", "bench", "results.json"))
    parser.add_argument("--only", help=f"comma-separated parts among {','.join(PARTS)} (default: all)")
    parser.add_argument("--servers", help="comma-separated servers (default: all): " + ",".join(p.name for p in PEERS))
    parser.add_argument("--rounds", type=int, default=5, help="echo rounds (5)")
    parser.add_argument("--seconds", type=float, default=1.0, help="echo: measured seconds per run (1.0)")
    parser.add_argument("--warmup", type=float, default=0.3, help="echo: warm-up seconds per run (0.3)")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--sizes", default="1024,10240,102400", help="message sizes in bytes")
    parser.add_argument("--fast-margin", type=float, default=0.15,
                        help="a run is fast when its probe is within this of the best (0.15)")
    parser.add_argument("--strace-round-trips", type=int, default=10000, help="syscalls: round trips traced (10000; fewer above 10 KiB)")
    parser.add_argument("--idle", type=int, default=5000, help="memory: idle connections (5000)")
    parser.add_argument("--micro-rounds", type=int, default=2)
    parser.add_argument("--micro-repeat", type=int, default=3)
    parser.add_argument("--micro-n", type=int, default=1_000_000, help="micro: operations per workload (C)")
    parser.add_argument("--cc", default=os.environ.get("CC", "cc"))
    parser.add_argument("--cxx", default=os.environ.get("CXX", "c++"), help="for asio_echo.cpp")
    parser.add_argument("--no-install", action="store_true", help="never run apt-get")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: --rounds 1 --seconds 0.3 --warmup 0.1 --strace-round-trips 1000 "
                             "--idle 500 --micro-rounds 1 --micro-repeat 1 --micro-n 100000")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.warmup, args.strace_round_trips = 1, 0.3, 0.1, 1000
        args.idle, args.micro_rounds, args.micro_repeat, args.micro_n = 500, 1, 1, 100_000
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.parts = set(args.only.split(",")) if args.only else set(PARTS)
    if args.parts - set(PARTS):
        parser.error(f"--only: unknown part {', '.join(args.parts - set(PARTS))}")
    if min([args.rounds, args.connections, args.strace_round_trips, args.idle, args.micro_rounds,
            args.micro_repeat, args.micro_n] + args.sizes) < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("counts, sizes and --seconds must be positive")
    args.client = args.client or os.path.join(args.build, "bench", "echo_client")
    args.core_bench = args.core_bench or os.path.join(args.build, "bench", "core_bench")
    return args


def raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def main():
    args = parse_args()
    started = time.time()
    peers = PEERS
    if args.servers:
        names = args.servers.split(",")
        unknown = set(names) - {p.name for p in PEERS}
        if unknown:
            fail(f"unknown server {', '.join(sorted(unknown))}")
        peers = [p for p in PEERS if p.name in names]
    if "echo" in args.parts or "syscalls" in args.parts:
        if not os.access(args.client, os.X_OK):
            fail(f"{args.client} not found: make CXX=... {os.path.relpath(args.client, REPO)}, or pass --client")
    # The servers inherit the limit: the memory part needs 5,000 fds on each side.
    limit = raise_fd_limit(args.idle + 1000)
    if "memory" in args.parts and limit < args.idle + 100:
        args.idle = max(1, limit - 100)
        log(f"RLIMIT_NOFILE is {limit}: only {args.idle} idle connections")

    log(f"bench_suite.py: {shlex.join(sys.argv)}")
    missing = ensure_packages(peers, "syscalls" in args.parts, not args.no_install)
    evloop_cxx = evloop_compile_line(args.build)[0]
    log("building the peers into " + os.path.relpath(args.peers_dir, os.getcwd()))
    build_peers(peers, args.peers_dir, args.build, args.cc, args.cxx)
    for p in peers:
        if p.skipped:
            log(f"  skipped {p.name}: {p.skipped}")
    ready = [p for p in peers if not p.skipped]
    cpus = pick_cpus()
    result = {
        "command": sys.argv, "cwd": os.getcwd(), "python": PYTHON,
        "started_utc": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(),
        "machine": machine_info(evloop_cxx, args.cc, args.cxx),
        "settings": {k: v for k, v in vars(args).items() if k != "parts"} | {"parts": sorted(args.parts),
                                                                            "server_cpu": cpus[0],
                                                                            "client_cpu": cpus[1]},
        "servers": {p.name: p.to_json() for p in peers},
        "missing_packages": missing,
    }

    def save():
        result["duration_s"] = time.time() - started
        result["machine"]["load_average_at_end"] = os.getloadavg()[0]
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)

    durations = result["part_seconds"] = {}

    def timed(part, work):
        t0 = time.time()
        work()
        durations[part] = round(time.time() - t0, 1)
        log(f"({part}: {durations[part]:.0f} s)")
        save()

    def echo():
        runs, broken = run_echo(ready, args, args.client, cpus)
        summary = summarize_echo(runs, ready, args.sizes, args.fast_margin)
        result["echo"] = {"runs": runs, "failed": broken, **summary}
        if runs:
            print_echo(summary, ready)

    def syscalls():
        if shutil.which("strace"):
            result["syscalls"] = run_syscalls(ready, args, args.client, cpus)
        else:
            log("\n== syscalls: skipped, strace is not installed (apt-get install strace)")

    def memory():
        result["idle_memory"] = run_memory(ready, args, cpus)

    def micro():
        core_bench = args.core_bench if os.access(args.core_bench, os.X_OK) else None
        if not core_bench:
            log(f"micro: {args.core_bench} not built: evloop's column is left out")
        names = {p.name for p in ready}  # the micro table has a column for each server chosen
        programs = build_micro(args.peers_dir, args.cc, names)
        best_probe = result.get("echo", {}).get("best_probe_ns")
        result["micro"] = run_micro(args, core_bench, programs, names & {"asyncio", "uvloop"}, cpus, best_probe)

    for part, work in (("echo", echo), ("syscalls", syscalls), ("memory", memory), ("micro", micro)):
        if part in args.parts:
            timed(part, work)
    save()
    log(f"\nbench_suite.py: done in {time.time() - started:.0f} s; every figure in {args.json}")


if __name__ == "__main__":
    try:
        main()
    finally:
        for proc in live_processes:
            if proc.poll() is None:
                proc.kill()
