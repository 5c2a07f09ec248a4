// test/core/async_generator_test.cpp — AsyncGenerator<T> (core/async_generator.hpp):
// values co_yielded across co_awaits, the end of a generator (normal, with
// an error, with an exception), its frame's lifetime, cancellation reaching
// its body through the consuming task, and loop.shutdown_asyncgens()
// (asyncio's asyncgen hooks; core/event_loop_tasks.cpp).
// Generators and consumers are free functions taking their state by pointer
// or by value, never capturing lambdas.
#include <doctest/doctest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "core/async_generator.hpp"
#include "core/event_loop.hpp"
#include "core/task_helpers.hpp"
#include "test/support.hpp"

using namespace evloop;

namespace {

// A generator frame's locals and parameters are test::Live: alive == 0
// means its frame was destroyed.
using test::Counter;
using test::Live;

/// 0, 1, …, n-1, sleeping `gap` before each.
AsyncGenerator<int> ticks(int n, double gap) {
    for (int i = 0; i < n; ++i) {
        Result<void> slept = co_await evloop::sleep(gap);
        if (!slept) co_await evloop::fail(slept.error());
        co_yield i;
    }
}

/// 0, 1, 2, … for ever, with a Live local.
AsyncGenerator<int> counting(Counter* c) {
    Live live(c);
    for (int i = 0;; ++i) co_yield i;
}

/// Like counting(), but the Live is a parameter: alive from the call on.
AsyncGenerator<int> counting_from(Live keep) {
    (void)keep;
    for (int i = 0;; ++i) co_yield i;
}

Task<std::optional<int>> take_one(AsyncGenerator<int>* gen) {
    std::optional<int> v = co_await gen->next();
    co_return v;
}

}  // namespace

namespace {
struct Collected {
    std::vector<int> values;
    std::vector<double> at;  // loop.time() at each value
};

Task<void> collect(AsyncGenerator<int> gen, EventLoop* loop, Collected* out) {
    while (auto v = co_await gen.next()) {
        out->values.push_back(*v);
        out->at.push_back(loop->time());
    }
    CHECK(gen.finished());
    CHECK_FALSE(gen.error());
    std::optional<int> after_end = co_await gen.next();
    CHECK_FALSE(after_end.has_value());
}
}  // namespace

TEST_CASE("co_yield values reach the consumer in order, with sleeps between them") {
    EventLoop loop;
    Collected out;
    double start = loop.time();
    CHECK(loop.run_until_complete(loop.create_task(collect(ticks(5, 0.005), &loop, &out))));
    CHECK(out.values == std::vector<int>{0, 1, 2, 3, 4});
    REQUIRE(out.at.size() == 5);
    for (std::size_t i = 0; i < out.at.size(); ++i) {
        CAPTURE(i);
        // Each value comes after its sleep: at least (i + 1) gaps in.
        CHECK(out.at[i] - start >= 0.005 * static_cast<double>(i + 1) - 1e-6);
    }
    CHECK(loop.scheduled_timers() == 0);
}

namespace {
AsyncGenerator<int> one_then_error(std::error_code ec) {
    co_yield 1;
    co_await evloop::fail(ec);
    co_yield 2;  // never reached
}

Task<void> read_until_error(std::vector<int>* values, std::error_code* error, bool* finished) {
    auto gen = one_then_error(std::make_error_code(std::errc::connection_reset));
    while (auto v = co_await gen.next()) values->push_back(*v);
    *error = gen.error();
    *finished = gen.finished();
    std::optional<int> again = co_await gen.next();
    CHECK_FALSE(again.has_value());
}
}  // namespace

TEST_CASE("a generator that ends with co_await fail(ec): next() gives nullopt and error() is ec") {
    EventLoop loop;
    std::vector<int> values;
    std::error_code error;
    bool finished = false;
    CHECK(loop.run_until_complete(loop.create_task(read_until_error(&values, &error, &finished))));
    CHECK(values == std::vector<int>{1});
    CHECK(error == std::errc::connection_reset);
    CHECK(finished);
}

namespace {
Task<int> take_one_and_drop(Counter* c) {
    auto gen = counting(c);
    std::optional<int> first = co_await gen.next();
    CHECK(c->alive == 1);  // the generator's local, suspended at co_yield
    co_return first.value_or(-1);
}  // gen is destroyed here, unfinished
}  // namespace

TEST_CASE("destroying an unfinished generator destroys its frame and runs its locals' destructors") {
    EventLoop loop;
    Counter c;
    Result<int> first = loop.run_until_complete(loop.create_task(take_one_and_drop(&c)));
    REQUIRE(first.has_value());
    CHECK(*first == 0);
    CHECK(c.alive == 0);
    CHECK(c.destroyed == 1);

    // Never iterated: the frame holds only the parameter, and goes too.
    Counter p;
    {
        auto gen = counting_from(Live(&p));
        CHECK(p.alive == 1);
        CHECK_FALSE(gen.finished());
    }
    CHECK(p.alive == 0);

    // Moving a generator moves the frame's ownership, not the frame.
    Counter m;
    {
        auto gen = counting_from(Live(&m));
        auto moved = std::move(gen);
        CHECK(m.alive == 1);
        CHECK(gen.finished());  // NOLINT(bugprone-use-after-move): a moved-from generator is empty
        CHECK(*loop.run_until_complete(loop.create_task(take_one(&moved))) == 0);
    }
    CHECK(m.alive == 0);
}

