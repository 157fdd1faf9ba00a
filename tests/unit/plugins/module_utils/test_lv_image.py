# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gzip image of an LVM copy (_lv_image) on plain files standing in for
block devices: what gunzip reads, what a restore writes, and every damage
refused."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import hashlib
import os
import subprocess
import shutil

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _lv_image
from ansible_collections.pitcopy.versions.plugins.module_utils._lv_image import CHUNK, ImageError

SIZE = 3 * CHUNK + 4096  # not a whole number of chunks


def _device(path, size=SIZE, data=()):
    """A file of ``size`` bytes, zeros but for ``data`` [(offset, bytes)]."""
    with open(path, "wb") as fh:
        fh.truncate(size)
        for off, blob in data:
            fh.seek(off)
            fh.write(blob)
    return str(path)


def _content():
    return [(0, b"first block\n" * 100), (2 * CHUNK + 17, os.urandom(70000)), (SIZE - 5, b"tail!")]


def _dump(src, size=SIZE, thin_pool=None):
    out = []
    digest = hashlib.sha256()
    used = _lv_image.dump(src, size, out.append, thin_pool=thin_pool, digest=digest)
    return b"".join(out), used, digest.hexdigest()


def _restore(tmp_path, image, size=SIZE, sparse=False, fill=b"\xaa"):
    """The image restored onto a 'device' that held ``fill`` everywhere
    (a new plain LV holds what its extents held)."""
    img = tmp_path / "image"
    img.write_bytes(image)
    dst = tmp_path / "dst"
    dst.write_bytes(fill * size)
    fd = os.open(str(img), os.O_RDONLY)
    try:
        meta, written = _lv_image.restore(fd, str(dst), sparse=sparse)
    finally:
        os.close(fd)
    return meta, written, dst.read_bytes()


def test_an_image_is_plain_gzip_and_restores_byte_identical(tmp_path):
    src = _device(tmp_path / "src", data=_content())
    image, used, digest = _dump(src, thin_pool="tp0")
    raw = open(src, "rb").read()
    assert digest == hashlib.sha256(raw).hexdigest()
    assert gzip.decompress(image) == raw  # the format an operator restores by hand
    assert used == 2 * CHUNK + 4096  # chunks 0, 2 and the last (4096 bytes) hold data; chunk 1 is zeros
    assert len(image) < SIZE // 10
    meta, written, got = _restore(tmp_path, image)
    assert meta == {"size": SIZE, "thin_pool": "tp0"} and got == raw and written == SIZE


@pytest.mark.skipif(shutil.which("gzip") is None, reason="no gzip tool on this machine")
def test_gzip_checks_and_reads_the_image(tmp_path):
    src = _device(tmp_path / "src", data=_content())
    path = tmp_path / "x.lvgz-stream"
    path.write_bytes(_dump(src)[0])
    subprocess.check_call(["gzip", "-t", str(path)])
    assert subprocess.check_output(["gzip", "-dc", str(path)]) == open(src, "rb").read()


def test_sparse_restore_skips_zero_chunks_only(tmp_path):
    src = _device(tmp_path / "src", data=_content())
    image = _dump(src)[0]
    meta, written, got = _restore(tmp_path, image, sparse=True, fill=b"\0")
    assert got == open(src, "rb").read()
    assert written == SIZE - CHUNK  # the all-zero second chunk is not written
    assert meta["thin_pool"] is None


def test_a_part_of_the_device_is_dumped(tmp_path):
    src = _device(tmp_path / "src", data=_content())
    image = _dump(src, size=CHUNK + 10)[0]
    meta, written, got = _restore(tmp_path, image, size=CHUNK + 10)
    assert meta["size"] == CHUNK + 10 and got == open(src, "rb").read()[:CHUNK + 10]


def test_a_device_smaller_than_the_size_is_refused(tmp_path):
    src = _device(tmp_path / "src", size=CHUNK)
    with pytest.raises(ImageError, match="smaller than the %d bytes" % (2 * CHUNK)):
        _dump(src, size=2 * CHUNK)
    image = _dump(src, size=CHUNK)[0]
    img = tmp_path / "image"
    img.write_bytes(image)
    dst = _device(tmp_path / "small", size=CHUNK - 512)
    fd = os.open(str(img), os.O_RDONLY)
    try:
        with pytest.raises(ImageError, match="smaller than the image"):
            _lv_image.restore(fd, dst)
    finally:
        os.close(fd)


def _damaged(tmp_path, image, size=SIZE):
    with pytest.raises(ImageError) as exc:
        _restore(tmp_path, image, size=size)
    return str(exc.value)


def test_damaged_images_are_refused(tmp_path):
    src = _device(tmp_path / "src", data=_content())
    image = _dump(src)[0]
    assert "ends after" in _damaged(tmp_path, image[:len(image) // 2])
    assert "trailer" in _damaged(tmp_path, image[:-3])
    assert "after its data" in _damaged(tmp_path, image + b"junk")
    crc = bytearray(image)
    crc[-6] ^= 0xFF  # the CRC32 of the trailer
    assert "CRC32" in _damaged(tmp_path, bytes(crc))
    body = bytearray(image)
    body[len(body) // 2] ^= 0xFF
    assert "damaged" in _damaged(tmp_path, bytes(body)) or "CRC32" in _damaged(tmp_path, bytes(body))
    assert "not a pitcopy LV image" in _damaged(tmp_path, gzip.compress(b"x" * 100))
    assert "gzip header" in _damaged(tmp_path, image[:5])


def test_a_header_whose_size_disagrees_is_refused(tmp_path):
    src = _device(tmp_path / "src", data=_content())
    image = _dump(src)[0]
    bigger = _lv_image.header(SIZE + 512) + image[len(_lv_image.header(SIZE)):]
    assert "holds %d bytes, its header says %d" % (SIZE, SIZE + 512) in _damaged(tmp_path, bigger, size=SIZE + 512)
    smaller = _lv_image.header(SIZE - 512) + image[len(_lv_image.header(SIZE)):]
    assert "more than the %d bytes" % (SIZE - 512) in _damaged(tmp_path, smaller)


@pytest.mark.parametrize("size, pool", [(-1, None), (10, "-bad"), (10, "a b")])
def test_a_header_that_cannot_be_written_is_refused(size, pool):
    with pytest.raises(ValueError):
        _lv_image.header(size, pool)
