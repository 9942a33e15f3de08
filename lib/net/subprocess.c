/* SPDX-License-Identifier: MIT */
/* subprocess.c: children started with posix_spawn, their pipes as transports, reaped by pidfd. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include <weft/pipe.h>
#include <weft/subprocess.h>

#include "net/transport-int.h"

#ifndef P_PIDFD
#define P_PIDFD 3           /* linux/wait.h; glibc's sys/wait.h has it from 2.36 */
#endif

#define POLL_MS 50          /* the fallback without a pidfd: waitid(P_PID, WNOHANG) this often */

extern char **environ;

/*
 * Why a pidfd: the loop must learn of its own child's exit without taking
 * anyone else's. SIGCHLD says only that some child changed, and the classic
 * handler, waitpid(-1), reaps children that belong to other code of the
 * process (a test's own fork, a library's helper). A pidfd becomes readable
 * when that one child exits; waitid(P_PIDFD) then reaps it, and no other.
 * Until it is reaped the child's pid cannot be reused, so kill(pid) is safe
 * up to that moment and refused after it (-ESRCH).
 *
 * Each pipe of the child is a pipe transport (pipe.c) whose protocol is a
 * struct pipe_slot here, which forwards to the subprocess protocol with the
 * child's fd number. connection_lost of the subprocess protocol comes once
 * the child is reaped and every pipe is lost, from an event (ev_finish).
 */

struct pipe_slot {
    struct weft_protocol base;          /* the pipe transport's protocol */
    struct weft_subprocess_transport *t;
    struct weft_transport *tr;          /* NULL before it is made and once it is lost */
    int fd;                             /* the child's: 0, 1 or 2 */
};

enum {
    SP_EXITED = 1u << 0,        /* reaped: returncode is set */
    SP_CLOSING = 1u << 1,       /* close() was called */
    SP_FINISHING = 1u << 2,     /* connection_lost is scheduled */
};

struct weft_subprocess_transport {
    struct weft_loop *loop;
    struct weft_subprocess_protocol *proto;
    pid_t pid;
    int pidfd;                          /* -1: polled (POLL_MS) */
    int returncode;
    unsigned flags;
    struct event ev_exit;               /* the pidfd is readable: the child exited */
    struct event ev_finish;             /* activated to deliver connection_lost */
    struct weft_handle *poll;           /* the fallback's timer, or NULL */
    struct pipe_slot pipes[3];
};

static const struct weft_subprocess_protocol_ops *
sp_ops(const struct weft_subprocess_transport *t)
{
    return t->proto != NULL ? t->proto->ops : NULL;
}

static void
report(struct weft_subprocess_transport *t, const char *message, int rc)
{
    weft_loop_call_error_handler(t->loop, &(struct weft_error_context){
        .message = message, .error = rc });
}

static void
try_finish(struct weft_subprocess_transport *t)
{
    if (!(t->flags & SP_EXITED) || (t->flags & SP_FINISHING))
        return;
    for (int i = 0; i < 3; i++)
        if (t->pipes[i].tr != NULL)
            return;
    t->flags |= SP_FINISHING;
    event_active(&t->ev_finish, EV_TIMEOUT, 1);
}

static void
sp_free(struct weft_subprocess_transport *t)
{
    if (t->pidfd >= 0) {
        event_del(&t->ev_exit);
        close(t->pidfd);
    }
    if (t->poll != NULL)
        weft_handle_cancel(t->poll);
    event_del(&t->ev_finish);
    free(t);
}

static void
on_finish(evutil_socket_t fd, short what, void *arg)
{
    struct weft_subprocess_transport *t = arg;
    const struct weft_subprocess_protocol_ops *ops = sp_ops(t);

    (void)fd;
    (void)what;
    if (ops != NULL && ops->connection_lost != NULL)
        ops->connection_lost(t->proto, 0);
    sp_free(t);
}

/* ---- the pipes' protocol ---- */

