# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The choice of an incremental send's base, one method for btrfs_send and
zfs_send (Backend._choose_bases): a pair whose target pool holds no earlier
copy, or holds it in another target, is sent in full without reading the
storage; the others are asked of the tool once, in the order transfer
sends them (_base_problems: btrfs compares the copy's received UUID with
the base's, ZFS the received snapshot's guid with the bookmark's), and each
is sent from its base only when the tool finds nothing wrong. The storage
side: tests/real/test_btrfs_incremental.py, test_zfs_incremental.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._backend import CopyPlan
from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSendBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend


class NoRunner(object):
    def run(self, argv, *a, **kw):
        raise AssertionError("unexpected command %r" % (argv,))


def _plan(technology, pairs, bases):
    d = PoolDefinition(name="inc", technology=technology, sources=tuple(p.source for p in pairs), versions=2,
                       target_pools=(TargetPool("A", tuple(p.target for p in pairs)),))
    plan = CopyPlan(d, 3, pairs)
    # btrfs sends in its own order (plan.facts["todo"]): here reversed
    plan.facts["todo"] = [(p, "staged", "snap") for p in reversed(pairs)]
    plan.bases = bases
    return plan


@pytest.mark.parametrize("backend,noun", [(ZfsSendBackend, "dataset"), (BtrfsSendBackend, "directory")])
def test_one_choice_for_both_tools_the_check_is_the_tools(backend, noun):
    b = backend(runner=NoRunner())
    pairs = [CopyPair("s/a", "t/a"), CopyPair("s/b", "t/b"), CopyPair("s/c", "t/c"), CopyPair("s/d", "t/d")]
    bases = {"s/b": (1, CopyPair("s/b", "t/elsewhere")), "s/c": (2, CopyPair("s/c", "t/c")),
             "s/d": (2, CopyPair("s/d", "t/d"))}
    asked = []

    def base_problems(definition, candidates):
        asked.append(list(candidates))
        return [("base-of-" + old.source, None if old.source == "s/c" else "its base is gone")
                for _v, old in candidates]

    b._base_problems = base_problems
    chosen = b._choose_bases(_plan(b.technology, pairs, bases))
    assert chosen == {
        "s/a": (None, "the target pool holds no earlier copy of it"),
        "s/b": (None, "the earlier copy is in another target %s (t/elsewhere)" % noun),
        "s/c": (2, "base-of-s/c"),
        "s/d": (None, "its base is gone"),
    }
    # once, for all candidates, in the order the tool sends them
    order = [bases["s/c"], bases["s/d"]]
    assert asked == [order if backend is ZfsSendBackend else order[::-1]]


@pytest.mark.parametrize("backend", [ZfsSendBackend, BtrfsSendBackend])
def test_no_candidate_reads_nothing(backend):
    b = backend(runner=NoRunner())
    pairs = [CopyPair("s/a", "t/a")]
    assert b._choose_bases(_plan(b.technology, pairs, {})) == {
        "s/a": (None, "the target pool holds no earlier copy of it")}
