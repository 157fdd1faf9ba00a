# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection on real OpenZFS (issue 12), inside the emulated VM of
``tests/vm/run-suite.sh zfs``: a copy, a delete and a restore run in a child
process that is SIGKILLed before one of its mutating steps (the shared
machinery is tests/real/faults.py, as for btrfs and LVM).

A step is every rename, replace and unlink of the state file, every ``zfs``
command that changes something (snapshot, destroy, rename, rollback,
inherit, set, mount, unmount, create, receive) and every ``zfs send | zfs
receive`` pipe; ``zfs list``/``zfs get`` are not steps.

Sampled, not swept: in the emulated guest every ``zfs`` process costs 1-2 s
and a world (datasets, a definition, the copies it starts from) 20-40 s, so
a sweep over every step (13 to 25 per operation) would add far more than
the 8 minutes this suite may take. Each test first runs the operation to the
end (its list of steps, and the checks of a finished run), then kills it
before the steps ``select`` picks from that list: commands in the middle of
a sequence that leaves the storage in a state no whole step leaves (a
replaced copy half destroyed, half of a version renamed, the source renamed
away and the restored dataset not yet in its place). Steps that only
advance the state file, and the phase boundaries, are swept in full by the
btrfs and LVM suites over the same engine. The number of kill points per
operation is printed.

After each kill at most one ``verify_records repair=true`` must leave records
and storage consistent: every recorded copy holds the data tag written
before its version, a source is either as it was or fully restored, and no
dataset or snapshot of ours is left that no record names."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend, ZfsSnapshotBackend
from ansible_collections.pitcopy.versions.tests.real import faults
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.tests.real.test_zfs import (
    SBIN,
    MiB,
    all_names,
    make_engine,
    read_fs_or_vol,
    read_snapshot,
    zpools_workdir,
    sh,
    write_data,
)

pytestmark = pytest.mark.zfs

TECH_CODE = r"""
from ansible_collections.pitcopy.versions.plugins.module_utils import _zfs

MUTATING = frozenset(("snapshot", "destroy", "rename", "rollback", "inherit", "set", "mount", "unmount", "create",
                      "clone", "promote", "receive", "recv"))


def counts(argv, data):
    return os.path.basename(argv[0]) == "zfs" and len(argv) > 1 and argv[1] in MUTATING


def label(argv, data):
    return " ".join(a for a in argv if not a.startswith("-") and "=" not in a)


backends = {"zfs_snapshot": _zfs.ZfsSnapshotBackend, "zfs_send": _zfs.ZfsSendBackend}
"""
CHILD = faults.child_script(TECH_CODE)
BACKENDS = {"zfs_snapshot": ZfsSnapshotBackend, "zfs_send": ZfsSendBackend}


class ZfsWorld(faults.EngineCalls):
    """Pool ``pK`` of filesystems ``<spool>/kK<x>``; zfs_send targets under
    ``<tpool>/<target pool>/``; its state directory is its own."""

    def __init__(self, base, runner, spool, tpool, technology, k, sources, versions):
        self.spool, self.tpool = spool, tpool
        self.technology = technology
        self.name = "p%03d" % k
        self.prefix = "k%03d" % k
        self.versions = versions
        self.engine = make_engine(base / self.prefix / "state", runner)
        self.store = self.engine.store
        self.backend = BACKENDS[technology](runner)
        self.sources = ["%s/%s%s" % (spool, self.prefix, n) for n in sources]
        for s_ in self.sources:
            sh("zfs", "create", s_)
        self.target_pools = ()
        if technology == "zfs_send":
            self.target_pools = tuple(
                TargetPool(tp, tuple("%s/%s/%s" % (tpool, tp, s_.split("/")[-1]) for s_ in self.sources))
                for tp in "AB"[:versions])

    def define(self):
        d = PoolDefinition(name=self.name, technology=self.technology, sources=tuple(self.sources),
                           versions=self.versions, target_pools=self.target_pools)
        with self.engine.session(self.name) as s:
            return s.plan_define(d).apply()

    def read_copy(self, target):
        if self.technology == "zfs_snapshot":
            return read_snapshot(target, "filesystem")
        return read_fs_or_vol(target, "filesystem")

    def data(self):
        return [read_fs_or_vol(s_, "filesystem") for s_ in self.sources]

    def names(self):
        """Datasets and snapshots of this world (sources, copies, temporaries)."""
        found = []
        for top in [t for t in (self.spool, self.tpool) if t]:
            found += [n for n in all_names(top) if self.prefix in n.split("/")[-1].split("@")[0]]
        return sorted(found)