static int
slot_data_received(struct weft_protocol *p, struct evbuffer *in)
{
    struct pipe_slot *s = (struct pipe_slot *)p;
    struct weft_subprocess_transport *t = s->t;
    const struct weft_subprocess_protocol_ops *ops = sp_ops(t);

    if (ops == NULL || ops->pipe_data_received == NULL) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return 0;
    }
    /* Chain by chain, without a copy; the callback may close the pipe meanwhile. */
    while (evbuffer_get_length(in) > 0 && s->tr != NULL && !weft_transport_is_closing(s->tr)) {
        struct evbuffer_iovec v;
        int rc;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        rc = ops->pipe_data_received(t->proto, s->fd, v.iov_base, v.iov_len);
        evbuffer_drain(in, v.iov_len);
        if (rc < 0) {
            report(t, "subprocess protocol pipe_data_received failed", rc);
            weft_transport_abort(s->tr);
            break;
        }
    }
    return 0;
}

static bool
slot_eof_received(struct weft_protocol *p)
{
    (void)p;
    return false;
}

static void
slot_connection_lost(struct weft_protocol *p, int error)
{
    struct pipe_slot *s = (struct pipe_slot *)p;
    struct weft_subprocess_transport *t = s->t;
    const struct weft_subprocess_protocol_ops *ops = sp_ops(t);

    if (s->tr == NULL)
        return;                 /* it failed while being made: nothing was told */
    s->tr = NULL;
    if (ops != NULL && ops->pipe_connection_lost != NULL)
        ops->pipe_connection_lost(t->proto, s->fd, error);
    try_finish(t);
}

static void
slot_pause_writing(struct weft_protocol *p)
{
    struct pipe_slot *s = (struct pipe_slot *)p;
    const struct weft_subprocess_protocol_ops *ops = sp_ops(s->t);

    if (ops != NULL && ops->pause_writing != NULL)
        ops->pause_writing(s->t->proto);
}

static void
slot_resume_writing(struct weft_protocol *p)
{
    struct pipe_slot *s = (struct pipe_slot *)p;
    const struct weft_subprocess_protocol_ops *ops = sp_ops(s->t);

    if (ops != NULL && ops->resume_writing != NULL)
        ops->resume_writing(s->t->proto);
}

static const struct weft_protocol_ops slot_ops = {
    .data_received = slot_data_received,
    .eof_received = slot_eof_received,
    .connection_lost = slot_connection_lost,
    .pause_writing = slot_pause_writing,
    .resume_writing = slot_resume_writing,
};

static struct weft_protocol *
slot_factory(void *arg)
{
    return arg;
}

/* ---- exit ---- */

static void on_exit_ready(evutil_socket_t fd, short what, void *arg);

/* Reap the child if it has exited. Returns true if it has (returncode set). */
static bool
reap(struct weft_subprocess_transport *t)
{
    siginfo_t si;
    int rc;

    memset(&si, 0, sizeof(si));
    do {
        rc = t->pidfd >= 0 ? waitid((idtype_t)P_PIDFD, (id_t)t->pidfd, &si, WEXITED | WNOHANG)
                           : waitid(P_PID, (id_t)t->pid, &si, WEXITED | WNOHANG);
        if (rc < 0 && errno == EINVAL && t->pidfd >= 0)     /* Linux 5.3: no P_PIDFD yet */
            rc = waitid(P_PID, (id_t)t->pid, &si, WEXITED | WNOHANG);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        /* ECHILD: someone else reaped it (waitpid(-1)), or SIGCHLD is ignored. */
        weft_log(WEFT_LOG_WARNING, "child %ld: cannot read its exit status (%s); "
                 "its return code is 255", (long)t->pid, strerror(errno));
        t->returncode = 255;
        return true;
    }
    if (si.si_pid == 0)
        return false;
    t->returncode = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
    return true;
}

static void
exited(struct weft_subprocess_transport *t)
{
    const struct weft_subprocess_protocol_ops *ops = sp_ops(t);

    t->flags |= SP_EXITED;
    if (t->pidfd >= 0) {
        event_del(&t->ev_exit);
        close(t->pidfd);
        t->pidfd = -1;
    }
    if (ops != NULL && ops->process_exited != NULL)
        ops->process_exited(t->proto);
    try_finish(t);
}

static void
on_exit_ready(evutil_socket_t fd, short what, void *arg)
{
    struct weft_subprocess_transport *t = arg;

    (void)fd;
    (void)what;
    if (reap(t))
        exited(t);
}

