#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test_http2_browser.sh: headless Chromium (Debian's chromium) loads a page with several
# assets from weftd's http plugin over TLS with ALPN h2 (tests/integration/h2_page: a style
# sheet that loads a background image, two images, one of them 30 KB in two DATA frames, a
# script that fetches data.json and paints a box with its colour), and:
#   - the screenshot shows each asset: a pixel of the CSS background, of the CSS's tiled
#     image, of each image, and of the box the script painted with data.json's colour
#     (png.py reads it, standard library only);
#   - weftd's access log has each asset, whole, as "GET PATH HTTP/2.0" 200 SIZE, and no
#     request in any other protocol;
#   - Chromium's net-log (netlog.py) says the same from the browser's side: every TLS
#     handshake chose h2, and each asset's request went as HTTP/2 HEADERS and got its 200
#     and every byte.
# The certificate is the test CA's (tls_certs.sh), trusted through
# --ignore-certificate-errors-spki-list with its key's hash; Chromium runs with a new
# profile and HOME in $tmp, under weft-supervise (its own process group, killed on any
# exit), and is waited for with a bound, never a sleep.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
require_env WEFTD WEFT_SOURCE_DIR
require_tool chromium chromium python3 python3 openssl openssl
keep_going=1
here=$WEFT_SOURCE_DIR/tests/integration
png=(/usr/bin/python3 "$here/png.py")

make_certs
cp -R "$here/h2_page" "$tmp/root"
mkdir -p "$tmp/root/img" "$tmp/home" "$tmp/profile"
"${png[@]}" make "$tmp/root/img/red.png" 100 100 255,0,0
"${png[@]}" make "$tmp/root/img/blue.png" 100 100 0,0,255 0        # stored: 30 KB
"${png[@]}" make "$tmp/root/img/green.png" 10 10 0,160,0
spki=$(openssl x509 -in "$c/a.pem" -pubkey -noout | openssl pkey -pubin -outform der |
       openssl dgst -sha256 -binary | base64)

launch_http() {
    cat >"$tmp/weftd.conf" <<EOC
$(weftd_section "log_level = info" "workers = 1")

[h2]
protocol = http
listen = 127.0.0.1:${ports[0]}
root = $tmp/root
tls_certificate = $c/a.pem
tls_key = $c/a.key
access_log = $tmp/access.log
EOC
    launch "$WEFTD" -c "$tmp/weftd.conf"
}
start_weftd 1 launch_http || exit 1
origin=https://127.0.0.1:${ports[0]}

