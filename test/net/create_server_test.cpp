// test/net/create_server_test.cpp — loop.create_server and
// loop.create_unix_server (net/create_server.cpp): argument checks,
// resolution, socket options, binding, start_serving, Unix paths.
// CONTRACT §10 items 143–147, 150–154, §19 items 309–312.
// Real sockets on 127.0.0.1 and ::1 (the IPv6 cases say so and are skipped
// when ::1 is not configured), Unix sockets in a fresh temporary folder.
// Every test counts /proc/self/fd before and after it.
// Not tested here: the ssl items of 143 and 309 (no TLS yet); 148 (needs a
// kernel without SO_REUSEPORT); 119 (no resolver returns an empty success
// list; the code path maps it to errc::getaddrinfo_empty).
#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "net/server.hpp"
#include "test/net/stream_pair.hpp"
#include "test/support.hpp"

using namespace evloop;
using evloop::test::Recorder;
using evloop::test::run_until;

namespace {

int open_fds() {
    int count = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    REQUIRE(dir);
    while (dirent* entry = ::readdir(dir))
        if (entry->d_name[0] != '.') ++count;
    ::closedir(dir);
    return count - 1;  // the DIR's own
}

// First local of every test, so it checks after everything else is gone.
struct FdLeakCheck {
    int before = open_fds();
    ~FdLeakCheck() { CHECK(open_fds() == before); }
};

// A fresh folder for Unix socket paths, removed with what is left in it.
struct TempDir {
    std::string path;
    TempDir() {
        char name[] = "/tmp/evloop-create-server-XXXXXX";
        REQUIRE(::mkdtemp(name));
        path = name;
    }
    ~TempDir() {
        if (DIR* dir = ::opendir(path.c_str())) {
            while (dirent* entry = ::readdir(dir))
                if (entry->d_name[0] != '.') ::unlink((path + "/" + entry->d_name).c_str());
            ::closedir(dir);
        }
        ::rmdir(path.c_str());
    }
    std::string operator/(const char* name) const { return path + "/" + name; }
};

ProtocolFactory recorders() {
    return [] { return std::make_shared<Recorder>(); };
}

Result<std::shared_ptr<Server>> wait(EventLoop& loop, Future<std::shared_ptr<Server>> future) {
    if (!run_until(loop, [&] { return future.done(); })) return errc::timeout;
    return future.result();
}

bool ipv6_loopback() {
    Fd sock(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    Result<SocketAddress> address = SocketAddress::parse("::1", 0);
    return sock && address && ::bind(sock.get(), address->data(), address->size()) == 0;
}

int int_option(int fd, int level, int name) {
    int value = -1;
    socklen_t size = sizeof value;
    REQUIRE(::getsockopt(fd, level, name, &value, &size) == 0);
    return value;
}

int connect_errno(const SocketAddress& to) {
    Fd sock(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(sock);
    return ::connect(sock.get(), to.data(), to.size()) < 0 ? errno : 0;
}

bool exists(const std::string& path) {
    struct stat info {};
    return ::lstat(path.c_str(), &info) == 0;
}

}  // namespace

TEST_CASE("143: host/port with sock, neither of them, and a sock that is not SOCK_STREAM are refused") {
    FdLeakCheck leaks;
    EventLoop loop;
    // The call owns a given sock from the start: a refused call closes it too.
    auto fresh = [](int type) { return ::socket(AF_INET, type | SOCK_CLOEXEC, 0); };
    int tcp = fresh(SOCK_STREAM);
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_server(recorders(), "127.0.0.1", 0, {.sock = tcp}).error());
    CHECK_FALSE(is_open_fd(tcp));
    tcp = fresh(SOCK_STREAM);
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_server(recorders(), "", 8080, {.sock = tcp}).error());
    CHECK_FALSE(is_open_fd(tcp));
    // port -1 is asyncio's port=None: no host, no port, no sock.
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_server(recorders(), "", -1).error());
    CHECK_REFUSED(errc::invalid_argument,
                  (void)loop.create_server(recorders(), std::vector<std::string>{}, -1, {}).error());
    int udp = fresh(SOCK_DGRAM);
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_server(recorders(), "", -1, {.sock = udp}).error());
    CHECK_FALSE(is_open_fd(udp));
    // Not misuse: a port no TCP port can be is the future's error, as asyncio's
    // OverflowError comes out of getaddrinfo.
    CHECK(wait(loop, loop.create_server(recorders(), "127.0.0.1", 65536)).error() == errc::invalid_argument);
    CHECK(loop.close() == std::error_code());
    CHECK_REFUSED(errc::loop_closed, (void)loop.create_server(recorders(), "127.0.0.1", 0).error());
}

