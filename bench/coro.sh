#!/bin/sh
# SPDX-License-Identifier: MIT
# coro.sh: coroutine benchmarks: switch cost (ns, instructions), pooled task life, idle task RSS.
# Builds a Release tree in $BUILD (default build-co-bench), then prints the figures.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-co-bench}
PY=${PYTHON:-/usr/bin/python3}

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DWEFT_BENCH=ON -DWEFT_TESTS=OFF >/dev/null
cmake --build "$BUILD" --target coro_switch coro_task coro_idle fd_wait -j2 >/dev/null
B=$BUILD/bench

echo "== stack switch (targets: <= 15 ns, <= 30 instructions)"
"$B/coro_switch" 10000000
if command -v valgrind >/dev/null 2>&1; then
    # Callgrind counts instructions: stable on a noisy machine. Self cost of the
    # switch function over its calls = instructions per switch.
    out=$(mktemp)
    n=100000
    valgrind --tool=callgrind --callgrind-out-file="$out" "$B/coro_switch" $n >/dev/null 2>&1
    # The stack swap splits the function in two for callgrind (name and name'2): sum them.
    callgrind_annotate --threshold=100 "$out" 2>/dev/null |
        awk -v calls=$((2 * n + 1)) '/weft__coro_switch/ { gsub(",", "", $1); ir += $1 }
            END { printf "weft switch: %.1f instructions per switch (callgrind, %d switches)\n",
                  ir / calls, calls }'
    rm -f "$out"
else
    echo "valgrind not installed: no instruction count"
fi

echo "== task life with a pooled stack (target: <= 300 ns)"
"$B/coro_task" 1000000
[ -x "$PY" ] && "$PY" "$ROOT/bench/coro/peer_asyncio.py" task 200000

echo "== idle sleeping tasks (target: <= 8 KiB RSS per task)"
"$B/coro_idle" 10000
"$B/coro_idle" 30000
[ -x "$PY" ] && "$PY" "$ROOT/bench/coro/peer_asyncio.py" idle 10000
echo "== a wake-up on a ready fd: raw libevent event, weft_add_reader, weft_wait_readable"
echo "   (bar: weft_wait_readable costs no more than one loop iteration over the raw event)"
taskset -c 1 "$B/fd_wait" 200000 2>/dev/null || "$B/fd_wait" 200000
if command -v strace >/dev/null 2>&1; then
    # System calls per wake-up (10,000 wake-ups each): what the time difference is made of.
    for v in raw reader wait; do
        strace -f -c -o "$BUILD/fd_wait.$v.strace" "$B/fd_wait" 10000 $v >/dev/null
        awk -v v=$v '$NF ~ /^(epoll_wait|epoll_ctl|read|write|newfstatat|poll)$/ && $4 > 1000 {
                s = s sprintf(" %s %.2f", $NF, $4 / 10000) }
            END { printf "%-7s syscalls per wake-up:%s\n", v, s }' "$BUILD/fd_wait.$v.strace"
    done
fi
exit 0
