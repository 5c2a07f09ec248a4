// test/proc/child_watcher_test.cpp — the child watcher (proc/child_watcher.cpp)
// with real children forked by the test, under both kinds: pidfd (a pidfd
// per child in the selector) and sigchld (SIGCHLD through the self-pipe,
// then waitpid per child of ours).
// What it proves: exits are reported with asyncio's returncodes; the kind
// chosen (CONTRACT 371); child_has_exited looks without reaping; a child
// the watcher did not start is never reaped by it; a child reaped
// elsewhere is reported as 255 with a warning (CONTRACT 213); loop.close()
// reaps what is still watched, so no zombie remains.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <vector>

#include "proc/child_watcher.hpp"
#include "test/proc/child_support.hpp"
#include "test/support.hpp"

using namespace evloop;
using evloop::test::child_pids;
using evloop::test::run_until;

namespace {

// A child that exits with `code` at once, or (code < 0) waits to be killed.
int fork_child(int code) {
    int pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (code < 0)
            for (;;) ::pause();
        ::_exit(code);
    }
    return pid;
}

bool kernel_has_pidfd() {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

struct Exits {
    std::map<int, int> codes;  // pid → returncode
    detail::ChildExitCallback record(int pid) {
        return [this, pid](int returncode) { codes[pid] = returncode; };
    }
};

}  // namespace

TEST_CASE("returncode_from_wait_status: the exit status, or -N for signal N (CONTRACT 212)") {
    int exits = fork_child(7);
    int status = 0;
    REQUIRE(::waitpid(exits, &status, 0) == exits);
    CHECK(detail::returncode_from_wait_status(status) == 7);
    int killed = fork_child(-1);
    ::kill(killed, SIGKILL);
    REQUIRE(::waitpid(killed, &status, 0) == killed);
    CHECK(detail::returncode_from_wait_status(status) == -9);
}

TEST_CASE("the kind: pidfd where the kernel has it, sigchld when asked or without it (CONTRACT 371)") {
    {
        EventLoop loop;
        CHECK(default_child_watcher() == ChildWatcherKind::automatic);
        CHECK(detail::child_watcher_kind(loop) ==
              (kernel_has_pidfd() ? ChildWatcherKind::pidfd : ChildWatcherKind::sigchld));
    }
    set_default_child_watcher(ChildWatcherKind::sigchld);
    EventLoop loop;
    CHECK(detail::child_watcher_kind(loop) == ChildWatcherKind::sigchld);
    set_default_child_watcher(ChildWatcherKind::pidfd);
    CHECK(detail::child_watcher_kind(loop) == ChildWatcherKind::sigchld);  // a loop keeps its kind
    EventLoop other;
    if (kernel_has_pidfd()) CHECK(detail::child_watcher_kind(other) == ChildWatcherKind::pidfd);
    set_default_child_watcher(ChildWatcherKind::automatic);
}

TEST_CASE("watch_child reports each exit once, from a loop callback, with the returncode") {
    test::EachWatcher each;
    EventLoop loop;
    REQUIRE(detail::child_watcher_kind(loop) == each.kind);
    Exits exits;
    int seven = fork_child(7);
    int killed = fork_child(-1);
    REQUIRE(!detail::watch_child(loop, seven, exits.record(seven)));
    REQUIRE(!detail::watch_child(loop, killed, exits.record(killed)));
    CHECK(exits.codes.empty());  // never from inside watch_child
    REQUIRE(run_until(loop, [&] { return exits.codes.count(seven) == 1; }));
    CHECK(exits.codes.count(killed) == 0);
    ::kill(killed, SIGKILL);
    REQUIRE(run_until(loop, [&] { return exits.codes.size() == 2; }));
    CHECK(exits.codes[seven] == 7);
    CHECK(exits.codes[killed] == -9);
    CHECK(child_pids().empty());  // both reaped
}

