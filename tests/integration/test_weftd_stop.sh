#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_weftd_stop.sh: Ctrl-C as a person at a terminal sees it. With one nc connected, the
# first SIGINT says that 1 connection drains, for how long, and that a second SIGINT aborts
# it; the second SIGINT says so, aborts it, and weftd exits 0. Lines not going to the
# journal carry a timestamp. The same with workers = 0, which also logs its "listening on"
# lines.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_tool nc netcat-openbsd
keep_going=1

workers=2
launch_echo() {
    printf '[weftd]\nlog_level = info\nworkers = %s\nshutdown_timeout = 30s\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:%s\n' \
        "$workers" "${ports[0]}" >"$tmp/weftd.conf"
    launch env -u JOURNAL_STREAM "$WEFTD" -c "$tmp/weftd.conf"
}

# one_round: weftd with $workers, one client, SIGINT twice.
one_round() {
    local k=$1 fifo=$tmp/client$1.in fd
    start_weftd 1 launch_echo || return 1
    mkfifo "$fifo"
    exec {fd}<>"$fifo"
    launch -n "client$k" -s -- sh -c 'exec nc 127.0.0.1 "$1" <"$0"' "$fifo" "${ports[0]}"
    printf 'hello\n' >&"$fd"
    wait_event "client$k" 'OUT=hello' 10 || fail "workers=$workers: the client gets no echo"

    kill -INT "${sv_pid[weftd]}"
    wait_log "$tmp/weftd.err" "draining 1 connection, up to 30 s" ||
        fail "workers=$workers: the first SIGINT does not say that 1 connection drains, up to 30 s"
    wait_log "$tmp/weftd.err" "SIGINT again aborts them" ||
        fail "workers=$workers: the first SIGINT does not say how to abort"
    printf 'still\n' >&"$fd"
    wait_event "client$k" 'OUT=still' 10 || fail "workers=$workers: the draining client is not served"

    kill -INT "${sv_pid[weftd]}"
    wait_log "$tmp/weftd.err" "second SIGINT: aborting" ||
        fail "workers=$workers: the second SIGINT is not logged as such"
    wait_log "$tmp/weftd.err" "aborting 1 connection now" ||
        fail "workers=$workers: the abort does not count 1 connection"
    wait_event weftd 'EXIT=*' 20 || fail "workers=$workers: weftd did not exit after the second SIGINT"
    [ "${sv_exit[weftd]}" = 0 ] || fail "workers=$workers: weftd exited ${sv_exit[weftd]}, not 0"
    wait_event "client$k" 'EXIT=*' 10 || fail "workers=$workers: the aborted client was not closed"
    exec {fd}>&-

    # Not under journald: every line starts with a local timestamp to the millisecond.
    if grep -vqE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} (error|warning|notice|info|debug): ' \
            "$tmp/weftd.err"; then
        fail "workers=$workers: a line without a timestamp: $(grep -vE '^[0-9]{4}-' "$tmp/weftd.err" | head -1)"
    fi
    grep -q "echo: listening on 127.0.0.1:${ports[0]}" "$tmp/weftd.err" ||
        fail "workers=$workers: no 'listening on' line"
    sv_forget weftd
    sv_forget "client$k"
}

one_round 1
workers=0
one_round 2

finish "ok: Ctrl-C says what it drains and how to abort, a second one aborts, exit 0; timestamped lines; workers = 0 too"
