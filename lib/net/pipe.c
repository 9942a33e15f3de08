/* SPDX-License-Identifier: MIT */
/* pipe.c: the pipe flavours of transport: read() and write() on one end of a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include <weft/pipe.h>

#include "net/transport-int.h"

/*
 * Two flavours, as asyncio's _UnixReadPipeTransport and
 * _UnixWritePipeTransport: a pipe has one direction. Neither needs a
 * bufferevent: one evbuffer (the input, or the write queue) and the events
 * below, embedded. connection_lost is delivered as the socket flavour does
 * it, by activating an event (ev_lost) that cannot fail, never from inside a
 * transport method.
 *
 * A write end learns that its reader went without writing: the kernel
 * reports EPOLLERR on it, which libevent turns into EV_READ (ev_hup, on
 * FIFOs only: on a socket EV_READ means data). write(2) on a pipe has no
 * MSG_NOSIGNAL, so SIGPIPE is blocked around it (write_nosigpipe).
 */

#define READ_CHUNK (64u * 1024)     /* a pipe's default capacity */
#define WRITE_IOV 64

struct pipe_tr {
    struct weft_transport base;     /* first: bev NULL, fd the pipe's end */
    struct evbuffer *buf;           /* read: what was read; write: what is queued */
    struct event ev_io;             /* EV_READ (read end) or EV_WRITE (write end) */
    struct event ev_hup;            /* write end of a FIFO: the reader went */
    struct event ev_lost;           /* activated to deliver connection_lost */
    bool hup_armed;
};

#define P(tr) ((struct pipe_tr *)(void *)(tr))

static void
lost_soon(struct weft_transport *tr, int err)
{
    struct pipe_tr *p = P(tr);

    if (tr->flags & (TR_LOST_PENDING | TR_LOST))
        return;
    tr->flags |= TR_CLOSING | TR_LOST_PENDING;
    tr->error = err;
    event_del(&p->ev_io);
    if (p->hup_armed)
        event_del(&p->ev_hup);
    event_active(&p->ev_lost, EV_TIMEOUT, 1);
}

static void
pipe_free(struct pipe_tr *p)
{
    event_del(&p->ev_io);
    event_del(&p->ev_lost);
    if (p->hup_armed)
        event_del(&p->ev_hup);
    close(p->base.fd);
    evbuffer_free(p->buf);
    free(p);
}

static void
deliver_lost(struct weft_transport *tr)
{
    weft__transport_notify_lost(tr);
    pipe_free(P(tr));
}

static void
on_lost(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    deliver_lost(arg);
}

/* ---- read end ---- */

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct weft_transport *tr = arg;
    struct pipe_tr *p = P(tr);
    const struct weft_protocol_ops *ops;
    struct evbuffer_iovec vec[2];
    ssize_t n;
    int nvec;

    (void)what;
    if (tr->flags & (TR_READ_PAUSED | TR_CLOSING))
        return;
    tr->flags |= TR_ACTIVE;     /* for weft_transport_set_idle_timeout() */
    nvec = evbuffer_reserve_space(p->buf, READ_CHUNK, vec, 2);
    if (nvec <= 0) {
        weft__transport_failed(tr, "cannot allocate the read buffer", -ENOMEM);
        return;
    }
    do
        n = readv(fd, (struct iovec *)vec, nvec);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int rc = -errno;

        evbuffer_commit_space(p->buf, vec, 0);
        if (rc != -EAGAIN && rc != -EWOULDBLOCK)
            lost_soon(tr, rc);
        return;
    }
    if (n == 0) {
        evbuffer_commit_space(p->buf, vec, 0);
        tr->flags |= TR_EOF_RCVD;
        event_del(&p->ev_io);
        ops = weft__proto_ops(tr);
        if (ops != NULL && ops->eof_received != NULL) {
            tr->in_cb++;
            (void)ops->eof_received(tr->proto);     /* a pipe has no half-close */
            tr->in_cb--;
        }
        lost_soon(tr, 0);
        return;
    }
    {
        size_t left = (size_t)n;
        int used = 0;

        for (; used < nvec && left > 0; used++) {
            if (vec[used].iov_len > left)
                vec[used].iov_len = left;
            left -= vec[used].iov_len;
        }
        evbuffer_commit_space(p->buf, vec, used);
    }
    (void)weft__transport_data(tr, p->buf);
}

