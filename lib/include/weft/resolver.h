/* SPDX-License-Identifier: MIT */
/* weft/resolver.h: name resolution on the loop's evdns resolver, never blocking the loop. */
#ifndef WEFT_RESOLVER_H
#define WEFT_RESOLVER_H

#include <netdb.h>
#include <sys/socket.h>
#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * asyncio's loop.getaddrinfo() and loop.getnameinfo(), without a thread pool:
 * every loop has one libevent evdns resolver, made on first use from
 * /etc/resolv.conf (or what weft_loop_set_resolver() says). Numeric hosts and
 * /etc/hosts names are answered without a query; other names are sent to the
 * nameservers over UDP, and no call here ever blocks the loop's thread.
 * Loop thread only.
 */

/* A pending lookup, from weft_getaddrinfo_cb() or weft_getnameinfo_cb(). */
struct weft_lookup;

/* The loop's resolver settings. NULL or zero fields mean the default. */
struct weft_resolver_options {
    /* Read nameservers, search domains and options from this file; NULL:
     * /etc/resolv.conf. The hosts file is read whatever this says. */
    const char *resolv_conf;
    /* Read host names from this file (weft_create_server too); NULL:
     * /etc/hosts. */
    const char *hosts;
    /* Ask only this nameserver, "IP" or "IP:PORT" ("127.0.0.1:5353",
     * "[::1]:53"); resolv.conf's nameservers and search domains are then
     * ignored (its options are still read). NULL: resolv.conf's. */
    const char *nameserver;
    /* Give up on a lookup after this long with -ETIMEDOUT. 0: no limit of
     * ours (evdns gives up after resolv.conf's timeout and attempts, 5 s x 3
     * by default, and that is reported as -WEFT_ERESOLVE). */
    uint64_t timeout_ms;
};

/**
 * Configure the loop's resolver. Copies opts (NULL: the defaults). Only
 * before the loop's first lookup (weft_getaddrinfo*, weft_getnameinfo*,
 * weft_create_connection or weft_open_connection with a name): after it,
 * returns -EBUSY and changes nothing. Returns 0, -EBUSY, -EINVAL (a
 * nameserver that is not an address), or -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_loop_set_resolver(struct weft_loop *loop,
                                       const struct weft_resolver_options *opts);

/*
 * The outcome of weft_getaddrinfo_cb: error 0 and res, a list the callee now
 * owns (free it with weft_freeaddrinfo); or error negative and res NULL.
 * Called once, from the loop.
 */
typedef void weft_addrinfo_cb(int error, struct addrinfo *res, void *arg);

/**
 * getaddrinfo(3) without blocking: resolve host (NULL with AI_PASSIVE: the
 * wildcard addresses, NULL without: loopback) and service (a port number or
 * an /etc/services name; NULL: port 0) with hints (NULL: any family, any
 * socket type; as evdns_getaddrinfo: AI_PASSIVE, AI_NUMERICHOST,
 * AI_NUMERICSERV and AI_CANONNAME work, AI_V4MAPPED and AI_ALL do not; a
 * socket type or protocol other than TCP, UDP or 0 is not). Numeric hosts
 * and /etc/hosts names need no query; names under ".invalid" fail at once
 * (RFC 6761). Then cb(0, res, arg), or cb(err, NULL, arg) with err
 * -WEFT_ENONAME (no such name, or no address of the family asked for; also
 * every name that needs a query when no nameserver is configured),
 * -WEFT_ERESOLVE (the servers failed or did not answer), -ETIMEDOUT (the
 * resolver's timeout_ms), -ENOMEM. Returns 0 when started (cb will be called,
 * never from inside this call), or -EINVAL (host and service both NULL, cb
 * NULL) or -ENOMEM, and cb is not called. If out is not NULL it receives a
 * handle for weft_lookup_cancel(), valid until cb is called. Since 0.1.
 */
WEFT_EXPORT int weft_getaddrinfo_cb(struct weft_loop *loop, const char *host,
                                    const char *service, const struct addrinfo *hints,
                                    weft_addrinfo_cb *cb, void *arg, struct weft_lookup **out);

/*
 * The outcome of weft_getnameinfo_cb: error 0 with host and serv (borrowed
 * for the call); or error negative and both NULL.
 * Called once, from the loop.
 */
typedef void weft_nameinfo_cb(int error, const char *host, const char *serv, void *arg);

/**
 * getnameinfo(3) without blocking: the name of the IPv4 or IPv6 address sa
 * (salen bytes, copied) and of its port. With NI_NUMERICHOST the host is the
 * address as text and no query is made; otherwise a PTR query goes through
 * evdns (evdns_base_resolve_reverse / _ipv6; /etc/hosts is not consulted for
 * reverse names), and when it finds nothing the host is the numeric address,
 * or with NI_NAMEREQD the lookup fails with -WEFT_ENONAME. The service is the
 * port number with NI_NUMERICSERV, else its /etc/services name (NI_DGRAM:
 * the UDP one) or the number. NI_NOFQDN keeps the name up to its first dot.
 * Then cb(0, host, serv,
 * arg), or cb(err, NULL, NULL, arg) with err -WEFT_ENONAME, -WEFT_ERESOLVE,
 * -ETIMEDOUT or -ENOMEM. Returns 0 when started (cb will be called, never
 * from inside this call), or -EAFNOSUPPORT (not IPv4 or IPv6), -EINVAL,
 * -ENOMEM and cb is not called. out as for weft_getaddrinfo_cb(). Since 0.1.
 */
WEFT_EXPORT int weft_getnameinfo_cb(struct weft_loop *loop, const struct sockaddr *sa,
                                    socklen_t salen, int flags, weft_nameinfo_cb *cb,
                                    void *arg, struct weft_lookup **out);

/**
 * Abandon a pending lookup: its callback is not called, the query is
 * cancelled and nothing is leaked (evdns is let go of later, by itself).
 * NULL is a no-op. Since 0.1.
 */
WEFT_EXPORT void weft_lookup_cancel(struct weft_lookup *l);

/** Free a list from weft_getaddrinfo() or weft_getaddrinfo_cb(). NULL is a no-op. Since 0.1. */
WEFT_EXPORT void weft_freeaddrinfo(struct addrinfo *res);

/* ---- from a task (lib/coro/) ---- */

/**
 * loop.getaddrinfo(), from a task on loop: weft_getaddrinfo_cb() and wait.
 * Returns 0 and *res (free it with weft_freeaddrinfo), or -WEFT_ENONAME,
 * -WEFT_ERESOLVE, -ETIMEDOUT, -ECANCELED (the task was cancelled: the query is
 * cancelled too), -WEFT_ENOTASK, -EINVAL, -ENOMEM; *res is then NULL.
 * Since 0.1.
 */
WEFT_EXPORT int weft_getaddrinfo(struct weft_loop *loop, const char *host, const char *service,
                                 const struct addrinfo *hints, struct addrinfo **res);

/**
 * loop.getnameinfo(), from a task: weft_getnameinfo_cb() on the task's loop
 * and wait, then copy the host into host (hostlen bytes; NULL/0: not wanted)
 * and the service into serv (servlen; NULL/0: not wanted), NUL-terminated.
 * Returns 0, -ENOSPC (a buffer too small), or the codes of
 * weft_getnameinfo_cb() and -ECANCELED, -WEFT_ENOTASK. Since 0.1.
 */
WEFT_EXPORT int weft_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
                                 size_t hostlen, char *serv, size_t servlen, int flags);

#ifdef __cplusplus
}
#endif
#endif
