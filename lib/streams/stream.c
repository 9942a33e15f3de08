/* SPDX-License-Identifier: MIT */
/* stream.c: reader and writer straight over the transport's input evbuffer; handler tasks. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include <weft/error.h>
#include <weft/future.h>
#include <weft/loop.h>
#include <weft/task.h>
#include <weft/tls.h>
#include <weft/transport.h>

#include "streams/stream-int.h"
#include "coro/task-int.h"

/*
 * The stream protocol never drains the input evbuffer in data_received: it
 * only wakes the reader, whose task is parked on the stream without a future
 * (weft__task_wake: one call_soon, never inline), and the reader consumes
 * from that same evbuffer.
 * eof_received keeps the transport open (asyncio's StreamReaderProtocol
 * does too): the owner closes it. When the transport goes cleanly with bytes
 * still unread, its chains move to an evbuffer of ours, so they stay
 * readable.
 */

/* Per-loop state (WEFT__SLOT_STREAMS): the handler streams still running. */
struct streams {
    struct weft_stream *all;
    size_t count;
};

static void streams_destroy(void *p);

static struct streams *
streams_get(struct weft_loop *loop)
{
    struct streams *st = weft__loop_get_slot(loop, WEFT__SLOT_STREAMS);

    if (st != NULL)
        return st;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    weft__loop_set_slot(loop, WEFT__SLOT_STREAMS, st, streams_destroy);
    return st;
}

size_t
weft_stream_handler_count(struct weft_loop *loop)
{
    struct streams *st = weft__loop_get_slot(loop, WEFT__SLOT_STREAMS);

    return st != NULL ? st->count : 0;
}

/* ---- life of a stream ---- */

static const struct weft_protocol_ops stream_ops;

int
weft__stream_opts(const struct weft_stream_options *opts, uint32_t *limit, uint32_t *high,
                  uint32_t *low)
{
    size_t l = WEFT_STREAM_LIMIT_DEFAULT, h = WEFT_WRITE_HIGH_DEFAULT, lo = 0;

    if (opts != NULL) {
        if (opts->limit > 0)
            l = opts->limit;
        if (opts->write_high > 0)
            h = opts->write_high;
        lo = opts->write_low;
    }
    if (lo == 0)
        lo = h / 4;
    if (l > UINT32_MAX / 2 || h > UINT32_MAX || lo > h)
        return -EINVAL;
    *limit = (uint32_t)l;
    *high = (uint32_t)h;
    *low = (uint32_t)lo;
    return 0;
}

struct weft_stream *
weft__stream_new(uint32_t limit, uint32_t high, uint32_t low)
{
    struct weft_stream *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->base.ops = &stream_ops;
    s->refs = 1;
    s->limit = limit;
    /* Marks are applied in connection_made; keep them in the fields unused until then. */
    s->consume = high;
    s->error = (int)low;
    return s;
}

void
weft__home_unref(struct weft_stream_factory *h)
{
    if (--h->refs > 0)
        return;
    free(h);        /* a server's home is its first member */
}

void
weft__stream_unref(struct weft_stream *s)
{
    if (--s->refs > 0)
        return;
    weft__future_finish(&s->dwait, -EPIPE);
    weft__future_finish(&s->closed, 0);
    weft__future_finish(&s->upgrade, -EPIPE);
    if (s->flags & S_OWN_IN)
        evbuffer_free(s->in);
    if (s->home != NULL)
        weft__home_unref(s->home);
    free(s);
}

static inline void
wake_reader(struct weft_stream *s)
{
    if (s->rtask != NULL)
        (void)weft__task_wake(s->rtask, 0);     /* a second wake-up does nothing */
}

/* ---- handlers ---- */

static bool
normal_ending(int rc)
{
    switch (-rc) {
    case 0: case ECANCELED: case EPIPE: case ECONNRESET: case ECONNABORTED:
    case ETIMEDOUT: case WEFT_EINCOMPLETE:
        return true;
    default:
        return false;
    }
}

static void
unlink_handler(struct weft_stream *s)
{
    struct streams *st = weft__loop_get_slot(s->loop, WEFT__SLOT_STREAMS);

    if (!(s->flags & S_HANDLER))
        return;
    s->flags &= (uint16_t)~S_HANDLER;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else if (st != NULL)
        st->all = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    if (st != NULL)
        st->count--;
}

