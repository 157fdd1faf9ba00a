# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ZFS backends against the output OpenZFS gave in the qemu guest
(``tests/vm/run-suite.sh zfs --parts real -- --pitcopy-record
'$PITCOPY_VM_RESULTS/recorded'``): the engine and backend calls of the real
test named in each case, in its order, each command the recorded one.
tests/real/test_zfs.py stays the proof against the real tools."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _zfs
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CapacityError,
    CopyFailed,
    HookFailed,
    InvalidInput,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, Hook, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend, ZfsSnapshotBackend
from ansible_collections.pitcopy.versions.tests.utils.backend_driver import Driver
from ansible_collections.pitcopy.versions.tests.unit.replay import RecordedBeforeEncryption, ReplayRunner, load_case
from ansible_collections.pitcopy.versions.tests.utils.engine_calls import copy, define, findings, info

MiB = 1024 * 1024


def _zvol_devices(monkeypatch, case, runner):
    """The /dev/zvol links of renamed zvols, as the guest had them: which
    datasets are volumes, as the recorded ``zfs get`` reports said (type
    volume), and their devices, as the recorded ``udevadm trigger`` calls
    named them, in order."""
    devs = [c["argv"][3:] for c in case["calls"] if (c.get("argv") or [])[:2] == ["udevadm", "trigger"]]
    volumes = set()

    def observe(call):
        for line in (call.get("stdout") or "").splitlines():
            f = line.split("\t")
            if len(f) >= 3 and f[1] == "type" and f[2] == "volume":
                volumes.add(f[0])

    runner.observer = observe

    def is_volume(name):
        # a snapshot of a volume, or a temporary dataset named after one
        # (``<dataset>.pitcopy-...``), is one too
        base = name.split("@", 1)[0]
        return name in volumes or base in volumes or base.split(".pitcopy-", 1)[0] in volumes

    def triggered():
        # whether the guest had the links: udev may not have made the link
        # of a snapshot just taken when we rename it (fewer commands between
        # the two since the promotion reuses its read, _zfs "Views"); the
        # recording runs a ``udevadm trigger`` after the renames (and
        # destroys) that follow only where it had
        for call in runner.calls[runner.pos:]:
            argv = call.get("argv") or []
            if argv[:2] not in (["zfs", "rename"], ["zfs", "destroy"]):
                return argv[:2] == ["udevadm", "trigger"]
        return False

    def links(self, names):
        if any(is_volume(n) for n in names) and triggered():
            return devs.pop(0)
        return []

    monkeypatch.setattr(_zfs._ZfsBase, "_zvol_links", links)


