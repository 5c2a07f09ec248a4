// net/read_buffer.cpp — see read_buffer.hpp. A file of its own, so a program
// that reads only pipes links no socket code for it.
#include "net/read_buffer.hpp"

#include <memory>

namespace evloop::detail {

char* allocate_shared_read_buffer() {
    // Frees the buffer when the thread ends, and forgets the pointer with it.
    struct Owner {
        std::unique_ptr<char[]> buffer;
        ~Owner() { t_shared_read_buffer = nullptr; }
    };
    thread_local Owner owner;
    if (!owner.buffer) owner.buffer.reset(new char[kSharedReadBufferSize]);
    t_shared_read_buffer = owner.buffer.get();
    return t_shared_read_buffer;
}

}  // namespace evloop::detail
