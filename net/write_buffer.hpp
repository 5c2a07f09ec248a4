// net/write_buffer.hpp — what a stream transport could not send yet, and the
// flow-control marks that tell its protocol to pause and resume writing.
//
// WriteBuffer is a queue of chunks rather than one growing string: a flush
// hands up to kMaxIov chunks to one sendmsg (a gathered write), and a chunk
// that was sent is dropped without moving the bytes behind it. Small writes
// are appended to the last chunk so a stream of tiny writes does not become
// a stream of tiny chunks. It is empty — and owns no memory — on the steady
// path, where every write goes straight to the socket.
//
// FlowControl is asyncio's _FlowControlMixin: pause_writing when the buffer
// is strictly over `high`, resume_writing when it drains to `low` or below,
// strictly alternating (CONTRACT 248–255).
// Layer: net. Read next: net/socket_transport.cpp.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include "net/transport.hpp"

namespace evloop::detail {

class WriteBuffer {
public:
    static constexpr int kMaxIov = 64;
    // Appending to the last chunk stops here, so one flush never has to move
    // a huge chunk's tail and a sent chunk frees its memory soon.
    static constexpr std::size_t kCoalesceLimit = 64 * 1024;

    bool empty() const noexcept { return size_ == 0; }
    std::size_t size() const noexcept { return size_; }

    void append(std::string_view data) {
        if (data.empty()) return;
        if (head_ < chunks_.size() && chunks_.back().size() + data.size() <= kCoalesceLimit)
            chunks_.back().append(data);
        else
            chunks_.emplace_back(data);
        size_ += data.size();
    }
    /// Fills `iov` with up to kMaxIov unsent pieces; returns how many.
    int gather(iovec* iov) noexcept {
        int count = 0;
        for (std::size_t i = head_; i < chunks_.size() && count < kMaxIov; ++i, ++count) {
            std::size_t skip = i == head_ ? offset_ : 0;
            iov[count].iov_base = chunks_[i].data() + skip;
            iov[count].iov_len = chunks_[i].size() - skip;
        }
        return count;
    }
    /// Drops the first `n` bytes (they were sent).
    void consume(std::size_t n) noexcept {
        size_ -= n;
        while (n > 0) {
            std::size_t left = chunks_[head_].size() - offset_;
            if (n < left) {
                offset_ += n;
                return;
            }
            n -= left;
            offset_ = 0;
            std::string().swap(chunks_[head_++]);  // a sent chunk's memory goes now
        }
        if (head_ == chunks_.size()) {
            chunks_.clear();
            head_ = 0;
        } else if (head_ >= 32 && head_ * 2 >= chunks_.size()) {
            chunks_.erase(chunks_.begin(), chunks_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }
    /// Drops everything and gives the memory back.
    void clear() noexcept {
        std::vector<std::string>().swap(chunks_);
        head_ = offset_ = size_ = 0;
    }

private:
    // A vector with a moving head rather than a std::deque: an empty vector
    // owns no memory, while libstdc++'s deque allocates ~600 bytes at
    // construction, in every idle connection.
    std::vector<std::string> chunks_;
    std::size_t head_ = 0;    // first unsent chunk
    std::size_t offset_ = 0;  // bytes of chunks_[head_] already sent
    std::size_t size_ = 0;
};

/// The pause/resume bookkeeping; the transport calls the protocol.
struct FlowControl {
    WriteBufferLimits limits{};
    bool paused = false;  // pause_writing() called, resume_writing() not yet

    /// True when the caller must call pause_writing() now.
    bool should_pause(std::size_t buffered) noexcept {
        if (paused || buffered <= limits.high) return false;
        paused = true;
        return true;
    }
    /// True when the caller must call resume_writing() now.
    bool should_resume(std::size_t buffered) noexcept {
        if (!paused || buffered > limits.low) return false;
        paused = false;
        return true;
    }
    /// True in the state a transport starts in (default marks, not paused).
    bool at_rest() const noexcept {
        return !paused && limits.low == WriteBufferLimits{}.low && limits.high == WriteBufferLimits{}.high;
    }
    /// asyncio's _set_write_buffer_limits: false if high < low.
    bool set(std::optional<std::size_t> high, std::optional<std::size_t> low) noexcept {
        std::size_t h = high ? *high : low ? 4 * *low : 64 * 1024;
        std::size_t l = low ? *low : h / 4;
        if (h < l) return false;
        limits = {l, h};
        return true;
    }
};

}  // namespace evloop::detail
