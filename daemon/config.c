/* SPDX-License-Identifier: MIT */
/* config.c: weftd's INI config over inih: key tables, service sections, file:line errors. */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <weft/error.h>

#include "config.h"
#include "log.h"
#include "strtrim.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define CONF_MAX_SIZE (1u << 20)        /* a config is a page or two; refuse a stray 1 GB file */
#define CONF_MAX_DURATION_MS (24ull * 3600 * 1000)

/*
 * The [weftd] keys. As in redis's config.c, each row names its type, where
 * the value goes and its default as a string: defaults are parsed by the same
 * code as the file, so a bad default is caught by the unit tests.
 */
enum conf_type { CONF_PATH, CONF_LEVEL, CONF_DURATION, CONF_WORKERS, CONF_STRING, CONF_COUNT };

struct conf_key {
    const char *name;
    enum conf_type type;
    size_t offset;              /* in struct conf_global */
    const char *dflt;
    const char *doc;
};

static const struct conf_key global_keys[] = {
    { "plugin_dir", CONF_PATH, offsetof(struct conf_global, plugin_dir), "",
      "directories of the <protocol>.so plugins (':' or ',' between them), searched after -p "
      "and $WEFT_PLUGIN_DIR, before the built-in one" },
    { "log_level", CONF_LEVEL, offsetof(struct conf_global, log_level), "info",
      "error, warning, notice, info or debug" },
    { "shutdown_timeout", CONF_DURATION, offsetof(struct conf_global, shutdown_ms), "10s",
      "on SIGTERM/SIGINT, time open connections get to finish before they are aborted" },
    { "workers", CONF_WORKERS, offsetof(struct conf_global, workers), "auto",
      "worker processes: auto (one per core) or 0-1024; 0 serves in the master (debugging)" },
    { "user", CONF_STRING, offsetof(struct conf_global, user), "",
      "user the workers run as when weftd starts as root" },
    { "group", CONF_STRING, offsetof(struct conf_global, group), "",
      "group the workers run as (default: the user's primary group)" },
    { "max_connections", CONF_COUNT, offsetof(struct conf_global, max_connections), "10000",
      "connections per worker; at the limit the worker stops accepting" },
    { "reload_timeout", CONF_DURATION, offsetof(struct conf_global, reload_ms), "0",
      "on SIGHUP, time the old workers' open connections get to finish; 0: no limit" },
};

_Static_assert(ARRAY_SIZE(global_keys) <= ARRAY_SIZE(((struct config *)0)->g_lines),
               "g_lines too small for the [weftd] keys");

enum section_kind { SEC_NONE, SEC_WEFTD, SEC_SERVICE, SEC_IGNORE };

struct seen_key {
    char *key;
    int line;
};

struct parser {
    struct config *c;
    const char *text;
    size_t len, pos;
    int line;                   /* of the line last handed to inih */
    bool oom;
    enum section_kind kind;
    struct conf_service *svc;   /* SEC_SERVICE */
    int weftd_line;             /* of the [weftd] header, 0 if none yet */
    struct seen_key *seen;      /* keys of the current section, for duplicates */
    size_t nseen;
};

void
config_error(struct config *c, int line, const char *section, const char *key,
             const char *fmt, ...)
{
    char reason[1536], msg[2048];
    struct conf_error *e;
    va_list ap;
    int n;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    n = snprintf(msg, sizeof(msg), "%s", c->file);
    if (line > 0 && n >= 0 && (size_t)n < sizeof(msg))
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, ":%d", line);
    if (n >= 0 && (size_t)n < sizeof(msg))
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, ": ");
    if (section != NULL && n >= 0 && (size_t)n < sizeof(msg))
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, "[%s]%s", section, key ? " " : ": ");
    if (key != NULL && n >= 0 && (size_t)n < sizeof(msg))
        n += snprintf(msg + n, sizeof(msg) - (size_t)n, "%s: ", key);
    if (n >= 0 && (size_t)n < sizeof(msg))
        snprintf(msg + n, sizeof(msg) - (size_t)n, "%s", reason);

    e = realloc(c->errors, (c->nerrors + 1) * sizeof(*e));
    if (e == NULL) {
        c->oom = true;
        return;
    }
    c->errors = e;
    e[c->nerrors].line = line;
    e[c->nerrors].msg = strdup(msg);
    if (e[c->nerrors].msg != NULL)
        c->nerrors++;
    else
        c->oom = true;
}

