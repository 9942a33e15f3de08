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

#include "harness.h"
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

/* The value of a "Cap...:" line of /proc/pid/status (e.g. "CapEff"), or "" if none. */
static void
cap_of(pid_t pid, const char *field, char *out, size_t len)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    assert_non_null(f);
    out[0] = '\0';
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            snprintf(out, len, "%s", line + flen + 2);
            out[strcspn(out, "\n")] = '\0';
        }
    fclose(f);
}

static void
assert_no_caps(pid_t pid, bool bounding_too)
{
    static const char *const fields[] = { "CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd" };
    char v[64];

    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]) - !bounding_too; i++) {
        cap_of(pid, fields[i], v, sizeof(v));
        print_message("  worker %ld %s: %s\n", (long)pid, fields[i], v);
        assert_string_equal(v, "0000000000000000");
    }
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
    /* ... and every capability, the bounding set too (root may drop it). */
    assert_no_caps(worker, true);
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

/*
 * weftd as the shipped unit runs it: User= not root, with the ambient capabilities
 * CAP_NET_BIND_SERVICE and CAP_DAC_READ_SEARCH (setpriv stands in for systemd). The
 * master reads a TLS key only root may read (0600 in a 0700 directory, as certbot
 * makes them), at start and at a reload; its workers have no capability at all.
 */
