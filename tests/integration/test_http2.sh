#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_http2.sh: HTTP/2 in the http plugin with real clients: curl --http2 over TLS (ALPN h2)
# and curl --http2-prior-knowledge on a plain port (h2c), nghttp -nv for the SETTINGS; every
# static feature of the HTTP/1.1 path (files, index, listing, redirect, HEAD, validators,
# ranges, error pages, 405, the access log's protocol), a 6 MiB file byte-checked through
# flow control, several streams on one connection; http2 = off (ALPN offers http/1.1 only,
# a preface gets a clean 505); Upgrade: h2c declined (served as HTTP/1.1); hostile frames
# (h2_frames.py: rapid reset, CONTINUATION, PING and SETTINGS floods, a 48 KiB header
# list, a POST body that never ends, DATA on stream 0, CONTINUATIONs trickled past
# header_timeout; floods of WINDOW_UPDATE, PRIORITY, empty DATA, RST_STREAM, malformed
# HEADERS, unknown frames, DATA on a closed stream and read PINGs past
# http2_max_control_frames: GOAWAY(ENHANCE_YOUR_CALM) and one log line each; a window
# kept shut past http2_send_timeout: RST_STREAM, then GOAWAY; a client reading nothing of
# a 256 MiB file: the worker's RSS grows by less than 32 MiB, and the client is dropped
# after http2_send_timeout); GOAWAY and a finished download across a reload and a SIGTERM.
set -euo pipefail
[ -z "${H2_TRACE:-}" ] || { PS4='+ $(date +%s.%N) '; set -x; }

. "$(dirname "$0")/lib.sh"
require_env WEFTD WEFT_SOURCE_DIR
require_tool curl curl nghttp nghttp2-client python3 python3 openssl openssl
keep_going=1

make_certs
mkdir -p "$tmp/root/dir" "$tmp/root/list"
head -c $((6 * 1024 * 1024 + 4321)) /dev/urandom >"$tmp/root/big.bin"
truncate -s 256M "$tmp/root/huge.bin"      # sparse: read as zeros, costs no disk
printf 'hello over h2\n' >"$tmp/root/hello.txt"
printf '<p>index</p>\n' >"$tmp/root/dir/index.html"
printf 'x\n' >"$tmp/root/list/a b.txt"
dd if="$tmp/root/big.bin" of="$tmp/range.want" bs=1000 skip=1000 count=3000 status=none

launch_http() {
    cat >"$tmp/weftd.conf" <<EOC
$(weftd_section "log_level = info" "workers = 1")

[plain]
protocol = http
listen = 127.0.0.1:${ports[0]}
root = $tmp/root
autoindex = on
access_log = $tmp/access.log

[tls]
protocol = http
listen = 127.0.0.1:${ports[1]}
root = $tmp/root
autoindex = on
tls_certificate = $c/a.pem
tls_key = $c/a.key
http2_max_concurrent_streams = 100

[h1plain]
protocol = http
listen = 127.0.0.1:${ports[2]}
root = $tmp/root
http2 = off

[h1tls]
protocol = http
listen = 127.0.0.1:${ports[3]}
root = $tmp/root
http2 = off
tls_certificate = $c/a.pem
tls_key = $c/a.key

[slow]
protocol = http
listen = 127.0.0.1:${ports[4]}
root = $tmp/root
header_timeout = 1s
keepalive_timeout = 2s
http2_send_timeout = 1s
EOC
    launch "$WEFTD" -c "$tmp/weftd.conf"
}
start_weftd 5 launch_http || exit 1
plain="http://127.0.0.1:${ports[0]}"
tls="https://a.test:${ports[1]}"
tlsopt=(--cacert "$c/ca.pem" --resolve "a.test:${ports[1]}:127.0.0.1" --http2)
h2c=(--http2-prior-knowledge)

# cu OPTS... URL: curl printing "<http_version> <code>", the body in $tmp/body, the head
# in $tmp/head
cu() {
    rm -f "$tmp/body" "$tmp/head"
    curl -sS -o "$tmp/body" -D "$tmp/head" -w '%{http_version} %{http_code}' "$@" 2>&1 || true
}
hdr() {     # hdr NAME: that header's value in $tmp/head
    awk -v n="$1" 'BEGIN { IGNORECASE = 1 } index(tolower($0), tolower(n) ":") == 1 {
        sub(/^[^:]*:[ \t]*/, ""); sub(/\r$/, ""); print; exit }' "$tmp/head"
}

