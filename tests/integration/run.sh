#!/usr/bin/env bash
# Integration tests of the pitcopy.versions modules: the targets under
# tests/integration/targets/<name>/ (community.general's layout: aliases,
# tasks/main.yml; setup_pitcopy holds the shared tasks), each run as a role by
# ansible-playbook against localhost, on real storage that this script creates
# on loop devices / sparse files and removes again (also on failure).
#
#   tests/integration/run.sh btrfs            # natively: btrfs_snapshot btrfs_send bad_input module_examples
#   tests/integration/run.sh btrfs bad_input  # one target (any of its family, see its aliases)
#   tests/integration/run.sh lvm              # in the UML guest: lvm_thin module_examples
#   tests/integration/run.sh zfs              # the VM as managed host: zfs_snapshot module_examples
#
# PITCOPY_IT_LEVEL=full|light|vm the depth of the pool flow (default full on
# btrfs; light on LVM and ZFS, whose guests make a module task cost seconds:
# targets/setup_pitcopy/tasks/pool_flow.yml; vm is light); PITCOPY_IT_LOGS=DIR
# keeps the logs; PITCOPY_VENV the venv with ansible-core (default the repo's
# .venv). Exit status non-zero when any target failed.
#
# A managed host over ssh instead of localhost: PITCOPY_TARGET (inventory
# host), PITCOPY_TARGET_INVENTORY and PITCOPY_TARGET_SSH_CONFIG, as
# tests/vm/with-guest.sh sets them for the VM (ZFS). ansible-playbook
# then runs here and the storage is set up, fingerprinted and removed there.
set -uo pipefail

