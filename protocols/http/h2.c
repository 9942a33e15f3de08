/* SPDX-License-Identifier: MIT */
/* h2.c: HTTP/2 for the http plugin: nghttp2 sessions over weft transports; each request
 * answered by serve.c through the h2 framing ops (HEADERS and DATA instead of HTTP/1.1). */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>
#include <weft/weft.h>

#include "h2.h"
#include "serve.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_NOACCESS
#define VALGRIND_MAKE_MEM_NOACCESS(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)(p), (void)(n))
#endif

#define OUT_FLUSH (64u * 1024)      /* frames collected before they go to the transport */
/* h->obuf: OUT_FLUSH, then a whole DATA frame of the largest payload nghttp2 asks for
 * (NGHTTP2_DATA_PAYLOADLEN, 16 KiB) or a chunk of its own frame buffer */
#define OBUF_CAP (OUT_FLUSH + 20u * 1024)
/* A request answered, and a DATA frame sent, each allow the client this many more control
 * frames (Envoy's max_inbound_priority_frames_per_stream and
 * max_inbound_window_update_frames_per_data_frame_sent): see next_frame. */
#define CONTROL_PER_REQUEST 100
#define CONTROL_PER_DATA 10

/* The request headers serve.c reads, besides the pseudo-headers. */
enum h2slot { H_METHOD, H_PATH, H_AUTHORITY, H_HOST, H_INM, H_IMS, H_IM, H_IUS, H_RANGE,
              H_IF_RANGE, H_UA, H_REFERER, H_COUNT };

static const char *const h2slot_names[H_COUNT] = {
    [H_METHOD] = ":method", [H_PATH] = ":path", [H_AUTHORITY] = ":authority",
    [H_HOST] = "host", [H_INM] = "if-none-match", [H_IMS] = "if-modified-since",
    [H_IM] = "if-match", [H_IUS] = "if-unmodified-since", [H_RANGE] = "range",
    [H_IF_RANGE] = "if-range", [H_UA] = "user-agent", [H_REFERER] = "referer",
};

struct h2conn;

/*
 * The connection's block pool: nghttp2's allocations (through an nghttp2_mem), the streams
 * and their answers' buffers. A block freed goes on its size class's free list and is
 * handed out again, so a stream's dozen allocations (nghttp2's stream, its outbound items,
 * the response's name/value copy, ours) cost a list pop each instead of malloc and free.
 * Classes 32, 48, 64, 96 ... 3072, 4096 bytes (two a power of two); a larger block is
 * malloc's. Each block has a 16-byte head (its class, the free list's link), so free needs
 * no size. The lists keep at most POOL_KEEP bytes (more goes back to free()), and are
 * emptied when the connection has no stream at a tick (on_tick) and when it ends. Under
 * ASan and memcheck a listed block is poisoned: a use after free is still caught.
 */
#define POOL_CLASSES 15
#define POOL_MAX 4096
#define POOL_BIG 0xffu
#define POOL_KEEP (96u * 1024)

struct pool_block {
    struct pool_block *next;        /* on a free list */
    uint32_t cls;                   /* POOL_BIG: malloc's */
    uint32_t unused;
};

struct h2pool {
    struct pool_block *free[POOL_CLASSES];
    size_t kept;                    /* bytes on the lists */
};

/* A request's header values (the slots) are cut from the stream's own hbuf, then from
 * chunks of the pool: one free at the stream's end. */
struct hchunk {
    struct hchunk *next;
    size_t cap, used;
    char data[];
};

struct h2stream {
    struct h2conn *h;
    struct h2stream *next, **pprev;     /* h->list: nghttp2_session_del frees none */
    int32_t id;
    char *slot[H_COUNT];            /* copies, NUL-terminated; NULL when absent */
    uint32_t slot_len[H_COUNT];
    size_t header_bytes;            /* RFC 9113 §6.5.2's count: name + value + 32 each */
    bool too_big;                   /* past max_header_list_size: 431 */
    bool answered;
    bool reset;                     /* stalled: RST_STREAM submitted (see on_tick) */
    uint64_t begun_ms;              /* when its HEADERS began: header_timeout from there */
    uint64_t moved_ms;              /* answered: when a byte of it last moved, either way */
    uint64_t body_bytes;            /* request body bytes seen (and dropped) */
    /* the answer: its head as nghttp2 wants it, its body from memory or from a file */
    nghttp2_nv *nv;
    size_t nnv;
    char *nvbuf;                    /* the names and values nv points into */
    struct evbuffer *body;
    int fd;                         /* -1: none */
    uint64_t off, left;
    /* a cached file's answer (h2_cached): its head in fast_nv, its body copied to data
     * (small, or allocated) */
    nghttp2_nv fast_nv[8];
    char fast_length[24];
    char *data;
    size_t data_len, data_off;
    char small[64];
    size_t hused;                   /* of hbuf */
    struct hchunk *hmore;           /* the chunks after hbuf, the newest first */
    char hbuf[320];
};

struct h2conn {
    struct weft_protocol base;
    struct http_service *svc;
    struct weft_transport *tr;
    struct weft_loop *loop;
    nghttp2_session *ng;
    nghttp2_mem mem;                /* the pool, for nghttp2 */
    struct h2stream *heading;       /* the stream whose request headers come in: on_header
                                     * needs no lookup in nghttp2's stream map */
    struct h2pool pool;
    /* frames on their way to the transport: one flat buffer, so that the TLS layer
     * encrypts whole records straight from it (an evbuffer's short chains it would pull
     * up: a copy of each record); allocated at the first frame, freed when idle */
    uint8_t *obuf;
    size_t olen;
    struct weft_handle *timer, *kick;
    uint64_t idle_since;            /* when the last stream ended (or the connection began) */
    uint64_t stall_since;           /* write_paused: when the transport last took a byte */
    size_t stall_queued;            /* its write buffer then */
    size_t streams;
    struct h2stream *list;
    /* control frames (next_frame) against what the client was given for them */
    uint64_t control, answered, data_sent;
    /* where the client's bytes are in its frames: the preface, a header, a payload */
    uint32_t preface_left, skip;
    uint8_t fh[9];
    uint8_t fh_have;
    bool write_paused, closing, goaway;
    bool told;                      /* the one line saying why it ends is logged */
    bool stall_told;                /* a stalled stream's reset is logged (the next at debug) */
    struct h2conn *next, **pprev;   /* svc->h2_conns, for a drain */
    char peer[160];             /* weft_transport_peer_string: "unix:..." may be long */
};

