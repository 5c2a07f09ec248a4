// proc/pipe_transport.cpp — the pipe transports: ReadPipeTransport's read
// path and EOF sequence, WritePipeTransport's write path, flow control and
// reader-gone watch, and the SIGPIPE-free write every pipe write goes through.
//
// State, in asyncio's terms (as net/socket_transport.cpp): closing_ is
// _closing, conn_lost_ a non-zero _conn_lost (connection_lost is scheduled
// or ran: nothing more reaches the protocol). connection_lost always comes
// from a loop callback of its own, or from the write-ready callback that
// drained the buffer after close(), never from inside close() or abort().
// The fd is unwatched before it is closed (epoll watches the open file
// description, which a child may share).
// Layer: proc. Read next: proc/connect_pipe.cpp, then proc/subprocess.hpp.
#include "proc/pipe_transport.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>

#include "core/log.hpp"
#include "net/read_buffer.hpp"

namespace evloop {

static_assert(ReadPipeTransport::kMaxReadSize <= detail::kSharedReadBufferSize);

namespace {

bool would_block(int error) noexcept { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

// asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES (CONTRACT 361).
constexpr std::uint32_t kLostWritesBeforeWarning = 5;

std::error_code os_error(int value) noexcept { return {value, std::system_category()}; }

// Calls a protocol callback; in exception builds an exception escaping it
// goes to `failed` (called inside the catch block, where
// std::current_exception() still holds it). False if it did.
template <class Call, class Failed>
bool guarded(Call&& call, Failed&& failed) {
#if EVLOOP_EXCEPTIONS
    try {
        call();
    } catch (...) {
        failed();
        return false;
    }
#else
    call();
    (void)failed;
#endif
    return true;
}

// Sends the exception being handled (exception builds) to the loop's handler.
void report_exception(EventLoop& loop, const char* message, std::string transport,
                      std::error_code error = {}) {
    ExceptionContext context{.message = message, .error = error};
#if EVLOOP_EXCEPTIONS
    context.exception = std::current_exception();
#endif
    context.transport = std::move(transport);
    loop.call_exception_handler(context);
}

// One gathered write to a pipe, FIFO or character device without SIGPIPE.
//
// Writing to a pipe whose reader is gone makes the kernel send SIGPIPE to
// the writing thread before write() returns EPIPE, and SIGPIPE's default
// action kills the process. Sockets have MSG_NOSIGNAL; pipes have no such
// flag, and a library must not change the process-wide disposition (asyncio
// relies on Python ignoring SIGPIPE at startup). So SIGPIPE is blocked for
// this thread only around the write: the signal then stays pending instead
// of being delivered, and on EPIPE sigtimedwait with a zero timeout takes it
// away before the old mask returns. If the caller already blocks SIGPIPE and
// one is pending, it is left alone: standard signals do not queue, so ours
// merged with it and taking it would steal the caller's.
// The cost is two pthread_sigmask calls per write; the pipes that carry
// much data (a child's stdin) go through the buffer in big gathered writes.
ssize_t write_without_sigpipe(int fd, const iovec* iov, int count) noexcept {
    sigset_t sigpipe_only;
    sigset_t old_mask;
    sigemptyset(&sigpipe_only);
    sigaddset(&sigpipe_only, SIGPIPE);
    (void)pthread_sigmask(SIG_BLOCK, &sigpipe_only, &old_mask);
    bool was_blocked = sigismember(&old_mask, SIGPIPE) == 1;
    bool was_pending = false;
    if (was_blocked) {
        sigset_t pending;
        was_pending = ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    }
    ssize_t n = retry_eintr([&] { return ::writev(fd, iov, count); });
    int saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending) {
        const timespec zero{};
        (void)retry_eintr([&] { return ::sigtimedwait(&sigpipe_only, nullptr, &zero); });
    }
    if (!was_blocked) (void)pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    errno = saved;
    return n;
}

// A socket used as a pipe has MSG_NOSIGNAL; everything else takes the slow path.
ssize_t write_pipe(int fd, bool is_socket, const iovec* iov, int count) noexcept {
    if (!is_socket) return write_without_sigpipe(fd, iov, count);
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(iov);
    message.msg_iovlen = static_cast<std::size_t>(count);
    return retry_eintr([&] { return ::sendmsg(fd, &message, MSG_NOSIGNAL); });
}

std::string describe_pipe(const char* kind, int fd, bool closing, std::size_t buffered) {
    if (fd < 0) return std::string("<") + kind + " closed>";
    char text[96];
    char size[40] = "";
    if (buffered > 0) std::snprintf(size, sizeof size, " bufsize=%zu", buffered);
    std::snprintf(text, sizeof text, "<%s fd=%d%s%s>", kind, fd, size, closing ? " closing" : "");
    return text;
}

bool stream_kind(const std::shared_ptr<BaseProtocol>& protocol) noexcept {
    return protocol &&
           (protocol->kind() == BaseProtocol::Kind::stream || protocol->kind() == BaseProtocol::Kind::buffered);
}

}  // namespace

// ---- ReadPipeTransport ------------------------------------------------------

std::shared_ptr<ReadPipeTransport> ReadPipeTransport::make(EventLoop& loop, Fd pipe,
                                                           std::shared_ptr<StreamProtocol> protocol,
                                                           Future<void>* waiter) {
    (void)set_nonblocking(pipe.get());  // CONTRACT 353
    std::shared_ptr<ReadPipeTransport> transport(new ReadPipeTransport(loop, std::move(pipe), std::move(protocol)));
    transport->self_ = transport;
    loop.attach_resource(*transport);
    transport->start(waiter);
    return transport;
}

ReadPipeTransport::ReadPipeTransport(EventLoop& loop, Fd pipe, std::shared_ptr<StreamProtocol> protocol)
    : loop_(&loop), fd_(std::move(pipe)), protocol_(std::move(protocol)),
      buffered_(protocol_ && protocol_->kind() == BaseProtocol::Kind::buffered) {
    loop_->set_transport_fd(fd_.get(), true);
}

ReadPipeTransport::~ReadPipeTransport() = default;

void ReadPipeTransport::start(Future<void>* waiter) {
    std::optional<Future<void>> done;
    if (waiter) done.emplace(*waiter);
    // asyncio's three callbacks (connection_made, add_reader, the waiter) as
    // one, in the same order (CONTRACT 353).
    loop_->call_soon([this, done = std::move(done)]() mutable {
        if (!protocol_) return;  // defensive: connection_lost already ran
        started_ = true;
        // Only reported: the transport stays open and reads (as CONTRACT 277).
        guarded([&] { protocol_->connection_made(*this); },
                [&] { report_exception(*loop_, "Exception in callback protocol.connection_made()", describe()); });
        if (!closing_ && !paused_) start_reader();
        if (done && !done->done()) (void)done->set_result();
    });
}

void ReadPipeTransport::start_reader() {
    if (reader_on_) return;
    if (std::error_code ec = loop_->add_reader(fd_.get(), [this] { read_ready(); }))
        fatal_error(ec, "Fatal error: could not watch the pipe");
    else
        reader_on_ = true;
}

void ReadPipeTransport::read_ready() {
    if (conn_lost_) return;
    if (buffered_)
        read_into_buffered_protocol();
    else
        read_into_protocol();
}

void ReadPipeTransport::read_into_protocol() {
    char* buffer = detail::shared_read_buffer();
    ssize_t n = ::read(fd_.get(), buffer, kMaxReadSize);
    if (n <= 0) return on_read_result(n);
    guarded([&] { static_cast<Protocol&>(*protocol_).data_received({buffer, static_cast<std::size_t>(n)}); },
            [&] { protocol_failed("data_received"); });
}

void ReadPipeTransport::read_into_buffered_protocol() {
    auto& protocol = static_cast<BufferedProtocol&>(*protocol_);
    std::span<char> buffer;
    if (!guarded([&] { buffer = protocol.get_buffer(0); }, [&] { protocol_failed("get_buffer"); })) return;
    if (buffer.empty()) {  // as CONTRACT 302
        fatal_error(make_error_code(errc::empty_buffer), "Fatal error: protocol.get_buffer() call failed.");
        return;
    }
    ssize_t n = ::read(fd_.get(), buffer.data(), buffer.size());
    if (n <= 0) return on_read_result(n);
    guarded([&] { protocol.buffer_updated(static_cast<std::size_t>(n)); },
            [&] { protocol_failed("buffer_updated"); });
}

void ReadPipeTransport::on_read_result(ssize_t n) {
    if (n == 0) return on_eof();
    if (would_block(errno)) return;  // retried on the next readiness
    fatal_error(last_error(), "Fatal read error on pipe transport");  // CONTRACT 355
}

void ReadPipeTransport::on_eof() {
    if (loop_->get_debug()) log(LogLevel::info, "%s was closed by peer", describe().c_str());
    // As asyncio: closing, no reader, then eof_received and connection_lost
    // each from a callback of its own; eof_received's answer changes nothing,
    // a read pipe has no half-open state (CONTRACT 354).
    closing_ = conn_lost_ = true;
    if (reader_on_) {
        (void)loop_->remove_reader(fd_.get());
        reader_on_ = false;
    }
    loop_->call_soon([this] { call_eof_received(); });
    loop_->call_soon([this] { call_connection_lost({}); });
}

void ReadPipeTransport::call_eof_received() {
    if (!protocol_) return;
    // In asyncio a failing eof_received is an "Exception in callback": reported,
    // and connection_lost still follows.
    guarded([&] { (void)protocol_->eof_received(); },
            [&] { report_exception(*loop_, "Exception in callback protocol.eof_received()", describe()); });
}

void ReadPipeTransport::pause_reading() {
    if (closing_ || paused_) return;  // idempotent, nothing once closed (CONTRACT 356)
    paused_ = true;
    if (reader_on_) {
        (void)loop_->remove_reader(fd_.get());
        reader_on_ = false;
    }
}

void ReadPipeTransport::resume_reading() {
    if (closing_ || !paused_) return;  // CONTRACT 356
    paused_ = false;
    // Before connection_made has run, start() registers the reader.
    if (started_) start_reader();
}

std::error_code ReadPipeTransport::write(std::string_view) {
    return detail::refuse(errc::not_supported, "ReadPipeTransport::write");
}

std::error_code ReadPipeTransport::writelines(std::span<const std::string_view>) {
    return detail::refuse(errc::not_supported, "ReadPipeTransport::writelines");
}

std::error_code ReadPipeTransport::set_write_buffer_limits(std::optional<std::size_t>, std::optional<std::size_t>) {
    return detail::refuse(errc::not_supported, "ReadPipeTransport::set_write_buffer_limits");
}

void ReadPipeTransport::close() {
    if (!closing_) close_with({});
}

void ReadPipeTransport::abort() { close_with({}); }

void ReadPipeTransport::close_with(std::error_code error) {
    if (conn_lost_) return;
    closing_ = conn_lost_ = true;
    if (reader_on_) {
        (void)loop_->remove_reader(fd_.get());
        reader_on_ = false;
    }
    loop_->call_soon([this, error] { call_connection_lost(error); });
}

void ReadPipeTransport::fatal_error(std::error_code error, const char* message) {
    // EIO is how a pty says its other side closed: the normal end of a
    // terminal session, only logged in debug mode. Every other error goes to
    // the exception handler, OS errors included (CONTRACT 355).
    if (error == std::error_code(EIO, std::system_category())) {
        if (loop_->get_debug()) log(LogLevel::debug, "%s: %s: %s", describe().c_str(), message, error.message().c_str());
    } else {
        ExceptionContext context{.message = message, .error = error};
        context.transport = describe();
        loop_->call_exception_handler(context);
    }
    close_with(error);
}

void ReadPipeTransport::protocol_failed(const char* call) {
    // As the socket transport (CONTRACT 299): reported, then the transport
    // is aborted and connection_lost learns why.
    char message[96];
    std::snprintf(message, sizeof message, "Fatal error: protocol.%s() call failed.", call);
    report_exception(*loop_, message, describe(), make_error_code(errc::exception_raised));
    close_with(make_error_code(errc::exception_raised));
}

void ReadPipeTransport::call_connection_lost(std::error_code error) {
    // Keeps *this alive to the end of the function; destroying it is the
    // last thing that happens here.
    std::shared_ptr<ReadPipeTransport> keep = std::move(self_);
    std::shared_ptr<StreamProtocol> protocol = std::move(protocol_);
    struct Finally {  // the pipe is closed even if connection_lost throws
        ReadPipeTransport& transport;
        ~Finally() {
            transport.loop_->set_transport_fd(transport.fd_.get(), false);
            transport.fd_.reset();
            transport.detail::LoopResource::unlink();
        }
    } finally{*this};
    if (protocol) protocol->connection_lost(error);
}

void ReadPipeTransport::loop_closing() noexcept {
    // The loop closes with the pipe open: its watches went with the
    // selector; release the fd and the protocol without calling back.
    closing_ = conn_lost_ = true;
    reader_on_ = false;
    loop_->set_transport_fd(fd_.get(), false);
    fd_.reset();
    protocol_.reset();
    std::shared_ptr<ReadPipeTransport> keep = std::move(self_);  // may destroy *this
}

ExtraInfo ReadPipeTransport::get_extra_info(std::string_view name) const {
    if (fd_ && name == "pipe") return fd_.get();  // CONTRACT 280
    return {};
}

std::error_code ReadPipeTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
    if (!stream_kind(protocol)) return detail::refuse(errc::wrong_protocol, "ReadPipeTransport::set_protocol");
    buffered_ = protocol->kind() == BaseProtocol::Kind::buffered;  // the next read follows it
    protocol_ = std::static_pointer_cast<StreamProtocol>(std::move(protocol));
    return {};
}

