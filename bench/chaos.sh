#!/bin/sh
# SPDX-License-Identifier: MIT
# chaos.sh: `make chaos`: under echo + HTTP + poem load, kill -9 workers at random and SIGHUP the master.
#
# Usage: sh bench/chaos.sh [BUILD_DIR]   (default build-load, configured -DWEFT_BENCH=ON)
# Environment:
#   CHAOS_SECONDS   60: how long the clients run; the signals stop 5 s before the end
#   CHAOS_WORKERS   2
#   CHAOS_GAP_MS    300-1500: the pause between two signals is drawn from this range
#   CHAOS_ECHO 24, CHAOS_HTTP 8, CHAOS_POEM 2: sessions at a time
#
# The sessions (bench/mixload.c) last 1.5-3 s each (echo: messages of 1..4096 bytes, every byte
# checked; HTTP: keep-alive GETs, status, length and body checked; poem: the whole poem), well
# under shutdown_timeout (10 s), so a reload's draining workers never have to cut one.
# Each signal is either kill -9 of one of the master's children, drawn at random (new, old
# draining and not yet ready workers alike), or SIGHUP to the master; the time and the pid of
# every kill are logged.
#
# How a failure is judged. mixload finds, for each session, the worker serving it: the pid
# whose descriptors include the server-side socket of the session's 4-tuple (sock_diag gives its
# inode), looked up once the first reply has arrived. A failed session is explained when:
#   - its worker is known and was killed, at or before the failure; or
#   - its worker is unknown (it failed before the lookup: killed between accept and the first
#     reply, or within the 50 ms lookup period) and a kill happened while it was open. The
#     script notes the time before and after each kill: "while open" means before the failure
#     and after the session's connect began (a session opened between the two times counts),
#     and at most 1 s before the failure (a killed worker's sockets close at once).
# Any other failure (a known worker that was not killed, no kill while it was open, a refused
# connect, a wrong byte) is unexplained and fails the run. So do: the master dying, a worker
# logging anything but the kills and the reloads, weftd not serving a clean 3 s run afterwards,
# or weftd not exiting with status 0 on SIGTERM. Only this daemon's processes are signalled.
set -u
NAME=chaos
. "$(dirname "$0")/weftd-lib.sh"
load_init "$@"

