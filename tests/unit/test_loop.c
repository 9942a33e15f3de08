/* SPDX-License-Identifier: MIT */
/* test_loop.c: weft/loop.h: call order, timers, cancel, other threads, signals, errors, teardown. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/util.h>

#include <weft/weft.h>
#include "core/internal.h"
#include "core/loop-int.h"
#include "harness.h"

/* A record of which callbacks ran, in order. */
struct trace {
    struct weft_loop *loop;
    char seen[64];
    size_t n;
    size_t want;                 /* stop the loop when n reaches it */
    bool done;
    struct weft_handle *victim;  /* cancelled by a callback */
};

struct step {
    struct trace *t;
    char name;
    uint64_t at_ms;              /* when it ran */
};

static void
record(struct step *s)
{
    struct trace *t = s->t;

    s->at_ms = weft_loop_time(t->loop);
    if (t->n < sizeof(t->seen) - 1)
        t->seen[t->n++] = s->name;
    if (t->want && t->n == t->want)
        t->done = true;
}

static void
step_cb(void *arg)
{
    record(arg);
}

static int
setup(void **state)
{
    struct trace *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return -1;
    t->loop = harness_loop_new();
    *state = t;
    return 0;
}

static int
teardown(void **state)
{
    struct trace *t = *state;

    weft_loop_free(t->loop);
    free(t);
    return 0;
}

/* call_soon */

static struct step later_step;

static void
schedules_another(void *arg)
{
    struct step *s = arg;

    record(s);
    later_step.t = s->t;
    later_step.name = 'D';
    assert_non_null(weft_call_soon(s->t->loop, step_cb, &later_step));
}

static void
test_call_soon_runs_in_fifo_order_and_new_calls_wait(void **state)
{
    struct trace *t = *state;
    struct step a = { t, 'A', 0 }, b = { t, 'B', 0 }, c = { t, 'C', 0 };

    assert_non_null(weft_call_soon(t->loop, schedules_another, &a));
    assert_non_null(weft_call_soon(t->loop, step_cb, &b));
    assert_non_null(weft_call_soon(t->loop, step_cb, &c));
    assert_int_equal(t->n, 0);                  /* nothing runs inline */
    assert_int_equal(weft_loop_run_once(t->loop), 0);
    assert_string_equal(t->seen, "ABC");        /* D was scheduled during the drain */
    assert_int_equal(weft_loop_run_once(t->loop), 0);
    assert_string_equal(t->seen, "ABCD");
}

static void
test_call_soon_rejects_null_callback(void **state)
{
    struct trace *t = *state;

    errno = 0;
    assert_null(weft_call_soon(t->loop, NULL, NULL));
    assert_int_equal(errno, EINVAL);
}

/* A callback that reschedules itself forever must not starve timers. */
static void
spin(void *arg)
{
    struct trace *t = arg;

    if (!t->done)
        assert_non_null(weft_call_soon(t->loop, spin, t));
}

static void
done_cb(void *arg)
{
    struct trace *t = arg;

    t->done = true;
}

static void
test_self_rescheduling_callback_does_not_starve_timers(void **state)
{
    struct trace *t = *state;

    assert_non_null(weft_call_soon(t->loop, spin, t));
    assert_non_null(weft_call_later(t->loop, 20, done_cb, t));
    assert_int_equal(harness_run_until(t->loop, &t->done, 3000), 0);
    harness_run_for(t->loop, 5);                /* let the last spin end */
}

/* Timers */

static void
test_call_later_orders_by_time_then_fifo(void **state)
{
    struct trace *t = *state;
    struct step c = { t, 'c', 0 }, a = { t, 'a', 0 }, b = { t, 'b', 0 }, a2 = { t, 'A', 0 };
    uint64_t start = weft_loop_time(t->loop);

    t->want = 4;
    assert_non_null(weft_call_later(t->loop, 60, step_cb, &c));
    assert_non_null(weft_call_later(t->loop, 20, step_cb, &a));
    assert_non_null(weft_call_later(t->loop, 40, step_cb, &b));
    assert_non_null(weft_call_later(t->loop, 20, step_cb, &a2));
    assert_int_equal(harness_run_until(t->loop, &t->done, 3000), 0);
    assert_string_equal(t->seen, "aAbc");
    assert_true(a.at_ms >= start + 20);         /* never early */
    assert_true(b.at_ms >= start + 40);
    assert_true(c.at_ms >= start + 60);
}

