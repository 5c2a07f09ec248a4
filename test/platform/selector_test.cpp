// test/platform/selector_test.cpp — the Selector contract (platform/selector.hpp),
// proved on real pipes, socketpairs and 127.0.0.1 TCP sockets. Every case runs
// against every backend in available_backends(), as asyncio runs one body per selector.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "platform/clock.hpp"
#include "platform/fd.hpp"
#include "platform/selector.hpp"

using namespace evloop;

namespace {

// A non-blocking, close-on-exec pipe (r reads, w writes) or AF_UNIX socketpair.
struct Pipe {
    Fd r, w;
    explicit Pipe(bool socketpair = false) {
        int fds[2];
        CHECK((socketpair ? ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds)
                          : ::pipe2(fds, O_NONBLOCK | O_CLOEXEC)) == 0);
        r.reset(fds[0]), w.reset(fds[1]);
    }
};

void put_byte(int fd) { CHECK(::write(fd, "x", 1) == 1); }

// Opens a selector of each available backend and runs `body(selector, backend)`;
// every failure message names the backend.
template <class Body>
void for_each_backend(Body body) {
    for (Backend backend : available_backends()) {
        std::string name(backend_name(backend));
        INFO("backend: ", name);
        std::error_code ec;
        std::unique_ptr<Selector> sel = make_selector(backend, ec);
        CHECK_MESSAGE(sel != nullptr, ec.message());
        if (!sel) continue;
        CHECK(std::string(sel->name()) == name);
        body(*sel, backend);
    }
}

// One select(): the bits it reported for `fd` (0 if absent); `count` gets the batch size.
std::uint32_t ready_for(Selector& sel, int fd, std::int64_t timeout_ns = 0, std::size_t* count = nullptr) {
    std::span<const SelectorEvent> ready;
    CHECK_FALSE(sel.select(timeout_ns, ready));
    std::uint32_t bits = 0;
    for (const SelectorEvent& ev : ready)
        if (ev.key.fd == fd) bits |= ev.ready;
    if (count) *count = ready.size();
    return bits;
}

// A copy of the key registered for `fd`, or an empty key (after a failed CHECK).
SelectorKey key_of(const Selector& sel, int fd) {
    const SelectorKey* key = sel.get_key(fd);
    CHECK_MESSAGE(key != nullptr, "no key for fd " << fd);
    return key ? *key : SelectorKey{};
}

}  // namespace

TEST_CASE("register_fd refuses a duplicate (EEXIST), a bad mask or fd (EINVAL), a closed fd (EBADF); "
          "modify/unregister_fd of an unknown fd give ENOENT") {
    for_each_backend([](Selector& sel, Backend) {
        Pipe p;
        CHECK_FALSE(sel.register_fd(p.r.get(), EVENT_READ, nullptr));
        CHECK(sel.register_fd(p.r.get(), EVENT_READ, nullptr) == std::errc::file_exists);
        CHECK(sel.register_fd(p.w.get(), 0, nullptr) == std::errc::invalid_argument);
        CHECK(sel.register_fd(p.w.get(), 4, nullptr) == std::errc::invalid_argument);
        CHECK(sel.register_fd(p.w.get(), EVENT_WRITE | 8, nullptr) == std::errc::invalid_argument);
        CHECK(sel.register_fd(-1, EVENT_READ, nullptr) == std::errc::invalid_argument);
        int closed = p.w.release();
        ::close(closed);
        CHECK(sel.register_fd(closed, EVENT_READ, nullptr) == std::errc::bad_file_descriptor);
        CHECK(sel.get_key(closed) == nullptr);  // a refusal leaves no key behind
        CHECK(sel.size() == 1);
        CHECK(sel.modify(p.r.get(), 0, nullptr) == std::errc::invalid_argument);
        CHECK(sel.modify(p.r.get(), 4, &sel) == std::errc::invalid_argument);
        CHECK((key_of(sel, p.r.get()).events == EVENT_READ && key_of(sel, p.r.get()).data == nullptr));
        CHECK_FALSE(sel.unregister_fd(p.r.get()));
        CHECK(sel.unregister_fd(-1) == std::errc::no_such_file_or_directory);
        CHECK(sel.unregister_fd(p.r.get()) == std::errc::no_such_file_or_directory);
        CHECK(sel.modify(p.r.get(), EVENT_READ, nullptr) == std::errc::no_such_file_or_directory);
    });
}

