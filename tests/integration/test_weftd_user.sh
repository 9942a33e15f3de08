#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_weftd_user.sh: started as root with no user key, weftd's workers run as nobody (as
# nginx's), so a mode-000 file is 403, not served; `user = root` stated keeps them root and
# is logged as a warning.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_tool curl curl
[ "$(id -u)" = 0 ] || { echo "not root: skipped"; exit 77; }
getent passwd nobody >/dev/null || { echo "no user nobody: skipped"; exit 77; }

mkdir -p "$tmp/www"
echo hello >"$tmp/www/hello.txt"
echo secret >"$tmp/www/secret.txt"
chmod 000 "$tmp/www/secret.txt"
user_line=

launch_http() {
    printf '[weftd]\nworkers = 1\nlog_level = info\n%s\n%s\n[http]\nprotocol = http\nlisten = 127.0.0.1:%s\nroot = %s/www\n' \
        "$user_line" "${WEFT_PLUGIN_DIR:+plugin_dir = $WEFT_PLUGIN_DIR}" "${ports[0]}" "$tmp" \
        >"$tmp/weftd.conf"
    launch "$WEFTD" -c "$tmp/weftd.conf"
}

# worker_uid: the real uid of the worker weftd's log says it started.
worker_uid() {
    local pid
    pid=$(grep -o "worker [0-9]* started" "$tmp/weftd.err" | tail -n1 | awk '{print $2}')
    [ -n "$pid" ] || fail "no worker started line"
    awk '/^Uid:/ {print $2}' "/proc/$pid/status"
}

code() { curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:${ports[0]}/$1"; }

start_weftd 1 launch_http
grep -q "no user set: the workers run as nobody" "$tmp/weftd.err" || fail "fallback not logged"
[ "$(worker_uid)" = "$(id -u nobody)" ] || fail "worker uid $(worker_uid), want nobody's"
[ "$(code hello.txt)" = 200 ] || fail "hello.txt not served"
[ "$(code secret.txt)" = 403 ] || fail "a mode-000 file is served: $(code secret.txt)"
stop_weftd || fail "weftd exited $? after SIGTERM"

: >"$tmp/weftd.err"
user_line='user = root'
start_weftd 1 launch_http
grep -q "user = root: the workers run as root, as the config asks" "$tmp/weftd.err" ||
    fail "user = root without its warning"
[ "$(worker_uid)" = 0 ] || fail "user = root: worker uid $(worker_uid)"
stop_weftd || fail "weftd exited $? after SIGTERM"
echo "ok: no user → workers as nobody, mode-000 file 403; user = root stated → root, warned"
