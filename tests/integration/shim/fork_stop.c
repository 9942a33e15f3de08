/* SPDX-License-Identifier: MIT */
/*
 * fork_stop.c: an LD_PRELOAD shim for one integration test. With
 * WEFT_SHIM_STOP_AFTER_FORK=1 in the environment, the first fork() of the
 * process stops the parent (SIGSTOP) right after the child exists: the master
 * is then frozen with a worker that it has not heard from, as a busy machine
 * can leave it, and the test decides what happens to the worker meanwhile.
 * Without the variable it is plain fork().
 */
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* Exported whatever the build's default visibility. */
__attribute__((visibility("default"))) pid_t fork(void);

pid_t
fork(void)
{
    static pid_t (*real_fork)(void);
    static int done;
    const char *on = getenv("WEFT_SHIM_STOP_AFTER_FORK");
    pid_t pid;

    if (real_fork == NULL)
        real_fork = (pid_t (*)(void))dlsym(RTLD_NEXT, "fork");
    if (real_fork == NULL)
        abort();
    pid = real_fork();
    if (pid > 0 && !done && on != NULL && strcmp(on, "1") == 0) {
        done = 1;
        raise(SIGSTOP);
    }
    return pid;
}
