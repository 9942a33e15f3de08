/* SPDX-License-Identifier: MIT */
/* files.c: path normalisation, opening beneath root, MIME table, ranges, validators, file cache. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef __has_include
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define HAVE_OPENAT2 1
#endif
#endif

#include "files.h"

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * The common target, "/dir/name.ext": no escape, query, fragment, control byte or
 * backslash, and no segment that is empty or starts with '.'. It normalises to itself:
 * copy it. -1 for any other (the full walk in http_path_normalise decides).
 */
static int
path_plain(const char *s, size_t len, char *out, size_t outlen)
{
    /* 1: a byte a plain target may hold ('/' too: 0x21-0x7e but '%', '?', '#', '\\') */
    static const unsigned char ok[256] = {
        ['!'] = 1, ['"'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1,
        ['*'] = 1, ['+'] = 1, [','] = 1, ['-'] = 1, ['.'] = 1, ['/'] = 1,
        ['0' ... '9'] = 1, [':'] = 1, [';'] = 1, ['<'] = 1, ['='] = 1, ['>'] = 1, ['@'] = 1,
        ['A' ... 'Z'] = 1, ['['] = 1, [']'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1,
        ['a' ... 'z'] = 1, ['{'] = 1, ['|'] = 1, ['}'] = 1, ['~'] = 1,
    };

    if (len == 0 || len >= outlen || len > INT_MAX || s[0] != '/')
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!ok[ch])
            return -1;
        if (ch == '/' && i + 1 < len && (s[i + 1] == '/' || s[i + 1] == '.'))
            return -1;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return (int)len;
}

int
http_path_normalise(const char *target, size_t len, char *out, size_t outlen)
{
    const char *s = target, *end = target + len;

    if (outlen < 2)
        return HTTP_PATH_BAD;
    int plain = path_plain(target, len, out, outlen);
    if (plain >= 0)
        return plain;
    /* absolute-form: drop "scheme://authority" */
    if (len > 7 && *s != '/' &&
        (strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0)) {
        s += s[4] == ':' ? 7 : 8;
        while (s < end && *s != '/' && *s != '?' && *s != '#')
            s++;
        if (s == end || *s != '/')
            return s == end ? (out[0] = '/', out[1] = '\0', 1) : HTTP_PATH_BAD;
    }
    if (s == end || *s != '/')
        return HTTP_PATH_BAD;
    for (const char *q = s; q < end; q++) {
        if (*q == '?' || *q == '#') {
            end = q;
            break;
        }
    }

    size_t o = 0;           /* bytes in out */
    size_t seg = 0;         /* where the current segment starts in out */
    out[o++] = '/';
    seg = o;
    for (const char *c = s + 1; c <= end; c++) {
        int ch;
        if (c == end || *c == '/') {
            size_t n = o - seg;
            if (n == 0 && c != end)
                continue;                   /* "//" */
            if (n == 1 && out[seg] == '.') {
                o = seg;                    /* "." */
                continue;
            }
            if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
                /* RFC 3986 §5.2.4: ".." removes the segment before it (decoded, so
                 * "%2e%2e" too); above the root it is refused, never clamped. */
                if (seg == 1)
                    return HTTP_PATH_FORBIDDEN;
                o = seg - 1;                /* the '/' before ".." */
                while (o > 0 && out[o - 1] != '/')
                    o--;
                seg = o;
                continue;
            }
            if (c == end)
                break;
            if (o + 1 >= outlen)
                return HTTP_PATH_BAD;
            out[o++] = '/';
            seg = o;
            continue;
        }
        ch = (unsigned char)*c;
        if (ch == '%') {
            int hi = c + 2 < end ? hexval(c[1]) : -1;
            int lo = hi >= 0 ? hexval(c[2]) : -1;
            if (lo < 0)
                return HTTP_PATH_BAD;
            ch = hi * 16 + lo;
            c += 2;
            /* An encoded slash is a name byte, not a separator: refuse it
             * rather than guess (nginx decodes it; Apache refuses). */
            if (ch == '/')
                return HTTP_PATH_FORBIDDEN;
        }
        if (ch < 0x20 || ch == 0x7f || ch == '\\')
            return HTTP_PATH_FORBIDDEN;
        if (o + 1 >= outlen)
            return HTTP_PATH_BAD;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return (int)o;
}

bool
http_path_has_dotfile(const char *path)
{
    /* the dots, found by strchr (most paths have one, in the extension) */
    for (const char *c = path; (c = strchr(c, '.')) != NULL; c++) {
        if (c > path && c[-1] == '/')
            return true;
    }
    return false;
}

/* The portable walk: one openat(O_NOFOLLOW) per component. */
int
http_open_walk(int rootfd, const char *root_real, const char *relpath, bool follow)
{
    char comp[NAME_MAX + 1];
    int dir = rootfd, fd;
    const char *c = relpath;

    if (follow) {
        /* Let the kernel follow links, then check where we landed. */
        fd = openat(rootfd, *relpath ? relpath : ".", O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
            return -errno;
        char proc[64], real[PATH_MAX];
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(proc, real, sizeof(real) - 1);
        size_t rl = strlen(root_real);
        if (n < 0 || (size_t)n < rl || memcmp(real, root_real, rl) != 0 ||
            ((size_t)n > rl && real[rl] != '/' && rl > 1)) {
            close(fd);
            return -EXDEV;
        }
        return fd;
    }
    if (*c == '\0') {
        fd = openat(rootfd, ".", O_RDONLY | O_CLOEXEC | O_DIRECTORY);
        return fd < 0 ? -errno : fd;
    }
    for (;;) {
        const char *slash = strchr(c, '/');
        size_t n = slash ? (size_t)(slash - c) : strlen(c);
        if (n > NAME_MAX) {
            if (dir != rootfd)
                close(dir);
            return -ENAMETOOLONG;
        }
        memcpy(comp, c, n);
        comp[n] = '\0';
        if (n == 0 || !strcmp(comp, ".") || !strcmp(comp, "..")) {
            if (dir != rootfd)
                close(dir);
            return -EXDEV;              /* never up, whatever the caller passed */
        }
        bool last = slash == NULL || slash[1] == '\0';
        fd = openat(dir, comp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
                               (last ? 0 : O_DIRECTORY));
        int err = errno;
        if (dir != rootfd)
            close(dir);
        if (fd < 0)
            return -err;
        if (last)
            return fd;
        dir = fd;
        c = slash + 1;
    }
}

int
http_open_beneath(int rootfd, const char *root_real, const char *relpath, bool follow_symlinks)
{
#ifdef HAVE_OPENAT2
    static int no_openat2;
    if (!no_openat2) {
        struct open_how how = {
            .flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
                       (follow_symlinks ? 0 : RESOLVE_NO_SYMLINKS),
        };
        long fd = syscall(SYS_openat2, rootfd, *relpath ? relpath : ".", &how, sizeof(how));
        if (fd >= 0)
            return (int)fd;
        if (errno != ENOSYS && errno != EPERM)
            return -errno;
        no_openat2 = 1;     /* old kernel or a seccomp filter */
    }
#endif
    return http_open_walk(rootfd, root_real, relpath, follow_symlinks);
}

/* ---- MIME types ---- */

struct mime_slot {
    char *ext;
    char *type;
};

struct http_mime {
    struct mime_slot *slots;
    size_t cap, count;      /* cap is a power of two */
};

static const char *const builtin_mime[][2] = {
    { "html", "text/html; charset=utf-8" }, { "htm", "text/html; charset=utf-8" },
    { "css", "text/css; charset=utf-8" }, { "js", "text/javascript; charset=utf-8" },
    { "mjs", "text/javascript; charset=utf-8" }, { "json", "application/json" },
    { "txt", "text/plain; charset=utf-8" }, { "md", "text/markdown; charset=utf-8" },
    { "xml", "application/xml" }, { "svg", "image/svg+xml" }, { "png", "image/png" },
    { "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" }, { "gif", "image/gif" },
    { "webp", "image/webp" }, { "avif", "image/avif" }, { "ico", "image/x-icon" },
    { "woff", "font/woff" }, { "woff2", "font/woff2" }, { "ttf", "font/ttf" },
    { "otf", "font/otf" }, { "pdf", "application/pdf" }, { "zip", "application/zip" },
    { "gz", "application/gzip" }, { "tar", "application/x-tar" }, { "wasm", "application/wasm" },
    { "mp4", "video/mp4" }, { "webm", "video/webm" }, { "mp3", "audio/mpeg" },
    { "ogg", "audio/ogg" }, { "wav", "audio/wav" }, { "csv", "text/csv; charset=utf-8" },
    { "c", "text/plain; charset=utf-8" }, { "h", "text/plain; charset=utf-8" },
    { "sh", "text/plain; charset=utf-8" }, { "conf", "text/plain; charset=utf-8" },
};

static uint32_t
hash_str(const char *s)
{
    uint32_t h = 2166136261u;           /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static int
mime_put(struct http_mime *m, const char *ext, const char *type)
{
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        struct mime_slot *s = calloc(cap, sizeof(*s));
        if (s == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->slots[i].ext == NULL)
                continue;
            size_t j = hash_str(m->slots[i].ext) & (cap - 1);
            while (s[j].ext)
                j = (j + 1) & (cap - 1);
            s[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = s;
        m->cap = cap;
    }
    size_t j = hash_str(ext) & (m->cap - 1);
    while (m->slots[j].ext && strcmp(m->slots[j].ext, ext) != 0)
        j = (j + 1) & (m->cap - 1);
    char *t = strdup(type);
    if (t == NULL)
        return -ENOMEM;
    if (m->slots[j].ext) {
        free(m->slots[j].type);
        m->slots[j].type = t;
        return 0;
    }
    char *e = strdup(ext);
    if (e == NULL) {
        free(t);
        return -ENOMEM;
    }
    m->slots[j].ext = e;
    m->slots[j].type = t;
    m->count++;
    return 0;
}

static int
mime_load(struct http_mime *m, const char *path)
{
    FILE *f = fopen(path, "re");
    char line[1024];
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        char *save = NULL, *type = strtok_r(line, " \t\r\n", &save);
        if (type == NULL || type[0] == '#')
            continue;
        for (char *ext; (ext = strtok_r(NULL, " \t\r\n", &save)) != NULL;) {
            for (char *c = ext; *c; c++)
                *c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
            if (strlen(ext) < 16 && mime_put(m, ext, type) < 0) {
                fclose(f);
                return -ENOMEM;
            }
        }
    }
    fclose(f);
    return 0;
}

struct http_mime *
http_mime_new(const char *path)
{
    struct http_mime *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    if (path && mime_load(m, path) < 0)
        goto fail;
    /* ours last, so text types keep their charset */
    for (size_t i = 0; i < sizeof(builtin_mime) / sizeof(builtin_mime[0]); i++) {
        if (mime_put(m, builtin_mime[i][0], builtin_mime[i][1]) < 0)
            goto fail;
    }
    return m;
fail:
    http_mime_free(m);
    return NULL;
}

void
http_mime_free(struct http_mime *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].ext);
        free(m->slots[i].type);
    }
    free(m->slots);
    free(m);
}

