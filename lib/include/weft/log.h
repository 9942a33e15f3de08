/* SPDX-License-Identifier: MIT */
/* weft/log.h: the library's one way out to a log; it never prints by itself. */
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

#include <stdarg.h>
#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* syslog's numbers, so a daemon can prefix journald's <N> directly. */
enum weft_log_level {
    WEFT_LOG_ERR = 3,
    WEFT_LOG_WARNING = 4,
    WEFT_LOG_NOTICE = 5,
    WEFT_LOG_INFO = 6,
    WEFT_LOG_DEBUG = 7,
};

/* Receives one formatted message, without a trailing newline. */
typedef void weft_log_cb(int level, const char *msg, void *arg);

/**
 * Set the process-wide log handler and the most verbose level passed to it.
 * cb NULL discards every message (the default: the library never prints).
 * The handler may be called from any thread that uses weft (executor threads
 * too), so it must be thread-safe. Call before starting threads. Since 0.1.
 */
WEFT_EXPORT void weft_log_set_handler(weft_log_cb *cb, void *arg, int max_level);

/** True when a message at level would reach the handler. Any thread. Since 0.1. */
WEFT_EXPORT bool weft_log_enabled(int level);

/**
 * Format and pass a message to the handler, if level is enabled. Messages
 * longer than 1 KiB are truncated. Any thread. Since 0.1.
 */
WEFT_EXPORT void weft_log(int level, const char *fmt, ...) WEFT_PRINTF(2, 3);

/** weft_log() with a va_list. Any thread. Since 0.1. */
WEFT_EXPORT void weft_logv(int level, const char *fmt, va_list ap);

/** The level's name: "error", "warning", "notice", "info", "debug". Since 0.1. */
WEFT_EXPORT const char *weft_log_level_name(int level);

#ifdef __cplusplus
}
#endif
#endif
