/* SPDX-License-Identifier: MIT */
/* test_future.c: futures: results, errors, cancel, done callbacks via call_soon, refcounts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <weft/weft.h>

#include "harness.h"

static int setup(void **state)    { *state = harness_loop_new(); return 0; }
static int teardown(void **state) { harness_run_for(*state, 5); weft_loop_free(*state); return 0; }

static void
test_result_and_error_states(void **state)
{
    struct weft_future *f = weft_future_new(*state);

    assert_non_null(f);
    assert_false(weft_future_done(f));
    assert_int_equal(weft_future_result(f), -WEFT_ESTATE);
    assert_int_equal(weft_future_set_result(f, -3), -EINVAL);
    assert_int_equal(weft_future_set_result(f, 42), 0);
    assert_true(weft_future_done(f));
    assert_false(weft_future_cancelled(f));
    assert_int_equal(weft_future_result(f), 42);
    assert_int_equal(weft_future_set_result(f, 1), -WEFT_ESTATE);
    assert_int_equal(weft_future_set_error(f, -EIO), -WEFT_ESTATE);
    assert_false(weft_future_cancel(f));
    weft_future_unref(f);

    f = weft_future_new(*state);
    assert_int_equal(weft_future_set_error(f, 5), -EINVAL);
    assert_int_equal(weft_future_set_error(f, -ECONNRESET), 0);
    assert_int_equal(weft_future_result(f), -ECONNRESET);
    weft_future_unref(f);

    f = weft_future_new(*state);
    assert_true(weft_future_cancel(f));
    assert_true(weft_future_cancelled(f));
    assert_int_equal(weft_future_result(f), -ECANCELED);
    weft_future_unref(f);
}

static void
test_pointer_is_a_result(void **state)
{
    struct weft_future *f = weft_future_new(*state);
    static int target;

    assert_int_equal(weft_future_set_result(f, (intptr_t)&target), 0);
    assert_ptr_equal((int *)weft_future_result(f), &target);
    weft_future_unref(f);
}

struct order {
    char log[64];
};

static void
cb_a(struct weft_future *f, void *arg)
{
    strcat(((struct order *)arg)->log, "a");
    assert_int_equal(weft_future_result(f), 7);
}

static void
cb_b(struct weft_future *f, void *arg)
{
    strcat(((struct order *)arg)->log, "b");
}

static void
soon_marker(void *arg)
{
    strcat(((struct order *)arg)->log, "s");
}

static void
test_callbacks_are_scheduled_not_inline(void **state)
{
    struct weft_future *f = weft_future_new(*state);
    struct order o = { "" };

    assert_int_equal(weft_future_add_done_callback(f, cb_a, &o), 0);
    assert_int_equal(weft_future_add_done_callback(f, cb_b, &o), 0);
    assert_int_equal(weft_future_add_done_callback(f, cb_b, &o), 0);
    assert_int_equal(weft_future_remove_done_callback(f, cb_b, &o), 2);
    assert_int_equal(weft_future_add_done_callback(f, cb_b, &o), 0);
    assert_non_null(weft_call_soon(*state, soon_marker, &o));
    weft_future_set_result(f, 7);
    assert_string_equal(o.log, "");          /* nothing ran inline */
    harness_run_for(*state, 20);
    assert_string_equal(o.log, "sab");       /* FIFO with other call_soon callbacks */

    /* Added to a done future: scheduled too, not run inline. */
    assert_int_equal(weft_future_add_done_callback(f, cb_a, &o), 0);
    assert_string_equal(o.log, "sab");
    harness_run_for(*state, 20);
    assert_string_equal(o.log, "saba");
    weft_future_unref(f);
}

static void
test_refcount_keeps_future_alive(void **state)
{
    struct weft_future *f = weft_future_new(*state);
    struct order o = { "" };

    assert_ptr_equal(weft_future_ref(f), f);
    weft_future_unref(f);
    assert_int_equal(weft_future_add_done_callback(f, cb_b, &o), 0);
    weft_future_set_result(f, 1);
    weft_future_unref(f);                   /* the scheduled batch keeps it */
    harness_run_for(*state, 20);
    assert_string_equal(o.log, "b");
    weft_future_unref(NULL);
}

static int reports;
static int report_error;

static void
count_errors(struct weft_loop *loop, const struct weft_error_context *ctx, void *arg)
{
    reports++;
    report_error = ctx->error;
    assert_non_null(ctx->future);
}

static void
test_unretrieved_error_is_reported_at_last_unref(void **state)
{
    struct weft_future *f;

    reports = 0;
    weft_loop_set_error_handler(*state, count_errors, NULL);
    f = weft_future_new(*state);
    weft_future_set_error(f, -EPIPE);
    weft_future_unref(f);
    assert_int_equal(reports, 1);
    assert_int_equal(report_error, -EPIPE);

    /* Read errors and cancellations are not reported. */
    f = weft_future_new(*state);
    weft_future_set_error(f, -EPIPE);
    assert_int_equal(weft_future_result(f), -EPIPE);
    weft_future_unref(f);
    f = weft_future_new(*state);
    weft_future_cancel(f);
    weft_future_unref(f);
    assert_int_equal(reports, 1);
    weft_loop_set_error_handler(*state, NULL, NULL);
}

static void
test_await_outside_task_does_not_block(void **state)
{
    struct weft_future *f = weft_future_new(*state);

    assert_int_equal(weft_await(f), -WEFT_ENOTASK);
    assert_int_equal(weft_sleep(10), -WEFT_ENOTASK);
    assert_null(weft_task_current());
    weft_future_unref(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_result_and_error_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pointer_is_a_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_callbacks_are_scheduled_not_inline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refcount_keeps_future_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unretrieved_error_is_reported_at_last_unref,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_await_outside_task_does_not_block, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
