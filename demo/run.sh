#!/usr/bin/env bash
# The main job, for a newcomer on a fresh machine (run as root):
#
#   sudo demo/run.sh
#
# 1. sets itself up (tests/setup.sh --no-vm: Debian packages and the venv;
#    without it, a light venv with ansible-core and PyYAML);
# 2. creates a throw-away loop-backed storage pool: LVM (a thin pool) where
#    the kernel has device-mapper (with dm-thin-pool), btrfs otherwise;
# 3. runs playbooks/rotate.yml five times -- the rotation role defines the
#    copy pools, verifies their records, takes a copy version, pre-pairs the
#    next one -- adding a source before the third run and removing one
#    before the fourth, and shows each run's summary;
# 4. prints the version chronology (playbooks/report.yml) and verifies the
#    records (playbooks/verify.yml);
# 5. removes everything it created, also when interrupted or failing.
#
# Options (environment): PITCOPY_DEMO_TECH=btrfs|lvm to force a technology,
# PITCOPY_DEMO_KEEP_LOGS=1 to keep the full ansible logs,
# PITCOPY_DEMO_SKIP_SETUP=1 to use the existing .venv as it is (e.g. inside
# the test VM, where the checkout is read-only:
# tests/vm/run.sh -- env PITCOPY_DEMO_SKIP_SETUP=1 demo/run.sh).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
started=$(date +%s)
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "demo/run.sh creates loop devices and filesystems: run it as root (sudo demo/run.sh)" >&2
  exit 1
fi

# ---------------------------------------------------------------- set-up
if [ "${PITCOPY_DEMO_SKIP_SETUP:-0}" = 1 ]; then
  say "Set-up skipped (PITCOPY_DEMO_SKIP_SETUP=1)"
elif [ -x "$repo/tests/setup.sh" ]; then
  say "Setting up (tests/setup.sh --no-vm)"
  "$repo/tests/setup.sh" --no-vm
else
  say "Setting up (light: btrfs-progs and a venv with ansible-core and PyYAML)"
  # Light set-up: what the demo needs and nothing else.
  command -v mkfs.btrfs >/dev/null || { apt-get update -q && apt-get install -y -q btrfs-progs; }
  if [ ! -x "$repo/.venv/bin/ansible-playbook" ]; then
    python3 -m venv "$repo/.venv"
    "$repo/.venv/bin/pip" install -q -c "$repo/requirements/constraints.txt" ansible-core PyYAML
  fi
fi
venv="$repo/.venv"
export PATH="$venv/bin:$PATH"

tech=${PITCOPY_DEMO_TECH:-}
if [ -z "$tech" ]; then
  # LVM where the kernel has device-mapper with thin provisioning (a
  # /dev/mapper/control node alone proves nothing: it can exist without the
  # driver), btrfs otherwise.
  modprobe -q -a dm_mod dm_thin_pool 2>/dev/null || true
  if [ -e /dev/mapper/control ] && grep -qw device-mapper /proc/misc 2>/dev/null \
      && dmsetup targets 2>/dev/null | grep -q '^thin-pool'; then
    tech=lvm
  else
    tech=btrfs
  fi
fi
case "$tech" in btrfs | lvm) ;; *) echo "PITCOPY_DEMO_TECH must be btrfs or lvm, not $tech" >&2; exit 2 ;; esac

