#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh: `make bench`: weftd's echo beside epoll, libevent, asyncio and uvloop echo servers.
#
# Usage: sh bench/run.sh [BUILD_DIR]      (BUILD_DIR configured with -DWEFT_BENCH=ON)
# Environment: ROUNDS (3), DURATION (2 s measured per round), WARMUP (0.5 s), IDLE_CONNS (10000),
#              SERVERS ("epoll libevent asyncio uvloop weft"), OUT (bench/out),
#              SCENARIOS ("1024:100 65536:10": message bytes:connections).
#
# Every server is pinned to CPU 0 and the load generator to CPU 1. Each scenario runs against
# every server in turn, ROUNDS times over, within the same invocation; each server's best round
# counts (other load on the machine only ever slows a round down), and results are printed as
# ratios to the plain epoll server measured in that same invocation.
# The table goes to OUT/echo.txt, the bar chart to OUT/echo.png.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build-bench}
[ -d "$BUILD" ] || { echo "bench: no build directory $BUILD" >&2; exit 1; }
BUILD=$(cd "$BUILD" && pwd)
BIN=$BUILD/bench
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-2}
WARMUP=${WARMUP:-0.5}
IDLE_CONNS=${IDLE_CONNS:-10000}
SERVERS=${SERVERS:-"epoll libevent asyncio uvloop weft"}
OUT=${OUT:-$ROOT/bench/out}
PY=/usr/bin/python3         # Debian's: the one with python3-uvloop
SCENARIOS=${SCENARIOS:-"1024:100 65536:10"}   # message bytes : connections, each

for prog in echo_load echo_epoll echo_libevent idle_conns; do
    [ -x "$BIN/$prog" ] || { echo "bench: $BIN/$prog missing: build with -DWEFT_BENCH=ON" >&2; exit 1; }
done
mkdir -p "$OUT"
. "$ROOT/bench/weftd-lib.sh"
STOP_TENTHS=30              # stop_all: the servers get 3 s to exit on SIGTERM
bench_tmp "${TMPDIR:-/tmp}/weft-bench"
RESULTS=$TMP/results        # lines: kind server key=value...
: >"$RESULTS"
rm -f "$OUT/echo.dat" "$OUT/idle.dat" "$OUT/echo.png"

# Idle servers may hold many descriptors; the programs raise their own soft limit, weftd may not.
raise_nofile
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ] && [ "$nofile" -lt $((IDLE_CONNS + 200)) ]; then
    IDLE_CONNS=$((nofile - 200))
    echo "bench: the descriptor limit is $nofile: $IDLE_CONNS idle connections, not more"
fi

# start NAME: launches the server pinned to CPU 0; sets pid_NAME and port_NAME, or reports.
start() {
    name=$1
    port=$(free_port)
    log=$TMP/$name.log
    case $name in
    epoll)    set -- "$BIN/echo_epoll" 127.0.0.1 "$port" ;;
    libevent) set -- "$BIN/echo_libevent" 127.0.0.1 "$port" ;;
    asyncio)  set -- "$PY" "$ROOT/bench/echo_asyncio.py" 127.0.0.1 "$port" ;;
    uvloop)
        if ! "$PY" -c 'import uvloop' 2>/dev/null; then
            echo "bench: uvloop: $PY has no uvloop (Debian package python3-uvloop): skipped"
            return 1
        fi
        set -- "$PY" "$ROOT/bench/echo_asyncio.py" --uvloop 127.0.0.1 "$port" ;;
    weft)
        if [ ! -x "$BUILD/daemon/weftd" ]; then
            echo "bench: weft: $BUILD/daemon/weftd is not built: skipped"
            return 1
        fi
        if [ ! -f "$BUILD/plugins/echo.so" ]; then
            echo "bench: weft: $BUILD/plugins/echo.so (the echo plugin) is not built: skipped"
            return 1
        fi
        cat >"$TMP/weftd.conf" <<EOF
[weftd]
plugin_dir = $BUILD/plugins
log_level = warning
workers = 1
max_connections = $((IDLE_CONNS + 1000))

[echo]
protocol = echo
listen = 127.0.0.1:$port
EOF
        set -- "$BUILD/daemon/weftd" -c "$TMP/weftd.conf" ;;
    *) echo "bench: unknown server $name" >&2; return 1 ;;
    esac
    taskset -c 0 "$@" >"$log" 2>&1 </dev/null &
    pid=$!
    STARTED="$STARTED $pid"
    # Ready when a short echo run through it succeeds; give up after ~5 s or if it exits.
    echo_ready "$port" "$pid"
    case $? in
    1)
        echo "bench: $name: the server exited at start-up; its output:"
        sed 's/^/    /' "$log" | tail -n 20
        return 1 ;;
    2)
        echo "bench: $name: not echoing on 127.0.0.1:$port after 5 s: skipped; its output:"
        sed 's/^/    /' "$log" | tail -n 20
        kill "$pid" 2>/dev/null
        return 1 ;;
    esac
    eval "pid_$name=$pid port_$name=$port"
    return 0
}

