// test/bench/sendfile_bench.cpp — how fast loop.sock_sendfile() moves a file
// over loopback TCP natively (sendfile(2), no copy through user space)
// against the read+send fallback. A benchmark: it prints figures; it fails
// only if a transfer fails or the receiver counts the wrong number of bytes.
//
// The file (1 GiB by default) is written once with real data (a repeated
// pseudo-random block, no holes) under /tmp, after statvfs says it fits; if
// it does not, a smaller size is used and the note says so. It is read once
// before timing, so every path reads it from the page cache. Per round, in
// turn (A B C A B C …: the machine's speed drifts, interleaving spreads it):
//  - native:   sock_sendfile(sock, file): sendfile(2);
//  - fallback: sock_sendfile(sock, /dev/zero, 0, size): the library's real
//              fallback (a character device is not a regular file): 256 KiB
//              blocks read on the executor, sent with sock_sendall;
//  - pread+sendall: the fallback's work without the executor: pread 256 KiB
//              of the same file on the loop thread, then sock_sendall.
// The receiver is a child forked per transfer, pinned to another CPU than
// the sender, reading into one 256 KiB buffer until EOF and then writing back
// the byte count; the clock stops when that count arrives. MiB/s medians,
// and the sender's CPU time (user + system, every thread: the executor's
// reads count) per GiB: on loopback the receiver's copy often bounds the
// throughput of every path, and what sendfile(2) saves shows up here.
//
//   sendfile_bench [--size-mib 1024] [--rounds 5] [--dir /tmp]
// Layer: test. Read first: net/sendfile.cpp.
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "evloop.hpp"
#include "test/bench/bench_stats.hpp"

namespace {

constexpr std::size_t kMiB = 1024 * 1024;
constexpr std::size_t kBlock = 256 * 1024;  // the fallback's block (CONTRACT 338)

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
    std::fprintf(stderr, "sendfile_bench: FAILED: %s%s%s\n", what, detail.empty() ? "" : ": ", detail.c_str());
    std::exit(1);
}

// The first two CPUs this process may use: sender, receiver (-1: no pinning).
std::pair<int, int> pick_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return {-1, -1};
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE && cpus.size() < 2; ++cpu)
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    if (cpus.size() < 2) return {-1, -1};
    return {cpus[0], cpus[1]};
}

void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)::sched_setaffinity(0, sizeof set, &set);
}

// Writes `size` bytes of a repeated 1 MiB pseudo-random block; returns the fd.
int make_file(const std::string& dir, std::size_t size, std::string& path) {
    path = dir + "/evloop-sendfile-bench-XXXXXX";
    int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) fail("mkostemp", std::strerror(errno));
    std::string block(kMiB, '\0');
    std::uint32_t x = 0x9E3779B9;
    for (auto& c : block) {
        x = x * 1103515245u + 12345u;
        c = static_cast<char>(x >> 24);
    }
    for (std::size_t done = 0; done < size;) {
        ssize_t n = ::write(fd, block.data(), std::min(block.size(), size - done));
        if (n <= 0) fail("writing the file", std::strerror(errno));
        done += static_cast<std::size_t>(n);
    }
    // Read it once, so every path below finds it in the page cache.
    std::vector<char> sink(kBlock);
    for (off_t at = 0; ::pread(fd, sink.data(), sink.size(), at) > 0; at += static_cast<off_t>(sink.size())) {}
    return fd;
}

// Forks the receiver: connects to `port`, reads to EOF, writes back the count.
pid_t start_receiver(int port, int cpu) {
    pid_t pid = ::fork();
    if (pid < 0) fail("fork", std::strerror(errno));
    if (pid > 0) return pid;
    pin(cpu);
    int sock = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::connect(sock, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) ::_exit(2);
    std::vector<char> buffer(kBlock);
    std::uint64_t count = 0;
    for (ssize_t n; (n = ::read(sock, buffer.data(), buffer.size())) != 0;) {
        if (n < 0 && errno != EINTR) ::_exit(3);
        if (n > 0) count += static_cast<std::uint64_t>(n);
    }
    if (::write(sock, &count, sizeof count) != sizeof count) ::_exit(4);
    ::_exit(0);
}

// The fallback's work without the executor: pread a block, sock_sendall it.
evloop::Task<std::size_t> pread_sendall(evloop::EventLoop& loop, int sock, int file, std::size_t size) {
    std::vector<char> block(kBlock);
    std::size_t sent = 0;
    while (sent < size) {
        ssize_t n = ::pread(file, block.data(), std::min(kBlock, size - sent), static_cast<off_t>(sent));
        if (n <= 0) co_return std::error_code(n < 0 ? errno : EIO, std::system_category());
        auto done = co_await loop.sock_sendall(sock, {block.data(), static_cast<std::size_t>(n)});
        if (!done) co_return done.error();
        sent += static_cast<std::size_t>(n);
    }
    co_return sent;
}

