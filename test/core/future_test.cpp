// test/core/future_test.cpp — the Future<T> the foundation ships for
// run_until_complete (core/future.hpp), CONTRACT §6 items it already covers.
// The futures issue adds exceptions, co_await and tasks on top.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/event_loop.hpp"
#include "test/support.hpp"

using namespace evloop;

TEST_CASE("70, 71: a new future is pending; its result is refused as invalid_state") {
    EventLoop loop;
    Future<int> f(loop);
    CHECK_FALSE(f.done());
    CHECK_FALSE(f.cancelled());
    CHECK(f.result().error() == errc::invalid_state);
    CHECK(&f.get_loop() == &loop);
}

TEST_CASE("72: setting a result twice, or after cancel, is refused") {
    EventLoop loop;
    Future<int> f(loop);
    CHECK_FALSE(f.set_result(1));
    CHECK_REFUSED(errc::invalid_state, (void)f.set_result(2));
    CHECK_REFUSED(errc::invalid_state, (void)f.set_error(std::make_error_code(std::errc::timed_out)));
    CHECK(*f.result() == 1);
    Future<void> g(loop);
    CHECK(g.cancel());
    CHECK_REFUSED(errc::invalid_state, (void)g.set_result());
}

TEST_CASE("73, 74: cancel returns false once done; a cancelled future carries the cancellation error and message") {
    EventLoop loop;
    Future<std::string> f(loop);
    CHECK(f.cancel("shutting down"));
    CHECK(f.cancelled());
    CHECK(f.done());
    CHECK_FALSE(f.cancel());
    CHECK(f.result().error() == errc::cancelled);
    CHECK(f.cancel_message() == "shutting down");
    Future<int> done(loop);
    (void)done.set_result(3);
    CHECK_FALSE(done.cancel());
    CHECK_FALSE(done.cancelled());
}

TEST_CASE("77, 78: done callbacks are scheduled with call_soon in registration order, never synchronously") {
    EventLoop loop;
    Future<int> f(loop);
    std::vector<int> order;
    f.add_done_callback([&](Future<int>& fut) { order.push_back(*fut.result()); });
    f.add_done_callback([&](Future<int>&) { order.push_back(-1); });
    (void)f.set_result(7);
    CHECK(order.empty());
    CHECK_FALSE(loop.run_once());
    CHECK(order == std::vector<int>{7, -1});
    f.add_done_callback([&](Future<int>&) { order.push_back(99); });  // already done
    CHECK(order.size() == 2);
    CHECK_FALSE(loop.run_once());
    CHECK(order.back() == 99);
}

TEST_CASE("79, 80: remove_done_callback by token; callbacks may add and remove others") {
    EventLoop loop;
    Future<void> f(loop);
    std::vector<std::string> calls;
    std::uint64_t second = 0;
    f.add_done_callback([&](Future<void>& fut) {
        calls.push_back("first");
        fut.add_done_callback([&](Future<void>&) { calls.push_back("added later"); });
        CHECK(fut.remove_done_callback(second) == 0);  // already scheduled
    });
    second = f.add_done_callback([&](Future<void>&) { calls.push_back("second"); });
    std::uint64_t removed = f.add_done_callback([&](Future<void>&) { calls.push_back("removed"); });
    CHECK(f.remove_done_callback(removed) == 1);
    CHECK(f.remove_done_callback(removed) == 0);
    (void)f.set_result();
    CHECK(test::run_until(loop, [&] { return calls.size() == 3; }));
    CHECK(calls == std::vector<std::string>{"first", "second", "added later"});
}

TEST_CASE("an error result is reported through result()") {
    EventLoop loop;
    Future<int> f(loop);
    CHECK_FALSE(f.set_error(std::make_error_code(std::errc::host_unreachable)));
    CHECK(f.done());
    CHECK_FALSE(f.cancelled());
    CHECK(f.error() == std::errc::host_unreachable);
    CHECK(f.result().error() == std::errc::host_unreachable);
}

TEST_CASE("copies share one state; the state lives while any copy does") {
    EventLoop loop;
    auto* f = new Future<std::string>(loop);
    Future<std::string> copy = *f;
    CHECK(copy == *f);
    delete f;
    (void)copy.set_result("kept");
    CHECK(*copy.result() == "kept");
}
