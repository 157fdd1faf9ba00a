# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""define / remove / delete / restore / verify plans, bad input, check mode."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, NoEligibleTarget
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, Hook, TargetPool
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine
from ansible_collections.pitcopy.versions.tests.unit.plugins.module_utils.utils import (
    GIB,
    TP2,
    define_and_copy,
    env,
    good,
    snapshot_env,
)

BAD = [
    (dict(technology="nope"), "technology 'nope' is not supported; use one of: lvm_snapshot"),
    (dict(versions=0), "versions must be an integer of at least 1, got 0"),
    (dict(versions=-2), "got -2"),
    (dict(versions=True), "got True"),
    (dict(versions=1.5), "got 1.5"),
    (dict(versions="2"), "got '2'"),
    (dict(sources=()), "needs at least one source"),
    (dict(sources=("A", "A")), "source A is listed twice"),
    (dict(sources=("A", "x;rm")), "'x;rm' is not a volume name"),
    (dict(sources=("A", "x y")), "'x y' is not a volume name"),
    (dict(sources=("A", "$(id)")), "'$(id)' is not a volume name"),
    (dict(sources=("A", "vg/../etc")), "'vg/../etc' is not a volume name"),
    (dict(sources=("A", "-rf")), "'-rf' is not a volume name"),
    (dict(sources=("A", "a\nb")), "is not a volume name"),
    (dict(sources=("A", 5)), "source 5 is not a volume name"),
    (dict(sources=("A", "Z")), "source Z does not exist on this host"),
    (dict(target_pools=()), "technology lvm_clone needs target_pools"),
    (dict(target_pools=(TargetPool("01", ("a", "a")), TargetPool("02", ("c",)))),
     "target a is listed twice in target pool 01"),
    (dict(target_pools=(TargetPool("01", ("a", "b")), TargetPool("02", ("c", "a")))),
     "target a is in target pools 01 and 02"),
    (dict(target_pools=(TargetPool("01", ("a",)), TargetPool("01", ("c",)))), "target pool name 01 is used twice"),
    (dict(target_pools=(TargetPool("01", ("a", "A")), TargetPool("02", ("c",)))), "A is both a source and a target"),
    (dict(target_pools=(TargetPool("01", ("a", "b")),)), "versions 2 needs at least 2 target pools"),
    (dict(target_pools=(TargetPool("", ("a",)), TargetPool("02", ("c",)))), "needs a non-empty name"),
    (dict(target_pools=(TargetPool("01", ("a", "b;x")), TargetPool("02", ("c",)))), "'b;x' is not a volume name"),
    (dict(snapshot_size="1G"), "snapshot_size '1G' only applies to technology lvm_snapshot"),
    (dict(consistency="maybe"), "consistency 'maybe' is not accepted; use one of: auto, freeze, none"),
    (dict(pre_copy_hooks=(Hook(argv=()),)), "must have argv, a non-empty list of strings"),
    (dict(pre_copy_hooks=(Hook(argv=("sync",), timeout=0),)), "hook timeout 0"),
    (dict(name="Q"), "the definition names pool Q"),
]


@pytest.mark.parametrize("changes,message", BAD, ids=[m[:40] for _c, m in BAD])
def test_bad_definitions_change_nothing(tmp_path, changes, message):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_define(good(**changes))
    assert message in exc.value.msg
    assert engine.pool_names() == []
    assert be.calls == []


def test_snapshot_technology_refuses_target_pools_and_checks_source_kind(tmp_path):
    be, engine = env(tmp_path, "zfs_snapshot")
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="names its targets itself"):
            s.plan_define(good(technology="zfs_snapshot"))
        be.add_volume("pool/snap", kind="snapshot")
        with pytest.raises(InvalidInput, match="source pool/snap is of kind snapshot; technology zfs_snapshot"):
            s.plan_define(good(technology="zfs_snapshot", target_pools=(), sources=("A", "pool/snap")))


def test_foreign_target_refused_at_define(tmp_path):
    be, engine = env(tmp_path)
    be.update_volume("c", foreign_data=True)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="target c of target pool 02 holds data that copy pool P does not own"):
            s.plan_define(good())


