#!/bin/bash
# SPDX-License-Identifier: MIT
# test_http_curl.sh: the http plugin in the real weftd, driven by the real curl (and nc -C):
# GET, HEAD, 404, 304 with If-None-Match (no Content-Length), 412 for If-Match and
# If-Unmodified-Since, a range, two URLs on one connection, --http1.0,
# the built-in test page, 100-continue answered at once, a lingering close after a 413.
set -u
. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_tool curl curl nc netcat-openbsd
fails=0
check() {   # check NAME COMMAND...: run, count a failure
    if "${@:2}"; then echo "ok - $1"; else echo "not ok - $1"; fails=$((fails + 1)); fi
}

mkdir -p "$tmp/root/sub"
printf 'hello, world\n' > "$tmp/root/hello.txt"
printf '<p>sub</p>\n' > "$tmp/root/sub/index.html"
seq 1 20000 > "$tmp/root/numbers.txt"

launch_http() {
    cat > "$tmp/weftd.conf" <<CONF
$(weftd_section)
[files]
protocol = http
listen = 127.0.0.1:${ports[0]}
root = $tmp/root
[page]
protocol = http
listen = 127.0.0.1:${ports[1]}
keepalive_timeout = 60s
max_body_size = 1k
lingering_timeout = 2s
CONF
    launch "$WEFTD" -c "$tmp/weftd.conf"
}
start_weftd 2 launch_http || exit 1
port=${ports[0]} port2=${ports[1]}
base="http://127.0.0.1:$port"

get_ok() { [ "$(curl -s "$base/hello.txt")" = "hello, world" ]; }
check "GET returns the file" get_ok

head_ok() {
    local h; h=$(curl -s -I "$base/hello.txt")
    grep -q '^HTTP/1.1 200 OK' <<<"$h" && grep -qi '^content-length: 13' <<<"$h" &&
        grep -qi '^etag: "' <<<"$h" && grep -qi '^last-modified: ' <<<"$h" &&
        grep -qi '^date: ' <<<"$h" && grep -qi '^server: weft' <<<"$h" &&
        grep -qi '^content-type: text/plain' <<<"$h"
}
check "HEAD gives the headers" head_ok

notfound() { [ "$(curl -s -o /dev/null -w '%{http_code}' "$base/nope.txt")" = 404 ]; }
check "a missing file is 404" notfound

not_modified() {
    local etag; etag=$(curl -s -I "$base/hello.txt" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
    [ -n "$etag" ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$base/hello.txt")" = 304 ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'If-None-Match: "other"' "$base/hello.txt")" = 200 ]
}
check "If-None-Match gives 304" not_modified

ims() {
    local lm; lm=$(curl -s -I "$base/hello.txt" | tr -d '\r' | sed -n 's/^[Ll]ast-[Mm]odified: //p')
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-Modified-Since: $lm" "$base/hello.txt")" = 304 ]
}
check "If-Modified-Since gives 304" ims

