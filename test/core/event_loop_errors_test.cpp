// test/core/event_loop_errors_test.cpp — the exception handler and debug-mode
// slow-callback reports (core/event_loop_errors.cpp), CONTRACT 32.
#include <doctest/doctest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/event_loop.hpp"
#include "test/support.hpp"

using namespace evloop;

TEST_CASE("set/get_exception_handler; an empty handler restores the default") {
    EventLoop loop;
    CHECK_FALSE(loop.get_exception_handler());
    std::vector<std::string> seen;
    loop.set_exception_handler([&](EventLoop& l, const ExceptionContext& c) {
        CHECK(&l == &loop);
        seen.push_back(c.message);
    });
    CHECK(loop.get_exception_handler());
    loop.call_exception_handler({.message = "custom"});
    CHECK(seen == std::vector<std::string>{"custom"});
    loop.set_exception_handler(nullptr);
    CHECK_FALSE(loop.get_exception_handler());
    test::LogCapture log;
    loop.call_exception_handler({.message = "to the default"});
    CHECK(seen.size() == 1);
    CHECK(log.contains("to the default"));
}

TEST_CASE("the default handler logs message, error, handle and socket at ERROR") {
    EventLoop loop;
    test::LogCapture log;
    Handle h = loop.call_soon([] {});
    loop.default_exception_handler({.message = "something broke",
                                    .error = std::make_error_code(std::errc::connection_reset),
                                    .handle = h,
                                    .socket = 7});
    REQUIRE(test::LogCapture::lines().size() == 1);
    auto& [level, text] = test::LogCapture::lines()[0];
    CHECK(level == LogLevel::error);
    CHECK(text.find("something broke") != std::string::npos);
    CHECK(text.find(std::make_error_code(std::errc::connection_reset).message()) != std::string::npos);
    CHECK(text.find("handle: <Handle") != std::string::npos);
    CHECK(text.find("socket: fd 7") != std::string::npos);
}

#if EVLOOP_EXCEPTIONS
TEST_CASE("32: an exception escaping a callback goes to the handler and the loop goes on") {
    EventLoop loop;
    std::vector<ExceptionContext> contexts;
    loop.set_exception_handler([&](EventLoop&, const ExceptionContext& c) { contexts.push_back(c); });
    bool after = false;
    Handle failing = loop.call_soon([] { throw std::runtime_error("boom"); });
    loop.call_soon([&] { after = true; });
    loop.call_soon([&] { loop.stop(); });
    CHECK_FALSE(loop.run_forever());
    CHECK(after);
    REQUIRE(contexts.size() == 1);
    CHECK(contexts[0].message == "Exception in callback");
    CHECK(contexts[0].handle == failing);
    REQUIRE(contexts[0].exception);
    try {
        std::rethrow_exception(contexts[0].exception);
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "boom");
    }
}

TEST_CASE("32: with the default handler the exception's text is logged") {
    EventLoop loop;
    test::LogCapture log;
    loop.call_soon([] { throw std::logic_error("bad logic"); });
    CHECK_FALSE(loop.run_once());
    CHECK(log.contains("Exception in callback"));
    CHECK(log.contains("bad logic"));
}

TEST_CASE("an exception thrown by the exception handler itself is contained") {
    EventLoop loop;
    test::LogCapture log;
    loop.set_exception_handler([](EventLoop&, const ExceptionContext&) { throw std::runtime_error("handler broke"); });
    loop.call_soon([] { throw 42; });
    bool after = false;
    loop.call_soon([&] { after = true; });
    CHECK_FALSE(loop.run_once());
    CHECK(after);
    CHECK(log.contains("Unhandled error in exception handler"));
}
#endif

TEST_CASE("debug mode reports a slow callback with its duration; normal mode does not") {
    EventLoop loop;
    CHECK_FALSE(loop.get_debug());
    CHECK(loop.slow_callback_duration() == doctest::Approx(0.1));
    loop.set_slow_callback_duration(0.01);
    CHECK(loop.slow_callback_duration() == doctest::Approx(0.01));
    auto slow = [] { std::this_thread::sleep_for(std::chrono::milliseconds(30)); };
    {
        test::LogCapture log;
        loop.call_soon(slow);
        CHECK_FALSE(loop.run_once());
        CHECK_FALSE(log.contains("took"));
    }
    loop.set_debug(true);
    CHECK(loop.get_debug());
    {
        test::LogCapture log;
        loop.call_soon(slow);
        loop.call_soon([] {});  // fast: not reported
        CHECK_FALSE(loop.run_once());
        REQUIRE(log.count() == 1);
        auto& [level, text] = test::LogCapture::lines()[0];
        CHECK(level == LogLevel::warning);
        CHECK(text.find("Executing <Handle") != std::string::npos);
        CHECK(text.find(" seconds") != std::string::npos);
        double seconds = std::stod(text.substr(text.find("took ") + 5));
        CHECK(seconds >= 0.025);
    }
}

TEST_CASE("the log sink can be replaced and restored") {
    LogSink original = get_log_sink();
    {
        test::LogCapture log;
        CHECK((get_log_sink() != original));
        evloop::log(LogLevel::info, "value=%d", 42);
        CHECK(log.contains("value=42"));
    }
    CHECK((get_log_sink() == original));
    LogSink previous = set_log_sink(nullptr);  // nullptr means the stderr default
    CHECK((previous == original));
    CHECK((get_log_sink() == original));
}