static int
error_cmp(const void *a, const void *b)
{
    const struct conf_error *x = a, *y = b;

    return (x->line > y->line) - (x->line < y->line);
}

void
config_sort_errors(struct config *c)
{
    /* Insertion sort: stable, and a config has a handful of errors. */
    for (size_t i = 1; i < c->nerrors; i++) {
        struct conf_error e = c->errors[i];
        size_t j = i;

        while (j > 0 && error_cmp(&c->errors[j - 1], &e) > 0) {
            c->errors[j] = c->errors[j - 1];
            j--;
        }
        c->errors[j] = e;
    }
}

static void
service_free(struct conf_service *s)
{
    if (s == NULL)
        return;
    free(s->name);
    free(s->protocol);
    for (size_t i = 0; i < s->nlisten; i++)
        free(s->listen[i].text);
    free(s->listen);
    for (size_t i = 0; i < s->nkeys; i++) {
        free(s->keys[i].key);
        free(s->keys[i].value);
    }
    free(s->keys);
    free(s);
}

void
config_free(struct config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nservices; i++)
        service_free(c->services[i]);
    free(c->services);
    for (size_t i = 0; i < c->nerrors; i++)
        free(c->errors[i].msg);
    free(c->errors);
    free(c->g.plugin_dir);
    free(c->g.user);
    free(c->g.group);
    free(c->file);
    free(c);
}

int
config_parse_duration(const char *text, uint64_t *ms, char *why, size_t whylen)
{
    const char *p = text;
    uint64_t n = 0, mult;

    if (*p < '0' || *p > '9')
        goto bad;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > CONF_MAX_DURATION_MS)
            goto range;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '\0' || strcmp(p, "s") == 0)
        mult = 1000;
    else if (strcmp(p, "ms") == 0)
        mult = 1;
    else if (strcmp(p, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        mult = 3600 * 1000;
    else
        goto bad;
    if (n > CONF_MAX_DURATION_MS / mult)
        goto range;
    *ms = n * mult;
    return 0;
bad:
    snprintf(why, whylen, "bad duration \"%s\" (a number with ms, s, m or h: 500ms, 10s, 2m)",
             text);
    return -WEFT_ECONFIG;
range:
    snprintf(why, whylen, "duration \"%s\" is longer than 24h", text);
    return -WEFT_ECONFIG;
}

const char *
config_addr_string(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN + 16];

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)(const void *)sa;
        const char *name = sun->sun_path[0] == '\0' ? sun->sun_path + 1 : sun->sun_path;
        size_t max = sizeof(sun->sun_path) - (size_t)(name - sun->sun_path);

        snprintf(buf, len, "unix:%s%.*s", name == sun->sun_path ? "" : "@",
                 (int)strnlen(name, max), name);
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}