# Chromium's crash handlers (chrome_crashpad_handler) leave its process group (each starts
# in a session of its own); they end once the browser is gone, but on any exit of this test
# whatever still names $tmp in its command line (their --database is in $tmp/home) is killed.
# (The last character in brackets: grep's own command line does not match.)
chromium_reap() {
    local f
    for f in $(grep -lasE -- "${tmp%?}[${tmp: -1}]/" /proc/[0-9]*/cmdline); do
        f=${f#/proc/}
        kill -KILL "${f%/cmdline}" 2>/dev/null || true
    done
}
lib_after_kill+=(chromium_reap)

# The flags that work here as root on a closed network (no sandbox, no GPU, no QUIC, none
# of Chromium's own connections), and a new profile.
t0=$SECONDS
launch -n chromium -- env HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/home/.config" \
    XDG_CACHE_HOME="$tmp/home/.cache" chromium --headless --no-sandbox --disable-gpu \
    --disable-quic --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --disable-crash-reporter --disable-dev-shm-usage --password-store=basic \
    --user-data-dir="$tmp/profile" --ignore-certificate-errors-spki-list="$spki" \
    --window-size=800,600 --log-net-log="$tmp/net.json" --screenshot="$tmp/shot.png" \
    "$origin/" || exit 1
if ! wait_event chromium 'EXIT=*' 60; then
    fail "chromium did not finish loading $origin/ within 60 s"
    sv_forget chromium
    exit 1
fi
# (The browser does not wait for its zygotes and renderers to go: weft-supervise kills what
# of its group is left, LEFTOVER=n; that is Chromium's way, not a failure.)
wait_event chromium DONE 10 || fail "chromium: weft-supervise did not finish"
[ "${sv_exit[chromium]}" = 0 ] || fail "chromium exited with status ${sv_exit[chromium]}"
sv_forget chromium
took=$((SECONDS - t0))

# The screenshot: the CSS's background, its tiled image (#tile), the two images, and the
# box app.js paints with data.json's colour (grey: the script did not run; black: it
# could not fetch data.json).
if [ ! -s "$tmp/shot.png" ]; then
    fail "chromium wrote no screenshot"
elif ! out=$("${png[@]}" check "$tmp/shot.png" 700,500=20,40,60 50,50=0,160,0 \
                 150,50=255,0,0 250,50=0,0,255 350,50=255,200,0 2>&1); then
    fail "the screenshot (at 700,500 the CSS's background, 50,50 #tile, 150,50 red.png," \
         "250,50 blue.png, 350,50 #js, which app.js paints: grey if it did not run, black if" \
         "it could not fetch data.json): $out"
fi

# The page and its assets; size PATH: the size of the file PATH names
assets=(/ /style.css /app.js /img/red.png /img/blue.png /img/green.png /data.json)
size() {
    local f=$tmp/root$1
    [ -d "$f" ] && f=$f/index.html
    stat -c %s "$f" 2>/dev/null || echo missing
}

# weftd's side: each asset whole over HTTP/2, and nothing over another protocol. (A line is
# written once its response is done: wait, bounded, until there are as many as assets.)
wait_log "$tmp/access.log" '"GET /' "${#assets[@]}" 10 ||
    fail "weftd's access log has fewer than ${#assets[@]} requests"
for p in "${assets[@]}"; do
    want="\"GET $p HTTP/2.0\" 200 $(size "$p") "
    grep -qF -- "$want" "$tmp/access.log" || fail "weftd's access log has no line with: $want"
done
if grep -v '"[A-Z]* [^ ]* HTTP/2.0"' "$tmp/access.log" >"$tmp/not-h2.txt"; then
    fail "requests in the access log not over HTTP/2: $(cat "$tmp/not-h2.txt")"
fi

# Chromium's side, from its net-log
if ! /usr/bin/python3 "$here/netlog.py" "$tmp/net.json" "$origin" >"$tmp/netlog.txt" 2>&1; then
    fail "cannot read chromium's net-log: $(cat "$tmp/netlog.txt")"
fi
logs+=("$tmp/netlog.txt")
for p in "${assets[@]}"; do
    grep -qxF "request $p h2 200 $(size "$p")" "$tmp/netlog.txt" ||
        fail "net-log: $p not fetched whole over h2: $(grep -F "request $p " "$tmp/netlog.txt" ||
              echo 'not requested')"
done
grep -q '^tls ' "$tmp/netlog.txt" || fail "net-log: no TLS handshake with weftd"
if grep '^tls ' "$tmp/netlog.txt" | grep -vqx 'tls h2'; then
    fail "net-log: a TLS handshake did not choose h2:" \
         "$(grep '^tls ' "$tmp/netlog.txt" | sort | uniq -c)"
fi
bad=$(grep '^request ' "$tmp/netlog.txt" | grep -v '^request [^ ]* h2 ' || true)
[ -z "$bad" ] || fail "net-log: requests not over h2: $bad"
sessions=$(grep -c '^h2-session ' "$tmp/netlog.txt" || true)
[ "$sessions" -ge 1 ] || fail "net-log: no HTTP/2 session with $origin"

stop_weftd || fail "weftd exited with status $? on SIGTERM"
finish "http2 browser: chromium loaded ${#assets[@]} assets over h2 on $sessions connection(s)" \
       "in ${took} s; the screenshot shows each"
