// proc/child_watcher.cpp — one ChildWatcher per loop: learns that the loop's
// children exited and reaps them, with a pidfd each or through SIGCHLD.
//
// The watcher is a LoopService the loop owns (created on first use, stored
// with loop.set_child_watcher) and a LoopResource, so loop.close() reaches
// it. It is attached before the first subprocess transport, and close()
// walks its resources newest first: by the time the watcher's loop_closing
// runs, every transport has killed its child, and the watcher reaps them
// all with a blocking waitpid. No zombie outlives the loop.
//
// Reaping happens only here, on the loop's thread, and the exit callback
// runs in the same loop callback as the waitpid: a transport never holds a
// pid that was reaped without knowing it, so it never signals a reaped pid.
// Layer: proc. Read next: proc/subprocess_transport.cpp.
#include "proc/child_watcher.hpp"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "core/event_loop.hpp"
#include "core/log.hpp"
#include "platform/fd.hpp"
#include "proc/signal_handlers.hpp"

namespace evloop {

namespace {

std::atomic<ChildWatcherKind> g_default_kind{ChildWatcherKind::automatic};

// pidfd_open(2) exists from Linux 5.3; seccomp filters (some containers)
// answer EPERM or ENOSYS. Probed once per process on our own pid.
bool pidfd_supported() noexcept {
    static const bool supported = [] {
        int fd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
        if (fd < 0) return false;
        ::close(fd);
        return true;
    }();
    return supported;
}

// waitpid(pid, WNOHANG): true once child `pid` is reaped, with its returncode;
// 255 with a warning if something else reaped it first (CONTRACT 213).
bool reap(int pid, int& returncode) noexcept {
    int status = 0;
    pid_t result = retry_eintr([&] { return ::waitpid(pid, &status, WNOHANG); });
    if (result == 0) return false;  // still running (or a spurious wakeup)
    if (result == pid) {
        returncode = detail::returncode_from_wait_status(status);
        return true;
    }
    log(LogLevel::warning, "child process pid %d exit status already read: will report returncode 255", pid);
    returncode = 255;
    return true;
}

class ChildWatcher final : public detail::LoopService, private detail::LoopResource {
public:
    static ChildWatcher& of(EventLoop& loop) {
        if (!loop.child_watcher()) {
            auto* watcher = new ChildWatcher(loop);
            loop.set_child_watcher(std::unique_ptr<detail::LoopService>(watcher));
            loop.attach_resource(*watcher);
        }
        return static_cast<ChildWatcher&>(*loop.child_watcher());
    }

    ChildWatcherKind kind() const noexcept { return kind_; }
    std::error_code watch(int pid, detail::ChildExitCallback on_exit);

private:
    struct Child {
        int pid;
        Fd pidfd;  // the pidfd kind only
        detail::ChildExitCallback on_exit;
    };

    explicit ChildWatcher(EventLoop& loop) : loop_(&loop) {
        ChildWatcherKind wanted = g_default_kind.load(std::memory_order_relaxed);
        // pidfd asked for on a kernel without it: sigchld, the only way left.
        kind_ = wanted != ChildWatcherKind::sigchld && pidfd_supported() ? ChildWatcherKind::pidfd
                                                                         : ChildWatcherKind::sigchld;
    }
    std::error_code watch_pidfd(int pid, detail::ChildExitCallback& on_exit);
    std::error_code watch_sigchld(int pid, detail::ChildExitCallback& on_exit);
    void pidfd_ready(int pid);
    void poll_children();
    void loop_closing() noexcept override;

