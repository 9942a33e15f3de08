/* SPDX-License-Identifier: MIT */
/* chat.c: a line chat server: readline, then broadcast to every client through a queue each. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#include "common.h"

/*
 * chat -p PORT   serve until SIGINT (try two: nc 127.0.0.1 PORT)
 * chat           demo: three clients join, each says a line, each hears the others
 */

#define LINE_MAX_ 512

struct member {
    struct member *next;
    struct weft_queue *q;       /* lines to send (malloc'd, NUL-terminated) */
    char name[32];
};

static struct member *members;

/* Each client's sender: takes lines from its queue and writes them. */
struct sender {
    struct member *m;
    struct weft_writer *w;
};

static intptr_t
sender(void *arg)
{
    struct sender *s = arg;
    intptr_t item;
    int rc;

    while ((rc = weft_queue_get(s->m->q, &item)) == 0) {
        char *line = (char *)item;

        rc = weft_writer_write(s->w, line, strlen(line));
        free(line);
        if (rc == 0)
            rc = weft_writer_drain(s->w);
        if (rc < 0)
            break;
    }
    return rc;
}

static void
broadcast(const struct member *from, const char *text)
{
    for (struct member *m = members; m != NULL; m = m->next) {
        char *line;

        if (m == from || asprintf(&line, "%s: %s", from->name, text) < 0)
            continue;
        if (weft_queue_put_nowait(m->q, (intptr_t)line) < 0)
            free(line);         /* a client too slow to keep up loses lines */
    }
}

static int
chat_client(struct weft_reader *r, struct weft_writer *w, void *arg)
{
    static unsigned next_id;
    struct member m = { .q = weft_queue_new(100, WEFT_QUEUE_FIFO, NULL) };
    struct sender s = { .m = &m, .w = w };
    struct weft_task *t;
    char line[LINE_MAX_];
    ssize_t n;
    intptr_t item;

    (void)arg;
    if (m.q == NULL)
        return -ENOMEM;
    snprintf(m.name, sizeof(m.name), "guest%u", ++next_id);
    t = weft_task_spawn(weft_transport_get_loop(weft_writer_transport(w)), sender, &s, NULL);
    if (t == NULL) {
        weft_queue_free(m.q);
        return -ENOMEM;
    }
    m.next = members;
    members = &m;
    broadcast(&m, "joined\n");
    while ((n = weft_reader_readline(r, line, sizeof(line))) != 0) {
        if (n == -WEFT_ELIMIT)
            continue;           /* too long: dropped */
        if (n < 0)
            break;
        broadcast(&m, line);
    }
    broadcast(&m, "left\n");
    for (struct member **pp = &members; *pp != NULL; pp = &(*pp)->next)
        if (*pp == &m) {
            *pp = m.next;
            break;
        }
    weft_task_cancel(t);
    weft_await(weft_task_future(t));
    weft_task_unref(t);
    while (weft_queue_get_nowait(m.q, &item) == 0)
        free((char *)item);
    weft_queue_free(m.q);
    return 0;
}

/* ---- demo ---- */

struct demo {
    struct weft_loop *loop;
    uint16_t port;
    int ok;
};

static intptr_t
demo_user(void *arg)
{
    struct demo *d = arg;
    struct weft_reader *r;
    struct weft_writer *w;
    char line[LINE_MAX_];
    int heard = 0;
    int rc = weft_open_connection("127.0.0.1", d->port, NULL, &r, &w);

    if (rc < 0)
        return rc;
    weft_sleep(50);                         /* everyone is in */
    weft_writer_write(w, "hello\n", 6);
    weft_reader_set_timeout(r, 300);
    while (weft_reader_readline(r, line, sizeof(line)) > 0)
        heard += strstr(line, ": hello\n") != NULL;
    weft_writer_free(w);
    d->ok += heard == 2;                    /* the two others */
    return 0;
}

static intptr_t
demo_main(void *arg)
{
    struct demo *d = arg;
    struct weft_future *f[3];
    struct weft_task *t[3];

    for (int i = 0; i < 3; i++) {
        t[i] = weft_task_spawn(d->loop, demo_user, d, NULL);
        if (t[i] == NULL)
            return -ENOMEM;
        f[i] = weft_task_future(t[i]);
    }
    weft_gather(f, 3, NULL, WEFT_GATHER_RETURN_ERRORS);
    for (int i = 0; i < 3; i++)
        weft_task_unref(t[i]);
    printf("%d of 3 clients heard both others say hello\n", d->ok);
    weft_loop_stop(d->loop);
    return 0;
}

int
main(int argc, char **argv)
{
    struct demo d = { .loop = NULL };
    int code = example_args(argc, argv, EXAMPLE_ARGS_SERVE,
        "usage: example_chat [-p PORT]\n"
        "a line chat server: -p PORT serves on 127.0.0.1:PORT until Ctrl-C (try\n"
        "nc 127.0.0.1 PORT from two terminals); without it, a demo of three clients\n"
        "on a free port\n");
    if (code >= 0)
        return code;
    d.loop = example_loop_new("chat");
    if (d.loop == NULL)
        return 1;
    return example_serve("chat", d.loop, argc, argv, chat_client, "chat", demo_main, &d, &d.port);
}
