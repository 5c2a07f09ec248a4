// proc/connect_pipe.cpp — loop.connect_read_pipe and loop.connect_write_pipe:
// from an fd to a pipe transport whose connection_made has run.
//
// The fd is the call's from the start (as connect_accepted_socket's): every
// failure closes it. The checks happen at once, in the call: the loop must
// be open, the fd a FIFO (pipes are FIFOs), socket or character device
// (CONTRACT 352), and for reading, one the selector can watch. Then, from a
// loop callback (asyncio's coroutine calls the factory only once awaited):
// the factory, the transport, its waiter (connection_made ran) and the
// Connection (CONTRACT 353).
//
// A character device epoll cannot watch (/dev/null, /dev/zero: epoll_ctl
// says EPERM, poll calls such files always ready): connect_read_pipe fails
// with that EPERM, since such a read pipe could never hear of data; under
// poll the same call works (/dev/null then reads EOF at once).
// connect_write_pipe accepts it under both: writes to it never block, so
// the writer that epoll refuses is never needed (if it were, the transport
// would end with connection_lost(EPERM)).
// Layer: proc. Read next: proc/pipe_transport.cpp.
#include <sys/stat.h>

#include <memory>
#include <utility>

#include "net/stream.hpp"
#include "platform/fd.hpp"
#include "platform/selector.hpp"
#include "proc/pipe_transport.hpp"

namespace evloop {

std::error_code check_pipe_fd(int fd) {
    struct stat info {};
    if (::fstat(fd, &info) != 0) return last_error();  // EBADF: not open
    if (S_ISFIFO(info.st_mode) || S_ISSOCK(info.st_mode) || S_ISCHR(info.st_mode)) return {};
    return make_error_code(errc::not_a_pipe);  // a regular file, a directory, a block device
}

namespace {

Future<Connection> failed(EventLoop& loop, std::error_code error) {
    Future<Connection> future(loop);
    (void)future.set_error(error);
    return future;
}

// Registers and unregisters the fd on the selector itself (not add_reader,
// which would replace someone's callback): the kernel's answer is the
// point. An fd the loop already watches is watchable.
std::error_code check_watchable(EventLoop& loop, int fd) {
    if (loop.has_reader(fd) || loop.has_writer(fd)) return {};
    if (std::error_code ec = loop.selector().register_fd(fd, EVENT_READ, nullptr)) return ec;
    (void)loop.selector().unregister_fd(fd);
    return {};
}

// The second half, from a loop callback: the factory, then the transport.
void make_transport(EventLoop& loop, Future<Connection> result, const ProtocolFactory& factory, Fd pipe, bool write) {
    if (result.done()) return;  // cancelled before the factory ran: `pipe` closes here
    std::shared_ptr<StreamProtocol> protocol;
#if EVLOOP_EXCEPTIONS
    try {
        protocol = factory();
    } catch (...) {
        (void)result.set_exception(std::current_exception());
        return;
    }
#else
    protocol = factory();
#endif
    if (!protocol) {  // the factory made no protocol: `pipe` closes here
        (void)result.set_error(make_error_code(errc::invalid_argument));
        return;
    }
    Future<void> waiter(loop);
    std::shared_ptr<Transport> transport;
    if (write)
        transport = WritePipeTransport::make(loop, std::move(pipe), protocol, &waiter);
    else
        transport = ReadPipeTransport::make(loop, std::move(pipe), protocol, &waiter);
    // The waiter is set right after connection_made. A call cancelled
    // meanwhile closes the transport, as asyncio's does.
    waiter.add_done_callback([result, transport, protocol](Future<void>&) mutable {
        if (result.done()) return transport->close();
        (void)result.set_result(Connection{std::move(transport), std::move(protocol)});
    });
}

Future<Connection> connect_pipe(EventLoop& loop, ProtocolFactory factory, int fd, bool write) {
    const char* what = write ? "connect_write_pipe" : "connect_read_pipe";
    Fd pipe(fd);  // the call's from the start: closed on every failure
    // A closed loop runs no callback: nothing could ever complete the call.
    if (loop.is_closed()) return failed(loop, detail::refuse(errc::loop_closed, what));
    if (std::error_code ec = check_pipe_fd(pipe.get())) {
        // asyncio's ValueError('Pipe transport is for pipes/sockets only.') (CONTRACT 352)
        if (ec == errc::not_a_pipe) ec = detail::refuse(errc::not_a_pipe, what);
        return failed(loop, ec);
    }
    if (std::error_code ec = set_nonblocking(pipe.get())) return failed(loop, ec);  // CONTRACT 353
    if (!write) {
        if (std::error_code ec = check_watchable(loop, pipe.get())) return failed(loop, ec);
    }
    Future<Connection> result(loop);
    loop.call_soon([&loop, result, factory = std::move(factory), pipe = std::move(pipe), write]() mutable {
        make_transport(loop, std::move(result), factory, std::move(pipe), write);
    });
    return result;
}

}  // namespace

Future<Connection> EventLoop::connect_read_pipe(ProtocolFactory factory, int fd) {
    return connect_pipe(*this, std::move(factory), fd, false);
}

Future<Connection> EventLoop::connect_write_pipe(ProtocolFactory factory, int fd) {
    return connect_pipe(*this, std::move(factory), fd, true);
}

}  // namespace evloop
