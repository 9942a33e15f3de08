/* SPDX-License-Identifier: MIT */
/* tls_transport.c: TLS as a layer: the protocol of the transport below, the transport of the protocol above. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls-int.h"

/*
 * A TLS connection is two transports (docs/design-tls.md):
 *
 *   protocol  <- plaintext ->  TLS transport (this file's flavour)
 *                                 | is the protocol of
 *                              the transport below (a socket today; any flavour)
 *
 * OpenSSL talks to the transport below through a BIO of our own: its write
 * is weft_transport_write() on the lower transport (so ciphertext goes
 * straight to the kernel when nothing is queued, as with a socket BIO, and
 * the lower queue's marks pause the protocol above), except while the layer
 * is corked: a write of more than one record gathers its records in one
 * evbuffer, handed down as one write when the call ends (one sendmsg for a
 * 64 KiB write, not four; a handshake flight is one already, OpenSSL
 * buffers it in a BIO of its own); its read takes bytes
 * from the lower transport's input evbuffer, which its data_received hands
 * over. Nothing here knows what the lower transport is: TLS over a Unix
 * socket, or pushed onto a live connection (start_tls), is the same code.
 *
 * The states:
 *   HANDSHAKE  SSL_do_handshake as ciphertext arrives (a timer bounds it); the
 *              protocol does not exist yet: the factory runs when it is done.
 *   OPEN       records become plaintext for the protocol; writes become records.
 *   SHUTDOWN   after close(): close_notify queued behind what was written,
 *              then reading (and discarding) until the peer's close_notify or
 *              EOF, or the shutdown timer; then the lower transport closes.
 *   PLAIN      a plain HTTP request came to the TLS port: answered in plain
 *              HTTP, writing shut down, what comes is dropped until EOF.
 * The lower transport's connection_lost is the end of both: the TLS
 * transport's connection_lost (or its done callback) runs from it, and frees
 * the TLS transport. No writes can wait on reads: renegotiation is off
 * (tls.c), and the BIO takes every record.
 */

#define TLS_RECORD 16384        /* SSL_write at most one record's worth */
#define READS_PER_WAKE 16       /* records per turn, so no connection starves others */
#define PULLUP_BELOW 4096       /* gather a queue's small first chains into one record */
#define GATHER_MAX (256u * 1024) /* corked ciphertext handed down mid-write past this */
#define RECORD_SLACK 64         /* a record's header, tag and padding: more than any suite adds */
#define BUFFERS_IDLE_MS 1000    /* OpenSSL's buffers freed after 1-2 such spans without a record */

enum { ST_HANDSHAKE, ST_OPEN, ST_SHUTDOWN, ST_PLAIN };

struct tls_tr {
    struct weft_transport base;     /* first: what the protocol above holds */
    struct weft_protocol below;     /* what the lower transport holds */
    struct weft_transport *lower;   /* NULL once it is lost */
    struct evbuffer *cin;           /* the lower's input: ciphertext, read by the BIO */
    struct evbuffer *in;            /* plaintext for the protocol */
    struct evbuffer *out;           /* writelines: gathered into records */
    struct evbuffer *cout;          /* corked: the records of one call, for one lower write */
    SSL *ssl;
    struct weft_tls_context *ctx;
    struct event timer;             /* handshake, then shutdown timeout */
    struct event later;             /* the read path from the loop (no fd) */
    weft_protocol_factory_cb *factory;
    void *farg;
    weft__tls_done_cb *done;
    void *darg;
    char *hostname;                 /* client: the name asked for (SNI) */
    int write_error;                /* the lower transport refused a record */
    uint8_t state;
    bool lower_eof;                 /* the lower transport's EOF came */
    bool corked;                    /* the BIO appends to cout (cork() .. uncork()) */
    bool busy;                      /* OPEN: records read or written since the timer's start */
    bool sweeping;                  /* OPEN: timer runs for buffers_idle() */
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

static inline struct tls_tr *
B(struct weft_protocol *p)
{
    return (struct tls_tr *)(void *)((char *)p - offsetof(struct tls_tr, below));
}

static inline bool
gone(const struct tls_tr *t)
{
    return t->lower == NULL || (t->base.flags & TR_LOST);
}

/* ---- the BIO: OpenSSL's ciphertext to and from the lower transport ---- */

static BIO_METHOD *bio_method;
static pthread_mutex_t bio_lock = PTHREAD_MUTEX_INITIALIZER;

static int
bio_write(BIO *b, const char *data, int len)
{
    struct tls_tr *t = BIO_get_data(b);
    int rc;

    BIO_clear_retry_flags(b);
    if (t->lower == NULL) {
        t->write_error = -EPIPE;
        return -1;
    }
    if (t->corked) {
        if (evbuffer_add(t->cout, data, (size_t)len) < 0) {
            t->write_error = -ENOMEM;
            return -1;
        }
        return len;
    }
    rc = weft_transport_write(t->lower, data, (size_t)len);
    if (rc < 0) {
        t->write_error = rc;
        return -1;
    }
    return len;
}

static int
bio_read(BIO *b, char *buf, int len)
{
    struct tls_tr *t = BIO_get_data(b);
    int n;

    BIO_clear_retry_flags(b);
    n = t->cin != NULL ? evbuffer_remove(t->cin, buf, (size_t)len) : 0;
    if (n > 0)
        return n;
    if (t->lower_eof || t->lower == NULL)
        return 0;
    BIO_set_retry_read(b);
    return -1;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int
bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

int
weft__tls_bio_init(void)
{
    BIO_METHOD *m;
    int rc = 0;

    pthread_mutex_lock(&bio_lock);
    if (bio_method == NULL) {
        m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "weft transport");
        if (m == NULL || !BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
            !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create)) {
            BIO_meth_free(m);
            rc = -ENOMEM;
        } else {
            bio_method = m;
        }
    }
    pthread_mutex_unlock(&bio_lock);
    return rc;
}

