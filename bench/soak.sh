#!/bin/sh
# SPDX-License-Identifier: MIT
# soak.sh: `make soak`: mixed echo, HTTP, poem (and TLS) traffic for SOAK_SECONDS; zero errors, flat RSS.
#
# Usage: sh bench/soak.sh [BUILD_DIR]   (default build-load, configured -DWEFT_BENCH=ON)
# Environment:
#   SOAK_SECONDS    600 (SOAK_SECONDS=60 for a quick run)
#   SOAK_WORKERS    2
#   SOAK_ECHO       32 echo sessions at a time (messages of 1..4096 bytes)
#   SOAK_HTTP       16 HTTP keep-alive sessions at a time (GET of a 16 KiB file)
#   SOAK_POEM       2 poem sessions at a time (5 ms apart)
#   SOAK_THINK_MS   2: pause between a session's exchanges (keeps the machine usable)
#   SOAK_TLS        auto: TLS echo clients too if weftd takes tls_certificate (weftd -t decides);
#                   on: required; off: none. SOAK_TLS_CONNS 2 (python3's ssl module; each
#                   session: handshake, 20 echoes of 1..4096 bytes, close).
#   SAMPLE_SECONDS  10; RSS_SLACK_KIB 2048: the workers' summed VmRSS may exceed its first
#                   sample by this much, at most, at any later sample.
#
# mixload (bench/mixload.c) runs the sessions and checks every byte; the TLS clients are a
# python3 loop (connect, handshake, a random message echoed back and compared, close). Every
# SAMPLE_SECONDS the workers' VmRSS and descriptors are sampled. Fails on: any failed session,
# a worker replaced (crashed), RSS growth over the slack, a warning or error in weftd's log.
set -u
NAME=soak
. "$(dirname "$0")/weftd-lib.sh"
load_init "$@"

SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_WORKERS=${SOAK_WORKERS:-2}
SOAK_ECHO=${SOAK_ECHO:-32}
SOAK_HTTP=${SOAK_HTTP:-16}
SOAK_POEM=${SOAK_POEM:-2}
SOAK_THINK_MS=${SOAK_THINK_MS:-2}
SOAK_TLS=${SOAK_TLS:-auto}
SOAK_TLS_CONNS=${SOAK_TLS_CONNS:-2}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-10}
RSS_SLACK_KIB=${RSS_SLACK_KIB:-2048}
FAILED=0

p_echo=$(free_port); p_http=$(free_port); p_poem=$(free_port); p_tls=$(free_port)
mkdir -p "$TMP/www"
head -c 12288 /dev/urandom | base64 -w 76 | head -c 16384 >"$TMP/www/page.txt"
cat >"$TMP/poem.txt" <<'EOP'
The loop turns over, one event at a time,
each socket waiting for its turn to rhyme;
a worker falls, another takes its place,
and every byte comes back in the same space.
EOP
conf=$TMP/soak.conf
cat >"$conf" <<EOC
[weftd]
plugin_dir = $BUILD/plugins
log_level = notice
workers = $SOAK_WORKERS
EOC
mix_services "$p_echo" "$p_http" "$p_poem" >>"$conf"

