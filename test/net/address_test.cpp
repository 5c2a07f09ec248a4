// test/net/address_test.cpp — SocketAddress (net/address.cpp): numeric
// literals as the DNS fast path parses them (CONTRACT 114, 117), Unix paths
// and abstract names, printing, equality, and getsockname/getpeername on
// real sockets. Nothing here resolves a name or starts a thread.
#include <doctest/doctest.h>

#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>

#include "net/address.hpp"
#include "platform/fd.hpp"
#include "test/support.hpp"

using namespace evloop;

namespace {

std::error_code os_error(int value) { return {value, std::system_category()}; }

constexpr socklen_t kSunPathOffset = offsetof(sockaddr_un, sun_path);

}  // namespace

TEST_CASE("114: parse takes an IPv4 literal and a port") {
    Result<SocketAddress> a = SocketAddress::parse("127.0.0.1", 80);
    REQUIRE(a);
    CHECK(a->family() == AF_INET);
    CHECK(a->size() == sizeof(sockaddr_in));
    CHECK(a->port() == 80);
    CHECK(a->host() == "127.0.0.1");
    CHECK(a->scope_id() == 0);
    CHECK(a->to_string() == "127.0.0.1:80");
    CHECK_FALSE(a->empty());
}

TEST_CASE("114, 117: parse takes an IPv6 literal, with or without brackets") {
    Result<SocketAddress> plain = SocketAddress::parse("::1", 443);
    REQUIRE(plain);
    CHECK(plain->family() == AF_INET6);
    CHECK(plain->size() == sizeof(sockaddr_in6));
    CHECK(plain->port() == 443);
    CHECK(plain->host() == "::1");
    CHECK(plain->scope_id() == 0);
    CHECK(plain->to_string() == "[::1]:443");

    Result<SocketAddress> bracketed = SocketAddress::parse("[::1]", 443);
    REQUIRE(bracketed);
    CHECK(*bracketed == *plain);

    // Only IPv6 is bracketed; a lone bracket is not a literal.
    CHECK(SocketAddress::parse("[127.0.0.1]", 80).error() == os_error(EINVAL));
    CHECK(SocketAddress::parse("[::1", 80).error() == os_error(EINVAL));
    CHECK(SocketAddress::parse("::1]", 80).error() == os_error(EINVAL));
    CHECK(SocketAddress::parse("[]", 80).error() == os_error(EINVAL));
    CHECK(SocketAddress::parse("[", 80).error() == os_error(EINVAL));
}

TEST_CASE("117: an IPv6 scope is an interface index or name; it sets scope_id and is printed") {
    const unsigned lo = ::if_nametoindex("lo");
    REQUIRE(lo != 0);

    Result<SocketAddress> by_name = SocketAddress::parse("fe80::1%lo", 80);
    REQUIRE(by_name);
    CHECK(by_name->scope_id() == lo);
    CHECK(by_name->host() == "fe80::1");  // no scope in host()
    CHECK(by_name->to_string() == "[fe80::1%" + std::to_string(lo) + "]:80");

    Result<SocketAddress> by_index = SocketAddress::parse("fe80::1%1", 80);
    REQUIRE(by_index);
    CHECK(by_index->scope_id() == 1);
    CHECK(by_index->to_string() == "[fe80::1%1]:80");

    Result<SocketAddress> in_brackets = SocketAddress::parse("[fe80::1%2]", 8080);
    REQUIRE(in_brackets);
    CHECK(in_brackets->scope_id() == 2);
    CHECK(in_brackets->to_string() == "[fe80::1%2]:8080");

    CHECK(SocketAddress::parse("fe80::1%no-such-if0", 80).error() == os_error(ENXIO));
    CHECK(SocketAddress::parse("fe80::1%", 80).error() == os_error(EINVAL));
    CHECK(SocketAddress::parse("fe80::1%99999999999", 80).error() == os_error(EINVAL));
    CHECK(SocketAddress::parse("127.0.0.1%1", 80).error() == os_error(EINVAL));  // IPv4 has no scope
}

