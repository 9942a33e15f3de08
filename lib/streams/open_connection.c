/* SPDX-License-Identifier: MIT */
/* open_connection.c: weft_open_connection: evdns, then happy eyeballs (RFC 8305) from a task. */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include <weft/error.h>
#include <weft/future.h>
#include <weft/loop.h>
#include <weft/task.h>
#include <weft/transport.h>

#include "streams/stream-int.h"
#include "tls/tls-int.h"
#include "net/transport-int.h"

#define MAX_ADDRS 16
#define TIMEOUT_DEFAULT_MS 60000

/*
 * An evdns query outlives a task that gives up on it: evdns_getaddrinfo_cancel()
 * still calls back (with EVUTIL_EAI_CANCEL), so the query's state is on the
 * heap and whoever is last, the task or the callback, frees it.
 */
struct query {
    struct weft_future *f;
    struct evdns_getaddrinfo_request *req;
    struct evutil_addrinfo *res;
    int result;
    bool answered, abandoned;
};

static void
query_free(struct query *q)
{
    if (q->res != NULL)
        evutil_freeaddrinfo(q->res);
    weft_future_unref(q->f);
    free(q);
}

static void
on_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
    struct query *q = arg;

    q->answered = true;
    q->req = NULL;
    q->result = result;
    q->res = res;
    if (q->abandoned) {
        query_free(q);
        return;
    }
    if (!weft_future_done(q->f))
        weft_future_set_result(q->f, 0);
}




/*
 * Resolve host into addrs (at most MAX_ADDRS), interleaved by family as
 * RFC 8305 section 4 asks, the first answer's family first. Returns the count
 * or a negative code.
 */
static int
resolve(struct weft_loop *loop, const char *host, uint16_t port, int64_t timeout_ms,
        struct weft__addr *addrs)
{
    struct evutil_addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP,
    };
    struct weft__addr fam[2][MAX_ADDRS];
    size_t nfam[2] = { 0, 0 }, n = 0;
    struct evdns_base *dns;
    struct query *q;
    char service[8];
    int first = -1;
    intptr_t rc;

    if (weft__addr_numeric(host, port, &addrs[0]))
        return 1;
    if (weft__host_is_invalid(host))
        return -WEFT_ENONAME;
    dns = weft__loop_dns(loop);
    q = calloc(1, sizeof(*q));
    if (dns == NULL || q == NULL || (q->f = weft_future_new(loop)) == NULL) {
        free(q);
        return -ENOMEM;
    }
    snprintf(service, sizeof(service), "%u", port);
    /* Answers from /etc/hosts come back inside this call. */
    q->req = evdns_getaddrinfo(dns, host, service, &hints, on_resolved, q);
    if (q->answered)
        q->req = NULL;
    rc = q->answered ? 0 : weft_wait_for(q->f, timeout_ms);
    if (!q->answered) {
        q->abandoned = true;        /* the callback frees q */
        if (q->req != NULL)
            evdns_getaddrinfo_cancel(q->req);
        return rc < 0 ? (int)rc : -ETIMEDOUT;
    }
    if (q->result != 0) {
        rc = weft__eai_error(q->result);
        query_free(q);
        return (int)rc;
    }
    for (struct evutil_addrinfo *ai = q->res; ai != NULL; ai = ai->ai_next) {
        int k;

        if (ai->ai_addrlen > sizeof(struct sockaddr_storage) ||
            (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
            continue;
        if (first < 0)
            first = ai->ai_family;
        k = ai->ai_family == first ? 0 : 1;
        if (nfam[k] < MAX_ADDRS) {
            memcpy(&fam[k][nfam[k]].ss, ai->ai_addr, ai->ai_addrlen);
            fam[k][nfam[k]++].len = (socklen_t)ai->ai_addrlen;
        }
    }
    query_free(q);
    for (size_t i = 0; n < MAX_ADDRS && (i < nfam[0] || i < nfam[1]); i++)
        for (int k = 0; k < 2; k++)
            if (i < nfam[k] && n < MAX_ADDRS)
                addrs[n++] = fam[k][i];
    return n > 0 ? (int)n : -WEFT_ENONAME;
}

/* ---- happy eyeballs ---- */

struct eyeballs;

struct attempt {
    struct eyeballs *he;
    struct event *ev;
    int fd;
    int err;            /* SO_ERROR once done */
    bool done;
};

/* Lives on the connecting task's stack: every event is gone before it returns. */
struct eyeballs {
    struct weft_loop *loop;
    struct weft_future *kick;           /* completed by whatever happens next */
    struct weft_handle *stagger, *deadline;
    struct attempt a[MAX_ADDRS];
    size_t started;
    bool stagger_fired, timed_out;
};

static void
kick(struct eyeballs *he)
{
    if (he->kick != NULL && !weft_future_done(he->kick))
        weft_future_set_result(he->kick, 0);
}

static void
on_attempt(evutil_socket_t fd, short what, void *arg)
{
    struct attempt *a = arg;
    socklen_t l = sizeof(a->err);

    (void)what;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &a->err, &l) < 0)
        a->err = errno;
    a->done = true;
    kick(a->he);
}

