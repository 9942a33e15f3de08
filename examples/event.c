/* SPDX-License-Identifier: MIT */
/*
 * event.c: the tutorial's Event (002): nine get_html tasks each store a page and set the
 * event; updates() waits on it and writes html_dict to the database once the first page
 * is in.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/weft.h>

#include "common.h"

/* The tutorial's requests take 2 s; pass a step in ms to go faster (a request: 2 steps). */
static unsigned step_ms = 1000;

#define NPAGES 9

struct site {
    struct weft_event *event;
    char html_dict[NPAGES][32];         /* page i's html, "" until fetched */
    unsigned stored;                    /* pages in html_dict when updates() ran */
};

struct page {
    struct site *s;
    int i;
};

/* await event.wait(); then html_dict >> DB. */
static intptr_t
updates(void *arg)
{
    struct site *s = arg;
    int rc = weft_event_wait(s->event);

    if (rc < 0)
        return rc;
    for (int i = 0; i < NPAGES; i++)
        s->stored += s->html_dict[i][0] != '\0';
    printf("updates(): html_dict >> DB done\n");
    return 0;
}

/* A request of 2 steps; the page into html_dict; event.set(). */
static intptr_t
get_html(void *arg)
{
    const struct page *p = arg;
    int rc = weft_sleep(2 * (uint64_t)step_ms);

    if (rc < 0)
        return rc;
    snprintf(p->s->html_dict[p->i], sizeof(p->s->html_dict[p->i]), "<h1>/a/%d</h1>", p->i + 1);
    weft_event_set(p->s->event);        /* a plain call: nothing to await */
    printf("/a/%d done\n", p->i + 1);
    return 0;
}

static intptr_t
main_task(void *arg)
{
    struct weft_loop *loop = weft_get_running_loop();
    struct site *s = arg;
    struct page pages[NPAGES];
    weft_task_fn *fns[NPAGES + 1];
    void *argp[NPAGES + 1];
    int rc;

    for (int i = 0; i < NPAGES; i++) {
        pages[i] = (struct page){ s, i };
        fns[i] = get_html;
        argp[i] = &pages[i];
    }
    fns[NPAGES] = updates;
    argp[NPAGES] = s;
    rc = example_gather_tasks(loop, NPAGES + 1, fns, NULL, argp, NULL);
    if (rc < 0)
        return rc;
    printf("updates() waited for a page: %s\n", s->stored >= 1 ? "yes" : "no");
    return 0;
}

int
main(int argc, char **argv)
{
    struct site s = { .event = weft_event_new() };
    int code;

    if (s.event == NULL)
        return 1;
    code = example_run_number("event", argc, argv,
        "usage: example_event [STEP_MS]\n"
        "nine requests set an Event; a database update waits on it;\n"
        "STEP_MS: a request takes 2 steps (default 1000)\n",
        &step_ms, main_task, &s);
    weft_event_free(s.event);
    return code;
}
