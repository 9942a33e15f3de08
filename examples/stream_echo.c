/* SPDX-License-Identifier: MIT */
/* stream_echo.c: a line echo server on the stream layer (STYLE.md's example), with a demo client. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

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

static void
on_sigint(struct weft_loop *loop, int sig, void *arg)
{
    (void)sig;
    (void)arg;
    weft_loop_stop(loop);
}

int
main(int argc, char **argv)
{
    struct demo d = { .loop = weft_loop_new() };
    struct weft_stream_server *srv;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int port = argc == 3 && strcmp(argv[1], "-p") == 0 ? atoi(argv[2]) : 0;
    int rc;

    if (d.loop == NULL)
        return 1;
    rc = weft_start_server(d.loop, line_echo, NULL, "127.0.0.1", (uint16_t)port, NULL, &srv);
    if (rc < 0 || weft_stream_server_get_sockname(srv, 0, (struct sockaddr *)&sin, &sl) < 0) {
        fprintf(stderr, "stream_echo: %s\n", weft_strerror(rc));
        return 1;
    }
    d.port = ntohs(sin.sin_port);
    if (port != 0) {
        printf("echoing lines on 127.0.0.1:%u\n", d.port);
        fflush(stdout);
        weft_loop_add_signal_handler(d.loop, SIGINT, on_sigint, NULL);
    } else {
        weft_task_unref(weft_task_spawn(d.loop, demo_client, &d, NULL));
    }
    weft_loop_run(d.loop);
    weft_stream_server_free(srv);
    for (int k = 0; k < 50 && weft_stream_handler_count(d.loop) > 0; k++)
        weft_loop_run_once(d.loop);
    weft_loop_free(d.loop);
    return 0;
}
