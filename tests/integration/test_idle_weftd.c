/* SPDX-License-Identifier: MIT */
/* test_idle_weftd.c: weftd's per-service idle_timeout: quiet clients closed, active ones kept. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weftd.h"

#define IDLE_CONF                                                                  \
    "[weftd]\n"                                                                    \
    "workers = 1\n"                                                                \
    "log_level = debug\n"                                                          \
    "\n"                                                                           \
    "[echo]\n"                                                                     \
    "protocol = echo\n"                                                            \
    "listen = 127.0.0.1:%PORT0%\n"                                                 \
    "idle_timeout = 600ms\n"                                                       \
    "\n"                                                                           \
    "[echo-forever]\n"                                                             \
    "protocol = echo\n"                                                            \
    "listen = 127.0.0.1:%PORT1%\n"

/* Milliseconds until the server closes fd (EOF), at most limit_ms; -1 if it did not. */
static int
ms_until_eof(int fd, int limit_ms)
{
    uint64_t t0 = itest_now_ms();
    char buf[64];

    itest_set_timeouts(fd, limit_ms);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);

        if (n == 0)
            return (int)(itest_now_ms() - t0);
        if (n < 0)
            return -1;
    }
}

static void
echo_once(int fd, const char *msg)
{
    char buf[64] = "";

    itest_write_full(fd, msg, strlen(msg));
    assert_int_equal(itest_read_full(fd, buf, strlen(msg)), strlen(msg));
    assert_memory_equal(buf, msg, strlen(msg));
}

static void
test_idle_timeout_closes_quiet_clients_only(void **state)
{
    struct weftd w;
    int quiet, busy, forever, dt;
    uint64_t t0;

    (void)state;
    weftd_start_ok(&w, IDLE_CONF);
    quiet = weftd_connect(w.ports[0]);
    busy = weftd_connect(w.ports[0]);
    forever = weftd_connect(w.ports[1]);
    assert_true(quiet >= 0 && busy >= 0 && forever >= 0);
    itest_set_timeouts(busy, 5000);
    itest_set_timeouts(forever, 5000);
    echo_once(quiet, "hi\n");
    echo_once(forever, "hi\n");

    /* busy talks every 200 ms for 2 s: three timeouts long, never quiet for one. */
    t0 = itest_now_ms();
    while (itest_now_ms() - t0 < 2000) {
        echo_once(busy, "tick\n");
        itest_sleep_ms(200);
    }
    echo_once(busy, "still here\n");
    /* quiet was closed meanwhile: its EOF is waiting. */
    assert_true(ms_until_eof(quiet, 100) >= 0);

    /* Now busy goes quiet too: closed after about 600 ms (at most 750 in theory). */
    dt = ms_until_eof(busy, 5000);
    if (dt < 0 || dt < 500)
        weftd_show_stderr(&w);
    assert_true(dt >= 500);
    assert_true(dt < 4000);
    assert_true(weftd_wait_log(&w, "idle for 600 ms: closing", 2000));

    /* A service without idle_timeout keeps its quiet client. */
    echo_once(forever, "after 2.6 s\n");
    close(quiet);
    close(busy);
    close(forever);
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    weftd_cleanup(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_idle_timeout_closes_quiet_clients_only, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