/* The handler task: kept shallow, since its idle frames are its stack cost. */
static intptr_t
handler_main(void *arg)
{
    struct weft_stream *s = arg;
    struct weft_stream_factory *h = s->home;
    int rc = h->client(&s->r, &s->w, h->arg);

    s->task = NULL;
    if (!normal_ending(rc)) {
        char peer[80];

        weft_loop_call_error_handler(s->loop, &(struct weft_error_context){
            .message = "stream client handler failed", .error = rc, .transport = s->tr,
            .peer = s->tr ? weft_transport_peer_string(s->tr, peer, sizeof(peer)) : NULL });
    }
    weft_writer_close(&s->w);
    unlink_handler(s);
    h->count--;
    if (h->handler_done != NULL)
        h->handler_done(h);
    weft__stream_unref(s);
    return 0;
}

static void
streams_destroy(void *p)
{
    struct streams *st = p;

    /*
     * The loop goes with handlers still suspended: they never resume (the
     * tasks' own destructor runs after this one). Free what they held.
     */
    while (st->all != NULL) {
        struct weft_stream *s = st->all;

        st->all = s->next;
        s->flags &= (uint16_t)~S_HANDLER;
        s->rtask = NULL;
        s->task = NULL;
        s->home->count--;
        s->refs = 1;
        weft__stream_unref(s);
    }
    free(st);
}

/* ---- the protocol ---- */

static int
stream_connection_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct weft_stream *s = (struct weft_stream *)p;
    struct weft_stream_factory *h = s->home;
    uint32_t high = s->consume, low = (uint32_t)s->error;

    if (s->flags & S_UPGRADING) {
        /* weft_writer_start_tls: the same stream over the new TLS transport */
        s->flags &= (uint16_t)~S_UPGRADING;
        s->tr = tr;
        return 0;
    }
    s->consume = 0;
    s->error = 0;
    s->tr = tr;
    s->loop = weft_transport_get_loop(tr);
    (void)weft_transport_set_write_buffer_limits(tr, high, low);
    if (h != NULL) {
        struct weft_task_options to = { .stack_size = h->stack_size, .name = "stream-handler" };
        struct streams *st = streams_get(s->loop);
        struct weft_task *t;

        if (st == NULL)
            return -ENOMEM;
        t = weft_task_spawn(s->loop, handler_main, s, &to);
        if (t == NULL)
            return -ENOMEM;
        s->task = t;
        weft_task_unref(t);         /* the loop keeps it until it returns */
        s->refs++;                  /* the handler's */
        h->count++;
        s->flags |= S_HANDLER;
        s->next = st->all;
        if (st->all != NULL)
            st->all->prev = s;
        st->all = s;
        st->count++;
    }
    return 0;
}

static int
stream_data_received(struct weft_protocol *p, struct evbuffer *in)
{
    struct weft_stream *s = (struct weft_stream *)p;

    s->in = in;
    if (!(s->flags & S_RPAUSED) && evbuffer_get_length(in) > 2 * (size_t)s->limit &&
        weft_transport_pause_reading(s->tr) == 0)
        s->flags |= S_RPAUSED;
    wake_reader(s);
    return 0;
}

static bool
stream_eof_received(struct weft_protocol *p)
{
    struct weft_stream *s = (struct weft_stream *)p;

    s->flags |= S_EOF;
    wake_reader(s);
    return true;
}

static void
stream_connection_lost(struct weft_protocol *p, int error)
{
    struct weft_stream *s = (struct weft_stream *)p;
    int derr = error < 0 ? error : -ECONNRESET;

    if (error == 0 && s->in != NULL && evbuffer_get_length(s->in) > 0) {
        struct evbuffer *own = evbuffer_new();

        if (own != NULL && evbuffer_add_buffer(own, s->in) == 0) {
            s->in = own;
            s->flags |= S_OWN_IN;
        } else {
            if (own != NULL)
                evbuffer_free(own);
            s->in = NULL;
            error = -ENOMEM;
        }
    } else {
        s->in = NULL;
    }
    s->tr = NULL;
    s->error = error;
    s->flags = (uint16_t)((s->flags | S_LOST | S_EOF) & ~(S_RPAUSED | S_WPAUSED));
    wake_reader(s);
    weft__future_finish(&s->dwait, s->flags & S_CLOSED ? -EPIPE : derr);
    weft__future_finish(&s->closed, 0);
    /*
     * Closed from outside (a reset, the server closing its clients) while
     * the handler is busy elsewhere (sleeping, in another future): stop it.
     * A handler waiting on this stream wakes with EOF or the error instead.
     */
    if (s->task != NULL && !(s->flags & (S_CLOSED | S_HWAIT)))
        weft_task_cancel(s->task);
    weft__stream_unref(s);
}

