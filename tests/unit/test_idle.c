/* SPDX-License-Identifier: MIT */
/* test_idle.c: weft_transport_set_idle_timeout and weft_server_options.idle_timeout_ms. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include "harness.h"

static struct weft_server *
idle_server(struct harness_echo_stats *st, uint64_t idle_ms, uint16_t *port)
{
    struct weft_server_options so = WEFT_SERVER_OPTIONS_INIT;
    struct weft_server *srv = NULL;

    so.idle_timeout_ms = idle_ms;
    assert_int_equal(weft_create_server(harness_loop, harness_echo_factory, st, "127.0.0.1", 0,
                                        &so, &srv), 0);
    *port = harness_server_port(srv, 0, NULL);
    return srv;
}

static void
test_idle_client_is_closed_after_the_timeout(void **state)
{
    struct harness_echo_stats st = { .expect_lost = 1 };
    uint16_t port;
    struct weft_server *srv = idle_server(&st, 300, &port);
    int fd = harness_client_connect(AF_INET, port);
    uint64_t t0, dt;

    (void)state;
    harness_client_echo(harness_loop, fd, "ping");
    t0 = weft_loop_time(harness_loop);
    assert_int_equal(harness_client_wait_end(harness_loop, fd), 0);     /* a clean close */
    dt = weft_loop_time(harness_loop) - t0;
    assert_true(dt >= 280);     /* never before the timeout */
    assert_true(dt < 2000);     /* 1.25 x 300 ms in theory; a loaded machine is slower */
    assert_int_equal(harness_run_until(harness_loop, &st.all_lost_flag, 2000), 0);
    assert_int_equal(st.lost_nonzero, 0);
    close(fd);
    weft_server_free(srv);
}

static void
test_active_client_stays_open(void **state)
{
    struct harness_echo_stats st = { .expect_lost = 1 };
    uint16_t port;
    struct weft_server *srv = idle_server(&st, 300, &port);
    int fd = harness_client_connect(AF_INET, port);
    uint64_t t0 = weft_loop_time(harness_loop);
    char buf[16];

    (void)state;
    /* A byte every 100 ms for a second: more than three timeouts, never idle for one. */
    while (weft_loop_time(harness_loop) - t0 < 1000) {
        harness_client_echo(harness_loop, fd, "x");
        harness_run_for(harness_loop, 100);
    }
    assert_int_equal(st.lost, 0);
    assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    /* Then it goes quiet, and is closed. */
    assert_int_equal(harness_client_wait_end(harness_loop, fd), 0);
    assert_int_equal(harness_run_until(harness_loop, &st.all_lost_flag, 2000), 0);
    close(fd);
    weft_server_free(srv);
}

static void
test_no_timeout_by_default_and_set_on_a_transport(void **state)
{
    struct harness_echo_stats st = { .expect_lost = 1 };
    struct weft_transport *tr = NULL;
    char buf[16];
    int sv[2];

    (void)state;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(weft_connect_accepted_socket(harness_loop, harness_echo_factory, &st, sv[0],
                                                  &tr), 0);
    assert_int_equal(weft_transport_get_idle_timeout(tr), 0);
    harness_run_for(harness_loop, 300);
    assert_int_equal(st.lost, 0);
    assert_int_equal(weft_transport_set_idle_timeout(tr, (uint64_t)UINT32_MAX + 1), -EINVAL);
    assert_int_equal(weft_transport_set_idle_timeout(tr, 10000), 0);
    assert_int_equal(weft_transport_set_idle_timeout(tr, 200), 0);     /* replaces it */
    assert_int_equal(weft_transport_get_idle_timeout(tr), 200);
    assert_int_equal(harness_run_until(harness_loop, &st.all_lost_flag, 3000), 0);
    assert_int_equal(recv(sv[1], buf, sizeof(buf), 0), 0);
    close(sv[1]);
}

/* A peer that stops reading while the server has a lot queued: aborted, not left hanging. */
static void
test_stuck_writer_is_aborted(void **state)
{
    struct harness_echo_stats st = { .expect_lost = 1 };
    uint16_t port;
    struct weft_server *srv = idle_server(&st, 300, &port);
    int fd = harness_client_connect(AF_INET, port), small = 4096, rc;
    static char big[1 << 20];

    (void)state;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    memset(big, 'z', sizeof(big));
    /* Send until neither side's buffers take more: the echo queues what it cannot send. */
    for (int i = 0; i < 200; i++) {
        ssize_t n = send(fd, big, sizeof(big), MSG_DONTWAIT | MSG_NOSIGNAL);

        harness_run_for(harness_loop, 5);
        if (n < 0 && errno == EAGAIN)
            break;
    }
    assert_int_equal(harness_run_until(harness_loop, &st.all_lost_flag, 5000), 0);
    /* The client sees a reset (or an EOF after the bytes in flight). */
    do
        rc = (int)recv(fd, big, sizeof(big), MSG_DONTWAIT);
    while (rc > 0);
    assert_true(rc == 0 || errno == ECONNRESET);
    close(fd);
    weft_server_free(srv);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_client_is_closed_after_the_timeout,
                                        harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_active_client_stays_open, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_no_timeout_by_default_and_set_on_a_transport,
                                        harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_stuck_writer_is_aborted, harness_setup,
                                        harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
