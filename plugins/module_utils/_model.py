# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record engine's model, in the vocabulary of the method.

A *copy pool* is one source pool, its target pools and how many copy versions
are kept. Version ``n`` of a pool with ``P`` target pools goes to target pool
``(n - 1) % P`` (version 3 of a two-pool rotation reuses the target pool of
version 1). A *replication record* describes a copy version that exists, a
*pre-pairing record* the copy pairs chosen ahead of time for a future version,
and a *copy record* the pairs one copy operation actually uses.

Plain Python, no Ansible import. Everything here is a value: the engine builds
new values instead of mutating shared ones, which keeps check mode honest.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from dataclasses import dataclass, field, replace
from typing import Dict, FrozenSet, List, Optional, Tuple

from ansible_collections.pitcopy.versions.plugins.module_utils import _technologies
from ansible_collections.pitcopy.versions.plugins.module_utils._retention import grid_choice, parse_grid

# Derived from the one technology table (_technologies), never listed here.
# Snapshot technologies imply their target pools ("01", "02", ...) and
# generate target names; the others take user-listed target pools.
TECHNOLOGIES = _technologies.TECHNOLOGIES
SNAPSHOT_TECHNOLOGIES = _technologies.SNAPSHOT_TECHNOLOGIES
LISTED_TARGET_TECHNOLOGIES = _technologies.LISTED_TARGET_TECHNOLOGIES

CONSISTENCY_MODES = ("auto", "freeze", "none")

#: copy_pool ``transfer.raw``: ``auto`` sends encrypted ZFS sources raw
#: (``zfs send -w``) and the others as before; ``true`` every source raw;
#: ``false`` never (an encrypted source is then refused)
TRANSFER_RAW_MODES = ("auto", "true", "false")

RECORD_REPLICATION = "replication"
RECORD_PREPAIRING = "prepairing"

STATUS_VALID = "valid"
STATUS_INVALID = "invalid"
STATUS_INCOMPLETE = "incomplete"

PRE_COPY_PREPAIRING = "prepairing"
PRE_COPY_REPLICATION = "replication"
PRE_COPY_NONE = "none"


def implied_target_pool_names(versions):
    """Names of the implied target pools of a snapshot technology."""
    return ["%02d" % (i + 1) for i in range(versions)]


def _target_of(pairs, source):
    """The target paired with ``source`` in ``pairs``, or None."""
    return next((p.target for p in pairs if p.source == source), None)


@dataclass(frozen=True)
class Volume:
    """What target selection needs to know of one volume on the host.

    ``kind`` is the backend's word for the volume type (``lv``, ``thin_lv``,
    ``filesystem``, ``volume`` (zvol), ``subvolume``, ``directory`` ...).
    ``size`` and ``block_size`` are bytes (0 where the notion does not apply,
    e.g. a btrfs directory target). ``technologies`` are the copy technologies
    the volume can take part in. ``container`` is what shares free space
    (VG, thin pool, zpool, filesystem UUID) and ``free`` its free bytes.
    ``owner`` is the copy pool named by our ownership mark on the volume, or
    None. ``foreign_data`` is True when a target holds data we do not own:
    such a target is never eligible and never overwritten.
    """

    name: str
    kind: str
    size: int = 0
    block_size: int = 0
    technologies: FrozenSet[str] = frozenset()
    container: str = ""
    free: Optional[int] = None
    owner: Optional[str] = None
    foreign_data: bool = False


