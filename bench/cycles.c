/* SPDX-License-Identifier: MIT */
/* cycles.c: N connect-echo-close cycles, C in parallel, every echoed byte checked. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

/*
 * One cycle: a non-blocking connect from 127.0.0.<2 + cycle % sources> (IP_BIND_ADDRESS_NO_PORT,
 * so the TIME_WAIT sockets the cycles leave behind spread over many port spaces), one message
 * of -s bytes (a window of a random pattern, different per cycle), read it all back and compare,
 * close. The client closes first, so the server sees EOF and closes its side. Any failed cycle
 * (refused, reset, early EOF, wrong byte, stalled over 10 s) counts as an error; the summary
 * line is "cycles=N ok=K errors=E secs=T rate=R"; exit 0 only if every cycle succeeded within
 * the -d limit.
 */

#define STALL_NS 10000000000ull
#define MAX_SIZE 65536

struct cyc {
    int fd;
    uint64_t id;
    size_t off, sent, got;
    uint64_t t0;
    uint32_t events;    /* what epoll waits for on fd */
    bool connected;
};

static unsigned char pattern[2 * MAX_SIZE];
static struct sockaddr_in sa = { .sin_family = AF_INET };
static int epfd, sources = 16;
static size_t size = 64;
static uint64_t next_id, done_ok, errors;

static void
fail(struct cyc *c, const char *what, int err)
{
    if (errors < 10)
        fprintf(stderr, "cycles: cycle %llu: %s%s%s\n", (unsigned long long)c->id, what,
                err ? ": " : "", err ? strerror(err) : "");
    errors++;
    close(c->fd);
    c->fd = -1;
}

/* Starts cycle next_id in slot c; false (and an error counted) if it could not start. */
static bool
start(struct cyc *c)
{
    struct sockaddr_in src = { .sin_family = AF_INET };
    struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
    int one = 1;

    c->id = next_id++;
    c->off = (c->id * 2654435761u) % MAX_SIZE;
    c->sent = c->got = 0;
    c->connected = false;
    c->events = EPOLLOUT;
    c->t0 = bench_now_ns();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fail(c, "socket", errno);
        return false;
    }
    src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(c->id % (uint64_t)sources));
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
        fail(c, "bind", errno);
        return false;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        fail(c, "connect", errno);
        return false;
    }
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    return true;
}

/* Advances cycle c on readiness; true when it ended (well or not) and the slot is free. */
static bool
step(struct cyc *c)
{
    unsigned char buf[MAX_SIZE];

    if (!c->connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            fail(c, "connect", err);
            return true;
        }
        c->connected = true;
    }
    while (c->sent < size) {
        ssize_t w = send(c->fd, pattern + c->off + c->sent, size - c->sent, MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EAGAIN)
                break;
            fail(c, "send", errno);
            return true;
        }
        c->sent += (size_t)w;
    }
    if ((c->sent < size ? EPOLLIN | EPOLLOUT : EPOLLIN) != c->events) {
        struct epoll_event ev = { .data.ptr = c };

        ev.events = c->events = c->sent < size ? EPOLLIN | EPOLLOUT : EPOLLIN;
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    }
    for (;;) {
        ssize_t r = recv(c->fd, buf, sizeof(buf), 0);

        if (r < 0) {
            if (errno == EAGAIN)
                return false;
            fail(c, "recv", errno);
            return true;
        }
        if (r == 0) {
            fail(c, "early EOF", 0);
            return true;
        }
        if (c->got + (size_t)r > size || memcmp(buf, pattern + c->off + c->got, (size_t)r)) {
            fail(c, "wrong bytes echoed", 0);
            return true;
        }
        c->got += (size_t)r;
        if (c->got == size) {
            close(c->fd);
            c->fd = -1;
            done_ok++;
            return true;
        }
    }
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: cycles [-H host] -p port [-n cycles] [-c parallel] [-s size] [-S sources]"
               " [-d secs]\n"
               "  n (100000) connect-echo-close cycles, c (64) at a time, size (64) bytes each,\n"
               "  from 127.0.0.2 .. 127.0.0.<1 + sources (16)>; gives up after secs (300).\n");
}

int
main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 0, opt, par = 64;
    uint64_t n = 100000, t0, limit_ns;
    double limit_s = 300, secs;
    struct cyc *cs;
    unsigned active = 0;

    while ((opt = getopt(argc, argv, "H:p:n:c:s:S:d:h")) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 'c': par = atoi(optarg); break;
        case 's': size = strtoul(optarg, NULL, 10); break;
        case 'S': sources = atoi(optarg); break;
        case 'd': limit_s = atof(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (port <= 0 || par <= 0 || size == 0 || size > MAX_SIZE || sources < 1 || sources > 250 ||
        limit_s <= 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        usage(stderr);
        return 2;
    }
    sa.sin_port = htons((uint16_t)port);
    srandom((unsigned)bench_now_ns());
    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (unsigned char)random();
    epfd = epoll_create1(EPOLL_CLOEXEC);
    cs = calloc((size_t)par, sizeof(*cs));
    if (epfd < 0 || cs == NULL) {
        perror("cycles");
        return 2;
    }
    t0 = bench_now_ns();
    limit_ns = (uint64_t)(limit_s * 1e9);
    for (int i = 0; i < par; i++) {
        cs[i].fd = -1;
        while (next_id < n && cs[i].fd < 0)
            if (start(&cs[i]))
                active++;
    }
    while (active > 0 && bench_now_ns() - t0 < limit_ns) {
        struct epoll_event evs[256];
        int m = epoll_wait(epfd, evs, 256, 100);
        uint64_t now = bench_now_ns();

        for (int e = 0; e < m; e++) {
            struct cyc *c = evs[e].data.ptr;

            if (!step(c))
                continue;
            active--;
            while (next_id < n && c->fd < 0 && errors < n)
                if (start(c))
                    active++;
        }
        if (m == 0)
            for (int i = 0; i < par; i++)
                if (cs[i].fd >= 0 && now - cs[i].t0 > STALL_NS) {
                    fail(&cs[i], "stalled for 10 s", 0);
                    active--;
                    while (next_id < n && cs[i].fd < 0)
                        if (start(&cs[i]))
                            active++;
                }
    }
    secs = (double)(bench_now_ns() - t0) / 1e9;
    if (active > 0)
        fprintf(stderr, "cycles: time limit of %.0f s reached with %llu of %llu cycles done\n",
                limit_s, (unsigned long long)(done_ok + errors), (unsigned long long)n);
    printf("cycles=%llu ok=%llu errors=%llu secs=%.1f rate=%.0f\n", (unsigned long long)n,
           (unsigned long long)done_ok, (unsigned long long)errors, secs, (double)done_ok / secs);
    for (int i = 0; i < par; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    return done_ok == n ? 0 : 1;
}
