/* SPDX-License-Identifier: MIT */
/*
 * hooks.c: a plugin for the tests of the per-worker hooks (sh_test_weftd_worker_hooks).
 * worker_start makes the worker's own state and appends "start PID" to the file named by
 * `events`; each connection is answered "worker PID connection N" from that state (or
 * "no worker state" if worker_start never ran) and closed; worker_stop appends
 * "stop PID served N" and frees the state. `fail_start = yes` makes worker_start fail;
 * `fail_start = one` makes it fail in one worker only (the first to claim the file
 * EVENTS.fail); `stop_delay_ms = N` makes worker_stop take N ms (a worker slow to exit).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include <weft/weft.h>

struct worker {
    pid_t pid;
    unsigned long served;
};

struct hooks {
    char events[4096];
    int fail_start;                     /* 0 no, 1 yes, 2 in one worker */
    long stop_delay_ms;
    struct worker *w;                   /* this process's, from worker_start */
};

struct conn {
    struct weft_protocol base;
    struct hooks *h;
};

/* One line appended to the events file, in one write (workers append at once). */
static int
event(const struct hooks *h, const char *fmt, unsigned long a, unsigned long b)
{
    char line[128];
    int fd, n = snprintf(line, sizeof(line), fmt, a, b);
    ssize_t w;

    fd = open(h->events, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    w = write(fd, line, (size_t)n);
    close(fd);
    return w == n ? 0 : -EIO;
}

static int
conn_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct hooks *h = ((struct conn *)p)->h;
    char line[96];
    int n;

    if (h->w == NULL) {
        n = snprintf(line, sizeof(line), "no worker state\n");
    } else {
        h->w->served++;
        n = snprintf(line, sizeof(line), "worker %ld connection %lu\n", (long)h->w->pid,
                     h->w->served);
    }
    weft_transport_write(tr, line, (size_t)n);
    weft_transport_close(tr);
    return 0;
}

static int
conn_data(struct weft_protocol *p, struct evbuffer *in)
{
    (void)p;
    evbuffer_drain(in, evbuffer_get_length(in));
    return 0;
}

static void
conn_lost(struct weft_protocol *p, int error)
{
    (void)error;
    free(p);
}

static const struct weft_protocol_ops conn_ops = {
    .connection_made = conn_made,
    .data_received   = conn_data,
    .connection_lost = conn_lost,
};

static struct weft_protocol *
hooks_protocol_new(void *svc)
{
    struct conn *c = malloc(sizeof(*c));

    if (c == NULL)
        return NULL;
    c->base.ops = &conn_ops;
    c->h = svc;
    return &c->base;
}

static int
hooks_service_new(void **svc)
{
    *svc = calloc(1, sizeof(struct hooks));
    return *svc == NULL ? -ENOMEM : 0;
}

static int
hooks_configure(void *svc, const char *key, const char *value, char *err, size_t errlen)
{
    struct hooks *h = svc;

    if (strcmp(key, "events") == 0) {
        if (weft_plugin_path(value, h->events, sizeof(h->events)) < 0) {
            snprintf(err, errlen, "bad path");
            return -WEFT_ECONFIG;
        }
        return 0;
    }
    if (strcmp(key, "fail_start") == 0) {
        h->fail_start = strcmp(value, "yes") == 0 ? 1 : strcmp(value, "one") == 0 ? 2 : 0;
        return 0;
    }
    if (strcmp(key, "stop_delay_ms") == 0) {
        char *end;

        errno = 0;
        h->stop_delay_ms = strtol(value, &end, 10);
        if (errno != 0 || *end != '\0' || h->stop_delay_ms < 0 || h->stop_delay_ms > 10000) {
            snprintf(err, errlen, "want 0 to 10000");
            return -WEFT_ECONFIG;
        }
        return 0;
    }
    return -WEFT_ENOKEY;
}

static int
hooks_service_check(void *svc, char *err, size_t errlen)
{
    if (((struct hooks *)svc)->events[0] == '\0') {
        snprintf(err, errlen, "events = FILE is required");
        return -WEFT_ECONFIG;
    }
    return 0;
}

static int
hooks_worker_start(void *svc, struct weft_loop *loop, char *err, size_t errlen)
{
    struct hooks *h = svc;
    int rc;

    (void)loop;
    if (h->fail_start == 1) {
        snprintf(err, errlen, "told to fail (fail_start = yes)");
        return -WEFT_ECONFIG;
    }
    if (h->fail_start == 2) {
        char claim[sizeof(h->events) + 8];
        int fd;

        snprintf(claim, sizeof(claim), "%s.fail", h->events);
        fd = open(claim, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            close(fd);
            snprintf(err, errlen, "told to fail (fail_start = one)");
            return -WEFT_ECONFIG;
        }
    }
    if (h->w != NULL) {
        snprintf(err, errlen, "worker_start called twice in process %ld", (long)getpid());
        return -WEFT_ESTATE;
    }
    h->w = calloc(1, sizeof(*h->w));
    if (h->w == NULL)
        return -ENOMEM;
    h->w->pid = getpid();
    rc = event(h, "start %lu\n", (unsigned long)h->w->pid, 0);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", h->events, strerror(-rc));
        free(h->w);
        h->w = NULL;
    }
    return rc;
}

static void
hooks_worker_stop(void *svc, struct weft_loop *loop)
{
    struct hooks *h = svc;

    (void)loop;
    if (h->stop_delay_ms > 0) {
        struct timespec ts = { h->stop_delay_ms / 1000, h->stop_delay_ms % 1000 * 1000000 };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    event(h, "stop %lu served %lu\n", (unsigned long)h->w->pid, h->w->served);
    free(h->w);
    h->w = NULL;
}

static void
hooks_service_free(void *svc)
{
    struct hooks *h = svc;

    if (h->w != NULL)                   /* worker_stop must have run */
        event(h, "leaked state of %lu served %lu\n", (unsigned long)h->w->pid, h->w->served);
    free(h->w);
    free(h);
}

WEFT_PLUGIN_EXPORT const struct weft_plugin weft_plugin = {
    .abi           = WEFT_PLUGIN_ABI,
    .size          = sizeof(struct weft_plugin),
    .name          = "hooks",
    .version       = "test",
    .summary       = "test plugin: per-worker hooks",
    .service_new   = hooks_service_new,
    .configure     = hooks_configure,
    .service_check = hooks_service_check,
    .service_free  = hooks_service_free,
    .protocol_new  = hooks_protocol_new,
    .worker_start  = hooks_worker_start,
    .worker_stop   = hooks_worker_stop,
};