TEST_CASE("get_key returns fd, events, data and generation, follows modify, is null after unregister; size counts; "
          "each registration, even of a reused fd number, gets a new generation that its events carry") {
    for_each_backend([](Selector& sel, Backend) {
        Pipe old_pipe, fresh;
        int number = old_pipe.r.get(), a = 0, b = 0;
        std::set<std::uint32_t> seen;
        for (int i = 0; i < 3; ++i) {
            CHECK(sel.get_key(number) == nullptr);
            CHECK_FALSE(sel.register_fd(number, EVENT_READ, &a));
            CHECK_FALSE(sel.register_fd(fresh.w.get(), EVENT_WRITE, &b));
            CHECK(sel.size() == 2);
            SelectorKey key = key_of(sel, number);
            CHECK((key.fd == number && key.events == EVENT_READ && key.data == &a));
            CHECK(seen.insert(key.generation).second);
            CHECK_FALSE(sel.modify(number, EVENT_READ | EVENT_WRITE, &b));
            SelectorKey changed = key_of(sel, number);
            CHECK((changed.events == (EVENT_READ | EVENT_WRITE) && changed.data == &b));
            CHECK(changed.generation == key.generation);  // modify is not a new registration
            CHECK_FALSE(sel.unregister_fd(number));
            CHECK(sel.get_key(number) == nullptr);
            CHECK(sel.size() == 1);
            CHECK_FALSE(sel.unregister_fd(fresh.w.get()));
        }
        old_pipe.r.reset();
        Fd reused(::dup3(fresh.r.get(), number, O_CLOEXEC));  // the same number, another pipe
        CHECK(reused.get() == number);
        CHECK_FALSE(sel.register_fd(number, EVENT_READ, &a));
        std::uint32_t generation = key_of(sel, number).generation;
        CHECK(seen.insert(generation).second);
        put_byte(fresh.w.get());
        std::span<const SelectorEvent> ready;
        CHECK_FALSE(sel.select(0, ready));
        CHECK(ready.size() == 1);
        for (const SelectorEvent& ev : ready) CHECK((ev.key.generation == generation && ev.key.data == &a));
        CHECK_FALSE(sel.unregister_fd(number));
        CHECK(sel.size() == 0);
    });
}

