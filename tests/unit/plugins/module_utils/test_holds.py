# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Holds (issue 16 item 3): copy_version state=held / released. The record
carries ``held`` and ``hold_reason``; rotation, retention, state=absent
without force and pool removal refuse a held version before anything is
touched; the storage enforces the hold (here the in-memory host, whose held
copies refuse deletion like ``zfs destroy`` of a held snapshot) and
verify_records reports and repairs a hold the storage lost. The real tools
are proven in tests/real (btrfs, LVM, ZFS)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, StateFileError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._store import dump_state, load_state, seal
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine

GIB = 1024 ** 3


def _env(tmp_path, versions=2, pools=2):
    be = MemoryBackend("lvm_clone")
    names = ["A"] + ["t%d" % i for i in range(pools)]
    for name in names:
        be.add_volume(name, size=GIB)
    engine = make_engine(tmp_path / "state", be)
    d = PoolDefinition(name="P", technology="lvm_clone", sources=("A",), versions=versions,
                       target_pools=tuple(TargetPool("%02d" % (i + 1), ("t%d" % i,)) for i in range(pools)))
    with engine.session("P") as s:
        s.plan_define(d).apply()
    return engine, be


def _copy(engine, label=None):
    with engine.session("P") as s:
        return s.plan_copy(label=label).apply()


def _hold(engine, version=None, held=True, reason=None, label=None, apply=True):
    with engine.session("P") as s:
        plan = s.plan_hold(version, held=held, reason=reason, label=label)
        return plan, (plan.apply() if apply else None)


def _records(engine):
    with engine.session("P", shared=True) as s:
        return dict((r["version"], r) for r in s.info()["replication_records"])


def _file(engine):
    return engine.store.read_raw("P")


def test_hold_is_recorded_enforced_and_idempotent(tmp_path):
    engine, be = _env(tmp_path)
    _copy(engine, label="pre-upgrade")
    # check mode: the plan says what would change and nothing does
    before = _file(engine)
    plan = _hold(engine, label="pre-upgrade", reason="schema upgrade", apply=False)[0]
    assert plan.changed
    assert plan.before["replication_records"][0]["held"] is False
    assert plan.after["replication_records"][0]["held"] is True
    assert _file(engine) == before and not [c for c in be.calls if c[0] == "hold_copies"]
    plan, result = _hold(engine, label="pre-upgrade", reason="schema upgrade")
    assert result["version"]["held"] is True and result["version"]["hold_reason"] == "schema upgrade"
    assert _records(engine)[1]["held"] is True and _records(engine)[1]["hold_reason"] == "schema upgrade"
    assert be.copies["t0"]["held"] is True
    # again: no change, the file and the storage left alone
    calls = len(be.calls)
    plan = _hold(engine, 1, reason="schema upgrade")[0]
    assert not plan.changed and len(be.calls) == calls and _file(engine) != before
    # another reason is a change of the record
    plan = _hold(engine, 1, reason="legal hold")[0]
    assert plan.changed and _records(engine)[1]["hold_reason"] == "legal hold"


def test_a_held_version_is_never_rotated_the_copy_fails_at_plan_time(tmp_path):
    engine, be = _env(tmp_path)
    _copy(engine)
    _copy(engine)
    _hold(engine, 1, reason="before upgrade")
    with engine.session("P", shared=True) as s:
        nv = s.info()["next_version"]
    assert nv == {"number": 3, "target_pool": "01", "replaces": 1, "held": True, "hold_reason": "before upgrade"}
    before, calls = _file(engine), len(be.calls)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput) as err:
            s.plan_copy()
    assert "version 1 is held" in err.value.msg and "before upgrade" in err.value.msg
    assert "state=released version=1" in err.value.msg
    # refused before anything: no journal, no copy, no discovery-driven change
    assert _file(engine) == before and len(be.calls) == calls
    # released: rotation proceeds and replaces it
    plan, result = _hold(engine, 1, held=False)
    assert plan.changed and result["version"]["held"] is False and be.copies["t0"]["held"] is False
    assert _copy(engine)["replaced_version"] == 1


def test_state_absent_needs_force_and_force_releases_the_storage_first(tmp_path):
    engine, be = _env(tmp_path)
    _copy(engine)
    _hold(engine, 1, reason="legal")
    before = _file(engine)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput) as err:
            s.plan_delete(1)
    assert "version 1 is held" in err.value.msg and "legal" in err.value.msg and _file(engine) == before
    with engine.session("P") as s:
        result = s.plan_delete(1, force=True).apply()
    assert result["deleted_versions"] == [1] and "t0" not in be.copies and _records(engine) == {}
    # the memory host refuses to delete a held copy, as zfs destroy does: the hold went first
    assert [c[0] for c in be.calls][-2:] == ["hold_copies", "delete_copies"]


