/* SPDX-License-Identifier: MIT */
/* test_server.c: create_server, create_connection and server-wide close/abort over loopback. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <weft/weft.h>

#include "harness.h"

static void
test_server_on_ipv4_port_zero(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats st = { .expect_lost = 1 };
    struct weft_server *s = NULL;
    int family, fd;
    uint16_t port;

    (void)state;
    assert_int_equal(weft_create_server(loop, harness_echo_factory, &st, "127.0.0.1", 0, NULL, &s), 0);
    assert_int_equal(weft_server_socket_count(s), 1);
    assert_true(weft_server_is_serving(s));
    port = harness_server_port(s, 0, &family);
    assert_int_equal(family, AF_INET);
    assert_true(port != 0);
    assert_int_equal(weft_server_get_sockname(s, 1, NULL, NULL), -ENOENT);

    fd = harness_client_connect(AF_INET, port);
    harness_run_until_count(loop, &st.made, 1);
    assert_int_equal(weft_server_connection_count(s), 1);
    harness_client_echo(loop, fd, "hello, echo");
    close(fd);
    assert_int_equal(harness_run_until(loop, &st.all_lost_flag, 2000), 0);
    assert_int_equal(weft_server_connection_count(s), 0);
    assert_int_equal(st.lost_nonzero, 0);

    weft_server_close(s);
    weft_server_close(s);
    assert_int_equal(weft_server_socket_count(s), 0);
    assert_false(weft_server_is_serving(s));
    weft_server_free(s);
    weft_server_free(NULL);
    weft_loop_free(loop);
}

static void
test_server_on_all_interfaces_and_localhost(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats st = { 0 };
    struct weft_server *s = NULL;
    bool v4 = false, v6 = false;
    int family, fd;

    (void)state;
    /* NULL: every interface, each family that exists, on its own socket (V6ONLY). */
    assert_int_equal(weft_create_server(loop, harness_echo_factory, &st, NULL, 0, NULL, &s), 0);
    assert_true(weft_server_socket_count(s) >= 1);
    for (size_t i = 0; i < weft_server_socket_count(s); i++) {
        uint16_t port = harness_server_port(s, i, &family);

        v4 |= family == AF_INET;
        v6 |= family == AF_INET6;
        fd = harness_client_connect(family, port);
        harness_run_until_count(loop, &st.made, (int)i + 1);
        harness_client_echo(loop, fd, family == AF_INET6 ? "over v6" : "over v4");
        close(fd);
    }
    assert_true(v4);
    print_message("NULL host: %zu sockets (v4 %d, v6 %d)\n", weft_server_socket_count(s), v4, v6);
    st.expect_lost = st.made;
    assert_int_equal(harness_run_until(loop, &st.all_lost_flag, 2000), 0);
    weft_server_free(s);

    /* "" is the same as NULL. */
    assert_int_equal(weft_create_server(loop, harness_echo_factory, &st, "", 0, NULL, &s), 0);
    assert_true(weft_server_socket_count(s) >= 1);
    weft_server_free(s);

    /* "localhost" resolves to loopback addresses only. */
    assert_int_equal(weft_create_server(loop, harness_echo_factory, &st, "localhost", 0, NULL, &s), 0);
    assert_true(weft_server_socket_count(s) >= 1);
    harness_server_port(s, 0, &family);
    assert_true(family == AF_INET || family == AF_INET6);
    weft_server_free(s);
    weft_loop_free(loop);
}

