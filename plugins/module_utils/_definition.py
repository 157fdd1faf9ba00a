# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one set of rules a copy pool definition must satisfy.

Three layers, one set of rules:

* the module's argument spec checks types and choices (it derives its
  choices from the technology table); the module adds only the rule every
  pitcopy module applies to every string option (no newline or NUL);
* the engine (``RecordEngine.check_definition``) runs ``check_definition``
  before it takes the pool's lock: every domain rule, in one place, plus the
  backend's name syntax;
* the store runs ``check_values`` on every definition it writes and reads:
  the rules of each value on its own (a known technology, versions >= 1, a
  hook timeout >= 1 ...), so it never writes what it would refuse to read and
  never hands the engine a value the engine would have refused. The rules
  between values (target pools a technology needs, duplicates, names that
  reach a tool) are the engine's alone: a file that breaks them still loads,
  so verify_records can show it.

Each refusal is an InvalidInput whose message names the option (with its
index), the value and what is accepted. Plain Python, no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CONSISTENCY_MODES,
    TRANSFER_RAW_MODES,
    Dataset,
    DatasetPlace,
    Hook,
    TargetPool,
    TransferSettings,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._remote import check_destination, check_ssh_options
from ansible_collections.pitcopy.versions.plugins.module_utils._retention import grid_capacity, grid_text, parse_grid
from ansible_collections.pitcopy.versions.plugins.module_utils._technologies import (
    SNAPSHOT_SIZE_TECHNOLOGIES,
    SNAPSHOT_TECHNOLOGIES,
    TECHNOLOGIES,
    names as technology_names,
    spoken,
)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value):
    return list(value) if isinstance(value, tuple) else value


def _hook_options(definition):
    for option in ("pre_copy_hooks", "post_copy_hooks"):
        for index, hook in enumerate(getattr(definition, option)):
            yield "%s[%d]" % (option, index), hook


_AGE_UNITS = (("s", 1), ("m", 60), ("h", 3600), ("d", 86400), ("w", 7 * 86400))
_AGE_RE = re.compile(r"\A([0-9]{1,9})([smhdw])\Z")


def age_seconds(text, option="max_age"):
    """Seconds of an age such as ``30m``, ``26h`` or ``8d`` (units s, m, h,
    d, w; a whole number of at least 1). InvalidInput names the value."""
    m = _AGE_RE.match(text) if isinstance(text, str) else None
    if m is None or int(m.group(1)) < 1:
        raise InvalidInput("%s %r is not accepted: expected a whole number of at least 1 followed by one unit, "
                           "s, m, h, d or w (for example 30m, 26h, 8d)" % (option, text))
    return int(m.group(1)) * dict(_AGE_UNITS)[m.group(2)]


_DATASET_ACCEPTED = "a dataset is {name, path}: a non-empty name and the absolute path of a directory on the pool's " \
    "source volumes, such as {name: db, path: /srv/pg/data}"


def _relative_ok(rel):
    """``""`` or a normalized relative path without ``..``."""
    if rel == "":
        return True
    return isinstance(rel, str) and "\x00" not in rel and all(c not in ("", ".", "..") for c in rel.split("/"))


def check_dataset(dataset, where):
    """One dataset on its own: a name, an absolute normalized path (no
    ``..``), places naming a source and relative paths."""
    if not isinstance(dataset, Dataset):
        raise InvalidInput("%s %r is not accepted: %s" % (where, dataset, _DATASET_ACCEPTED))
    if not isinstance(dataset.name, str) or not dataset.name.strip() or "\x00" in dataset.name:
        raise InvalidInput("%s.name %r is not accepted: %s" % (where, dataset.name, _DATASET_ACCEPTED))
    path = dataset.path
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidInput("%s.path %r of dataset %s is not accepted: it is not an absolute path; %s" % (
            where, path, dataset.name, _DATASET_ACCEPTED))
    if "\x00" in path or ".." in path.split("/"):
        raise InvalidInput("%s.path %r of dataset %s is not accepted (no '..'): %s" % (
            where, path, dataset.name, _DATASET_ACCEPTED))
    for i, place in enumerate(dataset.places):
        w = "%s.places[%d]" % (where, i)
        if not isinstance(place, DatasetPlace) or not isinstance(place.source, str) or not place.source:
            raise InvalidInput("%s %r is not a place {source, path, at}" % (w, place))
        for key in ("path", "at"):
            if not _relative_ok(getattr(place, key)):
                raise InvalidInput("%s.%s %r is not a relative path inside the source (no leading /, no ..)" % (
                    w, key, getattr(place, key)))