def test_zfs_snapshot_versions_rotation_restore_verify(tmp_path, monkeypatch):
    """tests/real/test_zfs.py::test_zfs_snapshot_versions_rotation_restore_verify, replayed."""
    case = load_case("zfs", "test_zfs_snapshot_versions_rotation_restore_verify")
    runner = ReplayRunner(case["calls"], "zfs_snapshot rotation")
    pool = [a for a in case["calls"][0]["argv"] if not a.startswith("-")][-1]
    src = ["%s/fs1" % pool, "%s/vol1" % pool, "%s/fs2" % pool]
    _zvol_devices(monkeypatch, case, runner)
    b = ZfsSnapshotBackend(runner)
    vols = b.discover(src + ["%s/nothere" % pool])
    assert set(vols) == set(src)
    assert vols["%s/vol1" % pool].kind == "volume" and vols["%s/vol1" % pool].size == 16 * MiB
    assert vols["%s/vol1" % pool].block_size > 0 and vols["%s/fs1" % pool].kind == "filesystem"
    assert vols["%s/fs1" % pool].container == pool and vols["%s/fs1" % pool].free > 0
    eng = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: ZfsSnapshotBackend(runner=runner))
    sources = list(src)
    for n in range(1, 6):
        if n == 3:
            sources.append("%s/fs3" % pool)
        if n == 4:
            sources.remove("%s/fs2" % pool)
        define(eng, PoolDefinition(name="snaps", technology="zfs_snapshot", sources=tuple(sources), versions=3))
        if n == 2:
            with eng.session("snaps") as s:
                assert [r["version"] for r in s.plan_prepair(versions=2).apply()["records"]] == [2, 3]
        assert copy(eng, "snaps")["version"]["number"] == n
        info(eng, "snaps")
    kept = dict((r["version"], r) for r in info(eng, "snaps")["replication_records"])
    assert sorted(kept) == [3, 4, 5]
    listed = b.list_copies("snaps")
    assert sorted((c.target, c.version) for c in listed) == sorted(
        (p["target"], v) for v, r in kept.items() for p in r["pairs"])
    with eng.session("snaps") as s:
        assert s.plan_verify().result["consistent"] is True
    with eng.session("snaps") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_restore(3, volumes=[x for x in sources if x in [p["source"] for p in kept[3]["pairs"]]]).apply()
    assert "newer snapshots" in exc.value.msg and "rollback -r" in exc.value.msg
    assert sorted(c.target for c in b.list_copies("snaps")) == sorted(c.target for c in listed)
    with eng.session("snaps") as s:
        res = s.plan_restore(5).apply()
    assert sorted(res["restored"]) == sorted(sources)
    with eng.session("snaps") as s:
        s.info()
    gone = kept[4]["pairs"][0]["target"]
    with eng.session("snaps") as s:
        f = s.plan_verify().result
    assert [(x["version"], x["target"], x["problem"]) for x in f["findings"]] == [(4, gone, "copy_missing")], f
    foreign = "%s/fs1@pitcopy-snaps-09" % pool
    assert b.delete_copies(PoolDefinition(name="snaps", technology="zfs_snapshot", sources=tuple(sources),
                                          versions=3), [CopyPair("%s/fs1" % pool, foreign)]) == [foreign]
    with eng.session("snaps") as s:
        s.plan_delete(5).apply()
    runner.assert_done()


def test_zfs_snapshot_failure_leaves_nothing():
    """tests/real/test_zfs.py::test_zfs_snapshot_failure_leaves_nothing, replayed:
    the second zpool's atomic snapshot fails with OpenZFS's words after the
    first zpool's were made, and those are destroyed; a staging name somebody
    else took stops the copy first; a failing pre-copy hook makes nothing
    (the hook is the user's command: it runs, not replayed)."""
    case = load_case("zfs", "test_zfs_snapshot_failure_leaves_nothing")
    calls = case["calls"]
    runner = ReplayRunner(calls, "zfs_snapshot failures")
    p1, p2 = calls[0]["argv"][-2:]  # the first discovery reads both zpools
    src = ["%s/x" % p1, "%s/y" % p1, "%s/z" % p2]
    d = PoolDefinition(name="fail", technology="zfs_snapshot", sources=tuple(src), versions=2)
    b = ZfsSnapshotBackend(runner)
    drv = Driver(b, d, runner)
    drv.take(src)
    drv.take(src)
    pairs = [CopyPair(s, b.implied_target("fail", "01", s)) for s in src]
    with pytest.raises(CopyFailed) as exc:
        b.create_copies(d, 3, pairs, CopyWindow(d, runner))
    assert "%s/z" % p2 in exc.value.msg and "does not exist" in exc.value.msg
    assert exc.value.details["source"] == "%s/z" % p2
    with pytest.raises(CopyFailed) as exc:
        b.create_copies(d, 3, pairs[:2], CopyWindow(d, runner))
    assert "without this copy pool's mark" in exc.value.msg
    d2 = PoolDefinition(name="fail", technology="zfs_snapshot", sources=tuple(src[:2]), versions=2,
                        pre_copy_hooks=(Hook(argv=("false",)),))
    hooks = []

    def run_hook(argv, timeout):
        hooks.append(argv)
        return {"rc": 1, "stdout": "", "stderr": "", "timed_out": False}

    runner.run_hook = run_hook
    with pytest.raises(HookFailed):
        b.create_copies(d2, 3, pairs[:2], CopyWindow(d2, runner))
    assert hooks == [["false"]]
    runner.assert_done()


