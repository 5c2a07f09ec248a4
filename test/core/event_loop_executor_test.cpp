// test/core/event_loop_executor_test.cpp — run_in_executor, the default
// executor and shutdown_default_executor (core/event_loop_executor.cpp),
// CONTRACT §5 (63–69) plus items 2 and 5. Cases that start threads are in the
// "threadsafe" suite, which CI also runs under ThreadSanitizer; ASan/LSan
// builds prove that every path (cancel, close with work in flight, a result
// after the loop is gone) frees what it allocated.
//
// Items without a C++ meaning: 35 (a non-callable given to run_in_executor is
// a compile error, not a TypeError at run time); 65's TypeError for other
// executor types (set_default_executor takes a unique_ptr<ThreadPoolExecutor>;
// the static_assert below proves nothing else compiles).
#include <doctest/doctest.h>

#include <pthread.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/event_loop.hpp"
#include "test/support.hpp"
#include "test/thread_event.hpp"

using namespace evloop;
using evloop::test::run_until;
using evloop::test::ThreadEvent;
using evloop::test::wait_for_condition;

namespace {

std::string current_thread_name() {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    return name;
}

}  // namespace

TEST_CASE("2, 66: after close(), run_in_executor is refused with 'Event loop is closed', default or not") {
    EventLoop loop;
    ThreadPoolExecutor pool(1);
    CHECK_FALSE(loop.close());
    bool ran = false;
    CHECK_REFUSED(errc::loop_closed, (void)loop.run_in_executor(nullptr, [&] { ran = true; }));
    CHECK_REFUSED(errc::loop_closed, (void)loop.run_in_executor(&pool, [&] { ran = true; }));
    // close() also set the shutdown flag, but the closed-loop check wins.
    CHECK_REFUSED(errc::loop_closed, (void)loop.shutdown_default_executor());
    CHECK_FALSE(ran);
    CHECK(loop.default_executor() == nullptr);
    CHECK(pool.thread_count() == 0);
#if !EVLOOP_EXCEPTIONS
    test::LogCapture quiet;
    Future<int> refused = loop.run_in_executor(nullptr, [] { return 1; });
    CHECK(refused.result().error() == errc::loop_closed);
#endif
}

TEST_CASE("65: set_default_executor takes only a ThreadPoolExecutor; null is refused") {
    using Set = decltype(&EventLoop::set_default_executor);
    static_assert(std::is_invocable_v<Set, EventLoop&, std::unique_ptr<ThreadPoolExecutor>>);
    static_assert(!std::is_invocable_v<Set, EventLoop&, std::unique_ptr<int>>);
    EventLoop loop;
    CHECK_REFUSED(errc::invalid_executor, loop.set_default_executor(nullptr));
    CHECK(loop.default_executor() == nullptr);
    CHECK(make_error_code(errc::invalid_executor).message() == "executor must be ThreadPoolExecutor instance");
}

TEST_CASE("66: shutdown_default_executor before any default executor exists completes at once; "
          "run_in_executor(nullptr) is then refused with 'Executor shutdown has been called'") {
    EventLoop loop;
    Future<void> done = loop.shutdown_default_executor();
    CHECK(done.done());
    CHECK(done.result().has_value());
    CHECK_REFUSED(errc::executor_shutdown_called, (void)loop.run_in_executor(nullptr, [] {}));
    CHECK(loop.default_executor() == nullptr);  // the refusal did not create one
    CHECK(make_error_code(errc::executor_shutdown_called).message() == "Executor shutdown has been called");
}

TEST_CASE("an explicit executor that was shut down refuses: 'cannot schedule new futures after shutdown'") {
    EventLoop loop;
    ThreadPoolExecutor pool(1);
    pool.shutdown();
    CHECK_REFUSED(errc::executor_submit_after_shutdown, (void)loop.run_in_executor(&pool, [] { return 1; }));
#if !EVLOOP_EXCEPTIONS
    test::LogCapture quiet;
    Future<int> refused = loop.run_in_executor(&pool, [] { return 1; });
    CHECK(refused.result().error() == errc::executor_submit_after_shutdown);
#endif
    // The refused call left nothing behind for close() (LSan would see it).
}

