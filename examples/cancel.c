/* SPDX-License-Identifier: MIT */
/*
 * cancel.c: the tutorial's cancel_me and shield (003): a task cancelled from outside
 * cleans up and ends cancelled; a shielded one keeps running when its shield is
 * cancelled. Last, the same cancel with a message (Task.cancel(msg)), which the task and
 * its awaiter can read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

#include "common.h"

/* The tutorial waits a second before cancelling and the task sleeps ten; pass a step in ms
 * to go faster. */
static unsigned step_ms = 1000;

/* try: sleep; except CancelledError: say so, raise; finally: say so. */
static intptr_t
cancel_me(void *arg)
{
    int rc;

    (void)arg;
    printf("cancel_me(): before sleep\n");
    rc = weft_sleep(10 * step_ms);
    if (rc == -ECANCELED) {
        const char *why = weft_task_cancel_message(weft_task_current());

        printf("cancel_me(): cancel sleep%s%s\n", why ? ": " : "", why ? why : "");
    }
    printf("cancel_me(): after sleep\n");
    return rc;
}

/* task.cancel(); await task: CancelledError. */
static int
plain(struct weft_loop *loop, const char *msg)
{
    struct weft_task *task = weft_task_spawn(loop, cancel_me, NULL, NULL);
    intptr_t rc;

    if (task == NULL)
        return -ENOMEM;
    weft_sleep(step_ms);
    if (msg != NULL)
        weft_task_cancel_msg(task, msg);
    else
        weft_task_cancel(task);
    rc = weft_await(weft_task_future(task));
    if (rc == -ECANCELED && msg == NULL)
        printf("main(): cancel_me is cancelled now\n");
    else if (rc == -ECANCELED)
        printf("main(): cancel_me is cancelled now: %s\n", weft_task_cancel_message(task));
    weft_task_unref(task);
    return rc == -ECANCELED ? 0 : (int)rc;
}

/* shield(task).cancel(): the shield's awaiter is cancelled, the task is not. */
static int
shielded(struct weft_loop *loop)
{
    struct weft_task *task = weft_task_spawn(loop, cancel_me, NULL, NULL);
    struct weft_future *shield;
    intptr_t rc;

    if (task == NULL)
        return -ENOMEM;
    shield = weft_shield(weft_task_future(task));
    if (shield == NULL) {
        weft_task_cancel(task);
        weft_task_unref(task);
        return -ENOMEM;
    }
    weft_sleep(step_ms);
    weft_future_cancel(shield);
    if (weft_await(shield) == -ECANCELED)
        printf("main(): cancel_me_shield is cancelled now\n");
    rc = weft_await(weft_task_future(task));     /* it sleeps on, and finishes */
    if (rc == -ECANCELED)
        printf("main(): cancel_me is cancelled now\n");
    weft_future_unref(shield);
    weft_task_unref(task);
    return rc < 0 ? (int)rc : 0;
}

static intptr_t
main_task(void *arg)
{
    struct weft_loop *loop = weft_get_running_loop();
    int rc;

    (void)arg;
    if ((rc = plain(loop, NULL)) < 0 || (rc = shielded(loop)) < 0)
        return rc;
    return plain(loop, "the operator said stop");
}

int
main(int argc, char **argv)
{
    return example_run_number("cancel", argc, argv,
        "usage: example_cancel [STEP_MS]\n"
        "cancel_me cancelled, then shielded, then cancelled with a message;\n"
        "STEP_MS: the wait before each cancel, the task sleeps ten (default 1000)\n",
        &step_ms, main_task, NULL);
}
