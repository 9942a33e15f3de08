#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/h2.sh [BUILD_DIR] [SECONDS]: HTTP/2 over TLS (h2 by ALPN) against weftd's http plugin,
# nginx and h2o, in one run: h2load -c10 -m10 (10 connections, 10 streams in flight on each)
# on core 1, each server with one worker (process or thread) pinned to core 0, the same
# certificate (an EC P-256 chain made by tests/integration/tls_certs.sh) and the same files
# (13 B, 4 KiB, 1 MiB). Prints req/s, MiB/s and each server's CPU microseconds per request
# (from /proc over the measured run), then issue 18's h2 goal: weft's req/s at least the
# better of nginx and h2o's, at <= 0.9x that server's CPU per request.
# Environment: SERVERS (default "weft nginx h2o"), FILES ("13b.txt 4k.bin 1m.bin"), CLIENTS
# (10), STREAMS (10), ROUNDS (1; each file goes round all servers ROUNDS times, interleaved,
# and each server's best round counts), WARMUP (1 s of h2load before each measured run, not
# counted), WEFTD2 (another weftd, e.g. a build before a change: server "weft2", added to
# the default list), WEFT_SUITES (tls_ciphersuites for weft and weft2; unset: weftd's
# default, OpenSSL's, which picks TLS_AES_256_GCM_SHA384 whatever the client prefers, where
# h2o picks TLS_AES_128_GCM_SHA256: "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:
# TLS_CHACHA20_POLY1305_SHA256" offers the same suites, AES-128 first, so both do the same
# AES work). The cipher each server negotiated is printed under the table.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-bench}
secs=${2:-10}
weftd=$build/daemon/weftd
clients=${CLIENTS:-10}
streams=${STREAMS:-10}
warmup=${WARMUP:-1}
rounds=${ROUNDS:-1}
weftd2=${WEFTD2:-}
servers=${SERVERS:-weft${weftd2:+ weft2} nginx h2o}
files=${FILES:-13b.txt 4k.bin 1m.bin}
. "$here/bench/weftd-lib.sh"
http_init h2.sh h2load nginx h2o taskset curl openssl

bash "$here/tests/integration/tls_certs.sh" "$tmp/certs" >/dev/null
chmod -R a+rX "$tmp/certs"
printf 'hello, world\n' > "$tmp/www/13b.txt"
head -c 4096 /dev/urandom > "$tmp/www/4k.bin"
head -c 1048576 /dev/urandom > "$tmp/www/1m.bin"
chmod -R a+rX "$tmp/www"

declare -A port pid
for s in weft weft2 nginx h2o; do
    port[$s]=$(free_port)
done
if [ "$(printf '%s\n' "${port[@]}" | sort -u | wc -l)" -ne 4 ]; then
    echo "h2.sh: free_port gave the same port twice; run again" >&2
    exit 1
fi

http_confs "${port[weft]}" "${port[nginx]}" "tls_certificate = $tmp/certs/a.pem
tls_key = $tmp/certs/a.key${WEFT_SUITES:+
tls_ciphersuites = $WEFT_SUITES}" "" " ssl http2" \
    "        ssl_certificate $tmp/certs/a.pem;
        ssl_certificate_key $tmp/certs/a.key;
        ssl_protocols TLSv1.2 TLSv1.3;"
h2o_conf "${port[h2o]}" "$tmp/certs/a.pem" "$tmp/certs/a.key"
sed "s/^listen = 127.0.0.1:.*/listen = 127.0.0.1:${port[weft2]}/" "$tmp/weftd.conf" > "$tmp/weftd2.conf"

for s in $servers; do
    case $s in
    weft) start_pinned weft "$weftd" -c "$tmp/weftd.conf" ;;
    weft2) start_pinned weft2 "${weftd2:?WEFTD2 is not set}" -c "$tmp/weftd2.conf" ;;
    nginx) start_pinned nginx "$nginx_bin" -c "$tmp/nginx.conf" -p "$tmp/nginx" ;;
    h2o) start_pinned h2o h2o -c "$tmp/h2o.conf" ;;
    *) echo "h2.sh: unknown server $s (SERVERS: weft weft2 nginx h2o)" >&2; exit 2 ;;
    esac
    eval "pid[$s]=\$pid_$s"
done
for s in $servers; do
    wait_url "$s" "${pid[$s]}" "https://a.test:${port[$s]}/1m.bin" -sf --http2 \
        --cacert "$tmp/certs/ca.pem" --resolve "a.test:${port[$s]}:127.0.0.1" || exit 1
    v=$(curl -s --http2 -k -o /dev/null -w '%{http_version}' "https://127.0.0.1:${port[$s]}/13b.txt")
    [ "$v" = 2 ] || { echo "h2.sh: $s answered HTTP/$v, not h2, over ALPN" >&2; exit 1; }
