/* SPDX-License-Identifier: MIT */
/* connect.c: outgoing connections: the loop's resolver, happy eyeballs (RFC 8305), a timeout. */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include <weft/resolver.h>

#include "net/transport-int.h"

/*
 * An outgoing connection: the name is resolved (weft_getaddrinfo_cb), then
 * happy eyeballs (RFC 8305) over the addresses: one attempt starts, the next
 * after delay_ms while it is pending or at once when it fails, and the first
 * to connect wins. Every attempt is a non-blocking socket with a one-shot
 * write event; SO_ERROR decides. The struct lives until the callback has run
 * or the attempt was cancelled; weft_lookup_cancel() needs nothing after it.
 */
struct attempt {
    struct weft_connect *c;
    struct event *ev;               /* the socket becomes writable */
    int fd;
};

struct weft_connect {
    struct weft_loop *loop;
    weft_protocol_factory_cb *factory;
    void *farg;
    weft_connect_cb *cb;
    void *cbarg;
    struct weft__addr *addrs;
    size_t naddrs, next;            /* addresses, and the next to try */
    struct attempt *att;            /* one per address started */
    size_t natt, inflight;
    uint64_t delay_ms;              /* WEFT_HAPPY_EYEBALLS_OFF: one at a time */
    int interleave;                 /* First Address Family Count; 0: none */
    struct weft_lookup *lookup;     /* the name being resolved */
    struct weft_handle *timer;      /* the total timeout */
    struct weft_handle *stagger;    /* the next attempt's start */
    struct weft_handle *defer;      /* a failure found inside weft_create_connection */
    struct sockaddr_storage local;
    socklen_t local_len;
    int last_error;
    int result;
    bool in_create;
    bool deferred;                  /* result is waiting for the loop */
    bool done;                      /* callback ran or attempt cancelled */
    struct weft__wrapper *tls;      /* TLS: a reference to its context, or NULL */
    char *hostname;                 /* TLS: SNI and the certificate's name */
    struct weft_transport *tls_tr;  /* TLS: the transport in its handshake */
};

static void
connect_free(struct weft_connect *c)
{
    if (c->tls != NULL)
        c->tls->ops->unref(c->tls);
    free(c->hostname);
    free(c->addrs);
    free(c->att);
    free(c);
}

static void
attempt_close(struct attempt *a)
{
    if (a->ev != NULL) {
        event_free(a->ev);
        a->ev = NULL;
    }
    if (a->fd >= 0) {
        close(a->fd);
        a->fd = -1;
    }
}

/* Stop everything in flight (timers, sockets, query). */
static void
stop_io(struct weft_connect *c)
{
    if (c->timer != NULL) {
        weft_handle_cancel(c->timer);
        c->timer = NULL;
    }
    if (c->stagger != NULL) {
        weft_handle_cancel(c->stagger);
        c->stagger = NULL;
    }
    for (size_t i = 0; i < c->natt; i++)
        attempt_close(&c->att[i]);
    c->inflight = 0;
    if (c->lookup != NULL) {
        weft_lookup_cancel(c->lookup);
        c->lookup = NULL;
    }
}

static void
deliver(struct weft_connect *c, struct weft_transport *tr, int error)
{
    c->done = true;
    c->cb(tr, error, c->cbarg);
    connect_free(c);
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

static void
on_tls_done(struct weft_transport *tr, int error, void *arg)
{
    struct weft_connect *c = arg;

    c->tls_tr = NULL;
    deliver(c, tr, error);
}

/* fd connected: close the other attempts and make the transport. */
static void
won(struct weft_connect *c, int fd)
{
    struct weft_protocol *proto;
    struct weft_transport *tr = NULL;
    int rc;

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

static void start_attempts(struct weft_connect *c);

static void
on_attempt(evutil_socket_t fd, short what, void *arg)
{
    struct attempt *a = arg;
    struct weft_connect *c = a->c;
    socklen_t l = sizeof(int);
    int err = 0;

    (void)what;
    event_free(a->ev);
    a->ev = NULL;
    c->inflight--;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
        err = errno;
    if (err == 0) {
        a->fd = -1;     /* the transport's, or closed in won() */
        won(c, fd);
        return;
    }
    attempt_close(a);
    c->last_error = -err;
    /* RFC 8305 section 5: a failure starts the next attempt at once */
    if (c->stagger != NULL) {
        weft_handle_cancel(c->stagger);
        c->stagger = NULL;
    }
    start_attempts(c);
}

static void
on_stagger(void *arg)
{
    struct weft_connect *c = arg;

    c->stagger = NULL;
    start_attempts(c);
}

/* Start connecting to addr; false (and last_error) if it failed at once. */
static bool
attempt_start(struct weft_connect *c, const struct weft__addr *addr)
{
    struct attempt *a = &c->att[c->natt++];
    int fd;

    *a = (struct attempt){ .c = c, .fd = -1 };
    if (c->local_len > 0 && c->local.ss_family != addr->ss.ss_family) {
        c->last_error = -EAFNOSUPPORT;
        return false;
    }
    fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->last_error = -errno;
        return false;
    }
    a->fd = fd;
    if ((c->local_len > 0 &&
         bind(fd, (const struct sockaddr *)&c->local, c->local_len) < 0) ||
        (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) < 0 &&
         errno != EINPROGRESS)) {
        c->last_error = -errno;
        attempt_close(a);
        return false;
    }
    /* Even a connect that succeeded at once is reported from the loop. */
    a->ev = event_new(weft_loop_get_base(c->loop), fd, EV_WRITE, on_attempt, a);
    if (a->ev == NULL || event_add(a->ev, NULL) < 0) {
        c->last_error = -ENOMEM;
        attempt_close(a);
        return false;
    }
    c->inflight++;
    return true;
}

