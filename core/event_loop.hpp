// core/event_loop.hpp — EventLoop: asyncio's base event loop in C++.
//
// One thread runs the loop; everything it does happens in run_once()
// (core/event_loop.cpp), the function to read first. The loop owns:
//  - a ready queue: a ring buffer of Handle node pointers, run in order;
//  - a timer heap: TimerHandle nodes ordered by (deadline ns, sequence), with
//    each node's heap index stored so cancel() removes it at once;
//  - a Selector (platform/) for fd readiness, level-triggered;
//  - a self-pipe, and an inbox (a mutex-guarded vector) for call_soon_threadsafe;
//  - the lists of its live tasks, unretrieved future errors and async
//    generators (core/event_loop_tasks.cpp).
// Only call_soon_threadsafe, stop() and is_running() may be called from other
// threads; everything else belongs to the loop's thread, as in asyncio.
// Layer: core. Read next: core/event_loop.cpp, then core/timer_heap.hpp.
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include "core/callback.hpp"
#include "core/errors.hpp"
#include "core/event_loop_executor.hpp"
#include "core/executor.hpp"
#include "core/fd_watcher.hpp"
#include "core/future.hpp"
#include "core/handle.hpp"
#include "core/result.hpp"
#include "core/task.hpp"
#include "core/timer_heap.hpp"
#include "platform/selector.hpp"
#include "platform/self_pipe.hpp"

