// net/datagram_transport.cpp — the selector datagram transport: receive
// batches, sendto with a whole-datagram FIFO queue, flow control, close and
// abort, connection_lost exactly once.
//
// State, as in net/socket_transport.cpp: closing_ is asyncio's _closing
// (close(), abort() or a failure happened: no more reading, sends refused);
// conn_lost_ is a non-zero _conn_lost (connection_lost is scheduled or ran).
// connection_lost always comes from a callback of its own, or from the
// write-ready callback that drained the queue after close(), never from
// inside close() or abort().
// Layer: net. Read next: net/datagram_endpoint.cpp.
#include "net/datagram_transport.hpp"

#include <sys/socket.h>

#include <cstddef>
#include <cstdio>
#include <memory>
#include <optional>
#include <utility>

#include "core/log.hpp"

namespace evloop {

namespace {

// One receive buffer per thread, shared by every datagram endpoint of the
// loops on it: datagram_received only borrows it for the call.
char* shared_datagram_buffer() {
    thread_local std::unique_ptr<char[]> buffer;
    if (!buffer) buffer.reset(new char[DatagramSocketTransport::kMaxDatagramSize]);
    return buffer.get();
}

bool would_block(int error) noexcept { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

// asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES (CONTRACT 288).
constexpr std::uint32_t kLostWritesBeforeWarning = 5;

// The peer a connected endpoint accepts as an explicit address (CONTRACT
// 283). Compared by meaning, not bytes: getpeername() and a parsed address
// may differ in padding or in whether a Unix path's length counts its NUL.
bool same_address(const SocketAddress& a, const SocketAddress& b) {
    if (a == b) return true;
    return a.family() == b.family() && a.port() == b.port() && a.scope_id() == b.scope_id() && a.host() == b.host();
}

}  // namespace

std::shared_ptr<DatagramSocketTransport> DatagramSocketTransport::make(EventLoop& loop, Fd sock,
                                                                       std::shared_ptr<DatagramProtocol> protocol,
                                                                       Future<void>* waiter,
                                                                       SocketAddress default_destination) {
    std::shared_ptr<DatagramSocketTransport> transport(
        new DatagramSocketTransport(loop, std::move(sock), std::move(protocol), std::move(default_destination)));
    transport->self_ = transport;
    loop.attach_resource(*transport);
    transport->start(waiter);
    return transport;
}

DatagramSocketTransport::DatagramSocketTransport(EventLoop& loop, Fd sock, std::shared_ptr<DatagramProtocol> protocol,
                                                 SocketAddress default_destination)
    : loop_(&loop), fd_(std::move(sock)), protocol_(std::move(protocol)), default_(std::move(default_destination)) {
    socklen_t size = sizeof family_;
    if (::getsockopt(fd_.get(), SOL_SOCKET, SO_DOMAIN, &family_, &size) != 0) family_ = AF_UNSPEC;
    // Connected by create_datagram_endpoint, or a sock= the caller connected:
    // either way the kernel filters incoming datagrams and send() needs no address.
    if (Result<SocketAddress> peer = peer_address(fd_.get())) {
        connected_ = true;
        peer_ = *peer;
    }
    loop_->set_transport_fd(fd_.get(), true);  // sock_* refuse it (CONTRACT 174)
}

DatagramSocketTransport::~DatagramSocketTransport() = default;

template <class F>
void DatagramSocketTransport::guarded(const char* what, F&& call) {
#if EVLOOP_EXCEPTIONS
    try {
        call();
    } catch (...) {
        // As asyncio, where these exceptions escape to the loop's "Exception
        // in callback": reported, the endpoint stays open.
        char message[96];
        std::snprintf(message, sizeof message, "Exception in callback protocol.%s()", what);
        ExceptionContext context{.message = message};
        context.exception = std::current_exception();
        context.transport = describe();
        context.socket = fd_.get();
        loop_->call_exception_handler(context);
    }
#else
    (void)what;
    call();
#endif
}

void DatagramSocketTransport::start(Future<void>* waiter) {
    std::optional<Future<void>> done;
    if (waiter) done.emplace(*waiter);
    // asyncio queues three callbacks (connection_made, add_reader, the
    // waiter); one callback does the same in the same order (CONTRACT 325).
    loop_->call_soon([this, done = std::move(done)]() mutable {
        if (!protocol_) return;  // defensive: connection_lost already ran
        guarded("connection_made", [&] { protocol_->connection_made(*this); });
        if (!closing_ && !reader_on_) {
            if (std::error_code ec = loop_->add_reader(fd_.get(), [this] { read_ready(); }))
                fatal_error(ec, "Fatal error: could not watch the socket");
            else
                reader_on_ = true;
        }
        if (done && !done->done()) (void)done->set_result();
    });
}

// ---- receiving --------------------------------------------------------------

void DatagramSocketTransport::read_ready() {
    char* buffer = shared_datagram_buffer();
    for (int i = 0; i < kReadBatch && !closing_; ++i) {
        SocketAddress from;
        socklen_t size = SocketAddress::capacity();
        ssize_t n = ::recvfrom(fd_.get(), buffer, kMaxDatagramSize, 0, from.data(), &size);
        if (n < 0) {
            if (would_block(errno)) return;
            // ECONNREFUSED after an ICMP port unreachable, and the like:
            // not fatal for a datagram endpoint (CONTRACT 284, 286).
            std::error_code ec = last_error();
            guarded("error_received", [&] { protocol_->error_received(ec); });
            return;
        }
        from.set_size(size);
        // Zero-length datagrams are datagrams too (CONTRACT 282).
        guarded("datagram_received",
                [&] { protocol_->datagram_received({buffer, static_cast<std::size_t>(n)}, from); });
    }
}

// ---- sending ------------------------------------------------------------------

std::error_code DatagramSocketTransport::refuse_send() {
    // CONTRACT 288, decided: refused for every endpoint, from close() on.
    if (++lost_writes_ >= kLostWritesBeforeWarning)
        log(LogLevel::warning, "sendto: socket.send() refused: the transport is closing (%s)", describe().c_str());
    return make_error_code(errc::transport_closing);
}

std::error_code DatagramSocketTransport::sendto(std::string_view data) {
    if (connected_) return closing_ ? refuse_send() : send_or_queue(data, {});
    if (default_.empty())
        return detail::refuse(errc::invalid_address,
                              "sendto: no address given and the endpoint has no remote address");
    return closing_ ? refuse_send() : send_or_queue(data, default_);
}

std::error_code DatagramSocketTransport::sendto(std::string_view data, const SocketAddress& address) {
    if (address.empty()) return sendto(data);
    if (connected_) {
        if (!same_address(address, peer_))  // CONTRACT 283
            return detail::refuse(errc::invalid_address,
                                  ("sendto: Invalid address: must be None or " + peer_.to_string()).c_str());
        return closing_ ? refuse_send() : send_or_queue(data, {});
    }
    if (address.family() != family_)
        return detail::refuse(errc::invalid_address,
                              ("sendto: address " + address.to_string() + " is not of the socket's family").c_str());
    return closing_ ? refuse_send() : send_or_queue(data, address);
}

ssize_t DatagramSocketTransport::send_one(std::string_view data, const SocketAddress& address) noexcept {
    if (address.empty()) return ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    return ::sendto(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL, address.data(), address.size());
}

std::error_code DatagramSocketTransport::send_or_queue(std::string_view data, const SocketAddress& address) {
    if (head_ == queue_.size()) {
        // Nothing queued: straight to the kernel. With a queue, this datagram
        // must wait its turn, or the order would change.
        if (send_one(data, address) >= 0) return {};  // a datagram goes whole or not at all
        if (!would_block(errno)) {
            std::error_code ec = last_error();
            protocol_->error_received(ec);  // CONTRACT 284; may throw to our caller, as in asyncio
            return ec;
        }
    }
    // Copied whole, so the caller may reuse its memory (CONTRACT 287).
    queue_.push_back({std::string(data), address});
    queued_bytes_ += data.size();
    if (!writer_on_) {
        if (std::error_code ec = loop_->add_writer(fd_.get(), [this] { write_ready(); })) {
            fatal_error(ec, "Fatal error: could not watch the socket");
            return ec;
        }
        writer_on_ = true;
    }
    if (flow_.should_pause(queued_bytes_)) guarded("pause_writing", [&] { protocol_->pause_writing(); });
    return {};
}

void DatagramSocketTransport::write_ready() {
    while (head_ < queue_.size() && !conn_lost_) {
        ssize_t n = send_one(queue_[head_].data, queue_[head_].address);
        if (n < 0 && would_block(errno)) break;  // the rest waits, in order
        int error = n < 0 ? errno : 0;
        pop_front();  // sent, or failed for good: asyncio drops it too
        // A protocol may send (appending behind the queue) or abort here.
        if (error) guarded("error_received", [&] { protocol_->error_received({error, std::system_category()}); });
    }
    if (conn_lost_) return;  // aborted meanwhile: the queue is gone, the writer too
    if (flow_.should_resume(queued_bytes_)) guarded("resume_writing", [&] { protocol_->resume_writing(); });
    if (head_ < queue_.size() || conn_lost_) return;
    (void)loop_->remove_writer(fd_.get());
    writer_on_ = false;
    if (closing_) {
        // close() was waiting for the queue to drain (CONTRACT 289).
        conn_lost_ = true;
        call_connection_lost({});  // may destroy *this: the last statement
    }
}

void DatagramSocketTransport::pop_front() noexcept {
    queued_bytes_ -= queue_[head_].data.size();
    std::string().swap(queue_[head_].data);  // a sent datagram's memory goes now
    if (++head_ == queue_.size()) {
        queue_.clear();
        head_ = 0;
    } else if (head_ >= 32 && head_ * 2 >= queue_.size()) {
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
    }
}

void DatagramSocketTransport::drop_queue() noexcept {
    std::vector<Pending>().swap(queue_);
    head_ = 0;
    queued_bytes_ = 0;
}

std::error_code DatagramSocketTransport::set_write_buffer_limits(std::optional<std::size_t> high,
                                                                 std::optional<std::size_t> low) {
    if (!flow_.set(high, low))  // CONTRACT 250
        return detail::refuse(errc::invalid_argument, "set_write_buffer_limits: high must be >= low");
    // May pause at once, never resumes (CONTRACT 254).
    if (flow_.should_pause(queued_bytes_)) guarded("pause_writing", [&] { protocol_->pause_writing(); });
    return {};
}

// ---- closing ----------------------------------------------------------------

void DatagramSocketTransport::close() {
    if (closing_) return;
    closing_ = true;
    if (reader_on_) {
        (void)loop_->remove_reader(fd_.get());
        reader_on_ = false;
    }
    if (head_ < queue_.size()) return;  // write_ready() flushes, then connection_lost (CONTRACT 289)
    conn_lost_ = true;
    if (writer_on_) {
        (void)loop_->remove_writer(fd_.get());
        writer_on_ = false;
    }
    loop_->call_soon([this] { call_connection_lost({}); });
}

void DatagramSocketTransport::abort() { force_close({}); }

void DatagramSocketTransport::force_close(std::error_code error) {
    if (conn_lost_) return;
    drop_queue();  // abort drops what is queued
    if (writer_on_) {
        (void)loop_->remove_writer(fd_.get());
        writer_on_ = false;
    }
    if (reader_on_) {
        (void)loop_->remove_reader(fd_.get());
        reader_on_ = false;
    }
    closing_ = conn_lost_ = true;
    loop_->call_soon([this, error] { call_connection_lost(error); });
}

void DatagramSocketTransport::fatal_error(std::error_code error, const char* message) {
    // Only the loop's own refusals get here (add_reader/add_writer failing):
    // every OS error of the socket goes to error_received instead.
    ExceptionContext context{.message = message, .error = error};
    context.transport = describe();
    context.socket = fd_.get();
    loop_->call_exception_handler(context);
    force_close(error);
}

void DatagramSocketTransport::call_connection_lost(std::error_code error) {
    // Keeps *this alive to the end; destroying it is the last thing here.
    std::shared_ptr<DatagramSocketTransport> keep = std::move(self_);
    std::shared_ptr<DatagramProtocol> protocol = std::move(protocol_);
    struct Finally {  // the socket is closed even if connection_lost throws (CONTRACT 300)
        DatagramSocketTransport& transport;
        ~Finally() {
            transport.loop_->set_transport_fd(transport.fd_.get(), false);
            transport.fd_.reset();
            transport.detail::LoopResource::unlink();
        }
    } finally{*this};
    if (protocol) protocol->connection_lost(error);
}

void DatagramSocketTransport::loop_closing() noexcept {
    // The loop closes with this endpoint open: its watches are gone with the
    // selector; release the fd and the protocol without calling back.
    closing_ = conn_lost_ = true;
    reader_on_ = writer_on_ = false;
    drop_queue();
    loop_->set_transport_fd(fd_.get(), false);
    fd_.reset();
    protocol_.reset();
    std::shared_ptr<DatagramSocketTransport> keep = std::move(self_);  // may destroy *this
}

// ---- introspection ------------------------------------------------------------

ExtraInfo DatagramSocketTransport::get_extra_info(std::string_view name) const {
    if (!fd_) return {};
    if (name == "socket") return fd_.get();
    // Only a connected socket has a peer; allow_broadcast's remote_addr is
    // a default destination, not a peer (CONTRACT 290).
    if (name == "peername") return connected_ ? ExtraInfo(peer_) : ExtraInfo();
    if (name == "sockname") {
        if (auto address = local_address(fd_.get())) return *address;
        return {};
    }
    return {};
}

std::error_code DatagramSocketTransport::set_protocol(std::shared_ptr<BaseProtocol> protocol) {
    if (!protocol || protocol->kind() != BaseProtocol::Kind::datagram)
        return detail::refuse(errc::wrong_protocol, "DatagramSocketTransport::set_protocol");
    protocol_ = std::static_pointer_cast<DatagramProtocol>(std::move(protocol));
    return {};
}

std::string DatagramSocketTransport::describe() const {
    char text[64];
    std::snprintf(text, sizeof text, "<DatagramSocketTransport fd=%d%s>", fd_.get(), closing_ ? " closing" : "");
    return text;
}

}  // namespace evloop