@dataclass(frozen=True)
class CopyPair:
    """One source volume and the target volume that receives its copy.

    ``identity`` is what identifies the copy on the storage once it exists
    (btrfs subvolume UUID, plus the received UUID for ``btrfs_send``; ZFS
    guid; LVM LV UUID), as the backend reports it in ``CopyInfo.identity``.
    Replication records carry it so that rotation, deletion and restore act
    only on the copy that was made, never on another volume that took its
    name; None means unknown (a record written before identities were kept,
    or a pair not copied yet). It is not part of a pair's equality: two
    pairs with the same source and target are the same pairing."""

    source: str
    target: str
    identity: Optional[str] = field(default=None, compare=False)
    # send technologies (issue 14): the version the copy was sent
    # incrementally from (None: a full send) and the bytes of the stream as
    # measured in the pipe; None when not a send (or not known: a copy
    # finished by verify_records repair after a kill)
    base_version: Optional[int] = field(default=None, compare=False)
    bytes_sent: Optional[int] = field(default=None, compare=False)

    def as_dict(self):
        out = {"source": self.source, "target": self.target}
        if self.bytes_sent is not None:
            out.update(base_version=self.base_version, bytes_sent=self.bytes_sent)
        return out

    def transfer(self):
        """``{base_version, bytes_sent}`` of a sent copy, or None."""
        if self.bytes_sent is None:
            return None
        return {"base_version": self.base_version, "bytes_sent": self.bytes_sent}


@dataclass(frozen=True)
class TargetPool:
    """A named set of target volumes that holds one copy version."""

    name: str
    volumes: Tuple[str, ...] = ()
    # ssh destination ``[user@]host`` where the volumes live (issue 14,
    # push); None: the managed host itself
    host: Optional[str] = None

    def as_dict(self):
        return {"name": self.name, "volumes": list(self.volumes), "host": self.host}


@dataclass(frozen=True)
class SshSettings:
    """The pool-level ``ssh`` settings of the pool's remote hosts."""

    port: Optional[int] = None
    identity_file: Optional[str] = None
    options: Tuple[str, ...] = ()

    def as_dict(self):
        return {"port": self.port, "identity_file": self.identity_file, "options": list(self.options)}


@dataclass(frozen=True)
class TransferSettings:
    """How a send technology's stream travels (copy_pool ``transfer``). The
    defaults are what every pool did before the option existed: plain
    streams, raw only for encrypted ZFS sources, no filter. ``filter`` is an
    argv (never a shell string) run between send and receive."""

    raw: str = "auto"
    compressed: bool = False
    large_block: bool = False
    filter: Tuple[str, ...] = ()

    def is_default(self):
        return self == TransferSettings()

    def as_dict(self):
        return {"raw": self.raw, "compressed": self.compressed, "large_block": self.large_block,
                "filter": list(self.filter)}


@dataclass(frozen=True)
class Hook:
    """A command run before or after the point in time of a copy.

    ``argv`` is a list, never a shell string. ``abort_on_failure`` on a
    pre-copy hook stops the copy before any volume is touched."""

    argv: Tuple[str, ...]
    timeout: int = 60
    abort_on_failure: bool = True

    def as_dict(self):
        return {"argv": list(self.argv), "timeout": self.timeout, "abort_on_failure": self.abort_on_failure}


@dataclass(frozen=True)
class DatasetPlace:
    """Where (part of) a dataset lies on one source volume: ``path`` is the
    dataset's directory inside the source volume's filesystem, relative to
    its root (``""``: the root itself), and ``at`` where in the dataset that
    part is (``""``: the dataset's own directory; ``wal``: a source volume
    mounted at ``<dataset path>/wal``)."""

    source: str
    path: str = ""
    at: str = ""

    def as_dict(self):
        return {"source": self.source, "path": self.path, "at": self.at}


@dataclass(frozen=True)
class Dataset:
    """A dataset of a copy pool (copy_pool ``datasets``): a directory the
    operator names (a filesystem's directory, a database's data directory)
    and, once the engine resolved it, the source volumes it lies on
    (``places``, the source dataset inventory of Table 3.1; on a
    replication record, the backup dataset inventory of that version, whose
    time stamp is the record's ``created``). The source holding ``path``
    itself comes first; a source volume mounted below ``path`` follows."""

    name: str
    path: str
    places: Tuple[DatasetPlace, ...] = ()

    def sources(self):
        return [p.source for p in self.places]

    def as_dict(self):
        return {"name": self.name, "path": self.path, "sources": self.sources(),
                "places": [p.as_dict() for p in self.places]}


