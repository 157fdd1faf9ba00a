# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rotation when the pool changes shape: a new version fills an empty target
pool first and otherwise replaces the OLDEST kept version, never a newer one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, PoolState, Record, TargetPool
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine

GIB = 1 << 30


def _snapshot_engine(tmp_path):
    be = MemoryBackend("zfs_snapshot")
    for s in ("A", "B"):
        be.add_volume(s, size=GIB)
    return be, make_engine(tmp_path / "state", be)


def _define(engine, versions):
    with engine.session("P") as s:
        return s.plan_define(PoolDefinition("P", "zfs_snapshot", ("A", "B"), versions)).apply()


def _copy(engine):
    with engine.session("P") as s:
        return s.plan_copy().apply()


def _kept(engine):
    with engine.session("P") as s:
        return [(r["version"], r["target_pool"]) for r in s.info()["replication_records"]]


def test_steady_rotation_matches_the_spec(tmp_path):
    engine = _snapshot_engine(tmp_path)[1]
    _define(engine, 2)
    pools = [_copy(engine)["version"]["target_pool"] for dummy in range(5)]
    assert pools == ["01", "02", "01", "02", "01"]
    assert _kept(engine) == [(4, "02"), (5, "01")]


def test_more_versions_fill_the_new_target_pool_before_replacing_anything(tmp_path):
    engine = _snapshot_engine(tmp_path)[1]
    _define(engine, 2)
    for dummy in range(4):
        _copy(engine)
    assert _kept(engine) == [(3, "01"), (4, "02")]
    result = _define(engine, 3)
    assert result["next_version"] == {"number": 5, "target_pool": "03", "replaces": None, "held": False, "hold_reason": None}
    v5 = _copy(engine)
    assert (v5["version"]["target_pool"], v5["replaced_version"]) == ("03", None)
    # then the oldest (3, in 01) goes, not the newest
    v6 = _copy(engine)
    assert (v6["version"]["target_pool"], v6["replaced_version"]) == ("01", 3)
    assert _kept(engine) == [(4, "02"), (5, "03"), (6, "01")]


def test_a_deleted_version_frees_its_target_pool_for_the_next(tmp_path):
    engine = _snapshot_engine(tmp_path)[1]
    _define(engine, 3)
    for dummy in range(3):
        _copy(engine)
    with engine.session("P") as s:
        s.plan_delete(3).apply()
    v4 = _copy(engine)
    assert (v4["version"]["target_pool"], v4["replaced_version"]) == ("03", None)
    assert _kept(engine) == [(1, "01"), (2, "02"), (4, "03")]


def test_upcoming_target_pools_simulate_retention():
    tps = (TargetPool("01", ("a",)), TargetPool("02", ("b",)), TargetPool("03", ("c",)))
    d = PoolDefinition("P", "lvm_clone", ("A",), 2, tps)
    state = PoolState(d, (Record("replication", 1, "01", "t", ()), Record("replication", 2, "02", "t", ())), (), 2)
    # version 3 takes the empty 03, retention then drops 1, so 4 gets 01
    assert [state.target_pool_for(v) for v in (3, 4, 5, 6)] == ["03", "01", "02", "03"]


def test_broken_pairs_name_the_replaced_versions_pairs_when_a_prepairing_record_was_used(tmp_path):
    be = MemoryBackend("lvm_clone")
    for name in ("A", "B", "a", "b", "c", "d"):
        be.add_volume(name, size=GIB)
    engine = make_engine(tmp_path / "state", be)
    tps = (TargetPool("01", ("a", "b")), TargetPool("02", ("c", "d")))

    def define(sources):
        with engine.session("P") as s:
            s.plan_define(PoolDefinition("P", "lvm_clone", sources, 2, tps)).apply()

    define(("A", "B"))
    _copy(engine)
    _copy(engine)
    with engine.session("P") as s:
        s.plan_prepair(versions=1).apply()
    define(("A",))  # B leaves; the pre-pairing record of V3 is trimmed at once
    v3 = _copy(engine)
    assert v3["version"]["pre_copy_record"] == "prepairing"
    assert v3["replaced_version"] == 1
    assert v3["broken_pairs"] == [{"source": "B", "target": "b"}]


def test_copy_result_reports_what_the_hooks_did(tmp_path):
    from ansible_collections.pitcopy.versions.plugins.module_utils._model import Hook
    from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
    from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
    from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore

    be = MemoryBackend("zfs_snapshot")
    be.add_volume("A", size=GIB)
    engine = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: be, window_factory=CopyWindow)
    definition = PoolDefinition("P", "zfs_snapshot", ("A",), 1,
                                pre_copy_hooks=(Hook(("sh", "-c", "echo quiet; exit 3"), 10, False),),
                                post_copy_hooks=(Hook(("true",), 10, True),))
    with engine.session("P") as s:
        s.plan_define(definition).apply()
    with engine.session("P") as s:
        plan = s.plan_copy()
        assert plan.result["hooks"] == []
        result = plan.apply()
    assert [(h["phase"], h["argv"][0], h["rc"], h["ok"]) for h in result["hooks"]] == [
        ("pre", "sh", 3, False), ("post", "true", 0, True)]
    assert result["hooks"][0]["stdout"].strip() == "quiet"
