/* SPDX-License-Identifier: MIT */
/* test_echo.c: the real weftd serving echo: bulk, 200 clients, resets, flow control, signals. */
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
#include <time.h>
#include <unistd.h>

#include "weftd.h"

#define ECHO_CONF                                                                  \
    "[weftd]\n"                                                                    \
    "log_level = info\n"                                                           \
    "shutdown_timeout = 5s\n"                                                      \
    "\n"                                                                           \
    "[echo]\n"                                                                     \
    "protocol = echo\n"                                                            \
    "listen = 127.0.0.1:%PORT%\n"

static struct weftd shared;     /* one weftd for the data tests, stopped by the last test */

static void
stop_expect_clean(struct weftd *w, int sig, const char *signame)
{
    char want[64];
    int status = weftd_stop(w, sig);

    snprintf(want, sizeof(want), "stopping (%s)", signame);
    if (status != 0 || !weftd_stderr_contains(w, want) || !weftd_stderr_contains(w, "stopped"))
        weftd_show_stderr(w);
    assert_int_equal(status, 0);
    assert_true(weftd_stderr_contains(w, want));
    assert_true(weftd_stderr_contains(w, "notice: stopped"));
}

static int
connect_shared(void)
{
    int fd = weftd_connect(shared.ports[0]);

    assert_true(fd >= 0);
    itest_set_timeouts(fd, 20000);
    return fd;
}

static int
group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (weftd_start(&shared, ECHO_CONF, NULL) != 0) {
        weftd_show_stderr(&shared);
        return -1;
    }
    weftd_share(&shared);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    weftd_cleanup(&shared);
    return 0;
}

static void
test_hello_round_trip(void **state)
{
    char buf[16] = "";
    int fd = connect_shared();

    (void)state;
    itest_write_full(fd, "hello\n", 6);
    assert_int_equal(itest_read_full(fd, buf, 6), 6);
    assert_memory_equal(buf, "hello\n", 6);
    itest_write_full(fd, "again", 5);
    assert_int_equal(itest_read_full(fd, buf, 5), 5);
    assert_memory_equal(buf, "again", 5);
    close(fd);
}

/* xorshift: reproducible "random" bytes, fast enough for megabytes. */
static void
fill_random(unsigned char *p, size_t len, uint64_t seed)
{
    uint64_t x = seed | 1;

    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
}

static void
test_8mib_random_both_directions_at_once(void **state)
{
    const size_t total = 8u << 20;
    unsigned char *out = malloc(total), *in = malloc(64 * 1024);
    size_t sent = 0, got = 0;
    bool eof = false, shut = false;
    uint64_t deadline = itest_now_ms() + 120000;
    int fd = connect_shared();

    (void)state;
    assert_non_null(out);
    assert_non_null(in);
    fill_random(out, total, (uint64_t)time(NULL));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* Write and read in one poll loop: the echo comes back while we still send. */
    while (!eof && itest_now_ms() < deadline) {
        struct pollfd pfd = { fd, POLLIN | (sent < total ? POLLOUT : 0), 0 };

        assert_true(poll(&pfd, 1, 1000) >= 0);
        if ((pfd.revents & POLLOUT) && sent < total) {
            ssize_t n = write(fd, out + sent, total - sent > 256 * 1024 ? 256 * 1024
                                                                        : total - sent);

            if (n > 0)
                sent += (size_t)n;
            else
                assert_true(errno == EAGAIN || errno == EINTR);
        }
        if (sent == total && !shut) {
            /* Half-close: echo sends the rest back, then closes. */
            assert_int_equal(shutdown(fd, SHUT_WR), 0);
            shut = true;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(fd, in, 64 * 1024);

            if (n == 0) {
                eof = true;
            } else if (n > 0) {
                assert_true(got + (size_t)n <= total);
                if (memcmp(in, out + got, (size_t)n) != 0)
                    fail_msg("echoed bytes differ in [%zu, %zu)", got, got + (size_t)n);
                got += (size_t)n;
            } else {
                assert_true(errno == EAGAIN || errno == EINTR);
            }
        }
    }
    assert_true(eof);
    assert_int_equal(sent, total);
    assert_int_equal(got, total);
    close(fd);
    free(out);
    free(in);
}

