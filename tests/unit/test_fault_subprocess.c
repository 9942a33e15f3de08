/* SPDX-License-Identifier: MIT */
/* test_fault_subprocess.c: every allocation of starting a child fails in turn: a clean error. */
/* WRAP: malloc calloc syscall */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft/weft.h>

#include "harness.h"

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__wrap_calloc(size_t n, size_t m);

static unsigned fail_at, count;     /* the fail_at-th allocation (from 1) fails; 0: none */

static bool
fail_now(void)
{
    return fail_at != 0 && ++count == fail_at;
}

void *
__wrap_malloc(size_t n)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
    if (fail_now()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, m);
}

/* pidfd_open as on a kernel before 5.3 (or under valgrind): ENOSYS. */
static bool no_pidfd;

long __real_syscall(long n, ...);
long __wrap_syscall(long n, ...);

long
__wrap_syscall(long n, ...)
{
    va_list ap;
    long a[6];

    va_start(ap, n);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (n == SYS_pidfd_open && no_pidfd) {
        errno = ENOSYS;
        return -1;
    }
    return __real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static int
open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;

    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static void
no_child_left(void)
{
    siginfo_t si = { 0 };

    assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT), -1);
    assert_int_equal(errno, ECHILD);
}

/* The Protocol layer: a protocol that frees itself in connection_lost. */
struct fp {
    struct weft_subprocess_protocol base;
    bool *lost;
};

static void
fp_lost(struct weft_subprocess_protocol *p, int error)
{
    (void)error;
    *((struct fp *)p)->lost = true;
    free(p);
}

static const struct weft_subprocess_protocol_ops fp_ops = { .connection_lost = fp_lost };

static struct weft_subprocess_protocol *
fp_factory(void *arg)
{
    struct fp *p = malloc(sizeof(*p));

    if (p == NULL)
        return NULL;
    p->base.ops = &fp_ops;
    p->lost = arg;
    return &p->base;
}

static void
test_exec_under_allocation_failures(void **state)
{
    struct weft_subprocess_options o = { .stdio = { { WEFT_STDIO_PIPE }, { WEFT_STDIO_PIPE },
                                                    { WEFT_STDIO_PIPE } } };
    char *argv[] = { "true", NULL };
    int fds = open_fds();
    unsigned n;

    (void)state;
    for (n = 1; n < 100; n++) {
        bool lost = false;
        int rc;

        count = 0;
        fail_at = n;
        rc = weft_create_subprocess_exec(harness_loop, fp_factory, &lost, argv, &o, NULL);
        fail_at = 0;
        if (rc == 0)
            assert_int_equal(harness_run_until(harness_loop, &lost, 5000), 0);
        else
            assert_int_equal(rc, -ENOMEM);
        harness_run_for(harness_loop, 5);
        no_child_left();
        assert_int_equal(open_fds(), fds);
        if (rc == 0 && count < n)
            break;              /* no allocation was left to fail */
    }
    assert_true(n > 3 && n < 100);
}

static intptr_t
exec_task(void *arg)
{
    struct weft_subprocess_options o = { .stdio = { { WEFT_STDIO_PIPE }, { WEFT_STDIO_PIPE },
                                                    { WEFT_STDIO_PIPE } } };
    char *argv[] = { "true", NULL };
    struct weft_process *p;
    int rc, code;

    count = 0;
    fail_at = *(unsigned *)arg;
    rc = weft_subprocess_exec(argv, &o, 0, &p);
    *(unsigned *)arg = fail_at != 0 && count < fail_at ? 0 : 1;   /* 0: nothing failed */
    fail_at = 0;
    if (rc < 0)
        return rc;
    rc = weft_process_wait(p, &code);
    weft_process_free(p);
    return rc;
}

static void
test_process_under_allocation_failures(void **state)
{
    int fds = open_fds();
    unsigned n;

    (void)state;
    for (n = 1; n < 100; n++) {
        unsigned arg = n;
        intptr_t rc = harness_run_task(harness_loop, exec_task, &arg, 5000);

        assert_true(rc == 0 || rc == -ENOMEM);
        harness_run_for(harness_loop, 5);
        no_child_left();
        assert_int_equal(open_fds(), fds);
        if (rc == 0 && arg == 0)
            break;
    }
    assert_true(n > 3 && n < 100);
}

/* Without pidfds the child is polled for (waitid P_PID, every 50 ms): still only ours. */
static intptr_t
polled(void *arg)
{
    struct weft_subprocess_options o = { .stdio = { { WEFT_STDIO_DEVNULL },
                                                    { WEFT_STDIO_PIPE } } };
    struct weft_process *p;
    char *out;
    int rc;

    (void)arg;
    assert_int_equal(weft_subprocess_shell("echo polled; exit 4", &o, 0, &p), 0);
    assert_int_equal(weft_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL, &rc), 0);
    assert_string_equal(out, "polled\n");
    assert_int_equal(rc, 4);
    free(out);
    weft_process_free(p);
    return 0;
}

static void
test_without_pidfd_the_child_is_polled(void **state)
{
    int st = 0;
    pid_t mine;

    (void)state;
    no_pidfd = true;            /* remembered by the library from now on: the last test */
    harness_log_capture();
    mine = fork();
    assert_true(mine >= 0);
    if (mine == 0)
        _exit(9);
    assert_int_equal(harness_run_task(harness_loop, polled, NULL, 5000), 0);
    assert_true(harness_log_contains("polling for its exit every 50 ms"));
    assert_int_equal(waitpid(mine, &st, 0), mine);
    assert_int_equal(WEXITSTATUS(st), 9);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exec_under_allocation_failures, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_process_under_allocation_failures, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_without_pidfd_the_child_is_polled, harness_setup,
                                        harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
