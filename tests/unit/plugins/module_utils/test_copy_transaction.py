# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one copy transaction (Fig. 6, step 606: ``_engine.take_copies``), the
one next-state computation (``_engine.next_state``), and the failure
semantics of ``lvm_clone``, which writes onto its targets in place."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._backend import CopyPlan
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import next_state, take_copies
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CommandError,
    CopyFailed,
    HookFailed,
    InvalidInput,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import (
    TAG_POOL,
    TAG_STAGED,
    TAG_TMP,
    TAG_VERSION,
    LvmCloneBackend,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    RECORD_PREPAIRING,
    RECORD_REPLICATION,
    CopyPair,
    PoolDefinition,
    PoolState,
    Record,
    TargetPool,
)
from ansible_collections.pitcopy.versions.tests.unit.lvm_host import LvmHost
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, SimpleWindow, make_engine

# --- the transaction over a backend's steps ------------------------------------------


class StepBackend(MemoryBackend):
    """The memory backend with a failure injected at one step, and a log of
    the steps in the order the transaction runs them."""

    def __init__(self, fail_at=None, undo_fails=False):
        super(StepBackend, self).__init__("btrfs_send")
        self.fail_at = fail_at
        self.undo_fails = undo_fails
        self.steps = []
        for n in ("A", "B"):
            self.add_volume(n)

    def _at(self, name, plan=None):
        self.steps.append(name)
        if self.fail_at == name:
            raise CopyFailed("%s failed" % name, source="A", target="a")

    def plan_copies(self, definition, version, pairs):
        self._at("plan_copies")
        return super(StepBackend, self).plan_copies(definition, version, pairs)

    def prepare(self, plan):
        self._at("prepare")

    def take_point_in_time(self, plan):
        super(StepBackend, self).take_point_in_time(plan)
        plan.temporaries = [CopyPair(p.source, p.source + "@tmp") for p in plan.pairs]
        self._at("take_point_in_time")

    def transfer(self, plan):
        self._at("transfer")
        super(StepBackend, self).transfer(plan)

    def release(self, plan):
        self.steps.append("release")
        self.released = list(plan.temporaries)

    def undo(self, plan):
        self.steps.append("undo")
        if self.undo_fails:
            raise CommandError("memremove failed with exit status 1: busy", argv=["memremove"], rc=1)
        super(StepBackend, self).undo(plan)


DEF = PoolDefinition(name="P", technology="btrfs_send", sources=("A", "B"), versions=1,
                     target_pools=(TargetPool("01", ("a", "b")),))
PAIRS = [CopyPair("A", "a"), CopyPair("B", "b")]


def test_steps_run_in_the_figures_order_and_the_outcome_comes_from_the_window():
    be = StepBackend()
    window = SimpleWindow()
    out = take_copies(be, DEF, 1, PAIRS, window)
    assert be.steps == ["plan_copies", "prepare", "take_point_in_time", "transfer", "release"]
    assert window.opened == 1
    assert out.window_ms == 1.5
    assert [(s.source, s.target) for s in out.staged] == [("A", "a~staged-v1"), ("B", "b~staged-v1")]
    assert all(s.identity for s in out.staged)
    assert be.released == [CopyPair("A", "A@tmp"), CopyPair("B", "B@tmp")]


def test_without_a_window_the_copy_window_is_measured():
    out = take_copies(StepBackend(), DEF, 1, PAIRS)
    assert out.window_ms > 0.0 and out.hooks == []


@pytest.mark.parametrize("step", ["prepare", "take_point_in_time", "transfer"])
def test_a_failure_at_any_step_undoes_all_and_releases(step):
    be = StepBackend(fail_at=step)
    with pytest.raises(CopyFailed) as exc:
        take_copies(be, DEF, 1, PAIRS, SimpleWindow())
    assert exc.value.undone is True
    assert be.steps[-2:] == ["release", "undo"]
    assert not be.list_copies("P"), "a failed copy leaves nothing"


def test_a_failing_plan_touches_nothing():
    be = StepBackend(fail_at="plan_copies")
    with pytest.raises(CopyFailed) as exc:
        take_copies(be, DEF, 1, PAIRS, SimpleWindow())
    assert exc.value.undone is True and be.steps == ["plan_copies"]


