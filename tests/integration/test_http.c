/* SPDX-License-Identifier: MIT */
/* test_http.c: the http plugin in the real weftd, over raw sockets: pipelining, bodies,
 * malformed requests, traversal, limits, timeouts, access log, config errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "weftd.h"

struct fixture {
    struct weftd w;
    char tree[64];          /* holds root/ and a secret file beside it */
    char conf[2048];
};

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
put_file(const char *dir, const char *name, const char *data, size_t len)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static int
setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char p[256], root[128];
    if (fx == NULL)
        return -1;
    snprintf(fx->tree, sizeof(fx->tree), "/tmp/weft-http-it.XXXXXX");
    if (mkdtemp(fx->tree) == NULL || chmod(fx->tree, 0755) < 0)  /* workers run as nobody */
        return -1;
    snprintf(root, sizeof(root), "%s/root", fx->tree);
    mkdir(root, 0755);
    snprintf(p, sizeof(p), "%s/sub", root);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/noindex", root);
    mkdir(p, 0755);
    put_file(root, "hello.txt", "hello, world\n", 13);
    put_file(root, "sub/index.html", "<p>sub</p>\n", 11);
    put_file(root, "noindex/a.txt", "a\n", 2);
    put_file(root, ".env", "TOKEN=dotfile\n", 14);
    put_file(fx->tree, "secret", "TOPSECRET\n", 10);
    char *big = malloc(300000);
    for (size_t i = 0; i < 300000; i++)
        big[i] = (char)('a' + i % 26);
    put_file(root, "big.txt", big, 300000);
    free(big);
    snprintf(p, sizeof(p), "%s/out", root);
    char target[128];
    snprintf(target, sizeof(target), "%s/secret", fx->tree);
    if (symlink(target, p) < 0 || symlink("..", (snprintf(p, sizeof(p), "%s/up", root), p)) < 0)
        return -1;
    snprintf(fx->conf, sizeof(fx->conf),
             "[weftd]\nlog_level = warning\n"
             "[web]\nprotocol = http\nlisten = 127.0.0.1:%%PORT0%%\nroot = %s\n"
             "header_timeout = 1s\nkeepalive_timeout = 2s\nmax_body_size = 1k\n"
             "max_request_line = 1k\nmax_header_size = 2k\nmax_headers = 20\n"
             "access_log = %s/access.log\n"
             "[listing]\nprotocol = http\nlisten = 127.0.0.1:%%PORT1%%\nroot = %s\n"
             "autoindex = on\nserver_tokens = off\n"
             "[page]\nprotocol = http\nlisten = 127.0.0.1:%%PORT2%%\n",
             root, fx->tree, root);
    if (weftd_start(&fx->w, fx->conf, NULL) != 0) {
        char *err = weftd_stderr(&fx->w);
        fprintf(stderr, "weftd did not start: %s\n", err);
        free(err);
        return -1;
    }
    weftd_share(&fx->w);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];
    int st = weftd_stop(&fx->w, SIGTERM);
    weftd_cleanup(&fx->w);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->tree);
    if (system(cmd) != 0)
        return -1;
    free(fx);
    return st == 0 ? 0 : -1;
}

static void
send_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        s += n;
        len -= (size_t)n;
    }
}

/*
 * Read until the server closes or timeout_ms passes. Returns the bytes
 * (malloc'd, NUL-terminated); *closed says whether EOF (or a reset) came.
 */
static char *
read_until_close(int fd, int timeout_ms, bool *closed, size_t *lenp)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    uint64_t end = now_ms() + (uint64_t)timeout_ms;
    *closed = false;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= end)
            break;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, (int)(end - now)) <= 0)
            break;
        if (cap - len < 2048) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0) {
            *closed = true;
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (lenp)
        *lenp = len;
    return buf;
}

/* Send req on a new connection; the whole answer until the server closes. */
static char *
exchange(uint16_t port, const char *req, size_t len, bool *closed)
{
    int fd = weftd_connect(port);
    assert_true(fd >= 0);
    send_all(fd, req, len);
    char *r = read_until_close(fd, 5000, closed, NULL);
    close(fd);
    return r;
}

static int
count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static void
test_pipelined_requests_answered_in_order(void **state)
{
    struct fixture *fx = *state;
    const char req[] = "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                       "HEAD /sub/ HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /sub/index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    bool closed;
    char *r = exchange(fx->w.ports[0], req, sizeof(req) - 1, &closed);
    assert_true(closed);
    assert_int_equal(count(r, "HTTP/1.1 200 OK\r\n"), 3);
    char *a = strstr(r, "hello, world\n");
    char *b = strstr(r, "Content-Length: 11");
    char *c = strstr(r, "<p>sub</p>");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c);
    assert_int_equal(count(r, "<p>sub</p>"), 1);        /* HEAD has no body */
    assert_non_null(strstr(r, "Connection: close\r\n"));
    free(r);
}