namespace evloop {

/// What call_exception_handler receives (asyncio's context dict). The keys
/// net/ will add (transport, protocol) arrive with it.
struct ExceptionContext {
    std::string message{};      ///< always set
    std::error_code error{};    ///< the error, when it is an error code
#if EVLOOP_EXCEPTIONS
    std::exception_ptr exception{};  ///< the exception, when one escaped a callback
#endif
    Handle handle{};            ///< the callback that failed, if any
    std::string future{};       ///< the future involved, described ("<Future finished error=…>")
    std::string task{};         ///< the task involved, described ("<Task pending name='Task-3'>")
    std::string asyncgen{};     ///< the async generator involved, described
    std::string transport{};    ///< the transport involved, described ("<SocketTransport fd=7>")
    std::string protocol{};     ///< the protocol involved, described
    int socket = -1;          ///< the fd involved, if any
};

// The net/ layer's types. EventLoop declares the networking methods so that
// loop.create_connection(...) reads as in asyncio; their definitions live in
// net/*.cpp, so core/ includes nothing of net/ (the include direction holds)
// and a program that never opens a socket links none of it. Include
// "evloop.hpp" (or the net/ headers) to call them.
class SocketAddress;
struct AddrInfo;
struct AddrInfoOptions;
struct NameInfo;
class ProtocolFactory;
struct Connection;
struct ConnectionOptions;
struct UnixConnectionOptions;
class Server;
struct ServerOptions;
struct UnixServerOptions;
class Transport;
class DatagramProtocolFactory;
struct DatagramEndpoint;
struct DatagramOptions;
struct ReceivedFrom;
struct ReceivedInto;
struct Accepted;
// The proc/ layer's types, declared here for the same reason.
class SubprocessProtocolFactory;
struct SubprocessConnection;
struct SubprocessOptions;

namespace detail {
/// Something the loop must shut when it closes: an open transport or a
/// listening server, which would otherwise keep its fd and memory forever
/// (nothing else will ever call back into it). net/ objects link themselves.
struct LoopResource : ListLink {
    LoopResource() = default;
    LoopResource(const LoopResource&) = delete;
    LoopResource& operator=(const LoopResource&) = delete;
    /// Called once by EventLoop::close(): close fds, drop references. The
    /// object may destroy itself; it is unlinked before the call.
    virtual void loop_closing() noexcept = 0;

protected:
    ~LoopResource() { unlink(); }
};

/// A per-loop service a higher layer attaches on first use and the loop
/// owns until it is destroyed: proc/'s signal handler table and child
/// watcher. core/ only keeps it; the layer that made it knows its type.
struct LoopService {
    virtual ~LoopService() = default;
};

/// What the loop tells about signal numbers it drains from its self-pipe
/// (proc/signal_handlers.cpp implements it). Called on the loop's thread,
/// once per byte read: a burst of one signal may arrive as several calls.
struct SignalDispatch : LoopService {
    virtual void signal_arrived(int sig) = 0;
};
}  // namespace detail

class EventLoop;
/// A custom exception handler: handler(loop, context).
using ExceptionHandler = std::function<void(EventLoop&, const ExceptionContext&)>;

/// Counters a program may read to see what its loop did.
struct LoopMetrics {
    std::uint64_t iterations = 0;      ///< run_once() calls
    std::uint64_t callbacks_run = 0;   ///< handles executed
    std::uint64_t wakeups_written = 0; ///< bytes written to the self-pipe
};

class EventLoop {
public:
    /// A loop over the given selector backend (the OS default if automatic).
    /// If the backend cannot be created the loop starts closed and
    /// creation_error() says why.
    explicit EventLoop(Backend backend = Backend::automatic);
    /// Closes the loop if needed. Destroying a running loop is a bug: the
    /// destructor logs it and aborts rather than free memory still in use.
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // ---- lifecycle ----------------------------------------------------------
    /// Runs until stop() is called. Refused if closed or already running, or
    /// if another loop runs on this thread. Returns a selector failure, if any.
    std::error_code run_forever();
    /// Runs until `future` is done and returns its result (CONTRACT 16–25).
    template <class T>
    Result<T> run_until_complete(Future<T> future);
    /// The same for a task; one never scheduled is scheduled first (CONTRACT 16).
    template <class T>
    Result<T> run_until_complete(Task<T> task) {
        if (!task.task_core().scheduled() && !task.task_core().started() && !task.done()) {
            if (std::error_code ec = start_task(TaskRef(task), {})) return ec;
        }
        return run_until_complete(Future<T>(task));
    }
    /// Closes every live AsyncGenerator first iterated on this loop: their
    /// frames are destroyed, so their locals' destructors run. One that is
    /// in the middle of producing a value cannot be closed; it is reported
    /// through the exception handler. The future is done when it returns.
    Future<void> shutdown_asyncgens();
    /// Asks the loop to stop after the current iteration (CONTRACT 10–12). Not
    /// a wakeup: from another thread use call_soon_threadsafe([&]{ loop.stop(); }).
    void stop() noexcept { stopping_.store(true, std::memory_order_relaxed); }
    /// Drops pending callbacks and timers (their handles report cancelled()),
    /// closes the selector and the self-pipe. Idempotent; refused while running.
    std::error_code close();
    bool is_running() const noexcept { return running_.load(std::memory_order_acquire); }
    bool is_closed() const noexcept { return closed_.load(std::memory_order_acquire); }
    /// Why the constructor could not create the selector (empty normally).
    std::error_code creation_error() const noexcept { return creation_error_; }

    /// One iteration: poll, dispatch, run what is ready. run_forever() calls it
    /// in a loop; it is public so a reader can find and call it.
    std::error_code run_once();

    // ---- time and callbacks -------------------------------------------------
    /// The loop's clock: monotonic seconds (asyncio's loop.time()).
    double time() const noexcept;
    /// The same clock in integer nanoseconds.
    std::int64_t time_ns() const noexcept;
    /// Schedules `cb` to run on a later iteration, FIFO (CONTRACT 27, 28).
    Handle call_soon(Callback cb);
    /// call_soon from any thread; wakes the loop. A burst of calls writes one
    /// wakeup byte. Refused (empty Handle) once the loop is closed.
    Handle call_soon_threadsafe(Callback cb);
    /// Runs `cb` after `delay` seconds (negative and zero: next iteration).
    TimerHandle call_later(double delay, Callback cb);
    template <class Rep, class Period>
    TimerHandle call_later(std::chrono::duration<Rep, Period> delay, Callback cb) {
        if constexpr (std::is_floating_point_v<Rep>)  // may be NaN: take the checked path
            return call_later(std::chrono::duration<double>(delay).count(), std::move(cb));
        else
            return call_at_ns(saturating_add(time_ns(), to_ns(delay)), std::move(cb));
    }
    /// Runs `cb` at loop.time() == `when`.
    TimerHandle call_at(double when, Callback cb);
    TimerHandle call_at(std::chrono::steady_clock::time_point when, Callback cb) {
        // steady_clock is CLOCK_MONOTONIC on Linux: the loop's own clock.
        return call_at_ns(to_ns(when.time_since_epoch()), std::move(cb));
    }

