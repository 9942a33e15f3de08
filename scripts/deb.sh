#!/bin/sh
# SPDX-License-Identifier: MIT
# deb.sh [OUTDIR]: build the Debian packages (weftd, libweft0, libweft-dev) from the
# checkout as git has it (tracked and new files, not build trees), with debian/ and
# dpkg-buildpackage, in OUTDIR/src; the .debs land in OUTDIR (default build/deb). Installs
# the missing build dependencies first (as root). `make deb` runs it. docs/packaging.md.
set -eu
cd "$(dirname "$0")/.."
out=${1:-build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

need="dpkg-dev debhelper fakeroot git $(sed -n '/^Build-Depends:/,/^[A-Z]/p' debian/control |
    sed -e '1s/^Build-Depends://' -e '/^[A-Z]/d' | tr ',' '\n' | sed -e 's/(.*)//' -e 's/[[:space:]]//g' |
    grep -v '^debhelper-compat$' | grep . | tr '\n' ' ')"
missing=
for p in $need; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed' ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "deb.sh: missing:$missing (apt-get install$missing)" >&2; exit 1; }
    echo "deb.sh: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends $missing ||
        { apt-get update -q && apt-get install -y -q --no-install-recommends $missing; }
fi

rm -rf "$out/src" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$out/src"
git ls-files -z -c -o --exclude-standard | tar --null -T - -cf - | tar -C "$out/src" -xf -
echo "deb.sh: building the packages (log: $out/build.log)"
if ! (cd "$out/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
        dpkg-buildpackage -us -uc -b --buildinfo-option=-u"$out" --changes-option=-u"$out") \
        >"$out/build.log" 2>&1; then
    tail -n 40 "$out/build.log"
    echo "deb.sh: dpkg-buildpackage failed (all of it: $out/build.log)" >&2
    exit 1
fi
# dpkg-buildpackage leaves the .debs in the parent of the source: that is $out.
ls "$out"/*.deb
