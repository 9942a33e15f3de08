/* SPDX-License-Identifier: MIT */
/* test_task.c: tasks as the tutorials use them: gather, wait, wait_for, shield, cancel. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft/weft.h>

#include "harness.h"

/* ---- factorial, as in the tutorial (sleep(1) becomes a short step) ---- */

struct fact {
    const char *name;
    int number;
    unsigned step_ms;
};

static intptr_t
factorial(void *arg)
{
    struct fact *a = arg;
    intptr_t f = 1;

    for (int i = 2; i <= a->number; i++) {
        harness_say("Task %s: Compute factorial(%d)...\n", a->name, i);
        int rc = weft_sleep(a->step_ms);
        if (rc < 0)
            return rc;
        f *= i;
    }
    harness_say("Task %s: factorial(%d) = %ld\n", a->name, a->number, (long)f);
    return f;
}

static const char *const tutorial_order =
    "Task A: Compute factorial(2)...\n"
    "Task B: Compute factorial(2)...\n"
    "Task C: Compute factorial(2)...\n"
    "Task A: factorial(2) = 2\n"
    "Task B: Compute factorial(3)...\n"
    "Task C: Compute factorial(3)...\n"
    "Task B: factorial(3) = 6\n"
    "Task C: Compute factorial(4)...\n"
    "Task C: factorial(4) = 24\n";

static struct fact facts[3] = { { "A", 2, 20 }, { "B", 3, 20 }, { "C", 4, 20 } };

static intptr_t
gather_main(void *arg)
{
    struct weft_task *t[3];
    struct weft_future *f[3];
    intptr_t results[3] = { -1, -1, -1 };
    int rc;

    for (int i = 0; i < 3; i++) {
        t[i] = weft_task_spawn(harness_loop, factorial, &facts[i], NULL);
        assert_non_null(t[i]);
        f[i] = weft_task_future(t[i]);
    }
    rc = weft_gather(f, 3, results, 0);
    for (int i = 0; i < 3; i++)
        weft_task_unref(t[i]);
    assert_int_equal(rc, 0);
    assert_int_equal(results[0], 2);
    assert_int_equal(results[1], 6);
    assert_int_equal(results[2], 24);
    return 1;
}

static void
test_gather_factorials_interleave_in_order(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, gather_main, NULL, 5000), 1);
    assert_string_equal(harness_out, tutorial_order);
}

static intptr_t
wait_main(void *arg)
{
    struct fact slow[3] = { { "A", 2, 200 }, { "B", 3, 200 }, { "C", 4, 200 } };
    struct weft_task *t[3];
    struct weft_future *f[3], *done[3], *pending[3];
    size_t nd = 9, np = 9;

    for (int i = 0; i < 3; i++) {
        t[i] = weft_task_spawn(harness_loop, factorial, &slow[i], NULL);
        f[i] = weft_task_future(t[i]);
    }
    /* A ends near 200 ms, B near 400, C near 600. */
    assert_int_equal(weft_wait(f, 3, WEFT_ALL_COMPLETED, 500, done, &nd, pending, &np), 0);
    assert_int_equal(nd, 2);
    assert_int_equal(np, 1);
    assert_ptr_equal(done[0], f[0]);
    assert_ptr_equal(done[1], f[1]);
    assert_ptr_equal(pending[0], f[2]);
    assert_false(weft_future_done(f[2]));
    assert_null(strstr(harness_out, "Task C: factorial(4) = 24"));
    /* Nothing was cancelled: C finishes. */
    assert_int_equal(weft_await(f[2]), 24);
    for (int i = 0; i < 3; i++)
        weft_task_unref(t[i]);
    return 0;
}

static void
test_wait_with_timeout_gives_done_and_pending(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, wait_main, NULL, 5000), 0);
    assert_string_equal(harness_out, tutorial_order);
}

