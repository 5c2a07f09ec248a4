// net/dns.cpp — loop.getaddrinfo / loop.getnameinfo, the numeric fast path,
// and the blocking resolver calls the default executor runs.
//
// A lookup that needs getaddrinfo(3) goes to the default executor through
// run_in_executor, whose future carries a Result (the resolver's error is a
// value there, not a failure of the work); a done callback on the loop's
// thread moves that answer into the future the caller holds. Resolver
// failures keep their EAI_* code in gai_category() (CONTRACT 113), as
// socket.gaierror keeps its errno.
// Layer: net. Depends on core/event_loop.hpp (run_in_executor), core/log.hpp,
// net/address.hpp. Read next: net/connection.cpp, which resolves through here.
#include "net/dns.hpp"

#include <netinet/in.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <utility>

#include "core/log.hpp"
#include "platform/clock.hpp"

namespace evloop {
namespace {

class GaiCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "getaddrinfo"; }
    std::string message(int code) const override { return ::gai_strerror(code); }
};

// A port string as asyncio's int(port) takes it, or nullopt for a service
// name (getaddrinfo must look it up) or a number no port can be.
std::optional<int> numeric_port(std::string_view port) {
    if (port.empty()) return 0;  // asyncio: '' and None mean port 0 (CONTRACT 114)
    int value = 0;
    for (char c : port) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
        if (value > 65535) return std::nullopt;
    }
    return value;
}

// asyncio's "host:port, family=…, type=…" as _getaddrinfo_debug writes it.
std::string describe_query(std::string_view host, std::string_view port, const AddrInfoOptions& options) {
    std::string text = std::string(host) + ':' + std::string(port);
    if (options.family) text += ", family=" + std::to_string(options.family);
    if (options.type) text += ", type=" + std::to_string(options.type);
    if (options.protocol) text += ", proto=" + std::to_string(options.protocol);
    if (options.flags) text += ", flags=" + std::to_string(options.flags);
    return text;
}

std::string describe_answer(const Result<std::vector<AddrInfo>>& answer) {
    if (!answer) return "error: " + answer.error().message();
    std::string text = "[";
    for (const AddrInfo& info : *answer) {
        if (text.size() > 1) text += ", ";
        text += info.address.to_string();
    }
    return text + ']';
}

// Runs on a pool thread in debug mode: the lookup, timed, logged as asyncio
// does (CONTRACT 120). The log sink is thread-safe (core/log.hpp).
Result<std::vector<AddrInfo>> getaddrinfo_debug(const std::string& host, const std::string& port,
                                                const AddrInfoOptions& options, double slow_seconds) {
    std::string query = describe_query(host, port, options);
    log(LogLevel::debug, "Get address info %s", query.c_str());
    std::int64_t start = monotonic_ns();
    Result<std::vector<AddrInfo>> answer = getaddrinfo_blocking(host, port, options);
    double took = static_cast<double>(monotonic_ns() - start) / 1e9;
    log(took >= slow_seconds ? LogLevel::info : LogLevel::debug, "Getting address info %s took %.3fms: %s",
        query.c_str(), took * 1e3, describe_answer(answer).c_str());
    return answer;
}

// Moves the executor's answer into the caller's future once it arrives.
// `future` may be cancelled (or completed by its holder) meanwhile: the
// answer is then dropped. The work is not cancelled with it: cancelling it
// would need the two futures to reference each other, a cycle nothing
// breaks if the loop closes with the lookup still running.
template <class T>
void complete_from(Future<Result<T>>& work, Future<T> future) {
    work.add_done_callback([future](Future<Result<T>>& done) mutable {
        if (future.done()) return;
        if (done.cancelled()) {
            future.cancel(done.cancel_message());
            return;
        }
        // error(), not result(): an exception from the pool (bad_alloc) must
        // not escape into the loop; its code is enough here.
        if (std::error_code ec = done.error()) {
            (void)future.set_error(ec);
            return;
        }
        Result<Result<T>> outcome = done.take_result();
        if (!*outcome) {
            (void)future.set_error(outcome->error());
            return;
        }
        (void)future.set_result(std::move(**outcome));
    });
}

}  // namespace

const std::error_category& gai_category() noexcept {
    static const GaiCategory category;
    return category;
}

std::error_code make_gai_error(int eai_code) noexcept {
    // EAI_SYSTEM means "look at errno": the errno is the useful code.
    if (eai_code == EAI_SYSTEM) return {errno, std::system_category()};
    return {eai_code, gai_category()};
}

