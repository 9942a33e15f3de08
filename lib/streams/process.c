/* SPDX-License-Identifier: MIT */
/* process.c: asyncio's Process: a child's pipes as streams, wait and communicate, from tasks. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include <weft/error.h>
#include <weft/future.h>
#include <weft/subprocess.h>
#include <weft/task.h>
#include <weft/transport.h>

#include "streams/stream-int.h"
#include "coro/task-int.h"

/*
 * A process object is the subprocess protocol (net/subprocess.c) and, for
 * each pipe, a stream (stream.c) driven through the stream's own protocol
 * table: connection_made with the pipe transport, data_received with an
 * evbuffer of ours that pipe_data_received fills, connection_lost when the
 * pipe goes. So the reader and writer are stream.c's, unchanged: a reader
 * above its limit pauses the pipe transport (the child then blocks in
 * write: memory stays bounded), the writer writes to the stdin pipe and its
 * drain follows that pipe's pause_writing.
 *
 * References: the subprocess transport's (until its connection_lost) and
 * the caller's (until weft_process_free). Each stream likewise has the
 * pipe's reference (until the pipe is lost: bit i of tr_refs) and the
 * process object's, dropped in weft_process_free.
 */

struct weft_process {
    struct weft_subprocess_protocol base;      /* first: the transport's protocol */
    unsigned refs;
    unsigned tr_refs;                           /* bit i: s[i] still has the pipe's reference */
    bool exited, user;
    int returncode;
    pid_t pid;
    struct weft_subprocess_transport *t;        /* NULL once lost */
    struct weft_stream *s[3];                   /* stdin, stdout, stderr streams, or NULL */
    struct evbuffer *in[3];                     /* what stdout / stderr brought, for s[1], s[2] */
    struct weft_future *exit_f;                 /* waiters of weft_process_wait, or NULL */
};

static void
proc_unref(struct weft_process *p)
{
    if (--p->refs > 0)
        return;
    weft__future_finish(&p->exit_f, -EPIPE);
    for (int i = 0; i < 3; i++)
        if (p->in[i] != NULL)
            evbuffer_free(p->in[i]);
    free(p);
}

/* The pipe of stream i is gone (or never came): drop its reference. */
static void
stream_lost(struct weft_process *p, int i, int error)
{
    struct weft_stream *s = p->s[i];

    if (!(p->tr_refs & (1u << i)))
        return;
    p->tr_refs &= ~(1u << i);
    s->base.ops->connection_lost(&s->base, error);      /* moves unread bytes to its own */
    if (p->in[i] != NULL) {
        evbuffer_free(p->in[i]);
        p->in[i] = NULL;
    }
}

static int
proc_connection_made(struct weft_subprocess_protocol *sp, struct weft_subprocess_transport *t)
{
    struct weft_process *p = (struct weft_process *)sp;

    p->t = t;
    p->pid = weft_subprocess_transport_get_pid(t);
    for (int i = 0; i < 3; i++) {
        struct weft_transport *tr = weft_subprocess_transport_get_pipe_transport(t, i);

        if (p->s[i] != NULL && tr != NULL)
            (void)p->s[i]->base.ops->connection_made(&p->s[i]->base, tr);   /* no handler: 0 */
    }
    return 0;
}

static int
proc_pipe_data_received(struct weft_subprocess_protocol *sp, int fd, const void *data, size_t len)
{
    struct weft_process *p = (struct weft_process *)sp;
    struct weft_stream *s = p->s[fd];

    if (s == NULL || p->in[fd] == NULL || !(p->tr_refs & (1u << fd)))
        return 0;
    if (evbuffer_add(p->in[fd], data, len) < 0)
        return -ENOMEM;
    return s->base.ops->data_received(&s->base, p->in[fd]);
}

static void
proc_pipe_connection_lost(struct weft_subprocess_protocol *sp, int fd, int error)
{
    struct weft_process *p = (struct weft_process *)sp;

    if (p->s[fd] != NULL)
        stream_lost(p, fd, error);
}

static void
proc_process_exited(struct weft_subprocess_protocol *sp)
{
    struct weft_process *p = (struct weft_process *)sp;

    p->exited = weft_subprocess_transport_get_returncode(p->t, &p->returncode);
    weft__future_finish(&p->exit_f, 0);
}

static void
proc_connection_lost(struct weft_subprocess_protocol *sp, int error)
{
    struct weft_process *p = (struct weft_process *)sp;

    for (int i = 0; i < 3; i++)
        if (p->s[i] != NULL)
            stream_lost(p, i, error);       /* none is left unless the call failed */
    p->t = NULL;
    weft__future_finish(&p->exit_f, p->exited ? 0 : (error < 0 ? error : -EPIPE));
    proc_unref(p);
}

