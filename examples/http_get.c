/* SPDX-License-Identifier: MIT */
/* http_get.c: the tutorials' get_html: GET / from several servers at once, line by line. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <weft/weft.h>

#include "common.h"

/*
 * http_get [TLS options] HOST[:PORT] ...   GET / from each, concurrently; prints status and size
 * http_get                   demo: two tiny HTTP servers started here
 *
 * --timeout SECONDS     the connect and each read (default 10)
 * TLS options (HTTPS; the port defaults to 443, ALPN offers http/1.1):
 *   --tls                 verify the server against the system's CA store
 *   --cafile FILE         verify against the CAs in FILE
 *   --servername NAME     the name to send (SNI) and check; default: the host
 */

#define USAGE \
    "usage: example_http_get [--tls] [--cafile FILE] [--servername NAME] [--timeout SECONDS]\n" \
    "                        [HOST[:PORT] ...]\n" \
    "GET / from each server at once and print its status line and size; the response is\n" \
    "read as its framing says (Content-Length, chunked, or to EOF), so keep-alive servers\n" \
    "answer at once. --timeout: for the connect and each read (default 10). With no\n" \
    "server: a demo against two tiny servers started here.\n"

struct get {
    char host[128];
    uint16_t port;
    char status[128];
    size_t lines, bytes;
};

static struct weft_loop *loop;
static struct weft_stream_options conn_opts;    /* .tls and .server_hostname */

static int64_t timeout_ms = 10000;             /* -t SECONDS: each read, and the connect */

/* Count n received bytes of buf into g. */
static void
tally(struct get *g, const char *buf, size_t n)
{
    g->bytes += n;
    for (size_t i = 0; i < n; i++)
        g->lines += buf[i] == '\n';
}

/* Read exactly n bytes of body. 0, or a negative code (-WEFT_EINCOMPLETE: EOF first). */
static int
read_body(struct weft_reader *r, struct get *g, uint64_t n)
{
    char buf[4096];

    while (n > 0) {
        ssize_t k = weft_reader_read(r, buf, n < sizeof(buf) ? (size_t)n : sizeof(buf));
        if (k <= 0)
            return k == 0 ? -WEFT_EINCOMPLETE : (int)k;
        tally(g, buf, (size_t)k);
        n -= (uint64_t)k;
    }
    return 0;
}

/* A chunked body (RFC 9112 §7.1): size lines, data, CRLF; the trailers to the blank line. */
static int
read_chunked(struct weft_reader *r, struct get *g)
{
    char line[256];
    ssize_t n;

    for (;;) {
        char *end;
        if ((n = weft_reader_readline(r, line, sizeof(line))) <= 0)
            return n == 0 ? -WEFT_EINCOMPLETE : (int)n;
        unsigned long long size = strtoull(line, &end, 16);
        if (end == line)
            return -EPROTO;
        if (size == 0)
            break;
        int rc = read_body(r, g, size);
        if (rc < 0)
            return rc;
        if ((n = weft_reader_readline(r, line, sizeof(line))) <= 0)     /* the CRLF */
            return n == 0 ? -WEFT_EINCOMPLETE : (int)n;
    }
    while ((n = weft_reader_readline(r, line, sizeof(line))) > 0 && strcmp(line, "\r\n") != 0)
        ;                                                               /* trailers */
    return n < 0 ? (int)n : 0;
}

/*
 * GET / and read one response as its framing says: Content-Length bytes, a chunked body,
 * or (neither: HTTP/1.0 style) to EOF. The connection stays open (keep-alive) until then,
 * so a keep-alive server answers at once instead of after its idle timeout.
 */
static intptr_t
get_html(void *arg)
{
    struct get *g = arg;
    struct weft_reader *r;
    struct weft_writer *w;
    char req[256];
    const char *line;
    ssize_t n;
    int rc, len;
    bool chunked = false, have_length = false;
    uint64_t length = 0;

    printf("get_html %s:%u...\n", g->host, g->port);
    rc = weft_open_connection(g->host, g->port, &conn_opts, &r, &w);
    if (rc < 0) {
        snprintf(g->status, sizeof(g->status), "failed: %s", weft_strerror(rc));
        return rc;
    }
    weft_reader_set_timeout(r, timeout_ms);
    len = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", g->host);
    weft_writer_write(w, req, (size_t)len);
    rc = weft_writer_drain(w);
    /* The head, line by line (async for line in reader), to the blank line. */
    while (rc == 0 && (n = weft_reader_next_line(r, &line)) > 0) {
        if (g->lines++ == 0)
            snprintf(g->status, sizeof(g->status), "%.*s", (int)strcspn(line, "\r\n"), line);
        g->bytes += (size_t)n;
        if (line[0] == '\r' || line[0] == '\n')
            break;
        if (strncasecmp(line, "Content-Length:", 15) == 0) {
            have_length = true;
            length = strtoull(line + 15, NULL, 10);
        } else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 &&
                   strstr(line, "chunked") != NULL) {
            chunked = true;
        }
    }
    if (rc == 0 && n < 0)
        rc = (int)n;
    if (rc == 0 && g->lines == 0)
        rc = -WEFT_EINCOMPLETE;
    if (rc == 0 && chunked)
        rc = read_chunked(r, g);
    else if (rc == 0 && have_length)
        rc = read_body(r, g, length);
    else
        while (rc == 0 && (n = weft_reader_next_line(r, &line)) != 0) {
            if (n < 0) {
                rc = (int)n;
                break;
            }
            tally(g, line, (size_t)n);
        }
    if (rc < 0 && g->status[0] == '\0')
        snprintf(g->status, sizeof(g->status), "failed: %s", weft_strerror(rc));
    else if (rc < 0)
        snprintf(g->status + strlen(g->status), sizeof(g->status) - strlen(g->status),
                 " (then: %s)", weft_strerror(rc));
    /* The connection is still open (keep-alive): close it and wait, so that a TLS
     * close_notify goes out and the transport is gone before the loop is. */
    weft_writer_close(w);
    weft_writer_wait_closed(w, timeout_ms);
    weft_writer_free(w);
    return rc;
}

