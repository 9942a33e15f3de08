/* SPDX-License-Identifier: MIT */
/* weftd.h: run the real weftd on free loopback ports for integration tests. */
#ifndef WEFT_TEST_WEFTD_H
#define WEFT_TEST_WEFTD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define WEFTD_MAX_PORTS 8

/*
 * One weftd child. Its config, stdout and stderr live in a temporary
 * directory (dir) removed by weftd_cleanup().
 */
struct weftd {
    pid_t pid;                          /* 0 once reaped */
    int status;                         /* exit status once reaped: 0-255, 128+sig */
    int nports;                         /* placeholders used in the config */
    uint16_t ports[WEFTD_MAX_PORTS];    /* %PORT0%..%PORT7% (%PORT% is %PORT0%) */
    char dir[64];
    char conf[128];
    char out[128];
    char err[128];
};

/*
 * Write config (placeholders %PORT%, %PORT0%..%PORT7% replaced by free
 * ports on 127.0.0.1) to a temp dir and start "$WEFTD -c FILE" plus the
 * extra arguments (NULL-terminated, may be NULL). Waits up to 20 s until a
 * TCP connect to ports[0] succeeds (a config without a port waits for an
 * exit: for configs expected to fail). If weftd
 * exits early because a port was taken meanwhile, retries with new ports.
 * Returns 0 when it listens; -ESRCH if weftd exited (w->status holds the
 * status); -ETIMEDOUT (weftd killed); -errno for a local failure.
 */
int weftd_start(struct weftd *w, const char *config, const char *const *args);

/*
 * Write config to a temp dir and run "$WEFTD args... FILE" (FILE replaces
 * the argument "%CONF%"), waiting for it to exit (at most 20 s). Returns
 * the exit status, or -ETIMEDOUT / -errno.
 */
int weftd_run(struct weftd *w, const char *config, const char *const *args);

/* Send sig and wait (at most 20 s, then SIGKILL). Returns the exit status
 * (0-255, or 128+signal if it died of one), or -ETIMEDOUT. */
int weftd_stop(struct weftd *w, int sig);

/* Wait up to timeout_ms for weftd to exit; the status, or -ETIMEDOUT. */
int weftd_wait(struct weftd *w, int timeout_ms);

/* Everything weftd wrote to stderr (malloc'd, NUL-terminated; "" if none). */
char *weftd_stderr(const struct weftd *w);

/* True if stderr contains needle. */
bool weftd_stderr_contains(const struct weftd *w, const char *needle);

/* Kill weftd if still running, remove the temp dir. */
void weftd_cleanup(struct weftd *w);

/* A blocking TCP connection to 127.0.0.1:port, or -errno. */
int weftd_connect(uint16_t port);

#endif
