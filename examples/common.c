/* SPDX-License-Identifier: MIT */
/* common.c: the examples' shared main() scaffolding: a loop, a main task, the exit code. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static bool
all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int
example_args(int argc, char **argv, enum example_argv takes, const char *usage)
{
    bool ok;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        }
    }
    switch (takes) {
    case EXAMPLE_ARGS_NONE:
        ok = argc == 1;
        break;
    case EXAMPLE_ARGS_NUMBER:
        ok = argc == 1 || (argc == 2 && all_digits(argv[1]));
        break;
    case EXAMPLE_ARGS_SERVE:
        ok = argc == 1 || (argc == 3 && strcmp(argv[1], "-p") == 0 && all_digits(argv[2]));
        break;
    default:        /* its own "--" options; no single-dash one */
        ok = true;
        for (int i = 1; i < argc; i++)
            if (argv[i][0] == '-' && argv[i][1] != '-')
                ok = false;
        break;
    }
    if (ok)
        return -1;
    fputs(usage, stderr);
    return 2;
}

struct weft_loop *
example_loop_new(const char *name)
{
    struct weft_loop *loop;

    setvbuf(stdout, NULL, _IOLBF, 0);
    loop = weft_loop_new();
    if (loop == NULL)
        fprintf(stderr, "%s: no loop: %s\n", name, strerror(errno));
    return loop;
}

bool
example_tls_arg(int argc, char **argv, int *i, struct example_tls *t)
{
    if (strcmp(argv[*i], "--tls") == 0) {
        t->use = true;
    } else if (strcmp(argv[*i], "--cafile") == 0 && *i + 1 < argc) {
        t->use = true;
        t->opts.ca_file = argv[++*i];
    } else if (strcmp(argv[*i], "--servername") == 0 && *i + 1 < argc) {
        t->conn->server_hostname = argv[++*i];
    } else {
        return false;
    }
    return true;
}

int
example_tls_start(const char *name, struct example_tls *t)
{
    char err[256];

    if (!t->use)
        return 0;
    if (weft_tls_context_new_client(&t->opts, &t->ctx, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: TLS: %s\n", name, err);
        return 1;
    }
    t->conn->tls = t->ctx;
    return 0;
}

int
example_run_number(const char *name, int argc, char **argv, const char *usage,
                   unsigned *number, weft_task_fn *fn, void *arg)
{
    int code = example_args(argc, argv, EXAMPLE_ARGS_NUMBER, usage);

    if (code >= 0)
        return code;
    if (argc > 1)
        *number = (unsigned)atoi(argv[1]);
    setvbuf(stdout, NULL, _IOLBF, 0);
    return example_exit(name, weft_run(fn, arg));      /* asyncio.run(main()) */
}

int
example_gather_tasks(struct weft_loop *loop, size_t n, weft_task_fn *const *fns,
                     weft_task_fn *one_fn, void *const *args, intptr_t *results)
{
    struct weft_task **t = calloc(n, sizeof(*t));
    struct weft_future **f = calloc(n, sizeof(*f));
    int rc = 0;

    if (t == NULL || f == NULL) {
        free(t);
        free(f);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        t[i] = weft_task_spawn(loop, fns != NULL ? fns[i] : one_fn, args[i], NULL);
        if (t[i] == NULL)
            rc = -ENOMEM;
        else
            f[i] = weft_task_future(t[i]);
    }
    if (rc == 0)
        rc = weft_gather(f, n, results, 0);
    for (size_t i = 0; i < n; i++) {
        if (t[i] == NULL)
            continue;
        if (rc < 0) {                   /* one failed or could not be made: stop the rest */
            weft_task_cancel(t[i]);
            weft_await(f[i]);
        }
        weft_task_unref(t[i]);
    }
    free(t);
    free(f);
    return rc;
}

int
example_exit(const char *name, intptr_t rc)
{
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", name, weft_strerror((int)rc));
    return rc < 0;
}

static void
on_sigint(struct weft_loop *loop, int sig, void *arg)
{
    (void)sig;
    (void)arg;
    weft_loop_stop(loop);
}

int
example_serve(const char *name, struct weft_loop *loop, int argc, char **argv,
              weft_client_cb *client, const char *banner, weft_task_fn *demo, void *arg,
              uint16_t *port)
{
    struct weft_stream_server *srv = NULL;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int want = argc == 3 && strcmp(argv[1], "-p") == 0 ? atoi(argv[2]) : 0;
    int rc;

    rc = weft_start_server(loop, client, NULL, "127.0.0.1", (uint16_t)want, NULL, &srv);
    if (rc == 0)
        rc = weft_stream_server_get_sockname(srv, 0, (struct sockaddr *)&sin, &sl);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", name, weft_strerror(rc));
        if (srv != NULL)
            weft_stream_server_free(srv);
        weft_loop_free(loop);
        return 1;
    }
    *port = ntohs(sin.sin_port);
    if (want != 0) {
        printf("%s on 127.0.0.1:%u\n", banner, *port);
        fflush(stdout);
        weft_loop_add_signal_handler(loop, SIGINT, on_sigint, NULL);
    } else {
        weft_task_unref(weft_task_spawn(loop, demo, arg, NULL));
    }
    weft_loop_run(loop);
    weft_stream_server_free(srv);
    for (int k = 0; k < 50 && weft_stream_handler_count(loop) > 0; k++)
        weft_loop_run_once(loop);
    weft_loop_free(loop);
    return 0;
}
