#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# stress-suite.sh [-n N] [-j JOBS] [-c COMMAND] [-t MINUTES] [REPO]
#
# Runs the README's test command (`make test`) N times, each on a fresh `git clone` of REPO's
# committed HEAD, while the machine is loaded: two busy loops at nice 10 and a loopback
# connect/close churn that keeps >= 10,000 sockets in TIME_WAIT inside the ephemeral port
# range. Prints a table, then `N passed, M failed`, then the failing tests with counts; exits 0
# only when every run passed. docs/reliability.md ("Stress: the suite under load") has the rest.
#
#   -n N        runs (10)
#   -j JOBS     exported to the command as JOBS (the Makefile's build and ctest -j; default:
#               unset, i.e. nproc)
#   -c COMMAND  the command, run by bash in the clone (default: the test line of the README's
#               first code block, else `make test`)
#   -t MINUTES  hard time limit for everything (N x 20); then whatever is still running is killed
#   REPO        a git repository, path or URL (default: the one this script is in)
#
# Loopback only. Everything it starts is stopped, by PID, on any exit (Ctrl-C included).
set -u

NAME=stress-suite
RUNS=10
JOBS=
CMD=
LIMIT_MIN=
TW_GOAL=10000    # the TIME_WAIT count the load must keep
TW_TARGET=12000  # what the churn aims at, for a margin

usage() {
    sed -n '3,18s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
die() {
    echo "$NAME: $*" >&2
    exit 2
}
isnum() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

while getopts "n:j:c:t:h" opt; do
    case $opt in
        n) RUNS=$OPTARG ;;
        j) JOBS=$OPTARG ;;
        c) CMD=$OPTARG ;;
        t) LIMIT_MIN=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -le 1 ] || usage
isnum "$RUNS" || die "-n wants a positive number, not '$RUNS'"
[ -z "$JOBS" ] || isnum "$JOBS" || die "-j wants a positive number, not '$JOBS'"
[ -z "$LIMIT_MIN" ] || isnum "$LIMIT_MIN" || die "-t wants minutes, not '$LIMIT_MIN'"
LIMIT=$(( ${LIMIT_MIN:-$((RUNS * 20))} * 60 ))

if [ $# -eq 1 ]; then
    REPO=$1
else
    REPO=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null) ||
        die "not inside a git repository: name REPO"
fi
for tool in git cc timeout; do
    command -v "$tool" >/dev/null || die "needs $tool"
done

read -r ELO EHI </proc/sys/net/ipv4/ip_local_port_range
# The churn server listens in 28000-32767: outside the tests' ports (12000-27999) and below the
# ephemeral range, so its own port is never one a client or a test could be handed.
PLO=28000
PHI=$((ELO - 1 < 32767 ? ELO - 1 : 32767))
[ "$PHI" -ge "$PLO" ] || die "the ephemeral range starts at $ELO: no room for the churn server in 28000-32767"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/$NAME.XXXXXX") || die "cannot create a directory in ${TMPDIR:-/tmp}"
TMPROOTS=(/tmp)
if [ -n "${TMPDIR:-}" ] && [ "$(cd "$TMPDIR" 2>/dev/null && pwd -P)" != /tmp ]; then
    TMPROOTS+=("$TMPDIR")
fi

LOAD_PIDS=()
RUN_PID=
SLEEP_PID=
CLONE=
TOKEN=
INTERRUPTED=
DONE=0

# ---- processes -------------------------------------------------------------------------------

