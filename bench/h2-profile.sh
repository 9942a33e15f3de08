#!/bin/bash
# SPDX-License-Identifier: MIT
# bench/h2-profile.sh [BUILD_DIR] [FILE] [SECONDS]: where weftd's cycles go under bench/h2.sh's
# load. weftd (one worker on core 0, TLS, h2 by ALPN) serves FILE (13b.txt, 4k.bin or
# 1m.bin; default 13b.txt) to h2load -c10 -m10 on core 1 while `perf record -e cpu-clock`
# samples the worker for SECONDS (default 8); then prints the shares by shared object and the
# top symbols. cpu-clock is a software event, so it works on VMs without hardware counters.
# The recording stays in PERF_DATA (default /tmp/weft-h2-profile.data) for `perf report -i`.
# SERVER=nginx or SERVER=h2o profiles that server instead (its worker process, or h2o).
# WEFT_SUITES: weftd's tls_ciphersuites, as in bench/h2.sh.
# MODE=callgrind (weft only): weftd with workers = 0 under valgrind's callgrind instead,
# counted from the third second of the load for SECONDS: instructions per request (the
# calls of http_serve), deterministic on a busy machine, and the top functions (self cost);
# the profile stays in CG_OUT (default /tmp/weft-h2-callgrind.out) for callgrind_annotate.
# Debian's libnghttp2.so has no symbols for its internal functions, so callgrind mode relinks
# weftd (from the build's own link line, into the temporary directory) with libnghttp2.a
# (libnghttp2-dev) linked whole and exported: http.so's nghttp2 calls then resolve to that
# copy, whose functions have names (nghttp2_hd_inflate_hd_nv, ...). NGHTTP2_NAMES=0 keeps the
# shared library (the profile then shows addresses).
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
tls_key = $tmp/certs/a.key${WEFT_SUITES:+
tls_ciphersuites = $WEFT_SUITES}" "" " ssl http2" \
    "        ssl_certificate $tmp/certs/a.pem;
        ssl_certificate_key $tmp/certs/a.key;"
h2o_conf "$p" "$tmp/certs/a.pem" "$tmp/certs/a.key"
url="https://127.0.0.1:$p/$file"
if [ "${MODE:-perf}" = callgrind ]; then
    need_tools h2-profile.sh valgrind callgrind_control callgrind_annotate
    cgout=${CG_OUT:-/tmp/weft-h2-callgrind.out}
    sed -i 's/^workers = 1$/workers = 0/' "$tmp/weftd.conf"
    ng_a=/usr/lib/x86_64-linux-gnu/libnghttp2.a
    link=$build/daemon/CMakeFiles/weftd.dir/link.txt
    if [ "${NGHTTP2_NAMES:-1}" != 0 ] && [ -f "$ng_a" ] && [ -f "$link" ]; then
        # the non-PIC archive needs a non-PIE executable
        cmd=$(sed -e "s| -o weftd | -no-pie -rdynamic -o $tmp/weftd |" \
                  -e "s|\$| -Wl,--whole-archive $ng_a -Wl,--no-whole-archive|" "$link")
        if (cd "$build/daemon" && eval "$cmd") 2> "$tmp/link.err"; then
            weftd=$tmp/weftd
            export WEFT_PLUGIN_DIR=$build/plugins   # (found beside the build's weftd only)
        else
            echo "h2-profile.sh: relinking with $ng_a failed, nghttp2 stays unnamed:" >&2
            cat "$tmp/link.err" >&2
        fi
    fi
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$cgout" -q \
        "$weftd" -c "$tmp/weftd.conf" 2> "$tmp/srv.err" &
    pid_srv=$!
    STARTED="$STARTED $pid_srv"
    for _ in $(seq 1200); do        # valgrind starts slowly
        curl -sfk --http2 -o /dev/null "$url" && break
        kill -0 "$pid_srv" 2>/dev/null || { cat "$tmp/srv.err" >&2; exit 1; }
        sleep 0.1
    done
    taskset -c 1 h2load -c10 -m10 -D$((secs + 3)) "$url" > "$tmp/h2load.out" 2>&1 &
    load=$!
    STARTED="$STARTED $load"
    sleep 2
    callgrind_control -i on "$pid_srv" > /dev/null
    sleep "$secs"
    callgrind_control -i off "$pid_srv" > /dev/null
    wait "$load" || :
    forget "$load"
    stop_pid "$pid_srv"
    forget "$pid_srv"
    callgrind_report "$cgout" "$file, h2load -c10 -m10" "${TOP:-30}"
    exit 0
fi
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