/* ---- demo servers ---- */

static int
tiny_http(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    const char *name = arg;
    char line[1024], body[128], head[256];
    int blen, hlen;
    ssize_t n;

    while ((n = weft_reader_readline(r, line, sizeof(line))) > 0 && strcmp(line, "\r\n") != 0)
        ;
    if (n <= 0)
        return (int)n;
    blen = snprintf(body, sizeof(body), "<html>\n<body>\n<p>hello from %s</p>\n</body>\n</html>\n",
                    name);
    hlen = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                    "Content-Length: %d\r\nConnection: close\r\n\r\n", blen);
    weft_writer_write(w, head, (size_t)hlen);
    weft_writer_write(w, body, (size_t)blen);
    return weft_writer_drain(w);
}

static intptr_t
main_task(void *arg)
{
    struct get *g = arg;
    struct weft_future *futs[16] = { NULL };
    struct weft_task *t[16];
    size_t n = 0;

    while (g[n].port != 0)
        if (++n > 16)
            return -E2BIG;          /* main() takes at most 16 servers */
    for (size_t i = 0; i < n; i++) {
        if ((t[i] = weft_task_spawn(loop, get_html, &g[i], NULL)) == NULL)
            return -ENOMEM;
        futs[i] = weft_task_future(t[i]);
    }
    weft_gather(futs, n, NULL, WEFT_GATHER_RETURN_ERRORS);
    for (size_t i = 0; i < n; i++) {
        printf("%s:%u: %s (%zu lines, %zu bytes)\n", g[i].host, g[i].port, g[i].status,
               g[i].lines, g[i].bytes);
        weft_task_unref(t[i]);
    }
    weft_loop_stop(loop);
    return 0;
}

int
main(int argc, char **argv)
{
    static struct get g[17];
    static const char *const names[] = { "first", "second" };
    struct weft_stream_server *srv[2] = { NULL, NULL };
    static const char *const alpn[] = { "http/1.1", NULL };
    struct example_tls tls = { .opts = { .alpn = alpn }, .conn = &conn_opts };
    int n = 0, first = 1;
    int code = example_args(argc, argv, EXAMPLE_ARGS_OWN, USAGE);

    if (code >= 0)
        return code;
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
        if (example_tls_arg(argc, argv, &first, &tls)) {
            continue;
        } else if (strcmp(argv[first], "--timeout") == 0 && first + 1 < argc &&
                   atoi(argv[first + 1]) > 0) {
            timeout_ms = (int64_t)atoi(argv[++first]) * 1000;
        } else {
            fputs(USAGE, stderr);
            return 2;
        }
    }
    conn_opts.connect_timeout_ms = (uint64_t)timeout_ms;
    if (example_tls_start("http_get", &tls) != 0)
        return 1;
    loop = weft_loop_new();
    if (loop == NULL)
        return 1;
    for (int i = first; i < argc && n < 16; i++, n++) {
        const char *colon = strrchr(argv[i], ':');

        snprintf(g[n].host, sizeof(g[n].host), "%.*s",
                 colon ? (int)(colon - argv[i]) : (int)strlen(argv[i]), argv[i]);
        g[n].port = colon ? (uint16_t)atoi(colon + 1) : tls.use ? 443 : 80;
    }
    for (int i = 0; first == argc && i < 2; i++, n++) {
        struct sockaddr_in sin;
        socklen_t sl = sizeof(sin);

        if (weft_start_server(loop, tiny_http, (void *)names[i], "127.0.0.1", 0, NULL,
                              &srv[i]) < 0 ||
            weft_stream_server_get_sockname(srv[i], 0, (struct sockaddr *)&sin, &sl) < 0)
            return 1;
        snprintf(g[n].host, sizeof(g[n].host), "127.0.0.1");
        g[n].port = ntohs(sin.sin_port);
    }
    weft_task_unref(weft_task_spawn(loop, main_task, g, NULL));
    weft_loop_run(loop);
    for (int i = 0; i < 2; i++)
        weft_stream_server_free(srv[i]);
    for (int k = 0; k < 50 && weft_stream_handler_count(loop) > 0; k++)
        weft_loop_run_once(loop);
    weft_loop_free(loop);
    weft_tls_context_free(tls.ctx);
    return 0;
}
