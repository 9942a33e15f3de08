/* SPDX-License-Identifier: MIT */
/* test_datagram.c: UDP endpoints: echo v4/v6, ICMP errors, the send queue, close, abort, info. */
/* WRAP: malloc calloc */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include "harness.h"

/* ---- allocation failure: the Nth malloc/calloc of the test thread fails ---- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);

static long alloc_count, alloc_fail_at;     /* 0: never fail */

static bool
alloc_fails(void)
{
    return alloc_fail_at > 0 && ++alloc_count == alloc_fail_at;
}

void *
__wrap_malloc(size_t n)
{
    if (alloc_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
    if (alloc_fails()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, m);
}

/* ---- a protocol that records what happens to it ---- */

enum action { ACT_NONE, ACT_ECHO, ACT_CLOSE_IN_DATA };

struct rec {
    struct weft_datagram_protocol base;
    struct weft_datagram_transport *tr;
    int made, datagrams, errors, pauses, resumes, lost;
    int last_error, lost_error;
    int after_lost;                 /* callbacks after connection_lost: must stay 0 */
    enum action action;
    bool heap;                      /* freed by connection_lost */
    char last[256];
    size_t last_len;
    struct sockaddr_storage from;
    socklen_t fromlen;
    bool got_flag, error_flag, lost_flag, resumed_flag;
    int want;                       /* got_flag once datagrams reaches it */
    char order_ok;                  /* datagram i carries i */
};

static int
rec_made(struct weft_datagram_protocol *p, struct weft_datagram_transport *tr)
{
    struct rec *r = (struct rec *)p;

    r->after_lost += r->lost;
    r->made++;
    r->tr = tr;
    return 0;
}

static int
rec_datagram(struct weft_datagram_protocol *p, const void *data, size_t len,
             const struct sockaddr *addr, socklen_t addrlen)
{
    struct rec *r = (struct rec *)p;

    r->after_lost += r->lost;
    if (len >= 4 && r->order_ok) {
        uint32_t i;

        memcpy(&i, data, 4);
        if (i != (uint32_t)r->datagrams)
            r->order_ok = 0;
    }
    r->datagrams++;
    r->last_len = len < sizeof(r->last) ? len : sizeof(r->last);
    memcpy(r->last, data, r->last_len);
    memcpy(&r->from, addr, addrlen);
    r->fromlen = addrlen;
    if (r->datagrams >= r->want)
        r->got_flag = true;
    if (r->action == ACT_ECHO)
        assert_int_equal(weft_datagram_sendto(r->tr, data, len, addr, addrlen), 0);
    else if (r->action == ACT_CLOSE_IN_DATA)
        weft_datagram_close(r->tr);
    return 0;
}

static void
rec_error(struct weft_datagram_protocol *p, int error)
{
    struct rec *r = (struct rec *)p;

    r->after_lost += r->lost;
    r->errors++;
    r->last_error = error;
    r->error_flag = true;
}

static void
rec_lost(struct weft_datagram_protocol *p, int error)
{
    struct rec *r = (struct rec *)p;

    r->after_lost += r->lost;
    r->lost++;
    r->lost_error = error;
    r->lost_flag = true;
    r->tr = NULL;
    if (r->heap)
        free(r);
}

static void
rec_pause(struct weft_datagram_protocol *p)
{
    ((struct rec *)p)->pauses++;
}

static void
rec_resume(struct weft_datagram_protocol *p)
{
    struct rec *r = (struct rec *)p;

    r->resumes++;
    r->resumed_flag = true;
}

static const struct weft_datagram_protocol_ops rec_ops = {
    .connection_made = rec_made,
    .datagram_received = rec_datagram,
    .error_received = rec_error,
    .connection_lost = rec_lost,
    .pause_writing = rec_pause,
    .resume_writing = rec_resume,
};

static void
rec_init(struct rec *r, enum action a)
{
    memset(r, 0, sizeof(*r));
    r->base.ops = &rec_ops;
    r->action = a;
    r->want = 1;
    r->order_ok = 1;
}

/* The factory's arg is the test's struct rec. */
static struct weft_datagram_protocol *
rec_factory(void *arg)
{
    return &((struct rec *)arg)->base;
}

/* A protocol of its own on the heap, freed by connection_lost (for the allocation walk). */
static struct weft_datagram_protocol *
heap_factory(void *arg)
{
    struct rec *r = malloc(sizeof(*r));

    (void)arg;
    if (r == NULL)
        return NULL;
    rec_init(r, ACT_ECHO);
    r->heap = true;
    return &r->base;
}

static uint16_t
sock_port(struct weft_datagram_transport *tr, int *family)
{
    struct sockaddr_storage ss;
    size_t len = sizeof(ss);

    assert_int_equal(weft_datagram_get_extra_info(tr, "sockname", &ss, &len), 0);
    if (family != NULL)
        *family = ss.ss_family;
    return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void
lose(struct weft_loop *loop, struct rec *r)
{
    if (r->tr != NULL)
        weft_datagram_close(r->tr);
    assert_int_equal(harness_run_until(loop, &r->lost_flag, 5000), 0);
    assert_int_equal(r->lost, 1);
    assert_int_equal(r->after_lost, 0);
}

/* ---- tests ---- */

static void
echo_round_trip(const char *host)
{
    struct weft_loop *loop = harness_loop_new();
    struct rec srv, cli;
    struct weft_datagram_transport *st, *ct;
    uint16_t port;
    char msg[] = "hello, datagram";

    rec_init(&srv, ACT_ECHO);
    rec_init(&cli, ACT_NONE);
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &srv, host, 0, NULL, 0,
                                                   NULL, &st), 0);
    assert_int_equal(srv.made, 1);      /* numeric: made before the call returns */
    port = sock_port(st, NULL);
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &cli, NULL, 0, host, port,
                                                   NULL, &ct), 0);
    assert_int_equal(cli.made, 1);
    assert_int_equal(weft_datagram_sendto(ct, msg, sizeof(msg), NULL, 0), 0);
    assert_int_equal(weft_datagram_sendto(ct, "", 0, NULL, 0), 0);     /* empty datagram */
    cli.want = 2;
    assert_int_equal(harness_run_until(loop, &cli.got_flag, 5000), 0);
    assert_int_equal(srv.datagrams, 2);
    assert_int_equal(cli.datagrams, 2);
    assert_int_equal(cli.last_len, 0);
    assert_int_equal(srv.errors + cli.errors, 0);
    assert_int_equal(sock_port(ct, NULL), srv.fromlen == sizeof(struct sockaddr_in)
                     ? ntohs(((struct sockaddr_in *)&srv.from)->sin_port)
                     : ntohs(((struct sockaddr_in6 *)&srv.from)->sin6_port));
    /* the client's answer came from the server's address */
    assert_int_equal(cli.from.ss_family, srv.from.ss_family);
    lose(loop, &cli);
    lose(loop, &srv);
    assert_int_equal(cli.lost_error, 0);
    weft_loop_free(loop);
}

