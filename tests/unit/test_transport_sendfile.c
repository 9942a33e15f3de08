/* SPDX-License-Identifier: MIT */
/* test_transport_sendfile.c: weft_transport_sendfile(_buffer) on the socket transport: order, flow control, truncated files, SIGPIPE. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <weft/weft.h>

#include "harness.h"
#include "transport_fixture.h"

#define FILE_SIZE (6u * 1024 * 1024 + 777)

/* A protocol that records its flow control and its end; the test owns it. */
struct rec {
    struct weft_protocol base;
    struct weft_transport *tr;
    int made, pauses, resumes, lost, lost_error;
    bool lost_flag;
};

static int
rec_made(struct weft_protocol *p, struct weft_transport *tr)
{
    ((struct rec *)p)->made++;
    ((struct rec *)p)->tr = tr;
    return 0;
}

static int
rec_data(struct weft_protocol *p, struct evbuffer *in)
{
    (void)p;
    evbuffer_drain(in, evbuffer_get_length(in));
    return 0;
}

static void
rec_lost(struct weft_protocol *p, int error)
{
    struct rec *r = (struct rec *)p;

    r->lost++;
    r->lost_error = error;
    r->lost_flag = true;
}

static void
rec_pause(struct weft_protocol *p)
{
    ((struct rec *)p)->pauses++;
}

static void
rec_resume(struct weft_protocol *p)
{
    ((struct rec *)p)->resumes++;
}

static const struct weft_protocol_ops rec_ops = {
    .connection_made = rec_made,
    .data_received = rec_data,
    .connection_lost = rec_lost,
    .pause_writing = rec_pause,
    .resume_writing = rec_resume,
};

struct fix {
    struct weft_loop *loop;
    struct rec r;
    int peer;                   /* the client end, read by the test */
    int file;                   /* FILE_SIZE bytes of pattern, unlinked */
    unsigned char *want;        /* the same bytes */
};

static unsigned char
pattern(size_t i)
{
    return (unsigned char)(i * 7 + (i >> 13));
}

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    char path[] = "/tmp/weft-sendfile-XXXXXX";

    if (f == NULL || (f->want = malloc(FILE_SIZE)) == NULL)
        return -1;
    for (size_t i = 0; i < FILE_SIZE; i++)
        f->want[i] = pattern(i);
    f->file = mkstemp(path);
    if (f->file < 0)
        return -1;
    unlink(path);
    if (write(f->file, f->want, FILE_SIZE) != (ssize_t)FILE_SIZE)
        return -1;
    f->r.base.ops = &rec_ops;
    if (transport_fixture_open(&f->loop, &f->peer, &f->r.base) < 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;

    transport_fixture_end(f->loop, f->r.tr, &f->r.lost, &f->r.lost_flag);
    close(f->file);
    transport_fixture_close(f->loop, f->peer);
    free(f->want);
    free(f);
    return 0;
}

/* Queue a range of the test file (a descriptor of its own, which the transport takes). */
static void
add_file(struct fix *f, size_t off, size_t len)
{
    int fd = dup(f->file);

    assert_true(fd >= 0);
    assert_int_equal(weft_transport_sendfile(f->r.tr, fd, off, len), 0);
}

/* Read the peer while the loop runs, until EOF or reset; returns the bytes or -errno. */
static ssize_t
peer_drain(struct fix *f, unsigned char *into, size_t cap)
{
    uint64_t start = weft_loop_time(f->loop);
    size_t total = 0;

    for (;;) {
        ssize_t n = recv(f->peer, into + total, cap - total, MSG_DONTWAIT);

        if (n > 0) {
            total += (size_t)n;
            assert_true(total < cap);
            continue;
        }
        if (n == 0)
            return (ssize_t)total;
        if (errno == ECONNRESET)
            return (ssize_t)total;
        if (errno != EAGAIN)
            return -errno;
        if (weft_loop_time(f->loop) - start > 10000)
            return -ETIMEDOUT;
        weft_loop_run_once(f->loop);
        poll(&(struct pollfd){ .fd = f->peer, .events = POLLIN }, 1, 1);
    }
}

/* Bad arguments and a closing transport leave fd the caller's; len 0 takes and closes it. */
static void
test_sendfile_arguments(void **state)
{
    struct fix *f = *state;
    int fd = dup(f->file);

    assert_true(fd >= 0);
    assert_int_equal(weft_transport_sendfile(f->r.tr, -1, 0, 10), -EINVAL);
    assert_int_equal(weft_transport_sendfile(f->r.tr, fd, (uint64_t)1 << 63, 1), -EINVAL);
    assert_int_equal(weft_transport_sendfile(f->r.tr, fd, 0, 0), 0);
    assert_int_equal(fcntl(fd, F_GETFD), -1);       /* closed by the transport */
    fd = dup(f->file);
    weft_transport_close(f->r.tr);
    assert_int_equal(weft_transport_sendfile(f->r.tr, fd, 0, 10), -EPIPE);
    assert_true(fcntl(fd, F_GETFD) >= 0);           /* still ours */
    close(fd);
    harness_run_until(f->loop, &f->r.lost_flag, 2000);
    assert_int_equal(f->r.lost, 1);
}

