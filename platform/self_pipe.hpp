// platform/self_pipe.hpp — the loop's wakeup channel.
//
// A non-blocking, close-on-exec pipe that carries bytes, like the fd asyncio
// hands to signal.set_wakeup_fd: a 0 byte means "wake up" (call_soon_threadsafe),
// any other byte is a signal number written by a signal handler. write(2) is
// async-signal-safe, so a signal handler may call notify(); nothing here
// allocates or locks. The loop registers read_fd() with its selector and calls
// drain() when it is readable.
// Layer: platform. Read next: core/event_loop.cpp (how the loop uses it).
#pragma once

#include <atomic>
#include <cstdint>
#include <system_error>

#include "platform/fd.hpp"

namespace evloop {

class SelfPipe {
public:
    /// Creates the pipe (pipe2 with O_NONBLOCK | O_CLOEXEC).
    std::error_code open() noexcept;
    /// Closes both ends. Idempotent.
    void close() noexcept;
    bool is_open() const noexcept { return read_.get() >= 0; }

    int read_fd() const noexcept { return read_.get(); }
    int write_fd() const noexcept { return write_.get(); }

    /// Writes one byte (0 = plain wakeup). Async-signal-safe; preserves errno.
    /// A full pipe (EAGAIN) is fine: unread bytes already guarantee a wakeup.
    void notify(std::uint8_t byte = 0) noexcept;

    /// Reads until the pipe is empty (EINTR retried) and calls `on_signal(n)`
    /// for every non-zero byte; 0 bytes are plain wakeups and are dropped.
    template <class OnSignal>
    void drain(OnSignal on_signal) noexcept {
        std::uint8_t buf[4096];
        for (;;) {
            long n = read_some(buf, sizeof buf);
            if (n <= 0) return;
            for (long i = 0; i < n; ++i)
                if (buf[i] != 0) on_signal(static_cast<int>(buf[i]));
        }
    }

    /// How many bytes notify() has written (for tests and metrics: it proves
    /// that a burst of threadsafe calls coalesces into few writes).
    std::uint64_t writes() const noexcept { return writes_.load(std::memory_order_relaxed); }

private:
    long read_some(std::uint8_t* buf, unsigned long len) noexcept;

    Fd read_;
    Fd write_;
    std::atomic<std::uint64_t> writes_{0};
};

}  // namespace evloop
