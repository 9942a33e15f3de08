#!/bin/sh
# SPDX-License-Identifier: MIT
# scale.sh: `make scale`: 19,000 idle echo connections per worker, then 100,000 connect-echo-close cycles.
#
# Usage: sh bench/scale.sh [BUILD_DIR]   (default build-load, configured -DWEFT_BENCH=ON)
# Environment:
#   SCALE_PARTS       "idle cycles" (either or both)
#   IDLE_PER_WORKER   19000: idle connections per worker; runs with 1 and then 2 workers
#   IDLE_WORKERS      "1 2"
#   PER_CLIENT        4750: connections per hold_conns process (each from its own 127.0.0.x)
#   CYCLES            100000; CYCLE_PAR 64 in parallel; CYCLE_WORKERS 2
#   FD_SLACK          0: descriptors a worker may hold more after the cycles than before
#   RSS_SLACK_KIB     512: RSS (KiB) a worker may have grown over the cycles
#
# idle: weftd (max_connections 19,500 per worker; the workers' descriptor limit is this shell's
# hard limit) gets IDLE_PER_WORKER x workers connections from several hold_conns processes, each
# below its own limit and from its own source address. Once the workers hold them all (their
# descriptor counts in /proc), RSS is sampled until it settles: (sum of the workers' VmRSS after -
# before) / connections is the RSS per connection. Then every connection must echo one byte.
# cycles: after 5,000 warm-up cycles, each worker's descriptors and VmRSS; CYCLES cycles; the
# same figures once the workers hold no client connection any more: more descriptors than
# FD_SLACK or more RSS than RSS_SLACK_KIB on any worker, a worker replaced, or a failed cycle, fail.
# Exit status: 0 if every check passed.
set -u
NAME=scale
. "$(dirname "$0")/weftd-lib.sh"
load_init "$@"

SCALE_PARTS=${SCALE_PARTS:-"idle cycles"}
IDLE_PER_WORKER=${IDLE_PER_WORKER:-19000}
IDLE_WORKERS=${IDLE_WORKERS:-"1 2"}
PER_CLIENT=${PER_CLIENT:-4750}
CYCLES=${CYCLES:-100000}
CYCLE_PAR=${CYCLE_PAR:-64}
CYCLE_WORKERS=${CYCLE_WORKERS:-2}
FD_SLACK=${FD_SLACK:-0}
RSS_SLACK_KIB=${RSS_SLACK_KIB:-512}
FAILED=0

write_conf() {   # write_conf FILE WORKERS PORT
    cat >"$1" <<EOC
[weftd]
plugin_dir = $BUILD/plugins
log_level = notice
workers = $2
max_connections = 19500

[echo]
protocol = echo
listen = 127.0.0.1:$3
EOC
}

# settle_rss: waits until the workers' summed RSS is the same twice 0.5 s apart (at most 10 s).
settle_rss() {
    prev=-1
    i=0
    while [ $i -lt 20 ]; do
        cur=$(workers_rss)
        [ "$cur" = "$prev" ] && break
        prev=$cur
        sleep 0.5
        i=$((i + 1))
    done
    workers_rss
}

