/* SPDX-License-Identifier: MIT */
/* http.c: the http plugin: config keys, the connection protocol, keep-alive, files, access log. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <weft/weft.h>

#include "files.h"
#include "request.h"
#include "response.h"

#define TEST_PAGE "<h1>Web Server Test</h1>"
#define CACHE_MAX_FILE (64u * 1024)
#define CACHE_MAX_TOTAL (32u * 1024 * 1024)
#define OUT_FLUSH (64u * 1024)     /* responses batched before a mid-batch flush */
#define FILE_CHUNK (64u * 1024)    /* a file body read with pread, where there is no sendfile */
#define NC_HINT "This server expects CRLF line endings. With netcat, use nc -C."

struct http_service {
    char *root;                 /* NULL: the built-in test page */
    char *root_real;            /* realpath(root) */
    int rootfd;
    char *index;
    bool autoindex, follow_symlinks, dotfiles, server_tokens;
    uint64_t header_timeout_ms, keepalive_timeout_ms;
    uint64_t lingering_time_ms, lingering_timeout_ms;   /* see linger() */
    struct http_limits limits;
    char *access_log;           /* "off", "stderr" or a path */
    int log_fd;                 /* -1 when off */
    char *server_name;
    char server[64];            /* the Server header value, "" for none */
    struct http_mime *mime;
    struct http_cache *cache;
    /* "HTTP/1.x 200 OK", Date and Server lines, remade once a second */
    time_t prefix_time;
    char prefix[2][160];
    size_t prefix_len[2];
};

enum timer_kind { T_NONE, T_HEAD, T_IDLE, T_SEND, T_LINGER };

struct conn {
    struct weft_protocol base;
    struct http_service *svc;
    struct weft_transport *tr;
    struct weft_loop *loop;
    struct evbuffer *in;        /* the transport's, borrowed */
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
               : !strcmp(key, "server_tokens") ? &s->server_tokens : NULL;
    if (flag) {
        if (parse_bool(v, &b) < 0)
            BAD("expected on or off, not '%s'", v);
        *flag = b;
        return 0;
    }
    uint64_t *dur = !strcmp(key, "header_timeout") ? &s->header_timeout_ms
                  : !strcmp(key, "keepalive_timeout") ? &s->keepalive_timeout_ms
                  : !strcmp(key, "lingering_time") ? &s->lingering_time_ms
                  : !strcmp(key, "lingering_timeout") ? &s->lingering_timeout_ms : NULL;
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
             "max_headers, max_body_size, access_log, server_tokens, server_name");
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

/* Copy s into the log line with quotes, backslashes and control bytes escaped
 * (a request must not be able to forge log lines). */
static size_t
log_escape(char *out, size_t room, const char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < room; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, room - o, "\\x%02X", c);
        else
            out[o++] = (char)c;
    }
    return o;
}

static void
access_log(struct conn *c, const struct http_request *r, int status, uint64_t bytes)
{
    static __thread time_t when = -1;
    static __thread char stamp[40];
    char line[2048], peer[160];
    size_t n = 0;
    time_t now = time(NULL);

    if (c->svc->log_fd < 0)
        return;
    if (now != when) {
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%d/%b/%Y:%H:%M:%S %z", &tm);
        when = now;
    }
    weft_transport_peer_string(c->tr, peer, sizeof(peer));
    /* Combined format logs the host only; a unix: peer ("unix:pid=N,uid=N", a path with
     * blanks escaped) is one word already, and all of it says who. */
    char *colon = strncmp(peer, "unix:", 5) != 0 ? strrchr(peer, ':') : NULL;
    if (colon)
        *colon = '\0';
    const char *host = peer;
    if (host[0] == '[') {
        host++;
        char *rb = strchr(host, ']');
        if (rb)
            *rb = '\0';
    }
    n += (size_t)snprintf(line, sizeof(line), "%s - - [%s] \"", host, stamp);
    if (r && r->method_name && r->target) {
        n += log_escape(line + n, sizeof(line) - n - 600, r->method_name, strlen(r->method_name));
        line[n++] = ' ';
        n += log_escape(line + n, sizeof(line) - n - 600, r->target, r->target_len);
        n += (size_t)snprintf(line + n, sizeof(line) - n, " HTTP/%u.%u", r->major, r->minor);
    } else {
        line[n++] = '-';
    }
    n += (size_t)snprintf(line + n, sizeof(line) - n, "\" %d %" PRIu64 " \"", status, bytes);
    const char *ref = r && r->referer ? r->referer : "-";
    const char *ua = r && r->user_agent ? r->user_agent : "-";
    n += log_escape(line + n, sizeof(line) - n - 300, ref, strlen(ref));
    n += (size_t)snprintf(line + n, sizeof(line) - n, "\" \"");
    n += log_escape(line + n, sizeof(line) - n - 4, ua, strlen(ua));
    line[n++] = '"';
    line[n++] = '\n';
    /* O_APPEND: one write per line keeps lines whole across workers. */
    if (write(c->svc->log_fd, line, n) < 0)
        weft_log(WEFT_LOG_WARNING, "http: access log: %s", strerror(errno));
}

