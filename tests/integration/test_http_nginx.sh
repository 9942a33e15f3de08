#!/bin/bash
# SPDX-License-Identifier: MIT
# test_http_nginx.sh: a differential test of the http plugin against a real nginx (Debian's
# nginx-light), both serving the same root on loopback with configs as alike as they can be.
# Each request of the table below is sent raw (printf | nc) to both, followed by a pipelined
# probe request; the test compares the status (interim ones too), the framing of the answer
# (Content-Length, chunked or close-delimited, and the body's length for a 2xx), its
# Content-Range, ETag and Last-Modified, and the connection handling (did the probe get its
# answer on the same connection?). No request may kill a weftd worker; both servers must
# exit 0 on SIGTERM at the end.
#
# The test runs in a network namespace of its own (unshare -n; it re-executes itself there,
# keeping its PID), so nginx, which cannot listen on port 0, gets a fixed port that nothing
# else on the machine can hold. nginx is ready once it has written its pid file: its main()
# opens the listening sockets (ngx_init_cycle) before ngx_create_pidfile, so a connection
# made after the pid file has its PID is queued by the kernel until a worker accepts it.
# Not root (no unshare -n): exit 77, which ctest reports as skipped.
#
# Expectations (the first column of the table):
#   same              weftd answers as nginx does
#   rfc:S[,C]         they differ on purpose: weftd must answer status S (a list such as
#                     "100 404" when interim answers come first), and if C is given (keep or
#                     close) handle the connection so; the row says which RFC section
#   todo:EXPECTATION  what the RFC asks, not what weftd does yet: reported as "TODO row N",
#                     not a failure (an unexpected pass is reported too: remove the mark)
set -u
if [ "${WEFT_NGINX_NETNS:-}" != 1 ]; then
    if ! unshare -n true 2>/dev/null; then
        echo "SKIP: ${0##*/}: cannot make a network namespace (unshare -n needs root)"
        exit 77
    fi
    export WEFT_NGINX_NETNS=1
    exec unshare -n -- bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
require_env WEFTD WEFT_SOURCE_DIR
require_tool nc netcat-openbsd nginx nginx-light ip iproute2
ip link set lo up || fail "cannot bring up lo in the test's network namespace"

# Fixed ports: the namespace is the test's own. Plain HTTP, and HTTPS for one row.
wport=8001 nport=8002 wtls=8003 ntls=8004
bash "$WEFT_SOURCE_DIR/tests/integration/tls_certs.sh" "$tmp/certs" >/dev/null ||
    fail "cannot make the test certificates"