tech=${1:-}
case $tech in
btrfs) default_targets="btrfs_snapshot btrfs_send bad_input freshness holds monitoring module_examples"; level=${PITCOPY_IT_LEVEL:-full} ;;
lvm) default_targets="lvm_thin module_examples"; level=${PITCOPY_IT_LEVEL:-light} ;;
zfs) default_targets="zfs_snapshot module_examples"; level=${PITCOPY_IT_LEVEL:-light} ;;
*) echo "usage: $0 btrfs|lvm|zfs [TARGET...]" >&2; exit 2 ;;
esac
shift
[[ $level == vm ]] && level=light
[[ $level == full || $level == light ]] || { echo "PITCOPY_IT_LEVEL: full, light or vm (got '$level')" >&2; exit 2; }
targets=${*:-$default_targets}
TARGET=${PITCOPY_TARGET:-}
TARGET_SSH=${PITCOPY_TARGET_SSH_CONFIG:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for t in $targets; do
    # a target of this family: its aliases say so (pitcopy/<family>)
    grep -qx "pitcopy/$tech" "$HERE/targets/$t/aliases" 2>/dev/null || {
        echo "FAIL: '$t' is no $tech target (accepted: $(grep -lx "pitcopy/$tech" "$HERE"/targets/*/aliases | xargs -n1 dirname | xargs -n1 basename | tr '\n' ' '))" >&2; exit 2; }
done
if [[ -n $TARGET ]]; then
    [[ -n $TARGET_SSH && -r $TARGET_SSH && -r ${PITCOPY_TARGET_INVENTORY:-} ]] || {
        echo "FAIL: PITCOPY_TARGET=$TARGET needs readable PITCOPY_TARGET_SSH_CONFIG and PITCOPY_TARGET_INVENTORY" >&2; exit 2; }
    # btrfs keeps its mounts in this shell's arrays, bad-input needs local files
    [[ $tech != btrfs ]] || { echo "FAIL: a remote target runs lvm or zfs (got $tech)" >&2; exit 2; }
fi

REPO=$(cd "$HERE/../.." && pwd)
VENV=${PITCOPY_VENV:-$REPO/.venv}
if [[ -x $VENV/bin/ansible-playbook ]]; then
    export PATH="$VENV/bin:$PATH"
fi
PY=$(command -v python3)
if [[ -z $TARGET ]]; then
    [[ $(id -u) == 0 ]] || { echo "FAIL: run as root (storage tools, loop devices)" >&2; exit 1; }
fi
for tool in ansible-playbook ${TARGET:+ssh}; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing" >&2; exit 1; }
done

ROOT=$(mktemp -d /tmp/pitcopy-it.XXXXXX)
chmod 0700 "$ROOT"
MOUNTS=()
EXAMPLE_MOUNTS=()
remove_storage() { # what setup_$tech made, found again (runs where the storage is)
    if [[ $tech == lvm ]]; then vgremove -f -y pitcopyit >/dev/null 2>&1; vgremove -f -y vg0 >/dev/null 2>&1; fi
    if [[ $tech == zfs ]]; then zpool destroy -f pitcopyit >/dev/null 2>&1; zpool destroy -f tank >/dev/null 2>&1; fi
    # loop_file runs in $(...), so no shell ever learns the devices:
    # detach them by backing file (also what an interrupted run left).
    local img dev
    for img in "$ROOT"/*.img; do
        [[ -e $img ]] || continue
        for dev in $(losetup -l -n -O NAME -j "$img"); do losetup -d "$dev"; done
    done
    rm -rf "$ROOT"
}
cleanup() {
    set +e
    if [[ -f $ROOT/lock.pid ]]; then bash "$HERE/hold_lock.sh" --release "$ROOT/lock.pid"; fi
    for ((i = ${#EXAMPLE_MOUNTS[@]} - 1; i >= 0; i--)); do umount "${EXAMPLE_MOUNTS[i]}" && rmdir "${EXAMPLE_MOUNTS[i]}"; done
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount "${MOUNTS[i]}"; done
    on_target remove_storage
    rm -rf "$ROOT"
}
trap cleanup EXIT

# The storage functions below run where the modules run: here, or shipped
# with their definitions to the managed host (bash -s over ssh). Arguments
# are quoted with %q; nothing here comes from a user.
TARGET_FUNCTIONS=(remove_storage loop_file setup_lvm setup_zfs setup_examples)
on_target() { # on_target FUNCTION [ARG...]
    if [[ -z $TARGET ]]; then
        "$@"
        return
    fi
    {
        declare -p ROOT tech
        declare -f "${TARGET_FUNCTIONS[@]}"
        printf '%q ' "$@"
        echo
    } | ssh -F "$TARGET_SSH" "$TARGET" -- bash -s
}

# The collection must be found as ansible_collections/pitcopy/versions.
mkdir -p "$ROOT/coll/ansible_collections/pitcopy"
ln -s "$REPO" "$ROOT/coll/ansible_collections/pitcopy/versions"
export ANSIBLE_COLLECTIONS_PATH="$ROOT/coll"
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_LOCALHOST_WARNING=0
export ANSIBLE_INVENTORY_UNPARSED_WARNING=0 ANSIBLE_FORCE_COLOR=0
export ANSIBLE_CALLBACK_RESULT_FORMAT=yaml
# In the VM the host's root (and so /root) is read-only: keep Ansible's own
# files in the scratch directory.
export ANSIBLE_HOME="$ROOT/ansible-home" ANSIBLE_LOCAL_TEMP="$ROOT/ansible-tmp" ANSIBLE_REMOTE_TMP="$ROOT/ansible-tmp"
# We are root already; where sudo is not installed, become through su.
command -v sudo >/dev/null || export ANSIBLE_BECOME_METHOD=su
export PYTHONPATH="$ROOT/coll${PYTHONPATH:+:$PYTHONPATH}"

loop_file() { # loop_file NAME SIZE -> prints the loop device
    truncate -s "$2" "$ROOT/$1.img"
    losetup --find --show "$ROOT/$1.img"
}

btrfs_fs() { # btrfs_fs NAME SIZE MOUNTPOINT [mkfs options]
    local dev
    dev=$(loop_file "$1" "$2") || return 1
    mkfs.btrfs -q -f "${@:4}" "$dev" >/dev/null 2>&1 || return 1
    mkdir -p "$3"
    mount "$dev" "$3" || return 1
    MOUNTS+=("$3")
}

setup_btrfs() {
    btrfs_fs data 256M "$ROOT/data" && btrfs_fs backup 256M "$ROOT/backup" || return 1
    local s
    for s in s1 s2 s3 s4; do btrfs -q subvolume create "$ROOT/data/$s" >/dev/null || return 1; done
    for s in 1 2 3 4 5 6 7 8; do mkdir "$ROOT/backup/t$s"; done
}

setup_lvm() {
    modprobe -a dm_mod dm_snapshot dm_thin_pool 2>/dev/null
    local dev
    dev=$(loop_file lvm 768M) || return 1
    pvcreate -q "$dev" >/dev/null && vgcreate -q pitcopyit "$dev" >/dev/null || return 1
    local s
    for s in s1 s2 s3 s4 t1 t2 t3 t4 t5 t6 t7 t8; do lvcreate -q -y -L 16M -n "$s" pitcopyit >/dev/null || return 1; done
    lvcreate -q -y -L 128M -T pitcopyit/tpool >/dev/null || return 1
    for s in th1 th2 th3 th4; do lvcreate -q -y -V 32M -T pitcopyit/tpool -n "$s" >/dev/null || return 1; done
}

setup_zfs() {
    truncate -s 512M "$ROOT/zfs.img"
    zpool create -f -m "$ROOT/zmnt" pitcopyit "$ROOT/zfs.img" || return 1
    local s
    for s in s1 s2 s3 s4; do zfs create "pitcopyit/$s" || return 1; done
    zfs create pitcopyit/b || return 1
}

# The EXAMPLES use the paths and names of a typical host; give them a
# throw-away storage of their own under those names.
setup_examples() {
    case $tech in
    btrfs)
        local p
        for p in /srv/data /srv/backup; do
            if mountpoint -q "$p" || [[ -n $(ls -A "$p" 2>/dev/null) ]]; then
                echo "FAIL: $p is in use on this host; the EXAMPLES run needs it free" >&2
                return 1
            fi
        done
        btrfs_fs exdata 256M /srv/data && EXAMPLE_MOUNTS+=(/srv/data) || return 1
        unset 'MOUNTS[${#MOUNTS[@]}-1]'
        btrfs_fs exbackup 256M /srv/backup && EXAMPLE_MOUNTS+=(/srv/backup) || return 1
        unset 'MOUNTS[${#MOUNTS[@]}-1]'
        for p in db www logs; do btrfs -q subvolume create "/srv/data/$p" >/dev/null || return 1; done
        # the files copy_version's file-restore EXAMPLES restore
        mkdir /srv/data/www/uploads && echo '<h1>web</h1>' >/srv/data/www/index.html &&
            echo upload >/srv/data/www/uploads/one.txt || return 1
        for p in a b c d; do mkdir "/srv/backup/$p"; done
        ;;
    lvm)
        local dev
        dev=$(loop_file vg0 512M) || return 1
        pvcreate -q "$dev" >/dev/null && vgcreate -q vg0 "$dev" >/dev/null || return 1
        lvcreate -q -y -L 128M -T vg0/tpool >/dev/null || return 1
        lvcreate -q -y -V 32M -T vg0/tpool -n db >/dev/null && lvcreate -q -y -V 32M -T vg0/tpool -n dblog >/dev/null
        ;;
    zfs)
        truncate -s 256M "$ROOT/tank.img"
        zpool create -f -m "$ROOT/tank" tank "$ROOT/tank.img" && zfs create tank/db && zfs create tank/home
        ;;
    esac
}

prepare_bad() { # storage for the bad-input table, beyond setup_btrfs
    mkdir "$ROOT/data/plain" && echo data >"$ROOT/data/file" || return 1
    mkdir -p "$ROOT/ext/dir"  # on the root file system, not btrfs
    btrfs -q subvolume create "$ROOT/data/big" >/dev/null || return 1
    dd if=/dev/urandom of="$ROOT/data/big/blob" bs=1M count=60 status=none || return 1
    btrfs_fs tiny 40M "$ROOT/tiny" --mixed || return 1
    mkdir "$ROOT/tiny/t"
    echo data >"$ROOT/backup/file"
    mkdir "$ROOT/backup/foreign" && echo "not ours" >"$ROOT/backup/foreign/precious.txt"
    btrfs -q subvolume create "$ROOT/backup/foreign/received" >/dev/null
    sync
}

run_target() { # run_target NAME: the target as a role (target.yml), its log in $ROOT/NAME.log
    local name=$1 start=$SECONDS rc state_dir=$ROOT/state-$1 vars=$ROOT/$1.vars.json
    [[ $name == module_examples ]] && state_dir=$ROOT/exstate
    # the extra vars as JSON (ssh_cmd a list): nothing is parsed twice
    "$PY" -c 'import json, sys
keys = ["pitcopy_it_target", "pitcopy_it_root", "pitcopy_it_state_dir", "pitcopy_it_dir", "pitcopy_it_level",
        "pitcopy_it_family"]
out = dict(zip(keys, sys.argv[1:7]))
out["pitcopy_it_ssh"] = sys.argv[8:]
if sys.argv[7]:
    out["pitcopy_it_host"] = sys.argv[7]
else:  # this host: connection local, the Python of ansible-playbook
    out.update(ansible_connection="local", ansible_python_interpreter=sys.executable)
json.dump(out, sys.stdout)' "$name" "$ROOT" "$state_dir" "$HERE" "$level" "$tech" "$TARGET" \
        ${TARGET:+ssh -F "$TARGET_SSH" "$TARGET" --} >"$vars" || return 1
    echo "=== $name: ansible-playbook tests/integration/target.yml ($tech, $level)"
    ANSIBLE_ROLES_PATH="$HERE/targets" ansible-playbook -i "${PITCOPY_TARGET_INVENTORY:-localhost,}" -e "@$vars" \
        "$HERE/target.yml" >"$ROOT/$name.log" 2>&1
    rc=$?
    grep -E '^[^ ]+ +: ok=' "$ROOT/$name.log" | tail -1
    if [[ $rc != 0 ]]; then
        echo "--- $name FAILED (rc=$rc); the end of its log:"
        tail -n 45 "$ROOT/$name.log"
    fi
    echo "=== $name: rc=$rc in $((SECONDS - start)) s, $(grep -c '^TASK \[' "$ROOT/$name.log") tasks"
    if [[ -n ${PITCOPY_IT_LOGS:-} ]]; then mkdir -p "$PITCOPY_IT_LOGS" && cp "$ROOT/$name.log" "$PITCOPY_IT_LOGS/$tech-$name.log"; fi
    return $rc
}

failed=0
passed=0
if [[ -n $TARGET ]]; then
    on_target mkdir -p -m 0700 "$ROOT" || { echo "FAIL: cannot reach $TARGET over ssh"; exit 1; }
fi
on_target "setup_$tech" || { echo "FAIL: could not set up $tech storage"; exit 1; }
for target in $targets; do
    case $target in
    bad_input)
        prepare_bad || { echo "FAIL: could not prepare the bad-input storage"; failed=$((failed + 1)); continue; }
        ;;
    module_examples)
        on_target setup_examples || { echo "FAIL: could not set up the EXAMPLES storage"; failed=$((failed + 1)); continue; }
        on_target mkdir -m 0700 "$ROOT/exstate"
        ;;
    esac
    if run_target "$target"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "integration $tech: $passed passed, $failed failed"
[[ $failed == 0 ]]
