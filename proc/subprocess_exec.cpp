// proc/subprocess_exec.cpp — EventLoop::subprocess_exec and subprocess_shell:
// check the arguments, make the protocol, start the child, hand it to a
// UnixSubprocessTransport.
//
// As asyncio, the protocol is made first and a factory that fails starts no
// child. The child is started inside the call (asyncio's Popen runs in the
// coroutine's first step): a program that cannot be executed fails the
// future before subprocess_exec returns, with execve's errno (CONTRACT 231).
// From then on the child is the transport's: cancelling the future closes
// the transport, which kills the child, and the watcher reaps it.
// Layer: proc. Read next: proc/subprocess_transport.cpp, proc/spawn.cpp.
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/event_loop.hpp"
#include "proc/spawn.hpp"
#include "proc/subprocess.hpp"
#include "proc/subprocess_transport.hpp"

namespace evloop {

namespace {

Future<SubprocessConnection> failed(EventLoop& loop, std::error_code error) {
    Future<SubprocessConnection> future(loop);
    (void)future.set_error(error);
    return future;
}

// asyncio's ValueErrors that have a C++ meaning (CONTRACT 211); the rest
// (shell=, text=, encoding=, bufsize=) have no field to be wrong in.
std::error_code check_arguments(EventLoop& loop, const SubprocessProtocolFactory& factory,
                                const SubprocessOptions& options, const char* call) {
    std::string context(call);
    // A closed loop runs no callback: nothing could ever complete the call.
    if (loop.is_closed()) return detail::refuse(errc::loop_closed, call);
    if (!factory) return detail::refuse(errc::invalid_argument, context + ": a protocol factory is expected");
    if (options.std_in.kind() == Stdio::Kind::to_stdout || options.std_out.kind() == Stdio::Kind::to_stdout)
        return detail::refuse(errc::invalid_argument, context + ": only stderr can go to stdout");
    return {};
}

Future<SubprocessConnection> start(EventLoop& loop, const SubprocessProtocolFactory& factory, std::string_view program,
                                   const std::vector<std::string>& argv, const SubprocessOptions& options) {
    std::shared_ptr<SubprocessProtocol> protocol;
#if EVLOOP_EXCEPTIONS
    try {
        protocol = factory();
    } catch (...) {
        Future<SubprocessConnection> future(loop);
        (void)future.set_exception(std::current_exception());
        return future;
    }
#else
    protocol = factory();
#endif
    if (!protocol) return failed(loop, make_error_code(errc::invalid_argument));  // the factory made no protocol
    Result<detail::SpawnedChild> child = detail::spawn_child(program, argv, options);
    if (!child) return failed(loop, child.error());  // ENOENT, EACCES…: the exec's own error (CONTRACT 231)
    Future<SubprocessConnection> future(loop);
    auto transport = detail::UnixSubprocessTransport::make(loop, std::move(*child), protocol, future);
    if (!transport) return failed(loop, transport.error());  // the child is already killed and reaped
    // Cancelled before it completed: close, which kills the child (CONTRACT 231).
    future.add_done_callback([weak = std::weak_ptr<detail::UnixSubprocessTransport>(*transport)](
                                 Future<SubprocessConnection>& done) {
        if (!done.cancelled()) return;
        if (auto self = weak.lock()) self->close();
    });
    return future;
}

}  // namespace

Future<SubprocessConnection> EventLoop::subprocess_exec(SubprocessProtocolFactory factory, std::string_view program,
                                                        std::vector<std::string> args,
                                                        const SubprocessOptions& options) {
    if (std::error_code ec = check_arguments(*this, factory, options, "subprocess_exec")) return failed(*this, ec);
    if (program.empty()) return failed(*this, detail::refuse(errc::invalid_argument, "subprocess_exec: program is empty"));
    std::vector<std::string> argv;
    argv.reserve(args.size() + 1);
    argv.emplace_back(program);
    for (std::string& arg : args) argv.push_back(std::move(arg));
    return start(*this, factory, program, argv, options);
}

Future<SubprocessConnection> EventLoop::subprocess_exec(SubprocessProtocolFactory factory, std::string_view program,
                                                        std::vector<std::string> args) {
    return subprocess_exec(std::move(factory), program, std::move(args), SubprocessOptions{});
}

Future<SubprocessConnection> EventLoop::subprocess_shell(SubprocessProtocolFactory factory, std::string_view command,
                                                         const SubprocessOptions& options) {
    if (std::error_code ec = check_arguments(*this, factory, options, "subprocess_shell")) return failed(*this, ec);
    // Popen(shell=True)'s command line. An empty command is accepted, as in
    // asyncio (sh -c '' exits 0).
    std::vector<std::string> argv{"/bin/sh", "-c", std::string(command)};
    return start(*this, factory, "/bin/sh", argv, options);
}

Future<SubprocessConnection> EventLoop::subprocess_shell(SubprocessProtocolFactory factory, std::string_view command) {
    return subprocess_shell(std::move(factory), command, SubprocessOptions{});
}

}  // namespace evloop
