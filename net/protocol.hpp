// net/protocol.hpp — the protocol classes: what a transport calls back.
//
// As in asyncio, a protocol is the user's object that reacts to a
// connection: connection_made, then data_received (Protocol) or get_buffer /
// buffer_updated (BufferedProtocol), then eof_received, then connection_lost
// exactly once (CONTRACT 291–303). Every callback has a do-nothing default,
// so a protocol overrides only what it needs.
//
// Ownership: protocols are held by std::shared_ptr. A transport keeps its
// protocol alive until connection_lost has returned, then drops it; whoever
// else holds the pointer (create_connection's caller) keeps it as long as it
// likes. The transport passed to connection_made is valid until
// connection_lost returns; keep a raw pointer or reference to it.
//
// No RTTI: each class records its kind, so a transport can tell a
// BufferedProtocol from a Protocol (set_protocol switches the read path).
// Layer: net. Read next: net/transport.hpp.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <system_error>

#include "net/address.hpp"

namespace evloop {

class Transport;
class DatagramTransport;

/// The base of every protocol (asyncio.BaseProtocol).
class BaseProtocol {
public:
    enum class Kind : unsigned char { stream, buffered, datagram, subprocess };

    virtual ~BaseProtocol() = default;
    BaseProtocol(const BaseProtocol&) = delete;
    BaseProtocol& operator=(const BaseProtocol&) = delete;

    /// The connection is gone: `error` is empty for a local close, an abort
    /// or a normal EOF, the OS error otherwise. Called once; nothing after.
    virtual void connection_lost(std::error_code error) { (void)error; }
    /// The transport's write buffer went over the high-water mark.
    virtual void pause_writing() {}
    /// The transport's write buffer drained to the low-water mark.
    virtual void resume_writing() {}

    Kind kind() const noexcept { return kind_; }

protected:
    explicit BaseProtocol(Kind kind) noexcept : kind_(kind) {}

private:
    Kind kind_;
};

/// What stream transports (TCP, Unix, pipes) talk to: Protocol or BufferedProtocol.
class StreamProtocol : public BaseProtocol {
public:
    /// The connection is made; `transport` is valid until connection_lost returns.
    virtual void connection_made(Transport& transport) { (void)transport; }
    /// The peer closed its writing side. Return true to keep the transport
    /// open for writing (the protocol closes it later), false to close it.
    virtual bool eof_received() { return false; }

protected:
    using BaseProtocol::BaseProtocol;
};

/// A stream protocol that receives data as views of the transport's buffer
/// (asyncio.Protocol).
class Protocol : public StreamProtocol {
public:
    Protocol() noexcept : StreamProtocol(Kind::stream) {}
    /// Some bytes arrived. `data` is never empty and is valid only during
    /// the call (it points into a read buffer the loop reuses): copy what
    /// must outlive it.
    virtual void data_received(std::string_view data) { (void)data; }
};

/// A stream protocol that supplies the memory the transport reads into:
/// no copy between the kernel and the protocol (asyncio.BufferedProtocol).
class BufferedProtocol : public StreamProtocol {
public:
    BufferedProtocol() noexcept : StreamProtocol(Kind::buffered) {}
    /// Where the next read should go. `size_hint` is 0 (no preference; asyncio
    /// passes -1). An empty span is a fatal error (CONTRACT 302).
    virtual std::span<char> get_buffer(std::size_t size_hint) = 0;
    /// The first `nbytes` bytes of the last buffer now hold new data.
    virtual void buffer_updated(std::size_t nbytes) = 0;
};

/// What a datagram transport calls (asyncio.DatagramProtocol).
class DatagramProtocol : public BaseProtocol {
public:
    DatagramProtocol() noexcept : BaseProtocol(Kind::datagram) {}
    /// The endpoint is ready; `transport` is valid until connection_lost returns.
    virtual void connection_made(DatagramTransport& transport) { (void)transport; }
    /// One datagram from `address`. `data` (possibly empty) is valid only
    /// during the call.
    virtual void datagram_received(std::string_view data, const SocketAddress& address) {
        (void)data;
        (void)address;
    }
    /// A send or receive failed, e.g. ECONNREFUSED after an ICMP port
    /// unreachable on a connected socket; the transport stays open (CONTRACT 284).
    virtual void error_received(std::error_code error) { (void)error; }
};

}  // namespace evloop
