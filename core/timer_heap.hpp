// core/timer_heap.hpp — the loop's timers: a 4-ary min-heap of HandleNode
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
#include <cstdint>
#include <vector>

#include "core/handle.hpp"

namespace evloop::detail {

class TimerHeap {
    // An entry keeps the deadline beside the node pointer, so comparisons read
    // the heap's own contiguous array instead of dereferencing two nodes per
    // step. Four children per parent (as libev): a node's children share one
    // cache line and the heap is half as deep as a binary one.
    struct Entry {
        std::int64_t when_ns;
        HandleNode* node;
    };
    static constexpr std::size_t kArity = 4;

public:
    bool empty() const noexcept { return entries_.empty(); }
    std::size_t size() const noexcept { return entries_.size(); }
    HandleNode* top() const noexcept { return entries_.front().node; }
    std::int64_t top_when_ns() const noexcept { return entries_.front().when_ns; }

    void push(HandleNode* node) {
        entries_.push_back(Entry{node->when_ns, node});
        sift_up(entries_.size() - 1);
    }

    /// Removes and returns the earliest timer.
    HandleNode* pop() noexcept {
        HandleNode* first = entries_.front().node;
        remove(first);
        return first;
    }

    /// Removes `node` from wherever it sits.
    void remove(HandleNode* node) noexcept {
        std::size_t i = node->heap_index;
        Entry last = entries_.back();
        entries_.pop_back();
        if (last.node == node) return;
        place(i, last);
        // The moved entry may belong above or below its new slot.
        if (i > 0 && before(last, entries_[(i - 1) / kArity]))
            sift_up(i);
        else
            sift_down(i);
    }

    /// Every node, in heap order (for close(), which drops them all).
    template <class F>
    void for_each(F f) const {
        for (const Entry& e : entries_) f(e.node);
    }
    void clear() noexcept { entries_.clear(); }

private:
    static bool before(const Entry& a, const Entry& b) noexcept {
        return a.when_ns < b.when_ns || (a.when_ns == b.when_ns && a.node->sequence < b.node->sequence);
    }
    void place(std::size_t i, const Entry& entry) noexcept {
        entries_[i] = entry;
        entry.node->heap_index = static_cast<std::uint32_t>(i);  // 4 billion timers would need 256 GB
    }
    void sift_up(std::size_t i) noexcept {
        Entry entry = entries_[i];
        while (i > 0) {
            std::size_t parent = (i - 1) / kArity;
            if (!before(entry, entries_[parent])) break;
            place(i, entries_[parent]);
            i = parent;
        }
        place(i, entry);
    }
    void sift_down(std::size_t i) noexcept {
        Entry entry = entries_[i];
        const std::size_t n = entries_.size();
        for (;;) {
            std::size_t first = kArity * i + 1;
            if (first >= n) break;
            std::size_t last = first + kArity < n ? first + kArity : n;
            std::size_t best = first;
            for (std::size_t c = first + 1; c < last; ++c)
                if (before(entries_[c], entries_[best])) best = c;
            if (!before(entries_[best], entry)) break;
            place(i, entries_[best]);
            i = best;
        }
        place(i, entry);
    }

    std::vector<Entry> entries_;
};

}  // namespace evloop::detail
