// platform/clock.hpp — the monotonic clock, in integer nanoseconds.
//
// Timers keep deadlines as integers so that equal deadlines compare equal and
// sub-millisecond deadlines never invert (libuv and uvloop round to ms).
#pragma once

#include <cstdint>
#include <ctime>

namespace evloop {

/// CLOCK_MONOTONIC now, in nanoseconds (asyncio's time.monotonic()).
inline std::int64_t monotonic_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// The clock's resolution in nanoseconds (1 on Linux).
inline std::int64_t monotonic_resolution_ns() noexcept {
    timespec ts;
    if (::clock_getres(CLOCK_MONOTONIC, &ts) != 0) return 1;
    std::int64_t ns = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    return ns > 0 ? ns : 1;
}

}  // namespace evloop