/* Memory, file, memory, file: every byte arrives, in order, and flow control runs. */
static void
test_file_chains_between_memory_chains(void **state)
{
    struct fix *f = *state;
    struct evbuffer *b = evbuffer_new();
    size_t cap = 2 * FILE_SIZE, len1 = 3u * 1024 * 1024, off2 = 12345;
    unsigned char *got = malloc(cap);
    ssize_t n;

    assert_non_null(b);
    assert_non_null(got);
    evbuffer_add(b, "head\n", 5);
    assert_int_equal(weft_transport_write_buffer(f->r.tr, b), 0);
    assert_int_equal(evbuffer_get_length(b), 0);
    add_file(f, 100, len1);
    evbuffer_add(b, "middle\n", 7);
    assert_int_equal(weft_transport_write_buffer(f->r.tr, b), 0);       /* behind the file */
    add_file(f, off2, FILE_SIZE - off2);
    /* more bytes behind the files, queued after them */
    assert_int_equal(weft_transport_write(f->r.tr, "tail\n", 5), 0);
    assert_true(weft_transport_get_write_buffer_size(f->r.tr) > 0);
    assert_int_equal(f->r.pauses, 1);      /* files count against the high-water mark */
    weft_transport_close(f->r.tr);

    n = peer_drain(f, got, cap);
    assert_int_equal(n, 5 + len1 + 7 + (FILE_SIZE - off2) + 5);
    assert_memory_equal(got, "head\n", 5);
    assert_memory_equal(got + 5, f->want + 100, len1);
    assert_memory_equal(got + 5 + len1, "middle\n", 7);
    assert_memory_equal(got + 12 + len1, f->want + off2, FILE_SIZE - off2);
    assert_memory_equal(got + 12 + len1 + FILE_SIZE - off2, "tail\n", 5);
    harness_run_until(f->loop, &f->r.lost_flag, 2000);
    assert_int_equal(f->r.lost, 1);
    assert_int_equal(f->r.lost_error, 0);
    assert_int_equal(f->r.resumes, 1);
    evbuffer_free(b);
    free(got);
}

/* A file that shrinks while queued: the connection ends with -EIO, no hang, no crash. */
static void
test_truncated_file_ends_the_connection(void **state)
{
    struct fix *f = *state;
    struct evbuffer *b = evbuffer_new();
    size_t cap = 2 * FILE_SIZE;
    unsigned char *got = malloc(cap);
    ssize_t n;

    size_t queued, cut, small = 64 * 1024, len = sizeof(int);
    int fd = -1;

    assert_non_null(b);
    assert_non_null(got);
    /* small socket buffers, so that most of the file stays queued */
    assert_int_equal(weft_transport_get_extra_info(f->r.tr, "socket", &fd, &len), 0);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(int));
    setsockopt(f->peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(int));
    add_file(f, 0, FILE_SIZE);
    queued = weft_transport_get_write_buffer_size(f->r.tr);
    assert_true(queued > 0);
    /* cut the file in the middle of what is still queued */
    cut = FILE_SIZE - queued / 2;
    assert_int_equal(ftruncate(f->file, (off_t)cut), 0);
    assert_int_equal(weft_transport_write(f->r.tr, "never\n", 6), 0);

    n = peer_drain(f, got, cap);
    assert_int_equal(n, cut);
    assert_memory_equal(got, f->want, cut);
    harness_run_until(f->loop, &f->r.lost_flag, 2000);
    assert_int_equal(f->r.lost, 1);
    assert_int_equal(f->r.lost_error, -EIO);
    evbuffer_free(b);
    free(got);
}

/* The peer is gone: sendfile gets EPIPE, which must not kill the process with SIGPIPE. */
static void
test_file_to_a_reset_peer_is_an_error_not_a_signal(void **state)
{
    struct fix *f = *state;
    struct evbuffer *b = evbuffer_new();
    size_t len = sizeof(int);
    int fd = -1;
    char c;

    assert_non_null(b);
    assert_int_equal(weft_transport_get_extra_info(f->r.tr, "socket", &fd, &len), 0);
    /* The peer resets; reading the server end takes the ECONNRESET, so the next send
     * finds a dead socket: EPIPE, with SIGPIPE unless the sender prevents it. */
    setsockopt(f->peer, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger));
    close(f->peer);
    f->peer = -1;
    assert_int_equal(poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 2000), 1);
    assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, ECONNRESET);
    add_file(f, 0, FILE_SIZE);
    harness_run_until(f->loop, &f->r.lost_flag, 2000);
    assert_int_equal(f->r.lost, 1);
    assert_int_equal(f->r.lost_error, -EPIPE);
    evbuffer_free(b);
}

