/* SPDX-License-Identifier: MIT */
/* error.c: names and messages for errno values and weft's own codes. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <weft/error.h>

struct code_name {
    int code;
    const char *name;
    const char *message;
};

static const struct code_name weft_codes[] = {
    { WEFT_EINCOMPLETE, "WEFT_EINCOMPLETE", "end of stream before the expected bytes" },
    { WEFT_ELIMIT, "WEFT_ELIMIT", "separator not found within the limit" },
    { WEFT_ECONFIG, "WEFT_ECONFIG", "invalid configuration" },
    { WEFT_EABI, "WEFT_EABI", "plugin built for another ABI" },
    { WEFT_ENOKEY, "WEFT_ENOKEY", "unknown configuration key" },
    { WEFT_ENONAME, "WEFT_ENONAME", "name does not resolve" },
    { WEFT_ERESOLVE, "WEFT_ERESOLVE", "name resolution failed" },
    { WEFT_ENOTASK, "WEFT_ENOTASK", "not called from a task" },
    { WEFT_ESTATE, "WEFT_ESTATE", "invalid state" },
    { WEFT_EFULL, "WEFT_EFULL", "queue full" },
    { WEFT_EEMPTY, "WEFT_EEMPTY", "queue empty" },
    { WEFT_ETLS, "WEFT_ETLS", "TLS failure" },
    { WEFT_EPROTO, "WEFT_EPROTO", "peer broke the protocol" },
    { WEFT_ESHUTDOWN, "WEFT_ESHUTDOWN", "queue shut down" },
    { WEFT_EBROKEN, "WEFT_EBROKEN", "barrier broken" },
};

static const struct code_name *
find(const struct code_name *table, size_t n, int code)
{
    for (size_t i = 0; i < n; i++)
        if (table[i].code == code)
            return &table[i];
    return NULL;
}

const char *
weft_strerror(int rc)
{
    const struct code_name *c;

    if (rc == INT_MIN)
        return "unknown error";     /* -INT_MIN overflows */
    if (rc < 0)
        rc = -rc;
    if (rc == 0)
        return "success";
    if (rc >= WEFT_EINCOMPLETE) {
        c = find(weft_codes, sizeof(weft_codes) / sizeof(weft_codes[0]), rc);
        return c ? c->message : "unknown error";
    }
    /* glibc's table is static and thread-safe, but for a value it does not know
     * strerror() formats into a buffer the next call overwrites */
    if (rc < 4000)
        return strerrorname_np(rc) ? strerror(rc) : "unknown error";
    return "unknown error";
}

const char *
weft_err_name(int rc)
{
    const struct code_name *c;

    if (rc == INT_MIN)
        return "UNKNOWN";
    if (rc < 0)
        rc = -rc;
    if (rc == 0)
        return "OK";
    if (rc < WEFT_EINCOMPLETE) {
        const char *name = strerrorname_np(rc);     /* glibc >= 2.32 */
        return name ? name : "UNKNOWN";
    }
    c = find(weft_codes, sizeof(weft_codes) / sizeof(weft_codes[0]), rc);
    return c ? c->name : "UNKNOWN";
}
