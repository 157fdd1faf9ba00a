# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state store: one YAML file per copy pool under ``state_dir``.

API (what the engine relies on; implementers keep these names):

    store = StateStore(state_dir, lock_timeout=30.0)
    store.pool_names() -> sorted [str]          # pools with a state file
    with store.locked(name):                    # one lock per pool (flock on
        ...                                     # <state_dir>/.<name>.lock);
                                                # PoolBusy after lock_timeout s
    store.load(name) -> PoolState or None       # None: no state file
    store.save(state)                           # atomic: temp file in the same
                                                # dir, fsync, rename, fsync dir
    store.remove(name)                          # unlink + fsync dir
    store.path(name) -> str

    dump_state(state) -> dict / load_state(dict) -> PoolState   # the codec
    SCHEMA_VERSION = 2

Integrity (docs/state-file.md): a file ends in a seal line over every byte
before it (``seal()``/``unseal()``) and a sealed file must carry every key;
a ``schema_version`` 1 file (earlier releases, unsealed) is still read and
sealed by the next write. ``save()`` first makes the file it replaces the
previous generation ``.<name>.yml.prev`` (``prev_path``, ``load_previous``;
``save(keep_previous=False)`` for a reseal); ``remove()`` removes it too.
``load_hand_edit(name)`` reads an unsealed hand edit for verify_records
reseal. ``locked(name, shared=True)`` is a reader's lock (flock LOCK_SH):
readers share it and create nothing, so they work on a read-only state_dir.

Refusals (StateFileError / InvalidInput, file left untouched): a file that
does not parse, one with a newer ``schema_version``, an unreadable one; a
state_dir that is a symlink, not a directory, or group/world-writable; a pool
name that is not a safe file name. state_dir is created 0700, files 0600.

Additions beyond that API (all additive): ``store.read_raw(name)`` returns the
file's bytes unchanged (tests compare them around refusals);
``store.lock_path(name)``; ``locked()`` is re-entrant within one thread of one
store; ``save()`` and ``remove()`` take the pool's lock themselves when the
caller does not hold it; ``save(state, _fault=callable)`` and the module
global ``_FAULT`` are test-only hooks called with the name of each step of
the write (see ``WRITE_STEPS``) so crash tests can kill the process there.

File format (docs/state-file.md has the operator's version): lists of names
and lists of copy pairs are YAML literal blocks, one name or one
``source -> target`` pair per line. A state of 12 versions x 10,000 pairs is
then a few dozen YAML nodes instead of a quarter of a million, which is what
makes load and save take tens of milliseconds instead of seconds (PyYAML
builds a Python object per node even with the C parser). A list whose names
would make a line ambiguous (a newline, ``" -> "`` in a source, control
characters, trailing blanks) is written as a plain YAML list instead; the
loader accepts both forms.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import datetime
import errno
import fcntl
import hashlib
import math
import os
import re
import stat
import threading
import time
from dataclasses import replace

try:
    import yaml
    HAS_YAML = True
    YAML_IMPORT_ERROR = None
except ImportError as exc:  # reported by the module wrapper
    yaml = None
    HAS_YAML = False
    YAML_IMPORT_ERROR = exc

from ansible_collections.pitcopy.versions.plugins.module_utils._definition import check_dataset, check_values
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    InvalidInput,
    PoolBusy,
    StateFileError,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    RECORD_PREPAIRING,
    RECORD_REPLICATION,
    STATUS_VALID,
    CopyPair,
    Dataset,
    DatasetPlace,
    Hook,
    Journal,
    MediaDump,
    MediaStream,
    PoolDefinition,
    PoolState,
    Record,
    SshSettings,
    TransferSettings,
    TargetPool,
)

# 2: the file ends in a seal line and every key is written and required.
# 1: earlier releases (no seal, optional keys); still read, sealed on the next write.
SCHEMA_VERSION = 2
LEGACY_SCHEMA_VERSION = 1

DEFAULT_STATE_DIR = "/var/lib/pitcopy"
DEFAULT_LOCK_TIMEOUT = 30.0

# The points of a state write where a crash test may kill the process.
WRITE_STEPS = ("temp_created", "written", "fsynced", "previous_kept", "replaced", "dir_fsynced")

# Test-only: callable(step_name) consulted at every write step when save()
# got no ``_fault`` argument. Never set outside tests.
_FAULT = None

PAIR_SEPARATOR = " -> "

# The seal: the last line of a file written by this version, over every byte
# before it. Being last, any truncation removes or cuts it; the digest
# catches a changed byte anywhere before it, the byte count a cut that
# happened to land on a line boundary of a hand-copied file.
SEAL_PREFIX = b"# pitcopy-seal: "
_SEAL_RE = re.compile(br"(?:\A|\n)(# pitcopy-seal: sha256=([0-9a-f]{64}) bytes=([0-9]{1,12})\n)\Z")
_SCHEMA_LINE_RE = re.compile(br"^schema_version: ([0-9]{1,6})\n", re.M)
SEAL_RULE = "a last line '# pitcopy-seal: sha256=<hex digest of every byte before it> bytes=<their number>'"

# Keys a sealed (schema_version 2) file must carry; an older file may omit
# the optional ones (the loader's defaults apply). Pre-pairing records carry
# label and status only when set (they mean nothing there).
_REQUIRED_KEYS = {
    "the document": ("schema_version", "definition", "last_version", "journal",
                     "replication_records", "prepairing_records"),
    "definition": ("name", "technology", "versions", "sources", "target_pools", "snapshot_size",
                   "consistency", "pre_copy_hooks", "post_copy_hooks"),
    "target_pool": ("name", "volumes"),
    "hook": ("argv", "timeout", "abort_on_failure"),
    "replication": ("version", "target_pool", "created", "label", "status", "warnings", "pairs"),
    "prepairing": ("version", "target_pool", "created", "pairs"),
    "journal": ("operation", "version", "target_pool", "phase", "started", "replaced_version", "label",
                "pid", "pairs", "staged"),
}

_POOL_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")
POOL_NAME_RULE = ("1 to 64 characters: letters, digits, '_', '.' or '-', "
                  "not starting with '.' or '-'")

_BLANK_AT_LINE_END = re.compile(r"[ ]$", re.M)

_HEADER = (
    u"# pitcopy.versions state of copy pool '%s'.\n"
    u"# Written atomically by the collection; read docs/state-file.md before editing by hand.\n"
)


def _step(name, fault=None):
    """A named point of the state write; test hooks may stop the process here."""
    hook = fault if fault is not None else _FAULT
    if hook is not None:
        hook(name)


# --------------------------------------------------------------------------
# YAML plumbing
# --------------------------------------------------------------------------

class _Block(str):
    """A string written as a YAML literal block (one item per line)."""


class _Flow(list):
    """A list written in flow style (``[a, b]``)."""


def _represent_block(dumper, data):
    return dumper.represent_scalar(u"tag:yaml.org,2002:str", str(data), style="|")


def _represent_flow(dumper, data):
    return dumper.represent_sequence(u"tag:yaml.org,2002:seq", list(data), flow_style=True)


def _construct_mapping_unique(loader, node):
    """A mapping, refusing duplicate keys instead of keeping the last."""
    loader.flatten_mapping(node)
    seen = set()
    for key_node, dummy in node.value:
        key = loader.construct_object(key_node, deep=False)
        try:
            duplicate = key in seen
        except TypeError:
            continue  # unhashable keys fail later, in construct_mapping
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                "found duplicate key %r" % (key,), key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


def _ignore_aliases(dummy_self, dummy_data):
    # Anchors and aliases would make the file harder to read and edit.
    return True


