# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The LVM backends against the output real LVM gave (recorded in the UML
guest by ``tests/uml/run-suite.sh lvm --parts real -- --pitcopy-record DIR``,
see tests/utils/recording.py): the same engine and backend calls as the
real test named in each case file, in the same order; every command must
be the recorded one (exact argv, the lvm shell's exact stdin) and gets the
recorded answer. What the real test did to the host directly (writing
data, removing an LV behind the tool's back) is in the recorded answers.
tests/real/test_lvm.py stays the proof against the real tools."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _lvm
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CapacityError, CopyFailed, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import (
    LvmCloneBackend,
    LvmSnapshotBackend,
    LvmThinBackend,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.tests.unit.replay import ReplayRunner, load_case
from ansible_collections.pitcopy.versions.tests.utils import lvm_scenarios

MiB = 1024 * 1024
BACKENDS = {"lvm_snapshot": LvmSnapshotBackend, "lvm_thin": LvmThinBackend, "lvm_clone": LvmCloneBackend}


def sources_of_run(all_sources, n):
    """The pool's sources at run ``n`` of the recorded sweep (as
    tests/real/test_lvm.py runs it): the first three; the fourth joins at
    run 3; the second leaves at run 4."""
    sources = all_sources[:3] + (all_sources[3:4] if n >= 3 else [])
    return [x for x in sources if not (n >= 4 and x == all_sources[1])]


def replay(name):
    case = load_case("lvm", name)
    return case, ReplayRunner(case["calls"], name)


def _session(engine, name):
    return engine.session(name)


@pytest.fixture
def devices(monkeypatch):
    """The block devices of the LVs, which the restore reads and writes with
    no command: ``bytes`` differ between a copy and its source (the real
    test wrote two 4 KiB blocks); ``copied`` lists the block copies."""
    dev = {"bytes": 8192, "copied": []}

    def copy_blocks(src, dst, length, only_changed=False, digest=None, progress=None):
        dev["copied"].append((src, dst, only_changed))
        return 8 * MiB, dev["bytes"]

    monkeypatch.setattr(_lvm, "_diff_bytes", lambda src, dst: dev["bytes"])
    monkeypatch.setattr(_lvm, "_copy_blocks", copy_blocks)
    return dev


@pytest.mark.parametrize("technology", ["lvm_snapshot", "lvm_thin"])
def test_versions_rotation_restore_verify(tmp_path, technology, devices):
    """tests/real/test_lvm.py::test_versions_rotation_restore_verify, replayed."""
    case, runner = replay("test_versions_rotation_restore_verify_%s_" % technology)
    vg = case["calls"][0]["argv"][-1]
    all_sources = ["%s/%s" % (vg, n) for n in "abcd"]
    b = BACKENDS[technology](runner)
    vols = b.discover(all_sources + ["%s/nothere" % vg])
    assert set(vols) == set(all_sources)
    v = vols[all_sources[0]]
    assert v.size == 8 * MiB and v.free > 0
    assert v.kind == ("thin_lv" if technology == "lvm_thin" else "lv")
    assert v.container == ("%s/tp" % vg if technology == "lvm_thin" else vg)

    extra = {"snapshot_size": "4M"} if technology == "lvm_snapshot" else {}
    versions = 3
    eng = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: BACKENDS[tech](runner=runner))
    name = "p%s" % technology[4:]
    for n in range(1, 5):
        sources = sources_of_run(all_sources, n)
        with eng.session(name) as s:
            s.plan_define(PoolDefinition(name=name, technology=technology, sources=tuple(sources),
                                         versions=versions, **extra)).apply()
        if n == 2:
            with eng.session(name) as s:
                pre = s.plan_prepair(versions=2).apply()
            assert [r["version"] for r in pre["records"]] == [2, 3]
        with eng.session(name) as s:
            res = s.plan_copy().apply()
        assert res["version"]["number"] == n and res["version"]["status"] == "valid"
        assert [p["source"] for p in res["version"]["pairs"]] == sources
        with eng.session(name) as s:
            s.info()
    with eng.session(name) as s:
        pool = s.info()
    kept = dict((r["version"], r) for r in pool["replication_records"])
    assert sorted(kept) == [2, 3, 4]
    listed = b.list_copies(name)
    assert sorted((c.target, c.version) for c in listed) == sorted(
        (p["target"], ver) for ver, r in kept.items() for p in r["pairs"])
    assert not any(c.staged for c in listed)
    with eng.session(name) as s:
        assert s.plan_verify().result["consistent"] is True

    # the source the real test held open: lvs said so, the restore is refused
    old = min(kept)
    with eng.session(name) as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_restore(old).apply()
    assert "is open" in exc.value.msg and "nmount" in exc.value.msg, exc.value.msg
    restored = [p["source"] for p in kept[old]["pairs"] if p["source"] in sources]
    with eng.session(name) as s:
        res = s.plan_restore(old).apply()
    assert sorted(res["restored"]) == sorted(restored)
    assert sorted(c[1] for c in devices["copied"]) == sorted(_lvm.dm_path(s_) for s_ in restored)
    with eng.session(name) as s:
        s.info()
    assert sorted(c.target for c in b.list_copies(name)) == sorted(c.target for c in listed)

    # removed behind the tool's back (lvremove in the real test)
    victim = kept[4]["pairs"][0]
    with eng.session(name) as s:
        f = s.plan_verify().result
    assert f["consistent"] is False
    assert [(x["version"], x["target"], x["problem"]) for x in f["findings"]] == [
        (4, victim["target"], "copy_missing")], f
    if technology == "lvm_snapshot":
        # the classic snapshot's 4 MiB of COW space overflowed
        ov = kept[3]["pairs"][1]
        with eng.session(name) as s:
            f = s.plan_verify().result
        assert (3, ov["target"], "copy_invalid") in [(x["version"], x["target"], x["problem"])
                                                     for x in f["findings"]]

    # an LV at one of our names without our tag is never removed
    foreign = "%s/foreign-pc-x" % vg
    d = PoolDefinition(name=name, technology=technology, sources=tuple(sources), versions=versions, **extra)
    assert b.delete_copies(d, [CopyPair(sources[0], foreign)]) == [foreign]
    with eng.session(name) as s:
        s.plan_delete(3).apply()
    runner.assert_done()


def test_consistency_freeze_is_refused_on_this_kernel():
    """tests/real/test_lvm.py::test_fsfreeze_then_snapshot_works_on_this_kernel:
    after the failed suspend LVM warns on stderr about the half-done LV; the
    report is still read, and consistency freeze is refused before anything
    is created (Debian's 6.1 kernel cannot snapshot a frozen origin)."""
    case, runner = replay("test_fsfreeze_then_snapshot_works_on_this_kernel")
    assert "WARNING" in case["calls"][0]["stderr"]
    vg = case["calls"][0]["argv"][-1]
    src = "%s/c" % vg
    b = LvmSnapshotBackend(runner)
    d = PoolDefinition(name="fz", technology="lvm_snapshot", sources=(src,), versions=1, consistency="freeze",
                       snapshot_size="4M")
    assert _lvm.FREEZE_THEN_SNAPSHOT is False
    with pytest.raises(InvalidInput) as exc:
        b.create_copies(d, 1, [CopyPair(src, b.implied_target("fz", "01", src))], CopyWindow(d, runner))
    assert "freeze" in exc.value.msg and "hooks" in exc.value.msg
    runner.assert_done()


class Devices(object):
    """The LVs' block devices as files: what the real test wrote to them, and
    what the recorded commands did to them (a snapshot starts as a copy of
    its origin, lvremove and lvrename act on the file). The backend's own
    block copies and checksums run on these files unchanged."""

    def __init__(self, root):
        self.root = root

    def path(self, name):
        return os.path.join(self.root, name.replace("/", "__"))

    def create(self, name, size=8 * MiB):
        with open(self.path(name), "wb") as fh:
            fh.truncate(size)
        return name

    def write(self, name, text):
        """As tests/real/test_lvm.py write_data: ``text`` at 0 and at 1 MiB."""
        data = text.encode("utf-8").ljust(4096, b"\0")
        with open(self.path(name), "r+b") as fh:
            fh.seek(0)
            fh.write(data)
            fh.seek(MiB)
            fh.write(data)

    def read(self, name):
        with open(self.path(name), "rb") as fh:
            a = fh.read(4096)
            fh.seek(MiB)
            assert fh.read(4096) == a
        return a.rstrip(b"\0").decode("utf-8")

    def _command(self, words):
        if not words:
            return
        if words[0] == "lvcreate" and "-s" in words:
            vg = words[-1].split("/")[0]
            shutil.copyfile(self.path(words[-1]), self.path("%s/%s" % (vg, words[words.index("-n") + 1])))
        elif words[0] == "lvremove":
            os.unlink(self.path(words[-1]))
        elif words[0] == "lvrename":
            os.rename(self.path("%s/%s" % (words[-3], words[-2])), self.path("%s/%s" % (words[-3], words[-1])))

    def observe(self, call):
        if call.get("rc") not in (0, None):
            return
        argv = call.get("argv") or []
        if argv == ["lvm"]:
            for line in (call.get("data") or "").splitlines():
                self._command(line.split())
        else:
            self._command(argv)


def _clone_replay(tmp_path, monkeypatch, case_name, what):
    """(devices, runner, vg) of a recorded lvm_clone test: the LVs' data are
    files (``Devices``) kept in step with the replayed commands; the VG is
    the one the recording's first command reports on."""
    devices = Devices(str(tmp_path))
    case = load_case("lvm", case_name)
    runner = ReplayRunner(case["calls"], what, observer=devices.observe)
    monkeypatch.setattr(_lvm, "dm_path", devices.path)
    return devices, runner, case["calls"][0]["argv"][-1]


def test_clone_rotation_restore_verify(tmp_path, monkeypatch):
    """tests/real/test_lvm.py::test_versions_rotation_restore_verify[lvm_clone],
    replayed, with the LVs' data as files: the checksums the backend tags
    its clones with are the recorded ones, so the bytes copied are right."""
    devices, runner, vg = _clone_replay(tmp_path, monkeypatch, "test_versions_rotation_restore_verify_lvm_clone_", "lvm_clone rotation")
    all_sources = [devices.create("%s/%s" % (vg, n)) for n in "abcd"]
    b = LvmCloneBackend(runner)
    vols = b.discover(all_sources + ["%s/nothere" % vg])
    assert set(vols) == set(all_sources) and vols[all_sources[0]].size == 8 * MiB
    tps = tuple(TargetPool(name=t, volumes=tuple(devices.create("%s/t%s%s" % (vg, t, x)) for x in "abcd"))
                for t in ("01", "02"))
    eng = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: LvmCloneBackend(runner=runner))
    name = "pclone"
    data = {}
    for n in range(1, 5):
        sources = sources_of_run(all_sources, n)
        with eng.session(name) as s:
            s.plan_define(PoolDefinition(name=name, technology="lvm_clone", sources=tuple(sources), versions=2,
                                         target_pools=tps)).apply()
        if n == 2:
            with eng.session(name) as s:
                assert [r["version"] for r in s.plan_prepair(versions=2).apply()["records"]] == [2, 3]
        for s_ in sources:
            devices.write(s_, "v%d %s" % (n, s_))
        data[n] = dict((s_, "v%d %s" % (n, s_)) for s_ in sources)
        with eng.session(name) as s:
            assert s.plan_copy().apply()["version"]["number"] == n
        for s_ in sources:
            devices.write(s_, "after v%d %s" % (n, s_))
        with eng.session(name) as s:
            for rec in s.info()["replication_records"]:
                for p in rec["pairs"]:
                    assert devices.read(p["target"]) == data[rec["version"]][p["source"]]
    with eng.session(name) as s:
        kept = dict((r["version"], r) for r in s.info()["replication_records"])
    assert sorted(kept) == [3, 4]
    listed = b.list_copies(name)
    assert sorted((c.target, c.version) for c in listed) == sorted(
        (p["target"], ver) for ver, r in kept.items() for p in r["pairs"])
    with eng.session(name) as s:
        assert s.plan_verify().result["consistent"] is True
    old = min(kept)
    with eng.session(name) as s:
        with pytest.raises(InvalidInput, match="is open"):
            s.plan_restore(old).apply()
    restored = [p["source"] for p in kept[old]["pairs"] if p["source"] in sources]
    with eng.session(name) as s:
        res = s.plan_restore(old).apply()
    assert sorted(res["restored"]) == sorted(restored)
    for s_ in restored:
        assert devices.read(s_) == data[old][s_]
    with eng.session(name) as s:
        s.info()
    assert sorted(c.target for c in b.list_copies(name)) == sorted(c.target for c in listed)
    # changed behind the tool's back: its checksum no longer matches
    victim = kept[4]["pairs"][0]
    devices.write(victim["target"], "changed by someone")
    with eng.session(name) as s:
        f = s.plan_verify().result
    assert [(x["version"], x["target"], x["problem"]) for x in f["findings"]] == [
        (4, victim["target"], "copy_invalid")], f
    foreign = devices.create("%s/foreign-pc-x" % vg, 4 * MiB)
    d = PoolDefinition(name=name, technology="lvm_clone", sources=tuple(sources), versions=2, target_pools=tps)
    assert b.delete_copies(d, [CopyPair(sources[0], foreign)]) == [foreign]
    with eng.session(name) as s:
        s.plan_delete(3).apply()
    runner.assert_done()


def test_snapshot_failure_full_vg_leaves_nothing(tmp_path):
    """tests/real/test_lvm.py::test_snapshot_failure_full_vg_leaves_nothing,
    replayed: the capacity refusal with the numbers, then LVM's own
    "insufficient free space" in the middle of one lvm shell batch, the two
    snapshots made removed, and the error naming the pair."""
    case, runner = replay("test_snapshot_failure_full_vg_leaves_nothing")
    vg = case["calls"][0]["argv"][-1]
    sources = ["%s/%s" % (vg, n) for n in "abc"]
    b = LvmSnapshotBackend(runner)
    eng = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: LvmSnapshotBackend(runner=runner))
    d = PoolDefinition(name="full", technology="lvm_snapshot", sources=tuple(sources), versions=2,
                       snapshot_size="8M")
    with eng.session("full") as s:
        s.plan_define(d).apply()
    with eng.session("full") as s:
        s.plan_copy().apply()
    with eng.session("full") as s:
        with pytest.raises(CapacityError) as exc:
            s.plan_copy().apply()
    assert vg in exc.value.msg and str(3 * 8 * MiB) in exc.value.msg, exc.value.msg
    d4 = PoolDefinition(name="full", technology="lvm_snapshot", sources=tuple(sources), versions=2,
                        snapshot_size="4M")
    pairs = [CopyPair(s_, b.implied_target("full", "02", s_)) for s_ in sources]
    with pytest.raises(CopyFailed) as exc:
        b.create_copies(d4, 2, pairs, CopyWindow(d4, runner))
    assert exc.value.details.get("source") == sources[2], exc.value.msg
    assert "insufficient" in exc.value.msg.lower() or "space" in exc.value.msg.lower(), exc.value.msg
    with eng.session("full") as s:
        assert [r["version"] for r in s.info()["replication_records"]] == [1]
    with eng.session("full") as s:
        assert s.plan_verify().result["consistent"] is True
    runner.assert_done()


