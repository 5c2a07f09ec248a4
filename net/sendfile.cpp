// net/sendfile.cpp — loop.sock_sendfile() and loop.sendfile(): a file to a
// socket with sendfile(2) (zero copy), or read+send when sendfile(2) cannot.
//
// Each call checks its arguments at once (refusals as core/errors.hpp says),
// then runs as a task (a coroutine, so the future it returns is a Task's):
//  - native: sendfile(2) with an explicit offset, so the file position is
//    untouched meanwhile and set once at the end to offset + bytes sent, also
//    after an error or a cancel (CONTRACT 330, 339). On EAGAIN, and after
//    every kStepBytes so other callbacks get their turn, it waits on a
//    one-shot writer (asyncio sends once per writability). A failure before
//    the first byte means "sendfile(2) cannot do this file" and falls back
//    (CONTRACT 331), except for connection errors, which no fallback can
//    mend: they are returned as they are (asyncio turns them into
//    SendfileNotAvailableError too; then its fallback fails the same way);
//  - sock_sendfile's fallback: 256 KiB blocks read on the default executor
//    (file I/O may block: DESIGN's rule, and asyncio's choice), sent with
//    sock_sendall; the next block is read while one is sent (CONTRACT 338);
//  - sendfile(transport) native (only SocketTransport offers a socket, see
//    native_sendfile_transport()): pause reading, hold the transport (its
//    write() is refused) until its buffer has drained, sendfile(2) on its
//    socket, release it (CONTRACT 327–329);
//  - the transport fallback: 16 KiB blocks through transport.write(), with a
//    stand-in protocol installed meanwhile so pause_writing/resume_writing
//    reach us and not the user's producer, as asyncio does (CONTRACT 332).
// Differences from asyncio: a non-regular file (pipe, socket) is "not
// supported natively" up front (asyncio reads st_size, 0 for a pipe, and
// returns 0); a file descriptor open for writing only is refused (the C++
// analogue of "file should be opened in binary mode").
// Layer: net. Read next: net/sock.cpp (sock_sendall), net/socket_transport.cpp.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/sendfile.h>
#endif

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "core/event_loop.hpp"
#include "core/task.hpp"
#include "net/protocol.hpp"
#include "net/socket_transport.hpp"
#include "net/transport.hpp"
#include "platform/fd.hpp"

namespace evloop {

namespace {

constexpr std::size_t kSockFallbackBlock = 256 * 1024;  // asyncio's SENDFILE_FALLBACK_READBUFFER_SIZE (338)
constexpr std::size_t kTransportFallbackBlock = 16 * 1024;  // asyncio's _sendfile_fallback (332)
// sendfile(2) bytes per loop step: enough to keep the syscall count low, small
// enough that one transfer cannot starve the loop's other callbacks.
constexpr std::size_t kStepBytes = 4 * 1024 * 1024;

struct FileInfo {
    bool regular = false;   // sendfile(2) can read it
    bool seekable = false;  // has a position: pread, and lseek at the end
};

template <class T>
Future<T> failed(Future<T> future, std::error_code error) {
    (void)future.set_error(error);
    return future;
}

// Errors that say the connection is gone, not that sendfile(2) is unusable:
// a fallback would fail the same way, so they are returned as they are.
bool connection_error(int error) noexcept {
    return error == EPIPE || error == ECONNRESET || error == ENOTCONN || error == ECONNABORTED ||
           error == ETIMEDOUT || error == EHOSTUNREACH || error == ENETUNREACH || error == ENETDOWN ||
           error == ENETRESET;
}

// The checks sock_sendfile and sendfile share (CONTRACT 334): the file must be
// open for reading, offset >= 0, count absent or > 0. Fills `info`.
std::error_code check_file(int file, std::int64_t offset, std::optional<std::size_t> count, const char* what,
                           FileInfo& info) {
    std::string context(what);
    if (file < 0) return detail::refuse(errc::invalid_fd, context + ": file");
    int flags = ::fcntl(file, F_GETFL);
    if (flags == -1) return last_error();  // EBADF: an OS error, as sock.cpp treats a closed socket
    if ((flags & O_ACCMODE) == O_WRONLY)
        return detail::refuse(errc::invalid_argument, context + ": file should be opened for reading");
    if (count && *count == 0) return detail::refuse(errc::invalid_argument, context + ": count must be a positive integer");
    if (offset < 0) return detail::refuse(errc::invalid_argument, context + ": offset must be a non-negative integer");
    struct stat st {};
    if (::fstat(file, &st) != 0) return last_error();
    info.regular = S_ISREG(st.st_mode);
    info.seekable = ::lseek(file, 0, SEEK_CUR) != -1;
    if (!info.seekable && offset > 0) return {ESPIPE, std::system_category()};  // a pipe reads from where it is
    return {};
}

// As sock.cpp's check_socket for a writer, plus SOCK_STREAM (CONTRACT 334).
std::error_code check_stream_socket(EventLoop& loop, int sock) {
    std::string context = "sock_sendfile: fd " + std::to_string(sock);
    if (loop.is_closed()) return detail::refuse(errc::loop_closed, "sock_sendfile");
    if (loop.is_transport_fd(sock)) return detail::refuse(errc::fd_used_by_transport, context);  // CONTRACT 174
    int flags = ::fcntl(sock, F_GETFL);
    if (flags == -1) return last_error();
    if (!(flags & O_NONBLOCK)) return detail::refuse(errc::socket_blocking, context);
    int type = 0;
    socklen_t size = sizeof type;
    if (::getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &size) != 0) return last_error();  // ENOTSOCK
    if (type != SOCK_STREAM)
        return detail::refuse(errc::invalid_argument, context + ": only SOCK_STREAM type sockets are supported");
    if (loop.has_writer(sock)) return detail::refuse(errc::fd_busy, context);
    return {};
}

void set_position(const FileInfo& info, int file, std::int64_t at) noexcept {
    if (info.seekable) (void)::lseek(file, static_cast<off_t>(at), SEEK_SET);
}

// ---- the fallbacks' reading ----------------------------------------------------

// Reads a file in blocks on the default executor, one block ahead of the
// sender: two buffers, one being sent while the other fills. Each buffer is
// shared with the work filling it, so a cancelled transfer never frees
// memory a pool thread is still writing into.
class BlockReader {
public:
    BlockReader(EventLoop& loop, int file, std::int64_t offset, std::optional<std::size_t> count, std::size_t block,
                FileInfo info)
        : loop_(&loop), file_(file), position_(offset), left_(count), block_(block), seekable_(info.seekable) {}

