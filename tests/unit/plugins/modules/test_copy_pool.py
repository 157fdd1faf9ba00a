# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import os

import pytest

from ansible_collections.pitcopy.versions.plugins.modules import copy_pool
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import CLONE_POOL, SNAP_POOL


def test_create_then_idempotent(clone_host):
    before = clone_host.snapshot()
    result = clone_host.ok(copy_pool, CLONE_POOL)
    assert result["changed"] is True
    pool = result["pool"]
    assert pool["name"] == "tab"
    assert pool["technology"] == "lvm_clone"
    assert pool["sources"] == ["vg/A", "vg/B"]
    assert pool["versions"] == 2
    # copy_pool_info returns host on each target pool (None: the managed host)
    assert pool["target_pools"] == [dict(tp, host=None) for tp in CLONE_POOL["target_pools"]]
    assert clone_host.snapshot() != before

    again = clone_host.ok(copy_pool, CLONE_POOL)
    assert again["changed"] is False
    assert again["pool"] == pool


def test_check_mode_creates_nothing(clone_host):
    before = clone_host.snapshot()
    result = clone_host.ok(copy_pool, CLONE_POOL, check_mode=True, diff=True)
    assert result["changed"] is True
    assert result["pool"]["name"] == "tab"
    assert clone_host.snapshot() == before
    assert not os.path.exists(clone_host.state_dir), "check mode created the state_dir"
    assert clone_host.backend.calls == []
    assert "diff" in result and set(result["diff"]) == {"before", "after"}
    assert result["diff"]["before"] != result["diff"]["after"]


