// core/async_generator.hpp — AsyncGenerator<T>: a coroutine that co_yields
// values and may co_await in between (Python's async generator).
//
//     evloop::AsyncGenerator<int> ticks(int n) {
//         for (int i = 0; i < n; ++i) {
//             if (!co_await evloop::sleep(0.01)) co_return;  // cancelled: stop
//             co_yield i;
//         }
//     }
//     // in a Task:
//     auto gen = ticks(3);
//     while (auto v = co_await gen.next()) use(*v);
//     if (gen.error()) ...;            // set by co_await evloop::fail(ec) in the body
//
// next() runs the generator's body inline in the consuming task, up to its
// next co_yield or its end; what the body awaits is awaited by that task, so
// cancelling the task reaches it. The object owns the frame: destroying it
// destroys the frame and runs the locals' destructors. The loop tracks every
// generator from its first next(), and shutdown_asyncgens() destroys the
// frames of those still alive (asyncio's asyncgen hooks).
// Layer: core.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

#include "core/task_core.hpp"

namespace evloop {

template <class T>
class [[nodiscard]] AsyncGenerator {
public:
    struct promise_type;
    using Handle = std::coroutine_handle<promise_type>;

    // Back to the consumer, whether the body yielded, ended or failed.
    struct ToConsumer {
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(Handle h) noexcept {
            promise_type& p = h.promise();
            p.running = false;
            std::coroutine_handle<> next = p.continuation;
            p.continuation = nullptr;
            return next ? next : std::noop_coroutine();
        }
        void await_resume() const noexcept {}
    };

    struct promise_type : detail::PromiseBase, detail::AsyncGenHook {
        std::optional<T> current;
        std::error_code error;
#if EVLOOP_EXCEPTIONS
        std::exception_ptr exception;
#endif
        bool finished = false;
        AsyncGenerator* owner = nullptr;

        AsyncGenerator get_return_object() noexcept { return AsyncGenerator(Handle::from_promise(*this)); }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        ToConsumer final_suspend() noexcept {
            finished = true;
            return {};
        }
        template <class U>
        ToConsumer yield_value(U&& value) {
            current.emplace(std::forward<U>(value));
            return {};
        }
        void return_void() const noexcept {}
        void unhandled_exception() noexcept {
#if EVLOOP_EXCEPTIONS
            exception = std::current_exception();
#else
            std::terminate();  // unreachable without exceptions
#endif
        }
        /// co_await evloop::fail(ec): the generator ends with `ec`. Its frame
        /// stays suspended until the generator object is destroyed.
        std::coroutine_handle<> fail(std::error_code ec, std::coroutine_handle<> self) noexcept {
            error = ec ? ec : make_error_code(errc::invalid_state);
            finished = true;
            return ToConsumer{}.await_suspend(Handle::from_address(self.address()));
        }
    };

    /// The awaitable next() returns; co_await gives the next value, or
    /// nullopt once the generator has ended (or failed: see error()).
    class Next {
    public:
        explicit Next(AsyncGenerator& gen) noexcept : gen_(gen) {}
        bool await_ready() const noexcept { return !gen_.handle_ || gen_.handle_.promise().finished; }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> consumer) {
            static_assert(std::is_base_of_v<detail::PromiseBase, Promise>,
                          "AsyncGenerator::next() can be co_awaited in evloop::Task and AsyncGenerator coroutines");
            promise_type& p = gen_.handle_.promise();
            if (p.running) {  // two consumers at once: refuse the second
                refused_ = true;
                return consumer;
            }
            detail::TaskCore* runner = consumer.promise().runner;
            p.runner = runner;
            p.continuation = consumer;
            p.running = true;
            if (!p.loop) detail::loop_track_asyncgen(runner->loop(), p);  // first iteration
            return gen_.handle_;
        }
        std::optional<T> await_resume() {
            if (refused_) {
                (void)detail::refuse(errc::generator_running, "AsyncGenerator::next");
                return std::nullopt;
            }
            if (!gen_.handle_) return std::nullopt;
            promise_type& p = gen_.handle_.promise();
#if EVLOOP_EXCEPTIONS
            if (p.exception) std::rethrow_exception(std::exchange(p.exception, nullptr));
#endif
            if (!p.current) return std::nullopt;
            std::optional<T> value = std::move(p.current);
            p.current.reset();
            return value;
        }

    private:
        AsyncGenerator& gen_;
        bool refused_ = false;
    };

    AsyncGenerator(AsyncGenerator&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {
        if (handle_) handle_.promise().owner = this;
    }
    AsyncGenerator& operator=(AsyncGenerator&& other) noexcept {
        if (this != &other) {
            destroy();
            handle_ = std::exchange(other.handle_, nullptr);
            if (handle_) handle_.promise().owner = this;
        }
        return *this;
    }
    ~AsyncGenerator() { destroy(); }

    /// co_await gen.next(): the next value, or nullopt at the end.
    Next next() noexcept { return Next(*this); }
    /// The error the body ended with (co_await evloop::fail(ec)), if any.
    std::error_code error() const noexcept { return handle_ ? handle_.promise().error : closed_error_; }
    /// True once the body has ended, failed, or was closed.
    bool finished() const noexcept { return !handle_ || handle_.promise().finished; }

private:
    explicit AsyncGenerator(Handle h) noexcept : handle_(h) {
        h.promise().owner = this;
        h.promise().close_frame = &close_from_loop;
    }
    void destroy() noexcept {
        if (handle_) std::exchange(handle_, nullptr).destroy();
    }
    // shutdown_asyncgens(): the loop closes the frame; the object stays, empty.
    static void close_from_loop(detail::AsyncGenHook& hook) noexcept {
        promise_type& p = static_cast<promise_type&>(hook);
        AsyncGenerator* owner = p.owner;
        owner->closed_error_ = p.error;
        owner->destroy();
    }

    Handle handle_;
    std::error_code closed_error_;
};

}  // namespace evloop
