// net/read_buffer.hpp — the read buffer every stream transport of a thread
// shares (socket transports here, pipe transports in proc/).
//
// One buffer per thread, shared by every Protocol transport of the loops on
// it: data_received only borrows it for the call, so 1,000 idle connections
// cost no read memory at all. Allocated on first use (net/read_buffer.cpp).
// Layer: net. Read next: net/socket_transport.cpp.
#pragma once

#include <cstddef>

namespace evloop::detail {

/// asyncio's max_size: the most one read asks for, and the buffer's size.
inline constexpr std::size_t kSharedReadBufferSize = 256 * 1024;

char* allocate_shared_read_buffer();
// The buffer once allocated: a plain pointer read inline, where a function's
// thread_local unique_ptr cost a call and a guard per read (issue 7's profile).
inline thread_local char* t_shared_read_buffer = nullptr;

/// This thread's read buffer, kSharedReadBufferSize bytes.
inline char* shared_read_buffer() {
    char* buffer = t_shared_read_buffer;
    return buffer ? buffer : allocate_shared_read_buffer();
}

}  // namespace evloop::detail
