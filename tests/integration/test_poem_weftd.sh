#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_poem_weftd.sh: weftd serves the poem plugin (stream layer): nc gets the whole poem, a slow
# recitation stays within bounds, and SIGTERM stops weftd while a listener is mid-poem.
set -euo pipefail

: "${WEFTD:?WEFTD must name the weftd binary}"
command -v nc >/dev/null || { echo "nc (netcat-openbsd) is not installed" >&2; exit 1; }

tmp=$(mktemp -d /tmp/weft-poemd.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    [ -f "$tmp/stderr" ] && { echo "---- weftd stderr ----" >&2; head -c 4000 "$tmp/stderr" >&2; }
    exit 1
}

pick_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 40000))
        nc -z 127.0.0.1 "$p" 2>/dev/null || { echo "$p"; return; }
    done
}

write_conf() {
    cat >"$tmp/weftd.conf" <<EOF
[weftd]
log_level = info
${WEFT_PLUGIN_DIR:+plugin_dir = $WEFT_PLUGIN_DIR}

[poem]
protocol = poem
listen = 127.0.0.1:$1
greeting_timeout = 1s

[slowpoem]
protocol = poem
listen = 127.0.0.1:$2
greeting_timeout = 0
delay = 50ms
chunk = 30
EOF
}

write_conf 1 2
"$WEFTD" -t -c "$tmp/weftd.conf" >"$tmp/check" 2>&1 ||
    fail "weftd -t failed: $(cat "$tmp/check")"

for try in 1 2 3 4 5; do
    port=$(pick_port)
    slow=$(pick_port)
    write_conf "$port" "$slow"
    "$WEFTD" -c "$tmp/weftd.conf" 2>"$tmp/stderr" &
    pid=$!
    for _ in $(seq 200); do
        nc -z 127.0.0.1 "$port" 2>/dev/null && nc -z 127.0.0.1 "$slow" 2>/dev/null && break 2
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
    grep -q "in use" "$tmp/stderr" || fail "weftd did not start"
done
[ -n "$pid" ] || fail "no free ports after 5 tries"

# The whole poem arrives and weftd closes the connection (nc exits by itself).
out=$(printf '人生若只如初见，何事秋风悲画扇。\n' | timeout 10 nc 127.0.0.1 "$port") ||
    fail "nc did not finish"
[ "$(tail -n 1 <<<"$out")" = '何如薄幸锦衣郎，比翼连枝当日愿。' ] || fail "poem cut: $out"
grep -q '人生若只如初见' "$tmp/stderr" || fail "the greeting was not logged"

# Slowly: 243 bytes in chunks of 30 every 50 ms, 8 pauses: about 0.4 s.
t0=$(date +%s%N)
out=$(timeout 20 nc 127.0.0.1 "$slow" </dev/null) || fail "slow: nc did not finish"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q '比翼连枝当日愿' <<<"$out" || fail "slow: no poem"
[ "$ms" -ge 300 ] && [ "$ms" -lt 5000 ] || fail "slow: recited in $ms ms, expected ~400"

# SIGTERM with a listener mid-poem: weftd stops cleanly and in time.
timeout 10 nc 127.0.0.1 "$slow" </dev/null >"$tmp/mid" &
ncpid=$!
sleep 0.15
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
wait "$ncpid" || true
[ "$status" -eq 0 ] || fail "weftd exited with $status after SIGTERM"
! grep -q "Sanitizer\|runtime error" "$tmp/stderr" || fail "sanitizer report"
echo "ok: weftd recited the poem to nc, slowly too, and stopped with status 0"
