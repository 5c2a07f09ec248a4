// test/platform/self_pipe_test.cpp — the loop's wakeup channel (platform/self_pipe.hpp):
// flags from birth, the byte protocol (0 = wakeup, n = signal n), a full pipe that
// never blocks, errno safety, and notify() from a real signal handler and thread.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <thread>
#include <vector>

#include "platform/clock.hpp"
#include "platform/self_pipe.hpp"

using namespace evloop;

namespace {

// Everything drain() passed to on_signal, in order.
std::vector<int> drained(SelfPipe& pipe) {
    std::vector<int> signals;
    pipe.drain([&](int n) { signals.push_back(n); });
    return signals;
}

// True if `fd` polls readable within `timeout_ms`.
bool readable(int fd, int timeout_ms = 0) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

// The one process-wide pointer a signal handler can reach (as the loop's own
// signal wakeup fd must be global).
SelfPipe* g_signal_pipe = nullptr;

extern "C" void notify_from_handler(int signo) { g_signal_pipe->notify(static_cast<std::uint8_t>(signo)); }

}  // namespace

TEST_CASE("open() creates a non-blocking, close-on-exec pipe pair") {
    SelfPipe pipe;
    CHECK_FALSE(pipe.is_open());
    CHECK(pipe.read_fd() == -1);
    CHECK_FALSE(pipe.open());
    CHECK(pipe.is_open());
    for (int fd : {pipe.read_fd(), pipe.write_fd()}) {
        INFO("fd ", fd);
        struct stat st {};
        CHECK(::fstat(fd, &st) == 0);
        CHECK(S_ISFIFO(st.st_mode));
        CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
        CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    }
    CHECK((::fcntl(pipe.read_fd(), F_GETFL) & O_ACCMODE) == O_RDONLY);
    CHECK((::fcntl(pipe.write_fd(), F_GETFL) & O_ACCMODE) == O_WRONLY);
    CHECK(::write(pipe.write_fd(), "\x07", 1) == 1);  // the two ends are one pipe
    CHECK(drained(pipe) == std::vector<int>{7});
}

TEST_CASE("notify() makes read_fd readable; drain() empties it and reports only non-zero bytes, in order") {
    SelfPipe pipe;
    CHECK_FALSE(pipe.open());
    CHECK_FALSE(readable(pipe.read_fd()));
    for (int byte : {0, 2, 0, 0, 15, 255, 2, 0}) pipe.notify(static_cast<std::uint8_t>(byte));
    CHECK(readable(pipe.read_fd()));
    CHECK(drained(pipe) == std::vector<int>{2, 15, 255, 2});
    CHECK_FALSE(readable(pipe.read_fd()));
    pipe.notify();  // a plain wakeup wakes the reader but reports no signal
    CHECK(readable(pipe.read_fd()));
    CHECK(drained(pipe).empty());
    CHECK_FALSE(readable(pipe.read_fd()));
}

TEST_CASE("writes() counts the notify() calls that wrote a byte") {
    SelfPipe pipe;
    CHECK(pipe.writes() == 0);
    pipe.notify();  // not open yet: nothing written
    CHECK(pipe.writes() == 0);
    CHECK_FALSE(pipe.open());
    pipe.notify();
    pipe.notify(3);
    pipe.notify();
    CHECK(pipe.writes() == 3);
    CHECK(drained(pipe) == std::vector<int>{3});
    CHECK(pipe.writes() == 3);  // draining does not count
}

TEST_CASE("notify() preserves errno on success, on a full pipe and on a closed pipe") {
    SelfPipe pipe;
    CHECK_FALSE(pipe.open());
    errno = EDOM;
    pipe.notify(1);
    CHECK(errno == EDOM);
    CHECK(pipe.writes() == 1);
    while (::write(pipe.write_fd(), "", 1) == 1) {}  // fill it: the next write fails with EAGAIN
    errno = ERANGE;
    pipe.notify(1);
    CHECK(errno == ERANGE);
    CHECK(pipe.writes() == 1);
    pipe.close();
    errno = EILSEQ;
    pipe.notify(1);
    CHECK(errno == EILSEQ);
}