static void h2_flush(struct h2conn *h);
static int out_push(struct h2conn *h);
static int out_room(struct h2conn *h, size_t n);
static void h2_close(struct h2conn *h, bool abort);

/* ---- the block pool ---- */

/* The class of n bytes (1 .. POOL_MAX): 0 for up to 32, then 48, 64, 96, 128 ... */
static unsigned
pool_class(size_t n)
{
    if (n <= 32)
        return 0;
    unsigned b = 63u - (unsigned)__builtin_clzll((unsigned long long)(n - 1));
    return 2 * (b - 5) + 1 + (n > ((size_t)3 << (b - 1)));
}

static size_t
pool_class_size(unsigned c)
{
    if (c == 0)
        return 32;
    unsigned k = (c - 1) / 2;
    return c & 1 ? (size_t)3 << (k + 4) : (size_t)1 << (k + 6);
}

static void *
pool_malloc(struct h2pool *pl, size_t n)
{
    struct pool_block *b;

    if (n > POOL_MAX) {
        if (n > SIZE_MAX - sizeof(*b) || (b = malloc(sizeof(*b) + n)) == NULL)
            return NULL;
        b->cls = POOL_BIG;
        return b + 1;
    }
    unsigned c = pool_class(n ? n : 1);
    size_t size = pool_class_size(c);
    if ((b = pl->free[c]) != NULL) {
        pl->free[c] = b->next;
        pl->kept -= size;
        ASAN_UNPOISON_MEMORY_REGION(b + 1, size);
        VALGRIND_MAKE_MEM_UNDEFINED(b + 1, size);
        return b + 1;
    }
    if ((b = malloc(sizeof(*b) + size)) == NULL)
        return NULL;
    b->cls = c;
    return b + 1;
}

static void
pool_free(struct h2pool *pl, void *p)
{
    if (p == NULL)
        return;
    struct pool_block *b = (struct pool_block *)p - 1;
    size_t size = b->cls == POOL_BIG ? 0 : pool_class_size(b->cls);
    if (size == 0 || pl->kept + size > POOL_KEEP) {
        free(b);
        return;
    }
    ASAN_POISON_MEMORY_REGION(p, size);
    VALGRIND_MAKE_MEM_NOACCESS(p, size);
    b->next = pl->free[b->cls];
    pl->free[b->cls] = b;
    pl->kept += size;
}

static void *
pool_calloc(struct h2pool *pl, size_t k, size_t n)
{
    if (n != 0 && k > SIZE_MAX / n)
        return NULL;
    void *p = pool_malloc(pl, k * n);
    if (p != NULL)
        memset(p, 0, k * n);
    return p;
}

static void *
pool_realloc(struct h2pool *pl, void *p, size_t n)
{
    if (p == NULL)
        return pool_malloc(pl, n);
    if (n == 0) {
        pool_free(pl, p);
        return NULL;
    }
    struct pool_block *b = (struct pool_block *)p - 1;
    if (b->cls == POOL_BIG) {
        if (n > SIZE_MAX - sizeof(*b) || (b = realloc(b, sizeof(*b) + n)) == NULL)
            return NULL;
        return b + 1;
    }
    size_t size = pool_class_size(b->cls);
    if (n <= size)
        return p;
    void *q = pool_malloc(pl, n);
    if (q == NULL)
        return NULL;
    memcpy(q, p, size);
    pool_free(pl, p);
    return q;
}

/* The lists emptied (the blocks in use stay as they are). */
static void
pool_trim(struct h2pool *pl)
{
    for (unsigned c = 0; c < POOL_CLASSES; c++) {
        while (pl->free[c] != NULL) {
            struct pool_block *b = pl->free[c];
            ASAN_UNPOISON_MEMORY_REGION(b + 1, pool_class_size(c));
            pl->free[c] = b->next;
            free(b);
        }
    }
    pl->kept = 0;
}

/* nghttp2's allocations (ud is the connection) */
static void *mem_malloc(size_t n, void *ud) { return pool_malloc(ud, n); }
static void mem_free(void *p, void *ud) { pool_free(ud, p); }
static void *mem_calloc(size_t k, size_t n, void *ud) { return pool_calloc(ud, k, n); }
static void *mem_realloc(void *p, size_t n, void *ud) { return pool_realloc(ud, p, n); }

/* A stream's or the write's stall: http2_send_timeout, or keepalive + header timeouts. */
static uint64_t
send_timeout_ms(const struct http_service *svc)
{
    return svc->h2.send_timeout_ms ? svc->h2.send_timeout_ms
                                   : svc->keepalive_timeout_ms + svc->header_timeout_ms;
}

/* The one line saying why h ends (later reasons are not logged). */
static void
tell(struct h2conn *h, int level, const char *why, const char *what)
{
    if (h->told)
        return;
    h->told = true;
    weft_log(level, "http: h2 from %s: %s: %s", h->peer, why, what);
}

/* An abusive client: GOAWAY(ENHANCE_YOUR_CALM), then the connection closes once it is out
 * (nghttp2 reads nothing more); the streams it has are abandoned. */
static void
calm(struct h2conn *h, const char *why)
{
    tell(h, WEFT_LOG_WARNING, why, "GOAWAY(ENHANCE_YOUR_CALM), closing");
    h->goaway = true;
    if (nghttp2_session_terminate_session(h->ng, NGHTTP2_ENHANCE_YOUR_CALM) != 0)
        h2_close(h, true);
}

/* ---- streams ---- */

