// test/core/event_loop_threadsafe_test.cpp — call_soon_threadsafe with real
// threads (core/event_loop_threadsafe.cpp). Everything here is in the
// "threadsafe" suite, which CI also runs under ThreadSanitizer.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "core/event_loop.hpp"
#include "test/support.hpp"

using namespace evloop;
using evloop::test::run_until;

TEST_SUITE("threadsafe") {

TEST_CASE("51, 52: a post from another thread wakes a loop blocked with no timers, promptly") {
    EventLoop loop;
    std::atomic<bool> ran{false};
    std::thread poster([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        (void)loop.call_soon_threadsafe([&] {
            ran = true;
            loop.stop();
        });
    });
    double start = loop.time();
    CHECK_FALSE(loop.run_forever());  // blocks in select with an infinite timeout
    double took = loop.time() - start;
    poster.join();
    CHECK(ran);
    CHECK(took < 0.5);
}

TEST_CASE("53: on the loop's own thread, threadsafe and plain call_soon keep FIFO order") {
    EventLoop loop;
    std::vector<std::string> order;
    (void)loop.call_soon_threadsafe([&] { order.push_back("hello"); });
    loop.call_soon([&] { order.push_back("world"); });
    (void)loop.call_soon_threadsafe([&] { order.push_back("!"); });
    loop.call_soon([&] { loop.stop(); });
    CHECK_FALSE(loop.run_forever());
    CHECK(order == std::vector<std::string>{"hello", "world", "!"});
}

TEST_CASE("coalescing: 10,000 posts to a loop that is not looking write one wakeup byte") {
    EventLoop loop;
    int ran = 0;
    auto before = loop.metrics().wakeups_written;
    std::thread poster([&] {
        for (int i = 0; i < 10000; ++i) (void)loop.call_soon_threadsafe([&ran] { ++ran; });
    });
    poster.join();
    CHECK(loop.metrics().wakeups_written - before == 1);
    CHECK(run_until(loop, [&] { return ran == 10000; }));
}

TEST_CASE("4 threads x 100,000 posts while the loop runs: each runs exactly once, in per-thread order") {
    constexpr int kThreads = 4;
    constexpr int kPosts = 100000;
    EventLoop loop;
    std::vector<std::vector<int>> seen(kThreads);  // touched by the loop thread only
    for (auto& v : seen) v.reserve(kPosts);
    std::atomic<int> finished_threads{0};
    std::atomic<int> refusals{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < kPosts; ++i) {
                Handle h = loop.call_soon_threadsafe([&seen, t, i] { seen[static_cast<std::size_t>(t)].push_back(i); });
                if (!h) ++refusals;
            }
            if (++finished_threads == kThreads) (void)loop.call_soon_threadsafe([&] { loop.stop(); });
        });
    }
    CHECK_FALSE(loop.run_forever());
    for (auto& th : threads) th.join();
    std::size_t total = 0;
    bool ordered = true;
    for (auto& v : seen) {
        total += v.size();
        for (std::size_t i = 0; i < v.size(); ++i) ordered = ordered && v[i] == static_cast<int>(i);
    }
    CHECK(refusals == 0);
    CHECK(total == std::size_t{kThreads} * kPosts);
    CHECK(ordered);
    // Far fewer wakeup writes than posts.
    CHECK(loop.metrics().wakeups_written < std::uint64_t{kThreads} * kPosts / 2);
    MESSAGE("wakeup bytes written for ", kThreads * kPosts, " posts: ", loop.metrics().wakeups_written);
}

TEST_CASE("posts racing with close() either run or are visibly dropped or refused, never lost") {
    constexpr int kThreads = 4;
    EventLoop loop;
    test::LogCapture quiet;  // no-exception builds log each refusal
    struct Post {
        Handle handle;
        std::shared_ptr<std::atomic<bool>> ran;
    };
    std::vector<std::vector<Post>> accepted(kThreads);
    std::vector<int> refused(kThreads, 0);
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            while (!go) std::this_thread::yield();
            for (;;) {
                auto ran = std::make_shared<std::atomic<bool>>(false);
#if EVLOOP_EXCEPTIONS
                Handle h;
                try {
                    h = loop.call_soon_threadsafe([ran] { *ran = true; });
                } catch (const Error& e) {
                    CHECK(e.code() == errc::loop_closed);
                }
#else
                Handle h = loop.call_soon_threadsafe([ran] { *ran = true; });
#endif
                if (!h) {
                    ++refused[static_cast<std::size_t>(t)];
                    break;  // the loop is closed: everything after is refused too
                }
                accepted[static_cast<std::size_t>(t)].push_back(Post{std::move(h), ran});
            }
        });
    }
    go = true;
    (void)loop.call_later(0.05, [&] { loop.stop(); });
    CHECK_FALSE(loop.run_forever());
    CHECK_FALSE(loop.close());  // races with the posters
    for (auto& th : threads) th.join();
    std::size_t ran = 0, dropped = 0, lost = 0;
    for (auto& posts : accepted)
        for (auto& p : posts) {
            if (*p.ran)
                ++ran;
            else if (p.handle.cancelled())
                ++dropped;
            else
                ++lost;
        }
    CHECK(lost == 0);
    CHECK(ran > 0);
    for (int r : refused) CHECK(r == 1);
    MESSAGE("ran ", ran, ", dropped by close (cancelled) ", dropped);
}

TEST_CASE("a handle from another thread can be dropped while the loop runs its callback") {
    EventLoop loop;
    std::atomic<int> ran{0};
    std::thread poster([&] {
        for (int i = 0; i < 20000; ++i) {
            Handle h = loop.call_soon_threadsafe([&] { ++ran; });
            (void)h;  // released here, racing with the loop's release
        }
        (void)loop.call_soon_threadsafe([&] { loop.stop(); });
    });
    CHECK_FALSE(loop.run_forever());
    poster.join();
    CHECK(ran == 20000);
}

}  // TEST_SUITE threadsafe
