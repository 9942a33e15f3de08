/* SPDX-License-Identifier: MIT */
/* sync.c: lock, event, condition, semaphores, barriers and queues, on futures awaited by tasks. */
#include <errno.h>
#include <stdlib.h>

#include <weft/error.h>
#include <weft/sync.h>

#include "coro/task-int.h"

/*
 * A waiter lives on the waiting task's stack while it is queued. Whoever
 * grants it (release, set, notify, get) unlinks it and completes its future,
 * so a waiter still linked when its await returns was not granted.
 */
struct waiter {
    struct waiter *prev, *next;
    struct weft_future *f;
    bool linked;
};

struct wlist {
    struct waiter *head, *tail;
};

static void
wl_unlink(struct wlist *wl, struct waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        wl->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        wl->tail = w->prev;
    w->prev = w->next = NULL;
    w->linked = false;
}

/* Grant the first waiter with rc (its wait returns rc); false if there is none. */
static bool
wl_wake_rc(struct wlist *wl, intptr_t rc)
{
    struct waiter *w = wl->head;

    if (w == NULL)
        return false;
    wl_unlink(wl, w);
    weft__future_complete(w->f, rc);
    return true;
}

static bool
wl_wake(struct wlist *wl)
{
    return wl_wake_rc(wl, 0);
}

/* Wake every waiter with rc. */
static void
wl_wake_all(struct wlist *wl, intptr_t rc)
{
    while (wl_wake_rc(wl, rc))
        ;
}

/*
 * Queue the running task on wl and await; *granted tells whether it was
 * woken (maybe at the same moment as a cancel).
 */
static int
wl_wait(struct wlist *wl, bool *granted)
{
    struct weft_loop *loop = weft__current_loop();
    struct waiter w = { .linked = true };
    intptr_t rc;

    *granted = false;
    if (loop == NULL)
        return -WEFT_ENOTASK;
    w.f = weft_future_new(loop);
    if (w.f == NULL)
        return -ENOMEM;
    w.prev = wl->tail;
    if (wl->tail != NULL)
        wl->tail->next = &w;
    else
        wl->head = &w;
    wl->tail = &w;
    rc = weft_await(w.f);
    if (w.linked)
        wl_unlink(wl, &w);
    *granted = weft_future_done(w.f) && !weft_future_cancelled(w.f);
    weft_future_unref(w.f);
    return (int)rc;
}

/* ---- lock: released straight to the first waiter, so nobody can barge in ---- */

struct weft_lock {
    bool locked;
    struct wlist waiters;
};

struct weft_lock *
weft_lock_new(void)
{
    struct weft_lock *l = calloc(1, sizeof(*l));

    if (l == NULL)
        errno = ENOMEM;
    return l;
}

void
weft_lock_free(struct weft_lock *l)
{
    free(l);
}

int
weft_lock_acquire(struct weft_lock *l)
{
    bool granted;
    int rc;

    if (!l->locked) {
        l->locked = true;
        return 0;
    }
    rc = wl_wait(&l->waiters, &granted);
    if (rc < 0 && granted)
        weft_lock_release(l);           /* ours, but we were cancelled: pass it on */
    return rc < 0 ? rc : 0;
}

int
weft_lock_release(struct weft_lock *l)
{
    if (!l->locked)
        return -WEFT_ESTATE;
    if (!wl_wake(&l->waiters))
        l->locked = false;
    return 0;
}

bool
weft_lock_locked(const struct weft_lock *l)
{
    return l->locked;
}

/* ---- event ---- */

struct weft_event {
    bool set;
    struct wlist waiters;
};

struct weft_event *
weft_event_new(void)
{
    struct weft_event *e = calloc(1, sizeof(*e));

    if (e == NULL)
        errno = ENOMEM;
    return e;
}

void
weft_event_free(struct weft_event *e)
{
    free(e);
}

int
weft_event_wait(struct weft_event *e)
{
    bool granted;
    int rc;

    if (e->set)
        return 0;
    rc = wl_wait(&e->waiters, &granted);
    return rc < 0 ? rc : 0;
}