def test_pool_removal_with_remove_copies_refuses_a_held_version(tmp_path):
    engine, be = _env(tmp_path)
    _copy(engine)
    _hold(engine, 1)
    before = _file(engine)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput) as err:
            s.plan_remove(remove_copies=True)
    assert "version 1 is held" in err.value.msg and "none given" in err.value.msg
    assert _file(engine) == before and "t0" in be.copies


def test_retention_keeps_a_held_version_and_drops_the_oldest_unheld(tmp_path):
    # 3 target pools, 2 versions kept: retention drops a version no copy replaces
    engine, be = _env(tmp_path, versions=2, pools=3)
    _copy(engine)
    _copy(engine)
    _hold(engine, 2)
    result = _copy(engine)  # version 3 in the empty target pool 03; 1 is dropped (not held)
    assert result["deleted_versions"] == [1]
    result = _copy(engine)  # version 4 replaces 1's pool 01; held 2 stays beyond the count
    assert result["deleted_versions"] == [3] and sorted(_records(engine)) == [2, 4]


def test_bad_input_names_the_value_and_changes_nothing(tmp_path):
    engine, be = _env(tmp_path)
    _copy(engine, label="daily")
    before = _file(engine)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput) as err:
            s.plan_hold(7, held=True)
        assert "version 7" in err.value.msg and "no such version" in err.value.msg and "1 (label daily)" in err.value.msg
        with pytest.raises(InvalidInput) as err:
            s.plan_hold(1, held=False)
        assert "cannot release version 1" in err.value.msg and "not held" in err.value.msg
        with pytest.raises(InvalidInput) as err:
            s.plan_hold(None, held=True, label="weekly")
        assert "'weekly'" in err.value.msg
    assert _file(engine) == before and not [c for c in be.calls if c[0] == "hold_copies"]


def test_verify_reports_a_hold_the_storage_lost_and_repair_holds_it_again(tmp_path):
    engine, be = _env(tmp_path)
    _copy(engine)
    _hold(engine, 1, reason="audit")
    with engine.session("P") as s:
        assert s.plan_verify().apply()["consistent"] is True
    be.copies["t0"]["held"] = False  # a hand release on the storage
    with engine.session("P") as s:
        plan = s.plan_verify()
        result = plan.apply()
    assert not plan.changed and result["consistent"] is False
    assert [(f["problem"], f["version"], f["target"]) for f in result["findings"]] == [("hold_not_enforced", 1, "t0")]
    assert result["findings"][0]["action"].startswith("none (repair: true")
    with engine.session("P") as s:
        plan = s.plan_verify(repair=True)
        assert plan.changed
        plan.apply()
    assert be.copies["t0"]["held"] is True
    with engine.session("P") as s:
        assert s.plan_verify().apply()["consistent"] is True


def test_a_kill_between_storage_and_state_is_repaired(tmp_path):
    """Hold: the record is saved first; a kill before the storage holds the
    copy leaves a held record that verify repair enforces. Release: the
    storage first; a kill before the save leaves the record held, which
    repair holds again (the safe side; the release simply runs again)."""
    engine, be = _env(tmp_path)
    _copy(engine)

    class Killed(BaseException):
        pass

    def kill(name):
        if name == "hold_copies":
            raise Killed()

    be.step = kill
    with pytest.raises(Killed):
        _hold(engine, 1, reason="r")
    be.step = None
    assert _records(engine)[1]["held"] is True and not be.copies["t0"].get("held")
    with engine.session("P") as s:
        assert [f["problem"] for f in s.plan_verify(repair=True).apply()["findings"]] == ["hold_not_enforced"]
    assert be.copies["t0"]["held"] is True
    # release killed after the storage released and before the save
    orig = be.hold_copies

    def release_then_die(definition, version, pairs, held=True):
        orig(definition, version, pairs, held)
        raise Killed()

    be.hold_copies = release_then_die
    with pytest.raises(Killed):
        _hold(engine, 1, held=False)
    be.hold_copies = orig
    assert _records(engine)[1]["held"] is True and be.copies["t0"]["held"] is False
    with engine.session("P") as s:
        s.plan_verify(repair=True).apply()
    assert be.copies["t0"]["held"] is True
    _hold(engine, 1, held=False)
    assert be.copies["t0"]["held"] is False and _records(engine)[1]["held"] is False


def _held_doc(tmp_path):
    engine, be = _env(tmp_path)
    _copy(engine)
    _hold(engine, 1, reason="audit")
    with engine.session("P") as s:
        return dump_state(s.state)


