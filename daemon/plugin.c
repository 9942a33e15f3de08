/* SPDX-License-Identifier: MIT */
/* plugin.c: dlopen a protocol plugin and check its record before trusting any of it. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <weft/error.h>

#include "paths.h"
#include "plugin.h"

#ifndef WEFT_BUILD_DIR
#define WEFT_BUILD_DIR ""
#endif
#ifndef WEFT_BUILD_PLUGIN_DIR
#define WEFT_BUILD_PLUGIN_DIR ""
#endif
#ifndef WEFT_PLUGIN_INSTALL_DIR
#define WEFT_PLUGIN_INSTALL_DIR "lib/weft/protocols"
#endif

const char *
plugin_default_dir(void)
{
    static char dir[PATH_MAX];
    char exe[PATH_MAX], build[PATH_MAX];
    size_t n;

    if (WEFT_BUILD_DIR[0] != '\0' && realpath("/proc/self/exe", exe) != NULL &&
        realpath(WEFT_BUILD_DIR, build) != NULL) {
        n = strlen(build);
        if (strncmp(exe, build, n) == 0 && exe[n] == '/')
            return WEFT_BUILD_PLUGIN_DIR;
    }
    if (dir[0] == '\0' && paths_installed(WEFT_PLUGIN_INSTALL_DIR, dir, sizeof(dir)) < 0)
        snprintf(dir, sizeof(dir), "%s", WEFT_PLUGIN_INSTALL_DIR);
    return dir;
}

static bool
good_name(const char *s)
{
    if (*s == '\0' || *s == '-')
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

int
plugin_check_record(const void *sym, const char *name, const char *path, char *err,
                    size_t errlen)
{
    const struct weft_plugin *rec;
    uint32_t abi, size;

    /*
     * The ABI number is the one field every version of the record has at the
     * same place; until it matches, nothing else of the record is meaningful.
     */
    memcpy(&abi, sym, sizeof(abi));
    if (abi != WEFT_PLUGIN_ABI) {
        snprintf(err, errlen, "%s: built for plugin ABI %u, weftd speaks %u", path,
                 (unsigned)abi, (unsigned)WEFT_PLUGIN_ABI);
        return -WEFT_EABI;
    }
    memcpy(&size, (const char *)sym + sizeof(abi), sizeof(size));
    if (size < PLUGIN_RECORD_MIN_SIZE) {
        snprintf(err, errlen, "%s: plugin record too small (%u bytes, ABI %u needs %zu)",
                 path, (unsigned)size, (unsigned)WEFT_PLUGIN_ABI,
                 (size_t)PLUGIN_RECORD_MIN_SIZE);
        return -WEFT_EABI;
    }
    rec = sym;
    if (rec->name == NULL || strcmp(rec->name, name) != 0) {
        snprintf(err, errlen, "%s: plugin calls itself \"%s\", expected \"%s\"", path,
                 rec->name ? rec->name : "(null)", name);
        return -WEFT_ECONFIG;
    }
    /* .client is read only when the record is large enough to have it. */
    if (rec->protocol_new == NULL &&
        (size < offsetof(struct weft_plugin, client) + sizeof(rec->client) ||
         rec->client == NULL) && !PLUGIN_SPEAKS_UDP(rec)) {
        snprintf(err, errlen, "%s: plugin has neither protocol_new, client nor datagram_new",
                 path);
        return -WEFT_ECONFIG;
    }
    return 0;
}

/* Load <dir>/<name>.so, dir being one directory; -ENOENT if it has none. */
static int
open_in(const char *dir, size_t dirlen, const char *name, struct plugin **out, char *err,
        size_t errlen)
{
    struct plugin *p = NULL;
    struct stat st;
    void *sym;
    int rc;

    p = calloc(1, sizeof(*p));
    if (p == NULL || (p->name = strdup(name)) == NULL ||
        asprintf(&p->path, "%.*s/%s.so", (int)dirlen, dir, name) < 0) {
        if (p != NULL)
            p->path = NULL;
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (stat(p->path, &st) < 0) {
        rc = -errno;
        if (rc != -ENOENT)
            snprintf(err, errlen, "%s: %s", p->path, strerror(-rc));
        goto fail;
    }
    p->handle = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (p->handle == NULL) {
        const char *why = dlerror();

        /* dlerror() names the file already: "/x/foo.so: invalid ELF header". */
        snprintf(err, errlen, "%s", why ? why : p->path);
        if (why != NULL && strstr(why, p->path) == NULL)
            snprintf(err, errlen, "%s: %s", p->path, why);
        rc = -WEFT_ECONFIG;
        goto fail;
    }
    dlerror();
    sym = dlsym(p->handle, "weft_plugin");
    if (sym == NULL) {
        snprintf(err, errlen, "%s: not a weft plugin (no weft_plugin symbol)", p->path);
        rc = -WEFT_ECONFIG;
        goto fail;
    }
    rc = plugin_check_record(sym, name, p->path, err, errlen);
    if (rc < 0)
        goto fail;
    p->rec = sym;
    *out = p;
    return 0;

fail:
    plugin_close(p);
    return rc;
}

int
plugin_open(const char *path, const char *name, struct plugin **out, char *err, size_t errlen)
{
    const char *dir, *end;
    size_t len, n = 0;
    int rc;

    *out = NULL;
    if (!good_name(name)) {
        snprintf(err, errlen, "bad protocol name \"%s\"", name);
        return -EINVAL;
    }
    /* The first directory holding <name>.so wins, even if that file does not load. */
    for (dir = path; *dir != '\0'; dir = *end ? end + 1 : end) {
        end = strchrnul(dir, ':');
        len = (size_t)(end - dir);
        if (len == 0)
            continue;
        rc = open_in(dir, len, name, out, err, errlen);
        if (rc != -ENOENT)
            return rc;
        n++;
    }
    /* Not found: name every file looked for, in order. */
    len = (size_t)snprintf(err, errlen, "unknown protocol \"%s\" (no ", name);
    if (n == 0 && len < errlen)
        len += (size_t)snprintf(err + len, errlen - len, "plugin directory");
    n = 0;
    for (dir = path; *dir != '\0' && len < errlen; dir = *end ? end + 1 : end) {
        end = strchrnul(dir, ':');
        if (end == dir)
            continue;
        len += (size_t)snprintf(err + len, errlen - len, "%s%.*s/%s.so", n++ ? ", " : "",
                                (int)(end - dir), dir, name);
    }
    if (len < errlen)
        snprintf(err + len, errlen - len, ")");
    return -ENOENT;
}

void
plugin_close(struct plugin *p)
{
    if (p == NULL)
        return;
    if (p->handle != NULL)
        dlclose(p->handle);
    free(p->path);
    free(p->name);
    free(p);
}
