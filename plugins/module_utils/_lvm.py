# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LVM backends: ``lvm_snapshot``, ``lvm_thin`` and ``lvm_clone``.

Names
    Sources and targets are ``vg/lv``: VG and LV names of letters, digits and
    ``_ . + -`` (LVM's own charset; not starting with ``-``, not ``.`` or
    ``..``, none of LVM's reserved names or suffixes). Anything else, spaces
    and shell metacharacters included, is refused before any command runs.
    The copy of ``vg/data`` for implied target pool ``01`` of copy pool
    ``db`` is ``vg/data-pc-db-01``; it is staged as ``vg/data-pc-db-01-v<n>s``
    and renamed on promotion. Names longer than LVM's 127 characters are
    shortened with a hash, deterministically.

Ownership marks
    LVM tags (charset ``A-Za-z0-9_+.-/=!:&#``): ``pitcopy_pool=<pool>``,
    ``pitcopy_version=<n>``, ``pitcopy_source=<vg/lv>``, ``pitcopy_staged``
    on a staged copy, ``pitcopy_tmp`` on the temporary snapshot of a clone,
    and for clones ``pitcopy_size=<bytes>`` and ``pitcopy_sha256=<hex>``.
    Snapshot LVs are created with their tags in the same ``lvcreate``, so a
    copy never exists unmarked. Nothing is removed without our pool tag.

Point in time
    ``lvcreate`` of a snapshot suspends the origin with a filesystem freeze
    of that one device (dm's lockfs) while it loads the snapshot, so each
    snapshot of a mounted filesystem is filesystem-consistent; it snapshots
    one LV per command. Measured on Debian's 6.1 kernel (the guest kernel of
    tests/vm; ``test_fsfreeze_then_snapshot`` re-checks it on every run):
    ``fsfreeze -f`` of the origin's filesystem first makes that suspend fail
    with "suspend ioctl ... Device or resource busy" (freeze_bdev refuses a
    filesystem that is already frozen) and leaves LVM asking for "manual
    intervention". Newer kernels let dm suspend a frozen filesystem; on this
    one it cannot be used (``FREEZE_THEN_SNAPSHOT = False``). So:
    ``consistency: auto`` and ``none`` freeze nothing and rely on LVM's own
    per-device freeze, with all snapshots created back to back by one process
    (the spread between the first and the last is the copy window); one
    point in time across sources comes from pre-copy hooks that quiesce the
    applications (and post-copy hooks that resume them). ``consistency:
    freeze`` is refused with InvalidInput before anything is touched, saying
    so. Should ``FREEZE_THEN_SNAPSHOT`` become True (a kernel that can),
    ``auto``/``freeze`` freeze every mounted source filesystem through
    ``_quiesce.CopyWindow`` (with its watchdog) around the snapshots.

    The snapshots are created by ONE ``lvm`` process reading the commands on
    its standard input (the lvm shell) instead of one process per snapshot:
    the copy window no longer pays a process start and a full device scan per
    source (see tests/benchmarks/bench_vm_lvm.py for the ratio).

lvm_clone
    A consistent temporary snapshot of every source (thin snapshot for a thin
    source, classic snapshot sized by ``snapshot_size`` or 20% of the origin
    otherwise) is taken at one point in time, then copied block by block (in
    Python, 1 MiB at a time, no shell) onto the pre-existing target LV, whose
    sha256 is recorded in a tag; the temporary snapshots are removed in every
    case. The target is then set read-only (``lvchange -p r``).

    Failure semantics (the copy is written onto the final target directly:
    there is no room for a second copy). Before its first block is written
    a target gets our pool, version and ``pitcopy_staged`` tags, so a run
    killed mid-copy leaves it marked as an incomplete copy of the NEW
    version, never as the version it held. When the copy fails (``transfer``
    raises CopyFailed naming the pair), the transaction's ``undo`` releases
    every target written for this version, the failing one included: our
    copy tags go, it is writable again, it stays the pool's target. The copy
    those targets held of the version being replaced is lost (the message
    says which targets); targets not reached keep it, and the versions of
    the other target pools are untouched. The engine records nothing for the
    new version; the replaced version's record keeps naming the lost copies
    until verify_records reports them (copy_missing) and repair drops them;
    a restore from one is refused (the target lacks that version's tag). A
    failure before the first write (a temporary snapshot, a hook) loses
    nothing. tests/unit/plugins/module_utils/test_copy_transaction.py and
    tests/real/test_lvm.py::test_clone_failure_and_foreign_target check it.

    "Holds data we do not own": a target LV without our pool tag whose first
    and last MiB are not all zero (that covers partition tables, filesystem,
    LVM and RAID signatures, including the ones at the end of a device), or
    that is inactive or open so it cannot be checked. Such a target is never
    eligible and never written. An LV that ``delete_copies`` released keeps
    the ``pitcopy_pool`` tag (it is still that pool's target) without a
    version tag: it is reusable by that pool only.

    A clone "changed behind our back": its permission is no longer read-only
    (listed invalid at once), or the sha256 of its first ``pitcopy_size``
    bytes no longer matches the tag (``copy_valid`` reads the copy once:
    verification costs one read of every clone).

Validity
    A classic snapshot that overflowed (``lv_attr`` state ``I`` or 100% of
    its COW space used) is invalid; a missing copy is reported by the engine.

Restore
    Never ``lvconvert --merge``: merging consumes the snapshot being restored
    (a kept version) and, with the origin open, is deferred to its next
    activation. Instead the copy's blocks that differ are written back onto
    the source, which must not be open (unmount it first; the message says
    so). Every version stays. For a classic snapshot the writes go through
    the origin, so every classic snapshot of it must have COW space for the
    changed blocks: that is checked first, with the numbers in the refusal.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re

from ansible_collections.pitcopy.versions.plugins.module_utils._backend import Backend, CopyPlan, restore_to_refusal
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CapacityError,
    CommandError,
    CopyFailed,
    InvalidInput,
)
from ansible_collections.pitcopy.versions.plugins.module_utils import _lv_image
from ansible_collections.pitcopy.versions.plugins.module_utils._lv_image import pwrite_all as _pwrite_all
from ansible_collections.pitcopy.versions.plugins.module_utils._media import sha256_of
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CopyInfo,
    CopyPair,
    Volume,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import command_reason, quietly

TAG_POOL = "pitcopy_pool="
TAG_VERSION = "pitcopy_version="
TAG_SOURCE = "pitcopy_source="
TAG_STAGED = "pitcopy_staged"
TAG_TMP = "pitcopy_tmp"
TAG_SIZE = "pitcopy_size="
TAG_SUM = "pitcopy_sha256="
#: a held copy (copy_version state=held): the LV is also made read-only
TAG_HOLD = "pitcopy_hold"
# an LV restored elsewhere (copy_version restore_to without paths): NOT a copy
# of ours (no TAG_POOL), named by the LV UUID of the copy it was made from
# (lvm_clone: ``<uuid>:<sha256>``, its target LV holds later versions too);
# TAG_RESTORING while its blocks are still being written (lvm_snapshot,
# lvm_clone)
TAG_RESTORED_FROM = "pitcopy_restored_from="
TAG_RESTORING = "pitcopy_restoring"
# an LV being received from a medium (with TAG_RESTORING until it is whole;
# both removed then: the user's LV, none of our marks)
TAG_FROM_MEDIA = TAG_RESTORED_FROM + "media"

KIND_LV = "lv"
KIND_THIN = "thin_lv"
KIND_SNAPSHOT = "snapshot"
KIND_THIN_POOL = "thin_pool"

#: Measured on Debian's 6.1 kernel (tests/real/test_lvm.py::test_fsfreeze_
#: then_snapshot re-checks it on every run): lvcreate -s of an origin whose
#: filesystem is frozen with fsfreeze FAILS (dm suspend: EBUSY).
FREEZE_THEN_SNAPSHOT = False

MiB = 1024 * 1024
CHUNK = MiB
#: restore compares and writes back in pieces of this size
SUB_BLOCK = 64 * 1024
MAX_NAME_LEN = 127
DEFAULT_SNAPSHOT_SIZE = "20%ORIGIN"
#: thin pool usage above which no new thin snapshots are taken
THIN_DATA_MAX_PERCENT = 95.0
THIN_META_MAX_PERCENT = 90.0

_NAME_RE = re.compile(r"^[A-Za-z0-9_.+][A-Za-z0-9_.+-]*\Z")
_TAG_VALUE_RE = re.compile(r"^[A-Za-z0-9_+.\-/=!:&#]+\Z")
_RESERVED_LV_SUBSTRINGS = ("_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_imeta", "_iorig", "_mimage", "_mlog",
                           "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig")
_RESERVED_NAMES = ("snapshot", "pvmove")
_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)([bBsSkKmMgGtTpPeE]?)\Z")
_PERCENT_RE = re.compile(r"^(\d+(?:\.\d+)?)%(ORIGIN|VG)\Z")
_UNITS = {"": MiB, "b": 1, "s": 512, "k": 1024, "m": MiB, "g": 1024 ** 3, "t": 1024 ** 4, "p": 1024 ** 5,
          "e": 1024 ** 6}
_ACCEPTED = ("a logical volume as 'vg/lv' (e.g. 'vg0/data'): VG and LV names of letters, digits and _ . + - "
             "that do not start with '-'")

# lv_uuid: a copy's identity (CopyPair.identity), kept by lvrename
_LVS_FIELDS = ("vg_name,lv_name,lv_attr,lv_size,origin,pool_lv,lv_tags,segtype,data_percent,metadata_percent,"
               "snap_percent,lv_metadata_size,lv_kernel_minor,vg_extent_size,vg_free,vg_size,lv_uuid")


def _pool_name(pool):
    return getattr(pool, "name", pool)


def split_name(name):
    vg, lv = name.split("/", 1)
    return vg, lv


def dm_path(name):
    """/dev/mapper path of ``vg/lv`` (libdevmapper doubles dashes)."""
    vg, lv = split_name(name)
    return "/dev/mapper/%s-%s" % (vg.replace("-", "--"), lv.replace("-", "--"))


def _check_component(name, part, label, what):
    if part in ("", ".", ".."):
        raise InvalidInput("%s %r has an empty, '.' or '..' %s name; expected %s" % (what, name, label, _ACCEPTED))
    if part.startswith("-"):
        raise InvalidInput("%s %r: the %s name starts with '-', which LVM and this collection refuse (it would "
                           "read as an option); expected %s" % (what, name, label, _ACCEPTED))
    if not _NAME_RE.match(part):
        raise InvalidInput("%s %r contains a character LVM does not accept in a %s name (spaces, quotes, ;, $, "
                           "`, |, &, newlines ...); expected %s" % (what, name, label, _ACCEPTED))
    if len(part) > MAX_NAME_LEN:
        raise InvalidInput("%s %r: the %s name is %d characters long; LVM accepts at most %d"
                           % (what, name, label, len(part), MAX_NAME_LEN))


def validate_lv_name(name, what="volume"):
    """Raise InvalidInput unless ``name`` is a plain ``vg/lv``."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("%s %r is not an LVM logical volume name; expected %s" % (what, name, _ACCEPTED))
    if name.startswith("/dev/"):
        raise InvalidInput("%s %r is a device path; name the logical volume as 'vg/lv' instead (%s)"
                           % (what, name, _ACCEPTED))
    if name.count("/") != 1:
        raise InvalidInput("%s %r is not an LVM logical volume name; expected %s" % (what, name, _ACCEPTED))
    vg, lv = split_name(name)
    _check_component(name, vg, "VG", what)
    _check_component(name, lv, "LV", what)
    if lv in _RESERVED_NAMES or lv.startswith("pvmove") or lv.startswith("snapshot"):
        raise InvalidInput("%s %r uses an LV name LVM reserves (snapshot*, pvmove*); expected %s"
                           % (what, name, _ACCEPTED))
    for bad in _RESERVED_LV_SUBSTRINGS:
        if bad in lv:
            raise InvalidInput("%s %r: LV names containing %r are reserved by LVM for its internal volumes; "
                               "expected %s" % (what, name, bad, _ACCEPTED))


def validate_pool_for_tags(pool):
    name = _pool_name(pool)
    if not isinstance(name, str) or not name or not _NAME_RE.match(name) or len(name) > 64 \
            or not _TAG_VALUE_RE.match(name):
        raise InvalidInput("copy pool name %r cannot be part of an LVM name and tag; use up to 64 letters, digits "
                           "and _ . + - (not starting with -)" % (name,))


def parse_snapshot_size(value, origin_bytes, vg_bytes, extent):
    """Bytes that ``snapshot_size`` (as ``lvcreate -L``/``-l`` accept it:
    ``512M``, ``1.5g``, ``100`` (MiB), ``20%ORIGIN``, ``5%VG``) means for an
    origin, rounded up to whole extents. InvalidInput for anything else."""
    text = DEFAULT_SNAPSHOT_SIZE if value in (None, "") else str(value).strip()
    m = _SIZE_RE.match(text)
    if m:
        num = float(m.group(1)) * _UNITS[m.group(2).lower()]
    else:
        m = _PERCENT_RE.match(text.upper())
        if not m:
            raise InvalidInput(
                "snapshot_size %r is not accepted; give a size as lvcreate -L takes it (e.g. 512M, 2G, 100 for "
                "MiB; units b s k m g t p e) or a percentage of the origin or VG as lvcreate -l takes it "
                "(e.g. 20%%ORIGIN, 5%%VG). %%FREE and %%PVS are refused: they do not give each source a stable "
                "size" % (value,))
        pct = float(m.group(1))
        if pct <= 0 or (m.group(2) == "ORIGIN" and pct > 100) or (m.group(2) == "VG" and pct > 100):
            raise InvalidInput("snapshot_size %r: the percentage must be above 0 and at most 100" % (value,))
        num = pct / 100.0 * (origin_bytes if m.group(2) == "ORIGIN" else vg_bytes)
    if num <= 0:
        raise InvalidInput("snapshot_size %r must be larger than zero" % (value,))
    extent = extent or 4 * MiB
    return int(-(-int(num) // extent) * extent) if num >= 1 else extent


def _tags(row):
    raw = row.get("lv_tags") or ""
    return [t for t in raw.split(",") if t]


def _tag_value(tags, prefix):
    for t in tags:
        if t.startswith(prefix):
            return t[len(prefix):]
    return None


def _lines(err):
    """The lines of an lvm shell's stderr that say something: no warnings,
    and not the "Exiting." the shell prints when it reads ``exit``."""
    return [ln.strip() for ln in (err or "").splitlines()
            if ln.strip() and "WARNING" not in ln and ln.strip() != "Exiting."]


def _said(err):
    """The last words of an lvm shell's stderr, for a failure message (a
    line said twice, by two commands on one LV, once)."""
    lines = []
    for ln in _lines(err):
        if ln not in lines:
            lines.append(ln)
    return "; ".join(lines[-3:])


def _int(value, default=0):
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def _float(value, default=0.0):
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _hashed(name, limit=MAX_NAME_LEN):
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:16]
    return "%s-%s" % (name[:limit - 17], digest)


def _device_size(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def _is_zero_region(path, offset, length):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, length)
    finally:
        os.close(fd)
    return not data.strip(b"\0")


# segment types of an ordinary (non-thin, non-snapshot) LV
_PLAIN_SEGMENT_TYPES = frozenset((
    "linear", "striped", "raid0", "raid0_meta", "raid1", "raid4", "raid5", "raid5_n", "raid5_la", "raid5_ra",
    "raid5_ls", "raid5_rs", "raid6", "raid6_zr", "raid6_nr", "raid6_nc", "raid10", "mirror",
))


class _LvmBackend(Backend):
    """What the three LVM technologies share: names, the report, tags, batches."""

    identifies_copies = True  # lv_uuid in the lvs report

    #: run the point-in-time commands in one lvm shell process
    batch = True

    def __init__(self, runner=None):
        super(_LvmBackend, self).__init__(runner)

    # --- names ----------------------------------------------------------------

    def validate_source_name(self, name):
        validate_lv_name(name, "source")

    def validate_target_name(self, name):
        validate_lv_name(name, "target")

    def implied_target(self, pool, target_pool, source):
        validate_pool_for_tags(pool)
        validate_lv_name(source, "source")
        if not isinstance(target_pool, str) or not _NAME_RE.match(target_pool):
            raise InvalidInput("target pool name %r cannot be part of an LV name" % (target_pool,))
        vg, lv = split_name(source)
        return "%s/%s" % (vg, _hashed("%s-pc-%s-%s" % (lv, _pool_name(pool), target_pool)))

    @staticmethod
    def staging_name(target, version):
        vg, lv = split_name(target)
        return "%s/%s" % (vg, _hashed("%s-v%ds" % (lv, version)))

    # --- the report -------------------------------------------------------------

    def _report(self, vgs=None, extra=()):
        """``{vg/lv: row}`` from ONE ``lvs`` JSON report of ``vgs`` (all VGs
        when None). VGs that do not exist are simply absent."""
        argv = ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", _LVS_FIELDS]
        argv += list(extra)
        if vgs is not None:
            vgs = sorted(set(vgs))
            if not vgs:
                return {}
            argv += vgs
        rc, out, err = self.runner.run(argv, check=False)
        if rc != 0:
            bad = [ln for ln in err.splitlines() if ln.strip() and "not found" not in ln
                   and "WARNING" not in ln and "Cannot process volume group" not in ln]
            if bad or not out.strip():
                if vgs is not None and not bad:
                    return {}
                raise CommandError("lvs failed with exit status %s: %s" % (rc, (bad or [err.strip()])[-1]),
                                   argv=argv, rc=rc, stdout=out, stderr=err)
        try:
            doc = json.loads(out) if out.strip() else {"report": []}
        except ValueError:
            raise CommandError("lvs printed a report that is not JSON", argv=argv, rc=rc, stdout=out, stderr=err)
        rows = {}
        for rep in doc.get("report", []):
            for row in rep.get("lv", []):
                rows["%s/%s" % (row["vg_name"], row["lv_name"])] = row
        return rows

    @staticmethod
    def _kind(row):
        attr = row.get("lv_attr") or "----------"
        seg = row.get("segtype") or ""
        if attr[0] in ("s", "S"):
            return KIND_SNAPSHOT
        if seg == "thin-pool":
            return KIND_THIN_POOL
        if seg == "thin":
            return KIND_THIN
        if attr[0] in ("-", "o", "r", "R", "m", "M") and seg in _PLAIN_SEGMENT_TYPES:
            return KIND_LV
        return seg or "unknown"

    @staticmethod
    def _block_size(row):
        minor = _int(row.get("lv_kernel_minor"), -1)
        if minor < 0:
            return 0
        try:
            with open("/sys/block/dm-%d/queue/logical_block_size" % minor) as fh:
                return int(fh.read().strip())
        except (IOError, OSError, ValueError):
            return 0

    @staticmethod
    def _active(row):
        attr = row.get("lv_attr") or "----------"
        return attr[4] == "a"

    @staticmethod
    def _perm(row):
        """The LV's permission in ``row``: "w", "r" (read-only), or another
        lvs attr letter ("R": read-only activation of a writable LV)."""
        return (row.get("lv_attr") or "--")[1]

    @staticmethod
    def _open(row):
        attr = row.get("lv_attr") or "----------"
        return attr[5] == "o"

    def _technologies(self, kind):
        if kind == KIND_LV:
            return frozenset(("lvm_snapshot", "lvm_clone"))
        if kind == KIND_THIN:
            return frozenset(("lvm_thin", "lvm_clone"))
        return frozenset()

    def _foreign(self, name, row, owner):
        """Whether ``name`` holds data we do not own (see the module doc)."""
        return owner is None

    def _volume(self, name, row, rows):
        kind = self._kind(row)
        tags = _tags(row)
        owner = _tag_value(tags, TAG_POOL)
        vg = row["vg_name"]
        if kind == KIND_THIN and row.get("pool_lv"):
            pool = "%s/%s" % (vg, row["pool_lv"])
            prow = rows.get(pool, {})
            free = int(_int(prow.get("lv_size")) * (100.0 - _float(prow.get("data_percent"))) / 100.0)
            container = pool
        else:
            free = _int(row.get("vg_free"))
            container = vg
        return Volume(name=name, kind=kind, size=_int(row.get("lv_size")), block_size=self._block_size(row),
                      technologies=self._technologies(kind), container=container, free=free, owner=owner,
                      foreign_data=self._foreign(name, row, owner))

    def discover(self, names):
        names = list(names)
        for n in names:
            validate_lv_name(n, "volume")
        rows = self._report(set(split_name(n)[0] for n in names))
        return dict((n, self._volume(n, rows[n], rows)) for n in names if n in rows)

    # --- running commands ---------------------------------------------------------

    def _batch(self, commands):
        """Run lvm commands (argv lists without the leading ``lvm``) in one
        ``lvm`` shell process reading them from its standard input; or, with
        ``batch = False``, one process each. Returns the combined stderr. The
        shell carries on after a failing command: callers check the result
        with one report."""
        if not commands:
            return ""
        if not self.batch:
            errs = []
            for c in commands:
                rc, out, err = self.runner.run(list(c), check=False)
                errs.append(err)
            return "".join(errs)
        for c in commands:
            for word in c:
                # validated names and tags never hold these; the lvm shell
                # splits on white space and knows no quoting
                if not word or any(ch in word for ch in " \t\n\r'\"\\#"):
                    raise InvalidInput("refusing to pass %r to the lvm shell" % (word,))
        script = "".join(" ".join(c) + "\n" for c in commands) + "exit\n"
        rc, out, err = self.runner.run(["lvm"], data=script.encode("utf-8"), check=False)
        return err

    def _lv(self, *argv, **kw):
        return self.runner.run(list(argv), **kw)

    def _remove(self, names):
        """lvremove LVs (already checked to be ours) in one batch."""
        if names:
            self._batch([["lvremove", "-y", "-q", n] for n in names])

    @staticmethod
    def _ours(row, pool, identity=None):
        """Whether ``row`` carries our pool's tag and, when the record knows
        the copy's identity, is that LV (its LV UUID): an LV that took a
        recorded copy's name is not ours, whatever tags it carries."""
        if row is None or _tag_value(_tags(row), TAG_POOL) != pool:
            return False
        return not (identity and row.get("lv_uuid") and row.get("lv_uuid") != identity)

    # --- freeze -----------------------------------------------------------------

    def _freeze_list(self, definition, rows, sources):
        mode = getattr(definition, "consistency", "auto") or "auto"
        if mode == "none":
            return []
        if not FREEZE_THEN_SNAPSHOT:
            # nothing is frozen on this kernel: no mount table to read
            self._check_consistency(definition)
            return []
        from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import read_mounts

        mounts = read_mounts()
        by_dev = {}
        for m in mounts:
            by_dev.setdefault(m["dev"], []).append(m)
        out = []
        unmounted = []
        for s in sources:
            row = rows.get(s)
            minor = _int(row.get("lv_kernel_minor"), -1) if row else -1
            major = _int(row.get("lv_kernel_major"), -1) if row and row.get("lv_kernel_major") else None
            found = None
            if minor >= 0:
                try:
                    st = os.stat(dm_path(s))
                    key = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
                except OSError:
                    key = "%d:%d" % (major if major is not None else 253, minor)
                ms = by_dev.get(key, [])
                # the first mount of that device: one freeze covers them all
                if ms:
                    found = ms[0]["mountpoint"]
            if found is None:
                unmounted.append(s)
            elif found not in out:
                out.append(found)
        if mode == "freeze" and unmounted:
            raise InvalidInput("consistency freeze needs every source mounted so that it can be frozen; not "
                               "mounted: %s. Use consistency auto (freeze what is mounted) with pre-copy hooks "
                               "that quiesce the applications using the others" % ", ".join(unmounted))
        return out

    def _check_consistency(self, definition):
        mode = getattr(definition, "consistency", "auto") or "auto"
        if mode == "freeze" and not FREEZE_THEN_SNAPSHOT:
            raise InvalidInput(
                "consistency freeze is not available for %s on this kernel: LVM cannot snapshot an LV whose "
                "filesystem is frozen (its own suspend fails with 'Device or resource busy'). Use consistency "
                "auto (LVM freezes each filesystem itself while it snapshots it) with pre-copy hooks that "
                "quiesce the applications for one point in time across sources" % self.technology)

    def validate_definition(self, definition):
        # what can never work on this kernel is refused when the pool is
        # defined; _freeze_list checks again for a definition saved earlier
        self._check_consistency(definition)

    # --- listing ------------------------------------------------------------------

    def list_copies(self, pool_name, scope=None):
        # the volume groups of the scope's sources and targets only: every
        # copy, staged copy and temporary snapshot of the pool is in one
        vgs = None
        if scope is not None:
            vgs = [n.split("/", 1)[0] for n in tuple(scope.sources) + tuple(scope.targets) + tuple(scope.staged)
                   if "/" in n and _NAME_RE.match(n.split("/", 1)[0])]
        rows = self._report(vgs)
        out = []
        for name in sorted(rows):
            row = rows[name]
            tags = _tags(row)
            if _tag_value(tags, TAG_POOL) != pool_name:
                continue
            ver = _tag_value(tags, TAG_VERSION)
            if ver is None:
                continue  # a released clone target: the pool's, but no copy
            try:
                ver = int(ver)
            except ValueError:
                ver = None
            if TAG_TMP in tags:
                out.append(CopyInfo(target=name, pool=pool_name, source=_tag_value(tags, TAG_SOURCE), version=ver,
                                    staged=True, valid=False, detail="temporary snapshot of a clone copy",
                                    identity=row.get("lv_uuid") or None))
                continue
            valid, detail = self._row_valid(row, tags)
            out.append(CopyInfo(target=name, pool=pool_name, source=_tag_value(tags, TAG_SOURCE), version=ver,
                                staged=TAG_STAGED in tags, valid=valid, detail=detail,
                                identity=row.get("lv_uuid") or None))
        return out

    def _row_valid(self, row, tags):
        return True, ""

    def copy_valid(self, definition, info):
        return info.valid

    # --- holds ------------------------------------------------------------------

    #: whether a released copy is made writable again (snapshots were made
    #: writable; a clone is read-only as a copy, held or not)
    writable_when_released = True

    def _held_rows(self, definition, version, pairs):
        """(pair, row) of the pairs whose LV is ours (tag, LV UUID) and bears ``version``."""
        pool = _pool_name(definition)
        rows = self._report(set(split_name(p.target)[0] for p in pairs)) if pairs else {}
        out = []
        for p in pairs:
            row = rows.get(p.target)
            if self._ours(row, pool, p.identity) and _tag_value(_tags(row), TAG_VERSION) == str(version):
                out.append((p, row))
        return out

    def hold_copies(self, definition, version, pairs, held=True):
        """LVM cannot make ``lvremove`` refuse: the held copy gets the tag
        ``pitcopy_hold`` (which delete_copies refuses to remove) and is made
        read-only (``lvchange --permission r``), so it cannot change either."""
        for p, row in self._held_rows(definition, version, pairs):
            tags = _tags(row)
            writable = self._perm(row) != "r"
            if held:
                if TAG_HOLD not in tags:
                    self._lv("lvchange", "-q", "--addtag", TAG_HOLD, p.target)
                if writable:
                    self._lv("lvchange", "-q", "-p", "r", p.target)
            else:
                if TAG_HOLD in tags:
                    self._lv("lvchange", "-q", "--deltag", TAG_HOLD, p.target)
                if not writable and self.writable_when_released:
                    self._lv("lvchange", "-q", "-p", "rw", p.target)

    def unenforced_holds(self, definition, version, pairs):
        out = []
        for p, row in self._held_rows(definition, version, pairs):
            why = []
            if TAG_HOLD not in _tags(row):
                why.append("%s lacks the %s tag" % (p.target, TAG_HOLD))
            if self._perm(row) != "r":
                why.append("%s is writable (lv_attr %s)" % (p.target, row.get("lv_attr")))
            if why:
                out.append((p, "; ".join(why)))
        return out

    @staticmethod
    def _refuse_held(row, name):
        if row is not None and TAG_HOLD in _tags(row):
            raise CopyFailed("%s is held (tag %s: copy_version state=held); it is not deleted: release the hold "
                             "first" % (name, TAG_HOLD), target=name)

    # --- capacity helpers ------------------------------------------------------------

    def _snapshot_bytes(self, definition, row):
        return parse_snapshot_size(getattr(definition, "snapshot_size", None), _int(row.get("lv_size")),
                                   _int(row.get("vg_size")), _int(row.get("vg_extent_size")))

    def _checked_names(self, definition, pairs):
        """The pool's name as tags carry it, with it and every pair's LV names
        checked before any command sees them."""
        pool = _pool_name(definition)
        validate_pool_for_tags(pool)
        for p in pairs:
            validate_lv_name(p.source, "source")
            validate_lv_name(p.target, "target")
        return pool

    def _pair_rows(self, pairs, targets=True):
        """One ``lvs`` report for the VGs of the pairs' sources (and targets):
        every LV in them by ``vg/lv``; nothing is run for no pairs."""
        names = set(p.source for p in pairs) | (set(p.target for p in pairs) if targets else set())
        return self._report(set(split_name(n)[0] for n in names)) if names else {}

    def _check_vg_space(self, what, needs, rows):
        """needs: {vg: [(source, bytes)]}; CapacityError with the numbers."""
        for vg in sorted(needs):
            items = needs[vg]
            total = sum(item[1] for item in items)
            free = None
            for r in rows.values():
                if r.get("vg_name") == vg:
                    free = _int(r.get("vg_free"))
                    break
            if free is None:
                continue
            if total > free:
                raise CapacityError(
                    "%s needs %d bytes (%.1f MiB) in VG %s for %d snapshot(s) (%s) but the VG has %d bytes "
                    "(%.1f MiB) free; the copies of the version being replaced are removed only after the new "
                    "ones exist, so their space does not count. Extend the VG (vgextend), lower snapshot_size or "
                    "keep fewer versions" % (
                        what, total, total / float(MiB), vg, len(items),
                        ", ".join("%s: %d" % (s, b) for s, b in items), free, free / float(MiB)))

    # --- browsing and file restores (issue 17) ----------------------------------

    def copy_view(self, definition, version, pair):
        """The copy LV's block device, mounted read-only to be read."""
        from ansible_collections.pitcopy.versions.plugins.module_utils._browse import VIEW_BLOCK, CopyView

        pool = _pool_name(definition)
        validate_lv_name(pair.target, "target")
        row = self._report([split_name(pair.target)[0]]).get(pair.target)
        why = None
        if row is None or not self._ours(row, pool, pair.identity) or TAG_STAGED in _tags(row):
            why = "it does not exist or is not copy pool %s's copy (deleted behind our back?)" % pool
        elif _tag_value(_tags(row), TAG_VERSION) != str(version):
            why = "it holds version %s" % _tag_value(_tags(row), TAG_VERSION)
        else:
            valid, detail = self._row_valid(row, _tags(row))
            if not valid:
                why = "it is not valid: %s" % detail
        if why:
            raise InvalidInput("copy pool %s: cannot read version %d of %s from %s: %s; nothing was changed. Run "
                               "pitcopy.versions.verify_records to see the findings" % (
                                   pool, version, pair.source, pair.target, why))
        return CopyView(VIEW_BLOCK, dm_path(pair.target), volume=pair.target)

    def open_view(self, definition, view):
        # a thin snapshot is made with activation skipped (-K activates it);
        # -y: for a classic snapshot lvchange asks about the origin too
        self._lv("lvchange", "-q", "-ay", "-K", "-y", view.volume)

    def source_directory(self, definition, source):
        from ansible_collections.pitcopy.versions.plugins.module_utils._browse import mountpoints_of_device

        found = mountpoints_of_device(dm_path(source))
        return found[0] if found else None

    # --- whole sources restored elsewhere (issue 17, item 4) ----------------------

    #: whether this technology restores whole sources as new LVs
    restores_elsewhere = False
    #: what ``restore_to`` may be, for the refusals
    elsewhere_accepted = ("an LV name prefix (letters, digits and _ . + -, not starting with '-'): each source vg/lv "
                          "becomes the new LV vg/<restore_to><lv>; or, with one source restored, the new LV's "
                          "'vg/lv' name in that source's VG")
    #: how restored_elsewhere names the tag that is missing
    restored_tag_doc = TAG_RESTORED_FROM + "<that copy's LV UUID>"

    def restore_elsewhere_volumes(self, definition, version, pairs, restore_to):
        """``restore_to`` is an LV name prefix: each source ``vg/lv`` becomes
        ``vg/<restore_to><lv>`` (in the source's VG); or, with one source
        restored, the ``vg/lv`` name of the new LV (where
        :meth:`_check_elsewhere_vg` allows it)."""
        if not self.restores_elsewhere:
            return Backend.restore_elsewhere_volumes(self, definition, version, pairs, restore_to)
        bad = restore_to_refusal(definition, restore_to, self.elsewhere_accepted)
        names = _new_lv_names(bad, [p.source for p in pairs], restore_to)
        if "/" in restore_to:
            self._check_elsewhere_vg(bad, restore_to, pairs[0])
        out = []
        for p, name in zip(pairs, names):
            if name in (p.source, p.target):
                raise bad("names %s itself" % name)
            self.copy_view(definition, version, p)  # the copy is the pool's, of this version, valid
            out.append((p, name))
        self._check_elsewhere_room(bad, out)
        return out

    def _check_elsewhere_vg(self, bad, name, pair):
        """Refuse (``bad``) a ``vg/lv`` restore_to that is not in the VG of
        ``pair``'s source: a snapshot is made where its copy is."""
        if split_name(name)[0] != split_name(pair.source)[0]:
            raise bad("is in VG %s, not in VG %s of source %s, where its copy is" % (
                split_name(name)[0], split_name(pair.source)[0], pair.source))

    def _check_elsewhere_room(self, bad, planned):
        """Refuse what cannot be made, before anything is (reads only)."""

    def _restored_tag(self, copy):
        """The tag naming the copy (its ``lvs`` row) a restored LV was made from."""
        return TAG_RESTORED_FROM + (copy.get("lv_uuid") or "?")

    def _restored_row(self, pair, volume):
        # the copy may be in another VG than the new LV (lvm_clone)
        rows = self._report([split_name(volume)[0], split_name(pair.target)[0]])
        return rows.get(volume), rows.get(pair.target)

    def restored_elsewhere(self, definition, version, pair, volume):
        row, copy = self._restored_row(pair, volume)
        if row is None:
            return None
        tags = _tags(row)
        if copy is not None and self._restored_tag(copy) in tags:
            # unfinished (a run killed while writing it): made again
            return None if TAG_RESTORING in tags else True
        return "LV %s exists and was not made from the copy %s of version %s (it lacks the tag %s)" % (
            volume, pair.target, version, self.restored_tag_doc)

    def _make_restored(self, definition, version, pair, volume):
        self.copy_view(definition, version, pair)
        row, copy = self._restored_row(pair, volume)
        tag = self._restored_tag(copy)
        try:
            self._make_elsewhere(definition, pair, copy, volume, tag, row)
        except (CommandError, OSError) as exc:
            left = self._report([split_name(volume)[0]]).get(volume)
            if left is not None and tag in _tags(left) and TAG_RESTORING in _tags(left):
                quietly(lambda: self._lv("lvremove", "-y", "-q", volume))  # our unfinished one: nothing left behind
            raise CopyFailed("restore of %s from %s to the new LV %s failed: %s" % (
                pair.source, pair.target, volume,
                command_reason(exc) if isinstance(exc, CommandError) else exc), cause=exc,
                source=pair.source, target=volume)
        # none of the pool's copy marks on it, whatever lvcreate carried over
        row = self._report([split_name(volume)[0]]).get(volume) or {}
        for t in _tags(row):
            if t.startswith("pitcopy_") and t != tag:
                self._lv("lvchange", "-q", "--deltag", t, volume)

    def _make_elsewhere(self, definition, pair, copy, volume, tag, row):
        raise NotImplementedError

    def _vgs_report(self, vgs):
        """``{vg: row}`` (vg_free, vg_extent_size) of those of ``vgs`` that exist."""
        argv = ["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o", "vg_name,vg_free,vg_extent_size"]
        argv += sorted(set(vgs))
        rc, out, err = self.runner.run(argv, check=False)
        bad = [ln for ln in err.splitlines() if ln.strip() and "not found" not in ln and "WARNING" not in ln
               and "Cannot process volume group" not in ln]
        if rc != 0 and bad:  # a VG that does not exist is simply absent
            raise CommandError("vgs failed with exit status %s: %s" % (rc, bad[-1]), argv=argv, rc=rc, stdout=out,
                               stderr=err)
        try:
            doc = json.loads(out) if out.strip() else {"report": []}
        except ValueError:
            raise CommandError("vgs printed a report that is not JSON", argv=argv, rc=rc, stdout=out, stderr=err)
        return dict((row["vg_name"], row) for rep in doc.get("report", []) for row in rep.get("vg", []))

    # --- media (issue 17, item 6): a copy's blocks as a gzip image ----------------

    stream_extension = "lvgz-stream"
    media_accepted = ("an LV name prefix (letters, digits and _ . + -, not starting with '-'): each source vg/lv "
                      "becomes the new LV vg/<restore_to><lv>; or, with one source restored, the new LV's 'vg/lv' "
                      "name in any existing VG")

    def _image_size(self, row):
        """How many bytes of the copy (its ``lvs`` row, active) are the
        source's: the whole device (a snapshot is its origin's size)."""
        return _device_size(dm_path("%s/%s" % (row["vg_name"], row["lv_name"])))

    def _image_digest(self, row):
        """(hashlib object, the sha256 the copy's blocks must have) when the
        copy carries its checksum (lvm_clone); (None, None) otherwise."""
        return None, None

    def dump_stream(self, definition, version, pair, write):
        """The copy's blocks as one gzip image (``_lv_image``): activated for
        the read when it is not active (a thin snapshot skips activation),
        deactivated again after; an lvm_thin copy's image names its thin
        pool, so that a restore makes a thin LV there again."""
        self.copy_view(definition, version, pair)  # the pool's, of this version, valid: refused otherwise
        row = self._report([split_name(pair.target)[0]])[pair.target]
        was_active = self._active(row)
        try:
            if not was_active:
                self._lv("lvchange", "-q", "-ay", "-K", "-y", pair.target)
            digest, want = self._image_digest(row)
            thin_pool = row.get("pool_lv") if self._kind(row) == KIND_THIN else None
            _lv_image.dump(dm_path(pair.target), self._image_size(row), write, thin_pool or None, digest)
            if digest is not None and digest.hexdigest() != want:
                raise OSError("the copy %s no longer matches its %s tag: it changed behind our back (run "
                              "pitcopy.versions.verify_records)" % (pair.target, TAG_SUM))
        except (CommandError, OSError, _lv_image.ImageError) as exc:
            raise CopyFailed("dump of %s (version %d) from its copy %s failed: %s" % (
                pair.source, version, pair.target, command_reason(exc) if isinstance(exc, CommandError) else exc),
                cause=exc, source=pair.source, target=pair.target)
        finally:
            if not was_active:
                quietly(lambda: self._lv("lvchange", "-q", "-an", pair.target))

    def media_volumes(self, definition, sources, restore_to):
        """The restore_to rules of whole sources restored elsewhere, without
        the copies (they may be gone): a new LV may be in any VG that
        exists, as a block copy's may."""
        bad = restore_to_refusal(definition, restore_to, self.media_accepted)
        names = _new_lv_names(bad, sources, restore_to)
        vgs = self._vgs_report(split_name(n)[0] for n in names)
        for source, name in zip(sources, names):
            if name == source:
                raise bad("names %s itself" % name)
            if split_name(name)[0] not in vgs:
                raise bad("puts the new LV %s in VG %s, which does not exist" % (name, split_name(name)[0]))
        return list(zip(sources, names))

    def volume_exists(self, volume):
        return volume in self._report([split_name(volume)[0]])

    def receive_stream(self, definition, source, fd, volume):
        """A new LV ``volume`` from the image read from ``fd``: a thin LV in
        the thin pool the image names when ``volume``'s VG has it (all-zero
        blocks not written when the pool zeroes new blocks), a plain LV of
        the image's size otherwise (every block written: a new plain LV
        holds what its extents held before). Tagged restoring and from
        media while it is written, untagged when whole; removed when
        anything fails."""
        vg, lv = split_name(volume)
        rows = self._report([vg])
        if volume in rows:
            raise InvalidInput("cannot restore %s from media to %s: it exists; a restore never overwrites: choose "
                               "another restore_to, or move that away; nothing was changed" % (source, volume))
        try:
            meta = _lv_image.read_meta(_lv_image.Reader(fd))
            os.lseek(fd, 0, os.SEEK_SET)
            pool = rows.get("%s/%s" % (vg, meta["thin_pool"])) if meta["thin_pool"] else None
            tags = ["--addtag", TAG_FROM_MEDIA, "--addtag", TAG_RESTORING]
            if pool is not None and self._kind(pool) == KIND_THIN_POOL:
                sparse = (pool.get("lv_attr") or "----------")[7:8] == "z"
                self._lv(*(["lvcreate", "-q", "-V", "%db" % meta["size"], "-T", "%s/%s" % (vg, meta["thin_pool"]),
                            "-n", lv] + tags))
            else:
                sparse = False
                self._lv(*(["lvcreate", "-q", "-y", "-Wn", "-Zn", "-L", "%db" % meta["size"], "-n", lv] + tags + [vg]))
            _lv_image.restore(fd, dm_path(volume), sparse=sparse)
            self._lv("lvchange", "-q", "--deltag", TAG_RESTORING, "--deltag", TAG_FROM_MEDIA, volume)
        except (CommandError, OSError, _lv_image.ImageError) as exc:
            quietly(lambda: self.sweep_media_leftovers([volume]))  # nothing of ours left behind
            raise CopyFailed("restore of %s from media to the new LV %s failed: %s; nothing was made" % (
                source, volume, command_reason(exc) if isinstance(exc, CommandError) else exc), cause=exc,
                source=source, target=volume)

    def media_leftovers(self, volumes):
        """The LVs among ``volumes`` that a killed receive from media left
        half written (still tagged restoring and from media)."""
        rows = self._report(split_name(v)[0] for v in volumes) if volumes else {}
        return sorted(v for v in set(volumes) if v in rows and TAG_RESTORING in _tags(rows[v])
                      and TAG_FROM_MEDIA in _tags(rows[v]))

    def sweep_media_leftovers(self, volumes):
        for volume in self.media_leftovers(volumes):
            self._lv("lvremove", "-q", "-y", volume)


def _new_lv_names(bad, sources, restore_to):
    """The new LV of each of ``sources`` under ``restore_to`` (an LV name
    prefix, or with one source the ``vg/lv`` name); ``bad(why)`` refuses."""
    if not isinstance(restore_to, str) or not restore_to:
        raise bad("is empty")
    if "/" in restore_to:
        if len(sources) != 1:
            raise bad("names one LV but %d sources are restored (%s); give a name prefix, or one source in "
                      "volumes" % (len(sources), ", ".join(sources)))
        try:
            validate_lv_name(restore_to, "restore_to")
        except InvalidInput as exc:
            raise bad("is not a usable LV name (%s)" % exc.msg)
        return [restore_to]
    if restore_to.startswith("-") or not _NAME_RE.match(restore_to):
        raise bad("is not a usable LV name prefix")
    names = []
    for source in sources:
        vg, lv = split_name(source)
        name = "%s/%s%s" % (vg, restore_to, lv)
        try:
            validate_lv_name(name, "the new LV")
        except InvalidInput as exc:
            raise bad("makes an LV name LVM refuses for %s (%s)" % (source, exc.msg))
        names.append(name)
    return names


def _copy_tags(pool, version, source, stage_tag):
    """The ``--addtag`` options that mark a copy as ours: pool, version,
    source, and where it is in its life (staged, or a clone's temporary)."""
    return ["--addtag", TAG_POOL + pool, "--addtag", TAG_VERSION + str(version),
            "--addtag", TAG_SOURCE + source, "--addtag", stage_tag]


class _SnapshotBase(_LvmBackend):
    """lvm_snapshot and lvm_thin: implied targets, snapshot LVs."""

    implied_targets = True
    # the kind of LV each copies, and the kind of its copies
    origin_kind = snapshot_kind = None

    def source_kinds(self):
        return frozenset((self.origin_kind,))

    def target_kinds(self, source_kind):
        return frozenset((self.snapshot_kind,))

    def _create_argv(self, definition, version, pair, staging, rows):
        return (["lvcreate", "-q", "-s"] + self._snapshot_options(definition, pair, rows)
                + ["-n", split_name(staging)[1]]
                + _copy_tags(_pool_name(definition), version, pair.source, TAG_STAGED) + [pair.source])

    def _snapshot_options(self, definition, pair, rows):
        """What sets a snapshot of this kind apart in its ``lvcreate -s``."""
        raise NotImplementedError

    def _source_rows(self, pairs):
        """The ``lvs`` rows of the pairs' VGs (one report for all of them), and
        each pair whose source LVM reports with that source's row."""
        pairs = list(pairs)
        rows = self._pair_rows(pairs, targets=False)
        return rows, [(p, rows[p.source]) for p in pairs if p.source in rows]

    def _check_target_free(self, definition, pairs, rows, version):
        pool = _pool_name(definition)
        stale = []
        for p in pairs:
            st = self.staging_name(p.target, version)
            row = rows.get(st)
            if row is None:
                continue
            if not self._ours(row, pool):
                raise CopyFailed("staging LV %s exists without this copy pool's tag (%s%s); it is left alone and no "
                                 "copy was made" % (st, TAG_POOL, pool), source=p.source, target=p.target)
            stale.append(st)
        return stale

    def plan_copies(self, definition, version, pairs):
        pool = self._checked_names(definition, pairs)
        vgs = set(split_name(p.source)[0] for p in pairs)
        rows = self._report(vgs, extra=["-o+lv_kernel_major"])
        for p in pairs:
            if p.source not in rows:
                raise CopyFailed("source %s does not exist; no copy was made" % p.source, source=p.source,
                                 target=p.target)
        stagings = [self.staging_name(p.target, version) for p in pairs]
        plan = CopyPlan(definition, version, pairs,
                        staging=[CopyPair(p.source, st) for p, st in zip(pairs, stagings)],
                        commands=[self._create_argv(definition, version, p, st, rows)
                                  for p, st in zip(pairs, stagings)],
                        marks={TAG_POOL: pool, TAG_VERSION: str(version)},
                        freeze=self._freeze_list(definition, rows, [p.source for p in pairs]))
        # leftovers of an interrupted run of this version: ours go first
        plan.facts.update(vgs=vgs, stale=self._check_target_free(definition, pairs, rows, version))
        return plan

    def prepare(self, plan):
        self._remove(plan.facts["stale"])

    def take_point_in_time(self, plan):
        plan.made = list(plan.staging)  # the shell may make some before one fails
        plan.facts["err"] = self._batch(plan.commands)

    def transfer(self, plan):
        # the lvm shell carries on after a failing command: one report says what it made
        after = plan.facts["after"] = self._report(plan.facts["vgs"])
        missing = [(p, st.target) for p, st in zip(plan.pairs, plan.staging) if st.target not in after]
        if missing:
            p, st = missing[0]
            err = plan.facts["err"]
            mine = [ln for ln in _lines(err) if split_name(p.source)[1] in ln or split_name(st)[1] in ln]
            reason = "; ".join(mine) or _said(err) or "lvcreate reported nothing"
            raise CopyFailed(
                "%s copy version %d of %s failed at %s -> %s: %s; the snapshots made for this version were removed "
                "and the previous versions are untouched" % (self.technology, plan.version, _pool_name(plan.definition),
                                                             p.source, p.target, reason),
                cause=CommandError(reason, argv=["lvm", "lvcreate"], rc=None, stderr=err),
                source=p.source, target=p.target)
        plan.staged = list(plan.staging)

    def undo(self, plan):
        if plan.made:
            self._cleanup_staged(_pool_name(plan.definition), [s.target for s in plan.made],
                                 plan.facts.pop("after", None))

    def _cleanup_staged(self, pool, stagings, rows=None):
        if rows is None:
            rows = self._report(set(split_name(s)[0] for s in stagings))
        self._remove([s for s in stagings if self._ours(rows.get(s), pool) and TAG_STAGED in _tags(rows[s])])

    def promote(self, definition, version, pairs, staged, replaced_pairs):
        pool = _pool_name(definition)
        staged_map = dict((s.source, s.target) for s in staged)
        names = set(p.target for p in pairs) | set(staged_map.values()) | set(p.target for p in replaced_pairs or ())
        rows = self._report(set(split_name(n)[0] for n in names))
        for p in pairs:
            row = rows.get(p.target)
            if row is not None and not self._ours(row, pool):
                raise CopyFailed("target %s exists without this copy pool's tag; it is not overwritten"
                                 % p.target, source=p.source, target=p.target)
        removes = []
        for p in replaced_pairs or ():
            row = rows.get(p.target)
            if row is None or not self._ours(row, pool, p.identity):
                continue
            if _tag_value(_tags(row), TAG_VERSION) == str(version) and TAG_STAGED not in _tags(row):
                continue  # already promoted by an interrupted call
            removes.append(p.target)
        renames = []
        untag = []
        for p in pairs:
            st = staged_map.get(p.source)
            if st is None:
                continue
            frow = rows.get(p.target)
            if st not in rows:
                if frow is not None and self._ours(frow, pool) and \
                        _tag_value(_tags(frow), TAG_VERSION) == str(version):
                    # renamed by an interrupted call; it may have died before
                    # the staged tag went (the lvm shell killed between the
                    # two commands), and a staged copy is no copy
                    if TAG_STAGED in _tags(frow):
                        untag.append(p.target)
                    continue
                raise CopyFailed("staged copy %s of %s is missing; version %d cannot be completed"
                                 % (st, p.source, version), source=p.source, target=p.target)
            if frow is not None and p.target not in removes:
                removes.append(p.target)
            renames.append((st, p.target))
        commands = [["lvremove", "-y", "-q", n] for n in removes]
        for st, final in renames:
            vg = split_name(st)[0]
            commands.append(["lvrename", "-q", vg, split_name(st)[1], split_name(final)[1]])
            commands.append(["lvchange", "-q", "--deltag", TAG_STAGED, final])
        commands.extend(["lvchange", "-q", "--deltag", TAG_STAGED, final] for final in untag)
        err = self._batch(commands)
        after = self._report(set(split_name(n)[0] for n in names))
        for st, final in renames + [(final, final) for final in untag]:
            row = after.get(final)
            if row is None or TAG_STAGED in _tags(row) or _tag_value(_tags(row), TAG_VERSION) != str(version):
                raise CopyFailed("promoting %s to %s failed: %s" % (st, final, err.strip() or "no message"),
                                 source=None, target=final)

    def discard(self, definition, staged):
        pool = _pool_name(definition)
        names = [s.target for s in staged]
        if not names:
            return
        rows = self._report(set(split_name(n)[0] for n in names))
        self._remove([n for n in names if self._ours(rows.get(n), pool)])

    def delete_copies(self, definition, pairs):
        pool = _pool_name(definition)
        names = [p.target for p in pairs]
        if not names:
            return []
        rows = self._report(set(split_name(n)[0] for n in names))
        skipped = []
        removes = []
        identities = dict((p.target, p.identity) for p in pairs)
        for n in names:
            row = rows.get(n)
            if row is None:
                continue
            if not self._ours(row, pool, identities.get(n)):
                skipped.append(n)
                continue
            self._refuse_held(row, n)
            removes.append(n)
        self._remove(removes)
        after = self._report(set(split_name(n)[0] for n in names))
        left = [n for n in removes if n in after]
        if left:
            raise CopyFailed("could not remove %s (in use?)" % ", ".join(left), target=left[0])
        return skipped

    def _activate(self, name):
        self._lv("lvchange", "-ay", "-K", "-y", name)

    def restore(self, definition, version, pairs):
        pool = _pool_name(definition)
        pairs = list(pairs)
        rows = self._pair_rows(pairs)  # nothing runs, and nothing is restored, for no pairs
        plans = []
        for p in pairs:
            validate_lv_name(p.source, "source")
            row = rows.get(p.target)
            if row is None or not self._ours(row, pool, p.identity) or TAG_STAGED in _tags(row):
                raise InvalidInput("cannot restore %s from version %d: its copy %s does not exist"
                                   % (p.source, version, p.target))
            tags = _restorable_tags(row, p, version)
            valid, detail = self._row_valid(row, tags)
            if not valid:
                raise InvalidInput("cannot restore %s from %s: the copy is not valid (%s)"
                                   % (p.source, p.target, detail))
            srow = rows.get(p.source)
            if srow is None:
                raise InvalidInput("cannot restore %s: the source LV does not exist any more; create it again (at "
                                   "least %s bytes) first" % (p.source, row.get("lv_size")))
            if self._open(srow):
                raise InvalidInput(
                    "cannot restore %s from %s: %s is open (mounted or in use). Unmount it and stop what uses it, "
                    "then retry. (lvconvert --merge is not used: it would consume the snapshot of version %d and, "
                    "with the origin open, only happen at its next activation)"
                    % (p.source, p.target, p.source, version))
            plans.append(p)
        for p in plans:
            if not self._active(rows[p.source]):
                self._lv("lvchange", "-ay", p.source)
            self._activate(p.target)
        for p in plans:
            self._check_restore_space(definition, p, rows)
        done = []
        for p in plans:
            try:
                _copy_blocks(dm_path(p.target), dm_path(p.source), None, only_changed=True)
            except (OSError, IOError) as exc:
                raise _restore_failed(p, done, plans, exc)
            done.append(p.source)
        return done

    def _check_restore_space(self, definition, pair, rows):
        pass


def _restorable_tags(row, pair, version):
    """The tags of the copy a restore of ``version`` reads; InvalidInput when
    that LV holds another version."""
    tags = _tags(row)
    if _tag_value(tags, TAG_VERSION) != str(version):
        raise InvalidInput("cannot restore %s: %s holds version %s, not version %d"
                           % (pair.source, pair.target, _tag_value(tags, TAG_VERSION), version))
    return tags


def _restore_failed(pair, done, pairs, reason):
    """The CopyFailed of a restore that stopped at ``pair``, naming the
    sources already restored (their data is the version's now)."""
    return CopyFailed("restore of %s from %s failed after %d of %d sources (%s): %s"
                      % (pair.source, pair.target, len(done), len(pairs), ", ".join(done) or "none", reason),
                      source=pair.source, target=pair.target)


def _copy_blocks(src, dst, length, only_changed=False, digest=None, progress=None):
    """Copy ``length`` bytes (all of ``src`` when None) from device ``src``
    to device ``dst`` in CHUNK pieces; with ``only_changed`` write only the
    chunks that differ. Returns (bytes copied, bytes written)."""
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_RDWR)
    copied = written = 0
    try:
        total = length if length is not None else os.lseek(sfd, 0, os.SEEK_END)
        dsize = os.lseek(dfd, 0, os.SEEK_END)
        if dsize < total:
            raise OSError("%s (%d bytes) is smaller than %s (%d bytes)" % (dst, dsize, src, total))
        os.lseek(sfd, 0, os.SEEK_SET)
        os.lseek(dfd, 0, os.SEEK_SET)
        while copied < total:
            want = min(CHUNK, total - copied)
            data = os.read(sfd, want)
            if not data:
                raise OSError("short read from %s at %d" % (src, copied))
            if digest is not None:
                digest.update(data)
            if only_changed:
                # Only the sub-blocks that differ: every write to a snapshot
                # origin costs copy-on-write space in each of its snapshots.
                old = os.pread(dfd, len(data), copied)
                if old != data:
                    for off in range(0, len(data), SUB_BLOCK):
                        piece = data[off:off + SUB_BLOCK]
                        if piece != old[off:off + SUB_BLOCK]:
                            _pwrite_all(dfd, piece, copied + off)
                            written += len(piece)
            else:
                _write_all(dfd, data)
                written += len(data)
            copied += len(data)
        os.fsync(dfd)
    finally:
        os.close(sfd)
        os.close(dfd)
    return copied, written