static void
stream_pause_writing(struct weft_protocol *p)
{
    ((struct weft_stream *)p)->flags |= S_WPAUSED;
}

static void
stream_resume_writing(struct weft_protocol *p)
{
    struct weft_stream *s = (struct weft_stream *)p;

    s->flags &= (uint16_t)~S_WPAUSED;
    weft__future_finish(&s->dwait, 0);
}

static const struct weft_protocol_ops stream_ops = {
    .connection_made = stream_connection_made,
    .data_received = stream_data_received,
    .eof_received = stream_eof_received,
    .connection_lost = stream_connection_lost,
    .pause_writing = stream_pause_writing,
    .resume_writing = stream_resume_writing,
};

/* ---- reader ---- */

static inline size_t
buffered(const struct weft_stream *s)
{
    return s->in != NULL ? evbuffer_get_length(s->in) : 0;
}

/* After consuming: give back the line lent by next_line, resume reading at or below the limit. */
static void
consumed(struct weft_stream *s)
{
    if ((s->flags & S_RPAUSED) && buffered(s) <= s->limit) {
        s->flags &= (uint16_t)~S_RPAUSED;
        if (s->tr != NULL)
            (void)weft_transport_resume_reading(s->tr);
    }
}

/* Drop the line next_line lent; check for an error. Returns 0 or the error. */
static int
reader_enter(struct weft_stream *s)
{
    if (s->consume > 0) {
        if (s->in != NULL)
            evbuffer_drain(s->in, s->consume);
        s->consume = 0;
        consumed(s);
    }
    return s->error < 0 ? s->error : 0;
}

/* A bounded wait's timer (weft_reader_set_timeout), on the waiting task's stack. */
struct read_timer {
    struct weft_task *task;
    struct weft_handle *h;
};

static void
read_timeout(void *arg)
{
    struct read_timer *rt = arg;

    rt->h = NULL;
    (void)weft__task_wake(rt->task, -ETIMEDOUT);    /* data that came first wins */
}

/*
 * Wait for more data, EOF or an error. Returns 0 or a negative code. The
 * task parks with a pointer in the stream, which the protocol's callbacks
 * wake: no future per wait. A cancel resumes it with -ECANCELED; either way
 * it leaves no trace in the stream.
 */
static int
wait_data(struct weft_stream *s)
{
    struct weft_task *cur = weft_task_current();
    struct read_timer rt = { .task = cur };
    intptr_t rc;

    if (cur == NULL)
        return -WEFT_ENOTASK;
    if (s->rtask != NULL)
        return -EBUSY;          /* another task is reading */
    /* asyncio resumes reading whenever a reader waits: it needs more. */
    if ((s->flags & S_RPAUSED) && s->tr != NULL) {
        s->flags &= (uint16_t)~S_RPAUSED;
        (void)weft_transport_resume_reading(s->tr);
    }
    if (s->timeout_ms > 0 &&
        (rt.h = weft_call_later(s->loop, s->timeout_ms, read_timeout, &rt)) == NULL)
        return -ENOMEM;
    s->rtask = cur;
    if (cur == s->task)
        s->flags |= S_HWAIT;
    rc = weft__task_park();
    s->flags &= (uint16_t)~S_HWAIT;
    s->rtask = NULL;
    if (rt.h != NULL)
        weft_handle_cancel(rt.h);
    if (rc < 0)
        return (int)rc;
    return s->error < 0 ? s->error : 0;
}

ssize_t
weft_reader_read(struct weft_reader *r, void *buf, size_t n)
{
    struct weft_stream *s = R2S(r);
    int rc = reader_enter(s);
    int got;

    if (rc < 0)
        return rc;
    if (n == 0)
        return 0;
    while (buffered(s) == 0) {
        if (s->flags & S_EOF)
            return 0;
        if ((rc = wait_data(s)) < 0)
            return rc;
    }
    got = evbuffer_remove(s->in, buf, n > INT32_MAX ? INT32_MAX : n);
    if (got < 0)
        return -ENOMEM;
    consumed(s);
    return got;
}

