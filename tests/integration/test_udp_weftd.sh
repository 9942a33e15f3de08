#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_udp_weftd.sh: weftd's echo on udp: listen addresses (IPv4 and ::1) beside TCP, two workers
# on the shared sockets: nc -u and a python3 client with many sockets at once, each gets its own
# answers; a reload keeps the UDP sockets; a UDP socket from systemd-socket-activate -d is served;
# udp: with the poem or http plugin fails weftd -t.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD
require_tool nc netcat-openbsd
require_tool python3 python3

v6=1
python3 -c 'import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::1", 0))' \
    2>/dev/null || { v6=0; echo "note: no ::1 here: IPv6 skipped"; }

# one.py PORT MSG: one datagram to 127.0.0.1:PORT comes back (asked again after a drop).
cat >"$tmp/one.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.1", int(sys.argv[1])))
msg = sys.argv[2].encode()
s.settimeout(0.5)
for _ in range(10):         # UDP may drop: ask again, up to 5 s
    s.send(msg)
    try:
        sys.exit(0 if s.recv(100) == msg else "wrong answer")
    except socket.timeout:
        pass
sys.exit("no answer")
EOF

launch_echo() {
    local udp6=
    [ "$v6" -eq 0 ] || udp6=", udp:[::1]:${ports[0]}"
    printf '[weftd]\nworkers = 2\nlog_level = info\n[echo]\nprotocol = echo\n' >"$tmp/weftd.conf"
    printf 'listen = 127.0.0.1:%s, udp:127.0.0.1:%s%s\n' "${ports[0]}" "${ports[0]}" "$udp6" \
        >>"$tmp/weftd.conf"
    launch "$WEFTD" -c "$tmp/weftd.conf"
}

start_weftd 1 launch_echo
port=${ports[0]}
grep -q "echo: listening on udp:127.0.0.1:$port" "$tmp/weftd.err" || fail "no udp: listening line"

# nc -u: one datagram per line; -w1 ends it a second after the answer (both at once).
printf 'hello over udp\n' | timeout 10 nc -u -w1 127.0.0.1 "$port" >"$tmp/nc4.out" &
nc4=$!
if [ "$v6" -eq 1 ]; then
    printf 'hello over udp6\n' | timeout 10 nc -u -w1 ::1 "$port" >"$tmp/nc6.out" &
    nc6=$!
fi
wait "$nc4" || fail "nc -u (IPv4) failed"
[ "$(cat "$tmp/nc4.out")" = "hello over udp" ] || fail "nc -u IPv4: got '$(cat "$tmp/nc4.out")'"
if [ "$v6" -eq 1 ]; then
    wait "$nc6" || fail "nc -u (IPv6) failed"
    [ "$(cat "$tmp/nc6.out")" = "hello over udp6" ] || fail "nc -u ::1: got '$(cat "$tmp/nc6.out")'"
fi
echo_ok "$port" || fail "TCP echo on the same port number does not answer"

# Many clients at once, each with its own socket (so its own port): every datagram comes back
# to its sender and to no one else, whichever worker read it. A lost datagram is sent again
# (UDP may drop), at most 5 times.
cat >"$tmp/clients.py" <<'EOF'
import os, select, socket, sys, time
port, v6 = int(sys.argv[1]), sys.argv[2] == "1"
socks = []
for i in range(40):
    fam, host = (socket.AF_INET6, "::1") if v6 and i % 2 else (socket.AF_INET, "127.0.0.1")
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect((host, port))
    s.setblocking(False)
    socks.append(s)
want = {s: {b"client %d datagram %d %s" % (i, k, os.urandom(4).hex().encode()) for k in range(5)}
        for i, s in enumerate(socks)}
pending = {s: set(w) for s, w in want.items()}
deadline = time.monotonic() + 10
for attempt in range(5):
    for s, left in pending.items():
        for d in left:
            s.send(d)
    t_end = time.monotonic() + 1
    while any(pending.values()) and time.monotonic() < min(t_end, deadline):
        r, _, _ = select.select([s for s in socks if pending[s]], [], [], 0.2)
        for s in r:
            while True:
                try:
                    d = s.recv(65536)
                except BlockingIOError:
                    break
                if d not in want[s]:
                    sys.exit("a client got a datagram it did not send: %r" % d)
                pending[s].discard(d)
    if not any(pending.values()):
        break
left = sum(len(v) for v in pending.values())
if left:
    sys.exit("%d datagrams never came back" % left)
print("ok %d clients, %d datagrams, %d tries" % (len(socks), 5 * len(socks), attempt + 1))
EOF
timeout 30 python3 "$tmp/clients.py" "$port" "$v6" >"$tmp/clients.out" ||
    fail "python3 clients: $(cat "$tmp/clients.out")"
