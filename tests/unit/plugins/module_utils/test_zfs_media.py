# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ZFS streams on media (issue 17, item 6), on the zfs command replay of
test_zfs_identity.py extended with what a dump and a restore from media
run: ``zfs send`` streamed out (raw when the copy is encrypted), ``zfs
receive -u`` fed from the medium's descriptor, the received snapshot
destroyed, the mount, the mark removed; a failed receive leaves nothing; a
killed one's half-made dataset is a leftover the repair removes, and a
dataset not marked by a restore from media never is. The real-tool proof
is tests/real/test_zfs.py (test_zfs_media_dump_and_restore)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend, ZfsSnapshotBackend
from ansible_collections.pitcopy.versions.tests.unit.plugins.module_utils.test_zfs_identity import ZfsReplay

SEND = PoolDefinition(name="md", technology="zfs_send", sources=("s/db",), versions=1,
                      target_pools=(TargetPool("A", ("t/A/db",)),))
SNAP = PoolDefinition(name="md", technology="zfs_snapshot", sources=("s/db",), versions=1)


class MediaReplay(ZfsReplay):
    """ZfsReplay with streams: ``send`` writes ``stream`` out, ``receive``
    reads the descriptor and makes the dataset with its snapshot (or fails
    with ``receive_error``); ``mount`` and ``inherit`` applied."""

    stream = b"zfs stream bytes"
    receive_error = None

    def stream_out(self, argv, write, timeout=None):
        self.calls.append(list(argv))
        write(self.stream)

    def run_from(self, argv, stdin_fd, check=True, timeout=None):
        self.calls.append(list(argv))
        self.received = os.read(stdin_fd, 1 << 20)
        if self.receive_error:
            return self._fail(argv, self.receive_error)
        marks = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-o")
        self.add(argv[-1], marks)
        self.objs[argv[-1]].update({"canmount": ("on", "default"), "mountpoint": ("/s/back/db", "inherited"),
                                    "mounted": ("no", "-"), "keystatus": ("-", "-")})
        self.add(argv[-1] + "@pitcopy-md-v1")
        return 0, "", ""

    @staticmethod
    def _fail(argv, err):
        from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError
        raise CommandError("%s failed: %s" % (argv[1], err), argv=argv, rc=1, stderr=err)

    def run(self, argv, data=None, check=True):
        if argv[1] == "mount":
            self.calls.append(list(argv))
            self.objs[argv[2]]["mounted"] = ("yes", "-")
            return 0, "", ""
        if argv[1] == "inherit":
            self.calls.append(list(argv))
            del self.objs[argv[3]][argv[2]]
            return 0, "", ""
        if argv[1] == "destroy" and argv[2] == "-r":
            self.calls.append(list(argv))
            for n in [n for n in self.objs if n == argv[3] or n.startswith(argv[3] + "@")]:
                del self.objs[n]
            return 0, "", ""
        return super(MediaReplay, self).run(argv, data, check)


def _copy(z, definition, encrypted=False):
    """Version 1's copy of s/db: a zfs_send copy with its received snapshot,
    or a zfs_snapshot snapshot; returns its pair."""
    z.add("s")
    z.add("s/db")
    z.add("s/back")
    marks = {"pitcopy:pool": "md", "pitcopy:version": "1", "pitcopy:source": "s/db"}
    if definition.technology == "zfs_send":
        guid = z.add("t/A/db", marks)
        z.add("t/A/db@pitcopy-md-v1")
        snap, pair = "t/A/db@pitcopy-md-v1", CopyPair("s/db", "t/A/db", identity=guid)
    else:
        snap = "s/db@pitcopy-md-01"
        pair = CopyPair("s/db", snap, identity=z.add(snap, marks))
    z.objs[snap]["encryption"] = ("aes-256-gcm" if encrypted else "off", "-")
    return pair, snap


