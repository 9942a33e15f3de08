/* SPDX-License-Identifier: MIT */
/* test_subprocess.c: real children, on the Protocol layer and as process objects in tasks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <weft/weft.h>

#include "harness.h"

#define PIPES { .stdio = { { WEFT_STDIO_PIPE }, { WEFT_STDIO_PIPE }, { WEFT_STDIO_PIPE } } }

/* ---- Protocol layer ---- */

/* The callbacks in order, as letters: M made, 1/2 data, a/b/c pipe lost, X exited, L lost. */
struct sp_rec {
    struct weft_subprocess_protocol base;
    struct weft_subprocess_transport *t;
    char order[32];
    size_t n;
    char out[64];
    size_t outlen;
    int rc, lost_error;
    bool lost;
};

static void
mark(struct sp_rec *r, char c)
{
    if (r->n + 1 < sizeof(r->order))
        r->order[r->n++] = c;
}

static int
sp_made(struct weft_subprocess_protocol *p, struct weft_subprocess_transport *t)
{
    struct sp_rec *r = (struct sp_rec *)p;

    r->t = t;
    mark(r, 'M');
    return 0;
}

static int
sp_data(struct weft_subprocess_protocol *p, int fd, const void *data, size_t len)
{
    struct sp_rec *r = (struct sp_rec *)p;

    if (r->n == 0 || r->order[r->n - 1] != (char)('0' + fd))
        mark(r, (char)('0' + fd));
    if (fd == 1 && r->outlen + len < sizeof(r->out)) {
        memcpy(r->out + r->outlen, data, len);
        r->outlen += len;
    }
    return 0;
}

static void
sp_pipe_lost(struct weft_subprocess_protocol *p, int fd, int error)
{
    assert_int_equal(error, 0);
    mark((struct sp_rec *)p, (char)('a' + fd));
}

static void
sp_exited(struct weft_subprocess_protocol *p)
{
    struct sp_rec *r = (struct sp_rec *)p;

    assert_true(weft_subprocess_transport_get_returncode(r->t, &r->rc));
    assert_int_equal(weft_subprocess_transport_send_signal(r->t, SIGTERM), -ESRCH);
    mark(r, 'X');
}

static void
sp_lost(struct weft_subprocess_protocol *p, int error)
{
    struct sp_rec *r = (struct sp_rec *)p;

    mark(r, 'L');
    r->lost = true;
    r->lost_error = error;
}

static const struct weft_subprocess_protocol_ops sp_ops = {
    .connection_made = sp_made,
    .pipe_data_received = sp_data,
    .pipe_connection_lost = sp_pipe_lost,
    .process_exited = sp_exited,
    .connection_lost = sp_lost,
};

static struct weft_subprocess_protocol *
sp_factory(void *arg)
{
    struct sp_rec *r = arg;

    r->base.ops = &sp_ops;
    return &r->base;
}

static void
test_protocol_cat_echoes_and_ends_in_order(void **state)
{
    struct weft_subprocess_options o = PIPES;
    struct sp_rec r = { 0 };
    struct weft_subprocess_transport *t;
    char *argv[] = { "cat", NULL };
    struct weft_transport *in;

    (void)state;
    o.stdio[2].kind = WEFT_STDIO_DEVNULL;
    assert_int_equal(weft_create_subprocess_exec(harness_loop, sp_factory, &r, argv, &o, &t), 0);
    assert_ptr_equal(r.t, t);
    assert_ptr_equal(weft_subprocess_transport_get_protocol(t), &r.base);
    assert_true(weft_subprocess_transport_get_pid(t) > 0);
    assert_false(weft_subprocess_transport_get_returncode(t, NULL));
    assert_null(weft_subprocess_transport_get_pipe_transport(t, 2));     /* /dev/null */
    in = weft_subprocess_transport_get_pipe_transport(t, 0);
    assert_non_null(in);
    assert_int_equal(weft_transport_write(in, "hello", 5), 0);
    assert_int_equal(weft_transport_write_eof(in), 0);
    assert_int_equal(harness_run_until(harness_loop, &r.lost, 5000), 0);
    assert_int_equal(r.outlen, 5);
    assert_memory_equal(r.out, "hello", 5);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.lost_error, 0);
    /* made first, stdin's end before stdout's data is not promised; lost last, after all */
    assert_int_equal(r.order[0], 'M');
    assert_int_equal(r.order[r.n - 1], 'L');
    assert_non_null(strchr(r.order, 'a'));
    assert_non_null(strchr(r.order, 'b'));
    assert_non_null(strchr(r.order, 'X'));
    assert_true(strchr(r.order, '1') < strchr(r.order, 'b'));
}

