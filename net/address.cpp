// net/address.cpp — SocketAddress: parsing numeric literals and Unix paths,
// printing, comparing, and the getsockname/getpeername wrappers.
//
// Everything here is pure computation on a sockaddr_storage except
// if_nametoindex (a scope given by interface name) and the two wrappers;
// nothing resolves names, so the loop's thread may call any of it.
// Layer: net. Depends on core/result.hpp only. Read next: net/dns.cpp.
#include "net/address.hpp"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace evloop {
namespace {

std::error_code os_error(int value) { return {value, std::system_category()}; }

constexpr socklen_t kSunPathOffset = offsetof(sockaddr_un, sun_path);

// inet_pton wants a NUL-terminated string; a literal is short (the longest
// IPv6 form, with an embedded IPv4 tail, is 45 characters).
bool to_c_string(std::string_view text, char (&out)[INET6_ADDRSTRLEN]) {
    if (text.empty() || text.size() >= sizeof out) return false;
    if (text.find('\0') != std::string_view::npos) return false;
    std::memcpy(out, text.data(), text.size());
    out[text.size()] = '\0';
    return true;
}

// A scope is either an interface index ("%2") or an interface name ("%eth0").
Result<std::uint32_t> parse_scope(std::string_view scope) {
    if (scope.empty() || scope.size() >= IF_NAMESIZE) return os_error(EINVAL);
    bool numeric = true;
    for (char c : scope) numeric = numeric && c >= '0' && c <= '9';
    if (numeric) {
        std::uint64_t value = 0;
        for (char c : scope) {
            value = value * 10 + static_cast<std::uint64_t>(c - '0');
            if (value > UINT32_MAX) return os_error(EINVAL);
        }
        return static_cast<std::uint32_t>(value);
    }
    char name[IF_NAMESIZE] = {};
    std::memcpy(name, scope.data(), scope.size());
    unsigned index = ::if_nametoindex(name);
    if (index == 0) return os_error(ENXIO);
    return static_cast<std::uint32_t>(index);
}

}  // namespace

SocketAddress::SocketAddress() noexcept : storage_{} {}

SocketAddress::SocketAddress(const sockaddr* address, socklen_t size) noexcept : storage_{} {
    if (!address) return;
    if (size > capacity()) size = capacity();
    std::memcpy(&storage_, address, size);
    size_ = size;
}

Result<SocketAddress> SocketAddress::parse(std::string_view host, int port) {
    if (port < 0 || port > 65535) return os_error(EINVAL);
    // "[::1]" is how a URL or "host:port" text writes IPv6; only IPv6 may
    // be bracketed.
    bool bracketed = false;
    if (!host.empty() && host.front() == '[') {
        if (host.size() < 2 || host.back() != ']') return os_error(EINVAL);
        host = host.substr(1, host.size() - 2);
        bracketed = true;
    }
    std::string_view scope;
    bool scoped = false;
    if (std::size_t percent = host.find('%'); percent != std::string_view::npos) {
        scope = host.substr(percent + 1);
        host = host.substr(0, percent);
        scoped = true;
    }
    char text[INET6_ADDRSTRLEN];
    if (!to_c_string(host, text)) return os_error(EINVAL);

    SocketAddress result;
    if (!bracketed && !scoped) {
        auto* v4 = reinterpret_cast<sockaddr_in*>(&result.storage_);
        if (::inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons(static_cast<std::uint16_t>(port));
            result.size_ = sizeof(sockaddr_in);
            return result;
        }
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&result.storage_);
    if (::inet_pton(AF_INET6, text, &v6->sin6_addr) != 1) return os_error(EINVAL);
    if (scoped) {
        Result<std::uint32_t> index = parse_scope(scope);
        if (!index) return index.error();
        v6->sin6_scope_id = *index;
    }
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    result.size_ = sizeof(sockaddr_in6);
    return result;
}

Result<SocketAddress> SocketAddress::unix_path(std::string_view path) {
    if (path.empty()) return os_error(EINVAL);
    SocketAddress result;
    auto* un = reinterpret_cast<sockaddr_un*>(&result.storage_);
    un->sun_family = AF_UNIX;
    const bool abstract = path.front() == '\0';
    if (abstract) {
        // Linux: an abstract name is exactly the bytes the length covers,
        // NULs included, with no terminator.
        if (path.size() > sizeof un->sun_path) return os_error(ENAMETOOLONG);
        std::memcpy(un->sun_path, path.data(), path.size());
        result.size_ = kSunPathOffset + static_cast<socklen_t>(path.size());
        return result;
    }
    if (path.find('\0') != std::string_view::npos) return os_error(EINVAL);
    // The terminator must fit too, or bind() would read past sun_path.
    if (path.size() >= sizeof un->sun_path) return os_error(ENAMETOOLONG);
    std::memcpy(un->sun_path, path.data(), path.size());
    result.size_ = kSunPathOffset + static_cast<socklen_t>(path.size()) + 1;
    return result;
}

int SocketAddress::port() const noexcept {
    if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    return 0;
}

std::string SocketAddress::host() const {
    char text[INET6_ADDRSTRLEN] = {};
    switch (family()) {
    case AF_INET:
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text, sizeof text);
        return text;
    case AF_INET6:
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, text, sizeof text);
        return text;
    case AF_UNIX: {
        if (size_ <= kSunPathOffset) return {};  // unnamed (socketpair, unbound client)
        const char* path = reinterpret_cast<const sockaddr_un*>(&storage_)->sun_path;
        std::size_t room = size_ - kSunPathOffset;
        if (path[0] == '\0') return std::string(path, room);
        // The kernel may count the terminator, or not (a path that fills
        // sun_path has none).
        return std::string(path, ::strnlen(path, room));
    }
    default:
        return {};
    }
}

std::uint32_t SocketAddress::scope_id() const noexcept {
    if (family() != AF_INET6) return 0;
    return reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_scope_id;
}

std::string SocketAddress::to_string() const {
    if (empty()) return "<empty>";
    switch (family()) {
    case AF_INET:
        return host() + ':' + std::to_string(port());
    case AF_INET6: {
        std::string text = '[' + host();
        if (scope_id() != 0) text += '%' + std::to_string(scope_id());
        return text + "]:" + std::to_string(port());
    }
    case AF_UNIX: {
        std::string path = host();
        if (path.empty()) return "<unnamed>";
        // As /proc/net/unix and ss(8) print abstract names: NULs as '@'.
        if (path[0] == '\0')
            for (char& c : path)
                if (c == '\0') c = '@';
        return path;
    }
    default:
        return "<family " + std::to_string(family()) + '>';
    }
}

void SocketAddress::set_size(socklen_t size) noexcept { size_ = size > capacity() ? capacity() : size; }

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
    // Every constructor zero-fills the storage first, so the padding inside
    // the meaningful bytes (sin_zero) compares equal too.
    return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, a.size_) == 0;
}

Result<SocketAddress> local_address(int fd) {
    SocketAddress address;
    socklen_t size = SocketAddress::capacity();
    if (::getsockname(fd, address.data(), &size) != 0) return os_error(errno);
    address.set_size(size);
    return address;
}

Result<SocketAddress> peer_address(int fd) {
    SocketAddress address;
    socklen_t size = SocketAddress::capacity();
    if (::getpeername(fd, address.data(), &size) != 0) return os_error(errno);
    address.set_size(size);
    return address;
}

}  // namespace evloop
