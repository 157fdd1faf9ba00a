# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real kernel seam (_btrfs.BtrfsKernel) where there is no btrfs: a
plain directory is no subvolume root, the btrfs ioctls are refused by the
kernel (ENOTTY) and every descriptor they opened is closed again. What the
ioctls answer on btrfs is proven by tests/real/test_btrfs*.py and replayed
by test_replay_btrfs.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _btrfs
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import mount_of, read_mounts

KERNEL = _btrfs.BtrfsKernel()


@pytest.fixture
def plain(tmp_path):
    """tmp_path, which must not be on btrfs for these tests."""
    m = mount_of(str(tmp_path), read_mounts())
    if m is not None and m["fstype"] == "btrfs":
        pytest.skip("%s is on btrfs: these tests need a filesystem without the btrfs ioctls" % tmp_path)
    return tmp_path


def _open_fds():
    return sorted(os.listdir("/proc/self/fd"))


def test_only_a_directory_can_be_a_subvolume_root(plain):
    d = plain / "d"
    d.mkdir()
    f = plain / "f"
    f.write_text("x")
    (plain / "link").symlink_to(d)
    assert KERNEL.is_subvolume(str(d)) is False  # a directory, but not inode 256 of a btrfs
    assert KERNEL.is_subvolume(str(f)) is False
    assert KERNEL.is_subvolume(str(plain / "link")) is False
    assert KERNEL.is_subvolume(str(plain / "missing")) is False


def test_space_and_mounts_and_quotas(plain):
    space = KERNEL.space(str(plain))
    sv = os.statvfs(str(plain))
    assert 0 < space["free"] <= sv.f_blocks * sv.f_frsize
    assert 0 <= space["used"] <= sv.f_blocks * sv.f_frsize
    info = plain / "mountinfo"
    info.write_text("44 27 0:39 / /srv/a\\040b rw,relatime - btrfs /dev/loop0 rw,subvolid=5,subvol=/\n")
    assert KERNEL.mounts(str(info)) == [{"mount_id": "44", "parent_id": "27", "dev": "0:39", "root": "/",
                                         "mountpoint": "/srv/a b", "fstype": "btrfs", "source": "/dev/loop0"}]
    assert KERNEL.quotas_enabled("00000000-0000-0000-0000-000000000000") is False


@pytest.mark.parametrize("call", ["filesystem_info", "subvolume_info", "sync"])
def test_btrfs_ioctls_are_refused_off_btrfs_and_close_their_descriptor(plain, call):
    before = _open_fds()
    with pytest.raises(OSError) as exc:
        getattr(KERNEL, call)(str(plain))
    assert exc.value.errno in (errno.ENOTTY, errno.EINVAL, errno.EOPNOTSUPP)
    assert _open_fds() == before


def test_a_snapshot_job_opens_before_the_window_and_closes_after(plain):
    src, parent = plain / "src", plain / "copies"
    src.mkdir()
    parent.mkdir()
    before = _open_fds()
    job = KERNEL.prepare_snapshot(str(src), str(parent / "snap"))
    assert job.sfd is not None and job.dfd is not None
    assert bytes(job.buf[_btrfs._VOL_ARGS_V2_NAME:_btrfs._VOL_ARGS_V2_NAME + 4]) == b"snap"
    with pytest.raises(OSError) as exc:
        KERNEL.take_snapshot(job)
    # what _snapshot_batch takes for a kernel without the ioctl
    assert exc.value.errno in (errno.ENOTTY, errno.EOPNOTSUPP)
    KERNEL.close_snapshot(job)
    assert job.sfd is None and _open_fds() == before
    KERNEL.close_snapshot(job)  # twice is harmless
    with pytest.raises(OSError):
        KERNEL.prepare_snapshot(str(src), str(plain / "missing" / "snap"))
    assert _open_fds() == before
    assert not (parent / "snap").exists()


def test_discovery_off_btrfs_names_what_it_finds(plain):
    """The backends through the real seam on a filesystem that is not
    btrfs: a file, a symlink and directories are reported for what they
    are (never as subvolumes), a directory with entries as foreign data."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSendBackend
    f = plain / "file"
    f.write_text("12345")
    (plain / "empty").mkdir()
    (plain / "full").mkdir()
    (plain / "full" / "x").write_text("theirs")
    (plain / "link").symlink_to(plain / "empty")
    b = BtrfsSendBackend(runner=None)
    names = [str(plain / n) for n in ("file", "empty", "full", "link", "missing")]
    vols = b.discover(names)
    assert (vols[names[0]].kind, vols[names[0]].size) == ("file", 5)
    assert vols[names[1]].kind == "directory" and vols[names[1]].foreign_data is False
    assert vols[names[1]].container == mount_of(str(plain), read_mounts())["source"]
    assert vols[names[1]].free > 0 and "btrfs_send" not in (vols[names[1]].technologies or ())
    assert vols[names[2]].kind == "directory" and vols[names[2]].foreign_data is True
    assert vols[names[3]].kind == "symlink"
    assert names[4] not in vols
    with pytest.raises(_btrfs.InvalidInput, match="is not accepted"):
        b.discover(["/srv/.pitcopy/p/-x"])
    with pytest.raises(NotImplementedError):
        b.implied_target("p", "01", "/srv/a")


def test_a_source_off_btrfs_or_behind_a_symlink_is_refused(plain):
    from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSnapshotBackend
    from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition
    (plain / "real" / "a").mkdir(parents=True)
    (plain / "via").symlink_to(plain / "real")
    b = BtrfsSnapshotBackend(runner=None)
    for source, why in ((str(plain / "via" / "a"), "has a symlink in its path"),
                        (str(plain / "real" / "a"), "is not a btrfs subvolume")):
        d = PoolDefinition(name="p", technology="btrfs_snapshot", sources=(source,), versions=2)
        with pytest.raises(_btrfs.InvalidInput, match=why) as exc:
            b.validate_definition(d)
        assert source in exc.value.msg
    assert b.source_kinds() == b.target_kinds("subvolume") == frozenset(("subvolume",))