static void
test_protocol_missing_program_is_enoent(void **state)
{
    struct weft_subprocess_options o = PIPES;
    struct sp_rec r = { 0 };
    struct weft_subprocess_transport *t = (void *)1;
    char *argv[] = { "/nonexistent/weft-no-such-program", NULL };
    char *argv2[] = { "weft-no-such-program-in-path", NULL };
    char path[] = "/tmp/weft-noexec-XXXXXX";
    char *argv3[] = { path, NULL };                 /* mode 0600: not executable */
    siginfo_t si = { 0 };
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(weft_create_subprocess_exec(harness_loop, sp_factory, &r, argv, &o, &t),
                     -ENOENT);
    assert_null(t);
    assert_true(r.lost);                    /* the protocol was told, to free itself */
    assert_int_equal(r.lost_error, -ENOENT);
    assert_int_equal(weft_create_subprocess_exec(harness_loop, sp_factory, &r, argv2, NULL, &t),
                     -ENOENT);
    assert_int_equal(weft_create_subprocess_exec(harness_loop, sp_factory, &r, argv3, NULL, &t),
                     -EACCES);
    unlink(path);
    /* no child left behind, no descriptor either (checked by the fd test's count) */
    assert_int_equal(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT), -1);
    assert_int_equal(errno, ECHILD);
}

static void
test_protocol_close_kills_a_running_child(void **state)
{
    struct weft_subprocess_options o = PIPES;
    struct sp_rec r = { 0 };
    struct weft_subprocess_transport *t;

    (void)state;
    assert_int_equal(weft_create_subprocess_shell(harness_loop, sp_factory, &r, "read x", &o, &t),
                     0);
    harness_run_for(harness_loop, 10);
    assert_false(weft_subprocess_transport_get_returncode(t, NULL));
    weft_subprocess_transport_close(t);
    assert_true(weft_subprocess_transport_is_closing(t));
    assert_int_equal(harness_run_until(harness_loop, &r.lost, 5000), 0);
    assert_int_equal(r.rc, -SIGKILL);
}

/* ---- tasks and streams ---- */

static intptr_t
cat_echo(void *arg)
{
    struct weft_subprocess_options o = PIPES;
    char *argv[] = { "cat", NULL };
    struct weft_process *p;
    char line[64];
    int rc;

    (void)arg;
    assert_int_equal(weft_subprocess_exec(argv, &o, 0, &p), 0);
    assert_true(weft_process_pid(p) > 0);
    assert_int_equal(weft_writer_write(weft_process_stdin(p), "hello\n", 6), 0);
    assert_int_equal(weft_writer_drain(weft_process_stdin(p)), 0);
    assert_int_equal(weft_reader_readline(weft_process_stdout(p), line, sizeof(line)), 6);
    assert_string_equal(line, "hello\n");
    assert_int_equal(weft_writer_write(weft_process_stdin(p), "bye", 3), 0);
    assert_int_equal(weft_writer_close(weft_process_stdin(p)), 0);     /* EOF for cat */
    assert_int_equal(weft_reader_readline(weft_process_stdout(p), line, sizeof(line)), 3);
    assert_string_equal(line, "bye");
    assert_int_equal(weft_reader_readline(weft_process_stdout(p), line, sizeof(line)), 0);
    assert_true(weft_reader_at_eof(weft_process_stdout(p)));
    assert_int_equal(weft_process_wait(p, &rc), 0);
    assert_int_equal(rc, 0);
    assert_true(weft_process_returncode(p, &rc));
    weft_process_free(p);
    return 0;
}

static void
test_cat_echoes_what_is_written_and_ends_at_eof(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, cat_echo, NULL, 5000), 0);
}

static intptr_t
out_err_status(void *arg)
{
    struct weft_subprocess_options o = PIPES;
    struct weft_process *p;
    char *out, *err;
    size_t outlen, errlen;
    int rc = -1;

    (void)arg;
    assert_int_equal(weft_subprocess_shell("echo out; echo err >&2; exit 3", &o, 0, &p), 0);
    assert_int_equal(weft_process_communicate(p, NULL, 0, &out, &outlen, &err, &errlen, &rc), 0);
    assert_int_equal(rc, 3);
    assert_string_equal(out, "out\n");
    assert_int_equal(outlen, 4);
    assert_string_equal(err, "err\n");
    assert_int_equal(errlen, 4);
    free(out);
    free(err);
    weft_process_free(p);
    return 0;
}