# ---------------------------------------------------------------- scratch space and cleanup
work=$(mktemp -d /tmp/pitcopy-demo.XXXXXX)
vg=pitcopy_demo_$$
loops=()
cleanup() {
  rc=$?
  set +e
  say "Cleaning up"
  if [ "$tech" = lvm ]; then
    LVM_SUPPRESS_FD_WARNINGS=1 vgremove -q -f "$vg" >/dev/null 2>&1
  fi
  for m in $(findmnt -rn -o TARGET | grep "^$work/" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  # The loop devices are found by their backing files (newloop runs in a
  # command substitution, a subshell, so it cannot record them for us).
  for img in "$work"/*.img; do
    [ -e "$img" ] || continue
    for dev in $(losetup -j "$img" -O NAME -n); do
      [ "$tech" = lvm ] && LVM_SUPPRESS_FD_WARNINGS=1 pvremove -q -ff -y "$dev" >/dev/null 2>&1
      losetup -d "$dev" 2>/dev/null && loops+=("$dev")
    done
  done
  if [ "${PITCOPY_DEMO_KEEP_LOGS:-0}" = 1 ]; then
    mkdir -p /tmp/pitcopy-demo-logs && cp "$work"/*.log /tmp/pitcopy-demo-logs/ 2>/dev/null
    echo "ansible logs kept in /tmp/pitcopy-demo-logs"
  fi
  rm -rf "$work"
  echo "removed $work${loops[*]:+, loop devices ${loops[*]}}$([ "$tech" = lvm ] && echo ", VG $vg")"
  if [ "$rc" = 0 ]; then
    say "Demo finished in $(( $(date +%s) - started )) s"
  else
    say "Demo FAILED (exit $rc) after $(( $(date +%s) - started )) s"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

newloop() {
  truncate -s "$2" "$work/$1.img"
  losetup --find --show "$work/$1.img"
}

# ---------------------------------------------------------------- storage
state_dir="$work/state"
if [ "$tech" = btrfs ]; then
  say "Creating a loop-backed btrfs pool (no device-mapper in this kernel)"
  src_dev=$(newloop source 512M)
  bak_dev=$(newloop backup 512M)
  mkfs.btrfs -q -f "$src_dev" >/dev/null
  mkfs.btrfs -q -f "$bak_dev" >/dev/null
  mkdir -p "$work/data" "$work/backup"
  mount "$src_dev" "$work/data"
  mount "$bak_dev" "$work/backup"
  mkdir -p "$work/data/srv"
  for s in db logs media; do btrfs -q subvolume create "$work/data/srv/$s"; done
  for t in a b c d e f; do mkdir -p "$work/backup/$t"; done
  src() { echo "$work/data/srv/$1"; }
  write() { echo "$2" >"$(src "$1")/data"; }
  tgt() { echo "$work/backup/$1"; }
else
  say "Creating a loop-backed LVM pool (device-mapper is available)"
  export LVM_SUPPRESS_FD_WARNINGS=1
  modprobe -a dm_mod dm_snapshot dm_thin_pool 2>/dev/null || true
  pv=$(newloop pv 1G)
  pvcreate -q "$pv"
  vgcreate -q "$vg" "$pv"
  lvcreate -q -L 400M -T "$vg/thinpool"
  for s in db logs media; do lvcreate -q -V 64M -T "$vg/thinpool" -n "$s" >/dev/null; done
  # lvm_clone targets: plain LVs, one per source per target pool.
  for t in a b c d e f; do lvcreate -q -L 64M -n "clone_$t" "$vg" >/dev/null; done
  src() { echo "$vg/$1"; }
  write() { printf '%s\n' "$2" | dd of="/dev/$vg/$1" bs=512 conv=sync,fsync status=none; }
  tgt() { echo "$vg/clone_$1"; }
fi

# ---------------------------------------------------------------- the rotation
inventory="$work/inventory.yml"
cat >"$inventory" <<EOF
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: $venv/bin/python
EOF
mkdir -p "$work/collections/ansible_collections/pitcopy"
ln -s "$repo" "$work/collections/ansible_collections/pitcopy/versions"
export ANSIBLE_COLLECTIONS_PATH="$work/collections" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_PIPELINING=true ANSIBLE_NOCOLOR=1 ANSIBLE_DISPLAY_SKIPPED_HOSTS=false
export ANSIBLE_HOME="$work/ansible-home" ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" ANSIBLE_REMOTE_TEMP="$work/ansible-tmp"
export ANSIBLE_CALLBACK_RESULT_FORMAT=json

# The copy pools, as an inventory would hold them (host_vars rotation_pools).
pools_json() {
  local snap_tech send_tech srcs s
  if [ "$tech" = btrfs ]; then snap_tech=btrfs_snapshot send_tech=btrfs_send; else snap_tech=lvm_thin send_tech=lvm_clone; fi
  srcs=$(for s in "$@"; do printf '"%s",' "$(src "$s")"; done)
  srcs="[${srcs%,}]"
  # The target pools list candidate targets; target selection pairs them.
  cat <<EOF
{"rotation_state_dir": "$state_dir",
 "rotation_pools": [
  {"name": "demo-snap", "technology": "$snap_tech", "sources": $srcs, "versions": 3, "every": "run"},
  {"name": "demo-copy", "technology": "$send_tech", "sources": $srcs, "versions": 2, "every": "run",
   "target_pools": [{"name": "T1", "volumes": ["$(tgt a)", "$(tgt b)", "$(tgt c)"]},
                    {"name": "T2", "volumes": ["$(tgt d)", "$(tgt e)", "$(tgt f)"]}]}]}
EOF
}

# Prints the message lines of one task of an ansible log (the whole log stays in $work).
task_msg() { # log, task title
  awk -v title="$2" '
    index($0, "TASK [" title "]") == 1 {on=1; next}
    on && /^(TASK|PLAY RECAP)/ {on=0}
    on && /^        "/ {s=$0; sub(/^ *"/, "", s); sub(/",?$/, "", s); gsub(/\\"/, "\"", s); print "  " s}' "$1"
}

run_rotation() {
  local n=$1; shift
  pools_json "$@" >"$work/vars-$n.json"
  if ! ansible-playbook -i "$inventory" "$repo/playbooks/rotate.yml" -e "@$work/vars-$n.json" \
      -e rotation_label="demo-run-$n" >"$work/rotate-$n.log" 2>&1; then
    tail -40 "$work/rotate-$n.log"
    echo "playbooks/rotate.yml failed on run $n (log above)" >&2
    return 1
  fi
  task_msg "$work/rotate-$n.log" "pitcopy.versions.rotation : Summarise the run"
}

if [ "$tech" = btrfs ]; then
  echo "source pool: $(src db), $(src logs) (btrfs subvolumes)"
  echo "demo-snap: btrfs_snapshot, keep 3 (implied target pools 01 02 03)"
  echo "demo-copy: btrfs_send, keep 2, target pools T1 = $(tgt a) $(tgt b) $(tgt c), T2 = $(tgt d) $(tgt e) $(tgt f)"
else
  echo "source pool: $(src db), $(src logs) (thin LVs)"
  echo "demo-snap: lvm_thin, keep 3 (implied target pools 01 02 03)"
  echo "demo-copy: lvm_clone, keep 2, target pools T1 = clone_a..c, T2 = clone_d..f"
fi

# run N WHY SOURCE...: new data in each source of the source pool, then rotation run N over them
demo_run() {
  local n=$1 why=$2 s; shift 2
  for s in "$@"; do write "$s" "$s at run $n"; done
  say "Run $n: $why"
  run_rotation "$n" "$@"
}

demo_run 1 "playbooks/rotate.yml (installs tools, defines the pools, takes version 1, pre-pairs version 2)" db logs
demo_run 2 "version 2 from the pre-pairing record made after run 1" db logs
demo_run 3 "source 'media' joins the source pool; demo-copy's version 3 replaces version 1 in target pool T1" \
  db logs media
demo_run 4 "source 'logs' leaves the source pool; its copy pairs are broken, its targets freed" db media
demo_run 5 "the rotation goes on with the new source pool" db media

say "The version chronology: playbooks/report.yml (RR = replication record, PPR = pre-pairing record)"
ansible-playbook -i "$inventory" "$repo/playbooks/report.yml" -e rotation_state_dir="$state_dir" >"$work/report.log" 2>&1 \
  || { tail -40 "$work/report.log"; exit 1; }
task_msg "$work/report.log" "Show the chronology"

say "Verifying the records against the storage: playbooks/verify.yml"
ansible-playbook -i "$inventory" "$repo/playbooks/verify.yml" -e "@$work/vars-5.json" >"$work/verify.log" 2>&1 \
  || { tail -40 "$work/verify.log"; exit 1; }
task_msg "$work/verify.log" "pitcopy.versions.rotation : Show the result"
