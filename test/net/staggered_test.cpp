// test/net/staggered_test.cpp — the happy eyeballs pieces of
// net/staggered.hpp without sockets: the address order (CONTRACT 134, 135,
// with asyncio's own examples) and the staggered race driven by fake
// attempts that finish on timers (CONTRACT 136, 137, after t_staggered).
// The race over real sockets is in test/net/connection_test.cpp.
#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "net/staggered.hpp"
#include "test/support.hpp"

using namespace evloop;

namespace {

/// An address of `family` whose port tags it, so an order reads as a list of tags.
AddrInfo info(int family, int tag) {
    Result<SocketAddress> address = SocketAddress::parse(family == AF_INET ? "127.0.0.1" : "::1", tag);
    return AddrInfo{.family = family, .type = SOCK_STREAM, .address = *address};
}

std::vector<int> tags(const std::vector<AddrInfo>& infos) {
    std::vector<int> out;
    for (const AddrInfo& i : infos) out.push_back(i.address.port());
    return out;
}

// A = AF_INET6 tags 1x, B = AF_INET tags 2x.
std::vector<AddrInfo> a1a2b1b2() { return {info(AF_INET6, 11), info(AF_INET6, 12), info(AF_INET, 21), info(AF_INET, 22)}; }

}  // namespace

TEST_CASE("interleave=1: [A1,A2,B1,B2] becomes [A1,B1,A2,B2] (CONTRACT 135)") {
    CHECK(tags(interleave_addrinfos(a1a2b1b2(), 1)) == std::vector<int>{11, 21, 12, 22});
}

TEST_CASE("interleave=2: [a0,a1,a2,b0,b1,b2] becomes [a0,a1,b0,a2,b1,b2] (CONTRACT 135)") {
    std::vector<AddrInfo> in{info(AF_INET6, 10), info(AF_INET6, 11), info(AF_INET6, 12),
                             info(AF_INET, 20), info(AF_INET, 21), info(AF_INET, 22)};
    CHECK(tags(interleave_addrinfos(in, 2)) == std::vector<int>{10, 11, 20, 12, 21, 22});
}

TEST_CASE("interleave: families keep their first-appearance order; one family is unchanged (CONTRACT 135)") {
    std::vector<AddrInfo> in{info(AF_INET, 20), info(AF_INET6, 10), info(AF_INET, 21), info(AF_INET, 22)};
    CHECK(tags(interleave_addrinfos(in, 1)) == std::vector<int>{20, 10, 21, 22});
    CHECK(tags(interleave_addrinfos({info(AF_INET, 1), info(AF_INET, 2)}, 1)) == std::vector<int>{1, 2});
    CHECK(interleave_addrinfos({}, 1).empty());
    // A first-family count larger than the family takes all of it.
    CHECK(tags(interleave_addrinfos(a1a2b1b2(), 5)) == std::vector<int>{11, 12, 21, 22});
}

TEST_CASE("a happy eyeballs delay makes interleave default to 1; none keeps the order (CONTRACT 134)") {
    CHECK(tags(order_addrinfos(a1a2b1b2(), 0.25, 0)) == std::vector<int>{11, 21, 12, 22});
    CHECK(tags(order_addrinfos(a1a2b1b2(), std::nullopt, 0)) == std::vector<int>{11, 12, 21, 22});
    CHECK(tags(order_addrinfos(a1a2b1b2(), std::nullopt, 1)) == std::vector<int>{11, 21, 12, 22});
    CHECK(tags(order_addrinfos(a1a2b1b2(), 0.25, 2)) == std::vector<int>{11, 12, 21, 22});
}

namespace {

/// Fake attempts: attempt i finishes `after[i]` seconds after it starts,
/// with `outcome[i]` (empty: success); nullopt never finishes.
struct Fakes {
    EventLoop& loop;
    std::vector<std::optional<double>> after;
    std::vector<std::error_code> outcome;
    std::vector<double> started_at;  // loop.time() at start, -1 if never
    std::vector<bool> cancelled;
    std::vector<TimerHandle> timers;
    std::optional<StaggeredRace> race;
    bool done = false;
    std::optional<std::size_t> winner;
    std::vector<std::error_code> errors;
    double t0 = 0;