static intptr_t
first_completed_main(void *arg)
{
    struct fact fast = { "F", 2, 10 }, slow = { "S", 2, 3000 };
    struct weft_task *a = weft_task_spawn(harness_loop, factorial, &fast, NULL);
    struct weft_task *b = weft_task_spawn(harness_loop, factorial, &slow, NULL);
    struct weft_future *f[2] = { weft_task_future(b), weft_task_future(a) }, *done[2];
    size_t nd, np;

    assert_int_equal(weft_wait(f, 2, WEFT_FIRST_COMPLETED, -1, done, &nd, NULL, &np), 0);
    assert_int_equal(nd, 1);
    assert_ptr_equal(done[0], weft_task_future(a));
    weft_task_cancel(b);
    assert_int_equal(weft_await(weft_task_future(b)), -ECANCELED);
    weft_task_unref(a);
    weft_task_unref(b);
    return 0;
}

static void
test_wait_first_completed(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, first_completed_main, NULL, 5000), 0);
}

/* ---- wait_for, cancel_me, shield ---- */

static intptr_t
cancel_me(void *arg)
{
    int rc;

    harness_say("cancel_me(): before sleep\n");
    rc = weft_sleep((uintptr_t)arg);
    if (rc == -ECANCELED)
        harness_say("cancel_me(): cancel sleep\n");
    harness_say("cancel_me(): after sleep\n");
    return rc < 0 ? rc : 5;
}

static intptr_t
wait_for_main(void *arg)
{
    struct weft_task *t = weft_task_spawn(harness_loop, cancel_me, (void *)(uintptr_t)10000, NULL);

    assert_int_equal(weft_wait_for(weft_task_future(t), 50), -ETIMEDOUT);
    /* 3.12 semantics: the inner has finished cancelling when wait_for returns. */
    assert_true(weft_future_done(weft_task_future(t)));
    assert_true(weft_future_cancelled(weft_task_future(t)));
    harness_say("main(): timeout\n");
    weft_task_unref(t);

    t = weft_task_spawn(harness_loop, cancel_me, (void *)(uintptr_t)10, NULL);
    assert_int_equal(weft_wait_for(weft_task_future(t), 2000), 5);
    weft_task_unref(t);
    return 0;
}

static void
test_wait_for_cancels_and_child_sees_it(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, wait_for_main, NULL, 5000), 0);
    assert_string_equal(harness_out, "cancel_me(): before sleep\n"
                             "cancel_me(): cancel sleep\n"
                             "cancel_me(): after sleep\n"
                             "main(): timeout\n"
                             "cancel_me(): before sleep\n"
                             "cancel_me(): after sleep\n");
}

static intptr_t
wait_for_gather_main(void *arg)
{
    struct fact slow[3] = { { "A", 2, 100 }, { "B", 3, 100 }, { "C", 4, 100 } };
    struct weft_task *t[3];
    struct weft_future *f[3], *g;

    for (int i = 0; i < 3; i++) {
        t[i] = weft_task_spawn(harness_loop, factorial, &slow[i], NULL);
        f[i] = weft_task_future(t[i]);
    }
    g = weft_gather_new(harness_loop, f, 3, 0);
    assert_int_equal(weft_wait_for(g, 250), -ETIMEDOUT);
    weft_future_unref(g);
    /* The gather cancelled its children: C never finished. */
    for (int i = 0; i < 3; i++) {
        weft_await(f[i]);
        assert_true(weft_future_done(f[i]));
    }
    assert_true(weft_future_cancelled(f[2]));
    assert_int_equal(weft_future_result(f[0]), 2);
    for (int i = 0; i < 3; i++)
        weft_task_unref(t[i]);
    return 0;
}

static void
test_wait_for_gather_cancels_children(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, wait_for_gather_main, NULL, 5000), 0);
    assert_null(strstr(harness_out, "Task C: factorial(4) = 24"));
    assert_non_null(strstr(harness_out, "Task A: factorial(2) = 2"));
}

static intptr_t
cancel_me_main(void *arg)
{
    struct weft_task *t = weft_task_spawn(harness_loop, cancel_me, (void *)(uintptr_t)10000, NULL);

    weft_sleep(50);
    assert_true(weft_task_cancel(t));
    if (weft_await(weft_task_future(t)) == -ECANCELED)
        harness_say("main(): cancel_me is cancelled now\n");
    assert_true(weft_future_cancelled(weft_task_future(t)));
    assert_false(weft_task_cancel(t));
    weft_task_unref(t);
    return 0;
}

