/* SPDX-License-Identifier: MIT */
/*
 * fd_wait.c: what a wake-up on a ready fd costs: a raw libevent event, weft_add_reader, and
 * a task in weft_wait_readable, each on the same self-feeding socketpair (the callback or
 * the task reads the byte and writes the next, so every loop iteration has one ready fd),
 * beside an empty loop iteration. The bar: weft_wait_readable costs no more than
 * one loop iteration over the raw event. Prints ns per wake-up, the ratios, and the
 * difference in empty iterations; rounds alternate so a noisy neighbour hits all alike.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <weft/weft.h>

static long n_wakes;
static int sv[2];

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One wake-up's work: take the byte, feed the next. */
static int
bounce(void)
{
    char c;

    if (read(sv[0], &c, 1) != 1 || write(sv[1], &c, 1) != 1)
        return -1;
    return 0;
}

/* ---- raw libevent: a persistent EV_READ event ---- */

static long raw_left;

static void
raw_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    if (bounce() < 0 || --raw_left == 0)
        event_base_loopbreak(arg);
}

static double
run_raw(struct weft_loop *loop)
{
    struct event_base *base = weft_loop_get_base(loop);
    struct event *ev = event_new(base, sv[0], EV_READ | EV_PERSIST, raw_cb, base);
    uint64_t t0;

    if (ev == NULL || event_add(ev, NULL) < 0)
        return -1;
    raw_left = n_wakes;
    t0 = now_ns();
    event_base_dispatch(base);
    t0 = now_ns() - t0;
    event_free(ev);
    return (double)t0 / (double)n_wakes;
}

/* ---- weft_add_reader ---- */

static long reader_left;

static int
reader_cb(struct weft_loop *loop, int fd, void *arg)
{
    (void)arg;
    if (bounce() < 0 || --reader_left == 0) {
        weft_remove_reader(loop, fd);
        weft_loop_stop(loop);
    }
    return 0;
}

static double
run_reader(struct weft_loop *loop)
{
    uint64_t t0;

    reader_left = n_wakes;
    if (weft_add_reader(loop, sv[0], reader_cb, NULL) < 0)
        return -1;
    t0 = now_ns();
    weft_loop_run(loop);
    return (double)(now_ns() - t0) / (double)n_wakes;
}

/* ---- a task in weft_wait_readable ---- */

static intptr_t
waiter(void *arg)
{
    for (long i = 0; i < n_wakes; i++)
        if (weft_wait_readable(sv[0], -1) < 0 || bounce() < 0)
            return -1;
    weft_loop_stop(arg);
    return 0;
}

static double
run_wait(struct weft_loop *loop)
{
    struct weft_task *t;
    uint64_t t0;

    t = weft_task_spawn(loop, waiter, loop, NULL);
    if (t == NULL)
        return -1;
    t0 = now_ns();
    weft_loop_run(loop);
    t0 = now_ns() - t0;
    weft_task_unref(t);
    return (double)t0 / (double)n_wakes;
}

/* ---- an empty iteration: epoll_wait(0) with nothing ready, no callback ---- */

static double
run_empty(struct weft_loop *loop)
{
    struct event_base *base = weft_loop_get_base(loop);
    uint64_t t0 = now_ns();

    for (long i = 0; i < n_wakes; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    return (double)(now_ns() - t0) / (double)n_wakes;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    enum { ROUNDS = 7 };
    double raw[ROUNDS], rd[ROUNDS], wt[ROUNDS], em[ROUNDS];
    struct weft_loop *loop;
    char c = 'x';

    n_wakes = argc > 1 ? atol(argv[1]) : 200000;
    loop = weft_loop_new();
    if (argc > 2) {
        /* One variant once, for counting its system calls (strace -c). */
        double ns;

        if (loop == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0 ||
            write(sv[1], &c, 1) != 1)
            return 1;
        ns = strcmp(argv[2], "raw") == 0      ? run_raw(loop)
             : strcmp(argv[2], "reader") == 0 ? run_reader(loop)
             : strcmp(argv[2], "wait") == 0   ? run_wait(loop)
                                              : -1;
        if (ns < 0) {
            fprintf(stderr, "usage: fd_wait [N [raw|reader|wait]]\n");
            return 2;
        }
        printf("%s: %.1f ns per wake-up\n", argv[2], ns);
        weft_loop_free(loop);
        return 0;
    }
    if (loop == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0) {
        perror("fd_wait");
        return 1;
    }
    if (write(sv[1], &c, 1) != 1)
        return 1;
    for (int r = 0; r < ROUNDS; r++) {
        raw[r] = run_raw(loop);
        rd[r] = run_reader(loop);
        wt[r] = run_wait(loop);
        em[r] = run_empty(loop);
        if (raw[r] < 0 || rd[r] < 0 || wt[r] < 0) {
            fprintf(stderr, "fd_wait: a run failed\n");
            return 1;
        }
    }
    qsort(raw, ROUNDS, sizeof(double), cmp);
    qsort(rd, ROUNDS, sizeof(double), cmp);
    qsort(wt, ROUNDS, sizeof(double), cmp);
    qsort(em, ROUNDS, sizeof(double), cmp);
    /* Medians of the rounds. */
    printf("wake-ups on a ready fd (%ld per run, median of %d rounds):\n", n_wakes, ROUNDS);
    printf("  raw libevent event      %7.1f ns\n", raw[ROUNDS / 2]);
    printf("  weft_add_reader         %7.1f ns  (%.2fx raw)\n", rd[ROUNDS / 2],
           rd[ROUNDS / 2] / raw[ROUNDS / 2]);
    printf("  weft_wait_readable      %7.1f ns  (%.2fx raw)\n", wt[ROUNDS / 2],
           wt[ROUNDS / 2] / raw[ROUNDS / 2]);
    printf("  empty loop iteration    %7.1f ns  (epoll_wait with nothing ready)\n", em[ROUNDS / 2]);
    /* The raw run's wake-up is one whole iteration: epoll_wait, the callback, its read and
     * write. The bar is the wait's extra cost against that. */
    printf("weft_wait_readable over raw: %+.1f ns = %.2f raw iterations, %.2f empty ones "
           "(bar: <= 1 iteration)\n",
           wt[ROUNDS / 2] - raw[ROUNDS / 2], (wt[ROUNDS / 2] - raw[ROUNDS / 2]) / raw[ROUNDS / 2],
           (wt[ROUNDS / 2] - raw[ROUNDS / 2]) / em[ROUNDS / 2]);
    weft_loop_free(loop);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
