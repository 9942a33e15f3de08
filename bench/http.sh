#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/http.sh [BUILD_DIR] [SECONDS]: wrk against weftd's http plugin and nginx, in one run.
# Both servers get one worker pinned to core 0 and serve the same files (13 B, 4 KiB, 1 MiB)
# from a temp dir on loopback; wrk runs on core 1 with 100 keep-alive connections.
# nginx gets its own config: access_log off, sendfile, open_file_cache. Prints req/s,
# throughput, the weft/nginx ratios and each server's CPU time per request. Targets: >= 1.2x
# nginx's req/s on the small files, >= 0.9x its throughput on 1 MiB.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-bench}
secs=${2:-10}
weftd=$build/daemon/weftd
conns=${CONNS:-100}
. "$here/bench/weftd-lib.sh"
http_init http.sh wrk nginx taskset

printf 'hello, world\n' > "$tmp/www/13b.txt"
head -c 4096 /dev/urandom > "$tmp/www/4k.bin"
head -c 1048576 /dev/urandom > "$tmp/www/1m.bin"
chmod -R a+rX "$tmp/www"

wport=$(free_port)
nport=$(free_port)
[ "$nport" != "$wport" ] || nport=$((wport + 1))

http_confs "$wport" "$nport" "" \
    "    tcp_nopush on;
    open_file_cache_valid 60s;" "" ""

http_start "http://127.0.0.1:$wport/13b.txt" "http://127.0.0.1:$nport/13b.txt" -sf
for s in "$wport" "$nport"; do
    curl -sf -o /dev/null "http://127.0.0.1:$s/1m.bin" ||
        { echo "http.sh: server on $s did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
done

hz=$(getconf CLK_TCK)

# run_wrk URL SERVER_PID: wrk's "Requests/sec", "Transfer/sec" (normalised to MiB/s) and the
# server's CPU microseconds per request, which other load on a shared machine disturbs less
# than the rates.
run_wrk() {
    local out rps tput n t0 t1
    t0=$(tree_ticks "$2")
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" --latency "$1" 2>&1)
    t1=$(tree_ticks "$2")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    tput=$(awk '/^Transfer\/sec:/ {
        v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z]+$/, "", v);
        if (u == "GB") v *= 1024; else if (u == "KB") v /= 1024; else if (u == "B") v /= 1048576;
        printf "%.1f", v }' <<<"$out")
    awk -v r="${rps:-0}" -v t="${tput:-0}" -v n="${n:-0}" -v d=$((t1 - t0)) -v hz="$hz" \
        'BEGIN { printf "%s %s %.1f\n", r, t, (n > 0 ? d * 1e6 / hz / n : 0) }'
}

printf '%-8s %11s %11s %10s %10s %6s %6s %8s %8s\n' file weft_req/s nginx_req/s weft_MiB/s \
    nginx_MiB/s req_x MiB_x weft_us nginx_us
for f in 13b.txt 4k.bin 1m.bin; do
    read -r wr wt wu < <(run_wrk "http://127.0.0.1:$wport/$f" "$wpid")
    read -r nr nt nu < <(run_wrk "http://127.0.0.1:$nport/$f" "$npid")
    awk -v f="$f" -v wr="$wr" -v nr="$nr" -v wt="$wt" -v nt="$nt" -v wu="$wu" -v nu="$nu" 'BEGIN {
        printf "%-8s %11.0f %11.0f %10.1f %10.1f %6.2f %6.2f %8.1f %8.1f\n", f, wr, nr, wt, nt,
               (nr > 0 ? wr / nr : 0), (nt > 0 ? wt / nt : 0), wu, nu }'
done
echo "(weft_us, nginx_us: server CPU microseconds per request, master and worker together;" \
     "weftd: $(grep -c . "$tmp/weftd.err" || true) stderr lines; nproc $(nproc);" \
     "${secs}s per run, $conns connections)"