def test_zfs_send_versions_rotation_restore_verify(tmp_path, monkeypatch):
    """tests/real/test_zfs.py::test_zfs_send_versions_rotation_restore_verify,
    replayed: full sends into new target datasets, rotation, the restore of
    an older version (renames and a send back), a tampered and a destroyed
    copy, and a foreign dataset never used."""
    case = load_case("zfs", "test_zfs_send_versions_rotation_restore_verify")
    # recorded before encryption: its columns and probe answered as unencrypted
    runner = RecordedBeforeEncryption(ReplayRunner(case["calls"], "zfs_send rotation"))
    tpool = case["calls"][0]["argv"][-1]
    spool = [c["pipe"][0][-1] for c in case["calls"] if "pipe" in c][0].split("/")[0]
    _zvol_devices(monkeypatch, case, runner.runner)
    names = ["fs1", "vol1", "fs2", "fs3"]
    tps = tuple(TargetPool(tp, tuple("%s/%s/%s" % (tpool, tp, n) for n in names)) for tp in ("A", "B"))
    src = ["%s/%s" % (spool, n) for n in names]
    b = ZfsSendBackend(runner)
    first = b.discover([tps[0].volumes[0], "%s/nope/x" % tpool])
    assert first[tps[0].volumes[0]].kind == "new_dataset" and not first[tps[0].volumes[0]].foreign_data
    assert "%s/nope/x" % tpool not in first
    eng = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: ZfsSendBackend(runner=runner))
    sources = list(src[:3])
    for n in range(1, 6):
        if n == 2:
            sources.append(src[3])
        if n == 4:
            sources.remove(src[2])
        define(eng, PoolDefinition(name="sends", technology="zfs_send", sources=tuple(sources), versions=2,
                                   target_pools=tps))
        assert copy(eng, "sends")["version"]["number"] == n
        info(eng, "sends")
    kept = dict((r["version"], r) for r in info(eng, "sends")["replication_records"])
    assert sorted(kept) == [4, 5]
    copies = b.list_copies("sends")
    assert sorted((c.target, c.version, c.source) for c in copies) == sorted(
        (p["target"], v, p["source"]) for v, r in kept.items() for p in r["pairs"])
    assert all(c.valid and not c.staged for c in copies), copies
    vols = b.discover([p["target"] for p in kept[5]["pairs"]])
    assert all(v.owner == "sends" and not v.foreign_data for v in vols.values())
    with eng.session("sends") as s:
        assert s.plan_verify().result["consistent"] is True
    with eng.session("sends") as s:
        res = s.plan_restore(4).apply()
    assert sorted(res["restored"]) == sorted(p["source"] for p in kept[4]["pairs"])
    with eng.session("sends") as s:
        s.info()
    with eng.session("sends") as s:
        assert s.plan_copy().apply()["replaced_version"] == 4
    with eng.session("sends") as s:
        s.info()
    kept = dict((r["version"], r) for r in info(eng, "sends")["replication_records"])
    changed = [p["target"] for p in kept[6]["pairs"] if not p["source"].endswith("vol1")][0]
    by_target = dict((c.target, c) for c in b.list_copies("sends"))
    assert not by_target[changed].valid and "written" in by_target[changed].detail
    gone = kept[5]["pairs"][0]["target"]
    with eng.session("sends") as s:
        f = s.plan_verify().result
    assert sorted((x["version"], x["target"], x["problem"]) for x in f["findings"]
                  if x["problem"] != "base_missing") == sorted([(6, changed, "copy_invalid"), (5, gone, "copy_missing")]), f
    assert sorted(x["target"] for x in f["findings"] if x["problem"] == "base_missing") == sorted(
        p["target"] for p in kept[5]["pairs"] if p["target"] != gone), f
    foreign = "%s/A/foreign" % tpool
    v = b.discover([foreign])[foreign]
    assert v.foreign_data and v.owner is None
    d = PoolDefinition(name="sends", technology="zfs_send", sources=tuple(sources), versions=2, target_pools=tps)
    assert b.delete_copies(d, [CopyPair(src[0], foreign)])
    with pytest.raises(CopyFailed):
        b.promote(d, 99, [CopyPair(src[0], foreign)], [CopyPair(src[0], "%s/A/x.pitcopy-staging-v99" % tpool)], [])
    bad = tuple(TargetPool(t.name, (foreign,) + t.volumes[1:]) for t in tps)
    with eng.session("other") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_define(PoolDefinition(name="other", technology="zfs_send", sources=tuple(sources), versions=2,
                                         target_pools=bad)).apply()
    assert foreign in exc.value.msg
    runner.assert_done()


