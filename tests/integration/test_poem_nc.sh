#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_poem_nc.sh: the poem plugin through the real `nc`: greeting, whole poem, close; poem files
# and directories in turn; a listener that leaves mid-poem is handled quietly.
set -euo pipefail
. "$(dirname "$0")/poem_lib.sh"

# The built-in poem: nc greets, gets the whole poem, and the server closes (nc exits by itself).
start_poem builtin greeting_timeout=2s
out=$(printf '人生若只如初见，何事秋风悲画扇。\n' | timeout 10 nc 127.0.0.1 "$PORT_builtin") ||
    fail "nc did not finish: the connection was not closed"
grep -q '骊山语罢清宵半，泪雨霖铃终不怨。' <<<"$out" || fail "no poem: $out"
[ "$(tail -n 1 <<<"$out")" = '何如薄幸锦衣郎，比翼连枝当日愿。' ] || fail "the poem is cut: $out"
grep -q 'says "人生若只如初见，何事秋风悲画扇。"' "$tmp/builtin.err" || fail "greeting not logged"

# Silence: after greeting_timeout the poem comes anyway.
start_poem quiet greeting_timeout=300ms
t0=$(date +%s%N)
out=$(timeout 10 nc 127.0.0.1 "$PORT_quiet" </dev/null) || fail "quiet: nc did not finish"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q '比翼连枝当日愿' <<<"$out" || fail "quiet: no poem"
[ "$ms" -ge 250 ] && [ "$ms" -lt 5000 ] || fail "quiet: poem after $ms ms, expected ~300"

# A directory: its poems in turn (sorted by name), one per connection.
mkdir "$tmp/poems"
printf 'first poem\nline two\n' >"$tmp/poems/a.txt"
printf '第二首诗\n' >"$tmp/poems/b.txt"
printf 'hidden\n' >"$tmp/poems/.hidden"
start_poem dir poems="$tmp/poems" order=sequential greeting_timeout=0
for want in 'first poem' '第二首诗' 'first poem'; do
    out=$(timeout 10 nc 127.0.0.1 "$PORT_dir" </dev/null) || fail "dir: nc did not finish"
    grep -q "$want" <<<"$out" || fail "dir: expected \"$want\", got \"$out\""
done
# Random order picks from the same set.
start_poem rnd poems="$tmp/poems" order=random greeting_timeout=0
for _ in 1 2 3; do
    out=$(timeout 10 nc 127.0.0.1 "$PORT_rnd" </dev/null) || fail "rnd: nc did not finish"
    grep -q 'first poem\|第二首诗' <<<"$out" || fail "rnd: got \"$out\""
done
# A single file.
start_poem file poems="$tmp/poems/b.txt" greeting_timeout=0
[ "$(timeout 10 nc 127.0.0.1 "$PORT_file" </dev/null)" = '第二首诗' ] || fail "file: wrong poem"

# Bad config is refused with a reason.
printf '\xff\xfe bad\n' >"$tmp/bad.txt"
! "$POEM_SERVE" poems="$tmp/bad.txt" 2>"$tmp/bad.log" >/dev/null || fail "non-UTF-8 poem accepted"
grep -q "not UTF-8" "$tmp/bad.log" || fail "no reason for the bad poem: $(cat "$tmp/bad.log")"
! "$POEM_SERVE" order=shuffled 2>/dev/null >/dev/null || fail "bad order accepted"
! "$POEM_SERVE" colour=blue 2>/dev/null >/dev/null || fail "unknown key accepted"

# Leaving mid-poem: the slow server goes on serving the next listener, quietly.
start_poem slow delay=50ms chunk=8 greeting_timeout=0
timeout 0.3 nc 127.0.0.1 "$PORT_slow" </dev/null >/dev/null || true
out=$(timeout 20 nc 127.0.0.1 "$PORT_slow" </dev/null) || fail "slow: nc did not finish"
grep -q '比翼连枝当日愿' <<<"$out" || fail "slow: no poem after a listener left"

stop_all
echo "ok"
