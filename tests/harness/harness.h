/* SPDX-License-Identifier: MIT */
/* harness.h: fixtures shared by the tests: loops with deadlines, socket pairs, test ports. */
#ifndef WEFT_TEST_HARNESS_H
#define WEFT_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <weft/weft.h>

/* A new loop; fails the test if it cannot be made. */
struct weft_loop *harness_loop_new(void);

/*
 * Run loop iterations until *flag becomes true or timeout_ms passes.
 * Returns 0, or -ETIMEDOUT (a hang fails the test instead of the runner).
 */
int harness_run_until(struct weft_loop *loop, const bool *flag, uint64_t timeout_ms);

/* Run the loop for about ms milliseconds, whatever happens. */
void harness_run_for(struct weft_loop *loop, uint64_t ms);

/* A connected loopback TCP pair (real TCP: shutdown, RST and buffers as in life).
 * Both ends non-blocking. Returns 0 or -errno. */
int harness_tcp_pair(int *client, int *server);

/* A TCP listener on 127.0.0.1 at a free port; returns the fd and sets *port. */
int harness_listen(uint16_t *port);

/*
 * A port on 127.0.0.1 that no other test uses: ports come from 12000..27999
 * (below the ephemeral range 32768-60999, so no client socket or TIME_WAIT
 * holds them) in blocks of 32; this process owns a block by holding an
 * exclusive flock on ${WEFT_PORT_LOCK_DIR:-/run/lock/weft-test-ports}/block-<b>
 * for its whole life (the shell tests lock the same files). The first block
 * tried is (pid * 37) % 500; when a block's 32 ports are used another is locked.
 * A port is handed out only if it binds right now (a process outside the suite
 * may hold it); whatever binds it later should still retry on EADDRINUSE.
 * Never returns 0; aborts if all 500 blocks are taken.
 */
uint16_t harness_port(void);

/* Collects log lines in memory so a test can assert on them; install with
 * harness_log_capture(), read the last lines with harness_log_contains(). */
void harness_log_capture(void);
bool harness_log_contains(const char *needle);
void harness_log_clear(void);

/*
 * Spawn fn(arg) as a task on loop and run the loop until it is done or
 * timeout_ms passes (then it is cancelled and given 200 ms to finish), then
 * 20 ms more so the callbacks it left run. Returns its result, or -ETIMEDOUT.
 */
intptr_t harness_run_task(struct weft_loop *loop, weft_task_fn *fn, void *arg,
                          uint64_t timeout_ms);

/*
 * A minimal echo protocol, allocated by its factory and freed by
 * connection_lost, as a plugin's would be. Its counters live in the
 * harness_echo_stats given to the factory as arg; all_lost_flag becomes true
 * when lost reaches expect_lost.
 */
struct harness_echo_stats {
    int made, lost, lost_nonzero;
    size_t echoed;
    bool all_lost_flag;
    int expect_lost;
};

/* The weft_protocol_factory of that protocol: arg is a struct harness_echo_stats. */
struct weft_protocol *harness_echo_factory(void *arg);

/* The port of s's socket i (asserted to exist); its family in *family unless NULL. */
uint16_t harness_server_port(struct weft_server *s, size_t i, int *family);

/* A client socket connected to 127.0.0.1:port (or ::1 for AF_INET6); asserts it connects. */
int harness_client_connect(int family, uint16_t port);

/* Run the loop until *counter reaches want (at most about 5 s); asserts it does. */
void harness_run_until_count(struct weft_loop *loop, const int *counter, int want);

/* Send msg from the client fd and assert it comes back whole while the loop runs. */
void harness_client_echo(struct weft_loop *loop, int fd, const char *msg);

/* Read the client fd until EOF or reset while the loop runs (about 5 s at most);
 * returns 0 on EOF, -errno (-ECONNRESET...) or -ETIMEDOUT. */
int harness_client_wait_end(struct weft_loop *loop, int fd);

/* The loop of the running test: made by harness_setup(), freed by harness_teardown(). */
extern struct weft_loop *harness_loop;

/* What a test's tasks print with harness_say(), for assertions; emptied by harness_setup(). */
extern char harness_out[4096];

/* cmocka setup: harness_loop = a new loop (also *state), harness_out emptied. Returns 0. */
int harness_setup(void **state);

/* cmocka teardown: run harness_loop 10 ms more so the callbacks left behind run, then free
 * it. Returns 0. */
int harness_teardown(void **state);

/* Append printf-style text to harness_out (cut at its end). */
void harness_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
