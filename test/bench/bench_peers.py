"""test/bench/bench_peers.py — the peers of test/bench/bench_suite.py: which echo
servers there are (test/bench/peers/), the Debian packages they need (installed
when root), building them, and running one as a process that test/bench/
bench_suite.py can measure (its port, its CPU time, its memory). Also what the
results record about the machine. Imported by bench_suite.py only.
Layer: test. Read first: test/bench/bench_suite.py.
"""
import os
import platform
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS_SRC = os.path.join(REPO, "test", "bench", "peers")
# Debian's python3-uvloop serves this interpreter only.
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

live_processes = []  # servers and helpers to kill if the suite stops early


def log(text=""):
    print(text, flush=True)


class Peer:
    """One echo server: how to build it and how to run it."""

    def __init__(self, name, label, source, kind, debs=(), pkgconfig=(), libs=(), flags=(), args=(), binary=None):
        self.name, self.label, self.source, self.kind = name, label, source, kind
        self.debs, self.pkgconfig, self.libs, self.flags = list(debs), list(pkgconfig), list(libs), list(flags)
        self.args = list(args)
        self.binary = binary or os.path.splitext(source)[0]  # file name in the peers build folder
        self.command = None  # set once built
        self.skipped = None  # why not, when it cannot run

    def to_json(self):
        return {"label": self.label, "source": f"test/bench/peers/{self.source}", "command": self.command,
                "skipped": self.skipped}


# The floor first: the ratios are to it. Order is also the interleaving order.
PEERS = [
    Peer("epoll", "epoll (floor)", "epoll_echo.c", "c"),
    Peer("evloop", "evloop Protocol", "evloop_echo.cpp", "evloop"),
    Peer("evloop-buffered", "evloop BufferedProtocol", "evloop_echo.cpp", "evloop", args=["--buffered"]),
    Peer("libuv", "libuv (try_write)", "uv_echo.c", "c", debs=["libuv1-dev"], pkgconfig=["libuv"]),
    Peer("libuv-textbook", "libuv (textbook)", "uv_textbook_echo.c", "c", debs=["libuv1-dev"], pkgconfig=["libuv"]),
    Peer("libev", "libev", "ev_echo.c", "c", debs=["libev-dev"], libs=["-lev"]),
    Peer("libevent", "libevent (bufferevent)", "event_echo.c", "c", debs=["libevent-dev"], pkgconfig=["libevent"]),
    Peer("asio", "Asio (standalone)", "asio_echo.cpp", "c++", debs=["libasio-dev"],
         flags=["-std=c++17", "-DASIO_STANDALONE", "-pthread"]),
    Peer("asyncio", "asyncio", "py_echo.py", "python"),
    Peer("uvloop", "uvloop", "py_echo.py", "python", debs=["python3-uvloop"], args=["--uvloop"]),
]
FLOOR = "epoll"


# ---- the machine -----------------------------------------------------------------


def first_line(command):
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
        return out.splitlines()[0].strip() if out.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def deb_version(package):
    return first_line(["dpkg-query", "-W", "-f", "${Version}\n", package])


def deb_installed(package):
    status = first_line(["dpkg-query", "-W", "-f", "${Status}\n", package])
    return bool(status and status.endswith(" installed"))


def machine_info(evloop_cxx, cc, cxx):
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    packages = {p: deb_version(p) for p in ("libuv1-dev", "libev-dev", "libevent-dev", "libasio-dev",
                                            "python3-uvloop", "strace")}
    return {
        "cpu_model": cpu,
        "cpus_online": os.cpu_count(),
        "cpus_usable": sorted(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "os": first_line(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""]),
        "evloop_compiler": first_line([evloop_cxx, "--version"]) if evloop_cxx else None,
        "cc": first_line([cc, "--version"]),
        "cxx": first_line([cxx, "--version"]),
        "python": first_line([PYTHON, "--version"]),
        "packages": packages,
        "load_average_at_start": os.getloadavg()[0],
    }


# ---- packages ---------------------------------------------------------------------


def uvloop_importable():
    return subprocess.run([PYTHON, "-c", "import uvloop"], capture_output=True).returncode == 0


