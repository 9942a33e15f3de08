/* SPDX-License-Identifier: MIT */
/* test_proxy.c: weft/proxy.h: PROXY v1/v2 headers, valid, partial, hostile; a server's stage. */
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

#include <event2/buffer.h>

#include <weft/weft.h>

#include "harness.h"
#include "net/transport-int.h"      /* weft__addr_string */

static const uint8_t sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

static int
parse(const char *s, unsigned versions, struct weft_proxy_info *pi)
{
    return weft_proxy_parse(s, strlen(s), versions, pi);
}

static void
assert_v4(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)ss;
    char text[INET_ADDRSTRLEN];

    assert_int_equal(sin->sin_family, AF_INET);
    assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof(text)));
    assert_string_equal(text, ip);
    assert_int_equal(ntohs(sin->sin_port), port);
}

static void
assert_v6(const struct sockaddr_storage *ss, const char *ip, unsigned port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)ss;
    char text[INET6_ADDRSTRLEN];

    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof(text)));
    assert_string_equal(text, ip);
    assert_int_equal(ntohs(sin6->sin6_port), port);
}

static void
test_v1_tcp4_gives_both_addresses_and_its_length(void **state)
{
    const char *h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nGET / HTTP/1.1\r\n";
    struct weft_proxy_info pi;

    (void)state;
    assert_int_equal(parse(h, WEFT_PROXY_ANY, &pi), (int)(strchr(h, '\n') - h + 1));
    assert_int_equal(pi.version, 1);
    assert_false(pi.local);
    assert_v4(&pi.src, "192.0.2.7", 56324);
    assert_v4(&pi.dst, "198.51.100.1", 443);
    assert_int_equal(pi.srclen, sizeof(struct sockaddr_in));
}

static void
test_v1_tcp6_and_unknown(void **state)
{
    struct weft_proxy_info pi;

    (void)state;
    assert_int_equal(parse("PROXY TCP6 2001:db8::1 ::1 65535 0\r\n", WEFT_PROXY_V1, &pi), 36);
    assert_v6(&pi.src, "2001:db8::1", 65535);
    assert_v6(&pi.dst, "::1", 0);
    assert_int_equal(parse("PROXY UNKNOWN\r\n", WEFT_PROXY_V1, &pi), 15);
    assert_true(pi.local);
    assert_int_equal(parse("PROXY UNKNOWN ffff:f...f:ffff 1.2.3.4 1 2\r\n", WEFT_PROXY_V1, &pi),
                     43);
    assert_true(pi.local);
}

static void
test_v1_partial_asks_for_more(void **state)
{
    const char *h = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n";
    struct weft_proxy_info pi;

    (void)state;
    for (size_t n = 0; n < strlen(h); n++)
        assert_int_equal(weft_proxy_parse(h, n, WEFT_PROXY_ANY, &pi), 0);
}

static void
test_v1_hostile_lines_are_refused(void **state)
{
    static const char *bad[] = {
        "GET / HTTP/1.1\r\n",                                   /* not a header at all */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",                     /* LF without CR */
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",                   /* unknown protocol */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",                     /* a field missing */
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",                 /* a field too many */
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",                  /* double space */
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",               /* port out of range */
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",                  /* leading zero */
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",                  /* sign */
        "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",                 /* bad IPv4 */
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",                       /* IPv6 under TCP4 */
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",                       /* IPv4 under TCP6 */
        "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",                  /* a tab */
        "PROXY \r\n",                                           /* empty */
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",                   /* case */
        "PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n",                    /* no space */
        "PROXY UNKNOWNX\r\n",                                   /* not UNKNOWN */
    };
    struct weft_proxy_info pi;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(bad[i], WEFT_PROXY_ANY, &pi);

        if (rc != -EPROTO)
            print_message("accepted (%d): %s", rc, bad[i]);
        assert_int_equal(rc, -EPROTO);
    }
    /* A NUL inside the line. */
    assert_int_equal(weft_proxy_parse("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33,
                                      WEFT_PROXY_ANY, &pi), -EPROTO);
}

