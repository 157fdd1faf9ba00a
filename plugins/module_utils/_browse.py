# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Browsing a version and restoring files from it (issue 17, items 2 and 3):
what is the same for every technology.

A backend says where a copy's data can be read (``CopyView``: a directory
readable as it is, a block device or a ZFS snapshot to mount read-only) and
where a source's live data is mounted; this module mounts views read-only,
validates the ``paths`` a user asks for, compares a copy's files with the
live ones and copies them back. Plain Python; commands through a runner
(argv lists, C locale), file operations with ``os``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat
import tempfile
from dataclasses import dataclass
from typing import Optional

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CommandError, CopyFailed, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import _unescape_mountinfo

MOUNTINFO = "/proc/self/mountinfo"

VIEW_DIRECTORY = "directory"
VIEW_BLOCK = "block"
VIEW_ZFS = "zfs"

#: the prefix of the temporary names a file restore makes beside a path
RESTORE_PREFIX = ".pitcopy-restore."
#: at most this many changed files are listed per path (the count is exact)
CHANGES_LISTED = 200


@dataclass(frozen=True)
class CopyView:
    """Where the data of one copy can be read.

    ``kind``: ``directory`` (``name`` is a path that reads as the copy: a
    read-only btrfs subvolume), ``block`` (``name`` is a block device holding
    a filesystem: an LVM snapshot or clone) or ``zfs`` (``name`` is a
    snapshot ``dataset@snap``). ``directory``: a path readable now without
    mounting anything (the btrfs subvolume, a ZFS snapshot's
    ``.zfs/snapshot/<snap>``), or None."""

    kind: str
    name: str
    directory: Optional[str] = None
    #: the volume's own name where the device path is not it (LVM ``vg/lv``)
    volume: Optional[str] = None


# --- the mount table ------------------------------------------------------------


def read_mounts(path=MOUNTINFO):
    """Mounts as dicts (mountpoint, root, fstype, source, options, dev)."""
    mounts = []
    with open(path, "r") as fh:
        for line in fh:
            left, sep, right = line.rstrip("\n").partition(" - ")
            lf = left.split(" ")
            rf = right.split(" ")
            if not sep or len(lf) < 6 or len(rf) < 2:
                continue
            mounts.append({"dev": lf[2], "root": _unescape_mountinfo(lf[3]),
                           "mountpoint": _unescape_mountinfo(lf[4]), "options": lf[5].split(","),
                           "fstype": rf[0], "source": _unescape_mountinfo(rf[1])})
    return mounts


def mount_at(path, mounts=None):
    """The mount whose mountpoint is exactly ``path`` (the last one), or None."""
    mounts = read_mounts() if mounts is None else mounts
    found = [m for m in mounts if m["mountpoint"] == path]
    return found[-1] if found else None


def mountpoints_of_device(device, mounts=None):
    """Mountpoints of block device ``device`` (by major:minor, so that
    ``/dev/vg/lv`` and ``/dev/mapper/vg-lv`` are the same), whole
    filesystem mounts (root ``/``) first."""
    try:
        rdev = os.stat(device).st_rdev
    except OSError:
        return []
    dev = "%d:%d" % (os.major(rdev), os.minor(rdev))
    mounts = read_mounts() if mounts is None else mounts
    return [m["mountpoint"] for m in sorted(mounts, key=lambda m: m["root"] != "/") if m["dev"] == dev]


def mountpoints_of_source(source, fstype, mounts=None):
    mounts = read_mounts() if mounts is None else mounts
    return [m["mountpoint"] for m in mounts if m["source"] == source and m["fstype"] == fstype]


def mount_options(fstype):
    """The options of a read-only mount of a point-in-time copy of a
    filesystem that was mounted when it was copied: its journal is never
    replayed (ext3/ext4 ``noload``, XFS ``norecovery``), since even a
    read-only mount replays it and so writes to the copy; XFS also needs
    ``nouuid`` (the copy has its origin's UUID, which is mounted)."""
    if fstype in ("ext3", "ext4"):
        return "ro,noload"
    if fstype == "xfs":
        return "ro,norecovery,nouuid"
    return "ro"


