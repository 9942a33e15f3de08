#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_unix_weftd.sh: listen = unix:PATH beside a TCP address: echo through `nc -U`, http
# through `curl --unix-socket` (and an abstract name), the file's mode and owner, a reload
# that keeps the socket (same inode, a client from before still served, no connect refused
# meanwhile), a file removed by hand bound again by a reload, the file gone after stop, a killed weftd's stale file replaced, a non-socket
# file refused and kept, and a socket passed by systemd-socket-activate never removed.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_tool nc netcat-openbsd
require_tool curl curl

run=$tmp/run
mkdir "$run" "$tmp/www"
echo "hello over unix" >"$tmp/www/index.html"
esock=$run/echo.sock
hsock=$run/http.sock
abstract=weft-test-http-$$

# Who the file goes to: as root another user (the workers' nobody) and its group.
if [ "$(id -u)" -eq 0 ]; then
    owner=nobody group=$(id -gn nobody)
    owner_key="unix_user = $owner"
else
    owner=$(id -un) group=$(id -gn)
    owner_key=
fi

write_conf() {   # write_conf MODE
    {
        weftd_section "workers = 2"
        printf '[echo]\nprotocol = echo\nlisten = 127.0.0.1:%s, unix:%s\n' "${ports[0]}" "$esock"
        printf 'unix_mode = %s\n%s\nunix_group = %s\n' "$1" "$owner_key" "$group"
        printf '[http]\nprotocol = http\nlisten = unix:%s, unix:@%s\nroot = %s\n' \
            "$hsock" "$abstract" "$tmp/www"
        printf 'access_log = %s\n' "$tmp/access.log"
        # TLS over a unix socket; a PROXY header from a local sender (trusted: it is local).
        printf '[tls]\nprotocol = echo\nlisten = unix:%s\ntls_certificate = %s\ntls_key = %s\n' \
            "$run/tls.sock" "$c/a.pem" "$c/a.key"
        printf '[proxied]\nprotocol = http\nlisten = unix:%s\nproxy_protocol = v1\nroot = %s\n' \
            "$run/proxy.sock" "$tmp/www"
        printf 'access_log = %s\n' "$tmp/proxied.log"
    } >"$tmp/weftd.conf"
}
launch_unix() {
    write_conf 0660
    launch "$WEFTD" -c "$tmp/weftd.conf"
}
unix_echo_ok() {
    [ "$(printf '%s\n' "${2:-ping}" | timeout 5 nc -N -U "$1" 2>/dev/null)" = "${2:-ping}" ]
}

# 1. Serving, mixed with TCP.
make_certs
start_weftd 1 launch_unix
unix_echo_ok "$esock" || fail "no echo over nc -U"
echo_ok "${ports[0]}" || fail "no echo over TCP beside the unix socket"
[ "$(timeout 10 curl -sS --unix-socket "$hsock" http://weft/)" = "hello over unix" ] ||
    fail "no page over curl --unix-socket"
[ "$(timeout 10 curl -sS --abstract-unix-socket "$abstract" http://weft/)" = "hello over unix" ] ||
    fail "no page over the abstract socket @$abstract"
[ ! -e "@$abstract" ] || fail "an abstract name made a file"
grep -q "echo: listening on unix:$esock" "$tmp/weftd.err" || fail "no listening line for $esock"
grep -q "http: listening on unix:@$abstract" "$tmp/weftd.err" || fail "no listening line for @"
# The access log names the peer by its credentials (curl's pid), never a garbled address.
wait_log "$tmp/access.log" '"GET / HTTP/1.1" 200' 2 || fail "no access log lines"
grep -Eq '^unix:pid=[0-9]+,uid='"$(id -u)"' - - \[' "$tmp/access.log" ||
    fail "access log peer is not unix:pid=N,uid=N: $(head -1 "$tmp/access.log")"
[ "$(stat -c '%F %a %U %G' "$esock")" = "socket 660 $owner $group" ] ||
    fail "echo.sock is $(stat -c '%F %a %U %G' "$esock"), not socket 660 $owner $group"
