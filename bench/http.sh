#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/http.sh [BUILD_DIR] [SECONDS]: wrk against weftd's http plugin, nginx, h2o, lighttpd
# and bench/http_bare, in one run. Every server gets one worker (process or thread) pinned to
# core 0 and serves the same files (13 B, 4 KiB, 1 MiB) from a temp dir on loopback; wrk runs
# on core 1 with 100 keep-alive connections (-t1 -c100). http_bare answers every request head
# with a fixed 13-byte response, so it only runs on the 13-byte file: it is the floor.
# Configs: nginx access_log off, sendfile, tcp_nopush, open_file_cache; h2o one thread, no
# access log (h2o 2.2 has no sendfile; its file cache is always on); lighttpd one process,
# mod_staticfile only, sendfile, the inotify stat cache.
# Prints each server's req/s, MiB/s and CPU microseconds per request (from /proc: utime +
# stime of the server and its children over the wrk run), then the ratios of issue 18's
# goals: weft's CPU/request over the bare server's (13 B; goal <= 1.1) and over the most
# frugal of nginx, h2o and lighttpd (goal <= 0.9 on 13 B and 4 KiB, <= 0.8 on 1 MiB), and
# weft's req/s over the best of them.
# Environment: SERVERS (default "weft bare nginx h2o lighttpd"), FILES ("13b.txt 4k.bin
# 1m.bin"), CONNS (100), ROUNDS (1; each file goes round all servers ROUNDS times,
# interleaved, and each server's best round counts), WARMUP (1 s of wrk before each measured
# run, not counted), WEFTD2 (another weftd, e.g. a build before a change: server "weft2",
# added to the default list, with its own weft2/bare ratio: a before/after in one run).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-bench}
secs=${2:-10}
weftd=$build/daemon/weftd
bare=$build/bench/http_bare
conns=${CONNS:-100}
warmup=${WARMUP:-1}
rounds=${ROUNDS:-1}
weftd2=${WEFTD2:-}
servers=${SERVERS:-weft${weftd2:+ weft2} bare nginx h2o lighttpd}
files=${FILES:-13b.txt 4k.bin 1m.bin}
. "$here/bench/weftd-lib.sh"
http_init http.sh wrk nginx h2o lighttpd taskset curl
[ -x "$bare" ] || { echo "http.sh: no $bare: build with -DWEFT_BENCH=ON" >&2; exit 1; }
lighttpd_bin=$(command -v lighttpd || echo /usr/sbin/lighttpd)

printf 'hello, world\n' > "$tmp/www/13b.txt"
head -c 4096 /dev/urandom > "$tmp/www/4k.bin"
head -c 1048576 /dev/urandom > "$tmp/www/1m.bin"
chmod -R a+rX "$tmp/www"

declare -A port pid
for s in weft weft2 bare nginx h2o lighttpd; do
    port[$s]=$(free_port)
done
if [ "$(printf '%s\n' "${port[@]}" | sort -u | wc -l)" -ne 6 ]; then
    echo "http.sh: free_port gave the same port twice; run again" >&2
    exit 1
fi

http_confs "${port[weft]}" "${port[nginx]}" "" \
    "    tcp_nopush on;
    open_file_cache_valid 60s;" "" ""
h2o_conf "${port[h2o]}"
sed "s/^listen = 127.0.0.1:.*/listen = 127.0.0.1:${port[weft2]}/" "$tmp/weftd.conf" > "$tmp/weftd2.conf"
lighttpd_conf "${port[lighttpd]}"

for s in $servers; do
    case $s in
    weft) start_pinned weft "$weftd" -c "$tmp/weftd.conf" ;;
    weft2) start_pinned weft2 "${weftd2:?WEFTD2 is not set}" -c "$tmp/weftd2.conf" ;;
    nginx) start_pinned nginx "$nginx_bin" -c "$tmp/nginx.conf" -p "$tmp/nginx" ;;
    h2o) start_pinned h2o h2o -c "$tmp/h2o.conf" ;;
    lighttpd) start_pinned lighttpd "$lighttpd_bin" -D -f "$tmp/lighttpd.conf" ;;
    bare) start_pinned bare "$bare" 127.0.0.1 "${port[bare]}" ;;
    *) echo "http.sh: unknown server $s (SERVERS: weft weft2 bare nginx h2o lighttpd)" >&2; exit 2 ;;
    esac
    eval "pid[$s]=\$pid_$s"
done
for s in $servers; do
    f=1m.bin
    [ "$s" != bare ] || f=13b.txt
    wait_url "$s" "${pid[$s]}" "http://127.0.0.1:${port[$s]}/$f" -sf || exit 1
done

hz=$(getconf CLK_TCK)

