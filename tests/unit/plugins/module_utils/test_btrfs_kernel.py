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
