/* SPDX-License-Identifier: MIT */
/* test_resolver.c: lookups on the loop's resolver against a fake DNS server; happy eyeballs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include <event2/dns.h>

#include "fake_dns.h"
#include "harness.h"
#include "core/internal.h"
#include "net/transport-int.h"

static int setup(void **state)    { *state = fake_dns_new(0); return 0; }
static int setup_timeout(void **state) { *state = fake_dns_new(200); return 0; }
static int teardown(void **state) { fake_dns_free(*state); return 0; }

/* ---- getaddrinfo ---- */

struct gai {
    struct fake_dns *f;
    const char *host, *service;
    struct addrinfo hints;
    bool v4_loopback, v6_loopback, v4_two;
    int n, port;
    int first_family;
};

static intptr_t
gai_task(void *arg)
{
    struct gai *g = arg;
    struct addrinfo *res = NULL;
    int rc = weft_getaddrinfo(g->f->loop, g->host, g->service, &g->hints, &res);

    if (rc < 0) {
        assert_null(res);
        return rc;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (g->n++ == 0)
            g->first_family = ai->ai_family;
        if (ai->ai_family == AF_INET) {
            const struct sockaddr_in *sin = (const void *)ai->ai_addr;

            g->v4_loopback |= sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
            g->v4_two |= sin->sin_addr.s_addr == htonl(0x7f000002);
            g->port = ntohs(sin->sin_port);
        } else if (ai->ai_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const void *)ai->ai_addr;

            g->v6_loopback |= memcmp(&sin6->sin6_addr, &in6addr_loopback, 16) == 0;
            g->port = ntohs(sin6->sin6_port);
        }
    }
    weft_freeaddrinfo(res);
    return 0;
}

static int
run_gai(struct fake_dns *f, struct gai *g, const char *host, const char *service)
{
    g->f = f;
    g->host = host;
    g->service = service;
    g->hints.ai_socktype = SOCK_STREAM;
    return (int)harness_run_task(f->loop, gai_task, g, 5000);
}

static void
test_getaddrinfo_localhost_comes_from_the_hosts_file_without_a_query(void **state)
{
    struct fake_dns *f = *state;
    struct gai g = { 0 };

    assert_int_equal(run_gai(f, &g, "localhost", "80"), 0);
    assert_true(g.v4_loopback);
    assert_true(g.v6_loopback);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.port, 80);
    assert_int_equal(f->queries, 0);
}

static void
test_getaddrinfo_numeric_hosts_need_no_query(void **state)
{
    struct fake_dns *f = *state;
    struct gai a = { 0 }, b = { 0 }, c = { .hints.ai_flags = AI_PASSIVE };

    assert_int_equal(run_gai(f, &a, "127.0.0.1", "7"), 0);
    assert_true(a.v4_loopback);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.port, 7);
    assert_int_equal(run_gai(f, &b, "::1", NULL), 0);
    assert_true(b.v6_loopback);
    assert_int_equal(b.n, 1);
    assert_int_equal(run_gai(f, &c, NULL, "8080"), 0);   /* the wildcards */
    assert_int_equal(c.n, 2);
    assert_int_equal(c.port, 8080);
    assert_int_equal(f->queries, 0);
}

static void
test_getaddrinfo_asks_the_loops_nameserver(void **state)
{
    struct fake_dns *f = *state;
    struct gai g = { 0 };

    assert_int_equal(run_gai(f, &g, "a.test", "80"), 0);
    assert_true(g.v4_two);          /* only our server knows that */
    assert_int_equal(g.n, 1);       /* and it has no AAAA */
    assert_true(f->queries >= 1);
    assert_int_equal(weft_loop_set_resolver(f->loop, NULL), -EBUSY);    /* too late */
    /* resolv.conf's 192.0.2.1 was left out: ours is the only server asked */
    assert_int_equal(evdns_base_count_nameservers(weft__loop_dns(f->loop)), 1);
}

static void
test_getaddrinfo_unknown_name_is_enoname(void **state)
{
    struct fake_dns *f = *state;
    struct gai g = { 0 }, h = { 0 };
    int before;

    assert_int_equal(run_gai(f, &g, "nx.test", "80"), -WEFT_ENONAME);
    assert_true(f->queries >= 1);
    before = f->queries;
    assert_int_equal(run_gai(f, &h, "no.such.invalid", "80"), -WEFT_ENONAME);
    assert_int_equal(f->queries, before);   /* RFC 6761: not even asked */
}

