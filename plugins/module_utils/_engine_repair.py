# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repair of an interrupted operation, from its journal (verify_records
repair=true).

A copy (Fig. 6) is finished when its staged copies are all there (or, once
committing, with those that are), else rolled back: its staged copies and
any already promoted go, the records stay at the previous versions. A
delete, a restore or a pool removal is only ever finished: a copy half
deleted cannot come back, and a restore is only safe to finish (its
sources' data waits in the journaled asides).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import parse_iso, release_bases
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_copy import CopySteps
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import PitcopyError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    JOURNAL_DELETE,
    JOURNAL_REMOVE,
    JOURNAL_RESTORE,
    JOURNAL_RESTORE_ELSEWHERE,
    RECORD_REPLICATION,
    STATUS_INCOMPLETE,
    STATUS_VALID,
    CopyPair,
    Finding,
)


def _started(journal):
    """When the journaled copy was planned (aware datetime), or None for a
    journal whose time cannot be read (a grid then keeps every version)."""
    try:
        return parse_iso(journal.started)
    except (TypeError, ValueError):
        return None


class JournalRepairSteps(CopySteps):
    """The repair plans of journals; a copy is finished with CopySteps._commit."""

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
                copies = self._recorded_copies(backend, rec.pairs if rec else j.pairs)
                if rec is not None and rec.held:
                    # a forced delete killed before its hold was released on the storage
                    backend.hold_copies(definition, j.version, copies, False)
                backend.delete_copies(definition, copies)
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
                # the bases of incremental sends go with the copies, as in an
                # uninterrupted removal; before the state file, which is the
                # only record of whose they are
                release_bases(backend, definition, replace(state, replication_records=()), before=state,
                              sources=[p.source for p in pairs])
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

            finish_restore = self._finish_each(
                state, todo, lambda p: backend.resume_restore(definition, j.version, p, j.aside_of(p.source)))
            return finish_restore, "finished the restore of version %d" % j.version, findings

        if j.operation == JOURNAL_RESTORE_ELSEWHERE:
            # finished, never rolled back: the volumes made are the user's
            todo = [p for p in j.pairs if p.source not in j.done]
            what = "finished the restore of version %d elsewhere (made %s; %s already existed)" % (
                j.version, ", ".join(j.aside_of(p.source) for p in todo) or "nothing",
                ", ".join(j.aside_of(s) for s in j.done) or "none")

            finish_elsewhere = self._finish_each(
                state, todo, lambda p: backend.restore_elsewhere(definition, j.version, p, j.aside_of(p.source)))
            return finish_elsewhere, what, [Finding(RECORD_REPLICATION, j.version, None, None,
                                                    "interrupted_restore_elsewhere", say(what))]

        def unknown():
            raise PitcopyError("copy pool %s has a journal of operation %r, which this version of pitcopy does not "
                               "know; finish it with the pitcopy version that wrote it" % (self.name, j.operation))

        return unknown, "left for a human", [Finding(RECORD_REPLICATION, j.version, None, None, "unknown_journal",
                                                     "left for a human: operation %r is unknown" % j.operation)]

    def _finish_each(self, state, todo, finish_pair):
        """The repair of a journal whose sources left to do are finished one
        by one (a restore, a restore elsewhere): ``finish_pair`` each, then
        the journal cleared."""
        def finish():
            for p in todo:
                finish_pair(p)
            new = replace(state, journal=None)
            self._save(new)
            return new

        return finish

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
            # a grid decides at the copy's time (the journal's), as the
            # interrupted run did
            dropped = self._retention(state, j.version, j.replaced_version, _started(j))

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
                dropped = self._retention(state, j.version, j.replaced_version, _started(j))

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