def yaml_classes(pure=False):
    """(Dumper, Loader) for the state file: PyYAML's safe ones, libyaml-backed
    unless ``pure`` or libyaml is missing, with our representers."""
    if pure or not hasattr(yaml, "CSafeLoader"):
        dumper_base, loader_base = yaml.SafeDumper, yaml.SafeLoader
    else:
        dumper_base, loader_base = yaml.CSafeDumper, yaml.CSafeLoader
    dumper = type("StateDumper", (dumper_base,), {"ignore_aliases": _ignore_aliases})
    dumper.add_representer(_Block, _represent_block)
    dumper.add_representer(_Flow, _represent_flow)
    loader = type("StateLoader", (loader_base,), {})
    loader.add_constructor(u"tag:yaml.org,2002:map", _construct_mapping_unique)
    return dumper, loader


if HAS_YAML:
    _Dumper, _Loader = yaml_classes()
    YAML_C = hasattr(yaml, "CSafeLoader")
else:  # pragma: no cover - the module wrapper refuses to run without PyYAML
    _Dumper = _Loader = None
    YAML_C = False


def _yaml_dump(data, allow_unicode=True):
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=allow_unicode, width=100)


def _yaml_load(text):
    return yaml.load(text, Loader=_Loader)  # nosec - a safe loader


# --------------------------------------------------------------------------
# The codec
# --------------------------------------------------------------------------

class _Shape(ValueError):
    """The parsed document does not have the state file's shape."""

    def __init__(self, where, problem):
        super(_Shape, self).__init__("%s: %s" % (where, problem))
        self.where = where
        self.problem = problem


def _fits_block(text, lines):
    """Whether ``text`` (``lines`` lines, each ending in a newline) can be a
    literal block that reads back as exactly those lines: no line break inside
    a line (YAML would also break at \x85, \u2028, \u2029), nothing
    unprintable (the emitter would fall back to an escaped string), no blank
    at a line's end (same)."""
    return (text.count(u"\n") == lines and text.replace(u"\n", u"").isprintable()
            and not _BLANK_AT_LINE_END.search(text))


def _dump_names(names):
    names = list(names)
    if not names:
        return []
    text = u"\n".join(names) + u"\n"
    if all(names) and _fits_block(text, len(names)):
        return _Block(text)
    return list(names)


def _dump_pairs(pairs):
    pairs = list(pairs)
    if not pairs:
        return []
    n = len(pairs)
    text = u"\n".join([p.source + PAIR_SEPARATOR + p.target for p in pairs]) + u"\n"
    # A line is split at its separator, so each line must hold exactly one.
    # Two occurrences can only overlap as " -> -> " (a source ending in " ->"),
    # so without that, n non-overlapping occurrences are one per line.
    if _fits_block(text, n) and text.count(PAIR_SEPARATOR) == n and u" -> -> " not in text:
        return _Block(text)
    return [_Flow([p.source, p.target]) for p in pairs]


def _dump_hook(hook, where):
    return {
        "argv": _Flow(_str(a, "%s.argv[%d]" % (where, i)) for i, a in enumerate(hook.argv)),
        "timeout": _int(hook.timeout, where + ".timeout"),
        "abort_on_failure": _bool(hook.abort_on_failure, where + ".abort_on_failure"),
    }


def _checked(d, where):
    """``d`` unless a value breaks the definition rules every definition
    obeys (_definition.check_values, the engine's own rules): the store
    writes nothing it would refuse to read and reads nothing the engine
    would have refused."""
    try:
        check_values(d)
    except InvalidInput as exc:
        raise _Shape(where, exc.msg)
    return d


def _dump_definition(d, where="definition"):
    out = {
        "name": _str(d.name, where + ".name"),
        "technology": _str(d.technology, where + ".technology"),
        "versions": _int(d.versions, where + ".versions"),
        "sources": _dump_names(d.sources),
        "target_pools": [_dump_target_pool(tp, "%s.target_pools[%d]" % (where, i))
                         for i, tp in enumerate(d.target_pools)],
        "snapshot_size": _str(d.snapshot_size, where + ".snapshot_size", nullable=True),
        "consistency": _str(d.consistency, where + ".consistency"),
        "pre_copy_hooks": [_dump_hook(h, "%s.pre_copy_hooks[%d]" % (where, i)) for i, h in enumerate(d.pre_copy_hooks)],
        "post_copy_hooks": [_dump_hook(h, "%s.post_copy_hooks[%d]" % (where, i)) for i, h in enumerate(d.post_copy_hooks)],
    }
    # only when set: a file without it means what it meant before max_age
    # existed, and an older collection refuses a file that has it (an
    # unknown key) rather than drop the limit
    if d.max_age is not None:
        out["max_age"] = _str(d.max_age, where + ".max_age")
    # likewise: an older collection refuses a grid pool rather than rotate
    # it oldest-first and delete what the grid keeps
    if d.retention is not None:
        out["retention"] = _str(d.retention, where + ".retention")
    # likewise: an older collection refuses a pool with remote targets
    # rather than copy to the managed host instead
    # likewise: only when the pool names datasets (an older collection
    # refuses the file rather than drop the dataset inventory)
    if d.datasets:
        out["datasets"] = _dump_datasets(d.datasets, where + ".datasets")
    if d.ssh is not None:
        out["ssh"] = {"port": _int(d.ssh.port, where + ".ssh.port") if d.ssh.port is not None else None,
                      "identity_file": _str(d.ssh.identity_file, where + ".ssh.identity_file", nullable=True),
                      "options": [_str(o, where + ".ssh.options") for o in d.ssh.options]}
    # likewise: only when not the defaults (an older collection refuses a
    # pool whose streams are shaped rather than send them plain)
    if isinstance(d.transfer, TransferSettings) and not d.transfer.is_default():
        t = d.transfer
        out["transfer"] = {"raw": _str(t.raw, where + ".transfer.raw"),
                           "compressed": _bool(t.compressed, where + ".transfer.compressed"),
                           "large_block": _bool(t.large_block, where + ".transfer.large_block"),
                           "filter": _Flow(_str(a, "%s.transfer.filter[%d]" % (where, i)) for i, a in enumerate(t.filter))}
    _checked(d, where)
    return out


def _dump_datasets(datasets, where):
    out = []
    for i, ds in enumerate(datasets):
        w = "%s[%d]" % (where, i)
        out.append({"name": _str(ds.name, w + ".name"), "path": _str(ds.path, w + ".path"),
                    "places": [{"source": _str(p.source, "%s.places[%d].source" % (w, j)),
                                "path": _str(p.path, "%s.places[%d].path" % (w, j)),
                                "at": _str(p.at, "%s.places[%d].at" % (w, j))}
                               for j, p in enumerate(ds.places)]})
    return out


def _load_datasets(value, where):
    """The datasets of a definition or a replication record; each checked
    as the engine would (check_dataset), so a hand-edited path with ``..``
    or a relative place is refused, not acted on."""
    out = []
    for i, item in enumerate(_list(value, where)):
        w = "%s[%d]" % (where, i)
        _mapping(item, w, ("name", "path", "places"))
        places = []
        for j, p in enumerate(_list(item["places"], w + ".places")):
            pw = "%s.places[%d]" % (w, j)
            _mapping(p, pw, ("source", "path", "at"))
            places.append(DatasetPlace(_str(p["source"], pw + ".source"), _str(p["path"], pw + ".path"),
                                       _str(p["at"], pw + ".at")))
        ds = Dataset(_str(item["name"], w + ".name"), _str(item["path"], w + ".path"), tuple(places))
        try:
            check_dataset(ds, w)
        except InvalidInput as exc:
            raise _Shape(w, exc.msg)
        out.append(ds)
    if not out:
        raise _Shape(where, "is written only when there are datasets; found an empty list")
    return tuple(out)


