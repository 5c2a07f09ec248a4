// test/proc/subprocess_close_test.cpp — the end of a subprocess transport:
// close(), kill/send_signal around the exit, cancelling subprocess_exec,
// the loop closing with children running, and 1,000 children leaving no
// zombie. Real children, both child watchers (test::EachWatcher), both
// backends (EVLOOP_TEST_BACKEND). The events of a normal run are in
// subprocess_test.cpp.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>

#include "test/proc/subprocess_fixture.hpp"

using namespace evloop;
using evloop::test::ChildRun;
using evloop::test::Recorder;
using evloop::test::run_until;

namespace {

const std::error_code kESRCH = std::make_error_code(std::errc::no_such_process);

// Waits, outside the loop, until the child has exited (it stays a zombie).
bool wait_exited_unreaped(int pid) {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == 0 && info.si_pid == pid;
}

}  // namespace

TEST_CASE("close() closes the pipes and kills a running child; idempotent; is_closing (CONTRACT 225, 227)") {
    test::EachWatcher each;
    ChildRun run;
    run.exec("sleep", {"10"});
    SubprocessTransport& t = *run.transport;
    run.loop.set_debug(true);
    test::LogCapture logs;
    t.close();
    CHECK(logs.contains("Close running child process: kill"));
    CHECK(t.is_closing());
    for (int fd = 0; fd < 3; ++fd) CHECK(t.get_pipe_transport(fd)->is_closing());
    t.close();  // nothing more
    REQUIRE(run.finish());
    CHECK(t.get_returncode() == -SIGKILL);
    CHECK(run.protocol->lost == 1);
    CHECK(run.protocol->events.back() == "lost");
    CHECK(test::child_pids().empty());
}

TEST_CASE("close() does not kill a child that exited but was not yet reported (CONTRACT 226)") {
    test::EachWatcher each;
    ChildRun run;
    run.shell("read line; exit 4");
    // The child exits while the loop does not run: the watcher cannot
    // have reaped it, it is a zombie close() must leave alone.
    REQUIRE(!run.transport->get_pipe_transport(0)->write("go\n"));
    REQUIRE(wait_exited_unreaped(run.transport->get_pid()));
    CHECK(!run.transport->get_returncode());
    // Killing a zombie changes nothing visible, so the debug log tells:
    // asyncio's "Close running child process: kill" must not appear.
    run.loop.set_debug(true);
    test::LogCapture logs;
    run.transport->close();
    CHECK(!logs.contains("Close running child process"));
    REQUIRE(run.finish());
    CHECK(run.transport->get_returncode() == 4);
}

TEST_CASE("send_signal is a no-op after the exit, ESRCH after connection_lost (CONTRACT 228)") {
    test::EachWatcher each;
    ChildRun run;
    std::error_code at_exit_signal, at_exit_kill, at_exit_terminate;
    run.protocol->on_exited = [&](Recorder& r) {
        at_exit_signal = r.transport->send_signal(SIGTERM);
        at_exit_kill = r.transport->kill();
        at_exit_terminate = r.transport->terminate();
    };
    run.shell("exit 0");
    REQUIRE(run.finish());
    CHECK(!at_exit_signal);
    CHECK(!at_exit_kill);
    CHECK(!at_exit_terminate);
    CHECK(run.transport->get_returncode() == 0);  // and no signal changed it
    CHECK(run.transport->send_signal(SIGTERM) == kESRCH);
    CHECK(run.transport->kill() == kESRCH);
    CHECK(run.transport->terminate() == kESRCH);
}

TEST_CASE("send_signal while the child exits never causes a spurious 255 (CONTRACT 214)") {
    test::EachWatcher each;
    test::LogCapture logs;
    ChildRun run;
    run.exec("/bin/true", {});
    bool ok = true;
    REQUIRE(run_until(run.loop, [&] {
        if (run.protocol->lost > 0) return true;
        ok = ok && !run.transport->send_signal(0);  // 0 only asks whether it exists
        return false;
    }));
    CHECK(ok);
    CHECK(run.transport->get_returncode() == 0);
    CHECK(!logs.contains("255"));
}

