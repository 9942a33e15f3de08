/* SPDX-License-Identifier: MIT */
/* serve.c: the answer to a request (files, index, listings, validators, ranges, error pages,
 * the access log), written through a protocol's framing ops (h1 in http.c, h2 in h2.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <weft/log.h>

#include "serve.h"

#define TEST_PAGE "<h1>Web Server Test</h1>"

/* ---- access log ---- */

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

void
http_access_log(const struct http_service *s, const char *peer_in, const struct http_request *r,
                int status, uint64_t bytes)
{
    static __thread time_t when = -1;
    static __thread char stamp[40];
    char line[2048], peer[160];
    size_t n = 0;
    time_t now = time(NULL);

    if (s->log_fd < 0)
        return;
    if (now != when) {
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%d/%b/%Y:%H:%M:%S %z", &tm);
        when = now;
    }
    snprintf(peer, sizeof(peer), "%s", peer_in);
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
        /* "HTTP/1.1", and nginx's "HTTP/2.0" for h2 */
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
    if (write(s->log_fd, line, n) < 0)
        weft_log(WEFT_LOG_WARNING, "http: access log: %s", strerror(errno));
}

/* ---- through the framing ---- */

static const char *
server_of(const struct http_exchange *x)
{
    return x->svc->server[0] ? x->svc->server : NULL;
}

static bool
is_head(const struct http_exchange *x)
{
    return x->r && x->r->method == HTTP_M_HEAD;
}

/* The head with what every answer shares filled in; false (and x->failed) on failure. */
static bool
put_head(struct http_exchange *x, struct http_head *h)
{
    h->minor = x->r && x->r->major == 1 ? x->r->minor : 1;
    h->server = server_of(x);
    h->keep_alive = x->keep_alive;
    x->status = h->status;
    if (x->ops->head(x, h) < 0) {
        x->failed = true;
        x->keep_alive = false;
        return false;
    }
    return true;
}

static void
put_failed(struct http_exchange *x)
{
    x->failed = true;
    x->keep_alive = false;      /* the head went out: the connection must go (h1) */
}

void
http_serve_error(struct http_exchange *x, int status, const char *extra, const char *hint)
{
    struct evbuffer *body = evbuffer_new();

    x->status = status;
    if (body == NULL || http_error_body(body, status, hint) < 0) {
        evbuffer_free(body);
        put_failed(x);
        return;
    }
    struct http_head h = {
        .status = status, .content_type = "text/html; charset=utf-8",
        .content_length = evbuffer_get_length(body), .extra = extra,
    };
    if (put_head(x, &h) && !is_head(x)) {
        if (x->ops->body_buffer(x, body) < 0)
            put_failed(x);
        else
            x->bytes = h.content_length;
    }
    evbuffer_free(body);
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
send_redirect_slash(struct http_exchange *x, const char *path)
{
    const struct http_request *r = x->r;
    struct evbuffer *loc = evbuffer_new();
    char extra[PATH_MAX * 3 + 32];
    /* The query goes along (nginx keeps it): as the client sent it, which llhttp has
     * checked to hold no space or control byte (h2.c checks the same); the fragment
     * never reaches a server. */
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
        if (loc)
            evbuffer_free(loc);
        http_serve_error(x, 500, NULL, NULL);
        return;
    }
    size_t n = evbuffer_get_length(loc);
    memcpy(extra, "Location: ", 10);
    evbuffer_remove(loc, extra + 10, n);
    memcpy(extra + 10 + n, "\r\n", 3);
    evbuffer_free(loc);
    http_serve_error(x, 301, extra, NULL);
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* autoindex: an HTML list of the directory's entries, sorted by name. */
static void
send_listing(struct http_exchange *x, int dirfd, const char *path)
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
        if (de->d_name[0] == '.' && (!x->svc->dotfiles || !strcmp(de->d_name, ".") ||
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
    if (count > 1)
        qsort(names, count, sizeof(*names), name_cmp);  /* (names is NULL for an empty dir) */
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
        .status = 200, .content_type = "text/html; charset=utf-8",
        .content_length = evbuffer_get_length(body),
    };
    if (put_head(x, &h) && !is_head(x)) {
        if (x->ops->body_buffer(x, body) < 0)
            put_failed(x);
        else
            x->bytes = h.content_length;
    }
    goto out;
fail:
    http_serve_error(x, 500, NULL, NULL);
out:
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
    if (d)
        closedir(d);
    if (body)
        evbuffer_free(body);
}

/* No validator, no range: the answer is a plain 200 of the whole file. */
static bool
unconditional(const struct http_request *r)
{
    return !r->if_none_match && !r->if_modified_since && !r->if_match && !r->if_unmodified_since &&
           !r->range;
}

/*
 * The body of a file response, from memory (mem cached, with data) or from fd (which this
 * takes; mem, if not NULL, its head from http_cache_head). Decides 304 / 206 / 416 / 200
 * from the validators first.
 */
static void
send_file(struct http_exchange *x, const struct http_cached *mem, int fd, const struct stat *st,
          const char *mime)
{
    const struct http_request *r = x->r;
    char etag[40], lastmod[30], extra[256];
    uint64_t size = mem ? mem->size : (uint64_t)st->st_size;
    time_t mtime = mem ? mem->mtime : st->st_mtime;

    if (mem && !mem->data && x->ops->cached_file && unconditional(r) &&
        x->ops->cached_file(x, mem, fd))
        return;
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
        http_serve_error(x, 412, NULL, NULL);
        goto done;
    case 304: {
        /* a 304 has no body, and its Content-Length would be the 200's: send none */
        struct http_head h = { .status = 304, .no_length = true, .extra = extra };
        put_head(x, &h);
        goto done;
    }
    case 416:
        snprintf(extra + n, sizeof(extra) - (size_t)n, "Content-Range: bytes */%" PRIu64 "\r\n",
                 size);
        http_serve_error(x, 416, extra, NULL);
        goto done;
    case 206:
        n += snprintf(extra + n, sizeof(extra) - (size_t)n,
                      "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n",
                      a.start, a.start + a.len - 1, size);
        break;
    }
    snprintf(extra + n, sizeof(extra) - (size_t)n, "Accept-Ranges: bytes\r\n");
    struct http_head h = {
        .status = a.status, .content_type = mime, .content_length = a.len, .extra = extra,
    };
    if (!put_head(x, &h) || is_head(x) || a.len == 0)
        goto done;
    if (mem && mem->data) {
        if (x->ops->body(x, mem->data + a.start, (size_t)a.len) < 0) {
            put_failed(x);
            goto done;
        }
    } else {
        int rc = x->ops->file(x, fd, a.start, a.len);
        fd = -1;                            /* taken, whatever rc */
        if (rc < 0) {
            put_failed(x);
            goto done;
        }
    }
    x->bytes = a.len;
done:
    if (fd >= 0)
        close(fd);
}

