/* SPDX-License-Identifier: MIT */
/*
 * semaphore.c: the tutorial's Semaphore(5) over 20 tasks (002): each api_test holds the
 * semaphore for one step, so the 20 run five at a time, in four rounds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

#include "common.h"

/* The tutorial's api_test sleeps a second; pass a step in ms to go faster. */
static unsigned step_ms = 1000;

#define NTASKS 20
#define PERMITS 5

struct pool {
    struct weft_semaphore *sem;
    unsigned now, most;                 /* tasks inside the semaphore: now, and at most */
};

struct api_test {
    struct pool *p;
    int i;
};

/* async with sem: await asyncio.sleep(1); print(...) */
static intptr_t
api_test(void *arg)
{
    const struct api_test *a = arg;
    struct pool *p = a->p;
    int rc = weft_semaphore_acquire(p->sem);

    if (rc < 0)
        return rc;
    if (++p->now > p->most)
        p->most = p->now;
    rc = weft_sleep(step_ms);
    p->now--;
    weft_semaphore_release(p->sem);
    if (rc == 0)
        printf("The Task %d is done\n", a->i);
    return rc;
}

static intptr_t
main_task(void *arg)
{
    struct weft_loop *loop = weft_get_running_loop();
    struct pool *p = arg;
    struct api_test args[NTASKS];
    void *argp[NTASKS];
    uint64_t start = weft_loop_time(loop);
    int rc;

    for (int i = 0; i < NTASKS; i++) {
        args[i] = (struct api_test){ p, i };
        argp[i] = &args[i];
    }
    rc = example_gather_tasks(loop, NTASKS, NULL, api_test, argp, NULL);
    if (rc < 0)
        return rc;
    printf("%d tasks, at most %u at once, in %.1f steps\n", NTASKS, p->most,
           (double)(weft_loop_time(loop) - start) / step_ms);
    return 0;
}

int
main(int argc, char **argv)
{
    struct pool p = { .sem = weft_semaphore_new(PERMITS) };
    int code;

    if (p.sem == NULL)
        return 1;
    code = example_run_number("semaphore", argc, argv,
        "usage: example_semaphore [STEP_MS]\n"
        "20 tasks through Semaphore(5): five at a time, each for one step;\n"
        "STEP_MS: one step (default 1000)\n",
        &step_ms, main_task, &p);
    weft_semaphore_free(p.sem);
    return code;
}
