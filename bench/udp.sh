#!/bin/sh
# SPDX-License-Identifier: MIT
# udp.sh: UDP echo: libweft's datagram endpoint (bench/udp_echo, and weftd's echo plugin on a
# udp: listen address when it is built) against uvloop's and asyncio's create_datagram_endpoint.
#
# Usage: sh bench/udp.sh [BUILD_DIR]     (BUILD_DIR configured with -DWEFT_BENCH=ON)
# Environment: ROUNDS (5), DURATION (2 s per round), INFLIGHT ("64": datagrams in flight, a list),
#              SIZE (64 bytes), SERVERS ("weft weft1 weftd uvloop asyncio"; weftd2 too on request).
#
# Every server is pinned to CPU 0, the load generator (bench/udp_load: N datagrams in flight,
# answers counted over DURATION) to CPU 1. Rounds alternate the servers within the same run;
# each server's best round counts (other load only ever slows a round down) and results are
# printed as ratios to uvloop measured in that same run, with the server's CPU time per answer.
# weft1 is udp_echo reading one datagram per readiness event (recv_batch 1, the recvmmsg batch's
# control); weftd is the daemon with one worker, weftd2 with two reading the same socket (both
# on CPU 0: what sharing one socket costs, not what a second core gives).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build-bench}
[ -d "$BUILD" ] || { echo "udp.sh: no build directory $BUILD" >&2; exit 1; }
BUILD=$(cd "$BUILD" && pwd)
BIN=$BUILD/bench
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-2}
INFLIGHT=${INFLIGHT:-64}
SIZE=${SIZE:-64}
SERVERS=${SERVERS:-"weft weft1 weftd uvloop asyncio"}
PY=/usr/bin/python3         # Debian's: the one with python3-uvloop
for prog in udp_load udp_echo; do
    [ -x "$BIN/$prog" ] || { echo "udp.sh: $BIN/$prog missing: build with -DWEFT_BENCH=ON" >&2; exit 1; }
done
. "$ROOT/bench/weftd-lib.sh"
STOP_TENTHS=30
bench_tmp "${TMPDIR:-/tmp}/weft-bench-udp"
RESULTS=$TMP/results
: >"$RESULTS"

# start NAME PORT: the server pinned to CPU 0; sets spid (0: skipped).
start() {
    spid=0
    _port=$2
    case $1 in
    weft)    set -- "$BIN/udp_echo" 127.0.0.1 "$2" ;;
    weft1)   set -- "$BIN/udp_echo" -b 1 127.0.0.1 "$2" ;;
    asyncio) set -- "$PY" "$ROOT/bench/udp_echo.py" 127.0.0.1 "$2" ;;
    uvloop)
        "$PY" -c 'import uvloop' 2>/dev/null || {
            echo "udp.sh: uvloop: $PY has no uvloop (python3-uvloop): skipped"; return 1; }
        set -- "$PY" "$ROOT/bench/udp_echo.py" --uvloop 127.0.0.1 "$2" ;;
    weftd | weftd2)
        _workers=1
        [ "$1" = weftd ] || _workers=2
        [ -x "$BUILD/daemon/weftd" ] && [ -f "$BUILD/plugins/echo.so" ] || {
            echo "udp.sh: weftd: weftd or plugins/echo.so not built: skipped"; return 1; }
        cat >"$TMP/weftd.conf" <<CONF
[weftd]
plugin_dir = $BUILD/plugins
log_level = warning
workers = $_workers
[echo]
protocol = echo
listen = udp:127.0.0.1:$2
CONF
        set -- "$BUILD/daemon/weftd" -c "$TMP/weftd.conf" ;;
    esac
    taskset -c 0 "$@" 2>"$TMP/$name.err" &
    spid=$!
    STARTED="$STARTED $spid"
    _i=0
    until taskset -c 1 "$BIN/udp_load" -p "$_port" -n 1 -d 0.1 -w 0 -r 10 2>/dev/null | grep -q 'answers=[1-9]'; do
        _i=$((_i + 1))
        if [ $_i -ge 50 ] || ! kill -0 "$spid" 2>/dev/null; then
            echo "udp.sh: $name did not answer:"; cat "$TMP/$name.err"; return 1
        fi
        sleep 0.1
    done
}

# ticks PID: CPU clock ticks of PID and its children so far.
ticks() {
    tree_ticks "$1"
}

hz=$(getconf CLK_TCK)
skip=""
for n in $INFLIGHT; do
    r=1
    while [ $r -le "$ROUNDS" ]; do
        for name in $SERVERS; do
            case " $skip " in *" $name "*) continue ;; esac
            port=$(free_port)
            if ! start "$name" "$port"; then
                skip="$skip $name"
                continue
            fi
            t0=$(ticks "$spid")
            line=$(taskset -c 1 "$BIN/udp_load" -p "$port" -n "$n" -s "$SIZE" -d "$DURATION" -w 0.3)
            t1=$(ticks "$spid")
            stop_all
            ans=$(echo "$line" | sed 's/.*answers=\([0-9]*\).*/\1/')
            rate=$(echo "$line" | sed 's/.*rate=\([0-9]*\).*/\1/')
            lost=$(echo "$line" | sed 's/.*lost=\([0-9]*\).*/\1/')
            echo "round $r n=$n $name: $line cpu_ticks=$((t1 - t0))"
            echo "$n $name $rate $ans $((t1 - t0)) $lost" >>"$RESULTS"
        done
        r=$((r + 1))
    done
done

echo
echo "UDP echo, $SIZE-byte datagrams, best of $ROUNDS rounds of ${DURATION}s (server CPU 0, load CPU 1)"
printf '%-9s %-8s %10s %9s %12s %8s\n' inflight server answers/s vs_uvloop "cpu us/ans" lost
for n in $INFLIGHT; do
    awk -v n="$n" -v hz="$hz" -v dur="$DURATION" '
        $1 == n { if (!($2 in best) || $3 > best[$2]) { best[$2] = $3; cpu[$2] = $5; ans[$2] = $4; lost[$2] = $6 }
                  if (!($2 in seen)) { order[++k] = $2; seen[$2] = 1 } }
        END { for (i = 1; i <= k; i++) { s = order[i]
                  ratio = ("uvloop" in best && best["uvloop"] > 0) ? sprintf("%.2f", best[s] / best["uvloop"]) : "-"
                  us = ans[s] > 0 ? sprintf("%.2f", cpu[s] * 1e6 / hz / ans[s]) : "-"
                  printf "%-9s %-8s %10d %9s %12s %8d\n", n, s, best[s], ratio, us, lost[s] } }' "$RESULTS"
done