static void
test_cancel_me_order_of_events(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, cancel_me_main, NULL, 5000), 0);
    assert_string_equal(harness_out, "cancel_me(): before sleep\n"
                             "cancel_me(): cancel sleep\n"
                             "cancel_me(): after sleep\n"
                             "main(): cancel_me is cancelled now\n");
}

static intptr_t
shield_main(void *arg)
{
    struct weft_task *t = weft_task_spawn(harness_loop, cancel_me, (void *)(uintptr_t)200, NULL);
    struct weft_future *s = weft_shield(weft_task_future(t));

    assert_non_null(s);
    weft_sleep(50);
    assert_true(weft_future_cancel(s));
    if (weft_await(s) == -ECANCELED)
        harness_say("main(): cancel_me_shield is cancelled now\n");
    assert_false(weft_future_done(weft_task_future(t)));     /* still running */
    assert_int_equal(weft_await(weft_task_future(t)), 5);
    weft_future_unref(s);
    weft_task_unref(t);
    return 0;
}

static void
test_shield_keeps_inner_running(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, shield_main, NULL, 5000), 0);
    assert_string_equal(harness_out, "cancel_me(): before sleep\n"
                             "main(): cancel_me_shield is cancelled now\n"
                             "cancel_me(): after sleep\n");
}

/* ---- gather errors, cancel, as_completed ---- */

static intptr_t
fail_after(void *arg)
{
    weft_sleep((uintptr_t)arg);
    return -EPIPE;
}

static intptr_t
gather_error_main(void *arg)
{
    struct fact slow = { "S", 3, 30 };
    struct weft_task *ok = weft_task_spawn(harness_loop, factorial, &slow, NULL);
    struct weft_task *bad = weft_task_spawn(harness_loop, fail_after, (void *)(uintptr_t)10, NULL);
    struct weft_future *f[2] = { weft_task_future(ok), weft_task_future(bad) };
    intptr_t res[2];

    assert_int_equal(weft_gather(f, 2, res, 0), -EPIPE);
    assert_false(weft_future_done(f[0]));           /* the other keeps running */
    assert_int_equal(weft_await(f[0]), 6);
    assert_int_equal(weft_gather(f, 2, res, WEFT_GATHER_RETURN_ERRORS), 0);
    assert_int_equal(res[0], 6);
    assert_int_equal(res[1], -EPIPE);
    weft_task_unref(ok);
    weft_task_unref(bad);
    return 0;
}

static void
test_gather_first_error_propagates(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, gather_error_main, NULL, 5000), 0);
}

static struct weft_future *gather_children[2];

static intptr_t
gather_waiter(void *arg)
{
    return weft_gather(gather_children, 2, NULL, 0);
}

static intptr_t
cancel_gather_main(void *arg)
{
    struct weft_task *c[2], *g;

    for (int i = 0; i < 2; i++) {
        c[i] = weft_task_spawn(harness_loop, cancel_me, (void *)(uintptr_t)10000, NULL);
        gather_children[i] = weft_task_future(c[i]);
    }
    g = weft_task_spawn(harness_loop, gather_waiter, NULL, NULL);
    weft_sleep(30);
    weft_task_cancel(g);
    assert_int_equal(weft_await(weft_task_future(g)), -ECANCELED);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(weft_await(gather_children[i]), -ECANCELED);
        weft_task_unref(c[i]);
    }
    weft_task_unref(g);
    return 0;
}

static void
test_cancelling_gather_cancels_children(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, cancel_gather_main, NULL, 5000), 0);
    assert_int_equal(strstr(strstr(harness_out, "cancel sleep") + 1, "cancel sleep") != NULL, 1);
}

