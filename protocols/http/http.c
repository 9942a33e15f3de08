/* SPDX-License-Identifier: MIT */
/* http.c: the http plugin: config keys, the connection protocol, keep-alive, files, access log. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <weft/weft.h>

#include "files.h"
#include "h2.h"
#include "request.h"
#include "response.h"
#include "serve.h"
#include "service.h"

#define CACHE_MAX_FILE (64u * 1024)
#define CACHE_MAX_TOTAL (32u * 1024 * 1024)
#define OUT_FLUSH (64u * 1024)     /* responses batched before a mid-batch flush */
#define FILE_CHUNK (64u * 1024)    /* a file body read with pread, where there is no sendfile */
#define WHOLE_MAX (16u * 1024)    /* a cached file's whole answer is kept up to this body */
#define NC_HINT "This server expects CRLF line endings. With netcat, use nc -C."


enum timer_kind { T_NONE, T_HEAD, T_IDLE, T_SEND, T_LINGER };

struct conn {
    struct weft_protocol base;
    struct http_service *svc;
    struct weft_transport *tr;
    struct weft_loop *loop;
    struct evbuffer *in;        /* the transport's, borrowed */
    size_t in_left;             /* bytes in `in` behind the request being answered */
    struct evbuffer *out;       /* responses batched within one data_received */
    struct http_parser *parser;
    struct weft_handle *timer, *resume;
    uint64_t timer_due, deadline;
    enum timer_kind kind;
    size_t last_queued;         /* write buffer at the last send-timeout check */
    uint64_t last_file_off;     /* file_off at the last send-timeout check */
    /* A file body that is read, not sent with sendfile (TLS): FILE_CHUNK at a time while
     * the transport takes more (see pump_file). fd -1: none. */
    int file_fd;
    uint64_t file_off, file_left;
    bool close_after_file;      /* close once the file is sent (Connection: close, EOF) */
    bool answered;              /* answered at the head (Expect: 100-continue): the content
                                 * that may follow is read and discarded */
    bool lingering;             /* answered and closing: reading to discard (linger()) */
    uint64_t linger_end;        /* when lingering stops, whatever comes */
    bool write_paused, closing, eof;
    bool sendfile;              /* plain socket: files go out with sendfile(2) */
    bool h2c_check;             /* plain, http2 on, nothing parsed yet: an h2c preface? */
    struct conn *next, **pprev; /* svc->h1_conns, for a drain */
};

/* ---- config ---- */

static int
parse_bool(const char *v, bool *out)
{
    if (!strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
        *out = true;
    else if (!strcasecmp(v, "off") || !strcasecmp(v, "no") || !strcasecmp(v, "false") ||
             !strcmp(v, "0"))
        *out = false;
    else
        return -1;
    return 0;
}

/* A number with one of these suffixes ("" for none), each a multiplier. */
struct unit {
    const char *suffix;
    uint64_t mul;
};

/* v as a number times its suffix's multiplier; -1 for no number, another suffix, overflow. */
static int
parse_scaled(const char *v, const struct unit *units, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || errno || *v == '-')
        return -1;
    for (; units->suffix != NULL; units++) {
        if (strcasecmp(end, units->suffix) == 0) {
            if (n > UINT64_MAX / units->mul)
                return -1;
            *out = n * units->mul;
            return 0;
        }
    }
    return -1;
}

