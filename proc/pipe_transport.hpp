// proc/pipe_transport.hpp — the pipe transports: asyncio's
// _UnixReadPipeTransport and _UnixWritePipeTransport, over pipes, FIFOs,
// sockets and character devices (ptys).
//
// Both are evloop::Transport, so they fit the StreamProtocol that
// connect_read_pipe / connect_write_pipe take and the Connection they give
// back; the half a pipe does not have refuses (a read pipe's write() is
// errc::not_supported, a write pipe is never reading). That is where C++
// differs from asyncio, whose protocols take any BaseTransport.
//
// ReadPipeTransport: one read() of up to 256 KiB per readiness, into the
// thread's shared read buffer (Protocol) or the protocol's own buffer
// (BufferedProtocol); at EOF it stops reading and calls eof_received(),
// then connection_lost(no error) — eof_received's answer does not keep it
// open, as in asyncio (CONTRACT 354).
// WritePipeTransport: write() goes straight to the pipe when nothing is
// queued; the rest is copied into a WriteBuffer flushed on writability, with
// the sockets' flow control (64 KiB / 16 KiB). write_eof() is close(). For a
// FIFO or a socket it also watches readability, which on a write end means
// the reader went away (CONTRACT 360). EPIPE ends it with
// connection_lost(EPIPE) and never raises SIGPIPE (pipes have no
// MSG_NOSIGNAL: the write blocks SIGPIPE for the calling thread and consumes
// the one it caused).
// Lifetime: as SocketTransport — an open transport holds itself until its
// protocol's connection_lost has returned, or until the loop closes.
// Layer: proc. Read next: proc/pipe_transport.cpp, then proc/subprocess.hpp.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/event_loop.hpp"
#include "core/future.hpp"
#include "net/protocol.hpp"
#include "net/transport.hpp"
#include "net/write_buffer.hpp"
#include "platform/fd.hpp"

namespace evloop {

/// Checks that `fd` is a pipe, FIFO, socket or character device
/// (errc::not_a_pipe otherwise; the fstat error if it is not open).
std::error_code check_pipe_fd(int fd);

class ReadPipeTransport final : public Transport, private detail::LoopResource {
public:
    /// asyncio's max_size: the most one read() asks for.
    static constexpr std::size_t kMaxReadSize = 256 * 1024;

    /// Wraps a pipe's read end (made non-blocking here). On the next
    /// iteration: connection_made, then reading starts (unless paused), then
    /// `waiter` (if given) gets its result (CONTRACT 353).
    static std::shared_ptr<ReadPipeTransport> make(EventLoop& loop, Fd pipe, std::shared_ptr<StreamProtocol> protocol,
                                                   Future<void>* waiter = nullptr);
    ~ReadPipeTransport() override;

    // BaseTransport
    void close() override;
    bool is_closing() const noexcept override { return closing_; }
    /// "pipe": the fd (while open).
    ExtraInfo get_extra_info(std::string_view name) const override;
    std::error_code set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
    std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }
    // ReadTransport
    bool is_reading() const noexcept override { return !closing_ && !paused_; }
    void pause_reading() override;   // idempotent, safe when closed (CONTRACT 356)
    void resume_reading() override;
    // WriteTransport: a read pipe has none; each refuses with errc::not_supported.
    std::error_code write(std::string_view data) override;
    std::error_code writelines(std::span<const std::string_view> pieces) override;
    using WriteTransport::writelines;
    bool can_write_eof() const noexcept override { return false; }
    void write_eof() override {}
    /// Closes at once: connection_lost(no error) follows.
    void abort() override;
    std::size_t get_write_buffer_size() const noexcept override { return 0; }
    WriteBufferLimits get_write_buffer_limits() const noexcept override { return {0, 0}; }
    std::error_code set_write_buffer_limits(std::optional<std::size_t> high,
                                            std::optional<std::size_t> low = std::nullopt) override;

    int fd() const noexcept { return fd_.get(); }
    /// "<ReadPipeTransport fd=7>", "<ReadPipeTransport fd=7 closing>", and
    /// "<ReadPipeTransport closed>" once the fd is released (also after the
    /// loop closed, CONTRACT 363).
    std::string describe() const;

private:
    ReadPipeTransport(EventLoop& loop, Fd pipe, std::shared_ptr<StreamProtocol> protocol);
    void start(Future<void>* waiter);
    void start_reader();
    void read_ready();
    void read_into_protocol();
    void read_into_buffered_protocol();
    void on_read_result(ssize_t n);
    void on_eof();
    void call_eof_received();
    void fatal_error(std::error_code error, const char* message);
    void protocol_failed(const char* call);  // from a catch block: reports, then aborts
    void close_with(std::error_code error);
    void call_connection_lost(std::error_code error);
    void loop_closing() noexcept override;