def _dump_record(r, kind, where):
    if r.kind != kind:
        raise _Shape(where, "a %s record was filed among the %s records" % (r.kind, kind))
    out = {
        "version": _int(r.version, where + ".version", minimum=1),
        "target_pool": _str(r.target_pool, where + ".target_pool"),
        "created": _str(r.created, where + ".created"),
    }
    # Label and status mean something on replication records only; keep them
    # on pre-pairing records only when set, so the file stays lossless.
    if kind == RECORD_REPLICATION or r.label is not None or r.status != STATUS_VALID:
        out["label"] = _str(r.label, where + ".label", nullable=True)
        out["status"] = _str(r.status, where + ".status")
    if kind == RECORD_REPLICATION or r.warnings:
        out["warnings"] = [_str(w, "%s.warnings[%d]" % (where, i)) for i, w in enumerate(r.warnings)]
    # only when held, and both keys together: a file without a hold reads
    # as before, and an older collection refuses a file with one (an
    # unknown key) rather than rotate a held version away
    if r.held or r.hold_reason is not None:
        if kind != RECORD_REPLICATION or not _bool(r.held, where + ".held"):
            raise _Shape(where, "only a held replication record carries a hold")
        out["held"] = True
        out["hold_reason"] = _str(r.hold_reason, where + ".hold_reason", nullable=True)
    # only when mounted: a file without a mount reads as before, and an
    # older collection refuses one (an unknown key) rather than rotate the
    # mounted version away
    if r.mounted is not None:
        if kind != RECORD_REPLICATION:
            raise _Shape(where, "only a replication record can be mounted")
        out["mounted"] = _str(r.mounted, where + ".mounted")
    # the backup dataset inventory of the version: only when it holds
    # datasets, so a file without datasets reads as before
    if r.datasets:
        if kind != RECORD_REPLICATION:
            raise _Shape(where, "only a replication record holds datasets")
        out["datasets"] = _dump_datasets(r.datasets, where + ".datasets")
    out["pairs"] = _dump_pairs(r.pairs)
    if any(p.identity is not None for p in r.pairs):
        out["identities"] = _dump_identities(r.pairs, where + ".identities")
    # send technologies: what each pair's transfer was (issue 14); only
    # when known, so a file without it reads as before
    if any(p.bytes_sent is not None for p in r.pairs):
        out["transfers"] = dict(
            (p.target, {"base_version": _int(p.base_version, where + ".transfers.base_version", nullable=True),
                        "bytes_sent": _int(p.bytes_sent, where + ".transfers.bytes_sent")})
            for p in r.pairs if p.bytes_sent is not None)
    return out


def _dump_identities(pairs, where):
    """The copies' identities of a record: a literal block with one
    ``<target> <identity>`` line per pair whose identity is known (an
    identity never holds a blank, so the last blank splits the line), or a
    mapping {target: identity} when a target would make a line ambiguous."""
    known = [(p.target, _str(p.identity, where)) for p in pairs if p.identity is not None]
    if all(ident and not any(c.isspace() for c in ident) for _t, ident in known):
        text = u"\n".join(t + u" " + ident for t, ident in known) + u"\n"
        if all(t for t, _i in known) and _fits_block(text, len(known)):
            return _Block(text)
    return dict(known)


def _dump_journal(j, where="journal"):
    if j is None:
        return None
    out = {
        "operation": _str(j.operation, where + ".operation"),
        "version": _int(j.version, where + ".version"),
        "target_pool": _str(j.target_pool, where + ".target_pool"),
        "phase": _str(j.phase, where + ".phase"),
        "started": _str(j.started, where + ".started"),
        "replaced_version": _int(j.replaced_version, where + ".replaced_version", nullable=True),
        "label": _str(j.label, where + ".label", nullable=True),
        "pid": _int(j.pid, where + ".pid", nullable=True),
        "pairs": _dump_pairs(j.pairs),
        "staged": _dump_pairs(j.staged),
    }
    # restore only: older readers never see these keys on a copy journal
    if j.asides or j.done:
        out["asides"] = _dump_pairs(j.asides)
        out["done"] = [_str(s, "%s.done[%d]" % (where, i)) for i, s in enumerate(j.done)]
    # dump and restore from media only
    if j.medium is not None:
        out["medium"] = _str(j.medium, where + ".medium")
    return out


_SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")


def _media_problem(d, where):
    """Raise _Shape unless the dump ``d`` (a MediaDump) is one the engine
    could have written: an absolute, normalized medium; streams under
    ``<pool>/v<version>/`` of it (never ``..``, never absolute); a size
    and a sha256 each; one stream per source."""
    medium = _str(d.medium, where + ".medium")
    if not medium.startswith("/") or os.path.normpath(medium) != medium or medium == "/":
        raise _Shape(where + ".medium", "%r is not an absolute, normalized directory other than /" % medium)
    _int(d.version, where + ".version", minimum=1)
    _str(d.version_time, where + ".version_time")
    _str(d.dumped, where + ".dumped")
    if not d.streams:
        raise _Shape(where + ".streams", "a dump holds at least one stream; found none")
    seen = set()
    for i, st in enumerate(d.streams):
        w = "%s.streams[%d]" % (where, i)
        source = _str(st.source, w + ".source")
        if source in seen:
            raise _Shape(w + ".source", "%r has two streams in one dump" % source)
        seen.add(source)
        rel = _str(st.stream, w + ".stream")
        parts = rel.split("/")
        if rel.startswith("/") or os.path.normpath(rel) != rel or ".." in parts or len(parts) != 3 or \
                parts[1] != "v%d" % d.version:
            raise _Shape(w + ".stream", "%r is not a stream path <pool>/v%d/<name> relative to the medium"
                         % (rel, d.version))
        _int(st.size, w + ".size", minimum=0)
        if not _SHA256_RE.match(_str(st.sha256, w + ".sha256")):
            raise _Shape(w + ".sha256", "%r is not a sha256 hex digest (64 lower-case hex digits)" % st.sha256)


def _dump_media(media):
    out = []
    seen = set()
    for i, d in enumerate(media):
        where = "media[%d]" % i
        _media_problem(d, where)
        if (d.medium, d.version) in seen:
            raise _Shape(where, "version %d is dumped to %s twice" % (d.version, d.medium))
        seen.add((d.medium, d.version))
        out.append({"medium": d.medium, "version": d.version, "version_time": d.version_time,
                    "streams": [{"source": st.source, "stream": st.stream, "size": st.size, "sha256": st.sha256}
                                for st in d.streams],
                    "dumped": d.dumped})
    return out


def _load_media(value):
    out = []
    seen = set()
    items = _list(value, "media")
    if not items:
        raise _Shape("media", "is written only when versions were dumped; found an empty list")
    for i, item in enumerate(items):
        where = "media[%d]" % i
        _mapping(item, where, ("medium", "version", "version_time", "streams", "dumped"))
        streams = []
        for j, st in enumerate(_list(item["streams"], where + ".streams")):
            w = "%s.streams[%d]" % (where, j)
            _mapping(st, w, ("source", "stream", "size", "sha256"))
            streams.append(MediaStream(st["source"], st["stream"], st["size"], st["sha256"]))
        d = MediaDump(item["medium"], item["version"], item["version_time"], tuple(streams), item["dumped"])
        _media_problem(d, where)
        d = replace(d, version_time=_str(d.version_time, where), dumped=_str(d.dumped, where))
        if (d.medium, d.version) in seen:
            raise _Shape(where, "version %d is dumped to %s twice" % (d.version, d.medium))
        seen.add((d.medium, d.version))
        out.append(d)
    return tuple(out)


