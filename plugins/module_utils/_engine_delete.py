# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy_version state=absent: a version's copies and its record go, under a
journal, and only the copies the record owns (identity).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils._engine_browse import refuse_mounted
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import (
    Plan,
    SessionBase,
    check_version_number,
    _journaled,
    pool_dict,
    release_bases,
    version_dict,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import PitcopyError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import JOURNAL_DELETE, Journal


class DeleteSteps(SessionBase):
    """copy_version state=absent."""

    def plan_delete(self, version, force=False):
        state = self._require()
        check_version_number(version)
        rec = state.replication(version)
        if rec is None:
            result = {"version": None, "replaced_version": None, "broken_pairs": [], "deleted_versions": []}
            return Plan(False, pool_dict(state), pool_dict(state), result)
        if not force:
            self._refuse_held(rec, "to delete version %d (force: true deletes a held version)" % version)
        refuse_mounted(self.name, rec, "to delete version %d" % version)
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
                copies = self._recorded_copies(backend, rec.pairs)
                if rec.held:
                    # force: the storage's hold goes first (zfs destroy refuses a held snapshot)
                    backend.hold_copies(state.definition, version, copies, False)
                # only the copies the record names (identity), never a stranger at their path
                backend.delete_copies(state.definition, copies)
                # the deleted copies' bases (incremental sends) go with them,
                # under the journal: a kill here is finished by the repair
                release_bases(backend, state.definition, new, before=state)
            except PitcopyError as exc:
                raise _journaled(exc, journal, self.name)
            self._save(new)
            return result

        return Plan(True, pool_dict(state), pool_dict(new), result, act)