chmod -R a+rX "$tmp/certs"
# The workers of both drop root for nobody: the tree must be reachable by nobody.
chmod 711 "$tmp"
root=$tmp/root
mkdir -p "$root/sub" "$root/dir"
printf 'hello, world\n' >"$root/hello.txt"
printf '<h1>root</h1>\n' >"$root/index.html"
printf '<p>sub</p>\n' >"$root/sub/index.html"
printf 'x\n' >"$root/dir/x.txt"
printf 'probe\n' >"$root/probe.txt"
printf 'secret\n' >"$root/.hidden"
printf 'spaced\n' >"$root/with space.txt"
printf 'locked\n' >"$root/locked.txt"
: >"$root/empty.txt"
seq 1 60000 >"$root/big.txt"
chmod -R a+rX "$root"
chmod 000 "$root/locked.txt"
touch -d '2024-01-02 03:04:05 UTC' "$root"/*.txt "$root/index.html"
mtime='Tue, 02 Jan 2024 03:04:05 GMT'

cat >"$tmp/weftd.conf" <<CONF
$(weftd_section)
workers = 1
user = nobody
[files]
protocol = http
listen = 127.0.0.1:$wport
root = $root
index = index.html
autoindex = off
dotfiles = off
keepalive_timeout = 60s
access_log = $tmp/weftd.access
[tls]
protocol = http
listen = 127.0.0.1:$wtls
root = $root
tls_certificate = $tmp/certs/a.pem
tls_key = $tmp/certs/a.key
CONF

mkdir -p "$tmp/nginx"
cat >"$tmp/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
user nobody nogroup;
pid $tmp/nginx.pid;
lock_file $tmp/nginx/lock;
error_log $tmp/nginx.log info;
events { worker_connections 64; }
http {
    access_log $tmp/nginx.access;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    types { text/html html; text/plain txt; }
    default_type application/octet-stream;
    sendfile on;
    server_tokens off;
    keepalive_timeout 60s;
    # after an error, nginx reads what the client still sends until it pauses this long;
    # our client sends everything at once, so this only shortens the wait for the close
    lingering_timeout 1s;
    # RFC 9110 §13.1.3: not modified when the date is not earlier than the file's
    if_modified_since before;
    server {
        listen 127.0.0.1:$nport;
        root $root;
        index index.html;
        autoindex off;
        etag on;
        # weftd's dotfiles = off answers 404
        location ~ /\\. { return 404; }
    }
    server {
        listen 127.0.0.1:$ntls ssl;
        root $root;
        ssl_certificate $tmp/certs/a.pem;
        ssl_certificate_key $tmp/certs/a.key;
    }
}
CONF
# On a failure lib.sh prints weftd.err (weftd's log), nginx.log (nginx's error log) and
# weftd's access log; nginx's access log is left in $tmp/nginx.access.
logs+=("$tmp/weftd.access")

launch -n weftd "$WEFTD" -c "$tmp/weftd.conf"
wait_ready weftd || exit 1
launch -n nginx nginx -p "$tmp/nginx" -c "$tmp/nginx.conf" -e "$tmp/nginx.log"
nginx_pid=$pid
wait_log -p "$nginx_pid" "$tmp/nginx.pid" "$nginx_pid" 1 "$lib_timeout" ||
    fail "nginx did not write its pid file within $lib_timeout s"

# ---- the raw client ----

probe='GET /probe.txt HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n'

# hdr HEAD NAME: the value of header NAME (case-insensitive) in HEAD, "" if absent; several
# are joined with ", ".
hdr() {
    local line name v='' out=''
    while IFS= read -r line; do
        line=${line%$'\r'}
        name=${line%%:*}
        [ "${name,,}" = "${2,,}" ] || continue
        v=${line#*:}
        v=${v#"${v%%[! ]*}"}
        out+=${out:+, }$v
    done <<<"${1#*$'\n'}"
    printf '%s' "$out"
}

# ask PORT REQUEST OUT: send REQUEST (printf %b escapes) and the probe on one connection to
# PORT, then shut down writing (nc -N: a server that lingers after an error, reading until
# the client is done, sees the end at once), and write what came back to OUT until the
# server closes (at most 20 s: a server still holding the connection then is an answer,
# "hang", not a wait).
ask() {
    local rc=0
    printf '%b%b' "$2" "$probe" | timeout 20 nc -N 127.0.0.1 "$1" >"$3" 2>"$3.nc" || rc=$?
    [ "$rc" -ne 124 ] || echo hang >"$3.hang"
}

# parse FILE METHOD: the first answer in FILE to a request of METHOD: a_status (its
# statuses, interim first: "100 404"; none if no answer), a_frame (cl, chunked, close, none
# for a HEAD, 204 or 304, bad if the framing is broken), a_len (its body's length; for a
# HEAD its Content-Length), a_conn (keep if the probe got its 200 after it on the same
# connection, next:STATUS if it got another answer, close if none, hang if the server held
# the connection 20 s), a_head (its head, for the report).
parse() {
    local s n=0 head code method=$2 te cl line size len
    s=$(cat "$1"; echo .)
    s=${s%.}
    a_status='' a_frame='' a_len=0 a_conn=close a_head=''
    [ ! -e "$1.hang" ] || a_conn=hang
    while [[ $s == *$'\r\n\r\n'* ]]; do
        head=${s%%$'\r\n\r\n'*}
        s=${s#*$'\r\n\r\n'}
        code=${head#* }
        code=${code%% *}
        code=${code%%$'\r'*}
        if [ "$n" -eq 0 ]; then
            a_status+=${a_status:+ }$code
            a_head+=${a_head:+$'\n'}${head//$'\r'/}
        fi
        case $code in 1[0-9][0-9]) continue ;; esac
        te=$(hdr "$head" transfer-encoding)
        cl=$(hdr "$head" content-length)
        len=0
        if [ "$method" = HEAD ]; then
            frame=none
            len=${cl:-0}            # the length a GET would get
        elif [ "$code" = 204 ] || [ "$code" = 304 ]; then
            frame=none
        elif [[ ${te,,} == *chunked ]]; then
            frame=chunked
            while :; do
                line=${s%%$'\r\n'*}
                [[ $s == *$'\r\n'* && ${line%%;*} =~ ^[0-9a-fA-F]+$ ]] || { frame=bad; break; }
                s=${s#*$'\r\n'}
                size=$((16#${line%%;*}))
                if [ "$size" -eq 0 ]; then
                    while [[ $s == *$'\r\n'* ]]; do
                        line=${s%%$'\r\n'*}
                        s=${s#*$'\r\n'}
                        [ -n "$line" ] || break
                    done
                    break
                fi
                len=$((len + size))
                s=${s:size+2}
            done
        elif [ -n "$cl" ]; then
            frame=cl
            len=$cl
            if [[ $cl =~ ^[0-9]+$ ]]; then s=${s:cl}; else frame=bad s=''; fi
        else
            frame=close
            len=${#s}
            s=
        fi
        n=$((n + 1))
        method=GET
        if [ "$n" -eq 1 ]; then
            a_frame=$frame a_len=$len
        else
            # the probe's 200; another answer means the row's request was not framed as
            # the server said (its body was read as a request)
            if [ "$code" = 200 ]; then a_conn=keep; else a_conn=next:$code; fi
            break
        fi
    done
    [ -n "$a_status" ] || a_status=none
}

# ---- the table ----

rows=0 n_same=0 n_rfc=0 todo_open=0 todo_fixed=0

# row EXPECTATION 'REQUEST' 'WHY': send REQUEST to both and check EXPECTATION (see the top).
row() {
    local exp=$1 req=$2 why=${3:-} todo=0 method ok=1 w n wants wantc f fields raw dir=$tmp/row
    rows=$((rows + 1))
    if [[ $exp == todo:* ]]; then todo=1; exp=${exp#todo:}; fi
    method=${req%% *}
    mkdir -p "$dir"
    # both at once: a row costs the slower server's answer, not the sum
    local wa na
    ask "${row_wport:-$wport}" "${req//@ETAG@/$wetag}" "$dir/$rows.weftd" & wa=$!
    ask "${row_nport:-$nport}" "${req//@ETAG@/$netag}" "$dir/$rows.nginx" & na=$!
    wait "$wa" "$na"
    parse "$dir/$rows.nginx" "$method"
    n=("$a_status" "$a_frame" "$a_len" "$a_conn" "$a_head")
    parse "$dir/$rows.weftd" "$method"
    w=("$a_status" "$a_frame" "$a_len" "$a_conn" "$a_head")
    case $exp in
        same)
            [ "${w[0]}" = "${n[0]}" ] && [ "${w[1]}" = "${n[1]}" ] && [ "${w[3]}" = "${n[3]}" ] || ok=0
            # the same file: the same length; error pages differ in their text
            if [[ ${w[0]} == *2[0-9][0-9] ]] && [ "${w[2]}" != "${n[2]}" ]; then ok=0; fi
            # and the same validators (both make nginx's ETag from mtime and size) and range;
            # the validators of a 2xx or 304 only (weftd also sends them with a 416)
            fields=content-range
            [[ ${w[0]} != *[23]0[0-9] ]] || fields+=" etag last-modified"
            for f in $fields; do
                [ "$(hdr "${w[4]}" "$f")" = "$(hdr "${n[4]}" "$f")" ] || { ok=0; why+=" [$f differs]"; }
            done
            ;;
        rfc:*)
            wants=${exp#rfc:}
            wantc=
            if [[ $wants == *,* ]]; then wantc=${wants#*,}; wants=${wants%%,*}; fi
            [ "${w[0]}" = "$wants" ] || ok=0
            [ -z "$wantc" ] || [ "${w[3]}" = "$wantc" ] || ok=0
            ;;
        *) fail "row $rows: bad expectation '$1'"; return ;;
    esac
    [ "${w[1]}" != bad ] || { ok=0; why+=" [weftd's framing is broken]"; }
    local sum="weftd ${w[0]} ${w[1]}:${w[2]} ${w[3]}; nginx ${n[0]} ${n[1]}:${n[2]} ${n[3]}"
    if [ "$ok" = 1 ] && [ "$todo" = 0 ]; then
        echo "ok $rows - $exp: $sum"
        if [ "$exp" = same ]; then n_same=$((n_same + 1)); else n_rfc=$((n_rfc + 1)); fi
        [ -z "${WEFT_NGINX_VERBOSE:-}" ] || { printf -v raw '%b' "$req"; printf '  request: %q\n' "$raw"
            sed 's/^/    weftd: /' <<<"${w[4]}"; sed 's/^/    nginx: /' <<<"${n[4]}"; }
        return
    fi
    if [ "$todo" = 1 ] && [ "$ok" = 1 ]; then
        echo "TODO row $rows: passes now ($exp: $sum): remove its todo mark"
        todo_fixed=$((todo_fixed + 1))
        return
    fi
    {
        if [ "$todo" = 1 ]; then
            echo "TODO row $rows: wants $exp${why:+ ($why)}: $sum"
        else
            echo "not ok $rows - wants $exp${why:+ ($why)}: $sum"
        fi
        printf -v raw '%b' "$req"
        printf '  request: %q\n' "$raw"
        echo "  weftd's answer:"
        sed 's/^/    /' <<<"${w[4]}"
        echo "  nginx's answer:"
        sed 's/^/    /' <<<"${n[4]}"
    } >&2
    if [ "$todo" = 1 ]; then
        todo_open=$((todo_open + 1))
    else
        fail "row $rows: weftd departs from '$exp'"
    fi
}
keep_going=1

# @ETAG@ in a request is the server's own ETag for /hello.txt (each makes its own).
etag_of() {
    ask "$1" 'HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n' "$tmp/etag.$1"
    parse "$tmp/etag.$1" HEAD
    hdr "$a_head" etag
}
wetag=$(etag_of "$wport") netag=$(etag_of "$nport")
[ -n "$wetag" ] && [ -n "$netag" ] || fail "no ETag for /hello.txt: weftd '$wetag', nginx '$netag'"
echo "# ETag of /hello.txt: weftd $wetag, nginx $netag"
# GET, HEAD and the files of the root
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /big.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /empty.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /sub/ HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /sub HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /sub?a=1&b=2 HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /dir/ HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /nope.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'HEAD /nope.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /.hidden HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /with%20space.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /locked.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /hello.txt?x=1 HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /%68ello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET //hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n'
row rfc:403,keep 'GET /hello.txt%00 HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 3986 §2.1: %00 is well-formed, no file can have it (nginx: 400 and close)'
row same 'GET /hello.txt#frag HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'

# dot segments (RFC 3986 §5.2.4) and traversal
row same 'GET /sub/../hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /sub/./../hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET /sub/%2e%2e/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row rfc:403,keep 'GET /../hello.txt HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 9110 §15.5.4: a .. above the root is refused, the request well-formed (nginx: 400, close)'
row rfc:403,keep 'GET /sub/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 9110 §15.5.4: above the root (nginx: 400, close)'
row rfc:403,keep 'GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 3986 §6.2.2.2: %2e is a dot; above the root (nginx: 400, close)'
row rfc:403,keep 'GET /..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 3986 §2.2: %2F is data, not a separator: no file name has it (nginx: 404)'
row rfc:403,keep 'GET /%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 3986 §2.2: %2F is data, not a separator (nginx decodes it: 404)'
row rfc:403,keep 'GET /sub/..%5c..%5chello.txt HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 3986 §2.1: %5C is a backslash, refused in a name as a CTL is (nginx looks it up: 404)'

# ranges (RFC 9110 §14)
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=7-\r\n\r\n'
row same 'GET /big.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=-6\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=5-1000\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=100-200\r\n\r\n'
row rfc:416 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=-0\r\n\r\n' \
    'RFC 9110 §14.1.1: a suffix-range of length 0 is not satisfiable (nginx: 200)'
row rfc:416 'GET /empty.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n' \
    'RFC 9110 §14.1.1: first-pos 0 is not below the length 0 (nginx ignores the range: 200)'
row rfc:200 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,5-6\r\n\r\n' \
    'RFC 9110 §14.2: a server may ignore Range: weftd sends no multipart/byteranges (nginx: 206)'
row rfc:200 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=4-2\r\n\r\n' \
    'RFC 9110 §14.2: an invalid ranges-specifier may be ignored (weftd) or rejected (nginx: 416)'
row rfc:200 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=abc\r\n\r\n' \
    'RFC 9110 §14.2: an invalid ranges-specifier may be ignored (nginx: 416)'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: pages=1\r\n\r\n'
row rfc:200 'HEAD /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\n\r\n' \
    'RFC 9110 §14.2: Range is defined for GET only, a server MUST ignore it on HEAD (nginx: 206)'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\nIf-Range: @ETAG@\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\nIf-Range: "other"\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\nIf-Range: W/@ETAG@\r\n\r\n'
row same "GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\nIf-Range: $mtime\r\n\r\n"
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4\r\nIf-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n'

# conditionals (RFC 9110 §13)
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: @ETAG@\r\n\r\n'
row same 'HEAD /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: @ETAG@\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: "other"\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/@ETAG@\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: "other", @ETAG@\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n\r\n'
row same "GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: $mtime\r\n\r\n"
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: yesterday\r\n\r\n'
row same "GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"other\"\r\nIf-Modified-Since: $mtime\r\n\r\n"
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Match: @ETAG@\r\n\r\n'
row rfc:412,keep 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Match: "other"\r\n\r\n' \
    'RFC 9112 §9.3: a well-framed request keeps the connection (nginx closes after a 412)'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Match: *\r\n\r\n'
row rfc:412,keep 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Match: W/@ETAG@\r\n\r\n' \
    'RFC 9110 §13.1.1: If-Match compares strongly, a weak tag never matches; RFC 9112 §9.3 (nginx closes)'
row same "GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Unmodified-Since: $mtime\r\n\r\n"
row rfc:412,keep 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n' \
    'RFC 9112 §9.3: as above (nginx closes after a 412)'
row rfc:412,keep 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Match: "other"\r\nRange: bytes=0-4\r\n\r\n' \
    'RFC 9110 §13.2.2: preconditions before Range; RFC 9112 §9.3 (nginx closes)'
row rfc:412,keep 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nRange: bytes=0-4\r\n\r\n' \
    'RFC 9110 §13.2.2: preconditions before Range; RFC 9112 §9.3 (nginx closes)'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nIf-None-Match: @ETAG@\r\nRange: bytes=0-4\r\n\r\n'

# versions and connection handling (RFC 9112 §2.3, §9.3)
row same 'GET /hello.txt HTTP/1.0\r\n\r\n'
row same 'GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'
row same 'GET /hello.txt HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: foo\r\nFoo: 1\r\n\r\n'
row rfc:200,keep 'GET /hello.txt HTTP/1.2\r\nHost: x\r\n\r\n' \
    'RFC 9110 §2.5: a higher minor version is compatible: served as 1.1 (weftd: 505)'
row same 'GET /hello.txt HTTP/2.0\r\nHost: x\r\n\r\n'
row rfc:400,close 'GET /hello.txt HTTP/1.10\r\nHost: x\r\n\r\n' \
    'RFC 9112 §2.3: HTTP-version is DIGIT "." DIGIT (nginx serves it as 1.10)'
row same 'GET /hello.txt HTTPS/1.1\r\nHost: x\r\n\r\n'
row rfc:400,close 'GET /hello.txt\r\n\r\n' \
    'RFC 9112 §3: a request-line has an HTTP-version; no HTTP/0.9 (nginx answers 0.9: no head)'
row same '\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET  /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row rfc:400,close 'GET\t/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 9112 §3: an HTAB is not a tchar: an invalid request-line SHOULD get 400 (weftd: 501, an unknown method)'
row rfc:400,close 'GET /hello.txt HTTP/1.1 \r\nHost: x\r\n\r\n' \
    'RFC 9112 §3: nothing after HTTP-version: an invalid request-line SHOULD get 400 (nginx: 200)'
row same 'HEAD /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'
row rfc:400,close 'GET /hello.txt HTTP/1.1\nHost: x\n\n' \
    'RFC 9112 §2.2: a bare LF MAY be accepted; weftd refuses it and says to use nc -C (nginx: 200)'

# Host (RFC 9112 §3.2)
row same 'GET /hello.txt HTTP/1.1\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: a b\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: a/b\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x:80\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: [::1]:80\r\n\r\n'
row rfc:200,keep 'GET /hello.txt HTTP/1.1\r\nHost:\r\n\r\n' \
    'RFC 9112 §3.2: an empty Host is valid (a target URI without authority; nginx: 400)'
row same 'GET http://x/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET http://other/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET http://x/hello.txt HTTP/1.1\r\n\r\n'
row same 'GET https://x/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row rfc:400,close 'GET ftp://x/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 9110 §4.2: only http and https URIs name resources here (nginx ignores the scheme: 200)'
row same 'GET HTTP://X/hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'GET * HTTP/1.1\r\nHost: x\r\n\r\n'
row rfc:405,keep 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 9110 §9.3.7: OPTIONS * is well-formed (nginx: 400); weftd allows GET, HEAD only: 405 + Allow'

# header syntax (RFC 9112 §5, RFC 9110 §5.5)
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost : x\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A : 1\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX_A: 1\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\n Host: x\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A:\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A: \t1 \t\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-\001: 1\r\n\r\n'
row rfc:400,close 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A: a\001b\r\n\r\n' \
    'RFC 9110 §5.5: a CTL in a field value is invalid; may be kept (nginx) or refused (weftd)'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n'

# methods (RFC 9110 §9)
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'
row rfc:405,keep 'POST /nope.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' \
    'RFC 9110 §15.5.6: the files take GET and HEAD, on any path (nginx looks the file up first: 404)'
row same 'PUT /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'
row same 'DELETE /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row same 'OPTIONS /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row rfc:405,keep 'TRACE /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 9112 §9.3: a well-framed request keeps the connection (nginx closes after TRACE)'
row rfc:501 'FOO /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 9110 §9.1: an unrecognized method SHOULD get 501 (nginx: 405)'
row rfc:501 'get /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n' \
    'RFC 9110 §9.1: methods are case-sensitive: get is not GET, 501 (nginx: 400)'
row rfc:405 'CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n' \
    'RFC 9110 §9.3.6: a known method an origin server does not allow (nginx: 400)'

# message body framing and smuggling (RFC 9112 §6)
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: 1\r\n\r\n'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
row rfc:501,close 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' \
    'RFC 9112 §6.1: a transfer coding the server does not understand SHOULD get 501 (weftd: accepted)'
row rfc:400,close 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n' \
    'RFC 9112 §6.3: chunked not last: the length is unknown, MUST 400 and close (nginx: 501)'
row rfc:400,close 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n' \
    'RFC 9112 §6.3: no chunked last: MUST 400 and close (nginx: 501)'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
row same 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  chunked \r\n\r\n5\r\nhello\r\n0\r\n\r\n'
row rfc:400,close 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' \
    'RFC 9112 §6.3: no chunked last: MUST 400 and close (nginx: 501)'
row same 'POST /hello.txt HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
row rfc:400,close 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n' \
    'RFC 9112 §7.1: a bad chunk makes the message invalid; weftd reads the body before it answers (nginx: 405, then closes)'
row rfc:400,close 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n' \
    'RFC 9112 §7.1: as above (nginx: 405, then closes)'
row rfc:400,close 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n' \
    'RFC 9112 §7.1: no CRLF after the chunk data (nginx: 405, then closes)'

# Expect (RFC 9110 §10.1.1)
row rfc:404,keep 'GET /nope.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello' \
    'RFC 9110 §10.1.1: no 100 (Continue) when the final answer is known (weftd: 100, then 404)'
row rfc:405,keep 'POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello' \
    'RFC 9110 §10.1.1: no 100 (Continue) when the final answer is known (weftd: 100, then 405)'
row same 'POST /hello.txt HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello'
row rfc:200,keep 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n' \
    'RFC 9110 §10.1.1: a server MAY omit 100 when the framing says there is no content (nginx sends it)'
row rfc:417 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\n\r\n' \
    'RFC 9110 §10.1.1: an expectation other than 100-continue MAY get 417 (nginx ignores it: 200)'

# Upgrade (RFC 9110 §7.8)
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n' \
    'RFC 9110 §7.8: a server may ignore Upgrade; the connection persists as without it (weftd closes)'
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n' \
    'RFC 9110 §7.8: as above (weftd closes)'

# limits (RFC 9110 §5.4, RFC 6585 §5, RFC 9112 §3)
long=$(printf 'a%.0s' $(seq 1 9000))
c20=$(printf 'c%.0s' $(seq 1 20000))
many=$(for i in $(seq 1 120); do printf 'X-H%d: %d\\r\\n' "$i" "$i"; done)
row same "GET /$long HTTP/1.1\r\nHost: x\r\n\r\n"
row rfc:200,keep "GET /hello.txt HTTP/1.1\r\nHost: x\r\nCookie: s=$c20\r\n\r\n" \
    'RFC 9110 §5.4: each server sets its limit: weftd 32k of head in all, nginx 8k a line (400)'
row rfc:431,close "GET /hello.txt HTTP/1.1\r\nHost: x\r\nCookie: s=$c20\r\nCookie: t=$c20\r\n\r\n" \
    'RFC 6585 §5: header fields too large: 431 (nginx: 400)'
row rfc:431,close "GET /hello.txt HTTP/1.1\r\nHost: x\r\n$many\r\n" \
    'RFC 6585 §5: over max_headers (100): 431 (nginx has no count limit: 200)'

# plain HTTP to an HTTPS port
row_wport=$wtls row_nport=$ntls
row same 'GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n'
row_wport='' row_nport=''

# No request may kill a worker: weftd's master logs a worker that died.
! grep -E "worker [0-9]+ (killed by|exited with)" "$tmp/weftd.err" ||
    fail "a weftd worker died during the table"
st=0
stop_weftd weftd || st=$?
[ "$st" -eq 0 ] || fail "weftd exited with status $st on SIGTERM"
st=0
stop_weftd nginx || st=$?
[ "$st" -eq 0 ] || fail "nginx exited with status $st on SIGTERM"

finish "ok - ${0##*/}: $rows rows: $n_same as nginx, $n_rfc by the RFC where nginx differs, $todo_open todo$([ "$todo_fixed" -eq 0 ] || echo " ($todo_fixed todo rows pass now)")"