static void
proc_pause_writing(struct weft_subprocess_protocol *sp)
{
    struct weft_process *p = (struct weft_process *)sp;

    if (p->s[0] != NULL && (p->tr_refs & 1u))
        p->s[0]->base.ops->pause_writing(&p->s[0]->base);
}

static void
proc_resume_writing(struct weft_subprocess_protocol *sp)
{
    struct weft_process *p = (struct weft_process *)sp;

    if (p->s[0] != NULL && (p->tr_refs & 1u))
        p->s[0]->base.ops->resume_writing(&p->s[0]->base);
}

static const struct weft_subprocess_protocol_ops proc_ops = {
    .connection_made = proc_connection_made,
    .pipe_data_received = proc_pipe_data_received,
    .pipe_connection_lost = proc_pipe_connection_lost,
    .process_exited = proc_process_exited,
    .connection_lost = proc_connection_lost,
    .pause_writing = proc_pause_writing,
    .resume_writing = proc_resume_writing,
};

struct make_args {
    const struct weft_subprocess_options *opts;
    uint32_t limit, high, low;
};

static struct weft_subprocess_protocol *
proc_factory(void *arg)
{
    const struct make_args *ma = arg;
    struct weft_process *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return NULL;
    p->base.ops = &proc_ops;
    p->refs = 1;
    for (int i = 0; i < 3; i++) {
        if (ma->opts == NULL || ma->opts->stdio[i].kind != WEFT_STDIO_PIPE)
            continue;
        p->s[i] = weft__stream_new(ma->limit, ma->high, ma->low);
        if (p->s[i] == NULL || (i > 0 && (p->in[i] = evbuffer_new()) == NULL))
            goto fail;
        p->tr_refs |= 1u << i;
    }
    return &p->base;

fail:
    for (int i = 0; i < 3; i++)
        if (p->s[i] != NULL)
            weft__stream_unref(p->s[i]);
    p->refs = 1;
    proc_unref(p);
    return NULL;
}

static int
make(char *const argv[], const char *cmd, const struct weft_subprocess_options *opts,
     size_t limit, struct weft_process **out)
{
    struct weft_task *cur = weft_task_current();
    struct weft_subprocess_transport *t = NULL;
    struct weft_stream_options so = { .limit = limit };
    struct make_args ma = { .opts = opts };
    struct weft_loop *loop;
    struct weft_process *p;
    int rc;

    if (out == NULL)
        return -EINVAL;
    *out = NULL;
    if (cur == NULL)
        return -WEFT_ENOTASK;
    rc = weft__stream_opts(&so, &ma.limit, &ma.high, &ma.low);
    if (rc < 0)
        return rc;
    loop = weft_future_loop(weft_task_future(cur));
    rc = cmd != NULL ? weft_create_subprocess_shell(loop, proc_factory, &ma, cmd, opts, &t)
                     : weft_create_subprocess_exec(loop, proc_factory, &ma, argv, opts, &t);
    if (rc < 0)
        return rc;
    p = (struct weft_process *)weft_subprocess_transport_get_protocol(t);
    p->refs++;                      /* the caller's */
    p->user = true;
    for (int i = 0; i < 3; i++)
        if (p->s[i] != NULL)
            p->s[i]->refs++;        /* the process object's, for the caller */
    *out = p;
    return 0;
}

int
weft_subprocess_exec(char *const argv[], const struct weft_subprocess_options *opts,
                     size_t limit, struct weft_process **out)
{
    if (argv == NULL)
        return -EINVAL;
    return make(argv, NULL, opts, limit, out);
}

int
weft_subprocess_shell(const char *cmd, const struct weft_subprocess_options *opts, size_t limit,
                      struct weft_process **out)
{
    if (cmd == NULL)
        return -EINVAL;
    return make(NULL, cmd, opts, limit, out);
}

struct weft_writer *
weft_process_stdin(struct weft_process *p)
{
    return p->s[0] != NULL ? &p->s[0]->w : NULL;
}

struct weft_reader *
weft_process_stdout(struct weft_process *p)
{
    return p->s[1] != NULL ? &p->s[1]->r : NULL;
}

struct weft_reader *
weft_process_stderr(struct weft_process *p)
{
    return p->s[2] != NULL ? &p->s[2]->r : NULL;
}

pid_t
weft_process_pid(const struct weft_process *p)
{
    return p->pid;
}

bool
weft_process_returncode(const struct weft_process *p, int *rc)
{
    if (!p->exited)
        return false;
    if (rc != NULL)
        *rc = p->returncode;
    return true;
}

