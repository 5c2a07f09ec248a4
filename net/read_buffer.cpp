// net/read_buffer.cpp — see read_buffer.hpp. A file of its own, so a program
// that reads only pipes links no socket code for it.
#include "net/read_buffer.hpp"

#include <memory>

namespace evloop::detail {

char* shared_read_buffer() {
    thread_local std::unique_ptr<char[]> buffer;
    if (!buffer) buffer.reset(new char[kSharedReadBufferSize]);
    return buffer.get();
}

}  // namespace evloop::detail