    /// Starts reading the next block into the free buffer. The future gets
    /// the byte count (0 at the end), or -errno.
    Future<std::int64_t> read_next() {
        std::size_t size = left_ ? std::min(block_, *left_) : block_;
        if (size == 0) {
            Future<std::int64_t> end(*loop_);
            (void)end.set_result(0);
            return end;
        }
        std::shared_ptr<char[]>& buffer = buffers_[filling_];
        if (!buffer) buffer.reset(new char[block_]);
        return loop_->run_in_executor(nullptr, [file = file_, buffer, size, at = position_, seekable = seekable_] {
            // pread leaves the file position alone; a pipe has none: read().
            ssize_t n = seekable ? retry_eintr([&] { return ::pread(file, buffer.get(), size, static_cast<off_t>(at)); })
                                 : retry_eintr([&] { return ::read(file, buffer.get(), size); });
            return n < 0 ? -static_cast<std::int64_t>(errno) : static_cast<std::int64_t>(n);
        });
    }
    /// The block read_next() read (empty at the end of the file), or the
    /// error. Valid until the read_next() after the next one.
    Result<std::string_view> take(const Result<std::int64_t>& got) {
        if (!got) return got.error();
        if (*got < 0) return std::error_code(static_cast<int>(-*got), std::system_category());
        std::size_t n = static_cast<std::size_t>(*got);
        std::string_view block(buffers_[filling_].get(), n);
        position_ += static_cast<std::int64_t>(n);
        if (left_) *left_ -= n;
        filling_ ^= 1;
        return block;
    }
    /// Drops a read still in flight: work no thread has taken never runs.
    static void abandon(Future<std::int64_t>& pending) {
        if (!pending.done()) pending.cancel();
    }

private:
    EventLoop* loop_;
    int file_;
    std::int64_t position_;              // where the next block starts
    std::optional<std::size_t> left_;    // bytes still to read, if counted
    std::size_t block_;
    bool seekable_;
    std::shared_ptr<char[]> buffers_[2];
    int filling_ = 0;                    // the buffer the next read fills
};

// asyncio's _SendfileFallbackProtocol: the transport's protocol while the
// transport fallback writes, so that flow control reaches the fallback and
// not the user's producer (which would write between our blocks). Reading is
// paused meanwhile; whatever still arrives is passed on, as is the loss.
class FallbackProtocol final : public Protocol {
public:
    FallbackProtocol(EventLoop& loop, std::shared_ptr<StreamProtocol> original)
        : loop_(&loop), original_(std::move(original)) {}

