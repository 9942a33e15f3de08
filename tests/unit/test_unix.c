/* SPDX-License-Identifier: MIT */
/* test_unix.c: Unix domain servers and connections, on the Protocol and the stream layer. */
/* WRAP: weft_create_server_fds */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <weft/weft.h>

#include "harness.h"

/* unix.c hands its bound socket to weft_create_server_fds: make that fail on demand. */
int __real_weft_create_server_fds(struct weft_loop *loop, weft_protocol_factory_cb *factory,
                                  void *arg, const int *fds, size_t nfds,
                                  const struct weft_server_options *opts,
                                  struct weft_server **out);
int __wrap_weft_create_server_fds(struct weft_loop *loop, weft_protocol_factory_cb *factory,
                                  void *arg, const int *fds, size_t nfds,
                                  const struct weft_server_options *opts,
                                  struct weft_server **out);
static int fail_server_fds;     /* the next call returns this, if not 0 */

int
__wrap_weft_create_server_fds(struct weft_loop *loop, weft_protocol_factory_cb *factory,
                              void *arg, const int *fds, size_t nfds,
                              const struct weft_server_options *opts, struct weft_server **out)
{
    int rc = fail_server_fds;

    if (rc != 0) {
        fail_server_fds = 0;
        return rc;
    }
    return __real_weft_create_server_fds(loop, factory, arg, fds, nfds, opts, out);
}

static int upper_echo(struct weft_reader *r, struct weft_writer *w, void *arg);

