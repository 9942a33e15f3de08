/* SPDX-License-Identifier: MIT */
/* request.c: glue over llhttp (strict mode): one request at a time, limits, smuggling guards. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include "request.h"

/* The header values a static file server looks at; the rest are only counted. */
enum slot { S_HOST, S_INM, S_IMS, S_IM, S_IUS, S_RANGE, S_IF_RANGE, S_UA, S_REFERER, S_EXPECT,
            S_TE, S_COUNT };

#define SLOT(s) { s, sizeof(s) - 1 }
static const struct { const char *name; size_t len; } slot_names[S_COUNT] = {
    [S_HOST] = SLOT("host"), [S_INM] = SLOT("if-none-match"),
    [S_IMS] = SLOT("if-modified-since"), [S_IM] = SLOT("if-match"),
    [S_IUS] = SLOT("if-unmodified-since"), [S_RANGE] = SLOT("range"),
    [S_IF_RANGE] = SLOT("if-range"), [S_UA] = SLOT("user-agent"),
    [S_REFERER] = SLOT("referer"), [S_EXPECT] = SLOT("expect"),
    [S_TE] = SLOT("transfer-encoding"),
};
#undef SLOT

/* What each byte may be, one lookup instead of a test per class (every head byte passes one):
 * C_URL an origin-form target's byte the fast path takes (ALPHA DIGIT
 * "!$%&'()*+,-./:;=?@_~"), C_TCHAR RFC 9110's tchar, C_VALUE a field value's (VCHAR, SP,
 * HTAB), C_REG a Host reg-name's (unreserved, pct-encoded's '%', sub-delims), C_DIGIT. */
enum { C_URL = 1, C_TCHAR = 2, C_VALUE = 4, C_REG = 8, C_DIGIT = 16 };
static const unsigned char byte_class[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     4, 15,  4,  6, 15, 15, 15, 15, 13, 13, 15, 15, 13, 15, 15,  5,
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31,  5, 13,  4, 13,  4,  5,
     5, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  4,  4,  4,  6, 15,
     6, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,  4,  6,  4, 15,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
};

enum state { ST_IDLE, ST_HEAD, ST_BODY, ST_DONE, ST_ERROR };

struct http_parser {
    llhttp_t ll;
    struct http_limits lim;
    struct http_request req;
    enum state state;
    enum http_parse_event event;    /* set by the callbacks during one execute */
    bool paused;                    /* llhttp is paused and must be resumed */
    bool no_fast;                   /* every head through llhttp (tests) */
    size_t fast_heads;              /* heads the fast path took (tests) */
    bool after_close;               /* the last request closes: llhttp refuses what follows */
    bool upgraded;                  /* llhttp stopped at an Upgrade/CONNECT */

    /* Copies of the target and the interesting values; offsets, since it grows. */
    char *arena;
    size_t alen, acap;
    size_t target_off, target_len;
    size_t slot_off[S_COUNT];       /* offset + 1; 0 when absent */

    char name[24];                  /* the current header's name, lower-cased */
    size_t name_len;                /* > sizeof(name) - 1 means "not interesting" */
    int slot;                       /* slot of the current value, or -1 */
    size_t value_off;
    unsigned hosts;
    unsigned te_chunked;            /* "chunked" codings in Transfer-Encoding values */
    bool te_other;                  /* a coding other than chunked (gzip, ...): 501 */

    size_t header_bytes, header_count;
    uint64_t body_bytes;

    /* Head scanning across calls: bare LF and obs-fold are ours to catch. */
    char last;                      /* last head byte seen, 0 at a request's start */
    bool bare_lf, obs_fold;

    int status;                     /* HTTP status of the error */
    const char *reason;
};

static struct http_parser *
parser_of(llhttp_t *ll)
{
    return ll->data;
}

static int
fail(struct http_parser *p, int status, const char *reason)
{
    p->status = status;
    p->reason = reason;
    return -1;
}

static int
arena_add(struct http_parser *p, const char *at, size_t len)
{
    if (p->alen + len + 1 > p->acap) {
        size_t cap = p->acap ? p->acap : 256;
        while (cap < p->alen + len + 1)
            cap *= 2;
        char *a = realloc(p->arena, cap);
        if (a == NULL)
            return fail(p, 500, "out of memory");
        p->arena = a;
        p->acap = cap;
    }
    memcpy(p->arena + p->alen, at, len);
    p->alen += len;
    return 0;
}

