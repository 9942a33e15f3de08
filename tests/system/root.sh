# SPDX-License-Identifier: MIT
# root.sh: sourced by the tests of tests/system (after tests/integration/lib.sh). It gives:
#
# - root_make VAR PACKAGES...: VAR = a Debian 12 minbase root (debootstrap --variant=minbase)
#   with PACKAGES installed, built once and cached under ${WEFT_ROOT_CACHE:-/var/cache/weft-
#   tests}/root-<key>, the key a hash of the suite, variant and package list. Concurrent
#   tests share a root through a flock; a half-built root is never used (it is built beside
#   and renamed when complete). The mirror is the machine's own (its apt sources).
# - ct_boot NAME ROOT: a copy of ROOT (an overlayfs over it in $tmp: the cache is never
#   written) booted with systemd as PID 1 under systemd-nspawn --boot --private-network,
#   ready when nspawn says READY=1 (--notify-ready: the container's systemd finished
#   starting up), its console in $tmp/NAME-console.log. Sets ct_root (the copy, writable from
#   here) and ct_leader (the container's PID 1, as this machine sees it).
# - ct CMD...: run CMD inside the container (all its namespaces, a clean environment), with
#   a time limit of $ct_timeout (60) s.
# - On any exit of the test: the container's journal is saved to $tmp/NAME-journal.log
#   (shown on a failure, with every other log), the container is powered off (SIGKILLed if
#   it takes more than 20 s), the overlay unmounted, and $tmp removed.
#
# A machine that cannot do this (not root, no systemd-nspawn or debootstrap, no overlayfs,
# a container that does not boot) fails the test saying what is missing: it never passes
# silently.

ct_timeout=60
ct_name=
ct_root=
ct_leader=
ct_mounted=

root_mirror() {
    local f m
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        m=$(awk '$1 == "deb" && $0 ~ / bookworm / && $0 ~ / main/ {
                     for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' "$f")
        [ -n "$m" ] && { echo "$m"; return 0; }
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        m=$(awk 'tolower($1) == "uris:" { print $2; exit }' "$f")
        [ -n "$m" ] && { echo "$m"; return 0; }
    done
    echo http://deb.debian.org/debian
}

root_make() {
    local var=$1 cache=${WEFT_ROOT_CACHE:-/var/cache/weft-tests} list key dir lockfd t0
    shift
    [ "$(id -u)" = 0 ] || { fail "a Debian root needs root (debootstrap, systemd-nspawn)"; return 1; }
    require_tool debootstrap debootstrap
    list=$( (($# == 0)) || printf '%s\n' "$@" | sort -u | paste -sd, -)
    key=$(printf 'bookworm minbase v1 %s\n' "$list" | sha256sum | cut -c1-16)
    dir=$cache/root-$key
    mkdir -p "$cache" || { fail "cannot create $cache"; return 1; }
    exec {lockfd}>"$cache/.lock-$key"
    flock "$lockfd"
    if [ ! -e "$dir/.weft-root" ]; then
        echo "# building a Debian 12 minbase root${list:+ with $list} (once; cached in $dir)" >&2
        t0=$SECONDS
        rm -rf "$dir.new"
        if ! debootstrap --variant=minbase ${list:+--include="$list"} bookworm "$dir.new" \
                "$(root_mirror)" >"$tmp/debootstrap.log" 2>&1; then
            exec {lockfd}>&-
            fail "debootstrap failed (log: debootstrap.log; the mirror: $(root_mirror))"
            return 1
        fi
        # Each boot gets a new machine id (systemd makes one when the file is empty).
        : >"$dir.new/etc/machine-id"
        echo "$list" >"$dir.new/.weft-root"
        mv "$dir.new" "$dir"
        echo "# root built in $((SECONDS - t0)) s" >&2
    fi
    exec {lockfd}>&-
    printf -v "$var" '%s' "$dir"
}

ct() {
    timeout "$ct_timeout" nsenter -t "$ct_leader" -a \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        SYSTEMD_PAGER= SYSTEMD_COLORS=0 TERM=dumb HOME=/root "$@"
}

# ct_copy NAME ROOT: ct_root = a writable copy of ROOT (an overlay in $tmp, unmounted on exit).
ct_copy() {
    local name=$1 lower=$2
    require_tool systemd-nspawn systemd-container
    grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
        { fail "no overlayfs on this machine (the container's copy of the root)"; return 1; }
    ct_name=$name
    mkdir -p "$tmp/$name"/{upper,work,root}
    mount -t overlay overlay \
        -o "lowerdir=$lower,upperdir=$tmp/$name/upper,workdir=$tmp/$name/work" "$tmp/$name/root" ||
        { fail "cannot mount an overlay of $lower"; return 1; }
    ct_mounted=$tmp/$name/root
    ct_root=$ct_mounted
}

ct_boot() {
    local name=$1
    ct_copy "$@" || return 1
    # The machine name must be unique among running containers (nspawn keeps state under it).
    launch -n "$name" -- sh -c 'exec systemd-nspawn --quiet --boot --register=no --keep-unit \
        --private-network --notify-ready=yes --console=pipe -M "$1" -D "$2" \
        >"$3" 2>&1 </dev/null' sh "weft-$name-$$" "$ct_root" "$tmp/$name-console.log" || return 1
    if ! wait_ready "$name" 120; then
        fail "the container did not boot (systemd-nspawn --boot; its console is $name-console.log)"
        return 1
    fi
    # nspawn tells its notify socket the leader's pid (X_NSPAWN_LEADER_PID=) before READY=1.
    ct_leader=$(sed -n 's/^X_NSPAWN_LEADER_PID=//p' "$tmp/$name.notify" | tail -1)
    [ -n "$ct_leader" ] && [ "$(cat "/proc/$ct_leader/comm" 2>/dev/null)" = systemd ] ||
        { fail "nspawn named no leader running systemd (X_NSPAWN_LEADER_PID=$ct_leader)"; return 1; }
}

ct_before_exit() {
    local rc=$1 n
    [ -n "$ct_leader" ] || return 0
    ct_timeout=20 ct journalctl -b --no-pager -o short-precise >"$tmp/$ct_name-journal.log" 2>&1
    # SIGRTMIN+4 is systemd's poweroff. nspawn exits when the container has stopped.
    kill -s SIGRTMIN+4 "$ct_leader" 2>/dev/null
    wait_event "$ct_name" 'EXIT=*' 20 ||
        echo "note: the container did not power off within 20 s: killed" >&2
    ct_leader=
}

ct_after_kill() {
    local n
    [ -n "$ct_mounted" ] || return 0
    for n in 1 2 3 4 5; do
        umount "$ct_mounted" 2>/dev/null && break
        sleep 0.2
    done
    mountpoint -q "$ct_mounted" && umount -l "$ct_mounted"
    ct_mounted=
}

lib_before_exit+=(ct_before_exit)
lib_after_kill+=(ct_after_kill)
