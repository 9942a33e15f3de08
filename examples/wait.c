/* SPDX-License-Identifier: MIT */
/*
 * wait.c: asyncio.wait (001, 003): two IO tasks of one and two steps; wait with
 * FIRST_COMPLETED returns once the first is done and gives the other as pending, which a
 * second wait (ALL_COMPLETED) then sees finish.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

#include "common.h"

/* The tutorial's steps are a second; pass a step in ms to go faster. */
static unsigned step_ms = 1000;

static const char *const names[] = { "task_1", "task_2" };

/* An IO task of N steps; returns its number. */
static intptr_t
io_task(void *arg)
{
    intptr_t n = (intptr_t)arg;
    int rc;

    printf("IO task %ld started...\n", (long)n);
    rc = weft_sleep((uint64_t)n * step_ms);
    if (rc < 0)
        return rc;
    printf("IO task %ld done after %ld step%s\n", (long)n, (long)n, n == 1 ? "" : "s");
    return n;
}

/* "done [task_1], pending [task_2]" for what weft_wait() gave. */
static void
say(const char *when, struct weft_future *const *f, struct weft_future **done, size_t ndone,
    struct weft_future **pending, size_t npending)
{
    printf("%s: done [", when);
    for (size_t i = 0; i < ndone; i++)
        printf("%s%s", i ? ", " : "", names[done[i] == f[0] ? 0 : 1]);
    printf("], pending [");
    for (size_t i = 0; i < npending; i++)
        printf("%s%s", i ? ", " : "", names[pending[i] == f[0] ? 0 : 1]);
    printf("]\n");
}

static intptr_t
main_task(void *arg)
{
    struct weft_loop *loop = weft_get_running_loop();
    struct weft_task *t[2];
    struct weft_future *f[2], *done[2], *pending[2], *rest[2];
    size_t ndone, npending;
    int rc = -ENOMEM;

    (void)arg;
    t[0] = weft_task_spawn(loop, io_task, (void *)1, NULL);
    t[1] = weft_task_spawn(loop, io_task, (void *)2, NULL);
    if (t[0] == NULL || t[1] == NULL)
        goto out;
    f[0] = weft_task_future(t[0]);
    f[1] = weft_task_future(t[1]);

    rc = weft_wait(f, 2, WEFT_FIRST_COMPLETED, -1, done, &ndone, pending, &npending);
    if (rc < 0)
        goto out;
    say("FIRST_COMPLETED", f, done, ndone, pending, npending);

    for (size_t i = 0; i < npending; i++)
        rest[i] = pending[i];
    rc = weft_wait(rest, npending, WEFT_ALL_COMPLETED, -1, done, &ndone, pending, &npending);
    if (rc < 0)
        goto out;
    say("ALL_COMPLETED", f, done, ndone, pending, npending);
    printf("results: %s %s\n", names[weft_future_result(f[0]) - 1],
           names[weft_future_result(f[1]) - 1]);
out:
    weft_task_unref(t[0]);
    weft_task_unref(t[1]);
    return rc;
}

int
main(int argc, char **argv)
{
    return example_run_number("wait", argc, argv,
        "usage: example_wait [STEP_MS]\n"
        "asyncio.wait with FIRST_COMPLETED, then ALL_COMPLETED, over tasks of 1 and 2 steps;\n"
        "STEP_MS: one step (default 1000)\n",
        &step_ms, main_task, NULL);
}
