/* SPDX-License-Identifier: MIT */
/* poem_serve.c: serve the poem plugin with weft_start_server, without weftd (tests, demos). */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

extern const struct weft_plugin weft_plugin;

static void
log_to_stderr(int level, const char *msg, void *arg)
{
    (void)arg;
    fprintf(stderr, "poem_serve: %s: %s\n", weft_log_level_name(level), msg);
}

static void
on_signal(struct weft_loop *loop, int sig, void *arg)
{
    (void)sig;
    weft_stream_server_close(arg);
    weft_loop_stop(loop);
}

static void
usage(void)
{
    fprintf(stderr, "usage: poem_serve [-H host] [-p port] [key=value ...]\n"
                    "  keys: greeting_timeout, poems, order, delay, chunk (see conf/weftd.conf)\n"
                    "  prints \"listening on PORT\" once it listens; stops on SIGINT or SIGTERM\n");
}

int
main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    unsigned long port = 0;
    struct weft_stream_server *srv = NULL;
    struct weft_loop *loop;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char err[256] = "";
    void *svc = NULL;
    int i, rc, status = 1;

    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-H") == 0 && i + 1 < argc)
            host = argv[++i];
        else if (strcmp(argv[i], "-p") == 0 && i + 1 < argc)
            port = strtoul(argv[++i], NULL, 10);
        else {
            usage();
            return 2;
        }
    }
    weft_log_set_handler(log_to_stderr, NULL, WEFT_LOG_INFO);
    if (weft_plugin.service_new(&svc) < 0)
        return 1;
    for (; i < argc; i++) {
        char *eq = strchr(argv[i], '=');

        if (eq == NULL) {
            usage();
            goto out;
        }
        *eq = '\0';
        rc = weft_plugin.configure(svc, argv[i], eq + 1, err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, "poem_serve: %s: %s\n", argv[i], err);
            goto out;
        }
    }
    if (weft_plugin.service_check(svc, err, sizeof(err)) < 0) {
        fprintf(stderr, "poem_serve: %s\n", err);
        goto out;
    }
    loop = weft_loop_new();
    if (loop == NULL)
        goto out;
    rc = weft_start_server(loop, weft_plugin.client, svc, host, (uint16_t)port, NULL, &srv);
    if (rc < 0) {
        fprintf(stderr, "poem_serve: %s:%lu: %s\n", host, port, weft_strerror(rc));
    } else if (weft_loop_add_signal_handler(loop, SIGINT, on_signal, srv) == 0 &&
               weft_loop_add_signal_handler(loop, SIGTERM, on_signal, srv) == 0 &&
               weft_stream_server_get_sockname(srv, 0, (struct sockaddr *)&ss, &sl) == 0) {
        printf("listening on %u\n",
               ntohs(((struct sockaddr_in *)&ss)->sin_port));   /* same offset in sin6 */
        fflush(stdout);
        status = weft_loop_run(loop) < 0;
    }
    /* Cancel what is left and let the handlers finish before the loop goes. */
    weft_stream_server_free(srv);
    for (int k = 0; k < 100 && weft_stream_handler_count(loop) > 0; k++)
        weft_loop_run_once(loop);
    weft_loop_free(loop);
out:
    weft_plugin.service_free(svc);
    return status;
}
