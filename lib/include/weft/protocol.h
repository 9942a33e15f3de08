/* SPDX-License-Identifier: MIT */
/* weft/protocol.h: a protocol is a vtable of callbacks driven by its transport. */
#ifndef WEFT_PROTOCOL_H
#define WEFT_PROTOCOL_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A protocol object embeds struct weft_protocol as its first member and is
 * allocated by a factory (weft_protocol_factory_cb). The transport calls:
 *
 *   connection_made   once, first
 *   data_received     0..n times, with bytes in the transport's input buffer
 *   eof_received      at most once, when the peer shut down its write side
 *   pause_writing / resume_writing  around the write buffer's high/low marks
 *   connection_lost   exactly once, last; the protocol frees itself here
 *
 * connection_lost, data_received and eof_received are never called from
 * inside a transport method (an error found while writing is reported later,
 * from the loop). pause_writing may be, as in asyncio, since it must stop the
 * very write loop that crossed the mark. Any callback may be NULL.
 */
struct weft_protocol_ops {
    /* The connection is up; keep tr (borrowed, valid until connection_lost).
     * Return 0, or a negative code to report it and abort the connection. */
    int (*connection_made)(struct weft_protocol *p, struct weft_transport *tr);

    /* Bytes arrived in in (the transport's input evbuffer, borrowed): remove
     * what you consume; what you leave is kept for the next call. Moving the
     * chains out (weft_transport_write_buffer, evbuffer_remove_buffer) costs
     * no copy. Return 0, or a negative code to report it and abort. */
    int (*data_received)(struct weft_protocol *p, struct evbuffer *in);

    /* The peer closed its write side. Return true to keep ours open
     * (half-close; close it yourself later), false to close the transport.
     * NULL behaves as returning false. */
    bool (*eof_received)(struct weft_protocol *p);

    /* Last call: error is 0 for a clean close or EOF, else a negative code
     * (-ECONNRESET, -ETIMEDOUT, ...). The transport is freed after return. */
    void (*connection_lost)(struct weft_protocol *p, int error);

    /* The write buffer went above the high-water mark: stop producing. */
    void (*pause_writing)(struct weft_protocol *p);

    /* The write buffer fell to the low-water mark: produce again. */
    void (*resume_writing)(struct weft_protocol *p);
};

/* Embed first in a protocol object: ((struct weft_protocol *)obj)->ops. */
struct weft_protocol {
    const struct weft_protocol_ops *ops;
};

/* Make the protocol for a new connection; NULL (out of memory) drops it. */
typedef struct weft_protocol *weft_protocol_factory_cb(void *arg);

#ifdef __cplusplus
}
#endif
#endif
