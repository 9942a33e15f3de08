/* SPDX-License-Identifier: MIT */
/* tls_transport.c: the TLS flavour of the transport: OpenSSL on the socket, driven by our events. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls-int.h"

/*
 * The TLS transport is the socket transport's struct with an SSL on the same
 * socket (a socket BIO) and the same trick: the bufferevent supplies the two
 * evbuffers and two events, which we re-assign to the callbacks below.
 * libevent's bufferevent_openssl is not used: the transport already owns the
 * read and write paths, and in 2.1.12 the OpenSSL bufferevent has stalls with
 * rate limits and watermarks and does no close_notify on close (see
 * docs/design-tls.md).
 *
 * The states:
 *   HANDSHAKE  SSL_do_handshake until done (a timer bounds it); the protocol
 *              does not exist yet: the factory runs when the handshake is done.
 *   OPEN       SSL_read into the input evbuffer, SSL_write from the output.
 *   SHUTDOWN   after close() and a drained queue: close_notify sent, reading
 *              (and discarding) until the peer's arrives, the TCP connection
 *              ends, or the shutdown timer fires.
 * OpenSSL may need to read to write or the reverse; the want bits remember
 * which event must wake which path, and sync_events() arms exactly the events
 * the state needs.
 */

#define TLS_RECORD 16384        /* SSL_write at most one record's worth */
#define READS_PER_WAKE 16       /* records per read wake-up, so no connection starves others */
#define PULLUP_BELOW 4096       /* gather a queue's small first chains into one record */

enum { ST_HANDSHAKE, ST_OPEN, ST_SHUTDOWN };

enum {
    W_READ = 1u << 0,           /* the current step (handshake, shutdown) waits to read */
    W_WRITE = 1u << 1,          /* ... to write */
    W_READ_WANTS_WRITE = 1u << 2,   /* SSL_read returned WANT_WRITE */
    W_WRITE_WANTS_READ = 1u << 3,   /* SSL_write returned WANT_READ */
    W_NOTIFY_SENT = 1u << 4,        /* our close_notify is out */
};

struct tls_tr {
    struct weft_transport base;     /* first: freed as one block by transport_free */
    SSL *ssl;
    struct weft_tls_context *ctx;
    struct event timer;             /* handshake, then shutdown timeout */
    weft_protocol_factory_cb *factory;
    void *farg;
    weft__tls_done_cb *done;
    void *darg;
    char *hostname;                 /* client: the name asked for (SNI) */
    uint8_t state;
    uint8_t want;
};

const char *
weft__tls_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    if (r == NULL && e != 0) {
        ERR_error_string_n(e, buf, len);
    } else {
        snprintf(buf, len, "%s", r != NULL ? r : "unknown error");
    }
    ERR_clear_error();
    return buf;
}

static inline struct tls_tr *
T(struct weft_transport *tr)
{
    return (struct tls_tr *)tr;
}

static inline const struct weft_protocol_ops *
proto_ops(const struct weft_transport *tr)
{
    return tr->proto != NULL ? tr->proto->ops : NULL;
}

static void
set_event(struct event *ev, bool on)
{
    bool pending = event_pending(ev, EV_READ | EV_WRITE, NULL) != 0;

    if (on && !pending)
        event_add(ev, NULL);
    else if (!on && pending)
        event_del(ev);
}

/* Arm exactly the events the current state waits for. */
static void
sync_events(struct tls_tr *t)
{
    struct weft_transport *tr = &t->base;
    struct bufferevent *bev = tr->bev;
    bool rd, wr;

    if (tr->flags & (TR_LOST_PENDING | TR_LOST))
        return;
    if (t->state != ST_OPEN) {
        rd = (t->want & W_READ) != 0;
        wr = (t->want & W_WRITE) != 0;
    } else {
        rd = (t->want & W_WRITE_WANTS_READ) ||
             !(tr->flags & (TR_READ_PAUSED | TR_CLOSING | TR_EOF_RCVD));
        wr = (t->want & W_READ_WANTS_WRITE) ||
             (evbuffer_get_length(bev->output) > 0 && !(t->want & W_WRITE_WANTS_READ));
    }
    set_event(&bev->ev_read, rd);
    set_event(&bev->ev_write, wr);
}

