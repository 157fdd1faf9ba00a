#!/usr/bin/env bash
# Run one command inside a throw-away VM with Debian's kernel (device-mapper,
# dm-snapshot, dm-thin-pool and, with --zfs, OpenZFS), one boot per call.
#
# Usage:
#   tests/vm/run.sh [--zfs] [--timeout SECONDS] [--memory SIZE] [--cpus N]
#                   [--results DIR] [--disk SIZE]... -- COMMAND [ARG...]
#
#   --zfs            also load the zfs module and put the zfs userland on PATH
#   --timeout S      kill the VM after S seconds (default 1800); exit 124
#   --memory SIZE    guest memory, qemu syntax (default 3G)
#   --cpus N         guest CPUs (default 2)
#   --results DIR    host directory the guest may write (default: a new
#                    /tmp/pitcopy-vm.XXXXXX); inside the guest it is
#                    $PITCOPY_VM_RESULTS, at the same path
#   --disk SIZE      attach an empty sparse disk of SIZE (e.g. 4G) as a
#                    virtio-scsi disk (/dev/sda, /dev/sdb, ...); repeatable
#   --ssh PORT       give the guest a user-mode network and an sshd, reached
#                    from the host at 127.0.0.1:PORT as root with the key
#                    RESULTS/ssh/id_ed25519 (see tests/vm/with-guest.sh)
#
# Examples:
#   tests/vm/run.sh -- lvs --version
#   tests/vm/run.sh --zfs -- bash -c 'truncate -s 256M /tmp/z && zpool create t /tmp/z && zpool list'
#   tests/vm/run.sh -- pytest -p no:cacheprovider tests/real -m lvm
#
# Prerequisite: tests/vm/setup.sh (idempotent; caches under
# $PITCOPY_VM_CACHE, default /opt/pitcopy-vm).
#
# In the guest the host's root is shared read-only (the repo included);
# /etc /lib /usr /var /tmp /home are throw-away overlays, so write scratch
# files under /tmp and results under $PITCOPY_VM_RESULTS. The command runs
# in the current directory with the repo's venv first on PATH, the collection
# importable (PYTHONPATH has ansible_collections/pitcopy/versions -> repo) and
# LVM_SUPPRESS_FD_WARNINGS=1. Its output is shown and its exit status is
# this script's exit status (124: timeout, 125: the VM or the harness failed).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${PITCOPY_VM_CACHE:-/opt/pitcopy-vm}
ZFS=0
TIMEOUT=${PITCOPY_VM_TIMEOUT:-1800}
MEMORY=${PITCOPY_VM_MEMORY:-3G}
CPUS=${PITCOPY_VM_CPUS:-2}
RESULTS=
DISKS=()
SSH_PORT=

die() { echo "tests/vm/run.sh: $*" >&2; exit 125; }
usage() { sed -n '2,36p' "${BASH_SOURCE[0]}" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --zfs) ZFS=1; shift ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --memory) MEMORY=${2:?}; shift 2 ;;
        --cpus) CPUS=${2:?}; shift 2 ;;
        --results) RESULTS=${2:?}; shift 2 ;;
        --disk) DISKS+=("${2:?}"); shift 2 ;;
        --ssh) SSH_PORT=${2:?}; shift 2 ;;
        --) shift; break ;;
        -h|--help) usage ;;
        *) echo "tests/vm/run.sh: unknown option $1" >&2; usage ;;
    esac
