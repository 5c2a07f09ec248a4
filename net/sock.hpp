// net/sock.hpp — what the sock_* awaitables complete with (asyncio returns
// tuples: (data, address), (nbytes, address), (conn, address)).
// The calls themselves are EventLoop members (core/event_loop.hpp), defined
// in net/sock.cpp and net/sendfile.cpp.
// Layer: net. Read next: net/sock.cpp.
#pragma once

#include <cstddef>
#include <string>

#include "net/address.hpp"

namespace evloop {

/// sock_recvfrom's answer.
struct ReceivedFrom {
    std::string data{};
    SocketAddress address{};
};

/// sock_recvfrom_into's answer.
struct ReceivedInto {
    std::size_t nbytes = 0;
    SocketAddress address{};
};

/// sock_accept's answer: the caller owns `fd` (non-blocking, close-on-exec).
struct Accepted {
    int fd = -1;
    SocketAddress address{};
};

}  // namespace evloop
