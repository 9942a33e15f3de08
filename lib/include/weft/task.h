/* SPDX-License-Identifier: MIT */
/* weft/task.h: tasks on stackful coroutines: await, cancel, sleep, gather, wait, shield. */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <weft/common.h>
#include <weft/future.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A task runs fn(arg) on its own stack, on the loop's thread, and is
 * suspended only where it awaits. Its return value is its future's result:
 * >= 0 a result (a pointer is fine), < 0 an error; returning -ECANCELED
 * makes the task count as cancelled. Loop thread only, unless stated.
 *
 * Suspending calls (weft_await, weft_sleep, gather, wait...) made outside a
 * task return -WEFT_ENOTASK and never block. They return -ECANCELED when the
 * task is cancelled while waiting (see weft_task_cancel()).
 */
typedef intptr_t weft_task_fn(void *arg);

/* Per-task settings; a NULL pointer or a zero field means the default. */
struct weft_task_options {
    size_t stack_size;      /* bytes; 0 = 64 KiB (256 KiB in sanitizer builds) */
    const char *name;       /* for error reports; copied (up to 31 bytes) */
};

/* The default stack size of a task, in bytes. */
#define WEFT_TASK_STACK_DEFAULT (64 * 1024)

/**
 * Create a task running fn(arg), like asyncio.create_task(): it starts in a
 * later iteration of the loop (scheduled with weft_call_soon()). The stack
 * (size rounded up to pages, with a PROT_NONE guard page below it, so an
 * overflow is a SIGSEGV) comes from the loop's pool.
 *
 * Returns a NEW reference to the task, which the caller must drop with
 * weft_task_unref() (right away for fire-and-forget: the loop holds its own
 * reference until the task finishes). NULL with errno set on failure (ENOMEM,
 * or the kernel's error mapping the stack). Since 0.1.
 */
WEFT_EXPORT struct weft_task *weft_task_spawn(struct weft_loop *loop, weft_task_fn *fn,
                                              void *arg,
                                              const struct weft_task_options *options);

/** Add a reference to a task (its future's); returns t. Since 0.1. */
WEFT_EXPORT struct weft_task *weft_task_ref(struct weft_task *t);

/**
 * Drop a reference. A task that failed and whose result nobody read is
 * reported to the loop's error handler when its last reference goes.
 * NULL is a no-op. Since 0.1.
 */
WEFT_EXPORT void weft_task_unref(struct weft_task *t);

/** The task's future, borrowed (it lives as long as the task). Since 0.1. */
WEFT_EXPORT struct weft_future *weft_task_future(struct weft_task *t);

/** The task a future belongs to, or NULL for a plain future. Since 0.1. */
WEFT_EXPORT struct weft_task *weft_future_task(struct weft_future *f);

/** The task's name ("task-N" unless set). Since 0.1. */
WEFT_EXPORT const char *weft_task_name(const struct weft_task *t);

/**
 * Ask t to stop, like Task.cancel(): the call t is suspended in (or its next
 * one, if it is running or about to resume) returns -ECANCELED. The future t
 * awaits is not cancelled, except a gather, which cancels its children. The
 * task may clean up and return -ECANCELED, or carry on. A task cancelled
 * before it started finishes cancelled without running.
 * Returns true if the request was made, false if t is done. Since 0.1.
 */
WEFT_EXPORT bool weft_task_cancel(struct weft_task *t);

/**
 * weft_task_cancel() with a message, as Task.cancel(msg): the message says
 * why (a shutdown, a deadline of the caller's) and can be read with
 * weft_task_cancel_message() by the task once its call returns -ECANCELED,
 * and by whoever awaited it after it finished cancelled. msg is copied
 * (NULL: no message). Each request replaces the message of the one before
 * (a plain weft_task_cancel() clears it, as cancel() without a message
 * does). If the copy cannot be made the cancel is still requested, without
 * a message, and the failure is logged. Returns as weft_task_cancel(); when
 * it returns false the message is not kept. Since 0.1.
 */
WEFT_EXPORT bool weft_task_cancel_msg(struct weft_task *t, const char *msg);

/**
 * The message of t's last cancel request (weft_task_cancel_msg()), or NULL
 * if it had none or t was never cancelled. Owned by t: valid until the next
 * request or until t is freed (its last reference, weft_task_unref()).
 * Since 0.1.
 */
