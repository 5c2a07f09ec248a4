// net/datagram_endpoint.cpp — loop.create_datagram_endpoint: check the
// arguments, resolve the local and remote addresses, pair them by family,
// open, bind and connect one socket, and wrap it in a
// DatagramSocketTransport whose connection_made has run (CONTRACT 313,
// 316–325).
//
// How each kind of failure arrives, as in net/create_server.cpp:
//  - misuse (asyncio's ValueError/TypeError: sock with address options, no
//    address and no family, half an address, paths with an IP family, no
//    family both addresses share) is refused with asyncio's message
//    (detail::refuse: evloop::Error thrown, or logged and put in the future);
//  - everything the OS or the resolver says is the future's error; when
//    every candidate fails, the first failure (CONTRACT 324).
// C++ has no None: an address is "given" when its host (or path) is set; a
// local port alone means every interface (AI_PASSIVE), as create_connection's
// local_port does. Paths make an AF_UNIX endpoint (family may stay AF_UNSPEC).
// options.sock is ours from the call on and closed on any failure.
// The work runs in a task, so the returned future is that task: cancelling
// it closes the transport if it exists (asyncio's `transport.close(); raise`).
// Layer: net. Read next: net/datagram_transport.cpp.
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/log.hpp"
#include "core/task.hpp"
#include "net/datagram.hpp"
#include "net/datagram_transport.hpp"
#include "net/dns.hpp"