static intptr_t
as_completed_main(void *arg)
{
    struct fact fs[3] = { { "C", 4, 40 }, { "A", 2, 40 }, { "B", 3, 40 } };
    struct weft_task *t[3];
    struct weft_future *f[3], *next;
    struct weft_as_completed *ac;
    intptr_t order[3];
    int n = 0, rc;

    for (int i = 0; i < 3; i++) {
        t[i] = weft_task_spawn(harness_loop, factorial, &fs[i], NULL);
        f[i] = weft_task_future(t[i]);
    }
    ac = weft_as_completed_new(f, 3, 5000);
    while ((rc = weft_as_completed_next(ac, &next)) == 1)
        order[n++] = weft_future_result(next);
    weft_as_completed_free(ac);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 3);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 6);
    assert_int_equal(order[2], 24);

    /* A deadline before the slow one ends. */
    for (int i = 0; i < 3; i++)
        weft_task_unref(t[i]);
    t[0] = weft_task_spawn(harness_loop, cancel_me, (void *)(uintptr_t)10000, NULL);
    f[0] = weft_task_future(t[0]);
    ac = weft_as_completed_new(f, 1, 30);
    assert_int_equal(weft_as_completed_next(ac, &next), -ETIMEDOUT);
    weft_as_completed_free(ac);
    weft_task_cancel(t[0]);
    weft_await(f[0]);
    weft_task_unref(t[0]);
    return 0;
}

static void
test_as_completed_in_finishing_order(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, as_completed_main, NULL, 5000), 0);
}

/* ---- bookkeeping ---- */

static intptr_t
whoami(void *arg)
{
    struct weft_task *all[8];

    assert_ptr_equal(weft_task_current(), arg ? *(struct weft_task **)arg : weft_task_current());
    assert_true(weft_task_all(harness_loop, all, 8) >= 1);
    return (intptr_t)weft_task_current();
}

static void
test_current_and_all_tasks(void **state)
{
    struct weft_task_options opt = { .stack_size = 16384, .name = "named" };
    struct weft_task *t = weft_task_spawn(harness_loop, whoami, NULL, &opt), *all[4];
    bool never = false;

    assert_string_equal(weft_task_name(t), "named");
    assert_int_equal(weft_task_all(harness_loop, all, 4), 1);
    assert_ptr_equal(all[0], t);
    assert_ptr_equal(weft_future_task(weft_task_future(t)), t);
    harness_run_until(harness_loop, &never, 30);
    assert_true(weft_future_done(weft_task_future(t)));
    assert_int_equal(weft_future_result(weft_task_future(t)), (intptr_t)t);
    assert_int_equal(weft_task_all(harness_loop, all, 4), 0);
    assert_null(weft_task_current());
    weft_task_unref(t);
}

static intptr_t
never_runs(void *arg)
{
    *(bool *)arg = true;
    return 0;
}

static void
test_cancel_before_start_does_not_run(void **state)
{
    bool ran = false;
    struct weft_task *t = weft_task_spawn(harness_loop, never_runs, &ran, NULL);

    assert_true(weft_task_cancel(t));
    harness_run_for(harness_loop, 20);
    assert_false(ran);
    assert_true(weft_future_cancelled(weft_task_future(t)));
    weft_task_unref(t);
}

static int reported;
static char reported_name[32];

static void
on_error(struct weft_loop *l, const struct weft_error_context *ctx, void *arg)
{
    reported++;
    assert_int_equal(ctx->error, -EPIPE);
    assert_non_null(ctx->task);
    snprintf(reported_name, sizeof(reported_name), "%s", weft_task_name(ctx->task));
}

static void
test_failed_task_never_awaited_is_reported(void **state)
{
    struct weft_task_options opt = { .name = "forgotten" };
    struct weft_task *t;

    reported = 0;
    weft_loop_set_error_handler(harness_loop, on_error, NULL);
    t = weft_task_spawn(harness_loop, fail_after, (void *)(uintptr_t)5, &opt);
    weft_task_unref(t);                 /* fire and forget */
    harness_run_for(harness_loop, 50);
    assert_int_equal(reported, 1);
    assert_string_equal(reported_name, "forgotten");

    /* Awaited (result read): not reported. */
    t = weft_task_spawn(harness_loop, fail_after, (void *)(uintptr_t)5, NULL);
    harness_run_for(harness_loop, 50);
    assert_int_equal(weft_future_result(weft_task_future(t)), -EPIPE);
    weft_task_unref(t);
    assert_int_equal(reported, 1);
}

