# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Soak (prints figures, no timed assertions): many versions on one copy pool
and many copy pools on one host, through the RecordEngine with the real
btrfs_snapshot backend on a loop-backed btrfs, natively (root).

    # as root, from the repository, after tests/setup.sh (full size: ~10 min)
    PYTHONPATH=$PWD/.cache/coll-link .venv/bin/python tests/benchmarks/soak_btrfs.py [--versions 200] [--pools 100]
    PYTHONPATH=$PWD/.cache/coll-link .venv/bin/python tests/benchmarks/soak_btrfs.py --versions 20 --pools 10

(the second line is a quick check of under a minute; no CI stage runs it). It runs:
  a  ``--versions`` copy versions of ONE copy pool (2 sources, versions 3, so
     it rotates), each as copy_version does, and every ``--verify-every``
     versions a verify_records without repair; prints per decile the median
     ms per copy and per verify, and the state file size, so that flatness
     (or growth) is visible
  b  ``--pools`` copy pools in one state_dir (1-2 sources each on the same
     filesystem, ``--pool-copies`` versions each, versions 2), then the
     copy_pool_info listing of all pools and a verify of each; prints by
     pool index decile the median ms to define a pool (copy_pool checks the
     other pools' targets), per copy, per pool listed and per verify
  c  leak checks, printed as figures: subvolumes no record names, expected
     copy count (versions kept x sources), marks without their copy, staging
     names and temporary marks, journals and temporary state files left,
     open file descriptors of this process (before and after the engine
     work), and, after the script's own teardown, loop devices and mounts it
     created. Any leak (or any inconsistent verify) makes the exit status 1.
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "real"))

