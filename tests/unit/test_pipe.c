/* SPDX-License-Identifier: MIT */
/* test_pipe.c: read and write pipe transports (weft/pipe.h). */
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
#include <unistd.h>

#include <event2/buffer.h>

#include <weft/weft.h>

#include "harness.h"

/* A protocol that records what its transport does; static: no factory allocation to free. */
struct rec {
    struct weft_protocol base;
    struct weft_transport *tr;
    char data[256];
    size_t len, total;
    int made, eof, lost, paused, resumed;
    int error;
    bool lost_flag, paused_flag;
    bool pause_on_data;
};

static int
rec_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct rec *r = (struct rec *)p;

    r->made++;
    r->tr = tr;
    return 0;
}

static int
rec_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct rec *r = (struct rec *)p;
    size_t n = evbuffer_get_length(in);

    r->total += n;
    if (r->len + n < sizeof(r->data)) {
        evbuffer_remove(in, r->data + r->len, n);
        r->len += n;
    } else {
        evbuffer_drain(in, n);
    }
    if (r->pause_on_data)
        assert_int_equal(weft_transport_pause_reading(r->tr), 0);
    return 0;
}

static bool
rec_eof(struct weft_protocol *p)
{
    ((struct rec *)p)->eof++;
    return true;
}

static void
rec_lost(struct weft_protocol *p, int error)
{
    struct rec *r = (struct rec *)p;

    r->lost++;
    r->error = error;
    r->lost_flag = true;
    r->tr = NULL;
}

static void
rec_pause(struct weft_protocol *p)
{
    struct rec *r = (struct rec *)p;

    r->paused++;
    r->paused_flag = true;
}

static void
rec_resume(struct weft_protocol *p)
{
    ((struct rec *)p)->resumed++;
}

static const struct weft_protocol_ops rec_ops = {
    .connection_made = rec_made,
    .data_received = rec_data,
    .eof_received = rec_eof,
    .connection_lost = rec_lost,
    .pause_writing = rec_pause,
    .resume_writing = rec_resume,
};

static struct weft_protocol *
rec_factory(void *arg)
{
    struct rec *r = arg;

    r->base.ops = &rec_ops;
    return &r->base;
}

static void
test_read_pipe_delivers_data_then_eof_then_lost(void **state)
{
    struct rec r = { 0 };
    struct weft_transport *tr;
    int p[2];
    size_t len = sizeof(int);
    int fd = -1;

    (void)state;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(weft_connect_read_pipe(harness_loop, rec_factory, &r, p[0], &tr), 0);
    assert_int_equal(r.made, 1);
    assert_ptr_equal(r.tr, tr);
    assert_int_equal(weft_transport_get_extra_info(tr, "pipe", &fd, &len), 0);
    assert_int_equal(fd, p[0]);
    assert_int_equal(weft_transport_write(tr, "x", 1), -ENOTSUP);   /* a read end */
    assert_false(weft_transport_can_write_eof(tr));
    assert_int_equal(write(p[1], "hello", 5), 5);
    close(p[1]);
    assert_int_equal(harness_run_until(harness_loop, &r.lost_flag, 2000), 0);
    assert_int_equal(r.len, 5);
    assert_memory_equal(r.data, "hello", 5);
    assert_int_equal(r.eof, 1);
    assert_int_equal(r.lost, 1);
    assert_int_equal(r.error, 0);
    assert_int_equal(fcntl(p[0], F_GETFD), -1);     /* the transport closed its fd */
}

static void
test_read_pipe_pauses_and_resumes(void **state)
{
    struct rec r = { .pause_on_data = true };
    struct weft_transport *tr;
    int p[2];

    (void)state;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(weft_connect_read_pipe(harness_loop, rec_factory, &r, p[0], &tr), 0);
    assert_int_equal(write(p[1], "a", 1), 1);
    harness_run_for(harness_loop, 30);
    assert_int_equal(r.len, 1);
    assert_false(weft_transport_is_reading(tr));
    assert_int_equal(write(p[1], "b", 1), 1);
    harness_run_for(harness_loop, 30);
    assert_int_equal(r.len, 1);                 /* paused: b stays in the pipe */
    r.pause_on_data = false;
    assert_int_equal(weft_transport_resume_reading(tr), 0);
    close(p[1]);
    assert_int_equal(harness_run_until(harness_loop, &r.lost_flag, 2000), 0);
    assert_int_equal(r.len, 2);
    assert_memory_equal(r.data, "ab", 2);
}