/* ---- responses ---- */

struct reply {
    int status;
    uint64_t bytes;             /* body bytes sent, for the log */
    bool keep_alive;
};

static void
send_error(struct conn *c, const struct http_request *r, struct reply *rep, int status,
           const char *extra, const char *hint)
{
    bool head = r && r->method == HTTP_M_HEAD;
    rep->status = status;
    int n = http_error_write(c->out, status, r && r->major == 1 ? r->minor : 1,
                             c->svc->server[0] ? c->svc->server : NULL, rep->keep_alive, head,
                             extra, hint);
    if (n < 0) {
        rep->keep_alive = false;
        return;
    }
    rep->bytes = (uint64_t)n;
}

/* Percent-encode a normalised path for a Location header or a link. */
static int
url_encode(struct evbuffer *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("/-._~!$&'()*+,;=:@", ch)) {
            if (evbuffer_add(out, s, 1) < 0)
                return -ENOMEM;
        } else {
            char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };
            if (evbuffer_add(out, e, 3) < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

static void
send_redirect_slash(struct conn *c, const struct http_request *r, struct reply *rep,
                    const char *path)
{
    struct evbuffer *loc = evbuffer_new();
    char extra[PATH_MAX * 3 + 32];
    /* The query goes along (nginx keeps it): as the client sent it, which llhttp has
     * checked to hold no space or control byte; the fragment never reaches a server. */
    const char *q = memchr(r->target, '?', r->target_len);
    size_t qlen = 0;
    if (q != NULL) {
        qlen = (size_t)(r->target + r->target_len - q);
        const char *hash = memchr(q, '#', qlen);
        if (hash != NULL)
            qlen = (size_t)(hash - q);
        for (size_t i = 0; i < qlen; i++)
            if ((unsigned char)q[i] <= 0x20 || (unsigned char)q[i] >= 0x7f)
                qlen = 0;
    }
    if (loc == NULL || url_encode(loc, path) < 0 || evbuffer_add(loc, "/", 1) < 0 ||
        (qlen > 1 && evbuffer_add(loc, q, qlen) < 0) ||
        evbuffer_get_length(loc) > sizeof(extra) - 32) {
        evbuffer_free(loc);
        send_error(c, r, rep, 500, NULL, NULL);
        return;
    }
    size_t n = evbuffer_get_length(loc);
    memcpy(extra, "Location: ", 10);
    evbuffer_remove(loc, extra + 10, n);
    memcpy(extra + 10 + n, "\r\n", 3);
    evbuffer_free(loc);
    send_error(c, r, rep, 301, extra, NULL);
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* autoindex: an HTML list of the directory's entries, sorted by name. */
static void
send_listing(struct conn *c, const struct http_request *r, struct reply *rep, int dirfd,
             const char *path)
{
    struct evbuffer *body = evbuffer_new();
    char **names = NULL;
    size_t count = 0, cap = 0;
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;

    if (body == NULL || d == NULL) {
        if (fd >= 0 && d == NULL)
            close(fd);
        goto fail;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (!c->svc->dotfiles || !strcmp(de->d_name, ".") ||
                                     !strcmp(de->d_name, "..")))
            continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof(*nn));
            if (nn == NULL)
                goto fail;
            names = nn;
            cap = ncap;
        }
        struct stat st;
        bool dir = fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        size_t len = strlen(de->d_name);
        char *nm = malloc(len + 2);
        if (nm == NULL)
            goto fail;
        memcpy(nm, de->d_name, len);
        nm[len] = dir ? '/' : '\0';
        nm[len + 1] = '\0';
        names[count++] = nm;
    }
    qsort(names, count, sizeof(*names), name_cmp);
    if (evbuffer_add_printf(body, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                            "<title>Index of ") < 0 || http_html_escape(body, path) < 0 ||
        evbuffer_add_printf(body, "</title></head>\n<body><h1>Index of ") < 0 ||
        http_html_escape(body, path) < 0 ||
        evbuffer_add_printf(body, "</h1>\n<ul>\n<li><a href=\"../\">../</a></li>\n") < 0)
        goto fail;
    for (size_t i = 0; i < count; i++) {
        if (evbuffer_add_printf(body, "<li><a href=\"") < 0 || url_encode(body, names[i]) < 0 ||
            evbuffer_add_printf(body, "\">") < 0 || http_html_escape(body, names[i]) < 0 ||
            evbuffer_add_printf(body, "</a></li>\n") < 0)
            goto fail;
    }
    if (evbuffer_add_printf(body, "</ul></body></html>\n") < 0)
        goto fail;
    struct http_head h = {
        .status = 200, .minor = r->minor, .server = c->svc->server[0] ? c->svc->server : NULL,
        .content_type = "text/html; charset=utf-8",
        .content_length = evbuffer_get_length(body), .keep_alive = rep->keep_alive,
    };
    if (http_head_write(c->out, &h) < 0)
        goto fail;
    rep->status = 200;
    if (r->method != HTTP_M_HEAD) {
        rep->bytes = h.content_length;
        evbuffer_add_buffer(c->out, body);
    }
    goto out;
