/* SPDX-License-Identifier: MIT */
/* test_stream.c: the stream reader and writer one behaviour at a time, start_server, open_connection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <weft/weft.h>

#include "harness.h"
#include "streams/stream-int.h"
#include "stream_pair.h"

/* The fixture: tests/harness/stream_pair.h (our end a stream run by the test body, the peer a
 * raw non-blocking socket the body or a feeder task drives). */

static void
peer_send(struct stream_pair *p, const void *data, size_t len)
{
    struct pollfd pfd = { .fd = p->peer, .events = POLLOUT };

    while (len > 0) {
        ssize_t n = send(p->peer, data, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EAGAIN) {
            poll(&pfd, 1, 100);
            continue;
        }
        assert_true(n > 0);
        data = (const char *)data + n;
        len -= (size_t)n;
    }
}

static void
peer_sends(struct stream_pair *p, const char *s)
{
    peer_send(p, s, strlen(s));
}

/* Read what is there on the peer (non-blocking); returns the count. */
static size_t
peer_drain(struct stream_pair *p)
{
    static char buf[65536];     /* not on a task's 64 KiB stack */
    size_t total = 0;
    ssize_t n;

    while ((n = recv(p->peer, buf, sizeof(buf), 0)) > 0)
        total += (size_t)n;
    return total;
}

/* The feeder: sends each chunk after gap_ms, then shuts the peer's write side. */
static intptr_t
feeder(void *arg)
{
    struct stream_pair *p = arg;

    for (size_t i = 0; i < p->nchunks; i++) {
        if (weft_sleep(p->gap_ms) < 0)
            return -ECANCELED;
        peer_sends(p, p->chunks[i]);
    }
    if (p->shut_after)
        shutdown(p->peer, SHUT_WR);
    return 0;
}

static void
feed(struct stream_pair *p, const char *const *chunks, size_t n, unsigned gap_ms, bool shut)
{
    p->chunks = chunks;
    p->nchunks = n;
    p->gap_ms = gap_ms;
    p->shut_after = shut;
    weft_task_unref(weft_task_spawn(p->loop, feeder, p, NULL));
}

/* ---- read ---- */

static int
body_read_then_eof(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    static const char *const chunks[] = { "hello" };
    char buf[16];
    ssize_t n;

    (void)w;
    feed(p, chunks, 1, 10, true);
    n = weft_reader_read(r, buf, sizeof(buf));
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(weft_reader_read(r, buf, sizeof(buf)), 0);
    assert_true(weft_reader_at_eof(r));
    return 0;
}

static void
test_read_returns_what_came_then_0_at_eof(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_read_then_eof), 0);
}

/* ---- readline ---- */

static int
body_readline_split(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    static const char *const chunks[] = { "hel", "lo\nwor", "ld", "\nlast" };
    char buf[64];

    (void)w;
    feed(p, chunks, 4, 5, true);
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), 6);
    assert_string_equal(buf, "hello\n");
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), 6);
    assert_string_equal(buf, "world\n");
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), 4);   /* partial line at EOF */
    assert_string_equal(buf, "last");
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), 0);
    return 0;
}

static void
test_readline_joins_chunks_and_returns_partial_line_at_eof(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_readline_split), 0);
}

static int
body_readline_overrun(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    char buf[256];

    (void)w;
    peer_sends(p, "0123456789012345678901234567890123456789\nnext\n");
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), -WEFT_ELIMIT);
    /* asyncio's readline consumed the long line: the next one is intact */
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), 5);
    assert_string_equal(buf, "next\n");
    return 0;
}

static void
test_readline_over_the_limit_consumes_the_line(void **state)
{
    struct stream_pair *p = *state;

    p->opts.limit = 16;
    assert_int_equal(stream_pair_run(p, body_readline_overrun), 0);
}

static int
body_readline_small_buffer(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    char buf[8];

    (void)w;
    peer_sends(p, "0123456789\nok\n");
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), -WEFT_ELIMIT);
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "ok\n");
    return 0;
}

static void
test_readline_longer_than_buffer_fails(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_readline_small_buffer), 0);
}

/* ---- readuntil ---- */

static int
body_readuntil_limit_leaves_data(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    char buf[64];

    (void)w;
    peer_sends(p, "0123456789abcdefghijXYZ");
    assert_int_equal(weft_reader_readuntil(r, buf, sizeof(buf), "XYZ", 3), -WEFT_ELIMIT);
    /* unlike readline, nothing was consumed */
    assert_int_equal(weft_reader_buffered(r), 23);
    assert_int_equal(weft_reader_read(r, buf, sizeof(buf)), 23);
    assert_memory_equal(buf, "0123456789abcdefghijXYZ", 23);
    return 0;
}

