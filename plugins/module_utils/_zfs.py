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

Batches
    Every ``zfs`` process costs (in an emulated guest up to a second), so a
    phase that concerns many snapshots of one name in one zpool runs a
    constant number of processes per zpool, not one per dataset, where that
    is cheaper: ``zfs destroy -r <ancestor>@<name>`` and ``zfs rename -r
    <ancestor>@<staged> <ancestor>@<final>`` each change every snapshot of
    that name below the datasets' deepest common ancestor in ONE
    transaction group (all or nothing: a held snapshot or a name taken makes
    the whole command fail and change nothing). They are used only after
    one listing of the snapshots below that ancestor shows that the
    snapshots of that name there are exactly ours, already checked (marks,
    recorded guid): a snapshot of that name that is not ours, anywhere
    below, makes the batch fall back to one command per snapshot, as does
    a batch that would not save processes (fewer than 3 snapshots).
    ``zfs rename -r`` needs the ancestor itself to hold the old name: when
    it is no source, an anchor snapshot ``<ancestor>@<staged>`` (marked
    ``pitcopy:anchor=<copy pool>``, no ``pitcopy:pool``: it is no copy) is
    taken for the rename and destroyed after it; one a killed run left is
    recognised by that mark and removed by the next promotion. Channel
    programs (``zfs program``) were measured as an alternative: OpenZFS 2.1
    has ``zfs.sync.destroy`` but no snapshot rename (``rename_snapshot``
    came with 2.2), and the recursive commands need neither a version check
    nor Lua.

Views
    A read is reused until the next command that is not one of our reads:
    the snapshot rows ``list_copies`` read answer the stale-staging check
    of the copy that follows it, and the one read after the point in time
    (the staged snapshots' guids, for zfs_snapshot together with every
    snapshot below the sources' common ancestor) answers the promotion's
    checks and its batches' listing. Whether anything else ran is the
    runner's count of processes (``processes()``): any other command, ours
    or a hook's, ends the view; a runner that does not count keeps none.
    Between a view and its use only reads of ours and writes of the state
    file happen, under the pool's lock; what another program does on the
    zpool in those milliseconds it could do between a fresh read and the
    command too, and the atomic commands (a name taken, a hold) still fail
    whole. Measured: 3 processes fewer per zfs_snapshot version (12 -> 9).

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
    after the send, kept as a bookmark: see "Incremental") is sent and
    received, read-only, as ``<target>.pitcopy-staging-v<version>``;
    promotion destroys the replaced copy (ours only) and renames the staged
    dataset to ``<target>``. The received dataset keeps the snapshot
    ``<target>@pitcopy-db-v<version>``; bytes ``written`` after it mean the
    copy was changed behind our back.