WEFT_EXPORT const char *weft_task_cancel_message(const struct weft_task *t);

/**
 * How many cancel requests t has had (each weft_task_cancel that returned
 * true) that weft_task_uncancel has not taken back: Task.cancelling().
 * Since 0.1.
 */
WEFT_EXPORT unsigned weft_task_cancelling(const struct weft_task *t);

/**
 * Take one cancel request back, as Task.uncancel() (what a timeout scope
 * does once the cancel it made has done its work). At 0, a cancel not yet
 * delivered is dropped. Returns the requests left. Since 0.1.
 */
WEFT_EXPORT unsigned weft_task_uncancel(struct weft_task *t);

/*
 * Task groups (asyncio.TaskGroup): structured concurrency for C.
 *
 *     struct weft_task_group *g = weft_task_group_new();
 *     weft_task_group_spawn(g, fetch, "a", NULL);
 *     weft_task_group_spawn(g, fetch, "b", NULL);
 *     rc = weft_task_group_wait(g);      // all done; the first error, if any
 *     weft_task_group_free(g);
 *
 * When a child ends in an error (a cancellation is not one), the group
 * cancels the other children, and the task that made the group if it is
 * not yet in weft_task_group_wait (its next suspension returns -ECANCELED,
 * so it reaches the wait); the wait takes that cancel back. A cancel of the
 * parent from elsewhere cancels the children too, and the wait returns
 * -ECANCELED once they are done.
 */
struct weft_task_group;

/**
 * A group whose parent is the running task. NULL with errno EPERM outside a
 * task, or ENOMEM. Since 0.1.
 */
WEFT_EXPORT struct weft_task_group *weft_task_group_new(void);

/**
 * weft_task_spawn() into the group. Returns the task, borrowed: the group
 * holds its reference until weft_task_group_free (weft_task_ref to keep
 * it longer). NULL with errno ECANCELED (a child failed, or the group was
 * waited for already), ENOMEM, or weft_task_spawn's errno. Since 0.1.
 */
WEFT_EXPORT struct weft_task *weft_task_group_spawn(struct weft_task_group *g,
                                                    weft_task_fn *fn, void *arg,
                                                    const struct weft_task_options *options);

/**
 * In the parent task: wait until every child is done. Returns 0; the first
 * child's error (all errors: weft_task_group_errors); -ECANCELED if the
 * parent was cancelled from elsewhere; -WEFT_ESTATE if called from another
 * task or twice. Since 0.1.
 */
WEFT_EXPORT intptr_t weft_task_group_wait(struct weft_task_group *g);

/**
 * The children's errors in the order they ended, up to cap into out.
 * Returns how many there were (may exceed cap). Since 0.1.
 */
WEFT_EXPORT size_t weft_task_group_errors(const struct weft_task_group *g, intptr_t *out,
                                          size_t cap);

/**
 * Free the group (after weft_task_group_wait; a child still running then
 * goes on, unwatched) and drop its references to the children. NULL is a
 * no-op. Since 0.1.
 */
WEFT_EXPORT void weft_task_group_free(struct weft_task_group *g);

/*
 * Timeout scopes (asyncio.timeout / timeout_at): bound every suspension
 * between weft_timeout_enter and weft_timeout_exit in the running task -
 * stream reads, lock, semaphore, event, condition, queue and barrier waits,
 * sleeps, awaits. When the deadline passes the task is cancelled, so the
 * call suspended then returns -ECANCELED; weft_timeout_exit turns that into
 * -ETIMEDOUT. Scopes nest; a cancel from elsewhere stays -ECANCELED:
 *
 *     struct weft_timeout to;
 *     weft_timeout_enter(&to, 500);
 *     n = weft_reader_readline(r, line, sizeof(line));
 *     n = weft_timeout_exit(&to, n);      // -ETIMEDOUT after 500 ms
 *
 * The struct is the caller's (on the task's stack is fine); its fields are
 * private.
 */
struct weft_timeout {
    struct weft_task *task;
    struct weft_handle *timer;
    bool expired;
};

/**
 * Start a scope in the running task that ends in ms milliseconds (a
 * negative ms: never, until weft_timeout_reschedule). Returns 0,
 * -WEFT_ENOTASK or -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_timeout_enter(struct weft_timeout *to, int64_t ms);

/** The same with a deadline on weft_loop_time()'s clock. Since 0.1. */
WEFT_EXPORT int weft_timeout_at_enter(struct weft_timeout *to, uint64_t when_ms);