int
config_parse_listen_unix(const char *path, struct sockaddr_storage *ss, socklen_t *len,
                         char *why, size_t whylen)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)(void *)ss;
    size_t n = strlen(path);

    if (path[0] != '/' && path[0] != '@') {
        snprintf(why, whylen, "\"unix:%s\": expected an absolute path (unix:/run/weft/echo.sock)"
                 " or @NAME for an abstract socket", path);
        return -WEFT_ECONFIG;
    }
    if (n < 2) {
        snprintf(why, whylen, "\"unix:%s\": missing %s", path,
                 path[0] == '@' ? "name after @" : "file name");
        return -WEFT_ECONFIG;
    }
    if (n >= sizeof(sun->sun_path)) {
        snprintf(why, whylen, "unix socket path longer than %zu bytes",
                 sizeof(sun->sun_path) - 1);
        return -WEFT_ECONFIG;
    }
    if (path[0] == '/' && path[n - 1] == '/') {
        snprintf(why, whylen, "\"unix:%s\" names a directory, not a socket file", path);
        return -WEFT_ECONFIG;
    }
    memset(ss, 0, sizeof(*ss));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n);
    if (path[0] == '@') {
        sun->sun_path[0] = '\0';   /* abstract: the name's bytes, no terminator */
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

int
config_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                    char *why, size_t whylen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
    struct addrinfo *res = NULL;
    const char *port_s, *host_end;
    char host[128];
    size_t hlen;
    unsigned long port = 0;
    int rc;

    if (text[0] == '[') {
        host_end = strchr(text, ']');
        if (host_end == NULL) {
            snprintf(why, whylen, "\"%s\": missing ']' after the IPv6 address", text);
            return -WEFT_ECONFIG;
        }
        if (host_end[1] != ':') {
            snprintf(why, whylen, "\"%s\": expected [IPv6]:PORT, as in [::1]:7007", text);
            return -WEFT_ECONFIG;
        }
        port_s = host_end + 2;
        text++;
        hints.ai_family = AF_INET6;
    } else {
        host_end = strrchr(text, ':');
        if (host_end == NULL) {
            snprintf(why, whylen, "\"%s\": expected HOST:PORT, as in 127.0.0.1:7007, "
                     "[::1]:7007 or *:7007", text);
            return -WEFT_ECONFIG;
        }
        if (strchr(text, ':') != host_end) {
            snprintf(why, whylen, "\"%s\": an IPv6 address goes in brackets, as in [::1]:7007",
                     text);
            return -WEFT_ECONFIG;
        }
        port_s = host_end + 1;
        hints.ai_family = AF_INET;
    }
    hlen = (size_t)(host_end - text);
    for (const char *p = port_s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || port > 65535) {
            port = 0;
            break;
        }
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port < 1 || port > 65535) {
        snprintf(why, whylen, "bad port \"%s\" (a number from 1 to 65535)", port_s);
        return -WEFT_ECONFIG;
    }
    if (hlen == 0) {
        snprintf(why, whylen, "\"%s\": missing host (use * for every IPv4 address)", text);
        return -WEFT_ECONFIG;
    }
    if (hlen >= sizeof(host)) {
        snprintf(why, whylen, "host name too long");
        return -WEFT_ECONFIG;
    }
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (strcmp(host, "*") == 0 && hints.ai_family == AF_INET)
        strcpy(host, "0.0.0.0");
    else if (strcmp(host, "localhost") == 0 && hints.ai_family == AF_INET)
        strcpy(host, "127.0.0.1");
    /* AI_NUMERICHOST, and before any loop runs: no lookup, nothing to block on */
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof(*ss)) {
        if (rc == EAI_MEMORY) {
            snprintf(why, whylen, "out of memory");
            return -ENOMEM;
        }
        if (res != NULL)
            freeaddrinfo(res);
        snprintf(why, whylen, "\"%s\" is not a numeric %s address", host,
                 hints.ai_family == AF_INET6 ? "IPv6" : "IPv4 (or *, localhost)");
        return -WEFT_ECONFIG;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)(void *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)(void *)ss)->sin6_port = htons((uint16_t)port);
    return 0;
}

static bool
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_UNIX) {
        const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;

        return memcmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0;
    }
    {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
}

/* Whether binding a and b conflicts: the same address, or the same port with one of them
 * the family's wildcard (*:P next to 127.0.0.1:P: the second bind fails). */
static bool
overlap_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (same_addr(a, b))
        return true;
    if (a->ss_family != b->ss_family || a->ss_family == AF_UNIX)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return x->sin_port == y->sin_port &&
               (x->sin_addr.s_addr == htonl(INADDR_ANY) || y->sin_addr.s_addr == htonl(INADDR_ANY));
    }
    {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

        return x->sin6_port == y->sin6_port &&
               (IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr));
    }
}

/* Levenshtein distance of a and b, for "did you mean"; both short (keys). */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];

    if (lb >= sizeof(row) / sizeof(row[0]) || la >= 64)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);

            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[lb];
}

const char *
config_did_you_mean(const char *key, const char *known, char *buf, size_t buflen)
{
    size_t best = SIZE_MAX, klen = strlen(key);
    const char *c = known;

    buf[0] = '\0';
    while (*c) {
        char word[64];
        size_t n;

        c += strspn(c, ", ");
        n = strcspn(c, ", ");
        if (n == 0)
            break;
        if (n < sizeof(word)) {
            size_t d;

            memcpy(word, c, n);
            word[n] = '\0';
            d = edit_distance(key, word);
            /* close enough to be a typo: 2 edits, or a third of the key */
            if (d < best && d > 0 && d <= (klen > 6 ? klen / 3 : 2)) {
                best = d;
                snprintf(buf, buflen, "%s", word);
            }
        }
        c += n;
    }
    return buf[0] ? buf : NULL;
}

