/* SPDX-License-Identifier: MIT */
/* weft/datagram.h: UDP endpoints, asyncio's create_datagram_endpoint and DatagramTransport. */
#ifndef WEFT_DATAGRAM_H
#define WEFT_DATAGRAM_H

#include <sys/socket.h>
#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A datagram endpoint is a UDP socket driven by the loop, with its own
 * transport type and its own protocol type (asyncio has DatagramTransport and
 * DatagramProtocol beside the stream ones: no bytes stream, no EOF, no
 * sendfile, and every datagram carries an address). The library creates the
 * transport (weft_create_datagram_endpoint), calls its protocol's callbacks
 * and frees it right after connection_lost returns: the protocol must drop
 * its pointer there. Loop thread only.
 */
struct weft_datagram_transport;
struct weft_datagram_protocol;

/*
 * The callbacks, in order:
 *
 *   connection_made    once, first (the socket is bound, and connected if a
 *                      remote address was given)
 *   datagram_received  0..n times, one datagram each
 *   error_received     0..n times: an error the socket reported for an
 *                      earlier send (ICMP port unreachable on a connected
 *                      endpoint: -ECONNREFUSED), or a send that failed at once
 *   pause_writing / resume_writing  around the write buffer's high/low marks
 *   connection_lost    exactly once, last; the protocol frees itself here
 *
 * Only pause_writing and error_received may be called from inside a
 * transport method (weft_datagram_sendto), as in asyncio; the others always
 * run from the loop. Any callback may be NULL.
 */
struct weft_datagram_protocol_ops {
    /* The endpoint is ready; keep tr (borrowed, valid until connection_lost).
     * Return 0, or a negative code to report it and abort the endpoint. */
    int (*connection_made)(struct weft_datagram_protocol *p,
                           struct weft_datagram_transport *tr);

    /* One datagram of len bytes (0 is a valid length) from addr (addrlen
     * bytes, an AF_INET or AF_INET6 address). data and addr are borrowed for
     * the call: the buffer is reused for the next datagram. A negative return
     * is passed to the loop's error handler; the endpoint goes on (one bad
     * datagram must not stop a server). */
    int (*datagram_received)(struct weft_datagram_protocol *p, const void *data, size_t len,
                             const struct sockaddr *addr, socklen_t addrlen);

    /* A socket error for this endpoint, as -errno (-ECONNREFUSED,
     * -EHOSTUNREACH, -ENETUNREACH, -EMSGSIZE...). The endpoint goes on. */
    void (*error_received)(struct weft_datagram_protocol *p, int error);

    /* Last call: error 0 after close or abort, else a negative code. The
     * transport is freed after return. */
    void (*connection_lost)(struct weft_datagram_protocol *p, int error);

    /* The write buffer went above the high-water mark: stop sending. */
    void (*pause_writing)(struct weft_datagram_protocol *p);

    /* The write buffer fell to the low-water mark: send again. */
    void (*resume_writing)(struct weft_datagram_protocol *p);
};

/* Embed first in a protocol object: ((struct weft_datagram_protocol *)obj)->ops. */
struct weft_datagram_protocol {
    const struct weft_datagram_protocol_ops *ops;
};

/* Make the protocol for a new endpoint; NULL (out of memory) fails the call. */
typedef struct weft_datagram_protocol *weft_datagram_protocol_factory_cb(void *arg);

/*
 * Endpoint settings (asyncio's keyword arguments). NULL options mean
 * WEFT_DATAGRAM_OPTIONS_INIT: any family, no address options.
 */
struct weft_datagram_options {
    int family;             /* AF_UNSPEC (0), AF_INET or AF_INET6 */
    bool reuse_port;        /* SO_REUSEPORT on the bound socket */
    bool allow_broadcast;   /* SO_BROADCAST */
    /* Instead of local_host/local_port: bind to this address (copied). */
    const struct sockaddr *local_addr;
    socklen_t local_addrlen;
    /* Instead of remote_host/remote_port: connect to this address (copied). */
    const struct sockaddr *remote_addr;
    socklen_t remote_addrlen;
    /* A socket already bound (and maybe connected), as asyncio's sock=; -1:
     * none. Taken on success only; every address option must be unset. */
    int fd;
    /* Datagrams read per readiness event with recvmmsg; 0 means 16. Each
     * takes a 64 KiB slot of the receive buffer, allocated once with the
     * endpoint (only the pages datagrams reach are touched). */
    unsigned recv_batch;
};
#define WEFT_DATAGRAM_OPTIONS_INIT { .family = 0, .fd = -1, .recv_batch = 0 }

