/* SPDX-License-Identifier: MIT */
/* log.c: weftd's log handler: stderr lines with a level prefix, journald-aware. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static bool log_journal;
static char log_prefix[32];         /* "worker 1234: " in a worker, else "" */

/*
 * systemd sets JOURNAL_STREAM=dev:ino for the stream it connects to stdout
 * and stderr; only when our stderr is that very stream do <N> prefixes mean
 * something (a shell started from a unit inherits the variable).
 */
static bool
stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return false;
    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void
log_handler(int level, const char *msg, void *arg)
{
    char line[1200];
    int n;

    (void)arg;
    if (log_journal) {
        n = snprintf(line, sizeof(line), "<%d>%s%s\n", level, log_prefix, msg);
    } else {
        /* Not the journal (which stamps its own): a local time to the millisecond. */
        struct timespec ts;
        struct tm tm;
        char when[32] = "";

        if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && localtime_r(&ts.tv_sec, &tm) != NULL) {
            size_t w = strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
            snprintf(when + w, sizeof(when) - w, ".%03ld ", ts.tv_nsec / 1000000);
        }
        n = snprintf(line, sizeof(line), "%s%s: %s%s\n", when, weft_log_level_name(level),
                     log_prefix, msg);
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {
        n = (int)sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    /* One write per line, so lines from several threads do not interleave. */
    while (write(STDERR_FILENO, line, (size_t)n) < 0 && errno == EINTR)
        ;
}

void
log_init(int max_level)
{
    log_journal = stderr_is_journal();
    weft_log_set_handler(log_handler, NULL, max_level);
}

void
log_set_level(int max_level)
{
    weft_log_set_handler(log_handler, NULL, max_level);
}

void
log_set_prefix(const char *prefix)
{
    snprintf(log_prefix, sizeof(log_prefix), "%s", prefix ? prefix : "");
}

int
log_level_parse(const char *s)
{
    static const int levels[] = { WEFT_LOG_ERR, WEFT_LOG_WARNING, WEFT_LOG_NOTICE,
                                  WEFT_LOG_INFO, WEFT_LOG_DEBUG };

    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (strcmp(s, weft_log_level_name(levels[i])) == 0)
            return levels[i];
    return -1;
}

const char *
log_duration(uint64_t ms, char buf[static LOG_DURATION_LEN])
{
    if (ms % 3600000 == 0 && ms >= 3600000)
        snprintf(buf, LOG_DURATION_LEN, "%llu h", (unsigned long long)(ms / 3600000));
    else if (ms % 60000 == 0 && ms >= 60000)
        snprintf(buf, LOG_DURATION_LEN, "%llu min", (unsigned long long)(ms / 60000));
    else if (ms >= 1000)
        snprintf(buf, LOG_DURATION_LEN, "%.*f s", ms % 1000 ? 1 : 0, (double)ms / 1000);
    else
        snprintf(buf, LOG_DURATION_LEN, "%llu ms", (unsigned long long)ms);
    return buf;
}
