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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reader_on_a_pipe_runs_when_data_arrives,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_reader_is_level_triggered,
                                        setup_pipe, teardown_fds),
        cmocka_unit_test_setup_teardown(test_writer_on_a_socketpair_runs_once_when_it_removes_itself,
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