[ "$(stat -c '%a' "$hsock")" = 666 ] || fail "http.sock's default mode is $(stat -c %a "$hsock")"
tls_say "$tmp/sc.out" hello -- -unix "$run/tls.sock" -CAfile "$c/ca.pem" -servername a.test
grep -qx hello "$tmp/sc.out" || fail "no echo over TLS on a unix socket: $(cat "$tmp/sc.out")"
grep -q "Verify return code: 0" "$tmp/sc.out" || fail "TLS over unix: certificate not verified"
[ "$(timeout 10 curl -sS --unix-socket "$run/proxy.sock" --haproxy-protocol \
    -H 'Host: weft' http://weft/)" = "hello over unix" ] || fail "no page through PROXY over unix"
# Over a unix socket curl sends "PROXY UNKNOWN": the peer stays the real, local one.
wait_log "$tmp/proxied.log" '"GET / HTTP/1.1" 200' || fail "no access log line for PROXY"
grep -q '^unix:pid=' "$tmp/proxied.log" || fail "PROXY UNKNOWN: $(cat "$tmp/proxied.log")"
# A load balancer's header names its TCP client: the log shows that one.
printf 'PROXY TCP4 192.0.2.7 192.0.2.1 5555 80\r\nGET / HTTP/1.0\r\nHost: weft\r\n\r\n' |
    timeout 10 nc -N -U "$run/proxy.sock" >"$tmp/proxied.out" || fail "nc -U with PROXY failed"
grep -q "hello over unix" "$tmp/proxied.out" || fail "no page for a PROXY TCP4 header over unix"
wait_log "$tmp/proxied.log" '192.0.2.7 - - ' || fail "PROXY over unix: the claimed client not logged"
# weftd -t while it runs: the live socket is in use, and is left alone.
ino=$(stat -c %i "$esock")
if "$WEFTD" -t -c "$tmp/weftd.conf" >"$tmp/check.out" 2>&1; then
    fail "weftd -t accepted sockets a running weftd listens on"
fi
grep -q "unix:$esock: in use" "$tmp/check.out" || fail "weftd -t did not say the socket is in use"
[ "$(stat -c %i "$esock")" = "$ino" ] || fail "weftd -t replaced the running socket"

# 2. A reload keeps the socket: same inode, a client from before still served, no connect
#    refused during it; the new unix_mode applies to the kept file.
mkfifo "$tmp/persist.in"
exec {pw}<>"$tmp/persist.in"
# nc must not hold the FIFO's write end ({pw}>&-): closing ours is its EOF.
timeout 120 nc -N -U "$esock" <"$tmp/persist.in" >"$tmp/persist.out" {pw}>&- &
ncpid=$!
started "$ncpid"
echo before >&"$pw"
wait_log "$tmp/persist.out" before 1 10 || fail "the long client got no echo before the reload"
(
    exec {pw}>&-
    n=0 bad=0
    while [ ! -e "$tmp/reload.done" ]; do
        unix_echo_ok "$esock" "during" || bad=$((bad + 1))
        n=$((n + 1))
    done
    echo "$n $bad" >"$tmp/during"
) &
bg=$!
started "$bg"
write_conf 0666
reload_weftd || fail "reload failed: $reload_status"
touch "$tmp/reload.done"
wait "$bg"
read -r tries refused <"$tmp/during"
[ "$tries" -ge 1 ] && [ "$refused" -eq 0 ] ||
    fail "$refused of $tries connects around the reload failed"
[ "$(stat -c %i "$esock")" = "$ino" ] || fail "the reload made a new socket file"
[ "$(stat -c %a "$esock")" = 666 ] || fail "the reload did not apply unix_mode = 0666"
echo after >&"$pw"
wait_log "$tmp/persist.out" after 1 10 || fail "the client from before the reload lost its echo"
exec {pw}>&-
wait "$ncpid" || fail "the client from before the reload did not end cleanly ($?)"
unix_echo_ok "$esock" || fail "no echo after the reload"