static void
test_v1_without_end_of_line_in_107_bytes_is_refused(void **state)
{
    char h[200];
    struct weft_proxy_info pi;

    (void)state;
    memset(h, 'A', sizeof(h));
    memcpy(h, "PROXY UNKNOWN ", 14);
    assert_int_equal(weft_proxy_parse(h, 106, WEFT_PROXY_ANY, &pi), 0);
    assert_int_equal(weft_proxy_parse(h, 107, WEFT_PROXY_ANY, &pi), -EPROTO);
    assert_int_equal(weft_proxy_parse(h, sizeof(h), WEFT_PROXY_ANY, &pi), -EPROTO);
    /* The longest legal line is accepted. */
    memcpy(h + 105, "\r\n", 2);
    assert_int_equal(weft_proxy_parse(h, 107, WEFT_PROXY_ANY, &pi), 107);
}

/* A v2 header: cmd (0 LOCAL, 1 PROXY), fam, body of len bytes. */
static size_t
v2(uint8_t *out, uint8_t cmd, uint8_t fam, const uint8_t *body, uint16_t len)
{
    memcpy(out, sig, 12);
    out[12] = (uint8_t)(0x20 | cmd);
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (len > 0)
        memcpy(out + 16, body, len);
    return 16u + len;
}

static void
test_v2_tcp4_and_tcp6_with_tlvs(void **state)
{
    uint8_t h[200], body[64] = { 192, 0, 2, 7, 198, 51, 100, 1, 0xdc, 0x04, 0x01, 0xbb,
                                 /* a TLV: PP2_TYPE_AUTHORITY "x" */ 0x02, 0x00, 0x01, 'x' };
    struct weft_proxy_info pi;
    size_t n = v2(h, 1, 0x11, body, 16);

    (void)state;
    h[n] = 'G';     /* the client's first byte follows */
    assert_int_equal(weft_proxy_parse(h, n + 1, WEFT_PROXY_V2, &pi), 32);
    assert_int_equal(pi.version, 2);
    assert_false(pi.local);
    assert_v4(&pi.src, "192.0.2.7", 56324);
    assert_v4(&pi.dst, "198.51.100.1", 443);

    memset(body, 0, 36);
    body[15] = 1;                           /* ::1 */
    body[16] = 0x20;                        /* 2001:db8::2 */
    body[17] = 0x01;
    body[18] = 0x0d;
    body[19] = 0xb8;
    body[31] = 2;
    body[32] = 0x30;                        /* 12345 */
    body[33] = 0x39;
    body[34] = 0x00;
    body[35] = 0x50;                        /* 80 */
    n = v2(h, 1, 0x21, body, 36);
    assert_int_equal(weft_proxy_parse(h, n, WEFT_PROXY_ANY, &pi), 52);
    assert_v6(&pi.src, "::1", 12345);
    assert_v6(&pi.dst, "2001:db8::2", 80);
}

static void
test_v2_local_and_unspec_keep_the_real_peer(void **state)
{
    uint8_t h[64], body[12] = { 0 };
    struct weft_proxy_info pi;

    (void)state;
    assert_int_equal(weft_proxy_parse(h, v2(h, 0, 0x00, NULL, 0), WEFT_PROXY_V2, &pi), 16);
    assert_true(pi.local);
    assert_int_equal(weft_proxy_parse(h, v2(h, 0, 0x11, body, 12), WEFT_PROXY_V2, &pi), 28);
    assert_true(pi.local);
    assert_int_equal(weft_proxy_parse(h, v2(h, 1, 0x00, NULL, 0), WEFT_PROXY_V2, &pi), 16);
    assert_true(pi.local);
}

static void
test_v2_partial_asks_for_more(void **state)
{
    uint8_t h[64], body[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2 };
    struct weft_proxy_info pi;
    size_t n = v2(h, 1, 0x11, body, 12);

    (void)state;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(weft_proxy_parse(h, i, WEFT_PROXY_ANY, &pi), 0);
    assert_int_equal(weft_proxy_parse(h, n, WEFT_PROXY_ANY, &pi), (int)n);
}

