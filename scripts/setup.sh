#!/bin/sh
# SPDX-License-Identifier: MIT
# Installs the Debian packages weft needs to build, test and benchmark, if missing.
# Run by run.sh, test.sh, `make run`, `make test` and `make bench` before anything else.
#   setup.sh [-n] [build|test|bench]
#   -n: install nothing; print the missing packages, one line (tests/system prefetches them).
set -eu

print=0
if [ "${1:-}" = -n ]; then
    print=1
    shift
fi

# Build and run: compiler, CMake, libraries (libnghttp2-dev: the http plugin's HTTP/2).
# Test: cmocka, real clients (nghttp2-client's nghttp, python3-h2 for hand-made HTTP/2
# frames), python3 (the library's file-dependency check, scripts/filedeps.py), chromium
# (headless, for sh_test_http2_browser: a page and its assets over h2).
PKGS_BUILD="build-essential cmake pkg-config libevent-dev libssl-dev libinih-dev libnghttp2-dev"
PKGS_TEST="libcmocka-dev libpq-dev python3 netcat-openbsd curl openssl procps clang llvm libclang-rt-14-dev node-llhttp systemd valgrind haproxy nginx-light nghttp2-client python3-h2 chromium"
# The system tests (tests/system): a Debian root booted with systemd-nspawn, the packages.
PKGS_TEST="$PKGS_TEST systemd-container debootstrap git lintian dpkg-dev debhelper fakeroot"
# Bench: the peer servers of bench/http.sh and bench/h2.sh (h2o, lighttpd; nginx is in
# PKGS_TEST), h2load (nghttp2-client), perf for profiling.
PKGS_BENCH="python3 python3-uvloop gnuplot-nox wrk h2o lighttpd linux-perf"

want="$PKGS_BUILD"
case "${1:-build}" in
    build) ;;
    test)  want="$want $PKGS_TEST" ;;
    bench) want="$want $PKGS_TEST $PKGS_BENCH" ;;
    *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac
# node-llhttp is the HTTP parser's source: the http plugin needs it to build.
want="$want node-llhttp"

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' ||
        missing="$missing $p"
done
if [ "$print" = 1 ]; then
    echo $missing
    exit 0
fi
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "weft: missing Debian packages:$missing" >&2
    echo "weft: install them as root with:" >&2
    echo "    apt-get install$missing" >&2
    exit 1
fi
echo "weft: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them once if a package is unknown.
if ! apt-get install -y -q --no-install-recommends $missing; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends $missing
fi
