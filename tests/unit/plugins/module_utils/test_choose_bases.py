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
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_common import Plan
from ansible_collections.pitcopy.versions.plugins.module_utils._engine_copy import predict_bases
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


def test_check_mode_asks_the_same_choice_on_the_copys_plan():
    """predict_bases (check mode): the plan the copy would make, the bases
    the copy would be given, and the choice transfer makes; only the base
    versions (a base's name is the tool's business)."""
    b = ZfsSendBackend(runner=NoRunner())
    b._base_problems = lambda definition, candidates: [
        ("bm", None if old.source == "s/a" else "its base is gone") for _v, old in candidates]
    d = PoolDefinition(name="inc", technology="zfs_send", sources=("s/a", "s/b", "s/c"), versions=2,
                       target_pools=(TargetPool("A", ("t/a", "t/b", "t/c")), TargetPool("B", ("u/a", "u/b", "u/c"))))
    pairs = [CopyPair("s/a", "t/a"), CopyPair("s/b", "t/b"), CopyPair("s/c", "t/c")]
    bases = {"s/a": (1, CopyPair("s/a", "t/a")), "s/b": (1, CopyPair("s/b", "t/b"))}
    assert predict_bases(b, d, 3, pairs, bases) == {"s/a": 1, "s/b": None, "s/c": None}


def test_no_prediction_for_a_technology_that_sends_nothing_incrementally():
    class Whole(object):
        incremental = False

        def plan_copies(self, *a):
            raise AssertionError("planned")

    assert predict_bases(Whole(), None, 1, [CopyPair("s/a", "t/a")], {}) == {}


def test_a_plans_result_given_as_a_callable_is_read_once_and_only_when_asked():
    calls = []

    def result():
        calls.append(1)
        return {"version": 1}

    plan = Plan(True, {}, {}, result, action=lambda: {"version": 2})
    assert plan.apply() == {"version": 2} and calls == []  # a run that acts never reads it
    assert plan.result == {"version": 1} and plan.result == {"version": 1} and calls == [1]
