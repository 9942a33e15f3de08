/* SPDX-License-Identifier: MIT */
/* timeout.c: timeout scopes (asyncio.timeout): a deadline that cancels the task, and takes the cancel back. */
#include <errno.h>

#include <weft/error.h>
#include <weft/loop.h>
#include <weft/task.h>

/*
 * As asyncio's Timeout: when the deadline passes the scope cancels its
 * task (one more cancel request); at the exit it takes that request back
 * (weft_task_uncancel) and, if no other request is left and the code inside
 * ended in -ECANCELED, says -ETIMEDOUT instead. So any suspending call is
 * bounded without knowing about timeouts, and scopes nest.
 */

static void
expire(void *arg)
{
    struct weft_timeout *to = arg;

    to->timer = NULL;
    to->expired = true;
    weft_task_cancel(to->task);
}

static int
arm(struct weft_timeout *to, bool at, uint64_t v)
{
    struct weft_loop *loop = weft_get_running_loop();

    to->timer = at ? weft_call_at(loop, v, expire, to) : weft_call_later(loop, v, expire, to);
    return to->timer != NULL ? 0 : -ENOMEM;
}

static int
enter(struct weft_timeout *to, bool at, int64_t v)
{
    to->task = weft_task_current();
    to->timer = NULL;
    to->expired = false;
    if (to->task == NULL)
        return -WEFT_ENOTASK;
    return v < 0 && !at ? 0 : arm(to, at, (uint64_t)v);
}

int
weft_timeout_enter(struct weft_timeout *to, int64_t ms)
{
    return enter(to, false, ms);
}

int
weft_timeout_at_enter(struct weft_timeout *to, uint64_t when_ms)
{
    return enter(to, true, when_ms > INT64_MAX ? INT64_MAX : (int64_t)when_ms);
}

int
weft_timeout_reschedule(struct weft_timeout *to, int64_t ms)
{
    if (to->expired)
        return -WEFT_ESTATE;
    weft_handle_cancel(to->timer);
    to->timer = NULL;
    return ms < 0 ? 0 : arm(to, false, (uint64_t)ms);
}

bool
weft_timeout_expired(const struct weft_timeout *to)
{
    return to->expired;
}

intptr_t
weft_timeout_exit(struct weft_timeout *to, intptr_t rc)
{
    weft_handle_cancel(to->timer);
    to->timer = NULL;
    if (to->task == NULL || !to->expired)
        return rc;
    if (weft_task_uncancel(to->task) == 0 && rc == -ECANCELED)
        return -ETIMEDOUT;
    return rc;
}
