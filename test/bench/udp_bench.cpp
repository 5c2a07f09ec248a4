// test/bench/udp_bench.cpp — how many UDP datagrams per second evloop
// echoes, and what each costs the server in CPU. A benchmark: it prints
// figures; it fails only if a server or the client fails (the client checks
// the length and bytes of every echo).
//
// Two servers on 127.0.0.1 (port 0), each in a child process forked before
// any loop exists and pinned to CPU 0:
//  - evloop: a DatagramProtocol whose datagram_received calls
//    transport.sendto(data, addr) (net/datagram_transport.cpp's read batch
//    and immediate send);
//  - plain: a blocking recvfrom/sendto loop, the ceiling evloop is measured
//    against (what the kernel's loopback costs by itself).
// The client is plain sockets in this process, pinned to CPU 1: a connected
// UDP socket keeping `window` datagrams in flight (one sent per echo
// received; a 100 ms silence counts the window as lost and refills it).
// Every round runs each size on each server (interleaved: the machine's
// speed drifts), and the table shows medians with the min–max. Server CPU
// per datagram is the child's user + system time (wait4's rusage) over every
// datagram echoed, warm-up included.
//
//   make bench-udp, or by hand:
//   udp_bench [--rounds 5] [--seconds 1] [--warmup 0.2] [--window 32] [--sizes 64,1400]
// Layer: test. Read first: net/datagram_transport.cpp.
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "evloop.hpp"
#include "net/datagram_transport.hpp"
#include "test/bench/bench_stats.hpp"

namespace {

pid_t g_server_pid = -1;  // the server child running now, killed if we fail

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
    if (g_server_pid > 0) ::kill(g_server_pid, SIGKILL);
    std::fprintf(stderr, "udp_bench: FAILED: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
    std::exit(1);
}

double now() {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)::sched_setaffinity(0, sizeof set, &set);
}

enum class Kind { evloop, plain };
const char* kind_name(Kind kind) { return kind == Kind::evloop ? "evloop" : "plain"; }

// ---- the servers (each runs in its own child process) ----------------------

class Echo final : public evloop::DatagramProtocol {
public:
    void connection_made(evloop::DatagramTransport& transport) override { transport_ = &transport; }
    void datagram_received(std::string_view data, const evloop::SocketAddress& from) override {
        (void)transport_->sendto(data, from);
    }

private:
    evloop::DatagramTransport* transport_ = nullptr;
};

int run_evloop_server(int report_fd) {
    evloop::EventLoop loop;
    auto endpoint = loop.run_until_complete(loop.create_datagram_endpoint(
        [] { return std::make_shared<Echo>(); }, {.local_host = "127.0.0.1", .local_port = 0}));
    if (!endpoint) return 1;
    int port = std::get<evloop::SocketAddress>(endpoint->transport->get_extra_info("sockname")).port();
    if (::write(report_fd, &port, sizeof port) != sizeof port) return 1;
    ::close(report_fd);
    (void)loop.run_forever();  // until SIGTERM
    return 0;
}

int run_plain_server(int report_fd) {
    int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (::bind(sock, reinterpret_cast<sockaddr*>(&address), size) != 0) return 1;
    ::getsockname(sock, reinterpret_cast<sockaddr*>(&address), &size);
    int port = ntohs(address.sin_port);
    if (::write(report_fd, &port, sizeof port) != sizeof port) return 1;
    ::close(report_fd);
    char buffer[65536];
    for (;;) {
        sockaddr_storage from{};
        socklen_t from_size = sizeof from;
        ssize_t n = ::recvfrom(sock, buffer, sizeof buffer, 0, reinterpret_cast<sockaddr*>(&from), &from_size);
        if (n >= 0) (void)::sendto(sock, buffer, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), from_size);
    }
}

struct ServerProcess {
    pid_t pid;
    int port;
};

ServerProcess start_server(Kind kind) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) fail("pipe2", std::strerror(errno));
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) fail("fork", std::strerror(errno));
    if (pid == 0) {
        ::close(p[0]);
        pin_to(0);
        std::_Exit(kind == Kind::evloop ? run_evloop_server(p[1]) : run_plain_server(p[1]));
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
        g_server_pid = -1;
        fail("the server died during the run", kind_name(kind));
    }
    ::kill(server.pid, SIGTERM);
    rusage usage{};
    if (::wait4(server.pid, &status, 0, &usage) != server.pid) fail("wait4", std::strerror(errno));
    g_server_pid = -1;
    auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec); };
    return us(usage.ru_utime) + us(usage.ru_stime);
}

// ---- the client ----------------------------------------------------------------

struct ClientFigures {
    double per_second = 0;  // echoes in the measured interval, per second
    double total = 0;       // echoes overall, warm-up included
    double lost = 0;        // datagrams given up on
};