std::string ReadPipeTransport::describe() const { return describe_pipe("ReadPipeTransport", fd_.get(), closing_, 0); }

// ---- WritePipeTransport -----------------------------------------------------

std::shared_ptr<WritePipeTransport> WritePipeTransport::make(EventLoop& loop, Fd pipe,
                                                             std::shared_ptr<StreamProtocol> protocol,
                                                             Future<void>* waiter) {
    (void)set_nonblocking(pipe.get());  // CONTRACT 353
    std::shared_ptr<WritePipeTransport> transport(new WritePipeTransport(loop, std::move(pipe), std::move(protocol)));
    transport->self_ = transport;
    loop.attach_resource(*transport);
    transport->start(waiter);
    return transport;
}

WritePipeTransport::WritePipeTransport(EventLoop& loop, Fd pipe, std::shared_ptr<StreamProtocol> protocol)
    : loop_(&loop), fd_(std::move(pipe)), protocol_(std::move(protocol)) {
    struct stat info {};
    if (::fstat(fd_.get(), &info) == 0) {
        is_socket_ = S_ISSOCK(info.st_mode);
        // A character device (a pty) says nothing when its reader leaves;
        // a pipe's write end turns readable (EPOLLERR/POLLERR), a socket's
        // too (EOF or an error) (CONTRACT 360).
        watch_reader_ = is_socket_ || S_ISFIFO(info.st_mode);
    }
    loop_->set_transport_fd(fd_.get(), true);
}