def _dump_state(state):
    out = {
        "schema_version": SCHEMA_VERSION,
        "definition": _dump_definition(state.definition),
        "last_version": _int(state.last_version, "last_version", minimum=0),
        "journal": _dump_journal(state.journal),
        "replication_records": [_dump_record(r, RECORD_REPLICATION, "replication_records[%d]" % i)
                                for i, r in enumerate(state.replication_records)],
        "prepairing_records": [_dump_record(r, RECORD_PREPAIRING, "prepairing_records[%d]" % i)
                               for i, r in enumerate(state.prepairing_records)],
    }
    # the storage media inventory: only when a version was dumped, so a file
    # without dumps reads as before, and an older collection refuses one (an
    # unknown key) rather than drop the inventory on its next write
    if state.media:
        out["media"] = _dump_media(state.media)
    return out


def dump_state(state):
    """PoolState -> the plain dict written to the state file (stable key order).

    StateFileError when the state holds a value the file cannot carry (a
    version that is not an integer, a name that is not a string, ...)."""
    try:
        return _dump_state(state)
    except _Shape as exc:
        raise StateFileError("refusing to write the state of copy pool %r: %s" % (
            getattr(state.definition, "name", None), exc), where=exc.where)
    except (TypeError, AttributeError) as exc:
        raise StateFileError("refusing to write the state of copy pool %r: a name or pair is not a string (%s)" % (
            getattr(state.definition, "name", None), exc))


def _type_name(value):
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _mapping(value, where, required, optional=()):
    if not isinstance(value, dict):
        raise _Shape(where, "expected a mapping, found %s" % _type_name(value))
    unknown = [k for k in value if k not in required and k not in optional]
    if unknown:
        raise _Shape(where, "unknown key(s) %s; expected %s" % (
            ", ".join(repr(k) for k in unknown), ", ".join(tuple(required) + tuple(optional))))
    missing = [k for k in required if k not in value]
    if missing:
        raise _Shape(where, "missing key(s) %s" % ", ".join(missing))
    return value


def _str(value, where, nullable=False):
    if value is None and nullable:
        return None
    if isinstance(value, (datetime.datetime, datetime.date)):
        # An unquoted timestamp edited by hand; keep its ISO form.
        return value.isoformat()
    if not isinstance(value, str):
        raise _Shape(where, "expected a string%s, found %s" % (" or null" if nullable else "", _type_name(value)))
    return value


def _int(value, where, nullable=False, minimum=None):
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Shape(where, "expected an integer%s, found %s" % (" or null" if nullable else "", _type_name(value)))
    if minimum is not None and value < minimum:
        raise _Shape(where, "expected an integer >= %d, found %d" % (minimum, value))
    return value


def _bool(value, where):
    if not isinstance(value, bool):
        raise _Shape(where, "expected true or false, found %s" % _type_name(value))
    return value


def _list(value, where):
    if not isinstance(value, list):
        raise _Shape(where, "expected a list, found %s" % _type_name(value))
    return value


def _load_names(value, where):
    if isinstance(value, str):
        return tuple(line for line in value.split(u"\n") if line)
    return tuple(_str(v, "%s[%d]" % (where, i)) for i, v in enumerate(_list(value, where)))


def _load_pairs(value, where, cache=None):
    if isinstance(value, str):
        # The same block often appears more than once (a pre-pairing record
        # that repeats the record it will replace, the journal's copy record):
        # build it once and share the (immutable) result.
        if cache is not None:
            hit = cache.get(value)
            if hit is None:
                hit = cache[value] = _load_pairs(value, where)
            return hit
        lines = value.split(u"\n")
        if lines and not lines[-1]:
            lines.pop()
        parts = [line.partition(PAIR_SEPARATOR) for line in lines]
        for n, part in enumerate(parts, 1):
            if not part[1]:
                if not part[0]:
                    break  # blank lines (hand edits) are skipped below
                raise _Shape(where, "line %d %r is not of the form 'source -> target'" % (n, part[0]))
        else:
            return tuple([CopyPair(p[0], p[2]) for p in parts])
        out = []
        for n, part in enumerate(parts, 1):
            if part[1]:
                out.append(CopyPair(part[0], part[2]))
            elif part[0]:
                raise _Shape(where, "line %d %r is not of the form 'source -> target'" % (n, part[0]))
        return tuple(out)
    out = []
    for i, item in enumerate(_list(value, where)):
        w = "%s[%d]" % (where, i)
        if isinstance(item, dict):
            _mapping(item, w, ("source", "target"))
            out.append(CopyPair(_str(item["source"], w + ".source"), _str(item["target"], w + ".target")))
        elif isinstance(item, list) and len(item) == 2:
            out.append(CopyPair(_str(item[0], w + "[0]"), _str(item[1], w + "[1]")))
        else:
            raise _Shape(w, "expected [source, target] or {source, target}, found %s" % _type_name(item))
    return tuple(out)


def _load_hook(value, where):
    _mapping(value, where, ("argv",), ("timeout", "abort_on_failure"))
    argv = _list(value["argv"], where + ".argv")
    return Hook(
        argv=tuple(_str(a, "%s.argv[%d]" % (where, i)) for i, a in enumerate(argv)),
        timeout=_int(value.get("timeout", 60), where + ".timeout"),
        abort_on_failure=_bool(value.get("abort_on_failure", True), where + ".abort_on_failure"),
    )


def _dump_target_pool(tp, where):
    out = {"name": _str(tp.name, where + ".name"), "volumes": _dump_names(tp.volumes)}
    if tp.host is not None:  # only when set, as max_age
        out["host"] = _str(tp.host, where + ".host")
    return out


def _load_ssh(value, where):
    if value is None:
        return None
    _mapping(value, where, (), ("port", "identity_file", "options"))
    port = value.get("port")
    return SshSettings(port=_int(port, where + ".port") if port is not None else None,
                       identity_file=_str(value.get("identity_file"), where + ".identity_file", nullable=True),
                       options=tuple(_str(o, "%s.options[%d]" % (where, i))
                                     for i, o in enumerate(_list(value.get("options", []), where + ".options"))))


def _load_transfer(value, where):
    if value is None:
        return TransferSettings()
    _mapping(value, where, (), ("raw", "compressed", "large_block", "filter"))
    return TransferSettings(
        raw=_str(value.get("raw", "auto"), where + ".raw"),
        compressed=_bool(value.get("compressed", False), where + ".compressed"),
        large_block=_bool(value.get("large_block", False), where + ".large_block"),
        filter=tuple(_str(a, "%s.filter[%d]" % (where, i))
                     for i, a in enumerate(_list(value.get("filter", []), where + ".filter"))))