    /// True while the transport holds writers back: the last event says, or
    /// before any event the buffer (over the high mark it is surely paused).
    bool paused(const Transport& transport) const {
        if (seen_) return paused_now_;
        return transport.get_write_buffer_size() > transport.get_write_buffer_limits().high;
    }
    /// Done at the next resume_writing (or the loss, with its error).
    Future<void> until_resumed() {
        wait_.emplace(*loop_);
        return *wait_;
    }
    /// The connection is gone: the transport may be destroyed; never touch it.
    bool lost() const noexcept { return lost_; }
    std::error_code lost_error() const noexcept { return lost_error_; }

    /// Puts the user's protocol back and levels it with the transport's flow
    /// control, which it did not hear meanwhile. Events alternate, so the
    /// first one tells the state at the start (a resume only follows a
    /// pause) and the last one the state now.
    void restore(Transport& transport, bool resume_reading) {
        (void)transport.set_protocol(original_);
        if (resume_reading) transport.resume_reading();
        if (seen_ && paused_at_start_ && !paused_now_) original_->resume_writing();
        if (seen_ && !paused_at_start_ && paused_now_) original_->pause_writing();
    }

    void data_received(std::string_view data) override {
        if (original_->kind() == Kind::stream) return static_cast<Protocol&>(*original_).data_received(data);
        auto& buffered = static_cast<BufferedProtocol&>(*original_);
        while (!data.empty()) {
            std::span<char> into = buffered.get_buffer(data.size());
            if (into.empty()) return;
            std::size_t n = std::min(into.size(), data.size());
            std::memcpy(into.data(), data.data(), n);
            buffered.buffer_updated(n);
            data.remove_prefix(n);
        }
    }
    bool eof_received() override { return original_->eof_received(); }
    void connection_lost(std::error_code error) override {
        lost_ = true;
        lost_error_ = error ? error : make_error_code(errc::transport_closing);
        if (wait_ && !wait_->done()) (void)wait_->set_error(lost_error_);
        original_->connection_lost(error);
    }
    void pause_writing() override { note(true); }
    void resume_writing() override {
        note(false);
        if (wait_ && !wait_->done()) (void)wait_->set_result();
    }

private:
    void note(bool pause) noexcept {
        if (!seen_) paused_at_start_ = !pause;
        seen_ = true;
        paused_now_ = pause;
    }

    EventLoop* loop_;
    std::shared_ptr<StreamProtocol> original_;
    std::optional<Future<void>> wait_;
    std::error_code lost_error_;
    bool lost_ = false;
    bool seen_ = false;  // a pause or resume arrived
    bool paused_at_start_ = false;
    bool paused_now_ = false;
};

// ---- the native loop ---------------------------------------------------------

// What the sendfile(2) loop shares with those who may interrupt it: a
// cancel (through the awaited future) and a transport's listener.
struct NativeState {
    NativeState(EventLoop& loop, int sock) : loop(&loop), sock(sock) {}
    EventLoop* loop;
    int sock;
    std::optional<Future<void>> wait;  // what the loop awaits now: the drain, then writability
    bool writer_on = false;            // our one-shot writer is registered on sock
    bool lost = false;                 // the transport's connection is gone: hands off it