cat "$tmp/clients.out"

# A reload keeps the UDP sockets (the master holds them): still answered after it.
reload_weftd || fail "reload failed"
timeout 10 python3 "$tmp/one.py" "$port" "after reload" || fail "no UDP answer after a reload"

stop_weftd || fail "weftd exited with $? after SIGTERM"

# Socket activation: systemd-socket-activate -d passes a UDP socket (ListenDatagram=); weftd
# matches it to the udp: listen address by type and address, and answers the datagram that
# woke it.
if command -v systemd-socket-activate >/dev/null; then
    launch_activated() {
        printf '[weftd]\nworkers = 1\n[echo]\nprotocol = echo\nlisten = udp:127.0.0.1:%s\n' \
            "${ports[0]}" >"$tmp/act.conf"
        launch systemd-socket-activate -d -l "127.0.0.1:${ports[0]}" -E NOTIFY_SOCKET \
            -E ASAN_OPTIONS -E UBSAN_OPTIONS "$WEFTD" -c "$tmp/act.conf"
        # it execs weftd at the first datagram, which waits in the socket for weftd
        wait_log -p "$pid" "$tmp/weftd.err" "Listening on 127.0.0.1:${ports[0]}" 1 10 &&
            { timeout 20 python3 "$tmp/one.py" "${ports[0]}" "activated" & trig=$!; }
        return 0
    }
    start_weftd 1 launch_activated || exit 1
    wait "$trig" || fail "no answer through the socket systemd-socket-activate passed"
    grep -q "echo: listening on udp:127.0.0.1:${ports[0]}" "$tmp/weftd.err" ||
        fail "the activated UDP socket is not served"
    stop_weftd || fail "activated weftd exited with $? after SIGTERM"

    # A UDP socket systemd names for a service whose plugin does not speak UDP: weftd says
    # so at start, naming the section, and exits 1 before any worker runs.
    printf '[weftd]\nworkers = 1\n[svc]\nprotocol = poem\nlisten = 127.0.0.1:%s\n' \
        "${ports[0]}" >"$tmp/named.conf"
    launch -n named systemd-socket-activate -d -l "127.0.0.1:${ports[0]}" --fdname=svc \
        -E ASAN_OPTIONS -E UBSAN_OPTIONS "$WEFTD" -c "$tmp/named.conf"
    wait_log -p "${sv_pid[named]}" "$tmp/named.err" "Listening on 127.0.0.1:${ports[0]}" 1 10 ||
        fail "systemd-socket-activate -d did not listen"
    python3 -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", int(sys.argv[1])))' "${ports[0]}"
    wait_event named 'EXIT=*' 20 || fail "weftd with a UDP socket for poem did not exit"
    [ "${sv_exit[named]}" = 1 ] || fail "weftd with a UDP socket for poem exited ${sv_exit[named]}"
    grep -q "named.conf:3: \[svc\]: systemd passed a UDP socket (ListenDatagram=, FileDescriptorName=svc) but protocol poem does not speak UDP" \
        "$tmp/named.err" || fail "no error naming the section: $(cat "$tmp/named.err")"
    ! grep -q "worker .* started" "$tmp/named.err" || fail "a worker started: $(cat "$tmp/named.err")"
    sv_forget named
else
    echo "note: systemd-socket-activate is not installed: socket activation skipped"
fi

# A plugin that does not speak UDP: weftd -t names the file, line, section and key.
for proto in poem http; do
    printf '[weftd]\n[svc]\nprotocol = %s\nlisten = 127.0.0.1:%s, udp:127.0.0.1:%s\n' \
        "$proto" "$port" "$port" >"$tmp/$proto.conf"
    [ "$proto" = http ] && echo "root = $tmp" >>"$tmp/$proto.conf"
    rc=0
    "$WEFTD" -t -c "$tmp/$proto.conf" >"$tmp/$proto.out" 2>&1 || rc=$?
    [ "$rc" -eq 1 ] || fail "weftd -t with udp: for $proto exited $rc"
    grep -q "$tmp/$proto.conf:4: \[svc\] listen: udp:127.0.0.1:$port: protocol $proto does not speak UDP" \
        "$tmp/$proto.out" || fail "weftd -t, udp: for $proto: $(cat "$tmp/$proto.out")"
done
echo "ok: nc -u and 40 python3 clients (IPv4$([ "$v6" -eq 1 ] && echo " and ::1")) echoed by 2 workers, kept over a reload; an activated UDP socket served; udp: with poem/http refused by weftd -t"
