#!/bin/bash
# SPDX-License-Identifier: MIT
# test_tls_examples.sh: examples/http_get and examples/get_poetry over TLS: http_get against
# openssl s_server -www, get_poetry against the library's TLS server (unit_test_tls serve
# oneline), each verifying with the test CA; and both refusing a server the CA did not sign.
set -u
src=${WEFT_SOURCE_DIR:?}
bin=${WEFT_BINARY_DIR:?}
d=$(mktemp -d /tmp/weft-tls-ex-XXXXXX)
pids=()
fails=0
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$d"
}
trap cleanup EXIT
check() { if eval "$2"; then echo "ok - $1"; else echo "FAIL - $1"; fails=$((fails + 1)); fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bash "$src/tests/integration/tls_certs.sh" "$d" || exit 1

port=$(free_port)
openssl s_server -accept "127.0.0.1:$port" -cert "$d/a.pem" -key "$d/a.key" -www -quiet \
    </dev/null >"$d/s_server.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do nc -z 127.0.0.1 "$port" 2>/dev/null && break; sleep 0.1; done
out=$(timeout 20 "$bin/examples/example_http_get" --cafile "$d/ca.pem" --servername a.test \
      "127.0.0.1:$port" 2>&1)
check "http_get over TLS: status line" 'grep -q "127.0.0.1:$port: HTTP/1.0 200 ok" <<<"$out"'
out=$(timeout 20 "$bin/examples/example_http_get" --cafile "$d/ca.pem" "localhost:$port" 2>&1)
check "http_get over TLS: server_hostname defaults to the host" 'grep -q "localhost:$port: HTTP/1.0 200 ok" <<<"$out"'
out=$(timeout 20 "$bin/examples/example_http_get" --cafile "$d/other.pem" "localhost:$port" 2>&1)
check "http_get refuses a server signed by another CA" 'grep -q "failed: .*TLS" <<<"$out"'

"$bin/tests/unit_test_tls" serve "$d" oneline >"$d/poem.port" 2>"$d/poem.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$d/poem.port" ] && break; sleep 0.05; done
pport=$(head -1 "$d/poem.port")
out=$(timeout 20 "$bin/examples/example_get_poetry" --cafile "$d/ca.pem" --servername b.test \
      "127.0.0.1:$pport" 2>&1)
check "get_poetry over TLS" 'grep -q "Task 1: got [1-9][0-9]* bytes of poetry" <<<"$out" && grep -q "Got 1 poems" <<<"$out"'
out=$(timeout 20 "$bin/examples/example_get_poetry" --cafile "$d/other.pem" "127.0.0.1:$pport" 2>&1)
check "get_poetry refuses an unknown CA" 'grep -q "failed: .*TLS" <<<"$out"'

[ "$fails" -eq 0 ] || { tail -n 5 "$d"/*.log; exit 1; }
echo "all passed"