def test_clone_failure_and_foreign_target(tmp_path, monkeypatch):
    """tests/real/test_lvm.py::test_clone_failure_and_foreign_target, replayed
    with the LVs' data as files: a too small target is refused with the
    numbers, a target holding somebody's data is never written, and the
    engine refuses a definition naming it."""
    devices, runner, vg = _clone_replay(tmp_path, monkeypatch, "test_clone_failure_and_foreign_target", "lvm_clone failures")
    lvm_scenarios.clone_failure_and_foreign_target(
        runner, lambda name, mib: devices.create("%s/%s" % (vg, name), mib * MiB), devices.write, devices.read,
        RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: LvmCloneBackend(runner=runner)))
    runner.assert_done()


def _last_report(name):
    """The last ``lvs`` report of a recording, to be answered again: the
    state the real test left (lvm_snapshot rotation: versions 2 and 4 kept,
    version 2's copy of b overflowed, a foreign LV)."""
    case = load_case("lvm", name)
    call = [c for c in case["calls"] if c["argv"][0] == "lvs"][-1]
    return call, call["argv"][-1]


@pytest.mark.parametrize("pair,version,match", [
    (("a", "a-pc-psnapshot-03"), 2, "its copy .* does not exist"),
    (("a", "a-pc-psnapshot-02"), 4, "holds version 2, not version 4"),
    (("b", "b-pc-psnapshot-02"), 2, "the copy is not valid .*overflowed"),
    (("x", "a-pc-psnapshot-02"), 2, "the source LV does not exist any more"),
    (("a", "foreign-pc-x"), 2, "does not exist"),
])
def test_restore_refusals_from_the_recorded_report(pair, version, match):
    """Each refusal of a restore, read from one real report; nothing else
    runs (no activation, no copy)."""
    call, vg = _last_report("test_versions_rotation_restore_verify_lvm_snapshot_")
    runner = ReplayRunner([call], "restore refusal")
    b = LvmSnapshotBackend(runner)
    d = PoolDefinition(name="psnapshot", technology="lvm_snapshot", sources=("%s/a" % vg,), versions=3)
    with pytest.raises(InvalidInput, match=match):
        b.restore(d, version, [CopyPair("%s/%s" % (vg, pair[0]), "%s/%s" % (vg, pair[1]))])
    runner.assert_done()


