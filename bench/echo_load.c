/* SPDX-License-Identifier: MIT */
/* echo_load.c: closed-loop echo load generator on epoll; verifies every byte, p50/p99 latency. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
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
 * Each connection has exactly one message in flight: send it, read the same number of bytes
 * back, compare them with what was sent, record the round trip, send the next one. Message k
 * of connection i is a window of a random pattern starting at a different offset each time,
 * so a server that mixes up connections or replays old data is caught by the comparison.
 */

#define PATTERN_SLACK 4096      /* distinct message offsets inside the pattern */
#define RBUF_SIZE (256 * 1024)

/* Log-linear histogram of nanoseconds: 32 sub-buckets per power of two (~3% precision). */
#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64 * HIST_SUB)

struct conn {
    int fd;
    uint32_t id;
    uint64_t seq;       /* messages started on this connection */
    size_t off;         /* offset of the current message in the pattern */
    size_t sent;        /* bytes of the current message written */
    size_t recvd;       /* bytes of the current message read back and verified */
    uint64_t t0;        /* when the current message started, ns */
    bool want_out;      /* EPOLLOUT armed */
};

static uint64_t hist[HIST_BUCKETS];
static unsigned char *pattern;
static size_t msg_size = 1024;
static int epfd = -1;

static unsigned
hist_index(uint64_t v)
{
    unsigned msb, shift;

    if (v < HIST_SUB)
        return (unsigned)v;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - HIST_SUB_BITS;
    return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) & (HIST_SUB - 1));
}

/* The middle of bucket idx, the value a percentile falling into it reports. */
static uint64_t
hist_value(unsigned idx)
{
    unsigned shift;

    if (idx < HIST_SUB)
        return idx;
    shift = idx / HIST_SUB - 1;
    return (((uint64_t)(HIST_SUB + idx % HIST_SUB)) << shift) + ((1ull << shift) >> 1);
}

static uint64_t
hist_percentile(uint64_t total, double p)
{
    uint64_t want = (uint64_t)((double)total * p + 0.5), seen = 0;

    if (want == 0)
        want = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= want)
            return hist_value(i);
    }
    return 0;
}

/* utime + stime of a process (all its threads), in clock ticks; -1 if unreadable. */
static long long
proc_cpu_ticks(int pid)
{
    char path[64], buf[4096], *p;
    unsigned long long ut, st;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    p = strrchr(buf, ')');      /* the command name may hold spaces and parentheses */
    if (p == NULL)
        return -1;
    /* After ")": field 3 (state) ... field 14 utime, field 15 stime. */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

static double
self_cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void
die(const char *what)
{
    fprintf(stderr, "echo_load: %s: %s\n", what, strerror(errno));
    exit(2);
}

static void
arm(struct conn *c, bool out)
{
    struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c };

    if (c->want_out == out)
        return;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl");
    c->want_out = out;
}

/* Writes as much of the current message as the socket takes; arms EPOLLOUT for the rest. */
static void
pump_out(struct conn *c)
{
    while (c->sent < msg_size) {
        ssize_t n = send(c->fd, pattern + c->off + c->sent, msg_size - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                arm(c, true);
                return;
            }
            fprintf(stderr, "echo_load: connection %u: send: %s\n", c->id, strerror(errno));
            exit(2);
        }
        c->sent += (size_t)n;
    }
    arm(c, false);
}

static void
start_message(struct conn *c, uint64_t t)
{
    c->off = (c->id * 977u + c->seq * 131u) % PATTERN_SLACK;
    c->seq++;
    c->sent = 0;
    c->recvd = 0;
    c->t0 = t;
    pump_out(c);
}

