/* SPDX-License-Identifier: MIT */
/* weft/error.h: weft's error codes and weft_strerror(). */
#ifndef WEFT_ERROR_H
#define WEFT_ERROR_H

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Functions return 0 or a count on success, a negative code on failure: -errno
 * (-ECONNRESET, -ETIMEDOUT, -ECANCELED, ...) or one of these, negated
 * (return -WEFT_ELIMIT). They start at 4000, above every errno value.
 */
enum weft_error {
    WEFT_EINCOMPLETE = 4000, /* EOF before readexactly() got its count */
    WEFT_ELIMIT,             /* separator not found within the limit */
    WEFT_ECONFIG,            /* bad config value; file:line:key is logged */
    WEFT_EABI,               /* plugin built for another WEFT_PLUGIN_ABI */
    WEFT_ENOKEY,             /* unknown config key */
    WEFT_ENONAME,            /* host name does not resolve */
    WEFT_ERESOLVE,           /* name resolution failed (no answer, server error) */
    WEFT_ENOTASK,            /* a suspending call made outside a task */
    WEFT_ESTATE,             /* object in the wrong state (future already done, ...) */
    WEFT_EFULL,              /* queue full (put_nowait) */
    WEFT_EEMPTY,             /* queue empty (get_nowait) */
    WEFT_ETLS,               /* TLS failure; the details are logged */
    WEFT_EPROTO,             /* peer broke the protocol (bad PROXY header, ...) */
    WEFT_ESHUTDOWN,          /* the queue was shut down (weft_queue_shutdown) */
    WEFT_EBROKEN,            /* the barrier was reset or aborted */
    WEFT_ELAST_              /* one past the last code; not an error */
};

/**
 * Name an error code: a static string, never NULL, for any value (negative or
 * positive; 0 gives "success"; an unknown code gives "unknown error").
 * Any thread. Since 0.1.
 */
WEFT_EXPORT const char *weft_strerror(int rc);

/**
 * The symbolic name of an error code ("ECONNRESET", "WEFT_ELIMIT"): a static
 * string, "UNKNOWN" for a value that has none. Any thread. Since 0.1.
 */
WEFT_EXPORT const char *weft_err_name(int rc);

#ifdef __cplusplus
}
#endif
#endif