static intptr_t
self_cancel(void *arg)
{
    weft_task_cancel(weft_task_current());
    if (weft_sleep(1) != -ECANCELED)
        return 1;
    /* The task may carry on after a cancel. */
    if (weft_sleep(1) != 0)
        return 2;
    return 3;
}

static void
test_task_may_ignore_cancel(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, self_cancel, NULL, 2000), 3);
}

/* ---- cancellation with a message (Task.cancel(msg)) ---- */

/* Sleeps; once cancelled, says the message it was cancelled with. */
static intptr_t
say_why(void *arg)
{
    int rc = weft_sleep(5000);
    const char *why = weft_task_cancel_message(weft_task_current());

    (void)arg;
    harness_say("sleep: %d, why: %s\n", rc, why != NULL ? why : "(none)");
    return rc;
}

static intptr_t
cancel_msg_main(void *arg)
{
    char msg[32] = "shutting down";
    struct weft_task *t = weft_task_spawn(harness_loop, say_why, NULL, NULL);
    struct weft_task *u = weft_task_spawn(harness_loop, say_why, NULL, NULL);

    (void)arg;
    assert_null(weft_task_cancel_message(t));
    weft_sleep(10);
    assert_true(weft_task_cancel_msg(t, "first"));
    assert_true(weft_task_cancel_msg(t, msg));          /* the last request's message wins */
    strcpy(msg, "overwritten");                         /* it was copied */
    assert_int_equal(weft_await(weft_task_future(t)), -ECANCELED);
    assert_string_equal(weft_task_cancel_message(t), "shutting down");
    /* Done: no request is made, the message stays. */
    assert_false(weft_task_cancel_msg(t, "too late"));
    assert_string_equal(weft_task_cancel_message(t), "shutting down");
    assert_int_equal(weft_task_cancelling(t), 2);

    /* A plain cancel after one with a message clears it, as cancel() does. */
    assert_true(weft_task_cancel_msg(u, "deadline"));
    assert_true(weft_task_cancel(u));
    assert_int_equal(weft_await(weft_task_future(u)), -ECANCELED);
    assert_null(weft_task_cancel_message(u));
    weft_task_unref(t);
    weft_task_unref(u);
    return 0;
}

static void
test_cancel_with_a_message(void **state)
{
    assert_int_equal(harness_run_task(harness_loop, cancel_msg_main, NULL, 5000), 0);
    assert_string_equal(harness_out, "sleep: -125, why: shutting down\n"
                                     "sleep: -125, why: (none)\n");
}

/* A task on a small stack that overflows dies of SIGSEGV in a forked child. */
static int __attribute__((noinline))
deep(volatile char *p, int n)
{
    volatile char buf[256];

    if (n == -1)
        return 0;
    buf[0] = p ? p[0] : 1;
    return deep(buf, n + 1) + buf[2];
}

static intptr_t
overflow_task(void *arg)
{
    return deep(NULL, 0);
}

static void
test_task_stack_overflow_is_sigsegv(void **state)
{
    pid_t pid;
    int status;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct weft_task_options opt = { .stack_size = 16384 };

        signal(SIGSEGV, SIG_DFL);
        weft_task_spawn(harness_loop, overflow_task, NULL, &opt);
        harness_run_for(harness_loop, 200);
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
#ifdef WEFT_SANITIZE
    assert_true((WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) ||
                (WIFEXITED(status) && WEXITSTATUS(status) != 0));
#else
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
#endif
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, harness_setup, harness_teardown)
        T(test_gather_factorials_interleave_in_order),
        T(test_wait_with_timeout_gives_done_and_pending),
        T(test_wait_first_completed),
        T(test_wait_for_cancels_and_child_sees_it),
        T(test_wait_for_gather_cancels_children),
        T(test_cancel_me_order_of_events),
        T(test_shield_keeps_inner_running),
        T(test_gather_first_error_propagates),
        T(test_cancelling_gather_cancels_children),
        T(test_as_completed_in_finishing_order),
        T(test_current_and_all_tasks),
        T(test_cancel_before_start_does_not_run),
        T(test_failed_task_never_awaited_is_reported),
        T(test_task_may_ignore_cancel),
        T(test_cancel_with_a_message),
        T(test_task_stack_overflow_is_sigsegv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