static void
test_getaddrinfo_unanswered_times_out(void **state)
{
    struct fake_dns *f = *state;
    struct gai g = { 0 };
    uint64_t t0 = weft_loop_time(f->loop);

    assert_int_equal(run_gai(f, &g, "slow.test", "80"), -ETIMEDOUT);
    assert_true(weft_loop_time(f->loop) - t0 >= 190);
    assert_true(weft_loop_time(f->loop) - t0 < 3000);
    assert_true(f->queries >= 1);
}

static void
test_getaddrinfo_outside_a_task_and_bad_arguments(void **state)
{
    struct fake_dns *f = *state;
    struct addrinfo *res = (void *)1;

    assert_int_equal(weft_getaddrinfo(f->loop, "localhost", "80", NULL, &res), -WEFT_ENOTASK);
    assert_null(res);
    assert_int_equal(weft_getaddrinfo_cb(f->loop, NULL, NULL, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(weft_loop_set_resolver(f->loop, &(struct weft_resolver_options){
                                                .nameserver = "not an address" }),
                     -EINVAL);
    weft_freeaddrinfo(NULL);
    weft_lookup_cancel(NULL);
}

/* ---- getnameinfo ---- */

struct gni {
    const char *addr;
    int flags;
    size_t hostlen;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
};

static intptr_t
gni_task(void *arg)
{
    struct gni *g = arg;
    struct sockaddr_storage ss = { 0 };
    socklen_t len;

    if (strchr(g->addr, ':') != NULL) {
        struct sockaddr_in6 *sin6 = (void *)&ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(80);
        assert_int_equal(inet_pton(AF_INET6, g->addr, &sin6->sin6_addr), 1);
        len = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (void *)&ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons(80);
        assert_int_equal(inet_pton(AF_INET, g->addr, &sin->sin_addr), 1);
        len = sizeof(*sin);
    }
    return weft_getnameinfo((struct sockaddr *)&ss, len, g->host,
                            g->hostlen ? g->hostlen : sizeof(g->host), g->serv,
                            sizeof(g->serv), g->flags);
}

static int
run_gni(struct fake_dns *f, struct gni *g, const char *addr, int flags)
{
    g->addr = addr;
    g->flags = flags;
    return (int)harness_run_task(f->loop, gni_task, g, 5000);
}

static void
test_getnameinfo_reverse_of_127_0_0_1(void **state)
{
    struct fake_dns *f = *state;
    struct gni g = { 0 };

    assert_int_equal(run_gni(f, &g, "127.0.0.1", NI_NUMERICSERV | NI_NAMEREQD), 0);
    assert_string_equal(g.host, "localhost");
    assert_string_equal(g.serv, "80");
    assert_true(f->queries >= 1);
}

static void
test_getnameinfo_numeric_and_fallbacks(void **state)
{
    struct fake_dns *f = *state;
    struct gni a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 }, e = { .hostlen = 4 };
    int before;

    assert_int_equal(run_gni(f, &a, "127.0.0.1", NI_NUMERICHOST | NI_NUMERICSERV), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_string_equal(a.serv, "80");
    assert_int_equal(f->queries, 0);
    /* no PTR record: the address, or with NI_NAMEREQD an error */
    assert_int_equal(run_gni(f, &b, "127.0.0.9", NI_NUMERICSERV), 0);
    assert_string_equal(b.host, "127.0.0.9");
    assert_int_equal(run_gni(f, &c, "::1", NI_NUMERICSERV | NI_NAMEREQD), -WEFT_ENONAME);
    before = f->queries;
    assert_true(before >= 2);
    assert_int_equal(run_gni(f, &d, "::1", NI_NUMERICHOST | NI_NUMERICSERV), 0);
    assert_string_equal(d.host, "::1");
    assert_int_equal(run_gni(f, &e, "127.0.0.1", NI_NUMERICHOST), -ENOSPC);
    assert_int_equal(f->queries, before);
}

/* ---- cancellation ---- */

struct cb_seen {
    bool called;
    int error;
};

static void
on_addrinfo(int error, struct addrinfo *res, void *arg)
{
    struct cb_seen *s = arg;

    s->called = true;
    s->error = error;
    weft_freeaddrinfo(res);
}

static void
on_nameinfo(int error, const char *host, const char *serv, void *arg)
{
    struct cb_seen *s = arg;

    (void)host;
    (void)serv;
    s->called = true;
    s->error = error;
}

static intptr_t
wait_slow(void *arg)
{
    struct fake_dns *f = arg;
    struct addrinfo *res = NULL;

    return weft_getaddrinfo(f->loop, "slow.test", "80", NULL, &res);
}

static void
test_cancelled_lookups_call_nothing_and_leak_nothing(void **state)
{
    struct fake_dns *f = *state;
    struct cb_seen a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };
    struct weft_lookup *l = NULL;
    struct sockaddr_in sin = { .sin_family = AF_INET };
    struct weft_task *t;

    /* a task waiting in weft_getaddrinfo is cancelled: so is its query */
    t = weft_task_spawn(f->loop, wait_slow, f, NULL);
    assert_non_null(t);
    for (int i = 0; i < 300 && f->queries == 0; i++)
        harness_run_for(f->loop, 5);
    assert_true(f->queries >= 1);
    assert_false(weft_future_done(weft_task_future(t)));
    assert_true(weft_task_cancel(t));
    for (int i = 0; i < 100 && !weft_future_done(weft_task_future(t)); i++)
        harness_run_for(f->loop, 5);
    assert_true(weft_future_done(weft_task_future(t)));
    assert_true(weft_future_cancelled(weft_task_future(t)) ||
                weft_future_result(weft_task_future(t)) == -ECANCELED);
    weft_task_unref(t);
    /* the callback forms: pending, answered at once (/etc/hosts, numeric), reverse */
    assert_int_equal(weft_getaddrinfo_cb(f->loop, "slow.test", "80", NULL, on_addrinfo, &a, &l), 0);
    weft_lookup_cancel(l);
    assert_int_equal(weft_getaddrinfo_cb(f->loop, "localhost", "80", NULL, on_addrinfo, &b, &l), 0);
    weft_lookup_cancel(l);
    sin.sin_addr.s_addr = htonl(0x7f000008);
    assert_int_equal(weft_getnameinfo_cb(f->loop, (struct sockaddr *)&sin, sizeof(sin), 0,
                                         on_nameinfo, &c, &l), 0);
    harness_run_for(f->loop, 20);
    weft_lookup_cancel(l);
    /* one left pending when the loop is freed (fake_dns_free) */
    assert_int_equal(weft_getaddrinfo_cb(f->loop, "localhost", "80", NULL, on_addrinfo, &d, NULL),
                     0);
    assert_false(d.called);                 /* never from inside the call */
    harness_run_for(f->loop, 50);
    assert_false(a.called);
    assert_false(b.called);
    assert_false(c.called);
    assert_true(d.called);
    assert_int_equal(d.error, 0);
}

/* Cancelled lookups whose evdns callbacks have not run yet when the loop is freed. */
static void
test_loop_freed_right_after_cancelling_leaks_nothing(void **state)
{
    struct fake_dns *f = fake_dns_new(0);
    struct cb_seen a = { 0 }, b = { 0 };
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
    struct weft_lookup *l = NULL, *m = NULL;

    (void)state;
    sin6.sin6_addr.s6_addr[15] = 2;     /* ::2, whose PTR query goes unanswered */
    assert_int_equal(weft_getaddrinfo_cb(f->loop, "slow.test", "80", NULL, on_addrinfo, &a, &l), 0);
    assert_int_equal(weft_getnameinfo_cb(f->loop, (struct sockaddr *)&sin6, sizeof(sin6),
                                         NI_NAMEREQD, on_nameinfo, &b, &m), 0);
    for (int i = 0; i < 300 && f->queries < 3; i++)
        harness_run_for(f->loop, 5);
    assert_true(f->queries >= 3);       /* A, AAAA and PTR are out */
    weft_lookup_cancel(l);
    weft_lookup_cancel(m);
    fake_dns_free_now(f);                /* ASan and valgrind see any leak */
    assert_false(a.called);
    assert_false(b.called);
}

/* ---- create_server ---- */

static void
test_create_server_resolves_hosts_names_and_refuses_dns_names(void **state)
{
    struct fake_dns *f = *state;
    struct harness_echo_stats st = { 0 };
    struct weft_server *s = NULL;

    harness_log_capture();
    harness_log_clear();
    assert_int_equal(weft_create_server(f->loop, harness_echo_factory, &st, "localhost", 0, NULL,
                                        &s), 0);
    assert_int_equal(weft_server_socket_count(s), 2);   /* 127.0.0.1 and ::1 */
    weft_server_free(s);
    s = NULL;
    assert_int_equal(weft_create_server(f->loop, harness_echo_factory, &st, "a.test", 0, NULL,
                                        &s), -EWOULDBLOCK);
    assert_null(s);
    assert_true(harness_log_contains("weft_getaddrinfo"));
    assert_int_equal(weft_create_server(f->loop, harness_echo_factory, &st, "x.invalid", 0, NULL,
                                        &s), -WEFT_ENONAME);
    harness_run_for(f->loop, 20);
    assert_int_equal(f->queries, 0);    /* nothing was asked of any server */
    weft_log_set_handler(NULL, NULL, WEFT_LOG_INFO);
}

/* ---- happy eyeballs ---- */

/*
 * he.test is ::1 and 127.0.0.1 on one port: on ::1 a listener whose backlog
 * is full, so a SYN to it goes unanswered (a black hole); on 127.0.0.1 one
 * that completes connections in the kernel.
 */
struct he {
    int v4, v6, held[8], nheld;
    uint16_t port;
};

static void
he_open(struct he *h)
{
    int one = 1;

    for (int tries = 0; tries < 20; tries++) {
        struct sockaddr_in sin = { .sin_family = AF_INET };
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
        socklen_t len = sizeof(sin);

        h->v4 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(h->v4, (struct sockaddr *)&sin, sizeof(sin)), 0);
        assert_int_equal(listen(h->v4, 16), 0);
        assert_int_equal(getsockname(h->v4, (struct sockaddr *)&sin, &len), 0);
        h->port = ntohs(sin.sin_port);
        h->v6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (h->v6 < 0)
            skip();         /* no IPv6 here */
        setsockopt(h->v6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        sin6.sin6_port = htons(h->port);
        if (bind(h->v6, (struct sockaddr *)&sin6, sizeof(sin6)) == 0 && listen(h->v6, 0) == 0)
            break;
        close(h->v4);
        close(h->v6);
        h->v6 = -1;
    }
    assert_true(h->v6 >= 0);
    for (h->nheld = 0; h->nheld < 8; h->nheld++) {
        struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT,
                                     .sin6_port = htons(h->port) };
        int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };

        h->held[h->nheld] = fd;
        connect(fd, (struct sockaddr *)&sin6, sizeof(sin6));
        if (poll(&pfd, 1, 200) == 0) {
            h->nheld++;
            return;
        }
    }
    fail_msg("could not fill the IPv6 listen backlog");
}