ssize_t
weft_reader_read_buffer(struct weft_reader *r, struct evbuffer *dst, size_t n)
{
    struct weft_stream *s = R2S(r);
    int rc = reader_enter(s);
    size_t len;

    if (rc < 0)
        return rc;
    while ((len = buffered(s)) == 0) {
        if (s->flags & S_EOF)
            return 0;
        if ((rc = wait_data(s)) < 0)
            return rc;
    }
    if (n == 0 || n >= len) {
        if (evbuffer_add_buffer(dst, s->in) < 0)
            return -ENOMEM;
    } else {
        if (n > INT32_MAX)
            n = INT32_MAX;
        len = (size_t)evbuffer_remove_buffer(s->in, dst, n);
    }
    consumed(s);
    return (ssize_t)len;
}

ssize_t
weft_reader_read_all(struct weft_reader *r, char **out)
{
    struct weft_stream *s = R2S(r);
    struct evbuffer *acc;
    size_t len = 0;
    int rc;

    *out = NULL;
    if ((rc = reader_enter(s)) < 0)
        return rc;
    acc = evbuffer_new();
    if (acc == NULL)
        return -ENOMEM;
    for (;;) {
        /* Move what came (no copy) so reading never pauses. */
        if (buffered(s) > 0 && evbuffer_add_buffer(acc, s->in) < 0) {
            rc = -ENOMEM;
            break;
        }
        consumed(s);
        if (s->flags & S_EOF)
            break;
        if ((rc = wait_data(s)) < 0)
            break;
    }
    if (rc == 0) {
        len = evbuffer_get_length(acc);
        *out = malloc(len + 1);
        if (*out == NULL) {
            rc = -ENOMEM;
        } else {
            evbuffer_remove(acc, *out, len);
            (*out)[len] = '\0';
        }
    }
    evbuffer_free(acc);
    return rc < 0 ? rc : (ssize_t)len;
}

ssize_t
weft_reader_readexactly(struct weft_reader *r, void *buf, size_t n, size_t *partial)
{
    struct weft_stream *s = R2S(r);
    int rc = reader_enter(s);

    if (partial != NULL)
        *partial = 0;
    if (rc < 0)
        return rc;
    if (n > SSIZE_MAX)
        return -EINVAL;
    while (buffered(s) < n) {
        if (s->flags & S_EOF) {
            size_t len = buffered(s);

            if (len > 0)
                evbuffer_remove(s->in, buf, len);
            if (partial != NULL)
                *partial = len;
            consumed(s);
            return -WEFT_EINCOMPLETE;
        }
        if ((rc = wait_data(s)) < 0)
            return rc;
    }
    if (n > 0)
        evbuffer_remove(s->in, buf, n);
    consumed(s);
    return (ssize_t)n;
}

/*
 * asyncio's readuntil search: wait until one of seps is buffered. Returns
 * the end of the match that ends first (> 0) with *at its start; or
 * -WEFT_ELIMIT, *at being where a separator starts (SIZE_MAX if none was
 * seen); or -WEFT_EINCOMPLETE at EOF; or an error. Consumes nothing.
 */
static ssize_t
find_sep(struct weft_stream *s, const struct iovec *seps, size_t nseps, size_t limit, size_t *at)
{
    size_t offset = 0, minlen = SIZE_MAX, maxlen = 0;
    int rc;

    *at = SIZE_MAX;
    for (size_t i = 0; i < nseps; i++) {
        if (seps[i].iov_len == 0)
            return -EINVAL;
        if (seps[i].iov_len < minlen)
            minlen = seps[i].iov_len;
        if (seps[i].iov_len > maxlen)
            maxlen = seps[i].iov_len;
    }
    if (nseps == 0)
        return -EINVAL;
    for (;;) {
        size_t len = buffered(s);

        if (len >= offset + minlen) {
            size_t mstart = SIZE_MAX, mend = SIZE_MAX;
            struct evbuffer_ptr from;

            for (size_t i = 0; i < nseps; i++) {
                struct evbuffer_ptr p;

                if (evbuffer_ptr_set(s->in, &from, offset, EVBUFFER_PTR_SET) < 0)
                    break;
                p = evbuffer_search(s->in, seps[i].iov_base, seps[i].iov_len, &from);
                if (p.pos >= 0 && (size_t)p.pos + seps[i].iov_len < mend) {
                    mstart = (size_t)p.pos;
                    mend = mstart + seps[i].iov_len;
                }
            }
            if (mend != SIZE_MAX) {
                *at = mstart;
                return mstart > limit ? -WEFT_ELIMIT : (ssize_t)mend;
            }
            offset = len + 1 > maxlen ? len + 1 - maxlen : 0;
            if (offset > limit)
                return -WEFT_ELIMIT;
        }
        if (s->flags & S_EOF)
            return -WEFT_EINCOMPLETE;
        if ((rc = wait_data(s)) < 0)
            return rc;
    }
}