static int
on_message_begin(llhttp_t *ll)
{
    struct http_parser *p = parser_of(ll);
    p->state = ST_HEAD;
    return 0;
}

static int
on_url(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = parser_of(ll);
    if (p->req.method_name == NULL) {
        /* known from here on: lets the access log name even a refused request */
        p->req.method_name = llhttp_method_name((llhttp_method_t)ll->method);
        p->req.major = 1;
        p->req.minor = 1;
    }
    p->target_len += len;
    if (p->target_len > p->lim.max_request_line)
        return fail(p, 414, "request target too long");
    return arena_add(p, at, len);
}

static int
on_url_complete(llhttp_t *ll)
{
    struct http_parser *p = parser_of(ll);
    return arena_add(p, "", 1);
}

static int
on_header_field(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = parser_of(ll);
    p->header_bytes += len + 4;         /* ": " and CRLF, roughly */
    if (p->header_bytes > p->lim.max_header_size)
        return fail(p, 431, "header block too large");
    for (size_t i = 0; i < len; i++) {
        if (p->name_len < sizeof(p->name) - 1) {
            char c = at[i];
            p->name[p->name_len] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        p->name_len++;
    }
    return 0;
}

static int
on_header_field_complete(llhttp_t *ll)
{
    struct http_parser *p = parser_of(ll);
    if (++p->header_count > p->lim.max_headers)
        return fail(p, 431, "too many headers");
    if (p->name_len == 0)
        return fail(p, 400, "empty header name");
    p->slot = -1;
    if (p->name_len < sizeof(p->name)) {
        p->name[p->name_len] = '\0';
        for (int s = 0; s < S_COUNT; s++) {
            /* the length first: most names are not ours, and most differ in it */
            if (slot_names[s].len == p->name_len &&
                memcmp(p->name, slot_names[s].name, p->name_len) == 0) {
                p->slot = s;
                break;
            }
        }
    }
    if (p->slot == S_HOST && ++p->hosts > 1)
        return fail(p, 400, "more than one Host header");
    p->value_off = p->alen;
    return 0;
}

static int
on_header_value(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = parser_of(ll);
    p->header_bytes += len;
    if (p->header_bytes > p->lim.max_header_size)
        return fail(p, 431, "header block too large");
    return p->slot >= 0 ? arena_add(p, at, len) : 0;
}

/* Count the codings of one Transfer-Encoding value: "chunked" and the others. */
static void
te_scan(struct http_parser *p, const char *v)
{
    while (*v) {
        v += strspn(v, " \t,");
        size_t n = strcspn(v, " \t,;");
        if (n == 0)
            break;
        if (n == 7 && strncasecmp(v, "chunked", 7) == 0)
            p->te_chunked++;
        else
            p->te_other = true;
        v += n;
        v += strcspn(v, ",");           /* past any parameters */
    }
}

static int
on_header_value_complete(llhttp_t *ll)
{
    struct http_parser *p = parser_of(ll);
    if (p->slot >= 0) {
        if (arena_add(p, "", 1) < 0)
            return -1;
        p->slot_off[p->slot] = p->value_off + 1;
        if (p->slot == S_TE)
            te_scan(p, p->arena + p->value_off);
    }
    p->name_len = 0;
    p->slot = -1;
    return 0;
}

static const char *
slot_str(const struct http_parser *p, enum slot s)
{
    return p->slot_off[s] ? p->arena + p->slot_off[s] - 1 : NULL;
}

/* Point the request's strings into the arena (after its last realloc). */
static void
resolve(struct http_parser *p)
{
    struct http_request *r = &p->req;
    r->target = p->alen ? p->arena + p->target_off : NULL;
    if (r->target_len == 0)
        r->target_len = p->target_len < p->alen ? p->target_len : p->alen;
    if (r->target == NULL)
        r->method_name = NULL;
    r->host = slot_str(p, S_HOST);
    r->if_none_match = slot_str(p, S_INM);
    r->if_modified_since = slot_str(p, S_IMS);
    r->if_match = slot_str(p, S_IM);
    r->if_unmodified_since = slot_str(p, S_IUS);
    r->range = slot_str(p, S_RANGE);
    r->if_range = slot_str(p, S_IF_RANGE);
    r->user_agent = slot_str(p, S_UA);
    r->referer = slot_str(p, S_REFERER);
}

/*
 * A Host value RFC 9112 §3.2 and RFC 3986 §3.2.2 allow: empty, or uri-host [":" port],
 * uri-host an IP-literal in brackets or a reg-name / IPv4address (unreserved, pct-encoded,
 * sub-delims). "a b", "a/b", "a@b", "a?b" are not: 400.
 */
static bool
host_valid(const char *h)
{
    const char *c = h;

    if (*c == '[') {
        for (c++; *c && *c != ']'; c++)
            if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.' && *c != 'v' &&
                *c != 'V')
                return false;
        if (*c++ != ']')
            return false;
    } else {
        while (byte_class[(unsigned char)*c] & C_REG)
            c++;
    }
    if (*c == ':')
        for (c++; byte_class[(unsigned char)*c] & C_DIGIT; c++)
            ;
    return *c == '\0';
}

