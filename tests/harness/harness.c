/* SPDX-License-Identifier: MIT */
/* harness.c: loops with deadlines, loopback socket pairs, a log sink for assertions. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "harness.h"

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct weft_loop *
harness_loop_new(void)
{
    struct weft_loop *loop = weft_loop_new();

    if (loop == NULL) {
        fprintf(stderr, "harness: weft_loop_new: %s\n", strerror(errno));
        abort();
    }
    return loop;
}

/*
 * The flag is set by callbacks that do not know about the harness, so a 1 ms
 * timer looks at it and stops the loop; the deadline is checked there too.
 */
struct until {
    struct weft_loop *loop;
    const bool *flag;
    uint64_t deadline;
    bool timed_out;
};

static void
until_check(void *arg)
{
    struct until *u = arg;

    if (*u->flag || now_ms() >= u->deadline) {
        u->timed_out = !*u->flag;
        weft_loop_stop(u->loop);
        return;
    }
    if (weft_call_later(u->loop, 1, until_check, u) == NULL)
        abort();
}

int
harness_run_until(struct weft_loop *loop, const bool *flag, uint64_t timeout_ms)
{
    struct until u = { loop, flag, now_ms() + timeout_ms, false };

    if (*flag)
        return 0;
    if (weft_call_soon(loop, until_check, &u) == NULL)
        abort();
    weft_loop_run(loop);
    return u.timed_out ? -ETIMEDOUT : 0;
}

void
harness_run_for(struct weft_loop *loop, uint64_t ms)
{
    bool never = false;

    (void)harness_run_until(loop, &never, ms);
}

static int
nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

int
harness_listen(uint16_t *port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    int fd, one = 1;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 128) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    *port = ntohs(sin.sin_port);
    return fd;
}

uint16_t
harness_free_port(void)
{
    uint16_t port = 0;
    int fd = harness_listen(&port);

    if (fd < 0)
        abort();
    close(fd);
    return port;
}

int
harness_tcp_pair(int *client, int *server)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    uint16_t port;
    int lfd, c, s, rc, one = 1;

    lfd = harness_listen(&port);
    if (lfd < 0)
        return lfd;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(port);
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        rc = -errno;
        goto fail;
    }
    s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (s < 0) {
        rc = -errno;
        goto fail;
    }
    close(lfd);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    nonblock(c);
    nonblock(s);
    *client = c;
    *server = s;
    return 0;
fail:
    if (c >= 0)
        close(c);
    close(lfd);
    return rc;
}

/* Log capture: a ring of recent lines, guarded for executor threads. */
#define LOG_LINES 256
static char log_lines[LOG_LINES][1100];
static unsigned log_next;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

static void
capture(int level, const char *msg, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&log_mu);
    snprintf(log_lines[log_next++ % LOG_LINES], sizeof(log_lines[0]), "%s: %s",
             weft_log_level_name(level), msg);
    pthread_mutex_unlock(&log_mu);
    if (getenv("WEFT_TEST_VERBOSE"))
        fprintf(stderr, "log: %s: %s\n", weft_log_level_name(level), msg);
}

void
harness_log_capture(void)
{
    weft_log_set_handler(capture, NULL, WEFT_LOG_DEBUG);
}

bool
harness_log_contains(const char *needle)
{
    bool found = false;

    pthread_mutex_lock(&log_mu);
    for (unsigned i = 0; i < LOG_LINES && !found; i++)
        found = strstr(log_lines[i], needle) != NULL;
    pthread_mutex_unlock(&log_mu);
    return found;
}

void
harness_log_clear(void)
{
    pthread_mutex_lock(&log_mu);
    memset(log_lines, 0, sizeof(log_lines));
    log_next = 0;
    pthread_mutex_unlock(&log_mu);
}

/* Tasks: run one to completion under a deadline. */
static void
task_done_flag(struct weft_future *f, void *arg)
{
    (void)f;
    *(bool *)arg = true;
}

intptr_t
harness_run_task(struct weft_loop *loop, weft_task_fn *fn, void *arg, uint64_t timeout_ms)
{
    struct weft_task *t = weft_task_spawn(loop, fn, arg, NULL);
    bool done = false, timed_out = false;
    intptr_t rc;

    if (t == NULL || weft_future_add_done_callback(weft_task_future(t), task_done_flag,
                                                   &done) < 0)
        abort();
    if (harness_run_until(loop, &done, timeout_ms) < 0) {
        timed_out = true;
        weft_task_cancel(t);
        harness_run_until(loop, &done, 200);
    }
    rc = done ? weft_future_result(weft_task_future(t)) : -ETIMEDOUT;
    if (timed_out)
        rc = -ETIMEDOUT;
    if (!done)
        weft_future_remove_done_callback(weft_task_future(t), task_done_flag, &done);
    weft_task_unref(t);
    harness_run_for(loop, 20);
    return rc;
}

/* A loop per test, and what its tasks say. */
struct weft_loop *harness_loop;
char harness_out[4096];

int
harness_setup(void **state)
{
    harness_loop = harness_loop_new();
    harness_out[0] = '\0';
    *state = harness_loop;
    return 0;
}

int
harness_teardown(void **state)
{
    (void)state;
    harness_run_for(harness_loop, 10);
    weft_loop_free(harness_loop);
    harness_loop = NULL;
    return 0;
}

void
harness_say(const char *fmt, ...)
{
    va_list ap;
    size_t len = strlen(harness_out);

    va_start(ap, fmt);
    vsnprintf(harness_out + len, sizeof(harness_out) - len, fmt, ap);
    va_end(ap);
}