WritePipeTransport::~WritePipeTransport() = default;

void WritePipeTransport::start(Future<void>* waiter) {
    std::optional<Future<void>> done;
    if (waiter) done.emplace(*waiter);
    loop_->call_soon([this, done = std::move(done)]() mutable {
        if (!protocol_) return;  // defensive: connection_lost already ran
        guarded([&] { protocol_->connection_made(*this); },
                [&] { report_exception(*loop_, "Exception in callback protocol.connection_made()", describe()); });
        if (watch_reader_ && !conn_lost_) {
            if (std::error_code ec = loop_->add_reader(fd_.get(), [this] { reader_gone(); }))
                fatal_error(ec, "Fatal error: could not watch the pipe");
            else
                reader_on_ = true;
        }
        if (done && !done->done()) (void)done->set_result();
    });
}

std::error_code WritePipeTransport::refuse_write(const char* what) {
    // asyncio drops the data silently; we say so (docs/asyncio-map.md, as
    // the socket transport). From the 5th refused write on, a warning (CONTRACT 361).
    if (++lost_writes_ >= kLostWritesBeforeWarning)
        log(LogLevel::warning, "%s: pipe closed by peer or os.write(pipe, data) raised exception: refused (%s)", what,
            describe().c_str());
    return make_error_code(errc::transport_closing);
}