std::optional<std::vector<AddrInfo>> numeric_addrinfo(std::string_view host, std::string_view port,
                                                      const AddrInfoOptions& options) {
    // asyncio's _ipaddr_info: the socket type implies the protocol; without
    // a type getaddrinfo would return one entry per type (CONTRACT 115).
    int protocol = 0;
    if (options.type == SOCK_STREAM)
        protocol = IPPROTO_TCP;
    else if (options.type == SOCK_DGRAM)
        protocol = IPPROTO_UDP;
    else
        return std::nullopt;
    if (options.protocol != 0 && options.protocol != protocol) return std::nullopt;
    std::optional<int> port_number = numeric_port(port);
    if (!port_number) return std::nullopt;
    // inet_pton knows no zone index ("fe80::1%eth0") and no brackets: those
    // are getaddrinfo's to interpret (CONTRACT 117), though parse() takes them.
    if (host.empty() || host.front() == '[' || host.find('%') != std::string_view::npos) return std::nullopt;
    Result<SocketAddress> address = SocketAddress::parse(host, *port_number);
    if (!address) return std::nullopt;
    if (options.family != AF_UNSPEC && options.family != address->family()) return std::nullopt;
    std::vector<AddrInfo> result;
    result.push_back(AddrInfo{address->family(), options.type, protocol, {}, *address});
    return result;
}

Result<std::vector<AddrInfo>> getaddrinfo_blocking(std::string_view host, std::string_view port,
                                                   const AddrInfoOptions& options) {
    addrinfo hints{};
    hints.ai_family = options.family;
    hints.ai_socktype = options.type;
    hints.ai_protocol = options.protocol;
    hints.ai_flags = options.flags;
    // The views need not be NUL-terminated; "" means "none" (nullptr).
    std::string node(host);
    std::string service(port);
    addrinfo* list = nullptr;
    int rc = ::getaddrinfo(host.empty() ? nullptr : node.c_str(), port.empty() ? nullptr : service.c_str(), &hints,
                           &list);
    if (rc != 0) return make_gai_error(rc);
    std::vector<AddrInfo> result;
    for (const addrinfo* entry = list; entry; entry = entry->ai_next) {
        AddrInfo info;
        info.family = entry->ai_family;
        info.type = entry->ai_socktype;
        info.protocol = entry->ai_protocol;
        if (entry->ai_canonname) info.canonname = entry->ai_canonname;
        info.address = SocketAddress(entry->ai_addr, entry->ai_addrlen);
        result.push_back(std::move(info));
    }
    ::freeaddrinfo(list);
    return result;
}

Result<NameInfo> getnameinfo_blocking(const SocketAddress& address, int flags) {
    // NI_MAXHOST and NI_MAXSERV, which glibc hides behind _DEFAULT_SOURCE.
    char host[1025];
    char service[32];
    int rc = ::getnameinfo(address.data(), address.size(), host, sizeof host, service, sizeof service, flags);
    if (rc != 0) return make_gai_error(rc);
    return NameInfo{host, service};
}

Future<std::vector<AddrInfo>> EventLoop::getaddrinfo(std::string_view host, std::string_view port,
                                                     const AddrInfoOptions& options) {
    Future<std::vector<AddrInfo>> future(*this);
    // Checked before the fast path, so a closed loop refuses every call alike.
    if (is_closed()) {
        (void)future.set_error(detail::refuse(errc::loop_closed, "getaddrinfo"));
        return future;
    }
    if (std::optional<std::vector<AddrInfo>> numeric = numeric_addrinfo(host, port, options)) {
        (void)future.set_result(std::move(*numeric));
        return future;
    }
    // The pool thread gets copies: the caller's views may die before it runs.
    auto work = run_in_executor(nullptr, [host = std::string(host), port = std::string(port), options,
                                          debug = get_debug(), slow = slow_callback_duration()] {
        if (debug) return getaddrinfo_debug(host, port, options, slow);
        return getaddrinfo_blocking(host, port, options);
    });
    complete_from(work, future);
    return future;
}

Future<std::vector<AddrInfo>> EventLoop::getaddrinfo(std::string_view host, std::string_view port) {
    return getaddrinfo(host, port, AddrInfoOptions{});
}

Future<std::vector<AddrInfo>> EventLoop::getaddrinfo(std::string_view host, int port,
                                                     const AddrInfoOptions& options) {
    if (port < 0 || port > 65535) {
        // A bad argument, not a refused call: the future says so (no throw).
        Future<std::vector<AddrInfo>> future(*this);
        (void)future.set_error(make_error_code(errc::invalid_argument));
        return future;
    }
    return getaddrinfo(host, std::to_string(port), options);
}

Future<NameInfo> EventLoop::getnameinfo(const SocketAddress& address, int flags) {
    Future<NameInfo> future(*this);
    if (is_closed()) {
        (void)future.set_error(detail::refuse(errc::loop_closed, "getnameinfo"));
        return future;
    }
    auto work = run_in_executor(nullptr, [address, flags] { return getnameinfo_blocking(address, flags); });
    complete_from(work, future);
    return future;
}

}  // namespace evloop