TEST_CASE("timeouts: 0 returns at once, 400 us waits >= 0.3 ms (rounds up, never spins), 20 ms waits >= 19 ms, "
          "negative blocks until another thread makes an fd readable") {
    for_each_backend([](Selector& sel, Backend) {
        Pipe p;
        CHECK_FALSE(sel.register_fd(p.r.get(), EVENT_READ, nullptr));
        std::size_t count = 0;
        auto idle_select_ns = [&](std::int64_t timeout_ns) {  // how long one select took; no events
            std::int64_t start = monotonic_ns();
            CHECK(ready_for(sel, p.r.get(), timeout_ns, &count) == 0);
            CHECK(count == 0);
            return monotonic_ns() - start;
        };
        CHECK(idle_select_ns(0) < 100'000'000);
        for (int i = 0; i < 5; ++i) CHECK(idle_select_ns(400'000) >= 300'000);
        CHECK(idle_select_ns(20'000'000) >= 19'000'000);
        std::int64_t start = monotonic_ns();  // negative: forever, until another thread writes
        std::thread writer([fd = p.w.get()] {
            ::usleep(50'000);
            (void)::write(fd, "x", 1);
        });
        CHECK(ready_for(sel, p.r.get(), -1, &count) == EVENT_READ);
        CHECK(monotonic_ns() - start >= 45'000'000);
        writer.join();
        CHECK(count == 1);
        CHECK_FALSE(sel.unregister_fd(p.r.get()));
    });
}

TEST_CASE("pipe data is reported as EVENT_READ by every select until read (level-triggered), masked by "
          "interest; a hangup (write end closed) reports READ, and WRITE too if asked") {
    for_each_backend([](Selector& sel, Backend) {
        Pipe p;
        CHECK_FALSE(sel.register_fd(p.r.get(), EVENT_READ | EVENT_WRITE, nullptr));
        CHECK_FALSE(sel.register_fd(p.w.get(), EVENT_READ, nullptr));  // writable, but only READ asked
        std::size_t count = 0;
        CHECK(ready_for(sel, p.r.get(), 0, &count) == 0);
        CHECK(count == 0);
        put_byte(p.w.get());
        for (int i = 0; i < 3; ++i) {
            CHECK(ready_for(sel, p.r.get(), 0, &count) == EVENT_READ);  // never WRITE on a read end
            CHECK(count == 1);                                          // nothing for the write end
        }
        char c;
        CHECK(::read(p.r.get(), &c, 1) == 1);
        CHECK(ready_for(sel, p.r.get()) == 0);
        CHECK_FALSE(sel.unregister_fd(p.w.get()));
        p.w.reset();  // a hangup counts as both, masked by interest; the owner's read sees EOF
        CHECK(ready_for(sel, p.r.get()) == (EVENT_READ | EVENT_WRITE));
        CHECK_FALSE(sel.modify(p.r.get(), EVENT_READ, nullptr));
        CHECK(ready_for(sel, p.r.get()) == EVENT_READ);
        CHECK(::read(p.r.get(), &c, 1) == 0);
        CHECK_FALSE(sel.unregister_fd(p.r.get()));
    });
}

TEST_CASE("a socketpair reports EVENT_WRITE, both bits once also readable, and modify changes what is reported") {
    for_each_backend([](Selector& sel, Backend) {
        Pipe s(true);
        int a = 0, b = 0;
        CHECK_FALSE(sel.register_fd(s.r.get(), EVENT_WRITE, &a));
        CHECK(ready_for(sel, s.r.get()) == EVENT_WRITE);
        CHECK_FALSE(sel.modify(s.r.get(), EVENT_READ | EVENT_WRITE, &a));
        CHECK(ready_for(sel, s.r.get()) == EVENT_WRITE);  // nothing to read yet
        put_byte(s.w.get());
        CHECK(ready_for(sel, s.r.get()) == (EVENT_READ | EVENT_WRITE));
        CHECK_FALSE(sel.modify(s.r.get(), EVENT_READ, &a));
        CHECK(ready_for(sel, s.r.get()) == EVENT_READ);
        CHECK_FALSE(sel.modify(s.r.get(), EVENT_WRITE, &a));
        CHECK(ready_for(sel, s.r.get()) == EVENT_WRITE);
        // Same interest, new data: epoll skips the kernel here; the event must carry &b.
        CHECK_FALSE(sel.modify(s.r.get(), EVENT_WRITE, &b));
        std::span<const SelectorEvent> ready;
        CHECK_FALSE(sel.select(0, ready));
        CHECK(ready.size() == 1);
        for (const SelectorEvent& ev : ready) CHECK(ev.key.data == &b);
        CHECK_FALSE(sel.unregister_fd(s.r.get()));
    });
}

TEST_CASE("127.0.0.1 TCP: a pending connection makes the listener readable, the connected client writable") {
    for_each_backend([](Selector& sel, Backend) {
        Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        sockaddr_in addr{AF_INET, 0, {htonl(INADDR_LOOPBACK)}, {}};  // port 0: the kernel picks
        socklen_t len = sizeof addr;
        auto* sa = reinterpret_cast<sockaddr*>(&addr);
        CHECK(::bind(listener.get(), sa, sizeof addr) == 0);
        CHECK(::listen(listener.get(), 8) == 0);
        CHECK(::getsockname(listener.get(), sa, &len) == 0);
        CHECK_FALSE(sel.register_fd(listener.get(), EVENT_READ, nullptr));
        CHECK(ready_for(sel, listener.get()) == 0);
        CHECK((::connect(client.get(), sa, sizeof addr) == 0 || errno == EINPROGRESS));
        CHECK_FALSE(sel.register_fd(client.get(), EVENT_WRITE, nullptr));
        std::uint32_t listener_bits = 0, client_bits = 0;
        for (std::int64_t deadline = monotonic_ns() + 2'000'000'000;
             (!listener_bits || !client_bits) && monotonic_ns() < deadline;) {
            std::span<const SelectorEvent> ready;
            CHECK_FALSE(sel.select(100'000'000, ready));
            for (const SelectorEvent& ev : ready)
                (ev.key.fd == listener.get() ? listener_bits : client_bits) |= ev.ready;
        }
        CHECK(listener_bits == EVENT_READ);
        CHECK(client_bits == EVENT_WRITE);
        Fd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        CHECK(accepted.get() >= 0);
        CHECK_FALSE(sel.unregister_fd(listener.get()));
        CHECK_FALSE(sel.unregister_fd(client.get()));
    });
}

TEST_CASE("close() releases the kernel object, makes select and register_fd fail, and is idempotent") {
    auto open_fds = [] {
        int n = 0;
        for (int fd = 0; fd < 4096; ++fd) n += is_open_fd(fd) ? 1 : 0;
        return n;
    };
    Pipe p;
    put_byte(p.w.get());
    int before = open_fds();
    for_each_backend([&](Selector& sel, Backend) {
        CHECK_FALSE(sel.register_fd(p.r.get(), EVENT_READ, nullptr));
        sel.close();
        CHECK(open_fds() == before);  // epoll's fd is gone; poll never had one
        std::span<const SelectorEvent> ready;
        CHECK(sel.select(0, ready));
        CHECK(ready.empty());
        CHECK(sel.register_fd(p.w.get(), EVENT_WRITE, nullptr));
        sel.close();
        CHECK(sel.select(0, ready));
        CHECK(open_fds() == before);
    });
}

TEST_CASE("1,000 registered pipes with 10 ready report exactly those 10, with their data") {
    constexpr int kPipes = 1000;
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < 2 * kPipes + 64) {
        MESSAGE("skipped: RLIMIT_NOFILE is " << limit.rlim_cur << ", this test needs " << 2 * kPipes + 64);
        return;
    }
    std::vector<Pipe> pipes(kPipes);
    for_each_backend([&](Selector& sel, Backend) {
        for (Pipe& p : pipes) CHECK_FALSE(sel.register_fd(p.r.get(), EVENT_READ, &p));
        CHECK(sel.size() == kPipes);
        std::set<int> expected, got;
        for (int i = 0; i < kPipes; i += 100) put_byte(pipes[i].w.get()), expected.insert(pipes[i].r.get());
        std::span<const SelectorEvent> ready;
        CHECK_FALSE(sel.select(0, ready));
        for (const SelectorEvent& ev : ready) {
            got.insert(ev.key.fd);
            auto* pipe = static_cast<Pipe*>(ev.key.data);  // the registration's data, untouched
            CHECK((pipe >= pipes.data() && pipe < pipes.data() + kPipes && pipe->r.get() == ev.key.fd));
        }
        CHECK(ready.size() == 10);
        CHECK(got == expected);
        char c;
        for (int fd : expected) CHECK(::read(fd, &c, 1) == 1);
        for (Pipe& p : pipes) CHECK_FALSE(sel.unregister_fd(p.r.get()));
    });
}

TEST_CASE("more ready fds than one batch holds: every select reports valid events and the batch grows to all") {
    // epoll reads at most a batch per call and grows it after a full one; its
    // event array is resized at the start of the next select, while the last
    // batch is no longer in use. Under ASan a fill past the array's end fails.
    constexpr int kPipes = 300;
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < 2 * kPipes + 64) {
        MESSAGE("skipped: RLIMIT_NOFILE is " << limit.rlim_cur << ", this test needs " << 2 * kPipes + 64);
        return;
    }
    std::vector<Pipe> pipes(kPipes);
    for (Pipe& p : pipes) put_byte(p.w.get());  // all stay ready: nothing reads them
    for_each_backend([&](Selector& sel, Backend) {
        for (Pipe& p : pipes) CHECK_FALSE(sel.register_fd(p.r.get(), EVENT_READ, &p));
        std::size_t last = 0;
        for (int call = 0; call < 8 && last < kPipes; ++call) {
            std::span<const SelectorEvent> ready;
            CHECK_FALSE(sel.select(0, ready));
            CHECK(ready.size() >= last);  // a batch never shrinks
            std::set<int> seen;
            for (const SelectorEvent& ev : ready) {
                auto* pipe = static_cast<Pipe*>(ev.key.data);
                CHECK((pipe >= pipes.data() && pipe < pipes.data() + kPipes && pipe->r.get() == ev.key.fd));
                CHECK(ev.ready == EVENT_READ);
                seen.insert(ev.key.fd);
            }
            CHECK(seen.size() == ready.size());  // no fd twice
            last = ready.size();
        }
        CHECK(last == kPipes);  // within a few calls every ready fd is reported at once
        for (Pipe& p : pipes) CHECK_FALSE(sel.unregister_fd(p.r.get()));
    });
}

