// net/datagram_transport.hpp — DatagramSocketTransport: asyncio's
// _SelectorDatagramTransport, the transport of every UDP and AF_UNIX
// datagram endpoint (CONTRACT 282–290, 304, 325).
//
// Reading: the socket's fd has a reader from right after connection_made
// until close; each readiness receives up to kReadBatch datagrams with
// recvfrom() into a 256 KiB buffer the whole thread shares, one
// datagram_received per datagram (zero-length ones too). The batch bound
// keeps one busy endpoint from starving the rest of the loop.
// Writing: sendto() sends at once when nothing is queued; a datagram the
// kernel cannot take now (EAGAIN) is copied whole into a FIFO queue and a
// writer flushes it in order: datagrams are never split or reordered.
// Flow control counts the queued datagrams' bytes (CONTRACT 287; without
// asyncio's 8-byte header asymmetry).
// Errors: an OS error of send/sendto/recvfrom (ECONNREFUSED after an ICMP
// port unreachable, EMSGSIZE, …) goes to error_received() and the transport
// stays open (CONTRACT 284, 286). asyncio's datagram_received exceptions are
// not fatal either: reported, the endpoint keeps reading.
// Decisions where asyncio leaves room (docs/asyncio-map.md should repeat them):
//  - sendto() after close()/abort() is refused with errc::transport_closing
//    (returned, not thrown; logged from the 5th call on), for connected and
//    unconnected endpoints alike (CONTRACT 288: asyncio drops on one and
//    raises AttributeError on the other). Queued datagrams are still sent.
//  - An OS error of the immediate send is both returned by sendto() and
//    passed to error_received() (asyncio only does the latter): the caller
//    learns which datagram failed. A datagram too large for the socket is the
//    kernel's EMSGSIZE (std::errc::message_size), not a limit of ours: the
//    maximum depends on the family, the send buffer and the MTU options.
//    A datagram that had to wait in the queue reports through error_received
//    only, when its turn comes.
//  - An address of another family than the socket's, an address on a
//    connected endpoint other than its peer (283), or no address on an
//    endpoint without a default destination, are refused (detail::refuse,
//    errc::invalid_address) before any syscall: they are the caller's bug,
//    not the network's. (asyncio passes socket.gaierror to error_received
//    for the wrong family.) An empty SocketAddress means "no address".
//  - An allow_broadcast endpoint sends to remote_addr by default and to any
//    address it is given (asyncio refuses any other address there too).
// Lifetime: created by create_datagram_endpoint through make(); holds itself
// (self_) until connection_lost has returned, or until the loop closes.
// Layer: net. Read next: net/datagram_transport.cpp, net/datagram_endpoint.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/event_loop.hpp"
#include "core/future.hpp"
#include "net/address.hpp"
#include "net/protocol.hpp"
#include "net/transport.hpp"
#include "net/write_buffer.hpp"
#include "platform/fd.hpp"

namespace evloop {

class DatagramSocketTransport final : public DatagramTransport, private detail::LoopResource {
public:
    /// asyncio's max_size: the largest datagram one recvfrom() takes whole.
    static constexpr std::size_t kMaxDatagramSize = 256 * 1024;
    /// Datagrams received per readiness at most, for fairness.
    static constexpr int kReadBatch = 16;

    /// Wraps a non-blocking datagram socket, connected or not. On the next
    /// iteration, in one callback: connection_made, then the reader, then
    /// `waiter` (if given) gets its result (CONTRACT 325). `default_destination`
    /// (allow_broadcast's remote_addr, CONTRACT 322) is where sendto(data)
    /// goes on an unconnected socket; a connected socket sends to its peer.
    static std::shared_ptr<DatagramSocketTransport> make(EventLoop& loop, Fd sock,
                                                         std::shared_ptr<DatagramProtocol> protocol,
                                                         Future<void>* waiter = nullptr,
                                                         SocketAddress default_destination = {});
    ~DatagramSocketTransport() override;

    // BaseTransport
    void close() override;
    bool is_closing() const noexcept override { return closing_; }
    /// "socket" (the fd), "sockname", and "peername" only while connected
    /// (CONTRACT 290).
    ExtraInfo get_extra_info(std::string_view name) const override;
    std::error_code set_protocol(std::shared_ptr<BaseProtocol> protocol) override;
    std::shared_ptr<BaseProtocol> get_protocol() const override { return protocol_; }
    // DatagramTransport
    std::error_code sendto(std::string_view data) override;
    std::error_code sendto(std::string_view data, const SocketAddress& address) override;
    void abort() override;
    std::size_t get_write_buffer_size() const noexcept override { return queued_bytes_; }
    WriteBufferLimits get_write_buffer_limits() const noexcept override { return flow_.limits; }
    std::error_code set_write_buffer_limits(std::optional<std::size_t> high,
                                            std::optional<std::size_t> low = std::nullopt) override;

    /// The socket's fd (-1 once closed).
    int fd() const noexcept { return fd_.get(); }
    /// True if the socket is connected (remote_addr without allow_broadcast).
    bool connected() const noexcept { return connected_; }
    /// Datagrams waiting in the queue.
    std::size_t queued_datagrams() const noexcept { return queue_.size() - head_; }
    EventLoop& get_loop() const noexcept { return *loop_; }
    /// "<DatagramSocketTransport fd=7 closing>", for exception contexts and logs.
    std::string describe() const;

private:
    struct Pending {
        std::string data;
        SocketAddress address;  // empty: the connected peer (send, not sendto)
    };

    DatagramSocketTransport(EventLoop& loop, Fd sock, std::shared_ptr<DatagramProtocol> protocol,
                            SocketAddress default_destination);
    void start(Future<void>* waiter);
    void read_ready();
    ssize_t send_one(std::string_view data, const SocketAddress& address) noexcept;
    std::error_code send_or_queue(std::string_view data, const SocketAddress& address);
    void write_ready();
    void pop_front() noexcept;
    void drop_queue() noexcept;
    void force_close(std::error_code error);
    void fatal_error(std::error_code error, const char* message);
    template <class F>
    void guarded(const char* what, F&& call);
    void call_connection_lost(std::error_code error);
    void loop_closing() noexcept override;
    std::error_code refuse_send();

    EventLoop* loop_;
    Fd fd_;
    std::shared_ptr<DatagramProtocol> protocol_;
    std::shared_ptr<DatagramSocketTransport> self_;  // the open transport keeps itself alive
    int family_ = AF_UNSPEC;     // the socket's (SO_DOMAIN), for the wrong-family check
    bool connected_ = false;     // getpeername() worked at construction
    SocketAddress peer_;         // the connected peer
    SocketAddress default_;      // allow_broadcast's remote_addr
    // The queue: a vector with a moving head, like WriteBuffer, so an idle
    // endpoint owns no queue memory (a std::deque would).
    std::vector<Pending> queue_;
    std::size_t head_ = 0;
    std::size_t queued_bytes_ = 0;
    detail::FlowControl flow_;
    std::uint32_t lost_writes_ = 0;  // sends refused after close, for the warning
    bool closing_ = false;           // close(), abort() or a failure happened
    bool conn_lost_ = false;         // connection_lost is scheduled or done
    bool reader_on_ = false;
    bool writer_on_ = false;
};

}  // namespace evloop
