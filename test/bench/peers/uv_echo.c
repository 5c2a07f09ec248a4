/* test/bench/peers/uv_echo.c — the libuv echo server written for speed, the
 * way a libuv user who measures would write it.
 *
 * alloc_cb hands every connection the same 64 KiB buffer (the read callback
 * is done with it before the next read), read_cb echoes with uv_try_write
 * first, which writes at once with no request and no copy; only the bytes a
 * short write leaves are copied into a uv_write request, and reading pauses
 * until it completes (flow control, and it keeps the order of the bytes).
 * Compare uv_textbook_echo.c: a malloc per read and a uv_write per read.
 *
 *   uv_echo --port 0         prints "port N", echoes until SIGTERM
 * Layer: test (a peer of test/bench/bench_suite.py). Read next: uv_textbook_echo.c.
 */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "peer_common.h"

struct conn {
    uv_tcp_t tcp; /* first: the handle's address is the connection's */
    uv_write_t write_req;
    char* rest; /* the copy a short write left, while write_req is pending */
};

static uv_loop_t* g_loop;
static char g_buffer[64 * 1024];

static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init(g_buffer, sizeof g_buffer);
}

static void on_closed(uv_handle_t* handle) {
    struct conn* c = (struct conn*)handle;
    free(c->rest);
    free(c);
}

static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

static void on_written(uv_write_t* req, int status) {
    struct conn* c = req->data;
    free(c->rest);
    c->rest = NULL;
    if (status < 0) {
        if (!uv_is_closing((uv_handle_t*)&c->tcp)) uv_close((uv_handle_t*)&c->tcp, on_closed);
        return;
    }
    uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
}

static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    struct conn* c = (struct conn*)stream;
    if (nread < 0) {
        uv_close((uv_handle_t*)stream, on_closed);
        return;
    }
    if (nread == 0) return; /* EAGAIN */
    uv_buf_t data = uv_buf_init(buf->base, (unsigned)nread); /* buf->len is the buffer's size */
    int sent = uv_try_write(stream, &data, 1);
    if (sent == UV_EAGAIN) sent = 0;
    if (sent < 0) {
        uv_close((uv_handle_t*)stream, on_closed);
        return;
    }
    if ((size_t)sent == (size_t)nread) return;
    size_t left = (size_t)nread - (size_t)sent;
    c->rest = malloc(left);
    if (!c->rest) peer_die("malloc");
    memcpy(c->rest, buf->base + sent, left);
    uv_buf_t rest = uv_buf_init(c->rest, (unsigned)left);
    c->write_req.data = c;
    uv_read_stop(stream);
    if (uv_write(&c->write_req, stream, &rest, 1, on_written) != 0) {
        free(c->rest);
        c->rest = NULL;
        uv_close((uv_handle_t*)stream, on_closed);
    }
}

static void on_connection(uv_stream_t* server, int status) {
    if (status < 0) return;
    struct conn* c = calloc(1, sizeof *c);
    if (!c) peer_die("calloc");
    uv_tcp_init(g_loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t*)&c->tcp) != 0) {
        uv_close((uv_handle_t*)&c->tcp, on_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t*)&c->tcp, on_alloc, on_read);
}

int main(int argc, char** argv) {
    int port = peer_init(argc, argv, "uv_echo");
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