for mode in tls h2c; do
    if [ $mode = tls ]; then base=$tls; opt=("${tlsopt[@]}"); else base=$plain; opt=("${h2c[@]}"); fi
    out=$(cu "${opt[@]}" "$base/hello.txt")
    [ "$out" = "2 200" ] && [ "$(cat "$tmp/body")" = "hello over h2" ] ||
        fail "$mode: GET /hello.txt: $out"
    [ "$(hdr content-type)" = "text/plain; charset=utf-8" ] || fail "$mode: content-type $(hdr content-type)"
    [ "$(hdr content-length)" = 14 ] || fail "$mode: content-length $(hdr content-length)"
    grep -qi '^connection:' "$tmp/head" && fail "$mode: a Connection header in HTTP/2"
    etag=$(hdr etag)
    lastmod=$(hdr last-modified)
    [ -n "$etag" ] && [ -n "$lastmod" ] && [ "$(hdr accept-ranges)" = bytes ] ||
        fail "$mode: validators missing: $(tr -d '\r' <"$tmp/head")"

    out=$(cu "${opt[@]}" -I -w '%{http_version} %{http_code} %{size_download}' "$base/hello.txt")
    [ "$out" = "2 200 0" ] && [ "$(hdr content-length)" = 14 ] ||
        fail "$mode: HEAD: $out, length $(hdr content-length)"
    out=$(cu "${opt[@]}" -H "If-None-Match: $etag" "$base/hello.txt")
    [ "$out" = "2 304" ] && [ -z "$(hdr content-length)" ] && [ "$(hdr etag)" = "$etag" ] ||
        fail "$mode: If-None-Match: $out"
    out=$(cu "${opt[@]}" -H "If-Modified-Since: $lastmod" "$base/hello.txt")
    [ "$out" = "2 304" ] || fail "$mode: If-Modified-Since: $out"
    out=$(cu "${opt[@]}" -H 'If-Match: "nope"' "$base/hello.txt")
    [ "$out" = "2 412" ] || fail "$mode: If-Match: $out"
    out=$(cu "${opt[@]}" -r 6-7 "$base/hello.txt")
    [ "$out" = "2 206" ] && [ "$(cat "$tmp/body")" = "ov" ] &&
        [ "$(hdr content-range)" = "bytes 6-7/14" ] || fail "$mode: range: $out $(hdr content-range)"
    out=$(cu "${opt[@]}" -r 100- "$base/hello.txt")
    [ "$out" = "2 416" ] && [ "$(hdr content-range)" = "bytes */14" ] || fail "$mode: 416: $out"

    out=$(cu "${opt[@]}" "$base/nothing.txt")
    [ "$out" = "2 404" ] && grep -q '<h1>404 Not Found</h1>' "$tmp/body" &&
        [ "$(hdr content-type)" = "text/html; charset=utf-8" ] || fail "$mode: 404: $out"
    out=$(cu "${opt[@]}" "$base/dir")
    [ "$out" = "2 301" ] && [ "$(hdr location)" = "/dir/" ] || fail "$mode: 301: $out $(hdr location)"
    out=$(cu "${opt[@]}" "$base/dir/")
    [ "$out" = "2 200" ] && [ "$(cat "$tmp/body")" = "<p>index</p>" ] || fail "$mode: index: $out"
    out=$(cu "${opt[@]}" "$base/list/")
    [ "$out" = "2 200" ] && grep -q 'href="a%20b.txt">a b.txt<' "$tmp/body" ||
        fail "$mode: autoindex: $out"
    out=$(cu "${opt[@]}" "$base/../../etc/passwd" --path-as-is)
    [ "$out" = "2 403" ] || fail "$mode: traversal: $out"
    out=$(cu "${opt[@]}" -X POST -d 'a=b' "$base/hello.txt")
    [ "$out" = "2 405" ] && [ "$(hdr allow)" = "GET, HEAD" ] || fail "$mode: POST: $out"

    # a 6 MiB file through flow control, a range inside it, and several on one connection
    out=$(cu "${opt[@]}" "$base/big.bin")
    [ "$out" = "2 200" ] && cmp -s "$tmp/body" "$tmp/root/big.bin" ||
        fail "$mode: big.bin not intact: $out, $(stat -c %s "$tmp/body" 2>/dev/null)"
    out=$(cu "${opt[@]}" -r 1000000-3999999 "$base/big.bin")
    [ "$out" = "2 206" ] && cmp -s "$tmp/body" "$tmp/range.want" || fail "$mode: big range: $out"
    rm -f "$tmp"/par*
    out=$(curl -sS --no-progress-meter "${opt[@]}" --parallel --parallel-immediate -w '%{num_connects} ' \
          -o "$tmp/par1" "$base/big.bin" -o "$tmp/par2" "$base/big.bin" \
          -o "$tmp/par3" "$base/hello.txt" 2>&1) || true
    cmp -s "$tmp/par1" "$tmp/root/big.bin" && cmp -s "$tmp/par2" "$tmp/root/big.bin" &&
        cmp -s "$tmp/par3" "$tmp/root/hello.txt" || fail "$mode: parallel streams not intact ($out)"
    case $out in *2*) fail "$mode: parallel streams used more than one connection: $out" ;; esac