# run_wrk URL SERVER_PID: wrk's "Requests/sec", "Transfer/sec" (normalised to MiB/s) and the
# server's CPU microseconds per request, which other load on a shared machine disturbs less
# than the rates. A warm-up run goes first (WARMUP seconds, not counted).
run_wrk() {
    local out rps tput n t0 t1 errs
    [ "$warmup" = 0 ] || taskset -c 1 wrk -t1 -c"$conns" -d"${warmup}s" "$1" >/dev/null 2>&1
    t0=$(tree_ticks "$2")
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "$1" 2>&1)
    t1=$(tree_ticks "$2")
    errs=$(awk '/Socket errors|Non-2xx/' <<<"$out")
    [ -z "$errs" ] || echo "http.sh: $1: $errs" >&2
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    tput=$(awk '/^Transfer\/sec:/ {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v);
        if (u == "GB") v *= 1024; else if (u == "KB") v /= 1024; else if (u == "B") v /= 1048576;
        printf "%.1f", v }' <<<"$out")
    awk -v r="${rps:-0}" -v t="${tput:-0}" -v n="${n:-0}" -v d=$((t1 - t0)) -v hz="$hz" \
        'BEGIN { printf "%s %s %.2f\n", r, t, (n > 0 ? d * 1e6 / hz / n : 0) }'
}

echo "http.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(machine_load), ${secs}s per run, $rounds round(s)," \
     "wrk -t1 -c$conns on core 1, servers on core 0"
printf '%-8s %-9s %10s %9s %8s %8s\n' file server req/s MiB/s cpu_us max_us
summary=""
for f in $files; do
    declare -A rps=() mib=() us=() usmax=()
    for ((round = 1; round <= rounds; round++)); do
        for s in $servers; do
            [ "$s" != bare ] || [ "$f" = 13b.txt ] || continue
            read -r r t u < <(run_wrk "http://127.0.0.1:${port[$s]}/$f" "${pid[$s]}")
            kill -0 "${pid[$s]}" 2>/dev/null ||
                { echo "http.sh: $s died; its stderr:" >&2; cat "$tmp/$s.err" >&2; exit 1; }
            keep_best "$s" "$r" "$t" "$u"
        done
    done
    for s in $servers; do
        [ -n "${us[$s]:-}" ] || continue
        printf '%-8s %-9s %10.0f %9.1f %8.2f %8.2f\n' "$f" "$s" "${rps[$s]}" "${mib[$s]}" \
            "${us[$s]}" "${usmax[$s]}"
    done
    # The ratios: weft against the bare floor, the most frugal peer, the fastest peer.
    [ -n "${us[weft]:-}" ] || continue
    line="$f:"
    if [ -n "${us[bare]:-}" ]; then
        line="$line $(awk -v w="${us[weft]}" -v b="${us[bare]}" 'BEGIN {
            printf "weft/bare CPU %.2f (goal <= 1.1);", (b > 0 ? w / b : 0) }')"
        [ -z "${us[weft2]:-}" ] ||
            line="$line $(awk -v w="${us[weft2]}" -v b="${us[bare]}" 'BEGIN {
                printf "weft2/bare CPU %.2f;", (b > 0 ? w / b : 0) }')"
    fi
    frugal="" fast=""
    for s in nginx h2o lighttpd; do
        [ -n "${us[$s]:-}" ] || continue
        if [ -z "$frugal" ] || awk -v a="${us[$s]}" -v b="${us[$frugal]}" 'BEGIN { exit !(a < b) }'
        then frugal=$s; fi
        if [ -z "$fast" ] || awk -v a="${rps[$s]}" -v b="${rps[$fast]}" 'BEGIN { exit !(a > b) }'
        then fast=$s; fi
    done
    if [ -n "$frugal" ]; then
        goal=0.9
        [ "$f" != 1m.bin ] || goal=0.8
        line="$line $(awk -v w="${us[weft]}" -v p="${us[$frugal]}" -v n="$frugal" -v g="$goal" \
            'BEGIN { printf "weft/%s CPU %.2f (most frugal peer; goal <= %s);", n,
                     (p > 0 ? w / p : 0), g }')"
        line="$line $(awk -v w="${rps[weft]}" -v p="${rps[$fast]}" -v n="$fast" \
            'BEGIN { printf "weft/%s req/s %.2f (fastest peer)", n, (p > 0 ? w / p : 0) }')"
    fi
    summary="$summary$line
"
done
printf '%s' "$summary"
echo "(cpu_us: server CPU microseconds per request, all its processes and threads, lowest of the" \
     "rounds, max_us the highest; after the run $(machine_load);" \
     "weftd: $(grep -c . "$tmp/weft.err" 2>/dev/null || :) stderr lines)"
