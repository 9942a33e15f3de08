/* SPDX-License-Identifier: MIT */
/* common.h: helpers shared by the bench programs (load generators, probes, peer echo servers). */
#ifndef WEFT_BENCH_COMMON_H
#define WEFT_BENCH_COMMON_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/epoll.h>

/* CLOCK_MONOTONIC in nanoseconds and in milliseconds. */
uint64_t bench_now_ns(void);
uint64_t bench_now_ms(void);

void bench_sleep_ms(long ms);

/* Descriptors held by the processes in pids (comma-separated), or -1 if one cannot be read. */
long bench_fd_count(const char *pids);

/* Descriptors held by pid, or -1. */
long bench_pid_fd_count(int pid);

/* VmRSS of pid in KiB, or -1. */
long bench_rss_kib(int pid);

/*
 * Raises RLIMIT_NOFILE's soft limit to the hard one if it is below need; 0 if the limit is then
 * at least need, else -1 after "PROG: RLIMIT_NOFILE is L, N connections need more" (with
 * conns as N).
 */
int bench_nofile_for(const char *prog, unsigned long need, unsigned conns);

/*
 * The peer echo servers' command line, "PROG HOST PORT", into *sa (0; 2 after the usage line);
 * then SIGPIPE ignored and the soft descriptor limit raised to the hard one.
 */
int bench_echo_server_init(const char *prog, int argc, char **argv, struct sockaddr_in *sa);

/*
 * Starts a non-blocking connect of fd (connection k) from src (IP_BIND_ADDRESS_NO_PORT: no port
 * picked yet) to dst, stores fd in fds[k] and adds it to epfd for EPOLLOUT with data.u32 = k.
 * 0, or -1 after "PROG: connection K: error".
 */
int bench_connect_start(const char *prog, int epfd, int *fds, unsigned k, int fd,
                        const struct sockaddr_in *src, const struct sockaddr_in *dst);

/*
 * The m events of bench_connect_start's connects that epoll_wait returned: each connect must
 * have succeeded, and its fd leaves epfd. m, or -1 after "PROG: connection K: error".
 */
int bench_connects_done(const char *prog, int epfd, const int *fds, const struct epoll_event *evs,
                        int m);

#endif