TEST_CASE("70,000 notify() calls on an undrained pipe never block; writes() stops at capacity; drain empties it") {
    SelfPipe pipe;
    CHECK_FALSE(pipe.open());
    int capacity = ::fcntl(pipe.write_fd(), F_GETPIPE_SZ);
    CHECK(capacity > 0);
    CHECK(capacity < 70'000);
    std::atomic<bool> done{false};
    std::thread notifier([&] {  // on a thread, so a notify() that blocks fails the test, not hangs it
        for (int i = 0; i < 70'000; ++i) pipe.notify(1);
        done = true;
    });
    for (std::int64_t deadline = monotonic_ns() + 5'000'000'000; !done && monotonic_ns() < deadline;)
        ::usleep(1'000);
    CHECK_MESSAGE(done.load(), "notify() blocked on a full pipe");
    while (!done) drained(pipe);  // unblock such a writer so the test can end
    notifier.join();
    CHECK(pipe.writes() == static_cast<std::uint64_t>(capacity));  // the rest hit EAGAIN
    CHECK(drained(pipe).size() == static_cast<std::size_t>(capacity));
    CHECK_FALSE(readable(pipe.read_fd()));
    pipe.notify(9);  // room again
    CHECK(drained(pipe) == std::vector<int>{9});
}

TEST_CASE("drain() on an empty or closed pipe returns at once without calling on_signal") {
    SelfPipe pipe;
    CHECK(drained(pipe).empty());  // never opened
    CHECK_FALSE(pipe.open());
    std::int64_t start = monotonic_ns();
    CHECK(drained(pipe).empty());
    CHECK(monotonic_ns() - start < 100'000'000);
    pipe.close();
    CHECK(drained(pipe).empty());
}

TEST_CASE("close() closes both fds, is idempotent, and a later notify() writes nothing and does not crash") {
    SelfPipe pipe;
    CHECK_FALSE(pipe.open());
    int r = pipe.read_fd(), w = pipe.write_fd();
    pipe.notify();
    pipe.close();
    CHECK_FALSE(pipe.is_open());
    CHECK((pipe.read_fd() == -1 && pipe.write_fd() == -1));
    CHECK((::fcntl(r, F_GETFD) == -1 && errno == EBADF));
    CHECK((::fcntl(w, F_GETFD) == -1 && errno == EBADF));
    pipe.close();
    CHECK_FALSE(pipe.is_open());
    pipe.notify(5);
    CHECK(pipe.writes() == 1);
}

TEST_CASE("destroying a SelfPipe closes both fds") {
    int r = -1, w = -1;
    {
        SelfPipe pipe;
        CHECK_FALSE(pipe.open());
        r = pipe.read_fd(), w = pipe.write_fd();
    }
    CHECK((::fcntl(r, F_GETFD) == -1 && errno == EBADF));
    CHECK((::fcntl(w, F_GETFD) == -1 && errno == EBADF));
}

TEST_CASE("notify() from another thread wakes a reader blocked in poll(2)") {
    SelfPipe pipe;
    CHECK_FALSE(pipe.open());
    std::thread waker([&] {
        ::usleep(20'000);
        pipe.notify();
    });
    std::int64_t start = monotonic_ns();
    CHECK(readable(pipe.read_fd(), 5'000));
    CHECK(monotonic_ns() - start >= 15'000'000);
    waker.join();
    CHECK(pipe.writes() == 1);
    CHECK(drained(pipe).empty());
}

TEST_CASE("notify() from a real SIGUSR1 handler delivers the signal number to drain()") {
    SelfPipe pipe;
    CHECK_FALSE(pipe.open());
    g_signal_pipe = &pipe;
    struct sigaction action {}, previous {};
    action.sa_handler = notify_from_handler;
    sigemptyset(&action.sa_mask);
    CHECK(::sigaction(SIGUSR1, &action, &previous) == 0);
    errno = EDOM;
    int rc = ::raise(SIGUSR1);  // the handler runs before raise() returns
    int errno_after = errno;
    CHECK(rc == 0);
    CHECK(errno_after == EDOM);
    CHECK(::raise(SIGUSR1) == 0);
    CHECK(::sigaction(SIGUSR1, &previous, nullptr) == 0);
    g_signal_pipe = nullptr;
    CHECK(pipe.writes() == 2);
    CHECK(drained(pipe) == std::vector<int>{SIGUSR1, SIGUSR1});
}