static void
stream_free(struct h2stream *st)
{
    *st->pprev = st->next;
    if (st->next)
        st->next->pprev = st->pprev;
    if (--st->h->streams == 0)
        st->h->idle_since = weft_loop_time(st->h->loop);
    if (st->h->heading == st)
        st->h->heading = NULL;
    struct h2pool *pl = &st->h->pool;
    while (st->hmore != NULL) {
        struct hchunk *c = st->hmore;
        st->hmore = c->next;
        pool_free(pl, c);
    }
    if (st->nv != st->fast_nv)
        pool_free(pl, st->nv);
    pool_free(pl, st->nvbuf);
    if (st->data != st->small)
        pool_free(pl, st->data);
    if (st->body)
        evbuffer_free(st->body);
    if (st->fd >= 0)
        close(st->fd);
    pool_free(pl, st);
}

/* DATA frames sent count for next_frame; a GOAWAY with an error that nghttp2 sent on its
 * own (a protocol error, its debug data says which, or its reset rate) is logged. */
static int
on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2conn *h = ud;

    (void)ng;
    if (frame->hd.type == NGHTTP2_DATA) {
        h->data_sent++;
    } else if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
               !h->told) {
        uint32_t code = frame->goaway.error_code;
        char why[128], what[64];
        size_t n = frame->goaway.opaque_data_len < sizeof(why) - 1 ? frame->goaway.opaque_data_len
                                                                  : sizeof(why) - 1;
        for (size_t i = 0; i < n; i++) {
            uint8_t c = frame->goaway.opaque_data[i];
            why[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
        why[n] = '\0';
        snprintf(what, sizeof(what), "GOAWAY(%s), closing", nghttp2_http2_strerror(code));
        tell(h, code == NGHTTP2_INTERNAL_ERROR || code == NGHTTP2_ENHANCE_YOUR_CALM
                ? WEFT_LOG_WARNING : WEFT_LOG_INFO,
             n ? why : code == NGHTTP2_INTERNAL_ERROR ? "too many streams reset (nghttp2's "
                                                        "stream reset rate)" : "nghttp2", what);
    }
    return 0;
}

static int
on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2conn *h = ud;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct h2stream *st = pool_malloc(&h->pool, sizeof(*st));
    if (st == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;      /* RST_STREAM for this one */
    memset(st, 0, offsetof(struct h2stream, hbuf));     /* (hbuf is cut as it is used) */
    st->h = h;
    st->id = frame->hd.stream_id;
    st->begun_ms = weft_loop_time(h->loop);
    st->fd = -1;
    if (nghttp2_session_set_stream_user_data(ng, st->id, st) != 0) {
        pool_free(&h->pool, st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    st->next = h->list;
    if (st->next)
        st->next->pprev = &st->next;
    st->pprev = &h->list;
    h->list = st;
    h->streams++;
    h->heading = st;
    return 0;
}

/* n bytes for a header value: from st->hbuf, else from its newest chunk, else from a new
 * chunk (1 KiB, or n). NULL: no memory. */
static char *
header_space(struct h2stream *st, size_t n)
{
    char *p;

    if (sizeof(st->hbuf) - st->hused >= n) {
        p = st->hbuf + st->hused;
        st->hused += n;
        return p;
    }
    struct hchunk *c = st->hmore;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = n > 1024 - sizeof(*c) ? n : 1024 - sizeof(*c);
        if ((c = pool_malloc(&st->h->pool, sizeof(*c) + cap)) == NULL)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = st->hmore;
        st->hmore = c;
    }
    p = c->data + c->used;
    c->used += n;
    return p;
}

static int
on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
          const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    struct h2conn *h = ud;
    struct h2stream *st;

    (void)flags;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = h->heading;
    if ((st == NULL || st->id != frame->hd.stream_id) &&
        (st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id)) == NULL)
        return 0;
    st->header_bytes += namelen + valuelen + 32;
    if (st->header_bytes > h->svc->h2.max_header_list_size || st->too_big) {
        st->too_big = true;                 /* answered 431 once the headers are in */
        return 0;
    }
    /* the slots by length, then by a byte where two have that length */
    enum h2slot i;
    switch (namelen) {
    case 4: i = H_HOST; break;
    case 5: i = name[1] == 'p' ? H_PATH : H_RANGE; break;
    case 7: i = name[0] == ':' ? H_METHOD : H_REFERER; break;
    case 8: i = name[3] == 'm' ? H_IM : H_IF_RANGE; break;
    case 10: i = name[0] == ':' ? H_AUTHORITY : H_UA; break;
    case 13: i = H_INM; break;
    case 17: i = H_IMS; break;
    case 19: i = H_IUS; break;
    default: return 0;
    }
    if (memcmp(h2slot_names[i], name, namelen) == 0) {
        /* a list header sent as several fields (RFC 9110 §5.3): one, comma-separated */
        bool list = i == H_INM || i == H_IM;
        if (st->slot[i] != NULL && !list)
            return 0;                       /* the first wins (nghttp2 refuses repeated
                                             * pseudo-headers itself) */
        size_t old = st->slot[i] ? st->slot_len[i] : 0;
        char *v = header_space(st, old + (old ? 2 : 0) + valuelen + 1);
        if (v == NULL)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (old) {
            memcpy(v, st->slot[i], old);    /* (its old copy stays until the stream ends) */
            memcpy(v + old, ", ", 2);
            old += 2;
        }
        memcpy(v + old, value, valuelen);
        v[old + valuelen] = '\0';
        st->slot[i] = v;
        st->slot_len[i] = (uint32_t)(old + valuelen);  /* (below max_header_list_size) */
        return 0;
    }
    return 0;
}

/* ---- the h2 framing (serve.c decides what the answer is) ---- */

