// test/core/future_test.cpp — Future<T> (core/future.hpp, core/future_core.cpp):
// CONTRACT §6. co_await of futures is tested with tasks (task_test.cpp).
// Python-only items: 75 (set_exception(SomeClass) instantiating the class) and
// 76 (StopIteration) have no C++ meaning; 84–86 (a Future() constructed
// without a loop, or bound implicitly to the running loop) cannot happen: the
// constructor takes the loop, and get_loop() returns it (tested below).
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/event_loop.hpp"
#include "core/task_helpers.hpp"
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

TEST_CASE("3, 86: create_future works on a closed loop; get_loop is the bound loop") {
    EventLoop loop;
    (void)loop.close();
    Future<int> f = loop.create_future<int>();
    CHECK(&f.get_loop() == &loop);
    int called = 0;
    f.add_done_callback([&](Future<int>&) { ++called; });
    CHECK_FALSE(f.set_result(1));  // completes; a closed loop runs no callbacks
    CHECK(*f.result() == 1);
    CHECK(called == 0);
}

namespace {
struct Reported {
    explicit Reported(EventLoop& loop) {
        loop.set_exception_handler([this](EventLoop&, const ExceptionContext& c) { contexts.push_back(c); });
    }
    std::vector<ExceptionContext> contexts;
};
}  // namespace

TEST_CASE("81: a future destroyed holding an error nobody retrieved is reported through the exception handler") {
    EventLoop loop;
    Reported reported(loop);
    {
        Future<int> f(loop);
        (void)f.set_error(std::make_error_code(std::errc::connection_refused));
    }
    REQUIRE(reported.contexts.size() == 1);
    CHECK(reported.contexts[0].message == "Future exception was never retrieved");
    CHECK(reported.contexts[0].error == std::errc::connection_refused);
    CHECK(reported.contexts[0].future.find("<Future finished error=") == 0);
}

TEST_CASE("82: result(), error() or cancel() (even one returning false) silence the report") {
    EventLoop loop;
    Reported reported(loop);
    auto failed = [&] {
        Future<int> f(loop);
        (void)f.set_error(std::make_error_code(std::errc::io_error));
        return f;
    };
    { (void)failed().result(); }
    { (void)failed().error(); }
    { CHECK_FALSE(failed().cancel()); }
    { Future<int> ok(loop); (void)ok.set_result(1); }  // no error: nothing to report
    { Future<int> c(loop); (void)c.cancel(); }         // cancelled: not an error to report
    CHECK(reported.contexts.empty());
}

TEST_CASE("a future that outlives its loop is not reported (the loop is gone) and is freed cleanly") {
    std::optional<Future<int>> kept;
    {
        EventLoop loop;
        kept.emplace(loop);
        (void)kept->set_error(std::make_error_code(std::errc::io_error));
    }
    kept.reset();  // ASan: no use of the destroyed loop, no leak
}

TEST_CASE("take_result moves a move-only value out") {
    EventLoop loop;
    Future<std::unique_ptr<int>> f(loop);
    (void)f.set_result(std::make_unique<int>(9));
    Result<std::unique_ptr<int>> r = f.take_result();
    REQUIRE(r.has_value());
    CHECK(**r == 9);
}

TEST_CASE("a cancelled future's co_await gives the cancellation error; its message stays on the future") {
    EventLoop loop;
    Future<int> f(loop);
    auto body = [](Future<int> fut) -> Task<int> {
        Result<int> r = co_await fut;
        co_return r;
    };
    Task<int> t = loop.create_task(body(f));
    (void)loop.call_soon([f]() mutable { (void)f.cancel("bye"); });
    CHECK(loop.run_until_complete(t).error() == errc::cancelled);
    CHECK(f.cancel_message() == "bye");
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("set_exception stores an exception: result() rethrows it, error() gives its code, exception() returns it") {
    EventLoop loop;
    Future<int> f(loop);
    CHECK_FALSE(f.set_exception(std::make_exception_ptr(std::runtime_error("bad"))));
    CHECK(f.done());
    CHECK_THROWS_WITH_AS((void)f.result(), "bad", std::runtime_error);
    CHECK(f.error() == errc::exception_raised);
    CHECK(f.exception() != nullptr);
    Future<int> g(loop);
    (void)g.set_exception(std::make_exception_ptr(std::system_error(std::make_error_code(std::errc::timed_out))));
    CHECK(g.error() == std::errc::timed_out);
    CHECK_REFUSED(errc::invalid_state, (void)g.set_exception(nullptr));
}

TEST_CASE("81: an unretrieved exception is reported with the exception") {
    EventLoop loop;
    Reported reported(loop);
    {
        Future<void> f(loop);
        (void)f.set_exception(std::make_exception_ptr(std::logic_error("lost")));
    }
    REQUIRE(reported.contexts.size() == 1);
    CHECK(reported.contexts[0].exception != nullptr);
}
#endif
