// test/bench/echo_client.cpp — the load generator for echo servers: plain
// epoll, one thread, no evloop, so what it measures is the server and not
// the library measuring itself.
//
// N connections each play ping-pong: send one message of S bytes, read the
// S echoed bytes back, check every one of them, send the next. A message is
// a window of a random pattern table starting at an offset that changes from
// one message (and connection) to the next, so a byte that arrives late,
// early, twice, from another connection or altered fails the comparison.
// After a warm-up, round trips completed during --seconds are counted and
// their latencies (first byte sent to last byte back) kept for percentiles.
// Any mismatch, error, early EOF or 5 s without progress exits 1.
// --round-trips N ends the measurement after N round trips instead of after
// --seconds (for counting the server's syscalls over a fixed amount of work;
// a few more may complete in the same epoll_wait batch: total_round_trips
// in the --parsable line is exact).
//
//   echo_client --port 8888 [--host 127.0.0.1 | --unix PATH] [--connections 10]
//               [--size 1024] [--seconds 3 | --round-trips N] [--warmup 0.5]
//               [--cpu N] [--parsable]
//
// --parsable adds a last line of key=value pairs for test/bench/echo_bench.cpp
// and test/bench/bench_suite.py.
// Layer: test. Read next: test/bench/echo_bench.cpp.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Options {
    std::string host = "127.0.0.1";
    int port = -1;
    std::string unix_path;
    int connections = 10;
    std::size_t size = 1024;
    double seconds = 3.0;
    double warmup = 0.5;
    std::uint64_t round_trips = 0;  // 0: measure for `seconds`
    int cpu = -1;
    bool parsable = false;
};

[[noreturn]] __attribute__((format(printf, 1, 2))) void die(const char* format, ...) {
    std::fprintf(stderr, "echo_client: FAILED: ");
    va_list args;
    va_start(args, format);
    std::vfprintf(stderr, format, args);
    va_end(args);
    std::fprintf(stderr, "\n");
    std::exit(1);
}

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// The pattern: random bytes, kPatternSlack (a prime) more than a message.
// A message starts at (message * 577 + connection * 1031) mod kPatternSlack,
// so a connection reuses an offset only every 4093 messages, and connections
// sending at the same time use different ones.
constexpr std::size_t kPatternSlack = 4093;
std::vector<unsigned char> g_pattern;

struct Conn {
    int fd = -1;
    int index = 0;
    std::uint64_t message = 0;  // sequence number of the message in flight
    const unsigned char* data = nullptr;  // its bytes, inside g_pattern
    std::size_t sent = 0;
    std::size_t received = 0;
    std::int64_t started_ns = 0;
    bool want_write = false;  // EPOLLOUT registered: the last send was short
};

