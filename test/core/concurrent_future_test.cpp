// test/core/concurrent_future_test.cpp — run_coroutine_threadsafe and
// ConcurrentFuture (core/concurrent_future.hpp): CONTRACT 60–62, with real
// threads (this suite runs under TSan in CI). 60's TypeError for a
// non-coroutine is a compile error here: only a Task is accepted.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <thread>

#include "core/concurrent_future.hpp"
#include "core/task_helpers.hpp"
#include "test/support.hpp"

using namespace evloop;

namespace {

// A loop running forever on its own thread, stopped and closed at the end.
struct LoopThread {
    EventLoop loop;
    std::thread thread;
    std::thread::id id;
    LoopThread() {
        std::atomic<bool> up{false};
        thread = std::thread([this, &up] {
            id = std::this_thread::get_id();
            (void)loop.call_soon([&up] { up = true; });
            (void)loop.run_forever();
        });
        while (!up) std::this_thread::yield();
    }
    void stop() {
        if (!thread.joinable()) return;
        (void)loop.call_soon_threadsafe([this] { loop.stop(); });
        thread.join();
    }
    ~LoopThread() { stop(); }
};

Task<int> answer_on(std::thread::id& seen, double delay) {
    seen = std::this_thread::get_id();
    Result<void> r = co_await sleep(delay);
    if (!r) co_return r.error();
    co_return 42;
}

}  // namespace

TEST_SUITE("threadsafe") {

TEST_CASE("60: run_coroutine_threadsafe runs the task on the loop's thread; result() waits for it") {
    LoopThread lt;
    std::thread::id seen;
    ConcurrentFuture<int> f = run_coroutine_threadsafe(answer_on(seen, 0.01), lt.loop);
    Result<int> r = f.result(5.0);
    REQUIRE(r.has_value());
    CHECK(*r == 42);
    CHECK(f.done());
    CHECK(seen == lt.id);
}

TEST_CASE("60: result(timeout) gives errc::timeout while the task runs") {
    test::LogCapture quiet;  // the loop may close before the cancel lands: a pending-task report
    LoopThread lt;
    std::thread::id seen;
    ConcurrentFuture<int> f = run_coroutine_threadsafe(answer_on(seen, 10.0), lt.loop);
    CHECK(f.result(0.02).error() == errc::timeout);
    CHECK_FALSE(f.done());
    CHECK(f.cancel());  // and the task with it (next case)
}

TEST_CASE("61: cancelling the concurrent future cancels the task; the task cancelled cancels the future") {
    LoopThread lt;
    std::atomic<bool> cleaned{false};
    auto body = [](std::atomic<bool>& c) -> Task<int> {
        struct Cleanup {
            std::atomic<bool>& flag;
            ~Cleanup() { flag = true; }
        } cleanup{c};
        Result<void> r = co_await sleep(10.0);
        if (!r) co_return r.error();
        co_return 1;
    };
    ConcurrentFuture<int> f = run_coroutine_threadsafe(body(cleaned), lt.loop);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(f.cancel());
    CHECK_FALSE(f.cancel());
    CHECK(f.cancelled());
    CHECK(f.result().error() == errc::cancelled);
    for (int i = 0; i < 500 && !cleaned; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    CHECK(cleaned);  // the task was cancelled on the loop and its frame is gone

    // The other way: the task is cancelled on the loop.
    auto self_cancel = []() -> Task<int> {
        (void)current_task().cancel();
        Result<void> r = co_await sleep(0);
        if (!r) co_return r.error();
        co_return 0;
    };
    ConcurrentFuture<int> g = run_coroutine_threadsafe(self_cancel(), lt.loop);
    CHECK(g.result(5.0).error() == errc::cancelled);
    CHECK(g.cancelled());
}

TEST_CASE("a closed loop refuses; a task still pending when its loop closes completes the future with loop_closed") {
    {
        EventLoop closed;
        (void)closed.close();
        std::thread::id seen;
        ConcurrentFuture<int> f;
        CHECK_REFUSED(errc::loop_closed, f = run_coroutine_threadsafe(answer_on(seen, 0.0), closed));
#if !EVLOOP_EXCEPTIONS
        CHECK(f.result(1.0).error() == errc::loop_closed);  // exception builds threw instead
#endif
    }
    std::thread::id seen;
    ConcurrentFuture<int> f;
    {
        LoopThread lt;
        f = run_coroutine_threadsafe(answer_on(seen, 10.0), lt.loop);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        lt.stop();
        test::LogCapture quiet;  // close() reports the pending task
        (void)lt.loop.close();
    }
    CHECK(f.result(5.0).error() == errc::loop_closed);
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("62: a task factory that throws: the future gets the exception, the handler is called once") {
    LoopThread lt;
    std::atomic<int> handled{0};
    std::promise<void> configured;
    (void)lt.loop.call_soon_threadsafe([&] {
        lt.loop.set_task_factory([](EventLoop&, TaskRef) { throw std::runtime_error("no tasks today"); });
        lt.loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) { ++handled; });
        configured.set_value();
    });
    configured.get_future().wait();
    std::thread::id seen;
    ConcurrentFuture<int> f = run_coroutine_threadsafe(answer_on(seen, 0.0), lt.loop);
    CHECK_THROWS_WITH_AS((void)f.result(5.0), "no tasks today", std::runtime_error);
    lt.stop();
    CHECK(handled == 1);
    test::LogCapture quiet;
    (void)lt.loop.close();
}
#endif

}  // TEST_SUITE("threadsafe")