std::error_code WritePipeTransport::write(std::string_view data) {
    if (data.empty()) return {};  // CONTRACT 357: a no-op, even once closed, as asyncio
    if (closing_) return refuse_write("write");
    return write_pieces(std::span<const std::string_view>(&data, 1));
}

std::error_code WritePipeTransport::writelines(std::span<const std::string_view> pieces) {
    std::size_t total = 0;
    for (std::string_view piece : pieces) total += piece.size();
    if (total == 0) return {};
    if (closing_) return refuse_write("writelines");
    return write_pieces(pieces);
}

std::error_code WritePipeTransport::write_pieces(std::span<const std::string_view> pieces) {
    bool was_empty = buffer_.empty();
    std::size_t sent = 0;
    if (was_empty) {
        // Nothing queued: straight to the pipe (CONTRACT 357); otherwise the
        // queue goes first, to keep the order.
        iovec iov[detail::WriteBuffer::kMaxIov];
        std::size_t count = std::min(pieces.size(), std::size(iov));
        for (std::size_t i = 0; i < count; ++i) iov[i] = {const_cast<char*>(pieces[i].data()), pieces[i].size()};
        ssize_t n = write_pipe(fd_.get(), is_socket_, iov, static_cast<int>(count));
        if (n < 0) {
            if (!would_block(errno)) {
                std::error_code ec = last_error();
                fatal_error(ec, "Fatal write error on pipe transport");  // CONTRACT 362
                return ec;
            }
            n = 0;
        }
        sent = static_cast<std::size_t>(n);
    }
    // Whatever the pipe did not take is copied, so the caller may reuse its memory.
    for (std::string_view piece : pieces) {
        if (sent >= piece.size()) {
            sent -= piece.size();
            continue;
        }
        buffer_.append(piece.substr(sent));
        sent = 0;
    }
    if (was_empty && !buffer_.empty()) {
        if (std::error_code ec = start_writer()) return ec;
    }
    if (flow_.should_pause(buffer_.size())) call_pause_writing();  // CONTRACT 251
    return {};
}

