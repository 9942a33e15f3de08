/* SPDX-License-Identifier: MIT */
/* executor.c: the thread pool behind weft_run_in_executor; run_coroutine_threadsafe. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <weft/error.h>
#include <weft/log.h>
#include <weft/loop.h>

#include "coro/task-int.h"

struct job {
    struct job *next;                   /* in the run queue */
    struct job *prev_all, *next_all;    /* every job not yet delivered */
    struct executor *ex;
    weft_executor_fn *fn;
    void *arg;
    struct weft_future *f;              /* a reference, released on delivery */
    intptr_t result;
};

struct executor {
    struct weft_loop *loop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;            /* waiting to run */
    struct job *all;                    /* queued, running or in delivery */
    pthread_t *threads;
    unsigned nthreads, wanted;
    bool stopping;
};

static void
unlink_all(struct executor *ex, struct job *j)
{
    if (j->prev_all != NULL)
        j->prev_all->next_all = j->next_all;
    else
        ex->all = j->next_all;
    if (j->next_all != NULL)
        j->next_all->prev_all = j->prev_all;
}

/* On the loop's thread: hand the result over. */
static void
job_deliver(void *arg)
{
    struct job *j = arg;
    struct executor *ex = j->ex;

    pthread_mutex_lock(&ex->mu);
    unlink_all(ex, j);
    pthread_mutex_unlock(&ex->mu);
    if (!weft_future_done(j->f)) {
        if (j->result >= 0)
            weft_future_set_result(j->f, j->result);
        else
            weft_future_set_error(j->f, (int)j->result);
    }
    weft_future_unref(j->f);
    free(j);
}

static void *
worker(void *arg)
{
    struct executor *ex = arg;

    pthread_mutex_lock(&ex->mu);
    for (;;) {
        struct job *j;

        while (!ex->stopping && ex->head == NULL)
            pthread_cond_wait(&ex->cv, &ex->mu);
        if (ex->stopping)
            break;
        j = ex->head;
        ex->head = j->next;
        if (ex->head == NULL)
            ex->tail = NULL;
        pthread_mutex_unlock(&ex->mu);

        j->result = j->fn(j->arg);
        /* Only ENOMEM can fail this: retry for a while rather than lose the result. */
        for (int tries = 0; weft_call_soon_threadsafe(ex->loop, job_deliver, j) < 0; tries++) {
            if (tries == 1000 || ex->stopping) {
                weft_log(WEFT_LOG_ERR, "executor: cannot deliver a result to the loop");
                break;
            }
            nanosleep(&(struct timespec){ .tv_nsec = 1000000 }, NULL);
        }
        pthread_mutex_lock(&ex->mu);
    }
    pthread_mutex_unlock(&ex->mu);
    return NULL;
}

static void
executor_destroy(void *p)
{
    struct executor *ex = p;

    pthread_mutex_lock(&ex->mu);
    ex->stopping = true;
    pthread_cond_broadcast(&ex->cv);
    pthread_mutex_unlock(&ex->mu);
    for (unsigned i = 0; i < ex->nthreads; i++)
        pthread_join(ex->threads[i], NULL);
    /* Jobs never run, or whose delivery the loop will now drop unrun. */
    while (ex->all != NULL) {
        struct job *j = ex->all;

        ex->all = j->next_all;
        weft_future_unref(j->f);
        free(j);
    }
    pthread_cond_destroy(&ex->cv);
    pthread_mutex_destroy(&ex->mu);
    free(ex->threads);
    free(ex);
}

static struct executor *
executor_get(struct weft_loop *loop)
{
    struct executor *ex = weft__loop_get_slot(loop, WEFT__SLOT_EXECUTOR);
    long cpus;

    if (ex != NULL)
        return ex;
    ex = calloc(1, sizeof(*ex));
    if (ex == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    ex->loop = loop;
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ex->wanted = cpus > 0 ? (unsigned)cpus : 1;
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->cv, NULL);
    weft__loop_set_slot(loop, WEFT__SLOT_EXECUTOR, ex, executor_destroy);
    return ex;
}