int connect_one(const Options& o) {
    if (!o.unix_path.empty()) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (o.unix_path.size() >= sizeof addr.sun_path) die("socket path too long: %s", o.unix_path.c_str());
        std::memcpy(addr.sun_path, o.unix_path.data(), o.unix_path.size());
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
            die("connect to %s failed", o.unix_path.c_str());
        return fd;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    std::string port = std::to_string(o.port);
    if (int rc = ::getaddrinfo(o.host.c_str(), port.c_str(), &hints, &found); rc != 0)
        die("cannot resolve host: %s", ::gai_strerror(rc));
    int fd = -1;
    for (addrinfo* ai = found; ai && fd < 0; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && ::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(found);
    if (fd < 0) die("connect to %s failed", (o.host + ":" + port).c_str());
    // Without it a small message waits for the previous one's ACK.
    int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

class Client {
public:
    explicit Client(const Options& o) : o_(o) {}

    int run();

private:
    void start_message(Conn& c);
    void flush(Conn& c);
    void receive(Conn& c);
    void set_want_write(Conn& c, bool on);

    const Options& o_;
    int epfd_ = -1;
    std::vector<Conn> conns_;
    std::vector<char> scratch_;
    bool measuring_ = false;
    std::uint64_t total_round_trips_ = 0;  // warm-up included (echo_bench divides server CPU by it)
    std::vector<std::uint32_t> latencies_ns_;  // measured round trips only
    std::int64_t last_progress_ns_ = 0;
};

void Client::start_message(Conn& c) {
    ++c.message;
    std::size_t offset = (c.message * 577 + static_cast<std::size_t>(c.index) * 1031) % kPatternSlack;
    c.data = g_pattern.data() + offset;
    c.sent = 0;
    c.received = 0;
    c.started_ns = now_ns();
    flush(c);
}

void Client::flush(Conn& c) {
    while (c.sent < o_.size) {
        ssize_t n = ::send(c.fd, c.data + c.sent, o_.size - c.sent, MSG_NOSIGNAL);
        if (n > 0) {
            c.sent += static_cast<std::size_t>(n);
        } else if (n < 0 && errno == EAGAIN) {
            break;  // the socket buffer is full: EPOLLOUT will say when to go on
        } else if (!(n < 0 && errno == EINTR)) {
            die("send failed: %s", std::strerror(errno));
        }
    }
    set_want_write(c, c.sent < o_.size);
}

void Client::set_want_write(Conn& c, bool on) {
    if (c.want_write == on) return;
    c.want_write = on;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u32 = static_cast<std::uint32_t>(c.index);
    if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) die("epoll_ctl failed: %s", std::strerror(errno));
}

void Client::receive(Conn& c) {
    // Never read past this message: what follows would be the next one's
    // echo, which cannot exist yet, and must fail the check if it does.
    std::size_t want = std::min(o_.size - c.received, scratch_.size());
    ssize_t n = ::recv(c.fd, scratch_.data(), want, 0);
    if (n == 0) die("connection %d: the server closed it", c.index);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        die("recv failed: %s", std::strerror(errno));
    }
    if (c.received + static_cast<std::size_t>(n) > c.sent)
        die("connection %d: more bytes echoed than sent", c.index);
    if (std::memcmp(scratch_.data(), c.data + c.received, static_cast<std::size_t>(n)) != 0) {
        std::size_t at = 0;
        while (static_cast<unsigned char>(scratch_[at]) == c.data[c.received + at]) ++at;
        die("MISMATCH on connection %d, message %llu, byte %zu", c.index, static_cast<unsigned long long>(c.message),
            c.received + at);
    }
    c.received += static_cast<std::size_t>(n);
    if (c.received < o_.size) return;
    std::int64_t t = now_ns();
    last_progress_ns_ = t;
    ++total_round_trips_;
    if (measuring_)
        latencies_ns_.push_back(static_cast<std::uint32_t>(std::min<std::int64_t>(t - c.started_ns, UINT32_MAX)));
    start_message(c);
}

