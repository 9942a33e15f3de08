/* SPDX-License-Identifier: MIT */
/* test_weftd_workers.c: master and workers: restart, reload under load, graceful stop, limits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "weftd.h"

#define NCLIENTS 50
#define PER_CLIENT (512u * 1024)    /* bytes each streaming client sends and gets back */
#define WINDOW (128u * 1024)        /* at most this much unechoed per client */

/* A new connection to port echoes a line within 5 s. */
static bool
echo_ok(uint16_t port)
{
    char buf[16];
    ssize_t got = 0, n;
    int fd = weftd_connect(port);

    if (fd < 0)
        return false;
    itest_set_timeouts(fd, 5000);
    if (write(fd, "ping\n", 5) != 5) {
        close(fd);
        return false;
    }
    while (got < 5 && (n = read(fd, buf + got, (size_t)(5 - got))) > 0)
        got += n;
    close(fd);
    return got == 5 && memcmp(buf, "ping\n", 5) == 0;
}

static void
rewrite_config(const struct weftd *w, const char *fmt, ...)
{
    va_list ap;
    FILE *f = fopen(w->conf, "w");

    assert_non_null(f);
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    assert_int_equal(fclose(f), 0);
}

static uint8_t
pattern(int client, size_t k)
{
    return (uint8_t)(k * 7 + (size_t)client * 13 + (k >> 9));
}

struct streamer {
    int fd;
    size_t sent, rcvd;
    bool done;
};

/*
 * NCLIENTS clients stream PER_CLIENT bytes each through echo; at 25% and 60%
 * of the total, sig goes to weftd (unless 0). Every byte must come back in
 * order, with no error on any socket.
 */
