// test/net/dns_test.cpp — loop.getaddrinfo / loop.getnameinfo and the
// numeric fast path (net/dns.cpp), CONTRACT §8 (111–117, 120).
//
// There is no network here: names resolve through /etc/hosts ("localhost")
// and services through /etc/services, and an unknown name fails at once or
// with EAI_AGAIN. Cases that reach the default executor start threads, so
// they are in the "threadsafe" suite that CI also runs under ThreadSanitizer.
// Items 118, 119 and 121 belong to create_connection / create_server and are
// tested with them.
#include <doctest/doctest.h>

#include <netdb.h>
#include <netinet/in.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "net/address.hpp"
#include "net/dns.hpp"
#include "test/support.hpp"

using namespace evloop;
using evloop::test::run_until;

namespace {

AddrInfoOptions stream() {
    AddrInfoOptions options;
    options.type = SOCK_STREAM;
    return options;
}

// The answer of a future run to completion on `loop` (5 s at most).
Result<std::vector<AddrInfo>> resolve(EventLoop& loop, Future<std::vector<AddrInfo>> future) {
    if (!run_until(loop, [&] { return future.done(); })) return errc::invalid_state;
    return future.result();
}

bool has_address(const std::vector<AddrInfo>& infos, const std::string& text, int type) {
    for (const AddrInfo& info : infos)
        if (info.address.to_string() == text && info.type == type) return true;
    return false;
}

}  // namespace

TEST_CASE("113: gai_category is 'getaddrinfo' with gai_strerror's text; EAI_SYSTEM becomes its errno") {
    std::error_code noname = make_gai_error(EAI_NONAME);
    CHECK(noname.category() == gai_category());
    CHECK(noname.value() == EAI_NONAME);
    CHECK(std::string(gai_category().name()) == "getaddrinfo");
    CHECK(noname.message() == ::gai_strerror(EAI_NONAME));
    errno = EMFILE;
    std::error_code system = make_gai_error(EAI_SYSTEM);
    CHECK(system == std::error_code(EMFILE, std::system_category()));
}

TEST_CASE("114: numeric_addrinfo answers for a literal with a socket type; the type implies the protocol") {
    auto v4 = numeric_addrinfo("127.0.0.1", "80", stream());
    REQUIRE(v4);
    REQUIRE(v4->size() == 1);
    CHECK((*v4)[0].family == AF_INET);
    CHECK((*v4)[0].type == SOCK_STREAM);
    CHECK((*v4)[0].protocol == IPPROTO_TCP);
    CHECK((*v4)[0].canonname.empty());
    CHECK((*v4)[0].address.to_string() == "127.0.0.1:80");

    AddrInfoOptions dgram;
    dgram.type = SOCK_DGRAM;
    auto udp = numeric_addrinfo("10.0.0.1", "53", dgram);
    REQUIRE(udp);
    CHECK((*udp)[0].protocol == IPPROTO_UDP);

    // A protocol that matches the type is accepted.
    AddrInfoOptions tcp = stream();
    tcp.protocol = IPPROTO_TCP;
    CHECK(numeric_addrinfo("127.0.0.1", "80", tcp));
}

TEST_CASE("114: port '' is 0, a digit string is its number") {
    CHECK((*numeric_addrinfo("127.0.0.1", "", stream()))[0].address.port() == 0);
    CHECK((*numeric_addrinfo("127.0.0.1", "0", stream()))[0].address.port() == 0);
    CHECK((*numeric_addrinfo("127.0.0.1", "08080", stream()))[0].address.port() == 8080);
    CHECK((*numeric_addrinfo("127.0.0.1", "65535", stream()))[0].address.port() == 65535);
    // No port is that big: getaddrinfo may say so.
    CHECK_FALSE(numeric_addrinfo("127.0.0.1", "65536", stream()));
}

TEST_CASE("114, 117: the fast path gives IPv6 with flowinfo 0 and scope id 0") {
    auto v6 = numeric_addrinfo("::1", "443", stream());
    REQUIRE(v6);
    const AddrInfo& info = (*v6)[0];
    CHECK(info.family == AF_INET6);
    CHECK(info.address.host() == "::1");
    CHECK(info.address.port() == 443);
    CHECK(info.address.scope_id() == 0);
    CHECK(reinterpret_cast<const sockaddr_in6*>(info.address.data())->sin6_flowinfo == 0);
    AddrInfoOptions v6_only = stream();
    v6_only.family = AF_INET6;
    CHECK(numeric_addrinfo("::1", "443", v6_only));
}

