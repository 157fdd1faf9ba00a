# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenZFS backends: ``zfs_snapshot`` and ``zfs_send``.

Point in time
    ``zfs snapshot a@x b@x ...`` takes all named snapshots of one zpool in one
    transaction group: they are atomic and share one moment. Sources in the
    same zpool are therefore snapshotted by ONE command; sources in different
    zpools get one command per zpool, all inside ``window.open()`` so that the
    pre-copy hooks quiesce the applications across zpools. ZFS needs no
    filesystem freeze: a snapshot holds every completed system call. ZFS
    cannot be frozen anyway (measured on OpenZFS 2.1 / Linux 6.1: ``fsfreeze
    -f`` on a ZFS mount fails with "Operation not supported"), so
    ``consistency: freeze`` is refused; ``auto`` and ``none`` freeze nothing.

zvol device links
    ``zfs rename`` of a zvol or of a zvol snapshot (``snapdev=visible``)
    does not make udev rename ``/dev/zvol/...`` (measured); after renaming,
    the backend asks udev to re-read those devices (``udevadm trigger
    --action=change``) so that the links carry the new names.

Ownership marks
    User properties, set atomically when the copy is created
    (``zfs snapshot -o``, ``zfs receive -o``): ``pitcopy:pool`` (copy pool),
    ``pitcopy:version`` (copy version) and, on received datasets,
    ``pitcopy:source``. ZFS user properties are inherited by children and
    snapshots, so a mark counts only where it is set on the copy itself
    (property source ``local`` or ``received``): a snapshot a user takes of
    one of our targets is not ours. Nothing is destroyed without that check,
    and never with ``-r`` over something that holds snapshots we did not make.

Identity
    A copy's identity (CopyPair.identity, kept in the records) is its
    ``guid``: a snapshot or dataset destroyed and made again under the same
    name, marks and all, has another one, and ``zfs rename`` keeps it. It is
    read in the calls the backend runs anyway (``list_copies``; ``_owned``
    before every destroy), plus, for zfs_snapshot, one ``zfs get guid`` over
    all of a version's staged snapshots once they are made. Nothing is
    destroyed, overwritten or restored from whose guid is not the recorded one.

Names
    zfs_snapshot: the copy of ``pool/ds`` for implied target pool ``01`` of
    copy pool ``db`` is ``pool/ds@pitcopy-db-01``; it is staged as
    ``pool/ds@pitcopy-db-01.staging-v<version>`` and renamed on promotion.
    zfs_send: a temporary snapshot ``src@pitcopy-db-v<version>`` (destroyed
    after the send) is sent in full and received, read-only, as
    ``<target>.pitcopy-staging-v<version>``; promotion destroys the replaced
    copy (ours only) and renames the staged dataset to ``<target>``. The
    received dataset keeps the snapshot ``<target>@pitcopy-db-v<version>``;
    bytes ``written`` after it mean the copy was changed behind our back.

Restore
    zfs_snapshot: ``zfs rollback`` (never ``-r``) to the copy, which must be
    the newest snapshot (and bookmark) of its dataset; otherwise refused with
    the names of the newer snapshots, because ``zfs rollback -r`` would destroy
    them and they may be kept versions.
    zfs_send: the copy is sent back and received beside the source under a
    temporary name, then swapped in by renaming; the replaced source is then
    destroyed. Refused when the source has child datasets or snapshots that
    are not ours (they would be lost); a busy (mounted and in use) source
    makes the rename fail and leaves the source as it was.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time
from contextlib import contextmanager

from ansible_collections.pitcopy.versions.plugins.module_utils._backend import Backend
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CapacityError,
    CommandError,
    CopyFailed,
    InvalidInput,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CopyInfo,
    CopyOutcome,
    CopyPair,
    Volume,
)

ZFS = "zfs"

PROP_POOL = "pitcopy:pool"
PROP_VERSION = "pitcopy:version"
PROP_SOURCE = "pitcopy:source"
PROP_RESTORE = "pitcopy:restore"
MARK_PROPS = (PROP_POOL, PROP_VERSION, PROP_SOURCE)
# Where a property value counts as set on the dataset itself.
OWN_SOURCES = ("local", "received")

KIND_FILESYSTEM = "filesystem"
KIND_VOLUME = "volume"
KIND_SNAPSHOT = "snapshot"
#: A zfs_send target that does not exist yet but whose parent filesystem does:
#: ``zfs receive`` creates it. Eligible (nothing to overwrite).
KIND_NEW = "new_dataset"

# ZFS_MAX_DATASET_NAME_LEN is 256 including the terminating NUL.
MAX_NAME_LEN = 255
# Component characters ZFS accepts, minus the space (we refuse it: names
# travel through YAML, logs and AWX surveys).
_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_.:-]+\Z")
_POOL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]*\Z")
_COPY_POOL_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*\Z")
_ACCEPTED = ("a dataset or zvol name like 'tank/data/db': components of letters, digits and _ . : - "
             "separated by '/', starting with the zpool name (which begins with a letter)")

_STAGING_SNAP_RE = re.compile(r"\.staging-v(\d+)$")
_STAGING_DS_RE = re.compile(r"\.pitcopy-staging-v(\d+)$")

# Local properties a restored zfs_send source keeps from the dataset it
# replaces (a full send without -p carries none). User properties (with a
# colon) are kept too, except our marks.
_KEPT_PROPS = frozenset((
    "mountpoint", "canmount", "compression", "atime", "relatime", "recordsize", "quota", "refquota",
    "reservation", "refreservation", "xattr", "acltype", "aclinherit", "aclmode", "sync", "logbias",
    "primarycache", "secondarycache", "copies", "checksum", "dedup", "exec", "setuid", "devices",
    "readonly", "snapdir", "volmode", "snapdev", "dnodesize", "special_small_blocks", "redundant_metadata",
))


def _pool_name(pool):
    return getattr(pool, "name", pool)


