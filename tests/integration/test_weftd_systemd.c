/* SPDX-License-Identifier: MIT */
/* test_weftd_systemd.c: sd_notify as systemd sees it (a real datagram socket), privilege drop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "weftd.h"

static uint64_t
now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * The harness gives weftd a real datagram socket as NOTIFY_SOCKET (at a path in its dir,
 * or abstract when the name starts with '@'), as systemd does, and keeps what comes.
 */
static void
notify_cycle(const char *abstract)
{
    struct weftd_opts o = { .notify = abstract };
    struct weftd w;
    const char *msg, *p;
    unsigned long long usec;
    uint64_t before;
    int i, c1, c2;

    assert_int_equal(weftd_start_with(&w, "[weftd]\nworkers = 2\n[echo]\nprotocol = echo\n"
                                          "listen = 127.0.0.1:%PORT%\n", &o), 0);
    msg = weftd_notify_text(&w, w.seen - 1);
    print_message("  notify: %s\n", msg);
    assert_non_null(strstr(msg, "READY=1"));
    assert_non_null(strstr(msg, "MAINPID="));
    assert_int_equal(strtol(strstr(msg, "MAINPID=") + 8, NULL, 10), w.pid);
    /* Nothing before READY=1 says how many workers there are: they were still starting. */
    for (i = 0; i < w.seen - 1; i++)
        assert_null(strstr(weftd_notify_text(&w, i), "STATUS="));
    assert_true(weftd_wait_status(&w, "0 connections, 2 workers", 5000) >= 0);
    /* STATUS follows the connections (reported every second). */
    c1 = weftd_connect(w.ports[0]);
    c2 = weftd_connect(w.ports[0]);
    assert_true(c1 >= 0 && c2 >= 0);
    assert_true(weftd_wait_status(&w, "2 connections", 5000) >= 0);
    /* A reload: RELOADING=1 with the monotonic time of the signal, then READY=1. */
    weftd_notify_skip(&w);
    before = now_us();
    kill(w.pid, SIGHUP);
    i = weftd_wait_notify(&w, "RELOADING=1", 10000);
    assert_true(i >= 0);
    p = strstr(weftd_notify_text(&w, i), "MONOTONIC_USEC=");
    assert_non_null(p);
    usec = strtoull(p + strlen("MONOTONIC_USEC="), NULL, 10);
    assert_true(usec >= before && usec < now_us());
    i = weftd_wait_notify(&w, "READY=1", 10000);
    assert_true(i >= 0);
    assert_non_null(strstr(weftd_notify_text(&w, i), "STATUS=reloaded (config 2)"));
    close(c1);
    close(c2);
    kill(w.pid, SIGTERM);
    assert_true(weftd_wait_notify(&w, "STOPPING=1", 10000) >= 0);
    assert_int_equal(weftd_wait(&w, 15000), 0);
    weftd_cleanup(&w);
}

static void
test_notify_socket_path_sees_ready_status_reloading_stopping(void **state)
{
    (void)state;
    notify_cycle(NULL);
}

static void
test_notify_socket_abstract(void **state)
{
    char name[64];

    (void)state;
    snprintf(name, sizeof(name), "@weftd-notify.%ld", (long)getpid());
    notify_cycle(name);
}

static void
test_broken_reload_says_ready_again(void **state)
{
    struct weftd w;
    const char *msg;
    FILE *f;

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 1\n[echo]\nprotocol = echo\n"
                       "listen = 127.0.0.1:%PORT%\n");
    f = fopen(w.conf, "w");
    assert_non_null(f);
    fputs("[echo]\nprotocol = nosuchprotocol\nlisten = nowhere\n", f);
    fclose(f);
    weftd_reload_expect(&w, WEFTD_RELOAD_FAILED);
    msg = weftd_notify_text(&w, w.seen - 1);
    print_message("  notify: %s\n", msg);
    assert_non_null(strstr(msg, "config 1 goes on"));
    assert_true(weftd_stderr_contains(&w, "the running config goes on"));
    /* ... and it does. */
    {
        int fd = weftd_connect(w.ports[0]);
        char b[2];

        assert_true(fd >= 0);
        itest_set_timeouts(fd, 5000);
        itest_write_full(fd, "ok", 2);
        assert_int_equal(itest_read_full(fd, b, 2), 2);
        close(fd);
    }
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    weftd_cleanup(&w);
}

/* The Uid: and Gid: lines of /proc/pid/status (real, effective, saved, fs). */
static void
ids_of(pid_t pid, char *uid, char *gid, size_t len)
{
    char path[64], line[256];
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    assert_non_null(f);
    uid[0] = gid[0] = '\0';
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "Uid:", 4) == 0)
            snprintf(uid, len, "%s", line);
        else if (strncmp(line, "Gid:", 4) == 0)
            snprintf(gid, len, "%s", line);
    }
    fclose(f);
}

static void
test_workers_drop_privileges_when_root(void **state)
{
    struct weftd w;
    char uid[256], gid[256];
    pid_t worker, kids[64];

    (void)state;
    if (geteuid() != 0) {
        print_message("  skipped: needs root (weftd drops privileges only when root)\n");
        skip();
    }
    assert_int_equal(weftd_start(&w, "[weftd]\nworkers = 1\nuser = nobody\ngroup = nogroup\n"
                                     "[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT%\n",
                                 NULL), 0);
    /* READY=1 came after the worker said it serves, which it does once it has switched. */
    assert_int_equal(itest_children_of(w.pid, kids, 64), 1);
    worker = kids[0];
    ids_of(worker, uid, gid, sizeof(uid));
    print_message("  worker %s  %s", uid, gid);
    assert_string_equal(uid, "Uid:\t65534\t65534\t65534\t65534\n");
    assert_string_equal(gid, "Gid:\t65534\t65534\t65534\t65534\n");
    /* The master stays root, to bind new ports on reload. */
    ids_of(w.pid, uid, gid, sizeof(uid));
    assert_string_equal(uid, "Uid:\t0\t0\t0\t0\n");
    {
        int fd = weftd_connect(w.ports[0]);
        char b[2];

        assert_true(fd >= 0);
        assert_int_equal(write(fd, "ok", 2), 2);
        assert_int_equal(read(fd, b, 2), 2);
        close(fd);
    }
    if (weftd_stop(&w, SIGTERM) != 0)
        weftd_show_stderr(&w);
    assert_false(weftd_stderr_contains(&w, "cannot switch"));
    weftd_cleanup(&w);
}

static void
test_unknown_user_is_a_config_error(void **state)
{
    struct weftd w;
    const char *args[] = { "-t", "-c", "%CONF%", NULL };

    (void)state;
    assert_int_equal(weftd_run(&w, "[weftd]\nuser = no-such-user-here\n[echo]\nprotocol = echo\n"
                                   "listen = 127.0.0.1:%PORT%\n", args), 1);
    assert_true(weftd_stderr_contains(&w, "weftd.conf:2: [weftd] user: no such user "
                                          "\"no-such-user-here\""));
    weftd_cleanup(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_notify_socket_path_sees_ready_status_reloading_stopping, itest_teardown),
        cmocka_unit_test_teardown(test_notify_socket_abstract, itest_teardown),
        cmocka_unit_test_teardown(test_broken_reload_says_ready_again, itest_teardown),
        cmocka_unit_test_teardown(test_workers_drop_privileges_when_root, itest_teardown),
        cmocka_unit_test_teardown(test_unknown_user_is_a_config_error, itest_teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