# 2b. A socket file removed by hand: nobody can connect; a reload binds the path again.
rm -f "$esock"
reload_weftd || fail "reload after removing the socket file failed: $reload_status"
[ -S "$esock" ] || fail "the reload did not bind the removed socket file again"
grep -q "unix:$esock: the socket file was removed or replaced: bound again" "$tmp/weftd.err" ||
    fail "no log line saying the socket file was bound again"
[ "$(stat -c %a "$esock")" = 666 ] || fail "the socket bound again has mode $(stat -c %a "$esock")"
unix_echo_ok "$esock" || fail "no echo on the socket file bound again"

# 3. A killed weftd leaves its files; the next one replaces them, and a stop removes them.
sv_forget weftd     # SIGKILL to the whole group
[ -S "$esock" ] || fail "a SIGKILLed weftd left no socket file (the test proves nothing)"
unix_echo_ok "$esock" && fail "a dead socket answered"
start_weftd 1 launch_unix
grep -q "unix:$esock: removing a stale socket" "$tmp/weftd.err" || fail "no stale-socket line"
unix_echo_ok "$esock" || fail "no echo after replacing the stale socket"
stop_weftd || fail "weftd exited with $? after SIGTERM"
[ ! -e "$esock" ] && [ ! -e "$hsock" ] || fail "socket files left after stop: $(ls "$run")"

# 4. Anything but a socket at the path is refused, and kept.
echo precious >"$esock"
if "$WEFTD" -t -c "$tmp/weftd.conf" >"$tmp/check.out" 2>&1; then
    fail "weftd -t accepted a regular file at a unix: address"
fi
grep -q "a file that is not a socket is there" "$tmp/check.out" ||
    fail "weftd -t did not say why: $(cat "$tmp/check.out")"
[ "$(cat "$esock")" = precious ] || fail "weftd removed or changed a regular file"
rm -f "$esock"

# 5. Socket activation: the socket systemd binds at a path serves the unix: line, and weftd
#    never removes it (its unit does).
if ! command -v systemd-socket-activate >/dev/null; then
    echo "SKIP: systemd-socket-activate is not installed (Debian package systemd)"
else
    asock=$run/act.sock
    launch_activated() {
        printf '%s\n[echo]\nprotocol = echo\nlisten = unix:%s\nunix_mode = 0600\n' \
            "$(weftd_section)" "$asock" >"$tmp/act.conf"
        launch systemd-socket-activate -l "$asock" -E NOTIFY_SOCKET -E ASAN_OPTIONS \
            -E UBSAN_OPTIONS "$WEFTD" -c "$tmp/act.conf"
        # weftd starts at the first connection, which it then answers.
        wait_log -p "$pid" "$tmp/weftd.err" "Listening on $asock" 1 10 &&
            { unix_echo_ok "$asock" || fail "no echo from the first activated connection"; }
        return 0
    }
    start_weftd 0 launch_activated || exit 1
    amode=$(stat -c %a "$asock")
    unix_echo_ok "$asock" || fail "the socket from systemd is not served"
    grep -q "socket activation: 1 socket from systemd" "$tmp/weftd.err" ||
        fail "no socket activation line"
    [ "$(stat -c %a "$asock")" = "$amode" ] || fail "weftd changed the mode of systemd's socket"
    reload_weftd || fail "reload with an activated unix socket failed: $reload_status"
    unix_echo_ok "$asock" || fail "the activated socket is not served after a reload"
    stop_weftd || fail "activated weftd exited with $?"
    [ -S "$asock" ] || fail "weftd removed the socket systemd made"
fi
echo "ok: unix sockets: nc -U, curl --unix-socket and @abstract served beside TCP; mode $owner:$group 660; reload kept inode $ino ($tries connects during it, none refused); a removed file bound again by a reload; removed at stop, stale one replaced, regular file kept, systemd's left alone"
