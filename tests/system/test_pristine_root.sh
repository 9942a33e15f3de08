#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_pristine_root.sh: the README's two commands on a pristine Debian 12, as a newcomer
# has it: a minbase root (debootstrap --variant=minbase bookworm, like the official image:
# no make, no compiler, no git), the checkout copied in, root, nothing else.
#   - `sh run.sh` installs what is missing (make and the compiler too), builds weftd and its
#     plugins only, and serves: weftd's READY=1 (on a notify socket bound into the
#     container) within 10 minutes, then echo on 7007, poem on 7070, HTTP on 8080;
#     SIGINT (a Ctrl-C) stops it with exit status 0;
#   - a second `sh run.sh` (everything there) prints at most a few lines before weftd's own,
#     and serves again;
#   - `sh scripts/setup.sh test` (test.sh's setup step) installs everything the suite needs:
#     cmake then configures the suite (cmocka found), and every tool a test requires
#     (require_tool in tests/) is on PATH.
# The packages come from the archive: they are downloaded first (apt-get --download-only,
# the machine's network) into a cache kept between runs (${WEFT_ROOT_CACHE}/apt), and the
# commands themselves run in a private network (their servers listen on the container's own
# loopback, so 7007 here is never this machine's 7007), installing from that cache.
#
# test_pristine_root.sh [run|setup]: the two run.sh steps, or the setup.sh step, each in a copy
# of the root of its own (ctest runs them as two tests, side by side; no argument: both). The
# cache is written only by the prefetch, under a lock; the installs see it through an overlay
# of their own (apt locks its archive directory for the length of an install). Like Debian's
# official container image (/etc/dpkg/dpkg.cfg.d/docker-apt-speedup), the root's dpkg runs with
# force-unsafe-io: no fsync per unpacked file, which a throwaway root does not need.
set -uo pipefail
part=${1:-all}
case $part in run|setup|all) ;; *) echo "usage: $0 [run|setup]" >&2; exit 2 ;; esac

here=$(dirname "$0")
. "$here/../integration/lib.sh"
. "$here/root.sh"
require_env WEFT_SOURCE_DIR
keep_going=1
step() { echo "# $*" >&2; }

root_make root || exit 1
cache=${WEFT_ROOT_CACHE:-/var/cache/weft-tests}/apt
mkdir -p "$cache/archives/partial" "$cache/lists/partial" "$tmp/apt"/{archives,lists}

ct_copy ct "$root" || exit 1
mkdir -p "$ct_root/etc/dpkg/dpkg.cfg.d"
echo force-unsafe-io >"$ct_root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
mkdir -p "$ct_root/src"
# The checkout as git has it: tracked and new files, not the build trees.
(cd "$WEFT_SOURCE_DIR" && git ls-files -z -c -o --exclude-standard) |
    (cd "$WEFT_SOURCE_DIR" && tar --null -T - -cf -) | tar -C "$ct_root/src" -xf - ||
    { fail "cannot copy the checkout into the root"; exit 1; }
for t in make cc gcc cmake git; do
    [ ! -e "$ct_root/usr/bin/$t" ] || fail "the pristine root has $t: it is not pristine"
done

# The apt cache as the commands see it: an overlay over the shared one, writes kept in $tmp.
apt_view=(--overlay="$cache/archives:$tmp/apt/archives:/var/cache/apt/archives"
          --overlay="$cache/lists:$tmp/apt/lists:/var/lib/apt/lists")
