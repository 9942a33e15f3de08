/* SPDX-License-Identifier: MIT */
/* task.c: tasks on coroutines: spawn, await, cancel, sleep, gather, wait, wait_for, shield. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/error.h>
#include <weft/log.h>
#include <weft/loop.h>

#include "coro/task-int.h"

#define STACK_CACHE_DEFAULT 64

/* The running task; tasks only ever switch to and from the loop's own stack. */
static __thread struct weft_task *current;

/* ---- per-loop state ---- */

static void
tasks_destroy(void *p)
{
    struct weft__tasks *ts = p;

    /*
     * Tasks still suspended when the loop goes can never resume: their
     * futures end cancelled (without callbacks: the loop is going), their
     * stacks are unmapped. What their frames held is lost.
     */
    while (ts->all != NULL) {
        struct weft_task *t = ts->all;

        ts->all = t->next;
        if (t->awaiting != NULL) {
            weft__future_del_node(t->awaiting, &t->wake);
            weft_future_unref(t->awaiting);
            t->awaiting = NULL;
        }
        weft__stack_put(&ts->pool, t->coro.stack);
        t->coro.stack = NULL;
        t->finished = true;
        t->fut.done = true;
        t->fut.result = -ECANCELED;
        t->fut.loop = NULL;
        t->ts = NULL;
        weft_future_unref(&t->fut);     /* the loop's reference */
    }
    weft__stack_pool_clear(&ts->pool);
    free(ts);
}

