/* SPDX-License-Identifier: MIT */
/* weft/future.h: futures: a result to come, done callbacks, reference counts. */
#ifndef WEFT_FUTURE_H
#define WEFT_FUTURE_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A future is asyncio's Future: pending, then done with a result (an intptr_t
 * >= 0), an error (a negative code) or cancelled (-ECANCELED). A pointer can be
 * a result: user-space pointers on Linux are non-negative as intptr_t.
 * Futures are reference counted: _new gives one reference, _ref adds one,
 * _unref drops one and frees the future with the last. A future whose error
 * was never read (weft_future_result(), weft_await()) when its last reference
 * goes is reported to the loop's error handler, as asyncio reports an
 * exception never retrieved. Loop thread only.
 */

/* Called on the loop, in the order added, after the future is done. */
typedef void weft_future_cb(struct weft_future *f, void *arg);

/**
 * A pending future bound to loop, with one reference for the caller.
 * Returns NULL with errno ENOMEM. Since 0.1.
 */
WEFT_EXPORT struct weft_future *weft_future_new(struct weft_loop *loop);

/** Add a reference; returns f. Since 0.1. */
WEFT_EXPORT struct weft_future *weft_future_ref(struct weft_future *f);

/**
 * Drop a reference; the last one frees the future (its pending callbacks are
 * dropped unrun). NULL is a no-op. Since 0.1.
 */
WEFT_EXPORT void weft_future_unref(struct weft_future *f);

/** The loop the future belongs to. Since 0.1. */
WEFT_EXPORT struct weft_loop *weft_future_loop(const struct weft_future *f);

/**
 * Complete f with result (>= 0) and schedule its done callbacks with
 * weft_call_soon(). Returns 0, -EINVAL for a negative result (use
 * weft_future_set_error()), or -WEFT_ESTATE if f is already done. Since 0.1.
 */
WEFT_EXPORT int weft_future_set_result(struct weft_future *f, intptr_t result);

/**
 * Complete f with error (a negative code; -ECANCELED is the same as
 * weft_future_cancel()) and schedule its done callbacks. Returns 0, -EINVAL for
 * error >= 0, or -WEFT_ESTATE if f is already done. Since 0.1.
 */
WEFT_EXPORT int weft_future_set_error(struct weft_future *f, int error);

/**
 * Cancel f: if pending it becomes done with -ECANCELED and its callbacks are
 * scheduled. A task's future cancels the task (weft_task_cancel()), which
 * only asks: the task finishes when it returns. A gather's future cancels its
 * children. Returns true if the request was made, false if f was done.
 * Since 0.1.
 */
WEFT_EXPORT bool weft_future_cancel(struct weft_future *f);

/** True once f has a result, an error, or was cancelled. Since 0.1. */
WEFT_EXPORT bool weft_future_done(const struct weft_future *f);

/** True if f is done with -ECANCELED. Since 0.1. */
WEFT_EXPORT bool weft_future_cancelled(const struct weft_future *f);

/**
 * The result (>= 0) or the error (< 0, -ECANCELED if cancelled) of a done
 * future, which then counts as retrieved; -WEFT_ESTATE if f is not done.
 * Never blocks. Since 0.1.
 */
WEFT_EXPORT intptr_t weft_future_result(const struct weft_future *f);

/**
 * Call cb(f, arg) on the loop once f is done: scheduled with weft_call_soon()
 * when f completes, or right away (for the next iteration) if it is done.
 * Returns 0 or -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_future_add_done_callback(struct weft_future *f, weft_future_cb *cb,
                                              void *arg);

/**
 * Remove every (cb, arg) registration that has not run yet. Returns how many
 * were removed. Since 0.1.
 */
WEFT_EXPORT int weft_future_remove_done_callback(struct weft_future *f, weft_future_cb *cb,
                                                 void *arg);

#ifdef __cplusplus
}
#endif
#endif
