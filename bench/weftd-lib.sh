# SPDX-License-Identifier: MIT
# weftd-lib.sh: shared by bench/scale.sh, soak.sh and chaos.sh: start weftd, find its workers, /proc figures.
#
# Sourced with the build directory as $1 (default build-load, configured -DWEFT_BENCH=ON).
# Everything this starts is recorded in STARTED and stopped, by PID, when the script exits.

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-load}
[ -d "$BUILD" ] || { echo "$NAME: no build directory $BUILD" >&2; exit 2; }
BUILD=$(cd "$BUILD" && pwd)
BIN=$BUILD/bench
WEFTD=$BUILD/daemon/weftd
for f in "$WEFTD" "$BIN/hold_conns" "$BIN/cycles" "$BIN/mixload"; do
    [ -x "$f" ] || { echo "$NAME: $f missing: build $BUILD with -DWEFT_BENCH=ON" >&2; exit 2; }
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/weft-$NAME.XXXXXX")
STARTED=""
MASTER=""

# stop_pid PID: SIGTERM, up to 15 s to exit, then SIGKILL.
stop_pid() {
    kill "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return 0; }
    i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt 150 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
cleanup() {
    for pid in $STARTED; do
        stop_pid "$pid"
    done
    STARTED=""
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' HUP INT PIPE TERM

# The workers inherit our descriptor limit; raise the soft one to the hard one.
ulimit -S -n "$(ulimit -H -n)" 2>/dev/null

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_weftd CONF: starts weftd on CONF (log in CONF.log), waits until it logs ready; sets MASTER.
start_weftd() {
    "$WEFTD" -c "$1" >"$1.log" 2>&1 </dev/null &
    MASTER=$!
    STARTED="$STARTED $MASTER"
    i=0
    until grep -q 'ready:' "$1.log" 2>/dev/null; do
        if ! kill -0 "$MASTER" 2>/dev/null || [ $i -ge 100 ]; then
            echo "$NAME: weftd did not start; its output:" >&2
            sed 's/^/    /' "$1.log" >&2
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
}

# stop_weftd: SIGTERM to the master, wait for it; forgets it.
stop_weftd() {
    stop_pid "$MASTER"
    STARTED=$(echo " $STARTED " | sed "s/ $MASTER / /")
    MASTER=""
}

# workers: the master's children, one per line.
workers() {
    tr ' ' '\n' <"/proc/$MASTER/task/$MASTER/children" 2>/dev/null | grep .
}

rss_kib() {
    awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print 0 }' "/proc/$1/status" 2>/dev/null \
        || echo 0
}

fd_count() {
    ls "/proc/$1/fd" 2>/dev/null | wc -l
}

# workers_rss / workers_fds: sums over the current workers.
workers_rss() {
    t=0
    for w in $(workers); do t=$((t + $(rss_kib "$w"))); done
    echo $t
}
workers_fds() {
    t=0
    for w in $(workers); do t=$((t + $(fd_count "$w"))); done
    echo $t
}

# machine_load: the 1-minute load average and the number of CPUs, for the reports.
machine_load() {
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
}
