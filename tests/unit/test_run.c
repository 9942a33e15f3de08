/* SPDX-License-Identifier: MIT */
/* test_run.c: weft_run (asyncio.run), weft_run_until_complete, weft_get_running_loop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>

#include <weft/weft.h>

#include "harness.h"

struct seen {
    struct weft_loop *loop;     /* weft_get_running_loop() in main */
    bool own_loop;              /* it is the loop of main's own future */
    int leftover_rc;            /* what the leftover task's sleep returned */
    bool leftover_ran;
    uint64_t slept_ms;
};

static intptr_t
leftover(void *arg)
{
    struct seen *s = arg;

    s->leftover_ran = true;
    s->leftover_rc = weft_sleep(60000);     /* cancelled by weft_run, not slept */
    return s->leftover_rc;
}

static intptr_t
main_ok(void *arg)
{
    struct seen *s = arg;
    struct weft_task *t;
    uint64_t t0;

    s->loop = weft_get_running_loop();
    s->own_loop = s->loop == weft_future_loop(weft_task_future(weft_task_current()));
    t = weft_task_spawn(s->loop, leftover, s, NULL);
    if (t == NULL)
        return -ENOMEM;
    weft_task_unref(t);
    t0 = weft_loop_time(s->loop);
    if (weft_sleep(20) < 0)
        return -EIO;
    s->slept_ms = weft_loop_time(s->loop) - t0;
    return 42;
}

static intptr_t
main_fails(void *arg)
{
    (void)arg;
    return -ECONNREFUSED;
}

static intptr_t
main_cancels_itself(void *arg)
{
    (void)arg;
    weft_task_cancel(weft_task_current());
    return weft_sleep(1000);    /* -ECANCELED */
}

static void
test_run_returns_main_result_and_cancels_the_rest(void **state)
{
    struct seen s = { .leftover_rc = 1 };

    (void)state;
    assert_null(weft_get_running_loop());
    assert_int_equal(weft_run(main_ok, &s), 42);
    assert_non_null(s.loop);
    assert_true(s.own_loop);
    assert_true(s.slept_ms >= 15);
    assert_true(s.leftover_ran);
    assert_int_equal(s.leftover_rc, -ECANCELED);
    assert_null(weft_get_running_loop());
}

static void
test_run_errors(void **state)
{
    (void)state;
    assert_int_equal(weft_run(main_fails, NULL), -ECONNREFUSED);
    assert_int_equal(weft_run(main_cancels_itself, NULL), -ECANCELED);
    assert_int_equal(weft_run(NULL, NULL), -EINVAL);
}

static void
set_later(void *arg)
{
    weft_future_set_result(arg, 7);
}

static void
stop_later(void *arg)
{
    weft_loop_stop(arg);
}

struct nested {
    struct weft_loop *loop;
    struct weft_future *f;
    int rc;
};

static void
run_nested(void *arg)
{
    struct nested *n = arg;

    n->rc = weft_run_until_complete(n->loop, n->f);
    weft_future_set_result(n->f, 1);
}

static void
test_run_until_complete(void **state)
{
    struct weft_loop *loop = harness_loop_new(), *other = harness_loop_new();
    struct weft_future *f = weft_future_new(loop), *g = weft_future_new(other);
    struct nested n = { .loop = loop, .rc = 99 };

    (void)state;
    /* Done by a timer: runs until then. */
    assert_non_null(weft_call_later(loop, 10, set_later, f));
    assert_int_equal(weft_run_until_complete(loop, f), 0);
    assert_int_equal(weft_future_result(f), 7);
    /* Already done: at once. */
    assert_int_equal(weft_run_until_complete(loop, f), 0);
    weft_future_unref(f);
    /* Not this loop's, or NULL. */
    assert_int_equal(weft_run_until_complete(loop, g), -EINVAL);
    assert_int_equal(weft_run_until_complete(NULL, g), -EINVAL);
    /* The loop stopped first: -EINTR, the future still pending. */
    f = weft_future_new(loop);
    assert_non_null(weft_call_later(loop, 5, stop_later, loop));
    assert_int_equal(weft_run_until_complete(loop, f), -EINTR);
    assert_false(weft_future_done(f));
    /* From inside the running loop: -EBUSY. */
    n.f = f;
    assert_non_null(weft_call_soon(loop, run_nested, &n));
    assert_int_equal(weft_run_until_complete(loop, f), 0);
    assert_int_equal(n.rc, -EBUSY);
    weft_future_unref(f);
    weft_future_unref(g);
    weft_loop_free(other);
    weft_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_returns_main_result_and_cancels_the_rest),
        cmocka_unit_test(test_run_errors),
        cmocka_unit_test(test_run_until_complete),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
