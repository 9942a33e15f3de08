#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_systemd_nspawn.sh: weftd as a sysadmin gets it. The Debian packages are built, a
# Debian 12 minbase root with systemd is booted (systemd as PID 1, systemd-nspawn, private
# network), the packages are installed with apt, and then, with systemctl, journalctl, nc,
# curl and openssl s_client inside the container:
#   install: enabled, started (Type=notify: `systemctl start` returns once READY=1), serving;
#   reload: adds a service while an open echo connection survives (no /bin/kill in the
#     root: the unit reloads with weftd itself); a broken config changes nothing, the
#     reload fails, and the journal says why at priority err;
#   access_log under /var/log/weft (ProtectSystem=strict, LogsDirectory=weft);
#   TLS with a root-owned 0600 key in 0700 directories, as certbot makes them, and a reload
#     that picks up a new certificate; workers keep no capability;
#   workers = 0 gets ready;
#   stop: a slow poem finishes although the drain outlasts TimeoutStopSec
#     (EXTEND_TIMEOUT_USEC);
#   kill -9 of a worker (replaced) and of the master (systemd restarts weftd);
#   listen = unix:/run/weft/echo.sock (RuntimeDirectory=weft) with its unix_mode;
#   socket activation per service (weftd@NAME.socket): a connection to a stopped weftd
#     starts it, a ListenStream= path is served (nc -U) and survives weftd's restart, and
#     a socket named for no service is refused with an error;
#   systemd-analyze security: exposure <= 2.0;
#   upgrade restarts the new binary, the edited config is kept, remove stops the daemon,
#     purge leaves no config and no enable symlink; libweft0 has the ldconfig trigger.
# lintian: no error on the packages.
# WEFT_DEB_DIR: use the .debs (and the .changes) there instead of building them.
set -uo pipefail

here=$(dirname "$0")
. "$here/../integration/lib.sh"
. "$here/root.sh"
require_env WEFT_SOURCE_DIR WEFT_BINARY_DIR
keep_going=1

step() { echo "# $*" >&2; }

# ---- the packages ----
debs=${WEFT_DEB_DIR:-}
if [ -z "$debs" ]; then
    step "building the packages (make deb)"
    debs=$WEFT_BINARY_DIR/deb
    make -s -C "$WEFT_SOURCE_DIR" deb DEB_DIR="$debs" >"$tmp/deb.log" 2>&1 ||
        { fail "make deb failed"; exit 1; }