@pytest.mark.parametrize("definition", [SEND, SNAP], ids=["zfs_send", "zfs_snapshot"])
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_a_dump_sends_the_copys_snapshot_in_full_raw_when_encrypted(definition, encrypted):
    z = MediaReplay()
    pair, snap = _copy(z, definition, encrypted)
    got = []
    backend = ZfsSendBackend(runner=z) if definition is SEND else ZfsSnapshotBackend(runner=z)
    backend.dump_stream(definition, 1, pair, got.append)
    assert got == [MediaReplay.stream]
    assert z.calls[-1] == ["zfs", "send"] + (["-w"] if encrypted else []) + [snap]
    assert [c[1] for c in z.calls[:-1]] == ["get"]


def test_a_dump_of_a_copy_that_is_not_the_version_is_refused_reading_only():
    z = MediaReplay()
    pair, snap = _copy(z, SEND)
    del z.objs[snap]
    with pytest.raises(InvalidInput) as exc:
        ZfsSendBackend(runner=z).dump_stream(SEND, 1, pair, lambda chunk: None)
    assert "cannot dump version 1 of s/db" in exc.value.msg and snap in exc.value.msg, exc.value.msg
    assert all(c[1] == "get" for c in z.calls)


def test_a_stream_becomes_a_new_dataset_without_marks_or_snapshot(tmp_path):
    z = MediaReplay()
    _copy(z, SEND)
    medium = tmp_path / "s.zfs-stream"
    medium.write_bytes(b"what the medium holds")
    b = ZfsSendBackend(runner=z)
    assert b.media_volumes(SEND, ["s/db"], "s/back") == [("s/db", "s/back/db")]
    assert b.volume_exists("s/back") and not b.volume_exists("s/back/db")
    fd = os.open(str(medium), os.O_RDONLY)
    try:
        b.receive_stream(SEND, "s/db", fd, "s/back/db")
    finally:
        os.close(fd)
    assert z.received == b"what the medium holds"
    changes = [c for c in z.calls if c[1] != "get"]
    assert changes == [["zfs", "receive", "-u", "-o", "pitcopy:restoring=media", "s/back/db"],
                       ["zfs", "destroy", "s/back/db@pitcopy-md-v1"],
                       ["zfs", "mount", "s/back/db"],
                       ["zfs", "inherit", "pitcopy:restoring", "s/back/db"]]
    assert sorted(n for n in z.objs if n.startswith("s/back/db")) == ["s/back/db"]
    assert not [p for p in z.objs["s/back/db"] if p.startswith("pitcopy:")]
    # again: it exists, never overwritten
    with pytest.raises(InvalidInput) as exc:
        b.receive_stream(SEND, "s/db", 0, "s/back/db")
    assert "s/back/db" in exc.value.msg and "never overwrites" in exc.value.msg


def test_a_failed_receive_leaves_nothing(tmp_path):
    z = MediaReplay()
    _copy(z, SEND)
    z.receive_error = "cannot receive new filesystem stream: out of space"
    medium = tmp_path / "s.zfs-stream"
    medium.write_bytes(b"x")
    fd = os.open(str(medium), os.O_RDONLY)
    try:
        with pytest.raises(CopyFailed) as exc:
            ZfsSendBackend(runner=z).receive_stream(SEND, "s/db", fd, "s/back/db")
    finally:
        os.close(fd)
    assert "restore of s/db from media to s/back/db failed" in exc.value.msg and "out of space" in exc.value.msg
    assert "s/back/db" not in z.objs


def test_a_killed_receive_is_a_leftover_the_repair_removes_and_nothing_else_is():
    z = MediaReplay()
    _copy(z, SEND)
    z.add("s/back/db", {"pitcopy:restoring": "media"})
    z.add("s/back/db@pitcopy-md-v1")
    z.add("s/back/www")  # the user's, not marked: never a leftover
    b = ZfsSendBackend(runner=z)
    assert b.media_leftovers(["s/back/db", "s/back/www", "s/back/gone"]) == ["s/back/db"]
    b.sweep_media_leftovers(["s/back/db", "s/back/www"])
    assert "s/back/db" not in z.objs and "s/back/db@pitcopy-md-v1" not in z.objs and "s/back/www" in z.objs
    assert [c for c in z.calls if c[1] != "get"] == [["zfs", "destroy", "-r", "s/back/db"]]