def test_listing_and_validity_from_the_recorded_report():
    call, vg = _last_report("test_versions_rotation_restore_verify_lvm_snapshot_")
    report = dict(call, argv=call["argv"][:-1])  # list_copies reports every VG
    b = LvmSnapshotBackend(ReplayRunner([report], "list_copies"))
    copies = dict((c.target, c) for c in b.list_copies("psnapshot"))
    assert sorted((t.split("/")[1], c.version) for t, c in copies.items()) == [
        ("a-pc-psnapshot-02", 2), ("b-pc-psnapshot-02", 2), ("c-pc-psnapshot-01", 4), ("c-pc-psnapshot-02", 2),
        ("d-pc-psnapshot-01", 4)]
    bad = copies["%s/b-pc-psnapshot-02" % vg]
    assert bad.valid is False and "overflowed" in bad.detail and b.copy_valid(None, bad) is False
    assert all(c.valid for t, c in copies.items() if t != bad.target)
    assert all(c.identity and c.source == "%s/%s" % (vg, t.split("/")[1][0]) for t, c in copies.items())


def test_freeze_list_where_the_kernel_can_freeze(monkeypatch, tmp_path):
    """Where LVM can snapshot a frozen origin (not Debian's 6.1), consistency
    auto freezes what is mounted and freeze refuses unmounted sources; the
    sources' device numbers come from the recorded report."""
    call, vg = _last_report("test_versions_rotation_restore_verify_lvm_snapshot_")
    b = LvmSnapshotBackend(ReplayRunner([call], "freeze list"))
    rows = b._report([vg])
    minor = int(rows["%s/a" % vg]["lv_kernel_minor"])
    major = int(rows["%s/a" % vg].get("lv_kernel_major") or 253)  # device-mapper's usual major
    mounts = tmp_path / "mountinfo"
    mounts.write_text("36 25 %d:%d / /srv/a rw,relatime shared:1 - ext4 /dev/mapper/x-a rw\n" % (major, minor))
    from ansible_collections.pitcopy.versions.plugins.module_utils import _quiesce

    real = _quiesce.read_mounts
    monkeypatch.setattr(_quiesce, "read_mounts", lambda path=None: real(str(mounts)))
    monkeypatch.setattr(_lvm, "FREEZE_THEN_SNAPSHOT", True)
    # no /dev/mapper node of the guest's LVs here: the numbers of the report count
    auto = PoolDefinition(name="psnapshot", technology="lvm_snapshot", sources=("%s/a" % vg, "%s/b" % vg),
                          versions=3)
    assert b._freeze_list(auto, rows, ["%s/a" % vg, "%s/b" % vg]) == ["/srv/a"]
    frozen = PoolDefinition(name="psnapshot", technology="lvm_snapshot", sources=("%s/a" % vg, "%s/b" % vg),
                            versions=3, consistency="freeze")
    with pytest.raises(InvalidInput, match="not mounted: %s/b" % vg):
        b._freeze_list(frozen, rows, ["%s/a" % vg, "%s/b" % vg])
    none = PoolDefinition(name="psnapshot", technology="lvm_snapshot", sources=("%s/a" % vg,), versions=3,
                          consistency="none")
    assert b._freeze_list(none, rows, ["%s/a" % vg]) == []


