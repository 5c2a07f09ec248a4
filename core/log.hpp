// core/log.hpp — the one logging hook of the library.
//
// asyncio logs through the "asyncio" logger; evloop calls one replaceable
// sink function. The default sink writes "evloop <LEVEL>: message" lines to
// stderr with a single write(2), so it is usable from any thread and needs no
// <iostream>. Embedded users point it at syslog or their own ring buffer.
// Layer: core.
#pragma once

#include <string_view>

namespace evloop {

enum class LogLevel { debug, info, warning, error };

/// Receives every log line (no trailing newline). Must be thread-safe.
using LogSink = void (*)(LogLevel level, std::string_view message);

/// Replaces the sink (nullptr restores the stderr default). Returns the old one.
LogSink set_log_sink(LogSink sink) noexcept;
/// The current sink.
LogSink get_log_sink() noexcept;

/// printf-style logging through the sink (lines are cut at 1 KiB).
void log(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

}  // namespace evloop
