/* SPDX-License-Identifier: MIT */
/* weftd.h: run the real weftd on free loopback ports for integration tests. */
#ifndef WEFT_TEST_WEFTD_H
#define WEFT_TEST_WEFTD_H

#include <stdbool.h>
#include <stddef.h>
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

/*
 * The helpers below are for the tests' own side; the asserting ones fail
 * the calling cmocka test.
 */

/* Print weftd's stderr so a failing test shows why. */
void weftd_show_stderr(const struct weftd *w);

/* weftd_start(w, conf, NULL), asserting it listens (stderr shown if not). */
void weftd_start_ok(struct weftd *w, const char *conf);

/* Wait until stderr has needle (true) or ms pass (false). */
bool weftd_wait_log(const struct weftd *w, const char *needle, int ms);

/* How many times needle occurs in stderr. */
int weftd_log_count(const struct weftd *w, const char *needle);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t itest_now_ms(void);

/* Sleep ms milliseconds, across signals. */
void itest_sleep_ms(int ms);

/* SO_RCVTIMEO and SO_SNDTIMEO of fd: blocking reads and writes give up after ms. */
void itest_set_timeouts(int fd, int ms);

/* Read up to len bytes, blocking (within fd's timeouts) until len, EOF or an error;
 * returns how many were read. */
size_t itest_read_full(int fd, void *buf, size_t len);

/* Write all len bytes (blocking), asserting no error. */
void itest_write_full(int fd, const void *buf, size_t len);

/* The children of pid (e.g. weftd's workers), from /proc: up to max into out; returns how many. */
int itest_children_of(pid_t pid, pid_t *out, int max);

/* Wait up to ms until pid has exactly n children (out holds at least 64); returns how many
 * it has at the end. */
int itest_wait_children(pid_t pid, int n, pid_t *out, int ms);

#endif
