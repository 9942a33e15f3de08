/* SPDX-License-Identifier: MIT */
/* test_http_parser.c: the http plugin's adapter over llhttp: events, limits, strictness. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "request.h"

/* Feed all of s; returns the first non-MORE event, *used_total the bytes consumed. */
static enum http_parse_event
feed_all(struct http_parser *p, const char *s, size_t len, size_t *used_total)
{
    size_t off = 0, used;
    enum http_parse_event ev = HTTP_EV_MORE;
    while (off < len) {
        ev = http_parser_feed(p, s + off, len - off, &used);
        off += used;
        if (ev != HTTP_EV_MORE && ev != HTTP_EV_HEAD)
            break;
    }
    if (used_total)
        *used_total = off;
    return ev;
}

static int
error_status(const char *req)
{
    struct http_parser *p = http_parser_new(NULL);
    enum http_parse_event ev = feed_all(p, req, strlen(req), NULL);
    int st = ev == HTTP_EV_ERROR ? http_parser_status(p) : 0;
    http_parser_free(p);
    return st;
}

static void
test_simple_get_gives_done_with_fields(void **state)
{
    const char req[] = "GET /a%20b?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n"
                       "If-None-Match: \"x\"\r\nRange: bytes=0-1\r\n\r\n";
    struct http_parser *p = http_parser_new(NULL);
    size_t used;
    assert_int_equal(http_parser_feed(p, req, sizeof(req) - 1, &used), HTTP_EV_DONE);
    assert_int_equal(used, sizeof(req) - 1);
    const struct http_request *r = http_parser_request(p);
    assert_int_equal(r->method, HTTP_M_GET);
    assert_string_equal(r->target, "/a%20b?x=1");
    assert_string_equal(r->host, "h");
    assert_string_equal(r->user_agent, "t");
    assert_string_equal(r->if_none_match, "\"x\"");
    assert_string_equal(r->range, "bytes=0-1");
    assert_true(r->keep_alive);
    assert_int_equal(r->minor, 1);
    http_parser_free(p);
}

static void
test_pipelined_requests_come_one_at_a_time(void **state)
{
    const char req[] = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                       "HEAD /2 HTTP/1.1\r\nHost: h\r\n\r\n"
                       "GET /3 HTTP/1.0\r\n\r\n";
    struct http_parser *p = http_parser_new(NULL);
    const char *targets[] = { "/1", "/2", "/3" };
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        size_t used;
        assert_int_equal(feed_all(p, req + off, sizeof(req) - 1 - off, &used), HTTP_EV_DONE);
        off += used;
        assert_string_equal(http_parser_request(p)->target, targets[i]);
        if (i == 1)
            assert_int_equal(http_parser_request(p)->method, HTTP_M_HEAD);
        if (i == 2)
            assert_false(http_parser_request(p)->keep_alive);
        http_parser_next(p);
    }
    assert_int_equal(off, sizeof(req) - 1);
    http_parser_free(p);
}

static void
test_byte_by_byte_feed_parses(void **state)
{
    const char req[] = "GET /slow HTTP/1.1\r\nHost: hh\r\nReferer: r\r\n\r\n";
    struct http_parser *p = http_parser_new(NULL);
    enum http_parse_event ev = HTTP_EV_MORE;
    size_t used;
    for (size_t i = 0; i < sizeof(req) - 1; i++) {
        ev = http_parser_feed(p, req + i, 1, &used);
        assert_int_equal(used, 1);
        if (ev == HTTP_EV_DONE)
            break;
    }
    assert_int_equal(ev, HTTP_EV_DONE);
    assert_string_equal(http_parser_request(p)->target, "/slow");
    assert_string_equal(http_parser_request(p)->host, "hh");
    assert_string_equal(http_parser_request(p)->referer, "r");
    http_parser_free(p);
}

static void
test_chunked_body_is_consumed(void **state)
{
    const char req[] = "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    struct http_parser *p = http_parser_new(NULL);
    size_t used;
    assert_int_equal(feed_all(p, req, sizeof(req) - 1, &used), HTTP_EV_DONE);
    assert_int_equal(http_parser_request(p)->method, HTTP_M_OTHER);
    assert_true(http_parser_request(p)->has_body);
    http_parser_next(p);
    size_t used2;
    assert_int_equal(feed_all(p, req + used, sizeof(req) - 1 - used, &used2), HTTP_EV_DONE);
    assert_string_equal(http_parser_request(p)->target, "/next");
    http_parser_free(p);
}

