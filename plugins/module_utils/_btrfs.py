# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""btrfs backends: ``btrfs_snapshot`` and ``btrfs_send``.

Names
    Sources and targets are absolute paths: letters, digits and ``. _ - + @ :
    = ,`` in each component; no ``.``/``..`` components, no component starting
    with ``-`` or with ``.pitcopy`` (our namespace), no trailing slash, no
    symlinks on the way. Nothing ever goes through a shell.

    btrfs_snapshot: the copy of ``/srv/db`` in implied target pool ``01`` of
    copy pool ``nightly`` is the read-only snapshot subvolume
    ``/srv/.pitcopy/nightly/01/db`` (``<parent>/.pitcopy/<pool>/<target
    pool>/<basename>``): in the source's parent directory, so on the same
    filesystem, and outside the source, so that restoring the source never
    touches a copy. It is staged as ``.../01/.pitcopy-staging.db`` and renamed
    on promotion: btrfs renames a read-only subvolume only within its
    directory, so staging and final names share it.

    btrfs_send: a target is a directory on a btrfs filesystem. The copy of
    ``/srv/db`` in target ``/backup/a`` is the received read-only subvolume
    ``/backup/a/db``. A temporary read-only snapshot
    ``/srv/.pitcopy/<pool>/send/.pitcopy-staging.db`` is taken at the point in
    time, sent with ``btrfs send | btrfs receive`` (two processes, one pipe,
    no shell) into ``/backup/a`` where it arrives as
    ``/backup/a/.pitcopy-staging.db``, and is deleted after the send;
    promotion deletes the replaced copy (ours only) and renames the staged
    one to ``/backup/a/db``.

Ownership mark
    Read-only subvolumes take no xattrs and a received one must stay
    read-only, so the mark is a sidecar file beside the copy:
    ``<dir>/.pitcopy-mark.<name>.json`` for the copy ``<dir>/<name>``. It is
    written BEFORE the snapshot or receive (state ``pending``: whatever
    appears at that path belongs to us even if we die at once) and completed
    after it with the subvolume's UUID, ctransid and generation. It names the
    copy pool, version, source and target. A target directory holding any
    entry without such a mark is foreign: never eligible, never written to.

Validity
    A copy is invalid when it is gone, is no longer read-only, is another
    subvolume than the one we made (UUID), or changed since it was made: its
    ctransid (the transaction of its last change, which ``btrfs property set
    ro false`` plus a write moves on) differs from the recorded one. The
    generation is recorded too; it is reported but not judged, because a
    balance or device replace rewrites tree blocks and moves it without
    changing the data.

Point in time
    btrfs is never frozen (a snapshot of a frozen btrfs blocks until the
    thaw). Sources are grouped by filesystem and snapshotted back to back,
    one ``btrfs subvolume snapshot -r`` each with nothing else between them,
    inside ``window.open(freeze=[])`` so that the pool's pre/post-copy hooks
    can quiesce the applications. Each snapshot is its own transaction, so
    without hooks two sources are copied a few milliseconds apart.
    ``consistency: freeze`` is refused for btrfs.

Sizes and capacity
    A subvolume has no fixed size. Its ``size`` is its referenced bytes when
    quotas (qgroups) are enabled on its filesystem, otherwise the bytes used
    on its filesystem (an upper bound). block_size is the filesystem's
    sectorsize, container its UUID, free the bytes available to unprivileged
    writers (statvfs f_bavail). btrfs_snapshot needs metadata only: 1 MiB
    free per snapshot on the source's filesystem. btrfs_send needs, on each
    target filesystem, the sum over its source filesystems of
    ``min(sum of the sources' sizes, that filesystem's used bytes)``, plus
    the snapshot reserve on each source filesystem; the replaced copies are
    deleted only after the new version is complete, so they do not count as
    free.

Processes
    Discovery, validity and marks are pure Python (``/proc/self/mountinfo``,
    stat, statvfs and the read-only ioctls BTRFS_IOC_FS_INFO and
    BTRFS_IOC_GET_SUBVOL_INFO). A version of N sources costs N
    ``btrfs subvolume snapshot -r`` (plus N send|receive pairs for
    btrfs_send) and one ``btrfs subvolume delete`` per batch of deletions,
    plus a ``btrfs subvolume list -o`` per source for the nested-subvolume
    check (at definition, at the capacity check and before the snapshots).
    ``list_copies`` reads only the directories where the pool's copies can
    be (its sources' ``.pitcopy/<pool>``, its target directories, the
    places its records and journal name: ``Backend.list_copies``), no
    command; without a scope (diagnostics) it runs one ``btrfs subvolume
    list`` per mounted btrfs filesystem. Every ioctl, subvolume-root test,
    statvfs and mount-table read goes through one object, ``KERNEL``
    (BtrfsKernel), and every command through the runner: the two
    boundaries the fast tests replay.

Target pools on another host (btrfs_send, ``target_pools[].host``)
    Every file operation on a target path (marks, subvolume facts, renames,
    listings, the checks of a target directory) goes through
    ``self._at(path)``: a LocalSite here, or the RemoteSite of the target
    pool's host (_btrfs_remote: an agent over ssh built from this module's
    own functions). Commands on a target host (``btrfs receive``, ``btrfs
    subvolume delete``) run through that host's SshRunner; the send stays
    here and pipes into the remote receive (_remote.pipe_across). Restoring
    from a copy on another host is refused (not supported yet).

Restore
    The source subvolume is moved aside (to ``<parent>/.pitcopy/<pool>/
    restore/``), a writable snapshot of the copy (btrfs_send: of a copy sent
    back to the source's filesystem) is made at the source's path, and the
    moved-aside subvolume is deleted only after that succeeded; on failure it
    is moved back. Refused, before anything changes, when the source is a
    mountpoint, is in use by a process (open file, working directory), holds
    nested subvolumes (a snapshot does not contain them), or the copy is not
    valid. Other kept versions are never touched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import datetime
import errno
import fcntl
import json
import os
import re
import stat
import struct
import uuid
from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils._backend import (
    Backend,
    CopyPlan,
    resolve_filter,
    restore_to_refusal,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CapacityError,
    CommandError,
    CopyFailed,
    InvalidInput,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CopyInfo,
    CopyPair,
    Volume,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import mount_of, read_mounts
from ansible_collections.pitcopy.versions.plugins.module_utils._remote import pipe_across
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import command_reason

BTRFS = "btrfs"
NAMESPACE = ".pitcopy"
STAGING_PREFIX = ".pitcopy-staging."
#: btrfs_send: the read-only snapshot a version was sent from, kept beside
#: the source (``<pool dir>/send/.pitcopy-base.<version>.<name>``) as the
#: parent of the next incremental send into the same target pool
BASE_PREFIX = ".pitcopy-base."
ROLE_BASE = "send-base"
MARK_PREFIX = ".pitcopy-mark."
MARK_SUFFIX = ".json"
MARK_FORMAT = 1
#: a mark is written to ``<mark>.tmp.<pid>`` (or ``.tmp.<pid>.<random>``
#: when that name is taken) and renamed into place
TEMP_INFIX = ".tmp."
_TEMP_TAIL = re.compile(r"^([0-9]+)(\.[0-9a-f]+)?$")

KIND_SUBVOLUME = "subvolume"
KIND_DIRECTORY = "directory"

#: metadata reserve per snapshot on the source filesystem (see module doc)
SNAPSHOT_RESERVE = 1024 * 1024

_COMPONENT = re.compile(r"^[A-Za-z0-9_.+@:=,-]+$")
_SAFE_POOL = re.compile(r"^[A-Za-z0-9_.+@:=,-]+$")

# --- ioctls (read-only except SYNC); layouts from linux/btrfs.h -------------

_IOC_MAGIC = 0x94
_FS_INFO_SIZE = 1024
# struct btrfs_ioctl_get_subvol_info_args
_SUBVOL_INFO_FMT = "=Q256sQQQQ16s16s16sQQQQ" + "QI4x" * 4 + "8Q"
_SUBVOL_INFO_SIZE = struct.calcsize(_SUBVOL_INFO_FMT)  # 504
_SUBVOL_RDONLY = 1 << 0  # BTRFS_ROOT_SUBVOL_RDONLY in the root item flags
FIRST_FREE_OBJECTID = 256  # inode number of every subvolume's root directory


def _ior(nr, size):
    return (2 << 30) | (size << 16) | (_IOC_MAGIC << 8) | nr


_IOC_FS_INFO = _ior(31, _FS_INFO_SIZE)
_IOC_GET_SUBVOL_INFO = _ior(60, _SUBVOL_INFO_SIZE)
_IOC_SYNC = (_IOC_MAGIC << 8) | 8
# struct btrfs_ioctl_vol_args_v2: fd, transid, flags, 32-byte union, name[4040]
_VOL_ARGS_V2_SIZE = 4096
_VOL_ARGS_V2_NAME = 56
_SUBVOL_CREATE_RDONLY = 1 << 1  # BTRFS_SUBVOL_RDONLY
_IOC_SNAP_CREATE_V2 = (1 << 30) | (_VOL_ARGS_V2_SIZE << 16) | (_IOC_MAGIC << 8) | 23
# struct btrfs_ioctl_get_subvol_rootref_args: min_treeid, 255 x {treeid,
# dirid}, num_items (u8), 7 bytes of padding; unprivileged (Linux 4.18)
_ROOTREF_SIZE = 4096
_ROOTREF_MAX = 255
_IOC_GET_SUBVOL_ROOTREF = (3 << 30) | (_ROOTREF_SIZE << 16) | (_IOC_MAGIC << 8) | 61


def _open_dir(path):
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0))


def _read_ioctl(path, request, size):
    """The ``size`` bytes a reading ioctl fills in for the directory ``path``."""
    fd = _open_dir(path)
    try:
        buf = bytearray(size)
        fcntl.ioctl(fd, request, buf)
    finally:
        os.close(fd)
    return buf


def fs_info(path):
    """(fsid, sectorsize, nodesize) of the btrfs filesystem holding ``path``."""
    buf = _read_ioctl(path, _IOC_FS_INFO, _FS_INFO_SIZE)
    fsid = str(uuid.UUID(bytes=bytes(buf[16:32])))
    nodesize, sectorsize = struct.unpack_from("=II", buf, 32)
    return fsid, sectorsize, nodesize


def subvol_info(path):
    """Facts of the subvolume whose root is ``path`` (no process)."""
    buf = _read_ioctl(path, _IOC_GET_SUBVOL_INFO, _SUBVOL_INFO_SIZE)
    v = struct.unpack(_SUBVOL_INFO_FMT, bytes(buf))
    null = b"\0" * 16
    return {
        "id": v[0],
        "generation": v[4],
        "readonly": bool(v[5] & _SUBVOL_RDONLY),
        "uuid": str(uuid.UUID(bytes=v[6])),
        "parent_uuid": str(uuid.UUID(bytes=v[7])) if v[7] != null else None,
        "received_uuid": str(uuid.UUID(bytes=v[8])) if v[8] != null else None,
        "ctransid": v[9],
        "otransid": v[10],
        "otime": v[15] + v[16] / 1e9,
    }


def nested_subvolume_ids(path):
    """Ids of the subvolumes whose parent is the subvolume whose root is
    ``path`` (BTRFS_IOC_GET_SUBVOL_ROOTREF; no process, no listing of the
    whole filesystem). More than one ioctl's worth (255) raises EOVERFLOW:
    the caller only asks whether there are any, so the first batch is it."""
    fd = _open_dir(path)
    try:
        buf = bytearray(_ROOTREF_SIZE)  # min_treeid 0: from the first
        try:
            fcntl.ioctl(fd, _IOC_GET_SUBVOL_ROOTREF, buf)
        except (IOError, OSError) as exc:
            if exc.errno != errno.EOVERFLOW:
                raise
        count = buf[8 + 16 * _ROOTREF_MAX]
        return [struct.unpack_from("=Q", buf, 8 + 16 * i)[0] for i in range(count)]
    finally:
        os.close(fd)


class SnapshotJob:
    """One read-only snapshot by BTRFS_IOC_SNAP_CREATE_V2, the ioctl that
    ``btrfs subvolume snapshot -r`` itself issues. Both descriptors are
    opened beforehand, so that inside the copy window only the ioctls run,
    back to back, without a process start between two snapshots."""

    def __init__(self, source, dest):
        self.source = source
        self.dest = dest
        self.sfd = self.dfd = None
        name = os.path.basename(dest).encode("utf-8")
        self.buf = bytearray(_VOL_ARGS_V2_SIZE)
        self.name = name

    def prepare(self):
        self.sfd = _open_dir(self.source)
        self.dfd = _open_dir(os.path.dirname(self.dest))
        struct.pack_into("=qQQ", self.buf, 0, self.sfd, 0, _SUBVOL_CREATE_RDONLY)
        self.buf[_VOL_ARGS_V2_NAME:_VOL_ARGS_V2_NAME + len(self.name)] = self.name

    def run(self):
        fcntl.ioctl(self.dfd, _IOC_SNAP_CREATE_V2, self.buf)

    def close(self):
        for fd in (self.sfd, self.dfd):
            if fd is not None:
                os.close(fd)
        self.sfd = self.dfd = None


def sync_fs(path):
    """Commit the filesystem's transaction (BTRFS_IOC_SYNC): a received
    subvolume's generation settles only then."""
    fd = _open_dir(path)
    try:
        fcntl.ioctl(fd, _IOC_SYNC)
    finally:
        os.close(fd)