std::error_code WritePipeTransport::start_writer() {
    if (writer_on_) return {};
    // EPERM here: a character device epoll cannot watch; the buffer could
    // never drain, so the transport ends with that error.
    if (std::error_code ec = loop_->add_writer(fd_.get(), [this] { write_ready(); })) {
        fatal_error(ec, "Fatal error: could not watch the pipe");
        return ec;
    }
    writer_on_ = true;
    return {};
}

void WritePipeTransport::write_ready() {
    if (conn_lost_) return;
    iovec iov[detail::WriteBuffer::kMaxIov];
    int count = buffer_.gather(iov);
    ssize_t n = write_pipe(fd_.get(), is_socket_, iov, count);
    if (n < 0) {
        if (would_block(errno)) return;
        std::error_code ec = last_error();
        buffer_.clear();
        fatal_error(ec, "Fatal write error on pipe transport");  // CONTRACT 362
        return;
    }
    buffer_.consume(static_cast<std::size_t>(n));
    if (flow_.should_resume(buffer_.size())) call_resume_writing();  // CONTRACT 252
    if (!buffer_.empty() || conn_lost_) return;
    (void)loop_->remove_writer(fd_.get());
    writer_on_ = false;
    if (!closing_) return;
    // close() was waiting for the buffer to drain (CONTRACT 358).
    conn_lost_ = true;
    if (reader_on_) {
        (void)loop_->remove_reader(fd_.get());
        reader_on_ = false;
    }
    call_connection_lost({});  // may destroy *this: the last statement
}

void WritePipeTransport::reader_gone() {
    // Readability on a write end: the reader closed its end (or, on a
    // socket, sent something, which a write pipe does not expect either).
    if (conn_lost_) return;
    if (loop_->get_debug()) log(LogLevel::info, "%s was closed by peer", describe().c_str());
    // Data still waiting can never arrive: EPIPE says so (CONTRACT 360).
    close_with(buffer_.empty() ? std::error_code() : os_error(EPIPE));
}