fail:
    send_error(c, r, rep, 500, NULL, NULL);
out:
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    if (d)
        closedir(d);
    evbuffer_free(body);
}

static int flush(struct conn *c);

/*
 * The body of a file response, from memory (cached) or from fd (sendfile).
 * Decides 304 / 206 / 416 / 200 from the validators first.
 */
static void
send_file(struct conn *c, const struct http_request *r, struct reply *rep,
          const struct http_cached *mem, int fd, const struct stat *st, const char *mime)
{
    char etag[40], lastmod[30], extra[256];
    uint64_t size = mem ? mem->size : (uint64_t)st->st_size;
    time_t mtime = mem ? mem->mtime : st->st_mtime;
    uint64_t start, len;
    int status;

    if (mem) {
        memcpy(etag, mem->etag, sizeof(etag));
        memcpy(lastmod, mem->last_modified, sizeof(lastmod));
    } else {
        http_etag_format(etag, sizeof(etag), mtime, size);
        http_date_format(mtime, lastmod);
    }

    const struct http_preconditions q = {
        .if_match = r->if_match, .if_unmodified_since = r->if_unmodified_since,
        .if_none_match = r->if_none_match, .if_modified_since = r->if_modified_since,
        .range = r->range, .if_range = r->if_range, .get = r->method == HTTP_M_GET,
    };
    struct http_file_answer a = http_file_decide(&q, etag, lastmod, mtime, size);
    int n = snprintf(extra, sizeof(extra), "Last-Modified: %s\r\nETag: %s\r\n", lastmod, etag);
    switch (a.status) {
    case 412:
        send_error(c, r, rep, 412, NULL, NULL);
        goto done;
    case 304: {
        struct http_head h = {
            .status = 304, .minor = r->minor, .server = c->svc->server[0] ? c->svc->server : NULL,
            .no_length = true, .keep_alive = rep->keep_alive, .extra = extra,
        };
        /* a 304 has no body, and its Content-Length would be the 200's: send none */
        rep->status = 304;
        if (http_head_write(c->out, &h) < 0)
            rep->keep_alive = false;
        goto done;
    }
    case 416:
        snprintf(extra + n, sizeof(extra) - (size_t)n, "Content-Range: bytes */%" PRIu64 "\r\n",
                 size);
        send_error(c, r, rep, 416, extra, NULL);
        goto done;
    case 206:
        n += snprintf(extra + n, sizeof(extra) - (size_t)n,
                      "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n",
                      a.start, a.start + a.len - 1, size);
        break;
    }
    status = a.status;
    start = a.start;
    len = a.len;
    snprintf(extra + n, sizeof(extra) - (size_t)n, "Accept-Ranges: bytes\r\n");
    struct http_head h = {
        .status = status, .minor = r->minor, .server = c->svc->server[0] ? c->svc->server : NULL,
        .content_type = mime, .content_length = len, .keep_alive = rep->keep_alive,
        .extra = extra,
    };
    rep->status = status;
    if (http_head_write(c->out, &h) < 0) {
        rep->keep_alive = false;
        goto done;
    }
    if (r->method == HTTP_M_HEAD || len == 0)
        goto done;
    if (mem) {
        if (evbuffer_add(c->out, mem->data + start, (size_t)len) < 0) {
            rep->keep_alive = false;        /* the head went out: the connection must go */
            goto done;
        }
    } else {
        if (!c->sendfile) {
            /* TLS must encrypt the bytes, so they pass through user space: pump_file reads
             * them with pread as the transport drains. (A mapping of the file would save
             * that copy, but a file truncated meanwhile raises SIGBUS and kills the worker;
             * a pread just comes up short.) */
            c->file_fd = fd;
            c->file_off = start;
            c->file_left = len;
            fd = -1;
            rep->bytes = len;
            goto done;
        }
        /* On a plain socket the transport sends the file with sendfile(2), after the
         * head, and the bytes never enter user space (a file that shrinks meanwhile ends
         * the connection: the client sees a short body, never a wrong one). The
         * transport takes fd. */
        int sock = -1, on = 1, off = 0;
        size_t sl = sizeof(sock);
        /* Cork the socket while the head is handed over, so that it leaves with the
         * file's first pages, not in a packet of its own (nginx's tcp_nopush). */
        if (weft_transport_get_extra_info(c->tr, "socket", &sock, &sl) == 0)
            (void)setsockopt(sock, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
        if (flush(c) < 0) {
            rep->keep_alive = false;
            goto done;
        }
        int rc = weft_transport_sendfile(c->tr, fd, start, len);
        if (sock >= 0)
            (void)setsockopt(sock, IPPROTO_TCP, TCP_CORK, &off, sizeof(off));
        if (rc < 0) {
            rep->keep_alive = false;    /* the head went out: the connection must go */
            goto done;
        }
        fd = -1;
    }
    rep->bytes = len;
done:
    if (fd >= 0)
        close(fd);
}

/*
 * The hot path: a 200 for a cached file with no validator or range in the
 * request. Everything but the Connection line is pre-formatted, so this is
 * three memcpy's and the body, no printf.
 */
static bool
send_cached_fast(struct conn *c, const struct http_request *r, struct reply *rep,
                 const struct http_cached *mem)
{
    struct http_service *s = c->svc;
    static const char ka[] = "Connection: keep-alive\r\n\r\n";
    static const char cl[] = "Connection: close\r\n\r\n";
    time_t now = time(NULL);
    unsigned v = r->minor ? 1 : 0;

    if (r->if_none_match || r->if_modified_since || r->if_match || r->if_unmodified_since ||
        r->range)
        return false;
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
    if (s->prefix_len[v] == 0)
        return false;
    bool body = r->method != HTTP_M_HEAD;
    size_t total = s->prefix_len[v] + mem->headers_len + sizeof(ka) + (body ? mem->size : 0);
    if (evbuffer_expand(c->out, total) < 0 ||
        evbuffer_add(c->out, s->prefix[v], s->prefix_len[v]) < 0 ||
        evbuffer_add(c->out, mem->headers, mem->headers_len) < 0 ||
        (rep->keep_alive ? evbuffer_add(c->out, ka, sizeof(ka) - 1)
                         : evbuffer_add(c->out, cl, sizeof(cl) - 1)) < 0 ||
        (body && evbuffer_add(c->out, mem->data, (size_t)mem->size) < 0)) {
        rep->keep_alive = false;
        rep->status = 200;
        return true;
    }
    rep->status = 200;
    rep->bytes = body ? mem->size : 0;
    return true;
}

static int
errno_status(int err)
{
    switch (err) {
    case -ENOENT: case -ENOTDIR: case -ENAMETOOLONG:
        return 404;
    case -EMFILE: case -ENFILE: case -ENOMEM:
        return 503;
    case -ELOOP: case -EXDEV: case -EACCES: case -EPERM: case -ENXIO:
        return 403;
    default:
        return 500;
    }
}

static void
serve_path(struct conn *c, const struct http_request *r, struct reply *rep, char *path)
{
    struct http_service *s = c->svc;
    uint64_t now = weft_loop_time(c->loop);
    const struct http_cached *mem;
    struct stat st;
    int fd;

    if (!s->dotfiles && http_path_has_dotfile(path)) {
        send_error(c, r, rep, 404, NULL, NULL);
        return;
    }
    if ((mem = http_cache_get(s->cache, path, now)) != NULL) {
        if (!send_cached_fast(c, r, rep, mem))
            send_file(c, r, rep, mem, -1, NULL, mem->mime);
        return;
    }
    fd = http_open_beneath(s->rootfd, s->root_real, path + 1, s->follow_symlinks);
    if (fd < 0) {
        send_error(c, r, rep, errno_status(fd), NULL, NULL);
        return;
    }
    if (fstat(fd, &st) < 0) {
        int rc = -errno;
        close(fd);
        send_error(c, r, rep, errno_status(rc), NULL, NULL);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        size_t len = strlen(path);
        if (path[len - 1] != '/') {
            close(fd);
            send_redirect_slash(c, r, rep, path);
            return;
        }
        int ifd = openat(fd, s->index, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
        struct stat ist;
        if (ifd >= 0 && fstat(ifd, &ist) == 0 && S_ISREG(ist.st_mode)) {
            close(fd);
            const char *mime = http_mime_lookup(s->mime, s->index);
            send_file(c, r, rep, NULL, ifd, &ist, mime);
            return;
        }
        if (ifd >= 0)
            close(ifd);
        if (s->autoindex)
            send_listing(c, r, rep, fd, path);
        else
            send_error(c, r, rep, 403, NULL, NULL);
        close(fd);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        send_error(c, r, rep, 403, NULL, NULL);
        return;
    }
    const char *mime = http_mime_lookup(s->mime, path);
    mem = http_cache_put(s->cache, path, fd, &st, mime, now);
    if (mem) {
        close(fd);
        if (!send_cached_fast(c, r, rep, mem))
            send_file(c, r, rep, mem, -1, NULL, mime);
    } else {
        send_file(c, r, rep, NULL, fd, &st, mime);
    }
}

static void
serve_test_page(struct conn *c, const struct http_request *r, struct reply *rep,
                const char *path)
{
    if (strcmp(path, "/") != 0 && strcmp(path, "/index.html") != 0) {
        send_error(c, r, rep, 404, NULL, NULL);
        return;
    }
    struct http_head h = {
        .status = 200, .minor = r->minor, .server = c->svc->server[0] ? c->svc->server : NULL,
        .content_type = "text/html; charset=utf-8", .content_length = sizeof(TEST_PAGE) - 1,
        .keep_alive = rep->keep_alive,
    };
    rep->status = 200;
    if (http_head_write(c->out, &h) < 0) {
        rep->keep_alive = false;
        return;
    }
    if (r->method != HTTP_M_HEAD) {
        if (evbuffer_add(c->out, TEST_PAGE, sizeof(TEST_PAGE) - 1) < 0)
            rep->keep_alive = false;
        rep->bytes = sizeof(TEST_PAGE) - 1;
    }
}

/* Answer one complete request into c->out; false if the connection must close after. */
static bool
respond(struct conn *c, const struct http_request *r)
{
    struct reply rep = { .keep_alive = r->keep_alive && !r->upgrade };
    char path[PATH_MAX];

    if (r->method == HTTP_M_OTHER) {
        send_error(c, r, &rep, 405, "Allow: GET, HEAD\r\n", NULL);
    } else {
        int n = http_path_normalise(r->target, r->target_len, path, sizeof(path));
        if (n == HTTP_PATH_BAD) {
            rep.keep_alive = false;     /* "GET *", "GET http:x": not a path; as nginx, close */
            send_error(c, r, &rep, 400, NULL, NULL);
        }
        else if (n < 0)
            send_error(c, r, &rep, 403, NULL, NULL);
        else if (c->svc->root == NULL)
            serve_test_page(c, r, &rep, path);
        else
            serve_path(c, r, &rep, path);
    }
    access_log(c, r, rep.status, rep.bytes);
    return rep.keep_alive;
}

/* ---- timers ---- */

static void on_timer(void *arg);

/* One timer per connection at most: a later deadline only moves c->deadline,
 * the pending call notices and re-arms; an earlier one re-schedules. */
static void
arm(struct conn *c, enum timer_kind kind, uint64_t delay_ms)
{
    uint64_t now = weft_loop_time(c->loop);
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
        struct reply rep = { .keep_alive = false };
        send_error(c, NULL, &rep, 408, NULL, NULL);
        access_log(c, NULL, 408, rep.bytes);
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

static int
conn_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct conn *c = (struct conn *)p;
    void *ssl;
    size_t len = sizeof(ssl);

    c->tr = tr;
    c->loop = weft_transport_get_loop(tr);
    /* TLS must read a file's bytes to encrypt them; a plain socket sends them with
     * weft_transport_sendfile */
    c->sendfile = weft_transport_get_extra_info(tr, "ssl_object", &ssl, &len) != 0;
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
    struct reply rep = { .keep_alive = false };
    const char *hint = http_parser_bare_lf(c->parser) ? NC_HINT : http_parser_reason(c->parser);
    /* answer errors as HTTP/1.1 unless the head said 1.0 */
    send_error(c, r->method_name ? r : NULL, &rep, status, NULL, hint);
    access_log(c, r->method_name ? r : NULL, status, rep.bytes);
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

    while (!c->write_paused && c->file_fd < 0 && !close_after && evbuffer_get_length(in) > 0) {
        size_t len = evbuffer_get_contiguous_space(in), used = 0;
        const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
        bool was_in = http_parser_in_request(c->parser);
        enum http_parse_event ev = http_parser_feed(c->parser, data, len, &used);
        evbuffer_drain(in, used);
        if (!was_in && http_parser_in_request(c->parser))
            arm(c, T_HEAD, c->svc->header_timeout_ms);      /* a head starts: slowloris clock */
        switch (ev) {
        case HTTP_EV_MORE:
            break;
        case HTTP_EV_HEAD: {
            const struct http_request *r = http_parser_request(c->parser);
            if (r->has_body)
                arm(c, T_HEAD, c->svc->header_timeout_ms);  /* the body's own allowance */
            if (r->expect_continue && r->has_body) {
                /* A static file's answer never depends on the content, so it is known
                 * now: send it instead of "100 Continue" (RFC 9110 §10.1.1), and read and
                 * discard the content if the client sends it anyway. */
                c->answered = true;
                if (!respond(c, r)) {
                    close_after = unread = true;
                    break;
                }
                if (c->file_fd >= 0 && !pump_file(c))
                    return;
            }
            break;
        }
        case HTTP_EV_DONE:
            if (c->answered)
                c->answered = false;        /* its content, read: on to the next request */
            else
                close_after = !respond(c, http_parser_request(c->parser));
            http_parser_next(c->parser);
            arm(c, T_IDLE, c->svc->keepalive_timeout_ms);
            if (c->file_fd >= 0 && !pump_file(c))
                return;
            /* A read can hold thousands of pipelined requests: hand over what
             * is ready, so the transport's high-water mark (pause_writing)
             * bounds our memory instead of the client's appetite. */
            if (evbuffer_get_length(c->out) >= OUT_FLUSH)
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
        c->close_after_file = close_after;
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
conn_lost(struct weft_protocol *p, int error)
{
    struct conn *c = (struct conn *)p;
    if (c->timer)
        weft_handle_cancel(c->timer);
    if (c->resume)
        weft_handle_cancel(c->resume);
    drop_file(c);
    http_parser_free(c->parser);
    evbuffer_free(c->out);
    free(c);
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

/* What a TLS client may negotiate with us (ALPN). */
static const char *const http_alpn[] = { "http/1.1", NULL };

WEFT_PLUGIN_EXPORT const struct weft_plugin weft_plugin = {
    .abi = WEFT_PLUGIN_ABI,
    .size = sizeof(struct weft_plugin),
    .name = "http",
    .version = WEFT_VERSION_STRING,
    .summary = "HTTP/1.1 static file server",
    .service_new = http_service_new,
    .configure = http_configure,
    .service_check = http_service_check,
    .service_free = http_service_free,
    .protocol_new = http_protocol_new,
    .alpn = http_alpn,
    .reopen = http_reopen,
};
