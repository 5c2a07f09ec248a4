// test/proc/spawn_test.cpp — detail::spawn_child (proc/spawn.cpp) without a
// loop: real children (/bin/sh, /bin/cat, this binary in list-fds mode),
// their pipes read and their exits waited for directly.
// What it proves: each Stdio kind reaches the child's 0, 1, 2 (sources on
// 0..2 included); exec failures are errors of the call (ENOENT, EACCES),
// never a child exiting 127, and leave no fd and no zombie; PATH is the
// child's environment's; cwd, env, start_new_session; the child's fds are
// exactly 0, 1, 2 and pass_fds (close_range and its /proc fallback); the
// child gets default dispositions for caught signals and SIGPIPE, and our
// signal mask. The loop's side is in subprocess_test.cpp.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "proc/spawn.hpp"
#include "test/proc/child_support.hpp"
#include "test/support.hpp"

using namespace evloop;
using evloop::detail::spawn_child;
using evloop::test::child_pids;
using evloop::test::open_fd_count;
using evloop::test::read_to_eof;
using evloop::test::wait_returncode;

namespace {

const std::error_code kENOENT(ENOENT, std::system_category());
const std::error_code kEACCES(EACCES, std::system_category());
const std::error_code kEBADF(EBADF, std::system_category());

Result<detail::SpawnedChild> sh(const std::string& script, const SubprocessOptions& options = {}) {
    return spawn_child("/bin/sh", {"/bin/sh", "-c", script}, options);
}

// A temporary directory holding an executable script and a plain file.
struct TempDir {
    std::string path;
    TempDir() {
        char name[] = "/tmp/evloop-spawn-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        path = name;
    }
    ~TempDir() {
        for (const char* file : {"/evloop-prog", "/evloop-plain"}) ::unlink((path + file).c_str());
        ::rmdir(path.c_str());
    }
    std::string write(const char* name, const char* text, mode_t mode) const {
        std::string file = path + name;
        Fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
        REQUIRE(fd);
        REQUIRE(::write(fd.get(), text, std::strlen(text)) == static_cast<ssize_t>(std::strlen(text)));
        return file;
    }
};

// Checks that a failed spawn left nothing behind.
struct NothingLeft {
    int fds = open_fd_count();
    ~NothingLeft() {
        CHECK(open_fd_count() == fds);
        CHECK(child_pids().empty());
    }
};

}  // namespace

TEST_CASE("spawn_child: three pipes, the parent's ends non-blocking; the exit status is the child's") {
    auto child = sh("read line; echo \"got $line\"; echo err >&2; exit 3");
    REQUIRE(child);
    CHECK(child->pid > 0);
    for (const Fd* end : {&child->stdin_pipe, &child->stdout_pipe, &child->stderr_pipe}) {
        REQUIRE(*end);
        CHECK((::fcntl(end->get(), F_GETFL) & O_NONBLOCK) != 0);
        CHECK((::fcntl(end->get(), F_GETFD) & FD_CLOEXEC) != 0);
    }
    REQUIRE(::write(child->stdin_pipe.get(), "hi\n", 3) == 3);
    child->stdin_pipe.reset();
    CHECK(read_to_eof(child->stdout_pipe.get()) == "got hi\n");
    CHECK(read_to_eof(child->stderr_pipe.get()) == "err\n");
    CHECK(wait_returncode(child->pid) == 3);
}

TEST_CASE("spawn_child: a program that cannot run is an error of the call, and leaves no fd or zombie (CONTRACT 231)") {
    TempDir dir;
    std::string plain = dir.write("/evloop-plain", "#!/bin/sh\necho never\n", 0644);
    NothingLeft check;
    SUBCASE("missing, by path") {
        CHECK(spawn_child("/nonexistent/evloop-prog", {"x"}, {}).error() == kENOENT);
    }
    SUBCASE("missing, in PATH") {
        CHECK(spawn_child("evloop-surely-not-a-program", {"x"}, {}).error() == kENOENT);
    }
    SUBCASE("not executable, by path: execve's EACCES") {
        CHECK(spawn_child(plain, {"x"}, {}).error() == kEACCES);
    }
    SUBCASE("not executable, in PATH") {
        SubprocessOptions options;
        options.env = std::vector<std::string>{"PATH=" + dir.path};
        CHECK(spawn_child("evloop-plain", {"x"}, options).error() == kEACCES);
    }
    SUBCASE("a directory in PATH is not a program") {
        SubprocessOptions options;
        options.env = std::vector<std::string>{"PATH=/"};
        CHECK(spawn_child("tmp", {"x"}, options).error() == kEACCES);
    }
    SUBCASE("cwd missing: chdir's ENOENT") {
        SubprocessOptions options;
        options.cwd = "/nonexistent/dir";
        CHECK(sh("exit 0", options).error() == kENOENT);
    }
}

