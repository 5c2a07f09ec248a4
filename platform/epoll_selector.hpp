// platform/epoll_selector.hpp — the Linux epoll(7) backend, the default there.
#pragma once

#include <memory>
#include <system_error>

#include "platform/selector.hpp"

namespace evloop {

/// A Selector over epoll; null with `ec` set where epoll is unavailable.
std::unique_ptr<Selector> make_epoll_selector(std::error_code& ec);

}  // namespace evloop
