/* SPDX-License-Identifier: MIT */
/* future.c: futures; completion runs the done callbacks through call_soon. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/error.h>
#include <weft/log.h>
#include <weft/loop.h>

#include "coro/task-int.h"

void
weft__future_init(struct weft_future *f, struct weft_loop *loop, uint8_t kind)
{
    *f = (struct weft_future){ .loop = loop, .refs = 1, .kind = kind };
    f->cbs_tail = &f->cbs;
}

struct weft_future *
weft_future_new(struct weft_loop *loop)
{
    struct weft_future *f = malloc(sizeof(*f));

    if (f == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    weft__future_init(f, loop, WEFT__FUT_PLAIN);
    return f;
}

struct weft_future *
weft_future_ref(struct weft_future *f)
{
    f->refs++;
    return f;
}

static void
report_unretrieved(struct weft_future *f)
{
    struct weft_task *t = f->kind == WEFT__FUT_TASK ? (struct weft_task *)f : NULL;
    char msg[96];

    if (t != NULL)
        snprintf(msg, sizeof(msg), "task %s failed and its result was never retrieved",
                 t->name);
    else
        snprintf(msg, sizeof(msg), "future failed and its error was never retrieved");
    weft_loop_call_error_handler(f->loop, &(struct weft_error_context){
        .message = msg, .error = (int)f->result, .task = t, .future = f });
}

void
weft_future_unref(struct weft_future *f)
{
    if (f == NULL || --f->refs > 0)
        return;
    if (f->done && f->result < 0 && f->result != -ECANCELED && !f->retrieved &&
        f->loop != NULL) {
        f->refs = 1;        /* the handler may look at it */
        report_unretrieved(f);
        f->refs = 0;
    }
    while (f->cbs != NULL) {
        struct weft__fut_cb *n = f->cbs;

        f->cbs = n->next;
        if (n->heap)
            free(n);
    }
    if (f->destroy != NULL)
        f->destroy(f);
    else
        free(f);
}

struct weft_loop *
weft_future_loop(const struct weft_future *f)
{
    return f->loop;
}

/*
 * One weft_call_soon per completed future runs its callbacks in order. Nodes
 * stay in the list until their turn, so a callback removed before it ran (a
 * waiter giving up) is never called with a stale argument.
 */
static void
run_callbacks(void *arg)
{
    struct weft_future *f = arg;
    struct weft__fut_cb *n;

    while ((n = f->cbs) != NULL) {
        f->cbs = n->next;
        if (f->cbs == NULL)
            f->cbs_tail = &f->cbs;
        bool heap = n->heap;        /* an embedded node may go with its owner */

        n->next = NULL;
        n->cb(f, n->arg);
        if (heap)
            free(n);
    }
    f->scheduled = false;
    weft_future_unref(f);
}

static void
schedule(struct weft_future *f)
{
    if (f->scheduled || f->cbs == NULL || f->loop == NULL)
        return;
    f->refs++;
    /* Never lost for lack of memory: a waiter would hang forever (fault injection). */
    weft__call_soon_nofail(f->loop, &f->soon, run_callbacks, f);
    f->scheduled = true;
}

void
weft__future_complete(struct weft_future *f, intptr_t value)
{
    f->done = true;
    f->result = value;
    schedule(f);
}

int
weft_future_set_result(struct weft_future *f, intptr_t result)
{
    if (result < 0)
        return -EINVAL;
    if (f->done)
        return -WEFT_ESTATE;
    weft__future_complete(f, result);
    return 0;
}

int
weft_future_set_error(struct weft_future *f, int error)
{
    if (error >= 0)
        return -EINVAL;
    if (f->done)
        return -WEFT_ESTATE;
    weft__future_complete(f, error);
    return 0;
}

bool
weft_future_cancel(struct weft_future *f)
{
    if (f->done)
        return false;
    if (f->cancel != NULL)
        return f->cancel(f);
    weft__future_complete(f, -ECANCELED);
    return true;
}

bool
weft_future_done(const struct weft_future *f)
{
    return f->done;
}

bool
weft_future_cancelled(const struct weft_future *f)
{
    return f->done && f->result == -ECANCELED;
}

intptr_t
weft_future_result(const struct weft_future *f)
{
    if (!f->done)
        return -WEFT_ESTATE;
    ((struct weft_future *)f)->retrieved = true;
    return f->result;
}

void
weft__future_add_node(struct weft_future *f, struct weft__fut_cb *node)
{
    node->next = NULL;
    *f->cbs_tail = node;
    f->cbs_tail = &node->next;
    if (f->done)
        schedule(f);
}

bool
weft__future_del_node(struct weft_future *f, struct weft__fut_cb *node)
{
    struct weft__fut_cb **pp;

    for (pp = &f->cbs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == node) {
            *pp = node->next;
            if (f->cbs_tail == &node->next)
                f->cbs_tail = pp;
            node->next = NULL;
            return true;
        }
    }
    return false;
}

int
weft_future_add_done_callback(struct weft_future *f, weft_future_cb *cb, void *arg)
{
    struct weft__fut_cb *n = malloc(sizeof(*n));

    if (n == NULL)
        return -ENOMEM;
    *n = (struct weft__fut_cb){ .cb = cb, .arg = arg, .heap = true };
    weft__future_add_node(f, n);
    return 0;
}

int
weft_future_remove_done_callback(struct weft_future *f, weft_future_cb *cb, void *arg)
{
    struct weft__fut_cb **pp = &f->cbs;
    int removed = 0;

    while (*pp != NULL) {
        struct weft__fut_cb *n = *pp;

        if (n->heap && n->cb == cb && n->arg == arg) {
            *pp = n->next;
            free(n);
            removed++;
        } else {
            pp = &n->next;
        }
    }
    /* Recompute the tail: the removed node may have been last. */
    f->cbs_tail = &f->cbs;
    while (*f->cbs_tail != NULL)
        f->cbs_tail = &(*f->cbs_tail)->next;
    return removed;
}

void
weft__future_finish(struct weft_future **fp, intptr_t value)
{
    struct weft_future *f = *fp;

    if (f == NULL)
        return;
    *fp = NULL;
    if (!weft_future_done(f)) {
        if (value < 0)
            weft_future_set_error(f, (int)value);
        else
            weft_future_set_result(f, value);
    }
    (void)weft_future_result(f);
    weft_future_unref(f);
}
