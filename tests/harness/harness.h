/* SPDX-License-Identifier: MIT */
/* harness.h: fixtures shared by the tests: loops with deadlines, socket pairs, free ports. */
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

/* A port that was free a moment ago on 127.0.0.1 (bind to 0, read, close). */
uint16_t harness_free_port(void);

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

#endif