static void
he_close(struct he *h)
{
    for (int i = 0; i < h->nheld; i++)
        close(h->held[i]);
    close(h->v4);
    close(h->v6);
}

struct outcome {
    bool called;
    int error;
    struct weft_transport *tr;
};

static void
on_connect(struct weft_transport *tr, int error, void *arg)
{
    struct outcome *o = arg;

    o->called = true;
    o->error = error;
    o->tr = tr;
}

static void
test_happy_eyeballs_connects_over_ipv4_when_ipv6_is_a_black_hole(void **state)
{
    struct fake_dns *f = *state;
    struct weft_connect_options opts = WEFT_CONNECT_OPTIONS_INIT;
    struct harness_echo_stats cli = { 0 };
    struct outcome o = { 0 }, p = { 0 };
    struct sockaddr_storage peer;
    size_t plen = sizeof(peer);
    struct gai g = { 0 };
    struct he h;
    uint64_t t0, took;

    he_open(&h);
    /* both families resolve (evdns gives IPv4 first; connect puts IPv6 first) */
    assert_int_equal(run_gai(f, &g, "he.test", "80"), 0);
    assert_int_equal(g.first_family, AF_INET);
    assert_true(g.v4_loopback && g.v6_loopback);
    opts.timeout_ms = 5000;
    opts.happy_eyeballs_delay_ms = 100;
    t0 = weft_loop_time(f->loop);
    assert_int_equal(weft_create_connection(f->loop, harness_echo_factory, &cli, "he.test", h.port,
                                            &opts, on_connect, &o, NULL), 0);
    assert_int_equal(harness_run_until(f->loop, &o.called, 6000), 0);
    took = weft_loop_time(f->loop) - t0;
    assert_int_equal(o.error, 0);
    assert_int_equal(weft_transport_get_extra_info(o.tr, "peername", &peer, &plen), 0);
    assert_int_equal(peer.ss_family, AF_INET);
    /* IPv4 started once the delay had passed, and won long before the timeout */
    assert_true(took >= 95);
    assert_true(took < 2500);
    weft_transport_abort(o.tr);
    /* without happy eyeballs the black hole holds the only attempt until the timeout
     * (interleave 1 puts IPv6 first; asyncio's default without the delay is the
     * resolver's order, where IPv4 would go first) */
    opts.timeout_ms = 300;
    opts.happy_eyeballs_delay_ms = WEFT_HAPPY_EYEBALLS_OFF;
    opts.interleave = 1;
    assert_int_equal(weft_create_connection(f->loop, harness_echo_factory, &cli, "he.test", h.port,
                                            &opts, on_connect, &p, NULL), 0);
    assert_int_equal(harness_run_until(f->loop, &p.called, 6000), 0);
    assert_int_equal(p.error, -ETIMEDOUT);
    harness_run_for(f->loop, 20);
    he_close(&h);
}

