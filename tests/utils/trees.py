# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a directory tree holds, to compare a restore with its version:
every entry's type, content checksum (or link target), mode, owner and
xattrs (ACLs included: they are xattrs); and a text file written or read
in one call."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os


def tree(root):
    """{relative path: (type, sha256 or link, mode, uid, gid, xattrs)} of every entry under ``root``."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in sorted(dirs + files):
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            if os.path.islink(p):
                what = ("link", os.readlink(p))
            elif os.path.isdir(p):
                what = ("dir", None)
            else:
                with open(p, "rb") as fh:
                    what = ("file", hashlib.sha256(fh.read()).hexdigest())
            xattrs = dict((x, os.getxattr(p, x, follow_symlinks=False))
                          for x in os.listxattr(p, follow_symlinks=False))
            out[os.path.relpath(p, root)] = what + (st.st_mode, st.st_uid, st.st_gid, xattrs)
    return out


def write(path, text):
    with open(path, "w") as fh:
        fh.write(text)


def read(path):
    with open(path) as fh:
        return fh.read()


def flip_middle_byte(path):
    """Corrupt a file the way a failing medium does: the byte in its
    middle inverted, the size unchanged."""
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        fh.seek(size // 2)
        byte = fh.read(1)
        fh.seek(size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
