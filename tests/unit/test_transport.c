/* SPDX-License-Identifier: MIT */
/* test_transport.c: the socket transport over loopback TCP: writes, close, abort, EOF, flow. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <weft/weft.h>

#include "harness.h"
#include "transport_fixture.h"

/* A protocol that records what happens to it; the test owns it (not freed by lost). */
enum action { ACT_NONE, ACT_CLOSE_IN_DATA, ACT_ABORT_IN_DATA, ACT_ECHO };

struct rec {
    struct weft_protocol base;
    struct weft_transport *tr;
    int made, data_calls, eofs, pauses, resumes, lost;
    int lost_error;
    int after_lost;             /* callbacks seen after connection_lost: must stay 0 */
    bool keep_open;             /* eof_received's answer */
    int made_rc, data_rc;       /* what connection_made / data_received return */
    enum action action;
    size_t size_at_pause, size_at_resume;
    struct evbuffer *got;
    bool lost_flag;
};

static void
check_alive(struct rec *r)
{
    if (r->lost)
        r->after_lost++;
}

static int
rec_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct rec *r = (struct rec *)p;

    check_alive(r);
    r->made++;
    r->tr = tr;
    return r->made_rc;
}

static int
rec_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct rec *r = (struct rec *)p;

    check_alive(r);
    r->data_calls++;
    switch (r->action) {
    case ACT_ECHO:
        assert_int_equal(weft_transport_write_buffer(r->tr, in), 0);
        assert_int_equal(evbuffer_get_length(in), 0);
        return r->data_rc;
    case ACT_CLOSE_IN_DATA:
        evbuffer_add_buffer(r->got, in);
        assert_int_equal(weft_transport_write(r->tr, "bye", 3), 0);
        weft_transport_close(r->tr);
        weft_transport_close(r->tr);    /* a second close is a no-op */
        assert_int_equal(weft_transport_write(r->tr, "x", 1), -EPIPE);
        return 0;
    case ACT_ABORT_IN_DATA:
        evbuffer_add_buffer(r->got, in);
        weft_transport_abort(r->tr);
        weft_transport_abort(r->tr);
        assert_int_equal(weft_transport_write(r->tr, "x", 1), -EPIPE);
        return 0;
    default:
        evbuffer_add_buffer(r->got, in);
        return r->data_rc;
    }
}

static bool
rec_eof(struct weft_protocol *p)
{
    struct rec *r = (struct rec *)p;

    check_alive(r);
    r->eofs++;
    return r->keep_open;
}

static void
rec_lost(struct weft_protocol *p, int error)
{
    struct rec *r = (struct rec *)p;

    check_alive(r);
    r->lost++;
    r->lost_error = error;
    r->lost_flag = true;
}

static void
rec_pause(struct weft_protocol *p)
{
    struct rec *r = (struct rec *)p;

    check_alive(r);
    r->pauses++;
    r->size_at_pause = weft_transport_get_write_buffer_size(r->tr);
}

static void
rec_resume(struct weft_protocol *p)
{
    struct rec *r = (struct rec *)p;

    check_alive(r);
    r->resumes++;
    r->size_at_resume = weft_transport_get_write_buffer_size(r->tr);
}

static const struct weft_protocol_ops rec_ops = {
    .connection_made = rec_made,
    .data_received = rec_data,
    .eof_received = rec_eof,
    .connection_lost = rec_lost,
    .pause_writing = rec_pause,
    .resume_writing = rec_resume,
};

struct fix {
    struct weft_loop *loop;
    struct rec r;
    int peer;                   /* the other end, a plain non-blocking socket */
};

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    f->r.base.ops = &rec_ops;
    f->r.got = evbuffer_new();
    if (transport_fixture_open(&f->loop, &f->peer, &f->r.base) < 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;

    /* Whatever the test did, the connection ends exactly once. */
    transport_fixture_end(f->loop, f->r.tr, &f->r.lost, &f->r.lost_flag);
    assert_int_equal(f->r.after_lost, 0);
    assert_int_equal(f->r.made, 1);
    evbuffer_free(f->r.got);
    transport_fixture_close(f->loop, f->peer);
    free(f);
    return 0;
}

