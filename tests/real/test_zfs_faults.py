# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection on real OpenZFS (issue 12), inside the emulated VM of
``tests/vm/run-suite.sh zfs``: a copy, a delete, a restore, a redefinition
and a pool removal run in a child process that is SIGKILLed before one of
its mutating steps (the shared machinery is tests/real/faults.py, as for
btrfs and LVM).

A step is every rename, replace and unlink of the state file, every ``zfs``
command that changes something (snapshot, destroy, rename, rollback,
inherit, set, mount, unmount, create, receive) and every ``zfs send | zfs
receive`` pipe; ``zfs list``/``zfs get`` are not steps.

Two tiers (``--pitcopy-faults``, as for LVM). ``sample``, the default and
what the ``vm-zfs`` stage runs: sampled, not swept, since in the emulated
guest every ``zfs`` process costs 1-2 s and a world (datasets, a definition,
the copies it starts from) 20-40 s, so a sweep over every step (13 to 25 per
operation) would add far more than the minutes this stage may take; and the
redefinition and the pool removal for one technology each (the engine's
code is the same for both; the other is marked ``faults_all`` and
deselected). ``all``, the opt-in stage ``vm-zfs-faults``: every kill point
(K = 1, 2, ... until one run finishes) of every test, both technologies.
Measured in the qemu guest (2026-12-02, the host's two cores shared): by
default the redefinition [zfs_send] 108 s and the pool removal
[zfs_snapshot] 104 s (one kill point each); with ``all`` the redefinition
[zfs_snapshot] 98 s (2 kill points) and the pool removal [zfs_send] 963 s
(12 kill points, 40-90 s each).
In the default tier each test first runs the operation to the
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

import json
import os

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

pytestmark = [pytest.mark.zfs, pytest.mark.zfs_faults]

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

    def __init__(self, base, runner, spool, tpool, technology, k, sources, versions, spares=""):
        self.spool, self.tpool = spool, tpool
        self.technology = technology
        self.name = "p%03d" % k
        self.prefix = "k%03d" % k
        self.versions = versions
        self.engine = make_engine(base / self.prefix / "state", runner)
        self.store = self.engine.store
        self.backend = BACKENDS[technology](runner)
        self.sources = ["%s/%s%s" % (spool, self.prefix, n) for n in sources]
        self.spares = ["%s/%s%s" % (spool, self.prefix, n) for n in spares]
        for s_ in self.sources + self.spares:
            sh("zfs", "create", s_)
        self.target_pools = ()
        if technology == "zfs_send":
            self.target_pools = tuple(
                TargetPool(tp, tuple("%s/%s/%s" % (tpool, tp, s_.split("/")[-1]) for s_ in self.sources))
                for tp in "AB"[:versions])

    def definition(self, sources=None, versions=None, target_pools=None):
        return PoolDefinition(name=self.name, technology=self.technology,
                              sources=tuple(self.sources if sources is None else sources),
                              versions=self.versions if versions is None else versions,
                              target_pools=self.target_pools if target_pools is None else target_pools)

    def define(self):
        with self.engine.session(self.name) as s:
            return s.plan_define(self.definition()).apply()

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
    records = state.replication_records if state else ()
    recorded = set(p.target for r in records for p in r.pairs)
    # zfs_send keeps the bookmark <source>#pitcopy-<pool>-v<n> of each kept
    # version as the base of the next incremental send (release_bases drops
    # the others): one a record needs is not a leftover
    bases = set("%s#pitcopy-%s-v%d" % (p.source, w.name, r.version) for r in records for p in r.pairs)
    out = []
    for n in w.names():
        ds = n.split("@")[0]
        if n in w.sources or n in w.spares or n in recorded:
            continue
        if w.technology == "zfs_send" and ds in recorded and "@pitcopy-%s-v" % w.name in n:
            continue
        if w.technology == "zfs_send" and n in bases:
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

        def make(technology, sources="ab", versions=2, copies=2, spares=""):
            if "pools" not in made:
                spool = zpools.create("fs", 256 * MiB)
                tpool = zpools.create("ft", 256 * MiB) if technology == "zfs_send" else None
                if tpool:
                    for tp in "AB":
                        sh("zfs", "create", "%s/%s" % (tpool, tp))
                made["pools"] = (spool, tpool)
            spool, tpool = made["pools"]

            def make_world(k):
                w = ZfsWorld(tmp_path, runner, spool, tpool, technology, k, sources, versions, spares)
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


def _numbered(points):
    """Kill points ("<step number> <what>") as steps [(number, what)]."""
    return [(int(p.split(" ", 1)[0]), p.split(" ", 1)[1]) for p in points]


def _commands(steps, *words):
    """Step numbers of the commands whose label holds all ``words``."""
    return [n for n, what in steps if what.startswith(("run ", "pipe ")) and all(x in what for x in words)]


def test_sigkill_during_a_zfs_snapshot_copy(zfs_worlds, sweep):
    """One version kept: version 2 replaces version 1 (its snapshots are
    destroyed, the staged ones renamed into their names). Killed between the
    two destroys (version 1 half gone) and between the two renames (version
    2 half in place)."""
    def select(steps):
        return [_commands(steps, "destroy")[1], _commands(steps, "rename")[1]]

    points = sweep(CHILD, zfs_worlds("zfs_snapshot", versions=1, copies=1), "copy",
                   faults.copy_check(check_versions, "live", 2, 1), "zfs_snapshot", select)
    assert len(points) >= (10 if sweep.full else 2), points


def test_sigkill_during_a_zfs_send_copy(zfs_worlds, sweep):
    """One source, one version kept: version 2 is received beside version 1,
    which is then destroyed (its received snapshot first) and replaced by
    a rename. Killed between destroying the old copy's snapshot and the old
    copy, and before the rename (the old copy gone, the new one staged)."""
    def select(steps):
        return [_commands(steps, "destroy")[-1], _commands(steps, "rename")[0]]

    points = sweep(CHILD, zfs_worlds("zfs_send", sources="a", versions=1, copies=1), "copy",
                   faults.copy_check(check_versions, "live", 2, 1), "zfs_send", select)
    assert len(points) >= (10 if sweep.full else 2), points


def test_sigkill_during_a_batched_zfs_snapshot_copy(zfs_worlds, sweep, request):
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

    points = faults.sweeper(request, no_anchor_left)(
        CHILD, zfs_worlds("zfs_snapshot", sources="abcd", versions=1, copies=1), "copy",
        faults.copy_check(check_versions, "live", 2, 1), "zfs_snapshot (batched)", select)
    if sweep.full:
        # every step but the last is a kill point
        seen = _numbered(points)
    assert len(points) >= (10 if sweep.full else 3), points
    # one rename and two destroys (version 1, the anchor) for the four
    # copies, not four of each
    destroys = len(_commands(seen, "destroy"))
    assert len(_commands(seen, "rename")) == 1 and destroys in ((1, 2) if sweep.full else (2,)), seen


def test_sigkill_during_a_zfs_snapshot_delete(zfs_worlds, sweep):
    """Version 1 of two deleted: killed between its two snapshots' destroys."""
    def select(steps):
        return [_commands(steps, "destroy")[1]]

    # check_versions compares the backend's listing with the records already
    check = faults.delete_check(check_versions, listed=False)
    points = sweep(CHILD, zfs_worlds("zfs_snapshot"), "delete", check, "zfs_snapshot", select)
    assert len(points) >= (3 if sweep.full else 1), points


def test_sigkill_during_a_zfs_send_restore(zfs_worlds, sweep):
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
        data = w.data()
        restored = done or journal is not None
        # a restored source is a new dataset: the base bookmark of the kept
        # version went with the dataset it replaced, so verify_records says
        # base_missing (its next copy is sent in full) and nothing else
        state = w.state()
        assert state.journal is None, state.journal
        verified = w.verify()
        assert verified["consistent"], verified
        assert [f["problem"] for f in verified["findings"]] == (["base_missing"] if restored else []), verified
        check_versions(w, expected)
        if restored:
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

    points = sweep(CHILD, zfs_worlds("zfs_send", sources="a", versions=1, copies=1), "restore", check, "zfs_send",
                   select)
    assert len(points) >= (6 if sweep.full else 3), points


@pytest.mark.faults_all
def test_sigkill_during_a_restore_from_media(zfs_worlds, request, tmp_path):
    """Version 1 of one source, dumped to a medium, received as the new
    dataset ``<spool>/rest<k>/<source>`` (``zfs receive -u`` marked
    ``pitcopy:restoring=media``, its snapshot destroyed, mounted, the mark
    inherited away). Killed anywhere, the new dataset is there, whole,
    holding version 1, unmarked and with no snapshot (the repair removed a
    half-made one and received it again), or it is not (killed before the
    journal). Only with ``--pitcopy-faults=all`` (stage vm-zfs-faults): the
    engine's media journal is swept on LVM in the default tier, and each
    kill point here costs a world (20-40 s). Measured 2026-12-03 in the
    qemu guest beside a UML guest: 8 kill points (the journal's two
    replaces, receive, destroy of the received snapshot, mount, inherit,
    the final two replaces), 267 s."""
    make = zfs_worlds("zfs_snapshot", sources="a", versions=1, copies=1)
    media = {}

    def make_world(k):
        w, expected = make(k)
        medium = str(tmp_path / ("medium%03d" % k))
        os.mkdir(medium, 0o700)
        with w.engine.session(w.name) as s:
            s.plan_dump(1, medium).apply()
        sh("zfs", "create", "%s/rest%03d" % (w.spool, k))
        media[w.name] = (medium, "%s/rest%03d" % (w.spool, k))
        return w, expected

    def new_dataset(w):
        return "%s/%s" % (media[w.name][1], w.sources[0].split("/")[-1])

    def check(w, expected, journal, found, done):
        faults.consistent(w)
        check_versions(w, expected)
        new = new_dataset(w)
        made = [n for n in all_names(media[w.name][1]) if n.startswith(new)]
        if done or journal is not None:
            assert made == [new], (made, journal)  # no snapshot left beside it
            if journal is not None:
                assert journal.operation == "restore_elsewhere" and journal.medium == media[w.name][0], journal
        assert made in ([], [new]), made
        if made:
            assert read_fs_or_vol(new, "filesystem") == "v1"
            assert sh("zfs", "get", "-H", "-o", "value", "pitcopy:restoring", new).strip() == "-"

    def arg(w):
        return json.dumps({"version": 1, "medium": media[w.name][0], "restore_to": media[w.name][1]})

    def outside_the_restore(w, k):
        # the new dataset is named after the source (``kKa``): check judges it
        return [n for n in leftovers(w, k) if not n.startswith(media[w.name][1] + "/")]

    points = faults.sweeper(request, outside_the_restore)(
        CHILD, make_world, "restore_from_media", check, "zfs_snapshot",
        lambda steps: _commands(steps, "destroy")[:1] + _commands(steps, "mount")[:1], arg=arg)
    assert len([p for p in points if " receive " in " %s " % p]) == 1, points
    assert len(points) >= 5, points


# one technology per case by default (the engine's code is the same for both);
# the other only with --pitcopy-faults=all (stage vm-zfs-faults)
@pytest.mark.parametrize("technology", [pytest.param("zfs_snapshot", marks=pytest.mark.faults_all), "zfs_send"])
def test_sigkill_during_a_redefinition(zfs_worlds, sweep, technology):
    """copy_pool changing a pool that keeps version 1: a zfs_snapshot pool
    gains a source (``kKb``), a zfs_send pool a target pool (``B``, versions
    2). Killed anywhere, the records hold the old definition or the new one,
    never a mixture, and the kept version stays valid with its data.
    Sampled: the last step (the state file put in place). By default
    zfs_send only; zfs_snapshot with ``--pitcopy-faults=all``."""
    base = zfs_worlds(technology, sources="a", versions=1, copies=1, spares="b" if technology == "zfs_snapshot" else "")

    def make_world(k):
        w, expected = base(k)
        if technology == "zfs_send":
            added = TargetPool("B", tuple("%s/B/%s" % (w.tpool, s_.split("/")[-1]) for s_ in w.sources))
            new = w.definition(versions=2, target_pools=w.target_pools + (added,))
        else:
            new = w.definition(sources=w.sources + w.spares)
        w.redefinition = (w.definition(), new)
        return w, expected

    def check(w, expected, journal, found, done):
        faults.redefine_check(check_versions, *w.redefinition)(w, expected, journal, found, done)

    # the definition names the iteration's own datasets: the child's argument is made per world
    points = sweep(CHILD, make_world, "define", check, technology, lambda steps: [steps[-1][0]],
                   arg=lambda w: faults.definition_arg(w.redefinition[1]))
    assert len(points) >= 1, points


@pytest.mark.parametrize("technology", ["zfs_snapshot", pytest.param("zfs_send", marks=pytest.mark.faults_all)])
def test_sigkill_during_a_pool_removal(zfs_worlds, sweep, technology):
    """copy_pool state=absent remove_copies=true of a pool keeping versions 1
    and 2 (zfs_send: one in each target pool). Killed anywhere, the pool is
    gone with every copy, or as it was with every version valid. Sampled:
    before the last ``zfs destroy`` (the other copies destroyed). By
    default zfs_snapshot only; zfs_send with ``--pitcopy-faults=all``."""
    points = sweep(CHILD, zfs_worlds(technology, sources="a"), "remove", faults.removal_check(check_versions),
                   technology, lambda steps: _commands(steps, "destroy")[-1:])
    assert len(points) >= (2 if sweep.full else 1), points
