/* SPDX-License-Identifier: MIT */
/* worker.h: one worker process: a loop serving the services on the master's sockets. */
#ifndef WEFTD_WORKER_H
#define WEFTD_WORKER_H

#include <stdint.h>

#include "config.h"
#include "services.h"

/* What a worker tells the master through its status pipe: fixed records, atomic writes. */
enum {
    WORKER_MSG_READY = 1,       /* serving: every listener accepts */
    WORKER_MSG_CONNS = 2,       /* value: connections open */
    WORKER_MSG_CLOSED = 3,      /* draining or retiring: every listener of ours is closed */
};

struct worker_msg {
    uint32_t type;              /* WORKER_MSG_* */
    uint32_t pad;
    uint64_t value;             /* WORKER_MSG_CONNS: connections open */
};

/*
 * Serve ss (its sockets taken with services_take_fds) until told to stop,
 * then free it (servers, plugin state, plugins). status_fd is the pipe to
 * the master, or -1 when this process is the whole daemon (workers = 0):
 * then SIGINT stops like SIGTERM, and the "ready", "stopping" lines are
 * logged here, and READY=1/STOPPING=1 go to $NOTIFY_SOCKET. Signals: SIGTERM
 * closes this process's listeners and lets connections finish (up to
 * g->shutdown_ms, then aborts them); SIGUSR2 (a worker retired by a reload)
 * does the same bounded by g->reload_ms, or not at all when it is 0, and a
 * SIGTERM after it bounds what is left by g->shutdown_ms; a second SIGTERM
 * or SIGQUIT aborts at once. Both report WORKER_MSG_CLOSED once the
 * listeners are closed. Every signal the master blocks must still be blocked on
 * entry: they are unblocked once the loop handles them. At g->max_connections
 * open connections accepting pauses, and resumes below it. Returns the exit
 * status (0, or 1 if serving could not start).
 */
int worker_run(struct services *ss, const struct conf_global *g, int status_fd);

#endif