static int
no_write(struct weft_transport *tr, const void *data, size_t len)
{
    (void)tr;
    (void)data;
    (void)len;
    return -ENOTSUP;
}

static int
no_write_buffer(struct weft_transport *tr, struct evbuffer *buf)
{
    (void)tr;
    (void)buf;
    return -ENOTSUP;
}

static int
no_writelines(struct weft_transport *tr, const struct iovec *iov, int iovcnt)
{
    (void)tr;
    (void)iov;
    (void)iovcnt;
    return -ENOTSUP;
}

static void
rd_close(struct weft_transport *tr)
{
    lost_soon(tr, 0);
}

static void
pipe_abort(struct weft_transport *tr)
{
    struct pipe_tr *p = P(tr);

    evbuffer_drain(p->buf, evbuffer_get_length(p->buf));  /* the queue, or unread input */
    lost_soon(tr, 0);
}

static bool
pipe_abort_now(struct weft_transport *tr)
{
    weft_transport_abort(tr);
    if (tr->in_cb != 0)
        return false;
    event_del(&P(tr)->ev_lost);
    deliver_lost(tr);
    return true;
}

static int
rd_pause(struct weft_transport *tr)
{
    event_del(&P(tr)->ev_io);
    return 0;
}

static int
rd_resume(struct weft_transport *tr)
{
    if (!(tr->flags & TR_EOF_RCVD) && event_add(&P(tr)->ev_io, NULL) < 0)
        return -ENOMEM;
    return 0;
}

static size_t
rd_buffer_size(const struct weft_transport *tr)
{
    (void)tr;
    return 0;
}

static void
rd_limits_changed(struct weft_transport *tr)
{
    (void)tr;
}

static int
pipe_extra_info(struct weft_transport *tr, const char *name, void *out, size_t *len)
{
    if (strcmp(name, "pipe") != 0)
        return -ENOENT;
    if (*len < sizeof(int)) {
        *len = sizeof(int);
        return -ENOBUFS;
    }
    memcpy(out, &tr->fd, sizeof(int));
    *len = sizeof(int);
    return 0;
}

static struct evbuffer *
pipe_input(struct weft_transport *tr)
{
    return P(tr)->buf;
}

static const struct weft__transport_ops read_pipe_ops = {
    .name = "read_pipe",
    .write = no_write,
    .write_buffer = no_write_buffer,
    .writelines = no_writelines,
    .close = rd_close,
    .abort = pipe_abort,
    .abort_now = pipe_abort_now,
    .pause_reading = rd_pause,
    .resume_reading = rd_resume,
    .buffer_size = rd_buffer_size,
    .limits_changed = rd_limits_changed,
    .extra_info = pipe_extra_info,
    .input = pipe_input,
};

/* ---- write end ---- */

/* writev(2) with SIGPIPE blocked in this thread (weft__sigpipe_block); errno kept. */
static ssize_t
write_nosigpipe(int fd, const struct iovec *iov, int n)
{
    struct weft__sigpipe_guard g;
    ssize_t w;

    weft__sigpipe_block(&g);
    do
        w = writev(fd, iov, n);
    while (w < 0 && errno == EINTR);
    weft__sigpipe_restore(&g, w);
    return w;
}

/* Write what the pipe takes now. Returns the bytes written, or -errno (not EAGAIN). */
static ssize_t
write_now(struct weft_transport *tr, const struct iovec *iov, int n)
{
    ssize_t w = write_nosigpipe(tr->fd, iov, n > IOV_MAX ? IOV_MAX : n);

    if (w >= 0)
        return w;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
}

static void
wr_queued(struct weft_transport *tr)
{
    struct pipe_tr *p = P(tr);

    if (evbuffer_get_length(p->buf) == 0)
        return;
    if (!event_pending(&p->ev_io, EV_WRITE, NULL))
        event_add(&p->ev_io, NULL);
    weft__transport_mark_high(tr, evbuffer_get_length(p->buf));
}

