#!/bin/sh
# SPDX-License-Identifier: MIT
# stream.sh: the echo benchmark on the stream layer: bench/stream_echo (weft_start_server; read
# up to 64 KiB, write, drain) beside weftd's Protocol-layer echo, asyncio streams and uvloop
# streams (bench/stream_echo.py), in one run; then RSS per idle connection over IDLE_CONNS.
#
# Usage: sh bench/stream.sh [BUILD_DIR]     (configured with -DWEFT_BENCH=ON, Release)
# Environment: ROUNDS (3), DURATION (2), WARMUP (0.5), SIZE (1024), CONNS (100),
#              IDLE_CONNS (10000; 0 skips), SERVERS ("weftd stream asyncio uvloop"; "base" adds
#              BASE_DIR/stream_echo run on BASE_DIR's libweft.so: an earlier build, for a
#              before/after comparison in one run).
# Servers are pinned to CPU 0, the load generator (bench/echo_load) to CPU 1; each server's best
# round counts. Targets (issue 4): stream >= 0.8 x weftd, >= 1.2 x uvloop streams, less server
# CPU per request than uvloop; <= 6 KiB per idle stream connection.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build-bench}
BUILD=$(cd "$BUILD" && pwd) || exit 1
BIN=$BUILD/bench
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-2}
WARMUP=${WARMUP:-0.5}
SIZE=${SIZE:-1024}
CONNS=${CONNS:-100}
IDLE_CONNS=${IDLE_CONNS:-10000}
SERVERS=${SERVERS:-"weftd stream asyncio uvloop"}
PY=/usr/bin/python3

for prog in echo_load idle_conns stream_echo; do
    [ -x "$BIN/$prog" ] || { echo "stream.sh: $BIN/$prog missing (-DWEFT_BENCH=ON)" >&2; exit 1; }
done
. "$ROOT/bench/weftd-lib.sh"
STOP_TENTHS=-1              # at exit the servers are waited for without a limit
bench_tmp "${TMPDIR:-/tmp}/weft-sbench"
raise_nofile

start() {
    name=$1
    port=$(free_port)
    case $name in
    stream)  set -- "$BIN/stream_echo" -p "$port" ;;
    base)    set -- env LD_LIBRARY_PATH="${BASE_DIR:?BASE_DIR for the base server}" \
                 "$BASE_DIR/stream_echo" -p "$port" ;;
    asyncio) set -- "$PY" "$ROOT/bench/stream_echo.py" -p "$port" ;;
    uvloop)  set -- "$PY" "$ROOT/bench/stream_echo.py" -p "$port" --uvloop ;;
    weftd)
        printf '[weftd]\nworkers = 0\nplugin_dir = %s\nlog_level = warning\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%s\n' \
            "$BUILD/plugins" "$port" >"$TMP/weftd.conf"
        set -- "$BUILD/daemon/weftd" -c "$TMP/weftd.conf" ;;
    esac
    taskset -c 0 "$@" >"$TMP/$name.log" 2>&1 </dev/null &
    pid=$!
    STARTED="$STARTED $pid"
    echo_ready "$port" "$pid" ||
        { echo "stream.sh: $name did not start:"; tail -n 5 "$TMP/$name.log"; return 1; }
    eval "pid_$name=$pid port_$name=$port"
}

RUNNING=""
for s in $SERVERS; do start "$s" && RUNNING="$RUNNING $s"; done
echo "stream.sh: $SIZE B x $CONNS connections, best of $ROUNDS rounds of ${DURATION} s:$RUNNING"
: >"$TMP/results"
r=0
while [ $r -lt "$ROUNDS" ]; do
    r=$((r + 1))
    for s in $RUNNING; do
        eval "pid=\$pid_$s port=\$port_$s"
        line=$(taskset -c 1 "$BIN/echo_load" -p "$port" -c "$CONNS" -s "$SIZE" -d "$DURATION" \
               -w "$WARMUP" -P "$pid" 2>/dev/null) || { echo "  $s: load FAILED"; continue; }
        echo "  $s round $r: $line"
        echo "$s $line" >>"$TMP/results"
    done
done
for s in $RUNNING; do
    [ "$IDLE_CONNS" -gt 0 ] || break     # IDLE_CONNS=0: throughput only
    eval "pid=\$pid_$s port=\$port_$s"
    line=$(timeout 180 "$BIN/idle_conns" -p "$port" -P "$pid" -n "$IDLE_CONNS" 2>&1) ||
        { echo "  $s: idle FAILED: $line"; continue; }
    echo "  $s idle: $line"
    echo "idle $s $line" >>"$TMP/results"
done

# The table: best requests/s and lowest CPU per request per server; ratios to weftd and uvloop.
awk '
function val(key,   i, a) { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == key) return a[2] } return "" }
$1 == "idle" { for (i = 3; i <= NF; i++) { split($i, a, "="); if (a[1] ~ /kib_per_conn/) idle[$2] = a[2] } next }
{ rps = val("rps") + 0; cpu = val("server_us_per_req")
  if (rps > best[$1]) best[$1] = rps
  if (cpu != "" && (!($1 in low) || cpu + 0 < low[$1])) low[$1] = cpu + 0
  order[$1] = 1 }
END {
  printf "\n%-8s %12s %9s %10s %14s %12s\n", "server", "requests/s", "x weftd", "x uvloop", "srv us/req", "idle KiB/conn"
  n = split("weftd stream base asyncio uvloop", names, " ")
  for (i = 1; i <= n; i++) { s = names[i]; if (!(s in order)) continue
    printf "%-8s %12.0f %9s %10s %14s %12s\n", s, best[s],
      ("weftd" in best) ? sprintf("%.2f", best[s] / best["weftd"]) : "-",
      ("uvloop" in best) ? sprintf("%.2f", best[s] / best["uvloop"]) : "-",
      (s in low) ? sprintf("%.2f", low[s]) : "-", (s in idle) ? idle[s] : "-" }
}' "$TMP/results"