TEST_CASE("a regular file: epoll refuses it with EPERM, poll accepts it and reports it always ready") {
    char path[] = "/tmp/evloop_selector_test_XXXXXX";
    Fd file(::mkostemp(path, O_CLOEXEC));
    CHECK(file.get() >= 0);
    ::unlink(path);
    for_each_backend([&](Selector& sel, Backend backend) {
        std::error_code ec = sel.register_fd(file.get(), EVENT_READ | EVENT_WRITE, nullptr);
        if (backend == Backend::epoll) {  // epoll_ctl(2): a regular file cannot be polled → EPERM
            CHECK(ec == std::errc::operation_not_permitted);
            CHECK(sel.get_key(file.get()) == nullptr);
            CHECK(sel.size() == 0);
        } else {  // poll(2) reports a regular file as always readable and writable
            CHECK_FALSE(ec);
            CHECK(ready_for(sel, file.get()) == (EVENT_READ | EVENT_WRITE));
            CHECK_FALSE(sel.unregister_fd(file.get()));
        }
    });
}

// A regression test: epoll once grew its key table to fd+1 slots before the
// kernel checked the fd, so INT_MAX asked for ~48 GiB. The child caps its
// address space so a regression fails quickly instead of exhausting memory.
TEST_CASE("register_fd of a huge never-opened fd number fails with EBADF without sizing a table for it") {
    for_each_backend([](Selector& sel, Backend) {
        unsigned long vm_pages = 0;
        if (FILE* statm = std::fopen("/proc/self/statm", "r")) {
            CHECK(std::fscanf(statm, "%lu", &vm_pages) == 1);
            std::fclose(statm);
        }
        pid_t child = ::fork();
        if (child == 0) {
            ::dup2(::open("/dev/null", O_WRONLY), 2);  // keep the child's abort message quiet
            std::signal(SIGABRT, SIG_DFL);               // and out of doctest's crash handler
            rlimit cap{};
            cap.rlim_cur = cap.rlim_max = vm_pages * static_cast<unsigned long>(::sysconf(_SC_PAGESIZE)) + (256ul << 20);
            ::setrlimit(RLIMIT_AS, &cap);
            // noexcept: a throw must abort the child, not run the rest of the suite in it.
            auto ec = [&]() noexcept { return sel.register_fd(INT_MAX, EVENT_READ, nullptr); }();
            ::_exit(ec == std::errc::bad_file_descriptor ? 0 : 3);
        }
        int status = -1;
        CHECK((child > 0 && ::waitpid(child, &status, 0) == child));
        CHECK_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0),
                      "child wait status " << status << ": exit 3 = not EBADF; a signal, or exit 1 under "
                                                         "ASan = register_fd died allocating");
    });
}

