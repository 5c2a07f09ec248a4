// test/core/task_test.cpp — Task<T> (core/task.hpp, core/task.cpp) and the
// loop's side of tasks (core/event_loop_tasks.cpp): CONTRACT §7 items 87–101,
// 106–108, plus what asyncio users expect around them (task factory,
// inline co_await of a coroutine, reports at close).
// Python-only items: 88's "never awaited" warning has no C++ analogue (an
// unstarted frame is simply destroyed, which this file checks); 91's str()
// conversion is std::string here; 106 (SystemExit) does not apply.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "core/task_helpers.hpp"
#include "test/support.hpp"

using namespace evloop;

namespace {

// Counts live instances: a coroutine's locals are destroyed when its frame is.
struct Tracked {
    explicit Tracked(int& live) : live_(live) { ++live_; }
    Tracked(const Tracked&) = delete;
    ~Tracked() { --live_; }
    int& live_;
};

Task<int> value_after(Future<int> f) {
    Result<int> r = co_await f;
    if (!r) co_return r.error();
    co_return *r + 1;
}

Task<int> constant(int v) { co_return v; }

Task<void> record(std::vector<std::string>& log, std::string what) {
    log.push_back(what);
    co_return;
}

// Collects exception handler calls.
struct Reports {
    explicit Reports(EventLoop& loop) {
        loop.set_exception_handler([this](EventLoop&, const ExceptionContext& c) { contexts.push_back(c); });
    }
    std::vector<ExceptionContext> contexts;
    bool has(std::string_view message) const {
        for (auto& c : contexts)
            if (c.message == message) return true;
        return false;
    }
};

}  // namespace

TEST_CASE("16, 89: run_until_complete schedules a task, whose first step runs on a later iteration") {
    EventLoop loop;
    std::vector<std::string> log;
    Task<void> t = loop.create_task(record(log, "task"));
    CHECK(log.empty());  // not started synchronously
    (void)loop.call_soon([&] { log.push_back("soon"); });
    CHECK(loop.run_until_complete(t).has_value());
    CHECK(log == std::vector<std::string>{"task", "soon"});  // FIFO with other callbacks
    CHECK(*loop.run_until_complete(constant(5)) == 5);        // never scheduled: scheduled by run_until_complete
}

TEST_CASE("co_await a pending future suspends the task until the future is set") {
    EventLoop loop;
    Future<int> f(loop);
    Task<int> t = loop.create_task(value_after(f));
    (void)loop.call_later(0.001, [f]() mutable { (void)f.set_result(41); });
    CHECK(*loop.run_until_complete(t) == 42);
    CHECK(t.done());
    CHECK(*t.result() == 42);
}

TEST_CASE("83: co_await of a done future does not yield to the loop") {
    EventLoop loop;
    Future<int> f(loop);
    (void)f.set_result(1);
    int awaited = 0;
    auto body = [](Future<int> fut, int& n) -> Task<void> {
        for (int i = 0; i < 100; ++i) {
            Result<int> r = co_await fut;
            n += *r;
        }
    };
    Task<void> t = loop.create_task(body(f, awaited));
    std::uint64_t before = loop.metrics().iterations;
    CHECK(loop.run_until_complete(t).has_value());
    CHECK(awaited == 100);
    // One iteration to run the step, one for run_until_complete's stop.
    CHECK(loop.metrics().iterations - before <= 2);
}

TEST_CASE("co_await of a never-scheduled task runs it inline, in the same step; of a scheduled task, as a future") {
    EventLoop loop;
    std::vector<std::string> log;
    auto outer = [](std::vector<std::string>& lg) -> Task<int> {
        TaskRef me = current_task();
        auto inner = [](std::vector<std::string>& l, TaskRef parent) -> Task<int> {
            l.push_back("inner");
            // Inline: the running task is still the outer one (Python's `await coro()`).
            CHECK(current_task() == parent);
            co_return 20;
        };
        lg.push_back("before");
        Result<int> a = co_await inner(lg, me);
        lg.push_back("after");
        Task<int> scheduled = get_running_loop()->create_task(constant(22));
        Result<int> b = co_await scheduled;
        co_return *a + *b;
    };
    CHECK(*loop.run_until_complete(outer(log)) == 42);
    CHECK(log == std::vector<std::string>{"before", "inner", "after"});
}

TEST_CASE("87, 88: create_task on a closed loop is refused; the coroutine is destroyed without running") {
    EventLoop loop;
    (void)loop.close();
    int live = 0;
    bool ran = false;
    auto body = [](int& l, bool& r) -> Task<void> {
        Tracked t(l);
        r = true;
        co_return;
    };
    Task<void> t = body(live, ran);
    CHECK_REFUSED(errc::loop_closed, (void)loop.create_task(t));
    CHECK_FALSE(ran);
    CHECK(t.done());
    CHECK(t.result().error() == errc::loop_closed);
    CHECK(live == 0);
}