static void
test_readuntil_over_the_limit_leaves_the_data(void **state)
{
    struct stream_pair *p = *state;

    p->opts.limit = 16;
    assert_int_equal(stream_pair_run(p, body_readuntil_limit_leaves_data), 0);
}

static int
body_readuntil_separators(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    static const char *const chunks[] = { "a\r", "\nxx|yy\r\n", "tail" };
    const struct iovec seps[] = { { "\r\n", 2 }, { "|", 1 } };
    char buf[64];
    size_t partial = 99;

    (void)w;
    feed(p, chunks, 3, 5, true);
    assert_int_equal(weft_reader_readuntil_any(r, buf, sizeof(buf), seps, 2, NULL), 3);
    assert_string_equal(buf, "a\r\n");          /* a separator split across chunks */
    assert_int_equal(weft_reader_readuntil_any(r, buf, sizeof(buf), seps, 2, NULL), 3);
    assert_string_equal(buf, "xx|");            /* the match that ends first wins */
    assert_int_equal(weft_reader_readuntil_any(r, buf, sizeof(buf), seps, 2, NULL), 4);
    assert_string_equal(buf, "yy\r\n");
    assert_int_equal(weft_reader_readuntil_any(r, buf, sizeof(buf), seps, 2, &partial),
                     -WEFT_EINCOMPLETE);
    assert_int_equal(partial, 4);
    assert_string_equal(buf, "tail");
    assert_true(weft_reader_at_eof(r));
    assert_int_equal(weft_reader_readuntil(r, buf, sizeof(buf), "", 0), -EINVAL);
    return 0;
}

static void
test_readuntil_with_several_separators(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_readuntil_separators), 0);
}

/* ---- readexactly ---- */

static int
body_readexactly(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    static const char *const chunks[] = { "abc", "defg", "hij" };
    char buf[16];
    size_t partial = 99;

    (void)w;
    feed(p, chunks, 3, 5, true);
    assert_int_equal(weft_reader_readexactly(r, buf, 6, &partial), 6);
    assert_memory_equal(buf, "abcdef", 6);
    assert_int_equal(weft_reader_readexactly(r, buf, 10, &partial), -WEFT_EINCOMPLETE);
    assert_int_equal(partial, 4);
    assert_memory_equal(buf, "ghij", 4);
    assert_int_equal(weft_reader_readexactly(r, buf, 1, &partial), -WEFT_EINCOMPLETE);
    assert_int_equal(partial, 0);
    return 0;
}

static void
test_readexactly_and_its_partial_count_at_eof(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_readexactly), 0);
}

/* ---- read to EOF, many small writes, the line iterator ---- */

#define BIG (1024 * 1024 + 17)

static intptr_t
big_sender(void *arg)
{
    struct stream_pair *p = arg;
    char *data = malloc(BIG);

    for (size_t i = 0; i < BIG; i++)
        data[i] = (char)('a' + i % 26);
    for (size_t off = 0; off < BIG;) {
        ssize_t n = send(p->peer, data + off, BIG - off, MSG_NOSIGNAL);

        if (n > 0)
            off += (size_t)n;
        else if (weft_sleep(1) < 0)
            break;
    }
    shutdown(p->peer, SHUT_WR);
    free(data);
    return 0;
}

static int
body_read_all(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    char *all = NULL;
    ssize_t n;

    (void)w;
    weft_task_unref(weft_task_spawn(p->loop, big_sender, p, NULL));
    n = weft_reader_read_all(r, &all);
    assert_int_equal(n, BIG);
    for (size_t i = 0; i < BIG; i += 4099)
        assert_int_equal(all[i], 'a' + i % 26);
    assert_int_equal(all[BIG], '\0');
    free(all);
    return 0;
}

static void
test_read_all_reads_past_twice_the_limit_until_eof(void **state)
{
    struct stream_pair *p = *state;

    p->opts.limit = 4096;       /* 1 MiB through a reader that pauses above 8 KiB */
    assert_int_equal(stream_pair_run(p, body_read_all), 0);
}

#define SMALL_WRITES 5000

