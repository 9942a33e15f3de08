/* SPDX-License-Identifier: MIT */
/* test_stream_wait.c: a reader's wait without a future: park and wake, cancel, timeouts, one reader. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include "harness.h"
#include "streams/stream-int.h"
#include "stream_pair.h"
#include "coro/task-int.h"

/* ---- weft__task_park / weft__task_wake ---- */

struct parked {
    struct weft_task *t;
    intptr_t got;
    bool done;
};

static intptr_t
parker(void *arg)
{
    struct parked *pk = arg;

    pk->got = weft__task_park();
    pk->done = true;
    return 0;
}

static struct weft_task *
spawn_parker(struct weft_loop *loop, struct parked *pk)
{
    *pk = (struct parked){ .got = 12345 };
    pk->t = weft_task_spawn(loop, parker, pk, NULL);
    assert_non_null(pk->t);
    harness_run_for(loop, 5);           /* it runs and parks */
    assert_false(pk->done);
    return pk->t;
}

static void
test_wake_resumes_through_the_loop_and_the_first_wake_wins(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct parked pk;

    (void)state;
    spawn_parker(loop, &pk);
    assert_true(weft__task_wake(pk.t, 7));
    assert_false(weft__task_wake(pk.t, 8));     /* already woken */
    assert_false(pk.done);                      /* never inline */
    assert_int_equal(harness_run_until(loop, &pk.done, 1000), 0);
    assert_int_equal(pk.got, 7);
    assert_false(weft__task_wake(pk.t, 9));     /* not parked any more */
    weft_task_unref(pk.t);
    weft_loop_free(loop);
}

static void
test_cancel_of_a_parked_task_returns_ecanceled(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct parked pk;

    (void)state;
    spawn_parker(loop, &pk);
    assert_true(weft_task_cancel(pk.t));
    assert_false(weft__task_wake(pk.t, 1));     /* the cancel's wake-up is queued */
    assert_int_equal(harness_run_until(loop, &pk.done, 1000), 0);
    assert_int_equal(pk.got, -ECANCELED);
    weft_task_unref(pk.t);
    weft_loop_free(loop);
}

static void
test_cancel_after_a_wake_not_yet_run_wins(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct parked pk;

    (void)state;
    spawn_parker(loop, &pk);
    assert_true(weft__task_wake(pk.t, 3));
    assert_true(weft_task_cancel(pk.t));
    assert_int_equal(harness_run_until(loop, &pk.done, 1000), 0);
    assert_int_equal(pk.got, -ECANCELED);
    harness_run_for(loop, 5);                   /* and it is resumed only once */
    weft_task_unref(pk.t);
    weft_loop_free(loop);
}

static intptr_t
self_cancel_then_park(void *arg)
{
    (void)arg;
    weft_task_cancel(weft_task_current());
    return weft__task_park();
}

static void
test_park_with_a_cancel_pending_returns_at_once(void **state)
{
    struct weft_loop *loop = harness_loop_new();

    (void)state;
    assert_int_equal(harness_run_task(loop, self_cancel_then_park, NULL, 1000), -ECANCELED);
    assert_int_equal(weft__task_park(), -WEFT_ENOTASK);
    weft_loop_free(loop);
}

static void
test_a_loop_freed_with_a_parked_task_leaks_nothing(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct parked pk;

    (void)state;
    spawn_parker(loop, &pk);
    assert_true(weft__task_wake(pk.t, 1));      /* queued, never run */
    weft_task_unref(pk.t);
    weft_loop_free(loop);                       /* the sanitizer run checks for leaks */
}

/* ---- the reader ---- */

/* The fixture: tests/harness/stream_pair.h, the factory given NULL options. */

struct later {
    struct stream_pair *p;
    unsigned ms;
    const char *text;
};

static intptr_t
send_later(void *arg)
{
    struct later *l = arg;

    if (weft_sleep(l->ms) < 0)
        return -ECANCELED;
    assert_int_equal(send(l->p->peer, l->text, strlen(l->text), MSG_NOSIGNAL),
                     (ssize_t)strlen(l->text));
    return 0;
}