static void
test_echo_ipv4(void **state)
{
    (void)state;
    echo_round_trip("127.0.0.1");
}

static void
test_echo_ipv6(void **state)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };

    (void)state;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        if (fd >= 0)
            close(fd);
        skip();                 /* no ::1 here */
    }
    close(fd);
    echo_round_trip("::1");
    echo_round_trip("[::1]");
}

/* Many datagrams at once arrive in order, several per recvmmsg (batch 4 here). */
static void
test_batch_receives_in_order(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_datagram_options o = WEFT_DATAGRAM_OPTIONS_INIT;
    struct rec srv;
    struct weft_datagram_transport *st;
    struct sockaddr_in to = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    (void)state;
    rec_init(&srv, ACT_NONE);
    o.recv_batch = 4;
    srv.want = 50;
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &srv, "127.0.0.1", 0,
                                                   NULL, 0, &o, &st), 0);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(sock_port(st, NULL));
    for (uint32_t i = 0; i < 50; i++) {
        char buf[100] = { 0 };

        memcpy(buf, &i, 4);
        assert_int_equal(sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&to, sizeof(to)),
                         (ssize_t)sizeof(buf));
    }
    assert_int_equal(harness_run_until(loop, &srv.got_flag, 5000), 0);
    assert_int_equal(srv.datagrams, 50);
    assert_true(srv.order_ok);
    assert_int_equal(srv.last_len, 100);
    close(fd);
    lose(loop, &srv);
    weft_loop_free(loop);
}

