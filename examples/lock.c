/* SPDX-License-Identifier: MIT */
/*
 * lock.c: the tutorial's Lock that de-duplicates fetches (002): parse_js and parse_html
 * both want the same page; get_html holds a lock while it looks in the cache and, on a
 * miss, fetches, so the page is fetched once and the second caller reads the cache.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/weft.h>

#include "common.h"

/* The tutorial's fetch takes 2 to 5 s; pass a step in ms to go faster. */
static unsigned step_ms = 1000;

struct cache {
    struct weft_lock *lock;
    char url[64], html[96];             /* one page is all the tutorial caches */
    unsigned fetches;
};

struct caller {
    struct cache *c;
    const char *name, *url;
};

/* A fetch whose time is not known in advance: 2 to 5 steps. */
static int
fetch(struct cache *c, const char *url)
{
    int rc;

    printf("fetching %s...\n", url);
    rc = weft_sleep((uint64_t)(2 + rand() % 4) * step_ms);
    if (rc < 0)
        return rc;
    snprintf(c->url, sizeof(c->url), "%s", url);
    snprintf(c->html, sizeof(c->html), "<h2>%s</h2>", url);
    c->fetches++;
    return 0;
}

/* async with lock: the cache, else a fetch into it. Fills html. */
static int
get_html(const struct caller *who, char *html, size_t len)
{
    struct cache *c = who->c;
    int rc;

    printf("%s: get_html(%s)\n", who->name, who->url);
    rc = weft_lock_acquire(c->lock);
    if (rc < 0)
        return rc;
    if (strcmp(c->url, who->url) == 0) {
        printf("%s: %s from the cache\n", who->name, who->url);
    } else {
        rc = fetch(c, who->url);
        if (rc == 0)
            printf("%s: fetched %s\n", who->name, who->url);
    }
    if (rc == 0)
        snprintf(html, len, "%s", c->html);
    weft_lock_release(c->lock);
    return rc;
}

/* parse_js: the page's length. */
static intptr_t
parse_js(void *arg)
{
    char html[96];
    int rc = get_html(arg, html, sizeof(html));

    return rc < 0 ? rc : (intptr_t)strlen(html);
}

/* parse_html: the page itself (the cache's copy, which outlives the task). */
static intptr_t
parse_html(void *arg)
{
    const struct caller *who = arg;
    char html[96];
    int rc = get_html(who, html, sizeof(html));

    return rc < 0 ? rc : (intptr_t)who->c->html;
}

static intptr_t
main_task(void *arg)
{
    struct weft_loop *loop = weft_get_running_loop();
    struct cache *c = arg;
    struct caller js = { c, "parse_js", "www.baidu" }, page = { c, "parse_html", "www.baidu" };
    weft_task_fn *fns[2] = { parse_js, parse_html };
    void *argp[2] = { &js, &page };
    intptr_t results[2];
    int rc = example_gather_tasks(loop, 2, fns, NULL, argp, results);

    if (rc < 0)
        return rc;
    printf("[%ld, '%s']\n", (long)results[0], (const char *)results[1]);
    printf("%u fetch for 2 callers\n", c->fetches);
    return 0;
}

int
main(int argc, char **argv)
{
    struct cache c = { .lock = weft_lock_new() };
    int code;

    if (c.lock == NULL)
        return 1;
    srand((unsigned)getpid());
    code = example_run_number("lock", argc, argv,
        "usage: example_lock [STEP_MS]\n"
        "two parsers want one page: a lock makes it one fetch and a cache hit;\n"
        "STEP_MS: a fetch takes 2 to 5 steps (default 1000)\n",
        &step_ms, main_task, &c);
    weft_lock_free(c.lock);
    return code;
}
