# SPDX-License-Identifier: MIT
# poem_lib.sh: sourced by test_poem_*.sh: start poem_serve (the poem plugin under
# weft_start_server) on free ports, stop only what was started.
: "${WEFT_BINARY_DIR:?WEFT_BINARY_DIR must name the build tree}"
POEM_SERVE=$WEFT_BINARY_DIR/protocols/poem/poem_serve
command -v nc >/dev/null || { echo "nc (netcat-openbsd) is not installed" >&2; exit 1; }
[ -x "$POEM_SERVE" ] || { echo "$POEM_SERVE is not built" >&2; exit 1; }

tmp=$(mktemp -d /tmp/weft-poem.XXXXXX)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.err; do [ -f "$f" ] && { echo "---- $f ----" >&2; head -c 4000 "$f" >&2; }; done
    exit 1
}

# start_poem NAME [key=value ...]: sets PORT_<NAME>; the server picks a free port itself.
start_poem() {
    local name=$1 port=
    shift
    "$POEM_SERVE" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
    pids+=($!)
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
    local p rc
    for p in "${pids[@]}"; do
        kill -TERM "$p"
        rc=0
        wait "$p" || rc=$?
        [ "$rc" -eq 0 ] || fail "poem_serve (pid $p) exited with $rc"
    done
    pids=()
    ! grep -q "ERROR\|Sanitizer\|runtime error\|: error:" "$tmp"/*.err || fail "errors on stderr"
}
