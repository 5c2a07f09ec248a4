// platform/selector_table.hpp — the fd → SelectorKey table both POSIX backends
// share. fds are small dense integers, so a vector indexed by fd gives O(1)
// lookup with no hashing; the vector only grows to the highest fd registered.
// Layer: platform, private to the backends.
#pragma once

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <vector>

#include "platform/selector.hpp"

namespace evloop::detail {

/// A non-empty mask of EVENT_READ / EVENT_WRITE and nothing else.
inline bool valid_events(std::uint32_t events) noexcept {
    return events != 0 && (events & ~(EVENT_READ | EVENT_WRITE)) == 0;
}

class SelectorTable {
public:
    /// Adds a key; EEXIST if `fd` already has one, EINVAL for a bad mask or fd.
    std::error_code add(int fd, std::uint32_t events, void* data) {
        if (fd < 0 || !valid_events(events))
            return {EINVAL, std::system_category()};
        if (static_cast<std::size_t>(fd) >= slots_.size()) slots_.resize(static_cast<std::size_t>(fd) + 1);
        SelectorKey& key = slots_[static_cast<std::size_t>(fd)];
        if (key.fd >= 0) return {EEXIST, std::system_category()};
        key = SelectorKey{fd, events, data, ++generation_};
        ++count_;
        return {};
    }
    /// The generation the next add() will give its key.
    std::uint32_t next_generation() const noexcept { return generation_ + 1; }
    SelectorKey* find(int fd) noexcept {
        if (fd < 0 || static_cast<std::size_t>(fd) >= slots_.size()) return nullptr;
        SelectorKey& key = slots_[static_cast<std::size_t>(fd)];
        return key.fd >= 0 ? &key : nullptr;
    }
    const SelectorKey* find(int fd) const noexcept { return const_cast<SelectorTable*>(this)->find(fd); }
    void remove(SelectorKey& key) noexcept {
        key = SelectorKey{};
        --count_;
    }
    std::size_t size() const noexcept { return count_; }
    /// Every slot, used or not (a used slot has fd >= 0).
    std::vector<SelectorKey>& slots() noexcept { return slots_; }

private:
    std::vector<SelectorKey> slots_;
    std::size_t count_ = 0;
    std::uint32_t generation_ = 0;
};

/// Converts a timeout in ns to poll/epoll milliseconds: negative → -1 (forever),
/// anything between 0 and 1 ms rounds *up* to 1 so a short wait never spins,
/// and the result is clamped to one day (asyncio's MAXIMUM_SELECT_TIMEOUT).
inline int timeout_to_ms(std::int64_t timeout_ns) noexcept {
    constexpr std::int64_t kDayMs = 24 * 3600 * 1000LL;
    if (timeout_ns < 0) return -1;
    std::int64_t ms = timeout_ns / 1'000'000 + (timeout_ns % 1'000'000 != 0 ? 1 : 0);
    return static_cast<int>(ms > kDayMs ? kDayMs : ms);
}

}  // namespace evloop::detail
