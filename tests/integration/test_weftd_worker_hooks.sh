#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_weftd_worker_hooks.sh: a plugin's per-worker hooks (struct weft_plugin's worker_start
# and worker_stop), through the test plugin tests/unit/plugins/hooks.c: each worker's
# worker_start runs before it serves (its state answers every connection), worker_stop runs
# once in each worker when it ends (stop, or retired by a reload), a failing worker_start
# stops weftd at start and abandons a reload (the old workers keep serving; READY=1 once the
# failed reload's workers are gone), and workers = 0
# runs both hooks in the daemon itself.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_env WEFT_BINARY_DIR
keep_going=1

events=$tmp/events
nworkers=2
fail_start=no

launch_weftd() {
    cat >"$tmp/weftd.conf" <<CONF
[weftd]
workers = $nworkers
; the events file is root's, in root's directory
user = root
plugin_dir = ${WEFT_PLUGIN_DIR:+$WEFT_PLUGIN_DIR:}$WEFT_BINARY_DIR/test-plugins

[hk]
protocol = hooks
listen = 127.0.0.1:${ports[0]}
events = $events
fail_start = $fail_start
CONF
    launch "$WEFTD" -c "$tmp/weftd.conf"
}

workers() {
    ps -o pid= --ppid "$pid" | tr -d ' ' | sort
}

# lines WORD: the pids of the events lines "WORD PID ...", sorted.
lines() {
    awk -v w="$1" '$1 == w { print $2 }' "$events" 2>/dev/null | sort
}

# ask: one connection's answer, "worker PID connection N".
ask() {
    timeout 5 nc -N 127.0.0.1 "${ports[0]}" </dev/null 2>/dev/null
}

# served PIDS...: the sum of "served N" over the stop lines of PIDS.
served() {
    local p n=0 s
    for p in "$@"; do
        s=$(awk -v p="$p" '$1 == "stop" && $2 == p { print $4 }' "$events")
        n=$((n + ${s:-0}))
    done
    echo "$n"
}

# ---- two workers: a start before serving, answers from the worker's own state ----
start_weftd 1 launch_weftd || exit 1
old=$(workers)
[ "$(echo "$old" | wc -l)" = "$nworkers" ] || fail "want $nworkers workers, have: $old"
# READY=1 comes once every worker serves, and each ran worker_start before it did.
[ "$(lines start)" = "$old" ] || fail "start lines for $(lines start | xargs), workers are $(echo $old)"
[ -z "$(lines stop)" ] || fail "a stop line before anything stopped: $(lines stop | xargs)"
for i in 1 2 3 4 5 6; do
    a=$(ask)
    [[ $a =~ ^worker\ ([0-9]+)\ connection\ [0-9]+$ ]] || { fail "answer $i: \"$a\""; continue; }
    grep -qx "${BASH_REMATCH[1]}" <<<"$old" || fail "answer $i from ${BASH_REMATCH[1]}, not a worker"
done

# ---- a reload: new workers start, the old ones stop, once each ----
reload_weftd
[ "$reload_status" = "${reload_status#reloaded}" ] && fail "reload: $reload_status"
# READY=1 comes once the new workers serve; the old ones may still be finishing.
new=$(comm -13 <(echo "$old") <(workers))
[ "$(echo "$new" | wc -l)" = "$nworkers" ] || fail "want $nworkers new workers, have: $(echo $new)"
wait_log "$events" "stop " "$nworkers" || fail "the retired workers did not each log a stop"
[ "$(lines stop)" = "$old" ] || fail "stop lines for $(lines stop | xargs), want $(echo $old)"
[ "$(served $old)" = 6 ] || fail "the old workers say they served $(served $old), want 6"
[ "$(lines start)" = "$(sort <<<"$old"$'\n'"$new")" ] ||
    fail "start lines $(lines start | xargs), want the old and new workers $(echo $old $new)"
a=$(ask)
[[ $a =~ ^worker\ ([0-9]+)\ connection\ 1$ ]] && grep -qx "${BASH_REMATCH[1]}" <<<"$new" ||
    fail "after the reload: \"$a\", want a new worker's first connection"

# ---- a reload whose worker_start fails is abandoned; the workers serving go on ----
fail_start=yes
sed -i 's/^fail_start = no/fail_start = yes/' "$tmp/weftd.conf"
reload_weftd
rc=$?
[ "$rc" = 1 ] || fail "a reload with a failing worker_start: status $rc ($reload_status), want failed"
grep -q "hk: cannot start serving in this worker: told to fail (fail_start = yes)" \
    "$tmp/weftd.err" || fail "weftd did not log the plugin's reason"
[ "$(workers)" = "$new" ] || fail "workers after the failed reload: $(workers | xargs), want $(echo $new)"
a=$(ask)
[[ $a =~ ^worker\ ([0-9]+)\ connection\ [12]$ ]] && grep -qx "${BASH_REMATCH[1]}" <<<"$new" ||
    fail "after the failed reload: \"$a\", want a new worker's first or second connection"

# ---- a failed reload is over once its workers are gone: one new worker fails, the other
# is ready and takes 500 ms to stop; READY=1 comes after it exited ----
sed -i 's/^fail_start = yes/fail_start = one/; $a stop_delay_ms = 500' "$tmp/weftd.conf"
reload_weftd
rc=$?
[ "$rc" = 1 ] || fail "a reload with one failing worker_start: status $rc ($reload_status), want failed"
[ "$(workers)" = "$new" ] ||
    fail "workers after the second failed reload: $(workers | xargs), want $(echo $new)"
[ "$(lines stop)" = "$(comm -23 <(lines start) <(echo "$new"))" ] ||
    fail "at READY=1, stop lines $(lines stop | xargs), want every worker but $(echo $new)"
a=$(ask)
[[ $a =~ ^worker\ ([0-9]+)\ connection\ [1-3]$ ]] && grep -qx "${BASH_REMATCH[1]}" <<<"$new" ||
    fail "after the second failed reload: \"$a\", want one of $(echo $new)"

# ---- stop: every worker's stop ----
stop_weftd || fail "weftd exited with status $? on SIGTERM"
all=$(lines start)
[ "$(lines stop)" = "$all" ] || fail "stop lines $(lines stop | xargs), want every started worker $(echo $all)"
[ "$(served $new)" = 3 ] || fail "the new workers say they served $(served $new), want 3"
! grep -q "leaked\|no worker state" "$events" || fail "events: $(grep "leaked\|no worker" "$events")"

# ---- a worker_start that fails at start: weftd stops, status 1, with the reason ----
rm -f "$events"
launch_weftd
wait_event weftd 'EXIT=*' || fail "weftd did not exit with a failing worker_start"
[ "${sv_exit[weftd]}" = 1 ] || fail "exit status ${sv_exit[weftd]}, want 1"
grep -q "hk: cannot start serving in this worker: told to fail" "$tmp/weftd.err" ||
    fail "no reason on stderr"
sv_forget weftd

# ---- workers = 0: both hooks in the daemon itself ----
fail_start=no
nworkers=0
rm -f "$events"
start_weftd 1 launch_weftd || exit 1
[ "$(lines start)" = "$pid" ] || fail "workers = 0: start lines $(lines start | xargs), want $pid"
a=$(ask)
[ "$a" = "worker $pid connection 1" ] || fail "workers = 0: \"$a\""
stop_weftd || fail "weftd (workers = 0) exited with status $? on SIGTERM"
[ "$(cat "$events")" = "start $pid"$'\n'"stop $pid served 1" ] ||
    fail "workers = 0: events: $(cat "$events")"

finish "per-worker hooks: start before serving, stop at the end, failures refused"