static void
test_master_reads_root_only_key_workers_have_no_caps(void **state)
{
    const char *caps[] = { "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                           "--bounding-set=-all,+net_bind_service,+dac_read_search",
                           "--inh-caps=-all,+net_bind_service,+dac_read_search",
                           "--ambient-caps=+net_bind_service,+dac_read_search",
                           "--no-new-privs", NULL };
    const char *nocaps[] = { "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                             "--no-new-privs", NULL };
    char dir[] = "/tmp/weftd-caps.XXXXXX", conf[128], cmd[512], notify[64], v[64];
    const char *args[] = { "-c", conf, NULL };
    const char *src = getenv("WEFT_SOURCE_DIR");
    struct weftd_opts o = { .args = args, .notify = notify };
    struct weftd w;
    pid_t kids[64];
    FILE *f;

    (void)state;
    if (geteuid() != 0 || src == NULL || system("command -v setpriv openssl >/dev/null") != 0) {
        print_message("  skipped: needs root, $WEFT_SOURCE_DIR, setpriv and openssl\n");
        skip();
    }
    if (getenv("WEFTD_WRAPPER") != NULL && *getenv("WEFTD_WRAPPER") != '\0') {
        print_message("  skipped under $WEFTD_WRAPPER (its files are root's)\n");
        skip();
    }
    assert_non_null(mkdtemp(dir));
    /* The config where nobody may read it; the keys where only root may. */
    snprintf(cmd, sizeof(cmd), "chmod 0755 %s && bash %s/tests/integration/tls_certs.sh "
             "%s/keys >/dev/null && chmod 0700 %s/keys && chmod 0600 %s/keys/a.key",
             dir, src, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(conf, sizeof(conf), "%s/weftd.conf", dir);
    snprintf(notify, sizeof(notify), "@weftd-caps.%ld", (long)getpid());
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[weftd]\nworkers = 1\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%u\n"
               "tls_certificate = %s/keys/a.pem\ntls_key = %s/keys/a.key\n",
            (unsigned)harness_port(), dir, dir);
    fclose(f);

    /* Without CAP_DAC_READ_SEARCH: the key cannot be read, and the error says so. */
    o.prefix = nocaps;
    assert_int_equal(weftd_start_with(&w, "", &o), -ESRCH);
    assert_int_equal(w.status, 1);
    assert_true(weftd_stderr_contains(&w, "a.key"));
    assert_true(weftd_stderr_contains(&w, "Permission denied"));
    weftd_cleanup(&w);

    o.prefix = caps;
    if (weftd_start_with(&w, "", &o) != 0)
        weftd_show_stderr(&w);
    assert_true(w.pid > 0);
    assert_int_equal(itest_children_of(w.pid, kids, 64), 1);
    cap_of(w.pid, "CapEff", v, sizeof(v));
    print_message("  master CapEff: %s\n", v);
    assert_string_equal(v, "0000000000000404");       /* dac_read_search, net_bind_service */
    assert_no_caps(kids[0], false);     /* the bounding set is not nobody's to change */
    /* A reload reads the key again, as the same master. */
    weftd_reload_expect(&w, 0);
    assert_int_equal(itest_wait_children(w.pid, 1, kids, 10000), 1);
    assert_no_caps(kids[0], false);
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    assert_false(weftd_stderr_contains(&w, "cannot drop capabilities"));
    weftd_cleanup(&w);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* sd_notify(3): EXTEND_TIMEOUT_USEC=N in datagram i, or 0. */
static unsigned long long
extend_usec(struct weftd *w, int i)
{
    const char *p = strstr(weftd_notify_text(w, i), "EXTEND_TIMEOUT_USEC=");

    return p != NULL ? strtoull(p + strlen("EXTEND_TIMEOUT_USEC="), NULL, 10) : 0;
}

/*
 * A shutdown_timeout longer than the unit's TimeoutStopSec=30s: with STOPPING=1 comes
 * EXTEND_TIMEOUT_USEC= covering it, so systemd does not kill the drain. A reload extends
 * its own timeout (TimeoutStartSec=) the same way.
 */
static void
test_stop_extends_systemds_timeout(void **state)
{
    struct weftd w;
    int i;

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 1\nshutdown_timeout = 60s\n[echo]\nprotocol = echo\n"
                       "listen = 127.0.0.1:%PORT%\n");
    weftd_notify_skip(&w);
    kill(w.pid, SIGHUP);
    i = weftd_wait_notify(&w, "RELOADING=1", 10000);
    assert_true(i >= 0);
    print_message("  notify: %s\n", weftd_notify_text(&w, i));
    assert_true(extend_usec(&w, i) >= 60000000ull);
    assert_true(weftd_wait_notify(&w, "READY=1", 60000) >= 0);
    kill(w.pid, SIGTERM);
    i = weftd_wait_notify(&w, "STOPPING=1", 10000);
    assert_true(i >= 0);
    print_message("  notify: %s\n", weftd_notify_text(&w, i));
    assert_true(extend_usec(&w, i) >= 60000000ull + 5000000ull);
    assert_int_equal(weftd_wait(&w, 15000), 0);
    weftd_cleanup(&w);
}

/* workers = 0 serves in the master: READY=1 (with MAINPID) all the same, and STOPPING=1
 * with EXTEND_TIMEOUT_USEC= for its shutdown_timeout. */
static void
test_workers_0_notifies(void **state)
{
    struct weftd w;
    const char *msg;
    int i;

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 0\nshutdown_timeout = 60s\n[echo]\nprotocol = echo\n"
                       "listen = 127.0.0.1:%PORT%\n");
    msg = weftd_notify_text(&w, w.seen - 1);
    print_message("  notify: %s\n", msg);
    assert_non_null(strstr(msg, "READY=1"));
    assert_non_null(strstr(msg, "MAINPID="));
    assert_int_equal(strtol(strstr(msg, "MAINPID=") + 8, NULL, 10), w.pid);
    kill(w.pid, SIGTERM);
    i = weftd_wait_notify(&w, "STOPPING=1", 10000);
    assert_true(i >= 0);
    print_message("  notify: %s\n", weftd_notify_text(&w, i));
    assert_true(extend_usec(&w, i) >= 60000000ull);
    assert_int_equal(weftd_wait(&w, 15000), 0);
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
        cmocka_unit_test_teardown(test_master_reads_root_only_key_workers_have_no_caps,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_stop_extends_systemds_timeout, itest_teardown),
        cmocka_unit_test_teardown(test_workers_0_notifies, itest_teardown),
        cmocka_unit_test_teardown(test_unknown_user_is_a_config_error, itest_teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
