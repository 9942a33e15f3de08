/* SPDX-License-Identifier: MIT */
/* crawler.c: the tutorials' selector crawler: raw non-blocking sockets on add_reader/add_writer. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include "common.h"

/*
 * crawler IP:PORT PATH ...   GET each path from the server at once, HTTP/1.0, no tasks
 * crawler                    demo: a tiny HTTP server started here, three paths
 *
 * asyncio's selector crawler (the one before coroutines): each fetch is a
 * state machine of callbacks. connect() in progress -> a writer, which sends
 * the request once the socket is writable and swaps itself for a reader,
 * which reads to EOF; the last one done stops the loop. The demo's server
 * uses the stream layer; the crawler itself only weft_add_reader/writer.
 */

#define USAGE \
    "usage: example_crawler [IP:PORT PATH ...]\n" \
    "GET every PATH from the server at IP:PORT (numeric IPv4) at once over raw non-blocking\n" \
    "sockets driven by weft_add_reader/weft_add_writer; print each status line and size.\n" \
    "With no arguments: a demo against a tiny server started here.\n"

struct fetch {
    struct weft_loop *loop;
    struct sockaddr_in addr;
    const char *path;
    int fd;
    char req[256];
    size_t req_len, sent;
    char status[128];
    size_t bytes;
    int error;              /* 0 or a negative errno */
};

static int pending;         /* fetches not done yet */

static void
fetch_done(struct fetch *f, int error)
{
    weft_remove_reader(f->loop, f->fd);
    weft_remove_writer(f->loop, f->fd);
    close(f->fd);
    f->fd = -1;
    f->error = error;
    if (--pending == 0)
        weft_loop_stop(f->loop);
}

/* Readable: take what is there; EOF ends the response (HTTP/1.0, Connection: close). */
static int
on_response(struct weft_loop *loop, int fd, void *arg)
{
    struct fetch *f = arg;
    char buf[4096];
    ssize_t n;

    (void)loop;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
        if (f->bytes == 0) {
            size_t k = 0;

            while (k < (size_t)n && k + 1 < sizeof(f->status) && buf[k] != '\r' && buf[k] != '\n')
                k++;
            memcpy(f->status, buf, k);      /* the status line, if in the first read */
            f->status[k] = '\0';
        }
        f->bytes += (size_t)n;
    }
    if (n == 0)
        fetch_done(f, 0);
    else if (errno != EAGAIN && errno != EINTR)
        fetch_done(f, -errno);
    return 0;
}

/* Writable: first the connect's outcome, then as much of the request as fits. */
static int
on_writable(struct weft_loop *loop, int fd, void *arg)
{
    struct fetch *f = arg;
    int err = 0;
    socklen_t len = sizeof(err);
    ssize_t n;

    if (f->sent == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0)) {
        fetch_done(f, err ? -err : -errno);
        return 0;
    }
    n = send(fd, f->req + f->sent, f->req_len - f->sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
        fetch_done(f, -errno);
        return 0;
    }
    if (n > 0 && (f->sent += (size_t)n) == f->req_len) {
        weft_remove_writer(loop, fd);
        return weft_add_reader(loop, fd, on_response, f);    /* an error: the handler says */
    }
    return 0;
}

static int
fetch_start(struct fetch *f)
{
    int rc;

    f->req_len = (size_t)snprintf(f->req, sizeof(f->req),
                                  "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", f->path,
                                  inet_ntoa(f->addr.sin_addr));
    f->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->fd < 0)
        return -errno;
    if (connect(f->fd, (struct sockaddr *)&f->addr, sizeof(f->addr)) < 0 &&
        errno != EINPROGRESS) {
        rc = -errno;
        close(f->fd);
        return rc;
    }
    if ((rc = weft_add_writer(f->loop, f->fd, on_writable, f)) < 0) {
        close(f->fd);
        return rc;
    }
    pending++;
    return 0;
}

/* ---- the demo's server (streams) ---- */

static int
tiny_http(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    char line[1024], path[256] = "?", body[256], head[256];
    int blen, hlen;
    ssize_t n;

    (void)arg;
    if ((n = weft_reader_readline(r, line, sizeof(line))) > 0)
        sscanf(line, "GET %255s", path);
    while (n > 0 && strcmp(line, "\r\n") != 0)
        n = weft_reader_readline(r, line, sizeof(line));
    if (n <= 0)
        return (int)n;
    blen = snprintf(body, sizeof(body), "<html><body><p>this is %s</p></body></html>\n", path);
    hlen = snprintf(head, sizeof(head), "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n"
                    "Content-Length: %d\r\nConnection: close\r\n\r\n", blen);
    weft_writer_write(w, head, (size_t)hlen);
    weft_writer_write(w, body, (size_t)blen);
    return weft_writer_drain(w);     /* returning closes the connection: the client's EOF */
}

int
main(int argc, char **argv)
{
    static const char *const demo_paths[] = { "/", "/about", "/blog/fd-watching" };
    static struct fetch f[64];
    struct weft_stream_server *srv = NULL;
    struct weft_loop *loop;
    struct sockaddr_in addr = { .sin_family = AF_INET };
    const char *const *paths;
    int code = example_args(argc, argv, EXAMPLE_ARGS_OWN, USAGE), n, failed = 0;
    uint64_t t0;

    if (code >= 0)
        return code;
    if (argc == 2 || argc > 2 + 64) {
        fputs(USAGE, stderr);
        return 2;
    }
    if ((loop = example_loop_new("crawler")) == NULL)
        return 1;
    if (argc > 2) {
        char host[64];
        const char *colon = strrchr(argv[1], ':');

        snprintf(host, sizeof(host), "%.*s", colon ? (int)(colon - argv[1]) : 0, argv[1]);
        if (colon == NULL || inet_pton(AF_INET, host, &addr.sin_addr) != 1 ||
            atoi(colon + 1) <= 0 || atoi(colon + 1) > 65535) {
            fputs(USAGE, stderr);
            weft_loop_free(loop);
            return 2;
        }
        addr.sin_port = htons((uint16_t)atoi(colon + 1));
        paths = (const char *const *)argv + 2;
        n = argc - 2;
    } else {
        socklen_t sl = sizeof(addr);

        if (weft_start_server(loop, tiny_http, NULL, "127.0.0.1", 0, NULL, &srv) < 0 ||
            weft_stream_server_get_sockname(srv, 0, (struct sockaddr *)&addr, &sl) < 0) {
            fprintf(stderr, "crawler: cannot start the demo server\n");
            weft_loop_free(loop);
            return 1;
        }
        paths = demo_paths;
        n = 3;
    }
    t0 = weft_loop_time(loop);
    for (int i = 0; i < n; i++) {
        int rc;

        f[i] = (struct fetch){ .loop = loop, .addr = addr, .path = paths[i], .fd = -1 };
        if ((rc = fetch_start(&f[i])) < 0)
            f[i].error = rc;
    }
    if (pending > 0)
        weft_loop_run(loop);
    for (int i = 0; i < n; i++) {
        if (f[i].error < 0) {
            failed++;
            printf("%s: failed: %s\n", f[i].path, weft_strerror(f[i].error));
        } else {
            printf("%s: %s (%zu bytes)\n", f[i].path, f[i].status, f[i].bytes);
        }
    }
    printf("%d of %d fetched in %.3f s\n", n - failed, n,
           (double)(weft_loop_time(loop) - t0) / 1000.0);
    weft_stream_server_free(srv);
    for (int k = 0; k < 50 && weft_stream_handler_count(loop) > 0; k++)
        weft_loop_run_once(loop);
    weft_loop_free(loop);
    return failed > 0;
}