def _diff_bytes(src, dst):
    """Bytes (in CHUNK pieces) in which device ``src`` differs from ``dst``."""
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_RDONLY)
    diff = pos = 0
    try:
        total = os.lseek(sfd, 0, os.SEEK_END)
        os.lseek(sfd, 0, os.SEEK_SET)
        while pos < total:
            a = os.read(sfd, min(CHUNK, total - pos))
            if not a:
                break
            b = os.read(dfd, len(a))
            if a != b:
                for off in range(0, len(a), SUB_BLOCK):
                    if a[off:off + SUB_BLOCK] != b[off:off + SUB_BLOCK]:
                        diff += len(a[off:off + SUB_BLOCK])
            pos += len(a)
    finally:
        os.close(sfd)
        os.close(dfd)
    return diff


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class LvmSnapshotBackend(_SnapshotBase):
    """Classic copy-on-write snapshots in the origin's VG."""

    technology = "lvm_snapshot"
    origin_kind, snapshot_kind = KIND_LV, KIND_SNAPSHOT

    def _snapshot_options(self, definition, pair, rows):
        return ["-L", "%db" % self._snapshot_bytes(definition, rows[pair.source])]

    def check_capacity(self, definition, pairs, replaced_pairs, volumes):
        rows, reported = self._source_rows(pairs)
        needs = {}
        for p, row in reported:
            needs.setdefault(row["vg_name"], []).append((p.source, self._snapshot_bytes(definition, row)))
        self._check_vg_space("an lvm_snapshot version", needs, rows)

    def _row_valid(self, row, tags):
        attr = row.get("lv_attr") or "----------"
        if attr[4] in ("I",) or _float(row.get("snap_percent")) >= 100.0:
            return False, "the snapshot overflowed (its copy-on-write space is full) and was invalidated by LVM"
        if attr[0] not in ("s", "S"):
            return False, "it is no longer a snapshot LV (lv_attr %s)" % attr
        return True, ""

    def _activate(self, name):
        pass  # a classic snapshot is active whenever its origin is

    restores_elsewhere = True

    def _make_elsewhere(self, definition, pair, copy, volume, tag, row):
        """A new plain LV the size of the origin, its blocks copied from the
        snapshot (LVM makes no snapshot of a classic snapshot); tagged
        restoring until every block is written."""
        vg = split_name(volume)[0]
        rows = self._report([vg])
        origin = rows.get("%s/%s" % (vg, copy.get("origin")))
        if origin is None:
            raise InvalidInput("cannot restore %s: the origin of its copy %s is gone" % (pair.source, pair.target))
        size = _int(origin.get("lv_size"))
        if row is None:
            self._lv("lvcreate", "-q", "-y", "-Wn", "-Zn", "-L", "%db" % size, "-n", split_name(volume)[1],
                     "--addtag", tag, "--addtag", TAG_RESTORING, vg)
        _copy_blocks(dm_path(pair.target), dm_path(volume), size)
        self._lv("lvchange", "-q", "--deltag", TAG_RESTORING, volume)

    def _check_restore_space(self, definition, pair, rows):
        """Every classic snapshot of the origin must take the writes."""
        changed = _diff_bytes(dm_path(pair.target), dm_path(pair.source))
        if not changed:
            return
        for name, row in rows.items():
            if row.get("origin") != split_name(pair.source)[1] or row.get("vg_name") != split_name(pair.source)[0]:
                continue
            size = _int(row.get("lv_size"))
            used = _float(row.get("snap_percent")) / 100.0 * size
            # COW chunks carry their own metadata; keep a margin of 1/16
            if used + changed * 17 // 16 > size:
                raise CapacityError(
                    "restoring %s from %s writes %d changed bytes through the origin, but snapshot %s has only %d "
                    "of %d bytes of copy-on-write space left and would be invalidated. Extend it first "
                    "(lvextend -L +%dM %s) and retry" % (
                        pair.source, pair.target, changed, name, int(size - used), size,
                        int(changed * 17 // 16 - (size - used)) // MiB + 1, name))


class LvmThinBackend(_SnapshotBase):
    """Thin snapshots in the origin's thin pool."""

    technology = "lvm_thin"
    origin_kind, snapshot_kind = KIND_THIN, KIND_THIN

    def _snapshot_options(self, definition, pair, rows):
        # Thin snapshots get the activation skip flag (LVM's default): they
        # stay inactive until read or restored (lvchange -ay -K).
        return ["--setactivationskip", "y"]

    def check_capacity(self, definition, pairs, replaced_pairs, volumes):
        rows, reported = self._source_rows(pairs)
        per_pool = {}
        for p, row in reported:
            if not row.get("pool_lv"):
                continue
            per_pool.setdefault("%s/%s" % (row["vg_name"], row["pool_lv"]), []).append(p.source)
        for tp in sorted(per_pool):
            prow = rows.get(tp)
            if prow is None:
                continue
            data = _float(prow.get("data_percent"))
            meta = _float(prow.get("metadata_percent"))
            size = _int(prow.get("lv_size"))
            msize = _int(prow.get("lv_metadata_size"))
            if data >= THIN_DATA_MAX_PERCENT or meta >= THIN_META_MAX_PERCENT:
                raise CapacityError(
                    "thin pool %s is too full for %d more thin snapshot(s) (%s): data %.2f%% used of %d bytes "
                    "(limit %.0f%%), metadata %.2f%% used of %d bytes (limit %.0f%%). Extend it (lvextend -L+SIZE "
                    "%s, or --poolmetadatasize) or keep fewer versions" % (
                        tp, len(per_pool[tp]), ", ".join(per_pool[tp]), data, size, THIN_DATA_MAX_PERCENT, meta,
                        msize, THIN_META_MAX_PERCENT, tp))

    restores_elsewhere = True

    def _make_elsewhere(self, definition, pair, copy, volume, tag, row):
        """A writable thin snapshot of the thin copy, active (-kn): one lvcreate."""
        self._lv("lvcreate", "-q", "-s", "-kn", "-n", split_name(volume)[1], "--addtag", tag, pair.target)

    def _check_restore_space(self, definition, pair, rows):
        """The changed blocks written back take new blocks in the thin pool."""
        changed = _diff_bytes(dm_path(pair.target), dm_path(pair.source))
        srow = rows.get(pair.source) or {}
        tp = "%s/%s" % (srow.get("vg_name"), srow.get("pool_lv"))
        prow = rows.get(tp)
        if not changed or prow is None:
            return
        size = _int(prow.get("lv_size"))
        free = int(size * (100.0 - _float(prow.get("data_percent"))) / 100.0)
        if changed > free:
            raise CapacityError("restoring %s from %s writes %d changed bytes, but thin pool %s has only %d of %d "
                                "bytes free; extend it first (lvextend -L +%dM %s) and retry" % (
                                    pair.source, pair.target, changed, tp, free, size,
                                    (changed - free) // MiB + 1, tp))


class LvmCloneBackend(_LvmBackend):
    """Full block copies onto pre-existing LVs listed in target pools."""

    technology = "lvm_clone"
    implied_targets = False
    # a clone is read-only as a copy: a release leaves it so
    writable_when_released = False

    def source_kinds(self):
        return frozenset((KIND_LV, KIND_THIN))

    def target_kinds(self, source_kind):
        return frozenset((KIND_LV, KIND_THIN))

    @staticmethod
    def tmp_name(source, version):
        vg, lv = split_name(source)
        return "%s/%s" % (vg, _hashed("%s-pctmp-v%d" % (lv, version)))

    def _foreign(self, name, row, owner):
        if owner is not None:
            return False
        if self._kind(row) not in (KIND_LV, KIND_THIN):
            return True
        if not self._active(row) or self._open(row):
            return True  # cannot check, or in use: never ours to overwrite
        path = dm_path(name)
        try:
            size = _device_size(path)
            tail = max(0, size - MiB)
            return not (_is_zero_region(path, 0, MiB) and _is_zero_region(path, tail, MiB))
        except OSError:
            return True

    def check_capacity(self, definition, pairs, replaced_pairs, volumes):
        pairs = list(pairs)
        rows = self._pair_rows(pairs)
        small = []
        for p in pairs:
            s, t = rows.get(p.source), rows.get(p.target)
            if s is None or t is None:
                continue
            if _int(t.get("lv_size")) < _int(s.get("lv_size")):
                small.append("%s is %d bytes, smaller than its source %s (%d bytes)" % (
                    p.target, _int(t.get("lv_size")), p.source, _int(s.get("lv_size"))))
        if small:
            raise CapacityError("lvm_clone targets too small: %s; give each source a target LV at least its size "
                                "(lvextend the target or list a larger one)" % "; ".join(small))
        needs = {}
        for p in pairs:
            row = rows.get(p.source)
            if row is None or self._kind(row) == KIND_THIN:
                continue
            needs.setdefault(row["vg_name"], []).append((p.source, self._snapshot_bytes(definition, row)))
        self._check_vg_space("the temporary snapshots of an lvm_clone version", needs, rows)

    def _row_valid(self, row, tags):
        attr = row.get("lv_attr") or "----------"
        if TAG_STAGED in tags:
            return False, "the copy onto it did not complete"
        if attr[1] != "r":
            return False, "it was made writable after the copy (lv_attr %s); its data may have changed" % attr
        if _tag_value(tags, TAG_SUM) is None or _tag_value(tags, TAG_SIZE) is None:
            return False, "its checksum tag is missing"
        return True, ""

    def copy_valid(self, definition, info):
        if not info.valid:
            return False
        rows = self._report([split_name(info.target)[0]])
        row = rows.get(info.target)
        if row is None:
            return False
        tags = _tags(row)
        want, size = _tag_value(tags, TAG_SUM), _int(_tag_value(tags, TAG_SIZE), -1)
        if not self._active(row):
            quietly(lambda: self._lv("lvchange", "-ay", info.target))
        try:
            n, got = sha256_of(dm_path(info.target), size)
        except OSError:
            return False
        return n == size and got == want

    def _copy_tags(self, row, keep_pool=True):
        """Our tags on ``row`` except, with keep_pool, the pool tag."""
        return [t for t in _tags(row) if t.startswith("pitcopy_") and not (keep_pool and t.startswith(TAG_POOL))]

    def plan_copies(self, definition, version, pairs):
        pool = self._checked_names(definition, pairs)
        names = set(p.source for p in pairs) | set(p.target for p in pairs)
        names |= set(self.tmp_name(p.source, version) for p in pairs)
        vgs = set(split_name(n)[0] for n in names)
        rows = self._report(vgs, extra=["-o+lv_kernel_major"])
        # Everything is checked before the first write.
        for p in pairs:
            s, t = rows.get(p.source), rows.get(p.target)
            if s is None:
                raise CopyFailed("source %s does not exist; no copy was made" % p.source, source=p.source,
                                 target=p.target)
            if t is None:
                raise CopyFailed("target %s does not exist; no copy was made" % p.target, source=p.source,
                                 target=p.target)
            owner = _tag_value(_tags(t), TAG_POOL)
            if owner != pool and self._foreign(p.target, t, owner):
                raise CopyFailed("target %s holds data this copy pool does not own (no %s%s tag and not all zero); "
                                 "it is never overwritten and no copy was made" % (p.target, TAG_POOL, pool),
                                 source=p.source, target=p.target)
            if owner is not None and owner != pool:
                raise CopyFailed("target %s belongs to copy pool %s; no copy was made" % (p.target, owner),
                                 source=p.source, target=p.target)
            if self._open(t):
                raise CopyFailed("target %s is open (mounted or in use); no copy was made" % p.target,
                                 source=p.source, target=p.target)
            if _int(t.get("lv_size")) < _int(s.get("lv_size")):
                raise CopyFailed("target %s (%s bytes) is smaller than %s (%s bytes); no copy was made" % (
                    p.target, t.get("lv_size"), p.source, s.get("lv_size")), source=p.source, target=p.target)
        tmps = [self.tmp_name(p.source, version) for p in pairs]
        stale = []
        for p, tmp in zip(pairs, tmps):
            row = rows.get(tmp)
            if row is not None:
                if not self._ours(row, pool):
                    raise CopyFailed("%s exists without this copy pool's tag; it is left alone and no copy was made"
                                     % tmp, source=p.source, target=p.target)
                stale.append(tmp)
        commands = []
        for p, tmp in zip(pairs, tmps):
            tags = _copy_tags(pool, version, p.source, TAG_TMP)
            if self._kind(rows[p.source]) == KIND_THIN:
                commands.append(["lvcreate", "-q", "-s", "--setactivationskip", "n", "-n", split_name(tmp)[1]]
                                + tags + [p.source])
            else:
                size = self._snapshot_bytes(definition, rows[p.source])
                commands.append(["lvcreate", "-q", "-s", "-L", "%db" % size, "-n", split_name(tmp)[1]] + tags
                                + [p.source])
        # staged onto the final targets: the copy is written in place
        plan = CopyPlan(definition, version, pairs, staging=[CopyPair(p.source, p.target) for p in pairs],
                        commands=commands, marks={TAG_POOL: pool, TAG_VERSION: str(version)},
                        freeze=self._freeze_list(definition, rows, [p.source for p in pairs]))
        plan.facts.update(vgs=vgs, rows=rows, stale=stale, tmps=tmps)
        return plan

    def prepare(self, plan):
        self._remove(plan.facts["stale"])

    def take_point_in_time(self, plan):
        plan.temporaries = list(plan.facts["tmps"])  # the shell may make some before one fails
        plan.facts["err"] = self._batch(plan.commands)

    def transfer(self, plan):
        """The block copies, outside the window, with three lvm processes and
        three reports whatever the number of pairs (issue 15: each lvm
        process costs more than a small copy). Every target is marked ours
        and staged (and made writable and active) before the first block of
        any is written: a kill leaves them marked as incomplete copies,
        never as the version they held. A failure puts the marks back on the
        targets no block was written to (all of them when the marking itself
        failed): they keep the version they hold; the written ones lose it
        (docs/technologies.md, "lvm_clone: a failed copy")."""
        pool, version, rows, vgs = _pool_name(plan.definition), plan.version, plan.facts["rows"], plan.facts["vgs"]
        after = self._report(vgs)
        missing = [(p, tmp) for p, tmp in zip(plan.pairs, plan.temporaries) if tmp not in after]
        if missing:
            # no target was touched: the version they hold stays valid
            p, tmp = missing[0]
            err = plan.facts["err"]
            self._clone_failed(plan, p, "temporary snapshot %s: %s" % (tmp, _said(err) or "not created"),
                               CommandError("lvcreate failed", argv=["lvm", "lvcreate"], stderr=err))
        pairs = list(zip(plan.pairs, plan.temporaries))
        plan.made = list(plan.pairs)  # the one lvm process may mark any of them before it fails
        wants = dict((p.target, self._copy_marks(pool, version, p)) for p in plan.pairs)
        err = self._batch([c for p, tmp in pairs
                           for c in self._mark_commands(p, tmp, rows[p.target], after[tmp], wants[p.target])])
        marked = self._report(vgs)
        for p, tmp in pairs:
            problem = self._not_ready(marked.get(p.target), wants[p.target]) or self._not_ready(marked.get(tmp))
            if problem:
                # no block was written yet: the targets get their marks back
                # and keep the version they hold; those that cannot are
                # released by undo()
                kept = self._unmark(plan.pairs, rows, marked, vgs)
                plan.made = [q for q in plan.pairs if q.target not in kept]
                self._clone_failed(plan, p, "%s; lvm said: %s" % (problem, _said(err) or "nothing"),
                                   CommandError("lvchange failed", argv=["lvm", "lvchange"], stderr=err))
        seals = {}
        for i, (p, tmp) in enumerate(pairs):
            try:
                length = _device_size(dm_path(tmp))
                digest = hashlib.sha256()
                _copy_blocks(dm_path(tmp), dm_path(p.target), length, digest=digest)
            except (OSError, IOError) as exc:
                # the targets not reached yet get their marks back and keep
                # the version they hold; the written ones are released
                try:
                    kept = self._unmark([q for q, _t in pairs[i + 1:]], rows, marked, vgs)
                except CommandError:
                    kept = set()
                plan.made = [q for q in plan.pairs if q.target not in kept]
                self._clone_failed(plan, p, command_reason(exc), exc)
            seals[p.target] = [TAG_SIZE + str(length), TAG_SUM + digest.hexdigest()]
        # sealed (size and checksum tags, read-only) and the temporary
        # snapshots, checked ours in the report above, removed: one process
        tmps = [tmp for p, tmp in pairs if self._ours(marked.get(tmp), pool) and TAG_TMP in _tags(marked[tmp])]
        err = self._batch([c for p in plan.pairs for c in (
            ["lvchange", "-q"] + [w for t in seals[p.target] for w in ("--addtag", t)] + [p.target],
            ["lvchange", "-q", "-p", "r", p.target])] + [["lvremove", "-y", "-q", t] for t in tmps])
        sealed = self._report(vgs)
        plan.temporaries = [t for t in plan.temporaries if t in sealed]  # release() removes what is left
        for p in plan.pairs:
            row = sealed.get(p.target)
            tags = _tags(row) if row is not None else []
            if row is None or not all(t in tags for t in seals[p.target]) or self._perm(row) != "r":
                self._clone_failed(plan, p, "its checksum tags or read-only permission were not set; lvm said: %s"
                                   % (_said(err) or "nothing"),
                                   CommandError("lvchange failed", argv=["lvm", "lvchange"], stderr=err))
        plan.staged = list(plan.staging)

    @staticmethod
    def _copy_marks(pool, version, p):
        return [TAG_POOL + pool, TAG_VERSION + str(version), TAG_SOURCE + p.source, TAG_STAGED]

    def _mark_commands(self, p, tmp, trow, tmprow, want):
        """The lvm commands that make ``p.target`` ready to be written (our
        marks, writable, active) and its temporary snapshot readable."""
        have = _tags(trow)
        stale = [t for t in self._copy_tags(trow, keep_pool=False) if t not in want]
        tags = ["lvchange", "-q"] + [w for t in stale for w in ("--deltag", t)]
        tags += [w for t in want if t not in have for w in ("--addtag", t)]
        commands = [tags + [p.target]] if len(tags) > 2 else []
        if self._perm(trow) == "r":
            commands.append(["lvchange", "-q", "-p", "rw", p.target])
        if not self._active(trow):
            commands.append(["lvchange", "-q", "-ay", p.target])
        if not self._active(tmprow):
            commands.append(["lvchange", "-q", "-ay", "-K", tmp])
        return commands

    def _unmark(self, pairs, before, now, vgs):
        """Put back the copy marks and permission the targets of ``pairs``
        had in the report ``before`` (one lvm process); returns the targets
        that have them again, read from one report."""
        def marks(row):
            return set(self._copy_tags(row, keep_pool=False))

        if not pairs:
            return set()
        commands = []
        for p in pairs:
            old, cur = before[p.target], now.get(p.target)
            if cur is None:
                continue
            change = ["lvchange", "-q"] + [w for t in sorted(marks(cur) - marks(old)) for w in ("--deltag", t)]
            change += [w for t in _tags(old) if t in marks(old) - marks(cur) for w in ("--addtag", t)]
            if len(change) > 2:
                commands.append(change + [p.target])
            if self._perm(old) == "r" and self._perm(cur) != "r":
                commands.append(["lvchange", "-q", "-p", "r", p.target])
        self._batch(commands)
        after = self._report(vgs)
        return set(p.target for p in pairs if p.target in after and marks(after[p.target]) == marks(
            before[p.target]) and self._perm(after[p.target]) == self._perm(before[p.target]))

    def _not_ready(self, row, want=None):
        """Why the LV of ``row`` cannot take part in the block copy (with
        ``want``: as its target, carrying those marks), or None."""
        if row is None:
            return "it is missing"
        name = "%s/%s" % (row.get("vg_name"), row.get("lv_name"))
        if want is not None:
            tags = _tags(row)
            if not all(t in tags for t in want):
                return "%s was not marked as this version's staged copy" % name
            if self._perm(row) != "w":
                return "%s is not writable" % name
        if not self._active(row):
            return "%s is not active" % name
        return None

    def _clone_failed(self, plan, p, reason, exc):
        if plan.made:
            outcome = ("the targets written for this version released (%s): the copies they held of the "
                       "version they replace are lost" % ", ".join(q.target for q in plan.made))
        else:
            outcome = "no target was written: they keep the version they hold"
        raise CopyFailed(
            "lvm_clone copy version %d of %s failed at %s -> %s: %s; the temporary snapshots were removed and "
            "%s; the versions of the other target pools are untouched" % (
                plan.version, _pool_name(plan.definition), p.source, p.target, reason, outcome),
            cause=exc if isinstance(exc, CommandError) else None, source=p.source, target=p.target)

    def undo(self, plan):
        """Release every target written for this version (our copy tags go,
        it is writable again): none keeps a mark saying it holds a copy."""
        targets = [q.target for q in plan.made]
        if targets:
            self._release_all(_pool_name(plan.definition), targets)

    def release(self, plan):
        if plan.temporaries:
            quietly(lambda: self._remove_tmps(_pool_name(plan.definition), plan.temporaries))

    def _remove_tmps(self, pool, tmps):
        rows = self._report(set(split_name(t)[0] for t in tmps))
        self._remove([t for t in tmps if self._ours(rows.get(t), pool) and TAG_TMP in _tags(rows[t])])

    def _release_commands(self, pool, rows, targets):
        """The lvm commands that release ``targets`` (those ``rows`` shows
        ours): our copy tags (not the pool tag) go and each is writable
        again; the LV is the user's and stays this pool's target."""
        commands = []
        for t in targets:
            row = rows.get(t)
            if not self._ours(row, pool):
                continue
            tags = self._copy_tags(row, keep_pool=True)
            if tags:
                commands.append(["lvchange", "-q"] + [w for x in tags for w in ("--deltag", x)] + [t])
            if self._perm(row) == "r":
                commands.append(["lvchange", "-q", "-p", "rw", t])
        return commands

    def _not_released(self, rows, targets):
        """Those of ``targets`` that a report taken after their release
        still shows with a copy tag or read-only."""
        return [t for t in targets if t in rows and (
            self._copy_tags(rows[t], keep_pool=True) or self._perm(rows[t]) == "r")]

    def _release_all(self, pool, targets, rows=None, also=()):
        """Release ``targets`` in one lvm process (with the commands
        ``also``); the lvm shell carries on past a failing command, so when
        it complained one report says which are not released, and those
        fail the call. Returns the report taken before."""
        vgs = set(split_name(t)[0] for t in targets)
        if rows is None:
            rows = self._report(vgs)
        err = self._batch(self._release_commands(pool, rows, targets) + list(also))
        if _lines(err):
            left = self._not_released(self._report(vgs), [t for t in targets if self._ours(rows.get(t), pool)])
            if left:
                raise CopyFailed("could not release %s: %s" % (", ".join(left), _said(err)), target=left[0])
        return rows

    def promote(self, definition, version, pairs, staged, replaced_pairs):
        pool = _pool_name(definition)
        names = set(p.target for p in pairs) | set(p.target for p in replaced_pairs or ())
        rows = self._report(set(split_name(n)[0] for n in names))
        new_targets = set(p.target for p in pairs)
        release = []
        for p in replaced_pairs or ():
            if p.target in new_targets:
                continue  # overwritten by this version
            row = rows.get(p.target)
            if self._ours(row, pool, p.identity) and _tag_value(_tags(row), TAG_VERSION) != str(version):
                release.append(p.target)
        unstage = []
        for s in staged:
            row = rows.get(s.target)
            if row is None or not self._ours(row, pool):
                raise CopyFailed("clone target %s lost this copy pool's tag before promotion" % s.target,
                                 source=s.source, target=s.target)
            tags = _tags(row)
            if _tag_value(tags, TAG_VERSION) != str(version):
                raise CopyFailed("clone target %s holds version %s, not %d" % (
                    s.target, _tag_value(tags, TAG_VERSION), version), source=s.source, target=s.target)
            if TAG_STAGED in tags:
                unstage.append(s.target)
        # one lvm process: the replaced copies released, the new ones unstaged
        commands = self._release_commands(pool, rows, release)
        commands += [["lvchange", "-q", "--deltag", TAG_STAGED, t] for t in unstage]
        err = self._batch(commands)
        if commands and _lines(err):  # the shell carries on: a report says whether it did them all
            after = self._report(set(split_name(t)[0] for t in release + unstage))
            left = [t for t in unstage if t not in after or TAG_STAGED in _tags(after[t])]
            left += self._not_released(after, release)
            if left:
                raise CopyFailed("could not clear the staged mark or release %s: %s" % (", ".join(left), _said(err)),
                                 target=left[0])

    def discard(self, definition, staged):
        """Release the staged targets and remove the temporary snapshots of
        an interrupted copy (any VG): one report, one lvm process."""
        pool = _pool_name(definition)
        rows = self._report(None)
        tmps = [n for n, r in rows.items() if self._ours(r, pool) and TAG_TMP in _tags(r)]
        self._release_all(pool, [s.target for s in staged], rows, also=[["lvremove", "-y", "-q", t] for t in tmps])

    def delete_copies(self, definition, pairs):
        """Release the copies of ``pairs`` (one report, one lvm process);
        a held copy refuses the deletion before any is released."""
        pool = _pool_name(definition)
        skipped, mine = [], []
        rows = self._report(set(split_name(p.target)[0] for p in pairs)) if pairs else {}
        for p in pairs:
            row = rows.get(p.target)
            if row is None:
                continue
            if not self._ours(row, pool, p.identity):
                skipped.append(p.target)
                continue
            self._refuse_held(row, p.target)
            mine.append(p.target)
        if mine:
            self._release_all(pool, mine, rows)
        return skipped

    # --- whole sources restored elsewhere ----------------------------------------

    restores_elsewhere = True
    elsewhere_accepted = ("an LV name prefix (letters, digits and _ . + -, not starting with '-'): each source vg/lv "
                          "becomes the new LV vg/<restore_to><lv> beside it, in the source's VG; or, with one source "
                          "restored, the new LV's 'vg/lv' name in any existing VG (the copy's VG, for one)")
    restored_tag_doc = TAG_RESTORED_FROM + "<that copy's LV UUID>:<its sha256 (the copy's tag pitcopy_sha256)>"

    def _check_elsewhere_vg(self, bad, name, pair):
        pass  # a block copy can go to any VG; _check_elsewhere_room checks that it exists

    def _restored_tag(self, copy):
        # The target LV (and its UUID) holds every later version of its target
        # pool too: its checksum says which data the new LV was made from.
        return "%s%s:%s" % (TAG_RESTORED_FROM, copy.get("lv_uuid") or "?", _tag_value(_tags(copy), TAG_SUM) or "?")

    def _image_size(self, row):
        return _int(_tag_value(_tags(row), TAG_SIZE))  # the target LV may be larger than its source

    def _image_digest(self, row):
        # a clone carries its checksum: what is dumped is checked as it is read
        return hashlib.sha256(), _tag_value(_tags(row), TAG_SUM)

    def _check_elsewhere_room(self, bad, planned):
        """Each new LV's VG exists and has room for the new LVs that do not
        exist yet (rounded up to its extents): an LV a block copy fills
        cannot be made thin without risking a full thin pool."""
        new_vgs = set(split_name(v)[0] for p, v in planned)
        vgs = self._vgs_report(new_vgs)
        rows = self._report(new_vgs | set(split_name(p.target)[0] for p, v in planned))
        needs = {}
        for p, v in planned:
            vg = split_name(v)[0]
            if vg not in vgs:
                raise bad("puts the new LV %s in VG %s, which does not exist; name it 'vg/lv' in an existing VG "
                          "(one source at a time)" % (v, vg))
            if v in rows:
                continue  # restored_elsewhere says whether it is this copy's
            extent = max(_int(vgs[vg].get("vg_extent_size"), 1), 1)
            size = _int(_tag_value(_tags(rows.get(p.target) or {}), TAG_SIZE))
            needs.setdefault(vg, []).append((v, -(-size // extent) * extent))
        for vg in sorted(needs):
            total, free = sum(b for v, b in needs[vg]), _int(vgs[vg].get("vg_free"))
            if total > free:
                raise CapacityError(
                    "the new LVs restored from lvm_clone copies need %d bytes (%.1f MiB) in VG %s (%s) but it has %d "
                    "bytes (%.1f MiB) free; nothing was changed. Extend the VG (vgextend), or name one new LV "
                    "'vg/lv' in a VG with room (the copy's VG, for one)" % (
                        total, total / float(MiB), vg, ", ".join("%s: %d" % item for item in needs[vg]), free,
                        free / float(MiB)))

    def _make_elsewhere(self, definition, pair, copy, volume, tag, row):
        """A new plain LV of the copy's size (``pitcopy_size``) in its VG,
        the copy's blocks written into it and checked against the copy's
        ``pitcopy_sha256`` as they are read; tagged restoring until then. A
        full copy: rotation may release and overwrite the copy afterwards."""
        tags = _tags(copy)
        size = _int(_tag_value(tags, TAG_SIZE))
        vg, lv = split_name(volume)
        if not self._active(copy):
            self._lv("lvchange", "-q", "-ay", pair.target)
        if row is None:
            self._lv("lvcreate", "-q", "-y", "-Wn", "-Zn", "-L", "%db" % size, "-n", lv, "--addtag", tag,
                     "--addtag", TAG_RESTORING, vg)
        elif not self._active(row):
            self._lv("lvchange", "-q", "-ay", volume)
        digest = hashlib.sha256()
        _copy_blocks(dm_path(pair.target), dm_path(volume), size, digest=digest)
        if digest.hexdigest() != _tag_value(tags, TAG_SUM):
            raise OSError("the copy %s no longer matches its %s tag: it changed behind our back (run "
                          "pitcopy.versions.verify_records)" % (pair.target, TAG_SUM))
        self._lv("lvchange", "-q", "--deltag", TAG_RESTORING, volume)

    def restore(self, definition, version, pairs):
        pool = _pool_name(definition)
        pairs = list(pairs)
        rows = self._pair_rows(pairs)  # nothing runs, and nothing is restored, for no pairs
        for p in pairs:
            validate_lv_name(p.source, "source")
            row = rows.get(p.target)
            if row is None or not self._ours(row, pool, p.identity):
                raise InvalidInput("cannot restore %s from version %d: %s holds no copy of this pool"
                                   % (p.source, version, p.target))
            tags = _restorable_tags(row, p, version)
            valid, detail = self._row_valid(row, tags)
            info = CopyInfo(target=p.target, pool=pool, source=p.source, version=version, valid=valid, detail=detail)
            if not valid or not self.copy_valid(definition, info):
                raise InvalidInput("cannot restore %s from %s: the copy is not valid (%s)"
                                   % (p.source, p.target, detail or "its data no longer matches its checksum"))
            srow = rows.get(p.source)
            if srow is None:
                raise InvalidInput("cannot restore %s: the source LV does not exist; create it (at least %s bytes) "
                                   "first" % (p.source, _tag_value(tags, TAG_SIZE)))
            if self._open(srow):
                raise InvalidInput("cannot restore %s from %s: %s is open (mounted or in use); unmount it and stop "
                                   "what uses it, then retry" % (p.source, p.target, p.source))
            if _int(srow.get("lv_size")) < _int(_tag_value(tags, TAG_SIZE)):
                raise InvalidInput("cannot restore %s: it is %s bytes, smaller than the copy (%s bytes); extend it "
                                   "first" % (p.source, srow.get("lv_size"), _tag_value(tags, TAG_SIZE)))
        done = []
        for p in pairs:
            tags = _tags(rows[p.target])
            try:
                if not self._active(rows[p.source]):
                    self._lv("lvchange", "-q", "-ay", p.source)
                _copy_blocks(dm_path(p.target), dm_path(p.source), _int(_tag_value(tags, TAG_SIZE)),
                             only_changed=True)
            except (CommandError, OSError, IOError) as exc:
                raise _restore_failed(p, done, pairs, command_reason(exc))
            done.append(p.source)
        return done


# what _backends registers for this family (each class names its technology)
BACKENDS = (LvmSnapshotBackend, LvmThinBackend, LvmCloneBackend)
