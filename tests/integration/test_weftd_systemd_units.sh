#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_weftd_systemd_units.sh: the unit files pass systemd-analyze verify and say what weftd
# needs, and weftd takes its sockets from systemd (socket activation, through
# systemd-socket-activate), refusing the ones that serve no service or two.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD WEFT_SOURCE_DIR
require_tool nc netcat-openbsd
keep_going=1

# 1. The units, made from the templates as the install does, verify cleanly: weftd.service
#    and an instance of weftd@.socket with its address in a drop-in, as weftd@.socket says.
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
else
    sed -e "s|@WEFTD_PATH@|$WEFTD|g" -e "s|@WEFTD_CONF@|$tmp/weftd.conf|g" \
        "$WEFT_SOURCE_DIR/systemd/weftd.service.in" >"$tmp/weftd.service"
    cp "$WEFT_SOURCE_DIR/systemd/weftd@.socket" "$tmp/weftd@.socket"
    printf '[echo]\nprotocol = echo\nlisten = 127.0.0.1:7007\n' >"$tmp/weftd.conf"
    # The template alone has no address: systemd refuses an instance without its drop-in.
    (cd "$tmp" && systemd-analyze verify --man=no ./weftd@echo.socket) >"$tmp/verify.bare" 2>&1
    grep -q "no Listen setting" "$tmp/verify.bare" ||
        fail "weftd@echo.socket without a drop-in is accepted"
    mkdir "$tmp/weftd@echo.socket.d"
    printf '[Socket]\nListenStream=127.0.0.1:7007\n' >"$tmp/weftd@echo.socket.d/listen.conf"
    # --man=no: the man pages are not installed where man looks while testing the build.
    if ! (cd "$tmp" && systemd-analyze verify --man=no ./weftd.service ./weftd@echo.socket) \
            >"$tmp/verify" 2>&1; then
        fail "systemd-analyze verify: $(cat "$tmp/verify")"
    elif [ -s "$tmp/verify" ]; then
        fail "systemd-analyze verify warns: $(cat "$tmp/verify")"
    fi
    # The check can fail: an unknown key is reported.
    printf '[Service]\nExecStart=/bin/true\nNoSuchKey=1\n' >"$tmp/bad.service"
    (cd "$tmp" && systemd-analyze verify --man=no ./bad.service) 2>&1 | grep -q NoSuchKey ||
        fail "systemd-analyze verify does not catch a bad unit"
    grep -q '^u weft ' "$WEFT_SOURCE_DIR/systemd/weftd.sysusers.conf" ||
        fail "sysusers snippet lacks the weft user"
fi
# What the unit runs: checks that bind nothing (weftd@.socket holds the ports), a reload
# without /bin/kill, capabilities for the master only, a log directory.
unit=$WEFT_SOURCE_DIR/systemd/weftd.service.in
grep -qx 'ExecStartPre=@WEFTD_PATH@ -T -c @WEFTD_CONF@' "$unit" || fail "ExecStartPre is not weftd -T"
grep -qx 'ExecReload=@WEFTD_PATH@ -c @WEFTD_CONF@ -r $MAINPID' "$unit" ||
    fail "ExecReload is not weftd -r \$MAINPID"
[ "$(grep -c '^ExecReload=' "$unit")" = 1 ] || fail "more than one ExecReload"
grep -q '^AmbientCapabilities=CAP_NET_BIND_SERVICE CAP_DAC_READ_SEARCH$' "$unit" &&
    grep -q '^CapabilityBoundingSet=CAP_NET_BIND_SERVICE CAP_DAC_READ_SEARCH$' "$unit" ||
    fail "the unit's capabilities are not CAP_NET_BIND_SERVICE CAP_DAC_READ_SEARCH"
grep -qx 'LogsDirectory=weft' "$unit" || fail "no LogsDirectory=weft"
grep -q '^FileDescriptorName=%i$' "$WEFT_SOURCE_DIR/systemd/weftd@.socket" &&
    ! grep -q '^ListenStream' "$WEFT_SOURCE_DIR/systemd/weftd@.socket" ||
    fail "weftd@.socket: not FileDescriptorName=%i without an address"
[ ! -e "$WEFT_SOURCE_DIR/systemd/weftd.socket" ] || fail "weftd.socket is back"

# 2. Socket activation: a socket named after a service replaces its listen line; an
#    unnamed one ("unknown", or systemd's default name, the socket unit's) is matched to a
#    listen address.
if ! command -v systemd-socket-activate >/dev/null; then
    echo "SKIP: systemd-socket-activate is not installed (Debian package systemd)"