@dataclass(frozen=True)
class PoolDefinition:
    """A copy pool as the user defined it (``copy_pool`` options)."""

    name: str
    technology: str
    sources: Tuple[str, ...]
    versions: int
    target_pools: Tuple[TargetPool, ...] = ()
    snapshot_size: Optional[str] = None
    consistency: str = "auto"
    pre_copy_hooks: Tuple[Hook, ...] = ()
    post_copy_hooks: Tuple[Hook, ...] = ()
    # freshness: verify_records reports "stale" when the newest valid
    # version is older than this (``30m``, ``26h``, ``8d``); None: no limit
    max_age: Optional[str] = None
    # how ssh reaches the target pools' hosts; None: ssh's defaults
    ssh: Optional[SshSettings] = None
    # grid retention (``24h 7d 4w``, see _retention): which version a new
    # one replaces and which go; None: the oldest is replaced (a rotation)
    retention: Optional[str] = None
    # the pool's datasets with the source volumes each lies on (the source
    # dataset inventory), resolved by the engine when the pool is defined
    datasets: Tuple[Dataset, ...] = ()
    # how a send's stream travels (raw, compressed, large blocks, a filter)
    transfer: TransferSettings = TransferSettings()

    def dataset(self, name):
        return next((d for d in self.datasets if d.name == name), None)

    def target_pool_names(self):
        if self.technology in SNAPSHOT_TECHNOLOGIES:
            return implied_target_pool_names(self.versions)
        return [tp.name for tp in self.target_pools]

    def target_pool_for(self, version):
        """The target pool of copy version ``version`` (1-based) in a steady
        rotation that started empty. The engine uses
        :meth:`PoolState.target_pool_for`, which also knows the kept versions."""
        names = self.target_pool_names()
        return names[(version - 1) % len(names)]

    def as_dict(self):
        """The contract's ``pool`` shape (plus our extensions)."""
        if self.technology in SNAPSHOT_TECHNOLOGIES:
            tps = [{"name": n, "volumes": []} for n in self.target_pool_names()]
        else:
            tps = [tp.as_dict() for tp in self.target_pools]
        return {
            "name": self.name,
            "technology": self.technology,
            "sources": list(self.sources),
            "versions": self.versions,
            "target_pools": tps,
            "snapshot_size": self.snapshot_size,
            "consistency": self.consistency,
            "pre_copy_hooks": [h.as_dict() for h in self.pre_copy_hooks],
            "post_copy_hooks": [h.as_dict() for h in self.post_copy_hooks],
            "max_age": self.max_age,
            "ssh": self.ssh.as_dict() if self.ssh is not None else None,
            "retention": self.retention,
            "datasets": [d.as_dict() for d in self.datasets],
            "transfer": self.transfer.as_dict() if isinstance(self.transfer, TransferSettings) else self.transfer,
        }


@dataclass(frozen=True)
class Record:
    """A replication record (an existing version) or a pre-pairing record
    (a future version). ``pairs`` keep the order of the source pool.

    ``created`` is an ISO 8601 UTC timestamp string. ``label`` and ``status``
    only mean something on replication records."""

    kind: str
    version: int
    target_pool: str
    created: str
    pairs: Tuple[CopyPair, ...]
    label: Optional[str] = None
    status: str = STATUS_VALID
    # what went wrong around a copy that was still kept (a post-copy hook
    # failed, the watchdog thawed early): shown to the operator, kept here
    warnings: Tuple[str, ...] = ()
    # a hold (copy_version state=held): rotation, retention, state=absent
    # without force and pool removal never delete or replace this version
    held: bool = False
    hold_reason: Optional[str] = None
    # where the version's copies are mounted for browsing (copy_version
    # state=mounted), or None: rotation, retention and deletion refuse a
    # mounted version (its copies are in use) until it is unmounted
    mounted: Optional[str] = None
    # the datasets this version holds (the backup dataset inventory of the
    # version, time stamp ``created``): the pool's datasets as they lay on
    # the sources when the copy was taken
    datasets: Tuple[Dataset, ...] = ()

    def dataset(self, name):
        return next((d for d in self.datasets if d.name == name), None)

    def target_of(self, source):
        return _target_of(self.pairs, source)

    def identities(self):
        """``{target: identity}`` of the pairs whose copy identity is known."""
        return dict((p.target, p.identity) for p in self.pairs if p.identity is not None)

    def with_identities(self, identities):
        """This record with the identities of ``identities`` ({target:
        identity}) filled in where the pair has none yet."""
        pairs = tuple(replace(p, identity=identities[p.target])
                      if p.identity is None and identities.get(p.target) else p for p in self.pairs)
        return replace(self, pairs=pairs)

    def as_dict(self):
        out = {
            "version": self.version,
            "target_pool": self.target_pool,
            "created": self.created,
            "pairs": [p.as_dict() for p in self.pairs],
        }
        if self.kind == RECORD_REPLICATION:
            out["label"] = self.label
            out["status"] = self.status
            out["warnings"] = list(self.warnings)
            out["held"] = self.held
            out["hold_reason"] = self.hold_reason
            out["mounted"] = self.mounted
            out["datasets"] = [d.as_dict() for d in self.datasets]
        return out