done

# the access log names the protocol, as nginx does
grep -q '"GET /hello.txt HTTP/2.0" 200 14 ' "$tmp/access.log" ||
    fail "no HTTP/2.0 line in the access log: $(head -n 3 "$tmp/access.log")"

# nghttp: our SETTINGS, a GET
nghttp -nv "$plain/hello.txt" >"$tmp/nghttp.out" 2>&1 || fail "nghttp failed: $(tail -n 5 "$tmp/nghttp.out")"
grep -q 'SETTINGS_MAX_CONCURRENT_STREAMS(0x03):128' "$tmp/nghttp.out" &&
    grep -q 'SETTINGS_MAX_HEADER_LIST_SIZE(0x06):32768' "$tmp/nghttp.out" &&
    grep -q ':status: 200' "$tmp/nghttp.out" || fail "nghttp: $(grep -i 'settings\|status' "$tmp/nghttp.out")"
nghttp -nv --cert "$c/a.pem" "https://127.0.0.1:${ports[1]}/hello.txt" >"$tmp/nghttp2.out" 2>&1 || true
grep -q 'SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100' "$tmp/nghttp2.out" &&
    grep -q ':status: 200' "$tmp/nghttp2.out" || fail "nghttp over TLS: $(tail -n 20 "$tmp/nghttp2.out")"

# http2 = off: ALPN offers http/1.1 only; the preface gets a 505 that leaks no parser text
out=$(cu --cacert "$c/ca.pem" --resolve "a.test:${ports[3]}:127.0.0.1" --http2 \
      "https://a.test:${ports[3]}/hello.txt")
[ "$out" = "1.1 200" ] || fail "http2 = off over TLS: $out"
# (python, not nc -q, which waits out its -q after the server's close)
python3 - "${ports[2]}" >"$tmp/pri.out" 2>&1 <<'EOP' || true
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
s.shutdown(socket.SHUT_WR)
while True:
    b = s.recv(65536)
    if not b:
        break
    sys.stdout.write(b.decode("latin-1"))
EOP
head -n 1 "$tmp/pri.out" | grep -q '^HTTP/1.1 505 ' || fail "preface, http2 = off: $(head -n 1 "$tmp/pri.out")"
grep -qi 'pause\|upgrade' "$tmp/pri.out" && fail "the preface's answer leaks the parser: $(cat "$tmp/pri.out")"
# Upgrade: h2c is declined: the answer is HTTP/1.1, on a service with http2 on too
out=$(cu --http2 "$plain/hello.txt")
[ "$out" = "1.1 200" ] || fail "Upgrade: h2c: $out"
# and plain HTTP/1.1 still works on the h2c port
out=$(cu "$plain/hello.txt")
[ "$out" = "1.1 200" ] || fail "HTTP/1.1 on the h2c port: $out"

