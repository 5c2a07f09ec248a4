// core/policy.cpp — the running loop per thread, and the policy object.
#include "core/policy.hpp"

#include <pthread.h>

#include <mutex>

#include "core/errors.hpp"
#include "core/event_loop.hpp"

namespace evloop {
namespace {

thread_local EventLoop* t_running_loop = nullptr;
thread_local EventLoop* t_current_loop = nullptr;  // DefaultEventLoopPolicy's per-thread slot

std::mutex g_policy_mutex;
std::unique_ptr<AbstractEventLoopPolicy> g_policy;

// A forked child must not think the parent's loop runs in it (CONTRACT 210,
// 372): asyncio checks the pid, we clear the slot in the child at fork time.
void clear_in_child() { t_running_loop = nullptr; }
[[maybe_unused]] const int g_atfork_registered = ::pthread_atfork(nullptr, nullptr, &clear_in_child);

}  // namespace

namespace detail {
EventLoop* running_loop() noexcept { return t_running_loop; }
void set_running_loop(EventLoop* loop) noexcept { t_running_loop = loop; }
}  // namespace detail

EventLoop* DefaultEventLoopPolicy::get_event_loop() {
    if (!t_current_loop) {
        (void)detail::refuse(errc::no_current_loop, "get_event_loop");
        return nullptr;
    }
    return t_current_loop;
}

void DefaultEventLoopPolicy::set_event_loop(EventLoop* loop) { t_current_loop = loop; }

std::unique_ptr<EventLoop> DefaultEventLoopPolicy::new_event_loop() { return std::make_unique<EventLoop>(); }

AbstractEventLoopPolicy& get_event_loop_policy() {
    std::lock_guard lock(g_policy_mutex);
    if (!g_policy) g_policy = std::make_unique<DefaultEventLoopPolicy>();
    return *g_policy;
}

void set_event_loop_policy(std::unique_ptr<AbstractEventLoopPolicy> policy) {
    std::lock_guard lock(g_policy_mutex);
    g_policy = std::move(policy);
}

EventLoop* get_running_loop() {
    if (EventLoop* loop = t_running_loop) return loop;
    (void)detail::refuse(errc::no_running_loop, "get_running_loop");
    return nullptr;
}

EventLoop* get_event_loop() {
    // Inside a callback the running loop wins over the policy (CONTRACT 365).
    if (EventLoop* loop = t_running_loop) return loop;
    return get_event_loop_policy().get_event_loop();
}

void set_event_loop(EventLoop* loop) { get_event_loop_policy().set_event_loop(loop); }

std::unique_ptr<EventLoop> new_event_loop() { return get_event_loop_policy().new_event_loop(); }

}  // namespace evloop