# serving NAME PID: the process to measure. weftd serves from a worker process (one here:
# workers = 1), which its master replaces if it dies, so it is looked up before each run.
serving() {
    if [ "$1" = weft ]; then
        kids=$(pgrep -P "$2" 2>/dev/null)
        if [ "$(echo $kids | wc -w)" -eq 1 ]; then
            echo "$kids"
            return
        fi
    fi
    echo "$2"
}

# gone NAME PID: a server died under load: say how, show its output, run nothing more on it.
gone() {
    wait "$2" 2>/dev/null
    st=$?
    if [ $st -gt 128 ]; then
        echo "    the $1 server died of signal $((st - 128)) ($(kill -l $((st - 128)) 2>/dev/null));" \
             "its last output:"
    else
        echo "    the $1 server exited with status $st; its last output:"
    fi
    sed 's/^/        /' "$TMP/$1.log" | tail -n 20
    RUNNING=$(echo " $RUNNING " | sed "s/ $1 / /")
}

RUNNING=""
for s in $SERVERS; do
    start "$s" && RUNNING="$RUNNING $s"
done
case " $RUNNING " in
*" epoll "*) ;;
*) echo "bench: the epoll baseline did not start; no ratios without it" >&2; exit 1 ;;
esac
echo "bench: servers on CPU 0:$RUNNING; load generator on CPU 1;" \
     "best of $ROUNDS rounds of ${WARMUP} s warm-up + ${DURATION} s"

