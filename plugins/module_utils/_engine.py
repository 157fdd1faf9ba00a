# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record engine: the copy-version method of Figures 4-8, as plans.

API (what modules and roles rely on; implementers keep these names):

    engine = RecordEngine(store, backend_for, clock=None)
        store        a _store.StateStore
        backend_for  callable(technology) -> _backend.Backend
        clock        callable() -> aware UTC datetime (tests pass a fake)
        tz           (optional, keyword) tzinfo a retention grid's periods
                     begin in; default the host's timezone
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
        plan = s.plan_delete(version, force=False)  # copy_version absent
        plan = s.plan_hold(version, held=True, reason=None, label=None)  # copy_version held / released
        plan = s.plan_restore(version, volumes=None)    # copy_version restored
        plan = s.plan_restore_paths(version, paths, restore_to=None, volumes=None)  # ... restored with paths
        plan = s.plan_mount(version, path)      # copy_version mounted
        plan = s.plan_unmount(version, path=None)   # copy_version unmounted
        plan = s.plan_dump(version, media)      # copy_version dumped
        plan = s.plan_restore_from_media(version, medium, restore_to, volumes=None)  # ... restored with from_media
        plan = s.plan_verify(repair=False, verify_media=False)  # verify_records
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

Where each figure lives (this module composes them; import from here):

    _engine_common.py       Plan, pool_dict, the session's shared helpers
                            (SessionBase: lock-held state, save, discovery
                            names, identities, retention)
    _engine_copy_record.py  Fig. 7 and Fig. 8: the copy record of a version
                            (CopyRecord, CopyRecordSteps._build) and the
                            pre-pairing records (prepair_record)
    _engine_define.py       copy_pool: define, redefine, remove a pool
    _engine_copy.py         Fig. 6: the copy transaction (take_copies), the
                            journal phases, commit (next_state)
    _engine_delete.py       copy_version state=absent
    _engine_hold.py         copy_version state=held / released
    _engine_restore.py      copy_version state=restored
    _engine_browse.py       copy_version state=mounted / unmounted, restored with paths
    _engine_media.py        copy_version state=dumped, restored with from_media; the
                            storage media inventory and its checks in verify_records
    _engine_verify.py       verify_records: each record checked against the
                            host (Fig. 8 for every record), one method a check
    _engine_repair.py       the repair of an interrupted operation's journal
    _selection.py           Fig. 4 and Fig. 5: target selection and scan
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible_collections.pitcopy.versions.plugins.module_utils import _quiesce
from ansible_collections.pitcopy.versions.plugins.module_utils._definition import check_definition, check_values
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_browse import BrowseSteps
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import (
    Plan,
    _utcnow,
    highest_marked_version,
    identity_problem,
    iso,
    newest_valid_age,
    next_version,
    pool_dict,
    unpaired_summary,
    version_dict,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_copy import CopySteps, next_state, take_copies
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_copy_record import CopyRecord
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_datasets import check_dataset_name, dataset_versions
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_define import (
    DefineSteps,
    check_targets_not_shared,
    target_type_problem,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_delete import DeleteSteps
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_hold import HoldSteps
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_media import MediaSteps
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_restore import RestoreSteps, restore_pairs
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_verify import VerifySteps

# what callers import from here (modules, _backend, tests): the names of the
# engine before it was split by figure
__all__ = [
    "CopyRecord",
    "Plan",
    "PoolSession",
    "RecordEngine",
    "check_targets_not_shared",
    "highest_marked_version",
    "identity_problem",
    "iso",
    "next_state",
    "pool_dict",
    "restore_pairs",
    "take_copies",
    "target_type_problem",
    "unpaired_summary",
    "version_dict",
]


def _default_window_factory(definition, runner):
    return _quiesce.CopyWindow(definition, runner)


class RecordEngine:
    def __init__(self, store, backend_for, clock=None, window_factory=None, tz=None):
        self.store = store
        self.backend_for = backend_for
        self.clock = clock or _utcnow
        self.window_factory = window_factory or _default_window_factory
        # the timezone a retention grid's days, weeks, months and years
        # begin in: None is the host's own (tests pass one)
        self.tz = tz

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
        backend.use_definition(definition)
        backend.validate_definition(definition)
        return backend

    @contextlib.contextmanager
    def session(self, pool_name, shared=False):
        """``shared``: the caller only reads (info, verify without repair,
        check mode): a reader's lock, which other readers do not wait for."""
        with self.store.locked(pool_name, shared=shared):
            yield PoolSession(self, pool_name, self.store.load(pool_name))


class PoolSession(VerifySteps, CopySteps, DefineSteps, DeleteSteps, HoldSteps, RestoreSteps, BrowseSteps,
                  MediaSteps):
    """One copy pool under its lock: each module's plan, one mixin a figure
    (see the module docstring for which file holds which)."""

    def info(self, dataset=None):
        """copy_pool_info's pool: the records, and how old the newest valid
        version is (seconds; None: none is valid). Not in plan diffs: it
        changes with the clock, not with the records."""
        state = self._require()
        out = pool_dict(state)
        out["newest_valid_age"] = newest_valid_age(state, self.engine.clock())
        # what the next copy would replace, and whether a hold refuses it
        out["next_version"] = next_version(state, self.engine.clock(), self.engine.tz)
        if dataset is not None:
            # which kept versions hold dataset X, and since when
            check_dataset_name(state, dataset, "copy_pool_info")
            out["dataset"] = dataset_versions(state, dataset)
        return out
