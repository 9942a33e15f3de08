/* SPDX-License-Identifier: MIT */
/* transport.c: the socket transport: its own readv path and direct writes over a bufferevent. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>

#include "net/transport-int.h"

/*
 * How the socket transport uses its bufferevent (docs/design-transport.md has
 * the long version):
 *
 * - The bufferevent supplies the two evbuffers and the two events; we
 *   re-assign both events to our own callbacks. libevent 2.1 reads at most
 *   4 KiB per read() (EVBUFFER_MAX_READ, after a FIONREAD ioctl) and writes
 *   with writev(), which raises SIGPIPE; we read with one large readv() into
 *   space reserved in the input evbuffer and write with sendmsg(MSG_NOSIGNAL).
 * - A write with nothing queued goes straight to the socket; only the rest
 *   is queued, and adding to the output evbuffer arms ev_write through the
 *   bufferevent's own output callback (we also arm it ourselves).
 * - connection_lost is never called from inside a transport method: it is
 *   delivered by activating ev_read, which by then is off the socket. That
 *   cannot fail for lack of memory, and the transport is freed right there.
 */

#define RD_SHIFT_MIN 12     /* reads of 4 KiB ... */
#define RD_SHIFT_INIT 14    /* starting at 16 KiB ... */
#define RD_SHIFT_MAX 18     /* ... up to 256 KiB, adapting to what arrives */
#define RD_SMALL_RUN 16    /* small reads in a row before the size halves */
#define CHAIN_SLACK 128     /* evbuffer's chain header: keeps each chain a power of two */
#define RD_COPY_MAX (2048 - CHAIN_SLACK)    /* a small first read moves to a 2 KiB chain */
#define SEND_IOV 64         /* chains per sendmsg() */
#define SENDFILE_MAX (1u << 30)     /* bytes per sendfile(2) call */

/*
 * The write queue: memory bytes in the output evbuffer (public libevent API
 * only), and, for weft_transport_sendfile(), file segments between them. A
 * segment says how many of the output's memory bytes go before it; what
 * follows the last one is tail_mem. The sum of the segments' mem_before and
 * tail_mem is the evbuffer's length. Most transports never have files: then
 * tr->files is NULL and the queue is just the evbuffer.
 */
struct file_seg {
    struct file_seg *next;
    size_t mem_before;      /* memory bytes of the output to send before this file */
    uint64_t off, len;      /* what is left of the file's range */
    int fd;                 /* the transport's: closed once sent or dropped */
};

struct weft__files {
    struct file_seg *head, *tail;
    size_t tail_mem;        /* memory bytes queued after the last file */
    uint64_t bytes;         /* file bytes still to send */
};

static void
files_free(struct weft_transport *tr)
{
    struct weft__files *fs = tr->files;

    if (fs == NULL)
        return;
    for (struct file_seg *f = fs->head, *next; f != NULL; f = next) {
        next = f->next;
        close(f->fd);
        free(f);
    }
    free(fs);
    tr->files = NULL;
}

/* Bytes queued, memory and files. */
static inline size_t
out_len(const struct weft_transport *tr)
{
    size_t n = evbuffer_get_length(tr->bev->output);

    return unlikely(tr->files != NULL) ? n + (size_t)tr->files->bytes : n;
}

static inline bool
out_empty(const struct weft_transport *tr)
{
    return tr->files == NULL && evbuffer_get_length(tr->bev->output) == 0;
}

/* n memory bytes were added at the output's end. */
static inline void
mem_queued(struct weft_transport *tr, size_t n)
{
    if (unlikely(tr->files != NULL))
        tr->files->tail_mem += n;
}

_Static_assert(sizeof(struct evbuffer_iovec) == sizeof(struct iovec) &&
               offsetof(struct evbuffer_iovec, iov_base) == offsetof(struct iovec, iov_base) &&
               offsetof(struct evbuffer_iovec, iov_len) == offsetof(struct iovec, iov_len),
               "evbuffer_iovec must match struct iovec");

void
weft__transport_failed(struct weft_transport *tr, const char *message, int rc)
{
    char peer[80];
    struct weft_error_context ctx = {
        .message = message, .error = rc, .transport = tr,
        .peer = weft_transport_peer_string(tr, peer, sizeof(peer)),
    };

    weft_loop_call_error_handler(tr->loop, &ctx);
    weft_transport_abort(tr);
}

void
weft__transport_made(struct weft_transport *tr)
{
    const struct weft_protocol_ops *ops = weft__proto_ops(tr);
    int rc;

    tr->flags |= TR_MADE;
    if (ops != NULL && ops->connection_made != NULL) {
        tr->in_cb++;
        rc = ops->connection_made(tr->proto, tr);
        tr->in_cb--;
        if (rc < 0)
            weft__transport_failed(tr, "protocol connection_made failed", rc);
    }
}

bool
weft__transport_data(struct weft_transport *tr, struct evbuffer *in)
{
    const struct weft_protocol_ops *ops = weft__proto_ops(tr);
    int rc;

    if (ops == NULL || ops->data_received == NULL) {
        evbuffer_drain(in, evbuffer_get_length(in));    /* nobody wants it */
        return true;
    }
    tr->in_cb++;
    rc = ops->data_received(tr->proto, in);
    tr->in_cb--;
    if (rc < 0) {
        weft__transport_failed(tr, "protocol data_received failed", rc);
        return false;
    }
    return true;
}

/*
 * Stop all I/O and have connection_lost(err) delivered from the loop. The
 * first reason wins; later calls are no-ops.
 */
static void
schedule_lost(struct weft_transport *tr, int err)
{
    struct bufferevent *bev = tr->bev;

    if (tr->flags & (TR_LOST_PENDING | TR_LOST))
        return;
    tr->flags |= TR_CLOSING | TR_LOST_PENDING;
    tr->error = err;
    bufferevent_disable(bev, EV_READ | EV_WRITE);   /* deletes both events */
    event_active(&bev->ev_read, EV_READ, 1);
}

