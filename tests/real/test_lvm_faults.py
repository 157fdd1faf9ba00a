# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection on real LVM (issue 12), inside the VM harness (the UML
guest of ``tests/uml/run-suite.sh lvm``): a copy, a delete, a restore, a
restore from media, a redefinition, a pool removal and a repair run in a child process that is
SIGKILLed before one of its mutating steps (the shared machinery is
tests/real/faults.py, as for btrfs).

A step is every rename, replace and unlink of the state file, every LVM
command that changes something (``lvcreate``, ``lvremove``, ``lvrename``,
``lvchange``, the ``lvm`` shell fed a batch on its standard input) and every
block write of a restore (so that a source can be killed half written).
Reads (``lvs``) are not steps. Most tests run the child as production does,
with each batch in one ``lvm`` shell (one step: the shell itself is not
killed in the middle); the ``unbatched`` copy runs every command of those
batches as a process of its own, so that the states between two commands of
one batch (a replaced copy removed and the new one not yet renamed, ...) are
kill points too. The copy runs for lvm_snapshot (batched), lvm_thin
(unbatched) and lvm_clone (batched: it writes onto its targets in place,
so its block writes are kill points too; 28 kill points, all passed in
364 s with ``--pitcopy-faults=all``, 5 sampled in 89 s); delete, restore, redefinition, pool removal and the killed
repair run for lvm_thin only, since their code is the same for both
technologies (the engine's journal, one ``lvremove`` batch, the same block
copy).

Two tiers (``--pitcopy-faults``). ``sample``, the default and what the
``vm-lvm`` stage runs: each test runs its operation to the end once (its
steps, and the checks of a finished run), then kills it before the steps
where the storage is mid-sequence (see each test; a redefinition, which
writes the state file only, is swept in full): 12 kill points (restore 2,
delete 1, pool removal 1, copy 2 batched and 3 unbatched, repair 1,
redefinition 2), 339 s for the module in the UML guest (7 passed, on a host
whose two cores other runs shared); a restore from media, added later, 1
more. ``all``, the opt-in stage
``vm-lvm-faults``: K = 1, 2, ... until one run finishes, every kill point.
The number of kill points per operation is printed.

A kill point costs 9-12 s in the UML guest (putting the world back 3-4 s,
the child 1.5-3 s of which 0.5-0.9 s imports, the repair 2-3 s, the checks
1-3 s; a promotion killed and finished by the repair up to 35 s). The world
(versions 1 and 2 copied) is built once per technology and module (14-44 s)
and put back byte for byte before every kill point (SavedVg), where it was
built again for each one (30-40 s a kill point: about 15 lvm processes).

After each kill at most one ``verify_records repair=true`` must leave records
and storage consistent: every recorded copy holds the data tag written before
its version, a source is either as it was or fully restored, and no LV of
ours is left that no record names."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import errno
import fcntl
import json
import os
import shutil
import signal
import sys
import tempfile
import time

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import TAG_POOL, TAG_SOURCE, TAG_VERSION
from ansible_collections.pitcopy.versions.tests.real import faults
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.tests.real.test_lvm import (
    BACKENDS,
    SBIN,
    MiB,
    Vgs,
    activate,
    lv,
    make_engine,
    read_data,
    require_lvm,
    sh,
    write_data,
)

pytestmark = [pytest.mark.lvm, pytest.mark.lvm_faults]


def tech_code(batch):
    return r"""
from ansible_collections.pitcopy.versions.plugins.module_utils import _lvm

MUTATING = frozenset(("lvcreate", "lvremove", "lvrename", "lvchange", "lvconvert", "lvextend", "lvreduce",
                      "lvresize", "vgchange", "dd"))


def counts(argv, data):
    tool = os.path.basename(argv[0])
    return tool in MUTATING or (tool == "lvm" and data is not None)


def label(argv, data):
    if data is not None:  # the lvm shell: its commands
        return "lvm: " + "; ".join(" ".join(w for w in line.split() if not w.startswith("-"))
                                   for line in data.decode().splitlines() if line != "exit")
    return " ".join(a for a in argv if not a.startswith("-"))


real_pwrite_all, real_write_all = _lvm._pwrite_all, _lvm._write_all


def pwrite_all(fd, data, offset):
    step("write %d bytes at %d" % (len(data), offset))
    return real_pwrite_all(fd, data, offset)


def write_all(fd, data):
    step("write %d bytes" % len(data))
    return real_write_all(fd, data)


_lvm._pwrite_all, _lvm._write_all = pwrite_all, write_all
_lvm._lv_image.pwrite_all = pwrite_all  # a receive from media writes its blocks through it
_lvm._LvmBackend.batch = BATCH
backends = {"lvm_snapshot": _lvm.LvmSnapshotBackend, "lvm_thin": _lvm.LvmThinBackend,
            "lvm_clone": _lvm.LvmCloneBackend}
""".replace("BATCH", repr(bool(batch)))


