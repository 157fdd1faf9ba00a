# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy_pool: define, redefine and remove a copy pool (state=present/absent).

The checks a definition meets on this host (sources exist and are of a kind
the technology copies, targets can receive its copies and hold nothing we do
not own, no target shared where the technology cannot share one), what a
redefinition may not orphan (kept versions), and the pool's removal under a
journal.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils._engine_browse import refuse_mounted
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import (
    Plan,
    _journaled,
    next_version,
    pool_dict,
    release_bases,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_copy_record import CopyRecordSteps
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_datasets import resolve_datasets
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, PitcopyError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import JOURNAL_REMOVE, Journal, PoolState
from ansible_collections.pitcopy.versions.plugins.module_utils._technologies import LISTED_TARGET_TECHNOLOGIES


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


class DefineSteps(CopyRecordSteps):
    """copy_pool state=present and state=absent."""

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
        # the source dataset inventory: which source volumes each dataset lies on
        definition = resolve_datasets(backend, definition)
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
        result = {"pool": definition.as_dict(), "unpaired": [u.as_dict() for u in unpaired],
                  "prepairing_records": [r.as_dict() for r in new.prepairing_records],
                  # what the next copy_version will do, so that a change of
                  # the rotation (more target pools) shows before it bites
                  # (and whether a hold on the version it would replace refuses it)
                  "next_version": next_version(new, self.engine.clock(), self.engine.tz)}

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
        for r in rrs:
            self._refuse_held(r, "to remove the pool and its copies")
            refuse_mounted(self.name, r, "to remove the pool and its copies")
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
                    copies = self._list_copies(backend, old) if any(p.identity for r in rrs for p in r.pairs) else ()
                    for r in rrs:
                        # only the copies the records name (identity), never a stranger at their path
                        backend.delete_copies(old.definition, self._recorded_copies(backend, r.pairs, copies))
                        self._save(replace(self.state, replication_records=tuple(
                            x for x in self.state.replication_records if x.version != r.version)))
                except PitcopyError as exc:
                    raise _journaled(exc, journal, self.name)
            # the bases of incremental sends go with the copies (none is needed any more)
            release_bases(backend, old.definition, replace(old, replication_records=()), before=old)
            self.store.remove(self.name)
            self.state = None
            return result

        return Plan(True, pool_dict(old), {}, result, act)
