# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record engine: the copy-version method of Figures 4-8, as plans.

API (what modules and roles rely on; implementers keep these names):

    engine = RecordEngine(store, backend_for, clock=None)
        store        a _store.StateStore
        backend_for  callable(technology) -> _backend.Backend
        clock        callable() -> aware UTC datetime (tests pass a fake)
        window_factory  (optional, keyword) callable(definition, runner) ->
                     a copy window; default _quiesce.CopyWindow

    engine.pool_names() -> [str]

    with engine.session(pool_name, shared=False) as s:   # takes the pool's lock
                                                # (shared: a reader's), loads state
        plan = s.plan_define(definition)        # copy_pool state=present
        plan = s.plan_remove(remove_copies=False)   # copy_pool state=absent
        plan = s.plan_prepair(versions=1, allow_unpaired=False)   # prepair_record present
        plan = s.plan_drop_prepairing()         # prepair_record absent
        plan = s.plan_copy(label=None)          # copy_version present
        plan = s.plan_delete(version)           # copy_version absent
        plan = s.plan_restore(version, volumes=None)    # copy_version restored
        plan = s.plan_verify(repair=False)      # verify_records
        info = s.info()                         # copy_pool_info (one pool's dict)

    A Plan is decided from the state file and read-only discovery; it changes
    nothing until ``plan.apply()``. So check mode is simply "don't apply":

        plan.changed  bool: whether apply() would change the state or a volume
        plan.before   dict: records before (diff mode)
        plan.after    dict: records after, as far as known before acting
        plan.result   dict: the module's return values, as check mode reports them
        plan.apply()  -> dict: acts, saves state atomically, returns the result
                      (with e.g. ``copy_window_ms`` filled in)

    Errors are the exceptions of _errors.py, raised before anything changed
    unless they say otherwise (CopyFailed after cleaning up).

Crash safety of a copy (Fig. 6): the state file gets a Journal before any
volume is touched, and is saved again at each phase (``copying`` ->
``copied`` -> ``committing``); the final save writes the new replication
record and drops the journal in one atomic write. A run killed anywhere leaves
either the old records plus a journal, or the new records; ``plan_verify``
reports the journal as ``interrupted_copy`` and ``repair=True`` rolls it back
or finishes it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import time
from dataclasses import replace
from datetime import datetime, timezone

from ansible_collections.pitcopy.versions.plugins.module_utils import _quiesce
from ansible_collections.pitcopy.versions.plugins.module_utils._definition import check_definition, check_values
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CopyFailed,
    HookFailed,
    InvalidInput,
    NoEligibleTarget,
    PitcopyError,
    PoolNotFound,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    JOURNAL_COPY,
    JOURNAL_DELETE,
    JOURNAL_REMOVE,
    JOURNAL_RESTORE,
    PRE_COPY_NONE,
    PRE_COPY_PREPAIRING,
    PRE_COPY_REPLICATION,
    RECORD_PREPAIRING,
    RECORD_REPLICATION,
    STATUS_INCOMPLETE,
    STATUS_INVALID,
    STATUS_VALID,
    CopyOutcome,
    CopyPair,
    Finding,
    Journal,
    PoolState,
    Record,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._selection import (
    TargetScan,
    UNTRACKED_TARGET,
    select_implied,
    select_targets,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._technologies import LISTED_TARGET_TECHNOLOGIES


def _utcnow():
    return datetime.now(timezone.utc)


def iso(dt):
    """ISO 8601 UTC, seconds precision, ``Z`` suffix."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _default_window_factory(definition, runner):
    return _quiesce.CopyWindow(definition, runner)


class _NoWindow:
    """The copy window of a caller that has none (a backend driven
    directly): no hooks, nothing frozen; the window is measured."""

    window_ms = None
    hooks = ()

    @contextlib.contextmanager
    def open(self, freeze=()):
        yield self


def _note_undo_failed(exc, undo_exc):
    """``exc`` saying that removing what the failed copy made failed too."""
    what = getattr(undo_exc, "msg", None) or str(undo_exc)
    msg = getattr(exc, "msg", None)
    if msg is not None:
        exc.msg = "%s; removing what was made for this version failed too (%s): verify_records lists it" % (
            msg, what)
        exc.args = (exc.msg,)
    exc.undone = False


def take_copies(backend, definition, version, pairs, window=None):
    """Fig. 6, step 606: the copies of ``pairs`` for version ``version`` at
    one point in time, all or nothing. The one place that does so for every
    technology; the backend only offers the steps (_backend.Backend).

    Returns a CopyOutcome. On any failure (an Exception; an interrupt is
    left to the journal, as a kill is) whatever the steps made is
    removed (``undo``) and the error raised with ``exc.undone`` True; when
    removing fails too, ``exc.undone`` is False and its msg says so (the
    caller keeps its journal: verify_records repair removes it later).
    What was made only for the copy (``release``) goes in every case."""
    window = window if window is not None else _NoWindow()
    try:
        plan = backend.plan_copies(definition, version, list(pairs))
    except Exception as exc:
        exc.undone = True  # it only read: nothing was touched
        raise
    failure = None
    window_ms = 0.0
    try:
        backend.prepare(plan)
        t0 = time.monotonic()
        with window.open(freeze=plan.freeze):  # pre-copy hooks, freeze ... thaw, post-copy hooks
            backend.take_point_in_time(plan)
        window_ms = getattr(window, "window_ms", None) or (time.monotonic() - t0) * 1000.0
        backend.transfer(plan)
    except Exception as exc:  # a hook, the tool, a check: nothing of this version stays
        failure = exc
    # an interrupt (KeyboardInterrupt, SystemExit) goes up as it is, like a
    # kill: the caller's journal says what to roll back (verify_records)
    try:
        backend.release(plan)
    except Exception as exc:
        if failure is None:
            failure = exc  # otherwise the copy's own failure is the one to report
    if failure is not None:
        try:
            backend.undo(plan)
        except Exception as undo_exc:
            _note_undo_failed(failure, undo_exc)
        else:
            failure.undone = True
        raise failure
    return CopyOutcome(staged=list(plan.staged), window_ms=float(window_ms), frozen=list(plan.freeze),
                       hooks=list(getattr(window, "hooks", None) or ()))


def next_state(state, record, replaced_version, dropped, identities=None):
    """The pool's state once version ``record`` is committed (Fig. 6, steps
    608-614 on the records): the record of the version it replaces and the
    ``dropped`` ones (retention) go, the pre-pairing records up to it are
    used up, ``last_version`` never goes back, no journal. ``identities``
    ({version: {target: identity}}) fills in identities the records lack.
    The one computation of it: the plan and its diff (before the copy) and
    apply (after it) both call it, so they cannot disagree."""
    n = record.version
    gone = set(r.version for r in dropped)
    if replaced_version is not None:
        gone.add(replaced_version)
    kept = [r for r in state.replication_records if r.version not in gone and r.version != n] + [record]
    if identities:
        kept = [r.with_identities(identities.get(r.version, {})) for r in kept]
    return replace(
        state,
        replication_records=tuple(sorted(kept, key=lambda r: r.version)),
        prepairing_records=tuple(r for r in state.prepairing_records if r.version > n),
        last_version=max(n, state.last_version),
        journal=None,
    )


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


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


def pool_dict(state):
    """copy_pool_info's dict of one pool (also the diff of every plan)."""
    if state is None:
        return {}
    out = state.definition.as_dict()
    out["replication_records"] = [r.as_dict() for r in sorted(state.replication_records, key=lambda r: r.version)]
    out["prepairing_records"] = [r.as_dict() for r in sorted(state.prepairing_records, key=lambda r: r.version)]
    out["last_version"] = state.last_version
    out["interrupted_copy"] = state.journal.as_dict() if state.journal is not None else None
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


