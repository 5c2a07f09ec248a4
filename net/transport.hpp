// net/transport.hpp — the transport interfaces (asyncio's transports.py).
//
// A transport is the loop's side of a connection: the user's protocol writes
// through it and is called back by it. These are abstract interfaces so that
// every kind (TCP and Unix sockets, pipes, and later TLS stacked on another
// transport) offers the same calls; net/socket_transport.hpp is the one to
// read first. Virtual inheritance lets Transport be both a ReadTransport and
// a WriteTransport, as in asyncio, without RTTI.
//
// Ownership: transports are created by the loop and held by std::shared_ptr.
// An open transport keeps itself alive; it lets go after its protocol's
// connection_lost has returned (or when the loop closes). Closing or aborting
// from inside any protocol callback is safe: connection_lost always comes
// later, from its own loop callback (CONTRACT 293).
// Layer: net. Read next: net/socket_transport.hpp.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>

#include "net/address.hpp"
#include "net/protocol.hpp"

namespace evloop {

class SocketTransport;

/// get_extra_info's answer: nothing, an address ("peername", "sockname"),
/// an fd ("socket", "pipe") or a string.
using ExtraInfo = std::variant<std::monostate, SocketAddress, int, std::string>;

/// The write buffer's flow-control marks, in bytes (CONTRACT 248).
struct WriteBufferLimits {
    std::size_t low = 16 * 1024;
    std::size_t high = 64 * 1024;
};

/// What every transport can do (asyncio.BaseTransport).
class BaseTransport {
public:
    virtual ~BaseTransport() = default;
    BaseTransport(const BaseTransport&) = delete;
    BaseTransport& operator=(const BaseTransport&) = delete;

    /// Closes the transport: buffered data is still sent, then
    /// connection_lost(no error) is called. Idempotent.
    virtual void close() = 0;
    /// True from the moment close() or abort() was called or the connection failed.
    virtual bool is_closing() const noexcept = 0;
    /// "peername", "sockname", "socket" (the fd) and others per transport;
    /// std::monostate for an unknown name or when the answer is unavailable.
    virtual ExtraInfo get_extra_info(std::string_view name) const = 0;
    /// Replaces the protocol; refused (errc::wrong_protocol) for a protocol
    /// of a kind this transport cannot talk to.
    virtual std::error_code set_protocol(std::shared_ptr<BaseProtocol> protocol) = 0;
    /// The current protocol (empty after connection_lost).
    virtual std::shared_ptr<BaseProtocol> get_protocol() const = 0;

protected:
    BaseTransport() = default;
};

/// The reading half (asyncio.ReadTransport).
class ReadTransport : public virtual BaseTransport {
public:
    /// True while reading is neither paused nor stopped by close or EOF.
    virtual bool is_reading() const noexcept = 0;
    /// Stops calling the protocol with data until resume_reading(). Idempotent.
    virtual void pause_reading() = 0;
    /// Starts reading again. Idempotent; no effect once closing.
    virtual void resume_reading() = 0;
};

/// The writing half (asyncio.WriteTransport).
class WriteTransport : public virtual BaseTransport {
public:
    /// Sends `data` (copied if it cannot all be sent at once; the caller
    /// may reuse its memory at return). Refused with errc::transport_closing
    /// after close(), abort() or a failure (nothing already accepted is
    /// lost), and errc::write_after_eof after write_eof().
    virtual std::error_code write(std::string_view data) = 0;
    /// Writes every piece as one gathered send (asyncio's writelines).
    virtual std::error_code writelines(std::span<const std::string_view> pieces) = 0;
    std::error_code writelines(std::initializer_list<std::string_view> pieces) {
        return writelines(std::span<const std::string_view>(pieces.begin(), pieces.size()));
    }
    /// True when write_eof() is supported.
    virtual bool can_write_eof() const noexcept = 0;
    /// Shuts the writing side once the buffer has drained (SHUT_WR).
    virtual void write_eof() = 0;
    /// Closes at once: buffered data is discarded, connection_lost(no error) follows.
    virtual void abort() = 0;
    /// Bytes accepted by write() and not yet handed to the kernel.
    virtual std::size_t get_write_buffer_size() const noexcept = 0;
    virtual WriteBufferLimits get_write_buffer_limits() const noexcept = 0;
    /// Sets the marks: only high given → low = high / 4; only low given →
    /// high = 4 * low; neither → 64 KiB / 16 KiB (CONTRACT 248–254). Refused
    /// (errc::invalid_argument) unless high >= low. May call pause_writing()
    /// at once, never resume_writing().
    virtual std::error_code set_write_buffer_limits(std::optional<std::size_t> high,
                                                    std::optional<std::size_t> low = std::nullopt) = 0;
};

/// A bidirectional stream transport (asyncio.Transport): TCP, Unix, TLS.
class Transport : public ReadTransport, public WriteTransport {
public:
    /// The socket transport loop.sendfile() may hand to sendfile(2) — itself
    /// for SocketTransport — or nullptr when the transport cannot send a
    /// file natively (TLS, pipes): then sendfile writes through write()
    /// (CONTRACT 326, 332). A typed answer, so no cast is needed without RTTI.
    virtual SocketTransport* native_sendfile_transport() noexcept { return nullptr; }
};

/// A datagram endpoint (asyncio.DatagramTransport).
class DatagramTransport : public virtual BaseTransport {
public:
    /// Sends one datagram to the connected peer (or to remote_addr for an
    /// allow_broadcast endpoint). A datagram the socket cannot take now is
    /// queued whole and sent in order. Refused after close/abort
    /// (errc::transport_closing); without a default destination,
    /// errc::invalid_address.
    virtual std::error_code sendto(std::string_view data) = 0;
    /// Sends one datagram to `address`; on a connected endpoint `address`
    /// must be the connected one (errc::invalid_address, CONTRACT 283).
    virtual std::error_code sendto(std::string_view data, const SocketAddress& address) = 0;
    /// Closes at once: queued datagrams are dropped.
    virtual void abort() = 0;
    /// Bytes of queued datagrams.
    virtual std::size_t get_write_buffer_size() const noexcept = 0;
    virtual WriteBufferLimits get_write_buffer_limits() const noexcept = 0;
    virtual std::error_code set_write_buffer_limits(std::optional<std::size_t> high,
                                                    std::optional<std::size_t> low = std::nullopt) = 0;
};

}  // namespace evloop