CHAOS_SECONDS=${CHAOS_SECONDS:-60}
CHAOS_WORKERS=${CHAOS_WORKERS:-2}
CHAOS_GAP_MS=${CHAOS_GAP_MS:-300-1500}
CHAOS_ECHO=${CHAOS_ECHO:-24}
CHAOS_HTTP=${CHAOS_HTTP:-8}
CHAOS_POEM=${CHAOS_POEM:-2}
FAILED=0
gap_lo=${CHAOS_GAP_MS%-*}
gap_hi=${CHAOS_GAP_MS#*-}

p_echo=$(free_port); p_http=$(free_port); p_poem=$(free_port)
mkdir -p "$TMP/www"
head -c 6144 /dev/urandom | base64 -w 76 >"$TMP/www/page.txt"
printf 'Kill a worker, reload the rest;\nthe clients never notice the test.\n' >"$TMP/poem.txt"
conf=$TMP/chaos.conf
cat >"$conf" <<EOC
[weftd]
plugin_dir = $BUILD/plugins
log_level = info
workers = $CHAOS_WORKERS
shutdown_timeout = 10s
EOC
mix_services "$p_echo" "$p_http" "$p_poem" >>"$conf"
start_weftd "$conf" || exit 1
echo "chaos: $CHAOS_SECONDS s of echo x $CHAOS_ECHO, HTTP x $CHAOS_HTTP, poem x $CHAOS_POEM;" \
     "kill -9 a worker or SIGHUP every $CHAOS_GAP_MS ms; $(machine_load)"

mixload() {   # mixload SECONDS FAIL_LOG OUT
    "$BIN/mixload" -d "$1" -L 3000 -i 2 -z 5 -M "$MASTER" -o "$2" \
        -e "$p_echo:$CHAOS_ECHO" -t "$p_http:$CHAOS_HTTP" -u /page.txt -b "$TMP/www/page.txt" \
        -q "$p_poem:$CHAOS_POEM" -f "$TMP/poem.txt" >"$3" 2>"$3.err"
}
: >"$TMP/fails"
mixload "$CHAOS_SECONDS" "$TMP/fails" "$TMP/mix.out" &
mix=$!
STARTED="$STARTED $mix"

rand() {   # rand LO HI: an integer in [LO, HI]
    echo $(( $1 + $(od -An -N2 -tu2 /dev/urandom) % ($2 - $1 + 1) ))
}
: >"$TMP/kills"
kills=0 hups=0
end=$(( $(date +%s) + CHAOS_SECONDS - 5 ))
sleep 1
while [ "$(date +%s)" -lt $end ]; do
    ms=$(rand "$gap_lo" "$gap_hi")
    sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
    if ! kill -0 "$MASTER" 2>/dev/null; then
        echo "chaos: FAILED: the master died"
        FAILED=1
        break
    fi
    if [ "$(rand 0 1)" -eq 0 ]; then
        set -- $(workers)
        [ $# -gt 0 ] || continue
        shift $(( $(rand 1 $#) - 1 ))
        # The kill happens between these two times; the log has both.
        t_before=$(date +%s.%N)
        kill -9 "$1" 2>/dev/null && kills=$((kills + 1))
        echo "$t_before $1 $(date +%s.%N)" >>"$TMP/kills"
    else
        echo "$(date +%s.%N) HUP" >>"$TMP/kills"
        kill -HUP "$MASTER" && hups=$((hups + 1))
    fi
done
wait "$mix"
forget "$mix"
echo "chaos: signals: $kills kill -9 of a worker, $hups SIGHUP;" \
     "reloads done $(grep -c 'reloaded:' "$conf.log"), ignored as one was under way" \
     "$(grep -c 'already in progress' "$conf.log"), failed $(grep -c 'reload failed' "$conf.log")"
echo "chaos: mixload: $(cat "$TMP/mix.out")"

# Judge each failure (see the top of this file).
awk -v kf="$TMP/kills" '
BEGIN { while ((getline l < kf) > 0) { split(l, a, " "); if (a[2] == "HUP") continue
                                        nk++; kt0[nk] = a[1]; kt1[nk] = a[3]
                                        killed[a[2]] = a[1] } }
{ tf = $1; to = $2; kind = $3; owner = $4
  if (owner != 0) {
      if ((owner in killed) && killed[owner] <= tf) { by_owner++; next }
      why = "its worker " owner " was not killed before it failed"
  } else {
      for (i = 1; i <= nk; i++)
          if (kt1[i] >= to && kt0[i] <= tf && tf - kt0[i] <= 1) { by_time++; next_ = 1; break }
      if (next_) { next_ = 0; next }
      why = "worker unknown and no kill while it was open"
  }
  bad++
  if (bad <= 10) print "chaos: UNEXPLAINED failure: " $0 " (" why ")"
}
END { printf "chaos: failed sessions: %d, explained: %d by their killed worker, %d by a kill " \
             "while open (worker unknown); unexplained: %d\n", NR, by_owner, by_time, bad + 0
      exit bad > 0 }' "$TMP/fails" || FAILED=1

# Still serving, with nothing failing now that the chaos is over?
sleep 1
: >"$TMP/fails2"
if mixload 3 "$TMP/fails2" "$TMP/after.out"; then
    echo "chaos: after: $(cat "$TMP/after.out")"
else
    echo "chaos: FAILED: a clean run after the chaos failed: $(cat "$TMP/after.out")"
    head -5 "$TMP/after.out.err" | sed 's/^/    /'
    FAILED=1
fi
if grep -E '^(warning|error)' "$conf.log" | grep -Ev 'killed by SIGKILL|reload.*ignored' \
   | grep -q .; then
    FAILED=1
    echo "chaos: weftd logged (besides the kills and ignored reloads):"
    grep -E '^(warning|error)' "$conf.log" | grep -Ev 'killed by SIGKILL|reload.*ignored' \
        | sort | uniq -c | sort -rn | head -10 | sed 's/^/    /'
fi
kill "$MASTER"
i=0
while kill -0 "$MASTER" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
wait "$MASTER"
st=$?
forget "$MASTER"
if [ $st -ne 0 ]; then
    echo "chaos: FAILED: weftd exited with status $st on SIGTERM"
    FAILED=1
fi
if [ $FAILED -eq 0 ]; then echo "chaos: PASSED"; else echo "chaos: FAILED"; fi
exit $FAILED