static void
lost(struct tls_tr *t, int err)
{
    weft__tr_schedule_lost(&t->base, err);
}

/* Map a failed SSL call to an error code, logging what TLS said. */
static int
ssl_failure(struct tls_tr *t, int e, const char *what)
{
    char peer[64], why[160];
    int sys = errno;

    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
        int rc = e == SSL_ERROR_SYSCALL && sys != 0 && sys != EAGAIN ? -sys : -ECONNRESET;

        ERR_clear_error();
        if (t->state == ST_HANDSHAKE)
            weft_log(WEFT_LOG_DEBUG, "TLS handshake with %s: %s",
                     weft_transport_peer_string(&t->base, peer, sizeof(peer)),
                     rc == -ECONNRESET ? "the peer closed the connection" : strerror(-rc));
        return rc;
    }
    if (t->state == ST_HANDSHAKE && SSL_get_verify_result(t->ssl) != X509_V_OK) {
        long v = SSL_get_verify_result(t->ssl);

        ERR_clear_error();
        weft_log(WEFT_LOG_NOTICE, "TLS %s with %s: certificate verification failed: %s", what,
                 weft_transport_peer_string(&t->base, peer, sizeof(peer)),
                 X509_verify_cert_error_string(v));
        return -WEFT_ETLS;
    }
    weft_log(WEFT_LOG_INFO, "TLS %s with %s failed: %s", what,
             weft_transport_peer_string(&t->base, peer, sizeof(peer)),
             weft__tls_reason(why, sizeof(why)));
    return -WEFT_ETLS;
}

/* ---- writing ---- */

/*
 * Hand the queue to SSL_write, a record at a time, until it is empty or the
 * socket is full. After WANT_WRITE OpenSSL wants the same bytes again, at
 * least as many: the front of the queue is exactly that (a first chain only
 * grows, a pulled-up one stays pulled up). Returns 0 or a negative code.
 */
static int
flush_output(struct tls_tr *t)
{
    struct evbuffer *out = t->base.bev->output;
    size_t len;

    while ((len = evbuffer_get_length(out)) > 0) {
        struct evbuffer_iovec v;
        size_t n;
        void *p;
        int r, e;

        if (evbuffer_peek(out, -1, NULL, &v, 1) < 1)
            return -ENOMEM;
        n = v.iov_len;
        p = v.iov_base;
        if (n < PULLUP_BELOW && len > n) {
            n = len < TLS_RECORD ? len : TLS_RECORD;
            evbuffer_unfreeze(out, 1);
            p = evbuffer_pullup(out, (ev_ssize_t)n);
            evbuffer_freeze(out, 1);
            if (p == NULL)
                return -ENOMEM;
        } else if (n > TLS_RECORD) {
            n = TLS_RECORD;
        }
        ERR_clear_error();
        r = SSL_write(t->ssl, p, (int)n);
        if (r > 0) {
            evbuffer_unfreeze(out, 1);
            evbuffer_drain(out, (size_t)r);
            evbuffer_freeze(out, 1);
            continue;
        }
        e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE)
            return 0;
        if (e == SSL_ERROR_WANT_READ) {
            t->want |= W_WRITE_WANTS_READ;
            return 0;
        }
        return ssl_failure(t, e, "write");
    }
    return 0;
}

static void start_shutdown(struct tls_tr *t);

/* After writing: resume a paused protocol, close once drained, re-arm. */
static void
after_flush(struct tls_tr *t)
{
    struct weft_transport *tr = &t->base;
    size_t len = evbuffer_get_length(tr->bev->output);

    if ((tr->flags & TR_WRITE_PAUSED) && len <= tr->low) {
        const struct weft_protocol_ops *ops = proto_ops(tr);

        tr->flags &= (uint16_t)~TR_WRITE_PAUSED;
        if (ops != NULL && ops->resume_writing != NULL) {
            tr->in_cb++;
            ops->resume_writing(tr->proto);
            tr->in_cb--;
        }
        if (tr->flags & TR_LOST_PENDING)
            return;
        len = evbuffer_get_length(tr->bev->output);
    }
    if (len == 0 && (tr->flags & TR_CLOSING) && t->state == ST_OPEN) {
        start_shutdown(t);
        return;
    }
    sync_events(t);
}