/* Run the loop and read the peer until EOF/reset, or timeout; returns bytes read or -errno. */
static ssize_t
peer_drain(struct fix *f, struct evbuffer *into, uint64_t timeout_ms)
{
    uint64_t start = weft_loop_time(f->loop);
    ssize_t total = 0;
    char buf[65536];

    for (;;) {
        ssize_t n = recv(f->peer, buf, sizeof(buf), 0);

        if (n > 0) {
            if (into != NULL)
                evbuffer_add(into, buf, (size_t)n);
            total += n;
            continue;
        }
        if (n == 0)
            return total;
        if (errno != EAGAIN)
            return -errno;
        if (weft_loop_time(f->loop) - start > timeout_ms)
            return -ETIMEDOUT;
        weft_loop_run_once(f->loop);
        poll(&(struct pollfd){ .fd = f->peer, .events = POLLIN }, 1, 1);
    }
}

/* Read exactly len bytes from the peer while the loop runs. */
static void
peer_read_exact(struct fix *f, void *out, size_t len)
{
    uint64_t start = weft_loop_time(f->loop);
    size_t got = 0;

    while (got < len) {
        ssize_t n = recv(f->peer, (char *)out + got, len - got, 0);

        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        assert_true(n < 0 && errno == EAGAIN);
        assert_true(weft_loop_time(f->loop) - start < 5000);
        weft_loop_run_once(f->loop);
        poll(&(struct pollfd){ .fd = f->peer, .events = POLLIN }, 1, 1);
    }
}

static void
run_until_data(struct fix *f, size_t len)
{
    uint64_t start = weft_loop_time(f->loop);

    while (evbuffer_get_length(f->r.got) < len && !f->r.lost) {
        assert_true(weft_loop_time(f->loop) - start < 5000);
        harness_run_for(f->loop, 2);
    }
}

static void
fill_pattern(unsigned char *p, size_t len, size_t offset)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)((offset + i) * 7 + ((offset + i) >> 13));
}

static bool
check_pattern(struct evbuffer *b, size_t len)
{
    unsigned char *p = evbuffer_pullup(b, -1);

    for (size_t i = 0; i < len; i++)
        if (p[i] != (unsigned char)(i * 7 + (i >> 13)))
            return false;
    return true;
}

static void
test_close_flushes_everything_then_eof(void **state)
{
    struct fix *f = *state;
    size_t len = 1u << 20;
    unsigned char *data = malloc(len);
    struct evbuffer *got = evbuffer_new();

    fill_pattern(data, len, 0);
    /* In pieces, so some go straight out and the rest is queued. */
    for (size_t off = 0; off < len; off += 100000) {
        size_t n = len - off < 100000 ? len - off : 100000;
        assert_int_equal(weft_transport_write(f->r.tr, data + off, n), 0);
    }
    weft_transport_close(f->r.tr);
    assert_true(weft_transport_is_closing(f->r.tr));
    assert_false(weft_transport_is_reading(f->r.tr));
    assert_int_equal(weft_transport_write(f->r.tr, "x", 1), -EPIPE);
    assert_int_equal(f->r.lost, 0);     /* never from inside close */
    assert_int_equal(peer_drain(f, got, 5000), (ssize_t)len);
    assert_true(check_pattern(got, len));
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(f->r.lost_error, 0);
    evbuffer_free(got);
    free(data);
}

