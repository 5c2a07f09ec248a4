// net/server.hpp — Server: what create_server and create_unix_server return
// (asyncio's Server object), and their options.
//
// A server owns its listening sockets. While serving, each has a reader in
// the loop whose callback accepts a bounded batch of connections (at most
// `backlog` per readiness, CONTRACT 156) and gives each a SocketTransport and
// a protocol from the factory. EMFILE/ENFILE/ENOBUFS/ENOMEM from accept()
// stop accepting for one second (reported, CONTRACT 157): the listening
// socket is kept, the loop never spins on a readiness it cannot serve.
// The server tracks its client transports, so wait_closed() can wait for
// them (CONTRACT 162) and close_clients()/abort_clients() can reach them.
// Lifetime: held by std::shared_ptr; a serving server also holds itself, so
// dropping every pointer does not stop it (as asyncio's loop holds it); close()
// lets go once no client transport is left (they point back at it), and so
// does the loop's close().
// create_server / create_unix_server with options.sock: the call owns the
// socket from the start and closes it on any failure, refusals included
// (as create_connection and create_datagram_endpoint do).
// Layer: net. Read next: net/server.cpp, then net/connection.cpp.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/event_loop.hpp"
#include "core/future.hpp"
#include "net/address.hpp"
#include "net/stream.hpp"
#include "platform/fd.hpp"

namespace evloop {

class SocketTransport;

/// create_server's keyword arguments.
struct ServerOptions {
    int family = AF_UNSPEC;                 ///< AF_INET, AF_INET6 or both (AF_UNSPEC)
    int flags = AI_PASSIVE;                 ///< getaddrinfo flags
    int backlog = 100;                      ///< listen() backlog, and the accept batch (CONTRACT 153, 156)
    std::optional<bool> reuse_address{};    ///< SO_REUSEADDR; default on (CONTRACT 146)
    bool reuse_port = false;                ///< SO_REUSEPORT (CONTRACT 147)
    bool keep_alive = false;                ///< SO_KEEPALIVE on accepted sockets (CONTRACT 149)
    bool start_serving = true;              ///< listen at once (CONTRACT 154, 155)
    int sock = -1;  ///< an existing bound stream socket instead of host/port; the server takes ownership
};

/// create_unix_server's keyword arguments.
struct UnixServerOptions {
    int backlog = 100;
    bool start_serving = true;
    bool cleanup_socket = true;  ///< unlink the path at close() if it is still ours (CONTRACT 312)
    int sock = -1;               ///< an existing bound AF_UNIX stream socket instead of a path
};

class Server final : private detail::LoopResource {
public:
    ~Server();

    EventLoop& get_loop() const noexcept { return *loop_; }  // CONTRACT 167
    /// Stops listening: the listening sockets are closed (new connects are
    /// refused), is_serving() becomes false; accepted connections stay open.
    /// Idempotent (CONTRACT 161).
    void close();
    /// Done once the server is closed and every client transport's
    /// connection_lost has run, in either order (CONTRACT 162).
    Future<void> wait_closed();
    /// close() every client transport (CONTRACT 163).
    void close_clients();
    /// abort() every client transport (CONTRACT 163).
    void abort_clients();
    bool is_serving() const noexcept { return serving_; }
    /// Starts listening and accepting; idempotent (CONTRACT 155). Refused
    /// (errc::server_closed) after close(); an OS error from listen() is returned.
    std::error_code start_serving();
    /// Serves until cancelled or closed: starts serving, and the future is
    /// done (cancelled) when the server is closed; cancelling it closes the
    /// server (CONTRACT 164, 165). Refused while already awaited
    /// (errc::already_serving) or after close (errc::server_closed).
    Future<void> serve_forever();
    /// The listening sockets' fds, empty after close() (CONTRACT 160). The
    /// server owns them: do not close them.
    std::vector<int> sockets() const;
    /// Their local addresses (port 0 has become the ephemeral port).
    std::vector<SocketAddress> addresses() const;
    /// How many client transports are open.
    std::size_t client_count() const noexcept { return client_count_; }

    // Internal: SocketTransport reports its clients here.
    void attach_client(SocketTransport& transport) noexcept;
    void detach_client(SocketTransport& transport) noexcept;

    // Internal: how create_server / create_unix_server make one (net/server.cpp).
    static std::shared_ptr<Server> make(EventLoop& loop, ProtocolFactory factory, std::vector<Fd> sockets,
                                        int backlog, bool keep_alive, std::string unix_path = {});

private:
    Server(EventLoop& loop, ProtocolFactory factory, std::vector<Fd> sockets, int backlog, bool keep_alive,
           std::string unix_path);
    void accept_ready(int listener);
    void new_connection(Fd sock);
    void pause_accepting(int listener, std::error_code error);
    void resume_accepting();
    std::error_code add_readers();
    void remove_readers();
    void close_listeners() noexcept;
    void maybe_wake_waiters();
    void loop_closing() noexcept override;

    EventLoop* loop_;
    ProtocolFactory factory_;
    std::vector<Fd> sockets_;
    int backlog_;
    bool keep_alive_;
    bool serving_ = false;         // start_serving() ran and close() did not (asyncio's _serving)
    bool accepting_ = false;       // the listening sockets have readers (false while paused by EMFILE)
    bool closed_ = false;
    std::string unix_path_;        // to unlink at close (create_unix_server with cleanup_socket)
    std::uint64_t unix_inode_ = 0; // the inode bound there, so a replaced file is left alone
    // The client transports. A vector, not the intrusive list through
    // SocketTransport::server_link_: getting from a link back to its
    // transport needs offsetof, which is only conditionally supported on a
    // class with virtual bases. Removal is a search from the back (the
    // newest clients tend to go first); accept and close are not hot paths.
    std::vector<SocketTransport*> clients_;
    std::size_t client_count_ = 0;
    std::vector<Future<void>> waiters_;      // wait_closed()
    std::optional<Future<void>> serving_forever_;
    TimerHandle accept_retry_{};
    std::weak_ptr<Server> weak_self_;  // for callbacks that may outlive the server
    // Held while serving, and after close() while clients remain: a client
    // transport points at its server until it detaches.
    std::shared_ptr<Server> self_;
    friend class SocketTransport;
};

}  // namespace evloop
