/* SPDX-License-Identifier: MIT */
/* weft/sync.h: asyncio's synchronisation primitives for tasks: lock, event, condition, semaphores, queues. */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Like asyncio's, these belong to no loop until used, and are for tasks of
 * one loop's thread. The calls that wait suspend the running task and
 * return 0, or -ECANCELED if it is cancelled (the waiter then leaves no
 * trace: what it was granted at the same moment passes to the next waiter),
 * -WEFT_ENOTASK outside a task, -ENOMEM. Waiters are served first come, first
 * served. Free an object only when no task waits on it.
 */

struct weft_lock;
struct weft_event;
struct weft_condition;
struct weft_semaphore;
struct weft_queue;
struct weft_barrier;

/** A new unlocked lock; NULL with errno ENOMEM. Since 0.1. */
WEFT_EXPORT struct weft_lock *weft_lock_new(void);
/** Free a lock. NULL is a no-op. Since 0.1. */
WEFT_EXPORT void weft_lock_free(struct weft_lock *l);
/** Wait until the lock is ours. Returns 0 or a negative code (see above). Since 0.1. */
WEFT_EXPORT int weft_lock_acquire(struct weft_lock *l);
/**
 * Release: the first waiter gets the lock. Returns 0, or -WEFT_ESTATE if it
 * was not locked. Any code on the loop's thread. Since 0.1.
 */
WEFT_EXPORT int weft_lock_release(struct weft_lock *l);
/** True while locked. Since 0.1. */
WEFT_EXPORT bool weft_lock_locked(const struct weft_lock *l);

/** A new event, not set; NULL with errno ENOMEM. Since 0.1. */
WEFT_EXPORT struct weft_event *weft_event_new(void);
/** Free an event. NULL is a no-op. Since 0.1. */
WEFT_EXPORT void weft_event_free(struct weft_event *e);
/** Wait until the event is set (at once if it is). Returns 0 or negative. Since 0.1. */
WEFT_EXPORT int weft_event_wait(struct weft_event *e);
/** Set the event, waking every waiter. Since 0.1. */
WEFT_EXPORT void weft_event_set(struct weft_event *e);
/** Clear the event. Since 0.1. */
WEFT_EXPORT void weft_event_clear(struct weft_event *e);
/** True if set. Since 0.1. */
WEFT_EXPORT bool weft_event_is_set(const struct weft_event *e);

/**
 * A new condition on lock (borrowed; it must outlive the condition), or on a
 * lock of its own if lock is NULL. NULL with errno ENOMEM. Since 0.1.
 */
WEFT_EXPORT struct weft_condition *weft_condition_new(struct weft_lock *lock);
/** Free a condition (and its own lock). NULL is a no-op. Since 0.1. */
WEFT_EXPORT void weft_condition_free(struct weft_condition *c);
/** Acquire the condition's lock (weft_lock_acquire()). Since 0.1. */
WEFT_EXPORT int weft_condition_acquire(struct weft_condition *c);
/** Release the condition's lock (weft_lock_release()). Since 0.1. */
WEFT_EXPORT int weft_condition_release(struct weft_condition *c);
/**
 * With the lock held: release it, wait to be notified, take it back (also
 * when cancelled, as asyncio does). Returns 0, -ECANCELED, or -WEFT_ESTATE if
 * the lock was not held. Since 0.1.
 */
WEFT_EXPORT int weft_condition_wait(struct weft_condition *c);

/* A predicate for weft_condition_wait_for(): true when the wait is over. */
typedef bool weft_predicate_fn(void *arg);

/** Wait (as above) until pred(arg) is true; 0 or negative. Since 0.1. */
WEFT_EXPORT int weft_condition_wait_for(struct weft_condition *c, weft_predicate_fn *pred,
                                        void *arg);
/**
 * With the lock held, wake up to n waiters. Returns how many were woken, or
 * -WEFT_ESTATE without the lock. Since 0.1.
 */
WEFT_EXPORT int weft_condition_notify(struct weft_condition *c, unsigned n);
/** With the lock held, wake every waiter; as weft_condition_notify(). Since 0.1. */
WEFT_EXPORT int weft_condition_notify_all(struct weft_condition *c);

/** A semaphore with value permits; NULL with errno ENOMEM. Since 0.1. */
WEFT_EXPORT struct weft_semaphore *weft_semaphore_new(unsigned value);
/**
 * A bounded semaphore: releasing more than it was created with is an error
 * (-WEFT_ESTATE), as asyncio's ValueError. NULL with errno ENOMEM. Since 0.1.
 */
WEFT_EXPORT struct weft_semaphore *weft_bounded_semaphore_new(unsigned value);
/** Free a semaphore. NULL is a no-op. Since 0.1. */
WEFT_EXPORT void weft_semaphore_free(struct weft_semaphore *s);
/** Take a permit, waiting while there is none. 0 or negative. Since 0.1. */
WEFT_EXPORT int weft_semaphore_acquire(struct weft_semaphore *s);
/**
 * Give a permit back (to the first waiter, if any). Returns 0, or
 * -WEFT_ESTATE past a bounded semaphore's value. Since 0.1.
 */
WEFT_EXPORT int weft_semaphore_release(struct weft_semaphore *s);
/** True if acquire would wait. Since 0.1. */
WEFT_EXPORT bool weft_semaphore_locked(const struct weft_semaphore *s);

