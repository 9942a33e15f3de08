/* SPDX-License-Identifier: MIT */
/* weft/server.h: listening servers and outgoing connections on the Protocol layer. */
#ifndef WEFT_SERVER_H
#define WEFT_SERVER_H

#include <sys/socket.h>
#include <weft/common.h>
#include <weft/protocol.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weft_tls_context;
struct weft_proxy_options;

/* Server settings. NULL options mean WEFT_SERVER_OPTIONS_INIT. */
struct weft_server_options {
    int backlog;        /* listen() backlog; 0 means 511 */
    bool reuse_address; /* SO_REUSEADDR (asyncio's default on Unix: on) */
    bool reuse_port;    /* SO_REUSEPORT */
    /* Since 0.1 (TLS): wrap every accepted connection in TLS with this server
     * context (weft/tls.h); the server takes its own reference. The protocol
     * is made (factory) once the handshake is done. NULL: plain TCP. */
    struct weft_tls_context *tls;
    /* Since 0.1 (PROXY): read a PROXY protocol header (weft/proxy.h) from each
     * accepted connection before anything else, TLS included; the options are
     * copied. The protocol is made once the header has arrived, and the
     * transport reports the client it names as its peer. NULL: no header. */
    const struct weft_proxy_options *proxy;
    /* Since 0.1: weft_transport_set_idle_timeout() on each accepted
     * connection; 0: none. */
    uint64_t idle_timeout_ms;
};
#define WEFT_SERVER_OPTIONS_INIT { .backlog = 511, .reuse_address = true, .reuse_port = false }

/**
 * Listen on every address host resolves to (IPv4 and IPv6; NULL or "" means
 * every interface) at port (0 picks a free one per address), and make a
 * protocol with factory(arg) for each accepted connection. Never blocks:
 * numeric addresses, NULL and names in /etc/hosts ("localhost") are resolved
 * before this returns, without the network (the loop's resolver answers
 * them at once); a name that needs a DNS query is refused with -EWOULDBLOCK
 * (and a warning logged) and nothing is sent: resolve it first from a task
 * with weft_getaddrinfo() (weft/resolver.h) and listen on the addresses. On
 * success *out is the server (free it with weft_server_free) and 0 is
 * returned; otherwise a negative code: -WEFT_ENONAME, -EWOULDBLOCK,
 * -EADDRINUSE, -EACCES, -EADDRNOTAVAIL, -ENOMEM, ... and nothing is left
 * open. Since 0.1.
 */
WEFT_EXPORT int weft_create_server(struct weft_loop *loop, weft_protocol_factory_cb *factory,
                                   void *arg, const char *host, uint16_t port,
                                   const struct weft_server_options *opts,
                                   struct weft_server **out);

/**
 * Serve on sockets the caller already bound and put in listening state (a
 * daemon's own listeners, systemd socket activation). Takes the nfds
 * descriptors on success only (they are made non-blocking and closed by the
 * server); opts->backlog and the reuse flags are ignored. Returns 0 or a
 * negative code as weft_create_server(). Since 0.1.
 */
WEFT_EXPORT int weft_create_server_fds(struct weft_loop *loop, weft_protocol_factory_cb *factory,
                                       void *arg, const int *fds, size_t nfds,
                                       const struct weft_server_options *opts,
                                       struct weft_server **out);

/**
 * asyncio's create_unix_server(): listen on the Unix domain socket path
 * (SOCK_STREAM) and make a protocol with factory(arg) for each accepted
 * connection. A path that starts with '@' names a socket in Linux's
 * abstract namespace (no file: "@weft" is "\0weft", as ss and socat show
 * it); any other path is a file. A socket file already at path is taken
 * for a stale one and removed before binding (asyncio's behaviour: a
 * server that still listens there loses its name); anything else there is
 * left alone and -EADDRINUSE returned. The file is made with the process's
 * umask, and weft_server_close() (or free) removes it if it is still the
 * one this server made (same device and inode). opts as for
 * weft_create_server(): tls and proxy work as over TCP; reuse_address and
 * reuse_port are ignored. Accepted connections are ordinary socket
 * transports: write_eof shuts the socket down for writing, "peername" and
 * "sockname" give a struct sockaddr_un, "peercred" the client's struct
 * ucred (weft_transport_get_extra_info). Returns 0 and *out, or -EINVAL
 * (path NULL, "" or "@"), -ENAMETOOLONG (longer than sun_path), -EADDRINUSE,
 * -EACCES, -ENOENT (no such directory), -ENOMEM, ...; nothing is left open
 * or made on failure. Since 0.1.
 */