static int
connect_to(const struct sockaddr_in *sa)
{
    int one = 1, fd;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
        die("connect");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        die("fcntl");
    return fd;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: echo_load [-H host] -p port [-c conns] [-s size] [-d secs] [-w secs] [-P pid]\n"
            "  -H  server IPv4 address (127.0.0.1)\n"
            "  -p  server port\n"
            "  -c  connections, each with one message in flight (100)\n"
            "  -s  message size in bytes (1024)\n"
            "  -d  measured duration in seconds (5)\n"
            "  -w  warm-up seconds before measuring (1)\n"
            "  -P  server pid: report its CPU time per request from /proc/PID/stat\n"
            "Prints one line of key=value results; exits 1 if a byte came back wrong.\n");
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    const char *host = "127.0.0.1";
    unsigned nconns = 100;
    double duration = 5, warmup = 1;
    int port = 0, pid = 0, opt;
    struct conn *conns;
    unsigned char *rbuf;
    struct epoll_event evs[256];
    uint64_t measured = 0, bytes = 0, t_start, t_measure, t_end, now;
    long long cpu0 = -1, cpu1 = -1;
    double self0 = 0, self1 = 0;
    bool measuring = false;

    while ((opt = getopt(argc, argv, "H:p:c:s:d:w:P:h")) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'c': nconns = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': msg_size = strtoul(optarg, NULL, 10); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'P': pid = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (port <= 0 || port > 65535 || nconns == 0 || msg_size == 0 || duration <= 0 ||
        inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        usage(stderr);
        return 2;
    }
    sa.sin_port = htons((uint16_t)port);
    signal(SIGPIPE, SIG_IGN);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < nconns + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    pattern = malloc(msg_size + PATTERN_SLACK);
    rbuf = malloc(RBUF_SIZE);
    conns = calloc(nconns, sizeof(*conns));
    if (pattern == NULL || rbuf == NULL || conns == NULL)
        die("malloc");
    uint64_t x = 0x9e3779b97f4a7c15ull;     /* xorshift64: any bytes, the same on every run */
    for (size_t i = 0; i < msg_size + PATTERN_SLACK; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pattern[i] = (unsigned char)(x >> 24);
    }

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1");
    for (unsigned i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

        c->id = i;
        c->fd = connect_to(&sa);
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl");
    }

    t_start = bench_now_ns();
    t_measure = t_start + (uint64_t)(warmup * 1e9);
    t_end = t_measure + (uint64_t)(duration * 1e9);
    for (unsigned i = 0; i < nconns; i++)
        start_message(&conns[i], t_start);
    if (warmup <= 0) {
        measuring = true;
        cpu0 = pid ? proc_cpu_ticks(pid) : -1;
        self0 = self_cpu_seconds();
    }

    for (;;) {
        int n = epoll_wait(epfd, evs, 256, 50);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        now = bench_now_ns();
        if (!measuring && now >= t_measure) {
            measuring = true;
            t_measure = now;
            t_end = now + (uint64_t)(duration * 1e9);
            cpu0 = pid ? proc_cpu_ticks(pid) : -1;
            self0 = self_cpu_seconds();
        }
        if (measuring && now >= t_end)
            break;
        for (int e = 0; e < n; e++) {
            struct conn *c = evs[e].data.ptr;

            if (evs[e].events & EPOLLOUT)
                pump_out(c);
            if (!(evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                continue;
            ssize_t r = recv(c->fd, rbuf, RBUF_SIZE, 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (r <= 0) {
                fprintf(stderr, "echo_load: connection %u: %s after %llu messages\n", c->id,
                        r == 0 ? "server closed the connection" : strerror(errno),
                        (unsigned long long)c->seq);
                return 2;
            }
            if ((size_t)r > c->sent - c->recvd) {
                fprintf(stderr, "echo_load: connection %u: %zd bytes back, only %zu sent\n",
                        c->id, r, c->sent - c->recvd);
                return 1;
            }
            if (memcmp(rbuf, pattern + c->off + c->recvd, (size_t)r) != 0) {
                size_t k = 0;
                while (rbuf[k] == pattern[c->off + c->recvd + k])
                    k++;
                fprintf(stderr, "echo_load: connection %u: message %llu: wrong byte at %zu\n",
                        c->id, (unsigned long long)c->seq, c->recvd + k);
                return 1;
            }
            c->recvd += (size_t)r;
            if (c->recvd == msg_size) {
                uint64_t t = bench_now_ns();
                if (measuring) {
                    hist[hist_index(t - c->t0)]++;
                    measured++;
                    bytes += msg_size;
                }
                start_message(c, t);
            }
        }
    }
    cpu1 = pid ? proc_cpu_ticks(pid) : -1;
    self1 = self_cpu_seconds();

    double secs = (double)(bench_now_ns() - t_measure) / 1e9;
    double tick = (double)sysconf(_SC_CLK_TCK);
    printf("requests=%llu rps=%.0f mibps=%.1f p50_us=%.1f p99_us=%.1f client_cpu_pct=%.0f",
           (unsigned long long)measured, (double)measured / secs,
           (double)bytes / secs / (1024.0 * 1024.0), (double)hist_percentile(measured, 0.50) / 1e3,
           (double)hist_percentile(measured, 0.99) / 1e3, (self1 - self0) / secs * 100.0);
    if (cpu0 >= 0 && cpu1 >= 0 && measured > 0)
        printf(" server_cpu_pct=%.0f server_us_per_req=%.2f",
               (double)(cpu1 - cpu0) / tick / secs * 100.0,
               (double)(cpu1 - cpu0) / tick * 1e6 / (double)measured);
    printf("\n");
    for (unsigned i = 0; i < nconns; i++)
        close(conns[i].fd);
    free(conns);
    free(rbuf);
    free(pattern);
    return 0;
}