TEST_CASE("144, 150: host \"\" binds every interface, one socket per family, IPv6 ones with IPV6_V6ONLY") {
    FdLeakCheck leaks;
    EventLoop loop;
    Result<std::shared_ptr<Server>> server = wait(loop, loop.create_server(recorders(), "", 0));
    REQUIRE(server);
    std::vector<SocketAddress> addresses = (*server)->addresses();
    bool v4 = false, v6 = false;
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        if (addresses[i].family() == AF_INET) {
            v4 = true;
            CHECK(addresses[i].host() == "0.0.0.0");
        } else if (addresses[i].family() == AF_INET6) {
            v6 = true;
            CHECK(addresses[i].host() == "::");
            CHECK(int_option((*server)->sockets()[i], IPPROTO_IPV6, IPV6_V6ONLY) == 1);
        }
    }
    CHECK(v4);
    if (ipv6_loopback()) CHECK(v6);  // dual stack: a v4 and a v6 socket
    // Reachable through loopback.
    for (const SocketAddress& address : addresses) {
        std::string loopback = address.family() == AF_INET ? "127.0.0.1" : "::1";
        CHECK(connect_errno(*SocketAddress::parse(loopback, address.port())) == 0);
    }
    (*server)->close();
}

TEST_CASE("145: several hosts bind one socket per distinct address; names resolve through the executor") {
    FdLeakCheck leaks;
    EventLoop loop;
    std::vector<std::string> hosts{"127.0.0.1", "127.0.0.1"};
    bool v6 = ipv6_loopback();
    if (v6) hosts.push_back("::1");
    Result<std::shared_ptr<Server>> server = wait(loop, loop.create_server(recorders(), hosts, 0, {}));
    REQUIRE(server);
    std::vector<SocketAddress> addresses = (*server)->addresses();
    REQUIRE(addresses.size() == (v6 ? 2u : 1u));
    CHECK(addresses[0].host() == "127.0.0.1");
    if (v6) CHECK(addresses[1].host() == "::1");
    (*server)->close();

    // "localhost" is a name: getaddrinfo on the default executor.
    Result<std::shared_ptr<Server>> named =
        wait(loop, loop.create_server(recorders(), "localhost", 0, {.family = AF_INET}));
    REQUIRE(named);
    REQUIRE((*named)->addresses().size() == 1);
    CHECK((*named)->addresses()[0].host() == "127.0.0.1");
    (*named)->close();
    // An unknown name: the resolver's error.
    Result<std::shared_ptr<Server>> unknown = wait(loop, loop.create_server(recorders(), "no-such-host.invalid", 0));
    CHECK_FALSE(unknown);
}

TEST_CASE("146, 147: SO_REUSEADDR is on unless turned off; SO_REUSEPORT only when asked") {
    FdLeakCheck leaks;
    EventLoop loop;
    auto plain = wait(loop, loop.create_server(recorders(), "127.0.0.1", 0));
    REQUIRE(plain);
    int fd = (*plain)->sockets()[0];
    CHECK(int_option(fd, SOL_SOCKET, SO_REUSEADDR) != 0);
    CHECK(int_option(fd, SOL_SOCKET, SO_REUSEPORT) == 0);
    (*plain)->close();

    auto off = wait(loop, loop.create_server(recorders(), "127.0.0.1", 0, {.reuse_address = false}));
    REQUIRE(off);
    CHECK(int_option((*off)->sockets()[0], SOL_SOCKET, SO_REUSEADDR) == 0);
    (*off)->close();

    // Two servers share one port with reuse_port.
    auto first = wait(loop, loop.create_server(recorders(), "127.0.0.1", 0, {.reuse_port = true}));
    REQUIRE(first);
    CHECK(int_option((*first)->sockets()[0], SOL_SOCKET, SO_REUSEPORT) == 1);
    int port = (*first)->addresses()[0].port();
    auto second = wait(loop, loop.create_server(recorders(), "127.0.0.1", port, {.reuse_port = true}));
    REQUIRE(second);
    CHECK((*second)->addresses()[0].port() == port);
    (*first)->close();
    (*second)->close();
}