static void
on_nothing(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void
restore_events(struct bufferevent *bev, int fd)
{
    event_assign(&bev->ev_read, bev->ev_base, fd, EV_READ | EV_PERSIST | EV_FINALIZE,
                 on_nothing, bev);
    event_assign(&bev->ev_write, bev->ev_base, fd, EV_WRITE | EV_PERSIST | EV_FINALIZE,
                 on_nothing, bev);
}

static void
transport_free(struct weft_transport *tr)
{
    struct bufferevent *bev = tr->bev;

    bufferevent_disable(bev, EV_READ | EV_WRITE);
    event_del(&bev->ev_read);
    event_del(&bev->ev_write);
    /*
     * libevent finalizes both events with their ev_arg taken as the
     * bufferevent: give them back their original argument. Both are off the
     * fd, so closing it cannot confuse libevent's map either.
     */
    restore_events(bev, tr->fd);
    if (tr->idle_timer != NULL)
        weft_handle_cancel(tr->idle_timer);
    files_free(tr);
    free(tr->proxied);
    close(tr->fd);
    bufferevent_free(bev);
    free(tr);
}

void
weft__transport_notify_lost(struct weft_transport *tr)
{
    const struct weft_protocol_ops *ops = weft__proto_ops(tr);

    tr->flags = (uint16_t)((tr->flags & ~TR_LOST_PENDING) | TR_LOST | TR_CLOSING);
    if (tr->conns != NULL)
        weft__conns_unlink(tr);
    if (ops != NULL && ops->connection_lost != NULL)
        ops->connection_lost(tr->proto, tr->error);
}

static void
deliver_lost(struct weft_transport *tr)
{
    weft__transport_notify_lost(tr);
    transport_free(tr);
}

void
weft__transport_mark_high(struct weft_transport *tr, size_t queued)
{
    const struct weft_protocol_ops *ops;

    if ((tr->flags & TR_WRITE_PAUSED) || queued <= tr->high)
        return;
    tr->flags |= TR_WRITE_PAUSED;
    ops = weft__proto_ops(tr);
    if (ops != NULL && ops->pause_writing != NULL) {
        tr->in_cb++;
        ops->pause_writing(tr->proto);
        tr->in_cb--;
    }
}

void
weft__transport_mark_low(struct weft_transport *tr, size_t queued)
{
    const struct weft_protocol_ops *ops;

    if (!(tr->flags & TR_WRITE_PAUSED) || queued > tr->low)
        return;
    tr->flags &= (uint16_t)~TR_WRITE_PAUSED;
    ops = weft__proto_ops(tr);
    if (ops != NULL && ops->resume_writing != NULL) {
        tr->in_cb++;
        ops->resume_writing(tr->proto);
        tr->in_cb--;
    }
}

/* The queue grew: arm the write event and pause the protocol past the mark. */
static void
queued(struct weft_transport *tr)
{
    struct bufferevent *bev = tr->bev;

    if (!event_pending(&bev->ev_write, EV_WRITE, NULL))
        event_add(&bev->ev_write, NULL);
    weft__transport_mark_high(tr, out_len(tr));
}

static void
do_shutdown(struct weft_transport *tr)
{
    /* ENOTCONN after a reset is fine: the read side reports it. */
    (void)shutdown(tr->fd, SHUT_WR);
    tr->flags |= TR_SHUT_WR;
    if (tr->flags & TR_EOF_RCVD)
        weft_transport_close(tr);   /* both directions are done */
}

/*
 * Send at most limit memory bytes from the output's front with sendmsg(flags),
 * one call of up to SEND_IOV chains. Returns the bytes sent (0: the socket is
 * full) or -errno; *all (if not NULL) says whether the socket took all it was
 * offered.
 */
static ssize_t
send_mem(struct weft_transport *tr, size_t limit, int flags, bool *all)
{
    struct evbuffer *out = tr->bev->output;
    struct evbuffer_iovec vec[SEND_IOV];
    struct msghdr mh = { .msg_iov = (struct iovec *)vec };
    size_t total = 0;
    ssize_t w;
    int n = evbuffer_peek(out, (ev_ssize_t)limit, NULL, vec, SEND_IOV);

    if (n <= 0)
        return 0;
    if (n > SEND_IOV)
        n = SEND_IOV;
    for (int i = 0; i < n; i++) {
        if (total + vec[i].iov_len > limit)
            vec[i].iov_len = limit - total;
        total += vec[i].iov_len;
    }
    mh.msg_iovlen = (size_t)n;
    do
        w = sendmsg(tr->fd, &mh, flags | MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    /* bufferevent_socket_new() froze the output's start; we are its reader. */
    evbuffer_unfreeze(out, 1);
    evbuffer_drain(out, (size_t)w);
    evbuffer_freeze(out, 1);
    if (all != NULL)
        *all = (size_t)w == total;
    return w;
}

void
weft__sigpipe_block(struct weft__sigpipe_guard *g)
{
    sigset_t pipe;

    g->blocked = !weft__sigpipe_is_ignored();
    if (!g->blocked)
        return;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &g->old);
}

void
weft__sigpipe_restore(struct weft__sigpipe_guard *g, ssize_t w)
{
    int err = errno;

    if (!g->blocked)
        return;
    if (w < 0 && err == EPIPE && !sigismember(&g->old, SIGPIPE)) {
        static const struct timespec zero = { 0, 0 };
        sigset_t pipe, pending;

        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
            (void)sigtimedwait(&pipe, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
    errno = err;
}

/* sendfile(2) has no MSG_NOSIGNAL: SIGPIPE blocked around it (weft__sigpipe_block). */
static ssize_t
sendfile_nosigpipe(int sock, int fd, off_t *off, size_t len)
{
    struct weft__sigpipe_guard g;
    ssize_t w;

    weft__sigpipe_block(&g);
    do
        w = sendfile(sock, fd, off, len);
    while (w < 0 && errno == EINTR);
    weft__sigpipe_restore(&g, w);
    return w;
}

bool weft__sigpipe_ignored;

int
weft_ignore_sigpipe(void)
{
    struct sigaction sa = { .sa_handler = SIG_IGN };

    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPIPE, &sa, NULL) < 0)
        return -errno;
    __atomic_store_n(&weft__sigpipe_ignored, true, __ATOMIC_RELAXED);
    return 0;
}

static int flush_mem(struct weft_transport *tr);

/*
 * flush_output() with files queued: each segment's memory bytes with
 * sendmsg(MSG_MORE, so the kernel packs a response's head with its first
 * pages), then the file with sendfile(2), in order. Returns 0 or -errno
 * (-EIO: a file ended before its range did, so the stream can never be
 * completed).
 */
static int
flush_files(struct weft_transport *tr)
{
    struct weft__files *fs = tr->files;

    while (fs->head != NULL) {
        struct file_seg *f = fs->head;
        size_t want;
        off_t off;
        ssize_t w;

        if (f->mem_before > 0) {
            w = send_mem(tr, f->mem_before, MSG_MORE, NULL);
            if (w <= 0)
                return (int)w;
            f->mem_before -= (size_t)w;
            if (f->mem_before > 0)
                return 0;           /* the socket is full */
            continue;
        }
        want = f->len > SENDFILE_MAX ? SENDFILE_MAX : (size_t)f->len;
        off = (off_t)f->off;
        w = sendfile_nosigpipe(tr->fd, f->fd, &off, want);
        if (w < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        if (w == 0)
            return -EIO;            /* the file is shorter than its range */
        f->off += (uint64_t)w;
        f->len -= (uint64_t)w;
        fs->bytes -= (uint64_t)w;
        if (f->len > 0) {
            if ((size_t)w < want)
                return 0;
            continue;
        }
        fs->head = f->next;
        close(f->fd);
        free(f);
    }
    /* No file left: what remains (tail_mem) is plain memory. */
    free(fs);
    tr->files = NULL;
    return flush_mem(tr);
}

/*
 * Send from the output evbuffer until it is empty or the socket is full.
 * Returns 0 or -errno.
 */
static int
flush_mem(struct weft_transport *tr)
{
    struct evbuffer *out = tr->bev->output;
    size_t len;

    while ((len = evbuffer_get_length(out)) > 0) {
        bool all;
        ssize_t w = send_mem(tr, len, 0, &all);

        if (w <= 0 || !all)
            return w < 0 ? (int)w : 0;
    }
    return 0;
}

static int
flush_output(struct weft_transport *tr)
{
    return unlikely(tr->files != NULL) ? flush_files(tr) : flush_mem(tr);
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct weft_transport *tr = arg;
    struct bufferevent *bev = tr->bev;
    size_t len;
    int rc;

    (void)fd;
    (void)what;
    tr->flags |= TR_ACTIVE;
    rc = flush_output(tr);
    if (rc < 0) {
        schedule_lost(tr, rc);
        return;
    }
    len = out_len(tr);
    if (len == 0)
        event_del(&bev->ev_write);
    if ((tr->flags & TR_WRITE_PAUSED) && len <= tr->low) {
        weft__transport_mark_low(tr, len);
        if (tr->flags & TR_LOST_PENDING)
            return;
        len = out_len(tr);
    }
    if (len != 0)
        return;
    if (tr->flags & TR_CLOSING)
        schedule_lost(tr, 0);
    else if ((tr->flags & (TR_EOF_SENT | TR_SHUT_WR)) == TR_EOF_SENT)
        do_shutdown(tr);
}

/*
 * evbuffer_reserve_space() leaves an empty chain attached when nothing was
 * committed, and evbuffer_drain() ignores an empty buffer; an idle
 * connection must not keep a 16 KiB chain, so add a byte and drain it.
 * Only on the rare reads that bring nothing.
 */
static void
drop_empty_chain(struct evbuffer *in)
{
    if (evbuffer_get_length(in) == 0 && evbuffer_add(in, "", 1) == 0)
        evbuffer_drain(in, 1);
}

/*
 * A small message alone in the input moves from the read chain (4-256 KiB)
 * into one of its own size, so that a connection whose handler has not run
 * yet holds 2 KiB, not the whole reservation: a stream server reads every
 * ready socket before the first handler runs, and 100 big chains alive at
 * once pushed the heap past glibc's trim threshold and back every batch.
 * False if the new chain cannot be allocated: the bytes are lost.
 */
static bool
shrink_small_read(struct evbuffer *in, size_t n)
{
    char small[RD_COPY_MAX];

    evbuffer_remove(in, small, n);      /* frees the read chain */
    return evbuffer_add(in, small, n) == 0;
}

static void
on_eof(struct weft_transport *tr)
{
    const struct weft_protocol_ops *ops = weft__proto_ops(tr);
    bool keep = false;

    tr->flags |= TR_EOF_RCVD;
    event_del(&tr->bev->ev_read);
    if (ops != NULL && ops->eof_received != NULL) {
        tr->in_cb++;
        keep = ops->eof_received(tr->proto);
        tr->in_cb--;
    }
    if (tr->flags & TR_CLOSING)
        return;
    if (!keep || (tr->flags & TR_SHUT_WR))
        weft_transport_close(tr);
}

static void read_done(struct weft_transport *tr, struct evbuffer *in, ssize_t n, int rc);

/*
 * read_once() into an empty input while reads are small (the size is at its least): into
 * the stack, then into a chain of the message's size. The same chain shrink_small_read()
 * makes, without reserving and freeing a big one first: request/response traffic reads
 * this way once per message.
 */
static void
read_small(struct weft_transport *tr, struct evbuffer *in, size_t want)
{
    char buf[((size_t)1 << RD_SHIFT_MIN) - CHAIN_SLACK];
    ssize_t n;

    do
        n = read(tr->fd, buf, want);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        if (evbuffer_add(in, buf, (size_t)n) < 0) {
            evbuffer_freeze(in, 0);
            weft__transport_failed(tr, "cannot allocate the read buffer", -ENOMEM);
            return;
        }
        if ((size_t)n == want) {
            tr->rd_small = 0;
            tr->rd_shift++;             /* filled: bigger reads, through the chains */
        }
    }
    read_done(tr, in, n, n < 0 ? -errno : 0);
}

static void
read_once(struct weft_transport *tr)
{
    struct evbuffer *in = tr->bev->input;
    struct evbuffer_iovec vec[2];
    size_t want = ((size_t)1 << tr->rd_shift) - CHAIN_SLACK;
    bool was_empty = evbuffer_get_length(in) == 0;
    ssize_t n;
    int nvec, rc = 0;

    /* bufferevent_socket_new() froze the input's end; we are its writer. */
    evbuffer_unfreeze(in, 0);
    if (was_empty && tr->rd_shift == RD_SHIFT_MIN) {
        read_small(tr, in, want);
        return;
    }
    nvec = evbuffer_reserve_space(in, (ev_ssize_t)want, vec, 2);
    if (nvec <= 0) {
        evbuffer_freeze(in, 0);
        weft__transport_failed(tr, "cannot allocate the read buffer", -ENOMEM);
        return;
    }
    do
        n = readv(tr->fd, (struct iovec *)vec, nvec);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        size_t left = (size_t)n, cap = 0;
        int used = 0;

        for (int i = 0; i < nvec; i++)
            cap += vec[i].iov_len;      /* at least want: the chains' whole space */
        for (; used < nvec && left > 0; used++) {
            if (vec[used].iov_len > left)
                vec[used].iov_len = left;
            left -= vec[used].iov_len;
        }
        evbuffer_commit_space(in, vec, used);
        if (was_empty && (size_t)n <= RD_COPY_MAX && !shrink_small_read(in, (size_t)n)) {
            evbuffer_freeze(in, 0);
            weft__transport_failed(tr, "cannot allocate the read buffer", -ENOMEM);
            return;
        }
        /*
         * Grow at once when a read fills the space; shrink only after a run of
         * small reads, since the first read of a large message often catches
         * just its first segments.
         */
        if ((size_t)n == cap) {
            tr->rd_small = 0;
            if (tr->rd_shift < RD_SHIFT_MAX)
                tr->rd_shift++;
        } else if ((size_t)n < want / 8) {
            if (++tr->rd_small >= RD_SMALL_RUN && tr->rd_shift > RD_SHIFT_MIN) {
                tr->rd_shift--;
                tr->rd_small = 0;
            }
        } else {
            tr->rd_small = 0;
        }
    } else {
        rc = n == 0 ? 0 : -errno;
        drop_empty_chain(in);
    }
    read_done(tr, in, n, rc);
}

