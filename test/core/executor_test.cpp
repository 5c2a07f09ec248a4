// test/core/executor_test.cpp — ThreadPoolExecutor on its own (core/executor.cpp).
// CONTRACT §5 is about run_in_executor; the pool-level parts of it (69: a
// finished work item is not changed by a late cancel) are tested here, the
// rest in event_loop_executor_test.cpp. Cases that start threads are in the
// "threadsafe" suite, which CI also runs under ThreadSanitizer.
#include <doctest/doctest.h>

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/executor.hpp"
#include "test/support.hpp"
#include "test/thread_event.hpp"

using namespace evloop;
using evloop::test::ThreadEvent;
using evloop::test::wait_for_condition;

TEST_CASE("the default size is min(32, CPUs + 4), as Python's; 0 asks for it") {
    std::size_t cpus = std::max(1u, std::thread::hardware_concurrency());
    CHECK(ThreadPoolExecutor::default_max_workers() == std::min<std::size_t>(32, cpus + 4));
    CHECK(ThreadPoolExecutor().max_workers() == ThreadPoolExecutor::default_max_workers());
    CHECK(ThreadPoolExecutor(0).max_workers() == ThreadPoolExecutor::default_max_workers());
    CHECK(ThreadPoolExecutor(3).max_workers() == 3);
}

TEST_CASE("the constructor starts no thread") {
    ThreadPoolExecutor pool(4);
    CHECK(pool.thread_count() == 0);
    CHECK_FALSE(pool.is_shutdown());
}

TEST_CASE("after shutdown, submit is refused with 'cannot schedule new futures after shutdown'") {
    ThreadPoolExecutor pool(2);
    pool.shutdown();
    pool.shutdown(false);  // idempotent
    CHECK(pool.is_shutdown());
    auto capture = std::make_shared<int>(0);
    bool ran = false;
    CHECK_REFUSED(errc::executor_submit_after_shutdown, (void)pool.submit([capture, &ran] { ran = true; }));
    CHECK(capture.use_count() == 1);  // the refused work was destroyed, not kept
    {
        test::LogCapture log;
        WorkTicket ticket = pool.try_submit([&ran] { ran = true; });
        CHECK_FALSE(ticket);
        CHECK(ticket.error() == errc::executor_submit_after_shutdown);
        CHECK(log.count() == 0);  // try_submit only returns the refusal
    }
    CHECK_FALSE(ran);
    CHECK(pool.thread_count() == 0);
    CHECK(make_error_code(errc::executor_submit_after_shutdown).message() ==
          "cannot schedule new futures after shutdown");
}

TEST_SUITE("threadsafe") {

TEST_CASE("the first submit starts one thread, named <prefix>_0; the work runs there") {
    ThreadPoolExecutor pool(4, "worker");
    std::thread::id ran_on;
    char name[16] = {};
    ThreadEvent done;
    WorkTicket ticket = pool.submit([&] {
        ran_on = std::this_thread::get_id();
        pthread_getname_np(pthread_self(), name, sizeof name);
        done.set();
    });
    REQUIRE(done.wait());
    pool.shutdown();  // joins: what the work wrote is visible now
    CHECK(ticket.done());
    CHECK_FALSE(ticket.cancelled());
    CHECK(ran_on != std::this_thread::get_id());
    CHECK(std::string(name) == "worker_0");
    CHECK(pool.thread_count() == 1);
}

TEST_CASE("threads are added only while none is idle, up to max_workers") {
    ThreadPoolExecutor pool(3);
    ThreadEvent release;
    std::atomic<int> started{0}, finished{0};
    for (int i = 0; i < 10; ++i)
        (void)pool.submit([&] {
            ++started;
            release.wait();
            ++finished;
        });
    CHECK(wait_for_condition([&] { return started == 3; }));
    CHECK(pool.thread_count() == 3);  // 10 items, but never more than the limit
    release.set();
    pool.shutdown();
    CHECK(finished == 10);
    CHECK(pool.thread_count() == 3);
}

TEST_CASE("an idle thread takes the next item instead of a new thread") {
    ThreadPoolExecutor pool(8);
    for (int i = 0; i < 20; ++i) {
        ThreadEvent done;
        (void)pool.submit([&done] { done.set(); });
        REQUIRE(done.wait());
        REQUIRE(wait_for_condition([&] { return pool.idle_threads() == 1; }));
    }
    CHECK(pool.thread_count() == 1);
}

TEST_CASE("10,000 submissions from 4 threads each run exactly once") {
    constexpr int kThreads = 4, kEach = 2500;
    ThreadPoolExecutor pool(6);
    std::vector<std::atomic<int>> runs(kThreads * kEach);
    std::vector<std::thread> submitters;
    for (int t = 0; t < kThreads; ++t)
        submitters.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) {
                auto index = static_cast<std::size_t>(t * kEach + i);
                (void)pool.submit([&runs, index] { ++runs[index]; });
            }
        });
    for (auto& s : submitters) s.join();
    pool.shutdown();  // queued work runs before the threads are joined
    CHECK(std::all_of(runs.begin(), runs.end(), [](const std::atomic<int>& r) { return r.load() == 1; }));
    CHECK(pool.thread_count() <= 6);
}