/* Something was queued: write what the socket takes, pause the protocol past the mark. */
static int
queued(struct tls_tr *t)
{
    struct weft_transport *tr = &t->base;
    int rc = 0;

    if (!(t->want & W_WRITE_WANTS_READ)) {
        rc = flush_output(t);
        if (rc < 0) {
            lost(t, rc);
            return 0;       /* reported through connection_lost, as a socket error */
        }
    }
    if (!(tr->flags & TR_WRITE_PAUSED) && evbuffer_get_length(tr->bev->output) > tr->high) {
        const struct weft_protocol_ops *ops = proto_ops(tr);

        tr->flags |= TR_WRITE_PAUSED;
        if (ops != NULL && ops->pause_writing != NULL) {
            tr->in_cb++;
            ops->pause_writing(tr->proto);
            tr->in_cb--;
        }
    }
    sync_events(t);
    return rc;
}

static int
tls_write(struct weft_transport *tr, const void *data, size_t len)
{
    struct tls_tr *t = T(tr);
    struct evbuffer *out = tr->bev->output;

    if (len == 0)
        return 0;
    if (t->state != ST_OPEN)
        return -EPIPE;
    /* Nothing queued: encrypt straight from the caller's memory, queue the rest. */
    if (evbuffer_get_length(out) == 0 && !(t->want & W_WRITE_WANTS_READ)) {
        while (len > 0) {
            int n = len > TLS_RECORD ? TLS_RECORD : (int)len;
            int r, e;

            ERR_clear_error();
            r = SSL_write(t->ssl, data, n);
            if (r > 0) {
                data = (const char *)data + r;
                len -= (size_t)r;
                continue;
            }
            e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_WRITE)
                break;
            if (e == SSL_ERROR_WANT_READ) {
                t->want |= W_WRITE_WANTS_READ;
                break;
            }
            lost(t, ssl_failure(t, e, "write"));
            return 0;
        }
        if (len == 0)
            return 0;
    }
    if (evbuffer_add(out, data, len) < 0) {
        lost(t, -ENOMEM);
        return -ENOMEM;
    }
    return queued(t);
}

static int
tls_write_buffer(struct weft_transport *tr, struct evbuffer *buf)
{
    struct tls_tr *t = T(tr);

    if (evbuffer_get_length(buf) == 0)
        return 0;
    if (t->state != ST_OPEN)
        return -EPIPE;
    if (evbuffer_add_buffer(tr->bev->output, buf) < 0) {
        lost(t, -ENOMEM);
        return -ENOMEM;
    }
    return queued(t);
}

static int
tls_writelines(struct weft_transport *tr, const struct iovec *iov, int iovcnt)
{
    struct tls_tr *t = T(tr);
    size_t total = 0;

    if (t->state != ST_OPEN)
        return -EPIPE;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len == 0)
            continue;
        if (evbuffer_add(tr->bev->output, iov[i].iov_base, iov[i].iov_len) < 0) {
            lost(t, -ENOMEM);
            return -ENOMEM;
        }
        total += iov[i].iov_len;
    }
    return total > 0 ? queued(t) : 0;
}

/* ---- reading ---- */

static void
protocol_failed(struct tls_tr *t, const char *message, int rc)
{
    char peer[80];
    struct weft_error_context ctx = {
        .message = message, .error = rc, .transport = &t->base,
        .peer = weft_transport_peer_string(&t->base, peer, sizeof(peer)),
    };

    weft_loop_call_error_handler(t->base.loop, &ctx);
    weft_transport_abort(&t->base);
}