done

hz=$(getconf CLK_TCK)

# run_h2load URL SERVER_PID SERVER: req/s, MiB/s and the server's CPU microseconds per request
# (the cipher h2load negotiated in TMP/cipher.SERVER).
# h2load must report application protocol h2 and no failed or errored request.
run_h2load() {
    local out rps mib n t0 t1 bad
    [ "$warmup" = 0 ] ||
        taskset -c 1 h2load -c"$clients" -m"$streams" -D"$warmup" "$1" >/dev/null 2>&1 || :
    t0=$(tree_ticks "$2")
    out=$(taskset -c 1 h2load -c"$clients" -m"$streams" -D"$secs" "$1" 2>&1) || :
    t1=$(tree_ticks "$2")
    grep -q '^Application protocol: h2$' <<<"$out" ||
        { echo "h2.sh: $1: not h2:" >&2; echo "$out" >&2; }
    awk '/^Cipher:/ {print $2}' <<<"$out" > "$tmp/cipher.$3"
    bad=$(awk '/^requests:/ && ($10 + $12 + $14) > 0' <<<"$out")
    [ -z "$bad" ] || echo "h2.sh: $1: $bad" >&2
    # "finished in 10.00s, 61234.50 req/s, 4.12MB/s"
    rps=$(awk '/^finished in/ {print $4}' <<<"$out")
    mib=$(awk '/^finished in/ { v = $6; u = v; sub(/[0-9.]+/, "", u); sub(/[A-Za-z\/]+$/, "", v);
        if (u == "GB/s") v *= 1024; else if (u == "KB/s") v /= 1024; else if (u == "B/s") v /= 1048576;
        printf "%.1f", v }' <<<"$out")
    n=$(awk '/^requests:/ {print $8}' <<<"$out")
    awk -v r="${rps:-0}" -v m="${mib:-0}" -v n="${n:-0}" -v d=$((t1 - t0)) -v hz="$hz" \
        'BEGIN { printf "%s %s %.2f\n", r, m, (n > 0 ? d * 1e6 / hz / n : 0) }'
}

echo "h2.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(machine_load), ${secs}s per run, $rounds round(s)," \
     "h2load -c$clients -m$streams over TLS on core 1, servers on core 0"
printf '%-8s %-6s %10s %9s %8s %8s\n' file server req/s MiB/s cpu_us max_us
summary=""
for f in $files; do
    declare -A rps=() mib=() us=() usmax=()
    for ((round = 1; round <= rounds; round++)); do
        for s in $servers; do
            read -r r m u < <(run_h2load "https://127.0.0.1:${port[$s]}/$f" "${pid[$s]}" "$s")
            kill -0 "${pid[$s]}" 2>/dev/null ||
                { echo "h2.sh: $s died; its stderr:" >&2; cat "$tmp/$s.err" >&2; exit 1; }
            keep_best "$s" "$r" "$m" "$u"
        done
    done
    for s in $servers; do
        printf '%-8s %-6s %10.0f %9.1f %8.2f %8.2f\n' "$f" "$s" "${rps[$s]}" "${mib[$s]}" \
            "${us[$s]}" "${usmax[$s]}"
    done
    [ -n "${us[weft]:-}" ] || continue
    best=""
    for s in nginx h2o; do
        [ -n "${rps[$s]:-}" ] || continue
        if [ -z "$best" ] || awk -v a="${rps[$s]}" -v b="${rps[$best]}" 'BEGIN { exit !(a > b) }'
        then best=$s; fi
    done
    [ -n "$best" ] || continue
    summary="$summary$(awk -v f="$f" -v b="$best" -v wr="${rps[weft]}" -v br="${rps[$best]}" \
        -v wu="${us[weft]}" -v bu="${us[$best]}" 'BEGIN {
        rx = (br > 0 ? wr / br : 0); ux = (bu > 0 ? wu / bu : 0);
        printf "%s: weft/%s req/s %.2f (goal >= 1), CPU/req %.2f (goal <= 0.9): %s\n", f, b,
               rx, ux, (rx >= 1 && ux <= 0.9 ? "met" : "missed") }')
"
done
printf '%s' "$summary"
echo "ciphers:$(for s in $servers; do printf ' %s %s' "$s" "$(cat "$tmp/cipher.$s" 2>/dev/null)"; done)"
echo "(cpu_us: server CPU microseconds per request, all its processes and threads, lowest of the" \
     "rounds, max_us the highest; after the run $(machine_load);" \
     "weftd: $(grep -c . "$tmp/weft.err" 2>/dev/null || :) stderr lines)"
