/* SPDX-License-Identifier: MIT */
/* weft/proxy.h: the PROXY protocol header (v1 text, v2 binary) a load balancer sends first. */
#ifndef WEFT_PROXY_H
#define WEFT_PROXY_H

#include <sys/socket.h>
#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Versions to accept, for weft_proxy_parse(). */
#define WEFT_PROXY_V1 1u
#define WEFT_PROXY_V2 2u
#define WEFT_PROXY_ANY (WEFT_PROXY_V1 | WEFT_PROXY_V2)

/* Longest v1 header (the spec's 107 bytes), longest v2 header accepted (16 + TLVs). */
#define WEFT_PROXY_V1_MAX 107
#define WEFT_PROXY_V2_MAX 4096

/* What a header says. */
struct weft_proxy_info {
    int version;                    /* 1 or 2 */
    bool local;                     /* v2 LOCAL, v1 UNKNOWN, or a family we do not map
                                     * (AF_UNIX, UNSPEC): no client address; keep the
                                     * connection's own */
    struct sockaddr_storage src;    /* the original client (when !local) */
    struct sockaddr_storage dst;    /* the address it connected to (when !local) */
    socklen_t srclen, dstlen;
};

/**
 * Parse the PROXY protocol header at the start of buf (len bytes received
 * so far), accepting the versions in the mask versions (WEFT_PROXY_V1,
 * WEFT_PROXY_V2, WEFT_PROXY_ANY). Returns the header's length (> 0; those
 * bytes are the header, the rest is the client's) with *out filled; 0 if
 * every byte so far is a valid beginning and more are needed; -EPROTO if the
 * bytes cannot be a header of an accepted version (wrong signature, bad
 * syntax, an address or port out of range, a v1 line longer than 107 bytes,
 * a v2 header longer than WEFT_PROXY_V2_MAX, a v2 address block shorter
 * than its family needs). A non-header is refused from its first bytes:
 * "GET / HTTP/1.1" gives -EPROTO at once. Pure function; out is written only
 * on success. Since 0.1.
 */
WEFT_EXPORT int weft_proxy_parse(const void *buf, size_t len, unsigned versions,
                                 struct weft_proxy_info *out);

/* How long a server waits for the whole header by default, in milliseconds. */
#define WEFT_PROXY_TIMEOUT_DEFAULT 3000

/*
 * Who may send a PROXY header: called with each accepted connection's own
 * peer before anything is read from it; false closes the connection at once.
 */
typedef bool weft_proxy_trusted_cb(const struct sockaddr *peer, socklen_t len, void *arg);

/*
 * A server's PROXY stage (weft_server_options.proxy, weft/server.h). Every
 * connection must start with a header of one of versions: the header is
 * read from the socket (exactly its bytes: what follows, a TLS ClientHello
 * too, is left for the transport), then the protocol is made and the
 * transport reports the client the header names as its peer
 * (weft_transport_set_proxied_peer; a v2 LOCAL or v1 UNKNOWN header keeps
 * the socket's own peer). A malformed header, a connection closed before
 * its header is complete, or one whose header is not complete within
 * timeout_ms is closed without a protocol ever seeing it. A timeout or a
 * malformed header is logged at WEFT_LOG_INFO with the peer, a connection
 * closed early at WEFT_LOG_DEBUG only (a load balancer's TCP health check
 * connects and closes). Connections waiting for their header count in
 * weft_server_connection_count() and reach the accept callback
 * (weft_server_set_accept_cb), so that a limit on connections bounds them.
 */
struct weft_proxy_options {
    unsigned versions;                  /* WEFT_PROXY_V1, _V2 or _ANY */
    uint64_t timeout_ms;                /* for the whole header; 0: the default 3 s */
    weft_proxy_trusted_cb *trusted;     /* NULL: any peer may send a header */
    void *trusted_arg;                  /* for trusted; must outlive the server */
};

#ifdef __cplusplus
}
#endif
#endif