TEST_CASE("115: no fast path without a socket type, for a '%' scope, a service name, a family mismatch, a name") {
    CHECK_FALSE(numeric_addrinfo("127.0.0.1", "80", AddrInfoOptions{}));
    AddrInfoOptions raw;
    raw.type = SOCK_RAW;
    CHECK_FALSE(numeric_addrinfo("127.0.0.1", "80", raw));
    CHECK_FALSE(numeric_addrinfo("fe80::1%1", "80", stream()));
    CHECK_FALSE(numeric_addrinfo("fe80::1%lo", "80", stream()));
    CHECK_FALSE(numeric_addrinfo("127.0.0.1", "http", stream()));
    AddrInfoOptions v6 = stream();
    v6.family = AF_INET6;
    CHECK_FALSE(numeric_addrinfo("127.0.0.1", "80", v6));
    AddrInfoOptions v4 = stream();
    v4.family = AF_INET;
    CHECK_FALSE(numeric_addrinfo("::1", "80", v4));
    CHECK_FALSE(numeric_addrinfo("localhost", "80", stream()));
    CHECK_FALSE(numeric_addrinfo("", "80", stream()));
    CHECK_FALSE(numeric_addrinfo("[::1]", "80", stream()));
    AddrInfoOptions mismatch = stream();
    mismatch.protocol = IPPROTO_UDP;
    CHECK_FALSE(numeric_addrinfo("127.0.0.1", "80", mismatch));
}

TEST_CASE("114: loop.getaddrinfo's fast path completes at once and never creates the executor") {
    EventLoop loop;
    Future<std::vector<AddrInfo>> future = loop.getaddrinfo("127.0.0.1", "8080", stream());
    CHECK(future.done());
    CHECK(loop.default_executor() == nullptr);
    Result<std::vector<AddrInfo>> answer = future.result();
    REQUIRE(answer);
    REQUIRE(answer->size() == 1);
    CHECK((*answer)[0].address.to_string() == "127.0.0.1:8080");

    // The int-port overload takes the same path.
    Future<std::vector<AddrInfo>> by_number = loop.getaddrinfo("::1", 80, stream());
    CHECK(by_number.done());
    CHECK((*by_number.result())[0].address.to_string() == "[::1]:80");
    CHECK(loop.default_executor() == nullptr);
}

TEST_CASE("getaddrinfo with an int port outside 0–65535: a future holding invalid_argument, no throw") {
    EventLoop loop;
    for (int port : {-1, 65536, 1 << 30}) {
        CAPTURE(port);
        Future<std::vector<AddrInfo>> future = loop.getaddrinfo("127.0.0.1", port, stream());
        CHECK(future.done());
        CHECK(future.result().error() == errc::invalid_argument);
    }
    CHECK(loop.default_executor() == nullptr);
}

TEST_CASE("2, 111, 112: after close(), getaddrinfo and getnameinfo (run_in_executor in asyncio) are refused with 'Event loop is closed'") {
    EventLoop loop;
    CHECK_FALSE(loop.close());
    CHECK_REFUSED(errc::loop_closed, (void)loop.getaddrinfo("localhost", "80", stream()));
    CHECK_REFUSED(errc::loop_closed, (void)loop.getaddrinfo("127.0.0.1", "80", stream()));  // fast path too
    CHECK_REFUSED(errc::loop_closed, (void)loop.getnameinfo(*SocketAddress::parse("127.0.0.1", 80)));
    CHECK(loop.default_executor() == nullptr);
#if !EVLOOP_EXCEPTIONS
    test::LogCapture quiet;
    Future<std::vector<AddrInfo>> refused = loop.getaddrinfo("localhost", "80", stream());
    CHECK(refused.done());
    CHECK(refused.result().error() == errc::loop_closed);
    Future<NameInfo> refused_name = loop.getnameinfo(*SocketAddress::parse("127.0.0.1", 80));
    CHECK(refused_name.result().error() == errc::loop_closed);
#endif
}

TEST_CASE("getaddrinfo_blocking: host '' is no host (loopback, or the wildcard with AI_PASSIVE)") {
    Result<std::vector<AddrInfo>> loopback = getaddrinfo_blocking("", "80", [] {
        AddrInfoOptions options = stream();
        options.family = AF_INET;
        return options;
    }());
    REQUIRE(loopback);
    CHECK(has_address(*loopback, "127.0.0.1:80", SOCK_STREAM));
    AddrInfoOptions passive = stream();
    passive.family = AF_INET;
    passive.flags = AI_PASSIVE;
    Result<std::vector<AddrInfo>> wildcard = getaddrinfo_blocking("", "80", passive);
    REQUIRE(wildcard);
    CHECK(has_address(*wildcard, "0.0.0.0:80", SOCK_STREAM));
    // Neither host nor port: getaddrinfo's own error.
    CHECK(getaddrinfo_blocking("", "", stream()).error() == make_gai_error(EAI_NONAME));
}

