/* SPDX-License-Identifier: MIT */
/* weft/subprocess.h: child processes, as a protocol and transport, and as a process object. */
#ifndef WEFT_SUBPROCESS_H
#define WEFT_SUBPROCESS_H

#include <sys/types.h>
#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Two layers, as asyncio's: on the Protocol layer, loop.subprocess_exec()
 * and SubprocessProtocol / SubprocessTransport (weft_create_subprocess_*);
 * on the coroutine layer, asyncio.create_subprocess_exec() and Process
 * (weft_subprocess_*, weft_process_*), whose stdin is a weft_writer and
 * stdout / stderr weft_readers (weft/stream.h).
 *
 * Children are started with posix_spawn(3) (glibc: clone(CLONE_VFORK), no
 * allocation in the child). The program is looked up along PATH and cwd
 * checked in the parent first, so a missing program is -ENOENT from the
 * call, never an exit status 127, even where the libc's child cannot report
 * an exec failure (under valgrind it is a plain fork). Every
 * descriptor but 0, 1 and 2 is closed in the child; SIGPIPE and SIGXFSZ are
 * reset to their default action and the signal mask is emptied. The loop
 * learns of the child's exit through a pidfd (pidfd_open, Linux 5.3) and
 * reaps that child only, with waitid(P_PIDFD): it never calls
 * waitpid(-1), so other children's statuses stay for their owners. If
 * pidfd_open fails (an older kernel, EMFILE), waitid(P_PID, WNOHANG) on
 * that pid is polled every 50 ms instead.
 *
 * The return code is asyncio's: the exit status (0-255), or -N for a child
 * killed by signal N.
 *
 * Run the loop until every subprocess transport is lost (connection_lost)
 * before freeing it: nothing reaps a child whose loop is gone, and its
 * transport and protocol are not freed.
 */

/* How one of the child's descriptors 0, 1 and 2 is set up. */
enum weft_stdio_kind {
    WEFT_STDIO_INHERIT = 0,     /* the parent's own (the default) */
    WEFT_STDIO_PIPE,            /* a pipe to the parent: a pipe transport / stream */
    WEFT_STDIO_DEVNULL,         /* /dev/null */
    WEFT_STDIO_FD,              /* the descriptor .fd (the caller's; dup'ed into the child) */
    WEFT_STDIO_STDOUT,          /* stderr only: the same as the child's stdout */
};

struct weft_stdio {
    enum weft_stdio_kind kind;
    int fd;                     /* for WEFT_STDIO_FD */
};

/* Options; NULL or all zero: inherit 0, 1 and 2, the environment and the directory. */
struct weft_subprocess_options {
    struct weft_stdio stdio[3];     /* stdin, stdout, stderr */
    char *const *env;               /* "NAME=value" list ending in NULL; NULL: the parent's */
    const char *cwd;                /* the child's working directory; NULL: the parent's */
};

/* ---- Protocol layer ---- */

struct weft_subprocess_transport;
struct weft_subprocess_protocol;

/*
 * asyncio's SubprocessProtocol. The transport calls:
 *
 *   connection_made      once, first (the pipes exist)
 *   pipe_data_received   0..n times: len bytes from the child's fd 1 or 2
 *                        (borrowed for the call)
 *   pipe_connection_lost once per pipe: fd 0, 1 or 2 closed (error 0) or
 *                        failed (-EPIPE, -EIO, ...)
 *   process_exited       once, when the child has exited and been reaped
 *   pause_writing / resume_writing  around the stdin pipe's marks
 *   connection_lost      exactly once, last: after process_exited and every
 *                        pipe_connection_lost; the protocol frees itself here
 *
 * None is called from inside a transport method. Any callback may be NULL.
 */
struct weft_subprocess_protocol_ops {
    /* Return 0, or a negative code: reported, and the transport is closed (the child killed). */
    int (*connection_made)(struct weft_subprocess_protocol *p,
                           struct weft_subprocess_transport *t);
    /* Return 0, or a negative code: reported, and that pipe is aborted. */
    int (*pipe_data_received)(struct weft_subprocess_protocol *p, int fd, const void *data,
                              size_t len);
    void (*pipe_connection_lost)(struct weft_subprocess_protocol *p, int fd, int error);
    void (*process_exited)(struct weft_subprocess_protocol *p);
    void (*connection_lost)(struct weft_subprocess_protocol *p, int error);
    void (*pause_writing)(struct weft_subprocess_protocol *p);
    void (*resume_writing)(struct weft_subprocess_protocol *p);
};