__attribute__((destructor)) static void
bio_fini(void)
{
    BIO_meth_free(bio_method);
    bio_method = NULL;
}

/* ---- the end ---- */

/*
 * Have the lower transport end, which ends this one (below_lost): closing it
 * (its queue is sent first: an alert, a close_notify, an answer) or, when
 * err says the peer is gone or stuck, aborting it. The first error wins.
 */
static void
finish(struct tls_tr *t, int err, bool graceful)
{
    struct weft_transport *tr = &t->base;

    if (tr->error == 0)
        tr->error = err;
    tr->flags |= TR_CLOSING;
    event_del(&t->timer);
    if (t->lower == NULL)
        return;
    if (graceful)
        weft_transport_close(t->lower);
    else
        weft_transport_abort(t->lower);
}

/* Map a failed SSL call to an error code, logging what TLS said. */
static int
ssl_failure(struct tls_tr *t, int e, const char *what)
{
    char peer[64], why[160];

    if (t->write_error != 0) {
        ERR_clear_error();
        return t->write_error;
    }
    if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        if (t->state == ST_HANDSHAKE)
            weft_log(WEFT_LOG_DEBUG, "TLS handshake with %s: the peer closed the connection",
                     weft_transport_peer_string(&t->base, peer, sizeof(peer)));
        return -ECONNRESET;
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

/* Come back from the loop to the read path. */
static void
again_later(struct tls_tr *t)
{
    event_active(&t->later, EV_TIMEOUT, 1);
}

/*
 * OpenSSL's record buffers (16 KiB and more each way) are kept while the
 * connection moves records and freed once it has not for a whole
 * BUFFERS_IDLE_MS (timer, free in OPEN, runs buffers_idle()). The contexts
 * leave SSL_MODE_RELEASE_BUFFERS off: with it, OpenSSL frees the write buffer
 * after every SSL_write and the read buffer whenever it is empty, two
 * mallocs of 17 KiB a turn of each connection, and each a glibc
 * malloc_consolidate() of the small blocks nghttp2 and the protocols just freed.
 * An idle connection ends up as small as with the mode.
 */
static void
sweep_later(struct tls_tr *t)
{
    struct timeval tv = { .tv_sec = 0, .tv_usec = BUFFERS_IDLE_MS * 1000 };

    /* If it fails, the buffers stay until a later record arms the timer. */
    t->sweeping = evtimer_add(&t->timer, &tv) == 0;
}

/* Records move: the buffers stay. Two tests on the hot path, a timer once a span. */
static inline void
note_busy(struct tls_tr *t)
{
    t->busy = true;
    if (!t->sweeping && t->state == ST_OPEN)
        sweep_later(t);
}

/* The timer in OPEN: free the buffers of a connection idle since its last run. */
static void
buffers_idle(struct tls_tr *t)
{
    t->sweeping = false;
    if (t->busy) {
        t->busy = false;
        sweep_later(t);
        return;
    }
    /* Nothing is freed while the read buffer holds ciphertext or a record not read. */
    (void)SSL_free_buffers(t->ssl);
}

/*
 * An empty error queue before an SSL call, so SSL_get_error() sees only its
 * errors. Every failure path here clears the queue already, so it is nearly
 * always empty: a peek (the thread's error state, top == bottom) is a fifth of
 * what ERR_clear_error() costs (it resets all 16 slots), twice a record.
 */
static inline void
clear_errors(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

/* ---- writing: plaintext into records, records into the lower transport ---- */

/*
 * Gathering. OpenSSL hands the BIO one record at a time, and an idle lower
 * transport sends each at once: one sendmsg per 16 KiB record. A call that
 * makes more than one record (a write past a record, a write_buffer or
 * writelines of several) corks the layer: the BIO appends
 * the records to cout, and uncork() hands them down in one
 * weft_transport_write_buffer(), which sends them in one sendmsg or queues
 * them (moving the chains: the one copy is OpenSSL's buffer to cout, as a
 * queued record's is today); a longer call hands them down every GATHER_MAX.
 * A write of one record is not corked: it goes down as before, uncopied.
 * cout is empty outside such a call, so nothing written uncorked
 * (close_notify, an alert, what SSL_read writes) can pass records held there;
 * the lower queue's marks see the call's records at once, when they go down.
 */

/*
 * Cork for a call of len bytes. False if the layer is corked already: a write
 * from a callback inside a corked call (the lower write's pause_writing
 * reaching the protocol) joins that call's records.
 */
static bool
cork(struct tls_tr *t, size_t len)
{
    size_t want = len < GATHER_MAX ? len : GATHER_MAX;

    if (t->corked)
        return false;
    t->corked = true;
    /* One chain for the call's records. A hint only: if it fails, evbuffer_add allocates. */
    (void)evbuffer_expand(t->cout, want + (want / TLS_RECORD + 1) * RECORD_SLACK);
    return true;
}

/* Hand the records in cout to the lower transport. 0, or a negative code (dropped). */
static int
send_gathered(struct tls_tr *t)
{
    int rc;

    if (evbuffer_get_length(t->cout) == 0)
        return 0;
    rc = t->lower != NULL ? weft_transport_write_buffer(t->lower, t->cout) : -EPIPE;
    if (rc < 0)
        evbuffer_drain(t->cout, evbuffer_get_length(t->cout));
    return rc;
}

/*
 * End what cork() began, if it did (corked): with rc 0 the records go down,
 * else (the call failed, the connection ends) they are dropped. Returns rc,
 * or the lower write's error.
 */
static int
uncork(struct tls_tr *t, bool corked, int rc)
{
    if (!corked)
        return rc;
    t->corked = false;
    if (rc == 0)
        return send_gathered(t);
    evbuffer_drain(t->cout, evbuffer_get_length(t->cout));
    return rc;
}

/* SSL_write all of data, a record at a time. 0, or a negative code (the connection ends). */
static int
encrypt(struct tls_tr *t, const void *data, size_t len)
{
    note_busy(t);
    while (len > 0) {
        int n = len > TLS_RECORD ? TLS_RECORD : (int)len;
        int r;

        clear_errors();
        r = SSL_write(t->ssl, data, n);
        if (r <= 0)
            return ssl_failure(t, SSL_get_error(t->ssl, r), "write");
        data = (const char *)data + r;
        len -= (size_t)r;
        if (t->corked && evbuffer_get_length(t->cout) >= GATHER_MAX) {
            int rc = send_gathered(t);

            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Whether encrypt_buffer() makes a single record of buf (its first step takes it all). */
static bool
one_record(struct evbuffer *buf)
{
    size_t len = evbuffer_get_length(buf);
    struct evbuffer_iovec v;

    if (len > TLS_RECORD)
        return false;
    if (evbuffer_peek(buf, -1, NULL, &v, 1) < 1)
        return true;
    return v.iov_len == len || v.iov_len < PULLUP_BELOW;
}

/*
 * Where small chains are gathered into a record's plaintext: one 16 KiB block
 * per thread (freed when the thread ends), instead of evbuffer_pullup's new
 * chain of 16 KiB a record, a large malloc (and a glibc malloc_consolidate)
 * each time. The same one copy either way. SSL_write is done with it before
 * the BIO's lower write, the one place that could call a protocol (its
 * pause_writing) and so nest a write. NULL without memory: pullup then.
 */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_ok;

static void
scratch_init(void)
{
    scratch_ok = pthread_key_create(&scratch_key, free) == 0;
}

static unsigned char *
scratch(void)
{
    unsigned char *p;

    (void)pthread_once(&scratch_once, scratch_init);
    if (!scratch_ok)
        return NULL;
    p = pthread_getspecific(scratch_key);
    if (p == NULL) {
        p = malloc(TLS_RECORD);
        if (p != NULL && pthread_setspecific(scratch_key, p) != 0) {
            free(p);
            p = NULL;
        }
    }
    return p;
}

/* Encrypt and empty buf, gathering its small first chains into whole records. */
static int
encrypt_buffer(struct tls_tr *t, struct evbuffer *buf)
{
    size_t len;

    while ((len = evbuffer_get_length(buf)) > 0) {
        struct evbuffer_iovec v;
        size_t n;
        void *p;
        int rc;

        if (evbuffer_peek(buf, -1, NULL, &v, 1) < 1)
            return -ENOMEM;
        n = v.iov_len;
        p = v.iov_base;
        if (n < PULLUP_BELOW && len > n) {
            unsigned char *g = scratch();

            n = len < TLS_RECORD ? len : TLS_RECORD;
            if (g != NULL && evbuffer_copyout(buf, g, n) == (ev_ssize_t)n)
                p = g;
            else
                p = evbuffer_pullup(buf, (ev_ssize_t)n);
            if (p == NULL)
                return -ENOMEM;
        } else if (n > TLS_RECORD) {
            n = TLS_RECORD;
        }
        rc = encrypt(t, p, n);
        if (rc < 0)
            return rc;
        evbuffer_drain(buf, n);
    }
    return 0;
}

/* A write failed: the stream is broken (part may be sent). */
static int
write_failed(struct tls_tr *t, int rc)
{
    finish(t, rc, false);
    return rc == -ENOMEM ? rc : 0;      /* else reported through connection_lost */
}

static int
tls_write(struct weft_transport *tr, const void *data, size_t len)
{
    struct tls_tr *t = T(tr);
    bool corked;
    int rc;

    if (len == 0)
        return 0;
    if (t->state != ST_OPEN || gone(t))
        return -EPIPE;
    corked = len > TLS_RECORD && cork(t, len);
    rc = uncork(t, corked, encrypt(t, data, len));
    return rc < 0 ? write_failed(t, rc) : 0;
}

/* encrypt_buffer(), corked if it makes more than one record. */
static int
encrypt_gathered(struct tls_tr *t, struct evbuffer *buf)
{
    bool corked = !one_record(buf) && cork(t, evbuffer_get_length(buf));

    return uncork(t, corked, encrypt_buffer(t, buf));
}

static int
tls_write_buffer(struct weft_transport *tr, struct evbuffer *buf)
{
    struct tls_tr *t = T(tr);
    int rc;

    if (evbuffer_get_length(buf) == 0)
        return 0;
    if (t->state != ST_OPEN || gone(t))
        return -EPIPE;
    rc = encrypt_gathered(t, buf);
    return rc < 0 ? write_failed(t, rc) : 0;
}

static int
tls_writelines(struct weft_transport *tr, const struct iovec *iov, int iovcnt)
{
    struct tls_tr *t = T(tr);
    int rc;

    if (t->state != ST_OPEN || gone(t))
        return -EPIPE;
    if (iovcnt == 1)
        return tls_write(tr, iov[0].iov_base, iov[0].iov_len);
    /* Gathered first: small lines make one record, not one each. */
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len != 0 && evbuffer_add(t->out, iov[i].iov_base, iov[i].iov_len) < 0) {
            evbuffer_drain(t->out, evbuffer_get_length(t->out));
            return write_failed(t, -ENOMEM);
        }
    }
    rc = encrypt_gathered(t, t->out);
    if (rc < 0) {
        evbuffer_drain(t->out, evbuffer_get_length(t->out));
        return write_failed(t, rc);
    }
    return 0;
}

/* ---- reading ---- */

/* close_notify (or the lower transport's EOF): eof_received's answer cannot keep TLS half open. */
static void
on_eof(struct tls_tr *t)
{
    struct weft_transport *tr = &t->base;
    const struct weft_protocol_ops *ops = weft__proto_ops(tr);

    tr->flags |= TR_EOF_RCVD;
    if (ops != NULL && ops->eof_received != NULL) {
        tr->in_cb++;
        (void)ops->eof_received(tr->proto);
        tr->in_cb--;
    }
    weft_transport_close(tr);
}

/*
 * No empty chain kept on an idle connection: evbuffer_reserve_space leaves one
 * when nothing was committed, and evbuffer_drain ignores an empty buffer.
 */
static void
drop_empty_chain(struct evbuffer *in)
{
    if (evbuffer_get_length(in) == 0 && evbuffer_add(in, "", 1) == 0)
        evbuffer_drain(in, 1);
}

/*
 * Whether an SSL_read now could only say WANT_READ: no ciphertext in the lower
 * input, nothing buffered in OpenSSL, no EOF to report. Such a read is not
 * free: OpenSSL allocates its 16 KiB read buffer, asks the BIO, and frees the
 * buffer again (SSL_MODE_RELEASE_BUFFERS), every turn of every connection.
 */
static bool
nothing_to_read(struct tls_tr *t)
{
    return t->lower != NULL && !t->lower_eof &&
           (t->cin == NULL || evbuffer_get_length(t->cin) == 0) && !SSL_has_pending(t->ssl);
}

static void
read_records(struct tls_tr *t)
{
    struct weft_transport *tr = &t->base;
    struct evbuffer *in = t->in;
    size_t total = 0;
    bool reserved = false;
    int e = SSL_ERROR_NONE;

    for (int i = 0; i < READS_PER_WAKE; i++) {
        struct evbuffer_iovec v;
        int r;

        if (nothing_to_read(t)) {
            e = SSL_ERROR_WANT_READ;
            break;
        }
        if (!reserved)
            note_busy(t);
        if (evbuffer_reserve_space(in, TLS_RECORD, &v, 1) < 1) {
            weft__transport_failed(tr, "cannot allocate the read buffer", -ENOMEM);
            return;
        }
        reserved = true;
        clear_errors();
        r = SSL_read(t->ssl, v.iov_base, v.iov_len > INT32_MAX ? INT32_MAX : (int)v.iov_len);
        if (r <= 0) {
            e = SSL_get_error(t->ssl, r);
            break;
        }
        v.iov_len = (size_t)r;
        evbuffer_commit_space(in, &v, 1);
        total += (size_t)r;
    }
    if (total == 0 && reserved)
        drop_empty_chain(in);
    if (total > 0) {
        tr->flags |= TR_ACTIVE;
        if (!weft__transport_data(tr, in))
            return;
        if (tr->flags & (TR_CLOSING | TR_READ_PAUSED))
            return;     /* close or abort took over; or the protocol paused */
    }
    switch (e) {
    case SSL_ERROR_NONE:
        again_later(t);     /* the turn's budget is spent with records perhaps left */
        break;
    case SSL_ERROR_WANT_READ:
        if (t->lower_eof)
            on_eof(t);      /* TCP's EOF without close_notify: an EOF all the same */
        break;
    case SSL_ERROR_ZERO_RETURN:
        on_eof(t);
        break;
    default:
        finish(t, ssl_failure(t, e, "read"), false);
        break;
    }
}

/* ---- handshake ---- */

static void
handshake_done(struct tls_tr *t)
{
    struct weft_transport *tr = &t->base;
    struct weft_protocol *proto;
    weft__tls_done_cb *done = t->done;

    event_del(&t->timer);
    t->state = ST_OPEN;
    tr->in_cb++;
    proto = t->factory(t->farg);
    tr->in_cb--;
    if (proto == NULL) {
        weft_log(WEFT_LOG_WARNING, "TLS: protocol factory failed; connection dropped");
        finish(t, -ENOMEM, false);
        return;
    }
    tr->proto = proto;
    weft__transport_made(tr);
    if (done != NULL) {
        t->done = NULL;
        tr->in_cb++;
        done(tr, 0, t->darg);
        tr->in_cb--;
    }
    /* Application data that came with the last handshake flight is inside OpenSSL. */
    if (!(tr->flags & (TR_CLOSING | TR_READ_PAUSED)))
        read_records(t);
}

/*
 * OpenSSL failed the handshake because the first bytes are a plain HTTP request
 * line (SSL_R_HTTP_REQUEST: "GET ", "POST", "HEAD", "PUT "; SSL_R_HTTPS_PROXY_REQUEST:
 * "CONNECT"). Say so in plain HTTP, as nginx does, instead of a silent close; then
 * writing is shut down and what the client still sends is read and dropped until it
 * closes (or the shutdown timer), so the close sends no RST that could destroy the
 * answer on its way. For any service: a client that speaks HTTP to a TLS port wants to
 * hear it, whatever the protocol behind (docs/design-tls.md).
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
    struct timeval tv = {
        .tv_sec = t->ctx->shutdown_ms / 1000,
        .tv_usec = (t->ctx->shutdown_ms % 1000) * 1000,
    };
    char peer[64];

    if (ERR_GET_LIB(err) != ERR_LIB_SSL ||
        (ERR_GET_REASON(err) != SSL_R_HTTP_REQUEST &&
         ERR_GET_REASON(err) != SSL_R_HTTPS_PROXY_REQUEST))
        return false;
    ERR_clear_error();
    if (weft_transport_write(t->lower, answer, sizeof(answer) - 1) < 0)
        return false;
    weft_log(WEFT_LOG_INFO, "TLS handshake with %s: plain HTTP on a TLS port, answered 400",
             weft_transport_peer_string(&t->base, peer, sizeof(peer)));
    t->state = ST_PLAIN;
    t->base.flags |= TR_CLOSING;
    if (t->cin != NULL)
        evbuffer_drain(t->cin, evbuffer_get_length(t->cin));
    if (weft_transport_can_write_eof(t->lower) && weft_transport_write_eof(t->lower) == 0 &&
        evtimer_add(&t->timer, &tv) == 0)
        return true;
    finish(t, -WEFT_ETLS, true);
    return true;
}

static void
handshake_step(struct tls_tr *t)
{
    int r, e;

    t->write_error = 0;
    ERR_clear_error();
    r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        handshake_done(t);
        return;
    }
    e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ && !t->lower_eof)
        return;     /* more ciphertext comes through data_received */
    if (e == SSL_ERROR_SSL && answer_plain_http(t))
        return;
    if (e == SSL_ERROR_WANT_READ) {
        char peer[64];

        weft_log(WEFT_LOG_DEBUG, "TLS handshake with %s: the peer closed the connection",
                 weft_transport_peer_string(&t->base, peer, sizeof(peer)));
        finish(t, -ECONNRESET, true);
        return;
    }
    /* An alert may be queued in the lower transport: it goes before the close. */
    finish(t, ssl_failure(t, e, "handshake"), true);
}

/* ---- shutdown ---- */

/* Read and drop until the peer's close_notify or EOF; then the lower transport closes. */
static void
shutdown_read(struct tls_tr *t)
{
    for (int i = 0; i < READS_PER_WAKE; i++) {
        char buf[4096];
        int r, e;

        ERR_clear_error();
        r = SSL_read(t->ssl, buf, sizeof(buf));
        if (r > 0)
            continue;
        e = SSL_get_error(t->ssl, r);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ && !t->lower_eof)
            return;
        finish(t, 0, true);     /* close_notify, EOF, or an error: done either way */
        return;
    }
    again_later(t);
}

static void
start_shutdown(struct tls_tr *t)
{
    struct timeval tv = {
        .tv_sec = t->ctx->shutdown_ms / 1000,
        .tv_usec = (t->ctx->shutdown_ms % 1000) * 1000,
    };
    int r;

    t->state = ST_SHUTDOWN;
    t->write_error = 0;
    ERR_clear_error();
    /* close_notify goes into the lower queue, behind everything written before it */
    r = SSL_shutdown(t->ssl);
    ERR_clear_error();
    if (r == 1 || r < 0 || t->lower_eof || (t->base.flags & TR_EOF_RCVD)) {
        finish(t, 0, true);     /* the peer's came first, or it is gone: nothing to wait for */
        return;
    }
    if (evtimer_add(&t->timer, &tv) < 0) {
        finish(t, 0, true);
        return;
    }
    /* The peer's close_notify must be read, even if the protocol had paused reading. */
    (void)weft_transport_resume_reading(t->lower);
    /* Called from a protocol or a task: the reading is left to the loop. */
    if (t->cin != NULL && evbuffer_get_length(t->cin) > 0)
        again_later(t);
}

static void
tls_close(struct weft_transport *tr)
{
    struct tls_tr *t = T(tr);

    tr->flags |= TR_CLOSING;
    if (gone(t))
        return;
    if (t->state == ST_OPEN)
        start_shutdown(t);
    else if (t->state == ST_HANDSHAKE)
        finish(t, 0, true);
}

static void
tls_abort(struct weft_transport *tr)
{
    struct tls_tr *t = T(tr);

    evbuffer_drain(t->out, evbuffer_get_length(t->out));
    evbuffer_drain(t->cout, evbuffer_get_length(t->cout));
    finish(t, 0, false);
}

static bool
tls_abort_now(struct weft_transport *tr)
{
    struct tls_tr *t = T(tr);

    weft_transport_abort(tr);
    if (tr->in_cb != 0 || t->lower == NULL)
        return false;
    /* the lower transport's connection_lost, now, frees this one too */
    return weft__transport_abort_now(t->lower);
}

void
weft__tls_cancel(struct weft_transport *tr)
{
    T(tr)->done = NULL;
    weft_transport_abort(tr);
}

static int
tls_pause_reading(struct weft_transport *tr)
{
    struct tls_tr *t = T(tr);

    if (t->lower != NULL)
        (void)weft_transport_pause_reading(t->lower);
    return 0;
}

static int
tls_resume_reading(struct weft_transport *tr)
{
    struct tls_tr *t = T(tr);
    int rc;

    if (t->lower == NULL)
        return -EPIPE;
    rc = weft_transport_resume_reading(t->lower);
    if (rc < 0 && rc != -EPIPE)
        return rc;
    /* Records OpenSSL or the lower input already hold: no new bytes will say so. */
    if (t->state == ST_OPEN &&
        (SSL_has_pending(t->ssl) || (t->cin != NULL && evbuffer_get_length(t->cin) > 0) ||
         t->lower_eof))
        again_later(t);
    return 0;
}

static size_t
tls_buffer_size(const struct weft_transport *tr)
{
    const struct tls_tr *t = (const struct tls_tr *)tr;

    return t->lower != NULL ? weft_transport_get_write_buffer_size(t->lower) : 0;
}

static void
tls_limits_changed(struct weft_transport *tr)
{
    struct tls_tr *t = T(tr);

    if (t->lower != NULL)
        (void)weft_transport_set_write_buffer_limits(t->lower, tr->high, tr->low);
}

static struct weft_transport *
tls_lower(const struct weft_transport *tr)
{
    return ((const struct tls_tr *)tr)->lower;
}

/* ---- the read path, wherever it starts ---- */

static void
pump(struct tls_tr *t)
{
    struct weft_transport *tr = &t->base;

    switch (t->state) {
    case ST_HANDSHAKE:
        handshake_step(t);
        break;
    case ST_OPEN:
        if (tr->flags & TR_CLOSING)
            break;
        if (tr->flags & TR_READ_PAUSED) {
            if (t->lower != NULL)
                (void)weft_transport_pause_reading(t->lower);
            break;
        }
        read_records(t);
        break;
    case ST_SHUTDOWN:
        shutdown_read(t);
        break;
    default:                    /* ST_PLAIN: dropped */
        if (t->cin != NULL)
            evbuffer_drain(t->cin, evbuffer_get_length(t->cin));
        break;
    }
}

static void
on_later(evutil_socket_t fd, short what, void *arg)
{
    struct tls_tr *t = arg;

    (void)fd;
    (void)what;
    if (!gone(t))
        pump(t);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct tls_tr *t = arg;
    char peer[64];

    (void)fd;
    (void)what;
    if (gone(t))
        return;
    if (t->state == ST_OPEN) {
        buffers_idle(t);
        return;
    }
    if (t->state == ST_HANDSHAKE) {
        weft_log(WEFT_LOG_INFO, "TLS handshake with %s timed out after %u ms",
                 weft_transport_peer_string(&t->base, peer, sizeof(peer)),
                 (unsigned)t->ctx->handshake_ms);
        finish(t, -ETIMEDOUT, false);
    } else {
        weft_log(WEFT_LOG_DEBUG, "TLS: no close_notify from %s within %u ms; closing",
                 weft_transport_peer_string(&t->base, peer, sizeof(peer)),
                 (unsigned)t->ctx->shutdown_ms);
        finish(t, 0, false);
    }
}

/* ---- the protocol of the lower transport ---- */

static int
below_made(struct weft_protocol *p, struct weft_transport *lower)
{
    B(p)->lower = lower;
    return 0;
}

static int
below_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct tls_tr *t = B(p);

    t->cin = in;
    pump(t);
    return 0;
}