static void
test_v2_hostile_headers_are_refused(void **state)
{
    static uint8_t h[WEFT_PROXY_V2_MAX + 64];
    uint8_t body[40] = { 0 };
    struct weft_proxy_info pi;
    size_t n;

    (void)state;
    /* Version 1 in the binary header, or a command above PROXY. */
    n = v2(h, 1, 0x11, body, 12);
    h[12] = 0x11;
    assert_int_equal(weft_proxy_parse(h, n, WEFT_PROXY_ANY, &pi), -EPROTO);
    h[12] = 0x22;
    assert_int_equal(weft_proxy_parse(h, n, WEFT_PROXY_ANY, &pi), -EPROTO);
    /* Unknown family or transport nibble. */
    n = v2(h, 1, 0x41, body, 12);
    assert_int_equal(weft_proxy_parse(h, n, WEFT_PROXY_ANY, &pi), -EPROTO);
    n = v2(h, 1, 0x13, body, 12);
    assert_int_equal(weft_proxy_parse(h, n, WEFT_PROXY_ANY, &pi), -EPROTO);
    /* An address block shorter than its family needs. */
    n = v2(h, 1, 0x11, body, 11);
    assert_int_equal(weft_proxy_parse(h, n, WEFT_PROXY_ANY, &pi), -EPROTO);
    n = v2(h, 1, 0x21, body, 35);
    assert_int_equal(weft_proxy_parse(h, n, WEFT_PROXY_ANY, &pi), -EPROTO);
    /* Longer than we accept: refused from the first 16 bytes, without waiting. */
    n = v2(h, 1, 0x11, NULL, 0);
    h[14] = (uint8_t)((WEFT_PROXY_V2_MAX - 15) >> 8);
    h[15] = (uint8_t)(WEFT_PROXY_V2_MAX - 15);
    assert_int_equal(weft_proxy_parse(h, 16, WEFT_PROXY_ANY, &pi), -EPROTO);
    h[14] = h[15] = 0xff;
    assert_int_equal(weft_proxy_parse(h, 16, WEFT_PROXY_ANY, &pi), -EPROTO);
    /* The largest accepted: the parser waits for all of it. */
    h[14] = (uint8_t)((WEFT_PROXY_V2_MAX - 16) >> 8);
    h[15] = (uint8_t)(WEFT_PROXY_V2_MAX - 16);
    memset(h + 16, 0, WEFT_PROXY_V2_MAX - 16);
    assert_int_equal(weft_proxy_parse(h, WEFT_PROXY_V2_MAX - 1, WEFT_PROXY_ANY, &pi), 0);
    assert_int_equal(weft_proxy_parse(h, WEFT_PROXY_V2_MAX, WEFT_PROXY_ANY, &pi),
                     WEFT_PROXY_V2_MAX);
    /* A signature that goes wrong in its last byte. */
    n = v2(h, 1, 0x11, body, 12);
    h[11] = 0x0B;
    assert_int_equal(weft_proxy_parse(h, n, WEFT_PROXY_ANY, &pi), -EPROTO);
    assert_int_equal(weft_proxy_parse(h, 12, WEFT_PROXY_ANY, &pi), -EPROTO);
}

static void
test_versions_mask_is_obeyed(void **state)
{
    uint8_t h[64], body[12] = { 0 };
    struct weft_proxy_info pi;
    size_t n = v2(h, 1, 0x11, body, 12);

    (void)state;
    assert_int_equal(weft_proxy_parse(h, n, WEFT_PROXY_V1, &pi), -EPROTO);
    assert_int_equal(parse("PROXY UNKNOWN\r\n", WEFT_PROXY_V2, &pi), -EPROTO);
    assert_int_equal(parse("PROXY UNKNOWN\r\n", 0, &pi), -EINVAL);
    assert_int_equal(weft_proxy_parse(NULL, 0, WEFT_PROXY_ANY, &pi), -EINVAL);
}

