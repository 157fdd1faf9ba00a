#!/usr/bin/env bash
# Run one technology's real-storage suites inside ONE VM boot.
#
# Usage: tests/vm/run-suite.sh <lvm|zfs|btrfs> [-- PYTEST_ARGS...]
#
# In the guest, in this order, each reported with its status and time:
#   1. pytest tests/real -m <tech>          (backend tests; none collected = failure)
#   2. tests/integration/run.sh <tech>      (MODULES: playbooks), if present
#   3. tests/molecule.sh <tech>             (ROLES: molecule scenarios), if present
# A missing piece is a FAILURE. For local development while pieces are being
# written, PITCOPY_ALLOW_MISSING=1 reports it as "missing" instead; under CI
# (CI=true) that allowance is ignored. Exit status: 0 only if every step
# passed. Timeout for the whole boot: PITCOPY_VM_TIMEOUT (default 3600 s).
# The VM itself is tests/vm/run.sh (see its header); setup: tests/vm/setup.sh.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

if [ "${1:-}" = --in-guest ]; then
    shift
    tech=$1
    shift
    allow=0
    if [ "${PITCOPY_ALLOW_MISSING:-0}" = 1 ] && [ "${CI:-}" != true ]; then allow=1; fi
    summary=()
    failed=0
    step() {  # step NAME PATH-THAT-MUST-EXIST COMMAND...
        local name=$1 path=$2 t0 rc
        shift 2
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
    cd "$REPO" || exit 125
    step "pytest tests/real -m $tech" tests/real \
        python -m pytest -p no:cacheprovider -o cache_dir=/tmp/pytest-cache --rootdir "$REPO" \
        --junitxml "$PITCOPY_VM_RESULTS/pytest-$tech.xml" -m "$tech" "$@" tests/real
    step "integration ($tech)" tests/integration/run.sh bash tests/integration/run.sh "$tech"
    step "molecule ($tech)" tests/molecule.sh bash tests/molecule.sh "$tech"
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
[ "${1:-}" = -- ] && shift
exec "$HERE/run.sh" "${opts[@]}" --timeout "${PITCOPY_VM_TIMEOUT:-3600}" -- \
    bash "$HERE/run-suite.sh" --in-guest "$tech" "$@"
