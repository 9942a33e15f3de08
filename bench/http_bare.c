/* SPDX-License-Identifier: MIT */
/* http_bare.c: the floor for bench/http.sh: a bare epoll server answering each HTTP head. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

/*
 * The cheapest server that still speaks HTTP/1.1 to wrk: one thread, level-triggered epoll,
 * one recv per readiness into the connection's buffer, and for every complete request head in
 * it (up to the blank line; the request is not parsed, and bodies are not supported) the
 * same fixed response with a 13-byte body, all of them in one send. Keep-alive always;
 * pipelined heads are each answered, in order, and a partial head waits for the rest. A
 * short write keeps the remainder and stops reading until it is out, so pipelining cannot
 * grow memory. A head longer than IN_SIZE closes the connection.
 *
 * The response carries the headers weftd sends for a small file (with a fixed Date, ETag and
 * Last-Modified) so the bytes on the wire match; what weftd does beyond this server is
 * parsing, routing, stat'ing and building that head, which is the cost bench/http.sh
 * puts beside it.
 */

#define IN_SIZE 4096
#define MAX_EVENTS 256

static const char response[] =
    "HTTP/1.1 200 OK\r\n"
    "Date: Mon, 07 Dec 2026 12:00:00 GMT\r\n"
    "Server: weft/0.1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 13\r\n"
    "Last-Modified: Mon, 07 Dec 2026 12:00:00 GMT\r\n"
    "ETag: \"6b16cfa0-d\"\r\n"
    "Accept-Ranges: bytes\r\n"
    "Connection: keep-alive\r\n"
    "\r\n"
    "hello, world\n";
#define RESPONSE_LEN (sizeof(response) - 1)

struct conn {
    int fd;
    size_t len;         /* bytes in in[] */
    char *pend;         /* unsent remainder of the last answers, or NULL */
    size_t plen, poff;
    char in[IN_SIZE];
};

static int epfd;
/* A head is at least "\r\n\r\n": one buffer holds at most IN_SIZE / 4 of them. */
static char out[IN_SIZE / 4 * RESPONSE_LEN];

static void
conn_close(struct conn *c)
{
    close(c->fd);       /* also removes it from the epoll set */
    free(c->pend);
    free(c);
}

/* Returns -1 if the connection must close. */
static int
conn_mod(struct conn *c, unsigned events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };

    return epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends the pending remainder; back to reading once it is out. -1: close. */
static int
conn_flush(struct conn *c)
{
    while (c->poff < c->plen) {
        ssize_t n = send(c->fd, c->pend + c->poff, c->plen - c->poff, MSG_NOSIGNAL);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->poff += (size_t)n;
    }
    free(c->pend);
    c->pend = NULL;
    return conn_mod(c, EPOLLIN);
}

/* Sends len bytes of out; keeps what the socket did not take and waits for EPOLLOUT. */
static int
conn_send(struct conn *c, size_t len)
{
    ssize_t w = send(c->fd, out, len, MSG_NOSIGNAL);

    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR)
            return -1;
        w = 0;
    }
    if ((size_t)w == len)
        return 0;
    c->pend = malloc(len - (size_t)w);
    if (c->pend == NULL)
        return -1;
    memcpy(c->pend, out + w, len - (size_t)w);
    c->plen = len - (size_t)w;
    c->poff = 0;
    return conn_mod(c, EPOLLOUT);
}

/* One recv; answers every complete head. -1: close (EOF, error, head too long). */
static int
conn_read(struct conn *c)
{
    ssize_t n = recv(c->fd, c->in + c->len, IN_SIZE - c->len, 0);
    size_t start = 0, scan, nout = 0;
    char *end;

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return -1;
    /* The blank line may straddle the previous read's end: look 3 bytes back. */
    scan = c->len > 3 ? c->len - 3 : 0;
    c->len += (size_t)n;
    while ((end = memmem(c->in + scan, c->len - scan, "\r\n\r\n", 4)) != NULL) {
        memcpy(out + nout, response, RESPONSE_LEN);
        nout += RESPONSE_LEN;
        start = scan = (size_t)(end - c->in) + 4;
    }
    if (start > 0) {
        c->len -= start;
        memmove(c->in, c->in + start, c->len);
    } else if (c->len == IN_SIZE) {
        return -1;
    }
    return nout > 0 ? conn_send(c, nout) : 0;
}

static void
accept_all(int lfd)
{
    int one = 1;

    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                fprintf(stderr, "http_bare: accept: %s\n", strerror(errno));
            return;
        }
        struct conn *c = malloc(sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->len = 0;
        c->pend = NULL;
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
    struct epoll_event evs[MAX_EVENTS], lev;
    int lfd, one = 1;

    if (bench_echo_server_init("http_bare", argc, argv, &sa) != 0)
        return 2;

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
        fprintf(stderr, "http_bare: listen on %s:%s: %s\n", argv[1], argv[2], strerror(errno));
        return 1;
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    lev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = NULL };
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        perror("http_bare: epoll");
        return 1;
    }

    for (;;) {
        int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) {
            perror("http_bare: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            int rc;

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
