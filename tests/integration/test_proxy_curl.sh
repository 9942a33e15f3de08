#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_proxy_curl.sh: weftd's proxy_protocol and proxy_trusted: curl --haproxy-protocol and
# hand-made v1/v2 headers reach the http plugin, whose access log shows the claimed client;
# a missing, malformed or untrusted header closes the connection; a stream plugin (poem)
# sees the claimed client too, and its readers obey `limit`; config errors.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_tool nc netcat-openbsd curl curl
keep_going=1

mkdir -p "$tmp/www"
printf 'hello through a proxy\n' >"$tmp/www/hello.txt"
log=$tmp/access.log

write_conf() {
    cat >"$tmp/weftd.conf" <<EOF
$(weftd_section "workers = 1" "log_level = debug")

[web]
protocol = http
listen = 127.0.0.1:$1
root = $tmp/www
access_log = $log
proxy_protocol = any
proxy_trusted = 10.0.0.0/8, 127.0.0.1

[web-v2]
protocol = http
listen = 127.0.0.1:$2
root = $tmp/www
access_log = $log
proxy_protocol = v2
proxy_trusted = 127.0.0.0/8

[web-lb-only]
protocol = http
listen = 127.0.0.1:$3
root = $tmp/www
proxy_protocol = v1
proxy_trusted = 192.0.2.0/24, ::1

[poem]
protocol = poem
listen = 127.0.0.1:$4
greeting_timeout = 2s
proxy_protocol = v1
proxy_trusted = any

[poem-short]
protocol = poem
listen = 127.0.0.1:$5
greeting_timeout = 2s
limit = 16
EOF
}

# Config errors first: each names its file, line and key.
check_bad() {   # check_bad NAME WANT (stdin: the service lines)
    { printf '[weftd]\n%s\n[s]\nprotocol = %s\nlisten = 127.0.0.1:9\n' \
        "${WEFT_PLUGIN_DIR:+plugin_dir = $WEFT_PLUGIN_DIR}" "$3"; cat; } >"$tmp/$1.conf"
    if "$WEFTD" -t -c "$tmp/$1.conf" >"$tmp/$1.out" 2>&1; then
        fail "$1: weftd -t accepted it"
    elif ! grep -q "$1.conf:[0-9]*: \[s\] $2" "$tmp/$1.out"; then
        fail "$1: no \"$2\" error: $(cat "$tmp/$1.out")"
    fi
}
printf 'proxy_protocol = v1\n' | check_bad notrust "proxy_protocol: needs proxy_trusted" echo
printf 'proxy_protocol = v3\nproxy_trusted = any\n' | check_bad badver "proxy_protocol: bad value" echo
printf 'proxy_protocol = v1\nproxy_trusted = 10.0.0.0/33\n' | check_bad badcidr "proxy_trusted: bad prefix" echo
printf 'proxy_protocol = v1\nproxy_trusted = example.com\n' | check_bad badaddr "proxy_trusted: .*not an IPv4" echo
printf 'proxy_trusted = ::1\n' | check_bad trustonly "proxy_trusted: has no effect" echo
printf 'idle_timeout = soon\n' | check_bad badidle "idle_timeout: bad duration" echo
printf 'limit = 0\n' | check_bad badlimit "limit: bad size" poem
write_conf 1 2 3 4 5
"$WEFTD" -t -c "$tmp/weftd.conf" >"$tmp/check.out" 2>&1 || fail "weftd -t: $(cat "$tmp/check.out")"

launch_px() {
    write_conf "${ports[@]}"
    launch "$WEFTD" -c "$tmp/weftd.conf"
}
start_weftd 5 launch_px || exit 1
url="http://127.0.0.1:${ports[0]}/hello.txt"

# curl --haproxy-protocol: a v1 header with curl's own address, then the request.
out=$(curl -sS --max-time 5 --haproxy-protocol "$url" 2>&1)
[ "$out" = "hello through a proxy" ] || fail "curl --haproxy-protocol: $out"
# From 127.0.0.2 the header claims 127.0.0.2, which is not trusted on this service.
if curl -sS --max-time 5 --haproxy-protocol --interface 127.0.0.2 "$url" >/dev/null 2>&1; then
    fail "a header from an untrusted address (127.0.0.2) was served"
fi

# A hand-made v1 header claims another client: the access log shows it.
out=$(printf 'PROXY TCP4 10.1.2.3 127.0.0.1 40000 80\r\nGET /hello.txt HTTP/1.0\r\n\r\n' |
      timeout 5 nc -q 3 127.0.0.1 "${ports[0]}" 2>&1)