/* After a read of n bytes (0: EOF; -1: error rc) into in: to the protocol. */
static void
read_done(struct weft_transport *tr, struct evbuffer *in, ssize_t n, int rc)
{
    evbuffer_freeze(in, 0);
    if (n == 0) {
        on_eof(tr);
        return;
    }
    if (n < 0) {
        if (rc != -EAGAIN && rc != -EWOULDBLOCK)
            schedule_lost(tr, rc);
        return;
    }
    (void)weft__transport_data(tr, in);
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct weft_transport *tr = arg;

    (void)fd;
    (void)what;
    if (unlikely(tr->flags & TR_LOST_PENDING)) {
        deliver_lost(tr);
        return;
    }
    if (tr->flags & (TR_READ_PAUSED | TR_CLOSING | TR_EOF_RCVD))
        return;
    tr->flags |= TR_ACTIVE;
    read_once(tr);
}

static int socket_write(struct weft_transport *tr, const void *data, size_t len);
static int socket_sendfile(struct weft_transport *tr, struct evbuffer *head, int fd,
                           uint64_t offset, uint64_t len);
static int socket_write_buffer(struct weft_transport *tr, struct evbuffer *buf);
static int socket_writelines(struct weft_transport *tr, const struct iovec *iov, int iovcnt);
static void socket_write_eof(struct weft_transport *tr);
static void socket_close(struct weft_transport *tr);
static void socket_abort(struct weft_transport *tr);
static bool socket_abort_now(struct weft_transport *tr);
static int socket_pause_reading(struct weft_transport *tr);
static int socket_resume_reading(struct weft_transport *tr);
static size_t socket_buffer_size(const struct weft_transport *tr);
static void socket_limits_changed(struct weft_transport *tr);
static int socket_extra_info(struct weft_transport *tr, const char *name, void *out,
                             size_t *len);
