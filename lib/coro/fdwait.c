/* SPDX-License-Identifier: MIT */
/* fdwait.c: weft_wait_readable/writable: a task parked on one libevent event until fd is ready. */
#include <errno.h>
#include <stdalign.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <event2/event.h>

#include <weft/error.h>
#include <weft/loop.h>

#include "coro/task-int.h"

/*
 * A wait is one non-persistent libevent event with the timeout on it, and a
 * parked task (weft__task_park): the event's callback wakes the task, which
 * goes through call_soon and so runs in the same libevent pass, that is in
 * the iteration that saw the fd ready, as a raw event's callback would.
 * No future, no handle of ours.
 *
 * The event lives in a record from a per-loop cache (one malloc for the
 * record and libevent's struct event, event_assign()ed into it), and live
 * records are listed so weft_loop_free() can delete and free the events of
 * tasks that will never resume (their stacks are unmapped, not unwound).
 */

#define WAITER_CACHE_MAX 16

struct waiter {
    struct waiter *next, *prev;     /* in fdwaits.live, or .free (next only) */
    struct weft_task *t;
    struct event *ev;               /* in the same allocation, after the record */
    bool fired;                     /* the event ran: it is no longer pending */
    short what;                     /* EV_READ or EV_WRITE */
};

struct fdwaits {
    struct waiter *live;
    struct waiter *free;
    size_t nfree;
};

#define EV_OFFSET ((sizeof(struct waiter) + alignof(max_align_t) - 1) & \
                   ~(alignof(max_align_t) - 1))

static void
fdwaits_destroy(void *p)
{
    struct fdwaits *fw = p;
    struct waiter *w;

    while ((w = fw->live) != NULL) {
        fw->live = w->next;
        event_del(w->ev);
        free(w);
    }
    while ((w = fw->free) != NULL) {
        fw->free = w->next;
        free(w);
    }
    free(fw);
}

static struct waiter *
waiter_get(struct weft_loop *loop)
{
    struct fdwaits *fw = weft__loop_get_slot(loop, WEFT__SLOT_FDWAIT);
    struct waiter *w;

    if (fw == NULL) {
        if ((fw = calloc(1, sizeof(*fw))) == NULL)
            return NULL;
        weft__loop_set_slot(loop, WEFT__SLOT_FDWAIT, fw, fdwaits_destroy);
    }
    if ((w = fw->free) != NULL) {
        fw->free = w->next;
        fw->nfree--;
    } else {
        w = malloc(EV_OFFSET + event_get_struct_event_size());
        if (w == NULL)
            return NULL;
        w->ev = (struct event *)(void *)((char *)w + EV_OFFSET);
    }
    w->prev = NULL;
    w->next = fw->live;
    if (fw->live != NULL)
        fw->live->prev = w;
    fw->live = w;
    return w;
}

static void
waiter_put(struct weft_loop *loop, struct waiter *w)
{
    struct fdwaits *fw = weft__loop_get_slot(loop, WEFT__SLOT_FDWAIT);

    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        fw->live = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    if (fw->nfree >= WAITER_CACHE_MAX) {
        free(w);
        return;
    }
    w->next = fw->free;
    fw->free = w;
    fw->nfree++;
}

/*
 * When the fd turns ready in the pass where the timeout expires, libevent's
 * timeout processing deletes the event, dropping its EV_READ, and reports
 * EV_TIMEOUT alone (always so for a timeout of 0). Ready should win, as in
 * asyncio where the selector's answer comes first: on a timeout, ask poll().
 */
static bool
ready_now(int fd, short what)
{
    struct pollfd p = { .fd = fd, .events = (what & EV_READ) ? POLLIN : POLLOUT };

    return poll(&p, 1, 0) == 1 && p.revents != 0;
}

static void
waiter_fire(evutil_socket_t fd, short what, void *arg)
{
    struct waiter *w = arg;

    w->fired = true;
    if (what & EV_TIMEOUT)
        what = ready_now(fd, w->what) ? w->what : EV_TIMEOUT;
    /* A cancel already queued keeps its -ECANCELED (the first wake-up wins). */
    weft__task_wake(w->t, (what & (EV_READ | EV_WRITE)) ? 0 : -ETIMEDOUT);
}

static int
wait_fd(int fd, short what, int64_t timeout_ms)
{
    struct weft_task *t = weft_task_current();
    struct weft_loop *loop;
    struct waiter *w;
    struct timeval tv;
    struct stat st;
    intptr_t rc;

    if (t == NULL)
        return -WEFT_ENOTASK;
    if (t->cancel_pending)
        return (int)weft__task_park();      /* takes the cancel: -ECANCELED at once */
    if (fd < 0)
        return -EBADF;
    loop = weft__current_loop();
    if ((w = waiter_get(loop)) == NULL)
        return -ENOMEM;
    w->t = t;
    w->fired = false;
    w->what = what;
    if (event_assign(w->ev, weft_loop_get_base(loop), fd, what, waiter_fire, w) < 0) {
        waiter_put(loop, w);
        return -EINVAL;
    }
    if (timeout_ms >= 0) {
        tv.tv_sec = (time_t)(timeout_ms / 1000);
        tv.tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000;
        /* libevent adds tv to its cached time, stale inside callbacks */
        event_base_update_cache_time(weft_loop_get_base(loop));
    }
    /* No fstat first (a syscall on every wait): epoll refuses regular files and
     * directories, and libevent warns when it does; hold the warning back and say
     * why here. */
    weft__libevent_quiet(true);
    rc = event_add(w->ev, timeout_ms >= 0 ? &tv : NULL);
    weft__libevent_quiet(false);
    if (rc < 0) {
        int err = errno;

        waiter_put(loop, w);
        if (fstat(fd, &st) < 0)
            return -EBADF;
        if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
            return -EPERM;
        return err > 0 ? -err : -EINVAL;
    }
    rc = weft__task_park();
    if (!w->fired)
        event_del(w->ev);                   /* cancelled before fd was ready */
    waiter_put(loop, w);
    return (int)rc;
}

int
weft_wait_readable(int fd, int64_t timeout_ms)
{
    return wait_fd(fd, EV_READ, timeout_ms);
}

int
weft_wait_writable(int fd, int64_t timeout_ms)
{
    return wait_fd(fd, EV_WRITE, timeout_ms);
}
