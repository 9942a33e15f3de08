/* SPDX-License-Identifier: MIT */
/* test_fdwatch.c: add/remove_reader/writer on the loop, wait_readable/writable in tasks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include "harness.h"

/* A pipe or a socketpair, both ends non-blocking, closed by teardown. */
struct fds {
    int fd[2];
};

static void
nonblock(int fd)
{
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

static int
setup_pipe(void **state)
{
    struct fds *p = calloc(1, sizeof(*p));

    harness_setup(state);
    assert_non_null(p);
    assert_int_equal(pipe(p->fd), 0);
    nonblock(p->fd[0]);
    nonblock(p->fd[1]);
    *state = p;
    return 0;
}

static int
setup_socketpair(void **state)
{
    struct fds *p = calloc(1, sizeof(*p));

    harness_setup(state);
    assert_non_null(p);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p->fd), 0);
    *state = p;
    return 0;
}

static int
teardown_fds(void **state)
{
    struct fds *p = *state;

    /* The loop goes first: it must free the watchers still registered on these fds. */
    harness_teardown(state);
    close(p->fd[0]);
    close(p->fd[1]);
    free(p);
    return 0;
}

/* What the callbacks saw. */
struct seen {
    int calls;
    int fd;
    size_t bytes;
    bool done;
    bool read_it;           /* read what is there (else leave it: level-triggered) */
    bool remove_self;
    int ret;                /* what the callback returns */
    int other_fd;           /* remove_other: the reader to remove, or -1 */
    char buf[64];
};

static int
on_readable(struct weft_loop *loop, int fd, void *arg)
{
    struct seen *s = arg;
    ssize_t n;

    s->calls++;
    s->fd = fd;
    if (s->read_it && (n = read(fd, s->buf + s->bytes, sizeof(s->buf) - 1 - s->bytes)) > 0)
        s->bytes += (size_t)n;
    if (s->remove_self)
        assert_int_equal(weft_remove_reader(loop, fd), 1);
    if (s->other_fd >= 0)
        weft_remove_reader(loop, s->other_fd);
    s->done = true;
    return s->ret;
}

static int
on_writable(struct weft_loop *loop, int fd, void *arg)
{
    struct seen *s = arg;

    s->calls++;
    s->fd = fd;
    if (s->remove_self)
        assert_int_equal(weft_remove_writer(loop, fd), 1);
    s->done = true;
    return s->ret;
}

static void
test_reader_on_a_pipe_runs_when_data_arrives(void **state)
{
    struct fds *p = *state;
    struct seen s = { .read_it = true, .other_fd = -1 };

    assert_int_equal(weft_add_reader(harness_loop, p->fd[0], on_readable, &s), 0);
    harness_run_for(harness_loop, 20);
    assert_int_equal(s.calls, 0);               /* nothing to read yet */
    assert_int_equal(write(p->fd[1], "hello", 5), 5);
    assert_int_equal(harness_run_until(harness_loop, &s.done, 1000), 0);
    assert_int_equal(s.fd, p->fd[0]);
    assert_int_equal(s.bytes, 5);
    assert_memory_equal(s.buf, "hello", 5);
    harness_run_for(harness_loop, 20);
    assert_int_equal(s.calls, 1);               /* drained: no more calls */
    assert_int_equal(weft_remove_reader(harness_loop, p->fd[0]), 1);
    assert_int_equal(weft_remove_reader(harness_loop, p->fd[0]), 0);
}

static void
test_reader_is_level_triggered(void **state)
{
    struct fds *p = *state;
    struct seen s = { .other_fd = -1 };

    assert_int_equal(write(p->fd[1], "x", 1), 1);
    assert_int_equal(weft_add_reader(harness_loop, p->fd[0], on_readable, &s), 0);
    for (int i = 0; i < 3; i++)
        weft_loop_run_once(harness_loop);
    assert_int_equal(s.calls, 3);               /* once per iteration while unread */
    assert_int_equal(weft_remove_reader(harness_loop, p->fd[0]), 1);
    weft_loop_run_once(harness_loop);
    assert_int_equal(s.calls, 3);
}

static void
test_writer_on_a_socketpair_runs_once_when_it_removes_itself(void **state)
{
    struct fds *p = *state;
    struct seen s = { .remove_self = true, .other_fd = -1 };

    assert_int_equal(weft_add_writer(harness_loop, p->fd[0], on_writable, &s), 0);
    assert_int_equal(harness_run_until(harness_loop, &s.done, 1000), 0);
    harness_run_for(harness_loop, 20);
    assert_int_equal(s.calls, 1);
    assert_int_equal(weft_remove_writer(harness_loop, p->fd[0]), 0);   /* already gone */
}

