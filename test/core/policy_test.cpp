// test/core/policy_test.cpp — getting the loop (core/policy.cpp), CONTRACT §25.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <thread>

#include "core/event_loop.hpp"
#include "core/policy.hpp"
#include "test/support.hpp"

using namespace evloop;

TEST_CASE("364: get_running_loop outside a running loop is refused") {
    CHECK(detail::running_loop() == nullptr);
    CHECK_REFUSED(errc::no_running_loop, (void)get_running_loop());
}

TEST_CASE("14, 364, 365: inside a callback, get_running_loop and get_event_loop return the running loop") {
    EventLoop loop;
    EventLoop other;
    set_event_loop(&other);  // the policy's loop is ignored while one runs
    EventLoop* running = nullptr;
    EventLoop* current = nullptr;
    loop.call_soon([&] {
        running = get_running_loop();
        current = get_event_loop();
        loop.stop();
    });
    CHECK_FALSE(loop.run_forever());
    CHECK(running == &loop);
    CHECK(current == &loop);
    CHECK(get_event_loop() == &other);
    set_event_loop(nullptr);
}

TEST_CASE("366 (pinned as Python 3.14), 367: get_event_loop with no loop set is refused, never creates one") {
    set_event_loop(nullptr);
    CHECK_REFUSED(errc::no_current_loop, (void)get_event_loop());
}

TEST_CASE("367, 372: the current loop is per thread") {
    EventLoop loop;
    set_event_loop(&loop);
    EventLoop* seen_in_thread = &loop;
    std::thread([&] {
        test::LogCapture quiet;
#if EVLOOP_EXCEPTIONS
        try {
            seen_in_thread = get_event_loop();
        } catch (const Error&) {
            seen_in_thread = nullptr;
        }
#else
        seen_in_thread = get_event_loop();
#endif
    }).join();
    CHECK(seen_in_thread == nullptr);
    CHECK(get_event_loop() == &loop);
    set_event_loop(nullptr);
}

TEST_CASE("372: the running loop is per thread; two loops run at once on two threads") {
    EventLoop a;
    EventLoop* seen_b = nullptr;
    std::thread other([&] {
        EventLoop b;
        b.call_soon([&] {
            seen_b = get_running_loop();
            b.stop();
        });
        CHECK_FALSE(b.run_forever());
        CHECK(seen_b == &b);
    });
    other.join();
    EventLoop* seen_a = nullptr;
    a.call_soon([&] {
        seen_a = get_running_loop();
        a.stop();
    });
    CHECK_FALSE(a.run_forever());
    CHECK(seen_a == &a);
}

TEST_CASE("368: new_event_loop returns a fresh loop each call") {
    auto one = new_event_loop();
    auto two = new_event_loop();
    REQUIRE(one);
    REQUIRE(two);
    CHECK(one.get() != two.get());
    CHECK_FALSE(one->is_closed());
}

TEST_CASE("369: the policy is created once; setting nullptr restores a default") {
    AbstractEventLoopPolicy& first = get_event_loop_policy();
    CHECK(&first == &get_event_loop_policy());

    static int created = 0;
    struct CountingPolicy : DefaultEventLoopPolicy {
        std::unique_ptr<EventLoop> new_event_loop() override {
            ++created;
            return DefaultEventLoopPolicy::new_event_loop();
        }
    };
    auto custom = std::make_unique<CountingPolicy>();
    CountingPolicy* raw = custom.get();
    set_event_loop_policy(std::move(custom));
    CHECK(&get_event_loop_policy() == raw);
    auto loop = new_event_loop();
    CHECK(created == 1);
    set_event_loop_policy(nullptr);
    auto from_default = new_event_loop();
    CHECK(created == 1);  // the custom policy is gone
    // The restored default has no loop set for this thread.
    CHECK_REFUSED(errc::no_current_loop, (void)get_event_loop_policy().get_event_loop());
}

TEST_CASE("210: a child forked from inside a running loop sees no running loop") {
    EventLoop loop;
    int child_status = -1;
    loop.call_soon([&] {
        pid_t pid = ::fork();
        if (pid == 0) _exit(detail::running_loop() == nullptr ? 0 : 1);
        REQUIRE(pid > 0);
        REQUIRE(::waitpid(pid, &child_status, 0) == pid);
        loop.stop();
    });
    CHECK_FALSE(loop.run_forever());
    CHECK(WIFEXITED(child_status));
    CHECK(WEXITSTATUS(child_status) == 0);
}
