/* SPDX-License-Identifier: MIT */
/* proxy.c: PROXY protocol v1/v2 header parser (haproxy's doc/proxy-protocol.txt), strict. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <weft/proxy.h>

#include "core/internal.h"

static const uint8_t v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
static const char v1_sig[] = "PROXY ";

/* True if the first n bytes of buf could begin sig (n may be shorter or longer). */
static bool
prefix_of(const void *buf, size_t n, const void *sig, size_t siglen)
{
    return memcmp(buf, sig, n < siglen ? n : siglen) == 0;
}

/* A port: 1-5 digits, no leading zero (but "0"), at most 65535. */
static bool
parse_port(const char *s, size_t n, uint16_t *port)
{
    unsigned long v = 0;

    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

static bool
parse_addr(int family, const char *s, size_t n, uint16_t port, struct sockaddr_storage *ss,
           socklen_t *len)
{
    char text[INET6_ADDRSTRLEN];

    if (n == 0 || n >= sizeof(text))
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)(void *)ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *len = sizeof(*sin);
        return inet_pton(AF_INET, text, &sin->sin_addr) == 1;
    }
    {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *len = sizeof(*sin6);
        return inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1;
    }
}

/* "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n" or "PROXY UNKNOWN[ anything]\r\n". */
static int
parse_v1(const char *buf, size_t len, struct weft_proxy_info *out)
{
    const char *end = memchr(buf, '\n', len < WEFT_PROXY_V1_MAX ? len : WEFT_PROXY_V1_MAX);
    const char *field[5], *p;
    size_t flen[5], nf = 0, total;
    struct weft_proxy_info info = { .version = 1 };
    uint16_t sport, dport;
    int family;

    if (end == NULL)
        return len >= WEFT_PROXY_V1_MAX ? -EPROTO : 0;
    total = (size_t)(end - buf) + 1;
    if (end == buf || end[-1] != '\r')
        return -EPROTO;
    /* Between "PROXY " and "\r": no control bytes, no NUL. */
    for (p = buf + 6; p < end - 1; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return -EPROTO;
    p = buf + 6;
    if ((size_t)(end - 1 - p) >= 7 && memcmp(p, "UNKNOWN", 7) == 0 &&
        (p + 7 == end - 1 || p[7] == ' ')) {
        info.local = true;
        *out = info;
        return (int)total;
    }
    /* Exactly six fields separated by single spaces. */
    {
        const char *q = p, *stop = end - 1;
        const char *proto = q;
        size_t plen;

        q = memchr(q, ' ', (size_t)(stop - q));
        if (q == NULL)
            return -EPROTO;
        plen = (size_t)(q - proto);
        if (plen == 4 && memcmp(proto, "TCP4", 4) == 0)
            family = AF_INET;
        else if (plen == 4 && memcmp(proto, "TCP6", 4) == 0)
            family = AF_INET6;
        else
            return -EPROTO;
        q++;
        while (nf < 4) {
            const char *sp = memchr(q, ' ', (size_t)(stop - q));
            const char *fe = nf < 3 ? sp : stop;

            if (nf < 3 && sp == NULL)
                return -EPROTO;
            if (nf == 3 && memchr(q, ' ', (size_t)(stop - q)) != NULL)
                return -EPROTO;
            field[nf] = q;
            flen[nf] = (size_t)(fe - q);
            if (flen[nf] == 0)
                return -EPROTO;
            nf++;
            q = fe + 1;
        }
    }
    if (!parse_port(field[2], flen[2], &sport) || !parse_port(field[3], flen[3], &dport))
        return -EPROTO;
    if (!parse_addr(family, field[0], flen[0], sport, &info.src, &info.srclen) ||
        !parse_addr(family, field[1], flen[1], dport, &info.dst, &info.dstlen))
        return -EPROTO;
    *out = info;
    return (int)total;
}

static int
parse_v2(const uint8_t *buf, size_t len, struct weft_proxy_info *out)
{
    struct weft_proxy_info info = { .version = 2 };
    size_t body, total;
    uint8_t ver_cmd, fam;

    if (len < 16)
        return (len <= 12 || (buf[12] & 0xF0) == 0x20) ? 0 : -EPROTO;
    ver_cmd = buf[12];
    fam = buf[13];
    if ((ver_cmd & 0xF0) != 0x20 || (ver_cmd & 0x0F) > 1)
        return -EPROTO;
    body = (size_t)buf[14] << 8 | buf[15];
    total = 16 + body;
    if (total > WEFT_PROXY_V2_MAX)
        return -EPROTO;
    /* The transport protocol nibble: 0 UNSPEC, 1 STREAM, 2 DGRAM; the family: 0-3. */
    if ((fam & 0x0F) > 2 || (fam >> 4) > 3)
        return -EPROTO;
    if (len < total)
        return 0;
    if ((ver_cmd & 0x0F) == 0 || (fam != 0x11 && fam != 0x21)) {
        /* LOCAL (a health check from the proxy itself), or UNSPEC/UNIX/DGRAM. */
        if (fam == 0x11 && body < 12)
            return -EPROTO;
        if (fam == 0x21 && body < 36)
            return -EPROTO;
        if ((fam >> 4) == 3 && body < 216)
            return -EPROTO;
        info.local = true;
        *out = info;
        return (int)total;
    }
    if (fam == 0x11) {
        struct sockaddr_in *s = (struct sockaddr_in *)(void *)&info.src;
        struct sockaddr_in *d = (struct sockaddr_in *)(void *)&info.dst;

        if (body < 12)
            return -EPROTO;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, buf + 16, 4);
        memcpy(&d->sin_addr, buf + 20, 4);
        memcpy(&s->sin_port, buf + 24, 2);
        memcpy(&d->sin_port, buf + 26, 2);
        info.srclen = info.dstlen = sizeof(*s);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)(void *)&info.src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)(void *)&info.dst;

        if (body < 36)
            return -EPROTO;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, buf + 16, 16);
        memcpy(&d->sin6_addr, buf + 32, 16);
        memcpy(&s->sin6_port, buf + 48, 2);
        memcpy(&d->sin6_port, buf + 50, 2);
        info.srclen = info.dstlen = sizeof(*s);
    }
    *out = info;
    return (int)total;
}

int
weft_proxy_parse(const void *buf, size_t len, unsigned versions, struct weft_proxy_info *out)
{
    const uint8_t *b = buf;

    if (buf == NULL || out == NULL || (versions & WEFT_PROXY_ANY) == 0)
        return -EINVAL;
    if (len == 0)
        return 0;
    if ((versions & WEFT_PROXY_V2) && prefix_of(b, len, v2_sig, sizeof(v2_sig)))
        return len < sizeof(v2_sig) ? 0 : parse_v2(b, len, out);
    if ((versions & WEFT_PROXY_V1) && prefix_of(b, len, v1_sig, sizeof(v1_sig) - 1))
        return len < sizeof(v1_sig) - 1 ? 0 : parse_v1(buf, len, out);
    return -EPROTO;
}