static void
test_shell_status_and_both_streams(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, out_err_status, NULL, 5000), 0);
}

static intptr_t
communicate_input(void *arg)
{
    struct weft_subprocess_options o = PIPES;
    char *argv[] = { "tr", "a-z", "A-Z", NULL };
    struct weft_process *p;
    char *out;
    size_t outlen;
    int rc = -1;

    (void)arg;
    o.stdio[2].kind = WEFT_STDIO_STDOUT;
    assert_int_equal(weft_subprocess_exec(argv, &o, 0, &p), 0);
    assert_null(weft_process_stderr(p));
    assert_int_equal(weft_process_communicate(p, "abc", 3, &out, &outlen, NULL, NULL, &rc), 0);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "ABC");
    free(out);
    weft_process_free(p);
    /* stderr into stdout: one stream, in the order written */
    assert_int_equal(weft_subprocess_shell("echo a; echo b >&2; echo c", &o, 0, &p), 0);
    assert_int_equal(weft_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL, &rc), 0);
    assert_string_equal(out, "a\nb\nc\n");
    free(out);
    weft_process_free(p);
    return 0;
}

/* 1 MiB for a child that never reads its stdin: EPIPE is no error, and no SIGPIPE kills us. */
static intptr_t
input_not_read(void *arg)
{
    struct weft_subprocess_options o = PIPES;
    static char big[1 << 20];
    struct weft_process *p;
    int rc = -1;

    (void)arg;
    assert_int_equal(weft_subprocess_shell("exec 0<&-; echo gone", &o, 0, &p), 0);
    assert_int_equal(weft_process_communicate(p, big, sizeof(big), NULL, NULL, NULL, NULL, &rc),
                     0);
    assert_int_equal(rc, 0);
    weft_process_free(p);
    return 0;
}

static void
test_input_the_child_does_not_read(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, input_not_read, NULL, 5000), 0);
}

static void
test_communicate_feeds_stdin(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, communicate_input, NULL, 5000), 0);
}

static intptr_t
ignores_term(void *arg)
{
    struct weft_subprocess_options o = PIPES;
    struct weft_process *p;
    struct weft_timeout to;
    char line[16];
    int rc = 0;

    (void)arg;
    o.stdio[2].kind = WEFT_STDIO_INHERIT;
    assert_int_equal(weft_subprocess_shell("trap '' TERM; echo ready; read x", &o, 0, &p), 0);
    assert_int_equal(weft_reader_readline(weft_process_stdout(p), line, sizeof(line)), 6);
    assert_int_equal(weft_process_terminate(p), 0);
    assert_int_equal(weft_timeout_enter(&to, 100), 0);
    rc = (int)weft_timeout_exit(&to, weft_process_wait(p, NULL));
    assert_int_equal(rc, -ETIMEDOUT);           /* TERM was ignored: still running */
    assert_false(weft_process_returncode(p, NULL));
    assert_int_equal(weft_process_kill(p), 0);
    assert_int_equal(weft_process_wait(p, &rc), 0);
    assert_int_equal(rc, -SIGKILL);
    assert_int_equal(weft_process_kill(p), -ESRCH);
    weft_process_free(p);
    return 0;
}

static void
test_child_ignoring_sigterm_is_killed(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, ignores_term, NULL, 5000), 0);
}

static intptr_t
missing(void *arg)
{
    char *argv[] = { "weft-no-such-program", "x", NULL };
    struct weft_process *p = (void *)1;

    (void)arg;
    assert_int_equal(weft_subprocess_exec(argv, NULL, 0, &p), -ENOENT);
    assert_null(p);
    return 0;
}

static void
test_missing_program_is_enoent(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, missing, NULL, 5000), 0);
}

static intptr_t
env_cwd(void *arg)
{
    struct weft_subprocess_options o = PIPES;
    char *env[] = { "WEFT_TEST_VAR=woven", NULL, NULL };
    char *argv[] = { "/bin/sh", "-c", "echo \"$WEFT_TEST_VAR\"; pwd; echo \"${HOME:-nohome}\"",
                     NULL };
    const char *dir = arg;
    struct weft_process *p;
    char *out, want[256];
    int rc;

    o.env = env;
    o.cwd = dir;
    assert_int_equal(weft_subprocess_exec(argv, &o, 0, &p), 0);
    assert_int_equal(weft_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL, &rc), 0);
    snprintf(want, sizeof(want), "woven\n%s\nnohome\n", dir);
    assert_string_equal(out, want);
    free(out);
    weft_process_free(p);
    o.cwd = "/nonexistent/weft-dir";
    assert_int_equal(weft_subprocess_exec(argv, &o, 0, &p), -ENOENT);
    /* a program is looked for along the PATH of the env given */
    o.cwd = NULL;
    argv[0] = "sh";
    env[1] = "PATH=/nonexistent";
    assert_int_equal(weft_subprocess_exec(argv, &o, 0, &p), -ENOENT);
    env[1] = "PATH=/nonexistent:/bin:/usr/bin";
    assert_int_equal(weft_subprocess_exec(argv, &o, 0, &p), 0);
    assert_int_equal(weft_process_communicate(p, NULL, 0, NULL, NULL, NULL, NULL, &rc), 0);
    assert_int_equal(rc, 0);
    weft_process_free(p);
    return 0;
}

