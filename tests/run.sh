#!/usr/bin/env bash
# THE test command of pitcopy.versions (README, .ci/run).
#
#   tests/run.sh                 # set-up, then every default stage, in order
#   tests/run.sh unit sanity     # set-up, then only these stages
#   tests/run.sh all             # the opt-in stages too
#   tests/run.sh --list          # the stages and what each runs
#
# The stages are declared in tests/stages.py, which also runs them (logs in
# tests/output/logs/<stage>.log, every stage even after a failure, the last
# line "N passed, N failed", non-zero exit on any failure). It needs only the
# standard library of the system's python3, which the set-up installs too.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! command -v python3 >/dev/null; then
    # a machine without any Python yet: the set-up installs it (tests/setup.sh)
    "$HERE/setup.sh" --no-vm || exit 2
fi
exec python3 "$HERE/stages.py" "$@"
