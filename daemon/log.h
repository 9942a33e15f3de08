/* SPDX-License-Identifier: MIT */
/* log.h: weftd's log: levelled lines on stderr, with journald's <N> prefix under systemd. */
#ifndef WEFTD_LOG_H
#define WEFTD_LOG_H

#include <stdint.h>
#include <weft/log.h>

/*
 * Install the handler for weft_log() at max_level. Lines go to stderr as
 * "2026-12-06 13:40:01.123 info: message" (local time), or "<6>message" when stderr is
 * the journal (JOURNAL_STREAM names our stderr), which stamps lines itself.
 * Thread-safe: one write() per line.
 */
void log_init(int max_level);

/* Change the most verbose level passed on. */
void log_set_level(int max_level);

/* Put prefix ("worker 1234: ") before every message of this process; NULL for none. */
void log_set_prefix(const char *prefix);

/* ms for a person: "250 ms", "1.5 s", "10 s", "2 min", "1 h". Returns buf. */
#define LOG_DURATION_LEN 32
const char *log_duration(uint64_t ms, char buf[static LOG_DURATION_LEN]);

/* The level named by s ("error", "warning", "notice", "info", "debug"), or -1. */
int log_level_parse(const char *s);

#define log_error(...)   weft_log(WEFT_LOG_ERR, __VA_ARGS__)
#define log_warning(...) weft_log(WEFT_LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  weft_log(WEFT_LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    weft_log(WEFT_LOG_INFO, __VA_ARGS__)
#define log_debug(...)   weft_log(WEFT_LOG_DEBUG, __VA_ARGS__)

#endif
