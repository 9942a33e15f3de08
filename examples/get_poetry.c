/* SPDX-License-Identifier: MIT */
/* get_poetry.c: fetch poems from several servers at once with open_connection and gather. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#include "common.h"

/*
 * get_poetry [TLS options] [HOST:]PORT ...   fetch from running poem servers (weftd's poem)
 * get_poetry                   demo: start three slow poem servers here, then fetch
 *
 * TLS options (asyncio's open_connection(ssl=..., server_hostname=...)):
 *   --tls                 TLS, verifying the server against the system's CA store
 *   --cafile FILE         TLS, verifying against the CAs in FILE
 *   --servername NAME     the name to send (SNI) and check; default: the host
 */

struct fetch {
    int n;
    char host[64];
    uint16_t port;
    char *poem;
    ssize_t len;
    double secs;
};

static struct weft_loop *loop;
static struct weft_stream_options conn_opts;    /* .tls and .server_hostname */

static double
now(void)
{
    return (double)weft_loop_time_ns(loop) / 1e9;
}

static intptr_t
get_poetry(void *arg)
{
    struct fetch *f = arg;
    struct weft_reader *r;
    struct weft_writer *w;
    double t0 = now();
    int rc = weft_open_connection(f->host, f->port, &conn_opts, &r, &w);

    if (rc < 0) {
        printf("Task %d: %s:%u failed: %s\n", f->n, f->host, f->port, weft_strerror(rc));
        return rc;
    }
    /* The tutorial's client greets with the poem's first lines. */
    weft_writer_write(w, "人生若只如初见，何事秋风悲画扇。\n", strlen("人生若只如初见，何事秋风悲画扇。\n"));
    f->len = weft_reader_read_all(r, &f->poem);
    weft_writer_free(w);
    f->secs = now() - t0;
    if (f->len < 0)
        return f->len;
    printf("Task %d: got %zd bytes of poetry from %s:%u in %.2f s\n", f->n, f->len, f->host,
           f->port, f->secs);
    return 0;
}

/* ---- the demo's own slow servers ---- */

static const char demo_poem[] =
    "骊山语罢清宵半，泪雨霖铃终不怨。\n"
    "何如薄幸锦衣郎，比翼连枝当日愿。\n";

static int
slow_poet(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    uintptr_t delay = (uintptr_t)arg;
    char greeting[256];
    int rc;

    weft_reader_set_timeout(r, 200);
    (void)weft_reader_readline(r, greeting, sizeof(greeting));
    for (size_t off = 0; off < sizeof(demo_poem) - 1; off += 12) {   /* four characters */
        size_t n = sizeof(demo_poem) - 1 - off < 12 ? sizeof(demo_poem) - 1 - off : 12;

        if ((rc = weft_writer_write(w, demo_poem + off, n)) < 0 ||
            (rc = weft_writer_drain(w)) < 0 || (rc = weft_sleep(delay)) < 0)
            return rc;
    }
    return 0;
}

static intptr_t
main_task(void *arg)
{
    struct fetch *f = arg;
    struct weft_future *futs[16];
    struct weft_task *tasks[16];
    size_t n = 0;
    double t0 = now();
    int rc;

    while (f[n].port != 0)
        n++;
    for (size_t i = 0; i < n; i++) {
        tasks[i] = weft_task_spawn(loop, get_poetry, &f[i], NULL);
        if (tasks[i] == NULL)
            return -ENOMEM;
        futs[i] = weft_task_future(tasks[i]);
    }
    rc = weft_gather(futs, n, NULL, WEFT_GATHER_RETURN_ERRORS);
    for (size_t i = 0; i < n; i++) {
        if (f[i].poem != NULL) {
            printf("--- poem %zu, from %s:%u (%zd bytes, %.2f s) ---\n%s", i + 1, f[i].host,
                   f[i].port, f[i].len, f[i].secs, f[i].poem);
            free(f[i].poem);
        }
        weft_task_unref(tasks[i]);
    }
    printf("Got %zu poems in %.2f seconds\n", n, now() - t0);
    weft_loop_stop(loop);
    return rc;
}

int
main(int argc, char **argv)
{
    static struct fetch f[17];
    struct weft_stream_server *srv[3] = { NULL, NULL, NULL };
    struct weft_task *t;
    int n = 0, status;

    struct example_tls tls = { .conn = &conn_opts };
    int first = 1;
    int code = example_args(argc, argv, EXAMPLE_ARGS_OWN,
        "usage: example_get_poetry [--tls] [--cafile FILE] [--servername NAME] [[HOST:]PORT ...]\n"
        "fetch a poem from each poem server at once (weftd's poem: 127.0.0.1:7070), printing\n"
        "each as it arrives; with no server, a demo against three slow servers started here\n");

    if (code >= 0)
        return code;
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
        if (!example_tls_arg(argc, argv, &first, &tls)) {
            fprintf(stderr, "usage: get_poetry [--tls] [--cafile FILE] [--servername NAME] "
                            "[HOST:]PORT ...\n");
            return 2;
        }
    }
    if (example_tls_start("get_poetry", &tls) != 0)
        return 1;
    loop = weft_loop_new();
    if (loop == NULL)
        return 1;
    for (int i = first; i < argc && n < 16; i++, n++) {
        const char *colon = strrchr(argv[i], ':');

        f[n].n = n + 1;
        snprintf(f[n].host, sizeof(f[n].host), "%.*s", colon ? (int)(colon - argv[i]) : 9,
                 colon ? argv[i] : "127.0.0.1");
        f[n].port = (uint16_t)atoi(colon ? colon + 1 : argv[i]);
    }
    if (first == argc) {
        /* Three slow poets, 30, 60 and 90 ms per four characters. */
        for (int i = 0; i < 3; i++, n++) {
            struct sockaddr_in sin;
            socklen_t sl = sizeof(sin);

            if (weft_start_server(loop, slow_poet, (void *)(uintptr_t)(30 * (i + 1)),
                                  "127.0.0.1", 0, NULL, &srv[i]) < 0 ||
                weft_stream_server_get_sockname(srv[i], 0, (struct sockaddr *)&sin, &sl) < 0)
                return 1;
            f[n].n = n + 1;
            snprintf(f[n].host, sizeof(f[n].host), "127.0.0.1");
            f[n].port = ntohs(sin.sin_port);
        }
    }
    t = weft_task_spawn(loop, main_task, f, NULL);
    if (t == NULL)
        return 1;
    weft_loop_run(loop);
    status = weft_future_done(weft_task_future(t)) &&
             weft_future_result(weft_task_future(t)) == 0 ? 0 : 1;
    weft_task_unref(t);
    for (int i = 0; i < 3; i++)
        weft_stream_server_free(srv[i]);
    for (int k = 0; k < 50 && weft_stream_handler_count(loop) > 0; k++)
        weft_loop_run_once(loop);
    weft_loop_free(loop);
    weft_tls_context_free(tls.ctx);
    return status;
}