/* A head with its file, sent now; then another behind it while the first is queued: the
 * heads are drained from the caller's buffer and every byte arrives in order. */
static void
test_head_with_file(void **state)
{
    struct fix *f = *state;
    struct evbuffer *b = evbuffer_new();
    size_t cap = 3 * FILE_SIZE, len1 = FILE_SIZE - 5, off2 = 999;
    unsigned char *got = malloc(cap);
    int fd = dup(f->file);
    ssize_t n;

    assert_non_null(b);
    assert_non_null(got);
    assert_true(fd >= 0);
    evbuffer_add(b, "head one\n", 9);
    assert_int_equal(weft_transport_sendfile_buffer(f->r.tr, b, fd, 5, len1), 0);
    assert_int_equal(evbuffer_get_length(b), 0);
    assert_true(weft_transport_get_write_buffer_size(f->r.tr) > 0);     /* 6 MiB: not all sent */
    fd = dup(f->file);
    assert_true(fd >= 0);
    evbuffer_add(b, "head two\n", 9);
    assert_int_equal(weft_transport_sendfile_buffer(f->r.tr, b, fd, off2, FILE_SIZE - off2), 0);
    assert_int_equal(evbuffer_get_length(b), 0);
    /* a NULL head, and a head with an empty range (fd closed, head still sent) */
    fd = dup(f->file);
    assert_int_equal(weft_transport_sendfile_buffer(f->r.tr, NULL, fd, 0, 3), 0);
    fd = dup(f->file);
    evbuffer_add(b, "end\n", 4);
    assert_int_equal(weft_transport_sendfile_buffer(f->r.tr, b, fd, 0, 0), 0);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(evbuffer_get_length(b), 0);
    weft_transport_close(f->r.tr);

    n = peer_drain(f, got, cap);
    assert_int_equal(n, 9 + len1 + 9 + (FILE_SIZE - off2) + 3 + 4);
    assert_memory_equal(got, "head one\n", 9);
    assert_memory_equal(got + 9, f->want + 5, len1);
    assert_memory_equal(got + 9 + len1, "head two\n", 9);
    assert_memory_equal(got + 18 + len1, f->want + off2, FILE_SIZE - off2);
    assert_memory_equal(got + 18 + len1 + FILE_SIZE - off2, f->want, 3);
    assert_memory_equal(got + 21 + len1 + FILE_SIZE - off2, "end\n", 4);
    harness_run_until(f->loop, &f->r.lost_flag, 2000);
    assert_int_equal(f->r.lost, 1);
    assert_int_equal(f->r.lost_error, 0);
    evbuffer_free(b);
    free(got);
}

/* After weft_ignore_sigpipe() SIGPIPE is ignored and sendfile goes unmasked: a head and
 * a file to a reset peer still end in -EPIPE (head and fd taken), with no signal.
 * Process-wide, so the last test. */
static void
test_ignore_sigpipe_then_reset_peer(void **state)
{
    struct fix *f = *state;
    struct evbuffer *b = evbuffer_new();
    struct sigaction sa;
    size_t len = sizeof(int);
    int fd = -1, file;
    char c;

    assert_non_null(b);
    assert_int_equal(weft_ignore_sigpipe(), 0);
    assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
    assert_true(sa.sa_handler == SIG_IGN);
    assert_int_equal(weft_transport_get_extra_info(f->r.tr, "socket", &fd, &len), 0);
    setsockopt(f->peer, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger));
    close(f->peer);
    f->peer = -1;
    assert_int_equal(poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 2000), 1);
    assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), -1);
    assert_int_equal(errno, ECONNRESET);
    file = dup(f->file);
    assert_true(file >= 0);
    evbuffer_add(b, "head\n", 5);
    assert_int_equal(weft_transport_sendfile_buffer(f->r.tr, b, file, 0, FILE_SIZE), 0);
    assert_int_equal(evbuffer_get_length(b), 0);
    assert_int_equal(fcntl(file, F_GETFD), -1);     /* taken and closed */
    harness_run_until(f->loop, &f->r.lost_flag, 2000);
    assert_int_equal(f->r.lost, 1);
    assert_int_equal(f->r.lost_error, -EPIPE);
    evbuffer_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sendfile_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_chains_between_memory_chains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_file_ends_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_to_a_reset_peer_is_an_error_not_a_signal,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_with_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignore_sigpipe_then_reset_peer, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