def zpool_of(name):
    return name.split("/", 1)[0].split("@", 1)[0]


def parent_of(name):
    return name.rsplit("/", 1)[0] if "/" in name else None


def validate_dataset_name(name, what="source", allow_root=True):
    """Raise InvalidInput unless ``name`` is a plain dataset or zvol name."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("%s %r is not a ZFS dataset name; expected %s" % (what, name, _ACCEPTED))
    if len(name) > MAX_NAME_LEN:
        raise InvalidInput("%s %r is %d characters long; ZFS accepts at most %d"
                           % (what, name, len(name), MAX_NAME_LEN))
    if "@" in name or "#" in name or "%" in name:
        raise InvalidInput("%s %r names a snapshot or bookmark; expected %s" % (what, name, _ACCEPTED))
    parts = name.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidInput("%s %r has an empty, '.' or '..' component; expected %s" % (what, name, _ACCEPTED))
        if not _COMPONENT_RE.match(part):
            raise InvalidInput("%s %r contains a character ZFS or this collection does not accept "
                               "(spaces, quotes, ;, $, newlines ...); expected %s" % (what, name, _ACCEPTED))
    if not _POOL_RE.match(parts[0]):
        raise InvalidInput("%s %r does not start with a zpool name (a letter first); expected %s"
                           % (what, name, _ACCEPTED))
    if not allow_root and len(parts) < 2:
        raise InvalidInput("%s %r is a zpool's root dataset; expected a dataset below it, like '%s/copies/db'"
                           % (what, name, parts[0]))


def validate_copy_pool_name(pool):
    name = _pool_name(pool)
    if not isinstance(name, str) or not _COPY_POOL_RE.match(name) or len(name) > 64:
        raise InvalidInput("copy pool name %r cannot be part of a ZFS snapshot name; use up to 64 letters, "
                           "digits and _ . : - (not starting with . : or -)" % (name,))


def _command_stderr(exc):
    if isinstance(exc, CommandError):
        if "|" in exc.argv:
            return exc.msg
        return (exc.stderr or exc.msg).strip()
    return str(exc)


@contextmanager
def _null_window():
    yield


class _ZfsBase(Backend):
    """What both ZFS technologies share: discovery, marks, safe destroy."""

    def __init__(self, runner=None):
        super(_ZfsBase, self).__init__(runner)

    # --- commands ---------------------------------------------------------

    def _run(self, *args, **kw):
        return self.runner.run([ZFS] + list(args), **kw)

    def _get(self, props, names=None, recursive=False, types="filesystem,volume,snapshot", sources=None,
             depth=None):
        """One ``zfs get -Hp`` call: ``{name: {prop: (value, source)}}``.

        Names that do not exist are simply absent (zfs reports them on stderr
        and exits 1; any other failure raises)."""
        argv = [ZFS, "get", "-H", "-p", "-o", "name,property,value,source", "-t", types]
        if recursive:
            argv.append("-r")
        if depth is not None:
            argv += ["-d", str(depth)]
        if sources:
            argv += ["-s", sources]
        argv.append(",".join(props))
        argv += list(names or [])
        rc, out, err = self.runner.run(argv, check=False)
        if rc != 0:
            bad = [ln for ln in err.splitlines() if ln.strip() and "does not exist" not in ln]
            if bad or not names:
                raise CommandError("zfs get failed with exit status %s: %s" % (rc, (bad or [err.strip()])[-1]),
                                   argv=argv, rc=rc, stdout=out, stderr=err)
        rows = {}
        for line in out.splitlines():
            fields = line.split("\t")
            if len(fields) < 4:
                continue
            name, prop, value, source = fields[0], fields[1], fields[2], fields[3]
            rows.setdefault(name, {})[prop] = (value, source)
        return rows

    @staticmethod
    def _num(row, prop):
        value = row.get(prop, ("-", "-"))[0]
        try:
            return int(value)
        except (TypeError, ValueError):
            return 0

    @staticmethod
    def _mark(row, prop):
        """Our mark ``prop`` if set on this dataset itself (not inherited)."""
        value, source = row.get(prop, ("-", "-"))
        if value in ("-", "") or source not in OWN_SOURCES:
            return None
        return value

    # --- discovery --------------------------------------------------------

    _FACT_PROPS = ("type", "used", "available", "referenced", "volsize", "volblocksize", "recordsize",
                   "written", "mounted", PROP_POOL, PROP_VERSION, PROP_SOURCE)

    def _facts(self, names):
        """Raw facts of the zpools holding ``names``: one ``zfs get`` call."""
        zpools = sorted(set(zpool_of(n) for n in names))
        if not zpools:
            return {}
        types = "filesystem,volume,snapshot" if any("@" in n for n in names) else "filesystem,volume"
        return self._get(self._FACT_PROPS, zpools, recursive=True, types=types)

    def _volume(self, name, row, facts):
        zpool = zpool_of(name)
        root = facts.get(zpool, {})
        kind = row.get("type", ("-", "-"))[0]
        if kind == KIND_VOLUME:
            size, block = self._num(row, "volsize"), self._num(row, "volblocksize")
        elif kind == KIND_SNAPSHOT:
            size, block = self._num(row, "referenced"), 0
        else:
            size, block = self._num(row, "referenced"), self._num(row, "recordsize")
        owner = self._mark(row, PROP_POOL)
        return Volume(
            name=name, kind=kind, size=size, block_size=block,
            technologies=frozenset(("zfs_snapshot", "zfs_send")) if kind != KIND_SNAPSHOT else frozenset(),
            container=zpool, free=self._num(root, "available"), owner=owner,
            foreign_data=owner is None,
        )

    def discover(self, names):
        names = list(names)
        for n in names:
            self._validate_any(n)
        facts = self._facts(names)
        out = {}
        for n in names:
            if n in facts:
                out[n] = self._volume(n, facts[n], facts)
            elif self._new_target_allowed():
                parent = parent_of(n)
                prow = facts.get(parent) if parent else None
                if prow and prow.get("type", ("-",))[0] == KIND_FILESYSTEM:
                    zpool = zpool_of(n)
                    out[n] = Volume(
                        name=n, kind=KIND_NEW, size=0, block_size=0,
                        technologies=frozenset(("zfs_send",)), container=zpool,
                        free=self._num(facts.get(zpool, {}), "available"), owner=None, foreign_data=False,
                    )
        return out

    def _new_target_allowed(self):
        return False

    def _validate_any(self, name):
        if isinstance(name, str) and name.count("@") == 1:
            ds, snap = name.split("@")
            validate_dataset_name(ds, "volume")
            if not _COMPONENT_RE.match(snap):
                raise InvalidInput("snapshot name %r is not accepted; expected letters, digits and _ . : -" % name)
            return
        validate_dataset_name(name, "volume")

    def validate_source_name(self, name):
        validate_dataset_name(name, "source")

    def source_kinds(self):
        return frozenset((KIND_FILESYSTEM, KIND_VOLUME))

    # --- marks and safe destroy ------------------------------------------

    def _owned(self, definition, names, recursive=False):
        """``{name: row}`` for those of ``names`` that exist; rows from one call."""
        if not names:
            return {}
        # guid: the copy's identity (CopyPair.identity), in the same call
        return self._get((PROP_POOL, PROP_VERSION, PROP_SOURCE, "type", "written", "guid"), names,
                         recursive=recursive, types="filesystem,volume,snapshot")

    @staticmethod
    def _our_snapshot_name(definition, name):
        snap = name.split("@", 1)[1]
        return re.match(r"^pitcopy-%s-v\d+\Z" % re.escape(_pool_name(definition)), snap) is not None

    @staticmethod
    def _check_definition(definition):
        if getattr(definition, "consistency", "auto") == "freeze":
            raise InvalidInput(
                "consistency 'freeze' is not possible for %s: ZFS filesystems cannot be frozen (fsfreeze fails "
                "with 'Operation not supported'), and none is needed: one zfs snapshot command per zpool is "
                "atomic. Use consistency 'auto' (with pre_copy_hooks to quiesce applications) or 'none'"
                % definition.technology)
        validate_copy_pool_name(definition)

    def validate_definition(self, definition):
        # refused when the pool is defined, and again before each copy for a
        # definition saved earlier
        self._check_definition(definition)

    def _zvol_links(self, names):
        """Device nodes behind the /dev/zvol links of ``names`` (zvols only)."""
        devs = []
        for n in names:
            link = "/dev/zvol/" + n
            if os.path.islink(link):
                devs.append(os.path.realpath(link))
        return devs

    def _refresh_zvol_links(self, devs):
        """Let udev name renamed zvol devices again (see module docstring)."""
        if not devs:
            return
        try:
            self.runner.run(["udevadm", "trigger", "--action=change"] + devs, check=False)
            self.runner.run(["udevadm", "settle", "--timeout=10"], check=False)
        except CommandError:
            pass  # no udevadm: the data is fine, only the link name is stale

    def _is_ours(self, definition, row):
        return self._mark(row, PROP_POOL) == _pool_name(definition)

    @staticmethod
    def _guid(row):
        """The dataset's or snapshot's guid (its identity), None if not read."""
        value = row.get("guid", ("-", "-"))[0]
        return value if value not in ("-", "") else None

    def _is_recorded(self, row, identity):
        """Whether ``row`` is the copy whose identity a record holds: a
        snapshot destroyed and taken again under the same name, marks and
        all, has another guid. An unknown identity (an older record) or an
        unread guid is not judged here."""
        guid = self._guid(row)
        return not (identity and guid and not self.same_copy(identity, guid))

    def _destroy_snapshots(self, definition, names, identities=None):
        """Destroy those of the snapshot ``names`` that exist and carry our
        mark, and, where ``identities`` ({name: identity}) knows it, are the
        recorded snapshot. Returns the names skipped because they are not ours."""
        identities = identities or {}
        rows = self._owned(definition, names)
        skipped = []
        for n in names:
            row = rows.get(n)
            if row is None:
                continue
            if not self._is_ours(definition, row) or not self._is_recorded(row, identities.get(n)):
                skipped.append(n)
                continue
            self._run("destroy", n)
        return skipped

    def _destroy_dataset(self, definition, name, identity=None):
        """Destroy a dataset of ours with the snapshots we made in it.

        Refuses (CopyFailed) when it has child datasets or snapshots that do
        not carry our own mark: they are somebody else's; and when
        ``identity`` (a record's) is not the dataset's guid. Returns False
        when it did not exist."""
        rows = self._owned(definition, [name], recursive=True)
        if name not in rows:
            return False
        if not self._is_ours(definition, rows[name]):
            raise CopyFailed("%s does not carry this copy pool's mark (%s=%s); it was left alone"
                             % (name, PROP_POOL, _pool_name(definition)), target=name)
        if not self._is_recorded(rows[name], identity):
            raise CopyFailed("%s (guid %s) is not the copy the record names (guid %s); it was left alone"
                             % (name, self._guid(rows[name]), identity), target=name)
        foreign = []
        for child, row in rows.items():
            if child == name:
                continue
            if "@" in child and child.split("@", 1)[0] == name and (
                    self._is_ours(definition, row) or self._our_snapshot_name(definition, child)):
                continue  # made by us: the mark, or the received snapshot (it inherits the dataset's mark)
            foreign.append(child)
        if foreign:
            raise CopyFailed("%s holds %s that this copy pool did not make; it was left alone (remove or move "
                             "them, then retry)" % (name, ", ".join(sorted(foreign))), target=name)
        for child in sorted(rows):
            if child != name:
                self._run("destroy", child)
        self._run("destroy", name)
        return True


class ZfsSnapshotBackend(_ZfsBase):
    """``zfs_snapshot``: a snapshot of each source dataset or zvol."""

    technology = "zfs_snapshot"
    implied_targets = True
    identifies_copies = True  # the snapshot's guid (list_copies, create_copies)

    def size_must_fit(self):
        return False

    def target_kinds(self, source_kind):
        return frozenset((KIND_SNAPSHOT,))

    def implied_target(self, pool, target_pool, source):
        validate_copy_pool_name(pool)
        validate_dataset_name(source, "source")
        if not _COMPONENT_RE.match(str(target_pool)):
            raise InvalidInput("target pool %r cannot be part of a snapshot name" % (target_pool,))
        return "%s@pitcopy-%s-%s" % (source, _pool_name(pool), target_pool)

    def validate_target_name(self, name):
        if not isinstance(name, str) or name.count("@") != 1:
            raise InvalidInput("zfs_snapshot target %r is not a snapshot name 'dataset@pitcopy-<pool>-<nn>'"
                               % (name,))
        self._validate_any(name)

    @staticmethod
    def staging_name(target, version):
        return "%s.staging-v%d" % (target, version)

    def check_capacity(self, definition, pairs, replaced_pairs, volumes):
        self._check_definition(definition)
        # A new snapshot takes no space when made; it keeps blocks the source
        # later overwrites. Only a zpool with no room at all is refused, since
        # taking a snapshot needs a little metadata space.
        full = sorted(set(v.container for s, v in ((p.source, volumes.get(p.source)) for p in pairs)
                          if v is not None and v.free is not None and v.free <= 0))
        if full:
            raise CapacityError("zpool %s has 0 bytes available; no snapshot of copy pool %s can be taken "
                                "there" % (", ".join(full), _pool_name(definition)), zpools=full)

    def create_copies(self, definition, version, pairs, window):
        self._check_definition(definition)
        staged = []
        groups = {}
        order = []
        for p in pairs:
            validate_dataset_name(p.source, "source")
            self.validate_target_name(p.target)
            if p.target.split("@", 1)[0] != p.source:
                raise InvalidInput("zfs_snapshot target %r is not a snapshot of source %r" % (p.target, p.source))
            name = self.staging_name(p.target, version)
            staged.append(CopyPair(p.source, name))
            z = zpool_of(p.source)
            if z not in groups:
                groups[z] = []
                order.append(z)
            groups[z].append((p, name))
        self._clear_leftovers(definition, [s.target for s in staged], pairs)
        marks = ["-o", "%s=%s" % (PROP_POOL, _pool_name(definition)), "-o", "%s=%d" % (PROP_VERSION, version)]
        made = []
        failure = None
        t0 = time.monotonic()
        ctx = window.open(freeze=[]) if window is not None else _null_window()
        try:
            with ctx:
                for z in order:
                    items = groups[z]
                    try:
                        self._run("snapshot", *(marks + [item[1] for item in items]))
                    except CommandError as exc:
                        failure = (items, exc)
                        break
                    made.extend(item[1] for item in items)
        except BaseException:
            # A hook or the window itself failed: nothing of this version stays.
            self._cleanup(definition, made)
            raise
        window_ms = getattr(window, "window_ms", None) if window is not None else None
        if window_ms is None:
            window_ms = (time.monotonic() - t0) * 1000.0
        if failure is None:
            # Outside the window: what identifies each snapshot (its guid,
            # kept by the rename of promotion), one call for all of them.
            # Unread (the call failed), the engine asks list_copies later.
            try:
                rows = self._get(("guid",), [s.target for s in staged], types="snapshot")
            except CommandError:
                rows = {}
            staged = [CopyPair(s.source, s.target, self._guid(rows.get(s.target, {}))) for s in staged]
        if failure is not None:
            items, exc = failure
            self._cleanup(definition, made)
            err = _command_stderr(exc)
            pair = items[0][0]
            for p, n in items:
                if n in err or p.source in err:
                    pair = p
                    break
            raise CopyFailed(
                "zfs_snapshot copy version %d of %s failed at %s -> %s (one atomic zfs snapshot for zpool %s; "
                "no snapshot of that zpool was made, %d made in other zpools were removed): %s"
                % (version, _pool_name(definition), pair.source, pair.target, zpool_of(pair.source), len(made), err),
                cause=exc, source=pair.source, target=pair.target,
            )
        return CopyOutcome(staged=staged, window_ms=window_ms, frozen=[],
                           hooks=list(getattr(window, "hooks", []) or []))

    def _clear_leftovers(self, definition, staging, pairs):
        """Staging names left by an interrupted run of ours are removed; a
        staging name somebody else uses stops the copy before it starts."""
        rows = self._owned(definition, staging)
        for p, name in zip(pairs, staging):
            row = rows.get(name)
            if row is None:
                continue
            if not self._is_ours(definition, row):
                raise CopyFailed("staging snapshot %s exists without this copy pool's mark; it is left alone "
                                 "and no copy was made" % name, source=p.source, target=p.target)
            self._run("destroy", name)

    def _cleanup(self, definition, names):
        try:
            self._destroy_snapshots(definition, names)
        except CommandError:
            # The original failure matters more; list_copies still finds
            # the leftovers by their mark, and discard retries.
            pass

    def promote(self, definition, version, pairs, staged, replaced_pairs):
        staged_map = dict((s.source, s.target) for s in staged)
        # the guid each staged snapshot had when made (None: a journal read
        # back from the file); a rename keeps it
        staged_ids = dict((s.target, s.identity) for s in staged)
        finals = [p.target for p in pairs]
        replaced = [p.target for p in replaced_pairs or ()]
        recorded = dict((p.target, p.identity) for p in replaced_pairs or () if p.identity)
        rows = self._owned(definition, sorted(set(finals + replaced + list(staged_map.values()))))
        renamed_devs = []

        def is_staged_copy(st, row):
            """Already promoted by an earlier, interrupted call: the final
            name holds this version's snapshot, and it is the one staged
            (same guid) where that is known."""
            return self._is_ours(definition, row) and self._mark(row, PROP_VERSION) == str(version) \
                and self._is_recorded(row, staged_ids.get(st))

        for p in pairs:  # check everything before changing anything
            frow = rows.get(p.target)
            st = staged_map.get(p.source)
            if st is None or frow is None:
                continue
            if not self._is_ours(definition, frow):
                raise CopyFailed("target %s exists without this copy pool's mark; it is not overwritten"
                                 % p.target, source=p.source, target=p.target)
            if p.target in recorded and not self._is_recorded(frow, recorded[p.target]) \
                    and not (st not in rows and is_staged_copy(st, frow)):
                raise CopyFailed("target %s holds a snapshot with guid %s, not the copy the record names (guid %s); "
                                 "it is not ours and is not overwritten" % (p.target, self._guid(frow),
                                                                            recorded[p.target]),
                                 source=p.source, target=p.target)
            if st not in rows and self._mark(frow, PROP_VERSION) == str(version) and not is_staged_copy(st, frow):
                raise CopyFailed("target %s holds a snapshot numbered version %d (guid %s) that is not the copy just "
                                 "made (guid %s); it is left alone"
                                 % (p.target, version, self._guid(frow), staged_ids.get(st)),
                                 source=p.source, target=p.target)
        # Replaced copies first (ours, and the recorded snapshot only):
        # their names are the final names.
        for name in replaced:
            row = rows.get(name)
            if row is None or not self._is_ours(definition, row) or not self._is_recorded(row, recorded.get(name)):
                continue
            if self._mark(row, PROP_VERSION) == str(version) and name not in staged_map.values():
                continue  # already promoted by an earlier, interrupted call
            self._run("destroy", name)
            rows.pop(name, None)
        for p in pairs:
            st = staged_map.get(p.source)
            if st is None:
                continue
            if st not in rows:
                frow = rows.get(p.target)
                if frow is not None and is_staged_copy(st, frow):
                    continue  # renamed before a crash
                raise CopyFailed("staged copy %s of %s is missing; version %d cannot be completed"
                                 % (st, p.source, version), source=p.source, target=p.target)
            if p.target in rows:  # ours: checked before anything was changed
                self._run("destroy", p.target)
            devs = self._zvol_links([st])
            self._run("rename", st, p.target)
            renamed_devs.extend(devs)
        self._refresh_zvol_links(renamed_devs)

    def discard(self, definition, staged):
        self._destroy_snapshots(definition, [s.target for s in staged])

    def delete_copies(self, definition, pairs):
        # only the snapshot each record names (its guid), never one taken
        # again under that name, whatever marks it carries
        return self._destroy_snapshots(definition, [p.target for p in pairs],
                                       dict((p.target, p.identity) for p in pairs if p.identity))

    def list_copies(self, pool_name):
        # guid (the copy's identity) in the same call: a native property's
        # source is "-", which ``-s none`` selects (every snapshot's guid, ours
        # kept below); the marks still count only where set on the snapshot
        # itself (local, received). One zfs process, as without identities.
        rows = self._get((PROP_POOL, PROP_VERSION, "guid"), types="snapshot", sources="local,received,none")
        out = []
        for name, row in sorted(rows.items()):
            if self._mark(row, PROP_POOL) != pool_name:
                continue
            ds, snap = name.split("@", 1)
            if not snap.startswith("pitcopy-%s-" % pool_name) or re.match(r"^pitcopy-%s-v\d+$" % re.escape(pool_name), snap):
                continue  # a zfs_send temporary snapshot, not a zfs_snapshot copy
            m = _STAGING_SNAP_RE.search(snap)
            try:
                ver = int(self._mark(row, PROP_VERSION))
            except (TypeError, ValueError):
                ver = None
            out.append(CopyInfo(target=name, pool=pool_name, source=ds, version=ver, staged=bool(m),
                                valid=True, detail="", identity=self._guid(row)))
        return out

    def restore(self, definition, version, pairs):
        pairs = list(pairs)
        if not pairs:
            return []
        datasets = [p.source for p in pairs]
        rows = self._owned(definition, [p.target for p in pairs])
        for p in pairs:
            row = rows.get(p.target)
            if row is None:
                raise InvalidInput("cannot restore %s from version %d: its copy %s does not exist"
                                   % (p.source, version, p.target))
            if not self._is_ours(definition, row):
                raise InvalidInput("cannot restore %s from %s: the snapshot does not carry copy pool %s's mark"
                                   % (p.source, p.target, _pool_name(definition)))
            if not self._is_recorded(row, p.identity):
                raise InvalidInput("cannot restore %s from %s: that snapshot (guid %s) is not the copy recorded for "
                                   "version %d (guid %s); it is never restored from"
                                   % (p.source, p.target, self._guid(row), version, p.identity))
        # Newer snapshots or bookmarks make a plain rollback fail and
        # ``rollback -r`` destroy them. One listing for all datasets.
        argv = [ZFS, "list", "-H", "-p", "-o", "name,createtxg", "-t", "snapshot,bookmark", "-s", "createtxg",
                "-d", "1"] + datasets
        out = self.runner.run(argv)[1]
        txg = {}
        per_ds = {}
        for line in out.splitlines():
            f = line.split("\t")
            if len(f) < 2:
                continue
            txg[f[0]] = int(f[1])
            per_ds.setdefault(re.split(r"[@#]", f[0], 1)[0], []).append(f[0])
        for p in pairs:
            mine = txg.get(p.target)
            newer = [n for n in per_ds.get(p.source, []) if n != p.target and mine is not None and txg[n] > mine]
            if newer:
                raise InvalidInput(
                    "cannot restore %s from version %d (%s): newer snapshots or bookmarks exist (%s). "
                    "'zfs rollback -r' would destroy them and they may be kept copy versions, so this is "
                    "refused. Restore the newest version instead, delete the newer versions first "
                    "(copy_version state=absent), or read the data from %s directly (.zfs/snapshot or zfs clone)."
                    % (p.source, version, p.target, ", ".join(newer), p.target))
        done = []
        for p in pairs:
            try:
                self._run("rollback", p.target)
            except CommandError as exc:
                raise CopyFailed("restore of %s from %s failed after %d of %d sources were restored (%s): %s"
                                 % (p.source, p.target, len(done), len(pairs), ", ".join(done) or "none",
                                    _command_stderr(exc)), cause=exc, source=p.source, target=p.target)
            done.append(p.source)
        return done


class ZfsSendBackend(_ZfsBase):
    """``zfs_send``: a full send of a snapshot, received into a listed target."""

    identifies_copies = True  # the received dataset's guid (list_copies)

    technology = "zfs_send"

    def size_must_fit(self):
        # The received copy is a new dataset: what must fit is the zpool's
        # free space (check_capacity), not a pre-existing target's size.
        return False

    def target_kinds(self, source_kind):
        # A target we own of any kind is replaced as a whole; a new one is
        # created by zfs receive.
        return frozenset((KIND_NEW, KIND_FILESYSTEM, KIND_VOLUME))

    def _new_target_allowed(self):
        return True

    def _volume(self, name, row, facts):
        vol = super(ZfsSendBackend, self)._volume(name, row, facts)
        if vol.owner is not None:
            # One of our received copies: zfs receive recreates it from the
            # stream, so its record/block size is no constraint (a backup
            # zpool with recordsize=1M must not make our own copies ineligible).
            vol = Volume(name=vol.name, kind=vol.kind, size=vol.size, block_size=0,
                         technologies=vol.technologies, container=vol.container, free=vol.free,
                         owner=vol.owner, foreign_data=vol.foreign_data)
        return vol

    def validate_target_name(self, name):
        validate_dataset_name(name, "target", allow_root=False)

    @staticmethod
    def send_snapshot(definition, source, version):
        return "%s@pitcopy-%s-v%d" % (source, _pool_name(definition), version)

    @staticmethod
    def staging_name(target, version):
        return "%s.pitcopy-staging-v%d" % (target, version)

    def check_capacity(self, definition, pairs, replaced_pairs, volumes):
        self._check_definition(definition)
        pairs = list(pairs)
        if not pairs:
            return
        names = sorted(set([p.source for p in pairs] + [p.target for p in pairs]))
        facts = self._facts(names)
        need = {}
        who = {}
        for p in pairs:
            row = facts.get(p.source)
            if row is None:
                continue  # a missing source is the engine's finding, not a capacity one
            z = zpool_of(p.target)
            need[z] = need.get(z, 0) + self._num(row, "referenced")
            who.setdefault(z, []).append(p.source)
        short = []
        for z, n in sorted(need.items()):
            root = facts.get(z)
            if root is None:
                continue
            free = self._num(root, "available")
            if n > free:
                short.append((z, n, free))
        if short:
            msg = "; ".join(
                "zpool %s needs %d bytes for the copies of %s but has %d bytes available (short by %d)"
                % (z, n, ", ".join(who[z]), free, n - free) for z, n, free in short)
            raise CapacityError(
                "copy pool %s cannot fit its next zfs_send version: %s. The copies being replaced are removed "
                "only after the new version is complete, so they do not count as free space."
                % (_pool_name(definition), msg),
                capacity=[{"zpool": z, "needed": n, "available": free} for z, n, free in short])

    def create_copies(self, definition, version, pairs, window):
        self._check_definition(definition)
        pairs = list(pairs)
        pool = _pool_name(definition)
        snaps = []
        groups = {}
        order = []
        for p in pairs:
            validate_dataset_name(p.source, "source")
            self.validate_target_name(p.target)
            snap = self.send_snapshot(definition, p.source, version)
            snaps.append(snap)
            z = zpool_of(p.source)
            if z not in groups:
                groups[z] = []
                order.append(z)
            groups[z].append((p, snap))
        marks = ["-o", "%s=%s" % (PROP_POOL, pool), "-o", "%s=%d" % (PROP_VERSION, version)]
        made_snaps = []
        failure = None
        t0 = time.monotonic()
        self._quiet(lambda: self._destroy_snapshots(definition, snaps))  # ours, from an interrupted run
        # Staging names: ours from an interrupted run go, anyone else's stop
        # the copy before anything is made. One listing for all.
        stagings = [self.staging_name(p.target, version) for p in pairs]
        existing = self._owned(definition, stagings)
        for p, st in zip(pairs, stagings):
            if st in existing:
                if not self._is_ours(definition, existing[st]):
                    raise CopyFailed("staging dataset %s exists without this copy pool's mark; it is left alone "
                                     "and no copy was made" % st, source=p.source, target=p.target)
                self._destroy_dataset(definition, st)
        ctx = window.open(freeze=[]) if window is not None else _null_window()
        try:
            with ctx:
                for z in order:
                    items = groups[z]
                    try:
                        self._run("snapshot", *(marks + [item[1] for item in items]))
                    except CommandError as exc:
                        failure = (items[0][0], exc, "snapshot")
                        for p, s in items:
                            if s in _command_stderr(exc):
                                failure = (p, exc, "snapshot")
                                break
                        break
                    made_snaps.extend(item[1] for item in items)
        except BaseException:
            self._quiet(lambda: self._destroy_snapshots(definition, made_snaps))
            raise
        window_ms = getattr(window, "window_ms", None) if window is not None else None
        if window_ms is None:
            window_ms = (time.monotonic() - t0) * 1000.0
        staged = []
        made_ds = []
        if failure is None:
            # Outside the window: the point in time is the snapshots.
            # In the order of pairs, as the engine expects staged to be.
            for p, snap, st in zip(pairs, snaps, stagings):
                recv = [ZFS, "receive", "-o", "%s=%s" % (PROP_POOL, pool), "-o", "%s=%d" % (PROP_VERSION, version),
                        "-o", "%s=%s" % (PROP_SOURCE, p.source), "-o", "readonly=on", st]
                try:
                    self._send_receive([ZFS, "send", snap], recv)
                except (CommandError, CopyFailed) as exc:
                    failure = (p, exc, "send/receive")
                    # A failed full receive leaves nothing, but be sure.
                    if st not in made_ds and not isinstance(exc, CopyFailed):
                        made_ds.append(st)
                    break
                made_ds.append(st)
                staged.append(CopyPair(p.source, st))
        # The source snapshots were only the point in time; they would pin
        # space in the source zpool, so they go in every case.
        self._quiet(lambda: self._destroy_snapshots(definition, made_snaps))
        if failure is not None:
            p, exc, step = failure
            for st in made_ds:
                self._quiet(lambda st=st: self._destroy_dataset(definition, st))
            raise CopyFailed(
                "zfs_send copy version %d of %s failed at %s -> %s (%s); the copies made for this version were "
                "removed: %s" % (version, pool, p.source, p.target, step, _command_stderr(exc) if not
                                 isinstance(exc, CopyFailed) else exc.msg),
                cause=exc, source=p.source, target=p.target)
        return CopyOutcome(staged=staged, window_ms=window_ms, frozen=[],
                           hooks=list(getattr(window, "hooks", []) or []))

    def _send_receive(self, send, recv):
        """``zfs send | zfs receive`` through the runner's pipe (no shell).
        On failure the error carries both commands' stderr: when receive
        fails, send usually dies of the broken pipe and says nothing useful."""
        rc, out, err = self.runner.pipe([send, recv], check=False)
        if rc != 0:
            lines = [ln for ln in err.strip().splitlines() if ln.strip()]
            useful = [ln for ln in lines if "Broken pipe" not in ln and "signal" not in ln] or lines
            raise CommandError("zfs send | zfs receive failed with exit status %s: %s"
                               % (rc, "; ".join(useful) or "no output"),
                               argv=send + ["|"] + recv, rc=rc, stdout=out, stderr=err)

    @staticmethod
    def _quiet(fn):
        try:
            return fn()
        except (CommandError, CopyFailed):
            return None

    def promote(self, definition, version, pairs, staged, replaced_pairs):
        staged_map = dict((s.source, s.target) for s in staged)
        finals = [p.target for p in pairs]
        replaced = [p.target for p in replaced_pairs or ()]
        recorded = dict((p.target, p.identity) for p in replaced_pairs or () if p.identity)
        rows = self._owned(definition, sorted(set(finals + replaced + list(staged_map.values()))))
        renamed_devs = []
        # Check everything before changing anything.
        for p in pairs:
            st = staged_map.get(p.source)
            if st is None:
                continue
            frow = rows.get(p.target)
            if frow is not None and not self._is_ours(definition, frow):
                raise CopyFailed("target %s exists without this copy pool's mark; it is not overwritten"
                                 % p.target, source=p.source, target=p.target)
            if frow is not None and p.target in recorded and not self._is_recorded(frow, recorded[p.target]) \
                    and self._mark(frow, PROP_VERSION) != str(version):
                raise CopyFailed("target %s holds a dataset with guid %s, not the copy the record names (guid %s); "
                                 "it is not ours and is not overwritten" % (p.target, self._guid(frow),
                                                                            recorded[p.target]),
                                 source=p.source, target=p.target)
        for name in replaced:
            row = rows.get(name)
            if row is None or not self._is_ours(definition, row):
                continue
            if self._mark(row, PROP_VERSION) == str(version):
                continue  # already the new version (interrupted earlier call)
            self._destroy_dataset(definition, name, recorded.get(name))
            rows.pop(name, None)
        for p in pairs:
            st = staged_map.get(p.source)
            if st is None:
                continue
            frow = rows.get(p.target)
            if st not in rows:
                if frow is not None and self._mark(frow, PROP_VERSION) == str(version):
                    continue
                raise CopyFailed("staged copy %s of %s is missing; version %d cannot be completed"
                                 % (st, p.source, version), source=p.source, target=p.target)
            if frow is not None:
                self._destroy_dataset(definition, p.target)
            devs = self._zvol_links([st])
            self._run("rename", st, p.target)
            renamed_devs.extend(devs)
        self._refresh_zvol_links(renamed_devs)

    def discard(self, definition, staged):
        snaps = []
        for s in staged:
            self._destroy_dataset(definition, s.target)
            m = _STAGING_DS_RE.search(s.target)
            if m:
                snaps.append(self.send_snapshot(definition, s.source, int(m.group(1))))
        # Temporary source snapshots of an interrupted copy.
        self._destroy_snapshots(definition, snaps)

    def delete_copies(self, definition, pairs):
        skipped = []
        for p in pairs:
            try:
                self._destroy_dataset(definition, p.target, p.identity)
            except CopyFailed as exc:
                skipped.append(exc.msg)
        return skipped

    def list_copies(self, pool_name):
        rows = self._get((PROP_POOL, PROP_VERSION, PROP_SOURCE), types="filesystem,volume,snapshot",
                         sources="local,received")
        ours = [n for n, r in rows.items() if self._mark(r, PROP_POOL) == pool_name]
        datasets = sorted(n for n in ours if "@" not in n)
        # Written bytes and snapshots of our datasets: one more call.
        # guid: a copy's identity (CopyPair.identity), kept by zfs rename
        facts = self._get(("type", "written", "guid"), datasets, recursive=True, depth=1,
                          types="filesystem,volume,snapshot") if datasets else {}
        out = []
        for name in datasets:
            row = rows[name]
            try:
                ver = int(self._mark(row, PROP_VERSION))
            except (TypeError, ValueError):
                ver = None
            staged = bool(_STAGING_DS_RE.search(name))
            snap = "%s@pitcopy-%s-v%s" % (name, pool_name, ver)
            valid, detail = True, ""
            if name not in facts:
                valid, detail = False, "vanished while listing"
            elif snap not in facts:
                valid, detail = False, "its received snapshot %s is missing" % snap
            else:
                written = self._num(facts[name], "written")
                if written > 0:
                    valid, detail = False, "%d bytes were written to it after the received snapshot" % written
            guid = facts.get(name, {}).get("guid", ("-", "-"))[0]
            out.append(CopyInfo(target=name, pool=pool_name, source=self._mark(row, PROP_SOURCE), version=ver,
                                staged=staged, valid=valid, detail=detail,
                                identity=guid if guid not in ("-", "") else None))
        # Temporary source snapshots left by an interrupted copy: staged.
        for name in sorted(n for n in ours if "@" in n):
            ds, snap = name.split("@", 1)
            m = re.match(r"^pitcopy-%s-v(\d+)$" % re.escape(pool_name), snap)
            if m and ds not in rows:
                out.append(CopyInfo(target=name, pool=pool_name, source=ds, version=int(m.group(1)), staged=True,
                                    valid=False, detail="temporary send snapshot"))
        return out

    def copy_valid(self, definition, info):
        return info.valid

    def restore(self, definition, version, pairs):
        pairs = list(pairs)
        if not pairs:
            return []
        pool = _pool_name(definition)
        for p in pairs:
            validate_dataset_name(p.source, "source", allow_root=False)
        copies = dict((c.target, c) for c in self.list_copies(pool))
        src_rows = self._get(("type", PROP_POOL, "mounted"), [p.source for p in pairs], recursive=True,
                             types="filesystem,volume,snapshot")
        plans = []
        for p in pairs:
            c = copies.get(p.target)
            if c is None or c.staged:
                raise InvalidInput("cannot restore %s from version %d: its copy %s does not exist"
                                   % (p.source, version, p.target))
            if c.version != version:
                raise InvalidInput("cannot restore %s: %s holds version %s, not version %d"
                                   % (p.source, p.target, c.version, version))
            if not c.valid:
                raise InvalidInput("cannot restore %s from %s: the copy is not valid (%s)"
                                   % (p.source, p.target, c.detail))
            others = sorted(n for n in src_rows if n != p.source and (n.startswith(p.source + "/")
                                                                      or n.startswith(p.source + "@")))
            if others:
                raise InvalidInput(
                    "cannot restore %s from %s: the source has child datasets or snapshots (%s) that replacing "
                    "it would destroy; move or remove them first, or restore by hand with zfs send/receive"
                    % (p.source, p.target, ", ".join(others)))
            plans.append((p, p.source in src_rows))
        done = []
        for p, exists in plans:
            try:
                self._restore_one(definition, version, p, exists)
            except (CommandError, CopyFailed) as exc:
                raise CopyFailed("restore of %s from %s failed after %d of %d sources were restored (%s): %s"
                                 % (p.source, p.target, len(done), len(pairs), ", ".join(done) or "none",
                                    _command_stderr(exc) if isinstance(exc, CommandError) else exc.msg),
                                 cause=exc, source=p.source, target=p.target)
            done.append(p.source)
        return done

    def _restore_one(self, definition, version, p, exists):
        pool = _pool_name(definition)
        snap = "%s@pitcopy-%s-v%d" % (p.target, pool, version)
        tmp = "%s.pitcopy-restore" % p.source
        old = "%s.pitcopy-replaced" % p.source
        keep = []
        if exists:
            props = self._get(("all",), [p.source], types="filesystem,volume", sources="local")
            for prop, (value, _src) in sorted(props.get(p.source, {}).items()):
                if prop in _KEPT_PROPS or (":" in prop and not prop.startswith("pitcopy:")):
                    keep += ["-o", "%s=%s" % (prop, value)]
        for leftover in (tmp, old):
            if self._owned(definition, [leftover]):
                raise CopyFailed("%s exists (left by an interrupted restore?); remove it after checking its data"
                                 % leftover, source=p.source, target=p.target)
        recv = [ZFS, "receive", "-u", "-o", "%s=%s" % (PROP_POOL, pool), "-o", "%s=%d" % (PROP_VERSION, version),
                "-o", "%s=%s" % (PROP_RESTORE, p.target)] + keep + [tmp if exists else p.source]
        self._send_receive([ZFS, "send", snap], recv)
        new = tmp if exists else p.source
        if exists:
            srow = {}
            try:
                srow = self._get(("type", "mounted"), [p.source], types="filesystem,volume").get(p.source, {})
                if srow.get("mounted", ("no",))[0] == "yes":
                    # Fails on a busy filesystem: the source stays as it was.
                    self._run("unmount", p.source)
                self._run("rename", p.source, old)
            except CommandError:
                self._quiet(lambda: self._destroy_dataset(definition, tmp))
                if srow.get("mounted", ("no",))[0] == "yes":
                    self._quiet(lambda: self._run("mount", p.source))
                raise
            devs = self._zvol_links([tmp])
            self._run("rename", tmp, p.source)
            self._refresh_zvol_links(devs)
            new = p.source
        # The restored dataset is the user's again: our marks and the
        # received snapshot go.
        self._destroy_snapshots(definition, ["%s@pitcopy-%s-v%d" % (new, pool, version)])
        for prop in (PROP_POOL, PROP_VERSION, PROP_RESTORE):
            self._run("inherit", prop, new)
        rows = self._get(("type", "canmount", "mountpoint", "mounted"), [new], types="filesystem,volume")
        row = rows.get(new, {})
        if row.get("type", ("-",))[0] == KIND_FILESYSTEM and row.get("canmount", ("off",))[0] == "on" \
                and row.get("mountpoint", ("none",))[0] not in ("none", "legacy") \
                and row.get("mounted", ("no",))[0] != "yes":
            self._run("mount", new)
        if exists:
            # The replaced data, which the user asked to replace: it has no
            # snapshots or children (checked above), so a plain destroy.
            self._run("destroy", old)