static void
test_expect_continue_is_reported(void **state)
{
    const char req[] = "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                       "Content-Length: 5\r\n\r\n";
    struct http_parser *p = http_parser_new(NULL);
    size_t used;
    assert_int_equal(http_parser_feed(p, req, sizeof(req) - 1, &used), HTTP_EV_HEAD);
    assert_true(http_parser_request(p)->expect_continue);
    assert_true(http_parser_request(p)->has_body);
    assert_int_equal(http_parser_feed(p, req + used, sizeof(req) - 1 - used, &used), HTTP_EV_MORE);
    assert_int_equal(http_parser_feed(p, "hello", 5, &used), HTTP_EV_DONE);
    http_parser_free(p);
}

static void
test_malformed_requests_get_400(void **state)
{
    /* bare CR, obs-fold, conflicting and duplicate Content-Length, CL with TE */
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n"), 400);
    assert_int_equal(error_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                                  "Content-Length: 2\r\n\r\nab"), 400);
    assert_int_equal(error_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                                  "Content-Length: 1\r\n\r\na"), 400);
    assert_int_equal(error_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400);
    assert_int_equal(error_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                                  "Content-Length: 3\r\n\r\n0\r\n\r\n"), 400);
    assert_int_equal(error_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
                     400);
    assert_int_equal(error_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                     400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\n\r\n"), 400);              /* no Host */
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
    assert_int_equal(error_status("GET /\r\n\r\n"), 400);                       /* HTTP/0.9 */
    assert_int_equal(error_status("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_int_equal(error_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"),
                     400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n"), 400);
    assert_int_equal(error_status("FOO / HTTP/1.1\r\nHost: a\r\n\r\n"), 501);
    assert_int_equal(error_status("GETX / HTTP/1.1\r\nHost: a\r\n\r\n"), 501);
    assert_int_equal(error_status("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
    assert_int_equal(error_status("GET / HTTP/3.0\r\nHost: a\r\n\r\n"), 505);
    assert_int_equal(error_status("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), 400);
    /* RFC 9112 §6.1: a coding we do not implement, before a final chunked: 501 */
    assert_int_equal(error_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked"
                                  "\r\n\r\n0\r\n\r\n"), 501);
    assert_int_equal(error_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 501);
    assert_int_equal(error_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, "
                                  "chunked\r\n\r\n0\r\n\r\n"), 400);
}

static void
test_http_1_2_is_served_as_1_1(void **state)
{
    /* RFC 9110 §2.5: a higher minor version is compatible */
    const char req[] = "GET / HTTP/1.2\r\nHost: a\r\n\r\n";
    struct http_parser *p = http_parser_new(NULL);
    size_t used;
    assert_int_equal(http_parser_feed(p, req, sizeof(req) - 1, &used), HTTP_EV_DONE);
    assert_int_equal(http_parser_request(p)->major, 1);
    assert_int_equal(http_parser_request(p)->minor, 1);
    assert_true(http_parser_request(p)->keep_alive);
    http_parser_free(p);
    assert_int_equal(error_status("GET / HTTP/1.9\r\n\r\n"), 400);      /* 1.1 rules: Host */
}

static void
test_host_must_be_an_authority(void **state)
{
    /* RFC 9112 §3.2 / RFC 3986 §3.2.2: uri-host [":" port], or empty */
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.0\r\nHost: a?b\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"), 0);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: example.org:8080\r\n\r\n"), 0);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"), 0);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 0);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: xn--bcher-kva.example\r\n\r\n"), 0);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 0);
    /* every unreserved and sub-delim byte, '%'; and bytes beside them that are not */
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: aZ09-._~!$&'()*+,;=%\r\n\r\n"), 0);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a<b\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a#b\r\n\r\n"), 400);
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a\x80" "b\r\n\r\n"), 400);
    /* an empty field name */
    assert_int_equal(error_status("GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n"), 400);
}

static void
test_lf_only_request_is_flagged(void **state)
{
    const char *reqs[] = { "GET / HTTP/1.1\nHost: a\n\n", "GET / HTTP/1.0\n\n" };
    for (int i = 0; i < 2; i++) {
        struct http_parser *p = http_parser_new(NULL);
        assert_int_equal(feed_all(p, reqs[i], strlen(reqs[i]), NULL), HTTP_EV_ERROR);
        assert_int_equal(http_parser_status(p), 400);
        assert_true(http_parser_bare_lf(p));
        http_parser_free(p);
    }
}