/* A UDP port nobody listens on: bound, then closed. */
static uint16_t
closed_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t l = sizeof(a);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    uint16_t port;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void
test_connected_gets_econnrefused(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct rec cli;
    struct weft_datagram_transport *ct;
    int rc = 0;

    (void)state;
    rec_init(&cli, ACT_NONE);
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &cli, NULL, 0,
                                                   "127.0.0.1", closed_port(), NULL, &ct), 0);
    /* the ICMP port unreachable comes back on the socket; a second send may meet it too */
    for (int i = 0; i < 3 && !cli.error_flag; i++) {
        assert_int_equal(weft_datagram_sendto(ct, "ping", 4, NULL, 0), 0);
        rc = harness_run_until(loop, &cli.error_flag, 1000);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(cli.last_error, -ECONNREFUSED);
    assert_false(weft_datagram_is_closing(ct));     /* an error is news, not the end */
    assert_int_equal(cli.lost, 0);
    lose(loop, &cli);
    weft_loop_free(loop);
}

static void
test_sendto_argument_errors(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct rec u, c;
    struct weft_datagram_transport *ut, *ctr;
    static char big[65508];
    struct sockaddr_in other = { .sin_family = AF_INET, .sin_port = htons(9) };

    (void)state;
    rec_init(&u, ACT_NONE);
    rec_init(&c, ACT_NONE);
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &u, "127.0.0.1", 0, NULL,
                                                   0, NULL, &ut), 0);
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &c, NULL, 0, "127.0.0.1",
                                                   closed_port(), NULL, &ctr), 0);
    assert_int_equal(weft_datagram_sendto(ut, "x", 1, NULL, 0), -EDESTADDRREQ);
    assert_int_equal(weft_datagram_sendto(ut, big, sizeof(big), (struct sockaddr *)&other,
                                          sizeof(other)), -EMSGSIZE);
    other.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(weft_datagram_sendto(ctr, "x", 1, (struct sockaddr *)&other,
                                          sizeof(other)), -EINVAL);   /* not its peer */
    weft_datagram_close(ut);
    assert_int_equal(weft_datagram_sendto(ut, "x", 1, (struct sockaddr *)&other,
                                          sizeof(other)), -EPIPE);
    weft_datagram_close(ut);                                /* twice: a no-op */
    lose(loop, &u);
    lose(loop, &c);
    weft_loop_free(loop);
}

static void
test_create_errors(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_datagram_options o = WEFT_DATAGRAM_OPTIONS_INIT;
    struct weft_datagram_transport *tr = (void *)1;
    struct rec r;

    (void)state;
    rec_init(&r, ACT_NONE);
    /* nothing to bind or connect, and no family: asyncio's ValueError */
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &r, NULL, 0, NULL, 0,
                                                   NULL, &tr), -EINVAL);
    assert_int_equal(r.made + r.lost, 0);       /* refused before the factory ran */
    assert_null(tr);
    o.family = AF_INET6;
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &r, "127.0.0.1", 0, NULL,
                                                   0, &o, &tr), -EAFNOSUPPORT);
    assert_int_equal(r.lost, 1);                /* the protocol may free itself */
    assert_int_equal(r.lost_error, -EAFNOSUPPORT);
    rec_init(&r, ACT_NONE);
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &r, "no.such.invalid", 0,
                                                   NULL, 0, NULL, &tr), -WEFT_ENONAME);
    rec_init(&r, ACT_NONE);
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &r, "192.0.2.1", 0, NULL,
                                                   0, NULL, &tr), -EADDRNOTAVAIL);
    assert_int_equal(r.made, 0);
    /* an unbound socket of a given family: the kernel binds it at the first send */
    rec_init(&r, ACT_NONE);
    o.family = AF_INET;
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &r, NULL, 0, NULL, 0,
                                                   &o, &tr), 0);
    assert_int_equal(r.made, 1);
    lose(loop, &r);
    weft_loop_free(loop);
}

