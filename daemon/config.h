/* SPDX-License-Identifier: MIT */
/* config.h: weftd's INI config: the [weftd] key table, service sections, file:line errors. */
#ifndef WEFTD_CONFIG_H
#define WEFTD_CONFIG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <weft/common.h>

/* The [weftd] section. Every field has a default in config.c's key table. */
struct conf_global {
    char *plugin_dir;           /* directories joined with ':', relative ones made relative
                                   to the file's folder; searched after -p and
                                   $WEFT_PLUGIN_DIR, before the built-in one; "": none */
    int log_level;              /* WEFT_LOG_ERR .. WEFT_LOG_DEBUG */
    uint64_t shutdown_ms;       /* SIGTERM: time granted to open connections */
    int workers;                /* worker processes: CONF_WORKERS_AUTO (one per core), 0 = none */
    char *user;                 /* workers run as this user when started as root; "" = stay */
    char *group;                /* and this group; "" = the user's primary group */
    uint64_t max_connections;   /* per worker: stop accepting at this many */
    uint64_t reload_ms;         /* SIGHUP: time old workers' connections get; 0 = no limit */
};

#define CONF_WORKERS_AUTO (-1)
#define CONF_WORKERS_MAX 1024

/* What a listen address is. */
enum conf_listen_kind {
    CONF_LISTEN_TCP,            /* HOST:PORT */
    CONF_LISTEN_UNIX,           /* unix:/PATH or unix:@NAME: a Unix domain stream socket */
    CONF_LISTEN_UDP,            /* udp:HOST:PORT: a UDP socket */
};

/* One address of a listen = line. */
struct conf_listen {
    char *text;                 /* as written, trimmed: "127.0.0.1:7007", "[::1]:7007",
                                   "unix:/run/weft/echo.sock", "udp:[::1]:7007" */
    enum conf_listen_kind kind;
    struct sockaddr_storage addr;   /* zeroed past addrlen (a sockaddr_un compares whole) */
    socklen_t addrlen;
    int line;
};

/* A key of a service section that is not weftd's: passed to the plugin. */
struct conf_kv {
    char *key;
    char *value;
    int line;
};

/* One service: a section other than [weftd]. */
struct conf_service {
    char *name;                 /* the section name */
    int line;                   /* of the [name] header */
    char *protocol;             /* NULL if missing (an error is recorded) */
    int protocol_line;
    struct conf_listen *listen;
    size_t nlisten;
    int listen_line;
    struct conf_kv *keys;       /* plugin keys, in file order */
    size_t nkeys;
};

struct conf_error {
    int line;                   /* 0: about the whole file */
    char *msg;                  /* "FILE:LINE: [section] key: reason" */
};

struct config {
    char *file;
    struct conf_global g;
    int g_lines[16];             /* line of each [weftd] key that was set, 0 if default */
    struct conf_service **services;
    size_t nservices;
    struct conf_error *errors;
    size_t nerrors;
    bool oom;                   /* an error could not be recorded */
};

/*
 * Read and check the config file: syntax, [weftd] keys, each service's
 * protocol and listen lines, duplicate sections, keys and listen addresses.
 * Plugin keys are only collected (the plugin checks them later). Always
 * returns a config in *out (NULL only on ENOMEM) that carries every error
 * found; returns 0 if there were none, -WEFT_ECONFIG if there were, -errno
 * if the file could not be read (the error names the file), -ENOMEM.
 */
int config_load(const char *file, struct config **out);

/* config_load() over text in memory; name is used in messages. */
int config_load_mem(const char *name, const char *text, size_t len, struct config **out);

/*
 * Record an error: "FILE:LINE: [section] key: reason" (line 0 drops
 * ":LINE", section NULL drops "[section] ", key NULL drops "key: ").
 */
void config_error(struct config *c, int line, const char *section, const char *key,
                  const char *fmt, ...) WEFT_PRINTF(5, 6);

/*
 * "Did you mean": the word of known (a list separated by commas and blanks) closest to
 * key, if close enough to be a typo, copied to buf; NULL if none.
 */
const char *config_did_you_mean(const char *key, const char *known, char *buf, size_t buflen);

/* Sort the errors by line (stable), so they read in file order. */
void config_sort_errors(struct config *c);

/* Free a config; NULL is a no-op. */
void config_free(struct config *c);

/*
 * Parse one listen address "HOST:PORT" (IPv4, [IPv6], "*" for every IPv4
 * address, "localhost"). Returns 0, or -WEFT_ECONFIG with a reason in why.
 */
int config_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                        char *why, size_t whylen);

/*
 * Parse the part of a listen address after "unix:": an absolute path, or
 * @NAME for Linux's abstract namespace, into a zeroed sockaddr_un in *ss.
 * Returns 0, or -WEFT_ECONFIG with a reason in why.
 */
int config_parse_listen_unix(const char *path, struct sockaddr_storage *ss, socklen_t *len,
                             char *why, size_t whylen);

/* Parse a duration ("10s", "500ms", "2m", "1h"; a bare number is seconds). */
int config_parse_duration(const char *text, uint64_t *ms, char *why, size_t whylen);

/*
 * Format an address as "1.2.3.4:80", "[::1]:80", or "unix:/path" / "unix:@name"
 * (a sockaddr_un zeroed past its name, as config and listen.c keep them).
 * Returns buf.
 */
const char *config_addr_string(const struct sockaddr *sa, char *buf, size_t len);

#endif