static int
body_many_small_writes(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    char line[32], expect[32];
    size_t got = 0, want = 0;
    const char *l;
    ssize_t n;

    /* The writer: many tiny writes come out whole and in order. */
    for (int i = 0; i < SMALL_WRITES; i++) {
        int len = snprintf(line, sizeof(line), "%d\n", i);

        want += (size_t)len;
        assert_int_equal(weft_writer_write(w, line, (size_t)len), 0);
        if (i % 100 == 0)
            assert_int_equal(weft_writer_drain(w), 0);
    }
    while (got < want) {
        got += peer_drain(p);
        if (got < want)
            assert_int_equal(weft_sleep(1), 0);
    }
    assert_int_equal(got, want);
    /* The reader: many tiny sends, read with the line iterator. */
    for (int i = 0; i < SMALL_WRITES; i++) {
        int len = snprintf(line, sizeof(line), "%d\n", i);

        peer_send(p, line, (size_t)len);
    }
    shutdown(p->peer, SHUT_WR);
    for (int i = 0; (n = weft_reader_next_line(r, &l)) > 0; i++) {
        int len = snprintf(expect, sizeof(expect), "%d\n", i);

        assert_int_equal(n, len);
        assert_memory_equal(l, expect, (size_t)len);
        got = (size_t)i + 1;
    }
    assert_int_equal(n, 0);
    assert_int_equal(got, SMALL_WRITES);
    return 0;
}

static void
test_many_small_writes_both_ways(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_many_small_writes), 0);
}

/* ---- flow control ---- */

static int
body_read_pauses_and_resumes(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    static char chunk[65536];
    struct weft_transport *tr = weft_writer_transport(w);
    char buf[4096];

    peer_send(p, chunk, sizeof(chunk));
    for (int i = 0; i < 20 && weft_transport_is_reading(tr); i++)
        weft_sleep(5);
    assert_false(weft_transport_is_reading(tr));        /* more than 2 x 1 KiB buffered */
    assert_true(weft_reader_buffered(r) < sizeof(chunk));
    size_t total = 0;
    ssize_t n;

    while (weft_reader_buffered(r) > 1024) {
        n = weft_reader_read(r, buf, sizeof(buf));
        assert_true(n > 0);
        total += (size_t)n;
    }
    assert_true(weft_transport_is_reading(tr));         /* back at or below the limit */
    while (total < sizeof(chunk)) {
        n = weft_reader_read(r, buf, sizeof(buf));
        if (n <= 0)
            fail_msg("read returned %zd after %zu bytes", n, total);
        total += (size_t)n;
    }
    return 0;
}

static void
test_reading_pauses_above_twice_the_limit_and_resumes(void **state)
{
    struct stream_pair *p = *state;

    p->opts.limit = 1024;
    assert_int_equal(stream_pair_run(p, body_read_pauses_and_resumes), 0);
}

struct writer_job {
    struct weft_writer *w;
    size_t written;
    int rc;
};

static intptr_t
write_forever(void *arg)
{
    struct writer_job *j = arg;
    static const char chunk[16384];

    for (;;) {
        j->rc = weft_writer_write(j->w, chunk, sizeof(chunk));
        if (j->rc == 0)
            j->rc = weft_writer_drain(j->w);
        if (j->rc < 0)
            return j->rc;
        j->written += sizeof(chunk);
    }
}

static int
body_drain_bounded(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    struct weft_transport *tr = weft_writer_transport(w);
    struct writer_job j = { .w = w };
    struct weft_task *t = weft_task_spawn(p->loop, write_forever, &j, NULL);
    size_t stuck, total = 0;

    (void)r;
    weft_sleep(200);                        /* the peer reads nothing */
    stuck = j.written;
    weft_sleep(100);
    assert_int_equal(j.written, stuck);     /* paused in drain */
    assert_true(weft_transport_get_write_buffer_size(tr) <= 64 * 1024 + 16384);
    for (int i = 0; i < 200 && j.written < stuck + 10 * 16384; i++) {
        total += peer_drain(p);             /* now read: drain resumes */
        weft_sleep(2);
    }
    assert_true(j.written >= stuck + 10 * 16384);
    weft_task_cancel(t);
    weft_sleep(5);
    assert_true(weft_future_done(weft_task_future(t)));
    assert_int_equal(weft_future_result(weft_task_future(t)), -ECANCELED);
    weft_task_unref(t);
    return 0;
}

static void
test_drain_waits_for_a_peer_that_does_not_read_and_memory_stays_bounded(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_drain_bounded), 0);
}