static void
test_call_at_same_time_runs_in_scheduling_order(void **state)
{
    struct trace *t = *state;
    struct step s[8];
    uint64_t when = weft_loop_time(t->loop) + 10;

    t->want = 8;
    for (int i = 0; i < 8; i++) {
        s[i] = (struct step){ t, (char)('0' + i), 0 };
        assert_non_null(weft_call_at(t->loop, when, step_cb, &s[i]));
    }
    assert_int_equal(harness_run_until(t->loop, &t->done, 3000), 0);
    assert_string_equal(t->seen, "01234567");
}

static void
test_call_at_in_the_past_runs_soon(void **state)
{
    struct trace *t = *state;
    struct step s = { t, 'p', 0 };

    assert_non_null(weft_call_at(t->loop, 0, step_cb, &s));
    assert_non_null(weft_call_at(t->loop, weft_loop_time(t->loop) - 1000, step_cb, &s));
    t->want = 2;
    /* due at once: a couple of non-blocking iterations are enough */
    for (int i = 0; i < 5 && !t->done; i++)
        assert_int_equal(weft_loop_run_once(t->loop), 0);
    assert_true(t->done);
}

static void
test_run_once_does_not_wait_for_timers(void **state)
{
    struct trace *t = *state;
    struct step s = { t, 'x', 0 };
    uint64_t start = weft_loop_time(t->loop);

    assert_non_null(weft_call_later(t->loop, 2000, step_cb, &s));
    assert_int_equal(weft_loop_run_once(t->loop), 0);
    assert_true(weft_loop_time(t->loop) - start < 1000);
    assert_int_equal(t->n, 0);
}

static void
test_time_is_monotonic_and_consistent(void **state)
{
    struct trace *t = *state;
    uint64_t ms = weft_loop_time(t->loop), ns = weft_loop_time_ns(t->loop);

    assert_true(ns / 1000000 >= ms);
    assert_true(ns / 1000000 - ms < 1000);
    usleep(2000);
    assert_true(weft_loop_time(t->loop) >= ms + 1);
}

/* Cancel */

static void
test_cancel_before_run(void **state)
{
    struct trace *t = *state;
    struct step s = { t, 's', 0 }, l = { t, 'l', 0 }, k = { t, 'k', 0 };
    struct weft_handle *hs, *hl;

    hs = weft_call_soon(t->loop, step_cb, &s);
    hl = weft_call_later(t->loop, 5, step_cb, &l);
    assert_non_null(weft_call_later(t->loop, 10, step_cb, &k));
    assert_non_null(hs);
    assert_non_null(hl);
    weft_handle_cancel(hs);
    weft_handle_cancel(hl);
    weft_handle_cancel(NULL);                   /* a no-op */
    harness_run_for(t->loop, 40);
    assert_string_equal(t->seen, "k");
}

static void
cancels_victim(void *arg)
{
    struct step *s = arg;

    record(s);
    weft_handle_cancel(s->t->victim);
}

static void
test_callback_cancels_another_pending_handle(void **state)
{
    struct trace *t = *state;
    struct step a = { t, 'a', 0 }, v = { t, 'v', 0 }, c = { t, 'c', 0 };

    /* in the same ready batch */
    assert_non_null(weft_call_soon(t->loop, cancels_victim, &a));
    t->victim = weft_call_soon(t->loop, step_cb, &v);
    assert_non_null(weft_call_soon(t->loop, step_cb, &c));
    harness_run_for(t->loop, 10);
    assert_string_equal(t->seen, "ac");

    /* two timers due together: both move to the ready queue, the first cancels the second */
    t->n = 0;
    memset(t->seen, 0, sizeof(t->seen));
    uint64_t when = weft_loop_time(t->loop) + 5;
    assert_non_null(weft_call_at(t->loop, when, cancels_victim, &a));
    t->victim = weft_call_at(t->loop, when, step_cb, &v);
    assert_non_null(weft_call_at(t->loop, when + 5, step_cb, &c));
    harness_run_for(t->loop, 40);
    assert_string_equal(t->seen, "ac");
}

