# SPDX-License-Identifier: MIT
# poem_lib.sh: sourced by test_poem_*.sh: start poem_serve (the poem plugin under
# weft_start_server) on free ports, stop only what was started.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_env WEFT_BINARY_DIR
require_tool nc netcat-openbsd
POEM_SERVE=$WEFT_BINARY_DIR/protocols/poem/poem_serve
[ -x "$POEM_SERVE" ] || { echo "$POEM_SERVE is not built" >&2; exit 1; }

# start_poem NAME [key=value ...]: sets PORT_<NAME>; the server picks a free port itself.
start_poem() {
    local name=$1 port=
    shift
    "$POEM_SERVE" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    started $!
    for _ in $(seq 200); do
        port=$(awk '/^listening on/ { print $3 }' "$tmp/$name.out" 2>/dev/null)
        [ -n "$port" ] && break
        sleep 0.05
    done
    [ -n "$port" ] || fail "poem_serve $name did not start"
    printf -v "PORT_$name" '%s' "$port"
}

# stop_all: SIGTERM every server; each must exit 0 (and clean under the sanitizers).
stop_all() {
    local p
    for p in "${pids[@]}"; do
        stop_pid "$p" || fail "poem_serve (pid $p) exited with $?"
    done
    ! grep -q "ERROR\|Sanitizer\|runtime error\|: error:" "$tmp"/*.err || fail "errors on stderr"
}