static void
test_abort_drops_queue_and_resets(void **state)
{
    struct fix *f = *state;
    size_t len = 8u << 20, chunk = 65536;
    unsigned char *data = calloc(1, chunk);
    ssize_t n;

    /* The peer reads nothing, so most of 8 MiB stays queued. */
    for (size_t off = 0; off < len; off += chunk)
        assert_int_equal(weft_transport_write(f->r.tr, data, chunk), 0);
    assert_true(weft_transport_get_write_buffer_size(f->r.tr) > 0);
    weft_transport_abort(f->r.tr);
    assert_int_equal(weft_transport_get_write_buffer_size(f->r.tr), 0);
    assert_true(weft_transport_is_closing(f->r.tr));
    assert_int_equal(weft_transport_write(f->r.tr, data, 1), -EPIPE);
    assert_int_equal(f->r.lost, 0);
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(f->r.lost_error, 0);
    n = peer_drain(f, NULL, 5000);
    assert_true(n == -ECONNRESET || (n >= 0 && (size_t)n < len));
    free(data);
}

static void
test_write_after_close_is_epipe(void **state)
{
    struct fix *f = *state;
    struct evbuffer *b = evbuffer_new();
    struct iovec iov[2] = { { "a", 1 }, { "b", 1 } };

    evbuffer_add(b, "abc", 3);
    weft_transport_close(f->r.tr);
    assert_int_equal(weft_transport_write(f->r.tr, "x", 1), -EPIPE);
    assert_int_equal(weft_transport_write_buffer(f->r.tr, b), -EPIPE);
    assert_int_equal(evbuffer_get_length(b), 3);   /* left as it was */
    assert_int_equal(weft_transport_writelines(f->r.tr, iov, 2), -EPIPE);
    assert_int_equal(weft_transport_write_eof(f->r.tr), -EPIPE);
    assert_int_equal(weft_transport_pause_reading(f->r.tr), -EPIPE);
    assert_int_equal(weft_transport_resume_reading(f->r.tr), -EPIPE);
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(peer_drain(f, NULL, 2000), 0);
    evbuffer_free(b);
}

static void
test_writelines_and_write_buffer_keep_order(void **state)
{
    struct fix *f = *state;
    struct evbuffer *b = evbuffer_new();
    struct iovec iov[3] = { { "one ", 4 }, { "two ", 4 }, { "three ", 6 } };
    char got[32] = { 0 };

    assert_int_equal(weft_transport_writelines(f->r.tr, iov, -1), -EINVAL);
    assert_int_equal(weft_transport_writelines(f->r.tr, iov, 3), 0);
    evbuffer_add(b, "four ", 5);
    assert_int_equal(weft_transport_write_buffer(f->r.tr, b), 0);
    assert_int_equal(evbuffer_get_length(b), 0);
    assert_int_equal(weft_transport_write(f->r.tr, "five", 4), 0);
    peer_read_exact(f, got, 23);
    assert_string_equal(got, "one two three four five");
    evbuffer_free(b);
}

static void
free_ref(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    (*(int *)arg)++;
}

static void
test_write_buffer_with_many_chains_keeps_order(void **state)
{
    struct fix *f = *state;
    struct evbuffer *b = evbuffer_new();
    size_t n = 300, piece = 1000, len = n * piece;
    unsigned char *data = malloc(len);
    struct evbuffer *got = evbuffer_new();
    int freed = 0;

    /* Each reference is its own chain: more than one sendmsg() can take. */
    fill_pattern(data, len, 0);
    for (size_t i = 0; i < n; i++)
        evbuffer_add_reference(b, data + i * piece, piece, free_ref, &freed);
    assert_int_equal(weft_transport_write_buffer(f->r.tr, b), 0);
    assert_int_equal(evbuffer_get_length(b), 0);
    weft_transport_close(f->r.tr);
    assert_int_equal(peer_drain(f, got, 5000), (ssize_t)len);
    assert_true(check_pattern(got, len));
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(freed, (int)n);    /* every chain released once sent */
    evbuffer_free(got);
    evbuffer_free(b);
    free(data);
}