static int
h2_head(struct http_exchange *x, const struct http_head *hd)
{
    struct h2stream *st = x->ctx;
    char status[8], length[24];
    const char *extra = hd->extra ? hd->extra : "";
    size_t cap = 8;                 /* :status date server content-type content-length */

    for (const char *c = extra; *c; c++)
        cap += *c == '\n';
    snprintf(status, sizeof(status), "%d", hd->status);
    snprintf(length, sizeof(length), "%" PRIu64, hd->content_length);
    const char *fixed[][2] = {
        { ":status", status }, { "date", http_date_now() }, { "server", hd->server },
        { "content-type", hd->content_type }, { "content-length", hd->no_length ? NULL : length },
    };
    size_t room = strlen(extra) + 1;
    for (size_t i = 0; i < 5; i++)
        room += fixed[i][1] ? strlen(fixed[i][0]) + strlen(fixed[i][1]) + 2 : 0;
    struct h2pool *pl = &st->h->pool;
    pool_free(pl, st->nv);
    pool_free(pl, st->nvbuf);
    st->nnv = 0;
    st->nv = pool_calloc(pl, cap, sizeof(*st->nv));
    st->nvbuf = pool_malloc(pl, room);
    if (st->nv == NULL || st->nvbuf == NULL)
        return -ENOMEM;
    char *b = st->nvbuf;
    for (size_t i = 0; i < 5; i++) {
        if (fixed[i][1] == NULL)
            continue;
        size_t nl = strlen(fixed[i][0]), vl = strlen(fixed[i][1]);
        memcpy(b, fixed[i][0], nl + 1);
        memcpy(b + nl + 1, fixed[i][1], vl + 1);
        st->nv[st->nnv++] = (nghttp2_nv){ (uint8_t *)b, (uint8_t *)b + nl + 1, nl, vl,
                                          NGHTTP2_NV_FLAG_NONE };
        b += nl + vl + 2;
    }
    /* "Name: value\r\n" lines: names lower-cased (RFC 9113 §8.2.1), no Connection */
    for (const char *c = extra; *c && st->nnv < cap;) {
        const char *colon = strchr(c, ':'), *eol = strstr(c, "\r\n");
        if (colon == NULL || eol == NULL || colon > eol)
            break;
        size_t nl = (size_t)(colon - c);
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        size_t vl = (size_t)(eol - v);
        char *n = b;
        for (size_t i = 0; i < nl; i++)
            b[i] = (char)((c[i] >= 'A' && c[i] <= 'Z') ? c[i] + 32 : c[i]);
        b += nl;
        memcpy(b, v, vl);
        st->nv[st->nnv++] = (nghttp2_nv){ (uint8_t *)n, (uint8_t *)b, nl, vl,
                                          NGHTTP2_NV_FLAG_NONE };
        b += vl;
        c = eol + 2;
    }
    return 0;
}

static int
h2_body(struct http_exchange *x, const void *data, size_t len)
{
    struct h2stream *st = x->ctx;

    if (st->body == NULL && (st->body = evbuffer_new()) == NULL)
        return -ENOMEM;
    return evbuffer_add(st->body, data, len) < 0 ? -ENOMEM : 0;
}

static int
h2_body_buffer(struct http_exchange *x, struct evbuffer *buf)
{
    struct h2stream *st = x->ctx;

    if (st->body == NULL && (st->body = evbuffer_new()) == NULL)
        return -ENOMEM;
    return evbuffer_add_buffer(st->body, buf) < 0 ? -ENOMEM : 0;
}

static int
h2_file(struct http_exchange *x, int fd, uint64_t off, uint64_t len)
{
    struct h2stream *st = x->ctx;

    st->fd = fd;        /* read as the flow-control windows allow: read_body */
    st->off = off;
    st->left = len;
    return 0;
}

/* v in decimal into buf (24 bytes), NUL-terminated. */
static const char *
u64_decimal(char *buf, uint64_t v)
{
    char *p = buf + 23;

    *p = '\0';
    do
        *--p = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    return p;
}

/*
 * The 200 to a GET or HEAD of a cached file without validators or a range (serve.c's
 * send_cached asks first): the head send_file would make (":status", date, server,
 * content-type, content-length, last-modified, etag, accept-ranges, in that order), taken
 * from the entry's fields instead of formatting header lines and parsing them back, in the
 * stream itself (nghttp2_submit_response in answer() copies the values before the entry or
 * the date can change; the names are static: not copied); the body copied once out of the
 * entry (it may be refreshed while the stream waits for its window), into the stream when
 * it is small. Measured by bench/h2.sh; false when the copy cannot be allocated.
 */
static bool
h2_cached(struct http_exchange *x, const struct http_cached *mem)
{
    struct h2stream *st = x->ctx;
    bool body = x->r->method != HTTP_M_HEAD && mem->size > 0;
    const char *server = x->svc->server[0] ? x->svc->server : NULL;

    if (st->nv != NULL || st->data != NULL)
        return false;
    if (body) {
        char *d = mem->size <= sizeof(st->small) ? st->small
                                                 : pool_malloc(&st->h->pool, (size_t)mem->size);
        if (d == NULL)
            return false;
        memcpy(d, mem->data, (size_t)mem->size);
        st->data = d;
        st->data_len = (size_t)mem->size;
        st->data_off = 0;
    }
#define F(n) n, sizeof(n) - 1
    const struct { const char *name; size_t len; const char *value; } fields[] = {
        { F(":status"), "200" }, { F("date"), http_date_now() }, { F("server"), server },
        { F("content-type"), mem->mime },
        { F("content-length"), u64_decimal(st->fast_length, mem->size) },
        { F("last-modified"), mem->last_modified }, { F("etag"), mem->etag },
        { F("accept-ranges"), "bytes" },
    };
#undef F
    st->nnv = 0;
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (fields[i].value == NULL)
            continue;
        st->fast_nv[st->nnv++] = (nghttp2_nv){
            (uint8_t *)fields[i].name, (uint8_t *)fields[i].value, fields[i].len,
            strlen(fields[i].value), NGHTTP2_NV_FLAG_NO_COPY_NAME,
        };
    }
    st->nv = st->fast_nv;
    x->status = 200;
    x->bytes = body ? mem->size : 0;
    return true;
}

static const struct http_framing_ops h2_ops = {
    .head = h2_head,
    .body = h2_body,
    .body_buffer = h2_body_buffer,
    .file = h2_file,
    .cached = h2_cached,
};

/*
 * nghttp2 asks for at most length bytes of DATA when the stream's and the connection's
 * windows (and our writing) allow. A body in memory or in a file is only measured here:
 * send_data copies it, or reads it from the file with pread, straight into the outgoing
 * buffer, so a file is never held whole and never mapped (a mapping of a file truncated
 * meanwhile raises SIGBUS). A body in an evbuffer (error pages, listings) is copied here.
 */
