# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ZFS backends' batches (_zfs "Batches"): which commands a promotion and
a destroy of many snapshots run, and when they fall back to one command per
snapshot, against the simulated host (tests/unit/zfs_host.py). The exact
output of the real tool for the same commands is replayed by
test_replay_zfs.py (recorded in the guest); tests/real/test_zfs.py and
test_zfs_faults.py are the proof on OpenZFS."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import (
    ZfsSendBackend,
    ZfsSnapshotBackend,
    common_dataset,
)
from ansible_collections.pitcopy.versions.tests.unit.zfs_host import ZfsHost

MARK2 = ["-o", "pitcopy:pool=db", "-o", "pitcopy:version=2"]
LISTING = ["zfs", "get", "-H", "-p", "-o", "name,property,value,source", "-t", "snapshot", "-r", "pitcopy:anchor"]


def world(n, staged=True):
    """``n`` filesystems tank/s0.. with version 1 of copy pool db in
    @pitcopy-db-01 and, with ``staged``, version 2 staged beside it."""
    host = ZfsHost()
    sources = ["tank/s%d" % i for i in range(n)]
    for s in sources:
        host.add_filesystem(s, data="live " + s)
    host.run(["zfs", "snapshot", "-o", "pitcopy:pool=db", "-o", "pitcopy:version=1"]
             + [s + "@pitcopy-db-01" for s in sources])
    if staged:
        host.run(["zfs", "snapshot"] + MARK2 + [s + "@pitcopy-db-01.staging-v2" for s in sources])
    d = PoolDefinition(name="db", technology="zfs_snapshot", sources=tuple(sources), versions=1)
    pairs = [CopyPair(s, s + "@pitcopy-db-01") for s in sources]
    st = [CopyPair(s, s + "@pitcopy-db-01.staging-v2") for s in sources]
    host.calls[:] = []
    return host, d, sources, pairs, st


def promoted(host, sources):
    for s in sources:
        assert host.ds[s + "@pitcopy-db-01"]["props"]["pitcopy:version"] == "2"
    assert not [n for n in host.ds if "staging" in n or n.startswith("tank@")]


def test_common_dataset():
    assert common_dataset(["tank/a/b@x", "tank/a/c@x"]) == "tank/a"
    assert common_dataset(["tank/a@x", "tank/a/c@x"]) == "tank/a"
    assert common_dataset(["tank/ab@x", "tank/a@x"]) == "tank"
    assert common_dataset(["tank/a@x"]) == "tank/a"


def test_promotion_of_four_is_one_destroy_one_rename_and_the_anchor():
    host, d, sources, pairs, st = world(4)
    ZfsSnapshotBackend(host).promote(d, 2, pairs, st, pairs)
    assert host.calls[1:] == [
        LISTING + ["tank"],
        ["zfs", "destroy", "-r", "tank@pitcopy-db-01"],
        ["zfs", "snapshot", "-o", "pitcopy:anchor=db", "tank@pitcopy-db-01.staging-v2"],
        ["zfs", "rename", "-r", "tank@pitcopy-db-01.staging-v2", "tank@pitcopy-db-01"],
        ["zfs", "destroy", "tank@pitcopy-db-01"],
    ]
    assert host.calls[0][:2] == ["zfs", "get"]  # the rows every promotion reads
    promoted(host, sources)


def test_the_processes_do_not_grow_with_the_datasets():
    counts = []
    for n in (4, 20, 60):
        host, d, sources, pairs, st = world(n)
        ZfsSnapshotBackend(host).promote(d, 2, pairs, st, pairs)
        promoted(host, sources)
        counts.append(len(host.calls))
    assert counts == [6, 6, 6], counts


def test_two_copies_are_promoted_one_command_each():
    # a batch (listing, destroy -r, anchor, rename -r, anchor) would cost more
    host, d, sources, pairs, st = world(2)
    ZfsSnapshotBackend(host).promote(d, 2, pairs, st, pairs)
    assert [c[1:] for c in host.calls[1:]] == [
        ["destroy", "tank/s0@pitcopy-db-01"], ["destroy", "tank/s1@pitcopy-db-01"],
        ["rename", "tank/s0@pitcopy-db-01.staging-v2", "tank/s0@pitcopy-db-01"],
        ["rename", "tank/s1@pitcopy-db-01.staging-v2", "tank/s1@pitcopy-db-01"],
    ]
    promoted(host, sources)


def _promote_beside_theirs(snapshot):
    """Version 2 of four sources promoted while a snapshot ``snapshot`` of
    somebody else's filesystem tank/other exists; the calls of the promote
    only."""
    host, d, sources, pairs, st = world(4)
    host.add_filesystem("tank/other", data="theirs")
    host.run(["zfs", "snapshot", snapshot])
    host.calls[:] = []
    ZfsSnapshotBackend(host).promote(d, 2, pairs, st, pairs)
    return host, sources


def test_a_snapshot_of_the_staged_name_that_is_not_ours_makes_it_one_by_one():
    host, sources = _promote_beside_theirs("tank/other@pitcopy-db-01.staging-v2")
    assert host.calls[1] == LISTING + ["tank"]
    assert [c[1] for c in host.calls[2:]] == ["destroy"] * 4 + ["rename"] * 4
    assert "-r" not in [a for c in host.calls[2:] for a in c]
    for s in sources:
        assert host.ds[s + "@pitcopy-db-01"]["props"]["pitcopy:version"] == "2"
    assert "tank/other@pitcopy-db-01.staging-v2" in host.ds  # not renamed: not ours