static void
test_env_and_cwd_are_honoured(void **state)
{
    char dir[] = "/tmp/weft-cwd-XXXXXX";

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(harness_run_task(harness_loop, env_cwd, dir, 5000), 0);
    rmdir(dir);
}

/* 4 MiB through a reader taking 4 KiB at a time and sleeping: the pipe pauses, not buffers. */
#define BIG (4u << 20)
#define LIMIT (64u * 1024)

static intptr_t
big_slow(void *arg)
{
    struct weft_subprocess_options o = PIPES;
    char *argv[] = { "head", "-c", "4194304", "/dev/zero", NULL };
    size_t *most = arg, total = 0;
    struct weft_process *p;
    static char buf[4096];
    ssize_t n;
    int rc, reads = 0;

    assert_int_equal(weft_subprocess_exec(argv, &o, LIMIT, &p), 0);
    while ((n = weft_reader_read(weft_process_stdout(p), buf, sizeof(buf))) > 0) {
        size_t b = weft_reader_buffered(weft_process_stdout(p));

        if (b > *most)
            *most = b;
        total += (size_t)n;
        if (++reads % 64 == 0)
            assert_int_equal(weft_sleep(1), 0);
    }
    assert_int_equal(n, 0);
    assert_int_equal(total, BIG);
    assert_int_equal(weft_process_wait(p, &rc), 0);
    assert_int_equal(rc, 0);
    weft_process_free(p);
    return 0;
}

static void
test_big_output_slow_reader_is_flow_controlled(void **state)
{
    size_t most = 0;

    (void)state;
    assert_int_equal(harness_run_task(harness_loop, big_slow, &most, 20000), 0);
    /* paused above 2 x limit; one pipe read (64 KiB) may land on top */
    assert_true(most <= 2 * LIMIT + 64 * 1024);
}

/* The test's own child (forked here) keeps its status for the test's waitpid. */
static intptr_t
run_cat(void *arg)
{
    struct weft_subprocess_options o = PIPES;
    char *argv[] = { "cat", NULL };
    struct weft_process *p;
    char *out;
    int rc;

    (void)arg;
    assert_int_equal(weft_subprocess_exec(argv, &o, 0, &p), 0);
    assert_int_equal(weft_process_communicate(p, "x", 1, &out, NULL, NULL, NULL, &rc), 0);
    assert_string_equal(out, "x");
    free(out);
    weft_process_free(p);
    return 0;
}

static void
test_other_child_status_is_left_alone(void **state)
{
    siginfo_t si = { 0 };
    int st = 0;
    pid_t mine;

    (void)state;
    mine = fork();
    assert_true(mine >= 0);
    if (mine == 0)
        _exit(7);
    /* it has exited (a zombie, ours) before the loop's child starts and ends */
    assert_int_equal(waitid(P_PID, (id_t)mine, &si, WEXITED | WNOWAIT), 0);
    assert_int_equal(harness_run_task(harness_loop, run_cat, NULL, 5000), 0);
    assert_int_equal(waitpid(mine, &st, 0), mine);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 7);
}

/* weftd's master blocks SIGCHLD (it reads it from a signalfd): a pidfd does not care. */
static void
test_works_with_sigchld_blocked(void **state)
{
    sigset_t chld, old;

    (void)state;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    assert_int_equal(sigprocmask(SIG_BLOCK, &chld, &old), 0);
    assert_int_equal(harness_run_task(harness_loop, run_cat, NULL, 5000), 0);
    assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
}

static intptr_t
waiter(void *arg)
{
    return weft_process_wait(arg, NULL);
}