static void
stream_through(struct weftd *w, int sig)
{
    static struct streamer c[NCLIENTS];
    struct pollfd pfd[NCLIENTS];
    uint8_t buf[16384];
    uint64_t total = (uint64_t)NCLIENTS * PER_CLIENT, rcvd = 0, deadline = itest_now_ms() + 120000;
    int signals = 0, left = NCLIENTS;

    for (int i = 0; i < NCLIENTS; i++) {
        c[i] = (struct streamer){ .fd = weftd_connect(w->ports[0]) };
        assert_true(c[i].fd >= 0);
        fcntl(c[i].fd, F_SETFL, fcntl(c[i].fd, F_GETFL) | O_NONBLOCK);
    }
    while (left > 0) {
        assert_true(itest_now_ms() < deadline);
        if (sig != 0 && ((signals == 0 && rcvd >= total / 4) ||
                         (signals == 1 && rcvd >= total * 6 / 10))) {
            kill(w->pid, sig);
            signals++;
        }
        for (int i = 0; i < NCLIENTS; i++) {
            pfd[i] = (struct pollfd){ .fd = c[i].done ? -1 : c[i].fd, .events = POLLIN };
            if (c[i].sent < PER_CLIENT && c[i].sent - c[i].rcvd < WINDOW)
                pfd[i].events |= POLLOUT;
        }
        assert_true(poll(pfd, NCLIENTS, 1000) >= 0);
        for (int i = 0; i < NCLIENTS; i++) {
            struct streamer *s = &c[i];
            ssize_t n;

            if (s->done)
                continue;
            if (pfd[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
                print_message("client %d: poll revents %#x after %zu/%zu bytes\n", i,
                              pfd[i].revents, s->rcvd, s->sent);
                weftd_show_stderr(w);
                fail();
            }
            if (pfd[i].revents & POLLOUT) {
                size_t len = PER_CLIENT - s->sent;

                if (len > sizeof(buf))
                    len = sizeof(buf);
                if (len > WINDOW - (s->sent - s->rcvd))
                    len = WINDOW - (s->sent - s->rcvd);
                for (size_t k = 0; k < len; k++)
                    buf[k] = pattern(i, s->sent + k);
                n = write(s->fd, buf, len);
                if (n < 0 && errno != EAGAIN) {
                    print_message("client %d: write: %s\n", i, strerror(errno));
                    fail();
                }
                if (n > 0)
                    s->sent += (size_t)n;
            }
            if (pfd[i].revents & POLLIN) {
                n = read(s->fd, buf, sizeof(buf));
                if (n <= 0 && !(n < 0 && errno == EAGAIN)) {
                    print_message("client %d: read: %s after %zu bytes\n", i,
                                  n == 0 ? "EOF" : strerror(errno), s->rcvd);
                    weftd_show_stderr(w);
                    fail();
                }
                for (ssize_t k = 0; k < n; k++) {
                    if (buf[k] != pattern(i, s->rcvd + (size_t)k)) {
                        print_message("client %d: byte %zu differs\n", i, s->rcvd + (size_t)k);
                        fail();
                    }
                }
                if (n > 0) {
                    s->rcvd += (size_t)n;
                    rcvd += (uint64_t)n;
                }
                if (s->rcvd == PER_CLIENT) {
                    s->done = true;
                    close(s->fd);
                    left--;
                }
            }
        }
    }
    if (sig != 0)
        assert_int_equal(signals, 2);
}

static void
test_a_killed_worker_is_replaced_within_a_second(void **state)
{
    struct weftd w;
    pid_t kids[64], after[64];
    uint64_t t0;
    int n;

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 2\nlog_level = info\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT%\n");
    /* READY=1: both workers serve. */
    assert_int_equal(itest_children_of(w.pid, kids, 64), 2);
    assert_true(weftd_stderr_contains(&w, "ready: 1 service, 2 workers"));
    /* A client of the worker that survives keeps its connection. */
    assert_true(echo_ok(w.ports[0]));
    assert_int_equal(kill(kids[0], SIGKILL), 0);
    t0 = itest_now_ms();
    /* Meanwhile the service answers: the other worker, or the socket's backlog. */
    for (int i = 0; i < 20; i++)
        assert_true(echo_ok(w.ports[0]));
    /* The replacement says it serves (an info line, logged for workers after the start). */
    assert_true(weftd_wait_log(&w, "killed by SIGKILL", 10000));
    if (!weftd_wait_log(&w, " ready (config 1)", 10000))
        weftd_show_stderr(&w);
    n = itest_children_of(w.pid, after, 64);
    print_message("  replaced and serving after %llu ms\n",
                  (unsigned long long)(itest_now_ms() - t0));
    assert_int_equal(n, 2);
    assert_true(after[0] != kids[0] && after[1] != kids[0]);
    /* Not held back as a crash loop would be (its delay is seconds): a generous bound. */
    assert_true(itest_now_ms() - t0 < 5000);
    assert_true(echo_ok(w.ports[0]));
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    assert_true(weftd_stderr_contains(&w, "notice: stopped"));
    weftd_cleanup(&w);
}

static void
test_kill_9_under_load_others_keep_streaming(void **state)
{
    struct weftd w;
    pid_t kids[64];
    int fds[8];

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 2\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT%\n");
    assert_int_equal(itest_wait_children(w.pid, 2, kids, 10000), 2);
    for (int i = 0; i < 8; i++) {
        fds[i] = weftd_connect(w.ports[0]);
        assert_true(fds[i] >= 0);
    }
    assert_int_equal(kill(kids[0], SIGKILL), 0);
    /* New clients stream through the worker left and the one that replaces the dead. */
    stream_through(&w, 0);
    for (int i = 0; i < 8; i++)
        close(fds[i]);
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    weftd_cleanup(&w);
}

static void
test_reload_while_50_clients_stream_loses_nothing(void **state)
{
    struct weftd w;
    pid_t kids[64];

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 2\nshutdown_timeout = 60s\n"
              "[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT%\n");
    assert_int_equal(itest_wait_children(w.pid, 2, kids, 10000), 2);
    stream_through(&w, SIGHUP);
    /* Two SIGHUPs, the second maybe during the first reload: that one follows it. */
    if (weftd_wait_notify(&w, "STATUS=reloaded (config 3)", 30000) < 0)
        weftd_show_stderr(&w);
    assert_int_equal(weftd_log_count(&w, "notice: reloaded"), 2);
    /* The old workers finished once their clients were done: 4 of them. */
    if (!weftd_wait_log_count(&w, "finished", 4, 30000))
        weftd_show_stderr(&w);
    assert_int_equal(weftd_log_count(&w, "finished"), 4);
    assert_int_equal(itest_wait_children(w.pid, 2, kids, 5000), 2);
    assert_false(weftd_stderr_contains(&w, "aborting"));
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    weftd_cleanup(&w);
}