/**
 * Move the deadline of a scope not yet expired to ms from now (negative:
 * never). Returns 0, -WEFT_ESTATE (expired already) or -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_timeout_reschedule(struct weft_timeout *to, int64_t ms);

/** True once the scope's deadline has passed and it cancelled the task. Since 0.1. */
WEFT_EXPORT bool weft_timeout_expired(const struct weft_timeout *to);

/**
 * End the scope, given what the code inside returned: rc, or -ETIMEDOUT
 * when rc is -ECANCELED because this scope's deadline passed (and no other
 * cancel is outstanding). Call it exactly once per enter, innermost first.
 * Since 0.1.
 */
WEFT_EXPORT intptr_t weft_timeout_exit(struct weft_timeout *to, intptr_t rc);

/** The running task, or NULL outside tasks. Since 0.1. */
WEFT_EXPORT struct weft_task *weft_task_current(void);

/**
 * Fill out with up to cap borrowed pointers to the loop's unfinished tasks.
 * Returns their total number (which may exceed cap). Since 0.1.
 */
WEFT_EXPORT size_t weft_task_all(struct weft_loop *loop, struct weft_task **out, size_t cap);

/**
 * How many stacks the loop keeps for reuse after tasks end (default 64; 0
 * unmaps each). Since 0.1.
 */
WEFT_EXPORT void weft_task_set_stack_cache(struct weft_loop *loop, size_t max_stacks);

/**
 * asyncio.get_running_loop() inside a coroutine: the loop of the running
 * task, or NULL outside tasks. Since 0.1.
 */
WEFT_EXPORT struct weft_loop *weft_get_running_loop(void);

/**
 * asyncio.run(main(arg)): make a loop, run main(arg) as a task on it until
 * the task is done, then cancel the tasks still unfinished and run the loop
 * until they are done (one round, as asyncio), and free the loop (which
 * joins its executor threads). A program's whole main can be
 * `return weft_run(main_task, &state) < 0;` and main_task reaches the loop
 * with weft_get_running_loop().
 * Returns main's result (>= 0) or error (< 0; -ECANCELED if it was
 * cancelled), or -ENOMEM / -errno if no loop or task could be made, -EINVAL
 * for a NULL main. Loop thread only: call it where no loop of this thread
 * is running. Since 0.1.
 */
WEFT_EXPORT intptr_t weft_run(weft_task_fn *main, void *arg);

/**
 * loop.run_until_complete(f): run loop until f is done; f's result is then
 * read with weft_future_result(). A done f returns at once. Returns 0 once
 * f is done; -EINVAL if f is not of loop; -EBUSY if loop is already running;
 * -EINTR if the loop stopped (weft_loop_stop) before f was done (f is left
 * as it is); -ENOMEM; or weft_loop_run()'s error. Since 0.1.
 */
WEFT_EXPORT int weft_run_until_complete(struct weft_loop *loop, struct weft_future *f);

/**
 * Suspend the running task until f is done; return f's result or error (and
 * count it as retrieved). A done future returns at once without suspending.
 * Returns -ECANCELED if the task is cancelled meanwhile (f is left alone),
 * -WEFT_ENOTASK outside a task. Since 0.1.
 */
WEFT_EXPORT intptr_t weft_await(struct weft_future *f);

/**
 * Suspend the running task for ms milliseconds (0: let the other ready
 * callbacks and tasks run first). Returns 0, -ECANCELED, -WEFT_ENOTASK or
 * -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_sleep(uint64_t ms);

/**
 * Suspend the running task until fd is readable, like awaiting a future set
 * by asyncio's loop.add_reader() callback, or timeout_ms passes (negative:
 * no limit; 0: just check, after the loop's next poll). The task resumes in
 * the loop iteration that saw fd ready. Uses its own libevent event, so a
 * reader registered with weft_add_reader() on the same fd is not disturbed;
 * the fd is borrowed and must stay open during the wait.
 * Returns 0 once readable (also when the timeout expires in the same
 * iteration), -ETIMEDOUT, -ECANCELED if the task is cancelled, -WEFT_ENOTASK
 * outside a task, -EBADF for a closed or negative fd, -EPERM for a file the
 * kernel cannot poll (a regular file), or -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_wait_readable(int fd, int64_t timeout_ms);

/** As weft_wait_readable(), until fd is writable. Since 0.1. */
WEFT_EXPORT int weft_wait_writable(int fd, int64_t timeout_ms);