TEST_CASE("cancelling subprocess_exec kills the child and reaps it, no fd left (CONTRACT 231)") {
    test::EachWatcher each;
    int fds = test::open_fd_count();
    {
        EventLoop loop;
        auto protocol = std::make_shared<Recorder>();
        Future<SubprocessConnection> f = loop.subprocess_exec([protocol] { return protocol; }, "sleep", {"10"});
        CHECK(test::child_pids().size() == 1);
        CHECK(f.cancel());
        // As asyncio's transport: the protocol still sees a whole, short life.
        REQUIRE(run_until(loop, [&] { return protocol->lost > 0; }));
        CHECK(protocol->returncode_at_lost == -SIGKILL);
        CHECK(test::child_pids().empty());
        CHECK(f.cancelled());
    }
    CHECK(test::open_fd_count() == fds);
}

TEST_CASE("loop.close() with children running: the transports kill them, the watcher reaps them (CONTRACT 232)") {
    test::EachWatcher each;
    int fds = test::open_fd_count();
    auto protocol = std::make_shared<Recorder>();
    {
        EventLoop loop;
        auto make = [protocol] { return protocol; };
        Future<SubprocessConnection> connected = loop.subprocess_exec(make, "sleep", {"10"});
        REQUIRE(run_until(loop, [&] { return connected.done(); }));
        // And one whose transport never even reached connection_made.
        Future<SubprocessConnection> fresh = loop.subprocess_exec(make, "sleep", {"10"});
        CHECK(test::child_pids().size() == 2);
        REQUIRE(!loop.close());
        CHECK(test::child_pids().empty());
        CHECK(connected.result()->transport->is_closing());
        CHECK(connected.result()->transport->kill() == kESRCH);  // reaped: never signalled again
    }
    CHECK(protocol->lost == 0);  // a closing loop calls nothing back
    CHECK(test::child_pids().empty());
    CHECK(test::open_fd_count() == fds);
}

TEST_CASE("a child of ours that no transport started is left for us to reap") {
    test::EachWatcher each;
    int mine = ::fork();
    REQUIRE(mine >= 0);
    if (mine == 0) ::_exit(5);
    ChildRun run;
    run.exec("/bin/true", {});
    REQUIRE(run.finish());
    // Its SIGCHLD (or none, for pidfd) came and went while the loop ran.
    CHECK(test::wait_returncode(mine) == 5);
}

TEST_CASE("1,000 short-lived children: every one reported, zero zombies") {
    // Process creation dominates (several ms per child in a loaded VM, more
    // under ASan): the full thousand under the default watcher, a sample
    // under the other one.
    int children = 1000;
    SUBCASE("the default watcher (pidfd where the kernel has it)") {}
    SUBCASE("sigchld watcher") {
        set_default_child_watcher(ChildWatcherKind::sigchld);
        children = 100;
    }
    EventLoop loop;
    (void)detail::child_watcher_kind(loop);  // the watcher is made now, with that kind
    set_default_child_watcher(ChildWatcherKind::automatic);
    const int kChildren = children;
    constexpr int kAtOnce = 32;
    int started = 0, finished = 0, failed = 0;
    struct Counting : SubprocessProtocol {
        int* finished;
        int* failed;
        SubprocessTransport* transport = nullptr;
        void connection_made(SubprocessTransport& t) override { transport = &t; }
        void connection_lost(std::error_code) override {
            if (transport->get_returncode() != 0) ++*failed;
            ++*finished;
        }
    };
    SubprocessOptions options;
    options.std_in = Stdio::devnull();
    options.std_err = Stdio::devnull();  // stdout stays a pipe: one pipe transport each
    auto start_one = [&] {
        ++started;
        (void)loop.subprocess_exec(
            [&] {
                auto p = std::make_shared<Counting>();
                p->finished = &finished;
                p->failed = &failed;
                return p;
            },
            "/bin/true", {}, options);
    };
    REQUIRE(run_until(
        loop,
        [&] {
            while (started < kChildren && started - finished < kAtOnce) start_one();
            return finished == kChildren;
        },
        60));
    CHECK(failed == 0);
    CHECK(test::child_pids().empty());
    errno = 0;
    CHECK(::waitpid(-1, nullptr, WNOHANG) == -1);
    CHECK(errno == ECHILD);
}
