// platform/fd.cpp — closing and flag changes for platform/fd.hpp.
#include "platform/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace evloop {

void Fd::reset(int fd) noexcept {
    // close() is never retried on EINTR: on Linux the descriptor is released
    // even when close() reports EINTR, and a retry could close a reused number.
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

std::error_code set_nonblocking(int fd, bool on) noexcept {
    int flags = retry_eintr([&] { return ::fcntl(fd, F_GETFL); });
    if (flags == -1) return last_error();
    int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (wanted != flags && retry_eintr([&] { return ::fcntl(fd, F_SETFL, wanted); }) == -1)
        return last_error();
    return {};
}

std::error_code set_cloexec(int fd) noexcept {
    int flags = retry_eintr([&] { return ::fcntl(fd, F_GETFD); });
    if (flags == -1) return last_error();
    if (!(flags & FD_CLOEXEC) &&
        retry_eintr([&] { return ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC); }) == -1)
        return last_error();
    return {};
}

bool is_open_fd(int fd) noexcept {
    return fd >= 0 && ::fcntl(fd, F_GETFD) != -1;
}

}  // namespace evloop