void
weft_event_set(struct weft_event *e)
{
    e->set = true;
    while (wl_wake(&e->waiters))
        ;
}

void
weft_event_clear(struct weft_event *e)
{
    e->set = false;
}

bool
weft_event_is_set(const struct weft_event *e)
{
    return e->set;
}

/* ---- condition ---- */

struct weft_condition {
    struct weft_lock *lock;
    bool own_lock;
    struct wlist waiters;
};

struct weft_condition *
weft_condition_new(struct weft_lock *lock)
{
    struct weft_condition *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    c->lock = lock;
    if (lock == NULL) {
        c->own_lock = true;
        c->lock = weft_lock_new();
        if (c->lock == NULL) {
            free(c);
            return NULL;
        }
    }
    return c;
}

void
weft_condition_free(struct weft_condition *c)
{
    if (c == NULL)
        return;
    if (c->own_lock)
        weft_lock_free(c->lock);
    free(c);
}

int
weft_condition_acquire(struct weft_condition *c)
{
    return weft_lock_acquire(c->lock);
}

int
weft_condition_release(struct weft_condition *c)
{
    return weft_lock_release(c->lock);
}

int
weft_condition_wait(struct weft_condition *c)
{
    bool granted, cancelled;
    int rc, lrc;

    if (weft__current_loop() == NULL)
        return -WEFT_ENOTASK;
    if (!c->lock->locked)
        return -WEFT_ESTATE;
    weft_lock_release(c->lock);
    rc = wl_wait(&c->waiters, &granted);
    cancelled = rc == -ECANCELED;
    /* The lock is ours again on return, whatever happened (asyncio does so). */
    while ((lrc = weft_lock_acquire(c->lock)) == -ECANCELED)
        cancelled = true;
    if (cancelled && granted)
        wl_wake(&c->waiters);           /* hand the notification on */
    if (lrc < 0)
        return lrc;
    return cancelled ? -ECANCELED : rc;
}

int
weft_condition_wait_for(struct weft_condition *c, weft_predicate_fn *pred, void *arg)
{
    while (!pred(arg)) {
        int rc = weft_condition_wait(c);

        if (rc < 0)
            return rc;
    }
    return 0;
}

int
weft_condition_notify(struct weft_condition *c, unsigned n)
{
    int woken = 0;

    if (!c->lock->locked)
        return -WEFT_ESTATE;
    while (n-- > 0 && wl_wake(&c->waiters))
        woken++;
    return woken;
}

int
weft_condition_notify_all(struct weft_condition *c)
{
    return weft_condition_notify(c, ~0u);
}

/* ---- semaphores: like the lock, a release goes straight to the first waiter ---- */

struct weft_semaphore {
    unsigned value, bound;
    bool bounded;
    struct wlist waiters;
};

static struct weft_semaphore *
sem_new(unsigned value, bool bounded)
{
    struct weft_semaphore *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    s->value = s->bound = value;
    s->bounded = bounded;
    return s;
}

struct weft_semaphore *
weft_semaphore_new(unsigned value)
{
    return sem_new(value, false);
}

struct weft_semaphore *
weft_bounded_semaphore_new(unsigned value)
{
    return sem_new(value, true);
}

void
weft_semaphore_free(struct weft_semaphore *s)
{
    free(s);
}

int
weft_semaphore_acquire(struct weft_semaphore *s)
{
    bool granted;
    int rc;

    if (s->value > 0 && s->waiters.head == NULL) {
        s->value--;
        return 0;
    }
    rc = wl_wait(&s->waiters, &granted);
    if (rc < 0 && granted)
        weft_semaphore_release(s);
    return rc < 0 ? rc : 0;
}

int
weft_semaphore_release(struct weft_semaphore *s)
{
    if (s->bounded && s->value >= s->bound)
        return -WEFT_ESTATE;
    if (!wl_wake(&s->waiters))
        s->value++;
    return 0;
}