TEST_CASE("available_backends lists epoll first on Linux; backend_name names each; set_default_backend "
          "changes what Backend::automatic creates, and automatic restores the OS default") {
    std::span<const Backend> backends = available_backends();
    CHECK_FALSE(backends.empty());
#if defined(__linux__) && !defined(EVLOOP_FORCE_POLL)
    CHECK(backends.size() == 2);
    CHECK((backends[0] == Backend::epoll && backends[1] == Backend::poll));
#endif
    CHECK(std::string(backend_name(Backend::epoll)) == "epoll");
    CHECK(std::string(backend_name(Backend::poll)) == "poll");
    CHECK(std::string(backend_name(Backend::automatic)) == "automatic");
    Backend original = default_backend();  // test_main may have set it from EVLOOP_TEST_BACKEND
    for (Backend backend : available_backends()) {
        set_default_backend(backend);
        CHECK(default_backend() == backend);
        std::error_code ec;
        std::unique_ptr<Selector> sel = make_selector(Backend::automatic, ec);
        CHECK(sel != nullptr);
        if (sel) CHECK(std::string(sel->name()) == std::string(backend_name(backend)));
    }
    set_default_backend(Backend::automatic);
    CHECK(default_backend() == available_backends()[0]);
    set_default_backend(original);
    CHECK(default_backend() == original);
}