/* Descriptors open in this process. */
static int
fd_count(void)
{
    int n = 0;

    for (int fd = 0; fd < 1024; fd++)
        n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

/* A directory of our own for the socket files, removed with what is left in it. */
struct fixture {
    char dir[64];
    char path[128];
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/weft-unix-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/s.sock", f->dir);
    *state = f;
    return harness_setup(&(void *){ NULL });
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    harness_teardown(state);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* A protocol that records what it sees; the server's echoes, the client's collects. */
struct probe_stats {
    bool echo;
    int made, lost;
    bool made_flag, lost_flag, got_flag;
    char peer[160];
    int cred_rc;
    struct ucred cred;
    struct sockaddr_un sock, peername;
    size_t socklen, peerlen;
    char got[64];
    size_t ngot;
};

struct probe {
    struct weft_protocol base;
    struct probe_stats *st;
    struct weft_transport *tr;
};

static int
probe_made(struct weft_protocol *p, struct weft_transport *tr)
{
    struct probe *pr = (struct probe *)p;
    struct probe_stats *st = pr->st;
    size_t cl = sizeof(st->cred);

    pr->tr = tr;
    st->made++;
    st->made_flag = true;
    weft_transport_peer_string(tr, st->peer, sizeof(st->peer));
    st->cred_rc = weft_transport_get_extra_info(tr, "peercred", &st->cred, &cl);
    st->socklen = sizeof(st->sock);
    st->peerlen = sizeof(st->peername);
    assert_int_equal(weft_transport_get_extra_info(tr, "sockname", &st->sock, &st->socklen), 0);
    assert_int_equal(weft_transport_get_extra_info(tr, "peername", &st->peername, &st->peerlen),
                     0);
    return 0;
}

static int
probe_data(struct weft_protocol *p, struct evbuffer *in)
{
    struct probe *pr = (struct probe *)p;
    struct probe_stats *st = pr->st;

    if (st->echo)
        return weft_transport_write_buffer(pr->tr, in);
    st->ngot += (size_t)evbuffer_remove(in, st->got + st->ngot, sizeof(st->got) - 1 - st->ngot);
    st->got_flag = true;
    return 0;
}

static void
probe_lost(struct weft_protocol *p, int error)
{
    struct probe *pr = (struct probe *)p;

    (void)error;
    pr->st->lost++;
    pr->st->lost_flag = true;
    free(pr);
}

static const struct weft_protocol_ops probe_ops = {
    .connection_made = probe_made,
    .data_received = probe_data,
    .connection_lost = probe_lost,
};

static struct weft_protocol *
probe_factory(void *arg)
{
    struct probe *pr = calloc(1, sizeof(*pr));

    if (pr == NULL)
        return NULL;
    pr->base.ops = &probe_ops;
    pr->st = arg;
    return &pr->base;
}

struct outcome {
    bool called;
    int error;
    struct weft_transport *tr;
};

static void
on_connect(struct weft_transport *tr, int error, void *arg)
{
    struct outcome *o = arg;

    o->called = true;
    o->error = error;
    o->tr = tr;
}

/* Connect a client probe to path, assert it succeeds; returns its transport. */
static struct weft_transport *
connect_probe(const char *path, const struct weft_connect_options *opts,
              struct probe_stats *cli)
{
    struct outcome o = { 0 };

    assert_int_equal(weft_create_unix_connection(harness_loop, probe_factory, cli, path, opts,
                                                 on_connect, &o, NULL), 0);
    assert_false(o.called);     /* never from inside the call */
    assert_int_equal(harness_run_until(harness_loop, &o.called, 3000), 0);
    assert_int_equal(o.error, 0);
    return o.tr;
}

static int
connect_error(const char *path)
{
    struct probe_stats cli = { 0 };
    struct outcome o = { 0 };

    assert_int_equal(weft_create_unix_connection(harness_loop, probe_factory, &cli, path, NULL,
                                                 on_connect, &o, NULL), 0);
    assert_int_equal(harness_run_until(harness_loop, &o.called, 3000), 0);
    assert_null(o.tr);
    assert_int_equal(cli.made, 0);
    return o.error;
}

static void
test_unix_round_trip_with_peercred_and_write_eof(void **state)
{
    struct fixture *f = *state;
    struct probe_stats srv = { .echo = true }, cli = { 0 };
    struct weft_server *s = NULL;
    struct sockaddr_un sun;
    socklen_t len = sizeof(sun);
    struct weft_transport *tr;
    struct stat st;
    char want[160];

    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &srv, f->path, NULL,
                                             &s), 0);
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(weft_server_socket_count(s), 1);
    assert_int_equal(weft_server_get_sockname(s, 0, (struct sockaddr *)&sun, &len), 0);
    assert_int_equal(sun.sun_family, AF_UNIX);
    assert_string_equal(sun.sun_path, f->path);

    tr = connect_probe(f->path, NULL, &cli);
    assert_int_equal(harness_run_until(harness_loop, &srv.made_flag, 2000), 0);
    /* The server side: an unnamed client, known by its credentials (ours). */
    assert_int_equal(srv.cred_rc, 0);
    assert_int_equal(srv.cred.pid, getpid());
    assert_int_equal(srv.cred.uid, getuid());
    assert_int_equal(srv.cred.gid, getgid());
    snprintf(want, sizeof(want), "unix:pid=%ld,uid=%lu", (long)getpid(), (unsigned long)getuid());
    assert_string_equal(srv.peer, want);
    assert_int_equal(srv.peername.sun_family, AF_UNIX);
    assert_int_equal(srv.peerlen, offsetof(struct sockaddr_un, sun_path));
    assert_string_equal(srv.sock.sun_path, f->path);
    /* The client side: the server's path is its peer. */
    snprintf(want, sizeof(want), "unix:%s", f->path);
    assert_string_equal(cli.peer, want);
    assert_string_equal(cli.peername.sun_path, f->path);
    assert_int_equal(cli.cred_rc, 0);
    assert_int_equal(cli.cred.pid, getpid());

    assert_int_equal(weft_transport_write(tr, "ping", 4), 0);
    while (cli.ngot < 4)
        assert_int_equal(harness_run_until(harness_loop, &cli.got_flag, 2000), 0),
            cli.got_flag = false;
    assert_string_equal(cli.got, "ping");
    /* write_eof is a shutdown(SHUT_WR): the server sees EOF and closes, as does our side. */
    assert_true(weft_transport_can_write_eof(tr));
    assert_int_equal(weft_transport_write_eof(tr), 0);
    assert_int_equal(harness_run_until(harness_loop, &srv.lost_flag, 2000), 0);
    assert_int_equal(harness_run_until(harness_loop, &cli.lost_flag, 2000), 0);

    weft_server_free(s);
    assert_int_equal(lstat(f->path, &st), -1);     /* the server removed its file */
    assert_int_equal(errno, ENOENT);
}