/* The order a queue hands items out in. */
enum weft_queue_kind {
    WEFT_QUEUE_FIFO,
    WEFT_QUEUE_LIFO,
    WEFT_QUEUE_PRIORITY,    /* smallest first, by the comparator */
};

/* Orders a priority queue: negative if a comes out before b. */
typedef int weft_queue_cmp(intptr_t a, intptr_t b);

/**
 * A queue of intptr_t items (integers, or pointers cast to intptr_t; the
 * queue never frees them) holding at most maxsize (0: no limit). cmp orders
 * a priority queue (NULL: numerically, smallest first) and is ignored
 * otherwise. NULL with errno ENOMEM or EINVAL. Since 0.1.
 */
WEFT_EXPORT struct weft_queue *weft_queue_new(size_t maxsize, enum weft_queue_kind kind,
                                              weft_queue_cmp *cmp);
/** Free a queue (not its items). NULL is a no-op. Since 0.1. */
WEFT_EXPORT void weft_queue_free(struct weft_queue *q);
/** Add item, waiting while the queue is full. 0 or negative. Since 0.1. */
WEFT_EXPORT int weft_queue_put(struct weft_queue *q, intptr_t item);
/** Take the next item into *item, waiting while empty. 0 or negative. Since 0.1. */
WEFT_EXPORT int weft_queue_get(struct weft_queue *q, intptr_t *item);
/** Add item now: 0, -WEFT_EFULL, or -ENOMEM. Any code on the loop thread. Since 0.1. */
WEFT_EXPORT int weft_queue_put_nowait(struct weft_queue *q, intptr_t item);
/** Take an item now: 0 or -WEFT_EEMPTY. Since 0.1. */
WEFT_EXPORT int weft_queue_get_nowait(struct weft_queue *q, intptr_t *item);
/**
 * Say an item taken earlier is processed. Returns 0, or -WEFT_ESTATE if
 * called more times than items were put. Since 0.1.
 */
WEFT_EXPORT int weft_queue_task_done(struct weft_queue *q);
/** Wait until every item put has been marked done. 0 or negative. Since 0.1. */
WEFT_EXPORT int weft_queue_join(struct weft_queue *q);
/** Items in the queue. Since 0.1. */
WEFT_EXPORT size_t weft_queue_size(const struct weft_queue *q);
/** True if empty. Since 0.1. */
WEFT_EXPORT bool weft_queue_empty(const struct weft_queue *q);
/** True if maxsize items are in it (never for an unbounded queue). Since 0.1. */
WEFT_EXPORT bool weft_queue_full(const struct weft_queue *q);
/**
 * Shut the queue down (asyncio 3.13's Queue.shutdown): from now on put and
 * put_nowait return -WEFT_ESHUTDOWN, and so do the puts waiting now. get
 * and get_nowait still hand out what is queued, then return -WEFT_ESHUTDOWN
 * (instead of waiting or -WEFT_EEMPTY); getters waiting on an empty queue
 * wake with it. immediate: the queued items are dropped at once (the queue
 * never frees items: they are the caller's), counted as done for join, and
 * every waiting getter wakes with -WEFT_ESHUTDOWN. Any code on the loop
 * thread. Since 0.1.
 */
WEFT_EXPORT void weft_queue_shutdown(struct weft_queue *q, bool immediate);
/** True once weft_queue_shutdown was called. Since 0.1. */
WEFT_EXPORT bool weft_queue_is_shut_down(const struct weft_queue *q);

/**
 * A barrier for parties tasks (asyncio's Barrier): each weft_barrier_wait
 * waits until parties tasks wait, then all go on and the barrier starts its
 * next round. NULL with errno EINVAL (parties 0) or ENOMEM. Since 0.1.
 */
WEFT_EXPORT struct weft_barrier *weft_barrier_new(unsigned parties);
/** Free a barrier no task waits on. NULL is a no-op. Since 0.1. */
WEFT_EXPORT void weft_barrier_free(struct weft_barrier *b);
/**
 * In a task: wait for the round to fill. Returns the task's place in it
 * (0 for the first to arrive ... parties - 1 for the one that let all go,
 * which does not wait); -WEFT_EBROKEN if the barrier is broken or is reset
 * or aborted meanwhile; -ECANCELED (the round counts one task fewer);
 * -WEFT_ENOTASK. Since 0.1.
 */
WEFT_EXPORT int weft_barrier_wait(struct weft_barrier *b);
/** Wake the waiting tasks with -WEFT_EBROKEN and start an empty round (not broken). Since 0.1. */
WEFT_EXPORT void weft_barrier_reset(struct weft_barrier *b);
/** Break the barrier: waiting and later waits return -WEFT_EBROKEN until a reset. Since 0.1. */
WEFT_EXPORT void weft_barrier_abort(struct weft_barrier *b);
/** The number of parties; the tasks waiting in the current round; whether broken. Since 0.1. */
WEFT_EXPORT unsigned weft_barrier_parties(const struct weft_barrier *b);
WEFT_EXPORT unsigned weft_barrier_n_waiting(const struct weft_barrier *b);
WEFT_EXPORT bool weft_barrier_broken(const struct weft_barrier *b);

#ifdef __cplusplus
}
#endif
#endif