@dataclass(frozen=True)
class Unpaired:
    """A source for which target selection found no eligible target, with the
    reason each candidate was rejected (step 518's notification)."""

    source: str
    target_pool: str
    reasons: Tuple[str, ...]

    def as_dict(self):
        return {"source": self.source, "target_pool": self.target_pool, "reasons": list(self.reasons)}


#: what a journal can describe; ``copy`` is what state files written before
#: the other operations were journaled hold (and the default when absent)
JOURNAL_COPY = "copy"
JOURNAL_DELETE = "delete"
JOURNAL_RESTORE = "restore"
JOURNAL_REMOVE = "remove"
JOURNAL_RESTORE_ELSEWHERE = "restore_elsewhere"
JOURNAL_RESTORE_PATHS = "restore_paths"
JOURNAL_DUMP = "dump"
JOURNAL_OPERATIONS = (JOURNAL_COPY, JOURNAL_DELETE, JOURNAL_RESTORE, JOURNAL_REMOVE, JOURNAL_RESTORE_ELSEWHERE,
                      JOURNAL_RESTORE_PATHS, JOURNAL_DUMP)


@dataclass(frozen=True)
class Journal:
    """A mutation of the storage in progress, written to the state file
    BEFORE any volume is touched, so an interrupted run is visible to the next.

    ``operation`` and its phases:

    * ``copy``: ``copying`` (copies may be partly made, under staging names),
      ``copied`` (all staged copies exist), ``committing`` (replaced copies
      are being removed and staged ones promoted);
    * ``delete`` (copy_version state=absent): ``deleting``; ``pairs`` are the
      copies of ``version`` being deleted, its record stays until they are;
    * ``restore`` (copy_version state=restored): ``restoring``; ``pairs`` are
      the pairs being restored, ``asides`` where each source's data is moved
      while its copy takes its place (CopyPair(source, aside path)) and
      ``done`` the sources already restored;
    * ``restore_elsewhere`` (copy_version state=restored, restore_to
      without paths): ``restoring``; ``asides`` name the NEW volume each
      pair's copy becomes (CopyPair(source, volume)), ``done`` the sources
      whose volume exists; repair creates the rest (never deletes one);
    * ``remove`` (copy_pool state=absent, remove_copies): ``deleting``;
      ``pairs`` are the copies of every kept version, the state file goes
      once they are deleted;
    * ``restore_paths`` (copy_version state=restored with paths):
      ``restoring``; ``asides`` name each file or directory being restored
      (CopyPair(source, destination path)) and ``pid`` the process whose
      temporary names (``.pitcopy-restore.*.<pid>``) are beside them, so
      that verify_records finds what a killed restore left; repair removes
      the partial copies and puts back what was moved aside. No volume is
      touched: these are not the storage's names.
    * ``dump`` (copy_version state=dumped): ``dumping``; ``medium`` is the
      directory the version's streams are written to and ``pid`` the
      process whose temporary names (``.pitcopy-dump.<pid>.*``) a killed
      run leaves under ``<medium>/<pool>/v<version>/``; repair removes them
      and nothing else of the medium.

    ``medium`` on a ``restore_elsewhere`` journal: the volumes are received
    from the streams of that medium (the storage media inventory), not
    snapshotted from the copies; its ``pairs`` are then (source, stream
    path), files, not volumes."""

    operation: str
    version: int
    target_pool: str
    pairs: Tuple[CopyPair, ...]
    phase: str
    started: str
    replaced_version: Optional[int] = None
    label: Optional[str] = None
    pid: Optional[int] = None
    staged: Tuple[CopyPair, ...] = ()
    asides: Tuple[CopyPair, ...] = ()
    done: Tuple[str, ...] = ()
    medium: Optional[str] = None

    def aside_of(self, source):
        return _target_of(self.asides, source)

    def as_dict(self):
        out = {
            "operation": self.operation,
            "version": self.version,
            "target_pool": self.target_pool,
            "pairs": [p.as_dict() for p in self.pairs],
            "phase": self.phase,
            "started": self.started,
            "replaced_version": self.replaced_version,
            "label": self.label,
            "pid": self.pid,
            "staged": [p.as_dict() for p in self.staged],
        }
        if self.operation == JOURNAL_RESTORE_ELSEWHERE:
            out["volumes"] = [{"source": p.source, "volume": p.target} for p in self.asides]
            out["done"] = list(self.done)
        if self.operation == JOURNAL_RESTORE:
            out["asides"] = [{"source": p.source, "aside": p.target} for p in self.asides]
            out["done"] = list(self.done)
        if self.operation == JOURNAL_RESTORE_PATHS:
            out["destinations"] = [{"source": p.source, "destination": p.target} for p in self.asides]
        if self.medium is not None:
            out["medium"] = self.medium
        return out