grep -q "^HTTP/1.0 200" <<<"$out" || grep -q "^HTTP/1.1 200" <<<"$out" || fail "v1 by hand: $out"
# A v2 header (binary): 203.0.113.9:12345 -> 127.0.0.1:80, then the request.
v2='\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xcb\x00\x71\x09\x7f\x00\x00\x01\x30\x39\x00\x50'
out=$(printf "${v2}GET /hello.txt HTTP/1.0\r\n\r\n" | timeout 5 nc -q 3 127.0.0.1 "${ports[1]}" 2>&1)
grep -q "^HTTP/1.[01] 200" <<<"$out" || fail "v2 by hand: $out"
# The same v2 header on the v1-only service is refused, as is a v1 one on the v2 service.
out=$(printf "${v2}GET /hello.txt HTTP/1.0\r\n\r\n" | timeout 5 nc -q 3 127.0.0.1 "${ports[2]}" 2>&1)
[ -z "$out" ] || fail "v2 header on a v1 service answered: $out"

# A worker writes the access log line once a response is done, maybe just after nc has it.
wait_log "$log" "GET /hello.txt" 3 10 || fail "access log: not 3 lines"
grep -q '^127\.0\.0\.1 - - \[.*"GET /hello.txt HTTP/1.1" 200' "$log" ||
    fail "access log: no line for curl's request"
grep -q '^10\.1\.2\.3 - - \[.*"GET /hello.txt HTTP/1.0" 200' "$log" ||
    fail "access log does not show the v1 header's client 10.1.2.3"
grep -q '^203\.0\.113\.9 - - \[.*"GET /hello.txt HTTP/1.0" 200' "$log" ||
    fail "access log does not show the v2 header's client 203.0.113.9"
[ "$(wc -l <"$log")" -eq 3 ] || fail "access log should have 3 lines: $(cat "$log")"

# No header, a malformed one, an untrusted sender: closed without an answer or a log line.
for req in 'GET /hello.txt HTTP/1.0\r\n\r\n' \
           'PROXY TCP4 10.1.2.3 127.0.0.1 99999 80\r\nGET /hello.txt HTTP/1.0\r\n\r\n' \
           'PROXY TCP5 10.1.2.3 127.0.0.1 1 80\r\nGET /hello.txt HTTP/1.0\r\n\r\n'; do
    out=$(printf "$req" | timeout 5 nc -q 3 127.0.0.1 "${ports[0]}" 2>&1)
    [ -z "$out" ] || fail "answered without a valid header ($req): $out"
done
out=$(printf 'PROXY TCP4 192.0.2.1 127.0.0.1 1 80\r\nGET /hello.txt HTTP/1.0\r\n\r\n' |
      timeout 5 nc -q 3 127.0.0.1 "${ports[2]}" 2>&1)
[ -z "$out" ] || fail "127.0.0.1 is not in proxy_trusted of [web-lb-only], yet it was served"
# Each refusal is logged when the connection closes, when an access log line would be.
wait_log "$tmp/weftd.err" "no valid PROXY header; connection closed" 3 10 ||
    fail "not logged (debug)"
wait_log "$tmp/weftd.err" "not a trusted PROXY sender" 3 10 || fail "untrusted sender not logged"
[ "$(wc -l <"$log")" -eq 3 ] || fail "refused connections reached the access log: $(cat "$log")"

# A header that never comes: closed after 3 s.
t0=$(date +%s%N)
exec 3<>"/dev/tcp/127.0.0.1/${ports[0]}"
read -r -t 8 _ <&3
rc=$?       # 1: EOF; above 128: read timed out
exec 3<&-
dt=$((($(date +%s%N) - t0) / 1000000))
[ "$rc" = 1 ] || fail "silent client: read ended with $rc, not EOF"
[ "$dt" -ge 2800 ] && [ "$dt" -lt 6000 ] || fail "silent client closed after $dt ms, not ~3 s"

# The stream layer (poem): its greeting log names the claimed client.
out=$(printf 'PROXY TCP4 10.7.7.7 127.0.0.1 4242 80\r\nhi from afar\n' |
      timeout 10 nc -q 5 127.0.0.1 "${ports[3]}" 2>&1)
[ -n "$out" ] || fail "poem behind PROXY recited nothing"
weftd_log_has() { wait_log "$tmp/weftd.err" "$1" 1 10; }
weftd_log_has 'poem: 10.7.7.7:4242 says "hi from afar"' || fail "poem did not see the claimed client"

# limit = 16: a greeting longer than the readers' limit is not read as a line.
printf 'a greeting far longer than sixteen bytes\n' | timeout 10 nc -q 5 127.0.0.1 "${ports[4]}" \
    >"$tmp/poem.out" 2>&1
printf 'short one\n' | timeout 10 nc -q 5 127.0.0.1 "${ports[4]}" >/dev/null 2>&1
weftd_log_has 'says "short one"' || fail "poem-short: a short greeting was not logged"
grep -q "far longer" "$tmp/weftd.err" && fail "limit = 16 let a 41-byte line through"
[ -s "$tmp/poem.out" ] || fail "poem-short recited nothing after a long greeting"

stop_weftd || fail "weftd exited $?"
finish "ok: PROXY v1/v2 via curl and by hand, access log, refusals, timeout, poem, limit"
