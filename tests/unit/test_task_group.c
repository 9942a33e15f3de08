/* SPDX-License-Identifier: MIT */
/* test_task_group.c: asyncio.TaskGroup's rules: all done, the first failure cancels the rest and the body, outside cancels. */
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

#define FOREVER 60000   /* longer than any test may run: only a cancel ends it */

/* Sleep arg ms, then return arg; a negative arg is returned at once as an error. */
static intptr_t
child(void *arg)
{
    intptr_t v = (intptr_t)arg;
    int rc;

    if (v < 0)
        return v;
    rc = weft_sleep((uint64_t)v);
    return rc < 0 ? rc : v;
}

static intptr_t
all_done_main(void *arg)
{
    struct weft_task_group *g = weft_task_group_new();
    struct weft_task *t[3];

    (void)arg;
    assert_non_null(g);
    for (int i = 0; i < 3; i++)
        t[i] = weft_task_group_spawn(g, child, (void *)(intptr_t)(5 * (3 - i)), NULL);
    assert_int_equal(weft_task_group_wait(g), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_future_result(weft_task_future(t[i])), 5 * (3 - i));
    assert_int_equal(weft_task_group_errors(g, NULL, 0), 0);
    assert_int_equal(weft_task_group_wait(g), -WEFT_ESTATE);    /* once */
    assert_null(weft_task_group_spawn(g, child, (void *)1, NULL));
    assert_int_equal(errno, ECANCELED);
    weft_task_group_free(g);
    return 0;
}

static void
test_all_children_done(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, all_done_main, NULL, 10000), 0);
}

/* A failure while the parent waits: the others are cancelled, the error comes back. */
static intptr_t
failure_in_wait_main(void *arg)
{
    struct weft_task_group *g = weft_task_group_new();
    struct weft_task *slow, *bad;
    intptr_t errs[4];

    (void)arg;
    slow = weft_task_group_spawn(g, child, (void *)FOREVER, NULL);
    bad = weft_task_group_spawn(g, child, (void *)(intptr_t)-EIO, NULL);
    assert_non_null(slow);
    assert_non_null(bad);
    assert_int_equal(weft_task_group_wait(g), -EIO);
    assert_int_equal(weft_future_result(weft_task_future(slow)), -ECANCELED);
    assert_int_equal(weft_task_group_errors(g, errs, 4), 1);
    assert_int_equal(errs[0], -EIO);
    assert_int_equal(weft_task_cancelling(weft_task_current()), 0);
    weft_task_group_free(g);
    return 0;
}

static void
test_failure_cancels_the_others(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, failure_in_wait_main, NULL, 10000), 0);
}

/* A failure while the parent is still in the body: the body is cancelled, the wait says why. */
static intptr_t
failure_in_body_main(void *arg)
{
    struct weft_task_group *g = weft_task_group_new();
    intptr_t errs[4];

    (void)arg;
    assert_non_null(weft_task_group_spawn(g, child, (void *)(intptr_t)-EIO, NULL));
    assert_non_null(weft_task_group_spawn(g, child, (void *)(intptr_t)-EPIPE, NULL));
    assert_int_equal(weft_sleep(FOREVER), -ECANCELED);     /* the body stops */
    assert_null(weft_task_group_spawn(g, child, (void *)1, NULL));
    assert_int_equal(errno, ECANCELED);
    assert_int_equal(weft_task_group_wait(g), -EIO);
    assert_int_equal(weft_task_group_errors(g, errs, 4), 2);   /* both, in order */
    assert_int_equal(errs[0], -EIO);
    assert_int_equal(errs[1], -EPIPE);
    /* the group's cancel is taken back: the task goes on normally */
    assert_int_equal(weft_task_cancelling(weft_task_current()), 0);
    assert_int_equal(weft_sleep(1), 0);
    weft_task_group_free(g);
    return 0;
}

static void
test_failure_cancels_the_body(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, failure_in_body_main, NULL, 10000), 0);
}

/* The parent cancelled from outside while it waits: the children go, the wait says -ECANCELED. */
static struct weft_task *kid;

static intptr_t
parent(void *arg)
{
    struct weft_task_group *g = weft_task_group_new();
    intptr_t rc;

    (void)arg;
    kid = weft_task_group_spawn(g, child, (void *)FOREVER, NULL);
    weft_task_ref(kid);
    rc = weft_task_group_wait(g);
    weft_task_group_free(g);
    return rc;
}

static intptr_t
outside_cancel_main(void *arg)
{
    struct weft_task *p = weft_task_spawn(harness_loop, parent, NULL, NULL);

    (void)arg;
    assert_int_equal(weft_sleep(5), 0);
    assert_true(weft_task_cancel(p));
    assert_int_equal(weft_await(weft_task_future(p)), -ECANCELED);
    assert_int_equal(weft_future_result(weft_task_future(kid)), -ECANCELED);
    weft_task_unref(kid);
    weft_task_unref(p);
    return 0;
}

static void
test_outside_cancel_takes_the_children(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, outside_cancel_main, NULL, 10000), 0);
}

static void
test_outside_a_task(void **state)
{
    (void)state;
    errno = 0;
    assert_null(weft_task_group_new());
    assert_int_equal(errno, EPERM);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, harness_setup, harness_teardown)
        T(test_all_children_done),
        T(test_failure_cancels_the_others),
        T(test_failure_cancels_the_body),
        T(test_outside_cancel_takes_the_children),
        T(test_outside_a_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
