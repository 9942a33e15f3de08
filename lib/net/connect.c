/* SPDX-License-Identifier: MIT */
/* connect.c: outgoing connections: evdns resolution, each address in turn, a total timeout. */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "net/transport-int.h"

/*
 * A connect attempt lives until its callback has run (or it was cancelled)
 * and evdns has let go of it: evdns_getaddrinfo_cancel() still calls back
 * later with EVUTIL_EAI_CANCEL, so the struct waits for that call.
 */
struct weft_connect {
    struct weft_loop *loop;
    weft_protocol_factory_cb *factory;
    void *farg;
    weft_connect_cb *cb;
    void *cbarg;
    struct weft__addr *addrs;
    size_t naddrs, next;
    struct evdns_getaddrinfo_request *dns;
    struct event *conn_ev;          /* the socket being connected becomes writable */
    struct weft_handle *timer;      /* the total timeout */
    struct weft_handle *defer;      /* a failure found inside weft_create_connection */
    struct sockaddr_storage local;
    socklen_t local_len;
    int fd;
    int last_error;
    int result;
    bool in_create;
    bool deferred;                  /* result is waiting for the loop */
    bool dns_pending;               /* evdns still holds a pointer to us */
    bool done;                      /* callback ran or attempt cancelled */
    struct weft__wrapper *tls;      /* TLS: a reference to its context, or NULL */
    char *hostname;                 /* TLS: SNI and the certificate's name */
    struct weft_transport *tls_tr;  /* TLS: the transport in its handshake */
};

static void
maybe_free(struct weft_connect *c)
{
    if (!c->done || c->dns_pending)
        return;
    if (c->tls != NULL)
        c->tls->ops->unref(c->tls);
    free(c->hostname);
    free(c->addrs);
    free(c);
}

/* Stop everything in flight (timer, socket, query). */
static void
stop_io(struct weft_connect *c)
{
    if (c->timer != NULL) {
        weft_handle_cancel(c->timer);
        c->timer = NULL;
    }
    if (c->conn_ev != NULL) {
        event_free(c->conn_ev);
        c->conn_ev = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->dns_pending && c->dns != NULL) {
        struct evdns_getaddrinfo_request *req = c->dns;

        c->dns = NULL;
        evdns_getaddrinfo_cancel(req);
    }
}

static void
deliver(struct weft_connect *c, struct weft_transport *tr, int error)
{
    c->done = true;
    c->cb(tr, error, c->cbarg);
    maybe_free(c);
}

static void
deliver_deferred(void *arg)
{
    struct weft_connect *c = arg;

    c->defer = NULL;
    deliver(c, NULL, c->result);
}

static void
conn_fail(struct weft_connect *c, int err)
{
    stop_io(c);
    if (c->in_create) {
        c->result = err;
        c->deferred = true;
        return;
    }
    deliver(c, NULL, err);
}

static void try_next(struct weft_connect *c);

static void
on_tls_done(struct weft_transport *tr, int error, void *arg)
{
    struct weft_connect *c = arg;

    c->tls_tr = NULL;
    deliver(c, tr, error);
}

static void
on_connected(evutil_socket_t fd, short what, void *arg)
{
    struct weft_connect *c = arg;
    struct weft_protocol *proto;
    struct weft_transport *tr = NULL;
    socklen_t l = sizeof(int);
    int err = 0, rc;

    (void)what;
    event_free(c->conn_ev);
    c->conn_ev = NULL;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
        err = errno;
    if (err != 0) {
        close(c->fd);
        c->fd = -1;
        c->last_error = -err;
        try_next(c);
        return;
    }
    c->fd = -1;         /* the transport's, or closed below */
    stop_io(c);
    if (c->tls != NULL) {
        /* cb follows the handshake (on_tls_done); its timeout is the context's */
        rc = c->tls->ops->wrap(c->tls, c->loop, fd, c->hostname, c->factory, c->farg, NULL,
                               on_tls_done, c, &c->tls_tr);
        if (rc < 0) {
            close(fd);
            deliver(c, NULL, rc);
        }
        return;
    }
    proto = c->factory(c->farg);
    if (proto == NULL) {
        close(fd);
        deliver(c, NULL, -ENOMEM);
        return;
    }
    rc = weft__transport_new_socket(c->loop, proto, fd, NULL, &tr);
    if (rc < 0) {
        close(fd);
        if (proto->ops != NULL && proto->ops->connection_lost != NULL)
            proto->ops->connection_lost(proto, rc);     /* lets the protocol free itself */
        deliver(c, NULL, rc);
        return;
    }
    deliver(c, tr, 0);
}

