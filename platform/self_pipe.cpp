// platform/self_pipe.cpp — see self_pipe.hpp.
#include "platform/self_pipe.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace evloop {

std::error_code SelfPipe::open() noexcept {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1) return last_error();
    read_.reset(fds[0]);
    write_.reset(fds[1]);
    return {};
}

void SelfPipe::close() noexcept {
    // Write end first: a signal handler's notify() landing between the two
    // closes must not write into a pipe with no reader (that is SIGPIPE).
    write_.reset();
    read_.reset();
}

void SelfPipe::notify(std::uint8_t byte) noexcept {
    // A signal handler may land here between another syscall and its errno
    // check in the interrupted code, so errno must come back unchanged.
    int saved = errno;
    int fd = write_.get();
    if (fd >= 0 && retry_eintr([&] { return ::write(fd, &byte, 1); }) == 1)
        writes_.fetch_add(1, std::memory_order_relaxed);
    errno = saved;
}

long SelfPipe::read_some(std::uint8_t* buf, unsigned long len) noexcept {
    int fd = read_.get();
    if (fd < 0) return 0;
    return retry_eintr([&] { return ::read(fd, buf, len); });
}

}  // namespace evloop