static void
test_200_concurrent_clients(void **state)
{
    enum { CLIENTS = 200, ROUNDS = 5 };
    int fds[CLIENTS];

    (void)state;
    for (int i = 0; i < CLIENTS; i++)
        fds[i] = connect_shared();
    for (int r = 0; r < ROUNDS; r++) {
        char msg[64], buf[64];

        /* Everyone sends, then everyone reads: 200 connections busy at once. */
        for (int i = 0; i < CLIENTS; i++) {
            int n = snprintf(msg, sizeof(msg), "client %d round %d\n", i, r);

            itest_write_full(fds[i], msg, (size_t)n);
        }
        for (int i = 0; i < CLIENTS; i++) {
            int n = snprintf(msg, sizeof(msg), "client %d round %d\n", i, r);

            assert_int_equal(itest_read_full(fds[i], buf, (size_t)n), (size_t)n);
            assert_memory_equal(buf, msg, (size_t)n);
        }
    }
    for (int i = 0; i < CLIENTS; i++)
        close(fds[i]);
}

static void
reset(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };

    /* SO_LINGER 0: close() sends RST instead of FIN. */
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd);
}

static void
test_client_reset_mid_stream_leaves_others_served(void **state)
{
    static unsigned char junk[1 << 20];
    char buf[8];
    int other = connect_shared(), bad = connect_shared(), fresh;

    (void)state;
    /* The bad client sends a megabyte, reads none of the echo, and resets. */
    itest_set_timeouts(bad, 500);
    for (size_t put = 0; put < sizeof(junk);) {
        ssize_t n = write(bad, junk + put, sizeof(junk) - put);

        if (n <= 0)
            break;          /* the echo backs up: flow control stopped us; fine */
        put += (size_t)n;
    }
    reset(bad);
    /* A second bad client resets right after a few bytes. */
    bad = connect_shared();
    itest_write_full(bad, "x", 1);
    reset(bad);

    itest_write_full(other, "still", 5);
    assert_int_equal(itest_read_full(other, buf, 5), 5);
    assert_memory_equal(buf, "still", 5);
    fresh = connect_shared();
    itest_write_full(fresh, "new", 3);
    assert_int_equal(itest_read_full(fresh, buf, 3), 3);
    assert_memory_equal(buf, "new", 3);
    close(fresh);
    close(other);
    assert_int_equal(kill(shared.pid, 0), 0);
}

static void
test_client_that_never_reads_is_paused(void **state)
{
    size_t sent = 0;
    uint64_t deadline = itest_now_ms() + 3000;
    char buf[4096];
    int fd = connect_shared();

    (void)state;
    memset(buf, 'z', sizeof(buf));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /*
     * Without flow control weftd would read (and buffer) all we send; with it,
     * it stops reading once its output backs up, and our sends block after
     * the kernel's socket buffers fill: a few MiB at most.
     */
    while (itest_now_ms() < deadline && sent < (256u << 20)) {
        ssize_t n = write(fd, buf, sizeof(buf));

        if (n > 0) {
            sent += (size_t)n;
        } else {
            struct pollfd pfd = { fd, POLLOUT, 0 };

            assert_true(errno == EAGAIN || errno == EINTR);
            poll(&pfd, 1, 50);
        }
    }
    print_message("  accepted %zu KiB before blocking\n", sent / 1024);
    assert_true(sent < (64u << 20));
    reset(fd);
}

