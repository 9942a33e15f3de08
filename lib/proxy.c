/* SPDX-License-Identifier: MIT */
/* proxy.c: PROXY v1/v2: a strict header parser (haproxy's proxy-protocol.txt), a server's stage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include <weft/proxy.h>

#include "proxy-int.h"

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

/*
 * A server's PROXY stage. The header is read before any transport exists,
 * so that TLS can start after it: recv(MSG_PEEK), let the parser say how
 * many of the peeked bytes are header (all of them while it needs more:
 * a header is never shorter than what it has seen), then take exactly those
 * with a plain recv(). Nothing past the header leaves the socket, and bytes
 * that are not taken never sit there to wake the loop again and again.
 */
#define STAGE_BUF 256       /* a v1 header (107), a v2 one with any address block (232) */

struct weft__proxy {
    struct weft__proxy *prev, *next;
    struct weft_loop *loop;
    struct event *ev;
    weft__proxy_done_cb *done;
    void *arg;
    uint64_t deadline;
    uint8_t *buf;
    size_t have, cap;
    unsigned versions;
    int fd;
};

struct weft__proxy *
weft__proxy_next(const struct weft__proxy *p)
{
    return p->next;
}

void
weft__proxy_link(struct weft__proxy **head, struct weft__proxy *p)
{
    p->prev = NULL;
    p->next = *head;
    if (*head != NULL)
        (*head)->prev = p;
    *head = p;
}

void
weft__proxy_unlink(struct weft__proxy **head, struct weft__proxy *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        *head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

static void
stage_free(struct weft__proxy *p)
{
    event_free(p->ev);
    free(p->buf);
    free(p);
}

void
weft__proxy_free(struct weft__proxy *p)
{
    if (p == NULL)
        return;
    close(p->fd);
    stage_free(p);
}

static void
stage_finish(struct weft__proxy *p, int rc, const struct weft_proxy_info *info)
{
    int fd = p->fd;

    event_del(p->ev);
    p->done(p->arg, p, fd, rc, info);
    if (rc < 0)
        close(fd);
    stage_free(p);
}

/* Wait for more bytes until the deadline. Returns 0 or -errno. */
static int
stage_wait(struct weft__proxy *p)
{
    uint64_t now = weft_loop_time(p->loop);
    uint64_t left = p->deadline > now ? p->deadline - now : 0;
    struct timeval tv = { .tv_sec = (time_t)(left / 1000),
                          .tv_usec = (suseconds_t)(left % 1000) * 1000 };

    return event_add(p->ev, &tv) < 0 ? -ENOMEM : 0;
}

/* Read what has arrived. Returns the header's length, 0 for "wait", or -errno. */
static int
stage_read(struct weft__proxy *p, struct weft_proxy_info *info)
{
    for (;;) {
        size_t room, take;
        ssize_t n, got;
        int rc;

        if (p->have == p->cap) {
            /* Only a v2 header outgrows the buffer; its length is known by now. */
            size_t total = 16 + ((size_t)p->buf[14] << 8 | p->buf[15]);
            uint8_t *nb;

            if (p->have < 16 || total <= p->cap || total > WEFT_PROXY_V2_MAX)
                return -EPROTO;
            nb = realloc(p->buf, total);
            if (nb == NULL)
                return -ENOMEM;
            p->buf = nb;
            p->cap = total;
        }
        room = p->cap - p->have;
        do
            n = recv(p->fd, p->buf + p->have, room, MSG_PEEK);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        if (n == 0)
            return -ECONNRESET;     /* the peer closed before the header was complete */
        rc = weft_proxy_parse(p->buf, p->have + (size_t)n, p->versions, info);
        if (rc < 0)
            return rc;
        take = rc > 0 ? (size_t)rc - p->have : (size_t)n;
        do
            got = recv(p->fd, p->buf + p->have, take, 0);
        while (got < 0 && errno == EINTR);
        if (got < 0)
            return -errno;
        if ((size_t)got != take)
            return -EIO;            /* we are the socket's only reader: cannot happen */
        p->have += take;
        if (rc > 0)
            return rc;
        if ((size_t)n < room)
            return 0;               /* the socket is empty for now */
    }
}

static void
on_stage(evutil_socket_t fd, short what, void *arg)
{
    struct weft__proxy *p = arg;
    struct weft_proxy_info info;
    int rc;

    (void)fd;
    if (what & EV_TIMEOUT) {
        stage_finish(p, -ETIMEDOUT, NULL);
        return;
    }
    rc = stage_read(p, &info);
    if (rc == 0)
        rc = stage_wait(p);
    if (rc != 0)
        stage_finish(p, rc < 0 ? rc : 0, rc > 0 ? &info : NULL);
}

int
weft__proxy_start(struct weft_loop *loop, int fd, const struct weft_proxy_options *opts,
                  weft__proxy_done_cb *done, void *arg, struct weft__proxy **out)
{
    struct weft__proxy *p;

    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->buf = malloc(STAGE_BUF);
    p->ev = event_new(weft_loop_get_base(loop), fd, EV_READ, on_stage, p);
    if (p->buf == NULL || p->ev == NULL)
        goto fail;
    p->loop = loop;
    p->fd = fd;
    p->cap = STAGE_BUF;
    p->versions = opts->versions & WEFT_PROXY_ANY;
    p->done = done;
    p->arg = arg;
    p->deadline = weft_loop_time(loop) +
                  (opts->timeout_ms ? opts->timeout_ms : WEFT_PROXY_TIMEOUT_DEFAULT);
    /* The header usually came with the connection: wait only if it has not. */
    if (stage_wait(p) < 0)
        goto fail;
    event_active(p->ev, EV_READ, 1);
    *out = p;
    return 0;
fail:
    if (p->ev != NULL)
        event_free(p->ev);
    free(p->buf);
    free(p);
    return -ENOMEM;
}
