# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state store: one YAML file per copy pool under ``state_dir``.

API (what the engine relies on; implementers keep these names):

    store = StateStore(state_dir, lock_timeout=30.0)
    store.pool_names() -> sorted [str]          # pools with a state file
    with store.locked(name):                    # one lock per pool (flock on
        ...                                     # <state_dir>/.<name>.lock);
                                                # PoolBusy after lock_timeout s
    store.load(name) -> PoolState or None       # None: no state file
    store.save(state)                           # atomic: temp file in the same
                                                # dir, fsync, rename, fsync dir
    store.remove(name)                          # unlink + fsync dir
    store.path(name) -> str

    dump_state(state) -> dict / load_state(dict) -> PoolState   # the codec
    SCHEMA_VERSION = 1

Refusals (StateFileError / InvalidInput, file left untouched): a file that
does not parse, one with a newer ``schema_version``, an unreadable one; a
state_dir that is a symlink, not a directory, or group/world-writable; a pool
name that is not a safe file name. state_dir is created 0700, files 0600.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type
