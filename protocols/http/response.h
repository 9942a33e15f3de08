/* SPDX-License-Identifier: MIT */
/* response.h: status lines, common headers, the cached Date header, small error pages. */
#ifndef WEFT_HTTP_RESPONSE_H
#define WEFT_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/** The reason phrase for status ("Not Found"); "Unknown" for one we never send. */
const char *http_status_text(int status);

/**
 * Today's Date header value, formatted at most once a second per thread
 * (the cache is thread-local). The string is valid until the next call.
 */
const char *http_date_now(void);

/* The headers every response carries. */
struct http_head {
    int status;
    unsigned minor;             /* answer HTTP/1.<minor>: 1, or 0 to a 1.0 client */
    const char *server;         /* Server header value, or NULL for none */
    const char *content_type;   /* or NULL */
    uint64_t content_length;
    bool no_length;             /* no Content-Length at all (304: RFC 9110 §8.6, §15.4.5) */
    bool keep_alive;            /* Connection: keep-alive / close as the version needs */
    const char *extra;          /* more header lines, each ending in CRLF, or NULL */
};

/**
 * Append the status line and headers, through the blank line, to out.
 * Returns 0, or -ENOMEM if the buffer could not grow.
 */
int http_head_write(struct evbuffer *out, const struct http_head *h);

/**
 * Append a complete error response: the head (Content-Type text/html) and,
 * unless head_only, a small HTML page naming the status and, if hint is not
 * NULL, one line of advice (HTML-escaped). Returns the body bytes appended
 * (0 for head_only) or -ENOMEM.
 */
int http_error_write(struct evbuffer *out, int status, unsigned minor, const char *server,
                     bool keep_alive, bool head_only, const char *extra, const char *hint);

/**
 * Append the HTML page of an error response to body: the status and, if hint is not NULL,
 * one line of advice (HTML-escaped). Returns 0 or -ENOMEM.
 */
int http_error_body(struct evbuffer *body, int status, const char *hint);

/** Append s to out with &, <, >, " and ' escaped for HTML. Returns 0 or -ENOMEM. */
int http_html_escape(struct evbuffer *out, const char *s);

#endif