static bool
below_eof(struct weft_protocol *p)
{
    struct tls_tr *t = B(p);

    t->lower_eof = true;
    pump(t);
    /* kept open: what is queued (an answer, close_notify) still goes, then finish() */
    return !gone(t);
}

static void
below_pause_writing(struct weft_protocol *p)
{
    struct weft_transport *tr = &B(p)->base;
    const struct weft_protocol_ops *ops = weft__proto_ops(tr);

    if (tr->flags & TR_WRITE_PAUSED)
        return;
    tr->flags |= TR_WRITE_PAUSED;
    if (ops != NULL && ops->pause_writing != NULL && !(tr->flags & TR_CLOSING)) {
        tr->in_cb++;
        ops->pause_writing(tr->proto);
        tr->in_cb--;
    }
}

static void
below_resume_writing(struct weft_protocol *p)
{
    struct weft_transport *tr = &B(p)->base;
    const struct weft_protocol_ops *ops = weft__proto_ops(tr);

    if (!(tr->flags & TR_WRITE_PAUSED))
        return;
    tr->flags &= (uint16_t)~TR_WRITE_PAUSED;
    if (ops != NULL && ops->resume_writing != NULL && !(tr->flags & TR_CLOSING)) {
        tr->in_cb++;
        ops->resume_writing(tr->proto);
        tr->in_cb--;
    }
}