def test_zfs_send_failure_target_too_full():
    """tests/real/test_zfs.py::test_zfs_send_failure_target_too_full, replayed:
    the capacity refusal with the numbers, then, the check bypassed, the
    receive failing for lack of space (OpenZFS's words), nothing of the
    version left on either zpool."""
    case = load_case("zfs", "test_zfs_send_failure_target_too_full")
    # recorded before encryption: its columns and probe answered as unencrypted
    runner = RecordedBeforeEncryption(ReplayRunner(case["calls"], "zfs_send target full"))
    spool = [c["pipe"][0][-1] for c in case["calls"] if "pipe" in c][0].split("/")[0]
    tpool = [c["pipe"][1][-1] for c in case["calls"] if "pipe" in c][0].split("/")[0]
    src = ["%s/small" % spool, "%s/big" % spool]
    tps = (TargetPool("A", ("%s/A/small" % tpool, "%s/A/big" % tpool)),
           TargetPool("B", ("%s/B/small" % tpool, "%s/B/big" % tpool)))
    d = PoolDefinition(name="full", technology="zfs_send", sources=tuple(src), versions=2, target_pools=tps)
    b = ZfsSendBackend(runner)
    Driver(b, d, runner).take(src)
    pairs = [CopyPair(s, t) for s, t in zip(src, tps[1].volumes)]
    vols = b.discover(src + list(tps[1].volumes))
    with pytest.raises(CapacityError) as exc:
        b.check_capacity(d, pairs, [], vols)
    assert "zpool %s needs" % tpool in exc.value.msg and "bytes available" in exc.value.msg
    assert "%s/big" % spool in exc.value.msg
    with pytest.raises(CopyFailed) as exc:
        b.create_copies(d, 2, pairs, CopyWindow(d, runner))
    assert exc.value.details["source"] == "%s/big" % spool
    assert all(c.valid for c in b.list_copies("full"))
    runner.assert_done()


class CheckModeReplay(ReplayRunner):
    """A ReplayRunner that, while ``peeking`` (check mode asking for its
    result), answers each command with the recorded output of the same
    command at or after the replay's position without using it up: check
    mode's reads of the held copies and base bookmarks are the ``zfs get``
    the real copy makes later, in transfer, with the same argv. Anything
    but a read fails the test."""

    peeking = False

    def run(self, argv, data=None, check=True, timeout=None):
        if not self.peeking:
            return super(CheckModeReplay, self).run(argv, data=data, check=check, timeout=timeout)
        argv = [str(a) for a in argv]
        assert argv[:2] == ["zfs", "get"], "check mode ran %r, not a read" % (argv,)
        for want in self.calls[self.pos:]:
            if want.get("argv") == argv:
                self.peeked.append(argv)
                return self._answer(want, check)
        raise AssertionError("check mode read %r, which the real run never did" % (argv,))

    def pipe(self, argvs, check=True, timeout=None, meter=None):
        assert not self.peeking, "check mode ran %r" % (argvs,)
        return super(CheckModeReplay, self).pipe(argvs, check=check, timeout=timeout, meter=meter)


def _checked_copy(eng, replay, name):
    """copy_version's check mode (the plan's result, read as check mode
    reads it) and then the real copy, in one session: (predicted, result)."""
    with eng.session(name) as s:
        plan = s.plan_copy()
        replay.peeking, replay.peeked = True, []
        try:
            predicted = plan.result
        finally:
            replay.peeking = False
        return predicted, plan.apply()


def _bases(result):
    return dict((p["source"], p["base_version"]) for p in result["version"]["pairs"])


