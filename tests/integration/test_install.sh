#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_install.sh: `cmake --install` into a staging root lays out what a sysadmin and a
# plugin author need; a plugin built out of tree with `pkg-config weft` loads in the
# installed weftd. Then `cmake --install --prefix P` (no DESTDIR): P's weft.pc, P's weftd
# with no LD_LIBRARY_PATH (its RUNPATH), its own config and plugins found under P, and an
# out-of-tree plugin served next to P's echo. (The Debian packages:
# tests/system/test_systemd_nspawn.sh.)
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

# The layout: GNUInstallDirs under the configured prefix. weft.pc is relocatable (its prefix
# is ${pcfiledir}/..): read in the staging root, it names the staging root's directories.
pc=$(ls "$root$prefix"/lib*/pkgconfig/weft.pc "$root$prefix"/lib/*/pkgconfig/weft.pc 2>/dev/null |
     head -1)
[ -n "$pc" ] || fail "no weft.pc under $prefix/lib*/pkgconfig"
export PKG_CONFIG_PATH=${pc%/weft.pc}
libdir=$(pkg-config --variable=libdir weft) && libdir=$(realpath "$libdir") &&
    libdir=${libdir#"$root"} || fail "pkg-config --variable=libdir weft fails"
plugindir=$(pkg-config --variable=plugindir weft) && plugindir=$(realpath -m "$plugindir") &&
    plugindir=${plugindir#"$root"} || fail "pkg-config --variable=plugindir weft fails"
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


# Installed with --prefix at install time, no DESTDIR: everything lands under $p and works
# from there, as a plugin author's private install does.
unset LD_LIBRARY_PATH WEFT_PLUGIN_DIR
p=$tmp/p
# A build whose destinations include absolute ones (the /usr prefix's /etc, a unit dir given
# absolute) would write those on this system: only the staged install above for it.
case "$prefix:$(cache WEFT_SYSTEMD_UNIT_DIR):$(cache WEFT_SYSUSERS_DIR)" in
    /usr:* | /usr/:* | *:/* )
        finish "ok: install layout, out-of-tree plugin loaded by the installed weftd" \
            "(not --prefix: this build installs to absolute directories)"
        exit ;;
esac
cmake --install "$WEFT_BINARY_DIR" --prefix "$p" >"$tmp/install-p.log" 2>&1 ||
    { cat "$tmp/install-p.log" >&2; fail "cmake --install --prefix failed"; exit 1; }
pcdir=$(dirname "$(ls "$p"/lib*/pkgconfig/weft.pc "$p"/lib/*/pkgconfig/weft.pc 2>/dev/null |
                   head -1)")
[ -f "$pcdir/weft.pc" ] || fail "no weft.pc under $p/lib*/pkgconfig"
grep -q "^prefix=\${pcfiledir}/" "$pcdir/weft.pc" || fail "weft.pc is not relocatable"
grep -E '^(libdir|includedir|plugindir)=/' "$pcdir/weft.pc" &&
    fail "weft.pc has an absolute directory under the prefix"
mkdir -p "$tmp/mine"
# shellcheck disable=SC2046
cc -shared -fPIC -Wall -Werror -o "$tmp/mine/hello.so" "$tmp/hello/hello.c" \
    $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs weft) 2>"$tmp/cc-p.log" ||
    { cat "$tmp/cc-p.log" >&2; fail "the out-of-tree plugin does not build against $p"; }
readelf -d "$p/sbin/weftd" | grep -q 'RUNPATH.*\$ORIGIN/' || fail "$p/sbin/weftd has no RUNPATH"
"$p/sbin/weftd" -V >"$tmp/v.out" 2>&1; rc=$?
[ "$rc" -eq 0 ] || fail "$p/sbin/weftd -V exited $rc: $(cat "$tmp/v.out")"
# Its config and plugins are the ones under $p: -h says so, and its own config checks.
"$p/sbin/weftd" -h >"$tmp/h.out" 2>&1
grep -qF "(default $p/etc/weft/weftd.conf)" "$tmp/h.out" || fail "-h: not $p's config"
grep -qF "then $(realpath "$p")/lib" "$tmp/h.out" || fail "-h: the built-in plugin dir is not $p's"
"$p/sbin/weftd" -T >"$tmp/T.out" 2>&1 || fail "$p/sbin/weftd -T: $(cat "$tmp/T.out")"
# The out-of-tree plugin from its own directory (plugin_dir), echo from $p's.
launch_prefix() {
    printf '[weftd]\nworkers = 1\nplugin_dir = %s\n[hello]\nprotocol = hello\nlisten = 127.0.0.1:%s\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%s\n' \
        "$tmp/mine" "${ports[0]}" "${ports[1]}" >"$tmp/p.conf"
    launch "$p/sbin/weftd" -c "$tmp/p.conf"
}
if start_weftd 2 launch_prefix; then
    got=$(timeout 5 nc 127.0.0.1 "${ports[0]}" </dev/null 2>/dev/null)
    [ "$got" = "hello from out of tree" ] || fail "hello (under $p) said \"$got\""
    echo_ok "${ports[1]}" || fail "echo under $p"
    stop_weftd || fail "$p/sbin/weftd exited $?"
fi

finish "ok: install layout, out-of-tree plugin loaded by the installed weftd, --prefix install"
