// test/proc/subprocess_test.cpp — loop.subprocess_exec / subprocess_shell
// and the subprocess transport with real children (/bin/cat as an echo
// peer, /bin/sh, sleep), each case under both child watchers (pidfd and
// sigchld, see test::EachWatcher) and, through EVLOOP_TEST_BACKEND, both
// selector backends. Closing, killing, cancelling and many children are in
// subprocess_close_test.cpp.
// Python-only parts of CONTRACT 211: shell=True for subprocess_exec,
// shell=False for subprocess_shell, universal_newlines, text, encoding,
// errors and bufsize have no field in SubprocessOptions to be wrong in, and
// a cmd "that is not a string" cannot be passed to a std::string_view; the
// cases with a C++ meaning are tested below. CONTRACT 222: asyncio gives
// the Popen object for 'subprocess'; we give the pid.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <stdexcept>

#include "test/proc/subprocess_fixture.hpp"

using namespace evloop;
using evloop::test::ChildRun;
using evloop::test::Recorder;
using evloop::test::run_until;

namespace {

// Per fd, every data event comes before that fd's pipe_lost (CONTRACT 217).
void check_data_before_pipe_lost(const Recorder& r) {
    for (int fd = 1; fd <= 2; ++fd) {
        std::size_t lost = r.first("pipe_lost" + std::to_string(fd));
        std::size_t data = r.last("data" + std::to_string(fd));
        if (data != r.events.size()) CHECK(data < lost);
    }
}

// connection_lost once and last, after the exit and every pipe (CONTRACT 219).
void check_lost_last(const Recorder& r, int pipes) {
    CHECK(r.lost == 1);
    CHECK(r.exited == 1);
    REQUIRE(!r.events.empty());
    CHECK(r.events.front() == "made");
    CHECK(r.events.back() == "lost");
    CHECK(std::count(r.pipe_lost, r.pipe_lost + 3, true) == pipes);
    CHECK(!r.lost_error);
}

}  // namespace

TEST_CASE("cat as an echo peer: pipes, pid, returncode and the order of events (CONTRACT 215, 217-223, 229)") {
    test::EachWatcher each;
    ChildRun run;
    run.protocol->on_made = [](Recorder& r) {
        SubprocessTransport& t = *r.transport;
        // Every requested pipe is connected before connection_made (CONTRACT 215).
        for (int fd = 0; fd < 3; ++fd) {
            REQUIRE(t.get_pipe_transport(fd) != nullptr);
            CHECK(!t.get_pipe_transport(fd)->is_closing());
        }
        CHECK(t.get_pipe_transport(3) == nullptr);  // CONTRACT 223
        CHECK(t.get_pipe_transport(-1) == nullptr);
        CHECK(!t.get_returncode());  // CONTRACT 220
    };
    run.exec("/bin/cat", {});
    SubprocessTransport& t = *run.transport;
    CHECK(t.get_pid() > 0);
    CHECK(test::proc_stat_field(t.get_pid(), 4) == ::getpid());  // our child (CONTRACT 221)
    CHECK(std::get<int>(t.get_extra_info("subprocess")) == t.get_pid());  // CONTRACT 222
    CHECK(std::holds_alternative<std::monostate>(t.get_extra_info("nope")));
    CHECK(!t.is_closing());

    REQUIRE(!t.get_pipe_transport(0)->write("hello\n"));
    REQUIRE(run_until(run.loop, [&] { return run.protocol->out == "hello\n"; }));
    CHECK(!t.get_returncode());
    t.get_pipe_transport(0)->close();  // EOF for cat (CONTRACT 229)
    REQUIRE(run.finish());

    const Recorder& r = *run.protocol;
    CHECK(r.pipe_lost[0]);
    CHECK(!r.pipe_error[0]);  // pipe_connection_lost(0, None)
    CHECK(r.returncode_at_exit == 0);  // CONTRACT 220
    CHECK(t.get_returncode() == 0);
    CHECK(r.err.empty());
    check_data_before_pipe_lost(r);
    check_lost_last(r, 3);
}