    // ---- futures and tasks (core/event_loop_tasks.cpp) -----------------------
    /// A pending future bound to this loop (works after close(), CONTRACT 3).
    template <class T = void>
    Future<T> create_future() { return Future<T>(*this); }
    /// Makes `task` an independent task of this loop: the task factory, if
    /// one is set, gets it; otherwise its first step is scheduled with
    /// call_soon (CONTRACT 87–90). Refused after close(): the coroutine is
    /// destroyed without running and the task ends with errc::loop_closed.
    template <class T>
    Task<T> create_task(Task<T> task, std::string name = {}) {
        (void)start_task(TaskRef(task), std::move(name));
        return task;
    }
    /// create_task for a task of any type; what create_task does underneath.
    std::error_code start_task(TaskRef task, std::string name);
    /// Installs a factory create_task hands new tasks to (empty: the default).
    void set_task_factory(TaskFactory factory) { task_factory_ = std::move(factory); }
    const TaskFactory& get_task_factory() const noexcept { return task_factory_; }
    /// The task whose step is running now, or an empty TaskRef (CONTRACT 108).
    TaskRef current_task() const;
    /// Every task of this loop not yet done (asyncio.all_tasks).
    std::vector<TaskRef> all_tasks() const;

    // ---- watching file descriptors -----------------------------------------
    /// Calls `cb` on every iteration while `fd` is readable; replaces a reader
    /// already there (CONTRACT 186–194). EBADF for a closed fd, errc::invalid_fd
    /// for a negative one.
    [[nodiscard]] std::error_code add_reader(int fd, Callback cb);
    /// True if a reader was registered and is now removed.
    bool remove_reader(int fd);
    [[nodiscard]] std::error_code add_writer(int fd, Callback cb);
    bool remove_writer(int fd);
    /// True while `fd` has a reader (writer) registered.
    bool has_reader(int fd) const noexcept;
    bool has_writer(int fd) const noexcept;
    // Internal (net/, proc/): the same with a watcher embedded in its owner
    // (core/fd_watcher.hpp): no allocation, and an idle connection carries
    // 16 bytes instead of a 64-byte node. One registration per watcher; the
    // owner removes it (remove_reader/remove_writer) before it goes away.
    [[nodiscard]] std::error_code add_reader(int fd, detail::FdWatcher& watcher);
    [[nodiscard]] std::error_code add_writer(int fd, detail::FdWatcher& watcher);
    /// Marks `fd` as owned by a transport (net/): sock_* refuse it (CONTRACT 174).
    void set_transport_fd(int fd, bool owned) noexcept;
    bool is_transport_fd(int fd) const noexcept;

    // ---- DNS (net/dns.cpp) ----------------------------------------------------
    /// getaddrinfo(3) on the default executor; a numeric host with a socket
    /// type and numeric port skips the executor (CONTRACT 111–117). Errors
    /// are in net's getaddrinfo category (EAI_* codes, gai_strerror's text).
    Future<std::vector<AddrInfo>> getaddrinfo(std::string_view host, std::string_view port,
                                              const AddrInfoOptions& options);
    Future<std::vector<AddrInfo>> getaddrinfo(std::string_view host, std::string_view port);
    /// The same with a numeric port; outside 0–65535 is errc::invalid_argument.
    Future<std::vector<AddrInfo>> getaddrinfo(std::string_view host, int port, const AddrInfoOptions& options);
    /// getnameinfo(3) on the default executor (CONTRACT 112).
    Future<NameInfo> getnameinfo(const SocketAddress& address, int flags = 0);