static void
test_unix_abstract_name_has_no_file(void **state)
{
    struct fixture *f = *state;
    struct probe_stats srv = { .echo = true }, cli = { 0 };
    struct weft_server *s = NULL, *s2 = NULL;
    struct sockaddr_un sun;
    socklen_t len = sizeof(sun);
    char name[64], want[80];

    (void)f;
    snprintf(name, sizeof(name), "@weft-test-%ld", (long)getpid());
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &srv, name, NULL, &s),
                     0);
    assert_int_equal(access(name, F_OK), -1);
    assert_int_equal(weft_server_get_sockname(s, 0, (struct sockaddr *)&sun, &len), 0);
    assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen(name));
    assert_int_equal(sun.sun_path[0], '\0');
    assert_memory_equal(sun.sun_path + 1, name + 1, strlen(name) - 1);
    /* A name in use is in use: no stale file to remove. */
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &srv, name, NULL, &s2),
                     -EADDRINUSE);

    (void)connect_probe(name, NULL, &cli);
    snprintf(want, sizeof(want), "unix:%s", name);
    assert_string_equal(cli.peer, want);
    assert_int_equal(harness_run_until(harness_loop, &srv.made_flag, 2000), 0);
    weft_server_free(s);
    assert_int_equal(harness_run_until(harness_loop, &cli.lost_flag, 2000), 0);
    assert_int_equal(connect_error(name), -ECONNREFUSED);
}

static void
test_unix_stale_socket_file_is_replaced(void **state)
{
    struct fixture *f = *state;
    struct probe_stats srv = { .echo = true }, cli = { 0 };
    struct weft_server *s = NULL;
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    struct stat before, after;
    char old[160];
    int fd;

    /* What a server killed with SIGKILL leaves: a socket file nobody listens on. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    strcpy(sun.sun_path, f->path);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    /* A second name keeps the stale inode alive, so a new file cannot reuse its number. */
    snprintf(old, sizeof(old), "%s/old", f->dir);
    assert_int_equal(link(f->path, old), 0);
    assert_int_equal(lstat(f->path, &before), 0);
    assert_int_equal(connect_error(f->path), -ECONNREFUSED);

    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &srv, f->path, NULL,
                                             &s), 0);
    assert_int_equal(lstat(f->path, &after), 0);
    assert_true(S_ISSOCK(after.st_mode));
    assert_true(after.st_ino != before.st_ino);
    (void)connect_probe(f->path, NULL, &cli);
    assert_int_equal(harness_run_until(harness_loop, &srv.made_flag, 2000), 0);
    weft_server_free(s);
    assert_int_equal(harness_run_until(harness_loop, &cli.lost_flag, 2000), 0);
}

static void
test_unix_non_socket_file_is_refused_and_kept(void **state)
{
    struct fixture *f = *state;
    struct probe_stats srv = { 0 };
    struct weft_server *s = NULL;
    char buf[16] = { 0 };
    int fd;

    fd = open(f->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "precious", 8), 8);
    close(fd);
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &srv, f->path, NULL,
                                             &s), -EADDRINUSE);
    assert_null(s);
    fd = open(f->path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf) - 1), 8);
    close(fd);
    assert_string_equal(buf, "precious");
    /* A directory is not a socket either. */
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &srv, f->dir, NULL,
                                             &s), -EADDRINUSE);
    assert_int_equal(access(f->dir, F_OK), 0);
}

static void
test_unix_close_leaves_a_newer_servers_file(void **state)
{
    struct fixture *f = *state;
    struct probe_stats srv = { .echo = true }, cli = { 0 };
    struct weft_server *a = NULL, *b = NULL;
    struct stat st;

    /* b takes the name over (a's file looks stale to it); closing a must not remove b's. */
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &srv, f->path, NULL,
                                             &a), 0);
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &srv, f->path, NULL,
                                             &b), 0);
    weft_server_close(a);
    assert_int_equal(lstat(f->path, &st), 0);
    (void)connect_probe(f->path, NULL, &cli);
    assert_int_equal(harness_run_until(harness_loop, &srv.made_flag, 2000), 0);
    assert_int_equal(weft_server_connection_count(b), 1);
    weft_server_free(a);
    weft_server_free(b);
    assert_int_equal(lstat(f->path, &st), -1);
    assert_int_equal(harness_run_until(harness_loop, &cli.lost_flag, 2000), 0);
}

