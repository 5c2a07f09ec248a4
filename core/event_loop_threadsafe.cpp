// core/event_loop_threadsafe.cpp — call_soon_threadsafe: the only way in from
// other threads.
//
// Posts go onto a lock-free stack (inbox_): a compare-and-swap push, no lock,
// no allocation beyond the Handle node. The loop takes the whole stack at once
// and reverses it, so each thread's posts run in the order it made them.
// Wakeups coalesce: wake_pending_ is set by the first post after the loop last
// looked, and only that post writes a byte to the self-pipe. The loop clears
// the flag *before* taking the stack, so a post that misses one take always
// writes a fresh wakeup (every atomic here is seq_cst for exactly that
// argument: clear < take < push < flag exchange is a single total order).
// close() swaps in a marker that makes later posts refuse, then waits for posts
// already past their push to finish their wakeup write, so none writes to a
// closed fd; the posts it took are dropped with their handles cancelled.
// Layer: core. Read next: platform/self_pipe.hpp.
#include "core/event_loop.hpp"

namespace evloop {

using detail::HandleNode;

HandleNode* EventLoop::closed_inbox() noexcept {
    static HandleNode marker;  // never linked anywhere: only its address matters
    return &marker;
}

Handle EventLoop::call_soon_threadsafe(Callback cb) {
    HandleNode* node = HandleNode::create(2, 0, this, std::move(cb));
    posting_.fetch_add(1);
    HandleNode* head = inbox_.load();
    do {
        if (head == closed_inbox()) {
            posting_.fetch_sub(1);
            node->flags |= HandleNode::cancelled;
            node->release();
            node->release();
            return Handle::refused(detail::refuse(errc::loop_closed, "call_soon_threadsafe"));
        }
        node->next = head;
    } while (!inbox_.compare_exchange_weak(head, node));
    // Only the first post since the loop last looked writes a byte.
    if (!wake_pending_.exchange(true)) self_pipe_.notify();
    posting_.fetch_sub(1);
    return Handle::adopt(node);
}

void EventLoop::take_inbox() noexcept {
    // Clear the flag before taking the stack: a post that lands after the
    // exchange below then sees the flag clear and writes its own wakeup.
    wake_pending_.exchange(false);
    HandleNode* node = inbox_.exchange(nullptr);
    // The stack is newest-first; reverse it so posts run in the order made.
    HandleNode* fifo = nullptr;
    while (node) {
        HandleNode* next = node->next;
        node->next = fifo;
        fifo = node;
        node = next;
    }
    while (fifo) {
        HandleNode* next = fifo->next;
        fifo->flags |= HandleNode::queued;
        ready_.push(fifo);
        fifo = next;
    }
}

void EventLoop::on_self_pipe() {
    // Signal numbers arrive here too once proc/ installs signal handlers; the
    // foundation only uses 0 bytes (wakeups).
    self_pipe_.drain([](int) {});
    take_inbox();
}

}  // namespace evloop
