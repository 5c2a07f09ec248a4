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

#include <mutex>
#include <new>
#include <vector>

#include "core/event_loop.hpp"

namespace evloop {
namespace detail {
namespace {

constexpr std::size_t kBatch = 256;
constexpr std::size_t kCacheMax = 2 * kBatch;

struct FreeCell {
    FreeCell* next;
};

struct Batch {
    FreeCell* head;
    std::size_t count;
};

class Depot {
public:
    void put(Batch batch) {
        std::lock_guard lock(mutex_);
        batches_.push_back(batch);
    }
    bool take(Batch& batch) {
        std::lock_guard lock(mutex_);
        if (batches_.empty()) return false;
        batch = batches_.back();
        batches_.pop_back();
        return true;
    }

private:
    std::mutex mutex_;
    std::vector<Batch> batches_;
};

// Never destroyed: threads may exit (and return their caches) after static
// destructors have run. Everything in it stays reachable, so leak checkers
// do not complain.
Depot& depot() {
    static Depot* instance = new Depot;
    return *instance;
}

struct Cache {
    FreeCell* head = nullptr;
    std::size_t count = 0;

    void* pop() {
        if (!head) {
            Batch batch;
            if (!depot().take(batch)) return ::operator new(sizeof(HandleNode));
            head = batch.head;
            count = batch.count;
        }
        --count;
        return std::exchange(head, head->next);
    }
    void push(void* memory) {
        head = ::new (memory) FreeCell{head};
        if (++count > kCacheMax) spill(kBatch);
    }
    // Moves the first `n` cells to the depot as one batch.
    void spill(std::size_t n) {
        FreeCell* first = head;
        FreeCell* last = head;
        for (std::size_t i = 1; i < n; ++i) last = last->next;
        head = last->next;
        last->next = nullptr;
        count -= n;
        depot().put(Batch{first, n});
    }
    ~Cache() {  // thread exit: the cells go on serving other threads
        if (count > 0) spill(count);
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
