/* SPDX-License-Identifier: MIT */
/* stream_server.c: start_server and the stream factory: a handler task per connection. */
#include <errno.h>
#include <stdlib.h>

#include <weft/error.h>
#include <weft/future.h>
#include <weft/loop.h>
#include <weft/server.h>
#include <weft/task.h>

#include "streams/stream-int.h"
#include "coro/task-int.h"

#define GRACE_DEFAULT_MS 5000

struct weft_stream_server {
    struct weft_stream_factory home;    /* first: freed with the home's last reference */
    struct weft_loop *loop;
    struct weft_server *server;         /* NULL once freed */
    struct weft_future *closed_f;       /* serve_forever: done at close */
    struct weft_future *done_f;         /* wait_closed: done when closed and no handler runs */
    struct weft_handle *grace;          /* cancels the handlers left after close */
    bool closing;
};


/* Await *fp (made on first use), shared by every waiter. */
static int
await_shared(struct weft_loop *loop, struct weft_future **fp)
{
    struct weft_future *f;
    intptr_t rc;

    if (weft_task_current() == NULL)
        return -WEFT_ENOTASK;
    if (*fp == NULL && (*fp = weft_future_new(loop)) == NULL)
        return -ENOMEM;
    f = weft_future_ref(*fp);
    rc = weft_await(f);
    weft_future_unref(f);
    return rc < 0 ? (int)rc : 0;
}

static int
home_init(struct weft_stream_factory *h, weft_client_cb *client, void *arg,
          const struct weft_stream_options *opts)
{
    int rc;

    if (client == NULL)
        return -EINVAL;
    rc = weft__stream_opts(opts, &h->limit, &h->high, &h->low);
    if (rc < 0)
        return rc;
    h->client = client;
    h->arg = arg;
    h->refs = 1;
    h->stack_size = opts != NULL ? opts->stack_size : 0;
    h->grace_ms = opts != NULL && opts->grace_ms > 0 ? opts->grace_ms : GRACE_DEFAULT_MS;
    return 0;
}