TEST_CASE("151: EADDRINUSE closes every socket bound so far and is the error; the log names the address") {
    FdLeakCheck leaks;
    EventLoop loop;
    auto taken = wait(loop, loop.create_server(recorders(), "127.0.0.1", 0));
    REQUIRE(taken);
    int port = (*taken)->addresses()[0].port();
    // ::1 (if any) binds first, then 127.0.0.1 fails: the ::1 socket must
    // be closed too (FdLeakCheck).
    std::vector<std::string> hosts;
    if (ipv6_loopback()) hosts.push_back("::1");
    hosts.push_back("127.0.0.1");
    test::LogCapture log;
    auto busy = wait(loop, loop.create_server(recorders(), hosts, port, {}));
    CHECK(busy.error() == std::error_code(EADDRINUSE, std::system_category()));
    CHECK(log.contains("error while attempting to bind on address 127.0.0.1:" + std::to_string(port)));
    (*taken)->close();
}

TEST_CASE("151, 152: EADDRNOTAVAIL skips that address; nothing bound is an error") {
    FdLeakCheck leaks;
    EventLoop loop;
    // 192.0.2.1 (TEST-NET-1) is on no interface here.
    std::vector<std::string> hosts{"192.0.2.1", "127.0.0.1"};
    auto server = wait(loop, loop.create_server(recorders(), hosts, 0, {}));
    REQUIRE(server);
    REQUIRE((*server)->addresses().size() == 1);
    CHECK((*server)->addresses()[0].host() == "127.0.0.1");
    (*server)->close();

    auto none = wait(loop, loop.create_server(recorders(), "192.0.2.1", 0));
    CHECK(none.error() == std::error_code(EADDRNOTAVAIL, std::system_category()));
}

TEST_CASE("153, 154: the future completes serving (listen done); port 0 gives an ephemeral port, -1 too") {
    FdLeakCheck leaks;
    EventLoop loop;
    auto future = loop.create_server(recorders(), "127.0.0.1", 0, {.backlog = 3});
    auto server = wait(loop, future);
    REQUIRE(server);
    CHECK((*server)->is_serving());
    int fd = (*server)->sockets()[0];
    CHECK(int_option(fd, SOL_SOCKET, SO_ACCEPTCONN) == 1);
    CHECK((*server)->addresses()[0].port() != 0);
    CHECK(connect_errno((*server)->addresses()[0]) == 0);
    (*server)->close();

    auto none_port = wait(loop, loop.create_server(recorders(), "127.0.0.1", -1));  // asyncio's port=None
    REQUIRE(none_port);
    CHECK((*none_port)->addresses()[0].port() != 0);
    (*none_port)->close();
}

TEST_CASE("143, 153: options.sock serves on a bound socket the server then owns") {
    FdLeakCheck leaks;
    EventLoop loop;
    int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(sock >= 0);
    SocketAddress any = *SocketAddress::parse("127.0.0.1", 0);
    REQUIRE(::bind(sock, any.data(), any.size()) == 0);
    auto server = wait(loop, loop.create_server(recorders(), "", 0, {.sock = sock}));
    REQUIRE(server);
    CHECK((*server)->sockets() == std::vector<int>{sock});
    CHECK((::fcntl(sock, F_GETFL) & O_NONBLOCK) != 0);
    CHECK(connect_errno((*server)->addresses()[0]) == 0);
    (*server)->close();
    CHECK_FALSE(is_open_fd(sock));  // closed by the server
}

TEST_CASE("309: create_unix_server argument checks; a SOCK_STREAM|SOCK_NONBLOCK socket is accepted") {
    FdLeakCheck leaks;
    TempDir dir;
    EventLoop loop;
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_unix_server(recorders(), "").error());
    // A given sock is the call's from the start: refused calls close it.
    int inet = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_REFUSED(errc::invalid_argument,
                  (void)loop.create_unix_server(recorders(), dir / "a.sock", {.sock = inet}).error());
    CHECK_FALSE(is_open_fd(inet));
    inet = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_unix_server(recorders(), "", {.sock = inet}).error());
    CHECK_FALSE(is_open_fd(inet));
    int dgram = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK_REFUSED(errc::invalid_argument, (void)loop.create_unix_server(recorders(), "", {.sock = dgram}).error());
    CHECK_FALSE(is_open_fd(dgram));

    int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    Result<SocketAddress> path = SocketAddress::unix_path(dir / "given.sock");
    REQUIRE(::bind(sock, path->data(), path->size()) == 0);
    auto server = wait(loop, loop.create_unix_server(recorders(), "", {.sock = sock}));
    REQUIRE(server);
    CHECK((*server)->is_serving());
    CHECK(connect_errno(*path) == 0);
    (*server)->close();
    CHECK_FALSE(exists(dir / "given.sock"));  // an already bound sock is cleaned up too (CONTRACT 312)
}

