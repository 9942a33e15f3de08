# SPDX-License-Identifier: MIT
# weftd-lib.sh: the shell library every bench script sources (run.sh, stream.sh, http.sh,
# https.sh, h2.sh, scale.sh, soak.sh, chaos.sh): a temp dir and the cleanup at exit, free ports,
# starting servers and waiting for them, stopping them by PID, /proc figures.
#
# Sourcing it only defines functions (POSIX sh; safe under set -eu). A script then calls:
#   bench_tmp PREFIX   TMP=a new temp dir named PREFIX.XXXXXX; at exit every PID in STARTED
#                      is stopped (STOP_TENTHS tenths of a second each, then SIGKILL) and TMP
#                      removed (kept if KEEP_TMP is set).
#   load_init "$@"     scale.sh, soak.sh and chaos.sh (NAME set): the build directory ($1,
#                      default build-load, configured -DWEFT_BENCH=ON), its programs, bench_tmp.

STARTED=""
STOP_TENTHS=150

# stop_pids TENTHS PID...: SIGTERM to every PID, then up to TENTHS tenths of a second each to
# exit (-1: no limit), then SIGKILL.
stop_pids() {
    _tenths=$1
    shift
    for _pid in "$@"; do
        kill "$_pid" 2>/dev/null || :
    done
    for _pid in "$@"; do
        _i=0
        while kill -0 "$_pid" 2>/dev/null && { [ "$_tenths" -lt 0 ] || [ $_i -lt "$_tenths" ]; }; do
            sleep 0.1
            _i=$((_i + 1))
        done
        kill -9 "$_pid" 2>/dev/null || :
        wait "$_pid" 2>/dev/null || :
    done
}

# stop_pid PID: SIGTERM, up to 15 s to exit, then SIGKILL.
stop_pid() {
    stop_pids 150 "$1"
}

# forget PID: takes PID out of STARTED (it was stopped or waited for).
forget() {
    STARTED=$(echo " $STARTED " | sed "s/ $1 / /")
}

# stop_all: stops every PID in STARTED (STOP_TENTHS each) and forgets them.
stop_all() {
    # shellcheck disable=SC2086
    stop_pids "$STOP_TENTHS" $STARTED
    STARTED=""
}

bench_cleanup() {
    stop_all
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}