/* close_notify (or a plain TCP EOF): eof_received's answer cannot keep TLS half open. */
static void
on_eof(struct tls_tr *t)
{
    struct weft_transport *tr = &t->base;
    const struct weft_protocol_ops *ops = proto_ops(tr);

    tr->flags |= TR_EOF_RCVD;
    if (ops != NULL && ops->eof_received != NULL) {
        tr->in_cb++;
        (void)ops->eof_received(tr->proto);
        tr->in_cb--;
    }
    if (!(tr->flags & TR_CLOSING))
        weft_transport_close(tr);
    else
        sync_events(t);
}

static void
read_records(struct tls_tr *t)
{
    struct weft_transport *tr = &t->base;
    struct evbuffer *in = tr->bev->input;
    const struct weft_protocol_ops *ops;
    size_t total = 0;
    int e = SSL_ERROR_NONE, i, rc;

    /* bufferevent_socket_new() froze the input's end; we are its writer. */
    evbuffer_unfreeze(in, 0);
    for (i = 0; i < READS_PER_WAKE; i++) {
        struct evbuffer_iovec v;
        int r;

        if (evbuffer_reserve_space(in, TLS_RECORD, &v, 1) < 1) {
            evbuffer_freeze(in, 0);
            protocol_failed(t, "cannot allocate the read buffer", -ENOMEM);
            return;
        }
        ERR_clear_error();
        r = SSL_read(t->ssl, v.iov_base, v.iov_len > INT32_MAX ? INT32_MAX : (int)v.iov_len);
        if (r <= 0) {
            e = SSL_get_error(t->ssl, r);
            break;
        }
        v.iov_len = (size_t)r;
        evbuffer_commit_space(in, &v, 1);
        total += (size_t)r;
    }
    if (total == 0 && evbuffer_get_length(in) == 0 && evbuffer_add(in, "", 1) == 0)
        evbuffer_drain(in, 1);      /* no empty chain on an idle connection */
    evbuffer_freeze(in, 0);

    if (total > 0) {
        ops = proto_ops(tr);
        if (ops == NULL || ops->data_received == NULL) {
            evbuffer_drain(in, evbuffer_get_length(in));
        } else {
            tr->in_cb++;
            rc = ops->data_received(tr->proto, in);
            tr->in_cb--;
            if (rc < 0) {
                protocol_failed(t, "protocol data_received failed", rc);
                return;
            }
        }
        if (tr->flags & (TR_LOST_PENDING | TR_LOST))
            return;
    }
    switch (e) {
    case SSL_ERROR_NONE:
        /*
         * The wake-up's budget is spent with records perhaps still inside
         * OpenSSL, where epoll cannot see them: come back from the loop.
         */
        if (!(tr->flags & (TR_READ_PAUSED | TR_CLOSING)))
            event_active(&tr->bev->ev_read, EV_READ, 1);
        break;
    case SSL_ERROR_WANT_READ:
        break;
    case SSL_ERROR_WANT_WRITE:
        t->want |= W_READ_WANTS_WRITE;
        sync_events(t);
        break;
    case SSL_ERROR_ZERO_RETURN:
        on_eof(t);
        break;
    default:
        lost(t, ssl_failure(t, e, "read"));
        break;
    }
}

/* ---- handshake ---- */

static void
handshake_done(struct tls_tr *t)
{
    struct weft_transport *tr = &t->base;
    const struct weft_protocol_ops *ops;
    struct weft_protocol *proto;
    weft__tls_done_cb *done = t->done;
    int rc;

    event_del(&t->timer);
    t->state = ST_OPEN;
    t->want = 0;
    tr->in_cb++;
    proto = t->factory(t->farg);
    tr->in_cb--;
    if (proto == NULL) {
        weft_log(WEFT_LOG_WARNING, "TLS: protocol factory failed; connection dropped");
        lost(t, -ENOMEM);
        return;
    }
    tr->proto = proto;
    tr->flags |= TR_MADE;
    ops = proto_ops(tr);
    if (ops != NULL && ops->connection_made != NULL) {
        tr->in_cb++;
        rc = ops->connection_made(proto, tr);
        tr->in_cb--;
        if (rc < 0)
            protocol_failed(t, "protocol connection_made failed", rc);
    }
    if (done != NULL) {
        t->done = NULL;
        tr->in_cb++;
        done(tr, 0, t->darg);
        tr->in_cb--;
    }
    if (tr->flags & (TR_LOST_PENDING | TR_LOST))
        return;
    sync_events(t);
    /* Application data that came with the last handshake flight is inside OpenSSL. */
    if (SSL_has_pending(t->ssl) && !(tr->flags & (TR_READ_PAUSED | TR_CLOSING)))
        event_active(&tr->bev->ev_read, EV_READ, 1);
}

