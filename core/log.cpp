// core/log.cpp — the default stderr sink and printf-style formatting.
#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace evloop {
namespace {

void stderr_sink(LogLevel level, std::string_view message) {
    static constexpr const char* kNames[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
    char line[1200];
    int n = std::snprintf(line, sizeof line, "evloop %s: %.*s\n", kNames[static_cast<int>(level)],
                          static_cast<int>(message.size()), message.data());
    if (n > static_cast<int>(sizeof line) - 1) n = static_cast<int>(sizeof line) - 1;
    // One write() per line keeps lines from different threads whole.
    if (n > 0) {
        ssize_t written = ::write(2, line, static_cast<std::size_t>(n));
        (void)written;  // nowhere left to report a failing stderr
    }
}

std::atomic<LogSink> g_sink{&stderr_sink};

}  // namespace

LogSink set_log_sink(LogSink sink) noexcept {
    return g_sink.exchange(sink ? sink : &stderr_sink);
}

LogSink get_log_sink() noexcept { return g_sink.load(); }

void log(LogLevel level, const char* format, ...) {
    char message[1024];
    va_list args;
    va_start(args, format);
    int n = std::vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (n < 0) return;
    std::size_t len = static_cast<std::size_t>(n) < sizeof message ? static_cast<std::size_t>(n) : sizeof message - 1;
    g_sink.load()(level, std::string_view(message, len));
}

}  // namespace evloop