def test_a_failing_hook_undoes_what_the_window_made():
    class HookWindow(SimpleWindow):
        def open(self, freeze=()):
            ctx = SimpleWindow.open(self, freeze)
            outer = self

            class _Ctx:
                def __enter__(self):
                    return ctx.__enter__()

                def __exit__(self, *exc):
                    ctx.__exit__(*exc)
                    if exc[0] is None:
                        raise HookFailed("post-copy hook [\"false\"] exited 1", hook={"argv": ["false"]})
                    return False

            outer.hooks = [{"argv": ["false"], "ok": False}]
            return _Ctx()

    be = StepBackend()
    with pytest.raises(HookFailed) as exc:
        take_copies(be, DEF, 1, PAIRS, HookWindow())
    assert exc.value.undone is True
    assert "transfer" not in be.steps and be.steps[-2:] == ["release", "undo"]
    assert not be.list_copies("P")


def test_an_interrupt_is_left_to_the_journal_like_a_kill():
    be = StepBackend()

    def interrupt(name):
        if name == "create:B":
            raise KeyboardInterrupt

    be.step = interrupt
    with pytest.raises(KeyboardInterrupt):
        take_copies(be, DEF, 1, PAIRS, SimpleWindow())
    assert "undo" not in be.steps
    assert [c.target for c in be.list_copies("P") if c.staged] == ["a~staged-v1"]


def test_a_failing_undo_is_reported_and_the_engine_keeps_the_journal(tmp_path):
    be = StepBackend(fail_at="transfer", undo_fails=True)
    with pytest.raises(CopyFailed) as exc:
        take_copies(be, DEF, 1, PAIRS, SimpleWindow())
    assert exc.value.undone is False
    assert "transfer failed; removing what was made for this version failed too" in exc.value.msg
    assert "busy" in exc.value.msg
    # through the engine: the journal stays, and verify_records repair rolls it back
    be = StepBackend()
    for n in ("a", "b"):
        be.add_volume(n)
    engine = make_engine(tmp_path / "state", be)
    with engine.session("P") as s:
        s.plan_define(DEF).apply()
    be.fail_at, be.undo_fails = "transfer", True
    with engine.session("P") as s:
        with pytest.raises(CopyFailed) as exc:
            s.plan_copy().apply()
        assert "journaled in phase copying" in exc.value.msg
        assert s.state.journal is not None and s.state.journal.version == 1
    be.fail_at, be.undo_fails = None, False
    with engine.session("P") as s:
        findings = s.plan_verify(repair=True).apply()["findings"]
        assert [f["problem"] for f in findings] == ["interrupted_copy"]
        assert s.state.journal is None and s.state.last_version == 0
    assert not be.list_copies("P")


def test_the_plan_shows_the_copies_without_touching_anything():
    be = MemoryBackend("lvm_clone")
    plan = be.plan_copies(DEF, 3, PAIRS)
    assert isinstance(plan, CopyPlan) and be.calls == []
    shown = plan.as_dict()
    assert shown["version"] == 3
    assert shown["staging"] == [{"source": "A", "target": "a~staged-v3"}, {"source": "B", "target": "b~staged-v3"}]
    assert shown["commands"] == [["memcopy", "A", "a~staged-v3"], ["memcopy", "B", "b~staged-v3"]]
    assert shown["marks"] == {"pool": "P", "version": 3}


def test_create_copies_is_the_same_transaction():
    be = StepBackend(fail_at="transfer")
    with pytest.raises(CopyFailed):
        be.create_copies(DEF, 1, PAIRS, SimpleWindow())
    assert be.steps[-2:] == ["release", "undo"] and not be.list_copies("P")


# --- one next state: plan, diff and apply agree ------------------------------------------


def _without_times(pool):
    """pool_dict without what only the clock decides (when a record was
    written) and what only the storage knows (identities)."""
    out = dict(pool)
    out.pop("newest_valid_age", None)  # info's only: the clock decides it
    out.pop("next_version", None)  # info's only: derived from the records, not one of them
    for key in ("replication_records", "prepairing_records"):
        out[key] = [dict(r, created=None, pairs=[dict(p, identity=None) for p in r["pairs"]]) for r in pool[key]]
    return out


@pytest.mark.parametrize("technology", ["lvm_clone", "lvm_thin"])
def test_plan_diff_and_apply_agree_over_a_rotation(tmp_path, technology):
    be = MemoryBackend(technology)
    for n in ("A", "B", "a", "b", "c", "d", "e", "f"):
        be.add_volume(n)
    listed = technology == "lvm_clone"
    tps = (TargetPool("01", ("a", "b")), TargetPool("02", ("c", "d")), TargetPool("03", ("e", "f"))) if listed \
        else ()
    # lvm_clone: 3 target pools but 2 versions kept, so retention drops a
    # version that no new copy replaces
    d = PoolDefinition(name="P", technology=technology, sources=("A", "B"), versions=2 if listed else 3,
                       target_pools=tps)
    engine = make_engine(tmp_path / "state", be)
    with engine.session("P") as s:
        s.plan_define(d).apply()
    for i in range(7):
        with engine.session("P") as s:
            if i == 2:
                s.plan_prepair(versions=2).apply()
            if i == 4:
                s.plan_delete(min(r.version for r in s.state.replication_records)).apply()
            plan = s.plan_copy()
            after = plan.after
            plan.apply()
            assert _without_times(s.info()) == _without_times(after), i
            assert s.info()["last_version"] == i + 1