namespace evloop {

namespace {

using EndpointFuture = Future<DatagramEndpoint>;

EndpointFuture refused(EventLoop& loop, errc code, const std::string& what) {
    EndpointFuture future(loop);
    (void)future.set_error(detail::refuse(code, what));  // throws in exception builds
    return future;
}

// One way to open the endpoint: a (family, protocol) with its local and
// remote address (either may be empty: not given).
struct Candidate {
    int family = AF_UNSPEC;
    int protocol = 0;
    SocketAddress local{};
    SocketAddress remote{};
};

bool ip_address_given(const DatagramOptions& o) {
    return o.local_host || o.local_port != 0 || o.remote_host || o.remote_port != 0;
}
bool path_given(const DatagramOptions& o) { return o.local_path || o.remote_path; }

// asyncio's "(local_addr=…, family=2, …)" list of what may not go with sock=.
std::string sock_modifiers(const DatagramOptions& o) {
    std::string text;
    auto add = [&](const std::string& item) { text += (text.empty() ? "" : ", ") + item; };
    if (o.local_host || o.local_port != 0)
        add("local_addr=('" + o.local_host.value_or("") + "', " + std::to_string(o.local_port) + ")");
    if (o.remote_host || o.remote_port != 0)
        add("remote_addr=('" + o.remote_host.value_or("") + "', " + std::to_string(o.remote_port) + ")");
    if (o.local_path) add("local_addr='" + *o.local_path + "'");
    if (o.remote_path) add("remote_addr='" + *o.remote_path + "'");
    if (o.family != AF_UNSPEC) add("family=" + std::to_string(o.family));
    if (o.protocol != 0) add("proto=" + std::to_string(o.protocol));
    if (o.flags != 0) add("flags=" + std::to_string(o.flags));
    if (o.reuse_port) add("reuse_port=True");
    if (o.allow_broadcast) add("allow_broadcast=True");
    return text;
}

// The checks asyncio makes before any await (CONTRACT 313, 316, 317, 319);
// an empty string when the options are fine.
std::string misuse(const DatagramOptions& o) {
    if (o.sock >= 0) {
        std::string problems = sock_modifiers(o);
        if (!problems.empty())
            return "socket modifier keyword arguments can not be used when sock is specified. (" + problems + ")";
        return {};
    }
    if (!ip_address_given(o) && !path_given(o) && o.family == AF_UNSPEC) return "unexpected address family";
    if (path_given(o) || o.family == AF_UNIX) {
        if (ip_address_given(o)) return "string is expected";  // AF_UNIX addresses are paths
        if (o.family != AF_UNSPEC && o.family != AF_UNIX) return "2-tuple is expected";
        return {};
    }
    // A remote port without a host is half an address (asyncio: not a 2-tuple).
    if (o.remote_port != 0 && !o.remote_host) return "2-tuple is expected";
    if (o.local_port < 0 || o.local_port > 65535 || o.remote_port < 0 || o.remote_port > 65535)
        return "2-tuple is expected (port must be 0-65535)";
    return {};
}

// CONTRACT 313 (as 310 for servers): a socket file a previous run left at
// the local path is removed; anything else there is left to make bind fail.
void clear_stale_socket(const std::string& path) {
    if (path.empty() || path[0] == '\0') return;  // abstract names live in no filesystem
    struct stat info {};
    if (::stat(path.c_str(), &info) == 0) {
        if (S_ISSOCK(info.st_mode) && ::unlink(path.c_str()) == 0) return;
        if (!S_ISSOCK(info.st_mode)) return;
    } else if (errno == ENOENT) {
        return;
    }
    // asyncio logs this and lets bind() decide (the folder may allow only creating).
    log(LogLevel::error, "create_datagram_endpoint: unable to check or remove stale UNIX socket %s: %s",
        path.c_str(), last_error().message().c_str());
}

// CONTRACT 320: candidates keyed by (family, protocol) in the order they
// first appear, locals first (asyncio's insertion-ordered dict). asyncio
// keeps the last address of a key; the first is getaddrinfo's preferred
// one (RFC 6724 order), so we keep that.
std::vector<Candidate> pair_by_family(const std::vector<AddrInfo>* locals, const std::vector<AddrInfo>* remotes) {
    std::vector<Candidate> all;
    auto add = [&](const AddrInfo& info, bool local) {
        Candidate* found = nullptr;
        for (Candidate& c : all)
            if (c.family == info.family && c.protocol == info.protocol) found = &c;
        if (!found) found = &all.emplace_back(Candidate{info.family, info.protocol});
        SocketAddress& slot = local ? found->local : found->remote;
        if (slot.empty()) slot = info.address;
    };
    if (locals)
        for (const AddrInfo& info : *locals) add(info, true);
    if (remotes)
        for (const AddrInfo& info : *remotes) add(info, false);
    std::vector<Candidate> pairs;  // each given address needs a partner of the same key
    for (Candidate& c : all)
        if (!(locals && c.local.empty()) && !(remotes && c.remote.empty())) pairs.push_back(std::move(c));
    return pairs;
}

// One candidate's socket: created, options set, bound, connected
// (CONTRACT 321–324); any failure closes it (the Fd) and says why.
Result<Fd> open_candidate(const Candidate& c, const DatagramOptions& o) {
    Fd sock(::socket(c.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, c.protocol));
    if (!sock) return last_error();
    int one = 1;
    // SO_REUSEADDR never: on UDP it lets another process steal the port's
    // datagrams (asyncio removed reuse_address for that reason, CONTRACT 323).
    if (o.reuse_port && ::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) return last_error();
    if (o.allow_broadcast && ::setsockopt(sock.get(), SOL_SOCKET, SO_BROADCAST, &one, sizeof one) != 0)
        return last_error();
    if (!c.local.empty() && ::bind(sock.get(), c.local.data(), c.local.size()) != 0) return last_error();
    // A datagram connect is immediate: it only records the peer (and filters
    // what arrives). allow_broadcast keeps the socket unconnected (322).
    if (!c.remote.empty() && !o.allow_broadcast &&
        retry_eintr([&] { return ::connect(sock.get(), c.remote.data(), c.remote.size()); }) != 0)
        return last_error();
    return sock;
}

// The common end: the protocol, the transport, and its waiter (connection_made ran).
Task<DatagramEndpoint> wrap_socket(EventLoop* loop, DatagramProtocolFactory factory, Fd sock,
                                   SocketAddress default_destination) {
    std::shared_ptr<DatagramProtocol> protocol = factory();
    if (!protocol) co_return make_error_code(errc::invalid_argument);  // the factory made no protocol
    Future<void> waiter(*loop);
    std::shared_ptr<DatagramSocketTransport> transport =
        DatagramSocketTransport::make(*loop, std::move(sock), protocol, &waiter, std::move(default_destination));
    Result<void> ready = co_await waiter;
    if (!ready) {
        transport->close();  // cancelled meanwhile (asyncio: transport.close(); raise)
        co_return ready.error();
    }
    co_return DatagramEndpoint{std::move(transport), std::move(protocol)};
}

// Resolves and opens an endpoint from addresses (not from sock=).
Task<DatagramEndpoint> open_endpoint(EventLoop* loop, DatagramProtocolFactory factory, DatagramOptions o) {
    std::vector<Candidate> candidates;
    if (path_given(o) || o.family == AF_UNIX) {
        // One candidate, as asyncio's addr_pairs_info for AF_UNIX.
        Candidate c{AF_UNIX, o.protocol};
        for (auto [path, slot] : {std::pair{&o.local_path, &c.local}, std::pair{&o.remote_path, &c.remote}}) {
            if (!*path) continue;
            Result<SocketAddress> address = SocketAddress::unix_path(**path);  // ENAMETOOLONG, EINVAL
            if (!address) co_return address.error();
            *slot = *address;
        }
        if (o.local_path) clear_stale_socket(*o.local_path);
        candidates.push_back(std::move(c));
    } else if (!ip_address_given(o)) {
        candidates.push_back(Candidate{o.family, o.protocol});  // unbound, unconnected (CONTRACT 318)
    } else {
        AddrInfoOptions hints{.family = o.family, .type = SOCK_DGRAM, .protocol = o.protocol, .flags = o.flags};
        std::optional<Future<std::vector<AddrInfo>>> local_lookup, remote_lookup;
        if (o.local_host || o.local_port != 0) {
            AddrInfoOptions local_hints = hints;
            if (o.local_host.value_or("").empty()) local_hints.flags |= AI_PASSIVE;  // every interface
            local_lookup = loop->getaddrinfo(o.local_host.value_or(""), o.local_port, local_hints);
        }
        if (o.remote_host) remote_lookup = loop->getaddrinfo(*o.remote_host, o.remote_port, hints);
        // Both lookups run side by side; the answers are taken in order.
        std::optional<std::vector<AddrInfo>> locals, remotes;
        for (auto [lookup, into] : {std::pair{&local_lookup, &locals}, std::pair{&remote_lookup, &remotes}}) {
            if (!*lookup) continue;
            Result<std::vector<AddrInfo>> answer = co_await **lookup;
            if (!answer) co_return answer.error();  // resolver errors unchanged (CONTRACT 113)
            if (answer->empty()) co_return make_error_code(errc::getaddrinfo_empty);
            *into = std::move(*answer);
        }
        candidates = pair_by_family(locals ? &*locals : nullptr, remotes ? &*remotes : nullptr);
        if (candidates.empty())
            co_return detail::refuse(errc::invalid_argument, "can not get address information");  // CONTRACT 320
    }
    // Each candidate in turn; all failing gives the first failure (CONTRACT 324).
    std::error_code first_error;
    for (const Candidate& c : candidates) {
        Result<Fd> sock = open_candidate(c, o);
        if (!sock) {
            if (!first_error) first_error = sock.error();
            if (loop->get_debug())
                log(LogLevel::debug, "create_datagram_endpoint: %s -> %s failed: %s", c.local.to_string().c_str(),
                    c.remote.to_string().c_str(), sock.error().message().c_str());
            continue;
        }
        // A connected socket sends to its peer; an allow_broadcast one keeps
        // remote_addr as its default destination (CONTRACT 321, 322).
        SocketAddress destination = o.allow_broadcast ? c.remote : SocketAddress();
        co_return co_await wrap_socket(loop, std::move(factory), std::move(*sock), std::move(destination));
    }
    co_return first_error;
}

}  // namespace

Future<DatagramEndpoint> EventLoop::create_datagram_endpoint(DatagramProtocolFactory factory,
                                                            const DatagramOptions& options) {
    Fd sock(options.sock);  // ours now (if given), closed on every failure
    if (is_closed()) return refused(*this, errc::loop_closed, "create_datagram_endpoint");
    if (std::string problem = misuse(options); !problem.empty())
        return refused(*this, errc::invalid_argument, problem);
    if (sock) {
        int type = 0;
        socklen_t size = sizeof type;
        if (::getsockopt(sock.get(), SOL_SOCKET, SO_TYPE, &type, &size) != 0) {
            EndpointFuture future(*this);
            (void)future.set_error(last_error());  // EBADF, ENOTSOCK
            return future;
        }
        if (type != SOCK_DGRAM)  // CONTRACT 316
            return refused(*this, errc::invalid_argument,
                           "A datagram socket was expected, got type=" + std::to_string(type));
        // Always non-blocking (asyncio's sock.setblocking(False)), and not
        // leaked into children.
        if (std::error_code ec = set_nonblocking(sock.get())) {
            EndpointFuture future(*this);
            (void)future.set_error(ec);
            return future;
        }
        (void)set_cloexec(sock.get());
        return create_task(wrap_socket(this, std::move(factory), std::move(sock), SocketAddress()));
    }
    return create_task(open_endpoint(this, std::move(factory), options));
}

}  // namespace evloop
