#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/https.sh [BUILD_DIR] [SECONDS]: wrk over HTTPS against weftd's http plugin and nginx.
# Same certificate (an EC P-256 chain made by tests/integration/tls_certs.sh), same files,
# one worker each pinned to core 0, wrk on core 1. Two loads on a 13-byte file:
#   keep-alive  100 connections, many requests each            -> requests/s
#   handshake   "Connection: close": a new TLS connection per request -> handshakes/s
# (wrk does full handshakes, no resumption, against both). Target: >= 1.0x nginx on both.
# Needs weftd with TLS wired (tls_certificate / tls_key service keys).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-bench}
secs=${2:-10}
weftd=$build/daemon/weftd
conns=${CONNS:-100}
for tool in wrk nginx taskset; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
        { echo "https.sh: $tool is missing (make setup-bench)" >&2; exit 1; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$weftd" ] || { echo "https.sh: no $weftd: build first (make bench)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/weft-bench-https.XXXXXX)
chmod 755 "$tmp"
wpid= npid=
cleanup() {
    [ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
    [ -n "$npid" ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

bash "$here/tests/integration/tls_certs.sh" "$tmp/certs" >/dev/null
chmod -R a+rX "$tmp/certs"
mkdir -p "$tmp/www" "$tmp/nginx"
printf 'hello, world\n' > "$tmp/www/13b.txt"
chmod -R a+rX "$tmp/www"

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && { echo "$p"; return; }
    done
}
wport=$(free_port)
nport=$(free_port)
[ "$nport" != "$wport" ] || nport=$((wport + 1))

cat > "$tmp/weftd.conf" <<CONF
[weftd]
workers = 1
log_level = warning
[bench]
protocol = http
listen = 127.0.0.1:$wport
root = $tmp/www
keepalive_timeout = 60s
tls_certificate = $tmp/certs/a.pem
tls_key = $tmp/certs/a.key
CONF
cat > "$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 60s;
    keepalive_requests 100000000;
    open_file_cache max=1000 inactive=60s;
    default_type application/octet-stream;
    client_body_temp_path $tmp/nginx;
    proxy_temp_path $tmp/nginx;
    fastcgi_temp_path $tmp/nginx;
    uwsgi_temp_path $tmp/nginx;
    scgi_temp_path $tmp/nginx;
    server {
        listen 127.0.0.1:$nport ssl;
        ssl_certificate $tmp/certs/a.pem;
        ssl_certificate_key $tmp/certs/a.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $tmp/www;
    }
}
CONF

taskset -c 0 "$weftd" -c "$tmp/weftd.conf" 2> "$tmp/weftd.err" &
wpid=$!
taskset -c 0 "$nginx_bin" -c "$tmp/nginx.conf" -p "$tmp/nginx" 2> "$tmp/nginx.err" &
npid=$!
for _ in $(seq 50); do
    curl -sfk -o /dev/null "https://127.0.0.1:$wport/13b.txt" &&
        curl -sfk -o /dev/null "https://127.0.0.1:$nport/13b.txt" && break
    sleep 0.1
done
for s in "$wport" "$nport"; do
    curl -sf --cacert "$tmp/certs/ca.pem" --resolve "a.test:$s:127.0.0.1" -o /dev/null \
        "https://a.test:$s/13b.txt" ||
        { echo "https.sh: server on $s did not start" >&2; cat "$tmp"/*.err >&2; exit 1; }
done

rps() {     # rps URL [wrk args...]
    local url=$1; shift
    taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" "$@" "$url" 2>&1 |
        awk '/^Requests\/sec:/ {print $2}'
}

printf '%-12s %12s %12s %8s\n' load weft nginx ratio
for load in keepalive handshake; do
    args=()
    [ "$load" = handshake ] && args=(-H "Connection: close")
    w=$(rps "https://127.0.0.1:$wport/13b.txt" "${args[@]}")
    n=$(rps "https://127.0.0.1:$nport/13b.txt" "${args[@]}")
    awk -v l="$load" -v w="${w:-0}" -v n="${n:-0}" 'BEGIN {
        printf "%-12s %12.0f %12.0f %8.2f\n", l, w, n, (n > 0 ? w / n : 0) }'
done
echo "(13-byte file; keepalive: requests/s; handshake: new connection per request, i.e." \
     "handshakes/s; ${secs}s per run, $conns connections, nproc $(nproc))"
