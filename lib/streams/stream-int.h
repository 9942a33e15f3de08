/* SPDX-License-Identifier: MIT */
/* stream-int.h: the stream connection's layout, shared by stream.c, stream_server.c, open_connection.c. */
#ifndef WEFT_STREAM_INT_H
#define WEFT_STREAM_INT_H

#include <weft/stream.h>

#include "core/internal.h"

/* Empty tags: a reader and a writer are two views of one struct weft_stream. */
struct weft_reader {
    char tag;
};
struct weft_writer {
    char tag;
};

/* s->flags */
enum {
    S_EOF = 1u << 0,        /* EOF received (or the connection lost) */
    S_LOST = 1u << 1,       /* connection_lost ran: tr is NULL */
    S_RPAUSED = 1u << 2,    /* we paused reading (more than 2 x limit buffered) */
    S_WPAUSED = 1u << 3,    /* pause_writing came, resume_writing not yet */
    S_CLOSED = 1u << 4,     /* closed by its owner (close, handler returned, free) */
    S_OWN_IN = 1u << 5,     /* in is our own evbuffer (data kept after the transport went) */
    S_HWAIT = 1u << 6,      /* the handler task waits in a read or drain of this stream */
    S_HANDLER = 1u << 7,    /* a handler task runs on it */
    S_USER = 1u << 8,       /* weft_open_connection's caller holds it */
    S_UPGRADING = 1u << 9,  /* weft_writer_start_tls: the handshake runs, tr is NULL */
};

/*
 * One connection. Kept small: an idle handler costs this, its task, its
 * touched stack page and the transport, and 10,000 of them must stay under
 * 6 KiB each. References: the transport's (until connection_lost), the
 * handler's (until it returns) or the caller's (weft_writer_free).
 */
struct weft_stream {
    struct weft_protocol base;          /* first: the transport's protocol */
    struct weft_reader r;
    struct weft_writer w;
    uint8_t refs;
    uint16_t flags;
    struct weft_transport *tr;          /* NULL once lost */
    struct weft_loop *loop;
    struct evbuffer *in;                /* the transport's input evbuffer, or ours, or NULL */
    struct weft_task *rtask;            /* the reader parked waiting for data, or NULL */
    struct weft_future *dwait;          /* drainers wait on it (ours: one reference) */
    struct weft_future *closed;         /* wait_closed (ours: one reference) */
    struct weft_future *upgrade;        /* weft_writer_start_tls waits on it, or NULL */
    struct weft_task *task;             /* the handler, borrowed while it runs */
    struct weft_stream_factory *home;   /* the server or factory, for handlers */
    struct weft_stream *prev, *next;    /* the loop's handler streams */
    uint32_t limit;
    uint32_t consume;                   /* the line weft_reader_next_line() lent */
    uint32_t timeout_ms;                /* bound on each wait for data; 0 = none */
    int error;                          /* the connection's error, once lost */
};

#define R2S(r) container_of(r, struct weft_stream, r)
#define W2S(w) container_of(w, struct weft_stream, w)

/* A server's or factory's shared part. */
struct weft_stream_factory {
    weft_client_cb *client;
    void *arg;
    size_t stack_size;
    uint64_t grace_ms;
    uint32_t limit, high, low;
    unsigned refs;                      /* the owner's, and one per handler */
    size_t count;                       /* handlers running */
    /* Called after each handler returns (a server counts them down to its
     * close); NULL for a bare factory. */
    void (*handler_done)(struct weft_stream_factory *h);
};

/* Options with the defaults filled in; -EINVAL for TLS (not yet). */
int weft__stream_opts(const struct weft_stream_options *opts, uint32_t *limit,
                      uint32_t *high, uint32_t *low);

/* A new stream (refs 1: the transport's), as a protocol; NULL on ENOMEM. */
struct weft_stream *weft__stream_new(uint32_t limit, uint32_t high, uint32_t low);

/* Drop a reference; the last frees the stream. */
void weft__stream_unref(struct weft_stream *s);

/* Cancel the running handlers of h (NULL: every handler of the loop). */
void weft__stream_cancel_handlers(struct weft_loop *loop, struct weft_stream_factory *h);

/* Drop a reference to a server's or factory's shared part; the last frees it. */
void weft__home_unref(struct weft_stream_factory *h);

#endif
