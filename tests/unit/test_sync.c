/* SPDX-License-Identifier: MIT */
/* test_sync.c: lock, event, condition, semaphores and queues as the tutorials use them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <weft/weft.h>

#include "harness.h"

/* Spawn n copies of fn(args[i]) and wait for them all; returns 0 or the first error. */
static int
run_all(weft_task_fn *fn, void **args, size_t n)
{
    struct weft_task *t[32];
    struct weft_future *f[32];
    int rc;

    for (size_t i = 0; i < n; i++) {
        t[i] = weft_task_spawn(harness_loop, fn, args[i], NULL);
        assert_non_null(t[i]);
        f[i] = weft_task_future(t[i]);
    }
    rc = weft_gather(f, n, NULL, 0);
    for (size_t i = 0; i < n; i++)
        weft_task_unref(t[i]);
    return rc;
}

/* ---- lock: two fetches of the same key fetch once (the tutorial's cache) ---- */

static struct weft_lock *lock;
static int fetches;
static intptr_t cached = -1;

static intptr_t
get_key(void *arg)
{
    int rc = weft_lock_acquire(lock);

    if (rc < 0)
        return rc;
    if (cached < 0) {
        fetches++;
        weft_sleep(30);                 /* the slow fetch */
        cached = 1234;
    }
    weft_lock_release(lock);
    return cached;
}

static intptr_t
lock_main(void *arg)
{
    void *args[2] = { NULL, NULL };

    lock = weft_lock_new();
    assert_int_equal(run_all(get_key, args, 2), 0);
    assert_int_equal(fetches, 1);
    assert_false(weft_lock_locked(lock));
    assert_int_equal(weft_lock_release(lock), -WEFT_ESTATE);
    weft_lock_free(lock);
    return 0;
}

static void
test_lock_makes_concurrent_fetches_fetch_once(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, lock_main, NULL, 5000), 0);
}

/* Waiters get the lock in arrival order; a cancelled one leaves no trace. */
static intptr_t
locker(void *arg)
{
    int rc = weft_lock_acquire(lock);

    if (rc < 0) {
        harness_say("%s:cancelled ", (char *)arg);
        return rc;
    }
    harness_say("%s ", (char *)arg);
    weft_sleep(5);
    weft_lock_release(lock);
    return 0;
}

static intptr_t
lock_fair_main(void *arg)
{
    struct weft_task *t[4];
    const char *names[4] = { "a", "b", "c", "d" };

    lock = weft_lock_new();
    weft_lock_acquire(lock);
    for (int i = 0; i < 4; i++)
        t[i] = weft_task_spawn(harness_loop, locker, (void *)names[i], NULL);
    weft_sleep(10);                     /* all four queue up */
    weft_task_cancel(t[1]);             /* b gives up while waiting */
    /* Grant to a and cancel a in the same step: a passes the lock on to c. */
    weft_lock_release(lock);
    weft_task_cancel(t[0]);
    for (int i = 0; i < 4; i++) {
        weft_await(weft_task_future(t[i]));
        weft_task_unref(t[i]);
    }
    assert_false(weft_lock_locked(lock));
    weft_lock_free(lock);
    return 0;
}

static void
test_lock_waiters_fifo_and_cancel_leaves_no_trace(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, lock_fair_main, NULL, 5000), 0);
    assert_string_equal(harness_out, "b:cancelled a:cancelled c d ");
}

/* ---- semaphore(5) over 20 tasks ---- */

static struct weft_semaphore *sem;
static int running, max_running, finished;

static intptr_t
limited(void *arg)
{
    int rc = weft_semaphore_acquire(sem);

    if (rc < 0)
        return rc;
    running++;
    if (running > max_running)
        max_running = running;
    weft_sleep(20);
    running--;
    finished++;
    weft_semaphore_release(sem);
    return 0;
}

