/* SPDX-License-Identifier: MIT */
/* paths.h: installed paths relative to the prefix weftd runs from (a relocated install). */
#ifndef WEFTD_PATHS_H
#define WEFTD_PATHS_H

#include <stddef.h>

/*
 * The install prefix: the one this program runs from if its executable
 * (realpath of /proc/self/exe) is <prefix>/<WEFT_INSTALL_SBINDIR>/<name>, so
 * that a tree installed with `cmake --install --prefix P` or moved elsewhere
 * finds its own plugins and config; else the configured WEFT_INSTALL_PREFIX.
 * Computed once.
 */
const char *paths_prefix(void);

/*
 * The prefix of an executable at exe, installed in sbindir (relative to the
 * prefix): 0 and the prefix in out ("/" for /<sbindir>/<name>), or -1 if exe
 * is not in a <prefix>/<sbindir> directory or does not fit.
 */
int paths_prefix_of(const char *exe, const char *sbindir, char *out, size_t len);

/*
 * An installed path: path itself if absolute, else paths_prefix()/path, in
 * out. 0, or -1 if it does not fit.
 */
int paths_installed(const char *path, char *out, size_t len);

#endif