/* Queue iov[] from skip bytes in; 0 or -ENOMEM (then the transport is lost). */
static int
wr_queue(struct weft_transport *tr, const struct iovec *iov, int n, size_t skip)
{
    struct pipe_tr *p = P(tr);

    for (int i = 0; i < n; i++) {
        size_t l = iov[i].iov_len;

        if (skip >= l) {
            skip -= l;
            continue;
        }
        if (evbuffer_add(p->buf, (const char *)iov[i].iov_base + skip, l - skip) < 0) {
            lost_soon(tr, -ENOMEM);     /* part may be written: the stream is broken */
            return -ENOMEM;
        }
        skip = 0;
    }
    wr_queued(tr);
    return 0;
}

static int
wr_writelines(struct weft_transport *tr, const struct iovec *iov, int iovcnt)
{
    size_t total = 0, done = 0;

    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total == 0)
        return 0;
    tr->flags |= TR_ACTIVE;
    if (evbuffer_get_length(P(tr)->buf) == 0) {
        ssize_t w = write_now(tr, iov, iovcnt);

        if (w < 0) {
            lost_soon(tr, (int)w);      /* reported through connection_lost */
            return 0;
        }
        done = (size_t)w;
        if (done == total)
            return 0;
    }
    return wr_queue(tr, iov, iovcnt, done);
}

static int
wr_write(struct weft_transport *tr, const void *data, size_t len)
{
    struct iovec v = { .iov_base = (void *)data, .iov_len = len };

    return wr_writelines(tr, &v, 1);
}

static int
wr_write_buffer(struct weft_transport *tr, struct evbuffer *buf)
{
    struct pipe_tr *p = P(tr);
    size_t len = evbuffer_get_length(buf);

    if (len == 0)
        return 0;
    tr->flags |= TR_ACTIVE;
    if (evbuffer_get_length(p->buf) == 0) {
        struct evbuffer_iovec vec[WRITE_IOV];
        int n = evbuffer_peek(buf, -1, NULL, vec, WRITE_IOV);
        ssize_t w = write_now(tr, (const struct iovec *)vec, n > WRITE_IOV ? WRITE_IOV : n);

        if (w < 0) {
            evbuffer_drain(buf, len);
            lost_soon(tr, (int)w);
            return 0;
        }
        evbuffer_drain(buf, (size_t)w);
        if ((size_t)w == len)
            return 0;
    }
    if (evbuffer_add_buffer(p->buf, buf) < 0) {
        lost_soon(tr, -ENOMEM);
        return -ENOMEM;
    }
    wr_queued(tr);
    return 0;
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct weft_transport *tr = arg;
    struct pipe_tr *p = P(tr);
    size_t len;

    (void)fd;
    (void)what;
    tr->flags |= TR_ACTIVE;
    while ((len = evbuffer_get_length(p->buf)) > 0) {
        struct evbuffer_iovec vec[WRITE_IOV];
        int n = evbuffer_peek(p->buf, -1, NULL, vec, WRITE_IOV);
        size_t offered = 0;
        ssize_t w;

        if (n > WRITE_IOV)
            n = WRITE_IOV;
        for (int i = 0; i < n; i++)
            offered += vec[i].iov_len;
        w = write_now(tr, (const struct iovec *)vec, n);
        if (w < 0) {
            evbuffer_drain(p->buf, len);
            lost_soon(tr, (int)w);
            return;
        }
        evbuffer_drain(p->buf, (size_t)w);
        if ((size_t)w < offered)
            break;              /* the pipe is full */
    }
    len = evbuffer_get_length(p->buf);
    if (len == 0)
        event_del(&p->ev_io);
    if ((tr->flags & TR_WRITE_PAUSED) && len <= tr->low) {
        weft__transport_mark_low(tr, len);
        if (tr->flags & TR_LOST_PENDING)
            return;
        len = evbuffer_get_length(p->buf);
    }
    if (len == 0 && (tr->flags & TR_CLOSING))
        lost_soon(tr, 0);
}

/* The reader closed its end (EPOLLERR on ours): asyncio's _read_ready of a write pipe. */
static void
on_hup(evutil_socket_t fd, short what, void *arg)
{
    struct weft_transport *tr = arg;
    struct pipe_tr *p = P(tr);

    (void)fd;
    (void)what;
    if (evbuffer_get_length(p->buf) > 0) {
        evbuffer_drain(p->buf, evbuffer_get_length(p->buf));
        lost_soon(tr, -EPIPE);
    } else {
        lost_soon(tr, 0);
    }
}