import conftest  # noqa: E402  (tests/real/conftest.py: loop fs helpers, import path)

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import (  # noqa: E402
    MARK_PREFIX,
    MARK_SUFFIX,
    STAGING_PREFIX,
    BtrfsSnapshotBackend,
    temp_mark_owner,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore  # noqa: E402

#: names of ours that only exist while an operation runs (staged copies,
#: sources moved aside by a restore); any left at the end is a leak
TRANSIENT_PREFIXES = (STAGING_PREFIX, ".pitcopy-aside.")
#: versions of the pool of phase a
KEPT = 3


def sh(argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def ms(seconds):
    return seconds * 1000.0


def open_fds():
    """{fd: what it points at} of this process."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(os.path.join("/proc/self/fd", name))
        except OSError:
            pass  # the fd of the listdir itself, closed by now
    return out


def deciles(n):
    """Index ranges [lo, hi) splitting 0..n into (at most) 10 buckets."""
    k = min(10, n)
    return [(n * i // k, n * (i + 1) // k) for i in range(k)]


def med(values):
    return "%8.1f" % statistics.median(values) if values else "%8s" % "-"


class Soak:
    def __init__(self, fs, state_dir, runner):
        self.fs = fs
        self.store = StateStore(state_dir)
        self.engine = RecordEngine(self.store, lambda tech: BtrfsSnapshotBackend(runner=runner))
        self.problems = []
        # copies of btrfs_snapshot are found host-wide by pool name: a name of
        # this run only, so that no other test's pool (another state_dir, same
        # name) sees our copies as untracked, nor we theirs
        self.prefix = "soak%d-" % os.getpid()

    def make_source(self, *parts):
        path = self.fs.path(*parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sh(["btrfs", "subvolume", "create", path])
        touch(path)
        return path

    def define(self, name, sources, versions):
        """copy_pool state=present of a new pool (it checks the other pools' targets)."""
        d = PoolDefinition(name=name, technology="btrfs_snapshot", sources=tuple(sources), versions=versions)
        t0 = time.monotonic()
        with self.engine.session(name) as s:
            s.plan_define(d).apply()
        return time.monotonic() - t0

    def copy(self, name):
        """One copy version, as copy_version (state=present) runs it."""
        t0 = time.monotonic()
        with self.engine.session(name) as s:
            plan = s.plan_copy()
            result = plan.apply() if plan.changed else plan.result
        took = time.monotonic() - t0
        if not result.get("version"):
            self.problems.append("copy of %s made no version: %r" % (name, result))
        return took

    def verify(self, name):
        """verify_records without repair: a reader (shared lock), never applied."""
        t0 = time.monotonic()
        with self.engine.session(name, shared=True) as s:
            result = s.plan_verify(repair=False).result
        took = time.monotonic() - t0
        if not result["consistent"]:
            self.problems.append("verify of %s: %r" % (name, result["findings"]))
        return took

    def info_all(self):
        """copy_pool_info without pool: every pool's info, each under its reader's lock."""
        t0 = time.monotonic()
        per = []
        for name in self.engine.pool_names():
            t1 = time.monotonic()
            with self.engine.session(name, shared=True) as s:
                s.info()
            per.append(time.monotonic() - t1)
        return time.monotonic() - t0, per

    def state_size(self, name):
        return os.path.getsize(self.store.path(name))


def touch(source):
    """A small change in the source between versions, so copies differ."""
    with open(os.path.join(source, "data"), "ab") as fh:
        fh.write(os.urandom(4096))


def phase_a(soak, versions, verify_every):
    name = soak.prefix + "one"
    sources = [soak.make_source("a", "s%d" % i) for i in range(2)]
    soak.define(name, sources, KEPT)
    copies, verifies, sizes = [], {}, {}
    for v in range(versions):
        for s in sources:
            touch(s)
        copies.append(ms(soak.copy(name)))
        if (v + 1) % verify_every == 0:
            verifies[v] = ms(soak.verify(name))
        sizes[v] = soak.state_size(name)
    print("a) one copy pool, 2 sources, versions %d: %d copy versions, verify every %d" % (KEPT, versions, verify_every))
    print("   %-13s %8s %8s %8s %12s" % ("versions", "copy ms", "max ms", "verify ms", "state bytes"))
    for lo, hi in deciles(versions):
        verified = [verifies[v] for v in range(lo, hi) if v in verifies]
        print("   %5d-%-7d %s %8.1f %s %12d" % (lo + 1, hi, med(copies[lo:hi]), max(copies[lo:hi]), med(verified), sizes[hi - 1]))
    first, last = deciles(versions)[0], deciles(versions)[-1]
    full = min(KEPT, versions) - 1  # from here on every copy rotates one out
    print("   flatness: copy median last / first decile %.2f; state bytes at the end / when the pool filled (version %d) %.2f"
          % (statistics.median(copies[last[0]:last[1]]) / statistics.median(copies[first[0]:first[1]]), full + 1,
             sizes[versions - 1] / sizes[full]))
    return name, sources


def phase_b(soak, pools, pool_copies):
    names = []
    defines, copies, verifies = [], [], []
    for p in range(pools):
        name = "%s%03d" % (soak.prefix, p)
        sources = [soak.make_source("b", name, "s%d" % i) for i in range(1 + p % 2)]
        defines.append(ms(soak.define(name, sources, 2)))
        copies.append([ms(soak.copy(name)) for dummy in range(pool_copies)])
        names.append(name)
    total, per_info = soak.info_all()
    for name in names:
        verifies.append(ms(soak.verify(name)))
    print("b) %d copy pools in one state_dir, 1-2 sources each, versions 2, %d copy versions each"
          % (pools, pool_copies))
    print("   copy_pool_info of all %d pools (plus pool a): %.1f ms" % (len(per_info), ms(total)))
    # per_info lists pool names sorted; pool a (<prefix>one) sorts after <prefix>000..999
    per_info = [ms(t) for t in per_info[:pools]]
    print("   %-13s %8s %8s %8s %8s" % ("pools", "define ms", "copy ms", "info ms", "verify ms"))
    for lo, hi in deciles(pools):
        flat = [c for row in copies[lo:hi] for c in row]
        print("   %5d-%-7d %s %s %s %s" % (lo, hi - 1, med(defines[lo:hi]), med(flat), med(per_info[lo:hi]), med(verifies[lo:hi])))


def subvolumes(mountpoint):
    """Paths of every subvolume on the filesystem mounted (top level) at ``mountpoint``."""
    out = subprocess.run(["btrfs", "subvolume", "list", mountpoint], check=True, stdout=subprocess.PIPE,
                         universal_newlines=True).stdout
    return set(os.path.join(mountpoint, line.split(" path ", 1)[1]) for line in out.splitlines() if " path " in line)


def leaks_on_host(soak, fs, state_dir):
    """(figures, leaks) of what the engine work left on the filesystem and in state_dir."""
    figures, leaks = [], []
    expected, sources, kept = set(), set(), 0
    for name in soak.engine.pool_names():
        state = soak.store.load(name)
        if state.journal is not None:
            leaks.append("pool %s still has a %s journal" % (name, state.journal.operation))
        sources.update(state.definition.sources)
        records = state.replication_records + state.prepairing_records
        kept += len(state.replication_records) * len(state.definition.sources)
        expected.update(p.target for r in records for p in r.pairs)
    found = subvolumes(fs.mountpoint)
    copies = found - sources
    figures.append("subvolumes %d: sources %d, copies %d (expected versions kept x sources = %d)"
                   % (len(found), len(found & sources), len(copies), kept))
    if len(copies & expected) != kept:
        leaks.append("%d recorded copies found, expected %d" % (len(copies & expected), kept))
    for path in sorted(copies - expected):
        leaks.append("subvolume no record names: %s" % path)
    for path in sorted(expected - found):
        leaks.append("recorded copy missing: %s" % path)
    marked, transient = set(), 0
    for d, dirs, files in os.walk(fs.mountpoint):
        for e in dirs + files:
            path = os.path.join(d, e)
            if e.startswith(TRANSIENT_PREFIXES):
                transient += 1
                leaks.append("transient name left: %s" % path)
            elif temp_mark_owner(d, e) is not None:
                transient += 1
                leaks.append("temporary mark left: %s" % path)
            elif e.startswith(MARK_PREFIX) and e.endswith(MARK_SUFFIX):
                copy = os.path.join(d, e[len(MARK_PREFIX):-len(MARK_SUFFIX)])
                marked.add(copy)
                if copy not in found:
                    leaks.append("mark without its copy: %s" % path)
                elif copy not in expected:
                    leaks.append("mark of a copy no record names: %s" % path)
        # copies are read-only snapshots of sources: nothing of ours inside
        dirs[:] = [e for e in dirs if os.path.join(d, e) not in found]
    figures.append("marks %d: of a copy %d, of none %d; copies without a mark %d; staging names and temporary marks %d"
                   % (len(marked), len(marked & copies), len(marked - copies), len(copies - marked), transient))
    # a copy that no record names is reported above, marked or not
    leaks.extend("recorded copy without a mark: %s" % p for p in sorted((copies & expected) - marked))
    names = soak.engine.pool_names()
    wanted = set()
    for name in names:
        wanted.update((name + ".yml", "." + name + ".yml.prev", "." + name + ".lock"))
    stray = sorted(set(os.listdir(state_dir)) - wanted)
    figures.append("state_dir: %d pools, %d files, %d other (temporary) files" % (len(names), len(os.listdir(state_dir)),
                                                                                  len(stray)))
    leaks.extend("state_dir file left: %s" % e for e in stray)
    return figures, leaks


def ours_after_teardown(work, devices):
    """Loop devices and mounts of ours still present after teardown."""
    leaks = []
    for dev in sorted(os.listdir("/sys/block")):
        try:
            with open(os.path.join("/sys/block", dev, "loop", "backing_file")) as fh:
                backing = fh.read().strip()
        except OSError:
            continue
        if backing.startswith(work) or "/dev/" + dev in devices:
            leaks.append("loop device left: /dev/%s (%s)" % (dev, backing))
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            f = line.split(" ")
            if len(f) > 4 and (f[4] + "/").startswith(work + "/"):
                leaks.append("mount left: %s" % f[4])
    return leaks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--versions", type=int, default=200, help="copy versions of the one pool (phase a)")
    ap.add_argument("--verify-every", type=int, default=10, help="a verify every N versions (phase a)")
    ap.add_argument("--pools", type=int, default=100, help="copy pools on the host (phase b)")
    ap.add_argument("--pool-copies", type=int, default=3, help="copy versions of each of those pools (phase b)")
    args = ap.parse_args()
    if min(args.versions, args.verify_every, args.pools, args.pool_copies) < 1:
        sys.exit("soak_btrfs: --versions, --verify-every, --pools and --pool-copies must be >= 1")
    for tool in ("btrfs", "mkfs.btrfs", "losetup"):
        if not conftest.which(tool):
            sys.exit("soak_btrfs: %s is missing (Debian btrfs-progs / util-linux)" % tool)
    if os.geteuid() != 0:
        sys.exit("soak_btrfs: needs root (loop devices)")
    fds_start = open_fds()
    runner = SubprocessRunner(env={"PATH": conftest.SBIN_PATH})
    work = os.path.realpath(tempfile.mkdtemp(prefix="pitcopy-soak-btrfs-"))
    made, devices, leaks, problems = [], set(), [], []
    t_start = time.monotonic()
    try:
        fs = conftest.LoopFs.create(work, "btrfs", 2 * 1024 * 1024 * 1024, "fs")
        made.append(fs)
        devices.add(fs.device)
        state_dir = os.path.join(work, "state")
        soak = Soak(fs, state_dir, runner)
        fds_before = open_fds()
        phase_a(soak, args.versions, args.verify_every)
        fds_mid = open_fds()
        phase_b(soak, args.pools, args.pool_copies)
        fds_after = open_fds()
        figures, host_leaks = leaks_on_host(soak, fs, state_dir)
        leaks.extend(host_leaks)
        problems.extend(soak.problems)
        print("c) leaks")
        for line in figures:
            print("   " + line)
        print("   open fds: %d before the engine work, %d after a, %d after b" % (len(fds_before), len(fds_mid), len(fds_after)))
        for fd in sorted(set(fds_after) - set(fds_before)):
            leaks.append("fd %d left open: %s" % (fd, fds_after[fd]))
    finally:
        for fs in reversed(made):
            leaks.extend(fs.destroy())
        shutil.rmtree(work, ignore_errors=True)
    leaks.extend(ours_after_teardown(work, devices))
    if os.path.exists(work):
        leaks.append("work directory (images, mountpoints) left: %s" % work)
    fds_end = open_fds()
    print("   after teardown: loop devices and mounts of ours left %d; open fds %d at start, %d at end"
          % (len([e for e in leaks if e.startswith(("loop device left", "mount left"))]), len(fds_start), len(fds_end)))
    for fd in sorted(set(fds_end) - set(fds_start)):
        leaks.append("fd %d left open after teardown: %s" % (fd, fds_end[fd]))
    print("   %d leak(s), %d inconsistent verify/copy problem(s); %.0f s in all"
          % (len(leaks), len(problems), time.monotonic() - t_start))
    for line in leaks:
        print("   LEAK " + line)
    for line in problems:
        print("   PROBLEM " + line)
    sys.exit(1 if leaks or problems else 0)


if __name__ == "__main__":
    main()