    // ---- streams (net/connection.cpp, net/server.cpp, net/unix.cpp) ---------
    /// Opens a TCP connection to host:port (every resolved address in turn,
    /// or raced with happy eyeballs) and wraps it in a socket transport with a
    /// protocol from `factory`; done once connection_made has run (CONTRACT 122–142).
    Future<Connection> create_connection(ProtocolFactory factory, std::string_view host, int port,
                                         const ConnectionOptions& options);
    Future<Connection> create_connection(ProtocolFactory factory, std::string_view host, int port);
    /// A TCP server on host:port ("" = every interface; port 0 = ephemeral),
    /// or on several hosts (CONTRACT 143–168).
    Future<std::shared_ptr<Server>> create_server(ProtocolFactory factory, std::string_view host, int port,
                                                  const ServerOptions& options);
    Future<std::shared_ptr<Server>> create_server(ProtocolFactory factory, std::string_view host, int port);
    Future<std::shared_ptr<Server>> create_server(ProtocolFactory factory, const std::vector<std::string>& hosts,
                                                  int port, const ServerOptions& options);
    /// A Unix stream connection to `path` ("\0name": Linux abstract) (CONTRACT 307, 308).
    Future<Connection> create_unix_connection(ProtocolFactory factory, std::string_view path,
                                              const UnixConnectionOptions& options);
    Future<Connection> create_unix_connection(ProtocolFactory factory, std::string_view path);
    /// A Unix stream server at `path` (CONTRACT 309–312).
    Future<std::shared_ptr<Server>> create_unix_server(ProtocolFactory factory, std::string_view path,
                                                       const UnixServerOptions& options);
    Future<std::shared_ptr<Server>> create_unix_server(ProtocolFactory factory, std::string_view path);
    /// Wraps an already connected stream socket (ownership passes to the
    /// transport, which closes it on failure too) (CONTRACT 314, 315).
    Future<Connection> connect_accepted_socket(ProtocolFactory factory, int sock);

    // ---- datagrams (net/datagram_endpoint.cpp) -------------------------------
    /// A UDP (or AF_UNIX datagram) endpoint: bound to a local address,
    /// connected to a remote one, or both; or an existing socket (CONTRACT 316–325).
    Future<DatagramEndpoint> create_datagram_endpoint(DatagramProtocolFactory factory, const DatagramOptions& options);

    // ---- sock_* (net/sock.cpp) ------------------------------------------------
    // Each first tries the syscall and waits for readiness only when it would
    // block (CONTRACT 172). Refused: a blocking socket, an fd a transport
    // owns (CONTRACT 174), and a second reader (writer) on an fd that already
    // has one (CONTRACT §26, item 179: asyncio silently orphans the first).
    // Cancelling one removes its reader or writer and loses no data (175–178).
    /// Up to `nbytes` bytes; "" at EOF (CONTRACT 173).
    Future<std::string> sock_recv(int sock, std::size_t nbytes);
    /// Into `buffer` (which must stay valid until the future is done); the byte count.
    Future<std::size_t> sock_recv_into(int sock, std::span<char> buffer);
    /// One datagram of up to `bufsize` bytes and its sender (CONTRACT 181).
    Future<ReceivedFrom> sock_recvfrom(int sock, std::size_t bufsize);
    /// Into `buffer` (`nbytes` 0: all of it) and the sender (CONTRACT 182).
    Future<ReceivedInto> sock_recvfrom_into(int sock, std::span<char> buffer, std::size_t nbytes = 0);
    /// All of `data` (what cannot be sent at once is copied: `data` need not
    /// outlive the call). If `sent` is given it is kept updated with the bytes
    /// handed to the kernel, also after an error or cancellation, and must
    /// stay valid until the future is done (CONTRACT 176, 180).
    Future<void> sock_sendall(int sock, std::string_view data, std::size_t* sent = nullptr);
    /// One datagram to `address`; the byte count (CONTRACT 181).
    Future<std::size_t> sock_sendto(int sock, std::string_view data, const SocketAddress& address);
    /// Connects `sock` to `address` (CONTRACT 177, 184).
    Future<void> sock_connect(int sock, const SocketAddress& address);
    /// A connection from listening `sock`: a new non-blocking, close-on-exec
    /// fd the caller owns, and the peer's address (CONTRACT 178).
    Future<Accepted> sock_accept(int sock);
    /// `file` (a regular file's fd) from `offset`, `count` bytes (nullopt: to
    /// the end) with sendfile(2); read+send when sendfile(2) cannot and
    /// `fallback` is on. The byte count; the file's position ends at offset +
    /// bytes sent, also after an error (CONTRACT 330, 334–339).
    Future<std::size_t> sock_sendfile(int sock, int file, std::int64_t offset = 0,
                                      std::optional<std::size_t> count = std::nullopt, bool fallback = true);
    /// The same through a transport: its buffer drains first and its own
    /// writes are refused meanwhile; transports without a socket (TLS,
    /// pipes) read and write through the transport when `fallback` is on
    /// (CONTRACT 326–333).
    Future<std::size_t> sendfile(Transport& transport, int file, std::int64_t offset = 0,
                                 std::optional<std::size_t> count = std::nullopt, bool fallback = true);

