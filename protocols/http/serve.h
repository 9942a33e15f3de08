/* SPDX-License-Identifier: MIT */
/* serve.h: what the answer to a request is, whatever carries it (HTTP/1.1 or HTTP/2). */
#ifndef WEFT_HTTP_SERVE_H
#define WEFT_HTTP_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "files.h"
#include "request.h"
#include "response.h"
#include "service.h"

struct evbuffer;
struct http_exchange;

/*
 * The framing of one protocol: how a head and a body go out. The answer's logic (files,
 * index, listings, validators, ranges, error pages) is serve.c's, the same for every
 * protocol; h1 (http.c) and h2 (h2.c) differ only in these. Each returns 0 or -ENOMEM
 * (or another -errno); after a failure serve.c sets x->failed and writes nothing more.
 */
struct http_framing_ops {
    /* The status line and headers. h->extra holds more "Name: value\r\n" lines. */
    int (*head)(struct http_exchange *x, const struct http_head *h);
    /* Body bytes, copied. */
    int (*body)(struct http_exchange *x, const void *data, size_t len);
    /* Body bytes, moved out of buf (buf is left empty). */
    int (*body_buffer)(struct http_exchange *x, struct evbuffer *buf);
    /* len bytes of the open regular file fd from off on: takes fd, on failure too. */
    int (*file)(struct http_exchange *x, int fd, uint64_t off, uint64_t len);
    /* Optional: the whole answer for a cached file when the request has no validator or
     * range (h1's pre-formatted heads); false to take the general path. */
    bool (*cached)(struct http_exchange *x, const struct http_cached *mem);
    /* Optional: the same for a file sent from fd (a head from http_cache_head, data NULL):
     * true once answered, fd taken (on failure too); false, fd untouched, for the general
     * path. */
    bool (*cached_file)(struct http_exchange *x, const struct http_cached *head, int fd);
};

/* One request being answered. */
struct http_exchange {
    const struct http_framing_ops *ops;
    void *ctx;                          /* the framing's connection or stream */
    struct http_service *svc;
    const struct http_request *r;       /* NULL for an error before a request was read */
    uint64_t now_ms;                    /* the loop's time, for the file cache */
    /* results */
    int status;
    uint64_t bytes;                     /* body bytes, for the log */
    bool keep_alive;                    /* in: the request's wish; out: h1 may go on */
    bool failed;                        /* an op failed: the answer is cut (h1: close) */
};

/** The request's target turned into an answer: a file, a listing, a redirect, an error. */
void http_serve(struct http_exchange *x);

/** An error page (with extra header lines and a hint for the page, both optional). */
void http_serve_error(struct http_exchange *x, int status, const char *extra, const char *hint);

/**
 * One access log line (combined format) for the answer, if the service logs: peer is the
 * client's address as weft_transport_peer_string() gives it ("1.2.3.4:80", "[::1]:80").
 */
void http_access_log(const struct http_service *s, const char *peer, const struct http_request *r,
                     int status, uint64_t bytes);

#endif
