/* SPDX-License-Identifier: MIT */
/* test_fault_resolver.c: lookups and connects with the Nth allocation failing, for each N. */
/* WRAP: malloc calloc */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <weft/weft.h>

#include "fake_dns.h"
#include "harness.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);

/* Counting from arm(): the fail_at-th allocation of weft's own code fails. */
static long fail_at, seen;
static bool armed, failed;

static bool
fail_now(void)
{
    if (!armed || ++seen != fail_at)
        return false;
    failed = true;
    errno = ENOMEM;
    return true;
}

void *
__wrap_malloc(size_t n)
{
    return fail_now() ? NULL : __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : __real_calloc(n, size);
}

static void
arm(long n)
{
    fail_at = n;
    seen = 0;
    failed = false;
    armed = true;
}

struct seen {
    int calls;
    int error;
    struct weft_transport *tr;
};

static void
on_addrinfo(int error, struct addrinfo *res, void *arg)
{
    struct seen *s = arg;

    s->calls++;
    s->error = error;
    weft_freeaddrinfo(res);
}

static void
on_nameinfo(int error, const char *host, const char *serv, void *arg)
{
    struct seen *s = arg;

    (void)host;
    (void)serv;
    s->calls++;
    s->error = error;
}

static void
on_connect(struct weft_transport *tr, int error, void *arg)
{
    struct seen *s = arg;

    s->calls++;
    s->error = error;
    s->tr = tr;
}

/* The loop, without the harness's timers (their allocations would fail too). */
static void
spin(struct weft_loop *loop, const struct seen *s, int ms)
{
    for (int i = 0; i < ms && (s == NULL || s->calls == 0); i++) {
        weft_loop_run_once(loop);
        usleep(1000);
    }
}

enum op { GAI_DNS, GAI_HOSTS, GNI_PTR, CONNECT_HE };

/*
 * One run of op with allocation n failing. Either the call fails (-ENOMEM,
 * no callback) or the callback comes exactly once; the sanitizers and
 * valgrind see any leak when the loop is freed. Returns false once n is past
 * the last allocation (nothing failed).
 */
static bool
run(enum op op, long n, int listener_port)
{
    struct fake_dns *d = fake_dns_new(0);
    struct harness_echo_stats st = { 0 };
    struct weft_connect_options co = WEFT_CONNECT_OPTIONS_INIT;
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };
    struct seen s = { 0 };
    bool called = false;
    int rc = 0;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    co.happy_eyeballs_delay_ms = 20;
    co.timeout_ms = 3000;
    arm(n);
    switch (op) {
    case GAI_DNS:
        rc = weft_getaddrinfo_cb(d->loop, "a.test", "80", NULL, on_addrinfo, &s, NULL);
        break;
    case GAI_HOSTS:
        rc = weft_getaddrinfo_cb(d->loop, "localhost", "80", NULL, on_addrinfo, &s, NULL);
        break;
    case GNI_PTR:
        rc = weft_getnameinfo_cb(d->loop, (struct sockaddr *)&sin, sizeof(sin), NI_NAMEREQD,
                                 on_nameinfo, &s, NULL);
        break;
    case CONNECT_HE:
        rc = weft_create_connection(d->loop, harness_echo_factory, &st, "he.test",
                                    (uint16_t)listener_port, &co, on_connect, &s, NULL);
        break;
    }
    if (rc == 0) {
        spin(d->loop, &s, 2000);
        called = s.calls == 1;
    }
    armed = false;
    if (rc == 0)
        assert_true(called);
    else
        assert_int_equal(rc, -ENOMEM);
    if (s.tr != NULL)
        weft_transport_abort(s.tr);
    spin(d->loop, NULL, 5);
    assert_true(s.calls <= 1);
    fake_dns_free_now(d);
    return failed;
}

static void
walk(enum op op, int port)
{
    long n;

    for (n = 1; n < 200 && run(op, n, port); n++)
        ;
    print_message("op %d: %ld allocations, each failed once\n", (int)op, n - 1);
    assert_true(n > 1);         /* something was allocated, and failed once */
    assert_true(n < 200);
}

static void
test_getaddrinfo_survives_every_allocation_failure(void **state)
{
    (void)state;
    walk(GAI_DNS, 0);
    walk(GAI_HOSTS, 0);
}

static void
test_getnameinfo_survives_every_allocation_failure(void **state)
{
    (void)state;
    walk(GNI_PTR, 0);
}

static void
test_happy_eyeballs_connect_survives_every_allocation_failure(void **state)
{
    uint16_t port;
    int lfd = harness_listen(&port);    /* 127.0.0.1 answers; ::1 refuses or answers */

    (void)state;
    assert_true(lfd >= 0);
    walk(CONNECT_HE, port);
    close(lfd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_getaddrinfo_survives_every_allocation_failure),
        cmocka_unit_test(test_getnameinfo_survives_every_allocation_failure),
        cmocka_unit_test(test_happy_eyeballs_connect_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
