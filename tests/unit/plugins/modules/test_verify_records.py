# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.modules import copy_pool, copy_version, verify_records
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import SNAP_POOL

FINDING_KEYS = {"record", "version", "source", "target", "problem", "action"}


def test_consistent_pool(snap_host):
    snap_host.ok(copy_pool, SNAP_POOL)
    snap_host.ok(copy_version, {"pool": "web"})
    before = snap_host.snapshot()
    result = snap_host.ok(verify_records, {"pool": "web"})
    assert result["changed"] is False
    assert result["consistent"] is True
    assert result["findings"] == []
    assert snap_host.ok(verify_records, {"pool": "web", "repair": True})["changed"] is False
    assert snap_host.snapshot() == before


def test_missing_copy_found_and_repaired(snap_host):
    snap_host.ok(copy_pool, SNAP_POOL)
    taken = snap_host.ok(copy_version, {"pool": "web"})
    gone = taken["version"]["pairs"][0]["target"]
    snap_host.backend.remove_volume(gone)  # deleted behind our back

    before = snap_host.snapshot()
    report = snap_host.ok(verify_records, {"pool": "web"})
    assert report["changed"] is False
    assert report["consistent"] is False
    assert report["findings"], report
    assert all(set(f) == FINDING_KEYS for f in report["findings"])
    assert any(f["target"] == gone and f["record"] == "replication" for f in report["findings"])
    assert snap_host.snapshot() == before

    checked = snap_host.ok(verify_records, {"pool": "web", "repair": True}, check_mode=True, diff=True)
    assert checked["changed"] is True
    assert snap_host.snapshot() == before

    repaired = snap_host.ok(verify_records, {"pool": "web", "repair": True})
    assert repaired["changed"] is True
    assert snap_host.snapshot() != before
    after = snap_host.ok(verify_records, {"pool": "web", "repair": True})
    assert after["changed"] is False


def test_unknown_pool(snap_host):
    result = snap_host.fail(verify_records, {"pool": "nope"})
    assert "nope" in result["msg"]