WEFT_EXPORT int weft_create_unix_server(struct weft_loop *loop,
                                        weft_protocol_factory_cb *factory, void *arg,
                                        const char *path,
                                        const struct weft_server_options *opts,
                                        struct weft_server **out);

/**
 * Stop listening and close the listening sockets. Connections already
 * accepted go on. Idempotent. Since 0.1.
 */
WEFT_EXPORT void weft_server_close(struct weft_server *s);

/** Close every connection of the server gracefully (weft_transport_close). Since 0.1. */
WEFT_EXPORT void weft_server_close_clients(struct weft_server *s);

/** Abort every connection of the server (weft_transport_abort). Since 0.1. */
WEFT_EXPORT void weft_server_abort_clients(struct weft_server *s);

/** Stop accepting without closing the listening sockets. Since 0.1. */
WEFT_EXPORT void weft_server_pause_accepting(struct weft_server *s);

/** Accept again after weft_server_pause_accepting(). Since 0.1. */
WEFT_EXPORT void weft_server_resume_accepting(struct weft_server *s);

/** True while listening sockets are open and accepting. Since 0.1. */
WEFT_EXPORT bool weft_server_is_serving(const struct weft_server *s);

/** Connections accepted and not yet lost. Since 0.1. */
WEFT_EXPORT size_t weft_server_connection_count(const struct weft_server *s);

/*
 * Called once for each connection the server accepts and keeps, as soon as
 * weft_server_connection_count() includes it: before its PROXY header is
 * read, its TLS handshake is done or its protocol is made, so that a caller
 * can bound connections however slowly they start (it may call
 * weft_server_pause_accepting, which then stops the current accept batch
 * too). Not called for a connection closed at once (an untrusted PROXY
 * sender, no memory).
 */
typedef void weft_server_accept_cb(struct weft_server *s, void *arg);

/** Set (cb NULL: clear) the server's accept callback; arg must outlive the server. Since 0.1. */
WEFT_EXPORT void weft_server_set_accept_cb(struct weft_server *s, weft_server_accept_cb *cb,
                                           void *arg);

/** Number of listening sockets (0 after close). Since 0.1. */
WEFT_EXPORT size_t weft_server_socket_count(const struct weft_server *s);

/**
 * The address listening socket i is bound to, copied into addr (*len: in, its
 * size; out, the address's). Returns 0, -ENOENT for a bad i, or -errno.
 * Since 0.1.
 */
WEFT_EXPORT int weft_server_get_sockname(const struct weft_server *s, size_t i,
                                         struct sockaddr *addr, socklen_t *len);

/**
 * Close the server, abort its connections (their connection_lost runs before
 * this returns) and free it. NULL is a no-op. Since 0.1.
 */
WEFT_EXPORT void weft_server_free(struct weft_server *s);

/* The happy eyeballs delay (RFC 8305 section 8's Connection Attempt Delay: 250 ms). */
#define WEFT_HAPPY_EYEBALLS_DELAY_DEFAULT 250u
/* As a happy eyeballs delay: one attempt at a time, the next when one fails
 * (asyncio's create_connection without happy_eyeballs_delay). */
#define WEFT_HAPPY_EYEBALLS_OFF UINT64_MAX
/* As an interleave: try the addresses in the resolver's order. */
#define WEFT_INTERLEAVE_NONE (-1)

