// platform/selector.hpp — the one interface every readiness backend implements.
//
// It mirrors Python's selectors.BaseSelector: level-triggered, one key per fd,
// a read and a write interest bit, an opaque `data` pointer for the owner.
// The loop core (core/event_loop.cpp) is written against this class only, so
// kqueue or IOCP backends arrive later without touching core/.
// Layer: platform. Read next: platform/poll_selector.cpp (the teaching
// baseline), then platform/epoll_selector.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>

namespace evloop {

/// Interest and readiness bits, with Python's values.
inline constexpr std::uint32_t EVENT_READ = 1;
inline constexpr std::uint32_t EVENT_WRITE = 2;

/// What the selector remembers about one registered fd.
struct SelectorKey {
    int fd = -1;
    std::uint32_t events = 0;  ///< EVENT_READ | EVENT_WRITE interest
    void* data = nullptr;      ///< the owner's pointer, returned untouched
    /// Changes on every register_fd. A dispatcher compares it with the one a
    /// ready event carries, so an fd closed and reopened by a callback within
    /// one batch never receives the old registration's stale events.
    std::uint32_t generation = 0;
};

/// One ready fd from select(): the key as it was when the kernel answered, and
/// which of its interests are ready (errors and hangups count as both).
struct SelectorEvent {
    SelectorKey key;
    std::uint32_t ready = 0;
};

/// The backends evloop knows. `automatic` is the compile-time default for the OS.
enum class Backend { automatic, epoll, poll };

/// The readiness multiplexer. Level-triggered: an fd that stays readable is
/// reported by every select() until it is drained or unregistered.
class Selector {
public:
    Selector() = default;
    Selector(const Selector&) = delete;
    Selector& operator=(const Selector&) = delete;
    virtual ~Selector() = default;

    /// Starts watching `fd` for `events` (non-zero). EEXIST if already registered,
    /// EBADF if the fd is not open, EINVAL for an empty or unknown mask.
    virtual std::error_code register_fd(int fd, std::uint32_t events, void* data) = 0;
    /// Changes the interest and data of a registered fd (ENOENT if unknown).
    virtual std::error_code modify(int fd, std::uint32_t events, void* data) = 0;
    /// Stops watching `fd` (ENOENT if unknown). Call it before closing the fd.
    virtual std::error_code unregister_fd(int fd) = 0;
    /// Waits up to `timeout_ns` (negative: forever; 0: just poll) and returns
    /// ready fds in a buffer the selector owns, valid until the next select().
    /// A backend may spread a very large batch over several calls (epoll grows
    /// its buffer after a full one); level-triggering means none is lost.
    /// Sub-millisecond timeouts round up, so a short wait never becomes a spin.
    /// An EINTR returns an empty batch without error: the caller recomputes its
    /// timeout, which keeps timers on time through a signal storm.
    virtual std::error_code select(std::int64_t timeout_ns, std::span<const SelectorEvent>& ready) = 0;
    /// Releases the kernel object. Idempotent; the selector is unusable after.
    virtual void close() noexcept = 0;
    /// The key registered for `fd`, or nullptr.
    virtual const SelectorKey* get_key(int fd) const noexcept = 0;
    /// How many fds are registered.
    virtual std::size_t size() const noexcept = 0;
    /// "epoll", "poll", ...
    virtual std::string_view name() const noexcept = 0;
};

/// Creates a selector of the given backend (`automatic`: the OS default, see
/// platform/selector.cpp). Returns null and sets `ec` if the backend is not
/// available here or the kernel refused (EMFILE, ENOSYS, ...).
std::unique_ptr<Selector> make_selector(Backend backend, std::error_code& ec);

/// The backends this build can construct, the default first.
std::span<const Backend> available_backends() noexcept;
/// The backend that `Backend::automatic` picks (can be changed at run time
/// with set_default_backend, e.g. by a test runner).
Backend default_backend() noexcept;
/// Changes what `Backend::automatic` means for loops created afterwards.
void set_default_backend(Backend backend) noexcept;
/// "epoll", "poll", or "automatic".
std::string_view backend_name(Backend backend) noexcept;

}  // namespace evloop
