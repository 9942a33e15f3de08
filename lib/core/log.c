/* SPDX-License-Identifier: MIT */
/* log.c: the process-wide log handler; the library never writes to stderr itself. */
#include <stdarg.h>
#include <stdio.h>

#include <weft/log.h>

/*
 * Set once at start-up, before threads, then only read: plain globals are
 * enough and keep weft_log_enabled() a load and a compare on hot paths.
 */
static weft_log_cb *log_cb;
static void *log_arg;
static int log_max = WEFT_LOG_INFO;

void
weft_log_set_handler(weft_log_cb *cb, void *arg, int max_level)
{
    log_cb = cb;
    log_arg = arg;
    log_max = max_level;
}

bool
weft_log_enabled(int level)
{
    return log_cb != NULL && level <= log_max;
}

void
weft_logv(int level, const char *fmt, va_list ap)
{
    char msg[1024];

    if (!weft_log_enabled(level))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    log_cb(level, msg, log_arg);
}

void
weft_log(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    weft_logv(level, fmt, ap);
    va_end(ap);
}

const char *
weft_log_level_name(int level)
{
    switch (level) {
    case WEFT_LOG_ERR:     return "error";
    case WEFT_LOG_WARNING: return "warning";
    case WEFT_LOG_NOTICE:  return "notice";
    case WEFT_LOG_INFO:    return "info";
    case WEFT_LOG_DEBUG:   return "debug";
    default:               return level < WEFT_LOG_ERR ? "error" : "debug";
    }
}
