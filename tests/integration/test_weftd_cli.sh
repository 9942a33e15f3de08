#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_weftd_cli.sh: weftd's command line: -V, -h, -t and -T on good and bad configs, and
# -r PID (check, then SIGHUP a running weftd).
set -uo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD WEFT_BINARY_DIR WEFT_SOURCE_DIR
require_tool nc netcat-openbsd
keep_going=1
logs=("$tmp/out" "$tmp/err")

# run EXPECTED_STATUS ARGS...: run weftd, keep stdout/stderr in $tmp/out, $tmp/err.
run() {
    local want=$1 got=0
    shift
    timeout 30 "$WEFTD" "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
    [ "$got" -eq "$want" ] || { fail "weftd $* exited $got, expected $want"; return 1; }
}

expect_err() {
    grep -qF -- "$1" "$tmp/err" || fail "stderr lacks: $1"
}

# check_bad NAME CONFIG NEEDLE...: weftd -t (or $check, e.g. -T) on CONFIG exits 1 and
# stderr has every needle.
check=-t
check_bad() {
    local name=$1 conf=$2
    shift 2
    printf '%b' "$conf" >"$tmp/$name.conf"
    run 1 "$check" -c "$tmp/$name.conf" || return
    for needle in "$@"; do
        expect_err "${needle//%F/$tmp/$name.conf}"
    done
    grep -q "configuration ok" "$tmp/out" && fail "$name: said ok"
}

# -V, -h
run 0 -V && grep -qE '^weftd [0-9]+\.[0-9]+\.[0-9]+' "$tmp/out" || fail "-V prints no version"
run 0 -h && grep -q "usage: weftd" "$tmp/out" || fail "-h prints no usage"
for flag in -t -T -r; do
    grep -q -- "$flag" "$tmp/out" || fail "-h does not mention $flag"
done
run 2 -x && grep -q "usage: weftd" "$tmp/err" || fail "bad option: no usage on stderr"

pick_ports port
good="[weftd]\nlog_level = info\n\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:$port\n"

# A good config.
printf '%b' "$good" >"$tmp/good.conf"
run 0 -t -c "$tmp/good.conf" && grep -qx "configuration ok" "$tmp/out" ||
    fail "good config not ok"
# The shipped config is good too (its port, 7007, may be taken on a busy machine: then
# weftd -t says so, and that is all it may say).
if ! timeout 30 "$WEFTD" -t -c "$WEFT_SOURCE_DIR/conf/weftd.conf" >"$tmp/out" 2>"$tmp/err"; then
    grep -q "port in use" "$tmp/err" && ! grep -v "port in use\|[0-9] errors\?$" "$tmp/err" ||
        fail "conf/weftd.conf is not ok"
fi

# Bad configs: each error names the file, the line and the key.
check_bad unknown_key "[weftd]\nlog_level = info\nworkers_max = 3\n$good" \
    "%F:3: [weftd] workers_max: unknown key"
check_bad bad_level "[weftd]\nlog_level = verbose\n" "%F:2: [weftd] log_level: bad value"
check_bad unknown_protocol "[x]\nprotocol = gopher\nlisten = 127.0.0.1:$port\n" \
    "%F:2: [x] protocol: unknown protocol \"gopher\""
check_bad bad_listen "[echo]\nprotocol = echo\nlisten = localhost-ish:7\n" \
    "%F:3: [echo] listen: \"localhost-ish\" is not a numeric"
check_bad port_zero "[echo]\nprotocol = echo\nlisten = 127.0.0.1:0\n" \
    "%F:3: [echo] listen: bad port \"0\""
check_bad port_big "[echo]\nprotocol = echo\nlisten = 127.0.0.1:99999\n" \
    "%F:3: [echo] listen: bad port \"99999\""
check_bad duplicate_listen \
    "[a]\nprotocol = echo\nlisten = 127.0.0.1:$port\n[b]\nprotocol = echo\nlisten = 127.0.0.1:$port\n" \
    "%F:6: [b] listen: 127.0.0.1:$port is already listed by [a] at line 3"
check_bad plugin_key "[echo]\nprotocol = echo\nlisten = 127.0.0.1:$port\ncolour = red\n" \
    "%F:4: [echo] colour: unknown key for protocol echo"
check_bad several "[weftd]\nlog_level = loud\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:0\n" \
    "%F:2: [weftd] log_level" "%F:5: [echo] listen" "2 errors"