def mount_view(runner, view, path):
    """Mount ``view`` read-only at directory ``path``; the mount is checked
    to be read-only (refused and undone otherwise)."""
    if view.kind == VIEW_DIRECTORY:
        runner.run(["mount", "--bind", "-o", "ro", view.name, path])
    elif view.kind == VIEW_ZFS:
        runner.run(["mount", "-t", "zfs", "-o", "ro", view.name, path])
    elif view.kind == VIEW_BLOCK:
        rc, out, err = runner.run(["blkid", "-o", "value", "-s", "TYPE", view.name], check=False)
        fstype = out.strip()
        if rc != 0 or not fstype:
            raise CopyFailed("cannot mount %s: blkid finds no filesystem on it (%s); only copies of volumes that "
                             "hold a filesystem can be browsed" % (view.name, (err or out).strip() or "rc %s" % rc),
                             target=view.name)
        runner.run(["mount", "-t", fstype, "-o", mount_options(fstype), view.name, path])
    else:
        raise InvalidInput("unknown copy view kind %r" % (view.kind,))
    m = mount_at(path)
    if m is not None and "ro" not in m["options"]:
        # an old mount(8) ignores ro with --bind: make the bind read-only
        runner.run(["mount", "-o", "remount,bind,ro", path])
        m = mount_at(path)
    if m is None or "ro" not in m["options"]:
        unmount(runner, path)
        raise CopyFailed("%s was mounted at %s but not read-only; it was unmounted again" % (view.name, path),
                         target=view.name)


def unmount(runner, path):
    rc, out, err = runner.run(["umount", path], check=False)
    if rc != 0 and mount_at(path) is not None:
        raise CopyFailed("cannot unmount %s: %s; stop what uses it (fuser -vm %s shows it) and retry" % (
            path, (err or out).strip(), path), target=path)


class TemporaryView:
    """A context manager giving a directory that reads as ``view``: its own
    ``directory`` when it has one, else a read-only mount on a temporary
    directory, unmounted and removed on exit."""

    def __init__(self, runner, view):
        self.runner = runner
        self.view = view
        self.tmp = None

    def __enter__(self):
        if self.view.directory is not None:
            return self.view.directory
        self.tmp = tempfile.mkdtemp(prefix="pitcopy-view-")
        try:
            mount_view(self.runner, self.view, self.tmp)
        except Exception:
            os.rmdir(self.tmp)
            raise
        return self.tmp

    def __exit__(self, *exc):
        if self.tmp is not None:
            unmount(self.runner, self.tmp)
            os.rmdir(self.tmp)
        return False


# --- paths ------------------------------------------------------------------------


def _inside(path, root):
    return path == root or path.startswith(root.rstrip("/") + "/")


def check_relative_path(path, base=None):
    """``path`` as a normalized relative path, or InvalidInput naming it:
    no absolute path, no ``..``, no empty or ``.`` path (the whole source is
    restored with ``volumes``, not ``paths``)."""
    accepted = "paths are files or directories relative to a source's mount point, such as etc/app.conf or " \
               "home/alice (no leading /, no .., not the whole source)"
    if base is not None:
        accepted = "paths are files or directories relative to %s, such as base/16384 or pg_wal (no leading /, " \
                   "no .., not the whole dataset)" % base
    if not isinstance(path, str) or not path.strip():
        raise InvalidInput("path %r is not accepted: %s" % (path, accepted))
    if "\x00" in path:
        raise InvalidInput("path %r holds a NUL character: %s" % (path, accepted))
    if path.startswith("/"):
        raise InvalidInput("path %r is absolute: %s" % (path, accepted))
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidInput("path %r escapes the %s with '..': %s" % (path, "source" if base is None else "dataset",
                                                                     accepted))
    if not parts:
        if base is not None:
            raise InvalidInput("path %r names the whole dataset: %s" % (path, accepted))
        raise InvalidInput("path %r names the whole source: %s; to restore a whole source use volumes "
                           "without paths" % (path, accepted))
    return "/".join(parts)