static struct evbuffer *socket_input(struct weft_transport *tr);

/* The socket flavour: everything in this file. */
static const struct weft__transport_ops socket_ops = {
    .name = "socket",
    .write = socket_write,
    .write_buffer = socket_write_buffer,
    .writelines = socket_writelines,
    .sendfile = socket_sendfile,
    .write_eof = socket_write_eof,
    .close = socket_close,
    .abort = socket_abort,
    .abort_now = socket_abort_now,
    .pause_reading = socket_pause_reading,
    .resume_reading = socket_resume_reading,
    .buffer_size = socket_buffer_size,
    .limits_changed = socket_limits_changed,
    .extra_info = socket_extra_info,
    .input = socket_input,
};

static struct evbuffer *
socket_input(struct weft_transport *tr)
{
    return tr->bev->input;
}

void
weft__conns_link(struct weft__conns *l, struct weft_transport *tr)
{
    tr->conns = l;
    tr->srv_prev = NULL;
    tr->srv_next = l->head;
    if (l->head != NULL)
        l->head->srv_prev = tr;
    l->head = tr;
    l->count++;
}

void
weft__conns_unlink(struct weft_transport *tr)
{
    struct weft__conns *l = tr->conns;

    if (tr->srv_prev != NULL)
        tr->srv_prev->srv_next = tr->srv_next;
    else
        l->head = tr->srv_next;
    if (tr->srv_next != NULL)
        tr->srv_next->srv_prev = tr->srv_prev;
    tr->srv_prev = tr->srv_next = NULL;
    tr->conns = NULL;
    l->count--;
}

int
weft__transport_new_socket(struct weft_loop *loop, struct weft_protocol *proto, int fd,
                           struct weft__conns *conns, struct weft_transport **out)
{
    return weft__transport_new_accepted(loop, proto, fd, conns, NULL, 0, 0, out);
}