TEST_CASE("spawn_child: PATH is searched in the child's environment when it has one") {
    TempDir dir;
    dir.write("/evloop-prog", "#!/bin/sh\necho found \"$FOO\"\n", 0755);
    SubprocessOptions options;
    options.std_in = Stdio::devnull();
    options.std_err = Stdio::devnull();
    options.env = std::vector<std::string>{"PATH=/nonexistent:" + dir.path, "FOO=bar"};
    auto child = spawn_child("evloop-prog", {"evloop-prog"}, options);
    REQUIRE(child);
    CHECK(read_to_eof(child->stdout_pipe.get()) == "found bar\n");
    CHECK(wait_returncode(child->pid) == 0);
    options.env->front() = "PATH=/nonexistent";  // and only there
    CHECK(spawn_child("evloop-prog", {"evloop-prog"}, options).error() == kENOENT);
}

TEST_CASE("spawn_child refuses bad arguments before starting anything") {
    NothingLeft check;
    const std::error_code invalid = make_error_code(errc::invalid_argument);
    CHECK(spawn_child("", {"x"}, {}).error() == invalid);
    CHECK(spawn_child("/bin/true", {}, {}).error() == invalid);
    SubprocessOptions options;
    options.std_in = Stdio::to_stdout();
    CHECK(spawn_child("/bin/true", {"true"}, options).error() == invalid);
    options.std_in = Stdio::pipe();
    options.std_out = Stdio::to_stdout();
    CHECK(spawn_child("/bin/true", {"true"}, options).error() == invalid);
    options.std_out = Stdio::from_fd(987);  // not open
    CHECK(spawn_child("/bin/true", {"true"}, options).error() == kEBADF);
    options.std_out = Stdio::pipe();
    options.pass_fds = {986};
    CHECK(spawn_child("/bin/true", {"true"}, options).error() == kEBADF);
}

TEST_CASE("spawn_child: devnull, inherit, a given fd, and stderr into stdout") {
    SUBCASE("devnull: cat reads EOF at once") {
        SubprocessOptions options;
        options.std_in = Stdio::devnull();
        auto child = spawn_child("/bin/cat", {"cat"}, options);
        REQUIRE(child);
        CHECK(!child->stdin_pipe);
        CHECK(read_to_eof(child->stdout_pipe.get()).empty());
        CHECK(wait_returncode(child->pid) == 0);
    }
    SUBCASE("to_stdout: both streams on the stdout pipe, no stderr pipe") {
        SubprocessOptions options;
        options.std_err = Stdio::to_stdout();
        auto child = sh("echo out; echo err >&2", options);
        REQUIRE(child);
        CHECK(!child->stderr_pipe);
        CHECK(read_to_eof(child->stdout_pipe.get()) == "out\nerr\n");
        CHECK(wait_returncode(child->pid) == 0);
    }
    SUBCASE("from_fd: the child writes to a pipe of ours, which we keep") {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        Fd read_end(fds[0]), write_end(fds[1]);
        SubprocessOptions options;
        options.std_out = Stdio::from_fd(write_end.get());
        auto child = sh("echo to-our-pipe", options);
        REQUIRE(child);
        CHECK(is_open_fd(write_end.get()));
        write_end.reset();
        CHECK(read_to_eof(read_end.get()) == "to-our-pipe\n");
        CHECK(wait_returncode(child->pid) == 0);
    }
    SUBCASE("inherit: the child writes to our own fd 2") {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        Fd read_end(fds[0]), write_end(fds[1]);
        Fd saved(::fcntl(2, F_DUPFD_CLOEXEC, 3));
        REQUIRE(::dup2(write_end.get(), 2) == 2);
        SubprocessOptions options;
        options.std_err = Stdio::inherit();
        auto child = sh("echo inherited >&2", options);
        ::dup2(saved.get(), 2);  // our stderr back before anything can fail
        REQUIRE(child);
        write_end.reset();
        CHECK(read_to_eof(read_end.get()) == "inherited\n");
        CHECK(wait_returncode(child->pid) == 0);
    }
}

TEST_CASE("spawn_child: sources that sit on 0..2 are moved before the dup2s") {
    // cat's stdin comes from our fd 2, its stdout goes to our fd 0: a naive
    // dup2(2, 0) would overwrite stdout's source before it is used.
    int in[2], out[2];
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    Fd in_read(in[0]), in_write(in[1]), out_read(out[0]), out_write(out[1]);
    Fd saved0(::fcntl(0, F_DUPFD_CLOEXEC, 3)), saved2(::fcntl(2, F_DUPFD_CLOEXEC, 3));
    ::dup2(in_read.get(), 2);
    ::dup2(out_write.get(), 0);
    SubprocessOptions options;
    options.std_in = Stdio::from_fd(2);
    options.std_out = Stdio::from_fd(0);
    options.std_err = Stdio::devnull();
    auto child = spawn_child("/bin/cat", {"cat"}, options);
    ::dup2(saved0.get(), 0);
    ::dup2(saved2.get(), 2);
    REQUIRE(child);
    in_read.reset();
    out_write.reset();
    REQUIRE(::write(in_write.get(), "through\n", 8) == 8);
    in_write.reset();
    CHECK(read_to_eof(out_read.get()) == "through\n");
    CHECK(wait_returncode(child->pid) == 0);
}