static size_t
min_limit(const struct weft_stream *s, size_t size)
{
    return size - 1 < s->limit ? size - 1 : s->limit;
}

ssize_t
weft_reader_readuntil_any(struct weft_reader *r, void *buf, size_t size,
                          const struct iovec *seps, size_t nseps, size_t *partial)
{
    struct weft_stream *s = R2S(r);
    size_t at;
    ssize_t n;
    int rc = reader_enter(s);

    if (partial != NULL)
        *partial = 0;
    if (rc < 0)
        return rc;
    if (size == 0)
        return -EINVAL;
    n = find_sep(s, seps, nseps, min_limit(s, size), &at);
    if (n == -WEFT_EINCOMPLETE) {
        size_t len = buffered(s), take = len < size - 1 ? len : size - 1;

        if (take > 0)
            evbuffer_remove(s->in, buf, take);
        if (len > take)
            evbuffer_drain(s->in, len - take);
        ((char *)buf)[take] = '\0';
        if (partial != NULL)
            *partial = take;
        consumed(s);
        return n;
    }
    if (n > 0 && (size_t)n > size - 1)
        return -WEFT_ELIMIT;        /* found, but does not fit: left in the buffer */
    if (n < 0)
        return n;
    evbuffer_remove(s->in, buf, (size_t)n);
    ((char *)buf)[n] = '\0';
    consumed(s);
    return n;
}

ssize_t
weft_reader_readuntil(struct weft_reader *r, void *buf, size_t size, const void *sep,
                      size_t seplen)
{
    struct iovec v = { .iov_base = (void *)sep, .iov_len = seplen };

    return weft_reader_readuntil_any(r, buf, size, &v, 1, NULL);
}

/* readline's overrun: drop the long line through its newline, or all that is there. */
static void
drop_long_line(struct weft_stream *s, size_t at)
{
    size_t len = buffered(s);

    if (at != SIZE_MAX && at < len)
        evbuffer_drain(s->in, at + 1);
    else if (len > 0)
        evbuffer_drain(s->in, len);
    consumed(s);
}

static const struct iovec newline = { .iov_base = (void *)"\n", .iov_len = 1 };

/*
 * The next line's length, its newline included (at EOF the last line without
 * one, or 0), searching at most search bytes. A line longer than max bytes
 * is dropped: -WEFT_ELIMIT. Other errors as find_sep's.
 */
static ssize_t
line_len(struct weft_stream *s, size_t search, size_t max)
{
    size_t at;
    ssize_t n = find_sep(s, &newline, 1, search, &at);

    if (n == -WEFT_EINCOMPLETE) {
        n = (ssize_t)buffered(s);   /* the last line, without newline, or 0 */
        if ((size_t)n > max) {
            drop_long_line(s, SIZE_MAX);
            return -WEFT_ELIMIT;
        }
    } else if (n == -WEFT_ELIMIT || (n > 0 && (size_t)n > max)) {
        drop_long_line(s, at);
        return -WEFT_ELIMIT;
    }
    return n;
}

ssize_t
weft_reader_readline(struct weft_reader *r, char *buf, size_t size)
{
    struct weft_stream *s = R2S(r);
    ssize_t n;
    int rc = reader_enter(s);

    if (rc < 0)
        return rc;
    if (size == 0)
        return -EINVAL;
    n = line_len(s, min_limit(s, size), size - 1);
    if (n < 0)
        return n;
    if (n > 0)
        evbuffer_remove(s->in, buf, (size_t)n);
    buf[n] = '\0';
    consumed(s);
    return n;
}

