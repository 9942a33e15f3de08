#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/https.sh [BUILD_DIR] [SECONDS]: HTTPS against weftd's http plugin and nginx.
# Same certificate (an EC P-256 chain made by tests/integration/tls_certs.sh), same 13-byte
# file, one worker each pinned to core 0, the load generators on core 1. Three loads:
#   keepalive  wrk, 100 connections, many requests each               -> requests/s
#   resumed    wrk -H "Connection: close": a new TLS connection per request; wrk keeps its
#              SSL objects across reconnects (SSL_clear), so it offers the last session
#              ticket and these are resumed handshakes                 -> handshakes/s
#   full       PROCS (4) `openssl s_time -new` in parallel: a full handshake (ECDHE + ECDSA
#              signature) per connection, no resumption                -> handshakes/s
#   bulk       wrk, 10 connections, a 1 MiB file again and again: encryption and the TLS
#              layer's write path, not handshakes                      -> requests/s (MiB/s)
# Each line also gives each server's CPU time per request or connection (master and worker),
# which other load on a shared machine disturbs less than the rates. Target: >= 1.0x nginx.
# Needs weftd with TLS wired (tls_certificate / tls_key service keys).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-bench}
secs=${2:-10}
weftd=$build/daemon/weftd
conns=${CONNS:-100}
procs=${PROCS:-4}
. "$here/bench/weftd-lib.sh"
http_init https.sh wrk nginx taskset openssl

bash "$here/tests/integration/tls_certs.sh" "$tmp/certs" >/dev/null
chmod -R a+rX "$tmp/certs"
printf 'hello, world\n' > "$tmp/www/13b.txt"
head -c 1048576 /dev/urandom > "$tmp/www/1m.bin"
chmod -R a+rX "$tmp/www"

wport=$(free_port)
nport=$(free_port)
[ "$nport" != "$wport" ] || nport=$((wport + 1))

http_confs "$wport" "$nport" "tls_certificate = $tmp/certs/a.pem
tls_key = $tmp/certs/a.key" "" " ssl" \
    "        ssl_certificate $tmp/certs/a.pem;
        ssl_certificate_key $tmp/certs/a.key;
        ssl_protocols TLSv1.2 TLSv1.3;"

http_start "https://127.0.0.1:$wport/13b.txt" "https://127.0.0.1:$nport/13b.txt" -sfk
for s in "$wport" "$nport"; do
    curl -sf --cacert "$tmp/certs/ca.pem" --resolve "a.test:$s:127.0.0.1" -o /dev/null \
        "https://a.test:$s/13b.txt" ||
        { echo "https.sh: server on $s did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
done

hz=$(getconf CLK_TCK)

# measure LOAD PORT SERVER_PID: "rate us_per_request" for one load against one server.
measure() {
    local load=$1 port=$2 spid=$3 t0 t1 n out start end i
    t0=$(tree_ticks "$spid")
    start=$(date +%s.%N)
    case $load in
    keepalive|resumed)
        local args=()
        [ "$load" = resumed ] && args=(-H "Connection: close")
        out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "${args[@]}" \
              "https://127.0.0.1:$port/13b.txt" 2>&1)
        n=$(awk '/requests in/ {print $1}' <<<"$out")
        ;;
    bulk)
        out=$(taskset -c 1 wrk -t1 -c10 -d"${secs}s" "https://127.0.0.1:$port/1m.bin" 2>&1)
        n=$(awk '/requests in/ {print $1}' <<<"$out")
        ;;
    full)
        for ((i = 0; i < procs; i++)); do
            taskset -c 1 openssl s_time -connect "127.0.0.1:$port" -new -time "$secs" \
                -www /13b.txt >"$tmp/stime.$i" 2>&1 &
        done
        wait
        n=$(cat "$tmp"/stime.* | awk '/connections in .* real seconds/ {s += $1} END {print s + 0}')
        ;;
    esac
    end=$(date +%s.%N)
    t1=$(tree_ticks "$spid")
    awk -v n="${n:-0}" -v s="$start" -v e="$end" -v d=$((t1 - t0)) -v hz="$hz" 'BEGIN {
        printf "%.0f %.1f\n", n / (e - s), (n > 0 ? d * 1e6 / hz / n : 0) }'
}

printf '%-10s %10s %10s %7s %9s %9s\n' load weft nginx ratio weft_us nginx_us
for load in keepalive resumed full bulk; do
    read -r w wu < <(measure "$load" "$wport" "$wpid")
    read -r n nu < <(measure "$load" "$nport" "$npid")
    awk -v l="$load" -v w="${w:-0}" -v n="${n:-0}" -v wu="$wu" -v nu="$nu" 'BEGIN {
        printf "%-10s %10.0f %10.0f %7.2f %9.1f %9.1f\n", l, w, n, (n > 0 ? w / n : 0), wu, nu }'
done
echo "(13-byte file; keepalive: requests/s; resumed, full: one connection per request, i.e." \
     "handshakes/s; bulk: requests/s of a 1 MiB file over 10 connections; weft_us, nginx_us: server CPU microseconds per request; ${secs}s per run;" \
     "wrk $conns connections, $procs s_time clients; nproc $(nproc))"
