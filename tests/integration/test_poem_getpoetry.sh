#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_poem_getpoetry.sh: examples/get_poetry fetches from three slow poem servers at once:
# every poem arrives whole, and the total time is about the slowest, not the sum.
set -euo pipefail
. "$(dirname "$0")/poem_lib.sh"
GET=$WEFT_BINARY_DIR/examples/example_get_poetry
[ -x "$GET" ] || fail "$GET is not built"

# The built-in poem is 243 bytes: chunks of 30 every 40/80/120 ms take ~0.3/0.6/0.95 s.
start_poem a delay=40ms chunk=30 greeting_timeout=1s
start_poem b delay=80ms chunk=30 greeting_timeout=1s
start_poem c delay=120ms chunk=30 greeting_timeout=1s
out=$(timeout 30 "$GET" "$PORT_a" "127.0.0.1:$PORT_b" "localhost:$PORT_c") ||
    fail "get_poetry failed: $out"
echo "$out"
for p in "$PORT_a" "$PORT_b" "$PORT_c"; do
    grep -q "got 243 bytes of poetry from .*:$p in" <<<"$out" || fail "no whole poem from $p"
done
[ "$(grep -c '何如薄幸锦衣郎，比翼连枝当日愿。' <<<"$out")" -eq 3 ] || fail "poems missing"
total=$(sed -n 's/^Got 3 poems in \([0-9.]*\) seconds$/\1/p' <<<"$out")
[ -n "$total" ] || fail "no total"
# The sum would be ~1.85 s; concurrently it is ~0.95 s.
awk -v t="$total" 'BEGIN { exit !(t >= 0.7 && t < 1.6) }' || fail "total $total s: not concurrent"
# Each server logged the tutorial client's greeting.
for n in a b c; do
    grep -q 'says "人生若只如初见' "$tmp/$n.err" || fail "server $n: no greeting logged"
done
stop_all
echo "ok"
