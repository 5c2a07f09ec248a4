// net/socket_transport.hpp — SocketTransport: asyncio's
// _SelectorSocketTransport, the transport of every TCP and Unix stream.
//
// Reading: while reading, the socket's fd has a reader in the loop; each
// readiness is one recv() into a 256 KiB buffer the whole thread shares
// (data_received gets a view of it: a Protocol never allocates per read),
// or one recv() straight into the memory a BufferedProtocol's get_buffer()
// gave (no copy at all).
// Writing: write() sends at once when nothing is buffered; only what the
// kernel did not take is copied into the WriteBuffer, and only then is a
// writer registered, which flushes the buffer with one gathered sendmsg()
// per readiness. A steady connection thus costs one recv and one send per
// message and no epoll_ctl.
// Lifetime: created by create_connection / a server's accept loop /
// connect_accepted_socket through make(); holds itself (self_) until
// connection_lost has returned, or until the loop closes.
// Memory: a server may hold many thousands of idle connections, so an idle
// one is kept small: the transport and its reference counts are one 144-byte
// allocation, its reader is a 16-byte watcher inside it (core/fd_watcher.hpp)
// rather than a 64-byte loop handle, and what only a busy write side needs
// (unsent bytes, marks, a sendfile's listener) is allocated when needed and
// freed after.
// Layer: net. Read next: net/socket_transport.cpp, then net/server.hpp.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/callback.hpp"
#include "core/event_loop.hpp"
#include "core/future.hpp"
#include "net/protocol.hpp"
#include "net/transport.hpp"
#include "net/write_buffer.hpp"
#include "platform/fd.hpp"

namespace evloop {

class Server;

class SocketTransport final : public Transport, private detail::LoopResource, private detail::FdWatcher {
    // Only make() can name it: the constructor is public for std::make_shared alone.
    struct Passkey {
        explicit Passkey() = default;
    };

public:
    /// asyncio's max_size: the most one recv() asks for (CONTRACT 272).
    static constexpr std::size_t kMaxReadSize = 256 * 1024;

    /// Wraps a connected, non-blocking stream socket. On the next iteration,
    /// in one callback: connection_made, then reading starts (unless the
    /// protocol paused it), then `waiter` (if given) gets its result
    /// (CONTRACT 139, 277). TCP sockets get TCP_NODELAY (CONTRACT 142).
    /// `server`, if given, counts the transport among its clients until
    /// connection_lost.
    static std::shared_ptr<SocketTransport> make(EventLoop& loop, Fd sock, std::shared_ptr<StreamProtocol> protocol,
                                                 Future<void>* waiter = nullptr, Server* server = nullptr);
    /// Use make(): the transport must be owned by a std::shared_ptr from birth.
    SocketTransport(Passkey, EventLoop& loop, Fd sock, std::shared_ptr<StreamProtocol> protocol, Server* server);
    ~SocketTransport() override;

    // BaseTransport
    void close() override;
    bool is_closing() const noexcept override { return closing_; }
    ExtraInfo get_extra_info(std::string_view name) const override;
    std::error_code set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
    std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }
    // ReadTransport
    bool is_reading() const noexcept override { return !closing_ && !read_paused_ && !eof_seen_; }
    void pause_reading() override;
    void resume_reading() override;
    // WriteTransport
    std::error_code write(std::string_view data) override;
    std::error_code writelines(std::span<const std::string_view> pieces) override;
    using WriteTransport::writelines;
    bool can_write_eof() const noexcept override { return true; }
    void write_eof() override;
    void abort() override;
    std::size_t get_write_buffer_size() const noexcept override { return buffered(); }
    WriteBufferLimits get_write_buffer_limits() const noexcept override {
        return write_side_ ? write_side_->flow.limits : WriteBufferLimits{};
    }
    std::error_code set_write_buffer_limits(std::optional<std::size_t> high,
                                            std::optional<std::size_t> low = std::nullopt) override;

    /// The socket's fd (-1 once closed).
    int fd() const noexcept { return fd_.get(); }
    EventLoop& get_loop() const noexcept { return *loop_; }
    /// "<SocketTransport fd=7 closing>", for exception contexts and logs.
    std::string describe() const;