# hostile sequences (python3-h2's hyperframe and hpack build the frames): nghttp2's
# defences and our header list limit; weftd serves on after each
frames=(/usr/bin/python3 "$WEFT_SOURCE_DIR/tests/integration/h2_frames.py" "${ports[0]}")
for case in big-headers rapid-reset continuation ping-flood settings-flood endless-body garbage; do
    out=$("${frames[@]}" "$case" 2>&1) || fail "$case: $out"
done
# control frame floods, read as they come: our limit (the ones nghttp2 has none for),
# each one logged once as such
calm='past http2_max_control_frames: GOAWAY(ENHANCE_YOUR_CALM), closing'
n0=$(grep -c "$calm" "$tmp/weftd.err" || true)
for case in window-flood priority-flood empty-data rst-closed bad-headers unknown-flood closed-data \
            ping-read; do
    out=$("${frames[@]}" "$case" 2>&1) || fail "$case: $out"
done
# (the six that only our limit stops; rst-closed and ping-read may meet nghttp2's reset
# rate or ACK limit first)
wait_log "$tmp/weftd.err" "$calm" $((n0 + 6)) ||
    fail "fewer than 6 floods logged as such: $(grep -c "$calm" "$tmp/weftd.err") lines"
slow=(/usr/bin/python3 "$WEFT_SOURCE_DIR/tests/integration/h2_frames.py" "${ports[4]}")
out=$("${slow[@]}" trickle 2>&1) || fail "trickle: $out"
# the stalls take seconds each: side by side. A reader that reads nothing keeps the file
# where it is: the worker's memory stays put.
worker=$(ps -o pid= --ppid "${sv_pid[weftd]}" | head -n 1)
"${slow[@]}" zero-window >"$tmp/zero-window.out" 2>&1 &
zw=$!
started $zw
"${slow[@]}" slow-close /huge.bin $((256 << 20)) >"$tmp/slow-close.out" 2>&1 &
sc=$!
started $sc
"${frames[@]}" slow-reader /huge.bin "$worker" >"$tmp/slow-reader.out" 2>&1 &
sr=$!
started $sr
wait $zw || fail "zero-window: $(cat "$tmp/zero-window.out")"
wait $sc || fail "slow-close: $(cat "$tmp/slow-close.out")"
wait $sr || fail "slow-reader: $(cat "$tmp/slow-reader.out")"
grep -q 'stream 1 moved no byte for .*: resetting it' "$tmp/weftd.err" ||
    fail "zero-window: no line says why stream 1 was reset"
out=$(cu "${h2c[@]}" "$plain/hello.txt")
[ "$out" = "2 200" ] || fail "h2c after the hostile sequences: $out"

# drain_during WHAT: a download held by flow control while WHAT happens (reload_weftd, or
# SIGTERM), which must bring a GOAWAY(NO_ERROR) naming the stream, then the whole file
drain_during() {
    local line=
    coproc DRAIN { "${frames[@]}" drain /big.bin "$(stat -c %s "$tmp/root/big.bin")" 2>&1; }
    read -r -t "$lib_timeout" line <&"${DRAIN[0]}" || true
    [ "$line" = started ] || { fail "drain ($1): the download did not start: $line"; return; }
    if [ "$1" = reload ]; then
        reload_weftd || fail "reload failed: $reload_status"
    else
        kill -TERM "${sv_pid[weftd]}"
    fi
    line=
    read -r -t "$lib_timeout" line <&"${DRAIN[0]}" || true
    case $line in ok*) ;; *) fail "drain ($1): $line" ;; esac
    wait "$DRAIN_PID" 2>/dev/null || true
}
drain_during reload
drain_during sigterm
wait_event weftd 'EXIT=*' "$lib_timeout" || fail "weftd did not exit after SIGTERM"
[ "${sv_exit[weftd]:-}" = 0 ] || fail "weftd exited with ${sv_exit[weftd]:-?} after the drain"
wait_event weftd DONE 10 || true
sv_forget weftd
finish "http2: TLS and h2c, static features, flow control, http2 = off, floods, GOAWAY drains"
