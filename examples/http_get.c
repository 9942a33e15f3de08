/* SPDX-License-Identifier: MIT */
/* http_get.c: the tutorials' get_html: GET / from several servers at once, line by line. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

/*
 * http_get [TLS options] HOST[:PORT] ...   GET / from each, concurrently; prints status and size
 * http_get                   demo: two tiny HTTP servers started here
 *
 * TLS options (HTTPS; the port defaults to 443, ALPN offers http/1.1):
 *   --tls                 verify the server against the system's CA store
 *   --cafile FILE         verify against the CAs in FILE
 *   --servername NAME     the name to send (SNI) and check; default: the host
 */

struct get {
    char host[128];
    uint16_t port;
    char status[128];
    size_t lines, bytes;
};

static struct weft_loop *loop;
static struct weft_stream_options conn_opts;    /* .tls and .server_hostname */

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

    printf("get_html %s:%u...\n", g->host, g->port);
    rc = weft_open_connection(g->host, g->port, &conn_opts, &r, &w);
    if (rc < 0) {
        snprintf(g->status, sizeof(g->status), "failed: %s", weft_strerror(rc));
        return rc;
    }
    len = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                   g->host);
    weft_writer_write(w, req, (size_t)len);
    rc = weft_writer_drain(w);
    /* async for line in reader: */
    while (rc == 0 && (n = weft_reader_next_line(r, &line)) > 0) {
        if (g->lines++ == 0)
            snprintf(g->status, sizeof(g->status), "%.*s", (int)strcspn(line, "\r\n"), line);
        g->bytes += (size_t)n;
    }
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
    struct weft_tls_client_options tlso = { .alpn = alpn };
    struct weft_tls_context *tls = NULL;
    bool use_tls = false;
    int n = 0, first = 1;

    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
        if (strcmp(argv[first], "--tls") == 0) {
            use_tls = true;
        } else if (strcmp(argv[first], "--cafile") == 0 && first + 1 < argc) {
            use_tls = true;
            tlso.ca_file = argv[++first];
        } else if (strcmp(argv[first], "--servername") == 0 && first + 1 < argc) {
            conn_opts.server_hostname = argv[++first];
        } else {
            fprintf(stderr, "usage: http_get [--tls] [--cafile FILE] [--servername NAME] "
                            "HOST[:PORT] ...\n");
            return 2;
        }
    }
    if (use_tls) {
        char err[256];

        if (weft_tls_context_new_client(&tlso, &tls, err, sizeof(err)) < 0) {
            fprintf(stderr, "http_get: TLS: %s\n", err);
            return 1;
        }
        conn_opts.tls = tls;
    }
    loop = weft_loop_new();
    if (loop == NULL)
        return 1;
    for (int i = first; i < argc && n < 16; i++, n++) {
        const char *colon = strrchr(argv[i], ':');

        snprintf(g[n].host, sizeof(g[n].host), "%.*s",
                 colon ? (int)(colon - argv[i]) : (int)strlen(argv[i]), argv[i]);
        g[n].port = colon ? (uint16_t)atoi(colon + 1) : use_tls ? 443 : 80;
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
    weft_tls_context_free(tls);
    return 0;
}
