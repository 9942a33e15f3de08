#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_echo_nc.sh: the real `nc -N` sends a 1 MiB file through weftd's echo and gets it back.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_tool nc netcat-openbsd

launch_echo() {
    printf '[weftd]\nlog_level = info\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%s\n' \
        "${ports[0]}" >"$tmp/weftd.conf"
    launch "$WEFTD" -c "$tmp/weftd.conf"
}

head -c $((1024 * 1024)) /dev/urandom >"$tmp/in"
start_weftd 1 launch_echo
port=${ports[0]}

# -N: shut down the write side at the end of the file; echo sends the rest back, then closes.
timeout 60 nc -N 127.0.0.1 "$port" <"$tmp/in" >"$tmp/out" || fail "nc failed ($?)"
cmp "$tmp/in" "$tmp/out" || fail "echoed file differs ($(stat -c %s "$tmp/out") bytes back)"

# Line by line, as a person types.
printf 'one\ntwo\nthree\n' | timeout 20 nc -N 127.0.0.1 "$port" >"$tmp/lines" ||
    fail "nc failed on lines"
[ "$(cat "$tmp/lines")" = "$(printf 'one\ntwo\nthree')" ] || fail "lines not echoed"

stop_weftd || fail "weftd exited with $? after SIGTERM"
grep -q "stopping (SIGTERM)" "$tmp/weftd.err" || fail "no stopping line"
echo "ok: nc -N echoed 1 MiB identically; weftd stopped with status 0"