TEST_CASE("90, 91: default names are Task-<N> from a counter; set_name renames") {
    EventLoop loop;
    Task<int> a = loop.create_task(constant(1));
    Task<int> b = loop.create_task(constant(2));
    REQUIRE(a.get_name().rfind("Task-", 0) == 0);
    int na = std::stoi(a.get_name().substr(5));
    CHECK(b.get_name() == "Task-" + std::to_string(na + 1));
    Task<int> c = loop.create_task(constant(3), "worker");
    CHECK(c.get_name() == "worker");
    c.set_name("renamed");
    CHECK(c.get_name() == "renamed");
    (void)loop.run_until_complete(c);
    (void)loop.run_until_complete(a);
    (void)loop.run_until_complete(b);
}

TEST_CASE("92: set_result and set_error on a task are refused") {
    EventLoop loop;
    Task<int> t = loop.create_task(constant(1));
    CHECK_REFUSED(errc::invalid_state, (void)t.set_result(2));
    CHECK_REFUSED(errc::invalid_state, (void)t.set_error(std::make_error_code(std::errc::io_error)));
    CHECK(*loop.run_until_complete(t) == 1);
}

TEST_CASE("93, 94: cancel() returns true while pending (each time), false once done; cancelling() counts") {
    EventLoop loop;
    Future<int> never(loop);
    Task<int> t = loop.create_task(value_after(never));
    (void)loop.run_once();  // t now awaits `never`
    CHECK(t.cancel("first"));
    CHECK(t.cancel("second"));
    CHECK(t.cancelling() == 2);
    CHECK(never.cancelled());  // the awaited future was cancelled (93)
    CHECK(loop.run_until_complete(t).error() == errc::cancelled);
    CHECK(t.cancelled());
    CHECK_FALSE(t.cancel());
}

TEST_CASE("95: a task cancelled before its first step never runs its body and ends cancelled") {
    EventLoop loop;
    int live = 0;
    bool ran = false;
    auto body = [](int& l, bool& r) -> Task<void> {
        Tracked t(l);
        r = true;
        co_return;
    };
    Task<void> t = loop.create_task(body(live, ran));
    CHECK(t.cancel("early"));
    CHECK(loop.run_until_complete(t).error() == errc::cancelled);
    CHECK_FALSE(ran);
    CHECK(t.cancelled());
    CHECK(t.cancel_message() == "early");
    CHECK(live == 0);
}

TEST_CASE("96, 97: a task can take the cancellation error and go on; cancelling() stays until uncancel()") {
    EventLoop loop;
    auto body = [](int& after) -> Task<int> {
        Result<void> r = co_await sleep(10.0);
        CHECK(r.error() == errc::cancelled);  // delivered at the co_await
        after = 1;
        Result<void> again = co_await sleep(0);
        CHECK(again.has_value());
        co_return 7;
    };
    int after = 0;
    Task<int> t = loop.create_task(body(after));
    (void)loop.call_later(0.001, [t]() mutable { CHECK(t.cancel()); });
    Result<int> r = loop.run_until_complete(t);
    CHECK(*r == 7);
    CHECK_FALSE(t.cancelled());
    CHECK(after == 1);
    CHECK(t.cancelling() == 1);
    CHECK(t.uncancel() == 0);
}

TEST_CASE("98: uncancel() back to zero withdraws a cancellation not yet delivered") {
    EventLoop loop;
    bool ran = false;
    auto body = [](bool& r) -> Task<void> {
        r = true;
        co_return;
    };
    Task<void> t = loop.create_task(body(ran));
    CHECK(t.cancel());
    CHECK(t.uncancel() == 0);
    CHECK(loop.run_until_complete(t).has_value());
    CHECK(ran);
    CHECK_FALSE(t.cancelled());
}

TEST_CASE("99: a task that cancels itself and returns without awaiting ends cancelled") {
    EventLoop loop;
    auto body = []() -> Task<int> {
        CHECK(current_task().cancel("myself"));
        co_return 1;
    };
    Task<int> t = loop.create_task(body());
    CHECK(loop.run_until_complete(t).error() == errc::cancelled);
    CHECK(t.cancelled());
}

TEST_CASE("a cancellation request made while the awaited future is already done is delivered at the next co_await") {
    EventLoop loop;
    Future<int> f(loop);
    auto body = [](Future<int> fut) -> Task<int> {
        Result<int> r = co_await fut;
        if (!r) co_return r.error();
        co_return 0;
    };
    Task<int> t = loop.create_task(body(f));
    (void)loop.run_once();     // the task now awaits f
    (void)f.set_result(5);     // its wakeup is scheduled...
    CHECK(t.cancel());         // ...and cannot be cancelled any more: must_cancel
    CHECK(loop.run_until_complete(t).error() == errc::cancelled);
}