static void
test_unix_server_failure_leaves_no_file_and_no_fd(void **state)
{
    struct fixture *f = *state;
    struct probe_stats st = { 0 };
    struct weft_server *s = NULL;
    struct weft_stream_server *ss = NULL;
    int before = fd_count();

    fail_server_fds = -ENOMEM;
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &st, f->path, NULL,
                                             &s), -ENOMEM);
    assert_null(s);
    assert_int_equal(access(f->path, F_OK), -1);
    assert_int_equal(fd_count(), before);
    fail_server_fds = -ENOMEM;
    assert_int_equal(weft_start_unix_server(harness_loop, upper_echo, NULL, f->path, NULL, &ss),
                     -ENOMEM);
    assert_null(ss);
    assert_int_equal(access(f->path, F_OK), -1);
    assert_int_equal(fd_count(), before);
    /* And then it works. */
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &st, f->path, NULL,
                                             &s), 0);
    weft_server_free(s);
    assert_int_equal(access(f->path, F_OK), -1);
    assert_int_equal(fd_count(), before);
}

static void
test_unix_bad_paths_and_connect_errors(void **state)
{
    struct fixture *f = *state;
    struct probe_stats st = { 0 };
    struct weft_server *s = NULL;
    struct outcome o = { 0 };
    char path[200];

    memset(path, 'a', sizeof(path) - 1);
    path[0] = '/';
    path[sizeof(path) - 1] = '\0';
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &st, path, NULL, &s),
                     -ENAMETOOLONG);
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &st, "", NULL, &s),
                     -EINVAL);
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &st, "@", NULL, &s),
                     -EINVAL);
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &st, NULL, NULL, &s),
                     -EINVAL);
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &st,
                                             "/nonexistent-dir/x.sock", NULL, &s), -ENOENT);
    assert_int_equal(weft_create_unix_connection(harness_loop, probe_factory, &st, path, NULL,
                                                 on_connect, &o, NULL), -ENAMETOOLONG);
    assert_int_equal(weft_create_unix_connection(harness_loop, probe_factory, &st, "", NULL,
                                                 on_connect, &o, NULL), -EINVAL);
    assert_false(o.called);
    assert_int_equal(connect_error(f->path), -ENOENT);
}

static void
test_unix_peer_string_escapes_a_bound_client_name(void **state)
{
    struct fixture *f = *state;
    struct probe_stats srv = { .echo = true }, cli = { 0 };
    struct weft_connect_options opts = WEFT_CONNECT_OPTIONS_INIT;
    struct sockaddr_un local = { .sun_family = AF_UNIX };
    struct weft_server *s = NULL;
    char want[160];

    snprintf(local.sun_path, sizeof(local.sun_path), "%s/my client", f->dir);
    opts.local_addr = (struct sockaddr *)&local;
    opts.local_addrlen = sizeof(local);
    assert_int_equal(weft_create_unix_server(harness_loop, probe_factory, &srv, f->path, NULL,
                                             &s), 0);
    (void)connect_probe(f->path, &opts, &cli);
    assert_int_equal(harness_run_until(harness_loop, &srv.made_flag, 2000), 0);
    snprintf(want, sizeof(want), "unix:%s/my\\x20client", f->dir);
    assert_string_equal(srv.peer, want);
    weft_server_free(s);
    assert_int_equal(harness_run_until(harness_loop, &cli.lost_flag, 2000), 0);
}

static void
test_peercred_is_unix_only(void **state)
{
    struct probe_stats st = { 0 };
    struct weft_transport *tr = NULL;
    struct ucred cred;
    size_t len = sizeof(cred);
    int cfd, sfd;

    (void)state;
    assert_int_equal(harness_tcp_pair(&cfd, &sfd), 0);
    assert_int_equal(weft_connect_accepted_socket(harness_loop, probe_factory, &st, sfd, &tr), 0);
    assert_int_equal(weft_transport_get_extra_info(tr, "peercred", &cred, &len), -ENOENT);
    assert_int_equal(st.cred_rc, -ENOENT);
    weft_transport_abort(tr);
    close(cfd);
    assert_int_equal(harness_run_until(harness_loop, &st.lost_flag, 2000), 0);
}