TEST_CASE("spawn_child: cwd, env and start_new_session") {
    SubprocessOptions options;
    options.std_in = Stdio::devnull();
    SUBCASE("cwd") {
        options.cwd = "/";
        auto child = sh("pwd", options);
        REQUIRE(child);
        CHECK(read_to_eof(child->stdout_pipe.get()) == "/\n");
        CHECK(wait_returncode(child->pid) == 0);
    }
    SUBCASE("env is the whole environment") {
        options.env = std::vector<std::string>{"A=1"};
        auto child = sh("echo \"$A ${HOME-unset}\"", options);
        REQUIRE(child);
        CHECK(read_to_eof(child->stdout_pipe.get()) == "1 unset\n");
        CHECK(wait_returncode(child->pid) == 0);
    }
    SUBCASE("start_new_session: the child leads a session of its own") {
        for (bool new_session : {false, true}) {
            auto child = spawn_child("/bin/cat", {"cat"}, SubprocessOptions{.start_new_session = new_session});
            REQUIRE(child);
            long session = test::proc_stat_field(child->pid, 6);
            CHECK(session == (new_session ? child->pid : ::getsid(0)));
            child->stdin_pipe.reset();
            CHECK(wait_returncode(child->pid) == 0);
        }
    }
}

TEST_CASE("spawn_child: the child's fds are exactly 0, 1, 2 and pass_fds (close_fds)") {
    // A descriptor without close-on-exec, as a careless library leaves one.
    Fd leaky(::open("/dev/null", O_RDONLY));
    Fd passed(::open("/dev/null", O_RDONLY | O_CLOEXEC));  // passed even though close-on-exec
    REQUIRE(leaky);
    REQUIRE(passed);
    auto list = [&](bool close_fds, std::vector<int> pass) {
        SubprocessOptions options;
        options.std_in = Stdio::devnull();
        options.env = test::list_fds_environment();
        options.close_fds = close_fds;
        options.pass_fds = pass;
        auto child = spawn_child("/proc/self/exe", {"list-fds"}, options);
        REQUIRE(child);
        std::vector<int> fds = test::parse_fd_list(read_to_eof(child->stdout_pipe.get()));
        CHECK(wait_returncode(child->pid) == 0);
        return fds;
    };
    SUBCASE("close_range") {}
    SUBCASE("the fallback without close_range: the child walks /proc/self/fd") {
        detail::set_close_range_for_testing(false);
    }
    CHECK(list(true, {}) == std::vector<int>{0, 1, 2});
    CHECK(list(true, {passed.get()}) == std::vector<int>{0, 1, 2, passed.get()});
    std::vector<int> kept = list(false, {});
    CHECK(std::find(kept.begin(), kept.end(), leaky.get()) != kept.end());      // close_fds off: inherited
    CHECK(std::find(kept.begin(), kept.end(), passed.get()) == kept.end());     // close-on-exec still works
    detail::set_close_range_for_testing(true);
}

TEST_CASE("spawn_child: caught signals and an ignored SIGPIPE are default in the child; the mask is ours") {
    auto bit = [](int sig) { return 1ULL << (sig - 1); };
    struct sigaction ignore {}, catcher {}, old_pipe {}, old_hup {}, old_usr1 {};
    ignore.sa_handler = SIG_IGN;
    catcher.sa_handler = [](int) {};
    ::sigaction(SIGPIPE, &ignore, &old_pipe);
    ::sigaction(SIGHUP, &ignore, &old_hup);
    ::sigaction(SIGUSR1, &catcher, &old_usr1);
    sigset_t usr2, old_mask;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    ::pthread_sigmask(SIG_BLOCK, &usr2, &old_mask);

    auto child = spawn_child("/bin/cat", {"cat"}, {});
    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    ::sigaction(SIGPIPE, &old_pipe, nullptr);
    ::sigaction(SIGHUP, &old_hup, nullptr);
    ::sigaction(SIGUSR1, &old_usr1, nullptr);
    REQUIRE(child);
    unsigned long long ignored = test::proc_status_mask(child->pid, "SigIgn");
    CHECK((ignored & bit(SIGPIPE)) == 0);  // Python's restore_signals
    CHECK((ignored & bit(SIGHUP)) != 0);   // other ignored signals stay so (nohup)
    CHECK((test::proc_status_mask(child->pid, "SigBlk") & bit(SIGUSR2)) != 0);
    CHECK(test::proc_status_mask(child->pid, "SigCgt") == 0);
    child->stdin_pipe.reset();
    CHECK(wait_returncode(child->pid) == 0);
}