def _unpaired_action(finding, unpaired, pprs):
    """The finding's dict, saying so when re-pairing found no target."""
    out = finding.as_dict()
    if finding.record != RECORD_PREPAIRING:
        return out
    tps = dict((r.version, r.target_pool) for r in pprs)
    for u in unpaired:
        if u.source == finding.source and u.target_pool == tps.get(finding.version):
            out["action"] = "pair dropped, no eligible target left (%s); add or free a target and run " \
                            "pitcopy.versions.prepair_record" % (u.reasons[0] if u.reasons else "no candidates")
    return out


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
        "pre_copy_record": pre_copy_record,
        "pairs": _pairs(record.pairs),
    }


class Plan:
    """What one module run would do; ``apply()`` does it (once)."""

    def __init__(self, changed, before, after, result, action=None):
        self.changed = bool(changed)
        self.before = before
        self.after = after
        self.result = result
        self._action = action
        self._applied = None

    def apply(self):
        if self._applied is not None:
            return self._applied
        if self.changed and self._action is not None:
            self._applied = self._action()
        else:
            self._applied = self.result
        return self._applied


class CopyRecord:
    """The pairs one version will use (Fig. 7 + Fig. 8), and where they came from."""

    def __init__(self, version, target_pool, pairs, pre_copy, pre_copy_kind, replaced, broken, unpaired):
        self.version = version
        self.target_pool = target_pool
        self.pairs = tuple(pairs)
        self.pre_copy = pre_copy
        self.pre_copy_kind = pre_copy_kind
        self.replaced = replaced
        self.broken = tuple(broken)
        self.unpaired = list(unpaired)


class RecordEngine:
    def __init__(self, store, backend_for, clock=None, window_factory=None):
        self.store = store
        self.backend_for = backend_for
        self.clock = clock or _utcnow
        self.window_factory = window_factory or _default_window_factory

    def now(self):
        return iso(self.clock())

    def pool_names(self):
        return list(self.store.pool_names())

    def check_definition(self, definition):
        """Raise InvalidInput unless ``definition`` can be defined: the one
        domain check (_definition.check_definition with the backend's name
        syntax, then what the backend can never do). Needs no lock: modules
        run it before they take one, plan_define again for other callers.
        Returns the definition's backend."""
        check_values(definition)  # a known technology before asking for its backend
        backend = self.backend_for(definition.technology)
        check_definition(definition, backend)
        backend.validate_definition(definition)
        return backend

    @contextlib.contextmanager
    def session(self, pool_name, shared=False):
        """``shared``: the caller only reads (info, verify without repair,
        check mode): a reader's lock, which other readers do not wait for."""
        with self.store.locked(pool_name, shared=shared):
            yield PoolSession(self, pool_name, self.store.load(pool_name))


# --------------------------------------------------------------------------
# definition checks


def _target_pool_volumes(definition, name):
    for tp in definition.target_pools:
        if tp.name == name:
            return tuple(tp.volumes)
    return ()


def check_targets_not_shared(store, definition, backend):
    """Raise InvalidInput when another copy pool in the same state_dir lists
    one of ``definition``'s targets and the backend cannot share a target
    between pools (``exclusive_targets``: btrfs_send's first copies of two
    pools would meet at one staging path). Read from the other pools' state
    files; one that cannot be read is not judged here (its own runs report
    it)."""
    if not getattr(backend, "exclusive_targets", False):
        return
    mine = {}
    for tp in definition.target_pools:
        for t in tp.volumes:
            mine[t] = tp.name
    for other in store.pool_names():
        if other == definition.name:
            continue
        try:
            state = store.load(other)
        except PitcopyError:
            continue
        if state is None:
            continue
        for tp in state.definition.target_pools:
            for t in tp.volumes:
                if t in mine:
                    raise InvalidInput(
                        "target %s of target pool %s is already a target of copy pool %s (target pool %s) in the "
                        "same state_dir; technology %s needs a target directory per copy pool (the copies of two "
                        "pools would meet at one staging path): choose another target directory" % (
                            t, mine[t], other, tp.name, definition.technology))


def target_type_problem(backend, technology, vol, source_kinds):
    """Why existing target ``vol`` can never be a target of ``technology``
    for sources of ``source_kinds``, or None. Only the volume's type counts
    (its kind and the technologies it can take part in): what records,
    sizes or free space decide is left to target selection."""
    kinds = set()
    for k in source_kinds:
        kinds.update(backend.target_kinds(k))
    if vol.kind not in kinds:
        return "is of kind %s, which can never receive a %s copy; technology %s takes targets of kind: %s" % (
            vol.kind, technology, technology, ", ".join(sorted(kinds)) or "none")
    if technology not in vol.technologies:
        return "(kind %s) cannot take part in %s copies (it supports: %s); technology %s takes targets on " \
               "storage that supports it" % (vol.kind, technology, ", ".join(sorted(vol.technologies)) or "none",
                                             technology)
    return None


def restore_pairs(state, rec, volumes=None):
    """The pairs of version ``rec`` a restore acts on. Without ``volumes``:
    the pool's CURRENT sources only; a source that left the pool since the
    version was taken may hold someone's live data now, so it is restored
    only when ``volumes`` names it."""
    known = [p.source for p in rec.pairs]
    if volumes is None:
        current = set(state.definition.sources)
        pairs = [p for p in rec.pairs if p.source in current]
        if not pairs:
            raise InvalidInput(
                "version %d of copy pool %s holds none of the pool's current sources (%s), so a restore without "
                "volumes restores nothing; name the sources to restore in volumes, from: %s" % (
                    rec.version, state.definition.name, ", ".join(state.definition.sources), ", ".join(known)))
        return pairs
    if isinstance(volumes, str):
        volumes = [volumes]
    known_set = set(known)
    for v in volumes:
        if v not in known_set:
            raise InvalidInput("%s is not a source of version %d of copy pool %s; choose from: %s" % (
                v, rec.version, state.definition.name, ", ".join(known)))
    wanted = set(volumes)
    return [p for p in rec.pairs if p.source in wanted]


# --------------------------------------------------------------------------


