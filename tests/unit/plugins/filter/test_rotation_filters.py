# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotation role's filters: each is registered under its file's name,
hands its arguments to plugin_utils/_rotation.py (tested in
tests/unit/plugins/plugin_utils/test_rotation.py) and refuses arguments of the
wrong type naming them. tests/roles/test_rotation_date.py and the molecule
scenarios run them inside the role."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.pitcopy.versions.plugins.filter import (
    rotation_due,
    rotation_expand,
    rotation_summary,
    rotation_to_define,
)

POOLS = [{"name": "pg", "technology": "btrfs_snapshot", "sources": ["/srv/pg"], "policy": "tiered",
          "tiers": [{"name": "daily", "keep": 7}, {"name": "weekly", "keep": 4}]}]


def the_filter(module, name):
    filters = module.FilterModule().filters()
    assert list(filters) == [name]
    return filters[name]


def test_a_run_through_the_filters():
    expand = the_filter(rotation_expand, "rotation_expand")
    to_define = the_filter(rotation_to_define, "rotation_to_define")
    due = the_filter(rotation_due, "rotation_due")
    summary = the_filter(rotation_summary, "rotation_summary")

    run = expand(POOLS, only_pools=[], date="2026-01-05")
    assert (run["today"], [p["name"] for p in run["pools"]], run["problems"]) == (
        "2026-01-05", ["pg-daily", "pg-weekly"], [])
    assert to_define(run["pools"], []) == ["pg-daily", "pg-weekly"]
    records = {"pg-daily": [{"version": 1, "label": "daily-2026-01-04", "created": "2026-01-04T01:00:00Z"}],
               "pg-weekly": [{"version": 1, "label": "weekly-2026-01-04", "created": "2026-01-04T01:00:00Z"}]}
    decided = due(run["pools"], records, today=run["today"], label=None)
    assert [(d["name"], d["due"], d["label"]) for d in decided] == [
        ("pg-daily", True, "daily-2026-01-05"), ("pg-weekly", True, "weekly-2026-01-05")]
    assert summary(run["pools"], records, {}, due=decided, taken=[], check_mode=False, only_pools=[]) == [
        "pg-daily [btrfs_snapshot]: not taken (rotation_take_versions is false); due: last version v1 of 2026-01-04 "
        "is from an earlier day; kept 1 of 7: v1; pre-paired: -",
        "pg-weekly [btrfs_snapshot]: not taken (rotation_take_versions is false); due: last version v1 of 2026-01-04 "
        "is from an earlier week; kept 1 of 4: v1; pre-paired: -",
    ]


def test_a_wrong_date_is_a_problem_not_an_error():
    run = rotation_expand.rotation_expand(POOLS, date="2026-02-30")
    assert run["problems"][0].startswith('rotation_date "2026-02-30" is not a calendar day')


@pytest.mark.parametrize("call, words", [
    (lambda: rotation_expand.rotation_expand({"name": "pg"}), "rotation_expand takes rotation_pools, a list of dicts"),
    (lambda: rotation_expand.rotation_expand(["pg"]), "rotation_expand takes rotation_pools, a list of dicts"),
    (lambda: rotation_to_define.rotation_to_define([], None), "rotation_to_define takes stored as a list of dicts"),
    (lambda: rotation_to_define.rotation_to_define("pg", []), "takes the copy pools as a list of dicts"),
    (lambda: rotation_due.rotation_due("pg", {}, "2026-01-01"), "rotation_due takes the copy pools as a list"),
    (lambda: rotation_due.rotation_due([], [], "2026-01-01"), "rotation_due takes records as a dict"),
    (lambda: rotation_due.rotation_due([], {}, ""), "rotation_due takes today as a calendar day YYYY-MM-DD; got ''"),
    (lambda: rotation_summary.rotation_summary({}, {}, {}), "rotation_summary takes the copy pools as a list"),
    (lambda: rotation_summary.rotation_summary([], {}, None), "rotation_summary takes prepairing as a dict"),
])
def test_wrong_argument_types_are_refused_naming_them(call, words):
    with pytest.raises(AnsibleFilterError) as err:
        call()
    assert words in str(err.value)
