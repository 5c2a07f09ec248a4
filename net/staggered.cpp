// net/staggered.cpp — address interleaving and the staggered race.
//
// The race is a small state machine over attempt indexes plus one timer: the
// timer is armed whenever an attempt starts and starts the next one when it
// fires; a failure of the newest attempt starts the next one at once. This
// is staggered_race's chain of "wait for the previous one to fail, or for
// the delay" written without a task per attempt.
// Layer: net. Read next: net/connection.cpp.
#include "net/staggered.hpp"

#include <algorithm>
#include <utility>

namespace evloop {

std::vector<AddrInfo> interleave_addrinfos(std::vector<AddrInfo> infos, int first_family_count) {
    // Group by family, families in order of first appearance.
    std::vector<std::vector<AddrInfo>> groups;
    for (AddrInfo& info : infos) {
        auto group = std::find_if(groups.begin(), groups.end(),
                                  [&](const std::vector<AddrInfo>& g) { return g.front().family == info.family; });
        if (group == groups.end())
            groups.push_back({std::move(info)});
        else
            group->push_back(std::move(info));
    }
    std::vector<AddrInfo> reordered;
    reordered.reserve(infos.size());
    std::vector<std::size_t> next(groups.size(), 0);
    if (first_family_count > 1 && !groups.empty()) {
        std::size_t head = std::min(static_cast<std::size_t>(first_family_count - 1), groups[0].size());
        for (; next[0] < head; ++next[0]) reordered.push_back(std::move(groups[0][next[0]]));
    }
    // Round-robin over the families (itertools.zip_longest, skipping the holes).
    for (bool any = true; any;) {
        any = false;
        for (std::size_t g = 0; g < groups.size(); ++g) {
            if (next[g] == groups[g].size()) continue;
            reordered.push_back(std::move(groups[g][next[g]++]));
            any = true;
        }
    }
    return reordered;
}

std::vector<AddrInfo> order_addrinfos(std::vector<AddrInfo> infos, std::optional<double> happy_eyeballs_delay,
                                      int interleave) {
    if (happy_eyeballs_delay && interleave == 0) interleave = 1;  // as asyncio (CONTRACT 134)
    if (interleave > 0) return interleave_addrinfos(std::move(infos), interleave);
    return infos;
}

StaggeredRace::StaggeredRace(EventLoop& loop, std::size_t count, std::optional<double> delay, StartFn start,
                             CancelFn cancel, DoneFn done)
    : loop_(&loop), delay_(delay), start_(std::move(start)), cancel_(std::move(cancel)), done_(std::move(done)),
      state_(count, State::waiting), errors_(count) {}

void StaggeredRace::start() {
    if (state_.empty()) {
        over_ = true;
        DoneFn done = std::move(done_);
        done(std::nullopt, {});
        return;
    }
    start_next();
}

void StaggeredRace::start_next() {
    timer_.cancel();
    if (over_ || started_ == state_.size()) return;
    std::size_t index = started_++;
    state_[index] = State::running;
    // Armed before the start, so an attempt's own timers come after ours.
    if (delay_ && started_ < state_.size()) timer_ = loop_->call_later(*delay_, [this] { start_next(); });
    start_(index);
}

void StaggeredRace::attempt_finished(std::size_t index, std::error_code error) {
    if (over_ || !running(index)) return;
    std::optional<std::size_t> winner;
    if (!error) {
        state_[index] = State::won;
        winner = index;
        cancel_running();
    } else {
        state_[index] = State::failed;
        errors_[index] = error;
        // Only the newest attempt's failure starts the next one early: an
        // older attempt failing leaves the newer one its full delay.
        if (index + 1 == started_ && started_ < state_.size()) {
            start_next();
            return;
        }
        if (started_ < state_.size()) return;  // the timer starts the rest
        if (std::any_of(state_.begin(), state_.end(), [](State s) { return s == State::running; })) return;
    }
    over_ = true;
    timer_.cancel();
    // Moved out first: the owner may destroy the race (and done_) in the call.
    DoneFn done = std::move(done_);
    done(winner, std::move(errors_));
}

void StaggeredRace::cancel() {
    if (over_) return;
    over_ = true;
    timer_.cancel();
    cancel_running();
}

void StaggeredRace::cancel_running() {
    for (std::size_t i = 0; i < state_.size(); ++i) {
        if (state_[i] != State::running) continue;
        state_[i] = State::cancelled;
        cancel_(i);
    }
}

}  // namespace evloop
