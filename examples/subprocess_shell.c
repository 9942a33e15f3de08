/* SPDX-License-Identifier: MIT */
/* subprocess_shell.c: the tutorial's create_subprocess_shell: run commands, show their output. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

#include "common.h"

#define USAGE "usage: example_subprocess_shell [COMMAND ...]\n" \
              "run each shell COMMAND at once (default: 'ls /zzz' and 'echo hello'),\n" \
              "then print its return code, stdout and stderr, in the order given\n"

/* What one run found. */
struct run {
    const char *cmd;
    int rc;
    char *out, *err;
    size_t outlen, errlen;
};

/*
 * async def run(cmd):
 *     proc = await asyncio.create_subprocess_shell(cmd, stdout=PIPE, stderr=PIPE)
 *     stdout, stderr = await proc.communicate()
 */
static intptr_t
run(void *arg)
{
    struct run *r = arg;
    struct weft_subprocess_options o = { .stdio = { { WEFT_STDIO_DEVNULL },
                                                    { WEFT_STDIO_PIPE }, { WEFT_STDIO_PIPE } } };
    struct weft_process *p;
    int rc = weft_subprocess_shell(r->cmd, &o, 0, &p);

    if (rc < 0)
        return rc;
    rc = weft_process_communicate(p, NULL, 0, &r->out, &r->outlen, &r->err, &r->errlen, &r->rc);
    weft_process_free(p);
    return rc;
}

struct all {
    struct run *runs;
    int n;
};

static intptr_t
main_task(void *arg)
{
    struct all *a = arg;
    struct weft_future *f[64];
    intptr_t results[64];
    int rc;

    for (int i = 0; i < a->n; i++) {
        struct weft_task *t = weft_task_spawn(weft_get_running_loop(), run, &a->runs[i], NULL);

        if (t == NULL)
            return -ENOMEM;
        f[i] = weft_task_future(t);
    }
    rc = weft_gather(f, (size_t)a->n, results, WEFT_GATHER_RETURN_ERRORS);
    for (int i = 0; i < a->n; i++) {
        struct run *r = &a->runs[i];

        if (results[i] < 0) {
            printf("['%s' failed: %s]\n", r->cmd, weft_strerror((int)results[i]));
        } else {
            printf("['%s' exited with %d]\n", r->cmd, r->rc);
            if (r->outlen > 0)
                printf("[stdout]\n%s", r->out);
            if (r->errlen > 0)
                printf("[stderr]\n%s", r->err);
        }
        free(r->out);
        free(r->err);
        weft_task_unref(weft_future_task(f[i]));
    }
    return rc;
}

int
main(int argc, char **argv)
{
    static const char *const demo[] = { "ls /zzz", "echo hello" };
    struct run runs[64] = { 0 };
    struct all a = { runs, 0 };
    int code = example_args(argc, argv, EXAMPLE_ARGS_OWN, USAGE);

    if (code >= 0)
        return code;
    if (argc - 1 > 64) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            runs[a.n++].cmd = argv[i];
    } else {
        for (size_t i = 0; i < sizeof(demo) / sizeof(demo[0]); i++)
            runs[a.n++].cmd = demo[i];
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    return example_exit("subprocess_shell", weft_run(main_task, &a));
}
