// test/net/write_buffer_test.cpp — WriteBuffer and FlowControl
// (net/write_buffer.hpp) on their own: gathering, partial consumption,
// memory given back, and asyncio's pause/resume marks (CONTRACT 248–253).
#include "net/write_buffer.hpp"

#include <doctest/doctest.h>

#include <string>

using evloop::detail::FlowControl;
using evloop::detail::WriteBuffer;

namespace {
std::string contents(WriteBuffer& buffer) {
    iovec iov[WriteBuffer::kMaxIov];
    int n = buffer.gather(iov);
    std::string out;
    for (int i = 0; i < n; ++i) out.append(static_cast<char*>(iov[i].iov_base), iov[i].iov_len);
    return out;
}
}  // namespace

TEST_CASE("small appends coalesce; large ones become chunks; gather sees them in order") {
    WriteBuffer buffer;
    CHECK(buffer.empty());
    buffer.append("ab");
    buffer.append("cd");
    buffer.append("");
    CHECK(buffer.size() == 4);
    iovec iov[WriteBuffer::kMaxIov];
    CHECK(buffer.gather(iov) == 1);  // one chunk for two small writes
    std::string big(WriteBuffer::kCoalesceLimit, 'x');
    buffer.append(big);
    buffer.append("ef");
    CHECK(buffer.gather(iov) == 3);
    CHECK(contents(buffer) == "abcd" + big + "ef");
}

TEST_CASE("consume drops sent bytes across chunk boundaries, keeping the rest in order") {
    WriteBuffer buffer;
    std::string expected;
    for (int i = 0; i < 100; ++i) {
        std::string piece(WriteBuffer::kCoalesceLimit, static_cast<char>('a' + i % 26));
        buffer.append(piece);
        expected += piece;
    }
    CHECK(buffer.size() == expected.size());
    std::size_t sent = 0;
    for (std::size_t step : {1ul, 65535ul, 65536ul, 3ul, 500000ul}) {
        buffer.consume(step);
        sent += step;
        CHECK(buffer.size() == expected.size() - sent);
        iovec iov[WriteBuffer::kMaxIov];
        int n = buffer.gather(iov);
        CHECK(n <= WriteBuffer::kMaxIov);
        CHECK(std::string(static_cast<char*>(iov[0].iov_base), 10) == expected.substr(sent, 10));
    }
    buffer.consume(buffer.size());
    CHECK(buffer.empty());
    buffer.append("again");
    CHECK(contents(buffer) == "again");
    buffer.clear();
    CHECK(buffer.empty());
}

TEST_CASE("FlowControl: defaults, derived marks, refusal (CONTRACT 248, 249, 250)") {
    FlowControl flow;
    CHECK(flow.limits.high == 65536);
    CHECK(flow.limits.low == 16384);
    CHECK(flow.set(1000, std::nullopt));
    CHECK(flow.limits.low == 250);
    CHECK(flow.set(std::nullopt, 100));
    CHECK(flow.limits.high == 400);
    CHECK(flow.set(std::nullopt, std::nullopt));
    CHECK(flow.limits.high == 65536);
    CHECK(!flow.set(10, 20));
    CHECK(flow.limits.high == 65536);
}

TEST_CASE("FlowControl: pause strictly above high, resume at low, alternating (CONTRACT 251, 252, 253)") {
    FlowControl flow;
    CHECK(flow.set(100, 10));
    CHECK(!flow.should_pause(100));
    CHECK(flow.should_pause(101));
    CHECK(!flow.should_pause(500));
    CHECK(!flow.should_resume(11));
    CHECK(flow.should_resume(10));
    CHECK(!flow.should_resume(0));
    CHECK(flow.set(0, std::nullopt));
    CHECK(flow.should_pause(1));
    CHECK(!flow.should_resume(1));
    CHECK(flow.should_resume(0));
}