/* "10s", "500ms", "2m", "1h"; a bare number is seconds; not 0. */
static int
parse_duration(const char *v, uint64_t *ms)
{
    static const struct unit units[] = {
        { "ms", 1 }, { "", 1000 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { NULL, 0 },
    };
    uint64_t n;

    if (parse_scaled(v, units, &n) < 0 || n == 0 || n > UINT64_MAX / 1000)
        return -1;
    *ms = n;
    return 0;
}

/* "8k", "1m", "512"; k, m, g are powers of 1024. */
static int
parse_size(const char *v, uint64_t *out)
{
    static const struct unit units[] = {
        { "", 1 }, { "k", 1024 }, { "m", 1024 * 1024 }, { "g", 1024 * 1024 * 1024 }, { NULL, 0 },
    };

    return parse_scaled(v, units, out);
}

static int
set_str(char **slot, const char *v, char *err, size_t errlen)
{
    char *s = strdup(v);
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    free(*slot);
    *slot = s;
    return 0;
}

static void http_service_free(void *p);

static int
http_service_new(void **out)
{
    struct http_service *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->rootfd = -1;
    s->log_fd = -1;
    s->index = strdup("index.html");
    s->access_log = strdup("off");
    if (s->index == NULL || s->access_log == NULL) {
        http_service_free(s);
        return -ENOMEM;
    }
    s->server_tokens = true;
    s->header_timeout_ms = 10000;
    s->keepalive_timeout_ms = 5000;
    s->lingering_time_ms = 30000;
    s->lingering_timeout_ms = 5000;
    s->limits = (struct http_limits)HTTP_LIMITS_DEFAULT;
    s->h2 = (struct http2_limits)HTTP2_LIMITS_DEFAULT;
    s->http2 = true;
    *out = s;
    return 0;
}

static int
http_configure(void *svc, const char *key, const char *v, char *err, size_t errlen)
{
    struct http_service *s = svc;
    uint64_t n;
    bool b;

#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); return -WEFT_ECONFIG; } while (0)
    char path[PATH_MAX];
    if (!strcmp(key, "root")) {
        if (*v == '\0')
            BAD("empty path");
        if (weft_plugin_path(v, path, sizeof(path)) < 0)       /* relative to the config */
            BAD("path too long");
        return set_str(&s->root, path, err, errlen);
    }
    if (!strcmp(key, "index")) {
        if (*v == '\0' || strchr(v, '/') || !strcmp(v, ".") || !strcmp(v, ".."))
            BAD("'%s' must be a plain file name", v);
        return set_str(&s->index, v, err, errlen);
    }
    if (!strcmp(key, "access_log")) {
        if (*v == '\0')
            BAD("expected off, stderr or a path");
        if (strcmp(v, "off") == 0 || strcmp(v, "stderr") == 0)
            return set_str(&s->access_log, v, err, errlen);
        if (weft_plugin_path(v, path, sizeof(path)) < 0)
            BAD("path too long");
        return set_str(&s->access_log, path, err, errlen);
    }
    if (!strcmp(key, "server_name")) {
        if (strlen(v) >= sizeof(s->server) || strpbrk(v, "\r\n"))
            BAD("at most %zu characters on one line", sizeof(s->server) - 1);
        return set_str(&s->server_name, v, err, errlen);
    }
    bool *flag = !strcmp(key, "autoindex") ? &s->autoindex
               : !strcmp(key, "follow_symlinks") ? &s->follow_symlinks
               : (!strcmp(key, "dotfiles") || !strcmp(key, "hidden_files")) ? &s->dotfiles
               : !strcmp(key, "server_tokens") ? &s->server_tokens
               : !strcmp(key, "http2") ? &s->http2 : NULL;
    if (flag) {
        if (parse_bool(v, &b) < 0)
            BAD("expected on or off, not '%s'", v);
        *flag = b;
        return 0;
    }
    uint64_t *dur = !strcmp(key, "header_timeout") ? &s->header_timeout_ms
                  : !strcmp(key, "keepalive_timeout") ? &s->keepalive_timeout_ms
                  : !strcmp(key, "lingering_time") ? &s->lingering_time_ms
                  : !strcmp(key, "lingering_timeout") ? &s->lingering_timeout_ms
                  : !strcmp(key, "http2_send_timeout") ? &s->h2.send_timeout_ms : NULL;
    if (dur) {
        if (parse_duration(v, &n) < 0)
            BAD("expected a positive duration like 10s or 500ms, not '%s'", v);
        *dur = n;
        return 0;
    }
    if (!strcmp(key, "max_header_size") || !strcmp(key, "max_request_line") ||
        !strcmp(key, "max_body_size")) {
        if (parse_size(v, &n) < 0)
            BAD("expected a size like 8k or 1m, not '%s'", v);
        if (key[4] == 'h' || key[4] == 'r') {
            if (n < 64 || n > 1024 * 1024)
                BAD("must be between 64 and 1m");
            *(key[4] == 'h' ? &s->limits.max_header_size : &s->limits.max_request_line) = n;
        } else {
            s->limits.max_body_size = n;
        }
        return 0;
    }
    /* HTTP/2's SETTINGS, and its control frame limit: { key, slot, least, most } */
    const struct { const char *key; uint32_t *slot; uint64_t min, max; } h2keys[] = {
        { "http2_max_concurrent_streams", &s->h2.max_concurrent_streams, 1, 10000 },
        { "http2_max_header_list_size", &s->h2.max_header_list_size, 1024, 1024 * 1024 },
        { "http2_header_table_size", &s->h2.header_table_size, 0, 65536 },
        { "http2_initial_window_size", &s->h2.initial_window_size, 1, 0x7fffffff },
        { "http2_max_control_frames", &s->h2.max_control_frames, 10, 1000000 },
    };
    for (size_t i = 0; i < sizeof(h2keys) / sizeof(h2keys[0]); i++) {
        if (strcmp(key, h2keys[i].key) != 0)
            continue;
        if (parse_size(v, &n) < 0 || n < h2keys[i].min || n > h2keys[i].max)
            BAD("expected a number (k and m allowed) from %" PRIu64 " to %" PRIu64 ", not '%s'",
                h2keys[i].min, h2keys[i].max, v);
        *h2keys[i].slot = (uint32_t)n;
        return 0;
    }
    if (!strcmp(key, "max_headers")) {
        char *end;
        errno = 0;
        unsigned long k = strtoul(v, &end, 10);
        if (end == v || *end || errno || k == 0 || k > 10000 || *v == '-')
            BAD("expected a number from 1 to 10000, not '%s'", v);
        s->limits.max_headers = k;
        return 0;
    }
#undef BAD
    snprintf(err, errlen, "known: root, index, autoindex, follow_symlinks, dotfiles, "
             "header_timeout, keepalive_timeout, lingering_time, lingering_timeout, "
             "max_request_line, max_header_size, "
             "max_headers, max_body_size, access_log, server_tokens, server_name, http2, "
             "http2_max_concurrent_streams, http2_max_header_list_size, "
             "http2_header_table_size, http2_initial_window_size, http2_max_control_frames, "
             "http2_send_timeout");
    return -WEFT_ENOKEY;
}

static int
http_service_check(void *svc, char *err, size_t errlen)
{
    struct http_service *s = svc;
    size_t n = 0;           /* every file problem is said, root's and access_log's, in err */

    if (s->root) {
        s->rootfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->rootfd >= 0 && (s->root_real = realpath(s->root, NULL)) == NULL) {
            close(s->rootfd);
            s->rootfd = -1;
        }
        if (s->rootfd < 0)
            n += (size_t)snprintf(err, errlen, "root '%s': %s", s->root, strerror(errno));
    }
    if (!strcmp(s->access_log, "off")) {
        s->log_fd = -1;
    } else if (!strcmp(s->access_log, "stderr")) {
        s->log_fd = STDERR_FILENO;
    } else {
        s->log_fd = open(s->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (s->log_fd < 0 && n < errlen)
            n += (size_t)snprintf(err + n, errlen - n, "%saccess_log '%s': %s", n ? "; " : "",
                                  s->access_log, strerror(errno));
    }
    if (n > 0)
        return -WEFT_ECONFIG;
    if (s->server_name)
        snprintf(s->server, sizeof(s->server), "%s", s->server_name);
    else
        snprintf(s->server, sizeof(s->server), "%s",
                 s->server_tokens ? "weft/" WEFT_VERSION_STRING : "weft");
    s->mime = http_mime_new("/etc/mime.types");
    s->cache = http_cache_new(CACHE_MAX_FILE, CACHE_MAX_TOTAL);
    if (s->mime == NULL || s->cache == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static void
http_service_free(void *p)
{
    struct http_service *s = p;
    if (s == NULL)
        return;
    if (s->rootfd >= 0)
        close(s->rootfd);
    if (s->log_fd > STDERR_FILENO)
        close(s->log_fd);
    http_mime_free(s->mime);
    http_cache_free(s->cache);
    free(s->root);
    free(s->root_real);
    free(s->index);
    free(s->access_log);
    free(s->server_name);
    free(s);
}

/* ---- access log ---- */

/* SIGUSR1, after logrotate moved the file: write to a fresh one at the same path. */
static int
http_reopen(void *p, char *err, size_t errlen)
{
    struct http_service *s = p;
    int fd, old;

    if (s == NULL || s->log_fd <= STDERR_FILENO)
        return 0;       /* off, or stderr: nothing of ours to reopen */
    fd = open(s->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        int rc = -errno;

        snprintf(err, errlen, "access_log '%s': %s (still writing to the old file)",
                 s->access_log, strerror(-rc));
        return rc;
    }
    old = s->log_fd;
    s->log_fd = fd;
    close(old);
    return 0;
}

/* ---- HTTP/1.1 framing (serve.c decides what the answer is) ---- */

static int flush(struct conn *c);

static int
h1_head(struct http_exchange *x, const struct http_head *h)
{
    struct conn *c = x->ctx;
    return http_head_write(c->out, h);
}

static int
h1_body(struct http_exchange *x, const void *data, size_t len)
{
    struct conn *c = x->ctx;
    return evbuffer_add(c->out, data, len) < 0 ? -ENOMEM : 0;
}

static int
h1_body_buffer(struct http_exchange *x, struct evbuffer *buf)
{
    struct conn *c = x->ctx;
    return evbuffer_add_buffer(c->out, buf) < 0 ? -ENOMEM : 0;
}

/* A file body after its head: takes fd. */
static int
h1_file(struct http_exchange *x, int fd, uint64_t off, uint64_t len)
{
    struct conn *c = x->ctx;

    if (!c->sendfile) {
        /* TLS must encrypt the bytes, so they pass through user space: pump_file reads
         * them with pread as the transport drains. (A mapping of the file would save
         * that copy, but a file truncated meanwhile raises SIGBUS and kills the worker;
         * a pread just comes up short.) */
        c->file_fd = fd;
        c->file_off = off;
        c->file_left = len;
        return 0;
    }
    /* On a plain socket the transport sends the file with sendfile(2), after the
     * head, and the bytes never enter user space (a file that shrinks meanwhile ends
     * the connection: the client sees a short body, never a wrong one). The head goes
     * to the transport with the file, so that it leaves with sendmsg(MSG_MORE) just
     * before the sendfile and shares the file's first packet (what nginx's tcp_nopush
     * gets with TCP_CORK on and off, two syscalls fewer). The transport takes fd. */
    int rc = weft_transport_sendfile_buffer(c->tr, c->out, fd, off, len);
    if (rc < 0) {
        evbuffer_drain(c->out, evbuffer_get_length(c->out));
        close(fd);
        return rc;
    }
    return 0;
}

static const char ka_end[] = "Connection: keep-alive\r\n\r\n";
static const char close_end[] = "Connection: close\r\n\r\n";

/* "HTTP/1.<v> 200 OK", Date and Server lines, made again once a second; false if they do
 * not fit (a Server name that long takes the general path). */
static bool
ok_prefix(struct http_service *s, unsigned v)
{
    time_t now = time(NULL);

    if (now != s->prefix_time) {
        const char *date = http_date_now();
        for (unsigned i = 0; i < 2; i++) {
            int n = snprintf(s->prefix[i], sizeof(s->prefix[i]),
                             "HTTP/1.%u 200 OK\r\nDate: %s\r\n%s%s%s", i, date,
                             s->server[0] ? "Server: " : "", s->server,
                             s->server[0] ? "\r\n" : "");
            s->prefix_len[i] = n > 0 && (size_t)n < sizeof(s->prefix[i]) ? (size_t)n : 0;
        }
        s->prefix_time = now;
    }
    return s->prefix_len[v] != 0;
}

/* The head of a 200 from a cached head (prefix, mem->headers, Connection) into c->out. */
static int
ok_head(struct conn *c, const struct http_cached *mem, unsigned v, bool keep_alive)
{
    struct http_service *s = c->svc;

    if (evbuffer_add(c->out, s->prefix[v], s->prefix_len[v]) < 0 ||
        evbuffer_add(c->out, mem->headers, mem->headers_len) < 0 ||
        (keep_alive ? evbuffer_add(c->out, ka_end, sizeof(ka_end) - 1)
                    : evbuffer_add(c->out, close_end, sizeof(close_end) - 1)) < 0)
        return -ENOMEM;
    return 0;
}

/*
 * mem's whole answer for HTTP/1.<v> (keep-alive or close) in mem->whole, made again if the
 * Date second or the variant changed (ok_prefix ran first); NULL for a body over WHOLE_MAX
 * (its copy would cost more memory than the pieces cost time) or if a buffer for it cannot
 * be had: the caller sends the pieces.
 */
static const struct http_whole *
whole_answer(struct http_service *s, const struct http_cached *mem, unsigned v, bool keep_alive)
{
    struct http_whole *w = mem->whole;
    unsigned variant = v * 2 + (keep_alive ? 1u : 0u);

    if (w == NULL || mem->size > WHOLE_MAX)
        return NULL;
    if (w->buf != NULL && w->when == s->prefix_time && w->variant == variant)
        return w;
    const char *end = keep_alive ? ka_end : close_end;
    size_t endlen = keep_alive ? sizeof(ka_end) - 1 : sizeof(close_end) - 1;
    size_t need = s->prefix_len[v] + mem->headers_len + endlen + (size_t)mem->size;
    if (need > w->cap) {
        char *b = realloc(w->buf, need);
        if (b == NULL)
            return NULL;
        w->buf = b;
        w->cap = need;
    }
    char *o = w->buf;
    memcpy(o, s->prefix[v], s->prefix_len[v]);
    o += s->prefix_len[v];
    memcpy(o, mem->headers, mem->headers_len);
    o += mem->headers_len;
    memcpy(o, end, endlen);
    o += endlen;
    if (mem->size > 0)
        memcpy(o, mem->data, (size_t)mem->size);
    w->len = need;
    w->when = s->prefix_time;
    w->variant = variant;
    return w;
}

/*
 * The hot path: a 200 for a cached file with no validator or range in the request. The
 * whole answer is kept with the entry (whole_answer: status line to body, made once a
 * second), so this is one piece: handed to the transport, which sends it with one send
 * and copies only what the socket does not take, or copied into c->out when responses are
 * being batched. Without that buffer (no memory), the pieces as iovecs.
 */
static bool
h1_cached(struct http_exchange *x, const struct http_cached *mem)
{
    struct conn *c = x->ctx;
    struct http_service *s = c->svc;
    const struct http_request *r = x->r;
    unsigned v = r->minor ? 1 : 0;

    if (!ok_prefix(s, v))
        return false;
    bool body = r->method != HTTP_M_HEAD;
    bool alone = c->in_left == 0 && evbuffer_get_length(c->out) == 0;
    const struct http_whole *w = whole_answer(s, mem, v, x->keep_alive);
    x->status = 200;
    if (w != NULL) {
        /* a HEAD's answer is the head: the whole less the body */
        size_t len = body ? w->len : w->len - (size_t)mem->size;
        /* Nothing batched before it, no request pipelined behind it (the usual keep-alive
         * case): straight to the transport; else into the batch */
        int rc = alone ? weft_transport_write(c->tr, w->buf, len)
                       : evbuffer_add(c->out, w->buf, len) < 0 ? -ENOMEM : 0;
        if (rc < 0) {
            x->keep_alive = false;
            x->failed = true;
            return true;
        }
        x->bytes = body ? mem->size : 0;
        return true;
    }
    if (alone) {
        struct iovec iov[4] = {
            { .iov_base = s->prefix[v], .iov_len = s->prefix_len[v] },
            { .iov_base = (void *)mem->headers, .iov_len = mem->headers_len },
            { .iov_base = (void *)(x->keep_alive ? ka_end : close_end),
              .iov_len = x->keep_alive ? sizeof(ka_end) - 1 : sizeof(close_end) - 1 },
            { .iov_base = (void *)mem->data, .iov_len = (size_t)mem->size },
        };
        if (weft_transport_writelines(c->tr, iov, body && mem->size > 0 ? 4 : 3) < 0) {
            x->keep_alive = false;
            x->failed = true;
            return true;
        }
        x->bytes = body ? mem->size : 0;
        return true;
    }
    size_t total = s->prefix_len[v] + mem->headers_len + sizeof(ka_end) + (body ? mem->size : 0);
    if (evbuffer_expand(c->out, total) < 0 || ok_head(c, mem, v, x->keep_alive) < 0 ||
        (body && evbuffer_add(c->out, mem->data, (size_t)mem->size) < 0)) {
        x->keep_alive = false;
        x->failed = true;
        return true;
    }
    x->bytes = body ? mem->size : 0;
    return true;
}

/* The same for a file too big to keep, whose head is cached: the body from fd (taken). */
static bool
h1_cached_file(struct http_exchange *x, const struct http_cached *head, int fd)
{
    struct conn *c = x->ctx;
    const struct http_request *r = x->r;
    unsigned v = r->minor ? 1 : 0;

    if (!ok_prefix(c->svc, v))
        return false;
    x->status = 200;
    if (ok_head(c, head, v, x->keep_alive) < 0) {
        close(fd);
        x->keep_alive = false;
        x->failed = true;
        return true;
    }
    if (r->method == HTTP_M_HEAD || head->size == 0) {
        close(fd);
        return true;
    }
    if (h1_file(x, fd, 0, head->size) < 0) {
        x->keep_alive = false;
        x->failed = true;
        return true;
    }
    x->bytes = head->size;
    return true;
}

static const struct http_framing_ops h1_ops = {
    .head = h1_head,
    .body = h1_body,
    .body_buffer = h1_body_buffer,
    .file = h1_file,
    .cached = h1_cached,
    .cached_file = h1_cached_file,
};

static void
access_log(struct conn *c, const struct http_request *r, int status, uint64_t bytes)
{
    char peer[160];

    if (c->svc->log_fd < 0)
        return;
    weft_transport_peer_string(c->tr, peer, sizeof(peer));
    http_access_log(c->svc, peer, r, status, bytes);
}

static struct http_exchange
exchange(struct conn *c, const struct http_request *r, bool keep_alive, uint64_t now)
{
    return (struct http_exchange){
        .ops = &h1_ops, .ctx = c, .svc = c->svc, .r = r, .keep_alive = keep_alive,
        .now_ms = now,
    };
}

/* An error answer into c->out, logged; the connection closes after it. */
static void
send_error(struct conn *c, const struct http_request *r, int status, const char *hint)
{
    struct http_exchange x = exchange(c, r, false, weft_loop_time(c->loop));

    http_serve_error(&x, status, NULL, hint);
    access_log(c, r, status, x.bytes);
}

/* Answer one complete request into c->out (now: the loop's time); false if the connection
 * must close after. */
static bool
respond(struct conn *c, const struct http_request *r, uint64_t now)
{
    struct http_exchange x = exchange(c, r, r->keep_alive && !r->upgrade && !c->svc->draining,
                                      now);

    http_serve(&x);
    access_log(c, r, x.status, x.bytes);
    return x.keep_alive && !x.failed;
}

/* ---- timers ---- */

static void on_timer(void *arg);

/* One timer per connection at most: a later deadline only moves c->deadline,
 * the pending call notices and re-arms; an earlier one re-schedules. now: the loop's time. */
static void
arm_at(struct conn *c, enum timer_kind kind, uint64_t now, uint64_t delay_ms)
{
    c->kind = kind;
    c->deadline = now + delay_ms;
    if (c->timer && c->timer_due <= c->deadline)
        return;
    if (c->timer)
        weft_handle_cancel(c->timer);
    c->timer_due = c->deadline;
    c->timer = weft_call_at(c->loop, c->deadline, on_timer, c);
    if (c->timer == NULL) {
        weft_log(WEFT_LOG_ERR, "http: cannot arm a timer: closing the connection");
        c->closing = true;
        weft_transport_abort(c->tr);
    }
}

static void
arm(struct conn *c, enum timer_kind kind, uint64_t delay_ms)
{
    arm_at(c, kind, weft_loop_time(c->loop), delay_ms);
}

static void
on_timer(void *arg)
{
    struct conn *c = arg;
    uint64_t now = weft_loop_time(c->loop);

    c->timer = NULL;
    if (c->kind == T_NONE || (c->closing && c->kind != T_LINGER))
        return;
    if (now < c->deadline) {
        c->timer_due = c->deadline;
        c->timer = weft_call_at(c->loop, c->deadline, on_timer, c);
        if (c->timer == NULL)
            weft_transport_abort(c->tr);
        return;
    }
    if (c->kind == T_LINGER) {
        weft_transport_close(c->tr);    /* silent for lingering_timeout, or lingering_time up */
        return;
    }
    size_t queued = weft_transport_get_write_buffer_size(c->tr);
    if ((queued > 0 && queued != c->last_queued) ||
        (c->file_fd >= 0 && c->file_off != c->last_file_off)) {
        /* still sending a response: a slow reader, not an idle one */
        c->last_queued = queued;
        c->last_file_off = c->file_off;
        arm(c, T_SEND, c->svc->keepalive_timeout_ms + c->svc->header_timeout_ms);
        return;
    }
    c->closing = true;
    if (c->kind == T_HEAD && c->answered) {
        weft_transport_close(c->tr);    /* answered: the content never came */
    } else if (c->kind == T_HEAD) {
        /* slowloris or a stalled body: say so, then go */
        send_error(c, NULL, 408, NULL);
        weft_transport_write_buffer(c->tr, c->out);
        weft_transport_close(c->tr);
    } else if (c->kind == T_SEND) {
        weft_transport_abort(c->tr);
    } else {
        weft_transport_close(c->tr);
    }
}

/* ---- the protocol ---- */

static void process(struct conn *c);
static void conn_free(struct conn *c);

/* Hand the connection to HTTP/2 (h2.c), with the bytes in already read (or NULL), and
 * free c. False if there is no memory for it: the connection is aborted. */
static bool
to_h2(struct conn *c, struct evbuffer *in)
{
    if (h2_conn_start(c->svc, c->tr, in) == NULL) {
        weft_log(WEFT_LOG_ERR, "http: out of memory for an HTTP/2 connection: closing it");
        c->closing = true;
        c->kind = T_NONE;
        weft_transport_abort(c->tr);
        return false;
    }
    conn_free(c);       /* the transport calls the h2 connection from now on */
    return true;
}

static int
conn_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct conn *c = (struct conn *)p;
    void *ssl;
    size_t len = sizeof(ssl);

    c->tr = tr;
    c->loop = weft_transport_get_loop(tr);
    c->next = c->svc->h1_conns;
    if (c->next)
        c->next->pprev = &c->next;
    c->pprev = &c->svc->h1_conns;
    c->svc->h1_conns = c;
    /* TLS must read a file's bytes to encrypt them; a plain socket sends them with
     * weft_transport_sendfile */
    c->sendfile = weft_transport_get_extra_info(tr, "ssl_object", &ssl, &len) != 0;
    if (!c->sendfile && c->svc->http2) {
        char alpn[16];
        size_t alen = sizeof(alpn);
        if (weft_transport_get_extra_info(tr, "alpn_protocol", alpn, &alen) == 0 &&
            strcmp(alpn, "h2") == 0)
            return to_h2(c, NULL) ? 0 : -ENOMEM;
    }
    c->h2c_check = c->sendfile && c->svc->http2;
    /* the first request gets the head timeout from the accept */
    arm(c, T_HEAD, c->svc->header_timeout_ms);
    return c->closing ? -ENOMEM : 0;
}

/* Hand c->out to the transport. -errno if it refused (the connection is going). */
static int
flush(struct conn *c)
{
    if (evbuffer_get_length(c->out) == 0)
        return 0;
    int rc = weft_transport_write_buffer(c->tr, c->out);
    if (rc < 0)
        evbuffer_drain(c->out, evbuffer_get_length(c->out));
    return rc;
}

static void
drop_file(struct conn *c)
{
    if (c->file_fd >= 0)
        close(c->file_fd);
    c->file_fd = -1;
    c->file_left = 0;
}

/*
 * Send the pending file body (c->file_fd) FILE_CHUNK at a time until it is all queued
 * or the transport pauses us (resume_writing brings us back). A file that shrank since
 * its head was sent cannot be finished: that one connection is aborted, so the client
 * sees a short body, never a wrong one. False if the connection is going.
 */
static bool
pump_file(struct conn *c)
{
    if (flush(c) < 0)
        goto gone;
    while (c->file_fd >= 0 && !c->write_paused) {
        size_t want = c->file_left < FILE_CHUNK ? (size_t)c->file_left : FILE_CHUNK;
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(c->out, (ev_ssize_t)want, &v, 1) != 1) {
            weft_log(WEFT_LOG_ERR, "http: out of memory sending a file: closing the connection");
            goto gone;
        }
        ssize_t n = pread(c->file_fd, v.iov_base, want, (off_t)c->file_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            weft_log(WEFT_LOG_WARNING, "http: %s at byte %" PRIu64 " of a file being sent: "
                     "closing the connection", n < 0 ? strerror(errno) : "the file shrank",
                     c->file_off);
            goto gone;
        }
        v.iov_len = (size_t)n;
        evbuffer_commit_space(c->out, &v, 1);
        c->file_off += (uint64_t)n;
        c->file_left -= (uint64_t)n;
        if (c->file_left == 0)
            drop_file(c);
        if (flush(c) < 0)
            goto gone;
    }
    return true;
gone:
    drop_file(c);
    c->closing = true;
    c->kind = T_NONE;
    weft_transport_abort(c->tr);
    return false;
}

static void
fail_request(struct conn *c)
{
    const struct http_request *r = http_parser_request(c->parser);
    int status = http_parser_status(c->parser);
    const char *hint = http_parser_bare_lf(c->parser) ? NC_HINT : http_parser_reason(c->parser);
    /* answer errors as HTTP/1.1 unless the head said 1.0 */
    send_error(c, r->method_name ? r : NULL, status, hint);
    if (weft_log_enabled(WEFT_LOG_DEBUG))
        weft_log(WEFT_LOG_DEBUG, "http: %d: %s", status, http_parser_reason(c->parser));
}

/*
 * Close after an answer while the client may still be sending (RFC 9112 §9.6): closing at
 * once with unread bytes makes the kernel send RST, which can destroy the answer before the
 * client reads it. As nginx does: shut down writing, then read and discard until the client
 * closes, lingering_timeout passes without a byte, or lingering_time is up; then close.
 * Over TLS the transport's own close is that: close_notify once the answer is out, then
 * reading and discarding until the client's close_notify or tls_shutdown_timeout. Lingering
 * without it would leave a client that reads to the end waiting for lingering_timeout.
 */
static void
linger(struct conn *c)
{
    uint64_t now = weft_loop_time(c->loop);

    if (!weft_transport_can_write_eof(c->tr)) {
        c->closing = true;
        c->kind = T_NONE;
        weft_transport_close(c->tr);
        return;
    }
    c->closing = c->lingering = true;
    c->linger_end = now + c->svc->lingering_time_ms;
    if (c->in)
        evbuffer_drain(c->in, evbuffer_get_length(c->in));
    if (weft_transport_write_eof(c->tr) < 0) {
        weft_transport_close(c->tr);
        return;
    }
    uint64_t wait = c->svc->lingering_timeout_ms;
    arm(c, T_LINGER, wait < c->svc->lingering_time_ms ? wait : c->svc->lingering_time_ms);
}

/* Bytes that came while lingering: dropped; the silence clock starts again. */
static void
linger_data(struct conn *c)
{
    uint64_t now = weft_loop_time(c->loop);

    evbuffer_drain(c->in, evbuffer_get_length(c->in));
    if (now >= c->linger_end) {
        c->kind = T_NONE;
        weft_transport_close(c->tr);
        return;
    }
    uint64_t wait = c->svc->lingering_timeout_ms, left = c->linger_end - now;
    arm(c, T_LINGER, wait < left ? wait : left);
}

/* Parse and answer every complete request in c->in, in order. */
static void
process(struct conn *c)
{
    struct evbuffer *in = c->in;
    bool close_after = false, unread = false;

    if (c->h2c_check) {
        /* h2c with prior knowledge (RFC 9113 §3.3): the preface as the connection's first
         * bytes, looked for before the HTTP/1.1 parser sees them. A prefix of it waits
         * for the rest (under the head timeout); anything else is HTTP/1.1. */
        size_t have = evbuffer_get_length(in), n = have < H2_PREFACE_LEN ? have : H2_PREFACE_LEN;
        char head[H2_PREFACE_LEN];
        if (evbuffer_copyout(in, head, n) != (ev_ssize_t)n || memcmp(head, H2_PREFACE, n) != 0)
            c->h2c_check = false;
        else if (n < H2_PREFACE_LEN)
            return;
        else {
            to_h2(c, in);
            return;
        }
    }

    /* the input's length, kept here: nothing else takes from it while this runs; the
     * loop's time, read once for all the requests of this read */
    size_t have = evbuffer_get_length(in);
    uint64_t now = weft_loop_time(c->loop);
    while (!c->write_paused && c->file_fd < 0 && !close_after && have > 0) {
        size_t len = evbuffer_get_contiguous_space(in), used = 0;
        const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
        bool was_in = http_parser_in_request(c->parser);
        enum http_parse_event ev = http_parser_feed(c->parser, data, len, &used);
        evbuffer_drain(in, used);
        have -= used;
        c->in_left = have;
        if (!was_in && http_parser_in_request(c->parser))
            arm_at(c, T_HEAD, now, c->svc->header_timeout_ms);  /* a head starts: slowloris */
        switch (ev) {
        case HTTP_EV_MORE:
            break;
        case HTTP_EV_HEAD: {
            const struct http_request *r = http_parser_request(c->parser);
            if (r->has_body)
                arm_at(c, T_HEAD, now, c->svc->header_timeout_ms);  /* the body's allowance */
            if (r->expect_continue && r->has_body) {
                /* A static file's answer never depends on the content, so it is known
                 * now: send it instead of "100 Continue" (RFC 9110 §10.1.1), and read and
                 * discard the content if the client sends it anyway. */
                c->answered = true;
                if (!respond(c, r, now)) {
                    close_after = unread = true;
                    break;
                }
                if (c->file_fd >= 0 && !pump_file(c))
                    return;
            }
            break;
        }
        case HTTP_EV_DONE:
            if (c->answered) {
                c->answered = false;        /* its content, read: on to the next request */
                close_after = c->svc->draining;     /* (answered keep-alive before a drain) */
            } else
                close_after = !respond(c, http_parser_request(c->parser), now);
            http_parser_next(c->parser);
            arm_at(c, T_IDLE, now, c->svc->keepalive_timeout_ms);
            if (c->file_fd >= 0 && !pump_file(c))
                return;
            /* A read can hold thousands of pipelined requests: hand over what
             * is ready, so the transport's high-water mark (pause_writing)
             * bounds our memory instead of the client's appetite. */
            if (have > 0 && evbuffer_get_length(c->out) >= OUT_FLUSH)
                flush(c);
            break;
        case HTTP_EV_ERROR:
            if (!c->answered)               /* else its content broke the rules: just go */
                fail_request(c);
            close_after = unread = true;
            break;
        }
    }
    flush(c);
    if (c->file_fd >= 0) {
        /* the rest of the file follows as the transport drains: on_resume */
        c->close_after_file = close_after || c->svc->draining;
        if (evbuffer_get_length(in) > 0)
            weft_transport_pause_reading(c->tr);
        return;
    }
    if (close_after && !c->eof &&
        (unread || evbuffer_get_length(in) > 0 || http_parser_in_request(c->parser))) {
        linger(c);
    } else if (close_after || (c->eof && !http_parser_in_request(c->parser))) {
        c->closing = true;
        c->kind = T_NONE;
        weft_transport_close(c->tr);
    } else if (c->write_paused && evbuffer_get_length(in) > 0) {
        weft_transport_pause_reading(c->tr);
    }
}

static int
conn_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct conn *c = (struct conn *)p;
    c->in = in;
    if (c->lingering)
        linger_data(c);
    else if (!c->closing)
        process(c);
    return 0;
}

