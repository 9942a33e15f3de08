/* SPDX-License-Identifier: MIT */
/* stream_echo.c: a line echo server on the stream layer (STYLE.md's example), with a demo client. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#include "common.h"

/*
 * stream_echo -p PORT   serve until SIGINT (try: nc 127.0.0.1 PORT)
 * stream_echo           demo: serve on a free port, send three lines, print the echoes
 */

static int
line_echo(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    char line[1024];
    ssize_t n;

    (void)arg;
    while ((n = weft_reader_readline(r, line, sizeof(line))) > 0) {
        int rc = weft_writer_write(w, line, (size_t)n);
        if (rc == 0)
            rc = weft_writer_drain(w);      /* suspends above the high-water mark */
        if (rc < 0)
            return rc;                      /* -ECANCELED at shutdown: just leave */
    }
    return n < 0 ? (int)n : weft_writer_close(w);
}

struct demo {
    struct weft_loop *loop;
    uint16_t port;
};

static intptr_t
demo_client(void *arg)
{
    struct demo *d = arg;
    static const char *const lines[] = { "hello\n", "streams\n", "bye\n" };
    struct weft_reader *r;
    struct weft_writer *w;
    char buf[64];
    int rc = weft_open_connection("127.0.0.1", d->port, NULL, &r, &w);

    if (rc < 0) {
        printf("connect: %s\n", weft_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < 3; i++) {
        weft_writer_write(w, lines[i], strlen(lines[i]));
        if (weft_reader_readline(r, buf, sizeof(buf)) <= 0)
            break;
        printf("echo: %s", buf);
    }
    weft_writer_write_eof(w);
    printf("server closed: %s\n", weft_reader_readline(r, buf, sizeof(buf)) == 0 ? "yes" : "no");
    weft_writer_close(w);
    weft_writer_wait_closed(w, 1000);       /* the transport is gone before the loop stops */
    weft_writer_free(w);
out:
    weft_loop_stop(d->loop);
    return rc;
}

int
main(int argc, char **argv)
{
    struct demo d = { .loop = NULL };
    int code = example_args(argc, argv, EXAMPLE_ARGS_SERVE,
        "usage: example_stream_echo [-p PORT]\n"
        "a line echo server on streams: -p PORT serves on 127.0.0.1:PORT until Ctrl-C;\n"
        "without it, a demo client on a free port\n");
    if (code >= 0)
        return code;
    d.loop = example_loop_new("stream_echo");
    if (d.loop == NULL)
        return 1;
    return example_serve("stream_echo", d.loop, argc, argv, line_echo, "echoing lines", demo_client, &d, &d.port);
}