struct weft_stream_factory *
weft_stream_factory_new(weft_client_cb *client, void *arg,
                        const struct weft_stream_options *opts)
{
    struct weft_stream_factory *h = calloc(1, sizeof(*h));
    int rc;

    if (h == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    rc = home_init(h, client, arg, opts);
    if (rc < 0) {
        free(h);
        errno = -rc;
        return NULL;
    }
    return h;
}

struct weft_protocol *
weft_stream_factory(void *factory)
{
    struct weft_stream_factory *h = factory;
    struct weft_stream *s = weft__stream_new(h->limit, h->high, h->low);

    if (s == NULL)
        return NULL;
    s->home = h;
    h->refs++;
    return &s->base;
}

void
weft_stream_factory_free(struct weft_stream_factory *f)
{
    if (f != NULL)
        weft__home_unref(f);
}

/* ---- servers ---- */

static void handler_done(struct weft_stream_factory *h);

static int
server_new(struct weft_loop *loop, weft_client_cb *client, void *arg,
           const struct weft_stream_options *opts, struct weft_stream_server **out)
{
    struct weft_stream_server *ss;
    int rc;

    if (loop == NULL || out == NULL)
        return -EINVAL;
    ss = calloc(1, sizeof(*ss));
    if (ss == NULL)
        return -ENOMEM;
    rc = home_init(&ss->home, client, arg, opts);
    if (rc < 0) {
        free(ss);
        return rc;
    }
    ss->home.handler_done = handler_done;
    ss->loop = loop;
    *out = ss;
    return 0;
}

/* The server options to use: opts->server, with opts->tls when that is set. */
static const struct weft_server_options *
server_opts(const struct weft_stream_options *opts, struct weft_server_options *buf)
{
    static const struct weft_server_options defaults = WEFT_SERVER_OPTIONS_INIT;

    if (opts == NULL)
        return NULL;
    if (opts->tls == NULL)
        return opts->server;
    *buf = opts->server != NULL ? *opts->server : defaults;
    buf->tls = (struct weft_tls_context *)opts->tls;
    return buf;
}

/* The server's listeners are made (rc 0: *out = ss) or not (ss is freed). */
static int
server_started(struct weft_stream_server *ss, int rc, struct weft_stream_server **out)
{
    if (rc < 0) {
        free(ss);
        return rc;
    }
    *out = ss;
    return 0;
}

/* Where a server listens: host and port, a Unix path, or sockets bound already (bound: fds). */
struct where {
    const char *host;
    uint16_t port;
    const char *path;
    bool bound;
    const int *fds;
    size_t nfds;
};

static int
start(struct weft_loop *loop, weft_client_cb *client, void *arg, const struct where *w,
      const struct weft_stream_options *opts, struct weft_stream_server **out)
{
    struct weft_stream_server *ss;
    struct weft_server_options so;
    int rc = server_new(loop, client, arg, opts, &ss);

    if (rc < 0)
        return rc;
    if (w->bound)           /* takes the fds on success only */
        rc = weft_create_server_fds(loop, weft_stream_factory, &ss->home, w->fds, w->nfds,
                                    server_opts(opts, &so), &ss->server);
    else if (w->path != NULL)
        rc = weft_create_unix_server(loop, weft_stream_factory, &ss->home, w->path,
                                     server_opts(opts, &so), &ss->server);
    else
        rc = weft_create_server(loop, weft_stream_factory, &ss->home, w->host, w->port,
                                server_opts(opts, &so), &ss->server);
    return server_started(ss, rc, out);
}

int
weft_start_server(struct weft_loop *loop, weft_client_cb *client, void *arg, const char *host,
                  uint16_t port, const struct weft_stream_options *opts,
                  struct weft_stream_server **out)
{
    return start(loop, client, arg, &(struct where){ .host = host, .port = port }, opts, out);
}

int
weft_start_unix_server(struct weft_loop *loop, weft_client_cb *client, void *arg,
                       const char *path, const struct weft_stream_options *opts,
                       struct weft_stream_server **out)
{
    if (path == NULL)
        return -EINVAL;
    return start(loop, client, arg, &(struct where){ .path = path }, opts, out);
}

int
weft_start_server_fds(struct weft_loop *loop, weft_client_cb *client, void *arg,
                      const int *fds, size_t nfds, const struct weft_stream_options *opts,
                      struct weft_stream_server **out)
{
    return start(loop, client, arg, &(struct where){ .bound = true, .fds = fds, .nfds = nfds },
                 opts, out);
}

/* One of the server's handlers returned (weft_stream_factory.handler_done). */
static void
handler_done(struct weft_stream_factory *h)
{
    struct weft_stream_server *ss = (struct weft_stream_server *)h;    /* home is first */

    if (ss->closing && ss->home.count == 0) {
        if (ss->grace != NULL) {
            weft_handle_cancel(ss->grace);
            ss->grace = NULL;
        }
        weft__future_finish(&ss->done_f, 0);
    }
}

static void
grace_over(void *arg)
{
    struct weft_stream_server *ss = arg;

    ss->grace = NULL;
    weft__stream_cancel_handlers(ss->loop, &ss->home);
}

void
weft_stream_server_close(struct weft_stream_server *ss)
{
    if (ss->closing)
        return;
    ss->closing = true;
    if (ss->server != NULL)
        weft_server_close(ss->server);
    weft__future_finish(&ss->closed_f, 0);
    if (ss->home.count == 0) {
        weft__future_finish(&ss->done_f, 0);
        return;
    }
    ss->grace = weft_call_later(ss->loop, ss->home.grace_ms, grace_over, ss);
    if (ss->grace == NULL)
        weft__stream_cancel_handlers(ss->loop, &ss->home);     /* no memory to wait */
}

int
weft_stream_server_serve_forever(struct weft_stream_server *ss)
{
    int rc;

    if (ss->closing)
        return 0;
    rc = await_shared(ss->loop, &ss->closed_f);
    if (rc == -ECANCELED)
        weft_stream_server_close(ss);
    return rc;
}

int
weft_stream_server_wait_closed(struct weft_stream_server *ss)
{
    if (ss->closing && ss->home.count == 0)
        return 0;
    return await_shared(ss->loop, &ss->done_f);
}

void
weft_stream_server_close_clients(struct weft_stream_server *ss)
{
    if (ss->server != NULL)
        weft_server_close_clients(ss->server);
}

void
weft_stream_server_abort_clients(struct weft_stream_server *ss)
{
    if (ss->server != NULL)
        weft_server_abort_clients(ss->server);
}

bool
weft_stream_server_is_serving(const struct weft_stream_server *ss)
{
    return ss->server != NULL && weft_server_is_serving(ss->server);
}

size_t
weft_stream_server_client_count(const struct weft_stream_server *ss)
{
    return ss->home.count;
}

size_t
weft_stream_server_socket_count(const struct weft_stream_server *ss)
{
    return ss->server != NULL ? weft_server_socket_count(ss->server) : 0;
}

int
weft_stream_server_get_sockname(const struct weft_stream_server *ss, size_t i,
                                struct sockaddr *addr, socklen_t *len)
{
    return ss->server != NULL ? weft_server_get_sockname(ss->server, i, addr, len) : -ENOENT;
}

void
weft_stream_server_free(struct weft_stream_server *ss)
{
    if (ss == NULL)
        return;
    weft_stream_server_close(ss);
    if (ss->grace != NULL) {
        weft_handle_cancel(ss->grace);
        ss->grace = NULL;
    }
    /* Aborts the connections: their connection_lost runs now and wakes the handlers. */
    weft_server_free(ss->server);
    ss->server = NULL;
    weft__stream_cancel_handlers(ss->loop, &ss->home);
    weft__future_finish(&ss->done_f, -ECANCELED);
    weft__home_unref(&ss->home);
}
