// core/errors.hpp — evloop's own error codes and how a refused call fails.
//
// OS failures are std::error_code in the system category (errno values).
// Refusals that asyncio answers with RuntimeError, ValueError or TypeError
// (call_soon on a closed loop, run_forever while running, a NaN delay) are
// evloop::errc values in their own category, and they fail the same way in
// every build:
//  - with exceptions: an evloop::Error (a std::system_error) is thrown;
//  - with -fno-exceptions: the message goes to the logger at ERROR level and
//    the call returns its "refused" value (an empty Handle, an error_code, a
//    Result holding the error) that says the same thing.
// Layer: core. Read next: core/log.hpp.
#pragma once

#include <stdexcept>
#include <string_view>
#include <system_error>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define EVLOOP_EXCEPTIONS 1
#else
#define EVLOOP_EXCEPTIONS 0
#endif

namespace evloop {

/// Refusals, each with asyncio's message (see error_category()).
enum class errc {
    loop_closed = 1,          ///< "Event loop is closed"
    loop_running,             ///< "This event loop is already running"
    another_loop_running,     ///< "Cannot run the event loop while another loop is running"
    close_running_loop,       ///< "Cannot close a running event loop"
    stopped_before_complete,  ///< "Event loop stopped before Future completed."
    no_running_loop,          ///< "no running event loop"
    no_current_loop,          ///< "There is no current event loop in thread"
    invalid_time,             ///< "delay/when must be a finite number"
    invalid_fd,               ///< "Invalid file descriptor"
    future_other_loop,        ///< "Future is attached to a different loop"
    invalid_state,            ///< "invalid state" (result of a pending future, set twice)
    cancelled,                ///< "cancelled" (asyncio's CancelledError)
    selector_failed,          ///< the selector could not be created
    executor_shutdown_called,        ///< "Executor shutdown has been called" (the loop's default executor)
    executor_submit_after_shutdown,  ///< "cannot schedule new futures after shutdown"
    invalid_executor,                ///< "executor must be ThreadPoolExecutor instance"
    timeout,                  ///< "timed out" (asyncio's TimeoutError: wait_for)
    await_itself,             ///< "Task cannot await on itself"
    exception_raised,         ///< "an exception was raised" (the future holds a non-system_error exception)
    generator_running,        ///< "asynchronous generator is already running"
    // net/ (the context passed to refuse() carries asyncio's exact wording)
    invalid_argument,         ///< "invalid argument" (asyncio's ValueError/TypeError for bad arguments)
    transport_closing,        ///< "transport is closing or closed" (write after close/abort)
    write_after_eof,          ///< "Cannot call write() after write_eof()"
    wrong_protocol,           ///< "the protocol does not fit this transport"
    empty_buffer,             ///< "get_buffer() returned an empty buffer"
    getaddrinfo_empty,        ///< "getaddrinfo() returned empty list"
    multiple_errors,          ///< "Multiple exceptions" (every address failed, with different errors)
    no_matching_local_address,///< "no matching local address with family found"
    server_closed,            ///< "Server is closed"
    already_serving,          ///< "server is already being awaited on serve_forever()"
    address_in_use,           ///< "Address is already in use" (a non-socket file at a Unix server's path)
    fd_used_by_transport,     ///< "File descriptor is used by a transport"
    fd_busy,                  ///< "File descriptor already has a reader (writer) waiting"
    socket_blocking,          ///< "the socket must be non-blocking"
    sendfile_in_progress,     ///< "unable to write; sendfile is in progress"
    sendfile_not_supported,   ///< "sendfile is not supported for this transport or file"
    invalid_address,          ///< "Invalid address: must be None or the connected address"
    // proc/
    invalid_signal,           ///< "invalid signal number" (outside 1..NSIG-1)
    signal_uncatchable,       ///< "signal cannot be caught" (SIGKILL, SIGSTOP)
    not_a_pipe,               ///< "Pipe transport is for pipes/sockets only."
    not_supported,            ///< "not supported by this transport" (write to a read pipe, …)
};

/// The category of evloop::errc codes (name "evloop").
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

#if EVLOOP_EXCEPTIONS
/// Thrown for refused calls in exception builds; code() is an evloop::errc.
class Error : public std::system_error {
public:
    using std::system_error::system_error;
};
#endif

namespace detail {
/// Fails a refused call: throws evloop::Error, or (no exceptions) logs
/// "evloop: <context>: <message>" at ERROR and returns so the caller can
/// return its refused value. Returns the code for that purpose.
std::error_code refuse(errc code, std::string_view context);
}  // namespace detail

}  // namespace evloop

template <>
struct std::is_error_code_enum<evloop::errc> : std::true_type {};
