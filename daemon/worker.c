/* SPDX-License-Identifier: MIT */
/* worker.c: a worker's loop: serve, report, pause at max_connections, drain, reopen logs. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <weft/weft.h>

#include "log.h"
#include "sdnotify.h"
#include "worker.h"

#define DRAIN_TICK_MS 20        /* how often a draining worker looks at its connections */
#define PAUSED_TICK_MS 20       /* how often a worker at max_connections looks again */
#define STATUS_TICK_MS 1000     /* how often the connection count goes to the master */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct worker {
    struct services *ss;
    const struct conf_global *g;
    struct weft_loop *loop;
    int status_fd;
    bool draining;
    bool retiring;              /* draining after a reload (SIGUSR2): reload_timeout bounds it */
    bool paused;                /* at max_connections */
    uint64_t deadline;          /* draining: abort what is left at this loop time; 0: never */
    uint64_t reported;          /* connection count last sent */
    struct weft_handle *tick;
};

static const char *
signal_name(int sig)
{
    switch (sig) {
    case SIGINT:  return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP:  return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    default:      return "signal";
    }
}

static void
send_msg(struct worker *w, uint32_t type, uint64_t value)
{
    struct worker_msg m = { .type = type, .value = value };

    if (w->status_fd < 0)
        return;
    /* 16 bytes < PIPE_BUF: atomic. A full pipe drops the record; the next one corrects it. */
    while (write(w->status_fd, &m, sizeof(m)) < 0 && errno == EINTR)
        ;
}

static void
set_accepting(struct worker *w, bool on)
{
    for (size_t i = 0; i < w->ss->count; i++) {
        struct weft_server *s = w->ss->list[i].server;

        if (s == NULL)
            continue;
        if (on)
            weft_server_resume_accepting(s);
        else
            weft_server_pause_accepting(s);
    }
}

static void tick(void *arg);

static void
schedule_tick(struct worker *w)
{
    uint64_t ms = w->draining ? DRAIN_TICK_MS : w->paused ? PAUSED_TICK_MS : STATUS_TICK_MS;

    if (w->tick != NULL)
        weft_handle_cancel(w->tick);
    w->tick = weft_call_later(w->loop, ms, tick, w);
}

static void
tick(void *arg)
{
    struct worker *w = arg;
    size_t n = services_connection_count(w->ss);

    w->tick = NULL;
    if (n != w->reported) {
        send_msg(w, WORKER_MSG_CONNS, n);
        w->reported = n;
    }
    if (w->draining) {
        if (n == 0 && weft_stream_handler_count(w->loop) == 0) {
            weft_loop_stop(w->loop);
            return;
        }
        if (w->deadline != 0 && weft_loop_time(w->loop) >= w->deadline) {
            log_warning("%s reached: aborting %zu connection%s",
                        w->retiring ? "reload_timeout" : "shutdown_timeout", n,
                        n == 1 ? "" : "s");
            services_abort_clients(w->ss);
            weft_loop_stop(w->loop);
            return;
        }
    } else if (w->paused && n < w->g->max_connections) {
        w->paused = false;
        set_accepting(w, true);
        log_info("%zu connections, below max_connections: accepting again", n);
    }
    schedule_tick(w);
    if (w->tick == NULL && w->draining) {   /* no memory for a timer: stop now */
        services_abort_clients(w->ss);
        weft_loop_stop(w->loop);
    }
}

/*
 * Each accepted connection, counted from accept() on: one still waiting for
 * its PROXY header or TLS handshake holds a slot as much as one being
 * served. The one that reaches max_connections pauses accepting.
 */
static void
on_accepted(struct weft_server *srv, void *arg)
{
    struct worker *w = arg;
    size_t n = services_connection_count(w->ss);

    (void)srv;
    if (n >= w->g->max_connections && !w->paused && !w->draining) {
        w->paused = true;
        set_accepting(w, false);
        log_warning("max_connections (%llu) reached: not accepting until one closes",
                    (unsigned long long)w->g->max_connections);
        schedule_tick(w);
    }
}

