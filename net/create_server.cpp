// net/create_server.cpp — loop.create_server and loop.create_unix_server:
// check the arguments, resolve, create and bind the listening sockets, hand
// them to a Server (net/server.cpp) and start serving (CONTRACT 143–159,
// 309–312).
//
// How each kind of failure arrives, as in the rest of the loop:
//  - argument misuse (asyncio's ValueError/TypeError: host/port together with
//    sock, neither of them, a sock of the wrong type) is refused
//    (detail::refuse: evloop::Error thrown, or logged and put in the future);
//  - everything the OS or the resolver says (EADDRINUSE, ENAMETOOLONG, an
//    unknown name), and a port outside 0–65535 (asyncio's OverflowError
//    comes from inside getaddrinfo too), is the future's error.
// C++ has no None: port -1 means "no port" (asyncio's port=None), so
// create_server(f, "", 0) is every interface on an ephemeral port while
// create_server(f, "", -1) without a sock is the "neither" misuse. An empty
// host list means every interface, as "" does.
// Names are resolved by loop.getaddrinfo (a thread hop; numeric hosts answer
// at once) inside a task, so the returned future is that task: cancelling it
// stops the work and closes whatever was bound.
// Layer: net. Read next: net/server.cpp.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "core/log.hpp"
#include "core/task.hpp"
#include "net/dns.hpp"
#include "net/server.hpp"