int
weft__transport_new_accepted(struct weft_loop *loop, struct weft_protocol *proto, int fd,
                             struct weft__conns *conns, const struct sockaddr *peer,
                             socklen_t peerlen, uint64_t idle_ms, struct weft_transport **out)
{
    struct event_base *base = weft_loop_get_base(loop);
    struct weft_transport *tr;
    struct bufferevent *bev;
    int one = 1, rc;

    tr = calloc(1, sizeof(*tr));
    if (tr == NULL)
        return -ENOMEM;
    bev = bufferevent_socket_new(base, fd, 0);
    if (bev == NULL) {
        free(tr);
        return -ENOMEM;
    }
    tr->ops = &socket_ops;
    tr->bev = bev;
    tr->loop = loop;
    tr->proto = proto;
    tr->fd = fd;
    tr->high = WEFT_WRITE_HIGH_DEFAULT;
    tr->low = WEFT_WRITE_LOW_DEFAULT;
    tr->rd_shift = RD_SHIFT_INIT;
    /* Neither event is pending yet, so both may be re-assigned. */
    event_assign(&bev->ev_read, base, fd, EV_READ | EV_PERSIST | EV_FINALIZE, on_readable, tr);
    event_assign(&bev->ev_write, base, fd, EV_WRITE | EV_PERSIST | EV_FINALIZE, on_writable, tr);
    /* Fails on a socketpair(): harmless. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    rc = peer != NULL ? weft_transport_set_proxied_peer(tr, peer, peerlen) : 0;
    if (rc == 0 && idle_ms != 0)
        rc = weft_transport_set_idle_timeout(tr, idle_ms);
    if (rc == 0 && event_add(&bev->ev_read, NULL) < 0)
        rc = errno ? -errno : -ENOMEM;
    if (rc < 0) {
        if (tr->idle_timer != NULL)
            weft_handle_cancel(tr->idle_timer);
        free(tr->proxied);
        restore_events(bev, fd);
        bufferevent_free(bev);
        free(tr);
        return rc;
    }
    if (conns != NULL)
        weft__conns_link(conns, tr);
    if (out != NULL)
        *out = tr;
    weft__transport_made(tr);
    return 0;
}

bool
weft__transport_abort_now(struct weft_transport *tr)
{
    if (tr->flags & TR_LOST)
        return false;
    return tr->ops->abort_now(tr);
}

static bool
socket_abort_now(struct weft_transport *tr)
{
    weft_transport_abort(tr);
    if (tr->in_cb != 0)
        return false;
    event_del(&tr->bev->ev_read);   /* the pending delivery: we do it now */
    deliver_lost(tr);
    return true;
}

int
weft_transport_write(struct weft_transport *tr, const void *data, size_t len)
{
    if (unlikely(tr->flags & (TR_CLOSING | TR_EOF_SENT)))
        return -EPIPE;
    return tr->ops->write(tr, data, len);
}

/*
 * With nothing queued: send what the socket takes now. Returns the bytes
 * sent (0: the socket is full), or -1 if the socket failed (connection_lost
 * is scheduled).
 */
static ssize_t
send_now(struct weft_transport *tr, const struct iovec *iov, size_t n)
{
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = n };
    ssize_t w;

    /* one piece: send(2), which the kernel takes without a msghdr and an iovec array to
     * copy in and check */
    do
        w = n == 1 ? send(tr->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT)
                   : sendmsg(tr->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w >= 0)
        return w;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    schedule_lost(tr, -errno);
    return -1;
}

static int
socket_write(struct weft_transport *tr, const void *data, size_t len)
{
    struct evbuffer *out;

    if (len == 0)
        return 0;
    tr->flags |= TR_ACTIVE;
    out = tr->bev->output;
    if (out_empty(tr)) {
        struct iovec v = { .iov_base = (void *)data, .iov_len = len };
        ssize_t w = send_now(tr, &v, 1);

        if (w < 0 || (size_t)w == len)
            return 0;
        data = (const char *)data + w;
        len -= (size_t)w;
    }
    if (evbuffer_add(out, data, len) < 0) {
        schedule_lost(tr, -ENOMEM);     /* part may be sent: the stream is broken */
        return -ENOMEM;
    }
    mem_queued(tr, len);
    queued(tr);
    return 0;
}

int
weft_transport_write_buffer(struct weft_transport *tr, struct evbuffer *buf)
{
    if (unlikely(tr->flags & (TR_CLOSING | TR_EOF_SENT)))
        return -EPIPE;
    return tr->ops->write_buffer(tr, buf);
}

static int
socket_write_buffer(struct weft_transport *tr, struct evbuffer *buf)
{
    struct evbuffer *out;
    size_t len;

    len = evbuffer_get_length(buf);
    if (len == 0)
        return 0;
    tr->flags |= TR_ACTIVE;
    out = tr->bev->output;
    if (out_empty(tr)) {
        struct evbuffer_iovec vec[SEND_IOV];
        int n = evbuffer_peek(buf, -1, NULL, vec, SEND_IOV);
        ssize_t w = send_now(tr, (const struct iovec *)vec, (size_t)(n > SEND_IOV ? SEND_IOV : n));

        if (w < 0) {
            evbuffer_drain(buf, len);
            return 0;
        }
        if (w > 0 && evbuffer_drain(buf, (size_t)w) < 0) {
            /* A buffer frozen at its start: the bytes went out, cannot be dropped. */
            schedule_lost(tr, -EINVAL);
            return -EINVAL;
        }
        if ((size_t)w == len)
            return 0;
    }
    len = evbuffer_get_length(buf);
    if (evbuffer_add_buffer(out, buf) < 0) {
        schedule_lost(tr, -ENOMEM);
        return -ENOMEM;
    }
    mem_queued(tr, len);
    queued(tr);
    return 0;
}

int
weft_transport_writelines(struct weft_transport *tr, const struct iovec *iov, int iovcnt)
{
    if (iovcnt < 0)
        return -EINVAL;
    if (unlikely(tr->flags & (TR_CLOSING | TR_EOF_SENT)))
        return -EPIPE;
    return tr->ops->writelines(tr, iov, iovcnt);
}

static int
socket_writelines(struct weft_transport *tr, const struct iovec *iov, int iovcnt)
{
    struct evbuffer *out;
    size_t skip = 0, total = 0;

    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    if (total == 0)
        return 0;
    tr->flags |= TR_ACTIVE;
    out = tr->bev->output;
    if (out_empty(tr) && iovcnt <= IOV_MAX) {
        ssize_t w = send_now(tr, iov, (size_t)iovcnt);

        if (w < 0 || (size_t)w == total)
            return 0;
        skip = (size_t)w;
    }
    for (int i = 0; i < iovcnt; i++) {
        size_t l = iov[i].iov_len;

        if (skip >= l) {
            skip -= l;
            continue;
        }
        if (evbuffer_add(out, (const char *)iov[i].iov_base + skip, l - skip) < 0) {
            schedule_lost(tr, -ENOMEM);
            return -ENOMEM;
        }
        mem_queued(tr, l - skip);
        skip = 0;
    }
    queued(tr);
    return 0;
}