static void
test_random_bytes_never_crash_or_overread(void **state)
{
    struct weft_proxy_info pi;
    unsigned seed = 12345;

    (void)state;
    /* Exact-size heap copies: ASan catches any read past the end. */
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(rand_r(&seed) % 120);
        uint8_t *b = malloc(n ? n : 1);
        int rc;

        assert_non_null(b);
        for (size_t k = 0; k < n; k++)
            b[k] = (uint8_t)rand_r(&seed);
        /* Half the time, a valid start so the parser goes deep. */
        if (i % 2 == 0 && n >= 16)
            memcpy(b, sig, 12);
        else if (i % 4 == 1 && n >= 11)
            memcpy(b, "PROXY TCP4 ", 11);
        rc = weft_proxy_parse(b, n, WEFT_PROXY_ANY, &pi);
        assert_true(rc == 0 || rc == -EPROTO || (rc > 0 && (size_t)rc <= n));
        free(b);
    }
}

/* The PROXY stage of a server: a protocol that records what it saw. */

struct seen {
    int made, lost, reads;
    char peer[64], real[64];
    int peer_rc, real_rc;
    char data[256];             /* the first data_received's bytes */
    size_t first_len;
    bool made_flag;
};

struct rec {
    struct weft_protocol base;
    struct seen *seen;
};

static int
rec_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct seen *sn = ((struct rec *)p)->seen;
    struct sockaddr_storage ss;
    size_t len = sizeof(ss);

    sn->made++;
    sn->made_flag = true;
    weft_transport_peer_string(tr, sn->peer, sizeof(sn->peer));
    sn->peer_rc = weft_transport_get_extra_info(tr, "peername", &ss, &len);
    len = sizeof(ss);
    sn->real_rc = weft_transport_get_extra_info(tr, "proxy_peername", &ss, &len);
    if (sn->real_rc == 0)
        weft__addr_string((struct sockaddr *)&ss, (socklen_t)len, sn->real, sizeof(sn->real));
    return 0;
}

static int
rec_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct seen *sn = ((struct rec *)p)->seen;
    size_t n = evbuffer_get_length(in);

    if (sn->reads++ == 0) {
        sn->first_len = n;
        evbuffer_copyout(in, sn->data, n < sizeof(sn->data) - 1 ? n : sizeof(sn->data) - 1);
    }
    evbuffer_drain(in, n);
    return 0;
}

static void
rec_lost(struct weft_protocol *p, int error)
{
    struct rec *r = (struct rec *)p;

    (void)error;
    r->seen->lost++;
    free(r);
}

static const struct weft_protocol_ops rec_ops = {
    .connection_made = rec_made,
    .data_received = rec_data,
    .connection_lost = rec_lost,
};

static struct weft_protocol *
rec_factory(void *arg)
{
    struct rec *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->base.ops = &rec_ops;
    r->seen = arg;
    return &r->base;
}

static bool trust_answer = true;
static int trust_calls;

static bool
trust(const struct sockaddr *peer, socklen_t len, void *arg)
{
    (void)arg;
    trust_calls++;
    assert_non_null(peer);
    assert_true(len >= sizeof(struct sockaddr_in));
    return trust_answer;
}

struct stage {
    struct weft_loop *loop;
    struct weft_server *srv;
    struct seen seen;
    uint16_t port;
};

static struct stage *
stage_new(unsigned versions, uint64_t timeout_ms)
{
    struct stage *st = calloc(1, sizeof(*st));
    struct weft_proxy_options po = { .versions = versions, .timeout_ms = timeout_ms,
                                     .trusted = trust };
    struct weft_server_options so = WEFT_SERVER_OPTIONS_INIT;

    assert_non_null(st);
    trust_answer = true;
    trust_calls = 0;
    st->loop = harness_loop_new();
    so.proxy = &po;     /* copied: the stack is fine */
    assert_int_equal(weft_create_server(st->loop, rec_factory, &st->seen, "127.0.0.1", 0, &so,
                                        &st->srv), 0);
    st->port = harness_server_port(st->srv, 0, NULL);
    return st;
}

