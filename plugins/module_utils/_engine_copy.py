# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fig. 6: the copy method, copy_version state=present.

604: the copy record (Fig. 7, _engine_copy_record) and the journal;
606: the copies at one point in time, all or nothing (take_copies, the one
copy transaction for every technology); 608-616: the new replication record
replaces the pre-copy record, broken pairs and the replaced version go
(next_state, shared by the plan, its diff and apply; promote on the storage).

Crash safety: the state file gets a Journal before any volume is touched, and
is saved again at each phase (``copying`` -> ``copied`` -> ``committing``); the
final save writes the new replication record and drops the journal in one
atomic write.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import time
from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils._engine_browse import refuse_mounted
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import (
    Plan,
    _journaled,
    bases_for,
    _pairs,
    highest_marked_version,
    iso,
    pool_dict,
    release_bases,
    replaced_record,
    unpaired_summary,
    version_dict,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_copy_record import CopyRecordSteps
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_datasets import held_datasets, recheck_datasets
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    HookFailed,
    InvalidInput,
    NoEligibleTarget,
    PitcopyError,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    RECORD_REPLICATION,
    STATUS_VALID,
    CopyOutcome,
    Journal,
    Record,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._technologies import LISTED_TARGET_TECHNOLOGIES


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


def take_copies(backend, definition, version, pairs, window=None, bases=None):
    """Fig. 6, step 606: the copies of ``pairs`` for version ``version`` at
    one point in time, all or nothing. The one place that does so for every
    technology; the backend only offers the steps (_backend.Backend).

    Returns a CopyOutcome. On any failure (an Exception; an interrupt is
    left to the journal, as a kill is) whatever the steps made is
    removed (``undo``) and the error raised with ``exc.undone`` True; when
    removing fails too, ``exc.undone`` is False and its msg says so (the
    caller keeps its journal: verify_records repair removes it later).
    What was made only for the copy (``release``) goes in every case.
    ``bases`` ({source: (version, CopyPair)}): for a backend that sends
    incrementally, the copies the target pool holds (bases_for)."""
    window = window if window is not None else _NoWindow()
    try:
        plan = backend.plan_copies(definition, version, list(pairs))
    except Exception as exc:
        exc.undone = True  # it only read: nothing was touched
        raise
    plan.bases = dict(bases or {})
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


def predict_bases(backend, definition, version, pairs, bases=None):
    """{source: base version, or None for a full send}: what
    ``take_copies(backend, definition, version, pairs, bases=bases)`` would
    send each pair from, decided on the same plan (``plan_copies``, reads
    only) by the same choice (``Backend.bases_to_send_from``); {} for a
    backend that sends nothing incrementally. Check mode reports it."""
    if not getattr(backend, "incremental", False):
        return {}
    plan = backend.plan_copies(definition, version, list(pairs))
    plan.bases = dict(bases or {})
    return backend.bases_to_send_from(plan)


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


class CopySteps(CopyRecordSteps):
    """copy_version state=present (Fig. 6) on the copy record of Fig. 7."""

    def _decide_copy(self, state, backend, volumes, label, when, datasets=()):
        definition = state.definition
        n = state.last_version + 1
        now = iso(when)
        cr = self._build(state, definition, backend, n, volumes, when=when)
        if cr.unpaired:
            raise NoEligibleTarget(
                "version %d of copy pool %s cannot be taken, nothing was copied: %s. See unpaired for why each "
                "candidate was rejected" % (n, self.name, unpaired_summary(cr.unpaired)),
                unpaired=[u.as_dict() for u in cr.unpaired])
        record = Record(RECORD_REPLICATION, n, cr.target_pool, now, cr.pairs, label=label, status=STATUS_VALID,
                        datasets=held_datasets(datasets, cr.pairs))
        replaced_version = cr.replaced.version if cr.replaced is not None else None
        dropped = self._retention(state, n, replaced_version, when)
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
        copies = self._list_copies(backend, state)
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
        # one instant for the whole plan: a grid's buckets (and so the
        # target pool and the versions that go) are decided at it
        when = self.engine.clock()
        tp = state.target_pool_for(n, when, self.engine.tz)
        # a held version's target pool is never reused: refused before any
        # discovery, copy or journal (the plan, check mode included, says so)
        self._refuse_held(replaced_record(state, tp), "to take version %d in target pool %s" % (n, tp))
        refuse_mounted(self.name, replaced_record(state, tp), "to take version %d in target pool %s" % (n, tp))
        names = self._discovery_names(definition, backend, [tp])
        volumes = backend.discover(names)
        # the source dataset inventory again: what this version will hold
        datasets, dataset_warnings = recheck_datasets(backend, definition)
        warnings.extend(dataset_warnings)
        cr, record, dropped, new = self._decide_copy(state, backend, volumes, label, when, datasets)
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

        def predicted():
            # check mode: each send's base as the copy would choose it (read
            # only when check mode asks: Plan.result); bytes_sent is known
            # only once sent
            out = result_for(record, 0.0)
            if getattr(backend, "incremental", False):
                chosen = predict_bases(backend, definition, n, list(cr.pairs), bases_for(backend, cr.replaced))
                for pair in out["version"]["pairs"]:
                    if pair["source"] in chosen:
                        pair.update(base_version=chosen[pair["source"]], bytes_sent=None)
            return out

        return Plan(True, pool_dict(state), pool_dict(new), predicted, act)

    def _run_copy(self, state, definition, backend, names, cr, label, dropped, result_for):
        # discovery again right before acting: the plan may be minutes old
        # (an Ansible play between check and act), and capacity may be gone
        volumes = backend.discover(names)
        replaced_pairs = list(cr.replaced.pairs) if cr.replaced is not None else []
        backend.check_capacity(definition, list(cr.pairs), replaced_pairs, volumes)
        # the datasets again, right before the copy: what this version holds
        datasets, dataset_warnings = recheck_datasets(backend, definition)
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
            outcome = take_copies(backend, definition, n, list(cr.pairs), window,
                                  bases=bases_for(backend, cr.replaced))
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
        warnings = tuple(dataset_warnings) + tuple(getattr(window, "warnings", None) or ())
        # 608-614: the new replication record, the replaced and broken pairs go
        try:
            self._commit(state, definition, backend, journal, dropped, warnings, datasets=datasets)
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

    def _commit(self, state, definition, backend, journal, dropped, warnings=(), status=STATUS_VALID,
                datasets=None):
        """Steps 608-614 and the rotation: promote, retention, one atomic save.
        ``datasets``: what the version holds, as resolved before the copy;
        None (a repair finishing a journal): the source dataset inventory."""
        n = journal.version
        replaced = state.replication(journal.replaced_version) if journal.replaced_version is not None else None
        replaced_pairs = list(replaced.pairs) if replaced is not None else []
        backend.promote(definition, n, list(journal.pairs), list(journal.staged), replaced_pairs)
        for r in dropped:
            backend.delete_copies(definition, list(r.pairs))
        record = Record(RECORD_REPLICATION, n, journal.target_pool, self.engine.now(), tuple(journal.pairs),
                        label=journal.label, status=status, warnings=tuple(warnings),
                        datasets=held_datasets(definition.datasets if datasets is None else datasets,
                                               journal.pairs))
        # the new record names the copies promote() just made: a rename keeps
        # a copy's identity, so the staged copies' identities are the final
        # ones; a journal read back from the file (repair) has none, and
        # records written before identities were kept have none either: ask
        # the storage for those
        final = dict((p.source, p.target) for p in journal.pairs)
        record = record.with_identities(dict((final[s.source], s.identity) for s in journal.staged
                                             if s.identity and s.source in final))
        # what each send put on the wire (known in the run that sent it)
        sent = dict((s.source, s) for s in journal.staged if s.bytes_sent is not None)
        if sent:
            record = replace(record, pairs=tuple(
                replace(p, base_version=sent[p.source].base_version, bytes_sent=sent[p.source].bytes_sent)
                if p.source in sent else p for p in record.pairs))
        new = next_state(state, record, journal.replaced_version, dropped)
        if backend.identifies_copies and any(p.identity is None for r in new.replication_records for p in r.pairs):
            new = next_state(state, record, journal.replaced_version, dropped, self._found_identities(backend))
        self._save(new)
        release_bases(backend, definition, new, before=state)
        return new