static void
test_write_eof_half_closes_and_keeps_reading(void **state)
{
    struct fix *f = *state;
    char buf[16] = { 0 };

    assert_true(weft_transport_can_write_eof(f->r.tr));
    assert_int_equal(weft_transport_write(f->r.tr, "hello", 5), 0);
    assert_int_equal(weft_transport_write_eof(f->r.tr), 0);
    assert_int_equal(weft_transport_write_eof(f->r.tr), -EPIPE);
    assert_int_equal(weft_transport_write(f->r.tr, "x", 1), -EPIPE);
    assert_false(weft_transport_is_closing(f->r.tr));
    peer_read_exact(f, buf, 5);
    assert_string_equal(buf, "hello");
    assert_int_equal(peer_drain(f, NULL, 2000), 0);    /* our EOF */
    /* The other direction still works. */
    assert_int_equal(send(f->peer, "reply", 5, 0), 5);
    run_until_data(f, 5);
    assert_int_equal(evbuffer_get_length(f->r.got), 5);
    assert_int_equal(f->r.lost, 0);
    /* The peer closes too: both sides done, the transport closes by itself. */
    f->r.keep_open = true;
    shutdown(f->peer, SHUT_WR);
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(f->r.eofs, 1);
    assert_int_equal(f->r.lost_error, 0);
}

static void
test_write_eof_waits_for_the_queue(void **state)
{
    struct fix *f = *state;
    size_t len = 4u << 20;
    unsigned char *data = malloc(len);
    struct evbuffer *got = evbuffer_new();

    fill_pattern(data, len, 0);
    assert_int_equal(weft_transport_write(f->r.tr, data, len), 0);
    assert_true(weft_transport_get_write_buffer_size(f->r.tr) > 0);     /* peer not reading */
    assert_int_equal(weft_transport_write_eof(f->r.tr), 0);
    /* Everything queued arrives before the EOF. */
    assert_int_equal(peer_drain(f, got, 5000), (ssize_t)len);
    assert_true(check_pattern(got, len));
    assert_int_equal(f->r.lost, 0);
    assert_false(weft_transport_is_closing(f->r.tr));
    f->r.keep_open = true;
    shutdown(f->peer, SHUT_WR);
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(f->r.eofs, 1);
    evbuffer_free(got);
    free(data);
}

static void
test_eof_received_true_keeps_writing(void **state)
{
    struct fix *f = *state;
    char buf[8] = { 0 };
    struct evbuffer *rest = evbuffer_new();

    f->r.keep_open = true;
    shutdown(f->peer, SHUT_WR);
    for (int i = 0; i < 2000 && f->r.eofs == 0; i++)
        harness_run_for(f->loop, 1);
    assert_int_equal(f->r.eofs, 1);
    assert_int_equal(f->r.lost, 0);
    assert_false(weft_transport_is_closing(f->r.tr));
    assert_int_equal(weft_transport_write(f->r.tr, "later", 5), 0);
    peer_read_exact(f, buf, 5);
    assert_string_equal(buf, "later");
    weft_transport_close(f->r.tr);
    assert_int_equal(peer_drain(f, rest, 2000), 0);
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(f->r.eofs, 1);
    evbuffer_free(rest);
}

static void
test_eof_received_false_closes(void **state)
{
    struct fix *f = *state;

    assert_int_equal(send(f->peer, "abc", 3, 0), 3);
    shutdown(f->peer, SHUT_WR);
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(f->r.eofs, 1);
    assert_int_equal(f->r.lost_error, 0);
    assert_int_equal(evbuffer_get_length(f->r.got), 3);     /* data before EOF */
    assert_int_equal(peer_drain(f, NULL, 2000), 0);
}

