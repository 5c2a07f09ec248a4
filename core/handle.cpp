// core/handle.cpp — HandleNode allocation and Handle::cancel.
//
// Nodes are recycled instead of new/delete: call_soon + run is the hottest
// path of the loop, and a malloc/free pair would cost more than everything
// else it does. Each thread keeps a small cache of free nodes (no lock, no
// atomic); a thread whose cache overflows hands a batch of kBatch nodes to a
// process-wide depot, and a thread whose cache is empty takes a batch from it
// (one mutex acquisition per kBatch nodes). This matters for
// call_soon_threadsafe: nodes are made on the posting threads and freed on the
// loop's thread, and the depot carries them back instead of feeding malloc on
// one side and free on the other. New nodes are cut from slabs, 64-byte
// aligned, so each node is exactly one cache line. Memory is never returned
// to the heap while the process runs: the pool is as large as the most nodes
// ever alive at once.
#include "core/handle.hpp"

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "core/event_loop.hpp"

namespace evloop {
namespace detail {

static_assert(sizeof(HandleNode) == 64, "a HandleNode should fill exactly one cache line");

namespace {

constexpr std::size_t kBatch = 256;
constexpr std::size_t kCacheMax = 2 * kBatch;
// How far ahead pop() asks for the node it will hand out later. A recycled node
// was last written by whichever thread freed it (for call_soon_threadsafe, the
// loop's, on another core), in whatever order timers happened to fire: filling
// it in costs a cache miss, often a TLB miss too. Asked for this many pops
// early, the miss overlaps with the work between pops instead of stalling it.
constexpr std::size_t kPrefetchAhead = 8;

// Free nodes are kept as arrays of pointers, not as a list threaded through the
// nodes: popping from an array needs no load from the node itself, so taking
// many nodes in a row never waits on one cache miss after another.
class Depot {
public:
    // Fills `out` with up to kBatch free nodes (new ones if none are free);
    // returns how many.
    std::size_t take(void** out) {
        std::lock_guard lock(mutex_);
        if (free_.empty()) return carve(out);
        const std::size_t n = std::min(kBatch, free_.size());
        std::copy(free_.end() - static_cast<std::ptrdiff_t>(n), free_.end(), out);
        free_.resize(free_.size() - n);
        return n;
    }
    void put(void* const* in, std::size_t n) {
        std::lock_guard lock(mutex_);
        free_.insert(free_.end(), in, in + n);
    }

private:
    // Nodes are cut from slabs rather than allocated one by one: each is
    // aligned to its cache line and neighbours share pages, so even a pool
    // scrambled by timers firing in random order spans few pages. The first
    // slab is small: a program that schedules a few callbacks should not
    // reserve 2 MiB for them (later slabs are touched, so resident, only as
    // nodes are handed out). Not offered as huge pages: with the kernel's
    // usual THP defrag setting ("madvise") faulting one in may stall for
    // compaction, which made a million-task benchmark 4x slower.
    std::size_t carve(void** out) {
        if (slab_left_ < kBatch) new_slab();
        // Handed out from the back: lowest address first.
        for (std::size_t i = 0; i < kBatch; ++i) out[kBatch - 1 - i] = slab_next_ + i * sizeof(HandleNode);
        slab_next_ += kBatch * sizeof(HandleNode);
        slab_left_ -= kBatch;
        return kBatch;
    }
    void new_slab() {
        const std::size_t bytes = slabs_.empty() ? kFirstSlabBytes : kSlabBytes;
        void* slab = std::aligned_alloc(sizeof(HandleNode), bytes);
        if (!slab) std::abort();  // as operator new would, without an exception to throw
        slabs_.push_back(slab);
        slab_next_ = static_cast<unsigned char*>(slab);
        slab_left_ = bytes / sizeof(HandleNode);
    }

    static constexpr std::size_t kFirstSlabBytes = 64 << 10;
    static constexpr std::size_t kSlabBytes = 2 << 20;
    std::mutex mutex_;
    std::vector<void*> free_;
    std::vector<void*> slabs_;  // never freed; kept so leak checkers see the memory as reachable
    unsigned char* slab_next_ = nullptr;
    std::size_t slab_left_ = 0;
};

// Never destroyed: threads may exit (and return their caches) after static
// destructors have run. Everything in it stays reachable, so leak checkers
// do not complain.
Depot& depot() {
    static Depot* instance = new Depot;
    return *instance;
}

struct Cache {
    void* nodes[kCacheMax];
    std::size_t count = 0;

    void* pop() {
        if (count == 0) count = depot().take(nodes);
        --count;
        if (count >= kPrefetchAhead) __builtin_prefetch(nodes[count - kPrefetchAhead], 1);
        return nodes[count];
    }
    void push(void* memory) {
        if (count == kCacheMax) {
            count -= kBatch;
            depot().put(nodes + count, kBatch);
        }
        nodes[count++] = memory;
    }
    ~Cache() { depot().put(nodes, count); }  // thread exit: the nodes go on serving other threads
};

thread_local Cache t_cache;

}  // namespace

HandleNode* HandleNode::create(std::uint32_t refs, std::uint8_t flags, EventLoop* loop, Callback&& cb) {
    auto* node = ::new (t_cache.pop()) HandleNode;
    node->refs.store(refs, std::memory_order_relaxed);
    node->flags = flags;
    node->loop = loop;
    node->callback = std::move(cb);
    return node;
}

void HandleNode::destroy() noexcept {
    this->~HandleNode();
    t_cache.push(this);
}

}  // namespace detail

void Handle::cancel() noexcept {
    using N = detail::HandleNode;
    if (!node_ || (node_->flags & N::cancelled)) return;
    node_->flags |= N::cancelled;
    if ((node_->flags & N::scheduled) && node_->loop) node_->loop->timer_cancelled(node_);
    // A callback cancelling its own handle is still on the stack: the loop
    // drops its captures once it returns.
    if (!(node_->flags & N::running)) node_->callback.reset();
}

}  // namespace evloop
