#!/usr/bin/env bash
# THE test command of pitcopy.versions (README, .ci/run).
#
#   tests/run.sh                 # set-up, then every stage below, in order
#   tests/run.sh unit sanity     # set-up, then only these stages
#   tests/run.sh --list          # the stages and what each runs
#
# Each stage's output goes to tests/output/logs/<stage>.log; a failing stage
# shows its last lines. Every stage runs even after a failure; the exit code
# is non-zero when any stage failed. A stage whose script or tests do not
# exist yet FAILS as "missing": nothing is skipped silently.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 2

VENV="$REPO/.venv"
LOGS="$REPO/tests/output/logs"
# Outside the checkout on purpose: inside it, ansible-test would find the
# checkout's .git and list only files git knows (none under .cache/).
COLL_COPY_ROOT=${PITCOPY_COLL_COPY_ROOT:-$HOME/.cache/pitcopy/coll-$(printf '%s' "$REPO" | sha256sum | cut -c1-12)}
COLL_COPY="$COLL_COPY_ROOT/ansible_collections/pitcopy/versions"
COLL_LINK_ROOT="$REPO/.cache/coll-link"
TAIL_LINES=${PITCOPY_TAIL_LINES:-40}

ALL_STAGES=(unit sanity units btrfs integration molecule vm-lvm vm-zfs vm-molecule vm-btrfs build lint changelog ee)
# What `tests/run.sh` (and so CI) runs without arguments: everything but the
# stages named here, which the summary lists as not run, never as passed;
# `tests/run.sh all` (or the stage's name) runs them. vm-molecule: the ZFS
# molecule scenarios with the qemu VM as managed host; each runs the role
# six times (~7-15 s per module task in the emulated guest), which does not
# fit in CI's 90 minutes beside the rest (the LVM scenarios run by default in
# vm-lvm's User-mode Linux guest). vm-btrfs repeats the btrfs backend tests on
# the guest's kernel (~20 min of emulation); the btrfs stage runs them
# natively in every run.
OPT_IN=(vm-molecule vm-btrfs)
DEFAULT_STAGES=()
for s in "${ALL_STAGES[@]}"; do
    [[ " ${OPT_IN[*]} " == *" $s "* ]] || DEFAULT_STAGES+=("$s")
done

describe() {
    case $1 in
    unit) echo "pytest tests/unit tests/roles (collection tree on PYTHONPATH)" ;;
    sanity) echo "ansible-test sanity --venv --python 3.11" ;;
    units) echo "ansible-test units --venv --python 3.11" ;;
    btrfs) echo "pytest tests/real -m btrfs (native loop devices; with the playbooks run as AWX jobs through ansible-runner)" ;;
    integration) echo "tests/integration/run.sh btrfs (playbooks, native btrfs)" ;;
    molecule) echo "tests/molecule.sh btrfs (molecule scenarios, native btrfs)" ;;
    vm-lvm) echo "tests/uml/run-suite.sh lvm --parts real,integration,molecule (one User-mode Linux boot: pytest -m lvm, module playbooks, molecule scenarios)" ;;
    vm-zfs) echo "tests/vm/run-suite.sh zfs --parts real,integration (one VM boot: pytest -m zfs, module playbooks)" ;;
    vm-molecule) echo "tests/vm/run-suite.sh zfs --parts molecule (one VM boot: the ZFS molecule scenarios)" ;;
    vm-btrfs) echo "tests/vm/run-suite.sh btrfs (one VM boot: pytest -m btrfs on the guest's kernel)" ;;
    build) echo "ansible-galaxy collection build" ;;
    lint) echo "ansible-lint --profile production roles playbooks" ;;
    changelog) echo "antsibull-changelog lint" ;;
    ee) echo "tests/ee-check.sh (ansible-builder create, then the build context checked)" ;;
    *) return 1 ;;
    esac
}

usage() {
    echo "usage: tests/run.sh [--list] [STAGE...]"
    echo "stages (default: all but ${OPT_IN[*]}, in this order):"
    local s
    for s in "${ALL_STAGES[@]}"; do printf '  %-12s %s\n' "$s" "$(describe "$s")"; done
    echo "aliases: vm = vm-lvm vm-zfs vm-molecule vm-btrfs; package = build lint changelog ee"
}

# --- stage bodies: each returns non-zero on failure; "missing" prints why ----

missing() {
    echo "MISSING: $*"
    echo "$*" >"$LOGS/.missing-$CURRENT_STAGE"
    return 3
}