/*
 * Start the next address (skipping those that fail at once) and arm the
 * stagger timer for the one after; fail when nothing is left in flight.
 */
static void
start_attempts(struct weft_connect *c)
{
    while (c->next < c->naddrs) {
        if (!attempt_start(c, &c->addrs[c->next++]))
            continue;
        if (c->next < c->naddrs && c->delay_ms != WEFT_HAPPY_EYEBALLS_OFF) {
            c->stagger = weft_call_later(c->loop, c->delay_ms, on_stagger, c);
            if (c->stagger == NULL) {
                conn_fail(c, -ENOMEM);
                return;
            }
        }
        return;
    }
    if (c->inflight == 0)
        conn_fail(c, c->last_error != 0 ? c->last_error : -ECONNREFUSED);
}

static void
on_timeout(void *arg)
{
    struct weft_connect *c = arg;

    c->timer = NULL;
    conn_fail(c, -ETIMEDOUT);
}

/*
 * RFC 8305 section 4. The sort first, by RFC 6724's default policy reduced
 * to families (IPv6 ranks above IPv4; evdns answers IPv4 first, where glibc's
 * getaddrinfo would have sorted): IPv6 leads when there is any. Then as
 * asyncio's _interleave_addrinfos: (first - 1) addresses of the leading
 * family, then one of each family in turn, each in the resolver's order.
 */
void
weft__addrs_interleave(struct weft__addr *addrs, size_t n, int first, struct weft__addr *tmp)
{
    size_t idx[2] = { 0, 0 }, out = 0;
    sa_family_t fam0;

    if (n < 2 || first <= 0)
        return;
    fam0 = addrs[0].ss.ss_family;
    for (size_t i = 0; i < n; i++)
        if (addrs[i].ss.ss_family == AF_INET6)
            fam0 = AF_INET6;
    memcpy(tmp, addrs, n * sizeof(*addrs));
    /* idx[k]: the next address of family k (0: fam0, 1: any other) to take */
    for (int taken = 0; taken < first - 1 && out < n; taken++) {
        while (idx[0] < n && tmp[idx[0]].ss.ss_family != fam0)
            idx[0]++;
        if (idx[0] == n)
            break;
        addrs[out++] = tmp[idx[0]++];
    }
    while (out < n) {
        for (int k = 0; k < 2 && out < n; k++) {
            while (idx[k] < n && (tmp[idx[k]].ss.ss_family == fam0) != (k == 0))
                idx[k]++;
            if (idx[k] < n)
                addrs[out++] = tmp[idx[k]++];
        }
    }
}

static void
on_resolved(int error, struct addrinfo *res, void *arg)
{
    struct weft_connect *c = arg;
    struct addrinfo *ai;
    size_t n = 0;

    c->lookup = NULL;
    if (error != 0) {
        conn_fail(c, error);
        return;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next)
        n++;
    c->addrs = calloc(2 * n, sizeof(*c->addrs));    /* the second half: interleave()'s */
    c->att = calloc(n, sizeof(*c->att));
    if (c->addrs == NULL || c->att == NULL) {
        weft_freeaddrinfo(res);
        conn_fail(c, -ENOMEM);
        return;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(struct sockaddr_storage) ||
            (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
            continue;
        memcpy(&c->addrs[c->naddrs].ss, ai->ai_addr, ai->ai_addrlen);
        c->addrs[c->naddrs++].len = (socklen_t)ai->ai_addrlen;
    }
    weft_freeaddrinfo(res);
    if (c->naddrs == 0) {
        conn_fail(c, -WEFT_ENONAME);
        return;
    }
    weft__addrs_interleave(c->addrs, c->naddrs, c->interleave, c->addrs + n);
    start_attempts(c);
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
    int rc = -ENOMEM;

    if (opts == NULL)
        opts = &defaults;
    if (opts->local_addr != NULL &&
        (opts->local_addrlen == 0 || opts->local_addrlen > sizeof(struct sockaddr_storage)))
        return -EINVAL;
    if (opts->interleave < WEFT_INTERLEAVE_NONE)
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
    c->in_create = true;
    c->delay_ms = opts->happy_eyeballs_delay_ms != 0 ? opts->happy_eyeballs_delay_ms
                                                     : WEFT_HAPPY_EYEBALLS_DELAY_DEFAULT;
    if (opts->interleave > 0)
        c->interleave = opts->interleave;
    else if (opts->interleave == 0 && c->delay_ms != WEFT_HAPPY_EYEBALLS_OFF)
        c->interleave = 1;
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
            goto fail;
    }
    if (addr != NULL || weft__addr_numeric(host, port, &numeric)) {
        c->addrs = malloc(sizeof(*c->addrs));
        c->att = calloc(1, sizeof(*c->att));
        if (c->addrs == NULL || c->att == NULL)
            goto fail;
        c->addrs[0] = addr != NULL ? *addr : numeric;
        c->naddrs = 1;
        start_attempts(c);
    } else {
        struct addrinfo hints = {
            .ai_family = AF_UNSPEC,
            .ai_socktype = SOCK_STREAM,
            .ai_protocol = IPPROTO_TCP,
        };
        char service[8];

        snprintf(service, sizeof(service), "%u", port);
        rc = weft_getaddrinfo_cb(loop, host, service, &hints, on_resolved, c, &c->lookup);
        if (rc < 0)
            goto fail;
    }
    c->in_create = false;
    if (c->deferred) {
        c->defer = weft_call_soon(loop, deliver_deferred, c);
        if (c->defer == NULL) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    if (out != NULL)
        *out = c;
    return 0;
fail:
    c->in_create = false;
    stop_io(c);
    connect_free(c);
    return rc;
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
    connect_free(c);
}
