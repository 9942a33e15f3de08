/* SPDX-License-Identifier: MIT */
/* coro_switch.c: the cost of one stack switch, weft's assembly beside ucontext's swapcontext. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <ucontext.h>

#include "coro/coro.h"

static struct weft__coro_ctx main_ctx, co_ctx;
static ucontext_t main_uc, co_uc;

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
bounce(void *arg)
{
    for (;;)
        weft__coro_switch(&co_ctx, &main_ctx);
}

static void
uc_bounce(void)
{
    for (;;)
        swapcontext(&co_uc, &main_uc);
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    struct weft__stack_pool pool = { .max = 2 };
    struct weft__stack *st = weft__stack_get(&pool, 0), *st2 = weft__stack_get(&pool, 0);
    uint64_t t0, t1;

    if (st == NULL || st2 == NULL)
        return 1;
    weft__coro_ctx_init(&co_ctx, st->lo, st->size, bounce, NULL);
    weft__coro_switch(&main_ctx, &co_ctx);      /* warm up */
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        weft__coro_switch(&main_ctx, &co_ctx);
    t1 = now_ns();
    /* Each round trip is two switches. */
    printf("weft switch: %.2f ns per switch (%ld switches)\n",
           (double)(t1 - t0) / (2.0 * (double)n), 2 * n);

    getcontext(&co_uc);
    co_uc.uc_stack.ss_sp = st2->lo;
    co_uc.uc_stack.ss_size = st2->size;
    makecontext(&co_uc, uc_bounce, 0);
    swapcontext(&main_uc, &co_uc);
    n /= 10;
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        swapcontext(&main_uc, &co_uc);
    t1 = now_ns();
    printf("ucontext swapcontext: %.2f ns per switch (%ld switches)\n",
           (double)(t1 - t0) / (2.0 * (double)n), 2 * n);
    return 0;
}
