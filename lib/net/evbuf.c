/* SPDX-License-Identifier: MIT */
/* evbuf.c: sending an evbuffer's front to a socket, sendfile chains included (see evbuf-int.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>

#include "net/evbuf-int.h"
#include "core/internal.h"

#define FRONT_IOV 64        /* chains per sendmsg() */

int weft__evb_layout;

bool
weft__evb_layout_check(void)
{
    static const char ref[] = "reference";
    struct evbuffer *b;
    struct evbuffer_iovec v[3];
    bool ok = false;

    if ((event_get_version_number() & 0xffff0000u) == 0x02010000u) {
        /* A memory chain with a misalign, then a reference chain (EVBUFFER_REFERENCE 0x0004). */
        if ((b = evbuffer_new()) == NULL || evbuffer_add(b, "abc", 3) < 0 ||
            evbuffer_add_reference(b, ref, sizeof(ref) - 1, NULL, NULL) < 0) {
            if (b != NULL)
                evbuffer_free(b);
            return false;           /* out of memory: no verdict, ask again next time */
        }
        if (evbuffer_drain(b, 1) == 0 && evbuffer_peek(b, -1, NULL, v, 3) == 2) {
            const struct weft__evb_chain *c1 = weft__evb_first(b), *c2 = c1 ? c1->next : NULL;

            ok = c2 != NULL && c2->next == NULL &&
                 c1->buffer + c1->misalign == v[0].iov_base && c1->off == 2 &&
                 v[0].iov_len == 2 && !(c1->flags & WEFT__EVB_SENDFILE) &&
                 c2->buffer + c2->misalign == (const void *)ref && c2->off == v[1].iov_len &&
                 (c2->flags & 0x0004u) && !(c2->flags & WEFT__EVB_SENDFILE);
        }
        evbuffer_free(b);
    }
    if (!ok)
        weft_log(WEFT_LOG_WARNING, "libevent %s: unknown evbuffer layout; "
                 "sockets are written with evbuffer_write_atmost()", event_get_version());
    __atomic_store_n(&weft__evb_layout, ok ? 1 : -1, __ATOMIC_RELAXED);
    return ok;
}

/*
 * sendfile(2) has no MSG_NOSIGNAL: block SIGPIPE around it, and take back
 * the one it raised on EPIPE (it is pending for this thread only) unless the
 * caller had SIGPIPE blocked already.
 */
static ssize_t
write_atmost_nosigpipe(struct evbuffer *buf, int fd)
{
    sigset_t pipe, old;
    ssize_t w;
    int err;

    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &old);
    errno = 0;
    w = evbuffer_write_atmost(buf, fd, -1);
    err = errno;
    if (w < 0 && err == EPIPE && !sigismember(&old, SIGPIPE)) {
        static const struct timespec zero = { 0, 0 };
        sigset_t pending;

        if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
            (void)sigtimedwait(&pipe, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return w;
}

ssize_t
weft__evb_send_front(struct evbuffer *buf, int fd, bool *full)
{
    struct iovec iov[FRONT_IOV];
    bool file = false;
    size_t total = 0;
    ssize_t w;
    int n;

    *full = false;
    if (unlikely(!weft__evb_layout_ok())) {
        file = true;                /* cannot tell: let libevent do all of it */
        n = 0;
    } else {
        n = weft__evb_gather(buf, iov, FRONT_IOV, &file);
    }
    if (n > 0) {
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
        /* a file follows: let the kernel pack these bytes (headers) with its first pages */
        int flags = MSG_NOSIGNAL | MSG_DONTWAIT | (file ? MSG_MORE : 0);

        for (int i = 0; i < n; i++)
            total += iov[i].iov_len;
        do
            w = sendmsg(fd, &mh, flags);
        while (w < 0 && errno == EINTR);
        if (w < 0) {
            *full = true;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        }
        if (evbuffer_drain(buf, (size_t)w) < 0)
            return -EINVAL;
        *full = (size_t)w < total;
        return w;
    }
    if (!file || evbuffer_get_length(buf) == 0)
        return 0;
    /*
     * The front is a sendfile chain: evbuffer_write_atmost() hands it to
     * sendfile(2) and drains what went out. It reports EAGAIN and EINTR as 0
     * too, but leaves errno alone when sendfile() itself returned 0, which
     * means the file is shorter than the chain: the rest will never come.
     */
    if (n == 0 && weft__evb_layout_ok())
        total = weft__evb_first(buf)->off;
    w = write_atmost_nosigpipe(buf, fd);
    *full = true;
    if (w > 0) {
        *full = total == 0 || (size_t)w < total;
        return w;
    }
    if (w == 0)
        return errno == 0 ? -EIO : 0;
    if (errno == 0)
        return -EINVAL;             /* a buffer frozen at its start */
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
}