_TRANSFER_ACCEPTED = "transfer is {raw: auto, true or false; compressed: true or false; large_block: true or false; " \
    "filter: a list of strings, the argv of a program run between send and receive (such as [mbuffer, -q, -m, 128M] " \
    "or [pv, -q, -L, 10m]), never a shell string}"

#: the send technologies, the only ones with a stream to shape
TRANSFER_TECHNOLOGIES = ("zfs_send", "btrfs_send")

#: the technologies whose target pools may name ``host`` (a push to another
#: host): those whose backend has ``remote_targets`` (a unit test compares)
PUSH_TECHNOLOGIES = ("btrfs_send",)


def _remote_target_pools(definition):
    """The target pools of ``definition`` that name a host."""
    return [tp for tp in definition.target_pools if isinstance(tp, TargetPool) and tp.host is not None]


def _target_pool_names(definition):
    """The names of the target pools given (not the implied ones)."""
    return [tp.name if isinstance(tp, TargetPool) else repr(tp) for tp in definition.target_pools]


def check_transfer(transfer):
    """The ``transfer`` option on its own: known raw mode, booleans, and a
    filter that is an argv (a non-empty program name, strings without NUL)."""
    if not isinstance(transfer, TransferSettings):
        raise InvalidInput("transfer %r is not accepted: %s" % (transfer, _TRANSFER_ACCEPTED))
    if transfer.raw not in TRANSFER_RAW_MODES:
        raise InvalidInput("transfer.raw %r is not accepted; use one of: %s" % (
            transfer.raw, ", ".join(TRANSFER_RAW_MODES)))
    for key in ("compressed", "large_block"):
        if not isinstance(getattr(transfer, key), bool):
            raise InvalidInput("transfer.%s %r is not accepted: expected true or false" % (key, getattr(transfer, key)))
    argv = transfer.filter
    if not isinstance(argv, tuple) or not all(isinstance(a, str) and "\x00" not in a for a in argv):
        raise InvalidInput("transfer.filter %r is not accepted: expected a list of strings (an argv such as "
                           "[pv, -q, -L, 10m]), never a shell string" % (_shown(argv),))
    if argv and not argv[0].strip():
        raise InvalidInput("transfer.filter %r is not accepted: its first item must name the program (a name "
                           "found in PATH or an absolute path)" % (_shown(argv),))
    if argv and "/" in argv[0] and not argv[0].startswith("/"):
        raise InvalidInput("transfer.filter %r is not accepted: the program %r is a relative path; give a name "
                           "found in PATH or an absolute path" % (_shown(argv), argv[0]))


def check_transfer_fits(definition):
    """The ``transfer`` settings the pool's technology can use: a stream
    only for the send technologies; raw and large blocks only for ZFS."""
    d = definition
    t = d.transfer
    if t.is_default():
        return
    if d.technology not in TRANSFER_TECHNOLOGIES:
        raise InvalidInput("transfer %r only applies to technology %s (the streams of a send), not %s; leave "
                           "transfer out" % (t.as_dict(), spoken(list(TRANSFER_TECHNOLOGIES)), d.technology))
    if d.technology != "zfs_send":
        if t.raw != "auto":
            raise InvalidInput("transfer.raw %r only applies to technology zfs_send (zfs send -w of encrypted "
                               "datasets); btrfs_send has no raw stream: leave transfer.raw out (auto)" % t.raw)
        if t.large_block:
            raise InvalidInput("transfer.large_block true only applies to technology zfs_send (zfs send -L); "
                               "btrfs_send has no such option: leave it out or set it false")