static void
test_reload_with_broken_config_keeps_serving(void **state)
{
    struct weftd w;
    pid_t before[64], after[64];

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 1\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT%\n");
    assert_int_equal(itest_wait_children(w.pid, 1, before, 10000), 1);
    rewrite_config(&w, "[weftd]\nworkers = 1\nlog_level = loud\n[echo]\nprotocol = echo\n"
                       "listen = 127.0.0.1:%u\ncolour = red\n", (unsigned)w.ports[0]);
    weftd_reload_expect(&w, WEFTD_RELOAD_FAILED);
    assert_non_null(strstr(weftd_notify_text(&w, w.seen - 1),
                           "2 errors; config 1 goes on"));
    /* Every error, with its line. */
    assert_true(weftd_stderr_contains(&w, "weftd.conf:3: [weftd] log_level: bad value"));
    assert_true(weftd_stderr_contains(&w, "weftd.conf:7: [echo] colour: unknown key"));
    assert_true(weftd_stderr_contains(&w, "2 errors, the running config goes on"));
    assert_true(echo_ok(w.ports[0]));
    assert_int_equal(itest_children_of(w.pid, after, 64), 1);
    assert_int_equal(after[0], before[0]);
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    weftd_cleanup(&w);
}

static void
test_reload_adds_and_removes_a_service(void **state)
{
    struct weftd w;
    uint16_t fresh = harness_port();
    int held;

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 1\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT0%\n"
              "[old]\nprotocol = echo\nlisten = 127.0.0.1:%PORT1%\n");
    assert_true(echo_ok(w.ports[1]));
    held = weftd_connect(w.ports[1]);       /* a client of the removed service */
    assert_true(held >= 0);
    itest_set_timeouts(held, 5000);
    assert_int_equal(write(held, "x", 1), 1);
    {
        char b;

        assert_int_equal(read(held, &b, 1), 1);
    }
    rewrite_config(&w, "[weftd]\nworkers = 1\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%u\n"
                       "[new]\nprotocol = echo\nlisten = 127.0.0.1:%u\n",
                   (unsigned)w.ports[0], (unsigned)fresh);
    weftd_reload_expect(&w, 0);
    /* READY=1 after the reload: the removed address refuses at once, the others serve. */
    assert_int_equal(weftd_connect(w.ports[1]), -ECONNREFUSED);
    assert_true(weftd_stderr_contains(&w, "notice: reloaded: 2 services"));
    assert_true(echo_ok(fresh));
    assert_true(echo_ok(w.ports[0]));
    /* The removed service's client is still served by its old worker. */
    {
        char b;

        assert_int_equal(write(held, "y", 1), 1);
        assert_int_equal(read(held, &b, 1), 1);
        assert_int_equal(b, 'y');
    }
    close(held);
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    weftd_cleanup(&w);
}

static void
test_sigterm_lets_a_client_finish(void **state)
{
    struct weftd w;
    char buf[8];
    int fd;

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 2\nshutdown_timeout = 20s\n"
              "[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT%\n");
    fd = weftd_connect(w.ports[0]);
    assert_true(fd >= 0);
    itest_set_timeouts(fd, 5000);
    assert_int_equal(write(fd, "one", 3), 3);
    assert_int_equal(read(fd, buf, 3), 3);
    kill(w.pid, SIGTERM);
    assert_true(weftd_wait_notify(&w, "STOPPING=1", 10000) >= 0);
    /* No new client once every worker closed its listening sockets (weftd says when)... */
    if (!weftd_wait_log(&w, "stopping: not accepting any more; 1 connection left", 10000))
        weftd_show_stderr(&w);
    assert_int_equal(weftd_connect(w.ports[0]), -ECONNREFUSED);
    /* ...but the one connected is still served, for as long as it likes. */
    assert_int_equal(write(fd, "two", 3), 3);
    assert_int_equal(read(fd, buf, 3), 3);
    assert_memory_equal(buf, "two", 3);
    assert_int_equal(weftd_wait(&w, 300), -ETIMEDOUT);
    close(fd);
    if (weftd_wait(&w, 10000) != 0)
        weftd_show_stderr(&w);
    assert_int_equal(w.status, 0);
    assert_true(weftd_stderr_contains(&w, "notice: stopped"));
    assert_false(weftd_stderr_contains(&w, "aborting"));
    weftd_cleanup(&w);
}

