# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""More paths of the LVM backends driven by the output real LVM gave: the
reports and commands of the recorded rotations
(recorded/lvm/test_versions_rotation_restore_verify_*.yml, written in the
UML guest by ``--pitcopy-record``), replayed call by call through
ReplayRunner (exact argv, the lvm shell's exact stdin) to reach the
refusals, failures and clean-ups the rotation itself never hit. What no
command shows (the LVs' blocks) is faked as in test_replay_lvm.py: the
number of bytes that differ, a block copy that fails with EIO."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _lvm
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CapacityError, CopyFailed, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import (
    LvmCloneBackend,
    LvmSnapshotBackend,
    LvmThinBackend,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition
from ansible_collections.pitcopy.versions.tests.unit.replay import ReplayRunner, load_case

MiB = 1024 * 1024
ROTATION = "test_versions_rotation_restore_verify_lvm_%s_"


def _case(technology):
    return load_case("lvm", ROTATION % technology)["calls"]


def _vg(calls):
    return calls[0]["argv"][-1]


def _runner(calls, indexes, what, strip_vg=()):
    """A ReplayRunner over the recorded calls ``indexes`` (in that order);
    the reports in ``strip_vg`` are asked for all VGs (the guest had only
    the test's VG, so that VG's report is every VG's)."""
    picked = []
    for i in indexes:
        call = calls[i]
        if i in strip_vg:
            call = dict(call, argv=call["argv"][:-1])
        picked.append(call)
    return ReplayRunner(picked, what)


def _rows(call):
    return dict(("%s/%s" % (r["vg_name"], r["lv_name"]), r) for r in json.loads(call["stdout"])["report"][0]["lv"])


def _eio(*args, **kw):
    raise OSError(errno.EIO, "Input/output error")


def _defn(technology, vg, name, sources="abcd", **extra):
    return PoolDefinition(name=name, technology=technology, sources=tuple("%s/%s" % (vg, s) for s in sources),
                          versions=3, **extra)


# --- restores of lvm_snapshot and lvm_thin -------------------------------------------

# the restore of version 2 in the recorded runs: its report (and, for thin
# copies, the activation of each copy with -K), sources a and c
RESTORE = {"snapshot": [61], "thin": [62, 63, 64]}


def _restore_pairs(vg, technology):
    return [CopyPair("%s/%s" % (vg, s), "%s/%s-pc-p%s-02" % (vg, s, technology)) for s in "ac"]


@pytest.mark.parametrize("technology", ["snapshot", "thin"])
def test_restore_the_recorded_report_with_a_failing_block_copy(monkeypatch, technology):
    """The recorded restore up to its block copies; the first write fails
    (EIO): the error names the pair and says no source was restored yet."""
    calls = _case(technology)
    vg = _vg(calls)
    runner = _runner(calls, RESTORE[technology], "restore, block copy fails")
    monkeypatch.setattr(_lvm, "_diff_bytes", lambda src, dst: 8192)
    monkeypatch.setattr(_lvm, "_copy_blocks", _eio)
    b = (LvmSnapshotBackend if technology == "snapshot" else LvmThinBackend)(runner)
    pairs = _restore_pairs(vg, technology)
    with pytest.raises(CopyFailed) as exc:
        b.restore(_defn("lvm_" + technology, vg, "p" + technology), 2, pairs)
    assert "after 0 of 2 sources (none)" in exc.value.msg and pairs[0].source in exc.value.msg, exc.value.msg
    assert exc.value.details.get("source") == pairs[0].source
    runner.assert_done()


def test_restore_through_an_origin_whose_snapshots_lack_cow_space(monkeypatch):
    """Writing 8 MiB back through origin a would overflow its 4 MiB classic
    snapshots (the recorded lv_size and snap_percent): refused with the
    numbers before any block is written."""
    calls = _case("snapshot")
    vg = _vg(calls)
    rows = _rows(calls[61])
    runner = _runner(calls, RESTORE["snapshot"], "restore, no COW space")
    monkeypatch.setattr(_lvm, "_diff_bytes", lambda src, dst: 8 * MiB)
    monkeypatch.setattr(_lvm, "_copy_blocks", lambda *a, **kw: pytest.fail("a block was written"))
    b = LvmSnapshotBackend(runner)
    with pytest.raises(CapacityError) as exc:
        b.restore(_defn("lvm_snapshot", vg, "psnapshot"), 2, _restore_pairs(vg, "snapshot"))
    snaps = sorted(n for n, r in rows.items() if r.get("origin") == "a")
    assert snaps and any(s in exc.value.msg for s in snaps), exc.value.msg
    assert str(8 * MiB) in exc.value.msg and "lvextend -L +" in exc.value.msg
    runner.assert_done()


def test_restore_into_a_thin_pool_without_room(monkeypatch):
    """The changed blocks written back need new blocks of the thin pool;
    more than the recorded free space of tp is refused with the numbers
    (after the recorded activations, before any write)."""
    calls = _case("thin")
    vg = _vg(calls)
    tp = _rows(calls[62])["%s/tp" % vg]
    free = int(int(tp["lv_size"]) * (100.0 - float(tp["data_percent"])) / 100.0)
    runner = _runner(calls, RESTORE["thin"], "restore, thin pool full")
    monkeypatch.setattr(_lvm, "_diff_bytes", lambda src, dst: free + 1)
    monkeypatch.setattr(_lvm, "_copy_blocks", lambda *a, **kw: pytest.fail("a block was written"))
    with pytest.raises(CapacityError) as exc:
        LvmThinBackend(runner).restore(_defn("lvm_thin", vg, "pthin"), 2, _restore_pairs(vg, "thin"))
    assert ("thin pool %s/tp has only %d of %s bytes free" % (vg, free, tp["lv_size"])) in exc.value.msg, \
        exc.value.msg
    runner.assert_done()


def test_a_thin_pool_above_the_limit_refuses_new_snapshots(monkeypatch):
    """check_capacity reads the recorded thin pool's usage; with the limit
    below it, the refusal names the pool, the sources and the numbers."""
    calls = _case("thin")
    vg = _vg(calls)
    tp = _rows(calls[0])["%s/tp" % vg]
    used = float(tp["data_percent"])
    assert used < _lvm.THIN_DATA_MAX_PERCENT  # the real run was far from full
    b = LvmThinBackend(_runner(calls, [0, 0], "thin capacity"))
    d = _defn("lvm_thin", vg, "pthin", sources="ab")
    pairs = [CopyPair(s, b.implied_target("pthin", "01", s)) for s in d.sources]
    b.check_capacity(d, pairs, [], {})  # room: nothing said
    monkeypatch.setattr(_lvm, "THIN_DATA_MAX_PERCENT", used)
    with pytest.raises(CapacityError) as exc:
        b.check_capacity(d, pairs, [], {})
    assert "thin pool %s/tp is too full for 2 more thin snapshot(s) (%s)" % (vg, ", ".join(d.sources)) \
        in exc.value.msg, exc.value.msg
    assert "data %.2f%% used of %s bytes" % (used, tp["lv_size"]) in exc.value.msg
    b.runner.assert_done()


# --- reading a copy, promotion, deletion, discard (lvm_snapshot) ---------------------------

def test_copy_view_of_the_recorded_copies():
    """copy_view on the final report of the lvm_snapshot rotation: the
    overflowed copy, another version, a missing copy are refused naming the
    reason; a valid copy is its /dev/mapper device."""
    calls = _case("snapshot")
    vg = _vg(calls)
    b = LvmSnapshotBackend(_runner(calls, [73] * 4, "copy_view"))
    d = _defn("lvm_snapshot", vg, "psnapshot")
    for pair, version, why in [(("b", "b-pc-psnapshot-02"), 2, "it is not valid: the snapshot overflowed"),
                               (("a", "a-pc-psnapshot-02"), 4, "it holds version 2"),
                               (("a", "a-pc-psnapshot-03"), 3, "it does not exist")]:
        with pytest.raises(InvalidInput) as exc:
            b.copy_view(d, version, CopyPair("%s/%s" % (vg, pair[0]), "%s/%s" % (vg, pair[1])))
        assert why in exc.value.msg and "nothing was changed" in exc.value.msg, exc.value.msg
    view = b.copy_view(d, 2, CopyPair("%s/a" % vg, "%s/a-pc-psnapshot-02" % vg))
    assert view.volume == "%s/a-pc-psnapshot-02" % vg
    assert view.kind == "block" and view.name == _lvm.dm_path(view.volume)
    b.runner.assert_done()


def test_promote_refuses_what_the_recorded_report_shows():
    """promote reads one report first: a target LV without the pool's tag is
    never overwritten; a staged copy that is gone (and no promoted copy of
    that version) fails the version; a copy already renamed by an
    interrupted call is left as it is (no command, one report to check)."""
    calls = _case("snapshot")
    vg = _vg(calls)
    b = LvmSnapshotBackend(_runner(calls, [73, 73, 73, 73], "promote"))
    d = _defn("lvm_snapshot", vg, "psnapshot")
    a, d_ = "%s/a" % vg, "%s/d" % vg
    foreign = CopyPair(a, "%s/foreign-pc-x" % vg)
    with pytest.raises(CopyFailed, match="foreign-pc-x exists without this copy pool's tag"):
        b.promote(d, 5, [foreign], [CopyPair(a, b.staging_name(foreign.target, 5))], [])
    target = CopyPair(d_, "%s/d-pc-psnapshot-01" % vg)  # holds version 4
    with pytest.raises(CopyFailed) as exc:
        b.promote(d, 5, [target], [CopyPair(d_, b.staging_name(target.target, 5))], [])
    assert "staged copy %s of %s is missing; version 5 cannot be completed" % (
        b.staging_name(target.target, 5), d_) in exc.value.msg
    # version 4 was promoted: nothing to run, the second report confirms it
    b.promote(d, 4, [target], [CopyPair(d_, b.staging_name(target.target, 4))], [])
    b.runner.assert_done()


def test_delete_copies_replays_the_recorded_removal():
    """The recorded deletion of version 3 (report, one lvm shell batch of
    lvremove, report): a target that no longer exists is skipped silently,
    the others go in one batch; no pairs, no command."""
    calls = _case("snapshot")
    vg = _vg(calls)
    assert "lvremove" in calls[72]["data"]
    b = LvmSnapshotBackend(_runner(calls, [71, 72, 73], "delete_copies"))
    d = _defn("lvm_snapshot", vg, "psnapshot")
    pairs = [CopyPair("%s/%s" % (vg, s), "%s/%s-pc-psnapshot-03" % (vg, s)) for s in "abcd"]
    assert b.delete_copies(d, pairs + [CopyPair("%s/a" % vg, "%s/gone-pc-psnapshot-03" % vg)]) == []
    assert b.delete_copies(d, []) == []
    b.runner.assert_done()


def test_discard_removes_only_the_pools_staged_lvs():
    """discard of an interrupted version: one report, then the recorded
    lvremove batch of the LVs that carry the pool's tag (an unknown name and
    the foreign LV are not touched); nothing staged, nothing run."""
    calls = _case("snapshot")
    vg = _vg(calls)
    b = LvmSnapshotBackend(_runner(calls, [71, 72], "discard"))
    d = _defn("lvm_snapshot", vg, "psnapshot")
    staged = [CopyPair("%s/%s" % (vg, s), "%s/%s-pc-psnapshot-03" % (vg, s)) for s in "abcd"]
    b.discard(d, staged + [CopyPair("%s/a" % vg, "%s/foreign-pc-x" % vg)])
    b.discard(d, [])
    b.runner.assert_done()


@pytest.mark.parametrize("technology,index", [("snapshot", 7), ("thin", 7)])
def test_plan_copies_refuses_a_source_the_report_lacks(technology, index):
    """plan_copies reads the recorded report (with lv_kernel_major); a source
    LVM does not report is refused before any command."""
    calls = _case(technology)
    vg = _vg(calls)
    assert calls[index]["argv"][-2] == "-o+lv_kernel_major"
    b = (LvmSnapshotBackend if technology == "snapshot" else LvmThinBackend)(
        _runner(calls, [index], "plan_copies"))
    d = _defn("lvm_" + technology, vg, "p" + technology, sources="ax",
              **({"snapshot_size": "4M"} if technology == "snapshot" else {}))
    pairs = [CopyPair(s, b.implied_target(d.name, "01", s)) for s in d.sources]
    with pytest.raises(CopyFailed) as exc:
        b.plan_copies(d, 1, pairs)
    assert "source %s/x does not exist; no copy was made" % vg in exc.value.msg
    b.runner.assert_done()


# --- lvm_clone ---------------------------------------------------------------------

def _clone_report(calls, which):
    """The index of a full report of the recorded lvm_clone rotation:
    "last" (t01a holds version 3, t02a made writable by the real test), or
    "staged" (in the middle of the first copy: t01a marked, still staged)."""
    reports = [i for i, c in enumerate(calls) if c["argv"][0] == "lvs" and "-o+lv_kernel_major" not in c["argv"]]
    if which == "last":
        return reports[-1]
    vg = _vg(calls)
    return next(i for i in reports if "pitcopy_staged" in (_rows(calls[i]).get("%s/t01a" % vg) or {}).get(
        "lv_tags", ""))


def _clone(indexes, what, strip_vg=()):
    calls = _case("clone")
    indexes = [_clone_report(calls, i) if isinstance(i, str) else i for i in indexes]
    return LvmCloneBackend(_runner(calls, indexes, what, strip_vg)), _vg(calls)


def _clone_defn(vg):
    return _defn("lvm_clone", vg, "pclone")


@pytest.mark.parametrize("index,pair,version,match", [
    # the last report: t01a holds version 3 (before the test deletes it),
    # t02a was made writable by the real test, b is a source, not a copy
    ("last", ("a", "b"), 4, "holds no copy of this pool"),
    ("last", ("a", "t01a"), 1, "holds version 3, not version 1"),
    ("last", ("a", "t02a"), 4, "the copy is not valid \\(it was made writable after the copy"),
    # in the middle of the first copy: t01a is tagged but still staged
    ("staged", ("a", "t01a"), 1, "the copy is not valid \\(the copy onto it did not complete\\)"),
])
def test_clone_restore_refusals(index, pair, version, match):
    b, vg = _clone([index], "clone restore refusal")
    with pytest.raises(InvalidInput, match=match):
        b.restore(_clone_defn(vg), version, [CopyPair("%s/%s" % (vg, pair[0]), "%s/%s" % (vg, pair[1]))])
    b.runner.assert_done()


def test_clone_promote_refusals_and_a_missing_target_to_delete():
    b, vg = _clone(["last"] * 3, "clone promote")
    d = _clone_defn(vg)
    a = "%s/a" % vg
    with pytest.raises(CopyFailed, match="clone target %s/t02d lost this copy pool's tag" % vg):
        b.promote(d, 5, [CopyPair(a, "%s/t02d" % vg)], [CopyPair(a, "%s/t02d" % vg)], [])
    with pytest.raises(CopyFailed, match="clone target %s/t02c holds version 4, not 5" % vg):
        b.promote(d, 5, [CopyPair(a, "%s/t02c" % vg)], [CopyPair(a, "%s/t02c" % vg)], [])
    # a target LVM no longer reports: nothing to delete, nothing skipped
    assert b.delete_copies(d, [CopyPair(a, "%s/tgone" % vg)]) == []
    b.runner.assert_done()


@pytest.mark.parametrize("pair,match", [
    (("x", "t01a"), "source {vg}/x does not exist"),
    (("a", "tgone"), "target {vg}/tgone does not exist"),
    (("a", "a"), "target {vg}/a holds data this copy pool does not own"),
])
def test_clone_plan_copies_refusals(pair, match, monkeypatch, tmp_path):
    """plan_copies checks every pair against the recorded report before the
    first write: a missing source or target; an LV without the pool's tag
    whose device cannot be read (here: no such device node) is never
    overwritten."""
    b, vg = _clone([7], "clone plan_copies")
    assert b.runner.calls[0]["argv"][-2] == "-o+lv_kernel_major"
    monkeypatch.setattr(_lvm, "dm_path", lambda name: str(tmp_path / "no-device"))
    with pytest.raises(CopyFailed, match=match.format(vg=vg)):
        b.plan_copies(_clone_defn(vg), 1, [CopyPair("%s/%s" % (vg, pair[0]), "%s/%s" % (vg, pair[1]))])
    b.runner.assert_done()


def test_clone_discard_removes_the_temporary_snapshots_of_an_interrupted_copy():
    """discard with nothing staged: one report of every VG (recorded while
    the temporary snapshots of a failed copy existed, in
    tests/real/test_lvm.py::test_clone_failure_mid_copy_loses_only_the_replaced_copies_written),
    then the recorded lvremove batch of exactly those (tag pitcopy_tmp and the
    pool's tag)."""
    calls = load_case("lvm", "test_clone_failure_mid_copy_loses_only_the_replaced_copies_written")["calls"]
    # the release of that test's failed copy: its report, then its lvremove batch
    i = next(i for i, c in enumerate(calls) if c["argv"] == ["lvm"] and c["data"].startswith("lvremove"))
    b = LvmCloneBackend(_runner(calls, [i - 1, i], "clone discard", strip_vg=(i - 1,)))
    assert b.runner.calls[1]["data"].count("lvremove") == 3 and "pctmp-v3" in b.runner.calls[1]["data"]
    b.discard(_defn("lvm_clone", _vg(calls), "cm", sources="abc"), [])
    b.runner.assert_done()


def _clone_device(tmp_path, monkeypatch, vg, target, text):
    """The block device of clone copy ``target`` as a file holding what the
    real test wrote to its source (``text`` at 0 and at 1 MiB, as
    tests/real/test_lvm.py write_data): its sha256 is the recorded tag."""
    data = text.encode("utf-8").ljust(4096, b"\0")
    path = tmp_path / target.replace("/", "__")
    with open(str(path), "wb") as fh:
        fh.truncate(8 * MiB)
        fh.seek(0)
        fh.write(data)
        fh.seek(MiB)
        fh.write(data)
    monkeypatch.setattr(_lvm, "dm_path", lambda name: str(tmp_path / name.replace("/", "__")))


@pytest.mark.parametrize("source,text,match", [
    # the copy checks out (its recorded checksum), but its source is gone
    ("x", "v4 {vg}/c", "cannot restore {vg}/x: the source LV does not exist; create it \\(at least 8388608 bytes\\)"),
    # the copy's blocks changed behind the tool's back
    ("c", "changed by someone", "the copy is not valid \\(its data no longer matches its checksum\\)"),
])
def test_clone_restore_reads_the_copy_against_its_recorded_checksum(tmp_path, monkeypatch, source, text, match):
    """Restoring version 4 of c from t02c (the last report of the clone
    rotation; the copy is read once to check the sha256 in its tag)."""
    b, vg = _clone(["last"] * 2, "clone restore, checksum")
    _clone_device(tmp_path, monkeypatch, vg, "%s/t02c" % vg, text.format(vg=vg))
    monkeypatch.setattr(_lvm, "_copy_blocks", lambda *a, **kw: pytest.fail("a block was written"))
    with pytest.raises(InvalidInput, match=match.format(vg=vg)):
        b.restore(_clone_defn(vg), 4, [CopyPair("%s/%s" % (vg, source), "%s/t02c" % vg)])
    b.runner.assert_done()


def test_clone_restore_with_a_failing_block_copy(tmp_path, monkeypatch):
    """The copy checks out, c is neither open nor too small (recorded), the
    write back fails with EIO: the error names the pair, nothing restored."""
    b, vg = _clone(["last"] * 2, "clone restore, block copy fails")
    _clone_device(tmp_path, monkeypatch, vg, "%s/t02c" % vg, "v4 %s/c" % vg)
    monkeypatch.setattr(_lvm, "_copy_blocks", _eio)
    with pytest.raises(CopyFailed) as exc:
        b.restore(_clone_defn(vg), 4, [CopyPair("%s/c" % vg, "%s/t02c" % vg)])
    assert "restore of %s/c from %s/t02c failed after 0 of 1 sources (none)" % (vg, vg) in exc.value.msg
    b.runner.assert_done()