const char *
http_mime_lookup(const struct http_mime *m, const char *path)
{
    static const char def[] = "application/octet-stream";
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    char ext[16];
    size_t n;

    if (m == NULL || m->cap == 0 || dot == NULL || (n = strlen(dot + 1)) == 0 || n >= sizeof(ext))
        return def;
    for (size_t i = 0; i <= n; i++) {
        char c = dot[1 + i];
        ext[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    size_t j = hash_str(ext) & (m->cap - 1);
    while (m->slots[j].ext) {
        if (strcmp(m->slots[j].ext, ext) == 0)
            return m->slots[j].type;
        j = (j + 1) & (m->cap - 1);
    }
    return def;
}

/* ---- ranges and validators ---- */

static int
parse_u64(const char **s, uint64_t *v)
{
    const char *c = *s;
    uint64_t x = 0;
    if (*c < '0' || *c > '9')
        return -1;
    for (; *c >= '0' && *c <= '9'; c++) {
        uint64_t d = (uint64_t)(*c - '0');

        if (x > (UINT64_MAX - d) / 10)
            return -1;      /* does not fit in 64 bits */
        x = x * 10 + d;
    }
    *s = c;
    *v = x;
    return 0;
}

int
http_range_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len)
{
    uint64_t a, b = 0;
    const char *c = h;

    if (strncasecmp(c, "bytes=", 6) != 0)
        return 0;
    c += 6;
    while (*c == ' ' || *c == '\t')
        c++;
    if (*c == '-') {                        /* suffix: the last N bytes */
        c++;
        if (parse_u64(&c, &b) < 0)
            return 0;
        while (*c == ' ' || *c == '\t')
            c++;
        if (*c != '\0')
            return 0;                       /* several ranges: send it all */
        if (b == 0 || size == 0)
            return -1;
        *len = b < size ? b : size;
        *start = size - *len;
        return 1;
    }
    if (parse_u64(&c, &a) < 0 || *c++ != '-')
        return 0;
    bool open_end = (*c < '0' || *c > '9');
    if (!open_end && parse_u64(&c, &b) < 0)
        return 0;
    while (*c == ' ' || *c == '\t')
        c++;
    if (*c != '\0')
        return 0;
    if (!open_end && b < a)
        return 0;                           /* invalid: ignore (RFC 9110 §14.1.1) */
    if (a >= size)
        return -1;
    if (open_end || b >= size)
        b = size - 1;
    *start = a;
    *len = b - a + 1;
    return 1;
}

void
http_etag_format(char *out, size_t outlen, time_t mtime, uint64_t size)
{
    snprintf(out, outlen, "\"%llx-%llx\"", (unsigned long long)mtime, (unsigned long long)size);
}

bool
http_etag_match(const char *h, const char *etag)
{
    return http_etag_list_match(h, etag, false);
}

bool
http_etag_list_match(const char *h, const char *etag, bool strong)
{
    size_t el = strlen(etag);
    const char *c = h;

    while (*c) {
        bool weak = false;
        while (*c == ' ' || *c == '\t' || *c == ',')
            c++;
        if (*c == '*')
            return true;
        if (c[0] == 'W' && c[1] == '/') {
            weak = true;
            c += 2;
        }
        const char *e = c;
        if (*e == '"') {
            e = strchr(e + 1, '"');
            if (e == NULL)
                return false;
            e++;
        } else {
            while (*e && *e != ',')
                e++;
        }
        if ((size_t)(e - c) == el && memcmp(c, etag, el) == 0 && !(strong && weak))
            return true;
        c = e;
    }
    return false;
}

static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

void
http_date_format(time_t t, char out[30])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[80];
    snprintf(tmp, sizeof(tmp), "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(out, tmp, 29);
    out[29] = '\0';
}

int
http_date_parse(const char *s, time_t *t)
{
    struct tm tm;
    const char *end;
    static const char *const fmts[] = {
        "%a, %d %b %Y %H:%M:%S GMT",        /* IMF-fixdate */
        "%A, %d-%b-%y %H:%M:%S GMT",        /* RFC 850 */
        "%a %b %e %H:%M:%S %Y",             /* asctime */
    };
    for (size_t i = 0; i < 3; i++) {
        memset(&tm, 0, sizeof(tm));
        end = strptime(s, fmts[i], &tm);
        if (end && *end == '\0') {
            *t = timegm(&tm);
            return *t == (time_t)-1 ? -1 : 0;
        }
    }
    return -1;
}

/* ---- the small-file cache ---- */

struct entry {
    struct http_cached pub;
    char hdr[400];
    char *path;
    char *buf;
    struct http_whole whole;        /* pub.whole */
    dev_t dev;
    ino_t ino;
    uint64_t checked_ms;
    struct entry *next;             /* hash chain */
    struct entry *older, *newer;    /* age list, for eviction */
};

#define CACHE_BUCKETS 1024u
#define HEAD_SLOTS 64u

/* The head of a file too big to keep: a pure function of its path, size and mtime. */
struct head {
    struct http_cached pub;         /* data NULL */
    char hdr[400];
    char *path;                     /* NULL: a free slot */
};

struct http_cache {
    struct entry *bucket[CACHE_BUCKETS];
    struct entry *oldest, *newest;
    size_t max_file, max_total, bytes, count;
    struct head heads[HEAD_SLOTS];  /* one per path hash, the last one asked for wins */
};

/* The header lines of a 200 for a file (struct http_cached's headers); -1 if they do not fit
 * (an absurd MIME type). */
static int
format_headers(char *hdr, size_t room, const char *mime, uint64_t size, const char *lastmod,
               const char *etag)
{
    int n = snprintf(hdr, room,
                     "Content-Type: %s\r\nContent-Length: %" PRIu64 "\r\nLast-Modified: %s\r\n"
                     "ETag: %s\r\nAccept-Ranges: bytes\r\n", mime, size, lastmod, etag);
    return n < 0 || (size_t)n >= room ? -1 : n;
}

struct http_cache *
http_cache_new(size_t max_file, size_t max_total)
{
    struct http_cache *c = calloc(1, sizeof(*c));
    if (c) {
        c->max_file = max_file;
        c->max_total = max_total;
    }
    return c;
}

static void
entry_unlink(struct http_cache *c, struct entry *e)
{
    struct entry **pp = &c->bucket[hash_str(e->path) & (CACHE_BUCKETS - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    if (e->older)
        e->older->newer = e->newer;
    else
        c->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        c->newest = e->older;
    c->bytes -= e->pub.size;
    c->count--;
    free(e->path);
    free(e->buf);
    free(e->whole.buf);
    free(e);
}

void
http_cache_free(struct http_cache *c)
{
    if (c == NULL)
        return;
    while (c->oldest)
        entry_unlink(c, c->oldest);
    for (size_t i = 0; i < HEAD_SLOTS; i++)
        free(c->heads[i].path);
    free(c);
}

static struct entry *
find(struct http_cache *c, const char *path)
{
    struct entry *e = c->bucket[hash_str(path) & (CACHE_BUCKETS - 1)];
    while (e && strcmp(e->path, path) != 0)
        e = e->next;
    return e;
}

const struct http_cached *
http_cache_get(struct http_cache *c, const char *path, uint64_t now_ms)
{
    struct entry *e = c ? find(c, path) : NULL;
    if (e == NULL || now_ms - e->checked_ms >= 1000)
        return NULL;
    return &e->pub;
}

const struct http_cached *
http_cache_put(struct http_cache *c, const char *path, int fd, const struct stat *st,
               const char *mime, uint64_t now_ms)
{
    if (c == NULL)
        return NULL;
    struct entry *e = find(c, path);
    if (e) {
        if (e->ino == st->st_ino && e->dev == st->st_dev && e->pub.mtime == st->st_mtime &&
            e->pub.size == (uint64_t)st->st_size) {
            e->checked_ms = now_ms;
            return &e->pub;
        }
        entry_unlink(c, e);
    }
    if (!S_ISREG(st->st_mode) || (uint64_t)st->st_size > c->max_file ||
        (uint64_t)st->st_size > c->max_total)
        return NULL;
    size_t size = (size_t)st->st_size;
    while (c->oldest && c->bytes + size > c->max_total)
        entry_unlink(c, c->oldest);

    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->path = strdup(path);
    e->buf = malloc(size ? size : 1);
    if (e->path == NULL || e->buf == NULL)
        goto fail;
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, e->buf + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;                      /* truncated under us: do not cache */
        got += (size_t)n;
    }
    e->pub.data = e->buf;
    e->pub.size = size;
    e->pub.mtime = st->st_mtime;
    e->pub.mime = mime;
    http_etag_format(e->pub.etag, sizeof(e->pub.etag), st->st_mtime, size);
    http_date_format(st->st_mtime, e->pub.last_modified);
    int n = format_headers(e->hdr, sizeof(e->hdr), mime, size, e->pub.last_modified,
                           e->pub.etag);
    if (n < 0)
        goto fail;                          /* an absurd MIME type: serve it uncached */
    e->pub.headers = e->hdr;
    e->pub.headers_len = (size_t)n;
    e->pub.whole = &e->whole;
    e->dev = st->st_dev;
    e->ino = st->st_ino;
    e->checked_ms = now_ms;

    uint32_t b = hash_str(path) & (CACHE_BUCKETS - 1);
    e->next = c->bucket[b];
    c->bucket[b] = e;
    e->older = c->newest;
    if (c->newest)
        c->newest->newer = e;
    else
        c->oldest = e;
    c->newest = e;
    c->bytes += size;
    c->count++;
    return &e->pub;
fail:
    free(e->path);
    free(e->buf);
    free(e);
    return NULL;
}

const struct http_cached *
http_cache_head(struct http_cache *c, const char *path, const struct stat *st, const char *mime)
{
    if (c == NULL)
        return NULL;
    struct head *h = &c->heads[hash_str(path) & (HEAD_SLOTS - 1)];
    if (h->path != NULL && h->pub.mtime == st->st_mtime && h->pub.size == (uint64_t)st->st_size &&
        h->pub.mime == mime && strcmp(h->path, path) == 0)
        return &h->pub;
    free(h->path);
    h->path = strdup(path);
    if (h->path == NULL)
        return NULL;
    h->pub = (struct http_cached){ .size = (uint64_t)st->st_size, .mtime = st->st_mtime,
                                   .mime = mime };
    http_etag_format(h->pub.etag, sizeof(h->pub.etag), st->st_mtime, h->pub.size);
    http_date_format(st->st_mtime, h->pub.last_modified);
    char hdr[sizeof(h->hdr)];           /* apart from h: snprintf's sources are in h too */
    int n = format_headers(hdr, sizeof(hdr), mime, h->pub.size, h->pub.last_modified,
                           h->pub.etag);
    if (n < 0) {
        free(h->path);
        h->path = NULL;
        return NULL;
    }
    memcpy(h->hdr, hdr, (size_t)n + 1);
    h->pub.headers = h->hdr;
    h->pub.headers_len = (size_t)n;
    return &h->pub;
}

size_t
http_cache_bytes(const struct http_cache *c)
{
    return c->bytes;
}

size_t
http_cache_count(const struct http_cache *c)
{
    return c->count;
}

struct http_file_answer
http_file_decide(const struct http_preconditions *q, const char *etag, const char *lastmod,
                 time_t mtime, uint64_t size)
{
    struct http_file_answer a = { .status = 200, .start = 0, .len = size };
    time_t t;

    if (q->if_match) {
        if (!http_etag_list_match(q->if_match, etag, true))
            return (struct http_file_answer){ .status = 412 };
    } else if (q->if_unmodified_since && http_date_parse(q->if_unmodified_since, &t) == 0 &&
               mtime > t) {
        return (struct http_file_answer){ .status = 412 };
    }
    if (q->if_none_match) {
        if (http_etag_match(q->if_none_match, etag))
            return (struct http_file_answer){ .status = 304 };
    } else if (q->if_modified_since && http_date_parse(q->if_modified_since, &t) == 0 &&
               mtime <= t) {
        return (struct http_file_answer){ .status = 304 };
    }
    if (q->range == NULL || !q->get)
        return a;
    if (q->if_range && strcmp(q->if_range, q->if_range[0] == '"' ? etag : lastmod) != 0)
        return a;
    int rc = http_range_parse(q->range, size, &a.start, &a.len);
    if (rc < 0)
        return (struct http_file_answer){ .status = 416 };
    if (rc == 0) {
        a.start = 0;
        a.len = size;
        return a;
    }
    a.status = 206;
    return a;
}