/* "localhost" is a name: resolved (here from /etc/hosts) and made from the loop. */
static void
test_name_is_resolved_without_blocking(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_datagram_options o = WEFT_DATAGRAM_OPTIONS_INIT;
    struct weft_datagram_transport *tr;
    struct rec r;
    struct sockaddr_storage ss;
    size_t len = sizeof(ss);
    bool made;

    (void)state;
    rec_init(&r, ACT_NONE);
    o.family = AF_INET;
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &r, "localhost", 0, NULL,
                                                   0, &o, &tr), 0);
    made = r.made == 1;
    if (!made) {
        assert_int_equal(weft_datagram_sendto(tr, "x", 1, NULL, 0), -ENOTCONN);
        assert_int_equal(weft_datagram_get_extra_info(tr, "sockname", &ss, &len), -ENOENT);
        for (int i = 0; i < 100 && r.made == 0 && r.lost == 0; i++)
            weft_loop_run_once(loop);
    }
    assert_int_equal(r.made, 1);
    assert_int_equal(weft_datagram_get_extra_info(tr, "sockname", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    lose(loop, &r);
    weft_loop_free(loop);
}

static void
test_extra_info(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct rec u, c;
    struct weft_datagram_transport *ut, *ctr;
    struct sockaddr_storage ss;
    size_t len;
    int fd = -1;
    uint16_t port;

    (void)state;
    rec_init(&u, ACT_NONE);
    rec_init(&c, ACT_NONE);
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &u, "127.0.0.1", 0, NULL,
                                                   0, NULL, &ut), 0);
    port = sock_port(ut, NULL);
    assert_int_not_equal(port, 0);
    len = sizeof(ss);
    assert_int_equal(weft_datagram_get_extra_info(ut, "peername", &ss, &len), -ENOENT);
    len = sizeof(fd);
    assert_int_equal(weft_datagram_get_extra_info(ut, "socket", &fd, &len), 0);
    assert_true(fd >= 0);
    assert_int_equal(len, sizeof(int));
    len = 2;
    assert_int_equal(weft_datagram_get_extra_info(ut, "sockname", &ss, &len), -ENOBUFS);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    len = sizeof(ss);
    assert_int_equal(weft_datagram_get_extra_info(ut, "cipher", &ss, &len), -ENOENT);
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &c, NULL, 0, "127.0.0.1",
                                                   port, NULL, &ctr), 0);
    len = sizeof(ss);
    assert_int_equal(weft_datagram_get_extra_info(ctr, "peername", &ss, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), port);
    assert_ptr_equal(weft_datagram_get_loop(ctr), loop);
    assert_ptr_equal(weft_datagram_get_protocol(ctr), &c.base);
    lose(loop, &u);
    lose(loop, &c);
    weft_loop_free(loop);
}

/*
 * The send queue, made deterministic with a Unix datagram socketpair handed
 * over as opts.fd: nobody reads the other end, so its queue fills and sends
 * meet EAGAIN.
 */
struct qfix {
    struct weft_loop *loop;
    struct rec r;
    struct weft_datagram_transport *tr;
    int peer;
    int sent;
};

static void
qfix_fill(struct qfix *q)
{
    int sv[2];
    struct weft_datagram_options o = WEFT_DATAGRAM_OPTIONS_INIT;
    char buf[1000];
    int guard = 0;

    q->loop = harness_loop_new();
    rec_init(&q->r, ACT_NONE);
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0);
    q->peer = sv[1];
    o.fd = sv[0];
    assert_int_equal(weft_create_datagram_endpoint(q->loop, rec_factory, &q->r, NULL, 0, NULL,
                                                   0, &o, &q->tr), 0);
    assert_int_equal(weft_datagram_set_write_buffer_limits(q->tr, 4000, 1000), 0);
    q->sent = 0;
    while (q->r.pauses == 0 && guard++ < 100000) {
        uint32_t i = (uint32_t)q->sent++;

        memset(buf, 'q', sizeof(buf));
        memcpy(buf, &i, 4);
        assert_int_equal(weft_datagram_sendto(q->tr, buf, sizeof(buf), NULL, 0), 0);
    }
    assert_int_equal(q->r.pauses, 1);
    /* paused just past the mark: 5 datagrams of 1000 bytes queued */
    assert_int_equal(weft_datagram_get_write_buffer_size(q->tr), 5000);
}

