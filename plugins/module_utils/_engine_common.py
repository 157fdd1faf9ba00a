# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record engine's shared parts: the Plan every module run gets, the
records as dicts (pool_dict, version_dict), identity checks, and
SessionBase, the helpers each figure's steps use on one pool under its lock
(the state, its save, the names to discover, the copies the records own,
retention). Imported through _engine.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from dataclasses import replace
from datetime import datetime, timezone

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, PitcopyError, PoolNotFound
from ansible_collections.pitcopy.versions.plugins.module_utils._model import STATUS_VALID


def _utcnow():
    return datetime.now(timezone.utc)


def iso(dt):
    """ISO 8601 UTC, seconds precision, ``Z`` suffix."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_iso(text):
    """The datetime (UTC) of a record's ``created`` (see ``iso``)."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def newest_valid(state):
    """The replication record of the newest valid version, or None."""
    valid = [r for r in state.replication_records if r.status == STATUS_VALID]
    return max(valid, key=lambda r: r.version) if valid else None


def newest_valid_age(state, now):
    """Seconds since the newest valid version was taken (``now``: a
    datetime), or None when no version is valid. Never negative: a clock
    set back does not make a copy younger than new."""
    rec = newest_valid(state)
    if rec is None:
        return None
    return max(0, int((now - parse_iso(rec.created)).total_seconds()))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_version_number(version):
    """Refuse a copy version ``version`` that is not a positive integer (the
    one rule of every copy_version state that names a version)."""
    if not _is_int(version) or version < 1:
        raise InvalidInput("version must be a positive integer, got %r" % (version,))


def with_record(state, rec):
    """``state`` with the replication record of ``rec``'s version replaced by ``rec``."""
    return replace(state, replication_records=tuple(rec if r.version == rec.version else r
                                                    for r in state.replication_records))


def _pairs(pairs):
    return [p.as_dict() for p in pairs]


def highest_marked_version(copies, targets):
    """The highest version number our marks carry on the promoted copies at
    ``targets`` (0 if none). Only the pool's own targets count: a pool of the
    same name kept in another state_dir marks copies elsewhere on the host."""
    return max([c.version for c in copies if _is_int(c.version) and not c.staged and c.target in targets] or [0])


def identity_problem(pair, infos, same=None):
    """Why the copy of ``pair`` found on the storage (``infos``, the
    CopyInfos at its target) is not the one the record names, or None. A
    pair without a recorded identity (a record from before identities were
    kept) is not judged here: its identity is recorded when next seen."""
    if pair.identity is None or not infos:
        return None
    found = [c.identity for c in infos if c.identity is not None]
    same = same or (lambda recorded, seen: recorded == seen)
    if not found or any(same(pair.identity, f) for f in found):
        return None
    return "%s holds a copy with identity %s, but the record names the copy with identity %s: it is not the " \
           "copy that was made, so it is never deleted, rotated or restored from" % (
               pair.target, ", ".join(sorted(set(found))), pair.identity)


def _promoted_by_target(copies):
    """{target: [CopyInfo]} of the promoted (not staged) copies of a listing:
    what identity checks compare a record's pairs with."""
    by_target = {}
    for c in copies:
        if not c.staged:
            by_target.setdefault(c.target, []).append(c)
    return by_target


def replaced_record(state, target_pool):
    """The replication record a new version in ``target_pool`` replaces:
    the oldest one there, or None."""
    occupying = [r for r in state.replication_records if r.target_pool == target_pool]
    return min(occupying, key=lambda r: r.version) if occupying else None


def next_version(state, when=None, tz=None):
    """What the next copy_version would do with the records as they are:
    ``{number, target_pool, replaces, held, hold_reason}``; ``held``: the
    version it would replace is held, so that copy is refused. A
    ``retention`` grid chooses the target pool by the time of the copy:
    ``when`` (aware datetime, the engine's clock) stands for it."""
    n = state.last_version + 1
    tp = state.target_pool_for(n, when, tz)
    rec = replaced_record(state, tp)
    return {"number": n, "target_pool": tp, "replaces": rec.version if rec is not None else None,
            "held": bool(rec is not None and rec.held),
            "hold_reason": rec.hold_reason if rec is not None and rec.held else None}


def pool_dict(state):
    """copy_pool_info's dict of one pool (also the diff of every plan)."""
    if state is None:
        return {}
    out = state.definition.as_dict()
    out["replication_records"] = [r.as_dict() for r in sorted(state.replication_records, key=lambda r: r.version)]
    out["prepairing_records"] = [r.as_dict() for r in sorted(state.prepairing_records, key=lambda r: r.version)]
    out["last_version"] = state.last_version
    out["interrupted_copy"] = state.journal.as_dict() if state.journal is not None else None
    # the storage media inventory (copy_version state=dumped)
    out["media"] = [d.as_dict() for d in sorted(state.media, key=lambda d: (d.version, d.medium))]
    return out