int Client::run() {
    g_pattern.resize(o_.size + kPatternSlack);
    std::mt19937 rng(12345);
    for (auto& b : g_pattern) b = static_cast<unsigned char>(rng());
    scratch_.resize(std::min<std::size_t>(o_.size, 256 * 1024));

    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) die("epoll_create1 failed: %s", std::strerror(errno));
    conns_.resize(static_cast<std::size_t>(o_.connections));
    for (int i = 0; i < o_.connections; ++i) {
        Conn& c = conns_[static_cast<std::size_t>(i)];
        c.index = i;
        c.fd = connect_one(o_);
        if (::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK) != 0) die("fcntl failed");
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<std::uint32_t>(i);
        if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev) != 0) die("epoll_ctl failed: %s", std::strerror(errno));
    }
    latencies_ns_.reserve(1 << 20);

    const std::int64_t t0 = now_ns();
    const std::int64_t measure_from = t0 + static_cast<std::int64_t>(o_.warmup * 1e9);
    const std::int64_t measure_to = measure_from + static_cast<std::int64_t>(o_.seconds * 1e9);
    last_progress_ns_ = t0;
    for (Conn& c : conns_) start_message(c);

    std::uint64_t round_trips_before = 0;
    epoll_event events[64];
    for (;;) {
        int n = ::epoll_wait(epfd_, events, 64, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait failed: %s", std::strerror(errno));
        for (int i = 0; i < n; ++i) {
            Conn& c = conns_[events[i].data.u32];
            if (events[i].events & (EPOLLOUT | EPOLLERR)) flush(c);
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) receive(c);
        }
        std::int64_t t = now_ns();
        if (!measuring_ && t >= measure_from) {
            measuring_ = true;
            round_trips_before = total_round_trips_;
        }
        if (o_.round_trips == 0 ? t >= measure_to
                                : measuring_ && total_round_trips_ - round_trips_before >= o_.round_trips)
            break;
        if (t - last_progress_ns_ > 5'000'000'000) die("no round trip completed for 5 s");
    }
    const double elapsed = static_cast<double>(now_ns() - measure_from) / 1e9;
    for (Conn& c : conns_) ::close(c.fd);
    ::close(epfd_);

    const std::uint64_t count = total_round_trips_ - round_trips_before;
    if (latencies_ns_.empty()) die("no round trip completed during the measurement");
    auto percentile = [&](double p) {
        std::size_t k = static_cast<std::size_t>(p * static_cast<double>(latencies_ns_.size() - 1));
        std::nth_element(latencies_ns_.begin(), latencies_ns_.begin() + static_cast<std::ptrdiff_t>(k),
                         latencies_ns_.end());
        return latencies_ns_[k] / 1e3;
    };
    const double rtps = static_cast<double>(count) / elapsed;
    const double mibps = rtps * static_cast<double>(o_.size) / (1024.0 * 1024.0);
    const double p50 = percentile(0.50);
    const double p99 = percentile(0.99);
    std::printf("%d connections x %zu B: %.0f round trips/s, %.1f MiB/s each way, p50 %.1f us, p99 %.1f us "
                "(%llu round trips in %.2f s, all verified)\n",
                o_.connections, o_.size, rtps, mibps, p50, p99, static_cast<unsigned long long>(count), elapsed);
    if (o_.parsable)
        std::printf("rtps=%.1f mibps=%.3f p50_us=%.2f p99_us=%.2f total_round_trips=%llu\n", rtps, mibps, p50, p99,
                    static_cast<unsigned long long>(total_round_trips_));
    return 0;
}

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        auto value = [&]() -> const char* {
            if (i + 1 >= argc) die("%s needs a value", argv[i]);
            return argv[++i];
        };
        if (a == "--host") o.host = value();
        else if (a == "--port") o.port = std::atoi(value());
        else if (a == "--unix") o.unix_path = value();
        else if (a == "--connections") o.connections = std::atoi(value());
        else if (a == "--size") o.size = static_cast<std::size_t>(std::atoll(value()));
        else if (a == "--seconds") o.seconds = std::atof(value());
        else if (a == "--warmup") o.warmup = std::atof(value());
        else if (a == "--round-trips") o.round_trips = std::strtoull(value(), nullptr, 10);
        else if (a == "--cpu") o.cpu = std::atoi(value());
        else if (a == "--parsable") o.parsable = true;
        else die("unknown argument %s (see the comment at the top of test/bench/echo_client.cpp)", argv[i]);
    }
    if (o.unix_path.empty() && (o.port <= 0 || o.port > 65535)) die("--port 1-65535 or --unix PATH is required");
    if (o.connections < 1 || o.size < 1 || o.seconds <= 0 || o.warmup < 0)
        die("bad --connections, --size, --seconds or --warmup");
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    if (o.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.cpu, &set);
        if (::sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity failed: %s", std::strerror(errno));
    }
    return Client(o).run();
}