class BtrfsKernel(object):
    """The kernel boundary of the btrfs backends: every fact or change that
    only a real btrfs filesystem can give (a subvolume root's inode number,
    the subvolume and filesystem ioctls, free space, quotas, the mount
    table). It is one narrow object so that the fast tests can replay what a
    real kernel answered (tests/utils/recording.py records these calls
    beside the runner's commands, tests/unit/replay.py asserts each one's
    arguments), the way the runner is replayed; everything else (marks,
    directories, renames) stays plain file operations. This default is the
    real implementation, which tests/real/test_btrfs*.py prove."""

    def mounts(self, path):
        """The mount table (read_mounts of ``path``)."""
        return read_mounts(path)

    def is_subvolume(self, path):
        """Whether ``path`` is a subvolume's root: a directory with the
        inode number every subvolume root has (no symlink followed)."""
        try:
            st = os.lstat(path)
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode) and st.st_ino == FIRST_FREE_OBJECTID

    def subvolume_info(self, path):
        return subvol_info(path)

    def nested_subvolumes(self, path):
        """Ids of the subvolumes nested directly in the subvolume ``path``."""
        return nested_subvolume_ids(path)

    def filesystem_info(self, path):
        """{fsid, sectorsize, nodesize} of the btrfs filesystem of ``path``."""
        fsid, sectorsize, nodesize = fs_info(path)
        return {"fsid": fsid, "sectorsize": sectorsize, "nodesize": nodesize}

    def space(self, path):
        """{free, used} bytes of the filesystem of ``path`` (statvfs; free
        is what unprivileged writers may use)."""
        sv = os.statvfs(path)
        return {"free": sv.f_bavail * sv.f_frsize, "used": (sv.f_blocks - sv.f_bfree) * sv.f_frsize}

    def quotas_enabled(self, fsid):
        return os.path.isdir("/sys/fs/btrfs/%s/qgroups" % fsid)

    def sync(self, path):
        sync_fs(path)

    # a read-only snapshot in three steps, so that only the ioctl runs
    # inside the copy window (see SnapshotJob)

    def prepare_snapshot(self, source, dest):
        job = SnapshotJob(source, dest)
        try:
            job.prepare()
        except Exception:
            job.close()  # the descriptor opened before the failure
            raise
        return job

    def take_snapshot(self, job):
        job.run()

    def close_snapshot(self, job):
        job.close()


#: the kernel the backends talk to; the replay tests put a recorded one here
KERNEL = BtrfsKernel()


# --- names -------------------------------------------------------------------

_ACCEPTED = ("an absolute path such as /srv/data: letters, digits and . _ - + @ : = , in each component; "
             "no '.' or '..' components, no component starting with '-' or '.pitcopy', no trailing slash, "
             "no spaces, newlines or shell characters")


def validate_path(name, what="source"):
    """Raise InvalidInput unless ``name`` is an acceptable absolute path."""
    def bad(why):
        return InvalidInput("btrfs %s %r is not accepted: %s; give %s" % (what, name, why, _ACCEPTED))

    if not isinstance(name, str) or not name:
        raise bad("not a non-empty string")
    if not name.startswith("/"):
        raise bad("it is not an absolute path" + (" (it starts with '-')" if name.startswith("-") else ""))
    if name == "/":
        raise bad("the root directory cannot be a %s" % what)
    if len(name) > 4000:
        raise bad("it is longer than 4000 characters")
    if name.endswith("/") or "//" in name:
        raise bad("it has a trailing or doubled slash")
    for comp in name[1:].split("/"):
        if comp in (".", ".."):
            raise bad("it has a %r component" % comp)
        if comp.startswith("-"):
            raise bad("component %r starts with '-'" % comp)
        if comp.startswith(NAMESPACE):
            raise bad("component %r is in pitcopy's own namespace (.pitcopy*)" % comp)
        if len(comp) > 255:
            raise bad("a component is longer than 255 bytes")
        if not _COMPONENT.match(comp):
            raise bad("component %r has a character outside letters, digits and . _ - + @ : = ," % comp)
    return name


def _validate_pool_component(value, what):
    if not isinstance(value, str) or not _SAFE_POOL.match(value) or value in (".", "..") or value.startswith("-"):
        raise InvalidInput("%s %r cannot be used in a btrfs path: use letters, digits and . _ - + @ : = , "
                           "(not starting with '-')" % (what, value))


def mark_path(copy_path):
    d, b = os.path.split(copy_path)
    return os.path.join(d, MARK_PREFIX + b + MARK_SUFFIX)


def staged_path(copy_path):
    d, b = os.path.split(copy_path)
    return os.path.join(d, STAGING_PREFIX + b)


MEDIA_WORK_RE = re.compile(r"^\.pitcopy-media\.[0-9]{1,10}\Z")


def media_work_dir(volume):
    """Where a stream from media is received before it becomes ``volume``."""
    return os.path.join(os.path.dirname(volume), ".pitcopy-media.%d" % os.getpid())


def pool_dir(source, pool):
    return os.path.join(os.path.dirname(source), NAMESPACE, pool)


def base_path(source, pool, version):
    """Where the base of ``source``'s copy of ``version`` is kept (btrfs_send)."""
    return os.path.join(pool_dir(source, pool), "send", "%s%d.%s" % (BASE_PREFIX, version, os.path.basename(source)))


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def read_mark(copy_path):
    """The mark of ``copy_path`` as a dict, or None (no mark, or unreadable:
    an unreadable mark does not make a copy ours)."""
    try:
        # a symlink at a mark's name is not our mark (and is never followed)
        fd = os.open(mark_path(copy_path), os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "r") as fh:
            data = json.load(fh)
    except (IOError, OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("pitcopy") != MARK_FORMAT or not isinstance(data.get("pool"), str):
        return None
    return data


def write_mark(copy_path, data, durable=True):
    """Atomically write the mark of ``copy_path`` (temp file, rename). With
    ``durable`` also fsync file and directory; batches pass False and make
    the whole batch durable with one sync_fs() per filesystem instead."""
    path = mark_path(copy_path)
    tmp, fd = _create_temp(path)
    try:
        os.write(fd, (json.dumps(data, sort_keys=True) + "\n").encode("utf-8"))
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    if durable:
        dfd = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _create_temp(path):
    """(name, fd) of a new temporary file for ``path``'s content, created
    exclusively and never through a symlink: a directory someone else can
    write to (a btrfs_send target) may hold a symlink planted at our temp
    name, and O_CREAT|O_TRUNC would make root truncate and write what it
    points to. A name that is taken is never reused; another one is drawn."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    base = "%s%s%d" % (path, TEMP_INFIX, os.getpid())
    name = base
    for dummy in range(8):
        try:
            return name, os.open(name, flags, 0o600)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        name = "%s.%s" % (base, binascii.hexlify(os.urandom(6)).decode("ascii"))
    raise OSError(errno.EEXIST, "cannot create a temporary mark beside %s: every name tried exists" % path)


def temp_mark_owner(d, name):
    """The copy name whose mark ``name`` in directory ``d`` is a temporary
    of (``.pitcopy-mark.<copy>.json.tmp.<pid>[.<random>]``), or None when it
    is not one, was not left by a finished process, or is not a plain file
    of ours: only such files are ever swept."""
    if not name.startswith(MARK_PREFIX):
        return None
    head, sep, tail = name.partition(MARK_SUFFIX + TEMP_INFIX)
    m = _TEMP_TAIL.match(tail) if sep else None
    if m is None or int(m.group(1)) == os.getpid():
        return None
    try:
        st = os.lstat(os.path.join(d, name))
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        return None
    return head[len(MARK_PREFIX):]


def _temp_mark_pool(path):
    """The pool named in a temporary mark, or None (empty or cut short)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "r") as fh:
            data = json.load(fh)
    except (IOError, OSError, ValueError):
        return None
    return data.get("pool") if isinstance(data, dict) else None


def remove_mark(copy_path):
    try:
        os.unlink(mark_path(copy_path))
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def _exists(path):
    try:
        os.lstat(path)
        return True
    except OSError:
        return False


def _is_subvolume(path):
    return KERNEL.is_subvolume(path)


def identity_of(path, technology):
    """What identifies the subvolume at ``path`` (CopyPair.identity): its
    UUID, and for ``btrfs_send`` also the received UUID (the sent snapshot's
    UUID, which ``btrfs receive`` stamps on the copy). None when ``path`` is
    not a subvolume."""
    if not _is_subvolume(path):
        return None
    try:
        info = KERNEL.subvolume_info(path)
    except OSError:
        return None
    if technology == "btrfs_send":
        return "%s,received=%s" % (info["uuid"], info["received_uuid"] or "none")
    return info["uuid"]


def same_subvolume(recorded, found):
    """Whether two identities of identity_of() name the same subvolume: the
    UUID decides. A received UUID is cleared when someone makes the copy
    writable (``btrfs property set ro false``): that is the same subvolume
    changed, which validity (ctransid, read-only) reports, not another one."""
    if not recorded or not found:
        return False
    return recorded.split(",", 1)[0] == found.split(",", 1)[0]


def mark_agrees(path, mark):
    """Whether the subvolume at ``path`` is the one ``mark`` describes. A
    mark that records a UUID (complete, or promoting) speaks only for the
    subvolume with that UUID: another subvolume put at that path beside an
    old mark is not ours. A pending mark (no UUID yet) claims whatever
    appears at its staging path, as written before the snapshot."""
    if mark is None or not mark.get("uuid") or not _is_subvolume(path):
        return True
    try:
        return KERNEL.subvolume_info(path)["uuid"] == mark.get("uuid")
    except OSError:
        return False


def _makedirs(path, mode=0o700):
    """Make ``path``, a directory in our namespace (``<dir>/.pitcopy/...``),
    with every component from ``.pitcopy`` down created ``mode`` whatever the
    umask (os.makedirs gives intermediate directories 0777 & ~umask), and
    refuse one that is not a plain directory of ours; one of ours that is
    open to others (made by an older version under umask 000) is closed."""
    head, sep, tail = path.partition("/%s" % NAMESPACE)
    if not sep or (tail and not tail.startswith("/")):
        raise CopyFailed("internal: %s is not in pitcopy's namespace" % path)
    current = head + sep
    for comp in [""] + [c for c in tail.split("/") if c]:
        current = os.path.join(current, comp) if comp else current
        try:
            os.mkdir(current, mode)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        try:
            fd = os.open(current, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise CopyFailed("%s is not a directory pitcopy can use (%s); it must be a plain directory owned by "
                             "uid %d: move it away" % (current, exc.strerror, os.geteuid()))
        try:
            st = os.fstat(fd)
            if st.st_uid != os.geteuid():
                raise CopyFailed("%s is owned by uid %d, not by uid %d that runs pitcopy: another user could change "
                                 "the copies and marks in it; move it away" % (current, st.st_uid, os.geteuid()))
            if stat.S_IMODE(st.st_mode) != mode:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)


def target_dir_problem(path):
    """Why another user could write into directory ``path`` (plant symlinks
    or forged marks beside our copies, swap a copy), or None: ``path`` and
    every directory above it must be owned by root or by us and not be
    writable by group or others unless sticky (then they cannot rename or
    remove what is ours; ``path`` itself must not be writable by others at
    all, sticky or not)."""
    me = os.geteuid()
    current = path
    while True:
        try:
            st = os.lstat(current)
        except OSError as exc:
            return "%s cannot be examined: %s" % (current, exc.strerror)
        mode = stat.S_IMODE(st.st_mode)
        where = "it" if current == path else "its parent directory %s" % current
        if st.st_uid not in (0, me):
            return "%s is owned by uid %d, another user than root or uid %d that runs pitcopy" % (
                where, st.st_uid, me)
        if mode & 0o022 and (current == path or not mode & stat.S_ISVTX):
            return "%s is writable by %s (mode %04o)" % (
                where, "group and others" if mode & 0o022 == 0o022 else ("others" if mode & 0o002 else "its group"),
                mode)
        if current == "/":
            return None
        current = os.path.dirname(current)


def busy_users(path):
    """PIDs with an open file, working directory or root under ``path``
    (read from /proc; no process started)."""
    prefix = path.rstrip("/") + "/"
    users = []
    me = os.getpid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        base = "/proc/%s" % pid
        links = [base + "/cwd", base + "/root"]
        try:
            links.extend(base + "/fd/" + fd for fd in os.listdir(base + "/fd"))
        except OSError:
            pass
        for link in links:
            try:
                target = os.readlink(link)
            except OSError:
                continue
            if target == path or target.startswith(prefix):
                users.append(int(pid))
                break
    return users