def test_plan_and_apply_agree_when_the_records_went_back(tmp_path):
    be = MemoryBackend("lvm_clone")
    for n in ("A", "a", "b"):
        be.add_volume(n)
    d = PoolDefinition(name="P", technology="lvm_clone", sources=("A",), versions=2,
                       target_pools=(TargetPool("01", ("a",)), TargetPool("02", ("b",))))
    engine = make_engine(tmp_path / "state", be)
    with engine.session("P") as s:
        s.plan_define(d).apply()
        s.plan_copy().apply()
        old = s.state
        s.plan_copy().apply()
    engine.store.save(old)  # an older state file put back: last_version 1, copies up to 2
    with engine.session("P") as s:
        plan = s.plan_copy()
        assert plan.after["last_version"] == 3
        plan.apply()
        assert _without_times(s.info()) == _without_times(plan.after)


def _rec(v, tp="01", kind=RECORD_REPLICATION):
    return Record(kind, v, tp, "2026-01-0%dT00:00:00Z" % v, (CopyPair("A", "a%d" % v),))


def test_next_state_never_moves_last_version_back():
    d = PoolDefinition(name="P", technology="lvm_snapshot", sources=("A",), versions=2)
    state = PoolState(definition=d, replication_records=(_rec(1), _rec(2, "02")),
                      prepairing_records=(_rec(3, kind=RECORD_PREPAIRING), _rec(4, "02", RECORD_PREPAIRING)),
                      last_version=5)
    new = next_state(state, _rec(3), 1, [])
    assert new.last_version == 5  # a repair finishing version 3 after the records knew 5
    assert [r.version for r in new.replication_records] == [2, 3]
    assert [r.version for r in new.prepairing_records] == [4]
    assert new.journal is None
    fresh = next_state(PoolState(definition=d), _rec(1), None, [])
    assert fresh.last_version == 1 and [r.version for r in fresh.replication_records] == [1]
    learned = next_state(state, _rec(3), 1, [_rec(2, "02")], identities={3: {"a3": "uuid-3"}})
    assert [(r.version, r.pairs[0].identity) for r in learned.replication_records] == [(3, "uuid-3")]


# --- lvm_clone writes in place: its failure semantics ------------------------------------


def _clone_env(tmp_path, monkeypatch):
    host = LvmHost()
    for s in ("A", "B"):
        host.add("vg/%s" % s, data="vg/%s@1" % s)
    for t in ("a", "b", "c", "d"):
        host.add("vg/%s" % t)
    host.patch(monkeypatch)
    be = LvmCloneBackend(host)
    d = PoolDefinition(name="P", technology="lvm_clone", sources=("vg/A", "vg/B"), versions=2,
                       target_pools=(TargetPool("01", ("vg/a", "vg/b")), TargetPool("02", ("vg/c", "vg/d"))))
    engine = make_engine(tmp_path / "state", be)
    with engine.session("P") as s:
        s.plan_define(d).apply()
        s.plan_copy().apply()  # version 1 on vg/a, vg/b
        host.data["vg/A"], host.data["vg/B"] = "vg/A@2", "vg/B@2"
        s.plan_copy().apply()  # version 2 on vg/c, vg/d
    host.data["vg/A"], host.data["vg/B"] = "vg/A@3", "vg/B@3"
    return host, be, engine