static void
test_pause_and_resume_writing_at_the_marks(void **state)
{
    struct fix *f = *state;
    unsigned char chunk[16384] = { 0 };
    size_t high, low, written = 0;
    ssize_t n;

    weft_transport_get_write_buffer_limits(f->r.tr, &high, &low);
    assert_int_equal(high, 64 * 1024);
    assert_int_equal(low, 16 * 1024);
    /* The peer does not read: the kernel buffers fill, then ours. */
    while (f->r.pauses == 0) {
        assert_int_equal(weft_transport_write(f->r.tr, chunk, sizeof(chunk)), 0);
        written += sizeof(chunk);
        assert_true(written < (256u << 20));
    }
    assert_int_equal(f->r.pauses, 1);
    assert_true(f->r.size_at_pause > high);
    /* More writes while paused are accepted and do not pause again. */
    assert_int_equal(weft_transport_write(f->r.tr, chunk, sizeof(chunk)), 0);
    written += sizeof(chunk);
    assert_int_equal(f->r.pauses, 1);
    assert_int_equal(f->r.resumes, 0);
    harness_run_for(f->loop, 20);
    assert_int_equal(f->r.resumes, 0);
    /* The peer reads: the queue drains, resume_writing once at the low mark. */
    weft_transport_close(f->r.tr);
    n = peer_drain(f, NULL, 10000);
    assert_int_equal(n, (ssize_t)written);
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(f->r.resumes, 1);
    assert_true(f->r.size_at_resume <= low);
    assert_int_equal(f->r.pauses, 1);
}

static void
test_write_buffer_limits_validation(void **state)
{
    struct fix *f = *state;
    size_t high, low;

    assert_int_equal(weft_transport_set_write_buffer_limits(f->r.tr, 10, 20), -EINVAL);
    weft_transport_get_write_buffer_limits(f->r.tr, &high, &low);
    assert_int_equal(high, WEFT_WRITE_HIGH_DEFAULT);
    assert_int_equal(low, WEFT_WRITE_LOW_DEFAULT);
    assert_int_equal(weft_transport_set_write_buffer_limits(f->r.tr, 1000, WEFT_LIMIT_DEFAULT),
                     0);
    weft_transport_get_write_buffer_limits(f->r.tr, &high, &low);
    assert_int_equal(high, 1000);
    assert_int_equal(low, 250);
    assert_int_equal(weft_transport_set_write_buffer_limits(f->r.tr, WEFT_LIMIT_DEFAULT,
                                                            WEFT_LIMIT_DEFAULT), 0);
    weft_transport_get_write_buffer_limits(f->r.tr, &high, &low);
    assert_int_equal(high, 64 * 1024);
    assert_int_equal(low, 16 * 1024);
    assert_int_equal(weft_transport_set_write_buffer_limits(f->r.tr, 0, 0), 0);
    assert_int_equal(weft_transport_get_write_buffer_size(f->r.tr), 0);
    assert_int_equal(f->r.pauses, 0);
}

static void
test_pause_reading_stops_data_received(void **state)
{
    struct fix *f = *state;

    assert_true(weft_transport_is_reading(f->r.tr));
    assert_int_equal(weft_transport_pause_reading(f->r.tr), 0);
    assert_int_equal(weft_transport_pause_reading(f->r.tr), 0);
    assert_false(weft_transport_is_reading(f->r.tr));
    assert_int_equal(send(f->peer, "ping", 4, 0), 4);
    harness_run_for(f->loop, 50);
    assert_int_equal(f->r.data_calls, 0);
    assert_int_equal(weft_transport_resume_reading(f->r.tr), 0);
    assert_int_equal(weft_transport_resume_reading(f->r.tr), 0);
    assert_true(weft_transport_is_reading(f->r.tr));
    run_until_data(f, 4);
    assert_memory_equal(evbuffer_pullup(f->r.got, -1), "ping", 4);
}

static void
test_close_inside_data_received(void **state)
{
    struct fix *f = *state;
    struct evbuffer *got = evbuffer_new();

    f->r.action = ACT_CLOSE_IN_DATA;
    assert_int_equal(send(f->peer, "hi", 2, 0), 2);
    assert_int_equal(peer_drain(f, got, 2000), 3);
    assert_memory_equal(evbuffer_pullup(got, -1), "bye", 3);
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(f->r.data_calls, 1);
    assert_int_equal(f->r.lost_error, 0);
    evbuffer_free(got);
}