check_bad bad_abi "[weftd]\nplugin_dir = $WEFT_BINARY_DIR/test-plugins\n[x]\nprotocol = bad_abi\nlisten = 127.0.0.1:$port\n" \
    "%F:4: [x] protocol: $WEFT_BINARY_DIR/test-plugins/bad_abi.so: built for plugin ABI 7"

# Port in use: a listener held by nc, which says when it listens (-v). A port some other
# process took meanwhile ("in use"): another one.
for try in 1 2 3 4 5; do
    pick_ports busy
    launch -n holder -e nc -lvk 127.0.0.1 "$busy"
    wait_event holder 'ERR=Listening on *' 10 && break
    grep -q "in use" "$tmp/holder.notify" && [ "$try" -lt 5 ] || fail "nc -l did not listen on $busy"
done
check_bad port_in_use "[echo]\nprotocol = echo\n\nlisten = 127.0.0.1:$busy\n" \
    "%F:4: [echo] listen: 127.0.0.1:$busy: port in use"
# -T binds nothing (systemd's sockets or the running weftd hold the ports: the unit's
# ExecStartPre and ExecReload): the port in use is no error...
run 0 -T -c "$tmp/port_in_use.conf" && grep -qx "configuration ok" "$tmp/out" ||
    fail "-T: a port in use is an error: $(cat "$tmp/err")"
stop_weftd holder
# ... but the rest is checked: keys, plugins, their keys, several errors at once.
check=-T
check_bad T_unknown_protocol "[x]\nprotocol = gopher\nlisten = 127.0.0.1:$port\n" \
    "%F:2: [x] protocol: unknown protocol \"gopher\""
check_bad T_plugin_key "[echo]\nprotocol = echo\nlisten = 127.0.0.1:$port\ncolour = red\n" \
    "%F:4: [echo] colour: unknown key for protocol echo"
check_bad T_several "[weftd]\nlog_level = loud\nuser = no-such-user-here\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:0\n" \
    "%F:2: [weftd] log_level" "%F:3: [weftd] user: no such user" "%F:6: [echo] listen" "3 errors"
check_bad T_tls_missing "[echo]\nprotocol = echo\nlisten = 127.0.0.1:$port\ntls_certificate = $tmp/none.pem\ntls_key = $tmp/none.key\n" \
    "%F:4: [echo] tls_certificate: tls_certificate $tmp/none.pem: No such file"
check=-t

# -r PID: check the config as -T does, then SIGHUP the master PID (the unit's ExecReload).
# The weftd it reloads is a real one, whose RELOADING=1 and READY=1 say it got the signal.
launch_live() {
    printf '%b' "[weftd]\nworkers = 1\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:${ports[0]}\n" \
        >"$tmp/live.conf"
    launch "$WEFTD" -c "$tmp/live.conf"
}
start_weftd 1 launch_live || exit 1
# wait_reload N: the next reload weftd reports ends with "STATUS=reloaded (config N)".
wait_reload() {
    wait_event weftd 'RELOADING=1' || { fail "no RELOADING=1 after weftd -r"; return; }
    wait_event weftd 'STATUS=reload*' || { fail "no reload STATUS after RELOADING=1"; return; }
    [ "$sv_line" = "STATUS=reloaded (config $1)" ] || fail "reload: $sv_line, expected config $1"
    wait_event weftd 'READY=1' || fail "no READY=1 after the reload"
}
run 0 -c "$tmp/live.conf" -r "$pid" && grep -qx "configuration ok, sent SIGHUP to $pid" "$tmp/out" ||
    fail "-r: $(cat "$tmp/out" "$tmp/err")"
wait_reload 2
# An invalid config: exit 1, its errors (for the journal), and no signal...
printf '[echo]\nprotocol = gopher\nlisten = 127.0.0.1:%s\n' "${ports[0]}" >"$tmp/bad_r.conf"
run 1 -c "$tmp/bad_r.conf" -r "$pid" && {
    expect_err "$tmp/bad_r.conf:2: [echo] protocol: unknown protocol \"gopher\""
    expect_err "$tmp/bad_r.conf: 1 error, not reloading"
}
grep -q "sent SIGHUP" "$tmp/out" && fail "-r with an invalid config says it sent SIGHUP"
# ... no such process, or not a process id: exit 1 (2 for a bad argument), and why.
nopid=$(($(cat /proc/sys/kernel/pid_max) + 1))
run 1 -c "$tmp/live.conf" -r "$nopid" &&
    expect_err "cannot send SIGHUP to weftd's master $nopid: no such process"