done
[ $# -gt 0 ] || { echo "tests/vm/run.sh: no command given" >&2; usage; }
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds, got '$TIMEOUT'"
if [ -n "$SSH_PORT" ]; then
    if ! [[ $SSH_PORT =~ ^[0-9]+$ ]] || [ "$SSH_PORT" -lt 1024 ] || [ "$SSH_PORT" -gt 65535 ]; then
        die "--ssh must be a TCP port from 1024 to 65535, got '$SSH_PORT'"
    fi
fi

[ -r "$CACHE/env" ] || die "no VM set up in $CACHE: run tests/vm/setup.sh first"
# shellcheck disable=SC1091
. "$CACHE/env"
[ -s "${VMLINUZ:-}" ] || die "guest kernel ${VMLINUZ:-?} is missing: run tests/vm/setup.sh"
KMODS=$(dirname "$(dirname "$VMLINUZ")")/lib/modules/$KVER
[ -s "$KMODS/modules.dep" ] || die "modules of $KVER are missing ($KMODS): run tests/vm/setup.sh"
# This checkout's vng first: the one setup.sh recorded in $CACHE/env belongs
# to whichever checkout ran it last, which may be gone (a CI clone).
if [ -x "$REPO/.venv/bin/vng" ]; then
    VNG=$REPO/.venv/bin/vng
elif [ ! -x "${VNG:-}" ]; then
    VNG=$(command -v vng || true)
fi
[ -x "$VNG" ] || die "vng (virtme-ng) not found: create the venv (requirements/) and rerun tests/vm/setup.sh"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: run tests/vm/setup.sh"
if [ -n "$SSH_PORT" ] && [ ! -x "${SSHD_PREFIX:-/nonexistent}/usr/sbin/sshd" ]; then
    die "the guest's sshd is missing (${SSHD_PREFIX:-no prefix recorded}): run tests/vm/setup.sh"
fi
if [ "$ZFS" = 1 ]; then
    ls "$KMODS/updates/dkms/"zfs.ko* >/dev/null 2>&1 \
        || die "the zfs module for $KVER is missing ($KMODS/updates/dkms): run tests/vm/setup.sh (without --no-zfs)"
    if [ -z "${ZFS_PREFIX:-}" ] || [ ! -x "$ZFS_PREFIX/sbin/zpool" ]; then
        die "the zfs userland is missing (${ZFS_PREFIX:-no prefix recorded}): run tests/vm/setup.sh (without --no-zfs)"
    fi
fi

if [ -z "$RESULTS" ]; then
    RESULTS=$(mktemp -d /tmp/pitcopy-vm.XXXXXX)
else
    mkdir -p "$RESULTS"
    RESULTS=$(cd "$RESULTS" && pwd)
fi
rm -f "$RESULTS/rc" "$RESULTS/guest-start" "$RESULTS/guest-end" "$RESULTS/ssh-ready" "$RESULTS/stop"
# vng gives each of its six console channels (stdin, stdout, ...) a
# virtio-serial device with 31 ports: ~400 queue eventfds that QEMU's main
# loop polls on every wake-up (measured here: the main thread used 11-19% of
# a core per guest with them, 4-6% with one port per device).
# Port 0 is reserved for consoles, so one port per device needs 2.
qemu_opts="-global virtio-serial-pci.max_ports=2"
if [ -n "$SSH_PORT" ]; then
    # Fresh keys per boot: the host key is pinned in known_hosts by
    # with-guest.sh, the client key is root's only way in.
    rm -rf "$RESULTS/ssh"
    mkdir -m 0700 "$RESULTS/ssh"
    ssh-keygen -q -t ed25519 -N '' -C pitcopy-vm-host -f "$RESULTS/ssh/host_key" || die "ssh-keygen failed"
    ssh-keygen -q -t ed25519 -N '' -C pitcopy-vm-client -f "$RESULTS/ssh/id_ed25519" || die "ssh-keygen failed"
    qemu_opts+=" -netdev user,id=pcnet,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22 -device virtio-net-pci,netdev=pcnet"
fi
# The command travels as NUL-separated words so that no quoting is involved.
printf '%s\0' "$@" > "$RESULTS/argv"
{
    printf 'REPO=%q\n' "$REPO"
    printf 'CWD=%q\n' "$PWD"
    printf 'ZFS=%q\n' "$ZFS"
    printf 'ZFS_PREFIX=%q\n' "${ZFS_PREFIX:-}"
    printf 'RESULTS=%q\n' "$RESULTS"
    printf 'SSH_PORT=%q\n' "$SSH_PORT"
    printf 'SSHD_PREFIX=%q\n' "${SSHD_PREFIX:-}"
    # Pass through what tests read (CI mode, strictness, local overrides).
    for v in CI PITCOPY_ALLOW_MISSING PYTEST_ADDOPTS PITCOPY_BENCH_N; do
        [ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
    done
} > "$RESULTS/guest.env"

DISKDIR=
trap 'if [ -n "$DISKDIR" ]; then rm -rf "$DISKDIR"; fi' EXIT
disk_args=()
if [ "${#DISKS[@]}" -gt 0 ]; then
    DISKDIR=$(mktemp -d /var/tmp/pitcopy-vm-disks.XXXXXX)
    i=0
    for size in "${DISKS[@]}"; do
        truncate -s "$size" "$DISKDIR/disk$i.img" || die "cannot create a sparse disk of size '$size'"
        disk_args+=(--disk "$DISKDIR/disk$i.img")
        i=$((i + 1))
    done
fi

# The host's root reaches the guest over 9p mounted "sync" without caching:
# every stat and open is a round trip through the emulated virtio queue
# (measured: `python3 -c pass` 2.3 s, `import yaml` 6 s, `ansible --version`
# 51 s, 1 MB/s to read the venv). Python and its packages are thousands of
# small files, so they travel as an ext4 image on a virtio disk instead
# (guest page cache, readahead); guest.sh bind-mounts each tree over its own
# path, so every path stays what it is on the host. Built per boot (~7 s)
# from what is installed now, so it can never be stale.
# PITCOPY_VM_FAST_PYTHON=0 boots without it.
runtime_image() {  # runtime_image DIR -> DIR/runtime.img
    local stage=$1/runtime venv_py base stdlib sys_py sys_stdlib
    venv_py=$REPO/.venv/bin/python
    [ -x "$venv_py" ] || return 0
    base=$("$venv_py" -c 'import sys; print(sys.base_prefix)') || return 1
    stdlib=$("$venv_py" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))') || return 1
    mkdir -p "$stage/tree"
    : > "$stage/tree/mounts"
    add() {  # add NAME HOST-DIR [tar --exclude options...]
        local name=$1 dir=$2
        shift 2
        [ -d "$dir" ] || return 0
        mkdir -p "$stage/tree/$name"
        tar -C "$dir" "$@" -cf - . | tar -C "$stage/tree/$name" -xf - || return 1
        printf '%s %s\n' "$name" "$dir" >> "$stage/tree/mounts"
    }
    # The venv's base interpreter without its own site-packages (the venv
    # does not see them) and without the stdlib's test suite.
    add base "$base" --exclude="./${stdlib#"$base"/}/site-packages/*" --exclude="./${stdlib#"$base"/}/test" || return 1
    add venv "$REPO/.venv" || return 1
    # The system Python that Ansible's interpreter discovery picks for modules.
    sys_py=$(command -v /usr/bin/python3 || true)
    if [ -n "$sys_py" ]; then
        sys_stdlib=$("$sys_py" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))') || return 1
        if [ "$sys_stdlib" != "$stdlib" ]; then
            add sysstdlib "$sys_stdlib" --exclude=./test || return 1
        fi
        add dist /usr/lib/python3/dist-packages || return 1
    fi
    local kib
    kib=$(du -sk "$stage/tree" | cut -f1)
    truncate -s $(( (kib * 5 / 4 + 65536) * 1024 )) "$1/runtime.img" || return 1
    mkfs.ext4 -q -F -L pitcopy-rt -d "$stage/tree" "$1/runtime.img" >/dev/null || return 1
    rm -rf "$stage"
    disk_args+=(--disk "$1/runtime.img")
}

