/* SPDX-License-Identifier: MIT */
/* echo_libevent.c: a minimal bufferevent echo server, as libevent's samples would write it. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common.h"

static void
echo_read(struct bufferevent *bev, void *arg)
{
    /* Moves the input's chains to the output: no copy, libevent writes them out. */
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void
echo_event(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void
echo_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int len,
            void *arg)
{
    struct event_base *base = arg;
    struct bufferevent *bev;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        evutil_closesocket(fd);
        return;
    }
    bufferevent_setcb(bev, echo_read, NULL, echo_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int
main(int argc, char **argv)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    struct event_base *base;
    struct evconnlistener *lev;

    if (bench_echo_server_init("echo_libevent", argc, argv, &sa) != 0)
        return 2;
    base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "echo_libevent: event_base_new failed\n");
        return 1;
    }
    lev = evconnlistener_new_bind(base, echo_accept, base,
                                  LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
                                      LEV_OPT_CLOSE_ON_EXEC,
                                  4096, (struct sockaddr *)&sa, sizeof(sa));
    if (lev == NULL) {
        perror("echo_libevent: listen");
        return 1;
    }
    event_base_dispatch(base);
    evconnlistener_free(lev);
    event_base_free(base);
    return 0;
}
