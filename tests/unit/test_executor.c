/* SPDX-License-Identifier: MIT */
/* test_executor.c: run_in_executor, call_soon_threadsafe, run_coroutine_threadsafe. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <weft/weft.h>

#include "harness.h"

static int concurrent, max_concurrent;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static intptr_t
blocking_sleep(void *arg)
{
    pthread_mutex_lock(&mu);
    if (++concurrent > max_concurrent)
        max_concurrent = concurrent;
    pthread_mutex_unlock(&mu);
    usleep((useconds_t)(uintptr_t)arg * 1000);     /* blocks this pool thread */
    pthread_mutex_lock(&mu);
    concurrent--;
    pthread_mutex_unlock(&mu);
    return 4321;
}

static int ticks;

static intptr_t
ticker(void *arg)
{
    for (;;) {
        if (weft_sleep(10) < 0)
            return 0;
        ticks++;
    }
}

static intptr_t
executor_main(void *arg)
{
    struct weft_task *tick = weft_task_spawn(harness_loop, ticker, NULL, NULL);
    struct weft_future *f = weft_run_in_executor(harness_loop, blocking_sleep, (void *)(uintptr_t)300);

    assert_non_null(f);
    assert_int_equal(weft_await(f), 4321);
    weft_future_unref(f);
    /* The loop kept running other tasks meanwhile: about 30 ticks, surely > 5. */
    assert_true(ticks > 5);
    weft_task_cancel(tick);
    weft_await(weft_task_future(tick));
    weft_task_unref(tick);
    return 0;
}

static void
test_run_in_executor_keeps_loop_running(void **state)
{
    ticks = 0;
    assert_int_equal(harness_run_task(harness_loop, executor_main, NULL, 5000), 0);
}

static intptr_t
fails(void *arg)
{
    return -EIO;
}

static intptr_t
pool_size_main(void *arg)
{
    struct weft_future *f[3];

    for (int i = 0; i < 3; i++)
        f[i] = weft_run_in_executor(harness_loop, blocking_sleep, (void *)(uintptr_t)100);
    assert_int_equal(weft_gather(f, 3, NULL, 0), 0);
    for (int i = 0; i < 3; i++)
        weft_future_unref(f[i]);
    f[0] = weft_run_in_executor(harness_loop, fails, NULL);
    assert_int_equal(weft_await(f[0]), -EIO);
    weft_future_unref(f[0]);
    return 0;
}

static void
test_pool_size_is_configurable(void **state)
{
    max_concurrent = 0;
    assert_int_equal(weft_loop_set_executor_threads(harness_loop, 0), -EINVAL);
    assert_int_equal(weft_loop_set_executor_threads(harness_loop, 1), 0);
    assert_int_equal(harness_run_task(harness_loop, pool_size_main, NULL, 5000), 0);
    assert_int_equal(max_concurrent, 1);            /* one thread: one at a time */
    assert_int_equal(weft_loop_set_executor_threads(harness_loop, 4), -WEFT_ESTATE);
}

static void
test_two_threads_run_two_at_once(void **state)
{
    max_concurrent = 0;
    assert_int_equal(weft_loop_set_executor_threads(harness_loop, 2), 0);
    assert_int_equal(harness_run_task(harness_loop, pool_size_main, NULL, 5000), 0);
    assert_int_equal(max_concurrent, 2);
}

static void
test_loop_free_joins_pool_with_work_pending(void **state)
{
    struct weft_future *f;

    weft_loop_set_executor_threads(harness_loop, 1);
    f = weft_run_in_executor(harness_loop, blocking_sleep, (void *)(uintptr_t)50);
    weft_future_unref(f);
    f = weft_run_in_executor(harness_loop, blocking_sleep, (void *)(uintptr_t)50);
    weft_future_unref(f);
    /* teardown frees the loop now: joins the thread, drops the second job. */
}

/* ---- another thread ---- */

struct from_thread {
    pthread_t loop_thread;
    bool on_loop_thread;
    bool done;
    intptr_t result;
    int rc;
};

static void
threadsafe_cb(void *arg)
{
    struct from_thread *ft = arg;

    ft->on_loop_thread = pthread_equal(pthread_self(), ft->loop_thread);
    ft->done = true;
}

static void *
call_from_thread(void *arg)
{
    usleep(20000);
    weft_call_soon_threadsafe(harness_loop, threadsafe_cb, arg);
    return NULL;
}