TEST_CASE("getaddrinfo_blocking: AI_CANONNAME fills canonname") {
    AddrInfoOptions options = stream();
    options.family = AF_INET;
    options.flags = AI_CANONNAME;
    Result<std::vector<AddrInfo>> answer = getaddrinfo_blocking("localhost", "80", options);
    REQUIRE(answer);
    REQUIRE_FALSE(answer->empty());
    CHECK((*answer)[0].canonname == "localhost");
}

TEST_SUITE("threadsafe") {

TEST_CASE("111: getaddrinfo('localhost', '80', type=SOCK_STREAM) runs on the default executor") {
    EventLoop loop;
    Future<std::vector<AddrInfo>> future = loop.getaddrinfo("localhost", "80", stream());
    CHECK_FALSE(future.done());
    CHECK(loop.default_executor() != nullptr);
    Result<std::vector<AddrInfo>> answer = resolve(loop, future);
    REQUIRE(answer);
    CHECK(has_address(*answer, "127.0.0.1:80", SOCK_STREAM));
    for (const AddrInfo& info : *answer) {
        CHECK(info.type == SOCK_STREAM);
        CHECK(info.protocol == IPPROTO_TCP);
    }
}

TEST_CASE("111, 115: without a socket type even a literal goes to getaddrinfo, which gives every type") {
    EventLoop loop;
    Future<std::vector<AddrInfo>> future = loop.getaddrinfo("127.0.0.1", "80");
    CHECK(loop.default_executor() != nullptr);
    Result<std::vector<AddrInfo>> answer = resolve(loop, future);
    REQUIRE(answer);
    CHECK(has_address(*answer, "127.0.0.1:80", SOCK_STREAM));
    CHECK(has_address(*answer, "127.0.0.1:80", SOCK_DGRAM));
}

TEST_CASE("113: an unknown host fails with the resolver's error, in gai_category") {
    EventLoop loop;
    Result<std::vector<AddrInfo>> answer = resolve(loop, loop.getaddrinfo("nonexistent.invalid", "80", stream()));
    REQUIRE_FALSE(answer);
    CHECK(answer.error().category() == gai_category());
    // No network here: "not known", or "try again" if a DNS server was asked.
    const int code = answer.error().value();
    CHECK((code == EAI_NONAME || code == EAI_AGAIN));
}

TEST_CASE("115: a service name goes through getaddrinfo: 'http' is port 80") {
    if (::access("/etc/services", R_OK) != 0) {
        MESSAGE("skipped: no /etc/services");
        return;
    }
    EventLoop loop;
    Future<std::vector<AddrInfo>> future = loop.getaddrinfo("127.0.0.1", "http", stream());
    CHECK(loop.default_executor() != nullptr);
    Result<std::vector<AddrInfo>> answer = resolve(loop, future);
    REQUIRE(answer);
    REQUIRE(answer->size() == 1);
    CHECK((*answer)[0].address.to_string() == "127.0.0.1:80");
    CHECK((*answer)[0].protocol == IPPROTO_TCP);
}

TEST_CASE("116: a bogus service name is an error") {
    EventLoop loop;
    Result<std::vector<AddrInfo>> answer = resolve(loop, loop.getaddrinfo("127.0.0.1", "no-such-service-xyz", stream()));
    REQUIRE_FALSE(answer);
    CHECK(answer.error().category() == gai_category());
    CHECK(answer.error().value() == EAI_SERVICE);  // glibc: "Servname not supported for ai_socktype"
}

TEST_CASE("117: a scoped literal resolves through getaddrinfo to its address with the scope id") {
    const unsigned lo = ::if_nametoindex("lo");
    REQUIRE(lo != 0);
    EventLoop loop;
    Future<std::vector<AddrInfo>> by_index = loop.getaddrinfo("fe80::1%1", "80", stream());
    Future<std::vector<AddrInfo>> by_name = loop.getaddrinfo("fe80::1%lo", 80, stream());
    CHECK(loop.default_executor() != nullptr);
    Result<std::vector<AddrInfo>> index_answer = resolve(loop, by_index);
    REQUIRE(index_answer);
    REQUIRE(index_answer->size() == 1);
    const SocketAddress& address = (*index_answer)[0].address;
    CHECK(address.family() == AF_INET6);
    CHECK(address.host() == "fe80::1");
    CHECK(address.port() == 80);
    CHECK(address.scope_id() == 1);
    Result<std::vector<AddrInfo>> name_answer = resolve(loop, by_name);
    REQUIRE(name_answer);
    CHECK((*name_answer)[0].address.scope_id() == lo);
}

TEST_CASE("112: getnameinfo(127.0.0.1:80, NI_NUMERICHOST | NI_NUMERICSERV) runs on the executor") {
    EventLoop loop;
    Future<NameInfo> future = loop.getnameinfo(*SocketAddress::parse("127.0.0.1", 80), NI_NUMERICHOST | NI_NUMERICSERV);
    CHECK(loop.default_executor() != nullptr);
    REQUIRE(run_until(loop, [&] { return future.done(); }));
    Result<NameInfo> answer = future.result();
    REQUIRE(answer);
    CHECK(answer->host == "127.0.0.1");
    CHECK(answer->service == "80");
}

TEST_CASE("112, 113: getnameinfo's errors are in gai_category") {
    EventLoop loop;
    // The empty address has no family getnameinfo knows.
    Future<NameInfo> future = loop.getnameinfo(SocketAddress(), NI_NUMERICHOST);
    REQUIRE(run_until(loop, [&] { return future.done(); }));
    REQUIRE_FALSE(future.result());
    CHECK(future.result().error() == make_gai_error(EAI_FAMILY));
}

TEST_CASE("a getaddrinfo future cancelled while the lookup runs stays cancelled; the late answer is dropped") {
    EventLoop loop;
    // One worker: the lookups run in order, so the second's answer arrives
    // after the first's.
    loop.set_default_executor(std::make_unique<ThreadPoolExecutor>(1));
    Future<std::vector<AddrInfo>> first = loop.getaddrinfo("localhost", "80", stream());
    CHECK(first.cancel());
    Future<std::vector<AddrInfo>> second = loop.getaddrinfo("localhost", "81", stream());
    Result<std::vector<AddrInfo>> answer = resolve(loop, second);
    REQUIRE(answer);
    CHECK(has_address(*answer, "127.0.0.1:81", SOCK_STREAM));
    CHECK(first.cancelled());
    CHECK(first.result().error() == errc::cancelled);
}

TEST_CASE("closing the loop with a lookup in flight leaves its future pending and frees everything") {
    EventLoop loop;
    {
        Future<std::vector<AddrInfo>> future = loop.getaddrinfo("localhost", "80", stream());
        CHECK_FALSE(loop.close());
        CHECK_FALSE(future.done());
        // The future goes before the loop, as a program's would; ASan/LSan
        // check that the call and its done callback went with it.
    }
    CHECK(loop.is_closed());
}

TEST_CASE("120: in debug mode getaddrinfo logs how long it took: DEBUG when fast") {
    EventLoop loop;
    loop.set_debug(true);
    loop.set_slow_callback_duration(1000.0);
    test::LogCapture capture;
    REQUIRE(resolve(loop, loop.getaddrinfo("localhost", "80", stream())));
    CHECK(capture.contains("Get address info localhost:80, type=1"));
    CHECK(capture.contains("Getting address info localhost:80, type=1 took "));
    CHECK(capture.contains("ms: [127.0.0.1:80"));
    bool any_info = false;
    for (auto& [level, line] : test::LogCapture::lines()) any_info = any_info || level != LogLevel::debug;
    CHECK_FALSE(any_info);
}

TEST_CASE("120: in debug mode a lookup at least slow_callback_duration long is logged at INFO") {
    EventLoop loop;
    loop.set_debug(true);
    loop.set_slow_callback_duration(0.0);
    test::LogCapture capture;
    REQUIRE_FALSE(resolve(loop, loop.getaddrinfo("127.0.0.1", "no-such-service-xyz", stream())));
    bool took_at_info = false;
    for (auto& [level, line] : test::LogCapture::lines())
        took_at_info = took_at_info || (level == LogLevel::info && line.find("Getting address info") == 0);
    CHECK(took_at_info);
    CHECK(capture.contains("error: "));
}

TEST_CASE("120: outside debug mode getaddrinfo logs nothing") {
    EventLoop loop;
    test::LogCapture capture;
    REQUIRE(resolve(loop, loop.getaddrinfo("localhost", "80", stream())));
    CHECK(capture.count() == 0);
}

}  // TEST_SUITE("threadsafe")
