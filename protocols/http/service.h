/* SPDX-License-Identifier: MIT */
/* service.h: one http service's settings and per-worker state, shared by the h1 and h2 paths. */
#ifndef WEFT_HTTP_SERVICE_H
#define WEFT_HTTP_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "request.h"

struct http_mime;
struct http_cache;

/* HTTP/2 settings of a service (see h2.c); each is sent in our SETTINGS frame. */
struct http2_limits {
    uint32_t max_concurrent_streams;    /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t max_header_list_size;      /* SETTINGS_MAX_HEADER_LIST_SIZE; more: 431 */
    uint32_t header_table_size;         /* SETTINGS_HEADER_TABLE_SIZE (HPACK, the decoder's) */
    uint32_t initial_window_size;       /* SETTINGS_INITIAL_WINDOW_SIZE (request bodies) */
    uint32_t max_control_frames;        /* PING, SETTINGS, WINDOW_UPDATE... beyond requests' */
    uint64_t send_timeout_ms;           /* a stalled stream or write; 0: keepalive + header */
};

/* nginx's http2_max_concurrent_streams 128; the header list as max_header_size; RFC 9113's
 * initial HPACK table and window; 1000 control frames, as nghttp2's outbound ACKs. */
#define HTTP2_LIMITS_DEFAULT { 128, 32768, 4096, 65535, 1000, 0 }

struct http_service {
    char *root;                 /* NULL: the built-in test page */
    char *root_real;            /* realpath(root) */
    int rootfd;
    char *index;
    bool autoindex, follow_symlinks, dotfiles, server_tokens;
    bool http2;                 /* h2 by ALPN on TLS, h2c with prior knowledge on plain */
    uint64_t header_timeout_ms, keepalive_timeout_ms;
    uint64_t lingering_time_ms, lingering_timeout_ms;   /* see linger() in http.c */
    struct http_limits limits;
    struct http2_limits h2;
    char *access_log;           /* "off", "stderr" or a path */
    int log_fd;                 /* -1 when off */
    char *server_name;
    char server[64];            /* the Server header value, "" for none */
    struct http_mime *mime;
    struct http_cache *cache;
    /* "HTTP/1.x 200 OK", Date and Server lines, remade once a second (h1's fast path) */
    time_t prefix_time;
    char prefix[2][160];
    size_t prefix_len[2];
    /* this worker's connections, told to finish on a drain (h2.c, http.c) */
    struct h2conn *h2_conns;
    struct conn *h1_conns;
    bool draining;
};

#endif