static void tls_free(struct tls_tr *t);
static void start(struct tls_tr *t, struct weft_tls_context *ctx,
                  weft_protocol_factory_cb *factory, void *farg, struct weft__conns *conns,
                  weft__tls_done_cb *done, void *darg);

/* The lower transport is gone: so is this one. */
static void
below_lost(struct weft_protocol *p, int err)
{
    struct tls_tr *t = B(p);
    struct weft_transport *tr = &t->base;
    const struct weft_protocol_ops *ops = weft__proto_ops(tr);
    weft__tls_done_cb *done = t->done;

    t->lower = NULL;
    t->cin = NULL;
    if (tr->error == 0)
        tr->error = err;
    (void)weft_transport_set_idle_timeout(tr, 0);
    tr->flags = (uint16_t)((tr->flags & ~TR_LOST_PENDING) | TR_LOST | TR_CLOSING);
    event_del(&t->timer);
    event_del(&t->later);
    if (tr->conns != NULL)
        weft__conns_unlink(tr);
    if (done != NULL) {
        t->done = NULL;
        done(NULL, tr->error != 0 ? tr->error : -ECONNABORTED, t->darg);
    } else if ((tr->flags & TR_MADE) && ops != NULL && ops->connection_lost != NULL) {
        ops->connection_lost(tr->proto, tr->error);
    }
    tls_free(t);
}

