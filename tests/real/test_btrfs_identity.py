# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The records and the storage agree on identity (issue 12, items 2 and 3),
on real btrfs filesystems on loop devices (native; no VM).

A replication record names each copy by what identifies it on the storage
(the subvolume UUID; for btrfs_send also the received UUID). A version number
never goes backwards when an older state file is put back, and a subvolume
that is not the recorded copy is never rotated away, deleted or restored
from, whatever mark sits beside it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import mark_path, read_mark, subvol_info
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import PitcopyError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.tests.real.test_btrfs import PoolOnBtrfs, btrfs, read, write
from ansible_collections.pitcopy.versions.tests.utils import btrfs_scenarios

pytestmark = pytest.mark.btrfs


class Pool(PoolOnBtrfs):
    """Copy pool ``name`` of one source ``<src>/vol/src`` (versions 2). Its
    copy writes the data first, and its definition is an attribute: not the
    world calls of tests/utils/pool_calls.py, whose signatures differ."""

    def __init__(self, tmp_path, runner, src, dst, technology, name="rb"):
        PoolOnBtrfs.__init__(self, tmp_path, runner, src, technology, name)
        self.source = src.path("vol", "src")
        btrfs("subvolume", "create", self.source)
        tps = ()
        if technology == "btrfs_send":
            tps = []
            for i in (1, 2):
                d = dst.path("tp%d" % i)
                os.makedirs(d)
                tps.append(TargetPool("tp%d" % i, (d,)))
            tps = tuple(tps)
        self.definition = PoolDefinition(name=self.name, technology=technology, sources=(self.source,), versions=2,
                                         target_pools=tps)
        with self.engine.session(self.name) as s:
            s.plan_define(self.definition).apply()

    def copy(self, data, label=None):
        write(os.path.join(self.source, "data"), data)
        with self.engine.session(self.name) as s:
            return s.plan_copy(label=label).apply()

    def copy_path(self, target):
        if self.technology == "btrfs_snapshot":
            return target
        return os.path.join(target, os.path.basename(self.source))

    def copy_of(self, version):
        rec = self.state().replication(version)
        return self.copy_path(rec.pairs[0].target)

    def verify(self, repair=False):
        with self.engine.session(self.name) as s:
            return s.plan_verify(repair=repair).apply()

    def state(self):
        return self.store.load(self.name)


def staging_leftovers(*fss):
    found = []
    for fs in fss:
        for root, dirs, files in os.walk(fs.mountpoint):
            found.extend(os.path.join(root, n) for n in dirs + files if n.startswith(".pitcopy-staging."))
            dirs[:] = [d for d in dirs if not d.startswith(".pitcopy-staging.")]
    return found


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_records_name_each_copy_by_its_identity(fs_pair, runner, tmp_path, technology):
    """Every pair of a replication record carries the identity of its copy,
    in the state file too (and an older file without identities learns them
    from verify_records, without a finding)."""
    src, dst = fs_pair
    p = Pool(tmp_path, runner, src, dst, technology)
    p.copy("v1\n")
    pair = p.state().replication(1).pairs[0]
    info = subvol_info(p.copy_path(pair.target))
    if technology == "btrfs_snapshot":
        assert pair.identity == info["uuid"]
    else:
        assert pair.identity == "%s,received=%s" % (info["uuid"], info["received_uuid"])
        assert info["received_uuid"]
    assert ("%s %s" % (pair.target, pair.identity)) in read(p.store.path(p.name))
    btrfs_scenarios.older_state_file_learns_identities(p, pair)


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_older_state_file_put_back_never_reuses_a_version_number(fs_pair, runner, tmp_path, technology):
    """Item 2: v1, save the state file, v2, v3, put the saved file back, copy
    X4. Before: X4 was reported as version 2, valid, while the copy of
    version 2 held v2's data and X4's copy lay orphaned under its staging
    name. Now the marks on the storage know version 3 was taken: X4 becomes
    version 4, holds X4's data, and nothing is left staged."""
    src, dst = fs_pair
    p = Pool(tmp_path, runner, src, dst, technology)
    p.copy("v1\n")
    saved = read(p.store.path(p.name))
    saved_target = p.state().replication(1).pairs[0].target
    p.copy("v2\n")
    v2_path = p.copy_of(2)
    p.copy("v3\n")
    write(p.store.path(p.name), saved)
    assert p.state().last_version == 1

    # what verify_records says before the copy (asserted after the copy)
    found = p.verify()["findings"]
    assert (2, "untracked_copy") in [(f["version"], f["problem"]) for f in found], found

    # X4 would land where v2's copy lies, which no record of the put-back
    # file names: it is never destroyed to make room; the copy is refused
    # before anything is made, naming it, and the file is left as it was
    with pytest.raises(PitcopyError) as exc:
        p.copy("X4\n", label="X4")
    assert "%s: holds a copy with the mark of pool %s that no record of the pool has" % (
        v2_path if technology == "btrfs_snapshot" else os.path.dirname(v2_path), p.name) in exc.value.msg, exc.value.msg
    assert read(p.store.path(p.name)) == saved
    assert read(os.path.join(v2_path, "data")) == "v2\n" and staging_leftovers(src, dst) == []
    # the operator deletes it, as verify_records said, and copies again
    btrfs("subvolume", "delete", v2_path)
    if os.path.exists(mark_path(v2_path)):
        os.unlink(mark_path(v2_path))

    result = p.copy("X4\n", label="X4")
    number = result["version"]["number"]
    assert result["version"]["status"] == "valid"
    # the copy the record names holds X4's data, nothing is left staged
    assert read(os.path.join(p.copy_of(number), "data")) == "X4\n"
    assert staging_leftovers(src, dst) == []
    assert number == 4
    # v1's copy was rotated away by v3 before the file was put back: that is
    # what verify_records reports now; v3's copy, which no record names, is
    # kept (and listed as untracked once the stale record is repaired)
    v1_path = p.copy_path(saved_target)
    assert [(f["version"], f["problem"]) for f in p.verify()["findings"]] == [(1, "copy_missing")]
    assert read(os.path.join(v1_path, "data")) == "v3\n" and read_mark(v1_path)["version"] == 3

    problems = dict((f["problem"], f) for f in found)
    assert "last_version_behind" in problems, found
    assert problems["last_version_behind"]["version"] == 3
    assert any("numbered 4" in w for w in result.get("warnings", ())), result
    state = p.state()
    assert state.last_version == 4
    copy = p.copy_of(4)
    assert read(os.path.join(copy, "data")) == "X4\n"
    assert read_mark(copy)["version"] == 4
    assert state.replication(4).pairs[0].identity == subvol_info(copy)["uuid"] or \
        state.replication(4).pairs[0].identity.startswith(subvol_info(copy)["uuid"] + ",")
    assert staging_leftovers(src, dst) == []
    # no record says a copy holds data of another point in time
    for rec in state.replication_records:
        path = p.copy_path(rec.pairs[0].target)
        mark = read_mark(path)
        assert mark is None or mark["version"] == rec.version or \
            any(f["version"] == rec.version for f in p.verify()["findings"])


