/* SPDX-License-Identifier: MIT */
/* task_group.c: asyncio.TaskGroup: children that fail together, and a wait that collects them. */
#include <errno.h>
#include <stdlib.h>

#include <weft/error.h>
#include <weft/future.h>
#include <weft/task.h>

/*
 * The group keeps a reference to each child and a done callback on it. The
 * first child that ends in an error (not a cancellation) cancels the
 * others, and the parent too if it is not yet in weft_task_group_wait (so
 * the code between the spawns stops at its next suspension); the wait takes
 * that one cancel back (weft_task_uncancel), so only a cancel from
 * elsewhere makes it return -ECANCELED. Built on the public task and future
 * calls only.
 */
struct weft_task_group {
    struct weft_task *parent;
    struct weft_loop *loop;
    struct weft_task **kids;
    size_t n, cap;
    size_t running;             /* children whose done callback has not run */
    intptr_t *errors;
    size_t nerr, errcap;
    intptr_t first_error;
    bool failed, waiting, exited, parent_cancelled, kids_cancelled;
};

struct weft_task_group *
weft_task_group_new(void)
{
    struct weft_task *parent = weft_task_current();
    struct weft_task_group *g;

    if (parent == NULL) {
        errno = EPERM;
        return NULL;
    }
    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    g->parent = parent;
    g->loop = weft_get_running_loop();
    return g;
}

static void
cancel_kids(struct weft_task_group *g)
{
    g->kids_cancelled = true;
    for (size_t i = 0; i < g->n; i++)
        (void)weft_task_cancel(g->kids[i]);     /* false for those done */
}

static void
record_error(struct weft_task_group *g, intptr_t err)
{
    if (g->nerr == 0)
        g->first_error = err;
    if (g->nerr == g->errcap) {
        size_t cap = g->errcap ? 2 * g->errcap : 4;
        intptr_t *e = realloc(g->errors, cap * sizeof(*e));

        if (e == NULL) {
            g->nerr++;          /* counted, not kept */
            return;
        }
        g->errors = e;
        g->errcap = cap;
    }
    if (g->nerr < g->errcap)
        g->errors[g->nerr] = err;
    g->nerr++;
}

static void
child_done(struct weft_future *f, void *arg)
{
    struct weft_task_group *g = arg;
    intptr_t r = weft_future_result(f);

    g->running--;
    if (r >= 0 || r == -ECANCELED)
        return;
    record_error(g, r);
    if (g->failed)
        return;
    g->failed = true;
    cancel_kids(g);
    if (!g->waiting && !g->exited && weft_task_cancel(g->parent))
        g->parent_cancelled = true;
}

struct weft_task *
weft_task_group_spawn(struct weft_task_group *g, weft_task_fn *fn, void *arg,
                      const struct weft_task_options *options)
{
    struct weft_task *t;

    if (g->exited || g->failed) {
        errno = ECANCELED;
        return NULL;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 8;
        struct weft_task **k = realloc(g->kids, cap * sizeof(*k));

        if (k == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        g->kids = k;
        g->cap = cap;
    }
    t = weft_task_spawn(g->loop, fn, arg, options);
    if (t == NULL)
        return NULL;
    if (weft_future_add_done_callback(weft_task_future(t), child_done, g) < 0) {
        weft_task_cancel(t);    /* not started yet: it ends without running */
        weft_task_unref(t);
        errno = ENOMEM;
        return NULL;
    }
    g->kids[g->n++] = t;
    g->running++;
    return t;
}

/* Cancel requests on the parent that are not the group's own. */
static unsigned
outside_cancels(const struct weft_task_group *g)
{
    unsigned n = weft_task_cancelling(g->parent);

    return n - (g->parent_cancelled && n > 0 ? 1 : 0);
}

intptr_t
weft_task_group_wait(struct weft_task_group *g)
{
    if (weft_task_current() != g->parent || g->exited)
        return -WEFT_ESTATE;
    g->waiting = true;
    while (g->running > 0) {
        struct weft_task *next = NULL;
        intptr_t rc;

        for (size_t i = 0; i < g->n && next == NULL; i++)
            if (!weft_future_done(weft_task_future(g->kids[i])))
                next = g->kids[i];
        /* all done, their callbacks not yet run: let them */
        rc = next != NULL ? weft_await(weft_task_future(next)) : weft_sleep(0);
        if (rc == -ECANCELED && !g->kids_cancelled && outside_cancels(g) > 0)
            cancel_kids(g);     /* cancelled from outside: the children go too */
        else if (rc == -ENOMEM && next == NULL)
            break;              /* cannot even yield; callbacks run later, g stays valid */
    }
    if (g->parent_cancelled) {
        g->parent_cancelled = false;
        (void)weft_task_uncancel(g->parent);
    }
    g->waiting = false;
    g->exited = true;
    if (outside_cancels(g) > 0)
        return -ECANCELED;
    return g->failed ? g->first_error : 0;
}

size_t
weft_task_group_errors(const struct weft_task_group *g, intptr_t *out, size_t cap)
{
    size_t kept = g->nerr < g->errcap ? g->nerr : g->errcap;

    for (size_t i = 0; i < kept && i < cap; i++)
        out[i] = g->errors[i];
    return g->nerr;
}

void
weft_task_group_free(struct weft_task_group *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n; i++) {
        (void)weft_future_remove_done_callback(weft_task_future(g->kids[i]), child_done, g);
        weft_task_unref(g->kids[i]);
    }
    free(g->kids);
    free(g->errors);
    free(g);
}
