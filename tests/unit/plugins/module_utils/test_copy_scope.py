# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a pool's copies are looked for (CopyScope): what the definition,
the records and the journal name, turned by each backend into its places
(btrfs directories, ZFS datasets, LVM volume groups) instead of the whole
host. The real proof: tests/real/test_btrfs.py::
test_copies_are_looked_for_only_where_the_pool_keeps_them, and the replay
tests, whose recorded argv are the scoped ones."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSendBackend, BtrfsSnapshotBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import LvmSnapshotBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    RECORD_PREPAIRING,
    RECORD_REPLICATION,
    CopyPair,
    CopyScope,
    Journal,
    PoolDefinition,
    PoolState,
    Record,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend, ZfsSnapshotBackend
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine


def _state():
    d = PoolDefinition(name="P", technology="btrfs_send", sources=("/s/a", "/s/b"), versions=2,
                       target_pools=(TargetPool("01", ("/t/1",)), TargetPool("02", ("/t/2",))))
    old = Record(RECORD_REPLICATION, 1, "01", "2026-11-01T00:00:00+00:00",
                 (CopyPair("/s/a", "/t/1"), CopyPair("/old/gone", "/t/old")))
    pre = Record(RECORD_PREPAIRING, 3, "01", "2026-11-01T00:00:00+00:00", (CopyPair("/s/b", "/t/1"),))
    j = Journal(operation="restore", version=1, target_pool="01", pairs=(CopyPair("/s/a", "/t/1"),),
                phase="restoring", started="2026-11-01T00:00:00+00:00",
                staged=(CopyPair("/s/a", "/t/j/.pitcopy-staging.a"),),
                asides=(CopyPair("/s/a", "/s/.pitcopy/P/restore/.pitcopy-aside.a"),))
    return PoolState(d, (old,), (pre,), 1, j)


def test_the_scope_names_what_the_definition_records_and_journal_name():
    scope = _state().copy_scope()
    assert scope.pool == "P"
    assert scope.sources == ("/s/a", "/s/b", "/old/gone")
    assert scope.targets == ("/t/1", "/t/2", "/t/old")
    assert scope.staged == ("/t/j/.pitcopy-staging.a", "/s/.pitcopy/P/restore/.pitcopy-aside.a")
    wider = scope.with_pairs([CopyPair("/x/c", "/t/2"), CopyPair("/s/a", "/t/9")])
    assert wider.sources == scope.sources + ("/x/c",) and wider.targets == scope.targets + ("/t/9",)


def test_btrfs_looks_in_the_pool_directories_targets_and_recorded_places(tmp_path):
    root = str(tmp_path)
    pd = os.path.join(root, "s", ".pitcopy", "P")
    for sub in ("01", "02", "send"):
        os.makedirs(os.path.join(pd, sub))
    scope = CopyScope("P", (os.path.join(root, "s", "a"), os.path.join(root, "old", "gone"), "relative/x"),
                      (os.path.join(root, "t", "1"), os.path.join(root, "old", ".pitcopy", "P", "01", "gone")),
                      (os.path.join(root, "t", "j", ".pitcopy-staging.a"),))
    send = BtrfsSendBackend(runner=None)._scope_dirs(scope)
    assert send == [pd] + [os.path.join(pd, s) for s in ("01", "02", "send")] + [
        os.path.join(root, "old", ".pitcopy", "P"),  # does not exist: nothing is read there
        os.path.join(root, "t", "1"),                # a target directory holds its copies
        os.path.join(root, "old", ".pitcopy", "P", "01", "gone"),
        os.path.join(root, "t", "j")]
    snap = BtrfsSnapshotBackend(runner=None)._scope_dirs(scope)
    # a btrfs_snapshot target is the copy itself: its directory holds it
    assert os.path.join(root, "t") in snap and os.path.join(root, "old", ".pitcopy", "P", "01") in snap
    assert "relative/x" not in " ".join(snap)


class _Lvs:
    def __init__(self, rows):
        self.rows = rows
        self.calls = []

    def run(self, argv, data=None, check=True):
        self.calls.append(list(argv))
        vgs = argv[argv.index("-o") + 2:]
        rows = [r for r in self.rows if not vgs or r["vg_name"] in vgs]
        return 0, json.dumps({"report": [{"lv": rows}]}), ""


