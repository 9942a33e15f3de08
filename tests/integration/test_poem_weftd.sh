#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_poem_weftd.sh: weftd serves the poem plugin (stream layer): nc gets the whole poem, a slow
# recitation stays within bounds, and SIGTERM stops weftd while a listener is mid-poem.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_tool nc netcat-openbsd

write_conf() {
    cat >"$tmp/weftd.conf" <<EOF
$(weftd_section "log_level = info")

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

launch_poem() {
    write_conf "${ports[0]}" "${ports[1]}"
    launch "$WEFTD" -c "$tmp/weftd.conf"
}
start_weftd 2 launch_poem
port=${ports[0]}
slow=${ports[1]}

# The whole poem arrives and weftd closes the connection (nc exits by itself).
out=$(printf '人生若只如初见，何事秋风悲画扇。\n' | timeout 10 nc 127.0.0.1 "$port") ||
    fail "nc did not finish"
[ "$(tail -n 1 <<<"$out")" = '何如薄幸锦衣郎，比翼连枝当日愿。' ] || fail "poem cut: $out"
grep -q '人生若只如初见' "$tmp/weftd.err" || fail "the greeting was not logged"

# Slowly: 243 bytes in chunks of 30 every 50 ms, 8 pauses: about 0.4 s.
t0=$(date +%s%N)
out=$(timeout 20 nc 127.0.0.1 "$slow" </dev/null) || fail "slow: nc did not finish"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q '比翼连枝当日愿' <<<"$out" || fail "slow: no poem"
[ "$ms" -ge 300 ] && [ "$ms" -lt 5000 ] || fail "slow: recited in $ms ms, expected ~400"

# SIGTERM with a listener mid-poem: weftd stops cleanly and in time.
timeout 10 nc 127.0.0.1 "$slow" </dev/null >"$tmp/mid" &
ncpid=$!
started "$ncpid"
# Mid-poem: its first line has arrived (the whole poem takes ~0.4 s more).
wait_log "$tmp/mid" '人生若只如初见' 1 10 || fail "no first line of the slow poem"
status=0
stop_weftd || status=$?
stop_pid "$ncpid" || true
[ "$status" -eq 0 ] || fail "weftd exited with $status after SIGTERM"
! grep -q "Sanitizer\|runtime error" "$tmp/weftd.err" || fail "sanitizer report"
echo "ok: weftd recited the poem to nc, slowly too, and stopped with status 0"