    void stop_watching() {
        if (writer_on) (void)loop->remove_writer(sock);
        writer_on = false;
    }
    void wake(std::error_code error) {
        if (!wait || wait->done()) return;
        if (error)
            (void)wait->set_error(error);
        else
            (void)wait->set_result();
    }
    // SocketTransport::SendfileListener: no error = drained; an error = the
    // connection is going and the socket closes soon, so our writer goes now.
    void transport_event(std::error_code error) {
        if (error) {
            lost = true;
            stop_watching();
        }
        wake(error);
    }
};

Future<void> writable(const std::shared_ptr<NativeState>& state) {
    state->wait.emplace(*state->loop);
    std::error_code ec = state->loop->add_writer(state->sock, [state] {
        state->stop_watching();  // one-shot, as asyncio's
        state->wake({});
    });
    if (ec)
        state->wake(ec);
    else
        state->writer_on = true;
    return *state->wait;
}

struct NativeOutcome {
    std::size_t sent = 0;
    std::error_code error{};
    bool unavailable = false;  // sendfile(2) failed before the first byte: fall back
};

// Runs inline in the calling task (co_await of a task never scheduled).
Task<NativeOutcome> send_native(std::shared_ptr<NativeState> state, int file, std::int64_t offset,
                                std::optional<std::size_t> count) {
    NativeOutcome out;
    for (;;) {
        for (std::size_t step = 0; step < kStepBytes;) {
            std::size_t want = kStepBytes - step;
            if (count) {
                if (out.sent == *count) co_return out;
                want = std::min(want, *count - out.sent);
            }
            off_t at = static_cast<off_t>(offset + static_cast<std::int64_t>(out.sent));
#if defined(__linux__)
            ssize_t n = retry_eintr([&] { return ::sendfile(state->sock, file, &at, want); });
#else
            ssize_t n = -1;  // BSD and macOS sendfile(2) differ: the fallback serves them for now
            errno = ENOSYS;
            (void)at;
#endif
            if (n == 0) co_return out;  // the file ended before count
            if (n > 0) {
                out.sent += static_cast<std::size_t>(n);
                step += static_cast<std::size_t>(n);
                continue;
            }
            int error = errno;
            if (error == EAGAIN || error == EWOULDBLOCK) break;
            out.error = {error, std::system_category()};
            out.unavailable = out.sent == 0 && !connection_error(error);  // CONTRACT 331
            co_return out;
        }
        Result<void> ready = co_await writable(state);
        if (!ready) {  // cancelled (CONTRACT 339) or the transport went away
            state->stop_watching();
            out.error = ready.error();
            co_return out;
        }
    }
}

// ---- sock_sendfile's tasks -------------------------------------------------------

Task<std::size_t> sock_fallback(EventLoop& loop, int sock, int file, std::int64_t offset,
                                std::optional<std::size_t> count, FileInfo info) {
    BlockReader reader(loop, file, offset, count, kSockFallbackBlock, info);
    std::size_t sent = 0;
    std::error_code error;
    Future<std::int64_t> next = reader.read_next();
    for (;;) {
        Result<std::string_view> block = reader.take(co_await next);
        if (!block || block->empty()) {
            error = block ? std::error_code() : block.error();
            break;
        }
        next = reader.read_next();  // read ahead while this block is sent
        std::size_t part = 0;
        Result<void> done = co_await loop.sock_sendall(sock, *block, &part);
        sent += done ? block->size() : part;
        if (!done) {
            error = done.error();
            break;
        }
    }
    BlockReader::abandon(next);
    set_position(info, file, offset + static_cast<std::int64_t>(sent));  // CONTRACT 330
    if (error) co_return error;
    co_return sent;
}

Task<std::size_t> sock_sendfile_task(EventLoop& loop, int sock, int file, std::int64_t offset,
                                     std::optional<std::size_t> count, bool fallback, FileInfo info) {
    if (info.regular) {
        auto state = std::make_shared<NativeState>(loop, sock);
        Result<NativeOutcome> result = co_await send_native(state, file, offset, count);
        if (!result) co_return result.error();
        NativeOutcome out = *result;
        set_position(info, file, offset + static_cast<std::int64_t>(out.sent));  // CONTRACT 330, 339
        if (!out.unavailable) {
            if (out.error) co_return out.error;
            co_return out.sent;
        }
        if (!fallback) co_return make_error_code(errc::sendfile_not_supported);  // CONTRACT 331
    }
    co_return co_await sock_fallback(loop, sock, file, offset, count, info);  // CONTRACT 337, 338
}

// ---- sendfile(transport)'s tasks --------------------------------------------------

Task<std::size_t> transport_fallback(EventLoop& loop, Transport& transport, int file, std::int64_t offset,
                                     std::optional<std::size_t> count, FileInfo info) {
    // Closed since the call: still alive (its connection_lost is queued
    // behind this first step), but no longer ours to write to.
    if (transport.is_closing()) co_return make_error_code(errc::transport_closing);
    std::shared_ptr<BaseProtocol> current = transport.get_protocol();
    if (!current || (current->kind() != BaseProtocol::Kind::stream && current->kind() != BaseProtocol::Kind::buffered))
        co_return make_error_code(errc::wrong_protocol);
    auto stand_in = std::make_shared<FallbackProtocol>(loop, std::static_pointer_cast<StreamProtocol>(current));
    bool was_reading = transport.is_reading();
    transport.pause_reading();
    if (std::error_code error = transport.set_protocol(stand_in)) {
        if (was_reading) transport.resume_reading();
        co_return error;
    }
    BlockReader reader(loop, file, offset, count, kTransportFallbackBlock, info);
    std::size_t sent = 0;
    std::error_code error;
    Future<std::int64_t> next = reader.read_next();
    for (;;) {
        Result<std::string_view> block = reader.take(co_await next);
        if (!block || block->empty()) {
            error = block ? std::error_code() : block.error();
            break;
        }
        next = reader.read_next();
        // Any await may end the connection: lost() is asked before the
        // transport is touched again (CONTRACT 332, 333). A transport that
        // failed meanwhile is waited out: its connection_lost says why.
        while (!error && !stand_in->lost() && (transport.is_closing() || stand_in->paused(transport))) {
            if (Result<void> woke = co_await stand_in->until_resumed(); !woke) error = woke.error();
        }
        if (!error && stand_in->lost()) error = stand_in->lost_error();
        if (!error) error = transport.write(*block);
        if (error) break;
        sent += block->size();
    }
    BlockReader::abandon(next);
    set_position(info, file, offset + static_cast<std::int64_t>(sent));  // CONTRACT 330
    if (!stand_in->lost()) stand_in->restore(transport, was_reading);
    if (error) co_return error;
    co_return sent;
}

Task<std::size_t> transport_sendfile_task(EventLoop& loop, SocketTransport& transport, int file,
                                          std::int64_t offset, std::optional<std::size_t> count, bool fallback,
                                          FileInfo info) {
    if (transport.is_closing()) co_return make_error_code(errc::transport_closing);  // as transport_fallback
    auto state = std::make_shared<NativeState>(loop, transport.fd());
    // As asyncio's _sendfile_native: reading pauses first, then the buffer drains.
    bool was_reading = transport.is_reading();
    transport.pause_reading();
    state->wait.emplace(loop);
    Future<void> drained = *state->wait;
    transport.begin_sendfile([state](std::error_code error) { state->transport_event(error); });
    NativeOutcome out;
    if (Result<void> ready = co_await drained; !ready) {
        out.error = ready.error();
    } else {
        Result<NativeOutcome> result = co_await send_native(state, file, offset, count);
        if (result) out = *result;
        else out.error = result.error();
    }
    set_position(info, file, offset + static_cast<std::int64_t>(out.sent));  // CONTRACT 330
    // Lost: the transport may be gone already; it failed (or closed) on its own.
    if (state->lost) co_return out.error ? out.error : make_error_code(errc::transport_closing);
    // A sendfile(2) failure on a live socket is the connection's end (CONTRACT 333).
    bool fatal = out.error && !out.unavailable && out.error.category() == std::system_category();
    transport.end_sendfile(fatal ? out.error : std::error_code());
    if (fatal) co_return out.error;
    if (was_reading) transport.resume_reading();
    if (out.unavailable) {
        if (!fallback) co_return make_error_code(errc::sendfile_not_supported);
        co_return co_await transport_fallback(loop, transport, file, offset, count, info);
    }
    if (out.error) co_return out.error;
    co_return out.sent;
}

}  // namespace

