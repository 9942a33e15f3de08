/* SPDX-License-Identifier: MIT */
/* echo_epoll.c: the baseline: a minimal single-threaded echo server on plain epoll. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

/*
 * What a C programmer would write by hand: level-triggered epoll, one read per readiness
 * into a shared buffer, write it straight back; only a short write allocates, and then the
 * connection stops reading until the remainder is out. An idle connection costs one small
 * struct.
 */

#define BUF_SIZE (256 * 1024)

struct conn {
    int fd;
    char *pend;         /* unsent remainder of the last echo, or NULL */
    size_t plen, poff;
};

static int epfd;
static char buf[BUF_SIZE];

static void
conn_close(struct conn *c)
{
    close(c->fd);       /* also removes it from the epoll set */
    free(c->pend);
    free(c);
}

static void
conn_mod(struct conn *c, unsigned events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };

    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Returns -1 if the connection must close. */
static int
conn_flush(struct conn *c)
{
    while (c->poff < c->plen) {
        ssize_t n = send(c->fd, c->pend + c->poff, c->plen - c->poff, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->poff += (size_t)n;
    }
    free(c->pend);
    c->pend = NULL;
    conn_mod(c, EPOLLIN);
    return 0;
}

static int
conn_read(struct conn *c)
{
    ssize_t n = recv(c->fd, buf, sizeof(buf), 0), w;

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return -1;
    w = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (w < 0) {
        if (errno != EAGAIN)
            return -1;
        w = 0;
    }
    if (w < n) {
        c->pend = malloc((size_t)(n - w));
        if (c->pend == NULL)
            return -1;
        memcpy(c->pend, buf + w, (size_t)(n - w));
        c->plen = (size_t)(n - w);
        c->poff = 0;
        conn_mod(c, EPOLLOUT);
    }
    return 0;
}

static void
accept_all(int lfd)
{
    int one = 1;

    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "echo_epoll: accept: %s\n", strerror(errno));
            return;
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            conn_close(c);
    }
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    struct epoll_event evs[256], lev;
    int lfd, one = 1;

    if (bench_echo_server_init("echo_epoll", argc, argv, &sa) != 0)
        return 2;

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
        fprintf(stderr, "echo_epoll: listen on %s:%s: %s\n", argv[1], argv[2], strerror(errno));
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    lev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = NULL };
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        perror("echo_epoll: epoll");
        return 1;
    }

    for (;;) {
        int n = epoll_wait(epfd, evs, 256, -1);
        if (n < 0 && errno != EINTR) {
            perror("echo_epoll: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            int rc = 0;

            if (c == NULL) {
                accept_all(lfd);
                continue;
            }
            if (c->pend != NULL)
                rc = (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ? conn_flush(c) : 0;
            else
                rc = conn_read(c);
            if (rc < 0)
                conn_close(c);
        }
    }
}