static void
test_chunked_body_is_discarded_and_connection_stays_in_sync(void **state)
{
    struct fixture *fx = *state;
    const char req[] = "POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5\r\nGET /\r\n7;ext=1\r\nsmuggle\r\n0\r\nTrailer: t\r\n\r\n"
                       "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    bool closed;
    char *r = exchange(fx->w.ports[0], req, sizeof(req) - 1, &closed);
    assert_true(closed);
    char *first = strstr(r, "HTTP/1.1 405 Method Not Allowed\r\n");
    assert_non_null(first);
    assert_non_null(strstr(r, "Allow: GET, HEAD\r\n"));
    char *second = strstr(r, "HTTP/1.1 200 OK\r\n");
    assert_non_null(second);
    assert_true(first < second);
    assert_int_equal(count(r, "HTTP/1.1 "), 2);
    free(r);
}

static void
test_content_length_body_then_next_request(void **state)
{
    struct fixture *fx = *state;
    const char req[] = "PUT /x HTTP/1.1\r\nHost: x\r\nContent-Length: 18\r\n\r\n"
                       "GET / HTTP/1.1\r\n\r\n"
                       "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    bool closed;
    char *r = exchange(fx->w.ports[0], req, sizeof(req) - 1, &closed);
    assert_true(closed);
    assert_int_equal(count(r, "HTTP/1.1 405"), 1);
    assert_int_equal(count(r, "HTTP/1.1 200"), 1);
    assert_int_equal(count(r, "HTTP/1.1 "), 2);
    free(r);
}

static void
test_expect_100_continue(void **state)
{
    /* The answer to a static file server never depends on the content: it comes at once,
     * not "100 Continue" (RFC 9110 §10.1.1), and content sent anyway is discarded. */
    struct fixture *fx = *state;
    int fd = weftd_connect(fx->w.ports[0]);
    bool closed;
    const char head[] = "PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                        "Content-Length: 4\r\n\r\n";
    assert_true(fd >= 0);
    send_all(fd, head, sizeof(head) - 1);
    char buf[512];
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_true(strncmp(buf, "HTTP/1.1 405", 12) == 0);
    assert_null(strstr(buf, "100 Continue"));
    assert_non_null(strstr(buf, "Connection: keep-alive"));
    /* the content comes anyway, then the next request on the same connection */
    const char next[] = "dataGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    send_all(fd, next, sizeof(next) - 1);
    char *r = read_until_close(fd, 5000, &closed, NULL);
    assert_true(closed);
    assert_true(strncmp(r, "HTTP/1.1 404", 12) == 0);
    free(r);
    close(fd);

    /* with Connection: close, the answer still comes first and weftd closes after it */
    fd = weftd_connect(fx->w.ports[0]);
    assert_true(fd >= 0);
    const char head2[] = "PUT /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         "Content-Length: 4\r\nConnection: close\r\n\r\n";
    send_all(fd, head2, sizeof(head2) - 1);
    r = read_until_close(fd, 5000, &closed, NULL);
    assert_true(closed);
    assert_true(strncmp(r, "HTTP/1.1 405", 12) == 0);
    free(r);
    close(fd);
}

struct bad_case {
    const char *req;
    int status;
};

