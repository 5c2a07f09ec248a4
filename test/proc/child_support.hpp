// test/proc/child_support.hpp — helpers for the tests that start real
// processes: reading a child's pipe to EOF, listing this process's children
// (zombies included), reading /proc/<pid>/stat, and the "list-fds" mode of
// the test binary itself.
//
// list-fds: a test that wants to see which fds a child really has re-execs
// its own binary (/proc/self/exe) with EVLOOP_TEST_CHILD=list-fds in the
// environment. A global initializer below then prints every open fd, one a
// line, and _exits before main: nothing (doctest, a directory listing) has
// opened anything yet, so the list is exactly what exec left open.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "platform/clock.hpp"
#include "platform/fd.hpp"
#include "proc/child_watcher.hpp"

namespace evloop::test {

inline const bool g_list_fds_child = [] {
    const char* mode = std::getenv("EVLOOP_TEST_CHILD");
    if (!mode || std::strcmp(mode, "list-fds") != 0) return false;
    for (int fd = 0; fd < 4096; ++fd) {
        if (::fcntl(fd, F_GETFD) == -1) continue;
        char line[16];
        int n = std::snprintf(line, sizeof line, "%d\n", fd);
        if (::write(1, line, static_cast<std::size_t>(n)) != n) ::_exit(2);
    }
    ::_exit(0);
    return true;
}();

/// Runs the test case once per watcher kind (a doctest subcase each): new
/// loops use that kind; the default is back to automatic when it ends.
struct EachWatcher {
    ChildWatcherKind kind = ChildWatcherKind::sigchld;
    EachWatcher() {
        SUBCASE("pidfd watcher") { kind = ChildWatcherKind::pidfd; }
        SUBCASE("sigchld watcher") { kind = ChildWatcherKind::sigchld; }
        set_default_child_watcher(kind);
    }
    ~EachWatcher() { set_default_child_watcher(ChildWatcherKind::automatic); }
    EachWatcher(const EachWatcher&) = delete;
    EachWatcher& operator=(const EachWatcher&) = delete;
};

/// This environment plus EVLOOP_TEST_CHILD=list-fds: a child exec'ing
/// /proc/self/exe with it prints its open fds.
inline std::vector<std::string> list_fds_environment() {
    std::vector<std::string> env;
    for (char** entry = environ; *entry; ++entry) env.emplace_back(*entry);
    env.emplace_back("EVLOOP_TEST_CHILD=list-fds");
    return env;
}

/// The fds a list-fds child printed.
inline std::vector<int> parse_fd_list(const std::string& text) {
    std::vector<int> fds;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        if (end > start) fds.push_back(std::atoi(text.substr(start, end - start).c_str()));
        start = end + 1;
    }
    return fds;
}

/// Reads a (non-blocking or blocking) fd until EOF, or until `seconds` pass.
inline std::string read_to_eof(int fd, double seconds = 5) {
    std::string text;
    std::int64_t deadline = monotonic_ns() + static_cast<std::int64_t>(seconds * 1e9);
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        int left_ms = static_cast<int>((deadline - monotonic_ns()) / 1000000);
        if (left_ms <= 0 || ::poll(&p, 1, left_ms) <= 0) return text;
        char buffer[65536];
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n == 0) return text;
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            return text;
        }
        text.append(buffer, static_cast<std::size_t>(n));
    }
}

/// Blocking waitpid; the returncode asyncio would report (-N for signal N),
/// or 1000 + errno when waitpid failed.
inline int wait_returncode(int pid) {
    int status = 0;
    if (retry_eintr([&] { return ::waitpid(pid, &status, 0); }) != pid) return 1000 + errno;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return 2000;
}

/// Every child of this process, zombies included (/proc/self/task/*/children).
inline std::vector<int> child_pids() {
    std::vector<int> pids;
    DIR* tasks = ::opendir("/proc/self/task");
    if (!tasks) return pids;
    while (dirent* task = ::readdir(tasks)) {
        if (task->d_name[0] == '.') continue;
        std::string path = std::string("/proc/self/task/") + task->d_name + "/children";
        Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!file) continue;
        std::string text = read_to_eof(file.get(), 1);
        for (std::size_t i = 0; i < text.size();) {
            std::size_t end = text.find(' ', i);
            if (end == std::string::npos) end = text.size();
            if (end > i) pids.push_back(std::atoi(text.substr(i, end - i).c_str()));
            i = end + 1;
        }
    }
    ::closedir(tasks);
    return pids;
}

/// Field `field` (1-based, as proc(5) numbers them) of /proc/<pid>/stat; -1 if unreadable.
inline long proc_stat_field(int pid, int field) {
    std::string path = "/proc/" + std::to_string(pid) + "/stat";
    Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file) return -1;
    std::string text = read_to_eof(file.get(), 1);
    std::size_t paren = text.rfind(')');  // the command name may hold spaces
    if (paren == std::string::npos) return -1;
    int index = 2;  // ")" closes field 2
    std::size_t i = paren + 1;
    while (i < text.size()) {
        while (i < text.size() && text[i] == ' ') ++i;
        std::size_t end = text.find(' ', i);
        if (end == std::string::npos) end = text.size();
        if (++index == field) return std::atol(text.substr(i, end - i).c_str());
        i = end;
    }
    return -1;
}

/// A bitmask line of /proc/<pid>/status ("SigIgn", "SigBlk", …), as a number.
inline unsigned long long proc_status_mask(int pid, const char* name) {
    std::string path = "/proc/" + std::to_string(pid) + "/status";
    Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!file) return ~0ULL;
    std::string text = read_to_eof(file.get(), 1);
    std::string key = std::string(name) + ":";
    std::size_t at = text.find(key);
    if (at == std::string::npos) return ~0ULL;
    return std::strtoull(text.c_str() + at + key.size(), nullptr, 16);
}

/// The number of fds this process has open.
inline int open_fd_count() {
    int count = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) return -1;
    while (dirent* entry = ::readdir(dir))
        if (entry->d_name[0] != '.') ++count;
    ::closedir(dir);
    return count - 1;  // the DIR's own fd
}

}  // namespace evloop::test