static void
test_reader_that_removes_itself_runs_once(void **state)
{
    struct fds *p = *state;
    struct seen s = { .remove_self = true, .other_fd = -1 };

    assert_int_equal(write(p->fd[1], "x", 1), 1);                      /* left unread */
    assert_int_equal(weft_add_reader(harness_loop, p->fd[0], on_readable, &s), 0);
    harness_run_for(harness_loop, 20);
    assert_int_equal(s.calls, 1);
}

static void
test_reader_and_writer_on_one_socket(void **state)
{
    struct fds *p = *state;
    struct seen r = { .read_it = true, .other_fd = -1 }, w = { .remove_self = true };

    assert_int_equal(weft_add_reader(harness_loop, p->fd[0], on_readable, &r), 0);
    assert_int_equal(weft_add_writer(harness_loop, p->fd[0], on_writable, &w), 0);
    assert_int_equal(harness_run_until(harness_loop, &w.done, 1000), 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(write(p->fd[1], "ping", 4), 4);
    assert_int_equal(harness_run_until(harness_loop, &r.done, 1000), 0);
    assert_int_equal(r.bytes, 4);
    assert_int_equal(w.calls, 1);
    /* removing the writer left the reader alone */
    assert_int_equal(weft_remove_writer(harness_loop, p->fd[0]), 0);
    assert_int_equal(weft_remove_reader(harness_loop, p->fd[0]), 1);
}

static void
test_adding_a_reader_again_replaces_the_callback(void **state)
{
    struct fds *p = *state;
    struct seen a = { .read_it = true, .other_fd = -1 }, b = { .read_it = true, .other_fd = -1 };

    assert_int_equal(weft_add_reader(harness_loop, p->fd[0], on_readable, &a), 0);
    assert_int_equal(weft_add_reader(harness_loop, p->fd[0], on_readable, &b), 0);
    assert_int_equal(write(p->fd[1], "abc", 3), 3);
    assert_int_equal(harness_run_until(harness_loop, &b.done, 1000), 0);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.bytes, 3);
    assert_int_equal(weft_remove_reader(harness_loop, p->fd[0]), 1);   /* one registration */
    assert_int_equal(weft_remove_reader(harness_loop, p->fd[0]), 0);
}

/*
 * Two readers ready in the same iteration are both queued before either runs;
 * each removes the other, so whichever runs first drops the other's call.
 */
static void
test_removing_a_reader_drops_its_queued_call(void **state)
{
    struct fds *p = *state;
    int q[2];
    struct seen a = { .other_fd = -1 }, b = { .other_fd = -1 };

    (void)state;
    assert_int_equal(pipe(q), 0);
    a.other_fd = q[0];
    b.other_fd = p->fd[0];
    assert_int_equal(write(p->fd[1], "x", 1), 1);
    assert_int_equal(write(q[1], "y", 1), 1);
    assert_int_equal(weft_add_reader(harness_loop, p->fd[0], on_readable, &a), 0);
    assert_int_equal(weft_add_reader(harness_loop, q[0], on_readable, &b), 0);
    weft_loop_run_once(harness_loop);
    assert_int_equal(a.calls + b.calls, 1);
    /* the survivor is still registered and, unread, runs again */
    weft_loop_run_once(harness_loop);
    assert_int_equal(a.calls + b.calls, 2);
    assert_int_equal(weft_remove_reader(harness_loop, p->fd[0]) +
                     weft_remove_reader(harness_loop, q[0]), 1);
    close(q[0]);
    close(q[1]);
}

struct caught {
    int error;
    char message[128];
    int count;
};

static void
catch_error(struct weft_loop *loop, const struct weft_error_context *ctx, void *arg)
{
    struct caught *c = arg;

    (void)loop;
    c->error = ctx->error;
    snprintf(c->message, sizeof(c->message), "%s", ctx->message);
    c->count++;
}

static void
test_failing_callback_goes_to_the_error_handler_and_stays(void **state)
{
    struct fds *p = *state;
    struct seen s = { .ret = -EIO, .other_fd = -1 };
    struct caught c = { 0 };
    char want[64];

    weft_loop_set_error_handler(harness_loop, catch_error, &c);
    assert_int_equal(write(p->fd[1], "x", 1), 1);
    assert_int_equal(weft_add_reader(harness_loop, p->fd[0], on_readable, &s), 0);
    weft_loop_run_once(harness_loop);
    weft_loop_run_once(harness_loop);
    assert_int_equal(s.calls, 2);
    assert_int_equal(c.count, 2);
    assert_int_equal(c.error, -EIO);
    snprintf(want, sizeof(want), "reader callback of fd %d failed", p->fd[0]);
    assert_string_equal(c.message, want);
    assert_int_equal(weft_remove_reader(harness_loop, p->fd[0]), 1);
}

