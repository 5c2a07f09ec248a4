// net/address.hpp — SocketAddress: one socket address of any family (IPv4,
// IPv6 with scope, Unix path or Linux abstract name), stored by value.
//
// asyncio passes addresses as tuples ('127.0.0.1', 80) and strings; C++ gets
// one value type that owns a sockaddr_storage, so an address can be copied,
// compared, printed and handed to bind/connect without casts at the call
// site. parse() is the numeric fast path DNS uses (CONTRACT 114): it never
// blocks and never resolves names.
// Layer: net. Read next: net/dns.hpp.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace evloop {

class SocketAddress {
public:
    /// The empty address (family AF_UNSPEC, size 0).
    SocketAddress() noexcept;
    /// A copy of what the kernel gave (accept, getsockname, getaddrinfo);
    /// `size` is clamped to sizeof(sockaddr_storage).
    SocketAddress(const sockaddr* address, socklen_t size) noexcept;

    /// A numeric IPv4 ("127.0.0.1") or IPv6 ("::1", "fe80::1%eth0", "[::1]")
    /// literal and a port. Names are not resolved: EINVAL for anything that
    /// is not a literal (use getaddrinfo), EINVAL for a port outside 0–65535,
    /// ENXIO for an unknown IPv6 scope (interface) name.
    static Result<SocketAddress> parse(std::string_view host, int port);
    /// A Unix socket path. A leading '\0' names the Linux abstract namespace.
    /// ENAMETOOLONG when it does not fit sun_path (107 bytes on Linux), EINVAL
    /// when empty or (for a filesystem path) containing a NUL.
    static Result<SocketAddress> unix_path(std::string_view path);

    /// AF_INET, AF_INET6, AF_UNIX or AF_UNSPEC when empty.
    int family() const noexcept { return storage_.ss_family; }
    bool empty() const noexcept { return size_ == 0; }
    /// The port of an IP address (host order); 0 for other families.
    int port() const noexcept;
    /// The numeric host of an IP address without brackets or scope
    /// ("::1"); the path of a Unix address ("\0name" for abstract names,
    /// "" for an unnamed socket).
    std::string host() const;
    /// The IPv6 scope id (interface index); 0 otherwise.
    std::uint32_t scope_id() const noexcept;
    /// "127.0.0.1:80", "[::1]:80", "[fe80::1%2]:80", "/run/app.sock",
    /// "@abstract" (Linux's notation), "<unnamed>" or "<empty>".
    std::string to_string() const;

    const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
    socklen_t size() const noexcept { return size_; }
    /// For calls that fill data() (accept, recvfrom): the room there is.
    static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_storage); }
    void set_size(socklen_t size) noexcept;

    friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

private:
    sockaddr_storage storage_;
    socklen_t size_ = 0;
};

/// The local address of a socket (getsockname), or the error.
Result<SocketAddress> local_address(int fd);
/// The peer address of a connected socket (getpeername), or the error.
Result<SocketAddress> peer_address(int fd);

}  // namespace evloop
