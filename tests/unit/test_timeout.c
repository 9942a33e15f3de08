/* SPDX-License-Identifier: MIT */
/* test_timeout.c: timeout scopes (asyncio.timeout) over sleeps, queue and lock waits; nesting; cancelling/uncancel. */
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

/* A wait far longer than the test's run-time limit: only the scope can end it. */
#define FOREVER 60000

static intptr_t
bounded_waits_main(void *arg)
{
    struct weft_timeout to;
    struct weft_queue *q = weft_queue_new(0, WEFT_QUEUE_FIFO, NULL);
    struct weft_lock *l = weft_lock_new();
    struct weft_task *self = weft_task_current();
    intptr_t item;

    (void)arg;
    /* a sleep */
    assert_int_equal(weft_timeout_enter(&to, 20), 0);
    assert_int_equal(weft_timeout_exit(&to, weft_sleep(FOREVER)), -ETIMEDOUT);
    assert_true(weft_timeout_expired(&to));
    assert_int_equal(weft_task_cancelling(self), 0);
    /* a queue get and a lock wait */
    assert_int_equal(weft_timeout_enter(&to, 10), 0);
    assert_int_equal(weft_timeout_exit(&to, weft_queue_get(q, &item)), -ETIMEDOUT);
    assert_int_equal(weft_lock_acquire(l), 0);
    assert_int_equal(weft_timeout_enter(&to, 10), 0);
    assert_int_equal(weft_timeout_exit(&to, weft_lock_acquire(l)), -ETIMEDOUT);
    assert_true(weft_lock_locked(l));   /* still ours, from before */
    /* done in time: the result passes, and no cancel comes later */
    assert_int_equal(weft_timeout_enter(&to, 5000), 0);
    assert_int_equal(weft_timeout_exit(&to, weft_sleep(1)), 0);
    assert_false(weft_timeout_expired(&to));
    assert_int_equal(weft_sleep(10), 0);
    /* never, then a deadline */
    assert_int_equal(weft_timeout_enter(&to, -1), 0);
    assert_int_equal(weft_timeout_reschedule(&to, 10), 0);
    assert_int_equal(weft_timeout_exit(&to, weft_sleep(FOREVER)), -ETIMEDOUT);
    assert_int_equal(weft_timeout_reschedule(&to, 10), -WEFT_ESTATE);
    /* an absolute deadline */
    assert_int_equal(weft_timeout_at_enter(&to, weft_loop_time(weft_get_running_loop()) + 10),
                     0);
    assert_int_equal(weft_timeout_exit(&to, weft_sleep(FOREVER)), -ETIMEDOUT);
    weft_lock_free(l);
    weft_queue_free(q);
    return 0;
}

static void
test_scopes_bound_every_wait(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, bounded_waits_main, NULL, 10000), 0);
}

static intptr_t
nested_main(void *arg)
{
    struct weft_timeout outer, inner;
    intptr_t rc;

    (void)arg;
    /* the outer deadline comes first: the inner scope passes -ECANCELED up */
    assert_int_equal(weft_timeout_enter(&outer, 20), 0);
    assert_int_equal(weft_timeout_enter(&inner, FOREVER), 0);
    rc = weft_timeout_exit(&inner, weft_sleep(FOREVER));
    assert_int_equal(rc, -ECANCELED);
    assert_false(weft_timeout_expired(&inner));
    assert_int_equal(weft_timeout_exit(&outer, rc), -ETIMEDOUT);
    /* the inner one first: the outer scope sees its -ETIMEDOUT as a result */
    assert_int_equal(weft_timeout_enter(&outer, FOREVER), 0);
    assert_int_equal(weft_timeout_enter(&inner, 10), 0);
    rc = weft_timeout_exit(&inner, weft_sleep(FOREVER));
    assert_int_equal(rc, -ETIMEDOUT);
    assert_int_equal(weft_timeout_exit(&outer, rc), -ETIMEDOUT);
    assert_false(weft_timeout_expired(&outer));
    return 0;
}

static void
test_scopes_nest(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, nested_main, NULL, 10000), 0);
}

/* A cancel from elsewhere inside a scope stays a cancel. */
static intptr_t
sleeper_in_scope(void *arg)
{
    struct weft_timeout to;

    (void)arg;
    assert_int_equal(weft_timeout_enter(&to, FOREVER), 0);
    return weft_timeout_exit(&to, weft_sleep(FOREVER));
}

static intptr_t
cancel_main(void *arg)
{
    struct weft_task *t = weft_task_spawn(harness_loop, sleeper_in_scope, NULL, NULL);
    struct weft_task *self = weft_task_current();

    (void)arg;
    assert_int_equal(weft_sleep(5), 0);
    assert_true(weft_task_cancel(t));
    assert_int_equal(weft_task_cancelling(t), 1);
    assert_int_equal(weft_await(weft_task_future(t)), -ECANCELED);
    weft_task_unref(t);
    /* uncancel to 0 drops a cancel not yet delivered */
    assert_true(weft_task_cancel(self));
    assert_int_equal(weft_task_cancelling(self), 1);
    assert_int_equal(weft_task_uncancel(self), 0);
    assert_int_equal(weft_sleep(1), 0);
    assert_int_equal(weft_task_uncancel(self), 0);
    return 0;
}

static void
test_outside_cancel_stays_a_cancel(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, cancel_main, NULL, 10000), 0);
}

static void
test_outside_a_task(void **state)
{
    struct weft_timeout to;

    (void)state;
    assert_int_equal(weft_timeout_enter(&to, 10), -WEFT_ENOTASK);
    assert_int_equal(weft_timeout_exit(&to, 7), 7);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, harness_setup, harness_teardown)
        T(test_scopes_bound_every_wait),
        T(test_scopes_nest),
        T(test_outside_cancel_stays_a_cancel),
        T(test_outside_a_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