def test_clone_failure_loses_the_replaced_version_on_the_targets_written(tmp_path, monkeypatch):
    host, be, engine = _clone_env(tmp_path, monkeypatch)
    assert host.data["vg/a"] == "vg/A@1" and _lvm_version(host, "vg/a") == "1"
    v2 = dict((t, (host.tags(t), host.data[t])) for t in ("vg/c", "vg/d"))
    host.fail_copy_to = {"vg/b"}  # version 3 replaces version 1: vg/a is written, vg/b fails half way
    with engine.session("P") as s:
        with pytest.raises(CopyFailed) as exc:
            s.plan_copy().apply()
        msg = exc.value.msg
        assert "failed at vg/B -> vg/b" in msg and "released (vg/a, vg/b)" in msg
        assert "the copies they held of the version they replace are lost" in msg
        # the records stay at the previous versions; no journal is left
        assert s.state.journal is None and s.state.last_version == 2
        assert [r.version for r in s.state.replication_records] == [1, 2]
    # both targets written for version 3 are released: no version, no staged
    # mark, writable again; they hold no copy anyone could take for version 1
    for t in ("vg/a", "vg/b"):
        tags = host.tags(t)
        assert TAG_POOL + "P" in tags, "still the pool's target"
        assert not [x for x in tags if x.startswith(TAG_VERSION)] and TAG_STAGED not in tags, tags
        assert host.writable(t)
    assert host.data["vg/a"] == "vg/A@3" and host.data["vg/b"] == "half of vg/B@3"
    # no temporary snapshot is left
    assert not [n for n in host.lvs if TAG_TMP in host.tags(n)]
    # version 2, on the other target pool, is untouched
    assert dict((t, (host.tags(t), host.data[t])) for t in ("vg/c", "vg/d")) == v2
    with engine.session("P") as s:
        # version 1 cannot be restored from what is left of it
        with pytest.raises(InvalidInput) as exc:
            s.plan_restore(1).apply()
        assert "holds no copy" in exc.value.msg or "holds version" in exc.value.msg
        assert host.data["vg/A"] == "vg/A@3"
        # verify_records names the loss; repair drops version 1's record
        findings = s.plan_verify().result["findings"]
        assert sorted((f["version"], f["target"], f["problem"]) for f in findings) == [
            (1, "vg/a", "copy_missing"), (1, "vg/b", "copy_missing")]
        s.plan_verify(repair=True).apply()
        assert [r.version for r in s.state.replication_records] == [2]
    # and the pool goes on: the next copy is version 3 again, onto the released targets
    host.fail_copy_to = set()
    with engine.session("P") as s:
        out = s.plan_copy().apply()
    assert out["version"]["number"] == 3 and out["version"]["target_pool"] == "01"
    assert host.data["vg/a"] == "vg/A@3" and host.data["vg/b"] == "vg/B@3"
    assert _lvm_version(host, "vg/b") == "3" and not host.writable("vg/b")


def test_clone_failure_before_any_write_keeps_the_replaced_version(tmp_path, monkeypatch):
    host, be, engine = _clone_env(tmp_path, monkeypatch)
    before = dict((t, (host.tags(t), host.data[t])) for t in ("vg/a", "vg/b"))
    # a temporary snapshot cannot be made: nothing was written
    host.lvs["vg/A-pctmp-v3"] = {"attr": list("-wi-a-----"), "size": 1, "tags": [], "origin": "", "uuid": "x"}
    with engine.session("P") as s:
        with pytest.raises(CopyFailed) as exc:
            s.plan_copy().apply()
        assert "without this copy pool's tag" in exc.value.msg
        assert [r.version for r in s.state.replication_records] == [1, 2] and s.state.journal is None
        assert s.plan_verify().result == {"consistent": True, "findings": []}
    assert dict((t, (host.tags(t), host.data[t])) for t in ("vg/a", "vg/b")) == before


def _lvm_version(host, name):
    for t in host.tags(name):
        if t.startswith(TAG_VERSION):
            return t[len(TAG_VERSION):]
    return None


def _clone_pool(tmp_path, monkeypatch, n):
    """An lvm_clone pool of ``n`` sources over two target pools, copied
    twice: its next copy replaces version 1 on marked, read-only targets;
    the sources hold "<source>@3" for it."""
    host = LvmHost(vg_size=4096 * 1024 * 1024)
    sources = tuple("vg/S%02d" % i for i in range(n))
    for s in sources:
        host.add(s, data="%s@1" % s)
    tps = tuple(TargetPool(t, tuple("vg/%s_%02d" % (t, i) for i in range(n))) for t in ("t1", "t2"))
    for tp in tps:
        for v in tp.volumes:
            host.add(v)
    host.patch(monkeypatch)
    engine = make_engine(tmp_path / ("state%d" % n), LvmCloneBackend(host))
    with engine.session("P") as s:
        s.plan_define(PoolDefinition(name="P", technology="lvm_clone", sources=sources, versions=2,
                                     target_pools=tps)).apply()
        s.plan_copy().apply()
        s.plan_copy().apply()
    for s in sources:
        host.data[s] = "%s@3" % s
    return host, engine, sources


