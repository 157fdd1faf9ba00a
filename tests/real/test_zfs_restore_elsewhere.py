# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole sources of a version restored elsewhere (copy_version
state=restored, restore_to without paths; issue 17, item 4) on real ZFS,
both technologies: a full ``zfs send | zfs receive`` of the version's
snapshot into a NEW dataset below restore_to, no clone (rotation still
destroys the copy), none of the pool's marks on it. Every kill point is
taken in tests/unit/plugins/module_utils/test_zfs_restore_elsewhere.py;
here one killed run is finished by verify_records repair."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from dataclasses import replace

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    JOURNAL_RESTORE_ELSEWHERE,
    CopyPair,
    Journal,
    PoolDefinition,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSnapshotBackend
from ansible_collections.pitcopy.versions.tests.real.test_zfs import (
    SBIN,
    all_names,
    exists,
    make_engine,
    mountpoint,
    ours,
    sh,
)
from ansible_collections.pitcopy.versions.tests.utils.engine_calls import copy, define, findings
from ansible_collections.pitcopy.versions.tests.utils.trees import tree

pytestmark = pytest.mark.zfs


def _write(root, text):
    os.makedirs(os.path.join(root, "d"), exist_ok=True)
    for name in ("data", os.path.join("d", "more")):
        with open(os.path.join(root, name), "w") as fh:
            fh.write("%s %s\n" % (text, name))
    os.chmod(os.path.join(root, "d", "more"), 0o640)


def test_whole_sources_restored_elsewhere(zpools, tmp_path):
    """zfs_snapshot, the whole story (zfs_send's restore elsewhere, three
    sources with a zvol, is proven in test_zfs.py's rotation test, which
    has its versions already: measured 50 s in the emulated guest, 103 s
    for zfs_send in a test of its own)."""
    technology = "zfs_snapshot"
    pool = zpools.create("r")
    source = "%s/db" % pool
    sh("zfs", "create", source)
    eng = make_engine(tmp_path / "state", runner=SubprocessRunner(env={"PATH": SBIN}))
    define(eng, PoolDefinition(name="re", technology=technology, sources=(source,), versions=3))
    live = mountpoint(source)
    _write(live, "v1")
    expected = tree(live)
    for n in (1, 2, 3):
        if n > 1:
            _write(live, "v%d" % n)
        assert copy(eng, "re")["version"]["number"] == n
    _write(live, "live")
    production = tree(live)

    # version 1, the oldest (2 and 3 kept), beside production
    restore_to = "%s/restored" % pool
    sh("zfs", "create", restore_to)
    new = "%s/db" % restore_to
    with eng.session("re") as s:
        p = s.plan_restore_elsewhere(1, restore_to)
        assert p.changed and p.result["restored_to"] == [{"source": source, "volume": new}]
        assert not exists(new)  # planned only
        out = p.apply()
    assert out["restored"] == [source] and eng.store.load("re").journal is None
    assert tree(mountpoint(new)) == expected  # byte-identical to version 1
    assert tree(live) == production
    guid = sh("zfs", "get", "-H", "-p", "-o", "value", "guid", out["version"]["pairs"][0]["target"]).strip()
    # what the receive brought: only our restored_from mark, no snapshot, no clone
    assert ours(new) == ([(new, "pitcopy:restored_from", guid)], []), ours(new)
    assert sh("zfs", "get", "-H", "-o", "value", "origin", new).strip() == "-"
    with open(os.path.join(mountpoint(new), "scratch"), "w") as fh:
        fh.write("writable\n")
    f = findings(eng, "re")
    assert f["consistent"] is True and not [x for x in f["findings"] if restore_to in str(x)], f
    backend = ZfsSnapshotBackend(SubprocessRunner(env={"PATH": SBIN}))
    assert not [c for c in backend.list_copies("re") if c.target.startswith(restore_to)]  # no copy, staged or not

    # again: nothing to do
    with eng.session("re") as s:
        again = s.plan_restore_elsewhere(1, restore_to)
        assert again.changed is False and again.apply()["restored_to"] == out["restored_to"]

    # somebody's dataset at the name: refused, nothing changed
    other = "%s/other" % pool
    sh("zfs", "create", other)
    sh("zfs", "create", "%s/db" % other)
    names = all_names(pool)
    with eng.session("re") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_restore_elsewhere(2, other).apply()
    assert "%s/db" % other in exc.value.msg and "was not made from the copy" in exc.value.msg, exc.value.msg
    assert all_names(pool) == names and eng.store.load("re").journal is None

    # a run killed after the receive (the dataset still marked unfinished) is
    # finished by verify_records repair in one try
    rec = eng.store.load("re").replication(2)
    sh("zfs", "create", "%s/half" % pool)
    half = "%s/half/db" % pool
    snap2 = rec.pairs[0].target
    guid2 = sh("zfs", "get", "-H", "-p", "-o", "value", "guid", snap2).strip()
    SubprocessRunner(env={"PATH": SBIN}).pipe([["zfs", "send", snap2], [
        "zfs", "receive", "-u", "-o", "pitcopy:restored_from=" + guid2, "-o", "pitcopy:restoring=" + guid2, half]])
    with eng.session("re") as s:
        s._save(replace(s.state, journal=Journal(
            operation=JOURNAL_RESTORE_ELSEWHERE, version=2, target_pool=rec.target_pool, pairs=rec.pairs,
            phase="restoring", started="2026-12-01T00:00:00+00:00", pid=1,
            asides=(CopyPair(source, half),), done=())))
    fixed = findings(eng, "re", repair=True)
    assert "interrupted_restore_elsewhere" in [x["problem"] for x in fixed["findings"]], fixed
    assert eng.store.load("re").journal is None
    assert ours(half) == ([(half, "pitcopy:restored_from", guid2)], []), ours(half)
    with open(os.path.join(mountpoint(half), "data")) as fh:
        assert fh.read() == "v2 data\n"

    # rotation goes on: version 4 replaces version 1, the restored dataset stays
    assert copy(eng, "re")["replaced_version"] == 1
    assert tree(mountpoint(new))["data"] == expected["data"]
    assert findings(eng, "re")["consistent"] is True
