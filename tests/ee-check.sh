#!/usr/bin/env bash
# Validates execution-environment.yml with `ansible-builder create` (no
# container engine needed): builds the collection tarball, generates the
# build context, and checks that it holds what AWX needs -- the collection,
# PyYAML, the bindep system packages, ansible-core. Ends with "N passed, N failed".
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${PITCOPY_VENV:-$repo/.venv}
export PATH="$venv/bin:$PATH"
work=$(mktemp -d /tmp/pitcopy-ee.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ansible-builder resolves additional_build_files relative to the EE file,
# so work on a copy next to a fresh dist/ instead of writing into the checkout.
cp "$repo/execution-environment.yml" "$work/"
ansible-galaxy collection build "$repo" --output-path "$work/dist" >/dev/null
ansible-builder create -f "$work/execution-environment.yml" -c "$work/context" --output-filename Containerfile

passed=0 failed=0
check() { # description, command...
  local what=$1; shift
  if "$@" >/dev/null 2>&1; then passed=$((passed + 1)); echo "ok: $what"
  else failed=$((failed + 1)); echo "FAILED: $what"; fi
}
ctx="$work/context"
check "Containerfile generated" test -s "$ctx/Containerfile"
check "collection tarball in the build context" compgen -G "$ctx/_build/collections/pitcopy-versions-*.tar.gz"
check "galaxy requirements name the collection" grep -q 'pitcopy-versions.tar.gz' "$ctx/_build/requirements.yml"
check "PyYAML in the Python requirements" grep -qi '^PyYAML' "$ctx/_build/requirements.txt"
check "bindep lists lvm2" grep -q '^lvm2' "$ctx/_build/bindep.txt"
check "bindep lists btrfs-progs" grep -q '^btrfs-progs' "$ctx/_build/bindep.txt"
check "bindep lists zfsutils-linux" grep -q '^zfsutils-linux' "$ctx/_build/bindep.txt"
check "ansible-core pinned like requirements/constraints.txt" \
  grep -q "$(grep '^ansible-core==' "$repo/requirements/constraints.txt")" "$ctx/Containerfile"
check "ansible-runner pinned like requirements/constraints.txt (the version tests/real/test_awx_runner.py runs)" \
  grep -q "$(grep '^ansible-runner==' "$repo/requirements/constraints.txt")" "$ctx/Containerfile"
check "the Containerfile installs the galaxy requirements" grep -q 'ansible-galaxy collection install' "$ctx/Containerfile"
check "bindep.txt parses" bindep -f "$ctx/_build/bindep.txt" -l newline
echo "ee-check: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
