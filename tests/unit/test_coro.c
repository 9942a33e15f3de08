/* SPDX-License-Identifier: MIT */
/* test_coro.c: the stack switch (registers, FP state), stack pool, guard pages. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coro/coro.h"
#include "harness.h"

struct pingpong {
    struct weft__coro main, co;
    int counter;
    bool finished;
    double fp;
};

static void
pingpong_entry(void *arg)
{
    struct pingpong *p = arg;
    /* Values live across switches in callee-saved registers and FP registers. */
    volatile double acc = 1.5;
    long local = 7;

    for (int i = 0; i < 1000; i++) {
        p->counter++;
        acc += 0.25;
        local += i;
        weft__coro_transfer(&p->co, &p->main);
    }
    p->fp = acc + (double)local;
    p->finished = true;
    weft__coro_exit(&p->co, &p->main);
}

static void
test_switch_round_trips_keep_locals(void **state)
{
    struct weft__stack_pool pool = { .max = 4 };
    struct pingpong p = { .counter = 0 };
    long mine = 42;

    p.co.stack = weft__stack_get(&pool, 0);
    assert_non_null(p.co.stack);
    weft__coro_init(&p.co, pingpong_entry, &p);
    for (int i = 0; i < 1001 && !p.finished; i++) {
        weft__coro_transfer(&p.main, &p.co);
        assert_int_equal(p.counter, i + 1 > 1000 ? 1000 : i + 1);
        mine++;
    }
    assert_true(p.finished);
    assert_int_equal(mine, 42 + 1001);
    /* 1.5 + 1000 * 0.25 + 7 + sum(0..999) */
    assert_true(p.fp == 1.5 + 250.0 + 7.0 + 499500.0);
    weft__stack_put(&pool, p.co.stack);
    weft__stack_pool_clear(&pool);
}

#if defined(__x86_64__)
/* MXCSR rounding control, bits 13-14: 0 nearest, 2 upward, 3 toward zero. */
static int
get_round(void)
{
    return (int)(__builtin_ia32_stmxcsr() >> 13) & 3;
}

static void
set_round(int mode)
{
    __builtin_ia32_ldmxcsr((__builtin_ia32_stmxcsr() & ~(3u << 13)) | ((unsigned)mode << 13));
}

struct fpenv {
    struct weft__coro main, co;
    int seen_round;
};

static void
fpenv_entry(void *arg)
{
    struct fpenv *f = arg;

    /* A new coroutine starts with the default rounding mode... */
    f->seen_round = get_round();
    set_round(2);
    weft__coro_transfer(&f->co, &f->main);
    /* ...and keeps its own across switches. */
    f->seen_round = get_round();
    weft__coro_exit(&f->co, &f->main);
}

static void
test_switch_keeps_fp_control_per_context(void **state)
{
    struct weft__stack_pool pool = { .max = 4 };
    struct fpenv f = { .seen_round = -1 };

    f.co.stack = weft__stack_get(&pool, 0);
    assert_non_null(f.co.stack);
    weft__coro_init(&f.co, fpenv_entry, &f);
    set_round(3);
    weft__coro_transfer(&f.main, &f.co);
    assert_int_equal(f.seen_round, 0);
    assert_int_equal(get_round(), 3);       /* ours came back */
    weft__coro_transfer(&f.main, &f.co);
    assert_int_equal(f.seen_round, 2);
    assert_int_equal(get_round(), 3);
    set_round(0);
    weft__stack_put(&pool, f.co.stack);
    weft__stack_pool_clear(&pool);
}
#else
static void
test_switch_keeps_fp_control_per_context(void **state)
{
    skip();
}
#endif

