#!/usr/bin/env bash
# State directories for the bad-input table, made after pool "good" exists
# (called by the bad-input playbook): a corrupt state file, one from a newer
# schema, an unreadable one, a state_dir that is a symlink, one that is
# world-writable and one that is a regular file.
#   prepare_bad_state.sh ROOT [PYTHON [STATE_DIR]]
set -uo pipefail
ROOT=$1
PY=${2:-python3}  # a Python with PyYAML and the collection on PYTHONPATH
SD=${3:-$ROOT/state}  # the state_dir of pool "good"

state_path() { # the state file of pool $2 under $1, as the store names it
    "$PY" -c 'import sys
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
print(StateStore(sys.argv[1]).path(sys.argv[2]))' "$1" "$2"
}

main() {
    local sd=$SD d f
    for d in sd_corrupt sd_newer sd_unreadable sd_real; do mkdir -m 0700 "$ROOT/$d"; done
    f=$(state_path "$ROOT/sd_corrupt" broken) && printf 'schema_version: 1\npool: [unclosed\n  {{{\n' >"$f" && chmod 0600 "$f" || return 1
    f=$(state_path "$ROOT/sd_newer" future) || return 1
    sed -e 's/^schema_version: .*/schema_version: 999/' -e 's/\bgood\b/future/g' "$(state_path "$sd" good)" >"$f"
    chmod 0600 "$f"
    grep -q '^schema_version: 999' "$f" || { echo "no schema_version line in the state file" >&2; return 1; }
    mkdir "$(state_path "$ROOT/sd_unreadable" unreadable)" || return 1
    ln -s "$ROOT/sd_real" "$ROOT/sd_link"
    mkdir -m 0777 "$ROOT/sd_world" && chmod 0777 "$ROOT/sd_world"
    echo "not a directory" >"$ROOT/sd_file"
}

main
