// core/event_loop_threadsafe.cpp — call_soon_threadsafe: the only way in from
// other threads.
//
// Posts are appended to a vector of node pointers (inbox_) under a mutex; the
// loop swaps the whole vector out in one short critical section. A vector
// rather than a lock-free linked stack: with a list, the loop walks a million
// freshly written nodes one dependent cache miss at a time; with an array it
// streams the pointers and prefetches the nodes, and a post costs one
// uncontended lock. Each thread's posts stay in the order it made them.
// Wakeups coalesce: wake_pending_ is set by the first post after the loop last
// looked, and only that post writes a byte to the self-pipe. The loop clears
// the flag *before* taking the inbox, so a post that misses one take always
// finds the flag clear and writes a fresh wakeup.
// close() marks the inbox closed (later posts are refused), takes what is
// left and cancels those handles, then waits for posts that are writing a
// wakeup (posting_) so none writes to a closed fd.
// Layer: core. Read next: platform/self_pipe.hpp.
#include "core/event_loop.hpp"

#include <thread>

namespace evloop {

using detail::HandleNode;

Handle EventLoop::call_soon_threadsafe(Callback cb) {
    HandleNode* node = HandleNode::create(2, 0, this, std::move(cb));
    {
        std::lock_guard lock(inbox_mutex_);
        if (inbox_closed_) {
            node->flags |= HandleNode::cancelled;
            node->release();
            node->release();
            return Handle::refused(detail::refuse(errc::loop_closed, "call_soon_threadsafe"));
        }
        inbox_.push_back(node);
    }
    // Only the first post since the loop last looked writes a byte; the load
    // first keeps a burst of posts from fighting over the line with exchanges.
    if (!wake_pending_.load() && !wake_pending_.exchange(true)) {
        // close() sets closed_ and then waits for posting_ to drop to 0 before
        // closing the pipe: a post that still sees it open writes to an open fd.
        posting_.fetch_add(1);
        if (!closed_.load()) self_pipe_.notify();
        posting_.fetch_sub(1);
    }
    return Handle::adopt(node);
}

void EventLoop::take_inbox() {
    // Clear the flag before taking the inbox: a post that lands after the swap
    // below then sees the flag clear and writes its own wakeup.
    wake_pending_.exchange(false);
    {
        std::lock_guard lock(inbox_mutex_);
        inbox_.swap(inbox_taken_);  // both vectors keep their capacity
    }
    for (HandleNode* node : inbox_taken_) {
        node->flags |= HandleNode::queued;
        ready_.push(node);
    }
    inbox_taken_.clear();
}

std::vector<HandleNode*> EventLoop::close_inbox() {
    std::vector<HandleNode*> left;
    {
        std::lock_guard lock(inbox_mutex_);
        inbox_closed_ = true;
        left.swap(inbox_);
    }
    while (posting_.load() != 0) std::this_thread::yield();
    return left;
}

void EventLoop::on_self_pipe() {
    // Non-zero bytes are signal numbers written by proc/'s signal handler
    // (CONTRACT 197, 200): its dispatch queues the loop's handler.
    self_pipe_.drain([this](int sig) {
        if (signal_dispatch_) signal_dispatch_->signal_arrived(sig);
    });
    // run_once may already have taken the posts this byte announced.
    if (wake_pending_.load()) take_inbox();
}

}  // namespace evloop