static void
test_bad_fds_are_refused(void **state)
{
    struct fds *p = *state;
    struct seen s = { .other_fd = -1 };
    char path[] = "/tmp/weft-fdwatch-XXXXXX";
    int file = mkstemp(path), closed = dup(p->fd[0]);

    assert_true(file >= 0);
    unlink(path);
    assert_true(closed >= 0);
    close(closed);
    assert_int_equal(weft_add_reader(harness_loop, -1, on_readable, &s), -EBADF);
    assert_int_equal(weft_add_writer(harness_loop, closed, on_writable, &s), -EBADF);
    assert_int_equal(weft_add_reader(harness_loop, file, on_readable, &s), -EPERM);
    assert_int_equal(weft_add_reader(harness_loop, p->fd[0], NULL, &s), -EINVAL);
    assert_int_equal(weft_remove_reader(harness_loop, -1), 0);
    assert_int_equal(weft_remove_writer(harness_loop, 100000), 0);
    assert_int_equal(weft_remove_reader(harness_loop, file), 0);
    close(file);
}

/* Registered watchers (and a queued call) are freed with the loop: valgrind checks. */
static void
test_loop_free_frees_the_watchers(void **state)
{
    struct fds *p = *state;
    struct seen s = { .other_fd = -1 };
    int big = fcntl(p->fd[0], F_DUPFD, 300);        /* past the table's first size */

    assert_true(big >= 300);
    assert_int_equal(weft_add_reader(harness_loop, p->fd[0], on_readable, &s), 0);
    assert_int_equal(weft_add_writer(harness_loop, p->fd[1], on_writable, &s), 0);
    assert_int_equal(weft_add_writer(harness_loop, big, on_writable, &s), 0);
    weft_loop_free(harness_loop);                   /* never run: nothing called */
    harness_loop = harness_loop_new();
    close(big);
    assert_int_equal(s.calls, 0);
}

/* ---- weft_wait_readable / weft_wait_writable ---- */

struct waiting {
    int fd;
    int64_t timeout_ms;
    bool write;             /* wait_writable */
    int rc;
    bool done;
    uint64_t took_ms;
    uint64_t woke_ms;       /* loop time when the wait returned */
    char got[16];
};

static intptr_t
waiter_task(void *arg)
{
    struct waiting *w = arg;
    uint64_t t0 = weft_loop_time(weft_get_running_loop());

    w->rc = w->write ? weft_wait_writable(w->fd, w->timeout_ms)
                     : weft_wait_readable(w->fd, w->timeout_ms);
    w->woke_ms = weft_loop_time(weft_get_running_loop());
    w->took_ms = w->woke_ms - t0;
    if (w->rc == 0 && !w->write && read(w->fd, w->got, sizeof(w->got) - 1) < 0)
        w->got[0] = '\0';
    w->done = true;
    return w->rc;
}

/* When write_x or drain_all ran: a wait they end returns no earlier (timings under
 * valgrind vary too much to compare a task's own elapsed time with a call_later's). */
static uint64_t acted_ms;

static void
write_x(void *arg)
{
    struct fds *p = arg;

    acted_ms = weft_loop_time(harness_loop);
    assert_int_equal(write(p->fd[1], "x", 1), 1);
}

static void
test_wait_readable_returns_when_data_arrives(void **state)
{
    struct fds *p = *state;
    struct waiting w = { .fd = p->fd[0], .timeout_ms = 5000 };

    assert_non_null(weft_call_later(harness_loop, 20, write_x, p));
    assert_int_equal(harness_run_task(harness_loop, waiter_task, &w, 2000), 0);
    assert_string_equal(w.got, "x");
    assert_true(w.woke_ms >= acted_ms && w.took_ms < 1000);
}

static void
test_wait_readable_on_ready_data_returns_at_once(void **state)
{
    struct fds *p = *state;
    struct waiting w = { .fd = p->fd[0], .timeout_ms = 0 };

    assert_int_equal(write(p->fd[1], "x", 1), 1);
    assert_int_equal(harness_run_task(harness_loop, waiter_task, &w, 2000), 0);
    assert_string_equal(w.got, "x");
}

