/* SPDX-License-Identifier: MIT */
/* fake_dns.c: a DNS server on 127.0.0.1 served by the loop under test, and a resolver set on it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include "fake_dns.h"
#include "harness.h"

static void
put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

/* Append an answer to the question at r[12..], pointing at its name. */
static size_t
answer(unsigned char *r, size_t off, unsigned type, const void *rdata, size_t rdlen)
{
    r[off] = 0xc0;
    r[off + 1] = 12;
    put16(r + off + 2, type);
    put16(r + off + 4, 1);              /* IN */
    memcpy(r + off + 6, "\0\0\0\x3c", 4);   /* TTL 60 */
    put16(r + off + 10, (unsigned)rdlen);
    memcpy(r + off + 12, rdata, rdlen);
    put16(r + 6, (unsigned)((r[6] << 8 | r[7]) + 1));
    return off + 12 + rdlen;
}

static int
fakedns_read(struct weft_loop *loop, int fd, void *arg)
{
    struct fake_dns *f = arg;
    unsigned char q[512], r[1024];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    char name[256];
    size_t nl = 0, off = 12, end;
    unsigned qtype;
    ssize_t n;

    (void)loop;
    n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
    if (n < 12)
        return 0;
    f->queries++;
    while (off < (size_t)n && q[off] != 0) {
        size_t len = q[off];

        if (off + 1 + len >= (size_t)n || nl + len + 1 >= sizeof(name))
            return 0;
        if (nl > 0)
            name[nl++] = '.';
        for (size_t i = 0; i < len; i++)    /* evdns randomizes the case */
            name[nl++] = (char)tolower(q[off + 1 + i]);
        off += 1 + len;
    }
    name[nl] = '\0';
    end = off + 5;
    if (end > (size_t)n)
        return 0;
    qtype = (unsigned)(q[off + 1] << 8 | q[off + 2]);
    if (strcmp(name, "slow.test") == 0 || strcmp(name, "8.0.0.127.in-addr.arpa") == 0 ||
        (strncmp(name, "2.0.0.0.", 8) == 0 && strstr(name, "ip6.arpa") != NULL))
        return 0;
    memcpy(r, q, end);
    r[2] = (unsigned char)(0x80 | (q[2] & 0x01));  /* a response, RD as asked */
    r[3] = 0x80;                                    /* RA, NOERROR */
    put16(r + 4, 1);
    put16(r + 6, 0);
    put16(r + 8, 0);
    put16(r + 10, 0);
    if (strcmp(name, "a.test") == 0) {
        if (qtype == 1)
            end = answer(r, end, 1, "\x7f\0\0\x02", 4);
    } else if (strcmp(name, "he.test") == 0) {
        if (qtype == 1)
            end = answer(r, end, 1, "\x7f\0\0\x01", 4);
        else if (qtype == 28)
            end = answer(r, end, 28, &in6addr_loopback, 16);
    } else if (strcmp(name, "1.0.0.127.in-addr.arpa") == 0 && qtype == 12) {
        end = answer(r, end, 12, "\x09localhost", 11);
    } else {
        r[3] |= 3;                                  /* NXDOMAIN */
    }
    (void)sendto(fd, r, end, 0, (struct sockaddr *)&from, fl);
    return 0;
}

static void
write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_true(fputs(text, fp) >= 0);
    assert_int_equal(fclose(fp), 0);
}

/* Loop, fake server, files; timeout_ms for the resolver's options. */
struct fake_dns *
fake_dns_new(uint64_t timeout_ms)
{
    struct fake_dns *f = calloc(1, sizeof(*f));
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    struct weft_resolver_options ro = { 0 };

    assert_non_null(f);
    f->loop = harness_loop_new();
    f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(f->fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sin, &len), 0);
    snprintf(f->nameserver, sizeof(f->nameserver), "127.0.0.1:%u", ntohs(sin.sin_port));
    assert_int_equal(weft_add_reader(f->loop, f->fd, fakedns_read, f), 0);
    strcpy(f->dir, "/tmp/weft-dns-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->hosts, sizeof(f->hosts), "%s/hosts", f->dir);
    snprintf(f->resolv, sizeof(f->resolv), "%s/resolv.conf", f->dir);
    write_file(f->hosts, "127.0.0.1 localhost\n::1 localhost\n");
    write_file(f->resolv, "nameserver 192.0.2.1\nsearch example.com\noptions attempts:1\n");
    ro.resolv_conf = f->resolv;     /* its nameserver and search list are ignored */
    ro.hosts = f->hosts;
    ro.nameserver = f->nameserver;
    ro.timeout_ms = timeout_ms;
    assert_int_equal(weft_loop_set_resolver(f->loop, &ro), 0);
    return f;
}

void
fake_dns_free_now(struct fake_dns *f)
{
    weft_remove_reader(f->loop, f->fd);
    close(f->fd);
    weft_loop_free(f->loop);
    unlink(f->hosts);
    unlink(f->resolv);
    rmdir(f->dir);
    free(f);
}

void
fake_dns_free(struct fake_dns *f)
{
    harness_run_for(f->loop, 10);       /* the callbacks left run */
    fake_dns_free_now(f);
}
