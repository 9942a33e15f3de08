/* SPDX-License-Identifier: MIT */
/* evbuf-int.h: telling libevent 2.1's sendfile chains from memory chains in an evbuffer. */
#ifndef WEFT_EVBUF_INT_H
#define WEFT_EVBUF_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <event2/buffer.h>

/*
 * A file segment added to an evbuffer flagged EVBUFFER_FLAG_DRAINS_TO_FD (a
 * socket bufferevent's output, or any buffer given that flag) becomes a
 * sendfile chain: no memory behind it, only a file offset. libevent 2.1 offers
 * no call that says so, and evbuffer_peek() hands such a chain out as
 * chain + header + file offset, a pointer into the heap: sendmsg() would send
 * heap bytes, SSL_write() would encrypt them. So weft reads the chain list
 * itself, with the layout of evbuffer-internal.h in 2.1.x (struct evbuffer
 * starts with its first chain). weft__evb_layout_ok() checks that layout once
 * against evbuffer_peek() on a buffer of its own; when it does not hold, the
 * callers fall back to evbuffer_write_atmost() for everything.
 */
struct weft__evb_chain {
    struct weft__evb_chain *next;
    size_t buffer_len;
    int64_t misalign;           /* ev_misalign_t: ev_off_t where sendfile exists */
    size_t off;
    unsigned flags;
    int refcnt;
    unsigned char *buffer;
};

#define WEFT__EVB_SENDFILE 0x0002u  /* EVBUFFER_SENDFILE */

/* 1: the running libevent has the layout above; -1: it has not; 0: not checked yet. */
extern int weft__evb_layout;

/* Check the layout (once). */
bool weft__evb_layout_check(void);

/* True if the running libevent has the layout above. */
static inline bool
weft__evb_layout_ok(void)
{
    int v = __atomic_load_n(&weft__evb_layout, __ATOMIC_RELAXED);

    return v != 0 ? v > 0 : weft__evb_layout_check();
}

/*
 * Send the front of buf to the socket fd: the memory chains before the first
 * sendfile chain with one sendmsg(MSG_NOSIGNAL), or a sendfile chain at the
 * front with sendfile(2) (SIGPIPE blocked around it), and drain what went
 * out (buf's start must not be frozen). Returns the bytes sent, 0 when the
 * socket is full or buf is empty, -EIO when the file behind a sendfile chain
 * ended before the chain did (truncated while queued), or -errno. *full is
 * set when the socket took less than it was offered: no point in trying again
 * before it is writable.
 */
ssize_t weft__evb_send_front(struct evbuffer *buf, int fd, bool *full);

static inline const struct weft__evb_chain *
weft__evb_first(const struct evbuffer *buf)
{
    return *(struct weft__evb_chain *const *)(const void *)buf;
}

/*
 * True if buf holds a sendfile chain anywhere (or the layout is unknown, so
 * nobody can tell).
 */
static inline bool
weft__evb_has_sendfile(const struct evbuffer *buf)
{
    if (!weft__evb_layout_ok())
        return true;
    for (const struct weft__evb_chain *ch = weft__evb_first(buf); ch != NULL; ch = ch->next)
        if (ch->flags & WEFT__EVB_SENDFILE)
            return true;
    return false;
}

/*
 * Fill iov with up to max memory chains from the front of buf, stopping at the
 * first sendfile chain. Returns how many; *at_file is true when a sendfile
 * chain stopped the walk (with 0 returned: it is the front chain). Layout
 * must be known.
 */
static inline int
weft__evb_gather(const struct evbuffer *buf, struct iovec *iov, int max, bool *at_file)
{
    int n = 0;

    *at_file = false;
    for (const struct weft__evb_chain *ch = weft__evb_first(buf); ch != NULL && n < max;
         ch = ch->next) {
        if (ch->off == 0)
            continue;
        if (ch->flags & WEFT__EVB_SENDFILE) {
            *at_file = true;
            break;
        }
        iov[n].iov_base = ch->buffer + ch->misalign;
        iov[n].iov_len = ch->off;
        n++;
    }
    return n;
}

#endif
