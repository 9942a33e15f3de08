#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_proxy_limits.sh: connections still waiting for their PROXY header are bounded. Each
# counts in max_connections from accept() on, so N silent ones stop the worker accepting;
# each is closed after proxy_timeout, logged with its peer; then a real client (curl
# --haproxy-protocol), held in the listen backlog meanwhile, is served. proxy_timeout's
# config errors.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_tool curl curl
keep_going=1

mkdir -p "$tmp/www"
printf 'through at last\n' >"$tmp/www/hello.txt"
timeout_s=4

check_bad() {   # check_bad NAME WANT (stdin: the service lines)
    { printf '[weftd]\n%s\n[s]\nprotocol = echo\nlisten = 127.0.0.1:9\n' \
        "${WEFT_PLUGIN_DIR:+plugin_dir = $WEFT_PLUGIN_DIR}"; cat; } >"$tmp/$1.conf"
    if "$WEFTD" -t -c "$tmp/$1.conf" >"$tmp/$1.out" 2>&1; then
        fail "$1: weftd -t accepted it"
    elif ! grep -q "$1.conf:[0-9]*: \[s\] $2" "$tmp/$1.out"; then
        fail "$1: no \"$2\" error: $(cat "$tmp/$1.out")"
    fi
}
printf 'proxy_protocol = v1\nproxy_trusted = any\nproxy_timeout = soon\n' |
    check_bad badpt "proxy_timeout: bad duration"
printf 'proxy_protocol = v1\nproxy_trusted = any\nproxy_timeout = 0\n' |
    check_bad zeropt "proxy_timeout: must be more than 0"
printf 'proxy_timeout = 5s\n' | check_bad ptonly "proxy_timeout: has no effect"

launch_lim() {
    cat >"$tmp/weftd.conf" <<EOF
$(weftd_section "workers = 1" "max_connections = 3")

[web]
protocol = http
listen = 127.0.0.1:${ports[0]}
root = $tmp/www
proxy_protocol = v1
proxy_trusted = 127.0.0.1
proxy_timeout = ${timeout_s}s
EOF
    launch "$WEFTD" -c "$tmp/weftd.conf"
}
start_weftd 1 launch_lim || exit 1
log=$tmp/weftd.err

# Three connections that never send their header fill max_connections = 3.
t0=$(date +%s%N)
exec 3<>"/dev/tcp/127.0.0.1/${ports[0]}" 4<>"/dev/tcp/127.0.0.1/${ports[0]}" \
     5<>"/dev/tcp/127.0.0.1/${ports[0]}"
wait_log "$log" "max_connections (3) reached" 1 ||
    fail "three silent PROXY connections did not reach max_connections = 3"

# A real client now waits in the backlog: it is not served while the silent ones hold
# every slot. (Checked only while they surely still do: a slow machine skips the check.)
curl -sS --max-time 30 --haproxy-protocol -o "$tmp/curl.out" -w '%{http_code}' \
    "http://127.0.0.1:${ports[0]}/hello.txt" >"$tmp/curl.code" 2>"$tmp/curl.err" &
cpid=$!
pids+=("$cpid")
sleep 1
if [ $((($(date +%s%N) - t0) / 1000000)) -lt $((timeout_s * 1000 - 1500)) ]; then
    kill -0 "$cpid" 2>/dev/null || fail "curl was served while max_connections was reached"
else
    echo "note: the machine is slow; the 'curl is held' check is skipped" >&2
fi

# Each silent connection is closed (EOF) after proxy_timeout, not before.
for fd in 3 4 5; do
    read -r -t 15 -u "$fd" _
    rc=$?       # 1: EOF; above 128: read timed out
    [ "$rc" = 1 ] || fail "silent connection $fd: read ended with $rc, not EOF"
done
dt=$((($(date +%s%N) - t0) / 1000000))
exec 3<&- 4<&- 5<&-
[ "$dt" -ge $((timeout_s * 1000 - 200)) ] ||
    fail "silent connections closed after $dt ms, before proxy_timeout (${timeout_s} s)"
wait_log "$log" "no PROXY header within $((timeout_s * 1000)) ms; connection closed" 3 ||
    fail "the three timeouts were not logged with their peer"

# Then the real client gets in.
wait "$cpid"
crc=$?
[ "$crc" = 0 ] && [ "$(cat "$tmp/curl.code")" = 200 ] ||
    fail "curl after the timeouts: rc $crc, status $(cat "$tmp/curl.code"): $(cat "$tmp/curl.err")"
[ "$(cat "$tmp/curl.out")" = "through at last" ] || fail "curl got: $(cat "$tmp/curl.out")"
wait_log "$log" "below max_connections: accepting again" 1 || fail "no 'accepting again' line"
# In that order: the limit, then a timeout before any "accepting again", three timeouts in
# all. The three silent connections were accepted a moment apart, so their timers may fire
# in different loop iterations: the first frees a slot that curl, waiting in the backlog,
# takes at once (the limit is reached again), and the others follow.
order=$(grep -n -e "max_connections (3) reached" -e "no PROXY header within" \
             -e "accepting again" "$log" | sed 's/:.*\(reached\|within\|again\).*/ \1/')
kinds=$(awk '{print $2}' <<<"$order")
[ "$(sed -n 1p <<<"$kinds")" = reached ] && [ "$(sed -n 2p <<<"$kinds")" = within ] &&
    [ "$(grep -cx within <<<"$kinds")" = 3 ] || fail "log order: $order"
grep -q "^.*127\.0\.0\.1:[0-9]*: no PROXY header within" "$log" ||
    fail "the timeout line does not name the peer"

stop_weftd || fail "weftd exited $?"
finish "ok: silent PROXY connections count in max_connections, time out after ${timeout_s} s, logged; curl then served"