/* Embed first in a subprocess protocol object. */
struct weft_subprocess_protocol {
    const struct weft_subprocess_protocol_ops *ops;
};

/* Make the protocol for a new child; NULL (out of memory) fails the call with -ENOMEM. */
typedef struct weft_subprocess_protocol *weft_subprocess_protocol_factory_cb(void *arg);

/**
 * Start argv[0] (searched along PATH when it has no '/': opts->env's
 * PATH if env is given, else the caller's; /bin:/usr/bin without one) with
 * arguments argv (ending in NULL), its descriptors as opts says, and a
 * protocol from factory(arg) whose connection_made runs before this
 * returns. The transport lives until connection_lost returns; *out
 * (may be NULL) is valid until then.
 * Returns 0; -ENOENT (no such program, or cwd does not exist), -EACCES,
 * -ENOEXEC, -ENOMEM, -EMFILE, -EINVAL (argv empty, a bad stdio kind),
 * -EBADF (a WEFT_STDIO_FD that is not open). On an error the protocol, if
 * made, is given connection_lost(rc) to free itself, and no child is left.
 * Since 0.1.
 */
WEFT_EXPORT int weft_create_subprocess_exec(struct weft_loop *loop,
                                            weft_subprocess_protocol_factory_cb *factory,
                                            void *arg, char *const argv[],
                                            const struct weft_subprocess_options *opts,
                                            struct weft_subprocess_transport **out);

/**
 * weft_create_subprocess_exec() of /bin/sh -c cmd: cmd is a shell
 * command line (quote what you put in it). Same returns; a command the
 * shell cannot find is the shell's exit status 127. Since 0.1.
 */
WEFT_EXPORT int weft_create_subprocess_shell(struct weft_loop *loop,
                                             weft_subprocess_protocol_factory_cb *factory,
                                             void *arg, const char *cmd,
                                             const struct weft_subprocess_options *opts,
                                             struct weft_subprocess_transport **out);

/** The transport's protocol, borrowed. Since 0.1. */
WEFT_EXPORT struct weft_subprocess_protocol *
weft_subprocess_transport_get_protocol(const struct weft_subprocess_transport *t);

/** The child's process id. Since 0.1. */
WEFT_EXPORT pid_t weft_subprocess_transport_get_pid(const struct weft_subprocess_transport *t);

/**
 * True once the child has exited, with its return code in *rc (exit
 * status, or -signal); false while it runs. Since 0.1.
 */
WEFT_EXPORT bool weft_subprocess_transport_get_returncode(const struct weft_subprocess_transport *t,
                                                          int *rc);

/**
 * The pipe transport of the child's fd (0: a write pipe, 1 and 2: read
 * pipes; weft/pipe.h), borrowed; NULL if that fd is not a pipe or the pipe
 * is gone. Its protocol is the subprocess transport's: do not replace it.
 * Since 0.1.
 */
WEFT_EXPORT struct weft_transport *
weft_subprocess_transport_get_pipe_transport(struct weft_subprocess_transport *t, int fd);

/**
 * Send signal sig to the child. Returns 0, -ESRCH once it has exited
 * (asyncio's ProcessLookupError: its pid may be another's by now), or
 * -EINVAL. Since 0.1.
 */
WEFT_EXPORT int weft_subprocess_transport_send_signal(struct weft_subprocess_transport *t,
                                                      int sig);

/** send_signal(SIGTERM). Since 0.1. */
WEFT_EXPORT int weft_subprocess_transport_terminate(struct weft_subprocess_transport *t);

/** send_signal(SIGKILL). Since 0.1. */
WEFT_EXPORT int weft_subprocess_transport_kill(struct weft_subprocess_transport *t);

/**
 * Close the pipes and, if the child still runs, kill it (SIGKILL), as
 * asyncio's close does; connection_lost(0) follows once it is reaped. A
 * second call is a no-op. Since 0.1.
 */