/*
 * OpenSSL failed the handshake because the first bytes are a plain HTTP request
 * line (SSL_R_HTTP_REQUEST: "GET ", "POST", "HEAD", "PUT "; SSL_R_HTTPS_PROXY_REQUEST:
 * "CONNECT"). Say so in plain HTTP, as nginx does, instead of a silent close: the
 * answer fits any socket buffer, writing is shut down after it and what the client
 * already sent is read and dropped, so the close that follows sends no RST that
 * could destroy the answer on its way. For any service: a client that speaks HTTP
 * to a TLS port wants to hear it, whatever the protocol behind (docs/design-tls.md).
 */
static bool
answer_plain_http(struct tls_tr *t)
{
    static const char answer[] =
        "HTTP/1.1 400 Bad Request\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 52\r\n"
        "Connection: close\r\n"
        "\r\n"
        "400 The plain HTTP request was sent to a TLS port.\r\n";
    unsigned long err = ERR_peek_error();
    char peer[64], junk[4096];
    int fd = t->base.fd;

    if (ERR_GET_LIB(err) != ERR_LIB_SSL ||
        (ERR_GET_REASON(err) != SSL_R_HTTP_REQUEST &&
         ERR_GET_REASON(err) != SSL_R_HTTPS_PROXY_REQUEST))
        return false;
    /* The peer's address first: once the client closes, getpeername() fails. */
    weft_transport_peer_string(&t->base, peer, sizeof(peer));
    if (send(fd, answer, sizeof(answer) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        return false;
    (void)shutdown(fd, SHUT_WR);
    for (int i = 0; i < 16 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT) > 0; i++)
        ;
    weft_log(WEFT_LOG_INFO, "TLS handshake with %s: plain HTTP on a TLS port, answered 400", peer);
    ERR_clear_error();
    return true;
}

static void
handshake_step(struct tls_tr *t)
{
    int r, e;

    ERR_clear_error();
    r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        handshake_done(t);
        return;
    }
    e = SSL_get_error(t->ssl, r);
    t->want &= (uint8_t)~(W_READ | W_WRITE);
    if (e == SSL_ERROR_WANT_READ) {
        t->want |= W_READ;
    } else if (e == SSL_ERROR_WANT_WRITE) {
        t->want |= W_WRITE;
    } else {
        lost(t, e == SSL_ERROR_SSL && answer_plain_http(t) ? -WEFT_ETLS
                                                           : ssl_failure(t, e, "handshake"));
        return;
    }
    sync_events(t);
}

/* ---- shutdown ---- */

static void
shutdown_step(struct tls_tr *t)
{
    int r, e;

    t->want &= (uint8_t)~(W_READ | W_WRITE);
    if (!(t->want & W_NOTIFY_SENT)) {
        ERR_clear_error();
        r = SSL_shutdown(t->ssl);
        if (r == 1) {               /* the peer's close_notify came first */
            lost(t, 0);
            return;
        }
        if (r == 0) {
            t->want |= W_NOTIFY_SENT;
        } else {
            e = SSL_get_error(t->ssl, r);
            ERR_clear_error();
            if (e != SSL_ERROR_WANT_WRITE) {
                lost(t, 0);         /* the peer is gone: nothing more to say */
                return;
            }
            t->want |= W_WRITE;
            sync_events(t);
            return;
        }
    }
    /* Read and drop until the peer's close_notify, or its EOF. */
    for (int i = 0; i < READS_PER_WAKE; i++) {
        char buf[4096];

        ERR_clear_error();
        r = SSL_read(t->ssl, buf, sizeof(buf));
        if (r > 0)
            continue;
        e = SSL_get_error(t->ssl, r);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ) {
            t->want |= W_READ;
        } else if (e == SSL_ERROR_WANT_WRITE) {
            t->want |= W_WRITE;
        } else {
            lost(t, 0);             /* close_notify, EOF, or an error: done either way */
            return;
        }
        sync_events(t);
        return;
    }
    t->want |= W_READ;
    sync_events(t);
    event_active(&t->base.bev->ev_read, EV_READ, 1);
}

