#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh: the README's first command. On Debian 12, as root, with nothing installed: installs
# the packages that are missing (make and the compiler too: scripts/setup.sh), builds weftd
# and its plugins (make build-run; the log in build/build.log), then runs weftd on
# conf/weftd.conf in the foreground (echo on 7007, poem on 7070, HTTP on 8080). Ctrl-C stops
# it; the exit status is weftd's (0 after a clean stop). Arguments go to weftd.
set -eu
cd "$(dirname "$0")"
sh scripts/setup.sh build
make -s --no-print-directory build-run
exec build/daemon/weftd -c conf/weftd.conf "$@"
