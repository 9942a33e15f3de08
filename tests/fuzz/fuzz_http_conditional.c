/* SPDX-License-Identifier: MIT */
/* fuzz_http_conditional.c: libFuzzer target for the http plugin's ranges and conditionals. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input: a flags byte (bit i < 6: header i is present; bit 6: a GET, else HEAD;
 * bit 7: a small file, size % 1000), 8 bytes of file size, 4 of mtime, then the present
 * headers' values, one per line, in the order of struct http_preconditions: If-Match,
 * If-Unmodified-Since, If-None-Match, If-Modified-Since, Range, If-Range.
 *
 * http_file_decide() is checked against RFC 9110 §13.2.2 by invariants, and
 * http_range_parse() against ref_range() below, written from §14.1.2's grammar with the
 * choices files.h documents: one range only (a list, even of one range and a comma, is
 * ignored), an invalid or over-long number ignored, OWS around the spec.
 */
#define HDRS 6

static bool
ows(char c)
{
    return c == ' ' || c == '\t';
}

/* A decimal of 1+ digits that fits in 64 bits, exactly [p, e). */
static bool
ref_number(const char *p, const char *e, uint64_t *v)
{
    unsigned __int128 x = 0;

    if (p == e)
        return false;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9')
            return false;
        x = x * 10 + (unsigned)(*p - '0');
        if (x > UINT64_MAX)
            return false;
    }
    *v = (uint64_t)x;
    return true;
}

static int
ref_range(const char *h, uint64_t size, uint64_t *start, uint64_t *len)
{
    const char *p, *e, *dash;
    uint64_t first, last;

    if (strlen(h) < 6 || strncasecmp(h, "bytes=", 6) != 0)
        return 0;
    p = h + 6;
    e = p + strlen(p);
    while (p < e && ows(*p))
        p++;
    while (e > p && ows(e[-1]))
        e--;
    if (memchr(p, ',', (size_t)(e - p)) != NULL)
        return 0;
    dash = memchr(p, '-', (size_t)(e - p));
    if (dash == NULL)
        return 0;
    if (dash == p) {                            /* suffix-range: "-" suffix-length */
        if (!ref_number(p + 1, e, &last))
            return 0;
        if (last == 0 || size == 0)
            return -1;
        *len = last < size ? last : size;
        *start = size - *len;
        return 1;
    }
    if (!ref_number(p, dash, &first))            /* int-range: first "-" [ last ] */
        return 0;
    if (dash + 1 == e)
        last = UINT64_MAX;
    else if (!ref_number(dash + 1, e, &last))
        return 0;
    if (last < first)
        return 0;
    if (first >= size)
        return -1;
    if (last > size - 1)
        last = size - 1;
    *start = first;
    *len = last - first + 1;
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *hdr[HDRS] = { 0 }, *text, *p, etag[48], lastmod[30];
    struct http_preconditions q;
    struct http_file_answer a, b;
    uint64_t fsize = 0, s1 = 0, l1 = 0, s2 = 0, l2 = 0;
    uint32_t mt = 0;
    uint8_t flags;
    time_t t, mtime;
    int r1, r2;

    if (size < 13)
        return 0;
    flags = data[0];
    memcpy(&fsize, data + 1, 8);
    memcpy(&mt, data + 9, 4);
    if (flags & 0x80)
        fsize %= 1000;
    mtime = (time_t)(mt & 0x7fffffff);
    text = malloc(size - 13 + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data + 13, size - 13);
    text[size - 13] = '\0';
    p = text;
    for (int i = 0; i < HDRS; i++) {
        if (!(flags & (1u << i)))
            continue;
        hdr[i] = p;
        p = strchr(p, '\n');
        if (p == NULL) {
            p = hdr[i] + strlen(hdr[i]);
            continue;
        }
        *p++ = '\0';
    }
    http_etag_format(etag, sizeof(etag), mtime, fsize);
    http_date_format(mtime, lastmod);
    q = (struct http_preconditions){
        .if_match = hdr[0], .if_unmodified_since = hdr[1], .if_none_match = hdr[2],
        .if_modified_since = hdr[3], .range = hdr[4], .if_range = hdr[5],
        .get = (flags & 0x40) != 0,
    };

    /* The range parser and the reference agree on every value, reached or not. */
    if (q.range != NULL) {
        r1 = http_range_parse(q.range, fsize, &s1, &l1);
        r2 = ref_range(q.range, fsize, &s2, &l2);
        if (r1 != r2 || (r1 == 1 && (s1 != s2 || l1 != l2)))
            abort();
    }

    a = http_file_decide(&q, etag, lastmod, mtime, fsize);
    switch (a.status) {
    case 200:
        if (a.start != 0 || a.len != fsize)
            abort();
        break;
    case 206:
        if (a.len == 0 || a.start >= fsize || a.len > fsize - a.start)
            abort();
        /* Only a GET with a Range, its If-Range (if any) exactly our validator. */
        if (!q.get || q.range == NULL ||
            (q.if_range && strcmp(q.if_range, etag) != 0 && strcmp(q.if_range, lastmod) != 0))
            abort();
        if (ref_range(q.range, fsize, &s2, &l2) != 1 || s2 != a.start || l2 != a.len)
            abort();
        break;
    case 416:
        if (!q.get || q.range == NULL || ref_range(q.range, fsize, &s2, &l2) != -1)
            abort();
        break;
    case 304:
    case 412:
        break;
    default:
        abort();
    }

    /* §13.2.2 step 1-2: 412 exactly when If-Match fails, or, without it,
     * If-Unmodified-Since is a date before the file's mtime. */
    bool fail412 = q.if_match ? !http_etag_list_match(q.if_match, etag, true)
                   : q.if_unmodified_since && http_date_parse(q.if_unmodified_since, &t) == 0 &&
                         mtime > t;
    if ((a.status == 412) != fail412)
        abort();
    if (q.if_match && (strcmp(q.if_match, "*") == 0 || strcmp(q.if_match, etag) == 0) &&
        a.status == 412)
        abort();
    /* Steps 3-4: otherwise 304 exactly when If-None-Match matches, or, without it,
     * If-Modified-Since is a date not before mtime. */
    bool match304 = q.if_none_match ? http_etag_match(q.if_none_match, etag)
                    : q.if_modified_since && http_date_parse(q.if_modified_since, &t) == 0 &&
                          mtime <= t;
    if (!fail412 && (a.status == 304) != match304)
        abort();
    if (q.if_none_match && strcmp(q.if_none_match, etag) == 0 && !fail412 && a.status != 304)
        abort();

    /* Without the conditionals that passed, the answer is the same. */
    if (a.status != 412 && a.status != 304) {
        struct http_preconditions bare = { .range = q.range, .if_range = q.if_range,
                                           .get = q.get };

        b = http_file_decide(&bare, etag, lastmod, mtime, fsize);
        if (b.status != a.status || b.start != a.start || b.len != a.len)
            abort();
    }
    /* A HEAD is never partial. */
    if (q.get) {
        q.get = false;
        b = http_file_decide(&q, etag, lastmod, mtime, fsize);
        if (b.status == 206 || b.status == 416 ||
            (a.status != 206 && a.status != 416 && b.status != a.status))
            abort();
    }
    free(text);
    return 0;
}