static void
test_server_errors(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats st = { 0 };
    struct weft_server *s = NULL;
    struct weft_server_options opts = WEFT_SERVER_OPTIONS_INIT;
    uint16_t port;
    int lfd;

    (void)state;
    lfd = harness_listen(&port);
    assert_true(lfd >= 0);
    opts.reuse_address = false;
    assert_int_equal(weft_create_server(loop, harness_echo_factory, &st, "127.0.0.1", port, &opts, &s),
                     -EADDRINUSE);
    assert_int_equal(weft_create_server(loop, harness_echo_factory, &st, "127.0.0.1", port, NULL, &s),
                     -EADDRINUSE);
    assert_int_equal(weft_create_server(loop, harness_echo_factory, &st, "nonexistent.invalid", 0, NULL,
                                        &s), -WEFT_ENONAME);
    assert_int_equal(weft_create_server(loop, harness_echo_factory, &st, "192.0.2.300", 0, NULL, &s) < 0,
                     true);
    assert_int_equal(weft_create_server(NULL, harness_echo_factory, &st, NULL, 0, NULL, &s), -EINVAL);
    close(lfd);
    weft_loop_free(loop);
}

static void
test_server_fds_and_pause_accepting(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats st = { .expect_lost = 1 };
    struct weft_server *s = NULL;
    uint16_t port;
    int lfd, fd;

    (void)state;
    lfd = harness_listen(&port);
    assert_true(lfd >= 0);
    assert_int_equal(weft_create_server_fds(loop, harness_echo_factory, &st, &lfd, 1, NULL, &s), 0);
    assert_int_equal(harness_server_port(s, 0, NULL), port);
    weft_server_pause_accepting(s);
    assert_false(weft_server_is_serving(s));
    fd = harness_client_connect(AF_INET, port);     /* completes in the kernel's backlog */
    harness_run_for(loop, 50);
    assert_int_equal(st.made, 0);
    weft_server_resume_accepting(s);
    assert_true(weft_server_is_serving(s));
    harness_run_until_count(loop, &st.made, 1);
    harness_client_echo(loop, fd, "after resume");
    /* Freeing the server aborts its connections before returning. */
    weft_server_free(s);
    assert_int_equal(st.lost, 1);
    assert_int_equal(harness_client_wait_end(loop, fd) <= 0, true);
    close(fd);
    weft_loop_free(loop);
}

static void
many_clients(struct weft_loop *loop, struct harness_echo_stats *st, struct weft_server **sp, int *fds,
             int n)
{
    uint16_t port;

    assert_int_equal(weft_create_server(loop, harness_echo_factory, st, "127.0.0.1", 0, NULL, sp), 0);
    port = harness_server_port(*sp, 0, NULL);
    for (int i = 0; i < n; i++)
        fds[i] = harness_client_connect(AF_INET, port);
    harness_run_until_count(loop, &st->made, n);
    assert_int_equal(weft_server_connection_count(*sp), n);
    st->expect_lost = n;
}

#define NCLIENTS 50

/*
 * NCLIENTS clients, then the server ends them all: a close lets them read a clean EOF, an
 * abort resets them; either way every protocol hears of it and no connection is left.
 */
static void
end_clients(bool abort)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats st = { 0 };
    struct weft_server *s = NULL;
    int fds[NCLIENTS], resets = 0;

    many_clients(loop, &st, &s, fds, NCLIENTS);
    if (abort) {
        weft_server_abort_clients(s);
    } else {
        weft_server_close_clients(s);
        assert_int_equal(st.lost, 0);   /* from the loop, not from inside */
    }
    assert_int_equal(harness_run_until(loop, &st.all_lost_flag, 3000), 0);
    assert_int_equal(st.lost, NCLIENTS);
    if (!abort)
        assert_int_equal(st.lost_nonzero, 0);
    assert_int_equal(weft_server_connection_count(s), 0);
    for (int i = 0; i < NCLIENTS; i++) {
        int rc = harness_client_wait_end(loop, fds[i]);

        if (abort) {
            assert_true(rc == 0 || rc == -ECONNRESET);
            resets += rc == -ECONNRESET;
        } else {
            assert_int_equal(rc, 0);    /* a clean EOF */
        }
        close(fds[i]);
    }
    if (abort)
        assert_int_equal(resets, NCLIENTS);
    else
        assert_true(weft_server_is_serving(s));     /* the listener stays */
    weft_server_free(s);
    weft_loop_free(loop);
}

