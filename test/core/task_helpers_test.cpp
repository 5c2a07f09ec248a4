// test/core/task_helpers_test.cpp — sleep, wait_for, gather, shield and the
// free create_task / current_task (core/task_helpers.hpp), driven by real
// loops and real timers, plus how a task's cancellation lands at each place a
// task can be suspended (core/task.cpp). CONTRACT §7, items 93–110.
// Every coroutine here is a free function taking its state by pointer or by
// value: a capturing coroutine lambda would outlive its captures.
// Read next: test/core/async_generator_test.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/event_loop.hpp"
#include "core/task_helpers.hpp"
#include "test/support.hpp"

using namespace evloop;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

using test::Counter;
using test::Live;

Task<int> value_after(double delay, int value) {
    Result<void> slept = co_await evloop::sleep(delay);
    if (!slept) co_return slept.error();
    co_return value;
}

Task<int> error_after(double delay, std::error_code error) {
    Result<void> slept = co_await evloop::sleep(delay);
    if (!slept) co_return slept.error();
    co_return error;
}

Task<void> void_after(double delay, std::vector<std::string>* order) {
    Result<void> slept = co_await evloop::sleep(delay);
    if (!slept) co_await evloop::fail(slept.error());
    order->push_back("void");
}

/// Sleeps `delay` with a Live local; passes a cancellation on.
Task<int> guarded_sleep(Counter* c, double delay, int value) {
    Live live(c);
    Result<void> slept = co_await evloop::sleep(delay);
    if (!slept) co_return slept.error();
    ++c->finished_normally;
    co_return value;
}

/// Sleeps `delay`; if cancelled, swallows it and returns `value` (CONTRACT 96).
Task<int> ignores_cancel(Counter* c, double delay, int value) {
    Live live(c);
    Result<void> slept = co_await evloop::sleep(delay);
    if (!slept) CHECK(slept.error() == errc::cancelled);
    co_return value;
}

Task<void> poll_until(std::function<bool()> done, EventLoop* loop) {
    double give_up = loop->time() + 5.0;
    while (!done() && loop->time() < give_up) {
        Result<void> yielded = co_await evloop::sleep(0);
        if (!yielded) co_await evloop::fail(yielded.error());
    }
}

/// test::run_until through run_until_complete, so that the tasks stepped
/// meanwhile see a running loop (what gather and wait_for of a coroutine
/// need to schedule it, as asyncio's ensure_future).
bool run_loop_until(EventLoop& loop, std::function<bool()> done) {
    (void)loop.run_until_complete(loop.create_task(poll_until(done, &loop)));
    return done();
}

}  // namespace

// ---- sleep ------------------------------------------------------------------

namespace {
Task<void> count_iterations_across(EventLoop* loop, double delay, std::uint64_t* iterations) {
    std::uint64_t before = loop->metrics().iterations;
    Result<void> slept = co_await evloop::sleep(delay);
    CHECK(slept.has_value());
    *iterations = loop->metrics().iterations - before;
}

Task<void> sleep0_between_callbacks(EventLoop* loop, std::vector<std::string>* order) {
    // cb1 runs on the next iteration and schedules cb2 for the one after.
    loop->call_soon([loop, order] {
        order->push_back("next iteration");
        loop->call_soon([order] { order->push_back("iteration after"); });
    });
    Result<void> slept = co_await evloop::sleep(0);
    CHECK(slept.has_value());
    order->push_back("task resumed");
}
}  // namespace

TEST_CASE("102, 103: sleep(0) and sleep(d <= 0) yield exactly one loop iteration") {
    EventLoop loop;
    for (double delay : {0.0, -1.0}) {
        CAPTURE(delay);
        std::uint64_t iterations = 0;
        CHECK(loop.run_until_complete(loop.create_task(count_iterations_across(&loop, delay, &iterations))));
        CHECK(iterations == 1);
    }
    // The task resumes after a callback queued before it, and before one
    // queued a single iteration later.
    std::vector<std::string> order;
    CHECK(loop.run_until_complete(loop.create_task(sleep0_between_callbacks(&loop, &order))));
    CHECK(test::run_until(loop, [&] { return order.size() == 3; }));
    CHECK(order == std::vector<std::string>{"next iteration", "task resumed", "iteration after"});
    CHECK(loop.scheduled_timers() == 0);  // sleep(0) is not a timer
}

