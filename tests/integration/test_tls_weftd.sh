#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_tls_weftd.sh: weftd with TLS services: echo (Protocol layer) with openssl s_client,
# http with curl --cacert (ALPN h2 first, http/1.1) and its TLS lingering close, poem (stream layer) with examples/get_poetry, and a
# config error naming the file for a key that does not match its certificate.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD WEFT_SOURCE_DIR WEFT_BINARY_DIR
require_tool nc netcat-openbsd curl curl openssl openssl
keep_going=1

make_certs

write_conf() {
    cat >"$tmp/weftd.conf" <<EOF
$(weftd_section "log_level = info")

[echo-tls]
protocol = echo
listen = 127.0.0.1:$1
tls_certificate = $c/a.pem
tls_key = $c/a.key
tls_certificate = $c/b.pem
tls_key = $c/b.key
tls_handshake_timeout = 2s

[http-tls]
protocol = http
listen = 127.0.0.1:$2
tls_certificate = $c/a.pem
tls_key = $c/a.key
max_body_size = 1k
lingering_timeout = 300s
lingering_time = 600s

[poem-tls]
protocol = poem
listen = 127.0.0.1:$3
greeting_timeout = 1s
tls_certificate = $c/a.pem
tls_key = $c/a.key
EOF
}

write_conf 1 2 3
"$WEFTD" -t -c "$tmp/weftd.conf" >"$tmp/check.err" 2>&1 ||
    fail "weftd -t failed: $(cat "$tmp/check.err")"

# A key that belongs to another certificate: a config error naming the file and line.
sed "s#^tls_key = $c/a.key#tls_key = $c/b.key#" "$tmp/weftd.conf" >"$tmp/bad.conf"
if "$WEFTD" -t -c "$tmp/bad.conf" >"$tmp/bad.out" 2>&1; then
    fail "weftd -t accepted a key that does not match"
fi
grep -q "bad.conf:[0-9]*.*b.key" "$tmp/bad.out" || fail "error names no file:line: $(cat "$tmp/bad.out")"
# -T (no binding: the unit's ExecStartPre and ExecReload) loads the keys just the same.
if "$WEFTD" -T -c "$tmp/bad.conf" >"$tmp/bad.out" 2>&1; then
    fail "weftd -T accepted a key that does not match"
fi
grep -q "bad.conf:[0-9]*.*b.key" "$tmp/bad.out" || fail "-T: error names no file:line: $(cat "$tmp/bad.out")"

launch_tls() {
    write_conf "${ports[0]}" "${ports[1]}" "${ports[2]}"
    launch "$WEFTD" -c "$tmp/weftd.conf"
}
start_weftd 3 launch_tls || exit 1

tls_say "$tmp/sc.out" hello -- -connect "127.0.0.1:${ports[0]}" -CAfile "$c/ca.pem" -servername b.test
out=$(cat "$tmp/sc.out")
grep -qx hello <<<"$out" || fail "echo over TLS: $out"
grep -q "subject=.*CN = b.test" <<<"$out" || fail "SNI b.test did not pick b.test"
grep -q "Verify return code: 0" <<<"$out" || fail "certificate not verified"

out=$(curl -sS --cacert "$c/ca.pem" --resolve "a.test:${ports[1]}:127.0.0.1" \
      -o /dev/null -w '%{http_code} %{http_version}' "https://a.test:${ports[1]}/" 2>&1) || true
# http2 = on (the default): curl asks for h2 first and gets it (test_http2.sh covers h2)
[ "$out" = "200 2" ] || fail "curl over TLS: $out"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:${ports[1]}" -CAfile "$c/ca.pem" \
      -alpn h2,http/1.1 </dev/null 2>&1) || true
grep -q "ALPN protocol: h2" <<<"$out" || fail "http does not prefer ALPN h2"
out=$(timeout 10 openssl s_client -connect "127.0.0.1:${ports[1]}" -CAfile "$c/ca.pem" \
      -alpn http/1.1 </dev/null 2>&1) || true
grep -q "ALPN protocol: http/1.1" <<<"$out" || fail "http does not answer ALPN http/1.1"