static void
test_close_clients(void **state)
{
    (void)state;
    end_clients(false);
}

static void
test_abort_clients(void **state)
{
    (void)state;
    end_clients(true);
}

static void
test_emfile_pauses_accepting_and_recovers(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats st = { 0 };
    struct weft_server *s = NULL;
    struct rlimit old, low;
    int fds[4], probe;
    uint16_t port;

    (void)state;
    harness_log_capture();
    harness_log_clear();
    assert_int_equal(weft_create_server(loop, harness_echo_factory, &st, "127.0.0.1", 0, NULL, &s), 0);
    port = harness_server_port(s, 0, NULL);
    for (int i = 0; i < 4; i++)
        fds[i] = harness_client_connect(AF_INET, port);     /* complete in the backlog */
    /* No descriptor left for accept(): the lowest free one becomes the limit. */
    probe = dup(0);
    assert_true(probe >= 0);
    close(probe);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)probe;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    harness_run_for(loop, 350);
    assert_int_equal(st.made, 0);
    assert_true(harness_log_contains("pausing accepts"));
    assert_true(weft_server_is_serving(s));
    /* Descriptors are back: accepting resumes on its own. */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    harness_run_until_count(loop, &st.made, 4);
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    st.expect_lost = 4;
    assert_int_equal(harness_run_until(loop, &st.all_lost_flag, 2000), 0);
    weft_server_free(s);
    weft_loop_free(loop);
    weft_log_set_handler(NULL, NULL, 0);
}

/* create_connection */

struct outcome {
    bool called;
    int calls;
    int error;
    struct weft_transport *tr;
};

static void
on_connect(struct weft_transport *tr, int error, void *arg)
{
    struct outcome *o = arg;

    o->called = true;
    o->calls++;
    o->error = error;
    o->tr = tr;
}

static void
test_connect_success_numeric_and_localhost(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats srv = { 0 }, cli = { 0 };
    struct weft_server *s = NULL;
    const char *hosts[] = { "127.0.0.1", "localhost" };
    uint16_t port;

    (void)state;
    assert_int_equal(weft_create_server(loop, harness_echo_factory, &srv, "127.0.0.1", 0, NULL, &s), 0);
    port = harness_server_port(s, 0, NULL);
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        struct outcome o = { 0 };
        struct weft_connect *c = NULL;
        char buf[16] = { 0 };

        assert_int_equal(weft_create_connection(loop, harness_echo_factory, &cli, hosts[i], port, NULL,
                                                on_connect, &o, &c), 0);
        assert_false(o.called);     /* never from inside the call */
        assert_non_null(c);
        assert_int_equal(harness_run_until(loop, &o.called, 3000), 0);
        assert_int_equal(o.error, 0);
        assert_non_null(o.tr);
        assert_int_equal(cli.made, (int)i + 1);
        harness_run_until_count(loop, &srv.made, (int)i + 1);
        /* The server echoes; the client side echoes that back... so just count bytes. */
        assert_int_equal(weft_transport_write(o.tr, "ping", 4), 0);
        for (int k = 0; k < 2000 && srv.echoed < 4 * (i + 1); k++)
            harness_run_for(loop, 1);
        assert_true(srv.echoed >= 4 * (i + 1));
        weft_transport_abort(o.tr);
        (void)buf;
    }
    cli.expect_lost = 2;
    assert_int_equal(harness_run_until(loop, &cli.all_lost_flag, 2000), 0);
    srv.expect_lost = 2;
    assert_int_equal(harness_run_until(loop, &srv.all_lost_flag, 2000), 0);
    weft_server_free(s);
    weft_loop_free(loop);
}

