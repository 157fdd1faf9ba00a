#!/usr/bin/env bash
# Set up the throw-away VM that runs the LVM and OpenZFS tests.
#
# Usage: tests/vm/setup.sh [--no-zfs]
#
# Idempotent and scripted from Debian packages and PyPI only:
#   - Debian's kernel (the ABI that linux-image-amd64 depends on) is extracted
#     from its .deb (no initramfs, no bootloader) into $PITCOPY_VM_CACHE, its
#     modules copied to /lib/modules/<ver> (the guest shares the host's root
#     read-only, so modprobe in the guest finds them there) and depmod'ed;
#   - qemu-system-x86, busybox-static and lvm2 come from apt, virtme-ng (vng)
#     from the repo's venv (requirements/);
#   - OpenZFS: the zfs module is built with dkms for the guest kernel (slow:
#     ~3-4 min on 2 cores) and cached as a tarball keyed on kernel ABI and
#     zfs-dkms version, so a rerun (also from a fresh clone in CI on the same
#     machine) only unpacks it; the userland (zfsutils-linux and its libraries)
#     is extracted into a private prefix because it conflicts with nothing
#     there and need not be installed on the host.
#
# The cache lives outside the repo (default /opt/pitcopy-vm) so that a fresh
# clone reuses it. It must be visible in the guest: virtme-ng hides
# /var/cache, so not there. The guest's /lib/modules/<ver> is virtme-ng's
# link to the modules beside the kernel image (<cache>/kernel-<ver>/lib/...),
# so the zfs module is unpacked and depmod'ed there, never into the host's
# /lib/modules (except where dkms itself installs it while building). The result is described in $PITCOPY_VM_CACHE/env,
# which run.sh reads.
set -euo pipefail

CACHE=${PITCOPY_VM_CACHE:-/opt/pitcopy-vm}
WANT_ZFS=1
for arg in "$@"; do
    case $arg in
        --no-zfs) WANT_ZFS=0 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument $arg (accepted: --no-zfs)" >&2; exit 2 ;;
    esac
done

export DEBIAN_FRONTEND=noninteractive
log() { printf '[vm-setup %(%H:%M:%S)T] %s\n' -1 "$*"; }
mkdir -p "$CACHE"
# One setup at a time (several engineers, CI and a rerun may race).
exec 9>"$CACHE/.lock"
flock 9

APT_UPDATED=0
apt_update() {
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
}

# --- host packages --------------------------------------------------------
HOST_PKGS=(qemu-system-x86 busybox-static lvm2 thin-provisioning-tools util-linux e2fsprogs kmod udev)
missing=()
for p in "${HOST_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_update
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- kernel ------------------------------------------------------------------
KVER=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: linux-image-\(.*-amd64\)$/\1/p' | head -n1)
if [ -z "$KVER" ]; then
    apt_update
    KVER=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: linux-image-\(.*-amd64\)$/\1/p' | head -n1)
fi
[ -n "$KVER" ] || { echo "setup.sh: cannot find Debian's kernel ABI (apt-cache depends linux-image-amd64)" >&2; exit 1; }
KDIR=$CACHE/kernel-$KVER
VMLINUZ=$KDIR/boot/vmlinuz-$KVER
if [ ! -s "$VMLINUZ" ] || [ ! -s "$KDIR/.complete" ]; then
    log "fetching kernel linux-image-$KVER"
    rm -rf "$KDIR" "$CACHE/debs-kernel"
    mkdir -p "$CACHE/debs-kernel" "$KDIR"
    (
        cd "$CACHE/debs-kernel" || exit 1
        if ! apt-get download -qq "linux-image-$KVER"; then
            apt_update
            apt-get download -qq "linux-image-$KVER"
        fi
    )
    dpkg-deb -x "$CACHE"/debs-kernel/linux-image-"$KVER"_*.deb "$KDIR"
    rm -rf "$CACHE/debs-kernel"
    echo "$KVER" > "$KDIR/.complete"