fi
shopt -s nullglob
pkgs=("$debs"/weftd_*.deb "$debs"/libweft0_*.deb)
shopt -u nullglob
[ "${#pkgs[@]}" -eq 2 ] || { fail "no weftd and libweft0 .deb in $debs"; exit 1; }
if command -v lintian >/dev/null; then
    step "lintian"
    lintian --fail-on error "$debs"/*.changes >"$tmp/lintian.log" 2>&1 ||
        fail "lintian reports errors on the packages: $(grep '^E:' "$tmp/lintian.log")"
else
    fail "lintian (lintian) is not installed: scripts/setup.sh test installs it"
fi

# The root: systemd, the clients, and what the packages depend on (no network inside).
# Not procps: the unit must not need /bin/kill.
deps=()
for d in "${pkgs[@]}"; do
    while read -r p; do
        [ -n "$p" ] && [ "$p" != libweft0 ] && deps+=("$p")
    done < <({ dpkg-deb -f "$d" Depends; dpkg-deb -f "$d" Pre-Depends; } | tr ',' '\n' |
             sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g')
done
root_make root systemd systemd-sysv dbus netcat-openbsd curl openssl ca-certificates \
    "${deps[@]}" || exit 1

step "booting the container"
ct_boot ct "$root" || exit 1
mkdir -p "$ct_root/root/debs"
cp "${pkgs[@]}" "$ct_root/root/debs/"

conf=$ct_root/etc/weft/weftd.conf

# echo_in PORT: a line sent to the echo service on PORT inside the container comes back.
echo_in() {
    [ "$(ct sh -c "printf 'ping\n' | timeout 5 nc -N 127.0.0.1 $1" 2>/dev/null)" = ping ]
}
# unix_echo_in PATH: the same through the unix socket PATH (nc -U).
unix_echo_in() {
    [ "$(ct sh -c "printf 'ping\n' | timeout 5 nc -N -U $1" 2>/dev/null)" = ping ]
}
prop() { ct systemctl show -p "$2" --value "$1"; }
main_pid() { prop weftd "MainPID"; }
# workers: the pids of the master's children
workers() {
    local m
    m=$(main_pid)
    [ "$m" != 0 ] && ct cat "/proc/$m/task/$m/children"
}
# journal_since CURSOR_FILE PRIORITY: weftd's journal lines at PRIORITY since the cursor.
cursor() { ct journalctl -n 0 --show-cursor -o cat | sed -n 's/^-- cursor: //p' >"$tmp/$1.cursor"; }
# (Read whole and filtered here: journalctl's own -u/-p matches missed entries of weftd's
# short-lived ExecReload process in this container's journal, which -o export shows.)
journal_since() {
    ct journalctl --no-pager -o export --after-cursor="$(cat "$tmp/$1.cursor")" |
        awk -v p="$2" '
            /^$/ { if (u == "weftd.service" && pr == p) print m; u = pr = m = ""; next }
            /^_SYSTEMD_UNIT=/ { u = substr($0, 15) }
            /^PRIORITY=/ { pr = substr($0, 10) }
            /^MESSAGE=/ { m = substr($0, 9) }
            END { if (u == "weftd.service" && pr == p) print m }'
}
# journal_has CURSOR PRIORITY TEXT: TEXT shows up in journal_since within 10 s (journald
# reads each process's stream on its own: a line can land after the command that wrote it
# has returned).
journal_has() {
    local end left
    end=$(lib_deadline 10)
    until journal_since "$1" "$2" | grep -qF -- "$3"; do
        lib_left left "$end" || return 1
        sleep 0.1
    done
}
# until_true SECONDS CMD...: CMD until it succeeds (a state systemd or weftd will reach).
until_true() {
    local end left
    end=$(lib_deadline "$1")
    shift
    until "$@" >/dev/null 2>&1; do
        lib_left left "$end" || return 1
        sleep 0.1
    done
}

write_conf() {      # the services of a config, after a common [weftd] section
    { printf '[weftd]\nlog_level = info\nworkers = %s\n%s\n' "${workers:-2}" "${global:-}"; cat; } \
        >"$conf"
}
base_services='[echo]
protocol = echo
listen = 127.0.0.1:7007, unix:/run/weft/echo.sock
unix_mode = 0660

[poem]
protocol = poem
listen = 127.0.0.1:7070

[http]
protocol = http
listen = 127.0.0.1:8080'

# ---- install ----
step "apt-get install the packages"
logs+=("$tmp/apt-install.log")
ct_timeout=180 ct sh -c 'apt-get install -y /root/debs/weftd_*.deb /root/debs/libweft0_*.deb' \
    >"$tmp/apt-install.log" 2>&1 || { fail "apt-get install of the packages failed"; exit 1; }
[ "$(ct systemctl is-enabled weftd)" = enabled ] || fail "install did not enable weftd.service"
[ "$(ct systemctl is-active weftd)" = active ] || fail "install did not start weftd.service"
echo_in 7007 || fail "the installed weftd does not echo on 7007"
[ "$(ct sh -c 'curl -s http://127.0.0.1:8080/ | grep -c "Web Server Test"')" -ge 1 ] ||
    fail "the installed weftd does not answer HTTP on 8080"
ct sh -c 'nc -N 127.0.0.1 7070 </dev/null' >"$tmp/poem.txt" 2>&1
[ -s "$tmp/poem.txt" ] || fail "the installed weftd recites no poem on 7070"
ct grep -qs ldconfig /var/lib/dpkg/info/libweft0:amd64.triggers /var/lib/dpkg/info/libweft0.triggers ||
    fail "libweft0 has no ldconfig trigger"
state=$(ct systemctl is-system-running)
[ "$state" = running ] || fail "after install the system is $state, not running: $(ct systemctl --failed --no-legend)"
[[ $(prop weftd StatusText) == *ready* || $(prop weftd StatusText) == *connection* ]] ||
    fail "weftd's status text says nothing: '$(prop weftd StatusText)'"

# ---- reload: a service added while a connection stays open; /bin/kill is not needed ----
step "reload"
ct test ! -e /bin/kill -a ! -e /usr/bin/kill || fail "the root has a kill binary: the test proves nothing"
write_conf <<<"$base_services"
ct systemctl restart weftd || fail "restart with the test config failed"
# listen = unix:/run/weft/echo.sock: in the unit's RuntimeDirectory, with weftd's mode.
unix_echo_in /run/weft/echo.sock || fail "no echo through unix:/run/weft/echo.sock"
[ "$(ct stat -c '%F %a %U' /run/weft/echo.sock)" = "socket 660 weft" ] ||
    fail "/run/weft/echo.sock is $(ct stat -c '%F %a %U' /run/weft/echo.sock)"
kfifo=$tmp/keep.in
mkfifo "$kfifo"
exec {kw}<>"$kfifo"
launch -n keep -s -- sh -c 'exec "$@" <"$0"' "$kfifo" nsenter -t "$ct_leader" -a \
    env -i PATH=/usr/bin:/bin nc 127.0.0.1 7007
printf 'before\n' >&"$kw"
wait_event keep 'OUT=before' 10 || fail "the kept echo connection does not echo"
mpid=$(main_pid)
write_conf <<EOF
$base_services

[echo2]
protocol = echo
listen = 127.0.0.1:7008
EOF
ct systemctl reload weftd >"$tmp/reload.log" 2>&1 || fail "systemctl reload failed: $(cat "$tmp/reload.log")"
echo_in 7008 || fail "the service added by the reload does not echo on 7008"
[[ $(prop weftd StatusText) != *"reload failed"* ]] || fail "status after reload: $(prop weftd StatusText)"
printf 'after\n' >&"$kw"
wait_event keep 'OUT=after' 10 || fail "the echo connection opened before the reload was cut"
[ "$(main_pid)" = "$mpid" ] || fail "the reload changed the master's pid"

step "a broken reload"
cursor broken
cp "$conf" "$tmp/good.conf"
printf '\n[oops]\nprotocol = echo\nlisten = 127.0.0.1:7009\nbogus_key = 1\n' >>"$conf"
ct systemctl reload weftd >"$tmp/reload-broken.log" 2>&1 && fail "systemctl reload of a broken config succeeded"
[ "$(ct systemctl is-active weftd)" = active ] || fail "a broken reload stopped weftd"
echo_in 7007 && echo_in 7008 || fail "a broken reload changed what is served"
echo_in 7009 && fail "a broken reload started the broken service"
journal_has broken 3 "bogus_key" ||
    fail "the journal has no error (priority err) naming the bad key: $(journal_since broken 3)"
printf 'still\n' >&"$kw"
wait_event keep 'OUT=still' 10 || fail "the echo connection was cut by a broken reload"
exec {kw}>&-
cp "$tmp/good.conf" "$conf"

step "journal priorities"
cursor prio
ct systemctl reload weftd || fail "reload failed"
journal_has prio 5 "reloaded" || fail "'reloaded' is not logged at priority notice"
journal_has prio 6 "started (config" || fail "'worker N started (config N)' is not logged at priority info"
journal_since prio 3 | grep -q . && fail "a good reload logged errors: $(journal_since prio 3)"

# ---- access_log under /var/log/weft ----
step "access_log = /var/log/weft/access.log"
global='' write_conf <<EOF
$base_services
access_log = /var/log/weft/access.log
EOF
ct systemctl restart weftd || fail "weftd does not start with access_log under /var/log/weft"
ct curl -s -o /dev/null http://127.0.0.1:8080/ || fail "curl failed"
until_true 10 ct grep -q 'GET / ' /var/log/weft/access.log ||
    fail "no request line in /var/log/weft/access.log"

# ---- TLS with a key only root can read ----
step "TLS with a root-only key"
mkcert() {
    ct sh -ec "umask 077; mkdir -p /etc/letsencrypt/archive/t /etc/letsencrypt/live/t
        openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=$1 \
            -keyout /etc/letsencrypt/archive/t/privkey$2.pem \
            -out /etc/letsencrypt/archive/t/fullchain$2.pem 2>/dev/null
        ln -sfn ../../archive/t/privkey$2.pem /etc/letsencrypt/live/t/privkey.pem
        ln -sfn ../../archive/t/fullchain$2.pem /etc/letsencrypt/live/t/fullchain.pem
        chmod 700 /etc/letsencrypt/archive /etc/letsencrypt/live"
}
peer_cn() {
    ct sh -c 'printf "tls\n" | timeout 10 openssl s_client -connect 127.0.0.1:7443 -quiet \
        -verify_quiet 2>&1; true' >"$tmp/sclient.log" 2>&1
    ct sh -c 'timeout 10 openssl s_client -connect 127.0.0.1:7443 </dev/null 2>/dev/null |
        openssl x509 -noout -subject'
}
mkcert one 1 || fail "cannot make a certificate"
write_conf <<EOF
$base_services

[tls]
protocol = echo
listen = 127.0.0.1:7443
tls_certificate = /etc/letsencrypt/live/t/fullchain.pem
tls_key = /etc/letsencrypt/live/t/privkey.pem
EOF
ct stat -L -c '%U %a' /etc/letsencrypt/live/t/privkey.pem | grep -q '^root 600$' ||
    fail "the key is not root 0600"
ct systemctl restart weftd || fail "weftd does not start with a root-only TLS key"
[[ $(peer_cn) == *"CN = one"* ]] || fail "s_client does not see the certificate 'one': $(peer_cn)"
grep -q '^tls$' "$tmp/sclient.log" || fail "no echo through TLS: $(cat "$tmp/sclient.log")"
mkcert two 2
ct systemctl reload weftd || fail "reload with a new certificate failed"
[[ $(peer_cn) == *"CN = two"* ]] || fail "after a reload s_client does not see the new certificate: $(peer_cn)"
for w in $(workers); do
    caps=$(ct sed -n 's/^Cap\(Eff\|Prm\|Amb\):[[:space:]]*//p' "/proc/$w/status" | sort -u)
    [ "$caps" = 0000000000000000 ] || fail "worker $w has capabilities: $caps"
