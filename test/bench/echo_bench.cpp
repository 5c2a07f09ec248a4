// test/bench/echo_bench.cpp — how fast evloop echoes over TCP, and what each
// round trip costs the server in CPU. A benchmark: it prints figures; it
// fails only if a server or the client fails (echo_client checks every byte).
//
// Three servers on 127.0.0.1 (port 0), each in a child process forked before
// any loop exists and pinned to one CPU, driven by test/bench/echo_client (a
// plain-epoll load generator) pinned to another:
//  - Protocol: data_received(data) → transport.write(data);
//  - BufferedProtocol: get_buffer() hands out a 256 KiB member buffer,
//    buffer_updated(n) writes those n bytes back (no copy on the read side);
//  - epoll: the same echo written directly on epoll, the ceiling evloop is
//    measured against (what the kernel's loopback costs by itself).
// For each message size, every round runs the servers one after another
// (A B C A B C …: the machine's speed drifts, interleaving spreads the drift
// over all of them) and the table shows medians. Server CPU per round trip
// is the child's user + system time (wait4's rusage, µs resolution) over
// every round trip the client completed, warm-up included.
//
//   make bench-echo, or by hand (the client is looked for beside this binary):
//   echo_bench [--rounds 5] [--seconds 1] [--warmup 0.3] [--connections 10]
//              [--sizes 1024,10240,102400] [--client PATH] [--no-baseline]
// Layer: test. Read first: net/socket_transport.cpp (the read and write paths).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "evloop.hpp"
#include "test/bench/bench_stats.hpp"

namespace {

pid_t g_server_pid = -1;  // the server child running now, killed if we fail

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
    if (g_server_pid > 0) ::kill(g_server_pid, SIGKILL);
    std::fprintf(stderr, "echo_bench: FAILED: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
    std::exit(1);
}

// ---- the servers (each runs in its own child process) ----------------------

class EchoProtocol final : public evloop::Protocol {
public:
    void connection_made(evloop::Transport& transport) override { transport_ = &transport; }
    void data_received(std::string_view data) override { (void)transport_->write(data); }

private:
    evloop::Transport* transport_ = nullptr;
};

class EchoBufferedProtocol final : public evloop::BufferedProtocol {
public:
    void connection_made(evloop::Transport& transport) override { transport_ = &transport; }
    std::span<char> get_buffer(std::size_t) override { return buffer_; }
    void buffer_updated(std::size_t nbytes) override { (void)transport_->write({buffer_.data(), nbytes}); }

private:
    evloop::Transport* transport_ = nullptr;
    std::vector<char> buffer_ = std::vector<char>(256 * 1024);
};

enum class Kind { protocol, buffered, epoll };
constexpr const char* kind_name(Kind k) {
    return k == Kind::protocol ? "Protocol" : k == Kind::buffered ? "BufferedProtocol" : "epoll (no evloop)";
}

void send_port(int pipe_fd, int port) {
    if (::write(pipe_fd, &port, sizeof port) != sizeof port) std::_Exit(3);
    ::close(pipe_fd);
}

// Runs until the parent kills it with SIGTERM.
int run_evloop_server(Kind kind, int pipe_fd) {
    evloop::EventLoop loop;
    evloop::ProtocolFactory factory;
    if (kind == Kind::protocol)
        factory = [] { return std::make_shared<EchoProtocol>(); };
    else
        factory = [] { return std::make_shared<EchoBufferedProtocol>(); };
    auto server = loop.run_until_complete(loop.create_server(std::move(factory), "127.0.0.1", 0));
    if (!server) {
        std::fprintf(stderr, "echo_bench: create_server: %s\n", server.error().message().c_str());
        return 2;
    }
    send_port(pipe_fd, (*server)->addresses().at(0).port());
    (void)loop.run_forever();
    return 0;
}

// The baseline: level-triggered epoll, one read into a 256 KiB buffer, one
// write back; what a short write leaves waits for EPOLLOUT, and reading that
// connection pauses meanwhile (the same flow control a transport applies).
int run_epoll_server(int pipe_fd) {
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&address), size) != 0 || ::listen(listener, 128) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size) != 0)
        return 2;
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{.events = EPOLLIN, .data = {.fd = listener}};
    (void)::epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
    send_port(pipe_fd, ntohs(address.sin_port));
    std::vector<char> buffer(256 * 1024);
    std::vector<std::string> pending(1024);  // unsent bytes, by fd
    epoll_event events[64];
    for (;;) {
        int n = ::epoll_wait(ep, events, 64, -1);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int c = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (c < 0) continue;
                if (static_cast<std::size_t>(c) >= pending.size()) {
                    ::close(c);
                    continue;
                }
                int one = 1;
                (void)::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                ev = {.events = EPOLLIN, .data = {.fd = c}};
                (void)::epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
                continue;
            }
            std::string& rest = pending[static_cast<std::size_t>(fd)];
            const char* data = rest.data();
            ssize_t len = static_cast<ssize_t>(rest.size());
            if (rest.empty()) {
                len = ::recv(fd, buffer.data(), buffer.size(), 0);
                if (len <= 0) {
                    ::close(fd);  // also removes it from the epoll set
                    continue;
                }
                data = buffer.data();
            }
            ssize_t sent = ::send(fd, data, static_cast<std::size_t>(len), MSG_NOSIGNAL);
            if (sent < 0 && errno != EAGAIN) {  // the client is gone
                ::close(fd);
                rest.clear();
                continue;
            }
            if (sent < 0) sent = 0;
            std::string left(data + sent, static_cast<std::size_t>(len - sent));
            if (left.empty() != rest.empty()) {
                ev = {.events = left.empty() ? EPOLLIN : EPOLLOUT, .data = {.fd = fd}};
                (void)::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
            }
            rest = std::move(left);
        }
    }
}