def _load_definition(value, where="definition"):
    _mapping(value, where, ("name", "technology", "versions", "sources"),
             ("target_pools", "snapshot_size", "consistency", "pre_copy_hooks", "post_copy_hooks", "max_age",
              "ssh", "retention", "datasets", "transfer"))
    tps = []
    for i, tp in enumerate(_list(value.get("target_pools", []), where + ".target_pools")):
        w = "%s.target_pools[%d]" % (where, i)
        _mapping(tp, w, ("name",), ("volumes", "host"))
        tps.append(TargetPool(name=_str(tp["name"], w + ".name"),
                              volumes=_load_names(tp.get("volumes", []), w + ".volumes"),
                              host=_str(tp.get("host"), w + ".host", nullable=True)))
    return _checked(PoolDefinition(
        name=_str(value["name"], where + ".name"),
        technology=_str(value["technology"], where + ".technology"),
        sources=_load_names(value["sources"], where + ".sources"),
        versions=_int(value["versions"], where + ".versions"),
        target_pools=tuple(tps),
        snapshot_size=_str(value.get("snapshot_size"), where + ".snapshot_size", nullable=True),
        consistency=_str(value.get("consistency", "auto"), where + ".consistency"),
        pre_copy_hooks=tuple(_load_hook(h, "%s.pre_copy_hooks[%d]" % (where, i))
                             for i, h in enumerate(_list(value.get("pre_copy_hooks", []), where + ".pre_copy_hooks"))),
        post_copy_hooks=tuple(_load_hook(h, "%s.post_copy_hooks[%d]" % (where, i))
                              for i, h in enumerate(_list(value.get("post_copy_hooks", []), where + ".post_copy_hooks"))),
        max_age=_str(value.get("max_age"), where + ".max_age", nullable=True),
        ssh=_load_ssh(value.get("ssh"), where + ".ssh"),
        retention=_str(value.get("retention"), where + ".retention", nullable=True),
        datasets=_load_datasets(value["datasets"], where + ".datasets") if "datasets" in value else (),
        transfer=_load_transfer(value.get("transfer"), where + ".transfer"),
    ), where)


def _load_identities(value, where, pairs):
    """{target: identity} of a record's ``identities`` (either form); every
    target must be one of the record's pairs."""
    if isinstance(value, str):
        ids = {}
        for n, line in enumerate(value.split(u"\n"), 1):
            if not line:
                continue
            target, sep, ident = line.rpartition(u" ")
            if not sep or not target or not ident:
                raise _Shape(where, "line %d %r is not of the form '<target> <identity>'" % (n, line))
            ids[target] = ident
    elif isinstance(value, dict):
        ids = dict((_str(k, where), _str(v, "%s[%r]" % (where, k))) for k, v in value.items())
    else:
        raise _Shape(where, "expected a block of '<target> <identity>' lines or a mapping, found %s"
                     % _type_name(value))
    targets = set(p.target for p in pairs)
    for target in ids:
        if target not in targets:
            raise _Shape(where, "%r is not a target of this record's pairs" % target)
    return ids


def _load_record(value, where, kind, cache=None):
    # a hold only on a replication record (a pre-pairing record is no version yet)
    hold_keys = ("held", "hold_reason", "mounted", "datasets") if kind == RECORD_REPLICATION else ()
    _mapping(value, where, ("version", "target_pool", "created", "pairs"),
             ("label", "status", "warnings", "identities", "transfers") + hold_keys)
    pairs = _load_pairs(value["pairs"], where + ".pairs", cache)
    held, hold_reason = _load_hold(value, where)
    # a file written before identities were kept has none: each copy is
    # verified and its identity recorded the next time it is seen
    if value.get("identities") is not None:
        ids = _load_identities(value["identities"], where + ".identities", pairs)
        pairs = tuple(CopyPair(p.source, p.target, ids.get(p.target)) for p in pairs)
    if value.get("transfers") is not None:
        pairs = _load_transfers(value["transfers"], where + ".transfers", pairs)
    return Record(
        kind=kind,
        version=_int(value["version"], where + ".version", minimum=1),
        target_pool=_str(value["target_pool"], where + ".target_pool"),
        created=_str(value["created"], where + ".created"),
        pairs=pairs,
        label=_str(value.get("label"), where + ".label", nullable=True),
        status=_str(value.get("status", STATUS_VALID), where + ".status"),
        warnings=tuple(_str(w, "%s.warnings[%d]" % (where, i))
                       for i, w in enumerate(_list(value.get("warnings", []), where + ".warnings"))),
        held=held,
        hold_reason=hold_reason,
        mounted=_str(value["mounted"], where + ".mounted") if "mounted" in value else None,
        datasets=_load_datasets(value["datasets"], where + ".datasets") if "datasets" in value else (),
    )


def _load_transfers(value, where, pairs):
    """The pairs with ``{target: {base_version, bytes_sent}}`` filled in;
    every target must be one of the record's pairs."""
    if not isinstance(value, dict):
        raise _Shape(where, "expected a mapping {target: {base_version, bytes_sent}}, found %s" % _type_name(value))
    targets = set(p.target for p in pairs)
    got = {}
    for target, t in value.items():
        at = "%s[%r]" % (where, target)
        if _str(target, where) not in targets:
            raise _Shape(where, "%r is not a target of this record's pairs" % target)
        _mapping(t, at, ("base_version", "bytes_sent"), ())
        got[target] = (_int(t["base_version"], at + ".base_version", nullable=True, minimum=1),
                       _int(t["bytes_sent"], at + ".bytes_sent", minimum=0))
    return tuple(replace(p, base_version=got[p.target][0], bytes_sent=got[p.target][1]) if p.target in got else p
                 for p in pairs)


def _load_hold(value, where):
    """(held, hold_reason) of a replication record. Written together, and
    only for a held version: one without the other, or ``held: false``, is
    a damaged or hand-made value and is refused rather than guessed (a hold
    read as absent would let rotation delete the version)."""
    if "held" not in value and "hold_reason" not in value:
        return False, None
    if "held" not in value or "hold_reason" not in value:
        raise _Shape(where, "held and hold_reason are written together; found only %s"
                     % ("held" if "held" in value else "hold_reason"))
    if _bool(value["held"], where + ".held") is not True:
        raise _Shape(where + ".held", "is written only as true (a released version carries neither key)")
    return True, _str(value["hold_reason"], where + ".hold_reason", nullable=True)


def _load_journal(value, where="journal", cache=None):
    if value is None:
        return None
    # ``operation`` was always written (``copy`` by every release before the
    # delete/restore/remove journals); ``asides`` and ``done`` are restore's
    _mapping(value, where, ("operation", "version", "target_pool", "phase", "started", "pairs"),
             ("replaced_version", "label", "pid", "staged", "asides", "done", "medium"))
    return Journal(
        operation=_str(value["operation"], where + ".operation"),
        version=_int(value["version"], where + ".version"),
        target_pool=_str(value["target_pool"], where + ".target_pool"),
        pairs=_load_pairs(value["pairs"], where + ".pairs", cache),
        phase=_str(value["phase"], where + ".phase"),
        started=_str(value["started"], where + ".started"),
        replaced_version=_int(value.get("replaced_version"), where + ".replaced_version", nullable=True),
        label=_str(value.get("label"), where + ".label", nullable=True),
        pid=_int(value.get("pid"), where + ".pid", nullable=True),
        staged=_load_pairs(value.get("staged", []), where + ".staged", cache),
        asides=_load_pairs(value.get("asides", []), where + ".asides", cache),
        done=tuple(_str(s, "%s.done[%d]" % (where, i)) for i, s in enumerate(_list(value.get("done", []),
                                                                                   where + ".done"))),
        medium=_str(value["medium"], where + ".medium") if "medium" in value else None,
    )


def _load_state(data):
    """Like load_state(), raising _Shape with the location of the problem."""
    _mapping(data, "the document", ("schema_version", "definition"),
             ("last_version", "journal", "replication_records", "prepairing_records", "media"))
    version = _int(data["schema_version"], "schema_version", minimum=1)
    if version > SCHEMA_VERSION:
        raise _Shape("schema_version", "is %d, newer than %d" % (version, SCHEMA_VERSION))
    cache = {}
    return PoolState(
        definition=_load_definition(data["definition"]),
        replication_records=tuple(
            _load_record(r, "replication_records[%d]" % i, RECORD_REPLICATION, cache)
            for i, r in enumerate(_list(data.get("replication_records", []), "replication_records"))),
        prepairing_records=tuple(
            _load_record(r, "prepairing_records[%d]" % i, RECORD_PREPAIRING, cache)
            for i, r in enumerate(_list(data.get("prepairing_records", []), "prepairing_records"))),
        last_version=_int(data.get("last_version", 0), "last_version", minimum=0),
        journal=_load_journal(data.get("journal"), cache=cache),
        media=_load_media(data["media"]) if "media" in data else (),
    )


