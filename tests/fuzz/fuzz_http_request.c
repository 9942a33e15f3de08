/* SPDX-License-Identifier: MIT */
/* fuzz_http_request.c: libFuzzer target for the http plugin's request adapter over llhttp. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/*
 * The fast path against llhttp: the stream (fed whole each time, as a read that holds it
 * all) through a parser with the fast path and one without, which must agree on every
 * event, byte count, request and error.
 */
static void
compare_paths(const struct http_limits *lim, const char *s, size_t len)
{
    struct http_parser *a = http_parser_new(lim), *b = http_parser_new(lim);
    size_t pos = 0;

    if (a == NULL || b == NULL)
        goto out;
    http_parser_set_fast(b, false);
    for (int k = 0; k < 64 && pos < len; k++) {
        size_t pa = pos, pb = pos, used;
        enum http_parse_event ea = HTTP_EV_MORE, eb = HTTP_EV_MORE;
        while (pa < len && (ea == HTTP_EV_MORE || ea == HTTP_EV_HEAD)) {
            ea = http_parser_feed(a, s + pa, len - pa, &used);
            pa += used;
            if (used == 0 && ea == HTTP_EV_MORE)
                break;
        }
        while (pb < len && (eb == HTTP_EV_MORE || eb == HTTP_EV_HEAD)) {
            eb = http_parser_feed(b, s + pb, len - pb, &used);
            pb += used;
            if (used == 0 && eb == HTTP_EV_MORE)
                break;
        }
        if (ea != eb || pa != pb)
            abort();
        if (ea == HTTP_EV_ERROR) {
            if (http_parser_status(a) != http_parser_status(b) ||
                strcmp(http_parser_reason(a), http_parser_reason(b)) != 0)
                abort();
            break;
        }
        if (ea != HTTP_EV_DONE)
            break;
        const struct http_request *x = http_parser_request(a), *y = http_parser_request(b);
        if (x->method != y->method || !same_str(x->method_name, y->method_name) ||
            x->major != y->major || x->minor != y->minor || x->keep_alive != y->keep_alive ||
            x->expect_continue != y->expect_continue || x->has_body != y->has_body ||
            x->upgrade != y->upgrade || x->content_length != y->content_length ||
            x->target_len != y->target_len || !same_str(x->target, y->target) ||
            !same_str(x->host, y->host) || !same_str(x->if_none_match, y->if_none_match) ||
            !same_str(x->if_modified_since, y->if_modified_since) ||
            !same_str(x->if_match, y->if_match) ||
            !same_str(x->if_unmodified_since, y->if_unmodified_since) ||
            !same_str(x->range, y->range) || !same_str(x->if_range, y->if_range) ||
            !same_str(x->user_agent, y->user_agent) || !same_str(x->referer, y->referer))
            abort();
        http_parser_next(a);
        http_parser_next(b);
        pos = pa;
    }
out:
    http_parser_free(a);
    http_parser_free(b);
}

/*
 * Each input first goes through compare_paths() whole. The first byte picks the chunk size the input is fed in (1..32, or all),
 * so splits inside tokens are explored; the rest is the byte stream of a
 * connection. Every request that completes goes through the path normaliser
 * and the validators as the plugin would use them.
 */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_limits lim = { 256, 512, 16, 1024 };
    struct http_parser *p;
    size_t step, off = 1;

    if (size < 1)
        return 0;
    step = data[0] & 0x1f ? (size_t)(data[0] & 0x1f) : size;
    compare_paths(&lim, (const char *)data + 1, size - 1);
    p = http_parser_new(&lim);
    if (p == NULL)
        return 0;
    while (off < size) {
        size_t n = size - off < step ? size - off : step, used = 0;
        enum http_parse_event ev = http_parser_feed(p, (const char *)data + off, n, &used);
        if (used > n)
            abort();
        off += used;
        if (ev == HTTP_EV_ERROR) {
            int st = http_parser_status(p);
            if (st < 400 || st > 505 || http_parser_reason(p) == NULL)
                abort();
            break;
        }
        if (ev == HTTP_EV_DONE) {
            const struct http_request *r = http_parser_request(p);
            char path[512];
            uint64_t start, len;
            if (r->target == NULL || strlen(r->target) != r->target_len)
                abort();
            if (http_path_normalise(r->target, r->target_len, path, sizeof(path)) > 0 &&
                (strstr(path, "/../") || path[0] != '/'))
                abort();
            if (r->range && http_range_parse(r->range, 1000, &start, &len) > 0 &&
                (len == 0 || start + len > 1000))
                abort();
            if (r->if_none_match)
                (void)http_etag_match(r->if_none_match, "\"1-2\"");
            http_parser_next(p);
        }
        if (used == 0 && ev == HTTP_EV_MORE)
            break;
    }
    http_parser_free(p);
    return 0;
}