TEST_SUITE("threadsafe") {

TEST_CASE("63, 64: run_in_executor(nullptr) creates the default executor on first use; "
          "the work runs on one of its threads, named evloop_N") {
    EventLoop loop;
    CHECK(loop.default_executor() == nullptr);
    const std::thread::id loop_thread = std::this_thread::get_id();
    Future<std::string> name = loop.run_in_executor(nullptr, [loop_thread] {
        return std::this_thread::get_id() == loop_thread ? std::string("the loop's thread") : current_thread_name();
    });
    REQUIRE(loop.default_executor() != nullptr);
    CHECK(loop.default_executor()->max_workers() == ThreadPoolExecutor::default_max_workers());
    CHECK(run_until(loop, [&] { return name.done(); }));
    CHECK(name.result()->rfind("evloop_", 0) == 0);
    // The same executor serves later calls.
    ThreadPoolExecutor* first = loop.default_executor();
    Future<int> again = loop.run_in_executor(nullptr, [] { return 2; });
    CHECK(loop.default_executor() == first);
    CHECK(run_until(loop, [&] { return again.done(); }));
}

TEST_CASE("results: a value, a string, void; the future completes on the loop, through its done callbacks") {
    EventLoop loop;
    ThreadPoolExecutor pool(2);
    Future<int> number = loop.run_in_executor(&pool, [] { return 6 * 7; });
    Future<std::string> text = loop.run_in_executor(&pool, [] { return std::string(100, 'x'); });
    std::atomic<bool> side_effect{false};
    Future<void> nothing = loop.run_in_executor(&pool, [&side_effect] { side_effect = true; });
    bool callback_on_loop = false;
    const std::thread::id loop_thread = std::this_thread::get_id();
    nothing.add_done_callback([&](Future<void>&) { callback_on_loop = std::this_thread::get_id() == loop_thread; });
    CHECK(run_until(loop, [&] { return number.done() && text.done() && nothing.done() && callback_on_loop; }));
    CHECK(*number.result() == 42);
    CHECK(*text.result() == std::string(100, 'x'));
    CHECK(nothing.result().has_value());
    CHECK(side_effect);
}

TEST_CASE("10,000 concurrent run_in_executor calls each run and complete exactly once") {
    constexpr int kCalls = 10000;
    EventLoop loop;
    std::vector<std::atomic<int>> runs(kCalls);
    std::vector<Future<int>> futures;
    futures.reserve(kCalls);
    int completions = 0;
    for (int i = 0; i < kCalls; ++i) {
        futures.push_back(loop.run_in_executor(nullptr, [&runs, i] {
            ++runs[static_cast<std::size_t>(i)];
            return i;
        }));
        futures.back().add_done_callback([&completions](Future<int>&) { ++completions; });
    }
    CHECK(run_until(loop, [&] { return completions == kCalls; }, 30.0));
    bool all_right = true;
    for (int i = 0; i < kCalls; ++i) {
        auto index = static_cast<std::size_t>(i);
        all_right = all_right && runs[index] == 1 && *futures[index].result() == i;
    }
    CHECK(all_right);
    CHECK(completions == kCalls);
    CHECK(loop.default_executor()->thread_count() <= loop.default_executor()->max_workers());
}

TEST_CASE("68: cancelling the future before the work starts drops the work: it never runs") {
    EventLoop loop;
    ThreadPoolExecutor pool(1);
    ThreadEvent started, release;
    Future<void> blocker = loop.run_in_executor(&pool, [&] {
        started.set();
        release.wait();
    });
    REQUIRE(started.wait());  // the pool's only thread is busy
    auto capture = std::make_shared<int>(0);
    std::atomic<bool> ran{false};
    Future<int> dropped = loop.run_in_executor(&pool, [capture, &ran] {
        ran = true;
        return 1;
    });
    CHECK(capture.use_count() == 2);
    CHECK(dropped.cancel());
    // The cancellation reaches the work through a done callback, on the next iteration.
    CHECK(run_until(loop, [&] { return capture.use_count() == 1; }));
    release.set();
    CHECK(run_until(loop, [&] { return blocker.done(); }));
    pool.shutdown();  // everything the pool accepted has run or was dropped
    CHECK_FALSE(ran);
    CHECK(dropped.cancelled());
    CHECK(dropped.result().error() == errc::cancelled);
}

TEST_CASE("68: cancelled while running: the work finishes, its result is discarded, the future stays cancelled") {
    EventLoop loop;
    ThreadPoolExecutor pool(1);
    ThreadEvent started, release;
    auto token = std::make_shared<int>(7);
    Future<std::shared_ptr<int>> future = loop.run_in_executor(&pool, [&, token] {
        started.set();
        release.wait();
        return token;  // the result holds a reference: it shows when the result is freed
    });
    REQUIRE(started.wait());
    CHECK(future.cancel("not needed"));
    CHECK_FALSE(loop.run_once());  // the cancel watch runs: too late to drop the work
    release.set();
    pool.shutdown();
    // The result comes back, finds the future cancelled and is destroyed.
    CHECK(run_until(loop, [&] { return token.use_count() == 1; }));
    CHECK(future.cancelled());
    CHECK(future.cancel_message() == "not needed");
}

TEST_CASE("69: cancelling after the work finished, before its result reached the loop, cancels only the future") {
    EventLoop loop;
    ThreadPoolExecutor pool(1);
    std::atomic<int> runs{0};
    auto token = std::make_shared<int>(0);
    Future<std::shared_ptr<int>> future = loop.run_in_executor(&pool, [&runs, token] {
        ++runs;
        return token;
    });
    pool.shutdown();  // the work ran; its result is posted but the loop has not looked
    CHECK(future.cancel());
    // The result, arriving now, is discarded; the work ran exactly once.
    CHECK(run_until(loop, [&] { return token.use_count() == 1; }));
    CHECK(runs == 1);
    CHECK(future.cancelled());
}

TEST_CASE("a future its owner completed first keeps that result; the work's is discarded") {
    EventLoop loop;
    ThreadPoolExecutor pool(1);
    ThreadEvent release;
    auto token = std::make_shared<int>(1);
    Future<std::shared_ptr<int>> future = loop.run_in_executor(&pool, [&release, token] {
        release.wait();
        return token;
    });
    auto mine = std::make_shared<int>(2);
    CHECK_FALSE(future.set_result(mine));
    release.set();
    pool.shutdown();
    CHECK(run_until(loop, [&] { return token.use_count() == 1; }));
    CHECK(*future.result() == mine);
}

TEST_CASE("68: a result that arrives after close(), even after the loop is destroyed, never calls into it") {
    ThreadPoolExecutor pool(1);  // outlives the loop
    ThreadEvent started, release;
    auto token = std::make_shared<int>(0);
    test::LogCapture log;  // a refused call_soon_threadsafe would log (or throw) here
    {
        auto loop = std::make_unique<EventLoop>();
        Future<std::shared_ptr<int>> future = loop->run_in_executor(&pool, [&, token] {
            started.set();
            release.wait();
            return token;
        });
        REQUIRE(started.wait());
        CHECK_FALSE(loop->close());  // returns at once: the work is still blocked
        CHECK_FALSE(future.done());  // as asyncio: left pending
        loop.reset();
    }
    release.set();
    pool.shutdown();  // the result is made, finds the gate shut, and is destroyed
    CHECK(token.use_count() == 1);
    CHECK(log.count() == 0);
}

TEST_CASE("5: close() shuts the default executor down without waiting; the loop's destructor waits for its work") {
    ThreadEvent started, release;
    std::atomic<bool> finished{false};
    auto loop = std::make_unique<EventLoop>();
    Future<void> future = loop->run_in_executor(nullptr, [&] {
        started.set();
        release.wait();
        finished = true;
    });
    REQUIRE(started.wait());
    CHECK_FALSE(loop->close());
    CHECK_FALSE(finished);  // close() did not wait
    CHECK(loop->default_executor()->is_shutdown());
    CHECK_REFUSED(errc::loop_closed, (void)loop->run_in_executor(nullptr, [] {}));
    release.set();
    loop.reset();  // joins the default executor's threads
    CHECK(finished);
}

TEST_CASE("66: after shutdown_default_executor, the default executor is refused; an explicit one keeps working") {
    EventLoop loop;
    Future<int> before = loop.run_in_executor(nullptr, [] { return 1; });
    CHECK(run_until(loop, [&] { return before.done(); }));
    Future<void> shutdown = loop.shutdown_default_executor();
    CHECK(run_until(loop, [&] { return shutdown.done(); }));
    CHECK(loop.default_executor()->is_shutdown());
    CHECK_REFUSED(errc::executor_shutdown_called, (void)loop.run_in_executor(nullptr, [] {}));
    ThreadPoolExecutor pool(1);
    Future<int> explicit_one = loop.run_in_executor(&pool, [] { return 3; });
    CHECK(run_until(loop, [&] { return explicit_one.done(); }));
    CHECK(*explicit_one.result() == 3);
    // A second call finds the threads already joined.
    Future<void> again = loop.shutdown_default_executor();
    CHECK(run_until(loop, [&] { return again.done(); }));
}

TEST_CASE("66, 67: shutdown_default_executor completes only after the running work has finished") {
    EventLoop loop;
    ThreadEvent started, release;
    std::atomic<bool> finished{false};
    Future<void> work = loop.run_in_executor(nullptr, [&] {
        started.set();
        release.wait();
        finished = true;
    });
    REQUIRE(started.wait());
    Future<void> shutdown = loop.shutdown_default_executor();
    bool finished_first = false;
    shutdown.add_done_callback([&](Future<void>&) { finished_first = finished; });
    CHECK_FALSE(run_until(loop, [&] { return shutdown.done(); }, 0.05));  // the work holds it up
    release.set();
    CHECK(run_until(loop, [&] { return shutdown.done() && work.done(); }));
    CHECK(run_until(loop, [&] { return finished_first; }));
    CHECK(shutdown.result().has_value());
}

TEST_CASE("67: shutdown_default_executor(timeout) warns, calls shutdown(wait=false) "
          "and completes when the join is late") {
    test::LogCapture log;
    ThreadEvent started, release;
    std::atomic<bool> finished{false};
    {
        EventLoop loop;
        Future<void> work = loop.run_in_executor(nullptr, [&] {
            started.set();
            release.wait();
            finished = true;
        });
        REQUIRE(started.wait());
        Future<void> shutdown = loop.shutdown_default_executor(0.05);
        CHECK(run_until(loop, [&] { return shutdown.done(); }));
        CHECK(shutdown.result().has_value());
        CHECK_FALSE(finished);
        CHECK(log.contains("The executor did not finishing joining its threads within 0.05 seconds."));
        release.set();
        CHECK(run_until(loop, [&] { return work.done(); }));
        CHECK_FALSE(loop.close());
    }  // the helper thread that was still joining is joined here
    CHECK(finished);
}

TEST_CASE("set_default_executor: the loop owns it, run_in_executor(nullptr) uses it; a replaced one is joined") {
    EventLoop loop;
    auto custom = std::make_unique<ThreadPoolExecutor>(2, "custom");
    ThreadPoolExecutor* raw = custom.get();
    loop.set_default_executor(std::move(custom));
    CHECK(loop.default_executor() == raw);
    Future<std::string> name = loop.run_in_executor(nullptr, [] { return current_thread_name(); });
    CHECK(run_until(loop, [&] { return name.done(); }));
    CHECK(*name.result() == "custom_0");
    // Replacing it waits for the old one's work; that work's result still arrives.
    ThreadEvent started;
    Future<int> late = loop.run_in_executor(nullptr, [&started] {
        started.set();
        return 5;
    });
    REQUIRE(started.wait());
    loop.set_default_executor(std::make_unique<ThreadPoolExecutor>(1, "second"));
    CHECK(run_until(loop, [&] { return late.done(); }));
    CHECK(*late.result() == 5);
    Future<std::string> second = loop.run_in_executor(nullptr, [] { return current_thread_name(); });
    CHECK(run_until(loop, [&] { return second.done(); }));
    CHECK(*second.result() == "second_0");
}

TEST_CASE("52, 64: a result wakes a loop blocked in select") {
    EventLoop loop;
    std::optional<Future<int>> future;
    loop.call_soon([&] {
        future = loop.run_in_executor(nullptr, [] { return 9; });
        future->add_done_callback([&](Future<int>&) { loop.stop(); });
    });
    TimerHandle guard = loop.call_later(5.0, [&] { loop.stop(); });  // a bound, should the wakeup be lost
    double start = loop.time();
    CHECK_FALSE(loop.run_forever());
    guard.cancel();
    REQUIRE(future);
    CHECK(*future->result() == 9);
    CHECK(loop.time() - start < 2.0);
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("an exception escaping the work is stored in the future; result() rethrows it") {
    EventLoop loop;
    int reports = 0;
    loop.set_exception_handler([&](EventLoop&, const ExceptionContext&) { ++reports; });
    Future<int> future = loop.run_in_executor(nullptr, []() -> int { throw std::runtime_error("disk on fire"); });
    CHECK(run_until(loop, [&] { return future.done(); }));
    CHECK_THROWS_WITH_AS((void)future.result(), "disk on fire", std::runtime_error);
    CHECK(future.error() == errc::exception_raised);
    CHECK(reports == 0);  // retrieved: nothing to report
}
#endif

}  // TEST_SUITE("threadsafe")