static ssize_t
read_body(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length, uint32_t *flags,
          nghttp2_data_source *src, void *ud)
{
    struct h2stream *st = src->ptr;
    uint64_t left = st->data != NULL ? st->data_len - st->data_off : st->left;
    size_t n;

    (void)ng;
    (void)id;
    (void)ud;
    st->moved_ms = weft_loop_time(st->h->loop);
    if (st->data != NULL || st->fd >= 0) {
        n = left < length ? (size_t)left : length;
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
        if (n == left)
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    n = st->body ? evbuffer_remove(st->body, buf, length) : 0;
    if (st->body == NULL || evbuffer_get_length(st->body) == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/*
 * send_data's file case: the frame head and length bytes of the file, read with pread
 * into the end of h->obuf (room made by the caller). Nothing is committed unless all of
 * it was read: a short read (the file shrank) or an error resets the stream. 0 or an
 * nghttp2 error code.
 */
static int
send_file_frame(struct h2conn *h, struct h2stream *st, const uint8_t *framehd, size_t length)
{
    uint8_t *p = h->obuf + h->olen;
    ssize_t n;

    memcpy(p, framehd, 9);
    do
        n = length > 0 ? pread(st->fd, p + 9, length, (off_t)st->off) : 0;
    while (n < 0 && errno == EINTR);
    if (n < 0 || (size_t)n != length) {
        weft_log(WEFT_LOG_WARNING, "http: %s at byte %" PRIu64 " of a file being sent: "
                 "resetting stream %" PRId32, n < 0 ? strerror(errno) : "the file shrank",
                 st->off, st->id);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* nothing committed */
    }
    st->off += length;
    st->left -= length;
    if (st->left == 0) {
        close(st->fd);
        st->fd = -1;
    }
    h->olen += 9 + length;
    return 0;
}

/*
 * The DATA frames read_body left to us (NGHTTP2_DATA_FLAG_NO_COPY): the 9-byte frame head
 * and the body bytes go straight into h->obuf, from the stream's copy or read from the
 * file, instead of through nghttp2's frame buffer first: one copy of every body byte less
 * (bench/h2.sh). nghttp2 calls this from nghttp2_session_mem_send and goes on to further
 * frames without returning, so h->obuf is handed to the transport here when it is full,
 * and a paused transport makes nghttp2 wait (WOULDBLOCK: called again with the
 * same frame after resume_writing). A file that shrank ends that stream with RST_STREAM;
 * the client sees a short body, never a wrong one, and the connection goes on.
 */
static int
send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd, size_t length,
          nghttp2_data_source *src, void *ud)
{
    struct h2conn *h = ud;
    struct h2stream *st = src->ptr;

    (void)ng;
    if (frame->data.padlen > 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;        /* we never ask for padding */
    if (h->write_paused || h->closing)
        return NGHTTP2_ERR_WOULDBLOCK;
    int rc = out_room(h, 9 + length);
    if (rc < 0) {
        if (h->obuf == NULL)
            return NGHTTP2_ERR_CALLBACK_FAILURE;    /* no memory: the connection ends */
        h2_close(h, true);      /* the transport is gone: h2_flush stops */
        return 0;
    }
    if (rc == 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;        /* (no DATA frame is so long) */
    if (st->data != NULL) {
        memcpy(h->obuf + h->olen, framehd, 9);
        memcpy(h->obuf + h->olen + 9, st->data + st->data_off, length);
        h->olen += 9 + length;
        st->data_off += length;
    } else if ((rc = send_file_frame(h, st, framehd, length)) != 0) {
        return rc;
    }
    if (h->olen >= OUT_FLUSH && out_push(h) < 0)
        h2_close(h, true);      /* the transport is gone: h2_flush stops (as its own push) */
    return 0;
}

/* The request in st's headers, answered by serve.c; the answer is submitted to nghttp2. */
static void
answer(struct h2conn *h, struct h2stream *st)
{
    struct http_request r = { .major = 2, .minor = 0, .keep_alive = true };
    struct http_exchange x = {
        .ops = &h2_ops, .ctx = st, .svc = h->svc, .r = &r, .keep_alive = true,
        .now_ms = weft_loop_time(h->loop),
    };
    const char *m = st->slot[H_METHOD];

    st->answered = true;
    st->moved_ms = x.now_ms;
    h->answered++;
    r.method_name = m;
    r.method = m && !strcmp(m, "GET") ? HTTP_M_GET : m && !strcmp(m, "HEAD") ? HTTP_M_HEAD
             : HTTP_M_OTHER;
    r.target = st->slot[H_PATH];
    r.target_len = r.target ? st->slot_len[H_PATH] : 0;
    r.host = st->slot[H_AUTHORITY] ? st->slot[H_AUTHORITY] : st->slot[H_HOST];
    r.if_none_match = st->slot[H_INM];
    r.if_modified_since = st->slot[H_IMS];
    r.if_match = st->slot[H_IM];
    r.if_unmodified_since = st->slot[H_IUS];
    r.range = st->slot[H_RANGE];
    r.if_range = st->slot[H_IF_RANGE];
    r.user_agent = st->slot[H_UA];
    r.referer = st->slot[H_REFERER];

    if (st->too_big)
        http_serve_error(&x, 431, NULL, NULL);
    else if (r.method != HTTP_M_OTHER && r.target == NULL)
        http_serve_error(&x, 400, NULL, NULL);      /* nghttp2 lets no such GET through */
    else
        http_serve(&x);
    if (h->svc->log_fd >= 0)
        http_access_log(h->svc, h->peer, &r, x.status, x.bytes);

    int rc;
    if (x.failed || st->nv == NULL) {
        rc = nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    } else {
        nghttp2_data_provider prd = { .source.ptr = st, .read_callback = read_body };
        bool body = st->fd >= 0 || st->data != NULL ||
                    (st->body && evbuffer_get_length(st->body) > 0);
        rc = nghttp2_submit_response(h->ng, st->id, st->nv, st->nnv, body ? &prd : NULL);
    }
    if (rc != 0) {
        /* no memory for the answer (or its reset): the stream would hang; end it all */
        char why[96];
        snprintf(why, sizeof(why), "stream %" PRId32 ": %s", st->id, nghttp2_strerror(rc));
        tell(h, WEFT_LOG_ERR, why, "GOAWAY(INTERNAL_ERROR), closing");
        nghttp2_session_terminate_session(h->ng, NGHTTP2_INTERNAL_ERROR);
    }
}

static int
on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    struct h2conn *h = ud;
    struct h2stream *st;

    /* A static file's answer never depends on the request's content: answer at the end of
     * the headers (all CONTINUATIONs in); a body that follows is read and dropped, and
     * on_data_chunk resets the stream with NO_ERROR once it passes max_body_size. */
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST ||
        (st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id)) == NULL ||
        st->answered)
        return 0;
    answer(h, st);
    return 0;
}

/*
 * Request body bytes: dropped (the answer went out at the headers). Past max_body_size the
 * client is asked to stop with RST_STREAM(NO_ERROR) (RFC 9113 §8.1), so that a body nobody
 * reads cannot go on for ever (nghttp2 keeps opening the window for it). Not at once after
 * the answer: curl 7.88 takes a NO_ERROR reset after a complete answer for an error.
 */
static int
on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
              void *ud)
{
    struct h2conn *h = ud;
    struct h2stream *st = nghttp2_session_get_stream_user_data(ng, id);

    (void)flags;
    (void)data;
    if (st == NULL || st->body_bytes > h->svc->limits.max_body_size)
        return 0;
    st->moved_ms = weft_loop_time(h->loop);
    st->body_bytes += len;
    if (st->body_bytes > h->svc->limits.max_body_size)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
    return 0;
}

