# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole sources of a version restored elsewhere (copy_version
state=restored, restore_to without paths; issue 17, item 4) on real btrfs,
both technologies: new writable snapshots beside production, never rotated."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from dataclasses import replace

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import subvol_info
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    JOURNAL_RESTORE_ELSEWHERE,
    CopyPair,
    Journal,
)
from ansible_collections.pitcopy.versions.tests.real.test_btrfs import btrfs, db_www_world, read, write
from ansible_collections.pitcopy.versions.tests.real.test_btrfs_browse import plan, refused, state_bytes
from ansible_collections.pitcopy.versions.tests.utils.trees import tree

pytestmark = pytest.mark.btrfs


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_whole_sources_restored_elsewhere(fs_pair, runner, tmp_path, technology):
    src, dst = fs_pair
    w = db_www_world(tmp_path, runner, fs_pair, technology)
    db, www = w.sources
    w.write_owned_files()
    expected = dict((s, tree(s)) for s in w.sources)
    w.copy()
    for s in w.sources:
        write(os.path.join(s, "d", "data"), "live\n")
        write(os.path.join(s, "new"), "added since\n")
    live = dict((s, tree(s)) for s in w.sources)
    w.copy()

    # the copies' filesystem: the sources' (btrfs_snapshot) or the target pool's (btrfs_send)
    fs = src if technology == "btrfs_snapshot" else dst
    restore_to = fs.path("compare")
    os.makedirs(restore_to)
    volumes = {db: os.path.join(restore_to, "db"), www: os.path.join(restore_to, "www")}

    # check mode (a plan not applied): what would be made, nothing made
    p = plan(w, "plan_restore_elsewhere", 1, restore_to)
    assert p.changed is True
    assert p.result["restored_to"] == [{"source": s, "volume": volumes[s]} for s in (db, www)]
    assert p.before["restored_to"] == [] and p.after["restored_to"] == p.result["restored_to"]
    assert os.listdir(restore_to) == []

    out = plan(w, "plan_restore_elsewhere", 1, restore_to).apply()
    assert out["restored_to"] == [{"source": s, "volume": volumes[s]} for s in (db, www)]
    assert sorted(out["restored"]) == sorted([db, www])
    for s, v in volumes.items():
        assert tree(v) == expected[s], s  # byte-identical to version 1: contents, owners, modes, xattrs
        assert tree(s) == live[s], s  # production unchanged
        info = subvol_info(v)
        assert not info["readonly"]
        write(os.path.join(v, "scratch"), "writable\n")  # the new volume is writable
        assert not [n for n in os.listdir(restore_to) if n.startswith(".pitcopy")]  # no mark of ours
    assert w.state().journal is None

    # a second run: no change; diff before == after
    again = plan(w, "plan_restore_elsewhere", 1, restore_to)
    assert again.changed is False
    assert again.before["restored_to"] == again.after["restored_to"]
    assert again.apply()["restored_to"] == out["restored_to"]

    # not ours: verify_records names none of them, rotation and deletion leave them
    findings = w.verify()["findings"]
    assert not [f for f in findings if restore_to in str(f)], findings
    w.copy()
    w.copy()
    assert 1 not in [r.version for r in w.state().replication_records]
    for s, v in volumes.items():
        assert read(os.path.join(v, "d", "data")) == "v1 of %s\n" % s
        assert read(os.path.join(v, "scratch")) == "writable\n"
    assert not [f for f in w.verify()["findings"] if restore_to in str(f)]
    kept = w.state().replication_records[-1].version

    # something else at a volume's name: refused, nothing made, nothing changed
    other = fs.path("other")
    os.makedirs(other)
    btrfs("subvolume", "create", os.path.join(other, "www"))
    msg = refused(w, "plan_restore_elsewhere", kept, other)
    assert os.path.join(other, "www") in msg and "not a snapshot of the copy" in msg, msg
    assert sorted(os.listdir(other)) == ["www"]
    write(os.path.join(other, "db"), "a file\n")
    os.rename(os.path.join(other, "www"), os.path.join(other, "www2"))
    msg = refused(w, "plan_restore_elsewhere", kept, other)
    assert "%s exists and is not a btrfs subvolume" % os.path.join(other, "db") in msg, msg

    # bad restore_to: the value and what is accepted, nothing changed
    accepted = "accepted: an existing directory on the btrfs filesystem holding the copies"
    for bad, why in [
        ("relative/dir", "is not an absolute path"),
        (fs.path("missing"), "is not an existing directory"),
        (os.path.join(db, "d"), "is inside source %s" % db),
        (os.path.join(os.path.dirname(db), ".pitcopy"), "is inside a .pitcopy directory"),
        ("/proc", "is not on btrfs"),
        ((dst if fs is src else src).mountpoint, "is on another btrfs filesystem than the copy"),
    ]:
        msg = refused(w, "plan_restore_elsewhere", kept, bad)
        assert repr(bad) in msg and why in msg and accepted in msg, msg


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_restore_elsewhere_killed_midway_is_finished_by_repair(fs_pair, runner, tmp_path, technology):
    src, dst = fs_pair
    w = db_www_world(tmp_path, runner, fs_pair, technology)
    for s in w.sources:
        write(os.path.join(s, "data"), "v1 of %s\n" % s)
    w.copy()
    fs = src if technology == "btrfs_snapshot" else dst
    restore_to = fs.path("compare")
    os.makedirs(restore_to)
    planned = plan(w, "plan_restore_elsewhere", 1, restore_to).result["restored_to"]
    # the journal a run killed after its first volume leaves behind
    db, www = w.sources
    rec = w.state().replication(1)
    first = [p for p in rec.pairs if p.source == db]
    with w.engine.session(w.name) as s:
        s._backend().restore_elsewhere(s.state.definition, 1, first[0], os.path.join(restore_to, "db"))
        s._save(replace(s.state, journal=Journal(
            operation=JOURNAL_RESTORE_ELSEWHERE, version=1, target_pool=rec.target_pool, pairs=rec.pairs,
            phase="restoring", started="2026-12-01T00:00:00+00:00", pid=1,
            asides=tuple(CopyPair(v["source"], v["volume"]) for v in planned), done=())))
    before = state_bytes(w)
    found = [f for f in w.verify()["findings"] if f["problem"] == "interrupted_restore_elsewhere"]
    assert len(found) == 1 and "repair: true would have finished" in found[0]["action"], found
    assert state_bytes(w) == before and not os.path.exists(os.path.join(restore_to, "www"))
    w.verify(repair=True)
    assert w.state().journal is None
    for v in planned:
        assert read(os.path.join(v["volume"], "data")) == "v1 of %s\n" % v["source"]
    assert plan(w, "plan_restore_elsewhere", 1, restore_to).changed is False