def check_versions(w, expected):
    """Every kept version is valid and holds exactly the data of its point in time."""
    state = w.state()
    kept = sorted(r.version for r in state.replication_records)
    assert kept == sorted(expected)[-len(kept):]
    listed = dict((c.target, c) for c in w.backend.list_copies(w.name))
    for rec in state.replication_records:
        assert rec.status == "valid"
        assert sorted(p.source for p in rec.pairs) == sorted(expected[rec.version])
        for p in rec.pairs:
            assert w.read_copy(p.target) == expected[rec.version][p.source], (rec.version, p)
            c = listed.get(p.target)
            assert c is not None and c.version == rec.version and c.valid and not c.staged, (p, c)
    return kept


def leftovers(w, k):
    """Datasets and snapshots of this world that are neither a source nor a
    recorded copy (nor a recorded zfs_send copy's received snapshot)."""
    state = w.state()
    recorded = set(p.target for r in (state.replication_records if state else ()) for p in r.pairs)
    out = []
    for n in w.names():
        ds = n.split("@")[0]
        if n in w.sources or n in recorded:
            continue
        if w.technology == "zfs_send" and ds in recorded and "@pitcopy-%s-v" % w.name in n:
            continue
        out.append(n)
    return out


@pytest.fixture
def zfs_worlds(tmp_path):
    """``make(technology, sources, versions, copies) -> make_world(k)``: one
    source zpool (and target zpool) per test, a fresh world per iteration;
    the zpools go at teardown, as with test_zfs's ``zpools`` fixture."""
    with zpools_workdir() as zpools:
        runner = SubprocessRunner(env={"PATH": SBIN})
        made = {}

        def make(technology, sources="ab", versions=2, copies=2):
            if "pools" not in made:
                spool = zpools.create("fs", 256 * MiB)
                tpool = zpools.create("ft", 256 * MiB) if technology == "zfs_send" else None
                if tpool:
                    for tp in "AB":
                        sh("zfs", "create", "%s/%s" % (tpool, tp))
                made["pools"] = (spool, tpool)
            spool, tpool = made["pools"]

            def make_world(k):
                w = ZfsWorld(tmp_path, runner, spool, tpool, technology, k, sources, versions)
                w.define()
                expected = {}
                for v in range(1, copies + 1):
                    for s_ in w.sources:
                        write_data(s_, "filesystem", "v%d" % v)
                    w.copy()
                    expected[v] = dict((s_, "v%d" % v) for s_ in w.sources)
                for s_ in w.sources:
                    write_data(s_, "filesystem", "live")
                return w, expected

            return make_world

        yield make


def _commands(steps, *words):
    """Step numbers of the commands whose label holds all ``words``."""
    return [n for n, what in steps if what.startswith(("run ", "pipe ")) and all(x in what for x in words)]


def test_sigkill_during_a_zfs_snapshot_copy(zfs_worlds):
    """One version kept: version 2 replaces version 1 (its snapshots are
    destroyed, the staged ones renamed into their names). Killed between the
    two destroys (version 1 half gone) and between the two renames (version
    2 half in place)."""
    def select(steps):
        return [_commands(steps, "destroy")[1], _commands(steps, "rename")[1]]

    points, total = faults.kill_at_sample(CHILD, zfs_worlds("zfs_snapshot", versions=1, copies=1), "copy",
                                          faults.copy_check(check_versions, "live", 2, 1), leftovers, "zfs_snapshot",
                                          select)
    assert len(points) == 2 and total >= 10, (points, total)