static void
start_shutdown(struct tls_tr *t)
{
    struct timeval tv = {
        .tv_sec = t->ctx->shutdown_ms / 1000,
        .tv_usec = (t->ctx->shutdown_ms % 1000) * 1000,
    };

    t->state = ST_SHUTDOWN;
    t->want &= (uint8_t)~(W_READ_WANTS_WRITE | W_WRITE_WANTS_READ);
    evtimer_add(&t->timer, &tv);
    /* Called from a protocol or a task: the reading is left to the loop's callbacks. */
    shutdown_step(t);
}

static void
tls_close(struct weft_transport *tr)
{
    struct tls_tr *t = T(tr);

    tr->flags |= TR_CLOSING;
    if (t->state == ST_HANDSHAKE) {
        lost(t, 0);
        return;
    }
    if (evbuffer_get_length(tr->bev->output) == 0)
        start_shutdown(t);
    else
        sync_events(t);     /* writes go on; after_flush() starts the shutdown */
}

void
weft__tls_cancel(struct weft_transport *tr)
{
    T(tr)->done = NULL;
    weft_transport_abort(tr);
}

static void
tls_resume_reading(struct weft_transport *tr)
{
    struct tls_tr *t = T(tr);

    /* Records OpenSSL read ahead are invisible to epoll. */
    if (t->state == ST_OPEN && SSL_has_pending(t->ssl))
        event_active(&tr->bev->ev_read, EV_READ, 1);
}

/* ---- events ---- */

static void
deliver(struct tls_tr *t)
{
    struct weft_transport *tr = &t->base;
    weft__tls_done_cb *done = t->done;

    if (done != NULL) {
        int err = tr->error != 0 ? tr->error : -ECONNABORTED;

        t->done = NULL;
        done(NULL, err, t->darg);
    }
    weft__tr_deliver_lost(tr);     /* frees tr */
}

static void
on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct tls_tr *t = arg;
    struct weft_transport *tr = &t->base;

    (void)fd;
    (void)what;
    tr->flags |= TR_ACTIVE;        /* for the idle timeout (transport.c) */
    if (unlikely(tr->flags & TR_LOST_PENDING)) {
        deliver(t);
        return;
    }
    switch (t->state) {
    case ST_HANDSHAKE:
        handshake_step(t);
        return;
    case ST_SHUTDOWN:
        shutdown_step(t);
        return;
    default:
        break;
    }
    if (t->want & W_WRITE_WANTS_READ) {
        int rc;

        t->want &= (uint8_t)~W_WRITE_WANTS_READ;
        rc = flush_output(t);
        if (rc < 0) {
            lost(t, rc);
            return;
        }
        after_flush(t);
        if (tr->flags & (TR_LOST_PENDING | TR_LOST) || t->state != ST_OPEN)
            return;
    }
    if (tr->flags & (TR_READ_PAUSED | TR_CLOSING | TR_EOF_RCVD)) {
        sync_events(t);
        return;
    }
    read_records(t);
}