TEST_CASE("cancelling a task that awaits another task cancels the inner one") {
    EventLoop loop;
    Task<int> inner = loop.create_task(value_after(Future<int>(loop)));
    auto outer = [](Task<int> in) -> Task<int> {
        Result<int> r = co_await in;
        co_return r;
    };
    Task<int> t = loop.create_task(outer(inner));
    (void)loop.call_later(0.001, [t]() mutable { (void)t.cancel(); });
    CHECK(loop.run_until_complete(t).error() == errc::cancelled);
    CHECK(inner.cancelled());
}

TEST_CASE("cancelling a task whose inline child is suspended reaches the child's co_await") {
    EventLoop loop;
    int live = 0;
    auto child = [](int& l) -> Task<void> {
        Tracked t(l);
        Result<void> r = co_await sleep(10.0);
        if (!r) co_await fail(r.error());
    };
    auto parent = [&](int& l) -> Task<int> {
        Tracked t(l);
        Result<void> r = co_await child(l);
        if (!r) co_return r.error();
        co_return 0;
    };
    Task<int> t = loop.create_task(parent(live));
    (void)loop.call_later(0.001, [t]() mutable { (void)t.cancel(); });
    CHECK(loop.run_until_complete(t).error() == errc::cancelled);
    CHECK(live == 0);
    CHECK(loop.scheduled_timers() == 0);
}

TEST_CASE("100, 101: awaiting a future of another loop, or the task itself, gives an error at the co_await") {
    EventLoop loop;
    EventLoop other;
    Future<int> foreign(other);
    auto body = [](Future<int> f) -> Task<int> {
        Result<int> r = co_await f;
        co_return r;
    };
    CHECK(loop.run_until_complete(body(foreign)).error() == errc::future_other_loop);

    // A task holding its own handle and awaiting it.
    auto awaits_itself = [](std::shared_ptr<std::optional<Task<int>>> me) -> Task<int> {
        Result<int> r = co_await me->value();
        co_return r;
    };
    auto slot = std::make_shared<std::optional<Task<int>>>();
    Task<int> t = awaits_itself(slot);
    *slot = t;
    CHECK(loop.run_until_complete(t).error() == errc::await_itself);
    slot->reset();  // break the cycle
}

TEST_CASE("fail(ec) ends a Task<void> with that error and runs its locals' destructors at once") {
    EventLoop loop;
    int live = 0;
    int after_fail = 0;
    auto body = [](int& l, int& after) -> Task<void> {
        Tracked t(l);
        co_await fail(std::make_error_code(std::errc::connection_reset));
        after = 1;
    };
    Task<void> t = loop.create_task(body(live, after_fail));
    CHECK(loop.run_until_complete(t).error() == std::errc::connection_reset);
    CHECK(live == 0);
    CHECK(after_fail == 0);
}

TEST_CASE("108: current_task is the running task inside one and empty outside") {
    EventLoop loop;
    CHECK_FALSE(loop.current_task());
    CHECK_FALSE(current_task());
    TaskRef seen;
    auto body = [](TaskRef& s) -> Task<void> {
        s = current_task();
        co_return;
    };
    Task<void> t = loop.create_task(body(seen));
    CHECK(loop.run_until_complete(t).has_value());
    CHECK(seen == TaskRef(t));
    CHECK_FALSE(loop.current_task());
}

TEST_CASE("set_task_factory sees every create_task; the factory schedules the task itself") {
    EventLoop loop;
    std::vector<std::string> seen;
    loop.set_task_factory([&](EventLoop& l, TaskRef task) {
        task.set_name("made-" + std::to_string(seen.size()));
        seen.push_back(task.get_name());
        CHECK_FALSE(task.schedule(l));
    });
    CHECK(static_cast<bool>(loop.get_task_factory()));
    Task<int> a = loop.create_task(constant(1));
    Task<int> b = loop.create_task(constant(2));
    CHECK(*loop.run_until_complete(a) + *loop.run_until_complete(b) == 3);
    CHECK(seen == std::vector<std::string>{"made-0", "made-1"});
    CHECK(a.get_name() == "made-0");
    loop.set_task_factory({});
    CHECK_FALSE(loop.get_task_factory());
}

TEST_CASE("create_task twice on one task is refused") {
    EventLoop loop;
    Task<int> t = loop.create_task(constant(1));
    CHECK_REFUSED(errc::invalid_state, (void)loop.create_task(t));
    CHECK(*loop.run_until_complete(t) == 1);
}

