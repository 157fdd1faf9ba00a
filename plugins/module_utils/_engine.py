# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record engine: the copy-version method of Figures 4-8, as plans.

API (what modules and roles rely on; implementers keep these names):

    engine = RecordEngine(store, backend_for, clock=None)
        store        a _store.StateStore
        backend_for  callable(technology) -> _backend.Backend
        clock        callable() -> aware UTC datetime (tests pass a fake)

    engine.pool_names() -> [str]

    with engine.session(pool_name) as s:      # takes the pool's lock, loads state
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
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