static intptr_t
semaphore_main(void *arg)
{
    void *args[20] = { NULL };

    sem = weft_semaphore_new(5);
    assert_int_equal(run_all(limited, args, 20), 0);
    assert_int_equal(max_running, 5);
    assert_int_equal(finished, 20);
    assert_false(weft_semaphore_locked(sem));
    weft_semaphore_free(sem);

    sem = weft_bounded_semaphore_new(1);
    assert_int_equal(weft_semaphore_release(sem), -WEFT_ESTATE);
    assert_int_equal(weft_semaphore_acquire(sem), 0);
    assert_true(weft_semaphore_locked(sem));
    assert_int_equal(weft_semaphore_release(sem), 0);
    assert_int_equal(weft_semaphore_release(sem), -WEFT_ESTATE);
    weft_semaphore_free(sem);
    return 0;
}

static void
test_semaphore_of_5_runs_exactly_5_of_20(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, semaphore_main, NULL, 5000), 0);
}

/* ---- event ---- */

static struct weft_event *event;
static int woken;

static intptr_t
event_waiter(void *arg)
{
    int rc = weft_event_wait(event);

    if (rc == 0)
        woken++;
    return rc;
}

static intptr_t
event_setter(void *arg)
{
    weft_sleep(20);
    assert_int_equal(woken, 0);
    weft_event_set(event);
    return 0;
}

static intptr_t
event_main(void *arg)
{
    void *args[4] = { NULL };
    struct weft_task *s;

    event = weft_event_new();
    s = weft_task_spawn(harness_loop, event_setter, NULL, NULL);
    assert_int_equal(run_all(event_waiter, args, 4), 0);
    assert_int_equal(woken, 4);
    assert_true(weft_event_is_set(event));
    assert_int_equal(weft_event_wait(event), 0);        /* set: no wait */
    weft_event_clear(event);
    assert_false(weft_event_is_set(event));
    weft_await(weft_task_future(s));
    weft_task_unref(s);
    weft_event_free(event);
    return 0;
}

static void
test_event_wakes_every_waiter(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, event_main, NULL, 5000), 0);
}

/* ---- condition: producer / consumers ---- */

static struct weft_condition *cond;
static int stock, consumed;

static bool
has_stock(void *arg)
{
    return stock > 0;
}

static intptr_t
cond_consumer(void *arg)
{
    for (int i = 0; i < 3; i++) {
        int rc = weft_condition_acquire(cond);

        if (rc == 0)
            rc = weft_condition_wait_for(cond, has_stock, NULL);
        if (rc < 0)
            return rc;
        stock--;
        consumed++;
        weft_condition_release(cond);
    }
    return 0;
}

static intptr_t
cond_producer(void *arg)
{
    for (int i = 0; i < 6; i++) {
        weft_sleep(5);
        weft_condition_acquire(cond);
        stock++;
        assert_true(weft_condition_notify(cond, 1) >= 0);
        weft_condition_release(cond);
    }
    return 0;
}

static intptr_t
condition_main(void *arg)
{
    void *args[2] = { NULL, NULL };
    struct weft_task *p;

    cond = weft_condition_new(NULL);
    assert_int_equal(weft_condition_notify(cond, 1), -WEFT_ESTATE);
    assert_int_equal(weft_condition_wait(cond), -WEFT_ESTATE);
    p = weft_task_spawn(harness_loop, cond_producer, NULL, NULL);
    assert_int_equal(run_all(cond_consumer, args, 2), 0);
    weft_await(weft_task_future(p));
    weft_task_unref(p);
    assert_int_equal(consumed, 6);
    assert_int_equal(stock, 0);
    weft_condition_free(cond);
    return 0;
}

static void
test_condition_producer_consumers(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, condition_main, NULL, 5000), 0);
}

/* ---- queue: producer / consumer with maxsize ---- */

static struct weft_queue *queue;
static int max_seen;

