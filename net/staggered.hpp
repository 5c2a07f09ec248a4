// net/staggered.hpp — happy eyeballs' two pieces (RFC 8305), kept apart from
// sockets so they can be tested alone: the order addresses are tried in
// (asyncio's _interleave_addrinfos) and the staggered race that tries them
// (asyncio's staggered.staggered_race).
//
// The race knows nothing of what an attempt is: it asks its owner to start
// attempt i, hears back when it finished, and asks the owner to cancel the
// losers. create_connection (net/connection.cpp) runs every connect through
// it; without a delay the race is simply "one after another", which is
// asyncio's sequential loop (CONTRACT 126).
// Layer: net. Read next: net/connection.cpp.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <system_error>
#include <vector>

#include "core/event_loop.hpp"
#include "net/connection.hpp"
#include "net/dns.hpp"

namespace evloop {

/// Reorders `infos` by family: the first `first_family_count` − 1 of the
/// first family, then one of each family in turn (CONTRACT 135). Families
/// keep their order of first appearance; within a family the order is kept.
std::vector<AddrInfo> interleave_addrinfos(std::vector<AddrInfo> infos, int first_family_count = 1);

/// The order create_connection tries `infos` in: interleaved when
/// `interleave` > 0, and interleave defaults to 1 when a happy eyeballs
/// delay is given (CONTRACT 134).
std::vector<AddrInfo> order_addrinfos(std::vector<AddrInfo> infos, std::optional<double> happy_eyeballs_delay,
                                      int interleave);

/// Runs attempts 0..count−1 as asyncio's staggered_race (CONTRACT 136, 137):
/// attempt 0 starts at once; attempt i+1 starts when attempt i fails or
/// `delay` seconds after attempt i started, whichever comes first (no delay:
/// only when it fails). The first success wins and every other running
/// attempt is cancelled. The race is over when one attempt won or when all
/// were started and all failed.
class StaggeredRace {
public:
    /// Begins attempt `index`. The attempt must report through
    /// attempt_finished() later, from a loop callback, never from inside
    /// this call (so the race is never re-entered).
    using StartFn = std::function<void(std::size_t index)>;
    /// Stops running attempt `index`, which lost or was cancelled; it must
    /// not report afterwards.
    using CancelFn = std::function<void(std::size_t index)>;
    /// The race is over: the winner's index (nullopt if none won) and one
    /// error per attempt, in attempt order (empty for the winner and for
    /// cancelled attempts). Called once; the owner may destroy the race in it.
    using DoneFn = std::function<void(std::optional<std::size_t> winner, std::vector<std::error_code> errors)>;

    StaggeredRace(EventLoop& loop, std::size_t count, std::optional<double> delay, StartFn start, CancelFn cancel,
                  DoneFn done);
    ~StaggeredRace() { timer_.cancel(); }
    StaggeredRace(const StaggeredRace&) = delete;
    StaggeredRace& operator=(const StaggeredRace&) = delete;

    /// Starts attempt 0 (with count == 0 the race is over at once: done(nullopt, {})).
    void start();
    /// Attempt `index` succeeded (empty `error`) or failed. Ignored for an
    /// attempt that is not running.
    void attempt_finished(std::size_t index, std::error_code error);
    /// Cancels every running attempt and ends the race without calling done.
    void cancel();

    /// Attempts started so far.
    std::size_t started() const noexcept { return started_; }
    bool running(std::size_t index) const noexcept { return index < state_.size() && state_[index] == State::running; }
    /// The errors so far, one per attempt (handed to done when the race ends).
    const std::vector<std::error_code>& errors() const noexcept { return errors_; }

private:
    enum class State : unsigned char { waiting, running, failed, won, cancelled };
    void start_next();
    void cancel_running();

    EventLoop* loop_;
    std::optional<double> delay_;
    StartFn start_;
    CancelFn cancel_;
    DoneFn done_;
    std::vector<State> state_;
    std::vector<std::error_code> errors_;
    std::size_t started_ = 0;
    bool over_ = false;
    TimerHandle timer_;  // starts the next attempt after the delay
};

namespace detail {
/// create_connection once the addresses are known: tries `remotes` in the
/// given order (no interleaving here), binding to `locals` when given
/// (CONTRACT 126–142). Defined in net/connection.cpp; declared here so tests
/// can race address lists no resolver on the machine would give.
Future<Connection> connect_to_addresses(EventLoop& loop, ProtocolFactory factory, std::vector<AddrInfo> remotes,
                                        std::optional<std::vector<AddrInfo>> locals,
                                        const ConnectionOptions& options);
}  // namespace detail

}  // namespace evloop