WEFT_EXPORT void weft_subprocess_transport_close(struct weft_subprocess_transport *t);

/** True once close was called. Since 0.1. */
WEFT_EXPORT bool weft_subprocess_transport_is_closing(const struct weft_subprocess_transport *t);

/* ---- coroutine layer ---- */

struct weft_process;

/**
 * From a task: start argv as weft_create_subprocess_exec() does and return
 * a process object in *out (the caller's: weft_process_free). Pipes
 * become streams: weft_process_stdin(), _stdout(), _stderr(). limit is the
 * readers' limit (0: WEFT_STREAM_LIMIT_DEFAULT). Returns 0, -WEFT_ENOTASK,
 * or the errors of weft_create_subprocess_exec(). Since 0.1.
 */
WEFT_EXPORT int weft_subprocess_exec(char *const argv[],
                                     const struct weft_subprocess_options *opts, size_t limit,
                                     struct weft_process **out);

/** The same for /bin/sh -c cmd. Since 0.1. */
WEFT_EXPORT int weft_subprocess_shell(const char *cmd,
                                      const struct weft_subprocess_options *opts, size_t limit,
                                      struct weft_process **out);

/**
 * The child's stdin as a writer (borrowed, valid until weft_process_free),
 * or NULL if it is not WEFT_STDIO_PIPE. weft_writer_close() sends EOF;
 * weft_writer_drain() waits below the pipe's high-water mark. Since 0.1.
 */
WEFT_EXPORT struct weft_writer *weft_process_stdin(struct weft_process *p);

/** The child's stdout as a reader (borrowed), or NULL if not a pipe. Since 0.1. */
WEFT_EXPORT struct weft_reader *weft_process_stdout(struct weft_process *p);

/** The child's stderr as a reader (borrowed), or NULL if not a pipe. Since 0.1. */
WEFT_EXPORT struct weft_reader *weft_process_stderr(struct weft_process *p);

/** The child's pid. Since 0.1. */
WEFT_EXPORT pid_t weft_process_pid(const struct weft_process *p);

/** True once it has exited, its return code in *rc; false while it runs. Since 0.1. */
WEFT_EXPORT bool weft_process_returncode(const struct weft_process *p, int *rc);

/**
 * From a task: wait until the child exits and store its return code in
 * *rc (may be NULL). Cancellable, and bounded by timeout scopes
 * (weft_timeout_enter): the child goes on running. Does not read the pipes:
 * a child that fills one waits for its reader (use communicate). Returns 0,
 * -ECANCELED, -WEFT_ENOTASK, -ENOMEM. Since 0.1.
 */
WEFT_EXPORT int weft_process_wait(struct weft_process *p, int *rc);

/**
 * From a task: write inlen bytes of input to stdin (if it is a pipe; input
 * may be NULL) and close it, read stdout and stderr to their ends (those
 * that are pipes) at once, then wait for the exit. *out / *err (if not
 * NULL) receive what was read, NUL-terminated, malloc'ed (the caller
 * frees them), with the lengths in *outlen / *errlen (may be NULL). A child
 * that closes its stdin early is not an error (asyncio ignores
 * BrokenPipeError there too). Returns 0 and the return code in *rc (may be
 * NULL), or a negative code (-ECANCELED, -ENOMEM; a read error), with
 * nothing in *out and *err. Since 0.1.
 */
WEFT_EXPORT int weft_process_communicate(struct weft_process *p, const void *input,
                                         size_t inlen, char **out, size_t *outlen,
                                         char **err, size_t *errlen, int *rc);

/** Send sig to the child: 0, -ESRCH once it has exited. Since 0.1. */
WEFT_EXPORT int weft_process_send_signal(struct weft_process *p, int sig);

/** SIGTERM. Since 0.1. */
WEFT_EXPORT int weft_process_terminate(struct weft_process *p);

/** SIGKILL. Since 0.1. */
WEFT_EXPORT int weft_process_kill(struct weft_process *p);

/**
 * Free the process object: its pipes are closed and a child still running
 * is killed (SIGKILL) and reaped by the loop later. NULL is a no-op.
 * Since 0.1.
 */
WEFT_EXPORT void weft_process_free(struct weft_process *p);

#ifdef __cplusplus
}
#endif
#endif
