// test/platform/fd_test.cpp — the OS vocabulary of platform/fd.hpp on real pipes:
// Fd's ownership rules (close on destruction, move, release, reset), the flag
// helpers, is_open_fd, retry_eintr (scripted and against a real signal) and last_error.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <csignal>
#include <thread>
#include <type_traits>

#include "platform/fd.hpp"

using namespace evloop;

namespace {

// A plain pipe (blocking, no close-on-exec, unlike evloop's own) so the flag
// helpers have something to change.
struct RawPipe {
    int r = -1, w = -1;
    RawPipe() {
        int fds[2];
        CHECK(::pipe(fds) == 0);
        r = fds[0], w = fds[1];
    }
};

// Closed as fcntl(2) sees it: F_GETFD fails with EBADF.
bool closed(int fd) { return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF; }

extern "C" void do_nothing(int) {}

}  // namespace

TEST_CASE("Fd is move-only, and an empty Fd holds -1 and is false") {
    static_assert(!std::is_copy_constructible_v<Fd> && !std::is_copy_assignable_v<Fd>);
    static_assert(std::is_nothrow_move_constructible_v<Fd> && std::is_nothrow_move_assignable_v<Fd>);
    Fd empty;
    CHECK(empty.get() == -1);
    CHECK_FALSE(static_cast<bool>(empty));
    Fd negative(-1);
    CHECK_FALSE(static_cast<bool>(negative));
}

TEST_CASE("Fd closes its descriptor on destruction") {
    RawPipe p;
    {
        Fd r(p.r), w(p.w);
        CHECK(static_cast<bool>(r));
        CHECK(r.get() == p.r);
        CHECK_FALSE(closed(p.r));
    }
    CHECK(closed(p.r));
    CHECK(closed(p.w));
}

TEST_CASE("move construction transfers ownership: the source is empty and only the target closes") {
    RawPipe p;
    Fd w(p.w);
    {
        Fd source(p.r);
        Fd target(std::move(source));
        CHECK(source.get() == -1);
        CHECK(target.get() == p.r);
        source.reset();  // closing the moved-from Fd must not touch the descriptor
        CHECK_FALSE(closed(p.r));
    }
    CHECK(closed(p.r));
}

TEST_CASE("move assignment closes the target's old descriptor and takes the source's; self-move keeps it") {
    RawPipe a, b;
    Fd target(a.r), source(b.r), aw(a.w), bw(b.w);
    target = std::move(source);
    CHECK(closed(a.r));
    CHECK(target.get() == b.r);
    CHECK(source.get() == -1);
    CHECK_FALSE(closed(b.r));
    Fd& alias = target;
    target = std::move(alias);
    CHECK(target.get() == b.r);
    CHECK_FALSE(closed(b.r));
}

TEST_CASE("release() gives up ownership: the descriptor outlives the Fd") {
    RawPipe p;
    Fd w(p.w);
    int released = -1;
    {
        Fd r(p.r);
        released = r.release();
        CHECK(r.get() == -1);
        CHECK_FALSE(static_cast<bool>(r));
    }
    CHECK(released == p.r);
    CHECK_FALSE(closed(p.r));
    CHECK(::close(released) == 0);
}

TEST_CASE("reset(fd) closes the old descriptor and owns the new one; reset() closes and empties") {
    RawPipe p;
    Fd fd(p.r);
    fd.reset(p.w);
    CHECK(closed(p.r));
    CHECK(fd.get() == p.w);
    CHECK_FALSE(closed(p.w));
    fd.reset();
    CHECK(closed(p.w));
    CHECK(fd.get() == -1);
    fd.reset();  // resetting an empty Fd is harmless
    CHECK(fd.get() == -1);
}

TEST_CASE("set_nonblocking turns O_NONBLOCK on and off, leaves other flags, and reports EBADF") {
    RawPipe p;
    Fd r(p.r), w(p.w);
    int access = ::fcntl(p.w, F_GETFL) & O_ACCMODE;
    CHECK((::fcntl(p.w, F_GETFL) & O_NONBLOCK) == 0);
    CHECK_FALSE(set_nonblocking(p.w));
    CHECK((::fcntl(p.w, F_GETFL) & O_NONBLOCK) != 0);
    CHECK_FALSE(set_nonblocking(p.w, true));  // already on: still fine
    CHECK((::fcntl(p.w, F_GETFL) & O_NONBLOCK) != 0);
    CHECK_FALSE(set_nonblocking(p.r));  // the proof: an empty pipe's read no longer blocks
    char c;
    CHECK((::read(p.r, &c, 1) == -1 && errno == EAGAIN));
    CHECK_FALSE(set_nonblocking(p.w, false));
    CHECK((::fcntl(p.w, F_GETFL) & O_NONBLOCK) == 0);
    CHECK((::fcntl(p.w, F_GETFL) & O_ACCMODE) == access);
    w.reset();
    std::error_code ec = set_nonblocking(p.w);
    CHECK(ec == std::errc::bad_file_descriptor);
    CHECK(ec.category() == std::system_category());
}