    // ---- loop.sendfile() (net/sendfile.cpp); nothing else calls these -------
    /// Itself: loop.sendfile() hands its socket to sendfile(2) (CONTRACT 327).
    SocketTransport* native_sendfile_transport() noexcept override { return this; }
    /// What a running sendfile hears: no error once the write buffer is
    /// empty (at once, from begin_sendfile, if it already is); then, if the
    /// connection goes before end_sendfile, its error (errc::transport_closing
    /// for close()/abort()), before the socket is closed. After an error the
    /// transport may be destroyed at any moment: the listener must let go.
    using SendfileListener = UniqueFunction<void(std::error_code)>;
    /// Holds the transport for loop.sendfile(): write() and writelines() are
    /// refused with errc::sendfile_in_progress until end_sendfile() or a
    /// loss (CONTRACT 327, 328).
    void begin_sendfile(SendfileListener listener);
    /// Releases the hold. A non-empty `error` (sendfile(2) failed: the peer
    /// is gone) fails the transport as a failed write does (CONTRACT 333).
    void end_sendfile(std::error_code error);

private:
    // The write side's state beyond "every write went straight to the
    // kernel": the bytes still to send, the flow-control marks and pause,
    // and a running loop.sendfile's listener (it waits for those bytes).
    struct WriteSide {
        detail::WriteBuffer buffer;
        detail::FlowControl flow;
        SendfileListener sendfile_listener;  // loop.sendfile's, while active
    };
    WriteSide& write_side();
    void drop_write_side_if_idle() noexcept;
    std::size_t buffered() const noexcept { return write_side_ ? write_side_->buffer.size() : 0; }
    void start(Future<void>* waiter);
    static void on_readable(detail::FdWatcher& watcher);
    void read_ready();
    void read_into_protocol();
    void read_into_buffered_protocol();
    void on_eof();
    void write_ready();
    std::error_code send_pieces(std::span<const std::string_view> pieces);
    // After a send() of `pieces` returned `n` (0 when none was tried): the
    // error, or the unsent rest queued and the writer started.
    std::error_code keep_unsent(std::span<const std::string_view> pieces, ssize_t n, bool was_empty);
    void start_writer();
    void force_close(std::error_code error);
    void fatal_error(std::error_code error, const char* message);
#if EVLOOP_EXCEPTIONS
    void protocol_failed(const char* call, std::exception_ptr exception);
#endif
    void call_connection_lost(std::error_code error);
    void call_pause_writing();
    void call_resume_writing();
    void shutdown_write();
    void loop_closing() noexcept override;
    std::error_code refuse_write(const char* what);
    void sendfile_lost(std::error_code error);

    EventLoop* loop_;
    std::shared_ptr<StreamProtocol> protocol_;
    std::shared_ptr<SocketTransport> self_;  // the open transport keeps itself alive
    Server* server_;
    // Out of line: made when a write leaves bytes unsent, the marks are set
    // or loop.sendfile begins, and dropped once it is back to how it started.
    // An idle connection (every write went straight to the kernel) carries
    // one pointer instead of 120 bytes.
    std::unique_ptr<WriteSide> write_side_;
    Fd fd_;
    // The fd, this counter and the flags below share one 8-byte word: every
    // open connection carries them. The counter stops at the warning threshold.
    std::uint8_t lost_writes_ = 0;         // writes refused after close, for the warning
    bool buffered_ : 1;                    // the protocol is a BufferedProtocol
    bool closing_ : 1 = false;             // close(), abort() or a failure happened
    bool conn_lost_ : 1 = false;           // connection_lost is scheduled or done
    bool eof_requested_ : 1 = false;       // write_eof() was called
    bool eof_seen_ : 1 = false;            // the peer's EOF arrived
    bool read_paused_ : 1 = false;         // pause_reading()
    bool started_ : 1 = false;             // connection_made ran; reading may begin
    bool reader_on_ : 1 = false;           // a reader is registered with the loop
    bool writer_on_ : 1 = false;           // a writer is registered with the loop
    bool sendfile_active_ : 1 = false;     // between begin_sendfile and end_sendfile (or a loss)
};

}  // namespace evloop