static intptr_t
producer(void *arg)
{
    for (intptr_t x = 1; x <= 10; x++) {
        harness_say("producing %ld/10\n", (long)x);
        int rc = weft_queue_put(queue, x);
        if (rc < 0)
            return rc;
        if ((int)weft_queue_size(queue) > max_seen)
            max_seen = (int)weft_queue_size(queue);
    }
    return weft_queue_put(queue, 0);     /* done */
}

static intptr_t
consumer(void *arg)
{
    intptr_t item, expect = 1;

    for (;;) {
        int rc = weft_queue_get(queue, &item);
        if (rc < 0)
            return rc;
        weft_queue_task_done(queue);
        if (item == 0)
            break;
        assert_int_equal(item, expect++);
        harness_say("consuming item %ld...\n", (long)item);
        weft_sleep(2);
    }
    return expect - 1;
}

static intptr_t
queue_main(void *arg)
{
    struct weft_task *p, *c;
    intptr_t item;

    queue = weft_queue_new(2, WEFT_QUEUE_FIFO, NULL);
    c = weft_task_spawn(harness_loop, consumer, NULL, NULL);
    p = weft_task_spawn(harness_loop, producer, NULL, NULL);
    assert_int_equal(weft_queue_join(queue), 0);     /* returns once all is consumed */
    assert_int_equal(weft_await(weft_task_future(c)), 10);
    assert_int_equal(weft_await(weft_task_future(p)), 0);
    weft_task_unref(c);
    weft_task_unref(p);
    assert_true(max_seen <= 2);
    assert_int_equal(weft_queue_task_done(queue), -WEFT_ESTATE);

    assert_int_equal(weft_queue_put_nowait(queue, 1), 0);
    assert_int_equal(weft_queue_put_nowait(queue, 2), 0);
    assert_true(weft_queue_full(queue));
    assert_int_equal(weft_queue_put_nowait(queue, 3), -WEFT_EFULL);
    assert_int_equal(weft_queue_get_nowait(queue, &item), 0);
    assert_int_equal(item, 1);
    assert_int_equal(weft_queue_get_nowait(queue, &item), 0);
    assert_int_equal(weft_queue_get_nowait(queue, &item), -WEFT_EEMPTY);
    weft_queue_free(queue);
    return 0;
}

static void
test_queue_producer_consumer_with_maxsize(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, queue_main, NULL, 5000), 0);
    assert_non_null(strstr(harness_out, "producing 1/10\n"));
    assert_non_null(strstr(harness_out, "consuming item 10...\n"));
}

static int
by_abs(intptr_t a, intptr_t b)
{
    intptr_t x = a < 0 ? -a : a, y = b < 0 ? -b : b;

    return x < y ? -1 : x > y;
}

static void
test_queue_lifo_and_priority_order(void **state)
{
    struct weft_queue *q = weft_queue_new(0, WEFT_QUEUE_LIFO, NULL);
    intptr_t item, in[7] = { 5, 1, 9, 3, 7, 2, 8 };

    for (int i = 0; i < 3; i++)
        weft_queue_put_nowait(q, i);
    for (int i = 2; i >= 0; i--) {
        weft_queue_get_nowait(q, &item);
        assert_int_equal(item, i);
    }
    weft_queue_free(q);

    q = weft_queue_new(0, WEFT_QUEUE_PRIORITY, NULL);
    for (int i = 0; i < 7; i++)
        weft_queue_put_nowait(q, in[i]);
    for (intptr_t prev = -1; weft_queue_get_nowait(q, &item) == 0; prev = item)
        assert_true(item > prev);
    weft_queue_free(q);

    q = weft_queue_new(0, WEFT_QUEUE_PRIORITY, by_abs);
    weft_queue_put_nowait(q, -5);
    weft_queue_put_nowait(q, 3);
    weft_queue_put_nowait(q, -1);
    weft_queue_get_nowait(q, &item);
    assert_int_equal(item, -1);
    weft_queue_get_nowait(q, &item);
    assert_int_equal(item, 3);
    weft_queue_free(q);
}