idle_run() {
    nw=$1
    total=$((IDLE_PER_WORKER * nw))
    port=$(free_port)
    conf=$TMP/idle$nw.conf
    write_conf "$conf" "$nw" "$port"
    start_weftd "$conf" || { FAILED=1; return; }
    sleep 0.5
    fd0=$(workers_fds)
    rss0=$(workers_rss)
    echo "scale: idle: $total connections to $nw worker(s) (pids $(workers | tr '\n' ' '));" \
         "$(machine_load)"
    # One client at a time, each waiting batch by batch until the workers have accepted its
    # connections: in parallel they overflow the accept queue, and the SYN cookies the kernel
    # then sends leave idle clients holding connections the server never saw.
    clients=""
    left=$total
    src=10
    t0=$(date +%s.%N)
    wpids=$(workers | tr '\n' ',' | sed 's/,$//')
    while [ $left -gt 0 ]; do
        n=$PER_CLIENT
        [ $n -gt $left ] && n=$left
        : >"$TMP/hold$src.out"
        "$BIN/hold_conns" -p "$port" -n "$n" -a "$src" -t 600 -P "$wpids" >"$TMP/hold$src.out" \
            2>"$TMP/hold$src.err" &
        c=$!
        clients="$clients $c"
        STARTED="$STARTED $c"
        until grep -q '^ready' "$TMP/hold$src.out"; do
            if ! kill -0 "$c" 2>/dev/null; then
                echo "scale: idle: FAILED: client $src exited early:"
                sed 's/^/    /' "$TMP/hold$src.err"
                FAILED=1
                break 2
            fi
            sleep 0.1
        done
        left=$((left - n))
        src=$((src + 1))
    done
    t1=$(date +%s.%N)
    held=$(( $(workers_fds) - fd0 ))
    if [ "$held" -lt "$total" ]; then
        echo "scale: idle: FAILED: the workers hold $held of $total connections"
        FAILED=1
    fi
    rss1=$(settle_rss)
    for w in $(workers); do
        echo "scale: idle:   worker $w: $(fd_count "$w") descriptors, VmRSS $(rss_kib "$w") KiB"
    done
    echo "scale: idle:   master $MASTER: VmRSS $(rss_kib "$MASTER") KiB"
    awk -v n="$total" -v a="$rss0" -v b="$rss1" -v t0="$t0" -v t1="$t1" -v nw="$nw" 'BEGIN {
        printf "scale: idle: %d connections held (%.1f s to open); workers VmRSS %d -> %d KiB: " \
               "%.2f KiB per connection (%d worker(s))\n", n, t1 - t0, a, b, (b - a) / n, nw }'
    kill -USR1 $clients 2>/dev/null
    ok=0
    for c in $clients; do
        wait "$c" || FAILED=1
        forget "$c"
    done
    ok=$(cat "$TMP"/hold*.out | awk -F'echo_ok=' 'NF > 1 { split($2, a, " "); s += a[1] } END { print s + 0 }')
    if [ "$ok" -eq "$total" ]; then
        echo "scale: idle: all $total connections echoed a byte at the end"
    else
        echo "scale: idle: FAILED: $ok of $total connections echoed a byte at the end"
        cat "$TMP"/hold*.err | sed 's/^/    /' | head -20
        FAILED=1
    fi
    rm -f "$TMP"/hold*.out "$TMP"/hold*.err
    stop_weftd
}

cycles_run() {
    port=$(free_port)
    conf=$TMP/cycles.conf
    write_conf "$conf" "$CYCLE_WORKERS" "$port"
    start_weftd "$conf" || { FAILED=1; return; }
    if ! "$BIN/cycles" -p "$port" -n 5000 -c "$CYCLE_PAR" -d 60 >/dev/null; then
        echo "scale: cycles: FAILED: the warm-up cycles failed"
        FAILED=1
    fi
    sleep 1
    ws=$(workers)
    for w in $ws; do
        eval "fd0_$w=$(fd_count "$w") rss0_$w=$(rss_kib "$w")"
    done
    echo "scale: cycles: $CYCLES connect-echo-close cycles, $CYCLE_PAR at a time, to" \
         "$CYCLE_WORKERS workers; $(machine_load)"
    if line=$("$BIN/cycles" -p "$port" -n "$CYCLES" -c "$CYCLE_PAR" -d 600); then
        echo "scale: cycles: $line"
    else
        echo "scale: cycles: FAILED: $line"
        FAILED=1
    fi
    # The workers close their side when they read the client's EOF: give them a moment.
    i=0
    while [ $i -lt 50 ]; do
        sum=0
        for w in $ws; do sum=$((sum + $(fd_count "$w"))); done
        want=0
        for w in $ws; do eval "want=\$((want + fd0_$w))"; done
        [ "$sum" -le "$want" ] && break
        sleep 0.2
        i=$((i + 1))
    done
    sleep 1
    if [ "$(workers | sort | tr '\n' ' ')" != "$(echo "$ws" | sort | tr '\n' ' ')" ]; then
        echo "scale: cycles: FAILED: the workers changed: $(echo $ws) -> $(workers | tr '\n' ' ')"
        FAILED=1
    fi
    for w in $ws; do
        eval "fd0=\$fd0_$w rss0=\$rss0_$w"
        fd1=$(fd_count "$w")
        rss1=$(rss_kib "$w")
        verdict=ok
        if [ "$fd1" -gt $((fd0 + FD_SLACK)) ] || [ "$rss1" -gt $((rss0 + RSS_SLACK_KIB)) ]; then
            verdict="FAILED (slack: $FD_SLACK descriptors, $RSS_SLACK_KIB KiB)"
            FAILED=1
        fi
        echo "scale: cycles:   worker $w: descriptors $fd0 -> $fd1, VmRSS $rss0 -> $rss1 KiB: $verdict"
    done
    stop_weftd
}

for part in $SCALE_PARTS; do
    case $part in
    idle)   for nw in $IDLE_WORKERS; do idle_run "$nw"; done ;;
    cycles) cycles_run ;;
    *)      echo "scale: unknown part $part" >&2; FAILED=1 ;;
    esac
done
if [ $FAILED -eq 0 ]; then echo "scale: PASSED"; else echo "scale: FAILED"; fi
exit $FAILED
