#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/h2-profile.sh [BUILD_DIR] [FILE] [SECONDS]: where weftd's cycles go under bench/h2.sh's
# load. weftd (one worker on core 0, TLS, h2 by ALPN) serves FILE (13b.txt, 4k.bin or
# 1m.bin; default 13b.txt) to h2load -c10 -m10 on core 1 while `perf record -e cpu-clock`
# samples the worker for SECONDS (default 8); then prints the shares by shared object and the
# top symbols. cpu-clock is a software event, so it works on VMs without hardware counters.
# The recording stays in PERF_DATA (default /tmp/weft-h2-profile.data) for `perf report -i`.
# SERVER=nginx or SERVER=h2o profiles that server instead (its worker process, or h2o).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-bench}
file=${2:-13b.txt}
secs=${3:-8}
weftd=$build/daemon/weftd
server=${SERVER:-weft}
data=${PERF_DATA:-/tmp/weft-h2-profile.data}
. "$here/bench/weftd-lib.sh"
http_init h2-profile.sh h2load nginx h2o perf taskset curl openssl

bash "$here/tests/integration/tls_certs.sh" "$tmp/certs" >/dev/null
chmod -R a+rX "$tmp/certs"
printf 'hello, world\n' > "$tmp/www/13b.txt"
head -c 4096 /dev/urandom > "$tmp/www/4k.bin"
head -c 1048576 /dev/urandom > "$tmp/www/1m.bin"
chmod -R a+rX "$tmp/www"

p=$(free_port)
http_confs "$p" "$p" "tls_certificate = $tmp/certs/a.pem
tls_key = $tmp/certs/a.key" "" " ssl http2" \
    "        ssl_certificate $tmp/certs/a.pem;
        ssl_certificate_key $tmp/certs/a.key;"
h2o_conf "$p" "$tmp/certs/a.pem" "$tmp/certs/a.key"
case $server in
weft) start_pinned srv "$weftd" -c "$tmp/weftd.conf" ;;
nginx) start_pinned srv "$nginx_bin" -c "$tmp/nginx.conf" -p "$tmp/nginx" ;;
h2o) start_pinned srv h2o -c "$tmp/h2o.conf" ;;
*) echo "h2-profile.sh: SERVER is weft, nginx or h2o" >&2; exit 2 ;;
esac
# shellcheck disable=SC2154
wait_url "$server" "$pid_srv" "https://127.0.0.1:$p/$file" -sfk --http2 || exit 1

# The process doing the work: weftd's and nginx's worker (the master's child), h2o itself.
target=$pid_srv
if [ "$server" != h2o ]; then
    target=$(ps -o pid= --ppid "$pid_srv" | head -n 1 | tr -d ' ')
fi
[ -n "$target" ] || { echo "h2-profile.sh: no worker under $pid_srv" >&2; exit 1; }

url="https://127.0.0.1:$p/$file"
taskset -c 1 h2load -c10 -m10 -D1 "$url" >/dev/null 2>&1 || :
taskset -c 1 h2load -c10 -m10 -D$((secs + 2)) "$url" > "$tmp/h2load.out" 2>&1 &
load=$!
STARTED="$STARTED $load"
perf record -q -e cpu-clock -F 2000 -o "$data" -p "$target" -- sleep "$secs" 2>/dev/null
wait "$load" || :
forget "$load"
echo "h2-profile.sh: $server, $file, $(machine_load); h2load:" \
     "$(grep -E '^finished in' "$tmp/h2load.out")"
echo "== by shared object =="
perf report -i "$data" --stdio --sort dso 2>/dev/null | grep -E '^ +[0-9]' | head -n 12
echo "== top symbols =="
perf report -i "$data" --stdio --sort dso,sym 2>/dev/null | grep -E '^ +[0-9]' | head -n "${TOP:-40}"
