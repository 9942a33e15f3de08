#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_crawler_http.sh: the selector crawler (examples/crawler.c: raw non-blocking sockets
# on weft_add_reader/weft_add_writer, no tasks) against the real weftd's http plugin: every
# page comes back 200 with the whole response (the size curl sees for the same request,
# headers included), a missing one 404 and a directory without an index 403, each with the
# status line curl gets, in the order asked whatever order they finish.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_env WEFT_BINARY_DIR
require_tool curl curl
keep_going=1

crawler=$WEFT_BINARY_DIR/examples/example_crawler
[ -x "$crawler" ] || { fail "no $crawler (build the examples)"; exit 1; }

mkdir -p "$tmp/www/blog"
printf '<html><body><p>home</p></body></html>\n' >"$tmp/www/index.html"
printf '<html><body><p>about us</p></body></html>\n' >"$tmp/www/about.html"
head -c 200000 /dev/urandom | base64 >"$tmp/www/blog/big.txt"

launch_weftd() {
    cat >"$tmp/weftd.conf" <<CONF
[weftd]
workers = 2
${WEFT_PLUGIN_DIR:+plugin_dir = $WEFT_PLUGIN_DIR}

[web]
protocol = http
listen = 127.0.0.1:${ports[0]}
root = $tmp/www
CONF
    launch "$WEFTD" -c "$tmp/weftd.conf"
}

start_weftd 1 launch_weftd || exit 1
paths=(/ /about.html /blog/big.txt /missing.html /blog/)
wants=("200 OK" "200 OK" "200 OK" "404 Not Found" "403 Forbidden")
timeout 30 "$crawler" "127.0.0.1:${ports[0]}" "${paths[@]}" >"$tmp/crawler.out" 2>"$tmp/crawler.err"
rc=$?
logs+=("$tmp/crawler.out" "$tmp/crawler.err")
[ "$rc" = 0 ] || fail "the crawler exited with status $rc"

# The whole HTTP/1.0 response curl gets for the same path (headers and body).
curl_get() {
    curl -s --http1.0 -i -o "$tmp/curl.out" "http://127.0.0.1:${ports[0]}$1"
}

i=0
while IFS= read -r line; do
    p=${paths[i]:-}
    want="HTTP/1.0 ${wants[i]:-}"
    [[ $line =~ ^(/[^:]*):\ (.*)\ \(([0-9]+)\ bytes\)$ ]] || { fail "line $((i + 1)): \"$line\""; i=$((i + 1)); continue; }
    [ "${BASH_REMATCH[1]}" = "$p" ] || fail "line $((i + 1)) is for ${BASH_REMATCH[1]}, want $p (the order asked)"
    [ "${BASH_REMATCH[2]}" = "$want" ] || fail "$p: \"${BASH_REMATCH[2]}\", want \"$want\""
    got=("${BASH_REMATCH[@]}")
    curl_get "$p" || fail "curl $p failed"
    s=$(wc -c <"$tmp/curl.out")
    status=$(head -n 1 "$tmp/curl.out" | tr -d '\r')
    [ "${got[2]}" = "$status" ] || fail "$p: \"${got[2]}\", curl got \"$status\""
    [ "${got[3]}" = "$s" ] || fail "$p: ${got[3]} bytes, curl got $s"
    i=$((i + 1))
done < <(head -n "${#paths[@]}" "$tmp/crawler.out")
[ "$i" = "${#paths[@]}" ] || fail "the crawler printed $i lines for ${#paths[@]} paths"
grep -qE "^${#paths[@]} of ${#paths[@]} fetched in [0-9.]+ s$" "$tmp/crawler.out" ||
    fail "no summary line: $(tail -n 1 "$tmp/crawler.out")"
stop_weftd || fail "weftd exited with status $? on SIGTERM"
finish "the crawler fetched ${#paths[@]} paths from weftd's http plugin"