Future<std::size_t> EventLoop::sock_sendfile(int sock, int file, std::int64_t offset,
                                             std::optional<std::size_t> count, bool fallback) {
    if (std::error_code error = check_stream_socket(*this, sock)) return failed(Future<std::size_t>(*this), error);
    FileInfo info;
    if (std::error_code error = check_file(file, offset, count, "sock_sendfile", info))
        return failed(Future<std::size_t>(*this), error);
    // A pipe or a socket: sendfile(2) cannot read it (CONTRACT 337).
    if (!info.regular && !fallback)
        return failed(Future<std::size_t>(*this), make_error_code(errc::sendfile_not_supported));
    return create_task(sock_sendfile_task(*this, sock, file, offset, count, fallback, info));
}

Future<std::size_t> EventLoop::sendfile(Transport& transport, int file, std::int64_t offset,
                                        std::optional<std::size_t> count, bool fallback) {
    if (is_closed()) return failed(Future<std::size_t>(*this), detail::refuse(errc::loop_closed, "sendfile"));
    if (transport.is_closing())  // CONTRACT 326
        return failed(Future<std::size_t>(*this), detail::refuse(errc::transport_closing, "sendfile: Transport is closing"));
    FileInfo info;
    if (std::error_code error = check_file(file, offset, count, "sendfile", info))
        return failed(Future<std::size_t>(*this), error);
    SocketTransport* socket_transport = transport.native_sendfile_transport();
    bool native = socket_transport != nullptr;
    if (!native && !fallback)  // CONTRACT 326
        return failed(Future<std::size_t>(*this),
                      detail::refuse(errc::sendfile_not_supported,
                                     "sendfile: fallback is disabled and native sendfile is not supported"));
    if (native && info.regular) {
        return create_task(transport_sendfile_task(*this, *socket_transport, file, offset,
                                                   count, fallback, info));
    }
    if (!fallback) return failed(Future<std::size_t>(*this), make_error_code(errc::sendfile_not_supported));
    return create_task(transport_fallback(*this, transport, file, offset, count, info));
}

}  // namespace evloop