def check_restore_to(restore_to, sources_dirs):
    """``restore_to`` normalized, or InvalidInput: absolute, not inside a
    source (``sources_dirs``: the live directories of the pool's sources),
    its parent directory existing (else its filesystem is likely not
    mounted), itself a directory when it exists."""
    accepted = "restore_to is an absolute path of a directory outside the pool's sources whose parent directory exists"
    if not isinstance(restore_to, str) or not restore_to.startswith("/"):
        raise InvalidInput("restore_to %r is not accepted: %s" % (restore_to, accepted))
    if "\x00" in restore_to or ".." in restore_to.split("/"):
        raise InvalidInput("restore_to %r is not accepted (no '..'): %s" % (restore_to, accepted))
    norm = os.path.normpath(restore_to)
    if norm == "/":
        raise InvalidInput("restore_to %r is the root directory: %s" % (restore_to, accepted))
    real = os.path.realpath(norm)
    for src in sources_dirs:
        if src and (_inside(real, os.path.realpath(src)) or _inside(norm, src)):
            raise InvalidInput("restore_to %r is inside source directory %s: it would write into live data that a "
                               "restore in place (no restore_to) restores on purpose; %s" % (restore_to, src, accepted))
    parent = os.path.dirname(norm)
    if not os.path.isdir(parent):
        raise InvalidInput("restore_to %r: its parent directory %s does not exist (is its filesystem mounted?); %s"
                           % (restore_to, parent, accepted))
    if os.path.lexists(norm) and not (os.path.isdir(norm) and not os.path.islink(norm)):
        raise InvalidInput("restore_to %r exists and is not a directory: %s" % (restore_to, accepted))
    return norm


def resolve_in(root, rel, what):
    """``root/rel``, refused (InvalidInput naming ``rel``) when a symlink on
    the way (the last component included) leads out of ``root``."""
    full = os.path.join(root, rel)
    real_root = os.path.realpath(root)
    real = os.path.realpath(full)
    if not _inside(real, real_root):
        raise InvalidInput("path %r is not accepted: in %s it leads through a symlink to %s, outside %s; name the "
                           "files inside it instead" % (rel, what, real, root))
    return full


def check_destination(root, rel):
    """The live destination ``root/rel`` of a restore in place, refused when
    a symlink among its parent directories leads out of ``root`` (the
    restore would write outside the path it was asked for)."""
    full = os.path.join(root, rel)
    parent = os.path.dirname(full)
    # the nearest existing parent
    while not os.path.lexists(parent) and _inside(parent, root) and parent != root:
        parent = os.path.dirname(parent)
    real_root = os.path.realpath(root)
    if not _inside(os.path.realpath(parent), real_root):
        raise InvalidInput("path %r is not accepted: its parent %s is a symlink to %s, outside the source %s; "
                           "a restore there would write outside the path" % (rel, parent, os.path.realpath(parent),
                                                                             root))
    return full


def mount_name(source, sources):
    """The directory name of ``source`` under a mount path or restore_to:
    its last component, or the whole name with ``/`` as ``_`` where two
    sources share a last component."""
    base = source.rstrip("/").rsplit("/", 1)[-1]
    if sum(1 for s in sources if s.rstrip("/").rsplit("/", 1)[-1] == base) > 1:
        return source.strip("/").replace("/", "_")
    return base


# --- comparing and copying --------------------------------------------------------


def _xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    out = {}
    for n in names:
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False)
        except OSError:
            pass
    return out


def _entry_differs(src, dst):
    """Why ``dst`` is not what ``src`` is (type, content, mode, owner,
    times of files, symlink target, xattrs and ACLs), or None."""
    try:
        d = os.lstat(dst)
    except OSError:
        return "missing"
    s = os.lstat(src)
    if stat.S_IFMT(s.st_mode) != stat.S_IFMT(d.st_mode):
        return "type"
    if stat.S_ISLNK(s.st_mode):
        return "target" if os.readlink(src) != os.readlink(dst) else None
    if stat.S_IMODE(s.st_mode) != stat.S_IMODE(d.st_mode):
        return "mode"
    if (s.st_uid, s.st_gid) != (d.st_uid, d.st_gid):
        return "owner"
    if stat.S_ISREG(s.st_mode):
        if s.st_size != d.st_size or s.st_mtime_ns != d.st_mtime_ns:
            return "content"
    if _xattrs(src) != _xattrs(dst):
        return "xattrs"
    return None