TEST_CASE("set_cloexec sets FD_CLOEXEC, is idempotent, and reports EBADF") {
    RawPipe p;
    Fd r(p.r), w(p.w);
    CHECK((::fcntl(p.r, F_GETFD) & FD_CLOEXEC) == 0);
    CHECK_FALSE(set_cloexec(p.r));
    CHECK((::fcntl(p.r, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK_FALSE(set_cloexec(p.r));
    CHECK((::fcntl(p.r, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK((::fcntl(p.w, F_GETFD) & FD_CLOEXEC) == 0);  // only the fd asked for
    r.reset();
    CHECK(set_cloexec(p.r) == std::errc::bad_file_descriptor);
}

TEST_CASE("is_open_fd is true for an open fd, false for a closed, negative or out-of-range one") {
    RawPipe p;
    Fd r(p.r), w(p.w);
    CHECK(is_open_fd(p.r));
    CHECK(is_open_fd(p.w));
    r.reset();
    CHECK_FALSE(is_open_fd(p.r));
    CHECK(is_open_fd(p.w));
    CHECK_FALSE(is_open_fd(-1));
    CHECK_FALSE(is_open_fd(INT_MIN));
    CHECK_FALSE(is_open_fd(INT_MAX));
}

TEST_CASE("retry_eintr retries an op failing with EINTR until it succeeds, and returns its result") {
    int calls = 0;
    auto op = [&]() -> long {
        if (++calls <= 2) {
            errno = EINTR;
            return -1;
        }
        return 42;
    };
    static_assert(std::is_same_v<decltype(retry_eintr(op)), long>);  // the op's own type
    CHECK(retry_eintr(op) == 42);
    CHECK(calls == 3);
    calls = 10;  // succeeds at once: one call
    CHECK(retry_eintr(op) == 42);
    CHECK(calls == 11);
}

TEST_CASE("retry_eintr does not retry other errors (errno left as set), nor a success leaving errno == EINTR") {
    for (int error : {EAGAIN, EBADF, EINVAL}) {
        int calls = 0;
        int result = retry_eintr([&] {  // fails once; a wrong retry would return 0
            if (++calls > 1) return 0;
            errno = error;
            return -1;
        });
        int errno_after = errno;
        CHECK(result == -1);
        CHECK(calls == 1);
        CHECK(errno_after == error);
    }
    int calls = 0;  // only -1 is a failure: a success that leaves errno == EINTR is not retried
    long result = retry_eintr([&] {
        if (++calls > 1) return 7L;
        errno = EINTR;
        return 0L;
    });
    CHECK(result == 0);
    CHECK(calls == 1);
}

TEST_CASE("retry_eintr resumes a blocking read(2) that a real signal interrupts") {
    RawPipe p;
    Fd r(p.r), w(p.w);
    struct sigaction action {}, previous {};
    action.sa_handler = do_nothing;  // no SA_RESTART: the kernel returns EINTR
    sigemptyset(&action.sa_mask);
    CHECK(::sigaction(SIGUSR2, &action, &previous) == 0);
    std::atomic<int> interrupted{0};
    pthread_t reader = ::pthread_self();
    std::thread interrupter([&] {
        // Signal the reader until one read has failed with EINTR, then give it a byte.
        for (int i = 0; i < 5'000 && interrupted.load() == 0; ++i) {
            ::pthread_kill(reader, SIGUSR2);
            ::usleep(1'000);
        }
        (void)::write(p.w, "k", 1);
    });
    int calls = 0;
    char c = 0;
    long n = retry_eintr([&] {
        ++calls;
        long got = ::read(p.r, &c, 1);
        if (got == -1 && errno == EINTR) ++interrupted;
        return got;
    });
    interrupter.join();
    sigset_t pending;
    ::sigpending(&pending);  // returning from a syscall delivers any signal still pending, to our handler
    CHECK(::sigaction(SIGUSR2, &previous, nullptr) == 0);
    CHECK(n == 1);
    CHECK(c == 'k');
    CHECK(interrupted.load() >= 1);
    CHECK(calls == interrupted.load() + 1);
}

TEST_CASE("last_error() is errno in the system category, equivalent to the portable std::errc") {
    errno = ENOENT;
    std::error_code ec = last_error();
    CHECK(ec.value() == ENOENT);
    CHECK(ec.category() == std::system_category());
    CHECK(ec == std::errc::no_such_file_or_directory);
    errno = EAGAIN;
    CHECK(last_error() == std::errc::resource_unavailable_try_again);
    errno = 0;
    CHECK_FALSE(last_error());
    CHECK(::fcntl(-1, F_GETFD) == -1);  // a real failure
    CHECK(last_error() == std::errc::bad_file_descriptor);
}