# nspawn ARGS... -- CMD...: run CMD in the root (not booted), the apt cache seen through
# apt_view (ARGS may replace it).
nspawn() {
    local opts=()
    while [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    systemd-nspawn --quiet --register=no --keep-unit -M "weft-pristine-$$" -D "$ct_root" \
        "${opts[@]}" -- "$@"
}

step "prefetching the packages run.sh and test.sh install (the machine's network)"
# The one writer of the shared cache: the cache itself bound in, under a lock that the other
# part of the test (run or setup) waits on; the second to come finds everything there.
exec {prefetch_lock}>"$cache/.prefetch.lock"
flock "$prefetch_lock"
# shellcheck disable=SC2016
nspawn --chdir=/src --bind="$cache/archives:/var/cache/apt/archives" \
       --bind="$cache/lists:/var/lib/apt/lists" -- sh -ec 'export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --download-only --no-install-recommends $(sh scripts/setup.sh -n test)' \
    >"$tmp/prefetch.log" 2>&1 || { fail "apt-get --download-only failed (prefetch.log)"; exit 1; }
exec {prefetch_lock}>&-

# run_cmd NAME: `sh run.sh` in the root, in a private network, under weft-supervise, with
# NOTIFY_SOCKET bound in (weftd's READY=1 reaches us; nspawn itself gets none). --as-pid2:
# weftd is not the namespace's init, so it gets SIGINT like anywhere else.
run_cmd() {
    launch -n "$1" -s -e -- env -u NOTIFY_SOCKET systemd-nspawn --quiet --register=no \
        --keep-unit -M "weft-pristine-$$" -D "$ct_root" --private-network --as-pid2 \
        "${apt_view[@]}" \
        --bind="$tmp/$1.sock:/run/weft.notify" --setenv=NOTIFY_SOCKET=/run/weft.notify \
        --chdir=/src -- sh run.sh
}
# payload NAME: the host pid of what nspawn NAME runs (the child of its stub init).
payload() {
    local p q
    for p in $(cat "/proc/${sv_pid[$1]}/task/${sv_pid[$1]}/children" 2>/dev/null); do
        for q in $(cat "/proc/$p/task/$p/children" 2>/dev/null); do
            echo "$q"
        done
    done | head -1
}
in_ct() {       # in_ct NAME CMD...: CMD in the network namespace of nspawn NAME's payload
    local n=$1
    shift
    timeout 10 nsenter -t "$(payload "$n")" -n "$@"
}

if [ "$part" != setup ]; then
step "sh run.sh (installs, builds, serves)"
t0=$SECONDS
run_cmd run
if wait_ready run 600; then
    step "ready after $((SECONDS - t0)) s"
    in_ct run sh -c '[ "$(printf "ping\n" | nc -N 127.0.0.1 7007)" = ping ]' ||
        fail "run.sh: no echo on 7007"
    in_ct run sh -c 'nc -N 127.0.0.1 7070 </dev/null' | grep -q . || fail "run.sh: no poem on 7070"
    in_ct run curl -sf http://127.0.0.1:8080/ | grep -q "Web Server Test" ||
        fail "run.sh: no test page on 8080"
    grep -q "^OUT=weft: building weftd and its plugins" "$tmp/run.notify" ||
        fail "run.sh did not say what it builds"
    if compgen -G "$ct_root/src/build/tests/unit/unit_*" >/dev/null ||
       compgen -G "$ct_root/src/build/examples/example_*" >/dev/null; then
        fail "run.sh built the tests or the examples, not only weftd and its plugins"
    fi
    kill -INT "$(payload run)"
    wait_event run 'EXIT=*' 60 || fail "weftd did not stop within 60 s of SIGINT"
    [ "${sv_exit[run]}" = 0 ] || fail "run.sh exited ${sv_exit[run]} after SIGINT, not 0"
else
    fail "run.sh: weftd did not get ready within 600 s"
fi
sv_forget run

step "sh run.sh again (everything there: quiet)"
run_cmd again
if wait_ready again 120; then
    # What it printed before weftd's own log lines ("<time> <level>: ...").
    noise=$(awk '/^READY=1$/ { exit } /^(OUT|ERR)=/' "$tmp/again.notify" |
            grep -cvE '^(OUT|ERR)=([0-9-]+ [0-9:.]+ )?(error|warning|notice|info|debug): ')
    [ "$noise" -le 2 ] || fail "a second run.sh printed $noise lines before weftd's own"
    in_ct again sh -c '[ "$(printf "ping\n" | nc -N 127.0.0.1 7007)" = ping ]' ||
        fail "the second run.sh: no echo on 7007"
    kill -INT "$(payload again)"
    wait_event again 'EXIT=*' 60 || fail "weftd did not stop within 60 s of SIGINT"
else
    fail "the second run.sh did not get ready within 120 s"
fi
sv_forget again
fi

if [ "$part" != run ]; then
step "sh scripts/setup.sh test (test.sh's setup step)"
tools=$(grep -rhoE 'require_tool [a-z0-9_.-]+' "$WEFT_SOURCE_DIR/tests" | awk '{print $2}' | sort -u)
nspawn --private-network --chdir=/src "${apt_view[@]}" -- sh -ec "sh scripts/setup.sh test
    cmake -S . -B /tmp/suite -DWEFT_TESTS=ON >/tmp/cmake.log 2>&1 || { cat /tmp/cmake.log; exit 1; }
    for t in $(echo $tools) valgrind clang haproxy; do
        command -v \$t >/dev/null || { echo \"missing: \$t\"; exit 1; }
    done" >"$tmp/setup-test.log" 2>&1 || fail "test.sh's setup step left the suite unable to run"
logs+=("$tmp/setup-test.log")
fi

case $part in
run) finish "PASS: run.sh (twice) on a pristine Debian 12 minbase root" ;;
setup) finish "PASS: test.sh's setup on a pristine Debian 12 minbase root" ;;
*) finish "PASS: run.sh and test.sh's setup on a pristine Debian 12 minbase root" ;;
esac