/* A name fit for a section or a plugin file: letters, digits, '_', '-', '.' (not first). */
static bool
good_name(const char *s, bool dots)
{
    if (*s == '\0' || *s == '.' || *s == '-')
        return false;
    for (; *s != '\0'; s++) {
        bool ok = (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
                  (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || (dots && *s == '.');
        if (!ok)
            return false;
    }
    return true;
}

static int
set_global(struct parser *p, const struct conf_key *k, const char *value, char *why,
           size_t whylen)
{
    struct conf_global *g = &p->c->g;
    void *field = (char *)g + k->offset;

    switch (k->type) {
    case CONF_PATH: {
        /* Directories separated by ':' or ',', joined with ':' here; empty ones dropped. */
        const char *slash = strrchr(p->c->file, '/'), *d, *end;
        size_t len, n = 0;
        char *path = malloc(1);

        if (path != NULL)
            path[0] = '\0';
        for (d = value; path != NULL && *d != '\0'; d = *end ? end + 1 : end) {
            char *np;
            int base;

            end = d + strcspn(d, ":,");
            while (d < end && (*d == ' ' || *d == '\t'))
                d++;
            len = (size_t)(end - d);
            while (len > 0 && (d[len - 1] == ' ' || d[len - 1] == '\t'))
                len--;
            if (len == 0)
                continue;
            /* A relative directory is relative to the config file, not to the cwd. */
            base = d[0] == '/' || slash == NULL ? 0 : (int)(slash - p->c->file) + 1;
            np = realloc(path, n + 1 + (size_t)base + len + 1);
            if (np == NULL) {
                free(path);
                path = NULL;
                break;
            }
            path = np;
            n += (size_t)sprintf(path + n, "%s%.*s%.*s", n ? ":" : "", base, p->c->file,
                                 (int)len, d);
        }
        if (path == NULL) {
            snprintf(why, whylen, "out of memory");
            return -ENOMEM;
        }
        free(*(char **)field);
        *(char **)field = path;
        return 0;
    }
    case CONF_LEVEL: {
        int level = log_level_parse(value);

        if (level < 0) {
            snprintf(why, whylen, "bad value \"%s\" (error, warning, notice, info or debug)",
                     value);
            return -WEFT_ECONFIG;
        }
        *(int *)field = level;
        return 0;
    }
    case CONF_DURATION:
        return config_parse_duration(value, (uint64_t *)field, why, whylen);
    case CONF_WORKERS:
    case CONF_COUNT: {
        unsigned long long n = 0;
        const char *q = value;
        uint64_t max = k->type == CONF_WORKERS ? CONF_WORKERS_MAX : 100000000;

        if (k->type == CONF_WORKERS && strcmp(value, "auto") == 0) {
            *(int *)field = CONF_WORKERS_AUTO;
            return 0;
        }
        for (; *q >= '0' && *q <= '9' && n <= max; q++)
            n = n * 10 + (unsigned long long)(*q - '0');
        if (q == value || *q != '\0' || n > max || (k->type == CONF_COUNT && n == 0)) {
            if (k->type == CONF_WORKERS)
                snprintf(why, whylen, "bad value \"%s\" (auto, or a number from 0 to %d)",
                         value, CONF_WORKERS_MAX);
            else
                snprintf(why, whylen, "bad value \"%s\" (a number from 1 to %llu)", value,
                         (unsigned long long)max);
            return -WEFT_ECONFIG;
        }
        if (k->type == CONF_WORKERS)
            *(int *)field = (int)n;
        else
            *(uint64_t *)field = n;
        return 0;
    }
    case CONF_STRING: {
        char *copy = strdup(value);

        if (copy == NULL) {
            snprintf(why, whylen, "out of memory");
            return -ENOMEM;
        }
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    }
    return -WEFT_ECONFIG;
}

static void
on_global(struct parser *p, const char *key, const char *value)
{
    char why[256];
    int rc;

    for (size_t i = 0; i < ARRAY_SIZE(global_keys); i++) {
        if (strcmp(global_keys[i].name, key) != 0)
            continue;
        rc = set_global(p, &global_keys[i], value, why, sizeof(why));
        if (rc == -ENOMEM)
            p->oom = true;
        else if (rc < 0)
            config_error(p->c, p->line, "weftd", key, "%s", why);
        else
            p->c->g_lines[i] = p->line;
        return;
    }
    static const char known[] = "plugin_dir, log_level, shutdown_timeout, workers, user, "
                                "group, max_connections, reload_timeout";
    char mean[64];
    if (config_did_you_mean(key, known, mean, sizeof(mean)) != NULL)
        config_error(p->c, p->line, "weftd", key, "unknown key; did you mean %s? (known: %s)",
                     mean, known);
    else
        config_error(p->c, p->line, "weftd", key, "unknown key (known: %s)", known);
}

/* Where addr is already listed, across every service; NULL if nowhere. */
static const struct conf_listen *
find_listen(struct config *c, const struct conf_listen *l, const char **svc)
{
    for (size_t i = 0; i < c->nservices; i++) {
        const struct conf_service *s = c->services[i];

        for (size_t j = 0; j < s->nlisten; j++) {
            /* TCP and UDP ports are apart: 7 and udp:7 do not overlap */
            if (s->listen[j].kind == l->kind && overlap_addr(&s->listen[j].addr, &l->addr)) {
                *svc = s->name;
                return &s->listen[j];
            }
        }
    }
    return NULL;
}

static void
on_listen(struct parser *p, struct conf_service *s, const char *value)
{
    char *copy = strdup(value), *save = NULL, *item;
    bool any = false;

    if (copy == NULL) {
        p->oom = true;
        return;
    }
    s->listen_line = p->line;
    for (item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        struct conf_listen l = { .line = p->line }, *nl;
        const struct conf_listen *prev;
        const char *other = NULL;
        char why[256];
        int rc;

        item = str_trim(item);
        if (*item == '\0')
            continue;
        any = true;
        if (strncmp(item, "unix:", 5) == 0) {
            l.kind = CONF_LISTEN_UNIX;
            rc = config_parse_listen_unix(item + 5, &l.addr, &l.addrlen, why, sizeof(why));
        } else {
            if (strncmp(item, "udp:", 4) == 0)
                l.kind = CONF_LISTEN_UDP;
            rc = config_parse_listen(item + (l.kind == CONF_LISTEN_UDP ? 4 : 0), &l.addr,
                                     &l.addrlen, why, sizeof(why));
        }
        if (rc == -ENOMEM) {
            p->oom = true;
            break;
        }
        if (rc < 0) {
            config_error(p->c, p->line, s->name, "listen", "%s", why);
            continue;
        }
        prev = find_listen(p->c, &l, &other);
        if (prev != NULL) {
            if (same_addr(&prev->addr, &l.addr))
                config_error(p->c, p->line, s->name, "listen",
                             "%s is already listed by [%s] at line %d", item, other, prev->line);
            else
                config_error(p->c, p->line, s->name, "listen",
                             "%s overlaps %s of [%s] at line %d (a wildcard address takes the "
                             "port on every address)", item, prev->text, other, prev->line);
            continue;
        }
        l.text = strdup(item);
        nl = l.text ? realloc(s->listen, (s->nlisten + 1) * sizeof(*nl)) : NULL;
        if (nl == NULL) {
            free(l.text);
            p->oom = true;
            break;
        }
        s->listen = nl;
        s->listen[s->nlisten++] = l;
    }
    if (!any)
        config_error(p->c, p->line, s->name, "listen",
                     "empty value (expected HOST:PORT, udp:HOST:PORT or unix:/PATH[, ...])");
    free(copy);
}

static void
on_service(struct parser *p, const char *key, const char *value)
{
    struct conf_service *s = p->svc;
    struct conf_kv *nk;

    if (strcmp(key, "protocol") == 0) {
        s->protocol_line = p->line;
        if (!good_name(value, false)) {
            config_error(p->c, p->line, s->name, key,
                         "bad protocol name \"%s\" (letters, digits, '_' and '-')", value);
            return;
        }
        s->protocol = strdup(value);
        if (s->protocol == NULL)
            p->oom = true;
        return;
    }
    if (strcmp(key, "listen") == 0) {
        on_listen(p, s, value);
        return;
    }
    nk = realloc(s->keys, (s->nkeys + 1) * sizeof(*nk));
    if (nk == NULL) {
        p->oom = true;
        return;
    }
    s->keys = nk;
    nk[s->nkeys].key = strdup(key);
    nk[s->nkeys].value = strdup(value);
    nk[s->nkeys].line = p->line;
    if (nk[s->nkeys].key == NULL || nk[s->nkeys].value == NULL) {
        free(nk[s->nkeys].key);
        free(nk[s->nkeys].value);
        p->oom = true;
        return;
    }
    s->nkeys++;
}

static void
seen_clear(struct parser *p)
{
    for (size_t i = 0; i < p->nseen; i++)
        free(p->seen[i].key);
    p->nseen = 0;
}

/* True (and an error is recorded) if key was already set in this section. */
static bool
seen_twice(struct parser *p, const char *section, const char *key)
{
    struct seen_key *ns;

    /* Each tls_certificate (and its tls_key) starts another SNI pair. */
    if (strcmp(key, "tls_certificate") == 0 || strcmp(key, "tls_key") == 0)
        return false;
    for (size_t i = 0; i < p->nseen; i++) {
        if (strcmp(p->seen[i].key, key) == 0) {
            config_error(p->c, p->line, section, key, "set twice (first at line %d)",
                         p->seen[i].line);
            return true;
        }
    }
    ns = realloc(p->seen, (p->nseen + 1) * sizeof(*ns));
    if (ns == NULL) {
        p->oom = true;
        return true;
    }
    p->seen = ns;
    ns[p->nseen].key = strdup(key);
    ns[p->nseen].line = p->line;
    if (ns[p->nseen].key == NULL) {
        p->oom = true;
        return true;
    }
    p->nseen++;
    return false;
}

/* inih's handler. Sections come from our reader, so inih's section is ignored. */
static int
on_key(void *user, const char *section, const char *key, const char *value)
{
    struct parser *p = user;
    const char *sec = p->kind == SEC_WEFTD ? "weftd" : p->kind == SEC_SERVICE ? p->svc->name
                                                                              : NULL;

    (void)section;
    if (p->oom || p->kind == SEC_IGNORE)
        return 1;
    if (p->kind == SEC_NONE) {
        config_error(p->c, p->line, NULL, key,
                     "key outside any section (put it under [weftd] or a service's [name])");
        return 1;
    }
    if (*key == '\0') {
        config_error(p->c, p->line, sec, NULL, "missing key name before '='");
        return 1;
    }
    if (seen_twice(p, sec, key))
        return 1;
    if (p->kind == SEC_WEFTD)
        on_global(p, key, value);
    else
        on_service(p, key, value);
    return 1;
}

static void
section_start(struct parser *p, char *name)
{
    struct conf_service *s, **ns;

    seen_clear(p);
    p->kind = SEC_IGNORE;
    name = str_trim(name);
    if (!good_name(name, true)) {
        config_error(p->c, p->line, NULL, NULL,
                     "bad section name \"[%s]\" (letters, digits, '_', '-', '.')", name);
        return;
    }
    if (strcmp(name, "weftd") == 0) {
        if (p->weftd_line > 0) {
            config_error(p->c, p->line, name, NULL, "section appears twice (first at line %d)",
                         p->weftd_line);
            return;
        }
        p->weftd_line = p->line;
        p->kind = SEC_WEFTD;
        return;
    }
    for (size_t i = 0; i < p->c->nservices; i++) {
        if (strcmp(p->c->services[i]->name, name) == 0) {
            config_error(p->c, p->line, name, NULL, "section appears twice (first at line %d)",
                         p->c->services[i]->line);
            return;
        }
    }
    s = calloc(1, sizeof(*s));
    ns = s ? realloc(p->c->services, (p->c->nservices + 1) * sizeof(*ns)) : NULL;
    if (s != NULL)
        s->name = strdup(name);
    if (ns == NULL || s->name == NULL) {
        service_free(s);
        p->oom = true;
        return;
    }
    s->line = p->line;
    p->c->services = ns;
    ns[p->c->nservices++] = s;
    p->svc = s;
    p->kind = SEC_SERVICE;
}

/*
 * inih's reader, one line per call. Counting lines here gives every key its
 * line number (Debian's inih has no INI_HANDLER_LINENO), and looking at each
 * line first lets us report every syntax error, not only inih's first, and
 * section headers inih would not report at all (an empty [name]).
 * A line inih must not see is replaced by an empty one.
 */
static char *
read_line(char *str, int num, void *stream)
{
    struct parser *p = stream;
    const char *line, *eol, *s;
    size_t n, room;

    if (p->pos >= p->len)
        return NULL;
    line = p->text + p->pos;
    eol = memchr(line, '\n', p->len - p->pos);
    n = eol ? (size_t)(eol - line) : p->len - p->pos;
    p->pos += n + (eol != NULL);
    p->line++;
    if (p->line == 1 && n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
        line += 3;
        n -= 3;
    }
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    while (n > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        n--;
    }
    room = num > 2 ? (size_t)num - 2 : 0;       /* '\n' and '\0' */
    strcpy(str, "\n");
    if (n == 0 || *line == ';' || *line == '#')
        return str;
    if (memchr(line, '\0', n) != NULL) {
        config_error(p->c, p->line, NULL, NULL, "line contains a NUL byte");
        return str;
    }
    if (n > room) {
        config_error(p->c, p->line, NULL, NULL, "line longer than %zu characters", room);
        return str;
    }
    if (*line == '[') {
        char name[256];
        const char *close = memchr(line, ']', n);

        if (close == NULL) {
            config_error(p->c, p->line, NULL, NULL, "section header without ']'");
            p->kind = SEC_IGNORE;
            return str;
        }
        for (s = close + 1; s < line + n && (*s == ' ' || *s == '\t'); s++)
            ;
        if (s < line + n && *s != ';' && *s != '#') {
            config_error(p->c, p->line, NULL, NULL, "text after the section header");
            p->kind = SEC_IGNORE;
            return str;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(close - line - 1), line + 1);
        section_start(p, name);
        return str;
    }
    if (memchr(line, '=', n) == NULL && memchr(line, ':', n) == NULL) {
        config_error(p->c, p->line, NULL, NULL,
                     "syntax error: expected \"key = value\" or \"[section]\"");
        return str;
    }
    memcpy(str, line, n);
    str[n] = '\n';
    str[n + 1] = '\0';
    return str;
}

static struct config *
config_new(const char *name)
{
    struct config *c = calloc(1, sizeof(*c));
    struct parser p = { .c = c };
    char why[256];

    if (c == NULL || (c->file = strdup(name)) == NULL) {
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < ARRAY_SIZE(global_keys); i++) {
        int rc = set_global(&p, &global_keys[i], global_keys[i].dflt, why, sizeof(why));

        if (rc == -ENOMEM) {
            config_free(c);
            return NULL;
        }
        if (rc < 0) {           /* a bad default is a bug: say which */
            config_error(c, 0, "weftd", global_keys[i].name, "bad built-in default: %s", why);
        }
    }
    return c;
}

int
config_load_mem(const char *name, const char *text, size_t len, struct config **out)
{
    struct config *c = config_new(name);
    struct parser p = { .c = c, .text = text, .len = len };

    *out = c;
    if (c == NULL)
        return -ENOMEM;
    /*
     * A line starting with blanks would otherwise continue the previous
     * value (Python's configparser); in a daemon's config that is more often
     * a typo than a wish, and the reader trims leading blanks anyway.
     */
    ini_allow_multiline = false;
    ini_parse_stream(read_line, &p, on_key, &p);
    seen_clear(&p);
    free(p.seen);
    for (size_t i = 0; i < c->nservices && !p.oom; i++) {
        const struct conf_service *s = c->services[i];

        if (s->protocol_line == 0)
            config_error(c, s->line, s->name, NULL, "missing \"protocol = NAME\"");
        if (s->listen_line == 0)
            config_error(c, s->line, s->name, NULL, "missing \"listen = HOST:PORT\"");
    }
    if (p.oom || c->oom)
        return -ENOMEM;
    config_sort_errors(c);
    return c->nerrors > 0 ? -WEFT_ECONFIG : 0;
}

int
config_load(const char *file, struct config **out)
{
    struct config *c;
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    int fd, rc;

    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto fail;
    }
    if (st.st_size > (off_t)CONF_MAX_SIZE) {
        rc = -EFBIG;
        goto fail;
    }
    text = malloc(CONF_MAX_SIZE + 1);
    if (text == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    for (;;) {
        ssize_t n = read(fd, text + len, CONF_MAX_SIZE + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > CONF_MAX_SIZE) {
            rc = -EFBIG;
            goto fail;
        }
    }
    close(fd);
    rc = config_load_mem(file, text, len, out);
    free(text);
    return rc;

fail:
    if (fd >= 0)
        close(fd);
    free(text);
    c = config_new(file);
    *out = c;
    if (c == NULL)
        return -ENOMEM;
    if (rc == -EFBIG)
        config_error(c, 0, NULL, NULL, "cannot read: larger than %u bytes", CONF_MAX_SIZE);
    else
        config_error(c, 0, NULL, NULL, "cannot read: %s", strerror(-rc));
    return rc;
}
