#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_http_drain.sh: HTTP/1.1 keep-alive connections on a drain, with the real nc and curl
# against the real weftd, whose keepalive_timeout (60 s) is far longer than any wait here:
# an idle keep-alive connection sees EOF at once when a reload retires its worker, and that
# worker finishes; a request whose head is half sent when SIGTERM comes is answered with
# Connection: close, then the connection closes; weftd stopping with an idle connection
# exits in well under keepalive_timeout; a file being sent when SIGTERM comes arrives
# whole, then weftd exits.
set -euo pipefail
[ -z "${H1_TRACE:-}" ] || { PS4='+ $(date +%s.%N) '; set -x; }

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_tool nc netcat-openbsd curl curl
keep_going=1

mkdir -p "$tmp/root"
printf 'hello over h1\n' >"$tmp/root/hello.txt"
launch_http() {
    cat >"$tmp/weftd.conf" <<EOC
$(weftd_section "log_level = info" "workers = 1" "shutdown_timeout = 60s" "reload_timeout = 60s")

[web]
protocol = http
listen = 127.0.0.1:${ports[0]}
root = $tmp/root
keepalive_timeout = 60s
header_timeout = 60s
EOC
    launch "$WEFTD" -c "$tmp/weftd.conf"
}

# client K: nc connected to the service as clientK, its stdin the FIFO on fd $cfd. Once
# that is closed, nc reads on until the server closes, then exits (EXIT=0).
client() {
    local fifo=$tmp/client$1.in
    mkfifo "$fifo"
    launch -n "client$1" -s -- sh -c 'exec nc 127.0.0.1 "$1" <"$0"' "$fifo" "${ports[0]}"
    exec {cfd}<>"$fifo"     # opened after the launch: nc holds no writer of its own stdin
}
now_us() { echo "${EPOCHREALTIME/[.,]/}"; }
worker_pid() { ps -o pid= --ppid "${sv_pid[weftd]}" | tr -d ' ' | head -n 1; }
get='GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'

# 1. A reload: the idle keep-alive connection is closed at once, its worker finishes.
start_weftd 1 launch_http || exit 1
old=$(worker_pid)
client 1
printf "$get" >&"$cfd"
wait_event client1 'OUT=hello over h1*' 10 || fail "reload: no answer on the keep-alive connection"
exec {cfd}>&-
grep -q 'Connection: keep-alive' "$tmp/client1.notify" ||
    fail "reload: the first answer is not keep-alive: $(cat "$tmp/client1.notify")"
t0=$(now_us)
reload_weftd || fail "reload failed: $reload_status"
wait_event client1 'EXIT=*' 10 || fail "reload: the idle connection was not closed"
ms=$((($(now_us) - t0) / 1000))
[ "$ms" -lt 5000 ] || fail "reload: the idle connection was closed after $ms ms"
wait_log "$tmp/weftd.err" "worker $old finished" 1 10 ||
    fail "reload: the old worker $old did not finish"
sv_forget client1
out=$(curl -sS -w ' %{http_code}' "http://127.0.0.1:${ports[0]}/hello.txt" 2>&1) || true
[ "$out" = "hello over h1
 200" ] || fail "after the reload: $out"

# 2. SIGTERM in the middle of a request head: its answer says Connection: close, then EOF.
# (a first request, answered, says that the connection is there)
client 2
printf "$get" >&"$cfd"
wait_event client2 'OUT=hello over h1*' 10 || fail "SIGTERM: no answer on the keep-alive connection"
printf 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n' >&"$cfd"
n0=$(grep -c "draining 1 connection" "$tmp/weftd.err" || true)
kill -TERM "${sv_pid[weftd]}"
wait_log "$tmp/weftd.err" "draining 1 connection" $((n0 + 1)) 10 ||
    fail "SIGTERM: the worker does not say it drains 1 connection"
printf '\r\n' >&"$cfd"
exec {cfd}>&-
wait_event client2 'OUT=hello over h1*' 10 || fail "SIGTERM: the half-sent request got no answer"
[ "$(grep -c 'Connection: close' "$tmp/client2.notify")" = 1 ] ||
    fail "SIGTERM: the second answer does not say Connection: close: $(cat "$tmp/client2.notify")"
wait_event client2 'EXIT=*' 10 || fail "SIGTERM: the connection stayed open after its answer"
wait_event weftd 'EXIT=*' 10 || fail "SIGTERM: weftd did not exit after the last answer"
[ "${sv_exit[weftd]:-}" = 0 ] || fail "SIGTERM: weftd exited with ${sv_exit[weftd]:-?}"
sv_forget client2
wait_event weftd DONE 10 || true
sv_forget weftd

# 3. A stop with an idle keep-alive connection: well under keepalive_timeout.
start_weftd 1 launch_http || exit 1
client 3
printf "$get" >&"$cfd"
wait_event client3 'OUT=hello over h1*' 10 || fail "stop: no answer on the keep-alive connection"
exec {cfd}>&-
t0=$(now_us)
stop_weftd || fail "stop: weftd exited with $?"
ms=$((($(now_us) - t0) / 1000))
[ "$ms" -lt 5000 ] || fail "stop: weftd took $ms ms with an idle keep-alive connection"
wait_event client3 'EXIT=*' 10 || fail "stop: the idle connection was not closed"
sv_forget client3

# 4. SIGTERM while a file is being sent: the transfer ends whole, then weftd exits. 40 MiB
# read at 20 MB/s: when SIGTERM comes, far more is left than the loopback buffers hold.
head -c $((40 << 20)) /dev/urandom >"$tmp/root/big.bin"
start_weftd 1 launch_http || exit 1
launch -n getbig -- curl -sS -N --limit-rate 20M -o "$tmp/big.got" \
    "http://127.0.0.1:${ports[0]}/big.bin"
end=$(lib_deadline 10)
while [ "$(stat -c %s "$tmp/big.got" 2>/dev/null || echo 0)" -lt $((1 << 20)) ]; do
    lib_left left "$end" || { fail "file in flight: curl did not get 1 MiB within 10 s"; break; }
    sleep 0.02  # polling the file curl writes: the event itself, not a guess
done
n0=$(grep -c "draining 1 connection" "$tmp/weftd.err" || true)
kill -TERM "${sv_pid[weftd]}"
wait_log "$tmp/weftd.err" "draining 1 connection" $((n0 + 1)) 10 ||
    fail "file in flight: the worker does not say it drains 1 connection"
wait_event getbig 'EXIT=*' 30 || fail "file in flight: curl did not finish"
[ "${sv_exit[getbig]:-}" = 0 ] || fail "file in flight: curl exited with ${sv_exit[getbig]:-?}: $(cat "$tmp/getbig.err")"
cmp -s "$tmp/root/big.bin" "$tmp/big.got" ||
    fail "file in flight: curl got $(stat -c %s "$tmp/big.got" 2>/dev/null || echo no) bytes of $((40 << 20)), or other bytes"
wait_event weftd 'EXIT=*' 10 || fail "file in flight: weftd did not exit after the transfer"
[ "${sv_exit[weftd]:-}" = 0 ] || fail "file in flight: weftd exited with ${sv_exit[weftd]:-?}"
sv_forget getbig
wait_event weftd DONE 10 || true
sv_forget weftd

finish "http drain: idle keep-alive closed at a reload and a stop, a half-sent request answered with Connection: close, a file in flight sent whole before the exit"