static const struct weft_protocol_ops below_ops = {
    .connection_made = below_made,
    .data_received = below_data,
    .eof_received = below_eof,
    .connection_lost = below_lost,
    .pause_writing = below_pause_writing,
    .resume_writing = below_resume_writing,
};

/* ---- life ---- */

static void
tls_free(struct tls_tr *t)
{
    (void)weft_transport_set_proxied_peer(&t->base, NULL, 0);
    SSL_free(t->ssl);       /* and its BIO */
    evbuffer_free(t->in);
    evbuffer_free(t->out);
    evbuffer_free(t->cout);
    if (t->ctx != NULL)
        t->ctx->wrapper.ops->unref(&t->ctx->wrapper);
    free(t->hostname);
    free(t);
}

static int tls_extra_info(struct weft_transport *tr, const char *name, void *out, size_t *len);

static struct evbuffer *
tls_input(struct weft_transport *tr)
{
    return T(tr)->in;
}

/* The TLS flavour (transport-int.h): a layer over the transport below. */
static const struct weft__transport_ops tls_ops = {
    .name = "tls",
    .write = tls_write,
    .write_buffer = tls_write_buffer,
    .writelines = tls_writelines,
    .close = tls_close,
    .abort = tls_abort,
    .abort_now = tls_abort_now,
    .pause_reading = tls_pause_reading,
    .resume_reading = tls_resume_reading,
    .buffer_size = tls_buffer_size,
    .limits_changed = tls_limits_changed,
    .extra_info = tls_extra_info,
    .lower = tls_lower,
    .input = tls_input,
};