static void
stage_free(struct stage *st)
{
    weft_server_free(st->srv);
    harness_run_for(st->loop, 10);
    weft_loop_free(st->loop);
    free(st);
}

static int
stage_client(struct stage *st)
{
    int fd = harness_client_connect(AF_INET, st->port);

    assert_true(fd >= 0);
    return fd;
}

static void
send_all(int fd, const void *buf, size_t len)
{
    assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void
test_stage_v1_then_data_in_one_segment(void **state)
{
    const char msg[] = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\nhello";
    struct stage *st = stage_new(WEFT_PROXY_ANY, 0);
    int fd = stage_client(st);

    (void)state;
    send_all(fd, msg, strlen(msg));
    harness_run_until_count(st->loop, &st->seen.reads, 1);
    assert_int_equal(st->seen.made, 1);
    assert_string_equal(st->seen.peer, "192.0.2.7:56324");
    assert_int_equal(st->seen.peer_rc, 0);
    assert_int_equal(st->seen.real_rc, 0);
    assert_true(strncmp(st->seen.real, "127.0.0.1:", 10) == 0);
    /* The bytes after the header reach the protocol, and nothing of the header does. */
    assert_int_equal(st->seen.first_len, 5);
    assert_string_equal(st->seen.data, "hello");
    assert_int_equal(trust_calls, 1);
    close(fd);
    harness_run_until_count(st->loop, &st->seen.lost, 1);
    assert_int_equal(weft_server_connection_count(st->srv), 0);
    stage_free(st);
}

/* A v2 header: 16 bytes, then 12 (TCP over IPv4) or 36 (IPv6) of addresses, then TLVs. */
static size_t
v2_header(uint8_t *b, bool v6, size_t tlv)
{
    size_t body = (v6 ? 36 : 12) + tlv;

    memcpy(b, sig, 12);
    b[12] = 0x21;
    b[13] = v6 ? 0x21 : 0x11;
    b[14] = (uint8_t)(body >> 8);
    b[15] = (uint8_t)body;
    memset(b + 16, 0, body);
    if (v6) {
        assert_int_equal(inet_pton(AF_INET6, "2001:db8::5", b + 16), 1);
        assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", b + 32), 1);
        b[48] = 0x1F, b[49] = 0x90;     /* 8080 */
        b[50] = 0x01, b[51] = 0xBB;
    } else {
        assert_int_equal(inet_pton(AF_INET, "203.0.113.9", b + 16), 1);
        assert_int_equal(inet_pton(AF_INET, "203.0.113.1", b + 20), 1);
        b[24] = 0x30, b[25] = 0x39;     /* 12345 */
        b[26] = 0x01, b[27] = 0xBB;
    }
    return 16 + body;       /* TLVs (zeros) are skipped: the parser reads none */
}

static void
test_stage_v2_then_data_in_one_segment(void **state)
{
    uint8_t b[128];
    size_t n = v2_header(b, false, 0);
    struct stage *st = stage_new(WEFT_PROXY_V2, 0);
    int fd = stage_client(st);

    (void)state;
    memcpy(b + n, "data!", 5);
    send_all(fd, b, n + 5);
    harness_run_until_count(st->loop, &st->seen.reads, 1);
    assert_string_equal(st->seen.peer, "203.0.113.9:12345");
    assert_int_equal(st->seen.first_len, 5);
    assert_string_equal(st->seen.data, "data!");
    close(fd);
    harness_run_until_count(st->loop, &st->seen.lost, 1);
    stage_free(st);
}

/* A header bigger than the stage's first buffer (TLVs), sent a few bytes at a time. */
static void
test_stage_split_headers_wait_for_the_rest(void **state)
{
    static uint8_t b[1200];
    size_t n = v2_header(b, true, 1000);
    const char v1[] = "PROXY TCP6 2001:db8::9 2001:db8::1 4000 443\r\nab";
    struct stage *st = stage_new(WEFT_PROXY_ANY, 0);
    int fd = stage_client(st), fd2;
    size_t cuts[] = { 3, 13, 15, 40, 300, n - 1 };
    size_t at = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        send_all(fd, b + at, cuts[i] - at);
        at = cuts[i];
        harness_run_for(st->loop, 20);
        assert_int_equal(st->seen.made, 0);
        /* The connection is counted while it waits for its header. */
        assert_int_equal(weft_server_connection_count(st->srv), 1);
    }
    send_all(fd, b + at, n - at);
    send_all(fd, "xyz", 3);
    harness_run_until_count(st->loop, &st->seen.reads, 1);
    assert_int_equal(st->seen.made, 1);
    assert_string_equal(st->seen.peer, "[2001:db8::5]:8080");
    assert_string_equal(st->seen.data, "xyz");
    close(fd);
    harness_run_until_count(st->loop, &st->seen.lost, 1);

    memset(&st->seen, 0, sizeof(st->seen));
    fd2 = stage_client(st);
    for (size_t i = 0; i < strlen(v1); i++) {     /* one byte at a time */
        send_all(fd2, v1 + i, 1);
        harness_run_for(st->loop, 2);
    }
    for (int i = 0; i < 1000 && st->seen.reads == 0; i++)
        harness_run_for(st->loop, 2);
    assert_string_equal(st->seen.peer, "[2001:db8::9]:4000");
    assert_true(st->seen.data[0] == 'a');
    close(fd2);
    harness_run_until_count(st->loop, &st->seen.lost, 1);
    stage_free(st);
}

