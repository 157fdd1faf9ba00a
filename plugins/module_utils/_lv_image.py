# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stream of an LVM copy on a medium (issue 17, item 6): the copy's
blocks as ONE gzip member (RFC 1952), plain Python, no Ansible and no tool.

A plain gzip file on purpose: an operator without this collection restores
it by hand (``zcat <stream> | dd of=/dev/vg/new bs=1M conv=fsync``), and
``gzip -t`` checks it. What a restore needs before the first block (the
image's size, and the thin pool its LV was in) rides in the header's FEXTRA
field (subfield ``PC``), which gunzip skips. Compression level 1: a dump
reads a whole LV, mostly zeros or already compressed data, and the CPU is
the limit long before the ratio matters.

The reader is strict: one member, the FEXTRA subfield of ours, exactly
``size`` bytes out, CRC32 and ISIZE as written, nothing after the member.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import struct
import zlib

CHUNK = 1 << 20
LEVEL = 1
_MAGIC = b"\x1f\x8b"
_FEXTRA = 0x04
_SUBFIELD = b"PC"
_FORMAT = "pitcopy-lv-image"
_META_RE = re.compile(r"^pitcopy-lv-image 1 size=([0-9]{1,20})(?: thin_pool=([A-Za-z0-9_.+][A-Za-z0-9_.+-]*))?\Z")


class ImageError(Exception):
    """The stream is not an image this module wrote, or is damaged."""


def header(size, thin_pool=None):
    """The gzip member header carrying ``size`` and ``thin_pool``."""
    meta = "%s 1 size=%d" % (_FORMAT, size) + (" thin_pool=%s" % thin_pool if thin_pool else "")
    if not _META_RE.match(meta):
        raise ValueError("cannot describe an image of %r bytes in thin pool %r" % (size, thin_pool))
    sub = _SUBFIELD + struct.pack("<H", len(meta)) + meta.encode("ascii")
    # MTIME 0 (the stream's bytes depend on the data only), XFL 0, OS 3 (Unix)
    return _MAGIC + bytes((8, _FEXTRA)) + struct.pack("<I", 0) + bytes((0, 3)) + struct.pack("<H", len(sub)) + sub


def dump(path, size, write, thin_pool=None, digest=None):
    """Read ``size`` bytes of the device ``path`` and hand the image to
    ``write(chunk)``; ``digest`` (a hashlib object) sees the raw blocks.
    Returns the bytes of the device that are not zero (whole CHUNKs)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if os.lseek(fd, 0, os.SEEK_END) < size:
            raise ImageError("%s is smaller than the %d bytes to dump" % (path, size))
        os.lseek(fd, 0, os.SEEK_SET)
        write(header(size, thin_pool))
        comp = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        crc, done, used = 0, 0, 0
        zero = bytes(CHUNK)
        while done < size:
            data = os.read(fd, min(CHUNK, size - done))
            if not data:
                raise ImageError("short read from %s at byte %d of %d" % (path, done, size))
            if digest is not None:
                digest.update(data)
            if data != zero[:len(data)]:
                used += len(data)
            crc = zlib.crc32(data, crc)
            out = comp.compress(data)
            if out:
                write(out)
            done += len(data)
        write(comp.flush() + struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
        return used
    finally:
        os.close(fd)


class Reader(object):
    """Bytes of an open file descriptor, read in CHUNKs."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""

    def take(self, n):
        while len(self.buf) < n:
            more = os.read(self.fd, CHUNK)
            if not more:
                raise ImageError("the stream ends inside its gzip header")
            self.buf += more
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def rest(self):
        """The rest, chunk by chunk: what is buffered first."""
        if self.buf:
            out, self.buf = self.buf, b""
            yield out
        while True:
            more = os.read(self.fd, CHUNK)
            if not more:
                return
            yield more


def read_meta(reader):
    """``{"size": int, "thin_pool": str or None}`` from the header."""
    fixed = reader.take(10)
    if fixed[:3] != _MAGIC + b"\x08" or fixed[3] != _FEXTRA:
        raise ImageError("not a pitcopy LV image (no gzip header with only the FEXTRA flag)")
    xlen = struct.unpack("<H", reader.take(2))[0]
    extra = reader.take(xlen)
    while len(extra) >= 4:
        sid, slen = extra[:2], struct.unpack("<H", extra[2:4])[0]
        body = extra[4:4 + slen]
        if sid == _SUBFIELD and len(body) == slen:
            m = _META_RE.match(body.decode("ascii", "replace"))
            if m is None:
                raise ImageError("the image's header %r is not one this version reads" % body[:80])
            return {"size": int(m.group(1)), "thin_pool": m.group(2)}
        extra = extra[4 + slen:]
    raise ImageError("not a pitcopy LV image (its gzip header has no %s subfield)" % _SUBFIELD.decode())


def restore(fd, path, sparse=False):
    """Write the image read from ``fd`` onto the device ``path`` from its
    start. ``sparse``: all-zero CHUNKs are not written (the device reads
    zeros where nothing was written: a new thin LV in a zeroing pool).
    Returns (meta, bytes written). ImageError when the stream is damaged:
    what was written so far is the caller's to remove."""
    reader = Reader(fd)
    meta = read_meta(reader)
    size = meta["size"]
    dfd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        if os.lseek(dfd, 0, os.SEEK_END) < size:
            raise ImageError("%s is smaller than the image (%d bytes)" % (path, size))
        decomp = zlib.decompressobj(-zlib.MAX_WBITS)
        crc, pos, written = 0, 0, 0
        zero = bytes(CHUNK)
        tail = b""
        for data in reader.rest():
            if decomp.eof:
                tail += data
                continue
            while not decomp.eof:
                try:
                    # bounded: a MiB of zeros compresses to about a KiB
                    out = decomp.decompress(data, CHUNK)
                except zlib.error as exc:
                    raise ImageError("the image is damaged at byte %d of its data: %s" % (pos, exc))
                data = decomp.unconsumed_tail
                if pos + len(out) > size:
                    raise ImageError("the image holds more than the %d bytes its header says" % size)
                crc = zlib.crc32(out, crc)
                if out and not (sparse and out == zero[:len(out)]):
                    pwrite_all(dfd, out, pos)
                    written += len(out)
                pos += len(out)
                if not data and len(out) < CHUNK:
                    break  # this input is used up (a full CHUNK out may leave more buffered)
            if decomp.eof:
                tail += decomp.unused_data
        if not decomp.eof:
            raise ImageError("the image ends after %d of its %d bytes" % (pos, size))
        if pos != size:
            raise ImageError("the image holds %d bytes, its header says %d" % (pos, size))
        if len(tail) != 8:
            raise ImageError("the image has %d bytes after its data where the 8 of the gzip trailer belong" % len(tail))
        want_crc, want_len = struct.unpack("<II", tail)
        if want_crc != crc & 0xFFFFFFFF or want_len != size & 0xFFFFFFFF:
            raise ImageError("the image's data does not match its gzip trailer (CRC32 or length)")
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return meta, written


def pwrite_all(fd, data, offset):
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n
