/* SPDX-License-Identifier: MIT */
/* paths.c: where the installed tree is: the configured prefix, or the one weftd runs from. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"

#ifndef WEFT_INSTALL_PREFIX
#define WEFT_INSTALL_PREFIX "/usr/local"
#endif
#ifndef WEFT_INSTALL_SBINDIR
#define WEFT_INSTALL_SBINDIR "sbin"
#endif

int
paths_prefix_of(const char *exe, const char *sbindir, char *out, size_t len)
{
    const char *slash = strrchr(exe, '/');
    size_t n, s = strlen(sbindir);

    /* sbindir absolute or empty: not relative to a prefix. */
    if (exe[0] != '/' || slash == NULL || s == 0 || sbindir[0] == '/')
        return -1;
    while (s > 0 && sbindir[s - 1] == '/')
        s--;
    n = (size_t)(slash - exe);          /* exe[0..n) is the executable's directory */
    if (n < s + 1 || exe[n - s - 1] != '/' || strncmp(exe + n - s, sbindir, s) != 0)
        return -1;
    n -= s + 1;                         /* exe[0..n) is the prefix */
    if (n == 0)
        return snprintf(out, len, "/") < (int)len ? 0 : -1;
    if (n >= len)
        return -1;
    memcpy(out, exe, n);
    out[n] = '\0';
    return 0;
}

const char *
paths_prefix(void)
{
    static char prefix[PATH_MAX];
    char exe[PATH_MAX];

    if (prefix[0] == '\0' &&
        (realpath("/proc/self/exe", exe) == NULL ||
         paths_prefix_of(exe, WEFT_INSTALL_SBINDIR, prefix, sizeof(prefix)) < 0))
        snprintf(prefix, sizeof(prefix), "%s", WEFT_INSTALL_PREFIX);
    return prefix;
}

int
paths_installed(const char *path, char *out, size_t len)
{
    const char *prefix;
    int n;

    if (path[0] == '/') {
        n = snprintf(out, len, "%s", path);
    } else {
        prefix = paths_prefix();
        n = snprintf(out, len, "%s%s%s", prefix,
                     prefix[0] != '\0' && prefix[strlen(prefix) - 1] == '/' ? "" : "/", path);
    }
    return n >= 0 && (size_t)n < len ? 0 : -1;
}