int
weft_loop_set_executor_threads(struct weft_loop *loop, unsigned threads)
{
    struct executor *ex;

    if (threads == 0)
        return -EINVAL;
    ex = executor_get(loop);
    if (ex == NULL)
        return -ENOMEM;
    if (ex->threads != NULL)
        return -WEFT_ESTATE;
    ex->wanted = threads;
    return 0;
}

static int
start_threads(struct executor *ex)
{
    int rc;

    ex->threads = calloc(ex->wanted, sizeof(*ex->threads));
    if (ex->threads == NULL)
        return ENOMEM;
    for (unsigned i = 0; i < ex->wanted; i++) {
        rc = pthread_create(&ex->threads[ex->nthreads], NULL, worker, ex);
        if (rc != 0) {
            if (ex->nthreads > 0)
                break;          /* a smaller pool still works */
            free(ex->threads);
            ex->threads = NULL;
            return rc;
        }
        ex->nthreads++;
    }
    return 0;
}

struct weft_future *
weft_run_in_executor(struct weft_loop *loop, weft_executor_fn *fn, void *arg)
{
    struct executor *ex = executor_get(loop);
    struct weft_future *f;
    struct job *j;
    int rc;

    if (ex == NULL)
        return NULL;
    if (ex->threads == NULL && (rc = start_threads(ex)) != 0) {
        errno = rc;
        return NULL;
    }
    f = weft_future_new(loop);
    j = malloc(sizeof(*j));
    if (f == NULL || j == NULL) {
        weft_future_unref(f);
        free(j);
        errno = ENOMEM;
        return NULL;
    }
    *j = (struct job){ .ex = ex, .fn = fn, .arg = arg, .f = weft_future_ref(f) };
    pthread_mutex_lock(&ex->mu);
    j->next_all = ex->all;
    if (ex->all != NULL)
        ex->all->prev_all = j;
    ex->all = j;
    if (ex->tail != NULL)
        ex->tail->next = j;
    else
        ex->head = j;
    ex->tail = j;
    pthread_cond_signal(&ex->cv);
    pthread_mutex_unlock(&ex->mu);
    return f;
}

/* ---- run_coroutine_threadsafe ---- */

/*
 * The thread-side handle (concurrent.futures.Future): two references, the
 * caller's (weft_thread_future_free) and the loop side's (dropped when the
 * task's outcome is in), one more while a cancel is on its way.
 */
struct weft_thread_future {
    weft_task_fn *fn;
    void *arg;
    struct weft_loop *loop;
    struct weft_task *task;             /* loop thread only */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;                           /* under mu */
    bool done, cancel;                  /* under mu */
    int err;
    intptr_t result;
};

static void
tf_unref(struct weft_thread_future *tf)
{
    bool last;

    pthread_mutex_lock(&tf->mu);
    last = --tf->refs == 0;
    pthread_mutex_unlock(&tf->mu);
    if (!last)
        return;
    pthread_cond_destroy(&tf->cv);
    pthread_mutex_destroy(&tf->mu);
    free(tf);
}

/* The outcome is in: wake the waiters, drop the loop side's reference. */
static void
submit_finish(struct weft_thread_future *tf, int err, intptr_t result)
{
    pthread_mutex_lock(&tf->mu);
    tf->err = err;
    tf->result = result;
    tf->done = true;
    pthread_cond_broadcast(&tf->cv);
    pthread_mutex_unlock(&tf->mu);
    tf_unref(tf);
}

static void
submit_task_done(struct weft_future *f, void *arg)
{
    struct weft_thread_future *tf = arg;
    intptr_t result = weft_future_result(f);

    weft_task_unref(tf->task);
    tf->task = NULL;
    submit_finish(tf, 0, result);
}

