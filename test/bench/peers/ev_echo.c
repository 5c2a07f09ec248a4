/* test/bench/peers/ev_echo.c — the libev echo server: libev gives readiness
 * watchers and nothing for sockets, so the echo is the floor's (epoll_echo.c)
 * written on ev_io watchers.
 *
 * One ev_io per connection, inside a small malloc'd struct; a readable
 * connection gets one read() into a shared 64 KiB buffer and one write().
 * A short write copies the rest aside and re-arms the watcher for EV_WRITE
 * only (stop, set, start: libev's documented way to change the events),
 * then back to EV_READ once it has gone.
 *
 *   ev_echo --port 0         prints "port N", echoes until SIGTERM
 * Layer: test (a peer of test/bench/bench_suite.py). Read next: event_echo.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ev.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "peer_common.h"

struct conn {
    ev_io io; /* first: the watcher's address is the connection's */
    char* rest;
    size_t len, off;
};

static char g_buffer[64 * 1024];

static void rearm(struct ev_loop* loop, struct conn* c, int events) {
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->io.fd, events);
    ev_io_start(loop, &c->io);
}

static void drop(struct ev_loop* loop, struct conn* c) {
    ev_io_stop(loop, &c->io);
    close(c->io.fd);
    free(c->rest);
    free(c);
}

/* Writes data[0..len); returns 0 when all went, 1 when some is left, -1 on error. */
static int send_some(int fd, const char* data, size_t len, size_t* sent) {
    ssize_t n;
    do n = write(fd, data, len);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) return -1;
    *sent = n < 0 ? 0 : (size_t)n;
    return *sent == len ? 0 : 1;
}

static void on_ready(struct ev_loop* loop, ev_io* w, int revents) {
    struct conn* c = (struct conn*)w;
    size_t sent;
    if (revents & EV_WRITE) {
        int r = send_some(w->fd, c->rest + c->off, c->len - c->off, &sent);
        if (r < 0) {
            drop(loop, c);
            return;
        }
        c->off += sent;
        if (r == 0) {
            free(c->rest);
            c->rest = NULL;
            rearm(loop, c, EV_READ);
        }
        return;
    }
    ssize_t got = read(w->fd, g_buffer, sizeof g_buffer);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
    int r = got > 0 ? send_some(w->fd, g_buffer, (size_t)got, &sent) : -1;
    if (r < 0) {
        drop(loop, c);
        return;
    }
    if (r == 0) return;
    c->len = (size_t)got - sent;
    c->off = 0;
    c->rest = malloc(c->len);
    if (!c->rest) peer_die("malloc");
    memcpy(c->rest, g_buffer + sent, c->len);
    rearm(loop, c, EV_WRITE);
}

static void on_accept(struct ev_loop* loop, ev_io* w, int revents) {
    (void)revents;
    for (;;) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn* c = calloc(1, sizeof *c);
        if (!c) peer_die("calloc");
        ev_io_init(&c->io, on_ready, fd, EV_READ);
        ev_io_start(loop, &c->io);
    }
}

int main(int argc, char** argv) {
    int port = peer_init(argc, argv, "ev_echo");
    int listener = peer_listen(port, SOCK_NONBLOCK);
    struct ev_loop* loop = ev_default_loop(EVFLAG_AUTO);
    ev_io accept_watcher;
    ev_io_init(&accept_watcher, on_accept, listener, EV_READ);
    ev_io_start(loop, &accept_watcher);
    peer_announce(listener);
    ev_run(loop, 0);
    return 0;
}