int
weft_transport_sendfile(struct weft_transport *tr, int fd, uint64_t offset, uint64_t len)
{
    return weft_transport_sendfile_buffer(tr, NULL, fd, offset, len);
}

int
weft_transport_sendfile_buffer(struct weft_transport *tr, struct evbuffer *head, int fd,
                               uint64_t offset, uint64_t len)
{
    if (fd < 0 || offset > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - offset)
        return -EINVAL;
    if (unlikely(tr->flags & (TR_CLOSING | TR_EOF_SENT)))
        return -EPIPE;
    if (tr->ops->sendfile == NULL)
        return -ENOTSUP;
    return tr->ops->sendfile(tr, head != NULL && evbuffer_get_length(head) > 0 ? head : NULL,
                             fd, offset, len);
}

/*
 * With nothing queued: send what the socket takes of head now, with MSG_MORE (the
 * file follows at once) and drain it. Returns the bytes sent (0: the socket is
 * full), or -1 if the socket failed (connection_lost is scheduled).
 */
static ssize_t
send_head(struct weft_transport *tr, struct evbuffer *head, size_t hl)
{
    struct evbuffer_iovec vec[SEND_IOV];
    struct msghdr mh = { .msg_iov = (struct iovec *)vec };
    int n = evbuffer_peek(head, (ev_ssize_t)hl, NULL, vec, SEND_IOV);
    ssize_t w;

    mh.msg_iovlen = (size_t)(n > SEND_IOV ? SEND_IOV : n);
    do
        w = sendmsg(tr->fd, &mh, MSG_MORE | MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        schedule_lost(tr, -errno);
        return -1;
    }
    evbuffer_drain(head, (size_t)w);
    return w;
}

/*
 * Queue head's bytes (if any) and then the file after what is queued; with nothing
 * queued before, start sending them now: head with sendmsg(MSG_MORE), then sendfile(2),
 * so that the head leaves in the file's first packet.
 */