namespace {
Task<void> timed_sleep(EventLoop* loop, Sleep (*make)(), std::int64_t* elapsed_ns) {
    std::int64_t start = loop->time_ns();
    Result<void> slept = co_await make();
    CHECK(slept.has_value());
    *elapsed_ns = loop->time_ns() - start;
}

Task<void> count_iterations_across_zero_seconds(EventLoop* loop, std::uint64_t* iterations) {
    std::uint64_t before = loop->metrics().iterations;
    Result<void> slept = co_await evloop::sleep(std::chrono::seconds(0));
    CHECK(slept.has_value());
    *iterations = loop->metrics().iterations - before;
}
}  // namespace

TEST_CASE("sleep(d > 0) takes at least d, in seconds and as a chrono duration") {
    EventLoop loop;
    // A timer is due once the clock is within its resolution of the deadline,
    // as in asyncio's _run_once (1 ns on Linux); allow a microsecond.
    const std::int64_t slack_ns = 1000;
    std::int64_t elapsed = 0;
    CHECK(loop.run_until_complete(loop.create_task(timed_sleep(&loop, [] { return evloop::sleep(0.03); }, &elapsed))));
    CHECK(elapsed >= 30'000'000 - slack_ns);
    CHECK(elapsed < 1'000'000'000);
    elapsed = 0;
    CHECK(loop.run_until_complete(loop.create_task(timed_sleep(
        &loop, [] { return evloop::sleep(std::chrono::milliseconds(25)); }, &elapsed))));
    CHECK(elapsed >= 25'000'000 - slack_ns);
    CHECK(elapsed < 1'000'000'000);
    CHECK(loop.run_until_complete(loop.create_task(timed_sleep(
        &loop, [] { return evloop::sleep(std::chrono::duration<double, std::milli>(12.5)); }, &elapsed))));
    CHECK(elapsed >= 12'500'000 - slack_ns);

    std::uint64_t iterations = 0;
    CHECK(loop.run_until_complete(loop.create_task(count_iterations_across_zero_seconds(&loop, &iterations))));
    CHECK(iterations == 1);
    CHECK(loop.scheduled_timers() == 0);
}

namespace {
Task<void> sleep_nan() {
    Result<void> slept = co_await evloop::sleep(kNaN);
    if (!slept) co_await evloop::fail(slept.error());
}
}  // namespace

TEST_CASE("104: sleep(NaN) is refused") {
    EventLoop loop;
    Result<void> outcome;
    CHECK_REFUSED(errc::invalid_time, outcome = loop.run_until_complete(loop.create_task(sleep_nan())));
#if !EVLOOP_EXCEPTIONS
    CHECK(outcome.error() == errc::invalid_time);
#endif
    CHECK(loop.scheduled_timers() == 0);
}

namespace {
Task<void> sleep_long(EventLoop* loop, Counter* c, double* woke_after, std::error_code* seen) {
    Live live(c);
    double start = loop->time();
    Result<void> slept = co_await evloop::sleep(10.0);
    *woke_after = loop->time() - start;
    *seen = slept.error();
    if (!slept) co_await evloop::fail(slept.error());
    ++c->finished_normally;
}
}  // namespace

TEST_CASE("105: a sleep cancelled mid-way returns cancelled promptly and leaves no timer behind") {
    EventLoop loop;
    Counter c;
    double woke_after = -1;
    std::error_code seen;
    Task<void> task = loop.create_task(sleep_long(&loop, &c, &woke_after, &seen));
    TimerHandle canceller = loop.call_later(0.02, [task]() mutable { CHECK(task.cancel()); });
    Result<void> outcome = loop.run_until_complete(task);
    CHECK(outcome.error() == errc::cancelled);
    CHECK(task.cancelled());
    CHECK(seen == errc::cancelled);
    CHECK(woke_after < 1.0);  // at the cancellation, not after the 10 s
    CHECK(c.alive == 0);
    CHECK(c.finished_normally == 0);
    CHECK(loop.scheduled_timers() == 0);  // the 10 s timer is gone
}

// ---- wait_for ---------------------------------------------------------------

namespace {
/// co_await wait_for(inner, timeout); notes how long it took and how many
/// Live objects were left when it returned.
Task<int> wait_for_task(Task<int> inner, double timeout, double* took, EventLoop* loop, const Counter* c = nullptr,
                        int* alive_at_return = nullptr) {
    double start = loop->time();
    Result<int> r = co_await evloop::wait_for(inner, timeout);
    *took = loop->time() - start;
    if (alive_at_return) *alive_at_return = c->alive;
    co_return r;
}
}  // namespace

TEST_CASE("wait_for: the result arrives before the timeout") {
    EventLoop loop;
    Counter c;
    double took = -1;
    Task<int> inner = guarded_sleep(&c, 0.01, 7);
    Result<int> r = loop.run_until_complete(loop.create_task(wait_for_task(inner, 5.0, &took, &loop)));
    REQUIRE(r.has_value());
    CHECK(*r == 7);
    CHECK(took < 1.0);
    CHECK(inner.done());
    CHECK_FALSE(inner.cancelled());
    CHECK(c.alive == 0);
    CHECK(loop.scheduled_timers() == 0);  // the timeout's timer was cancelled
}

TEST_CASE("wait_for: errc::timeout after the timeout; the inner task is cancelled and its cleanup has run") {
    EventLoop loop;
    Counter c;
    double took = -1;
    int alive_at_return = -1;
    Task<int> inner = guarded_sleep(&c, 10.0, 7);
    Result<int> r =
        loop.run_until_complete(loop.create_task(wait_for_task(inner, 0.03, &took, &loop, &c, &alive_at_return)));
    CHECK(r.error() == errc::timeout);
    CHECK(alive_at_return == 0);  // wait_for waited for the cancellation to land
    CHECK(took >= 0.029);
    CHECK(took < 1.0);
    CHECK(inner.done());
    CHECK(inner.cancelled());
    CHECK(c.destroyed == 1);
    CHECK(c.alive == 0);
    CHECK(c.finished_normally == 0);
    CHECK(loop.scheduled_timers() == 0);
}

TEST_CASE("96, wait_for: an inner task that catches the cancellation and returns a value gives that value") {
    EventLoop loop;
    Counter c;
    double took = -1;
    Task<int> inner = ignores_cancel(&c, 10.0, 99);
    Result<int> r = loop.run_until_complete(loop.create_task(wait_for_task(inner, 0.02, &took, &loop)));
    REQUIRE(r.has_value());
    CHECK(*r == 99);
    CHECK_FALSE(inner.cancelled());
    CHECK(c.alive == 0);
    CHECK(took < 1.0);
}

TEST_CASE("wait_for: cancelling the waiting task cancels the inner one") {
    EventLoop loop;
    Counter c;
    double took = -1;
    Task<int> inner = guarded_sleep(&c, 10.0, 7);
    Task<int> outer = loop.create_task(wait_for_task(inner, 10.0, &took, &loop));
    TimerHandle canceller = loop.call_later(0.02, [outer]() mutable { CHECK(outer.cancel()); });
    Result<int> r = loop.run_until_complete(outer);
    CHECK(r.error() == errc::cancelled);
    CHECK(outer.cancelled());
    CHECK(inner.cancelled());
    CHECK(c.alive == 0);
    CHECK(took < 1.0);
    CHECK(loop.scheduled_timers() == 0);
}

TEST_CASE("wait_for: a timeout <= 0 cancels a pending future at once; a done one gives its result") {
    EventLoop loop;
    for (double timeout : {0.0, -1.0}) {
        CAPTURE(timeout);
        Future<int> pending(loop);
        CHECK(loop.run_until_complete(evloop::wait_for(pending, timeout)).error() == errc::timeout);
        CHECK(pending.cancelled());

        Future<int> done(loop);
        CHECK_FALSE(done.set_result(5));
        Result<int> r = loop.run_until_complete(evloop::wait_for(done, timeout));
        REQUIRE(r.has_value());
        CHECK(*r == 5);
    }
}

TEST_CASE("wait_for: a NaN timeout is refused and leaves the future alone") {
    EventLoop loop;
    Future<int> pending(loop);
    Result<int> outcome = errc::invalid_state;
    CHECK_REFUSED(errc::invalid_time, outcome = loop.run_until_complete(evloop::wait_for(pending, kNaN)));
#if !EVLOOP_EXCEPTIONS
    CHECK(outcome.error() == errc::invalid_time);
#endif
    CHECK_FALSE(pending.done());
}

// ---- gather -----------------------------------------------------------------

namespace {
using Mixed = std::tuple<Result<int>, Result<std::string>, Result<void>>;

Task<Mixed> gather_mixed(EventLoop* loop, std::vector<std::string>* order) {
    Future<std::string> text(*loop);
    TimerHandle setter = loop->call_later(0.02, [text, order]() mutable {
        order->push_back("string");
        (void)text.set_result("two");
    });
    // Completes in the reverse order of the arguments: void, string, int.
    Result<Mixed> r = co_await evloop::gather(value_after(0.03, 1), text, void_after(0.01, order));
    order->push_back("gathered");
    co_return r;
}
}  // namespace

TEST_CASE("gather: a fixed list of mixed types gives a tuple of Results in argument order") {
    EventLoop loop;
    std::vector<std::string> order;
    Result<Mixed> r = loop.run_until_complete(loop.create_task(gather_mixed(&loop, &order)));
    REQUIRE(r.has_value());
    auto& [number, text, nothing] = *r;
    REQUIRE(number.has_value());
    CHECK(*number == 1);
    REQUIRE(text.has_value());
    CHECK(*text == "two");
    CHECK(nothing.has_value());
    CHECK(order == std::vector<std::string>{"void", "string", "gathered"});
}

TEST_CASE("gather: over a std::vector, the results are in the vector's order") {
    EventLoop loop;
    std::vector<Future<int>> children;
    for (int i = 0; i < 5; ++i) children.push_back(loop.create_task(value_after(0.002 * (5 - i), i * i)));
    Result<std::vector<Result<int>>> r = loop.run_until_complete(evloop::gather(children));
    REQUIRE(r.has_value());
    REQUIRE(r->size() == 5);
    for (int i = 0; i < 5; ++i) {
        REQUIRE((*r)[i].has_value());
        CHECK(*(*r)[i] == i * i);
    }
}

namespace {
Task<void> gather_nothing(bool* checked) {
    Future<std::tuple<>> none = evloop::gather();
    CHECK(none.done());
    Result<std::tuple<>> nothing = co_await none;
    CHECK(nothing.has_value());
    Future<std::vector<Result<int>>> empty = evloop::gather(std::vector<Future<int>>{});
    CHECK(empty.done());
    Result<std::vector<Result<int>>> r = co_await empty;
    CHECK(r.has_value());
    if (r) CHECK(r->empty());
    *checked = true;
}
}  // namespace

TEST_CASE("109: gather of nothing is done at once with an empty result") {
    EventLoop loop;
    bool checked = false;
    CHECK(loop.run_until_complete(loop.create_task(gather_nothing(&checked))));
    CHECK(checked);
    // With no child and no running loop there is no loop to bind it to.
    CHECK_REFUSED(errc::no_running_loop, (void)evloop::gather());
}

namespace {
Task<void> gather_first_failure(Task<int> fails, Task<int> slow, double* failed_at, EventLoop* loop) {
    Result<std::tuple<Result<int>, Result<int>>> r = co_await evloop::gather(fails, slow);
    *failed_at = loop->time();
    CHECK(r.error() == std::errc::io_error);
    CHECK(fails.done());
    CHECK_FALSE(slow.done());  // still running: the gather does not wait for it
}
}  // namespace

TEST_CASE("gather, return_exceptions=false: the first failing child fails it at once; the others keep running") {
    EventLoop loop;
    Counter c;
    double failed_at = 0;
    Task<int> fails = loop.create_task(error_after(0.01, std::make_error_code(std::errc::io_error)));
    Task<int> slow = loop.create_task(guarded_sleep(&c, 0.05, 2));
    CHECK(loop.run_until_complete(loop.create_task(gather_first_failure(fails, slow, &failed_at, &loop))));
    CHECK_FALSE(slow.done());
    Result<int> late = loop.run_until_complete(slow);
    REQUIRE(late.has_value());
    CHECK(*late == 2);
    CHECK_FALSE(slow.cancelled());
    CHECK(loop.time() > failed_at);
    CHECK(c.finished_normally == 1);
}

TEST_CASE("gather, return_exceptions=true: every child's Result, errors and cancellation included") {
    EventLoop loop;
    Future<int> cancelled(loop);
    TimerHandle canceller = loop.call_later(0.005, [cancelled]() mutable { CHECK(cancelled.cancel()); });
    std::vector<Future<int>> children{
        loop.create_task(value_after(0.01, 1)),
        loop.create_task(error_after(0.001, std::make_error_code(std::errc::io_error))),
        cancelled,
        loop.create_task(value_after(0.0, 4)),
    };
    Result<std::vector<Result<int>>> r =
        loop.run_until_complete(evloop::gather(children, GatherOptions{.return_exceptions = true}));
    REQUIRE(r.has_value());
    REQUIRE(r->size() == 4);
    CHECK(*(*r)[0] == 1);
    CHECK((*r)[1].error() == std::errc::io_error);
    CHECK((*r)[2].error() == errc::cancelled);
    CHECK(*(*r)[3] == 4);

    // The fixed-list form takes the option first.
    Result<std::tuple<Result<int>, Result<int>>> pair = loop.run_until_complete(evloop::gather(
        GatherOptions{.return_exceptions = true},
        Future<int>(loop.create_task(error_after(0.0, std::make_error_code(std::errc::timed_out)))),
        Future<int>(loop.create_task(value_after(0.0, 6)))));
    REQUIRE(pair.has_value());
    CHECK(std::get<0>(*pair).error() == std::errc::timed_out);
    CHECK(*std::get<1>(*pair) == 6);
}

TEST_CASE("gather: cancelling the gather cancels the children still pending") {
    EventLoop loop;
    Counter c;
    Task<int> first = loop.create_task(guarded_sleep(&c, 10.0, 1));
    Task<int> second = loop.create_task(guarded_sleep(&c, 10.0, 2));
    Task<int> quick = loop.create_task(value_after(0.0, 3));
    Future<int> plain(loop);
    auto all = evloop::gather(first, second, quick, plain);
    TimerHandle canceller = loop.call_later(0.02, [all]() mutable { CHECK(all.cancel()); });
    CHECK(loop.run_until_complete(all).error() == errc::cancelled);
    CHECK(test::run_until(loop, [&] { return first.done() && second.done(); }));
    CHECK(first.cancelled());
    CHECK(second.cancelled());
    CHECK(plain.cancelled());
    CHECK_FALSE(quick.cancelled());
    CHECK(*quick.result() == 3);
    CHECK(c.alive == 0);
    CHECK(c.finished_normally == 0);
    CHECK(loop.scheduled_timers() == 0);
}

namespace {
Task<void> await_gather_of(Future<int> plain, Counter* c) {
    Result<std::tuple<Result<int>, Result<int>>> r = co_await evloop::gather(plain, guarded_sleep(c, 10.0, 1));
    (void)r;
}
}  // namespace

TEST_CASE("gather: one still pending when its loop closes leaves no reference cycle behind") {
    // close() destroys the frames of pending tasks to break the cycles a
    // garbage collector would find (core/event_loop_tasks.cpp). A gather's
    // done callbacks form another one: child -> callback -> gather state ->
    // child. Once the loop, the task and the gather are gone, only this
    // test's own reference to the plain child may remain (ASan also reports
    // the leaked states at exit).
    Counter c;
    Future<int> plain = [&] {
        EventLoop loop;
        loop.set_exception_handler([](EventLoop&, const ExceptionContext&) {});  // "destroyed but pending"
        Future<int> child(loop);
        Task<void> task = loop.create_task(await_gather_of(child, &c));
        REQUIRE(run_loop_until(loop, [&] { return c.alive == 1; }));
        CHECK_FALSE(loop.close());
        return child;
    }();
    CHECK(c.alive == 0);
    CHECK_FALSE(plain.done());
    CHECK(plain.core()->refs == 1);
}

// ---- shield -----------------------------------------------------------------

TEST_CASE("110: shield of a done future returns that future itself") {
    EventLoop loop;
    Future<int> done(loop);
    CHECK_FALSE(done.set_result(1));
    CHECK(evloop::shield(done) == done);
    Task<int> finished = loop.create_task(value_after(0.0, 2));
    CHECK(*loop.run_until_complete(finished) == 2);
    CHECK(evloop::shield(finished) == finished);
    Future<int> pending(loop);
    CHECK_FALSE(evloop::shield(pending) == pending);
    CHECK(pending.cancel());
}

namespace {
Task<int> await_shielded(Task<int> inner) {
    Result<int> r = co_await evloop::shield(inner);
    co_return r;
}
}  // namespace

TEST_CASE("shield: cancelling the outer future does not cancel the inner task, which completes normally") {
    EventLoop loop;
    Counter c;
    Task<int> inner = loop.create_task(guarded_sleep(&c, 0.03, 42));
    Future<int> outer = evloop::shield(inner);
    CHECK(outer.cancel());
    CHECK(outer.cancelled());
    CHECK_FALSE(inner.done());

    // A task awaiting the shield is cancelled; the inner task is not.
    Task<int> waiter = loop.create_task(await_shielded(inner));
    TimerHandle canceller = loop.call_later(0.01, [waiter]() mutable { CHECK(waiter.cancel()); });
    CHECK(loop.run_until_complete(waiter).error() == errc::cancelled);
    CHECK(waiter.cancelled());
    CHECK_FALSE(inner.done());

    Result<int> r = loop.run_until_complete(inner);
    REQUIRE(r.has_value());
    CHECK(*r == 42);
    CHECK_FALSE(inner.cancelled());
    CHECK(c.finished_normally == 1);
    CHECK(c.alive == 0);
}

// ---- create_task, current_task ----------------------------------------------

namespace {
Task<void> note_ran(Live keep, bool* ran) {
    *ran = true;
    (void)keep;
    co_return;
}

Task<int> spawn_named(bool* ran) {
    Counter unused;
    Task<void> child = evloop::create_task(note_ran(Live(&unused), ran), "spawned");
    CHECK(child.get_name() == "spawned");
    CHECK(child.task_core().scheduled());
    CHECK_FALSE(*ran);  // scheduled, not started (CONTRACT 89)
    Result<void> joined = co_await child;
    CHECK(joined.has_value());
    CHECK(*ran);
    co_return 1;
}
}  // namespace

TEST_CASE("create_task (free function) uses the running loop; outside one it is refused with no_running_loop") {
    Counter c;
    bool ran = false;
    CHECK_REFUSED(errc::no_running_loop, (void)evloop::create_task(note_ran(Live(&c), &ran)));
    CHECK_FALSE(ran);
    CHECK(c.alive == 0);  // the coroutine frame was destroyed, unrun
#if !EVLOOP_EXCEPTIONS
    {
        // The refused value says the same thing: a task done with the error.
        test::LogCapture quiet;
        Task<void> refused = evloop::create_task(note_ran(Live(&c), &ran));
        CHECK(refused.done());
        CHECK(refused.result().error() == errc::no_running_loop);
    }
#endif
    EventLoop loop;
    bool child_ran = false;
    CHECK(*loop.run_until_complete(loop.create_task(spawn_named(&child_ran))) == 1);
    CHECK(child_ran);
}

namespace {
Task<void> inline_child_sees(TaskRef expected, bool* ok) {
    *ok = evloop::current_task() == expected;
    co_return;
}

Task<void> check_current(TaskRef* expected, EventLoop* loop, int* checks) {
    CHECK(evloop::current_task());
    CHECK(evloop::current_task() == *expected);
    CHECK(loop->current_task() == *expected);
    ++*checks;
    Result<void> slept = co_await evloop::sleep(0.001);
    CHECK(slept.has_value());
    CHECK(evloop::current_task() == *expected);  // still, after a suspension
    ++*checks;
    bool child_ok = false;
    Result<void> child = co_await inline_child_sees(*expected, &child_ok);
    CHECK(child.has_value());
    CHECK(child_ok);  // a coroutine awaited inline runs in the awaiting task
    ++*checks;
}
}  // namespace

TEST_CASE("108: current_task() is the running task inside a task and empty outside any task") {
    CHECK_FALSE(evloop::current_task());
    EventLoop loop;
    CHECK_FALSE(evloop::current_task());
    int checks = 0;
    TaskRef expected;
    Task<void> task = loop.create_task(check_current(&expected, &loop, &checks));
    expected = task;
    bool in_callback_empty = false;
    loop.call_soon([&] { in_callback_empty = !evloop::current_task(); });
    CHECK(loop.run_until_complete(task));
    CHECK(checks == 3);
    CHECK(in_callback_empty);
    CHECK_FALSE(evloop::current_task());
}

// ---- many tasks ---------------------------------------------------------------

namespace {
/// sleep(delay), noting the clock right after the sleep has armed its timer.
/// The timer's deadline is loop.time() + delay read somewhere between the
/// test's clock read before the co_await and this one.
class ArmedSleep {
public:
    ArmedSleep(EventLoop* loop, double delay, double* armed_at) : sleep_(delay), loop_(loop), armed_at_(armed_at) {}
    bool await_ready() const noexcept { return sleep_.await_ready(); }
    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        sleep_.await_suspend(h);
        *armed_at_ = loop_->time();
    }
    Result<void> await_resume() { return sleep_.await_resume(); }

private:
    Sleep sleep_;
    EventLoop* loop_;
    double* armed_at_;
};

struct Finish {
    double earliest;  // the deadline: loop.time() before arming + delay ...
    double latest;    // ... at most loop.time() after arming + delay
    int id;
};

Task<void> sleeper(EventLoop* loop, double delay, int id, std::vector<Finish>* finished) {
    double before = loop->time();
    double armed_at = before;
    Result<void> slept = co_await ArmedSleep(loop, delay, &armed_at);
    if (!slept) co_await evloop::fail(slept.error());
    finished->push_back({before + delay, armed_at + delay, id});
}
}  // namespace

TEST_CASE("10,000 concurrent tasks sleeping random delays all finish, in the order of their deadlines") {
    constexpr int kTasks = 10'000;
    EventLoop loop;
    std::mt19937 rng(20240611);  // fixed seed: the same delays every run
    std::vector<Finish> finished;
    finished.reserve(kTasks);
    std::vector<Future<void>> tasks;
    tasks.reserve(kTasks);
    // 1 µs to 50 ms. Not 0: sleep(0) is no timer, it yields one iteration, so
    // its place among the timers is set by iterations, not by deadlines.
    for (int i = 0; i < kTasks; ++i) {
        double delay = static_cast<double>(1 + rng() % 50'000) * 1e-6;
        tasks.push_back(loop.create_task(sleeper(&loop, delay, i, &finished)));
    }
    double start = loop.time();
    Result<std::vector<Result<void>>> all = loop.run_until_complete(evloop::gather(tasks));
    double took = loop.time() - start;
    REQUIRE(all.has_value());
    CHECK(std::all_of(all->begin(), all->end(), [](const Result<void>& r) { return r.has_value(); }));
    REQUIRE(finished.size() == static_cast<std::size_t>(kTasks));
    CHECK(took < 2.0);
    CHECK(loop.scheduled_timers() == 0);

    // Each deadline is known to lie in [earliest, latest] (the window around
    // the timer's own clock read; a preempted test thread widens it). A task
    // finishing after another whose deadline is surely later is out of order;
    // overlapping windows are ties.
    int out_of_order = 0;
    double worst = 0;
    double max_earliest_so_far = finished[0].earliest;
    for (std::size_t i = 1; i < finished.size(); ++i) {
        double behind = max_earliest_so_far - finished[i].latest;
        if (behind > 0) {
            ++out_of_order;
            worst = std::max(worst, behind);
        }
        max_earliest_so_far = std::max(max_earliest_so_far, finished[i].earliest);
    }
    CAPTURE(worst);
    CHECK(out_of_order == 0);
    std::vector<bool> seen(kTasks, false);
    for (const Finish& f : finished) seen[f.id] = true;
    CHECK(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }));
}