static void
test_limits_give_414_431_413(void **state)
{
    struct http_limits lim = { .max_request_line = 100, .max_header_size = 200,
                               .max_headers = 3, .max_body_size = 10 };
    char buf[1024];
    struct http_parser *p;

    p = http_parser_new(&lim);
    snprintf(buf, sizeof(buf), "GET /%0200d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    assert_int_equal(feed_all(p, buf, strlen(buf), NULL), HTTP_EV_ERROR);
    assert_int_equal(http_parser_status(p), 414);
    http_parser_free(p);

    p = http_parser_new(&lim);
    snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: %0300d\r\n\r\n", 0);
    assert_int_equal(feed_all(p, buf, strlen(buf), NULL), HTTP_EV_ERROR);
    assert_int_equal(http_parser_status(p), 431);
    http_parser_free(p);

    p = http_parser_new(&lim);
    snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
    assert_int_equal(feed_all(p, buf, strlen(buf), NULL), HTTP_EV_ERROR);
    assert_int_equal(http_parser_status(p), 431);
    http_parser_free(p);

    p = http_parser_new(&lim);
    snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n");
    assert_int_equal(feed_all(p, buf, strlen(buf), NULL), HTTP_EV_ERROR);
    assert_int_equal(http_parser_status(p), 413);
    http_parser_free(p);

    p = http_parser_new(&lim);
    snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n");
    assert_int_equal(feed_all(p, buf, strlen(buf), NULL), HTTP_EV_ERROR);
    assert_int_equal(http_parser_status(p), 413);
    http_parser_free(p);
}

static void
test_error_is_sticky(void **state)
{
    struct http_parser *p = http_parser_new(NULL);
    size_t used;
    assert_int_equal(feed_all(p, "BAD\r\n", 5, NULL), HTTP_EV_ERROR);
    assert_int_equal(http_parser_feed(p, "GET / HTTP/1.1\r\n", 16, &used), HTTP_EV_ERROR);
    assert_int_equal(used, 0);
    assert_non_null(http_parser_reason(p));
    http_parser_free(p);
}

static void
test_http10_keep_alive_on_request(void **state)
{
    const char req[] = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    struct http_parser *p = http_parser_new(NULL);
    assert_int_equal(feed_all(p, req, sizeof(req) - 1, NULL), HTTP_EV_DONE);
    assert_true(http_parser_request(p)->keep_alive);
    assert_int_equal(http_parser_request(p)->minor, 0);
    http_parser_free(p);
}

static void
test_connection_close_wins_over_keep_alive(void **state)
{
    const char *reqs[] = { "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
                           "GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
                           "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n" };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        struct http_parser *p = http_parser_new(NULL);
        assert_int_equal(feed_all(p, reqs[i], strlen(reqs[i]), NULL), HTTP_EV_DONE);
        assert_false(http_parser_request(p)->keep_alive);
        http_parser_free(p);
    }
}

static void
test_upgrade_is_ignored_and_http_goes_on(void **state)
{
    /* RFC 9110 §7.8: we never switch, so the next request on the connection is HTTP */
    const char req[] = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    struct http_parser *p = http_parser_new(NULL);
    size_t used;
    assert_int_equal(http_parser_feed(p, req, sizeof(req) - 1, &used), HTTP_EV_DONE);
    assert_false(http_parser_request(p)->upgrade);
    assert_true(http_parser_request(p)->keep_alive);
    http_parser_next(p);
    size_t used2;
    assert_int_equal(http_parser_feed(p, req + used, sizeof(req) - 1 - used, &used2),
                     HTTP_EV_DONE);
    assert_string_equal(http_parser_request(p)->target, "/2");
    assert_int_equal(used + used2, sizeof(req) - 1);
    http_parser_free(p);

    /* CONNECT leaves HTTP: answered, and what follows is refused */
    const char conn[] = "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    p = http_parser_new(NULL);
    assert_int_equal(http_parser_feed(p, conn, sizeof(conn) - 1, &used), HTTP_EV_DONE);
    assert_int_equal(http_parser_request(p)->method, HTTP_M_OTHER);
    assert_true(http_parser_request(p)->upgrade);
    http_parser_next(p);
    assert_int_equal(http_parser_feed(p, conn + used, sizeof(conn) - 1 - used, &used),
                     HTTP_EV_ERROR);
    http_parser_free(p);
}

