# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy_version state=restored: sources take their data back from a version,
source by source under a journal that names where each source's data waits
(its aside), so that verify_records repair can finish a killed run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import (
    Plan,
    SessionBase,
    check_version_number,
    _journaled,
    pool_dict,
    version_dict,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed, InvalidInput, PitcopyError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    JOURNAL_RESTORE,
    JOURNAL_RESTORE_ELSEWHERE,
    STATUS_VALID,
    CopyPair,
    Journal,
)


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


class RestoreSteps(SessionBase):
    """copy_version state=restored."""

    def _restorable(self, state, version):
        check_version_number(version)
        rec = state.replication(version)
        if rec is None:
            raise InvalidInput("copy pool %s has no version %d; it keeps versions: %s" % (
                self.name, version, ", ".join(str(r.version) for r in state.replication_records) or "none"))
        if rec.status != STATUS_VALID:
            raise InvalidInput("version %d of copy pool %s is %s and cannot be restored; restore another version "
                               "(run pitcopy.versions.verify_records to see why)" % (version, self.name, rec.status))
        self._no_journal("restoring")
        return rec

    def _restore_start(self, version, volumes):
        """What every restore of whole sources starts from, refusing before
        anything is planned: (state, the version's record, the pairs
        restored, the backend), the copies of those pairs checked to be the
        ones the record names."""
        state = self._require()
        rec = self._restorable(state, version)
        pairs = restore_pairs(state, rec, volumes)
        backend = self._backend()
        self._check_identities(backend, [replace(rec, pairs=tuple(pairs))], self._list_copies(backend, state, pairs),
                               "to restore version %d" % version)
        return state, rec, pairs, backend

    def plan_restore_elsewhere(self, version, restore_to, volumes=None):
        """Whole sources of ``version`` restored as NEW volumes beside
        production, named under ``restore_to``'s rules (the backend's): never
        overwriting anything, carrying none of the pool's copy marks (so
        rotation, deletion, pool removal and verify_records never see them as
        copies) and recorded nowhere but in the journal while they are made.
        A volume already made from this version's copy is no change; anything
        else at its name is refused before anything is made. Several sources
        are made one by one under a ``restore_elsewhere`` journal naming every
        volume, so a run killed midway is finished by verify_records repair
        (it makes the missing volumes, never deletes one)."""
        state, rec, pairs, backend = self._restore_start(version, volumes)
        planned = backend.restore_elsewhere_volumes(state.definition, rec.version, pairs, restore_to)
        found = [(p, v, backend.restored_elsewhere(state.definition, rec.version, p, v)) for p, v in planned]
        taken = ["%s (for %s): %s" % (v, p.source, f) for p, v, f in found if f is not None and f is not True]
        if taken:
            raise InvalidInput("cannot restore version %d of copy pool %s to restore_to %r, nothing was changed: "
                               "%s; a restore elsewhere never overwrites: choose another restore_to, or move "
                               "that away" % (rec.version, self.name, restore_to, "; ".join(taken)))
        todo = [(p, v) for p, v, f in found if f is None]
        restored_to = [{"source": p.source, "volume": v} for p, v in planned]
        result = {"version": version_dict(rec), "replaced_version": None, "broken_pairs": [],
                  "restored": [p.source for p, v in todo], "asides": [], "restored_to": restored_to,
                  "restore_to": restore_to}
        before = dict(pool_dict(state), restored_to=[{"source": p.source, "volume": v}
                                                     for p, v, f in found if f is True])
        after = dict(pool_dict(state), restored_to=restored_to)

        def act():
            definition = state.definition
            journal = Journal(operation=JOURNAL_RESTORE_ELSEWHERE, version=rec.version,
                              target_pool=rec.target_pool, pairs=tuple(p for p, v in planned), phase="restoring",
                              started=self.engine.now(), label=rec.label, pid=os.getpid(),
                              asides=tuple(CopyPair(p.source, v) for p, v in planned),
                              done=tuple(p.source for p, v, f in found if f is True))
            self._save(replace(state, journal=journal))
            for p, v in todo:
                try:
                    backend.restore_elsewhere(definition, rec.version, p, v)
                except (CopyFailed, InvalidInput) as exc:
                    # the backend made nothing at ``v``; what was made stays (it is the user's)
                    self._save(replace(state, journal=None))
                    exc.msg = "%s (volumes that exist from version %d, left for you: %s)" % (
                        exc.msg, rec.version, ", ".join(where[s] for s in journal.done) or "none")
                    exc.args = (exc.msg,)
                    raise
                except PitcopyError as exc:
                    raise _journaled(exc, journal, self.name)
                journal = replace(journal, done=journal.done + (p.source,))
                if len(journal.done) < len(planned):
                    self._save(replace(state, journal=journal))
            self._save(replace(state, journal=None))
            return result

        where = dict((p.source, v) for p, v in planned)
        return Plan(bool(todo), before, after, result, act)

    def plan_restore(self, version, volumes=None):
        state, rec, pairs, backend = self._restore_start(version, volumes)
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
