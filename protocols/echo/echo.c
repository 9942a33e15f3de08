/* SPDX-License-Identifier: MIT */
/* echo.c: RFC 862 echo on the Protocol layer, moving the input's chains to the output. */
#include <event2/buffer.h>
#include <stdlib.h>

#include <weft/weft.h>

/* Per connection: 16 bytes. The transport keeps every byte in flight. */
struct echo {
    struct weft_protocol base;          /* first: the transport sees a weft_protocol */
    struct weft_transport *tr;
};

static int
echo_connection_made(struct weft_protocol *p, struct weft_transport *tr)
{
    ((struct echo *)p)->tr = tr;
    return 0;
}

static int
echo_data_received(struct weft_protocol *p, struct evbuffer *in)
{
    struct echo *e = (struct echo *)p;

    /* -EPIPE: we are closing (the peer will not get this); drop it. */
    if (weft_transport_write_buffer(e->tr, in) < 0)
        evbuffer_drain(in, evbuffer_get_length(in));
    return 0;
}

/*
 * The peer is done sending. Everything it sent has been queued by
 * data_received; returning false closes the transport, and close sends what
 * is queued before it closes, so the peer gets its last bytes back (nc -N).
 * EOF is not seen while reading is paused, so it never overtakes data.
 */
static bool
echo_eof_received(struct weft_protocol *p)
{
    (void)p;
    return false;
}

/* A client that does not read must not make us buffer what it keeps sending. */
static void
echo_pause_writing(struct weft_protocol *p)
{
    weft_transport_pause_reading(((struct echo *)p)->tr);
}

static void
echo_resume_writing(struct weft_protocol *p)
{
    weft_transport_resume_reading(((struct echo *)p)->tr);
}

static void
echo_connection_lost(struct weft_protocol *p, int error)
{
    (void)error;
    free(p);
}

static const struct weft_protocol_ops echo_ops = {
    .connection_made = echo_connection_made,    /* keeps the transport */
    .data_received   = echo_data_received,      /* weft_transport_write_buffer(tr, in) */
    .eof_received    = echo_eof_received,       /* close: flushes, then closes */
    .pause_writing   = echo_pause_writing,      /* stop reading while the peer lags */
    .resume_writing  = echo_resume_writing,
    .connection_lost = echo_connection_lost,    /* the last callback: frees the echo */
};

static struct weft_protocol *
echo_new(void *svc)
{
    struct echo *e = malloc(sizeof(*e));

    (void)svc;
    if (e == NULL)
        return NULL;
    e->base.ops = &echo_ops;
    e->tr = NULL;
    return &e->base;
}

/*
 * UDP (RFC 862): "When a datagram is received, the data from it is sent back
 * in an answering datagram", to its sender. One per socket per worker.
 */
struct echo_dgram {
    struct weft_datagram_protocol base;
    struct weft_datagram_transport *tr;
};

static int
echo_dgram_made(struct weft_datagram_protocol *p, struct weft_datagram_transport *tr)
{
    ((struct echo_dgram *)p)->tr = tr;
    return 0;
}

static int
echo_dgram_received(struct weft_datagram_protocol *p, const void *data, size_t len,
                    const struct sockaddr *addr, socklen_t addrlen)
{
    /* a full socket queues it; past the queue's mark datagrams are dropped, as UDP may */
    if (weft_datagram_get_write_buffer_size(((struct echo_dgram *)p)->tr) > 1024 * 1024)
        return 0;
    return weft_datagram_sendto(((struct echo_dgram *)p)->tr, data, len, addr, addrlen);
}

static void
echo_dgram_lost(struct weft_datagram_protocol *p, int error)
{
    (void)error;
    free(p);
}

static const struct weft_datagram_protocol_ops echo_dgram_ops = {
    .connection_made   = echo_dgram_made,
    .datagram_received = echo_dgram_received,   /* weft_datagram_sendto(tr, data, len, addr) */
    .connection_lost   = echo_dgram_lost,       /* frees it */
};

static struct weft_datagram_protocol *
echo_dgram_new(void *svc)
{
    struct echo_dgram *e = calloc(1, sizeof(*e));

    (void)svc;
    if (e == NULL)
        return NULL;
    e->base.ops = &echo_dgram_ops;
    return &e->base;
}

/* echo has no settings: every key is unknown. */
static int
echo_configure(void *svc, const char *key, const char *value, char *err, size_t errlen)
{
    (void)svc;
    (void)key;
    (void)value;
    (void)err;
    (void)errlen;
    return -WEFT_ENOKEY;
}

WEFT_PLUGIN_EXPORT const struct weft_plugin weft_plugin = {
    .abi          = WEFT_PLUGIN_ABI,    /* first member forever; bump on any layout change */
    .size         = sizeof(struct weft_plugin),
    .name         = "echo",
    .version      = WEFT_VERSION_STRING,
    .summary      = "RFC 862 echo: sends back every byte it receives (TCP), every datagram (UDP)",
    .configure    = echo_configure,
    .protocol_new = echo_new,
    .datagram_new = echo_dgram_new,     /* listen = udp:HOST:PORT */
};
