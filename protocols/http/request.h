/* SPDX-License-Identifier: MIT */
/* request.h: the http plugin's adapter over llhttp: one request at a time, limits, strictness. */
#ifndef WEFT_HTTP_REQUEST_H
#define WEFT_HTTP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The limits a parser enforces; each maps to the status named beside it. */
struct http_limits {
    size_t max_request_line;    /* request target length: 414 */
    size_t max_header_size;     /* header block bytes: 431 */
    size_t max_headers;         /* header count: 431 */
    uint64_t max_body_size;     /* Content-Length or chunked total: 413 */
};

/* nginx's defaults: a request line of 8k (large_client_header_buffers 4 8k), 32k of head in
 * all (browsers with many cookies send more than 8k), 100 headers, a 1m body. */
#define HTTP_LIMITS_DEFAULT { 8192, 32768, 100, 1024 * 1024 }

/* The methods the plugin tells apart; the rest are HTTP_M_OTHER (405). */
enum http_method { HTTP_M_GET, HTTP_M_HEAD, HTTP_M_OTHER };

/*
 * One parsed request head. Strings are NUL-terminated, point into the
 * parser's arena and stay valid until http_parser_next(); NULL when absent.
 */
struct http_request {
    enum http_method method;
    const char *method_name;        /* "GET", "PUT", ... */
    unsigned major, minor;          /* 1.1, 1.0 */
    bool keep_alive;                /* llhttp's verdict: 1.1 default, 1.0 on request */
    bool expect_continue;           /* Expect: 100-continue */
    bool has_body;                  /* Content-Length > 0 or chunked */
    bool upgrade;                   /* CONNECT: we answer, then close (Upgrade is ignored) */
    uint64_t content_length;        /* when !chunked */
    const char *target;             /* raw request target */
    size_t target_len;
    const char *host;
    const char *if_none_match;
    const char *if_modified_since;
    const char *if_match;               /* RFC 9110 §13.1.1: strong comparison, or 412 */
    const char *if_unmodified_since;    /* §13.1.4: only without If-Match */
    const char *range;
    const char *if_range;
    const char *user_agent;
    const char *referer;
};

/* What http_parser_feed() stopped at. */
enum http_parse_event {
    HTTP_EV_MORE,       /* every byte consumed, nothing complete: feed more */
    HTTP_EV_HEAD,       /* the head of a request with a body is complete; feed the body */
    HTTP_EV_DONE,       /* the request (head and body) is complete */
    HTTP_EV_ERROR,      /* bad request: answer http_parser_status(), then close */
};

struct http_parser;

/**
 * Make a parser with a copy of limits (NULL: HTTP_LIMITS_DEFAULT).
 * Returns NULL on ENOMEM. Free with http_parser_free().
 */
struct http_parser *http_parser_new(const struct http_limits *limits);

/**
 * On (the default) or off: the fast path that parses a complete, plain GET or HEAD head in
 * one pass instead of through llhttp (request.c says which heads it takes; every other goes
 * to llhttp, with the same result). Off sends every head through llhttp: for tests that
 * compare the two.
 */
void http_parser_set_fast(struct http_parser *p, bool on);

/** How many heads the fast path has parsed (for tests). */
size_t http_parser_fast_count(const struct http_parser *p);

/** Free a parser; NULL is a no-op. */
void http_parser_free(struct http_parser *p);

/**
 * Parse up to len bytes of data; *used receives how many were consumed
 * (the rest belongs to the next call). Stops after every event, so pipelined
 * requests come out one at a time. After HTTP_EV_ERROR every call returns
 * HTTP_EV_ERROR again; after HTTP_EV_DONE call http_parser_next() first.
 */
enum http_parse_event http_parser_feed(struct http_parser *p, const char *data, size_t len,
                                       size_t *used);

/** The request being parsed (valid after HTTP_EV_HEAD, until http_parser_next()). */
const struct http_request *http_parser_request(const struct http_parser *p);

/** After HTTP_EV_DONE: forget the request and get ready for the next one. */
void http_parser_next(struct http_parser *p);

/** True once a request's first byte was seen and it is not yet complete. */
bool http_parser_in_request(const struct http_parser *p);

/** True between the first byte of a request and the end of its head. */
bool http_parser_in_head(const struct http_parser *p);

/** After HTTP_EV_ERROR: the status to answer (400, 413, 414, 431, 501, 505). */
int http_parser_status(const struct http_parser *p);

/** After HTTP_EV_ERROR: a short reason for logs and the error page, never NULL. */
const char *http_parser_reason(const struct http_parser *p);

/** After HTTP_EV_ERROR: true if the head used bare LF line ends (plain nc, not nc -C). */
bool http_parser_bare_lf(const struct http_parser *p);

#endif