def test_clone_listing_while_its_temporary_snapshots_exist():
    """A report taken in the middle of an lvm_clone copy (tests/real's clone
    rotation, right after the temporary snapshots were made): those are
    listed as staged, never valid, each with its LV UUID. The guest had only
    the test's VG, so the report of that VG is the report of every VG."""
    case = load_case("lvm", "test_versions_rotation_restore_verify_lvm_clone_")
    call = [c for c in case["calls"] if c["argv"][0] == "lvs" and "pitcopy_tmp" in c["stdout"]][0]
    vg = call["argv"][-1]
    b = LvmCloneBackend(ReplayRunner([dict(call, argv=call["argv"][:-1])], "clone listing"))
    copies = b.list_copies("pclone")
    tmps = [c for c in copies if c.detail == "temporary snapshot of a clone copy"]
    assert sorted(c.target for c in tmps) == ["%s/%s-pctmp-v1" % (vg, n) for n in "abc"]
    assert all(c.staged and not c.valid and c.version == 1 and c.identity for c in tmps)
    assert sorted(c.source for c in tmps) == ["%s/%s" % (vg, n) for n in "abc"]


def test_kinds_and_facts_of_the_recorded_rows():
    """What each real row of the lvm_thin rotation's first report is: the
    thin pool, its thin LVs; and how odd rows are read (no minor, another
    segment type, a row that is no longer a snapshot)."""
    case = load_case("lvm", "test_versions_rotation_restore_verify_lvm_thin_")
    call = case["calls"][0]
    vg = call["argv"][-1]
    b = LvmThinBackend(ReplayRunner([call], "thin facts"))
    rows = b._report([vg])
    kinds = dict((n, b._kind(r)) for n, r in rows.items())
    assert kinds["%s/tp" % vg] == _lvm.KIND_THIN_POOL
    assert all(kinds["%s/%s" % (vg, n)] == _lvm.KIND_THIN for n in "abcd")
    assert b._kind({"lv_attr": "dwi-a-----", "segtype": "vdo-pool"}) == "vdo-pool"
    assert b._kind({}) == "unknown"
    assert b._block_size({"lv_kernel_minor": "-1"}) == 0
    assert b._block_size({"lv_kernel_minor": "987654"}) == 0  # no such device here
    assert _lvm._int("n/a", 7) == 7 and _lvm._float(None, 1.5) == 1.5
    assert b._row_valid({"lv_attr": "Vwi-a-tz--", "snap_percent": ""}, [])[0] is True
    assert LvmSnapshotBackend(None)._row_valid({"lv_attr": "-wi-a-----"}, [])[1].startswith(
        "it is no longer a snapshot LV")