def unpaired_summary(unpaired, limit=3):
    """``vg/A (target pool 01: <first reason>)``, for the one-line msg."""
    parts = ["%s (target pool %s: %s)" % (u.source, u.target_pool, u.reasons[0] if u.reasons else "no candidates")
             for u in unpaired[:limit]]
    if len(unpaired) > limit:
        parts.append("and %d more" % (len(unpaired) - limit))
    return "; ".join(parts)


def _journaled(exc, journal, pool):
    """``exc`` with its msg saying the copy is journaled and how to go on
    (the journal stays; CommandError keeps its rc/stdout/stderr)."""
    exc.msg = "%s (version %d of copy pool %s is journaled in phase %s; run pitcopy.versions.verify_records " \
              "with repair: true to finish or roll it back)" % (exc.msg, journal.version, pool, journal.phase)
    exc.args = (exc.msg,)
    return exc


def version_dict(record, pre_copy_record=None):
    if record is None:
        return None
    return {
        "number": record.version,
        "target_pool": record.target_pool,
        "created": record.created,
        "label": record.label,
        "status": record.status,
        "warnings": list(record.warnings),
        "held": record.held,
        "hold_reason": record.hold_reason,
        "pre_copy_record": pre_copy_record,
        "pairs": _pairs(record.pairs),
        "datasets": [d.as_dict() for d in record.datasets],
    }


class Plan:
    """What one module run would do; ``apply()`` does it (once)."""

    def __init__(self, changed, before, after, result, action=None):
        self.changed = bool(changed)
        self.before = before
        self.after = after
        self._result = result
        self._action = action
        self._applied = None

    @property
    def result(self):
        """The module's return values as check mode reports them. A plan
        may give a callable: it is called once, when asked, so that what
        only check mode shows (the base each send would use) is read from
        the storage only in check mode, never in a run that acts."""
        if callable(self._result):
            self._result = self._result()
        return self._result

    def apply(self):
        if self._applied is not None:
            return self._applied
        if self.changed and self._action is not None:
            self._applied = self._action()
        else:
            self._applied = self.result
        return self._applied


def _target_pool_volumes(definition, name):
    for tp in definition.target_pools:
        if tp.name == name:
            return tuple(tp.volumes)
    return ()