static bool
conn_eof(struct weft_protocol *p)
{
    struct conn *c = (struct conn *)p;
    c->eof = true;
    /* a file still being sent, or requests queued behind a paused write: finish them, then
     * close */
    return !c->closing && (c->file_fd >= 0 ||
                           (c->write_paused && c->in && evbuffer_get_length(c->in) > 0));
}

static void
on_resume(void *arg)
{
    struct conn *c = arg;
    c->resume = NULL;
    if (c->closing)
        return;
    if (c->file_fd >= 0) {
        if (!pump_file(c) || c->file_fd >= 0)
            return;
        if (c->close_after_file) {
            c->closing = true;
            c->kind = T_NONE;
            weft_transport_close(c->tr);
            return;
        }
    }
    weft_transport_resume_reading(c->tr);
    if (c->in)
        process(c);
}

static void
conn_pause_writing(struct weft_protocol *p)
{
    ((struct conn *)p)->write_paused = true;
}

static void
conn_resume_writing(struct weft_protocol *p)
{
    struct conn *c = (struct conn *)p;
    c->write_paused = false;
    if (c->resume == NULL && !c->closing)
        c->resume = weft_call_soon(c->loop, on_resume, c);
    if (c->resume == NULL && !c->closing)
        weft_transport_resume_reading(c->tr);
}