static void
test_abort_inside_data_received(void **state)
{
    struct fix *f = *state;
    ssize_t n;

    f->r.action = ACT_ABORT_IN_DATA;
    assert_int_equal(send(f->peer, "hi", 2, 0), 2);
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(f->r.data_calls, 1);
    n = peer_drain(f, NULL, 2000);
    assert_true(n == 0 || n == -ECONNRESET);
}

struct seen {
    int calls;
    int error;
    struct weft_transport *tr;
};

static void
capture_error(struct weft_loop *loop, const struct weft_error_context *ctx, void *arg)
{
    struct seen *s = arg;

    (void)loop;
    s->calls++;
    s->error = ctx->error;
    s->tr = ctx->transport;
}

static void
test_data_received_error_reaches_handler_and_aborts(void **state)
{
    struct fix *f = *state;
    struct seen seen = { 0 };
    struct weft_transport *tr = f->r.tr;

    weft_loop_set_error_handler(f->loop, capture_error, &seen);
    f->r.data_rc = -EPROTO;
    assert_int_equal(send(f->peer, "junk", 4, 0), 4);
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.error, -EPROTO);
    assert_ptr_equal(seen.tr, tr);
    assert_int_equal(f->r.lost_error, 0);
    assert_int_equal(f->r.data_calls, 1);
}

