// core/frame_pool.cpp — per-thread free lists by 64-byte size class.
// core/frame_pool.hpp says why they exist.
// Layer: core.
#include "core/frame_pool.hpp"

#include <cstdint>
#include <new>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#define EVLOOP_POOL_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EVLOOP_POOL_OFF 1
#endif
#endif

namespace evloop::detail {

#if defined(EVLOOP_POOL_OFF)

void* pool_allocate(std::size_t size) { return ::operator new(size); }
void pool_free(void* block, std::size_t) noexcept { ::operator delete(block); }

#else

namespace {

constexpr std::size_t kGranule = 64;
constexpr std::size_t kClasses = 16;  // blocks of 64 … 1,024 bytes
constexpr std::uint32_t kMaxCached = 1024;

struct FreeBlock {
    FreeBlock* next;
};

// Trivially destructible, so still readable while thread_local destructors
// run: a frame freed after this thread's cache is gone goes to the heap.
thread_local bool cache_gone = false;

struct Cache {
    FreeBlock* head[kClasses] = {};
    std::uint32_t count[kClasses] = {};
    ~Cache() {
        cache_gone = true;
        for (FreeBlock*& list : head)
            while (list) ::operator delete(std::exchange(list, list->next));
    }
};

thread_local Cache cache;

std::size_t size_class(std::size_t size) noexcept { return size == 0 ? 0 : (size - 1) / kGranule; }

}  // namespace

void* pool_allocate(std::size_t size) {
    std::size_t c = size_class(size);
    if (c >= kClasses || cache_gone) return ::operator new(size);
    Cache& k = cache;
    if (FreeBlock* block = k.head[c]) {
        k.head[c] = block->next;
        --k.count[c];
        return block;
    }
    // The whole class size, so any block of the class can serve any request in it.
    return ::operator new((c + 1) * kGranule);
}

void pool_free(void* block, std::size_t size) noexcept {
    std::size_t c = size_class(size);
    if (c >= kClasses || cache_gone || cache.count[c] >= kMaxCached) {
        ::operator delete(block);
        return;
    }
    Cache& k = cache;
    auto* b = static_cast<FreeBlock*>(block);
    b->next = k.head[c];
    k.head[c] = b;
    ++k.count[c];
}

#endif

}  // namespace evloop::detail