    EventLoop* loop_;
    Fd fd_;
    std::shared_ptr<StreamProtocol> protocol_;
    std::shared_ptr<ReadPipeTransport> self_;  // the open transport keeps itself alive
    bool buffered_;             // the protocol is a BufferedProtocol
    bool closing_ = false;      // close(), abort(), EOF or a failure happened
    bool conn_lost_ = false;    // connection_lost is scheduled or done
    bool paused_ = false;       // pause_reading()
    bool started_ = false;      // connection_made ran; reading may begin
    bool reader_on_ = false;    // a reader is registered with the loop
};

class WritePipeTransport final : public Transport, private detail::LoopResource {
public:
    /// Wraps a pipe's write end (made non-blocking here). On the next
    /// iteration: connection_made, then `waiter` (CONTRACT 353).
    static std::shared_ptr<WritePipeTransport> make(EventLoop& loop, Fd pipe, std::shared_ptr<StreamProtocol> protocol,
                                                    Future<void>* waiter = nullptr);
    ~WritePipeTransport() override;

    // BaseTransport
    /// Flushes the buffer, then connection_lost(no error) (CONTRACT 358).
    void close() override;
    bool is_closing() const noexcept override { return closing_; }
    /// "pipe": the fd (while open).
    ExtraInfo get_extra_info(std::string_view name) const override;
    std::error_code set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
    std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }
    // ReadTransport: a write pipe never reads.
    bool is_reading() const noexcept override { return false; }
    void pause_reading() override {}
    void resume_reading() override {}
    // WriteTransport
    /// Refused with errc::transport_closing once closing or after the reader
    /// went away (a warning is logged from the 5th, CONTRACT 361).
    std::error_code write(std::string_view data) override;
    std::error_code writelines(std::span<const std::string_view> pieces) override;
    using WriteTransport::writelines;
    bool can_write_eof() const noexcept override { return true; }
    /// The same as close() (CONTRACT 358).
    void write_eof() override { close(); }
    /// Drops the buffer; connection_lost(no error) follows (CONTRACT 359).
    void abort() override;
    std::size_t get_write_buffer_size() const noexcept override { return buffer_.size(); }
    WriteBufferLimits get_write_buffer_limits() const noexcept override { return flow_.limits; }
    std::error_code set_write_buffer_limits(std::optional<std::size_t> high,
                                            std::optional<std::size_t> low = std::nullopt) override;

    int fd() const noexcept { return fd_.get(); }
    /// "<WritePipeTransport fd=7 bufsize=10>", as ReadPipeTransport's otherwise.
    std::string describe() const;

private:
    WritePipeTransport(EventLoop& loop, Fd pipe, std::shared_ptr<StreamProtocol> protocol);
    void start(Future<void>* waiter);
    std::error_code write_pieces(std::span<const std::string_view> pieces);
    std::error_code refuse_write(const char* what);
    std::error_code start_writer();
    void write_ready();
    void reader_gone();
    void fatal_error(std::error_code error, const char* message);
    void call_pause_writing();
    void call_resume_writing();
    void close_with(std::error_code error);
    void call_connection_lost(std::error_code error);
    void loop_closing() noexcept override;

    EventLoop* loop_;
    Fd fd_;
    std::shared_ptr<StreamProtocol> protocol_;
    std::shared_ptr<WritePipeTransport> self_;  // the open transport keeps itself alive
    detail::WriteBuffer buffer_;
    detail::FlowControl flow_;
    std::uint32_t lost_writes_ = 0;  // writes refused after close, for the warning
    bool is_socket_ = false;     // send(MSG_NOSIGNAL) instead of write()
    bool watch_reader_ = false;  // a FIFO or socket: readability means the reader left
    bool closing_ = false;       // close(), abort(), the reader left or a failure happened
    bool conn_lost_ = false;     // connection_lost is scheduled or done
    bool reader_on_ = false;     // the reader-gone watch is registered
    bool writer_on_ = false;     // a writer is registered (the buffer is not empty)
};

}  // namespace evloop
