// test/core/callback_test.cpp — UniqueFunction (core/callback.hpp) and the
// promise that scheduling a small lambda allocates nothing. This binary
// replaces the global operator new with a counting one, except under
// ThreadSanitizer, whose runtime owns operator new: there the counting
// checks are skipped (the other builds run them).
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "core/callback.hpp"
#include "core/event_loop.hpp"
#include "test/support.hpp"

namespace {
std::atomic<long> g_allocations{0};
}

#if !defined(EVLOOP_TEST_TSAN)
void* operator new(std::size_t size) {
    ++g_allocations;
    if (void* p = std::malloc(size ? size : 1)) return p;
    std::abort();  // the tests never run out of memory; no bad_alloc in -fno-exceptions builds
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
constexpr bool kCounting = true;
#else
constexpr bool kCounting = false;
#endif

using namespace evloop;

namespace {
long allocations() { return g_allocations.load(); }
}

TEST_CASE("a lambda capturing three pointers is stored inline: no allocation") {
    int a = 0, b = 0, c = 0;
    int* pa = &a;
    int* pb = &b;
    int* pc = &c;
    auto lambda = [pa, pb, pc] { ++*pa, ++*pb, ++*pc; };
    CHECK(Callback::stores_inline<decltype(lambda)>());
    long before = allocations();
    Callback cb(lambda);
    Callback moved(std::move(cb));
    moved();
    CHECK((!kCounting || allocations() == before));
    CHECK(a == 1);
    CHECK(b == 1);
    CHECK(c == 1);
    CHECK_FALSE(cb);  // moved-from is empty
}

TEST_CASE("move-only captures work, and are destroyed exactly once") {
    auto owned = std::make_shared<int>(7);
    std::weak_ptr<int> watch = owned;
    {
        auto unique = std::make_unique<std::shared_ptr<int>>(std::move(owned));
        Callback cb([u = std::move(unique)] { CHECK(**u == 7); });
        Callback other;
        other = std::move(cb);
        other();
        CHECK_FALSE(watch.expired());
    }
    CHECK(watch.expired());
}

TEST_CASE("a capture too big for inline storage falls back to one heap allocation") {
    struct Big {
        char bytes[200];
    } big{};
    big.bytes[199] = 42;
    int seen = 0;
    auto lambda = [big, &seen] { seen = big.bytes[199]; };
    CHECK_FALSE(Callback::stores_inline<decltype(lambda)>());
    long before = allocations();
    {
        Callback cb(lambda);
        CHECK((!kCounting || allocations() == before + 1));
        Callback moved(std::move(cb));  // moving the heap case moves a pointer
        CHECK((!kCounting || allocations() == before + 1));
        moved();
    }
    CHECK(seen == 42);
}

TEST_CASE("reset() destroys the captures; an empty callback is false") {
    auto token = std::make_shared<int>(1);
    Callback cb([token] {});
    CHECK(cb);
    CHECK(token.use_count() == 2);
    cb.reset();
    CHECK_FALSE(cb);
    CHECK(token.use_count() == 1);
    Callback empty(nullptr);
    CHECK_FALSE(empty);
}

TEST_CASE("UniqueFunction with arguments and a result") {
    UniqueFunction<int(int, int)> add([](int x, int y) { return x + y; });
    CHECK(add(2, 3) == 5);
    UniqueFunction<std::string(std::string)> echo([](std::string s) { return s + "!"; });
    CHECK(echo("hi") == "hi!");
}

TEST_CASE("call_soon + run of a 3-pointer lambda allocates nothing in steady state") {
    EventLoop loop;
    int counter = 0;
    int* p1 = &counter;
    int* p2 = &counter;
    int* p3 = &counter;
    // Warm up: the first nodes come from the heap, later ones from the free list.
    for (int i = 0; i < 100; ++i) loop.call_soon([p1, p2, p3] { ++*p1; (void)p2; (void)p3; });
    REQUIRE_FALSE(loop.run_once());
    long before = allocations();
    for (int round = 0; round < 100; ++round) {
        for (int i = 0; i < 100; ++i) loop.call_soon([p1, p2, p3] { ++*p1; (void)p2; (void)p3; });
        REQUIRE_FALSE(loop.run_once());
    }
    CHECK((!kCounting || allocations() == before));
    CHECK(counter == 10100);
}

TEST_CASE("timers and a persistent reader allocate nothing per event in steady state") {
    EventLoop loop;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    REQUIRE(::write(fds[1], "x", 1) == 1);  // stays readable: level-triggered
    int reads = 0;
    REQUIRE_FALSE(loop.add_reader(fds[0], [&reads] { ++reads; }));
    for (int i = 0; i < 100; ++i) (void)loop.call_later(0.0, [&reads] { (void)reads; });
    REQUIRE_FALSE(loop.run_once());
    long before = allocations();
    for (int round = 0; round < 100; ++round) {
        (void)loop.call_later(0.0, [&reads] { (void)reads; });
        REQUIRE_FALSE(loop.run_once());
    }
    CHECK((!kCounting || allocations() == before));
    CHECK(reads >= 100);
    loop.remove_reader(fds[0]);
    ::close(fds[0]);
    ::close(fds[1]);
}
