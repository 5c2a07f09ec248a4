// test/proc/connect_pipe_test.cpp — loop.connect_read_pipe / connect_write_pipe
// (proc/connect_pipe.cpp): which fds are pipes (CONTRACT 352), the fd made
// non-blocking and connection_made before the future (353), refusals and
// failures closing the fd, cancellation, and the kinds of fd carried end to
// end: a FIFO (mkfifo), a socketpair, /dev/null.
#include "test/proc/pipe_support.hpp"

using namespace evloop;
using namespace evloop::test;

// ---- connecting ------------------------------------------------------------

TEST_CASE("connect_read_pipe: non-blocking fd, connection_made before the future completes (CONTRACT 353, 280)") {
    EventLoop loop;
    Pipe p = make_pipe(O_CLOEXEC);  // blocking: the call makes it non-blocking
    int fd = p.read.get();
    auto protocol = std::make_shared<Recorder>();
    Future<Connection> future = loop.connect_read_pipe([protocol] { return protocol; }, p.read.release());
    CHECK(protocol->events.empty());  // nothing happens inside the call
    std::optional<bool> made_when_done;
    future.add_done_callback([&](Future<Connection>&) { made_when_done = protocol->transport != nullptr; });
    REQUIRE(run_until(loop, [&] { return made_when_done.has_value(); }));
    CHECK(*made_when_done);
    Connection c = *future.result();
    CHECK(c.protocol == protocol);
    CHECK(c.transport.get() == protocol->transport);
    CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    REQUIRE(std::holds_alternative<int>(c.transport->get_extra_info("pipe")));
    CHECK(std::get<int>(c.transport->get_extra_info("pipe")) == fd);
    CHECK(std::holds_alternative<std::monostate>(c.transport->get_extra_info("socket")));
    CHECK(as_reader(c).describe() == "<ReadPipeTransport fd=" + std::to_string(fd) + ">");
    c.transport->close();
    REQUIRE(run_until(loop, [&] { return protocol->lost == 1; }));
    CHECK(std::holds_alternative<std::monostate>(c.transport->get_extra_info("pipe")));
    CHECK(!is_open_fd(fd));
}

TEST_CASE("connect_write_pipe: the same for the write end (CONTRACT 353, 357)") {
    EventLoop loop;
    Pipe p = make_pipe(O_CLOEXEC);
    int fd = p.write.get();
    auto protocol = std::make_shared<Recorder>();
    Connection c = connect(loop, true, std::move(p.write), protocol);
    CHECK(protocol->events == std::vector<std::string>{"made"});
    CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    CHECK(std::get<int>(c.transport->get_extra_info("pipe")) == fd);
    CHECK(c.transport->can_write_eof());
    CHECK(!c.transport->is_reading());
    WriteBufferLimits limits = c.transport->get_write_buffer_limits();  // CONTRACT 248, 357
    CHECK(limits.high == 64 * 1024);
    CHECK(limits.low == 16 * 1024);
    c.transport->close();
    REQUIRE(run_until(loop, [&] { return protocol->lost == 1; }));
}