def differences(src, dst, rel):
    """``[(path, why)]`` of what restoring ``src`` onto ``dst`` would change,
    paths relative to the source (``rel`` first), sorted."""
    out = []
    why = _entry_differs(src, dst)
    if why in ("missing", "type"):
        return [(rel, why)]
    if why:
        out.append((rel, why))
    if os.path.isdir(src) and not os.path.islink(src):
        names = set(os.listdir(src))
        live = set(os.listdir(dst))
        for n in sorted(live - names):
            out.append((rel + "/" + n, "not in the version"))
        for n in sorted(names):
            out.extend(differences(os.path.join(src, n), os.path.join(dst, n), rel + "/" + n))
    return out


def _make_parents(copy_root, live_root, rel):
    """Create the missing parent directories of ``live_root/rel`` with the
    mode and owner their counterparts have in the copy."""
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        sub = "/".join(parts[:i])
        dst = os.path.join(live_root, sub)
        if os.path.lexists(dst):
            continue
        st = os.lstat(os.path.join(copy_root, sub))
        os.mkdir(dst, 0o700)
        os.chown(dst, st.st_uid, st.st_gid)
        os.chmod(dst, stat.S_IMODE(st.st_mode))


def restore_temp_names(destination, pid):
    """(copy, aside): the temporary names beside ``destination`` that a file
    restore by process ``pid`` uses, ``.pitcopy-restore.<name>.<pid>`` for
    the copy being made and ``.pitcopy-restore.old.<name>.<pid>`` for a
    directory moved aside while the copy takes its place. The journal of a
    file restore names each destination and the pid, so that verify_records
    finds exactly these two names and nothing else (issue 12)."""
    parent, base = os.path.split(destination)
    return (os.path.join(parent, "%s%s.%d" % (RESTORE_PREFIX, base, pid)),
            os.path.join(parent, "%sold.%s.%d" % (RESTORE_PREFIX, base, pid)))


def copy_back(runner, copy_root, live_root, rel):
    """Make ``live_root/rel`` what ``copy_root/rel`` is, touching nothing
    outside it: the copy is made beside it under a temporary name with
    ``cp -a --reflink=auto`` (owner, mode, times, ACLs, xattrs), then renamed
    into place; a directory that was there is renamed aside first and
    removed after."""
    src = os.path.join(copy_root, rel)
    dst = os.path.join(live_root, rel)
    _make_parents(copy_root, live_root, rel)
    tmp, old = restore_temp_names(dst, os.getpid())
    for t in (tmp, old):
        if os.path.lexists(t):
            raise CopyFailed("cannot restore %s: %s is left from an interrupted restore; look at it and remove it "
                             "first" % (dst, t), target=dst)
    try:
        runner.run(["cp", "-a", "--reflink=auto", "--", src, tmp])
    except CommandError as exc:
        remove_tree(tmp)
        raise CopyFailed("cannot restore %s from %s: %s; %s was left as it was" % (
            dst, src, (exc.stderr or exc.msg).strip(), dst), cause=exc, target=dst)
    src_dir = os.path.isdir(src) and not os.path.islink(src)
    dst_dir = os.path.isdir(dst) and not os.path.islink(dst)
    if not src_dir and not dst_dir:
        os.rename(tmp, dst)  # atomic: the old file or the restored one
        return
    moved = False
    if os.path.lexists(dst):
        os.rename(dst, old)
        moved = True
    try:
        os.rename(tmp, dst)
    except OSError:
        if moved:
            os.rename(old, dst)
        remove_tree(tmp)
        raise
    if moved:
        remove_tree(old)


def remove_tree(path):
    """Remove ``path`` (ours: a temporary name), staying on its filesystem."""
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path):
        dev = os.lstat(path).st_dev
        for n in os.listdir(path):
            p = os.path.join(path, n)
            if os.path.isdir(p) and not os.path.islink(p) and os.lstat(p).st_dev != dev:
                raise OSError(errno.EBUSY, "a filesystem is mounted inside", p)
            remove_tree(p)
        os.rmdir(path)
    else:
        os.unlink(path)
