// core/event_loop_io.cpp — add_reader / add_writer: watching file descriptors.
//
// Each watched fd has an FdWatch holding at most one reader and one writer:
// a handle (add_reader with a callback) or a watcher embedded in its owner
// (the transports'; core/fd_watcher.hpp). Both are persistent: the loop
// queues the same one on every iteration the fd is ready (level-triggered,
// CONTRACT 191) instead of making a new one, so a busy socket costs no
// allocation per event. The selector is told the union of both interests;
// removing one re-registers the other (CONTRACT 190).
// Layer: core. Read next: core/event_loop_errors.cpp.
#include "core/event_loop.hpp"

namespace evloop {

using detail::HandleNode;

std::error_code EventLoop::add_reader(int fd, Callback cb) { return add_callback(fd, std::move(cb), false); }
std::error_code EventLoop::add_writer(int fd, Callback cb) { return add_callback(fd, std::move(cb), true); }
std::error_code EventLoop::add_reader(int fd, detail::FdWatcher& watcher) {
    return add_watch(fd, WatchRef::of(&watcher), false);
}
std::error_code EventLoop::add_writer(int fd, detail::FdWatcher& watcher) {
    return add_watch(fd, WatchRef::of(&watcher), true);
}
bool EventLoop::remove_reader(int fd) { return remove_watch(fd, false); }
bool EventLoop::remove_writer(int fd) { return remove_watch(fd, true); }

bool EventLoop::has_reader(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < watches_.size() && watches_[static_cast<std::size_t>(fd)].reader;
}
bool EventLoop::has_writer(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < watches_.size() && watches_[static_cast<std::size_t>(fd)].writer;
}

void EventLoop::set_transport_fd(int fd, bool owned) noexcept {
    if (fd < 0) return;
    // Grows the table like add_watch; bad_alloc here would be a bug elsewhere.
    if (static_cast<std::size_t>(fd) >= transport_fds_.size()) {
        if (!owned) return;
        transport_fds_.resize(static_cast<std::size_t>(fd) + 1);
    }
    transport_fds_[static_cast<std::size_t>(fd)] = owned;
}
bool EventLoop::is_transport_fd(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < transport_fds_.size() && transport_fds_[static_cast<std::size_t>(fd)];
}

std::error_code EventLoop::add_callback(int fd, Callback cb, bool write) {
    HandleNode* node = HandleNode::create(1, HandleNode::persistent, this, std::move(cb));
    std::error_code ec = add_watch(fd, WatchRef::of(node), write);
    if (ec) {
        node->flags |= HandleNode::cancelled;
        node->callback.reset();
        node->release();
    }
    return ec;
}

std::error_code EventLoop::add_watch(int fd, WatchRef entry, bool write) {
    const char* what = write ? "add_writer" : "add_reader";
    if (is_closed()) return detail::refuse(errc::loop_closed, what);
    if (fd < 0) return detail::refuse(errc::invalid_fd, what);
    if (static_cast<std::size_t>(fd) >= watches_.size()) watches_.resize(static_cast<std::size_t>(fd) + 1);
    WatchRef& slot = write ? watches_[static_cast<std::size_t>(fd)].writer : watches_[static_cast<std::size_t>(fd)].reader;
    WatchRef old = std::exchange(slot, entry);
    if (std::error_code ec = update_selector(fd)) {
        // The kernel refused (EBADF for a closed fd, EPERM for a regular file
        // under epoll): leave everything as it was.
        slot = old;
        return ec;
    }
    // Replacing a callback cancels the old handle (CONTRACT 189). The same
    // watcher again is no replacement: it stays as it was, queued or not.
    if (old && old.bits != entry.bits) retire_watch(old);
    return {};
}

bool EventLoop::remove_watch(int fd, bool write) {
    if (fd < 0 || static_cast<std::size_t>(fd) >= watches_.size()) return false;
    WatchRef& slot = write ? watches_[static_cast<std::size_t>(fd)].writer : watches_[static_cast<std::size_t>(fd)].reader;
    if (!slot) return false;
    WatchRef entry = std::exchange(slot, WatchRef{});
    // The fd may already be closed; the selector forgets it either way.
    (void)update_selector(fd);
    retire_watch(entry);
    return true;
}

void EventLoop::retire_watch(WatchRef entry) noexcept {
    if (entry.is_watcher()) {
        // Its owner may be destroyed right after this: blank its queue entry.
        detail::FdWatcher* watcher = entry.watcher();
        if (watcher->queued) ready_.blank(watcher->ready_slot);
        watcher->queued = false;
        return;
    }
    HandleNode* node = entry.node();
    node->flags |= HandleNode::cancelled;
    // Still queued or running: run_ready() releases it when it gets there.
    if (node->flags & (HandleNode::queued | HandleNode::running)) {
        if (!(node->flags & HandleNode::running)) node->callback.reset();
        return;
    }
    node->callback.reset();
    node->release();
}

std::error_code EventLoop::update_selector(int fd) {
    const FdWatch& watch = watches_[static_cast<std::size_t>(fd)];
    std::uint32_t mask = (watch.reader ? EVENT_READ : 0) | (watch.writer ? EVENT_WRITE : 0);
    const SelectorKey* key = selector_->get_key(fd);
    if (!key) return mask ? selector_->register_fd(fd, mask, nullptr) : std::error_code{};
    if (!mask) return selector_->unregister_fd(fd);
    // Always re-arm, even when the mask is unchanged (a replaced reader): if
    // the fd was closed and its number reused without remove_reader(), only
    // this kernel call finds out that the old registration is gone.
    std::error_code ec = selector_->modify(fd, mask, nullptr);
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::bad_file_descriptor) {
        // The fd was closed and its number reused without remove_reader():
        // the kernel forgot the old registration, so start a fresh one.
        (void)selector_->unregister_fd(fd);
        ec = selector_->register_fd(fd, mask, nullptr);
    }
    return ec;
}

}  // namespace evloop