    // ---- pipes, subprocesses, signals (proc/) --------------------------------
    /// Wraps the read end of a pipe, a FIFO, a socket or a character device
    /// in a read-only pipe transport (ownership of `fd` passes to the call: it
    /// is closed on failure too). The fd is made non-blocking. Refused with
    /// errc::not_a_pipe for a regular file or a directory (CONTRACT 352–356).
    Future<Connection> connect_read_pipe(ProtocolFactory factory, int fd);
    /// The write end likewise: a write-only transport with the sockets'
    /// flow control; a reader that goes away ends it (CONTRACT 357–362).
    Future<Connection> connect_write_pipe(ProtocolFactory factory, int fd);
    /// Starts `program` (searched in PATH unless it holds a '/') with
    /// `args` after argv[0]; done once every requested pipe is connected and
    /// the protocol's connection_made has run. A program that cannot be
    /// executed fails the future with the errno of execve (ENOENT, EACCES…),
    /// never as a child that exits 127 (CONTRACT 211–232).
    Future<SubprocessConnection> subprocess_exec(SubprocessProtocolFactory factory, std::string_view program,
                                                 std::vector<std::string> args, const SubprocessOptions& options);
    Future<SubprocessConnection> subprocess_exec(SubprocessProtocolFactory factory, std::string_view program,
                                                 std::vector<std::string> args = {});
    /// `command` run by /bin/sh -c.
    Future<SubprocessConnection> subprocess_shell(SubprocessProtocolFactory factory, std::string_view command,
                                                  const SubprocessOptions& options);
    Future<SubprocessConnection> subprocess_shell(SubprocessProtocolFactory factory, std::string_view command);
    /// Runs `callback` on this loop's thread, in a normal iteration, each
    /// time signal `sig` arrives (a burst may run it once). Replaces a handler
    /// already there. Several loops (one per thread) may watch the same
    /// signal: each runs its own handler. Refused: a number outside
    /// 1..NSIG-1 (errc::invalid_signal), SIGKILL and SIGSTOP
    /// (errc::signal_uncatchable), a closed loop (CONTRACT 195–210).
    std::error_code add_signal_handler(int sig, Callback callback);
    /// True if a handler was removed. When no loop watches `sig` any more its
    /// disposition goes back to SIG_DFL (CONTRACT 204, 205).
    bool remove_signal_handler(int sig);

    // ---- debugging and errors -----------------------------------------------
    void set_debug(bool enabled) noexcept { debug_ = enabled; }
    bool get_debug() const noexcept { return debug_; }
    /// In debug mode, a callback running longer than this (seconds) is logged.
    double slow_callback_duration() const noexcept { return slow_callback_duration_; }
    void set_slow_callback_duration(double seconds) noexcept { slow_callback_duration_ = seconds; }
    /// Sends `context` to the custom handler, or to default_exception_handler.
    /// An exception thrown by a custom handler is logged, never propagated.
    void call_exception_handler(const ExceptionContext& context);
    /// Installs a handler (an empty one restores the default).
    void set_exception_handler(ExceptionHandler handler) { exception_handler_ = std::move(handler); }
    const ExceptionHandler& get_exception_handler() const noexcept { return exception_handler_; }
    /// Logs the context at ERROR level through the logger (core/log.hpp).
    void default_exception_handler(const ExceptionContext& context);