TEST_CASE("several children exiting together are all reported (one SIGCHLD may stand for many)") {
    test::EachWatcher each;
    EventLoop loop;
    Exits exits;
    std::vector<int> pids;
    for (int i = 0; i < 20; ++i) {
        pids.push_back(fork_child(i));
        REQUIRE(!detail::watch_child(loop, pids.back(), exits.record(pids.back())));
    }
    REQUIRE(run_until(loop, [&] { return exits.codes.size() == pids.size(); }));
    for (int i = 0; i < 20; ++i) CHECK(exits.codes[pids[i]] == i);
    CHECK(child_pids().empty());
}

TEST_CASE("child_has_exited looks without reaping: the watcher still reports the exit") {
    test::EachWatcher each;
    EventLoop loop;
    Exits exits;
    int pid = fork_child(-1);
    REQUIRE(!detail::watch_child(loop, pid, exits.record(pid)));
    CHECK(!detail::child_has_exited(loop, pid));
    ::kill(pid, SIGUSR1);  // not SIGTERM: the child may still have doctest's handler for it
    siginfo_t info{};
    // Wait for the exit outside the loop, without reaping it.
    REQUIRE(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) == 0);
    CHECK(detail::child_has_exited(loop, pid));
    CHECK(detail::child_has_exited(loop, pid));  // still a zombie: nothing reaped it
    REQUIRE(run_until(loop, [&] { return exits.codes.count(pid) == 1; }));
    CHECK(exits.codes[pid] == -SIGUSR1);
}

TEST_CASE("a child the watcher did not start is never reaped by it") {
    test::EachWatcher each;
    EventLoop loop;
    int mine = fork_child(5);  // not watched: ours to reap
    Exits exits;
    int watched = fork_child(0);
    REQUIRE(!detail::watch_child(loop, watched, exits.record(watched)));
    REQUIRE(run_until(loop, [&] { return exits.codes.count(watched) == 1; }));
    // Both exited, and SIGCHLD came for each; a few more iterations for luck.
    for (int i = 0; i < 3; ++i) {
        loop.call_soon([] {});
        (void)loop.run_once();
    }
    CHECK(test::wait_returncode(mine) == 5);  // still waitable by us
}

TEST_CASE("a child reaped by someone else is reported as 255, with a warning (CONTRACT 213)") {
    test::EachWatcher each;
    EventLoop loop;
    test::LogCapture logs;
    Exits exits;
    int pid = fork_child(3);
    REQUIRE(!detail::watch_child(loop, pid, exits.record(pid)));
    CHECK(test::wait_returncode(pid) == 3);  // we reap it behind the watcher's back
    REQUIRE(run_until(loop, [&] { return exits.codes.count(pid) == 1; }));
    CHECK(exits.codes[pid] == 255);
    CHECK(logs.contains("will report returncode 255"));
}

TEST_CASE("loop.close() reaps every child still watched: no zombie remains") {
    test::EachWatcher each;
    int running = -1, exited = -1;
    {
        EventLoop loop;
        Exits exits;
        running = fork_child(-1);   // would run forever: the watcher kills it first
        exited = fork_child(0);     // a zombie until reaped
        REQUIRE(!detail::watch_child(loop, running, exits.record(running)));
        REQUIRE(!detail::watch_child(loop, exited, exits.record(exited)));
        REQUIRE(!loop.close());
        CHECK(exits.codes.empty());  // a closed loop calls nothing back
    }
    CHECK(child_pids().empty());
    errno = 0;
    CHECK(::waitpid(running, nullptr, WNOHANG) == -1);
    CHECK(errno == ECHILD);
}

TEST_CASE("watch_child on a closed loop is refused") {
    EventLoop loop;
    REQUIRE(!loop.close());
    int pid = fork_child(0);
    CHECK(detail::watch_child(loop, pid, [](int) {}) == make_error_code(errc::loop_closed));
    CHECK(test::wait_returncode(pid) == 0);
}