# pids_of_run CLONE TOKEN PGID: every process the run left: its executable or command line is in
# the clone, it carries the run's STRESS_SUITE_RUN token in its environment (every descendant
# inherits it), or it is still in the run's process group. One "pid<TAB>what" a line.
pids_of_run() {
    local clone=$1 token=$2 pgid=$3 d pid exe cmdline stat rest what
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        [ "$pid" = $$ ] && continue
        [ "$pid" = "$BASHPID" ] && continue
        exe=$(readlink "$d/exe" 2>/dev/null) || exe=
        what=
        if [ -n "$clone" ] && [[ $exe == "$clone"/* ]]; then
            what=exe
        elif [ -n "$token" ] && grep -qzFx "STRESS_SUITE_RUN=$token" "$d/environ" 2>/dev/null; then
            what=env
        else
            cmdline=$( (tr '\0' ' ' <"$d/cmdline") 2>/dev/null) || cmdline=
            if [ -n "$clone" ] && [[ $cmdline == *"$clone/"* ]]; then
                what=cmdline
            elif [ -n "$pgid" ]; then
                stat=$(cat "$d/stat" 2>/dev/null) || continue
                rest=${stat##*) }
                read -r _ _ rest _ <<<"$rest"
                [ "$rest" = "$pgid" ] && what=group
            fi
        fi
        [ -n "$what" ] || continue
        printf '%s\t%s (pid %s%s)\n' "$pid" "$(cat "$d/comm" 2>/dev/null || echo '?')" "$pid" \
            "${exe:+, $exe}"
    done
}

# stop_pids PID...: SIGTERM, up to 5 s, then SIGKILL.
stop_pids() {
    local pid i alive
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        alive=
        for pid in "$@"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ -n "$alive" ] || break
        sleep 0.1
    done
    kill -KILL "$@" 2>/dev/null
    for pid in "$@"; do
        wait "$pid" 2>/dev/null
    done
    return 0
}

# stop_run: the run's process group (timeout and what it started), then anything the run left.
stop_run() {
    local pids
    if [ -n "$RUN_PID" ]; then
        kill -TERM -- "-$RUN_PID" 2>/dev/null
        stop_pids "$RUN_PID"
        RUN_PID=
    fi
    if [ -n "$CLONE$TOKEN" ]; then
        mapfile -t pids < <(pids_of_run "$CLONE" "$TOKEN" "" | cut -f1)
        stop_pids "${pids[@]}"
    fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$SLEEP_PID" ] && kill "$SLEEP_PID" 2>/dev/null
    stop_run
    [ -n "$CLONE" ] && rm -rf "$CLONE"
    stop_pids "${LOAD_PIDS[@]}"
    rm -f "$WORK/stress-load" "$WORK/stress-load.c"
    if [ -n "$INTERRUPTED" ]; then
        echo "$NAME: interrupted after $DONE of $RUNS runs; everything it started is stopped; logs: $WORK" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'INTERRUPTED=1; exit 130' INT TERM HUP

# ---- the load --------------------------------------------------------------------------------

# tw_count: TIME_WAIT sockets whose local port is in the ephemeral range (the ports a test's
# bind can collide with).
tw_count() {
    if command -v ss >/dev/null; then
        ss -Htan state time-wait 2>/dev/null |
            awk -v lo="$ELO" -v hi="$EHI" '{ p = $3; sub(/.*:/, "", p); p += 0; if (p >= lo && p <= hi) n++ } END { print n + 0 }'
    else
        cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "06" { n++ } END { print n + 0 }'
    fi
}

load_alive() {
    local pid
    for pid in "${LOAD_PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || return 1
    done
}

cat >"$WORK/stress-load.c" <<'EOF'
/* stress-suite.sh's load: "spin SECONDS" (a busy loop) or
 * "churn SECONDS TARGET PORTLO PORTHI EPHLO-EPHHI": listens on 127.0.0.1, on the first free port
 * of PORTLO-PORTHI, and connects to itself and closes, client first, so that TARGET client
 * sockets (ephemeral ports) stay in TIME_WAIT. Both die after SECONDS (alarm) or with their
 * parent (PR_SET_PDEATHSIG). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Our TIME_WAIT sockets: state 06, peer 127.0.0.1:port, local port in [elo, ehi]. */
static long count_tw(int port, int elo, int ehi)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    long n = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f)) {
        unsigned la, lp, ra, rp, st;
        if (sscanf(line, " %*d: %x:%x %x:%x %x", &la, &lp, &ra, &rp, &st) == 5 && st == 6 &&
            (int)rp == port && (int)lp >= elo && (int)lp <= ehi)
            n++;
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    pid_t parent = getppid();
    if (argc < 3)
        return 2;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        return 1;
    alarm((unsigned)atoi(argv[2]));
    signal(SIGALRM, SIG_DFL);
    if (strcmp(argv[1], "spin") == 0)
        for (volatile unsigned long i = 0;; i++)
            ;
    if (strcmp(argv[1], "churn") != 0 || argc != 7)
        return 2;
    long target = atol(argv[3]);
    int plo = atoi(argv[4]), phi = atoi(argv[5]), elo, ehi;
    if (sscanf(argv[6], "%d-%d", &elo, &ehi) != 2 || phi < plo)
        return 2;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0), port = 0;
    srand((unsigned)getpid());
    for (int i = 0, span = phi - plo + 1, first = rand() % span; i < span; i++) {
        int p = plo + (first + i) % span;
        sa.sin_port = htons((unsigned short)p);
        if (bind(l, (struct sockaddr *)&sa, sizeof sa) == 0) {
            port = p;
            break;
        }
    }
    if (!port || listen(l, 4096) != 0) {
        fprintf(stderr, "churn: no free port in %d-%d: %s\n", plo, phi, strerror(errno));
        return 1;
    }
    fcntl(l, F_SETFL, O_NONBLOCK);
    printf("churn: listening on 127.0.0.1:%d, target %ld TIME_WAIT\n", port, target);
    fflush(stdout);
    /* A TIME_WAIT lasts 60 s: start at target/50 a second; every 2 s the real count corrects the
     * rate (the kernel reuses loopback TIME_WAIT ports, tcp_tw_reuse = 2, so the count is not
     * simply rate x 60). */
    double rate = target / 50.0, credit = 0, last = now(), next_count = last + 2, next_log = last;
    long tw = 0, made = 0, errors = 0;
    for (;;) {
        struct timespec tick = {0, 10 * 1000 * 1000};
        nanosleep(&tick, NULL);
        double t = now();
        credit += rate * (t - last);
        last = t;
        while (credit >= 1) {
            int batch = credit > 64 ? 64 : (int)credit;
            for (int i = 0; i < batch; i++) {
                int c = socket(AF_INET, SOCK_STREAM, 0);
                if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa) != 0)
                    errors++;
                else
                    made++;
                if (c >= 0)
                    close(c); /* the client closes first: its side goes to TIME_WAIT */
            }
            credit -= batch;
            int a;
            while ((a = accept(l, NULL, NULL)) >= 0)
                close(a);
        }
        if (t >= next_count) {
            next_count = t + 2;
            tw = count_tw(port, elo, ehi);
            if (tw >= 0 && tw < target)
                rate = rate * 1.05 + 10;
            else if (tw > target * 1.15)
                rate *= 0.97;
            rate = rate > 5000 ? 5000 : rate < 10 ? 10 : rate;
        }
        if (t >= next_log) {
            next_log = t + 60;
            printf("churn: %ld connections, %ld errors, rate %.0f/s, time_wait %ld\n", made, errors,
                   rate, tw);
            fflush(stdout);
        }
    }
}
EOF
cc -O2 -o "$WORK/stress-load" "$WORK/stress-load.c" 2>"$WORK/load.log" ||
    die "cannot compile the load program: $(cat "$WORK/load.log")"