TEST_CASE("shutdown_asyncgens() closes the generators iterated on the loop that are still alive") {
    EventLoop loop;
    Counter c;
    auto first = counting(&c);
    auto second = counting(&c);
    Counter unstarted;
    auto never_iterated = counting_from(Live(&unstarted));
    CHECK(*loop.run_until_complete(loop.create_task(take_one(&first))) == 0);
    CHECK(*loop.run_until_complete(loop.create_task(take_one(&first))) == 1);
    CHECK(*loop.run_until_complete(loop.create_task(take_one(&second))) == 0);
    CHECK(c.alive == 2);

    CHECK(loop.run_until_complete(loop.shutdown_asyncgens()));
    CHECK(c.alive == 0);  // both frames destroyed, their locals with them
    CHECK(first.finished());
    CHECK(second.finished());
    CHECK_FALSE(first.error());
    // asyncio's firstiter hook: a generator never iterated is not the loop's.
    CHECK_FALSE(never_iterated.finished());
    CHECK(unstarted.alive == 1);

    // A closed generator gives nothing more.
    Result<std::optional<int>> after = loop.run_until_complete(loop.create_task(take_one(&first)));
    REQUIRE(after.has_value());
    CHECK_FALSE(after->has_value());
    // A second shutdown finds nothing left to close.
    CHECK(loop.run_until_complete(loop.shutdown_asyncgens()));
    CHECK(unstarted.alive == 1);
}

namespace {
AsyncGenerator<int> sleeps_in_body(Counter* c, std::error_code* seen) {
    Live live(c);
    Result<void> slept = co_await evloop::sleep(10.0);
    *seen = slept.error();
    if (!slept) co_await evloop::fail(slept.error());
    co_yield 1;
}

Task<void> consume_sleeper(AsyncGenerator<int>* gen) {
    std::optional<int> v = co_await gen->next();
    if (!v) co_await evloop::fail(gen->error());
}
}  // namespace

TEST_CASE("shutdown_asyncgens() reports a generator busy producing a value and leaves it alone") {
    EventLoop loop;
    std::vector<ExceptionContext> reports;
    loop.set_exception_handler([&](EventLoop&, const ExceptionContext& context) { reports.push_back(context); });
    Counter c;
    std::error_code seen;
    auto gen = sleeps_in_body(&c, &seen);
    Task<void> consumer = loop.create_task(consume_sleeper(&gen));
    CHECK(test::run_until(loop, [&] { return c.alive == 1; }));  // parked in the body's sleep

    CHECK(loop.run_until_complete(loop.shutdown_asyncgens()));
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].message == "an error occurred during closing of asynchronous generator");
    CHECK(reports[0].error == errc::generator_running);
    CHECK(c.alive == 1);
    CHECK_FALSE(gen.finished());

    CHECK(consumer.cancel());
    CHECK(loop.run_until_complete(consumer).error() == errc::cancelled);
    CHECK(seen == errc::cancelled);
    // Still tracked: a later shutdown closes it.
    CHECK(loop.run_until_complete(loop.shutdown_asyncgens()));
    CHECK(c.alive == 0);
    CHECK(reports.size() == 1);
}

TEST_CASE("cancelling the consuming task while the body awaits sleep delivers cancelled into the body") {
    EventLoop loop;
    Counter c;
    std::error_code seen;
    auto gen = sleeps_in_body(&c, &seen);
    Task<void> consumer = loop.create_task(consume_sleeper(&gen));
    TimerHandle canceller = loop.call_later(0.02, [consumer]() mutable { CHECK(consumer.cancel()); });
    double start = loop.time();
    Result<void> outcome = loop.run_until_complete(consumer);
    CHECK(loop.time() - start < 1.0);
    CHECK(outcome.error() == errc::cancelled);
    CHECK(consumer.cancelled());
    CHECK(seen == errc::cancelled);         // the body saw it at its co_await
    CHECK(gen.error() == errc::cancelled);  // and ended with it
    CHECK(gen.finished());
    CHECK(loop.scheduled_timers() == 0);
    CHECK(c.alive == 1);  // a failed generator keeps its frame until the object goes
}

#if EVLOOP_EXCEPTIONS
namespace {
AsyncGenerator<int> throws_after_one() {
    co_yield 1;
    throw std::runtime_error("generator body failed");
}

Task<std::string> catch_from_next(std::vector<int>* values) {
    auto gen = throws_after_one();
    std::string caught;
    try {
        while (auto v = co_await gen.next()) values->push_back(*v);
    } catch (const std::runtime_error& e) {
        caught = e.what();
    }
    CHECK(gen.finished());
    std::optional<int> after = co_await gen.next();  // the exception is delivered once
    CHECK_FALSE(after.has_value());
    co_return caught;
}

Task<void> let_it_escape() {
    auto gen = throws_after_one();
    while (auto v = co_await gen.next()) (void)v;
}
}  // namespace

TEST_CASE("exception builds: an exception thrown in the body is rethrown by co_await gen.next()") {
    EventLoop loop;
    std::vector<int> values;
    Result<std::string> caught = loop.run_until_complete(loop.create_task(catch_from_next(&values)));
    REQUIRE(caught.has_value());
    CHECK(*caught == "generator body failed");
    CHECK(values == std::vector<int>{1});

    // Uncaught, it ends the consuming task and run_until_complete rethrows it.
    Task<void> task = loop.create_task(let_it_escape());
    CHECK_THROWS_WITH_AS((void)loop.run_until_complete(task), "generator body failed", std::runtime_error);
    CHECK(task.error() == errc::exception_raised);
}
#endif
