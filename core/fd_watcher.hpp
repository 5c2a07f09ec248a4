// core/fd_watcher.hpp — FdWatcher: a reader or writer that lives inside the
// object it serves.
//
// add_reader(fd, callback) gives the fd a 64-byte HandleNode of its own for
// as long as it is watched. That is asyncio's shape and right for users, but
// every open connection pays it while idle. A transport instead embeds an
// FdWatcher (16 bytes: the function to call and its place in the ready queue)
// and registers it with the loop's internal add_reader(fd, FdWatcher&): the
// shape of libev's ev_io. Readiness queues and runs it exactly as it would a
// node (same iteration rules, same exception handling), and removing it
// takes it out of the ready queue at once, so the loop never calls it after
// remove_reader/remove_writer even within the iteration it was queued in.
// The owner keeps it alive (and unmoved) while it is registered.
// Layer: core. Read next: core/event_loop_io.cpp.
#pragma once

#include <cstdint>

namespace evloop::detail {

struct FdWatcher {
    using Fn = void (*)(FdWatcher&);

    explicit FdWatcher(Fn fn) noexcept : on_ready(fn) {}
    FdWatcher(const FdWatcher&) = delete;  // the loop holds its address
    FdWatcher& operator=(const FdWatcher&) = delete;

    /// Called on each readiness. The owner usually derives from FdWatcher and
    /// static_casts back to itself (no RTTI needed).
    Fn on_ready;
    /// While queued: its position in the loop's ready queue, so removal can
    /// blank that entry in O(1) (the ring's index bits of an absolute count).
    std::uint32_t ready_slot = 0;
    bool queued = false;
};

}  // namespace evloop::detail