static void
test_stage_times_out_without_a_whole_header(void **state)
{
    struct stage *st = stage_new(WEFT_PROXY_ANY, 200);
    int silent = stage_client(st), partial = stage_client(st);
    uint64_t t0 = weft_loop_time(st->loop), dt;

    (void)state;
    send_all(partial, "PROXY TCP4 1.2.3.4", 18);
    assert_int_equal(harness_client_wait_end(st->loop, silent), 0);
    assert_int_equal(harness_client_wait_end(st->loop, partial), 0);
    dt = weft_loop_time(st->loop) - t0;
    assert_true(dt >= 150 && dt < 3000);
    assert_int_equal(st->seen.made, 0);
    assert_int_equal(weft_server_connection_count(st->srv), 0);
    close(silent);
    close(partial);
    stage_free(st);
}

static void
test_stage_closes_garbage_and_early_ends(void **state)
{
    const char *bad[] = {
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\nhello",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        "\r\n\r\n\0\r\nQUIT\n\x99",
    };
    struct stage *st = stage_new(WEFT_PROXY_ANY, 0);

    (void)state;
    harness_log_capture();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = stage_client(st), rc;

        send_all(fd, bad[i], i == 3 ? 13 : strlen(bad[i]));
        rc = harness_client_wait_end(st->loop, fd);
        assert_true(rc == 0 || rc == -ECONNRESET);  /* closed with bytes unread: RST */
        close(fd);
    }
    {
        int fd = stage_client(st);   /* half a header, then the client leaves */

        send_all(fd, "PROXY TCP4 ", 11);
        harness_run_for(st->loop, 20);
        close(fd);
        harness_run_for(st->loop, 50);
    }
    assert_int_equal(st->seen.made, 0);
    assert_int_equal(weft_server_connection_count(st->srv), 0);
    assert_true(harness_log_contains("no valid PROXY header"));
    stage_free(st);
}

static void
test_stage_untrusted_peer_is_closed_unread(void **state)
{
    const char msg[] = "PROXY TCP4 10.9.9.9 10.0.0.1 1000 80\r\nhi";
    struct stage *st = stage_new(WEFT_PROXY_ANY, 0);
    int fd, rc;

    (void)state;
    trust_answer = false;
    fd = stage_client(st);
    send_all(fd, msg, strlen(msg));
    rc = harness_client_wait_end(st->loop, fd);
    assert_true(rc == 0 || rc == -ECONNRESET);
    assert_int_equal(trust_calls, 1);
    assert_int_equal(st->seen.made, 0);
    assert_int_equal(weft_server_connection_count(st->srv), 0);
    close(fd);
    stage_free(st);
}

