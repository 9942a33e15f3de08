/* SPDX-License-Identifier: MIT */
/* stream_echo.c: the echo benchmark's stream-layer server: start_server; read up to 64 KiB, write, drain. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/buffer.h>
#include <weft/weft.h>

/*
 * One evbuffer for every connection: a handler moves what it read into it and
 * straight out to its transport without suspending in between, so the chains
 * move with no copy and an idle connection owns no buffer at all.
 */
static struct evbuffer *shared;

static int
echo(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    ssize_t n;
    int rc = 0;

    (void)arg;
    while ((n = weft_reader_read_buffer(r, shared, 65536)) > 0) {
        rc = weft_writer_write_buffer(w, shared);
        if (rc == 0)
            rc = weft_writer_drain(w);
        if (rc < 0)
            break;
    }
    return n < 0 ? (int)n : rc;
}

static void
on_signal(struct weft_loop *loop, int sig, void *arg)
{
    (void)sig;
    (void)arg;
    weft_loop_stop(loop);
}

int
main(int argc, char **argv)
{
    struct weft_stream_options o = { .stack_size = 0 };
    struct weft_stream_server *srv;
    struct weft_loop *loop = weft_loop_new();
    struct rlimit rl;
    int port = argc == 3 && strcmp(argv[1], "-p") == 0 ? atoi(argv[2]) : 0, rc;

    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: stream_echo -p PORT\n");
        return 2;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    shared = evbuffer_new();
    if (loop == NULL || shared == NULL)
        return 1;
    weft_task_set_stack_cache(loop, 1024);
    rc = weft_start_server(loop, echo, NULL, "127.0.0.1", (uint16_t)port, &o, &srv);
    if (rc < 0) {
        fprintf(stderr, "stream_echo: %s\n", weft_strerror(rc));
        return 1;
    }
    weft_loop_add_signal_handler(loop, SIGTERM, on_signal, NULL);
    weft_loop_add_signal_handler(loop, SIGINT, on_signal, NULL);
    weft_loop_run(loop);
    weft_stream_server_free(srv);
    for (int k = 0; k < 100 && weft_stream_handler_count(loop) > 0; k++)
        weft_loop_run_once(loop);
    weft_loop_free(loop);
    evbuffer_free(shared);
    return 0;
}
