// core/event_loop_errors.cpp — where failures go: the exception handler and
// the slow-callback report (asyncio's call_exception_handler and debug mode).
// Layer: core.
#include <cstdio>
#include <string>

#include "core/event_loop.hpp"
#include "core/log.hpp"

namespace evloop {

void EventLoop::call_exception_handler(const ExceptionContext& context) {
    if (!exception_handler_) {
        default_exception_handler(context);
        return;
    }
#if EVLOOP_EXCEPTIONS
    try {
        exception_handler_(*this, context);
    } catch (...) {
        // As asyncio: a broken handler must not take the loop down with it.
        log(LogLevel::error, "Unhandled error in exception handler (context message: %s)",
            context.message.c_str());
    }
#else
    exception_handler_(*this, context);
#endif
}

void EventLoop::default_exception_handler(const ExceptionContext& context) {
    std::string text = context.message.empty() ? "Unhandled error in event loop" : context.message;
    if (context.error) {
        text += "\nerror: " + context.error.message() + " (" + context.error.category().name() + ":" +
                std::to_string(context.error.value()) + ")";
    }
#if EVLOOP_EXCEPTIONS
    if (context.exception) {
        try {
            std::rethrow_exception(context.exception);
        } catch (const std::exception& e) {
            text += std::string("\nexception: ") + e.what();
        } catch (...) {
            text += "\nexception: (not a std::exception)";
        }
    }
#endif
    if (context.handle) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "\nhandle: <Handle %p>", static_cast<void*>(context.handle.node()));
        text += buf;
    }
    if (context.socket >= 0) text += "\nsocket: fd " + std::to_string(context.socket);
    log(LogLevel::error, "%s", text.c_str());
}

void EventLoop::report_slow(const void* what, std::int64_t took_ns) {
    log(LogLevel::warning, "Executing <Handle %p> took %.3f seconds", what,
        static_cast<double>(took_ns) / 1e9);
}

}  // namespace evloop