static void
test_h2_preface_is_505_with_our_reason(void **state)
{
    /* "PRI * HTTP/2.0" where HTTP/1.1 is expected: 505, and a reason of ours (llhttp's is
     * "Pause on PRI/Upgrade", which the error page used to show); fed whole and in bytes */
    const char pri[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    (void)state;
    for (size_t step = 1; step <= sizeof(pri) - 1; step += sizeof(pri) - 2) {
        struct http_parser *p = http_parser_new(NULL);
        enum http_parse_event ev = HTTP_EV_MORE;
        size_t off = 0, used;
        while (ev == HTTP_EV_MORE && off < sizeof(pri) - 1) {
            size_t n = sizeof(pri) - 1 - off < step ? sizeof(pri) - 1 - off : step;
            ev = http_parser_feed(p, pri + off, n, &used);
            off += used;
        }
        assert_int_equal(ev, HTTP_EV_ERROR);
        assert_int_equal(http_parser_status(p), 505);
        assert_string_equal(http_parser_reason(p), "HTTP/2 is not served on this connection");
        http_parser_free(p);
    }
}

/* ---- the fast path against llhttp ---- */

static bool
same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* Everything a caller can see of one parsed message, equal in both parsers. */
static bool
same_request(const struct http_request *a, const struct http_request *b)
{
    return a->method == b->method && same_str(a->method_name, b->method_name) &&
           a->major == b->major && a->minor == b->minor && a->keep_alive == b->keep_alive &&
           a->expect_continue == b->expect_continue && a->has_body == b->has_body &&
           a->upgrade == b->upgrade && a->content_length == b->content_length &&
           a->target_len == b->target_len &&
           (a->target == NULL ? b->target == NULL
                              : b->target && memcmp(a->target, b->target, a->target_len) == 0) &&
           same_str(a->host, b->host) && same_str(a->if_none_match, b->if_none_match) &&
           same_str(a->if_modified_since, b->if_modified_since) &&
           same_str(a->if_match, b->if_match) &&
           same_str(a->if_unmodified_since, b->if_unmodified_since) &&
           same_str(a->range, b->range) && same_str(a->if_range, b->if_range) &&
           same_str(a->user_agent, b->user_agent) && same_str(a->referer, b->referer);
}

/* Parse s (pipelined requests, cut into pieces of at most step bytes) with the fast path on
 * and off: every event, byte count, request and error the same. Returns the heads the fast
 * path took. */
static size_t
compare_paths(const char *s, size_t len, size_t step, const struct http_limits *lim)
{
    struct http_parser *on = http_parser_new(lim), *off = http_parser_new(lim);
    size_t pos = 0;

    http_parser_set_fast(off, false);
    for (int k = 0; k < 64 && pos < len; k++) {
        size_t a_pos = pos, b_pos = pos, used;
        enum http_parse_event ea = HTTP_EV_MORE, eb = HTTP_EV_MORE;
        while (a_pos < len && (ea == HTTP_EV_MORE || ea == HTTP_EV_HEAD)) {
            size_t n = len - a_pos < step ? len - a_pos : step;
            ea = http_parser_feed(on, s + a_pos, n, &used);
            a_pos += used;
        }
        while (b_pos < len && (eb == HTTP_EV_MORE || eb == HTTP_EV_HEAD)) {
            size_t n = len - b_pos < step ? len - b_pos : step;
            eb = http_parser_feed(off, s + b_pos, n, &used);
            b_pos += used;
        }
        if (ea != eb || a_pos != b_pos) {
            fprintf(stderr, "differ on %zu bytes, step %zu: events %d %d, used %zu %zu\n", len,
                    step, ea, eb, a_pos, b_pos);
            fail();
        }
        if (ea == HTTP_EV_ERROR) {
            assert_int_equal(http_parser_status(on), http_parser_status(off));
            assert_string_equal(http_parser_reason(on), http_parser_reason(off));
            break;
        }
        if (ea != HTTP_EV_DONE)
            break;
        if (!same_request(http_parser_request(on), http_parser_request(off))) {
            fprintf(stderr, "requests differ on %zu bytes: \"%.*s\"\n", len, (int)len, s);
            fail();
        }
        http_parser_next(on);
        http_parser_next(off);
        pos = a_pos;
    }
    size_t fast = http_parser_fast_count(on);
    assert_int_equal(http_parser_fast_count(off), 0);
    http_parser_free(on);
    http_parser_free(off);
    return fast;
}

static const char fast_small[] = "GET /13b.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
static const char fast_big[] =
    "HEAD /a/b.c?x=1&y=%20;z=(~)*'!$+,:@ HTTP/1.1\r\nhOST: [::1]:80\r\nUser-Agent: wrk/4 x\r\n"
    "Accept: */*\r\nIf-None-Match: \"x\", W/\"y\"\r\nRange: bytes=0-1\r\nReferer: http://r/\r\n"
    "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\nIf-Range: \"y\"\r\nIf-Match: *\r\n"
    "If-Unmodified-Since: x\r\nX-a_b.c~d!#$%&'*+-^`|: \t<v>{}[]\\\"\t.\r\n\r\n";

static void
test_fast_path_takes_plain_heads(void **state)
{
    char two[512];
    (void)state;
    assert_int_equal(compare_paths(fast_small, sizeof(fast_small) - 1, 4096, NULL), 1);
    assert_int_equal(compare_paths(fast_big, sizeof(fast_big) - 1, 4096, NULL), 1);
    /* pipelined, and between heads llhttp parses (Connection, 1.0 keep-alive) */
    const char *mid = "GET /k HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n";
    const char *ten = "GET /t HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    int n = snprintf(two, sizeof(two), "%s%s%s%s%s", fast_small, mid, fast_small, ten, fast_big);
    assert_int_equal(compare_paths(two, (size_t)n, 4096, NULL), 3);
    /* after a request that closes (1.0 without keep-alive), llhttp refuses what follows:
     * the fast path takes nothing then either */
    n = snprintf(two, sizeof(two), "GET /c HTTP/1.0\r\n\r\n%s", fast_small);
    assert_int_equal(compare_paths(two, (size_t)n, 4096, NULL), 0);
    n = snprintf(two, sizeof(two), "%s%s%s%s%s", fast_small, mid, fast_small, ten, fast_big);
    /* split heads go to llhttp, and the same comes out */
    for (size_t step = 1; step < sizeof(fast_small); step++)
        compare_paths(two, (size_t)n, step, NULL);
}

/* Every byte value in every position of both heads, replacing and inserting, and a byte
 * deleted at each: the fast path never disagrees with llhttp. */
static void
test_fast_path_agrees_with_llhttp_on_every_byte(void **state)
{
    const char *bases[] = { fast_small, fast_big };
    char buf[1024];
    (void)state;
    for (size_t b = 0; b < 2; b++) {
        size_t len = strlen(bases[b]);
        for (size_t i = 0; i < len; i++) {
            for (int c = 0; c < 256; c++) {
                memcpy(buf, bases[b], len);
                buf[i] = (char)c;
                compare_paths(buf, len, 4096, NULL);
                memcpy(buf, bases[b], i);
                buf[i] = (char)c;
                memcpy(buf + i + 1, bases[b] + i, len - i);
                compare_paths(buf, len + 1, 4096, NULL);
            }
            memcpy(buf, bases[b], i);
            memcpy(buf + i, bases[b] + i + 1, len - i - 1);
            compare_paths(buf, len - 1, 4096, NULL);
        }
    }
}

/* At and around each limit: the fast path leaves the verdict (414, 431) to llhttp. */
static void
test_fast_path_keeps_the_limits(void **state)
{
    (void)state;
    for (size_t v = 60; v <= 200; v++) {
        struct http_limits lim = HTTP_LIMITS_DEFAULT;
        lim.max_request_line = v - 50;
        lim.max_header_size = v;
        compare_paths(fast_big, sizeof(fast_big) - 1, 4096, &lim);
        compare_paths(fast_small, sizeof(fast_small) - 1, 4096, &lim);
    }
    for (size_t k = 1; k <= 13; k++) {
        struct http_limits lim = HTTP_LIMITS_DEFAULT;
        lim.max_headers = k;
        compare_paths(fast_big, sizeof(fast_big) - 1, 4096, &lim);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get_gives_done_with_fields),
        cmocka_unit_test(test_pipelined_requests_come_one_at_a_time),
        cmocka_unit_test(test_byte_by_byte_feed_parses),
        cmocka_unit_test(test_chunked_body_is_consumed),
        cmocka_unit_test(test_expect_continue_is_reported),
        cmocka_unit_test(test_malformed_requests_get_400),
        cmocka_unit_test(test_host_must_be_an_authority),
        cmocka_unit_test(test_http_1_2_is_served_as_1_1),
        cmocka_unit_test(test_lf_only_request_is_flagged),
        cmocka_unit_test(test_limits_give_414_431_413),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_http10_keep_alive_on_request),
        cmocka_unit_test(test_connection_close_wins_over_keep_alive),
        cmocka_unit_test(test_upgrade_is_ignored_and_http_goes_on),
        cmocka_unit_test(test_h2_preface_is_505_with_our_reason),
        cmocka_unit_test(test_fast_path_takes_plain_heads),
        cmocka_unit_test(test_fast_path_agrees_with_llhttp_on_every_byte),
        cmocka_unit_test(test_fast_path_keeps_the_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
