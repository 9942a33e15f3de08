# SPDX-License-Identifier: MIT
# lib.sh: sourced by the integration scripts (`. "$(dirname "$0")/lib.sh"`), with or without
# `set -e`. It gives a script:
#
# - $tmp, a fresh directory, removed on exit;
# - failures that say why: `fail MSG` prints "FAIL: MSG" and exits 1 (or, with keep_going=1,
#   counts it and goes on; `finish MSG` then exits 1 if any failed, else prints MSG). Any
#   other nonzero exit prints a FAIL line too (the ERR trap names the file, line, command
#   and status of the command that failed; under `set -e` at once), and every exit with a
#   nonzero status prints every log: $tmp/*.err, $tmp/*.notify, $tmp/*.out, files in `logs`.
# - nothing left running: each daemon runs under weft-supervise (tests/tools), in its own
#   process group, with PR_SET_PDEATHSIG; on any exit, even a SIGKILLed test, every group
#   is SIGKILLed. SIGINT, SIGTERM and SIGHUP exit 130, 143 and 129 through the same path.
# - readiness from the daemon, never a sleep or a probe: `launch` starts a command under
#   weft-supervise, whose lines (PID=, READY=1, STATUS=..., RELOADING=1, STOPPING=1, OUT=,
#   ERR=, EXIT=, LEFTOVER=, DONE) come through a FIFO read with `read -t`; start_weftd,
#   wait_ready, reload_weftd, stop_weftd and wait_event are built on them; wait_log waits
#   for a line in a log file (tail -F, which follows it with inotify).
# - ports that no other test holds: port_next / pick_ports hand out ports of 32-port
#   blocks in 12000-27999 (below the ephemeral range, so no client socket or TIME_WAIT
#   holds them), each block owned through a flock on ${WEFT_PORT_LOCK_DIR:-/run/lock/weft-
#   test-ports}/block-<b>, the same scheme as the C harness's harness_port().
#   Never call them in $(...): the lock and the state live in this shell.

tmp=$(mktemp -d "/tmp/weft-$(basename "$0" .sh).XXXXXX") && chmod 755 "$tmp" ||
    { echo "FAIL: ${0##*/}: cannot create a temporary directory in /tmp" >&2; exit 1; }
# errtrace: the ERR trap fires inside functions and $(...) too. Without it, a command that
# failed under `set -e` inside a function ended the script silently: see lib_on_err.
set -E
pids=()
logs=()
# Functions lib_on_exit calls with the exit status: lib_before_exit first (collect logs, stop
# gracefully), lib_after_kill once every process is killed (unmount).
lib_before_exit=()
lib_after_kill=()
failures=0
keep_going=0
lib_said_fail=0     # a FAIL line is out: the EXIT trap need not say why again
lib_err=            # the last command that failed (file:line: "command" exited N)
lib_sig=
lib_seq=0
# How long a daemon may take to get ready, reload or stop: longer under valgrind.
lib_timeout=30
[ -z "${WEFTD_WRAPPER:-}" ] || lib_timeout=240

