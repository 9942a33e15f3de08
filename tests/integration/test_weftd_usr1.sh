#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_weftd_usr1.sh: SIGUSR1 reopens the http plugin's access_log, as logrotate expects: after
# `mv access.log access.log.1` and kill -USR1, every worker (and one started after, and the
# single process of workers = 0) writes to a new access.log, the old requests stay in .1.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_tool curl curl
keep_going=1

mkdir -p "$tmp/www"
printf 'hello\n' >"$tmp/www/hello.txt"
log=$tmp/access.log
nworkers=2

launch_weftd() {
    cat >"$tmp/weftd.conf" <<CONF
[weftd]
workers = $nworkers
; the log files are root's, in root's directory: the workers stay root to reopen them
user = root
log_level = debug
${WEFT_PLUGIN_DIR:+plugin_dir = $WEFT_PLUGIN_DIR}

[web]
protocol = http
listen = 127.0.0.1:${ports[0]}
root = $tmp/www
access_log = $log
CONF
    launch "$WEFTD" -c "$tmp/weftd.conf"
}

# requests TAG N: N requests, each on its own connection, for /hello.txt?TAG-i.
requests() {
    local i
    for ((i = 1; i <= $2; i++)); do
        curl -s -o /dev/null --max-time 5 "http://127.0.0.1:${ports[0]}/hello.txt?$1-$i" ||
            fail "request $1-$i failed"
    done
}

# logged FILE TAG N: every request TAG-1..N is in FILE, once.
logged() {
    local i n
    for ((i = 1; i <= $3; i++)); do
        n=$(grep -c -- "?$2-$i " "$1" 2>/dev/null)
        [ "${n:-0}" = 1 ] || { fail "$2-$i is in ${1##*/} ${n:-0} times, want once"; return; }
    done
}

# absent FILE TAG: no request TAG-* in FILE.
absent() {
    ! grep -q -- "?$2-" "$1" 2>/dev/null || fail "requests $2-* went to ${1##*/}"
}

# wait_lines TEXT N: until weftd.err has N lines with TEXT.
wait_lines() {
    wait_log "$tmp/weftd.err" "$1" "$2" 10
}

# written FILE TAG N: until FILE has N requests TAG-* (a worker writes its access log line
# once the response is done, maybe just after curl has it).
written() {
    wait_log "$1" "?$2-" "$3" 10 || fail "${1##*/} did not get $3 lines for $2-*"
}

workers() {
    ps -o pid= --ppid "$pid" | tr -d ' ' | sort
}

# ---- two workers ----
start_weftd 1 launch_weftd || exit 1
requests first 10
written "$log" first 10
logged "$log" first 10
mv "$log" "$log.1"
kill -USR1 "$pid"
wait_lines "reopening log files (SIGUSR1)" $((nworkers + 1)) ||
    fail "the master and both workers did not log the reopen"
[ -f "$log" ] || fail "SIGUSR1 made no new access.log"
# 20 connections: the kernel spreads them over both workers.
requests second 20
written "$log" second 20
logged "$log" second 20
logged "$log.1" first 10
absent "$log.1" second
absent "$log" first

# A worker started after the reopen (kill -9 one) inherits the master's new file.
before=$(workers)
victim=$(head -n 1 <<<"$before")
kill -KILL "$victim"
# Its replacement says it serves (the first workers do not: "ready: 1 service" covers them).
wait_lines "ready (config 1)" 1 || fail "the killed worker was not replaced"
grep -qx "$victim" <<<"$(workers)" && fail "worker $victim is still there"
requests third 20
written "$log" third 20
logged "$log" third 20
absent "$log.1" third

# A path that cannot be opened: the error is logged, the old file kept.
mv "$log" "$log.2"
mkdir "$log"
kill -USR1 "$pid"
wait_lines "cannot reopen log files" 1 || fail "a failed reopen was not logged"
requests fourth 5
written "$log.2" fourth 5
logged "$log.2" fourth 5
kill -0 "$pid" 2>/dev/null || fail "weftd died after a failed reopen"
rmdir "$log"
stop_weftd || fail "weftd did not exit 0"
rm -f "$log" "$log".*

# ---- workers = 0: the single process reopens itself ----
nworkers=0
start_weftd 1 launch_weftd || exit 1
requests first 3
written "$log" first 3
mv "$log" "$log.1"
kill -USR1 "$pid"
wait_lines "reopening log files (SIGUSR1)" 1 || fail "workers = 0: the reopen was not logged"
requests second 3
written "$log" second 3
logged "$log" second 3
logged "$log.1" first 3
stop_weftd || fail "workers = 0: weftd did not exit 0"

finish "ok: SIGUSR1 reopens access_log in every worker, a new one, and workers = 0"
