# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Media: the files of a version dumped to a directory (copy_version
state=dumped), plain Python, no Ansible and no storage tool.

Layout: ``<medium>/<pool>/v<version>/<stream name>``, one stream per
source; ``stream_name`` is stable per source (its last component and a
digest of its whole path, so two sources never share one). A stream is
written to ``.pitcopy-dump.<pid>.<stream name>`` beside its final name,
hashed (sha256) as it is written, fsynced, renamed and the directory
fsynced: a reader sees a whole stream or none. A killed run leaves only
such a temporary name, which verify_records finds (``TEMP_RE``) and repair
removes; nothing else of a medium is ever deleted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os
import re
import stat

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput

TEMP_PREFIX = ".pitcopy-dump."
# ours, unmistakably: the prefix, a pid, then a stream name of ours
TEMP_RE = re.compile(r"^\.pitcopy-dump\.([0-9]{1,10})\.[A-Za-z0-9_.-]+\.[a-z0-9]+-stream\Z")
CHUNK = 1 << 20

MEDIA_RULE = ("an existing absolute directory (no symbolic link on the way), owned by root or by the user running "
              "pitcopy and writable by no one else, outside the pool's sources and target directories")


def stream_name(source, extension):
    """``<last component>-<12 hex digits of sha256(source)>.<extension>``."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(source.rstrip("/")) or "root").lstrip(".") or "root"
    digest = hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return "%s-%s.%s" % (base[:64], digest, extension)


def version_dir(medium, pool, version):
    return os.path.join(medium, pool, "v%d" % version)


def relative_stream(pool, version, name):
    return "%s/v%d/%s" % (pool, version, name)


def _inside(path, root):
    root = os.path.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def medium_problem(medium, definition, places):
    """Raise InvalidInput naming ``medium`` unless it is a directory a dump
    may be written to (MEDIA_RULE). ``places``: the directories of the
    pool's sources and targets (absolute paths; others are skipped)."""
    def bad(why):
        return InvalidInput("copy pool %s: media %r %s; accepted: %s; nothing was changed" % (
            definition.name, medium, why, MEDIA_RULE))

    if not isinstance(medium, str) or not medium:
        raise bad("is empty")
    if not os.path.isabs(medium):
        raise bad("is not an absolute path")
    where = os.path.normpath(medium)
    if where == "/":
        raise bad("is the root directory")
    try:
        st = os.lstat(where)
    except OSError as exc:
        raise bad("does not exist (%s); create the directory on the filesystem that is the medium" % (
            os.strerror(exc.errno)))
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise bad("is not a directory (symbolic links are not followed)")
    if os.path.realpath(where) != where:
        raise bad("passes through a symbolic link (its real path is %s)" % os.path.realpath(where))
    for place in places:
        if isinstance(place, str) and os.path.isabs(place) and _inside(where, place):
            raise bad("is inside %s, a source or target directory of the pool (a medium must be another place "
                      "than the data and the copies it keeps)" % place)
    # every directory from the medium up: writable by no one but root and us
    d = where
    while True:
        st = os.lstat(d)
        if st.st_uid not in (0, os.geteuid()):
            raise bad("is in %s, owned by uid %d, another user" % (d, st.st_uid))
        if st.st_mode & 0o022 and not (d != where and st.st_mode & stat.S_ISVTX):
            raise bad("is in %s, writable by group or others (mode %04o); chmod go-w it" % (
                d, stat.S_IMODE(st.st_mode)))
        if d == "/":
            break
        d = os.path.dirname(d)
    return where


def ensure_dir(path, top):
    """Make ``path`` (under ``top``, which exists) and its parents below
    ``top``, 0700, refusing a symbolic link or a non-directory on the way."""
    rel = os.path.relpath(path, top)
    d = top
    for part in rel.split("/"):
        d = os.path.join(d, part)
        try:
            os.mkdir(d, 0o700)
            fsync_dir(os.path.dirname(d))
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        st = os.lstat(d)
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidInput("%s exists and is not a directory (symbolic links are not followed); nothing "
                               "was written there" % d)
    return path


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StreamWriter(object):
    """A stream written to its temporary name, hashed as it goes; ``commit``
    fsyncs and renames it to ``final`` atomically, ``abort`` removes it."""

    def __init__(self, final):
        self.final = final
        self.temp = os.path.join(os.path.dirname(final), "%s%d.%s" % (TEMP_PREFIX, os.getpid(),
                                                                      os.path.basename(final)))
        self.fd = os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk):
        view = memoryview(chunk)
        while view:
            view = view[os.write(self.fd, view):]
        self.hash.update(chunk)
        self.size += len(chunk)

    def commit(self):
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = None
        os.rename(self.temp, self.final)
        fsync_dir(os.path.dirname(self.final))
        return self.size, self.hash.hexdigest()

    def abort(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        try:
            os.unlink(self.temp)
        except OSError:
            pass


def sha256_of(path, length=None, flags=0):
    """(bytes read, sha256) of the file or device at ``path``: its first
    ``length`` bytes, or all of it without ``length`` (a shorter file gives
    fewer bytes read); ``flags`` are added to O_RDONLY. OSError if it cannot
    be read."""
    h = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | flags)
    try:
        while length is None or size < length:
            chunk = os.read(fd, CHUNK if length is None else min(CHUNK, length - size))
            if not chunk:
                break
            h.update(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return size, h.hexdigest()


def read_stream(path):
    """(size, sha256) of the stream file at ``path`` (never through a
    symlink), read whole; OSError if it cannot be read."""
    return sha256_of(path, flags=os.O_NOFOLLOW)


def stream_problem(path, size, sha256, full):
    """None, or what is wrong with the stream at ``path``: ``("missing",
    why)`` or ``("corrupt", why)``. Without ``full`` only its existence and
    size are checked (cheap); with it every byte is read and hashed."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return "missing", "%s: %s" % (path, os.strerror(exc.errno))
    if not stat.S_ISREG(st.st_mode):
        return "missing", "%s is not a regular file" % path
    if st.st_size != size:
        return "corrupt", "%s has %d bytes, the inventory says %d" % (path, st.st_size, size)
    if not full:
        return None
    try:
        got_size, got = read_stream(path)
    except OSError as exc:
        return "corrupt", "%s cannot be read: %s" % (path, os.strerror(exc.errno))
    if got_size != size:
        return "corrupt", "%s has %d bytes, the inventory says %d" % (path, got_size, size)
    if got != sha256:
        return "corrupt", "%s has sha256 %s, the inventory says %s" % (path, got, sha256)
    return None


def temp_leftovers(medium, pool, pid=None):
    """The temporary names of ours under ``<medium>/<pool>/v*/`` (only those
    of process ``pid`` when given): what a killed dump left."""
    top = os.path.join(medium, pool)
    out = []
    try:
        versions = sorted(os.listdir(top))
    except OSError:
        return out
    for v in versions:
        if not re.match(r"^v[0-9]+\Z", v):
            continue
        d = os.path.join(top, v)
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            m = TEMP_RE.match(n)
            if m and (pid is None or int(m.group(1)) == pid) and os.path.isfile(os.path.join(d, n)) and \
                    not os.path.islink(os.path.join(d, n)):
                out.append(os.path.join(d, n))
    return out