# ---- what to run -----------------------------------------------------------------------------

# readme_test_line: the first line of the README's first code block that runs a test.
readme_test_line() {
    awk '/^```/ { if (inb) exit; inb = 1; next }
         inb { c = $0; sub(/[[:space:]]+#.*$/, "", c); sub(/^\$[[:space:]]+/, "", c)
               sub(/^[[:space:]]+/, "", c)
               if (c ~ /(^|[^[:alnum:]_])test([^[:alnum:]_]|$)/) { print c; exit } }'
}

if [ -d "$REPO" ]; then
    REPO=$(git -C "$REPO" rev-parse --show-toplevel 2>/dev/null) || die "$REPO is not a git repository"
    COMMIT=$(git -C "$REPO" rev-parse --verify HEAD) || die "$REPO has no commit"
    README=$(git -C "$REPO" show "$COMMIT:README.md" 2>/dev/null)
    DIRTY=$(git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null | head -c 1)
else
    git clone --quiet --depth 1 "$REPO" "$WORK/probe" >"$WORK/probe.log" 2>&1 ||
        die "cannot clone $REPO: $(cat "$WORK/probe.log")"
    COMMIT=$(git -C "$WORK/probe" rev-parse HEAD)
    README=$(cat "$WORK/probe/README.md" 2>/dev/null)
    rm -rf "$WORK/probe" "$WORK/probe.log"
    DIRTY=
fi
if [ -z "$CMD" ]; then
    CMD=$(printf '%s\n' "$README" | readme_test_line)
    CMD=${CMD:-make test}
fi

fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

echo "$NAME: $RUNS runs of '$CMD' on fresh clones of $REPO at ${COMMIT:0:12}${JOBS:+, JOBS=$JOBS}"
[ -n "$DIRTY" ] && echo "$NAME: note: $REPO has uncommitted changes; the clones test the commit only"
echo "$NAME: time limit $(fmt_time "$LIMIT"); logs in $WORK"

# ---- start the load --------------------------------------------------------------------------

START=$SECONDS
DEADLINE=$((START + LIMIT))
for _ in 1 2; do
    nice -n 10 "$WORK/stress-load" spin "$LIMIT" >/dev/null 2>&1 &
    LOAD_PIDS+=($!)
done
"$WORK/stress-load" churn "$LIMIT" "$TW_TARGET" "$PLO" "$PHI" "$ELO-$EHI" >>"$WORK/load.log" 2>&1 &
LOAD_PIDS+=($!)
sleep 0.5
load_alive || die "the load did not start: $(cat "$WORK/load.log")"
echo "load: 2 busy loops at nice 10 (pids ${LOAD_PIDS[0]} ${LOAD_PIDS[1]}); churn (pid ${LOAD_PIDS[2]}): $(head -1 "$WORK/load.log" | sed 's/^churn: //'); ephemeral range $ELO-$EHI"

# Up to 2 minutes for the TIME_WAIT count to reach the goal before the first run.
for ((i = 0; ; i++)); do
    tw=$(tw_count)
    if [ "$tw" -ge "$TW_GOAL" ]; then
        echo "load: $tw sockets in TIME_WAIT after $((SECONDS - START)) s"
        break
    fi
    if [ "$i" -ge 120 ] || ! load_alive; then
        echo "load: warning: only $tw sockets in TIME_WAIT after $((SECONDS - START)) s; running anyway"
        break
    fi
    [ $((i % 10)) -eq 9 ] && echo "load: $tw sockets in TIME_WAIT ..."
    sleep 1
done

# ---- the runs --------------------------------------------------------------------------------

declare -a R_RESULT R_DUR R_TWMIN R_TWMAX R_WHY
declare -A FAILS
PASSED=0
FAILED=0

# tmp_dirs: the suite's temporary directories now present.
tmp_dirs() {
    local root
    for root in "${TMPROOTS[@]}"; do
        find "$root" -maxdepth 1 -mindepth 1 -type d -name 'weft-*' 2>/dev/null
    done | sort
}

# in_use DIR: prints a process (not one of ours) with its cwd or a descriptor in DIR.
in_use() {
    local d f l
    for d in /proc/[0-9]*; do
        for f in "$d/cwd" "$d"/fd/*; do
            l=$(readlink "$f" 2>/dev/null) || continue
            if [[ $l == "$1" || $l == "$1"/* ]]; then
                echo "${d#/proc/}"
                return 0
            fi
        done
    done
    return 1
}

# parse_log LOG: "FAIL<TAB>name [phase]<TAB>status" for each test in ctest's "The following
# tests FAILED:" lists, and "SUMMARY<TAB>phase: NN% tests passed ..." for each ctest summary. A
# phase is the build directory of the `cd DIR && ctest` line make echoed, ":valgrind" for -L
# valgrind.
parse_log() {
    awk '
        /^cd [^ ]+ && ctest/ { phase = $2; if ($0 ~ / -L valgrind/) phase = phase ":valgrind" }
        /% tests passed, [0-9]+ tests? failed out of/ { print "SUMMARY\t" (phase ? phase ": " : "") $0 }
        /^The following tests FAILED:/ { inf = 1; next }
        inf && /^[[:space:]]*[0-9]+ - / {
            s = $0; sub(/^[[:space:]]*[0-9]+ - /, "", s)
            name = s; sub(/ .*/, "", name)
            st = s; sub(/^[^ ]+ */, "", st)
            print "FAIL\t" name (phase ? " [" phase "]" : "") "\t" st
            next
        }
        inf { inf = 0 }
    ' "$1"
}

