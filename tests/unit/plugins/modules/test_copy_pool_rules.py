# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy_pool has one definition check, the engine's, run before the lock:
the module's own copies of the rules (versions >= 1, target_pools per
technology, snapshot_size, hook argv and timeout) are gone, so the module
says exactly what the engine and the store say."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._definition import check_definition
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.plugins.modules import copy_pool
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import CLONE_POOL

BAD = [
    {"versions": 0},
    {"technology": "btrfs_snapshot"},
    {"target_pools": []},
    {"snapshot_size": "1G"},
    {"pre_copy_hooks": [{"argv": []}]},
    {"pre_copy_hooks": [{"argv": ["/bin/true"], "timeout": 0}]},
    {"post_copy_hooks": [{"argv": ["/bin/true"], "timeout": -1}]},
    # checked only under the lock before: now before it as well
    {"sources": ["vg/A", "vg/A"]},
    {"target_pools": [{"name": "01", "volumes": ["vg/a", "vg/b"]}, {"name": "02", "volumes": ["vg/a", "vg/d"]}]},
    {"target_pools": [{"name": "01", "volumes": ["vg/a", "vg/b"]}]},
    {"max_age": "0h"},
    {"max_age": "26"},
    {"max_age": "1.5h"},
    {"max_age": "-1d"},
    {"max_age": "2 days"},
    # grid retention: one parser (_retention.parse_grid) and one room check
    {"retention": "24x"},
    {"retention": "0h"},
    {"retention": "-1d"},
    {"retention": "24h 2h"},
    {"retention": ""},
    {"retention": "6h 3d"},  # 10 versions kept at most; the pool has 2 target pools
]


def _params(changes):
    params = dict(CLONE_POOL, state="present", snapshot_size=None, consistency="auto",
                  pre_copy_hooks=[], post_copy_hooks=[], max_age=None)
    params.update(changes)
    for option in ("pre_copy_hooks", "post_copy_hooks"):
        params[option] = [dict({"timeout": 60, "abort_on_failure": True}, **h) for h in params[option]]
    return params


@pytest.mark.parametrize("changes", BAD, ids=["%s-%d" % (sorted(c)[0], i) for i, c in enumerate(BAD)])
def test_the_module_says_what_the_engine_says(clone_host, changes):
    with pytest.raises(InvalidInput) as exc:
        check_definition(copy_pool.definition(_params(changes)), clone_host.backend)
    args = dict(CLONE_POOL, **changes)
    before = clone_host.snapshot()
    assert clone_host.fail(copy_pool, args)["msg"] == exc.value.msg
    assert clone_host.snapshot() == before


@pytest.mark.parametrize("changes", BAD, ids=["%s-%d" % (sorted(c)[0], i) for i, c in enumerate(BAD)])
def test_a_bad_definition_is_refused_before_the_lock(clone_host, changes):
    """Another run holds the pool's lock: a bad definition is still refused at
    once for what it is (not after waiting, not as 'busy'); a good one waits
    and reports the busy pool, which shows the lock was held."""
    holder = StateStore(clone_host.state_dir, lock_timeout=0)
    with holder.locked("tab"):
        bad = clone_host.fail(copy_pool, dict(CLONE_POOL, lock_timeout=0.2, **changes))
        busy = clone_host.fail(copy_pool, dict(CLONE_POOL, lock_timeout=0.2))
    assert "busy" not in bad["msg"] and "lock" not in bad["msg"], bad["msg"]
    assert "lock" in busy["msg"] or "busy" in busy["msg"], busy["msg"]
