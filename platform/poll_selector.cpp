// platform/poll_selector.cpp — Selector over poll(2), the teaching baseline.
//
// The whole idea of a readiness loop fits here: keep a table of interests,
// hand the kernel an array of pollfd, translate what comes back. It costs
// O(registered fds) per call, which is why Linux uses epoll by default, but it
// runs on every POSIX system and a build switch (EVLOOP_FORCE_POLL) or
// set_default_backend(Backend::poll) runs the whole suite on it.
// Quirks handled:
// - poll() reports a closed fd as POLLNVAL instead of failing, so register_fd
//   checks the fd is open up front and a POLLNVAL later reads as readiness
//   (the owner's read then fails with EBADF, a clear error, not a silent hang).
// - POLLHUP/POLLERR are reported even when not asked for; like Python's
//   selectors they count as both readable and writable, masked by interest.
// Layer: platform. Read next: platform/epoll_selector.cpp.
#include "platform/poll_selector.hpp"

#include <poll.h>

#include <vector>

#include "platform/fd.hpp"
#include "platform/selector_table.hpp"

namespace evloop {
namespace {

class PollSelector final : public Selector {
public:
    std::error_code register_fd(int fd, std::uint32_t events, void* data) override {
        if (closed_) return {EBADF, std::system_category()};
        if (fd >= 0 && !is_open_fd(fd)) return {EBADF, std::system_category()};
        return table_.add(fd, events, data);
    }

    std::error_code modify(int fd, std::uint32_t events, void* data) override {
        SelectorKey* key = table_.find(fd);
        if (!key) return {ENOENT, std::system_category()};
        if (!detail::valid_events(events)) return {EINVAL, std::system_category()};
        key->events = events;
        key->data = data;
        return {};
    }

    std::error_code unregister_fd(int fd) override {
        SelectorKey* key = table_.find(fd);
        if (!key) return {ENOENT, std::system_category()};
        table_.remove(*key);
        return {};
    }

    std::error_code select(std::int64_t timeout_ns, std::span<const SelectorEvent>& ready) override {
        ready = {};
        if (closed_) return {EBADF, std::system_category()};
        pollfds_.clear();
        for (const SelectorKey& key : table_.slots()) {
            if (key.fd < 0) continue;
            short events = 0;
            if (key.events & EVENT_READ) events |= POLLIN;
            if (key.events & EVENT_WRITE) events |= POLLOUT;
            pollfds_.push_back(pollfd{key.fd, events, 0});
        }
        int n = ::poll(pollfds_.data(), pollfds_.size(), detail::timeout_to_ms(timeout_ns));
        if (n < 0) return errno == EINTR ? std::error_code{} : last_error();
        events_.clear();
        for (const pollfd& p : pollfds_) {
            if (p.revents == 0) continue;
            const SelectorKey* key = table_.find(p.fd);
            std::uint32_t mask = 0;
            if (p.revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) mask |= EVENT_READ;
            if (p.revents & (POLLOUT | POLLHUP | POLLERR | POLLNVAL)) mask |= EVENT_WRITE;
            events_.push_back(SelectorEvent{*key, mask & key->events});
        }
        ready = events_;
        return {};
    }

    void close() noexcept override { closed_ = true; }
    const SelectorKey* get_key(int fd) const noexcept override { return table_.find(fd); }
    std::size_t size() const noexcept override { return table_.size(); }
    std::string_view name() const noexcept override { return "poll"; }

private:
    detail::SelectorTable table_;
    std::vector<pollfd> pollfds_;       // rebuilt per call; capacity is kept
    std::vector<SelectorEvent> events_; // the batch handed back to the caller
    bool closed_ = false;
};

}  // namespace

std::unique_ptr<Selector> make_poll_selector(std::error_code& ec) {
    ec.clear();
    return std::make_unique<PollSelector>();
}

}  // namespace evloop