TEST_CASE("19: a loop stopped before the task completes leaves it pending; running again finishes it") {
    EventLoop loop;
    Future<int> f(loop);
    Task<int> t = loop.create_task(value_after(f));
    (void)loop.call_soon([&] { loop.stop(); });
    CHECK(loop.run_until_complete(t).error() == errc::stopped_before_complete);
    CHECK_FALSE(t.done());
    (void)f.set_result(1);
    CHECK(*loop.run_until_complete(t) == 2);
}

TEST_CASE("107: closing a loop with pending tasks reports each and destroys their frames") {
    int live = 0;
    std::vector<std::string> messages;
    {
        EventLoop loop;
        Reports reports(loop);
        auto body = [](int& l, Future<int> never) -> Task<int> {
            Tracked t(l);
            Result<int> r = co_await never;  // a cycle: frame -> future -> task -> frame
            co_return r;
        };
        Task<int> a = loop.create_task(body(live, Future<int>(loop)));
        Task<int> b = loop.create_task(body(live, Future<int>(loop)));
        (void)loop.run_once();
        CHECK(live == 2);
        CHECK(loop.all_tasks().size() == 2);
        (void)loop.close();
        CHECK(live == 0);
        REQUIRE(reports.contexts.size() == 2);
        for (auto& c : reports.contexts) {
            CHECK(c.message == "Task was destroyed but it is pending!");
            CHECK(c.task.find("<Task pending name='Task-") == 0);
        }
        CHECK_FALSE(a.done());
    }
}

TEST_CASE("107: a task that never ran, dropped with the ready queue at close, is reported once") {
    int live = 0;
    int reported = 0;
    {
        EventLoop loop;
        loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) {
            CHECK(c.message == "Task was destroyed but it is pending!");
            ++reported;
        });
        auto body = [](int& l) -> Task<void> {
            Tracked t(l);
            co_return;
        };
        (void)loop.create_task(body(live));  // only the scheduled step holds it
        (void)loop.close();
    }
    CHECK(reported == 1);
    CHECK(live == 0);
}

TEST_CASE("81: a task whose error nobody retrieved is reported when it is destroyed") {
    EventLoop loop;
    Reports reports(loop);
    auto failing = []() -> Task<int> { co_return std::make_error_code(std::errc::broken_pipe); };
    {
        Task<int> t = loop.create_task(failing());
        CHECK(test::run_until(loop, [&] { return t.done(); }));
    }
    REQUIRE(reports.contexts.size() == 1);
    CHECK(reports.contexts[0].message == "Task exception was never retrieved");
    CHECK(reports.contexts[0].error == std::errc::broken_pipe);
    {
        Task<int> t = loop.create_task(failing());
        CHECK(loop.run_until_complete(t).error() == std::errc::broken_pipe);  // retrieved
    }
    CHECK(reports.contexts.size() == 1);
}

TEST_CASE("10,000 tasks awaiting one future all wake, each once, in the order they started waiting") {
    EventLoop loop;
    Future<int> gate(loop);
    std::vector<int> order;
    auto body = [](Future<int> g, std::vector<int>& o, int i) -> Task<void> {
        (void)co_await g;
        o.push_back(i);
    };
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 10000; ++i) tasks.push_back(loop.create_task(body(gate, order, i)));
    (void)loop.run_once();
    (void)gate.set_result(1);
    CHECK(test::run_until(loop, [&] { return order.size() == 10000; }));
    bool in_order = true;
    for (int i = 0; i < 10000; ++i) in_order = in_order && order[static_cast<std::size_t>(i)] == i;
    CHECK(in_order);
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("an exception escaping a task is stored and rethrown by co_await, result() and run_until_complete") {
    EventLoop loop;
    auto thrower = []() -> Task<int> {
        throw std::runtime_error("boom");
        co_return 0;
    };
    Task<int> t = loop.create_task(thrower());
    CHECK_THROWS_WITH_AS((void)loop.run_until_complete(t), "boom", std::runtime_error);
    CHECK(t.error() == errc::exception_raised);
    CHECK(t.exception() != nullptr);
    CHECK_THROWS_AS((void)t.result(), std::runtime_error);

    auto catcher = [](Task<int> inner) -> Task<int> {
        try {
            (void)co_await inner;
        } catch (const std::runtime_error& e) {
            co_return 1;
        }
        co_return 0;
    };
    CHECK(*loop.run_until_complete(catcher(thrower())) == 1);
}

TEST_CASE("a std::system_error escaping a task keeps its code") {
    EventLoop loop;
    auto thrower = []() -> Task<void> {
        throw std::system_error(std::make_error_code(std::errc::timed_out), "slow");
        co_return;
    };
    Task<void> t = loop.create_task(thrower());
    CHECK_THROWS_AS((void)loop.run_until_complete(t), std::system_error);
    CHECK(t.error() == std::errc::timed_out);
}
#endif