// ---- cancellation at each suspension point ------------------------------------

namespace {
Task<void> never_started(Live keep, Counter* c) {
    c->body_ran = true;
    (void)keep;
    co_return;
}

Task<void> parked_in_sleep0(Counter* c) {
    Live live(c);
    for (;;) {
        Result<void> slept = co_await evloop::sleep(0);
        if (!slept) co_await evloop::fail(slept.error());
    }
}

Task<void> parked_in_sleep(Counter* c) {
    Live live(c);
    Result<void> slept = co_await evloop::sleep(10.0);
    if (!slept) co_await evloop::fail(slept.error());
    ++c->finished_normally;
}

Task<void> parked_on_future(Counter* c, Future<int> future) {
    Live live(c);
    Result<int> r = co_await future;
    if (!r) co_await evloop::fail(r.error());
    ++c->finished_normally;
}

Task<void> parked_on_task(Counter* c, Task<void> other) {
    Live live(c);
    Result<void> r = co_await other;
    if (!r) co_await evloop::fail(r.error());
    ++c->finished_normally;
}

Task<void> parked_in_inline_child(Counter* c) {
    Live live(c);
    Result<void> r = co_await parked_in_sleep(c);  // never scheduled: runs inline
    if (!r) co_await evloop::fail(r.error());
    ++c->finished_normally;
}

Task<void> parked_in_wait_for(Counter* c) {
    Live live(c);
    Result<void> r = co_await evloop::wait_for(parked_in_sleep(c), 10.0);
    if (!r) co_await evloop::fail(r.error());
    ++c->finished_normally;
}

Task<void> parked_in_gather(Counter* c) {
    Live live(c);
    auto r = co_await evloop::gather(parked_in_sleep(c), parked_in_sleep(c));
    if (!r) co_await evloop::fail(r.error());
    ++c->finished_normally;
}

/// Runs until `c.alive` Live objects exist (the task and its helpers have
/// reached their suspension points), cancels `task`, and runs it to its end.
void cancel_when_parked(EventLoop& loop, Task<void>& task, Counter& c, int parked_lives) {
    REQUIRE(run_loop_until(loop, [&] { return c.alive == parked_lives; }));
    CHECK(task.cancel());
    CHECK(loop.run_until_complete(task).error() == errc::cancelled);
}
}  // namespace