namespace evloop {

namespace {

using ServerFuture = Future<std::shared_ptr<Server>>;
constexpr int kNoPort = -1;  // asyncio's port=None

ServerFuture completed(EventLoop& loop, Result<std::shared_ptr<Server>> outcome) {
    ServerFuture future(loop);
    if (outcome)
        (void)future.set_result(std::move(*outcome));
    else
        (void)future.set_error(outcome.error());
    return future;
}

ServerFuture refused(EventLoop& loop, errc code, const char* what) {
    ServerFuture future(loop);
    (void)future.set_error(detail::refuse(code, what));  // throws in exception builds
    return future;
}

int socket_option(int fd, int level, int name) {
    int value = -1;
    socklen_t size = sizeof value;
    if (::getsockopt(fd, level, name, &value, &size) < 0) return -1;
    return value;
}

// The end every path shares: a Server over bound sockets, serving at once
// unless told otherwise (CONTRACT 154, 155).
Result<std::shared_ptr<Server>> make_server(EventLoop& loop, ProtocolFactory factory, std::vector<Fd> sockets,
                                            int backlog, bool keep_alive, bool start, std::string unix_path = {}) {
    std::shared_ptr<Server> server =
        Server::make(loop, std::move(factory), std::move(sockets), backlog, keep_alive, std::move(unix_path));
    if (start) {
        if (std::error_code ec = server->start_serving()) {
            server->close();  // closes the sockets, unlinks the path
            return ec;
        }
    }
    return server;
}

// One listening socket for `info`, bound; or why not, and whether that
// address may be skipped.
struct Bound {
    Fd sock;
    std::error_code error{};
    bool skip = false;  // a family or address this host cannot use
};

Bound bind_one(const AddrInfo& info, const ServerOptions& options) {
    Bound out;
    out.sock.reset(::socket(info.family, info.type | SOCK_NONBLOCK | SOCK_CLOEXEC, info.protocol));
    if (!out.sock) {
        // asyncio assumes a family/type/protocol combination this host
        // lacks, and moves on to the next address.
        out.error = last_error();
        out.skip = true;
        return out;
    }
    int fd = out.sock.get();
    int one = 1;
    // On by default, as asyncio on POSIX (CONTRACT 146): a restarted server
    // must not wait for its old connections' TIME_WAIT.
    if (options.reuse_address.value_or(true)) (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // CONTRACT 147, 148 (asyncio's ValueError "reuse_port not supported" is
    // the OS's ENOPROTOOPT here).
    if (options.reuse_port && (info.family == AF_INET || info.family == AF_INET6) &&
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        out.error = last_error();
        return out;
    }
    // Linux listens on both families from one AF_INET6 socket by default;
    // asyncio turns that off and binds one socket per family (CONTRACT 150).
    if (info.family == AF_INET6) (void)::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, info.address.data(), info.address.size()) < 0) {
        out.error = last_error();
        // The address is not configured here (bpo-30945): skipped (CONTRACT 151).
        out.skip = out.error.value() == EADDRNOTAVAIL;
    }
    return out;
}

// Binds every address (CONTRACT 151, 152). A skippable failure moves on;
// any other closes what was bound so far and is the answer. Nothing bound:
// the last failure (asyncio: "could not bind on any address out of …").
Result<std::vector<Fd>> bind_all(const std::vector<AddrInfo>& infos, const ServerOptions& options, bool debug) {
    std::vector<Fd> sockets;
    std::error_code last;
    for (const AddrInfo& info : infos) {
        Bound bound = bind_one(info, options);
        if (!bound.error) {
            sockets.push_back(std::move(bound.sock));
            continue;
        }
        last = bound.error;
        // The future's error_code cannot name the address; asyncio's
        // message does, so the log says it.
        std::string address = info.address.to_string();
        if (bound.skip) {
            if (debug)
                log(LogLevel::warning, "create_server: error while attempting to bind on address %s: %s",
                    address.c_str(), last.message().c_str());
            continue;
        }
        log(LogLevel::error, "create_server: error while attempting to bind on address %s: %s", address.c_str(),
            last.message().c_str());
        return last;  // `sockets` closes every socket bound so far
    }
    if (sockets.empty()) return last ? last : make_error_code(errc::getaddrinfo_empty);
    return sockets;
}

bool same_endpoint(const AddrInfo& a, const AddrInfo& b) {
    return a.family == b.family && a.type == b.type && a.protocol == b.protocol && a.address == b.address;
}

Task<std::shared_ptr<Server>> serve_on_hosts(EventLoop* loop, ProtocolFactory factory, std::vector<std::string> hosts,
                                             int port, ServerOptions options) {
    AddrInfoOptions hints{.family = options.family, .type = SOCK_STREAM, .protocol = 0, .flags = options.flags};
    // All lookups start now and run side by side; the answers are taken in order.
    std::vector<Future<std::vector<AddrInfo>>> lookups;
    for (const std::string& host : hosts) lookups.push_back(loop->getaddrinfo(host, port, hints));
    std::vector<AddrInfo> infos;
    for (std::size_t i = 0; i < lookups.size(); ++i) {
        Result<std::vector<AddrInfo>> answer = co_await lookups[i];
        if (!answer) co_return answer.error();
        // asyncio: OSError('getaddrinfo(host) returned empty list') (CONTRACT 119).
        if (answer->empty()) {
            log(LogLevel::error, "create_server: getaddrinfo('%s') returned empty list", hosts[i].c_str());
            co_return make_error_code(errc::getaddrinfo_empty);
        }
        // One socket per distinct address (CONTRACT 145).
        for (AddrInfo& info : *answer) {
            bool seen = false;
            for (const AddrInfo& known : infos) seen = seen || same_endpoint(known, info);
            if (!seen) infos.push_back(std::move(info));
        }
    }
    Result<std::vector<Fd>> sockets = bind_all(infos, options, loop->get_debug());
    if (!sockets) co_return sockets.error();
    co_return make_server(*loop, std::move(factory), std::move(*sockets), options.backlog, options.keep_alive,
                          options.start_serving);
}

// create_server with options.sock: a bound stream socket of any family.
ServerFuture serve_on_socket(EventLoop& loop, ProtocolFactory factory, Fd sock, const ServerOptions& options) {
    if (socket_option(sock.get(), SOL_SOCKET, SO_TYPE) != SOCK_STREAM)
        return refused(loop, errc::invalid_argument, "create_server: A Stream Socket was expected");
    if (std::error_code ec = set_nonblocking(sock.get())) return completed(loop, ec);
    (void)set_cloexec(sock.get());
    std::vector<Fd> sockets;
    sockets.push_back(std::move(sock));
    return completed(loop, make_server(loop, std::move(factory), std::move(sockets), options.backlog,
                                       options.keep_alive, options.start_serving));
}

ServerFuture create_server_on(EventLoop& loop, ProtocolFactory factory, std::vector<std::string> hosts, int port,
                              const ServerOptions& options) {
    // A given sock belongs to the call from here on: closed on any failure,
    // refusals included, as create_connection does with its sock.
    Fd owned(options.sock);
    if (loop.is_closed()) return refused(loop, errc::loop_closed, "create_server");
    bool host_given = !(hosts.empty() || (hosts.size() == 1 && hosts[0].empty()));
    // CONTRACT 143, in asyncio's words.
    if (options.sock >= 0) {
        if (host_given || port > 0)
            return refused(loop, errc::invalid_argument,
                           "create_server: host/port and sock can not be specified at the same time");
        return serve_on_socket(loop, std::move(factory), std::move(owned), options);
    }
    if (!host_given && port == kNoPort)
        return refused(loop, errc::invalid_argument, "create_server: Neither host/port nor sock were specified");
    if (port < kNoPort || port > 65535) return completed(loop, make_error_code(errc::invalid_argument));
    // "" and no host at all are every interface: getaddrinfo(NULL, port,
    // AI_PASSIVE) gives the wildcard of each family (CONTRACT 144).
    if (hosts.empty()) hosts.emplace_back();
    Task<std::shared_ptr<Server>> task = serve_on_hosts(&loop, std::move(factory), std::move(hosts),
                                                        port == kNoPort ? 0 : port, options);
    return loop.create_task(std::move(task));
}

// CONTRACT 310: a socket file left by a previous run is removed (asyncio
// unlinks any socket there); anything else at the path is not ours to delete.
std::error_code clear_unix_path(const std::string& path) {
    struct stat info {};
    if (::stat(path.c_str(), &info) == 0) {
        if (!S_ISSOCK(info.st_mode)) return make_error_code(errc::address_in_use);
        if (::unlink(path.c_str()) < 0 && errno != ENOENT) return last_error();
    } else if (errno != ENOENT) {
        // asyncio logs this and lets bind() decide.
        log(LogLevel::error, "create_unix_server: unable to check or remove stale UNIX socket %s: %s", path.c_str(),
            last_error().message().c_str());
    }
    return {};
}

}  // namespace