static void
on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct tls_tr *t = arg;
    struct weft_transport *tr = &t->base;
    int rc;

    (void)fd;
    (void)what;
    if (tr->flags & (TR_LOST_PENDING | TR_LOST))
        return;
    tr->flags |= TR_ACTIVE;
    switch (t->state) {
    case ST_HANDSHAKE:
        handshake_step(t);
        return;
    case ST_SHUTDOWN:
        shutdown_step(t);
        return;
    default:
        break;
    }
    if (t->want & W_READ_WANTS_WRITE) {
        t->want &= (uint8_t)~W_READ_WANTS_WRITE;
        if (!(tr->flags & (TR_READ_PAUSED | TR_CLOSING | TR_EOF_RCVD))) {
            read_records(t);
            if (tr->flags & (TR_LOST_PENDING | TR_LOST))
                return;
        }
    }
    rc = flush_output(t);
    if (rc < 0) {
        lost(t, rc);
        return;
    }
    after_flush(t);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct tls_tr *t = arg;
    char peer[64];

    (void)fd;
    (void)what;
    if (t->base.flags & (TR_LOST_PENDING | TR_LOST))
        return;
    if (t->state == ST_HANDSHAKE) {
        weft_log(WEFT_LOG_INFO, "TLS handshake with %s timed out after %u ms",
                 weft_transport_peer_string(&t->base, peer, sizeof(peer)),
                 (unsigned)t->ctx->handshake_ms);
        lost(t, -ETIMEDOUT);
    } else {
        weft_log(WEFT_LOG_DEBUG, "TLS: no close_notify from %s within %u ms; closing",
                 weft_transport_peer_string(&t->base, peer, sizeof(peer)),
                 (unsigned)t->ctx->shutdown_ms);
        lost(t, 0);
    }
}

/* ---- life ---- */

static void
tls_release(struct weft_transport *tr)
{
    struct tls_tr *t = T(tr);

    event_del(&t->timer);
    SSL_free(t->ssl);       /* its socket BIO does not close the fd */
    t->ctx->wrapper.ops->unref(&t->ctx->wrapper);
    free(t->hostname);
}

static int tls_extra_info(struct weft_transport *tr, const char *name, void *out, size_t *len);

/* The TLS flavour (transport-int.h): SSL over the socket, its own read and write paths. */
static const struct weft__transport_ops tls_ops = {
    .name = "tls",
    .write = tls_write,
    .write_buffer = tls_write_buffer,
    .writelines = tls_writelines,
    .close = tls_close,
    .reading_resumed = tls_resume_reading,
    .extra_info = tls_extra_info,
    .release = tls_release,
    .can_write_eof = false,
};

int
weft__transport_new_tls(struct weft_loop *loop, int fd, struct weft_tls_context *ctx,
                        const char *hostname, weft_protocol_factory_cb *factory, void *farg,
                        struct weft__conns *conns, weft__tls_done_cb *done, void *darg,
                        struct weft_transport **out)
{
    struct event_base *base = weft_loop_get_base(loop);
    struct timeval tv = {
        .tv_sec = ctx->handshake_ms / 1000,
        .tv_usec = (ctx->handshake_ms % 1000) * 1000,
    };
    struct weft_transport *tr;
    struct bufferevent *bev;
    struct tls_tr *t;
    int one = 1;

    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    tr = &t->base;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ctxs[0]);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, fd) != 1)
        goto nomem;
    if (ctx->client) {
        SSL_set_connect_state(t->ssl);
        if (hostname != NULL && hostname[0] != '\0') {
            struct in6_addr a6;
            struct in_addr a4;

            t->hostname = strdup(hostname);
            if (t->hostname == NULL)
                goto nomem;
            /* SNI carries names, never addresses (RFC 6066 3). */
            if (inet_pton(AF_INET, hostname, &a4) != 1 &&
                inet_pton(AF_INET6, hostname, &a6) != 1 &&
                SSL_set_tlsext_host_name(t->ssl, hostname) != 1)
                goto nomem;
            /* An address is checked against the certificate's IP entries. */
            if (SSL_get_verify_mode(t->ssl) != SSL_VERIFY_NONE &&
                SSL_set1_host(t->ssl, hostname) != 1)
                goto nomem;
        }
    } else {
        SSL_set_accept_state(t->ssl);
    }
    bev = bufferevent_socket_new(base, fd, 0);
    if (bev == NULL)
        goto nomem;
    /* Only sync_events() arms the write event (not the output buffer's callback). */
    bufferevent_disable(bev, EV_WRITE);
    tr->bev = bev;
    tr->loop = loop;
    tr->fd = fd;
    tr->high = WEFT_WRITE_HIGH_DEFAULT;
    tr->low = WEFT_WRITE_LOW_DEFAULT;
    tr->ops = &tls_ops;
    ctx->wrapper.ops->ref(&ctx->wrapper);
    t->ctx = ctx;
    t->factory = factory;
    t->farg = farg;
    t->done = done;
    t->darg = darg;
    t->state = ST_HANDSHAKE;
    event_assign(&bev->ev_read, base, fd, EV_READ | EV_PERSIST | EV_FINALIZE, on_readable, t);
    event_assign(&bev->ev_write, base, fd, EV_WRITE | EV_PERSIST | EV_FINALIZE, on_writable, t);
    evtimer_assign(&t->timer, base, on_timer, t);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (evtimer_add(&t->timer, &tv) < 0) {
        /* transport_free() would close fd, which stays the caller's on failure */
        event_assign(&bev->ev_read, base, fd, EV_READ | EV_PERSIST | EV_FINALIZE, NULL, bev);
        event_assign(&bev->ev_write, base, fd, EV_WRITE | EV_PERSIST | EV_FINALIZE, NULL, bev);
        bufferevent_free(bev);
        t->ctx->wrapper.ops->unref(&t->ctx->wrapper);
        t->ctx = NULL;
        goto nomem;
    }
    if (conns != NULL)
        weft__conns_link(conns, tr);
    if (out != NULL)
        *out = tr;
    /*
     * A client speaks first, a server waits for the ClientHello. The client's
     * first step also waits for the loop (the socket is writable at once):
     * this may run on a task's small stack, and key generation is not small.
     */
    t->want = ctx->client ? W_WRITE : W_READ;
    sync_events(t);
    return 0;
