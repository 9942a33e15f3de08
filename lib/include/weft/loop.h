/* SPDX-License-Identifier: MIT */
/* weft/loop.h: the event loop: scheduled calls, timers, signals, errors nobody handled. */
#ifndef WEFT_LOOP_H
#define WEFT_LOOP_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * One loop per thread, wrapping one libevent event_base. Every function here
 * must be called on the loop's thread unless it says "any thread".
 * Times are milliseconds on the monotonic clock.
 */

/**
 * Create a loop with its own event_base. Returns NULL with errno set on
 * failure (ENOMEM, or EMFILE for the wake-up pipe). Free with weft_loop_free().
 * Since 0.1.
 */
WEFT_EXPORT struct weft_loop *weft_loop_new(void);

/**
 * Free a loop that is not running: cancels every pending handle without
 * calling it, removes signal handlers, frees the event_base. Transports and
 * servers must have been freed or closed first. NULL is a no-op. Since 0.1.
 */
WEFT_EXPORT void weft_loop_free(struct weft_loop *loop);

/**
 * Run the loop until weft_loop_stop(). Returns 0 after a stop, -EBUSY if
 * already running, or a negative errno if the event_base fails. Since 0.1.
 */
WEFT_EXPORT int weft_loop_run(struct weft_loop *loop);

/**
 * Run one iteration: the callbacks ready now and the events pending now, then
 * return (waits for nothing). Returns 0 or a negative errno. Since 0.1.
 */
WEFT_EXPORT int weft_loop_run_once(struct weft_loop *loop);

/**
 * Make weft_loop_run() return after the current iteration's ready callbacks.
 * Any thread (it wakes the loop). Since 0.1.
 */
WEFT_EXPORT void weft_loop_stop(struct weft_loop *loop);

/** True while weft_loop_run() is running this loop. Since 0.1. */
WEFT_EXPORT bool weft_loop_is_running(const struct weft_loop *loop);

/** The monotonic clock in milliseconds, as used by call_later/call_at. Since 0.1. */
WEFT_EXPORT uint64_t weft_loop_time(const struct weft_loop *loop);

/** The same clock in nanoseconds, for measurements. Since 0.1. */
WEFT_EXPORT uint64_t weft_loop_time_ns(const struct weft_loop *loop);

/** The loop's libevent base, borrowed, for code that adds its own events. Since 0.1. */
WEFT_EXPORT struct event_base *weft_loop_get_base(struct weft_loop *loop);

/**
 * Schedule cb(arg) for the next iteration. Callbacks run in the order they
 * were scheduled (FIFO), after pending I/O events are dispatched.
 * Returns a handle, valid until the callback has started or the handle is
 * cancelled; NULL on ENOMEM. Since 0.1.
 */
WEFT_EXPORT struct weft_handle *weft_call_soon(struct weft_loop *loop,
                                               weft_callback_cb *cb, void *arg);

/**
 * Schedule cb(arg) delay_ms milliseconds from now. Calls due at the same
 * time run in the order they were scheduled. Returns a handle valid until the
 * callback has started or the handle is cancelled; NULL on ENOMEM. Since 0.1.
 */
WEFT_EXPORT struct weft_handle *weft_call_later(struct weft_loop *loop, uint64_t delay_ms,
                                                weft_callback_cb *cb, void *arg);

/**
 * Schedule cb(arg) at when_ms on weft_loop_time()'s clock (a past time runs
 * in the next iteration). Same handle rules as weft_call_later(). Since 0.1.
 */
WEFT_EXPORT struct weft_handle *weft_call_at(struct weft_loop *loop, uint64_t when_ms,
                                             weft_callback_cb *cb, void *arg);

/**
 * Cancel a scheduled call: it will not run, and the handle is freed. Only
 * for a handle whose callback has not started; NULL is a no-op. Since 0.1.
 */
WEFT_EXPORT void weft_handle_cancel(struct weft_handle *h);

/**
 * Schedule cb(arg) on the loop from any thread, and wake the loop. Callbacks
 * from one thread keep their order. Returns 0, or -ENOMEM. Any thread.
 * Since 0.1.
 */
WEFT_EXPORT int weft_call_soon_threadsafe(struct weft_loop *loop,
                                          weft_callback_cb *cb, void *arg);