need_exec() {
    [[ -x $REPO/$1 ]] || missing "$1 does not exist (or is not executable)"
}

ansible_test() {
    # ansible-test resolves the current directory, so it must run inside the
    # copy that tests/setup.sh keeps (COLL_COPY).
    (cd "$COLL_COPY" && ansible-test "$@") || return
    # It exits 0 when it found nothing to test; that is no pass.
    if grep -q 'All targets skipped' "$LOGS/$CURRENT_STAGE.log"; then
        echo "FAIL: ansible-test found no targets in $COLL_COPY"
        return 1
    fi
    # A sanity test whose tool is missing is skipped with only a warning.
    # (grep -q: this function's output goes to the very log it reads.)
    if grep -qE 'WARNING: Required program .* not found' "$LOGS/$CURRENT_STAGE.log"; then
        echo "FAIL: a tool ansible-test needs is missing (see 'Required program' above; add it to APT_PACKAGES in tests/setup.sh)"
        return 1
    fi
}

stage_unit() {
    [[ -d tests/unit ]] || { missing "tests/unit does not exist"; return; }
    PYTHONPATH="$COLL_LINK_ROOT${PYTHONPATH:+:$PYTHONPATH}" \
        python -m pytest -c "$REPO/pytest.ini" --rootdir "$REPO" tests/unit tests/roles
}

stage_sanity() {
    # The project allows no sanity ignore entries at all.
    local f bad=0
    for f in tests/sanity/ignore-*.txt; do
        [[ -e $f ]] || continue
        if grep -qv '^[[:space:]]*\(#.*\)\?$' "$f"; then
            echo "FAIL: $f has ignore entries; fix the code instead:"
            grep -nv '^[[:space:]]*\(#.*\)\?$' "$f"
            bad=1
        fi
    done
    ansible_test sanity --venv --python 3.11 --color no || return
    return $bad
}

stage_units() {
    [[ -d tests/unit ]] || { missing "tests/unit does not exist"; return; }
    ansible_test units --venv --python 3.11 --color no
}

stage_btrfs() {
    compgen -G "tests/real/test_btrfs*.py" >/dev/null || { missing "tests/real/test_btrfs*.py do not exist"; return; }
    PYTHONPATH="$COLL_LINK_ROOT${PYTHONPATH:+:$PYTHONPATH}" \
        python -m pytest -c "$REPO/pytest.ini" --rootdir "$REPO" tests/real -m btrfs
}

stage_integration() {
    need_exec tests/integration/run.sh || return
    tests/integration/run.sh btrfs
}

stage_molecule() {
    need_exec tests/molecule.sh || return
    tests/molecule.sh btrfs
}

# LVM runs in a User-mode Linux guest (tests/uml/guest.py): real
# device-mapper at native speed, the guest pinned to one host CPU; the backend
# tests, the module playbooks (ansible-playbook inside the guest, connection
# local) and the molecule scenarios (molecule inside the guest, the guest
# itself the managed host) in one boot.
stage_vm-lvm() {
    need_exec tests/uml/run-suite.sh || return
    tests/uml/run-suite.sh lvm --parts real,integration,molecule
}

# The other VM stages are one qemu boot each: the backend tests run in the
# guest, the playbooks and molecule scenarios on this host with the guest as
# their managed host over ssh (tests/vm/with-guest.sh).
stage_vm-zfs() {
    need_exec tests/vm/run-suite.sh || return
    tests/vm/run-suite.sh zfs --parts real,integration
}

# The ZFS scenarios need the OpenZFS module, so the emulated qemu guest
# (one boot, ~37 min here); the LVM ones run in vm-lvm's UML guest.
stage_vm-molecule() {
    need_exec tests/vm/run-suite.sh || return
    tests/vm/run-suite.sh zfs --parts molecule
}

stage_vm-btrfs() {
    need_exec tests/vm/run-suite.sh || return
    tests/vm/run-suite.sh btrfs
}

stage_build() {
    local out="$REPO/tests/output/build" tarball
    rm -rf "$out" && mkdir -p "$out"
    ansible-galaxy collection build --force --output-path "$out" "$REPO" || return
    tarball=$(ls "$out"/pitcopy-versions-*.tar.gz) || return
    ls -l "$tarball"
    # build_ignore must keep the venv, caches and test output out of a release.
    if tar -tzf "$tarball" | grep -E '^(\.venv|\.cache|\.git|tests/output)/'; then
        echo "FAIL: the collection tarball contains the files listed above"
        return 1
    fi
}

