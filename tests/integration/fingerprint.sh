#!/usr/bin/env bash
# Print a fingerprint of everything a pitcopy task may change on this host:
# every file under the given state directories (type, mode, sha256; lock
# files excluded, since taking a lock is not a change) and every volume under
# the given places (btrfs subvolumes with their UUIDs, LVM LVs with tags, ZFS
# datasets/snapshots with our user properties, plus a file listing with
# checksums). Two equal fingerprints mean "nothing changed".
#
#   fingerprint.sh --state DIR [--state DIR...] [--btrfs MNT...] [--lvm VG...] [--zfs POOL...]
set -uo pipefail
export LC_ALL=C
mode=
for arg in "$@"; do
    case $arg in
    --state | --btrfs | --lvm | --zfs) mode=${arg#--}; continue ;;
    esac
    case $mode in
    state)
        echo "## state $arg"
        if [[ -L $arg ]]; then
            echo "symlink -> $(readlink "$arg")"
        elif [[ -e $arg ]]; then
            stat -c '%F %a' "$arg"
            find "$arg" -mindepth 1 ! -name '*.lock' -printf '%P %y %m\n' | sort
            find "$arg" -mindepth 1 -type f ! -name '*.lock' -readable -print0 | sort -z |
                xargs -0 -r sha256sum
        else
            echo "absent"
        fi
        ;;
    btrfs)
        echo "## btrfs $arg"
        # "gen" moves with any transaction (an atime update by the checksums
        # below is one), so it is left out; identity and paths are compared.
        btrfs subvolume list -a -u -q -R -r "$arg" 2>&1 | sed -e 's/^/ro /' -e 's/ gen [0-9]*//'
        btrfs subvolume list -a -u -q -R "$arg" 2>&1 | sed -e 's/ gen [0-9]*//'
        find "$arg" -xdev -mindepth 1 -printf '%P %y %s %m\n' 2>/dev/null | sort
        find "$arg" -xdev -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum
        ;;
    lvm)
        echo "## lvm $arg"
        lvs --noheadings -o lv_name,lv_attr,lv_size,origin,pool_lv,lv_tags,lv_uuid --units b "$arg" 2>&1 | sort
        ;;
    zfs)
        echo "## zfs $arg"
        # Space accounting settles when the transaction group commits, seconds
        # after a write or destroy (seen: "used" moved between two identical
        # runs): commit first, and compare what a dataset holds (referenced),
        # not what its snapshots pin (used).
        zpool sync "${arg%%/*}" 2>/dev/null
        zfs list -Hp -t all -r -o name,guid,referenced,origin "$arg" 2>&1 | sort
        zfs get -Hp -r -s local -o name,property,value all "$arg" 2>&1 | grep -v -e '	written	' | sort
        # what the file systems hold: a rollback restores content of the
        # same size, which no space figure shows
        zfs list -H -o mounted,mountpoint -t filesystem -r "$arg" 2>/dev/null | sort -k2 |
            while read -r mounted mountpoint; do
                [[ $mounted == yes ]] || continue
                echo "# files $mountpoint"
                find "$mountpoint" -xdev -type f -print0 2>/dev/null | sort -z | xargs -0 -r sha256sum
            done
        ;;
    *)
        echo "usage: $0 --state DIR [--btrfs MNT...] [--lvm VG...] [--zfs POOL...]" >&2
        exit 2
        ;;
    esac
done