static void
test_sigint_stops_accepting_and_waits_for_clients(void **state)
{
    struct weftd w;
    char buf[4];
    int fd;

    (void)state;
    weftd_start_ok(&w, ECHO_CONF);
    fd = weftd_connect(w.ports[0]);
    assert_true(fd >= 0);
    itest_set_timeouts(fd, 20000);
    itest_write_full(fd, "hi", 2);
    assert_int_equal(itest_read_full(fd, buf, 2), 2);
    kill(w.pid, SIGINT);
    /* The client is still served after the signal; weftd waits for it to leave. */
    itest_write_full(fd, "yo", 2);
    assert_int_equal(itest_read_full(fd, buf, 2), 2);
    assert_memory_equal(buf, "yo", 2);
    close(fd);
    assert_int_equal(weftd_wait(&w, 15000), 0);
    assert_true(weftd_stderr_contains(&w, "stopping (SIGINT)"));
    assert_true(weftd_stderr_contains(&w, "notice: stopped"));
    assert_false(weftd_stderr_contains(&w, "aborting"));
    /* Nothing listens any more. */
    fd = weftd_connect(w.ports[0]);
    assert_int_equal(fd, -ECONNREFUSED);
    weftd_cleanup(&w);
}

static void
test_shutdown_timeout_aborts_a_stuck_client(void **state)
{
    struct weftd w;
    char buf[4096];
    uint64_t t0;
    int fd;

    (void)state;
    weftd_start_ok(&w, "[weftd]\nshutdown_timeout = 300ms\n"
              "[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT%\n");
    fd = weftd_connect(w.ports[0]);
    assert_true(fd >= 0);
    memset(buf, 'q', sizeof(buf));
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    /* Fill every buffer: its echo can never be flushed, so close cannot finish. */
    t0 = itest_now_ms();
    while (itest_now_ms() - t0 < 1000) {
        if (write(fd, buf, sizeof(buf)) < 0) {
            struct pollfd pfd = { fd, POLLOUT, 0 };

            if (poll(&pfd, 1, 200) == 0)
                break;
        }
    }
    t0 = itest_now_ms();
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    print_message("  stopped in %llu ms\n", (unsigned long long)(itest_now_ms() - t0));
    if (!weftd_stderr_contains(&w, "shutdown_timeout reached: aborting 1 connection"))
        weftd_show_stderr(&w);
    assert_true(weftd_stderr_contains(&w, "stopping (SIGTERM)"));
    assert_true(weftd_stderr_contains(&w, "shutdown_timeout reached: aborting 1 connection"));
    close(fd);
    weftd_cleanup(&w);
}

static void
test_config_error_exits_1_naming_the_line(void **state)
{
    struct weftd w;
    int rc;

    (void)state;
    rc = weftd_start(&w, "[weftd]\nlog_level = info\n[echo]\nprotocol = echo\n"
                         "listen = 127.0.0.1:0\ncolor = red\n", NULL);
    assert_int_equal(rc, -ESRCH);
    assert_int_equal(w.status, 1);
    if (!weftd_stderr_contains(&w, "weftd.conf:5: [echo] listen: bad port \"0\""))
        weftd_show_stderr(&w);
    assert_true(weftd_stderr_contains(&w, "weftd.conf:5: [echo] listen: bad port \"0\""));
    assert_true(weftd_stderr_contains(&w, "weftd.conf:6: [echo] color: unknown key for "
                                          "protocol echo"));
    assert_true(weftd_stderr_contains(&w, "2 errors, not starting"));
    weftd_cleanup(&w);
}

static void
test_sigterm_stops_the_shared_daemon(void **state)
{
    (void)state;
    stop_expect_clean(&shared, SIGTERM, "SIGTERM");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_hello_round_trip, itest_teardown),
        cmocka_unit_test_teardown(test_8mib_random_both_directions_at_once, itest_teardown),
        cmocka_unit_test_teardown(test_200_concurrent_clients, itest_teardown),
        cmocka_unit_test_teardown(test_client_reset_mid_stream_leaves_others_served, itest_teardown),
        cmocka_unit_test_teardown(test_client_that_never_reads_is_paused, itest_teardown),
        cmocka_unit_test_teardown(test_sigint_stops_accepting_and_waits_for_clients, itest_teardown),
        cmocka_unit_test_teardown(test_shutdown_timeout_aborts_a_stuck_client, itest_teardown),
        cmocka_unit_test_teardown(test_config_error_exits_1_naming_the_line, itest_teardown),
        cmocka_unit_test_teardown(test_sigterm_stops_the_shared_daemon, itest_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