static void
on_stagger(void *arg)
{
    struct eyeballs *he = arg;

    he->stagger = NULL;
    he->stagger_fired = true;
    kick(he);
}

static void
on_deadline(void *arg)
{
    struct eyeballs *he = arg;

    he->deadline = NULL;
    he->timed_out = true;
    kick(he);
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

/* Start connecting to addr; a failure now is recorded as a finished attempt. */
static void
attempt_start(struct eyeballs *he, const struct weft__addr *addr, const struct weft_stream_options *o)
{
    struct attempt *a = &he->a[he->started++];
    int fd;

    *a = (struct attempt){ .he = he, .fd = -1 };
    fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto failed;
    a->fd = fd;
    if (o != NULL && o->local_addr != NULL) {
        if (o->local_addr->sa_family != addr->ss.ss_family) {
            errno = EAFNOSUPPORT;
            goto failed;
        }
        if (bind(fd, o->local_addr, o->local_addrlen) < 0)
            goto failed;
    }
    if (connect(fd, (const struct sockaddr *)&addr->ss, addr->len) == 0) {
        a->done = true;             /* connected at once (a local socket) */
        return;
    }
    if (errno != EINPROGRESS)
        goto failed;
    a->ev = event_new(weft_loop_get_base(he->loop), fd, EV_WRITE, on_attempt, a);
    if (a->ev == NULL || event_add(a->ev, NULL) < 0) {
        errno = ENOMEM;
        goto failed;
    }
    return;
failed:
    a->err = errno;
    a->done = true;
    attempt_close(a);
}

/* Connect to one of addrs; returns the connected fd or a negative code. */
static int
eyeballs(struct weft_loop *loop, const struct weft__addr *addrs, size_t n, uint64_t delay_ms,
         uint64_t deadline_ms, const struct weft_stream_options *o)
{
    struct eyeballs he = { .loop = loop };
    size_t next = 0;
    int last_err = 0, fd = -1;
    intptr_t rc = 0;

    if (deadline_ms > 0) {
        he.deadline = weft_call_later(loop, deadline_ms, on_deadline, &he);
        if (he.deadline == NULL)
            return -ENOMEM;
    }
    for (;;) {
        size_t inflight = 0;

        for (size_t i = 0; i < he.started && fd < 0; i++) {
            struct attempt *a = &he.a[i];

            if (!a->done) {
                inflight += a->fd >= 0;
                continue;
            }
            if (a->fd < 0)
                continue;           /* failed and already counted */
            if (a->err == 0) {
                fd = a->fd;         /* the winner */
                a->fd = -1;
            } else {
                last_err = -a->err;
                attempt_close(a);
            }
        }
        if (fd >= 0)
            break;
        for (size_t i = 0; i < he.started; i++)
            if (he.a[i].done && he.a[i].fd < 0 && he.a[i].err != 0)
                last_err = -he.a[i].err;
        if (he.timed_out) {
            rc = -ETIMEDOUT;
            break;
        }
        /* The next address: at once when nothing is in flight, else after the delay. */
        if (next < n && (inflight == 0 || he.stagger_fired)) {
            he.stagger_fired = false;
            if (he.stagger != NULL) {
                weft_handle_cancel(he.stagger);
                he.stagger = NULL;
            }
            attempt_start(&he, &addrs[next++], o);
            continue;
        }
        if (inflight == 0) {
            rc = last_err != 0 ? last_err : -ECONNREFUSED;
            break;
        }
        if (next < n && he.stagger == NULL) {
            he.stagger = weft_call_later(loop, delay_ms, on_stagger, &he);
            if (he.stagger == NULL) {
                rc = -ENOMEM;
                break;
            }
        }
        he.kick = weft_future_new(loop);
        if (he.kick == NULL) {
            rc = -ENOMEM;
            break;
        }
        rc = weft_await(he.kick);
        weft_future_unref(he.kick);
        he.kick = NULL;
        if (rc < 0)
            break;
    }
    for (size_t i = 0; i < he.started; i++)
        attempt_close(&he.a[i]);
    if (he.stagger != NULL)
        weft_handle_cancel(he.stagger);
    if (he.deadline != NULL)
        weft_handle_cancel(he.deadline);
    return fd >= 0 ? fd : (int)rc;
}

/* The factory weft_connect_accepted_socket() calls: a client stream. */
struct client_args {
    uint32_t limit, high, low;
};

static struct weft_protocol *
client_factory(void *arg)
{
    const struct client_args *ca = arg;
    struct weft_stream *s = weft__stream_new(ca->limit, ca->high, ca->low);

    return s != NULL ? &s->base : NULL;
}

/* TLS: wait in the task for the handshake, which tls_transport.c reports here. */
struct tls_wait {
    struct weft_future *f;
    struct weft_transport *tr;
    int error;
    bool done;
};

static void
on_tls_done(struct weft_transport *tr, int error, void *arg)
{
    struct tls_wait *tw = arg;

    tw->done = true;
    tw->tr = tr;
    tw->error = error;
    if (!weft_future_done(tw->f))
        weft_future_set_result(tw->f, 0);
}

/* Takes fd (closed on failure). Returns 0 and *out, or a negative code. */
static int
tls_connect(struct weft_loop *loop, int fd, const char *host,
            const struct weft_stream_options *opts, struct client_args *ca,
            struct weft_transport **out)
{
    struct weft_tls_context *ctx = (struct weft_tls_context *)opts->tls;
    const char *name = opts->server_hostname != NULL ? opts->server_hostname : host;
    struct tls_wait tw = { 0 };
    struct weft_transport *tr = NULL;
    int rc;

    if (!weft_tls_context_is_client(ctx)) {
        close(fd);
        return -EINVAL;
    }
    tw.f = weft_future_new(loop);
    if (tw.f == NULL) {
        close(fd);
        return -ENOMEM;
    }
    rc = weft__transport_new_tls(loop, fd, ctx, name, client_factory, ca, NULL, on_tls_done,
                                 &tw, &tr);
    if (rc < 0) {
        close(fd);
        weft_future_unref(tw.f);
        return rc;
    }
    rc = weft_await(tw.f);
    weft_future_unref(tw.f);
    if (!tw.done) {
        weft__tls_cancel(tr);       /* cancelled in the handshake: on_tls_done never runs */
        return rc < 0 ? rc : -ECANCELED;
    }
    if (tw.error < 0)
        return tw.error;            /* the transport is gone */
    if (rc < 0) {
        weft_transport_abort(tw.tr);    /* connected, but the task was cancelled */
        return rc;
    }
    *out = tw.tr;
    return 0;
}

/*
 * A connected fd (taken, closed on failure) made a stream client, over TLS
 * if opts asks (host: the name to check when opts->server_hostname is NULL):
 * *r and *w are the caller's. Returns 0 or a negative code.
 */
static int
streams_over(struct weft_loop *loop, int fd, const char *host,
             const struct weft_stream_options *opts, struct client_args *ca,
             struct weft_reader **r, struct weft_writer **w)
{
    struct weft_transport *tr = NULL;
    struct weft_stream *s;
    int rc;

    /* takes fd on success only */
    if (opts != NULL && opts->tls != NULL) {
        rc = tls_connect(loop, fd, host, opts, ca, &tr);
        if (rc < 0)
            return rc;              /* fd is closed */
    } else {
        rc = weft_connect_accepted_socket(loop, client_factory, ca, fd, &tr);
    }
    if (rc < 0) {
        close(fd);
        return rc;
    }
    s = (struct weft_stream *)weft_transport_get_protocol(tr);
    s->refs++;                      /* the caller's */
    s->flags |= S_USER;
    *r = &s->r;
    *w = &s->w;
    return 0;
}

int
weft_open_connection(const char *host, uint16_t port, const struct weft_stream_options *opts,
                     struct weft_reader **r, struct weft_writer **w)
{
    struct weft_task *cur = weft_task_current();
    struct weft_loop *loop;
    struct client_args ca;
    uint64_t timeout = TIMEOUT_DEFAULT_MS, delay = WEFT_HAPPY_EYEBALLS_DELAY_DEFAULT, t0;
    int64_t left;
    struct weft__addr *addrs;
    int n, fd, rc;

    if (host == NULL || host[0] == '\0' || r == NULL || w == NULL)
        return -EINVAL;
    *r = NULL;
    *w = NULL;
    if (cur == NULL)
        return -WEFT_ENOTASK;
    rc = weft__stream_opts(opts, &ca.limit, &ca.high, &ca.low);
    if (rc < 0)
        return rc;
    if (opts != NULL) {
        if (opts->local_addr != NULL && (opts->local_addrlen == 0 ||
                                         opts->local_addrlen > sizeof(struct sockaddr_storage)))
            return -EINVAL;
        if (opts->connect_timeout_ms > 0)
            timeout = opts->connect_timeout_ms;
        if (opts->happy_eyeballs_ms > 0)
            delay = opts->happy_eyeballs_ms;
    }
    loop = weft_future_loop(weft_task_future(cur));
    t0 = weft_loop_time(loop);
    addrs = malloc(MAX_ADDRS * sizeof(*addrs));     /* keeps the task's frame small */
    if (addrs == NULL)
        return -ENOMEM;
    n = resolve(loop, host, port, (int64_t)timeout, addrs);
    if (n < 0) {
        free(addrs);
        return n;
    }
    left = (int64_t)(t0 + timeout) - (int64_t)weft_loop_time(loop);
    fd = left > 0 ? eyeballs(loop, addrs, (size_t)n, delay, (uint64_t)left, opts) : -ETIMEDOUT;
    free(addrs);
    if (fd < 0)
        return fd;
    return streams_over(loop, fd, host, opts, &ca, r, w);
}

int
weft_open_unix_connection(const char *path, const struct weft_stream_options *opts,
                          struct weft_reader **r, struct weft_writer **w)
{
    struct weft_task *cur = weft_task_current();
    struct weft_loop *loop;
    struct client_args ca;
    struct sockaddr_un sun;
    struct weft__addr addr;
    uint64_t timeout = TIMEOUT_DEFAULT_MS;
    int fd, rc;

    if (r == NULL || w == NULL)
        return -EINVAL;
    *r = NULL;
    *w = NULL;
    rc = weft__unix_addr(path, &sun, &addr.len);
    if (rc < 0)
        return rc;
    if (cur == NULL)
        return -WEFT_ENOTASK;
    rc = weft__stream_opts(opts, &ca.limit, &ca.high, &ca.low);
    if (rc < 0)
        return rc;
    if (opts != NULL) {
        if (opts->local_addr != NULL && (opts->local_addr->sa_family != AF_UNIX ||
                                         opts->local_addrlen > sizeof(struct sockaddr_un)))
            return -EINVAL;
        if (opts->tls != NULL && opts->server_hostname == NULL)
            return -EINVAL;         /* no host name to check the certificate against */
        if (opts->connect_timeout_ms > 0)
            timeout = opts->connect_timeout_ms;
    }
    memset(&addr.ss, 0, sizeof(addr.ss));
    memcpy(&addr.ss, &sun, sizeof(sun));
    loop = weft_future_loop(weft_task_future(cur));
    fd = eyeballs(loop, &addr, 1, WEFT_HAPPY_EYEBALLS_DELAY_DEFAULT, timeout, opts);
    if (fd < 0)
        return fd;
    return streams_over(loop, fd, NULL, opts, &ca, r, w);
}