else
    # The named socket replaces echo's listen line: only it and the address ones listen.
    launch_activated() {
        p_named=${ports[0]} p_unused=${ports[1]} p_addr=${ports[2]} p_dflt=${ports[3]}
        wait_ports=("$p_named")
        cat >"$tmp/act.conf" <<CONF
[weftd]
workers = 2
[echo]
protocol = echo
listen = 127.0.0.1:$p_unused
[other]
protocol = echo
listen = 127.0.0.1:$p_addr
[third]
protocol = echo
listen = 127.0.0.1:$p_dflt
CONF
        # systemd-socket-activate binds, then execs weftd (so weftd is the supervised
        # process) with a clean environment: -E passes on what weftd needs from ours, the
        # notify socket first (readiness comes from weftd's READY=1, as with systemd).
        launch systemd-socket-activate -l "127.0.0.1:$p_named" -l "127.0.0.1:$p_addr" \
            -l "127.0.0.1:$p_dflt" --fdname=echo:unknown:weftd.socket -E NOTIFY_SOCKET \
            -E ASAN_OPTIONS -E UBSAN_OPTIONS "$WEFTD" -c "$tmp/act.conf"
        # It starts weftd at the first connection: once it listens, make one (an echo,
        # which weftd answers once it is up). If it could not bind, it has exited:
        # start_weftd sees that, and "in use" means new ports.
        wait_log -p "$pid" "$tmp/weftd.err" "Listening on 127.0.0.1:$p_dflt" 1 10 &&
            { echo_ok "$p_named" || fail "no echo from the first connection"; }
        return 0
    }
    start_weftd 4 launch_activated || exit 1
    echo_ok "$p_named" || fail "the socket named echo is not served"
    echo_ok "$p_addr" || fail "the unnamed socket matched by address is not served"
    echo_ok "$p_dflt" || fail "the socket with systemd's default name is not matched by address"
    nc -z 127.0.0.1 "$p_unused" 2>/dev/null && fail "echo's own listen line was bound too"
    grep -q "socket activation: 3 sockets from systemd" "$tmp/weftd.err" ||
        fail "no socket activation log line"
    # A reload keeps systemd's sockets.
    reload_weftd || fail "the reload failed: $reload_status"
    echo_ok "$p_named" || fail "the named socket is not served after a reload"
    echo_ok "$p_addr" || fail "the matched socket is not served after a reload"
    stop_weftd || fail "weftd exited $? after SIGTERM"

    # 3. Sockets weftd refuses, naming the socket and its address: one named for no
    #    service, an unnamed one at no listen address, one named for a service whose
    #    address another service lists (both would accept on it).
    # refused NAME FDNAMES NEEDLE: systemd-socket-activate with one socket on port a (named
    # FDNAMES, none if empty) starts weftd on $tmp/NAME.conf (b stands for another port):
    # weftd exits 1 and says NEEDLE.
    refused() {
        local name=$1 fdnames=$2 needle=$3 a b
        pick_ports a b
        sed -e "s/@A@/$a/g" -e "s/@B@/$b/g" "$tmp/$name.conf.in" >"$tmp/$name.conf"
        launch -n "$name" systemd-socket-activate -l "127.0.0.1:$a" \
            ${fdnames:+--fdname=$fdnames} -E ASAN_OPTIONS -E UBSAN_OPTIONS \
            "$WEFTD" -c "$tmp/$name.conf"
        wait_log -p "$pid" "$tmp/$name.err" "Listening on 127.0.0.1:$a" 1 10 ||
            { fail "$name: systemd-socket-activate does not listen on $a"; return; }
        nc -z 127.0.0.1 "$a" 2>/dev/null || true      # starts weftd
        wait_event "$name" 'EXIT=*' "$lib_timeout" ||
            { fail "$name: weftd did not exit"; sv_forget "$name"; return; }
        [ "${sv_exit[$name]}" = 1 ] || fail "$name: weftd exited ${sv_exit[$name]}, not 1"
        needle=${needle//@A@/$a}
        grep -qF -- "$needle" "$tmp/$name.err" || fail "$name: stderr lacks: $needle"
        grep -q "not starting" "$tmp/$name.err" || fail "$name: no \"not starting\""
        sv_forget "$name"
    }
    printf '[echo]\nprotocol = echo\nlisten = 127.0.0.1:@B@\n' >"$tmp/noservice.conf.in"
    refused noservice nosuch "systemd passed a socket named \"nosuch\" (127.0.0.1:@A@), and no service is called so: FileDescriptorName= (the instance of weftd@nosuch.socket) must be a section name (here: [echo])"
    cp "$tmp/noservice.conf.in" "$tmp/unmatched.conf.in"
    refused unmatched "" "systemd passed a socket on 127.0.0.1:@A@ (unnamed) that no service listens on"
    cp "$tmp/noservice.conf.in" "$tmp/dflt.conf.in"
    refused dflt weftd.socket "systemd passed a socket on 127.0.0.1:@A@ (named \"weftd.socket\", systemd's default) that no service listens on"
    printf '[echo]\nprotocol = echo\nlisten = 127.0.0.1:@B@\n[other]\nprotocol = echo\nlisten = 127.0.0.1:@A@\n' \
        >"$tmp/shared.conf.in"
    refused shared echo "shared.conf:6: [other] listen: 127.0.0.1:@A@: systemd passed this socket named \"echo\" (FileDescriptorName=), for [echo]: two services cannot share one socket"
fi

finish "ok: systemd units verify; socket activation by name and by address; bad sockets refused"