nomem:
    SSL_free(t->ssl);
    free(t->hostname);
    free(t);
    return -ENOMEM;
}

/* ---- get_extra_info ---- */

static int
copy_string(const char *s, void *out, size_t *len)
{
    size_t n;

    if (s == NULL)
        return -ENOENT;
    n = strlen(s) + 1;
    if (*len < n) {
        *len = n;
        return -ENOBUFS;
    }
    memcpy(out, s, n);
    *len = n;
    return 0;
}

static int
tls_extra_info(struct weft_transport *tr, const char *name, void *out, size_t *len)
{
    struct tls_tr *t = T(tr);
    SSL *ssl = t->ssl;

    if (strcmp(name, "ssl_object") == 0) {
        if (*len < sizeof(ssl)) {
            *len = sizeof(ssl);
            return -ENOBUFS;
        }
        memcpy(out, &ssl, sizeof(ssl));
        *len = sizeof(ssl);
        return 0;
    }
    if (t->state == ST_HANDSHAKE)
        return -ENOENT;
    if (strcmp(name, "tls_version") == 0)
        return copy_string(SSL_get_version(ssl), out, len);
    if (strcmp(name, "cipher") == 0)
        return copy_string(SSL_get_cipher_name(ssl), out, len);
    if (strcmp(name, "alpn_protocol") == 0) {
        const unsigned char *p;
        unsigned n;
        char buf[256];

        SSL_get0_alpn_selected(ssl, &p, &n);
        if (p == NULL || n == 0)
            return -ENOENT;
        memcpy(buf, p, n);
        buf[n] = '\0';
        return copy_string(buf, out, len);
    }
    if (strcmp(name, "sni") == 0)
        return copy_string(t->ctx->client ? t->hostname
                                          : SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name),
                           out, len);
    if (strcmp(name, "peercert_subject") == 0) {
        X509 *x = SSL_get0_peer_certificate(ssl);
        BIO *b;
        char *s;
        long n;
        int rc;

        if (x == NULL)
            return -ENOENT;
        b = BIO_new(BIO_s_mem());
        if (b == NULL)
            return -ENOMEM;
        if (X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) < 0 ||
            BIO_write(b, "", 1) != 1) {
            BIO_free(b);
            return -ENOMEM;
        }
        n = BIO_get_mem_data(b, &s);
        rc = n > 0 ? copy_string(s, out, len) : -ENOENT;
        BIO_free(b);
        return rc;
    }
    return -ENOENT;
}
