#!/bin/bash
# SPDX-License-Identifier: MIT
# test_tls_examples.sh: examples/http_get and examples/get_poetry over TLS: http_get against
# openssl s_server -www, get_poetry against the library's TLS server (unit_test_tls serve
# oneline), each verifying with the test CA; and both refusing a server the CA did not sign.
set -u
. "$(dirname "$0")/lib.sh"
require_env WEFT_SOURCE_DIR WEFT_BINARY_DIR
require_tool openssl openssl
src=$WEFT_SOURCE_DIR
bin=$WEFT_BINARY_DIR
d=$tmp
fails=0
check() { if eval "$2"; then echo "ok - $1"; else echo "FAIL - $1"; fails=$((fails + 1)); fi; }

bash "$src/tests/integration/tls_certs.sh" "$d" >"$d/certs.log" 2>&1 || fail "cannot make certificates"

# s_server on one of our ports; it prints ACCEPT once it listens. A port taken meanwhile by
# another process: another one.
for try in 1 2 3 4 5; do
    port_next port
    launch -n s_server -s openssl s_server -accept "127.0.0.1:$port" -cert "$d/a.pem" \
        -key "$d/a.key" -www </dev/null
    wait_event s_server 'OUT=ACCEPT' 20 && break
    grep -q "in use" "$d/s_server.err" && [ "$try" -lt 5 ] || fail "openssl s_server did not start"
done
out=$(timeout 20 "$bin/examples/example_http_get" --cafile "$d/ca.pem" --servername a.test \
      "127.0.0.1:$port" 2>&1)
check "http_get over TLS: status line" 'grep -q "127.0.0.1:$port: HTTP/1.0 200 ok" <<<"$out"'
out=$(timeout 20 "$bin/examples/example_http_get" --cafile "$d/ca.pem" "localhost:$port" 2>&1)
check "http_get over TLS: server_hostname defaults to the host" 'grep -q "localhost:$port: HTTP/1.0 200 ok" <<<"$out"'
out=$(timeout 20 "$bin/examples/example_http_get" --cafile "$d/other.pem" "localhost:$port" 2>&1)
check "http_get refuses a server signed by another CA" 'grep -q "failed: .*TLS" <<<"$out"'

# The library's TLS server binds port 0 itself and prints the port once it listens.
launch -n poem -s "$bin/tests/unit_test_tls" serve "$d" oneline
wait_event poem 'OUT=[0-9]*' 20 || fail "unit_test_tls serve did not start"
pport=${sv_line#OUT=}
out=$(timeout 20 "$bin/examples/example_get_poetry" --cafile "$d/ca.pem" --servername b.test \
      "127.0.0.1:$pport" 2>&1)
check "get_poetry over TLS" 'grep -q "Task 1: got [1-9][0-9]* bytes of poetry" <<<"$out" && grep -q "Got 1 poems" <<<"$out"'
out=$(timeout 20 "$bin/examples/example_get_poetry" --cafile "$d/other.pem" "127.0.0.1:$pport" 2>&1)
check "get_poetry refuses an unknown CA" 'grep -q "failed: .*TLS" <<<"$out"'

[ "$fails" -eq 0 ] || fail "$fails check(s) failed"
echo "all passed"