/* The cost target: the task resumes in the very iteration whose poll saw the fd ready. */
static void
test_wait_readable_resumes_in_the_iteration_of_the_event(void **state)
{
    struct fds *p = *state;
    struct waiting w = { .fd = p->fd[0], .timeout_ms = -1 };
    struct weft_task *t = weft_task_spawn(harness_loop, waiter_task, &w, NULL);

    assert_non_null(t);
    harness_run_for(harness_loop, 10);      /* started and parked */
    assert_false(w.done);
    assert_int_equal(write(p->fd[1], "x", 1), 1);
    weft_loop_run_once(harness_loop);
    assert_true(w.done);
    assert_int_equal(w.rc, 0);
    weft_task_unref(t);
}

static void
test_wait_readable_times_out(void **state)
{
    struct fds *p = *state;
    struct waiting w = { .fd = p->fd[0], .timeout_ms = 30 };

    assert_int_equal(harness_run_task(harness_loop, waiter_task, &w, 2000), -ETIMEDOUT);
    assert_true(w.took_ms >= 29);
    w = (struct waiting){ .fd = p->fd[0], .timeout_ms = 0 };
    assert_int_equal(harness_run_task(harness_loop, waiter_task, &w, 2000), -ETIMEDOUT);
}

static void
cancel_it(void *arg)
{
    weft_task_cancel(arg);
}

static void
test_wait_readable_cancelled_returns_ecanceled(void **state)
{
    struct fds *p = *state;
    struct waiting w = { .fd = p->fd[0], .timeout_ms = -1 };
    struct weft_task *t = weft_task_spawn(harness_loop, waiter_task, &w, NULL);

    assert_non_null(t);
    assert_non_null(weft_call_later(harness_loop, 20, cancel_it, t));
    assert_int_equal(harness_run_until(harness_loop, &w.done, 2000), 0);
    assert_int_equal(w.rc, -ECANCELED);
    assert_int_equal(weft_future_result(weft_task_future(t)), -ECANCELED);
    /* its event is gone: data now wakes nothing */
    assert_int_equal(write(p->fd[1], "x", 1), 1);
    harness_run_for(harness_loop, 20);
    weft_task_unref(t);
}

static void
test_wait_in_a_task_cancelled_before_it_waits(void **state)
{
    struct fds *p = *state;
    struct waiting w = { .fd = p->fd[0], .timeout_ms = -1 };
    struct weft_task *t = weft_task_spawn(harness_loop, waiter_task, &w, NULL);

    assert_non_null(t);
    harness_run_for(harness_loop, 5);
    assert_true(weft_task_cancel(t));
    assert_int_equal(write(p->fd[1], "x", 1), 1);   /* ready and cancelled in one pass */
    assert_int_equal(harness_run_until(harness_loop, &w.done, 2000), 0);
    assert_int_equal(w.rc, -ECANCELED);
    weft_task_unref(t);
}

/* Refused without an fstat on every wait: epoll's refusal is turned into -EPERM / -EBADF,
 * with libevent's warning held back; a wait after a refusal works. */
static void
test_wait_on_files_a_closed_fd_is_refused_quietly(void **state)
{
    struct fds *p = *state;
    char path[] = "/tmp/weft-fdwait-XXXXXX";
    int file = mkstemp(path), dir = open("/tmp", O_RDONLY | O_DIRECTORY), closed = dup(p->fd[0]);
    struct waiting wf = { .fd = file, .timeout_ms = 100 }, wd = { .fd = dir, .timeout_ms = 100 };
    struct waiting wc = { .fd = closed, .timeout_ms = 100, .write = true };
    struct waiting ok = { .fd = p->fd[0], .timeout_ms = 5000 };

    assert_true(file >= 0 && dir >= 0 && closed >= 0);
    unlink(path);
    close(closed);
    harness_log_capture();
    assert_int_equal(harness_run_task(harness_loop, waiter_task, &wf, 2000), -EPERM);
    assert_int_equal(harness_run_task(harness_loop, waiter_task, &wd, 2000), -EPERM);
    assert_int_equal(harness_run_task(harness_loop, waiter_task, &wc, 2000), -EBADF);
    assert_false(harness_log_contains("libevent"));
    assert_int_equal(write(p->fd[1], "y", 1), 1);
    assert_int_equal(harness_run_task(harness_loop, waiter_task, &ok, 2000), 0);
    assert_string_equal(ok.got, "y");
    close(file);
    close(dir);
}

static void
test_wait_outside_a_task_is_enotask(void **state)
{
    struct fds *p = *state;

    assert_int_equal(weft_wait_readable(p->fd[0], 0), -WEFT_ENOTASK);
    assert_int_equal(weft_wait_writable(p->fd[1], -1), -WEFT_ENOTASK);
}