int
weft_process_wait(struct weft_process *p, int *rc)
{
    struct weft_task *cur = weft_task_current();
    struct weft_future *g;
    intptr_t r;

    while (!p->exited) {
        if (cur == NULL)
            return -WEFT_ENOTASK;
        if (p->t == NULL)
            return -EPIPE;          /* cannot happen: lost comes after the exit */
        if (p->exit_f == NULL &&
            (p->exit_f = weft_future_new(weft_future_loop(weft_task_future(cur)))) == NULL)
            return -ENOMEM;
        /* A shield each: one waiter cancelled leaves the others waiting. */
        g = weft_shield(p->exit_f);
        if (g == NULL)
            return -ENOMEM;
        r = weft_await(g);
        weft_future_unref(g);
        if (r < 0)
            return (int)r;
    }
    if (rc != NULL)
        *rc = p->returncode;
    return 0;
}

/* communicate's three parts, each a task of one group. */
struct comm_part {
    struct weft_process *p;
    const void *input;
    size_t inlen;
    char *buf;
    ssize_t len;
    int fd;
};

static intptr_t
comm_feed(void *arg)
{
    struct comm_part *c = arg;
    struct weft_writer *w = weft_process_stdin(c->p);
    int rc = 0;

    if (c->inlen > 0) {
        rc = weft_writer_write(w, c->input, c->inlen);
        if (rc == 0)
            rc = weft_writer_drain(w);
    }
    weft_writer_close(w);
    /* The child may exit without reading it all: not an error (asyncio's communicate). */
    return rc == -EPIPE || rc == -ECONNRESET ? 0 : rc;
}

static intptr_t
comm_read(void *arg)
{
    struct comm_part *c = arg;

    c->len = weft_reader_read_all(c->fd == 1 ? weft_process_stdout(c->p)
                                             : weft_process_stderr(c->p), &c->buf);
    return c->len < 0 ? c->len : 0;
}

static void
give(struct comm_part *c, char **out, size_t *outlen)
{
    if (out != NULL) {
        *out = c->buf;
        c->buf = NULL;
    }
    if (outlen != NULL)
        *outlen = c->len > 0 ? (size_t)c->len : 0;
    free(c->buf);
}

int
weft_process_communicate(struct weft_process *p, const void *input, size_t inlen, char **out,
                         size_t *outlen, char **err, size_t *errlen, int *rc)
{
    struct comm_part parts[3] = { { .p = p, .input = input, .inlen = inlen, .fd = 0 },
                                  { .p = p, .fd = 1 }, { .p = p, .fd = 2 } };
    struct weft_task_group *g;
    intptr_t r = 0;

    if (out != NULL)
        *out = NULL;
    if (err != NULL)
        *err = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (errlen != NULL)
        *errlen = 0;
    if (weft_task_current() == NULL)
        return -WEFT_ENOTASK;
    g = weft_task_group_new();
    if (g == NULL)
        return errno == EPERM ? -WEFT_ENOTASK : -ENOMEM;
    for (int i = 0; i < 3 && r == 0; i++)
        if (p->s[i] != NULL &&
            weft_task_group_spawn(g, i == 0 ? comm_feed : comm_read, &parts[i], NULL) == NULL)
            r = errno ? -errno : -ENOMEM;
    {
        intptr_t w = weft_task_group_wait(g);

        if (r == 0)
            r = w;
    }
    weft_task_group_free(g);
    if (r == 0)
        r = weft_process_wait(p, rc);
    if (r < 0) {
        free(parts[1].buf);
        free(parts[2].buf);
        return (int)r;
    }
    give(&parts[1], out, outlen);
    give(&parts[2], err, errlen);
    return 0;
}

int
weft_process_send_signal(struct weft_process *p, int sig)
{
    return p->t != NULL ? weft_subprocess_transport_send_signal(p->t, sig) : -ESRCH;
}

int
weft_process_terminate(struct weft_process *p)
{
    return weft_process_send_signal(p, SIGTERM);
}

int
weft_process_kill(struct weft_process *p)
{
    return weft_process_send_signal(p, SIGKILL);
}

void
weft_process_free(struct weft_process *p)
{
    if (p == NULL || !p->user)
        return;
    p->user = false;
    for (int i = 0; i < 3; i++)
        if (p->s[i] != NULL) {
            struct weft_stream *s = p->s[i];

            weft_writer_close(&s->w);       /* closes the pipe (s->tr) if it is still there */
            weft__stream_unref(s);
            if (!(p->tr_refs & (1u << i)))
                p->s[i] = NULL;             /* freed just now */
        }
    if (p->t != NULL)
        weft_subprocess_transport_close(p->t);  /* kills the child if it still runs */
    proc_unref(p);
}
