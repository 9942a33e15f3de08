/* SPDX-License-Identifier: MIT */
/* weftd.h: run the real weftd on test ports for integration tests, told by it when it is ready. */
#ifndef WEFT_TEST_WEFTD_H
#define WEFT_TEST_WEFTD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WEFTD_MAX_PORTS 8

/* weftd_reload(): weftd said "STATUS=reload failed: ..." (the old config goes on). */
#define WEFTD_RELOAD_FAILED (-10001)

/*
 * One weftd child. Its config, stdout, stderr and notify socket live in a
 * temporary directory (dir) removed by weftd_cleanup() or itest_teardown().
 *
 * weftd runs with NOTIFY_SOCKET set to a datagram socket of the harness, so
 * the tests learn from weftd itself when it is ready, reloaded or stopping
 * (READY=1, STATUS=..., RELOADING=1, STOPPING=1; see daemon/master.c). Every
 * datagram received is kept, in order; the socket is drained at every call
 * below that takes a struct weftd, as the queue of an AF_UNIX socket is short.
 *
 * weftd runs in its own process group with PR_SET_PDEATHSIG SIGKILL, and is
 * recorded in a registry of copies (not this struct, which may sit on a stack
 * frame a failed assertion jumps out of): itest_teardown() and an atexit
 * handler kill every group left, print its stderr and remove its dir.
 */
struct weftd {
    pid_t pid;                          /* the master and its process group; 0 once reaped */
    int status;                         /* exit status once reaped: 0-255, 128+sig */
    int nports;                         /* placeholders used in the config */
    uint16_t ports[WEFTD_MAX_PORTS];    /* %PORT0%..%PORT7% (%PORT% is %PORT0%) */
    char dir[64];
    char conf[128];
    char out[128];
    char err[128];
    char notify[108];                   /* NOTIFY_SOCKET as weftd got it ("@..." abstract) */
    unsigned id;                        /* the registry's record; 0 if none */
    int seen;                           /* the waits below look at datagrams from here on */
};

/* Options of weftd_start_with(); zero them for the defaults. */
struct weftd_opts {
    const char *const *args;            /* extra arguments after "-c FILE" (NULL-terminated) */
    const char *const *env;             /* extra NAME=VALUE for weftd's environment */
    const char *notify;                 /* NOTIFY_SOCKET: NULL = dir/notify; "@name" abstract */
    const char *const *prefix;          /* a command that runs weftd (NULL-terminated), e.g.
                                         * setpriv with its options: before $WEFTD_WRAPPER */
    bool no_wait;                       /* return once started, without waiting for READY=1 */
};

/*
 * Write config (placeholders %PORT%, %PORT0%..%PORT7% replaced by
 * harness_port()s) to a temp dir and start "$WEFTD -c FILE" plus the extra
 * arguments (NULL-terminated, may be NULL). Waits (60 s; 180 s under
 * $WEFTD_WRAPPER) for the READY=1 datagram, which weftd sends once every
 * worker serves every address, or for weftd to exit (a config expected to
 * fail). If weftd exits saying a port is "in use", retries with new ports.
 * Returns 0 when ready (w->seen is then past READY=1); -ESRCH if weftd exited
 * (w->status holds the status); -ETIMEDOUT (weftd killed); -errno for a
 * local failure.
 */
int weftd_start(struct weftd *w, const char *config, const char *const *args);

/* weftd_start() with options: environment, notify address, or no wait for READY=1
 * (then no retry on "in use" either). */
int weftd_start_with(struct weftd *w, const char *config, const struct weftd_opts *o);

/*
 * Write config to a temp dir and run "$WEFTD args... FILE" (FILE replaces
 * the argument "%CONF%"), waiting for it to exit (60 s). Returns the exit
 * status, or -ETIMEDOUT / -errno.
 */
int weftd_run(struct weftd *w, const char *config, const char *const *args);

