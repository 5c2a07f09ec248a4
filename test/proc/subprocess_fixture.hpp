// test/proc/subprocess_fixture.hpp — a recording SubprocessProtocol and a
// loop that runs one child, shared by the subprocess test files.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/event_loop.hpp"
#include "proc/subprocess.hpp"
#include "test/proc/child_support.hpp"
#include "test/support.hpp"

namespace evloop::test {

/// Records every call, in order: "made", "data1"/"data2", "pipe_lost0".."2",
/// "exited", "lost". Hooks let a test act from inside a callback.
struct Recorder : SubprocessProtocol {
    SubprocessTransport* transport = nullptr;  // valid until connection_lost returns
    std::vector<std::string> events;
    std::string out, err;
    bool pipe_lost[3] = {false, false, false};
    std::error_code pipe_error[3];
    int made = 0, exited = 0, lost = 0;
    std::optional<int> returncode_at_made, returncode_at_exit, returncode_at_lost;
    std::error_code lost_error;
    std::function<void(Recorder&)> on_made, on_exited, on_lost;

    void connection_made(SubprocessTransport& t) override {
        transport = &t;
        ++made;
        returncode_at_made = t.get_returncode();
        events.push_back("made");
        if (on_made) on_made(*this);
    }
    void pipe_data_received(int fd, std::string_view data) override {
        (fd == 1 ? out : err).append(data);
        events.push_back("data" + std::to_string(fd));
    }
    void pipe_connection_lost(int fd, std::error_code error) override {
        pipe_lost[fd] = true;
        pipe_error[fd] = error;
        events.push_back("pipe_lost" + std::to_string(fd));
    }
    void process_exited() override {
        ++exited;
        returncode_at_exit = transport ? transport->get_returncode() : std::nullopt;
        events.push_back("exited");
        if (on_exited) on_exited(*this);
    }
    void connection_lost(std::error_code error) override {
        ++lost;
        lost_error = error;
        returncode_at_lost = transport ? transport->get_returncode() : std::nullopt;
        events.push_back("lost");
        if (on_lost) on_lost(*this);
    }

    /// The index of the first `event`, or events.size().
    std::size_t first(const std::string& event) const {
        for (std::size_t i = 0; i < events.size(); ++i)
            if (events[i] == event) return i;
        return events.size();
    }
    /// The index of the last `event`, or events.size().
    std::size_t last(const std::string& event) const {
        for (std::size_t i = events.size(); i-- > 0;)
            if (events[i] == event) return i;
        return events.size();
    }
};

/// One loop, one child, one Recorder.
struct ChildRun {
    EventLoop loop;
    std::shared_ptr<Recorder> protocol = std::make_shared<Recorder>();
    std::shared_ptr<SubprocessTransport> transport;

    SubprocessProtocolFactory factory() {
        return [p = protocol] { return p; };
    }
    /// Starts `program` and runs the loop until the future is done.
    Result<SubprocessConnection> try_exec(std::string_view program, std::vector<std::string> args,
                                          const SubprocessOptions& options = {}) {
        Future<SubprocessConnection> future = loop.subprocess_exec(factory(), program, std::move(args), options);
        if (!run_until(loop, [&] { return future.done(); })) return make_error_code(errc::timeout);
        Result<SubprocessConnection> result = future.result();
        if (result) transport = result->transport;
        return result;
    }
    void exec(std::string_view program, std::vector<std::string> args, const SubprocessOptions& options = {}) {
        Result<SubprocessConnection> result = try_exec(program, std::move(args), options);
        REQUIRE(result);
        REQUIRE(protocol->made == 1);
    }
    void shell(const std::string& command, const SubprocessOptions& options = {}) {
        exec("/bin/sh", {"-c", command}, options);
    }
    /// Runs until connection_lost (false if it did not come in time).
    bool finish(double seconds = 5) {
        return run_until(loop, [&] { return protocol->lost > 0; }, seconds);
    }
};

}  // namespace evloop::test
