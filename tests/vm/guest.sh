#!/usr/bin/env bash
# Runs inside the guest (called by run.sh through vng --exec); not for direct use.
RESULTS=$1
set -u
date +%s.%N > "$RESULTS/guest-start"
# shellcheck disable=SC1091
. "$RESULTS/guest.env"
finish() {
    echo "$1" > "$RESULTS/rc"
    date +%s.%N > "$RESULTS/guest-end"
    sync
    exit "$1"
}
export LVM_SUPPRESS_FD_WARNINGS=1 PITCOPY_VM=1 PITCOPY_VM_RESULTS="$RESULTS" LC_ALL=C.UTF-8
# Bytecode: Python writes none beside the sources (the host's tree), but
# keeps it for this boot under /tmp; code from Ansible's module zips is cached
# by tests/bytecode-cache/sitecustomize.py (without either, every Python start
# here compiles its imports again: seconds per module task under emulation).
export PYTHONPYCACHEPREFIX=/tmp/pitcopy-pycache PITCOPY_ZIPIMPORT_CACHE=/tmp/pitcopy-zipimport-cache
unset PYTHONDONTWRITEBYTECODE
GUEST_PYTHONPATH="$REPO/tests/bytecode-cache"
export PYTHONUNBUFFERED=1 HOME=/tmp/home
mkdir -p /tmp/home
if ! modprobe -a dm_mod dm_snapshot dm_thin_pool loop 2>"$RESULTS/modprobe.err"; then
    echo "[guest] cannot load device-mapper modules: $(cat "$RESULTS/modprobe.err")" >&2
    finish 125
fi
if [ "$ZFS" = 1 ]; then
    export PATH="$ZFS_PREFIX/sbin:$ZFS_PREFIX/usr/sbin:$ZFS_PREFIX/usr/bin:$PATH"
    export LD_LIBRARY_PATH="$ZFS_PREFIX/lib/x86_64-linux-gnu:$ZFS_PREFIX/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # zvol device links (/dev/zvol/...) come from zfs's udev rules.
    cp -a "$ZFS_PREFIX/lib/udev/." /lib/udev/ 2>/dev/null
    udevadm control --reload 2>/dev/null
    if ! modprobe zfs 2>"$RESULTS/modprobe.err"; then
        echo "[guest] cannot load the zfs module: $(cat "$RESULTS/modprobe.err")" >&2
        finish 125
    fi
fi
# Python trees from the runtime image (see run.sh) over their own paths.
rt=$(blkid -L pitcopy-rt 2>/dev/null || true)
if [ -z "$rt" ] && command -v udevadm >/dev/null; then
    udevadm settle 2>/dev/null
    rt=$(blkid -L pitcopy-rt 2>/dev/null || true)
fi
if [ -n "$rt" ]; then
    mkdir -p /run/pitcopy-rt
    if ! mount -t ext4 -o ro,noload "$rt" /run/pitcopy-rt 2>"$RESULTS/mount.err"; then
        echo "[guest] cannot mount the runtime image $rt: $(cat "$RESULTS/mount.err")" >&2
        finish 125
    fi
    while read -r name path; do
        mount --bind "/run/pitcopy-rt/$name" "$path" || { echo "[guest] cannot bind $name over $path" >&2; finish 125; }
    done < /run/pitcopy-rt/mounts
