/* SPDX-License-Identifier: MIT */
/* poem.c: the tutorials' poem server on the stream layer: a greeting, a poem, maybe slowly. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <weft/weft.h>

#include "poem_default.h"

#define POEM_MAX (1024 * 1024)      /* a poem file larger than this is refused */
#define POEMS_MAX 4096              /* files taken from a directory */
#define GREETING_MAX 1024

struct poem {
    char *text;                     /* NULL for the built-in one */
    size_t len;
};

struct poem_svc {
    uint64_t greeting_ms;
    uint64_t delay_ms;
    size_t chunk;
    bool random;
    char *path;                     /* poems = file or directory */
    struct poem *poems;
    size_t npoems, next;
};

static int
svc_new(void **out)
{
    struct poem_svc *ps = calloc(1, sizeof(*ps));

    if (ps == NULL)
        return -ENOMEM;
    ps->greeting_ms = 1000;
    *out = ps;
    return 0;
}

static void
svc_free(void *svc)
{
    struct poem_svc *ps = svc;

    if (ps == NULL)
        return;
    for (size_t i = 0; i < ps->npoems; i++)
        free(ps->poems[i].text);
    free(ps->poems);
    free(ps->path);
    free(ps);
}

/* "1s", "250ms", "1.5" (seconds), "0". */
static int
parse_duration(const char *v, uint64_t *ms)
{
    char *end;
    double d;

    errno = 0;
    d = strtod(v, &end);
    if (errno != 0 || end == v || d < 0 || d > 86400.0 * 1000)
        return -1;
    if (strcmp(end, "ms") == 0)
        *ms = (uint64_t)d;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        *ms = (uint64_t)(d * 1000.0 + 0.5);
    else
        return -1;
    return 0;
}

static int
configure(void *svc, const char *key, const char *value, char *err, size_t errlen)
{
    struct poem_svc *ps = svc;
    uint64_t ms;

    if (strcmp(key, "greeting_timeout") == 0 || strcmp(key, "delay") == 0) {
        if (parse_duration(value, &ms) < 0) {
            snprintf(err, errlen, "expected a duration such as 1s or 250ms, not \"%s\"", value);
            return -WEFT_ECONFIG;
        }
        *(key[0] == 'g' ? &ps->greeting_ms : &ps->delay_ms) = ms;
        return 0;
    }
    if (strcmp(key, "chunk") == 0) {
        char *end;
        unsigned long long n;

        errno = 0;
        n = strtoull(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || n == 0 || n > POEM_MAX) {
            snprintf(err, errlen, "expected a byte count from 1 to %d, not \"%s\"", POEM_MAX,
                     value);
            return -WEFT_ECONFIG;
        }
        ps->chunk = (size_t)n;
        return 0;
    }
    if (strcmp(key, "order") == 0) {
        if (strcmp(value, "sequential") != 0 && strcmp(value, "random") != 0) {
            snprintf(err, errlen, "expected sequential or random, not \"%s\"", value);
            return -WEFT_ECONFIG;
        }
        ps->random = value[0] == 'r';
        return 0;
    }
    if (strcmp(key, "poems") == 0) {
        char path[PATH_MAX];
        char *p;

        if (weft_plugin_path(value, path, sizeof(path)) < 0) {     /* relative to the config */
            snprintf(err, errlen, "%s", value[0] ? "path too long" : "empty path");
            return -WEFT_ECONFIG;
        }
        p = strdup(path);
        if (p == NULL) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        free(ps->path);
        ps->path = p;
        return 0;
    }
    snprintf(err, errlen, "known: greeting_timeout, poems, order, delay, chunk");
    return -WEFT_ENOKEY;
}

/* True if s[0..len) is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
static bool
utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned c = s[i], n, min, cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, min = 0x80, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, min = 0x800, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, min = 0x10000, cp = c & 0x07;
        else
            return false;
        if (len - i <= n)           /* truncated sequence */
            return false;
        for (unsigned k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

static int
load_file(const char *path, struct poem *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;

    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -WEFT_ECONFIG;
    }
    buf = malloc(POEM_MAX + 1);
    if (buf == NULL) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    len = fread(buf, 1, POEM_MAX + 1, f);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -WEFT_ECONFIG;
    } else if (len > POEM_MAX) {
        snprintf(err, errlen, "%s: larger than %d bytes", path, POEM_MAX);
        rc = -WEFT_ECONFIG;
    } else if (len == 0) {
        snprintf(err, errlen, "%s: empty", path);
        rc = -WEFT_ECONFIG;
    } else if (!utf8_valid((const unsigned char *)buf, len)) {
        snprintf(err, errlen, "%s: not UTF-8 text", path);
        rc = -WEFT_ECONFIG;
    }
    fclose(f);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    out->text = realloc(buf, len) ?: buf;
    out->len = len;
    return 0;
}

