// test/core/event_loop_io_test.cpp — add_reader / add_writer over real pipes
// and sockets (core/event_loop_io.cpp), CONTRACT §12.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/event_loop.hpp"
#include "test/support.hpp"

using namespace evloop;
using Pipe = evloop::test::RawPipe;
using evloop::test::run_until;

TEST_CASE("186: remove_reader/remove_writer return whether something was removed") {
    EventLoop loop;
    Pipe p;
    CHECK_FALSE(loop.remove_reader(p.r));
    CHECK_FALSE(loop.add_reader(p.r, [] {}));
    CHECK(loop.remove_reader(p.r));
    CHECK_FALSE(loop.remove_reader(p.r));
    CHECK_FALSE(loop.add_writer(p.w, [] {}));
    CHECK(loop.remove_writer(p.w));
    CHECK_FALSE(loop.remove_writer(p.w));
    CHECK(loop.selector().size() == 1);  // only the self-pipe is left
}

TEST_CASE("189: a second add_reader replaces the first and drops its captures") {
    EventLoop loop;
    Pipe p;
    p.put();
    std::vector<std::string> calls;
    auto token = std::make_shared<int>(0);
    CHECK_FALSE(loop.add_reader(p.r, [&calls, token] { calls.push_back("first"); }));
    CHECK_FALSE(loop.add_reader(p.r, [&calls] { calls.push_back("second"); }));
    CHECK(token.use_count() == 1);
    CHECK_FALSE(loop.run_once());
    CHECK(calls == std::vector<std::string>{"second"});
    loop.remove_reader(p.r);
}

TEST_CASE("190: reader and writer on one fd are independent") {
    EventLoop loop;
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    int reads = 0, writes = 0;
    CHECK_FALSE(loop.add_reader(sv[0], [&] { ++reads; }));
    CHECK_FALSE(loop.add_writer(sv[0], [&] { ++writes; }));
    CHECK(loop.selector().get_key(sv[0])->events == (EVENT_READ | EVENT_WRITE));
    CHECK_FALSE(loop.run_once());
    CHECK(writes == 1);
    CHECK(reads == 0);
    CHECK(loop.remove_writer(sv[0]));
    CHECK(loop.selector().get_key(sv[0])->events == EVENT_READ);
    REQUIRE(::write(sv[1], "x", 1) == 1);
    CHECK_FALSE(loop.run_once());
    CHECK(reads == 1);
    CHECK(writes == 1);
    CHECK(loop.remove_reader(sv[0]));
    CHECK(loop.selector().get_key(sv[0]) == nullptr);
    ::close(sv[0]);
    ::close(sv[1]);
}

TEST_CASE("191: level-triggered: the reader runs every iteration while data is unread") {
    EventLoop loop;
    Pipe p;
    p.put("abc");
    int calls = 0;
    CHECK_FALSE(loop.add_reader(p.r, [&] { ++calls; }));
    for (int i = 0; i < 3; ++i) CHECK_FALSE(loop.run_once());
    CHECK(calls == 3);
    char buf[8];
    REQUIRE(::read(p.r, buf, sizeof buf) == 3);
    loop.call_later(0.01, [] {});
    CHECK_FALSE(loop.run_once());  // waits for the timer; the pipe is empty now
    CHECK(calls == 3);
    loop.remove_reader(p.r);
}

TEST_CASE("a reader can remove itself, and another fd's reader, within one batch") {
    EventLoop loop;
    Pipe a, b;
    a.put();
    b.put();
    int a_calls = 0, b_calls = 0;
    CHECK_FALSE(loop.add_reader(a.r, [&] {
        ++a_calls;
        loop.remove_reader(a.r);
        loop.remove_reader(b.r);
    }));
    CHECK_FALSE(loop.add_reader(b.r, [&] {
        ++b_calls;
        loop.remove_reader(a.r);
        loop.remove_reader(b.r);
    }));
    CHECK_FALSE(loop.run_once());
    CHECK(a_calls + b_calls == 1);  // whichever ran first removed the other
    loop.call_later(0.005, [] {});  // something to wait for: nothing is watched now
    CHECK_FALSE(loop.run_once());
    CHECK(a_calls + b_calls == 1);
}

TEST_CASE("an fd closed and reopened by a callback in one batch gets no stale events") {
    EventLoop loop;
    auto old = std::make_unique<Pipe>();
    old->put();
    const int fd = old->r;
    int stale = 0, fresh = 0;
    CHECK_FALSE(loop.add_reader(fd, [&] { ++stale; }));
    // This callback runs in the same iteration as the old fd's ready event,
    // before it: it closes the fd and watches a new, empty pipe on that number.
    std::unique_ptr<Pipe> replacement;
    loop.call_soon([&] {
        loop.remove_reader(fd);
        old.reset();
        replacement = std::make_unique<Pipe>();
        REQUIRE(replacement->r == fd);
        CHECK_FALSE(loop.add_reader(fd, [&] { ++fresh; }));
    });
    CHECK_FALSE(loop.run_once());
    CHECK(stale == 0);  // the old registration's event was dropped
    CHECK(fresh == 0);  // and not handed to the new registration
    loop.call_later(0.005, [] {});
    CHECK_FALSE(loop.run_once());
    CHECK(fresh == 0);  // the new pipe is empty
    replacement->put();
    CHECK_FALSE(loop.run_once());
    CHECK(fresh == 1);
    loop.remove_reader(fd);
}