static int
socket_sendfile(struct weft_transport *tr, struct evbuffer *head, int fd, uint64_t offset,
                uint64_t len)
{
    struct weft__files *fs = tr->files, *fresh = NULL;
    struct evbuffer *out = tr->bev->output;
    struct file_seg *f;
    bool was_empty = out_empty(tr);
    size_t hl = head != NULL ? evbuffer_get_length(head) : 0;
    int rc;

    if (len == 0) {
        if (hl > 0 && socket_write_buffer(tr, head) < 0)
            return -ENOMEM;     /* the transport is lost: fd stays the caller's */
        close(fd);
        return 0;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    if (fs == NULL) {
        fresh = calloc(1, sizeof(*fresh));
        if (fresh == NULL) {
            free(f);
            return -ENOMEM;
        }
    }
    tr->flags |= TR_ACTIVE;
    if (was_empty && hl > 0) {
        /* Straight from head, not through the output: adding to the output would
         * have libevent arm EPOLLOUT (an epoll_ctl now and another once it fires). */
        ssize_t w = send_head(tr, head, hl);

        if (w < 0) {
            free(fresh);
            free(f);
            evbuffer_drain(head, hl);
            close(fd);
            return 0;               /* lost (scheduled): fd and head were taken */
        }
        hl -= (size_t)w;
        if (hl > 0)
            was_empty = false;      /* the socket is full: wait for EPOLLOUT */
    }
    if (hl > 0 && evbuffer_add_buffer(out, head) < 0) {
        free(fresh);
        free(f);
        if (!was_empty && out_empty(tr))
            schedule_lost(tr, -ENOMEM);     /* part of head is sent: the stream is broken */
        return -ENOMEM;
    }
    if (fs == NULL) {
        fs = tr->files = fresh;
        f->mem_before = evbuffer_get_length(out);
    } else {
        f->mem_before = fs->tail_mem + hl;
    }
    f->fd = fd;
    f->off = offset;
    f->len = len;
    fs->tail_mem = 0;
    fs->bytes += len;
    if (fs->tail != NULL)
        fs->tail->next = f;
    else
        fs->head = f;
    fs->tail = f;
    if (was_empty) {
        rc = flush_output(tr);
        if (rc < 0) {
            schedule_lost(tr, rc);      /* the file is the transport's now: 0 */
            return 0;
        }
        if (out_empty(tr))
            return 0;
    }
    queued(tr);
    return 0;
}

int
weft_transport_write_eof(struct weft_transport *tr)
{
    if (!weft_transport_can_write_eof(tr))
        return -ENOTSUP;
    if (tr->flags & (TR_CLOSING | TR_EOF_SENT))
        return -EPIPE;
    tr->flags |= TR_EOF_SENT;
    tr->ops->write_eof(tr);
    return 0;
}

static void
socket_write_eof(struct weft_transport *tr)
{
    if (out_empty(tr))
        do_shutdown(tr);
    /* else on_writable() shuts down once the queue is sent */
}

bool
weft_transport_can_write_eof(const struct weft_transport *tr)
{
    return tr->ops->write_eof != NULL;
}

void
weft_transport_close(struct weft_transport *tr)
{
    if (tr->flags & TR_CLOSING)
        return;
    tr->ops->close(tr);             /* TLS: drain, close_notify, wait for the peer's */
}

static void
socket_close(struct weft_transport *tr)
{
    tr->flags |= TR_CLOSING;
    event_del(&tr->bev->ev_read);
    if (out_empty(tr))
        schedule_lost(tr, 0);
    /* else on_writable() schedules it once the queue is sent */
}

void
weft_transport_abort(struct weft_transport *tr)
{
    if (tr->flags & (TR_LOST_PENDING | TR_LOST))
        return;
    tr->flags |= TR_CLOSING | TR_ABORTED;
    tr->ops->abort(tr);
}

static void
socket_abort(struct weft_transport *tr)
{
    struct evbuffer *out = tr->bev->output;
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    evbuffer_unfreeze(out, 1);
    evbuffer_drain(out, evbuffer_get_length(out));
    evbuffer_freeze(out, 1);
    files_free(tr);
    /* close() then sends a reset, as asyncio's abort does in effect. */
    (void)setsockopt(tr->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    schedule_lost(tr, 0);
}

bool
weft_transport_is_closing(const struct weft_transport *tr)
{
    return (tr->flags & TR_CLOSING) != 0;
}

int
weft_transport_pause_reading(struct weft_transport *tr)
{
    if (tr->flags & TR_CLOSING)
        return -EPIPE;
    if (tr->flags & TR_READ_PAUSED)
        return 0;
    tr->flags |= TR_READ_PAUSED;
    return tr->ops->pause_reading(tr);
}

static int
socket_pause_reading(struct weft_transport *tr)
{
    event_del(&tr->bev->ev_read);
    return 0;
}

int
weft_transport_resume_reading(struct weft_transport *tr)
{
    if (tr->flags & TR_CLOSING)
        return -EPIPE;
    if (!(tr->flags & TR_READ_PAUSED))
        return 0;
    tr->flags &= (uint16_t)~TR_READ_PAUSED;
    return tr->ops->resume_reading(tr);
}

static int
socket_resume_reading(struct weft_transport *tr)
{
    if (!(tr->flags & TR_EOF_RCVD) && event_add(&tr->bev->ev_read, NULL) < 0)
        return errno ? -errno : -ENOMEM;
    return 0;
}

bool
weft_transport_is_reading(const struct weft_transport *tr)
{
    return !(tr->flags & (TR_READ_PAUSED | TR_CLOSING));
}

int
weft_transport_set_write_buffer_limits(struct weft_transport *tr, size_t high, size_t low)
{
    if (high == WEFT_LIMIT_DEFAULT)
        high = WEFT_WRITE_HIGH_DEFAULT;
    if (low == WEFT_LIMIT_DEFAULT)
        low = high / 4;
    if (low > high)
        return -EINVAL;
    tr->high = high;
    tr->low = low;
    if (!(tr->flags & TR_CLOSING))
        tr->ops->limits_changed(tr);
    return 0;
}

/* May pause now, as asyncio's _maybe_pause_protocol. */
static void
socket_limits_changed(struct weft_transport *tr)
{
    if (!out_empty(tr))
        queued(tr);
}

void
weft_transport_get_write_buffer_limits(const struct weft_transport *tr, size_t *high,
                                       size_t *low)
{
    if (high != NULL)
        *high = tr->high;
    if (low != NULL)
        *low = tr->low;
}

size_t
weft_transport_get_write_buffer_size(const struct weft_transport *tr)
{
    return tr->ops->buffer_size(tr);
}

static size_t
socket_buffer_size(const struct weft_transport *tr)
{
    return out_len(tr);
}

static int
copy_addr(const struct sockaddr_storage *ss, socklen_t sl, void *out, size_t *len)
{
    if (*len < sl) {
        *len = sl;
        return -ENOBUFS;
    }
    memcpy(out, ss, sl);
    *len = sl;
    return 0;
}

int
weft_transport_get_extra_info(struct weft_transport *tr, const char *name, void *out,
                              size_t *len)
{
    if (name == NULL || len == NULL || (out == NULL && *len != 0))
        return -EINVAL;
    if (tr->proxied != NULL) {
        /* the client the PROXY header named; the socket's own peer is proxy_peername */
        if (strcmp(name, "peername") == 0)
            return copy_addr(&tr->proxied->addr, tr->proxied->len, out, len);
        if (strcmp(name, "proxy_peername") == 0)
            name = "peername";
    }
    return tr->ops->extra_info(tr, name, out, len);
}

/* SO_PEERCRED of a Unix domain socket; -ENOENT for any other kind. */
static int
peercred(int fd, void *out, size_t *len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct ucred cred;
    socklen_t cl = sizeof(cred);

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    if (ss.ss_family != AF_UNIX)
        return -ENOENT;
    if (*len < sizeof(cred)) {
        *len = sizeof(cred);
        return -ENOBUFS;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
        return -errno;
    memcpy(out, &cred, sizeof(cred));
    *len = sizeof(cred);
    return 0;
}

static int
socket_extra_info(struct weft_transport *tr, const char *name, void *out, size_t *len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int rc;

    if (strcmp(name, "socket") == 0) {
        if (*len < sizeof(int)) {
            *len = sizeof(int);
            return -ENOBUFS;
        }
        memcpy(out, &tr->fd, sizeof(int));
        *len = sizeof(int);
        return 0;
    }
    if (strcmp(name, "peercred") == 0)
        return peercred(tr->fd, out, len);
    if (strcmp(name, "peername") == 0)
        rc = getpeername(tr->fd, (struct sockaddr *)&ss, &sl);
    else if (strcmp(name, "sockname") == 0)
        rc = getsockname(tr->fd, (struct sockaddr *)&ss, &sl);
    else
        return -ENOENT;
    if (rc < 0)
        return -errno;
    return copy_addr(&ss, sl, out, len);
}

/* A Unix domain address as "unix:/path", "unix:@name" or "unix" (unnamed), one word. */
static int
unix_string(const struct sockaddr *sa, socklen_t salen, char *buf, size_t len)
{
    const struct sockaddr_un *sun = (const struct sockaddr_un *)(const void *)sa;
    size_t off = offsetof(struct sockaddr_un, sun_path), n, used;
    const unsigned char *p;
    int w;

    if (salen <= off)
        return snprintf(buf, len, "unix");
    n = (size_t)salen - off;
    if (n > sizeof(sun->sun_path))
        n = sizeof(sun->sun_path);
    p = (const unsigned char *)sun->sun_path;
    if (p[0] == '\0') {
        w = snprintf(buf, len, "unix:@");
        p++;
        n--;
    } else {
        n = strnlen(sun->sun_path, n);
        w = snprintf(buf, len, "unix:");
    }
    used = (size_t)w;
    for (size_t i = 0; i < n && used < len; i++) {
        if (p[i] > ' ' && p[i] < 0x7f && p[i] != '\\')
            w = snprintf(buf + used, len - used, "%c", p[i]);
        else
            w = snprintf(buf + used, len - used, "\\x%02x", p[i]);
        used += (size_t)w;
    }
    return used >= len ? -1 : (int)used;
}

const char *
weft__addr_string(const struct sockaddr *sa, socklen_t salen, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    int n = -1;

    if (sa == NULL || buf == NULL || len == 0)
        return "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

        if (inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host)) != NULL)
            n = snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

        if (inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host)) != NULL)
            n = snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        n = unix_string(sa, salen, buf, len);
    }
    return n < 0 || (size_t)n >= len ? "?" : buf;
}