done
[ -n "$(workers)" ] || fail "no workers to check"

# ---- workers = 0 ----
step "workers = 0"
workers=0 write_conf <<<"$base_services"
ct_timeout=30 ct systemctl restart weftd || fail "weftd with workers = 0 did not get ready in 30 s"
echo_in 7007 || fail "weftd with workers = 0 does not echo"

# ---- stop: a slow poem outlasts TimeoutStopSec ----
step "stop with a slow poem and a short TimeoutStopSec"
global='shutdown_timeout = 30s' write_conf <<EOF
$base_services

[slowpoem]
protocol = poem
listen = 127.0.0.1:7071
delay = 150ms
chunk = 8
EOF
mkdir -p "$ct_root/etc/systemd/system/weftd.service.d"
printf '[Service]\nTimeoutStopSec=2s\n' >"$ct_root/etc/systemd/system/weftd.service.d/stop.conf"
ct systemctl daemon-reload
ct systemctl restart weftd || fail "restart failed"
full=$(wc -c <"$tmp/poem.txt")
launch -n slow -s -- nsenter -t "$ct_leader" -a env -i PATH=/usr/bin:/bin \
    bash -c 'nc 127.0.0.1 7071 </dev/null | while IFS= read -r -d "" -n 1 c; do echo byte; done'
