# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The btrfs backends against what btrfs-progs and the kernel answered on
real btrfs filesystems on loop devices (native: ``/work/wt/heavy --btrfs
.venv/bin/python -m pytest -c pytest.ini --rootdir . tests/real -m btrfs
--pitcopy-record DIR``): the engine and backend calls of the real test
named in each case, in its order; each command and each call of the kernel
seam (_btrfs.BtrfsKernel: ioctls, subvolume roots, free space, mounts) must
be the recorded one, with the recorded arguments, and gets the recorded
answer.

Marks, directories and renames are real file operations on a directory
tree that stands in for the test's filesystems (the recording's ``@ROOT@``
is put below tmp_path); a subvolume there is a plain directory, made where
the recorded commands and ioctls made one (snapshot, receive) and removed
where they deleted one. What the copies contain is not replayed, so the
data checks of the real tests are not repeated here:
tests/real/test_btrfs*.py stay the proof against the real tools."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json
import os
import shutil

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _btrfs
from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import (
    BtrfsSendBackend,
    BtrfsSnapshotBackend,
    mark_path,
    read_mark,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CapacityError,
    CopyFailed,
    InvalidInput,
    NoEligibleTarget,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CopyPair,
    Hook,
    PoolDefinition,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.tests.unit.replay import ReplayKernel, ReplayRunner, load_case
from ansible_collections.pitcopy.versions.tests.utils import btrfs_scenarios
from ansible_collections.pitcopy.versions.tests.utils.pool_calls import PoolCalls

BACKENDS = {"btrfs_snapshot": BtrfsSnapshotBackend, "btrfs_send": BtrfsSendBackend}


def _mkdir(path):
    os.makedirs(path, exist_ok=True)


def effect(call):
    """What a recorded call did to the tree: subvolumes made or deleted."""
    argv = call.get("argv") or []
    ok = call.get("rc") == 0 and "raises" not in call
    if argv[:3] == ["btrfs", "subvolume", "delete"] and ok:
        for p in argv[argv.index("--") + 1:]:
            shutil.rmtree(p)
    elif argv[:3] == ["btrfs", "subvolume", "snapshot"] and ok:
        os.mkdir(argv[-1])
    elif call.get("pipe") and ok:
        send, receive = call["pipe"]
        os.mkdir(os.path.join(receive[-1], os.path.basename(send[-1])))
    elif call.get("kernel") == "take_snapshot" and "raises" not in call:
        os.mkdir(call["args"][0][1])


class Fs(object):
    def __init__(self, mountpoint):
        self.mountpoint = mountpoint

    def path(self, *parts):
        return os.path.join(self.mountpoint, *parts)


class World(PoolCalls):
    """tests/real/test_btrfs.py's World over a recording: sources on
    ``@ROOT@/src``, send targets on ``@ROOT@/dst``."""

    def __init__(self, tmp_path, monkeypatch, case, technology, name="pool1", prepare=True):
        self.root = str(tmp_path / "root")
        self.case = load_case("btrfs", case, root=self.root)
        self.runner = ReplayRunner(self.case["calls"], case, observer=effect)
        self.hooks_run = []
        self.runner.run_hook = self._run_hook
        monkeypatch.setattr(_btrfs, "KERNEL", ReplayKernel(self.runner))
        self.src, self.dst = Fs(os.path.join(self.root, "src")), Fs(os.path.join(self.root, "dst"))
        self.technology = technology
        self.name = name
        self.store = StateStore(str(tmp_path / "state"))
        self.engine = RecordEngine(self.store, lambda tech: BACKENDS[tech](runner=self.runner))
        self.backend = BACKENDS[technology](runner=self.runner)
        _mkdir(self.dst.mountpoint)
        if prepare:
            _mkdir(self.src.path("vol"))
        self.sources = []
        self.target_pools = ()
        self.hooks = ((), ())
        self.versions = 2

    def _run_hook(self, argv, timeout):
        # a hook is the user's command: it is not replayed, only noted
        self.hooks_run.append(list(argv))
        return {"rc": 0, "stdout": "", "stderr": "", "timed_out": False}

    def add_source(self, name, parent="vol"):
        path = self.src.path(parent, name)
        _mkdir(path)  # ``btrfs subvolume create`` in the real test
        self.sources.append(path)
        return path

    def check_marks(self):
        """Every kept version's copies carry a complete mark naming it."""
        for rec in self.state().replication_records:
            assert rec.status == "valid"
            for p in rec.pairs:
                mark = read_mark(self.copy_path(p))
                assert mark["pool"] == self.name and mark["version"] == rec.version and mark["source"] == p.source
                assert mark["state"] == "complete" and mark["uuid"] and p.identity.startswith(mark["uuid"])
        return sorted(r.version for r in self.state().replication_records)

    def write_all(self, text):
        """What the real test writes into every source ({source: text});
        what copies contain is not replayed, so nothing is written."""
        return dict((s_, text) for s_ in self.sources)

    def write_each(self, content):
        return content

    def scribble(self, source):
        pass  # data: not replayed

    @contextlib.contextmanager
    def bind_mounted(self, path):
        yield  # the recorded mount table has it

    def a_and_b_at_version_1(self):
        """tests/real/test_btrfs.py's World.a_and_b_at_version_1 (its data
        not written: not replayed)."""
        a, b = self.add_source("a"), self.add_source("b")
        self.define()
        self.copy()
        return a, b

    def make_writable(self, path):
        pass  # ``btrfs property set ro false`` in the real test: the recorded ioctls tell it

    def tamper(self, path):
        pass  # data changed, read-only again: the recorded ioctls tell it

    def check_versions(self, expected):
        """The real test's data check, as far as it is replayed: the kept
        versions are the newest expected ones and their copies' marks name
        them (what copies contain is not replayed)."""
        kept = self.check_marks()
        assert kept == sorted(expected)[-len(kept):]

    def three_sources_at_version_1(self):
        """tests/real/test_btrfs.py's World.three_sources_at_version_1 (its
        data not written: not replayed)."""
        for n in ("a", "b", "c"):
            self.add_source(n)
        self.make_target_pools(count=2, per_pool=3)
        self.define()
        self.copy()
        return list(self.sources)

    def check_restored(self, source, text):
        assert os.path.isdir(source)  # what it holds is not replayed

    def make_subvolume(self, path):
        _mkdir(path)

    def snapshot(self, of, at):
        _mkdir(at)

    def delete_subvolume(self, path):
        shutil.rmtree(path)

    def pitcopy_leftovers(self):
        return self.leftovers()

    def leftovers(self):
        found = []
        for root, dirs, files in os.walk(self.root):
            for n in dirs + files:
                if n.startswith(".pitcopy-staging.") or n.startswith(".pitcopy-aside.") or (
                        n.startswith(".pitcopy-mark.") and (".pitcopy-staging." in n or ".tmp." in n)):
                    found.append(os.path.join(root, n))
        return found


def replayed(scenario, tmp_path, monkeypatch, technology, case=None, *args):
    """``scenario`` (tests/utils/btrfs_scenarios.py) over the recording of
    its real test (``case``: by default the scenario's name as a test's),
    every recorded call made."""
    w = World(tmp_path, monkeypatch, case or "test_" + scenario.__name__, technology)
    scenario(w, *args)
    w.runner.assert_done()


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_versions_rotate_with_sources_added_and_removed(tmp_path, monkeypatch, technology):
    """test_btrfs.py::test_versions_rotate_with_sources_added_and_removed."""
    replayed(btrfs_scenarios.versions_rotate_with_sources_added_and_removed, tmp_path, monkeypatch, technology,
             "test_versions_rotate_with_sources_added_and_removed_%s_" % technology, technology)


def test_discovery_facts(tmp_path, monkeypatch):
    """test_btrfs.py::test_discovery_facts, the source filesystem's uuid the
    recorded one."""
    w = World(tmp_path, monkeypatch, "test_discovery_facts", "btrfs_send")
    btrfs_scenarios.discovery_facts(
        w.backend, w.src, w.dst, _mkdir,
        lambda: [c for c in w.case["calls"] if c.get("kernel") == "filesystem_info"][0]["result"]["fsid"])
    w.runner.assert_done()


def _send_world_with_version_1(tmp_path, monkeypatch, case):
    """btrfs_send sources a, b, c; two target pools of three; version 1 taken."""
    w = World(tmp_path, monkeypatch, case, "btrfs_send")
    w.three_sources_at_version_1()
    return w


def test_foreign_target_is_never_used_or_overwritten(tmp_path, monkeypatch):
    w = _send_world_with_version_1(tmp_path, monkeypatch, "test_foreign_target_is_never_used_or_overwritten")
    btrfs_scenarios.foreign_target_is_never_used_or_overwritten(w)
    w.runner.assert_done()


def test_target_filesystem_too_full(tmp_path, monkeypatch):
    """The capacity refusal with the recorded sizes and free bytes."""
    w = _send_world_with_version_1(tmp_path, monkeypatch, "test_target_filesystem_too_full")
    with pytest.raises(CapacityError) as err:
        w.copy()
    msg = err.value.msg
    assert "bytes free but the new version needs" in msg and w.dst.path("tp2", "t1") in msg
    assert w.leftovers() == []
    # no snapshot of the refused copy: only version 1's bases (kept for
    # the next incremental sends) and their marks
    assert sorted(os.listdir(w.src.path("vol", ".pitcopy", w.name, "send"))) == sorted(
        [".pitcopy-base.1." + n for n in ("a", "b", "c")] +
        [".pitcopy-mark..pitcopy-base.1.%s.json" % n for n in ("a", "b", "c")])
    state = w.state()
    assert [r.version for r in state.replication_records] == [1] and state.journal is None
    w.runner.assert_done()


def test_failing_pair_removes_the_whole_version(tmp_path, monkeypatch):
    """The third snapshot ioctl fails with EPERM inside the copy window (its
    directory was made immutable by the real test's hook): the two made
    before it are removed, the records stay."""
    w = World(tmp_path, monkeypatch, "test_failing_pair_removes_the_whole_version", "btrfs_snapshot")
    w.add_source("a")
    w.add_source("b")
    w.add_source("c", parent="other")
    w.define()
    w.copy()
    w.copy()
    tdir = w.src.path("other", ".pitcopy", w.name, "01")
    w.hooks = ([Hook(argv=("chattr", "+i", tdir))], [Hook(argv=("chattr", "-i", tdir))])
    w.define()
    with pytest.raises(CopyFailed) as err:
        w.copy()
    msg = err.value.msg
    assert w.src.path("vol", "c") not in msg and w.sources[2] in msg
    assert "Operation not permitted" in msg and "the 2 snapshot(s) already made were removed" in msg
    assert err.value.details["source"] == w.sources[2]
    assert w.hooks_run == [["chattr", "+i", tdir], ["chattr", "-i", tdir]]
    assert w.leftovers() == []
    state = w.state()
    assert [r.version for r in state.replication_records] == [1, 2] and state.journal is None
    w.hooks = ((), ())
    w.define()
    assert w.copy()["version"]["number"] == 3
    w.runner.assert_done()


@pytest.mark.parametrize("snapshot_with", ["ioctl", "command"])
def test_both_snapshot_paths_make_the_same_copies(tmp_path, monkeypatch, snapshot_with):
    w = World(tmp_path, monkeypatch, "test_both_snapshot_paths_make_the_same_copies_%s_" % snapshot_with,
              "btrfs_snapshot")
    sources = [w.add_source(n) for n in ("a", "b", "c")]
    b = BtrfsSnapshotBackend(runner=w.runner, snapshot_with=snapshot_with)
    d = PoolDefinition(name="p", technology="btrfs_snapshot", sources=tuple(sources), versions=1)
    pairs = [CopyPair(s_, b.implied_target("p", "01", s_)) for s_ in sources]
    window = CopyWindow(d, w.runner)
    outcome = b.create_copies(d, 1, pairs, window)
    assert [p.source for p in outcome.staged] == sources
    for pair, st in zip(pairs, outcome.staged):
        assert os.path.basename(st.target) == ".pitcopy-staging." + os.path.basename(pair.source)
        assert read_mark(st.target)["state"] == "complete"
    b.promote(d, 1, pairs, outcome.staged, [])
    b.promote(d, 1, pairs, outcome.staged, [])  # idempotent
    assert sorted((c.version, c.staged, c.valid) for c in b.list_copies("p")) == [(1, False, True)] * 3
    b.delete_copies(d, pairs)
    assert b.list_copies("p") == []
    assert sorted(os.listdir(w.src.path("vol", ".pitcopy", "p", "01"))) == []
    with pytest.raises(InvalidInput):
        BtrfsSnapshotBackend(runner=w.runner, snapshot_with="shell")
    w.runner.assert_done()


def test_a_failed_receive_reports_the_receive_error(tmp_path, monkeypatch):
    """test_btrfs_hardening.py: ``btrfs receive`` runs out of space
    (ENOSPC, btrfs-progs' words); its error is the one reported, and
    nothing of the version is left."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._engine import _default_window_factory
    w = World(tmp_path, monkeypatch, "test_a_failed_receive_reports_the_receive_error", "btrfs_send")
    a = w.add_source("a")
    w.make_target_pools(count=2, per_pool=1)
    w.define()
    definition = w.definition()
    window = _default_window_factory(definition, w.runner)
    t1 = w.target_pools[0].volumes[0]
    with pytest.raises(CopyFailed) as err:
        w.backend.create_copies(definition, 1, [CopyPair(a, t1)], window)
    msg = err.value.msg
    assert "exit status -13" not in msg and "no output" not in msg
    assert "No space left on device" in msg
    assert err.value.cause.argv[:2] == ["btrfs", "receive"]
    assert "btrfs send was stopped by SIGPIPE when btrfs receive exited" in err.value.cause.stderr
    assert w.leftovers() == []
    w.runner.assert_done()


@pytest.mark.skipif(os.geteuid() != 0, reason="the real test's chown of a target to another user needs root")
def test_a_target_another_user_can_write_is_refused(tmp_path, monkeypatch):
    replayed(btrfs_scenarios.a_target_another_user_can_write_is_refused, tmp_path, monkeypatch, "btrfs_send")


def test_nested_subvolumes_are_refused_at_definition_and_at_copy(tmp_path, monkeypatch):
    """``btrfs subvolume list -o`` names a nested subvolume (its recorded
    output is parsed): refused at definition and at the copy."""
    w = World(tmp_path, monkeypatch, "test_nested_subvolumes_are_refused_at_definition_and_at_copy",
              "btrfs_snapshot")
    w.add_source("a")
    b_ = w.add_source("b")
    nested = os.path.join(b_, "inner")
    _mkdir(nested)
    with pytest.raises(InvalidInput) as err:
        w.define()
    assert "btrfs source %s holds nested subvolumes (vol/b/inner) that a snapshot of it does not contain" % b_ \
        in err.value.msg
    shutil.rmtree(nested)
    w.define()
    w.copy()
    _mkdir(nested)
    with pytest.raises((InvalidInput, CopyFailed), match="holds nested subvolumes"):
        w.copy()
    state = w.state()
    assert state.journal is None and [r.version for r in state.replication_records] == [1]
    assert w.leftovers() == []
    w.runner.assert_done()


def test_orphan_temp_marks_of_the_pool_are_swept_and_no_others(tmp_path, monkeypatch):
    replayed(btrfs_scenarios.orphan_temp_marks_of_the_pool_are_swept_and_no_others, tmp_path, monkeypatch,
             "btrfs_send", None, tmp_path)


def test_restore_refuses_busy_and_mountpoint_sources(tmp_path, monkeypatch):
    """A source in use by a process (here a real one, whose working
    directory is the source in the replay's tree), a nested subvolume (the
    recorded ``btrfs subvolume list -o``), a bind-mounted source (the
    recorded mount table): each refuses the whole restore; then a restore,
    and one of a source that was deleted."""
    replayed(btrfs_scenarios.restore_refuses_busy_and_mountpoint_sources, tmp_path, monkeypatch, "btrfs_snapshot")


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_restore_changed_comes_from_a_comparison(tmp_path, monkeypatch, technology):
    w = World(tmp_path, monkeypatch, "test_restore_changed_comes_from_a_comparison_%s_" % technology, technology)
    btrfs_scenarios.restore_changed_comes_from_a_comparison(w)
    w.runner.assert_done()


def test_interrupted_copy_is_repaired(tmp_path, monkeypatch):
    replayed(btrfs_scenarios.interrupted_copy_is_repaired, tmp_path, monkeypatch, "btrfs_snapshot")


def test_mountpoint_source_is_refused_before_the_copy(tmp_path, monkeypatch):
    w = World(tmp_path, monkeypatch, "test_mountpoint_source_is_refused_before_the_copy", "btrfs_snapshot")
    a = w.add_source("a")
    w.add_source("b")
    w.define()
    with pytest.raises(InvalidInput) as err:
        w.copy()
    assert "%s is the mountpoint of a filesystem" % a in err.value.msg
    state = w.state()
    assert state.journal is None and state.replication_records == ()
    assert w.leftovers() == []
    assert w.copy()["version"]["number"] == 1
    w.runner.assert_done()


def test_a_mountpoint_source_is_refused_at_definition(tmp_path, monkeypatch):
    w = World(tmp_path, monkeypatch, "test_a_mountpoint_source_is_refused_at_definition", "btrfs_snapshot")
    a = w.add_source("a")
    with pytest.raises(InvalidInput) as err:
        w.define()
    assert "btrfs source %s is the mountpoint of a filesystem" % a in err.value.msg
    assert "a mountpoint cannot be renamed or replaced: EBUSY" in err.value.msg
    assert w.store.load(w.name) is None
    w.define()
    w.runner.assert_done()


def test_sizes_come_from_qgroups_when_quotas_are_on(tmp_path, monkeypatch):
    """Without quotas a subvolume's size is its filesystem's used bytes;
    with them, its referenced bytes parsed from the recorded ``btrfs qgroup
    show --raw`` output."""
    w = World(tmp_path, monkeypatch, "test_sizes_come_from_qgroups_when_quotas_are_on", "btrfs_send")
    small, big = w.add_source("small"), w.add_source("big")
    before = w.backend.discover([small, big])
    assert before[small].size == before[big].size >= 8 * 1024 * 1024
    after = w.backend.discover([small, big])
    assert after[small].size < 1024 * 1024
    assert 8 * 1024 * 1024 <= after[big].size < 9 * 1024 * 1024
    w.runner.assert_done()


def test_refuses_freeze_consistency(tmp_path, monkeypatch):
    w = World(tmp_path, monkeypatch, "test_refuses_freeze_consistency", "btrfs_snapshot")
    w.add_source("a")
    w.define()
    d = w.definition()
    frozen = PoolDefinition(name=d.name, technology=d.technology, sources=d.sources, versions=2,
                            consistency="freeze")
    with pytest.raises(InvalidInput, match="uninterruptible"):
        BtrfsSnapshotBackend(runner=w.runner).check_capacity(frozen, [], [], {})
    w.runner.assert_done()


def test_a_send_target_inside_a_source_is_refused(tmp_path, monkeypatch):
    replayed(btrfs_scenarios.a_send_target_inside_a_source_is_refused, tmp_path, monkeypatch, "btrfs_send")


def test_two_pools_cannot_share_send_targets(tmp_path, monkeypatch):
    w1 = World(tmp_path, monkeypatch, "test_two_pools_cannot_share_send_targets", "btrfs_send", name="one")
    w1.add_source("a")
    w1.make_target_pools(count=2, per_pool=1)
    w1.define()
    w2 = World.__new__(World)
    w2.__dict__.update(w1.__dict__)
    w2.name, w2.sources = "two", []
    w2.add_source("a", parent="other")
    w2.target_pools = (TargetPool("x", (w1.dst.path("own"),)), TargetPool("y", w1.target_pools[1].volumes))
    os.makedirs(w1.dst.path("own"))
    with pytest.raises(InvalidInput) as err:
        w2.define()
    assert "target %s of target pool y is already a target of copy pool one (target pool tp2)" % (
        w1.target_pools[1].volumes[0]) in err.value.msg
    assert w2.store.load("two") is None
    w1.runner.assert_done()


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_namespace_directories_are_0700_under_umask_000(tmp_path, monkeypatch, technology):
    replayed(btrfs_scenarios.namespace_directories_are_0700_under_umask_000, tmp_path, monkeypatch, technology,
             "test_namespace_directories_are_0700_under_umask_000_%s_" % technology)


# --- tests/real/test_btrfs_identity.py ------------------------------------------


class Pool(World):
    """test_btrfs_identity.py's Pool: copy pool ``rb`` of one source
    ``<src>/vol/src``, versions 2, defined at once."""

    def __init__(self, tmp_path, monkeypatch, case, technology, name="rb"):
        super(Pool, self).__init__(tmp_path, monkeypatch, case, technology, name=name)
        self.source = self.add_source("src")
        if technology == "btrfs_send":
            self.target_pools = tuple(TargetPool("tp%d" % i, (self.dst.path("tp%d" % i),)) for i in (1, 2))
            for t in self.target_pools:
                _mkdir(t.volumes[0])
                os.chmod(t.volumes[0], 0o755)
        self.define()

    def copy_of(self, version):
        return self.copy_path(self.state().replication(version).pairs[0])


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_records_name_each_copy_by_its_identity(tmp_path, monkeypatch, technology):
    p = Pool(tmp_path, monkeypatch, "test_records_name_each_copy_by_its_identity_%s_" % technology, technology)
    p.copy()
    pair = p.state().replication(1).pairs[0]
    mark = read_mark(p.copy_path(pair))
    if technology == "btrfs_snapshot":
        assert pair.identity == mark["uuid"]
    else:
        assert pair.identity == "%s,received=%s" % (mark["uuid"], mark["received_uuid"]) and mark["received_uuid"]
    with open(p.store.path(p.name)) as fh:
        assert ("%s %s" % (pair.target, pair.identity)) in fh.read()
    btrfs_scenarios.older_state_file_learns_identities(p, pair)
    p.runner.assert_done()


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_older_state_file_put_back_never_reuses_a_version_number(tmp_path, monkeypatch, technology):
    p = Pool(tmp_path, monkeypatch, "test_older_state_file_put_back_never_reuses_a_version_number_%s_" % technology,
             technology)
    p.copy()
    with open(p.store.path(p.name)) as fh:
        saved = fh.read()
    p.copy()
    v2_path = p.copy_of(2)
    p.copy()
    with open(p.store.path(p.name), "w") as fh:
        fh.write(saved)
    assert p.state().last_version == 1
    found = p.verify()["findings"]
    assert (2, "untracked_copy") in [(f["version"], f["problem"]) for f in found], found
    # X4's target holds v2's copy, which no record names: refused, untouched
    with pytest.raises(NoEligibleTarget) as exc:
        p.copy(label="X4")
    assert "holds a copy with the mark of pool rb that no record of the pool has" in exc.value.msg
    with open(p.store.path(p.name)) as fh:
        assert fh.read() == saved
    # the operator deletes it by hand (outside the recorded tools), as the real test does
    shutil.rmtree(v2_path)
    if os.path.exists(mark_path(v2_path)):
        os.unlink(mark_path(v2_path))
    result = p.copy(label="X4")
    assert result["version"]["status"] == "valid" and result["version"]["number"] == 4
    assert [(f["version"], f["problem"]) for f in p.verify()["findings"]] == [(1, "copy_missing")]
    problems = dict((f["problem"], f) for f in found)
    assert problems["last_version_behind"]["version"] == 3
    assert any("numbered 4" in w for w in result.get("warnings", ())), result
    assert read_mark(p.copy_of(4))["version"] == 4
    assert p.leftovers() == []
    for rec in p.state().replication_records:
        mark = read_mark(p.copy_path(rec.pairs[0]))
        assert mark is None or mark["version"] == rec.version or \
            any(f["version"] == rec.version for f in p.verify()["findings"])
    p.runner.assert_done()


def test_promotion_refuses_a_final_copy_that_is_not_the_staged_one(tmp_path, monkeypatch):
    p = Pool(tmp_path, monkeypatch, "test_promotion_refuses_a_final_copy_that_is_not_the_staged_one",
             "btrfs_snapshot")
    p.copy()
    p.copy()
    target = p.state().replication(2).pairs[0].target
    pair = CopyPair(p.source, target)
    outcome = p.backend.create_copies(p.definition(), 2, [pair], CopyWindow(p.definition(), p.runner))
    with pytest.raises(CopyFailed) as exc:
        p.backend.promote(p.definition(), 2, [pair], outcome.staged, [])
    assert "not the copy just made" in exc.value.msg
    assert read_mark(target)["version"] == 2
    p.backend.discard(p.definition(), outcome.staged)
    assert p.leftovers() == []
    p.runner.assert_done()


@pytest.mark.parametrize("forge_mark", [False, True], ids=["old-mark", "forged-mark"])
@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_a_subvolume_that_is_not_ours_is_never_deleted(tmp_path, monkeypatch, technology, forge_mark):
    """Someone else's subvolume at a copy's path beside our old (or forged)
    mark: reported, never rotated away, deleted, restored from or repaired
    away. The planted subvolume's UUID is the one the recording saw there."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._errors import PitcopyError
    p = Pool(tmp_path, monkeypatch, "test_a_subvolume_that_is_not_ours_is_never_deleted_%s-%s_" % (
        technology, "forged-mark" if forge_mark else "old-mark"), technology)
    p.copy()
    p.copy()
    path = p.copy_of(1)
    ours = read_mark(path)["uuid"]
    shutil.rmtree(path)  # the real test deletes the copy and creates its own subvolume there
    _mkdir(path)
    if forge_mark:
        theirs = [c["result"] for c in p.runner.calls[p.runner.pos:]
                  if c.get("kernel") == "subvolume_info" and c["args"] == [path] and c["result"]["uuid"] != ours][0]
        mark = read_mark(path)
        mark.update(uuid=theirs["uuid"], ctransid=theirs["ctransid"], generation=theirs["generation"],
                    received_uuid=theirs["received_uuid"])
        with open(mark_path(path), "w") as fh:
            fh.write(json.dumps(mark))
    found = p.verify()["findings"]
    with pytest.raises(PitcopyError) as exc:
        p.copy()
    assert "copy_identity_mismatch" in exc.value.msg or "not a copy of pool" in exc.value.msg, exc.value.msg
    assert os.path.isdir(path)
    assert [(f["version"], f["problem"]) for f in found] == [(1, "copy_identity_mismatch")], found
    assert "never deleted" in found[0]["action"]
    assert p.state().last_version == 2 and p.state().journal is None
    assert p.leftovers() == []
    with p.engine.session(p.name) as s:
        with pytest.raises(PitcopyError):
            s.plan_restore(1).apply()
    result = p.verify(repair=True)
    assert [f["problem"] for f in result["findings"]] == ["copy_identity_mismatch"]
    assert p.state().replication(1).status == "invalid"
    with p.engine.session(p.name) as s:
        s.plan_delete(1).apply()
    assert p.state().replication(1) is None
    assert os.path.isdir(path) and os.path.isdir(p.copy_of(2))
    p.runner.assert_done()


@pytest.mark.parametrize("technology", ["btrfs_snapshot"])
def test_interrupted_restore_is_finished_by_repair(tmp_path, monkeypatch, technology):
    """test_btrfs.py::test_interrupted_restore_is_finished_by_repair."""
    replayed(btrfs_scenarios.interrupted_restore_is_finished_by_repair, tmp_path, monkeypatch, technology,
             "test_interrupted_restore_is_finished_by_repair_%s_" % technology)


def _listed(backend, name, scope=None):
    return sorted(backend.list_copies(name, scope), key=lambda c: (c.target, str(c.version)))


def _filesystem_listings(argvs):
    return [a for a in argvs if a[:3] == ["btrfs", "subvolume", "list"] and "-o" not in a]


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_copies_are_looked_for_only_where_the_pool_keeps_them(tmp_path, monkeypatch, technology):
    """test_btrfs.py::test_copies_are_looked_for_only_where_the_pool_keeps_them:
    the engine's runs list no whole filesystem (``btrfs subvolume list``
    without ``-o``), their scoped listing equals the host-wide one, and a
    source that left the pool keeps its copies found (through the records)
    and rotated; another pool's copies stay its own."""
    w = World(tmp_path, monkeypatch, "test_copies_are_looked_for_only_where_the_pool_keeps_them_%s_" % technology,
              technology)
    w.add_source("a")
    w.add_source("b", parent="vol2")
    if technology == "btrfs_send":
        w.make_target_pools(count=2, per_pool=2)
    other = World.__new__(World)
    other.__dict__.update(w.__dict__)
    other.name, other.sources, other.target_pools = "decoy", [], ()
    other.add_source("c", parent="other")
    if technology == "btrfs_send":
        _mkdir(w.dst.path("decoy"))
        other.target_pools = (TargetPool("d1", (w.dst.path("decoy"),)), TargetPool("d2", (w.dst.path("decoy2"),)))
        _mkdir(w.dst.path("decoy2"))
    other.define()
    other.copy()
    w.define()
    start = len(w.runner.seen)
    w.copy()
    w.copy()
    assert w.verify()["consistent"] is True
    assert _filesystem_listings(w.runner.seen[start:]) == []
    scope = w.state().copy_scope()
    assert _listed(w.backend, w.name, scope) == _listed(w.backend, w.name)
    assert len(_listed(w.backend, w.name, scope)) == 4
    b = w.sources.pop()
    w.define()
    scope = w.state().copy_scope()
    listed = _listed(w.backend, w.name, scope)
    assert listed == _listed(w.backend, w.name)
    assert sorted(c.version for c in listed if c.source == b) == [1, 2]
    start = len(w.runner.seen)
    assert w.verify()["consistent"] is True
    v1_b = [w.copy_path(p) for p in w.state().replication(1).pairs if p.source == b]
    assert len(v1_b) == 1 and os.path.isdir(v1_b[0])
    w.copy()
    assert not os.path.exists(v1_b[0])
    engine = w.runner.seen[start:]
    listed = _listed(w.backend, w.name, w.state().copy_scope())
    assert listed == _listed(w.backend, w.name)
    assert sorted((c.version, c.source == b) for c in listed) == [(2, False), (2, True), (3, False)]
    start = len(w.runner.seen)
    assert w.verify()["consistent"] is True
    assert _filesystem_listings(engine + w.runner.seen[start:]) == []
    assert other.verify()["consistent"] is True
    assert [c.source for c in _listed(other.backend, other.name, other.state().copy_scope())] == other.sources
    w.runner.assert_done()


def test_incremental_sends_from_the_base_the_copy_was_received_from(tmp_path, monkeypatch):
    """tests/real/test_btrfs_incremental.py's measured run, replayed: the
    first copy into the target pool is a full send, the next ones ``btrfs
    send -p`` from the base kept beside the source (the recorded stream
    sizes: at most 2% of the full one); the base deleted: ``base_missing``
    (not an inconsistency), then a full send; a base that is another
    subvolume than the one the copy was received from: a full send."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import base_path, write_mark

    case = "test_incremental_sends_only_the_change_and_full_when_the_base_is_gone_or_does_not_match"
    w = World(tmp_path, monkeypatch, case, "btrfs_send", name="incr")
    source = w.add_source("db")
    target = w.dst.path("tp1")
    _mkdir(target)
    os.chmod(target, 0o700)
    w.target_pools = (TargetPool("tp1", (target,)),)
    w.versions = 1
    w.define()

    def sent():
        (p,) = w.copy()["version"]["pairs"]
        send = [argv[0] for argv in w.runner.seen if argv and isinstance(argv[0], list)][-1]  # the pipes
        return p["base_version"], p["bytes_sent"], send

    def bases():
        d = os.path.dirname(base_path(source, w.name, 1))
        return sorted(n for n in os.listdir(d) if n.startswith(".pitcopy-base."))

    base_version, full, send = sent()
    assert base_version is None and "-p" not in send and full >= 64 * 1024 * 1024
    for version in (2, 3):
        base_version, size, send = sent()
        parent = base_path(source, w.name, version - 1)
        assert base_version == version - 1 and send[send.index("-p") + 1] == parent and size <= 0.02 * full
        assert bases() == [".pitcopy-base.%d.db" % version]
    assert w.verify()["consistent"] is True

    shutil.rmtree(base_path(source, w.name, 3))  # ``btrfs subvolume delete`` in the real test
    found = w.verify()
    assert found["consistent"] is True
    assert [(f["problem"], f["version"]) for f in found["findings"]] == [("base_missing", 3)]
    base_version, size, send = sent()
    assert base_version is None and "-p" not in send and size >= 64 * 1024 * 1024

    # another subvolume at the base's name, its mark rewritten to name it
    base4 = base_path(source, w.name, 4)
    mark = read_mark(base4)
    shutil.rmtree(base4)
    os.mkdir(base4)
    infos = [c["result"] for c in w.case["calls"] if c.get("kernel") == "subvolume_info" and c["args"] == [base4]]
    assert infos[-1]["uuid"] != mark["uuid"]
    mark.update(uuid=infos[-1]["uuid"], ctransid=infos[-1]["ctransid"])
    write_mark(base4, mark)
    found = w.verify()
    assert [(f["problem"], f["version"]) for f in found["findings"]] == [("base_missing", 4)]
    base_version, size, send = sent()
    assert base_version is None and "-p" not in send
    assert bases() == [".pitcopy-base.5.db"]
    assert w.verify()["consistent"] is True
    w.runner.assert_done()


def test_holds_on_the_storage_and_restore_refusals_change_nothing(tmp_path, monkeypatch):
    """test_btrfs.py::test_holds_on_the_storage_and_restore_refusals_change_nothing:
    a restore onto a plain directory where the source was is refused, the
    directory and the records untouched; a held version's marks carry the
    hold, a copy made writable (the recorded subvolume facts) and a mark
    that lost the hold are reported as hold_not_enforced and repair holds
    them again (``btrfs property set ... ro true``); the release takes the
    hold off the marks; the backend refuses a restore from a writable copy
    with the reason, the source untouched."""
    w = World(tmp_path, monkeypatch, "test_holds_on_the_storage_and_restore_refusals_change_nothing",
              "btrfs_snapshot", name="holds")
    a = w.add_source("a")
    b_ = w.add_source("b")
    w.define()
    w.copy()
    pair_a, pair_b = w.state().replication(1).pairs
    copy_a, copy_b = w.copy_path(pair_a), w.copy_path(pair_b)
    records = w.state()
    shutil.rmtree(a)  # ``btrfs subvolume delete`` in the real test, then a plain directory
    os.mkdir(a)
    with open(os.path.join(a, "mine"), "w") as fh:
        fh.write("keep\n")
    with pytest.raises(InvalidInput) as err:
        w.restore(1, volumes=[a])
    assert "%s exists and is not a subvolume; move it away first" % a in err.value.msg
    assert "nothing was changed" in err.value.msg
    assert os.listdir(a) == ["mine"] and w.state() == records
    shutil.rmtree(a)
    assert w.restore(1, volumes=[a])["restored"] == [a]
    with w.engine.session(w.name) as s:
        s.plan_hold(1, held=True, reason="audit").apply()
    assert read_mark(copy_a)["held"] is True and read_mark(copy_b)["held"] is True
    mark = read_mark(copy_b)
    del mark["held"]
    _btrfs.write_mark(copy_b, mark)
    found = w.verify()
    lost = dict((f["source"], f["action"]) for f in found["findings"] if f["problem"] == "hold_not_enforced")
    assert sorted(lost) == [a, b_], found
    assert "%s is no longer read-only" % copy_a in lost[a] and "repair: true would hold it again" in lost[a]
    assert "the ownership mark of %s does not carry the hold" % copy_b in lost[b_], lost
    w.verify(repair=True)
    assert read_mark(copy_b)["held"] is True
    assert any(c == ["btrfs", "property", "set", "-t", "subvol", "--", copy_a, "ro", "true"] for c in w.runner.seen)
    assert [f for f in w.verify()["findings"] if f["problem"] == "hold_not_enforced"] == []
    with w.engine.session(w.name) as s:
        s.plan_hold(1, held=False).apply()
    assert "held" not in read_mark(copy_a) and "held" not in read_mark(copy_b)
    before = sorted(os.listdir(b_))
    with pytest.raises(InvalidInput) as err:
        w.backend.restore(w.definition(), 1, [pair_b])
    assert "%s: the copy is not valid: %s is no longer read-only" % (b_, copy_b) in err.value.msg
    assert "nothing was changed" in err.value.msg and sorted(os.listdir(b_)) == before
    assert w.leftovers() == []
    w.runner.assert_done()


def _refused_elsewhere(w, version, restore_to):
    """The msg of a refused restore elsewhere; the state file as before."""
    with open(w.store.path(w.name), "rb") as fh:
        before = fh.read()
    with pytest.raises(InvalidInput) as exc:
        with w.engine.session(w.name) as s:
            s.plan_restore_elsewhere(version, restore_to).apply()
    with open(w.store.path(w.name), "rb") as fh:
        assert fh.read() == before
    return exc.value.msg


def test_whole_sources_restored_elsewhere(tmp_path, monkeypatch):
    """test_btrfs_restore_elsewhere.py::test_whole_sources_restored_elsewhere[btrfs_snapshot]:
    check mode names the volumes and makes none; the restore makes one
    writable snapshot of each copy (the recorded ``btrfs subvolume
    snapshot``) under restore_to; again: no change; something else at a
    volume's name (a foreign subvolume, a file) and every bad restore_to
    (relative, missing, inside a source or a .pitcopy directory, not on
    btrfs, on another btrfs than the copies) refused with the value and
    what is accepted, nothing changed."""
    w = World(tmp_path, monkeypatch, "test_whole_sources_restored_elsewhere_btrfs_snapshot_", "btrfs_snapshot")
    db = w.add_source("db")
    www = w.add_source("www")
    w.define()
    w.copy()
    w.copy()
    restore_to = w.src.path("compare")
    os.makedirs(restore_to)
    volumes = {db: os.path.join(restore_to, "db"), www: os.path.join(restore_to, "www")}
    with w.engine.session(w.name) as s:
        p = s.plan_restore_elsewhere(1, restore_to)
    assert p.changed is True and p.before["restored_to"] == []
    assert p.result["restored_to"] == [{"source": s_, "volume": volumes[s_]} for s_ in (db, www)]
    assert os.listdir(restore_to) == []
    with w.engine.session(w.name) as s:
        out = s.plan_restore_elsewhere(1, restore_to).apply()
    assert out["restored_to"] == p.result["restored_to"] and sorted(out["restored"]) == [db, www]
    assert sorted(os.listdir(restore_to)) == ["db", "www"] and w.state().journal is None
    with w.engine.session(w.name) as s:
        again = s.plan_restore_elsewhere(1, restore_to)
    assert again.changed is False and again.apply()["restored_to"] == out["restored_to"]
    assert not [f for f in w.verify()["findings"] if restore_to in str(f)]
    w.copy()
    w.copy()
    assert not [f for f in w.verify()["findings"] if restore_to in str(f)]
    kept = w.state().replication_records[-1].version
    other = w.src.path("other")
    _mkdir(os.path.join(other, "www"))  # ``btrfs subvolume create`` in the real test
    msg = _refused_elsewhere(w, kept, other)
    assert os.path.join(other, "www") in msg and "not a snapshot of the copy" in msg, msg
    assert sorted(os.listdir(other)) == ["www"]
    with open(os.path.join(other, "db"), "w") as fh:
        fh.write("a file\n")
    os.rename(os.path.join(other, "www"), os.path.join(other, "www2"))
    msg = _refused_elsewhere(w, kept, other)
    assert "%s exists and is not a btrfs subvolume" % os.path.join(other, "db") in msg, msg
    accepted = "accepted: an existing directory on the btrfs filesystem holding the copies"
    for bad, why in [
        ("relative/dir", "is not an absolute path"),
        (w.src.path("missing"), "is not an existing directory"),
        (os.path.join(db, "d"), "is inside source %s" % db),
        (os.path.join(os.path.dirname(db), ".pitcopy"), "is inside a .pitcopy directory"),
        ("/proc", "is not on btrfs"),
        (w.dst.mountpoint, "is on another btrfs filesystem than the copy"),
    ]:
        if bad == os.path.join(db, "d"):
            _mkdir(bad)  # the real test's data directory in the source
        msg = _refused_elsewhere(w, kept, bad)
        assert repr(bad) in msg and why in msg and accepted in msg, (bad, msg)
    w.runner.assert_done()
