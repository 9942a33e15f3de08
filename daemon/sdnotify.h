/* SPDX-License-Identifier: MIT */
/* sdnotify.h: systemd's readiness protocol (sd_notify), without libsystemd. */
#ifndef WEFTD_SDNOTIFY_H
#define WEFTD_SDNOTIFY_H

#include <weft/common.h>

/*
 * Send one datagram of "KEY=VALUE\n..." lines to $NOTIFY_SOCKET (a path, or
 * an abstract name when it starts with '@'), as sd_notify(3) does. Returns 1
 * when sent, 0 when there is no NOTIFY_SOCKET (not under systemd, or a
 * worker), or -errno. Never blocks: the datagram is dropped if the socket is
 * full.
 */
int sdnotify(const char *fmt, ...) WEFT_PRINTF(1, 2);

/*
 * EXTEND_TIMEOUT_USEC= gives systemd the time weftd needs from now on (a stop that
 * drains for shutdown_timeout, a reload) plus this margin: TimeoutStopSec= (and
 * TimeoutStartSec=, which bounds a reload) then never kills a drain weftd bounds itself.
 */
#define SDNOTIFY_EXTEND_MARGIN_MS 5000

/* CLOCK_MONOTONIC in microseconds, for "RELOADING=1\nMONOTONIC_USEC=...". */
unsigned long long sdnotify_monotonic_usec(void);

#endif
