#!/usr/bin/env bash
# Molecule scenarios of the roles on real storage, for one technology:
#   tests/molecule.sh btrfs   natively (loop devices): rotation, restore and
#                             the 60-day calendar of the tiered policy
#   tests/molecule.sh lvm     device-mapper needed: inside the User-mode Linux
#                             guest (tests/uml/run-suite.sh lvm --parts molecule)
#   tests/molecule.sh zfs     the OpenZFS module needed: the test VM
# The managed host is this machine (needs root; in the UML guest, the guest
# itself), or, when PITCOPY_TARGET is set (tests/vm/with-guest.sh), that host
# over ssh with molecule running here: tests/vm/run-suite.sh lvm|zfs --parts molecule.
# Fails when any scenario fails; ends with "N passed, N failed".
set -uo pipefail

tech=${1:-}
case "$tech" in
  btrfs) scenarios=(rotation_btrfs restore_btrfs calendar) ;;
  lvm) scenarios=(rotation_lvm restore_lvm) ;;
  zfs) scenarios=(rotation_zfs restore_zfs) ;;
  *) echo "usage: $0 btrfs|lvm|zfs [scenario ...]" >&2; exit 2 ;;
esac
shift
[ $# -gt 0 ] && scenarios=("$@")

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${PITCOPY_VENV:-$repo/.venv}
if [ ! -x "$venv/bin/molecule" ]; then
  echo "molecule not found in $venv; run tests/setup.sh first (or set PITCOPY_VENV)" >&2
  exit 1
fi
if [ -n "${PITCOPY_TARGET:-}" ]; then
  if [ "$tech" = btrfs ] || [ ! -r "${PITCOPY_TARGET_SSH_CONFIG:-}" ]; then
    echo "PITCOPY_TARGET=$PITCOPY_TARGET: only the lvm and zfs scenarios take a remote host, with a readable PITCOPY_TARGET_SSH_CONFIG" >&2
    exit 2
  fi
  # read by the scenarios' host_vars (extensions/molecule/*_{lvm,zfs}/molecule.yml)
  export PITCOPY_MOL_CONNECTION=ssh PITCOPY_MOL_HOST="$PITCOPY_TARGET"
  export PITCOPY_MOL_SSH_ARGS="-F $PITCOPY_TARGET_SSH_CONFIG" PITCOPY_MOL_PYTHON=/usr/bin/python3
elif [ "$(id -u)" != 0 ]; then
  echo "the scenarios create loop devices and filesystems: run as root" >&2
  exit 1
fi
export PATH="$venv/bin:$PATH"

# The collection as Ansible looks for it: <root>/ansible_collections/pitcopy/versions.
work=$(mktemp -d /tmp/pitcopy-molecule-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/collections/ansible_collections/pitcopy"
ln -s "$repo" "$work/collections/ansible_collections/pitcopy/versions"
export ANSIBLE_COLLECTIONS_PATH="$work/collections"
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
export ANSIBLE_PIPELINING=true
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
export MOLECULE_NO_LOG=false
export LVM_SUPPRESS_FD_WARNINGS=1
export XDG_CACHE_HOME="$work/cache"
# Inside the test VM the host's root (and so /root) is read-only: keep every
# Ansible scratch directory under $work.
export ANSIBLE_HOME="$work/ansible-home" ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" ANSIBLE_REMOTE_TEMP="$work/ansible-tmp"

cd "$repo" || exit 2
passed=0 failed=0 failed_names=()
for s in "${scenarios[@]}"; do
  start=$(date +%s)
  echo "=== molecule test -s $s"
  # Molecule's per-scenario state ("prepared" etc.): fresh for each scenario
  # of each run, or a scenario would skip its prepare after another one.
  export MOLECULE_EPHEMERAL_DIRECTORY="$work/ephemeral/$s"
  if molecule test -s "$s"; then
    passed=$((passed + 1)); verdict=PASSED
  else
    failed=$((failed + 1)); verdict=FAILED; failed_names+=("$s")
  fi
  echo "=== $s: $verdict in $(( $(date +%s) - start )) s"
done
[ "$failed" -gt 0 ] && echo "failed scenarios: ${failed_names[*]}"
echo "molecule: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