static void
on_poll(void *arg)
{
    struct weft_subprocess_transport *t = arg;

    t->poll = NULL;
    if (reap(t)) {
        exited(t);
        return;
    }
    t->poll = weft_call_later(t->loop, POLL_MS, on_poll, t);
    if (t->poll == NULL)
        weft_log(WEFT_LOG_ERR, "child %ld: no memory to poll for its exit", (long)t->pid);
}

/* Watch the child: a pidfd if the kernel gives one, else the polling fallback. 0 or -errno. */
static int
watch_exit(struct weft_subprocess_transport *t)
{
    static atomic_bool no_pidfd;    /* ENOSYS once: do not ask again (valgrind warns each time) */
    struct event_base *base = weft_loop_get_base(t->loop);

    t->pidfd = atomic_load(&no_pidfd) ? -1 : (int)syscall(SYS_pidfd_open, t->pid, 0);
    if (t->pidfd < 0 && errno == ENOSYS)
        atomic_store(&no_pidfd, true);
    if (t->pidfd >= 0) {
        event_assign(&t->ev_exit, base, t->pidfd, EV_READ | EV_PERSIST, on_exit_ready, t);
        if (event_add(&t->ev_exit, NULL) == 0)
            return 0;
        close(t->pidfd);
        t->pidfd = -1;
        return -ENOMEM;
    }
    weft_log(WEFT_LOG_DEBUG, "child %ld: pidfd_open: %s; polling for its exit every %d ms",
             (long)t->pid, strerror(errno), POLL_MS);
    t->poll = weft_call_later(t->loop, POLL_MS, on_poll, t);
    return t->poll != NULL ? 0 : -ENOMEM;
}

/* ---- spawning ---- */

/*
 * The child's descriptors as posix_spawn file actions. Sources below 3
 * (other than the target itself) are first raised to 3 and up in the
 * parent: the dup2 actions run in order, and one onto 0 must not change
 * what a later one copies from 0. Every other descriptor is closed in the
 * child (addclosefrom_np, close_range(2) in glibc).
 */
struct spawn_fds {
    int parent[3];      /* our end of each pipe, or -1 */
    int child[3];       /* the child's end of each pipe, or -1 (closed after the spawn) */
    int raised[3];      /* a copy made at 3 and up, or -1 (closed after the spawn) */
};

static void
fds_close(int *fds)
{
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

static int
add_stdio(posix_spawn_file_actions_t *fa, const struct weft_stdio *io, int i,
          struct spawn_fds *f)
{
    int src = -1, rc;

    switch (io->kind) {
    case WEFT_STDIO_INHERIT:
        return 0;
    case WEFT_STDIO_DEVNULL:
        return -posix_spawn_file_actions_addopen(fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY,
                                                 0);
    case WEFT_STDIO_STDOUT:
        if (i != 2)
            return -EINVAL;
        return -posix_spawn_file_actions_adddup2(fa, 1, 2);
    case WEFT_STDIO_FD:
        if (io->fd < 0 || fcntl(io->fd, F_GETFD) < 0)
            return -EBADF;
        src = io->fd;
        break;
    case WEFT_STDIO_PIPE: {
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
            return -errno;
        f->parent[i] = i == 0 ? p[1] : p[0];
        f->child[i] = src = i == 0 ? p[0] : p[1];
        break;
    }
    default:
        return -EINVAL;
    }
    if (src < 3 && src != i) {
        f->raised[i] = fcntl(src, F_DUPFD_CLOEXEC, 3);
        if (f->raised[i] < 0)
            return -errno;
        src = f->raised[i];
    }
    /* dup2 onto itself clears FD_CLOEXEC (glibc follows POSIX there). */
    rc = posix_spawn_file_actions_adddup2(fa, src, i);
    return -rc;
}

/*
 * What execvp would run for file, into buf: file itself if it has a '/',
 * else the first executable regular file of that name along PATH (env's if
 * env is given, else ours). Returns 0,
 * -ENOENT, -EACCES (found, none executable), -ENAMETOOLONG. glibc's
 * posix_spawn reports the same errors from the child, but only because its
 * child shares our memory (CLONE_VFORK); where the child is a plain fork
 * (under valgrind, older libcs) a failed exec is just an exit status 127. The
 * search is done here so that a missing program is -ENOENT everywhere.
 */
static int
find_program(const char *file, char *const *env, char *buf, size_t size)
{
    const char *path = NULL, *p;
    bool denied = false;
    struct stat st;

    if (strchr(file, '/') != NULL) {
        if (strlen(file) >= size)
            return -ENAMETOOLONG;
        if (stat(file, &st) < 0)
            return -errno;
        if (!S_ISREG(st.st_mode) || access(file, X_OK) < 0)
            return -EACCES;
        strcpy(buf, file);
        return 0;
    }
    if (env == NULL)
        path = getenv("PATH");
    for (; env != NULL && *env != NULL && path == NULL; env++)
        if (strncmp(*env, "PATH=", 5) == 0)
            path = *env + 5;        /* the child's PATH, as CPython's subprocess */
    if (path == NULL)
        path = "/bin:/usr/bin";     /* glibc's execvp default */
    for (p = path;; p++) {
        const char *end = strchrnul(p, ':');
        int n = end == p ? snprintf(buf, size, "%s", file)
                         : snprintf(buf, size, "%.*s/%s", (int)(end - p), p, file);

        if (n > 0 && (size_t)n < size && stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(buf, X_OK) == 0)
                return 0;
            denied = true;
        }
        if (*end == '\0')
            break;
        p = end;
    }
    return denied ? -EACCES : -ENOENT;
}