/*
 * Reload: drain, SIGHUP, wait for RELOADING=1 and then the READY=1 that ends
 * the reload (60 s each; 180 s under $WEFTD_WRAPPER). After it, every kept or
 * added address is served by the new workers and every removed one refuses.
 * Returns 0 if its STATUS says "reloaded", WEFTD_RELOAD_FAILED if it says
 * "reload failed" (the old config goes on), -EPROTO if it says neither,
 * -ESRCH if weftd exited, -ETIMEDOUT. w->seen is then past that READY=1,
 * whose text is weftd_notify_text(w, w->seen - 1).
 */
int weftd_reload(struct weftd *w);

/*
 * Wait up to ms for a datagram at index w->seen or later containing needle;
 * returns its index (w->seen becomes index + 1), -ESRCH if weftd exited
 * without sending it, -ETIMEDOUT.
 */
int weftd_wait_notify(struct weftd *w, const char *needle, int ms);

/* The same for a "STATUS=" line containing substring (e.g. "2 workers"). */
int weftd_wait_status(struct weftd *w, const char *substring, int ms);

/* Drain and skip what came so far: the waits look only at later datagrams. */
void weftd_notify_skip(struct weftd *w);

/* Datagram i (0 = the first weftd sent), or NULL; valid until weftd_cleanup(). */
const char *weftd_notify_text(struct weftd *w, int i);

/* How many datagrams weftd sent so far (after draining). */
int weftd_notify_count(struct weftd *w);

/* Send sig and wait (60 s, then SIGKILL). Returns the exit status (0-255, or
 * 128+signal if it died of one), or -ETIMEDOUT. The whole process group is
 * killed before the master is reaped, so no worker outlives it. */
int weftd_stop(struct weftd *w, int sig);

/* Wait up to timeout_ms for weftd to exit (reaped as in weftd_stop); the status, or
 * -ETIMEDOUT. */
int weftd_wait(struct weftd *w, int timeout_ms);

/* Everything weftd wrote to stderr (malloc'd, NUL-terminated; "" if none). */
char *weftd_stderr(const struct weftd *w);

/* True if stderr contains needle. */
bool weftd_stderr_contains(const struct weftd *w, const char *needle);

/* Kill weftd's process group if still running, reap it, remove the temp dir. */
void weftd_cleanup(struct weftd *w);

/* Mark w as shared by several tests (a group fixture): itest_teardown() leaves it, the
 * group's teardown (weftd_cleanup) or the atexit handler ends it. */
void weftd_share(struct weftd *w);

/* A blocking TCP connection to 127.0.0.1:port, or -errno. */
int weftd_connect(uint16_t port);

/*
 * cmocka teardown for every integration test: kills the process group of
 * every weftd the test left (not shared ones), prints its command, the
 * datagrams it sent and its stderr (lines prefixed "weftd PID| "), removes
 * its dir. Returns 0. Also run at exit for whatever is left, shared or not.
 */
int itest_teardown(void **state);

/*
 * The helpers below are for the tests' own side; the asserting ones fail
 * the calling cmocka test.
 */

/* Print weftd's stderr so a failing test shows why. */
void weftd_show_stderr(const struct weftd *w);

/* weftd_start(w, conf, NULL), asserting it is ready (stderr shown if not). */
void weftd_start_ok(struct weftd *w, const char *conf);

/* weftd_reload(w), asserting it returns want (stderr shown if not). */
void weftd_reload_expect(struct weftd *w, int want);

/* Wait until stderr has needle (true), or ms pass or weftd exits without it (false).
 * Woken by inotify on the stderr file, not by polling. */
bool weftd_wait_log(struct weftd *w, const char *needle, int ms);

/* How many times needle occurs in stderr. */
int weftd_log_count(const struct weftd *w, const char *needle);

/* Wait until needle occurs at least n times in stderr; true if it does within ms. */
bool weftd_wait_log_count(struct weftd *w, const char *needle, int n, int ms);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t itest_now_ms(void);

/* Sleep ms milliseconds, across signals. Only where time passing is what a test checks. */
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

/* The state letter of pid in /proc/PID/stat (R, S, T, Z...), or 0 if it is gone. */
char itest_proc_state(pid_t pid);

/* Wait up to ms until pid is in state (e.g. 'T' stopped, 'Z' zombie); true if it is. */
bool itest_wait_state(pid_t pid, char state, int ms);

#endif