TEST_CASE("114: parse rejects anything that is not a numeric literal with EINVAL (names are not resolved)") {
    for (const char* host : {"localhost", "", "example.com", "1.2.3", "127.1", "1.2.3.256", "::g", ":::",
                             " 127.0.0.1", "127.0.0.1 ", "0x7f.0.0.1"}) {
        CAPTURE(host);
        CHECK(SocketAddress::parse(host, 80).error() == os_error(EINVAL));
    }
    // An embedded NUL must not cut the text short into a valid literal.
    CHECK(SocketAddress::parse(std::string_view("1.2.3.4\0junk", 12), 80).error() == os_error(EINVAL));
    // Longer than any literal.
    CHECK(SocketAddress::parse(std::string(100, '1'), 80).error() == os_error(EINVAL));
}

TEST_CASE("114: ports 0 and 65535 are taken; outside 0–65535 is EINVAL") {
    CHECK(SocketAddress::parse("127.0.0.1", 0)->port() == 0);
    CHECK(SocketAddress::parse("127.0.0.1", 65535)->port() == 65535);
    CHECK(SocketAddress::parse("::1", 65535)->port() == 65535);
    CHECK(SocketAddress::parse("127.0.0.1", -1).error() == os_error(EINVAL));
    CHECK(SocketAddress::parse("127.0.0.1", 65536).error() == os_error(EINVAL));
    CHECK(SocketAddress::parse("::1", 70000).error() == os_error(EINVAL));
}

TEST_CASE("unix_path: a filesystem path is NUL-terminated; an abstract name is not") {
    Result<SocketAddress> path = SocketAddress::unix_path("/run/app.sock");
    REQUIRE(path);
    CHECK(path->family() == AF_UNIX);
    CHECK(path->size() == kSunPathOffset + 13 + 1);
    CHECK(path->host() == "/run/app.sock");
    CHECK(path->port() == 0);
    CHECK(path->to_string() == "/run/app.sock");

    const std::string name("\0evloop-test", 12);
    Result<SocketAddress> abstract = SocketAddress::unix_path(name);
    REQUIRE(abstract);
    CHECK(abstract->family() == AF_UNIX);
    CHECK(abstract->size() == kSunPathOffset + 12);  // no terminator
    CHECK(abstract->host() == name);
    CHECK(abstract->to_string() == "@evloop-test");
}

TEST_CASE("unix_path: ENAMETOOLONG past sun_path, EINVAL when empty or with a NUL inside a path") {
    constexpr std::size_t room = sizeof(sockaddr_un{}.sun_path);  // 108 on Linux
    CHECK(SocketAddress::unix_path(std::string(room - 1, 'a')));  // 107 + the terminator fits
    CHECK(SocketAddress::unix_path(std::string(room, 'a')).error() == os_error(ENAMETOOLONG));
    std::string abstract(room, 'a');
    abstract[0] = '\0';
    CHECK(SocketAddress::unix_path(abstract));  // no terminator: all 108 bytes are the name
    abstract += 'a';
    CHECK(SocketAddress::unix_path(abstract).error() == os_error(ENAMETOOLONG));
    CHECK(SocketAddress::unix_path("").error() == os_error(EINVAL));
    CHECK(SocketAddress::unix_path(std::string_view("/tmp/a\0b", 8)).error() == os_error(EINVAL));
}

TEST_CASE("the empty address, and an address copied from a sockaddr") {
    SocketAddress empty;
    CHECK(empty.empty());
    CHECK(empty.family() == AF_UNSPEC);
    CHECK(empty.size() == 0);
    CHECK(empty.port() == 0);
    CHECK(empty.host().empty());
    CHECK(empty.to_string() == "<empty>");
    CHECK(empty == SocketAddress());

    SocketAddress original = *SocketAddress::parse("10.1.2.3", 9000);
    SocketAddress copy(original.data(), original.size());
    CHECK(copy == original);
    CHECK(copy.to_string() == "10.1.2.3:9000");
    // Sizes beyond the storage are clamped.
    SocketAddress clamped(original.data(), 100000);
    CHECK(clamped.size() == SocketAddress::capacity());
    clamped.set_size(100000);
    CHECK(clamped.size() == SocketAddress::capacity());
    CHECK(SocketAddress(nullptr, 16).empty());
}

