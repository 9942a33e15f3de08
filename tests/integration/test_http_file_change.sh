#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_http_file_change.sh: a file truncated or overwritten in place while a slow client
# downloads it, over TLS (the body is read with pread) and over plain HTTP (sendfile). The
# download ends short (never with wrong bytes passed off as whole), weftd logs why, the one
# worker keeps its PID (nothing killed it: a mapped file raised SIGBUS here once), an idle
# connection to another service on that worker still echoes, and the next download is whole.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD WEFT_SOURCE_DIR
require_tool nc netcat-openbsd curl curl openssl openssl
keep_going=1

make_certs
mkdir "$tmp/www"
head -c 1048576 /dev/urandom >"$tmp/small"
cp "$tmp/small" "$tmp/www/small"

launch_it() {
    cat >"$tmp/weftd.conf" <<EOF
$(weftd_section "workers = 1" "log_level = info")

[echo]
protocol = echo
listen = 127.0.0.1:${ports[0]}

[https]
protocol = http
listen = 127.0.0.1:${ports[1]}
root = $tmp/www
tls_certificate = $c/a.pem
tls_key = $c/a.key

[http]
protocol = http
listen = 127.0.0.1:${ports[2]}
root = $tmp/www
EOF
    launch "$WEFTD" -c "$tmp/weftd.conf"
}
start_weftd 3 launch_it || exit 1
wpid=$(sed -n 's/.*worker \([0-9]*\) started (config.*/\1/p' "$tmp/weftd.err" | head -n 1)
[ -n "$wpid" ] || fail "no worker PID in the log"

# An idle connection to the echo service, on the same worker, for the whole test.
coproc idle { exec nc 127.0.0.1 "${ports[0]}"; }
started "$idle_PID"
exec {idle_in}>&"${idle[1]}" {idle_out}<&"${idle[0]}"

# fetch NAME URL CURL-ARGS...: a download at 4 MB/s into $tmp/NAME.body, in the background
# (its PID in fetch_pid); curl's -w line (status and bytes) lands in $tmp/NAME.w.
fetch() {
    local name=$1 url=$2
    shift 2
    curl -sS --limit-rate 4M --resolve "a.test:${ports[1]}:127.0.0.1" --cacert "$c/ca.pem" \
        -o "$tmp/$name.body" -w '%{http_code} %{size_download}\n' "$@" "$url" \
        >"$tmp/$name.w" 2>"$tmp/$name.curl.err" &
    fetch_pid=$!
    started "$fetch_pid"
}

# grown FILE BYTES: wait (up to lib_timeout) until FILE holds at least BYTES.
grown() {
    local end left
    end=$(lib_deadline "$lib_timeout")
    while [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -lt "$2" ]; do
        lib_left left "$end" || return 1
        sleep 0.05
    done
}

# change NAME URL HOW: download a 64 MiB file; once 4 MiB have arrived, HOW changes it in
# place; curl must end with an error, short of 64 MiB.
change() {
    local name=$1 url=$2 how=$3 rc=0
    head -c 67108864 /dev/zero >"$tmp/www/big"
    fetch "$name" "$url"
    grown "$tmp/$name.body" 4194304 || fail "$name: the download did not start: $(cat "$tmp/$name.curl.err")"
    case $how in
    truncate) : >"$tmp/www/big" ;;
    cp) cp "$tmp/small" "$tmp/www/big" ;;
    esac
    wait "$fetch_pid" || rc=$?
    size=$(stat -c %s "$tmp/$name.body")
    [ "$rc" -ne 0 ] || fail "$name: curl reported success for a body that cannot be whole ($(cat "$tmp/$name.w"))"
    [ "$size" -lt 67108864 ] || fail "$name: a whole 64 MiB arrived after the file changed"
    kill -0 "$wpid" 2>/dev/null || fail "$name: the worker $wpid is gone"
    printf 'still here %s\n' "$name" >&"$idle_in"
    IFS= read -r -t "$lib_timeout" -u "$idle_out" line || line="(nothing)"
    [ "$line" = "still here $name" ] || fail "$name: the idle echo connection answered: $line"
    # the next download over the same service is whole
    curl -sS --resolve "a.test:${ports[1]}:127.0.0.1" --cacert "$c/ca.pem" -o "$tmp/$name.after" \
        "${url%/big}/small" || fail "$name: the next download failed"
    cmp -s "$tmp/small" "$tmp/$name.after" || fail "$name: the next download differs"
}

change tls-truncate "https://a.test:${ports[1]}/big" truncate
wait_log "$tmp/weftd.err" "the file shrank" 1 || fail "TLS: no log line for the file that shrank"
change tls-cp "https://a.test:${ports[1]}/big" cp
change plain-truncate "http://127.0.0.1:${ports[2]}/big" truncate
change plain-cp "http://127.0.0.1:${ports[2]}/big" cp

if grep -E "worker [0-9]+ (killed|exited|dumped)|starting another" "$tmp/weftd.err"; then
    fail "a worker died"
fi
kill "$idle_PID" 2>/dev/null || true
stop_weftd || fail "weftd exited $? after SIGTERM"
finish "a file changed while it is sent: that download ends short, the worker and its other connections live on"