static intptr_t
getter(void *arg)
{
    intptr_t item;
    int rc = weft_queue_get(queue, &item);

    return rc < 0 ? rc : item;
}

static intptr_t
queue_cancel_main(void *arg)
{
    struct weft_task *a, *b;

    queue = weft_queue_new(0, WEFT_QUEUE_FIFO, NULL);
    a = weft_task_spawn(harness_loop, getter, NULL, NULL);
    b = weft_task_spawn(harness_loop, getter, NULL, NULL);
    weft_sleep(5);
    /* a is woken for the item and cancelled at once: b must get it. */
    weft_queue_put_nowait(queue, 77);
    weft_task_cancel(a);
    assert_int_equal(weft_await(weft_task_future(a)), -ECANCELED);
    assert_int_equal(weft_await(weft_task_future(b)), 77);
    weft_task_unref(a);
    weft_task_unref(b);
    weft_queue_free(queue);
    return 0;
}

static void
test_queue_cancelled_getter_passes_item_on(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, queue_cancel_main, NULL, 5000), 0);
}

/* ---- queue shutdown (3.13): puts refused, gets drain then fail, waiters woken ---- */

static intptr_t
putter(void *arg)
{
    return weft_queue_put(queue, (intptr_t)arg);
}

static intptr_t
queue_shutdown_main(void *arg)
{
    struct weft_task *g, *p;
    intptr_t item;

    (void)arg;
    /* graceful: what is queued still comes out, then -WEFT_ESHUTDOWN */
    queue = weft_queue_new(1, WEFT_QUEUE_FIFO, NULL);
    assert_int_equal(weft_queue_put_nowait(queue, 1), 0);
    p = weft_task_spawn(harness_loop, putter, (void *)2, NULL);     /* waits: full */
    weft_sleep(5);
    weft_queue_shutdown(queue, false);
    assert_true(weft_queue_is_shut_down(queue));
    assert_int_equal(weft_await(weft_task_future(p)), -WEFT_ESHUTDOWN);
    assert_int_equal(weft_queue_put_nowait(queue, 3), -WEFT_ESHUTDOWN);
    assert_int_equal(weft_queue_put(queue, 3), -WEFT_ESHUTDOWN);
    assert_int_equal(weft_queue_get(queue, &item), 0);
    assert_int_equal(item, 1);
    assert_int_equal(weft_queue_get(queue, &item), -WEFT_ESHUTDOWN);     /* no wait */
    assert_int_equal(weft_queue_get_nowait(queue, &item), -WEFT_ESHUTDOWN);
    weft_task_unref(p);
    weft_queue_free(queue);

    /* a getter waiting on an empty queue wakes */
    queue = weft_queue_new(0, WEFT_QUEUE_FIFO, NULL);
    g = weft_task_spawn(harness_loop, getter, NULL, NULL);
    weft_sleep(5);
    weft_queue_shutdown(queue, false);
    assert_int_equal(weft_await(weft_task_future(g)), -WEFT_ESHUTDOWN);
    weft_task_unref(g);
    weft_queue_free(queue);

    /* immediate: the items go, join returns, gets fail at once */
    queue = weft_queue_new(0, WEFT_QUEUE_FIFO, NULL);
    assert_int_equal(weft_queue_put_nowait(queue, 4), 0);
    assert_int_equal(weft_queue_put_nowait(queue, 5), 0);
    weft_queue_shutdown(queue, true);
    assert_int_equal(weft_queue_size(queue), 0);
    assert_int_equal(weft_queue_join(queue), 0);
    assert_int_equal(weft_queue_get(queue, &item), -WEFT_ESHUTDOWN);
    weft_queue_free(queue);
    return 0;
}

static void
test_queue_shutdown(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, queue_shutdown_main, NULL, 5000), 0);
}

/* ---- barrier: three tasks meet; a reset and an abort break the waits ---- */

static struct weft_barrier *barrier;
static int arrivals_before_all_went;