TEST_CASE("310: a stale socket file is replaced; any other file is left and the call fails; abstract names") {
    FdLeakCheck leaks;
    TempDir dir;
    EventLoop loop;
    std::string stale = dir / "stale.sock";
    {
        Fd old(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        Result<SocketAddress> address = SocketAddress::unix_path(stale);
        REQUIRE(::bind(old.get(), address->data(), address->size()) == 0);
    }  // closed: the file stays behind, as after a crash
    REQUIRE(exists(stale));
    auto server = wait(loop, loop.create_unix_server(recorders(), stale));
    REQUIRE(server);
    CHECK(connect_errno(*SocketAddress::unix_path(stale)) == 0);
    (*server)->close();

    std::string regular = dir / "regular";
    Fd file(::open(regular.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    REQUIRE(file);
    CHECK(wait(loop, loop.create_unix_server(recorders(), regular)).error() == errc::address_in_use);
    struct stat info {};
    REQUIRE(::stat(regular.c_str(), &info) == 0);
    CHECK(S_ISREG(info.st_mode));

    // Linux's abstract namespace: nothing appears in any folder.
    std::string abstract = std::string("\0evloop-create-server-test-", 27) + std::to_string(::getpid());
    auto hidden = wait(loop, loop.create_unix_server(recorders(), abstract));
    REQUIRE(hidden);
    CHECK(connect_errno(*SocketAddress::unix_path(abstract)) == 0);
    (*hidden)->close();
}

TEST_CASE("311: a bind error or a path too long fails the call and closes the socket") {
    FdLeakCheck leaks;
    TempDir dir;
    EventLoop loop;
    CHECK(wait(loop, loop.create_unix_server(recorders(), dir / "missing/folder.sock")).error() ==
          std::error_code(ENOENT, std::system_category()));
    std::string too_long = dir.path + "/" + std::string(200, 'x');
    CHECK(wait(loop, loop.create_unix_server(recorders(), too_long)).error() ==
          std::error_code(ENAMETOOLONG, std::system_category()));
}

TEST_CASE("312: close() unlinks the path it bound, not a file that replaced it; cleanup_socket=false keeps it") {
    FdLeakCheck leaks;
    TempDir dir;
    EventLoop loop;
    std::string path = dir / "s.sock";

    auto server = wait(loop, loop.create_unix_server(recorders(), path));
    REQUIRE(server);
    CHECK(exists(path));
    (*server)->close();
    CHECK_FALSE(exists(path));

    // Replaced meanwhile (another inode): left alone.
    server = wait(loop, loop.create_unix_server(recorders(), path));
    REQUIRE(server);
    REQUIRE(::unlink(path.c_str()) == 0);
    Fd file(::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    (*server)->close();
    CHECK(exists(path));
    REQUIRE(::unlink(path.c_str()) == 0);

    // Already gone: ignored.
    server = wait(loop, loop.create_unix_server(recorders(), path));
    REQUIRE(server);
    REQUIRE(::unlink(path.c_str()) == 0);
    (*server)->close();
    CHECK_FALSE(exists(path));

    server = wait(loop, loop.create_unix_server(recorders(), path, {.cleanup_socket = false}));
    REQUIRE(server);
    (*server)->close();
    CHECK(exists(path));
}

TEST_CASE("155: create_unix_server with start_serving=false listens only when asked") {
    FdLeakCheck leaks;
    TempDir dir;
    EventLoop loop;
    std::string path = dir / "later.sock";
    auto server = wait(loop, loop.create_unix_server(recorders(), path, {.start_serving = false}));
    REQUIRE(server);
    CHECK_FALSE((*server)->is_serving());
    CHECK(connect_errno(*SocketAddress::unix_path(path)) == ECONNREFUSED);
    CHECK_FALSE((*server)->start_serving());
    CHECK(connect_errno(*SocketAddress::unix_path(path)) == 0);
    (*server)->close();
}