for ((run = 1; run <= RUNS; run++)); do
    log=$WORK/run-$run.log
    R_TWMIN[run]=$(tw_count)
    R_TWMAX[run]=${R_TWMIN[run]}
    why=()
    now=$SECONDS
    if [ "$now" -ge "$DEADLINE" ]; then
        R_RESULT[run]="NOT RUN"
        R_DUR[run]=0
        R_WHY[run]="time limit reached"
        FAILS["not run: time limit"]=$((${FAILS["not run: time limit"]:-0} + 1))
        FAILED=$((FAILED + 1))
        continue
    fi
    mapfile -t before < <(tmp_dirs)
    CLONE=$WORK/clone-$run
    TOKEN=$WORK/run-$run
    t0=$SECONDS
    {
        echo "== $NAME run $run: git clone $REPO, commit $COMMIT"
        git clone --quiet --no-checkout "$REPO" "$CLONE" &&
            { git -C "$CLONE" checkout --quiet --detach "$COMMIT" 2>/dev/null ||
                { git -C "$CLONE" fetch --quiet origin "$COMMIT" && git -C "$CLONE" checkout --quiet --detach "$COMMIT"; }; }
    } >"$log" 2>&1
    clone_rc=$?
    rc=0
    if [ "$clone_rc" -ne 0 ]; then
        why+=("git clone failed")
        FAILS["git clone failed"]=$((${FAILS["git clone failed"]:-0} + 1))
    else
        echo "== $NAME run $run: $CMD (in $CLONE)" >>"$log"
        # timeout puts itself and the command in a new process group, gives the command
        # default SIGINT/SIGQUIT (a background job of a script would ignore them), and bounds
        # the run by the time left even if this script is killed.
        (
            cd "$CLONE" || exit 1
            if [ -n "$JOBS" ]; then export JOBS; fi
            exec env STRESS_SUITE_RUN="$TOKEN" timeout -k 30 "$((DEADLINE - SECONDS))" bash -c "$CMD"
        ) >>"$log" 2>&1 </dev/null &
        RUN_PID=$!
        next_report=$((SECONDS + 60))
        while kill -0 "$RUN_PID" 2>/dev/null; do
            sleep 5 &
            SLEEP_PID=$!
            wait "$SLEEP_PID"
            SLEEP_PID=
            tw=$(tw_count)
            [ "$tw" -lt "${R_TWMIN[run]}" ] && R_TWMIN[run]=$tw
            [ "$tw" -gt "${R_TWMAX[run]}" ] && R_TWMAX[run]=$tw
            if [ "$SECONDS" -ge "$next_report" ] && kill -0 "$RUN_PID" 2>/dev/null; then
                next_report=$((SECONDS + 60))
                load_alive && state="load on" || state="LOAD DIED (see $WORK/load.log)"
                echo "  run $run/$RUNS: $(fmt_time $((SECONDS - t0))), time_wait $tw, $state"
            fi
        done
        wait "$RUN_PID"
        rc=$?
        run_pgid=$RUN_PID
        RUN_PID=
        # What the run left behind, before anything is stopped.
        mapfile -t leaked < <(pids_of_run "$CLONE" "$TOKEN" "$run_pgid")
        for l in "${leaked[@]}"; do
            what=${l#*$'\t'}
            why+=("left running: $what")
            key="left running: ${what%% (*}"
            FAILS[$key]=$((${FAILS[$key]:-0} + 1))
        done
        mapfile -t lpids < <(printf '%s\n' "${leaked[@]}" | cut -f1 | grep .)
        stop_pids "${lpids[@]}"
        mapfile -t after < <(tmp_dirs)
        mapfile -t new < <(comm -13 <(printf '%s\n' "${before[@]}") <(printf '%s\n' "${after[@]}") | grep .)
        for d in "${new[@]}"; do
            if user=$(in_use "$d"); then
                echo "  (not counted: $d is in use by pid $user, not a process of this run)" >>"$log"
                continue
            fi
            why+=("left $d")
            key="left ${d%/*}/$(basename "$d" | sed 's/\([.-]\)[[:alnum:]]\{6\}$/\1*/')"
            FAILS[$key]=$((${FAILS[$key]:-0} + 1))
        done
        while IFS=$'\t' read -r kind name st; do
            case $kind in
                FAIL)
                    why+=("$name ${st:-}")
                    FAILS[$name]=$((${FAILS[$name]:-0} + 1))
                    ;;
                SUMMARY) echo "  $name" >>"$WORK/run-$run.summary" ;;
            esac
        done < <(parse_log "$log")
        if [ "$rc" -ne 0 ]; then
            if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
                why+=("timed out at the time limit")
                FAILS["timed out"]=$((${FAILS["timed out"]:-0} + 1))
            elif ! grep -q '^The following tests FAILED:' "$log"; then
                why+=("exit status $rc, no failed test listed (see the log's end)")
                FAILS["exit $rc without a failed test"]=$((${FAILS["exit $rc without a failed test"]:-0} + 1))
            fi
        fi
    fi
    rm -rf "$CLONE"
    CLONE=
    TOKEN=
    R_DUR[run]=$((SECONDS - t0))
    DONE=$run
    if [ "$rc" -eq 0 ] && [ ${#why[@]} -eq 0 ]; then
        R_RESULT[run]=PASS
        PASSED=$((PASSED + 1))
        R_WHY[run]=
    else
        R_RESULT[run]=FAIL
        FAILED=$((FAILED + 1))
        R_WHY[run]=$(IFS=';'; echo "${why[*]}" | sed 's/;/; /g')
    fi
    load_alive && state= || state=", LOAD DIED"
    echo "run $run/$RUNS: ${R_RESULT[run]} in $(fmt_time "${R_DUR[run]}"), time_wait ${R_TWMIN[run]}-${R_TWMAX[run]}$state, elapsed $(fmt_time $((SECONDS - START))); so far $PASSED passed, $FAILED failed${R_WHY[run]:+ -- ${R_WHY[run]}}"
done

# ---- the load's end, the summary -------------------------------------------------------------

tw_end=$(tw_count)
stop_pids "${LOAD_PIDS[@]}"
LOAD_PIDS=()
load_lines=$(grep -c '^churn: [0-9]' "$WORK/load.log")

{
    echo
    echo "commit ${COMMIT:0:12}, '$CMD', $RUNS runs, $(fmt_time $((SECONDS - START))) in all; load: 2 busy loops at nice 10, TIME_WAIT churn (last count $tw_end, $load_lines churn reports in load.log)"
    printf '%-4s %-8s %-8s %-13s %s\n' run result time time_wait failures
    for ((run = 1; run <= RUNS; run++)); do
        printf '%-4s %-8s %-8s %-13s %s\n' "$run" "${R_RESULT[run]}" "$(fmt_time "${R_DUR[run]}")" \
            "${R_TWMIN[run]}-${R_TWMAX[run]}" "${R_WHY[run]:-}"
        [ -f "$WORK/run-$run.summary" ] && cat "$WORK/run-$run.summary"
    done
    echo "logs: $WORK/run-N.log"
    echo "$PASSED passed, $FAILED failed"
    for key in "${!FAILS[@]}"; do
        printf '%5d  %s\n' "${FAILS[$key]}" "$key"
    done | sort -k1,1nr -k2
} | tee "$WORK/summary.txt"
[ "$FAILED" -eq 0 ]