def _require_complete(data):
    """Raise _Shape unless every key a sealed file carries is present (the
    parsed document already has the right types: _load_state passed)."""
    def need(value, where, kind):
        missing = [k for k in _REQUIRED_KEYS[kind] if k not in value]
        if missing:
            raise _Shape(where, "missing key(s) %s (a schema_version %d file carries every key)"
                         % (", ".join(missing), SCHEMA_VERSION))

    need(data, "the document", "the document")
    definition = data["definition"]
    need(definition, "definition", "definition")
    for i, tp in enumerate(definition["target_pools"]):
        need(tp, "definition.target_pools[%d]" % i, "target_pool")
    for phase in ("pre", "post"):
        for i, hook in enumerate(definition[phase + "_copy_hooks"]):
            need(hook, "definition.%s_copy_hooks[%d]" % (phase, i), "hook")
    for kind in ("replication", "prepairing"):
        for i, rec in enumerate(data[kind + "_records"]):
            need(rec, "%s_records[%d]" % (kind, i), kind)
    if data["journal"] is not None:
        need(data["journal"], "journal", "journal")


def seal(body):
    """``body`` (bytes) followed by its seal line."""
    return body + SEAL_PREFIX + b"sha256=" + hashlib.sha256(body).hexdigest().encode("ascii") + \
        b" bytes=%d\n" % len(body)


def unseal(raw):
    """(body, sealed, problem) of a state file's bytes: ``body`` is what comes
    before a well-formed seal line (else all of ``raw``); ``sealed`` whether
    such a line ends the file; ``problem`` None or what is wrong with the
    seal. No seal line at all is no problem here (an older file, or one whose
    seal was cut off: the caller decides by schema_version)."""
    m = _SEAL_RE.search(raw)
    if m is None:
        # (only the last line: a name in an older file may hold the text)
        if raw.rstrip(b"\n").rsplit(b"\n", 1)[-1].startswith(SEAL_PREFIX):
            return raw, False, "its seal line is damaged or is not the last line (the file was cut short or changed)"
        return raw, False, None
    body = raw[:m.start(1)]
    if int(m.group(3)) != len(body):
        return body, True, "its seal counts %s bytes before it but %d are there (the file was cut short or changed)" % (
            m.group(3).decode("ascii"), len(body))
    if hashlib.sha256(body).hexdigest() != m.group(2).decode("ascii"):
        return body, True, "its content does not match its seal (the sha256 differs: the file was damaged or edited)"
    return body, True, None


def load_state(data):
    """The parsed state file (a dict) -> PoolState. StateFileError on a wrong shape."""
    try:
        return _load_state(data)
    except _Shape as exc:
        raise StateFileError("the state does not have the expected shape: %s" % exc, where=exc.where)


# --------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------

def validate_pool_name(name):
    """Raise InvalidInput unless ``name`` is a safe file name for a pool."""
    if not isinstance(name, str) or not _POOL_NAME_RE.match(name):
        raise InvalidInput("copy pool name %r is not accepted: use %s" % (name, POOL_NAME_RULE), pool=name)
    return name


def _read_all(fd):
    """Read an open file to its end (separate so tests can inject EIO)."""
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prev_path(path, name):
    """The previous generation of the state file at ``path``: hidden (so
    pool_names() never lists it) and not ending in .tmp (so no sweep takes it)."""
    return os.path.join(os.path.dirname(path), "." + name + ".yml.prev")


def _oserror_text(exc):
    return exc.strerror or str(exc)


