// platform/epoll_selector.cpp — Selector over Linux epoll(7), level-triggered.
//
// Quirks handled:
// - epoll watches the open file description, not the fd number: a closed fd
//   whose description lives on (dup, fork) keeps firing. Owners unregister
//   before close, and the key table here is the source of truth.
// - EPOLLERR and EPOLLHUP arrive unasked; as in Python's selectors they count
//   as both readable and writable, masked by what the key asked for.
// - epoll refuses regular files (EPERM), unlike poll: that error is returned.
// - The generation of each registration rides in epoll_event.data (fd in the
//   low 32 bits) so an event is always matched to the key it was armed for.
// - Level-triggered on purpose: asyncio's add_reader promises a callback on
//   every iteration while the fd stays readable.
// Layer: platform. Read next: core/event_loop.cpp.
#include "platform/epoll_selector.hpp"

#if defined(__linux__)

#include <sys/epoll.h>

#include <vector>

#include "platform/fd.hpp"
#include "platform/selector_table.hpp"

namespace evloop {
namespace {

std::uint32_t to_epoll(std::uint32_t events) noexcept {
    std::uint32_t e = 0;
    if (events & EVENT_READ) e |= EPOLLIN;
    if (events & EVENT_WRITE) e |= EPOLLOUT;
    return e;
}

class EpollSelector final : public Selector {
public:
    explicit EpollSelector(Fd epfd) : epfd_(std::move(epfd)) { batch_.resize(64); }

    std::error_code register_fd(int fd, std::uint32_t events, void* data) override {
        if (!epfd_) return {EBADF, std::system_category()};
        if (fd < 0 || !detail::valid_events(events))
            return {EINVAL, std::system_category()};
        if (table_.find(fd)) return {EEXIST, std::system_category()};
        // The kernel vets the fd before the table grows to hold it: a bogus
        // huge fd number must fail with EBADF, not allocate a huge table.
        SelectorKey key{fd, events, data, table_.next_generation()};
        if (std::error_code ec = ctl(EPOLL_CTL_ADD, key)) return ec;
        return table_.add(fd, events, data);
    }

    std::error_code modify(int fd, std::uint32_t events, void* data) override {
        SelectorKey* key = table_.find(fd);
        if (!key) return {ENOENT, std::system_category()};
        if (!detail::valid_events(events)) return {EINVAL, std::system_category()};
        // The kernel is asked even when the interest is unchanged: that is how a
        // caller learns (ENOENT) that the fd was closed behind its back.
        SelectorKey changed = *key;
        changed.events = events;
        if (std::error_code ec = ctl(EPOLL_CTL_MOD, changed)) return ec;
        key->events = events;
        key->data = data;
        return {};
    }

    std::error_code unregister_fd(int fd) override {
        SelectorKey* key = table_.find(fd);
        if (!key) return {ENOENT, std::system_category()};
        table_.remove(*key);
        // EBADF/ENOENT here mean the fd was closed before unregistering; the
        // kernel already forgot it, which is the state we want.
        epoll_event unused{};
        ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, fd, &unused);
        return {};
    }

    std::error_code select(std::int64_t timeout_ns, std::span<const SelectorEvent>& ready) override {
        ready = {};
        if (!epfd_) return {EBADF, std::system_category()};
        int n = ::epoll_wait(epfd_.get(), batch_.data(), static_cast<int>(batch_.size()),
                             detail::timeout_to_ms(timeout_ns));
        if (n < 0) return errno == EINTR ? std::error_code{} : last_error();
        // Filled by index, not push_back: the loop below is on every
        // iteration's path. Resized here, when the last batch is no longer in use.
        if (events_.size() < batch_.size()) events_.resize(batch_.size());
        std::size_t count = 0;
        for (int i = 0; i < n; ++i) {
            const epoll_event& ev = batch_[static_cast<std::size_t>(i)];
            int fd = static_cast<int>(ev.data.u64 & 0xffffffffu);
            std::uint32_t generation = static_cast<std::uint32_t>(ev.data.u64 >> 32);
            const SelectorKey* key = table_.find(fd);
            if (!key || key->generation != generation) continue;  // unregistered meanwhile
            std::uint32_t mask = 0;
            if (ev.events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) mask |= EVENT_READ;
            if (ev.events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) mask |= EVENT_WRITE;
            events_[count++] = SelectorEvent{*key, mask & key->events};
        }
        // A full batch suggests more fds are ready: grow so the next call sees them all.
        if (static_cast<std::size_t>(n) == batch_.size()) batch_.resize(batch_.size() * 2);
        ready = std::span<const SelectorEvent>(events_.data(), count);
        return {};
    }

    void close() noexcept override { epfd_.reset(); }
    const SelectorKey* get_key(int fd) const noexcept override { return table_.find(fd); }
    std::size_t size() const noexcept override { return table_.size(); }
    std::string_view name() const noexcept override { return "epoll"; }

private:
    std::error_code ctl(int op, const SelectorKey& key) {
        epoll_event ev{};
        ev.events = to_epoll(key.events);
        ev.data.u64 = static_cast<std::uint32_t>(key.fd) | (static_cast<std::uint64_t>(key.generation) << 32);
        if (::epoll_ctl(epfd_.get(), op, key.fd, &ev) == -1) return last_error();
        return {};
    }

    Fd epfd_;
    detail::SelectorTable table_;
    std::vector<epoll_event> batch_;    // what the kernel fills
    std::vector<SelectorEvent> events_; // the batch handed back to the caller
};

}  // namespace

std::unique_ptr<Selector> make_epoll_selector(std::error_code& ec) {
    ec.clear();
    int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd == -1) {
        ec = last_error();
        return nullptr;
    }
    return std::make_unique<EpollSelector>(Fd(fd));
}

}  // namespace evloop

#else

namespace evloop {
std::unique_ptr<Selector> make_epoll_selector(std::error_code& ec) {
    ec = std::make_error_code(std::errc::function_not_supported);
    return nullptr;
}
}  // namespace evloop

#endif