    /// Counters (iterations, callbacks run, wakeup bytes written).
    LoopMetrics metrics() const noexcept;
    /// Name of the selector backend in use ("epoll", "poll").
    std::string_view backend_name() const noexcept;
    /// The selector, for layers above core (net/, proc/).
    Selector& selector() noexcept { return *selector_; }
    /// Timers waiting in the heap (cancelled ones are removed at once).
    std::size_t scheduled_timers() const noexcept { return timers_.size(); }

    // Internal: TimerHandle::cancel() calls this to take a timer out of the heap.
    void timer_cancelled(detail::HandleNode* node) noexcept;
    // Internal (net/, proc/): close() will call resource.loop_closing().
    void attach_resource(detail::LoopResource& resource) noexcept { resource.insert_after(&resources_); }
    // Internal (proc/): the services proc/ attaches on first use, owned by the
    // loop. Signal numbers drained from the self-pipe go to the dispatch.
    detail::SignalDispatch* signal_dispatch() const noexcept { return signal_dispatch_.get(); }
    void set_signal_dispatch(std::unique_ptr<detail::SignalDispatch> dispatch) noexcept {
        signal_dispatch_ = std::move(dispatch);
    }
    detail::LoopService* child_watcher() const noexcept { return child_watcher_.get(); }
    void set_child_watcher(std::unique_ptr<detail::LoopService> watcher) noexcept { child_watcher_ = std::move(watcher); }
    // Internal (proc/): the fd a signal handler writes signal numbers to.
    int self_pipe_write_fd() const noexcept { return self_pipe_.write_fd(); }

private:
    friend struct detail::LoopAccess;  // the services futures and tasks use
    void post(Callback cb);
    void close_tasks() noexcept;
    void detach_tasks() noexcept;
    void close_resources() noexcept;

    detail::TaskCore* current_task_ = nullptr;
    detail::ListLink tasks_;          // scheduled tasks, done or not, still alive
    detail::ListLink unretrieved_;    // plain futures holding an error
    detail::ListLink asyncgens_;      // live async generators first iterated here
    detail::ListLink resources_;      // open transports and servers (detail::LoopResource)
    TaskFactory task_factory_;
    std::unique_ptr<detail::SignalDispatch> signal_dispatch_;  // proc/signal_handlers.cpp
    std::unique_ptr<detail::LoopService> child_watcher_;       // proc/child_watcher.cpp

    // A reader/writer as the loop stores it: a HandleNode (add_reader with a
    // callback) or an embedded FdWatcher, told apart by bit 0 (nodes are
    // 64-byte aligned, watchers 8-byte aligned: the bit is free in both).
    // Zero is "none"; in the ready queue, an entry blanked by a removal.
    struct WatchRef {
        std::uintptr_t bits = 0;
        static WatchRef of(detail::HandleNode* node) noexcept { return {reinterpret_cast<std::uintptr_t>(node)}; }
        static WatchRef of(detail::FdWatcher* w) noexcept { return {reinterpret_cast<std::uintptr_t>(w) | 1}; }
        bool is_watcher() const noexcept { return bits & 1; }
        detail::HandleNode* node() const noexcept { return reinterpret_cast<detail::HandleNode*>(bits); }
        detail::FdWatcher* watcher() const noexcept { return reinterpret_cast<detail::FdWatcher*>(bits & ~std::uintptr_t{1}); }
        explicit operator bool() const noexcept { return bits != 0; }
    };
    struct FdWatch {
        WatchRef reader;
        WatchRef writer;
    };
    // The ready queue: a ring buffer of entries. A ring rather than a list
    // threaded through the nodes, so run_ready() can prefetch nodes a few
    // places ahead instead of chasing one cache miss after another. It grows
    // by doubling and never shrinks: steady state allocates nothing. `head`
    // counts pops since the start (indexes are its low bits), so an entry's
    // absolute position survives growth: a queued FdWatcher keeps it to be
    // blanked in O(1) when it is removed.
    struct ReadyQueue {
        std::vector<WatchRef> ring;  // size is a power of two
        std::size_t mask = 0;        // ring.size() - 1, kept: the hot path indexes with it
        std::size_t head = 0;
        std::size_t size = 0;
        /// Appends; returns the entry's absolute position.
        std::size_t push(WatchRef entry) {
            if (size == ring.size()) grow();
            std::size_t position = head + size;
            ring[position & mask] = entry;
            ++size;
            return position;
        }
        void push(detail::HandleNode* node) { (void)push(WatchRef::of(node)); }
        WatchRef pop() noexcept {
            WatchRef entry = ring[head & mask];
            ++head;
            --size;
            return entry;
        }
        WatchRef peek(std::size_t i) const noexcept { return ring[(head + i) & mask]; }
        void blank(std::uint32_t position) noexcept { ring[position & mask] = WatchRef{}; }
        void grow();
    };