wait_event slow 'OUT=byte' 10 || fail "the slow poem does not start"
t0=$SECONDS
ct systemctl stop weftd || fail "systemctl stop failed"
wait_event slow 'EXIT=*' 30 || fail "the poem client did not end"
got=$(grep -c '^OUT=byte' "$tmp/slow.notify")
[ "$got" -ge "$full" ] || fail "stop cut the slow poem: $got of $full bytes"
[ "$(prop weftd Result)" = success ] || fail "stop ended with Result=$(prop weftd Result)"
[ $((SECONDS - t0)) -ge 2 ] || fail "the poem took less than TimeoutStopSec: the test proves nothing"
rm -r "$ct_root/etc/systemd/system/weftd.service.d"
ct systemctl daemon-reload
write_conf <<<"$base_services"
ct systemctl start weftd || fail "start failed"

# ---- kill -9 ----
step "kill -9 of a worker and of the master"
mpid=$(main_pid)
w=$(workers | head -1)
ct sh -c "kill -9 $w"
until_true 20 sh -c "[ \$(nsenter -t $ct_leader -a cat /proc/$mpid/task/$mpid/children | wc -w) -eq 2 ] &&
    ! nsenter -t $ct_leader -a cat /proc/$mpid/task/$mpid/children | grep -qw $w" ||
    fail "the killed worker was not replaced"
