// core/errors.cpp — the evloop error category and detail::refuse.
#include "core/errors.hpp"

#include <string>

#include "core/log.hpp"

namespace evloop {
namespace {

class Category final : public std::error_category {
public:
    const char* name() const noexcept override { return "evloop"; }
    std::string message(int code) const override {
        switch (static_cast<errc>(code)) {
            case errc::loop_closed: return "Event loop is closed";
            case errc::loop_running: return "This event loop is already running";
            case errc::another_loop_running: return "Cannot run the event loop while another loop is running";
            case errc::close_running_loop: return "Cannot close a running event loop";
            case errc::stopped_before_complete: return "Event loop stopped before Future completed.";
            case errc::no_running_loop: return "no running event loop";
            case errc::no_current_loop: return "There is no current event loop in thread";
            case errc::invalid_time: return "delay/when must be a finite number (not NaN)";
            case errc::invalid_fd: return "Invalid file descriptor";
            case errc::future_other_loop: return "Future is attached to a different loop";
            case errc::invalid_state: return "invalid state";
            case errc::cancelled: return "cancelled";
            case errc::selector_failed: return "the selector could not be created";
            case errc::executor_shutdown_called: return "Executor shutdown has been called";
            case errc::executor_submit_after_shutdown: return "cannot schedule new futures after shutdown";
            case errc::invalid_executor: return "executor must be ThreadPoolExecutor instance";
            case errc::timeout: return "timed out";
            case errc::await_itself: return "Task cannot await on itself";
            case errc::exception_raised: return "an exception was raised (see Future::exception())";
            case errc::generator_running: return "asynchronous generator is already running";
            case errc::invalid_argument: return "invalid argument";
            case errc::transport_closing: return "transport is closing or closed";
            case errc::write_after_eof: return "Cannot call write() after write_eof()";
            case errc::wrong_protocol: return "the protocol does not fit this transport";
            case errc::empty_buffer: return "get_buffer() returned an empty buffer";
            case errc::getaddrinfo_empty: return "getaddrinfo() returned empty list";
            case errc::multiple_errors: return "Multiple exceptions";
            case errc::no_matching_local_address: return "no matching local address with family found";
            case errc::server_closed: return "Server is closed";
            case errc::already_serving: return "server is already being awaited on serve_forever()";
            case errc::address_in_use: return "Address is already in use";
            case errc::fd_used_by_transport: return "File descriptor is used by a transport";
            case errc::fd_busy: return "File descriptor already has a reader (writer) waiting";
            case errc::socket_blocking: return "the socket must be non-blocking";
            case errc::sendfile_in_progress: return "unable to write; sendfile is in progress";
            case errc::sendfile_not_supported: return "sendfile is not supported for this transport or file";
            case errc::invalid_address: return "Invalid address: must be None or the connected address";
            case errc::invalid_signal: return "invalid signal number";
            case errc::signal_uncatchable: return "signal cannot be caught";
            case errc::not_a_pipe: return "Pipe transport is for pipes/sockets only.";
            case errc::not_supported: return "not supported by this transport";
        }
        return "unknown evloop error";
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

namespace detail {

std::error_code refuse(errc code, std::string_view context) {
    std::error_code ec = make_error_code(code);
#if EVLOOP_EXCEPTIONS
    throw Error(ec, std::string(context));
#else
    log(LogLevel::error, "%.*s: %s", static_cast<int>(context.size()), context.data(), ec.message().c_str());
    return ec;
#endif
}

}  // namespace detail
}  // namespace evloop

#include <cstdlib>

#include "core/result.hpp"

namespace evloop::detail {

void bad_result_access(std::error_code ec) {
#if EVLOOP_EXCEPTIONS
    throw Error(ec, "Result::value() on an error");
#else
    log(LogLevel::error, "Result::value() on an error: %s", ec.message().c_str());
    std::abort();  // no value exists to return, and no exception to carry the error
#endif
}

}  // namespace evloop::detail
