/* SPDX-License-Identifier: MIT */
/*
 * condition.c: the tutorial's Condition (002): two producers make five goods each and
 * notify one consumer per good; five consumers wait on the condition while the list is
 * empty and take what is there. The tutorial's consumers loop forever; here they stop once
 * the producers are done and the list is empty.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/weft.h>

#include "common.h"

/* The tutorial sleeps 0.01 s after each good; pass a step in ms to change it. */
static unsigned step_ms = 10;

#define NPRODUCERS 2
#define NCONSUMERS 5
#define GOODS 5

struct shop {
    struct weft_condition *cond;
    char list[NPRODUCERS * GOODS][8];   /* p_list */
    int n;                              /* goods in the list */
    int made, taken;
};

struct worker {
    struct shop *s;
    int i;
};

/* p_list as "['0-1', '1-1']". */
static void
print_list(const struct shop *s, const char *label)
{
    printf("%s [", label);
    for (int i = 0; i < s->n; i++)
        printf("%s'%s'", i ? ", " : "", s->list[i]);
    printf("]\n");
}

static intptr_t
producer(void *arg)
{
    const struct worker *w = arg;
    struct shop *s = w->s;
    int rc;

    for (int i = 0; i < GOODS; i++) {
        if ((rc = weft_condition_acquire(s->cond)) < 0)
            return rc;
        snprintf(s->list[s->n++], sizeof(s->list[0]), "%d-%d", w->i, i);
        s->made++;
        printf("[producer %d] made %d-%d\n", w->i, w->i, i);
        if (s->made == NPRODUCERS * GOODS)
            weft_condition_notify_all(s->cond);     /* the last: wake all, to finish */
        else
            weft_condition_notify(s->cond, 1);      /* cond.notify(): any one consumer */
        weft_condition_release(s->cond);
        if ((rc = weft_sleep(step_ms)) < 0)
            return rc;
    }
    return 0;
}

static intptr_t
consumer(void *arg)
{
    const struct worker *w = arg;
    struct shop *s = w->s;
    int rc;

    for (;;) {
        if ((rc = weft_condition_acquire(s->cond)) < 0)
            return rc;
        while (s->n == 0 && s->made < NPRODUCERS * GOODS) {
            if ((rc = weft_condition_wait(s->cond)) < 0) {
                weft_condition_release(s->cond);
                return rc;
            }
        }
        if (s->n == 0) {                /* all made, all taken */
            weft_condition_release(s->cond);
            return 0;
        }
        print_list(s, "goods:");
        printf("[consumer %d] took %s\n", w->i, s->list[--s->n]);
        s->taken++;
        print_list(s, "left:");
        weft_condition_release(s->cond);
        if ((rc = weft_sleep(step_ms)) < 0)
            return rc;
    }
}

static intptr_t
main_task(void *arg)
{
    struct weft_loop *loop = weft_get_running_loop();
    struct shop *s = arg;
    struct worker ws[NPRODUCERS + NCONSUMERS];
    weft_task_fn *fns[NPRODUCERS + NCONSUMERS];
    void *argp[NPRODUCERS + NCONSUMERS];
    size_t n = NPRODUCERS + NCONSUMERS;
    int rc;

    for (size_t i = 0; i < n; i++) {
        bool prod = i < NPRODUCERS;

        ws[i] = (struct worker){ s, prod ? (int)i : (int)(i - NPRODUCERS) };
        fns[i] = prod ? producer : consumer;
        argp[i] = &ws[i];
    }
    rc = example_gather_tasks(loop, n, fns, NULL, argp, NULL);
    if (rc < 0)
        return rc;
    printf("%d of %d goods made and taken\n", s->taken, s->made);
    return 0;
}

int
main(int argc, char **argv)
{
    struct shop s = { .cond = weft_condition_new(NULL) };
    int code;

    if (s.cond == NULL)
        return 1;
    code = example_run_number("condition", argc, argv,
        "usage: example_condition [STEP_MS]\n"
        "two producers and five consumers share a list through a Condition;\n"
        "STEP_MS: the pause after each good (default 10)\n",
        &step_ms, main_task, &s);
    weft_condition_free(s.cond);
    return code;
}