static int
by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
load_dir(struct poem_svc *ps, char *err, size_t errlen)
{
    DIR *d = opendir(ps->path);
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    int rc = 0;

    if (d == NULL) {
        snprintf(err, errlen, "%s: %s", ps->path, strerror(errno));
        return -WEFT_ECONFIG;
    }
    names = calloc(POEMS_MAX, sizeof(*names));
    if (names == NULL) {
        closedir(d);
        return -ENOMEM;
    }
    while ((de = readdir(d)) != NULL && n < POEMS_MAX) {
        struct stat st;
        char *full;

        if (de->d_name[0] == '.')
            continue;
        if (asprintf(&full, "%s/%s", ps->path, de->d_name) < 0) {
            rc = -ENOMEM;
            break;
        }
        if (stat(full, &st) < 0 || !S_ISREG(st.st_mode)) {
            free(full);
            continue;
        }
        names[n++] = full;
    }
    closedir(d);
    if (rc == 0 && n == 0) {
        snprintf(err, errlen, "%s: no poem files in this directory", ps->path);
        rc = -WEFT_ECONFIG;
    }
    if (rc == 0) {
        qsort(names, n, sizeof(*names), by_name);
        ps->poems = calloc(n, sizeof(*ps->poems));
        if (ps->poems == NULL)
            rc = -ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = load_file(names[i], &ps->poems[i], err, errlen);
        if (rc == 0)
            ps->npoems++;
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    return rc;
}

static int
service_check(void *svc, char *err, size_t errlen)
{
    struct poem_svc *ps = svc;
    struct stat st;
    int rc;

    if (ps->delay_ms > 0 && ps->chunk == 0)
        ps->chunk = 10;             /* the Twisted slow poetry server's default */
    if (ps->path == NULL)
        return 0;
    if (stat(ps->path, &st) < 0) {
        snprintf(err, errlen, "poems: %s: %s", ps->path, strerror(errno));
        return -WEFT_ECONFIG;
    }
    if (S_ISDIR(st.st_mode))
        return load_dir(ps, err, errlen);
    ps->poems = calloc(1, sizeof(*ps->poems));
    if (ps->poems == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rc = load_file(ps->path, &ps->poems[0], err, errlen);
    if (rc == 0)
        ps->npoems = 1;
    return rc;
}

static void
pick(struct poem_svc *ps, const char **text, size_t *len)
{
    size_t i;

    if (ps->npoems == 0) {
        *text = poem_default;
        *len = sizeof(poem_default) - 1;
        return;
    }
    i = ps->random ? (size_t)random() % ps->npoems : ps->next++ % ps->npoems;
    *text = ps->poems[i].text;
    *len = ps->poems[i].len;
}

/* At most max bytes from p, ending on a character boundary (at least one character). */
static size_t
chunk_len(const char *p, size_t left, size_t max)
{
    size_t n = max < left ? max : left;

    while (n < left && n > 0 && ((unsigned char)p[n] & 0xc0) == 0x80)
        n--;
    if (n == 0) {
        n = 1;
        while (n < left && ((unsigned char)p[n] & 0xc0) == 0x80)
            n++;
    }
    return n;
}

/* The greeting: a line within greeting_timeout, logged; silence or EOF is fine too. */
static void
greet(struct poem_svc *ps, struct weft_reader *r, struct weft_writer *w)
{
    char line[GREETING_MAX], peer[160];
    ssize_t n;

    if (ps->greeting_ms == 0)
        return;
    weft_reader_set_timeout(r, (int64_t)ps->greeting_ms);
    n = weft_reader_readline(r, line, sizeof(line));
    weft_reader_set_timeout(r, 0);
    if (n <= 0 || !weft_log_enabled(WEFT_LOG_INFO))
        return;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    weft_log(WEFT_LOG_INFO, "poem: %s says \"%.200s\"",
             weft_transport_peer_string(weft_writer_transport(w), peer, sizeof(peer)), line);
}

static int
client(struct weft_reader *r, struct weft_writer *w, void *svc)
{
    struct poem_svc *ps = svc;
    const char *text;
    size_t len;
    int rc;

    greet(ps, r, w);
    pick(ps, &text, &len);
    if (ps->delay_ms == 0) {
        rc = weft_writer_write(w, text, len);
        return rc < 0 ? rc : weft_writer_drain(w);
    }
    /* Slowly: chunk bytes every delay, as the slow poetry server of the Twisted tutorial. */
    for (size_t off = 0; off < len;) {
        size_t n = chunk_len(text + off, len - off, ps->chunk);

        rc = weft_writer_write(w, text + off, n);
        if (rc == 0)
            rc = weft_writer_drain(w);
        if (rc < 0)
            return rc;              /* the listener left: quietly */
        off += n;
        if (off < len && (rc = weft_sleep(ps->delay_ms)) < 0)
            return rc;
    }
    return 0;
}

WEFT_PLUGIN_EXPORT const struct weft_plugin weft_plugin = {
    .abi = WEFT_PLUGIN_ABI,
    .size = sizeof(struct weft_plugin),
    .name = "poem",
    .version = "1.0.0",
    .summary = "recites a poem to whoever connects (the tutorials' stream server)",
    .service_new = svc_new,
    .configure = configure,
    .service_check = service_check,
    .service_free = svc_free,
    .client = client,               /* the stream layer: no protocol_new */
};
