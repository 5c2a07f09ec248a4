// platform/poll_selector.hpp — the portable poll(2) backend (any POSIX).
// Read platform/poll_selector.cpp first when learning: it is the baseline.
#pragma once

#include <memory>
#include <system_error>

#include "platform/selector.hpp"

namespace evloop {

/// A Selector over poll(2). Never fails to construct.
std::unique_ptr<Selector> make_poll_selector(std::error_code& ec);

}  // namespace evloop
