#!/bin/bash
# SPDX-License-Identifier: MIT
# test_tls_sclient.sh: a weft TLS echo server (the library's, from unit_test_tls serve)
# against real clients: openssl s_client (TLS 1.3 and 1.2, ALPN, SNI, close_notify,
# resumption, client certificates, STARTTLS with -starttls smtp), and nc (plaintext on the TLS port, handshake timeout).
set -u
. "$(dirname "$0")/lib.sh"
require_env WEFT_SOURCE_DIR WEFT_BINARY_DIR
require_tool openssl openssl nc netcat-openbsd
bin=$WEFT_BINARY_DIR/tests/unit_test_tls
src=$WEFT_SOURCE_DIR
d=$tmp
fails=0
ok() { echo "ok - $1"; }
bad() { echo "FAIL - $1"; fails=$((fails + 1)); }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }

bash "$src/tests/integration/tls_certs.sh" "$d" >"$d/certs.log" 2>&1 || fail "cannot make certificates"

# serve NAME [key=value...]: start a server (it binds port 0 itself and prints the port
# once it listens), set $port; its log is $d/NAME.err.
serve() {
    local name=$1; shift
    launch -n "$name" -s "$bin" serve "$d" "$@"
    wait_event "$name" 'OUT=[0-9]*' 20 || fail "server $name did not start"
    port=${sv_line#OUT=}
}

# talk ARGS...: hello, its echo awaited, QUIT (the server answers BYE and closes); prints s_client's output
talk() {
    tls_say "$tmp/talk.out" hello QUIT -- -connect "127.0.0.1:$port" -CAfile "$d/ca.pem" -ign_eof "$@"
    cat "$tmp/talk.out"
}

serve main
out=$(talk -tls1_3 -servername a.test -alpn echo)
check "TLS 1.3 handshake, verified" 'grep -q "Protocol  : TLSv1.3" <<<"$out" && grep -q "Verify return code: 0" <<<"$out"'
check "echo over TLS 1.3" 'grep -qx "hello" <<<"$out" && grep -qx "BYE" <<<"$out"'
check "ALPN echo negotiated" 'grep -q "ALPN protocol: echo" <<<"$out"'
# s_client prints "closed" only for a close_notify; a bare TCP close is an error for it
check "close_notify received on close" 'grep -qx "closed" <<<"$out" && ! grep -q "unexpected eof" <<<"$out"'
check "SNI a.test gets a.test's certificate" 'grep -q "subject=.*CN = a.test" <<<"$out"'

out=$(talk -tls1_2 -servername b.test -alpn http/1.1)
check "TLS 1.2 handshake" 'grep -q "Protocol  : TLSv1.2" <<<"$out" && grep -qx "hello" <<<"$out"'
check "SNI b.test gets b.test's certificate" 'grep -q "subject=.*CN = b.test" <<<"$out"'
check "ALPN http/1.1 negotiated" 'grep -q "ALPN protocol: http/1.1" <<<"$out"'
check "TLS 1.2 close_notify" 'grep -qx "closed" <<<"$out"'

out=$(talk -tls1_3 -servername a.test -alpn h2)
check "no common ALPN protocol: no ALPN, handshake goes on" 'grep -q "No ALPN negotiated" <<<"$out" && grep -qx "hello" <<<"$out"'

out=$(talk -tls1_3 -servername a.test -sess_out "$d/sess")
out=$(talk -tls1_3 -servername a.test -sess_in "$d/sess")
check "TLS 1.3 session resumption" 'grep -q "^Reused, TLSv1.3" <<<"$out"'
out=$(talk -tls1_2 -servername a.test -sess_out "$d/sess12")
out=$(talk -tls1_2 -servername a.test -sess_in "$d/sess12")
check "TLS 1.2 session resumption" 'grep -q "^Reused, TLSv1.2" <<<"$out"'

out=$(talk -tls1_3 -servername a.test -CAfile "$d/other.pem")
check "s_client with the wrong CA fails verification" 'grep -q "Verify return code: [1-9]" <<<"$out"'

# plaintext HTTP on the TLS port: a 400 saying so, closed, logged, the server lives on
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 5 nc -q 2 127.0.0.1 "$port")
check "plaintext client is closed" '[ $? -ne 124 ]'
check "plaintext client is answered 400" 'grep -q "^HTTP/1.1 400" <<<"$out"'
check "plaintext client is logged" 'wait_log "$d/main.err" "answered 400" 1 10 && grep -q "TLS handshake with 127.0.0.1:[0-9]*: plain HTTP on a TLS port, answered 400" "$d/main.err"'
out=$(talk -tls1_3 -servername a.test)
check "server still serves after the plaintext client" 'grep -qx "BYE" <<<"$out"'

# handshake timeout: a client that says nothing is closed after 500 ms
serve short tls_certificate="$d/a.pem" tls_key="$d/a.key" tls_handshake_timeout=500ms
t0=$(date +%s%N)
timeout 5 nc -d 127.0.0.1 "$port" >/dev/null
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
check "handshake timeout closes a silent client (${ms} ms)" '[ "$ms" -ge 400 ] && [ "$ms" -lt 4000 ]'
check "handshake timeout is logged" 'grep -q "timed out" "$d/short.err"'

# client certificates
serve mtls tls_certificate="$d/a.pem" tls_key="$d/a.key" tls_client_ca="$d/ca.pem" tls_verify_client=required
out=$(talk -tls1_3 -servername a.test)
check "required client certificate: refused without one" '! grep -qx "BYE" <<<"$out"'
out=$(talk -tls1_3 -servername a.test -cert "$d/client.pem" -key "$d/client.key")
check "required client certificate: accepted with one" 'grep -qx "BYE" <<<"$out"'
out=$(talk -tls1_3 -servername a.test -cert "$d/other.pem" -key "$d/other.key")
check "client certificate from another CA refused" '! grep -qx "BYE" <<<"$out"'
serve opt tls_certificate="$d/a.pem" tls_key="$d/a.key" tls_client_ca="$d/ca.pem" tls_verify_client=optional
out=$(talk -tls1_3 -servername a.test)
check "optional client certificate: accepted without one" 'grep -qx "BYE" <<<"$out"'

# STARTTLS: a plain SMTP dialogue, then weft_start_tls on the live connection; s_client
# -starttls smtp reads the greeting, sends EHLO and STARTTLS, then the handshake follows.
serve starttls starttls
out=$(talk -starttls smtp -servername a.test)
check "STARTTLS: upgraded mid-stream and verified" 'grep -q "Verify return code: 0" <<<"$out" && grep -q "subject=.*CN = a.test" <<<"$out"'
check "STARTTLS: echo over the upgraded connection" 'grep -qx "hello" <<<"$out" && grep -qx "BYE" <<<"$out"'
check "STARTTLS: the server says it upgraded" 'grep -q "starttls: upgraded" "$d/starttls.err"'

[ "$fails" -eq 0 ] || fail "$fails check(s) failed"
echo "all passed"