def test_zfs_send_incremental_rotation(tmp_path):
    """tests/real/test_zfs_incremental.py::test_zfs_send_incremental_rotation,
    replayed: versions 1 and 2 sent in full, 3 and 4 with ``zfs send -i``
    from the bookmark of the version their target pool held, received as a
    clone of that copy's snapshot and promoted; the stream sizes as
    measured; a bookmark gone (base_missing, then a full send of that
    source only) and an unneeded one (reported, released by repair).
    Before each copy, check mode predicts each pair's base_version (the
    same choice, from the same reads) and the copy then sends from it."""
    case = load_case("zfs", "test_zfs_send_incremental_rotation")
    # recorded before encryption: its columns and probe answered as
    # unencrypted; check mode's peeking is switched on the inner replay
    replay = CheckModeReplay(case["calls"], "zfs_send incremental")
    runner = RecordedBeforeEncryption(replay)
    pipes = [c["pipe"] for c in case["calls"] if "pipe" in c]
    spool = pipes[0][0][-1].split("/")[0]
    tpool = pipes[0][1][-1].split("/")[0]
    src = ["%s/fs1" % spool, "%s/fs2" % spool]
    tps = tuple(TargetPool(tp, tuple("%s/%s/%s" % (tpool, tp, n) for n in ("fs1", "fs2"))) for tp in ("A", "B"))
    eng = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: ZfsSendBackend(runner=runner))
    define(eng, PoolDefinition(name="inc", technology="zfs_send", sources=tuple(src), versions=2, target_pools=tps))
    held = {}
    sent = {}
    for n in range(1, 5):
        predicted, res = _checked_copy(eng, replay, "inc")
        assert res["version"]["number"] == n
        # check mode: the base the copy then used, the bytes not known yet
        assert _bases(predicted) == _bases(res), (n, predicted, res)
        assert all(p["bytes_sent"] is None for p in predicted["version"]["pairs"])
        # read only when the target pool holds an earlier copy to send from
        assert bool(runner.peeked) == (n > 2), (n, runner.peeked)
        info(eng, "inc")
        tp = res["version"]["target_pool"]
        sent[n] = dict((p["source"], p) for p in res["version"]["pairs"])
        assert all(p["base_version"] == held.get(tp) for p in sent[n].values()), (n, sent[n])
        held[tp] = n
    # the commands: full sends first, then -i from the bookmark, received
    # as a clone of the held copy's snapshot, promoted
    sends = [p[0] for p in pipes]
    assert sends[0] == ["zfs", "send", "%s@pitcopy-inc-v1" % src[0]]
    assert ["zfs", "send", "-i", "%s#pitcopy-inc-v1" % src[0], "%s@pitcopy-inc-v3" % src[0]] in sends
    recv3 = [p[1] for p in pipes if p[0][-1] == "%s@pitcopy-inc-v3" % src[0]][0]
    assert "origin=%s@pitcopy-inc-v1" % sent[1][src[0]]["target"] in recv3
    assert any(c.get("argv", [])[:2] == ["zfs", "promote"] for c in case["calls"])
    full = sent[1][src[0]]["bytes_sent"]
    assert all(sent[n][src[0]]["bytes_sent"] < full // 20 for n in (3, 4)), sent
    kept = dict((r["version"], r) for r in info(eng, "inc")["replication_records"])
    assert sorted(kept) == [3, 4]
    found = findings(eng, "inc")
    assert found["consistent"] is True
    assert [(f["problem"], f["version"], f["source"]) for f in found["findings"]] == [("base_missing", 3, src[0])]
    predicted, res = _checked_copy(eng, replay, "inc")
    # the bookmark gone: check mode already says that source goes in full
    assert _bases(predicted) == _bases(res) == {src[0]: None, src[1]: 3}, (predicted, res)
    info(eng, "inc")
    five = dict((p["source"], p) for p in res["version"]["pairs"])
    assert five[src[0]]["base_version"] is None and five[src[0]]["bytes_sent"] >= full // 2
    assert five[src[1]]["base_version"] == 3
    found = findings(eng, "inc")
    assert found["consistent"] is False
    assert [(f["problem"], f["target"]) for f in found["findings"]] == [
        ("unneeded_base", "%s#pitcopy-inc-v2" % src[1])]
    findings(eng, "inc", repair=True)
    assert any(c.get("argv") == ["zfs", "destroy", "%s#pitcopy-inc-v2" % src[1]] for c in case["calls"])
    assert findings(eng, "inc")["findings"] == []
    runner.assert_done()
