#!/bin/sh
# SPDX-License-Identifier: MIT
# test.sh: the README's second command. On Debian 12, as root, with nothing installed:
# installs the packages that are missing (scripts/setup.sh test), then runs the whole suite
# (make test: the plain build, the ASan+UBSan build, valgrind). Exit status 0 iff all passed.
set -eu
cd "$(dirname "$0")"
sh scripts/setup.sh test
exec make --no-print-directory test