stage_lint() {
    compgen -G "roles/*/tasks/main.yml" >/dev/null || { missing "no role in roles/ (roles/<name>/tasks/main.yml)"; return; }
    compgen -G "playbooks/*.yml" >/dev/null || { missing "no playbook in playbooks/"; return; }
    ANSIBLE_COLLECTIONS_PATH="$COLL_LINK_ROOT" ansible-lint --offline --nocolor --profile production roles playbooks
}

stage_changelog() {
    antsibull-changelog lint
}

stage_ee() {
    [[ -f execution-environment.yml ]] || { missing "execution-environment.yml does not exist"; return; }
    need_exec tests/ee-check.sh || return
    # ansible-builder create on a copy, then what AWX needs in the context
    tests/ee-check.sh
}

# --- driver ------------------------------------------------------------------

STAGES=()
for arg in "$@"; do
    case $arg in
    -h | --help | --list) usage; exit 0 ;;
    all) STAGES+=("${ALL_STAGES[@]}") ;;
    vm) STAGES+=(vm-lvm vm-zfs vm-molecule vm-btrfs) ;;
    package) STAGES+=(build lint changelog ee) ;;
    *)
        if describe "$arg" >/dev/null; then
            STAGES+=("$arg")
        else
            echo "tests/run.sh: unknown stage '$arg'" >&2
            usage >&2
            exit 2
        fi
        ;;
    esac