bool
weft_semaphore_locked(const struct weft_semaphore *s)
{
    return s->value == 0 || s->waiters.head != NULL;
}

/* ---- barrier: parties tasks meet, then all go on ---- */

struct weft_barrier {
    unsigned parties, count;    /* count: tasks waiting in this round */
    bool broken;
    struct wlist waiters;
};

struct weft_barrier *
weft_barrier_new(unsigned parties)
{
    struct weft_barrier *b;

    if (parties == 0) {
        errno = EINVAL;
        return NULL;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    b->parties = parties;
    return b;
}

void
weft_barrier_free(struct weft_barrier *b)
{
    free(b);
}

int
weft_barrier_wait(struct weft_barrier *b)
{
    unsigned index;
    bool granted;
    int rc;

    if (b->broken)
        return -WEFT_EBROKEN;
    index = b->count++;
    if (b->count == b->parties) {
        /* the last one: everybody goes, and the barrier is ready for the next round */
        b->count = 0;
        wl_wake_all(&b->waiters, 0);
        return (int)index;
    }
    rc = wl_wait(&b->waiters, &granted);
    if (rc < 0 && !granted) {
        b->count--;             /* cancelled while waiting: one party fewer this round */
        return rc;
    }
    return rc < 0 ? rc : (int)index;
}

void
weft_barrier_reset(struct weft_barrier *b)
{
    b->count = 0;
    b->broken = false;
    wl_wake_all(&b->waiters, -WEFT_EBROKEN);
}

void
weft_barrier_abort(struct weft_barrier *b)
{
    b->count = 0;
    b->broken = true;
    wl_wake_all(&b->waiters, -WEFT_EBROKEN);
}

unsigned
weft_barrier_parties(const struct weft_barrier *b)
{
    return b->parties;
}

unsigned
weft_barrier_n_waiting(const struct weft_barrier *b)
{
    return b->count;
}

bool
weft_barrier_broken(const struct weft_barrier *b)
{
    return b->broken;
}

/* ---- queues ---- */

struct weft_queue {
    size_t maxsize;
    enum weft_queue_kind kind;
    weft_queue_cmp *cmp;
    intptr_t *items;
    size_t cap, head, count;
    size_t unfinished;
    bool shut;                  /* weft_queue_shutdown: no more puts */
    struct wlist getters, putters, joiners;
};

static int
cmp_numeric(intptr_t a, intptr_t b)
{
    return a < b ? -1 : a > b;
}

struct weft_queue *
weft_queue_new(size_t maxsize, enum weft_queue_kind kind, weft_queue_cmp *cmp)
{
    struct weft_queue *q;

    if (kind > WEFT_QUEUE_PRIORITY) {
        errno = EINVAL;
        return NULL;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    q->maxsize = maxsize;
    q->kind = kind;
    q->cmp = cmp != NULL ? cmp : cmp_numeric;
    return q;
}

void
weft_queue_free(struct weft_queue *q)
{
    if (q == NULL)
        return;
    free(q->items);
    free(q);
}

size_t
weft_queue_size(const struct weft_queue *q)
{
    return q->count;
}

bool
weft_queue_empty(const struct weft_queue *q)
{
    return q->count == 0;
}

bool
weft_queue_full(const struct weft_queue *q)
{
    return q->maxsize > 0 && q->count >= q->maxsize;
}

static int
grow(struct weft_queue *q)
{
    size_t cap = q->cap ? q->cap * 2 : 8;
    intptr_t *items = malloc(cap * sizeof(*items));

    if (items == NULL)
        return -ENOMEM;
    /* Unroll the ring so the items start at 0 (heaps and stacks use 0.. too). */
    for (size_t i = 0; i < q->count; i++)
        items[i] = q->items[(q->head + i) % q->cap];
    free(q->items);
    q->items = items;
    q->cap = cap;
    q->head = 0;
    return 0;
}

static void
heap_push(struct weft_queue *q, intptr_t item)
{
    size_t i = q->count;

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (q->cmp(item, q->items[parent]) >= 0)
            break;
        q->items[i] = q->items[parent];
        i = parent;
    }
    q->items[i] = item;
}

static intptr_t
heap_pop(struct weft_queue *q)
{
    intptr_t top = q->items[0], last = q->items[q->count - 1];
    size_t i = 0, n = q->count - 1;

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= n)
            break;
        if (c + 1 < n && q->cmp(q->items[c + 1], q->items[c]) < 0)
            c++;
        if (q->cmp(last, q->items[c]) <= 0)
            break;
        q->items[i] = q->items[c];
        i = c;
    }
    if (n > 0)
        q->items[i] = last;
    return top;
}