TEST_CASE("returncodes: exit 7, kill, terminate, send_signal(SIGHUP) (CONTRACT 212)") {
    test::EachWatcher each;
    ChildRun run;
    SUBCASE("exit 7 → 7") {
        run.shell("exit 7");
        REQUIRE(run.finish());
        CHECK(run.transport->get_returncode() == 7);
    }
    SUBCASE("kill → -9") {
        run.exec("sleep", {"10"});
        CHECK(!run.transport->kill());
        REQUIRE(run.finish());
        CHECK(run.transport->get_returncode() == -SIGKILL);
    }
    SUBCASE("terminate → -15") {
        run.exec("sleep", {"10"});
        CHECK(!run.transport->terminate());
        REQUIRE(run.finish());
        CHECK(run.transport->get_returncode() == -SIGTERM);
    }
    SUBCASE("send_signal(SIGHUP) → -1") {
        run.exec("sleep", {"10"});
        CHECK(!run.transport->send_signal(SIGHUP));
        REQUIRE(run.finish());
        CHECK(run.transport->get_returncode() == -SIGHUP);
    }
    if (run.transport) CHECK(run.protocol->returncode_at_exit == run.transport->get_returncode());
}

TEST_CASE("subprocess_shell runs /bin/sh -c; subprocess_exec passes args after argv[0]") {
    test::EachWatcher each;
    ChildRun run;
    SUBCASE("shell") {
        run.shell("echo \"$0\"");
        REQUIRE(run.finish());
        CHECK(run.protocol->out == "/bin/sh\n");
    }
    SUBCASE("exec with args") {
        run.exec("/bin/sh", {"-c", "echo \"$1-$2\"", "zero", "a b", "c"});
        REQUIRE(run.finish());
        CHECK(run.protocol->out == "a b-c\n");
    }
    SUBCASE("an empty shell command runs, as in asyncio") {
        Future<SubprocessConnection> f = run.loop.subprocess_shell(run.factory(), "");
        REQUIRE(run_until(run.loop, [&] { return f.done(); }));
        REQUIRE(f.result());
        run.transport = f.result()->transport;
        REQUIRE(run.finish());
        CHECK(run.transport->get_returncode() == 0);
    }
}

TEST_CASE("stderr to stdout: merged output on fd 1, no stderr pipe transport (CONTRACT 224)") {
    test::EachWatcher each;
    ChildRun run;
    SubprocessOptions options;
    options.std_err = Stdio::to_stdout();
    run.shell("echo out; echo err >&2", options);
    CHECK(run.transport->get_pipe_transport(2) == nullptr);
    REQUIRE(run.finish());
    CHECK(run.protocol->out == "out\nerr\n");
    CHECK(run.protocol->first("data2") == run.protocol->events.size());
    check_lost_last(*run.protocol, 2);
}

TEST_CASE("devnull and a given fd have no pipe transport; only the pipes count for connection_lost (CONTRACT 223)") {
    test::EachWatcher each;
    ChildRun run;
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    Fd read_end(fds[0]), write_end(fds[1]);
    SubprocessOptions options;
    options.std_in = Stdio::devnull();
    options.std_out = Stdio::from_fd(write_end.get());
    run.shell("cat; echo to-given-fd; echo to-pipe >&2", options);  // cat: EOF at once from /dev/null
    CHECK(run.transport->get_pipe_transport(0) == nullptr);
    CHECK(run.transport->get_pipe_transport(1) == nullptr);
    CHECK(run.transport->get_pipe_transport(2) != nullptr);
    REQUIRE(run.finish());
    write_end.reset();
    CHECK(test::read_to_eof(read_end.get()) == "to-given-fd\n");
    CHECK(run.protocol->err == "to-pipe\n");
    check_lost_last(*run.protocol, 1);
}

TEST_CASE("no pipes at all: connection_made, process_exited, connection_lost") {
    test::EachWatcher each;
    ChildRun run;
    run.exec("/bin/true", {}, {.std_in = Stdio::devnull(), .std_out = Stdio::devnull(), .std_err = Stdio::devnull()});
    REQUIRE(run.finish());
    CHECK(run.protocol->events == std::vector<std::string>{"made", "exited", "lost"});
}