struct he_stream {
    struct he *h;
    struct weft_stream_options o;
    int family;
};

static intptr_t
he_stream_task(void *arg)
{
    struct he_stream *hs = arg;
    struct weft_stream_options o = hs->o;
    struct weft_reader *r;
    struct weft_writer *w;
    struct sockaddr_storage peer;
    size_t plen = sizeof(peer);
    int rc = weft_open_connection("he.test", hs->h->port, &o, &r, &w);

    if (rc < 0)
        return rc;
    rc = weft_writer_get_extra_info(w, "peername", &peer, &plen);
    hs->family = peer.ss_family;
    weft_writer_free(w);
    return rc;
}

static void
test_open_connection_shares_the_happy_eyeballs(void **state)
{
    struct fake_dns *f = *state;
    struct he h;
    struct he_stream hs = { .h = &h, .o = { .happy_eyeballs_ms = 50,
                                             .connect_timeout_ms = 5000 } };
    struct he_stream off = { .h = &h, .o = { .happy_eyeballs_ms = WEFT_HAPPY_EYEBALLS_OFF,
                                              .interleave = 1, .connect_timeout_ms = 300 } };

    he_open(&h);
    assert_int_equal(harness_run_task(f->loop, he_stream_task, &hs, 6000), 0);
    assert_int_equal(hs.family, AF_INET);
    /* both options reach the lower layer: ::1 first, alone, until the timeout */
    assert_int_equal(harness_run_task(f->loop, he_stream_task, &off, 6000), -ETIMEDOUT);
    he_close(&h);
}

