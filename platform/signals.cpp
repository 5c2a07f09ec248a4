// platform/signals.cpp — the process-wide signal table and the sigaction
// handler every loop of the process shares (signals.hpp says why there is one).
//
// The table is a fixed array of slots, one per watching fd (a loop's
// self-pipe write end). It is fixed and its fields are lock-free atomics
// because the handler may interrupt any code, including code holding a lock
// or inside malloc: it may only read atomics and call async-signal-safe
// functions (getpid, write). A slot:
//   pid        the process that made the watch;
//   fd         the fd the signal numbers go to (-1: the slot is free);
//   mask       bit sig-1 for each signal the fd watches (NSIG is 65 on
//              Linux: signals 1..64 fit one 64-bit word);
//   in_flight  handlers between looking at this slot and leaving it.
//
// Registration and removal hold a mutex the handler never takes. Removing a
// watch clears its bit, then waits until in_flight is 0. All these atomics
// are sequentially consistent, so a handler either counted itself in before
// that wait began (and is waited for), or reads the mask after the bit was
// cleared (and writes nothing). So when unwatch returns no handler is left
// that could write that signal to that fd, and the caller may close it: an
// fd number closed too early could be reused by another open() and receive
// a stray byte. A slot is handed out again only once its mask is 0 and the
// wait is over; the new owner stores pid and fd before it sets a bit.
//
// Fork: a child that did not exec inherits the handler, this table and the
// parent's pipes. The pid in each slot keeps a signal sent to the child from
// waking the parent's loop through the shared pipe (CONTRACT 209), while a
// loop the child creates gets slots of its own that do work.
// Layer: platform. Read next: proc/signal_handlers.cpp.
#include "platform/signals.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <mutex>
#include <thread>

#include "platform/fd.hpp"

namespace evloop {
namespace {

static_assert(NSIG - 1 <= 64, "signal numbers must fit the 64-bit mask");
static_assert(NSIG - 1 <= 255, "a signal number travels as one byte");
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free,
              "a signal handler may only touch lock-free atomics");
static_assert(sizeof(pid_t) == sizeof(int));

// One slot per watching fd, i.e. per loop that handles signals: 64 loops
// with signal handlers in one process is far more than a program needs.
constexpr int kSlots = 64;

struct Slot {
    std::atomic<int> pid{0};
    std::atomic<int> fd{-1};
    std::atomic<std::uint64_t> mask{0};
    std::atomic<int> in_flight{0};
};

// The globals a signal handler must reach (STYLE.md: "globals only where
// unavoidable"). Constant-initialized, trivially destructible: usable by a
// loop destroyed during static destruction.
Slot g_slots[kSlots];
std::mutex g_registry_mutex;  // registration and removal only; never the handler

std::uint64_t bit_of(int sig) noexcept { return std::uint64_t{1} << (sig - 1); }

// The handler. Everything it does is async-signal-safe: getpid, atomics,
// write. It preserves errno, because it may run between a syscall in the
// interrupted code and that code's errno check.
extern "C" void on_signal(int sig) {
    const int saved_errno = errno;
    const int self = ::getpid();
    const std::uint64_t bit = bit_of(sig);
    const auto byte = static_cast<unsigned char>(sig);
    for (Slot& slot : g_slots) {
        slot.in_flight.fetch_add(1);
        if ((slot.mask.load() & bit) != 0 && slot.pid.load() == self) {
            // Non-blocking: a full pipe (EAGAIN) is fine, the unread bytes
            // already wake the loop. EINTR cannot happen: every signal is
            // blocked while this handler runs (sa_mask).
            (void)::write(slot.fd.load(), &byte, 1);
        }
        slot.in_flight.fetch_sub(1);
    }
    errno = saved_errno;
}

bool watched_by_any_slot(int sig) noexcept {
    for (const Slot& slot : g_slots)
        if (slot.mask.load() & bit_of(sig)) return true;
    return false;
}

std::error_code install_handler(int sig) noexcept {
    struct sigaction action {};
    action.sa_handler = &on_signal;
    ::sigfillset(&action.sa_mask);  // the handler is short: nothing gains from nesting
    action.sa_flags = SA_RESTART;   // interrupted syscalls restart (CONTRACT 203)
    if (::sigaction(sig, &action, nullptr) == -1) return last_error();
    return {};
}

void restore_default(int sig) noexcept {
    // As asyncio: SIG_DFL, for SIGINT too (C++ has no default_int_handler;
    // SIGINT's default action, ending the process, is its equivalent).
    // sigaction fails only for an invalid or uncatchable signal, which the
    // handler was installed for, so it cannot fail here.
    struct sigaction action {};
    action.sa_handler = SIG_DFL;
    ::sigemptyset(&action.sa_mask);
    (void)::sigaction(sig, &action, nullptr);
}

// Clears `bits` in `slot` and waits out the handlers that may still be using
// them (file comment); frees the slot if nothing is left. Returns the bits
// that were set. Registry mutex held.
std::uint64_t clear_bits(Slot& slot, std::uint64_t bits) noexcept {
    const std::uint64_t before = slot.mask.fetch_and(~bits);
    while (slot.in_flight.load() != 0) std::this_thread::yield();
    if ((before & ~bits) == 0) {
        slot.fd.store(-1);
        slot.pid.store(0);
    }
    return before & bits;
}

// Clears `bits` in every slot of `wakeup_fd` and restores SIG_DFL for each
// signal that has no watcher left. Registry mutex held. Slots of the same
// fd number inherited from a parent process count too: in a forked child
// they only ever belong to the inherited copy of the parent's loop.
void unwatch_locked(std::uint64_t bits, int wakeup_fd) noexcept {
    std::uint64_t cleared = 0;
    for (Slot& slot : g_slots)
        if (slot.fd.load() == wakeup_fd) cleared |= clear_bits(slot, bits);
    for (int sig = 1; sig < NSIG; ++sig)
        if ((cleared & bit_of(sig)) && !watched_by_any_slot(sig)) restore_default(sig);
}

}  // namespace

