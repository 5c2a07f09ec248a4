// platform/fd.hpp — the smallest OS vocabulary the rest of evloop speaks:
// an owning file descriptor, errno turned into std::error_code, and an EINTR
// retry helper. Layer: platform (knows nothing of core/, net/, proc/).
// Read next: platform/selector.hpp.
#pragma once

#include <cerrno>
#include <system_error>
#include <utility>

namespace evloop {

/// The calling thread's errno as a std::error_code (system category).
inline std::error_code last_error() noexcept { return {errno, std::system_category()}; }

/// Runs `op` again while it fails with EINTR: a signal landing in the middle of a
/// syscall is not an error (signals here only ever wake the loop).
template <class Op>
auto retry_eintr(Op op) noexcept(noexcept(op())) {
    auto result = op();
    while (result == -1 && errno == EINTR) result = op();
    return result;
}

/// A move-only owner of one file descriptor, closed on destruction.
/// evloop creates every fd non-blocking and close-on-exec from birth; this type
/// only owns it, it does not change its flags.
class Fd {
public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) reset(other.release());
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    /// The descriptor number, or -1 when empty.
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    /// Gives up ownership without closing.
    int release() noexcept { return std::exchange(fd_, -1); }
    /// Closes the owned descriptor (if any) and takes `fd` instead.
    void reset(int fd = -1) noexcept;

private:
    int fd_ = -1;
};

/// Sets or clears O_NONBLOCK.
std::error_code set_nonblocking(int fd, bool on = true) noexcept;
/// Sets FD_CLOEXEC (for descriptors that came from elsewhere).
std::error_code set_cloexec(int fd) noexcept;
/// True if `fd` names an open descriptor of this process (fcntl F_GETFD).
bool is_open_fd(int fd) noexcept;

}  // namespace evloop