static void
test_stage_local_keeps_the_real_peer(void **state)
{
    uint8_t b[32];
    struct stage *st = stage_new(WEFT_PROXY_V2, 0);
    int fd = stage_client(st);

    (void)state;
    memcpy(b, sig, 12);
    b[12] = 0x20;       /* LOCAL */
    b[13] = 0x00;
    b[14] = b[15] = 0;
    memcpy(b + 16, "ok", 2);
    send_all(fd, b, 18);
    harness_run_until_count(st->loop, &st->seen.reads, 1);
    assert_true(strncmp(st->seen.peer, "127.0.0.1:", 10) == 0);
    assert_int_equal(st->seen.real_rc, -ENOENT);     /* nothing proxied */
    assert_string_equal(st->seen.data, "ok");
    close(fd);
    harness_run_until_count(st->loop, &st->seen.lost, 1);
    stage_free(st);
}

/* Freeing the server with connections still waiting for a header leaks nothing (ASan). */
static void
test_stage_server_free_drops_waiting_connections(void **state)
{
    struct stage *st = stage_new(WEFT_PROXY_ANY, 0);
    int a = stage_client(st), b = stage_client(st);

    (void)state;
    send_all(b, "PROXY ", 6);
    harness_run_for(st->loop, 30);
    assert_int_equal(weft_server_connection_count(st->srv), 2);
    weft_server_abort_clients(st->srv);
    assert_int_equal(weft_server_connection_count(st->srv), 0);
    close(a);
    a = stage_client(st);
    harness_run_for(st->loop, 30);
    assert_int_equal(weft_server_connection_count(st->srv), 1);
    stage_free(st);
    close(a);
    close(b);
}

struct accepts {
    int calls;
    size_t counts[8];       /* weft_server_connection_count() seen at each call */
    size_t pause_at;        /* pause accepting once the count reaches this; 0: never */
};

static void
on_accepted(struct weft_server *srv, void *arg)
{
    struct accepts *a = arg;

    if (a->calls < 8)
        a->counts[a->calls] = weft_server_connection_count(srv);
    a->calls++;
    if (a->pause_at != 0 && weft_server_connection_count(srv) >= a->pause_at)
        weft_server_pause_accepting(srv);
}

/*
 * The accept callback sees each connection waiting for its PROXY header as
 * soon as it is counted, with no protocol made; pausing from it holds the
 * rest in the backlog until accepting resumes; a timeout is logged at info
 * with the peer. An untrusted sender, closed at once, is not reported.
 */
static void
test_stage_accept_cb_counts_waiting_connections(void **state)
{
    struct stage *st = stage_new(WEFT_PROXY_ANY, 300);
    struct accepts a = { .pause_at = 2 };
    int fd[3];

    (void)state;
    harness_log_capture();
    weft_server_set_accept_cb(st->srv, on_accepted, &a);
    for (int i = 0; i < 3; i++)
        fd[i] = stage_client(st);
    harness_run_until_count(st->loop, &a.calls, 2);
    harness_run_for(st->loop, 50);
    assert_int_equal(a.calls, 2);           /* the third waits in the backlog */
    assert_int_equal(a.counts[0], 1);
    assert_int_equal(a.counts[1], 2);
    assert_int_equal(st->seen.made, 0);
    assert_false(weft_server_is_serving(st->srv));
    /* Both time out; then, accepting again, the third is counted and times out too. */
    assert_int_equal(harness_client_wait_end(st->loop, fd[0]), 0);
    assert_int_equal(harness_client_wait_end(st->loop, fd[1]), 0);
    assert_int_equal(weft_server_connection_count(st->srv), 0);
    a.pause_at = 0;
    weft_server_resume_accepting(st->srv);
    harness_run_until_count(st->loop, &a.calls, 3);
    assert_int_equal(a.counts[2], 1);
    assert_int_equal(harness_client_wait_end(st->loop, fd[2]), 0);
    assert_true(harness_log_contains("127.0.0.1:"));
    assert_true(harness_log_contains("no PROXY header within 300 ms; connection closed"));
    /* Closed at once: never reported. */
    trust_answer = false;
    trust_calls = 0;
    close(fd[0]);
    fd[0] = stage_client(st);
    assert_true(harness_client_wait_end(st->loop, fd[0]) <= 0);
    assert_int_equal(a.calls, 3);
    assert_int_equal(trust_calls, 1);
    for (int i = 0; i < 3; i++)
        close(fd[i]);
    stage_free(st);
}