no_length_304() {   # RFC 9110 §8.6: a 304 carries no Content-Length (ours would be wrong)
    local etag h
    etag=$(curl -s -I "$base/hello.txt" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
    h=$(curl -s -D - -o /dev/null -H "If-None-Match: $etag" "$base/hello.txt" | tr -d '\r')
    grep -q '^HTTP/1.1 304 ' <<<"$h" && ! grep -qi '^content-length:' <<<"$h" &&
        grep -qi "^etag: $etag" <<<"$h"
}
check "a 304 has no Content-Length" no_length_304

preconditions() {   # RFC 9110 §13.1.1, §13.1.4, §13.2.2: 412 when If-Match/If-Unmodified-Since fail
    local etag lm code
    etag=$(curl -s -I "$base/hello.txt" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')
    lm=$(curl -s -I "$base/hello.txt" | tr -d '\r' | sed -n 's/^[Ll]ast-[Mm]odified: //p')
    code() { curl -s -o /dev/null -w '%{http_code}' "$@" "$base/hello.txt"; }
    [ "$(code -H "If-Match: $etag")" = 200 ] || { echo "# If-Match: ours: not 200"; return 1; }
    [ "$(code -H 'If-Match: "other"')" = 412 ] || { echo "# If-Match: other: not 412"; return 1; }
    [ "$(code -H "If-Match: W/$etag")" = 412 ] || { echo "# If-Match: weak: not 412"; return 1; }
    [ "$(code -H 'If-Match: *')" = 200 ] || { echo "# If-Match: *: not 200"; return 1; }
    [ "$(code -H 'If-Match: "other"' -r 0-4)" = 412 ] || { echo "# If-Match with Range: not 412"; return 1; }
    [ "$(code -H "If-Match: $etag" -r 0-4)" = 206 ] || { echo "# If-Match ours with Range: not 206"; return 1; }
    [ "$(code -H "If-Unmodified-Since: $lm")" = 200 ] || { echo "# IUS = mtime: not 200"; return 1; }
    [ "$(code -H 'If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT')" = 412 ] ||
        { echo "# IUS in 1994: not 412"; return 1; }
    # If-Match wins over If-Unmodified-Since; a failed precondition wins over If-None-Match.
    [ "$(code -H "If-Match: $etag" -H 'If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT')" = 200 ] ||
        { echo "# If-Match + old IUS: not 200"; return 1; }
    [ "$(code -H 'If-Match: "other"' -H "If-None-Match: $etag")" = 412 ] ||
        { echo "# failed If-Match + If-None-Match: not 412"; return 1; }
}
check "If-Match and If-Unmodified-Since give 412 when they fail" preconditions

big_heads() {       # a browser with many cookies: 20 KB of Cookie is served, 40 KB gets 431
    local c20 c40
    c20=$(printf 'a%.0s' $(seq 1 20000)) c40=$c20$c20
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: s=$c20" "$base/hello.txt")" = 200 ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: s=$c40" "$base/hello.txt")" = 431 ]
}
dot_segments() {    # RFC 3986 §5.2.4: resolved, never above root (curl --path-as-is sends them as is)
    [ "$(curl -s --path-as-is "$base/sub/../hello.txt")" = "hello, world" ] &&
    [ "$(curl -s --path-as-is "$base/sub/%2e%2e/hello.txt")" = "hello, world" ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' --path-as-is "$base/sub/../../hello.txt")" = 403 ]
}
dir_redirect_query() {   # a directory without its slash: 301 to it, the query kept
    local h
    h=$(curl -s -D - -o /dev/null "$base/sub?a=1&b=2" | tr -d '\r')
    grep -q '^HTTP/1.1 301 ' <<<"$h" && grep -qi '^location: /sub/?a=1&b=2$' <<<"$h"
}
check "a directory redirect keeps the query string" dir_redirect_query

http_get_keepalive() {  # examples/http_get reads by Content-Length: it does not wait for
    # the server to close (keepalive_timeout 60 s here, longer than its own --timeout 20)
    local out
    out=$(timeout 15 "$WEFT_BINARY_DIR/examples/example_http_get" --timeout 20 \
          "127.0.0.1:$port2" 2>&1) || { echo "# http_get: exit $?: $out"; return 1; }
    grep -q "127.0.0.1:$port2: HTTP/1.1 200 OK ([0-9]* lines, [0-9]* bytes)$" <<<"$out" ||
        { echo "# http_get: $out"; return 1; }
}
check "example_http_get reads a keep-alive response by its Content-Length" http_get_keepalive

check "dot segments are removed: /sub/../hello.txt is /hello.txt; above root 403" dot_segments

check "max_header_size is 32k by default: 20 KB of cookies served, 40 KB 431" big_heads

range() {
    [ "$(curl -s -r 0-4 "$base/hello.txt")" = hello ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' -r 0-4 "$base/hello.txt")" = 206 ] &&
    [ "$(curl -s -r 7- "$base/hello.txt")" = world ] &&
    [ "$(curl -s -o /dev/null -w '%{http_code}' -r 100-200 "$base/hello.txt")" = 416 ] &&
    [ "$(curl -s -r -6 "$base/numbers.txt")" = 20000 ]
}
check "byte ranges: 206 and 416" range

reuse() {
    local v; v=$(curl -sv "$base/hello.txt" "$base/sub/" 2>&1)
    grep -q 'Re-using existing connection' <<<"$v" && grep -q '<p>sub</p>' <<<"$v" &&
        grep -q 'hello, world' <<<"$v"
}
check "two URLs on one connection" reuse

http10() {
    local v; v=$(curl -s -i --http1.0 "$base/hello.txt")
    grep -q '^HTTP/1.0 200 OK' <<<"$v" && grep -qi '^connection: close' <<<"$v" &&
        grep -q 'hello, world' <<<"$v"
}
check "--http1.0 is answered in 1.0 and closed" http10

testpage() {
    [ "$(curl -s "http://127.0.0.1:$port2/")" = '<h1>Web Server Test</h1>' ] &&
    curl -s -I "http://127.0.0.1:$port2/" | grep -qi '^content-type: text/html; charset=utf-8'
}
check "no root: the built-in test page" testpage

netcat() {
    local a b
    a=$(printf 'GET / HTTP/1.1\nHost: x\n\n' | nc -q 3 127.0.0.1 "$port2")
    b=$(printf 'GET / HTTP/1.1\nHost: x\nConnection: close\n\n' | nc -C -q 3 127.0.0.1 "$port2")
    grep -q '400 Bad Request' <<<"$a" && grep -q 'nc -C' <<<"$a" &&
        grep -q 'Web Server Test' <<<"$b"
}
check "plain nc gets a hint, nc -C the page" netcat

# RFC 9112 §9.6: after an error answer to a request whose bytes are not all read, weftd
# shuts down writing and reads on before it closes; a close at once with 4 MiB unread makes
# the kernel reset the connection, and curl may see "Connection reset" instead of the 413.
head -c 4194304 /dev/zero >"$tmp/upload"
lingering() {
    local i out
    for i in 1 2 3 4 5; do
        out=$(curl -sS -o /dev/null -w '%{http_code}' -H 'Expect:' --data-binary @"$tmp/upload" \
              "http://127.0.0.1:$port2/" 2>&1)
        [ "$out" = 413 ] || { echo "upload $i: $out"; return 1; }
    done
}
check "413 to a 4 MiB upload arrives, 5 times" lingering
# and the nc client that sends garbage and waits: the 400 comes, then the end
garbage_fin() {
    local a
    a=$( (printf '\x01GARBAGE\r\n\r\n'; head -c 65536 /dev/zero) | timeout 10 nc -q 5 127.0.0.1 "$port2")
    grep -q '^HTTP/1.1 400' <<<"$a"
}
check "garbage gets its 400 and the end of the stream" garbage_fin

st=0
stop_weftd || st=$?
check "weftd exits 0 on SIGTERM" [ "$st" -eq 0 ]
[ "$fails" -eq 0 ] || fail "$fails check(s) failed"