out=$(timeout 20 "$WEFT_BINARY_DIR/examples/example_get_poetry" --cafile "$c/ca.pem" \
      "localhost:${ports[2]}" 2>&1) || true
grep -q "Got 1 poems" <<<"$out" && grep -q "比翼连枝当日愿" <<<"$out" || fail "get_poetry over TLS: $out"
out=$(timeout 20 "$WEFT_BINARY_DIR/examples/example_http_get" --cafile "$c/ca.pem" \
      "localhost:${ports[1]}" 2>&1) || true
grep -q "HTTP/1.1 200" <<<"$out" || fail "http_get over TLS: $out"

# An error answer to a request whose body is left unread, over TLS: the 413, then
# close_notify and the close, while the client still holds its side open; never a wait for
# lingering_timeout (300 s here), which a client reading to the end would sit through.
mkfifo "$tmp/linger.in"
timeout "$((lib_timeout + 10))" openssl s_client -quiet -connect "127.0.0.1:${ports[1]}" \
    -CAfile "$c/ca.pem" <"$tmp/linger.in" >"$tmp/linger.out" 2>&1 &
spid=$!
exec {lfd}>"$tmp/linger.in"
( printf 'POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 100000\r\n\r\n'
  head -c 4000 /dev/zero ) >&"$lfd" 2>/dev/null || true
rc=0
wait "$spid" || rc=$?
exec {lfd}>&-
[ "$rc" != 124 ] || fail "413 over TLS: the connection stayed open (lingering without close_notify)"
grep -q "HTTP/1.1 413" "$tmp/linger.out" || fail "413 over TLS: no answer: $(head -c 300 "$tmp/linger.out")"

# plaintext on the TLS port: a 400 that says why (as nginx), logged, harmless
out=$(curl -sS -w '\n%{http_code}' "http://127.0.0.1:${ports[1]}/" 2>&1) || true
[ "$(tail -n1 <<<"$out")" = 400 ] || fail "plain HTTP to the TLS port: $out"
grep -q "plain HTTP request was sent to a TLS port" <<<"$out" || fail "400 without its reason: $out"
wait_log "$tmp/weftd.err" "plain HTTP on a TLS port, answered 400" 1 10 ||
    fail "plaintext client not logged"
out=$(curl -sS --cacert "$c/ca.pem" --resolve "a.test:${ports[1]}:127.0.0.1" -o /dev/null \
      -w '%{http_code}' "https://a.test:${ports[1]}/" 2>&1) || true
[ "$out" = 200 ] || fail "weftd unhealthy after a plaintext client"

stop_weftd || fail "weftd exited $? after SIGTERM"

# A reload reads the certificate and key again (the master builds the TLS contexts): new
# files at the same paths (a renewal) are served once weftd says it reloaded.
cp "$c/a.pem" "$tmp/live.pem"
cp "$c/a.key" "$tmp/live.key"
launch_live() {
    printf '[echo-tls]\nprotocol = echo\nlisten = 127.0.0.1:%s\ntls_certificate = %s\ntls_key = %s\n' \
        "${ports[0]}" "$tmp/live.pem" "$tmp/live.key" >"$tmp/live.conf"
    launch -n live "$WEFTD" -c "$tmp/live.conf"
}
start_weftd 1 launch_live || exit 1
tls_say "$tmp/live1.out" hello -- -connect "127.0.0.1:${ports[0]}" -CAfile "$c/ca.pem"
grep -q "subject=.*CN = a.test" "$tmp/live1.out" || fail "before the reload: not a.test: $(cat "$tmp/live1.out")"
cp "$c/b.pem" "$tmp/live.pem"
cp "$c/b.key" "$tmp/live.key"
reload_weftd live || fail "the reload failed: $reload_status"
tls_say "$tmp/live2.out" hello -- -connect "127.0.0.1:${ports[0]}" -CAfile "$c/ca.pem"
grep -q "subject=.*CN = b.test" "$tmp/live2.out" || fail "after the reload: not b.test: $(cat "$tmp/live2.out")"
grep -qx hello "$tmp/live2.out" || fail "no echo over the new certificate"
stop_weftd live || fail "weftd exited $? after SIGTERM"
finish "weftd TLS: echo, http, poem, config errors, certificates read again at a reload"