static void
test_set_proxied_peer_checks_and_forgets(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct seen sn = { 0 };
    struct weft_transport *tr = NULL;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(7) };
    char buf[64], self[64];
    int sv[2];

    (void)state;
    /* An unnamed unix peer is known by its credentials: ours, across a socketpair. */
    snprintf(self, sizeof(self), "unix:pid=%ld,uid=%lu", (long)getpid(), (unsigned long)getuid());
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(weft_connect_accepted_socket(loop, rec_factory, &sn, sv[0], &tr), 0);
    assert_string_equal(weft_transport_peer_string(tr, buf, sizeof(buf)), self);
    sin.sin_addr.s_addr = htonl(0x0A000001);
    assert_int_equal(weft_transport_set_proxied_peer(tr, (struct sockaddr *)&sin, 3), -EINVAL);
    assert_int_equal(weft_transport_set_proxied_peer(tr, (struct sockaddr *)&sin, sizeof(sin)),
                     0);
    assert_string_equal(weft_transport_peer_string(tr, buf, sizeof(buf)), "10.0.0.1:7");
    assert_int_equal(weft_transport_set_proxied_peer(tr, NULL, 0), 0);
    assert_string_equal(weft_transport_peer_string(tr, buf, sizeof(buf)), self);
    assert_int_equal(weft_transport_set_proxied_peer(tr, (struct sockaddr *)&sin, sizeof(sin)),
                     0);
    close(sv[1]);
    harness_run_until_count(loop, &sn.lost, 1);    /* the copy goes with the transport */
    weft_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4_gives_both_addresses_and_its_length),
        cmocka_unit_test(test_v1_tcp6_and_unknown),
        cmocka_unit_test(test_v1_partial_asks_for_more),
        cmocka_unit_test(test_v1_hostile_lines_are_refused),
        cmocka_unit_test(test_v1_without_end_of_line_in_107_bytes_is_refused),
        cmocka_unit_test(test_v2_tcp4_and_tcp6_with_tlvs),
        cmocka_unit_test(test_v2_local_and_unspec_keep_the_real_peer),
        cmocka_unit_test(test_v2_partial_asks_for_more),
        cmocka_unit_test(test_v2_hostile_headers_are_refused),
        cmocka_unit_test(test_versions_mask_is_obeyed),
        cmocka_unit_test(test_random_bytes_never_crash_or_overread),
        cmocka_unit_test(test_stage_v1_then_data_in_one_segment),
        cmocka_unit_test(test_stage_v2_then_data_in_one_segment),
        cmocka_unit_test(test_stage_split_headers_wait_for_the_rest),
        cmocka_unit_test(test_stage_times_out_without_a_whole_header),
        cmocka_unit_test(test_stage_closes_garbage_and_early_ends),
        cmocka_unit_test(test_stage_untrusted_peer_is_closed_unread),
        cmocka_unit_test(test_stage_local_keeps_the_real_peer),
        cmocka_unit_test(test_stage_server_free_drops_waiting_connections),
        cmocka_unit_test(test_stage_accept_cb_counts_waiting_connections),
        cmocka_unit_test(test_set_proxied_peer_checks_and_forgets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