class _BtrfsBase(Backend):
    """What both btrfs technologies share: names, discovery, marks, deletion."""

    implied_targets = False
    identifies_copies = True

    #: how read-only snapshots are taken: "ioctl" (BTRFS_IOC_SNAP_CREATE_V2,
    #: what ``btrfs subvolume snapshot -r`` calls, without a process per
    #: snapshot; falls back to the command where the kernel lacks it) or
    #: "command" (``btrfs subvolume snapshot -r`` through the runner)
    snapshot_with = "ioctl"

    def __init__(self, runner=None, mounts_path="/proc/self/mountinfo", snapshot_with=None):
        super(_BtrfsBase, self).__init__(runner)
        self.mounts_path = mounts_path
        if snapshot_with is not None:
            if snapshot_with not in ("ioctl", "command"):
                raise InvalidInput("snapshot_with %r: use 'ioctl' or 'command'" % (snapshot_with,))
            self.snapshot_with = snapshot_with

    # --- where a path lives ---------------------------------------------------

    #: (target directory, RemoteSite) of the target pools on other hosts
    _remote = ()
    _local_site = None

    def use_definition(self, definition):
        from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs_remote import RemoteSite

        sites = {}
        remote = []
        for tp in definition.target_pools:
            if tp.host is None:
                continue
            if tp.host not in sites:
                sites[tp.host] = RemoteSite(tp.host, definition.ssh, self.runner)
            sites[tp.host].dirs.extend(tp.volumes)
            remote.extend((v, sites[tp.host]) for v in tp.volumes)
        self._remote = remote

    def _site_of(self, path):
        """The RemoteSite of a path in a target directory on another host,
        or None (the managed host)."""
        for d, site in self._remote:
            if path == d or path.startswith(d + "/"):
                return site
        return None

    def host_of(self, name):
        site = self._site_of(name)
        return site.host if site is not None else None

    def _at(self, path):
        site = self._site_of(path)
        if site is not None:
            return site
        if self._local_site is None:
            from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs_remote import LocalSite
            self._local_site = LocalSite(self.runner)
        return self._local_site

    def _remote_sites(self):
        seen = []
        for _d, site in self._remote:
            if site not in seen:
                seen.append(site)
        return seen

    def _read_mark(self, path):
        return self._at(path).call("read_mark", path)

    def _write_mark(self, path, data, durable=True):
        self._at(path).write_mark(path, data, durable)

    def _remove_mark(self, path):
        self._at(path).remove_marks([path])

    def _remove_marks(self, paths):
        """Several marks removed: one agent run per host."""
        by_site = {}
        for p in paths:
            by_site.setdefault(self._site_of(p), []).append(p)
        for site, some in by_site.items():
            self._at(some[0]).remove_marks(some)

    def _exists(self, path):
        return self._at(path).call("exists", path)

    def _is_subvol(self, path):
        return self._at(path).call("is_subvolume", path)

    def _subvol_info(self, path):
        return self._at(path).call("subvolume_info", path)

    def _identity(self, path, technology):
        return self._at(path).call("identity", path, technology)

    def _agrees(self, path, mark):
        return self._at(path).call("agrees", path, mark)

    def _listdir(self, path):
        return self._at(path).call("listdir", path)

    def _rename(self, old, new):
        self._at(old).call("rename", old, new)

    def _unlink(self, path):
        self._at(path).call("unlink", path)

    def _temp_mark_owner(self, d, name):
        # most entries are not temporary marks by name: no round trip for them
        if not name.startswith(MARK_PREFIX) or MARK_SUFFIX + TEMP_INFIX not in name:
            return None
        return self._at(d).call("temp_mark_owner", d, name)

    def _temp_mark_pool(self, path):
        return self._at(path).call("temp_mark_pool", path)

    def _target_dir_problem(self, path):
        return self._at(path).call("target_problem", path)

    # --- helpers -------------------------------------------------------------

    def _run(self, argv, **kw):
        return self.runner.run(argv, **kw)

    def _mounts(self):
        return KERNEL.mounts(self.mounts_path)

    def _fs_facts(self, mount, cache):
        """{fsid, sectorsize, nodesize, free, used, mountpoint} of a btrfs
        mount, once per filesystem per call."""
        key = mount["mount_id"]
        if key not in cache:
            mp = mount["mountpoint"]
            facts = dict(KERNEL.filesystem_info(mp), mountpoint=mp)
            facts.update(KERNEL.space(mp))
            cache[key] = facts
        return cache[key]

    def _qgroup_sizes(self, fsid, mountpoint, cache):
        """{subvolume id: referenced bytes} when quotas are on, else {}."""
        key = ("qgroups", fsid)
        if key not in cache:
            sizes = {}
            if KERNEL.quotas_enabled(fsid):
                rc, out, _err = self._run(["btrfs", "qgroup", "show", "--raw", "-r", "--", mountpoint], check=False)
                if rc == 0:
                    for line in out.splitlines():
                        f = line.split()
                        if len(f) >= 2 and f[0].startswith("0/") and f[1].isdigit():
                            sizes[int(f[0][2:])] = int(f[1])
            cache[key] = sizes
        return cache[key]

    def _dir_ownership(self, path):
        """(owners, foreign entries) of a directory used as a copy location:
        owners maps entry -> mark; foreign lists entries without our mark
        (the first one found: one is enough to make it foreign)."""
        owners = {}
        foreign = []
        try:
            entries = set(self._listdir(path))
        except OSError:
            return owners, foreign
        for e in sorted(entries):
            if e.startswith(MARK_PREFIX):
                continue  # marks (and their temp files) are ours by name
            mark = self._read_mark(os.path.join(path, e)) if (MARK_PREFIX + e + MARK_SUFFIX) in entries else None
            if mark is None or not self._agrees(os.path.join(path, e), mark):
                foreign.append(e)
                break
            owners[e] = mark
        return owners, foreign

    def _remote_volume(self, name, site):
        """The Volume of ``name`` on the target host ``site`` (no qgroups
        there: a subvolume's size is its file system's used bytes)."""
        facts = site.call("volume", name)
        if facts is None:
            return None
        if facts["kind"] != KIND_DIRECTORY:
            return Volume(name=name, kind=facts["kind"], size=facts.get("size", 0))
        if facts["fstype"] != BTRFS:
            return Volume(name=name, kind=KIND_DIRECTORY, container="%s:%s" % (site.host, facts["source"]),
                          free=facts["free"], foreign_data=bool(facts["entries"]))
        kind = KIND_SUBVOLUME if facts["subvolume"] else KIND_DIRECTORY
        technologies = frozenset(("btrfs_snapshot", "btrfs_send")) if facts["subvolume"] else \
            frozenset(("btrfs_send",))
        owner, foreign = self._ownership_of(name, kind)
        # the file system UUID alone could be a clone's on the other host
        return Volume(name=name, kind=kind, size=facts["used"] if facts["subvolume"] else 0,
                      block_size=facts["sectorsize"], technologies=technologies,
                      container="%s:%s" % (site.host, facts["fsid"]), free=facts["free"], owner=owner,
                      foreign_data=foreign)

    def _volume(self, name, mounts, cache):
        try:
            st = os.lstat(name)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode) or os.path.realpath(name) != name:
            return Volume(name=name, kind="symlink")
        if not stat.S_ISDIR(st.st_mode):
            return Volume(name=name, kind="file", size=st.st_size)
        m = mount_of(name, mounts)
        if m is None or m["fstype"] != BTRFS:
            return Volume(name=name, kind=KIND_DIRECTORY, container=(m or {}).get("source", ""),
                          free=KERNEL.space(name)["free"], foreign_data=bool(self._listdir(name)))
        fs = self._fs_facts(m, cache)
        if self._is_subvol(name):
            kind = KIND_SUBVOLUME
            info = self._subvol_info(name)
            size = self._qgroup_sizes(fs["fsid"], fs["mountpoint"], cache).get(info["id"], fs["used"])
            technologies = frozenset(("btrfs_snapshot", "btrfs_send"))
        else:
            kind = KIND_DIRECTORY
            size = 0
            technologies = frozenset(("btrfs_send",))
        owner, foreign = self._ownership_of(name, kind)
        return Volume(name=name, kind=kind, size=size, block_size=fs["sectorsize"], technologies=technologies,
                      container=fs["fsid"], free=fs["free"], owner=owner, foreign_data=foreign)

    def _ownership_of(self, name, kind):
        """(owner pool or None, foreign_data) of a volume; per technology."""
        mark = self._read_mark(name)
        return (mark["pool"] if mark else None), not self._agrees(name, mark)

    def _validate_any(self, name):
        """Syntax of any name discover() may get: a plain path, or one of
        our own copy paths (``.../.pitcopy/<pool>/...``)."""
        if isinstance(name, str) and "/%s/" % NAMESPACE in name:
            head, _sep, tail = name.partition("/%s/" % NAMESPACE)
            parts = tail.split("/")
            validate_path(head + "/x", "path")
            for p in parts:
                if p in ("", ".", "..") or "\n" in p or "\0" in p or p.startswith("-"):
                    raise InvalidInput("btrfs path %r is not accepted; give %s" % (name, _ACCEPTED))
            return
        validate_path(name, "volume")

    # --- Backend: discovery --------------------------------------------------

    def discover(self, names):
        for n in names:
            self._validate_any(n)
        # a fresh look at the other hosts (the plan may be minutes old)
        for site in self._remote_sites():
            site.invalidate()
        mounts = self._mounts()
        cache = {}
        out = {}
        for n in names:
            site = self._site_of(n)
            vol = self._volume(n, mounts, cache) if site is None else self._remote_volume(n, site)
            if vol is not None:
                out[n] = vol
        return out

    def validate_source_name(self, name):
        validate_path(name, "source")

    def source_kinds(self):
        return frozenset((KIND_SUBVOLUME,))

    def size_must_fit(self):
        # subvolumes have no fixed size: check_capacity compares free bytes
        return False

    # --- shared checks ---------------------------------------------------------

    def _check_definition(self, definition):
        if definition.consistency == "freeze":
            raise InvalidInput(
                "consistency 'freeze' is not possible for %s: a snapshot of a frozen btrfs filesystem blocks "
                "in uninterruptible sleep until the thaw; use consistency 'auto' with pre_copy_hooks that "
                "quiesce the applications" % definition.technology)
        _validate_pool_component(definition.name, "copy pool name")

    def validate_definition(self, definition):
        # refused when the pool is defined, and again before each copy for a
        # definition saved earlier
        self._check_definition(definition)
        # what the storage says about the sources there are (a missing one is
        # reported by the engine): refused here, not at the first copy
        mounts = self._mounts()
        for source in definition.sources:
            if isinstance(source, str) and self._exists(source):
                self._check_source(source, mounts)

    def _check_source(self, source, mounts):
        """The source must be a btrfs subvolume that is not a mountpoint."""
        validate_path(source, "source")
        if os.path.realpath(source) != source:
            raise InvalidInput("btrfs source %s has a symlink in its path (it resolves to %s); give the real path"
                               % (source, os.path.realpath(source)))
        if not self._is_subvol(source):
            raise InvalidInput("btrfs source %s is not a btrfs subvolume (create it with 'btrfs subvolume create' "
                               "or choose an existing subvolume)" % source)
        m = mount_of(source, mounts)
        if m is None or m["fstype"] != BTRFS:
            raise InvalidInput("btrfs source %s is not on a btrfs filesystem" % source)
        if m["mountpoint"] == source:
            parent = mount_of(os.path.dirname(source), mounts)
            same_fs = parent is not None and parent["fstype"] == BTRFS and parent["dev"] == m["dev"]
            raise InvalidInput(
                "btrfs source %s is the mountpoint of a filesystem: %sa restore could never put the copy in its place "
                "(a mountpoint cannot be renamed or replaced: EBUSY); give the subvolume's path below a mount of its "
                "filesystem's top level (for example mount it with subvolid=5 elsewhere) instead" % (
                    source, "" if same_fs else "its copies would be snapshots in %s, on another filesystem than the "
                    "source (a btrfs snapshot cannot cross filesystems), and " % pool_dir(source, "<pool>")))
        self._check_not_nested(source)
        return m

    def _check_not_nested(self, source):
        """Subvolumes nested inside a source are not in its snapshots (they
        show as empty directories), so its copies would silently miss them:
        refused, at definition and before each copy.

        The kernel answers whether there are any, without a process: this
        check runs for every source in every pass (definition, capacity at
        plan and at apply, the pre-flight of each copy), and one ``btrfs
        subvolume list -o`` per source each time made a version of 200
        sources 9x the time of the bare snapshot loop. The listing runs only
        when the kernel names nested subvolumes (for their paths in the
        message) or cannot answer (a kernel before 4.18)."""
        try:
            if not KERNEL.nested_subvolumes(source):
                return
        except (IOError, OSError):
            pass  # the listing below says what there is, or why it cannot
        rc, out, err = self._run(["btrfs", "subvolume", "list", "-o", "--", source], check=False)
        if rc != 0:
            raise InvalidInput("btrfs source %s: cannot list the subvolumes nested in it: %s" % (
                source, (err or out).strip() or "exit status %s" % rc))
        nested = [ln.partition(" path ")[2].strip() for ln in out.splitlines() if " path " in ln]
        if nested:
            listing = ", ".join(nested[:5]) + (", ..." if len(nested) > 5 else "")
            raise InvalidInput(
                "btrfs source %s holds nested subvolumes (%s) that a snapshot of it does not contain: its copies "
                "would miss them; add them to sources as sources of their own and move them out of %s (for example "
                "beside it), or delete them" % (source, listing, source))

    def _check_pair(self, definition, p, mounts):
        """Raise InvalidInput if pair ``p`` cannot be copied; return the
        source's mount."""
        raise NotImplementedError

    def _preflight(self, definition, p, mounts):
        """_check_pair for create_copies: the engine has journaled the copy
        by then and expects CopyFailed (nothing was changed)."""
        try:
            return self._check_pair(definition, p, mounts)
        except InvalidInput as exc:
            raise CopyFailed("version of copy pool %s not taken, nothing was changed: %s" % (definition.name, exc.msg),
                             source=p.source, target=p.target)

    def _delete_subvolumes(self, paths):
        """One ``btrfs subvolume delete`` for all of ``paths`` that exist."""
        # each path once: ``btrfs subvolume delete`` given the same path
        # twice deletes it and then fails on the second ("Could not statfs")
        seen = set()
        paths = [p for p in paths if self._is_subvol(p) and not (p in seen or seen.add(p))]
        by_site = {}
        for p in paths:
            by_site.setdefault(self._site_of(p), []).append(p)
        for site, some in by_site.items():
            runner = self.runner if site is None else site.runner
            try:
                runner.run(["btrfs", "subvolume", "delete", "--"] + some)
            except Exception:
                if site is not None:
                    site.invalidate()  # some may be gone: ask again
                raise
            if site is not None:
                site.forget(some)
        return paths

    def _delete_ours(self, pool, paths, keep_version=None, identities=None):
        """Delete the subvolumes at ``paths`` whose mark names ``pool`` (and,
        with ``keep_version``, another version), then their marks. A
        subvolume that is not the one its mark describes (UUID), or not the
        copy the record names (``identities``: {path: identity}), is not
        ours and is left alone, mark and all."""
        doomed = []
        identities = identities or {}
        for p in paths:
            mark = self._read_mark(p)
            if mark is None or mark.get("pool") != pool:
                continue
            if keep_version is not None and mark.get("version") == keep_version:
                continue
            if not self._agrees(p, mark):
                continue
            if identities.get(p) and self._is_subvol(p) and \
                    not same_subvolume(identities[p], self._identity(p, self.technology)):
                continue
            if mark.get("held"):
                # btrfs cannot make a delete refuse: the mark's hold does
                # (copy_version state=released takes it off first)
                raise CopyFailed("%s is held (copy_version state=held, version %s of copy pool %s); it is not "
                                 "deleted: release the hold first" % (p, mark.get("version"), pool), target=p)
            doomed.append(p)
        self._delete_subvolumes(doomed)
        self._remove_marks(doomed)
        return doomed

    def _complete_mark(self, path, mark, durable=True, **extra):
        info = self._subvol_info(path)
        data = dict(mark)
        data.update(state="complete", uuid=info["uuid"], ctransid=info["ctransid"], generation=info["generation"],
                    received_uuid=info["received_uuid"], completed=_now())
        data.update(extra)
        self._write_mark(path, data, durable=durable)
        return data

    def _sync(self, paths):
        """Make the marks written beside ``paths`` durable: one
        BTRFS_IOC_SYNC per filesystem instead of an fsync per file."""
        remote = {}
        for p in paths:
            site = self._site_of(p)
            if site is not None:
                remote.setdefault(site, set()).add(os.path.dirname(p))
        for site, dirs in remote.items():
            site.call("sync", sorted(dirs))
        paths = [p for p in paths if self._site_of(p) is None]
        mounts = self._mounts()
        done = set()
        for p in paths:
            d = os.path.dirname(p)
            m = mount_of(d, mounts)
            key = m["dev"] if m else d
            if key in done or not os.path.isdir(d):
                continue
            done.add(key)
            if m is not None and m["fstype"] == BTRFS:
                KERNEL.sync(d)
            else:
                fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

    def _prepare_snapshots(self, plan):
        """Open what the ioctls of the point in time need, before the window
        (``plan.facts["jobs"]``; None when snapshots are taken by command)."""
        if self.snapshot_with != "ioctl":
            plan.facts["jobs"] = None
            return
        jobs = plan.facts["jobs"] = []
        for _p, dest in plan.facts["point_in_time"]:
            jobs.append(KERNEL.prepare_snapshot(_p.source, dest))

    def _close_snapshots(self, plan):
        for job in plan.facts.get("jobs") or ():
            KERNEL.close_snapshot(job)

    def _snapshot_batch(self, plan, what):
        """The read-only snapshots of ``plan.facts["point_in_time"]`` ([(pair,
        dest)], grouped by filesystem), back to back inside the window: the
        ioctls opened by _prepare_snapshots, or ``plan.commands``. Raises
        CopyFailed naming the pair whose snapshot failed."""
        jobs = plan.facts.get("jobs")
        use_ioctl = jobs is not None
        made = 0
        for i, (p, _dest) in enumerate(plan.facts["point_in_time"]):
            argv = plan.commands[i]
            try:
                if use_ioctl:
                    try:
                        KERNEL.take_snapshot(jobs[i])
                    except (IOError, OSError) as exc:
                        if exc.errno not in (errno.ENOTTY, errno.EOPNOTSUPP) or made:
                            raise CommandError(
                                "ERROR: cannot snapshot '%s': %s" % (p.source, exc.strerror), argv=argv, rc=1,
                                stderr="ERROR: cannot snapshot '%s': %s" % (p.source, exc.strerror))
                        # an old kernel without the ioctl: the command from now on
                        use_ioctl = False
                        self._run(argv)
                else:
                    self._run(argv)
            except CommandError as exc:
                raise CopyFailed(
                    "version %d of copy pool %s failed at the pair %s -> %s: %s; the %d %s already made were "
                    "removed and the previous versions are intact" % (
                        plan.version, plan.definition.name, p.source, p.target, command_reason(exc), made, what),
                    cause=exc, source=p.source, target=p.target)
            made += 1

    def _judge(self, path, mark):
        """(valid, detail) of an existing copy against its mark."""
        if mark.get("state") != "complete":
            return False, "the copy was interrupted before it was recorded (mark state %s)" % mark.get("state")
        if not self._is_subvol(path):
            return False, "%s is not a subvolume any more" % path
        try:
            info = self._subvol_info(path)
        except OSError as exc:
            return False, "cannot read subvolume facts of %s: %s" % (path, exc)
        if info["uuid"] != mark.get("uuid"):
            return False, "%s is another subvolume (UUID %s) than the copy made (UUID %s)" % (
                path, info["uuid"], mark.get("uuid"))
        if not info["readonly"]:
            return False, "%s is no longer read-only: it may have been changed behind pitcopy's back" % path
        if info["ctransid"] != mark.get("ctransid"):
            return False, "%s changed after the copy was made (ctransid %s, recorded %s; generation %s, recorded %s)" % (
                path, info["ctransid"], mark.get("ctransid"), info["generation"], mark.get("generation"))
        return True, "read-only, unchanged since transaction %s" % mark.get("ctransid")

    def copy_valid(self, definition, info):
        return info.valid

    def same_copy(self, recorded, found):
        return same_subvolume(recorded, found)

    def _listing_roots(self, mounts):
        """One mount per mounted btrfs filesystem (the one showing the most)."""
        best = {}
        for m in mounts:
            if m["fstype"] != BTRFS:
                continue
            key = m["source"], m["dev"]
            if key not in best or len(m["root"]) < len(best[key]["root"]):
                best[key] = m
        return list(best.values())

    def _all_subvolume_paths(self, mounts):
        """Paths of every subvolume visible through the mounts: one
        ``btrfs subvolume list`` per filesystem."""
        paths = []
        for m in self._listing_roots(mounts):
            rc, out, _err = self._run(["btrfs", "subvolume", "list", "--", m["mountpoint"]], check=False)
            if rc != 0:
                continue
            # paths are relative to the filesystem's top level; map them
            # through every mount of that filesystem
            same_fs = [x for x in mounts if x["fstype"] == BTRFS and x["dev"] == m["dev"]]
            for line in out.splitlines():
                _head, sep, rel = line.partition(" path ")
                if not sep:
                    continue
                rel = "/" + rel.strip().lstrip("/")
                if rel.startswith("/<FS_TREE>/"):
                    rel = rel[len("/<FS_TREE>"):]
                for x in same_fs:
                    root = x["root"].rstrip("/")
                    if rel.startswith(root + "/"):
                        paths.append(os.path.join(x["mountpoint"], rel[len(root) + 1:]))
        seen = set()
        return [p for p in paths if not (p in seen or seen.add(p))]

    def _canonical_path(self, mark):
        """Where the copy a mark describes lives, by our naming rules; a
        subvolume seen through a second mount of its filesystem elsewhere is
        not listed twice."""
        source, target, role = mark.get("source") or "", mark.get("target") or "", mark.get("role")
        base = os.path.basename(source)
        if role == "send-snapshot":
            return os.path.join(pool_dir(source, mark.get("pool")), "send", STAGING_PREFIX + base)
        if role == ROLE_BASE:
            version = mark.get("version")
            return base_path(source, mark.get("pool"), version) if isinstance(version, int) else None
        if role == "restore-temp":
            return None
        final = target if self.implied_targets else os.path.join(target, base)
        return final if role == "copy" else staged_path(final)

    def _remote_copy_paths(self):
        """The subvolumes with a mark in the target directories on other
        hosts: copies land only there (listed by their target pools)."""
        paths = []
        for d, _site in self._remote:
            try:
                entries = set(self._listdir(d))
            except OSError:
                continue
            paths.extend(os.path.join(d, e) for e in sorted(entries)
                         if not e.startswith(MARK_PREFIX) and MARK_PREFIX + e + MARK_SUFFIX in entries)
        return [p for p in paths if self._is_subvol(p)]

    def _scope_dirs(self, scope):
        """The directories that can hold copies of the pool (CopyScope), by
        our naming rules: each source's ``.pitcopy/<pool>`` directory and its
        subdirectories (target pools, send snapshots, restores), the
        directory of each recorded copy (btrfs_snapshot) or each target
        directory (btrfs_send), and that of each staged copy the journal
        names."""
        dirs = []
        for source in scope.sources:
            if not os.path.isabs(source):
                continue
            top = pool_dir(source, scope.pool)
            dirs.append(top)
            try:
                dirs.extend(os.path.join(top, e) for e in sorted(os.listdir(top)))
            except OSError:
                pass
        for target in scope.targets:
            dirs.append(os.path.dirname(target) if self.implied_targets else target)
        dirs.extend(os.path.dirname(name) for name in scope.staged)
        seen = set()
        return [d for d in dirs if os.path.isabs(d) and not (d in seen or seen.add(d))]

    def _marked_subvolume_paths(self, dirs, mounts):
        """Subvolumes with a mark beside them in ``dirs`` (each a real
        directory on a mounted btrfs, no symlink followed at its last
        component; the definition refuses symlinks on the way): a
        directory read per place instead of a listing of every filesystem."""
        paths = []
        for d in dirs:
            try:
                if not stat.S_ISDIR(os.lstat(d).st_mode):
                    continue
                names = sorted(os.listdir(d))
            except OSError:
                continue
            m = mount_of(d, mounts)
            if m is None or m["fstype"] != BTRFS:
                continue
            for n in names:
                if not (n.startswith(MARK_PREFIX) and n.endswith(MARK_SUFFIX)):
                    continue
                path = os.path.join(d, n[len(MARK_PREFIX):-len(MARK_SUFFIX)])
                if _is_subvolume(path):
                    paths.append(path)
        return paths

    def list_copies(self, pool_name, scope=None):
        mounts = self._mounts()
        out = []
        # Local places here; the target directories on other hosts are
        # listed there (a test host may share this host's mounts: its paths
        # are not listed twice).
        if scope is None:
            paths = self._all_subvolume_paths(mounts)
        else:
            paths = self._marked_subvolume_paths(self._scope_dirs(scope), mounts)
        paths = [p for p in paths if self._site_of(p) is None]
        paths.extend(self._remote_copy_paths())
        for path in paths:
            mark = self._read_mark(path)
            if mark is None or mark.get("pool") != pool_name or mark.get("technology") != self.technology:
                continue
            canonical = self._canonical_path(mark)
            if canonical is not None and canonical != path:
                continue
            if mark.get("role") == ROLE_BASE and mark.get("state") == "complete":
                # a kept base, not a copy: release_bases keeps or releases it
                # against the records (a pending one is what a killed copy
                # left: listed as staged, so that its repair discards it)
                continue
            staged = mark.get("role") != "copy"
            valid, detail = self._judge(path, mark)
            target = path if (staged or self.implied_targets) else mark.get("target", path)
            out.append(CopyInfo(target=target, pool=pool_name, source=mark.get("source"),
                                version=mark.get("version"), staged=staged, valid=valid, detail=detail,
                                identity=self._identity(path, self.technology)))
        return out

    # --- restore ------------------------------------------------------------------

    def _restore_checks(self, definition, version, pairs, mounts):
        plan = []
        problems = []
        for p in pairs:
            copy = self._copy_path(p.source, p.target)
            if self._site_of(copy) is not None:
                problems.append("%s: its copy %s is on host %s, and restoring from a copy on another host is not "
                                "supported yet (send it back by hand: ssh %s btrfs send %s | btrfs receive <dir>)"
                                % (p.source, copy, self.host_of(copy), self.host_of(copy), copy))
                continue
            mark = self._read_mark(copy)
            if mark is None or mark.get("pool") != definition.name or mark.get("role") != "copy":
                problems.append("%s: no copy of pool %s at %s" % (p.source, definition.name, copy))
                continue
            if mark.get("version") != version:
                problems.append("%s: %s holds version %s, not %s" % (p.source, copy, mark.get("version"), version))
                continue
            valid, detail = self._judge(copy, mark)
            if not valid:
                problems.append("%s: the copy is not valid: %s" % (p.source, detail))
                continue
            found = self._identity(copy, self.technology)
            if p.identity and not same_subvolume(p.identity, found):
                problems.append("%s: %s is not the copy recorded for version %s (identity %s, recorded %s); it is "
                                "never restored from" % (p.source, copy, version, found, p.identity))
                continue
            try:
                validate_path(p.source, "source")
            except InvalidInput as exc:
                problems.append(exc.msg)
                continue
            parent = os.path.dirname(p.source)
            pm = mount_of(parent, mounts)
            if not os.path.isdir(parent) or pm is None or pm["fstype"] != BTRFS:
                problems.append("%s: its parent directory %s is not a directory on btrfs" % (p.source, parent))
                continue
            if any(m["mountpoint"] == p.source for m in mounts):
                problems.append("%s is a mountpoint; unmount it first (a mounted subvolume cannot be replaced)"
                                % p.source)
                continue
            if self._exists(p.source):
                if not self._is_subvol(p.source):
                    problems.append("%s exists and is not a subvolume; move it away first" % p.source)
                    continue
                users = busy_users(p.source)
                if users:
                    problems.append("%s is in use by process(es) %s (open files or working directory); stop them "
                                    "first" % (p.source, ", ".join(str(u) for u in users[:10])))
                    continue
                rc, out, err = self._run(["btrfs", "subvolume", "list", "-o", "--", p.source], check=False)
                nested = [ln.partition(" path ")[2] for ln in out.splitlines() if " path " in ln]
                if rc != 0:
                    problems.append("%s: cannot list nested subvolumes: %s" % (p.source, err.strip()))
                    continue
                if nested:
                    problems.append("%s holds nested subvolumes (%s) that the copy does not contain; move them out "
                                    "first" % (p.source, ", ".join(nested[:5])))
                    continue
            plan.append((p, copy))
        if problems:
            raise InvalidInput("cannot restore version %s of copy pool %s, nothing was changed: %s" % (
                version, definition.name, "; ".join(problems)))
        return plan

    restore_per_pair = True

    def restore_aside(self, definition, source):
        return os.path.join(pool_dir(source, definition.name), "restore", ".pitcopy-aside." + os.path.basename(source))

    def check_restore(self, definition, version, pairs):
        self._check_definition(definition)
        self._restore_checks(definition, version, pairs, self._mounts())
        left = [self.restore_aside(definition, p.source) for p in pairs]
        left = [a for a in left if self._exists(a)]
        if left:
            raise InvalidInput("cannot restore version %s of copy pool %s, nothing was changed: %s %s left from an "
                               "interrupted restore that no journal names and may hold the only data its source had "
                               "before it. If the source is missing, move the aside back to the source's path; if "
                               "the source is as you want it and you no longer need that data, delete the aside with "
                               "'btrfs subvolume delete'" % (
                                   version, definition.name, ", ".join(left), "is" if len(left) == 1 else "are"))

    def restore_progress(self, definition, pair, aside):
        aside = aside or self.restore_aside(definition, pair.source)
        if self._exists(aside):
            if self._exists(pair.source):
                return "%s already holds the copy; %s still holds the data %s had before the restore" % (
                    pair.source, aside, pair.source)
            return "%s is missing: %s holds the data it had before the restore, kept until the copy takes its " \
                   "place" % (pair.source, aside)
        return "%s was not moved aside yet, or its restore had finished; it is restored again" % pair.source

    def resume_restore(self, definition, version, pair, aside):
        self._check_definition(definition)
        source = pair.source
        copy = self._copy_path(source, pair.target)
        aside = aside or self.restore_aside(definition, source)
        if not self._exists(aside):
            # not moved yet (the source is as it was) or already finished
            # (the source holds the copy): restoring it again is right either way
            self.restore(definition, version, [pair])
            return
        work = os.path.dirname(aside)
        if self._exists(source):
            # the interrupted run made the source from the copy (btrfs_send:
            # from the copy received back into ``work``) and died before it
            # deleted the aside; anything else there is left for a human
            origins = [x for x in (copy, os.path.join(work, os.path.basename(copy))) if self._is_subvol(x)]
            parent = self._subvol_info(source)["parent_uuid"] if self._is_subvol(source) else None
            if parent is None or parent not in [self._subvol_info(x)["uuid"] for x in origins]:
                raise InvalidInput("cannot finish the restore of %s: %s holds the data it had before the restore "
                                   "and %s exists but is not a snapshot of the copy %s; both were left as they are: "
                                   "move %s away or back to %s by hand" % (source, aside, source, copy, aside, source))
            self._delete_subvolumes([aside])
            self._delete_ours(definition.name, [os.path.join(work, os.path.basename(copy))])
            return
        mark = self._read_mark(copy)
        valid, detail = self._judge(copy, mark) if mark is not None else (False, "no mark")
        if not valid or mark.get("pool") != definition.name or mark.get("version") != version:
            raise InvalidInput("cannot finish the restore of %s from version %s: the copy %s is not valid (%s); %s "
                               "holds the data %s had before the restore: move it back to %s" % (
                                   source, version, copy, detail, aside, source, source))
        origin, cleanup = self._restore_origin(definition, source, copy, work)
        try:
            self._run(["btrfs", "subvolume", "snapshot", "--", origin, source])
            self._delete_subvolumes([aside])
        finally:
            self._drop_restore_origin(cleanup)

    def restore(self, definition, version, pairs):
        self._check_definition(definition)
        mounts = self._mounts()
        plan = self._restore_checks(definition, version, pairs, mounts)
        restored = []
        for p, copy in plan:
            self._restore_one(definition, p.source, copy)
            restored.append(p.source)
        return restored

    def _restore_one(self, definition, source, copy):
        aside = self.restore_aside(definition, source)
        work = os.path.dirname(aside)
        _makedirs(work)
        if self._exists(aside):
            raise InvalidInput("cannot restore %s: %s is left from an interrupted restore and may hold the only "
                               "data %s had before it; move it back to %s if %s is missing, or delete it with "
                               "'btrfs subvolume delete' once you no longer need that data" % (
                                   source, aside, source, source, source))
        origin, cleanup = self._restore_origin(definition, source, copy, work)
        moved = False
        try:
            if self._exists(source):
                self._rename(source, aside)
                moved = True
            try:
                self._run(["btrfs", "subvolume", "snapshot", "--", origin, source])
            except CommandError as exc:
                if moved:
                    self._rename(aside, source)
                    moved = False
                raise CopyFailed("restore of %s from %s failed: %s; %s was left as it was" % (
                    source, copy, command_reason(exc), source), cause=exc, source=source, target=copy)
            if moved:
                self._delete_subvolumes([aside])
        finally:
            self._drop_restore_origin(cleanup)

    def _restore_origin(self, definition, source, copy, work):
        """(path to snapshot from, temporary subvolumes to delete after)."""
        return copy, []

    def _drop_restore_origin(self, cleanup):
        """Deletes the temporary subvolumes of _restore_origin, and their marks."""
        if cleanup:
            self._delete_subvolumes(cleanup)
            for c in cleanup:
                self._remove_mark(c)

    # --- browsing and file restores (issue 17) ----------------------------------

    def copy_view(self, definition, version, pair):
        """The copy subvolume itself: read-only, readable without a mount."""
        from ansible_collections.pitcopy.versions.plugins.module_utils._browse import VIEW_DIRECTORY, CopyView

        copy = self._copy_path(pair.source, pair.target)
        why = None
        if self._site_of(copy) is not None:
            why = "it is on host %s; browsing a copy on another host is not supported" % self.host_of(copy)
        else:
            mark = self._read_mark(copy) if self._is_subvol(copy) else None
            if mark is None or mark.get("pool") != definition.name or mark.get("role") != "copy":
                why = "no copy of copy pool %s is there (deleted behind our back?)" % definition.name
            elif mark.get("version") != version:
                why = "it holds version %s" % mark.get("version")
            else:
                valid, detail = self._judge(copy, mark)
                found = self._identity(copy, self.technology)
                if not valid:
                    why = "it is not valid: %s" % detail
                elif pair.identity and not same_subvolume(pair.identity, found):
                    why = "it is not the copy recorded (identity %s, recorded %s)" % (found, pair.identity)
        if why:
            raise InvalidInput("copy pool %s: cannot read version %d of %s from %s: %s; nothing was changed. Run "
                               "pitcopy.versions.verify_records to see the findings" % (
                                   definition.name, version, pair.source, copy, why))
        return CopyView(VIEW_DIRECTORY, copy, copy)

    def source_directory(self, definition, source):
        return source if os.path.isdir(source) and not os.path.islink(source) else None

    # --- whole sources restored elsewhere (issue 17, item 4) ----------------------

    def restore_elsewhere_volumes(self, definition, version, pairs, restore_to):
        """``restore_to`` is an existing directory on the btrfs filesystem
        that holds the copies (btrfs_snapshot: the sources' own; btrfs_send:
        the target pool's), outside the sources and outside pitcopy's
        ``.pitcopy`` directories; each source lands at
        ``<restore_to>/<source's last component>`` (the whole name with
        ``/`` as ``_`` where two sources share one, as for mounts)."""
        from ansible_collections.pitcopy.versions.plugins.module_utils._browse import mount_name

        accepted = ("an existing directory on the btrfs filesystem holding the copies of copy pool %s, outside its "
                    "sources and outside .pitcopy directories; each source becomes the writable snapshot "
                    "<restore_to>/<source's last component>" % definition.name)

        bad = restore_to_refusal(definition, restore_to, accepted)
        where, mounts = self._restore_to_dir(definition, restore_to, [p.source for p in pairs], bad)
        fsid = KERNEL.filesystem_info(where)["fsid"]
        names = [p.source for p in pairs]
        out = []
        for p in pairs:
            view = self.copy_view(definition, version, p)
            copy = view.directory
            if KERNEL.filesystem_info(copy)["fsid"] != fsid:
                cm = mount_of(copy, mounts)
                raise bad("is on another btrfs filesystem than the copy %s of %s (a snapshot cannot cross "
                          "filesystems; the copy's filesystem is mounted at %s)" % (
                              copy, p.source, cm["mountpoint"] if cm else "?"))
            out.append((p, os.path.join(where, mount_name(p.source, names))))
        return out

    def _restore_to_dir(self, definition, restore_to, sources, bad):
        """The normalized ``restore_to`` of whole sources: an existing
        directory on btrfs, no symbolic link on the way, outside the sources
        and outside ``.pitcopy`` directories (``bad(why)`` otherwise), and
        the mounts read on the way."""
        if not isinstance(restore_to, str) or not os.path.isabs(restore_to):
            raise bad("is not an absolute path")
        where = os.path.normpath(restore_to)
        if not os.path.isdir(where) or os.path.islink(where):
            raise bad("is not an existing directory (symbolic links are not followed)")
        if os.path.realpath(where) != where:
            raise bad("passes through a symbolic link (its real path is %s)" % os.path.realpath(where))
        if NAMESPACE in where.split("/"):
            raise bad("is inside a %s directory, where pitcopy keeps its copies" % NAMESPACE)
        for s in sorted(set(list(definition.sources) + list(sources))):
            if where == s or where.startswith(s.rstrip("/") + "/"):
                raise bad("is inside source %s (a snapshot there would nest in the source)" % s)
        mounts = self._mounts()
        m = mount_of(where, mounts)
        if m is None or m["fstype"] != BTRFS:
            raise bad("is not on btrfs (it is on %s)" % (m["fstype"] if m else "no mounted filesystem"))
        return where, mounts

    def restored_elsewhere(self, definition, version, pair, volume):
        if not os.path.lexists(volume):
            return None
        copy = self._copy_path(pair.source, pair.target)
        if os.path.islink(volume) or not self._is_subvol(volume):
            return "%s exists and is not a btrfs subvolume" % volume
        parent = self._subvol_info(volume)["parent_uuid"]
        if self._is_subvol(copy) and parent is not None and parent == self._subvol_info(copy)["uuid"]:
            return True
        return "%s is a subvolume that is not a snapshot of the copy %s of version %s" % (volume, copy, version)

    def restore_elsewhere(self, definition, version, pair, volume):
        # the definition first, before even reading what is at ``volume``
        self._check_definition(definition)
        super(_BtrfsBase, self).restore_elsewhere(definition, version, pair, volume)

    def _make_restored(self, definition, version, pair, volume):
        copy = self.copy_view(definition, version, pair).directory
        try:
            # a writable snapshot (no -r), and no mark of ours beside it
            self._run(["btrfs", "subvolume", "snapshot", "--", copy, volume])
        except CommandError as exc:
            raise CopyFailed("restore of %s from %s to %s failed: %s" % (
                pair.source, copy, volume, command_reason(exc)), cause=exc, source=pair.source, target=volume)

    # --- media (issue 17, item 6) -------------------------------------------------

    stream_extension = "btrfs-stream"

    def dump_stream(self, definition, version, pair, write):
        """``btrfs send`` of the copy, full (no ``-p``): each medium restores
        alone, whatever else was dumped or kept."""
        copy = self.copy_view(definition, version, pair).directory
        try:
            self.runner.stream_out(["btrfs", "send", "-q", "--", copy], write)
        except CommandError as exc:
            raise CopyFailed("dump of %s (version %d) from its copy %s failed: btrfs send: %s" % (
                pair.source, version, copy, command_reason(exc)), cause=exc, source=pair.source, target=copy)

    def media_volumes(self, definition, sources, restore_to):
        """``restore_to`` as for whole sources restored elsewhere, on any
        btrfs filesystem (a stream is received, not snapshotted, so it need
        not hold the copies, which may be gone)."""
        from ansible_collections.pitcopy.versions.plugins.module_utils._browse import mount_name

        accepted = ("an existing directory on a btrfs filesystem, outside the sources of copy pool %s and outside "
                    ".pitcopy directories; each source's stream becomes the writable subvolume "
                    "<restore_to>/<source's last component>" % definition.name)
        where, _mounts = self._restore_to_dir(definition, restore_to, sources,
                                              restore_to_refusal(definition, restore_to, accepted))
        return [(s, os.path.join(where, mount_name(s, list(sources)))) for s in sources]

    def receive_stream(self, definition, source, fd, volume):
        """``btrfs receive`` into a work directory beside ``volume``
        (``.pitcopy-media.<pid>``: a received subvolume is read-only and
        named after the copy), then a writable snapshot of it at
        ``volume`` (no mark of ours: the user's), then the received one
        deleted. A failure leaves nothing at ``volume`` nor in the work
        directory."""
        work = media_work_dir(volume)
        if os.path.lexists(volume):
            raise InvalidInput("cannot restore %s from media to %s: it exists; a restore never overwrites: "
                               "choose another restore_to, or move that away; nothing was changed" % (source, volume))
        self._clear_media_work(work)
        os.mkdir(work, 0o700)
        try:
            try:
                self.runner.run_from(["btrfs", "receive", "--", work], fd)
            except CommandError as exc:
                raise CopyFailed("restore of %s from media to %s failed: btrfs receive: %s; nothing was made" % (
                    source, volume, command_reason(exc)), cause=exc, source=source, target=volume)
            received = [os.path.join(work, n) for n in sorted(os.listdir(work))]
            if len(received) != 1 or not self._is_subvol(received[0]):
                raise CopyFailed("restore of %s from media to %s: btrfs receive made %s, not one subvolume; nothing "
                                 "was made" % (source, volume, ", ".join(received) or "nothing"),
                                 source=source, target=volume)
            try:
                # writable (no -r): the user's volume, compared with production
                self._run(["btrfs", "subvolume", "snapshot", "--", received[0], volume])
            except CommandError as exc:
                raise CopyFailed("restore of %s from media to %s failed: %s; nothing was made" % (
                    source, volume, command_reason(exc)), cause=exc, source=source, target=volume)
        finally:
            self._clear_media_work(work)

    def _clear_media_work(self, work):
        """The work directory of a receive from media, with what is in it
        (received subvolumes, a partial one), gone; nothing else."""
        if not os.path.isdir(work) or os.path.islink(work):
            return
        inside = [os.path.join(work, n) for n in sorted(os.listdir(work))]
        self._delete_subvolumes([p for p in inside if self._is_subvol(p)])
        os.rmdir(work)

    def media_leftovers(self, volumes):
        """The work directories of receives from media beside ``volumes``
        that a killed run left (``.pitcopy-media.<pid>``)."""
        out = []
        for d in sorted(set(os.path.dirname(v) for v in volumes)):
            try:
                names = sorted(os.listdir(d))
            except OSError:
                continue
            out.extend(os.path.join(d, n) for n in names if MEDIA_WORK_RE.match(n))
        return out

    def sweep_media_leftovers(self, volumes):
        for work in self.media_leftovers(volumes):
            self._clear_media_work(work)