CHILD = faults.child_script(tech_code(True))
CHILD_UNBATCHED = faults.child_script(tech_code(False))


class LvmWorld(faults.EngineCalls):
    """Pool ``pK`` with sources ``kKa``, ``kKb`` in one VG (thin LVs of pool
    ``tp`` for lvm_thin); its state directory is its own. ``spares``: LVs
    made beside them (``kKc``, ...) that a redefinition may add."""

    def __init__(self, base, runner, vg, technology, k, thin_pool=None, spares=0):
        self.vg = vg
        self.technology = technology
        self.name = "p%03d" % k
        self.prefix = "k%03d" % k
        self.engine = make_engine(base / self.prefix / "state", runner)
        self.store = self.engine.store
        self.backend = BACKENDS[technology](runner)
        self.sources = [lv(vg, self.prefix + n, 8, thin_pool=thin_pool) for n in ("a", "b")]
        self.spares = [lv(vg, self.prefix + n, 8, thin_pool=thin_pool) for n in "cd"[:spares]]
        # lvm_clone: the user's target LVs, two target pools (named apart
        # from the world's own LVs: they are neither sources nor copies)
        self.target_pools = tuple(TargetPool(t, tuple(lv(vg, "x%03d%s%s" % (k, t, n), 8) for n in ("a", "b")))
                                  for t in ("01", "02")) if technology == "lvm_clone" else ()

    def definition(self, sources=None):
        extra = {"snapshot_size": "4M"} if self.technology == "lvm_snapshot" else {}
        if self.target_pools:
            extra["target_pools"] = self.target_pools
        return PoolDefinition(name=self.name, technology=self.technology,
                              sources=tuple(self.sources if sources is None else sources), versions=2, **extra)

    def define(self):
        with self.engine.session(self.name) as s:
            return s.plan_define(self.definition()).apply()

    def lv_names(self):
        """This world's LVs (VG/name), sources and copies alike."""
        out = sh("lvs", "--noheadings", "-o", "lv_name", self.vg)
        return sorted("%s/%s" % (self.vg, n.strip()) for n in out.split() if n.strip().startswith(self.prefix))

    def data(self):
        return [read_data(s_) for s_ in self.sources]


def tagged_world(base, runner, vg, technology, k, thin_pool=None, spares=0):
    """Versions 1 and 2 copied, each source holding ``v1``/``v2`` at its
    version and ``live`` after; returns (world, what each version holds)."""
    w = LvmWorld(base, runner, vg, technology, k, thin_pool, spares)
    w.define()
    expected = {}
    for v in (1, 2):
        for s_ in w.sources:
            write_data(s_, "v%d" % v)
        w.copy()
        expected[v] = dict((s_, "v%d" % v) for s_ in w.sources)
    for s_ in w.sources:
        write_data(s_, "live")
    for s_ in w.spares:
        write_data(s_, "spare")
    return w, expected


def check_versions(w, expected):
    """Every kept version is valid and holds exactly the data of its point
    in time; every LV of the world is a source or a recorded copy."""
    state = w.state()
    kept = sorted(r.version for r in state.replication_records)
    assert kept == sorted(expected)[-len(kept):]
    targets = [p.target for r in state.replication_records for p in r.pairs]
    if targets:
        activate(*targets)
    tags_of = vg_tags(w.vg)
    for rec in state.replication_records:
        assert rec.status == "valid"
        assert sorted(p.source for p in rec.pairs) == sorted(expected[rec.version])
        for p in rec.pairs:
            assert read_data(p.target) == expected[rec.version][p.source], (rec.version, p)
            tags = tags_of[p.target]
            for tag in ("%s%s" % (TAG_POOL, w.name), "%s%d" % (TAG_VERSION, rec.version),
                        "%s%s" % (TAG_SOURCE, p.source)):
                assert tag in tags, (p.target, tags)
    return kept