static int
on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *ud)
{
    struct h2conn *h = ud;
    struct h2stream *st = nghttp2_session_get_stream_user_data(ng, id);

    (void)error_code;
    (void)h;
    if (st == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    stream_free(st);
    return 0;
}

/* ---- the connection ---- */

static void
h2_unlink(struct h2conn *h)
{
    if (h->pprev == NULL)
        return;
    *h->pprev = h->next;
    if (h->next)
        h->next->pprev = h->pprev;
    h->pprev = NULL;
    h->next = NULL;
}

static void
h2_close(struct h2conn *h, bool abort)
{
    if (h->closing)
        return;
    h->closing = true;
    if (abort)
        weft_transport_abort(h->tr);
    else
        weft_transport_close(h->tr);
}

/* Hand h->obuf to the transport (which copies or encrypts it at once): empty again. */
static int
out_push(struct h2conn *h)
{
    if (h->olen == 0)
        return 0;
    int rc = weft_transport_write(h->tr, h->obuf, h->olen);
    h->olen = 0;
    return rc;
}

/* Room for n more bytes in h->obuf: allocated, or pushed to the transport first if it is
 * too full. 1; 0 when n is more than it can ever hold; -1 (no memory, the transport gone). */
static int
out_room(struct h2conn *h, size_t n)
{
    if (h->obuf == NULL && (h->obuf = malloc(OBUF_CAP)) == NULL)
        return -1;
    if (OBUF_CAP - h->olen >= n)
        return 1;
    if (out_push(h) < 0)
        return -1;
    return n <= OBUF_CAP;
}

/* Frames from nghttp2 to the transport until there are none or the transport is full;
 * resume_writing brings us back. Closes once nghttp2 wants neither to read nor to write
 * (after a GOAWAY with no stream left, or a fatal error). */
static void
h2_flush(struct h2conn *h)
{
    while (!h->closing && !h->write_paused) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(h->ng, &data);
        if (n < 0) {
            weft_log(WEFT_LOG_ERR, "http: h2: %s: closing the connection", nghttp2_strerror((int)n));
            h2_close(h, true);
            return;
        }
        if (n == 0)
            break;
        int rc = out_room(h, (size_t)n);
        if (rc < 0) {
            if (h->obuf == NULL)
                weft_log(WEFT_LOG_ERR, "http: out of memory: closing the connection");
            h2_close(h, true);
            return;
        }
        if (rc == 0) {              /* a chunk bigger than obuf (none is): as it is */
            if (weft_transport_write(h->tr, data, (size_t)n) < 0) {
                h2_close(h, true);
                return;
            }
            continue;
        }
        memcpy(h->obuf + h->olen, data, (size_t)n);
        h->olen += (size_t)n;
        if (h->olen >= OUT_FLUSH && out_push(h) < 0) {
            h2_close(h, true);
            return;
        }
    }
    if (h->closing)
        return;
    if (out_push(h) < 0) {
        h2_close(h, true);
        return;
    }
    if (!nghttp2_session_want_read(h->ng) && !nghttp2_session_want_write(h->ng))
        h2_close(h, false);
    else if (h->write_paused)
        weft_transport_pause_reading(h->tr);    /* stop taking requests we cannot answer */
}

static void
goaway(struct h2conn *h)
{
    if (h->goaway || h->closing)
        return;
    h->goaway = true;
    nghttp2_submit_goaway(h->ng, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->ng), NGHTTP2_NO_ERROR,
                          NULL, 0);
}

void
h2_drain(struct http_service *svc)
{
    for (struct h2conn *h = svc->h2_conns, *next; h != NULL; h = next) {
        next = h->next;
        goaway(h);
        h2_flush(h);
    }
}

/* How often the timer looks: often enough for each timeout (a quarter of the shortest),
 * at least every 100 ms apart. */
static uint64_t
tick_ms(const struct http_service *svc)
{
    uint64_t t = svc->header_timeout_ms < svc->keepalive_timeout_ms ? svc->header_timeout_ms
                                                                    : svc->keepalive_timeout_ms;
    if (send_timeout_ms(svc) < t)
        t = send_timeout_ms(svc);
    return t / 4 > 100 ? t / 4 : 100;
}