    Fakes(EventLoop& l, std::vector<std::optional<double>> a, std::vector<std::error_code> o, std::optional<double> delay)
        : loop(l), after(std::move(a)), outcome(std::move(o)), started_at(after.size(), -1),
          cancelled(after.size(), false), timers(after.size()) {
        race.emplace(
            loop, after.size(), delay,
            [this](std::size_t i) {
                started_at[i] = loop.time() - t0;
                if (after[i])
                    timers[i] = loop.call_later(*after[i], [this, i] { race->attempt_finished(i, outcome[i]); });
            },
            [this](std::size_t i) {
                cancelled[i] = true;
                timers[i].cancel();
            },
            [this](std::optional<std::size_t> w, std::vector<std::error_code> e) {
                done = true;
                winner = w;
                errors = std::move(e);
            });
    }
    bool run() {
        t0 = loop.time();
        race->start();
        return test::run_until(loop, [this] { return done; });
    }
};

const std::error_code kRefused(ECONNREFUSED, std::system_category());
const std::error_code kUnreachable(ENETUNREACH, std::system_category());

}  // namespace

TEST_CASE("first attempt hangs: the delay starts the second, which wins; the first is cancelled (CONTRACT 136)") {
    EventLoop loop;
    Fakes f(loop, {std::nullopt, 0.0}, {{}, {}}, 0.1);
    REQUIRE(f.run());
    CHECK(f.winner == std::size_t{1});
    CHECK(f.started_at[0] < 0.05);
    CHECK(f.started_at[1] >= 0.099);
    CHECK(f.cancelled[0]);
    CHECK_FALSE(f.cancelled[1]);
    CHECK(f.errors == std::vector<std::error_code>{{}, {}});
}

TEST_CASE("first attempt fails: the second starts at once, without waiting for the delay (CONTRACT 136)") {
    EventLoop loop;
    Fakes f(loop, {0.0, 0.0}, {kRefused, {}}, 10.0);
    REQUIRE(f.run());
    CHECK(f.winner == std::size_t{1});
    CHECK(f.started_at[1] < 1.0);
    CHECK(f.errors[0] == kRefused);
    CHECK_FALSE(f.errors[1]);
}

TEST_CASE("an older attempt failing leaves the newer one its whole delay (CONTRACT 136)") {
    EventLoop loop;
    // 0 fails at 0.15 while 1 (started at 0.1) still runs: 2 starts at 0.2, not 0.15.
    Fakes f(loop, {0.15, std::nullopt, 0.0}, {kRefused, {}, {}}, 0.1);
    REQUIRE(f.run());
    CHECK(f.winner == std::size_t{2});
    CHECK(f.started_at[1] >= 0.099);
    CHECK(f.started_at[2] >= 0.199);
    CHECK(f.cancelled[1]);
    CHECK_FALSE(f.cancelled[0]);  // it had failed: nothing to cancel
}

TEST_CASE("no attempt succeeds: no winner and one error per attempt (CONTRACT 137)") {
    EventLoop loop;
    Fakes f(loop, {0.0, 0.05, 0.0}, {kRefused, kUnreachable, kRefused}, 0.01);
    REQUIRE(f.run());
    CHECK_FALSE(f.winner);
    CHECK(f.errors == std::vector<std::error_code>{kRefused, kUnreachable, kRefused});
}

TEST_CASE("without a delay the attempts run one after another (CONTRACT 126)") {
    EventLoop loop;
    Fakes f(loop, {0.1, 0.05, 0.0}, {kRefused, kRefused, {}}, std::nullopt);
    REQUIRE(f.run());
    CHECK(f.winner == std::size_t{2});
    CHECK(f.started_at[1] >= 0.099);  // only when 0 failed
    CHECK(f.started_at[2] >= 0.149);  // only when 1 failed
    CHECK(f.errors == std::vector<std::error_code>{kRefused, kRefused, {}});
}

TEST_CASE("cancel() cancels every running attempt and never calls done (CONTRACT 129)") {
    EventLoop loop;
    Fakes f(loop, {std::nullopt, std::nullopt, std::nullopt}, {{}, {}, {}}, 0.05);
    f.t0 = loop.time();
    f.race->start();
    (void)test::run_until(loop, [&] { return f.race->started() == 2; });
    f.race->cancel();
    CHECK(f.cancelled == std::vector<bool>{true, true, false});
    (void)test::run_until(loop, [] { return false; }, 0.15);
    CHECK(f.race->started() == 2);  // the timer was cancelled too
    CHECK_FALSE(f.done);
}

TEST_CASE("a race of zero attempts is over at once, with no winner") {
    EventLoop loop;
    Fakes f(loop, {}, {}, 0.1);
    f.race->start();
    CHECK(f.done);
    CHECK_FALSE(f.winner);
}
