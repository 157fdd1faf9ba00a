# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A version dumped to media and restored from it (copy_version
state=dumped, restored with from_media; issue 17, item 6) on real btrfs, both
technologies: the medium is a directory on another (ext4) loop filesystem,
the version's copies are rotated away, the restore from the medium is
byte-identical; a corrupted stream is found by verify_media and refused."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import subvol_info
from ansible_collections.pitcopy.versions.tests.real.test_btrfs import World, write
from ansible_collections.pitcopy.versions.tests.real.test_btrfs_browse import plan, refused, state_bytes
from ansible_collections.pitcopy.versions.tests.utils.trees import tree

pytestmark = pytest.mark.btrfs


def _verify(w, verify_media=False, repair=False):
    with w.engine.session(w.name) as s:
        p = s.plan_verify(repair=repair, verify_media=verify_media)
        return p.apply() if repair else p.result


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_a_version_dumped_to_media_restored_after_its_copies_are_gone(fs_pair, loopfs_factory, runner, tmp_path,
                                                                      technology):
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, technology)
    w.add_source("db")
    w.add_source("www")
    w.versions = 2
    if technology == "btrfs_send":
        w.make_target_pools(count=2, per_pool=2)
    w.define()
    for s in w.sources:
        os.makedirs(os.path.join(s, "d"))
        write(os.path.join(s, "d", "data"), "v1 of %s\n" % s)
        os.chown(os.path.join(s, "d", "data"), 1234, 4321)
        os.chmod(os.path.join(s, "d", "data"), 0o640)
        os.setxattr(os.path.join(s, "d", "data"), "user.origin", b"v1")
        with open(os.path.join(s, "big"), "wb") as fh:
            fh.write(os.urandom(3 << 20))
    expected = dict((s, tree(s)) for s in w.sources)
    w.copy()

    medium_fs = loopfs_factory(fstype="ext4", size=128 * 1024 * 1024, name="medium")
    medium = medium_fs.path("tape1")
    os.mkdir(medium, 0o700)

    # check mode: what would be written, nothing written
    p = plan(w, "plan_dump", 1, medium)
    assert p.changed and [x["source"] for x in p.result["written"]] == list(w.sources)
    assert os.listdir(medium) == []
    out = plan(w, "plan_dump", 1, medium).apply()
    dump = out["dump"]
    assert [st["source"] for st in dump["streams"]] == list(w.sources)
    for st in dump["streams"]:
        assert st["stream"].startswith("%s/v1/" % w.name) and st["size"] > 3 << 20
    assert sorted(os.listdir(os.path.join(medium, w.name, "v1"))) == sorted(
        os.path.basename(st["stream"]) for st in dump["streams"])
    # again: no change (sizes and checksums match)
    assert plan(w, "plan_dump", 1, medium).changed is False

    for tag in ("v2", "v3"):
        for s in w.sources:
            write(os.path.join(s, "d", "data"), "%s\n" % tag)
        w.copy()
    state = w.state()
    assert 1 not in [r.version for r in state.replication_records]  # v1's copies are gone
    assert [d.version for d in state.media] == [1]
    with w.engine.session(w.name) as s:
        assert s.info()["media"] == [dump]
    assert _verify(w, verify_media=True)["consistent"]

    restore_to = src.path("from-tape")
    os.makedirs(restore_to)
    p = plan(w, "plan_restore_from_media", 1, medium, restore_to)
    volumes = dict((s, os.path.join(restore_to, os.path.basename(s))) for s in w.sources)
    assert p.result["restored_to"] == [{"source": s, "volume": volumes[s]} for s in w.sources]
    assert os.listdir(restore_to) == []
    plan(w, "plan_restore_from_media", 1, medium, restore_to).apply()
    for s, v in volumes.items():
        assert tree(v) == expected[s], s  # byte-identical to version 1: checksums, modes, owners, xattrs
        assert not subvol_info(v)["readonly"]
        write(os.path.join(v, "scratch"), "writable\n")
    # nothing of ours beside them: no work directory, no mark
    assert sorted(os.listdir(restore_to)) == sorted(os.path.basename(v) for v in volumes.values())
    assert w.state().journal is None
    assert not [f for f in w.verify()["findings"] if restore_to in str(f)]

    # one byte of a stream corrupted: verify_media finds it, the restore is refused, nothing made
    bad = dump["streams"][1]
    path = os.path.join(medium, bad["stream"])
    with open(path, "r+b") as fh:
        fh.seek(bad["size"] // 2)
        byte = fh.read(1)
        fh.seek(bad["size"] // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert not [f for f in _verify(w)["findings"] if f["problem"].startswith("media")]  # cheap: size only
    found = _verify(w, verify_media=True)
    corrupt = [f for f in found["findings"] if f["problem"] == "media_corrupt"]
    assert not found["consistent"] and len(corrupt) == 1
    assert corrupt[0]["target"] == path and medium in corrupt[0]["action"], corrupt
    other = src.path("from-bad-tape")
    os.makedirs(other)
    before = state_bytes(w)
    msg = refused(w, "plan_restore_from_media", 1, medium, other)
    assert "cannot be restored, nothing was made" in msg and bad["stream"] in msg, msg
    assert os.listdir(other) == [] and state_bytes(w) == before
    # repair never deletes or rewrites a medium
    _verify(w, verify_media=True, repair=True)
    assert os.path.getsize(path) == bad["size"]
