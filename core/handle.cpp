// core/handle.cpp — HandleNode allocation and Handle::cancel.
//
// Nodes are recycled through a per-thread free list instead of new/delete:
// call_soon + run is the hottest path of the loop, and a malloc/free pair
// would cost more than everything else it does. A node freed on another
// thread than the one that made it (call_soon_threadsafe) simply joins that
// thread's list. Each list keeps at most kMaxFree nodes, so a thread that only
// frees (the loop, under a flood of threadsafe calls) returns the surplus to
// the heap instead of hoarding it.
#include "core/handle.hpp"

#include <new>

#include "core/event_loop.hpp"

namespace evloop {
namespace detail {
namespace {

constexpr std::size_t kMaxFree = 4096;

struct FreeCell {
    FreeCell* next;
};

struct FreeList {
    FreeCell* head = nullptr;
    std::size_t count = 0;
    ~FreeList() {
        while (head) ::operator delete(std::exchange(head, head->next));
    }
};

thread_local FreeList t_free;

}  // namespace

HandleNode* HandleNode::create(std::uint32_t refs, std::uint8_t flags, EventLoop* loop, Callback&& cb) {
    FreeList& list = t_free;
    void* memory;
    if (list.head) {
        memory = std::exchange(list.head, list.head->next);
        --list.count;
    } else {
        memory = ::operator new(sizeof(HandleNode));
    }
    auto* node = ::new (memory) HandleNode;
    node->refs.store(refs, std::memory_order_relaxed);
    node->flags = flags;
    node->loop = loop;
    node->callback = std::move(cb);
    return node;
}

void HandleNode::destroy() noexcept {
    this->~HandleNode();
    FreeList& list = t_free;
    if (list.count >= kMaxFree) {
        ::operator delete(this);
        return;
    }
    auto* cell = ::new (static_cast<void*>(this)) FreeCell{list.head};
    list.head = cell;
    ++list.count;
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