static int
spawn(char *const argv[], const struct weft_subprocess_options *opts, struct spawn_fds *f,
      pid_t *pid)
{
    static const struct weft_subprocess_options none;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t mask, def;
    char prog[PATH_MAX];
    struct stat st;
    int rc;

    if (opts == NULL)
        opts = &none;
    rc = find_program(argv[0], opts->env, prog, sizeof(prog));
    if (rc < 0)
        return rc;
    if (opts->cwd != NULL && stat(opts->cwd, &st) < 0)
        return -errno;      /* as find_program: an error the child might not report */
    if (posix_spawn_file_actions_init(&fa) != 0)
        return -ENOMEM;
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return -ENOMEM;
    }
    rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = add_stdio(&fa, &opts->stdio[i], i, f);
    if (rc == 0 && opts->cwd != NULL)
        rc = -posix_spawn_file_actions_addchdir_np(&fa, opts->cwd);
    if (rc == 0)
        rc = -posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    if (rc == 0) {
        sigemptyset(&mask);
        sigemptyset(&def);
        sigaddset(&def, SIGPIPE);       /* weftd and many programs ignore it: children must not */
        sigaddset(&def, SIGXFSZ);
        rc = -posix_spawnattr_setsigmask(&attr, &mask);
        if (rc == 0)
            rc = -posix_spawnattr_setsigdefault(&attr, &def);
        if (rc == 0)
            rc = -posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    }
    if (rc == 0)
        rc = -posix_spawn(pid, prog, &fa, &attr, argv, opts->env != NULL ? opts->env : environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    fds_close(f->child);
    fds_close(f->raised);
    return rc;
}

/* An error after the spawn: the child must not outlive the call. */
static void
kill_and_reap(pid_t pid)
{
    siginfo_t si;

    (void)kill(pid, SIGKILL);
    while (waitid(P_PID, (id_t)pid, &si, WEXITED) < 0 && errno == EINTR)
        ;
}

