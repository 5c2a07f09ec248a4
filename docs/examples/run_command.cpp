// docs/examples/run_command.cpp — run a program as a child of the loop, show
// what it writes to stdout and stderr as it writes it, and report how it
// ended; Ctrl-C (SIGINT) is handled by the loop and terminates the child.
//
// The child's output arrives through a SubprocessProtocol
// (pipe_data_received with fd 1 or 2); Finished turns connection_lost — which
// comes last, once the child has exited and both pipes are closed — into a
// Future<int> a coroutine can co_await: asyncio's `await proc.wait()`.
//
//   run_command PROGRAM [ARG ...]   e.g. run_command ls -l /
//   run_command --selftest          runs `sh -c` with known output and exit
//                                   status, and a `sleep` it kills; exit 0 if
//                                   both ended as expected
// Read next: proc/subprocess.hpp.
#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "evloop.hpp"

namespace {

class Finished final : public evloop::SubprocessProtocol {
public:
    Finished(evloop::EventLoop& loop, bool echo) : done(loop), echo_(echo) {}

    evloop::Future<int> done;  // the returncode, once everything is over
    std::string out, err;

    void connection_made(evloop::SubprocessTransport& transport) override { transport_ = &transport; }
    void pipe_data_received(int fd, std::string_view data) override {
        (fd == 1 ? out : err).append(data);  // `data` is lent for this call only
        if (echo_) std::printf("[%s] %.*s", fd == 1 ? "out" : "err", static_cast<int>(data.size()), data.data());
    }
    void connection_lost(std::error_code error) override {
        if (error) (void)done.set_error(error);
        else (void)done.set_result(transport_->get_returncode().value_or(-1));
    }

private:
    evloop::SubprocessTransport* transport_ = nullptr;
    bool echo_;
};

struct Ran {
    int returncode;
    std::string out, err;
};

// Starts argv[0] with the rest as arguments; `on_start` may act on the
// running child (the self-test kills one).
evloop::Task<Ran> run(evloop::EventLoop& loop, std::vector<std::string> argv, bool echo,
                      std::function<void(evloop::SubprocessTransport&)> on_start = {}) {
    std::string program = argv.front();
    argv.erase(argv.begin());
    auto child = co_await loop.subprocess_exec([&] { return std::make_shared<Finished>(loop, echo); }, program,
                                               std::move(argv));
    if (!child) co_return child.error();  // ENOENT: no such program, EACCES: not executable
    Finished& finished = child->protocol_as<Finished>();
    // Ctrl-C while the child runs: ask it to stop (its returncode will say -15).
    (void)loop.add_signal_handler(SIGINT, [transport = child->transport] { (void)transport->terminate(); });
    if (on_start) on_start(*child->transport);
    auto returncode = co_await finished.done;
    loop.remove_signal_handler(SIGINT);
    if (!returncode) co_return returncode.error();
    co_return Ran{*returncode, finished.out, finished.err};
}

evloop::Task<void> selftest(evloop::EventLoop& loop) {
    std::vector<std::string> script{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"};
    auto ran = co_await run(loop, std::move(script), false);
    if (!ran) co_await evloop::fail(ran.error());
    std::printf("sh: exit %d, stdout \"out\\n\": %s, stderr \"err\\n\": %s\n", ran->returncode,
                ran->out == "out\n" ? "yes" : "NO", ran->err == "err\n" ? "yes" : "NO");
    if (ran->returncode != 3 || ran->out != "out\n" || ran->err != "err\n") co_await evloop::fail(evloop::errc::invalid_state);

    std::vector<std::string> sleeper{"sleep", "10"};
    auto killed = co_await run(loop, std::move(sleeper), false, [](evloop::SubprocessTransport& t) { (void)t.kill(); });
    if (!killed) co_await evloop::fail(killed.error());
    std::printf("sleep 10, killed: returncode %d (-9 = SIGKILL)\n", killed->returncode);
    if (killed->returncode != -SIGKILL) co_await evloop::fail(evloop::errc::invalid_state);
    std::printf("selftest: passed\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc < 2) {
        std::fprintf(stderr, "usage: run_command PROGRAM [ARG ...] | --selftest\n");
        return 2;
    }
    evloop::EventLoop loop;
    int status = 0;
    if (std::string_view(argv[1]) == "--selftest") {
        // wait_for: a broken build fails in five seconds instead of hanging CI.
        auto result = loop.run_until_complete(evloop::wait_for(selftest(loop), 5.0));
        if (!result) std::fprintf(stderr, "selftest FAILED: %s\n", result.error().message().c_str());
        status = result ? 0 : 1;
    } else {
        auto ran = loop.run_until_complete(run(loop, std::vector<std::string>(argv + 1, argv + argc), true));
        if (!ran) {
            std::fprintf(stderr, "%s: %s\n", argv[1], ran.error().message().c_str());
            status = 127;
        } else {
            std::printf("%s exited with %d\n", argv[1], ran->returncode);
            status = ran->returncode >= 0 ? ran->returncode : 128 - ran->returncode;
        }
    }
    (void)loop.close();
    return status;
}
