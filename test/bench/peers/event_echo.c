/* test/bench/peers/event_echo.c — the libevent echo server, the idiomatic
 * way: an evconnlistener accepts, each connection is a bufferevent, and the
 * read callback moves the whole input evbuffer to the output one
 * (bufferevent_write_buffer moves the chains, it does not copy bytes).
 *
 * What that costs is libevent's design, kept as is: a bufferevent enables
 * its write event when output is queued and disables it once flushed (the
 * epoll_ctl calls the issue counts), and libevent 2.1 reads at most 4 KiB
 * per read() (EVBUFFER_MAX_READ), so a 100 KiB message takes 25 reads and
 * 25 writes; a typical libevent program leaves those defaults alone.
 *
 *   event_echo --port 0      prints "port N", echoes until SIGTERM
 * Layer: test (a peer of test/bench/bench_suite.py). Read next: asio_echo.cpp.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/tcp.h>

#include "peer_common.h"

static void on_read(struct bufferevent* bev, void* arg) {
    (void)arg;
    bufferevent_write_buffer(bev, bufferevent_get_input(bev));
}

static void on_event(struct bufferevent* bev, short events, void* arg) {
    (void)arg;
    if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) bufferevent_free(bev);
}

static void on_accept(struct evconnlistener* listener, evutil_socket_t fd, struct sockaddr* address, int size,
                      void* arg) {
    (void)address;
    (void)size;
    (void)arg;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct event_base* base = evconnlistener_get_base(listener);
    struct bufferevent* bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        close(fd);
        return;
    }
    bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int main(int argc, char** argv) {
    int port = peer_init(argc, argv, "event_echo");
    struct event_base* base = event_base_new();
    if (!base) peer_die("event_base_new");
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons((unsigned short)port);
    struct evconnlistener* listener =
        evconnlistener_new_bind(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, PEER_BACKLOG,
                                (struct sockaddr*)&address, sizeof address);
    if (!listener) peer_die("evconnlistener_new_bind");
    peer_announce(evconnlistener_get_fd(listener));
    event_base_dispatch(base);
    return 0;
}