static intptr_t
cancelled_wait(void *arg)
{
    struct weft_subprocess_options o = PIPES;
    char *argv[] = { "cat", NULL };
    struct weft_process *p;
    struct weft_task *w1, *w2;
    int rc;

    (void)arg;
    assert_int_equal(weft_subprocess_exec(argv, &o, 0, &p), 0);
    w1 = weft_task_spawn(weft_get_running_loop(), waiter, p, NULL);
    w2 = weft_task_spawn(weft_get_running_loop(), waiter, p, NULL);
    assert_non_null(w1);
    assert_non_null(w2);
    assert_int_equal(weft_sleep(10), 0);
    assert_true(weft_task_cancel(w1));
    assert_int_equal(weft_await(weft_task_future(w1)), -ECANCELED);
    assert_false(weft_process_returncode(p, NULL));     /* the child goes on */
    weft_writer_close(weft_process_stdin(p));           /* now cat ends */
    assert_int_equal(weft_await(weft_task_future(w2)), 0);  /* the other waiter is not hurt */
    assert_int_equal(weft_process_wait(p, &rc), 0);
    assert_int_equal(rc, 0);
    weft_task_unref(w1);
    weft_task_unref(w2);
    weft_process_free(p);
    return 0;
}

static void
test_cancelled_wait_leaves_the_child_and_other_waiters(void **state)
{
    (void)state;
    assert_int_equal(harness_run_task(harness_loop, cancelled_wait, NULL, 5000), 0);
}

/* Nothing of ours leaks into the child: ls sees its 0, 1, 2 and the directory it reads. */
static intptr_t
fds_in_child(void *arg)
{
    struct weft_subprocess_options o = PIPES;
    char *argv[] = { "ls", "/proc/self/fd", NULL };
    struct weft_process *p;
    char *out;
    int rc;

    (void)arg;
    o.stdio[0].kind = WEFT_STDIO_DEVNULL;
    o.stdio[2].kind = WEFT_STDIO_STDOUT;
    assert_int_equal(weft_subprocess_exec(argv, &o, 0, &p), 0);
    assert_int_equal(weft_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL, &rc), 0);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "0\n1\n2\n3\n");
    free(out);
    weft_process_free(p);
    return 0;
}

static void
test_no_descriptor_leaks_into_the_child(void **state)
{
    int leak = open("/dev/null", O_RDONLY);     /* not O_CLOEXEC: posix_spawn must close it */

    (void)state;
    assert_true(leak > 3);
    assert_int_equal(harness_run_task(harness_loop, fds_in_child, NULL, 5000), 0);
    close(leak);
}

/* stdout into a descriptor of ours (WEFT_STDIO_FD): the child writes straight to it. */
static intptr_t
to_fd(void *arg)
{
    struct weft_subprocess_options o = { .stdio = { { WEFT_STDIO_DEVNULL },
                                                    { WEFT_STDIO_FD, *(int *)arg } } };
    struct weft_process *p;
    int rc;

    assert_int_equal(weft_subprocess_shell("echo via-fd", &o, 0, &p), 0);
    assert_null(weft_process_stdout(p));
    assert_int_equal(weft_process_wait(p, &rc), 0);
    assert_int_equal(rc, 0);
    weft_process_free(p);
    o.stdio[1].fd = 1000;
    assert_int_equal(weft_subprocess_shell("true", &o, 0, &p), -EBADF);
    return 0;
}

static void
test_stdout_to_a_descriptor(void **state)
{
    char buf[32] = { 0 };
    int fds[2];

    (void)state;
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(harness_run_task(harness_loop, to_fd, &fds[1], 5000), 0);
    close(fds[1]);
    assert_int_equal(read(fds[0], buf, sizeof(buf)), 7);
    assert_string_equal(buf, "via-fd\n");
    close(fds[0]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_protocol_cat_echoes_and_ends_in_order,
                                        harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_protocol_missing_program_is_enoent, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_protocol_close_kills_a_running_child,
                                        harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_cat_echoes_what_is_written_and_ends_at_eof,
                                        harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_shell_status_and_both_streams, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_communicate_feeds_stdin, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_input_the_child_does_not_read, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_child_ignoring_sigterm_is_killed, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_missing_program_is_enoent, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_env_and_cwd_are_honoured, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_big_output_slow_reader_is_flow_controlled,
                                        harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_other_child_status_is_left_alone, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_works_with_sigchld_blocked, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_wait_leaves_the_child_and_other_waiters,
                                        harness_setup, harness_teardown),
        cmocka_unit_test_setup_teardown(test_no_descriptor_leaks_into_the_child, harness_setup,
                                        harness_teardown),
        cmocka_unit_test_setup_teardown(test_stdout_to_a_descriptor, harness_setup,
                                        harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