/* Read everything the peer end has, in order; returns how many. */
static int
qfix_drain(struct qfix *q, int *expect)
{
    char buf[2000];
    int n = 0;

    for (;;) {
        ssize_t k = recv(q->peer, buf, sizeof(buf), MSG_DONTWAIT);
        uint32_t i;

        if (k < 0)
            return n;
        assert_int_equal(k, 1000);
        memcpy(&i, buf, 4);
        assert_int_equal(i, (uint32_t)*expect);
        ++*expect;
        n++;
    }
}

static void
test_queue_pauses_and_resumes(void **state)
{
    struct qfix q;
    int expect = 0;
    size_t high, low;

    (void)state;
    qfix_fill(&q);
    weft_datagram_get_write_buffer_limits(q.tr, &high, &low);
    assert_int_equal(high, 4000);
    assert_int_equal(low, 1000);
    assert_int_equal(weft_datagram_set_write_buffer_limits(q.tr, 10, 20), -EINVAL);
    /* the reader wakes up: the queue goes out in order and writing resumes */
    for (int i = 0; i < 200 && !q.r.resumed_flag; i++) {
        qfix_drain(&q, &expect);
        (void)harness_run_until(q.loop, &q.r.resumed_flag, 20);
    }
    assert_int_equal(q.r.resumes, 1);
    assert_true(weft_datagram_get_write_buffer_size(q.tr) <= 1000);
    harness_run_for(q.loop, 10);
    qfix_drain(&q, &expect);
    harness_run_for(q.loop, 10);
    qfix_drain(&q, &expect);
    assert_int_equal(expect, q.sent);
    assert_int_equal(weft_datagram_get_write_buffer_size(q.tr), 0);
    lose(q.loop, &q.r);
    close(q.peer);
    weft_loop_free(q.loop);
}

static void
test_close_sends_queued_datagrams(void **state)
{
    struct qfix q;
    int expect = 0;

    (void)state;
    qfix_fill(&q);
    weft_datagram_close(q.tr);
    assert_true(weft_datagram_is_closing(q.tr));
    harness_run_for(q.loop, 10);
    assert_int_equal(q.r.lost, 0);          /* still sending */
    for (int i = 0; i < 200 && !q.r.lost_flag; i++) {
        qfix_drain(&q, &expect);
        (void)harness_run_until(q.loop, &q.r.lost_flag, 20);
    }
    qfix_drain(&q, &expect);
    assert_int_equal(expect, q.sent);       /* every queued datagram went out */
    assert_int_equal(q.r.lost_error, 0);
    assert_int_equal(q.r.resumes, 0);       /* no resume_writing once closing */
    assert_int_equal(q.r.after_lost, 0);
    close(q.peer);
    weft_loop_free(q.loop);
}

static void
test_abort_drops_queue(void **state)
{
    struct qfix q;
    int expect = 0, got;

    (void)state;
    qfix_fill(&q);
    weft_datagram_abort(q.tr);
    assert_int_equal(weft_datagram_get_write_buffer_size(q.tr), 0);
    assert_int_equal(weft_datagram_sendto(q.tr, "x", 1, NULL, 0), -EPIPE);
    weft_datagram_close(q.tr);              /* after abort: a no-op */
    assert_int_equal(harness_run_until(q.loop, &q.r.lost_flag, 1000), 0);
    assert_int_equal(q.r.lost, 1);
    got = qfix_drain(&q, &expect);
    assert_int_equal(got, q.sent - 5);      /* what was queued never left */
    assert_int_equal(q.r.after_lost, 0);
    close(q.peer);
    weft_loop_free(q.loop);
}

/* close() inside datagram_received: no more datagrams, lost follows. */
static void
test_close_in_callback(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct rec srv;
    struct weft_datagram_transport *st;
    struct sockaddr_in to = { .sin_family = AF_INET };
    int fd = socket(AF_INET, SOCK_DGRAM, 0);

    (void)state;
    rec_init(&srv, ACT_CLOSE_IN_DATA);
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &srv, "127.0.0.1", 0,
                                                   NULL, 0, NULL, &st), 0);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(sock_port(st, NULL));
    for (int i = 0; i < 5; i++)
        assert_int_equal(sendto(fd, "abcd", 4, 0, (struct sockaddr *)&to, sizeof(to)), 4);
    assert_int_equal(harness_run_until(loop, &srv.lost_flag, 5000), 0);
    assert_int_equal(srv.datagrams, 1);
    assert_int_equal(srv.after_lost, 0);
    close(fd);
    weft_loop_free(loop);
}

