// docs/examples/chat_server.cpp — a line-based chat over TCP: every complete
// line a client sends is broadcast to every other client.
//
// What it shows beyond the echo server:
//  - protocols sharing state: the Room holds the set of connected clients;
//    a client joins in connection_made and leaves in connection_lost, which
//    the transport calls exactly once, however the connection ended;
//  - partial lines: TCP delivers bytes, not lines, so data_received keeps
//    what follows the last '\n' until the rest arrives;
//  - ending a connection properly: a client that shuts its writing side
//    (write_eof, `nc -N`) gets its unterminated last line delivered, then
//    eof_received returns false so the transport closes; "/quit" and the
//    server's shutdown write a goodbye and close(), which still sends what
//    is buffered (abort() would drop it).
//
//   chat_server [PORT]       serve on every interface (default port 8888);
//                            try two `nc localhost 8888` in two terminals
//   chat_server --selftest   three clients of its own, in the same loop, chat,
//                            leave; exit 0 if every line went where it should
// Read next: docs/examples/unix_server.cpp.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "evloop.hpp"

namespace {

class ChatClient;

// Everyone connected. Raw pointers are safe: a client removes itself in
// connection_lost, and its transport keeps it alive until that returns.
struct Room {
    std::set<ChatClient*> members;
    int joined_ever = 0;

    void broadcast(const ChatClient* from, const std::string& text);
    void close_all(const std::string& goodbye);
};

class ChatClient final : public evloop::Protocol {
public:
    explicit ChatClient(Room& room) : room_(room) {}

    void connection_made(evloop::Transport& transport) override {
        transport_ = &transport;
        name_ = "client " + std::to_string(++room_.joined_ever);
        send("* welcome, you are " + name_ + "; " + std::to_string(room_.members.size()) + " others here\n");
        room_.broadcast(this, "* " + name_ + " joined\n");
        room_.members.insert(this);
        std::printf("%s joined\n", name_.c_str());
    }
    void data_received(std::string_view data) override {
        partial_.append(data);
        std::size_t start = 0;
        for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
            std::string_view line(partial_.data() + start, nl - start);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // telnet sends CRLF
            if (line == "/quit") {
                send("* bye\n");
                transport_->close();  // connection_lost follows, from its own callback
                return;
            }
            room_.broadcast(this, name_ + ": " + std::string(line) + "\n");
        }
        partial_.erase(0, start);
    }
    bool eof_received() override {
        if (!partial_.empty()) room_.broadcast(this, name_ + ": " + partial_ + "\n");
        partial_.clear();
        return false;  // nothing more will come: let the transport close
    }
    void connection_lost(std::error_code error) override {
        room_.members.erase(this);
        room_.broadcast(this, "* " + name_ + " left\n");
        std::printf("%s left%s%s\n", name_.c_str(), error ? ": " : "", error ? error.message().c_str() : "");
    }

    void send(const std::string& text) {
        if (transport_->is_closing()) return;
        // A client that stops reading would make us buffer without bound.
        if (transport_->get_write_buffer_size() > 1024 * 1024) {
            transport_->abort();
            return;
        }
        (void)transport_->write(text);
    }
    void close() { transport_->close(); }

private:
    Room& room_;
    evloop::Transport* transport_ = nullptr;  // valid until connection_lost returns
    std::string name_;
    std::string partial_;  // bytes after the last '\n' seen
};

void Room::broadcast(const ChatClient* from, const std::string& text) {
    for (ChatClient* member : members)
        if (member != from) member->send(text);
}

void Room::close_all(const std::string& goodbye) {
    // close() never calls connection_lost at once, so `members` does not
    // change under the loop.
    for (ChatClient* member : members) {
        member->send(goodbye);
        member->close();
    }
}

// ---- the self-test: three clients of our own, in the same loop -------------

// Records everything it receives; until(text) is done once `text` has been seen.
class Recorder final : public evloop::Protocol {
public:
    explicit Recorder(evloop::EventLoop& loop) : closed(loop), loop_(loop) {}

    std::string received;
    evloop::Future<void> closed;  // done at connection_lost

