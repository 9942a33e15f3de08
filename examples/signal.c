/* SPDX-License-Identifier: MIT */
/* signal.c: signals handled on the loop: an alarm clock (SIGALRM), then SIGINT stops it. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <weft/weft.h>

#include "common.h"

static void
on_alarm(struct weft_loop *loop, int signum, void *arg)
{
    printf("the alarm rang (signal %d)\n", signum);
    /* As if someone pressed Ctrl-C now. */
    kill(getpid(), SIGINT);
}

static void
on_interrupt(struct weft_loop *loop, int signum, void *arg)
{
    printf("SIGINT: stopping the loop\n");
    weft_loop_stop(loop);
}

/* A task that keeps running while we wait: the signals arrive between its sleeps. */
static intptr_t
ticker(void *arg)
{
    int *ticks = arg;

    while (weft_sleep(100) == 0)
        (*ticks)++;
    return 0;
}

int
main(int argc, char **argv)
{
    struct weft_loop *loop;
    struct weft_task *t;
    int ticks = 0;
    int code = example_args(argc, argv, EXAMPLE_ARGS_NONE,
        "usage: example_signal\n"
        "signals handled on the loop: SIGALRM ticks a clock, Ctrl-C (SIGINT) stops it\n");

    if (code >= 0)
        return code;
    loop = example_loop_new("signal");
    if (loop == NULL ||
        weft_loop_add_signal_handler(loop, SIGALRM, on_alarm, NULL) < 0 ||
        weft_loop_add_signal_handler(loop, SIGINT, on_interrupt, NULL) < 0)
        return 1;
    t = weft_task_spawn(loop, ticker, &ticks, NULL);
    if (t == NULL)
        return 1;
    alarm(1);
    printf("waiting for the alarm...\n");
    weft_loop_run(loop);
    printf("the ticker ticked %s\n", ticks > 0 ? "meanwhile" : "never");
    weft_task_cancel(t);
    /* Let the cancelled ticker finish before the loop goes. */
    while (!weft_future_done(weft_task_future(t)))
        weft_loop_run_once(loop);
    weft_task_unref(t);
    weft_loop_free(loop);
    return 0;
}
