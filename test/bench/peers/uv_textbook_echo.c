/* test/bench/peers/uv_textbook_echo.c — the libuv echo server as libuv's own
 * guide teaches it, which is how most libuv code starts out.
 *
 * alloc_cb mallocs the suggested size (64 KiB) for every read, read_cb hands
 * that buffer to a uv_write request of its own (malloc'd too), and the write
 * callback, which libuv calls on a later pass of the loop, frees both. The
 * issue quotes its figures beside uv_echo.c's (uv_try_write and one reused
 * buffer) to show what those two changes are worth.
 *
 *   uv_textbook_echo --port 0   prints "port N", echoes until SIGTERM
 * Layer: test (a peer of test/bench/bench_suite.py). Read next: ev_echo.c.
 */
#include <stdlib.h>
#include <uv.h>

#include "peer_common.h"

struct echo_write {
    uv_write_t req;
    uv_buf_t buf;
};

static uv_loop_t* g_loop;

static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
    (void)handle;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void on_closed(uv_handle_t* handle) { free(handle); }

static void on_written(uv_write_t* req, int status) {
    (void)status; /* an error shows up again as a failed read, which closes */
    struct echo_write* w = (struct echo_write*)req;
    free(w->buf.base);
    free(w);
}

static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    if (nread > 0) {
        struct echo_write* w = malloc(sizeof *w);
        if (!w) peer_die("malloc");
        w->buf = uv_buf_init(buf->base, (unsigned)nread);
        if (uv_write(&w->req, stream, &w->buf, 1, on_written) == 0) return;
        free(w);
    }
    if (nread < 0) uv_close((uv_handle_t*)stream, on_closed);
    free(buf->base);
}

static void on_connection(uv_stream_t* server, int status) {
    if (status < 0) return;
    uv_tcp_t* client = malloc(sizeof *client);
    if (!client) peer_die("malloc");
    uv_tcp_init(g_loop, client);
    if (uv_accept(server, (uv_stream_t*)client) != 0) {
        uv_close((uv_handle_t*)client, on_closed);
        return;
    }
    uv_tcp_nodelay(client, 1); /* as every server in the comparison */
    uv_read_start((uv_stream_t*)client, on_alloc, on_read);
}

int main(int argc, char** argv) {
    int port = peer_init(argc, argv, "uv_textbook_echo");
    g_loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(g_loop, &server);
    struct sockaddr_in address;
    uv_ip4_addr("127.0.0.1", port, &address);
    if (uv_tcp_bind(&server, (const struct sockaddr*)&address, 0) != 0 ||
        uv_listen((uv_stream_t*)&server, PEER_BACKLOG, on_connection) != 0)
        peer_die("listen");
    uv_os_fd_t fd;
    uv_fileno((uv_handle_t*)&server, &fd);
    peer_announce(fd);
    return uv_run(g_loop, UV_RUN_DEFAULT);
}
