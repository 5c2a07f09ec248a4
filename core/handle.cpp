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
// one side and free on the other. Memory is never returned to the heap while
// the process runs: the pool is as large as the most nodes ever alive at once.
#include "core/handle.hpp"

#include <algorithm>
#include <mutex>
#include <new>
#include <vector>

#include "core/event_loop.hpp"

namespace evloop {
namespace detail {
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
struct Batch {
    void* nodes[kBatch];
};

class Depot {
public:
    // Takes a full batch of nodes; returns false when there is none.
    bool take(void** out) {
        std::lock_guard lock(mutex_);
        if (full_.empty()) return false;
        Batch* batch = full_.back();
        full_.pop_back();
        std::copy(batch->nodes, batch->nodes + kBatch, out);
        empty_.push_back(batch);
        return true;
    }
    void put(void* const* in) {
        std::lock_guard lock(mutex_);
        Batch* batch;
        if (empty_.empty()) {
            batch = new Batch;
        } else {
            batch = empty_.back();
            empty_.pop_back();
        }
        std::copy(in, in + kBatch, batch->nodes);
        full_.push_back(batch);
    }

private:
    std::mutex mutex_;
    std::vector<Batch*> full_;
    std::vector<Batch*> empty_;  // spent arrays, reused so a steady flow allocates nothing
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
        if (count == 0) {
            if (!depot().take(nodes)) return ::operator new(sizeof(HandleNode));
            count = kBatch;
        }
        --count;
        if (count >= kPrefetchAhead) __builtin_prefetch(nodes[count - kPrefetchAhead], 1);
        return nodes[count];
    }
    void push(void* memory) {
        if (count == kCacheMax) {
            count -= kBatch;
            depot().put(nodes + count);
        }
        nodes[count++] = memory;
    }
    ~Cache() {  // thread exit: full batches go on serving other threads
        while (count >= kBatch) {
            count -= kBatch;
            depot().put(nodes + count);
        }
        while (count > 0) ::operator delete(nodes[--count]);
    }
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