/* Start connecting to the next address; fail with the last error when none is left. */
static void
try_next(struct weft_connect *c)
{
    struct event_base *base = weft_loop_get_base(c->loop);

    while (c->next < c->naddrs) {
        const struct weft__addr *a = &c->addrs[c->next++];
        int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

        if (fd < 0) {
            c->last_error = -errno;
            continue;
        }
        if (c->local_len > 0 && bind(fd, (const struct sockaddr *)&c->local, c->local_len) < 0) {
            c->last_error = -errno;
            close(fd);
            continue;
        }
        if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 && errno != EINPROGRESS) {
            c->last_error = -errno;
            close(fd);
            continue;
        }
        /* Even a connect that succeeded at once is reported from the loop. */
        c->fd = fd;
        c->conn_ev = event_new(base, fd, EV_WRITE, on_connected, c);
        if (c->conn_ev == NULL || event_add(c->conn_ev, NULL) < 0) {
            conn_fail(c, -ENOMEM);
            return;
        }
        return;
    }
    conn_fail(c, c->last_error != 0 ? c->last_error : -ECONNREFUSED);
}

static void
on_timeout(void *arg)
{
    struct weft_connect *c = arg;

    c->timer = NULL;
    conn_fail(c, -ETIMEDOUT);
}

int
weft__eai_error(int result)
{
    switch (result) {
    case EVUTIL_EAI_NONAME:
#ifdef EVUTIL_EAI_NODATA
    case EVUTIL_EAI_NODATA:
#endif
        return -WEFT_ENONAME;
    case EVUTIL_EAI_MEMORY:
        return -ENOMEM;
    default:
        return -WEFT_ERESOLVE;
    }
}

static void
on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct weft_connect *c = arg;
    struct evutil_addrinfo *ai;
    size_t n = 0;

    c->dns_pending = false;
    c->dns = NULL;
    if (c->done || c->deferred || result == EVUTIL_EAI_CANCEL) {
        if (res != NULL)
            evutil_freeaddrinfo(res);
        maybe_free(c);
        return;
    }
    if (result != 0) {
        if (res != NULL)
            evutil_freeaddrinfo(res);
        conn_fail(c, weft__eai_error(result));
        return;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next)
        n++;
    c->addrs = calloc(n ? n : 1, sizeof(*c->addrs));
    if (c->addrs == NULL) {
        evutil_freeaddrinfo(res);
        conn_fail(c, -ENOMEM);
        return;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(struct sockaddr_storage))
            continue;
        memcpy(&c->addrs[c->naddrs].ss, ai->ai_addr, ai->ai_addrlen);
        c->addrs[c->naddrs++].len = (socklen_t)ai->ai_addrlen;
    }
    evutil_freeaddrinfo(res);
    if (c->naddrs == 0) {
        conn_fail(c, -WEFT_ENONAME);
        return;
    }
    try_next(c);
}

bool
weft__addr_numeric(const char *host, uint16_t port, struct weft__addr *a)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
    char buf[INET6_ADDRSTRLEN + 1];
    size_t len = strlen(host);

    memset(a, 0, sizeof(*a));
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        a->len = sizeof(*sin);
        return true;
    }
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(buf)) {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        a->len = sizeof(*sin6);
        return true;
    }
    return false;
}

bool
weft__host_is_invalid(const char *host)
{
    size_t len = strlen(host);

    if (len > 0 && host[len - 1] == '.')
        len--;
    return (len == 7 && strncasecmp(host, "invalid", 7) == 0) ||
           (len > 7 && strncasecmp(host + len - 8, ".invalid", 8) == 0);
}

/*
 * Start connecting: to addr if it is set (no resolution), else to host:port.
 * tls_name: the TLS server name when opts->tls is set.
 */