const char *
weft_transport_peer_string(struct weft_transport *tr, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    size_t sl = sizeof(ss);
    struct ucred cred;
    size_t cl = sizeof(cred);
    int n;

    if (tr == NULL || buf == NULL || len == 0)
        return "?";
    if (weft_transport_get_extra_info(tr, "peername", &ss, &sl) < 0)
        return "?";
    /* Clients rarely bind a name: who they are is their credentials. */
    if (ss.ss_family == AF_UNIX && sl <= offsetof(struct sockaddr_un, sun_path) &&
        weft_transport_get_extra_info(tr, "peercred", &cred, &cl) == 0) {
        n = snprintf(buf, len, "unix:pid=%ld,uid=%lu", (long)cred.pid,
                     (unsigned long)cred.uid);
        return n < 0 || (size_t)n >= len ? "?" : buf;
    }
    return weft__addr_string((const struct sockaddr *)&ss, (socklen_t)sl, buf, len);
}

struct weft_loop *
weft_transport_get_loop(const struct weft_transport *tr)
{
    return tr->loop;
}

struct weft_protocol *
weft_transport_get_protocol(const struct weft_transport *tr)
{
    return tr->proto;
}

void
weft_transport_set_protocol(struct weft_transport *tr, struct weft_protocol *p)
{
    tr->proto = p;
}

int
weft_transport_set_proxied_peer(struct weft_transport *tr, const struct sockaddr *sa,
                                socklen_t len)
{
    struct weft__peer *p;

    if (sa == NULL) {
        free(tr->proxied);
        tr->proxied = NULL;
        return 0;
    }
    if (len < sizeof(sa_family_t) || len > sizeof(p->addr) ||
        (sa->sa_family == AF_INET && len < sizeof(struct sockaddr_in)) ||
        (sa->sa_family == AF_INET6 && len < sizeof(struct sockaddr_in6)))
        return -EINVAL;
    p = tr->proxied != NULL ? tr->proxied : malloc(sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    memset(&p->addr, 0, sizeof(p->addr));
    memcpy(&p->addr, sa, len);
    p->len = len;
    tr->proxied = p;
    return 0;
}

/*
 * The idle timeout without work per read or write: I/O only sets TR_ACTIVE,
 * and a timer ticking every quarter of the timeout looks at it. Four quiet
 * ticks in a row close the connection, so an idle connection goes between
 * 1 and 1.25 timeouts after its last byte.
 */
#define IDLE_TICKS 4

static void idle_tick(void *arg);

/* Bytes moved on tr or a transport below it since the last look (clears the marks). */
static bool
take_active(struct weft_transport *tr)
{
    bool active = false;

    for (; tr != NULL; tr = tr->ops->lower != NULL ? tr->ops->lower(tr) : NULL) {
        active |= (tr->flags & TR_ACTIVE) != 0;
        tr->flags &= (uint16_t)~TR_ACTIVE;
    }
    return active;
}

static int
idle_arm(struct weft_transport *tr)
{
    uint64_t period = tr->idle_ms / IDLE_TICKS;

    tr->idle_timer = weft_call_later(tr->loop, period ? period : 1, idle_tick, tr);
    return tr->idle_timer != NULL ? 0 : -ENOMEM;
}

static void
idle_tick(void *arg)
{
    struct weft_transport *tr = arg;
    char peer[64];

    tr->idle_timer = NULL;
    if (tr->flags & (TR_LOST_PENDING | TR_LOST))
        return;
    if (take_active(tr)) {
        tr->idle_quiet = 0;
    } else if (++tr->idle_quiet >= IDLE_TICKS) {
        weft_log(WEFT_LOG_DEBUG, "%s: idle for %u ms: closing",
                 weft_transport_peer_string(tr, peer, sizeof(peer)), (unsigned)tr->idle_ms);
        /* Output stuck behind a peer that does not read, or a close that waits on it. */
        if ((tr->flags & TR_CLOSING) || tr->ops->buffer_size(tr) > 0)
            weft_transport_abort(tr);
        else
            weft_transport_close(tr);
        if (tr->flags & (TR_LOST_PENDING | TR_LOST))
            return;
        /* TLS: close_notify is on its way; one more quiet tick aborts. */
        tr->idle_quiet = IDLE_TICKS - 1;
    }
    if (idle_arm(tr) < 0)
        weft_log(WEFT_LOG_WARNING, "idle timeout: no memory for a timer; it is off for %s",
                 weft_transport_peer_string(tr, peer, sizeof(peer)));
}

int
weft_transport_set_idle_timeout(struct weft_transport *tr, uint64_t ms)
{
    if (ms > UINT32_MAX)
        return -EINVAL;
    if (tr->flags & (TR_LOST_PENDING | TR_LOST))
        return -EPIPE;
    if (tr->idle_timer != NULL) {
        weft_handle_cancel(tr->idle_timer);
        tr->idle_timer = NULL;
    }
    tr->idle_ms = (uint32_t)ms;
    tr->idle_quiet = 0;
    tr->flags &= (uint16_t)~TR_ACTIVE;
    return ms != 0 ? idle_arm(tr) : 0;
}

uint64_t
weft_transport_get_idle_timeout(const struct weft_transport *tr)
{
    return tr->idle_ms;
}

int
weft_connect_accepted_socket(struct weft_loop *loop, weft_protocol_factory_cb *factory,
                             void *arg, int fd, struct weft_transport **out)
{
    struct weft_protocol *proto;
    int fl, rc;

    if (loop == NULL || factory == NULL || fd < 0)
        return -EINVAL;
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
        return -errno;
    proto = factory(arg);
    if (proto == NULL)
        return -ENOMEM;
    rc = weft__transport_new_socket(loop, proto, fd, NULL, out);
    if (rc < 0 && proto->ops != NULL && proto->ops->connection_lost != NULL)
        proto->ops->connection_lost(proto, rc);     /* lets the protocol free itself */
    return rc;
}