ssize_t
weft_reader_next_line(struct weft_reader *r, const char **line)
{
    struct weft_stream *s = R2S(r);
    ssize_t n;
    int rc = reader_enter(s);

    *line = NULL;
    if (rc < 0)
        return rc;
    n = line_len(s, s->limit, SIZE_MAX);
    if (n <= 0)
        return n;
    *line = (const char *)evbuffer_pullup(s->in, n);
    if (*line == NULL)
        return -ENOMEM;
    s->consume = (uint32_t)n;       /* dropped by the next call */
    return n;
}

bool
weft_reader_at_eof(const struct weft_reader *r)
{
    const struct weft_stream *s = R2S(r);

    return (s->flags & S_EOF) && buffered(s) <= s->consume;
}

size_t
weft_reader_buffered(const struct weft_reader *r)
{
    const struct weft_stream *s = R2S(r);

    return buffered(s) - s->consume;
}

void
weft_reader_set_timeout(struct weft_reader *r, int64_t timeout_ms)
{
    R2S(r)->timeout_ms = timeout_ms <= 0 ? 0 : timeout_ms > UINT32_MAX ? UINT32_MAX
                                                                        : (uint32_t)timeout_ms;
}

size_t
weft_reader_get_limit(const struct weft_reader *r)
{
    return R2S(r)->limit;
}

struct weft_writer *
weft_reader_writer(struct weft_reader *r)
{
    return &R2S(r)->w;
}

/* ---- writer ---- */

int
weft_writer_write(struct weft_writer *w, const void *data, size_t len)
{
    struct weft_stream *s = W2S(w);

    return s->tr != NULL ? weft_transport_write(s->tr, data, len) : -EPIPE;
}

int
weft_writer_writelines(struct weft_writer *w, const struct iovec *iov, int iovcnt)
{
    struct weft_stream *s = W2S(w);

    return s->tr != NULL ? weft_transport_writelines(s->tr, iov, iovcnt) : -EPIPE;
}

int
weft_writer_write_buffer(struct weft_writer *w, struct evbuffer *buf)
{
    struct weft_stream *s = W2S(w);

    return s->tr != NULL ? weft_transport_write_buffer(s->tr, buf) : -EPIPE;
}

/*
 * Await f (a reference the caller gives up) in task cur; the stream's own
 * handler is marked as waiting on its stream meanwhile, so a lost
 * connection wakes it instead of cancelling it. 0 or the negative result.
 */
static int
await_on_stream(struct weft_stream *s, struct weft_task *cur, struct weft_future *f)
{
    intptr_t rc;

    if (cur == s->task)
        s->flags |= S_HWAIT;
    rc = weft_await(f);
    if (cur == s->task)
        s->flags &= (uint16_t)~S_HWAIT;
    weft_future_unref(f);
    return rc < 0 ? (int)rc : 0;
}

int
weft_writer_drain(struct weft_writer *w)
{
    struct weft_stream *s = W2S(w);
    struct weft_task *cur;

    if (s->flags & S_LOST)
        return s->error < 0 ? s->error : (s->flags & S_CLOSED) ? -EPIPE : -ECONNRESET;
    if (weft_transport_is_closing(s->tr))
        return -EPIPE;
    if (!(s->flags & S_WPAUSED))
        return 0;
    cur = weft_task_current();
    if (cur == NULL)
        return -WEFT_ENOTASK;
    if (s->dwait == NULL && (s->dwait = weft_future_new(s->loop)) == NULL)
        return -ENOMEM;
    return await_on_stream(s, cur, weft_future_ref(s->dwait));
}

/* The handshake of weft_writer_start_tls is over: tls is the stream's transport, or it failed. */
static void
upgrade_done(struct weft_transport *tls, int error, void *arg)
{
    struct weft_stream *s = arg;

    weft__future_finish(&s->upgrade, error);
    if (tls == NULL) {
        /* The connection is gone and took the transport's reference to the stream. */
        s->flags &= (uint16_t)~S_UPGRADING;
        stream_connection_lost(&s->base, error);
    }
}

