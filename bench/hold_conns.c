/* SPDX-License-Identifier: MIT */
/* hold_conns.c: opens N idle connections, holds them until SIGUSR1, then checks each echoes. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/*
 * bench/scale.sh runs several of these at once, each below its own descriptor limit and from
 * its own source address (-a), so together they hold more connections than one process may.
 * Phases: connect all (in batches of BATCH, each batch waiting for its connects to complete),
 * print "ready N" and wait for SIGUSR1 (at most -t seconds), then send one byte on every
 * connection and read it back: "conns=N echo_ok=K echo_fail=F"; exit 0 only if K == N.
 * A connect completes once the server's kernel has the connection queued, not accepted; when
 * the accept queue overflows, the kernel may answer with SYN cookies and drop the final ACK, so
 * an idle client would hold a connection the server never saw. With -P PID,PID... (the
 * server's workers) each batch waits until they hold that many more descriptors, as
 * idle_conns does; the script runs these processes one after the other.
 */

#define BATCH 250
#define STALL_MS 60000

static void
usage(FILE *f)
{
    fprintf(f, "usage: hold_conns [-H host] -p port -n conns [-a source] [-t secs] [-P pid,...]\n"
               "  opens conns connections to host (127.0.0.1):port from 127.0.0.<source> (2),\n"
               "  prints \"ready N\", waits for SIGUSR1 (at most secs, 600), then checks that\n"
               "  every connection echoes one byte. Exit 0 only if all of them do.\n"
               "  -P: after each batch, wait until these server pids hold that many more fds.\n");
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa = { .sin_family = AF_INET }, src = { .sin_family = AF_INET };
    const char *host = "127.0.0.1", *pids = NULL;
    long base_fds = 0;
    int port = 0, opt, epfd, source = 2, hold_s = 600;
    unsigned n = 0, ok = 0, fail = 0, pending;
    struct timespec ts;
    sigset_t set;
    int *fds;

    while ((opt = getopt(argc, argv, "H:p:n:a:t:P:h")) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': n = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'a': source = atoi(optarg); break;
        case 't': hold_s = atoi(optarg); break;
        case 'P': pids = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (port <= 0 || n == 0 || source < 1 || source > 254 ||
        inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        usage(stderr);
        return 2;
    }
    sa.sin_port = htons((uint16_t)port);
    src.sin_addr.s_addr = htonl(0x7f000000u + (uint32_t)source);

    if (bench_nofile_for("hold_conns", (unsigned long)n + 16, n) < 0)
        return 2;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    fds = calloc(n, sizeof(*fds));
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (fds == NULL || epfd < 0) {
        perror("hold_conns");
        return 2;
    }

    if (pids != NULL && (base_fds = bench_fd_count(pids)) < 0) {
        fprintf(stderr, "hold_conns: cannot read /proc/PID/fd of %s\n", pids);
        return 2;
    }
    for (unsigned i = 0; i < n; i += BATCH) {
        unsigned end = i + BATCH < n ? i + BATCH : n;
        uint64_t deadline = bench_now_ms() + STALL_MS;

        pending = 0;
        for (unsigned k = i; k < end; k++) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

            if (fd < 0) {
                fprintf(stderr, "hold_conns: socket %u: %s\n", k, strerror(errno));
                return 2;
            }
            if (bench_connect_start("hold_conns", epfd, fds, k, fd, &src, &sa) < 0)
                return 2;
            pending++;
        }
        while (pending > 0) {
            struct epoll_event evs[BATCH];
            int m = epoll_wait(epfd, evs, BATCH, 1000);

            if (m < 0 && errno != EINTR) {
                perror("hold_conns: epoll_wait");
                return 2;
            }
            if (bench_now_ms() > deadline) {
                fprintf(stderr, "hold_conns: %u connects still pending after %d s (at %u)\n",
                        pending, STALL_MS / 1000, i);
                return 2;
            }
            if (bench_connects_done("hold_conns", epfd, fds, evs, m < 0 ? 0 : m) < 0)
                return 2;
            pending -= m < 0 ? 0 : (unsigned)m;
        }
        while (pids != NULL && bench_fd_count(pids) < base_fds + (long)end) {
            struct timespec pause = { 0, 10000000 };

            if (bench_now_ms() > deadline) {
                fprintf(stderr, "hold_conns: the server holds %ld more descriptors, expected %u\n",
                        bench_fd_count(pids) - base_fds, end);
                return 2;
            }
            nanosleep(&pause, NULL);
        }
    }
    printf("ready %u\n", n);
    fflush(stdout);

    ts.tv_sec = hold_s;
    ts.tv_nsec = 0;
    if (sigtimedwait(&set, NULL, &ts) < 0)
        fprintf(stderr, "hold_conns: no SIGUSR1 within %d s: checking now\n", hold_s);

    /* One byte each, a different one per connection, then read them all back. */
    pending = 0;
    for (unsigned k = 0; k < n; k++) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = k };
        unsigned char b = (unsigned char)('A' + k % 58);

        if (send(fds[k], &b, 1, MSG_NOSIGNAL) != 1) {
            fail++;
            continue;
        }
        epoll_ctl(epfd, EPOLL_CTL_ADD, fds[k], &ev);
        pending++;
    }
    for (uint64_t deadline = bench_now_ms() + STALL_MS; pending > 0 && bench_now_ms() < deadline;) {
        struct epoll_event evs[BATCH];
        int m = epoll_wait(epfd, evs, BATCH, 1000);

        for (int e = 0; e < m; e++) {
            unsigned k = evs[e].data.u32;
            unsigned char b;
            ssize_t r = recv(fds[k], &b, 1, 0);

            if (r < 0 && errno == EAGAIN)
                continue;
            epoll_ctl(epfd, EPOLL_CTL_DEL, fds[k], NULL);
            pending--;
            if (r == 1 && b == (unsigned char)('A' + k % 58))
                ok++;
            else
                fail++;
        }
    }
    fail += pending;
    printf("conns=%u echo_ok=%u echo_fail=%u\n", n, ok, fail);
    for (unsigned k = 0; k < n; k++)
        close(fds[k]);
    free(fds);
    return ok == n ? 0 : 1;
}