static void
cancels_itself(void *arg)
{
    struct step *s = arg;

    record(s);
    weft_handle_cancel(s->t->victim);           /* the running handle: a no-op */
}

static void
test_cancel_of_running_handle_is_harmless(void **state)
{
    struct trace *t = *state;
    struct step a = { t, 'a', 0 };

    t->victim = weft_call_soon(t->loop, cancels_itself, &a);
    harness_run_for(t->loop, 5);
    assert_string_equal(t->seen, "a");
}

static void
test_many_timers_scheduled_and_cancelled(void **state)
{
    enum { N = 100000 };
    struct trace *t = *state;
    struct weft_handle **h = calloc(N, sizeof(*h));
    struct step s = { t, 'x', 0 };
    uint64_t start = weft_loop_time_ns(t->loop);

    assert_non_null(h);
    for (int i = 0; i < N; i++) {
        h[i] = weft_call_later(t->loop, 1000 + (uint64_t)(i * 7919) % 5000, step_cb, &s);
        assert_non_null(h[i]);
    }
    /* cancel in a scrambled order: roots, leaves and the middle */
    for (int i = 0; i < N; i++)
        weft_handle_cancel(h[(size_t)i * 7 % N]);      /* 7 is coprime with N */
    uint64_t took_ms = (weft_loop_time_ns(t->loop) - start) / 1000000;
    print_message("100k timers scheduled and cancelled in %llu ms\n",
                  (unsigned long long)took_ms);
    assert_true(took_ms < 5000);                /* generous: ASan, a busy machine */
    harness_run_for(t->loop, 10);
    assert_int_equal(t->n, 0);
    free(h);
}

/* Many timers with a few distinct deadlines run sorted by (time, scheduling order). */
struct ordered {
    struct trace *t;
    uint64_t when;
    int idx;
    int *last_idx;
    uint64_t *last_when;
    int *count;
    bool *bad;
};

static void
ordered_cb(void *arg)
{
    struct ordered *o = arg;

    if (o->when < *o->last_when || (o->when == *o->last_when && o->idx < *o->last_idx))
        *o->bad = true;
    *o->last_when = o->when;
    *o->last_idx = o->idx;
    if (++*o->count == 2000)
        o->t->done = true;
}

static void
test_timers_run_sorted_by_time_and_sequence(void **state)
{
    struct trace *t = *state;
    struct ordered *o = calloc(2000, sizeof(*o));
    uint64_t base = weft_loop_time(t->loop) + 5, last_when = 0;
    int last_idx = -1, count = 0;
    bool bad = false;

    assert_non_null(o);
    for (int i = 0; i < 2000; i++) {
        o[i] = (struct ordered){ t, base + (uint64_t)(i * 37) % 10, i, &last_idx, &last_when,
                                 &count, &bad };
        assert_non_null(weft_call_at(t->loop, o[i].when, ordered_cb, &o[i]));
    }
    assert_int_equal(harness_run_until(t->loop, &t->done, 3000), 0);
    assert_int_equal(count, 2000);
    assert_false(bad);
    free(o);
}

/* Other threads */

struct poster {
    struct weft_loop *loop;
    unsigned delay_ms;
    bool ran;
    uint64_t ran_at;
    pthread_t thread;
};

static void
posted_cb(void *arg)
{
    struct poster *p = arg;

    p->ran = true;
    p->ran_at = weft_loop_time(p->loop);
    weft_loop_stop(p->loop);
}

static void *
post_later(void *arg)
{
    struct poster *p = arg;

    usleep(p->delay_ms * 1000);
    if (weft_call_soon_threadsafe(p->loop, posted_cb, p) != 0)
        abort();
    return NULL;
}

