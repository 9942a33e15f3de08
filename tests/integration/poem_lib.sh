# SPDX-License-Identifier: MIT
# poem_lib.sh: sourced by test_poem_*.sh: start poem_serve (the poem plugin under
# weft_start_server) on a port it picks itself, stop only what was started.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_env WEFT_BINARY_DIR
require_tool nc netcat-openbsd
POEM_SERVE=$WEFT_BINARY_DIR/protocols/poem/poem_serve
[ -x "$POEM_SERVE" ] || fail "$POEM_SERVE is not built"
poems=()

# start_poem NAME [key=value ...]: sets PORT_<NAME>. poem_serve binds port 0 itself (no
# window for another process) and prints "listening on PORT" once it listens: that line,
# read as an event from weft-supervise (-s), is its readiness.
start_poem() {
    local name=$1
    shift
    launch -n "$name" -s "$POEM_SERVE" "$@" || return 1
    poems+=("$name")
    wait_event "$name" 'OUT=listening on *' 10 ||
        { fail "poem_serve $name did not start: ${sv_line:-nothing}"; return 1; }
    printf -v "PORT_$name" '%s' "${sv_line##* }"
}

# stop_all: SIGTERM every server; each must exit 0 (and clean under the sanitizers).
stop_all() {
    local n rc
    for n in "${poems[@]}"; do
        rc=0
        stop_weftd "$n" || rc=$?
        [ "$rc" -eq 0 ] || fail "poem_serve $n exited with $rc"
    done
    poems=()
    ! grep -q "ERROR\|Sanitizer\|runtime error\|: error:" "$tmp"/*.err || fail "errors on stderr"
}
