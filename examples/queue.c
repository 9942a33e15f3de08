/* SPDX-License-Identifier: MIT */
/* queue.c: the tutorial's producer and consumer, connected by a weft_queue. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

#include "common.h"

#define DONE 0          /* the tutorial's None: no more items */

struct shop {
    struct weft_queue *queue;
    int n;
    unsigned max_delay_ms;
};

static unsigned
random_delay(const struct shop *s)
{
    return (unsigned)(random() % (s->max_delay_ms + 1));
}

static intptr_t
produce(void *arg)
{
    struct shop *s = arg;

    for (int x = 1; x <= s->n; x++) {
        printf("producing %d/%d\n", x, s->n);
        int rc = weft_sleep(random_delay(s));  /* simulate i/o */
        if (rc == 0)
            rc = weft_queue_put(s->queue, x);
        if (rc < 0)
            return rc;
    }
    return weft_queue_put(s->queue, DONE);
}

static intptr_t
consume(void *arg)
{
    struct shop *s = arg;
    intptr_t item;

    for (;;) {
        int rc = weft_queue_get(s->queue, &item);
        if (rc < 0)
            return rc;
        if (item == DONE)
            return 0;
        printf("consuming item %ld...\n", (long)item);
        rc = weft_sleep(random_delay(s));
        if (rc < 0)
            return rc;
    }
}

static intptr_t
main_task(void *arg)
{
    struct weft_loop *loop = weft_get_running_loop();
    struct shop *s = arg;
    struct weft_task *p = weft_task_spawn(loop, produce, s, NULL);
    struct weft_task *c = weft_task_spawn(loop, consume, s, NULL);
    struct weft_future *both[2];
    int rc = -ENOMEM;

    if (p != NULL && c != NULL) {
        both[0] = weft_task_future(p);
        both[1] = weft_task_future(c);
        rc = weft_gather(both, 2, NULL, 0);
    }
    weft_task_unref(p);
    weft_task_unref(c);
    return rc;
}

int
main(int argc, char **argv)
{
    struct shop s = { .n = 10, .max_delay_ms = 1000 };
    int code;

    code = example_args(argc, argv, EXAMPLE_ARGS_NUMBER,
        "usage: example_queue [MAX_DELAY_MS]\n"
        "a producer and a consumer through a queue;\n"
        "MAX_DELAY_MS: the longest random delay (default 1000)\n");
    if (code >= 0)
        return code;

    if (argc > 1)
        s.max_delay_ms = (unsigned)atoi(argv[1]);
    s.queue = weft_queue_new(0, WEFT_QUEUE_FIFO, NULL);
    if (s.queue == NULL)
        return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    code = example_exit("queue", weft_run(main_task, &s));     /* asyncio.run(main()) */
    weft_queue_free(s.queue);
    return code;
}