class SessionBase:
    """One copy pool under its lock (``state``: what the store loaded, None
    when the pool is not defined): what every figure's steps share."""

    def __init__(self, engine, name, state):
        self.engine = engine
        self.name = name
        self.state = state

    @property
    def store(self):
        return self.engine.store

    def _require(self):
        if self.state is None:
            raise PoolNotFound("copy pool %s does not exist (no state file %s); define it with "
                               "pitcopy.versions.copy_pool first" % (self.name, self.store.path(self.name)))
        return self.state

    def _backend(self, definition=None):
        definition = definition or self.state.definition
        backend = self.engine.backend_for(definition.technology)
        # where the pool's volumes live (target pools on other hosts)
        backend.use_definition(definition)
        return backend

    def _no_journal(self, what):
        j = self.state.journal
        if j is not None:
            raise PitcopyError(
                "copy pool %s has an unfinished %s of version %d (phase %s, started %s); run "
                "pitcopy.versions.verify_records with repair: true before %s" % (
                    self.name, j.operation, j.version, j.phase, j.started, what))

    def _save(self, state):
        self.store.save(state)
        self.state = state

    def _discovery_names(self, definition, backend, target_pools=None):
        names = list(definition.sources)
        tps = definition.target_pool_names() if target_pools is None else target_pools
        for tp in tps:
            if backend.implied_targets:
                names.extend(backend.implied_target(definition.name, tp, s) for s in definition.sources)
            else:
                names.extend(_target_pool_volumes(definition, tp))
        seen = set()
        return [n for n in names if not (n in seen or seen.add(n))]

    def _own_targets(self, state, backend):
        """Every target the pool's definition or records name."""
        targets = set(self._discovery_names(state.definition, backend)) - set(state.definition.sources)
        for r in state.replication_records + state.prepairing_records:
            targets.update(p.target for p in r.pairs)
        return targets

    def _list_copies(self, backend, state=None, pairs=()):
        """The pool's copies, looked for only where they can be: what the
        definition, records and journal of ``state`` (default: the pool's
        current state) name, and ``pairs`` (PoolState.copy_scope)."""
        scope = (state or self.state).copy_scope()
        return backend.list_copies(self.name, scope.with_pairs(pairs) if pairs else scope)

    def _found_identities(self, backend):
        """{version: {target: identity}} of the valid, promoted copies of our
        pool on the storage, for records that do not know them yet."""
        out = {}
        for c in self._list_copies(backend):
            if c.identity is not None and not c.staged and c.valid and _is_int(c.version):
                out.setdefault(c.version, {})[c.target] = c.identity
        return out

    def _recorded_copies(self, backend, pairs, copies=None):
        """Those of ``pairs`` whose copy on the storage is the one recorded
        (or whose identity is not known): the only ones a deletion touches.
        ``copies``: the pool's listing when the caller has one already."""
        if not any(p.identity for p in pairs):
            return list(pairs)
        by_target = _promoted_by_target(self._list_copies(backend, pairs=pairs) if copies is None else copies)
        return [p for p in pairs if not identity_problem(p, by_target.get(p.target, ()), backend.same_copy)]

    def _check_identities(self, backend, records, copies, what):
        """Refuse, before anything changes, to act on records whose copies on
        the storage are not the ones they name (another volume took the
        target's name): rotation and deletion would destroy what is not ours."""
        by_target = _promoted_by_target(copies)
        problems = []
        for rec in records:
            for p in (rec.pairs if rec is not None else ()):
                why = identity_problem(p, by_target.get(p.target, ()), backend.same_copy)
                if why:
                    problems.append("version %d: %s" % (rec.version, why))
        if problems:
            raise InvalidInput(
                "copy pool %s: refusing %s, nothing was changed: copy_identity_mismatch: %s. Run "
                "pitcopy.versions.verify_records to see the finding; move the volume that is not ours away, or "
                "delete that version with pitcopy.versions.copy_version state=absent, which removes its record and leaves that "
                "volume alone" % (self.name, what, "; ".join(problems)))

    def _refuse_held(self, rec, what):
        """Refuse, before anything is touched, to replace or delete held
        version ``rec`` (None: nothing to refuse)."""
        if rec is not None and rec.held:
            raise InvalidInput(
                "copy pool %s: refusing %s, nothing was changed: version %d%s is held (hold reason: %s). Release "
                "it first with pitcopy.versions.copy_version state=released version=%d" % (
                    self.name, what, rec.version, " (label %s)" % rec.label if rec.label is not None else "",
                    rec.hold_reason if rec.hold_reason is not None else "none given", rec.version))

    def _retention(self, state, n, replaced_version, when=None):
        """Records to drop so that, with version n added, ``versions`` are
        kept. A held version is never dropped (it stays beyond the count).
        With a ``retention`` grid: the versions the grid no longer needs at
        ``when`` (the copy's time, an aware datetime), the one computation
        that also chose the target pool (PoolState.grid_choice); the plan,
        its diff and apply all use the list this returns."""
        if state.definition.retention is not None:
            if when is None:  # no time to judge the grid by: nothing goes
                return []
            return [r for r in state.grid_choice(when, self.engine.tz)[1]
                    if r.version != replaced_version and r.version != n]
        keep = [r for r in state.replication_records if r.version != replaced_version and r.version != n]
        # held versions count towards ``versions`` but the oldest unheld go
        excess = len(keep) + 1 - state.definition.versions
        # a mounted version is kept like a held one (its copies are in use)
        keep = [r for r in keep if not r.held and r.mounted is None]
        keep.sort(key=lambda r: r.version)
        return keep[:max(0, excess)]


def bases_for(backend, replaced):
    """{source: (version, CopyPair)}: what each source's copy can be sent
    incrementally from. The method's part of an incremental send: the
    target pool's replication record says which version it holds (the
    version the new one replaces); the backend checks on the storage that
    the copy is still the one sent from its base, else it sends in full."""
    if not getattr(backend, "incremental", False) or replaced is None:
        return {}
    return dict((p.source, (replaced.version, p)) for p in replaced.pairs)


def release_bases(backend, definition, state, before=None, sources=()):
    """Delete the bases no kept version needs (after the records are
    saved: a crash before it leaves one more base, which the next copy or
    verify_records releases). ``before``: the state the records left
    (its sources are looked beside too: a source that left the pool);
    ``sources``: more sources to look beside (a journal's). A failure here
    does not undo a committed version: verify_records reports the base as
    unneeded."""
    if state is None or not getattr(backend, "incremental", False):
        return []
    gone = [p.source for r in (before.replication_records if before is not None else ()) for p in r.pairs]
    gone += list(sources)
    try:
        return backend.release_bases(definition, list(state.replication_records), sources=gone)
    except (PitcopyError, OSError):
        return []