bool is_valid_signal(int sig) noexcept { return sig >= 1 && sig < NSIG; }

bool is_catchable_signal(int sig) noexcept { return sig != SIGKILL && sig != SIGSTOP; }

std::error_code watch_signal(int sig, int wakeup_fd) {
    if (!is_valid_signal(sig) || !is_catchable_signal(sig)) return {EINVAL, std::system_category()};
    if (wakeup_fd < 0) return {EBADF, std::system_category()};
    std::lock_guard lock(g_registry_mutex);
    const int self = ::getpid();
    Slot* mine = nullptr;
    Slot* free = nullptr;
    for (Slot& slot : g_slots) {
        if (slot.fd.load() == wakeup_fd && slot.pid.load() == self) mine = &slot;
        if (!free && slot.fd.load() == -1) free = &slot;
    }
    if (mine && (mine->mask.load() & bit_of(sig))) return {};  // watching already: one watch
    if (!mine && !free) return {ENOSPC, std::system_category()};
    // Install before publishing the slot: if sigaction fails nothing was
    // changed, so there is nothing to roll back (CONTRACT 207).
    if (!watched_by_any_slot(sig))
        if (std::error_code ec = install_handler(sig)) return ec;
    if (!mine) {
        mine = free;
        mine->pid.store(self);
        mine->fd.store(wakeup_fd);
    }
    mine->mask.fetch_or(bit_of(sig));
    return {};
}

void unwatch_signal(int sig, int wakeup_fd) noexcept {
    if (!is_valid_signal(sig) || wakeup_fd < 0) return;
    std::lock_guard lock(g_registry_mutex);
    unwatch_locked(bit_of(sig), wakeup_fd);
}

void unwatch_all_signals(int wakeup_fd) noexcept {
    if (wakeup_fd < 0) return;
    std::lock_guard lock(g_registry_mutex);
    unwatch_locked(~std::uint64_t{0}, wakeup_fd);
}

}  // namespace evloop