// ---- processes ---------------------------------------------------------------

void pin_to(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)::sched_setaffinity(0, sizeof set, &set);
}

struct ServerProcess {
    pid_t pid;
    int port;
};

ServerProcess start_server(Kind kind, int cpu) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) fail("pipe2", std::strerror(errno));
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) fail("fork", std::strerror(errno));
    if (pid == 0) {
        ::close(p[0]);
        pin_to(cpu);
        std::_Exit(kind == Kind::epoll ? run_epoll_server(p[1]) : run_evloop_server(kind, p[1]));
    }
    ::close(p[1]);
    int port = 0;
    ssize_t got = ::read(p[0], &port, sizeof port);
    ::close(p[0]);
    g_server_pid = pid;
    if (got != sizeof port) fail("the server did not start", kind_name(kind));
    return {pid, port};
}

// Stops the server and returns its CPU time in µs.
double stop_server(const ServerProcess& server, Kind kind) {
    int status = 0;
    if (::waitpid(server.pid, &status, WNOHANG) != 0) {
        g_server_pid = -1;  // already reaped
        fail("the server died during the run", kind_name(kind));
    }
    ::kill(server.pid, SIGTERM);
    rusage usage{};
    if (::wait4(server.pid, &status, 0, &usage) != server.pid) fail("wait4", std::strerror(errno));
    g_server_pid = -1;
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGTERM) fail("the server exited by itself", kind_name(kind));
    auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec); };
    return us(usage.ru_utime) + us(usage.ru_stime);
}

struct ClientFigures {
    double rtps = 0, mibps = 0, p50 = 0, p99 = 0, total = 0;
};

// Runs echo_client to the end and reads its --parsable line.
ClientFigures run_client(const std::vector<std::string>& args) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) fail("pipe2", std::strerror(errno));
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) fail("fork", std::strerror(errno));
    if (pid == 0) {
        ::dup2(p[1], STDOUT_FILENO);
        std::vector<char*> argv;
        for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        ::execv(argv[0], argv.data());
        std::fprintf(stderr, "echo_bench: cannot run %s: %s\n", argv[0], std::strerror(errno));
        std::_Exit(127);
    }
    ::close(p[1]);
    std::string out;
    char chunk[4096];
    for (ssize_t n; (n = ::read(p[0], chunk, sizeof chunk)) != 0;) {
        if (n > 0)
            out.append(chunk, static_cast<std::size_t>(n));
        else if (errno != EINTR)
            break;
    }
    ::close(p[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("echo_client failed", out);
    ClientFigures f;
    std::size_t at = out.rfind("rtps=");
    if (at == std::string::npos ||
        std::sscanf(out.c_str() + at, "rtps=%lf mibps=%lf p50_us=%lf p99_us=%lf total_round_trips=%lf", &f.rtps,
                    &f.mibps, &f.p50, &f.p99, &f.total) != 5 || f.total <= 0)
        fail("cannot read echo_client's output", out);
    return f;
}

// The first two CPUs this process may run on (-1 when there is only one).
std::pair<int, int> pick_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return {-1, -1};
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c)
        if (CPU_ISSET(c, &set)) cpus.push_back(c);
    if (cpus.size() < 2) return {-1, -1};
    return {cpus[0], cpus[1]};
}