static int
body_timeouts(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    static struct later l1, l2;
    char buf[16];
    uint64_t t0 = weft_loop_time(p->loop);

    (void)w;
    /* Nothing comes: the wait ends with -ETIMEDOUT, within generous bounds. */
    weft_reader_set_timeout(r, 50);
    assert_int_equal(weft_reader_read(r, buf, sizeof(buf)), -ETIMEDOUT);
    assert_true(weft_loop_time(p->loop) - t0 >= 40);
    assert_true(weft_loop_time(p->loop) - t0 < 2000);
    assert_null(R2S(r)->rtask);                 /* the waiter left no trace */

    /* Data before the deadline wins; its timer must not fire into a later wait. */
    weft_reader_set_timeout(r, 100);
    l1 = (struct later){ p, 5, "one" };
    weft_task_unref(weft_task_spawn(p->loop, send_later, &l1, NULL));
    assert_int_equal(weft_reader_read(r, buf, sizeof(buf)), 3);
    weft_reader_set_timeout(r, 0);
    l2 = (struct later){ p, 250, "two" };
    weft_task_unref(weft_task_spawn(p->loop, send_later, &l2, NULL));
    assert_int_equal(weft_reader_read(r, buf, sizeof(buf)), 3);
    assert_memory_equal(buf, "two", 3);
    return 0;
}

static void
test_read_timeouts_and_no_stray_timer(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_timeouts), 0);
}

static intptr_t
read_some(void *arg)
{
    char buf[16];

    return weft_reader_read(arg, buf, sizeof(buf));
}

static int
body_one_reader(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    struct weft_task *t = weft_task_spawn(p->loop, read_some, r, NULL);
    char buf[16];

    (void)w;
    weft_sleep(10);
    /* A second reader while one waits: -EBUSY, and the first still gets the data. */
    assert_int_equal(weft_reader_read(r, buf, sizeof(buf)), -EBUSY);
    assert_int_equal(send(p->peer, "abc", 3, MSG_NOSIGNAL), 3);
    weft_sleep(20);
    assert_true(weft_future_done(weft_task_future(t)));
    assert_int_equal(weft_future_result(weft_task_future(t)), 3);
    weft_task_unref(t);
    /* Then a cancelled wait with a timeout armed: -ECANCELED, no trace, data kept. */
    weft_reader_set_timeout(r, 30);
    t = weft_task_spawn(p->loop, read_some, r, NULL);
    weft_sleep(5);
    weft_task_cancel(t);
    weft_sleep(60);                             /* past the deadline: no stray wake-up */
    assert_int_equal(weft_future_result(weft_task_future(t)), -ECANCELED);
    weft_task_unref(t);
    assert_null(R2S(r)->rtask);
    weft_reader_set_timeout(r, 0);
    assert_int_equal(send(p->peer, "xy", 2, MSG_NOSIGNAL), 2);
    assert_int_equal(weft_reader_read(r, buf, sizeof(buf)), 2);
    /* EOF wakes a parked reader with 0. */
    t = weft_task_spawn(p->loop, read_some, r, NULL);
    weft_sleep(5);
    shutdown(p->peer, SHUT_WR);
    weft_sleep(20);
    assert_int_equal(weft_future_result(weft_task_future(t)), 0);
    weft_task_unref(t);
    return 0;
}

static void
test_one_reader_at_a_time_cancel_and_eof(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_one_reader), 0);
}

static intptr_t
reset_peer(void *arg)
{
    struct stream_pair *p = arg;
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    weft_sleep(10);
    setsockopt(p->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(p->peer);
    p->peer = -1;
    return 0;
}

static int
body_reset_wakes(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    char buf[16];

    (void)w;
    weft_task_unref(weft_task_spawn(p->loop, reset_peer, p, NULL));
    assert_int_equal(weft_reader_read(r, buf, sizeof(buf)), -ECONNRESET);
    assert_null(R2S(r)->rtask);
    return 0;
}

static void
test_a_reset_wakes_the_parked_reader_with_the_error(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_reset_wakes), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wake_resumes_through_the_loop_and_the_first_wake_wins),
        cmocka_unit_test(test_cancel_of_a_parked_task_returns_ecanceled),
        cmocka_unit_test(test_cancel_after_a_wake_not_yet_run_wins),
        cmocka_unit_test(test_park_with_a_cancel_pending_returns_at_once),
        cmocka_unit_test(test_a_loop_freed_with_a_parked_task_leaks_nothing),
#define T(name) cmocka_unit_test_setup_teardown(name, stream_pair_setup_null_opts, stream_pair_teardown)
        T(test_read_timeouts_and_no_stray_timer),
        T(test_one_reader_at_a_time_cancel_and_eof),
        T(test_a_reset_wakes_the_parked_reader_with_the_error),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
