/* SPDX-License-Identifier: MIT */
/* proxy_stage.c: a server's PROXY stage: a connection's header read before any transport. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include <weft/proxy.h>

#include "proxy/proxy-int.h"

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