def ensure_packages(peers, want_strace, install):
    """Installs what the chosen peers need (root on Debian), else marks them skipped."""
    wanted = sorted({d for p in peers for d in p.debs} | {"pkg-config"} | ({"strace"} if want_strace else set()))
    missing = [d for d in wanted if not deb_installed(d)] if shutil.which("dpkg-query") else []
    if missing and install and os.geteuid() == 0 and os.path.exists("/etc/debian_version") and shutil.which("apt-get"):
        log(f"installing: {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = subprocess.run(["apt-get", "update", "-qq"], env=env).returncode == 0
        ok = ok and subprocess.run(["apt-get", "install", "-y", "-qq"] + missing, env=env,
                                   stdout=subprocess.DEVNULL).returncode == 0
        if not ok:
            log("apt-get failed: the peers that need those packages are skipped")
        missing = [d for d in missing if not deb_installed(d)]
    elif missing:
        log(f"missing packages: {' '.join(missing)} (as root: apt-get install {' '.join(missing)}); "
            "the peers that need them are skipped")
    for p in peers:
        lacking = [d for d in p.debs if d in missing]
        if p.name == "uvloop":  # a pip-installed uvloop serves as well
            if not uvloop_importable():
                p.skipped = f"uvloop not importable by {PYTHON} (apt-get install python3-uvloop)"
        elif lacking:
            p.skipped = f"needs {' '.join(lacking)}"
    return missing


# ---- building ----------------------------------------------------------------------


def pkg_config(args):
    out = subprocess.run(["pkg-config"] + args, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pkg-config {' '.join(args)}: {out.stderr.strip()}")
    return shlex.split(out.stdout)


def build_one(command, output, inputs):
    """Runs `command` unless `output` is newer than every input and was made by the same command."""
    stamp = output + ".cmd"
    line = shlex.join(command)
    try:
        fresh = (os.path.getmtime(output) >= max(os.path.getmtime(i) for i in inputs)
                 and open(stamp).read() == line)
    except OSError:
        fresh = False
    if fresh:
        return None
    log(f"  {line}")
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        return (out.stderr or out.stdout).strip()[-2000:]
    with open(stamp, "w") as f:
        f.write(line)
    return None


def evloop_compile_line(build_dir):
    """The compiler and flags make used for build_dir's library (its `flags` file)."""
    try:
        with open(os.path.join(build_dir, "flags")) as f:
            words = shlex.split(f.read())
    except OSError:
        words = ["c++", "-std=c++20", "-I.", "-pthread"]
    # -I. means the repo root to make; we may run from elsewhere.
    return [f"-I{REPO}" if w == "-I." else w for w in words]


def build_peers(peers, out_dir, build_dir, cc, cxx):
    os.makedirs(out_dir, exist_ok=True)
    evloop_line = evloop_compile_line(build_dir)
    lib = os.path.join(build_dir, "libevloop.a")
    if any("-fsanitize" in w for w in evloop_line):
        log(f"warning: {build_dir} is a sanitizer build: evloop's figures will mean little")
    common = os.path.join(PEERS_SRC, "peer_common.h")
    for p in peers:
        if p.skipped:
            continue
        source = os.path.join(PEERS_SRC, p.source)
        if p.kind == "python":
            p.command = [PYTHON, source] + p.args
            continue
        output = os.path.join(out_dir, p.binary)
        try:
            if p.kind == "evloop":
                if not os.path.exists(lib):
                    p.skipped = f"{lib} not built (make lib)"
                    continue
                command = evloop_line + ["-O2", "-o", output, source, lib, "-pthread"]
                inputs = [source, lib]
            else:
                compiler = [cc, "-std=gnu11"] if p.kind == "c" else [cxx]
                cflags = pkg_config(["--cflags"] + p.pkgconfig) if p.pkgconfig else []
                libs = pkg_config(["--libs"] + p.pkgconfig) if p.pkgconfig else []
                command = compiler + ["-O2", "-Wall"] + p.flags + cflags + ["-o", output, source] + libs + p.libs
                inputs = [source, common]
        except RuntimeError as e:
            p.skipped = str(e)
            continue
        error = build_one(command, output, inputs)
        if error:
            p.skipped = f"build failed: {error.splitlines()[-1] if error else ''}"
            log(f"  {p.name}: build failed:\n{error}")
            continue
        p.command = [output] + p.args


def build_micro(out_dir, cc, peers_ok):
    """The C micro programs; returns {name: command} of those that built."""
    programs = {}
    for name, source, pkg, libs in (("libuv", "uv_micro.c", "libuv", []), ("libev", "ev_micro.c", None, ["-lev"])):
        if name not in peers_ok:
            continue
        output = os.path.join(out_dir, os.path.splitext(source)[0])
        try:
            cflags = pkg_config(["--cflags", pkg]) if pkg else []
            lflags = pkg_config(["--libs", pkg]) if pkg else []
        except RuntimeError as e:
            log(f"  {name} micro: {e}")
            continue
        src = os.path.join(PEERS_SRC, source)
        command = [cc, "-std=gnu11", "-O2", "-Wall", "-pthread"] + cflags + ["-o", output, src] + lflags + libs
        error = build_one(command, output, [src, os.path.join(PEERS_SRC, "micro_common.h")])
        if error:
            log(f"  {name} micro: build failed:\n{error}")
            continue
        programs[name] = [output]
    return programs


# ---- processes ----------------------------------------------------------------------


def pinned(cpu):
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


class Server:
    """A running echo server: started, its port read, stopped with SIGTERM."""

    def __init__(self, peer, cpu):
        self.peer = peer
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(peer.command + ["--port", "0"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.stderr, preexec_fn=pinned(cpu))
        live_processes.append(self.proc)
        self.port = self._read_port()

    def _read_port(self):
        fd, text, deadline = self.proc.stdout.fileno(), b"", time.monotonic() + 20
        while b"\n" not in text:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.stop()
                raise RuntimeError(f"{self.peer.name}: no 'port N' line within 20 s")
            chunk = os.read(fd, 256)
            if not chunk:
                self.stop()
                raise RuntimeError(f"{self.peer.name}: exited before listening: {self.error_text()}")
            text += chunk
        match = re.match(rb"port (\d+)\n", text)
        if not match:
            self.stop()
            raise RuntimeError(f"{self.peer.name}: printed {text!r}, not 'port N'")
        return int(match[1])

    def error_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace").strip()[-1000:]

    def cpu_ns(self):
        """On-CPU time of all its threads so far (ns; schedstat, else clock ticks)."""
        total, task_dir = 0, f"/proc/{self.proc.pid}/task"
        try:
            for tid in os.listdir(task_dir):
                try:
                    with open(f"{task_dir}/{tid}/schedstat") as f:
                        total += int(f.read().split()[0])
                except (OSError, ValueError, IndexError):
                    pass  # a thread that just ended
            if total:
                return total
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) * 1e9 / os.sysconf("SC_CLK_TCK")
        except OSError:
            raise RuntimeError(f"{self.peer.name}: died: {self.error_text()}")

    def memory_kb(self):
        figures = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon"):
                    figures[key] = int(value.split()[0])
        return figures

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        if self.proc in live_processes:
            live_processes.remove(self.proc)