static void
test_call_soon_threadsafe_from_another_thread(void **state)
{
    struct from_thread ft = { .loop_thread = pthread_self() };
    pthread_t th;

    assert_int_equal(pthread_create(&th, NULL, call_from_thread, &ft), 0);
    assert_int_equal(harness_run_until(harness_loop, &ft.done, 5000), 0);
    pthread_join(th, NULL);
    assert_true(ft.on_loop_thread);
}

static intptr_t
coro_on_loop(void *arg)
{
    if (weft_sleep(10) < 0)
        return -ECANCELED;
    return weft_task_current() != NULL ? 99 : -1;
}

static void *
submit_from_thread(void *arg)
{
    struct from_thread *ft = arg;

    ft->rc = weft_run_coroutine_threadsafe(harness_loop, coro_on_loop, NULL, &ft->result);
    __atomic_store_n(&ft->done, true, __ATOMIC_SEQ_CST);
    return NULL;
}

static void
test_run_coroutine_threadsafe_returns_result(void **state)
{
    struct from_thread ft = { .result = -1 };
    pthread_t th;

    assert_int_equal(pthread_create(&th, NULL, submit_from_thread, &ft), 0);
    assert_int_equal(harness_run_until(harness_loop, &ft.done, 5000), 0);
    pthread_join(th, NULL);
    assert_int_equal(ft.rc, 0);
    assert_int_equal(ft.result, 99);
}

/* The non-blocking form: poll, wait with a timeout, cancel - all from another thread. */
static intptr_t
coro_forever(void *arg)
{
    (void)arg;
    return weft_sleep(60000) < 0 ? -ECANCELED : 1;
}

struct nowait_run {
    bool done;
    int quick_rc, quick_timeout_rc, slow_timeout_rc, slow_rc;
    bool polled_early, quick_done_after, cancel_sent, cancel_after_done;
    intptr_t quick, slow;
};

static void *
nowait_from_thread(void *arg)
{
    struct nowait_run *nr = arg;
    struct weft_thread_future *quick, *slow;

    quick = weft_run_coroutine_threadsafe_nowait(harness_loop, coro_on_loop, NULL);
    slow = weft_run_coroutine_threadsafe_nowait(harness_loop, coro_forever, NULL);
    if (quick != NULL && slow != NULL) {
        nr->polled_early = weft_thread_future_done(slow);
        nr->slow_timeout_rc = weft_thread_future_wait(slow, 20, &nr->slow);
        nr->quick_rc = weft_thread_future_wait(quick, -1, &nr->quick);
        nr->quick_done_after = weft_thread_future_done(quick);
        nr->quick_timeout_rc = weft_thread_future_wait(quick, 0, &nr->quick);
        nr->cancel_sent = weft_thread_future_cancel(slow);
        nr->slow_rc = weft_thread_future_wait(slow, -1, &nr->slow);
        nr->cancel_after_done = weft_thread_future_cancel(slow);
    }
    weft_thread_future_free(quick);
    weft_thread_future_free(slow);
    __atomic_store_n(&nr->done, true, __ATOMIC_SEQ_CST);
    return NULL;
}

static void
test_run_coroutine_threadsafe_nowait(void **state)
{
    struct nowait_run nr = { 0 };
    pthread_t th;

    assert_null(weft_run_coroutine_threadsafe_nowait(NULL, coro_on_loop, NULL));
    assert_int_equal(errno, EINVAL);
    assert_int_equal(pthread_create(&th, NULL, nowait_from_thread, &nr), 0);
    assert_int_equal(harness_run_until(harness_loop, &nr.done, 10000), 0);
    pthread_join(th, NULL);
    assert_false(nr.polled_early);
    assert_int_equal(nr.slow_timeout_rc, -ETIMEDOUT);
    assert_int_equal(nr.quick_rc, 0);
    assert_int_equal(nr.quick, 99);
    assert_true(nr.quick_done_after);
    assert_int_equal(nr.quick_timeout_rc, 0);     /* done: no wait at all */
    assert_true(nr.cancel_sent);
    assert_int_equal(nr.slow_rc, 0);
    assert_int_equal(nr.slow, -ECANCELED);
    assert_false(nr.cancel_after_done);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, harness_setup, harness_teardown)
        T(test_run_in_executor_keeps_loop_running),
        T(test_pool_size_is_configurable),
        T(test_two_threads_run_two_at_once),
        T(test_loop_free_joins_pool_with_work_pending),
        T(test_call_soon_threadsafe_from_another_thread),
        T(test_run_coroutine_threadsafe_returns_result),
        T(test_run_coroutine_threadsafe_nowait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