def test_a_snapshot_of_the_final_name_that_is_not_ours_is_never_destroyed():
    host, sources = _promote_beside_theirs("tank/other@pitcopy-db-01")
    assert [c[1] for c in host.calls[2:]] == ["destroy"] * 4 + ["rename"] * 4
    assert "tank/other@pitcopy-db-01" in host.ds
    for s in sources:
        assert host.ds[s + "@pitcopy-db-01"]["props"]["pitcopy:version"] == "2"


def test_an_anchor_a_killed_promotion_left_is_used_or_removed():
    # killed before the rename: version 1 gone, the anchor made
    host, d, sources, pairs, st = world(4)
    for s in sources:
        del host.ds[s + "@pitcopy-db-01"]
    host.run(["zfs", "snapshot", "-o", "pitcopy:anchor=db", "tank@pitcopy-db-01.staging-v2"])
    host.calls[:] = []
    ZfsSnapshotBackend(host).promote(d, 2, pairs, st, pairs)
    assert host.calls[1:] == [
        LISTING + ["tank"],
        ["zfs", "rename", "-r", "tank@pitcopy-db-01.staging-v2", "tank@pitcopy-db-01"],
        ["zfs", "destroy", "tank@pitcopy-db-01"],
    ]
    promoted(host, sources)

    # killed before the anchor was destroyed: every copy in place
    host, d, sources, pairs, st = world(4)
    for s in sources:
        del host.ds[s + "@pitcopy-db-01"]
    host.run(["zfs", "snapshot", "-o", "pitcopy:anchor=db", "tank@pitcopy-db-01.staging-v2"])
    host.run(["zfs", "rename", "-r", "tank@pitcopy-db-01.staging-v2", "tank@pitcopy-db-01"])
    host.calls[:] = []
    ZfsSnapshotBackend(host).promote(d, 2, pairs, st, pairs)
    assert host.calls[1:] == [LISTING + ["tank"], ["zfs", "destroy", "tank@pitcopy-db-01"]]
    promoted(host, sources)


def test_a_snapshot_named_like_an_anchor_without_its_mark_is_left_alone():
    host, d, sources, pairs, st = world(4)
    host.run(["zfs", "snapshot", "tank@pitcopy-db-01.staging-v2"])  # somebody's, no pitcopy:anchor
    host.calls[:] = []
    ZfsSnapshotBackend(host).promote(d, 2, pairs, st, pairs)
    assert [c[1] for c in host.calls[2:]] == ["destroy"] * 4 + ["rename"] * 4
    assert "tank@pitcopy-db-01.staging-v2" in host.ds


def test_deleting_many_snapshots_is_one_destroy_after_the_listing():
    host, d, sources, pairs, _st = world(5, staged=False)
    assert ZfsSnapshotBackend(host).delete_copies(d, pairs) == []
    assert host.calls[1:] == [LISTING + ["tank"], ["zfs", "destroy", "-r", "tank@pitcopy-db-01"]]
    assert not [n for n in host.ds if "@" in n]


def test_deleting_falls_back_when_another_snapshot_has_the_name():
    host, d, sources, pairs, _st = world(5, staged=False)
    host.add_filesystem("tank/other", data="theirs")
    host.run(["zfs", "snapshot", "tank/other@pitcopy-db-01"])
    host.calls[:] = []
    ZfsSnapshotBackend(host).delete_copies(d, pairs)
    assert [c[1:] for c in host.calls[2:]] == [["destroy", s + "@pitcopy-db-01"] for s in sources]
    assert [n for n in host.ds if "@" in n] == ["tank/other@pitcopy-db-01"]


def test_the_temporary_send_snapshots_go_in_one_destroy():
    host = ZfsHost()
    sources = ["tank/s%d" % i for i in range(4)]
    for s in sources:
        host.add_filesystem(s)
    host.run(["zfs", "snapshot", "-o", "pitcopy:pool=db", "-o", "pitcopy:version=3"]
             + [s + "@pitcopy-db-v3" for s in sources])
    host.calls[:] = []
    d = PoolDefinition(name="db", technology="zfs_send", sources=tuple(sources), versions=1)
    ZfsSendBackend(host)._destroy_snapshots(d, [s + "@pitcopy-db-v3" for s in sources])
    assert host.calls[1:] == [LISTING + ["tank"], ["zfs", "destroy", "-r", "tank@pitcopy-db-v3"]]
    assert not [n for n in host.ds if "@" in n]


def test_the_real_rotation_ran_the_batches():
    """The recorded guest run (replayed command by command in
    test_replay_zfs.py) promoted its versions 4 and 5 (three sources, three
    replaced snapshots) with the batch, and OpenZFS accepted it."""
    from ansible_collections.pitcopy.versions.tests.unit.replay import load_case

    calls = [c for c in load_case("zfs", "test_zfs_snapshot_versions_rotation_restore_verify")["calls"] if "argv" in c]
    renames = [c for c in calls if c["argv"][:3] == ["zfs", "rename", "-r"]]
    anchors = [c for c in calls if c["argv"][:4] == ["zfs", "snapshot", "-o", "pitcopy:anchor=snaps"]]
    assert len(renames) == 2 and len(anchors) == 2
    assert all(c["rc"] == 0 for c in renames + anchors)
