// net/socket_transport.cpp — the selector socket transport: read path, write
// path, flow control, close/abort/EOF, and connection_lost exactly once.
//
// State, in asyncio's terms: closing_ is asyncio's _closing (close(),
// abort() or a failure happened: no more reading, writes refused);
// conn_lost_ is a non-zero _conn_lost (connection_lost is scheduled, or ran:
// nothing more reaches the protocol). connection_lost is always called from
// a callback of its own (CONTRACT 293), or from the write-ready callback that
// drained the buffer after close() (asyncio does the same), never from
// inside close() or abort(): a protocol may close its transport anywhere.
// Layer: net. Read next: net/server.cpp.
#include "net/socket_transport.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdio>

#include "core/log.hpp"
#include "net/read_buffer.hpp"
#include "net/server.hpp"

namespace evloop {

static_assert(SocketTransport::kMaxReadSize <= detail::kSharedReadBufferSize);
// Every open connection carries one: with make_shared's 16 bytes of counts and
// malloc's 8-byte header it fills a 144-byte chunk; one byte more costs 16
// per connection (64-bit).
static_assert(sizeof(void*) != 8 || sizeof(SocketTransport) <= 120, "see the idle-memory note in the header");

namespace {

bool would_block(int error) noexcept { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

// How many times a write after close is refused silently before each one
// is logged (asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES, CONTRACT 263).
constexpr std::uint8_t kLostWritesBeforeWarning = 5;

}  // namespace

std::shared_ptr<SocketTransport> SocketTransport::make(EventLoop& loop, Fd sock,
                                                       std::shared_ptr<StreamProtocol> protocol,
                                                       Future<void>* waiter, Server* server) {
    // One allocation for the transport and its reference counts, not two:
    // every open connection carries both (issue 7, idle memory).
    auto transport = std::make_shared<SocketTransport>(Passkey(), loop, std::move(sock), std::move(protocol), server);
    transport->self_ = transport;
    loop.attach_resource(*transport);
    if (server) server->attach_client(*transport);
    transport->start(waiter);
    return transport;
}

SocketTransport::SocketTransport(Passkey, EventLoop& loop, Fd sock, std::shared_ptr<StreamProtocol> protocol,
                                 Server* server)
    : FdWatcher(&SocketTransport::on_readable), loop_(&loop), protocol_(std::move(protocol)), server_(server), fd_(std::move(sock)),
      buffered_(protocol_ && protocol_->kind() == BaseProtocol::Kind::buffered) {
    // Nagle would hold back a small reply until the previous one is acked:
    // asyncio and uvloop turn it off (CONTRACT 142). Unix sockets refuse
    // the option; that is fine.
    int one = 1;
    (void)::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    loop_->set_transport_fd(fd_.get(), true);  // sock_* refuse it (CONTRACT 174)
}

SocketTransport::~SocketTransport() = default;

void SocketTransport::start(Future<void>* waiter) {
    std::optional<Future<void>> done;
    if (waiter) done.emplace(*waiter);
    // One callback for asyncio's three (connection_made, add_reader, the
    // waiter), in the same order (CONTRACT 139, 277).
    loop_->call_soon([this, done = std::move(done)]() mutable {
        if (!protocol_) return;  // defensive: connection_lost already ran
        started_ = true;
#if EVLOOP_EXCEPTIONS
        try {
            protocol_->connection_made(*this);
        } catch (...) {
            // Only reported: the transport stays open and reads (CONTRACT 277).
            ExceptionContext context{.message = "Exception in callback protocol.connection_made()"};
            context.exception = std::current_exception();
            context.transport = describe();
            loop_->call_exception_handler(context);
        }
#else
        protocol_->connection_made(*this);
#endif
        if (!closing_ && !read_paused_ && !reader_on_) {
            if (std::error_code ec = loop_->add_reader(fd_.get(), static_cast<detail::FdWatcher&>(*this)))
                fatal_error(ec, "Fatal error: could not watch the socket");
            else
                reader_on_ = true;
        }
        if (done && !done->done()) (void)done->set_result();
    });
}

// ---- reading ----------------------------------------------------------------

void SocketTransport::on_readable(detail::FdWatcher& watcher) {
    static_cast<SocketTransport&>(watcher).read_ready();
}

void SocketTransport::read_ready() {
    if (conn_lost_) return;  // nothing reaches the protocol after that (CONTRACT 292)
    if (buffered_)
        read_into_buffered_protocol();
    else
        read_into_protocol();
}

void SocketTransport::read_into_protocol() {
    char* buffer = detail::shared_read_buffer();
    ssize_t n = ::recv(fd_.get(), buffer, kMaxReadSize, 0);
    if (n > 0) {
#if EVLOOP_EXCEPTIONS
        try {
            static_cast<Protocol&>(*protocol_).data_received({buffer, static_cast<std::size_t>(n)});
        } catch (...) {
            protocol_failed("data_received", std::current_exception());
        }
#else
        static_cast<Protocol&>(*protocol_).data_received({buffer, static_cast<std::size_t>(n)});
#endif
    } else if (n == 0) {
        on_eof();
    } else if (!would_block(errno)) {
        fatal_error(last_error(), "Fatal read error on socket transport");  // e.g. ECONNRESET (CONTRACT 274)
    }
}

void SocketTransport::read_into_buffered_protocol() {
    auto& protocol = static_cast<BufferedProtocol&>(*protocol_);
    std::span<char> buffer;
#if EVLOOP_EXCEPTIONS
    try {
        buffer = protocol.get_buffer(0);
    } catch (...) {
        protocol_failed("get_buffer", std::current_exception());
        return;
    }
#else
    buffer = protocol.get_buffer(0);
#endif
    if (buffer.empty()) {  // CONTRACT 302
        fatal_error(make_error_code(errc::empty_buffer), "Fatal error: protocol.get_buffer() call failed.");
        return;
    }
    ssize_t n = ::recv(fd_.get(), buffer.data(), buffer.size(), 0);
    if (n > 0) {
#if EVLOOP_EXCEPTIONS
        try {
            protocol.buffer_updated(static_cast<std::size_t>(n));
        } catch (...) {
            protocol_failed("buffer_updated", std::current_exception());
        }
#else
        protocol.buffer_updated(static_cast<std::size_t>(n));
#endif
    } else if (n == 0) {
        on_eof();
    } else if (!would_block(errno)) {
        fatal_error(last_error(), "Fatal read error on socket transport");
    }
}

void SocketTransport::on_eof() {
    eof_seen_ = true;
    if (reader_on_) {
        (void)loop_->remove_reader(fd_.get());
        reader_on_ = false;
    }
    bool keep_open = false;
#if EVLOOP_EXCEPTIONS
    try {
        keep_open = protocol_->eof_received();
    } catch (...) {
        protocol_failed("eof_received", std::current_exception());
        return;
    }
#else
    keep_open = protocol_->eof_received();
#endif
    // True: half-open, the protocol may still write and closes later
    // (CONTRACT 295, 296).
    if (!keep_open) close();
}

void SocketTransport::pause_reading() {
    if (closing_ || read_paused_) return;  // idempotent (CONTRACT 269)
    read_paused_ = true;
    if (reader_on_) {
        (void)loop_->remove_reader(fd_.get());
        reader_on_ = false;
    }
}

void SocketTransport::resume_reading() {
    if (closing_ || !read_paused_) return;
    read_paused_ = false;
    // Before connection_made has run, start() registers the reader (CONTRACT 270).
    if (!started_ || eof_seen_ || reader_on_) return;
    if (std::error_code ec = loop_->add_reader(fd_.get(), static_cast<detail::FdWatcher&>(*this)))
        fatal_error(ec, "Fatal error: could not watch the socket");
    else
        reader_on_ = true;
}

// ---- writing ----------------------------------------------------------------

std::error_code SocketTransport::refuse_write(const char* what) {
    if (eof_requested_ && !closing_) return detail::refuse(errc::write_after_eof, what);  // CONTRACT 267
    // After close, abort or a failure (CONTRACT 263). Unlike asyncio (§0.D,
    // CONTRACT 262), a write after close() is refused even while the buffer
    // still drains: close() means "no more data", and the caller learns that
    // its bytes were not taken. What was accepted before is still sent.
    if (lost_writes_ < kLostWritesBeforeWarning) ++lost_writes_;
    if (lost_writes_ >= kLostWritesBeforeWarning)
        log(LogLevel::warning, "%s: socket.send() refused: the transport is closing (%s)", what, describe().c_str());
    return make_error_code(errc::transport_closing);
}

std::error_code SocketTransport::write(std::string_view data) {
    // The steady path first, with a send of its own: nothing queued, no marks,
    // no sendfile, open, and the kernel takes it all. Through send_pieces it
    // cost 45 more instructions per message (callgrind; issue 7's profile).
    if (!write_side_ && !sendfile_active_ && !closing_ && !eof_requested_ && !data.empty()) [[likely]] {
        ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
        if (static_cast<std::size_t>(n) == data.size()) [[likely]] return {};
        return keep_unsent(std::span<const std::string_view>(&data, 1), n, true);
    }
    if (sendfile_active_) return detail::refuse(errc::sendfile_in_progress, "write");  // CONTRACT 328
    if (closing_ || eof_requested_) return refuse_write("write");
    if (data.empty()) return {};  // CONTRACT 257
    return send_pieces(std::span<const std::string_view>(&data, 1));
}

std::error_code SocketTransport::writelines(std::span<const std::string_view> pieces) {
    if (sendfile_active_) return detail::refuse(errc::sendfile_in_progress, "writelines");  // CONTRACT 328
    if (closing_ || eof_requested_) return refuse_write("writelines");
    return send_pieces(pieces);
}

std::error_code SocketTransport::send_pieces(std::span<const std::string_view> pieces) {
    if (buffered() == 0) {
        // Nothing queued: straight to the kernel (CONTRACT 258). A queue would
        // have to be sent first to keep the order (CONTRACT 259).
        ssize_t n;
        if (pieces.size() == 1) {
            n = ::send(fd_.get(), pieces[0].data(), pieces[0].size(), MSG_NOSIGNAL);
        } else {
            iovec iov[detail::WriteBuffer::kMaxIov];
            std::size_t count = 0;
            for (; count < pieces.size() && count < std::size(iov); ++count)
                iov[count] = {const_cast<char*>(pieces[count].data()), pieces[count].size()};
            msghdr message{};
            message.msg_iov = iov;
            message.msg_iovlen = count;
            n = ::sendmsg(fd_.get(), &message, MSG_NOSIGNAL);
        }
        return keep_unsent(pieces, n, true);
    }
    return keep_unsent(pieces, 0, false);
}

std::error_code SocketTransport::keep_unsent(std::span<const std::string_view> pieces, ssize_t n, bool was_empty) {
    if (n < 0) {
        if (!would_block(errno)) {
            std::error_code ec = last_error();
            fatal_error(ec, "Fatal write error on socket transport");  // CONTRACT 275
            return ec;
        }
        n = 0;
    }
    // Whatever the kernel did not take is copied, so the caller may reuse its memory.
    std::size_t sent = static_cast<std::size_t>(n);
    for (std::string_view piece : pieces) {
        if (sent >= piece.size()) {
            sent -= piece.size();
            continue;
        }
        write_side().buffer.append(piece.substr(sent));
        sent = 0;
    }
    if (!write_side_) return {};  // all sent, default marks: the steady path
    if (was_empty && !write_side_->buffer.empty()) start_writer();
    if (write_side_->flow.should_pause(write_side_->buffer.size())) call_pause_writing();  // CONTRACT 251
    return {};
}

void SocketTransport::start_writer() {
    if (writer_on_) return;
    if (std::error_code ec = loop_->add_writer(fd_.get(), [this] { write_ready(); })) {
        fatal_error(ec, "Fatal error: could not watch the socket");
        return;
    }
    writer_on_ = true;
}

void SocketTransport::write_ready() {
    if (conn_lost_ || !write_side_) return;  // (the writer is on only while bytes wait)
    detail::WriteBuffer& buffer = write_side_->buffer;
    iovec iov[detail::WriteBuffer::kMaxIov];
    msghdr message{};
    message.msg_iov = iov;
    message.msg_iovlen = static_cast<std::size_t>(buffer.gather(iov));
    ssize_t n = ::sendmsg(fd_.get(), &message, MSG_NOSIGNAL);
    if (n < 0) {
        if (would_block(errno)) return;  // CONTRACT 273
        std::error_code ec = last_error();
        buffer.clear();
        fatal_error(ec, "Fatal write error on socket transport");  // CONTRACT 275
        return;
    }
    buffer.consume(static_cast<std::size_t>(n));
    // resume_writing may write, close or set the marks (which may drop
    // write_side_): nothing below uses `buffer`.
    if (write_side_->flow.should_resume(buffer.size())) call_resume_writing();  // CONTRACT 252
    if (buffered() != 0 || conn_lost_) return;
    (void)loop_->remove_writer(fd_.get());
    writer_on_ = false;
    drop_write_side_if_idle();
    if (write_side_ && write_side_->sendfile_listener)
        write_side_->sendfile_listener({});  // loop.sendfile waits for this (CONTRACT 327)
    if (closing_) {
        // close() was waiting for the buffer to drain (CONTRACT 261).
        conn_lost_ = true;
        call_connection_lost({});  // may destroy *this: the last statement
    } else if (eof_requested_) {
        shutdown_write();
    }
}

SocketTransport::WriteSide& SocketTransport::write_side() {
    if (!write_side_) write_side_ = std::make_unique<WriteSide>();
    return *write_side_;
}

void SocketTransport::drop_write_side_if_idle() noexcept {
    // Nothing to send, nothing set, nobody listening: a new one would be the same.
    if (write_side_ && write_side_->buffer.empty() && write_side_->flow.at_rest() && !write_side_->sendfile_listener)
        write_side_.reset();
}

void SocketTransport::write_eof() {
    if (closing_ || eof_requested_) return;  // CONTRACT 267
    eof_requested_ = true;
    if (buffered() == 0) shutdown_write();
}

void SocketTransport::shutdown_write() {
    // ENOTCONN: the peer already reset the connection; the read side reports it.
    (void)::shutdown(fd_.get(), SHUT_WR);
}

std::error_code SocketTransport::set_write_buffer_limits(std::optional<std::size_t> high,
                                                         std::optional<std::size_t> low) {
    bool valid = write_side().flow.set(high, low);
    drop_write_side_if_idle();  // e.g. the default marks set again, nothing buffered
    if (!valid)  // CONTRACT 250
        return detail::refuse(errc::invalid_argument, "set_write_buffer_limits: high must be >= low");
    // May pause at once, never resumes (CONTRACT 254).
    if (write_side_ && write_side_->flow.should_pause(write_side_->buffer.size())) call_pause_writing();
    return {};
}

void SocketTransport::call_pause_writing() {
#if EVLOOP_EXCEPTIONS
    try {
        protocol_->pause_writing();
    } catch (...) {
        // Reported, the transport stays open (CONTRACT 255).
        ExceptionContext context{.message = "protocol.pause_writing() failed"};
        context.exception = std::current_exception();
        context.transport = describe();
        loop_->call_exception_handler(context);
    }
#else
    protocol_->pause_writing();
#endif
}

void SocketTransport::call_resume_writing() {
#if EVLOOP_EXCEPTIONS
    try {
        protocol_->resume_writing();
    } catch (...) {
        ExceptionContext context{.message = "protocol.resume_writing() failed"};
        context.exception = std::current_exception();
        context.transport = describe();
        loop_->call_exception_handler(context);
    }
#else
    protocol_->resume_writing();
#endif
}

// ---- closing ----------------------------------------------------------------

void SocketTransport::close() {
    if (closing_) return;  // CONTRACT 264
    closing_ = true;
    sendfile_lost(make_error_code(errc::transport_closing));
    if (reader_on_) {  // no more data_received (CONTRACT 261)
        (void)loop_->remove_reader(fd_.get());
        reader_on_ = false;
    }
    if (buffered() != 0) return;  // write_ready() finishes the job
    conn_lost_ = true;
    if (writer_on_) {
        (void)loop_->remove_writer(fd_.get());
        writer_on_ = false;
    }
    loop_->call_soon([this] { call_connection_lost({}); });
}

void SocketTransport::abort() { force_close({}); }  // CONTRACT 265, 266

void SocketTransport::force_close(std::error_code error) {
    if (conn_lost_) return;
    sendfile_lost(error ? error : make_error_code(errc::transport_closing));
    if (write_side_) write_side_->buffer.clear();
    if (writer_on_) {
        (void)loop_->remove_writer(fd_.get());
        writer_on_ = false;
    }
    closing_ = true;
    if (reader_on_) {
        (void)loop_->remove_reader(fd_.get());
        reader_on_ = false;
    }
    conn_lost_ = true;
    loop_->call_soon([this, error] { call_connection_lost(error); });
}

void SocketTransport::fatal_error(std::error_code error, const char* message) {
    // OS errors (a reset, a broken pipe) are part of networking: only logged
    // in debug mode, never sent to the exception handler (CONTRACT 247, 274).
    if (error.category() == std::system_category()) {
        if (loop_->get_debug()) log(LogLevel::debug, "%s: %s: %s", describe().c_str(), message, error.message().c_str());
    } else {
        ExceptionContext context{.message = message, .error = error};
        context.transport = describe();
        loop_->call_exception_handler(context);
    }
    force_close(error);
}

#if EVLOOP_EXCEPTIONS
void SocketTransport::protocol_failed(const char* call, std::exception_ptr exception) {
    // CONTRACT 299: reported, then the transport is force-closed and
    // connection_lost learns why.
    char message[96];
    std::snprintf(message, sizeof message, "Fatal error: protocol.%s() call failed.", call);
    ExceptionContext context{.message = message, .error = make_error_code(errc::exception_raised)};
    context.exception = std::move(exception);
    context.transport = describe();
    loop_->call_exception_handler(context);
    force_close(make_error_code(errc::exception_raised));
}
#endif

void SocketTransport::call_connection_lost(std::error_code error) {
    // Keeps *this alive to the end of the function; destroying it is the
    // last thing that happens here (CONTRACT 294).
    std::shared_ptr<SocketTransport> keep = std::move(self_);
    std::shared_ptr<StreamProtocol> protocol = std::move(protocol_);
    struct Finally {  // the socket is closed even if connection_lost throws (CONTRACT 300)
        SocketTransport& transport;
        ~Finally() {
            transport.loop_->set_transport_fd(transport.fd_.get(), false);
            transport.fd_.reset();
            if (transport.server_) std::exchange(transport.server_, nullptr)->detach_client(transport);
            transport.detail::LoopResource::unlink();
        }
    } finally{*this};
    if (protocol) protocol->connection_lost(error);
}

void SocketTransport::loop_closing() noexcept {
    // The loop is closing with this connection open (nobody closed it): its
    // watches are gone with the selector; release the fd and the protocol
    // without calling back (asyncio only warns "unclosed transport").
    closing_ = conn_lost_ = true;
    reader_on_ = writer_on_ = false;
    if (write_side_) write_side_->buffer.clear();
    loop_->set_transport_fd(fd_.get(), false);
    fd_.reset();
    protocol_.reset();
    if (server_) std::exchange(server_, nullptr)->detach_client(*this);
    std::shared_ptr<SocketTransport> keep = std::move(self_);  // may destroy *this
}

// ---- loop.sendfile() ------------------------------------------------------------
// A sendfile writes to the socket behind the transport's back, so the
// transport must keep out of its way (refuse writes) and tell it when the
// buffer is empty, and when the connection goes: the sendfile may be
// watching the fd, which must not outlive the socket (net/sendfile.cpp).

void SocketTransport::begin_sendfile(SendfileListener listener) {
    sendfile_active_ = true;
    WriteSide& side = write_side();
    side.sendfile_listener = std::move(listener);
    if (side.buffer.empty()) side.sendfile_listener({});
}

void SocketTransport::end_sendfile(std::error_code error) {
    sendfile_active_ = false;
    if (write_side_) write_side_->sendfile_listener.reset();
    drop_write_side_if_idle();
    if (error) fatal_error(error, "Fatal error on sendfile");  // CONTRACT 333
}

void SocketTransport::sendfile_lost(std::error_code error) {
    sendfile_active_ = false;
    if (!write_side_ || !write_side_->sendfile_listener) return;
    SendfileListener listener = std::move(write_side_->sendfile_listener);
    drop_write_side_if_idle();
    listener(error);
}

// ---- introspection ------------------------------------------------------------

ExtraInfo SocketTransport::get_extra_info(std::string_view name) const {
    // Asked of the kernel while the socket is open; unknown names and a
    // closed socket answer std::monostate (CONTRACT 278).
    if (!fd_) return {};
    if (name == "socket") return fd_.get();
    if (name == "peername") {
        if (auto address = peer_address(fd_.get())) return *address;
        return {};
    }
    if (name == "sockname") {
        if (auto address = local_address(fd_.get())) return *address;
        return {};
    }
    return {};
}

std::error_code SocketTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
    if (!protocol || (protocol->kind() != BaseProtocol::Kind::stream && protocol->kind() != BaseProtocol::Kind::buffered))
        return detail::refuse(errc::wrong_protocol, "SocketTransport::set_protocol");
    // The read path follows the new kind from the next read (CONTRACT 281).
    buffered_ = protocol->kind() == BaseProtocol::Kind::buffered;
    protocol_ = std::static_pointer_cast<StreamProtocol>(std::move(protocol));
    return {};
}

std::string SocketTransport::describe() const {
    char text[64];
    std::snprintf(text, sizeof text, "<SocketTransport fd=%d%s>", fd_.get(), closing_ ? " closing" : "");
    return text;
}

}  // namespace evloop
