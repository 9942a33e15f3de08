#!/bin/bash
# SPDX-License-Identifier: MIT
# valgrind.sh TEST [ARGS...]: run an integration test with every weftd it starts under valgrind
# memcheck (through $WEFTD_WRAPPER, honoured by tests/integration/weftd.c and lib.sh's launch).
# Fails if the test fails, or if any weftd process (master or worker) reported a memcheck
# error or a definite leak. Suppressions: tests/valgrind.supp (system-library noise only).
set -u
: "${WEFT_SOURCE_DIR:?run through ctest}"
command -v valgrind >/dev/null || { echo "valgrind is not installed: skipped"; exit 77; }
vg=$(mktemp -d /tmp/weft-valgrind.XXXXXX)
trap 'rm -rf "$vg"' EXIT
# --error-exitcode: a weftd with errors also exits 99, which the tests see as a failed stop.
# --log-file per pid: each worker forked by the master writes its own report.
export WEFTD_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full \
--show-leak-kinds=definite --errors-for-leak-kinds=definite --track-fds=no \
--suppressions=$WEFT_SOURCE_DIR/tests/valgrind.supp --gen-suppressions=all \
--log-file=$vg/vg.%p.log"
# valgrind makes weftd start and answer 20-50x slower: the tests' waits are generous.
"$@"
rc=$?
bad=0
for f in "$vg"/vg.*.log; do
    [ -s "$f" ] || continue
    # -q: a log holds only errors (and leak records counted as errors).
    if grep -qE '^==[0-9]+== +(Invalid|Conditional|Syscall param|Mismatched|Source and destination|.*definitely lost|Use of uninitialised|Argument)' "$f" ||
       grep -qE 'ERROR SUMMARY: [1-9]' "$f"; then
        echo "---- valgrind: $f ----"
        cat "$f"
        bad=1
    fi
done
n=$(ls "$vg" | wc -l)
# A test that skipped itself (e.g. no TLS in weftd yet; exit 0, or 77 as ctest's skip) started
# no weftd: skipped here too.
if [ "$n" -eq 0 ] && { [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; } && [ "$bad" -eq 0 ]; then
    echo "valgrind: the test started no weftd: skipped"
    exit 77
fi
echo "valgrind: $n weftd processes checked"
[ "$n" -gt 0 ] || { echo "valgrind: no weftd ran under valgrind"; bad=1; }
[ "$rc" -eq 0 ] || echo "valgrind: the test failed (status $rc)"
[ "$rc" -eq 0 ] && [ "$bad" -eq 0 ]