int
weft_writer_start_tls(struct weft_writer *w, struct weft_tls_context *ctx,
                      const char *server_hostname)
{
    struct weft_stream *s = W2S(w);
    struct weft_transport *tr;
    struct evbuffer *in;
    uint16_t flags;
    struct weft_task *cur = weft_task_current();
    struct weft_future *f;
    intptr_t rc;

    if (ctx == NULL)
        return -EINVAL;
    (void)reader_enter(s);      /* a line next_line lent is not the handshake's */
    tr = s->tr;
    in = s->in;
    flags = s->flags;
    if (s->flags & S_LOST)
        return s->error < 0 ? s->error : -EPIPE;
    if (cur == NULL)
        return -WEFT_ENOTASK;
    if (s->upgrade != NULL || tr == NULL || weft_transport_is_closing(tr))
        return -EPIPE;
    s->upgrade = weft_future_new(s->loop);
    if (s->upgrade == NULL)
        return -ENOMEM;
    f = weft_future_ref(s->upgrade);
    /* Until the handshake is done nothing may be read or written: no transport. */
    s->tr = NULL;
    s->in = NULL;
    s->flags = (uint16_t)((s->flags | S_UPGRADING) & ~(S_RPAUSED | S_WPAUSED));
    rc = weft_start_tls(tr, &s->base, ctx, server_hostname, upgrade_done, s);
    if (rc < 0) {
        s->tr = tr;
        s->in = in;
        s->flags = flags;
        weft__future_finish(&s->upgrade, rc);
        weft_future_unref(f);
        return (int)rc;
    }
    return await_on_stream(s, cur, f);
}

int
weft_writer_write_eof(struct weft_writer *w)
{
    struct weft_stream *s = W2S(w);

    return s->tr != NULL ? weft_transport_write_eof(s->tr) : -EPIPE;
}

bool
weft_writer_can_write_eof(const struct weft_writer *w)
{
    const struct weft_stream *s = W2S(w);

    return s->tr != NULL && weft_transport_can_write_eof(s->tr);
}

int
weft_writer_close(struct weft_writer *w)
{
    struct weft_stream *s = W2S(w);

    s->flags |= S_CLOSED;
    if (s->tr != NULL)
        weft_transport_close(s->tr);
    return 0;
}

int
weft_writer_wait_closed(struct weft_writer *w, int64_t timeout_ms)
{
    struct weft_stream *s = W2S(w);
    struct weft_future *g;
    intptr_t rc;

    if (s->flags & S_LOST)
        return 0;
    if (weft_task_current() == NULL)
        return -WEFT_ENOTASK;
    if (timeout_ms < 0)
        timeout_ms = 30000;
    if (s->closed == NULL && (s->closed = weft_future_new(s->loop)) == NULL)
        return -ENOMEM;
    /* A shield each, so one waiter's timeout leaves the others waiting. */
    g = weft_shield(s->closed);
    if (g == NULL)
        return -ENOMEM;
    rc = weft_wait_for(g, timeout_ms);
    weft_future_unref(g);
    if (rc == -ETIMEDOUT && s->tr != NULL)
        weft_transport_abort(s->tr);
    return rc < 0 ? (int)rc : 0;
}

bool
weft_writer_is_closing(const struct weft_writer *w)
{
    const struct weft_stream *s = W2S(w);

    return (s->flags & (S_CLOSED | S_LOST)) || weft_transport_is_closing(s->tr);
}

int
weft_writer_get_extra_info(struct weft_writer *w, const char *name, void *out, size_t *len)
{
    struct weft_stream *s = W2S(w);

    return s->tr != NULL ? weft_transport_get_extra_info(s->tr, name, out, len) : -ENOTCONN;
}

struct weft_transport *
weft_writer_transport(struct weft_writer *w)
{
    return W2S(w)->tr;
}

struct weft_reader *
weft_writer_reader(struct weft_writer *w)
{
    return &W2S(w)->r;
}

void
weft_writer_free(struct weft_writer *w)
{
    struct weft_stream *s;

    if (w == NULL)
        return;
    s = W2S(w);
    if (!(s->flags & S_USER))
        return;                     /* a handler's pair: the server frees it */
    s->flags &= (uint16_t)~S_USER;
    weft_writer_close(w);
    weft__stream_unref(s);
}

void
weft__stream_cancel_handlers(struct weft_loop *loop, struct weft_stream_factory *h)
{
    struct streams *st = weft__loop_get_slot(loop, WEFT__SLOT_STREAMS);

    for (struct weft_stream *s = st != NULL ? st->all : NULL; s != NULL; s = s->next)
        if ((h == NULL || s->home == h) && s->task != NULL)
            weft_task_cancel(s->task);
}