static void
send_cached(struct http_exchange *x, const struct http_cached *mem)
{
    const struct http_request *r = x->r;

    if (x->ops->cached && unconditional(r) && x->ops->cached(x, mem))
        return;
    send_file(x, mem, -1, NULL, mem->mime);
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
serve_path(struct http_exchange *x, char *path)
{
    struct http_service *s = x->svc;
    const struct http_cached *mem;
    struct stat st;
    int fd;

    if (!s->dotfiles && http_path_has_dotfile(path)) {
        http_serve_error(x, 404, NULL, NULL);
        return;
    }
    if ((mem = http_cache_get(s->cache, path, x->now_ms)) != NULL) {
        send_cached(x, mem);
        return;
    }
    fd = http_open_beneath(s->rootfd, s->root_real, path + 1, s->follow_symlinks);
    if (fd < 0) {
        http_serve_error(x, errno_status(fd), NULL, NULL);
        return;
    }
    if (fstat(fd, &st) < 0) {
        int rc = -errno;
        close(fd);
        http_serve_error(x, errno_status(rc), NULL, NULL);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        size_t len = strlen(path);
        if (path[len - 1] != '/') {
            close(fd);
            send_redirect_slash(x, path);
            return;
        }
        int ifd = openat(fd, s->index, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
        struct stat ist;
        if (ifd >= 0 && fstat(ifd, &ist) == 0 && S_ISREG(ist.st_mode)) {
            close(fd);
            send_file(x, NULL, ifd, &ist, http_mime_lookup(s->mime, s->index));
            return;
        }
        if (ifd >= 0)
            close(ifd);
        if (s->autoindex)
            send_listing(x, fd, path);
        else
            http_serve_error(x, 403, NULL, NULL);
        close(fd);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        http_serve_error(x, 403, NULL, NULL);
        return;
    }
    const char *mime = http_mime_lookup(s->mime, path);
    mem = http_cache_put(s->cache, path, fd, &st, mime, x->now_ms);
    if (mem) {
        close(fd);
        send_cached(x, mem);
    } else {
        /* too big to keep: its head is kept (no printf per request), the bytes come from fd */
        send_file(x, http_cache_head(s->cache, path, &st, mime), fd, &st, mime);
    }
}

static void
serve_test_page(struct http_exchange *x, const char *path)
{
    if (strcmp(path, "/") != 0 && strcmp(path, "/index.html") != 0) {
        http_serve_error(x, 404, NULL, NULL);
        return;
    }
    struct http_head h = {
        .status = 200, .content_type = "text/html; charset=utf-8",
        .content_length = sizeof(TEST_PAGE) - 1,
    };
    if (!put_head(x, &h) || is_head(x))
        return;
    if (x->ops->body(x, TEST_PAGE, sizeof(TEST_PAGE) - 1) < 0)
        put_failed(x);
    else
        x->bytes = sizeof(TEST_PAGE) - 1;
}

void
http_serve(struct http_exchange *x)
{
    const struct http_request *r = x->r;
    char path[PATH_MAX];

    if (r->method == HTTP_M_OTHER) {
        http_serve_error(x, 405, "Allow: GET, HEAD\r\n", NULL);
        return;
    }
    int n = http_path_normalise(r->target, r->target_len, path, sizeof(path));
    if (n == HTTP_PATH_BAD) {
        x->keep_alive = false;      /* "GET *", "GET http:x": not a path; as nginx, close */
        http_serve_error(x, 400, NULL, NULL);
    } else if (n < 0) {
        http_serve_error(x, 403, NULL, NULL);
    } else if (x->svc->root == NULL) {
        serve_test_page(x, path);
    } else {
        serve_path(x, path);
    }
}