static int
body_concurrent_drains(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    struct writer_job a = { .w = w }, b = { .w = w };
    struct weft_task *ta = weft_task_spawn(p->loop, write_forever, &a, NULL);
    struct weft_task *tb = weft_task_spawn(p->loop, write_forever, &b, NULL);
    size_t sa, sb;

    (void)r;
    weft_sleep(200);
    sa = a.written;
    sb = b.written;
    for (int i = 0; i < 300 && (a.written < sa + 4 * 16384 || b.written < sb + 4 * 16384); i++) {
        peer_drain(p);
        weft_sleep(2);
    }
    assert_true(a.written >= sa + 4 * 16384);     /* both drainers were woken, repeatedly */
    assert_true(b.written >= sb + 4 * 16384);
    weft_task_cancel(ta);
    weft_task_cancel(tb);
    weft_sleep(5);
    weft_task_unref(ta);
    weft_task_unref(tb);
    return 0;
}

static void
test_several_tasks_drain_at_once(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_concurrent_drains), 0);
}

static int
body_reset_during_drain(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    struct writer_job j = { .w = w };
    struct weft_task *t = weft_task_spawn(p->loop, write_forever, &j, NULL);
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    char buf[8];

    weft_sleep(100);
    assert_false(weft_future_done(weft_task_future(t)));     /* stuck in drain */
    setsockopt(p->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(p->peer);                                         /* the peer resets */
    p->peer = -1;
    for (int i = 0; i < 100 && !weft_future_done(weft_task_future(t)); i++)
        weft_sleep(5);
    assert_true(weft_future_done(weft_task_future(t)));
    assert_true(j.rc < 0);
    assert_true(j.rc != -ECANCELED);
    /* later calls fail at once with the connection's error */
    assert_true(weft_writer_drain(w) < 0);
    assert_true(weft_reader_read(r, buf, sizeof(buf)) < 0);
    assert_int_equal(weft_writer_write(w, "x", 1), -EPIPE);
    weft_future_result(weft_task_future(t));
    weft_task_unref(t);
    return 0;
}

static void
test_a_peer_reset_during_drain_fails_the_drain(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_reset_during_drain), 0);
}

/* ---- cancellation, close ---- */

static intptr_t
read_some(void *arg)
{
    char buf[16];

    return weft_reader_read(arg, buf, sizeof(buf));
}

static int
body_cancel_read(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    struct weft_task *t = weft_task_spawn(p->loop, read_some, r, NULL);
    char buf[16];

    (void)w;
    weft_sleep(20);
    assert_false(weft_future_done(weft_task_future(t)));
    weft_task_cancel(t);
    weft_sleep(5);
    assert_int_equal(weft_future_result(weft_task_future(t)), -ECANCELED);
    weft_task_unref(t);
    peer_sends(p, "after");                 /* the reader still works, nothing lost */
    assert_int_equal(weft_reader_read(r, buf, sizeof(buf)), 5);
    return 0;
}

static void
test_cancelling_a_task_blocked_in_read(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_cancel_read), 0);
}

static int
body_write_after_close(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    char buf[16];
    struct sockaddr_storage ss;
    size_t len = sizeof(ss);

    (void)r;
    assert_int_equal(weft_writer_get_extra_info(w, "peername", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_true(weft_writer_can_write_eof(w));
    assert_int_equal(weft_writer_write(w, "bye\n", 4), 0);
    assert_int_equal(weft_writer_close(w), 0);
    assert_true(weft_writer_is_closing(w));
    assert_int_equal(weft_writer_write(w, "x", 1), -EPIPE);
    assert_int_equal(weft_writer_wait_closed(w, 2000), 0);
    assert_null(weft_writer_transport(w));
    assert_int_equal(weft_writer_get_extra_info(w, "peername", &ss, &len), -ENOTCONN);
    assert_int_equal(recv(p->peer, buf, sizeof(buf), 0), 4);
    assert_int_equal(recv(p->peer, buf, sizeof(buf), 0), 0);  /* EOF after the data */
    return 0;
}

static void
test_write_after_close_is_epipe_and_wait_closed_returns(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_write_after_close), 0);
}

