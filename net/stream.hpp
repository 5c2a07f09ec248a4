// net/stream.hpp — the small types every stream call shares: the protocol
// factory a connection or server calls, and the (transport, protocol) pair
// create_connection gives back.
// Layer: net. Read next: net/socket_transport.hpp.
#pragma once

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "net/protocol.hpp"
#include "net/transport.hpp"

namespace evloop {

/// Makes one protocol per connection: any callable returning a
/// std::shared_ptr to a Protocol or BufferedProtocol (or a subclass), e.g.
/// `[] { return std::make_shared<Echo>(); }`. A server calls it once per
/// accepted connection; create_connection once, after the socket connected
/// (CONTRACT 138). Returning nullptr fails that connection.
class ProtocolFactory {
public:
    ProtocolFactory() = default;
    template <class F, class R = std::invoke_result_t<F&>,
              class = std::enable_if_t<std::is_convertible_v<R, std::shared_ptr<StreamProtocol>>>>
    ProtocolFactory(F fn)  // NOLINT: implicit, so a lambda can be passed directly
        : fn_([fn = std::move(fn)]() mutable -> std::shared_ptr<StreamProtocol> { return fn(); }) {}

    explicit operator bool() const noexcept { return static_cast<bool>(fn_); }
    std::shared_ptr<StreamProtocol> operator()() const { return fn_ ? fn_() : nullptr; }

private:
    // std::function, not Callback: a server's factory is called many times
    // and the server may be copied into several accept loops.
    std::function<std::shared_ptr<StreamProtocol>()> fn_;
};

/// What create_connection, create_unix_connection and
/// connect_accepted_socket complete with (asyncio's (transport, protocol)).
/// Holding it keeps both objects alive, also after the connection is lost.
struct Connection {
    std::shared_ptr<Transport> transport{};
    std::shared_ptr<StreamProtocol> protocol{};

    /// The protocol as the type the factory made (unchecked, no RTTI).
    template <class P>
    P& protocol_as() const noexcept { return static_cast<P&>(*protocol); }
};

}  // namespace evloop
