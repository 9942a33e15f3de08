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

struct submit {
    weft_task_fn *fn;
    void *arg;
    struct weft_loop *loop;
    struct weft_task *task;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int err;
    intptr_t result;
};

static void
submit_finish(struct submit *s, int err, intptr_t result)
{
    pthread_mutex_lock(&s->mu);
    s->err = err;
    s->result = result;
    s->done = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);   /* s may be gone from here on */
}

static void
submit_task_done(struct weft_future *f, void *arg)
{
    struct submit *s = arg;
    intptr_t result = weft_future_result(f);

    weft_task_unref(s->task);
    submit_finish(s, 0, result);
}

static void
submit_start(void *arg)
{
    struct submit *s = arg;

    s->task = weft_task_spawn(s->loop, s->fn, s->arg, NULL);
    if (s->task == NULL) {
        submit_finish(s, -errno, 0);
        return;
    }
    if (weft_future_add_done_callback(weft_task_future(s->task), submit_task_done, s) < 0) {
        weft_task_cancel(s->task);
        weft_task_unref(s->task);
        submit_finish(s, -ENOMEM, 0);
    }
}

int
weft_run_coroutine_threadsafe(struct weft_loop *loop, intptr_t (*fn)(void *), void *arg,
                              intptr_t *result)
{
    struct submit s = { .fn = fn, .arg = arg, .loop = loop };
    int rc;

    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    rc = weft_call_soon_threadsafe(loop, submit_start, &s);
    if (rc == 0) {
        pthread_mutex_lock(&s.mu);
        while (!s.done)
            pthread_cond_wait(&s.cv, &s.mu);
        pthread_mutex_unlock(&s.mu);
        rc = s.err;
        if (rc == 0 && result != NULL)
            *result = s.result;
    }
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    return rc;
}
