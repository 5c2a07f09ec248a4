// net/connection.hpp — create_connection's, create_unix_connection's and
// connect_accepted_socket's options, and the report of a failed connect.
//
// create_connection resolves host:port (net/dns.hpp), then tries the
// addresses: one after another by default, as asyncio does; or raced with
// happy eyeballs (RFC 8305) when happy_eyeballs_delay is set: the next
// attempt starts when the previous one fails or after the delay, the first
// to connect wins and the others are cancelled, their sockets closed
// (CONTRACT 126–137). The winner gets a SocketTransport.
// Layer: net. Read next: net/connection.cpp.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "net/address.hpp"
#include "net/stream.hpp"

namespace evloop {

/// One address that could not be connected, and why.
struct ConnectFailure {
    SocketAddress address{};
    std::error_code error{};
    /// "connect to 127.0.0.1:1 failed: Connection refused"
    std::string to_string() const;
};

/// create_connection's keyword arguments.
struct ConnectionOptions {
    int family = AF_UNSPEC;  ///< restrict resolution to AF_INET or AF_INET6
    int protocol = 0;        ///< getaddrinfo's proto
    int flags = 0;           ///< getaddrinfo's flags
    /// Bind to this local host:port first (CONTRACT 130–133); "" with a
    /// port binds only the port.
    std::optional<std::string> local_host{};
    int local_port = 0;
    /// Race the addresses (RFC 8305), starting the next one after this many
    /// seconds (RFC 8305 suggests 0.25). nullopt: one after another.
    std::optional<double> happy_eyeballs_delay{};
    /// Reorder the addresses by family (CONTRACT 134, 135): the first
    /// `interleave` − 1 of the first family, then one per family in turn.
    /// 0: 1 when happy_eyeballs_delay is set, else no reordering.
    int interleave = 0;
    /// An already connected stream socket instead of host and port
    /// (CONTRACT 122, 125); the transport takes ownership, also on failure.
    int sock = -1;
    /// If set, receives every address that failed and why, in the order
    /// tried (the error code alone cannot name them): the "clear error
    /// naming every address" asyncio puts in its OSError message.
    std::vector<ConnectFailure>* failures = nullptr;
};

/// create_unix_connection's keyword arguments.
struct UnixConnectionOptions {
    int sock = -1;  ///< an already connected AF_UNIX stream socket instead of a path
};

/// "Multiple exceptions: connect to …: …, connect to …: …" — asyncio's
/// message for `failures`, for logs.
std::string describe_failures(const std::vector<ConnectFailure>& failures);

}  // namespace evloop