struct weft__tasks *
weft__tasks_get(struct weft_loop *loop)
{
    struct weft__tasks *ts = weft__loop_get_slot(loop, WEFT__SLOT_TASKS);

    if (ts != NULL)
        return ts;
    ts = calloc(1, sizeof(*ts));
    if (ts == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    ts->loop = loop;
    ts->pool.max = STACK_CACHE_DEFAULT;
    weft__loop_set_slot(loop, WEFT__SLOT_TASKS, ts, tasks_destroy);
    return ts;
}

void
weft_task_set_stack_cache(struct weft_loop *loop, size_t max_stacks)
{
    struct weft__tasks *ts = weft__tasks_get(loop);

    if (ts == NULL)
        return;
    ts->pool.max = max_stacks;
    while (ts->pool.nfree > max_stacks) {
        struct weft__stack *st = ts->pool.free;

        ts->pool.free = st->next;
        ts->pool.nfree--;
        st->next = NULL;
        ts->pool.max = 0;
        weft__stack_put(&ts->pool, st);     /* unmaps: the pool is "full" */
        ts->pool.max = max_stacks;
    }
}

struct weft_loop *
weft__current_loop(void)
{
    return current != NULL ? current->ts->loop : NULL;
}

struct weft_loop *
weft_get_running_loop(void)
{
    return weft__current_loop();
}

/* ---- running tasks ---- */

static void
task_entry(void *arg)
{
    struct weft_task *t = arg;

    t->ret = t->fn(t->arg);
    t->finished = true;
    weft__coro_exit(&t->coro, &t->ts->main);
}

/* After the task's last switch: give the stack back, complete the future. */
static void
task_finish(struct weft_task *t, intptr_t ret)
{
    struct weft__tasks *ts = t->ts;

    t->finished = true;
    weft__stack_put(&ts->pool, t->coro.stack);
    t->coro.stack = NULL;
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        ts->all = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    ts->count--;
    weft__future_complete(&t->fut, ret);
    weft_future_unref(&t->fut);         /* the loop's reference */
}

/* Switch into t until it awaits or returns. Runs on the loop's own stack. */
static void
task_run(struct weft_task *t)
{
    struct weft_task *prev = current;

    if (!t->started) {
        t->started = true;
        weft__coro_init(&t->coro, task_entry, t);
    }
    current = t;
    weft__coro_transfer(&t->ts->main, &t->coro);
    current = prev;
    if (t->finished)
        task_finish(t, t->ret);
}

/* A scheduled step: the first start, or the wake-up after a cancel. */
static void
task_step(void *arg)
{
    struct weft_task *t = arg;

    t->step = NULL;
    if (!t->started && t->cancel_pending) {
        task_finish(t, -ECANCELED);     /* cancelled before it ran */
        return;
    }
    task_run(t);
}

/* The awaited future is done (a done callback, so from the loop's stack). */
static void
task_wakeup(struct weft_future *f, void *arg)
{
    struct weft_task *t = arg;

    t->awaiting = NULL;
    t->resume_value = f->result;
    f->retrieved = true;
    weft_future_unref(f);
    task_run(t);
}

/* The scheduled resumption of a parked task. */
static void
task_unpark(void *arg)
{
    struct weft_task *t = arg;

    t->unpark_queued = false;
    t->parked = false;
    task_run(t);
}

static void
unpark_schedule(struct weft_task *t, intptr_t value)
{
    t->resume_value = value;
    if (!t->unpark_queued) {
        t->unpark_queued = true;
        weft__call_soon_nofail(t->ts->loop, &t->unpark, task_unpark, t);
    }
}

bool
weft__task_wake(struct weft_task *t, intptr_t value)
{
    if (!t->parked || t->unpark_queued)
        return false;
    unpark_schedule(t, value);
    return true;
}

/*
 * Before a task waits: 0, -WEFT_ENOTASK outside a task, or -ECANCELED if a
 * cancel came while it ran (taken: the wait does not start).
 */
static int
wait_start(struct weft_task *t)
{
    if (t == NULL)
        return -WEFT_ENOTASK;
    if (t->cancel_pending) {
        t->cancel_pending = false;
        return -ECANCELED;
    }
    return 0;
}

intptr_t
weft__task_park(void)
{
    struct weft_task *t = current;
    int rc = wait_start(t);

    if (rc < 0)
        return rc;
    t->parked = true;
    weft__coro_transfer(&t->coro, &t->ts->main);
    return t->resume_value;
}

static void
task_destroy(struct weft_future *f)
{
    struct weft_task *t = container_of(f, struct weft_task, fut);

    free(t->cancel_msg);
    free(t);
}

static bool
task_cancel_hook(struct weft_future *f)
{
    return weft_task_cancel(container_of(f, struct weft_task, fut));
}

struct weft_task *
weft_task_spawn(struct weft_loop *loop, weft_task_fn *fn, void *arg,
                const struct weft_task_options *options)
{
    struct weft__tasks *ts = weft__tasks_get(loop);
    struct weft_task *t;
    int err;

    if (ts == NULL)
        return NULL;
    t = malloc(sizeof(*t));
    if (t == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    memset(t, 0, offsetof(struct weft_task, name));
    weft__future_init(&t->fut, loop, WEFT__FUT_TASK);
    t->fut.refs = 2;                    /* the caller's and the loop's */
    t->fut.cancel = task_cancel_hook;
    t->fut.destroy = task_destroy;
    t->ts = ts;
    t->fn = fn;
    t->arg = arg;
    t->wake = (struct weft__fut_cb){ .cb = task_wakeup, .arg = t };
    if (options != NULL && options->name != NULL)
        snprintf(t->name, sizeof(t->name), "%s", options->name);
    else
        snprintf(t->name, sizeof(t->name), "task-%u", ++ts->next_id);
    t->coro.stack = weft__stack_get(&ts->pool, options ? options->stack_size : 0);
    if (t->coro.stack == NULL) {
        err = errno;
        goto fail;
    }
    t->step = weft_call_soon(loop, task_step, t);
    if (t->step == NULL) {
        err = ENOMEM;
        weft__stack_put(&ts->pool, t->coro.stack);
        goto fail;
    }
    t->next = ts->all;
    if (ts->all != NULL)
        ts->all->prev = t;
    ts->all = t;
    ts->count++;
    return t;

fail:
    free(t);
    errno = err;
    return NULL;
}

struct weft_task *
weft_task_ref(struct weft_task *t)
{
    weft_future_ref(&t->fut);
    return t;
}

void
weft_task_unref(struct weft_task *t)
{
    if (t != NULL)
        weft_future_unref(&t->fut);
}

struct weft_future *
weft_task_future(struct weft_task *t)
{
    return &t->fut;
}

struct weft_task *
weft_future_task(struct weft_future *f)
{
    return f->kind == WEFT__FUT_TASK ? container_of(f, struct weft_task, fut) : NULL;
}

const char *
weft_task_name(const struct weft_task *t)
{
    return t->name;
}

struct weft_task *
weft_task_current(void)
{
    return current;
}

size_t
weft_task_all(struct weft_loop *loop, struct weft_task **out, size_t cap)
{
    struct weft__tasks *ts = weft__loop_get_slot(loop, WEFT__SLOT_TASKS);
    size_t i = 0;

    if (ts == NULL)
        return 0;
    for (struct weft_task *t = ts->all; t != NULL; t = t->next, i++)
        if (i < cap)
            out[i] = t;
    return i;
}

bool
weft_task_cancel(struct weft_task *t)
{
    return weft_task_cancel_msg(t, NULL);
}

bool
weft_task_cancel_msg(struct weft_task *t, const char *msg)
{
    struct weft_future *f = t->awaiting;
    char *copy = NULL;

    if (t->finished || t->fut.done)
        return false;
    if (msg != NULL && (copy = strdup(msg)) == NULL)
        weft_log(WEFT_LOG_ERR, "task %s: out of memory keeping the cancel message \"%s\"",
                 t->name, msg);
    free(t->cancel_msg);
    t->cancel_msg = copy;               /* as Task.cancel(msg): the last one's, or none */
    if (t->cancel_requests < UINT16_MAX)
        t->cancel_requests++;
    if (t->parked) {
        unpark_schedule(t, -ECANCELED);     /* overrides a wake-up not yet run */
        return true;
    }
    if (t->step != NULL && t->started)
        return true;                    /* already waking up cancelled */
    if (f == NULL) {
        /* Not started yet, or running: the next await sees it. */
        t->cancel_pending = true;
        return true;
    }
    if (f->kind == WEFT__FUT_GATHER) {
        weft_future_cancel(f);          /* completes it: we wake with -ECANCELED */
        return true;
    }
    weft__future_del_node(f, &t->wake);
    t->awaiting = NULL;
    weft_future_unref(f);
    t->resume_value = -ECANCELED;
    t->step = weft_call_soon(t->ts->loop, task_step, t);
    if (t->step == NULL) {
        /* Cannot schedule the wake-up: stay on f and cancel at the next await. */
        weft_log(WEFT_LOG_ERR, "task %s: out of memory cancelling", t->name);
        t->awaiting = weft_future_ref(f);
        weft__future_add_node(f, &t->wake);
        t->cancel_pending = true;
    }
    return true;
}

const char *
weft_task_cancel_message(const struct weft_task *t)
{
    return t->cancel_msg;
}

unsigned
weft_task_cancelling(const struct weft_task *t)
{
    return t->cancel_requests;
}

unsigned
weft_task_uncancel(struct weft_task *t)
{
    if (t->cancel_requests > 0 && --t->cancel_requests == 0)
        t->cancel_pending = false;      /* nobody wants the stop any more (3.13) */
    return t->cancel_requests;
}

intptr_t
weft_await(struct weft_future *f)
{
    struct weft_task *t = current;
    int rc = wait_start(t);

    if (rc < 0)
        return rc;
    if (f->done) {
        f->retrieved = true;
        return f->result;
    }
    t->awaiting = weft_future_ref(f);
    weft__future_add_node(f, &t->wake);
    weft__coro_transfer(&t->coro, &t->ts->main);
    return t->resume_value;
}

/* ---- sleep ---- */

struct sleeper {
    struct weft_future *f;
    struct weft_handle *h;
};

static void
sleep_fire(void *arg)
{
    struct sleeper *s = arg;

    s->h = NULL;
    weft__future_complete(s->f, 0);
}

int
weft_sleep(uint64_t ms)
{
    struct weft_task *t = current;
    struct sleeper s;
    intptr_t rc;

    if (t == NULL)
        return -WEFT_ENOTASK;
    if (t->cancel_pending) {
        t->cancel_pending = false;
        return -ECANCELED;
    }
    s.f = weft_future_new(t->ts->loop);
    if (s.f == NULL)
        return -ENOMEM;
    s.h = ms == 0 ? weft_call_soon(t->ts->loop, sleep_fire, &s)
                  : weft_call_later(t->ts->loop, ms, sleep_fire, &s);
    if (s.h == NULL) {
        weft_future_unref(s.f);
        return -ENOMEM;
    }
    rc = weft_await(s.f);
    if (s.h != NULL)
        weft_handle_cancel(s.h);
    weft_future_unref(s.f);
    return rc < 0 ? (int)rc : 0;
}

/* ---- gather ---- */

struct gather_child {
    struct weft__fut_cb node;
    struct weft_future *f;
    struct gather *g;
};

struct gather {
    struct weft_future fut;
    size_t n, pending;
    unsigned flags;
    struct gather_child child[];
};

static void
gather_child_done(struct weft_future *f, void *arg)
{
    struct gather_child *c = arg;
    struct gather *g = c->g;

    g->pending--;
    if (g->fut.done) {
        if (f->result != -ECANCELED)
            f->retrieved = true;    /* the gather already reported its outcome */
        return;
    }
    if (f->result < 0 && !(g->flags & WEFT_GATHER_RETURN_ERRORS)) {
        f->retrieved = true;
        weft__future_complete(&g->fut, f->result);
        return;
    }
    if (g->pending == 0) {
        for (size_t i = 0; i < g->n; i++)
            g->child[i].f->retrieved = true;
        weft__future_complete(&g->fut, 0);
    }
}

static bool
gather_cancel(struct weft_future *f)
{
    struct gather *g = container_of(f, struct gather, fut);

    for (size_t i = 0; i < g->n; i++)
        if (!g->child[i].f->done)
            weft_future_cancel(g->child[i].f);
    if (!g->fut.done)
        weft__future_complete(&g->fut, -ECANCELED);
    return true;
}

static void
gather_destroy(struct weft_future *f)
{
    struct gather *g = container_of(f, struct gather, fut);

    for (size_t i = 0; i < g->n; i++) {
        weft__future_del_node(g->child[i].f, &g->child[i].node);
        weft_future_unref(g->child[i].f);
    }
    free(g);
}

struct weft_future *
weft_gather_new(struct weft_loop *loop, struct weft_future *const *futs, size_t n,
                unsigned flags)
{
    struct gather *g = malloc(sizeof(*g) + n * sizeof(g->child[0]));

    if (g == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    weft__future_init(&g->fut, loop, WEFT__FUT_GATHER);
    g->fut.cancel = gather_cancel;
    g->fut.destroy = gather_destroy;
    g->n = g->pending = n;
    g->flags = flags;
    for (size_t i = 0; i < n; i++) {
        g->child[i] = (struct gather_child){
            .node = { .cb = gather_child_done, .arg = &g->child[i] },
            .f = weft_future_ref(futs[i]), .g = g };
        weft__future_add_node(futs[i], &g->child[i].node);
    }
    if (n == 0)
        weft__future_complete(&g->fut, 0);
    return &g->fut;
}

int
weft_gather_results(struct weft_future *gf, intptr_t *results, size_t n)
{
    struct gather *g = container_of(gf, struct gather, fut);

    if (gf->kind != WEFT__FUT_GATHER || !gf->done || g->n != n)
        return -WEFT_ESTATE;
    for (size_t i = 0; i < n; i++)
        if (!g->child[i].f->done)
            return -WEFT_ESTATE;
    for (size_t i = 0; i < n; i++) {
        g->child[i].f->retrieved = true;
        results[i] = g->child[i].f->result;
    }
    return 0;
}

int
weft_gather(struct weft_future *const *futs, size_t n, intptr_t *results, unsigned flags)
{
    struct weft_future *g;
    intptr_t rc;

    if (current == NULL)
        return -WEFT_ENOTASK;
    g = weft_gather_new(current->ts->loop, futs, n, flags);
    if (g == NULL)
        return -ENOMEM;
    rc = weft_await(g);
    if (rc == -ECANCELED && !g->done)
        weft_future_cancel(g);          /* a cancel seen at the await itself */
    if (rc == 0 && results != NULL)
        rc = weft_gather_results(g, results, n);
    weft_future_unref(g);
    return (int)rc;
}

/* ---- wait ---- */

struct waitctx {
    struct weft_future *w;
    size_t remaining;
    enum weft_wait_when when;
    struct weft_handle *timer;
};

static void
wait_child_done(struct weft_future *f, void *arg)
{
    struct waitctx *c = arg;

    c->remaining--;
    if (c->w->done)
        return;
    if (c->remaining == 0 || c->when == WEFT_FIRST_COMPLETED ||
        (c->when == WEFT_FIRST_EXCEPTION && f->result < 0 && f->result != -ECANCELED))
        weft__future_complete(c->w, 0);
}

static void
wait_timeout(void *arg)
{
    struct waitctx *c = arg;

    c->timer = NULL;
    if (!c->w->done)
        weft__future_complete(c->w, 0);
}

int
weft_wait(struct weft_future *const *futs, size_t n, enum weft_wait_when when,
          int64_t timeout_ms, struct weft_future **done, size_t *ndone,
          struct weft_future **pending, size_t *npending)
{
    struct waitctx c = { .when = when };
    size_t nd = 0, np = 0, added = 0;
    bool ready;
    intptr_t rc = 0;

    if (current == NULL)
        return -WEFT_ENOTASK;
    for (size_t i = 0; i < n; i++)
        if (futs[i]->done)
            nd++;
    ready = nd == n || (when == WEFT_FIRST_COMPLETED && nd > 0);
    for (size_t i = 0; i < n && when == WEFT_FIRST_EXCEPTION && !ready; i++)
        ready = futs[i]->done && futs[i]->result < 0 && futs[i]->result != -ECANCELED;
    if (!ready && timeout_ms != 0) {
        c.w = weft_future_new(current->ts->loop);
        if (c.w == NULL)
            return -ENOMEM;
        c.remaining = n - nd;
        for (; added < n; added++) {
            if (futs[added]->done)
                continue;
            if (weft_future_add_done_callback(futs[added], wait_child_done, &c) < 0) {
                rc = -ENOMEM;
                break;
            }
        }
        if (rc == 0 && timeout_ms > 0) {
            c.timer = weft_call_later(current->ts->loop, (uint64_t)timeout_ms, wait_timeout, &c);
            if (c.timer == NULL)
                rc = -ENOMEM;
        }
        if (rc == 0)
            rc = weft_await(c.w);
        if (c.timer != NULL)
            weft_handle_cancel(c.timer);
        for (size_t i = 0; i < added; i++)
            weft_future_remove_done_callback(futs[i], wait_child_done, &c);
        weft_future_unref(c.w);
        if (rc < 0)
            return (int)rc;
    }
    nd = 0;
    for (size_t i = 0; i < n; i++) {
        if (futs[i]->done) {
            if (done != NULL)
                done[nd] = futs[i];
            nd++;
        } else {
            if (pending != NULL)
                pending[np] = futs[i];
            np++;
        }
    }
    if (ndone != NULL)
        *ndone = nd;
    if (npending != NULL)
        *npending = np;
    return 0;
}

/* ---- wait_for, shield ---- */

intptr_t
weft_wait_for(struct weft_future *f, int64_t timeout_ms)
{
    bool cancelled = false;
    intptr_t rc;

    if (current == NULL)
        return -WEFT_ENOTASK;
    if (f->done)
        return weft_future_result(f);
    rc = weft_wait(&f, 1, WEFT_FIRST_COMPLETED, timeout_ms, NULL, NULL, NULL, NULL);
    if (rc < 0 && rc != -ECANCELED)
        return rc;
    if (f->done)
        return weft_future_result(f);
    /* Timed out, or we were cancelled: cancel f and let it finish. */
    cancelled = rc == -ECANCELED;
    weft_future_cancel(f);
    while (!f->done)
        if (weft_await(f) == -ECANCELED && !f->done)
            cancelled = true;
    rc = weft_future_result(f);
    if (cancelled)
        return -ECANCELED;
    return rc == -ECANCELED ? -ETIMEDOUT : rc;
}

static void
shield_inner_done(struct weft_future *inner, void *arg)
{
    struct weft_future *outer = arg;

    if (!outer->done)
        weft__future_complete(outer, inner->result);
    if (inner->result != -ECANCELED)
        inner->retrieved = true;        /* the outer carries (or dropped) it */
    weft_future_unref(outer);
    weft_future_unref(inner);
}

struct weft_future *
weft_shield(struct weft_future *f)
{
    struct weft_future *outer = weft_future_new(f->loop);

    if (outer == NULL)
        return NULL;
    if (weft_future_add_done_callback(f, shield_inner_done, outer) < 0) {
        weft_future_unref(outer);
        errno = ENOMEM;
        return NULL;
    }
    weft_future_ref(outer);     /* released by shield_inner_done */
    weft_future_ref(f);
    return outer;
}

/* ---- as_completed ---- */

struct weft_as_completed {
    struct weft_loop *loop;
    struct weft_future *w;          /* set while next() waits */
    struct weft_handle *timer;      /* its deadline, while pending */
    uint64_t deadline;              /* weft_loop_time(); 0 = none */
    size_t n, returned, qhead, qlen;
    struct weft_future **futs;
    struct weft_future **queue;     /* done, not yet returned */
};

static void
ac_done(struct weft_future *f, void *arg)
{
    struct weft_as_completed *ac = arg;

    ac->queue[(ac->qhead + ac->qlen++) % ac->n] = f;
    if (ac->w != NULL && !ac->w->done)
        weft__future_complete(ac->w, 0);
}

struct weft_as_completed *
weft_as_completed_new(struct weft_future *const *futs, size_t n, int64_t timeout_ms)
{
    struct weft_as_completed *ac = calloc(1, sizeof(*ac) + 2 * n * sizeof(void *));

    if (ac == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    ac->n = n;
    ac->futs = (struct weft_future **)(ac + 1);
    ac->queue = ac->futs + n;
    ac->loop = n > 0 ? futs[0]->loop : NULL;
    if (timeout_ms >= 0 && ac->loop != NULL)
        ac->deadline = weft_loop_time(ac->loop) + (uint64_t)timeout_ms + 1;
    for (size_t i = 0; i < n; i++) {
        ac->futs[i] = futs[i];
        if (weft_future_add_done_callback(futs[i], ac_done, ac) < 0) {
            while (i-- > 0)
                weft_future_remove_done_callback(futs[i], ac_done, ac);
            free(ac);
            errno = ENOMEM;
            return NULL;
        }
    }
    return ac;
}

static void
ac_timeout(void *arg)
{
    struct weft_as_completed *ac = arg;

    ac->timer = NULL;
    if (!ac->w->done)
        weft__future_complete(ac->w, -ETIMEDOUT);
}

int
weft_as_completed_next(struct weft_as_completed *ac, struct weft_future **f)
{
    intptr_t rc;

    if (current == NULL)
        return -WEFT_ENOTASK;
    if (ac->qlen == 0) {
        uint64_t now;

        if (ac->returned == ac->n)
            return 0;
        now = weft_loop_time(ac->loop);
        if (ac->deadline != 0 && now >= ac->deadline)
            return -ETIMEDOUT;
        ac->w = weft_future_new(ac->loop);
        if (ac->w == NULL)
            return -ENOMEM;
        if (ac->deadline != 0) {
            ac->timer = weft_call_later(ac->loop, ac->deadline - now, ac_timeout, ac);
            if (ac->timer == NULL) {
                weft_future_unref(ac->w);
                ac->w = NULL;
                return -ENOMEM;
            }
        }
        rc = weft_await(ac->w);
        if (ac->timer != NULL)
            weft_handle_cancel(ac->timer);
        ac->timer = NULL;
        weft_future_unref(ac->w);
        ac->w = NULL;
        if (ac->qlen == 0)
            return rc < 0 ? (int)rc : -ETIMEDOUT;
    }
    *f = ac->queue[ac->qhead];
    ac->qhead = (ac->qhead + 1) % ac->n;
    ac->qlen--;
    ac->returned++;
    return 1;
}

void
weft_as_completed_free(struct weft_as_completed *ac)
{
    if (ac == NULL)
        return;
    for (size_t i = 0; i < ac->n; i++)
        weft_future_remove_done_callback(ac->futs[i], ac_done, ac);
    free(ac);
}