static void
test_stack_pool_reuses_and_rounds(void **state)
{
    struct weft__stack_pool pool = { .max = 64 };
    struct weft__stack *a, *b, *c;
    long ps = sysconf(_SC_PAGESIZE);

    a = weft__stack_get(&pool, 0);
    assert_non_null(a);
    assert_int_equal(a->size, weft__stack_default_size());
    weft__stack_put(&pool, a);
    b = weft__stack_get(&pool, 0);
    assert_ptr_equal(a, b);                         /* from the pool, no mmap */
    c = weft__stack_get(&pool, 10000);              /* rounded to pages */
    assert_non_null(c);
    assert_int_equal(c->size % (size_t)ps, 0);
    assert_true(c->size >= 10000);
    memset(c->lo, 0xa5, c->size);                   /* all of it is writable */
    weft__stack_put(&pool, b);
    weft__stack_put(&pool, c);
    weft__stack_pool_clear(&pool);
    assert_int_equal(pool.nfree, 0);

    /* A pool of 0 keeps nothing. */
    pool.max = 0;
    a = weft__stack_get(&pool, 0);
    assert_non_null(a);
    weft__stack_put(&pool, a);
    assert_int_equal(pool.nfree, 0);
}

static void
test_many_guarded_stacks(void **state)
{
    struct weft__stack_pool pool = { .max = 5000 };
    enum { N = 3000 };
    struct weft__stack **st = calloc(N, sizeof(*st));

    assert_non_null(st);
    for (int i = 0; i < N; i++) {
        st[i] = weft__stack_get(&pool, 0);
        assert_non_null(st[i]);
        ((volatile char *)st[i]->lo)[st[i]->size - 1] = 1;
    }
    for (int i = 0; i < N; i++)
        weft__stack_put(&pool, st[i]);
    weft__stack_pool_clear(&pool);
    free(st);
}

/* ---- the guard page, in forked children ---- */

static struct weft__coro ovf_main, ovf_co;

static int __attribute__((noinline))
recurse(volatile char *prev, int depth)
{
    volatile char buf[512];

    if (depth == -1)
        return 0;       /* never: keeps the compiler from calling this infinite */
    buf[0] = (char)depth;
    buf[511] = prev ? prev[0] : 0;
    return recurse(buf, depth + 1) + buf[1];
}

static void
overflow_entry(void *arg)
{
    (void)arg;
    recurse(NULL, 0);
    weft__coro_exit(&ovf_co, &ovf_main);
}

static void
touch_below_entry(void *arg)
{
    volatile char *lo = arg;

    lo[-1] = 1;         /* the guard page */
    weft__coro_exit(&ovf_co, &ovf_main);
}

/* Run entry on a fresh coroutine in a child; return its wait status. */
static int
run_in_child(weft__coro_entry_fn *entry, bool pass_lo)
{
    pid_t pid;
    int status = 0;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct weft__stack_pool pool = { .max = 1 };

        signal(SIGSEGV, SIG_DFL);       /* cmocka catches it otherwise */
        ovf_co.stack = weft__stack_get(&pool, 0);
        if (ovf_co.stack == NULL)
            _exit(3);
        weft__coro_init(&ovf_co, entry, pass_lo ? ovf_co.stack->lo : NULL);
        weft__coro_transfer(&ovf_main, &ovf_co);
        _exit(0);       /* the child must never get here */
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* ASan builds may catch the overflow themselves and exit with an error. */
static void
assert_died_of_overflow(int status)
{
#ifdef WEFT_SANITIZE
    assert_true((WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) ||
                (WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 3));
#else
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
#endif
}

static void
test_stack_overflow_kills_child_with_sigsegv(void **state)
{
    assert_died_of_overflow(run_in_child(overflow_entry, false));
}

static void
test_write_below_stack_hits_guard_page(void **state)
{
    assert_died_of_overflow(run_in_child(touch_below_entry, true));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_switch_round_trips_keep_locals),
        cmocka_unit_test(test_switch_keeps_fp_control_per_context),
        cmocka_unit_test(test_stack_pool_reuses_and_rounds),
        cmocka_unit_test(test_many_guarded_stacks),
        cmocka_unit_test(test_stack_overflow_kills_child_with_sigsegv),
        cmocka_unit_test(test_write_below_stack_hits_guard_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