def test_clone_copy_runs_as_many_lvm_processes_for_any_number_of_pairs(tmp_path, monkeypatch):
    """Issue 15: an lvm process costs more than a small block copy, so the
    marks, the seals and the removal of the temporary snapshots are one
    ``lvm`` shell each, whatever the number of pairs; what they did is read
    back from one report each."""
    seen = {}
    for n in (1, 2, 8, 32):
        host, engine, sources = _clone_pool(tmp_path, monkeypatch, n)
        del host.calls[:]
        with engine.session("P") as s:
            assert s.plan_copy().apply()["version"]["number"] == 3
        seen[n] = [c[0] for c in host.calls]
        for i, s in enumerate(sources):
            t = "vg/t1_%02d" % i
            assert host.data[t] == "%s@3" % s and _lvm_version(host, t) == "3" and not host.writable(t)
            assert TAG_STAGED not in host.tags(t)
        assert not [x for x in host.lvs if TAG_TMP in host.tags(x)]
    # the window's lvcreates, the marks, the seals with the removals, the promotion
    assert seen[1].count("lvm") == 4 and set(seen[1]) == {"lvm", "lvs"}, seen[1]
    assert seen[2] == seen[1] and seen[8] == seen[1] and seen[32] == seen[1]


def test_clone_failure_when_a_target_cannot_be_marked_keeps_the_replaced_version(tmp_path, monkeypatch):
    """The one lvm shell that marks every target carries on past a failing
    lvchange: the report after it finds the target that is not marked
    before any block is written, so the targets get their marks back and
    keep the version they hold (one more lvm process); the copy fails
    naming that target and what lvm said, and the records stay consistent."""
    host, engine, sources = _clone_pool(tmp_path, monkeypatch, 3)
    before = dict((t, (sorted(host.tags(t)), host.data[t], host.writable(t))) for t in host.lvs)
    host.fail_change = {"vg/t1_01"}
    with engine.session("P") as s:
        with pytest.raises(CopyFailed) as exc:
            s.plan_copy().apply()
        msg = exc.value.msg
        assert "failed at vg/S01 -> vg/t1_01: vg/t1_01 was not marked as this version's staged copy" in msg
        assert msg.count("Failed to update logical volume vg/t1_01") == 1, msg
        assert "no target was written: they keep the version they hold" in msg
        assert s.state.journal is None and [r.version for r in s.state.replication_records] == [1, 2]
        assert s.plan_verify().result == {"consistent": True, "findings": []}
    after = dict((t, (sorted(host.tags(t)), host.data[t], host.writable(t))) for t in host.lvs
                 if not t.startswith("vg/S"))
    assert after == dict((t, v) for t, v in before.items() if not t.startswith("vg/S"))
    # version 1 is still there to restore, from every target
    host.fail_change = set()
    with engine.session("P") as s:
        assert sorted(s.plan_restore(1).apply()["restored"]) == list(sources)
    assert [host.data[x] for x in sources] == ["vg/S00@1", "vg/S01@1", "vg/S02@1"]


def test_clone_failure_keeps_the_replaced_version_on_the_targets_not_reached(tmp_path, monkeypatch):
    """All targets are marked before the first block is written; when the
    block copy onto the second of three fails, the first two are released
    (their copies of the replaced version are lost) and the third, never
    written, gets its marks back: version 1 keeps that copy, as it did when
    the targets were marked one by one."""
    host, engine, sources = _clone_pool(tmp_path, monkeypatch, 3)
    third = (sorted(host.tags("vg/t1_02")), host.data["vg/t1_02"], host.writable("vg/t1_02"))
    host.fail_copy_to = {"vg/t1_01"}
    with engine.session("P") as s:
        with pytest.raises(CopyFailed) as exc:
            s.plan_copy().apply()
        assert "failed at vg/S01 -> vg/t1_01" in exc.value.msg
        assert "released (vg/t1_00, vg/t1_01)" in exc.value.msg
        assert s.state.journal is None and [r.version for r in s.state.replication_records] == [1, 2]
    assert (sorted(host.tags("vg/t1_02")), host.data["vg/t1_02"], host.writable("vg/t1_02")) == third
    for t in ("vg/t1_00", "vg/t1_01"):
        assert _lvm_version(host, t) is None and TAG_STAGED not in host.tags(t) and host.writable(t)
    with engine.session("P") as s:
        assert sorted((f["version"], f["target"], f["problem"]) for f in s.plan_verify().result["findings"]) == [
            (1, "vg/t1_00", "copy_missing"), (1, "vg/t1_01", "copy_missing")]
        s.plan_verify(repair=True).apply()
        kept = dict((r.version, r) for r in s.state.replication_records)
        # the record keeps the copy that still exists (an incomplete
        # version, which a restore refuses as a whole)
        assert [p.target for p in kept[1].pairs] == ["vg/t1_02"]
        assert s.plan_verify().result == {"consistent": True, "findings": []}