/* ---- streams ---- */

static int
upper_echo(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    char line[64];
    ssize_t n;

    (void)arg;
    while ((n = weft_reader_readline(r, line, sizeof(line))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (line[i] >= 'a' && line[i] <= 'z')
                line[i] = (char)(line[i] - 'a' + 'A');
        int rc = weft_writer_write(w, line, (size_t)n);
        if (rc == 0)
            rc = weft_writer_drain(w);
        if (rc < 0)
            return rc;
    }
    return n < 0 ? (int)n : weft_writer_close(w);
}

static intptr_t
stream_client(void *arg)
{
    const char *path = arg;
    struct weft_reader *r;
    struct weft_writer *w;
    char line[64];
    ssize_t n;
    int rc;

    rc = weft_open_unix_connection(path, NULL, &r, &w);
    if (rc < 0)
        return rc;
    rc = weft_writer_write(w, "hello unix\n", 11);
    if (rc == 0)
        rc = weft_writer_drain(w);
    n = rc < 0 ? rc : weft_reader_readline(r, line, sizeof(line) - 1);
    if (n > 0) {
        line[n] = '\0';
        harness_say("%s", line);
    }
    if (n > 0 && (rc = weft_writer_write_eof(w)) == 0)
        n = weft_reader_read(r, line, sizeof(line));   /* the handler closes: EOF */
    weft_writer_free(w);
    return n < 0 ? n : rc < 0 ? rc : n;
}

static void
test_streams_start_unix_server_and_open_unix_connection(void **state)
{
    struct fixture *f = *state;
    struct weft_stream_server *ss = NULL;
    struct stat st;
    char name[64];

    assert_int_equal(weft_start_unix_server(harness_loop, upper_echo, NULL, f->path, NULL, &ss), 0);
    assert_int_equal(weft_stream_server_socket_count(ss), 1);
    assert_int_equal(harness_run_task(harness_loop, stream_client, f->path, 5000), 0);
    assert_string_equal(harness_out, "HELLO UNIX\n");

    /* The abstract namespace too. */
    snprintf(name, sizeof(name), "@weft-stream-%ld", (long)getpid());
    struct weft_stream_server *ss2 = NULL;
    assert_int_equal(weft_start_unix_server(harness_loop, upper_echo, NULL, name, NULL, &ss2), 0);
    harness_out[0] = '\0';
    assert_int_equal(harness_run_task(harness_loop, stream_client, name, 5000), 0);
    assert_string_equal(harness_out, "HELLO UNIX\n");
    weft_stream_server_free(ss2);

    weft_stream_server_free(ss);
    assert_int_equal(lstat(f->path, &st), -1);
    assert_int_equal(harness_run_task(harness_loop, stream_client, f->path, 5000), -ENOENT);
    assert_int_equal(weft_start_unix_server(harness_loop, upper_echo, NULL, NULL, NULL, &ss),
                     -EINVAL);
}

static intptr_t
open_outside_task_is_refused(void *arg)
{
    struct weft_reader *r;
    struct weft_writer *w;
    struct weft_stream_options o = { .tls = (const void *)1 };    /* no server_hostname */

    (void)arg;
    return weft_open_unix_connection("/nonexistent.sock", &o, &r, &w);
}

static void
test_streams_open_unix_connection_argument_errors(void **state)
{
    struct weft_reader *r;
    struct weft_writer *w;

    (void)state;
    assert_int_equal(weft_open_unix_connection("/x.sock", NULL, &r, &w), -WEFT_ENOTASK);
    assert_int_equal(weft_open_unix_connection("", NULL, &r, &w), -EINVAL);
    assert_int_equal(harness_run_task(harness_loop, open_outside_task_is_refused, NULL, 2000),
                     -EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unix_round_trip_with_peercred_and_write_eof, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unix_abstract_name_has_no_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_stale_socket_file_is_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_non_socket_file_is_refused_and_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unix_close_leaves_a_newer_servers_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unix_server_failure_leaves_no_file_and_no_fd, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unix_bad_paths_and_connect_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unix_peer_string_escapes_a_bound_client_name, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_peercred_is_unix_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams_start_unix_server_and_open_unix_connection,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_streams_open_unix_connection_argument_errors, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