/* write_eof on a pipe closes it: there is no other way to send EOF. */
static void
wr_write_eof(struct weft_transport *tr)
{
    tr->flags |= TR_CLOSING;
    if (evbuffer_get_length(P(tr)->buf) == 0)
        lost_soon(tr, 0);
    /* else on_writable() does once the queue is written */
}

static void
wr_close(struct weft_transport *tr)
{
    wr_write_eof(tr);
}

static int
wr_no_reading(struct weft_transport *tr)
{
    (void)tr;
    return -ENOTSUP;
}

static size_t
wr_buffer_size(const struct weft_transport *tr)
{
    return evbuffer_get_length(P(tr)->buf);
}

static void
wr_limits_changed(struct weft_transport *tr)
{
    wr_queued(tr);
}

static const struct weft__transport_ops write_pipe_ops = {
    .name = "write_pipe",
    .write = wr_write,
    .write_buffer = wr_write_buffer,
    .writelines = wr_writelines,
    .write_eof = wr_write_eof,
    .close = wr_close,
    .abort = pipe_abort,
    .abort_now = pipe_abort_now,
    .pause_reading = wr_no_reading,
    .resume_reading = wr_no_reading,
    .buffer_size = wr_buffer_size,
    .limits_changed = wr_limits_changed,
    .extra_info = pipe_extra_info,
    .input = pipe_input,
};

/* ---- making one ---- */

static int
connect_pipe(struct weft_loop *loop, weft_protocol_factory_cb *factory, void *arg, int fd,
             bool reading, struct weft_transport **out)
{
    struct event_base *base;
    struct weft_protocol *proto;
    struct pipe_tr *p;
    struct stat st;
    bool assigned = false;
    int fl, rc;

    if (out != NULL)
        *out = NULL;
    if (loop == NULL || factory == NULL || fd < 0)
        return -EINVAL;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode) && !S_ISCHR(st.st_mode))
        return -EINVAL;     /* a regular file or a directory: epoll cannot watch it */
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -errno;
    proto = factory(arg);
    if (proto == NULL)
        return -ENOMEM;
    base = weft_loop_get_base(loop);
    rc = -ENOMEM;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        goto fail;
    p->buf = evbuffer_new();
    if (p->buf == NULL)
        goto fail;
    p->base.ops = reading ? &read_pipe_ops : &write_pipe_ops;
    p->base.loop = loop;
    p->base.proto = proto;
    p->base.fd = fd;
    p->base.high = WEFT_WRITE_HIGH_DEFAULT;
    p->base.low = WEFT_WRITE_LOW_DEFAULT;
    event_assign(&p->ev_io, base, fd, (reading ? EV_READ : EV_WRITE) | EV_PERSIST,
                 reading ? on_readable : on_writable, &p->base);
    event_assign(&p->ev_lost, base, -1, 0, on_lost, &p->base);
    assigned = true;
    if (reading) {
        if (event_add(&p->ev_io, NULL) < 0)
            goto fail;
    } else if (S_ISFIFO(st.st_mode)) {
        event_assign(&p->ev_hup, base, fd, EV_READ, on_hup, &p->base);
        if (event_add(&p->ev_hup, NULL) < 0)
            goto fail;
        p->hup_armed = true;
    }
    if (out != NULL)
        *out = &p->base;
    weft__transport_made(&p->base);
    return 0;

fail:
    if (p != NULL) {
        if (assigned)
            event_del(&p->ev_io);
        if (p->buf != NULL)
            evbuffer_free(p->buf);
        free(p);
    }
    if (proto->ops != NULL && proto->ops->connection_lost != NULL)
        proto->ops->connection_lost(proto, rc);     /* lets the protocol free itself */
    return rc;
}

int
weft_connect_read_pipe(struct weft_loop *loop, weft_protocol_factory_cb *factory, void *arg,
                       int fd, struct weft_transport **out)
{
    return connect_pipe(loop, factory, arg, fd, true, out);
}

int
weft_connect_write_pipe(struct weft_loop *loop, weft_protocol_factory_cb *factory, void *arg,
                        int fd, struct weft_transport **out)
{
    return connect_pipe(loop, factory, arg, fd, false, out);
}