/* The TLS transport, before it has a transport below: SSL, BIO, buffers, events. */
static struct tls_tr *
tls_new(struct weft_loop *loop, struct weft_tls_context *ctx, const char *hostname)
{
    struct event_base *base = weft_loop_get_base(loop);
    struct tls_tr *t;
    BIO *bio;

    if (bio_method == NULL && weft__tls_bio_init() < 0)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->in = evbuffer_new();
    t->out = evbuffer_new();
    t->cout = evbuffer_new();
    ERR_clear_error();
    t->ssl = t->in != NULL && t->out != NULL && t->cout != NULL ? SSL_new(ctx->ctxs[0]) : NULL;
    bio = t->ssl != NULL ? BIO_new(bio_method) : NULL;
    if (bio == NULL)
        goto nomem;
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio);
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
    t->base.ops = &tls_ops;
    t->base.loop = loop;
    t->base.fd = -1;
    t->base.high = WEFT_WRITE_HIGH_DEFAULT;
    t->base.low = WEFT_WRITE_LOW_DEFAULT;
    t->below.ops = &below_ops;
    evtimer_assign(&t->timer, base, on_timer, t);
    event_assign(&t->later, base, -1, 0, on_later, t);
    t->state = ST_HANDSHAKE;
    return t;
nomem:
    ERR_clear_error();
    SSL_free(t->ssl);
    if (t->in != NULL)
        evbuffer_free(t->in);
    if (t->out != NULL)
        evbuffer_free(t->out);
    if (t->cout != NULL)
        evbuffer_free(t->cout);
    free(t->hostname);
    free(t);
    return NULL;
}

