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
#include <sys/file.h>
#include <sys/stat.h>
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

/*
 * Test ports: 500 blocks of 32 in 12000..27999, below the kernel's ephemeral
 * range, so no client socket or TIME_WAIT ever holds one. A process owns a
 * block while it holds an exclusive flock on its lock file (the shell side,
 * tests/integration/lib.sh, uses the same files), so two tests never get the
 * same port however many run at once.
 */
#define PORT_BASE 12000
#define PORT_BLOCKS 500
#define PORT_BLOCK_SIZE 32

static pthread_mutex_t port_mu = PTHREAD_MUTEX_INITIALIZER;
static int port_block = -1;         /* the block handing out ports, -1 before the first */
static int port_next = PORT_BLOCK_SIZE;
static int port_blocks_held;

/* Lock the first free block from start on; its number, or -1 if all 500 are taken. */
static int
lock_block(int start)
{
    const char *dir = getenv("WEFT_PORT_LOCK_DIR");
    char path[512];

    if (dir == NULL || *dir == '\0')
        dir = "/run/lock/weft-test-ports";
    /* Shared by every user's tests: world-writable and sticky, as /tmp. */
    if (mkdir(dir, 01777) == 0)
        chmod(dir, 01777);
    for (int i = 0; i < PORT_BLOCKS; i++) {
        int b = (start + i) % PORT_BLOCKS, fd;

        snprintf(path, sizeof(path), "%s/block-%d", dir, b);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) {
            fprintf(stderr, "harness: %s: %s\n", path, strerror(errno));
            abort();
        }
        fchmod(fd, 0666);   /* whatever the umask: other users lock it too */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return b;       /* fd stays open (never closed): the lock lasts our life */
        close(fd);
    }
    return -1;
}

/* Whether port binds on 127.0.0.1 now: a process outside the suite may hold it. */
static bool
port_binds(uint16_t port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    bool ok;

    if (fd < 0)
        return false;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

uint16_t
harness_port(void)
{
    uint16_t port;

    pthread_mutex_lock(&port_mu);
    for (;;) {
        if (port_next == PORT_BLOCK_SIZE) {
            int start = port_block < 0 ? (int)(((long)getpid() * 37) % PORT_BLOCKS)
                                       : port_block + 1;

            if (port_blocks_held == PORT_BLOCKS || (port_block = lock_block(start)) < 0) {
                fprintf(stderr, "harness: every test port block is taken\n");
                abort();
            }
            port_blocks_held++;
            port_next = 0;
        }
        port = (uint16_t)(PORT_BASE + PORT_BLOCK_SIZE * port_block + port_next++);
        if (port_binds(port))
            break;
    }
    pthread_mutex_unlock(&port_mu);
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

/* Tasks: run one to completion under a deadline (weft_run_until_complete). */
struct deadline {
    struct weft_loop *loop;
    bool passed;
};

static void
stop_at_deadline(void *arg)
{
    struct deadline *d = arg;

    d->passed = true;
    weft_loop_stop(d->loop);
}

intptr_t
harness_run_task(struct weft_loop *loop, weft_task_fn *fn, void *arg, uint64_t timeout_ms)
{
    struct weft_task *t = weft_task_spawn(loop, fn, arg, NULL);
    struct deadline d = { loop, false };
    struct weft_future *f;
    struct weft_handle *h;
    intptr_t rc = -ETIMEDOUT;
    bool timed_out;

    if (t == NULL)
        abort();
    f = weft_task_future(t);
    h = weft_call_later(loop, timeout_ms, stop_at_deadline, &d);
    if (h == NULL)
        abort();
    if (weft_run_until_complete(loop, f) == -EINTR && d.passed) {
        weft_task_cancel(t);        /* and give it 200 ms to finish */
        d.passed = false;
        h = weft_call_later(loop, 200, stop_at_deadline, &d);
        if (h == NULL)
            abort();
        timed_out = true;
    } else {
        timed_out = false;
    }
    if (timed_out)
        (void)weft_run_until_complete(loop, f);
    if (!d.passed)
        weft_handle_cancel(h);
    if (weft_future_done(f))
        rc = weft_future_result(f);
    if (timed_out)
        rc = -ETIMEDOUT;
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
