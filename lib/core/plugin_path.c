/* SPDX-License-Identifier: MIT */
/* plugin_path.c: config paths relative to the config file's directory (weft/plugin.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <weft/plugin.h>

static char config_dir[PATH_MAX];   /* "" (the current directory) or "dir/" */

int
weft_plugin_set_config_dir(const char *dir)
{
    size_t n = dir ? strlen(dir) : 0;
    bool slash = n > 0 && dir[n - 1] == '/';

    if (n + 2 > sizeof(config_dir))
        return -ENAMETOOLONG;
    snprintf(config_dir, sizeof(config_dir), "%s%s", n ? dir : "", n && !slash ? "/" : "");
    return 0;
}

int
weft_plugin_path(const char *value, char *out, size_t outlen)
{
    const char *base = value[0] == '/' ? "" : config_dir;
    int n;

    if (outlen > 0)
        out[0] = '\0';
    if (value[0] == '\0')
        return -EINVAL;
    n = snprintf(out, outlen, "%s%s", base, value);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return -ENAMETOOLONG;
    }
    return n;
}
