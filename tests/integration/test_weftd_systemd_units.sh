#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_weftd_systemd_units.sh: the unit files pass systemd-analyze verify, and weftd takes
# its sockets from systemd (socket activation, through systemd-socket-activate).
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD WEFT_SOURCE_DIR
require_tool nc netcat-openbsd
keep_going=1

# 1. The units, made from the templates as the install does, verify cleanly.
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is not installed (Debian package systemd)"
else
    sed -e "s|@WEFTD_PATH@|$WEFTD|g" -e "s|@WEFTD_CONF@|$tmp/weftd.conf|g" \
        "$WEFT_SOURCE_DIR/systemd/weftd.service.in" >"$tmp/weftd.service"
    cp "$WEFT_SOURCE_DIR/systemd/weftd.socket" "$tmp/weftd.socket"
    printf '[echo]\nprotocol = echo\nlisten = 127.0.0.1:7007\n' >"$tmp/weftd.conf"
    # --man=no: the man pages are not installed where man looks while testing the build.
    if ! (cd "$tmp" && systemd-analyze verify --man=no ./weftd.service ./weftd.socket) \
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

# 2. Socket activation: a socket named after a service replaces its listen line; an
#    unnamed one is matched to a listen address.
if ! command -v systemd-socket-activate >/dev/null; then
    echo "SKIP: systemd-socket-activate is not installed (Debian package systemd)"
else
    # The named socket replaces echo's listen line: only it and the address one listen.
    launch_activated() {
        p_named=${ports[0]} p_unused=${ports[1]} p_addr=${ports[2]}
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
CONF
        # systemd-socket-activate binds, then execs weftd (so weftd is the supervised
        # process) with a clean environment: -E passes on what weftd needs from ours, the
        # notify socket first (readiness comes from weftd's READY=1, as with systemd).
        launch systemd-socket-activate -l "127.0.0.1:$p_named" -l "127.0.0.1:$p_addr" \
            --fdname=echo:unknown -E NOTIFY_SOCKET -E ASAN_OPTIONS -E UBSAN_OPTIONS \
            "$WEFTD" -c "$tmp/act.conf"
        # It starts weftd at the first connection: once it listens, make one (an echo,
        # which weftd answers once it is up). If it could not bind, it has exited:
        # start_weftd sees that, and "in use" means new ports.
        wait_log -p "$pid" "$tmp/weftd.err" "Listening on 127.0.0.1:$p_addr" 1 10 &&
            { echo_ok "$p_named" || fail "no echo from the first connection"; }
        return 0
    }
    start_weftd 3 launch_activated || exit 1
    echo_ok "$p_named" || fail "the socket named echo is not served"
    echo_ok "$p_addr" || fail "the unnamed socket matched by address is not served"
    nc -z 127.0.0.1 "$p_unused" 2>/dev/null && fail "echo's own listen line was bound too"
    grep -q "socket activation: 2 sockets from systemd" "$tmp/weftd.err" ||
        fail "no socket activation log line"
    # A reload keeps systemd's sockets.
    reload_weftd || fail "the reload failed: $reload_status"
    echo_ok "$p_named" || fail "the named socket is not served after a reload"
    echo_ok "$p_addr" || fail "the matched socket is not served after a reload"
    stop_weftd || fail "weftd exited $? after SIGTERM"
fi

finish "ok: systemd units verify; socket activation by name and by address"