def test_define_is_idempotent_and_check_mode_writes_nothing(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        plan = s.plan_define(good())
        assert plan.changed and plan.before == {} and plan.after["sources"] == ["A", "B"]
        assert plan.result["pool"]["target_pools"] == [{"name": "01", "volumes": ["a", "b"], "host": None},
                                                       {"name": "02", "volumes": ["c", "d"], "host": None}]
    assert engine.pool_names() == []  # not applied: nothing written
    with engine.session("P") as s:
        s.plan_define(good()).apply()
    with engine.session("P") as s:
        assert not s.plan_define(good()).changed
        assert s.plan_define(good(consistency="none")).changed


def _copies(engine, n):
    with engine.session("P") as s:
        for dummy in range(n):
            s.plan_copy().apply()


def test_redefinition_refusals(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
    _copies(engine, 2)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="made with technology lvm_clone; changing it to zfs_send"):
            s.plan_define(good(technology="zfs_send"))
        with pytest.raises(InvalidInput, match=r"versions 1 is fewer than the 2 versions .* delete version\(s\) 1 "):
            s.plan_define(good(versions=1))
        with pytest.raises(InvalidInput, match="target pool 02 holds version 2"):
            s.plan_define(good(target_pools=(TargetPool("01", ("a", "b")), TargetPool("03", ("e", "f")))))
        with pytest.raises(InvalidInput, match="target a of target pool 01 holds the copy of A in version 1"):
            s.plan_define(good(target_pools=(TargetPool("01", ("b", "x")), TargetPool("02", ("c", "d")))))
        # growing is fine, and so is a new target pool
        be.add_volume("e")
        be.add_volume("f")
        plan = s.plan_define(good(versions=3, target_pools=TP2 + (TargetPool("03", ("e", "f")),)))
        assert plan.changed
        assert plan.result["next_version"] == {"number": 3, "target_pool": "03", "replaces": None, "held": False,
                                               "hold_reason": None}
        assert s.plan_define(good()).result["next_version"] == {"number": 3, "target_pool": "01", "replaces": 1,
                                                                "held": False, "hold_reason": None}
        plan.apply()
        r = s.plan_copy().apply()
        assert (r["version"]["number"], r["version"]["target_pool"], r["replaced_version"]) == (3, "03", None)
        assert [x.version for x in s.state.replication_records] == [1, 2, 3]


def test_retention_when_versions_is_below_target_pools(tmp_path):
    be, engine = env(tmp_path)
    be.add_volume("e")
    be.add_volume("f")
    tps = TP2 + (TargetPool("03", ("e", "f")),)
    with engine.session("P") as s:
        s.plan_define(good(versions=2, target_pools=tps)).apply()
        s.plan_copy().apply()
        s.plan_copy().apply()
        r = s.plan_copy().apply()
        assert r["replaced_version"] is None and r["deleted_versions"] == [1]
        assert [x.version for x in s.state.replication_records] == [2, 3]
        assert sorted(c.version for c in be.list_copies("P")) == [2, 2, 3, 3]
        r = s.plan_copy().apply()  # V4 goes to 01, empty by now
        assert r["version"]["target_pool"] == "01" and r["deleted_versions"] == [2]


def test_remove_never_silently_deletes_copies(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
    _copies(engine, 2)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="still has copy versions 1, 2.*remove_copies: true"):
            s.plan_remove()
        plan = s.plan_remove(remove_copies=True)
        assert plan.changed and plan.result["removed_versions"] == [1, 2]
    assert len(be.list_copies("P")) == 4  # check mode
    with engine.session("P") as s:
        s.plan_remove(remove_copies=True).apply()
        assert s.state is None
    assert be.list_copies("P") == []
    assert engine.pool_names() == []
    assert all(v.owner is None for v in be.volumes.values())


def test_remove_pool_without_versions(tmp_path):
    _be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
        s.plan_prepair().apply()
        s.plan_remove().apply()
    assert engine.pool_names() == []


def test_delete_version(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
    _copies(engine, 2)
    with engine.session("P") as s:
        plan = s.plan_delete(1)
        assert plan.changed and plan.result["version"]["number"] == 1
        assert len(be.list_copies("P")) == 4
        plan.apply()
        assert [r.version for r in s.state.replication_records] == [2]
        assert not s.plan_delete(1).changed
        with pytest.raises(InvalidInput, match="positive integer"):
            s.plan_delete(0)
    assert sorted(c.target for c in be.list_copies("P")) == ["c", "d"]
    # a target that lost our mark (someone else's data now) is left alone
    with engine.session("P") as s:
        be.copies["c"]["pool"] = "other"
        s.plan_delete(2).apply()
    assert be.copies["c"]["pool"] == "other"


def test_restore(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        define_and_copy(s, be)
        be.set_data("A", "A2")
        be.set_data("B", "B2")
        with pytest.raises(InvalidInput, match="no version 7; it keeps versions: 1"):
            s.plan_restore(7)
        with pytest.raises(InvalidInput, match="Z is not a source of version 1 of copy pool P; choose from: A, B"):
            s.plan_restore(1, volumes=["Z"])
        plan = s.plan_restore(1, volumes=["B"])
        assert plan.changed and plan.result["restored"] == ["B"]
        assert be.data["B"] == "B2"
        plan.apply()
        assert (be.data["A"], be.data["B"]) == ("A2", "B1")
        s.plan_restore(1).apply()
        assert be.data["A"] == "A1"


def test_restore_refuses_invalid_version(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
        s.plan_copy().apply()
        be.invalidate("a")
        s.plan_verify(repair=True).apply()
        assert s.state.replication(1).status == "invalid"
        with pytest.raises(InvalidInput, match="version 1 of copy pool P is invalid"):
            s.plan_restore(1)


def test_drop_prepairing(tmp_path):
    _be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
        assert not s.plan_drop_prepairing().changed
        s.plan_prepair(versions=2).apply()
        plan = s.plan_drop_prepairing()
        assert plan.changed and [r["version"] for r in plan.result["removed_records"]] == [1, 2]
        plan.apply()
        assert s.state.prepairing_records == ()


def test_prepair_checks_capacity_and_refuses_unpaired(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
        be.resize("d", GIB // 2)
        with pytest.raises(NoEligibleTarget) as exc:
            s.plan_prepair(versions=2)
        assert exc.value.details["unpaired"] == [{
            "source": "B", "target_pool": "02",
            "reasons": ["c: already chosen for A in this record",
                        "d: 536870912 bytes is smaller than the source's 1073741824 bytes"]}]
        assert s.state.prepairing_records == ()


def _state_bytes(engine):
    with open(engine.store.path("P"), "rb") as f:
        return f.read()


def test_check_mode_of_every_plan_touches_nothing(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
        s.plan_copy().apply()
        s.plan_copy().apply()
    # written since the copies: the restore's plan has something to restore
    # (a source equal to its copy is not restored, and that plan changes nothing)
    be.set_data("A", "A written later")
    before = _state_bytes(engine)
    calls = list(be.calls)
    copies = dict(be.copies)
    be.add_volume("C")
    with engine.session("P") as s:
        plans = [
            s.plan_define(good(sources=("A", "B", "C"), target_pools=(
                TargetPool("01", ("a", "b")), TargetPool("02", ("c", "d"))))),
            s.plan_prepair(versions=2, allow_unpaired=True),
            s.plan_copy(),
            s.plan_delete(1),
            s.plan_restore(2),
            s.plan_verify(repair=True),
            s.plan_remove(remove_copies=True),
        ]
        assert [p.changed for p in plans] == [True, True, True, True, True, False, True]
        assert all(isinstance(p.before, dict) and isinstance(p.after, dict) for p in plans)
    assert _state_bytes(engine) == before
    assert be.calls == calls
    assert be.copies == copies


def test_verify_finds_and_repairs(tmp_path):
    be, engine = env(tmp_path)
    be.add_volume("C")
    be.add_volume("e")
    with engine.session("P") as s:
        s.plan_define(good(sources=("A", "B", "C"), target_pools=(
            TargetPool("01", ("a", "b", "e")), TargetPool("02", ("c", "d"))))).apply()
        s.plan_copy().apply()
        assert s.plan_verify().result == {"consistent": True, "findings": []}
        s.plan_prepair(versions=1, allow_unpaired=True).apply()
        assert [(p.source, p.target) for p in s.state.prepairing(2).pairs] == [("A", "c"), ("B", "d")]
    # behind our back: a copy deleted, one invalid, an untracked copy of ours,
    # a pre-paired target gone and another now holding foreign data
    del be.copies["a"]
    be.invalidate("b")
    be.copies["zz"] = {"pool": "P", "source": "A", "version": 9, "staged": False, "valid": True, "data": None}
    be.remove_volume("c")
    be.update_volume("d", foreign_data=True)
    with engine.session("P") as s:
        plan = s.plan_verify()
        assert not plan.changed
        found = [(f["record"], f["version"], f["source"], f["target"], f["problem"]) for f in plan.result["findings"]]
        assert found == [
            ("replication", 1, "A", "a", "copy_missing"),
            ("replication", 1, "B", "b", "copy_invalid"),
            ("prepairing", 2, "A", "c", "target_missing"),
            ("prepairing", 2, "B", "d", "target_incompatible"),
            ("replication", 9, "A", "zz", "untracked_copy"),
        ]
        assert plan.result["consistent"] is False
        assert plan.result["findings"][-1]["action"].startswith("left for a human")
        repaired = s.plan_verify(repair=True)
        assert repaired.changed
        result = repaired.apply()
        assert result["findings"][0]["action"] == "pair dropped from the record; version marked incomplete"
        rr = s.state.replication(1)
        assert rr.status == "invalid"  # an invalid copy outweighs incomplete
        assert [(p.source, p.target) for p in rr.pairs] == [("B", "b"), ("C", "e")]
        ppr = s.state.prepairing(2)
        assert ppr.pairs == ()  # no eligible target left in 02
    assert "zz" in be.copies  # never destroyed what no record owns
    with engine.session("P") as s:
        left = [f["problem"] for f in s.plan_verify().result["findings"]]
        assert left == ["copy_invalid", "untracked_copy"]


def test_verify_drops_record_without_any_copy_and_flags_missing_source(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
        s.plan_copy().apply()
        s.plan_copy().apply()
    del be.copies["a"]
    del be.copies["b"]
    be.remove_volume("B")
    with engine.session("P") as s:
        findings = s.plan_verify(repair=True).apply()["findings"]
        problems = [(f["version"], f["source"], f["problem"]) for f in findings]
        assert (1, "A", "copy_missing") in problems and (2, "B", "source_missing") in problems
        assert [r.version for r in s.state.replication_records] == [2]
        assert s.state.replication(2).status == "valid"


def test_interrupted_copy_in_phase_copying_is_rolled_back(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
        s.plan_copy().apply()

    def crash(step):
        if step == "create:B":
            raise KeyboardInterrupt  # as if killed after A's copy was staged

    be.step = crash
    with engine.session("P") as s:
        with pytest.raises(KeyboardInterrupt):
            s.plan_copy().apply()
    be.step = None
    assert [c.target for c in be.list_copies("P") if c.staged] == ["c~staged-v2"]
    with engine.session("P") as s:
        assert s.state.journal.phase == "copying"
        findings = s.plan_verify().result["findings"]
        assert [f["problem"] for f in findings] == ["interrupted_copy"]
        assert "roll" in findings[0]["action"]
        s.plan_verify(repair=True).apply()
        assert s.state.journal is None and s.state.last_version == 1
        r = s.plan_copy().apply()
        assert r["version"]["number"] == 2
    assert not [c for c in be.list_copies("P") if c.staged]


def test_copy_window_factory_gets_definition_and_runner(tmp_path):
    seen = []
    be = MemoryBackend("lvm_clone")
    be.runner = object()
    for name in ("A", "B", "a", "b", "c", "d"):
        be.add_volume(name)

    from ansible_collections.pitcopy.versions.tests.unit.memory_backend import SimpleWindow

    def factory(definition, runner):
        seen.append((definition.name, runner))
        return SimpleWindow(definition, runner)

    engine = make_engine(tmp_path / "state", be, window_factory=factory)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
        s.plan_copy().apply()
    assert seen == [("P", be.runner)]
    assert os.stat(engine.store.path("P")).st_mode & 0o777 == 0o600
    assert CopyPair("A", "a") in engine.store.load("P").replication_records[0].pairs


def test_interrupted_commit_with_a_staged_copy_gone_keeps_the_complete_copies(tmp_path):
    """Issue 12, item 6: in phase committing the repair rolls forward; a
    staged copy lost meanwhile is a finding, the complete copies stay (this
    test asserted the old roll back, which deleted them)."""
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
        s.plan_copy().apply()

    def crash(step):
        if step == "promote":
            raise KeyboardInterrupt

    be.step = crash
    with engine.session("P") as s:
        with pytest.raises(KeyboardInterrupt):
            s.plan_copy().apply()
    be.step = None
    del be.copies["d~staged-v2"]  # lost behind our back
    with engine.session("P") as s:
        assert s.state.journal.phase == "committing"
        result = s.plan_verify(repair=True).apply()
        assert result["findings"][0]["problem"] == "interrupted_copy"
        assert result["findings"][0]["action"].startswith("finished the interrupted copy of version 2 (promoted 1 of")
        assert [(f["problem"], f["source"]) for f in result["findings"][1:]] == [("staged_copy_missing", "B")]
        assert s.state.journal is None and [r.version for r in s.state.replication_records] == [1, 2]
        v2 = s.state.replication(2)
        assert v2.status == "incomplete" and [p.source for p in v2.pairs] == ["A"]
        assert s.plan_verify().result["consistent"] is True
    assert sorted(be.copies) == ["a", "b", "c"]


def test_staged_copy_without_journal_is_left_for_a_human(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
    be.copies["a~staged-v7"] = {"pool": "P", "source": "A", "version": 7, "staged": True, "valid": True,
                                "data": None}
    with engine.session("P") as s:
        plan = s.plan_verify(repair=True)
        assert not plan.changed
        plan.apply()
        f = plan.result["findings"]
        assert [(x["problem"], x["target"]) for x in f] == [("untracked_copy", "a~staged-v7")]
        assert f[0]["action"].startswith("left for a human")
    assert "a~staged-v7" in be.copies


def test_failing_pre_copy_hook_leaves_records_and_journal_clean(tmp_path):
    from ansible_collections.pitcopy.versions.plugins.module_utils._errors import HookFailed

    class FailingWindow(object):
        window_ms = 0.0

        def __init__(self, definition, runner):
            pass

        def open(self, freeze=()):
            raise HookFailed("pre-copy hook ['false'] failed with exit status 1")

    be = MemoryBackend("lvm_clone")
    for name in ("A", "B", "a", "b", "c", "d"):
        be.add_volume(name)
    engine = make_engine(tmp_path / "state", be, window_factory=FailingWindow)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
        with pytest.raises(HookFailed):
            s.plan_copy().apply()
    with engine.session("P") as s:
        assert s.state.journal is None and s.state.last_version == 0
    assert be.copies == {}


def test_copy_refused_when_a_source_vanished(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
    be.remove_volume("B")
    with engine.session("P") as s:
        with pytest.raises(NoEligibleTarget) as exc:
            s.plan_copy()
        assert "B (target pool 01: source B does not exist on this host)" in exc.value.msg
        assert "nothing was copied" in exc.value.msg


def test_backend_error_while_committing_keeps_the_journal_and_says_what_to_do(tmp_path):
    from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError

    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
        s.plan_copy().apply()

    def broken(step):
        if step == "promote":
            raise CommandError("lvrename failed with exit status 5: busy", argv=["lvrename"], rc=5, stderr="busy")

    be.step = broken
    with engine.session("P") as s:
        with pytest.raises(CommandError) as exc:
            s.plan_copy().apply()
        assert "journaled in phase committing; run pitcopy.versions.verify_records with repair: true" in exc.value.msg
        assert exc.value.result()["rc"] == 5
    be.step = None
    with engine.session("P") as s:
        s.plan_verify(repair=True).apply()
        assert [r.version for r in s.state.replication_records] == [1, 2]


def test_unexpected_backend_error_while_copying_is_cleaned_up(tmp_path):
    from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError

    be, engine = env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(good()).apply()

    def broken(step):
        if step == "create:B":
            raise CommandError("lvcreate failed with exit status 5: odd", argv=["lvcreate"], rc=5)

    be.step = broken
    with engine.session("P") as s:
        with pytest.raises(CommandError):
            s.plan_copy().apply()
        assert s.state.journal is None and s.state.last_version == 0
    assert be.copies == {}


def test_verify_flags_a_foreign_volume_on_an_implied_name(tmp_path):
    be, engine, definition = snapshot_env(tmp_path, "zfs_snapshot", ("tank/A", "tank/B"), 2)
    with engine.session("P") as s:
        s.plan_define(definition).apply()
        s.plan_prepair(versions=2).apply()
        assert s.plan_verify().result["consistent"] is True
        be.add_volume("tank/B@P.02", foreign_data=True)
        plan = s.plan_verify()
        assert [(f["version"], f["target"], f["problem"]) for f in plan.result["findings"]] == [
            (2, "tank/B@P.02", "target_incompatible")]
        result = s.plan_verify(repair=True).apply()
        assert result["findings"][0]["action"] == (
            "pair dropped, no eligible target left (tank/B@P.02: exists and is not a copy of pool P; it is never "
            "overwritten); add or free a target and run pitcopy.versions.prepair_record")
        assert [p.source for p in s.state.prepairing(2).pairs] == ["tank/A"]
        with pytest.raises(NoEligibleTarget):
            s.plan_prepair(versions=2)
