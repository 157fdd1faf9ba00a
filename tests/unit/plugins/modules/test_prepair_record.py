# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pitcopy.versions.plugins.modules import copy_pool, prepair_record
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import CLONE_POOL, pair_list


def test_prepair_check_mode_then_apply_then_idempotent(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    clone_host.ok(prepair_record, {"pool": "tab", "state": "absent"})
    before = clone_host.snapshot()

    checked = clone_host.ok(prepair_record, {"pool": "tab", "versions": 2}, check_mode=True, diff=True)
    assert checked["changed"] is True
    assert clone_host.snapshot() == before
    assert checked["diff"]["before"] != checked["diff"]["after"]

    result = clone_host.ok(prepair_record, {"pool": "tab", "versions": 2})
    assert result["changed"] is True
    assert result["records"] == checked["records"]
    # Table 2.1: V1 -> A_a, B_b; V2 -> A_c, B_d
    assert [r["version"] for r in result["records"]] == [1, 2]
    assert [r["target_pool"] for r in result["records"]] == ["01", "02"]
    assert pair_list(result["records"][0]) == [("vg/A", "vg/a"), ("vg/B", "vg/b")]
    assert pair_list(result["records"][1]) == [("vg/A", "vg/c"), ("vg/B", "vg/d")]
    assert result["unpaired"] == []

    again = clone_host.ok(prepair_record, {"pool": "tab", "versions": 2})
    assert again["changed"] is False
    assert again["records"] == result["records"]


def test_drop_prepairing(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    clone_host.ok(prepair_record, {"pool": "tab"})
    result = clone_host.ok(prepair_record, {"pool": "tab", "state": "absent"})
    assert result["changed"] is True
    assert result["records"] == []
    assert clone_host.ok(prepair_record, {"pool": "tab", "state": "absent"})["changed"] is False


def test_unpaired_fails_unless_allowed(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    clone_host.ok(prepair_record, {"pool": "tab", "state": "absent"})
    clone_host.backend.resize("vg/b", 1 << 20)  # too small for vg/B
    before = clone_host.snapshot()
    failed = clone_host.fail(prepair_record, {"pool": "tab"})
    assert "vg/B" in failed["msg"]
    assert failed["unpaired"][0]["source"] == "vg/B"
    assert any("vg/b" in reason for reason in failed["unpaired"][0]["reasons"])
    assert clone_host.snapshot() == before

    allowed = clone_host.ok(prepair_record, {"pool": "tab", "allow_unpaired": True})
    assert [u["source"] for u in allowed["unpaired"]] == ["vg/B"]


def test_unknown_pool(clone_host):
    result = clone_host.fail(prepair_record, {"pool": "nope"})
    assert "nope" in result["msg"]


def test_versions_zero(clone_host):
    clone_host.ok(copy_pool, CLONE_POOL)
    result = clone_host.fail(prepair_record, {"pool": "tab", "versions": 0})
    assert "versions" in result["msg"] and "0" in result["msg"]