@dataclass(frozen=True)
class MediaStream:
    """One source's stream of a dump: ``stream`` is its path relative to
    the medium (``<pool>/v<version>/<name>``), ``size`` its bytes and
    ``sha256`` the hex digest computed while it was written."""

    source: str
    stream: str
    size: int
    sha256: str

    def as_dict(self):
        return {"source": self.source, "stream": self.stream, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class MediaDump:
    """One entry of the storage media inventory (Table 3.2, [0063]-[0065]):
    version ``version`` (taken at ``version_time``) dumped at ``dumped`` to
    the directory ``medium``, one stream per source. Not part of the
    replication record: it outlives the version's copies, and deleting a
    version never deletes its dumps."""

    medium: str
    version: int
    version_time: str
    streams: Tuple[MediaStream, ...]
    dumped: str

    def as_dict(self):
        return {"medium": self.medium, "version": self.version, "version_time": self.version_time,
                "streams": [s.as_dict() for s in self.streams], "dumped": self.dumped}


@dataclass(frozen=True)
class PoolState:
    """Everything the state file of one copy pool holds."""

    definition: PoolDefinition
    replication_records: Tuple[Record, ...] = ()
    prepairing_records: Tuple[Record, ...] = ()
    last_version: int = 0
    journal: Optional[Journal] = None
    # the storage media inventory: the versions dumped to media
    media: Tuple[MediaDump, ...] = ()

    def dump(self, medium, version):
        return next((d for d in self.media if d.medium == medium and d.version == version), None)

    def grid_choice(self, when, tz=None):
        """(target pool, records to drop) of the next version taken at
        ``when`` (aware datetime) under the pool's ``retention`` grid (see
        _retention.grid_choice); only valid versions represent a bucket."""
        return grid_choice(parse_grid(self.definition.retention), self.replication_records,
                           self.definition.target_pool_names(), when, tz,
                           valid=lambda r: r.status == STATUS_VALID)

    def target_pool_for(self, version, when=None, tz=None):
        """The target pool that upcoming copy version ``version`` will use.

        With a ``retention`` grid and ``when`` (the time of the copy), the
        next version goes where the grid says (``grid_choice``): which
        version the grid still needs depends on the time. Versions after
        the next one, or without ``when``, follow the rule below (a guess
        for a grid pool: pre-pairing records beyond the next version).

        An empty target pool is filled first (in name order), else the one
        holding the oldest kept version is reused. From an empty start this is
        the steady rotation ``(n - 1) % P``; after target pools are added or a
        version is deleted, it never replaces a newer version while an older
        one or an empty target pool exists."""
        names = self.definition.target_pool_names()
        kept = sorted((r.version, r.target_pool) for r in self.replication_records if r.target_pool in names)
        n = self.last_version + 1
        if self.definition.retention is not None and when is not None and version == n:
            return self.grid_choice(when, tz)[0]
        if version < n:
            raise ValueError("version %d is not an upcoming version (next is %d)" % (version, n))
        while True:
            used = set(vt[1] for vt in kept)
            empty = [tp for tp in names if tp not in used]
            tp = empty[0] if empty else kept[0][1]
            if n == version:
                return tp
            kept = sorted([vt for vt in kept if vt[1] != tp] + [(n, tp)])
            del kept[:max(0, len(kept) - self.definition.versions)]
            n += 1

    def copy_scope(self):
        """Where this pool's copies can be (CopyScope): what the definition,
        the records and the journal name, for ``Backend.list_copies``."""
        d = self.definition
        sources = list(d.sources)
        targets = [v for tp in d.target_pools for v in tp.volumes]
        staged = []
        records = list(self.replication_records) + list(self.prepairing_records)
        if self.journal is not None and self.journal.medium is None:
            # (a media journal names streams, files, not volumes)
            records.append(self.journal)
            staged.extend(p.target for p in self.journal.staged)
            if self.journal.operation != JOURNAL_RESTORE_PATHS:
                # a file restore's destinations are files, not volumes
                staged.extend(p.target for p in self.journal.asides)
        for r in records:
            sources.extend(p.source for p in r.pairs)
            targets.extend(p.target for p in r.pairs)
        return CopyScope(d.name, _unique(sources), _unique(targets), _unique(staged))

    def replication(self, version):
        for r in self.replication_records:
            if r.version == version:
                return r
        return None

    def prepairing(self, version):
        for r in self.prepairing_records:
            if r.version == version:
                return r
        return None


def _unique(names):
    seen = set()
    return tuple(n for n in names if isinstance(n, str) and n and not (n in seen or seen.add(n)))


@dataclass(frozen=True)
class CopyScope:
    """Where the copies of copy pool ``pool`` can be, so that
    ``Backend.list_copies`` looks there and not host-wide (a host with many
    pools would otherwise pay for every pool's copies on every run).

    ``sources``: every source the definition, the records or the journal
    name (copies of snapshot technologies, temporary snapshots and restore
    asides are beside or on them); ``targets``: every listed target of the
    definition and every target the records and the journal name (a copy
    left on a target after a redefinition moved the pool elsewhere is still
    found through its record); ``staged``: the staged copies and restore
    asides the journal names. Each backend turns these into its places: the
    btrfs directories, the ZFS datasets, the LVM volume groups."""

    pool: str
    sources: Tuple[str, ...] = ()
    targets: Tuple[str, ...] = ()
    staged: Tuple[str, ...] = ()

    def with_pairs(self, pairs):
        """This scope with the sources and targets of ``pairs`` too."""
        return replace(self, sources=_unique(self.sources + tuple(p.source for p in pairs)),
                       targets=_unique(self.targets + tuple(p.target for p in pairs)))


@dataclass(frozen=True)
class Finding:
    """One discrepancy between the records and the host (verify_records)."""

    record: str
    version: Optional[int]
    source: Optional[str]
    target: Optional[str]
    problem: str
    action: str

    def as_dict(self):
        return {
            "record": self.record,
            "version": self.version,
            "source": self.source,
            "target": self.target,
            "problem": self.problem,
            "action": self.action,
        }


@dataclass(frozen=True)
class CopyInfo:
    """A copy that exists on the host and carries our ownership mark."""

    target: str
    pool: str
    source: Optional[str] = None
    version: Optional[int] = None
    staged: bool = False
    valid: bool = True
    detail: str = ""
    #: what identifies the volume on the storage NOW (read from the storage,
    #: not from the mark): see CopyPair.identity. None if the backend cannot tell.
    identity: Optional[str] = None


@dataclass
class CopyOutcome:
    """What a backend reports of one version's copies."""

    staged: List[CopyPair] = field(default_factory=list)
    window_ms: float = 0.0
    frozen: List[str] = field(default_factory=list)
    hooks: List[Dict] = field(default_factory=list)
