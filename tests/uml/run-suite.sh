#!/usr/bin/env bash
# The LVM tier in a throw-away User-mode Linux guest (tests/uml/guest.py):
# one boot, then inside it, each step reported with its status and time by
# tests/vm/run-suite.sh --steps:
#   real          pytest tests/real -m lvm
#   integration   tests/integration/run.sh lvm, ansible-playbook running in
#                 the guest against localhost (connection local)
#   molecule      tests/molecule.sh lvm (rotation_lvm, restore_lvm), molecule
#                 running in the guest with the guest itself as the managed
#                 host (the scenarios' default: connection local)
#
#   tests/uml/run-suite.sh lvm [--parts real,integration,molecule] [-- PYTEST_ARGS...]
#   tests/uml/run-suite.sh btrfs [-- PYTEST_ARGS...]   # pytest -m btrfs on the UML 6.1 kernel
#
# Results (console log, junit XML, exit status) in tests/output/uml/<tech>/<parts>/.
# PITCOPY_UML_TIMEOUT (default 5400 s: real, integration and molecule share
# one boot, and a loaded host slows them) bounds the whole boot; PITCOPY_UML_CPU
# picks the host CPU it is pinned to; PITCOPY_UML_MEM its memory (3G).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

tech=${1:-}
case $tech in
lvm) parts=real,integration ;;  # molecule: the opt-in stage vm-lvm-molecule
btrfs) parts=real ;;  # its playbooks and scenarios run natively
*) echo "usage: tests/uml/run-suite.sh lvm|btrfs [--parts real,integration,molecule] [-- PYTEST_ARGS...] (got '$tech')" >&2; exit 2 ;;
esac
shift
if [[ ${1:-} == --parts ]]; then
    parts=${2:?--parts needs a list: real,integration,molecule}
    shift 2
fi
[[ ${1:-} == -- ]] && shift
for p in ${parts//,/ }; do
    case $p in
    real | integration | molecule) ;;
    *) echo "tests/uml/run-suite.sh: unknown part '$p' in --parts (accepted: real, integration, molecule)" >&2; exit 2 ;;
    esac
done
# one results directory per set of parts: the vm-lvm* stages may run side by side
exec python3 "$HERE/guest.py" run --results "$REPO/tests/output/uml/$tech/${parts//,/+}" -- \
    bash "$REPO/tests/vm/run-suite.sh" --steps "$tech" "$parts" "$@"