int
weft__transport_new_tls(struct weft_loop *loop, int fd, struct weft_tls_context *ctx,
                        const char *hostname, weft_protocol_factory_cb *factory, void *farg,
                        struct weft__conns *conns, weft__tls_done_cb *done, void *darg,
                        struct weft_transport **out)
{
    struct timeval tv = {
        .tv_sec = ctx->handshake_ms / 1000,
        .tv_usec = (ctx->handshake_ms % 1000) * 1000,
    };
    struct weft_transport *lower = NULL;
    struct tls_tr *t = tls_new(loop, ctx, hostname);
    int rc;

    if (t == NULL)
        return -ENOMEM;
    if (evtimer_add(&t->timer, &tv) < 0) {
        tls_free(t);
        return -ENOMEM;
    }
    /* below_made() keeps the lower transport; its failure leaves fd to the caller */
    rc = weft__transport_new_socket(loop, &t->below, fd, NULL, &lower);
    if (rc < 0) {
        event_del(&t->timer);
        tls_free(t);
        return rc;
    }
    start(t, ctx, factory, farg, conns, done, darg);
    if (out != NULL)
        *out = &t->base;
    return 0;
}

/* t is the protocol of its lower transport: the handshake may begin. */
static void
start(struct tls_tr *t, struct weft_tls_context *ctx, weft_protocol_factory_cb *factory,
      void *farg, struct weft__conns *conns, weft__tls_done_cb *done, void *darg)
{
    ctx->wrapper.ops->ref(&ctx->wrapper);
    t->ctx = ctx;
    t->factory = factory;
    t->farg = farg;
    t->done = done;
    t->darg = darg;
    if (conns != NULL)
        weft__conns_link(conns, &t->base);
    /*
     * A client speaks first, a server waits for the ClientHello (which may be
     * in the lower input already, after a STARTTLS). Either way the first step
     * waits for the loop: this may run on a task's small stack, and key
     * generation is not small.
     */
    if (ctx->client || (t->cin != NULL && evbuffer_get_length(t->cin) > 0))
        again_later(t);
}

