# SPDX-License-Identifier: MIT
# lib.sh: sourced by the integration scripts (`. "$(dirname "$0")/lib.sh"`): a tmp dir removed
# on exit, background processes killed on exit, fail(), free ports, weftd started on them.
#
# After sourcing: $tmp is a fresh directory; `fail MSG` prints MSG and every $tmp/*.err (plus
# the files in the array `logs`) and exits 1, or with keep_going=1 counts the failure and goes
# on, and `finish MSG` exits 1 if any failed, else prints MSG.

tmp=$(mktemp -d "/tmp/weft-$(basename "$0" .sh).XXXXXX") ||
    { echo "FAIL: cannot create a temporary directory in /tmp" >&2; exit 1; }
# Under `set -e`, a command that fails says which one it was, instead of a silent exit 1.
if [[ $- == *e* ]]; then
    trap 'lib_rc=$?; echo "FAIL: ${0##*/}:$LINENO: \"$BASH_COMMAND\" exited $lib_rc" >&2' ERR
fi
pids=()
logs=()
failures=0
keep_going=0

# Kill what is still running (a failed check leaves servers behind), then remove $tmp.
lib_cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap lib_cleanup EXIT

# fail MSG: see the top of this file.
fail() {
    local f
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.err "${logs[@]}"; do
        [ -s "$f" ] && { echo "---- $f ----" >&2; head -c 8000 "$f" >&2; }
    done
    [ "$keep_going" = 1 ] || exit 1
    failures=$((failures + 1))
}

# finish MSG: the last line of a script.
finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures check(s) failed" >&2
        exit 1
    fi
    echo "$*"
}

# require_env VAR...: each must be set (ctest sets them; see tests/CMakeLists.txt).
require_env() {
    local v
    for v in "$@"; do
        [ -n "${!v:-}" ] || { echo "$v is not set: run this test through ctest" >&2; exit 1; }
    done
}

# require_tool TOOL PACKAGE: TOOL must be on PATH (PACKAGE is the Debian package that has it).
require_tool() {
    command -v "$1" >/dev/null || { echo "$1 ($2) is not installed" >&2; exit 1; }
}

# started PID: kill PID on exit unless stop_pid has stopped it.
started() {
    pids+=("$1")
}

# stop_pid PID [SIGNAL]: send SIGNAL (TERM) to PID, wait for it and forget it; returns its
# exit status.
stop_pid() {
    local p=$1 rc=0 keep=() q
    kill "-${2:-TERM}" "$p" 2>/dev/null || true
    wait "$p" || rc=$?
    for q in "${pids[@]}"; do
        [ "$q" = "$p" ] || keep+=("$q")
    done
    pids=("${keep[@]}")
    return "$rc"
}

# pick_ports VAR...: a distinct port for each VAR that nobody listens on right now. Another
# process may take it before we do: start_weftd retries.
pick_ports() {
    local _v _p _taken=" "
    for _v in "$@"; do
        while :; do
            _p=$((20000 + RANDOM % 40000))
            [[ "$_taken" == *" $_p "* ]] && continue
            nc -z 127.0.0.1 "$_p" 2>/dev/null || break
        done
        _taken+="$_p "
        printf -v "$_v" '%s' "$_p"
    done
}

# wait_port PORT [PID]: wait up to 10 s until 127.0.0.1:PORT accepts; 1 if it does not, or at
# once if PID exits.
wait_port() {
    local _
    for _ in $(seq 200); do
        nc -z 127.0.0.1 "$1" 2>/dev/null && return 0
        [ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# echo_ok PORT: a line sent to an echo service on PORT comes back.
echo_ok() {
    [ "$(printf 'ping\n' | timeout 5 nc -N 127.0.0.1 "$1" 2>/dev/null)" = "ping" ]
}

# launch CMD...: run CMD in the background, stderr in $tmp/weftd.err; sets pid.
# With $WEFTD_WRAPPER set (tests/valgrind.sh), "$WEFTD ..." runs under it.
launch() {
    if [ -n "${WEFTD_WRAPPER:-}" ] && [ "$1" = "${WEFTD:-}" ]; then
        set -- $WEFTD_WRAPPER "$@"
    fi
    "$@" 2>"$tmp/weftd.err" &
    pid=$!
    started "$pid"
}

# start_weftd N LAUNCH: pick N distinct free ports into the array ports, call LAUNCH (a
# function that writes the config for them and starts the server with `launch CMD...`), and
# wait until every port in the array wait_ports (all of ports unless LAUNCH sets it) listens.
# A port taken meanwhile ("in use" on stderr) means new ports, up to 5 tries; another failure
# is fail()ed. Sets pid; returns 1 if the server did not start.
start_weftd() {
    local n=$1 fn=$2 try i p up
    for try in 1 2 3 4 5; do
        ports=()
        for ((i = 0; i < n; i++)); do
            pick_ports p
            [[ " ${ports[*]} " == *" $p "* ]] && { i=$((i - 1)); continue; }
            ports+=("$p")
        done
        wait_ports=("${ports[@]}")
        pid=
        "$fn"
        up=1
        for p in "${wait_ports[@]}"; do
            wait_port "$p" "$pid" || { up=0; break; }
        done
        [ "$up" = 1 ] && return 0
        stop_pid "$pid" KILL 2>/dev/null || true
        pid=
        grep -q "in use" "$tmp/weftd.err" || { fail "the server did not start"; return 1; }
    done
    fail "no free ports after 5 tries"
    return 1
}
