// core/policy.hpp — which loop is "the" loop: asyncio's policy functions.
//
// Two pieces of global state live here, both unavoidable: the running loop
// of each thread (a thread_local, set by run_forever, cleared in a forked
// child), and the process-wide policy object.
// Pinned behaviour (CONTRACT §26, item 366): get_event_loop() with no running
// loop and none set for this thread is refused ("There is no current event
// loop in thread"), as Python 3.14 does; it never creates a loop behind the
// caller's back, because in C++ someone would have to own it.
// Layer: core.
#pragma once

#include <memory>

namespace evloop {

class EventLoop;

/// The interface of a policy (asyncio.AbstractEventLoopPolicy).
class AbstractEventLoopPolicy {
public:
    virtual ~AbstractEventLoopPolicy() = default;
    /// The current loop of the calling thread (not necessarily running).
    virtual EventLoop* get_event_loop() = 0;
    /// Makes `loop` (not owned; nullptr clears) the calling thread's current loop.
    virtual void set_event_loop(EventLoop* loop) = 0;
    /// A new loop, owned by the caller.
    virtual std::unique_ptr<EventLoop> new_event_loop() = 0;
};

/// The default: one current loop per thread, none until set_event_loop.
class DefaultEventLoopPolicy : public AbstractEventLoopPolicy {
public:
    EventLoop* get_event_loop() override;
    void set_event_loop(EventLoop* loop) override;
    std::unique_ptr<EventLoop> new_event_loop() override;
};

/// The process-wide policy, created lazily (a DefaultEventLoopPolicy).
AbstractEventLoopPolicy& get_event_loop_policy();
/// Replaces the policy; nullptr restores the default. Not to be called while
/// other threads use the policy.
void set_event_loop_policy(std::unique_ptr<AbstractEventLoopPolicy> policy);

/// The loop running on this thread; refused (errc::no_running_loop, nullptr)
/// when none is.
EventLoop* get_running_loop();
/// The running loop if there is one, else the policy's current loop.
EventLoop* get_event_loop();
/// get_event_loop_policy().set_event_loop(loop).
void set_event_loop(EventLoop* loop);
/// get_event_loop_policy().new_event_loop().
std::unique_ptr<EventLoop> new_event_loop();

namespace detail {
/// The loop running on this thread, or nullptr (asyncio's _get_running_loop).
EventLoop* running_loop() noexcept;
void set_running_loop(EventLoop* loop) noexcept;
}  // namespace detail

}  // namespace evloop
