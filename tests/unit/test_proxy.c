/* SPDX-License-Identifier: MIT */
/* test_proxy.c: weft/proxy.h: PROXY v1/v2 headers, valid, partial and hostile. */
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

#include <weft/proxy.h>

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
