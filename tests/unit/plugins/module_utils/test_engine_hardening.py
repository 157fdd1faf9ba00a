# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 12 hardening that the engine alone decides: restores act on the
pool's current sources; definitions that can never work are refused."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import TargetPool
from ansible_collections.pitcopy.versions.tests.unit.plugins.module_utils.utils import GIB, define_and_copy, env, good


def test_restore_without_volumes_leaves_a_removed_source_alone(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        define_and_copy(s, be)
        # B leaves the pool and is used for something else
        s.plan_define(good(sources=("A",))).apply()
        be.set_data("A", "A2")
        be.set_data("B", "someone else's live data")
        plan = s.plan_restore(1)
        assert plan.result["restored"] == ["A"]
        plan.apply()
        assert be.data["A"] == "A1"
        assert be.data["B"] == "someone else's live data"
        # named explicitly, the removed source is restored
        assert s.plan_restore(1, volumes=["B"]).apply()["restored"] == ["B"]
        assert be.data["B"] == "B1"


def test_restore_without_volumes_of_a_version_of_removed_sources_only(tmp_path):
    be, engine = env(tmp_path)
    be.add_volume("C", size=GIB)
    with engine.session("P") as s:
        s.plan_define(good(sources=("B",))).apply()
        be.set_data("B", "B1")
        s.plan_copy().apply()
        s.plan_define(good(sources=("C",))).apply()
        be.set_data("B", "B2")
        with pytest.raises(InvalidInput, match=r"version 1 of copy pool P holds none of the pool's current sources "
                                               r"\(C\).*name the sources to restore in volumes, from: B"):
            s.plan_restore(1)
        assert be.data["B"] == "B2"


def test_a_target_of_another_pool_is_refused_where_targets_are_exclusive(tmp_path):
    be, engine = env(tmp_path)
    be.add_volume("C", size=GIB)
    be.add_volume("e", size=GIB)
    with engine.session("P") as s:
        s.plan_define(good()).apply()
    q = good(name="Q", sources=("C",), target_pools=(TargetPool("x", ("e",)), TargetPool("y", ("d",))))
    # backends whose targets may be shared (LVM, ZFS) are not limited
    assert not getattr(be, "exclusive_targets", False)
    be.exclusive_targets = True  # as btrfs_send
    with engine.session("Q") as s:
        with pytest.raises(InvalidInput, match="target d of target pool y is already a target of copy pool P "
                                               r"\(target pool 02\) in the same state_dir"):
            s.plan_define(q)
    assert engine.store.load("Q") is None
    with engine.session("Q") as s:
        s.plan_define(good(name="Q", sources=("C",), target_pools=(TargetPool("x", ("e",)),), versions=1)).apply()


def test_restore_reports_changed_from_a_comparison(tmp_path):
    be, engine = env(tmp_path)
    with engine.session("P") as s:
        define_and_copy(s, be)
        # nothing written since the copy: nothing to restore, no change
        plan = s.plan_restore(1)
        assert plan.changed is False and plan.result["restored"] == []
        restores = len([c for c in be.calls if c[0] == "restore"])
        plan.apply()
        assert len([c for c in be.calls if c[0] == "restore"]) == restores
        # one source written: only that one is restored
        be.set_data("B", "B2")
        plan = s.plan_restore(1)
        assert plan.changed is True and plan.result["restored"] == ["B"]
        plan.apply()
        assert (be.data["A"], be.data["B"]) == ("A1", "B1")
        assert s.plan_restore(1).changed is False