run 2 -c "$tmp/live.conf" -r 12x && expect_err "weftd: -r: \"12x\" is not a process id"
run 2 -c "$tmp/live.conf" -r 0 && expect_err "weftd: -r: \"0\" is not a process id"
# The next signal is the next reload (config 3): the invalid -r sent none.
run 0 -c "$tmp/live.conf" -r "$pid" || fail "-r: $(cat "$tmp/err")"
wait_reload 3
stop_weftd || fail "weftd exited $? after SIGTERM"

# Missing and unreadable files.
run 1 -t -c "$tmp/nonexistent.conf" && expect_err "$tmp/nonexistent.conf: cannot read: No such file"
run 1 -t -c "$tmp" && expect_err "$tmp: cannot read: Is a directory"
if [ "$(id -u)" -ne 0 ]; then
    printf '%b' "$good" >"$tmp/secret.conf"
    chmod 000 "$tmp/secret.conf"
    run 1 -t -c "$tmp/secret.conf" && expect_err "$tmp/secret.conf: cannot read: Permission denied"
fi

# The plugin search path: -p (repeated, or DIR:DIR), $WEFT_PLUGIN_DIR, plugin_dir, then the
# built-in directory (here the build tree's plugins/). -p adds to it: echo is still found.
printf '%b' "$good" >"$tmp/good.conf"
run 0 -t -p "$WEFT_BINARY_DIR/test-plugins" -c "$tmp/good.conf" ||
    fail "-p DIR hides the built-in echo"
# A plugin in the first directory is the one loaded: bad_abi, only in test-plugins.
mkdir -p "$tmp/first"
printf '[weftd]\nplugin_dir = first, %s\n[x]\nprotocol = bad_abi\nlisten = 127.0.0.1:%s\n' \
    "$WEFT_BINARY_DIR/test-plugins" "$port" >"$tmp/path.conf"
run 1 -t -c "$tmp/path.conf" &&
    expect_err "$WEFT_BINARY_DIR/test-plugins/bad_abi.so: built for plugin ABI"
# Not found: the error lists every file looked for, in search order.
printf '[weftd]\nplugin_dir = first, /weft-conf\n[x]\nprotocol = gopher\nlisten = 127.0.0.1:%s\n' \
    "$port" >"$tmp/gopher.conf"
WEFT_PLUGIN_DIR=/weft-env run 1 -t -p /weft-p1 -p /weft-p2:/weft-p3 -c "$tmp/gopher.conf" &&
    expect_err "unknown protocol \"gopher\" (no /weft-p1/gopher.so, /weft-p2/gopher.so, /weft-p3/gopher.so, /weft-env/gopher.so, $tmp/first/gopher.so, /weft-conf/gopher.so, $WEFT_BINARY_DIR/plugins/gopher.so)"

# Every error in one run, each at its key's line: a typo'd key does not hide the same
# section's bad root and access_log; a plugin's file error names its key; "did you mean";
# *:P next to 127.0.0.1:P names both lines.
pick_ports p2
check_bad all_at_once "[weftd]\nlog_levle = info\n\n[web]\nprotocol = http\nlisten = 127.0.0.1:$port\nkeepalive_timout = 5s\nroot = /nonexistent-weft/www\naccess_log = /nonexistent-weft/a.log\n\n[poem]\nprotocol = poem\nlisten = *:$p2\npoems = /nonexistent-weft/poems\n\n[echo]\nprotocol = echo\nlisten = 127.0.0.1:$p2\n" \
    "%F:2: [weftd] log_levle: unknown key; did you mean log_level?" \
    "%F:7: [web] keepalive_timout: unknown key for protocol http; did you mean keepalive_timeout?" \
    "%F:8: [web] root: '/nonexistent-weft/www': No such file or directory; access_log '/nonexistent-weft/a.log': No such file" \
    "%F:14: [poem] poems: /nonexistent-weft/poems: No such file" \
    "%F:18: [echo] listen: 127.0.0.1:$p2 overlaps *:$p2 of [poem] at line 13" \
    "%F: 5 errors"

finish "ok: weftd -V, -h, -t, -T, -r and the plugin search path behave"
