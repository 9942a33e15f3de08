/* SPDX-License-Identifier: MIT */
/* test_fault_future.c: a future completed while malloc fails still runs its callbacks. */
/* WRAP: malloc */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>

#include <weft/weft.h>

#include "harness.h"

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);

static bool malloc_fails;

void *
__wrap_malloc(size_t n)
{
    if (malloc_fails) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

static void
done_cb(struct weft_future *f, void *arg)
{
    (void)f;
    ++*(int *)arg;
}

/*
 * Found by tests/fault (poem, the sanitizer build, where the loop keeps no
 * spare handles): when weft_call_soon() found no memory, the done callbacks of
 * a completed future were dropped and its waiter hung forever. Scheduling them
 * now cannot fail.
 */
static void
test_callbacks_run_when_call_soon_has_no_memory(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct weft_future *f[3];
    int ran = 0;

    (void)state;
    for (int i = 0; i < 3; i++) {
        f[i] = weft_future_new(loop);
        assert_non_null(f[i]);
        assert_int_equal(weft_future_add_done_callback(f[i], done_cb, &ran), 0);
    }
    malloc_fails = true;        /* a fresh loop has no spare handle: call_soon mallocs */
    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_future_set_result(f[i], i), 0);
    for (int i = 0; i < 5 && ran < 3; i++)
        weft_loop_run_once(loop);
    malloc_fails = false;
    assert_int_equal(ran, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(weft_future_result(f[i]), i);
        weft_future_unref(f[i]);
    }
    weft_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callbacks_run_when_call_soon_has_no_memory),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