if [ "${PITCOPY_VM_FAST_PYTHON:-1}" = 1 ]; then
    [ -n "$DISKDIR" ] || DISKDIR=$(mktemp -d /var/tmp/pitcopy-vm-disks.XXXXXX)
    t0=$(date +%s.%N)
    runtime_image "$DISKDIR" || die "cannot build the runtime image (PITCOPY_VM_FAST_PYTHON=0 boots without it)"
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "[vm] runtime image built in %.1f s\n", b - a }' >&2
fi

# vng runs virtme-run from its own bin directory.
VNG_DIR=$(dirname "$VNG")
export PATH="$VNG_DIR:$PATH"
start=$(date +%s.%N)
echo "[vm] booting $KVER (cpus=$CPUS memory=$MEMORY zfs=$ZFS timeout=${TIMEOUT}s results=$RESULTS)" >&2
# --qemu-opts must stay the last vng option: it takes the rest of the line.
timeout --kill-after=15 "$TIMEOUT" "$VNG" --run "$VMLINUZ" --disable-kvm --cpus "$CPUS" --memory "$MEMORY" \
    --rwdir "$RESULTS" "${disk_args[@]}" --exec "/bin/bash $HERE/guest.sh $RESULTS" "--qemu-opts=$qemu_opts" </dev/null
vng_rc=$?
end=$(date +%s.%N)

if [ "$vng_rc" = 124 ] || [ "$vng_rc" = 137 ]; then
    echo "[vm] TIMEOUT: the VM did not finish within ${TIMEOUT}s and was killed" >&2
    exit 124
fi
if [ ! -s "$RESULTS/guest-start" ]; then
    echo "[vm] the guest never reached the command (vng exit status $vng_rc); see the console output above" >&2
    exit 125
fi
gstart=$(cat "$RESULTS/guest-start")
if [ ! -s "$RESULTS/rc" ]; then
    echo "[vm] the guest did not report an exit status (crash or panic?), vng exit status $vng_rc" >&2
    exit 125
fi
rc=$(cat "$RESULTS/rc")
gend=$(cat "$RESULTS/guest-end" 2>/dev/null || echo "$end")
awk -v s="$start" -v g="$gstart" -v ge="$gend" -v e="$end" -v rc="$rc" 'BEGIN {
    printf "[vm] boot %.1f s, command %.1f s, total %.1f s, exit status %s\n", g - s, ge - g, e - s, rc }' >&2
exit "$rc"