static void
test_max_connections_pauses_accepting(void **state)
{
    struct weftd w;
    int fds[3], extra;
    char buf[4];

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 1\nmax_connections = 3\n"
              "[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT%\n");
    for (int i = 0; i < 3; i++) {
        fds[i] = weftd_connect(w.ports[0]);
        assert_true(fds[i] >= 0);
        itest_set_timeouts(fds[i], 5000);
        assert_int_equal(write(fds[i], "abc", 3), 3);
        assert_int_equal(read(fds[i], buf, 3), 3);
    }
    assert_true(weftd_wait_log(&w, "max_connections (3) reached", 5000));
    /* The fourth waits in the backlog: connected by the kernel, not served, not closed. */
    extra = weftd_connect(w.ports[0]);
    assert_true(extra >= 0);
    itest_set_timeouts(extra, 500);
    assert_int_equal(write(extra, "4th", 3), 3);
    assert_int_equal(read(extra, buf, 3), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    /* One leaves: the fourth is served. */
    close(fds[0]);
    itest_set_timeouts(extra, 5000);
    assert_int_equal(read(extra, buf, 3), 3);
    assert_memory_equal(buf, "4th", 3);
    assert_true(weftd_stderr_contains(&w, "accepting again"));
    close(extra);
    close(fds[1]);
    close(fds[2]);
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    weftd_cleanup(&w);
}

/* utime + stime of pid, in clock ticks. */
static unsigned long long
cpu_ticks(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof(buf), f));
    fclose(f);
    p = strrchr(buf, ')');
    assert_non_null(p);
    /* After ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                            &ut, &st), 2);
    return ut + st;
}

static int
open_fds(pid_t pid)
{
    char path[64];
    struct dirent *e;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void
test_emfile_backs_off_without_spinning(void **state)
{
    struct weftd w;
    pid_t worker;
    struct rlimit rl, old;
    unsigned long long t0;
    int fds[12], served = 0;

    (void)state;
    /* user = root: prlimit and /proc/PID/fd on a worker that stays root. */
    weftd_start_ok(&w, "[weftd]\nworkers = 1\nuser = root\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT%\n");
    assert_int_equal(itest_wait_children(w.pid, 1, &worker, 10000), 1);
    assert_true(weftd_wait_log(&w, "ready", 10000));
    /* Room for two more descriptors in the worker. */
    assert_int_equal(prlimit(worker, RLIMIT_NOFILE, NULL, &old), 0);
    rl = old;
    rl.rlim_cur = (rlim_t)open_fds(worker) + 2;
    if (prlimit(worker, RLIMIT_NOFILE, &rl, NULL) != 0) {
        print_message("  skipped: prlimit: %s\n", strerror(errno));
        weftd_cleanup(&w);
        skip();
    }
    for (int i = 0; i < 12; i++) {
        fds[i] = weftd_connect(w.ports[0]);
        assert_true(fds[i] >= 0);
        itest_set_timeouts(fds[i], 300);
        assert_int_equal(write(fds[i], "e", 1), 1);
    }
    assert_true(weftd_wait_log(&w, "pausing accepts", 5000));
    t0 = cpu_ticks(worker);
    itest_sleep_ms(1000);
    /* A spinning worker would use about 100 ticks a second; a waiting one, a few. */
    print_message("  worker CPU in 1 s at EMFILE: %llu ticks\n", cpu_ticks(worker) - t0);
    assert_true(cpu_ticks(worker) - t0 < 30);
    for (int i = 0; i < 12; i++) {
        char b;

        served += read(fds[i], &b, 1) == 1;
    }
    print_message("  served at the limit: %d of 12\n", served);
    assert_true(served < 6);     /* a few fit in the limit; the rest wait in the backlog */
    /* Room again: every waiting client is served. */
    assert_int_equal(prlimit(worker, RLIMIT_NOFILE, &old, NULL), 0);
    for (int i = 0; i < 12; i++) {
        char b;

        itest_set_timeouts(fds[i], 5000);
        assert_int_equal(write(fds[i], "f", 1), 1);
        assert_int_equal(read(fds[i], &b, 1), 1);
        close(fds[i]);
    }
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    weftd_cleanup(&w);
}

static void
test_workers_0_serves_in_one_process(void **state)
{
    struct weftd w;
    pid_t kids[4];

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 0\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT%\n");
    assert_true(echo_ok(w.ports[0]));
    assert_int_equal(itest_children_of(w.pid, kids, 4), 0);
    assert_true(weftd_wait_log(&w, "no worker processes", 5000));
    assert_int_equal(weftd_stop(&w, SIGINT), 0);
    assert_true(weftd_stderr_contains(&w, "stopping (SIGINT)"));
    weftd_cleanup(&w);
}

/*
 * The master frozen right after forking its first worker (an LD_PRELOAD shim stops it, as
 * a busy machine can deschedule it), the worker killed meanwhile by someone else (the OOM
 * killer, a sysadmin): once the master runs again it must start another and become ready,
 * not take the death for a config that cannot start. (It exited 1, "a worker failed to
 * start", and the suite's timing hid it.)
 */
