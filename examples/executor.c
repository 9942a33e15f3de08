/* SPDX-License-Identifier: MIT */
/* executor.c: blocking calls moved to a thread pool with weft_run_in_executor. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft/weft.h>

#include "common.h"

static unsigned step_ms = 1000;

/* Blocks its thread, as time.sleep(1) does in the tutorial. */
static intptr_t
blocking_sleep(void *arg)
{
    usleep(step_ms * 1000);
    return 0;
}

struct factorial_args {
    const char *name;
    int number;
};

static intptr_t
factorial(void *arg)
{
    const struct factorial_args *a = arg;
    struct weft_loop *loop = weft_get_running_loop();
    intptr_t f = 1;

    for (int i = 2; i <= a->number; i++) {
        printf("Task %s: Compute factorial(%d)...\n", a->name, i);
        struct weft_future *done = weft_run_in_executor(loop, blocking_sleep, NULL);
        if (done == NULL)
            return -ENOMEM;
        intptr_t rc = weft_await(done);        /* the loop runs on meanwhile */
        weft_future_unref(done);
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
    struct weft_task *tasks[3] = { NULL };
    struct weft_future *futs[3];
    intptr_t results[3];
    int rc;

    (void)arg;
    rc = weft_loop_set_executor_threads(loop, 3);  /* one per task, like Python's pool */
    for (int i = 0; i < 3 && rc == 0; i++) {
        tasks[i] = weft_task_spawn(loop, factorial, (void *)&args[i], NULL);
        if (tasks[i] == NULL)
            rc = -ENOMEM;
        else
            futs[i] = weft_task_future(tasks[i]);
    }
    if (rc == 0)
        rc = weft_gather(futs, 3, results, 0);
    for (int i = 0; i < 3; i++)
        weft_task_unref(tasks[i]);
    if (rc == 0)
        printf("[%ld, %ld, %ld]\n", (long)results[0], (long)results[1], (long)results[2]);
    return rc;
}

int
main(int argc, char **argv)
{
    return example_run_number("executor", argc, argv,
        "usage: example_executor [STEP_MS]\n"
        "the tutorial's factorials run in a thread pool (run_in_executor);\n"
        "STEP_MS: each step's sleep (default 1000)\n", &step_ms, main_task, NULL);
}