    // run_once's named steps, in order.
    std::int64_t compute_timeout() noexcept;
    void process_events(std::span<const SelectorEvent> events);
    void move_due_timers();
    void run_ready(std::size_t count);

    void enqueue(WatchRef entry) noexcept;
    void run_handle(detail::HandleNode* node);
    void call_watcher(detail::FdWatcher* watcher);
    void call_watcher_timed(detail::FdWatcher* watcher);
    void report_slow(const void* what, std::int64_t took_ns);
    void take_inbox();
    std::vector<detail::HandleNode*> close_inbox();
    void on_self_pipe();
    TimerHandle call_at_ns(std::int64_t when_ns, Callback cb);
    std::error_code check_can_run();
    std::error_code add_callback(int fd, Callback cb, bool write);
    std::error_code add_watch(int fd, WatchRef entry, bool write);
    bool remove_watch(int fd, bool write);
    void retire_watch(WatchRef entry) noexcept;
    std::error_code update_selector(int fd);
    void drop_all_handles() noexcept;

    template <class Rep, class Period>
    static std::int64_t to_ns(std::chrono::duration<Rep, Period> d) noexcept {
        double seconds = std::chrono::duration<double>(d).count();
        // Out of range: clamp (to_ns(double) does). In range: exact integer ns.
        if (std::abs(seconds) > 1e9) return to_ns(seconds);
        return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    }
    static std::int64_t to_ns(double seconds) noexcept;
    static std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept;

    std::unique_ptr<Selector> selector_;
    SelfPipe self_pipe_;
    ReadyQueue ready_;
    detail::TimerHeap timers_;
    std::uint64_t timer_sequence_ = 0;
    std::vector<FdWatch> watches_;  // indexed by fd
    // set_transport_fd's marks, indexed by fd. A bit each, apart from
    // watches_: as a bool in FdWatch it would pad every watched fd's entry
    // from 16 bytes to 24 (issue 7, idle memory per connection).
    std::vector<bool> transport_fds_;

    // call_soon_threadsafe (core/event_loop_threadsafe.cpp): posts land in
    // inbox_ under inbox_mutex_; the loop swaps it with inbox_taken_.
    // wake_pending_ makes only the first post of a burst write to the self-pipe.
    // These are written by other threads: they get cache lines of their own, so
    // posting threads do not keep stealing the loop's working fields.
    alignas(64) std::mutex inbox_mutex_;
    std::vector<detail::HandleNode*> inbox_;  // guarded by inbox_mutex_
    bool inbox_closed_ = false;                // guarded by inbox_mutex_
    std::atomic<bool> wake_pending_{false};
    std::atomic<int> posting_{0};  // threads between deciding to write a wakeup and writing it
    std::vector<detail::HandleNode*> inbox_taken_;  // the loop's side of the swap
    alignas(64) std::atomic<bool> stopping_{false};

    std::atomic<bool> running_{false};
    std::atomic<bool> closed_{false};
    bool debug_ = false;
    bool in_run_once_ = false;
    double slow_callback_duration_ = 0.1;
    std::int64_t clock_resolution_ns_ = 1;
    std::error_code creation_error_;
    ExceptionHandler exception_handler_;
    LoopMetrics metrics_;