fi
if [ ! -s "$KDIR/lib/modules/$KVER/modules.dep" ]; then
    depmod -b "$KDIR" "$KVER"
fi

# --- virtme-ng -----------------------------------------------------------------
REPO=$(cd "$(dirname "$0")/../.." && pwd)
VNG=${VNG:-}
if [ -z "$VNG" ]; then
    if [ -x "$REPO/.venv/bin/vng" ]; then VNG=$REPO/.venv/bin/vng
    elif command -v vng >/dev/null; then VNG=$(command -v vng)
    else
        echo "setup.sh: vng (virtme-ng) not found: create the venv first (tests/setup.sh installs requirements/)" >&2
        exit 1
    fi
fi

# --- sshd for the guest -----------------------------------------------------
# The guest is a managed host for a controller on the host (run.sh --ssh):
# an Ansible task costs ~43 s when the controller itself runs emulated. The
# server is extracted into a prefix, not installed, so the host gets no ssh
# service of its own.
SSHVER=$(apt-cache policy openssh-server | sed -n 's/^ *Candidate: \(.*\)$/\1/p')
if [ -z "$SSHVER" ] || [ "$SSHVER" = "(none)" ]; then
    apt_update
    SSHVER=$(apt-cache policy openssh-server | sed -n 's/^ *Candidate: \(.*\)$/\1/p')
fi
if [ -z "$SSHVER" ] || [ "$SSHVER" = "(none)" ]; then
    echo "setup.sh: openssh-server is not available from apt" >&2
    exit 1