/* Runs on the loop's thread when the signal arrived (libevent's evsignal). */
typedef void weft_signal_cb(struct weft_loop *loop, int signum, void *arg);

/**
 * Call cb(loop, signum, arg) on the loop each time signum arrives, replacing
 * any handler this loop had for it. Returns 0, -EINVAL for a signal that
 * cannot be caught (SIGKILL, SIGSTOP, out of range), or -ENOMEM. Only one loop
 * in a process should handle a given signal. Since 0.1.
 */
WEFT_EXPORT int weft_loop_add_signal_handler(struct weft_loop *loop, int signum,
                                             weft_signal_cb *cb, void *arg);

/**
 * Remove the handler for signum and restore the signal's previous disposition.
 * Returns 1 if one was removed, 0 if there was none. Since 0.1.
 */
WEFT_EXPORT int weft_loop_remove_signal_handler(struct weft_loop *loop, int signum);

/* ---- watching file descriptors (lib/core/fdwatch.c) ---- */

/*
 * Runs on the loop's thread, from the ready queue, while fd is readable (a
 * reader) or writable (a writer): level-triggered, so it runs again in the
 * next iteration unless it reads, writes or removes itself. Return 0, or a
 * negative code to have it passed to the loop's error handler (the watcher
 * stays registered, as in asyncio).
 */
typedef int weft_fd_cb(struct weft_loop *loop, int fd, void *arg);

/**
 * asyncio's loop.add_reader(): call cb(loop, fd, arg) whenever fd is
 * readable, until weft_remove_reader(). A second reader for the same fd
 * replaces the first (its call, if already queued, is dropped). The fd is
 * borrowed: it is not closed, and must stay open while watched (remove the
 * reader before closing it). One struct event per fd and direction.
 * Returns 0, -EBADF for a closed or negative fd, -EPERM for a file the
 * kernel cannot poll (a regular file or a directory), -EINVAL for a NULL cb,
 * or -ENOMEM. Freed by weft_loop_free() if never removed. Since 0.1.
 */
WEFT_EXPORT int weft_add_reader(struct weft_loop *loop, int fd, weft_fd_cb *cb, void *arg);

/**
 * Stop watching fd for reading; a call already queued is dropped. May be
 * called from the reader's own callback. Returns 1 if a reader was removed,
 * 0 if there was none (as weft_loop_remove_signal_handler()). Since 0.1.
 */
WEFT_EXPORT int weft_remove_reader(struct weft_loop *loop, int fd);

/** asyncio's loop.add_writer(): as weft_add_reader(), for writability. Since 0.1. */
WEFT_EXPORT int weft_add_writer(struct weft_loop *loop, int fd, weft_fd_cb *cb, void *arg);

/** As weft_remove_reader(), for the writer: returns 1 or 0. Since 0.1. */
WEFT_EXPORT int weft_remove_writer(struct weft_loop *loop, int fd);

/* What went wrong, for the error handler. Pointers are borrowed for the call. */
struct weft_error_context {
    const char *message;              /* what failed, never NULL */
    int error;                        /* a negative code, or 0 */
    struct weft_transport *transport; /* the connection concerned, or NULL */
    struct weft_task *task;           /* the task concerned, or NULL */
    struct weft_future *future;       /* the future concerned, or NULL */
    /* Since 0.1: the transport's peer as text ("192.0.2.7:4242", the client a
     * PROXY header named if any), filled in by the library when it reports a
     * transport's error; NULL if unknown. The default handler prints it. */
    const char *peer;
};

typedef void weft_error_handler_cb(struct weft_loop *loop,
                                   const struct weft_error_context *ctx, void *arg);

/**
 * Set the handler for errors nobody handled (a task that failed and was never
 * awaited, a protocol callback that returned an error). NULL restores the
 * default, weft_loop_default_error_handler(). Since 0.1.
 */
WEFT_EXPORT void weft_loop_set_error_handler(struct weft_loop *loop,
                                             weft_error_handler_cb *cb, void *arg);

/** Pass ctx to the loop's error handler. Since 0.1. */
WEFT_EXPORT void weft_loop_call_error_handler(struct weft_loop *loop,
                                              const struct weft_error_context *ctx);