def vg_tags(vg):
    """The tags of every LV of ``vg`` ({VG/name: [tag]}), from one ``lvs``
    instead of one per copy (test_lvm.lv_tags)."""
    out = sh("lvs", "--noheadings", "--separator", "|", "-o", "lv_name,lv_tags", vg)
    found = {}
    for line in out.splitlines():
        name, _sep, tags = line.strip().partition("|")
        if name:
            found["%s/%s" % (vg, name)] = tags.split(",")
    return found


def leftovers(w, k):
    """LVs of this world that are neither a source (or spare) nor a recorded
    copy (staged snapshots of a killed copy, a copy deleted from the records
    but not from the VG), and copies listed as staged."""
    state = w.state()
    recorded = set(p.target for r in (state.replication_records if state else ()) for p in r.pairs)
    found = [n for n in w.lv_names() if n not in w.sources and n not in w.spares and n not in recorded]
    found += [c.target for c in w.backend.list_copies(w.name) if c.staged and c.target not in found]
    return found


class SavedVg:
    """One world built once per test and put back before every kill point:
    the VG's loop image (LVM metadata with its LV UUIDs, the thin pool's
    metadata, every block of every LV), which LVs were active, and the state
    directory, taken with the VG deactivated. Putting it back: deactivate the
    VG (one ``vgchange``), rewrite the image file, reactivate the same LVs
    (one ``lvchange``), copy the state directory back. What the killed child
    and the checks then see is byte for byte the world a fresh build makes
    (the records name the same LV UUIDs), for two lvm processes instead of
    the ~15 of a build (LVs, definition, two copies: 30-40 s a kill point
    in the UML guest on a loaded host)."""

    CHUNK = 64 * 1024

    def __init__(self, vg, loop, img, state_dir):
        self.vg, self.loop, self.img, self.state_dir = vg, loop, img, str(state_dir)
        out = sh("lvs", "--noheadings", "--separator", "|", "-o", "lv_name,lv_active", vg)
        self.active = ["%s/%s" % (vg, n) for n, _sep, a in (line.strip().partition("|") for line in out.splitlines())
                       if n and a.strip() == "active"]
        self.saved_state = self.state_dir + ".saved"
        shutil.copytree(self.state_dir, self.saved_state, symlinks=True)
        sh("vgchange", "-an", "-q", vg)
        self.size = os.path.getsize(img)
        self.chunks = []  # (offset, bytes) of every chunk that is not all zeros
        zero = bytes(self.CHUNK)
        with open(img, "rb") as fh:
            for start, end in _data_extents(fh.fileno(), self.size):
                fh.seek(start)
                offset = start
                while offset < end:
                    data = fh.read(min(self.CHUNK, end - offset))
                    if data != zero[:len(data)]:
                        self.chunks.append((offset, data))
                    offset += len(data)
        self._activate()

    def _activate(self):
        if self.active:
            activate(*self.active)

    def put_back(self):
        sh("vgchange", "-an", "-q", self.vg)
        # the loop device reads its file through the file's page cache, so
        # rewriting the file (no LV active, nothing reading the loop device
        # behind it) is what the next activation reads
        with open(self.img, "r+b") as fh:
            fh.truncate(0)
            for offset, data in self.chunks:
                fh.seek(offset)
                fh.write(data)
            fh.truncate(self.size)
            fh.flush()
            os.fsync(fh.fileno())
        fd = os.open(self.loop, os.O_RDONLY)
        try:
            fcntl.ioctl(fd, BLKFLSBUF, 0)  # nothing of the old image left in the loop device's own cache
        finally:
            os.close(fd)
        self._activate()
        shutil.rmtree(self.state_dir)
        shutil.copytree(self.saved_state, self.state_dir, symlinks=True)


BLKFLSBUF = 0x1261


def _data_extents(fd, size):
    """(start, end) of the parts of a sparse file that are not holes (the
    whole file where the filesystem cannot tell)."""
    extents = []
    offset = 0
    try:
        while offset < size:
            start = os.lseek(fd, offset, os.SEEK_DATA)
            end = os.lseek(fd, start, os.SEEK_HOLE)
            extents.append((start, end))
            offset = end
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # no data after offset
            return extents
        return [(0, size)]
    return extents


