// net/dns.hpp — name resolution: loop.getaddrinfo / loop.getnameinfo.
//
// getaddrinfo(3) blocks (it may read files, ask a DNS server, wait for a
// timeout), so the loop runs it on its default executor and completes a
// future on the loop's thread, as asyncio does (CONTRACT 111, 112). A host
// that is already a numeric IPv4/IPv6 literal with a socket type and a
// numeric port never leaves the loop's thread (asyncio's _ipaddr_info,
// CONTRACT 114, 115): create_connection("127.0.0.1", …) costs no thread hop.
// Layer: net. Read next: net/connection.cpp.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/event_loop.hpp"
#include "net/address.hpp"

namespace evloop {

/// getaddrinfo's hints (asyncio's family, type, proto, flags keywords).
struct AddrInfoOptions {
    int family = AF_UNSPEC;  ///< AF_INET, AF_INET6, AF_UNSPEC
    int type = 0;            ///< SOCK_STREAM, SOCK_DGRAM, 0 = any (no fast path)
    int protocol = 0;        ///< IPPROTO_TCP, IPPROTO_UDP, 0 = any
    int flags = 0;           ///< AI_PASSIVE, AI_NUMERICHOST, …
};

/// One result (asyncio's 5-tuple (family, type, proto, canonname, sockaddr)).
struct AddrInfo {
    int family = AF_UNSPEC;
    int type = 0;
    int protocol = 0;
    std::string canonname{};  ///< set only for the first entry with AI_CANONNAME
    SocketAddress address{};
};

/// getnameinfo's answer (asyncio's (host, port) pair).
struct NameInfo {
    std::string host{};
    std::string service{};
};

/// The category of getaddrinfo/getnameinfo failures: EAI_* values (negative
/// on glibc), message() is gai_strerror's text. EAI_SYSTEM is reported as
/// the errno it carries, in the system category.
const std::error_category& gai_category() noexcept;
std::error_code make_gai_error(int eai_code) noexcept;

/// The numeric fast path, usable without a loop: the result getaddrinfo would
/// give for a literal host, or nullopt when getaddrinfo must decide (a name,
/// a '%' scope, a service name, type 0, a family that does not match the
/// literal) (CONTRACT 114, 115). An empty host is not a literal; an empty
/// port means 0 and a port string of digits is numeric. Never blocks.
std::optional<std::vector<AddrInfo>> numeric_addrinfo(std::string_view host, std::string_view port,
                                                      const AddrInfoOptions& options);

/// Blocking getaddrinfo(3), as the executor runs it. host "" means none
/// (nullptr: with AI_PASSIVE the wildcard address, else loopback); port ""
/// means none. An empty list is returned as it is (callers decide).
Result<std::vector<AddrInfo>> getaddrinfo_blocking(std::string_view host, std::string_view port,
                                                   const AddrInfoOptions& options);
/// Blocking getnameinfo(3).
Result<NameInfo> getnameinfo_blocking(const SocketAddress& address, int flags);

}  // namespace evloop