static void
test_write_pipe_writes_and_write_eof_closes(void **state)
{
    struct rec r = { 0 };
    struct weft_transport *tr;
    char buf[16];
    int p[2];

    (void)state;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(weft_connect_write_pipe(harness_loop, rec_factory, &r, p[1], &tr), 0);
    assert_true(weft_transport_can_write_eof(tr));
    assert_int_equal(weft_transport_write(tr, "hello ", 6), 0);
    assert_int_equal(weft_transport_writelines(tr, &(struct iovec){ "pipe", 4 }, 1), 0);
    assert_int_equal(weft_transport_pause_reading(tr), -ENOTSUP);
    assert_int_equal(weft_transport_write_eof(tr), 0);
    assert_true(weft_transport_is_closing(tr));
    assert_int_equal(weft_transport_write(tr, "x", 1), -EPIPE);
    assert_int_equal(harness_run_until(harness_loop, &r.lost_flag, 2000), 0);
    assert_int_equal(r.error, 0);
    assert_int_equal(read(p[0], buf, sizeof(buf)), 10);
    assert_memory_equal(buf, "hello pipe", 10);
    assert_int_equal(read(p[0], buf, sizeof(buf)), 0);     /* EOF: the write end is closed */
    close(p[0]);
}

/* 1 MiB into a pipe nobody reads: pause_writing; reading it all: resume_writing, then close. */
static void
test_write_pipe_flow_control(void **state)
{
    struct rec r = { 0 };
    struct weft_transport *tr;
    static char chunk[64 * 1024];
    size_t got = 0;
    int p[2];

    (void)state;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(weft_connect_write_pipe(harness_loop, rec_factory, &r, p[1], &tr), 0);
    memset(chunk, 'z', sizeof(chunk));
    for (int i = 0; i < 16; i++)
        assert_int_equal(weft_transport_write(tr, chunk, sizeof(chunk)), 0);
    assert_int_equal(r.paused, 1);
    assert_true(weft_transport_get_write_buffer_size(tr) > WEFT_WRITE_HIGH_DEFAULT);
    weft_transport_close(tr);
    while (!r.lost_flag) {
        ssize_t n = read(p[0], chunk, sizeof(chunk));

        if (n > 0)
            got += (size_t)n;
        weft_loop_run_once(harness_loop);
    }
    assert_int_equal(r.resumed, 1);
    assert_int_equal(r.error, 0);
    while (got < 16 * sizeof(chunk)) {
        ssize_t n = read(p[0], chunk, sizeof(chunk));

        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(got, 16 * sizeof(chunk));
    close(p[0]);
}

static void
test_write_pipe_lost_when_reader_goes(void **state)
{
    struct rec r = { 0 };
    struct weft_transport *tr;
    int p[2];

    (void)state;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(weft_connect_write_pipe(harness_loop, rec_factory, &r, p[1], &tr), 0);
    close(p[0]);
    assert_int_equal(harness_run_until(harness_loop, &r.lost_flag, 2000), 0);
    assert_int_equal(r.error, 0);                   /* nothing was queued */
}

static void
test_write_pipe_epipe_reported_through_lost(void **state)
{
    struct rec r = { 0 };
    struct weft_transport *tr;
    int p[2];

    (void)state;
    assert_int_equal(pipe(p), 0);
    assert_int_equal(weft_connect_write_pipe(harness_loop, rec_factory, &r, p[1], &tr), 0);
    close(p[0]);
    assert_int_equal(weft_transport_write(tr, "x", 1), 0);  /* EPIPE, and no SIGPIPE */
    assert_int_equal(harness_run_until(harness_loop, &r.lost_flag, 2000), 0);
    assert_int_equal(r.error, -EPIPE);
}

static void
test_regular_file_is_refused(void **state)
{
    struct rec r = { 0 };
    struct weft_transport *tr = (void *)1;
    char path[] = "/tmp/weft-pipe-XXXXXX";
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(weft_connect_read_pipe(harness_loop, rec_factory, &r, fd, &tr), -EINVAL);
    assert_int_equal(weft_connect_write_pipe(harness_loop, rec_factory, &r, fd, &tr), -EINVAL);
    assert_null(tr);
    assert_int_equal(r.made, 0);
    assert_int_equal(fcntl(fd, F_GETFD), 0);        /* still the caller's */
    close(fd);
    assert_int_equal(weft_connect_read_pipe(harness_loop, rec_factory, &r, -1, NULL), -EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_pipe_delivers_data_then_eof_then_lost,
                                        harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_read_pipe_pauses_and_resumes, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_write_pipe_writes_and_write_eof_closes,
                                        harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_write_pipe_flow_control, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_write_pipe_lost_when_reader_goes, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_write_pipe_epipe_reported_through_lost,
                                        harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_regular_file_is_refused, harness_setup,
                                        harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
