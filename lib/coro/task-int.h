/* SPDX-License-Identifier: MIT */
/* task-int.h: the layout of futures and tasks, shared by future.c, task.c, sync.c, executor.c. */
#ifndef WEFT_TASK_INT_H
#define WEFT_TASK_INT_H

#include <weft/future.h>
#include <weft/task.h>

#include "coro/coro.h"
#include "core/internal.h"

/* One done callback; tasks and gathers embed theirs, the public API mallocs. */
struct weft__fut_cb {
    struct weft__fut_cb *next;
    weft_future_cb *cb;
    void *arg;
    bool heap;
};

enum weft__fut_kind { WEFT__FUT_PLAIN, WEFT__FUT_TASK, WEFT__FUT_GATHER };

struct weft_future {
    struct weft_loop *loop;             /* NULL once the loop is gone */
    unsigned refs;
    uint8_t kind;
    bool done;
    bool retrieved;                     /* result or error was read */
    bool scheduled;                     /* a callback batch is queued */
    intptr_t result;
    struct weft__fut_cb *cbs, **cbs_tail;
    bool (*cancel)(struct weft_future *f);  /* kind-specific cancel, or NULL */
    void (*destroy)(struct weft_future *f); /* frees the object embedding f, or NULL */
    struct weft__soon soon;             /* schedules run_callbacks without allocating */
};

/* Per-loop state of tasks (WEFT__SLOT_TASKS). */
struct weft__tasks {
    struct weft_loop *loop;
    struct weft__coro main;             /* the loop thread's own stack */
    struct weft__stack_pool pool;
    struct weft_task *all;              /* unfinished tasks, newest first */
    size_t count;
    unsigned next_id;
};

struct weft_task {
    struct weft_future fut;             /* first: the task is its future */
    struct weft__tasks *ts;
    struct weft__coro coro;
    weft_task_fn *fn;
    void *arg;
    struct weft_task *prev, *next;      /* in ts->all */
    struct weft_future *awaiting;       /* holds a reference while set */
    struct weft__fut_cb wake;           /* our node in awaiting's callbacks */
    struct weft_handle *step;           /* a scheduled start or cancelled wake-up */
    intptr_t resume_value;
    intptr_t ret;
    bool started, finished, cancel_pending;
    bool parked;                        /* suspended in weft__task_park() */
    uint16_t cancel_requests;           /* weft_task_cancel()s not taken back (uncancel) */
    char *cancel_msg;                   /* the last cancel's message (owned), or NULL */
    bool unpark_queued;                 /* its resumption is scheduled (unpark) */
    struct weft__soon unpark;           /* schedules that resumption, never failing */
    char name[32];
};

/* Initialise an embedded future with one reference. */
void weft__future_init(struct weft_future *f, struct weft_loop *loop, uint8_t kind);

/* Complete f with a result or negative error without the checks of the API. */
void weft__future_complete(struct weft_future *f, intptr_t value);

/* Append or unlink an embedded callback node. */
void weft__future_add_node(struct weft_future *f, struct weft__fut_cb *node);
bool weft__future_del_node(struct weft_future *f, struct weft__fut_cb *node);

/*
 * A wait without a future, for a waker that keeps a pointer to its waiter
 * (the stream reader): weft__task_park() suspends the running task until
 * weft__task_wake(t, value) or a cancel, and returns value, or -ECANCELED
 * (also at once when a cancel is pending), or -WEFT_ENOTASK outside tasks.
 * The resumption always goes through call_soon, never inline, and cannot be
 * lost for lack of memory. The first wake-up wins: waking a task already
 * woken, or not parked, does nothing and returns false. A cancel that comes
 * after a wake-up but before the task ran turns it into -ECANCELED, as the
 * cancel of a task whose awaited future just completed does.
 */
intptr_t weft__task_park(void);
bool weft__task_wake(struct weft_task *t, intptr_t value);

/* The tasks state of a loop, created on first use; NULL with errno ENOMEM. */
struct weft__tasks *weft__tasks_get(struct weft_loop *loop);

/*
 * Complete *fp with value (a result >= 0 or an error < 0) unless it is done,
 * mark its outcome as read (dropping it reports nothing), drop the
 * reference and set *fp to NULL. NULL *fp: nothing.
 */
void weft__future_finish(struct weft_future **fp, intptr_t value);

/* The loop of the running task, or NULL outside tasks. */
struct weft_loop *weft__current_loop(void);

#endif