TEST_CASE("93, 95: a task cancelled at each suspension point ends cancelled and its locals are destroyed") {
    EventLoop loop;
    Counter c;

    SUBCASE("95: before its first step: the body never runs, the frame is destroyed") {
        Task<void> task = loop.create_task(never_started(Live(&c), &c));
        CHECK(c.alive == 1);  // the parameter, in the frame
        CHECK(task.cancel());
        CHECK(loop.run_until_complete(task).error() == errc::cancelled);
        CHECK_FALSE(c.body_ran);
    }
    SUBCASE("in sleep(0)") {
        Task<void> task = loop.create_task(parked_in_sleep0(&c));
        CHECK_FALSE(loop.run_once());  // the first step: it reaches sleep(0)
        CHECK(c.alive == 1);
        CHECK(task.cancel());
        CHECK(loop.run_until_complete(task).error() == errc::cancelled);
    }
    SUBCASE("in sleep(d)") {
        Task<void> task = loop.create_task(parked_in_sleep(&c));
        cancel_when_parked(loop, task, c, 1);
    }
    SUBCASE("awaiting a future: the future is cancelled too") {
        Future<int> future(loop);
        Task<void> task = loop.create_task(parked_on_future(&c, future));
        cancel_when_parked(loop, task, c, 1);
        CHECK(future.cancelled());
    }
    SUBCASE("awaiting another task: that task is cancelled too") {
        Task<void> other = loop.create_task(parked_in_sleep(&c));
        Task<void> task = loop.create_task(parked_on_task(&c, other));
        cancel_when_parked(loop, task, c, 2);
        CHECK(other.cancelled());
    }
    SUBCASE("inside a coroutine awaited inline") {
        Task<void> task = loop.create_task(parked_in_inline_child(&c));
        cancel_when_parked(loop, task, c, 2);
    }
    SUBCASE("inside wait_for") {
        Task<void> task = loop.create_task(parked_in_wait_for(&c));
        cancel_when_parked(loop, task, c, 2);
    }
    SUBCASE("inside gather") {
        Task<void> task = loop.create_task(parked_in_gather(&c));
        cancel_when_parked(loop, task, c, 3);
    }

    // gather's children hear of the cancellation a step after the task.
    CHECK(run_loop_until(loop, [&] { return c.alive == 0; }));
    CHECK(c.alive == 0);
    CHECK(c.finished_normally == 0);
    CHECK(loop.scheduled_timers() == 0);
}

// ---- driving the loop one iteration at a time ---------------------------------

namespace {
Task<int> needs_running_loop(EventLoop* loop, bool* saw_running) {
    *saw_running = detail::running_loop() == loop;
    Result<std::tuple<Result<int>>> r = co_await evloop::gather(value_after(0.0, 3));
    if (!r) co_return r.error();
    co_return std::get<0>(*r);
}
}  // namespace

TEST_CASE("a task stepped by run_once() runs with its loop as the running loop, as under run_forever") {
    // asyncio steps tasks only inside run_forever; evloop makes run_once()
    // public (test::run_until drives loops with it), and a task it steps must
    // still find its loop: ensure_future in gather, wait_for and shield, and
    // the free create_task, all look for the running loop.
    EventLoop loop;
    bool saw_running = false;
    Task<int> task = loop.create_task(needs_running_loop(&loop, &saw_running));
    CHECK(test::run_until(loop, [&] { return task.done(); }));
    CHECK(saw_running);
    CHECK_FALSE(task.error());
    CHECK_FALSE(evloop::current_task());
    CHECK(detail::running_loop() == nullptr);  // and not after run_once() returns
}