/* The order RFC 8305 section 4 asks for: "4a" is 10.0.0.a, "6a" is ::a. */
static void
order(const char *in, int first, const char *want)
{
    struct weft__addr a[8], tmp[8];
    char got[32] = "";
    size_t n = strlen(in) / 2;

    for (size_t i = 0; i < n; i++) {
        memset(&a[i], 0, sizeof(a[i]));
        if (in[2 * i] == '4') {
            struct sockaddr_in *sin = (void *)&a[i].ss;

            sin->sin_family = AF_INET;
            sin->sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)(in[2 * i + 1] - '0'));
        } else {
            struct sockaddr_in6 *sin6 = (void *)&a[i].ss;

            sin6->sin6_family = AF_INET6;
            sin6->sin6_addr.s6_addr[15] = (uint8_t)(in[2 * i + 1] - '0');
        }
    }
    weft__addrs_interleave(a, n, first, tmp);
    for (size_t i = 0; i < n; i++) {
        int v = a[i].ss.ss_family == AF_INET
                    ? (int)(ntohl(((struct sockaddr_in *)&a[i].ss)->sin_addr.s_addr) & 0xff)
                    : ((struct sockaddr_in6 *)&a[i].ss)->sin6_addr.s6_addr[15];

        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%c%d",
                 a[i].ss.ss_family == AF_INET ? '4' : '6', v);
    }
    assert_string_equal(got, want);
}

static void
test_interleave_orders_by_family(void **state)
{
    (void)state;
    order("414243616263", 1, "614162426343");   /* IPv6 leads, then turns */
    order("414243616263", 2, "616241634243");   /* First Address Family Count 2 */
    order("61624142", 3, "61624142");           /* more than the family has */
    order("414243", 1, "414243");               /* one family */
    order("41426162", 0, "41426162");           /* none: the resolver's order */
    order("4161", -1, "4161");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_getaddrinfo_localhost_comes_from_the_hosts_file_without_a_query),
        T(test_getaddrinfo_numeric_hosts_need_no_query),
        T(test_getaddrinfo_asks_the_loops_nameserver),
        T(test_getaddrinfo_unknown_name_is_enoname),
        cmocka_unit_test_setup_teardown(test_getaddrinfo_unanswered_times_out, setup_timeout,
                                        teardown),
        T(test_getaddrinfo_outside_a_task_and_bad_arguments),
        T(test_getnameinfo_reverse_of_127_0_0_1),
        T(test_getnameinfo_numeric_and_fallbacks),
        T(test_cancelled_lookups_call_nothing_and_leak_nothing),
        cmocka_unit_test(test_loop_freed_right_after_cancelling_leaks_nothing),
        T(test_create_server_resolves_hosts_names_and_refuses_dns_names),
        T(test_happy_eyeballs_connects_over_ipv4_when_ipv6_is_a_black_hole),
        T(test_open_connection_shares_the_happy_eyeballs),
        T(test_interleave_orders_by_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
