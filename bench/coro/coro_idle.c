/* SPDX-License-Identifier: MIT */
/* coro_idle.c: resident memory per idle task (each asleep in weft_sleep), and map entries used. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft/weft.h>

static long started;

static intptr_t
sleeper(void *arg)
{
    started++;
    return weft_sleep(3600 * 1000);
}

static long
rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long
map_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    long n = 0;
    int c;

    if (f == NULL)
        return -1;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 10000;
    struct weft_loop *loop = weft_loop_new();
    struct weft_task **tasks = calloc((size_t)n, sizeof(*tasks));
    long rss0, rss1, maps0, maps1;

    if (loop == NULL || tasks == NULL)
        return 1;
    weft_loop_run_once(loop);
    rss0 = rss_kib();
    maps0 = map_count();
    for (long i = 0; i < n; i++) {
        tasks[i] = weft_task_spawn(loop, sleeper, NULL, NULL);
        if (tasks[i] == NULL) {
            perror("weft_task_spawn");
            return 1;
        }
    }
    while (started < n)
        weft_loop_run_once(loop);
    rss1 = rss_kib();
    maps1 = map_count();
    printf("weft idle tasks: %ld tasks, %.2f KiB RSS per task, %ld map entries added\n",
           n, (double)(rss1 - rss0) / (double)n, maps1 - maps0);
    for (long i = 0; i < n; i++)
        weft_task_cancel(tasks[i]);
    for (long i = 0; i < n; i++) {
        while (!weft_future_done(weft_task_future(tasks[i])))
            weft_loop_run_once(loop);
        weft_task_unref(tasks[i]);
    }
    free(tasks);
    weft_loop_free(loop);
    return 0;
}
