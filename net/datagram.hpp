// net/datagram.hpp — create_datagram_endpoint's options and results: the
// datagram protocol factory, the (transport, protocol) pair, and the
// keyword arguments (CONTRACT 316–325).
// Layer: net. Read next: net/datagram_transport.hpp.
#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "net/protocol.hpp"
#include "net/transport.hpp"

namespace evloop {

/// Makes the endpoint's protocol: any callable returning a std::shared_ptr
/// to a DatagramProtocol (or a subclass).
class DatagramProtocolFactory {
public:
    DatagramProtocolFactory() = default;
    template <class F, class R = std::invoke_result_t<F&>,
              class = std::enable_if_t<std::is_convertible_v<R, std::shared_ptr<DatagramProtocol>>>>
    DatagramProtocolFactory(F fn)  // NOLINT: implicit, so a lambda can be passed directly
        : fn_([fn = std::move(fn)]() mutable -> std::shared_ptr<DatagramProtocol> { return fn(); }) {}

    explicit operator bool() const noexcept { return static_cast<bool>(fn_); }
    std::shared_ptr<DatagramProtocol> operator()() const { return fn_ ? fn_() : nullptr; }

private:
    std::function<std::shared_ptr<DatagramProtocol>()> fn_;
};

/// What create_datagram_endpoint completes with (asyncio's (transport, protocol)).
struct DatagramEndpoint {
    std::shared_ptr<DatagramTransport> transport{};
    std::shared_ptr<DatagramProtocol> protocol{};

    /// The protocol as the type the factory made (unchecked, no RTTI).
    template <class P>
    P& protocol_as() const noexcept { return static_cast<P&>(*protocol); }
};

/// create_datagram_endpoint's keyword arguments. IP endpoints name hosts
/// and ports (resolved like create_connection's, numeric hosts at once);
/// AF_UNIX endpoints name paths ("\0name": Linux abstract namespace).
struct DatagramOptions {
    std::optional<std::string> local_host{};  ///< bind here ("" with a port: every interface)
    int local_port = 0;
    std::optional<std::string> remote_host{}; ///< connect here (CONTRACT 321)
    int remote_port = 0;
    std::optional<std::string> local_path{};  ///< AF_UNIX: bind here (a stale socket file is removed, CONTRACT 313)
    std::optional<std::string> remote_path{}; ///< AF_UNIX: connect here
    int family = AF_UNSPEC;                   ///< AF_INET, AF_INET6, AF_UNIX; needed when no address is given (317, 318)
    int protocol = 0;
    int flags = 0;
    bool reuse_port = false;       ///< SO_REUSEPORT (CONTRACT 323)
    bool allow_broadcast = false;  ///< SO_BROADCAST; remote becomes the default destination, unconnected (322)
    int sock = -1;                 ///< an existing datagram socket instead (ownership passes; CONTRACT 316)
};

}  // namespace evloop