TEST_CASE("a regular file, a directory and a block device are refused with not_a_pipe, the fd closed (CONTRACT 352)") {
    EventLoop loop;
    TempDir dir;
    std::string file = dir.path + "/file";
    auto factory = [] { return std::make_shared<Recorder>(); };
    for (bool write : {false, true}) {
        int fds[] = {::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600),
                     ::open(dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
        for (int fd : fds) {
            REQUIRE(fd >= 0);
            CHECK(check_pipe_fd(fd) == errc::not_a_pipe);
            std::optional<Future<Connection>> future;
            CHECK_REFUSED(errc::not_a_pipe, future.emplace(write ? loop.connect_write_pipe(factory, fd)
                                                                 : loop.connect_read_pipe(factory, fd)));
            if (future) CHECK(future->error() == errc::not_a_pipe);  // no-exceptions builds
            CHECK(!is_open_fd(fd));
        }
    }
    ::unlink(file.c_str());
}

TEST_CASE("check_pipe_fd: pipes, FIFOs, sockets and character devices pass; a closed fd is EBADF (CONTRACT 352)") {
    EventLoop loop;  // first: its fds must not take the closed number below
    Pipe p = make_pipe();
    CHECK(!check_pipe_fd(p.read.get()));
    CHECK(!check_pipe_fd(p.write.get()));
    auto pair = test::unix_pair();
    CHECK(!check_pipe_fd(pair.ours.get()));
    Fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    CHECK(!check_pipe_fd(null.get()));
    int closed = p.read.get();
    p.read.reset();
    CHECK(check_pipe_fd(closed) == std::errc::bad_file_descriptor);
    Future<Connection> future = loop.connect_read_pipe([] { return std::make_shared<Recorder>(); }, closed);
    CHECK(future.error() == std::errc::bad_file_descriptor);  // an OS error, not a refusal
}

TEST_CASE("connect after the loop closed is refused with loop_closed and the fd closed") {
    EventLoop loop;
    REQUIRE(!loop.close());
    Pipe p = make_pipe();
    int fds[] = {p.read.release(), p.write.release()};
    auto factory = [] { return std::make_shared<Recorder>(); };
    std::optional<Future<Connection>> future;
    CHECK_REFUSED(errc::loop_closed, future.emplace(loop.connect_read_pipe(factory, fds[0])));
    if (future) CHECK(future->error() == errc::loop_closed);
    future.reset();
    CHECK_REFUSED(errc::loop_closed, future.emplace(loop.connect_write_pipe(factory, fds[1])));
    if (future) CHECK(future->error() == errc::loop_closed);
    CHECK(!is_open_fd(fds[0]));
    CHECK(!is_open_fd(fds[1]));
}

TEST_CASE("a factory returning no protocol fails the call and closes the fd") {
    EventLoop loop;
    Pipe p = make_pipe();
    int fd = p.read.get();
    Future<Connection> future = loop.connect_read_pipe([] { return std::shared_ptr<Recorder>(); }, p.read.release());
    REQUIRE(run_until(loop, [&] { return future.done(); }));
    CHECK(future.error() == errc::invalid_argument);
    CHECK(!is_open_fd(fd));
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("a factory that throws: the future holds the exception and the fd is closed") {
    EventLoop loop;
    Pipe p = make_pipe();
    int fd = p.write.get();
    Future<Connection> future = loop.connect_write_pipe(
        []() -> std::shared_ptr<Recorder> { throw std::runtime_error("no protocol"); }, p.write.release());
    REQUIRE(run_until(loop, [&] { return future.done(); }));
    CHECK(future.exception() != nullptr);
    CHECK(!is_open_fd(fd));
}
#endif

TEST_CASE("cancelling the call: before the factory the fd closes; after it the transport closes") {
    EventLoop loop;
    SUBCASE("before the factory ran") {
        Pipe p = make_pipe();
        int fd = p.read.get();
        bool called = false;
        Future<Connection> future = loop.connect_read_pipe(
            [&] { called = true; return std::make_shared<Recorder>(); }, p.read.release());
        future.cancel();
        spin(loop, 2);
        CHECK(!called);
        CHECK(!is_open_fd(fd));
    }
    SUBCASE("after the transport was made") {
        Pipe p = make_pipe();
        auto protocol = std::make_shared<Recorder>();
        Future<Connection> future = loop.connect_write_pipe([protocol] { return protocol; }, p.write.release());
        (void)loop.run_once();  // the factory and the transport; connection_made is queued
        future.cancel();
        REQUIRE(run_until(loop, [&] { return protocol->lost == 1; }));
        CHECK(protocol->events == std::vector<std::string>{"made", "lost"});
    }
}

TEST_CASE("a FIFO carries data from a write pipe to a read pipe; the writer's close is the reader's EOF (CONTRACT 352, 354)") {
    EventLoop loop;
    TempDir dir;
    std::string path = dir.path + "/fifo";
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    Fd read_end(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    Fd write_end(::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    ::unlink(path.c_str());
    REQUIRE(read_end);
    REQUIRE(write_end);
    auto reader = std::make_shared<Recorder>();
    auto writer = std::make_shared<Recorder>();
    Connection r = connect(loop, false, std::move(read_end), reader);
    Connection w = connect(loop, true, std::move(write_end), writer);
    CHECK(!w.transport->write("through the fifo"));
    w.transport->write_eof();
    REQUIRE(run_until(loop, [&] { return reader->lost == 1 && writer->lost == 1; }));
    CHECK(reader->data == "through the fifo");
    CHECK(reader->events == std::vector<std::string>{"made", "data", "eof", "lost"});
}

TEST_CASE("a socketpair as a pair of pipes") {
    EventLoop loop;
    auto pair = test::unix_pair();
    auto reader = std::make_shared<Recorder>();
    auto writer = std::make_shared<Recorder>();
    Connection r = connect(loop, false, std::move(pair.peer), reader);
    Connection w = connect(loop, true, std::move(pair.ours), writer);
    CHECK(!w.transport->write("over a socket"));
    w.transport->close();
    REQUIRE(run_until(loop, [&] { return reader->lost == 1 && writer->lost == 1; }));
    CHECK(reader->data == "over a socket");
    CHECK(!writer->lost_error);
}

TEST_CASE("/dev/null: a write pipe takes everything; a read pipe is EPERM under epoll, EOF under poll") {
    EventLoop loop;
    Fd sink(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    REQUIRE(sink);
    auto writer = std::make_shared<Recorder>();
    Connection w = connect(loop, true, std::move(sink), writer);
    CHECK(!w.transport->write(std::string(1 << 20, 'n')));
    CHECK(w.transport->get_write_buffer_size() == 0);
    w.transport->close();
    REQUIRE(run_until(loop, [&] { return writer->lost == 1; }));
    CHECK(!writer->lost_error);

    int source = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(source >= 0);
    auto reader = std::make_shared<Recorder>();
    bool called = false;
    Future<Connection> future = loop.connect_read_pipe([&] { called = true; return reader; }, source);
    if (loop.backend_name() == "epoll") {
        // epoll cannot watch it: a clear error at once, the fd closed.
        REQUIRE(future.done());
        CHECK(future.error() == std::errc::operation_not_permitted);
        CHECK(!is_open_fd(source));
        spin(loop, 2);
        CHECK(!called);
    } else {
        REQUIRE(run_until(loop, [&] { return reader->lost == 1; }));
        CHECK(reader->events == std::vector<std::string>{"made", "eof", "lost"});
    }
}