class StateStore:
    """One YAML file per copy pool under ``state_dir``; see the module docstring."""

    def __init__(self, state_dir=DEFAULT_STATE_DIR, lock_timeout=DEFAULT_LOCK_TIMEOUT):
        if not isinstance(state_dir, str) or not state_dir or "\x00" in state_dir:
            raise InvalidInput("state_dir %r is not accepted: expected an absolute directory path such as %s"
                               % (state_dir, DEFAULT_STATE_DIR), state_dir=state_dir)
        if not os.path.isabs(state_dir):
            raise InvalidInput("state_dir %r is a relative path; expected an absolute directory path such as %s"
                               % (state_dir, DEFAULT_STATE_DIR), state_dir=state_dir)
        if (isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float))
                or math.isnan(lock_timeout) or lock_timeout < 0):
            raise InvalidInput("lock_timeout %r is not accepted: expected a number of seconds >= 0" % (lock_timeout,))
        # normpath drops a trailing slash, with which lstat() would follow a symlink.
        self.state_dir = os.path.normpath(state_dir)
        self.lock_timeout = float(lock_timeout)
        self._held = {}  # (pool, thread id) -> [fd, depth]
        self._held_guard = threading.Lock()

    # -- paths ------------------------------------------------------------

    def path(self, name):
        validate_pool_name(name)
        return os.path.join(self.state_dir, name + ".yml")

    def prev_path(self, name):
        """The previous generation of the pool's state file (see save())."""
        return _prev_path(self.path(name), name)

    def lock_path(self, name):
        validate_pool_name(name)
        return os.path.join(self.state_dir, "." + name + ".lock")

    def _temp_prefix(self, name):
        return "." + name + ".yml."

    # -- the directory ----------------------------------------------------

    def _check_dir(self, create):
        """True when state_dir exists (creating it 0700 if ``create``), False
        when it does not; InvalidInput when it is not safe to use."""
        d = self.state_dir
        try:
            st = os.lstat(d)
        except FileNotFoundError:
            if not create:
                return False
            self._create_dir(d)
            st = os.lstat(d)
        except OSError as exc:
            raise InvalidInput("state_dir '%s' cannot be inspected: %s" % (d, _oserror_text(exc)), state_dir=d)
        if stat.S_ISLNK(st.st_mode):
            raise InvalidInput("state_dir '%s' is a symlink; give the real directory path (a symlink could "
                               "redirect the records of every copy pool)" % d, state_dir=d)
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidInput("state_dir '%s' exists but is not a directory; expected a directory "
                               "(mode 0700) or a path that does not exist yet" % d, state_dir=d)
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o022:
            raise InvalidInput("state_dir '%s' is group- or world-writable (mode %04o); other users could "
                               "replace the records. Expected mode 0700: chmod 0700 '%s'" % (d, mode, d), state_dir=d)
        if st.st_uid not in (0, os.geteuid()):
            raise InvalidInput("state_dir '%s' is owned by uid %d; expected a directory owned by root or by "
                               "the user running pitcopy (uid %d)" % (d, st.st_uid, os.geteuid()), state_dir=d)
        return True

    @staticmethod
    def _create_dir(d):
        missing = []
        p = d
        while not os.path.lexists(p):
            missing.append(p)
            parent = os.path.dirname(p)
            if parent == p:
                break
            p = parent
        for p in reversed(missing):
            try:
                os.mkdir(p, 0o700)
            except FileExistsError:
                continue
            except OSError as exc:
                raise InvalidInput("state_dir '%s' cannot be created: %s: %s" % (d, p, _oserror_text(exc)), state_dir=d)
            os.chmod(p, 0o700)  # whatever the umask

    # -- locking ----------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, name, shared=False):
        """Hold the pool's lock (re-entrant within one thread of this store).

        ``shared``: a reader's lock (flock LOCK_SH). Readers do not exclude
        each other; they wait for a writer and a writer waits for them. A
        reader creates nothing: without state_dir, or on a read-only one
        where the lock file does not exist, it reads without a lock (no
        writer can be at work where the lock file cannot be created)."""
        validate_pool_name(name)
        key = (name, threading.get_ident())
        with self._held_guard:
            held = self._held.get(key)
            if held is not None:
                if held[2] and not shared:
                    raise StateFileError("copy pool '%s': a write was attempted under the shared (read) lock; "
                                         "this is a pitcopy bug" % name, pool=name)
                held[1] += 1
        if held is not None:
            try:
                yield
            finally:
                held[1] -= 1
            return
        fd = self._acquire(name, shared)
        with self._held_guard:
            self._held[key] = [fd, 1, shared]
        try:
            yield
        finally:
            with self._held_guard:
                del self._held[key]
            # Closing the descriptor releases the flock; so does the death of
            # the process, which is why a killed run never leaves a pool busy.
            if fd is not None:
                os.close(fd)

    def holds_lock(self, name):
        return (name, threading.get_ident()) in self._held

    def _open_lock(self, name, shared):
        """The lock file's descriptor; None for a reader that has none to open."""
        lpath = self.lock_path(name)
        if shared:
            if not self._check_dir(create=False):
                return None
            try:
                return os.open(lpath, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise StateFileError("cannot open the lock file '%s' of copy pool '%s': %s; expected a "
                                         "regular file" % (lpath, name, _oserror_text(exc)), path=lpath)
            # a read-only state_dir (or file): flock works on a read-only descriptor
            try:
                return os.open(lpath, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise StateFileError("cannot open the lock file '%s' of copy pool '%s' for reading: %s; expected "
                                     "a regular file" % (lpath, name, _oserror_text(exc)), path=lpath)
        self._check_dir(create=True)
        try:
            return os.open(lpath, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StateFileError("cannot open the lock file '%s' of copy pool '%s': %s; expected a regular "
                                 "file writable by this user" % (lpath, name, _oserror_text(exc)), path=lpath)

    def _acquire(self, name, shared=False):
        lpath = self.lock_path(name)
        fd = self._open_lock(name, shared)
        if fd is None:
            return None
        start = time.monotonic()
        deadline = start + self.lock_timeout
        pause = 0.01
        try:
            while True:
                try:
                    fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise StateFileError("cannot lock '%s' for copy pool '%s': %s"
                                             % (lpath, name, _oserror_text(exc)), path=lpath)
                now = time.monotonic()
                if now >= deadline:
                    holder = self._lock_holder(fd)
                    raise PoolBusy(
                        "copy pool '%s' is busy: another run holds %s (waited %g s)%s; retry when it has "
                        "finished, or raise the lock timeout" % (
                            name, lpath, round(now - start, 1), "; the holder is pid %d" % holder if holder else ""),
                        pool=name, lock_path=lpath, waited=round(now - start, 3), holder_pid=holder)
                time.sleep(min(pause, max(deadline - now, 0.0)))
                pause = min(pause * 2, 0.2)
            # For the operator's eyes only: who holds the lock (the writer;
            # readers leave the file alone, it may be read-only).
            if not shared:
                try:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, ("%d\n" % os.getpid()).encode("ascii"), 0)
                except OSError:
                    pass
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _lock_holder(fd):
        try:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else None
        except (OSError, ValueError):
            return None

    @contextlib.contextmanager
    def _lock_if_needed(self, name):
        # locked() refuses a write under this thread's shared lock
        with self.locked(name):
            yield

    # -- reading ----------------------------------------------------------

    def pool_names(self):
        if not self._check_dir(create=False):
            return []
        try:
            entries = os.listdir(self.state_dir)
        except OSError as exc:
            raise StateFileError("cannot list state_dir '%s': %s" % (self.state_dir, _oserror_text(exc)))
        names = []
        for entry in entries:
            if entry.endswith(".yml") and _POOL_NAME_RE.match(entry[:-4]):
                names.append(entry[:-4])
        return sorted(names)

    def read_raw(self, name, previous=False):
        """The state file's bytes exactly as on disk, or None when there is
        none; ``previous``: those of its previous generation."""
        path = self.prev_path(name) if previous else self.path(name)
        if not self._check_dir(create=False):
            return None
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._unreadable(name, path, exc)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StateFileError("the state file '%s' of copy pool '%s' is not a regular file; expected a "
                                     "YAML file written by pitcopy.versions" % (path, name), path=path)
            try:
                return _read_all(fd)
            except OSError as exc:
                raise self._unreadable(name, path, exc)
        finally:
            os.close(fd)

    @staticmethod
    def _unreadable(name, path, exc):
        if exc.errno == errno.ELOOP:
            what = "it is a symlink; expected a regular file written by pitcopy.versions"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            what = ("permission denied; expected a file readable by the user running pitcopy "
                    "(files are written 0600 by root; run with become: true)")
        elif exc.errno == errno.EISDIR:
            what = "it is a directory; expected a regular file written by pitcopy.versions"
        else:
            what = "%s; check the disk and the file system" % _oserror_text(exc)
        return StateFileError("cannot read the state file '%s' of copy pool '%s': %s" % (path, name, what),
                              path=path, errno=exc.errno)

    def load(self, name):
        """The pool's PoolState, or None when it has no state file."""
        raw = self.read_raw(name)
        if raw is None:
            return None
        return self._decode(name, self.path(name), raw)

    def load_hand_edit(self, name):
        """(PoolState or None, needs_seal) for verify_records reseal: the file
        may lack a valid seal but must have every key of a sealed file."""
        raw = self.read_raw(name)
        if raw is None:
            return None, False
        state = self._decode(name, self.path(name), raw, hand_edit=True)
        dummy, sealed, problem = unseal(raw)
        return state, not sealed or problem is not None

    def load_previous(self, name):
        """The previous generation (``.<name>.yml.prev``) as a PoolState, or
        None when there is none. Refused like the current file."""
        raw = self.read_raw(name, previous=True)
        if raw is None:
            return None
        return self._decode(name, self.prev_path(name), raw)

    @staticmethod
    def _way_out(name, path):
        """What the operator can do about a refused file (docs/state-file.md)."""
        prev = _prev_path(path, name)
        return ("It was left untouched. If it was damaged, put the previous generation back "
                "(cp -p '%s' '%s', then run pitcopy.versions.verify_records); if you edited it by hand, accept the "
                "edit with pitcopy.versions.verify_records reseal: true (see docs/state-file.md)" % (prev, path))

    @classmethod
    def _decode(cls, name, path, raw, hand_edit=False):
        """The PoolState in ``raw``; StateFileError naming the file, what is
        wrong and the way out. ``hand_edit``: accept a file without a valid
        seal (verify_records reseal), still requiring every key."""
        body, sealed, seal_problem = unseal(raw)
        if hand_edit:
            seal_problem = None
        way_out = cls._way_out(name, path)
        # A damaged file need not be parsed to be refused: the schema_version
        # line as written (always the first key) tells a newer file, whose
        # message matters more, and an unsealed version 2 file apart.
        m = _SCHEMA_LINE_RE.search(body[:4096])
        written = int(m.group(1)) if m else None
        if not hand_edit and written is not None and written <= SCHEMA_VERSION and (
                seal_problem or (written != LEGACY_SCHEMA_VERSION and not sealed)):
            raise StateFileError("the state file '%s' of copy pool '%s' is refused: %s. %s" % (
                path, name, seal_problem or "it has schema_version %d but no seal; expected %s" % (written, SEAL_RULE),
                way_out), path=path)

        def refuse(what, **details):
            # a damaged seal is the root cause of whatever else is wrong
            if seal_problem:
                what = seal_problem
            return StateFileError("the state file '%s' of copy pool '%s' is refused: %s. %s"
                                  % (path, name, what, way_out), path=path, **details)

        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise refuse("it is not UTF-8 text (byte %d); expected a YAML file written by pitcopy.versions"
                         % exc.start)
        try:
            data = _yaml_load(text)
        except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
            # ValueError: e.g. an unquoted impossible date (2026-13-45)
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise refuse("it does not parse as YAML (%s)" % detail)
        if not isinstance(data, dict) or "schema_version" not in data:
            raise refuse("it is not a pitcopy state file: expected a YAML mapping with schema_version at the top, "
                         "found %s" % (_type_name(data) if not isinstance(data, dict) else
                                       "a mapping without schema_version"))
        version = data["schema_version"]
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise refuse("it has schema_version %r; expected an integer from 1 to %d" % (version, SCHEMA_VERSION))
        if version > SCHEMA_VERSION:
            # checked before the seal: a newer collection may seal differently
            raise StateFileError("the state file '%s' of copy pool '%s' has schema_version %d, written by a newer "
                                 "pitcopy.versions (this one reads up to %d); upgrade the collection. It was left "
                                 "untouched" % (path, name, version, SCHEMA_VERSION),
                                 path=path, schema_version=version)
        if seal_problem:
            raise refuse(seal_problem)
        legacy = version == LEGACY_SCHEMA_VERSION and not sealed and not hand_edit
        if version != LEGACY_SCHEMA_VERSION and not sealed and not hand_edit:
            raise refuse("it has schema_version %d but no seal; expected %s" % (version, SEAL_RULE))
        try:
            state = _load_state(data)
            if not legacy:
                _require_complete(data)
        except _Shape as exc:
            raise refuse("it does not have the expected shape: %s" % exc, where=exc.where)
        if state.definition.name != name:
            raise refuse("it holds copy pool '%s', not '%s'; expected the file of a pool to be named after it"
                         % (state.definition.name, name))
        return state

    # -- writing ----------------------------------------------------------

    def encode(self, state):
        """The bytes save() would write for ``state``, verified to read back."""
        name = validate_pool_name(state.definition.name)
        data = dump_state(state)
        problem = None
        # allow_unicode=False makes the emitter escape every non-ASCII
        # character, which sidesteps any character PyYAML cannot carry
        # through a block or quoted scalar unchanged.
        for allow_unicode in (True, False):
            try:
                body = (_HEADER % name + _yaml_dump(data, allow_unicode)).encode("utf-8")
                back = _yaml_load(body.decode("utf-8"))
            except (yaml.YAMLError, UnicodeError) as exc:
                problem = exc
                continue
            if back == data:
                return seal(body)
            problem = "the YAML would read back differently"
        raise StateFileError("refusing to write the state of copy pool '%s': %s" % (name, problem), pool=name)

    def save(self, state, _fault=None, keep_previous=True):
        """Write the pool's state atomically (old or new file, never a mix).

        The file being replaced becomes the previous generation
        (``.<name>.yml.prev``) unless ``keep_previous`` is false (reseal: the
        file replaced is a hand edit, the generation before it is the one
        worth keeping)."""
        name = validate_pool_name(state.definition.name)
        raw = self.encode(state)  # before touching anything
        self._check_dir(create=True)
        with self._lock_if_needed(name):
            self._write(name, raw, _fault, keep_previous)

    def _keep_previous(self, name, path):
        """Make the current file the previous generation, atomically: a hard
        link (or, where the file system has none, a copy) under a temporary
        name, renamed over ``.<name>.yml.prev``. A pool created anew drops a
        stray previous generation (of a pool removed by an older release)."""
        prev = self.prev_path(name)
        tmp = os.path.join(self.state_dir, "%sprev.%s.tmp" % (self._temp_prefix(name), os.urandom(6).hex()))
        try:
            try:
                os.link(path, tmp, follow_symlinks=False)
            except FileNotFoundError:
                try:
                    os.unlink(prev)
                except FileNotFoundError:
                    pass
                return
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV, errno.ENOSYS):
                    raise
                raw = self.read_raw(name)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    _write_all(fd, raw)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            # 0600 whatever the old file had; O_NOFOLLOW: never chmod through a link
            fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
            # rename() of two links to one inode does nothing and leaves the
            # temporary name (a run killed after this step, before the state
            # file was replaced, leaves the previous generation equal to the
            # current one): the finally below removes it then
            os.replace(tmp, prev)
            if not os.path.lexists(tmp):
                tmp = None
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def _write(self, name, raw, fault, keep_previous=True):
        path = self.path(name)
        self._sweep_temps(name)
        tmp = None
        fd = None
        replaced = False
        try:
            for dummy in range(100):
                candidate = os.path.join(self.state_dir, "%s%s.tmp" % (self._temp_prefix(name), os.urandom(6).hex()))
                try:
                    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                except FileExistsError:
                    continue
                tmp = candidate
                break
            else:  # pragma: no cover - 100 collisions of 48 random bits
                raise StateFileError("cannot create a temporary file in '%s'" % self.state_dir)
            os.fchmod(fd, 0o600)
            _step("temp_created", fault)
            _write_all(fd, raw)
            _step("written", fault)
            os.fsync(fd)
            _step("fsynced", fault)
            os.close(fd)
            fd = None
            if keep_previous:
                self._keep_previous(name, path)
                _step("previous_kept", fault)
            os.replace(tmp, path)
            tmp = None
            replaced = True
            _step("replaced", fault)
            _fsync_dir(self.state_dir)
            _step("dir_fsynced", fault)
        except OSError as exc:
            if replaced:
                raise StateFileError("the state file '%s' of copy pool '%s' was replaced, but syncing its directory "
                                     "failed: %s; check the disk and the file system" % (path, name, _oserror_text(exc)),
                                     path=path)
            raise StateFileError("cannot write the state file '%s' of copy pool '%s': %s; the previous state file "
                                 "was left as it was" % (path, name, _oserror_text(exc)), path=path)
        finally:
            if fd is not None:
                os.close(fd)
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def _sweep_temps(self, name):
        """Remove temp files a killed writer of this pool left behind (we hold
        the pool's lock, so no live writer owns one)."""
        # exactly our temp names: pool 'a' must not sweep those of pool
        # 'a.yml', nor anything else (the previous generation, the lock)
        ours = re.compile(re.escape(self._temp_prefix(name)) + r"(?:prev\.)?[0-9a-f]{12}\.tmp\Z")
        try:
            entries = os.listdir(self.state_dir)
        except OSError:
            return
        for entry in entries:
            if ours.match(entry):
                try:
                    os.unlink(os.path.join(self.state_dir, entry))
                except OSError:
                    pass

    def remove(self, name):
        """Delete the pool's state file. True if there was one."""
        path = self.path(name)
        if not self._check_dir(create=False):
            return False
        with self._lock_if_needed(name):
            self._sweep_temps(name)
            # The previous generation goes first and with the pool: a pool
            # defined again later under this name must not find the old
            # pool's records as "its" previous generation.
            for doomed in (self.prev_path(name), path):
                try:
                    os.unlink(doomed)
                except FileNotFoundError:
                    if doomed == path:
                        _fsync_dir(self.state_dir)
                        return False
                except OSError as exc:
                    raise StateFileError("cannot remove the state file '%s' of copy pool '%s': %s"
                                         % (doomed, name, _oserror_text(exc)), path=doomed)
            _fsync_dir(self.state_dir)
            # The lock file stays: unlinking it while another run waits on it
            # would let two runs hold "the" lock at once.
        return True