/*
 * One timer per connection, every tick_ms. Only progress counts, never the client's
 * PINGs or WINDOW_UPDATEs, which would keep any stall alive:
 * - headers that never end (a CONTINUATION now and then: slowloris) get header_timeout
 *   from their HEADERS, as an HTTP/1.1 head does; mid-block the HPACK state is the
 *   peer's, so the whole connection goes;
 * - an answered stream none of whose bytes moved for send_timeout_ms (the client keeps
 *   its window shut, or never ends its request) is reset: its file is read only as the
 *   windows open, so it holds a file descriptor and its head, no more;
 * - a transport that took no byte for send_timeout_ms while we wait for it (a client that
 *   does not read; what we queue stops at the transport's high-water mark): aborted;
 * - no stream for keepalive_timeout: GOAWAY, then close.
 */
static void
on_tick(void *arg)
{
    struct h2conn *h = arg;
    const struct http_service *svc = h->svc;
    uint64_t now = weft_loop_time(h->loop), stall = send_timeout_ms(svc);
    bool reset = false;

    h->timer = NULL;
    if (h->closing)
        return;
    for (struct h2stream *st = h->list; st != NULL; st = st->next) {
        if (!st->answered && now - st->begun_ms >= svc->header_timeout_ms) {
            if (weft_log_enabled(WEFT_LOG_DEBUG))
                weft_log(WEFT_LOG_DEBUG, "http: h2 from %s: headers of stream %" PRId32
                         " not complete within header_timeout: closing", h->peer, st->id);
            h2_close(h, true);
            return;
        }
        /* (while the transport is full, its own stall is what counts: below) */
        if (st->answered && !st->reset && !h->write_paused && now - st->moved_ms >= stall) {
            int level = h->stall_told ? WEFT_LOG_DEBUG : WEFT_LOG_INFO;
            if (weft_log_enabled(level))
                weft_log(level, "http: h2 from %s: stream %" PRId32 " moved no byte for %"
                         PRIu64 " ms (a window kept shut?): resetting it", h->peer, st->id,
                         now - st->moved_ms);
            h->stall_told = true;
            st->reset = reset = true;
            if (nghttp2_submit_rst_stream(h->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL) != 0) {
                h2_close(h, true);
                return;
            }
        }
    }
    if (h->write_paused) {
        size_t q = weft_transport_get_write_buffer_size(h->tr);
        if (q != h->stall_queued) {
            h->stall_queued = q;
            h->stall_since = now;
        } else if (now - h->stall_since >= stall) {
            char why[96];
            snprintf(why, sizeof(why), "read nothing of %zu bytes for %" PRIu64 " ms", q,
                     now - h->stall_since);
            tell(h, WEFT_LOG_INFO, why, "closing");
            h2_close(h, true);
            return;
        }
    }
    if (reset)
        h2_flush(h);
    if (h->streams == 0) {              /* an idle connection keeps no spare memory */
        pool_trim(&h->pool);
        if (h->olen == 0) {
            free(h->obuf);
            h->obuf = NULL;
        }
    }
    if (!h->closing && h->streams == 0 && now - h->idle_since >= svc->keepalive_timeout_ms) {
        goaway(h);
        h2_flush(h);
        if (!h->closing)
            h2_close(h, false);
        return;
    }
    if (h->closing)
        return;
    h->timer = weft_call_later(h->loop, tick_ms(svc), on_tick, h);
    if (h->timer == NULL)
        h2_close(h, true);
}

/*
 * Control frames ask nothing of us that a request did not: PING, SETTINGS, PRIORITY,
 * WINDOW_UPDATE, RST_STREAM, GOAWAY, frames of unknown types, HEADERS (a request's earns
 * CONTROL_PER_REQUEST back once answered, one refused or malformed nothing) and DATA with
 * no payload that does not end its stream. One costs little; floods of them are the 2019
 * HTTP/2 attacks (CVE-2019-9512 PING, 9513 PRIORITY, 9514 reset, 9515 SETTINGS, 9518 empty
 * frames) and WINDOW_UPDATEs by the thousand. nghttp2 bounds the ACKs we owe
 * (max_outbound_ack) and the client's resets (the reset rate); the total is ours: past
 * http2_max_control_frames, plus CONTROL_PER_REQUEST per request answered and
 * CONTROL_PER_DATA per DATA frame sent (a client opens its windows as it reads),
 * GOAWAY(ENHANCE_YOUR_CALM).
 *
 * They are counted here, from the frame headers in the bytes, not in a callback: nghttp2
 * calls on_begin_frame for none it skips (unknown types, DATA on a closed stream), and
 * those cost a read each too. next_frame says how many bytes of p (len) to give nghttp2
 * so that they end with the header of the next control frame (*control set), or all of
 * them: nghttp2 has then processed every frame before it, so the credits are up to date
 * when that one is counted, before its payload is read.
 */
static size_t
next_frame(struct h2conn *h, const uint8_t *p, size_t len, bool *control)
{
    size_t i = 0;

    *control = false;
    while (i < len) {
        size_t k, room = len - i;
        if (h->preface_left > 0 || h->skip > 0) {
            uint32_t *left = h->preface_left > 0 ? &h->preface_left : &h->skip;
            k = room < *left ? room : *left;
            i += k;
            *left -= (uint32_t)k;
            continue;
        }
        h->fh[h->fh_have++] = p[i++];
        if (h->fh_have < sizeof(h->fh))
            continue;
        h->fh_have = 0;
        uint32_t length = (uint32_t)h->fh[0] << 16 | (uint32_t)h->fh[1] << 8 | h->fh[2];
        uint8_t type = h->fh[3], flags = h->fh[4];
        h->skip = length;
        if (type == NGHTTP2_CONTINUATION ||
            (type == NGHTTP2_DATA && (length > 0 || (flags & NGHTTP2_FLAG_END_STREAM))))
            continue;
        *control = true;
        break;
    }
    return i;
}

