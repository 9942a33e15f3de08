/* SPDX-License-Identifier: MIT */
/* plugin.h: loading protocol plugins: dlopen, the ABI check, the record's sanity. */
#ifndef WEFTD_PLUGIN_H
#define WEFTD_PLUGIN_H

#include <stddef.h>

#include <weft/plugin.h>

/*
 * The smallest record weftd accepts: everything up to .alpn. Fields added
 * since (.reopen, .worker_start, .worker_stop, .datagram_new, .service_alpn, .drain) are
 * read only when the record's size covers them.
 */
#define PLUGIN_RECORD_MIN_SIZE offsetof(struct weft_plugin, reopen)

/* The record's optional field F if its size covers it, else NULL. */
#define PLUGIN_FIELD(rec, f)                                                                \
    ((rec)->size >= offsetof(struct weft_plugin, f) + sizeof((rec)->f) ? (rec)->f : NULL)

/* What a plugin speaks: TCP (protocol_new or client), UDP (datagram_new). */
#define PLUGIN_SPEAKS_TCP(rec) ((rec)->protocol_new != NULL || (rec)->client != NULL)
#define PLUGIN_SPEAKS_UDP(rec) (PLUGIN_FIELD(rec, datagram_new) != NULL)

struct plugin {
    char *name;                         /* the protocol name */
    char *path;                         /* <dir>/<name>.so */
    void *handle;                       /* from dlopen */
    const struct weft_plugin *rec;      /* the plugin's weft_plugin, checked */
};

/*
 * Load <dir>/<name>.so from the first dir of path (directories separated by
 * colons, empty ones skipped) that has that file: dlopen(RTLD_NOW |
 * RTLD_LOCAL), find weft_plugin, read its abi before anything else, then its
 * size, name and protocol_new. A file found that does not load is an error,
 * not a reason to look further. Returns 0 and *out, or a negative code with a
 * one-line reason naming the file in err: -ENOENT (in no directory: err
 * lists each file looked for), -EINVAL (bad name), -WEFT_EABI (another ABI),
 * -WEFT_ECONFIG (not a plugin, bad record), -ENOMEM.
 */
int plugin_open(const char *path, const char *name, struct plugin **out, char *err,
                size_t errlen);

/*
 * Check the record at sym (the weft_plugin symbol found in path) for the
 * protocol name, reading its abi before anything else, then its size, name
 * and protocol_new / client. Returns 0, or -WEFT_EABI / -WEFT_ECONFIG with a
 * one-line reason naming path in err. plugin_open() calls it after dlsym; the
 * fuzz target tests/fuzz/fuzz_plugin_record.c calls it on made-up records.
 */
int plugin_check_record(const void *sym, const char *name, const char *path, char *err,
                        size_t errlen);

/* Unload; NULL is a no-op. Every service and connection must be gone. */
void plugin_close(struct plugin *p);

/*
 * The built-in plugin directory, searched last: the build tree's plugin
 * folder if this program runs from the build tree, else the install folder
 * (WEFT_PLUGIN_INSTALL_DIR; relative to the prefix weftd runs from, see
 * paths_installed(), when relative).
 */
const char *plugin_default_dir(void);

#endif
