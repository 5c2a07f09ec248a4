// core/event_loop_threadsafe.cpp — call_soon_threadsafe: the only way in from
// other threads.
//
// Posts are appended to a vector of node pointers (inbox_) under a mutex; the
// loop swaps the whole vector out in one short critical section. A vector
// rather than a lock-free linked stack: with a list, the loop walks a million
// freshly written nodes one dependent cache miss at a time; with an array it
// streams the pointers and prefetches the nodes, and a post costs one
// uncontended lock. Each thread's posts stay in the order it made them.
// A posted node is born `queued` (the inbox is the ready queue's waiting
// room), so taking the inbox copies pointers and touches no node: the nodes
// were just written on the posting thread's core, and a write here would wait
// for each in turn, where run_ready() prefetches them.
// Wakeups coalesce. wake_pending_ set means "the loop looks at the inbox
// before it next blocks in select": the first post that finds it clear sets
// it and writes a byte to the self-pipe, later posts write nothing. A take
// that finds posts leaves the flag set (they make the next select
// non-blocking, and run_once() checks the flag before every select); only a
// take that finds the inbox empty clears it, and then takes once more. A post
// that landed between the two takes saw the flag still set and wrote nothing:
// the second take has it. A post after that finds the flag clear and writes a
// fresh wakeup, so none is lost. While posts keep coming, posting threads make
// no write() and the loop no read().
// The inbox's cache lines travel: posts write a line of pointers, the loop
// reads it when it takes the batch, and its next take hands the same line
// back to the posts, still cached on the loop's core. Each post therefore asks
// for the line 16 slots ahead with intent to write: otherwise every 8th post
// waits at its next lock operation for the loop's core to give the line up
// (a third of a flood's time on this 2-core VM).
// close() marks the inbox closed (later posts are refused), takes what is
// left and cancels those handles, then waits for posts that are writing a
// wakeup (posting_) so none writes to a closed fd.
// Layer: core. Read next: platform/self_pipe.hpp.
#include "core/event_loop.hpp"

#include <thread>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace evloop {

using detail::HandleNode;

namespace {

// Takes the inbox mutex, trying a while before lock(). Either side holds it
// for nanoseconds (one push_back, one swap), but a thread that calls lock()
// on a held std::mutex sleeps in futex() at once, and the holder's unlock then
// has to wake it: two system calls and a wakeup on the other CPU, where a few
// pauses would do (test/bench/core_bench's flood made 9,000-15,000 futex()
// calls per million posts). A holder that was preempted still sends us to
// sleep in lock().
void lock_inbox(std::mutex& mutex) {
    for (int tries = 0; tries < 64; ++tries) {
        if (mutex.try_lock()) return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();  // a spin-wait hint: frees the core's resources meanwhile
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
    }
    mutex.lock();
}

#if defined(__x86_64__)
// Whether the CPU has PREFETCHW (CPUID 0x80000001, ECX bit 8: AMD64 CPUs,
// Intel since Broadwell). Compilers emit it for __builtin_prefetch(p, 1) only
// when told the target has it (-mprfchw), and a read prefetch does not help
// here, so we ask the CPU once: a constant global, read by every post. A post
// made before static initialisation sees false: no prefetch.
const bool g_has_prefetchw = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_PRFCHW) != 0;
}();
#endif

// Asks for the cache line holding `p` with intent to write. Only a hint.
inline void prefetch_for_write(const void* p) {
#if defined(__x86_64__)
    if (g_has_prefetchw) asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
    __builtin_prefetch(p, 1);  // a write prefetch where the target has one (aarch64: PRFM PSTL1KEEP)
#endif
}

}  // namespace

Handle EventLoop::call_soon_threadsafe(Callback cb) {
    HandleNode* node = HandleNode::create(2, HandleNode::queued, this, std::move(cb));
    {
        lock_inbox(inbox_mutex_);
        std::lock_guard lock(inbox_mutex_, std::adopt_lock);
        if (inbox_closed_) {
            node->flags |= HandleNode::cancelled;
            node->release();
            node->release();
            return Handle::refused(detail::refuse(errc::loop_closed, "call_soon_threadsafe"));
        }
        inbox_.push_back(node);
        constexpr std::size_t kAhead = 16;  // two lines of pointers
        if (inbox_.size() + kAhead < inbox_.capacity()) prefetch_for_write(inbox_.data() + inbox_.size() + kAhead);
    }
    // Only a post that finds the flag clear writes a byte; the load first
    // keeps a burst of posts from fighting over the line with exchanges.
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
    {
        lock_inbox(inbox_mutex_);
        std::lock_guard lock(inbox_mutex_, std::adopt_lock);
        inbox_.swap(inbox_taken_);  // both vectors keep their capacity
    }
    if (inbox_taken_.empty()) {
        // Nothing came: clear the flag, then look again. A post that lands
        // after the second swap sees the flag clear and writes its own wakeup
        // (the mutex orders this store before its load).
        wake_pending_.store(false);
        lock_inbox(inbox_mutex_);
        std::lock_guard lock(inbox_mutex_, std::adopt_lock);
        inbox_.swap(inbox_taken_);
    }
    // Otherwise the flag stays set: these callbacks make the next select
    // non-blocking, and run_once() looks at the inbox again before it.
    for (HandleNode* node : inbox_taken_) ready_.push(node);
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