/* Flags of weft_gather(). */
enum weft_gather_flags {
    WEFT_GATHER_RETURN_ERRORS = 1u << 0, /* keep errors as results; wait for all */
};

/**
 * asyncio.gather(): a new future (one reference for the caller) done when all
 * n futures are done, with result 0; results are read with
 * weft_gather_results(). Without WEFT_GATHER_RETURN_ERRORS the first error
 * completes it with that error at once, and the others keep running.
 * Cancelling it cancels the children (tasks through weft_task_cancel()).
 * The gather holds references to the children. NULL with errno ENOMEM.
 * Since 0.1.
 */
WEFT_EXPORT struct weft_future *weft_gather_new(struct weft_loop *loop,
                                                struct weft_future *const *futs, size_t n,
                                                unsigned flags);

/**
 * Copy a gather's results (each child's result or error, in the order
 * given) into results[0..n). Returns 0, or -WEFT_ESTATE if g is not a done
 * gather of n children or a child is not done. Since 0.1.
 */
WEFT_EXPORT int weft_gather_results(struct weft_future *g, intptr_t *results, size_t n);

/**
 * Await a gather of futs: results[i] gets each one's result, in order
 * (results may be NULL). Returns 0, the first error (the others keep running),
 * or -ECANCELED if the calling task is cancelled, which cancels the children.
 * Since 0.1.
 */
WEFT_EXPORT int weft_gather(struct weft_future *const *futs, size_t n, intptr_t *results,
                            unsigned flags);

/* When weft_wait() returns. */
enum weft_wait_when {
    WEFT_ALL_COMPLETED = 0,
    WEFT_FIRST_COMPLETED,
    WEFT_FIRST_EXCEPTION,   /* the first error (a cancellation does not count), else all */
};

/**
 * asyncio.wait(): suspend until `when` holds or timeout_ms passes (negative:
 * no timeout). Then done[] gets the futures done and pending[] the others
 * (borrowed pointers, in the order given; either may be NULL; capacity n),
 * with their counts in *ndone and *npending. Nothing is cancelled.
 * Returns 0 (also on timeout), -ECANCELED, -WEFT_ENOTASK or -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_wait(struct weft_future *const *futs, size_t n, enum weft_wait_when when,
                          int64_t timeout_ms, struct weft_future **done, size_t *ndone,
                          struct weft_future **pending, size_t *npending);

/**
 * asyncio.wait_for() (3.12): await f for at most timeout_ms (negative: no
 * limit). On timeout f is cancelled and waited for; then -ETIMEDOUT is
 * returned (or f's result, if it finished anyway). If the calling task is
 * cancelled, f is cancelled too. Returns f's result or error otherwise.
 * Since 0.1.
 */
WEFT_EXPORT intptr_t weft_wait_for(struct weft_future *f, int64_t timeout_ms);

/**
 * asyncio.shield(): a new future (one reference for the caller) that takes
 * f's outcome; cancelling it does not cancel f. NULL with errno ENOMEM.
 * Since 0.1.
 */
WEFT_EXPORT struct weft_future *weft_shield(struct weft_future *f);

/* asyncio.as_completed(): futures in the order they finish. */
struct weft_as_completed;

/**
 * Watch n futures (borrowed: keep them alive until _free) with an overall
 * deadline of timeout_ms (negative: none). NULL with errno ENOMEM. Since 0.1.
 */
WEFT_EXPORT struct weft_as_completed *weft_as_completed_new(struct weft_future *const *futs,
                                                            size_t n, int64_t timeout_ms);

/**
 * Suspend until the next future finishes; set *f to it (borrowed). Returns 1,
 * 0 when all have been returned, -ETIMEDOUT past the deadline, -ECANCELED or
 * -WEFT_ENOTASK. Since 0.1.
 */
WEFT_EXPORT int weft_as_completed_next(struct weft_as_completed *ac, struct weft_future **f);

/** Stop watching and free ac. NULL is a no-op. Since 0.1. */
WEFT_EXPORT void weft_as_completed_free(struct weft_as_completed *ac);

#ifdef __cplusplus
}
#endif
#endif