Incremental (zfs_send)
    After a send, its snapshot is kept on the source as the bookmark
    ``src#pitcopy-db-v<version>`` (a bookmark pins no data; ``zfs send -i``
    accepts it as the incremental source). Bookmarks take no user
    properties, so the mark of a base is its name, in the same
    ``pitcopy-<copy pool>-v<n>`` namespace as our snapshots, and its
    identity is its guid: the guid of the snapshot it was made from, which
    the received snapshot ``<target>@pitcopy-db-v<n>`` carries too. The
    engine chooses the base from the records: the version the target pool
    holds (the one the new version replaces). The backend sends ``zfs send
    -i src#pitcopy-db-v<m> src@pitcopy-db-v<n>`` when that copy is at the
    same target name, is ours, of version m, the recorded guid, unwritten,
    its received snapshot exists and the bookmark's guid equals that
    snapshot's; otherwise (first copy, base gone, copy changed, another
    target) in full, with ``base_version`` null. Every pair's stream is
    counted as it passes (``bytes_sent``).

    The all-or-nothing transaction stays as for full sends: the
    incremental stream is received under the staging name as a clone of
    the held copy's snapshot (``zfs receive -o origin=<target>@...-v<m>``),
    so the copy of version m is untouched until promotion and undo or a
    rollback destroys only the clone. Promotion runs ``zfs promote`` on the
    clone (the replaced copy becomes the dependent one), destroys the
    replaced copy, renames the clone to ``<target>`` and destroys the
    earlier version's snapshot the promotion moved into it. A promotion
    killed half way is finished by the next promote (the engine's repair of
    a "committing" journal); a staged clone is never promoted before that
    phase, so a rollback never meets a promoted one.

    Bookmarks of versions no replication record keeps on that source are
    destroyed after each commit, deletion, pool change and repair
    (release_bases); verify_records reports a kept copy without its base
    (``base_missing``: its next copy is sent in full) and a base no kept
    version needs (``unneeded_base``). A restored source is a new dataset:
    its old bookmarks went with the dataset it replaced, so its next copies
    are full.

    Capacity: an incremental copy is checked like a full one (the source's
    referenced bytes must fit in the target zpool's free space). Its real
    need is the blocks written since the base (the clone shares the rest
    with the copy it replaces), but the check stays conservative: the base
    is only known usable once the storage was read at transfer time, and a
    full send is the fallback.

Encryption and transfer options (zfs_send, copy_pool ``transfer``)
    An encrypted source is sent raw (``zfs send -w``) under ``raw: auto``
    (the default): the stream carries the encrypted blocks and the wrapped
    key, never the key itself, so nothing is decrypted and the key never
    leaves the source host; the copy is an encryption root of its own,
    encrypted like the source, with ``keystatus unavailable`` until the
    operator runs ``zfs load-key`` with the source's key. ``raw: true``
    sends every source raw (for an unencrypted one ``-w`` means ``-Lec``);
    ``raw: false`` never, and an encrypted source is then refused before
    anything is made (its data would arrive decrypted; re-encryption under
    a target key is not supported). A copy received before raw sends (not
    encrypted) cannot take a raw incremental stream: the next copy of that
    source is full, and says why. ``compressed`` adds ``-c``,
    ``large_block`` ``-L``; ``filter`` is an argv run between send and
    receive (resolved to a path before anything is made); the stream is
    counted before it.
    Restore: an encrypted copy is sent back raw. In place, the restored
    source has the source's encryption and key, as its own encryption root;
    when the source was an encryption root with a ``file://`` keylocation,
    the restored one gets it and its key is loaded, so it mounts as before.
    Otherwise (a ``prompt`` key, or a source that inherited its key from
    its parent) it stays unmounted: ``zfs load-key`` (with the key of the
    source's old encryption root), then ``zfs mount``; ``zfs change-key -i``
    makes it inherit its parent's key again. Restored elsewhere, the new
    dataset likewise waits for ``zfs load-key``.

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
    CopyScope,
    Volume,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import command_reason, quietly

ZFS = "zfs"

PROP_POOL = "pitcopy:pool"
PROP_VERSION = "pitcopy:version"
PROP_SOURCE = "pitcopy:source"
PROP_RESTORE = "pitcopy:restore"
#: the mark of a promotion's anchor snapshot (see "Batches" above): the copy
#: pool's name, on a snapshot that is no copy (it has no pitcopy:pool)
PROP_ANCHOR = "pitcopy:anchor"
MARK_PROPS = (PROP_POOL, PROP_VERSION, PROP_SOURCE)
#: what ``_owned`` reads: the marks, type, bytes written since, and the guid
#: (the copy's identity)
OWNED_PROPS = (PROP_POOL, PROP_VERSION, PROP_SOURCE, "type", "written", "guid")
#: a dataset restored elsewhere (copy_version state=restored, restore_to
#: without paths): the guid of the snapshot it was received from. The
#: user's dataset, no copy; the mark only lets a run that is repeated, or
#: killed and finished by repair, know it as made from that copy.
PROP_RESTORED_FROM = "pitcopy:restored_from"
#: beside it until the dataset is finished (see "Restored elsewhere" below)
PROP_RESTORING = "pitcopy:restoring"
#: PROP_RESTORING's value on a dataset being received from media
MEDIA_RESTORING = "media"
# Where a property value counts as set on the dataset itself.
OWN_SOURCES = ("local", "received")
#: the user hold (``zfs hold``) of a held copy version's snapshot
HOLD_TAG = "pitcopy"

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


#: the fewest snapshots of one name in one zpool that a recursive command
#: (and the listing that proves it safe) handles: below, one command per
#: snapshot costs no more processes
BATCH_MIN = 3


def common_dataset(names):
    """The deepest dataset that is, or is an ancestor of, the dataset of
    every one of ``names`` (snapshot or dataset names of one zpool)."""
    common = None
    for name in names:
        parts = name.split("@", 1)[0].split("/")
        if common is None:
            common = parts
            continue
        i = 0
        while i < len(common) and i < len(parts) and common[i] == parts[i]:
            i += 1
        common = common[:i]
    return "/".join(common or [])


def snapshot_groups(names):
    """``names`` (snapshots) by (zpool, snapshot name), in first-seen order:
    [((zpool, snap), [names])]."""
    groups = {}
    order = []
    for name in names:
        key = (zpool_of(name), name.split("@", 1)[1])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(name)
    return [(key, groups[key]) for key in order]


class _SnapshotView(object):
    """What one ``zfs get`` showed of snapshots (see "Views"): ``rows`` with
    ``props``, and which snapshots it covers (a covered name absent from
    ``rows`` does not exist): those of ``datasets`` (depth 1), every one at
    or below ``roots``, the exact ``names``, or all (``everything``).
    ``processes``: the runner's count after the read, kept current by
    further reads; any other command makes it stale."""

    def __init__(self, rows, props, processes, datasets=(), roots=(), names=(), everything=False):
        self.rows = rows
        self.props = frozenset(props)
        self.processes = processes
        self.datasets = frozenset(datasets)
        self.roots = tuple(roots)
        self.names = frozenset(names)
        self.everything = everything

    @staticmethod
    def _at_or_below(dataset, ancestor):
        return dataset == ancestor or dataset.startswith(ancestor + "/")

    def covers_tree(self, ancestor):
        return self.everything or any(self._at_or_below(ancestor, r) for r in self.roots)

    def covers(self, name):
        if "@" not in name:
            return False  # the views hold snapshots only
        dataset = name.split("@", 1)[0]
        return name in self.names or dataset in self.datasets or self.covers_tree(dataset)

    def tree(self, ancestor):
        return dict((n, row) for n, row in self.rows.items() if self._at_or_below(n.split("@", 1)[0], ancestor))


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


def scope_datasets(scope, parents=False):
    """The datasets whose own snapshots, or with ``parents`` whose children
    too (a zfs_send copy and its staged twin are siblings of the target), can
    hold the pool's copies (CopyScope): sorted, each a valid dataset name,
    since they go to ``zfs get -r -d 1``."""
    out = set()
    for name in scope.sources:
        out.add(name.partition("@")[0])
    for name in tuple(scope.targets) + tuple(scope.staged):
        ds = name.partition("@")[0]
        out.add(ds.rsplit("/", 1)[0] if parents and "/" in ds else ds)
    valid = []
    for ds in sorted(out):
        try:
            validate_dataset_name(ds, "dataset")
        except InvalidInput:
            continue  # a hand-edited record: not a place to look
        valid.append(ds)
    return valid


def validate_copy_pool_name(pool):
    name = _pool_name(pool)
    if not isinstance(name, str) or not _COPY_POOL_RE.match(name) or len(name) > 64:
        raise InvalidInput("copy pool name %r cannot be part of a ZFS snapshot name; use up to 64 letters, "
                           "digits and _ . : - (not starting with . : or -)" % (name,))


class _ZfsBase(Backend):
    """What both ZFS technologies share: discovery, marks, safe destroy."""

    pool_mark_is_a_copy = True  # our marks are set only on the copies we make

    def __init__(self, runner=None):
        super(_ZfsBase, self).__init__(runner)

    # --- commands ---------------------------------------------------------

    def _run(self, *args, **kw):
        return self.runner.run([ZFS] + list(args), **kw)

    # --- views (see "Views") ---------------------------------------------

    #: the last read kept for reuse, or None
    _view = None

    def _processes(self):
        count = getattr(self.runner, "processes", None)
        return count() if count is not None else None

    def _keep_view(self, rows, props, **cover):
        """Keep ``rows`` (just read) as the view: see _SnapshotView."""
        count = self._processes()
        self._view = _SnapshotView(rows, props, count, **cover) if count is not None else None

    def _viewed(self, props, names=(), tree=None):
        """The view's rows of the snapshots ``names`` (or of every snapshot
        at or below dataset ``tree``), when it holds ``props`` for all of
        them and nothing but our reads ran since it was read; else None."""
        view = self._view
        if view is None:
            return None
        if view.processes != self._processes():
            self._view = None
            return None
        if not set(props) <= view.props:
            return None
        if tree is not None:
            return view.tree(tree) if view.covers_tree(tree) else None
        if not all(view.covers(n) for n in names):
            return None
        return dict((n, view.rows[n]) for n in names if n in view.rows)

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
        before = self._processes()
        try:
            rc, out, err = self.runner.run(argv, check=False)
        finally:
            # a read keeps a view current (see "Views")
            view = self._view
            if view is not None and before is not None and view.processes == before:
                view.processes = self._processes()
        if rc != 0:
            # a missing bookmark is "no such pool or dataset" (OpenZFS 2.1)
            gone = ("does not exist", "no such pool or dataset") if "bookmark" in types else ("does not exist",)
            bad = [ln for ln in err.splitlines() if ln.strip() and not any(g in ln for g in gone)]
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

    def _owned(self, definition, names, recursive=False, need=OWNED_PROPS):
        """``{name: row}`` for those of ``names`` that exist; rows from one
        call, or from the view when it holds the ``need``ed properties of
        all of them (see "Views")."""
        if not names:
            return {}
        rows = None if recursive else self._viewed(need, names)
        if rows is not None:
            return rows
        # guid: the copy's identity (CopyPair.identity), in the same call
        return self._get(OWNED_PROPS, names, recursive=recursive, types="filesystem,volume,snapshot")

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

    @staticmethod
    def _snapshot_commands(marks, items):
        """One atomic ``zfs snapshot`` per zpool of ``items`` ([(source,
        snapshot name)]), zpools in first-seen order."""
        groups = {}
        order = []
        for source, name in items:
            z = zpool_of(source)
            if z not in groups:
                groups[z] = []
                order.append(z)
            groups[z].append(name)
        opts = []
        for prop in (PROP_POOL, PROP_VERSION):
            opts += ["-o", "%s=%s" % (prop, marks[prop])]
        return [[ZFS, "snapshot"] + opts + groups[z] for z in order]

    def _snapshot_batch(self, plan, made, by_name, failed, match_source=True):
        """Run the plan's ``zfs snapshot`` commands, adding each one's
        snapshots to ``made`` (CopyPair(source, snapshot)). When one fails,
        raise CopyFailed(``failed``(pair, stderr), cause) naming the pair
        whose snapshot (or, with ``match_source``, source) the error names."""
        for argv in plan.commands:
            names = [a for a in argv if a in by_name]
            try:
                self.runner.run(argv)
            except CommandError as exc:
                err = command_reason(exc)
                pair = by_name[names[0]]
                for n in names:
                    if n in err or (match_source and by_name[n].source in err):
                        pair = by_name[n]
                        break
                raise CopyFailed(failed(pair, err), cause=exc, source=pair.source, target=pair.target)
            made.extend(CopyPair(by_name[n].source, n) for n in names)

    def _stale_staging(self, definition, pairs, staging):
        """Those of the ``staging`` names (one per pair) that an interrupted
        run of ours left, to remove; a staging name somebody else uses stops
        the copy before it starts (CopyFailed). One listing for all."""
        rows = self._owned(definition, [s.target for s in staging], need=(PROP_POOL,))
        stale = []
        for p, s in zip(pairs, staging):
            row = rows.get(s.target)
            if row is None:
                continue
            if not self._is_ours(definition, row):
                raise CopyFailed("staging %s %s exists without this copy pool's mark; it is left alone and no copy "
                                 "was made" % ("snapshot" if "@" in s.target else "dataset", s.target),
                                 source=p.source, target=p.target)
            stale.append(s.target)
        return stale

    def _promotion(self, definition, pairs, staged, replaced_pairs):
        """What a promotion starts from: the staged name of each source, the
        replaced names, the recorded identity of each replaced copy, and the
        rows (ours or not) of every name involved that exists."""
        staged_map = dict((s.source, s.target) for s in staged)
        replaced = [p.target for p in replaced_pairs or ()]
        recorded = dict((p.target, p.identity) for p in replaced_pairs or () if p.identity)
        names = set([p.target for p in pairs] + replaced + list(staged_map.values()))
        return staged_map, replaced, recorded, self._owned(definition, sorted(names))

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
        doomed = []
        for n in names:
            row = rows.get(n)
            if row is None:
                continue
            if not self._is_ours(definition, row) or not self._is_recorded(row, identities.get(n)):
                skipped.append(n)
                continue
            doomed.append(n)
        self._destroy_checked(doomed)
        return skipped

    def _snapshot_tree(self, ancestor):
        """Every snapshot at or below ``ancestor`` with its anchor mark: one
        ``zfs get -r`` (or the view), {name: row}."""
        rows = self._viewed((PROP_ANCHOR,), tree=ancestor)
        if rows is not None:
            return rows
        return self._get((PROP_ANCHOR,), [ancestor], recursive=True, types="snapshot")

    @staticmethod
    def _named(tree, snap):
        """The snapshots of ``tree`` called ``snap``."""
        return set(n for n in tree if n.split("@", 1)[1] == snap)

    def _destroy_checked(self, names):
        """Destroy the snapshots ``names``, each already checked to be ours
        and the recorded one: per zpool and snapshot name, one ``zfs destroy
        -r`` when they are all the snapshots of that name below their common
        ancestor (see "Batches"), else one ``zfs destroy`` each."""
        for (_zpool, snap), group in snapshot_groups(names):
            if len(group) >= BATCH_MIN:
                ancestor = common_dataset(group)
                if self._named(self._snapshot_tree(ancestor), snap) == set(group):
                    self._run("destroy", "-r", "%s@%s" % (ancestor, snap))
                    continue
            for n in group:
                self._run("destroy", n)

    # --- holds ------------------------------------------------------------------

    def _held_snapshot(self, definition, version, pair):
        """The snapshot a hold of ``pair``'s copy of ``version`` is put on."""
        raise NotImplementedError

    def _hold_rows(self, definition, version, pairs):
        """(pair, snapshot, tags) of the pairs whose copy is ours (mark,
        recorded guid) and whose snapshot exists; ``tags``: the snapshot's
        holds (one ``zfs holds`` for all)."""
        if not pairs:
            return []
        rows = self._owned(definition, sorted(set(p.target for p in pairs)))
        found = []
        for p in pairs:
            row = rows.get(p.target)
            if row is None or not self._is_ours(definition, row) or not self._is_recorded(row, p.identity):
                continue
            found.append((p, self._held_snapshot(definition, version, p)))
        snaps = self._get(("type",), [s for _p, s in found], types="snapshot") if found else {}
        found = [(p, s) for p, s in found if s in snaps]
        tags = {}
        if found:
            rc, out, err = self._run("holds", "-H", *[s for _p, s in found], check=False)
            if rc != 0:
                raise CommandError("zfs holds failed with exit status %s: %s" % (rc, err.strip()),
                                   argv=[ZFS, "holds", "-H"] + [s for _p, s in found], rc=rc, stdout=out, stderr=err)
            for line in out.splitlines():
                fields = line.split("\t")
                if len(fields) >= 2:
                    tags.setdefault(fields[0].strip(), set()).add(fields[1].strip())
        return [(p, s, tags.get(s, set())) for p, s in found]

    def hold_copies(self, definition, version, pairs, held=True):
        """``zfs hold pitcopy <snapshot>``: a hand-typed ``zfs destroy`` of
        the snapshot (or ``-r`` of its dataset) then refuses ("dataset is
        busy") until ``zfs release pitcopy`` (state=released)."""
        for p, snap, tags in self._hold_rows(definition, version, pairs):
            if held and HOLD_TAG not in tags:
                self._run("hold", HOLD_TAG, snap)
            elif not held and HOLD_TAG in tags:
                self._run("release", HOLD_TAG, snap)

    def unenforced_holds(self, definition, version, pairs):
        return [(p, "snapshot %s has no zfs hold %s" % (snap, HOLD_TAG))
                for p, snap, tags in self._hold_rows(definition, version, pairs) if HOLD_TAG not in tags]

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

    def _send_receive(self, send, recv, meter=None, filt=None):
        """``zfs send [| filter] | zfs receive`` through the runner's pipe
        (no shell; ``filt``: the copy pool's transfer.filter, resolved). On
        failure the error carries every command's stderr: when receive
        fails, send usually dies of the broken pipe and says nothing useful.
        The meter counts the stream as send wrote it (before the filter)."""
        argvs = [send] + ([list(filt)] if filt else []) + [recv]
        if meter is not None:
            rc, out, err = self.runner.pipe(argvs, check=False, meter=meter)
        else:
            rc, out, err = self.runner.pipe(argvs, check=False)
        if rc != 0:
            lines = [ln for ln in err.strip().splitlines() if ln.strip()]
            useful = [ln for ln in lines if "Broken pipe" not in ln and "signal" not in ln] or lines
            raise CommandError("zfs send | %szfs receive failed with exit status %s: %s"
                               % ("%s | " % os.path.basename(filt[0]) if filt else "", rc,
                                  "; ".join(useful) or "no output"),
                               argv=send + ["|"] + (list(filt) + ["|"] if filt else []) + recv, rc=rc, stdout=out,
                               stderr=err)

    # --- encryption (see "Encryption" in the module docstring) -------------

    _CRYPT_PROPS = ("encryption", "keystatus", "keylocation", "encryptionroot")

    def _crypt_rows(self, names):
        """``{name: row}`` of the encryption properties of ``names`` (those
        that exist): one ``zfs get``."""
        names = sorted(set(n for n in names if n))
        return self._get(self._CRYPT_PROPS, names, types="filesystem,volume,snapshot") if names else {}

    @staticmethod
    def _encrypted(row):
        """Whether a ``zfs get`` row says the dataset is encrypted (a row
        without the property, as OpenZFS before 0.8 gives, is not)."""
        return row.get("encryption", ("off", "-"))[0] not in ("off", "-", "")

    # --- whole sources restored elsewhere (issue 17, item 4) ----------------------
    #
    # Each source's copy is sent in full (``zfs send <the version's
    # snapshot> | zfs receive -u``) into a NEW dataset <restore_to>/<name>.
    # Not ``zfs clone``: a clone pins the copy's snapshot, so rotation could
    # no longer destroy it, and ``zfs promote`` of the clone would take the
    # pool's snapshots away from the copy. A send without -p carries no
    # property; the receive sets ours in the same step: restored_from (the
    # guid of the snapshot sent) and restoring (unfinished). So a run killed
    # anywhere leaves nothing at the name (a killed receive without -s
    # leaves no partial dataset) or a dataset carrying both marks. Then the
    # snapshot the receive made goes (it bears the copy's snapshot name),
    # the dataset is mounted, and restoring goes last: a dataset with
    # restored_from=<guid> and no restoring is finished; one with both is
    # our unfinished one, destroyed and made again; anything else at the
    # name is somebody's and refused.

    def _sent_snapshot(self, definition, version, pair):
        """The snapshot whose full stream restores ``pair``'s copy of
        ``version`` (the copy itself, or the snapshot it was received as)."""
        raise NotImplementedError

    # encryption: an encrypted copy is sent back raw (see "Encryption")
    _ELSEWHERE_PROPS = ("type", "guid", PROP_POOL, PROP_VERSION, PROP_RESTORED_FROM, PROP_RESTORING, "encryption")

    def _copy_unusable(self, definition, version, pair, snap, rows):
        """Why ``pair``'s copy of ``version`` cannot be sent (None: it can),
        from ``rows`` holding ``pair.target`` and ``snap``."""
        row = rows.get(pair.target)
        if row is None or not self._is_ours(definition, row):
            return "its copy %s does not exist or does not carry copy pool %s's mark (deleted behind our back?)" % (
                pair.target, _pool_name(definition))
        if self._mark(row, PROP_VERSION) != str(version):
            return "its copy %s holds version %s" % (pair.target, self._mark(row, PROP_VERSION))
        if not self._is_recorded(row, pair.identity):
            return "%s is not the copy recorded (guid %s, recorded %s)" % (
                pair.target, self._guid(row), pair.identity)
        if snap not in rows or self._guid(rows[snap]) is None:
            return "the snapshot %s of its copy is missing" % snap
        return None

    def restore_elsewhere_volumes(self, definition, version, pairs, restore_to):
        """``restore_to`` is the name of an existing filesystem dataset, in
        any zpool of this host, outside the pool's sources and targets; each
        source ``<zpool>/.../<name>`` becomes ``<restore_to>/<name>`` (the
        whole name with ``/`` as ``_`` where two sources share one, as for
        mounts)."""
        snaps = [self._sent_snapshot(definition, version, p) for p in pairs]
        news, rows = self._new_datasets(definition, [p.source for p in pairs], [p.target for p in pairs],
                                        restore_to, "received from its copy", [p.target for p in pairs] + snaps)
        for p, snap in zip(pairs, snaps):
            why = self._copy_unusable(definition, version, p, snap, rows)
            if why:
                raise InvalidInput("copy pool %s: cannot restore version %d of %s: %s; nothing was changed. Run "
                                   "pitcopy.versions.verify_records to see the findings" % (
                                       definition.name, version, p.source, why))
        return [(p, new) for p, (dummy, new) in zip(pairs, news)]

    def _new_datasets(self, definition, sources, copies, restore_to, made_from, read=()):
        """The restore_to rules of whole sources restored as new datasets
        (elsewhere from their copies, or from media): ``[(source, new
        dataset)]`` and the rows of one ``zfs get`` of ``restore_to`` and
        ``read``; InvalidInput naming the value otherwise. ``copies``: the
        pool's copies besides its definition's targets (restore_to may not
        be one of them either)."""
        from ansible_collections.pitcopy.versions.plugins.module_utils._browse import mount_name

        accepted = ("the name of an existing ZFS filesystem dataset (not a path, not a zvol), in any zpool of this "
                    "host, outside the sources and targets of copy pool %s; each source <zpool>/.../<name> becomes "
                    "the new dataset <restore_to>/<name>, %s" % (definition.name, made_from))

        bad = restore_to_refusal(definition, restore_to, accepted)

        if not isinstance(restore_to, str) or not restore_to:
            raise bad("is empty")
        if restore_to.startswith("/"):
            raise bad("is a path, not a dataset name")
        try:
            validate_dataset_name(restore_to, "restore_to")
        except InvalidInput as exc:
            raise bad("is not a dataset name (%s)" % exc.msg)
        # the datasets of the pool: sources, copies, and what a copy or a
        # restore in place makes beside them (<name>.pitcopy-...)
        taken = set(list(definition.sources) + list(sources))
        targets = set(t.partition("@")[0] for tp in definition.target_pools for t in tp.volumes
                      if isinstance(t, str))
        targets.update(c.partition("@")[0] for c in copies)
        for name, what in sorted([(s, "source") for s in taken] + [(t, "target") for t in targets - taken]):
            if restore_to == name:
                raise bad("is %s %s of the pool itself" % (what, name))
            if restore_to.startswith(name + "/"):
                raise bad("is inside %s %s of the pool" % (what, name))
            if restore_to.startswith(name + ".pitcopy-"):
                raise bad("is inside a dataset pitcopy makes beside %s %s while copying or restoring" % (what, name))
        names = list(sources)
        out = []
        for source in names:
            new = "%s/%s" % (restore_to, mount_name(source, names))
            try:
                validate_dataset_name(new, "the new dataset")
            except InvalidInput as exc:
                raise bad("makes a dataset name ZFS does not accept for %s (%s)" % (source, exc.msg))
            if new in taken or new in targets:
                raise bad("makes %s for %s, which is a %s of the pool" % (
                    new, source, "source" if new in taken else "target"))
            out.append((source, new))
        rows = self._get(self._ELSEWHERE_PROPS, sorted(set([restore_to] + list(read))))
        kind = rows.get(restore_to, {}).get("type", ("-",))[0]
        if restore_to not in rows:
            raise bad("does not exist (create it with zfs create: it is the parent of the new datasets)")
        if kind != KIND_FILESYSTEM:
            raise bad("is a %s, not a filesystem" % ("zvol" if kind == KIND_VOLUME else kind))
        return out, rows

    def _elsewhere_rows(self, definition, version, pair, volume):
        snap = self._sent_snapshot(definition, version, pair)
        return snap, self._get(self._ELSEWHERE_PROPS, sorted(set([pair.target, snap, volume])))

    def restored_elsewhere(self, definition, version, pair, volume):
        snap, rows = self._elsewhere_rows(definition, version, pair, volume)
        row = rows.get(volume)
        if row is None:
            return None
        guid = self._guid(rows.get(snap, {}))
        if guid is not None and self._mark(row, PROP_RESTORED_FROM) == guid:
            # unfinished (a run killed while making it): made again
            return None if self._mark(row, PROP_RESTORING) is not None else True
        return "%s exists and was not made from the copy %s of version %s (it lacks %s=<the guid of %s>%s)" % (
            volume, pair.target, version, PROP_RESTORED_FROM, snap,
            ", which is missing" if guid is None else ", %s" % guid)

    # --- browsing and file restores (issue 17): the same for both technologies --

    def _snapshot_view(self, definition, version, pair, snap, dataset, why):
        """The _browse.CopyView of the copy of ``pair``: snapshot ``snap`` of
        filesystem ``dataset`` (the source for zfs_snapshot, the received
        copy for zfs_send), read through ``<mountpoint>/.zfs/snapshot/<snap>``
        when ``dataset`` is mounted, else mounted read-only with ``mount -t
        zfs``. ``why``: why the copy is not the recorded, valid one, or None.
        A zvol's copy holds no filesystem ZFS mounts, and an encrypted copy
        whose key is not loaded cannot be read: both refused, reading only."""
        from ansible_collections.pitcopy.versions.plugins.module_utils._browse import VIEW_ZFS, CopyView

        row = self._get(("type", "mounted", "mountpoint", "keystatus", "encryptionroot"), [dataset],
                        types="filesystem,volume").get(dataset, {})
        if not why and row.get("type", ("",))[0] != KIND_FILESYSTEM:
            why = "%s is not a ZFS filesystem (a zvol's copy holds no filesystem ZFS mounts)" % dataset
        if not why and row.get("keystatus", ("-",))[0] == "unavailable":
            why = "%s is encrypted and its key is not loaded on this host (zfs load-key %s, then try again)" % (
                dataset, row.get("encryptionroot", (dataset,))[0])
        if why:
            raise InvalidInput("copy pool %s: cannot read version %d of %s from %s: %s; nothing was changed. Run "
                               "pitcopy.versions.verify_records to see the findings" % (
                                   definition.name, version, pair.source, snap, why))
        directory = None
        if row.get("mounted", ("",))[0] == "yes":
            d = os.path.join(row["mountpoint"][0], ".zfs", "snapshot", snap.split("@", 1)[1])
            directory = d if os.path.isdir(d) else None
        return CopyView(VIEW_ZFS, snap, directory)

    def source_directory(self, definition, source):
        src = self._get(("mounted", "mountpoint"), [source], types="filesystem").get(source, {})
        if src.get("mounted", ("",))[0] != "yes":
            return None
        return src["mountpoint"][0]

    @staticmethod
    def _wants_mount(row):
        """Whether a dataset a restore just made (its ``zfs get`` row:
        type, canmount, mountpoint, mounted, keystatus) is mounted now: a
        filesystem that mounts where it inherits, not mounted yet, and not
        encrypted with its key unloaded (zfs mount would fail; the operator
        loads the key)."""
        return row.get("type", ("-",))[0] == KIND_FILESYSTEM and row.get("canmount", ("off",))[0] == "on" \
            and row.get("mountpoint", ("none",))[0] not in ("none", "legacy") \
            and row.get("mounted", ("no",))[0] != "yes" and row.get("keystatus", ("-",))[0] != "unavailable"

    def _remove_unfinished(self, volume, received, guid):
        """Destroy ``volume`` when it is our unfinished one (both marks, for
        ``guid``) holding nothing but the snapshot the receive made."""
        rows = self._get(("type", PROP_RESTORED_FROM, PROP_RESTORING), [volume], recursive=True)
        row = rows.get(volume)
        if row is None:
            return
        if self._mark(row, PROP_RESTORED_FROM) != guid or self._mark(row, PROP_RESTORING) is None:
            raise InvalidInput("%s is not an unfinished restore of the snapshot with guid %s; it was left as it is"
                               % (volume, guid))
        others = sorted(n for n in rows if n not in (volume, received))
        if others:
            raise InvalidInput("%s, an unfinished restore, holds %s that the restore did not make; it was left as "
                               "it is (move or destroy them, then retry)" % (volume, ", ".join(others)))
        self._run("destroy", "-r", volume)

    def _make_restored(self, definition, version, pair, volume):
        snap, rows = self._elsewhere_rows(definition, version, pair, volume)
        why = self._copy_unusable(definition, version, pair, snap, rows)
        if why:
            raise InvalidInput("cannot restore %s of version %s to %s: %s; nothing was changed" % (
                pair.source, version, volume, why))
        guid = self._guid(rows[snap])
        received = "%s@%s" % (volume, snap.split("@", 1)[1])
        if volume in rows:
            self._remove_unfinished(volume, received, guid)
        recv = [ZFS, "receive", "-u", "-o", "%s=%s" % (PROP_RESTORED_FROM, guid),
                "-o", "%s=%s" % (PROP_RESTORING, guid), volume]
        # an encrypted copy goes back raw: its key never needs loading here,
        # and the new dataset stays encrypted (unmounted until the operator
        # loads the source's key: zfs load-key, then zfs mount)
        raw = self._encrypted(rows[snap])
        try:
            self._send_receive([ZFS, "send"] + (["-w"] if raw else []) + [snap], recv)
            self._run("destroy", received)
            row = self._get(("type", "canmount", "mountpoint", "mounted"), [volume],
                            types="filesystem,volume").get(volume, {})
            if not raw and self._wants_mount(row):
                self._run("mount", volume)
            self._run("inherit", PROP_RESTORING, volume)
        except CommandError as exc:
            quietly(lambda: self._remove_unfinished(volume, received, guid))  # nothing of ours left behind
            raise CopyFailed("restore of %s from %s to the new dataset %s failed: %s" % (
                pair.source, snap, volume, command_reason(exc)), cause=exc, source=pair.source, target=volume)

    # --- media (issue 17, item 6) -------------------------------------------------

    stream_extension = "zfs-stream"

    def dump_stream(self, definition, version, pair, write):
        """``zfs send`` of the copy's snapshot (zfs_snapshot: the copy;
        zfs_send: its received snapshot), full (no ``-i``: each medium
        restores alone, whatever else was dumped or kept), raw (``-w``) when
        the copy is encrypted, so its key never enters the stream."""
        snap = self._sent_snapshot(definition, version, pair)
        rows = self._get(self._ELSEWHERE_PROPS, sorted(set([pair.target, snap])))
        why = self._copy_unusable(definition, version, pair, snap, rows)
        if why:
            raise InvalidInput("copy pool %s: cannot dump version %d of %s: %s; nothing was changed. Run "
                               "pitcopy.versions.verify_records to see the findings" % (
                                   definition.name, version, pair.source, why))
        argv = [ZFS, "send"] + (["-w"] if self._encrypted(rows[snap]) else []) + [snap]
        try:
            self.runner.stream_out(argv, write)
        except CommandError as exc:
            raise CopyFailed("dump of %s (version %d) from its copy %s failed: zfs send: %s" % (
                pair.source, version, snap, command_reason(exc)), cause=exc, source=pair.source, target=snap)

    def media_volumes(self, definition, sources, restore_to):
        """``restore_to`` as for whole sources restored elsewhere (the copies
        are not read: they may be gone)."""
        return self._new_datasets(definition, sources, (), restore_to, "received from its stream on the medium")[0]

    def volume_exists(self, volume):
        return volume in self._get(("type",), [volume], types="filesystem,volume")

    def receive_stream(self, definition, source, fd, volume):
        """``zfs receive -u`` of the stream as ``volume``, marked
        ``pitcopy:restoring=media`` while it is made; then the snapshot the
        receive made destroyed, the dataset mounted where it inherits (an
        encrypted one, received raw, stays unmounted until its key is
        loaded) and the mark removed: the user's dataset, with none of the
        pool's marks. A failure leaves nothing at ``volume``."""
        if self.volume_exists(volume):
            raise InvalidInput("cannot restore %s from media to %s: it exists; a restore never overwrites: choose "
                               "another restore_to, or move that away; nothing was changed" % (source, volume))
        try:
            self.runner.run_from([ZFS, "receive", "-u", "-o", "%s=%s" % (PROP_RESTORING, MEDIA_RESTORING), volume], fd)
            rows = self._get(("type", "canmount", "mountpoint", "mounted", "keystatus"), [volume], recursive=True,
                             types="filesystem,volume,snapshot")
            for name in sorted(n for n in rows if n.startswith(volume + "@")):
                self._run("destroy", name)
            row = rows.get(volume, {})
            if self._wants_mount(row):
                self._run("mount", volume)
            self._run("inherit", PROP_RESTORING, volume)
        except CommandError as exc:
            quietly(lambda: self._remove_media_unfinished(volume))  # nothing of ours left behind
            raise CopyFailed("restore of %s from media to %s failed: %s; nothing was made" % (
                source, volume, command_reason(exc)), cause=exc, source=source, target=volume)

    def _remove_media_unfinished(self, volume):
        """Destroy ``volume`` when it is an unfinished receive from media of
        ours (the mark) holding nothing but its own snapshots."""
        rows = self._get((PROP_RESTORING,), [volume], recursive=True)
        if volume not in rows or self._mark(rows[volume], PROP_RESTORING) != MEDIA_RESTORING:
            return
        if any(not n.startswith(volume + "@") for n in rows if n != volume):
            raise InvalidInput("%s, an unfinished restore from media, holds datasets the restore did not make; it "
                               "was left as it is (move or destroy them, then retry)" % volume)
        self._run("destroy", "-r", volume)

    def media_leftovers(self, volumes):
        """The datasets among ``volumes`` that a killed restore from media
        left half made (still marked ``pitcopy:restoring=media``)."""
        rows = self._get((PROP_RESTORING,), sorted(set(volumes)), types="filesystem,volume") if volumes else {}
        return sorted(v for v, row in rows.items() if self._mark(row, PROP_RESTORING) == MEDIA_RESTORING)

    def sweep_media_leftovers(self, volumes):
        for volume in self.media_leftovers(volumes):
            self._remove_media_unfinished(volume)


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

    def plan_copies(self, definition, version, pairs):
        self._check_definition(definition)
        staging = []
        for p in pairs:
            validate_dataset_name(p.source, "source")
            self.validate_target_name(p.target)
            if p.target.split("@", 1)[0] != p.source:
                raise InvalidInput("zfs_snapshot target %r is not a snapshot of source %r" % (p.target, p.source))
            staging.append(CopyPair(p.source, self.staging_name(p.target, version)))
        marks = {PROP_POOL: _pool_name(definition), PROP_VERSION: str(version)}
        items = [(p.source, st.target) for p, st in zip(pairs, staging)]
        plan = CopyPlan(definition, version, pairs, staging=staging, marks=marks,
                        commands=self._snapshot_commands(marks, items))
        plan.facts["stale"] = self._stale_staging(definition, pairs, staging)
        return plan

    def prepare(self, plan):
        self._destroy_checked(plan.facts["stale"])  # ours, checked by _stale_staging

    def take_point_in_time(self, plan):
        by_name = dict((st.target, p) for p, st in zip(plan.pairs, plan.staging))
        made = plan.made

        def failed(pair, err):
            return "zfs_snapshot copy version %d of %s failed at %s -> %s (one atomic zfs snapshot for zpool %s; " \
                   "no snapshot of that zpool was made, %d made in other zpools were removed): %s" % (
                       plan.version, _pool_name(plan.definition), pair.source, pair.target, zpool_of(pair.source),
                       len(made), err)

        self._snapshot_batch(plan, made, by_name, failed)

    def transfer(self, plan):
        # Outside the window: what identifies each snapshot (its guid, kept
        # by the rename of promotion), one call for all of them. Unread (the
        # call failed), the engine asks list_copies later.
        try:
            rows = self._promotion_view(plan)
        except CommandError:
            rows = {}
        plan.staged = [CopyPair(s.source, s.target, self._guid(rows.get(s.target, {}))) for s in plan.staging]

    def _promotion_view(self, plan):
        """One read after the point in time that the promotion reuses (see
        "Views"): where every zpool has a batch's worth of staged snapshots,
        every snapshot below their common ancestor in each zpool (the
        listing a batch needs), else the staged and final names only; the
        marks, guids and anchor marks of all."""
        staged = [s.target for s in plan.staging]
        groups = snapshot_groups(staged)
        props = OWNED_PROPS + (PROP_ANCHOR,)
        if groups and all(len(group) >= BATCH_MIN for _key, group in groups):
            roots = sorted(set(common_dataset(group) for _key, group in groups))
            rows = self._get(props, roots, recursive=True, types="snapshot")
            self._keep_view(rows, props, roots=roots)
        else:
            names = staged + [p.target for p in plan.pairs]
            rows = self._get(props, names, types="snapshot")
            self._keep_view(rows, props, names=names)
        return rows

    def undo(self, plan):
        self._destroy_snapshots(plan.definition, [s.target for s in plan.made])

    def promote(self, definition, version, pairs, staged, replaced_pairs):
        staged_map, replaced, recorded, rows = self._promotion(definition, pairs, staged, replaced_pairs)
        # the guid each staged snapshot had when made (None: a journal read
        # back from the file); a rename keeps it
        staged_ids = dict((s.target, s.identity) for s in staged)
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
        doomed = []
        for name in replaced:
            row = rows.get(name)
            if row is None or not self._is_ours(definition, row) or not self._is_recorded(row, recorded.get(name)):
                continue
            if self._mark(row, PROP_VERSION) == str(version) and name not in staged_map.values():
                continue  # already promoted by an earlier, interrupted call
            doomed.append(name)
        moves = []
        resumed = []
        for p in pairs:
            st = staged_map.get(p.source)
            if st is None:
                continue
            if st not in rows:
                frow = rows.get(p.target)
                if frow is not None and is_staged_copy(st, frow):
                    resumed.append((st, p.target))
                    continue  # renamed before a crash
                raise CopyFailed("staged copy %s of %s is missing; version %d cannot be completed"
                                 % (st, p.source, version), source=p.source, target=p.target)
            moves.append((st, p.target))
        done = self._promote_batches(definition, doomed, moves, resumed, rows, replaced)
        # what no batch did: one command each, replaced copies first
        for name in doomed:
            if name not in done:
                self._run("destroy", name)
            rows.pop(name, None)
        for st, target in moves:
            if st in done:
                continue
            if target in rows:  # ours: checked before anything was changed
                self._run("destroy", target)
            devs = self._zvol_links([st])
            self._run("rename", st, target)
            renamed_devs.extend(devs)
        self._refresh_zvol_links(renamed_devs)

    def _promote_batches(self, definition, doomed, moves, resumed, rows, replaced):
        """The promotion's batches (see "Batches"): per zpool and pair of
        names (staged, final), destroy the replaced snapshots with one ``zfs
        destroy -r`` and rename the staged ones with one ``zfs rename -r``
        from their common ancestor, when one listing shows that nothing
        else there bears those names and that it saves processes. Returns
        the names it destroyed or moved (staged names); the rest is left to
        one command each. Whether a group is batched depends only on what
        a killed call cannot have changed (the staged copies, renamed all at
        once, and the ``replaced`` names of the records), so that a call
        resumed after a kill decides as the killed one did and finds its
        anchor; one left beside copies already renamed (``resumed``) is
        removed."""
        pool = _pool_name(definition)
        done = set()
        groups = {}
        order = []
        for st, target in list(moves) + list(resumed):
            key = (zpool_of(st), st.split("@", 1)[1], target.split("@", 1)[1])
            if key not in groups:
                groups[key] = ([], [])
                order.append(key)
            groups[key][0 if (st, target) in moves else 1].append((st, target))
        for key in order:
            zpool, ssnap, fsnap = key
            members, renamed = groups[key]
            targets = set(t for _st, t in members + renamed)
            dl = [n for n in doomed if zpool_of(n) == zpool and n.split("@", 1)[1] == fsnap]
            dl += [t for _st, t in members if t in rows and t not in dl]
            ancestor = common_dataset([st for st, _t in members + renamed] + dl)
            anchor, anchor_final = "%s@%s" % (ancestor, ssnap), "%s@%s" % (ancestor, fsnap)
            own_anchor = anchor_final not in targets and anchor not in set(st for st, _t in members + renamed)
            if not members:
                if own_anchor and renamed:
                    # resumed: the anchor may be left, renamed or not
                    tree = self._snapshot_tree(ancestor)
                    left = [n for n in (anchor, anchor_final)
                            if n in tree and self._mark(tree[n], PROP_ANCHOR) == pool]
                    for n in left:
                        self._run("destroy", n)
                continue
            if not own_anchor and anchor not in set(st for st, _t in members):
                continue  # the ancestor's own copy was renamed alone earlier
            # processes: listing, destroy -r, rename -r, the anchor's two,
            # against a destroy and a rename each
            old = set(n for n in replaced if zpool_of(n) == zpool and n.split("@", 1)[1] == fsnap)
            old.update(t for _st, t in members if t in rows)
            batched = 1 + (1 if old else 0) + 1 + (2 if own_anchor else 0)
            if len(members) < BATCH_MIN or batched >= len(members) + len(old):
                continue
            tree = self._snapshot_tree(ancestor)
            ours = set(n for n in (anchor, anchor_final) if n in tree and own_anchor
                       and self._mark(tree[n], PROP_ANCHOR) == pool)
            if anchor_final in ours:
                dl.append(anchor_final)  # renamed by a killed run, not destroyed yet
            if self._named(tree, fsnap) != set(dl):
                continue  # a snapshot of the final name that is not ours: one by one
            if self._named(tree, ssnap) - ours != set(st for st, _t in members):
                continue  # a snapshot of the staged name that is not ours
            if len(dl) == 1:
                self._run("destroy", dl[0])
            elif dl:
                self._run("destroy", "-r", anchor_final)
            done.update(dl)
            for n in dl:
                rows.pop(n, None)
            if own_anchor and anchor not in ours:
                self._run("snapshot", "-o", "%s=%s" % (PROP_ANCHOR, pool), anchor)
            devs = self._zvol_links([st for st, _t in members])
            self._run("rename", "-r", anchor, anchor_final)
            self._refresh_zvol_links(devs)
            if own_anchor:
                self._run("destroy", anchor_final)
            done.update(st for st, _t in members)
        return done

    def _held_snapshot(self, definition, version, pair):
        return pair.target  # the copy is the snapshot

    def discard(self, definition, staged):
        self._destroy_snapshots(definition, [s.target for s in staged])

    def delete_copies(self, definition, pairs):
        # only the snapshot each record names (its guid), never one taken
        # again under that name, whatever marks it carries
        return self._destroy_snapshots(definition, [p.target for p in pairs],
                                       dict((p.target, p.identity) for p in pairs if p.identity))

    def list_copies(self, pool_name, scope=None):
        # guid (the copy's identity) in the same call: a native property's
        # source is "-", which ``-s none`` selects (every snapshot's guid, ours
        # kept below); the marks still count only where set on the snapshot
        # itself (local, received). One zfs process, as without identities,
        # over the snapshots of the datasets the scope names only.
        props = (PROP_POOL, PROP_VERSION, "guid")
        if scope is None:
            rows = self._get(props, types="snapshot", sources="local,received,none")
            self._keep_view(rows, props, everything=True)
        else:
            names = scope_datasets(scope)
            rows = self._get(props, names, recursive=True, depth=1, types="snapshot",
                             sources="local,received,none") if names else {}
            if names:
                self._keep_view(rows, props, datasets=names)
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

    def restore_differs(self, definition, version, pairs):
        """``written@<snapshot>`` of the source: the bytes written to it since
        the snapshot, 0 right after a rollback to it. One ``zfs get`` per
        snapshot name; unknown (no such snapshot or dataset) differs."""
        by_snap = {}
        for p in pairs:
            dataset, _sep, snap = p.target.partition("@")
            if dataset == p.source and snap:
                by_snap.setdefault(snap, []).append(p.source)
        same = set()
        for snap, sources in sorted(by_snap.items()):
            prop = "written@" + snap
            rows = self._get([prop], sources, types="filesystem,volume")
            same.update(s for s in sources if rows.get(s, {}).get(prop, ("-",))[0] == "0")
        return [p.source for p in pairs if p.source not in same]

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
                    "(copy_version state=absent), or get version %d beside production: copy_version state=restored with "
                    "restore_to=<an existing filesystem dataset> makes each source a new dataset below it, and with "
                    "paths restores files (both keep every version)."
                    % (p.source, version, p.target, ", ".join(newer), version))
        done = []
        for p in pairs:
            try:
                self._run("rollback", p.target)
            except CommandError as exc:
                raise CopyFailed("restore of %s from %s failed after %d of %d sources were restored (%s): %s"
                                 % (p.source, p.target, len(done), len(pairs), ", ".join(done) or "none",
                                    command_reason(exc)), cause=exc, source=p.source, target=p.target)
            done.append(p.source)
        return done

    # --- browsing and file restores (issue 17) ----------------------------------

    def copy_view(self, definition, version, pair):
        """The snapshot, read through the source's ``.zfs/snapshot/<snap>``
        when the source is mounted (no mount needed), else mounted with
        ``mount -t zfs``. zvols hold no filesystem ZFS can mount: refused."""
        row = self._owned(definition, [pair.target]).get(pair.target)
        why = None
        if row is None or not self._is_ours(definition, row):
            why = "the snapshot does not exist or is not copy pool %s's copy (deleted behind our back?)" % (
                _pool_name(definition))
        elif self._mark(row, PROP_VERSION) != str(version):
            why = "it holds version %s" % self._mark(row, PROP_VERSION)
        elif not self._is_recorded(row, pair.identity):
            why = "it is not the copy recorded (guid %s, recorded %s)" % (self._guid(row), pair.identity)
        return self._snapshot_view(definition, version, pair, pair.target, pair.source, why)

    def _sent_snapshot(self, definition, version, pair):
        return pair.target  # the copy is the snapshot


class ZfsSendBackend(_ZfsBase):
    """``zfs_send``: a send of a snapshot (full, or incremental from the
    bookmark of the version the target pool holds), received into a listed
    target."""

    identifies_copies = True  # the received dataset's guid (list_copies)
    incremental = True  # zfs send -i from a bookmark kept on the source
    target_noun = "dataset"

    technology = "zfs_send"

    # encryption: whether a source is sent raw, and whether the copy a
    # target holds can be the base of a raw stream (one column more in the
    # same zfs get)
    _FACT_PROPS = _ZfsBase._FACT_PROPS + ("encryption",)

    def __init__(self, *args, **kwargs):
        super(ZfsSendBackend, self).__init__(*args, **kwargs)
        # {dataset: encryption} of the last check_capacity, and the
        # transfer.filter it resolved: transfer uses them (the same run)
        self._encryption = {}
        self._filter = None

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

    @staticmethod
    def base_bookmark(definition, source, version):
        """The bookmark kept on the source as the base of the next
        incremental send after version ``version`` (see "Incremental")."""
        return "%s#pitcopy-%s-v%d" % (source, _pool_name(definition), version)

    @staticmethod
    def received_snapshot(definition, target, version):
        """The snapshot a copy of ``version`` at ``target`` was received as."""
        return "%s@pitcopy-%s-v%d" % (target, _pool_name(definition), version)

    def check_capacity(self, definition, pairs, replaced_pairs, volumes):
        # Incremental copies are checked like full ones (the source's
        # referenced bytes per target zpool): see "Incremental" above.
        self._check_definition(definition)
        pairs = list(pairs)
        if not pairs:
            return
        names = sorted(set([p.source for p in pairs] + [p.target for p in pairs]))
        facts = self._facts(names)
        self._encryption = dict((n, row.get("encryption", ("off", "-"))[0]) for n, row in facts.items())
        self._check_transfer(definition, pairs)
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

    def _check_transfer(self, definition, pairs):
        """Before anything is made: the filter resolves to a program here,
        and ``raw: false`` names no encrypted source (its decrypted data
        would land unencrypted at the target, or need a key there that
        pitcopy does not manage: refused, see "Encryption")."""
        self._filter = resolve_filter(definition, self.runner)
        transfer = getattr(definition, "transfer", None)
        if transfer is None or transfer.raw != "false":
            return
        encrypted = [p.source for p in pairs if self._encryption.get(p.source, "off") not in ("off", "-", "")]
        if encrypted:
            raise InvalidInput(
                "copy pool %s: transfer.raw false would send %s decrypted (encryption %s), and pitcopy does not "
                "re-encrypt copies at the target; use transfer.raw auto (the default) or true, which sends encrypted "
                "datasets raw (zfs send -w): the copy stays encrypted with the source's key, which never leaves the "
                "source host; nothing was changed" % (
                    _pool_name(definition), ", ".join(encrypted), self._encryption[encrypted[0]]))

    def _send_options(self, definition, source):
        """The ``zfs send`` flags of ``source`` from the pool's transfer
        settings: ``-w`` (raw) for an encrypted source under ``auto``, for
        every source under ``true``; ``-c`` and ``-L`` when asked."""
        transfer = getattr(definition, "transfer", None)
        if transfer is None:
            return []
        if source not in self._encryption:
            rows = self._get(("encryption",), [source], types="filesystem,volume")
            self._encryption[source] = rows.get(source, {}).get("encryption", ("off", "-"))[0]
        encrypted = self._encryption[source] not in ("off", "-", "")
        raw = transfer.raw == "true" or (transfer.raw == "auto" and encrypted)
        return (["-w"] if raw else []) + (["-c"] if transfer.compressed else []) + \
            (["-L"] if transfer.large_block else [])

    def plan_copies(self, definition, version, pairs):
        self._check_definition(definition)
        pool = _pool_name(definition)
        for p in pairs:
            validate_dataset_name(p.source, "source")
            self.validate_target_name(p.target)
        snaps = [self.send_snapshot(definition, p.source, version) for p in pairs]
        marks = {PROP_POOL: pool, PROP_VERSION: str(version)}
        plan = CopyPlan(definition, version, pairs, marks=marks,
                        staging=[CopyPair(p.source, self.staging_name(p.target, version)) for p in pairs],
                        commands=self._snapshot_commands(marks, [(p.source, snap) for p, snap in zip(pairs, snaps)]))
        plan.facts["snaps"] = snaps
        return plan

    def prepare(self, plan):
        definition = plan.definition
        quietly(lambda: self._destroy_snapshots(definition, plan.facts["snaps"]))  # ours, from an interrupted run
        # staging names: ours from an interrupted run go, anyone else's stop
        # the copy before anything is made
        for name in self._stale_staging(definition, plan.pairs, plan.staging):
            self._destroy_dataset(definition, name)

    def take_point_in_time(self, plan):
        by_name = dict((snap, p) for p, snap in zip(plan.pairs, plan.facts["snaps"]))

        def failed(pair, err):
            return "zfs_send copy version %d of %s failed at %s -> %s (snapshot); the copies made for this version " \
                   "were removed: %s" % (plan.version, _pool_name(plan.definition), pair.source, pair.target, err)

        self._snapshot_batch(plan, plan.temporaries, by_name, failed, match_source=False)

    # --- incremental sends (see "Incremental" in the module docstring) ------

    def _base_facts(self, definition, items):
        """Rows of the copies of ``items`` ((version, pair)), their received
        snapshots, and the bookmarks of their bases: two ``zfs get``."""
        names = set()
        for version, p in items:
            names.update((p.target, self.received_snapshot(definition, p.target, version)))
        rows = self._owned(definition, sorted(names)) if names else {}
        bms = sorted(set(self.base_bookmark(definition, p.source, version) for version, p in items))
        marks = self._get(("guid",), bms, types="bookmark") if bms else {}
        return rows, marks

    def _copy_problem(self, definition, version, pair, rows):
        """Why the copy ``pair`` of ``version`` is not the valid copy the
        record names (rows: _base_facts), or None."""
        row = rows.get(pair.target)
        if row is None:
            return "its copy %s is gone" % pair.target
        if not self._is_ours(definition, row) or self._mark(row, PROP_VERSION) != str(version):
            return "%s is not version %d of copy pool %s" % (pair.target, version, _pool_name(definition))
        if not self._is_recorded(row, pair.identity):
            return "%s is not the copy the record names" % pair.target
        if self.received_snapshot(definition, pair.target, version) not in rows:
            return "its received snapshot %s is missing" % self.received_snapshot(definition, pair.target, version)
        if self._num(row, "written") > 0:
            return "%s was written to after it was received" % pair.target
        return None

    def _base_problem(self, definition, version, pair, rows, marks):
        """Why the copy ``pair`` of ``version`` cannot be the origin of an
        incremental receive from its base bookmark, or None."""
        why = self._copy_problem(definition, version, pair, rows)
        if why is not None:
            return why
        bm = self.base_bookmark(definition, pair.source, version)
        snap = self.received_snapshot(definition, pair.target, version)
        if bm not in marks:
            return "its base %s is gone" % bm
        if self._guid(marks[bm]) != self._guid(rows[snap]):
            return "%s was not received from the base %s (guid %s, base guid %s)" % (
                snap, bm, self._guid(rows[snap]), self._guid(marks[bm]))
        return None

    def _base_problems(self, definition, candidates):
        """Each candidate's base bookmark and why it cannot be the base of
        an incremental receive (the copy's received snapshot has the
        bookmark's guid), or None; one listing for all."""
        rows, marks = self._base_facts(definition, candidates)
        return [(self.base_bookmark(definition, old.source, version),
                 self._base_problem(definition, version, old, rows, marks)) for version, old in candidates]

    def _bookmark(self, definition, snap, source, version):
        """Keep ``snap`` (the snapshot just sent) as the bookmark of the
        next send's base; one of this number a rolled-back run left is
        replaced (the name is ours: see "Incremental")."""
        bm = self.base_bookmark(definition, source, version)
        rc, out, err = self._run("bookmark", snap, bm, check=False)
        if rc != 0:
            if not self._get(("guid",), [bm], types="bookmark"):
                raise CommandError("zfs bookmark %s %s failed with exit status %s: %s"
                                   % (snap, bm, rc, err.strip() or "no output"),
                                   argv=[ZFS, "bookmark", snap, bm], rc=rc, stdout=out, stderr=err)
            self._run("destroy", bm)
            self._run("bookmark", snap, bm)
        return bm

    def transfer(self, plan):
        """Outside the window (the point in time is the snapshots): one
        ``zfs send [-i <base bookmark>] | zfs receive`` per pair into its
        staging name, in the order of pairs; an incremental stream is
        received as a clone of the copy the target pool holds (``-o
        origin=``), so that copy stays as it was until promotion. The stream
        is counted as it passes (bytes_sent); the snapshot sent is then kept
        as the bookmark of the next send's base."""
        pool, version = _pool_name(plan.definition), plan.version
        chosen = self._choose_bases(plan)
        sent = {}
        plan.facts.setdefault("bookmarks", [])
        filt = self._filter if self._filter is not None else resolve_filter(plan.definition, self.runner)
        for p, snap, st in zip(plan.pairs, plan.facts["snaps"], plan.staging):
            base_version, base = chosen[p.source]
            options = self._send_options(plan.definition, p.source)
            if base_version is not None and "-w" in options and self._encrypted_source(p.source) \
                    and self._encryption.get(p.target, "off") in ("off", "-", ""):
                # a copy received before raw sends (decrypted) cannot take a
                # raw incremental stream: this one goes in full, raw
                base_version, base = None, "the copy %s holds was not sent raw (it is not encrypted); an encrypted " \
                    "source's raw stream needs an encrypted base" % p.target
            send = [ZFS, "send"] + options + (["-i", base] if base_version is not None else []) + [snap]
            recv = [ZFS, "receive", "-o", "%s=%s" % (PROP_POOL, pool), "-o", "%s=%d" % (PROP_VERSION, version),
                    "-o", "%s=%s" % (PROP_SOURCE, p.source), "-o", "readonly=on"]
            if base_version is not None:
                recv += ["-o", "origin=%s" % self.received_snapshot(plan.definition, p.target, base_version)]
            recv.append(st.target)
            plan.made.append(st)  # a failed receive leaves nothing, but be sure
            meter = {}
            try:
                self._send_receive(send, recv, meter=meter, filt=filt)
                plan.facts["bookmarks"].append(self._bookmark(plan.definition, snap, p.source, version))
            except CommandError as exc:
                raise CopyFailed(
                    "zfs_send copy version %d of %s failed at %s -> %s (send%s/receive); the copies made for this "
                    "version were removed: %s" % (version, pool, p.source, p.target,
                                                  " -i %s" % base if base_version is not None else "",
                                                  command_reason(exc)),
                    cause=exc, source=p.source, target=p.target)
            sent[p.source] = (base_version, int(meter.get("bytes", 0)), None if base_version is not None else base)
        plan.staged = [CopyPair(s.source, s.target, base_version=sent[s.source][0], bytes_sent=sent[s.source][1])
                       for s in plan.staging]
        plan.facts["full_sends"] = dict((src, why) for src, (_b, _n, why) in sent.items() if why)

    def _encrypted_source(self, source):
        return self._encryption.get(source, "off") not in ("off", "-", "")

    def release_bases(self, definition, records, dry_run=False, sources=()):
        """Destroy this pool's base bookmarks (``<source>#pitcopy-<pool>-v<n>``)
        of versions no record keeps on that source; one ``zfs get`` lists
        them beside every source of the pool, its records and ``sources``."""
        pool = _pool_name(definition)
        needed = set((p.source, r.version) for r in records for p in r.pairs)
        names = set(definition.sources) | set(p.source for r in records for p in r.pairs) | set(sources)
        names = sorted(n for n in names if isinstance(n, str) and n and "@" not in n and "#" not in n)
        rows = self._get(("guid",), names, recursive=True, depth=1, types="bookmark") if names else {}
        doomed = []
        for name in sorted(rows):
            if "#" not in name:
                continue
            ds, bm = name.split("#", 1)
            m = re.match(r"^pitcopy-%s-v(\d+)\Z" % re.escape(pool), bm)
            if m and (ds, int(m.group(1))) not in needed:
                doomed.append(name)
        if dry_run:
            return doomed
        for name in doomed:
            self._run("destroy", name)
        return doomed

    def missing_bases(self, definition, records):
        items = [(r.version, p) for r in records for p in r.pairs]
        if not items:
            return []
        rows, marks = self._base_facts(definition, items)
        out = []
        for r in records:
            for p in r.pairs:
                if self._copy_problem(definition, r.version, p, rows) is not None:
                    continue  # the copy itself is missing or not the recorded one: verify reports that
                why = self._base_problem(definition, r.version, p, rows, marks)
                if why is not None:
                    out.append((r, p, why))
        return out

    def _held_snapshot(self, definition, version, pair):
        # the received snapshot in the target: holding it makes a ``zfs
        # destroy -r`` of the target refuse too
        return "%s@pitcopy-%s-v%d" % (pair.target, _pool_name(definition), version)

    def _sent_snapshot(self, definition, version, pair):
        return self.received_snapshot(definition, pair.target, version)

    def copy_view(self, definition, version, pair):
        """The copy's received snapshot, read through the copy's
        ``.zfs/snapshot/<snap>`` (the copy is received mounted, read-only)
        or mounted with ``mount -t zfs``; a copy that is not the recorded,
        unwritten one with its received snapshot is refused."""
        snap = self.received_snapshot(definition, pair.target, version)
        why = self._copy_problem(definition, version, pair, self._owned(definition, [pair.target, snap]))
        return self._snapshot_view(definition, version, pair, snap, pair.target, why)

    def release(self, plan):
        # the source snapshots were only the point in time; they would pin
        # space in the source zpool, so they go in every case
        if plan.temporaries:
            quietly(lambda: self._destroy_snapshots(plan.definition, [t.target for t in plan.temporaries]))

    def undo(self, plan):
        for st in plan.made:
            quietly(lambda st=st: self._destroy_dataset(plan.definition, st.target))
        for bm in plan.facts.get("bookmarks", ()):
            quietly(lambda bm=bm: self._run("destroy", bm))

    def promote(self, definition, version, pairs, staged, replaced_pairs):
        staged_map, replaced, recorded, rows = self._promotion(definition, pairs, staged, replaced_pairs)
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
        # An incremental copy is a clone of the replaced copy's received
        # snapshot: ``zfs promote`` first (the replaced copy becomes the
        # clone, so destroying it keeps the new one whole); its older
        # snapshots, which the promotion brought over, go after the rename.
        present = sorted(set([n for n in staged_map.values() if n in rows] + [
            p.target for p in pairs if self._mark(rows.get(p.target, {}), PROP_VERSION) == str(version)]))
        origins = self._get(("origin",), present, recursive=True, depth=1,
                            types="filesystem,volume,snapshot") if present else {}
        cleanup = []  # copies that may hold an earlier version's snapshot: listed again at the end
        older = []  # the earlier version's snapshots, named after the promotion and the rename
        for p in pairs:
            st = staged_map.get(p.source)
            origin = origins.get(st, {}).get("origin", ("-",))[0] if st is not None and st in rows else "-"
            if origin not in ("-", ""):
                self._run("promote", st)
                if origin.split("@", 1)[0] == p.target and self._our_snapshot_name(definition, origin):
                    older.append(origin)  # in the promoted clone, renamed to the target
                else:
                    cleanup.append(p.target)
            elif st is not None:
                # promoted by an interrupted call: the new copy (staged, or
                # renamed already) holds an earlier version's snapshot
                new = st if st in rows else (
                    p.target if self._mark(rows.get(p.target, {}), PROP_VERSION) == str(version) else None)
                if new is not None and any(n.split("@", 1)[0] == new and self._our_snapshot_name(definition, n)
                                           and not n.endswith("-v%d" % version) for n in origins if "@" in n):
                    cleanup.append(p.target)
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
        for snap in older:
            self._run("destroy", snap)  # ours: our name, in the copy just promoted and renamed
        self._drop_older_snapshots(definition, version, cleanup)

    def _drop_older_snapshots(self, definition, version, targets):
        """The received snapshots of earlier versions in the promoted
        incremental copies ``targets`` (ours by name, in a dataset marked as
        ours of ``version``): they only pin the replaced data."""
        if not targets:
            return
        rows = self._owned(definition, targets, recursive=True)
        keep = "-v%d" % version
        for name in sorted(n for n in rows if "@" in n):
            ds = name.split("@", 1)[0]
            row = rows.get(ds)
            if row is None or not self._is_ours(definition, row) or self._mark(row, PROP_VERSION) != str(version):
                continue
            if self._our_snapshot_name(definition, name) and not name.endswith(keep):
                self._run("destroy", name)

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

    def list_copies(self, pool_name, scope=None):
        # the scope's sources (their temporary send snapshots) and the
        # parents of its targets (the copies and their staged twins), one
        # level down each, instead of every dataset of the host
        props = (PROP_POOL, PROP_VERSION, PROP_SOURCE)
        if scope is None:
            rows = self._get(props, types="filesystem,volume,snapshot", sources="local,received")
        else:
            names = scope_datasets(scope, parents=True)
            rows = self._get(props, names, recursive=True, depth=1, types="filesystem,volume,snapshot",
                             sources="local,received") if names else {}
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
        scope = CopyScope(pool, tuple(definition.sources) + tuple(p.source for p in pairs),
                          tuple(p.target for p in pairs))
        copies = dict((c.target, c) for c in self.list_copies(pool, scope))
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
                                    command_reason(exc) if isinstance(exc, CommandError) else exc.msg),
                                 cause=exc, source=p.source, target=p.target)
            done.append(p.source)
        return done

    # --- journaled restore: every state a killed restore can leave ----------
    #
    # _restore_one goes: receive the copy as <source>.pitcopy-restore (marked
    # with pitcopy:restore=<copy>), unmount the source, rename it to
    # <source>.pitcopy-replaced (the aside: its data until the restore is
    # done), rename the received dataset into the source's name, mount it,
    # destroy the aside, then destroy the received snapshot and clear our
    # marks, pitcopy:restore last. So while the aside exists the source in
    # its place still carries pitcopy:restore, and resume_restore can tell
    # from the datasets alone how far a killed run got.

    @staticmethod
    def _restore_names(source):
        return "%s.pitcopy-restore" % source, "%s.pitcopy-replaced" % source

    def restore_aside(self, definition, source):
        return self._restore_names(source)[1]

    def _restore_rows(self, source):
        tmp, old = self._restore_names(source)
        return self._get(("type", "mounted", PROP_POOL, PROP_RESTORE), [source, tmp, old],
                         types="filesystem,volume")

    def restore_progress(self, definition, pair, aside):
        tmp, old = self._restore_names(pair.source)
        rows = self._restore_rows(pair.source)
        if old in rows:
            if pair.source in rows:
                return "%s already holds the copy; %s still holds the data %s had before the restore" % (
                    pair.source, old, pair.source)
            return "%s is missing: %s holds the data it had before the restore and %s the copy received back" % (
                pair.source, old, tmp)
        if tmp in rows:
            return "the copy was received back as %s; %s is as it was" % (tmp, pair.source)
        return "%s was not replaced yet, or its restore had finished; it is restored again" % pair.source

    def resume_restore(self, definition, version, pair, aside):
        """Finish a restore of ``pair`` a killed run left, from where it
        stopped (the states are listed above); what does not fit them is
        left for a human, named, and nothing is changed."""
        validate_dataset_name(pair.source, "source", allow_root=False)
        source = pair.source
        tmp, old = self._restore_names(source)
        rows = self._restore_rows(source)

        def restored(name):
            return name in rows and self._mark(rows[name], PROP_RESTORE) == pair.target

        def human(why):
            raise InvalidInput("cannot finish the restore of %s from %s: %s; nothing was changed. Check the data of "
                               "%s, %s and %s, keep what you need, destroy the others and run verify_records "
                               "repair again" % (source, pair.target, why, source, tmp, old))

        if tmp in rows:
            if not restored(tmp):
                human("%s exists but is not the copy received back" % tmp)
            if source in rows:
                if old in rows:
                    human("%s, %s and %s all exist" % (source, tmp, old))
                if rows[source].get("mounted", ("no",))[0] == "yes":
                    self._run("unmount", source)
                self._run("rename", source, old)
                rows[old] = rows.pop(source)
            devs = self._zvol_links([tmp])
            self._run("rename", tmp, source)
            self._refresh_zvol_links(devs)
            self._finish_restore(definition, version, pair, old if old in rows else None)
            return
        if old in rows:
            if not restored(source):
                human("%s holds the data %s had before the restore, and %s %s" % (
                    old, source, source, "is not the copy" if source in rows else "is missing"))
            self._finish_restore(definition, version, pair, old)
            return
        if restored(source) or (source in rows and self._mark(rows[source], PROP_POOL) == _pool_name(definition)):
            self._finish_restore(definition, version, pair, None)  # only the marks and the mount were left
            return
        # not started, or finished: restoring it again is right either way
        self.restore(definition, version, [pair])

    def _restore_one(self, definition, version, p, exists):
        pool = _pool_name(definition)
        snap = "%s@pitcopy-%s-v%d" % (p.target, pool, version)
        tmp, old = self._restore_names(p.source)
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
        # An encrypted copy is sent back raw (its key is not loaded here):
        # the restored dataset has the source's encryption and key (the
        # stream carries them), as its own encryption root. When the source
        # was an encryption root whose key is a file, the restored one gets
        # that keylocation and its key is loaded, so it mounts as the source
        # did; otherwise it stays unmounted until the operator loads the key
        # (see "Encryption" above).
        crypt = self._crypt_rows([snap, p.source])
        raw = self._encrypted(crypt.get(snap, {}))
        self._send_receive([ZFS, "send"] + (["-w"] if raw else []) + [snap], recv)
        if raw:
            self._load_restored_key(crypt.get(p.source, {}), p.source, tmp if exists else p.source)
        if exists:
            srow = {}
            try:
                srow = self._get(("type", "mounted"), [p.source], types="filesystem,volume").get(p.source, {})
                if srow.get("mounted", ("no",))[0] == "yes":
                    # Fails on a busy filesystem: the source stays as it was.
                    self._run("unmount", p.source)
                self._run("rename", p.source, old)
            except CommandError:
                quietly(lambda: self._destroy_dataset(definition, tmp))
                if srow.get("mounted", ("no",))[0] == "yes":
                    quietly(lambda: self._run("mount", p.source))
                raise
            devs = self._zvol_links([tmp])
            self._run("rename", tmp, p.source)
            self._refresh_zvol_links(devs)
        self._finish_restore(definition, version, p, old if exists else None)

    def _load_restored_key(self, srow, source, name):
        """After a raw receive of an encrypted copy into ``name``: give it
        the keylocation of ``source`` (``srow``, the source as it was) when
        the source was its own encryption root with a key file, and load
        the key; a key that must be typed (prompt) or lives elsewhere is
        left to the operator (the dataset stays unmounted)."""
        location = srow.get("keylocation", ("none",))[0]
        if srow.get("encryptionroot", ("-",))[0] != source or not location.startswith("file://"):
            return
        self._run("set", "keylocation=%s" % location, name)
        # failing (the key file gone), it stays unmounted: the operator loads the key
        self._run("load-key", name, check=False)

    def _finish_restore(self, definition, version, p, old):
        """The restored dataset is in the source's place: mount it, destroy
        the data it replaced (``old``, which the user asked to replace: it
        has no snapshots or children, checked before, so a plain destroy),
        then make it the user's again: the received snapshot and our marks
        go, pitcopy:restore last (see above). Each step may have been done
        by a killed run already."""
        pool = _pool_name(definition)
        new = p.source
        snap = "%s@pitcopy-%s-v%d" % (new, pool, version)
        # keystatus: an encrypted restore whose key is not loaded is not
        # mounted (zfs mount would fail); the operator loads the key
        rows = self._get(("type", "canmount", "mountpoint", "mounted", PROP_POOL, PROP_RESTORE, "keystatus"),
                         [new, snap], types="filesystem,volume,snapshot")
        row = rows.get(new, {})
        if self._wants_mount(row):
            self._run("mount", new)
        if old is not None:
            self._run("destroy", old)
        # The snapshot received with the copy carries no mark of its own (a
        # send without -p sends no properties; it only inherits the
        # dataset's): it is ours while the dataset still bears our marks,
        # which go only after it.
        if snap in rows and (self._is_ours(definition, rows[snap]) or self._is_ours(definition, row)
                             or self._mark(row, PROP_RESTORE) == p.target):
            self._run("destroy", snap)
        for prop in (PROP_POOL, PROP_VERSION, PROP_RESTORE):
            self._run("inherit", prop, new)


# what _backends registers for this family (each class names its technology)
BACKENDS = (ZfsSnapshotBackend, ZfsSendBackend)