int
weft_create_subprocess_exec(struct weft_loop *loop, weft_subprocess_protocol_factory_cb *factory,
                            void *arg, char *const argv[],
                            const struct weft_subprocess_options *opts,
                            struct weft_subprocess_transport **out)
{
    struct spawn_fds f = { { -1, -1, -1 }, { -1, -1, -1 }, { -1, -1, -1 } };
    struct weft_subprocess_protocol *proto;
    struct weft_subprocess_transport *t;
    const struct weft_subprocess_protocol_ops *ops;
    pid_t pid;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (loop == NULL || factory == NULL || argv == NULL || argv[0] == NULL || argv[0][0] == '\0')
        return -EINVAL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    proto = factory(arg);
    if (proto == NULL) {
        free(t);
        return -ENOMEM;
    }
    t->loop = loop;
    t->proto = proto;
    t->pidfd = -1;
    event_assign(&t->ev_finish, weft_loop_get_base(loop), -1, 0, on_finish, t);
    rc = spawn(argv, opts, &f, &pid);
    if (rc < 0)
        goto fail;
    t->pid = pid;
    rc = watch_exit(t);
    for (int i = 0; i < 3 && rc == 0; i++) {
        struct pipe_slot *s = &t->pipes[i];

        s->base.ops = &slot_ops;
        s->t = t;
        s->fd = i;
        if (f.parent[i] < 0)
            continue;
        rc = (i == 0 ? weft_connect_write_pipe : weft_connect_read_pipe)(
            loop, slot_factory, s, f.parent[i], &s->tr);   /* takes the fd on success only */
        if (rc == 0)
            f.parent[i] = -1;
    }
    if (rc < 0) {
        kill_and_reap(pid);
        for (int i = 0; i < 3; i++)
            if (t->pipes[i].tr != NULL) {
                struct weft_transport *tr = t->pipes[i].tr;

                t->pipes[i].tr = NULL;      /* its connection_lost tells nobody */
                (void)weft__transport_abort_now(tr);
            }
        goto fail;
    }
    if (out != NULL)
        *out = t;
    ops = sp_ops(t);
    if (ops != NULL && ops->connection_made != NULL && (rc = ops->connection_made(proto, t)) < 0) {
        report(t, "subprocess protocol connection_made failed", rc);
        weft_subprocess_transport_close(t);
    }
    return 0;

fail:
    fds_close(f.parent);
    if (t->pidfd >= 0) {
        event_del(&t->ev_exit);
        close(t->pidfd);
    }
    if (t->poll != NULL)
        weft_handle_cancel(t->poll);
    free(t);
    if (proto->ops != NULL && proto->ops->connection_lost != NULL)
        proto->ops->connection_lost(proto, rc);     /* lets the protocol free itself */
    if (out != NULL)
        *out = NULL;
    return rc;
}

int
weft_create_subprocess_shell(struct weft_loop *loop, weft_subprocess_protocol_factory_cb *factory,
                             void *arg, const char *cmd,
                             const struct weft_subprocess_options *opts,
                             struct weft_subprocess_transport **out)
{
    char *argv[] = { "/bin/sh", "-c", (char *)cmd, NULL };

    if (cmd == NULL)
        return -EINVAL;
    return weft_create_subprocess_exec(loop, factory, arg, argv, opts, out);
}

/* ---- the transport's calls ---- */

struct weft_subprocess_protocol *
weft_subprocess_transport_get_protocol(const struct weft_subprocess_transport *t)
{
    return t->proto;
}

pid_t
weft_subprocess_transport_get_pid(const struct weft_subprocess_transport *t)
{
    return t->pid;
}

bool
weft_subprocess_transport_get_returncode(const struct weft_subprocess_transport *t, int *rc)
{
    if (!(t->flags & SP_EXITED))
        return false;
    if (rc != NULL)
        *rc = t->returncode;
    return true;
}

struct weft_transport *
weft_subprocess_transport_get_pipe_transport(struct weft_subprocess_transport *t, int fd)
{
    return fd >= 0 && fd < 3 ? t->pipes[fd].tr : NULL;
}

int
weft_subprocess_transport_send_signal(struct weft_subprocess_transport *t, int sig)
{
    if (sig < 0 || sig >= NSIG)
        return -EINVAL;
    if (t->flags & SP_EXITED)
        return -ESRCH;      /* reaped: the pid is not ours any more */
    return kill(t->pid, sig) < 0 ? -errno : 0;
}

int
weft_subprocess_transport_terminate(struct weft_subprocess_transport *t)
{
    return weft_subprocess_transport_send_signal(t, SIGTERM);
}

int
weft_subprocess_transport_kill(struct weft_subprocess_transport *t)
{
    return weft_subprocess_transport_send_signal(t, SIGKILL);
}

void
weft_subprocess_transport_close(struct weft_subprocess_transport *t)
{
    if (t->flags & SP_CLOSING)
        return;
    t->flags |= SP_CLOSING;
    for (int i = 0; i < 3; i++)
        if (t->pipes[i].tr != NULL)
            weft_transport_close(t->pipes[i].tr);
    if (!(t->flags & SP_EXITED))
        (void)kill(t->pid, SIGKILL);
}

bool
weft_subprocess_transport_is_closing(const struct weft_subprocess_transport *t)
{
    return (t->flags & SP_CLOSING) != 0;
}