/**
 * The default handler: one WEFT_LOG_ERR line through weft_log() with the
 * message, the error's name and ctx->peer, if any.
 * Since 0.1.
 */
WEFT_EXPORT void weft_loop_default_error_handler(struct weft_loop *loop,
                                                 const struct weft_error_context *ctx);

/* ---- executor: blocking work on a thread pool (lib/coro/executor.c) ---- */

/* Work for a pool thread: returns a result (>= 0) or a negative error. */
typedef intptr_t weft_executor_fn(void *arg);

/**
 * Set the size of the loop's thread pool for weft_run_in_executor() (default:
 * the number of online CPUs). Only before the pool's first use; returns 0,
 * -EINVAL for 0, or -WEFT_ESTATE once the pool is running. Since 0.1.
 */
WEFT_EXPORT int weft_loop_set_executor_threads(struct weft_loop *loop, unsigned threads);

/**
 * asyncio's loop.run_in_executor(None, fn, arg): run fn(arg) on a pool
 * thread (started on first use) and return a future completed with its
 * return value on the loop's thread, through weft_call_soon_threadsafe().
 * The caller owns one reference to the future; await it from a task. fn must
 * not touch the loop. Cancelling the future does not stop fn, whose result
 * is then dropped. Pool threads are joined by weft_loop_free(); work not yet
 * started then is dropped. NULL with errno (ENOMEM, or pthread_create's
 * error). Since 0.1.
 */
WEFT_EXPORT struct weft_future *weft_run_in_executor(struct weft_loop *loop,
                                                     weft_executor_fn *fn, void *arg);

/**
 * asyncio.run_coroutine_threadsafe(...).result(): from a thread other than
 * the loop's, spawn fn(arg) as a task on loop (through
 * weft_call_soon_threadsafe()) and block this thread until it finishes; its
 * return value goes to *result (the task's result or negative error). The
 * loop must be running or run later. Returns 0, -ENOMEM, or the error
 * spawning the task. Any thread but the loop's. Since 0.1.
 */
WEFT_EXPORT int weft_run_coroutine_threadsafe(struct weft_loop *loop, intptr_t (*fn)(void *),
                                              void *arg, intptr_t *result);

/*
 * A thread's handle on a task it submitted (asyncio.run_coroutine_threadsafe's
 * concurrent.futures.Future): poll it, wait on it with a timeout, cancel it.
 * Every weft_thread_future_* call is for any thread (the loop's too, except
 * a wait that would block it).
 */
struct weft_thread_future;

/**
 * The non-blocking form: spawn fn(arg) as a task on loop (through
 * weft_call_soon_threadsafe) and return at once with a handle, which the
 * caller frees with weft_thread_future_free (the task goes on regardless).
 * NULL with errno EINVAL (loop or fn NULL) or ENOMEM. Since 0.1.
 */
WEFT_EXPORT struct weft_thread_future *
weft_run_coroutine_threadsafe_nowait(struct weft_loop *loop, intptr_t (*fn)(void *), void *arg);

/** True once the task's outcome is in (finished, cancelled, or failed to start). Since 0.1. */
WEFT_EXPORT bool weft_thread_future_done(struct weft_thread_future *tf);

/**
 * Block up to timeout_ms (negative: no limit) for the outcome. Returns 0
 * with the task's result or negative error in *result (may be NULL);
 * -ETIMEDOUT if it is not in yet (wait again later); or the error that kept
 * the task from starting (-ENOMEM...). Since 0.1.
 */
WEFT_EXPORT int weft_thread_future_wait(struct weft_thread_future *tf, int64_t timeout_ms,
                                        intptr_t *result);

/**
 * Ask for the task to be cancelled (weft_task_cancel on the loop; a task not
 * started yet never runs and ends with -ECANCELED). Returns false if the
 * outcome is in already or the request could not be sent (no memory).
 * Since 0.1.
 */
WEFT_EXPORT bool weft_thread_future_cancel(struct weft_thread_future *tf);

/** Drop the caller's handle. NULL is a no-op. Since 0.1. */
WEFT_EXPORT void weft_thread_future_free(struct weft_thread_future *tf);

#ifdef __cplusplus
}
#endif
#endif
