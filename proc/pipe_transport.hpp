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
    /// "<ReadPipeTransport fd=7 closing>".
    std::string describe() const;

private:
    ReadPipeTransport(EventLoop& loop, Fd pipe, std::shared_ptr<StreamProtocol> protocol);
    void start(Future<void>* waiter);
    void read_ready();
    void fatal_error(std::error_code error, const char* message);
    void close_with(std::error_code error);
    void call_connection_lost(std::error_code error);
    void loop_closing() noexcept override;

    EventLoop* loop_;
    Fd fd_;
    std::shared_ptr<StreamProtocol> protocol_;
    std::shared_ptr<ReadPipeTransport> self_;
    bool buffered_;
    bool closing_ = false;
    bool paused_ = false;
    bool started_ = false;
    bool reader_on_ = false;
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
    /// "<WritePipeTransport fd=7 closing>".
    std::string describe() const;

private:
    WritePipeTransport(EventLoop& loop, Fd pipe, std::shared_ptr<StreamProtocol> protocol);
    void start(Future<void>* waiter);
    std::error_code write_pieces(std::span<const std::string_view> pieces);
    void write_ready();
    void reader_gone();
    void fatal_error(std::error_code error, const char* message);
    void close_with(std::error_code error);
    void call_connection_lost(std::error_code error);
    void loop_closing() noexcept override;

    EventLoop* loop_;
    Fd fd_;
    std::shared_ptr<StreamProtocol> protocol_;
    std::shared_ptr<WritePipeTransport> self_;
    detail::WriteBuffer buffer_;
    detail::FlowControl flow_;
    std::uint32_t lost_writes_ = 0;
    bool is_socket_ = false;     // send(MSG_NOSIGNAL) instead of write()
    bool watch_reader_ = false;  // a FIFO or socket: readability means the reader left
    bool closing_ = false;
    bool conn_lost_ = false;     // connection_lost is scheduled or done
    bool reader_on_ = false;
    bool writer_on_ = false;
};

}  // namespace evloop