fi
SSHD_PREFIX=$CACHE/sshd-prefix-${SSHVER//[:~+]/_}
if [ ! -x "$SSHD_PREFIX/usr/sbin/sshd" ]; then
    log "extracting openssh-server $SSHVER into $SSHD_PREFIX"
    rm -rf "$SSHD_PREFIX" "$SSHD_PREFIX.tmp" "$CACHE/debs-ssh"
    mkdir -p "$CACHE/debs-ssh" "$SSHD_PREFIX.tmp"
    (
        cd "$CACHE/debs-ssh" || exit 1
        if ! apt-get download -qq "openssh-server=$SSHVER" openssh-sftp-server libwrap0 2>/dev/null; then
            apt_update
            apt-get download -qq "openssh-server=$SSHVER" openssh-sftp-server libwrap0
        fi
    )
    for deb in "$CACHE"/debs-ssh/*.deb; do dpkg-deb -x "$deb" "$SSHD_PREFIX.tmp"; done
    rm -rf "$CACHE/debs-ssh"
    mv "$SSHD_PREFIX.tmp" "$SSHD_PREFIX"
fi
if ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null; then
    log "installing openssh-client"
    apt_update
    apt-get install -y -qq --no-install-recommends openssh-client
fi

# --- OpenZFS -----------------------------------------------------------------
ZFS_PREFIX=
ZFS_TARBALL=
if [ "$WANT_ZFS" = 1 ]; then
    # contrib holds zfs-dkms / zfsutils-linux. Add it in a file of our own
    # rather than editing the distribution's sources.
    CONTRIB=/etc/apt/sources.list.d/pitcopy-contrib.sources
    if ! apt-cache policy zfs-dkms 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        if [ ! -e "$CONTRIB" ]; then
            log "enabling Debian contrib in $CONTRIB"
            src=$(grep -l 'debian' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 || true)
            uri=http://deb.debian.org/debian
            keyring=/usr/share/keyrings/debian-archive-keyring.gpg
            if [ -n "$src" ]; then
                u=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' "$src")
                [ -n "$u" ] && uri=$u
            fi
            codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
            cat > "$CONTRIB" <<EOF
Types: deb
URIs: $uri
Suites: $codename ${codename}-updates
Components: contrib
Signed-By: $keyring
EOF
        fi
        APT_UPDATED=0
        apt_update
    fi
    ZVER=$(apt-cache policy zfs-dkms | sed -n 's/^ *Candidate: \(.*\)$/\1/p')
    if [ -z "$ZVER" ] || [ "$ZVER" = "(none)" ]; then
        echo "setup.sh: zfs-dkms not available from apt (contrib)" >&2
        exit 1
    fi
    ZFS_TARBALL=$CACHE/zfs-modules-$KVER-$ZVER.tar.gz
    if [ ! -s "$ZFS_TARBALL" ]; then
        log "building (or packing the already built) zfs module $ZVER for $KVER with dkms (a build takes minutes)"
        t0=$SECONDS
        apt_update
        # Recommends would pull zfsutils-linux onto the host (services, a
        # conflict with zfs-fuse); the userland goes into a prefix below.
        apt-get install -y -qq --no-install-recommends "linux-headers-$KVER" dkms "zfs-dkms=$ZVER" || true
        dver=${ZVER%%-*}
        if ! ls "/lib/modules/$KVER/updates/dkms/"zfs.ko* >/dev/null 2>&1; then
            dkms build -m zfs -v "$dver" -k "$KVER"
            dkms install -m zfs -v "$dver" -k "$KVER" --force
        fi
        ls "/lib/modules/$KVER/updates/dkms/"zfs.ko* >/dev/null
        tar -C "/lib/modules/$KVER/updates/dkms" -czf "$ZFS_TARBALL.tmp" .
        mv "$ZFS_TARBALL.tmp" "$ZFS_TARBALL"
        log "zfs module built in $((SECONDS - t0)) s, cached as $ZFS_TARBALL"
    fi
    GUEST_DKMS=$KDIR/lib/modules/$KVER/updates/dkms
    if ! ls "$GUEST_DKMS/"zfs.ko* >/dev/null 2>&1 || [ "$(cat "$GUEST_DKMS/.from" 2>/dev/null)" != "$ZFS_TARBALL" ]; then
        log "unpacking the zfs module $ZFS_TARBALL for the guest"
        rm -rf "$GUEST_DKMS"
        mkdir -p "$GUEST_DKMS"
        tar -C "$GUEST_DKMS" -xzf "$ZFS_TARBALL"
        echo "$ZFS_TARBALL" > "$GUEST_DKMS/.from"
        depmod -b "$KDIR" "$KVER"
    fi

    ZFS_PREFIX=$CACHE/zfs-prefix-$ZVER
    if [ ! -x "$ZFS_PREFIX/sbin/zpool" ]; then
        log "extracting the zfs userland $ZVER into $ZFS_PREFIX"
        rm -rf "$ZFS_PREFIX" "$CACHE/debs-zfs"
        mkdir -p "$CACHE/debs-zfs" "$ZFS_PREFIX.tmp"
        (cd "$CACHE/debs-zfs" && apt-get download -qq zfsutils-linux libzfs4linux libzpool5linux libnvpair3linux libuutil3linux)
        for deb in "$CACHE"/debs-zfs/*.deb; do dpkg-deb -x "$deb" "$ZFS_PREFIX.tmp"; done
        rm -rf "$CACHE/debs-zfs"
        mv "$ZFS_PREFIX.tmp" "$ZFS_PREFIX"
    fi
fi

if [ "$WANT_ZFS" = 0 ] && [ -r "$CACHE/env" ]; then
    # keep what an earlier full setup recorded
    ZFS_PREFIX=$(sed -n 's/^ZFS_PREFIX=//p' "$CACHE/env")
    ZFS_TARBALL=$(sed -n 's/^ZFS_TARBALL=//p' "$CACHE/env")
fi
cat > "$CACHE/env.tmp" <<EOF
KVER=$KVER
VMLINUZ=$VMLINUZ
VNG=$VNG
ZFS_PREFIX=$ZFS_PREFIX
ZFS_TARBALL=$ZFS_TARBALL
SSHD_PREFIX=$SSHD_PREFIX
EOF
mv "$CACHE/env.tmp" "$CACHE/env"
log "ready: kernel $KVER${ZFS_PREFIX:+, zfs userland $ZFS_PREFIX}"
