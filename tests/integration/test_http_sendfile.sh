#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_http_sendfile.sh: large files from the http plugin, over plain TCP (weft_transport_sendfile) and
# TLS (mapped file segments), byte-checked with curl; pipelined files on one connection; a
# client that stops reading mid-file (the worker's heap stays flat); a file truncated while
# it is being sent (the connection is closed early, the worker lives on).
set -euo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD WEFT_SOURCE_DIR
require_tool nc netcat-openbsd curl curl openssl openssl
keep_going=1

make_certs
mkdir -p "$tmp/root"
head -c $((6 * 1024 * 1024 + 12345)) /dev/urandom >"$tmp/root/big.bin"
printf 'small\n' >"$tmp/root/small.txt"
size=$(stat -c %s "$tmp/root/big.bin")

launch_http() {
    cat >"$tmp/weftd.conf" <<EOF
$(weftd_section "log_level = info" "workers = 1")

[plain]
protocol = http
listen = 127.0.0.1:${ports[0]}
root = $tmp/root

[tls]
protocol = http
listen = 127.0.0.1:${ports[1]}
root = $tmp/root
tls_certificate = $c/a.pem
tls_key = $c/a.key
EOF
    launch "$WEFTD" -c "$tmp/weftd.conf"
}
start_weftd 2 launch_http || exit 1
plain="http://127.0.0.1:${ports[0]}"
tls="https://a.test:${ports[1]}"
tlsopt=(--cacert "$c/ca.pem" --resolve "a.test:${ports[1]}:127.0.0.1")

# The worker: the master's only child (there since READY=1).
worker() {
    local w
    w=$(ps -o pid= --ppid "${sv_pid[weftd]}" | head -n 1 | tr -d ' ')
    [ -n "$w" ] && echo "$w"
}
rss_anon_kib() {
    awk '/^RssAnon:/ { print $2 }' "/proc/$1/status"
}
wpid=$(worker) || { fail "no worker process"; finish ""; }

dd if="$tmp/root/big.bin" of="$tmp/range.want" bs=1000 skip=1000 count=3000 status=none

# ---- whole file, a range, two files on one connection: plain and TLS ----
for scheme in plain tls; do
    if [ "$scheme" = plain ]; then base=$plain; opt=(); else base=$tls; opt=("${tlsopt[@]}"); fi
    rm -f "$tmp/got" "$tmp/got1" "$tmp/got2"
    code=$(curl -sS "${opt[@]}" -o "$tmp/got" -w '%{http_code}' "$base/big.bin" 2>&1) || true
    [ "$code" = 200 ] && cmp -s "$tmp/got" "$tmp/root/big.bin" ||
        fail "$scheme: big.bin ($size bytes) not intact: $code, $(stat -c %s "$tmp/got" 2>/dev/null)"
    code=$(curl -sS "${opt[@]}" -r 1000000-3999999 -o "$tmp/got" -w '%{http_code}' \
           "$base/big.bin" 2>&1) || true
    [ "$code" = 206 ] && cmp -s "$tmp/got" "$tmp/range.want" || fail "$scheme: range: $code"
    out=$(curl -sS "${opt[@]}" -o "$tmp/got1" -o "$tmp/got2" -w '%{num_connects} ' \
          "$base/big.bin" "$base/big.bin" 2>&1) || true
    [ "$out" = "1 0 " ] || fail "$scheme: two files did not share one connection: $out"
    cmp -s "$tmp/got1" "$tmp/root/big.bin" && cmp -s "$tmp/got2" "$tmp/root/big.bin" ||
        fail "$scheme: two files on one connection not intact"
done

# ---- pipelined: a file, then a small reply behind it, in order ----
req='GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /small.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
printf "$req" | timeout 20 nc -q 5 127.0.0.1 "${ports[0]}" >"$tmp/pipe.out" || true
n=$(stat -c %s "$tmp/pipe.out")
tail -c 6 "$tmp/pipe.out" | grep -qx small && [ "$n" -gt "$size" ] ||
    fail "pipelined file + small reply: $n bytes, tail $(tail -c 20 "$tmp/pipe.out" | od -c | head -2)"

# ---- clients that stop reading: 30 pipelined 6 MiB files each, nothing read ----
before=$(rss_anon_kib "$wpid")
reqs=$(for _ in $(seq 30); do printf 'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n'; done)
exec 3<>"/dev/tcp/127.0.0.1/${ports[0]}"
printf '%s' "$reqs" >&3
# s_client writes what it reads to a pipe nobody reads: it stops reading once that is full.
{ printf '%s' "$reqs"; sleep 6; } |
    timeout 8 openssl s_client -quiet -connect "127.0.0.1:${ports[1]}" -CAfile "$c/ca.pem" \
        2>/dev/null | sleep 7 &
stalled=$!
started "$stalled"
sleep 2
after=$(rss_anon_kib "$wpid")
grow=$((after - before))
[ "$grow" -lt $((24 * 1024)) ] || fail "worker heap grew by $grow KiB with two stalled clients"
code=$(curl -sS -o /dev/null -w '%{http_code}' "$plain/small.txt" 2>&1) || true
[ "$code" = 200 ] || fail "not serving beside stalled clients: $code"
code=$(curl -sS "${tlsopt[@]}" -o /dev/null -w '%{http_code}' "$tls/small.txt" 2>&1) || true
[ "$code" = 200 ] || fail "TLS not serving beside stalled clients: $code"
exec 3>&-
stop_pid "$stalled" KILL 2>/dev/null || true

# ---- a file truncated while it is sent (plain: sendfile stops short, connection closed) ----
head -c $((48 * 1024 * 1024)) /dev/urandom >"$tmp/root/shrink.bin"
launch -n shrink curl -sS --limit-rate 8M -o "$tmp/shrink.got" "$plain/shrink.bin"
# The file shrinks once curl has its headers (Content-Length: 48 MiB) and 2 MiB of the body:
# at 8 MiB/s it has about 5 s more to go. (A sleep here let a slow curl ask after the truncation,
# get the 1 MiB file whole, and fail the test.)
end=$(lib_deadline 20)
while [ "$(stat -c %s "$tmp/shrink.got" 2>/dev/null || echo 0)" -lt $((2 * 1024 * 1024)) ]; do
    lib_left left "$end" || fail "curl did not get 2 MiB of shrink.bin within 20 s"
    sleep 0.02  # polling the file curl writes: the event itself, not a guess
done
truncate -s $((1024 * 1024)) "$tmp/root/shrink.bin"
rc=0
wait_event shrink 'EXIT=*' 15 || fail "curl still running 15 s after the file was truncated"
stop_weftd shrink KILL 2>/dev/null || rc=$?
got=$(stat -c %s "$tmp/shrink.got" 2>/dev/null || echo 0)
[ "$rc" -ne 0 ] && [ "$got" -lt $((48 * 1024 * 1024)) ] ||
    fail "truncated file: curl rc $rc with $got bytes ($(cat "$tmp/shrink.err"))"
w2=$(worker) || true
[ "$w2" = "$wpid" ] || fail "worker $wpid replaced by $w2 after the truncated file"
code=$(curl -sS -o "$tmp/got" -w '%{http_code}' "$plain/big.bin" 2>&1) || true
[ "$code" = 200 ] && cmp -s "$tmp/got" "$tmp/root/big.bin" || fail "unhealthy after truncation"

stop_weftd || fail "weftd exited $? after SIGTERM"
finish "http large files: plain (sendfile) and TLS, ranges, pipelining, stalled clients, truncation"
