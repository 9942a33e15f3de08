/* SPDX-License-Identifier: MIT */
/* gather.c: the tutorial's three factorial tasks run concurrently under weft_gather. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

#include "common.h"

/* The tutorial sleeps a second per step; pass a step in ms to go faster. */
static unsigned step_ms = 1000;

struct factorial_args {
    const char *name;
    int number;
};

static intptr_t
factorial(void *arg)
{
    const struct factorial_args *a = arg;
    intptr_t f = 1;

    for (int i = 2; i <= a->number; i++) {
        printf("Task %s: Compute factorial(%d)...\n", a->name, i);
        int rc = weft_sleep(step_ms);          /* other tasks run meanwhile */
        if (rc < 0)
            return rc;
        f *= i;
    }
    printf("Task %s: factorial(%d) = %ld\n", a->name, a->number, (long)f);
    return f;
}

static intptr_t
main_task(void *arg)
{
    static const struct factorial_args args[3] = { { "A", 2 }, { "B", 3 }, { "C", 4 } };
    struct weft_loop *loop = weft_get_running_loop();
    struct weft_task *tasks[3];
    struct weft_future *futs[3];
    intptr_t results[3];
    int rc;

    (void)arg;
    for (int i = 0; i < 3; i++) {
        tasks[i] = weft_task_spawn(loop, factorial, (void *)&args[i], NULL);
        if (tasks[i] == NULL)
            return -ENOMEM;
        futs[i] = weft_task_future(tasks[i]);
    }
    rc = weft_gather(futs, 3, results, 0);
    for (int i = 0; i < 3; i++)
        weft_task_unref(tasks[i]);
    if (rc < 0)
        return rc;
    printf("[%ld, %ld, %ld]\n", (long)results[0], (long)results[1], (long)results[2]);
    return 0;
}

int
main(int argc, char **argv)
{
    return example_run_number("gather", argc, argv,
        "usage: example_gather [STEP_MS]\n"
        "three factorial tasks at once (asyncio.gather);\n"
        "STEP_MS: each step's sleep (default 1000)\n", &step_ms, main_task, NULL);
}