static void
conn_free(struct conn *c)
{
    if (c->pprev) {
        *c->pprev = c->next;
        if (c->next)
            c->next->pprev = c->pprev;
    }
    if (c->timer)
        weft_handle_cancel(c->timer);
    if (c->resume)
        weft_handle_cancel(c->resume);
    drop_file(c);
    http_parser_free(c->parser);
    evbuffer_free(c->out);
    free(c);
}

static void
conn_lost(struct weft_protocol *p, int error)
{
    (void)error;
    conn_free((struct conn *)p);
}

static const struct weft_protocol_ops conn_ops = {
    .connection_made = conn_made,
    .data_received = conn_data,
    .eof_received = conn_eof,
    .connection_lost = conn_lost,               /* the last callback: frees the conn */
    .pause_writing = conn_pause_writing,
    .resume_writing = conn_resume_writing,
};

static struct weft_protocol *
http_protocol_new(void *svc)
{
    struct http_service *s = svc;
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->base.ops = &conn_ops;
    c->svc = s;
    c->file_fd = -1;
    c->out = evbuffer_new();
    c->parser = http_parser_new(&s->limits);
    if (c->out == NULL || c->parser == NULL) {
        if (c->out)
            evbuffer_free(c->out);
        http_parser_free(c->parser);
        free(c);
        return NULL;
    }
    return &c->base;
}