static int
on_headers_complete(llhttp_t *ll)
{
    struct http_parser *p = parser_of(ll);
    struct http_request *r = &p->req;
    unsigned flags = ll->flags;

    r->major = ll->http_major;
    r->minor = ll->http_minor;
    r->method_name = llhttp_method_name((llhttp_method_t)ll->method);
    r->method = ll->method == HTTP_GET ? HTTP_M_GET
              : ll->method == HTTP_HEAD ? HTTP_M_HEAD : HTTP_M_OTHER;
    /* "Connection: keep-alive, close" closes, in 1.0 too (llhttp keeps a 1.0 one alive). */
    r->keep_alive = llhttp_should_keep_alive(ll) && !(flags & F_CONNECTION_CLOSE);
    /* An Upgrade we never take (no 101 here): RFC 9110 §7.8 lets a server ignore it, and
     * the connection goes on in HTTP/1.1, so llhttp must not stop at the message's end.
     * CONNECT stays an exit: we refuse it and close, whatever the peer sends next. */
    r->upgrade = ll->method == HTTP_CONNECT;
    if (!r->upgrade)
        ll->upgrade = 0;
    r->content_length = (flags & F_CONTENT_LENGTH) ? ll->content_length : 0;
    r->has_body = (flags & F_CHUNKED) || r->content_length > 0;
    const char *expect = slot_str(p, S_EXPECT);
    r->expect_continue = expect && strcasecmp(expect, "100-continue") == 0;
    r->target_len = p->target_len;

    if (r->major == 0)
        return fail(p, 400, "HTTP/0.9 is not served");
    if (r->major > 1)
        return fail(p, 505, "HTTP version not supported");
    /* RFC 9110 §2.5: a higher minor version (HTTP/1.2) is compatible: serve it as 1.1 */
    if (r->minor > 1)
        r->minor = 1;
    if (r->minor >= 1 && p->hosts == 0)
        return fail(p, 400, "HTTP/1.1 request without Host");
    const char *host = slot_str(p, S_HOST);
    if (host && !host_valid(host))
        return fail(p, 400, "invalid Host");
    /* A body framed by anything but a final "chunked" cannot be delimited:
     * the classic smuggling vector, so refuse it, and TE on 1.0 too. */
    if (flags & F_TRANSFER_ENCODING) {
        if (!(flags & F_CHUNKED))
            return fail(p, 400, "Transfer-Encoding without final chunked");
        if (r->minor == 0)
            return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (p->te_chunked > 1)
            return fail(p, 400, "chunked applied more than once");
        /* RFC 9112 §6.1: a coding we do not implement (gzip, chunked) is a 501 */
        if (p->te_other)
            return fail(p, 501, "unsupported transfer coding");
    }
    if (expect && !r->expect_continue)
        return fail(p, 417, "unsupported Expect");
    if (r->content_length > p->lim.max_body_size)
        return fail(p, 413, "request body too large");
    p->state = ST_BODY;
    p->event = HTTP_EV_HEAD;
    /* Without a body llhttp completes the message in this same call, and a
     * pause here would leave it waiting for a byte that may never come. */
    return r->has_body ? HPE_PAUSED : 0;
}