static void
submit_start(void *arg)
{
    struct weft_thread_future *tf = arg;
    bool cancel;

    pthread_mutex_lock(&tf->mu);
    cancel = tf->cancel;
    pthread_mutex_unlock(&tf->mu);
    if (cancel) {
        submit_finish(tf, 0, -ECANCELED);   /* cancelled before it started: never runs */
        return;
    }
    tf->task = weft_task_spawn(tf->loop, tf->fn, tf->arg, NULL);
    if (tf->task == NULL) {
        submit_finish(tf, -errno, 0);
        return;
    }
    if (weft_future_add_done_callback(weft_task_future(tf->task), submit_task_done, tf) < 0) {
        weft_task_cancel(tf->task);
        weft_task_unref(tf->task);
        tf->task = NULL;
        submit_finish(tf, -ENOMEM, 0);
    }
}

struct weft_thread_future *
weft_run_coroutine_threadsafe_nowait(struct weft_loop *loop, weft_task_fn *fn, void *arg)
{
    struct weft_thread_future *tf;
    int rc;

    if (loop == NULL || fn == NULL) {
        errno = EINVAL;
        return NULL;
    }
    tf = calloc(1, sizeof(*tf));
    if (tf == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    tf->fn = fn;
    tf->arg = arg;
    tf->loop = loop;
    tf->refs = 2;
    pthread_mutex_init(&tf->mu, NULL);
    pthread_cond_init(&tf->cv, NULL);
    rc = weft_call_soon_threadsafe(loop, submit_start, tf);
    if (rc < 0) {
        pthread_cond_destroy(&tf->cv);
        pthread_mutex_destroy(&tf->mu);
        free(tf);
        errno = -rc;
        return NULL;
    }
    return tf;
}

bool
weft_thread_future_done(struct weft_thread_future *tf)
{
    bool done;

    pthread_mutex_lock(&tf->mu);
    done = tf->done;
    pthread_mutex_unlock(&tf->mu);
    return done;
}

int
weft_thread_future_wait(struct weft_thread_future *tf, int64_t timeout_ms, intptr_t *result)
{
    struct timespec until;
    int rc = 0;

    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (timeout_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
    }
    pthread_mutex_lock(&tf->mu);
    while (!tf->done && rc == 0)
        rc = timeout_ms < 0 ? pthread_cond_wait(&tf->cv, &tf->mu)
                            : pthread_cond_timedwait(&tf->cv, &tf->mu, &until);
    if (tf->done) {
        rc = tf->err;
        if (rc == 0 && result != NULL)
            *result = tf->result;
    } else {
        rc = -ETIMEDOUT;
    }
    pthread_mutex_unlock(&tf->mu);
    return rc;
}

static void
cancel_on_loop(void *arg)
{
    struct weft_thread_future *tf = arg;

    if (tf->task != NULL)
        (void)weft_task_cancel(tf->task);
    tf_unref(tf);
}

bool
weft_thread_future_cancel(struct weft_thread_future *tf)
{
    bool sent;

    pthread_mutex_lock(&tf->mu);
    sent = !tf->done;
    if (sent) {
        tf->cancel = true;
        tf->refs++;         /* cancel_on_loop's */
    }
    pthread_mutex_unlock(&tf->mu);
    if (sent && weft_call_soon_threadsafe(tf->loop, cancel_on_loop, tf) < 0) {
        tf_unref(tf);
        return false;
    }
    return sent;
}

void
weft_thread_future_free(struct weft_thread_future *tf)
{
    if (tf != NULL)
        tf_unref(tf);
}

int
weft_run_coroutine_threadsafe(struct weft_loop *loop, intptr_t (*fn)(void *), void *arg,
                              intptr_t *result)
{
    struct weft_thread_future *tf = weft_run_coroutine_threadsafe_nowait(loop, fn, arg);
    int rc;

    if (tf == NULL)
        return -errno;
    rc = weft_thread_future_wait(tf, -1, result);
    weft_thread_future_free(tf);
    return rc;
}
