# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy_version state=held / state=released: a hold on a kept version.

The hold lives in the replication record (``held``, ``hold_reason``) and on
the storage (Backend.hold_copies: ``zfs hold``, a read-only copy with our
hold tag or mark). The record is the intent, the storage follows it, and the
order of the two writes makes a run killed between them one that
verify_records repairs without a journal: a hold is saved in the record
FIRST, then applied to the storage; a release is taken off the storage
FIRST, then saved. Either way a kill leaves a record that says held over a
copy the storage does not hold, which verify_records reports
(``hold_not_enforced``) and ``repair: true`` holds again: the safe side (a
release then simply runs again).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import (
    Plan,
    SessionBase,
    check_version_number,
    with_record,
    pool_dict,
    version_dict,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, PitcopyError


def _listing(state):
    rrs = sorted(state.replication_records, key=lambda r: r.version)
    if not rrs:
        return "it keeps no version"
    return "its versions: %s" % ", ".join(
        "%d%s%s" % (r.version, " (label %s)" % r.label if r.label is not None else "", " held" if r.held else "")
        for r in rrs)


class HoldSteps(SessionBase):
    """copy_version state=held and state=released."""

    def _addressed(self, state, version, label, what):
        """The replication record ``version`` (a number) or ``label`` names."""
        if version is not None:
            check_version_number(version)
            rec = state.replication(version)
            if rec is None:
                raise InvalidInput("cannot %s version %d of copy pool %s: no such version; %s; nothing was "
                                   "changed" % (what, version, self.name, _listing(state)))
            if label is not None and rec.label != label:
                raise InvalidInput("version %d of copy pool %s carries label %r, not %r; give one of version and "
                                   "label, nothing was changed" % (version, self.name, rec.label, label))
            return rec
        if label is None:
            raise InvalidInput("state=%s needs version (a number) or label to name the version" % what)
        for r in state.replication_records:
            if r.label == label:
                return r
        raise InvalidInput("cannot %s the version labelled %r of copy pool %s: no version carries that label; "
                           "%s; nothing was changed" % (what, label, self.name, _listing(state)))

    def plan_hold(self, version=None, held=True, reason=None, label=None):
        """A hold set (``held``) or released on one kept version."""
        state = self._require()
        what = "hold" if held else "release"
        rec = self._addressed(state, version, label, what)
        definition = state.definition
        backend = self._backend()
        if held:
            new_rec = replace(rec, held=True, hold_reason=reason)
            # a held version whose storage no longer enforces the hold is
            # held again: the task converges on what it says
            unenforced = [p for p, _why in backend.unenforced_holds(
                definition, rec.version, self._recorded_copies(backend, rec.pairs))] if rec.held else list(rec.pairs)
        else:
            if not rec.held:
                raise InvalidInput("cannot release version %d of copy pool %s: it is not held; %s; nothing was "
                                   "changed" % (rec.version, self.name, _listing(state)))
            new_rec = replace(rec, held=False, hold_reason=None)
            unenforced = []
        new = with_record(state, new_rec)
        result = {"version": version_dict(new_rec), "replaced_version": None, "broken_pairs": [],
                  "deleted_versions": []}
        changed = new != state or bool(unenforced)
        if not changed:
            return Plan(False, pool_dict(state), pool_dict(state), result)
        self._no_journal("holding or releasing a version")

        def act():
            pairs = self._recorded_copies(backend, rec.pairs)
            if held:
                # the record first (see the module docstring): a kill before
                # the storage holds it is a hold verify_records re-applies
                self._save(new)
                try:
                    backend.hold_copies(definition, rec.version, pairs, True)
                except PitcopyError as exc:
                    self._save(state)  # the hold is not recorded either: as before the task
                    exc.msg = "%s; version %d of copy pool %s was not held" % (exc.msg, rec.version, self.name)
                    exc.args = (exc.msg,)
                    raise
            else:
                # the storage first: a kill before the save leaves the record
                # held, which repair holds again (never an unprotected record)
                backend.hold_copies(definition, rec.version, pairs, False)
                self._save(new)
            return result

        return Plan(True, pool_dict(state), pool_dict(new), result, act)