static struct weft_protocol *
given_protocol(void *arg)
{
    return arg;
}

int
weft_start_tls(struct weft_transport *tr, struct weft_protocol *proto,
               struct weft_tls_context *ctx, const char *server_hostname,
               weft_start_tls_cb *done, void *arg)
{
    struct timeval tv;
    struct tls_tr *t;

    if (tr == NULL || proto == NULL || ctx == NULL || done == NULL)
        return -EINVAL;
    if (weft_transport_is_closing(tr))
        return -EPIPE;
    tv.tv_sec = ctx->handshake_ms / 1000;
    tv.tv_usec = (suseconds_t)(ctx->handshake_ms % 1000) * 1000;
    t = tls_new(weft_transport_get_loop(tr), ctx, server_hostname);
    if (t == NULL)
        return -ENOMEM;
    if (evtimer_add(&t->timer, &tv) < 0) {
        tls_free(t);
        return -ENOMEM;
    }
    /* From here the records are the lower transport's bytes; what is left of its input
     * (a ClientHello sent right behind the STARTTLS command) is the handshake's. */
    t->lower = tr;
    t->cin = weft__transport_input(tr);
    weft_transport_get_write_buffer_limits(tr, &t->base.high, &t->base.low);
    weft_transport_set_protocol(tr, &t->below);
    (void)weft_transport_resume_reading(tr);
    start(t, ctx, given_protocol, proto, NULL, done, arg);
    return 0;
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

/* TLS's own names (weft/transport.h); the rest are the lower transport's. */
static int
tls_extra_info(struct weft_transport *tr, const char *name, void *out, size_t *len)
{
    static const char *const own[] = {
        "tls_version", "cipher", "alpn_protocol", "sni", "peercert_subject",
    };
    struct tls_tr *t = T(tr);
    SSL *ssl = t->ssl;
    bool mine = false;

    if (strcmp(name, "ssl_object") == 0) {
        if (*len < sizeof(ssl)) {
            *len = sizeof(ssl);
            return -ENOBUFS;
        }
        memcpy(out, &ssl, sizeof(ssl));
        *len = sizeof(ssl);
        return 0;
    }
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        mine |= strcmp(name, own[i]) == 0;
    if (!mine)
        return t->lower != NULL ? weft_transport_get_extra_info(t->lower, name, out, len)
                                : -ENOENT;
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
    /* peercert_subject */
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
