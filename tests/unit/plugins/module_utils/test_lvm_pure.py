# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The LVM backend's parts that need no tool: names, sizes, and the block
copy/compare of lvm_clone and the restores, on plain files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _lvm
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput

MiB = 1024 * 1024


@pytest.mark.parametrize("name,match", [
    ("", "not an LVM logical volume name"),
    (None, "not an LVM logical volume name"),
    ("/dev/vg/lv", "is a device path"),
    ("vg", "not an LVM logical volume name"),
    ("vg/a/b", "not an LVM logical volume name"),
    ("vg/..", "empty, '.' or '..'"),
    ("vg/-x", "starts with '-'"),
    ("vg/a b", "does not accept"),
    ("vg/" + "x" * 128, "at most 127"),
    ("vg/snapshot1", "reserves"),
    ("vg/pvmove0", "reserves"),
    ("vg/data_cmeta", "reserved by LVM for its internal volumes"),
])
def test_lv_names_are_refused_with_the_reason(name, match):
    with pytest.raises(InvalidInput, match=match) as exc:
        _lvm.validate_lv_name(name, "source")
    assert repr(name) in exc.value.msg  # names the value


def test_good_names_and_their_device_paths():
    _lvm.validate_lv_name("vg0/data.1+x_y-z")
    assert _lvm.dm_path("my-vg/my-lv") == "/dev/mapper/my--vg-my--lv"
    with pytest.raises(InvalidInput, match="copy pool name"):
        _lvm.validate_pool_for_tags("bad name")
    _lvm.validate_pool_for_tags("good.pool+1")


@pytest.mark.parametrize("value,origin,vg,extent,expected", [
    (None, 100 * MiB, 1000 * MiB, 4 * MiB, 20 * MiB),  # default 20%ORIGIN
    ("512M", 0, 0, 4 * MiB, 512 * MiB),
    ("1.5g", 0, 0, 4 * MiB, 1536 * MiB),
    ("100", 0, 0, 4 * MiB, 100 * MiB),  # MiB without a unit, as lvcreate -L
    ("5%VG", 0, 1000 * MiB, 4 * MiB, 52 * MiB),  # 50 MiB rounded up to extents
    ("3s", 0, 0, 4 * MiB, 4 * MiB),  # 1536 bytes: one extent
    ("8M", 0, 0, None, 8 * MiB),
])
def test_snapshot_sizes(value, origin, vg, extent, expected):
    assert _lvm.parse_snapshot_size(value, origin, vg, extent) == expected


@pytest.mark.parametrize("value,match", [
    ("10%FREE", "%FREE and %PVS are refused"),
    ("ten", "not accepted"),
    ("0%ORIGIN", "above 0 and at most 100"),
    ("101%VG", "above 0 and at most 100"),
    ("0", "larger than zero"),
])
def test_bad_snapshot_sizes_name_the_value(value, match):
    with pytest.raises(InvalidInput, match=match) as exc:
        _lvm.parse_snapshot_size(value, MiB, MiB, 4 * MiB)
    assert repr(value) in exc.value.msg


def _device(path, size, pattern=b"\0"):
    with open(path, "wb") as fh:
        fh.write((pattern * size)[:size])
    return str(path)


def test_block_copy_and_compare_on_files(tmp_path):
    size = 3 * MiB + 4096
    src = _device(tmp_path / "src", size, b"abcdefgh")
    dst = _device(tmp_path / "dst", size)
    assert _lvm._device_size(src) == size
    assert _lvm._is_zero_region(dst, MiB, 4096) and not _lvm._is_zero_region(src, MiB, 4096)
    assert _lvm._diff_bytes(src, dst) == size
    digest = hashlib.sha256()
    copied, written = _lvm._copy_blocks(src, dst, None, digest=digest)
    assert (copied, written) == (size, size) and _lvm._diff_bytes(src, dst) == 0
    assert _lvm.sha256_of(dst, size) == (size, digest.hexdigest())
    assert _lvm.sha256_of(dst, 4096)[0] == 4096 and _lvm.sha256_of(dst)[0] == size  # a prefix; the whole
    # two changed sub-blocks: only they are written back
    with open(dst, "r+b") as fh:
        fh.seek(10)
        fh.write(b"X")
        fh.seek(2 * MiB + 5)
        fh.write(b"Y")
    assert _lvm._diff_bytes(src, dst) == 2 * _lvm.SUB_BLOCK
    copied, written = _lvm._copy_blocks(src, dst, None, only_changed=True)
    assert (copied, written) == (size, 2 * _lvm.SUB_BLOCK) and _lvm._diff_bytes(src, dst) == 0


def test_block_copy_refuses_a_smaller_target(tmp_path):
    src = _device(tmp_path / "src", 2 * MiB, b"x")
    dst = _device(tmp_path / "dst", MiB)
    with pytest.raises(OSError, match="is smaller than"):
        _lvm._copy_blocks(src, dst, None)
    assert _lvm._copy_blocks(src, dst, MiB) == (MiB, MiB)


def test_a_short_source_is_a_failed_copy_not_a_short_one(tmp_path):
    src = _device(tmp_path / "src", MiB, b"x")
    dst = _device(tmp_path / "dst", 2 * MiB)
    with pytest.raises(OSError, match="short read from"):
        _lvm._copy_blocks(src, dst, 2 * MiB)


def test_what_cannot_be_checked_is_never_overwritten():
    """lvm_clone: a target that is no plain or thin LV, inactive, open or
    unreadable counts as holding foreign data."""
    b = _lvm.LvmCloneBackend(None)
    assert b._foreign("vg/tp", {"lv_attr": "twi-a-tz--", "segtype": "thin-pool"}, None) is True
    assert b._foreign("vg/t", {"lv_attr": "-wi-------", "segtype": "linear"}, None) is True  # inactive
    assert b._foreign("vg/t", {"lv_attr": "-wi-ao----", "segtype": "linear"}, None) is True  # open
    assert b._foreign("vg/no-such-lv", {"lv_attr": "-wi-a-----", "segtype": "linear"}, None) is True
    assert b._foreign("vg/t", {"lv_attr": "-wi-a-----", "segtype": "linear"}, "web") is False


def test_nothing_to_check_or_write_back(monkeypatch):
    b = _lvm.LvmSnapshotBackend(None)  # no runner: nothing may run
    assert b.target_kinds(_lvm.KIND_LV) == frozenset((_lvm.KIND_SNAPSHOT,))
    assert b.check_capacity(None, [], [], {}) is None
    monkeypatch.setattr(_lvm, "_diff_bytes", lambda src, dst: 0)
    pair = _lvm.CopyPair("vg/a", "vg/a-pc-p-01")
    assert b._check_restore_space(None, pair, {}) is None
    assert _lvm.LvmThinBackend(None)._check_restore_space(None, pair, {}) is None