static void
test_peer_reset_is_lost_with_econnreset(void **state)
{
    struct fix *f = *state;
    struct linger lg = { 1, 0 };

    setsockopt(f->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(f->peer);
    f->peer = -1;
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_int_equal(f->r.lost_error, -ECONNRESET);
}

static void
test_write_to_reset_peer_reports_later(void **state)
{
    struct fix *f = *state;
    struct linger lg = { 1, 0 };
    char buf[4096] = { 0 };

    assert_int_equal(weft_transport_pause_reading(f->r.tr), 0);   /* only the write sees it */
    setsockopt(f->peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(f->peer);
    f->peer = -1;
    harness_run_for(f->loop, 20);
    for (int i = 0; i < 100 && !weft_transport_is_closing(f->r.tr); i++)
        assert_int_equal(weft_transport_write(f->r.tr, buf, sizeof(buf)), 0);
    assert_true(weft_transport_is_closing(f->r.tr));
    assert_int_equal(f->r.lost, 0);     /* not from inside write */
    assert_int_equal(weft_transport_write(f->r.tr, buf, 1), -EPIPE);
    assert_int_equal(harness_run_until(f->loop, &f->r.lost_flag, 2000), 0);
    assert_true(f->r.lost_error == -EPIPE || f->r.lost_error == -ECONNRESET);
}

static void
test_large_echo_both_ways_at_once(void **state)
{
    struct fix *f = *state;
    size_t len = 8u << 20, sent = 0;
    unsigned char *out = malloc(len);
    struct evbuffer *back = evbuffer_new();
    uint64_t start = weft_loop_time(f->loop);

    f->r.action = ACT_ECHO;
    fill_pattern(out, len, 0);
    while (evbuffer_get_length(back) < len) {
        char buf[65536];
        ssize_t n;

        assert_true(weft_loop_time(f->loop) - start < 20000);
        if (sent < len) {
            n = send(f->peer, out + sent, len - sent > 262144 ? 262144 : len - sent, 0);
            if (n > 0)
                sent += (size_t)n;
            else
                assert_true(errno == EAGAIN);
        }
        while ((n = recv(f->peer, buf, sizeof(buf), 0)) > 0)
            evbuffer_add(back, buf, (size_t)n);
        assert_true(n < 0 && errno == EAGAIN);
        weft_loop_run_once(f->loop);
    }
    assert_int_equal(evbuffer_get_length(back), len);
    assert_true(check_pattern(back, len));
    assert_true(f->r.data_calls > 0);
    evbuffer_free(back);
    free(out);
}

static void
test_extra_info(void **state)
{
    struct fix *f = *state;
    struct sockaddr_storage ss, mine;
    socklen_t ml = sizeof(mine);
    size_t len = sizeof(ss);
    int fd = -1;
    char peer[64], want[64];
    struct sockaddr_in *sin = (struct sockaddr_in *)&mine;

    assert_int_equal(weft_transport_get_extra_info(f->r.tr, "peername", &ss, &len), 0);
    assert_int_equal(getsockname(f->peer, (struct sockaddr *)&mine, &ml), 0);
    assert_int_equal(len, ml);
    assert_memory_equal(&ss, &mine, ml);
    len = sizeof(ss);
    assert_int_equal(weft_transport_get_extra_info(f->r.tr, "sockname", &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    len = sizeof(fd);
    assert_int_equal(weft_transport_get_extra_info(f->r.tr, "socket", &fd, &len), 0);
    assert_true(fd >= 0);
    len = 2;
    assert_int_equal(weft_transport_get_extra_info(f->r.tr, "peername", &ss, &len), -ENOBUFS);
    assert_int_equal(len, ml);
    len = sizeof(ss);
    assert_int_equal(weft_transport_get_extra_info(f->r.tr, "ssl_object", &ss, &len), -ENOENT);
    snprintf(want, sizeof(want), "127.0.0.1:%u", ntohs(sin->sin_port));
    assert_string_equal(weft_transport_peer_string(f->r.tr, peer, sizeof(peer)), want);
    assert_string_equal(weft_transport_peer_string(f->r.tr, peer, 4), "?");
    assert_ptr_equal(weft_transport_get_loop(f->r.tr), f->loop);
    assert_ptr_equal(weft_transport_get_protocol(f->r.tr), &f->r.base);
}

static void
test_connection_made_error_aborts(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct rec r = { .base.ops = &rec_ops, .made_rc = -EINVAL };
    struct seen seen = { 0 };
    struct weft_transport *tr = NULL;
    int c, s;

    (void)state;
    r.got = evbuffer_new();
    weft_loop_set_error_handler(loop, capture_error, &seen);
    assert_int_equal(harness_tcp_pair(&c, &s), 0);
    assert_int_equal(weft_connect_accepted_socket(loop, transport_fixture_factory, &r, s, &tr), 0);
    assert_ptr_equal(tr, r.tr);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.error, -EINVAL);
    assert_true(weft_transport_is_closing(tr));
    assert_int_equal(r.lost, 0);
    assert_int_equal(harness_run_until(loop, &r.lost_flag, 2000), 0);
    assert_int_equal(r.lost, 1);
    assert_int_equal(r.after_lost, 0);
    close(c);
    evbuffer_free(r.got);
    weft_loop_free(loop);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_close_flushes_everything_then_eof),
        T(test_abort_drops_queue_and_resets),
        T(test_write_after_close_is_epipe),
        T(test_writelines_and_write_buffer_keep_order),
        T(test_write_buffer_with_many_chains_keeps_order),
        T(test_write_eof_half_closes_and_keeps_reading),
        T(test_write_eof_waits_for_the_queue),
        T(test_eof_received_true_keeps_writing),
        T(test_eof_received_false_closes),
        T(test_pause_and_resume_writing_at_the_marks),
        T(test_write_buffer_limits_validation),
        T(test_pause_reading_stops_data_received),
        T(test_close_inside_data_received),
        T(test_abort_inside_data_received),
        T(test_data_received_error_reaches_handler_and_aborts),
        T(test_peer_reset_is_lost_with_econnreset),
        T(test_write_to_reset_peer_reports_later),
        T(test_large_echo_both_ways_at_once),
        T(test_extra_info),
        cmocka_unit_test(test_connection_made_error_aborts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