static void
safety_stop(void *arg)
{
    struct trace *t = arg;

    t->done = true;                             /* the safety net fired: a failure */
    weft_loop_stop(t->loop);
}

static void
test_threadsafe_call_wakes_a_blocked_loop(void **state)
{
    struct trace *t = *state;
    struct poster p = { t->loop, 50, false, 0, 0 };
    uint64_t start = weft_loop_time(t->loop);

    /* only a far safety timer: the loop sleeps in epoll_wait until the eventfd */
    assert_non_null(weft_call_later(t->loop, 5000, safety_stop, t));
    assert_int_equal(pthread_create(&p.thread, NULL, post_later, &p), 0);
    assert_int_equal(weft_loop_run(t->loop), 0);
    pthread_join(p.thread, NULL);
    assert_true(p.ran);
    assert_false(t->done);
    assert_true(p.ran_at - start >= 40);
    assert_true(p.ran_at - start < 3000);
}

static void
mark_cb(void *arg)
{
    struct poster *p = arg;

    p->ran = true;
}

static void *
stop_later(void *arg)
{
    struct poster *p = arg;

    usleep(p->delay_ms * 1000);
    if (weft_call_soon_threadsafe(p->loop, mark_cb, p) != 0)
        abort();
    weft_loop_stop(p->loop);
    return NULL;
}

static void
test_stop_from_another_thread(void **state)
{
    struct trace *t = *state;
    struct poster p = { t->loop, 50, false, 0, 0 };
    uint64_t start = weft_loop_time(t->loop);

    assert_non_null(weft_call_later(t->loop, 5000, safety_stop, t));
    assert_int_equal(pthread_create(&p.thread, NULL, stop_later, &p), 0);
    assert_int_equal(weft_loop_run(t->loop), 0);
    pthread_join(p.thread, NULL);
    assert_false(t->done);
    assert_true(p.ran);                         /* posted before the stop: ran before it */
    assert_false(weft_loop_is_running(t->loop));
    assert_true(weft_loop_time(t->loop) - start < 3000);
}

enum { FLOOD_THREADS = 4, FLOOD_CALLS = 2000 };

struct flood {
    struct weft_loop *loop;
    int next[FLOOD_THREADS];        /* the next sequence number expected per thread */
    int total;
    bool out_of_order;
    bool done;
};

struct flood_msg {
    struct flood *f;
    int thread, seq;
};

static void
flood_cb(void *arg)
{
    struct flood_msg *m = arg;
    struct flood *f = m->f;

    if (m->seq != f->next[m->thread])
        f->out_of_order = true;
    f->next[m->thread] = m->seq + 1;
    if (++f->total == FLOOD_THREADS * FLOOD_CALLS)
        f->done = true;
    free(m);
}

struct flooder {
    struct flood *f;
    int thread;
};

static void *
flood_thread(void *arg)
{
    struct flooder *fl = arg;

    for (int i = 0; i < FLOOD_CALLS; i++) {
        struct flood_msg *m = malloc(sizeof(*m));

        if (m == NULL)
            abort();
        *m = (struct flood_msg){ fl->f, fl->thread, i };
        if (weft_call_soon_threadsafe(fl->f->loop, flood_cb, m) != 0)
            abort();
    }
    return NULL;
}