static intptr_t
party(void *arg)
{
    int rc = weft_barrier_wait(barrier);

    (void)arg;
    if (rc >= 0 && weft_barrier_n_waiting(barrier) == 0)
        arrivals_before_all_went++;
    return rc;
}

static intptr_t
barrier_main(void *arg)
{
    struct weft_task *t[3];
    int seen = 0;

    (void)arg;
    assert_null(weft_barrier_new(0));
    barrier = weft_barrier_new(3);
    assert_int_equal(weft_barrier_parties(barrier), 3);
    for (int round = 0; round < 2; round++) {      /* it starts again by itself */
        for (int i = 0; i < 3; i++)
            t[i] = weft_task_spawn(harness_loop, party, NULL, NULL);
        seen = 0;
        for (int i = 0; i < 3; i++) {
            intptr_t rc = weft_await(weft_task_future(t[i]));

            assert_true(rc >= 0 && rc < 3);
            seen |= 1 << rc;        /* each place once: 0, 1, 2 */
            weft_task_unref(t[i]);
        }
        assert_int_equal(seen, 7);
    }
    assert_int_equal(arrivals_before_all_went, 6);

    /* a cancelled waiter leaves the round */
    t[0] = weft_task_spawn(harness_loop, party, NULL, NULL);
    weft_sleep(5);
    assert_int_equal(weft_barrier_n_waiting(barrier), 1);
    weft_task_cancel(t[0]);
    assert_int_equal(weft_await(weft_task_future(t[0])), -ECANCELED);
    assert_int_equal(weft_barrier_n_waiting(barrier), 0);
    weft_task_unref(t[0]);

    /* reset: the waiters get -WEFT_EBROKEN, the barrier is usable again */
    t[0] = weft_task_spawn(harness_loop, party, NULL, NULL);
    weft_sleep(5);
    weft_barrier_reset(barrier);
    assert_int_equal(weft_await(weft_task_future(t[0])), -WEFT_EBROKEN);
    weft_task_unref(t[0]);
    assert_false(weft_barrier_broken(barrier));

    /* abort: broken until a reset */
    t[0] = weft_task_spawn(harness_loop, party, NULL, NULL);
    weft_sleep(5);
    weft_barrier_abort(barrier);
    assert_int_equal(weft_await(weft_task_future(t[0])), -WEFT_EBROKEN);
    weft_task_unref(t[0]);
    assert_true(weft_barrier_broken(barrier));
    assert_int_equal(weft_barrier_wait(barrier), -WEFT_EBROKEN);
    weft_barrier_reset(barrier);
    assert_false(weft_barrier_broken(barrier));
    weft_barrier_free(barrier);
    return 0;
}

static void
test_barrier(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, barrier_main, NULL, 5000), 0);
}

static void
test_waiting_outside_a_task_fails(void **state)
{
    struct weft_lock *l = weft_lock_new();
    struct weft_queue *q = weft_queue_new(0, WEFT_QUEUE_FIFO, NULL);
    intptr_t item;

    assert_int_equal(weft_lock_acquire(l), 0);          /* free: no wait needed */
    assert_int_equal(weft_lock_acquire(l), -WEFT_ENOTASK);
    assert_int_equal(weft_queue_get(q, &item), -WEFT_ENOTASK);
    weft_lock_free(l);
    weft_queue_free(q);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, harness_setup, harness_teardown)
        T(test_lock_makes_concurrent_fetches_fetch_once),
        T(test_lock_waiters_fifo_and_cancel_leaves_no_trace),
        T(test_semaphore_of_5_runs_exactly_5_of_20),
        T(test_event_wakes_every_waiter),
        T(test_condition_producer_consumers),
        T(test_queue_producer_consumer_with_maxsize),
        T(test_queue_lifo_and_priority_order),
        T(test_queue_cancelled_getter_passes_item_on),
        T(test_queue_shutdown),
        T(test_barrier),
        T(test_waiting_outside_a_task_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
