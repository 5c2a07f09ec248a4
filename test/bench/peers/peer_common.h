/* test/bench/peers/peer_common.h — the command line and start-up every C peer
 * echo server shares, so that they differ only in how they echo.
 *
 * Each server is run as `<server> --port 0` (or a fixed port): it listens on
 * 127.0.0.1, prints exactly one line "port N" on stdout (flushed) once
 * listening, and echoes until SIGTERM (whose default action ends it; the
 * driver reads its CPU time from /proc before that).
 * Layer: test. Read next: epoll_echo.c.
 */
#ifndef EVLOOP_BENCH_PEER_COMMON_H
#define EVLOOP_BENCH_PEER_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The listen() backlog of every peer: the idle-memory run connects in batches
 * well below it, so no connection waits for a SYN retry. */
#define PEER_BACKLOG 1024

static inline void peer_die(const char* what) {
    fprintf(stderr, "echo peer: %s: %s\n", what, strerror(errno));
    exit(2);
}

/* Reads the one argument, "--port N", and returns N (0: any free port).
 * Also ignores SIGPIPE, as every server must: a write to a connection the
 * client has closed then fails with EPIPE instead of killing the process
 * (libuv, libev and libevent leave this to the program). */
static inline int peer_init(int argc, char** argv, const char* name) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "--port") == 0) {
        int port = atoi(argv[2]);
        if (port >= 0 && port <= 65535) return port;
    }
    fprintf(stderr, "usage: %s --port N (0: any free port)\n", name);
    exit(2);
}

/* A listening TCP socket on 127.0.0.1:port, close-on-exec, plus `flags`
 * (SOCK_NONBLOCK) for the servers that accept from a loop. */
static inline int peer_listen(int port, int flags) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
    if (fd < 0) peer_die("socket");
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr*)&address, sizeof address) != 0) peer_die("bind");
    if (listen(fd, PEER_BACKLOG) != 0) peer_die("listen");
    return fd;
}

/* Prints "port N" for the listening socket fd: the driver waits for it. */
static inline void peer_announce(int listener) {
    struct sockaddr_in address;
    socklen_t size = sizeof address;
    if (getsockname(listener, (struct sockaddr*)&address, &size) != 0) peer_die("getsockname");
    printf("port %d\n", ntohs(address.sin_port));
    fflush(stdout);
}

#endif
