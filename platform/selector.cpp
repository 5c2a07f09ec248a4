// platform/selector.cpp — the one place where a backend is chosen.
//
// The compile-time ladder below picks the OS default; EVLOOP_FORCE_POLL (a
// make variable / meson option) forces the portable poll backend so CI can run
// everything on it, and set_default_backend() lets a test runner switch at
// run time. kqueue (BSD, macOS) and IOCP (Windows) slot into this ladder.
#include "platform/selector.hpp"

#include <atomic>

#include "platform/epoll_selector.hpp"
#include "platform/poll_selector.hpp"

namespace evloop {
namespace {

#if defined(EVLOOP_FORCE_POLL)
constexpr Backend kCompiledDefault = Backend::poll;
constexpr Backend kAvailable[] = {Backend::poll};
#elif defined(__linux__)
constexpr Backend kCompiledDefault = Backend::epoll;
constexpr Backend kAvailable[] = {Backend::epoll, Backend::poll};
#else
constexpr Backend kCompiledDefault = Backend::poll;
constexpr Backend kAvailable[] = {Backend::poll};
#endif

// A process-wide setting read when a loop is created; atomic because loops may
// be created on several threads.
std::atomic<Backend> g_default{kCompiledDefault};

}  // namespace

std::span<const Backend> available_backends() noexcept { return kAvailable; }
Backend default_backend() noexcept { return g_default.load(std::memory_order_relaxed); }

void set_default_backend(Backend backend) noexcept {
    g_default.store(backend == Backend::automatic ? kCompiledDefault : backend, std::memory_order_relaxed);
}

std::string_view backend_name(Backend backend) noexcept {
    switch (backend) {
        case Backend::epoll: return "epoll";
        case Backend::poll: return "poll";
        case Backend::automatic: break;
    }
    return "automatic";
}

std::unique_ptr<Selector> make_selector(Backend backend, std::error_code& ec) {
    if (backend == Backend::automatic) backend = default_backend();
    switch (backend) {
        case Backend::epoll:
#if defined(EVLOOP_FORCE_POLL)
            ec = std::make_error_code(std::errc::function_not_supported);
            return nullptr;
#else
            return make_epoll_selector(ec);
#endif
        case Backend::poll: return make_poll_selector(ec);
        case Backend::automatic: break;
    }
    ec = std::make_error_code(std::errc::invalid_argument);
    return nullptr;
}

}  // namespace evloop
