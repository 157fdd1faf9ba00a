# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tables 2.1 and 3.6 of the spec, and the copy method's basic paths."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CapacityError,
    CopyFailed,
    InvalidInput,
    NoEligibleTarget,
    PitcopyError,
    PoolNotFound,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine

GIB = 1 << 30


def pairs_of(record_dict):
    return [(p["source"], p["target"]) for p in record_dict["pairs"]]


def spec_env(tmp_path, versions=2):
    """Figure 2: source pool A, B; target pool 01 = a, b; 02 = c, d."""
    be = MemoryBackend("lvm_clone")
    for name in ("A", "B", "a", "b", "c", "d"):
        be.add_volume(name, size=GIB)
    engine = make_engine(tmp_path / "state", be)
    definition = PoolDefinition(
        name="P", technology="lvm_clone", sources=("A", "B"), versions=versions,
        target_pools=(TargetPool("01", ("a", "b")), TargetPool("02", ("c", "d"))),
    )
    with engine.session("P") as s:
        s.plan_define(definition).apply()
    return engine, be, definition


def test_table_3_6_prepairing_records(tmp_path):
    engine, be, _d = spec_env(tmp_path)
    with engine.session("P") as s:
        plan = s.plan_prepair(versions=2)
        assert plan.changed
        assert be.calls == []  # deciding touched nothing
        result = plan.apply()
    records = result["records"]
    assert [(r["version"], r["target_pool"]) for r in records] == [(1, "01"), (2, "02")]
    assert pairs_of(records[0]) == [("A", "a"), ("B", "b")]  # V1 PPR: A_a, B_b
    assert pairs_of(records[1]) == [("A", "c"), ("B", "d")]  # V2 PPR: A_c, B_d
    assert result["unpaired"] == []
    with engine.session("P") as s:
        again = s.plan_prepair(versions=2)
        assert not again.changed
        assert again.result["records"] == records


def test_table_2_1_replication_records_and_v3_reuses_v1(tmp_path):
    engine, be, _d = spec_env(tmp_path)
    with engine.session("P") as s:
        s.plan_prepair(versions=2).apply()
        r1 = s.plan_copy().apply()
        r2 = s.plan_copy().apply()
        info = s.info()
    assert r1["version"]["pre_copy_record"] == "prepairing"
    assert r2["version"]["pre_copy_record"] == "prepairing"
    rrs = info["replication_records"]
    # Table 2.1: T1 V1 RR A_a B_b; T2 V2 RR A_c B_d
    assert [(r["version"], pairs_of(r)) for r in rrs] == [
        (1, [("A", "a"), ("B", "b")]),
        (2, [("A", "c"), ("B", "d")]),
    ]
    assert rrs[0]["created"] < rrs[1]["created"]
    assert info["prepairing_records"] == []  # used pre-pairing records are deleted
    with engine.session("P") as s:
        r3 = s.plan_copy().apply()
        info = s.info()
    # V3 reuses the pairs of V1 (the replication record it replaces)
    assert r3["version"]["number"] == 3
    assert r3["version"]["target_pool"] == "01"
    assert r3["version"]["pre_copy_record"] == "replication"
    assert pairs_of(r3["version"]) == [("A", "a"), ("B", "b")]
    assert r3["replaced_version"] == 1
    assert r3["broken_pairs"] == []
    assert r3["copy_window_ms"] == 1.5
    assert [r["version"] for r in info["replication_records"]] == [2, 3]


def test_fresh_selection_without_prepairing(tmp_path):
    engine, be, _d = spec_env(tmp_path)
    be.set_data("A", "A@t1")
    with engine.session("P") as s:
        plan = s.plan_copy(label="first")
        assert plan.changed
        assert plan.result["version"]["pre_copy_record"] == "none"
        assert pairs_of(plan.result["version"]) == [("A", "a"), ("B", "b")]
        assert be.calls == []
        assert s.info()["replication_records"] == []
        result = plan.apply()
    assert result["version"]["label"] == "first"
    assert result["version"]["status"] == "valid"
    assert be.copy_data("a") == "A@t1"
    assert be.volumes["a"].owner == "P"
    # the same label again: no change, the same version
    with engine.session("P") as s:
        again = s.plan_copy(label="first")
        assert not again.changed
        assert again.apply()["version"]["number"] == 1
    assert [c[0] for c in be.calls] == ["take_point_in_time", "promote"]


def test_state_file_round_trip_after_copies(tmp_path):
    engine, _be, _d = spec_env(tmp_path)
    with engine.session("P") as s:
        s.plan_prepair(versions=2).apply()
        s.plan_copy().apply()
        before = s.state
    with engine.session("P") as s:
        assert s.state == before


