# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole sources of a version restored elsewhere (copy_version
state=restored, restore_to without paths; issue 17, item 4) on real LVM
(in the VM): a writable thin snapshot (lvm_thin) or a new LV holding the
classic snapshot's blocks (lvm_snapshot), beside production, never rotated."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import dm_path
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition
from ansible_collections.pitcopy.versions.tests.real.test_lvm import (  # pylint: disable=unused-import
    _setup_sources,
    activate,
    exists,
    lv,
    lv_tags,
    lvm_runner,  # noqa: F401 (a fixture)
    make_engine,
    read_data,
    vgs,  # noqa: F401 (a fixture)
    write_data,
)
from ansible_collections.pitcopy.versions.tests.utils.engine_calls import copy, define, findings, info

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
    expected = dict((s, _sha(copies[s])) for s in (a, b))
    for s in (a, b):
        write_data(s, "live %s" % s)
    live = dict((s, _sha(s)) for s in (a, b))
    copy(eng, name)
    new = {a: "%s/r1_a" % vg, b: "%s/r1_b" % vg}

    # check mode (a plan not applied): what would be made, nothing made
    p = _plan(eng, name, 1, "r1_")
    assert p.changed is True
    assert p.result["restored_to"] == [{"source": s, "volume": new[s]} for s in (a, b)]
    assert p.before["restored_to"] == [] and p.after["restored_to"] == p.result["restored_to"]
    assert not exists(new[a]) and not exists(new[b])

    out = _plan(eng, name, 1, "r1_").apply()
    assert out["restored_to"] == p.result["restored_to"]
    for s in (a, b):
        assert _sha(new[s]) == expected[s], s          # byte-identical to version 1's copy
        assert read_data(new[s]) == "v1 of %s" % s
        assert _sha(s) == live[s], s                   # production unchanged
        assert not [t for t in lv_tags(new[s]) if t.startswith("pitcopy_pool=")]  # not a copy of ours
        write_data(new[s], "scratch %s" % s)           # writable
        assert read_data(new[s]) == "scratch %s" % s
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
    lv(vg, "r2_b", 8)
    msg = _refused(eng, name, kept[-1], "r2_")
    assert "LV %s/r2_b exists and was not made from the copy" % vg in msg, msg
    assert not exists("%s/r2_a" % vg)
    accepted = "accepted: an LV name prefix"
    for bad, why in [
        ("bad prefix", "is not a usable LV name prefix"),
        ("-x", "is not a usable LV name prefix"),
        ("%s/two" % vg, "names one LV but 2 sources are restored"),
        ("othervg/x", "is in VG othervg, not in VG %s" % vg),
    ]:
        kw = {"volumes": [a]} if bad.startswith("othervg") else {}
        msg = _refused(eng, name, kept[-1], bad, **kw)
        assert repr(bad) in msg and why in msg and accepted in msg, msg
