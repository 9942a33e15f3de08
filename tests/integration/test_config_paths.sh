#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_config_paths.sh: every path in a config is relative to the config file's directory,
# whatever weftd's current directory: weftd's tls_certificate / tls_key, the http plugin's
# root and access_log, the poem plugin's poems (weft_plugin_path). weftd runs from /.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD WEFT_SOURCE_DIR
require_tool nc netcat-openbsd curl curl openssl openssl
keep_going=1

site=$tmp/site
mkdir -p "$site/www" "$site/poems" "$site/logs"
make_certs "$site/certs" ||
    { fail "cannot make certificates"; exit 1; }
printf 'relative root\n' >"$site/www/index.html"
printf 'a poem found next to the config\n' >"$site/poems/one.txt"

launch_site() {
    cat >"$site/weftd.conf" <<CONF
$(weftd_section)
[web]
protocol = http
listen = 127.0.0.1:${ports[0]}
root = www
access_log = logs/access.log
[poem]
protocol = poem
listen = 127.0.0.1:${ports[1]}
poems = poems
greeting_timeout = 100ms
[tls]
protocol = echo
listen = 127.0.0.1:${ports[2]}
tls_certificate = certs/a.pem
tls_key = certs/a.key
CONF
    launch sh -c 'cd / && exec "$@"' sh "$WEFTD" -c "$site/weftd.conf"
}
start_weftd 3 launch_site || exit 1

[ "$(curl -s "http://127.0.0.1:${ports[0]}/")" = "relative root" ] ||
    fail "root = www is not the www next to the config"
wait_log "$site/logs/access.log" 'GET / ' ||
    fail "access_log = logs/access.log is not next to the config"
[ "$(timeout 10 nc 127.0.0.1 "${ports[1]}" </dev/null)" = "a poem found next to the config" ] ||
    fail "poems = poems is not the poems next to the config"
tls_say "$tmp/tls.out" "through tls" -- -connect "127.0.0.1:${ports[2]}" \
    -CAfile "$site/certs/ca.pem" -servername a.test
grep -q "through tls" "$tmp/tls.out" || fail "tls_certificate = certs/a.pem did not serve: $(cat "$tmp/tls.out")"
stop_weftd || fail "weftd exited $?"

finish "ok: root, access_log, poems, tls_certificate and tls_key are relative to the config's directory"