int
weft_queue_put_nowait(struct weft_queue *q, intptr_t item)
{
    if (q->shut)
        return -WEFT_ESHUTDOWN;
    if (weft_queue_full(q))
        return -WEFT_EFULL;
    if (q->count == q->cap && grow(q) < 0)
        return -ENOMEM;
    if (q->kind == WEFT_QUEUE_PRIORITY)
        heap_push(q, item);
    else
        q->items[(q->head + q->count) % q->cap] = item;
    q->count++;
    q->unfinished++;
    wl_wake(&q->getters);
    return 0;
}

int
weft_queue_get_nowait(struct weft_queue *q, intptr_t *item)
{
    if (q->count == 0)
        return q->shut ? -WEFT_ESHUTDOWN : -WEFT_EEMPTY;
    switch (q->kind) {
    case WEFT_QUEUE_FIFO:
        *item = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        break;
    case WEFT_QUEUE_LIFO:
        *item = q->items[(q->head + q->count - 1) % q->cap];
        break;
    case WEFT_QUEUE_PRIORITY:
        *item = heap_pop(q);
        break;
    }
    q->count--;
    wl_wake(&q->putters);
    return 0;
}

/*
 * put and get wait, then check again (asyncio's loop): a slot or an item
 * can be taken by a _nowait call in between. A waiter woken and cancelled at
 * once wakes the next one, so the wake-up is not lost.
 */
int
weft_queue_put(struct weft_queue *q, intptr_t item)
{
    bool granted;

    while (weft_queue_full(q) && !q->shut) {
        int rc = wl_wait(&q->putters, &granted);

        if (rc < 0) {
            if (granted && rc != -WEFT_ESHUTDOWN && !weft_queue_full(q))
                wl_wake(&q->putters);
            return rc;
        }
    }
    return weft_queue_put_nowait(q, item);
}

int
weft_queue_get(struct weft_queue *q, intptr_t *item)
{
    bool granted;

    while (q->count == 0 && !q->shut) {
        int rc = wl_wait(&q->getters, &granted);

        if (rc < 0) {
            if (granted && rc != -WEFT_ESHUTDOWN && q->count > 0)
                wl_wake(&q->getters);
            return rc;
        }
    }
    return weft_queue_get_nowait(q, item);
}

int
weft_queue_task_done(struct weft_queue *q)
{
    if (q->unfinished == 0)
        return -WEFT_ESTATE;
    if (--q->unfinished == 0)
        while (wl_wake(&q->joiners))
            ;
    return 0;
}

void
weft_queue_shutdown(struct weft_queue *q, bool immediate)
{
    q->shut = true;
    if (immediate) {
        /* the items go, as if each was taken and marked done */
        q->unfinished -= q->count < q->unfinished ? q->count : q->unfinished;
        q->count = 0;
        q->head = 0;
        if (q->unfinished == 0)
            wl_wake_all(&q->joiners, 0);
    }
    wl_wake_all(&q->putters, -WEFT_ESHUTDOWN);
    if (q->count == 0)
        wl_wake_all(&q->getters, -WEFT_ESHUTDOWN);
}

bool
weft_queue_is_shut_down(const struct weft_queue *q)
{
    return q->shut;
}

int
weft_queue_join(struct weft_queue *q)
{
    bool granted;

    while (q->unfinished > 0) {
        int rc = wl_wait(&q->joiners, &granted);

        if (rc < 0)
            return rc;
    }
    return 0;
}