fi
if [ -n "${SSH_PORT:-}" ]; then
    # The guest as a managed host for a controller on the host (run.sh --ssh,
    # with-guest.sh): slirp's fixed addresses, no DHCP client needed.
    dev=
    for d in /sys/class/net/*; do
        [ "${d##*/}" = lo ] || { dev=${d##*/}; break; }
    done
    if ! { ip link set lo up && ip link set "$dev" up && ip addr add 10.0.2.15/24 dev "$dev" \
        && ip route add default via 10.0.2.2; }; then
        echo "[guest] cannot configure the network (${dev:-no interface})" >&2
        finish 125
    fi
    # The zfs commands on the PATH that sshd gives a session, as a package
    # would put them; their libraries through the session's environment
    # (ldconfig would scan the 9p root: slow).
    # Module tasks (Ansible over ssh, not through env.sh) get the bytecode
    # caches too.
    session_env="SetEnv PYTHONPATH=$GUEST_PYTHONPATH PYTHONPYCACHEPREFIX=$PYTHONPYCACHEPREFIX PITCOPY_ZIPIMPORT_CACHE=$PITCOPY_ZIPIMPORT_CACHE"
    if [ "$ZFS" = 1 ]; then
        mkdir -p /usr/local/sbin
        for tool in "$ZFS_PREFIX"/sbin/* "$ZFS_PREFIX"/usr/sbin/* "$ZFS_PREFIX"/usr/bin/*; do
            [ -x "$tool" ] && ln -sf "$tool" "/usr/local/sbin/${tool##*/}"
        done
        session_env="$session_env LD_LIBRARY_PATH=$ZFS_PREFIX/lib/x86_64-linux-gnu:$ZFS_PREFIX/usr/lib/x86_64-linux-gnu"
    fi
    mkdir -p /run/pitcopy-ssh /run/sshd
    chmod 0755 /run/pitcopy-ssh /run/sshd
    # sshd's privilege-separation user, and root's login shell /bin/sh: bash
    # would source the host's ~/.bashrc (pyenv init: seconds per ssh command
    # here). A copy bound over /etc/passwd, as for /etc/shadow below.
    { sed 's|^\(root:[^:]*:0:0:[^:]*:[^:]*:\).*$|\1/bin/sh|' /etc/passwd
      grep -q '^sshd:' /etc/passwd || echo 'sshd:x:101:65534::/run/sshd:/usr/sbin/nologin'
    } > /run/pitcopy-ssh/passwd
    if ! mount --bind /run/pitcopy-ssh/passwd /etc/passwd; then
        echo "[guest] cannot prepare /etc/passwd for sshd" >&2
        finish 125
    fi
    # sshd refuses a locked account ("!" in shadow) even for a key, and
    # virtme-ng-init locks them all; "*" is "no password" without the lock.
    # Bound over /etc/shadow like virtme's own copy: nothing is written through.
    sed 's/^root:![^:]*:/root:*:/' /etc/shadow > /run/pitcopy-ssh/shadow
    if ! mount --bind /run/pitcopy-ssh/shadow /etc/shadow; then
        echo "[guest] cannot unlock root for sshd" >&2
        finish 125
    fi
    install -m 0600 "$RESULTS/ssh/host_key" /run/pitcopy-ssh/host_key
    install -m 0600 "$RESULTS/ssh/id_ed25519.pub" /run/pitcopy-ssh/authorized_keys
    cat > /run/pitcopy-ssh/sshd_config <<SSHD
HostKey /run/pitcopy-ssh/host_key
AuthorizedKeysFile /run/pitcopy-ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PidFile /run/pitcopy-ssh/sshd.pid
Subsystem sftp $SSHD_PREFIX/usr/lib/openssh/sftp-server
$session_env
SSHD
    if ! LD_LIBRARY_PATH="$SSHD_PREFIX/usr/lib/x86_64-linux-gnu" "$SSHD_PREFIX/usr/sbin/sshd" -f /run/pitcopy-ssh/sshd_config -E "$RESULTS/sshd.log"; then
        echo "[guest] sshd did not start: $(tail -n 5 "$RESULTS/sshd.log" 2>/dev/null)" >&2
        finish 125
    fi
fi
# The collection importable as ansible_collections.pitcopy.versions.
mkdir -p /tmp/coll/ansible_collections/pitcopy
ln -sfn "$REPO" /tmp/coll/ansible_collections/pitcopy/versions
export PYTHONPATH="/tmp/coll:$GUEST_PYTHONPATH${PYTHONPATH:+:$PYTHONPATH}"
export ANSIBLE_COLLECTIONS_PATH=/tmp/coll ANSIBLE_LOCAL_TEMP=/tmp/home/.ansible/tmp
[ -d "$REPO/.venv/bin" ] && export PATH="$REPO/.venv/bin:$PATH" VIRTUAL_ENV="$REPO/.venv"
export PATH="$PATH:/usr/sbin:/sbin"
cd "$CWD" 2>/dev/null || cd "$REPO" || exit 125
argv=()
while IFS= read -r -d '' word; do argv+=("$word"); done < "$RESULTS/argv"
if [ -n "${SSH_PORT:-}" ]; then
    # A command over ssh (with-guest.sh: ssh vm '. /run/pitcopy-ssh/env.sh;
    # ...') gets the environment a command here gets.
    export -p > /run/pitcopy-ssh/env.sh
    date +%s.%N > "$RESULTS/ssh-ready"
fi
# Also kept in the results directory: the console may be unreadable when
# the host side's stdout is not a terminal.
"${argv[@]}" 2>&1 | tee "$RESULTS/output.log"
finish "${PIPESTATUS[0]}"