def test_long_names_are_hashed_to_what_lvm_accepts():
    b = LvmSnapshotBackend(None)
    long_source = "vg/" + "s" * 120
    target = b.implied_target("pool", "01", long_source)
    assert len(target.split("/")[1]) <= _lvm.MAX_NAME_LEN and target == b.implied_target("pool", "01", long_source)
    assert target != b.implied_target("pool", "02", long_source)
    with pytest.raises(InvalidInput, match="target pool name"):
        b.implied_target("pool", "0 1", "vg/a")
    assert b.restore(PoolDefinition(name="pool", technology="lvm_snapshot", sources=("vg/a",), versions=1), 1,
                     []) == []


class _Commands(object):
    """Records argv and answers every command with a warning on stderr."""

    def __init__(self):
        self.calls = []

    def run(self, argv, data=None, check=True, timeout=None):
        self.calls.append((list(argv), data))
        return 0, "", "warning %d\n" % len(self.calls)


def test_without_the_lvm_shell_each_command_is_its_own_process():
    runner = _Commands()
    b = LvmSnapshotBackend(runner)
    b.batch = False
    err = b._batch([["lvremove", "-y", "-q", "vg/a"], ["lvremove", "-y", "-q", "vg/b"]])
    assert runner.calls == [(["lvremove", "-y", "-q", "vg/a"], None), (["lvremove", "-y", "-q", "vg/b"], None)]
    assert err == "warning 1\nwarning 2\n"
    assert b._batch([]) == "" and b._report([]) == {} and len(runner.calls) == 2


@pytest.mark.parametrize("word", ["vg/a b", "it's", 'x"y', "a\\b", "#c", ""])
def test_the_lvm_shell_is_never_fed_a_word_it_would_split_or_quote(word):
    runner = _Commands()
    with pytest.raises(InvalidInput, match="refusing to pass .* to the lvm shell"):
        LvmSnapshotBackend(runner)._batch([["lvremove", "-y", word]])
    assert runner.calls == []
