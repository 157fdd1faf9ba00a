# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.modules import copy_pool, copy_pool_info, copy_version
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import SNAP_POOL

POOL_KEYS = {"name", "technology", "sources", "versions", "target_pools", "replication_records",
             "prepairing_records"}


def test_empty_state_dir(snap_host):
    result = snap_host.ok(copy_pool_info, {})
    assert result == {"changed": False, "pools": []} or (result["pools"] == [] and result["changed"] is False)


def test_lists_pools_and_records(snap_host):
    snap_host.ok(copy_pool, SNAP_POOL)
    snap_host.ok(copy_pool, dict(SNAP_POOL, name="other", versions=1))
    snap_host.ok(copy_version, {"pool": "web", "label": "first"})
    before = snap_host.snapshot()

    for check_mode in (True, False):
        result = snap_host.ok(copy_pool_info, {}, check_mode=check_mode)
        assert result["changed"] is False
        assert [p["name"] for p in result["pools"]] == ["other", "web"]
        for pool in result["pools"]:
            assert POOL_KEYS <= set(pool)
        web = result["pools"][1]
        assert [r["version"] for r in web["replication_records"]] == [1]
        record = web["replication_records"][0]
        assert {"version", "target_pool", "created", "pairs", "label", "status"} <= set(record)
        assert record["label"] == "first" and record["status"] == "valid"
    assert snap_host.snapshot() == before

    one = snap_host.ok(copy_pool_info, {"pool": "web"})
    assert [p["name"] for p in one["pools"]] == ["web"]


def test_unknown_pool(snap_host):
    result = snap_host.fail(copy_pool_info, {"pool": "nope"})
    assert "nope" in result["msg"]
