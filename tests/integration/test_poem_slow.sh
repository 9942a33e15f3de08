#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_poem_slow.sh: delay and chunk recite slowly, within generous time bounds.
set -euo pipefail
. "$(dirname "$0")/poem_lib.sh"

# 40 ASCII bytes in chunks of 8 every 100 ms: 5 chunks, 4 pauses, about 0.4 s.
printf '0123456789abcdefghijklmnopqrstuvwxyzABC\n' >"$tmp/poem.txt"
start_poem slow poems="$tmp/poem.txt" delay=100ms chunk=8 greeting_timeout=0
t0=$(date +%s%N)
out=$(timeout 20 nc 127.0.0.1 "$PORT_slow" </dev/null) || fail "nc did not finish"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$out" = '0123456789abcdefghijklmnopqrstuvwxyzABC' ] || fail "wrong poem: $out"
[ "$ms" -ge 350 ] || fail "recited in $ms ms: too fast for 4 pauses of 100 ms"
[ "$ms" -lt 3000 ] || fail "recited in $ms ms: far too slow"

# Chunks arrive over time: after 150 ms only part of the poem is there.
part=$(timeout 0.15 nc 127.0.0.1 "$PORT_slow" </dev/null || true)
[ "${#part}" -ge 8 ] && [ "${#part}" -lt 40 ] || fail "after 150 ms got ${#part} bytes"

# UTF-8 is never cut inside a character, whatever the chunk.
start_poem utf greeting_timeout=0 delay=10ms chunk=2
out=$(timeout 20 nc 127.0.0.1 "$PORT_utf" </dev/null) || fail "utf: nc did not finish"
grep -q '骊山语罢清宵半，泪雨霖铃终不怨。' <<<"$out" || fail "utf: poem garbled"

stop_all
echo "ok"