class PoolSession:
    def __init__(self, engine, name, state):
        self.engine = engine
        self.name = name
        self.state = state

    # --- helpers ---------------------------------------------------------

    @property
    def store(self):
        return self.engine.store

    def _require(self):
        if self.state is None:
            raise PoolNotFound("copy pool %s does not exist (no state file %s); define it with "
                               "pitcopy.versions.copy_pool first" % (self.name, self.store.path(self.name)))
        return self.state

    def _backend(self, definition=None):
        return self.engine.backend_for((definition or self.state.definition).technology)

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

    @staticmethod
    def _reserved(records_rr, records_ppr):
        reserved = {}
        for rec in records_rr:
            for p in rec.pairs:
                reserved[p.target] = "already paired with %s in version %d" % (p.source, rec.version)
        for rec in records_ppr:
            for p in rec.pairs:
                reserved.setdefault(p.target, "reserved for %s by the pre-pairing record of version %d" % (
                    p.source, rec.version))
        return reserved

    def _replaced_record(self, state, target_pool):
        occupying = [r for r in state.replication_records if r.target_pool == target_pool]
        return min(occupying, key=lambda r: r.version) if occupying else None

    def _build(self, state, definition, backend, version, volumes, prepairing=None, use_prepairing=True):
        """Fig. 7 and Fig. 8: the copy record of ``version``."""
        prepairing = state.prepairing_records if prepairing is None else prepairing
        tp = replace(state, definition=definition).target_pool_for(version)
        ppr = None
        if use_prepairing:
            for r in prepairing:
                if r.version == version and r.target_pool == tp:
                    ppr = r
        replaced = self._replaced_record(state, tp)
        if ppr is not None:
            pre, kind = ppr, PRE_COPY_PREPAIRING
        elif replaced is not None:
            pre, kind = replaced, PRE_COPY_REPLICATION
        else:
            pre, kind = None, PRE_COPY_NONE
        sources = list(definition.sources)
        in_pool = set(sources)
        # steps 612-614: pairs whose source left the pool; a pre-pairing
        # record was already trimmed when the pool changed, so the version
        # being replaced speaks for those sources too
        broken = []
        for rec in (pre, replaced):
            for p in (rec.pairs if rec is not None else ()):
                if p.source not in in_pool and p not in broken:
                    broken.append(p)
        if backend.implied_targets:
            recorded = set(p.target for p in (replaced.pairs if replaced is not None else ()))
            pairs, unpaired = select_implied(backend, definition.name, tp, sources, volumes, recorded)
            return CopyRecord(version, tp, pairs, pre, kind, replaced, broken, unpaired)
        reserved = self._reserved(
            [r for r in state.replication_records if r is not replaced],
            [r for r in prepairing if r.version != version],
        )
        candidates = _target_pool_volumes(definition, tp)
        if backend.pool_mark_is_a_copy:
            # as for implied targets (select_implied): a copy with our mark
            # that no record has is never destroyed to make room
            recorded = set(p.target for p in (replaced.pairs if replaced is not None else ()))
            for name in candidates:
                vol = volumes.get(name)
                if vol is not None and vol.owner == definition.name and name not in recorded:
                    reserved.setdefault(name, UNTRACKED_TARGET % definition.name)
        scan = TargetScan(backend, definition.name, definition.technology, tp, candidates, volumes, reserved)
        kept = {}
        if pre is not None:
            in_tp = set(candidates)
            for p in pre.pairs:
                if p.source not in in_pool or p.source in kept or p.target not in in_tp:
                    continue
                src = volumes.get(p.source)
                if src is None or scan.rejection(src, p.target) is not None:
                    continue
                kept[p.source] = p.target
                scan.claim(p.source, p.target)
        new_pairs, unpaired = select_targets(scan, [s for s in sources if s not in kept])
        chosen = dict(kept)
        chosen.update((p.source, p.target) for p in new_pairs)
        pairs = [CopyPair(s, chosen[s]) for s in sources if s in chosen]
        return CopyRecord(version, tp, pairs, pre, kind, replaced, broken, unpaired)

    # --- info --------------------------------------------------------------

    def info(self):
        return pool_dict(self._require())

    # --- copy_pool ------------------------------------------------------------

    def plan_define(self, definition):
        if definition.name != self.name:
            raise InvalidInput("the definition names pool %s but this session is for pool %s" % (
                definition.name, self.name))
        backend = self.engine.check_definition(definition)
        old = self.state
        if old is not None:
            self._check_redefinition(old, definition)
        names = self._discovery_names(definition, backend)
        volumes = backend.discover(names)
        for src in definition.sources:
            vol = volumes.get(src)
            if vol is None:
                raise InvalidInput("source %s does not exist on this host; create it or leave it out of sources"
                                   % src)
            kinds = backend.source_kinds()
            if kinds and vol.kind not in kinds:
                raise InvalidInput("source %s is of kind %s; technology %s takes sources of kind: %s" % (
                    src, vol.kind, definition.technology, ", ".join(sorted(kinds))))
        if not backend.implied_targets:
            source_kinds = set(volumes[src].kind for src in definition.sources)
            for tp in definition.target_pools:
                for t in tp.volumes:
                    vol = volumes.get(t)
                    # a target holding our own copy stays acceptable: a kept
                    # version's target cannot be dropped (_check_redefinition)
                    problem = None if vol is None or vol.owner == self.name else target_type_problem(
                        backend, definition.technology, vol, source_kinds)
                    if problem is not None:
                        raise InvalidInput("target %s of target pool %s %s. Choose another target volume"
                                           % (t, tp.name, problem))
                    if vol is not None and (vol.foreign_data or (vol.owner is not None and vol.owner != self.name)):
                        raise InvalidInput(
                            "target %s of target pool %s holds data that copy pool %s does not own%s; it is never "
                            "overwritten: choose another target volume" % (
                                t, tp.name, self.name, " (marked by pool %s)" % vol.owner if vol.owner else ""))
        # last: what is wrong with the definition itself is named first
        check_targets_not_shared(self.store, definition, backend)
        if old is None:
            new = PoolState(definition=definition)
            unpaired = []
        else:
            new = replace(old, definition=definition)
            prepairing, unpaired = self._refresh_prepairing(new, backend, volumes)
            new = replace(new, prepairing_records=prepairing)
        changed = old != new
        if changed and old is not None:
            self._no_journal("changing the pool")
        n = new.last_version + 1
        tp = new.target_pool_for(n)
        occupying = self._replaced_record(new, tp)
        result = {"pool": definition.as_dict(), "unpaired": [u.as_dict() for u in unpaired],
                  "prepairing_records": [r.as_dict() for r in new.prepairing_records],
                  # what the next copy_version will do, so that a change of
                  # the rotation (more target pools) shows before it bites
                  "next_version": {"number": n, "target_pool": tp,
                                   "replaces": occupying.version if occupying is not None else None}}

        def act():
            self._save(new)
            return result

        return Plan(changed, pool_dict(old), pool_dict(new), result, act)

    def _check_redefinition(self, old, new):
        od = old.definition
        rrs = sorted(old.replication_records, key=lambda r: r.version)
        if not rrs:
            return
        listing = ", ".join(str(r.version) for r in rrs)
        if new.technology != od.technology:
            raise InvalidInput(
                "copy pool %s has versions %s made with technology %s; changing it to %s would orphan them. "
                "Delete them first (pitcopy.versions.copy_version state=absent version=N) and redefine" % (
                    self.name, listing, od.technology, new.technology))
        if new.versions < len(rrs):
            extra = rrs[:len(rrs) - new.versions]
            raise InvalidInput(
                "versions %d is fewer than the %d versions copy pool %s keeps (%s); delete version(s) %s first "
                "(pitcopy.versions.copy_version state=absent) and then lower versions" % (
                    new.versions, len(rrs), self.name, listing, ", ".join(str(r.version) for r in extra)))
        if new.technology in LISTED_TARGET_TECHNOLOGIES:
            new_tps = {tp.name: set(tp.volumes) for tp in new.target_pools}
            for r in rrs:
                if r.target_pool not in new_tps:
                    raise InvalidInput(
                        "target pool %s holds version %d of copy pool %s; delete version %d first "
                        "(pitcopy.versions.copy_version state=absent version=%d) or keep the target pool" % (
                            r.target_pool, r.version, self.name, r.version, r.version))
                for p in r.pairs:
                    if p.target not in new_tps[r.target_pool]:
                        raise InvalidInput(
                            "target %s of target pool %s holds the copy of %s in version %d; delete version %d "
                            "first (pitcopy.versions.copy_version state=absent version=%d) or keep the target" % (
                                p.target, r.target_pool, p.source, r.version, r.version, r.version))
        else:
            new_names = set(new.target_pool_names())
            for r in rrs:
                if r.target_pool not in new_names:
                    raise InvalidInput(
                        "versions %d drops target pool %s, which holds version %d of copy pool %s; delete "
                        "version %d first (pitcopy.versions.copy_version state=absent version=%d)" % (
                            new.versions, r.target_pool, r.version, self.name, r.version, r.version))

    def _refresh_prepairing(self, state, backend, volumes):
        """Re-verify every pre-pairing record against the (new) definition and
        the host ([0012]-[0013]): keep valid pairs, re-pair the others."""
        definition = state.definition
        ppl = len(definition.target_pool_names())
        # stale ones, and those beyond one rotation of the new definition, go
        working = [r for r in sorted(state.prepairing_records, key=lambda r: r.version)
                   if state.last_version < r.version <= state.last_version + ppl]
        unpaired = []
        for i, rec in enumerate(list(working)):
            cr = self._build(state, definition, backend, rec.version, volumes, prepairing=tuple(working))
            unpaired.extend(cr.unpaired)
            if not (cr.pre_copy is rec and tuple(cr.pairs) == rec.pairs):
                working[i] = Record(RECORD_PREPAIRING, rec.version, cr.target_pool, self.engine.now(),
                                    tuple(cr.pairs))
        return tuple(working), unpaired

    def plan_remove(self, remove_copies=False):
        old = self.state
        if old is None:
            return Plan(False, {}, {}, {"pool": None, "removed_versions": []})
        self._no_journal("removing the pool")
        rrs = sorted(old.replication_records, key=lambda r: r.version)
        if rrs and not remove_copies:
            raise InvalidInput(
                "copy pool %s still has copy versions %s; removing it would leave their copies without records. "
                "Delete them first (pitcopy.versions.copy_version state=absent version=N), or set "
                "remove_copies: true to delete them with the pool" % (
                    self.name, ", ".join(str(r.version) for r in rrs)))
        result = {"pool": old.definition.as_dict(), "removed_versions": [r.version for r in rrs]}

        def act():
            backend = self._backend()
            if rrs:
                # journaled before the first copy goes: a run killed here is
                # finished by verify_records repair (copies, then the file)
                journal = Journal(operation=JOURNAL_REMOVE, version=rrs[-1].version, target_pool="",
                                  pairs=tuple(p for r in rrs for p in r.pairs), phase="deleting",
                                  started=self.engine.now(), pid=os.getpid())
                self._save(replace(old, journal=journal))
                try:
                    # one listing for every record: deleting one version's
                    # copies does not change which volume holds another's
                    copies = backend.list_copies(self.name) if any(p.identity for r in rrs for p in r.pairs) else ()
                    for r in rrs:
                        # only the copies the records name (identity), never a stranger at their path
                        backend.delete_copies(old.definition, self._recorded_copies(backend, r.pairs, copies))
                        self._save(replace(self.state, replication_records=tuple(
                            x for x in self.state.replication_records if x.version != r.version)))
                except PitcopyError as exc:
                    raise _journaled(exc, journal, self.name)
            self.store.remove(self.name)
            self.state = None
            return result

        return Plan(True, pool_dict(old), {}, result, act)

    # --- prepair_record ----------------------------------------------------

    def plan_prepair(self, versions=1, allow_unpaired=False):
        state = self._require()
        definition = state.definition
        ntp = len(definition.target_pool_names())
        if not _is_int(versions) or versions < 1 or versions > ntp:
            raise InvalidInput("versions %r: pre-pair between 1 and %d upcoming versions (the number of target "
                               "pools of copy pool %s)" % (versions, ntp, self.name))
        backend = self._backend()
        volumes = backend.discover(self._discovery_names(definition, backend))
        first = state.last_version + 1
        wanted = list(range(first, first + versions))
        others = tuple(r for r in state.prepairing_records if r.version not in wanted and r.version >= first)
        working = list(state.prepairing_records)
        built = []
        unpaired = []
        now = self.engine.now()
        for v in wanted:
            cr = self._build(state, definition, backend, v, volumes, prepairing=tuple(working))
            old = state.prepairing(v)
            if old is not None and cr.pre_copy is old and tuple(cr.pairs) == old.pairs:
                rec = old
            else:
                rec = Record(RECORD_PREPAIRING, v, cr.target_pool, now, tuple(cr.pairs))
            unpaired.extend(cr.unpaired)
            if cr.pairs:
                replaced_pairs = cr.replaced.pairs if cr.replaced is not None else ()
                backend.check_capacity(definition, list(cr.pairs), list(replaced_pairs), volumes)
            working = [r for r in working if r.version != v] + [rec]
            built.append(rec)
        if unpaired and not allow_unpaired:
            raise NoEligibleTarget(
                "no eligible target for %d source(s) of copy pool %s: %s. See unpaired for why each candidate was "
                "rejected; add or free target volumes, or set allow_unpaired: true to keep the pairs that were "
                "found" % (len(unpaired), self.name, unpaired_summary(unpaired)),
                unpaired=[u.as_dict() for u in unpaired])
        new_pprs = tuple(sorted(others + tuple(built), key=lambda r: r.version))
        new = replace(state, prepairing_records=new_pprs)
        result = {"records": [r.as_dict() for r in built], "unpaired": [u.as_dict() for u in unpaired]}

        def act():
            self._save(new)
            return result

        return Plan(new != state, pool_dict(state), pool_dict(new), result, act)

    def plan_drop_prepairing(self):
        state = self._require()
        new = replace(state, prepairing_records=())
        result = {"records": [], "removed_records": [r.as_dict() for r in state.prepairing_records]}

        def act():
            self._save(new)
            return result

        return Plan(bool(state.prepairing_records), pool_dict(state), pool_dict(new), result, act)

    # --- copy_version present -------------------------------------------------

    def _decide_copy(self, state, backend, volumes, label, now):
        definition = state.definition
        n = state.last_version + 1
        cr = self._build(state, definition, backend, n, volumes)
        if cr.unpaired:
            raise NoEligibleTarget(
                "version %d of copy pool %s cannot be taken, nothing was copied: %s. See unpaired for why each "
                "candidate was rejected" % (n, self.name, unpaired_summary(cr.unpaired)),
                unpaired=[u.as_dict() for u in cr.unpaired])
        record = Record(RECORD_REPLICATION, n, cr.target_pool, now, cr.pairs, label=label, status=STATUS_VALID)
        replaced_version = cr.replaced.version if cr.replaced is not None else None
        dropped = self._retention(state, n, replaced_version)
        new = next_state(state, record, replaced_version, dropped)
        return cr, record, dropped, new

    def plan_copy(self, label=None):
        state = self._require()
        if label is not None:
            for r in state.replication_records:
                if r.label == label:
                    result = {"version": version_dict(r), "replaced_version": None, "broken_pairs": [],
                              "deleted_versions": [], "copy_window_ms": 0.0, "hooks": []}
                    return Plan(False, pool_dict(state), pool_dict(state), result)
        self._no_journal("taking a new version")
        definition = state.definition
        backend = self._backend()
        # the stored definition was validated when defined; only re-check
        # what rotation relies on (a hand-edited file could break it)
        if definition.technology in LISTED_TARGET_TECHNOLOGIES and definition.versions > len(definition.target_pools):
            raise InvalidInput("copy pool %s keeps %d versions but has only %d target pools; add target pools or "
                               "lower versions with pitcopy.versions.copy_pool" % (
                                   self.name, definition.versions, len(definition.target_pools)))
        # A version number never goes backwards: when our marks on the storage
        # know a higher version than the records (an older state file was put
        # back), the new version is numbered after it instead of reusing a
        # number an existing copy bears.
        copies = backend.list_copies(self.name)
        marked = highest_marked_version(copies, self._own_targets(state, backend))
        warnings = []
        if marked > state.last_version:
            warnings.append(
                "copy pool %s: the copies on the storage bear version numbers up to %d but the records end at "
                "last_version %d (was an older state file put back?); the new version is numbered %d so that no "
                "number is used twice. Run pitcopy.versions.verify_records to see the copies the records do not "
                "know" % (self.name, marked, state.last_version, marked + 1))
            state = replace(state, last_version=marked)
        n = state.last_version + 1
        names = self._discovery_names(definition, backend, [state.target_pool_for(n)])
        volumes = backend.discover(names)
        cr, record, dropped, new = self._decide_copy(state, backend, volumes, label, self.engine.now())
        replaced_pairs = list(cr.replaced.pairs) if cr.replaced is not None else []
        self._check_identities(backend, [cr.replaced] + list(dropped), copies, "to take version %d" % n)
        backend.check_capacity(definition, list(cr.pairs), replaced_pairs, volumes)

        def result_for(rec, window_ms, hooks=()):
            out = {
                "version": version_dict(rec, cr.pre_copy_kind),
                "replaced_version": cr.replaced.version if cr.replaced is not None else None,
                "broken_pairs": _pairs(cr.broken),
                "deleted_versions": [r.version for r in dropped],
                "copy_window_ms": window_ms,
                "hooks": list(hooks),
            }
            if warnings:
                out["warnings"] = list(warnings)
            return out

        def act():
            return self._run_copy(state, definition, backend, names, cr, label, dropped, result_for)

        return Plan(True, pool_dict(state), pool_dict(new), result_for(record, 0.0), act)

    def _run_copy(self, state, definition, backend, names, cr, label, dropped, result_for):
        # discovery again right before acting: the plan may be minutes old
        # (an Ansible play between check and act), and capacity may be gone
        volumes = backend.discover(names)
        replaced_pairs = list(cr.replaced.pairs) if cr.replaced is not None else []
        backend.check_capacity(definition, list(cr.pairs), replaced_pairs, volumes)
        n = cr.version
        journal = Journal(
            operation="copy", version=n, target_pool=cr.target_pool, pairs=cr.pairs, phase="copying",
            started=self.engine.now(), replaced_version=cr.replaced.version if cr.replaced is not None else None,
            label=label, pid=os.getpid(),
        )
        self._save(replace(state, journal=journal))
        # 606: the copies, at one point in time, all or nothing
        window = self.engine.window_factory(definition, backend.runner)
        try:
            outcome = take_copies(backend, definition, n, list(cr.pairs), window)
        except PitcopyError as exc:
            if not getattr(exc, "undone", False):
                raise _journaled(exc, journal, self.name)  # something of it may stay: repair removes it
            # nothing of version n stays: the records stay at the previous versions
            self._save(replace(state, journal=None))
            raise
        journal = replace(journal, phase="copied", staged=tuple(outcome.staged))
        self._save(replace(state, journal=journal))
        journal = replace(journal, phase="committing")
        self._save(replace(state, journal=journal))
        # what went wrong without stopping the copy: kept on the record
        warnings = tuple(getattr(window, "warnings", None) or ())
        # 608-614: the new replication record, the replaced and broken pairs go
        try:
            self._commit(state, definition, backend, journal, dropped, warnings)
        except PitcopyError as exc:
            raise _journaled(exc, journal, self.name)
        record = self.state.replication(n)
        # what the hooks did (a non-aborting failure is only visible here)
        hooks = outcome.hooks
        result = result_for(record, outcome.window_ms, hooks)
        result["_warnings"] = list(warnings)  # to Ansible's warnings (the module wrapper)
        failures = list(getattr(window, "post_hook_failures", None) or ())
        if failures:
            # the copy is one point in time and recorded; what the hook was to
            # do afterwards (resume a service, ...) did not happen: not green
            raise HookFailed("%s; version %d of copy pool %s was taken and recorded (its record carries this "
                             "warning), but abort_on_failure is true for this hook, so the run fails: do by hand "
                             "what the hook failed to do" % ("; ".join(failures), n, self.name),
                             changed=True, version=result["version"], hooks=list(hooks), warnings=list(warnings))
        return result

    def _commit(self, state, definition, backend, journal, dropped, warnings=(), status=STATUS_VALID):
        """Steps 608-614 and the rotation: promote, retention, one atomic save."""
        n = journal.version
        replaced = state.replication(journal.replaced_version) if journal.replaced_version is not None else None
        replaced_pairs = list(replaced.pairs) if replaced is not None else []
        backend.promote(definition, n, list(journal.pairs), list(journal.staged), replaced_pairs)
        for r in dropped:
            backend.delete_copies(definition, list(r.pairs))
        record = Record(RECORD_REPLICATION, n, journal.target_pool, self.engine.now(), tuple(journal.pairs),
                        label=journal.label, status=status, warnings=tuple(warnings))
        # the new record names the copies promote() just made: a rename keeps
        # a copy's identity, so the staged copies' identities are the final
        # ones; a journal read back from the file (repair) has none, and
        # records written before identities were kept have none either: ask
        # the storage for those
        final = dict((p.source, p.target) for p in journal.pairs)
        record = record.with_identities(dict((final[s.source], s.identity) for s in journal.staged
                                             if s.identity and s.source in final))
        new = next_state(state, record, journal.replaced_version, dropped)
        if backend.identifies_copies and any(p.identity is None for r in new.replication_records for p in r.pairs):
            new = next_state(state, record, journal.replaced_version, dropped, self._found_identities(backend))
        self._save(new)
        return new

    def _own_targets(self, state, backend):
        """Every target the pool's definition or records name."""
        targets = set(self._discovery_names(state.definition, backend)) - set(state.definition.sources)
        for r in state.replication_records + state.prepairing_records:
            targets.update(p.target for p in r.pairs)
        return targets

    def _found_identities(self, backend):
        """{version: {target: identity}} of the valid, promoted copies of our
        pool on the storage, for records that do not know them yet."""
        out = {}
        for c in backend.list_copies(self.name):
            if c.identity is not None and not c.staged and c.valid and _is_int(c.version):
                out.setdefault(c.version, {})[c.target] = c.identity
        return out

    def _recorded_copies(self, backend, pairs, copies=None):
        """Those of ``pairs`` whose copy on the storage is the one recorded
        (or whose identity is not known): the only ones a deletion touches.
        ``copies``: the pool's listing when the caller has one already."""
        if not any(p.identity for p in pairs):
            return list(pairs)
        by_target = _promoted_by_target(backend.list_copies(self.name) if copies is None else copies)
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

    def _retention(self, state, n, replaced_version):
        """Records to drop so that, with version n added, ``versions`` are kept."""
        keep = [r for r in state.replication_records if r.version != replaced_version and r.version != n]
        keep.sort(key=lambda r: r.version)
        excess = len(keep) + 1 - state.definition.versions
        return keep[:max(0, excess)]

    # --- copy_version absent / restored -------------------------------------

    def plan_delete(self, version):
        state = self._require()
        if not _is_int(version) or version < 1:
            raise InvalidInput("version must be a positive integer, got %r" % (version,))
        rec = state.replication(version)
        if rec is None:
            result = {"version": None, "replaced_version": None, "broken_pairs": [], "deleted_versions": []}
            return Plan(False, pool_dict(state), pool_dict(state), result)
        self._no_journal("deleting a version")
        new = replace(state, replication_records=tuple(r for r in state.replication_records if r.version != version))
        # a copy whose identity is not the recorded one is not ours: the
        # record goes, that volume stays (backends check it again)
        result = {"version": version_dict(rec), "replaced_version": None, "broken_pairs": [],
                  "deleted_versions": [version]}

        def act():
            # the intent first: with a full or read-only state_dir this save
            # fails and nothing is deleted; a run killed while deleting
            # leaves the journal, which verify_records repair finishes
            journal = Journal(operation=JOURNAL_DELETE, version=version, target_pool=rec.target_pool,
                              pairs=rec.pairs, phase="deleting", started=self.engine.now(), label=rec.label,
                              pid=os.getpid())
            self._save(replace(state, journal=journal))
            backend = self._backend()
            try:
                # only the copies the record names (identity), never a stranger at their path
                backend.delete_copies(state.definition, self._recorded_copies(backend, rec.pairs))
            except PitcopyError as exc:
                raise _journaled(exc, journal, self.name)
            self._save(new)
            return result

        return Plan(True, pool_dict(state), pool_dict(new), result, act)

    def plan_restore(self, version, volumes=None):
        state = self._require()
        if not _is_int(version) or version < 1:
            raise InvalidInput("version must be a positive integer, got %r" % (version,))
        rec = state.replication(version)
        if rec is None:
            raise InvalidInput("copy pool %s has no version %d; it keeps versions: %s" % (
                self.name, version, ", ".join(str(r.version) for r in state.replication_records) or "none"))
        if rec.status != STATUS_VALID:
            raise InvalidInput("version %d of copy pool %s is %s and cannot be restored; restore another version "
                               "(run pitcopy.versions.verify_records to see why)" % (version, self.name, rec.status))
        self._no_journal("restoring")
        pairs = restore_pairs(state, rec, volumes)
        backend = self._backend()
        self._check_identities(backend, [replace(rec, pairs=tuple(pairs))], backend.list_copies(self.name),
                               "to restore version %d" % version)
        # ``changed`` from a comparison: a source that already holds its
        # copy's data is not restored again (None: the backend cannot tell)
        differing = backend.restore_differs(state.definition, version, pairs)
        if differing is not None:
            pairs = [p for p in pairs if p.source in set(differing)]
        asides = tuple(CopyPair(p.source, a) for p in pairs
                       for a in (backend.restore_aside(state.definition, p.source),) if a)
        result = {"version": version_dict(rec), "replaced_version": None, "broken_pairs": [],
                  "restored": [p.source for p in pairs],
                  "asides": [{"source": a.source, "aside": a.target} for a in asides]}

        def act():
            return self._run_restore(state, rec, pairs, asides, result)

        return Plan(bool(pairs), pool_dict(state), pool_dict(state), result, act)

    def _run_restore(self, state, rec, pairs, asides, result):
        """Restore source by source under a journal that names each source's
        aside (where its data waits while the copy takes its place), so that
        a run killed in the middle is finished by verify_records repair
        instead of leaving a source missing and its data in an aside."""
        definition = state.definition
        backend = self._backend()
        # every refusal before anything is journaled or moved
        backend.check_restore(definition, rec.version, pairs)
        journal = Journal(operation=JOURNAL_RESTORE, version=rec.version, target_pool=rec.target_pool,
                          pairs=tuple(pairs), phase="restoring", started=self.engine.now(), label=rec.label,
                          pid=os.getpid(), asides=asides)
        self._save(replace(state, journal=journal))
        batches = [[p] for p in pairs] if backend.restore_per_pair else [list(pairs)]
        for batch in batches:
            try:
                backend.restore(definition, rec.version, batch)
            except (CopyFailed, InvalidInput) as exc:
                # the backend left this source as it was: the journal goes,
                # saying which sources were restored before it
                self._save(replace(state, journal=None))
                if journal.done:
                    exc.msg = "%s (sources restored before the failure: %s; the others were left as they were)" % (
                        exc.msg, ", ".join(journal.done))
                    exc.args = (exc.msg,)
                raise
            except PitcopyError as exc:
                raise _journaled(exc, journal, self.name)
            journal = replace(journal, done=journal.done + tuple(p.source for p in batch))
            if len(journal.done) < len(pairs):
                self._save(replace(state, journal=journal))
        self._save(replace(state, journal=None))
        return result

    # --- verify_records ---------------------------------------------------------

    def plan_verify(self, repair=False):
        state = self._require()
        definition = state.definition
        backend = self._backend()
        names = self._discovery_names(definition, backend)
        for r in state.replication_records + state.prepairing_records:
            names.extend(p.source for p in r.pairs)
            names.extend(p.target for p in r.pairs)
        seen = set()
        names = [n for n in names if not (n in seen or seen.add(n))]
        volumes = backend.discover(names)
        copies = backend.list_copies(self.name)
        by_target = {}
        for c in copies:
            by_target.setdefault(c.target, []).append(c)
        findings = []
        tracked = set()
        listed = not backend.implied_targets
        in_pool = set(definition.sources)
        # rejection() needs no candidate index: one empty scan serves all pairs
        checker = TargetScan(backend, self.name, definition.technology, "", (), volumes, {})

        # the journal first: what it staged is not "untracked"
        j = state.journal
        journal_plan = None
        # versions whose copies the journal is deleting: not "missing"
        going = set()
        # sources the journal is restoring: not "missing" either
        restoring = set()
        if j is not None and j.operation == JOURNAL_COPY:
            staged_here = [c for c in copies if c.staged and c.version == j.version]
            # staged or already promoted copies of the interrupted version
            tracked.update(c.target for c in copies if c.version == j.version)
            tracked.update(p.target for p in j.staged)
            journal_plan = self._journal_repair_plan(state, j, staged_here, by_target)
            findings.append(Finding(RECORD_REPLICATION, j.version, None, None, "interrupted_copy",
                                    journal_plan[1] if repair else "none (repair: true would %s)" % journal_plan[1]))
            findings.extend(journal_plan[2])
        elif j is not None:
            journal_plan = self._other_journal_plan(state, j, volumes, repair)
            findings.extend(journal_plan[2])
            if j.operation in (JOURNAL_DELETE, JOURNAL_REMOVE):
                going.update(r.version for r in state.replication_records
                             if j.operation == JOURNAL_REMOVE or r.version == j.version)
                tracked.update(p.target for p in j.pairs)
            else:
                restoring.update(p.source for p in j.pairs)

        # a version number never goes backwards: our marks know the highest
        # (an interrupted copy's own staged copies bear its version: not behind)
        floor = max(state.last_version, j.version if j is not None else 0)
        marked = highest_marked_version(copies, self._own_targets(state, backend))
        behind = marked > floor
        raise_note = ("repair raised last_version from %d to %d" if repair else
                      "repair: true would raise last_version from %d to %d") % (state.last_version, marked)

        new_rrs = []
        learned = False
        for rec in sorted(state.replication_records, key=lambda r: r.version):
            if rec.version in going:
                tracked.update(p.target for p in rec.pairs)
                new_rrs.append(rec)
                continue
            keep_pairs = []
            status = rec.status
            for p in rec.pairs:
                tracked.add(p.target)
                infos = [c for c in by_target.get(p.target, ()) if c.version == rec.version and not c.staged]
                problem = None
                mismatch = identity_problem(p, [c for c in by_target.get(p.target, ()) if not c.staged],
                                            backend.same_copy)
                if p.source not in volumes and p.source in in_pool and p.source not in restoring:
                    # a source that left the pool may well be gone for good
                    findings.append(Finding(RECORD_REPLICATION, rec.version, p.source, p.target, "source_missing",
                                            "left for a human: the copy is kept; create %s again or restore it "
                                            "from this version" % p.source))
                if listed and p.target not in volumes:
                    problem = "target_missing"
                elif not infos:
                    problem = "copy_missing"
                elif mismatch:
                    problem = "copy_identity_mismatch"
                elif not backend.copy_valid(definition, infos[0]):
                    problem = "copy_invalid"
                if problem == "copy_identity_mismatch":
                    # keep the pair and its identity: the record is what says
                    # the volume there is not ours, so nothing deletes it
                    status = STATUS_INVALID
                    findings.append(Finding(RECORD_REPLICATION, rec.version, p.source, p.target, problem,
                                            ("version marked invalid; " if repair else
                                             "none (repair: true would mark the version invalid); ")
                                            + mismatch + "; move it away (then repair drops the pair) or delete "
                                            "the version with pitcopy.versions.copy_version state=absent"))
                    keep_pairs.append(p)
                    continue
                if problem is None and p.identity is None and infos and infos[0].identity is not None:
                    # a record from before identities were kept: the copy
                    # checked out, so its identity is recorded from now on
                    p = replace(p, identity=infos[0].identity)
                    learned = True
                if problem in ("target_missing", "copy_missing"):
                    findings.append(Finding(RECORD_REPLICATION, rec.version, p.source, p.target, problem,
                                            "pair dropped from the record; version marked incomplete" if repair
                                            else "none (repair: true would drop the pair)"))
                    continue
                if problem == "copy_invalid":
                    status = STATUS_INVALID
                    findings.append(Finding(RECORD_REPLICATION, rec.version, p.source, p.target, problem,
                                            "version marked invalid" if repair
                                            else "none (repair: true would mark the version invalid)"))
                keep_pairs.append(p)
            if len(keep_pairs) != len(rec.pairs):
                if not keep_pairs:
                    continue  # none of its copies exist: the record goes
                if status == STATUS_VALID:
                    status = STATUS_INCOMPLETE
            new_rrs.append(replace(rec, pairs=tuple(keep_pairs), status=status))

        for rec in sorted(state.prepairing_records, key=lambda r: r.version):
            for p in rec.pairs:
                tracked.add(p.target)
                problem = None
                src = volumes.get(p.source)
                if p.source not in in_pool:
                    continue  # re-verified at the next copy anyway (Fig. 8)
                if src is None:
                    findings.append(Finding(RECORD_PREPAIRING, rec.version, p.source, p.target, "source_missing",
                                            "left for a human: create %s again or remove it from the pool's "
                                            "sources" % p.source))
                    continue
                if not listed:
                    vol = volumes.get(p.target)
                    if vol is not None and (vol.foreign_data or vol.owner != self.name):
                        problem = "target_incompatible"  # someone else's volume took the implied name
                else:
                    vol = volumes.get(p.target)
                    if vol is None:
                        problem = "target_missing"
                    else:
                        if checker.rejection(src, p.target) is not None:
                            problem = "target_incompatible"
                if problem:
                    findings.append(Finding(RECORD_PREPAIRING, rec.version, p.source, p.target, problem,
                                            "pre-pairing record re-paired" if repair
                                            else "none (repair: true would re-pair the record)"))

        explained = True
        for c in copies:
            if c.target in tracked:
                if _is_int(c.version) and c.version > floor:
                    explained = False
                continue
            ahead = _is_int(c.version) and c.version > floor
            findings.append(Finding(
                RECORD_REPLICATION, c.version, c.source, c.target, "untracked_copy",
                "left for a human: %s carries the mark of copy pool %s%s but no record has it; delete it with "
                "the storage tool if it is not needed%s" % (
                    c.target, self.name, " (version %s of %s)" % (c.version, c.source) if c.version else "",
                    "; its version is above the records' last_version %d (an older state file put back?): the "
                    "next copy_version is numbered after it, so that no version number is used twice"
                    % state.last_version if ahead else "")))
        behind = behind and not explained
        if behind:
            # copies the records point at bear later versions than the records
            # know: the records went back (an older state file was put back)
            findings.append(Finding(
                RECORD_REPLICATION, marked, None, None, "last_version_behind",
                "%s: copies on the storage bear version numbers up to %d, which the records (last_version %d) do "
                "not know (an older state file put back?), so the next version is numbered after them" % (
                    raise_note if repair else "none (%s)" % raise_note, marked, state.last_version)))

        leftovers = backend.leftovers(definition)
        for path in leftovers:
            findings.append(Finding(RECORD_REPLICATION, None, None, path, "leftover_file",
                                    "removed" if repair else "none (repair: true would remove it): a temporary "
                                    "file of this pool that a killed run left"))

        new = replace(state, replication_records=tuple(new_rrs))
        if behind:
            new = replace(new, last_version=marked)
        result = {"consistent": not findings, "findings": [f.as_dict() for f in findings]}
        if not repair:
            return Plan(False, pool_dict(state), pool_dict(state), result)

        pre_problem = any(f.record == RECORD_PREPAIRING and f.problem != "source_missing" for f in findings)
        # identities learned change the file, not the records' meaning
        # (CopyPair equality ignores them)
        changed = bool(j is not None or new != state or pre_problem or learned or leftovers)

        def act():
            if leftovers:
                backend.sweep_leftovers(definition)
            current = state
            if j is not None and j.operation == JOURNAL_REMOVE:
                journal_plan[0]()  # the pool and its state file are gone
                return result
            if j is not None:
                current = journal_plan[0]()
                # records of the finished/rolled-back copy replace ours
                new_rr = [r for r in new.replication_records
                          if current.replication(r.version) is not None]
                extra = [r for r in current.replication_records if state.replication(r.version) is None]
                current = replace(current, replication_records=tuple(sorted(
                    new_rr + extra, key=lambda r: r.version)))
                if behind:
                    current = replace(current, last_version=max(current.last_version, marked))
            else:
                current = new
            out = result
            if pre_problem:
                fresh = backend.discover(self._discovery_names(current.definition, backend))
                pprs, unpaired = self._refresh_prepairing(current, backend, fresh)
                current = replace(current, prepairing_records=pprs)
                if unpaired:
                    out = dict(result, findings=[_unpaired_action(f, unpaired, pprs) for f in findings])
            self._save(current)
            return out

        return Plan(changed, pool_dict(state), pool_dict(new), result, act)

    def _other_journal_plan(self, state, j, volumes, repair):
        """(action callable -> new state, description, findings) for an
        interrupted delete, restore or pool removal. Each is finished, never
        rolled back: a copy half deleted cannot come back, and a restore is
        only safe to finish (its sources' data waits in the journaled asides)."""
        definition = state.definition
        backend = self._backend()

        def say(done):
            return done if repair else "none (repair: true would have %s)" % done

        if j.operation == JOURNAL_DELETE:
            what = "finished deleting version %d (its %d copies deleted, its record dropped)" % (
                j.version, len(j.pairs))

            def finish_delete():
                # the record (kept until its copies are gone) knows their identities; the journal does not
                rec = state.replication(j.version)
                backend.delete_copies(definition, self._recorded_copies(backend, rec.pairs if rec else j.pairs))
                new = replace(state, journal=None, replication_records=tuple(
                    r for r in state.replication_records if r.version != j.version))
                self._save(new)
                return new

            return finish_delete, what, [Finding(RECORD_REPLICATION, j.version, None, None, "interrupted_delete",
                                                 say(what))]
        if j.operation == JOURNAL_REMOVE:
            # the records' pairs first: they carry the identities
            pairs = [p for r in state.replication_records for p in r.pairs]
            pairs += [p for p in j.pairs if p not in pairs]
            what = "finished removing copy pool %s (the copies of versions %s deleted, its state file removed)" % (
                self.name, ", ".join(str(r.version) for r in state.replication_records) or "none left")

            def finish_remove():
                backend.delete_copies(definition, self._recorded_copies(backend, pairs))
                self.store.remove(self.name)
                self.state = None
                return None

            return finish_remove, what, [Finding(RECORD_REPLICATION, j.version, None, None, "interrupted_remove",
                                                 say(what))]
        if j.operation == JOURNAL_RESTORE:
            todo = [p for p in j.pairs if p.source not in j.done]
            findings = []
            for p in todo:
                aside = j.aside_of(p.source)
                where = backend.restore_progress(definition, p, aside)
                what = "finished the restore of %s from version %d%s" % (
                    p.source, j.version, "; the data it had before the restore, held at %s, was deleted once the "
                    "copy took its place" % aside if aside else "")
                findings.append(Finding(RECORD_REPLICATION, j.version, p.source, p.target, "interrupted_restore",
                                        "%s%s" % (say(what), " (%s)" % where if where else "")))

            if not todo:
                what = "cleared the journal of the restore of version %d (every source had been restored)" % j.version
                findings.append(Finding(RECORD_REPLICATION, j.version, None, None, "interrupted_restore", say(what)))

            def finish_restore():
                for p in todo:
                    backend.resume_restore(definition, j.version, p, j.aside_of(p.source))
                new = replace(state, journal=None)
                self._save(new)
                return new

            return finish_restore, "finished the restore of version %d" % j.version, findings

        def unknown():
            raise PitcopyError("copy pool %s has a journal of operation %r, which this version of pitcopy does not "
                               "know; finish it with the pitcopy version that wrote it" % (self.name, j.operation))

        return unknown, "left for a human", [Finding(RECORD_REPLICATION, j.version, None, None, "unknown_journal",
                                                     "left for a human: operation %r is unknown" % j.operation)]

    def _journal_repair_plan(self, state, j, staged_here, by_target):
        """(action callable -> new state, description, extra findings) for an
        interrupted copy."""
        definition = state.definition
        backend = self._backend()
        final = {p.source: p.target for p in j.pairs}
        staged_names = set(c.target for c in staged_here)

        def at_final(target):
            # promoted, or renamed to its final name by a run killed before
            # its staged mark went (LVM: lvrename, then lvchange --deltag):
            # promote() finishes both
            return any(c.version == j.version for c in by_target.get(target, ()))

        def done(p):
            if p.target in staged_names:
                return True
            return at_final(final.get(p.source))

        finishable = j.phase in ("copied", "committing") and j.staged and all(done(p) for p in j.staged) and (
            len(j.staged) == len(j.pairs))
        if finishable:
            dropped = self._retention(state, j.version, j.replaced_version)

            def finish():
                return self._commit(state, definition, backend, j, dropped)

            return finish, "finished the interrupted copy of version %d (promoted its %d staged copies)" % (
                j.version, len(j.staged)), []

        if j.phase == "committing":
            # promotion may already have deleted the replaced version and
            # renamed some copies: rolling back would delete complete copies
            # of the new version. Finish with the copies that exist; a staged
            # copy lost meanwhile (a second fault) is a finding, not a reason
            # to delete the others.
            staged_by_source = dict((p.source, p) for p in j.staged)
            present = []
            lost = []
            for p in j.pairs:
                st = staged_by_source.get(p.source)
                final_done = at_final(p.target)
                if final_done or (st is not None and st.target in staged_names):
                    present.append(p)
                else:
                    lost.append(p)
            if present:
                partial = replace(j, pairs=tuple(present),
                                  staged=tuple(p for p in j.staged if p.source in set(x.source for x in present)))
                dropped = self._retention(state, j.version, j.replaced_version)

                def finish_partial():
                    return self._commit(state, definition, backend, partial, dropped,
                                        status=STATUS_INCOMPLETE if lost else STATUS_VALID)

                extra = [Finding(RECORD_REPLICATION, j.version, p.source, p.target, "staged_copy_missing",
                                 "left for a human: the staged copy of %s was lost before it was promoted; "
                                 "version %d is recorded without it (incomplete) and its other copies are kept"
                                 % (p.source, j.version)) for p in lost]
                return finish_partial, "finished the interrupted copy of version %d (promoted %d of its %d copies%s)" % (
                    j.version, len(present), len(j.pairs), "; version marked incomplete" if lost else ""), extra

        # copies of the interrupted version that promote() already moved to
        # their final names: ours, named by the journal, and in no record
        promoted = [p for p in j.pairs
                    if any(c.version == j.version and not c.staged for c in by_target.get(p.target, ()))]

        def rollback():
            # each staged copy once, even when the journal and the storage
            # both name it (one tool call must not get a path twice)
            to_discard = []
            known = set()
            for p in [CopyPair(c.source or "", c.target) for c in staged_here] + list(j.staged):
                if p.target not in known:
                    known.add(p.target)
                    to_discard.append(p)
            if to_discard:
                backend.discard(definition, to_discard)
            if promoted:
                backend.delete_copies(definition, promoted)
            new = replace(state, journal=None)
            self._save(new)
            return new

        return rollback, "rolled back the interrupted copy of version %d (phase %s): discarded %d staged copies; " \
                         "the records stay at the previous versions" % (j.version, j.phase, len(staged_here)), []