TEST_CASE("an fd closed without remove_reader, its number reused, can be watched again") {
    EventLoop loop;
    auto old = std::make_unique<Pipe>();
    int fd = old->r;
    CHECK_FALSE(loop.add_reader(fd, [] {}));
    CHECK_FALSE(loop.add_writer(old->w, [] {}));
    loop.remove_writer(old->w);
    old.reset();  // closed behind the loop's back
    Pipe fresh;
    REQUIRE(fresh.r == fd);
    fresh.put();
    int calls = 0;
    CHECK_FALSE(loop.add_reader(fresh.r, [&] { ++calls; }));
    CHECK(run_until(loop, [&] { return calls > 0; }, 1.0));
    loop.remove_reader(fresh.r);
}

TEST_CASE("193: after close, add_* is refused and remove_* returns false") {
    EventLoop loop;
    Pipe p;
    CHECK_FALSE(loop.add_reader(p.r, [] {}));
    (void)loop.close();
    CHECK_FALSE(loop.remove_reader(p.r));
    CHECK_FALSE(loop.remove_writer(p.w));
    CHECK_REFUSED(errc::loop_closed, (void)loop.add_reader(p.r, [] {}));
    CHECK_REFUSED(errc::loop_closed, (void)loop.add_writer(p.w, [] {}));
}

TEST_CASE("bad input: negative and closed fds give a clear error and change nothing") {
    EventLoop loop;
    CHECK_REFUSED(errc::invalid_fd, (void)loop.add_reader(-1, [] {}));
    CHECK_REFUSED(errc::invalid_fd, (void)loop.add_writer(-5, [] {}));
    CHECK_FALSE(loop.remove_reader(-1));
    int fd;
    {
        Pipe p;
        fd = p.r;
    }
    std::error_code ec = loop.add_reader(fd, [] {});
    CHECK(ec == std::errc::bad_file_descriptor);
    CHECK(loop.selector().get_key(fd) == nullptr);
    CHECK_FALSE(loop.remove_reader(fd));
    CHECK(loop.selector().size() == 1);
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("194: an exception from a reader goes to the exception handler; the reader stays") {
    EventLoop loop;
    Pipe p;
    p.put();
    int calls = 0;
    std::vector<std::string> messages;
    loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) { messages.push_back(c.message); });
    CHECK_FALSE(loop.add_reader(p.r, [&] {
        ++calls;
        throw std::runtime_error("reader failed");
    }));
    CHECK_FALSE(loop.run_once());
    CHECK_FALSE(loop.run_once());
    CHECK(calls == 2);
    CHECK(messages.size() == 2);
    loop.remove_reader(p.r);
}
#endif

TEST_CASE("a writer on a socketpair fires until removed; close removes every watch") {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    int writes = 0;
    auto token = std::make_shared<int>(0);
    {
        EventLoop loop;
        CHECK_FALSE(loop.add_writer(sv[1], [&writes, token] { ++writes; }));
        CHECK_FALSE(loop.run_once());
        CHECK_FALSE(loop.run_once());
        CHECK(writes == 2);
        (void)loop.close();
        CHECK(token.use_count() == 1);
    }
    ::close(sv[0]);
    ::close(sv[1]);
}

TEST_CASE("has_reader/has_writer follow registration; set_transport_fd marks an fd for net/") {
    EventLoop loop;
    Pipe p;
    CHECK(!loop.has_reader(p.r));
    CHECK(!loop.has_writer(p.w));
    CHECK(!loop.has_reader(-1));
    CHECK(!loop.has_reader(1 << 20));
    REQUIRE(!loop.add_reader(p.r, [] {}));
    REQUIRE(!loop.add_writer(p.w, [] {}));
    CHECK(loop.has_reader(p.r));
    CHECK(!loop.has_writer(p.r));
    CHECK(loop.has_writer(p.w));
    CHECK(loop.remove_reader(p.r));
    CHECK(!loop.has_reader(p.r));
    CHECK(loop.remove_writer(p.w));
    CHECK(!loop.is_transport_fd(p.r));
    loop.set_transport_fd(p.r, true);
    CHECK(loop.is_transport_fd(p.r));
    CHECK(!loop.is_transport_fd(p.w));
    loop.set_transport_fd(p.r, false);
    CHECK(!loop.is_transport_fd(p.r));
    loop.set_transport_fd(1 << 16, false);  // unknown fds: nothing to clear, nothing grows
    CHECK(!loop.is_transport_fd(1 << 16));
    loop.set_transport_fd(-1, true);
    CHECK(!loop.is_transport_fd(-1));
}