TEST_CASE("equality compares family and bytes") {
    CHECK(*SocketAddress::parse("127.0.0.1", 80) == *SocketAddress::parse("127.0.0.1", 80));
    CHECK_FALSE(*SocketAddress::parse("127.0.0.1", 80) == *SocketAddress::parse("127.0.0.1", 81));
    CHECK_FALSE(*SocketAddress::parse("127.0.0.1", 80) == *SocketAddress::parse("127.0.0.2", 80));
    CHECK_FALSE(*SocketAddress::parse("::1", 80) == *SocketAddress::parse("::ffff:127.0.0.1", 80));
    CHECK_FALSE(*SocketAddress::parse("fe80::1%1", 80) == *SocketAddress::parse("fe80::1%2", 80));
    CHECK(*SocketAddress::unix_path("/a") == *SocketAddress::unix_path("/a"));
    CHECK_FALSE(*SocketAddress::unix_path("/a") == *SocketAddress::unix_path("/b"));
    CHECK(*SocketAddress::parse("::1", 80) != *SocketAddress::parse("127.0.0.1", 80));
    CHECK_FALSE(*SocketAddress::parse("0.0.0.0", 0) == SocketAddress());
}

TEST_CASE("local_address / peer_address: a socketpair's ends are unnamed") {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    Fd a(fds[0]), b(fds[1]);
    Result<SocketAddress> local = local_address(a.get());
    REQUIRE(local);
    CHECK(local->family() == AF_UNIX);
    CHECK(local->host().empty());
    CHECK(local->to_string() == "<unnamed>");
    Result<SocketAddress> peer = peer_address(a.get());
    REQUIRE(peer);
    CHECK(peer->to_string() == "<unnamed>");
}

TEST_CASE("local_address / peer_address: a loopback TCP connection, seen from both ends") {
    Fd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(server.get() >= 0);
    SocketAddress any = *SocketAddress::parse("127.0.0.1", 0);
    REQUIRE(::bind(server.get(), any.data(), any.size()) == 0);
    REQUIRE(::listen(server.get(), 1) == 0);
    Result<SocketAddress> listening = local_address(server.get());
    REQUIRE(listening);
    CHECK(listening->host() == "127.0.0.1");
    CHECK(listening->port() != 0);  // the kernel picked one
    // Not connected: getpeername's error comes back as it is.
    CHECK(peer_address(server.get()).error() == os_error(ENOTCONN));

    Fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(client.get() >= 0);
    REQUIRE(::connect(client.get(), listening->data(), listening->size()) == 0);
    Fd accepted(::accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(accepted.get() >= 0);

    CHECK(*peer_address(client.get()) == *listening);
    CHECK(*local_address(accepted.get()) == *listening);
    CHECK(*peer_address(accepted.get()) == *local_address(client.get()));
    CHECK(peer_address(client.get())->to_string() == listening->to_string());
}

TEST_CASE("local_address: an abstract Unix name reads back as unix_path made it") {
    const std::string name = std::string(1, '\0') + "evloop-address-test-" + std::to_string(::getpid());
    SocketAddress wanted = *SocketAddress::unix_path(name);
    Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(sock.get() >= 0);
    REQUIRE(::bind(sock.get(), wanted.data(), wanted.size()) == 0);
    Result<SocketAddress> bound = local_address(sock.get());
    REQUIRE(bound);
    CHECK(*bound == wanted);
    CHECK(bound->host() == name);
    CHECK(bound->to_string() == "@" + name.substr(1));
}

TEST_CASE("local_address / peer_address: a bad fd is EBADF") {
    CHECK(local_address(-1).error() == os_error(EBADF));
    CHECK(peer_address(-1).error() == os_error(EBADF));
}