    // ---- executor (core/event_loop_executor.cpp) ----
    // Last in the class on purpose: members die in reverse order, so when the
    // loop is destroyed the shutdown thread is joined first, then the default
    // executor (its destructor joins its threads), while the rest still exists.
public:
    /// Runs `fn()` on a thread of `executor` (nullptr: the default executor,
    /// created on first use) and returns a future for what it returns (R may
    /// be void) (CONTRACT 63–69). Loop thread only. Cancelling the future
    /// before a worker takes the work drops the work: it never runs. A result
    /// that arrives after cancel() or close() is discarded. An exception
    /// escaping `fn` is stored in the future (Future::set_exception): result()
    /// and co_await rethrow it. Refused after close() ("Event loop is
    /// closed"), and for nullptr after shutdown_default_executor().
    template <class F, class R = std::remove_cvref_t<std::invoke_result_t<std::decay_t<F>&>>>
    Future<R> run_in_executor(ThreadPoolExecutor* executor, F&& fn) {
        Future<R> future(*this);
        if (std::error_code ec = pick_executor(executor)) {
            (void)future.set_error(ec);
            return future;
        }
        auto* call = new detail::ExecutorCall<R>(future);
        call->insert_before(&executor_calls_);
        // The work touches only fn, the gate and the call's address (carried
        // back unread): the Future stays on this thread.
        WorkTicket ticket = executor->try_submit([fn = std::forward<F>(fn), call, gate = executor_gate()]() mutable {
            auto outcome = detail::run_work<R>(fn);
            gate.post([call, outcome = std::move(outcome)]() mutable { call->complete(std::move(outcome)); });
        });
        if (!ticket) {
            drop_executor_call(call);
            (void)future.set_error(refuse_submit(ticket.error()));
            return future;
        }
        call->watch_cancel(std::move(ticket));
        return future;
    }
    /// Makes `executor` the default one, owned by the loop. A previous default
    /// is shut down and joined first (this waits for its running work).
    /// nullptr is refused: "executor must be ThreadPoolExecutor instance" (CONTRACT 65).
    void set_default_executor(std::unique_ptr<ThreadPoolExecutor> executor);
    /// The default executor; nullptr until run_in_executor(nullptr, …) creates
    /// it (asyncio's loop._default_executor).
    ThreadPoolExecutor* default_executor() const noexcept { return default_executor_.get(); }
    /// From now on run_in_executor(nullptr, …) is refused with "Executor
    /// shutdown has been called"; explicit executors keep working. Joins the
    /// default executor's threads in a helper thread; the future completes on
    /// the loop when they are joined, or after `timeout` seconds with a warning
    /// and shutdown(wait=false) (CONTRACT 66, 67). Refused after close().
    Future<void> shutdown_default_executor(std::optional<double> timeout = std::nullopt);

private:
    struct ExecutorShutdownWaiter {
        Future<void> future;
        TimerHandle timeout;
    };
    std::error_code pick_executor(ThreadPoolExecutor*& executor);
    detail::GateRef executor_gate();
    void drop_executor_call(detail::ExecutorCallBase* call) noexcept;
    std::error_code refuse_submit(std::error_code ec);
    void close_executors();
    void default_executor_joined();

    std::unique_ptr<ThreadPoolExecutor> default_executor_;
    bool executor_shutdown_called_ = false;
    detail::ExecutorGate* executor_gate_ = nullptr;  // created on first use; close() shuts it
    detail::ExecutorCallLink executor_calls_;        // sentinel: run_in_executor calls in flight
    std::vector<ExecutorShutdownWaiter> executor_shutdown_waiters_;
    std::jthread executor_shutdown_thread_;          // joins the default executor's threads
    // ---- end executor ----
};

template <class T>
Result<T> EventLoop::run_until_complete(Future<T> future) {
    if (&future.get_loop() != this)
        return detail::refuse(errc::future_other_loop, "run_until_complete");
    if (std::error_code ec = check_can_run()) return ec;
    // The stop callback is removed afterwards, so a stop that never fired
    // cannot end a later run_forever early (CONTRACT 25).
    std::uint64_t token = future.add_done_callback([this](Future<T>&) { stop(); });
    std::error_code ec = run_forever();
    future.remove_done_callback(token);
    if (ec) return ec;
    if (!future.done()) return make_error_code(errc::stopped_before_complete);
    return future.result();
}

}  // namespace evloop