# TLS: a self-signed certificate and an [echo_tls] service, if this weftd takes the keys.
tls=off
if [ "$SOAK_TLS" != off ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=localhost -keyout "$TMP/key.pem" -out "$TMP/cert.pem" >/dev/null 2>&1
    cp "$conf" "$TMP/tls.conf"
    cat >>"$TMP/tls.conf" <<EOC

[echo_tls]
protocol = echo
listen = 127.0.0.1:$p_tls
tls_certificate = $TMP/cert.pem
tls_key = $TMP/key.pem
EOC
    if "$WEFTD" -t -c "$TMP/tls.conf" >"$TMP/tls-check.out" 2>&1; then
        tls=on
        cp "$TMP/tls.conf" "$conf"
    elif [ "$SOAK_TLS" = on ]; then
        echo "soak: SOAK_TLS=on but weftd does not take the TLS keys:"
        sed 's/^/    /' "$TMP/tls-check.out"
        exit 1
    else
        echo "soak: TLS: SKIPPED: this weftd does not take tls_certificate yet" \
             "($(grep -m1 tls_ "$TMP/tls-check.out"))"
    fi
fi

start_weftd "$conf" || exit 1
ws0=$(workers | sort | tr '\n' ' ')
echo "soak: $SOAK_SECONDS s of echo x $SOAK_ECHO, HTTP x $SOAK_HTTP, poem x $SOAK_POEM," \
     "TLS echo x $([ $tls = on ] && echo "$SOAK_TLS_CONNS" || echo 0)" \
     "against $SOAK_WORKERS workers ($ws0); $(machine_load)"

"$BIN/mixload" -d "$SOAK_SECONDS" -i "$SOAK_THINK_MS" -z 5 -M "$MASTER" -o "$TMP/fails" \
    -e "$p_echo:$SOAK_ECHO" -t "$p_http:$SOAK_HTTP" -u /page.txt -b "$TMP/www/page.txt" \
    -q "$p_poem:$SOAK_POEM" -f "$TMP/poem.txt" >"$TMP/mixload.out" 2>"$TMP/mixload.err" &
mix=$!
STARTED="$STARTED $mix"

tlspids=""
if [ $tls = on ]; then
    i=0
    while [ $i -lt "$SOAK_TLS_CONNS" ]; do
        python3 - "$p_tls" "$SOAK_SECONDS" "$TMP/cert.pem" >"$TMP/tlsc$i.out" 2>&1 <<'EOPY' &
import os, socket, ssl, sys, time
port, secs, ca = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
end = time.monotonic() + secs
conns = msgs = errors = 0
while time.monotonic() < end:
    conns += 1
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as s:
                for _ in range(20):
                    msg = os.urandom(1 + int.from_bytes(os.urandom(2), "big") % 4096)
                    s.sendall(msg)
                    got = b""
                    while len(got) < len(msg):
                        chunk = s.recv(len(msg) - len(got))
                        if not chunk:
                            raise ConnectionError("EOF from the server")
                        got += chunk
                    if got != msg:
                        raise ValueError("wrong bytes echoed")
                    msgs += 1
    except Exception as e:
        errors += 1
        if errors <= 5:
            print("tls: session %d: %r" % (conns, e), file=sys.stderr)
        time.sleep(0.02)
print("tls_sessions=%d tls_msgs=%d tls_errors=%d" % (conns, msgs, errors))
sys.exit(1 if errors else 0)
EOPY
        tlspids="$tlspids $!"
        STARTED="$STARTED $!"
        i=$((i + 1))
    done
fi

# Sample every SAMPLE_SECONDS while mixload runs.
: >"$TMP/samples"
t=0
while kill -0 "$mix" 2>/dev/null; do
    sleep "$SAMPLE_SECONDS"
    t=$((t + SAMPLE_SECONDS))
    kill -0 "$mix" 2>/dev/null || break
    line="t=${t}s rss_kib=$(workers_rss) fds=$(workers_fds)"
    for w in $(workers); do line="$line $w:$(rss_kib "$w")KiB/$(fd_count "$w")fd"; done
    echo "$line" >>"$TMP/samples"
    echo "soak: $line"
done
wait "$mix"
mixrc=$?
forget "$mix"
echo "soak: mixload: $(cat "$TMP/mixload.out")"
if [ $mixrc -ne 0 ]; then
    echo "soak: FAILED: mixload exit status $mixrc; its failures:"
    head -20 "$TMP/mixload.err" | sed 's/^/    /'
    FAILED=1
fi
for p in $tlspids; do
    if ! wait "$p"; then FAILED=1; fi
    forget "$p"
done
if [ $tls = on ]; then
    cat "$TMP"/tlsc*.out | sed 's/^/soak: TLS: /'
    awk -F'tls_errors=' 'NF > 1 && $2 + 0 > 0 { bad = 1 } END { exit bad }' "$TMP"/tlsc*.out \
        || { echo "soak: FAILED: TLS errors"; FAILED=1; }
fi

ws1=$(workers | sort | tr '\n' ' ')
if [ "$ws0" != "$ws1" ]; then
    echo "soak: FAILED: the workers changed: $ws0 -> $ws1"
    FAILED=1
fi
if grep -Eq '^(warning|error)' "$conf.log"; then
    echo "soak: FAILED: weftd logged warnings or errors:"
    grep -E '^(warning|error)' "$conf.log" | head -10 | sed 's/^/    /'
    FAILED=1
fi
if [ -s "$TMP/samples" ]; then
    awk -v slack="$RSS_SLACK_KIB" '{ split($2, a, "="); r = a[2] + 0
        if (NR == 1) first = r; last = r; if (r > max) max = r }
        END { printf "soak: workers VmRSS (sum, KiB) over %d samples: first %d, last %d, max %d " \
                     "(slack %d)\n", NR, first, last, max, slack
              exit (max - first > slack) }' "$TMP/samples" || {
        echo "soak: FAILED: RSS grew beyond the slack"; FAILED=1; }
fi
stop_weftd
if [ $FAILED -eq 0 ]; then echo "soak: PASSED"; else echo "soak: FAILED"; fi
exit $FAILED