def test_change_sources_updates_pool_and_diff(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    clone_host.backend.add_volume("vg/C", size=1 << 30)
    clone_host.backend.add_volume("vg/e", size=1 << 30)
    clone_host.backend.add_volume("vg/f", size=1 << 30)
    changed = copy.deepcopy(CLONE_POOL)
    changed["sources"].append("vg/C")
    changed["target_pools"][0]["volumes"].append("vg/e")
    changed["target_pools"][1]["volumes"].append("vg/f")

    checked = clone_host.ok(copy_pool, changed, check_mode=True, diff=True)
    assert checked["changed"] is True
    assert checked["diff"]["before"] != checked["diff"]["after"]

    result = clone_host.ok(copy_pool, changed, diff=True)
    assert result["changed"] is True
    assert result["pool"]["sources"] == ["vg/A", "vg/B", "vg/C"]
    assert clone_host.ok(copy_pool, changed)["changed"] is False


def test_snapshot_pool_implied_target_pools(snap_host):
    result = snap_host.ok(copy_pool, SNAP_POOL)
    assert [tp["name"] for tp in result["pool"]["target_pools"]] == ["01", "02", "03"]
    assert snap_host.ok(copy_pool, SNAP_POOL)["changed"] is False


def test_hooks_are_stored(snap_host):
    args = dict(SNAP_POOL, pre_copy_hooks=[{"argv": ["/bin/true", "x y"], "timeout": 5}],
                post_copy_hooks=[{"argv": ["/bin/true"], "abort_on_failure": False}])
    result = snap_host.ok(copy_pool, args)
    assert result["pool"]["pre_copy_hooks"] == [{"argv": ["/bin/true", "x y"], "timeout": 5, "abort_on_failure": True}]
    assert result["pool"]["post_copy_hooks"] == [{"argv": ["/bin/true"], "timeout": 60, "abort_on_failure": False}]
    assert snap_host.ok(copy_pool, args)["changed"] is False


def test_absent_of_unknown_pool_is_no_change(clone_host):
    result = clone_host.ok(copy_pool, {"name": "nothing", "state": "absent"})
    assert result["changed"] is False


def test_absent_removes_pool(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    checked = clone_host.ok(copy_pool, {"name": "tab", "state": "absent"}, check_mode=True)
    assert checked["changed"] is True
    assert clone_host.snapshot()[0]  # still there after check mode
    result = clone_host.ok(copy_pool, {"name": "tab", "state": "absent"})
    assert result["changed"] is True
    assert clone_host.snapshot()[0] == {}
    assert clone_host.ok(copy_pool, {"name": "tab", "state": "absent"})["changed"] is False


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"versions": 0}, ["versions", "0"]),
        ({"versions": -3}, ["versions", "-3"]),
        ({"versions": "two"}, ["versions"]),
        ({"technology": "tape"}, ["technology", "tape"]),
        ({"technology": None}, ["technology"]),
        ({"sources": None}, ["sources"]),
        ({"consistency": "maybe"}, ["consistency", "maybe"]),
        ({"technology": "btrfs_snapshot"}, ["target_pools", "btrfs_snapshot"]),
        ({"target_pools": []}, ["target_pools", "lvm_clone"]),
        ({"snapshot_size": "1G"}, ["snapshot_size", "lvm_snapshot"]),
        ({"name": "bad\nname"}, ["name", "control character"]),
        ({"sources": ["vg/A", "vg/B\n"]}, ["sources[1]", "control character"]),
        ({"pre_copy_hooks": [{"argv": []}]}, ["pre_copy_hooks[0].argv"]),
        ({"pre_copy_hooks": [{"argv": ["/bin/true"], "timeout": 0}]}, ["pre_copy_hooks[0].timeout", "0"]),
        ({"state_dir": "relative/dir"}, ["state_dir", "relative/dir"]),
        ({"lock_timeout": -1}, ["lock_timeout", "-1"]),
        ({"bogus": 1}, ["bogus"]),
        # datasets (issue 17): refused before the host is asked anything
        ({"datasets": [{"name": "db", "path": "relative/dir"}]}, ["datasets[0].path", "'relative/dir'", "absolute"]),
        ({"datasets": [{"name": "db", "path": "/srv/../etc"}]}, ["datasets[0].path", "'/srv/../etc'", "no '..'"]),
        ({"datasets": [{"name": "db", "path": "/"}, {"name": "db", "path": "/tmp"}]},
         ["datasets[1]", "dataset name db is used twice"]),
        ({"datasets": [{"name": "db"}]}, ["path"]),
        ({"datasets": [{"name": "db", "path": "/x\n"}]}, ["datasets[0].path", "control character"]),
    ],
)
def test_bad_arguments_change_nothing(clone_host, changes, words):
    args = dict(CLONE_POOL)
    args.update(changes)
    args = {k: v for k, v in args.items() if v is not None}
    before = clone_host.snapshot()
    result = clone_host.fail(copy_pool, args)
    for word in words:
        assert word in result["msg"], result["msg"]
    assert clone_host.snapshot() == before
    assert clone_host.backend.calls == []


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"sources": ["vg/A", "vg/A"]}, ["vg/A"]),
        ({"sources": ["vg/A", "vg/nope"]}, ["vg/nope"]),
        ({"sources": ["vg/A", "vg/x;rm"]}, ["vg/x;rm"]),
        ({"sources": ["vg/A", "-vg/B"]}, ["-vg/B"]),
        ({"name": "../evil"}, ["../evil"]),
        ({"target_pools": [{"name": "01", "volumes": ["vg/a", "vg/b"]},
                           {"name": "02", "volumes": ["vg/a", "vg/d"]}]}, ["vg/a"]),
        # a dataset whose path lies on no source (the memory host mounts none)
        ({"datasets": [{"name": "db", "path": "/"}]}, ["datasets[0]", "path / of dataset db", "lies on none"]),
        ({"datasets": [{"name": "db", "path": "/nonexistent-pitcopy-dir"}]}, ["not an existing directory"]),
    ],
)
def test_bad_values_from_engine_change_nothing(clone_host, changes, words):
    args = dict(CLONE_POOL)
    args.update(changes)
    before = clone_host.snapshot()
    result = clone_host.fail(copy_pool, args)
    for word in words:
        assert word in result["msg"], result["msg"]
    assert clone_host.snapshot() == before