# The ERR trap: remember what failed; under `set -e`, which is about to exit, say it now.
# (sh_test_poem_nc once failed in 0.5 s printing nothing: under `set -e` a command failed
# inside start_poem, where the ERR trap did not run without errtrace, and the EXIT trap
# said nothing. Now the trap runs everywhere, and the EXIT trap always says why.)
lib_on_err() {
    local rc=$1 where=$2 cmd=$3 i stack=
    for ((i = 1; i < ${#FUNCNAME[@]} - 1; i++)); do
        stack+=" <- ${FUNCNAME[i]}(${BASH_SOURCE[i + 1]##*/}:${BASH_LINENO[i]})"
    done
    lib_err="$where: \"$cmd\" exited $rc${stack:+ (in$stack)}"
    if [[ $- == *e* ]] && [ "$BASH_SUBSHELL" -eq 0 ]; then
        echo "FAIL: $lib_err" >&2
        lib_said_fail=1
    fi
}
trap 'lib_on_err $? "${BASH_SOURCE[0]##*/}:$LINENO" "$BASH_COMMAND"' ERR

# lib_dump FILE: print a log file, its start and end if it is long.
lib_dump() {
    local size
    size=$(stat -c %s "$1" 2>/dev/null) || return 0
    [ "$size" -gt 0 ] || return 0
    echo "---- ${1#"$tmp"/} ($size bytes) ----" >&2
    if [ "$size" -le 24000 ]; then
        cat "$1" >&2
    else
        head -c 8000 "$1" >&2
        echo "[... $((size - 16000)) bytes ...]" >&2
        tail -c 8000 "$1" >&2
    fi
}

# Kill what is still running, every process group, and wait for it.
lib_kill_all() {
    local n p
    for n in "${!sv_spid[@]}"; do
        [ -n "${sv_pid[$n]:-}" ] && kill -KILL -- "-${sv_pid[$n]}" 2>/dev/null
        kill -TERM "${sv_spid[$n]}" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null
    done
    for n in "${!sv_spid[@]}"; do
        wait "${sv_spid[$n]}" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null
    done
}

lib_on_exit() {
    local rc=$? f
    # Nothing interrupts the cleanup: a second SIGTERM (ctest's, a Ctrl-C pressed twice) or a
    # reader gone (SIGPIPE while dumping a log) would leave the servers running and $tmp behind.
    trap '' INT TERM HUP PIPE
    trap - ERR
    set +e
    for f in "${lib_before_exit[@]}"; do
        "$f" "$rc"
    done
    if [ "$rc" -ne 0 ]; then
        if [ "$lib_said_fail" = 0 ]; then
            if [ -n "$lib_sig" ]; then
                echo "FAIL: ${0##*/}: interrupted by SIG$lib_sig" >&2
            else
                echo "FAIL: ${0##*/}: exited with status $rc${lib_err:+; the last command that failed: $lib_err}" >&2
            fi
        fi
        shopt -s nullglob
        for f in "$tmp"/*.err* "$tmp"/*.notify "$tmp"/*.out "$tmp"/*.log; do
            lib_dump "$f"
        done
        for f in "${logs[@]}"; do
            [[ $f == "$tmp"/*.err* || $f == "$tmp"/*.notify || $f == "$tmp"/*.out ||
               $f == "$tmp"/*.log ]] || lib_dump "$f"
        done
    fi
    lib_kill_all
    for f in "${lib_after_kill[@]}"; do
        "$f" "$rc"
    done
    rm -rf "$tmp"
    exit "$rc"
}
trap lib_on_exit EXIT
trap 'lib_sig=INT; exit 130' INT
trap 'lib_sig=TERM; exit 143' TERM
trap 'lib_sig=HUP; exit 129' HUP

# fail MSG: see the top of this file.
fail() {
    echo "FAIL: $*" >&2
    lib_said_fail=1
    if [ "$keep_going" != 1 ]; then
        exit 1
    fi
    failures=$((failures + 1))
}

# finish MSG: the last line of a script.
finish() {
    if [ "$failures" -ne 0 ]; then
        echo "FAIL: $failures check(s) failed" >&2
        exit 1
    fi
    echo "$*"
}

# require_env VAR...: each must be set (ctest sets them; see tests/CMakeLists.txt).
require_env() {
    local v
    for v in "$@"; do
        [ -n "${!v:-}" ] || { lib_said_fail=1; echo "FAIL: $v is not set: run this test through ctest" >&2; exit 1; }
    done
}

# require_tool TOOL PACKAGE: TOOL must be on PATH (PACKAGE is the Debian package that has it).
# require_tool TOOL PACKAGE [TOOL PACKAGE]...: each TOOL installed, or FAIL naming its package.
require_tool() {
    while [ $# -ge 2 ]; do
        command -v "$1" >/dev/null ||
            { lib_said_fail=1; echo "FAIL: $1 ($2) is not installed: scripts/setup.sh test installs it" >&2; exit 1; }
        shift 2
    done
}

# make_certs [DIR]: the test CA and certificates of tls_certs.sh (a.pem, a.key, b.pem, ...,
# ca.pem) in DIR, $tmp/certs by default; sets c=DIR. Its status is tls_certs.sh's.
make_certs() {
    c=${1:-$tmp/certs}
    bash "$WEFT_SOURCE_DIR/tests/integration/tls_certs.sh" "$c" >/dev/null
}

# weftd_section [LINE]...: a config's [weftd] section, for $(...) in a here-document: the
# LINEs, then plugin_dir = $WEFT_PLUGIN_DIR when that is set.
weftd_section() {
    printf '[weftd]\n'
    [ $# -eq 0 ] || printf '%s\n' "$@"
    [ -z "${WEFT_PLUGIN_DIR:-}" ] || printf 'plugin_dir = %s\n' "$WEFT_PLUGIN_DIR"
}
require_env WEFT_SUPERVISE

# started PID: a background process started with `&`, killed on exit (as a group if it
# leads one) unless stop_pid has stopped it. Prefer `launch -n NAME`, which gives it its own
# group and a parent-death signal.
started() {
    pids+=("$1")
}

# ---- time ----

# lib_deadline SECONDS: print the time, in microseconds, SECONDS from now.
lib_deadline() {
    local now=${EPOCHREALTIME/[.,]/}
    echo $((now + $1 * 1000000))
}

# lib_left VAR DEADLINE: VAR = the seconds left until DEADLINE (a decimal for read -t);
# returns 1 if it has passed.
lib_left() {
    local _now=${EPOCHREALTIME/[.,]/} _us
    _us=$(($2 - _now))
    [ "$_us" -gt 0 ] || return 1
    printf -v "$1" '%d.%06d' $((_us / 1000000)) $((_us % 1000000))
}

# ---- ports ----

lib_port_dir=${WEFT_PORT_LOCK_DIR:-/run/lock/weft-test-ports}
lib_block=-1            # the last block locked
lib_blocks=" "          # every block we hold
lib_free=()             # ports of our blocks not handed out yet

# Lock the next free block (exclusive flock held on an fd for the life of this shell) and
# keep those of its ports that bind right now.
lib_lock_block() {
    local b0 i b f fd
    if [ ! -d "$lib_port_dir" ]; then
        (umask 0 && mkdir -p -m 1777 "$lib_port_dir") 2>/dev/null
        [ -d "$lib_port_dir" ] || { fail "cannot create $lib_port_dir"; return 1; }
    fi
    if [ "$lib_block" -lt 0 ]; then b0=$(($$ * 37 % 500)); else b0=$((lib_block + 1)); fi
    for ((i = 0; i < 500; i++)); do
        b=$(((b0 + i) % 500))
        [[ $lib_blocks == *" $b "* ]] && continue
        f=$lib_port_dir/block-$b
        [ -e "$f" ] || (umask 0 && : >>"$f") 2>/dev/null || true
        [ -r "$f" ] || continue
        exec {fd}<"$f" || continue
        if flock -n "$fd"; then
            lib_block=$b
            lib_blocks+="$b "
            # shellcheck disable=SC2207
            lib_free=($("$WEFT_SUPERVISE" -B $(seq $((12000 + 32 * b)) $((12031 + 32 * b)))))
            [ "${#lib_free[@]}" -gt 0 ] && return 0
            continue        # the whole block is taken by someone else: keep it, go on
        fi
        exec {fd}<&-
    done
    fail "no free block of test ports in $lib_port_dir (500 blocks held)"
    return 1
}

# port_next VAR: VAR = a port of ours, not handed out before.
port_next() {
    if [ "${#lib_free[@]}" -eq 0 ]; then
        lib_lock_block || return 1
    fi
    printf -v "$1" '%s' "${lib_free[0]}"
    lib_free=("${lib_free[@]:1}")
}

# pick_ports VAR...: port_next for each VAR.
pick_ports() {
    local _v
    for _v in "$@"; do
        port_next "$_v" || return 1
    done
}

# echo_ok PORT: a line sent to an echo service on PORT comes back.
echo_ok() {
    [ "$(printf 'ping\n' | timeout 5 nc -N 127.0.0.1 "$1" 2>/dev/null)" = "ping" ]
}

# ---- supervised processes ----

declare -A sv_pid=() sv_spid=() sv_fd=() sv_exit=() sv_leftover=() sv_done=() sv_status=()
lib_last=weftd          # the NAME of the last launch
sv_line=                # the line wait_event found

# launch [-n NAME] [-s] [-e] CMD...: run CMD under weft-supervise as NAME (default weftd):
# its stderr in $tmp/NAME.err (an earlier one is kept as NAME.err.1, .2...), its notify
# lines in $tmp/NAME.notify and on a FIFO that wait_event reads. -s: CMD's stdout lines
# come as OUT=... events, -e: its stderr lines as ERR=... (then not in NAME.err). Sets pid
# (CMD's pid and process group). With $WEFTD_WRAPPER set (tests/valgrind.sh), "$WEFTD ..."
# runs under it.
launch() {
    local name=weftd opts=() fifo fd k=1 line
    while [ $# -gt 0 ]; do
        case $1 in
            -n) name=$2; shift 2 ;;
            -s | -e) opts+=("$1"); shift ;;
            --) shift; break ;;
            *) break ;;
        esac
    done
    if [ -n "${WEFTD_WRAPPER:-}" ] && [ "$1" = "${WEFTD:-}" ]; then
        # shellcheck disable=SC2086
        set -- $WEFTD_WRAPPER "$@"
    fi
    [ -z "${sv_spid[$name]:-}" ] || sv_forget "$name"
    if [ -s "$tmp/$name.err" ]; then
        while [ -e "$tmp/$name.err.$k" ]; do k=$((k + 1)); done
        mv "$tmp/$name.err" "$tmp/$name.err.$k"
    fi
    fifo=$tmp/$name.fifo
    [ -p "$fifo" ] || mkfifo "$fifo"
    # Read-write: opening never blocks, and the FIFO lives until we close it.
    exec {fd}<>"$fifo"
    "$WEFT_SUPERVISE" -n "$tmp/$name.sock" -o "$fifo" -o "$tmp/$name.notify" "${opts[@]}" \
        -- "$@" 2>"$tmp/$name.err" &
    sv_spid[$name]=$!
    sv_fd[$name]=$fd
    sv_exit[$name]=
    sv_leftover[$name]=
    sv_done[$name]=
    sv_status[$name]=
    sv_pid[$name]=
    lib_last=$name
    pid=
    if ! sv_read "$name" line "$(lib_deadline 10)" || [[ $line != PID=* ]]; then
        fail "$name: weft-supervise did not start $* (${line:-no output})"
        return 1
    fi
    pid=${line#PID=}
    sv_pid[$name]=$pid
}

# sv_read NAME VAR DEADLINE: VAR = the next line from NAME's supervisor; 1 on timeout.
sv_read() {
    local _left _l
    lib_left _left "$3" || return 1
    IFS= read -r -t "$_left" -u "${sv_fd[$1]}" _l || return 1
    case $_l in
        EXIT=*) sv_exit[$1]=${_l#EXIT=} ;;
        LEFTOVER=*) sv_leftover[$1]=${_l#LEFTOVER=} ;;
        DONE) sv_done[$1]=1 ;;
        STATUS=*) sv_status[$1]=${_l#STATUS=} ;;
    esac
    printf -v "$2" '%s' "$_l"
}

# wait_event NAME PATTERN [SECONDS]: read NAME's lines until one matches PATTERN (a glob,
# e.g. 'READY=1' or 'OUT=listening on *'); sv_line is that line. Returns 1 on timeout
# (default $lib_timeout s), 2 if NAME exited first (unless PATTERN is for EXIT=).
wait_event() {
    local name=$1 pat=$2 end line
    end=$(lib_deadline "${3:-$lib_timeout}")
    sv_line=
    [ -n "${sv_fd[$name]:-}" ] || { fail "wait_event: nothing launched as $name"; return 1; }
    if [[ $pat == EXIT=* && -n ${sv_exit[$name]} ]]; then
        sv_line=EXIT=${sv_exit[$name]}
        return 0
    fi
    while :; do
        [[ $pat == DONE || -z ${sv_done[$name]} ]] || return 2
        sv_read "$name" line "$end" || return 1
        # shellcheck disable=SC2053
        if [[ $line == $pat ]]; then
            sv_line=$line
            return 0
        fi
        [[ $line != EXIT=* || $pat == LEFTOVER=* || $pat == DONE ]] || return 2
    done
}

# wait_ready [NAME] [SECONDS]: until NAME (default the last launched) says READY=1.
# 1: not in time, 2: it exited (fail()ed unless it exited saying "in use": start_weftd
# retries then).
wait_ready() {
    local name=${1:-$lib_last} rc=0
    wait_event "$name" 'READY=1' "${2:-$lib_timeout}" || rc=$?
    case $rc in
        0) return 0 ;;
        1) fail "$name did not get ready within ${2:-$lib_timeout} s" ;;
        *) grep -q "in use" "$tmp/$name.err" 2>/dev/null ||
               fail "$name exited with status ${sv_exit[$name]} before it was ready" ;;
    esac
    return "$rc"
}

# sv_forget NAME: NAME has ended (or must): kill its group if still there, reap it.
sv_forget() {
    local name=$1 fd=${sv_fd[$1]:-}
    if [ -n "${sv_pid[$name]:-}" ] && [ -z "${sv_done[$name]}" ]; then
        kill -KILL -- "-${sv_pid[$name]}" 2>/dev/null || true
    fi
    wait "${sv_spid[$name]}" 2>/dev/null || true
    [ -z "$fd" ] || exec {fd}<&-
    unset "sv_spid[$name]" "sv_fd[$name]"
}

# stop_weftd [NAME] [SIGNAL]: send SIGNAL (TERM) to NAME (default weftd), wait until it
# exits, return its status (128 + signal if killed). A process of its group left alive
# after it exited is a failure (and is killed).
stop_weftd() {
    local name=${1:-weftd} sig=${2:-TERM} rc line
    [ -n "${sv_spid[$name]:-}" ] || { fail "stop_weftd: nothing running as $name"; return 1; }
    [ -n "${sv_exit[$name]}" ] || kill "-$sig" "${sv_pid[$name]}" 2>/dev/null || true
    if ! wait_event "$name" 'EXIT=*' "$lib_timeout"; then
        fail "$name did not exit within $lib_timeout s of SIG$sig"
        sv_forget "$name"
        return 1
    fi
    wait_event "$name" DONE 10 || fail "$name: weft-supervise did not finish"
    rc=${sv_exit[$name]}
    [ -z "${sv_leftover[$name]}" ] ||
        fail "$name left ${sv_leftover[$name]} process(es) of its group running after it exited"
    sv_forget "$name"
    return "$rc"
}

# stop_pid PID [SIGNAL]: stop_weftd for a launched PID; for a PID given to started: send
# SIGNAL (TERM), wait for it and forget it. Returns its exit status.
stop_pid() {
    local p=$1 rc=0 keep=() q n
    for n in "${!sv_pid[@]}"; do
        if [ "${sv_pid[$n]}" = "$p" ] && [ -n "${sv_spid[$n]:-}" ]; then
            stop_weftd "$n" "${2:-TERM}"
            return
        fi
    done
    kill "-${2:-TERM}" "$p" 2>/dev/null || true
    wait "$p" || rc=$?
    for q in "${pids[@]}"; do
        [ "$q" = "$p" ] || keep+=("$q")
    done
    pids=("${keep[@]}")
    return "$rc"
}

# start_weftd N LAUNCH: pick N distinct ports into the array ports, call LAUNCH (a function
# that writes the config for them and starts the server with `launch CMD...`), and wait for
# its READY=1 (sent once every worker serves every address). A port taken meanwhile ("in
# use" on stderr) means new ports, up to 5 tries; another failure is fail()ed. Sets pid;
# returns 1 if the server did not start.
start_weftd() {
    local n=$1 fn=$2 try i rc
    for try in 1 2 3 4 5; do
        ports=()
        for ((i = 0; i < n; i++)); do
            port_next "ports[$i]" || return 1
        done
        wait_ports=("${ports[@]}")
        pid=
        "$fn" || { fail "$fn failed"; return 1; }
        rc=0
        wait_ready "$lib_last" || rc=$?
        [ "$rc" -eq 0 ] && return 0
        [ "$rc" -eq 2 ] || return 1
        grep -q "in use" "$tmp/$lib_last.err" || return 1
        echo "note: $lib_last: a port was in use (try $try): new ports" >&2
        sv_forget "$lib_last"
    done
    fail "$lib_last: a port in use at each of 5 tries"
    return 1
}

# reload_weftd [NAME]: SIGHUP NAME (default weftd) and wait for RELOADING=1, then READY=1.
# Returns 0 if weftd said "STATUS=reloaded ..." (every kept or added address is served by
# new workers, every removed one refuses), 1 if "STATUS=reload failed: ..."; reload_status
# is that STATUS text. Anything else (no answer in time, an exit) is fail()ed, status 2.
reload_weftd() {
    local name=${1:-weftd} end line rc
    reload_status=
    kill -HUP "${sv_pid[$name]}" ||
        { fail "$name: cannot send SIGHUP"; return 2; }
    rc=0
    wait_event "$name" 'RELOADING=1' || rc=$?
    [ "$rc" -eq 0 ] || { fail "$name: no RELOADING=1 after SIGHUP ($rc)"; return 2; }
    end=$(lib_deadline "$lib_timeout")
    while sv_read "$name" line "$end"; do
        case $line in
            "STATUS=reloaded"* | "STATUS=reload failed"*) reload_status=${line#STATUS=} ;;
            READY=1)
                case $reload_status in
                    reloaded*) return 0 ;;
                    "reload failed"*) return 1 ;;
                esac
                fail "$name: READY=1 after the reload, but no STATUS said how it ended"
                return 2
                ;;
            EXIT=*) fail "$name exited with status ${line#EXIT=} during a reload"; return 2 ;;
        esac
    done
    fail "$name: no READY=1 within $lib_timeout s of RELOADING=1"
    return 2
}

# tls_say OUT LINE [THEN] -- S_CLIENT_ARGS...: send LINE through `openssl s_client
# S_CLIENT_ARGS`, keep its stdin open until LINE has come back (at most $lib_timeout s), then
# send THEN if given, and close; s_client's output (stdout and stderr) is left in OUT.
# Replaces `{ printf ...; sleep 0.3; } | s_client`, which closed stdin after a guess and lost
# the echo on a busy machine.
tls_say() {
    local out=$1 line=$2 then= fifo fd spid
    shift 2
    if [ "$1" != -- ]; then
        then=$1
        shift
    fi
    shift
    lib_seq=$((lib_seq + 1))
    fifo=$tmp/.tls_say.$lib_seq
    mkfifo "$fifo"
    : >"$out"
    timeout "$((lib_timeout + 10))" openssl s_client "$@" <"$fifo" >"$out" 2>&1 &
    spid=$!
    exec {fd}>"$fifo"
    # A subshell for each write: if s_client is gone (a refused handshake), SIGPIPE ends the
    # subshell, not this script.
    (printf '%s\n' "$line" >&"$fd") 2>/dev/null || true
    wait_log -p "$spid" "$out" "$line" 1 || true
    if [ -n "$then" ]; then (printf '%s\n' "$then" >&"$fd") 2>/dev/null || true; fi
    exec {fd}>&-
    wait "$spid" 2>/dev/null || true
    rm -f "$fifo"
}

# wait_log [-p PID] FILE TEXT [N] [SECONDS]: wait until FILE has N (1) lines containing
# TEXT; 1 if not within SECONDS ($lib_timeout), or (-p) once PID has exited. The lines come
# from tail -F, which inotify wakes as FILE grows.
wait_log() {
    local watch=$$ f want n end left fifo fd tpid line c=0 rc=1
    if [ "$1" = -p ]; then
        watch=$2
        shift 2
    fi
    f=$1 want=$2 n=${3:-1}
    end=$(lib_deadline "${4:-$lib_timeout}")
    lib_seq=$((lib_seq + 1))
    fifo=$tmp/.wait_log.$lib_seq
    mkfifo "$fifo"
    # --pid: tail ends (within a second) when PID, or this shell if SIGKILLed, is gone;
    # we then read EOF, as we opened the FIFO for reading only.
    tail --pid="$watch" -n +1 -F "$f" >"$fifo" 2>/dev/null &
    tpid=$!
    exec {fd}<"$fifo"
    while lib_left left "$end" && IFS= read -r -t "$left" -u "$fd" line; do
        if [[ $line == *"$want"* ]]; then
            c=$((c + 1))
            [ "$c" -lt "$n" ] || { rc=0; break; }
        fi
    done
    kill "$tpid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    exec {fd}<&-
    rm -f "$fifo"
    return "$rc"
}
