/* SPDX-License-Identifier: MIT */
/* run.c: asyncio.run and loop.run_until_complete over the loop and tasks. */
#include <errno.h>
#include <stdlib.h>

#include <weft/future.h>
#include <weft/loop.h>
#include <weft/task.h>

static void
stop_loop(struct weft_future *f, void *arg)
{
    (void)f;
    weft_loop_stop(arg);
}

int
weft_run_until_complete(struct weft_loop *loop, struct weft_future *f)
{
    int rc;

    if (loop == NULL || f == NULL || weft_future_loop(f) != loop)
        return -EINVAL;
    if (weft_loop_is_running(loop))
        return -EBUSY;
    if (weft_future_done(f))
        return 0;
    rc = weft_future_add_done_callback(f, stop_loop, loop);
    if (rc < 0)
        return rc;
    rc = weft_loop_run(loop);
    if (weft_future_done(f))
        return 0;
    /* Stopped by someone else (weft_loop_stop) or a failing event base. */
    weft_future_remove_done_callback(f, stop_loop, loop);
    return rc < 0 ? rc : -EINTR;
}

/*
 * Cancel every unfinished task and run the loop until they are all done
 * (asyncio.run's _cancel_all_tasks): one round, as asyncio does; what they
 * spawn meanwhile is freed with the loop.
 */
static void
cancel_all(struct weft_loop *loop)
{
    size_t n = weft_task_all(loop, NULL, 0), got;
    struct weft_task **tasks;
    struct weft_future **futs, *g;

    if (n == 0)
        return;
    tasks = calloc(n, sizeof(*tasks));
    futs = calloc(n, sizeof(*futs));
    if (tasks == NULL || futs == NULL)
        goto out;               /* no memory: the loop frees them as it goes */
    got = weft_task_all(loop, tasks, n);
    if (got < n)
        n = got;
    for (size_t i = 0; i < n; i++) {
        futs[i] = weft_task_future(tasks[i]);
        weft_task_cancel(tasks[i]);
    }
    g = weft_gather_new(loop, futs, n, WEFT_GATHER_RETURN_ERRORS);
    if (g != NULL) {
        (void)weft_run_until_complete(loop, g);
        weft_future_unref(g);
    }
out:
    free(tasks);
    free(futs);
}

intptr_t
weft_run(weft_task_fn *main, void *arg)
{
    struct weft_loop *loop;
    struct weft_task *t;
    intptr_t result;
    int rc;

    if (main == NULL)
        return -EINVAL;
    loop = weft_loop_new();
    if (loop == NULL)
        return -ENOMEM;
    t = weft_task_spawn(loop, main, arg, NULL);
    if (t == NULL) {
        result = errno ? -errno : -ENOMEM;
        weft_loop_free(loop);
        return result;
    }
    rc = weft_run_until_complete(loop, weft_task_future(t));
    result = rc < 0 ? rc : weft_future_result(weft_task_future(t));
    if (rc < 0)
        weft_task_cancel(t);
    cancel_all(loop);
    weft_task_unref(t);
    weft_loop_free(loop);
    return result;
}