static int
body_wait_closed_bounded(struct stream_pair *p, struct weft_reader *r, struct weft_writer *w)
{
    static char chunk[1 << 20];

    (void)p;
    (void)r;
    /* A peer that never reads keeps the close from finishing: bounded, then aborted. */
    for (int i = 0; i < 8; i++)
        weft_writer_write(w, chunk, sizeof(chunk));
    weft_writer_close(w);
    assert_int_equal(weft_writer_wait_closed(w, 100), -ETIMEDOUT);
    weft_sleep(10);
    assert_null(weft_writer_transport(w));
    return 0;
}

static void
test_wait_closed_is_bounded(void **state)
{
    assert_int_equal(stream_pair_run(*state, body_wait_closed_bounded), 0);
}

/* ---- start_server and open_connection ---- */

static int
line_echo(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    char line[256];
    ssize_t n;

    (void)arg;
    while ((n = weft_reader_readline(r, line, sizeof(line))) > 0) {
        int rc = weft_writer_write(w, line, (size_t)n);

        if (rc == 0)
            rc = weft_writer_drain(w);
        if (rc < 0)
            return rc;
    }
    return n < 0 ? (int)n : weft_writer_close(w);
}

struct srv {
    struct weft_stream_server *s;
    uint16_t port;
};

static uint16_t
srv_port(struct weft_stream_server *s)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    assert_int_equal(weft_stream_server_get_sockname(s, 0, (struct sockaddr *)&sin, &len), 0);
    return ntohs(sin.sin_port);
}

static intptr_t
echo_client(void *arg)
{
    struct srv *sv = arg;
    struct weft_reader *r;
    struct weft_writer *w;
    char buf[64];
    int rc = weft_open_connection("127.0.0.1", sv->port, NULL, &r, &w);

    if (rc < 0)
        return rc;
    weft_sleep(10);
    assert_int_equal(weft_stream_server_client_count(sv->s), 1);
    weft_writer_write(w, "one\ntwo\n", 8);
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), 4);
    assert_string_equal(buf, "one\n");
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), 4);
    weft_writer_write_eof(w);
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), 0);   /* the server closed */
    weft_writer_free(w);
    weft_sleep(20);
    return (intptr_t)weft_stream_server_client_count(sv->s);
}

static void
test_start_server_runs_a_handler_per_connection(void **state)
{
    struct stream_pair *p = *state;
    struct srv sv;

    assert_int_equal(weft_start_server(p->loop, line_echo, NULL, "127.0.0.1", 0, NULL, &sv.s), 0);
    assert_true(weft_stream_server_is_serving(sv.s));
    sv.port = srv_port(sv.s);
    assert_int_equal(harness_run_task(p->loop, echo_client, &sv, 5000), 0);
    weft_stream_server_free(sv.s);
}

static int
sleepy(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    int *cancelled = arg;
    int rc = weft_sleep(60000);

    (void)r;
    (void)w;
    if (rc == -ECANCELED)
        (*cancelled)++;
    return rc;
}

struct closing {
    struct weft_stream_server *s;
    uint16_t port;
    int cancelled;
};

static intptr_t
close_with_grace(void *arg)
{
    struct closing *c = arg;
    struct weft_reader *r[3];
    struct weft_writer *w[3];
    uint64_t t0;
    int rc;

    for (int i = 0; i < 3; i++)
        assert_int_equal(weft_open_connection("localhost", c->port, NULL, &r[i], &w[i]), 0);
    weft_sleep(20);
    assert_int_equal(weft_stream_server_client_count(c->s), 3);
    t0 = weft_loop_time(weft_get_running_loop());
    weft_stream_server_close(c->s);
    assert_false(weft_stream_server_is_serving(c->s));
    assert_int_equal(weft_stream_server_serve_forever(c->s), 0);
    rc = weft_stream_server_wait_closed(c->s);
    assert_int_equal(rc, 0);
    /* the handlers were cancelled after the grace period, not before */
    assert_true(weft_loop_time(weft_get_running_loop()) - t0 >=
                90);
    assert_int_equal(c->cancelled, 3);
    for (int i = 0; i < 3; i++) {
        char buf[8];

        assert_int_equal(weft_reader_read(r[i], buf, sizeof(buf)), 0);
        weft_writer_free(w[i]);
    }
    return 0;
}

static void
test_server_close_cancels_handlers_after_the_grace_period(void **state)
{
    struct stream_pair *p = *state;
    struct weft_stream_options o = { .grace_ms = 100 };
    struct closing c = { 0 };

    assert_int_equal(weft_start_server(p->loop, sleepy, &c.cancelled, "127.0.0.1", 0, &o,
                                       &c.s), 0);
    c.port = srv_port(c.s);
    assert_int_equal(harness_run_task(p->loop, close_with_grace, &c, 5000), 0);
    weft_stream_server_free(c.s);
}

