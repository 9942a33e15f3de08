/* SPDX-License-Identifier: MIT */
/* fuzz_http_request.c: libFuzzer target for the http plugin's request adapter over llhttp. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The first byte picks the chunk size the input is fed in (1..32, or all),
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
