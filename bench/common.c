/* SPDX-License-Identifier: MIT */
/* common.c: helpers shared by the bench programs; see common.h. */
#define _GNU_SOURCE
#include "common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
bench_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
bench_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

long
bench_fd_count(const char *pids)
{
    char path[64];
    const char *p = pids;
    long n = 0;

    while (*p) {
        long pid = strtol(p, (char **)&p, 10);
        struct dirent *d;
        DIR *dir;

        snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
        dir = opendir(path);
        if (dir == NULL)
            return -1;
        while ((d = readdir(dir)) != NULL)
            n += d->d_name[0] != '.';
        closedir(dir);
        while (*p == ',')
            p++;
    }
    return n;
}

long
bench_pid_fd_count(int pid)
{
    char s[24];

    snprintf(s, sizeof(s), "%d", pid);
    return bench_fd_count(s);
}

long
bench_rss_kib(int pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

int
bench_nofile_for(const char *prog, unsigned long need, unsigned conns)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < need) {
            fprintf(stderr, "%s: RLIMIT_NOFILE is %lu, %u connections need more\n", prog,
                    (unsigned long)rl.rlim_cur, conns);
            return -1;
        }
    }
    return 0;
}

int
bench_echo_server_init(const char *prog, int argc, char **argv, struct sockaddr_in *sa)
{
    struct rlimit rl;

    if (argc != 3 || inet_pton(AF_INET, argv[1], &sa->sin_addr) != 1) {
        fprintf(stderr, "usage: %s HOST PORT\n", prog);
        return 2;
    }
    sa->sin_port = htons((uint16_t)atoi(argv[2]));
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return 0;
}

int
bench_connect_start(const char *prog, int epfd, int *fds, unsigned k, int fd,
                    const struct sockaddr_in *src, const struct sockaddr_in *dst)
{
    struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = k };
    int one = 1;

    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)src, sizeof(*src)) < 0 ||
        (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) < 0 && errno != EINPROGRESS)) {
        fprintf(stderr, "%s: connection %u: %s\n", prog, k, strerror(errno));
        return -1;
    }
    fds[k] = fd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

int
bench_connects_done(const char *prog, int epfd, const int *fds, const struct epoll_event *evs,
                    int m)
{
    for (int e = 0; e < m; e++) {
        unsigned k = evs[e].data.u32;
        int err = 0;
        socklen_t len = sizeof(err);

        getsockopt(fds[k], SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            fprintf(stderr, "%s: connection %u: %s\n", prog, k, strerror(err));
            return -1;
        }
        epoll_ctl(epfd, EPOLL_CTL_DEL, fds[k], NULL);
    }
    return m;
}
