// test/bench/bench_stats.hpp — what every benchmark here prints: the median
// of its runs with the min–max beside it (the machine's speed drifts, so one
// run says little). Shared by core_bench.cpp, task_bench.cpp and
// echo_bench.cpp.
#pragma once

#include <algorithm>
#include <cstdio>
#include <vector>

namespace evloop::bench {

struct Stat {
    double median, min, max;
};

inline Stat summarize(std::vector<double> samples) {
    std::sort(samples.begin(), samples.end());
    const std::size_t n = samples.size();
    const double median = n % 2 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
    return {median, samples.front(), samples.back()};
}

inline void print_detail(const char* name, const std::vector<double>& samples, const char* unit) {
    const Stat s = summarize(samples);
    std::printf("  %-34s %10.1f   %.1f–%.1f %s\n", name, s.median, s.min, s.max, unit);
}

}  // namespace evloop::bench
