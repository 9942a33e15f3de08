/* SPDX-License-Identifier: MIT */
/* lookup.c: weft_getaddrinfo and weft_getnameinfo from a task, over the loop's resolver. */
#include <errno.h>
#include <string.h>

#include <weft/error.h>
#include <weft/future.h>
#include <weft/resolver.h>
#include <weft/task.h>

/*
 * The wait is on the task's stack: when the task stops waiting before the
 * answer (cancelled), weft_lookup_cancel() makes sure the callback never
 * runs, so nothing points at the stack afterwards.
 */
struct lookup_wait {
    struct weft_future *f;
    struct addrinfo *res;
    char *host, *serv;
    size_t hostlen, servlen;
    int error;
    bool done;
};

static void
wake(struct lookup_wait *w, int error)
{
    w->done = true;
    w->error = error;
    if (!weft_future_done(w->f))
        weft_future_set_result(w->f, 0);
}

static void
on_addrinfo(int error, struct addrinfo *res, void *arg)
{
    struct lookup_wait *w = arg;

    w->res = res;
    wake(w, error);
}

static int
copy_out(char *dst, size_t len, const char *src)
{
    size_t n = strlen(src);

    if (dst == NULL || len == 0)
        return 0;
    if (n >= len)
        return -ENOSPC;
    memcpy(dst, src, n + 1);
    return 0;
}

static void
on_nameinfo(int error, const char *host, const char *serv, void *arg)
{
    struct lookup_wait *w = arg;

    if (error == 0) {
        error = copy_out(w->host, w->hostlen, host);
        if (error == 0)
            error = copy_out(w->serv, w->servlen, serv);
    }
    wake(w, error);
}

/* Wait for the lookup l started on w; the callback has run when this returns 0. */
static int
wait_lookup(struct lookup_wait *w, struct weft_lookup *l)
{
    intptr_t rc = weft_await(w->f);

    weft_future_unref(w->f);
    if (!w->done) {
        weft_lookup_cancel(l);          /* no callback after this: w may go */
        return rc < 0 ? (int)rc : -ECANCELED;
    }
    if (rc < 0) {                       /* answered, but the task was cancelled */
        weft_freeaddrinfo(w->res);
        w->res = NULL;
        return (int)rc;
    }
    return w->error;
}

int
weft_getaddrinfo(struct weft_loop *loop, const char *host, const char *service,
                 const struct addrinfo *hints, struct addrinfo **res)
{
    struct lookup_wait w = { 0 };
    struct weft_lookup *l;
    int rc;

    if (res == NULL)
        return -EINVAL;
    *res = NULL;
    if (loop == NULL)
        return -EINVAL;
    if (weft_task_current() == NULL)
        return -WEFT_ENOTASK;
    w.f = weft_future_new(loop);
    if (w.f == NULL)
        return -ENOMEM;
    rc = weft_getaddrinfo_cb(loop, host, service, hints, on_addrinfo, &w, &l);
    if (rc < 0) {
        weft_future_unref(w.f);
        return rc;
    }
    rc = wait_lookup(&w, l);
    if (rc == 0)
        *res = w.res;
    return rc;
}

int
weft_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, size_t hostlen,
                 char *serv, size_t servlen, int flags)
{
    struct weft_task *cur = weft_task_current();
    struct lookup_wait w = { .host = host, .hostlen = hostlen, .serv = serv,
                             .servlen = servlen };
    struct weft_loop *loop;
    struct weft_lookup *l;
    int rc;

    if (cur == NULL)
        return -WEFT_ENOTASK;
    loop = weft_future_loop(weft_task_future(cur));
    w.f = weft_future_new(loop);
    if (w.f == NULL)
        return -ENOMEM;
    rc = weft_getnameinfo_cb(loop, sa, salen, flags, on_nameinfo, &w, &l);
    if (rc < 0) {
        weft_future_unref(w.f);
        return rc;
    }
    return wait_lookup(&w, l);
}