enum class Mode { native, fallback, pread_sendall };

double cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](timeval t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

struct Sample {
    double mib_per_second;
    double cpu_ms_per_gib;  // the sender's
};

// One transfer of `size` bytes.
Sample transfer(Mode mode, int file, int zero, std::size_t size, std::pair<int, int> cpus) {
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 || ::listen(listener, 1) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0)
        fail("listen", std::strerror(errno));
    pid_t receiver = start_receiver(ntohs(address.sin_port), cpus.second);
    int sock = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    ::close(listener);
    if (sock < 0) fail("accept", std::strerror(errno));

    evloop::EventLoop loop;
    double cpu_start = cpu_seconds();
    auto start = std::chrono::steady_clock::now();
    evloop::Result<std::size_t> sent =
        mode == Mode::native     ? loop.run_until_complete(loop.sock_sendfile(sock, file, 0, size))
        : mode == Mode::fallback ? loop.run_until_complete(loop.sock_sendfile(sock, zero, 0, size))
                                 : loop.run_until_complete(pread_sendall(loop, sock, file, size));
    if (!sent) fail("the transfer", sent.error().message());
    ::shutdown(sock, SHUT_WR);
    (void)evloop::set_nonblocking(sock, false);
    std::uint64_t count = 0;
    if (::read(sock, &count, sizeof count) != sizeof count) fail("the receiver's count");
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double cpu = cpu_seconds() - cpu_start;
    ::close(sock);
    int status = 0;
    ::waitpid(receiver, &status, 0);
    if (*sent != size || count != size || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail("byte counts", std::to_string(*sent) + " sent, " + std::to_string(count) + " received");
    double mib = static_cast<double>(size) / kMiB;
    return {mib / seconds, cpu * 1000 / (mib / 1024)};
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t size_mib = 1024;
    int rounds = 5;
    std::string dir = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        if (flag == "--size-mib") size_mib = std::strtoull(argv[i + 1], nullptr, 10);
        else if (flag == "--rounds") rounds = std::atoi(argv[i + 1]);
        else if (flag == "--dir") dir = argv[i + 1];
        else fail("unknown flag", flag);
    }
    if (size_mib == 0 || rounds <= 0) fail("--size-mib and --rounds must be positive");
    struct statvfs fs {};
    if (::statvfs(dir.c_str(), &fs) != 0) fail("statvfs", dir);
    std::size_t free_mib = static_cast<std::size_t>(fs.f_bavail) * fs.f_frsize / kMiB;
    if (free_mib < size_mib + 256) {  // keep 256 MiB for everyone else
        std::size_t fits = free_mib > 512 ? (free_mib - 256) / 2 : 64;
        std::printf("note: %s has %zu MiB free: using a %zu MiB file instead of %zu MiB\n", dir.c_str(), free_mib,
                    fits, size_mib);
        size_mib = fits;
    }
    std::size_t size = size_mib * kMiB;
    std::string path;
    int file = make_file(dir, size, path);
    ::unlink(path.c_str());  // gone when we exit, whatever happens
    int zero = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    if (zero < 0) fail("/dev/zero", std::strerror(errno));
    auto cpus = pick_cpus();
    pin(cpus.first);
    std::printf("sendfile_bench: %zu MiB over 127.0.0.1, %d rounds, sender CPU %d, receiver CPU %d\n", size_mib,
                rounds, cpus.first, cpus.second);

    const Mode modes[] = {Mode::native, Mode::fallback, Mode::pread_sendall};
    const char* names[] = {"native sendfile(2)", "fallback (library, /dev/zero)", "pread + sock_sendall"};
    std::vector<double> samples[3], cpu[3];
    for (int round = 0; round < rounds; ++round)
        for (int m = 0; m < 3; ++m) {
            Sample sample = transfer(modes[m], file, zero, size, cpus);
            samples[m].push_back(sample.mib_per_second);
            cpu[m].push_back(sample.cpu_ms_per_gib);
        }
    std::printf("  %-34s %10s   %s\n", "throughput", "median", "min–max");
    for (int m = 0; m < 3; ++m) evloop::bench::print_detail(names[m], samples[m], "MiB/s");
    std::printf("  %-34s %10s   %s\n", "sender CPU per GiB", "median", "min–max");
    for (int m = 0; m < 3; ++m) evloop::bench::print_detail(names[m], cpu[m], "ms");
    std::printf("  native / fallback: %.2fx\n",
                evloop::bench::summarize(samples[0]).median / evloop::bench::summarize(samples[1]).median);
    ::close(file);
    ::close(zero);
    return 0;
}
