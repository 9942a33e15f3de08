#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_install.sh: `cmake --install` into a staging root lays out what a sysadmin and a
# plugin author need; a plugin built out of tree with `pkg-config weft` loads in the
# installed weftd. (The Debian packages: tests/system/test_systemd_nspawn.sh.)
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFT_BINARY_DIR
require_tool nc netcat-openbsd
keep_going=1

cache() {
    sed -n "s/^$1:[A-Z]*=//p" "$WEFT_BINARY_DIR/CMakeCache.txt"
}

root=$tmp/root
prefix=$(cache CMAKE_INSTALL_PREFIX)
[ -n "$prefix" ] || prefix=/usr/local
DESTDIR=$root cmake --install "$WEFT_BINARY_DIR" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "cmake --install failed"; exit 1; }

# The layout: GNUInstallDirs under the configured prefix.
libdir=$(sed -n 's/^libdir=//p' "$root$prefix"/lib*/pkgconfig/weft.pc 2>/dev/null | head -1)
plugindir=$(sed -n 's/^plugindir=//p' "$root$prefix"/lib*/pkgconfig/weft.pc 2>/dev/null | head -1)
[ -n "$libdir" ] || fail "no weft.pc under $prefix/lib*/pkgconfig"
for f in "$prefix/sbin/weftd" "$prefix/include/weft/weft.h" "$prefix/include/weft/plugin.h" \
         "$prefix/include/weft/version.h" "$libdir/libweft.so" "$libdir/libweft.so.0" \
         "$plugindir/echo.so" "$prefix/share/man/man8/weftd.8" \
         "$prefix/share/man/man5/weftd.conf.5" "$prefix/lib/systemd/system/weftd.service" \
         "$prefix/lib/systemd/system/weftd@.socket" "$prefix/lib/sysusers.d/weft.conf"; do
    [ -e "$root$f" ] || fail "not installed: $f"
done
conf=$(find "$root" -path '*/weft/weftd.conf' | head -1)
case "$conf" in
    "$root"/etc/weft/weftd.conf | "$root$prefix"/etc/weft/weftd.conf) ;;
    *) fail "weftd.conf not in the config dir: ${conf:-none}" ;;
esac
grep -q "^ExecStart=$prefix/sbin/weftd -c " "$root$prefix/lib/systemd/system/weftd.service" ||
    fail "the installed unit does not run the installed weftd"

# libweft: a SONAME, and only weft_* exported (the version script).
readelf -d "$root$libdir/libweft.so" | grep -q 'SONAME.*\[libweft\.so\.0\]' ||
    fail "libweft.so has no SONAME libweft.so.0"
others=$(nm -D --defined-only "$root$libdir/libweft.so" | awk '{print $3}' |
         grep -v -e '^weft_' -e '^LIBWEFT_' || true)
[ -z "$others" ] || fail "libweft exports more than weft_*: $others"

# A plugin built out of tree against the installed headers and weft.pc.
mkdir -p "$tmp/hello"
cat >"$tmp/hello/hello.c" <<'C'
#include <stdlib.h>
#include <weft/weft.h>

struct hello { struct weft_protocol base; };

static int
hello_made(struct weft_protocol *p, struct weft_transport *tr)
{
    (void)p;
    weft_transport_write(tr, "hello from out of tree\n", 23);
    weft_transport_close(tr);
    return 0;
}

static void
hello_lost(struct weft_protocol *p, int error)
{
    (void)error;
    free(p);
}

static const struct weft_protocol_ops hello_ops = {
    .connection_made = hello_made,
    .connection_lost = hello_lost,
};

static struct weft_protocol *
hello_new(void *svc)
{
    struct hello *h = malloc(sizeof(*h));

    (void)svc;
    if (h != NULL)
        h->base.ops = &hello_ops;
    return h ? &h->base : NULL;
}

WEFT_PLUGIN_EXPORT const struct weft_plugin weft_plugin = {
    .abi = WEFT_PLUGIN_ABI,
    .size = sizeof(struct weft_plugin),
    .name = "hello",
    .version = "1.0",
    .summary = "says hello",
    .protocol_new = hello_new,
};
C
export PKG_CONFIG_PATH=$root$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$root
cflags=$(pkg-config --cflags weft) && libs=$(pkg-config --libs weft) ||
    fail "pkg-config weft fails"
# shellcheck disable=SC2086
cc -shared -fPIC -Wall -Werror -o "$tmp/hello/hello.so" "$tmp/hello/hello.c" $cflags $libs \
    2>"$tmp/cc.log" || { cat "$tmp/cc.log" >&2; fail "the out-of-tree plugin does not build"; }
cp "$tmp/hello/hello.so" "$root$plugindir/" 2>/dev/null || fail "cannot place hello.so"

# The installed weftd loads it, next to the installed echo.
export LD_LIBRARY_PATH=$root$libdir
"$root$prefix/sbin/weftd" -V | grep -q '^weftd ' || fail "the installed weftd does not run"
launch_installed() {
    printf '[weftd]\nworkers = 1\n[hello]\nprotocol = hello\nlisten = 127.0.0.1:%s\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%s\n' \
        "${ports[0]}" "${ports[1]}" >"$tmp/t.conf"
    launch "$root$prefix/sbin/weftd" -p "$root$plugindir" -c "$tmp/t.conf"
}
if start_weftd 2 launch_installed; then
    got=$(timeout 5 nc 127.0.0.1 "${ports[0]}" </dev/null 2>/dev/null)
    [ "$got" = "hello from out of tree" ] || fail "hello said \"$got\""
    echo_ok "${ports[1]}" || fail "installed echo"
    stop_weftd || fail "installed weftd exited $?"
fi

finish "ok: install layout, out-of-tree plugin loaded by the installed weftd"