static intptr_t
connect_failures(void *arg)
{
    struct weft_reader *r;
    struct weft_writer *w;
    uint16_t port = harness_port();

    (void)arg;
    assert_int_equal(weft_open_connection("127.0.0.1", port, NULL, &r, &w), -ECONNREFUSED);
    assert_null(r);
    assert_int_equal(weft_open_connection("no.such.host.invalid", 80, NULL, &r, &w),
                     -WEFT_ENONAME);
    assert_int_equal(weft_open_connection("", 80, NULL, &r, &w), -EINVAL);
    {
        /* with TLS options a refused connection is still just refused */
        struct weft_tls_context *ctx;

        assert_int_equal(weft_tls_context_new_client(NULL, &ctx, NULL, 0), 0);
        assert_int_equal(weft_open_connection("127.0.0.1", port,
                                              &(struct weft_stream_options){ .tls = ctx },
                                              &r, &w), -ECONNREFUSED);
        weft_tls_context_free(ctx);
    }
    return 0;
}

static void
test_open_connection_reports_failures(void **state)
{
    struct stream_pair *p = *state;
    struct weft_reader *r;
    struct weft_writer *w;

    assert_int_equal(harness_run_task(p->loop, connect_failures, NULL, 5000), 0);
    assert_int_equal(weft_open_connection("127.0.0.1", 1, NULL, &r, &w), -WEFT_ENOTASK);
}

static int
greeter(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    (void)r;
    (void)arg;
    return weft_writer_write(w, "hi\n", 3);
}

struct local {
    uint16_t port;
};

static intptr_t
connect_from_local_address(void *arg)
{
    struct local *l = arg;
    struct sockaddr_in local = { .sin_family = AF_INET };
    struct sockaddr_in peer;
    size_t len = sizeof(peer);
    struct weft_stream_options o = {
        .local_addr = (struct sockaddr *)&local, .local_addrlen = sizeof(local),
    };
    struct weft_reader *r;
    struct weft_writer *w;
    char buf[8];

    local.sin_addr.s_addr = htonl(0x7f000001);
    assert_int_equal(weft_open_connection("127.0.0.1", l->port, &o, &r, &w), 0);
    assert_int_equal(weft_writer_get_extra_info(w, "sockname", &peer, &len), 0);
    assert_int_equal(ntohl(peer.sin_addr.s_addr), 0x7f000001);
    assert_int_equal(weft_reader_readline(r, buf, sizeof(buf)), 3);
    weft_writer_free(w);
    return 0;
}

static void
test_open_connection_binds_the_local_address(void **state)
{
    struct stream_pair *p = *state;
    struct weft_stream_server *s;
    struct local l;

    assert_int_equal(weft_start_server(p->loop, greeter, NULL, "127.0.0.1", 0, NULL, &s), 0);
    l.port = srv_port(s);
    assert_int_equal(harness_run_task(p->loop, connect_from_local_address, &l, 5000), 0);
    weft_stream_server_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, stream_pair_setup, stream_pair_teardown)
        T(test_read_returns_what_came_then_0_at_eof),
        T(test_readline_joins_chunks_and_returns_partial_line_at_eof),
        T(test_readline_over_the_limit_consumes_the_line),
        T(test_readline_longer_than_buffer_fails),
        T(test_readuntil_over_the_limit_leaves_the_data),
        T(test_readuntil_with_several_separators),
        T(test_readexactly_and_its_partial_count_at_eof),
        T(test_read_all_reads_past_twice_the_limit_until_eof),
        T(test_many_small_writes_both_ways),
        T(test_reading_pauses_above_twice_the_limit_and_resumes),
        T(test_drain_waits_for_a_peer_that_does_not_read_and_memory_stays_bounded),
        T(test_several_tasks_drain_at_once),
        T(test_a_peer_reset_during_drain_fails_the_drain),
        T(test_cancelling_a_task_blocked_in_read),
        T(test_write_after_close_is_epipe_and_wait_closed_returns),
        T(test_wait_closed_is_bounded),
        T(test_start_server_runs_a_handler_per_connection),
        T(test_server_close_cancels_handlers_after_the_grace_period),
        T(test_open_connection_reports_failures),
        T(test_open_connection_binds_the_local_address),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