/**
 * Make a UDP endpoint, as asyncio's loop.create_datagram_endpoint: a socket
 * bound to local_host:local_port (NULL: not bound; the kernel picks an
 * address and port at the first send or at connect; with no address at all
 * opts->family must be given) and, when
 * remote_host (or opts->remote_addr) is given, connected to
 * remote_host:remote_port: a connected endpoint receives from that peer only,
 * sends with a NULL address and gets ICMP errors back as error_received.
 * factory(arg) makes the protocol. Hosts are numeric (IPv4, IPv6, "[v6]")
 * or names: numeric ones are used at once and connection_made runs before
 * this returns; names are resolved with evdns (never blocking the loop) and
 * connection_made runs from the loop once the socket is made; a name that
 * does not resolve, or a bind that fails then, reaches the protocol as
 * connection_lost(-WEFT_ENONAME, -EADDRINUSE...) without connection_made.
 * Until connection_made, weft_datagram_sendto returns -ENOTCONN.
 * On success *out is the transport (may be NULL if unwanted; it stays valid
 * until connection_lost) and 0 is returned. Otherwise nothing is left open,
 * the protocol (if made) got connection_lost(rc), and rc is returned:
 * -EINVAL (no address and no family, an address given twice, fd with an
 * address, recv_batch over 256), -WEFT_ENONAME (".invalid"),
 * -EADDRINUSE, -EACCES, -EAFNOSUPPORT, -ENOMEM, ... Since 0.1.
 */
WEFT_EXPORT int weft_create_datagram_endpoint(struct weft_loop *loop,
                                              weft_datagram_protocol_factory_cb *factory,
                                              void *arg, const char *local_host,
                                              uint16_t local_port, const char *remote_host,
                                              uint16_t remote_port,
                                              const struct weft_datagram_options *opts,
                                              struct weft_datagram_transport **out);

/**
 * Send one datagram of len bytes (0 allowed) to addr (addrlen bytes), or to
 * the connected peer when addr is NULL. Copies only if it must queue: when
 * nothing is queued it goes straight to the socket, and when the socket's
 * buffer is full (EAGAIN) it is queued (one copy) and sent when the socket is
 * writable, in order; past the high-water mark pause_writing is called.
 * Returns 0 when sent or queued; -EPIPE after close or abort; -ENOTCONN
 * before connection_made; -EDESTADDRREQ for addr NULL on an unconnected
 * endpoint; -EINVAL for an addr on a connected one that is not its peer
 * (asyncio's ValueError) or a bad addrlen;
 * -EMSGSIZE for more than 65507 bytes; -ENOMEM when it could not be queued.
 * An error the kernel reports for the send itself (-ECONNREFUSED from an
 * earlier ICMP, -ENETUNREACH...) goes to error_received, and 0 is returned
 * (the datagram is dropped, as UDP may). Since 0.1.
 */
WEFT_EXPORT int weft_datagram_sendto(struct weft_datagram_transport *tr, const void *data,
                                     size_t len, const struct sockaddr *addr,
                                     socklen_t addrlen);

/**
 * Stop receiving, send what is queued, then close the socket;
 * connection_lost(0) follows from the loop. A second call is a no-op.
 * Since 0.1.
 */
WEFT_EXPORT void weft_datagram_close(struct weft_datagram_transport *tr);

/**
 * Close now, dropping what is queued; connection_lost(0) follows from the
 * loop. Since 0.1.
 */
WEFT_EXPORT void weft_datagram_abort(struct weft_datagram_transport *tr);

/** True once close or abort was called, or the endpoint was lost. Since 0.1. */
WEFT_EXPORT bool weft_datagram_is_closing(const struct weft_datagram_transport *tr);

/**
 * Set the write buffer's marks, as weft_transport_set_write_buffer_limits():
 * above high, pause_writing; back at or below low, resume_writing.
 * WEFT_LIMIT_DEFAULT (weft/transport.h, SIZE_MAX) for high gives 64 KiB, for
 * low high / 4. Returns 0, or -EINVAL if low > high. Since 0.1.
 */
WEFT_EXPORT int weft_datagram_set_write_buffer_limits(struct weft_datagram_transport *tr,
                                                      size_t high, size_t low);

/** The current marks. Since 0.1. */
WEFT_EXPORT void weft_datagram_get_write_buffer_limits(const struct weft_datagram_transport *tr,
                                                       size_t *high, size_t *low);

/**
 * Bytes of the datagrams queued and not yet handed to the kernel (their
 * payload; the addresses kept with them are not counted). Since 0.1.
 */
WEFT_EXPORT size_t weft_datagram_get_write_buffer_size(const struct weft_datagram_transport *tr);

/**
 * get_extra_info, as weft_transport_get_extra_info(): copies into out (*len:
 * in, its size; out, the bytes written):
 *   "sockname"  struct sockaddr_storage (or shorter), the bound address
 *   "peername"  the connected peer (-ENOENT on an unconnected endpoint)
 *   "socket"    int, the file descriptor (do not close it)
 * Returns 0, -ENOENT for an unknown name (or before connection_made),
 * -ENOBUFS if *len is too small (*len is set to the size needed), -EINVAL.
 * Since 0.1.
 */
WEFT_EXPORT int weft_datagram_get_extra_info(struct weft_datagram_transport *tr,
                                             const char *name, void *out, size_t *len);

/** The transport's loop, borrowed. Since 0.1. */
WEFT_EXPORT struct weft_loop *weft_datagram_get_loop(const struct weft_datagram_transport *tr);

/** The protocol, borrowed. Since 0.1. */
WEFT_EXPORT struct weft_datagram_protocol *
weft_datagram_get_protocol(const struct weft_datagram_transport *tr);

#ifdef __cplusplus
}
#endif
#endif
