// core/frame_pool.hpp — recycled memory for coroutine frames and future
// states, the two allocations every task makes.
//
// Why not plain new: a program running tasks allocates and frees frames and
// states of a handful of sizes at a high rate, and frees them in bursts (a
// batch of tasks finishing in one iteration). glibc's per-thread cache keeps
// only 7 blocks of a size, so most of a burst falls through to its slower
// bins; in the task benchmark malloc and free took a third of the time. This
// keeps up to 1,024 blocks per 64-byte size class (up to 1 KiB) per thread;
// larger requests go to operator new. Blocks may be freed on another thread
// than the one that made them: they join that thread's cache. A thread's
// cache is given back to the heap when the thread exits.
// Under AddressSanitizer the pool is bypassed, so every frame stays visible
// to its use-after-free and leak checks.
// Layer: core.
#pragma once

#include <cstddef>

namespace evloop::detail {

void* pool_allocate(std::size_t size);
void pool_free(void* block, std::size_t size) noexcept;

/// Gives a class pooled operator new/delete (sized delete finds the class).
struct Pooled {
    static void* operator new(std::size_t size) { return pool_allocate(size); }
    static void operator delete(void* block, std::size_t size) noexcept { pool_free(block, size); }
};

}  // namespace evloop::detail
