#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine (root, Python 3.11, only
# Debian apt and PyPI reachable). A second run on a set-up machine does no
# network access and takes a few seconds.
#
#   tests/setup.sh            # everything below
#
# What it does:
#   1. installs the Debian packages listed in APT_PACKAGES (one apt-get update,
#      only when something is missing);
#   2. creates <repo>/.venv from requirements/test.txt pinned by
#      requirements/constraints.txt, and checks the pins really installed;
#   3. makes ansible-test's pip bootstrap work without internet (fallback only);
#   4. builds the collection trees ansible-test and pytest need
#      (~/.cache/pitcopy/coll-<hash of the checkout path>: rsync copy,
#      .cache/coll-link: symlink);
#   5. runs the VM harness set-ups: tests/uml/guest.py setup (the User-mode
#      Linux guest's ptrace wrapper, built with gcc and cached) and
#      tests/vm/setup.sh (kernel, OpenZFS module built with dkms and cached;
#      ~4 min the first time on a machine).
# Options:   --no-vm      skip step 5 (tests/run.sh passes it when no VM stage
#                         is selected)
#            --sync-only  only step 4
# Variables: PYTHON (interpreter for the venv, default python3.11),
#            PITCOPY_SKIP_APT=1 (skip step 1, e.g. without root).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*"; }

# ---------------------------------------------------------------------------
# Debian packages: THE list. Add a package here (with a comment saying who
# needs it). The only other apt use is tests/vm/setup.sh, for what depends on
# the guest kernel version (its image, headers, dkms/zfs-dkms, zfsutils debs).
# ---------------------------------------------------------------------------
APT_PACKAGES=(
    # real storage tools (backends, tests/real, integration, molecule, demo)
    btrfs-progs lvm2 thin-provisioning-tools xfsprogs util-linux kmod e2fsprogs
    # peer tools the btrfs benchmark compares with (tests/benchmarks/harness.py:
    # btrbk snapshot, and snapper create over one config per subvolume)
    btrbk snapper
    # sshd of the two-host tests (tests/real/hosts.py starts its own in network
    # namespaces; the package's service is never started)
    openssh-server iproute2
    # VM harness launcher (tests/vm/, virtme-ng)
    qemu-system-x86 busybox-static
    # the LVM tier's User-mode Linux guest (tests/uml/): the kernel and its
    # modules, gcc to build its ptrace wrapper, udev for LVM in the guest
    user-mode-linux gcc libc6-dev udev
    # tooling: venv creation, collection tree copy, git for ansible-test/galaxy
    python3 python3-venv rsync git ca-certificates curl
    # ansible-test sanity's shellcheck test (skipped with a mere warning without it)
    shellcheck
    # the molecule scenario calendar: preloaded into its module runs, it sets
    # their clock to each simulated hour of the hourly grid pool (the grid
    # keeps versions by their copy times; by the host's own clock all 72
    # copies would lie within minutes)
    libfaketime
)

install_apt_packages() {
    local missing=() pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        log "Debian packages: all ${#APT_PACKAGES[@]} present"
        return
    fi
    log "Debian packages missing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=1800 update -q
    apt-get -o DPkg::Lock::Timeout=1800 install -y -q --no-install-recommends "${missing[@]}"
}

# ---------------------------------------------------------------------------
# Python venv
# ---------------------------------------------------------------------------
VENV="$REPO/.venv"
REQS="$REPO/requirements/test.txt"
CONSTRAINTS="$REPO/requirements/constraints.txt"
STAMP="$VENV/.pitcopy-setup-stamp"

pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [[ -n $candidate ]] || continue
        if command -v "$candidate" >/dev/null 2>&1 \
            && "$candidate" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "setup: no Python 3.11 interpreter with venv found (set PYTHON=...)" >&2
    return 1
}

venv_stamp() {
    cat "$REQS" "$CONSTRAINTS" | sha256sum | cut -d' ' -f1
}

# Every pinned name==version in constraints.txt must be what the venv has.
verify_pins() {
    "$VENV/bin/python" - "$CONSTRAINTS" <<'PY'
import re
import sys
from importlib import metadata

bad = []
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
    if not m:
        continue
    name, want = m.groups()
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        # transitive pins only matter when something pulls the package in
        continue
    if have != want:
        bad.append("%s: pinned %s, installed %s" % (name, want, have))
if bad:
    sys.exit("setup: venv does not match requirements/constraints.txt:\n  " + "\n  ".join(bad))
PY
}