# bench_tmp PREFIX: see above.
bench_tmp() {
    TMP=$(mktemp -d "$1.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' HUP INT PIPE TERM
}

# raise_nofile: the soft descriptor limit up to the hard one (servers started later inherit it).
raise_nofile() {
    ulimit -S -n "$(ulimit -H -n)" 2>/dev/null || :
}

free_port() {
    "${PY:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# echo_ready PORT PID: waits up to ~5 s until a short bench/echo_load run through 127.0.0.1:PORT
# gets replies. 0: it does; 1: PID exited first; 2: no echo after 5 s.
echo_ready() {
    _i=0
    while :; do
        kill -0 "$2" 2>/dev/null || return 1
        if "$BIN/echo_load" -p "$1" -c 1 -s 64 -d 0.1 -w 0 2>/dev/null | grep -q 'requests=[1-9]'
        then
            return 0
        fi
        _i=$((_i + 1))
        [ $_i -lt 50 ] || return 2
        sleep 0.1
    done
}

# ---- http.sh, https.sh: weftd's http plugin beside nginx ----

# need_tools SCRIPT TOOL...: every TOOL on PATH or in /usr/sbin, or exit 1 saying which is not.
need_tools() {
    _who=$1
    shift
    for _tool in "$@"; do
        command -v "$_tool" >/dev/null || [ -x "/usr/sbin/$_tool" ] ||
            { echo "$_who: $_tool is missing (make setup-bench)" >&2; exit 1; }
    done
}

# http_init SCRIPT TOOL...: need_tools; nginx_bin, the nginx to run; $weftd must be built;
# TMP (and tmp) a temp dir anyone may traverse, with TMP/www and TMP/nginx; at exit weftd
# and nginx are waited for without a limit.
http_init() {
    need_tools "$@"
    nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
    [ -x "$weftd" ] || { echo "$1: no $weftd: build first (make bench)" >&2; exit 1; }
    STOP_TENTHS=-1
    bench_tmp "/tmp/weft-bench-${1%.sh}"
    tmp=$TMP
    chmod 755 "$tmp"
    mkdir -p "$tmp/www" "$tmp/nginx"
}

# http_confs WPORT NPORT WEFTD_EXTRA NGINX_HTTP_EXTRA NGINX_LISTEN_EXTRA NGINX_SERVER_EXTRA:
# TMP/weftd.conf (one worker, the http plugin on WPORT, root TMP/www) and TMP/nginx.conf (one
# worker, access_log off, sendfile, open_file_cache, on NPORT, the same root); the EXTRA
# arguments are lines added to weftd's service, nginx's http block, its listen directive and
# its server block.
http_confs() {
    cat > "$TMP/weftd.conf" <<CONF
[weftd]
workers = 1
log_level = warning
[bench]
protocol = http
listen = 127.0.0.1:$1
root = $TMP/www
keepalive_timeout = 60s
$3
CONF
    cat > "$TMP/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 60s;
    keepalive_requests 100000000;
    open_file_cache max=1000 inactive=60s;
    default_type application/octet-stream;
    client_body_temp_path $TMP/nginx;
    proxy_temp_path $TMP/nginx;
    fastcgi_temp_path $TMP/nginx;
    uwsgi_temp_path $TMP/nginx;
    scgi_temp_path $TMP/nginx;
$4
    server {
        listen 127.0.0.1:$2$5;
        root $TMP/www;
$6
    }
}
CONF
}

# http_start WWW_URL NGINX_URL CURL_OPTION...: weftd ($weftd) and nginx ($nginx_bin) on the
# confs of http_confs, pinned to core 0 (stderr in TMP/weftd.err, TMP/nginx.err); sets wpid and
# npid; waits up to ~5 s until curl fetches both URLs.
http_start() {
    taskset -c 0 "$weftd" -c "$TMP/weftd.conf" 2> "$TMP/weftd.err" &
    wpid=$!
    STARTED="$STARTED $wpid"
    taskset -c 0 "$nginx_bin" -c "$TMP/nginx.conf" -p "$TMP/nginx" 2> "$TMP/nginx.err" &
    npid=$!
    STARTED="$STARTED $npid"
    _w=$1 _n=$2
    shift 2
    for _ in $(seq 50); do
        curl "$@" -o /dev/null "$_w" && curl "$@" -o /dev/null "$_n" && break
        sleep 0.1
    done
}

# ---- http.sh, h2.sh: the other peers (h2o, lighttpd) and the bare server ----

# h2o_conf PORT [CERT KEY]: TMP/h2o.conf: one thread, no access log (none configured),
# root TMP/www on PORT; over TLS with CERT and KEY (h2 offered first by ALPN, as h2o does).
# h2o 2.2 has no sendfile (it preads files into its buffers) and keeps its open-file cache
# (32 entries per thread) always on: nothing to tune there. The error log is its stderr.
h2o_conf() {
    {
        echo "num-threads: 1"
        echo "max-connections: 4096"
        echo "listen:"
        echo "  host: 127.0.0.1"
        echo "  port: $1"
        if [ $# -ge 3 ]; then
            echo "  ssl:"
            echo "    certificate-file: $2"
            echo "    key-file: $3"
            echo "    minimum-version: TLSv1.2"
        fi
        echo "hosts:"
        echo "  default:"
        echo "    paths:"
        echo "      /:"
        echo "        file.dir: $TMP/www"
    } > "$TMP/h2o.conf"
}

# lighttpd_conf PORT: TMP/lighttpd.conf: one process (max-worker 0), mod_staticfile only (no
# access log), sendfile, the inotify stat cache, keep-alive up to its ceiling of 65535
# requests a connection (nginx's keepalive_requests is above any run), root TMP/www on PORT.
lighttpd_conf() {
    cat > "$TMP/lighttpd.conf" <<CONF
server.document-root = "$TMP/www"
server.bind = "127.0.0.1"
server.port = $1
server.errorlog = "$TMP/lighttpd.log"
server.modules = ("mod_staticfile")
server.max-worker = 0
server.network-backend = "sendfile"
server.stat-cache-engine = "inotify"
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 60
server.max-fds = 8192
server.max-connections = 4096
mimetype.assign = (".txt" => "text/plain", "" => "application/octet-stream")
CONF
}

# start_pinned NAME COMMAND...: COMMAND on core 0, stderr in TMP/NAME.err; its PID in
# STARTED and in the variable pid_NAME.
start_pinned() {
    _name=$1
    shift
    taskset -c 0 "$@" 2> "$TMP/$_name.err" &
    eval "pid_$_name=\$!"
    STARTED="$STARTED $!"
}

# wait_url NAME PID URL CURL_OPTION...: up to ~5 s until curl fetches URL; 0, or 1 after
# "NAME did not start" and its stderr (TMP/NAME.err) if PID exits or the time is up.
wait_url() {
    _name=$1 _pid=$2 _url=$3
    shift 3
    for _ in $(seq 50); do
        curl "$@" -o /dev/null "$_url" 2>/dev/null && return 0
        kill -0 "$_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$_name did not start (or does not serve $_url); its stderr:" >&2
    sed 's/^/    /' "$TMP/$_name.err" >&2
    return 1
}

# tree_ticks PID: CPU time (clock ticks) used so far by PID and its children (the master and
# its worker).
tree_ticks() {
    _t=0
    for _p in "$1" $(ps -o pid= --ppid "$1"); do
        _v=$(sed 's/.*) //' "/proc/$_p/stat" 2>/dev/null | awk '{print $12 + $13}')
        _t=$((_t + ${_v:-0}))
    done
    echo "$_t"
}

# ---- scale.sh, soak.sh, chaos.sh: weftd under load ----

# load_init [BUILD_DIR]: see above.
load_init() {
    ROOT=$(cd "$(dirname "$0")/.." && pwd)
    BUILD=${1:-$ROOT/build-load}
    [ -d "$BUILD" ] || { echo "$NAME: no build directory $BUILD" >&2; exit 2; }
    BUILD=$(cd "$BUILD" && pwd)
    BIN=$BUILD/bench
    WEFTD=$BUILD/daemon/weftd
    for f in "$WEFTD" "$BIN/hold_conns" "$BIN/cycles" "$BIN/mixload"; do
        [ -x "$f" ] || { echo "$NAME: $f missing: build $BUILD with -DWEFT_BENCH=ON" >&2; exit 2; }
    done
    bench_tmp "${TMPDIR:-/tmp}/weft-$NAME"
    MASTER=""
    # The workers inherit our descriptor limit; raise the soft one to the hard one.
    raise_nofile
}

# mix_services PORT_ECHO PORT_HTTP PORT_POEM: the [echo], [http] and [poem] services of the
# soak and chaos configs (root TMP/www, poems TMP/poem.txt), after a blank line.
mix_services() {
    cat <<EOC

[echo]
protocol = echo
listen = 127.0.0.1:$1

[http]
protocol = http
listen = 127.0.0.1:$2
root = $TMP/www

[poem]
protocol = poem
listen = 127.0.0.1:$3
poems = $TMP/poem.txt
EOC
}

# start_weftd CONF: starts weftd on CONF (log in CONF.log), waits until it logs ready; sets MASTER.
start_weftd() {
    "$WEFTD" -c "$1" >"$1.log" 2>&1 </dev/null &
    MASTER=$!
    STARTED="$STARTED $MASTER"
    i=0
    until grep -q 'ready:' "$1.log" 2>/dev/null; do
        if ! kill -0 "$MASTER" 2>/dev/null || [ $i -ge 100 ]; then
            echo "$NAME: weftd did not start; its output:" >&2
            sed 's/^/    /' "$1.log" >&2
            return 1
        fi
        sleep 0.1
        i=$((i + 1))
    done
}

# stop_weftd: SIGTERM to the master, wait for it; forgets it.
stop_weftd() {
    stop_pid "$MASTER"
    forget "$MASTER"
    MASTER=""
}

# workers: the master's children, one per line.
workers() {
    tr ' ' '\n' <"/proc/$MASTER/task/$MASTER/children" 2>/dev/null | grep .
}

rss_kib() {
    awk '/^VmRSS:/ { print $2; f = 1 } END { if (!f) print 0 }' "/proc/$1/status" 2>/dev/null \
        || echo 0
}

fd_count() {
    ls "/proc/$1/fd" 2>/dev/null | wc -l
}

# workers_rss / workers_fds: sums over the current workers.
workers_rss() {
    t=0
    for w in $(workers); do t=$((t + $(rss_kib "$w"))); done
    echo $t
}
workers_fds() {
    t=0
    for w in $(workers); do t=$((t + $(fd_count "$w"))); done
    echo $t
}

# machine_load: the 1-minute load average and the number of CPUs, for the reports.
machine_load() {
    echo "load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
}

# keep_best SERVER REQ/S MIB/S US (http.sh, h2.sh; into their arrays rps, mib, us, usmax
# declared by the caller): over the rounds, a server's highest rates and its lowest
# CPU per request count (other load on the machine only ever makes a round worse), and the
# highest CPU per request is kept to show the spread.
keep_best() {
    if [ -z "${us[$1]:-}" ]; then
        rps[$1]=$2 mib[$1]=$3 us[$1]=$4 usmax[$1]=$4
        return
    fi
    read -r rps[$1] mib[$1] us[$1] usmax[$1] < <(awk -v r="${rps[$1]}" -v m="${mib[$1]}" \
        -v u="${us[$1]}" -v x="${usmax[$1]}" -v r2="$2" -v m2="$3" -v u2="$4" 'BEGIN {
        print (r2 > r ? r2 : r), (m2 > m ? m2 : m), (u2 < u ? u2 : u), (u2 > x ? u2 : x) }')
}

# callgrind_report OUT LABEL TOP: from callgrind's OUT, the requests (the calls of
# http_serve), the instructions per request, and the TOP functions by self cost, each as a
# share of all and per request; LABEL names the load in the heading line.
callgrind_report() {
    _ir=$(awk '/^totals:/ {print $2}' "$1")
    _n=$(awk '/^c?fn=\(/ { s = $0; sub(/^c?fn=/, "", s); id = s; sub(/ .*/, "", id)
            nm = s; if (sub(/^[^ ]* /, "", nm)) names[id] = nm
            if ($0 ~ /^cfn/) cur = names[id]; next }
        /^calls=/ { if (cur == "http_serve") { split($1, a, "="); n += a[2] }
            cur = ""; next }
        END { print n + 0 }' "$1")
    echo "== callgrind, $2: $_n requests," \
         "$((_ir / (_n > 0 ? _n : 1))) instructions per request; the top functions (self):"
    callgrind_annotate "$1" 2>/dev/null | awk -v ir="$_ir" -v n="$_n" -v top="$3" '
        /^-+$/ { sep++; next }
        sep >= 3 && $1 ~ /^[0-9,]+$/ && k < top {
            v = $1; gsub(",", "", v); name = $0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", name)
            printf "%6.2f%% %7.0f/req  %s\n", 100 * v / ir, v / n, name; k++ }'
}