    EventLoop* loop_;
    ChildWatcherKind kind_;
    std::vector<Child> children_;
    bool listening_ = false;       // the SIGCHLD listener is installed
    bool poll_scheduled_ = false;  // a poll_children callback is queued
};

std::error_code ChildWatcher::watch(int pid, detail::ChildExitCallback on_exit) {
    if (loop_->is_closed()) return make_error_code(errc::loop_closed);
    return kind_ == ChildWatcherKind::pidfd ? watch_pidfd(pid, on_exit) : watch_sigchld(pid, on_exit);
}

std::error_code ChildWatcher::watch_pidfd(int pid, detail::ChildExitCallback& on_exit) {
    // The pidfd names this very process (not a reusable number) and becomes
    // readable when it exits; close-on-exec is implied.
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd) return last_error();
    if (std::error_code ec = loop_->add_reader(pidfd.get(), [this, pid] { pidfd_ready(pid); })) return ec;
    children_.push_back({pid, std::move(pidfd), std::move(on_exit)});
    return {};
}

std::error_code ChildWatcher::watch_sigchld(int pid, detail::ChildExitCallback& on_exit) {
    // The listener stays from the first child to loop.close(): a process
    // starting many children would otherwise pay two sigaction calls each,
    // and a stray SIGCHLD costs only a waitpid per child still watched.
    if (!listening_) {
        if (std::error_code ec = detail::add_internal_signal_listener(*loop_, SIGCHLD, [this] { poll_children(); }))
            return ec;
        listening_ = true;
    }
    children_.push_back({pid, Fd(), std::move(on_exit)});
    // It may have exited before the listener was there: look once now.
    if (!poll_scheduled_) {
        poll_scheduled_ = true;
        loop_->call_soon([this] { poll_children(); });
    }
    return {};
}

void ChildWatcher::pidfd_ready(int pid) {
    for (std::size_t i = 0; i < children_.size(); ++i) {
        if (children_[i].pid != pid) continue;
        int returncode = 0;
        if (!reap(pid, returncode)) return;
        (void)loop_->remove_reader(children_[i].pidfd.get());
        detail::ChildExitCallback on_exit = std::move(children_[i].on_exit);
        children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));  // closes the pidfd
        on_exit(returncode);
        return;
    }
}

void ChildWatcher::poll_children() {
    poll_scheduled_ = false;
    // waitpid per child of ours, never waitpid(-1): other children of the
    // process belong to someone else. Each exit is reported before the next
    // child is reaped, so no callback ever sees a pid reaped behind its back.
    for (std::size_t i = 0; i < children_.size();) {
        int returncode = 0;
        if (!reap(children_[i].pid, returncode)) {
            ++i;
            continue;
        }
        detail::ChildExitCallback on_exit = std::move(children_[i].on_exit);
        children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
        on_exit(returncode);  // may watch new children (appended: the scan reaches them)
    }
}

void ChildWatcher::loop_closing() noexcept {
    // The loop dropped every reader and callback already. Each transport
    // killed its child; one still running here (its transport is gone) is
    // killed too: the blocking waitpid must not wait for it forever.
    for (Child& child : children_) {
        if (!detail::child_has_exited(*loop_, child.pid)) (void)::kill(child.pid, SIGKILL);
        int status = 0;
        (void)retry_eintr([&] { return ::waitpid(child.pid, &status, 0); });
    }
    children_.clear();
    if (listening_) detail::remove_internal_signal_listener(*loop_, SIGCHLD);
    listening_ = false;
}

}  // namespace

void set_default_child_watcher(ChildWatcherKind kind) noexcept { g_default_kind.store(kind); }

ChildWatcherKind default_child_watcher() noexcept { return g_default_kind.load(); }

namespace detail {

int returncode_from_wait_status(int status) noexcept {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return status;  // stopped or continued: waitpid without WUNTRACED never says so
}

std::error_code watch_child(EventLoop& loop, int pid, ChildExitCallback on_exit) {
    return ChildWatcher::of(loop).watch(pid, std::move(on_exit));
}

bool child_has_exited(EventLoop& loop, int pid) noexcept {
    (void)loop;  // any thread's waitid sees the process's children
    siginfo_t info{};
    // WNOWAIT: look without reaping; the zombie stays for the watcher.
    if (retry_eintr([&] { return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT); }) != 0)
        return errno == ECHILD;  // reaped already: gone, never to be signalled
    return info.si_pid == pid;
}

ChildWatcherKind child_watcher_kind(EventLoop& loop) noexcept { return ChildWatcher::of(loop).kind(); }

}  // namespace detail
}  // namespace evloop