ClientFigures run_client(int port, std::size_t size, int window, double warmup, double seconds) {
    int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::connect(sock, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) fail("connect", std::strerror(errno));
    timeval timeout{0, 100000};
    ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    std::vector<char> out(size), in(size + 1);
    for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + i % 26);
    std::uint64_t sequence = 0;
    int in_flight = 0;
    auto send_one = [&] {
        std::memcpy(out.data(), &sequence, sizeof sequence);  // size >= 8
        ++sequence;
        if (::send(sock, out.data(), size, 0) != static_cast<ssize_t>(size)) fail("send", std::strerror(errno));
        ++in_flight;
    };
    ClientFigures f;
    double start = now(), measure_from = start + warmup, end = measure_from + seconds;
    double measured = 0;
    while (in_flight < window) send_one();
    for (double t = start; t < end; t = now()) {
        ssize_t n = ::recv(sock, in.data(), in.size(), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) fail("recv", std::strerror(errno));
            f.lost += in_flight;  // 100 ms of silence: the window is gone
            in_flight = 0;
            while (in_flight < window) send_one();
            continue;
        }
        if (static_cast<std::size_t>(n) != size || std::memcmp(in.data() + 8, out.data() + 8, size - 8) != 0)
            fail("a corrupted echo");
        --in_flight;
        ++f.total;
        if (t >= measure_from) ++measured;
        send_one();
    }
    ::close(sock);
    f.per_second = measured / seconds;
    return f;
}

std::vector<std::size_t> parse_sizes(const char* text) {
    std::vector<std::size_t> sizes;
    for (const char* p = text; *p;) {
        char* end = nullptr;
        unsigned long value = std::strtoul(p, &end, 10);
        if (end == p || value < 8 || value > 65507) fail("--sizes: each between 8 and 65507", text);
        sizes.push_back(value);
        p = *end == ',' ? end + 1 : end;
    }
    return sizes;
}

}  // namespace

int main(int argc, char** argv) {
    int rounds = 5, window = 32;
    double seconds = 1.0, warmup = 0.2;
    std::vector<std::size_t> sizes{64, 1400};
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        if (flag == "--rounds") rounds = std::atoi(argv[i + 1]);
        else if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
        else if (flag == "--warmup") warmup = std::atof(argv[i + 1]);
        else if (flag == "--window") window = std::atoi(argv[i + 1]);
        else if (flag == "--sizes") sizes = parse_sizes(argv[i + 1]);
        else fail("unknown option", flag);
    }
    if (rounds < 1 || window < 1 || seconds <= 0) fail("--rounds, --window and --seconds must be positive");
    pin_to(1);
    const Kind kinds[] = {Kind::evloop, Kind::plain};
    struct Samples {
        std::vector<double> rate, cpu;
        double lost = 0;
    };
    std::vector<Samples> samples(sizes.size() * 2);
    for (int round = 0; round < rounds; ++round) {
        for (std::size_t s = 0; s < sizes.size(); ++s) {
            for (int k = 0; k < 2; ++k) {
                ServerProcess server = start_server(kinds[k]);
                ClientFigures f = run_client(server.port, sizes[s], window, warmup, seconds);
                double cpu_us = stop_server(server, kinds[k]);
                Samples& into = samples[s * 2 + static_cast<std::size_t>(k)];
                into.rate.push_back(f.per_second);
                into.cpu.push_back(f.total > 0 ? cpu_us / f.total : 0);
                into.lost += f.lost;
            }
        }
    }
    std::printf("UDP echo over 127.0.0.1: server pinned to CPU 0, client to CPU 1, %d in flight, "
                "%d rounds of %.1f s (+%.1f s warm-up)\n",
                window, rounds, seconds, warmup);
    std::printf("medians over the rounds; datagrams/s min-max in brackets\n\n");
    std::printf("%6s  %-7s %14s  %-25s %16s %6s\n", "bytes", "server", "datagrams/s", "(min-max)", "server µs/dgram",
                "lost");
    for (std::size_t s = 0; s < sizes.size(); ++s) {
        for (int k = 0; k < 2; ++k) {
            const Samples& x = samples[s * 2 + static_cast<std::size_t>(k)];
            evloop::bench::Stat rate = evloop::bench::summarize(x.rate);
            char spread[64];
            std::snprintf(spread, sizeof spread, "(%.0f-%.0f)", rate.min, rate.max);
            std::printf("%6zu  %-7s %14.0f  %-25s %16.2f %6.0f\n", sizes[s], kind_name(kinds[k]), rate.median, spread,
                        evloop::bench::summarize(x.cpu).median, x.lost);
        }
    }
    return 0;
}
