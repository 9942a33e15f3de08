/* SPDX-License-Identifier: MIT */
/* echo.c: a minimal echo protocol for servers under test, and plain client sockets for it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "harness.h"

struct echo {
    struct weft_protocol base;
    struct weft_transport *tr;
    struct harness_echo_stats *st;
};

static int
echo_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct echo *e = (struct echo *)p;

    e->tr = tr;
    e->st->made++;
    return 0;
}

static int
echo_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct echo *e = (struct echo *)p;

    e->st->echoed += evbuffer_get_length(in);
    return weft_transport_write_buffer(e->tr, in);
}

static void
echo_lost(struct weft_protocol *p, int error)
{
    struct echo *e = (struct echo *)p;

    e->st->lost++;
    if (error != 0)
        e->st->lost_nonzero++;
    if (e->st->lost == e->st->expect_lost)
        e->st->all_lost_flag = true;
    free(e);
}

static const struct weft_protocol_ops echo_ops = {
    .connection_made = echo_made,
    .data_received = echo_data,
    .connection_lost = echo_lost,
};

struct weft_protocol *
harness_echo_factory(void *arg)
{
    struct echo *e = calloc(1, sizeof(*e));

    if (e == NULL)
        return NULL;
    e->base.ops = &echo_ops;
    e->st = arg;
    return &e->base;
}

uint16_t
harness_server_port(struct weft_server *s, size_t i, int *family)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    assert_int_equal(weft_server_get_sockname(s, i, (struct sockaddr *)&ss, &len), 0);
    if (family != NULL)
        *family = ss.ss_family;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int
harness_client_connect(int family, uint16_t port)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t len;
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    if (family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        a->sin6_port = htons(port);
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a->sin_port = htons(port);
        len = sizeof(*a);
    }
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
    return fd;
}

void
harness_run_until_count(struct weft_loop *loop, const int *counter, int want)
{
    for (int i = 0; i < 5000 && *counter < want; i++)
        harness_run_for(loop, 1);
    assert_int_equal(*counter, want);
}

void
harness_client_echo(struct weft_loop *loop, int fd, const char *msg)
{
    size_t len = strlen(msg), got = 0;
    char buf[256];

    assert_int_equal(send(fd, msg, len, 0), (ssize_t)len);
    for (int i = 0; i < 5000 && got < len; i++) {
        ssize_t n = recv(fd, buf + got, sizeof(buf) - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else
            harness_run_for(loop, 1);
    }
    assert_int_equal(got, len);
    assert_memory_equal(buf, msg, len);
}

int
harness_client_wait_end(struct weft_loop *loop, int fd)
{
    char buf[1024];

    for (int i = 0; i < 5000; i++) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n == 0)
            return 0;
        if (n < 0 && errno != EAGAIN)
            return -errno;
        harness_run_for(loop, 1);
    }
    return -ETIMEDOUT;
}
