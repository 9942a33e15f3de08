/* SPDX-License-Identifier: MIT */
/* coro_task.c: the whole life of a task with a pooled stack: spawn, first run, return, free. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <weft/weft.h>

static long finished;

static intptr_t
trivial(void *arg)
{
    finished++;
    return 0;
}

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spawn batch tasks, run the loop until they are all done. */
static int
round_of(struct weft_loop *loop, long batch)
{
    long target = finished + batch;

    for (long i = 0; i < batch; i++) {
        struct weft_task *t = weft_task_spawn(loop, trivial, NULL, NULL);

        if (t == NULL)
            return -1;
        weft_task_unref(t);             /* fire and forget */
    }
    while (finished < target)
        weft_loop_run_once(loop);
    return 0;
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000, batch = 32;
    struct weft_loop *loop = weft_loop_new();
    uint64_t t0, t1;

    if (loop == NULL || round_of(loop, batch) < 0)    /* fills the stack pool */
        return 1;
    t0 = now_ns();
    for (long done = 0; done < n; done += batch)
        if (round_of(loop, batch) < 0)
            return 1;
    t1 = now_ns();
    printf("weft task: %.0f ns per spawn+run+finish (pooled stack, %ld tasks in batches of %ld)\n",
           (double)(t1 - t0) / (double)n, n, batch);
    weft_loop_free(loop);
    return 0;
}
