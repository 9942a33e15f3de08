/* SPDX-License-Identifier: MIT */
/* open_connection.c: weft_open_connection and weft_open_unix_connection: a connect, from a task. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <weft/error.h>
#include <weft/future.h>
#include <weft/loop.h>
#include <weft/server.h>
#include <weft/task.h>
#include <weft/tls.h>
#include <weft/transport.h>

#include "net/transport-int.h"
#include "streams/stream-int.h"

#define TIMEOUT_DEFAULT_MS 60000

/* The factory weft_create_connection() calls: a client stream. */
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

/*
 * The task waits for weft_create_connection(), which resolves, runs happy
 * eyeballs and the TLS handshake; net/connect.c reports here.
 */
struct conn_wait {
    struct weft_future *f;
    struct weft_transport *tr;
    int error;
    bool done;
};

static void
on_connected(struct weft_transport *tr, int error, void *arg)
{
    struct conn_wait *cw = arg;

    cw->done = true;
    cw->tr = tr;
    cw->error = error;
    if (!weft_future_done(cw->f))
        weft_future_set_result(cw->f, 0);
}

/*
 * Common to both: cw->f is new and the connect started (c its handle). Await it,
 * then hand the stream's reader and writer over. Returns 0 or a negative code,
 * and nothing is left open on failure.
 */
static int
await_streams(struct conn_wait *cw, struct weft_connect *c, struct weft_reader **r,
              struct weft_writer **w)
{
    struct weft_stream *s;
    int rc = (int)weft_await(cw->f);

    weft_future_unref(cw->f);
    if (!cw->done) {
        weft_connect_cancel(c);     /* the task was cancelled: nothing is left open */
        return rc < 0 ? rc : -ECANCELED;
    }
    if (cw->error < 0)
        return cw->error;
    if (rc < 0) {
        weft_transport_abort(cw->tr);   /* connected, but the task was cancelled */
        return rc;
    }
    s = (struct weft_stream *)weft_transport_get_protocol(cw->tr);
    s->refs++;                      /* the caller's */
    s->flags |= S_USER;
    *r = &s->r;
    *w = &s->w;
    return 0;
}

/* What both opens take from the stream options (checked by the caller). */
static void
common_options(const struct weft_stream_options *opts, struct weft_connect_options *co)
{
    co->timeout_ms = TIMEOUT_DEFAULT_MS;
    if (opts == NULL)
        return;
    if (opts->connect_timeout_ms > 0)
        co->timeout_ms = opts->connect_timeout_ms;
    co->local_addr = opts->local_addr;
    co->local_addrlen = opts->local_addrlen;
    co->tls = (struct weft_tls_context *)opts->tls;
    co->server_hostname = opts->server_hostname;
}

/* The connect was started (rc 0, c) or refused (rc < 0, cw's future dropped). */
static int
started(struct conn_wait *cw, int rc, struct weft_connect *c, struct weft_reader **r,
        struct weft_writer **w)
{
    if (rc < 0) {
        weft_future_unref(cw->f);
        return rc;
    }
    return await_streams(cw, c, r, w);
}

int
weft_open_connection(const char *host, uint16_t port, const struct weft_stream_options *opts,
                     struct weft_reader **r, struct weft_writer **w)
{
    struct weft_connect_options co = WEFT_CONNECT_OPTIONS_INIT;
    struct weft_task *cur = weft_task_current();
    struct conn_wait cw = { 0 };
    struct weft_connect *c = NULL;
    struct weft_loop *loop;
    struct client_args ca;
    int rc;

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
        if (opts->tls != NULL &&
            !weft_tls_context_is_client((struct weft_tls_context *)opts->tls))
            return -EINVAL;
        co.happy_eyeballs_delay_ms = opts->happy_eyeballs_ms;
        co.interleave = opts->interleave;
    }
    common_options(opts, &co);
    loop = weft_future_loop(weft_task_future(cur));
    cw.f = weft_future_new(loop);
    if (cw.f == NULL)
        return -ENOMEM;
    /* ca lives on this stack: the connect is over or cancelled before we return */
    rc = weft_create_connection(loop, client_factory, &ca, host, port, &co, on_connected, &cw,
                                &c);
    return started(&cw, rc, c, r, w);
}

int
weft_open_unix_connection(const char *path, const struct weft_stream_options *opts,
                          struct weft_reader **r, struct weft_writer **w)
{
    struct weft_connect_options co = WEFT_CONNECT_OPTIONS_INIT;
    struct weft_task *cur = weft_task_current();
    struct conn_wait cw = { 0 };
    struct weft_connect *c = NULL;
    struct weft_loop *loop;
    struct client_args ca;
    struct sockaddr_un sun;
    socklen_t len;
    int rc;

    if (r == NULL || w == NULL)
        return -EINVAL;
    *r = NULL;
    *w = NULL;
    rc = weft__unix_addr(path, &sun, &len);
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
        if (opts->tls != NULL && (opts->server_hostname == NULL ||
                                  !weft_tls_context_is_client((struct weft_tls_context *)opts->tls)))
            return -EINVAL;         /* no host name to check the certificate against */
    }
    common_options(opts, &co);
    loop = weft_future_loop(weft_task_future(cur));
    cw.f = weft_future_new(loop);
    if (cw.f == NULL)
        return -ENOMEM;
    rc = weft__connect_addr(loop, client_factory, &ca, (const struct sockaddr *)&sun, len,
                            co.server_hostname, &co, on_connected, &cw, &c);
    return started(&cw, rc, c, r, w);
}
