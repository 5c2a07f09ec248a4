/* test/bench/peers/epoll_echo.c — the floor of the echo comparison: what the
 * kernel's loopback costs with the fewest syscalls per message, no library.
 *
 * Level-triggered epoll; per readable connection one read() into a shared
 * 64 KiB buffer and one write() of what was read. Only a short write keeps
 * bytes back: they are copied aside, the connection switches to EPOLLOUT
 * (and stops reading, the flow control every transport applies) until they
 * are gone. So the steady path is read + write + (sometimes) epoll_wait, and
 * epoll_ctl runs only on accept and on a short write.
 *
 *   epoll_echo --port 0      prints "port N" once listening on 127.0.0.1,
 *                            echoes until SIGTERM
 * Layer: test (a peer of test/bench/bench_suite.py). Read next: uv_echo.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer_common.h"

/* What a short write left behind, per fd; `data == NULL` when nothing is. */
struct pending {
    char* data;
    size_t len, off;
};

static struct pending* g_pending;
static size_t g_pending_cap;
static int g_ep;

static struct pending* pending_for(int fd) {
    if ((size_t)fd >= g_pending_cap) {
        size_t cap = g_pending_cap ? g_pending_cap : 1024;
        while (cap <= (size_t)fd) cap *= 2;
        g_pending = realloc(g_pending, cap * sizeof *g_pending);
        if (!g_pending) peer_die("realloc");
        memset(g_pending + g_pending_cap, 0, (cap - g_pending_cap) * sizeof *g_pending);
        g_pending_cap = cap;
    }
    return &g_pending[fd];
}

static void watch(int fd, int op, unsigned events) {
    struct epoll_event ev = {.events = events, .data = {.fd = fd}};
    if (epoll_ctl(g_ep, op, fd, &ev) != 0) peer_die("epoll_ctl");
}

static void drop(int fd) {
    struct pending* p = pending_for(fd);
    free(p->data);
    p->data = NULL;
    close(fd); /* also leaves the epoll set: nothing else holds the file */
}

/* Writes data[0..len); keeps what the socket did not take. */
static void send_or_keep(int fd, const char* data, size_t len, int was_pending) {
    ssize_t n;
    do n = write(fd, data, len);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN) {
        drop(fd);
        return;
    }
    size_t sent = n < 0 ? 0 : (size_t)n;
    struct pending* p = pending_for(fd);
    if (sent == len) {
        if (was_pending) {
            free(p->data);
            p->data = NULL;
            watch(fd, EPOLL_CTL_MOD, EPOLLIN);
        }
        return;
    }
    if (was_pending) {
        p->off += sent;
        return;
    }
    p->data = malloc(len - sent);
    if (!p->data) peer_die("malloc");
    memcpy(p->data, data + sent, len - sent);
    p->len = len - sent;
    p->off = 0;
    watch(fd, EPOLL_CTL_MOD, EPOLLOUT);
}

static void accept_all(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN: all taken; anything else: try again on the next event */
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pending_for(fd)->data = NULL;
        watch(fd, EPOLL_CTL_ADD, EPOLLIN);
    }
}

int main(int argc, char** argv) {
    int port = peer_init(argc, argv, "epoll_echo");
    int listener = peer_listen(port, SOCK_NONBLOCK);
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0) peer_die("epoll_create1");
    watch(listener, EPOLL_CTL_ADD, EPOLLIN);
    peer_announce(listener);

    static char buffer[64 * 1024];
    struct epoll_event events[64];
    for (;;) {
        int n = epoll_wait(g_ep, events, 64, -1);
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                accept_all(listener);
                continue;
            }
            struct pending* p = pending_for(fd);
            if (p->data) {
                send_or_keep(fd, p->data + p->off, p->len - p->off, 1);
                continue;
            }
            ssize_t got = read(fd, buffer, sizeof buffer);
            if (got > 0)
                send_or_keep(fd, buffer, (size_t)got, 0);
            else if (got == 0 || (errno != EAGAIN && errno != EINTR))
                drop(fd);
        }
    }
}