static void
test_wait_on_a_bad_fd_fails(void **state)
{
    struct waiting w = { .fd = -1, .timeout_ms = 100 };

    (void)state;
    assert_int_equal(harness_run_task(harness_loop, waiter_task, &w, 2000), -EBADF);
}

static void
drain_all(void *arg)
{
    struct fds *p = arg;
    char buf[65536];

    acted_ms = weft_loop_time(harness_loop);
    while (read(p->fd[1], buf, sizeof(buf)) > 0)
        ;
}

static void
test_wait_writable_on_a_full_socket(void **state)
{
    struct fds *p = *state;
    struct waiting w = { .fd = p->fd[0], .timeout_ms = 1000, .write = true };
    static char junk[65536];

    assert_int_equal(harness_run_task(harness_loop, waiter_task, &w, 2000), 0);
    while (write(p->fd[0], junk, sizeof(junk)) > 0)
        ;
    assert_int_equal(errno, EAGAIN);
    w = (struct waiting){ .fd = p->fd[0], .timeout_ms = 30, .write = true };
    assert_int_equal(harness_run_task(harness_loop, waiter_task, &w, 2000), -ETIMEDOUT);
    w = (struct waiting){ .fd = p->fd[0], .timeout_ms = 2000, .write = true };
    assert_non_null(weft_call_later(harness_loop, 20, drain_all, p));
    assert_int_equal(harness_run_task(harness_loop, waiter_task, &w, 3000), 0);
    assert_true(w.woke_ms >= acted_ms);
}

/* A wait has its own event: a reader on the same fd keeps running beside it. */
static void
test_wait_readable_beside_a_reader(void **state)
{
    struct fds *p = *state;
    struct waiting w = { .fd = p->fd[0], .timeout_ms = 2000 };
    struct seen s = { .remove_self = true, .other_fd = -1 };

    assert_int_equal(weft_add_reader(harness_loop, p->fd[0], on_readable, &s), 0);
    assert_non_null(weft_call_later(harness_loop, 20, write_x, p));
    assert_int_equal(harness_run_task(harness_loop, waiter_task, &w, 2000), 0);
    assert_int_equal(s.calls, 1);
}

/* A task still waiting when the loop is freed: its event is freed with it (valgrind). */
static void
test_loop_free_with_a_task_waiting(void **state)
{
    struct fds *p = *state;
    struct waiting w1 = { .fd = p->fd[0], .timeout_ms = -1 };
    struct waiting w2 = { .fd = p->fd[0], .timeout_ms = 60000 };

    weft_task_unref(weft_task_spawn(harness_loop, waiter_task, &w1, NULL));
    weft_task_unref(weft_task_spawn(harness_loop, waiter_task, &w2, NULL));
    harness_run_for(harness_loop, 10);
    assert_false(w1.done || w2.done);
    weft_loop_free(harness_loop);
    harness_loop = harness_loop_new();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reader_on_a_pipe_runs_when_data_arrives,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_reader_is_level_triggered,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(
            test_writer_on_a_socketpair_runs_once_when_it_removes_itself,
                                        setup_socketpair, teardown_fds),
        cmocka_unit_test_setup_teardown(test_reader_that_removes_itself_runs_once,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_reader_and_writer_on_one_socket,
                                        setup_socketpair, teardown_fds),
        cmocka_unit_test_setup_teardown(test_adding_a_reader_again_replaces_the_callback,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_removing_a_reader_drops_its_queued_call,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_failing_callback_goes_to_the_error_handler_and_stays,
                                        setup_socketpair, teardown_fds),
        cmocka_unit_test_setup_teardown(test_bad_fds_are_refused, setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_loop_free_frees_the_watchers,
                                        setup_socketpair, teardown_fds),
        cmocka_unit_test_setup_teardown(test_wait_readable_returns_when_data_arrives,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_wait_readable_on_ready_data_returns_at_once,
                                        setup_socketpair, teardown_fds),
        cmocka_unit_test_setup_teardown(test_wait_readable_resumes_in_the_iteration_of_the_event,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_wait_readable_times_out, setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_wait_readable_cancelled_returns_ecanceled,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_wait_in_a_task_cancelled_before_it_waits,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_wait_outside_a_task_is_enotask,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_wait_on_a_bad_fd_fails, setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_wait_on_files_a_closed_fd_is_refused_quietly,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_wait_writable_on_a_full_socket,
                                        setup_socketpair, teardown_fds),
        cmocka_unit_test_setup_teardown(test_wait_readable_beside_a_reader,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_loop_free_with_a_task_waiting,
                                        setup_pipe, teardown_fds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
