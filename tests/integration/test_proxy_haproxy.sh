#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_proxy_haproxy.sh: a real HAProxy (tcp mode) in front of weftd on loopback ports, with
# send-proxy (v1) and send-proxy-v2: 1 MiB of random bytes echoed through each, byte-checked,
# by several clients at once; TLS passed through HAProxy to a TLS service with a PROXY
# header before the ClientHello; the http access log shows the client HAProxy saw.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD WEFT_SOURCE_DIR
require_tool nc netcat-openbsd curl curl openssl openssl haproxy haproxy
keep_going=1

make_certs
mkdir -p "$tmp/www"
printf 'served behind haproxy\n' >"$tmp/www/hello.txt"
log=$tmp/access.log

launch_px() {
    cat >"$tmp/weftd.conf" <<EOF
$(weftd_section "workers = 2" "log_level = debug")

[echo-v1]
protocol = echo
listen = 127.0.0.1:${ports[0]}
proxy_protocol = v1
proxy_trusted = 127.0.0.1

[echo-v2]
protocol = echo
listen = 127.0.0.1:${ports[1]}
proxy_protocol = v2
proxy_trusted = 127.0.0.1

[echo-tls]
protocol = echo
listen = 127.0.0.1:${ports[2]}
proxy_protocol = any
proxy_trusted = 127.0.0.1
tls_certificate = $c/a.pem
tls_key = $c/a.key

[web]
protocol = http
listen = 127.0.0.1:${ports[3]}
root = $tmp/www
access_log = $log
proxy_protocol = v2
proxy_trusted = 127.0.0.1
EOF
    launch "$WEFTD" -c "$tmp/weftd.conf"
}
start_weftd 4 launch_px || exit 1
w=("${ports[@]}")
weftd_pid=$pid

# HAProxy, in the foreground (-db), master-worker with sd_notify (-Ws): its READY=1 says
# it listens. Its ports come from our blocks; one taken meanwhile by someone else: new
# ports, up to 5 tries.
start_haproxy() {
    pick_ports h0 h1 h2 h3
    cat >"$tmp/haproxy.cfg" <<EOF
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend f-v1
    bind 127.0.0.1:$h0
    default_backend b-v1
backend b-v1
    server s 127.0.0.1:${w[0]} send-proxy
frontend f-v2
    bind 127.0.0.1:$h1
    default_backend b-v2
backend b-v2
    server s 127.0.0.1:${w[1]} send-proxy-v2
frontend f-tls
    bind 127.0.0.1:$h2
    default_backend b-tls
backend b-tls
    server s 127.0.0.1:${w[2]} send-proxy-v2
frontend f-web
    bind 127.0.0.1:$h3
    default_backend b-web
backend b-web
    server s 127.0.0.1:${w[3]} send-proxy-v2
EOF
    launch -n haproxy haproxy -Ws -db -f "$tmp/haproxy.cfg" || return 1
    hpid=$pid
    wait_event haproxy 'READY=1' 30
}
for try in 1 2 3 4 5; do
    start_haproxy && break
    stop_weftd haproxy KILL >/dev/null 2>&1 || true
    grep -q "in use" "$tmp/haproxy.err" && [ "$try" -lt 5 ] && continue
    fail "haproxy did not start"
    exit 1
done
haproxy -c -f "$tmp/haproxy.cfg" >"$tmp/haproxy-check.out" 2>&1 ||
    fail "haproxy -c: $(cat "$tmp/haproxy-check.out")"

# Echo through each: 1 MiB of random bytes, 4 clients at once per version.
head -c 1048576 /dev/urandom >"$tmp/in"
clients=()
for p in $h0 $h1; do
    for i in 1 2 3 4; do
        timeout 30 nc -N 127.0.0.1 "$p" <"$tmp/in" >"$tmp/out.$p.$i" 2>"$tmp/nc.$p.$i.log" &
        clients+=($!)
        started $!
    done
done
wait_jobs_ok=1
for j in "${clients[@]}"; do
    stop_pid "$j" CONT || wait_jobs_ok=0
done
[ "$wait_jobs_ok" = 1 ] || fail "an echo client failed"
for p in $h0 $h1; do
    for i in 1 2 3 4; do
        cmp -s "$tmp/in" "$tmp/out.$p.$i" ||
            fail "echo through haproxy :$p (client $i): $(stat -c %s "$tmp/out.$p.$i") bytes differ"
    done
done

# TLS through HAProxy (passthrough): the PROXY v2 header, then the ClientHello.
tls_say "$tmp/sc.out" "hello over tls" -- -connect "127.0.0.1:$h2" -CAfile "$c/ca.pem" -servername a.test
out=$(cat "$tmp/sc.out")
grep -qx 'hello over tls' <<<"$out" || fail "TLS echo through haproxy: $out"
grep -q "Verify return code: 0" <<<"$out" || fail "TLS through haproxy: certificate not verified"

# http: curl from 127.0.0.2; weftd's peer is HAProxy (127.0.0.1), the log shows 127.0.0.2.
out=$(curl -sS --max-time 5 --interface 127.0.0.2 "http://127.0.0.1:$h3/hello.txt" 2>&1)
[ "$out" = "served behind haproxy" ] || fail "curl through haproxy: $out"
wait_log "$log" "GET /hello.txt" 1 10 || fail "no access log line"
grep -q '^127\.0\.0\.2 - - \[.*"GET /hello.txt HTTP/1.1" 200' "$log" ||
    fail "access log does not show the client haproxy saw (127.0.0.2): $(cat "$log")"

# Straight to weftd, without HAProxy: no header, so no echo.
out=$(printf 'direct\n' | timeout 5 nc -q 2 127.0.0.1 "${w[0]}" 2>&1)
[ -z "$out" ] || fail "a client without a PROXY header was echoed: $out"

stop_weftd haproxy || true
stop_weftd || fail "weftd exited $?"
grep -q "ERROR\|AddressSanitizer" "$tmp/weftd.err" && fail "weftd reported errors"
finish "ok: haproxy send-proxy and send-proxy-v2 echo 8 x 1 MiB byte-exact, TLS, access log"