echo_in 7007 || fail "no echo after a worker was killed"
[ "$(main_pid)" = "$mpid" ] || fail "a worker's death restarted the master"
ct sh -c "kill -9 $mpid"
until_true 30 sh -c "[ \"\$(nsenter -t $ct_leader -a systemctl show -p MainPID --value weftd)\" != $mpid ] &&
    [ \"\$(nsenter -t $ct_leader -a systemctl is-active weftd)\" = active ]" ||
    fail "systemd did not restart weftd after kill -9 of the master"
echo_in 7007 || fail "no echo after the master was killed and restarted"

# ---- socket activation per service ----
step "socket activation: weftd@echo.socket"
ct systemctl stop weftd
mkdir -p "$ct_root/etc/systemd/system/weftd@echo.socket.d"
# A path too: systemd makes (and owns) the socket file; weftd serves it and never removes it.
printf '[Socket]\nListenStream=127.0.0.1:7007\nListenStream=/run/weft/echo-act.sock\n' \
    >"$ct_root/etc/systemd/system/weftd@echo.socket.d/listen.conf"
ct systemctl daemon-reload
ct systemctl enable --now weftd@echo.socket || fail "cannot enable weftd@echo.socket"
[ "$(ct systemctl is-active weftd)" = inactive ] || fail "weftd runs before any connection"
echo_in 7007 || fail "a connection to the socket did not start weftd and get its echo"
[ "$(ct systemctl is-active weftd)" = active ] || fail "the connection did not start weftd"
unix_echo_in /run/weft/echo-act.sock || fail "no echo through systemd's ListenStream=/run/weft/echo-act.sock"
ct systemctl restart weftd || fail "restart with an activation socket failed (ExecStartPre?)"
echo_in 7007 || fail "no echo after a restart with socket activation"
unix_echo_in /run/weft/echo-act.sock ||
    fail "no echo through systemd's unix socket after a restart (did weftd remove it?)"
state=$(ct systemctl is-system-running)
[ "$state" = running ] || fail "with socket activation the system is $state: $(ct systemctl --failed --no-legend)"

step "socket activation: a socket named for no service"
cursor nosvc
mkdir -p "$ct_root/etc/systemd/system/weftd@nosuch.socket.d"
printf '[Socket]\nListenStream=127.0.0.1:7099\n' >"$ct_root/etc/systemd/system/weftd@nosuch.socket.d/listen.conf"
ct systemctl daemon-reload
ct systemctl stop weftd
ct systemctl start weftd@nosuch.socket || fail "cannot start weftd@nosuch.socket"
ct_timeout=30 ct systemctl start weftd && fail "weftd started with a socket for no service"
journal_has nosvc 3 '"nosuch"' ||
    fail "no error naming the socket 'nosuch': $(journal_since nosvc 3)"
ct systemctl stop weftd@nosuch.socket
rm -r "$ct_root/etc/systemd/system/weftd@nosuch.socket.d"
ct systemctl daemon-reload
ct systemctl reset-failed
ct systemctl start weftd || fail "weftd does not start again without the bad socket"

# ---- hardening ----
step "systemd-analyze security"
ct systemd-analyze security weftd >"$tmp/security.log" 2>&1
exposure=$(sed -n 's/.*Overall exposure level for weftd.service: \([0-9.]*\).*/\1/p' "$tmp/security.log")
[ -n "$exposure" ] || fail "no exposure level: $(tail -3 "$tmp/security.log")"
awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.0) }' ||
    fail "systemd-analyze security weftd: exposure $exposure > 2.0"