/* Outgoing connections. NULL options mean WEFT_CONNECT_OPTIONS_INIT. */
struct weft_connect_options {
    uint64_t timeout_ms;               /* resolve + connect; 0 means no limit */
    const struct sockaddr *local_addr; /* bind() before connect, or NULL */
    socklen_t local_addrlen;
    /* Since 0.1 (TLS): a client context (weft_tls_context_new_client) makes the
     * connection TLS: cb follows the handshake, and a failed handshake or
     * certificate check reaches cb as -WEFT_ETLS (the reason is logged), a
     * handshake timeout as -ETIMEDOUT. NULL: plain TCP. */
    struct weft_tls_context *tls;
    /* The name sent as SNI and checked against the certificate (an address is
     * checked against its IP entries); NULL: host. */
    const char *server_hostname;
    /* Since 0.1 (happy eyeballs): asyncio's happy_eyeballs_delay, in ms:
     * while an attempt is pending, the next address is tried this long after
     * it started (an attempt that fails starts the next at once); the first
     * to connect wins and the others are closed. 0: 250 ms;
     * WEFT_HAPPY_EYEBALLS_OFF: one attempt at a time. */
    uint64_t happy_eyeballs_delay_ms;
    /* asyncio's interleave, RFC 8305's First Address Family Count: the
     * addresses are reordered to take this many of the first answer's family,
     * then alternate families. 0: 1 (with happy eyeballs off: no reordering,
     * as asyncio); WEFT_INTERLEAVE_NONE: the resolver's order. */
    int interleave;
};
#define WEFT_CONNECT_OPTIONS_INIT { .timeout_ms = 60000, .local_addr = NULL, .local_addrlen = 0 }

/*
 * The outcome of weft_create_connection: tr is the new transport (its
 * protocol's connection_made has run) and error 0; or tr NULL and error
 * negative. Called once, from the loop.
 */
typedef void weft_connect_cb(struct weft_transport *tr, int error, void *arg);

/**
 * Connect to host:port without blocking: the name is resolved with
 * weft_getaddrinfo_cb() (numeric addresses and /etc/hosts need no query), the
 * addresses are interleaved by family and tried with happy eyeballs (RFC
 * 8305; happy_eyeballs_delay_ms, interleave) until one connects (the error of
 * the last failure otherwise), then factory(farg) makes the protocol and
 * cb(tr, 0, cbarg) follows. Failures reach cb as -ECONNREFUSED,
 * -ENETUNREACH, -EHOSTUNREACH, -WEFT_ENONAME, -WEFT_ERESOLVE, -ETIMEDOUT or
 * -ENOMEM. Returns 0 when started (cb will be called, never from inside this
 * call), or a negative code (-EINVAL, -ENOMEM) and cb is not called.
 * If out is not NULL it receives a handle for weft_connect_cancel(), valid
 * until cb is called. Since 0.1.
 */
WEFT_EXPORT int weft_create_connection(struct weft_loop *loop, weft_protocol_factory_cb *factory,
                                       void *farg, const char *host, uint16_t port,
                                       const struct weft_connect_options *opts,
                                       weft_connect_cb *cb, void *cbarg,
                                       struct weft_connect **out);

/**
 * asyncio's create_unix_connection(): connect to the Unix domain socket path
 * ('@' first: the abstract namespace, as weft_create_unix_server()), then
 * factory(farg) makes the protocol and cb(tr, 0, cbarg) follows, from the
 * loop. Failures reach cb as -ECONNREFUSED (nobody listens), -ENOENT (no
 * such file), -EACCES, -EAGAIN (the server's backlog is full), -ETIMEDOUT
 * (opts->timeout_ms), -ENOMEM. With opts->tls the connection is TLS and
 * opts->server_hostname is required (there is no host name to check
 * otherwise). opts->local_addr, if set, must be an AF_UNIX address. Returns
 * 0 when started (out, if not NULL, receives a handle for
 * weft_connect_cancel()), or -EINVAL, -ENAMETOOLONG, -ENOMEM and cb is not
 * called. Since 0.1.
 */
WEFT_EXPORT int weft_create_unix_connection(struct weft_loop *loop,
                                            weft_protocol_factory_cb *factory, void *farg,
                                            const char *path,
                                            const struct weft_connect_options *opts,
                                            weft_connect_cb *cb, void *cbarg,
                                            struct weft_connect **out);

/** Abandon a pending connect: cb is not called, nothing is left open. Since 0.1. */
WEFT_EXPORT void weft_connect_cancel(struct weft_connect *c);

/**
 * Wrap a connected socket (accepted, or from socketpair()) in a transport
 * with a protocol from factory(arg); connection_made runs before this
 * returns. Takes fd on success only. Returns 0 and *out (may be NULL if
 * unwanted), or -ENOMEM / -errno. Since 0.1.
 */
WEFT_EXPORT int weft_connect_accepted_socket(struct weft_loop *loop,
                                             weft_protocol_factory_cb *factory, void *arg,
                                             int fd, struct weft_transport **out);

#ifdef __cplusplus
}
#endif
#endif
