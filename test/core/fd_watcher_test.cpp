// test/core/fd_watcher_test.cpp — readers and writers embedded in their owner
// (core/fd_watcher.hpp, the loop's add_reader(fd, FdWatcher&)), over real
// pipes. The same rules as callback readers (CONTRACT 186–194), plus the one
// that matters for an embedded watcher: once removed it is never called, even
// when it was already queued, so its owner may be destroyed at once.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/event_loop.hpp"
#include "test/support.hpp"

using namespace evloop;
using Pipe = evloop::test::RawPipe;

namespace {

// An owner the way transports are: derives from the watcher and counts calls.
struct Counter : detail::FdWatcher {
    int calls = 0;
    std::function<void(Counter&)> on_call;
    Counter() : FdWatcher([](detail::FdWatcher& w) {
        auto& self = static_cast<Counter&>(w);
        ++self.calls;
        if (self.on_call) self.on_call(self);
    }) {}
};

}  // namespace

TEST_CASE("186, 191: an embedded reader runs every iteration while readable, until removed") {
    EventLoop loop;
    Pipe p;
    Counter reader;
    CHECK_FALSE(loop.remove_reader(p.r));
    CHECK_FALSE(loop.add_reader(p.r, reader));
    CHECK(loop.has_reader(p.r));
    loop.call_soon([] {});  // so the first run_once does not wait
    CHECK_FALSE(loop.run_once());
    CHECK(reader.calls == 0);  // nothing to read yet
    p.put();
    CHECK_FALSE(loop.run_once());
    CHECK_FALSE(loop.run_once());
    CHECK(reader.calls == 2);  // level-triggered: the byte is still unread
    CHECK(loop.remove_reader(p.r));
    CHECK_FALSE(loop.remove_reader(p.r));
    CHECK_FALSE(loop.has_reader(p.r));
    CHECK(loop.selector().size() == 1);  // only the self-pipe is left
    loop.call_soon([] {});
    CHECK_FALSE(loop.run_once());
    CHECK(reader.calls == 2);
}

TEST_CASE("190: an embedded writer and a callback reader on one fd are independent") {
    EventLoop loop;
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    Counter writer;
    int reads = 0;
    CHECK_FALSE(loop.add_writer(sv[0], writer));
    CHECK_FALSE(loop.add_reader(sv[0], [&] { ++reads; }));
    CHECK_FALSE(loop.run_once());
    CHECK(writer.calls == 1);  // writable at once
    CHECK(reads == 0);
    CHECK(loop.remove_writer(sv[0]));
    REQUIRE(::write(sv[1], "x", 1) == 1);
    CHECK_FALSE(loop.run_once());
    CHECK(reads == 1);
    CHECK(writer.calls == 1);
    CHECK(loop.remove_reader(sv[0]));
    ::close(sv[0]);
    ::close(sv[1]);
}

TEST_CASE("189: a callback replaces an embedded reader and the other way round") {
    EventLoop loop;
    Pipe p;
    p.put();
    Counter watcher;
    int callback_calls = 0;
    CHECK_FALSE(loop.add_reader(p.r, watcher));
    CHECK_FALSE(loop.add_reader(p.r, [&] { ++callback_calls; }));
    CHECK_FALSE(loop.run_once());
    CHECK(callback_calls == 1);
    CHECK(watcher.calls == 0);
    CHECK_FALSE(loop.add_reader(p.r, watcher));
    CHECK_FALSE(loop.add_reader(p.r, watcher));  // the same one again: still one registration
    CHECK_FALSE(loop.run_once());
    CHECK(callback_calls == 1);
    CHECK(watcher.calls == 1);
    CHECK(loop.remove_reader(p.r));
}

TEST_CASE("a queued watcher removed by an earlier callback never runs, and its owner may be freed at once") {
    // Both fds are ready in one batch; whichever watcher runs first first grows
    // the ready queue (thousands of call_soon: the queued entry moves to a new
    // ring), then removes the other, destroys it and removes itself. Under ASan a call of the
    // freed watcher would be a use after free; everywhere the count says it.
    EventLoop loop;
    Pipe a, b;
    a.put();
    b.put();
    auto first = std::make_unique<Counter>();
    auto second = std::make_unique<Counter>();
    int ran = 0, soon = 0;
    auto remove_other = [&](Counter& self) {
        ++ran;
        for (int i = 0; i < 5000; ++i) loop.call_soon([&] { ++soon; });
        bool self_is_first = &self == first.get();
        CHECK(loop.remove_reader(self_is_first ? b.r : a.r));
        (self_is_first ? second : first).reset();
        CHECK(loop.remove_reader(self_is_first ? a.r : b.r));  // level-triggered: it would run again
    };
    first->on_call = remove_other;
    second->on_call = remove_other;
    CHECK_FALSE(loop.add_reader(a.r, *first));
    CHECK_FALSE(loop.add_reader(b.r, *second));
    CHECK_FALSE(loop.run_once());
    CHECK(ran == 1);
    CHECK_FALSE(loop.run_once());  // the 5,000 callbacks; no watcher is left ready
    CHECK(soon == 5000);
    CHECK(ran == 1);
    Counter* survivor = first ? first.get() : second.get();
    CHECK(survivor->calls == 1);
    CHECK_FALSE(survivor->queued);
}

TEST_CASE("a watcher may remove itself and add itself back from its own call") {
    EventLoop loop;
    Pipe p;
    p.put();
    Counter reader;
    reader.on_call = [&](Counter& self) {
        CHECK(loop.remove_reader(p.r));
        CHECK_FALSE(loop.add_reader(p.r, self));
    };
    CHECK_FALSE(loop.add_reader(p.r, reader));
    CHECK_FALSE(loop.run_once());
    CHECK_FALSE(loop.run_once());
    CHECK(reader.calls == 2);
    CHECK(loop.remove_reader(p.r));
}

TEST_CASE("193, bad input: refused after close, for a negative or closed fd; nothing changes") {
    Counter reader;
    {
        EventLoop loop;
        CHECK_REFUSED(errc::invalid_fd, (void)loop.add_reader(-1, reader));
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        ::close(fds[0]);
        ::close(fds[1]);
        CHECK(loop.add_reader(fds[0], reader) == std::errc::bad_file_descriptor);
        CHECK_FALSE(loop.has_reader(fds[0]));
        CHECK(loop.close() == std::error_code{});
        Pipe p;
        CHECK_REFUSED(errc::loop_closed, (void)loop.add_reader(p.r, reader));
    }
    CHECK(reader.calls == 0);
    CHECK_FALSE(reader.queued);
}

TEST_CASE("close() forgets a registered watcher without calling it") {
    Pipe p;
    p.put();
    Counter reader;
    EventLoop loop;
    CHECK_FALSE(loop.add_reader(p.r, reader));
    CHECK(loop.close() == std::error_code{});
    CHECK_FALSE(loop.has_reader(p.r));
    CHECK(reader.calls == 0);
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("194: an exception from a watcher goes to the exception handler; the watcher stays") {
    EventLoop loop;
    Pipe p;
    p.put();
    Counter reader;
    reader.on_call = [](Counter&) { throw std::runtime_error("watcher failed"); };
    std::vector<std::string> messages;
    loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) { messages.push_back(c.message); });
    CHECK_FALSE(loop.add_reader(p.r, reader));
    CHECK_FALSE(loop.run_once());
    CHECK_FALSE(loop.run_once());
    CHECK(reader.calls == 2);
    REQUIRE(messages.size() == 2);
    CHECK(messages[0] == "Exception in callback");
    CHECK(loop.remove_reader(p.r));
}
#endif
