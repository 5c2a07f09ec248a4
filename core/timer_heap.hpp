// core/timer_heap.hpp — the loop's timers: a binary min-heap of HandleNode
// pointers ordered by (deadline, sequence).
//
// Each node stores its own index in the heap, so cancelling a timer removes it
// at once in O(log n). We chose this eager removal over asyncio's lazy one
// (leave cancelled timers in the heap, count them, rebuild when more than half
// are dead): with eager removal cancelled timers can never pile up, the heap
// head is always a live timer (no skipping loop in the hot path), and memory
// held by a cancelled timer's captures is released at cancel() time. The cost
// is one index write per sift step.
// The sequence number makes equal deadlines run in insertion order (FIFO), a
// promise asyncio does not make (CONTRACT §0.A, 39).
// Layer: core.
#pragma once

#include <cstddef>
#include <vector>

#include "core/handle.hpp"

namespace evloop::detail {

class TimerHeap {
public:
    bool empty() const noexcept { return nodes_.empty(); }
    std::size_t size() const noexcept { return nodes_.size(); }
    HandleNode* top() const noexcept { return nodes_.front(); }

    void push(HandleNode* node) {
        node->heap_index = nodes_.size();
        nodes_.push_back(node);
        sift_up(node->heap_index);
    }

    /// Removes and returns the earliest timer.
    HandleNode* pop() noexcept {
        HandleNode* first = nodes_.front();
        remove(first);
        return first;
    }

    /// Removes `node` from wherever it sits.
    void remove(HandleNode* node) noexcept {
        std::size_t i = node->heap_index;
        HandleNode* last = nodes_.back();
        nodes_.pop_back();
        if (last == node) return;
        place(i, last);
        // The moved node may belong above or below its new slot.
        if (i > 0 && before(last, nodes_[(i - 1) / 2]))
            sift_up(i);
        else
            sift_down(i);
    }

    /// Every node, in heap order (for close(), which drops them all).
    std::vector<HandleNode*>& nodes() noexcept { return nodes_; }

private:
    static bool before(const HandleNode* a, const HandleNode* b) noexcept {
        return a->when_ns < b->when_ns || (a->when_ns == b->when_ns && a->sequence < b->sequence);
    }
    void place(std::size_t i, HandleNode* node) noexcept {
        nodes_[i] = node;
        node->heap_index = i;
    }
    void sift_up(std::size_t i) noexcept {
        HandleNode* node = nodes_[i];
        while (i > 0) {
            std::size_t parent = (i - 1) / 2;
            if (!before(node, nodes_[parent])) break;
            place(i, nodes_[parent]);
            i = parent;
        }
        place(i, node);
    }
    void sift_down(std::size_t i) noexcept {
        HandleNode* node = nodes_[i];
        const std::size_t n = nodes_.size();
        for (;;) {
            std::size_t child = 2 * i + 1;
            if (child >= n) break;
            if (child + 1 < n && before(nodes_[child + 1], nodes_[child])) ++child;
            if (!before(nodes_[child], node)) break;
            place(i, nodes_[child]);
            i = child;
        }
        place(i, node);
    }

    std::vector<HandleNode*> nodes_;
};

}  // namespace evloop::detail