def test_the_hold_round_trips_and_only_a_held_record_carries_it(tmp_path):
    doc = _held_doc(tmp_path)
    rec = doc["replication_records"][0]
    assert rec["held"] is True and rec["hold_reason"] == "audit"
    state = load_state(doc)
    assert state.replication(1).held and state.replication(1).hold_reason == "audit"
    assert dump_state(state) == doc


@pytest.mark.parametrize("change, where", [
    (lambda r: r.update(held="yes"), "held"),
    (lambda r: r.update(held=1), "held"),
    (lambda r: r.update(held=False), "held"),
    (lambda r: r.pop("hold_reason"), "hold_reason"),
    (lambda r: r.pop("held"), "held"),
    (lambda r: r.update(hold_reason=["audit"]), "hold_reason"),
])
def test_a_damaged_or_partial_hold_is_refused(tmp_path, change, where):
    doc = _held_doc(tmp_path)
    change(doc["replication_records"][0])
    with pytest.raises(StateFileError) as err:
        load_state(doc)
    assert "replication_records[0]" in err.value.msg and where in err.value.msg


def test_a_hold_on_a_prepairing_record_is_refused(tmp_path):
    doc = _held_doc(tmp_path)
    doc["prepairing_records"] = [dict(version=2, target_pool="02", created="2026-11-25T00:00:00Z", pairs="A -> t1\n",
                                      held=True, hold_reason=None)]
    with pytest.raises(StateFileError) as err:
        load_state(doc)
    assert "prepairing_records[0]" in err.value.msg and "held" in err.value.msg


def test_a_sealed_file_with_a_damaged_hold_is_refused_by_the_store(tmp_path):
    engine, be = _env(tmp_path)
    _copy(engine)
    _hold(engine, 1, reason="audit")
    path = engine.store.path("P")
    raw = engine.store.read_raw("P")
    body = raw[:raw.rindex(b"# pitcopy-seal")]
    assert b"held: true" in body
    # resealed, so only the value is wrong: the loader refuses it by shape
    with open(path, "wb") as f:
        f.write(seal(body.replace(b"held: true", b"held: maybe")))
    with pytest.raises(StateFileError) as err:
        engine.store.load("P")
    assert "held" in err.value.msg


def test_lvm_hold_is_a_tag_and_read_only_on_the_simulated_host():
    """The real LVM backend's hold commands against the in-memory LVM host
    (tests/unit/lvm_host.py); the UML suite proves them on real LVM
    (tests/real/test_lvm.py)."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed
    from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import LvmCloneBackend, LvmSnapshotBackend
    from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair
    from ansible_collections.pitcopy.versions.tests.unit.lvm_host import LvmHost

    host = LvmHost()
    host.add("vg/A", data="A@1")
    host.add("vg/c", data="A@1", tags=("pitcopy_pool=P", "pitcopy_version=1", "pitcopy_source=vg/A"))
    host.add("vg/other", data="x", tags=("pitcopy_pool=Q", "pitcopy_version=1"))
    d = PoolDefinition(name="P", technology="lvm_snapshot", sources=("vg/A",), versions=1, snapshot_size="4M")
    b = LvmSnapshotBackend(host)
    pair, other = CopyPair("vg/A", "vg/c"), CopyPair("vg/A", "vg/other")
    assert [p for p, _why in b.unenforced_holds(d, 1, [pair, other])] == [pair]  # another pool's LV is not judged
    b.hold_copies(d, 1, [pair, other])
    assert "pitcopy_hold" in host.lvs["vg/c"]["tags"] and host.lvs["vg/c"]["attr"][1] == "r"
    assert "pitcopy_hold" not in host.lvs["vg/other"]["tags"]
    assert b.unenforced_holds(d, 1, [pair]) == []
    # a copy of another version is not this version's: left alone
    assert b.unenforced_holds(d, 2, [pair]) == []
    host.calls[:] = []
    b.hold_copies(d, 1, [pair])  # idempotent: only the report runs
    assert [c[0] for c in host.calls] == ["lvs"]
    with pytest.raises(CopyFailed, match="is held"):
        b.delete_copies(d, [pair])
    assert "vg/c" in host.lvs
    b.hold_copies(d, 1, [pair], held=False)
    assert "pitcopy_hold" not in host.lvs["vg/c"]["tags"] and host.lvs["vg/c"]["attr"][1] == "w"
    # a clone stays read-only when released: read-only is what a clone copy is
    c = LvmCloneBackend(host)
    dc = PoolDefinition(name="P", technology="lvm_clone", sources=("vg/A",), versions=1,
                        target_pools=(TargetPool("01", ("vg/c",)),))
    c.hold_copies(dc, 1, [pair])
    c.hold_copies(dc, 1, [pair], held=False)
    assert "pitcopy_hold" not in host.lvs["vg/c"]["tags"] and host.lvs["vg/c"]["attr"][1] == "r"