TEST_CASE("cancel before start: the work never runs and its captures are destroyed at once") {
    ThreadPoolExecutor pool(1);
    ThreadEvent started, release;
    (void)pool.submit([&] {
        started.set();
        release.wait();
    });
    REQUIRE(started.wait());  // the only thread is busy: the next item waits in the queue
    auto capture = std::make_shared<int>(0);
    std::atomic<bool> ran{false};
    WorkTicket ticket = pool.submit([capture, &ran] { ran = true; });
    CHECK_FALSE(ticket.done());
    CHECK(ticket.cancel());
    CHECK(ticket.cancelled());
    CHECK(ticket.done());
    CHECK_FALSE(ticket.cancel());   // idempotent: it was already cancelled
    CHECK(capture.use_count() == 1);  // destroyed by cancel(), on this thread
    release.set();
    pool.shutdown();
    CHECK_FALSE(ran);
}

TEST_CASE("cancel while the work runs returns false and the work finishes") {
    ThreadPoolExecutor pool(1);
    ThreadEvent started, release;
    std::atomic<bool> finished{false};
    WorkTicket ticket = pool.submit([&] {
        started.set();
        release.wait();
        finished = true;
    });
    REQUIRE(started.wait());
    CHECK(ticket.running());
    CHECK_FALSE(ticket.cancel());
    CHECK_FALSE(ticket.cancelled());
    release.set();
    pool.shutdown();
    CHECK(finished);
    CHECK(ticket.done());
}

TEST_CASE("69: cancelling work that already finished changes nothing") {
    ThreadPoolExecutor pool(1);
    int result = 0;
    WorkTicket ticket = pool.submit([&result] { result = 42; });
    REQUIRE(wait_for_condition([&] { return ticket.done(); }));
    CHECK_FALSE(ticket.cancel());
    CHECK(ticket.done());
    CHECK_FALSE(ticket.cancelled());
    pool.shutdown();
    CHECK(result == 42);  // the result stays intact
}

TEST_CASE("shutdown(wait=false) refuses new work at once; queued work still runs; wait=true joins") {
    ThreadPoolExecutor pool(1);
    ThreadEvent started, release;
    std::atomic<int> ran{0};
    (void)pool.submit([&] {
        started.set();
        release.wait();
        ++ran;
    });
    REQUIRE(started.wait());
    for (int i = 0; i < 5; ++i) (void)pool.submit([&ran] { ++ran; });
    pool.shutdown(false);  // returns while the first item is still blocked
    CHECK(ran == 0);
    CHECK_REFUSED(errc::executor_submit_after_shutdown, (void)pool.submit([] {}));
    release.set();
    pool.shutdown(true);
    CHECK(ran == 6);  // Python's cancel_futures=False: queued work is not dropped
}

TEST_CASE("the destructor runs the queued work and joins, after shutdown(wait=false) too") {
    std::atomic<int> ran{0};
    ThreadEvent started, release;
    WorkTicket first;
    {
        ThreadPoolExecutor pool(2);
        first = pool.submit([&] {
            started.set();
            release.wait();
            ++ran;
        });
        for (int i = 0; i < 3; ++i) (void)pool.submit([&ran] { ++ran; });
        REQUIRE(started.wait());
        pool.shutdown(false);
        release.set();
    }
    CHECK(ran == 4);
    CHECK(first.done());  // a ticket outlives its pool
}

TEST_CASE("shutdown(wait=true) called by the pool's own work does not deadlock") {
    auto pool = std::make_unique<ThreadPoolExecutor>(2);
    ThreadEvent done;
    (void)pool->submit([&] {
        pool->shutdown(true);  // cannot join its own thread: joins the others
        done.set();
    });
    REQUIRE(done.wait());
    pool.reset();  // the destructor, on this thread, joins the last one
}

TEST_CASE("several threads calling shutdown(wait=true) all return after the work is done") {
    ThreadPoolExecutor pool(2);
    ThreadEvent started, release;
    std::atomic<bool> finished{false};
    (void)pool.submit([&] {
        started.set();
        release.wait();
        finished = true;
    });
    REQUIRE(started.wait());
    std::atomic<int> returned_after_work{0};
    std::vector<std::thread> callers;
    for (int i = 0; i < 3; ++i)
        callers.emplace_back([&] {
            pool.shutdown(true);
            if (finished) ++returned_after_work;
        });
    release.set();
    for (auto& c : callers) c.join();
    CHECK(returned_after_work == 3);
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("an exception escaping the work is logged and the worker goes on") {
    test::LogCapture log;
    ThreadPoolExecutor pool(1);
    std::atomic<bool> second{false};
    (void)pool.submit([] { throw std::runtime_error("boom"); });
    (void)pool.submit([&second] { second = true; });
    pool.shutdown();
    CHECK(second);
    CHECK(log.contains("Exception in ThreadPoolExecutor work: boom"));
}
#endif

}  // TEST_SUITE("threadsafe")
