/* SPDX-License-Identifier: MIT */
/* test_http_clients.c: 1,000 concurrent keep-alive clients of the http plugin, two requests each. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "weftd.h"

#define CLIENTS 1000
#define ROUNDS 2

static const char conf[] = "[weftd]\nlog_level = warning\n"
                           "[page]\nprotocol = http\nlisten = 127.0.0.1:%PORT%\n"
                           "keepalive_timeout = 30s\nheader_timeout = 30s\n";
static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

struct client {
    int fd;
    int done;           /* responses fully read */
    size_t got;         /* bytes of the current response */
    size_t want;        /* its full size, once the head is in (0: unknown) */
    char buf[512];
};

/* The size of a whole response in buf, or 0 if its head is not complete yet. */
static size_t
response_size(const char *buf, size_t len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    const char *cl = memmem(buf, len, "Content-Length: ", 16);
    if (end == NULL || cl == NULL)
        return 0;
    return (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10);
}

static void
test_thousand_keep_alive_clients(void **state)
{
    struct weftd w = { 0 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < CLIENTS + 64) {
        rl.rlim_cur = rl.rlim_max < CLIENTS + 64 ? rl.rlim_max : CLIENTS + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    assert_true(rl.rlim_cur >= CLIENTS + 64);
    assert_int_equal(weftd_start(&w, conf, NULL), 0);

    struct client *cl = calloc(CLIENTS, sizeof(*cl));
    struct pollfd *pfd = calloc(CLIENTS, sizeof(*pfd));
    for (int i = 0; i < CLIENTS; i++) {
        cl[i].fd = weftd_connect(w.ports[0]);
        assert_true(cl[i].fd >= 0);
    }
    /* every client is connected before anyone is answered: 1,000 at once */
    for (int i = 0; i < CLIENTS; i++) {
        assert_int_equal(send(cl[i].fd, req, sizeof(req) - 1, MSG_NOSIGNAL), sizeof(req) - 1);
        fcntl(cl[i].fd, F_SETFL, O_NONBLOCK);
    }
    int finished = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (finished < CLIENTS) {
        int n = 0;
        for (int i = 0; i < CLIENTS; i++) {
            pfd[i].fd = cl[i].done < ROUNDS ? cl[i].fd : -1;
            pfd[i].events = POLLIN;
            n += cl[i].done < ROUNDS;
        }
        int rc = poll(pfd, CLIENTS, 30000);
        assert_true(rc > 0);            /* nothing for 30 s: the server stalled */
        for (int i = 0; i < CLIENTS; i++) {
            struct client *c = &cl[i];
            if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = recv(c->fd, c->buf + c->got, sizeof(c->buf) - c->got - 1, 0);
            if (r <= 0)
                fail_msg("client %d: closed after %d responses (%zd, %s)", i, c->done, r,
                         strerror(errno));
            c->got += (size_t)r;
            c->want = response_size(c->buf, c->got);
            if (c->want == 0 || c->got < c->want)
                continue;
            assert_int_equal(c->got, c->want);          /* one answer per request */
            c->buf[c->got] = '\0';
            assert_non_null(strstr(c->buf, "Web Server Test"));
            assert_non_null(strstr(c->buf, "Connection: keep-alive"));
            c->got = c->want = 0;
            if (++c->done == ROUNDS) {
                finished++;
            } else {
                assert_int_equal(send(c->fd, req, sizeof(req) - 1, MSG_NOSIGNAL),
                                 sizeof(req) - 1);
            }
        }
        (void)n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("%d clients x %d requests in %.0f ms\n", CLIENTS, ROUNDS,
                  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    for (int i = 0; i < CLIENTS; i++)
        close(cl[i].fd);
    free(cl);
    free(pfd);
    assert_int_equal(weftd_stop(&w, SIGTERM), 0);
    weftd_cleanup(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_thousand_keep_alive_clients, itest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
