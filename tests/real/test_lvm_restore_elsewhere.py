# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole sources of a version restored elsewhere (copy_version
state=restored, restore_to without paths; issue 17, item 4) on real LVM
(in the VM): a writable thin snapshot (lvm_thin) or a new LV holding the
copy's blocks (lvm_snapshot; lvm_clone, whose copies are in another VG),
beside production, never rotated."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
from dataclasses import replace

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CapacityError, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import dm_path
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    JOURNAL_RESTORE_ELSEWHERE,
    CopyPair,
    Journal,
    PoolDefinition,
    TargetPool,
)
from ansible_collections.pitcopy.versions.tests.real.test_lvm import (  # pylint: disable=unused-import
    _setup_sources,
    activate,
    exists,
    lv,
    lv_tags,
    lvm_runner,  # noqa: F401 (a fixture)
    make_engine,
    read_data,
    sh,
    vgs,  # noqa: F401 (a fixture)
    write_data,
)
from ansible_collections.pitcopy.versions.tests.utils.engine_calls import copy, define, findings, info
from ansible_collections.pitcopy.versions.tests.utils.tools_env import MiB

pytestmark = pytest.mark.lvm


def _sha(name):
    h = hashlib.sha256()
    with open(dm_path(name), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _plan(eng, name, *args, **kw):
    with eng.session(name) as s:
        return s.plan_restore_elsewhere(*args, **kw)


def _refused(eng, name, *args, **kw):
    """The msg of an InvalidInput; the state file as before."""
    with open(eng.store.path(name), "rb") as fh:
        before = fh.read()
    with pytest.raises(InvalidInput) as exc:
        _plan(eng, name, *args, **kw).apply()
    with open(eng.store.path(name), "rb") as fh:
        assert fh.read() == before
    return exc.value.msg


def _version_1_restored_beside(eng, name, vg, copies):
    """With version 1 taken and its ``copies`` ({source: copy}), the
    sources get new data, version 2 is taken, and version 1 is restored
    beside production (prefix r1_): check mode first (nothing made), then
    applied. Each new LV holds version 1's blocks and production is
    unchanged. The new LVs, {source: LV}."""
    sources = sorted(copies)
    expected = dict((s, _sha(copies[s])) for s in sources)
    for s in sources:
        write_data(s, "live %s" % s)
    live = dict((s, _sha(s)) for s in sources)
    copy(eng, name)
    new = dict((s, "%s/r1_%s" % (vg, s.rsplit("/", 1)[1])) for s in sources)

    # check mode (a plan not applied): what would be made, nothing made
    p = _plan(eng, name, 1, "r1_")
    assert p.changed is True
    assert p.result["restored_to"] == [{"source": s, "volume": new[s]} for s in sources]
    assert p.before["restored_to"] == [] and p.after["restored_to"] == p.result["restored_to"]
    assert not [s for s in sources if exists(new[s])]

    out = _plan(eng, name, 1, "r1_").apply()
    assert out["restored_to"] == p.result["restored_to"]
    for s in sources:
        assert _sha(new[s]) == expected[s], s          # byte-identical to version 1's copy
        assert read_data(new[s]) == "v1 of %s" % s
        assert _sha(s) == live[s], s                   # production unchanged
    return new


def _bad_restore_to_refused(eng, name, version, vg, a, other_vg, accepted):
    """Something else at a new LV's name, then bad restore_to values:
    each refused, naming the value and what is ``accepted``, nothing made
    or changed. ``other_vg``: (a vg/lv name in another VG, with source
    ``a`` alone, and the reason it is refused)."""
    lv(vg, "r2_b", 8)
    msg = _refused(eng, name, version, "r2_")
    assert "LV %s/r2_b exists and was not made from the copy" % vg in msg, msg
    assert not exists("%s/r2_a" % vg)
    for bad, why, kw in [
        ("bad prefix", "is not a usable LV name prefix", {}),
        ("-x", "is not a usable LV name prefix", {}),
        ("%s/two" % vg, "names one LV but 2 sources are restored", {}),
        (other_vg[0], other_vg[1], {"volumes": [a]}),
    ]:
        msg = _refused(eng, name, version, bad, **kw)
        assert repr(bad) in msg and why in msg and "accepted: an LV name prefix" in msg and accepted in msg, msg


def _writable(lvs):
    for s, name in lvs.items():
        write_data(name, "scratch %s" % s)
        assert read_data(name) == "scratch %s" % s


@pytest.mark.parametrize("technology", ["lvm_snapshot", "lvm_thin"])
def test_whole_sources_restored_elsewhere(vgs, lvm_runner, tmp_path, technology):  # pylint: disable=redefined-outer-name
    vg, all_sources = _setup_sources(vgs, technology)
    a, b = all_sources[:2]
    extra = {"snapshot_size": "4M"} if technology == "lvm_snapshot" else {}
    name = "re%s" % technology[4:]
    eng = make_engine(tmp_path / "state", lvm_runner)
    define(eng, PoolDefinition(name=name, technology=technology, sources=(a, b), versions=2, **extra))
    for s in (a, b):
        write_data(s, "v1 of %s" % s)
    copy(eng, name)
    copies = dict((p["source"], p["target"]) for p in info(eng, name)["replication_records"][0]["pairs"])
    activate(*copies.values())
    new = _version_1_restored_beside(eng, name, vg, copies)
    for s in (a, b):
        assert not [t for t in lv_tags(new[s]) if t.startswith("pitcopy_pool=")]  # not a copy of ours
    _writable(new)
    assert info(eng, name)["interrupted_copy"] is None

    # a second run: no change
    again = _plan(eng, name, 1, "r1_")
    assert again.changed is False and again.before["restored_to"] == again.after["restored_to"]

    # not ours: verify_records names none of them; rotation leaves them
    assert not [f for f in findings(eng, name) if "r1_" in str(f)]
    copy(eng, name)
    copy(eng, name)
    kept = [r["version"] for r in info(eng, name)["replication_records"]]
    assert 1 not in kept
    for s in (a, b):
        assert exists(new[s]) and read_data(new[s]) == "scratch %s" % s
    assert not [f for f in findings(eng, name) if "r1_" in str(f)]

    # one source to a vg/lv name
    one = "%s/one_a" % vg
    out = _plan(eng, name, kept[-1], one, volumes=[a]).apply()
    assert out["restored_to"] == [{"source": a, "volume": one}] and read_data(one) == "live %s" % a

    # something else at a new LV's name, bad restore_to: refused, nothing made or changed
    _bad_restore_to_refused(eng, name, kept[-1], vg, a, ("othervg/x", "is in VG othervg, not in VG %s" % vg),
                            "accepted: an LV name prefix")


# --- lvm_clone: full copies in another VG --------------------------------------


def _clone_pool_at_version_1(vgs, lvm_runner, tmp_path, name):  # pylint: disable=redefined-outer-name
    """Sources a, b in one VG; two target pools of two LVs each in a second
    VG (the copies' disks), two versions kept; version 1 copied with "v1 of
    <source>" in each source. Returns the engine, both VGs, the sources and
    version 1's {source: copy}."""
    vg = vgs.create("cs", 256 * MiB)
    bk = vgs.create("cb", 256 * MiB)
    a, b = lv(vg, "a", 8), lv(vg, "b", 8)
    tps = tuple(TargetPool(name=t, volumes=(lv(bk, "t%sa" % t, 8), lv(bk, "t%sb" % t, 8))) for t in ("01", "02"))
    eng = make_engine(tmp_path / "state", lvm_runner)
    define(eng, PoolDefinition(name=name, technology="lvm_clone", sources=(a, b), versions=2, target_pools=tps))
    for s in (a, b):
        write_data(s, "v1 of %s" % s)
    copy(eng, name)
    return eng, vg, bk, a, b, _copies(eng, name, 1)


def _copies(eng, name, version):
    rec = [r for r in info(eng, name)["replication_records"] if r["version"] == version][0]
    return dict((p["source"], p["target"]) for p in rec["pairs"])


def _uuid(name):
    return sh("lvs", "--noheadings", "-o", "lv_uuid", name).strip()


def _tag_value(name, prefix):
    return [t[len(prefix):] for t in lv_tags(name) if t.startswith(prefix)][0]


def test_lvm_clone_whole_sources_restored_beside_production(vgs, lvm_runner, tmp_path):  # pylint: disable=redefined-outer-name
    name = "reclone"
    eng, vg, bk, a, b, copies = _clone_pool_at_version_1(vgs, lvm_runner, tmp_path, name)
    assert all(c.startswith(bk + "/") for c in copies.values())
    # the new LVs beside production, in the sources' VG
    new = _version_1_restored_beside(eng, name, vg, copies)
    for s in (a, b):
        # only the mark naming the copy (its LV UUID and checksum): none of the pool's
        assert lv_tags(new[s]) == ["pitcopy_restored_from=%s:%s" % (
            _uuid(copies[s]), _tag_value(copies[s], "pitcopy_sha256="))], lv_tags(new[s])
    _writable(new)
    assert info(eng, name)["interrupted_copy"] is None

    # a second run: no change
    again = _plan(eng, name, 1, "r1_")
    assert again.changed is False and again.before["restored_to"] == again.after["restored_to"]

    # not copies: verify_records lists none of them; a rotation that releases
    # and overwrites version 1's copies leaves them as they are
    checked = findings(eng, name)
    assert checked["consistent"] is True and "r1_" not in str(checked), checked
    copy(eng, name)
    kept = [r["version"] for r in info(eng, name)["replication_records"]]
    assert kept == [2, 3]
    assert _copies(eng, name, 3) == copies             # the same target LVs (and LV UUIDs), version 3 now
    for s in (a, b):
        assert exists(new[s]) and read_data(new[s]) == "scratch %s" % s
        assert read_data(copies[s]) == "live %s" % s
    checked = findings(eng, name)
    assert checked["consistent"] is True and "r1_" not in str(checked), checked

    # version 3 to the same names: those LVs were made from version 1's data
    # in the same target LVs, so they are somebody's now; refused
    msg = _refused(eng, name, 3, "r1_")
    assert "LV %s exists and was not made from the copy %s of version 3" % (new[a], copies[a]) in msg, msg

    # one source to a vg/lv name in the copies' VG
    one = "%s/one_a" % bk
    out = _plan(eng, name, 3, one, volumes=[a]).apply()
    assert out["restored_to"] == [{"source": a, "volume": one}] and read_data(one) == "live %s" % a
    assert _plan(eng, name, 3, one, volumes=[a]).changed is False

    # something else at a new LV's name, bad restore_to: refused, nothing made or changed
    _bad_restore_to_refused(eng, name, 3, vg, a,
                            ("pcnovg/x", "puts the new LV pcnovg/x in VG pcnovg, which does not exist"),
                            "in any existing VG")

    # no room in the VG named: refused with the numbers, nothing made
    small = vgs.create("cz", 16 * MiB)
    lv(small, "fill", 8)
    with open(eng.store.path(name), "rb") as fh:
        before = fh.read()
    with pytest.raises(CapacityError) as exc:
        _plan(eng, name, 3, "%s/x" % small, volumes=[a]).apply()
    assert "in VG %s" % small in exc.value.msg and "nothing was changed" in exc.value.msg, exc.value.msg
    assert not exists("%s/x" % small)
    with open(eng.store.path(name), "rb") as fh:
        assert fh.read() == before


def test_lvm_clone_restore_elsewhere_killed_midway_is_finished_by_repair(vgs, lvm_runner, tmp_path):  # pylint: disable=redefined-outer-name
    name = "kiclone"
    eng, vg, bk, a, b, copies = _clone_pool_at_version_1(vgs, lvm_runner, tmp_path, name)
    planned = _plan(eng, name, 1, "k_").result["restored_to"]
    assert planned == [{"source": a, "volume": "%s/k_a" % vg}, {"source": b, "volume": "%s/k_b" % vg}]
    # what a run killed while writing the second LV leaves: the first made,
    # the second created with its marks (restoring) and half written, the journal
    with eng.session(name) as s:
        rec = s.state.replication(1)
        first = [p for p in rec.pairs if p.source == a][0]
        s._backend().restore_elsewhere(s.state.definition, 1, first, "%s/k_a" % vg)
        s._save(replace(s.state, journal=Journal(
            operation=JOURNAL_RESTORE_ELSEWHERE, version=1, target_pool=rec.target_pool, pairs=rec.pairs,
            phase="restoring", started="2026-12-01T00:00:00+00:00", pid=1,
            asides=tuple(CopyPair(v["source"], v["volume"]) for v in planned), done=())))
    tag = "pitcopy_restored_from=%s:%s" % (_uuid(copies[b]), _tag_value(copies[b], "pitcopy_sha256="))
    sh("lvcreate", "-q", "-y", "-Wn", "-Zn", "-L", "8M", "-n", "k_b", "--addtag", tag, "--addtag",
       "pitcopy_restoring", vg)
    write_data("%s/k_b" % vg, "half written")
    with open(eng.store.path(name), "rb") as fh:
        before = fh.read()
    found = [f for f in findings(eng, name)["findings"] if f["problem"] == "interrupted_restore_elsewhere"]
    assert len(found) == 1 and "repair: true would have finished" in found[0]["action"], found
    with open(eng.store.path(name), "rb") as fh:
        assert fh.read() == before
    assert read_data("%s/k_b" % vg) == "half written"
    findings(eng, name, repair=True)
    assert info(eng, name)["interrupted_copy"] is None
    with eng.session(name) as s:
        assert s.state.journal is None
    for v in planned:
        assert read_data(v["volume"]) == "v1 of %s" % v["source"]
        assert _sha(v["volume"]) == _sha(copies[v["source"]])
    assert lv_tags("%s/k_b" % vg) == [tag]
    assert _plan(eng, name, 1, "k_").changed is False
    assert findings(eng, name)["consistent"] is True