static int
on_body(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = parser_of(ll);
    p->body_bytes += len;
    if (p->body_bytes > p->lim.max_body_size)
        return fail(p, 413, "request body too large");
    return 0;
}

static int
on_message_complete(llhttp_t *ll)
{
    struct http_parser *p = parser_of(ll);
    p->state = ST_DONE;
    p->event = HTTP_EV_DONE;
    if (p->req.upgrade)
        p->upgraded = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

struct http_parser *
http_parser_new(const struct http_limits *limits)
{
    static const struct http_limits def = HTTP_LIMITS_DEFAULT;
    struct http_parser *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->lim = limits ? *limits : def;
    llhttp_init(&p->ll, HTTP_REQUEST, &settings);
    /* Any DIGIT.DIGIT version, so that on_headers_complete can serve HTTP/1.2 as 1.1 and
     * answer HTTP/3.0 with 505 (llhttp 8.1 has the flag but no setter for it). */
    p->ll.lenient_flags |= LENIENT_VERSION;
    p->ll.data = p;
    p->slot = -1;
    return p;
}

void
http_parser_free(struct http_parser *p)
{
    if (p == NULL)
        return;
    free(p->arena);
    free(p);
}

void
http_parser_next(struct http_parser *p)
{
    if (p->state == ST_ERROR)
        return;
    p->after_close |= !p->req.keep_alive;
    memset(&p->req, 0, sizeof(p->req));
    memset(p->slot_off, 0, sizeof(p->slot_off));
    p->alen = p->target_off = p->target_len = 0;
    p->name_len = 0;
    p->slot = -1;
    p->hosts = 0;
    p->te_chunked = 0;
    p->te_other = false;
    p->header_bytes = p->header_count = 0;
    p->body_bytes = 0;
    p->last = 0;
    p->state = ST_IDLE;
}

/*
 * llhttp (8.x, strict) accepts an LF-only request line and obs-fold
 * continuation lines; we want neither: the first is how `nc` without -C
 * talks and deserves a hint, the second is a smuggling vector (RFC 9112 §5.2
 * lets a server reject it). Scan the head bytes llhttp consumed.
 */
static void
scan_head(struct http_parser *p, const char *s, const char *end)
{
    if (end <= s)
        return;
    /* Only line ends matter: memchr finds them, instead of a test per byte. */
    if (p->last == '\n' && (*s == ' ' || *s == '\t'))
        p->obs_fold = true;
    for (const char *c = s; (c = memchr(c, '\n', (size_t)(end - c))) != NULL; c++) {
        if ((c > s ? c[-1] : p->last) != '\r')
            p->bare_lf = true;
        if (c + 1 < end && (c[1] == ' ' || c[1] == '\t'))
            p->obs_fold = true;
    }
    p->last = end[-1];
}

/* RFC 9110 §5.6.2's tchar: what a method token is made of. */
static bool
is_tchar(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The status for llhttp's error e; at is the byte it stopped at (0 at the end). */
static int
status_of(const struct http_parser *p, llhttp_errno_t e, char at)
{
    const char *why = llhttp_get_error_reason(&p->ll);
    switch (e) {
    case HPE_INVALID_METHOD:
        /* a token we do not know ("FOO", "GETX") is 501; a method cut short by a byte no
         * token has ("GET\t/") is a malformed request-line, 400 (RFC 9112 §3) */
        return is_tchar(at) ? 501 : 400;
    case HPE_INVALID_VERSION:
        /* well-formed but not 0.9/1.x/2.0 ("HTTP/3.0") versus garbage */
        return why && strcmp(why, "Invalid HTTP version") == 0 ? 505 : 400;
    default:
        return 400;
    }
}


/*
 * The fast path: a complete, plain head in one piece ("GET /path HTTP/1.1", CRLF line ends,
 * token header names, printable values, Host once and valid, nothing that frames a body or
 * decides the connection: no Content-Length, Transfer-Encoding, Connection,
 * Proxy-Connection, Upgrade or Expect) is the request of every benchmark and of most
 * clients, and is parsed here in one pass without llhttp's per-byte state machine and ten
 * callbacks (issue 18: llhttp was ~1,600 instructions of a 3,800-instruction request).
 * What it accepts, llhttp accepts with the same fields (tests/unit/test_http_parser.c
 * compares the two on every byte in every position); anything else, a head split across
 * reads included, returns 0 and goes to llhttp, which decides as before. llhttp is left
 * where it was: at a message boundary (fresh, or paused after a keep-alive message), so
 * the next head it parses starts clean. Not after a request that closes the connection:
 * llhttp refuses any byte after it, so the fast path does too.
 */

/* name (len bytes) equals lower, lower-case, ignoring ASCII case */
static inline bool
name_is(const char *name, const char *lower, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((name[i] | 0x20) != lower[i])
            return false;
    return true;
}

enum { FAST_NONE = -1, FAST_REFUSE = -2 };

/* The slot of header name (a token), FAST_NONE for one nobody reads, FAST_REFUSE for one
 * the fast path leaves to llhttp (framing, Connection, Upgrade, Expect). */
static int
fast_classify(const char *n, size_t len)
{
    switch (len) {
    case 4: return name_is(n, "host", 4) ? S_HOST : FAST_NONE;
    case 5: return name_is(n, "range", 5) ? S_RANGE : FAST_NONE;
    case 6: return name_is(n, "expect", 6) ? FAST_REFUSE : FAST_NONE;
    case 7: return name_is(n, "referer", 7) ? S_REFERER
                 : name_is(n, "upgrade", 7) ? FAST_REFUSE : FAST_NONE;
    case 8: return name_is(n, "if-match", 8) ? S_IM
                 : name_is(n, "if-range", 8) ? S_IF_RANGE : FAST_NONE;
    case 10: return name_is(n, "user-agent", 10) ? S_UA
                  : name_is(n, "connection", 10) ? FAST_REFUSE : FAST_NONE;
    case 13: return name_is(n, "if-none-match", 13) ? S_INM : FAST_NONE;
    case 14: return name_is(n, "content-length", 14) ? FAST_REFUSE : FAST_NONE;
    case 16: return name_is(n, "proxy-connection", 16) ? FAST_REFUSE : FAST_NONE;
    case 17: return name_is(n, "if-modified-since", 17) ? S_IMS
                  : name_is(n, "transfer-encoding", 17) ? FAST_REFUSE : FAST_NONE;
    case 19: return name_is(n, "if-unmodified-since", 19) ? S_IUS : FAST_NONE;
    default: return FAST_NONE;
    }
}

static bool host_valid(const char *h);

/* The head at data if the fast path takes it: its length, the request DONE; else 0. Only a
 * buffer that ends with "\r\n\r\n" (every pipelined head complete) is tried: no byte class
 * has CR or LF, so each scan stops at a line end inside the buffer and needs no bound. */
static size_t
fast_head(struct http_parser *p, const char *data, size_t len)
{
    const char *s = data, *end = data + len;
    enum http_method m;
    size_t ends[S_COUNT + 1];           /* where the NULs go in the copy: target, values */
    int nends = 0;
    unsigned found = 0;                 /* the slots seen, a bit each */
    bool literal = false;               /* Host an IP-literal: host_valid() checks it */

    if (len < 4 || memcmp(end - 4, "\r\n\r\n", 4) != 0)
        return 0;
    if (memcmp(s, "GET ", 4) == 0) {
        m = HTTP_M_GET;
        s += 4;
    } else if (len >= 5 && memcmp(s, "HEAD ", 5) == 0) {
        m = HTTP_M_HEAD;
        s += 5;
    } else {
        return 0;
    }
    const char *target = s;
    if (*s != '/')
        return 0;
    while (byte_class[(unsigned char)*s] & C_URL)
        s++;
    size_t tlen = (size_t)(s - target);
    if (tlen > p->lim.max_request_line || end - s < 11 || memcmp(s, " HTTP/1.1\r\n", 11) != 0)
        return 0;
    ends[nends++] = (size_t)(s - data);
    s += 11;
    size_t bytes = 0, count = 0;
    unsigned hosts = 0;
    for (;;) {
        if (end - s < 2)
            goto refuse;
        if (*s == '\r') {
            if (s[1] != '\n')
                goto refuse;
            s += 2;
            break;
        }
        const char *name = s;
        while (byte_class[(unsigned char)*s] & C_TCHAR)
            s++;
        size_t nlen = (size_t)(s - name);
        if (nlen == 0 || *s != ':')
            goto refuse;
        int slot = fast_classify(name, nlen);
        if (slot == FAST_REFUSE || (slot == S_HOST && ++hosts > 1))
            goto refuse;
        for (s++; *s == ' ' || *s == '\t'; s++)
            ;
        const char *v = s;
        if (slot == S_HOST && *s != '[') {
            /* reg-name or IPv4 [":" port], as host_valid() has it; anything else after it
             * (a blank, a '/') is not CR: refused below, and llhttp's path says 400 */
            while (byte_class[(unsigned char)*s] & C_REG)
                s++;
            if (*s == ':')
                for (s++; byte_class[(unsigned char)*s] & C_DIGIT; s++)
                    ;
        } else {
            literal |= slot == S_HOST;
            while (byte_class[(unsigned char)*s] & C_VALUE)
                s++;
        }
        size_t vlen = (size_t)(s - v);
        if (vlen == 0 || v[vlen - 1] == ' ' || v[vlen - 1] == '\t' || end - s < 2 ||
            s[0] != '\r' || s[1] != '\n')
            goto refuse;           /* empty, trailing blanks, a bare CR or LF, a control byte */
        bytes += nlen + 4 + vlen;
        if (++count > p->lim.max_headers || bytes > p->lim.max_header_size)
            goto refuse;
        if (slot >= 0) {
            /* (slot_off is all 0 at ST_IDLE; a repeated header: the last one, as llhttp's
             * path has it; its first NUL is harmless, after the value it ends) */
            p->slot_off[slot] = (size_t)(v - data) + 1;
            found |= 1u << slot;
            if (nends > S_COUNT)
                goto refuse;
            ends[nends++] = (size_t)(s - data);
        }
        s += 2;
    }
    if (hosts == 0)
        goto refuse;
    size_t n = (size_t)(s - data);
    if (arena_add(p, data, n) < 0) {
        p->status = 0;
        p->reason = NULL;
        goto refuse;            /* llhttp's path says 500 itself */
    }
    /* NUL-terminate the target and the values read, in the copy (alen was 0: offsets into
     * data are offsets into the arena) */
    for (int i = 0; i < nends; i++)
        p->arena[ends[i]] = '\0';
    if (literal && !host_valid(p->arena + p->slot_off[S_HOST] - 1)) {
        p->alen = 0;
        goto refuse;
    }
    struct http_request *r = &p->req;
    /* resolve()'s work, for the slots seen only (the request's strings are NULL at
     * ST_IDLE; Expect and Transfer-Encoding never come this way) */
    static const size_t field[S_COUNT] = {
        [S_HOST] = offsetof(struct http_request, host),
        [S_INM] = offsetof(struct http_request, if_none_match),
        [S_IMS] = offsetof(struct http_request, if_modified_since),
        [S_IM] = offsetof(struct http_request, if_match),
        [S_IUS] = offsetof(struct http_request, if_unmodified_since),
        [S_RANGE] = offsetof(struct http_request, range),
        [S_IF_RANGE] = offsetof(struct http_request, if_range),
        [S_UA] = offsetof(struct http_request, user_agent),
        [S_REFERER] = offsetof(struct http_request, referer),
    };
    for (; found; found &= found - 1) {
        int i = __builtin_ctz(found);
        *(const char **)(void *)((char *)r + field[i]) = p->arena + p->slot_off[i] - 1;
    }
    r->target = p->arena + (target - data);
    r->target_len = tlen;
    r->method = m;
    r->method_name = m == HTTP_M_GET ? "GET" : "HEAD";     /* llhttp_method_name()'s */
    r->major = 1;
    r->minor = 1;
    r->keep_alive = true;
    p->target_off = (size_t)(target - data);
    p->target_len = tlen;
    p->hosts = hosts;
    p->header_bytes = bytes;
    p->header_count = count;
    p->state = ST_DONE;
    p->event = HTTP_EV_DONE;
    p->fast_heads++;
    return n;
refuse:
    memset(p->slot_off, 0, sizeof(p->slot_off));
    return 0;
}

void
http_parser_set_fast(struct http_parser *p, bool on)
{
    p->no_fast = !on;
}

size_t
http_parser_fast_count(const struct http_parser *p)
{
    return p->fast_heads;
}

enum http_parse_event
http_parser_feed(struct http_parser *p, const char *data, size_t len, size_t *used)
{
    *used = 0;
    if (p->state == ST_ERROR)
        return HTTP_EV_ERROR;
    if (p->state == ST_DONE)
        return HTTP_EV_DONE;
    if (len == 0)
        return HTTP_EV_MORE;
    if (p->upgraded) {
        p->state = ST_ERROR;
        p->status = 400;
        p->reason = "data after an Upgrade or CONNECT request";
        return HTTP_EV_ERROR;
    }
    if (p->state == ST_IDLE && !p->no_fast && !p->after_close) {
        size_t n = fast_head(p, data, len);
        if (n > 0) {
            *used = n;
            return HTTP_EV_DONE;
        }
    }
    if (p->paused) {
        llhttp_resume(&p->ll);
        p->paused = false;
    }
    bool in_head = p->state == ST_IDLE || p->state == ST_HEAD;
    p->event = HTTP_EV_MORE;
    llhttp_errno_t e = llhttp_execute(&p->ll, data, len);
    const char *stop = e == HPE_OK ? data + len : llhttp_get_error_pos(&p->ll);
    if (stop == NULL || stop < data || stop > data + len)
        stop = data + len;
    if (in_head)
        scan_head(p, data, stop);
    *used = (size_t)(stop - data);

    if (e == HPE_OK || e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
        if (e != HPE_OK)
            p->paused = true;
        if (e == HPE_PAUSED_UPGRADE) {
            /* Upgrade/CONNECT ends llhttp's HTTP stream: answer, then close;
             * whatever the peer sends after it is not HTTP any more. */
            p->req.upgrade = true;
            p->upgraded = true;
            p->state = ST_DONE;
            p->event = HTTP_EV_DONE;
        }
        if (p->event != HTTP_EV_MORE && in_head) {
            resolve(p);
            if (p->bare_lf || p->obs_fold) {
                p->state = ST_ERROR;
                p->status = 400;
                p->reason = p->bare_lf ? "bare LF line ending" : "obs-fold header line";
                return HTTP_EV_ERROR;
            }
        }
        return p->event;
    }
    resolve(p);
    p->state = ST_ERROR;
    if (e == HPE_PAUSED_H2_UPGRADE && p->status == 0) {
        /* "PRI * HTTP/2.0": the HTTP/2 connection preface where HTTP/1.1 was expected (a
         * service with http2 = off, or not at a connection's start). llhttp's reason
         * ("Pause on PRI/Upgrade") is its own business, not the client's. */
        p->status = 505;
        p->reason = "HTTP/2 is not served on this connection";
    }
    if (p->status == 0) {
        p->status = status_of(p, e, stop < data + len ? *stop : 0);
        p->reason = llhttp_get_error_reason(&p->ll);
    }
    if (p->bare_lf && p->status == 400)
        p->reason = "bare LF line ending";
    if (p->reason == NULL)
        p->reason = llhttp_errno_name(e);
    return HTTP_EV_ERROR;
}

const struct http_request *
http_parser_request(const struct http_parser *p)
{
    return &p->req;
}

bool
http_parser_in_request(const struct http_parser *p)
{
    return p->state == ST_HEAD || p->state == ST_BODY;
}

bool
http_parser_in_head(const struct http_parser *p)
{
    return p->state == ST_HEAD;
}

int
http_parser_status(const struct http_parser *p)
{
    return p->status ? p->status : 400;
}

const char *
http_parser_reason(const struct http_parser *p)
{
    return p->reason ? p->reason : "bad request";
}

bool
http_parser_bare_lf(const struct http_parser *p)
{
    return p->bare_lf;
}
