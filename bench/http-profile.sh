#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/http-profile.sh [BUILD_DIR] [FILE] [SECONDS]: where weftd's CPU goes per HTTP/1.1
# request. weftd (workers = 0, one process) serves FILE (13b.txt, 4k.bin or 1m.bin, made in a
# temp dir) to wrk -t1 -c$CONNS (default 100) on keep-alive connections, three ways:
#   callgrind  instructions per request (repeatable on a busy machine: the main figure) and
#              the top functions by instructions, inclusive of nothing (self cost);
#   strace     syscalls per request (strace -c over the same load);
#   perf       cpu-clock samples (perf record -g), top symbols, if perf works here.
# MODES="callgrind strace perf" picks some. Start-up is not in the figures (callgrind counts
# from the fourth second of the load; strace and perf attach once weftd answers).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-bench}
file=${2:-13b.txt}
secs=${3:-5}
conns=${CONNS:-100}
modes=${MODES:-callgrind strace perf}
weftd=$build/daemon/weftd
. "$here/bench/weftd-lib.sh"
need_tools http-profile.sh wrk valgrind callgrind_control callgrind_annotate strace curl
[ -x "$weftd" ] || { echo "http-profile.sh: no $weftd: build first" >&2; exit 1; }
bench_tmp /tmp/weft-http-profile
chmod 755 "$TMP"
mkdir -p "$TMP/www"
printf 'hello, world\n' > "$TMP/www/13b.txt"
head -c 4096 /dev/urandom > "$TMP/www/4k.bin"
head -c 1048576 /dev/urandom > "$TMP/www/1m.bin"
chmod -R a+rX "$TMP/www"
port=$(free_port)
url="http://127.0.0.1:$port/$file"
cat > "$TMP/weftd.conf" <<CONF
[weftd]
workers = 0
log_level = warning
[bench]
protocol = http
listen = 127.0.0.1:$port
root = $TMP/www
keepalive_timeout = 60s
CONF

# start WRAPPER...: weftd under WRAPPER (may be empty); sets pid; waits up to 120 s for an
# answer (valgrind starts slowly), then fetches url twice (the file cache is warm).
start() {
    "$@" "$weftd" -c "$TMP/weftd.conf" 2> "$TMP/weftd.err" &
    pid=$!
    STARTED="$STARTED $pid"
    for _ in $(seq 1200); do
        curl -sf -o /dev/null "$url" && curl -sf -o /dev/null "$url" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "http-profile.sh: weftd did not answer; its stderr:" >&2
    cat "$TMP/weftd.err" >&2
    exit 1
}

stop() {
    stop_pid "$pid"
    forget "$pid"
}

# load: wrk for secs seconds; prints the number of requests it completed.
load() {
    taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "$url" > "$TMP/wrk.out" 2>&1
    awk '/requests in/ {print $1}' "$TMP/wrk.out"
}

for mode in $modes; do
    case $mode in
    callgrind)
        # Counted from the fourth second of the load on: every connection is open and warm
        # (its reads have shrunk to their least size), as in a long run. The requests are
        # the calls of http_serve in that window, from callgrind's own file.
        start valgrind --tool=callgrind --instr-atstart=no \
            --callgrind-out-file="$TMP/cg.out" -q
        taskset -c 1 wrk -t1 -c"$conns" -d"$((secs + 3))s" "$url" > "$TMP/wrk.out" 2>&1 &
        wpid=$!
        sleep 3
        callgrind_control -i on "$pid" > /dev/null
        sleep "$secs"
        callgrind_control -i off "$pid" > /dev/null
        wait "$wpid"
        stop
        callgrind_report "$TMP/cg.out" "$file, $conns connections" 25
        ;;
    strace)
        start taskset -c 0
        strace -c -f -p "$pid" -o "$TMP/strace.out" 2> "$TMP/strace.err" &
        spid=$!
        for _ in $(seq 100); do     # until strace says it attached
            grep -q attached "$TMP/strace.err" 2>/dev/null && break
            sleep 0.1
        done
        n=$(load)
        kill -INT "$spid"
        wait "$spid" || :
        stop
        echo "== strace, $file: $n requests; syscalls per request:"
        awk -v n="$n" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {
            printf "%8.3f %s\n", $4 / n, $NF }' \
            "$TMP/strace.out" | sort -rn | head -12
        ;;
    perf)
        command -v perf > /dev/null || { echo "== perf: not installed"; continue; }
        start taskset -c 0
        perf record -e cpu-clock -g -p "$pid" -o "$TMP/perf.data" 2> "$TMP/perf.err" &
        ppid_=$!
        sleep 0.5       # perf says nothing when it is attached: a moment for it
        n=$(load)
        kill -INT "$ppid_"
        wait "$ppid_" || :
        stop
        echo "== perf cpu-clock, $file: $n requests; by object, then the top symbols (self):"
        perf report -i "$TMP/perf.data" --no-children --sort dso --stdio 2>/dev/null |
            grep -E '^ +[0-9.]+%' | head -8
        perf report -i "$TMP/perf.data" --no-children --sort symbol --stdio 2>/dev/null |
            grep -E '^ +[0-9.]+%' | head -25
        ;;
    *)
        echo "http-profile.sh: unknown mode $mode" >&2
        exit 2
        ;;
    esac
done