std::string beside_self(const char* name) {
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return name;
    std::string path(self, static_cast<std::size_t>(n));
    return path.substr(0, path.rfind('/') + 1) + name;
}

std::string size_label(std::size_t bytes) {
    return bytes % 1024 == 0 ? std::to_string(bytes / 1024) + " KiB" : std::to_string(bytes) + " B";
}

}  // namespace

int main(int argc, char** argv) {
    int rounds = 5, connections = 10;
    double seconds = 1.0, warmup = 0.3;
    std::vector<std::size_t> sizes{1024, 10 * 1024, 100 * 1024};
    std::string client = beside_self("echo_client");
    std::vector<Kind> kinds{Kind::protocol, Kind::buffered, Kind::epoll};
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) fail("missing value for", argv[i]);
            return argv[++i];
        };
        if (a == "--rounds") rounds = std::atoi(value());
        else if (a == "--seconds") seconds = std::atof(value());
        else if (a == "--warmup") warmup = std::atof(value());
        else if (a == "--connections") connections = std::atoi(value());
        else if (a == "--client") client = value();
        else if (a == "--no-baseline") kinds.pop_back();
        else if (a == "--sizes") {
            sizes.clear();
            for (const char* s = value(); *s;) {
                char* end = nullptr;
                sizes.push_back(std::strtoull(s, &end, 10));
                s = *end == ',' ? end + 1 : end;
                if (sizes.back() == 0) fail("bad --sizes");
            }
        } else fail("unknown argument (see the comment at the top of test/bench/echo_bench.cpp)", argv[i]);
    }
    if (rounds < 1 || seconds <= 0 || connections < 1) fail("bad --rounds, --seconds or --connections");
    if (::access(client.c_str(), X_OK) != 0) fail("echo_client not found (build it, or pass --client)", client);

    auto [server_cpu, client_cpu] = pick_cpus();
    std::printf("echo_bench: %d connections, ping-pong, %d rounds of %.1f s (+%.1f s warm-up) per figure; ",
                connections, rounds, seconds, warmup);
    if (server_cpu >= 0)
        std::printf("server on CPU %d, client on CPU %d\n", server_cpu, client_cpu);
    else
        std::printf("one CPU: server and client share it\n");
    // Other work on the machine shows up as noise, in p99 first: say how busy it was.
    if (std::FILE* f = std::fopen("/proc/loadavg", "r")) {
        double load = 0;
        if (std::fscanf(f, "%lf", &load) == 1) std::printf("load average at start: %.2f\n", load);
        std::fclose(f);
    }
    std::printf("medians over the rounds; round trips/s min-max in brackets\n\n");
    std::printf("%-7s %-18s %25s %9s %8s %8s %17s\n", "size", "server", "round trips/s", "MiB/s", "p50 us", "p99 us",
                "server CPU us/rt");

    for (std::size_t size : sizes) {
        struct Samples {
            std::vector<double> rtps, mibps, p50, p99, cpu;
        };
        std::vector<Samples> samples(kinds.size());
        for (int r = 0; r < rounds; ++r) {
            for (std::size_t k = 0; k < kinds.size(); ++k) {
                ServerProcess server = start_server(kinds[k], server_cpu);
                std::vector<std::string> args{client, "--port", std::to_string(server.port), "--size",
                                              std::to_string(size), "--connections", std::to_string(connections),
                                              "--seconds", std::to_string(seconds), "--warmup", std::to_string(warmup),
                                              "--parsable"};
                if (client_cpu >= 0) args.insert(args.end(), {"--cpu", std::to_string(client_cpu)});
                ClientFigures f = run_client(args);
                double cpu_us = stop_server(server, kinds[k]);
                Samples& s = samples[k];
                s.rtps.push_back(f.rtps);
                s.mibps.push_back(f.mibps);
                s.p50.push_back(f.p50);
                s.p99.push_back(f.p99);
                s.cpu.push_back(cpu_us / f.total);
            }
        }
        for (std::size_t k = 0; k < kinds.size(); ++k) {
            using evloop::bench::summarize;
            const Samples& s = samples[k];
            evloop::bench::Stat rt = summarize(s.rtps);
            char spread[48];
            std::snprintf(spread, sizeof spread, "[%.0f-%.0f]", rt.min, rt.max);
            std::printf("%-7s %-18s %8.0f %16s %9.1f %8.1f %8.1f %17.2f\n", size_label(size).c_str(),
                        kind_name(kinds[k]), rt.median, spread, summarize(s.mibps).median, summarize(s.p50).median,
                        summarize(s.p99).median, summarize(s.cpu).median);
        }
        std::fflush(stdout);
    }
    return 0;
}