def test_sigkill_during_a_zfs_send_copy(zfs_worlds):
    """One source, one version kept: version 2 is received beside version 1,
    which is then destroyed (its received snapshot first) and replaced by
    a rename. Killed between destroying the old copy's snapshot and the old
    copy, and before the rename (the old copy gone, the new one staged)."""
    def select(steps):
        return [_commands(steps, "destroy")[-1], _commands(steps, "rename")[0]]

    points, total = faults.kill_at_sample(CHILD, zfs_worlds("zfs_send", sources="a", versions=1, copies=1), "copy",
                                          faults.copy_check(check_versions, "live", 2, 1), leftovers, "zfs_send",
                                          select)
    assert len(points) == 2 and total >= 10, (points, total)


def test_sigkill_during_a_batched_zfs_snapshot_copy(zfs_worlds):
    """Four sources, one version kept: version 2's promotion is batched (see
    _zfs "Batches"): one ``zfs destroy -r`` of version 1 from the zpool's
    root, an anchor snapshot of the root under the staged name, one ``zfs
    rename -r``, the anchor destroyed. Killed before the anchor is taken
    (version 1 gone, version 2 staged), before the rename (the anchor made)
    and before the anchor is destroyed (version 2 in place): the repair
    finishes the promotion and no anchor is left."""
    seen = []

    def select(steps):
        seen.extend(steps)
        return [_commands(steps, "snapshot")[-1], _commands(steps, "rename")[0], _commands(steps, "destroy")[-1]]

    def no_anchor_left(w, k):
        anchors = [n for n in all_names(w.spool) if n.startswith(w.spool + "@") and "-%s-" % w.name in n]
        return leftovers(w, k) + anchors

    points, total = faults.kill_at_sample(CHILD, zfs_worlds("zfs_snapshot", sources="abcd", versions=1, copies=1),
                                          "copy", faults.copy_check(check_versions, "live", 2, 1), no_anchor_left,
                                          "zfs_snapshot", select)
    assert len(points) == 3, (points, total)
    # one rename and two destroys (version 1, the anchor) for the four
    # copies, not four of each
    assert len(_commands(seen, "rename")) == 1 and len(_commands(seen, "destroy")) == 2, seen


def test_sigkill_during_a_zfs_snapshot_delete(zfs_worlds):
    """Version 1 of two deleted: killed between its two snapshots' destroys."""
    def select(steps):
        return [_commands(steps, "destroy")[1]]

    # check_versions compares the backend's listing with the records already
    check = faults.delete_check(check_versions, listed=False)
    points, total = faults.kill_at_sample(CHILD, zfs_worlds("zfs_snapshot"), "delete", check, leftovers,
                                          "zfs_snapshot", select)
    assert len(points) == 1, points


def test_sigkill_during_a_zfs_send_restore(zfs_worlds):
    """A restore receives the copy beside the source, unmounts the source,
    renames it aside, renames the received dataset into its place, clears
    mounts it, destroys the old data, then clears our marks. Killed before
    each of those renames (the second: the source is missing, its data
    aside) and before the old data is destroyed; the repair must finish the
    restore in one go, the source holding the copy's data and nothing of
    ours left. (Every kill point of this sequence, the marks half cleared
    included, is taken against a model of the zfs commands in
    tests/unit/plugins/module_utils/test_zfs_restore_resume.py.)"""
    def check(w, expected, journal, found, done):
        faults.consistent(w)
        check_versions(w, expected)
        data = w.data()
        if done or journal is not None:
            assert data == ["v1"], data
            if journal is not None:
                assert journal.operation == "restore" and journal.version == 1
        else:
            assert data == ["live"], data
        for s_ in w.sources:
            # the restored source is the user's again: none of our marks
            marks = sh("zfs", "get", "-H", "-o", "value", "pitcopy:pool,pitcopy:version", s_).split()
            assert marks == ["-", "-"], (s_, marks)

    def select(steps):
        renames = _commands(steps, "rename")
        return [renames[0], renames[1], _commands(steps, "destroy", ".pitcopy-replaced")[0]]

    points, total = faults.kill_at_sample(CHILD, zfs_worlds("zfs_send", sources="a", versions=1, copies=1),
                                          "restore", check, leftovers, "zfs_send", select)
    assert len(points) == 3, points