/* What a TLS client may negotiate with us (ALPN): h2 first where http2 is on. */
static const char *const http_alpn[] = { "http/1.1", NULL };
static const char *const http_alpn_h2[] = { "h2", "http/1.1", NULL };

static const char *const *
http_service_alpn(void *svc)
{
    return ((struct http_service *)svc)->http2 ? http_alpn_h2 : http_alpn;
}

/*
 * A drain (SIGTERM, or a reload retiring this worker), for one HTTP/1.1 connection: idle
 * between requests, it closes now (what is queued still goes out); in the middle of one,
 * the answer says Connection: close (respond sees svc->draining) and the connection
 * closes after it; sending a file, it closes once the file is out.
 */
static void
conn_drain(struct conn *c)
{
    if (c->closing || c->lingering)
        return;
    if (c->file_fd >= 0) {
        c->close_after_file = true;
        return;
    }
    if ((c->kind == T_IDLE || c->kind == T_SEND) && !http_parser_in_request(c->parser) &&
        (c->in == NULL || evbuffer_get_length(c->in) == 0)) {
        c->closing = true;
        c->kind = T_NONE;
        weft_transport_close(c->tr);
    }
}

static void
http_drain(void *svc)
{
    struct http_service *s = svc;

    s->draining = true;
    for (struct conn *c = s->h1_conns, *next; c != NULL; c = next) {
        next = c->next;
        conn_drain(c);
    }
    h2_drain(svc);
}

WEFT_PLUGIN_EXPORT const struct weft_plugin weft_plugin = {
    .abi = WEFT_PLUGIN_ABI,
    .size = sizeof(struct weft_plugin),
    .name = "http",
    .version = WEFT_VERSION_STRING,
    .summary = "HTTP/1.1 and HTTP/2 static file server",
    .service_new = http_service_new,
    .configure = http_configure,
    .service_check = http_service_check,
    .service_free = http_service_free,
    .protocol_new = http_protocol_new,
    .alpn = http_alpn,
    .reopen = http_reopen,
    .service_alpn = http_service_alpn,
    .drain = http_drain,
};