limit=$((${DURATION%.*} + ${WARMUP%.*} + 30))
for sc in $SCENARIOS; do
    size=${sc%%:*}
    conns=${sc##*:}
    round=0
    while [ $round -lt "$ROUNDS" ]; do
    round=$((round + 1))
    for s in $RUNNING; do
        eval "pid=\$pid_$s port=\$port_$s"
        mpid=$(serving "$s" "$pid")
        printf 'bench: %-8s %6d B x %3d conns, round %d ... ' "$s" "$size" "$conns" "$round"
        if line=$(timeout "$limit" taskset -c 1 "$BIN/echo_load" -p "$port" -c "$conns" \
                  -s "$size" -d "$DURATION" -w "$WARMUP" -P "$mpid" 2>"$TMP/load.err"); then
            echo "$line"
            echo "load $s $size $conns $line" >>"$RESULTS"
        else
            echo "FAILED"
            sed 's/^/    /' "$TMP/load.err"
            if ! kill -0 "$pid" 2>/dev/null; then
                gone "$s" "$pid"
            elif [ -s "$TMP/$s.log" ]; then
                echo "    the $s server's last output:"
                tail -n 5 "$TMP/$s.log" | sed 's/^/        /'
            fi
        fi
    done
    done
done

for s in $RUNNING; do
    eval "pid=\$pid_$s port=\$port_$s"
    mpid=$(serving "$s" "$pid")
    printf 'bench: %-8s %d idle connections ... ' "$s" "$IDLE_CONNS"
    if line=$(timeout 120 "$BIN/idle_conns" -p "$port" -P "$mpid" -n "$IDLE_CONNS" \
              2>"$TMP/idle.err"); then
        echo "$line"
        echo "idle $s 0 0 $line" >>"$RESULTS"
    else
        echo "FAILED"
        sed 's/^/    /' "$TMP/idle.err"
        kill -0 "$pid" 2>/dev/null || gone "$s" "$pid"
    fi
done
stop_all

# Tables and the chart's data. awk reads key=value fields from field 5 on.
awk -v servers="$SERVERS" -v scen="$SCENARIOS" -v dat="$OUT/echo.dat" \
    -v idat="$OUT/idle.dat" -v ncol="$TMP/ncol" -v rounds="$ROUNDS" '
function kv(f,   i, a) {
    delete r
    for (i = 5; i <= NF; i++) { split($i, a, "="); r[a[1]] = a[2] }
}
{ kv(); k = $3 ":" $4
  # Of the rounds, keep the fastest (load from elsewhere only ever slows a round down), and
  # the lowest server CPU per request.
  if ($1 == "load") {
      if (!(($2, k) in rps) || r["rps"] + 0 > rps[$2, k] + 0) {
          rps[$2, k] = r["rps"]; mib[$2, k] = r["mibps"]; p50[$2, k] = r["p50_us"]
          p99[$2, k] = r["p99_us"]; ccpu[$2, k] = r["client_cpu_pct"]
          scpu[$2, k] = r["server_cpu_pct"]
      }
      if (r["server_us_per_req"] != "" &&
          (!(($2, k) in cpu) || r["server_us_per_req"] + 0 < cpu[$2, k] + 0))
          cpu[$2, k] = r["server_us_per_req"]
  }
  else idle[$2] = r["kib_per_conn"] }
function label(k,   a) { split(k, a, ":"); return (a[1] >= 1024 ? a[1] / 1024 " KiB" : a[1] " B") " x " a[2] }
END {
    ns = split(servers, sv, " "); nk = split(scen, kk, " ")
    printf "scenario" > dat
    for (j = 1; j <= ns; j++) {
        has[sv[j]] = 0
        for (i = 1; i <= nk; i++) if ((sv[j], kk[i]) in rps) has[sv[j]] = 1
        if (has[sv[j]]) { printf " %s", sv[j] > dat; nplot++ }
    }
    printf "\n" > dat
    print nplot > ncol
    for (i = 1; i <= nk; i++) {
        k = kk[i]
        printf "\n== echo, %s connections, best of %d rounds\n   (ratio: req/s / epoll req/s; cpu ratio: epoll CPU per request / this server CPU per request)\n", label(k), rounds
        printf "%-9s %10s %9s %9s %9s %11s %7s %6s %6s %9s\n", "server", "req/s", "MiB/s",
               "p50 us", "p99 us", "cpu us/req", "srv cpu", "load", "ratio", "cpu ratio"
        printf "\"req/s, %s\"", label(k) > dat
        for (j = 1; j <= ns; j++) {
            s = sv[j]
            if (!((s, k) in rps)) {
                printf "%-9s %10s\n", s, "n/a"; if (has[s]) printf " ?" > dat; continue
            }
            ratio = rps["epoll", k] > 0 ? rps[s, k] / rps["epoll", k] : 0
            cr = cpu[s, k] > 0 ? cpu["epoll", k] / cpu[s, k] : "?"
            cpus = "n/a"; scpus = "n/a"; crs = "n/a"
            if (cpu[s, k] > 0) cpus = sprintf("%.2f", cpu[s, k])
            if (scpu[s, k] != "") scpus = (scpu[s, k] "%")
            if (cr != "?") crs = sprintf("%.2f", cr)
            printf "%-9s %10d %9.1f %9.1f %9.1f %11s %6s %5d%% %6.2f %9s\n", s, rps[s, k],
                   mib[s, k], p50[s, k], p99[s, k], cpus, scpus, ccpu[s, k], ratio, crs
            printf " %.3f", ratio > dat
            cpur[i, j] = cr
        }
        printf "\n" > dat
        if (("epoll", k) in rps && scpu["epoll", k] + ccpu["epoll", k] < 150)
            printf "note: the epoll server and the load generator got only %d%% and %d%% of " \
                   "their CPUs:\n      the machine is busy; req/s ratios are noisy, the CPU " \
                   "ratios much less so\n", scpu["epoll", k], ccpu["epoll", k]
    }
    for (i = 1; i <= nk; i++) {
        printf "\"CPU/req, %s\"", label(kk[i]) > dat
        for (j = 1; j <= ns; j++) {
            if ((sv[j], kk[i]) in rps && cpur[i, j] != "?") printf " %.3f", cpur[i, j] > dat
            else if (has[sv[j]]) printf " ?" > dat
        }
        printf "\n" > dat
    }
    printf "\n== RSS per idle connection (KiB), %s\n", "VmRSS growth / connections"
    for (j = 1; j <= ns; j++) {
        s = sv[j]
        if (s in idle) { printf "%-9s %6.2f\n", s, idle[s]; printf "%s %.3f\n", s, idle[s] > idat }
        else             printf "%-9s %6s\n", s, "n/a"
    }
}' "$RESULTS" | tee "$OUT/echo.txt"

{
    echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs," \
         "libevent $(pkg-config --modversion libevent 2>/dev/null)," \
         "$("$PY" --version 2>&1), uvloop $("$PY" -c 'import uvloop; print(uvloop.__version__)' 2>/dev/null)"
} | tee -a "$OUT/echo.txt"

if command -v gnuplot >/dev/null 2>&1; then
    nsrv=$(cat "$TMP/ncol")
    [ -s "$OUT/idle.dat" ] || echo "none 0" >"$OUT/idle.dat"
    gnuplot -e "out='$OUT/echo.png'; dat='$OUT/echo.dat'; idat='$OUT/idle.dat'" \
            -e "n=$nsrv; idle=$IDLE_CONNS; when='$(date -u '+%Y-%m-%d')'" "$ROOT/bench/echo.gp" \
            2>"$TMP/gnuplot.err" || { echo "bench: gnuplot failed:"; cat "$TMP/gnuplot.err"; }
    [ -s "$OUT/echo.png" ] && echo "bench: chart in $OUT/echo.png, table in $OUT/echo.txt"
else
    echo "bench: gnuplot missing (Debian package gnuplot-nox): no chart; table in $OUT/echo.txt"
fi