/*
 * Every allocation of weft_create_datagram_endpoint failing in turn: each
 * attempt either succeeds or returns -ENOMEM with the protocol freed by its
 * connection_lost (ASan and valgrind see any leak); the walk ends with a
 * success that echoes.
 */
static void
test_allocation_failures(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_datagram_transport *tr;
    int rc = -ENOMEM;
    long n;

    (void)state;
    for (n = 1; n < 50; n++) {
        alloc_count = 0;
        alloc_fail_at = n;
        rc = weft_create_datagram_endpoint(loop, heap_factory, NULL, "127.0.0.1", 0, NULL, 0,
                                           NULL, &tr);
        alloc_fail_at = 0;
        if (rc == 0)
            break;
        assert_int_equal(rc, -ENOMEM);
        assert_null(tr);
    }
    assert_int_equal(rc, 0);
    assert_true(n >= 3);                    /* the protocol, the transport, the buffer */
    {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in to = { .sin_family = AF_INET };
        char buf[16];
        ssize_t k = -1;

        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        to.sin_port = htons(sock_port(tr, NULL));
        assert_int_equal(sendto(fd, "ok", 2, 0, (struct sockaddr *)&to, sizeof(to)), 2);
        for (int i = 0; i < 500 && k < 0; i++) {
            harness_run_for(loop, 2);
            k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        }
        assert_int_equal(k, 2);
        close(fd);
    }
    weft_datagram_abort(tr);
    harness_run_for(loop, 10);              /* the heap protocol frees itself */
    weft_loop_free(loop);
}

/* reuse_port lets two endpoints bind one port; allow_broadcast sets SO_BROADCAST. */
static void
test_reuse_port_and_broadcast(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_datagram_options o = WEFT_DATAGRAM_OPTIONS_INIT;
    struct weft_datagram_transport *a, *b, *c;
    struct rec ra, rb, rc_;
    int fd = -1, on = 0;
    size_t len = sizeof(fd);
    socklen_t ol = sizeof(on);
    uint16_t port;

    (void)state;
    rec_init(&ra, ACT_NONE);
    rec_init(&rb, ACT_NONE);
    rec_init(&rc_, ACT_NONE);
    o.reuse_port = true;
    o.allow_broadcast = true;
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &ra, "127.0.0.1", 0,
                                                   NULL, 0, &o, &a), 0);
    port = sock_port(a, NULL);
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &rb, "127.0.0.1", port,
                                                   NULL, 0, &o, &b), 0);
    assert_int_equal(sock_port(b, NULL), port);
    assert_int_equal(weft_datagram_get_extra_info(b, "socket", &fd, &len), 0);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, &ol), 0);
    assert_int_equal(on, 1);
    o.reuse_port = false;       /* without it the port is taken */
    assert_int_equal(weft_create_datagram_endpoint(loop, rec_factory, &rc_, "127.0.0.1", port,
                                                   NULL, 0, &o, &c), -EADDRINUSE);
    assert_int_equal(rc_.lost_error, -EADDRINUSE);
    lose(loop, &ra);
    lose(loop, &rb);
    weft_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_ipv4),
        cmocka_unit_test(test_echo_ipv6),
        cmocka_unit_test(test_batch_receives_in_order),
        cmocka_unit_test(test_connected_gets_econnrefused),
        cmocka_unit_test(test_sendto_argument_errors),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_name_is_resolved_without_blocking),
        cmocka_unit_test(test_extra_info),
        cmocka_unit_test(test_reuse_port_and_broadcast),
        cmocka_unit_test(test_queue_pauses_and_resumes),
        cmocka_unit_test(test_close_sends_queued_datagrams),
        cmocka_unit_test(test_abort_drops_queue),
        cmocka_unit_test(test_close_in_callback),
        cmocka_unit_test(test_allocation_failures),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
