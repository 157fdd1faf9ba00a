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
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp/home
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
# The collection importable as ansible_collections.pitcopy.versions.
mkdir -p /tmp/coll/ansible_collections/pitcopy
ln -sfn "$REPO" /tmp/coll/ansible_collections/pitcopy/versions
export PYTHONPATH="/tmp/coll${PYTHONPATH:+:$PYTHONPATH}"
export ANSIBLE_COLLECTIONS_PATH=/tmp/coll ANSIBLE_LOCAL_TEMP=/tmp/home/.ansible/tmp
[ -d "$REPO/.venv/bin" ] && export PATH="$REPO/.venv/bin:$PATH" VIRTUAL_ENV="$REPO/.venv"
export PATH="$PATH:/usr/sbin:/sbin"
cd "$CWD" 2>/dev/null || cd "$REPO" || exit 125
argv=()
while IFS= read -r -d '' word; do argv+=("$word"); done < "$RESULTS/argv"
# Also kept in the results directory: the console may be unreadable when
# the host side's stdout is not a terminal.
"${argv[@]}" 2>&1 | tee "$RESULTS/output.log"
finish "${PIPESTATUS[0]}"
