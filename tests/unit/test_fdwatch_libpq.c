/* SPDX-License-Identifier: MIT */
/* test_fdwatch_libpq.c: a foreign library (libpq async connect) on add_reader/writer and waits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include "harness.h"

#ifdef WEFT_HAVE_LIBPQ
#include <libpq-fe.h>

/*
 * A PostgreSQL server that only knows the start of the protocol (v3): read
 * the startup packet, answer AuthenticationOk, server_version and
 * ReadyForQuery, then wait for the client's Terminate or EOF. On a thread,
 * with blocking sockets, so that all the loop drives is libpq.
 */
struct fake_pg {
    int listen_fd;
    uint16_t port;
    pthread_t thread;
    char user[64];          /* from the startup packet */
};

static bool
read_full(int fd, void *buf, size_t n)
{
    char *p = buf;

    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static void *
fake_pg_run(void *arg)
{
    struct fake_pg *pg = arg;
    static const char answer[] =
        "R\0\0\0\x08\0\0\0\0"                               /* AuthenticationOk */
        "S\0\0\0\x18server_version\0" "15.0\0"              /* ParameterStatus */
        "Z\0\0\0\x05I";                                     /* ReadyForQuery, idle */
    unsigned char len[4], pkt[1024], rest[64];
    uint32_t n;
    int fd = accept(pg->listen_fd, NULL, NULL);

    if (fd < 0)
        return NULL;
    if (read_full(fd, len, 4) &&
        (n = (uint32_t)len[0] << 24 | len[1] << 16 | len[2] << 8 | len[3]) > 8 &&
        n - 4 <= sizeof(pkt) && read_full(fd, pkt, n - 4)) {
        /* protocol 3.0, then key\0value\0 pairs */
        for (size_t i = 4; i < n - 4 && pkt[i] != '\0'; ) {
            const char *key = (const char *)pkt + i;
            const char *value = key + strlen(key) + 1;

            if (strcmp(key, "user") == 0)
                snprintf(pg->user, sizeof(pg->user), "%s", value);
            i = (size_t)(value + strlen(value) + 1 - (const char *)pkt);
        }
        if (write(fd, answer, sizeof(answer) - 1) == (ssize_t)sizeof(answer) - 1)
            while (read(fd, rest, sizeof(rest)) > 0)        /* Terminate ('X'), then EOF */
                ;
    }
    close(fd);
    return NULL;
}

static int
setup(void **state)
{
    static struct fake_pg pg;

    harness_setup(state);
    memset(&pg, 0, sizeof(pg));
    pg.listen_fd = harness_listen(&pg.port);
    assert_true(pg.listen_fd >= 0);
    assert_int_equal(pthread_create(&pg.thread, NULL, fake_pg_run, &pg), 0);
    *state = &pg;
    return 0;
}

static int
teardown(void **state)
{
    struct fake_pg *pg = *state;

    shutdown(pg->listen_fd, SHUT_RDWR);         /* unblocks an accept() never answered */
    pthread_join(pg->thread, NULL);
    close(pg->listen_fd);
    harness_teardown(state);
    return 0;
}

static PGconn *
start(struct fake_pg *pg)
{
    char conninfo[256];
    PGconn *conn;

    snprintf(conninfo, sizeof(conninfo),
             "host=127.0.0.1 port=%u user=weft dbname=weft sslmode=disable gssencmode=disable "
             "connect_timeout=5", pg->port);
    conn = PQconnectStart(conninfo);
    assert_non_null(conn);
    assert_int_not_equal(PQstatus(conn), CONNECTION_BAD);
    assert_int_equal(PQsetnonblocking(conn, 1), 0);
    return conn;
}

/* ---- driven by callbacks: libpq's documented PQconnectPoll loop ---- */

struct pg_client {
    PGconn *conn;
    int fd;                 /* the socket being watched, or -1 */
    PostgresPollingStatusType last;
    int polls;
    bool done;
};

static int on_pg_ready(struct weft_loop *loop, int fd, void *arg);

/* Watch PQsocket() the way the last PQconnectPoll asked (it may change socket). */
static void
pg_watch(struct weft_loop *loop, struct pg_client *c)
{
    if (c->fd >= 0) {
        weft_remove_reader(loop, c->fd);
        weft_remove_writer(loop, c->fd);
    }
    c->fd = -1;
    if (c->last == PGRES_POLLING_OK || c->last == PGRES_POLLING_FAILED) {
        c->done = true;
        return;
    }
    c->fd = PQsocket(c->conn);
    assert_true(c->fd >= 0);
    if (c->last == PGRES_POLLING_READING)
        assert_int_equal(weft_add_reader(loop, c->fd, on_pg_ready, c), 0);
    else
        assert_int_equal(weft_add_writer(loop, c->fd, on_pg_ready, c), 0);
}

static int
on_pg_ready(struct weft_loop *loop, int fd, void *arg)
{
    struct pg_client *c = arg;

    (void)fd;
    c->polls++;
    c->last = PQconnectPoll(c->conn);
    pg_watch(loop, c);
    return 0;
}

static void
test_libpq_connects_on_add_reader_and_add_writer(void **state)
{
    struct fake_pg *pg = *state;
    struct pg_client c = { .fd = -1, .last = PGRES_POLLING_WRITING };

    c.conn = start(pg);
    pg_watch(harness_loop, &c);                 /* "as if it had returned WRITING" */
    assert_int_equal(harness_run_until(harness_loop, &c.done, 5000), 0);
    assert_int_equal(c.last, PGRES_POLLING_OK);
    assert_int_equal(PQstatus(c.conn), CONNECTION_OK);
    assert_int_equal(PQserverVersion(c.conn), 150000);
    assert_string_equal(pg->user, "weft");
    assert_true(c.polls >= 2);                  /* at least: connected, answer read */
    PQfinish(c.conn);
}

/* ---- driven by a task: the same loop with weft_wait_readable/writable ---- */

static intptr_t
pg_connect_task(void *arg)
{
    PGconn *conn = arg;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    int rc = 0;

    while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        rc = st == PGRES_POLLING_READING ? weft_wait_readable(PQsocket(conn), 5000)
                                         : weft_wait_writable(PQsocket(conn), 5000);
        if (rc < 0)
            return rc;
        st = PQconnectPoll(conn);
    }
    return st == PGRES_POLLING_OK ? 0 : -ECONNREFUSED;
}

static void
test_libpq_connects_in_a_task_with_wait_readable(void **state)
{
    struct fake_pg *pg = *state;
    PGconn *conn = start(pg);

    assert_int_equal(harness_run_task(harness_loop, pg_connect_task, conn, 5000), 0);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    assert_string_equal(PQparameterStatus(conn, "server_version"), "15.0");
    PQfinish(conn);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_libpq_connects_on_add_reader_and_add_writer,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_libpq_connects_in_a_task_with_wait_readable,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else   /* built without libpq-dev */

static void
test_libpq_not_available(void **state)
{
    (void)state;
    skip();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libpq_not_available),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
