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

/* A datagram socket like systemd's: at path, or abstract when path starts with '@'. */
static int
notify_socket(const char *path)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    assert_true(len < sizeof(sun.sun_path));
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';
    else
        unlink(path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun,
                          (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)), 0);
    assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
    return fd;
}

/* The next datagram with needle in it, within ms; false if none. Others are skipped. */
static bool
expect_msg(int fd, const char *needle, char *out, size_t outlen, int ms)
{
    uint64_t end = now_us() + (uint64_t)ms * 1000;

    while (now_us() < end) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        char buf[600];
        ssize_t n;

        if (poll(&pfd, 1, (int)((end - now_us()) / 1000) + 1) <= 0)
            continue;
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        print_message("  notify: %s\n", buf);
        if (strstr(buf, needle) != NULL) {
            if (out != NULL)
                snprintf(out, outlen, "%s", buf);
            return true;
        }
    }
    return false;
}

static void
notify_cycle(const char *path)
{
    struct weftd w;
    char msg[600], *p;
    unsigned long long usec;
    uint64_t before;
    int fd = notify_socket(path), c1, c2;

    assert_int_equal(weftd_start(&w, "[weftd]\nworkers = 2\n[echo]\nprotocol = echo\n"
                                     "listen = 127.0.0.1:%PORT%\n", NULL), 0);
    unsetenv("NOTIFY_SOCKET");
    assert_true(expect_msg(fd, "READY=1", msg, sizeof(msg), 10000));
    assert_non_null(strstr(msg, "MAINPID="));
    assert_true(expect_msg(fd, "STATUS=0 connections, 2 workers", NULL, 0, 5000));
    /* STATUS follows the connections (reported every second). */
    c1 = weftd_connect(w.ports[0]);
    c2 = weftd_connect(w.ports[0]);
    assert_true(c1 >= 0 && c2 >= 0);
    assert_true(expect_msg(fd, "STATUS=2 connections", NULL, 0, 5000));
    /* A reload: RELOADING=1 with the monotonic time of the signal, then READY=1. */
    before = now_us();
    kill(w.pid, SIGHUP);
    assert_true(expect_msg(fd, "RELOADING=1", msg, sizeof(msg), 10000));
    p = strstr(msg, "MONOTONIC_USEC=");
    assert_non_null(p);
    usec = strtoull(p + strlen("MONOTONIC_USEC="), NULL, 10);
    assert_true(usec >= before && usec < now_us());
    assert_true(expect_msg(fd, "READY=1", NULL, 0, 10000));
    close(c1);
    close(c2);
    kill(w.pid, SIGTERM);
    assert_true(expect_msg(fd, "STOPPING=1", NULL, 0, 10000));
    assert_int_equal(weftd_wait(&w, 15000), 0);
    close(fd);
    if (path[0] != '@')
        unlink(path);
    weftd_cleanup(&w);
}

static void
test_notify_socket_path_sees_ready_status_reloading_stopping(void **state)
{
    char path[64];

    (void)state;
    snprintf(path, sizeof(path), "/tmp/weftd-notify.%ld", (long)getpid());
    notify_cycle(path);
}

static void
test_notify_socket_abstract(void **state)
{
    char path[64];

    (void)state;
    snprintf(path, sizeof(path), "@weftd-notify.%ld", (long)getpid());
    notify_cycle(path);
}

static void
test_broken_reload_says_ready_again(void **state)
{
    char path[64];
    struct weftd w;
    FILE *f;
    int fd;

    (void)state;
    snprintf(path, sizeof(path), "@weftd-notify-b.%ld", (long)getpid());
    fd = notify_socket(path);
    assert_int_equal(weftd_start(&w, "[weftd]\nworkers = 1\n[echo]\nprotocol = echo\n"
                                     "listen = 127.0.0.1:%PORT%\n", NULL), 0);
    unsetenv("NOTIFY_SOCKET");
    assert_true(expect_msg(fd, "READY=1", NULL, 0, 10000));
    f = fopen(w.conf, "w");
    assert_non_null(f);
    fputs("[echo]\nprotocol = nosuchprotocol\nlisten = nowhere\n", f);
    fclose(f);
    kill(w.pid, SIGHUP);
    assert_true(expect_msg(fd, "RELOADING=1", NULL, 0, 10000));
    assert_true(expect_msg(fd, "READY=1", NULL, 0, 10000));
    assert_true(weftd_stderr_contains(&w, "the running config goes on"));
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    close(fd);
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
    assert_int_equal(itest_wait_children(w.pid, 1, kids, 10000), 1);
    worker = kids[0];
    usleep(200000);     /* let it get past fork to setuid */
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
        cmocka_unit_test(test_notify_socket_path_sees_ready_status_reloading_stopping),
        cmocka_unit_test(test_notify_socket_abstract),
        cmocka_unit_test(test_broken_reload_says_ready_again),
        cmocka_unit_test(test_workers_drop_privileges_when_root),
        cmocka_unit_test(test_unknown_user_is_a_config_error),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