class BtrfsSnapshotBackend(_BtrfsBase):
    """``btrfs_snapshot``: read-only snapshot subvolumes beside the source."""

    technology = "btrfs_snapshot"
    implied_targets = True

    def target_kinds(self, source_kind):
        return frozenset((KIND_SUBVOLUME,))

    def implied_target(self, pool, target_pool, source):
        validate_path(source, "source")
        _validate_pool_component(pool, "copy pool name")
        _validate_pool_component(target_pool, "target pool name")
        return os.path.join(pool_dir(source, pool), target_pool, os.path.basename(source))

    def validate_target_name(self, name):
        self._validate_any(name)

    def _copy_path(self, source, target):
        return target

    def _ownership_of(self, name, kind):
        if kind != KIND_SUBVOLUME or "/%s/" % NAMESPACE not in name:
            return super(BtrfsSnapshotBackend, self)._ownership_of(name, kind)
        mark = self._read_mark(name)
        # something at one of our implied names without our mark, or another
        # subvolume than the one our mark describes, is foreign
        return (mark["pool"] if mark else None), mark is None or not self._agrees(name, mark)

    def _expected_target(self, definition, source, target):
        tp = os.path.basename(os.path.dirname(target))
        if tp not in definition.target_pool_names() or target != self.implied_target(definition.name, tp, source):
            raise InvalidInput("%s is not the implied target of source %s in copy pool %s (expected %s/<target "
                               "pool>/%s)" % (target, source, definition.name, pool_dir(source, definition.name),
                                              os.path.basename(source)))

    def _check_pair(self, definition, p, mounts):
        m = self._check_source(p.source, mounts)
        self._expected_target(definition, p.source, p.target)
        return m

    def check_capacity(self, definition, pairs, replaced_pairs, volumes):
        self._check_definition(definition)
        mounts = self._mounts()
        for p in pairs:
            if self._exists(p.source):
                self._check_pair(definition, p, mounts)
        need = {}
        where = {}
        for p in pairs:
            vol = volumes.get(p.source)
            if vol is None or vol.kind != KIND_SUBVOLUME:
                continue  # target selection reports it
            need[vol.container] = need.get(vol.container, 0) + SNAPSHOT_RESERVE
            where.setdefault(vol.container, []).append((p.source, vol.free))
        for fsid, needed in need.items():
            free = where[fsid][0][1] or 0
            if free < needed:
                raise CapacityError(
                    "copy pool %s: btrfs filesystem %s (holding %s) has %d bytes free; %d snapshots need at least "
                    "%d bytes of metadata space (%d per snapshot); replaced snapshots are deleted only after the "
                    "new version is complete" % (definition.name, fsid, ", ".join(s for s, _f in where[fsid]),
                                                 free, len(where[fsid]), needed, SNAPSHOT_RESERVE))

    def _temporary_path(self, definition, p, version):
        """What the copy of pair ``p`` makes only for the copy (released in
        every case), or None."""
        return None

    def plan_copies(self, definition, version, pairs):
        self._check_definition(definition)
        mounts = self._mounts()
        groups = []  # [(fs key, [(pair, staged path, temporary path or None)])] in first-seen order
        index = {}
        for p in pairs:
            m = self._preflight(definition, p, mounts)
            key = m["dev"]
            if key not in index:
                index[key] = len(groups)
                groups.append((key, []))
            groups[index[key]][1].append((p, staged_path(self._copy_path(p.source, p.target)),
                                          self._temporary_path(definition, p, version)))
        # snapshots of one filesystem back to back
        todo = [item for _k, items in groups for item in items]
        pit = [(p, tmp or st) for p, st, tmp in todo]
        plan = CopyPlan(definition, version, pairs, staging=[CopyPair(p.source, st) for p, st, _t in todo],
                        commands=[["btrfs", "subvolume", "snapshot", "-r", "--", p.source, dest] for p, dest in pit],
                        marks={"pool": definition.name, "version": version, "technology": self.technology})
        # leftovers of an interrupted run: ours go, anything else stops us
        stale = []
        for p, st, tmp in todo:
            for path in ((tmp, st) if tmp else (st,)):
                if self._exists(path):
                    mark = self._read_mark(path)
                    if mark is None or mark.get("pool") != definition.name:
                        raise CopyFailed("cannot stage the copy of %s: %s exists and is not pitcopy's; nothing was "
                                         "copied" % (p.source, path), source=p.source, target=p.target)
                    stale.append(path)
        plan.facts.update(todo=todo, point_in_time=pit, stale=stale)
        return plan

    def prepare(self, plan):
        definition, todo = plan.definition, plan.facts["todo"]
        for path in plan.facts["stale"]:
            self._delete_ours(definition.name, [path])
        paths = [x for _p, st, tmp in todo for x in ((tmp, st) if tmp else (st,))]
        self._sweep_orphan_marks(set(os.path.dirname(x) for x in paths), definition.name)
        self.sweep_leftovers(definition)
        # from here on undo and release know every path a mark is written for
        plan.made = list(plan.staging)
        plan.temporaries = [CopyPair(p.source, tmp) for p, _st, tmp in todo if tmp]
        base = {"pitcopy": MARK_FORMAT, "pool": definition.name, "technology": self.technology,
                "version": plan.version, "state": "pending", "created": _now()}
        for p, st, tmp in todo:
            _makedirs(os.path.dirname(tmp or st))
            if tmp:
                self._write_mark(tmp, dict(base, source=p.source, target=p.target, role="send-snapshot"), durable=False)
            self._write_mark(st, dict(base, source=p.source, target=p.target, role="staged"), durable=False)
        # pending marks on disk before any snapshot can exist
        self._sync(paths)
        self._prepare_snapshots(plan)

    def take_point_in_time(self, plan):
        self._snapshot_batch(plan, "snapshot(s)")

    def transfer(self, plan):
        staged = []
        for p, st, _tmp in plan.facts["todo"]:
            self._complete_mark(st, self._read_mark(st), durable=False)
            staged.append(CopyPair(p.source, st, self._identity(st, self.technology)))
        self._sync([st.target for st in staged])
        plan.staged = staged

    def undo(self, plan):
        self._cleanup_staged([s.target for s in plan.made], plan.definition.name)

    def release(self, plan):
        self._close_snapshots(plan)
        if plan.temporaries:
            self._cleanup_staged([t.target for t in plan.temporaries], plan.definition.name)

    def _cleanup_staged(self, paths, pool):
        try:
            self._delete_ours(pool, paths)
        finally:
            for st in paths:
                if not self._exists(st):
                    mark = self._read_mark(st)
                    if mark is not None and mark.get("pool") == pool:
                        self._remove_mark(st)
            self._sweep_orphan_marks(set(os.path.dirname(p) for p in paths), pool)

    def _sweep_orphan_marks(self, dirs, pool):
        """Staging marks of ``pool`` whose subvolume never came to be (a run
        killed between writing the pending marks and the snapshots)."""
        for d in dirs:
            try:
                names = self._listdir(d)
            except OSError:
                continue
            for n in names:
                if not ((n.startswith(MARK_PREFIX + STAGING_PREFIX) or n.startswith(MARK_PREFIX + BASE_PREFIX))
                        and n.endswith(MARK_SUFFIX)):
                    continue
                copy = os.path.join(d, n[len(MARK_PREFIX):-len(MARK_SUFFIX)])
                if self._exists(copy):
                    continue
                mark = self._read_mark(copy)
                if mark is not None and mark.get("pool") == pool:
                    self._remove_mark(copy)
        self.sweep_leftovers(None, dirs=dirs, pool=pool)

    def _pool_dirs(self, definition):
        """Every directory where this pool writes copies and marks."""
        dirs = set()
        for source in definition.sources:
            pd = pool_dir(source, definition.name)
            try:
                dirs.update(os.path.join(pd, e) for e in self._listdir(pd))
            except OSError:
                pass
        for tp in definition.target_pools:
            dirs.update(tp.volumes)
        return dirs

    def leftovers(self, definition, dirs=None, pool=None):
        """Temporary marks of ``pool`` left by a process that died between
        writing and renaming one: never read as marks, but never removed
        either. A file counts only when it is a plain file of ours with a
        temp mark's name and it names the pool, or it is cut short and lies
        in the pool's own directory or beside a mark of the pool."""
        pool = pool or definition.name
        found = []
        own = "/%s/%s/" % (NAMESPACE, pool)
        for d in sorted(dirs if dirs is not None else self._pool_dirs(definition)):
            try:
                names = self._listdir(d)
            except OSError:
                continue
            for n in sorted(names):
                copy = self._temp_mark_owner(d, n)
                if copy is None:
                    continue
                path = os.path.join(d, n)
                named = self._temp_mark_pool(path)
                if named == pool or (named is None and (
                        own in d + "/" or (self._read_mark(os.path.join(d, copy)) or {}).get("pool") == pool)):
                    found.append(path)
        return found

    def sweep_leftovers(self, definition, dirs=None, pool=None):
        removed = []
        for path in self.leftovers(definition, dirs=dirs, pool=pool):
            try:
                self._unlink(path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
            removed.append(path)
        return removed

    def promote(self, definition, version, pairs, staged, replaced_pairs):
        staged_by_source = dict((s.source, s.target) for s in staged)
        work = []
        for p in pairs:
            final = self._copy_path(p.source, p.target)
            work.append((p, staged_by_source.get(p.source, staged_path(final)), final))
        # before anything is deleted
        self._check_number_unused(definition.name, version, work)
        self._delete_ours(definition.name, [self._copy_path(p.source, p.target) for p in replaced_pairs],
                          keep_version=version, identities=self._recorded(replaced_pairs))
        self._promote(definition, version, work)

    def _check_number_unused(self, pool, version, work):
        """Refuse to promote version ``version`` onto a final name that holds
        another copy of ours bearing the same number while the staged copy
        is still there (a final copy of this version is taken as already
        promoted only when it is the staged one: same UUID)."""
        for p, st, final in work:
            smark = self._read_mark(st)
            if not (self._is_subvol(st) and smark is not None and smark.get("pool") == pool
                    and smark.get("version") == version and self._is_subvol(final)):
                continue
            fmark = self._read_mark(final)
            if fmark is None or fmark.get("pool") != pool:
                continue  # not ours: _promote refuses to overwrite it
            if fmark.get("version") == version and fmark.get("uuid") != smark.get("uuid"):
                # the staged copy is still there, so the final one is
                # not it: another copy of ours that bears this version
                # number. The records went back (an older state file put
                # back); never record the new version against it.
                raise CopyFailed(
                    "cannot promote the copy of %s: %s already holds a copy numbered version %d of copy pool %s "
                    "(UUID %s) that is not the copy just made (UUID %s): the state file's last_version is behind "
                    "the copies on the storage (was an older state file put back?); it is left as it is: look "
                    "at it, delete it with 'btrfs subvolume delete' if it is not needed, then run "
                    "pitcopy.versions.verify_records with repair: true to finish this copy" % (
                        p.source, final, version, pool, fmark.get("uuid"), smark.get("uuid")),
                    source=p.source, target=p.target)

    def _promote(self, definition, version, work):
        """Staged -> final for every (pair, staged, final). Crash-safe order:
        the final marks are written (state ``promoting``) and made durable
        before the renames, and completed after them; whatever a crash leaves
        is still staged or already a marked copy of this version, and a
        second call finishes the job."""
        pool = definition.name
        marks = {}
        renames = []
        for p, st, final in work:
            smark = self._read_mark(st)
            marks[st] = smark
            if not (self._is_subvol(st) and smark is not None and smark.get("pool") == pool
                    and smark.get("version") == version):
                continue
            fmark = self._read_mark(final)
            if self._exists(final):
                if fmark is None or fmark.get("pool") != pool or not self._agrees(final, fmark):
                    raise CopyFailed("cannot promote the copy of %s: %s exists and is not a copy of pool %s; "
                                     "it is never overwritten" % (p.source, final, pool),
                                     source=p.source, target=p.target)
                if fmark.get("version") != version:
                    # an older copy of ours at this name that no record named
                    self._delete_ours(pool, [final])
            if not self._exists(final):
                data = dict(smark)
                data.update(role="copy", target=p.target, state="promoting")
                self._write_mark(final, data, durable=False)
                renames.append((st, final))
        if renames:
            self._sync([f for _s, f in renames])
            by_site = {}
            for st, final in renames:
                by_site.setdefault(self._site_of(st), []).append((st, final))
            for site, some in by_site.items():
                # one agent run per host for its renames
                for ok, value in self._at(some[0][0]).batch([("rename", pair) for pair in some]):
                    if not ok:
                        raise value
        completed = []
        for p, st, final in work:
            fmark = self._read_mark(final)
            if not self._is_subvol(final) or fmark is None or fmark.get("pool") != pool or \
                    fmark.get("version") != version:
                raise CopyFailed("cannot promote the copy of %s: neither %s nor %s holds version %d of copy pool "
                                 "%s" % (p.source, st, final, version, pool), source=p.source, target=p.target)
            if fmark.get("state") != "complete" or fmark.get("role") != "copy":
                data = dict(fmark)
                data.update(role="copy", target=p.target, promoted=_now())
                self._complete_mark(final, data, durable=False)
                completed.append(final)
        if completed:
            self._sync(completed)
        for p, st, final in work:
            smark = marks.get(st)
            if smark is not None and smark.get("pool") == pool and not self._exists(st):
                self._remove_mark(st)

    def discard(self, definition, staged):
        self._cleanup_staged([s.target for s in staged], definition.name)

    def delete_copies(self, definition, pairs):
        self._delete_ours(definition.name, [self._copy_path(p.source, p.target) for p in pairs],
                          identities=self._recorded(pairs))

    # --- holds ------------------------------------------------------------------

    def _held_copies(self, definition, pairs):
        """(pair, copy path, mark) of the pairs whose copy exists and is
        ours: our mark, the subvolume it describes, the recorded identity."""
        out = []
        for p in pairs:
            path = self._copy_path(p.source, p.target)
            mark = read_mark(path)
            if mark is None or mark.get("pool") != definition.name or not _is_subvolume(path) \
                    or not mark_agrees(path, mark):
                continue
            if p.identity and not same_subvolume(p.identity, identity_of(path, self.technology)):
                continue
            out.append((p, path, mark))
        return out

    def hold_copies(self, definition, version, pairs, held=True):
        """btrfs cannot make a delete refuse; a copy is a read-only subvolume
        already. The hold is written into the copy's mark (what
        ``_delete_ours`` refuses to delete), and a copy someone made writable
        is made read-only again (its validity still reports the change)."""
        for p, path, mark in self._held_copies(definition, pairs):
            if held and not KERNEL.subvolume_info(path)["readonly"]:
                self._run(["btrfs", "property", "set", "-t", "subvol", "--", path, "ro", "true"])
            if bool(mark.get("held")) != bool(held):
                data = dict(mark)
                if held:
                    data["held"] = True
                else:
                    data.pop("held", None)
                write_mark(path, data)

    def unenforced_holds(self, definition, version, pairs):
        out = []
        for p, path, mark in self._held_copies(definition, pairs):
            why = []
            if not KERNEL.subvolume_info(path)["readonly"]:
                why.append("%s is no longer read-only" % path)
            if not mark.get("held"):
                why.append("the ownership mark of %s does not carry the hold" % path)
            if why:
                out.append((p, "; ".join(why)))
        return out

    def _recorded(self, pairs):
        """{copy path: recorded identity} of the pairs whose identity is known."""
        return dict((self._copy_path(p.source, p.target), p.identity) for p in pairs if p.identity)


class BtrfsSendBackend(BtrfsSnapshotBackend):
    """``btrfs_send``: full send/receive into directories of target pools."""

    technology = "btrfs_send"
    implied_targets = False
    # target pools may name ``host``: their directories are on that host
    # (_btrfs_remote.RemoteSite), the receive runs there over ssh
    remote_targets = True
    # a target directory is ours only while it holds a copy of ours (the
    # directory's owner is the pool of the copies in it)
    pool_mark_is_a_copy = True
    # two pools' first copies of same-named sources would meet at one
    # staging path in a shared target directory
    exclusive_targets = True
    # ``btrfs send -p <base>`` when the target pool holds a copy received
    # from a base kept beside the source (plan.bases, from the records)
    incremental = True
    target_noun = "directory"

    def implied_target(self, pool, target_pool, source):
        raise NotImplementedError("btrfs_send targets are listed in target_pools")

    def target_kinds(self, source_kind):
        # a subvolume is a directory too
        return frozenset((KIND_DIRECTORY, KIND_SUBVOLUME))

    def validate_target_name(self, name):
        validate_path(name, "target")

    def _copy_path(self, source, target):
        return os.path.join(target, os.path.basename(source))

    @staticmethod
    def _send_snapshot(definition, source):
        return os.path.join(pool_dir(source, definition.name), "send", STAGING_PREFIX + os.path.basename(source))

    def _ownership_of(self, name, kind):
        owners, foreign = self._dir_ownership(name)
        pools = sorted(set(m.get("pool") for m in owners.values()))
        return (pools[0] if pools else None), bool(foreign) or len(pools) > 1

    def _check_pair(self, definition, p, mounts):
        m = self._check_source(p.source, mounts)
        self._check_target(definition, p, mounts)
        return m

    def _check_definition(self, definition):
        super(BtrfsSendBackend, self)._check_definition(definition)
        for tp in definition.target_pools:
            for t in tp.volumes:
                for source in definition.sources if tp.host is None else ():
                    if isinstance(t, str) and isinstance(source, str) and (t + "/").startswith(source + "/"):
                        raise InvalidInput(
                            "btrfs_send target %s of target pool %s is inside source %s: its copies would be "
                            "subvolumes nested in the source, missing from the source's own copies and blocking its "
                            "restore; choose a target directory outside every source" % (t, tp.name, source))

    def validate_definition(self, definition):
        super(BtrfsSendBackend, self).validate_definition(definition)
        self.use_definition(definition)
        for tp in definition.target_pools:
            for t in tp.volumes:
                if tp.host is not None:
                    # reaching the host now: an unreachable host, an unknown
                    # key or a refused login stops copy_pool, nothing saved
                    facts = self._site_of(t).call("volume", t)
                    if facts is not None and facts["kind"] == KIND_DIRECTORY:
                        self._check_target_access(t)
                elif isinstance(t, str) and os.path.isdir(t):
                    self._check_target_access(t)

    def _check_target_access(self, target):
        problem = self._target_dir_problem(target)
        if problem is not None:
            raise InvalidInput(
                "btrfs_send target %s%s is refused: %s, so another user could plant files beside the copies (or swap "
                "a copy) that pitcopy, running as root, would trust; give a directory that only root (or the user "
                "running pitcopy) can write, in directories that only they can change (sticky ones like /tmp "
                "excepted)" % (target, self._on(target), problem))

    #: where the kernel says which send stream versions it writes (2:
    #: the one that carries compressed extents, Linux 6.0 and later)
    SEND_STREAM_VERSION = "/sys/fs/btrfs/features/send_stream_version"
    # the transfer.filter check_capacity resolved (transfer uses it), and
    # whether this host's btrfs send was found to write compressed extents
    _filter = None
    _compressed_ok = False

    def _check_transfer(self, definition):
        """Before anything is made: the filter resolves to a program here,
        and ``compressed`` needs a btrfs send that writes compressed extents
        (``--compressed-data``: btrfs-progs 6.0, send stream version 2 of
        Linux 6.0); refused with what this host has otherwise."""
        self._filter = resolve_filter(definition, self.runner)
        transfer = getattr(definition, "transfer", None)
        if transfer is None or not transfer.compressed or self._compressed_ok:
            return
        _rc, out, err = self.runner.run(["btrfs", "send", "--help"], check=False)
        progs = "--compressed-data" in out + err
        try:
            with open(self.SEND_STREAM_VERSION) as fh:
                kernel = int(fh.read().strip() or 0)
        except (IOError, OSError, ValueError):
            kernel = 1  # the file came with version 2 (Linux 5.x has it; older kernels write version 1)
        if not progs or kernel < 2:
            _rc, version, _err = self.runner.run(["btrfs", "--version"], check=False)
            raise InvalidInput(
                "copy pool %s: transfer.compressed true needs btrfs send --compressed-data, which needs btrfs-progs "
                "6.0 or later and a kernel that writes send stream version 2 (Linux 6.0 or later); this host has %s "
                "and send stream version %d (%s); upgrade them or set transfer.compressed false; nothing was changed"
                % (definition.name, (version or "").strip() or "an unknown btrfs-progs", kernel,
                   self.SEND_STREAM_VERSION))
        self._compressed_ok = True

    def _send_options(self, definition):
        transfer = getattr(definition, "transfer", None)
        return ["--compressed-data"] if transfer is not None and transfer.compressed else []

    def check_capacity(self, definition, pairs, replaced_pairs, volumes):
        self._check_definition(definition)
        self._check_transfer(definition)
        mounts = self._mounts()
        for p in pairs:
            if self._exists(p.source) and self._exists(p.target):
                self._check_pair(definition, p, mounts)
        # per target fs: per source fs, the sources' sizes capped at that fs's used bytes
        by_target = {}
        snap_need = {}
        for p in pairs:
            src = volumes.get(p.source)
            tgt = volumes.get(p.target)
            if src is None or tgt is None or src.kind != KIND_SUBVOLUME:
                continue  # target selection reports it
            t = by_target.setdefault(tgt.container, {"free": tgt.free or 0, "targets": [], "sources": {}})
            t["targets"].append(p.target)
            s = t["sources"].setdefault(src.container, {"sum": 0, "cap": None, "names": []})
            s["sum"] += src.size
            s["names"].append(p.source)
            sn = snap_need.setdefault(src.container, {"free": src.free or 0, "need": 0, "names": []})
            sn["need"] += SNAPSHOT_RESERVE
            sn["names"].append(p.source)
        used = self._fs_used(volumes, pairs)
        for fsid, t in sorted(by_target.items()):
            need = 0
            parts = []
            for sfs, s in sorted(t["sources"].items()):
                cap = used.get(sfs)
                n = min(s["sum"], cap) if cap is not None else s["sum"]
                need += n
                parts.append("%s: %d bytes" % (", ".join(s["names"]), n))
            if t["free"] < need:
                raise CapacityError(
                    "copy pool %s: target filesystem %s (targets %s) has %d bytes free but the new version needs "
                    "%d bytes (%s; sizes are qgroup referenced bytes, or the source filesystem's used bytes without "
                    "quotas); the replaced copies are deleted only after the new version is complete, so they do "
                    "not count as free" % (definition.name, fsid, ", ".join(t["targets"]), t["free"], need,
                                           "; ".join(parts)))
        for fsid, sn in sorted(snap_need.items()):
            if sn["free"] < sn["need"]:
                raise CapacityError(
                    "copy pool %s: source filesystem %s (holding %s) has %d bytes free; the temporary snapshots "
                    "for the send need at least %d bytes" % (definition.name, fsid, ", ".join(sn["names"]),
                                                             sn["free"], sn["need"]))

    def _fs_used(self, volumes, pairs):
        used = {}
        mounts = self._mounts()
        cache = {}
        for p in pairs:
            vol = volumes.get(p.source)
            if vol is None or vol.container in used:
                continue
            m = mount_of(p.source, mounts)
            if m is not None and m["fstype"] == BTRFS:
                used[vol.container] = self._fs_facts(m, cache)["used"]
        return used

    def _on(self, name):
        host = self.host_of(name)
        return " on host %s" % host if host else ""

    def _check_remote_target(self, definition, p, site):
        facts = site.call("volume", p.target)
        where = self._on(p.target)
        if facts is None or facts["kind"] != KIND_DIRECTORY:
            raise InvalidInput("btrfs_send target %s%s is not an existing directory (create it there; no symlinks)"
                               % (p.target, where))
        if facts["fstype"] != BTRFS:
            raise InvalidInput("btrfs_send target %s%s is not on a btrfs filesystem" % (p.target, where))

    def _check_target(self, definition, p, mounts):
        validate_path(p.target, "target")
        site = self._site_of(p.target)
        if site is not None:
            self._check_remote_target(definition, p, site)
        elif not os.path.isdir(p.target) or os.path.islink(p.target) or os.path.realpath(p.target) != p.target:
            raise InvalidInput("btrfs_send target %s is not an existing directory (create it; no symlinks)" % p.target)
        else:
            m = mount_of(p.target, mounts)
            if m is None or m["fstype"] != BTRFS:
                raise InvalidInput("btrfs_send target %s is not on a btrfs filesystem" % p.target)
        self._check_target_access(p.target)
        owners, foreign = self._dir_ownership(p.target)
        others = sorted(set(mk.get("pool") for mk in owners.values()) - set([definition.name]))
        if foreign or others:
            raise InvalidInput(
                "btrfs_send target %s%s holds data copy pool %s does not own (%s); it is never overwritten: choose "
                "another target" % (p.target, self._on(p.target), definition.name,
                                    ", ".join(foreign[:5] + ["copies of pool %s" % o for o in others])))

    def _temporary_path(self, definition, p, version):
        # the point in time: a read-only snapshot beside the source, sent,
        # then kept as the base of the next incremental send into the same
        # target pool (_keep_bases; release_bases deletes it when no copy
        # needs it). It keeps the staging name while it is sent: btrfs
        # receive names the copy after the snapshot sent.
        return self._send_snapshot(definition, p.source)

    def take_point_in_time(self, plan):
        self._snapshot_batch(plan, "temporary snapshot(s)")

    def _base_mark(self, definition, source, version):
        """(path, mark) of the complete base of ``source``'s copy of
        ``version`` that is ours and is the subvolume its mark names, else
        (path, None)."""
        path = base_path(source, definition.name, version)
        if not self._is_subvol(path):
            return path, None
        mark = self._read_mark(path)
        if mark is None or mark.get("pool") != definition.name or mark.get("role") != ROLE_BASE or \
                mark.get("state") != "complete" or mark.get("version") != version or mark.get("source") != source \
                or not self._agrees(path, mark):
            return path, None
        return path, mark

    def _copy_facts(self, paths):
        """{path: (is subvolume, mark, subvolume info or None)} of copies,
        one agent run per target host (the same calls here)."""
        out = {}
        by_site = {}
        for path in paths:
            by_site.setdefault(self._site_of(path), []).append(path)
        for site, some in by_site.items():
            calls = []
            for path in some:
                calls.extend([("is_subvolume", (path,)), ("read_mark", (path,)), ("subvolume_info", (path,))])
            answers = self._at(some[0]).batch(calls)
            for i, path in enumerate(some):
                (ok_s, is_sv), (ok_m, mark), (ok_i, info) = answers[3 * i:3 * i + 3]
                out[path] = (ok_s and is_sv, mark if ok_m else None, info if (ok_i and ok_s and is_sv) else None)
        return out

    def _base_problem(self, definition, version, pair, base_mark, facts):
        """Why the copy ``pair`` of ``version`` (facts: _copy_facts) cannot
        be the parent of an incremental send from its base, or None."""
        why = self._copy_problem(definition, version, pair, facts)
        if why is not None:
            return why
        copy = self._copy_path(pair.source, pair.target)
        info = facts[copy][2]
        if base_mark is None:
            return "its base %s is gone" % base_path(pair.source, definition.name, version)
        if info["received_uuid"] != base_mark.get("uuid"):
            return "%s%s was not received from the base %s (received UUID %s, base UUID %s)" % (
                copy, self._on(copy), base_path(pair.source, definition.name, version), info["received_uuid"],
                base_mark.get("uuid"))
        return None

    def _copy_problem(self, definition, version, pair, facts):
        """Why the copy ``pair`` of ``version`` is not the valid copy the
        record names (facts: _copy_facts), or None."""
        copy = self._copy_path(pair.source, pair.target)
        is_sv, mark, info = facts.get(copy, (False, None, None))
        if not is_sv or info is None:
            return "%s%s is gone" % (copy, self._on(copy))
        if mark is None or mark.get("pool") != definition.name or mark.get("version") != version or \
                mark.get("role") != "copy":
            return "%s%s is not version %s of copy pool %s" % (copy, self._on(copy), version, definition.name)
        if info["uuid"] != mark.get("uuid") or not info["readonly"] or info["ctransid"] != mark.get("ctransid"):
            return "%s%s is not the copy received then (another subvolume, or changed since)" % (
                copy, self._on(copy))
        found = "%s,received=%s" % (info["uuid"], info["received_uuid"])
        if pair.identity and not same_subvolume(pair.identity, found):
            return "%s%s is not the copy the record names" % (copy, self._on(copy))
        return None

    def _base_pairs(self, plan):
        return [p for p, _st, _snap in plan.facts["todo"]]

    def _base_problems(self, definition, candidates):
        """Each candidate's base path and why it cannot be the parent of an
        incremental send (the copy's received UUID is the base's UUID), or
        None; the copies' facts read once for all."""
        facts = self._copy_facts([self._copy_path(old.source, old.target) for _v, old in candidates])
        out = []
        for version, old in candidates:
            path, mark = self._base_mark(definition, old.source, version)
            out.append((path, self._base_problem(definition, version, old, mark, facts)))
        return out

    def transfer(self, plan):
        """One ``btrfs send [-p <base>] | btrfs receive`` per pair into its
        target directory, here or on the target pool's host (the same
        pipe: ``ssh host btrfs receive``); the stream is counted as it
        passes through this process."""
        definition, version, todo = plan.definition, plan.version, plan.facts["todo"]
        chosen = self._choose_bases(plan)
        filt = self._filter
        if filt is None:
            filt = resolve_filter(definition, self.runner)
        options = self._send_options(definition)
        sent = {}
        for p, st, snap in todo:
            base_version, base = chosen[p.source]
            send = ["btrfs", "send", "-q"] + options + (["-p", base] if base_version is not None else []) + \
                ["--", snap]
            receive = ["btrfs", "receive", "--", p.target]
            site = self._site_of(p.target)
            meter = {}
            try:
                if site is None:
                    # the filter (transfer.filter) between them; the meter
                    # counts the stream as send wrote it
                    self.runner.pipe([send] + ([filt] if filt else []) + [receive], meter=meter)
                else:
                    # send here [| filter here] | ssh host receive: every
                    # process runs here, the receive's argv quoted for the
                    # remote shell
                    try:
                        pipe_across([(site.local, send)] + ([(site.local, filt)] if filt else []) +
                                    [(site.ssh, receive)], meter=meter)
                    finally:
                        site.invalidate()  # the receive changed the host
            except CommandError as exc:
                raise CopyFailed(
                    "version %d of copy pool %s failed at the pair %s -> %s%s: btrfs send%s | btrfs receive: %s; "
                    "the copies already made were removed and the previous versions are intact" % (
                        version, definition.name, p.source, p.target, self._on(p.target),
                        " -p %s" % base if base_version is not None else "", command_reason(exc)),
                    cause=exc, source=p.source, target=p.target)
            if not self._is_subvol(st):
                raise CopyFailed("version %d of copy pool %s: btrfs receive into %s%s did not create %s" % (
                    version, definition.name, p.target, self._on(p.target), st), source=p.source, target=p.target)
            sent[p.source] = (base_version, int(meter.get("bytes", 0)),
                              None if base_version is not None else base)
        # a received subvolume's generation settles with the commit
        self._sync([st for _p, st, _snap in todo])
        self._keep_bases(plan)
        super(BtrfsSendBackend, self).transfer(plan)
        plan.staged = [replace(s, base_version=sent[s.source][0], bytes_sent=sent[s.source][1])
                       for s in plan.staged]
        plan.facts["full_sends"] = dict((src, why) for src, (_b, _n, why) in sent.items() if why)

    def _keep_bases(self, plan):
        """The snapshots sent become the bases of the next sends: renamed in
        their directory (a read-only subvolume moves only there) to
        base_path(). Crash-safe order: the base's mark (pending, naming the
        version) is durable before the rename and completed after it; a
        kill leaves a pending base, which the rollback of the interrupted
        copy discards as one of its staged copies, or a mark without its
        subvolume, which the next run sweeps."""
        definition, version, todo = plan.definition, plan.version, plan.facts["todo"]
        pool = definition.name
        moves = []
        for p, _st, snap in todo:
            base = base_path(p.source, pool, version)
            if self._exists(base):
                self._delete_ours(pool, [base])  # ours, from an attempt of this number rolled back
            data = dict(self._read_mark(snap) or {}, role=ROLE_BASE, state="pending")
            self._write_mark(base, data, durable=False)
            moves.append((p, snap, base))
        # undo deletes them when a later step fails: they are this version's
        plan.made.extend(CopyPair(p.source, base) for p, _snap, base in moves)
        self._sync([base for _p, _snap, base in moves])
        for _p, snap, base in moves:
            self._rename(snap, base)
        for _p, snap, base in moves:
            self._complete_mark(base, self._read_mark(base), durable=False)
            self._remove_mark(snap)
        self._sync([base for _p, _snap, base in moves])

    def _kept_bases(self, definition, sources):
        """(source, version, path, mark) of this pool's bases in the send
        directories beside ``sources`` (those of a source that left the pool
        and shared its parent directory with another are found too)."""
        out = []
        dirs = sorted(set(os.path.join(pool_dir(s_, definition.name), "send") for s_ in sources
                          if isinstance(s_, str) and os.path.isabs(s_)))
        for d in dirs:
            try:
                names = sorted(os.listdir(d))
            except OSError:
                continue
            for n in names:
                if not n.startswith(BASE_PREFIX):
                    continue
                path = os.path.join(d, n)
                mark = self._read_mark(path)
                source = (mark or {}).get("source")
                version = (mark or {}).get("version")
                if mark is None or mark.get("pool") != definition.name or mark.get("role") != ROLE_BASE or \
                        not isinstance(source, str) or not isinstance(version, int) or \
                        base_path(source, definition.name, version) != path:
                    continue  # not ours: never touched
                out.append((source, version, path, mark))
        return out

    def release_bases(self, definition, records, dry_run=False, sources=()):
        needed = set((p.source, r.version) for r in records for p in r.pairs)
        sources = list(definition.sources) + [p.source for r in records for p in r.pairs] + list(sources)
        doomed = [path for source, version, path, _m in self._kept_bases(definition, sources)
                  if (source, version) not in needed]
        if dry_run or not doomed:
            return doomed
        # ours only: the mark names the pool and the subvolume (UUID)
        return self._delete_ours(definition.name, doomed)

    def missing_bases(self, definition, records):
        out = []
        pairs = [(r, p) for r in records for p in r.pairs]
        facts = self._copy_facts([self._copy_path(p.source, p.target) for _r, p in pairs])
        for r, p in pairs:
            if self._copy_problem(definition, r.version, p, facts) is not None:
                continue  # the copy itself is missing or not the recorded one: verify reports that
            _path, mark = self._base_mark(definition, p.source, r.version)
            why = self._base_problem(definition, r.version, p, mark, facts)
            if why is not None:
                out.append((r, p, why))
        return out

    def discard(self, definition, staged):
        paths = [s.target for s in staged]
        paths.extend(self._send_snapshot(definition, s.source) for s in staged if s.source)
        self._cleanup_staged(paths, definition.name)

    def _restore_origin(self, definition, source, copy, work):
        # bring the copy back to the source's filesystem first: a snapshot
        # cannot cross filesystems
        back = os.path.join(work, os.path.basename(copy))
        if self._exists(back):
            self._delete_ours(definition.name, [back])
            if self._exists(back):
                raise InvalidInput("cannot restore %s: %s exists and is not pitcopy's" % (source, back))
        self._write_mark(back, {"pitcopy": MARK_FORMAT, "pool": definition.name, "technology": self.technology,
                                "role": "restore-temp", "source": source, "state": "pending", "created": _now()})
        try:
            self.runner.pipe([["btrfs", "send", "-q", "--", copy], ["btrfs", "receive", "--", work]])
        except CommandError as exc:
            self._delete_ours(definition.name, [back])
            self._remove_mark(back)
            raise CopyFailed("restore of %s: sending the copy %s back failed: %s; %s was left as it was" % (
                source, copy, command_reason(exc), source), cause=exc, source=source, target=copy)
        return back, [back]


# what _backends registers for this family (each class names its technology)
BACKENDS = (BtrfsSnapshotBackend, BtrfsSendBackend)