# "+media": the same world with version 1 dumped to a medium (w.medium)
WORLD_NUMBER = {"lvm_snapshot": 1, "lvm_thin": 2, "lvm_thin+media": 3, "lvm_clone": 4}


@pytest.fixture(scope="module")
def _saved_worlds(tmp_path_factory):
    """technology -> (world, expected, SavedVg): one VG (and thin pool) per
    technology for the whole module, holding one world (pool ``p001`` or
    ``p002``, with a spare LV ``kKc`` for the redefinition), built at its
    first use.
    Everything goes at teardown, as with test_lvm's ``vgs`` fixture."""
    require_lvm()
    workdir = tempfile.mkdtemp(prefix="pitcopy-lvm-")
    vgs = Vgs(workdir)
    lvm_runner = SubprocessRunner(env={"PATH": SBIN})
    made = {}

    def build(key):
        technology, _sep, extra = key.partition("+")
        vg = vgs.create("f" + technology[4:6], 1024 * MiB)
        loop, img = vgs.loops[-1]
        thin = None
        if technology == "lvm_thin":
            thin = "tp"
            sh("lvcreate", "-q", "-L", "256M", "-T", "%s/%s" % (vg, thin))
        t0 = time.monotonic()
        # a pool name per technology: a listing of pool pK's copies (verify,
        # leftovers) finds them by tag in every VG of the host
        k = WORLD_NUMBER[key]
        w, expected = tagged_world(tmp_path_factory.mktemp("lvm-faults"), lvm_runner, vg, technology, k, thin,
                                   spares=1)
        if extra == "media":
            w.medium = str(tmp_path_factory.mktemp("lvm-medium"))
            with w.engine.session(w.name) as s:
                s.plan_dump(1, w.medium).apply()
        t1 = time.monotonic()
        saved = SavedVg(vg, loop, img, w.store.state_dir)
        sys.stderr.write("%s world built in %.1f s, saved in %.1f s (%d KiB in %d chunks)\n" % (
            technology, t1 - t0, time.monotonic() - t1, sum(len(c) for _o, c in saved.chunks) // 1024,
            len(saved.chunks)))
        made[key] = (w, expected, saved, [False])
        return made[key]

    try:
        yield lambda key: made.get(key) or build(key)
    finally:
        errors = vgs.destroy_all()
        shutil.rmtree(workdir, ignore_errors=True)
        assert not errors, errors


@pytest.fixture
def lvm_worlds(_saved_worlds):
    """``make(technology) -> make_world(k)``: the module's world of that
    technology, put back (SavedVg) before every use but its first, whatever
    ``k``: every kill point starts from the same world, byte for byte."""
    def make(technology):
        def make_world(k):
            w, expected, saved, used = _saved_worlds(technology)
            if used[0]:
                saved.put_back()
            used[0] = True
            return w, copy.deepcopy(expected)
        return make_world
    return make


def _runs(steps, *words):
    """Step numbers of the commands (``run ...``) whose label holds all ``words``."""
    return [n for n, what in steps if what.startswith("run ") and all(x in what for x in words)]


def _writes(steps):
    return [n for n, what in steps if what.startswith("write ")]


def _consistent(w):
    faults.consistent(w)