def _lv(vg, lv, tags):
    return {"vg_name": vg, "lv_name": lv, "lv_attr": "swi-a-s---", "lv_size": "4194304", "origin": "data",
            "pool_lv": "", "lv_tags": tags, "segtype": "linear", "data_percent": "", "metadata_percent": "",
            "snap_percent": "0.00", "lv_metadata_size": "", "lv_kernel_minor": "3", "vg_extent_size": "4194304",
            "vg_free": "0", "vg_size": "0", "lv_uuid": "u-%s-%s" % (vg, lv)}


def test_lvm_reports_only_the_volume_groups_of_the_scope():
    tags = "pitcopy_pool=P,pitcopy_version=1,pitcopy_source=%s/data"
    fake = _Lvs([_lv("vg0", "c1", tags % "vg0"), _lv("vg9", "c9", tags % "vg9")])
    b = LvmSnapshotBackend(runner=fake)
    scope = CopyScope("P", ("vg0/data", "-bad/x", "noslash"), ("vg1/t",), ("vg0/data_s",))
    assert [c.target for c in b.list_copies("P", scope)] == ["vg0/c1"]
    assert fake.calls[-1][-2:] == ["vg0", "vg1"]
    # without a scope (diagnostics): every VG, as before
    assert [c.target for c in b.list_copies("P")] == ["vg0/c1", "vg9/c9"]
    # nothing named: no command at all
    n = len(fake.calls)
    assert b.list_copies("P", CopyScope("P")) == [] and len(fake.calls) == n


class _ZfsGet:
    def __init__(self):
        self.calls = []

    def run(self, argv, data=None, check=True):
        self.calls.append(list(argv))
        return 0, "", ""


def test_zfs_gets_the_datasets_of_the_scope_one_level_down():
    scope = CopyScope("P", ("tank/db", "tank/db"), ("tank/db@pitcopy-P-01", "-x", "back/copies/db"),
                      ("back/copies/db.pitcopy-staging-v3",))
    fake = _ZfsGet()
    assert ZfsSnapshotBackend(runner=fake).list_copies("P", scope) == []
    assert fake.calls == [["zfs", "get", "-H", "-p", "-o", "name,property,value,source", "-t", "snapshot", "-r",
                           "-d", "1", "-s", "local,received,none", "pitcopy:pool,pitcopy:version,guid",
                           "back/copies/db", "back/copies/db.pitcopy-staging-v3", "tank/db"]]
    fake = _ZfsGet()
    assert ZfsSendBackend(runner=fake).list_copies("P", scope) == []
    # the copies and their staged twins are children of the targets' parents
    assert fake.calls == [["zfs", "get", "-H", "-p", "-o", "name,property,value,source", "-t",
                           "filesystem,volume,snapshot", "-r", "-d", "1", "-s", "local,received",
                           "pitcopy:pool,pitcopy:version,pitcopy:source", "back/copies", "tank", "tank/db"]]
    fake = _ZfsGet()
    assert ZfsSendBackend(runner=fake).list_copies("P", CopyScope("P")) == [] and fake.calls == []


def test_a_removed_source_is_found_and_rotated_through_its_records(tmp_path):
    """A snapshot pool's copies of a source that left the pool are named by
    the records only (the memory backend, like a real one, lists only what
    the scope names): they are still checked and, when their version is
    replaced, deleted."""
    be = MemoryBackend("btrfs_snapshot")
    for s in ("A", "B"):
        be.add_volume(s)
    engine = make_engine(tmp_path / "state", be)
    d = PoolDefinition(name="P", technology="btrfs_snapshot", sources=("A", "B"), versions=2)
    with engine.session("P") as s:
        s.plan_define(d).apply()
        s.plan_copy().apply()
        s.plan_copy().apply()
        s.plan_define(PoolDefinition(name="P", technology="btrfs_snapshot", sources=("A",), versions=2)).apply()
        assert s.state.definition.sources == ("A",)
        assert sorted(c.target for c in be.list_copies("P", s.state.copy_scope()) if c.source == "B") == [
            "B@P.01", "B@P.02"]
        assert s.plan_verify().apply()["consistent"] is True
        s.plan_copy().apply()
    assert sorted(c.target for c in be.list_copies("P")) == ["A@P.01", "A@P.02", "B@P.02"]