static void
test_connect_local_address(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats srv = { .expect_lost = 1 }, cli = { .expect_lost = 1 };
    struct weft_server *s = NULL;
    struct weft_connect_options opts = WEFT_CONNECT_OPTIONS_INIT;
    struct sockaddr_in local = { .sin_family = AF_INET }, got;
    size_t len = sizeof(got);
    struct outcome o = { 0 };
    uint16_t lport = harness_port();

    (void)state;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    local.sin_port = htons(lport);
    opts.local_addr = (struct sockaddr *)&local;
    opts.local_addrlen = sizeof(local);
    assert_int_equal(weft_create_server(loop, harness_echo_factory, &srv, "127.0.0.1", 0, NULL, &s), 0);
    assert_int_equal(weft_create_connection(loop, harness_echo_factory, &cli, "127.0.0.1",
                                            harness_server_port(s, 0, NULL), &opts, on_connect, &o,
                                            NULL), 0);
    assert_int_equal(harness_run_until(loop, &o.called, 3000), 0);
    assert_int_equal(o.error, 0);
    assert_int_equal(weft_transport_get_extra_info(o.tr, "sockname", &got, &len), 0);
    assert_int_equal(ntohs(got.sin_port), lport);
    weft_transport_close(o.tr);
    assert_int_equal(harness_run_until(loop, &cli.all_lost_flag, 2000), 0);
    assert_int_equal(harness_run_until(loop, &srv.all_lost_flag, 2000), 0);
    weft_server_free(s);
    weft_loop_free(loop);
}

static void
test_connect_refused(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats cli = { 0 };
    struct outcome o = { 0 };

    (void)state;
    assert_int_equal(weft_create_connection(loop, harness_echo_factory, &cli, "127.0.0.1",
                                            harness_port(), NULL, on_connect, &o, NULL), 0);
    assert_false(o.called);
    assert_int_equal(harness_run_until(loop, &o.called, 3000), 0);
    assert_int_equal(o.error, -ECONNREFUSED);
    assert_null(o.tr);
    assert_int_equal(cli.made, 0);
    harness_run_for(loop, 10);
    assert_int_equal(o.calls, 1);
    weft_loop_free(loop);
}

static void
test_connect_name_not_found_is_quick(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats cli = { 0 };
    struct outcome o = { 0 };
    struct weft_connect_options opts = WEFT_CONNECT_OPTIONS_INIT;
    uint64_t start = weft_loop_time(loop);

    (void)state;
    opts.timeout_ms = 3000;
    assert_int_equal(weft_create_connection(loop, harness_echo_factory, &cli, "nonexistent.invalid", 80,
                                            &opts, on_connect, &o, NULL), 0);
    assert_false(o.called);
    assert_int_equal(harness_run_until(loop, &o.called, 5000), 0);
    assert_true(o.error == -WEFT_ENONAME || o.error == -WEFT_ERESOLVE);
    assert_true(weft_loop_time(loop) - start < 1000);
    assert_int_equal(weft_create_connection(loop, harness_echo_factory, &cli, NULL, 80, NULL, on_connect,
                                            &o, NULL), -EINVAL);
    weft_loop_free(loop);
}

/* A listener with a full backlog that never accepts: the next SYN goes unanswered. */
static int
hanging_listener(uint16_t *port, int *held, int *lfdp)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), n = 0;

    *lfdp = lfd;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    /* Fill the queue: connect until one does not complete. */
    for (n = 0; n < 8; n++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };

        held[n] = fd;
        connect(fd, (struct sockaddr *)&sin, sizeof(sin));
        if (poll(&pfd, 1, 200) == 0)
            return n + 1;
    }
    fail_msg("could not fill the listen backlog");
    return n;
}