@pytest.mark.parametrize("technology", ["lvm_thin"])
def test_sigkill_at_every_step_of_a_restore(lvm_worlds, sweep, technology):
    """In place: block by block from the copy onto the source. Killed
    between two block writes, a source is half restored; the journal names
    it and the repair finishes the restore. (lvm_snapshot restores with the
    same code, without the activation of the copies.) Sampled: a block in
    the middle of the first source, the first block of the second."""
    def check(w, expected, journal, found, done):
        _consistent(w)
        check_versions(w, expected)
        data = w.data()
        if done or journal is not None:
            assert data == ["v1", "v1"], data
            if journal is not None:
                assert journal.operation == "restore" and journal.version == 1
                restoring = [f for f in found["findings"] if f["problem"] == "interrupted_restore"]
                assert restoring, found
        else:
            assert data == ["live", "live"], data

    def select(steps):
        writes = _writes(steps)
        return [writes[len(writes) // 4], writes[len(writes) // 2]]

    points = sweep(CHILD, lvm_worlds(technology), "restore", check, technology, select)
    assert len([p for p in points if " write " in " %s " % p]) >= (4 if sweep.full else 2), points
    assert len(points) >= (8 if sweep.full else 2), points


@pytest.mark.parametrize("technology", ["lvm_thin"])
def test_sigkill_at_every_step_of_a_delete(lvm_worlds, sweep, technology):
    """Sampled: the ``lvremove`` of version 1's copies (one ``lvm`` shell)."""
    points = sweep(CHILD, lvm_worlds(technology), "delete", faults.delete_check(check_versions), technology,
                   lambda steps: _runs(steps, "lvremove"))
    assert len(points) >= (3 if sweep.full else 1), points


def test_sigkill_at_every_step_of_a_pool_removal(lvm_worlds, sweep):
    """Sampled: the ``lvremove`` of the copies (one ``lvm`` shell a version)."""
    points = sweep(CHILD, lvm_worlds("lvm_thin"), "remove", faults.removal_check(check_versions), "lvm_thin",
                   lambda steps: _runs(steps, "lvremove")[-1:])
    assert len(points) >= (3 if sweep.full else 1), points


def test_sigkill_at_every_step_of_a_restore_from_media(lvm_worlds, sweep):
    """Version 1 received from its dump as the new thin LVs ``r_<source>``
    (two lvcreate, the blocks that are not zeros, two lvchange untagging).
    Killed anywhere, the new LVs are all there, whole, holding version 1
    and carrying none of our tags (the repair finished the restore: it
    removes a half-written one first), or none is (killed before the
    journal); the versions and the medium are untouched. Sampled: the
    untagging of the first LV (it whole, the second not made: the repair
    receives the second). Every kill point with ``--pitcopy-faults=all``: 14,
    192 s in the UML guest."""
    make_world = lvm_worlds("lvm_thin+media")
    w, _expected = make_world(0)
    new = ["%s/r_%s" % (w.vg, s_.split("/")[1]) for s_ in w.sources]

    def check(w, expected, journal, found, done):
        _consistent(w)
        check_versions(w, expected)
        made = [n for n in new if n in vg_tags(w.vg)]
        if done or journal is not None:
            assert made == new, (made, journal)
            if journal is not None:
                assert journal.operation == "restore_elsewhere" and journal.medium == w.medium, journal
                assert [f for f in found["findings"] if f["problem"] == "interrupted_restore_elsewhere"], found
        assert made in ([], new), made
        tags = vg_tags(w.vg)
        for n in made:
            assert not [t for t in tags[n] if t.startswith("pitcopy_")], (n, tags[n])
            assert read_data(n) == "v1", n

    def select(steps):
        return _runs(steps, "lvchange")[:1]

    arg = json.dumps({"version": 1, "medium": w.medium, "restore_to": "r_"})
    points = sweep(CHILD, make_world, "restore_from_media", check, "lvm_thin", select, arg=arg)
    if sweep.full:
        assert len([p for p in points if " write " in " %s " % p]) >= 2 and len(points) >= 8, points
    else:
        assert len(points) == 1, points


# version 3 replaces version 1, or is rolled back
_copy_check = faults.copy_check(check_versions, "live")


@pytest.mark.parametrize("technology,batched", [("lvm_snapshot", True), ("lvm_thin", False)])
def test_sigkill_at_every_step_of_a_copy(lvm_worlds, sweep, technology, batched):
    """Version 3 replaces version 1; killed anywhere, the repair rolls the
    copy back (versions 1 and 2 kept) or finishes it (2 and 3). Sampled:
    batched, both ``lvm`` shells (the snapshots, the promotion); unbatched,
    between the two commands of each pair (one snapshot taken, version 1
    half removed, version 3 half renamed into place)."""
    script = CHILD if batched else CHILD_UNBATCHED
    what = "%s (%s)" % (technology, "batched" if batched else "unbatched")

    def select(steps):
        if batched:
            return _runs(steps, "lvm:")
        return [_runs(steps, "lvcreate")[1], _runs(steps, "lvremove")[1], _runs(steps, "lvrename")[1]]

    points = sweep(script, lvm_worlds(technology), "copy", _copy_check, what, select)
    # a kill point reads "<step number> <what>"
    commands = [p for p in points if p.split(" ", 1)[1].startswith("run ")]
    if sweep.full:
        # batched: the snapshots in one lvm shell, the promotion in another;
        # unbatched: two lvcreate, two lvremove, two lvrename, two lvchange
        assert len(commands) >= (2 if batched else 8), points
        assert len(points) >= (8 if batched else 14), points
    else:
        assert len(commands) == (2 if batched else 3), points


def _clone_copy_check(w, expected, journal, found, done):
    """lvm_clone writes in place (docs/technologies.md, "lvm_clone: a failed
    copy"): version 3 goes onto version 1's targets. Finished: versions 2
    and 3. Rolled back: version 2, and version 1 only when the kill came
    before its targets were marked for version 3 (a killed run cannot put
    marks back); never a record of a copy that is not there."""
    faults.consistent(w)
    kept = [r.version for r in w.state().replication_records]
    if done or 3 in kept:
        expected[3] = dict((s_, "live") for s_ in w.sources)
        assert kept == [2, 3], kept
        expected.pop(1)
    else:
        assert kept in ([1, 2], [2]), kept
        if kept == [2]:
            expected.pop(1)
            # lost only where a target no longer says it holds version 1
            tags = vg_tags(w.vg)
            assert [t for t in w.target_pools[0].volumes if "%s1" % TAG_VERSION not in tags[t]], tags
    if journal is not None and journal.phase == "committing":
        assert 3 in kept
    check_versions(w, expected)


def test_sigkill_at_every_step_of_a_clone_copy(lvm_worlds, sweep):
    """lvm_clone, version 3 onto version 1's targets: killed anywhere, one
    repair leaves records that name only what is there. Sampled: each
    ``lvm`` shell (the temporary snapshots, the marks, the seals with the
    removals, the promotion) and the first block write."""
    def select(steps):
        return _runs(steps, "lvm:") + _writes(steps)[:1]

    points = sweep(CHILD, lvm_worlds("lvm_clone"), "copy", _clone_copy_check, "lvm_clone", select)
    shells = [p for p in points if p.split(" ", 1)[1].startswith("run lvm:")]
    assert len(shells) == 4 if not sweep.full else len(shells) >= 4, points
    assert [p for p in points if p.split(" ", 1)[1].startswith("write ")], points


def test_sigkill_at_every_step_of_a_repair(lvm_worlds, sweep):
    """A restore killed half way through the second source's blocks; the
    repair is killed too, at every step (sampled: before its first block
    write); one more repair finishes it."""
    make_world = lvm_worlds("lvm_thin")
    w, _expected = make_world(0)
    steps = faults.steps_of(faults.run_child(CHILD, w, "restore", 1, 0))
    writes = _writes(steps)
    assert len(writes) >= 4, steps
    kill_op = writes[len(writes) // 2 + 1]  # the second block of the second source

    def check(w, expected):
        assert w.data() == ["v1", "v1"]
        check_versions(w, expected)

    ks = None
    if not sweep.full:
        # sampled: the repair killed before its first block write, found
        # from the steps of a repair that runs to the end
        w, _expected = make_world(0)
        assert faults.run_child(CHILD, w, "restore", 1, kill_op).returncode == -signal.SIGKILL
        ks = _writes(faults.steps_of(faults.run_child(CHILD, w, "repair", 0, 0)))[:1]
    points = faults.kill_the_repair(CHILD, make_world, "restore", kill_op, check, leftovers, "lvm_thin", ks=ks)
    # the restore was killed before the last block of the second source:
    # what the repair writes (that block at least) is a kill point too
    assert len([p for p in points if p.split(" ", 1)[1].startswith("write ")]) >= 1, points


def test_sigkill_at_every_step_of_a_redefinition(lvm_worlds):
    """copy_pool changing a pool that keeps versions 1 and 2: a third source
    added (lvm_thin). Killed anywhere (every kill point in both modes: a
    redefinition writes the state file only), the records hold the old
    definition or the new one, and both versions stay valid with their data."""
    make_world = lvm_worlds("lvm_thin")
    w, _expected = make_world(0)
    old, new = w.definition(), w.definition(w.sources + w.spares)
    points = faults.kill_everywhere(CHILD, make_world, "define", faults.redefine_check(check_versions, old, new),
                                    leftovers, "lvm_thin", arg=faults.definition_arg(new))
    assert len(points) >= 1, points
