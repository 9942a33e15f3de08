/* SPDX-License-Identifier: MIT */
/* idle_conns.c: opens N idle connections to a server and reports its RSS growth per connection. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
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
 * The server's VmRSS is read before and after; the difference over N is what one idle
 * connection costs it. Connections are opened in batches, and each batch waits until the
 * server holds that many more descriptors (it has accepted them), so a short listen backlog
 * only slows the run down instead of dropping SYNs into one-second retransmits. Source
 * addresses rotate over 127.0.0.2, .3, ... with IP_BIND_ADDRESS_NO_PORT, so ephemeral ports
 * (and the TIME_WAIT left by earlier runs) never run out.
 */

#define BATCH 200
#define PER_SOURCE 20000

static void
usage(FILE *f)
{
    fprintf(f, "usage: idle_conns [-H host] -p port -P server_pid [-n conns]\n"
               "  opens conns (10000) idle connections to host (127.0.0.1):port, waits until\n"
               "  the server has accepted them, and prints its VmRSS growth per connection.\n");
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    const char *host = "127.0.0.1";
    int port = 0, pid = 0, opt, epfd;
    long base_fds;
    unsigned n = 10000;
    long rss0, rss1, prev;
    int *fds;

    while ((opt = getopt(argc, argv, "H:p:P:n:h")) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'P': pid = atoi(optarg); break;
        case 'n': n = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (port <= 0 || pid <= 0 || n == 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        usage(stderr);
        return 2;
    }
    sa.sin_port = htons((uint16_t)port);

    if (bench_nofile_for("idle_conns", (unsigned long)n + 64, n) < 0)
        return 2;
    fds = calloc(n, sizeof(*fds));
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (fds == NULL || epfd < 0) {
        perror("idle_conns");
        return 2;
    }
    base_fds = bench_pid_fd_count(pid);
    rss0 = bench_rss_kib(pid);
    if (base_fds < 0 || rss0 < 0) {
        fprintf(stderr, "idle_conns: cannot read /proc/%d\n", pid);
        return 2;
    }

    for (unsigned i = 0; i < n; i += BATCH) {
        unsigned end = i + BATCH < n ? i + BATCH : n, pending = 0;

        for (unsigned k = i; k < end; k++) {
            struct sockaddr_in src = { .sin_family = AF_INET };
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

            if (fd < 0) {
                perror("idle_conns: socket");
                return 2;
            }
            src.sin_addr.s_addr = htonl(0x7f000002u + k / PER_SOURCE);
            if (bench_connect_start("idle_conns", epfd, fds, k, fd, &src, &sa) < 0)
                return 2;
            pending++;
        }
        while (pending > 0) {
            struct epoll_event evs[BATCH];
            int m = epoll_wait(epfd, evs, BATCH, 10000);
            if (m <= 0) {
                fprintf(stderr, "idle_conns: connects stalled after %u\n", i);
                return 2;
            }
            if (bench_connects_done("idle_conns", epfd, fds, evs, m) < 0)
                return 2;
            pending -= (unsigned)m;
        }
        /* Wait (up to 10 s) until the server has accepted this batch. */
        for (int tries = 0; bench_pid_fd_count(pid) < base_fds + (long)end; tries++) {
            if (tries == 1000) {
                fprintf(stderr, "idle_conns: server holds %ld descriptors, expected %ld\n",
                        bench_pid_fd_count(pid), base_fds + (long)end);
                return 2;
            }
            bench_sleep_ms(10);
        }
    }

    /* Let lazy per-connection work (a first callback, a deferred allocation) finish. */
    prev = -1;
    for (int tries = 0; tries < 20; tries++) {
        bench_sleep_ms(200);
        rss1 = bench_rss_kib(pid);
        if (rss1 == prev)
            break;
        prev = rss1;
    }
    rss1 = bench_rss_kib(pid);
    printf("conns=%u rss_before_kib=%ld rss_after_kib=%ld kib_per_conn=%.2f\n", n, rss0, rss1,
           (double)(rss1 - rss0) / n);
    for (unsigned k = 0; k < n; k++)
        close(fds[k]);
    free(fds);
    return 0;
}