step "exposure $exposure"

# ---- upgrade, remove, purge ----
step "upgrade"
ct systemctl disable --now weftd@echo.socket
ct systemctl restart weftd
up=$tmp/up
dpkg-deb -R "$debs"/weftd_*.deb "$up"
ver=$(dpkg-deb -f "$debs"/weftd_*.deb Version)
sed -i "s/^Version: .*/Version: $ver+up1/" "$up/DEBIAN/control"
dpkg-deb -b "$up" "$ct_root/root/debs/up.deb" >/dev/null || fail "cannot make the upgrade .deb"
echo '; edited by the sysadmin' >>"$conf"
mpid=$(main_pid)
ct_timeout=120 ct apt-get install -y /root/debs/up.deb >"$tmp/apt-upgrade.log" 2>&1 ||
    fail "apt-get install of the upgrade failed"
logs+=("$tmp/apt-upgrade.log")
npid=$(main_pid)
[ "$npid" != "$mpid" ] && [ "$npid" != 0 ] || fail "the upgrade did not restart weftd"
ct readlink "/proc/$npid/exe" | grep -q deleted && fail "weftd runs a deleted binary after the upgrade"
ct grep -q 'edited by the sysadmin' /etc/weft/weftd.conf || fail "the upgrade overwrote the edited config"
echo_in 7007 || fail "no echo after the upgrade"

step "remove and purge"
# An activation socket the sysadmin enabled: remove stops it too, purge drops its link.
ct systemctl stop weftd
ct systemctl enable --now weftd@echo.socket || fail "cannot enable weftd@echo.socket again"
ct_timeout=120 ct apt-get remove -y weftd >"$tmp/apt-remove.log" 2>&1 || fail "apt-get remove failed"
logs+=("$tmp/apt-remove.log")
ct sh -c 'cat /proc/[0-9]*/comm' | grep -qx weftd && fail "weftd still runs after apt-get remove"
[ "$(ct systemctl is-active weftd@echo.socket)" != active ] ||
    fail "weftd@echo.socket still listens after apt-get remove"
ct sh -c 'nc -z 127.0.0.1 7007' && fail "something still listens on 7007 after apt-get remove"
ct test -e /etc/weft/weftd.conf || fail "remove deleted the config (a conffile stays until purge)"
ct_timeout=120 ct apt-get purge -y weftd >"$tmp/apt-purge.log" 2>&1 || fail "apt-get purge failed"
logs+=("$tmp/apt-purge.log")
ct test -e /etc/weft/weftd.conf && fail "purge left /etc/weft/weftd.conf"
dangling=$(ct find /etc/systemd/system -xtype l)
[ -z "$dangling" ] || fail "purge left dangling symlinks: $dangling"
ct test -e /var/lib/systemd/deb-systemd-helper-enabled/weftd.service.dsh-also &&
    fail "purge left deb-systemd-helper state"

finish "PASS: weftd under systemd 252 in a container: install, reload, TLS, stop, restart, socket activation, exposure $exposure, upgrade, purge"