def test_promotion_refuses_a_final_copy_that_is_not_the_staged_one(fs_pair, runner, tmp_path):
    """Defence in depth for item 2, at the backend: promoting version N onto
    a final name that holds another copy numbered N (not the staged copy:
    another UUID) is refused instead of taken as already promoted."""
    src, dst = fs_pair
    p = Pool(tmp_path, runner, src, dst, "btrfs_snapshot")
    p.copy("v1\n")
    p.copy("v2\n")
    from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair
    from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
    target = p.state().replication(2).pairs[0].target
    pair = CopyPair(p.source, target)
    write(os.path.join(p.source, "data"), "new\n")
    outcome = p.backend.create_copies(p.definition, 2, [pair], CopyWindow(p.definition, runner))
    from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed
    with pytest.raises(CopyFailed) as exc:
        p.backend.promote(p.definition, 2, [pair], outcome.staged, [])
    assert "not the copy just made" in exc.value.msg
    assert read(os.path.join(target, "data")) == "v2\n"
    p.backend.discard(p.definition, outcome.staged)


def _plant(path, forge_mark):
    """Someone replaces our copy at ``path`` by a subvolume of their own,
    leaving our mark beside it (``forge_mark``: rewritten to describe their
    subvolume, as a user who can write the directory could)."""
    btrfs("subvolume", "delete", path)
    btrfs("subvolume", "create", path)
    write(os.path.join(path, "data"), "theirs\n")
    btrfs("property", "set", "-ts", path, "ro", "true")
    if forge_mark:
        mark = read_mark(path)
        info = subvol_info(path)
        mark.update(uuid=info["uuid"], ctransid=info["ctransid"], generation=info["generation"],
                    received_uuid=info["received_uuid"])
        write(mark_path(path), json.dumps(mark))


@pytest.mark.parametrize("forge_mark", [False, True], ids=["old-mark", "forged-mark"])
@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_a_subvolume_that_is_not_ours_is_never_deleted(fs_pair, runner, tmp_path, technology, forge_mark):
    """Item 3: a subvolume that is not ours at a copy path beside an old (or
    forged) mark of our pool is reported, and neither rotation, deletion,
    restore nor repair touches it. Before: rotation deleted it because the
    mark named our pool."""
    src, dst = fs_pair
    p = Pool(tmp_path, runner, src, dst, technology)
    p.copy("v1\n")
    p.copy("v2\n")
    path = p.copy_of(1)
    _plant(path, forge_mark)

    found = p.verify()["findings"]

    # rotation: version 3 would replace version 1 on that path
    try:
        p.copy("v3\n")
        refused = None
    except PitcopyError as exc:
        refused = exc
    assert os.path.exists(path) and read(os.path.join(path, "data")) == "theirs\n"
    assert refused is not None
    assert "copy_identity_mismatch" in refused.msg or "not a copy of pool" in refused.msg, refused.msg

    assert [(f["version"], f["problem"]) for f in found] == [(1, "copy_identity_mismatch")], found
    assert "never deleted" in found[0]["action"]
    assert p.state().last_version == 2 and p.state().journal is None
    assert staging_leftovers(src, dst) == []

    # restore from it: refused
    with p.engine.session(p.name) as s:
        with pytest.raises(PitcopyError):
            s.plan_restore(1).apply()
    assert read(os.path.join(p.source, "data")) == "v3\n"  # as the refused copy left it

    # repair marks the version invalid and keeps the record's word
    result = p.verify(repair=True)
    assert [f["problem"] for f in result["findings"]] == ["copy_identity_mismatch"]
    assert p.state().replication(1).status == "invalid"
    assert read(os.path.join(path, "data")) == "theirs\n"

    # deleting the version removes its record, not their subvolume
    with p.engine.session(p.name) as s:
        s.plan_delete(1).apply()
    assert p.state().replication(1) is None
    assert read(os.path.join(path, "data")) == "theirs\n"
    assert read(os.path.join(p.copy_of(2), "data")) == "v2\n"