static void
test_connect_timeout(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats cli = { 0 };
    struct outcome o = { 0 };
    struct weft_connect_options opts = WEFT_CONNECT_OPTIONS_INIT;
    int held[8], nheld, lfd;
    uint16_t port;

    (void)state;
    nheld = hanging_listener(&port, held, &lfd);
    opts.timeout_ms = 200;
    assert_int_equal(weft_create_connection(loop, harness_echo_factory, &cli, "127.0.0.1", port, &opts,
                                            on_connect, &o, NULL), 0);
    assert_int_equal(harness_run_until(loop, &o.called, 5000), 0);
    assert_int_equal(o.error, -ETIMEDOUT);
    assert_null(o.tr);
    assert_int_equal(cli.made, 0);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    close(lfd);
    weft_loop_free(loop);
}

static void
test_connect_cancel(void **state)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats cli = { 0 };
    struct outcome o = { 0 };
    struct weft_connect *c = NULL;
    int held[8], nheld, lfd;
    uint16_t port;

    (void)state;
    nheld = hanging_listener(&port, held, &lfd);
    /* Cancel while connecting. */
    assert_int_equal(weft_create_connection(loop, harness_echo_factory, &cli, "127.0.0.1", port, NULL,
                                            on_connect, &o, &c), 0);
    harness_run_for(loop, 20);
    weft_connect_cancel(c);
    /* Cancel a failure that was already waiting for the loop. */
    assert_int_equal(weft_create_connection(loop, harness_echo_factory, &cli, "x.invalid", 1, NULL,
                                            on_connect, &o, &c), 0);
    weft_connect_cancel(c);
    /* Cancel during an /etc/hosts lookup (answered at once, connect in flight). */
    assert_int_equal(weft_create_connection(loop, harness_echo_factory, &cli, "localhost", port, NULL,
                                            on_connect, &o, &c), 0);
    weft_connect_cancel(c);
    harness_run_for(loop, 100);
    assert_false(o.called);
    assert_int_equal(cli.made, 0);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    close(lfd);
    weft_loop_free(loop);
}

/*
 * By hand, not a test: WEFT_ECHO_SERVE=PORT [WEFT_ECHO_SECS=N] ./unit_test_server
 * serves this file's echo protocol on 127.0.0.1:PORT for N seconds (default
 * 30), for a throughput check with bench/echo_load beside bench/echo_epoll.
 */
static void
stop_loop(void *arg)
{
    weft_loop_stop(arg);
}

static int
serve_echo(const char *portstr)
{
    struct weft_loop *loop = harness_loop_new();
    struct harness_echo_stats st = { 0 };
    struct weft_server *s = NULL;
    const char *secs = getenv("WEFT_ECHO_SECS");
    int rc;

    rc = weft_create_server(loop, harness_echo_factory, &st, "127.0.0.1", (uint16_t)atoi(portstr), NULL,
                            &s);
    if (rc < 0) {
        fprintf(stderr, "serve: %s\n", weft_strerror(rc));
        return 1;
    }
    weft_call_later(loop, (secs ? strtoull(secs, NULL, 10) : 30) * 1000, stop_loop, loop);
    weft_loop_run(loop);
    fprintf(stderr, "serve: %d connections, %zu bytes echoed\n", st.made, st.echoed);
    st.expect_lost = st.made;
    weft_server_free(s);
    weft_loop_free(loop);
    return 0;
}

int
main(void)
{
    if (getenv("WEFT_ECHO_SERVE") != NULL)
        return serve_echo(getenv("WEFT_ECHO_SERVE"));

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_on_ipv4_port_zero),
        cmocka_unit_test(test_server_on_all_interfaces_and_localhost),
        cmocka_unit_test(test_server_errors),
        cmocka_unit_test(test_server_fds_and_pause_accepting),
        cmocka_unit_test(test_close_clients),
        cmocka_unit_test(test_abort_clients),
        cmocka_unit_test(test_emfile_pauses_accepting_and_recovers),
        cmocka_unit_test(test_connect_local_address),
        cmocka_unit_test(test_connect_success_numeric_and_localhost),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_name_not_found_is_quick),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_connect_cancel),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