TEST_CASE("10 MiB through cat, stdin to stdout, with the transport's flow control: no deadlock") {
    test::EachWatcher each;
    struct Pump : Recorder {
        std::string payload;
        std::size_t sent = 0;
        bool paused = false;
        int pauses = 0;
        std::size_t most_buffered = 0;
        void pump() {
            std::shared_ptr<Transport> in = transport->get_pipe_transport(0);
            while (!paused && sent < payload.size()) {
                std::size_t n = std::min<std::size_t>(64 * 1024, payload.size() - sent);
                REQUIRE(!in->write(std::string_view(payload).substr(sent, n)));
                sent += n;
                most_buffered = std::max(most_buffered, in->get_write_buffer_size());
            }
            if (sent == payload.size() && !in->is_closing()) in->close();
        }
        void pause_writing() override {
            paused = true;
            ++pauses;
        }
        void resume_writing() override {
            paused = false;
            pump();
        }
    };
    auto pump = std::make_shared<Pump>();
    pump->payload.resize(10 * 1024 * 1024);
    for (std::size_t i = 0; i < pump->payload.size(); ++i) pump->payload[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
    pump->on_made = [](Recorder& r) { static_cast<Pump&>(r).pump(); };
    EventLoop loop;
    Future<SubprocessConnection> f = loop.subprocess_exec([pump] { return pump; }, "/bin/cat");
    REQUIRE(run_until(loop, [&] { return pump->lost > 0; }, 8));
    CHECK(pump->out.size() == pump->payload.size());
    CHECK(pump->out == pump->payload);
    CHECK(pump->pauses > 0);  // the writer was held back, not buffering 10 MiB
    CHECK(pump->most_buffered < 1024 * 1024);
    CHECK(f.result()->transport->get_returncode() == 0);
}

TEST_CASE("stdin: a child that exits with nothing buffered gives pipe_connection_lost(0, none) (CONTRACT 229)") {
    test::EachWatcher each;
    ChildRun run;
    run.exec("/bin/true", {});
    REQUIRE(run.finish());
    CHECK(run.protocol->pipe_lost[0]);
    CHECK(!run.protocol->pipe_error[0]);
    check_lost_last(*run.protocol, 3);
}

TEST_CASE("closing the stdout transport, then the child writes: it gets EPIPE, as SIGPIPE (CONTRACT 230)") {
    test::EachWatcher each;
    // Ignored here, as Python does; the child must still get SIGPIPE's default.
    struct sigaction ignore {}, old {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &old);
    ChildRun run;
    run.shell("read line; echo \"$line\"; echo survived >&2");
    ::sigaction(SIGPIPE, &old, nullptr);
    run.transport->get_pipe_transport(1)->close();
    REQUIRE(run_until(run.loop, [&] { return run.protocol->pipe_lost[1]; }));
    REQUIRE(!run.transport->get_pipe_transport(0)->write("go\n"));
    REQUIRE(run.finish());
    CHECK(run.transport->get_returncode() == -SIGPIPE);
    CHECK(run.protocol->err.empty());
    CHECK(run.protocol->out.empty());
}

TEST_CASE("a grandchild holding stdout open delays connection_lost until the pipe closes (CONTRACT 218, 219)") {
    test::EachWatcher each;
    ChildRun run;
    SubprocessOptions options;
    options.std_in = Stdio::devnull();
    run.shell("(sleep 0.3; echo late) & exit 0", options);
    REQUIRE(run.finish());
    const Recorder& r = *run.protocol;
    CHECK(r.out == "late\n");
    CHECK(r.returncode_at_exit == 0);
    // The shell's exit did not end the transport: the grandchild's output
    // still arrived, and connection_lost came after it.
    CHECK(r.last("data1") < r.first("pipe_lost1"));
    CHECK(r.first("exited") < r.first("lost"));
    check_data_before_pipe_lost(r);
    check_lost_last(r, 2);
}

TEST_CASE("events that come before connection_made are queued and replayed after it, in order (CONTRACT 216)") {
    test::EachWatcher each;
    ChildRun run;
    SubprocessOptions options;
    options.std_in = Stdio::devnull();
    Future<SubprocessConnection> f = run.loop.subprocess_exec(run.factory(), "/bin/sh", {"-c", "exit 6"}, options);
    // The child exits before the loop runs at all: the watcher hears of it
    // on the first iteration, before the pipes have connected.
    std::vector<int> pids = test::child_pids();
    REQUIRE(pids.size() == 1);
    siginfo_t info{};
    REQUIRE(::waitid(P_PID, static_cast<id_t>(pids[0]), &info, WEXITED | WNOWAIT) == 0);
    REQUIRE(run.finish());
    const Recorder& r = *run.protocol;
    CHECK(r.returncode_at_made == 6);  // the exit was known before connection_made
    CHECK(r.events.front() == "made");
    CHECK(r.first("exited") == 1);     // replayed first: it came first
    CHECK(r.returncode_at_exit == 6);
    check_lost_last(r, 2);
    CHECK(f.done());
}

TEST_CASE("cwd, env and start_new_session reach the child") {
    test::EachWatcher each;
    ChildRun run;
    SubprocessOptions options;
    options.std_in = Stdio::devnull();
    options.cwd = "/";
    options.env = std::vector<std::string>{"EVLOOP_X=42"};
    options.start_new_session = true;
    run.shell("pwd; echo \"$EVLOOP_X\"; exec sleep 10", options);
    int pid = run.transport->get_pid();
    CHECK(test::proc_stat_field(pid, 6) == pid);  // its own session: sid == its pid
    REQUIRE(run_until(run.loop, [&] { return run.protocol->out == "/\n42\n"; }));
    CHECK(!run.transport->kill());
    REQUIRE(run.finish());
}

TEST_CASE("the child's open fds are exactly 0, 1, 2 and pass_fds") {
    test::EachWatcher each;
    Fd leaky(::open("/dev/null", O_RDONLY));  // no close-on-exec
    Fd passed(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    REQUIRE(leaky);
    REQUIRE(passed);
    ChildRun run;
    SubprocessOptions options;
    options.env = test::list_fds_environment();
    options.pass_fds = {passed.get()};
    run.exec("/proc/self/exe", {}, options);
    REQUIRE(run.finish());
    CHECK(run.transport->get_returncode() == 0);
    CHECK(test::parse_fd_list(run.protocol->out) == std::vector<int>{0, 1, 2, passed.get()});
}

TEST_CASE("a program that cannot be executed fails the future at once; no child, no fd (CONTRACT 231)") {
    test::EachWatcher each;
    EventLoop loop;
    int fds = test::open_fd_count();
    auto make = [] { return std::make_shared<Recorder>(); };
    Future<SubprocessConnection> missing = loop.subprocess_exec(make, "evloop-no-such-program");
    CHECK(missing.done());
    CHECK(missing.error() == std::error_code(ENOENT, std::system_category()));
    Future<SubprocessConnection> not_executable = loop.subprocess_exec(make, "/etc/passwd");
    CHECK(not_executable.done());
    CHECK(not_executable.error() == std::error_code(EACCES, std::system_category()));
    Future<SubprocessConnection> bad_cwd = loop.subprocess_exec(make, "/bin/true", {}, {.cwd = "/nonexistent"});
    CHECK(bad_cwd.error() == std::error_code(ENOENT, std::system_category()));
    CHECK(test::child_pids().empty());
    CHECK(test::open_fd_count() == fds);
}

TEST_CASE("bad arguments are refused (CONTRACT 211)") {
    EventLoop loop;
    auto make = [] { return std::make_shared<Recorder>(); };
    CHECK_REFUSED(errc::invalid_argument, (void)loop.subprocess_exec(make, ""));
    CHECK_REFUSED(errc::invalid_argument, (void)loop.subprocess_exec(make, "/bin/true", {}, {.std_in = Stdio::to_stdout()}));
    CHECK_REFUSED(errc::invalid_argument,
                  (void)loop.subprocess_shell(make, "true", {.std_out = Stdio::to_stdout()}));
    CHECK_REFUSED(errc::invalid_argument, (void)loop.subprocess_exec(SubprocessProtocolFactory(), "/bin/true"));
    // A factory that makes no protocol: the future fails, no child is started.
    Future<SubprocessConnection> none =
        loop.subprocess_exec([] { return std::shared_ptr<SubprocessProtocol>(); }, "/bin/true");
    CHECK(none.error() == make_error_code(errc::invalid_argument));
    CHECK(test::child_pids().empty());
    REQUIRE(!loop.close());
    CHECK_REFUSED(errc::loop_closed, (void)loop.subprocess_exec(make, "/bin/true"));
    CHECK_REFUSED(errc::loop_closed, (void)loop.subprocess_shell(make, "true"));
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("an exception from a protocol callback is reported and changes nothing else") {
    test::EachWatcher each;
    struct Throws : Recorder {
        void pipe_data_received(int fd, std::string_view data) override {
            Recorder::pipe_data_received(fd, data);
            throw std::runtime_error("boom");
        }
    };
    EventLoop loop;
    std::vector<std::string> reported;
    loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) { reported.push_back(c.message); });
    auto protocol = std::make_shared<Throws>();
    Future<SubprocessConnection> f =
        loop.subprocess_exec([protocol] { return protocol; }, "/bin/sh", {"-c", "echo a; sleep 0.05; echo b"});
    REQUIRE(run_until(loop, [&] { return protocol->lost > 0; }));
    CHECK(protocol->out == "a\nb\n");  // the pipe kept reading
    REQUIRE(!reported.empty());
    CHECK(reported.front() == "Exception in callback SubprocessProtocol.pipe_data_received()");
    check_lost_last(*protocol, 3);
}
#endif