def check_values(definition):
    """Raise InvalidInput unless every value of ``definition`` is one that
    pitcopy can act on, each on its own: the store's rule on write and read."""
    d = definition
    if d.technology not in TECHNOLOGIES:
        raise InvalidInput("technology %r is not supported; use one of: %s" % (d.technology, ", ".join(TECHNOLOGIES)))
    if not _is_int(d.versions) or d.versions < 1:
        raise InvalidInput("versions must be an integer of at least 1, got %r" % (d.versions,))
    if d.consistency not in CONSISTENCY_MODES:
        raise InvalidInput("consistency %r is not accepted; use one of: %s" % (
            d.consistency, ", ".join(CONSISTENCY_MODES)))
    if d.max_age is not None:
        age_seconds(d.max_age)
    if d.retention is not None:
        parse_grid(d.retention)
    for index, tp in enumerate(d.target_pools):
        if isinstance(tp, TargetPool) and tp.host is not None:
            try:
                check_destination(tp.host)
            except InvalidInput as exc:
                raise InvalidInput("target_pools[%d].host: %s" % (index, exc.msg))
    if d.ssh is not None:
        try:
            check_ssh_options(d.ssh.as_dict())
        except InvalidInput as exc:
            raise InvalidInput("ssh: %s" % exc.msg)
    for index, dataset in enumerate(d.datasets):
        check_dataset(dataset, "datasets[%d]" % index)
    check_transfer(d.transfer)
    for where, hook in _hook_options(d):
        if not isinstance(hook, Hook):
            raise InvalidInput("%s %r is not a hook: expected {argv, timeout, abort_on_failure}" % (where, hook))
        if not hook.argv or not all(isinstance(a, str) for a in hook.argv):
            raise InvalidInput("%s.argv %r is not accepted: a hook must have argv, a non-empty list of strings "
                               "(the command and its arguments)" % (where, _shown(hook.argv)))
        if not _is_int(hook.timeout) or hook.timeout < 1:
            raise InvalidInput("%s.timeout: hook timeout %r is not accepted: expected a whole number of seconds, "
                               "at least 1" % (where, hook.timeout))


def check_grid_room(definition):
    """Refuse a ``retention`` grid that can need more versions kept than
    the pool has target pools (and ``versions``): every bucket's
    representative and the newest copy need a target pool each, or a new
    copy would have to replace a version the grid still needs."""
    d = definition
    if d.retention is None:
        return
    grid = parse_grid(d.retention)
    need = grid_capacity(grid)
    pools = len(d.target_pool_names()) if d.technology in SNAPSHOT_TECHNOLOGIES else len(d.target_pools)
    if need > d.versions or (d.technology not in SNAPSHOT_TECHNOLOGIES and d.target_pools and need > pools):
        raise InvalidInput(
            "retention %r keeps up to %d versions (%d buckets, %s, and the newest copy), so it needs versions of "
            "at least %d and as many target pools; copy pool %s has versions %d and %d target pools: raise "
            "versions%s or use a smaller grid" % (
                d.retention, need, need - 1, grid_text(grid), need, d.name, d.versions, pools,
                "" if d.technology in SNAPSHOT_TECHNOLOGIES else " and add target pools"))


