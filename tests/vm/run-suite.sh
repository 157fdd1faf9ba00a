#!/usr/bin/env bash
# Run one technology's real-storage suites against a throw-away VM.
#
# Usage: tests/vm/run-suite.sh <lvm|zfs|btrfs> [--parts LIST] [-- PYTEST_ARGS...]
#
# One boot (tests/vm/with-guest.sh), then in this order, each reported with
# its status and time:
#   1. pytest tests/real -m <tech>          (backend tests; none collected =
#                                           failure), run in the guest over ssh
#   2. tests/integration/run.sh <tech>      (MODULES: playbooks) and
#   3. tests/molecule.sh <tech>             (ROLES: molecule scenarios), with
#      ansible-playbook and molecule on this host and the guest as their
#      managed host over ssh, as a controller and its hosts are deployed
# --parts takes a comma-separated subset of real,integration,molecule
# (default: all three; btrfs: real only, its playbooks and scenarios run
# natively).
# A missing piece is a FAILURE. For local development while pieces are being
# written, PITCOPY_ALLOW_MISSING=1 reports it as "missing" instead; under CI
# (CI=true) that allowance is ignored. Exit status: 0 only if every step
# passed. Timeout for the whole boot: PITCOPY_VM_TIMEOUT (default 5100 s: CI runs
# the qemu guests at a lower priority, see tests/stages.py; the CI hard limit is 5400 s).
# The VM itself is tests/vm/run.sh (see its header); setup: tests/vm/setup.sh.
#
# --steps TECH PARTS [PYTEST_ARGS...] is the inner half, run under
# with-guest.sh (PITCOPY_TARGET set: the tests go to the guest over ssh) or
# directly inside a guest (tests/vm/run.sh -- bash run-suite.sh --steps ...).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

if [ "${1:-}" = --steps ]; then
    shift
    tech=$1 parts=$2
    shift 2
    allow=0
    if [ "${PITCOPY_ALLOW_MISSING:-0}" = 1 ] && [ "${CI:-}" != true ]; then allow=1; fi
    summary=()
    failed=0
    step() {  # step PART NAME PATH-THAT-MUST-EXIST COMMAND...
        local part=$1 name=$2 path=$3 t0 rc
        shift 3
        [[ ",$parts," == *",$part,"* ]] || return 0
        if [ ! -e "$REPO/$path" ]; then
            if [ "$allow" = 1 ]; then
                summary+=("$(printf '%-28s %-8s %s' "$name" missing "($path not there; allowed by PITCOPY_ALLOW_MISSING=1)")")
            else
                summary+=("$(printf '%-28s %-8s %s' "$name" FAILED "($path is missing)")")
                failed=1
            fi
            return
        fi
        echo "===== [$tech] $name: $* ====="
        t0=$(date +%s.%N)
        "$@"
        rc=$?
        local secs
        secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
        if [ "$rc" = 0 ]; then
            summary+=("$(printf '%-28s %-8s %s s' "$name" passed "$secs")")
        else
            summary+=("$(printf '%-28s %-8s %s s (exit status %s)' "$name" FAILED "$secs" "$rc")")
            failed=1
        fi
    }
    # shellcheck disable=SC2317  # called through step
    in_guest() {  # in_guest COMMAND...: in the guest, with the environment guest.sh gives a command
        if [ -z "${PITCOPY_TARGET:-}" ]; then
            "$@"
            return
        fi
        # a script on stdin, words quoted with %q: no second round of
        # shell parsing for the pytest arguments
        local script
        script=". /run/pitcopy-ssh/env.sh && cd $(printf %q "$REPO") || exit 125
exec$(printf ' %q' "$@")"
        printf '%s\n' "$script" | ssh -F "$PITCOPY_TARGET_SSH_CONFIG" "$PITCOPY_TARGET" -- bash -s
    }
    cd "$REPO" || exit 125
    step real "pytest tests/real -m $tech" tests/real \
        in_guest python -m pytest -p no:cacheprovider -o cache_dir=/tmp/pytest-cache --rootdir "$REPO" \
        --junitxml "${PITCOPY_VM_RESULTS:-$PITCOPY_TARGET_RESULTS}/pytest-$tech.xml" -m "$tech" "$@" tests/real
    step integration "integration ($tech)" tests/integration/run.sh bash tests/integration/run.sh "$tech"
    step molecule "molecule ($tech)" tests/molecule.sh bash tests/molecule.sh "$tech"
    echo "===== [$tech] summary ====="
    printf '%s\n' "${summary[@]}"
    exit "$failed"
fi

tech=${1:-}
case $tech in
    lvm) opts=() ;;
    zfs) opts=(--zfs) ;;
    btrfs) opts=() ;;
    *) echo "usage: tests/vm/run-suite.sh <lvm|zfs|btrfs> [-- PYTEST_ARGS...] (got '${tech}')" >&2; exit 2 ;;
esac
shift
parts=real,integration,molecule
[ "$tech" = btrfs ] && parts=real  # its playbooks and scenarios run natively
if [ "${1:-}" = --parts ]; then
    parts=${2:-}
    shift 2
fi
for p in ${parts//,/ }; do
    case $p in
        real|integration|molecule) ;;
        *) echo "run-suite.sh: unknown part '$p' in --parts (accepted: real, integration, molecule)" >&2; exit 2 ;;
    esac
done
[ -n "$parts" ] || { echo "run-suite.sh: --parts needs at least one of real, integration, molecule" >&2; exit 2; }
[ "${1:-}" = -- ] && shift
if [ "$tech" = btrfs ] && [ "$parts" != real ]; then
    echo "run-suite.sh: the btrfs playbooks and scenarios run natively (tests/integration/run.sh btrfs, tests/molecule.sh btrfs)" >&2
    exit 2
fi
exec "$HERE/with-guest.sh" "${opts[@]}" --timeout "${PITCOPY_VM_TIMEOUT:-5100}" -- \
    bash "$HERE/run-suite.sh" --steps "$tech" "$parts" "$@"
