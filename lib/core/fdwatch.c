/* SPDX-License-Identifier: MIT */
/* fdwatch.c: asyncio's add_reader/add_writer: callbacks while a file descriptor is ready. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "core/internal.h"

/*
 * One watcher per fd and direction, each with its own persistent libevent
 * event. When the event fires the callback is not called from libevent's
 * dispatch but queued with weft_call_soon(), as asyncio's selector loop
 * appends the reader's handle to its ready list: it then runs in the same
 * iteration (the ready queue's event is activated in the same pass) and in
 * order with the loop's other callbacks. While a call is queued, further
 * firings add nothing, and removing or replacing the watcher cancels it.
 *
 * The table lives in a loop slot, so loop.c knows nothing of it and this
 * file only uses the loop's public calls (no file circle).
 */

enum { DIR_READ, DIR_WRITE };

struct watcher {
    struct fdwatch *fw;
    struct event *ev;
    weft_fd_cb *cb;
    void *arg;
    struct weft_handle *queued;     /* the call in the ready queue, or NULL */
    int fd;
    int dir;
};

struct fdwatch {
    struct weft_loop *loop;
    struct watcher *(*tab)[2];      /* indexed by fd */
    size_t cap;
};

static void
watcher_free(struct watcher *w)
{
    if (w->queued != NULL)
        weft_handle_cancel(w->queued);
    event_free(w->ev);              /* deletes it first */
    free(w);
}

static void
fdwatch_destroy(void *p)
{
    struct fdwatch *fw = p;

    for (size_t fd = 0; fd < fw->cap; fd++)
        for (int d = 0; d < 2; d++)
            if (fw->tab[fd][d] != NULL)
                watcher_free(fw->tab[fd][d]);
    free(fw->tab);
    free(fw);
}

static struct fdwatch *
fdwatch_get(struct weft_loop *loop)
{
    struct fdwatch *fw = weft__loop_get_slot(loop, WEFT__SLOT_FDWATCH);

    if (fw != NULL)
        return fw;
    fw = calloc(1, sizeof(*fw));
    if (fw == NULL)
        return NULL;
    fw->loop = loop;
    weft__loop_set_slot(loop, WEFT__SLOT_FDWATCH, fw, fdwatch_destroy);
    return fw;
}

/* Make room for fd in the table: 0 or -ENOMEM. */
static int
fdwatch_reserve(struct fdwatch *fw, int fd)
{
    struct watcher *(*tab)[2];
    size_t cap;

    if ((size_t)fd < fw->cap)
        return 0;
    cap = fw->cap ? fw->cap : 64;
    while (cap <= (size_t)fd)
        cap *= 2;
    tab = realloc(fw->tab, cap * sizeof(*tab));
    if (tab == NULL)
        return -ENOMEM;
    for (size_t i = fw->cap; i < cap; i++)
        tab[i][DIR_READ] = tab[i][DIR_WRITE] = NULL;
    fw->tab = tab;
    fw->cap = cap;
    return 0;
}

/* The queued call: runs the user's callback; it may remove or replace w. */
static void
watcher_run(void *arg)
{
    struct watcher *w = arg;
    struct weft_loop *loop = w->fw->loop;
    int fd = w->fd, dir = w->dir, rc;

    w->queued = NULL;
    rc = w->cb(loop, fd, w->arg);       /* w may be freed from here on */
    if (rc < 0) {
        char msg[64];
        struct weft_error_context ctx = { .message = msg, .error = rc };

        snprintf(msg, sizeof(msg), "%s callback of fd %d failed",
                 dir == DIR_READ ? "reader" : "writer", fd);
        weft_loop_call_error_handler(loop, &ctx);
    }
}

static void
watcher_fire(evutil_socket_t fd, short what, void *arg)
{
    struct watcher *w = arg;

    (void)fd;
    (void)what;
    if (w->queued != NULL)
        return;                         /* still waiting for its turn */
    w->queued = weft_call_soon(w->fw->loop, watcher_run, w);
    /* No memory for a handle: the event stays and fires again next iteration. */
}

/* -EBADF for a closed fd, -EPERM for one epoll refuses (it would log a libevent warning). */
static int
check_fd(int fd)
{
    struct stat st;

    if (fd < 0 || fstat(fd, &st) < 0)
        return -EBADF;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
        return -EPERM;
    return 0;
}

static int
add_watcher(struct weft_loop *loop, int fd, int dir, weft_fd_cb *cb, void *arg)
{
    struct fdwatch *fw;
    struct watcher *w;
    int rc;

    if (loop == NULL || cb == NULL)
        return -EINVAL;
    if ((rc = check_fd(fd)) < 0)
        return rc;
    if ((fw = fdwatch_get(loop)) == NULL || fdwatch_reserve(fw, fd) < 0)
        return -ENOMEM;
    w = fw->tab[fd][dir];
    if (w != NULL) {
        /* asyncio: the new callback replaces the old, whose pending call is dropped */
        if (w->queued != NULL) {
            weft_handle_cancel(w->queued);
            w->queued = NULL;
        }
        w->cb = cb;
        w->arg = arg;
        return 0;
    }
    w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    *w = (struct watcher){ .fw = fw, .cb = cb, .arg = arg, .fd = fd, .dir = dir };
    w->ev = event_new(weft_loop_get_base(loop), fd,
                      (dir == DIR_READ ? EV_READ : EV_WRITE) | EV_PERSIST, watcher_fire, w);
    if (w->ev == NULL) {
        free(w);
        return -ENOMEM;
    }
    if (event_add(w->ev, NULL) < 0) {
        rc = errno > 0 ? -errno : -EINVAL;
        event_free(w->ev);
        free(w);
        return rc;
    }
    fw->tab[fd][dir] = w;
    return 0;
}

static int
remove_watcher(struct weft_loop *loop, int fd, int dir)
{
    struct fdwatch *fw = loop ? weft__loop_get_slot(loop, WEFT__SLOT_FDWATCH) : NULL;
    struct watcher *w;

    if (fw == NULL || fd < 0 || (size_t)fd >= fw->cap || (w = fw->tab[fd][dir]) == NULL)
        return 0;
    fw->tab[fd][dir] = NULL;
    watcher_free(w);
    return 1;
}

int
weft_add_reader(struct weft_loop *loop, int fd, weft_fd_cb *cb, void *arg)
{
    return add_watcher(loop, fd, DIR_READ, cb, arg);
}

int
weft_add_writer(struct weft_loop *loop, int fd, weft_fd_cb *cb, void *arg)
{
    return add_watcher(loop, fd, DIR_WRITE, cb, arg);
}

int
weft_remove_reader(struct weft_loop *loop, int fd)
{
    return remove_watcher(loop, fd, DIR_READ);
}

int
weft_remove_writer(struct weft_loop *loop, int fd)
{
    return remove_watcher(loop, fd, DIR_WRITE);
}