def check_definition(definition, backend=None):
    """Raise InvalidInput naming the bad value and what is accepted, unless
    ``definition`` can be defined: every rule of ``check_values``, the rules
    between values, and (with ``backend``) the backend's name syntax."""
    d = definition
    check_values(d)
    check_grid_room(d)
    check_transfer_fits(d)
    if not d.sources:
        raise InvalidInput("copy pool %s needs at least one source volume in sources" % d.name)
    seen = set()
    for src in d.sources:
        if not isinstance(src, str):
            raise InvalidInput("source %r is not a volume name (a string)" % (src,))
        if backend is not None:
            backend.validate_source_name(src)
        if src in seen:
            raise InvalidInput("source %s is listed twice in sources; list every source volume once" % src)
        seen.add(src)
    names = {}
    for index, dataset in enumerate(d.datasets):
        if dataset.name in names:
            raise InvalidInput("datasets[%d]: dataset name %s is used twice (datasets[%d] and datasets[%d]); give "
                               "every dataset its own name" % (index, dataset.name, names[dataset.name], index))
        names[dataset.name] = index
        for place in dataset.places:
            if place.source not in seen:
                raise InvalidInput("datasets[%d]: dataset %s lies on %s, which is not a source of copy pool %s" % (
                    index, dataset.name, place.source, d.name))
    if d.snapshot_size is not None and d.technology not in SNAPSHOT_SIZE_TECHNOLOGIES:
        raise InvalidInput("snapshot_size %r only applies to technology %s, not %s; leave it out" % (
            d.snapshot_size, spoken(sorted(SNAPSHOT_SIZE_TECHNOLOGIES)), d.technology))
    if d.technology in SNAPSHOT_TECHNOLOGIES:
        remote = _remote_target_pools(d)
        if remote:
            raise InvalidInput("copy pool %s: target pool %s names host %s, but technology %s keeps its copies on "
                               "the managed host and names its target pools itself, so it takes neither "
                               "target_pools nor host; to copy to another host use %s (only %s accepts host for "
                               "now), else leave target_pools out" % (
                                   d.name, remote[0].name, remote[0].host, d.technology, spoken(PUSH_TECHNOLOGIES),
                                   spoken(PUSH_TECHNOLOGIES)))
        if d.target_pools:
            raise InvalidInput("technology %s names its targets itself (target pools %s given); leave target_pools "
                               "out or use %s" % (d.technology, ", ".join(_target_pool_names(d)),
                                                  spoken(technology_names(lambda t: not t.snapshot))))
        return
    if not d.target_pools:
        raise InvalidInput("technology %s needs target_pools: a list of {name, volumes}, at least %d of them "
                           "(one per kept version)" % (d.technology, d.versions))
    owner = {}
    names = set()
    for tp in d.target_pools:
        if not isinstance(tp, TargetPool) or not isinstance(tp.name, str) or not tp.name.strip():
            raise InvalidInput("target pool %r needs a non-empty name" % (tp,))
        if tp.name in names:
            raise InvalidInput("target pool name %s is used twice; give every target pool its own name" % tp.name)
        names.add(tp.name)
        for vol in tp.volumes:
            if not isinstance(vol, str):
                raise InvalidInput("target %r of target pool %s is not a volume name (a string)" % (vol, tp.name))
            if backend is not None:
                backend.validate_target_name(vol)
            if vol in seen:
                raise InvalidInput("%s is both a source and a target (target pool %s); a volume can only be one"
                                   % (vol, tp.name))
            if vol in owner:
                if owner[vol] == tp.name:
                    raise InvalidInput("target %s is listed twice in target pool %s; list it once" % (vol, tp.name))
                raise InvalidInput("target %s is in target pools %s and %s; a target belongs to one target pool"
                                   % (vol, owner[vol], tp.name))
            owner[vol] = tp.name
    remote = _remote_target_pools(d)
    if remote and (d.technology not in PUSH_TECHNOLOGIES
                   or (backend is not None and not getattr(backend, "remote_targets", False))):
        raise InvalidInput("copy pool %s: target pool %s names host %s, but copies to another host are not "
                           "supported for technology %s yet (only %s accepts host for now); leave host out to keep "
                           "the copies on the managed host" % (d.name, remote[0].name, remote[0].host,
                                                               d.technology, spoken(PUSH_TECHNOLOGIES)))
    if d.ssh is not None and not remote:
        raise InvalidInput("ssh %r applies to target pools on another host, and no target pool of copy pool %s "
                           "names host; leave ssh out or give a target pool a host" % (d.ssh.as_dict(), d.name))
    if d.versions > len(d.target_pools):
        raise InvalidInput("versions %d needs at least %d target pools for technology %s, got %d (%s); "
                           "add target pools or lower versions" % (
                               d.versions, d.versions, d.technology, len(d.target_pools),
                               ", ".join(tp.name for tp in d.target_pools)))
