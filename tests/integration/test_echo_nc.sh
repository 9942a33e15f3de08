#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_echo_nc.sh: the real `nc -N` sends a 1 MiB file through weftd's echo and gets it back.
set -euo pipefail

: "${WEFTD:?WEFTD must name the weftd binary}"
command -v nc >/dev/null || { echo "nc (netcat-openbsd) is not installed" >&2; exit 1; }

tmp=$(mktemp -d /tmp/weft-nc.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    [ -f "$tmp/stderr" ] && { echo "---- weftd stderr ----" >&2; cat "$tmp/stderr" >&2; }
    exit 1
}

# A port nobody listens on right now; weftd is retried on another if one is taken meanwhile.
pick_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        nc -z 127.0.0.1 "$p" 2>/dev/null || { echo "$p"; return; }
    done
}

start_weftd() {
    local try
    for try in 1 2 3 4 5; do
        port=$(pick_port)
        printf '[weftd]\nlog_level = info\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%s\n' \
            "$port" >"$tmp/weftd.conf"
        "$WEFTD" -c "$tmp/weftd.conf" 2>"$tmp/stderr" &
        pid=$!
        for _ in $(seq 200); do
            nc -z 127.0.0.1 "$port" 2>/dev/null && return 0
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        wait "$pid" 2>/dev/null || true
        pid=
        grep -q "in use" "$tmp/stderr" || fail "weftd did not start"
    done
    fail "no free port after 5 tries"
}

head -c $((1024 * 1024)) /dev/urandom >"$tmp/in"
start_weftd

# -N: shut down the write side at the end of the file; echo sends the rest back, then closes.
timeout 60 nc -N 127.0.0.1 "$port" <"$tmp/in" >"$tmp/out" || fail "nc failed ($?)"
cmp "$tmp/in" "$tmp/out" || fail "echoed file differs ($(stat -c %s "$tmp/out") bytes back)"

# Line by line, as a person types.
printf 'one\ntwo\nthree\n' | timeout 20 nc -N 127.0.0.1 "$port" >"$tmp/lines" ||
    fail "nc failed on lines"
[ "$(cat "$tmp/lines")" = "$(printf 'one\ntwo\nthree')" ] || fail "lines not echoed"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" -eq 0 ] || fail "weftd exited with $status after SIGTERM"
grep -q "stopping (SIGTERM)" "$tmp/stderr" || fail "no stopping line"
echo "ok: nc -N echoed 1 MiB identically; weftd stopped with status 0"