std::error_code WritePipeTransport::set_write_buffer_limits(std::optional<std::size_t> high,
                                                            std::optional<std::size_t> low) {
    if (!flow_.set(high, low))  // CONTRACT 250
        return detail::refuse(errc::invalid_argument, "set_write_buffer_limits: high must be >= low");
    if (flow_.should_pause(buffer_.size())) call_pause_writing();  // never resumes (CONTRACT 254)
    return {};
}

void WritePipeTransport::call_pause_writing() {
    // An exception is reported and the transport stays open (CONTRACT 255).
    guarded([&] { protocol_->pause_writing(); },
            [&] { report_exception(*loop_, "protocol.pause_writing() failed", describe()); });
}

void WritePipeTransport::call_resume_writing() {
    guarded([&] { protocol_->resume_writing(); },
            [&] { report_exception(*loop_, "protocol.resume_writing() failed", describe()); });
}

void WritePipeTransport::close() {
    if (closing_) return;  // idempotent (CONTRACT 358)
    closing_ = true;
    // With data buffered, write_ready() finishes the job; the reader watch
    // stays, so a reader leaving meanwhile still ends it with EPIPE. Empty
    // (perhaps inside resume_writing, with the writer still on): done now.
    if (buffer_.empty()) close_with({});
}

void WritePipeTransport::abort() { close_with({}); }  // CONTRACT 359

void WritePipeTransport::close_with(std::error_code error) {
    if (conn_lost_) return;
    closing_ = conn_lost_ = true;
    buffer_.clear();
    if (writer_on_) {
        (void)loop_->remove_writer(fd_.get());
        writer_on_ = false;
    }
    if (reader_on_) {
        (void)loop_->remove_reader(fd_.get());
        reader_on_ = false;
    }
    loop_->call_soon([this, error] { call_connection_lost(error); });
}

void WritePipeTransport::fatal_error(std::error_code error, const char* message) {
    // OS errors (EPIPE above all) only reach connection_lost, logged in debug
    // mode; anything else goes to the exception handler too (CONTRACT 362).
    if (error.category() == std::system_category()) {
        if (loop_->get_debug()) log(LogLevel::debug, "%s: %s: %s", describe().c_str(), message, error.message().c_str());
    } else {
        ExceptionContext context{.message = message, .error = error};
        context.transport = describe();
        loop_->call_exception_handler(context);
    }
    close_with(error);
}

void WritePipeTransport::call_connection_lost(std::error_code error) {
    std::shared_ptr<WritePipeTransport> keep = std::move(self_);
    std::shared_ptr<StreamProtocol> protocol = std::move(protocol_);
    struct Finally {  // the pipe is closed even if connection_lost throws
        WritePipeTransport& transport;
        ~Finally() {
            transport.loop_->set_transport_fd(transport.fd_.get(), false);
            transport.fd_.reset();
            transport.detail::LoopResource::unlink();
        }
    } finally{*this};
    if (protocol) protocol->connection_lost(error);
}

void WritePipeTransport::loop_closing() noexcept {
    closing_ = conn_lost_ = true;
    reader_on_ = writer_on_ = false;
    buffer_.clear();
    loop_->set_transport_fd(fd_.get(), false);
    fd_.reset();
    protocol_.reset();
    std::shared_ptr<WritePipeTransport> keep = std::move(self_);  // may destroy *this
}

ExtraInfo WritePipeTransport::get_extra_info(std::string_view name) const {
    if (fd_ && name == "pipe") return fd_.get();  // CONTRACT 280
    return {};
}

std::error_code WritePipeTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
    if (!stream_kind(protocol)) return detail::refuse(errc::wrong_protocol, "WritePipeTransport::set_protocol");
    protocol_ = std::static_pointer_cast<StreamProtocol>(std::move(protocol));
    return {};
}

std::string WritePipeTransport::describe() const {
    return describe_pipe("WritePipeTransport", fd_.get(), closing_, buffer_.size());
}

}  // namespace evloop