static int
connect_start(struct weft_loop *loop, weft_protocol_factory_cb *factory, void *farg,
              const char *host, uint16_t port, const struct weft__addr *addr,
              const char *tls_name, const struct weft_connect_options *opts,
              weft_connect_cb *cb, void *cbarg, struct weft_connect **out)
{
    static const struct weft_connect_options defaults = WEFT_CONNECT_OPTIONS_INIT;
    struct weft_connect *c;
    struct weft__addr numeric;

    if (opts == NULL)
        opts = &defaults;
    if (opts->local_addr != NULL &&
        (opts->local_addrlen == 0 || opts->local_addrlen > sizeof(struct sockaddr_storage)))
        return -EINVAL;
    if (opts->tls != NULL) {
        struct weft__wrapper *w = weft__wrapper_of(opts->tls);

        if (tls_name == NULL || !w->ops->is_client(w))
            return -EINVAL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->loop = loop;
    c->factory = factory;
    c->farg = farg;
    c->cb = cb;
    c->cbarg = cbarg;
    c->fd = -1;
    c->in_create = true;
    if (opts->local_addr != NULL) {
        memcpy(&c->local, opts->local_addr, opts->local_addrlen);
        c->local_len = opts->local_addrlen;
    }
    if (opts->tls != NULL) {
        c->hostname = strdup(tls_name);
        if (c->hostname == NULL) {
            free(c);
            return -ENOMEM;
        }
        c->tls = weft__wrapper_of(opts->tls)->ops->ref(weft__wrapper_of(opts->tls));
    }
    if (opts->timeout_ms > 0) {
        c->timer = weft_call_later(loop, opts->timeout_ms, on_timeout, c);
        if (c->timer == NULL)
            goto nomem;
    }
    if (addr != NULL || weft__addr_numeric(host, port, &numeric)) {
        c->addrs = malloc(sizeof(*c->addrs));
        if (c->addrs == NULL)
            goto nomem;
        c->addrs[0] = addr != NULL ? *addr : numeric;
        c->naddrs = 1;
        try_next(c);
    } else if (weft__host_is_invalid(host)) {
        conn_fail(c, -WEFT_ENONAME);
    } else {
        struct evdns_base *dns = weft__loop_dns(loop);
        struct evutil_addrinfo hints = {
            .ai_family = AF_UNSPEC,
            .ai_socktype = SOCK_STREAM,
            .ai_protocol = IPPROTO_TCP,
        };
        struct evdns_getaddrinfo_request *req;
        char service[8];

        if (dns == NULL)
            goto nomem;
        snprintf(service, sizeof(service), "%u", port);
        /* Answers from /etc/hosts come back inside this call. */
        c->dns_pending = true;
        req = evdns_getaddrinfo(dns, host, service, &hints, on_resolved, c);
        if (c->dns_pending)
            c->dns = req;
    }
    c->in_create = false;
    if (c->deferred) {
        c->defer = weft_call_soon(loop, deliver_deferred, c);
        if (c->defer == NULL) {
            c->deferred = false;
            goto nomem;
        }
    }
    if (out != NULL)
        *out = c;
    return 0;
nomem:
    c->in_create = false;
    stop_io(c);
    c->done = true;
    maybe_free(c);  /* or on_resolved frees it after the cancel */
    return -ENOMEM;
}

int
weft_create_connection(struct weft_loop *loop, weft_protocol_factory_cb *factory, void *farg,
                       const char *host, uint16_t port, const struct weft_connect_options *opts,
                       weft_connect_cb *cb, void *cbarg, struct weft_connect **out)
{
    if (loop == NULL || factory == NULL || cb == NULL || host == NULL || host[0] == '\0')
        return -EINVAL;
    return connect_start(loop, factory, farg, host, port, NULL,
                         opts != NULL && opts->server_hostname != NULL ? opts->server_hostname
                                                                       : host,
                         opts, cb, cbarg, out);
}

int
weft__connect_addr(struct weft_loop *loop, weft_protocol_factory_cb *factory, void *farg,
                   const struct sockaddr *addr, socklen_t len, const char *tls_name,
                   const struct weft_connect_options *opts, weft_connect_cb *cb, void *cbarg,
                   struct weft_connect **out)
{
    struct weft__addr a = { .len = len };

    if (loop == NULL || factory == NULL || cb == NULL || addr == NULL || len == 0 ||
        len > sizeof(a.ss))
        return -EINVAL;
    memcpy(&a.ss, addr, len);
    return connect_start(loop, factory, farg, NULL, 0, &a, tls_name, opts, cb, cbarg, out);
}

void
weft_connect_cancel(struct weft_connect *c)
{
    if (c == NULL || c->done)
        return;
    if (c->tls_tr != NULL) {
        c->tls->ops->cancel(c->tls_tr);     /* aborted: on_tls_done is not called */
        c->tls_tr = NULL;
    }
    stop_io(c);
    if (c->defer != NULL) {
        weft_handle_cancel(c->defer);
        c->defer = NULL;
    }
    c->done = true;
    maybe_free(c);
}