ServerFuture EventLoop::create_server(ProtocolFactory factory, std::string_view host, int port,
                                      const ServerOptions& options) {
    return create_server_on(*this, std::move(factory), {std::string(host)}, port, options);
}

ServerFuture EventLoop::create_server(ProtocolFactory factory, std::string_view host, int port) {
    return create_server(std::move(factory), host, port, ServerOptions{});
}

ServerFuture EventLoop::create_server(ProtocolFactory factory, const std::vector<std::string>& hosts, int port,
                                      const ServerOptions& options) {
    return create_server_on(*this, std::move(factory), hosts, port, options);
}

ServerFuture EventLoop::create_unix_server(ProtocolFactory factory, std::string_view path,
                                           const UnixServerOptions& options) {
    Fd owned(options.sock);  // the call's from here on, closed on any failure (as create_server)
    if (is_closed()) return refused(*this, errc::loop_closed, "create_unix_server");
    // CONTRACT 309, in asyncio's words.
    if (!path.empty() && options.sock >= 0)
        return refused(*this, errc::invalid_argument,
                       "create_unix_server: path and sock can not be specified at the same time");
    if (path.empty() && options.sock < 0)
        return refused(*this, errc::invalid_argument,
                       "create_unix_server: path was not specified, and no sock specified");
    Fd sock;
    std::string cleanup_path;
    if (options.sock >= 0) {
        Result<SocketAddress> bound = local_address(options.sock);
        if (!bound || bound->family() != AF_UNIX || socket_option(options.sock, SOL_SOCKET, SO_TYPE) != SOCK_STREAM)
            return refused(*this, errc::invalid_argument,
                           "create_unix_server: A UNIX Domain Stream Socket was expected");
        sock = std::move(owned);
        if (std::error_code ec = set_nonblocking(sock.get())) return completed(*this, ec);
        (void)set_cloexec(sock.get());
        cleanup_path = bound->host();  // an already bound sock is cleaned up too (CONTRACT 312)
    } else {
        Result<SocketAddress> address = SocketAddress::unix_path(path);  // ENAMETOOLONG, EINVAL
        if (!address) return completed(*this, address.error());
        cleanup_path = std::string(path);
        // Abstract names ("\0…") live in no filesystem: never stat'ed or unlinked.
        if (path.front() != '\0') {
            if (std::error_code ec = clear_unix_path(cleanup_path)) return completed(*this, ec);
        }
        sock.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!sock) return completed(*this, last_error());
        // A failed bind closes the socket (`sock` goes out of scope, CONTRACT 311).
        if (::bind(sock.get(), address->data(), address->size()) < 0) return completed(*this, last_error());
    }
    if (!options.cleanup_socket || cleanup_path.empty() || cleanup_path.front() == '\0') cleanup_path.clear();
    std::vector<Fd> sockets;
    sockets.push_back(std::move(sock));
    return completed(*this, make_server(*this, std::move(factory), std::move(sockets), options.backlog, false,
                                        options.start_serving, std::move(cleanup_path)));
}

ServerFuture EventLoop::create_unix_server(ProtocolFactory factory, std::string_view path) {
    return create_unix_server(std::move(factory), path, UnixServerOptions{});
}

}  // namespace evloop