def test_failed_pair_keeps_previous_versions(tmp_path):
    engine, be, _d = spec_env(tmp_path)
    with engine.session("P") as s:
        s.plan_copy().apply()
        s.plan_copy().apply()
        before = dict(s.info(), newest_valid_age=None)  # the clock moves on
    be.fail_sources.add("B")
    with engine.session("P") as s:
        with pytest.raises(CopyFailed) as exc:
            s.plan_copy().apply()
        assert exc.value.details["source"] == "B"
        assert "version 3" in exc.value.msg
        assert dict(s.info(), newest_valid_age=None) == before
    with engine.session("P") as s:
        assert dict(s.info(), newest_valid_age=None) == before
        assert s.state.journal is None
    assert not [c for c in be.list_copies("P") if c.staged]
    assert be.copy_data("a") is None or be.copies["a"]["version"] == 1
    assert sorted((c.target, c.version) for c in be.list_copies("P")) == [("a", 1), ("b", 1), ("c", 2), ("d", 2)]


def test_capacity_refused_before_anything(tmp_path):
    engine, be, _d = spec_env(tmp_path)
    be.capacity = 1
    with engine.session("P") as s:
        with pytest.raises(CapacityError):
            s.plan_copy()
    assert be.calls == []


def test_unknown_pool(tmp_path):
    be = MemoryBackend("lvm_clone")
    engine = make_engine(tmp_path / "state", be)
    with engine.session("nope") as s:
        with pytest.raises(PoolNotFound):
            s.plan_copy()
        assert not s.plan_remove().changed


def test_no_eligible_target_names_every_reason(tmp_path):
    be = MemoryBackend("lvm_clone")
    be.add_volume("vg/A", size=2 * GIB)
    be.add_volume("vg/B", size=GIB)
    be.add_volume("vg/t1", size=GIB)
    be.add_volume("vg/t2", size=4 * GIB, block_size=4096)
    be.add_volume("vg/t3", size=4 * GIB, foreign_data=True)
    be.add_volume("vg/t4", size=4 * GIB)
    engine = make_engine(tmp_path / "state", be)
    d = PoolDefinition("P", "lvm_clone", ("vg/A", "vg/B"), 1,
                       (TargetPool("01", ("vg/t1", "vg/t2", "vg/t3", "vg/t4", "vg/t5")),))
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="vg/t3"):
            s.plan_define(d)
    be.update_volume("vg/t3", foreign_data=False, owner="other")
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="pool other"):
            s.plan_define(d)
    be.update_volume("vg/t3", owner=None)
    with engine.session("P") as s:
        s.plan_define(d).apply()
    # the host changes after the definition: targets of the wrong type are
    # then found (and explained) by target selection
    be.update_volume("vg/t3", technologies=frozenset(["zfs_send"]))
    be.update_volume("vg/t4", kind="thin_lv")
    with engine.session("P") as s:
        with pytest.raises(NoEligibleTarget) as exc:
            s.plan_prepair()
        unpaired = exc.value.details["unpaired"]
        assert [u["source"] for u in unpaired] == ["vg/A"]
        assert unpaired[0]["reasons"] == [
            "vg/t1: already chosen for vg/B in this record",
            "vg/t2: logical block size 4096 differs from the source's 512",
            "vg/t3: cannot take part in lvm_clone copies (supports: zfs_send)",
            "vg/t4: is of kind thin_lv; a source of kind lv needs one of: lv",
            "vg/t5: does not exist on this host",
        ]
        result = s.plan_prepair(allow_unpaired=True).apply()
        assert result["records"][0]["pairs"] == [{"source": "vg/B", "target": "vg/t1"}]
        assert result["unpaired"] == unpaired
        with pytest.raises(NoEligibleTarget):
            s.plan_copy()


def test_prepair_bounds(tmp_path):
    engine, _be, _d = spec_env(tmp_path)
    with engine.session("P") as s:
        for bad in (0, 3, -1, True, "1"):
            with pytest.raises(InvalidInput, match="between 1 and 2"):
                s.plan_prepair(versions=bad)


def test_unfinished_journal_refuses_copy(tmp_path):
    engine, be, _d = spec_env(tmp_path)

    def crash(step):
        if step == "promote":
            raise RuntimeError("simulated crash")

    be.step = crash
    with engine.session("P") as s:
        with pytest.raises(RuntimeError):
            s.plan_copy().apply()
    be.step = None
    with engine.session("P") as s:
        assert s.state.journal.phase == "committing"
        with pytest.raises(PitcopyError, match="version 1.*verify_records with repair"):
            s.plan_copy()
        v = s.plan_verify()
        assert not v.changed
        assert [f["problem"] for f in v.result["findings"]] == ["interrupted_copy"]
        assert v.result["consistent"] is False
        result = s.plan_verify(repair=True).apply()
        assert "finished" in result["findings"][0]["action"]
        assert s.state.journal is None
        assert [r.version for r in s.state.replication_records] == [1]
        assert s.plan_verify().result == {"consistent": True, "findings": []}
