#!/usr/bin/env bash
# PID 1 of a User-mode Linux guest started by tests/uml/guest.py; not for
# direct use. The root is the host's / over hostfs, read-only; this gives
# the guest its own /proc, /sys, /dev, /run, /tmp, throw-away overlays over
# the directories programs write to, the UML kernel's modules, udev (LVM
# waits for it), and the results directory (PITCOPY_RESULTS, from the kernel
# command line) read-write. Then it runs $PITCOPY_RESULTS/command.sh, writes
# its exit status to $PITCOPY_RESULTS/exit-status (UML's own exit status is
# not reliable) and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
R=${PITCOPY_RESULTS:?}

fail() {
    echo "[uml-init] $*" >&2
    echo 125 > "$R/exit-status" 2>/dev/null
    poweroff_now
}
poweroff_now() {
    sync
    # not running systemd: power off right away (SysRq o as a fall-back)
    systemctl poweroff --force --force >/dev/null 2>&1
    echo o > /proc/sysrq-trigger
    sleep 30
}

{ mount -t proc proc /proc && mount -t sysfs sysfs /sys; } || fail "cannot mount /proc, /sys"
# the kernel may have mounted devtmpfs itself (CONFIG_DEVTMPFS_MOUNT)
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev || fail "cannot mount /dev"
mkdir -p /dev/pts /dev/shm
{ mount -t devpts devpts /dev/pts && mount -t tmpfs tmpfs /dev/shm; } || fail "cannot mount /dev/pts, /dev/shm"
{ mount -t tmpfs -o mode=0755 tmpfs /run && mount -t tmpfs -o mode=1777 tmpfs /tmp; } || fail "cannot mount /run, /tmp"
mkdir -p /run/lock /run/ov
# A checkout under /tmp (a CI clone may live there) is hidden by that tmpfs:
# bring it back from the host, read-only like the rest of the root.
if [ -n "${PITCOPY_REPO:-}" ] && [ ! -d "$PITCOPY_REPO" ]; then
    if ! { mkdir -p "$PITCOPY_REPO" && mount -t hostfs -o "$PITCOPY_REPO" hostfs "$PITCOPY_REPO" \
        && mount -o remount,ro "$PITCOPY_REPO"; }; then
        fail "cannot mount the checkout $PITCOPY_REPO"
    fi
fi
# The results directory first, so that every later failure is recorded there.
# (a results directory under /tmp needs its mount point on the guest's /tmp)
mkdir -p "$R" 2>/dev/null
mount -t hostfs -o "$R" hostfs "$R" || fail "cannot mount the results directory $R"
# modprobe looks in /lib/modules/$(uname -r); the UML modules live elsewhere.
kver=$(uname -r)
{ mount -t tmpfs tmpfs /usr/lib/modules && ln -s "${PITCOPY_UML_MODULES:-/usr/lib/uml/modules}/$kver" "/usr/lib/modules/$kver"; } \
    || fail "cannot link the UML modules for $kver"
modprobe -a overlay dm_mod dm_snapshot dm_thin_pool loop || fail "cannot load the overlay, device-mapper and loop modules"
for d in /etc /var /root /home /opt /srv; do
    [ -d "$d" ] || continue
    mkdir -p "/run/ov$d/upper" "/run/ov$d/work"
    mount -t overlay overlay -o "lowerdir=$d,upperdir=/run/ov$d/upper,workdir=/run/ov$d/work" "$d" \
        || fail "cannot put an overlay over $d"
done
# device nodes and links for device-mapper (LVM waits for udev's answer)
/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1 || fail "cannot start systemd-udevd"
date +%s.%N > "$R/booted"
bash "$R/command.sh" 2>&1 | tee "$R/output.log"
echo "${PIPESTATUS[0]}" > "$R/exit-status"
date +%s.%N > "$R/finished"
dmesg > "$R/dmesg.log"
umount "$R"
poweroff_now