setup_venv() {
    local want
    want=$(venv_stamp)
    if [[ -x $VENV/bin/python && -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
        log "venv: up to date ($VENV)"
        return
    fi
    if [[ ! -x $VENV/bin/python ]]; then
        local py
        py=$(pick_python)
        log "venv: creating $VENV with $py"
        "$py" -m venv "$VENV"
    fi
    log "venv: installing requirements/test.txt (pinned by constraints.txt)"
    "$VENV/bin/python" -m pip install -q -r "$REQS" -c "$CONSTRAINTS"
    "$VENV/bin/python" -m pip check
    verify_pins
    echo "$want" >"$STAMP"
    log "venv: ready"
}

# ---------------------------------------------------------------------------
# ansible-test pip bootstrap: ansible-test downloads get-pip-<ver>.py from
# ci-files.testing.ansible.com. Where that host is reachable we let it (and
# cache the real script); where it is not, we put an offline stand-in in its
# cache: ../shared/tools/ansible-test-pip-bootstrap.py beside the checkout if
# present, else our own copy in tests/utils/.
# ---------------------------------------------------------------------------
setup_pip_bootstrap() {
    local pip_version cache url standin
    pip_version=$("$VENV/bin/python" - <<'PY'
import re
import ansible_test._internal.python_requirements as pr

class _Py:
    version = "3.11"

try:
    print(pr.get_venv_packages(_Py())["pip"])
except Exception:
    print(re.search(r"pip='([0-9.]+)'", open(pr.__file__).read()).group(1))
PY
)
    cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
    if [[ -s $cache ]]; then
        log "ansible-test pip bootstrap: cached ($cache)"
        return
    fi
    mkdir -p "$(dirname "$cache")"
    url="https://ci-files.testing.ansible.com/ansible-test/get-pip-${pip_version}.py"
    if curl -fsS --max-time 20 -o "$cache.download" "$url" 2>/dev/null; then
        mv "$cache.download" "$cache"
        log "ansible-test pip bootstrap: downloaded the real script"
        return
    fi
    rm -f "$cache.download"
    standin="$REPO/../shared/tools/ansible-test-pip-bootstrap.py"
    [[ -f $standin ]] || standin="$REPO/tests/utils/ansible-test-pip-bootstrap.py"
    cp "$standin" "$cache"
    log "ansible-test pip bootstrap: $url unreachable; using offline stand-in $standin"
}

# ---------------------------------------------------------------------------
# Collection trees. ansible-test insists on .../ansible_collections/pitcopy/versions
# and resolves symlinks in the current directory, so it gets a copy (without
# .git it lists files by walking the tree, hence the excludes). pytest only
# needs the import path, so a symlink to the checkout is enough for it.
# ---------------------------------------------------------------------------
# Outside the checkout on purpose: inside it, ansible-test would find the
# checkout's .git and list only files git knows (none under .cache/).
COLL_COPY_ROOT=${PITCOPY_COLL_COPY_ROOT:-$HOME/.cache/pitcopy/coll-$(printf '%s' "$REPO" | sha256sum | cut -c1-12)}
COLL_COPY="$COLL_COPY_ROOT/ansible_collections/pitcopy/versions"
COLL_LINK_ROOT="$REPO/.cache/coll-link"

SYNC_EXCLUDES=(/.git /.venv /.cache /.benchmarks /tests/output __pycache__ '*.pyc' .pytest_cache .hypothesis '/*.tar.gz')

sync_collection() {
    mkdir -p "$COLL_COPY" "$COLL_LINK_ROOT/ansible_collections/pitcopy"
    ln -sfn "$REPO" "$COLL_LINK_ROOT/ansible_collections/pitcopy/versions"
    local x args=()
    if command -v rsync >/dev/null 2>&1; then
        for x in "${SYNC_EXCLUDES[@]}"; do args+=("--exclude=$x"); done
        # --delete spares excluded paths: ansible-test's tests/output (its
        # cached venvs) survives in the copy.
        rsync -a --delete "${args[@]}" "$REPO/" "$COLL_COPY/"
    else
        # Without rsync (PITCOPY_SKIP_APT=1 machines): a fresh copy, still
        # keeping the copy's tests/output.
        for x in "${SYNC_EXCLUDES[@]}"; do
            if [[ $x == /* ]]; then args+=("--exclude=.$x"); else args+=("--exclude=$x"); fi
        done
        find "$COLL_COPY" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
        [[ ! -d $COLL_COPY/tests ]] || find "$COLL_COPY/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
        tar -C "$REPO" "${args[@]}" -cf - . | tar -C "$COLL_COPY" -xf -
    fi
    log "collection trees: $COLL_COPY (copy), $COLL_LINK_ROOT (symlink)"
}

setup_vm() {
    log "User-mode Linux harness: tests/uml/guest.py setup"
    python3 "$REPO/tests/uml/guest.py" setup
    if [[ ! -x $REPO/tests/vm/setup.sh ]]; then
        # Not fatal here: the VM stages of tests/run.sh fail as "missing".
        log "VM harness: tests/vm/setup.sh does not exist yet"
        return
    fi
    log "VM harness: tests/vm/setup.sh"
    PATH="$VENV/bin:$PATH" "$REPO/tests/vm/setup.sh"
}

WANT_VM=1
for arg in "$@"; do
    case $arg in
    --sync-only) sync_collection; exit 0 ;;
    --no-vm) WANT_VM=0 ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument $arg (accepted: --no-vm, --sync-only)" >&2; exit 2 ;;
    esac
done

if [[ ${PITCOPY_SKIP_APT:-0} != 1 ]]; then
    install_apt_packages
fi
setup_venv
setup_pip_bootstrap
sync_collection
if ((WANT_VM)); then
    setup_vm
fi
log "done"
