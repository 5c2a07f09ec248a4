// test/net/socket_transport_alloc_test.cpp — the steady echo path of a socket
// transport (net/socket_transport.cpp) allocates nothing: counted, not
// guessed (issue 7: "no heap allocation per message on the echo path").
//
// This binary replaces the global operator new/delete with versions that
// count while a flag is up. An echo server (Protocol and BufferedProtocol)
// runs on a TCP connection over 127.0.0.1; the test plays the client with a
// plain non-blocking socket and fixed arrays, and drives the loop with
// run_once() itself (run_until would allocate its std::function). After a
// warm-up, 1,000 round trips of 1 KiB and of 10 KiB are made with counting
// on: one recv, one data_received, one send each, and no allocation.
// (A message the kernel cannot take whole is copied into the write buffer:
// that is an allocation by design, and not what is measured here.)
// Sanitizer builds replace operator new themselves: there the cases are
// skipped (the count would be theirs).
#include <sys/socket.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "evloop.hpp"
#include "test/net/stream_pair.hpp"
#include "test/support.hpp"

#if !defined(EVLOOP_TEST_ASAN) && !defined(EVLOOP_TEST_TSAN)
#define EVLOOP_COUNT_ALLOCATIONS 1

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};

void* counted_alloc(std::size_t size) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
#if EVLOOP_EXCEPTIONS
    throw std::bad_alloc();
#else
    std::abort();
#endif
}

void* counted_aligned_alloc(std::size_t size, std::align_val_t align) {
    if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
    std::size_t a = static_cast<std::size_t>(align);
    if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
#if EVLOOP_EXCEPTIONS
    throw std::bad_alloc();
#else
    std::abort();
#endif
}
}  // namespace

void* operator new(std::size_t size) { return counted_alloc(size); }
void* operator new[](std::size_t size) { return counted_alloc(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return std::malloc(size == 0 ? 1 : size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return std::malloc(size == 0 ? 1 : size); }
void* operator new(std::size_t size, std::align_val_t align) { return counted_aligned_alloc(size, align); }
void* operator new[](std::size_t size, std::align_val_t align) { return counted_aligned_alloc(size, align); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
constexpr bool kCounting = true;
#else
constexpr bool kCounting = false;
#endif

using namespace evloop;

namespace {

class Echo final : public Protocol {
public:
    void connection_made(Transport& transport) override { transport_ = &transport; }
    void data_received(std::string_view data) override { (void)transport_->write(data); }

private:
    Transport* transport_ = nullptr;
};

char g_shared[256 * 1024];

class BufferedEcho final : public BufferedProtocol {
public:
    void connection_made(Transport& transport) override { transport_ = &transport; }
    std::span<char> get_buffer(std::size_t) override { return g_shared; }
    void buffer_updated(std::size_t n) override { (void)transport_->write({g_shared, n}); }

private:
    Transport* transport_ = nullptr;
};

// One round trip: `size` bytes out, the same `size` bytes back, checked.
// Only run_once, send and recv on fixed arrays: nothing here allocates.
bool round_trip(EventLoop& loop, int client, std::size_t size, unsigned char seed) {
    static char out[10 * 1024], in[10 * 1024];
    for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>(seed + i * 7);
    if (::send(client, out, size, MSG_NOSIGNAL) != static_cast<ssize_t>(size)) return false;
    std::size_t got = 0;
    for (int turns = 0; got < size && turns < 10'000; ++turns) {
        if (loop.run_once()) return false;
        for (ssize_t n; got < size && (n = ::recv(client, in + got, size - got, 0)) > 0;) got += static_cast<std::size_t>(n);
    }
    return got == size && std::memcmp(in, out, size) == 0;
}

// Echoes through `factory`'s protocol; returns the allocations counted over
// 1,000 round trips of each size after a warm-up (-1 if the echo failed).
long allocations_per_1000(ProtocolFactory factory) {
    EventLoop loop;
    test::TcpPair pair = test::tcp_pair();
    auto connection = loop.run_until_complete(loop.connect_accepted_socket(std::move(factory), pair.ours.release()));
    REQUIRE(connection);
    // A guard: run_once never blocks longer than this if the echo stalls.
    TimerHandle guard = loop.call_later(30.0, [] {});
    bool ok = true;
    for (int i = 0; i < 100 && ok; ++i) ok = round_trip(loop, pair.peer.get(), i % 2 ? 1024 : 10 * 1024, 1);
    long counted = -1;
#if EVLOOP_COUNT_ALLOCATIONS
    g_allocations.store(0);
    g_counting.store(true);
    for (int i = 0; i < 1000 && ok; ++i) ok = round_trip(loop, pair.peer.get(), 1024, static_cast<unsigned char>(i));
    for (int i = 0; i < 1000 && ok; ++i) ok = round_trip(loop, pair.peer.get(), 10 * 1024, static_cast<unsigned char>(i));
    g_counting.store(false);
    counted = g_allocations.load();
#endif
    guard.cancel();
    connection->transport->close();
    (void)test::run_until(loop, [&] { return connection->transport->is_closing(); });
    (void)loop.close();
    return ok ? counted : -1;
}

}  // namespace

TEST_CASE("the steady echo path allocates nothing: Protocol, 1,000 round trips of 1 KiB and of 10 KiB"
          * doctest::skip(!kCounting)) {
    CHECK(allocations_per_1000([] { return std::make_shared<Echo>(); }) == 0);
}

TEST_CASE("the steady echo path allocates nothing: BufferedProtocol" * doctest::skip(!kCounting)) {
    CHECK(allocations_per_1000([] { return std::make_shared<BufferedEcho>(); }) == 0);
}

TEST_CASE("the allocation counter sees an allocation (so a zero above means none)" * doctest::skip(!kCounting)) {
#if EVLOOP_COUNT_ALLOCATIONS
    g_allocations.store(0);
    g_counting.store(true);
    auto* p = new std::string(100, 'x');  // a heap string: two allocations
    g_counting.store(false);
    CHECK(g_allocations.load() >= 1);
    delete p;
#endif
}
