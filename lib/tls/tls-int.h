/* SPDX-License-Identifier: MIT */
/* tls-int.h: the TLS context's layout and the TLS transport's hooks (tls.c, tls_transport.c). */
#ifndef WEFT_TLS_INT_H
#define WEFT_TLS_INT_H

#include <openssl/ssl.h>

#include <weft/tls.h>

#include "net/transport-int.h"

struct weft_tls_context {
    struct weft__wrapper wrapper;   /* first: net makes TLS transports through it */
    int refs;                   /* atomic: contexts may be shared by loops in threads */
    bool client;
    SSL_CTX **ctxs;             /* server: [0] the default pair, then one per SNI pair */
    size_t nctx;
    unsigned char *alpn;        /* server: ALPN wire format (length-prefixed names) */
    unsigned alpn_len;
    uint32_t handshake_ms, shutdown_ms;
};

/*
 * The outcome of a TLS transport's handshake, for clients: tr with error 0
 * once connection_made has run, or tr NULL and a negative error (the
 * transport is gone). Called once, from the loop, unless cancelled.
 */
typedef weft__wrap_done_cb weft__tls_done_cb;

/*
 * Make a TLS transport over a socket transport over a connected socket, and
 * start the handshake:
 * server side when ctx is a server context (hostname ignored), client side
 * otherwise (hostname: SNI and the name the certificate must match, may be
 * NULL). Once the handshake is done factory(farg) makes the protocol,
 * connection_made runs, then done(tr, 0, darg) if done is set. A failed
 * handshake is logged and ends in done(NULL, err, darg). conns (a server's
 * list, which the transport joins at once) may be NULL.
 * Takes fd on success only. Returns 0 and *out (may be NULL), or -errno.
 */
int weft__transport_new_tls(struct weft_loop *loop, int fd, struct weft_tls_context *ctx,
                            const char *hostname, weft_protocol_factory_cb *factory, void *farg,
                            struct weft__conns *conns, weft__tls_done_cb *done, void *darg,
                            struct weft_transport **out);

/*
 * Make the BIO method through which OpenSSL reaches the transport below
 * (once per process; a context calls it when made). 0 or -ENOMEM.
 */
int weft__tls_bio_init(void);

/* Forget the done callback of a transport still in its handshake, and abort it. */
void weft__tls_cancel(struct weft_transport *tr);


/* tls.c: log OpenSSL's error queue's last reason (then clear it) into buf. */
const char *weft__tls_reason(char *buf, size_t len);

#endif