static void
test_a_worker_killed_while_the_master_is_stopped_is_replaced(void **state)
{
    const char *env[] = { "LD_PRELOAD=" WEFT_SHIM_FORK_STOP, "WEFT_SHIM_STOP_AFTER_FORK=1",
                          "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:"
                          "verify_asan_link_order=0", NULL };
    struct weftd_opts o = { .env = env, .no_wait = true };
    struct weftd w;
    pid_t kids[64], worker;

    (void)state;
    assert_int_equal(weftd_start_with(&w, "[weftd]\nworkers = 1\n[echo]\nprotocol = echo\n"
                                          "listen = 127.0.0.1:%PORT%\n", &o), 0);
    if (!itest_wait_state(w.pid, 'T', 60000))
        weftd_show_stderr(&w);
    assert_int_equal(itest_proc_state(w.pid), 'T');
    assert_int_equal(itest_children_of(w.pid, kids, 64), 1);
    worker = kids[0];
    assert_int_equal(kill(worker, SIGKILL), 0);
    assert_true(itest_wait_state(worker, 'Z', 10000));  /* dead, not reaped: the master sleeps */
    assert_int_equal(kill(w.pid, SIGCONT), 0);
    if (weftd_wait_notify(&w, "READY=1", 60000) < 0)
        weftd_show_stderr(&w);
    assert_true(w.pid > 0);
    assert_true(weftd_stderr_contains(&w, "killed by SIGKILL"));
    assert_false(weftd_stderr_contains(&w, "failed to start"));
    assert_true(echo_ok(w.ports[0]));
    assert_int_equal(itest_children_of(w.pid, kids, 64), 1);
    assert_true(kids[0] != worker);
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    weftd_cleanup(&w);
}

/*
 * reload_timeout = 0 (the default): an old worker's client stays as long as it likes, however
 * short shutdown_timeout is (that one bounds a stop, not a reload).
 */
static void
test_a_reload_lets_a_client_outlive_shutdown_timeout(void **state)
{
    struct weftd w;
    char buf[8];
    int fd;

    (void)state;
    weftd_start_ok(&w, "[weftd]\nworkers = 1\nshutdown_timeout = 200ms\nlog_level = info\n"
                       "[echo]\nprotocol = echo\nlisten = 127.0.0.1:%PORT%\n");
    fd = weftd_connect(w.ports[0]);
    assert_true(fd >= 0);
    itest_set_timeouts(fd, 5000);
    itest_write_full(fd, "one", 3);
    assert_int_equal(itest_read_full(fd, buf, 3), 3);
    weftd_reload_expect(&w, 0);
    /* Time passing is the point: five shutdown_timeouts. */
    itest_sleep_ms(1000);
    itest_write_full(fd, "two", 3);
    assert_int_equal(itest_read_full(fd, buf, 3), 3);
    assert_memory_equal(buf, "two", 3);
    assert_false(weftd_stderr_contains(&w, "aborting"));
    assert_int_equal(weftd_log_count(&w, "finished"), 0);
    close(fd);
    /* The old worker goes once its last client has. */
    if (!weftd_wait_log(&w, "finished", 10000))
        weftd_show_stderr(&w);
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    weftd_cleanup(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_a_killed_worker_is_replaced_within_a_second, itest_teardown),
        cmocka_unit_test_teardown(test_kill_9_under_load_others_keep_streaming, itest_teardown),
        cmocka_unit_test_teardown(test_reload_while_50_clients_stream_loses_nothing, itest_teardown),
        cmocka_unit_test_teardown(test_reload_with_broken_config_keeps_serving, itest_teardown),
        cmocka_unit_test_teardown(test_reload_adds_and_removes_a_service, itest_teardown),
        cmocka_unit_test_teardown(test_sigterm_lets_a_client_finish, itest_teardown),
        cmocka_unit_test_teardown(test_max_connections_pauses_accepting, itest_teardown),
        cmocka_unit_test_teardown(test_emfile_backs_off_without_spinning, itest_teardown),
        cmocka_unit_test_teardown(test_workers_0_serves_in_one_process, itest_teardown),
        cmocka_unit_test_teardown(test_a_worker_killed_while_the_master_is_stopped_is_replaced,
                                  itest_teardown),
        cmocka_unit_test_teardown(test_a_reload_lets_a_client_outlive_shutdown_timeout,
                                  itest_teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