static void
test_threadsafe_calls_from_many_threads_keep_per_thread_order(void **state)
{
    struct trace *t = *state;
    struct flood f = { .loop = t->loop };
    struct flooder fl[FLOOD_THREADS];
    pthread_t th[FLOOD_THREADS];

    for (int i = 0; i < FLOOD_THREADS; i++) {
        fl[i] = (struct flooder){ &f, i };
        assert_int_equal(pthread_create(&th[i], NULL, flood_thread, &fl[i]), 0);
    }
    assert_int_equal(harness_run_until(t->loop, &f.done, 10000), 0);
    for (int i = 0; i < FLOOD_THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(f.total, FLOOD_THREADS * FLOOD_CALLS);
    assert_false(f.out_of_order);
}

/* Running, stopping, re-entry */

struct reentry {
    struct weft_loop *loop;
    int run_rc, once_rc;
    bool was_running;
};

static void
reenter(void *arg)
{
    struct reentry *r = arg;

    r->was_running = weft_loop_is_running(r->loop);
    r->run_rc = weft_loop_run(r->loop);
    r->once_rc = weft_loop_run_once(r->loop);
    weft_loop_stop(r->loop);
}

static void
test_run_from_a_callback_is_ebusy(void **state)
{
    struct trace *t = *state;
    struct reentry r = { t->loop, 0, 0, false };

    assert_false(weft_loop_is_running(t->loop));
    assert_non_null(weft_call_soon(t->loop, reenter, &r));
    assert_non_null(weft_call_later(t->loop, 5000, safety_stop, t));
    assert_int_equal(weft_loop_run(t->loop), 0);
    assert_true(r.was_running);
    assert_int_equal(r.run_rc, -EBUSY);
    assert_int_equal(r.once_rc, -EBUSY);
    assert_false(t->done);
    assert_false(weft_loop_is_running(t->loop));
}

static void
stop_then_record(void *arg)
{
    struct step *s = arg;

    weft_loop_stop(s->t->loop);
    record(s);
}

static void
test_stop_lets_the_current_batch_finish(void **state)
{
    struct trace *t = *state;
    struct step a = { t, 'a', 0 }, b = { t, 'b', 0 }, c = { t, 'c', 0 };

    assert_non_null(weft_call_soon(t->loop, stop_then_record, &a));
    assert_non_null(weft_call_soon(t->loop, step_cb, &b));
    assert_int_equal(weft_loop_run(t->loop), 0);
    assert_string_equal(t->seen, "ab");
    /* the loop runs again after a stop */
    assert_non_null(weft_call_soon(t->loop, stop_then_record, &c));
    assert_int_equal(weft_loop_run(t->loop), 0);
    assert_string_equal(t->seen, "abc");
}

static void
test_stop_before_run_runs_one_iteration(void **state)
{
    struct trace *t = *state;
    struct step a = { t, 'a', 0 };

    weft_loop_stop(t->loop);
    assert_non_null(weft_call_soon(t->loop, step_cb, &a));
    assert_int_equal(weft_loop_run(t->loop), 0);    /* returns, does not hang */
    assert_string_equal(t->seen, "a");
}

/* Signals */

struct sig_seen {
    struct weft_loop *loop;
    int signum;
    int count;
    bool done;
    void *arg;
};

static void
on_signal(struct weft_loop *loop, int signum, void *arg)
{
    struct sig_seen *s = arg;

    assert_ptr_equal(loop, s->loop);
    s->signum = signum;
    s->count++;
    s->done = true;
}

static void
on_signal_wrong(struct weft_loop *loop, int signum, void *arg)
{
    fail_msg("replaced handler ran");
}

static void
test_signal_handler_runs_on_the_loop_and_remove_restores(void **state)
{
    struct trace *t = *state;
    struct sig_seen s = { .loop = t->loop };
    struct sigaction before, after;

    assert_int_equal(sigaction(SIGUSR1, NULL, &before), 0);
    assert_ptr_equal(before.sa_handler, SIG_DFL);
    assert_int_equal(weft_loop_add_signal_handler(t->loop, SIGUSR1, on_signal_wrong, NULL), 0);
    /* replacing: the second handler is the only one */
    assert_int_equal(weft_loop_add_signal_handler(t->loop, SIGUSR1, on_signal, &s), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(s.count, 0);               /* not inside the raw handler */
    assert_int_equal(harness_run_until(t->loop, &s.done, 3000), 0);
    assert_int_equal(s.signum, SIGUSR1);
    assert_int_equal(s.count, 1);

    assert_int_equal(weft_loop_remove_signal_handler(t->loop, SIGUSR1), 1);
    assert_int_equal(sigaction(SIGUSR1, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, SIG_DFL);
    assert_int_equal(weft_loop_remove_signal_handler(t->loop, SIGUSR1), 0);
}

static void
on_signal_remove_self(struct weft_loop *loop, int signum, void *arg)
{
    struct sig_seen *s = arg;

    s->count++;
    s->done = true;
    assert_int_equal(weft_loop_remove_signal_handler(loop, signum), 1);
}

static void
test_signal_handler_may_remove_itself(void **state)
{
    struct trace *t = *state;
    struct sig_seen s = { .loop = t->loop };
    struct sigaction after;

    assert_int_equal(weft_loop_add_signal_handler(t->loop, SIGUSR2, on_signal_remove_self, &s),
                     0);
    assert_int_equal(raise(SIGUSR2), 0);
    assert_int_equal(harness_run_until(t->loop, &s.done, 3000), 0);
    harness_run_for(t->loop, 5);
    assert_int_equal(s.count, 1);
    assert_int_equal(sigaction(SIGUSR2, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, SIG_DFL);
}

static void
test_signal_handler_rejects_uncatchable(void **state)
{
    struct trace *t = *state;
    struct sig_seen s = { .loop = t->loop };

    assert_int_equal(weft_loop_add_signal_handler(t->loop, SIGKILL, on_signal, &s), -EINVAL);
    assert_int_equal(weft_loop_add_signal_handler(t->loop, SIGSTOP, on_signal, &s), -EINVAL);
    assert_int_equal(weft_loop_add_signal_handler(t->loop, 0, on_signal, &s), -EINVAL);
    assert_int_equal(weft_loop_add_signal_handler(t->loop, -1, on_signal, &s), -EINVAL);
    assert_int_equal(weft_loop_add_signal_handler(t->loop, NSIG, on_signal, &s), -EINVAL);
    assert_int_equal(weft_loop_add_signal_handler(t->loop, 1000, on_signal, &s), -EINVAL);
    assert_int_equal(weft_loop_remove_signal_handler(t->loop, SIGKILL), 0);
    assert_int_equal(weft_loop_remove_signal_handler(t->loop, 1000), 0);
}

static void
test_loop_free_restores_signal_disposition(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct sig_seen s = { .loop = loop };
    struct sigaction after;

    (void)state;
    assert_int_equal(weft_loop_add_signal_handler(loop, SIGUSR2, on_signal, &s), 0);
    weft_loop_free(loop);
    assert_int_equal(sigaction(SIGUSR2, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, SIG_DFL);
}

/* Errors nobody handled */

struct err_seen {
    const struct weft_error_context *ctx;
    struct weft_loop *loop;
    void *arg;
    int calls;
};

static void
custom_handler(struct weft_loop *loop, const struct weft_error_context *ctx, void *arg)
{
    struct err_seen *e = arg;

    e->ctx = ctx;
    e->loop = loop;
    e->arg = arg;
    e->calls++;
}

static void
test_custom_error_handler_receives_context(void **state)
{
    struct trace *t = *state;
    struct err_seen e = { 0 };
    struct weft_error_context ctx = { .message = "task failed", .error = -ECONNRESET };

    harness_log_capture();
    harness_log_clear();
    weft_loop_set_error_handler(t->loop, custom_handler, &e);
    weft_loop_call_error_handler(t->loop, &ctx);
    assert_int_equal(e.calls, 1);
    assert_ptr_equal(e.ctx, &ctx);
    assert_ptr_equal(e.loop, t->loop);
    assert_ptr_equal(e.arg, &e);
    assert_false(harness_log_contains("task failed"));  /* the default did not run */

    weft_loop_set_error_handler(t->loop, NULL, NULL);    /* back to the default */
    weft_loop_call_error_handler(t->loop, &ctx);
    assert_int_equal(e.calls, 1);
    assert_true(harness_log_contains("error: task failed: ECONNRESET"));
    weft_log_set_handler(NULL, NULL, WEFT_LOG_INFO);
}

static void
test_default_error_handler_names_the_peer(void **state)
{
    struct trace *t = *state;
    struct weft_error_context ctx = { .message = "data_received failed", .error = -EPIPE,
                                      .peer = "192.0.2.7:4242" };

    harness_log_capture();
    harness_log_clear();
    weft_loop_call_error_handler(t->loop, &ctx);
    assert_true(harness_log_contains("error: data_received failed: EPIPE"));
    assert_true(harness_log_contains("192.0.2.7:4242"));
    weft_log_set_handler(NULL, NULL, WEFT_LOG_INFO);
}

static void
test_default_error_handler_logs_one_error_line(void **state)
{
    struct trace *t = *state;
    struct weft_error_context ctx = { .message = "protocol callback failed",
                                      .error = -WEFT_EPROTO };
    struct weft_error_context plain = { .message = "no code here" };

    harness_log_capture();
    harness_log_clear();
    weft_loop_default_error_handler(t->loop, &ctx);
    assert_true(harness_log_contains("error: protocol callback failed: WEFT_EPROTO"));
    weft_loop_call_error_handler(t->loop, &plain);
    assert_true(harness_log_contains("error: no code here"));
    weft_log_set_handler(NULL, NULL, WEFT_LOG_INFO);
}

/* Slots, DNS, teardown */

static int destroy_order[WEFT__SLOT_COUNT];
static int destroy_n;

struct slot_owner {
    int id;
    struct weft_handle *timer;      /* still valid in the destructor */
};

static void
slot_destroy(void *p)
{
    struct slot_owner *o = p;

    destroy_order[destroy_n++] = o->id;
    weft_handle_cancel(o->timer);
}

static void
never_cb(void *arg)
{
    fail_msg("a call pending at weft_loop_free ran");
}

static void
test_loop_free_runs_slot_destructors_in_reverse_and_drops_calls(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct slot_owner tasks = { 1, NULL }, tls = { 2, NULL };
    static char cookie;

    (void)state;
    destroy_n = 0;
    assert_null(weft__loop_get_slot(loop, WEFT__SLOT_TASKS));
    tasks.timer = weft_call_later(loop, 1000, never_cb, NULL);
    tls.timer = weft_call_later(loop, 1000, never_cb, NULL);
    weft__loop_set_slot(loop, WEFT__SLOT_TASKS, &tasks, slot_destroy);
    weft__loop_set_slot(loop, WEFT__SLOT_TLS, &tls, slot_destroy);
    weft__loop_set_slot(loop, WEFT__SLOT_USER1, &cookie, NULL);
    assert_ptr_equal(weft__loop_get_slot(loop, WEFT__SLOT_TASKS), &tasks);
    assert_ptr_equal(weft__loop_get_slot(loop, WEFT__SLOT_USER1), &cookie);
    /* pending calls of every kind, none of which may run */
    assert_non_null(weft_call_soon(loop, never_cb, NULL));
    assert_non_null(weft_call_later(loop, 1, never_cb, NULL));
    assert_int_equal(weft_call_soon_threadsafe(loop, never_cb, NULL), 0);
    weft_loop_free(loop);
    assert_int_equal(destroy_n, 2);
    assert_int_equal(destroy_order[0], 2);      /* TLS after TASKS: destroyed first */
    assert_int_equal(destroy_order[1], 1);
}

struct lookup {
    bool done;
    int result;
    bool found;
};

static void
lookup_cb(int result, struct evutil_addrinfo *res, void *arg)
{
    struct lookup *l = arg;

    l->result = result;
    for (struct evutil_addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)ai->ai_addr;
            l->found |= sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
        } else if (ai->ai_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ai->ai_addr;
            l->found |= memcmp(&sin6->sin6_addr, &in6addr_loopback, 16) == 0;
        }
    }
    if (res != NULL)
        evutil_freeaddrinfo(res);
    l->done = true;
}

static void
resolve(struct weft_loop *loop, const char *name, struct lookup *l)
{
    struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct evdns_base *dns = weft__loop_dns(loop);

    assert_non_null(dns);
    evdns_getaddrinfo(dns, name, "80", &hints, lookup_cb, l);
    assert_int_equal(harness_run_until(loop, &l->done, 3000), 0);
}

static void
test_dns_resolves_localhost_and_numeric_hosts_offline(void **state)
{
    struct trace *t = *state;
    struct lookup a = { 0 }, b = { 0 }, c = { 0 };

    assert_ptr_equal(weft__loop_dns(t->loop), weft__loop_dns(t->loop));
    resolve(t->loop, "localhost", &a);
    assert_int_equal(a.result, 0);
    assert_true(a.found);
    resolve(t->loop, "127.0.0.1", &b);
    assert_int_equal(b.result, 0);
    assert_true(b.found);
    resolve(t->loop, "::1", &c);
    assert_int_equal(c.result, 0);
    assert_true(c.found);
}

static void
test_dns_without_nameservers_still_resolves_hosts(void **state)
{
    char path[] = "/tmp/weft-resolv-XXXXXX";
    int fd = mkstemp(path);
    struct weft_loop *loop;
    struct lookup a = { 0 }, b = { 0 }, c = { 0 };

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "# no nameserver here\nsearch example\n", 36), 36);
    close(fd);
    weft__loop_set_resolv_conf(path);
    harness_log_capture();
    harness_log_clear();
    loop = harness_loop_new();
    resolve(loop, "localhost", &a);
    assert_true(harness_log_contains("no nameserver"));
    assert_int_equal(a.result, 0);
    assert_true(a.found);
    resolve(loop, "127.0.0.1", &b);
    assert_int_equal(b.result, 0);
    assert_true(b.found);
    /* nothing to ask for other names: a caller sees no nameserver and cancels */
    struct evdns_base *dns = weft__loop_dns(loop);
    struct evutil_addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct evdns_getaddrinfo_request *req;

    assert_int_equal(evdns_base_count_nameservers(dns), 0);
    req = evdns_getaddrinfo(dns, "no-such-host.invalid", "80", &hints, lookup_cb, &c);
    assert_non_null(req);
    evdns_getaddrinfo_cancel(req);
    assert_int_equal(harness_run_until(loop, &c.done, 3000), 0);
    assert_int_equal(c.result, EVUTIL_EAI_CANCEL);
    weft_loop_free(loop);
    weft__loop_set_resolv_conf(NULL);
    weft_log_set_handler(NULL, NULL, WEFT_LOG_INFO);
    unlink(path);
}

static void
test_get_base_and_free_null(void **state)
{
    struct trace *t = *state;

    assert_non_null(weft_loop_get_base(t->loop));
    weft_loop_free(NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_call_soon_runs_in_fifo_order_and_new_calls_wait),
        T(test_call_soon_rejects_null_callback),
        T(test_self_rescheduling_callback_does_not_starve_timers),
        T(test_call_later_orders_by_time_then_fifo),
        T(test_call_at_same_time_runs_in_scheduling_order),
        T(test_call_at_in_the_past_runs_soon),
        T(test_run_once_does_not_wait_for_timers),
        T(test_time_is_monotonic_and_consistent),
        T(test_cancel_before_run),
        T(test_callback_cancels_another_pending_handle),
        T(test_cancel_of_running_handle_is_harmless),
        T(test_many_timers_scheduled_and_cancelled),
        T(test_timers_run_sorted_by_time_and_sequence),
        T(test_threadsafe_call_wakes_a_blocked_loop),
        T(test_stop_from_another_thread),
        T(test_threadsafe_calls_from_many_threads_keep_per_thread_order),
        T(test_run_from_a_callback_is_ebusy),
        T(test_stop_lets_the_current_batch_finish),
        T(test_stop_before_run_runs_one_iteration),
        T(test_signal_handler_runs_on_the_loop_and_remove_restores),
        T(test_signal_handler_may_remove_itself),
        T(test_signal_handler_rejects_uncatchable),
        cmocka_unit_test(test_loop_free_restores_signal_disposition),
        T(test_custom_error_handler_receives_context),
        T(test_default_error_handler_logs_one_error_line),
        T(test_default_error_handler_names_the_peer),
        cmocka_unit_test(test_loop_free_runs_slot_destructors_in_reverse_and_drops_calls),
        T(test_dns_resolves_localhost_and_numeric_hosts_offline),
        cmocka_unit_test(test_dns_without_nameservers_still_resolves_hosts),
        T(test_get_base_and_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