static void
on_signal(struct weft_loop *loop, int sig, void *arg)
{
    struct worker *w = arg;
    size_t n = services_connection_count(w->ss);

    if (sig == SIGUSR1) {
        /* A worker's is the master's line's echo; workers = 0 has only this one. */
        if (w->status_fd < 0)
            log_notice("reopening log files (SIGUSR1)");
        else
            log_debug("reopening log files (SIGUSR1)");
        services_reopen(w->ss);
        return;
    }
    if (sig == SIGHUP) {
        log_warning("SIGHUP: reloading needs worker processes (workers = 0 here); "
                    "restart weftd to apply a new config");
        return;
    }
    if (sig == SIGTERM && w->retiring) {
        /* Retiring after a reload, now told to stop: shutdown_timeout bounds it from here. */
        uint64_t deadline = weft_loop_time(loop) + w->g->shutdown_ms;

        w->retiring = false;
        if (w->deadline == 0 || deadline < w->deadline)
            w->deadline = deadline;
        log_debug("SIGTERM while retiring: %zu connection%s left, at most %llu ms", n,
                  n == 1 ? "" : "s", (unsigned long long)w->g->shutdown_ms);
        return;
    }
    if (sig == SIGUSR2 && w->draining)
        return;                 /* retiring or stopping already */
    if (w->draining || sig == SIGQUIT) {
        /* A master's second SIGTERM/SIGINT reaches us as SIGQUIT: name what happened. */
        if (w->status_fd >= 0 || sig == SIGQUIT)
            log_notice("aborting %zu connection%s now", n, n == 1 ? "" : "s");
        else
            log_notice("second %s: aborting %zu connection%s now", signal_name(sig), n,
                       n == 1 ? "" : "s");
        services_abort_clients(w->ss);
        weft_loop_stop(loop);
        return;
    }
    w->draining = true;
    w->retiring = sig == SIGUSR2;
    if (w->retiring)
        w->deadline = w->g->reload_ms != 0 ? weft_loop_time(loop) + w->g->reload_ms : 0;
    else
        w->deadline = weft_loop_time(loop) + w->g->shutdown_ms;
    char d[LOG_DURATION_LEN];
    if (w->status_fd < 0) {
        log_notice("stopping (%s): draining %zu connection%s, up to %s; %s again aborts them",
                   signal_name(sig), n, n == 1 ? "" : "s", log_duration(w->g->shutdown_ms, d),
                   signal_name(sig));
        sdnotify("STOPPING=1\nEXTEND_TIMEOUT_USEC=%llu",
                 (unsigned long long)(w->g->shutdown_ms + SDNOTIFY_EXTEND_MARGIN_MS) * 1000ull);
    } else if (w->deadline == 0) {
        log_debug("retiring (reload): %zu connection%s left, no time limit", n,
                  n == 1 ? "" : "s");
    } else if (n > 0) {
        log_notice("draining %zu connection%s, up to %s", n, n == 1 ? "" : "s",
                   log_duration(w->deadline - weft_loop_time(loop), d));
    }
    /* Only our copies close: the master keeps the sockets it still serves. It learns
     * that ours are closed, so after a reload it knows when a removed address refuses. */
    services_close_listeners(w->ss);
    services_drain(w->ss);          /* protocols that can say so tell their peers (GOAWAY) */
    send_msg(w, WORKER_MSG_CLOSED, 0);
    if (w->tick != NULL)
        weft_handle_cancel(w->tick);
    w->tick = weft_call_soon(loop, tick, w);
    if (w->tick == NULL) {
        services_abort_clients(w->ss);
        weft_loop_stop(loop);
    }
}

int
worker_run(struct services *ss, const struct conf_global *g, int status_fd)
{
    struct worker w = { .ss = ss, .g = g, .status_fd = status_fd };
    /* Workers: the master's SIGTERM, SIGQUIT, SIGUSR1 and SIGUSR2 (retire after a reload).
     * workers = 0: SIGINT and SIGHUP come from the terminal or the sysadmin instead. */
    int worker_sigs[] = { SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2 };
    int alone_sigs[] = { SIGTERM, SIGQUIT, SIGUSR1, SIGINT, SIGHUP };
    int *sigs = status_fd < 0 ? alone_sigs : worker_sigs;
    size_t nsigs = status_fd < 0 ? ARRAY_SIZE(alone_sigs) : ARRAY_SIZE(worker_sigs);
    sigset_t none;
    int rc, status = 1;

    w.loop = weft_loop_new();
    if (w.loop == NULL) {
        log_error("cannot create the event loop: %s", strerror(errno));
        services_free(ss);
        return 1;
    }
    for (size_t i = 0; i < nsigs; i++) {
        rc = weft_loop_add_signal_handler(w.loop, sigs[i], on_signal, &w);
        if (rc < 0) {
            log_error("cannot handle %s: %s", signal_name(sigs[i]), weft_strerror(rc));
            goto out;
        }
    }
    if (status_fd >= 0) {
        /* The master handles these (a terminal's ^C reaches the whole process group). */
        signal(SIGINT, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (status_fd < 0)
        services_log_listeners(ss);     /* before services_start hands the fds over */
    rc = services_start(ss, w.loop, on_accepted, &w);
    if (rc < 0)
        goto out;
    if (status_fd < 0) {
        log_notice("ready: %zu service%s, no worker processes (workers = 0)", ss->count,
                   ss->count == 1 ? "" : "s");
        sdnotify("READY=1\nMAINPID=%ld", (long)getpid());
    }
    send_msg(&w, WORKER_MSG_READY, 0);
    schedule_tick(&w);
    rc = weft_loop_run(w.loop);
    if (rc < 0)
        log_error("event loop failed: %s", weft_strerror(rc));
    else
        status = 0;
out:
    /* Servers (and their connections) go before the loop; plugin state with them. */
    services_free(ss);
    weft_loop_free(w.loop);
    return status;
}
