/* SPDX-License-Identifier: MIT */
/* common.h: the examples' shared main() scaffolding: a loop, a main task, the exit code. */
#ifndef WEFT_EXAMPLE_COMMON_H
#define WEFT_EXAMPLE_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include <weft/weft.h>

/**
 * A new loop for an example, stdout made line-buffered so its output
 * interleaves as printed. Returns NULL (after "name: ..." on stderr) if the
 * loop cannot be made.
 */
struct weft_loop *example_loop_new(const char *name);

/**
 * The exit code for what weft_run() returned: 0, or 1 after "name: error" on
 * stderr for an error.
 */
int example_exit(const char *name, intptr_t rc);

/**
 * The stream examples' main(): serve client on 127.0.0.1. With "-p PORT"
 * in argv, print "banner on 127.0.0.1:PORT" and serve until SIGINT;
 * otherwise serve on a free port, set *port to it and run demo(arg) as a
 * task, which stops the loop when done. The server's handlers are given
 * a moment to finish, then loop is freed (taken in every case). Returns the
 * exit code: 0, or 1 after "name: error" on stderr if the server did not start.
 */
int example_serve(const char *name, struct weft_loop *loop, int argc, char **argv,
                  weft_client_cb *client, const char *banner, weft_task_fn *demo, void *arg,
                  uint16_t *port);

/* The client examples' TLS: their --tls, --cafile FILE and --servername NAME options. */
struct example_tls {
    struct weft_tls_client_options opts;    /* set .alpn before, if any */
    struct weft_stream_options *conn;       /* gets .server_hostname, then .tls */
    struct weft_tls_context *ctx;           /* made by example_tls_start(), or NULL */
    bool use;                               /* --tls or --cafile was given */
};

/**
 * Take argv[*i] if it is one of the TLS options (with its value: *i moves
 * past it). Returns true if it was one.
 */
bool example_tls_arg(int argc, char **argv, int *i, struct example_tls *t);

/** Make the client context if TLS was asked for: 0, or 1 after "name: TLS: why". */
int example_tls_start(const char *name, struct example_tls *t);

/**
 * main() of an example that takes an optional number (EXAMPLE_ARGS_NUMBER):
 * check argv against usage, store the number in *number if given, make
 * stdout line-buffered and run fn(arg) with weft_run(). Returns the exit code.
 */
int example_run_number(const char *name, int argc, char **argv, const char *usage,
                       unsigned *number, weft_task_fn *fn, void *arg);

/**
 * asyncio.gather over n new tasks, task i running fns[i](args[i]) (fns of
 * length 1 when all run the same function: pass one_fn instead, fns NULL).
 * results (may be NULL) gets each result. Every task is done and unreferenced
 * when this returns: on an error (or one that cannot be made) the rest are
 * cancelled and awaited.
 * Returns 0, the first error, or -ENOMEM.
 */
int example_gather_tasks(struct weft_loop *loop, size_t n, weft_task_fn *const *fns,
                         weft_task_fn *one_fn, void *const *args, intptr_t *results);

/* What an example takes on its command line, for example_args(). */
enum example_argv {
    EXAMPLE_ARGS_NONE,      /* nothing */
    EXAMPLE_ARGS_NUMBER,    /* an optional number (a delay in ms) */
    EXAMPLE_ARGS_SERVE,     /* an optional "-p PORT" (example_serve) */
    EXAMPLE_ARGS_OWN,       /* its own "--" options (it checks them): -h, --help handled here,
                             * any other single-dash option refused */
};

/**
 * Check argv against what the example takes. "-h" or "--help": usage on stdout, returns 0
 * (exit with it). Anything it does not take: usage on stderr, returns 2. Otherwise -1:
 * go on. usage is the whole text, ending in a newline.
 */
int example_args(int argc, char **argv, enum example_argv takes, const char *usage);

#endif