static int
h2_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct h2conn *h = (struct h2conn *)p;

    while (!h->closing && evbuffer_get_length(in) > 0) {
        size_t len = evbuffer_get_contiguous_space(in);
        const uint8_t *data = evbuffer_pullup(in, (ev_ssize_t)len);
        bool control;
        size_t take = next_frame(h, data, len, &control);
        ssize_t n = nghttp2_session_mem_recv(h->ng, data, take);
        if (n >= 0 && (size_t)n < take)
            n = NGHTTP2_ERR_CALLBACK_FAILURE;   /* (only a pause stops it short: none of ours) */
        if (n >= 0 && control && ++h->control > h->svc->h2.max_control_frames +
                                  CONTROL_PER_REQUEST * h->answered + CONTROL_PER_DATA * h->data_sent) {
            char why[160];
            snprintf(why, sizeof(why), "%" PRIu64 " control frames (PING, SETTINGS, PRIORITY, "
                     "WINDOW_UPDATE, RST_STREAM, empty DATA...) for %" PRIu64 " requests, past "
                     "http2_max_control_frames", h->control, h->answered);
            calm(h, why);
            n = NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        if (n < 0) {
            /* fatal (bad preface, a flood nghttp2 refuses, our control frame limit, no
             * memory): what nghttp2 queued (a GOAWAY) goes out, then the connection
             * closes */
            tell(h, n == NGHTTP2_ERR_FLOODED ? WEFT_LOG_WARNING : WEFT_LOG_INFO,
                 nghttp2_strerror((int)n), "closing");
            evbuffer_drain(in, evbuffer_get_length(in));
            h2_flush(h);
            h2_close(h, false);
            return 0;
        }
        evbuffer_drain(in, (size_t)n);
    }
    h2_flush(h);
    return 0;
}

/* The client's EOF: HTTP/2 has no half-close, so the connection closes (what is queued
 * still goes out, the transport's close flushes it). */
static bool
h2_eof(struct weft_protocol *p)
{
    (void)p;
    return false;
}

static void
on_kick(void *arg)
{
    struct h2conn *h = arg;

    h->kick = NULL;
    if (h->closing)
        return;
    weft_transport_resume_reading(h->tr);
    h2_flush(h);
}

static void
h2_pause_writing(struct weft_protocol *p)
{
    struct h2conn *h = (struct h2conn *)p;

    h->write_paused = true;
    h->stall_since = weft_loop_time(h->loop);
    h->stall_queued = weft_transport_get_write_buffer_size(h->tr);
}

static void
h2_resume_writing(struct weft_protocol *p)
{
    struct h2conn *h = (struct h2conn *)p;

    h->write_paused = false;
    if (h->kick == NULL && !h->closing) {
        h->kick = weft_call_soon(h->loop, on_kick, h);
        if (h->kick == NULL)
            h2_close(h, true);
    }
}

static void
h2_lost(struct weft_protocol *p, int error)
{
    struct h2conn *h = (struct h2conn *)p;

    (void)error;
    if (h->timer)
        weft_handle_cancel(h->timer);
    if (h->kick)
        weft_handle_cancel(h->kick);
    h2_unlink(h);
    nghttp2_session_del(h->ng);         /* calls no on_stream_close: ours go here */
    while (h->list)
        stream_free(h->list);
    pool_trim(&h->pool);
    free(h->obuf);
    free(h);
}

static const struct weft_protocol_ops h2_conn_ops = {
    .data_received = h2_data,
    .eof_received = h2_eof,
    .connection_lost = h2_lost,         /* the last callback: frees the connection */
    .pause_writing = h2_pause_writing,
    .resume_writing = h2_resume_writing,
};

static int
session_new(struct h2conn *h)
{
    const struct http2_limits *l = &h->svc->h2;
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    int rc;

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return -ENOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_send_data_callback(cb, send_data);
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -ENOMEM;
    }
    /* nghttp2 1.52 as Debian 12 ships it (with the backported fixes): rapid reset
     * (CVE-2023-44487) is limited by the stream reset rate, CONTINUATION floods
     * (CVE-2024-28182) by max_continuations, SETTINGS and PING floods by max_outbound_ack
     * (the ACKs we owe) and max_settings (entries in one SETTINGS). Upstream's defaults,
     * made explicit. */
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, 33);
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    /* Closed streams are not kept for RFC 7540's priority tree (a client's PRIORITY
     * naming a closed stream then falls back to the root): less work per stream. The
     * tree itself stays: SETTINGS_NO_RFC7540_PRIORITIES = 1 (RFC 9218 scheduling) made
     * fault_http's allocation walk end in a double free inside the session, with 1.52. */
    nghttp2_option_set_no_closed_streams(opt, 1);
    /* nghttp2's allocations from the pool (malloc underneath: tests/fault's allocation
     * walk still reaches them) */
    h->mem = (nghttp2_mem){ .mem_user_data = &h->pool, .malloc = mem_malloc, .free = mem_free,
                            .calloc = mem_calloc, .realloc = mem_realloc };
    rc = nghttp2_session_server_new3(&h->ng, cb, h, opt, &h->mem);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0)
        return -ENOMEM;
    const nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, l->max_concurrent_streams },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, l->max_header_list_size },
        { NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, l->header_table_size },
        { NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, l->initial_window_size },
        { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
    };
    rc = nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    return rc == 0 ? 0 : -ENOMEM;
}

struct weft_protocol *
h2_conn_start(struct http_service *svc, struct weft_transport *tr, struct evbuffer *in)
{
    struct h2conn *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    h->base.ops = &h2_conn_ops;
    h->svc = svc;
    h->tr = tr;
    h->loop = weft_transport_get_loop(tr);
    if (session_new(h) < 0)
        goto fail;
    h->idle_since = weft_loop_time(h->loop);
    h->preface_left = H2_PREFACE_LEN;
    h->timer = weft_call_later(h->loop, tick_ms(svc), on_tick, h);
    if (h->timer == NULL)
        goto fail;
    weft_transport_peer_string(tr, h->peer, sizeof(h->peer));
    h->next = svc->h2_conns;
    if (h->next)
        h->next->pprev = &h->next;
    h->pprev = &svc->h2_conns;
    svc->h2_conns = h;
    weft_transport_set_protocol(tr, &h->base);
    if (svc->draining)
        goaway(h);          /* taken while the worker drains: this one request, then go */
    if (in != NULL)
        h2_data(&h->base, in);
    else
        h2_flush(h);
    return &h->base;
fail:
    if (h->timer)
        weft_handle_cancel(h->timer);
    if (h->ng)
        nghttp2_session_del(h->ng);
    pool_trim(&h->pool);
    free(h);
    return NULL;
}