done
((${#STAGES[@]})) || STAGES=("${DEFAULT_STAGES[@]}")
# Each stage once, in the canonical order.
mapfile -t STAGES < <(for s in "${ALL_STAGES[@]}"; do
    for w in "${STAGES[@]}"; do [[ $w == "$s" ]] && { echo "$s"; break; }; done
done)

mkdir -p "$LOGS"
rm -f "$LOGS"/.missing-*

declare -A RESULT SECONDS_TAKEN DETAIL
passed=0
failed=0
run_start=$EPOCHREALTIME

elapsed_since() {  # elapsed_since START [END, default now]
    local now=${2:-$EPOCHREALTIME}
    awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

# One line for the summary: pytest's closing line, or ansible-test sanity's
# count of tests, from a stage's log.
detail_of() {
    local log=$1 line n
    # ansible-test units runs pytest once per group (modules, module_utils).
    line=$(grep -E '^=+ .*(passed|failed|error|no tests ran).* in [0-9.]+s.*=+$' "$log" 2>/dev/null \
        | sed -E 's/^=+ //; s/ =+$//' | paste -sd';' | sed 's/;/; /g')
    if [[ -n $line ]]; then
        echo "$line"
        return
    fi
    line=$(grep -oE 'The [0-9]+ sanity test\(s\) listed below \(out of [0-9]+\) failed' "$log" 2>/dev/null | tail -n 1)
    if [[ -n $line ]]; then
        echo "$line: $(sed -n '/sanity test(s) listed below/,/^FATAL: Command/p' "$log" | sed '1d;$d' | tr '\n' ' ')" | cut -c1-160
        return
    fi
    n=$(grep -c '^Running sanity test' "$log" 2>/dev/null)
    if ((n > 0)); then
        echo "$n sanity tests ran"
    fi
}

run_stage() {
    local name=$1 log="$LOGS/$1.log" start rc
    CURRENT_STAGE=$name
    printf '==> %-12s %s\n' "$name" "$(describe "$name" 2>/dev/null || echo 'set-up (tests/setup.sh)')"
    start=$EPOCHREALTIME
    {
        echo "# $(date -u '+%F %T UTC') stage $name"
        "stage_$name"
    } >"$log" 2>&1 </dev/null
    rc=$?
    finish_stage "$name" "$rc" "$start"
}

finish_stage() {  # finish_stage NAME RC START [END]
    local name=$1 rc=$2 start=$3 end=${4:-} log="$LOGS/$1.log"
    SECONDS_TAKEN[$name]=$(elapsed_since "$start" "$end")
    if ((rc == 0)); then
        RESULT[$name]=PASS
        passed=$((passed + 1))
    else
        if [[ -f $LOGS/.missing-$name ]]; then
            RESULT[$name]=MISSING
        else
            RESULT[$name]=FAIL
        fi
        failed=$((failed + 1))
        echo "---- $name failed (rc=$rc); last $TAIL_LINES lines of $log:"
        tail -n "$TAIL_LINES" "$log" | sed 's/^/    /'
        echo "----"
    fi
    DETAIL[$name]=$(if [[ ${RESULT[$name]} == MISSING ]]; then cat "$LOGS/.missing-$name"; else detail_of "$log"; fi)
    printf '    %s in %ss\n' "${RESULT[$name]}" "${SECONDS_TAKEN[$name]}"
    return "$rc"
}

# Wait for a stage started in the background and report it like run_stage.
collect_stage() {
    local name=$1 rc end
    printf '==> %-12s %s (waiting for the background run)\n' "$name" "$(describe "$name")"
    wait "${BG_PID[$name]}"
    rc=$(cat "$LOGS/.rc-$name" 2>/dev/null || echo 125)
    # its own time, not the time until it was collected
    end=$(cat "$LOGS/.end-$name" 2>/dev/null || echo "$EPOCHREALTIME")
    rm -f "$LOGS/.rc-$name" "$LOGS/.end-$name"
    finish_stage "$name" "$rc" "${BG_START[$name]}" "$end"
}

stage_setup() {
    # The VM harness set-up (kernel, dkms-built zfs module) is only needed by
    # the VM stages; skip its cost when none is selected.
    local s vm=--no-vm
    for s in "${STAGES[@]}"; do [[ $s == vm-* ]] && vm=; done
    "$REPO/tests/setup.sh" $vm
}

if ! run_stage setup; then
    echo "set-up failed; no stage can run. See $LOGS/setup.log"
    for s in "${STAGES[@]}"; do
        RESULT[$s]="NOT RUN"
        SECONDS_TAKEN[$s]=0.0
        DETAIL[$s]="set-up failed"
        failed=$((failed + 1))
    done
else
    export PATH="$VENV/bin:$PATH"
    export VIRTUAL_ENV="$VENV"
    # Playbooks, molecule and the VM suites find the collection here.
    export ANSIBLE_COLLECTIONS_PATH="$COLL_LINK_ROOT"
    export PITCOPY_REPO="$REPO" PITCOPY_COLLECTION_ROOT="$COLL_LINK_ROOT"
    # Plain logs: no colour escapes from ansible, pytest or ansible-lint.
    export NO_COLOR=1 ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
    # The VM stages spend most of their time in one software-emulated guest
    # that keeps about one host core busy whatever it is given; started in
    # the background right away, they run beside each other and beside the
    # native stages instead of after them. Their results are collected, and
    # reported, at their place in the order. PITCOPY_SERIAL=1: one at a time.
    declare -A BG_PID BG_START
    if [[ ${PITCOPY_SERIAL:-0} != 1 ]]; then
        for s in "${STAGES[@]}"; do
            [[ $s == vm-* ]] || continue
            printf '==> %-12s started in the background: %s\n' "$s" "$(describe "$s")"
            BG_START[$s]=$EPOCHREALTIME
            (
                CURRENT_STAGE=$s
                {
                    echo "# $(date -u '+%F %T UTC') stage $s (background)"
                    "stage_$s"
                } >"$LOGS/$s.log" 2>&1 </dev/null
                echo $? >"$LOGS/.rc-$s"
                echo "$EPOCHREALTIME" >"$LOGS/.end-$s"
            ) &
            BG_PID[$s]=$!
        done
    fi
    for s in "${STAGES[@]}"; do
        if [[ -n ${BG_PID[$s]:-} ]]; then
            collect_stage "$s" || true
        else
            run_stage "$s" || true
        fi
    done
fi

echo
echo "==================== summary ===================="
printf '%-12s %-8s %8s  %s\n' stage result seconds detail
for s in setup "${STAGES[@]}"; do
    printf '%-12s %-8s %8s  %s\n' "$s" "${RESULT[$s]:-}" "${SECONDS_TAKEN[$s]:-}" "${DETAIL[$s]:-}"
done
for s in "${ALL_STAGES[@]}"; do
    [[ " ${STAGES[*]} " == *" $s "* ]] || printf '%-12s %-8s %8s  %s\n' "$s" "NOT RUN" "" "not in this run (tests/run.sh $s)"
done
echo "total: $(elapsed_since "$run_start")s; logs in tests/output/logs/"
# setup counts as a stage too: it can fail like any other.
echo "$passed passed, $failed failed"
((failed == 0))
