#!/bin/bash
# SPDX-License-Identifier: MIT
# fuzzrun.sh TARGET OUTDIR SECONDS CORPUS INCDIRS SOURCES-AND-FLAGS...: build a libFuzzer target
# with clang (ASan + UBSan) and fuzz it for SECONDS ($WEFT_FUZZ_SECONDS if set: `make fuzz`)
# from a copy of its seed corpus. Exits 77 (skipped) when clang cannot build with
# -fsanitize=fuzzer. Objects are cached per source (OUTDIR/obj) and shared between targets;
# the binary is relinked when one of them changes.
# A crash fails the test and leaves the input as OUTDIR/crash-*: fix the bug, then add the
# input to CORPUS. --only-fuzz first: skipped (77) unless WEFT_FUZZ_SECONDS is set (`make
# fuzz`), for a target whose clang build costs more than the suite can spend.
set -eu
if [ "$1" = --only-fuzz ]; then
    shift
    [ -n "${WEFT_FUZZ_SECONDS:-}" ] || { echo "$1: fuzzed by make fuzz only: skipped"; exit 77; }
fi
target=$1 out=$2 secs=${WEFT_FUZZ_SECONDS:-$3} corpus=$4 incs=$5
shift 5
command -v clang >/dev/null || { echo "no clang: skipped"; exit 77; }
mkdir -p "$out"
# Can clang build a libFuzzer target? Asked once per build tree (the answer is kept as probe).
probe="$out/probe.c"
if [ ! -x "$out/probe" ]; then
    printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' > "$probe"
    clang -fsanitize=fuzzer "$probe" -o "$out/probe.tmp.$$" 2>/dev/null ||
        { rm -f "$out/probe.tmp.$$"; echo "clang has no libFuzzer (libclang-rt-dev): skipped"; exit 77; }
    mv "$out/probe.tmp.$$" "$out/probe"
fi
# --glob=PATTERN: the files matching it now; --not=FILE: leave FILE out.
args=() nots=" "
for a in "$@"; do
    case "$a" in --not=*) nots+="${a#--not=} " ;; esac
done
for a in "$@"; do
    case "$a" in
    --glob=*) for f in ${a#--glob=}; do [[ "$nots" == *" $f "* ]] || args+=("$f"); done ;;
    --not=*) ;;
    *) args+=("$a") ;;
    esac
done
set -- "${args[@]}"
iflags=()
for d in ${incs//;/ }; do iflags+=(-I "$d"); done
for s in "$@"; do
    case "$s" in *.c) iflags+=(-I "$(dirname "$s")") ;; esac
done
# Each source is compiled to an object of its own in OUTDIR/obj, named by a hash of the
# compile flags and of the source as the preprocessor gives it (headers included, whatever
# -I found them), and reused by every target and run that needs the same one: fuzz_proxy,
# fuzz_stream and fuzz_http2 share libweft, the http targets llhttp and files.c. A lock per
# object: two targets running at once compile it once.
# (-D and -I flags are in the preprocessed text already: the key leaves them out, so targets
# with different defines share what they compile alike.)
srcs=() pflags=() cflags=() lflags=()
for a in "$@"; do
    case "$a" in
    *.c|*.S) srcs+=("$a") ;;
    -D*|-I*) pflags+=("$a") ;;
    -f*|-W*|-O*|-g*) cflags+=("$a") ;;
    *) lflags+=("$a") ;;
    esac
done
san=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
cc=(clang -g -O1 "${san[@]}" "${cflags[@]}")
pflags+=(-D_GNU_SOURCE "${iflags[@]}")
mkdir -p "$out/obj"
objs=()
for s in "${srcs[@]}"; do
    key=$({ echo "${cc[*]} $(basename "$s")"; "${cc[@]}" "${pflags[@]}" -E "$s"; } |
          sha1sum | cut -c1-40)
    o="$out/obj/$(basename "$s").$key.o"
    objs+=("$o")
    [ -s "$o" ] && continue
    (
        exec {lk}>"$o.lock"
        flock "$lk"
        [ -s "$o" ] || { "${cc[@]}" "${pflags[@]}" -c "$s" -o "$o.tmp.$$" &&
                         mv "$o.tmp.$$" "$o"; }
    ) || { rm -f "$o.tmp.$$"; echo "fuzzrun: cannot compile $s" >&2; exit 1; }
done
link=(clang "${san[@]}" "${objs[@]}" "${lflags[@]}" -o "$out/$target")
stamp=$({ echo "${link[*]}"; cat "$0"; } | sha1sum | cut -c1-40)
if [ ! -x "$out/$target" ] || [ "$(cat "$out/$target.stamp" 2>/dev/null)" != "$stamp" ]; then
    "${link[@]}"
    echo "$stamp" > "$out/$target.stamp"
fi
work="$out/$target.corpus"
rm -rf "$work"; mkdir -p "$work"
cp "$corpus"/* "$work"/
# -max_total_time bounds the run; a crash leaves crash-* in $out and fails the test.
cd "$out"
# Shown: the last lines (a crash's report), and the final coverage line (DONE cov: ft:)
# and executions, which a dictionary's listing would otherwise push out of them.
rc=0
"./$target" -max_total_time="$secs" -timeout=10 -error_exitcode=1 -rss_limit_mb=1024 -print_final_stats=1 \
    "$work" >"$target.log" 2>&1 || rc=$?
tail -n 15 "$target.log"
grep -E '^#[0-9]+[[:space:]]+DONE' "$target.log" | tail -n 1 || true
grep -E '^stat::number_of_executed_units' "$target.log" | tail -n 1 || true
echo "corpus: $(ls "$work" | wc -l) inputs"
exit "$rc"