static void
test_malformed_requests_get_their_status_and_close(void **state)
{
    struct fixture *fx = *state;
    char big[4096];
    static const struct bad_case cases[] = {
        { "GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400 },                    /* bare CR */
        { "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400 },             /* obs-fold */
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400 },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
          "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400 },                 /* CL + TE */
        { "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400 },
        { "GET / HTTP/1.1\r\n\r\n", 400 },                                     /* no Host */
        { "GET /\r\n\r\n", 400 },
        { "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", 501 },
        { "GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505 },
        { "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n", 413 },
        { "GET /%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool closed;
        char want[32];
        char *r = exchange(fx->w.ports[0], cases[i].req, strlen(cases[i].req), &closed);
        snprintf(want, sizeof(want), "HTTP/1.1 %d ", cases[i].status);
        if (strncmp(r, want, strlen(want)) != 0 || !closed)
            fail_msg("case %zu: wanted %d and a close, got %s: %.60s", i, cases[i].status,
                     closed ? "closed" : "open", r);
        free(r);
    }
    /* limits: request target (414), header block (431), header count (431) */
    struct { int status; int kind; } lim[] = { { 414, 0 }, { 431, 1 }, { 431, 2 } };
    for (size_t i = 0; i < 3; i++) {
        bool closed;
        if (lim[i].kind == 0)
            snprintf(big, sizeof(big), "GET /%02000d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
        else if (lim[i].kind == 1)
            snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: %03000d\r\n\r\n", 0);
        else {
            int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\n");
            for (int h = 0; h < 30; h++)
                n += snprintf(big + n, sizeof(big) - (size_t)n, "X%d: y\r\n", h);
            snprintf(big + n, sizeof(big) - (size_t)n, "\r\n");
        }
        char *r = exchange(fx->w.ports[0], big, strlen(big), &closed);
        char want[32];
        snprintf(want, sizeof(want), "HTTP/1.1 %d ", lim[i].status);
        if (strncmp(r, want, strlen(want)) != 0 || !closed)
            fail_msg("limit %zu: wanted %d, got %.60s", i, lim[i].status, r);
        free(r);
    }
}

static void
test_lf_only_request_gets_400_with_nc_hint(void **state)
{
    struct fixture *fx = *state;
    bool closed;
    const char req[] = "GET / HTTP/1.1\nHost: localhost\n\n";
    char *r = exchange(fx->w.ports[2], req, sizeof(req) - 1, &closed);
    assert_true(closed);
    assert_true(strncmp(r, "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    assert_non_null(strstr(r, "nc -C"));
    free(r);
}

static void
test_traversal_never_leaves_root(void **state)
{
    struct fixture *fx = *state;
    static const char *paths[] = {
        "/../secret", "/..%2fsecret", "/%2e%2e/secret", "/%2E%2E/secret", "/.%2e/secret",
        "/sub/../../secret", "/sub/%2e%2e/%2e%2e/secret", "/..\\secret", "/%5c..%5csecret",
        "/%2e%2e%5csecret", "/hello.txt%00.html", "/out", "/up/secret", "/up/root/hello.txt",
        "//../secret", "/./../secret", "/%252e%252e/secret", "/%c0%ae%c0%ae/secret",
        "http://x/../secret", "/.env", "/sub/../.env",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char req[256];
        bool closed;
        int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         paths[i]);
        /* two services: follow_symlinks off everywhere, listing on on the second */
        for (int s = 0; s < 2; s++) {
            char *r = exchange(fx->w.ports[s], req, (size_t)n, &closed);
            bool ok = (strncmp(r, "HTTP/1.1 403", 12) == 0 || strncmp(r, "HTTP/1.1 404", 12) == 0 ||
                       strncmp(r, "HTTP/1.1 400", 12) == 0) &&
                      strstr(r, "TOPSECRET") == NULL && strstr(r, "TOKEN=") == NULL;
            if (!ok)
                fail_msg("%s on service %d: %.80s", paths[i], s, r);
            free(r);
        }
    }
}

static void
test_directories_index_listing_and_forbidden(void **state)
{
    struct fixture *fx = *state;
    bool closed;
    const char req[] = "GET /noindex/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *r = exchange(fx->w.ports[0], req, sizeof(req) - 1, &closed);
    assert_true(strncmp(r, "HTTP/1.1 403", 12) == 0);
    free(r);
    r = exchange(fx->w.ports[1], req, sizeof(req) - 1, &closed);
    assert_true(strncmp(r, "HTTP/1.1 200", 12) == 0);
    assert_non_null(strstr(r, "<a href=\"a.txt\">a.txt</a>"));
    assert_non_null(strstr(r, "Server: weft\r\n"));           /* server_tokens = off */
    free(r);
    const char root[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    r = exchange(fx->w.ports[1], root, sizeof(root) - 1, &closed);
    assert_non_null(strstr(r, "hello.txt"));
    assert_null(strstr(r, ".env"));                           /* dotfiles hidden */
    free(r);
    const char noslash[] = "GET /sub HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    r = exchange(fx->w.ports[0], noslash, sizeof(noslash) - 1, &closed);
    assert_true(strncmp(r, "HTTP/1.1 301", 12) == 0);
    assert_non_null(strstr(r, "Location: /sub/\r\n"));
    free(r);
}

static void
test_large_file_and_range(void **state)
{
    struct fixture *fx = *state;
    bool closed;
    size_t len;
    const char req[] = "GET /big.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /big.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=299990-\r\n"
                       "Connection: close\r\n\r\n";
    int fd = weftd_connect(fx->w.ports[0]);
    assert_true(fd >= 0);
    send_all(fd, req, sizeof(req) - 1);
    char *r = read_until_close(fd, 10000, &closed, &len);
    close(fd);
    assert_true(closed);
    assert_non_null(strstr(r, "Content-Length: 300000\r\n"));
    char *body = strstr(r, "\r\n\r\n") + 4;
    assert_memory_equal(body, "abcdefghij", 10);
    assert_memory_equal(body + 299990, "cdefghijkl", 10);     /* 299990 % 26 == 2 */
    char *second = body + 300000;
    if (strncmp(second, "HTTP/1.1 206 Partial Content\r\n", 30) != 0)
        fail_msg("len %zu, second: %.100s", len, second);
    assert_non_null(strstr(second, "Content-Range: bytes 299990-299999/300000\r\n"));
    assert_true(len > 300000);
    free(r);
}

static void
test_many_pipelined_large_responses_survive_flow_control(void **state)
{
    struct fixture *fx = *state;
    char req[64 * 60];
    size_t n = 0, len;
    bool closed;
    /* 40 x 300 KB queued at once: far past the write buffer's high-water mark */
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "GET /big.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    n += (size_t)snprintf(req + n, sizeof(req) - n,
                          "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    int fd = weftd_connect(fx->w.ports[0]);
    assert_true(fd >= 0);
    send_all(fd, req, n);
    shutdown(fd, SHUT_WR);              /* half-close: the answers must still come */
    char *r = read_until_close(fd, 20000, &closed, &len);
    close(fd);
    assert_true(closed);
    assert_true(len > 40u * 300000u);
    int ok = 0;
    for (char *p = r; p < r + len && (p = memmem(p, (size_t)(r + len - p), "HTTP/1.1 200 OK", 15));
         p += 15)
        ok++;
    assert_int_equal(ok, 41);
    assert_non_null(memmem(r + len - 13, 13, "hello, world\n", 13));
    free(r);

    /* 1,000 small pipelined requests in one go: all answered, in order */
    static char many[1001 * 48];
    n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "GET /sub/ HTTP/1.1\r\nHost: x\r\n\r\n");
    n += (size_t)snprintf(many + n, sizeof(many) - n,
                          "GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    fd = weftd_connect(fx->w.ports[0]);
    send_all(fd, many, n);
    r = read_until_close(fd, 20000, &closed, &len);
    close(fd);
    assert_true(closed);
    assert_int_equal(count(r, "<p>sub</p>\n"), 1000);
    assert_int_equal(count(r, "HTTP/1.1 200 OK"), 1001);
    assert_non_null(strstr(r + len - 13, "hello, world\n"));
    free(r);
}

static void
test_http10_closes_unless_keep_alive(void **state)
{
    struct fixture *fx = *state;
    bool closed;
    const char req[] = "GET /hello.txt HTTP/1.0\r\n\r\n";
    char *r = exchange(fx->w.ports[0], req, sizeof(req) - 1, &closed);
    assert_true(closed);
    assert_true(strncmp(r, "HTTP/1.0 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(r, "Connection: close\r\n"));
    free(r);

    int fd = weftd_connect(fx->w.ports[0]);
    const char ka[] = "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    send_all(fd, ka, sizeof(ka) - 1);
    r = read_until_close(fd, 700, &closed, NULL);
    assert_false(closed);                         /* still open well before the idle limit */
    assert_non_null(strstr(r, "Connection: keep-alive\r\n"));
    free(r);
    close(fd);
}

static void
test_slowloris_is_cut_at_header_timeout(void **state)
{
    struct fixture *fx = *state;
    const char req[] = "GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    int fd = weftd_connect(fx->w.ports[0]);
    assert_true(fd >= 0);
    uint64_t start = now_ms();
    bool cut = false;
    for (size_t i = 0; i < sizeof(req) - 1; i++) {
        if (send(fd, req + i, 1, MSG_NOSIGNAL) != 1) {
            cut = true;
            break;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, 150) == 1) {             /* the server spoke: a 408, then EOF */
            cut = true;
            break;
        }
    }
    uint64_t took = now_ms() - start;
    bool closed;
    char *r = read_until_close(fd, 5000, &closed, NULL);
    assert_true(cut);
    assert_true(closed);
    assert_true(took >= 800 && took < 6000);       /* header_timeout = 1s, generously */
    assert_null(strstr(r, "200 OK"));
    free(r);
    close(fd);
}

static void
test_idle_keep_alive_is_closed(void **state)
{
    struct fixture *fx = *state;
    const char req[] = "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = weftd_connect(fx->w.ports[0]);
    bool closed;
    send_all(fd, req, sizeof(req) - 1);
    uint64_t start = now_ms();
    char *r = read_until_close(fd, 8000, &closed, NULL);
    uint64_t took = now_ms() - start;
    assert_true(closed);
    assert_true(took >= 1500 && took < 7000);     /* keepalive_timeout = 2s */
    assert_int_equal(count(r, "HTTP/1.1 200"), 1);
    free(r);
    close(fd);
}

static void
test_access_log_line(void **state)
{
    struct fixture *fx = *state;
    bool closed;
    char path[128];
    static char line[256 * 1024];
    line[0] = '\0';
    const char req[] = "GET /hello.txt?q=\"x\" HTTP/1.1\r\nHost: x\r\nUser-Agent: probe/1\r\n"
                       "Referer: http://r/\r\nConnection: close\r\n\r\n";
    free(exchange(fx->w.ports[0], req, sizeof(req) - 1, &closed));
    snprintf(path, sizeof(path), "%s/access.log", fx->tree);
    /* The line is written when the response is queued, before the close we waited for. */
    {
        FILE *f = fopen(path, "r");

        assert_non_null(f);
        line[fread(line, 1, sizeof(line) - 1, f)] = '\0';
        fclose(f);
    }
    if (strstr(line, "127.0.0.1 - - [") == NULL || strstr(line, "probe/1") == NULL)
        fail_msg("log: %s", line);
    assert_non_null(strstr(line, "] \"GET /hello.txt?q=\\x22x\\x22 HTTP/1.1\" 200 13 "
                                 "\"http://r/\" \"probe/1\"\n"));
}

static void
test_config_errors_are_reported(void **state)
{
    static const struct { const char *conf; const char *needle; } cases[] = {
        { "[h]\nprotocol = http\nlisten = 127.0.0.1:%PORT%\nheader_timeout = soon\n",
          "header_timeout" },
        { "[h]\nprotocol = http\nlisten = 127.0.0.1:%PORT%\nautoindex = maybe\n", "autoindex" },
        { "[h]\nprotocol = http\nlisten = 127.0.0.1:%PORT%\nmax_header_size = 8q\n",
          "max_header_size" },
        { "[h]\nprotocol = http\nlisten = 127.0.0.1:%PORT%\nroot = /nonexistent/weft\n",
          "/nonexistent/weft" },
        { "[h]\nprotocol = http\nlisten = 127.0.0.1:%PORT%\nflavour = vanilla\n", "flavour" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct weftd w = { 0 };
        const char *args[] = { "-t", "-c", "%CONF%", NULL };
        int st = weftd_run(&w, cases[i].conf, args);
        if (st == 0 || !weftd_stderr_contains(&w, cases[i].needle)) {
            char *e = weftd_stderr(&w);
            fail_msg("case %zu: status %d, stderr: %s", i, st, e);
        }
        weftd_cleanup(&w);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pipelined_requests_answered_in_order, itest_teardown),
        cmocka_unit_test_teardown(test_chunked_body_is_discarded_and_connection_stays_in_sync, itest_teardown),
        cmocka_unit_test_teardown(test_content_length_body_then_next_request, itest_teardown),
        cmocka_unit_test_teardown(test_expect_100_continue, itest_teardown),
        cmocka_unit_test_teardown(test_malformed_requests_get_their_status_and_close, itest_teardown),
        cmocka_unit_test_teardown(test_lf_only_request_gets_400_with_nc_hint, itest_teardown),
        cmocka_unit_test_teardown(test_traversal_never_leaves_root, itest_teardown),
        cmocka_unit_test_teardown(test_directories_index_listing_and_forbidden, itest_teardown),
        cmocka_unit_test_teardown(test_large_file_and_range, itest_teardown),
        cmocka_unit_test_teardown(test_many_pipelined_large_responses_survive_flow_control, itest_teardown),
        cmocka_unit_test_teardown(test_http10_closes_unless_keep_alive, itest_teardown),
        cmocka_unit_test_teardown(test_slowloris_is_cut_at_header_timeout, itest_teardown),
        cmocka_unit_test_teardown(test_idle_keep_alive_is_closed, itest_teardown),
        cmocka_unit_test_teardown(test_access_log_line, itest_teardown),
    };
    const struct CMUnitTest config_tests[] = {
        cmocka_unit_test_teardown(test_config_errors_are_reported, itest_teardown),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    return rc + cmocka_run_group_tests(config_tests, NULL, NULL);
}