    evloop::Future<void> until(std::string text) {
        awaited_ = std::move(text);
        seen_.emplace(loop_);
        check();
        return *seen_;
    }
    void data_received(std::string_view data) override {
        received.append(data);
        check();
    }
    void connection_lost(std::error_code) override {
        if (seen_ && !seen_->done()) (void)seen_->set_error(make_error_code(std::errc::connection_aborted));
        (void)closed.set_result();
    }

private:
    void check() {
        if (seen_ && !seen_->done() && received.find(awaited_) != std::string::npos) (void)seen_->set_result();
    }
    evloop::EventLoop& loop_;
    std::string awaited_;
    std::optional<evloop::Future<void>> seen_;
};

evloop::Task<void> selftest(evloop::EventLoop& loop, Room& room) {
    auto server = co_await loop.create_server([&room] { return std::make_shared<ChatClient>(room); }, "127.0.0.1", 0);
    if (!server) co_await evloop::fail(server.error());
    const int port = (*server)->addresses().at(0).port();

    // One at a time, each waiting for its welcome, so they are client 1, 2, 3.
    std::vector<evloop::Connection> c;
    for (int i = 0; i < 3; ++i) {
        auto conn = co_await loop.create_connection([&loop] { return std::make_shared<Recorder>(loop); },
                                                    "127.0.0.1", port);
        if (!conn) co_await evloop::fail(conn.error());
        if (!co_await conn->protocol_as<Recorder>().until("* welcome")) co_await evloop::fail(evloop::errc::timeout);
        c.push_back(*conn);
    }
    auto rec = [&c](int i) -> Recorder& { return c[static_cast<std::size_t>(i)].protocol_as<Recorder>(); };

    // A line cut in two: the server must wait for its second half.
    (void)c[0].transport->write("hello fr");
    (void)co_await evloop::sleep(0.02);
    (void)c[0].transport->write("om 1\nand a second line\n");
    (void)c[1].transport->write("hi, 1\n");
    for (int i : {1, 2})
        if (!co_await rec(i).until("client 1: and a second line\n")) co_await evloop::fail(evloop::errc::timeout);
    if (!co_await rec(2).until("client 2: hi, 1\n")) co_await evloop::fail(evloop::errc::timeout);
    if (!co_await rec(0).until("client 2: hi, 1\n")) co_await evloop::fail(evloop::errc::timeout);

    // Client 3 leaves with an unterminated line and write_eof.
    (void)c[2].transport->write("no newline at the end");
    c[2].transport->write_eof();
    if (!co_await rec(0).until("* client 3 left\n")) co_await evloop::fail(evloop::errc::timeout);
    (void)co_await rec(2).closed;

    // Shutdown: stop listening, say goodbye, close the others, wait for all.
    (*server)->close();
    room.close_all("* server shutting down\n");
    if (auto closed = co_await (*server)->wait_closed(); !closed) co_await evloop::fail(closed.error());
    for (int i : {0, 1}) (void)co_await rec(i).closed;

    const std::string& one = rec(0).received;
    const std::string& two = rec(1).received;
    bool ok = two.find("client 1: hello from 1\n") != std::string::npos &&
              two.find("client 3: no newline at the end\n") != std::string::npos &&
              one.find("hello from 1") == std::string::npos &&  // never echoed to its sender
              one.find("* server shutting down\n") != std::string::npos && room.members.empty();
    std::printf("--- what client 2 saw:\n%s---\n", two.c_str());
    if (!ok) co_await evloop::fail(evloop::errc::invalid_state);
    std::printf("selftest: passed\n");
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    // Declared before the loop, so it outlives every protocol that points to it.
    Room room;
    evloop::EventLoop loop;
    if (argc > 1 && std::strcmp(argv[1], "--selftest") == 0) {
        // wait_for: a broken build fails in two seconds instead of hanging CI.
        auto result = loop.run_until_complete(evloop::wait_for(selftest(loop, room), 2.0));
        if (!result) std::fprintf(stderr, "selftest FAILED: %s\n", result.error().message().c_str());
        (void)loop.close();
        return result ? 0 : 1;
    }

    const int port = argc > 1 ? std::atoi(argv[1]) : 8888;
    auto server = loop.run_until_complete(
        loop.create_server([&room] { return std::make_shared<ChatClient>(room); }, "", port));
    if (!server) {
        std::fprintf(stderr, "cannot listen on port %d: %s\n", port, server.error().message().c_str());
        return 1;
    }
    std::printf("chat server on port %d\n", port);
    (void)loop.run_forever();  // until the process is interrupted
    return 0;
}
