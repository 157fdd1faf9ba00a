# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotation role's decisions (plugin_utils/_rotation.py): tier expansion
and the input checks, what is due on a day, which pools copy_pool has to
define, and the summary. The 60-day calendar of the molecule scenario
(extensions/molecule/calendar) runs here too, against the engine and the
modules on the in-memory backend, with the scenario's own days and
expectations."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import copy
import datetime
import json
import os

import jinja2
import pytest
import yaml

from ansible_collections.pitcopy.versions.plugins.modules import copy_pool, copy_pool_info, copy_version
from ansible_collections.pitcopy.versions.plugins.plugin_utils import _rotation as rotation
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, SimpleWindow
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import ModuleHarness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
CALENDAR_VARS = os.path.join(ROOT, "extensions", "molecule", "calendar", "vars.yml")
GIB = 1 << 30

# the dates of tests/roles/test_rotation_date.py, which runs the role's task
GOOD_DATES = ["2026-11-25", "2024-02-29", "2000-02-29", "2026-12-31", "2026-01-01"]
BAD_DATES = ["9999-99-99", "2026-11-31", "2023-02-29", "1900-02-29", "2026-13-01", "2026-00-10", "2026-01-00",
             "0000-01-01", "26-11-25", "2026-11-25x", "yesterday"]


def keep(name, versions=2, **extra):
    return dict({"name": name, "technology": "btrfs_snapshot", "sources": ["/srv/a"], "versions": versions}, **extra)


def tiered(name, tiers, **extra):
    return dict({"name": name, "technology": "btrfs_snapshot", "sources": ["/srv/a"], "policy": "tiered",
                 "tiers": tiers}, **extra)


def record(version, label=None, created="2026-01-01T03:00:00Z"):
    return {"version": version, "label": label, "created": created, "target_pool": "01", "status": "valid",
            "pairs": [], "warnings": []}


def pools_of(*entries, **kwargs):
    run = rotation.expand(list(entries), **kwargs)
    assert run["problems"] == [], run["problems"]
    return run["pools"]


# --- expand ---------------------------------------------------------------

def test_keep_pool_is_one_copy_pool_with_the_options_copy_pool_takes():
    hooks = [{"argv": ["/bin/true"]}]
    (pool,) = pools_of(keep("www", 14, every="day", consistency="none", pre_copy_hooks=hooks, max_age="26h"))
    assert pool == {"name": "www", "base": "www", "tier": "", "technology": "btrfs_snapshot", "sources": ["/srv/a"],
                    "state": "present", "remove_copies": False, "versions": 14, "every": "day", "target_pools": [],
                    "snapshot_size": None, "consistency": "none", "pre_copy_hooks": hooks, "post_copy_hooks": None,
                    "max_age": "26h", "retention": None, "datasets": None, "ssh": None, "transfer": None}


def test_tiers_inherit_the_pools_max_age_unless_they_set_their_own():
    entry = {"name": "db", "technology": "btrfs_snapshot", "sources": ["/srv/a"], "policy": "tiered",
             "max_age": "26h", "tiers": [{"name": "daily", "keep": 7}, {"name": "weekly", "keep": 4, "max_age": "8d"}]}
    assert [(p["name"], p["max_age"]) for p in pools_of(entry)] == [("db-daily", "26h"), ("db-weekly", "8d")]


def test_keep_pool_defaults_to_every_run():
    (pool,) = pools_of(keep("www"))
    assert (pool["every"], pool["tier"], pool["state"]) == ("run", "", "present")


def test_tiered_pool_is_one_copy_pool_per_tier_with_the_period_of_its_name():
    targets = [{"name": "t1", "volumes": ["/b/1"]}]
    pools = pools_of(tiered("pg", [{"name": "daily", "keep": 7}, {"name": "weekly", "keep": 4},
                                   {"name": "monthly", "keep": 12}, {"name": "yearly", "keep": 2},
                                   {"name": "quarter", "keep": 4, "every": "month", "target_pools": []}],
                            technology="btrfs_send", target_pools=targets))
    assert [(p["name"], p["base"], p["tier"], p["versions"], p["every"]) for p in pools] == [
        ("pg-daily", "pg", "daily", 7, "day"), ("pg-weekly", "pg", "weekly", 4, "week"),
        ("pg-monthly", "pg", "monthly", 12, "month"), ("pg-yearly", "pg", "yearly", 2, "year"),
        ("pg-quarter", "pg", "quarter", 4, "month")]
    # a tier inherits the pool's target pools unless it names its own
    assert [p["target_pools"] for p in pools] == [targets] * 4 + [[]]
    assert set(p["technology"] for p in pools) == {"btrfs_send"}


def test_only_pools_restricts_the_run():
    pools = pools_of(keep("a"), tiered("b", [{"name": "daily", "keep": 2}]), keep("c"), only_pools=["b", "c"])
    assert [p["name"] for p in pools] == ["b-daily", "c"]


def test_absent_pool_needs_no_versions():
    (pool,) = pools_of({"name": "old", "state": "absent", "remove_copies": True})
    assert (pool["state"], pool["remove_copies"], pool["versions"]) == ("absent", True, 0)


def test_empty_date_is_today_on_the_controller():
    run = rotation.expand([], rotation_date="", today=datetime.date(2026, 2, 28))
    assert (run["today"], run["problems"]) == ("2026-02-28", [])
    assert rotation.expand([])["today"] == datetime.date.today().isoformat()


@pytest.mark.parametrize("date", GOOD_DATES)
def test_real_dates_are_the_day_of_the_run(date):
    assert rotation.expand([], rotation_date=date) == {"today": date, "pools": [], "problems": []}


@pytest.mark.parametrize("date", BAD_DATES)
def test_impossible_dates_are_refused_naming_the_value_and_the_form(date):
    run = rotation.expand([keep("a")], rotation_date=date)
    (problem,) = run["problems"]
    assert problem.startswith("rotation_date %s is not a calendar day; use a real date as YYYY-MM-DD"
                              % json.dumps(date)), problem
    assert run["today"] == ""


def test_a_date_that_is_not_a_string_is_read_as_its_text():
    assert rotation.expand([], rotation_date=datetime.date(2026, 3, 1))["today"] == "2026-03-01"


@pytest.mark.parametrize("entries, only, expected", [
    ([keep("a-daily"), tiered("a", [{"name": "daily", "keep": 2}])], [],
     'copy pool name "a-daily" is used 2 times after tier expansion'),
    ([tiered("a", [{"name": "hourly", "keep": 2}])], [],
     'copy pool "a-hourly" has period ""; accepted: run, day, week, month, year'),
    ([keep("a", every="fortnight")], [], 'copy pool "a" has period "fortnight"'),
    ([keep("a", 0)], [], 'copy pool "a" keeps 0 versions; a keep pool needs versions >= 1'),
    ([{"name": "a", "technology": "btrfs_snapshot", "sources": ["/srv/a"]}], [], 'copy pool "a" keeps 0 versions'),
    ([keep("a", "many")], [], 'copy pool "a" keeps "many" versions'),
    ([tiered("a", [{"name": "daily", "keep": 0}])], [], 'copy pool "a-daily" keeps 0 versions'),
    ([{"name": "a", "policy": "tiered"}], [], 'pool "a" has policy tiered but no tiers'),
    ([tiered("a", [])], [], 'pool "a" has policy tiered but no tiers'),
    ([keep("a")], ["a", "b"], 'rotation_only_pools names ["b"], which rotation_pools does not define (it defines: ["a"])'),
])
def test_invalid_pools_are_refused_naming_the_value(entries, only, expected):
    run = rotation.expand(entries, only_pools=only, rotation_date="2026-01-01")
    (problem,) = run["problems"]
    assert problem.startswith("rotation_pools does not describe a valid set of copy pools: "), problem
    assert expected in problem, problem


def test_versions_given_as_text_of_a_number_are_accepted():
    assert pools_of(keep("a", "3"))[0]["versions"] == "3"


def test_every_problem_is_named_at_once():
    run = rotation.expand([keep("a", 0, every="hour")], only_pools=["a", "zz"], rotation_date="2026-02-30")
    assert len(run["problems"]) == 2
    assert "not a calendar day" in run["problems"][0]
    for part in ('period "hour"', "keeps 0 versions", 'names ["zz"]'):
        assert part in run["problems"][1]


# --- due ------------------------------------------------------------------

def due_on(today, every, records, label=""):
    (pool,) = pools_of(keep("p", 3, every=every))
    (entry,) = rotation.due([pool], {"p": records}, today, label)
    return entry


def test_period_run_is_due_on_every_run_with_the_run_label():
    assert due_on("2026-01-01", "run", [record(1, "x")], label="nightly") == {
        "name": "p", "due": True, "label": "nightly", "why": "taken on every run"}
    assert due_on("2026-01-01", "run", [])["label"] == ""


def test_a_pool_without_versions_is_due():
    assert due_on("2026-01-01", "week", []) == {"name": "p", "due": True, "label": "weekly-2026-01-01",
                                                "why": "no version yet"}


@pytest.mark.parametrize("every, last, today, is_due", [
    ("day", "2026-01-01", "2026-01-01", False),
    ("day", "2026-01-01", "2026-01-02", True),
    # 2026-01-01 is a Thursday: the ISO week runs to Sunday 2026-01-04
    ("week", "2026-01-01", "2026-01-04", False),
    ("week", "2026-01-01", "2026-01-05", True),
    # Monday 2025-12-29 already belongs to ISO week 2026-W01
    ("week", "2025-12-29", "2026-01-02", False),
    ("week", "2025-12-28", "2025-12-29", True),
    ("month", "2026-01-01", "2026-01-31", False),
    ("month", "2026-01-31", "2026-02-01", True),
    ("year", "2026-01-01", "2026-12-31", False),
    ("year", "2025-12-31", "2026-01-01", True),
    # a later version than the day of the run: never due again on an older day
    ("day", "2026-03-01", "2026-02-01", False),
    ("month", "2026-03-01", "2026-02-01", False),
])
def test_a_pool_is_due_when_the_period_of_its_last_version_is_over(every, last, today, is_due):
    adjective = rotation.ADJECTIVES[every]
    entry = due_on(today, every, [record(1, "%s-%s" % (adjective, "2020-01-01")),
                                  record(2, "%s-%s" % (adjective, last))])
    assert entry["due"] is is_due, entry
    assert entry["label"] == "%s-%s" % (adjective, today)
    assert entry["why"].startswith("last version v2 of %s " % last)


def test_the_why_says_which_period():
    assert due_on("2026-01-04", "week", [record(1, "weekly-2026-01-01")])["why"] == \
        "last version v1 of 2026-01-01 is in this week"
    assert due_on("2026-01-05", "week", [record(1, "weekly-2026-01-01")])["why"] == \
        "last version v1 of 2026-01-01 is from an earlier week"
    assert due_on("2026-01-01", "day", [record(1, "daily-2026-01-03")])["why"] == \
        "last version v1 of 2026-01-03 is later than rotation_date 2026-01-01"


def test_the_last_version_is_the_highest_number_whatever_the_order():
    entry = due_on("2026-01-02", "day", [record(7, "daily-2026-01-02"), record(6, "daily-2026-01-01")])
    assert (entry["due"], entry["why"]) == (False, "last version v7 of 2026-01-02 is in this day")


@pytest.mark.parametrize("label", [None, "", "manual", "daily-2026-02-30", "x-9999-99-99"])
def test_a_version_without_a_date_in_its_label_counts_from_its_creation(label):
    entry = due_on("2026-01-05", "day", [record(1, label, created="2026-01-05T23:59:00Z")])
    assert (entry["due"], entry["why"]) == (False, "last version v1 of 2026-01-05 is in this day")
    assert due_on("2026-01-06", "day", [record(1, label, created="2026-01-05T23:59:00Z")])["due"] is True


def test_only_present_pools_with_records_are_decided():
    pools = pools_of(keep("a", every="day"), keep("new", every="day"), {"name": "gone", "state": "absent"})
    assert [d["name"] for d in rotation.due(pools, {"a": [], "gone": [record(1)]}, "2026-01-01")] == ["a"]


# --- to_define: copy_pool's own answer ------------------------------------

def snap_host(tmp_path, technology="btrfs_snapshot"):
    be = MemoryBackend(technology)
    for name in ("/srv/a", "/srv/b", "vg/A", "vg/B", "vg/a", "vg/b", "vg/c", "vg/d"):
        be.add_volume(name, size=GIB)
    return ModuleHarness(tmp_path / "state", be, window_factory=SimpleWindow)


def define_args(pool):
    """The options _define.yml passes to copy_pool for a present pool."""
    return dict((k, v) for k, v in rotation._copy_pool_options(pool).items() if v is not None)


def stored(host):
    return host.ok(copy_pool_info, {})["pools"]


BASE_SNAP = keep("s", 3, sources=["/srv/a"])
BASE_CLONE = {"name": "c", "technology": "lvm_clone", "sources": ["vg/A"], "versions": 2,
              "target_pools": [{"name": "01", "volumes": ["vg/a"]}, {"name": "02", "volumes": ["vg/b"]}]}
HOOK = {"argv": ["/bin/true"]}


SAME, CHANGED = False, True


@pytest.mark.parametrize("base, variant, changed", [
    (BASE_SNAP, {}, SAME),
    # what copy_pool's argument spec fills in or converts is no change
    (BASE_SNAP, {"consistency": "auto"}, SAME),
    (BASE_SNAP, {"versions": "3"}, SAME),
    (BASE_SNAP, {"pre_copy_hooks": [], "post_copy_hooks": []}, SAME),
    (dict(BASE_SNAP, pre_copy_hooks=[HOOK]), {"pre_copy_hooks": [dict(HOOK, timeout=60, abort_on_failure=True)]},
     SAME),
    (dict(BASE_SNAP, pre_copy_hooks=[HOOK]), {"pre_copy_hooks": [dict(HOOK, timeout="60")]}, SAME),
    (BASE_CLONE, {}, SAME),
    (BASE_SNAP, {"versions": 4}, CHANGED),
    (BASE_SNAP, {"sources": ["/srv/a", "/srv/b"]}, CHANGED),
    (BASE_SNAP, {"sources": ["/srv/b"]}, CHANGED),
    (BASE_SNAP, {"consistency": "none"}, CHANGED),
    (BASE_SNAP, {"pre_copy_hooks": [HOOK]}, CHANGED),
    (dict(BASE_SNAP, pre_copy_hooks=[HOOK]), {"pre_copy_hooks": [dict(HOOK, timeout=30)]}, CHANGED),
    (dict(BASE_SNAP, pre_copy_hooks=[HOOK]), {"pre_copy_hooks": None}, CHANGED),
    (dict(BASE_SNAP, post_copy_hooks=[HOOK]), {"post_copy_hooks": [dict(HOOK, abort_on_failure=False)]}, CHANGED),
    # consistency left out is copy_pool's default, auto
    (dict(BASE_SNAP, consistency="none"), {"consistency": None}, CHANGED),
    (BASE_CLONE, {"target_pools": [{"name": "02", "volumes": ["vg/b"]}, {"name": "01", "volumes": ["vg/a"]}]},
     CHANGED),
    (BASE_CLONE, {"target_pools": [{"name": "01", "volumes": ["vg/a"]}, {"name": "02", "volumes": ["vg/c"]}]},
     CHANGED),
    (BASE_CLONE, {"target_pools": [{"name": "01", "volumes": ["vg/a"]}, {"name": "02", "volumes": ["vg/b"]},
                                   {"name": "03", "volumes": ["vg/c"]}]}, CHANGED),
    (BASE_CLONE, {"sources": ["vg/A", "vg/B"], "target_pools": [{"name": "01", "volumes": ["vg/a", "vg/c"]},
                                                                {"name": "02", "volumes": ["vg/b", "vg/d"]}]},
     CHANGED),
])
def test_to_define_answers_what_copy_pool_in_check_mode_answers(tmp_path, base, variant, changed):
    host = snap_host(tmp_path, base["technology"])
    (first,) = pools_of(base)
    host.ok(copy_pool, define_args(first))
    (pool,) = pools_of(dict(base, **variant))
    assert host.ok(copy_pool, define_args(pool), check_mode=True)["changed"] is changed
    assert rotation.to_define([pool], stored(host)) == ([pool["name"]] if changed else [])


@pytest.mark.parametrize("variant", [
    {"technology": ""},
    {"technology": "btrfs_send"},
    {"target_pools": [{"name": "01", "volumes": ["/b/1"]}]},
    {"pre_copy_hooks": [{"timeout": 3}]},
    {"versions": "many"},
    {"sources": None},
])
def test_options_copy_pool_refuses_go_to_copy_pool_which_names_the_problem(tmp_path, variant):
    host = snap_host(tmp_path)
    (first,) = pools_of(BASE_SNAP)
    host.ok(copy_pool, define_args(first))
    pool = dict(first, **variant)
    assert rotation.to_define([pool], stored(host)) == ["s"]
    assert host.fail(copy_pool, define_args(pool), check_mode=True)["msg"]


def test_datasets_pass_through_and_an_unchanged_inventory_is_no_change(tmp_path):
    host = snap_host(tmp_path)
    live = tmp_path / "a"
    (live / "pg").mkdir(parents=True)
    (live / "www").mkdir()
    host.backend.source_directory = lambda definition, source: str(live) if source == "/srv/a" else None
    base = dict(BASE_SNAP, datasets=[{"name": "db", "path": str(live / "pg")}])
    (first,) = pools_of(base)
    assert host.ok(copy_pool, define_args(first))["pool"]["datasets"][0]["sources"] == ["/srv/a"]
    assert rotation.to_define([first], stored(host)) == []
    for variant in ({"datasets": [{"name": "db", "path": str(live / "www")}]}, {"datasets": None}):
        (pool,) = pools_of(dict(base, **variant))
        assert host.ok(copy_pool, define_args(pool), check_mode=True)["changed"] is True
        assert rotation.to_define([pool], stored(host)) == ["s"]


def test_new_absent_and_damaged_pools(tmp_path):
    host = snap_host(tmp_path)
    (a,) = pools_of(keep("a"))
    host.ok(copy_pool, define_args(a))
    pools = pools_of(keep("a"), keep("new"), {"name": "a2", "state": "absent"}, keep("bad"))
    info = stored(host) + [{"name": "bad", "error": "the state file ... is refused"}]
    assert rotation.to_define(pools, info) == ["new", "bad"]
    assert rotation.to_define(pools_of({"name": "a", "state": "absent"}), info) == ["a"]


# --- summary --------------------------------------------------------------

def taken(name, changed=True, number=3, label="daily-2026-01-02", replaced=None, broken=()):
    return {"item": {"name": name}, "changed": changed, "replaced_version": replaced, "broken_pairs": list(broken),
            "version": {"number": number, "label": label, "target_pool": "01", "pre_copy_record": "prepairing"}}


def test_summary_says_what_the_run_did_per_pool():
    pools = pools_of(keep("t", 2, every="day"), keep("r", 2), keep("b", 2, every="day"), keep("n", 2, every="day"),
                     keep("x", 2), {"name": "gone", "state": "absent"}, {"name": "was", "state": "absent"})
    records = {"t": [record(3), record(2)], "r": [record(4)], "n": [record(1)], "x": [], "gone": [record(1)]}
    lines = rotation.summary(
        pools, records, {"t": [record(4)], "n": [record(2), record(3)]},
        due_pools=[{"name": "n", "due": False, "why": "last version v1 of 2026-01-02 is in this day"},
                   {"name": "x", "due": True, "why": "no version yet"}],
        taken=[taken("t", replaced=1, broken=["p"]), taken("r", changed=False, label="nightly"),
               {"item": {"name": "skipped"}, "skipped": True}])
    assert lines == [
        "t [btrfs_snapshot]: took v3 'daily-2026-01-02' into target pool 01 (pre-copy record: prepairing, "
        "replaced v1, 1 pair(s) broken); kept 2 of 2: v2 v3; pre-paired: v4",
        "r [btrfs_snapshot]: version labelled 'nightly' already exists; kept 1 of 2: v4; pre-paired: -",
        "b [btrfs_snapshot]: not taken (rotation_take_versions is false); kept 0 of 2: -; pre-paired: -",
        "n [btrfs_snapshot]: not due: last version v1 of 2026-01-02 is in this day; kept 1 of 2: v1; "
        "pre-paired: v2 v3",
        "x [btrfs_snapshot]: not taken (rotation_take_versions is false); due: no version yet; kept 0 of 2: -; "
        "pre-paired: -",
        "gone: still defined",
        "was: removed (not defined)",
    ]


def test_summary_in_check_mode():
    pools = pools_of(keep("t", 2), keep("new", 2), {"name": "gone", "state": "absent"})
    lines = rotation.summary(pools, {"t": [], "gone": [record(1)]}, {},
                             taken=[taken("t", number=1, label=None)], check_mode=True)
    assert lines == [
        "t [btrfs_snapshot]: would take v1 into target pool 01 (pre-copy record: prepairing); kept 0 of 2: -; "
        "pre-paired: -",
        "new [btrfs_snapshot]: would be defined and take its first version; kept 0 of 2: -; pre-paired: -",
        "gone: would be removed",
    ]


def test_summary_without_pools():
    assert rotation.summary([], {}, {}) == ["no copy pools in rotation_pools"]
    assert rotation.summary([], {}, {}, only_pools=["a"]) == [
        "no copy pools in rotation_pools matching rotation_only_pools"]


# --- the 60-day calendar of extensions/molecule/calendar ------------------

def calendar():
    """The molecule scenario's pools, days and expectations (vars.yml)."""
    with open(CALENDAR_VARS) as f:
        data = yaml.safe_load(f)
    days = ast.literal_eval(jinja2.Environment().from_string(data["calendar_days"]).render())
    epoch = datetime.datetime.fromtimestamp(int(data["calendar_epoch"]), tz=datetime.timezone.utc).date()
    pools = copy.deepcopy(data["calendar_pools"])
    for p in pools:  # the scenario's btrfs paths, on the in-memory host
        p["sources"] = ["/srv/cal/a", "/srv/cal/b"]
    return pools, [(epoch + datetime.timedelta(days=i)).isoformat() for i in days], data


class Role:
    """tasks/main.yml with the decisions of the filters and the modules on
    the in-memory backend (verification and pre-pairing change no label or
    number, so they are left out)."""

    def __init__(self, host):
        self.host = host

    def info(self):
        pools = stored(self.host)
        return pools, dict((p["name"], p["replication_records"]) for p in pools)

    def run(self, rotation_pools, date):
        run = rotation.expand(rotation_pools, rotation_date=date)
        assert run["problems"] == []
        info, known = self.info()
        defined = rotation.to_define(run["pools"], info)
        for p in run["pools"]:
            if p["name"] in defined:
                self.host.ok(copy_pool, define_args(p))
        if defined:
            info, known = self.info()
        due = rotation.due(run["pools"], known, run["today"])
        results = []
        for d in due:
            if d["due"]:
                # _take.yml: an empty label is omitted (every: run without rotation_label)
                args = {"pool": d["name"], "label": d["label"]} if d["label"] else {"pool": d["name"]}
                result = self.host.ok(copy_version, args)
                results.append(dict(result, item=d))
        known = self.info()[1]
        return defined, due, rotation.summary(run["pools"], known, {}, due_pools=due, taken=results)


def test_the_60_day_calendar_keeps_exactly_the_expected_versions(tmp_path):
    pools, days, expected = calendar()
    assert (days[0], days[-1], len(days), len(set(days))) == ("2026-01-01", "2026-03-01", 62, 60)
    host = ModuleHarness(tmp_path / "state", MemoryBackend("btrfs_snapshot"), window_factory=SimpleWindow)
    for source in pools[0]["sources"]:
        host.backend.add_volume(source, size=GIB)
    role = Role(host)
    taken_on = {}
    seen = set()
    for day in days:
        defined, due, lines = role.run(pools, day)
        # defined once, on the first day; the rerun of a day takes nothing
        assert defined == (["cal-daily", "cal-weekly", "cal-monthly"] if day == days[0] else [])
        taken_today = [d["name"] for d in due if d["due"]]
        if day in seen:
            assert taken_today == [], (day, due)
            assert all(line.split(": ", 1)[1].startswith("not due: ") for line in lines), lines
        seen.add(day)
        for name in taken_today:
            taken_on.setdefault(name, []).append(day)
    # daily every day; weekly on the first day and every Monday; monthly on the 1st
    assert taken_on["cal-daily"] == sorted(seen)
    assert taken_on["cal-weekly"] == ["2026-01-01"] + [d for d in sorted(seen) if d > "2026-01-01" and
                                                       datetime.date.fromisoformat(d).weekday() == 0]
    assert taken_on["cal-monthly"] == ["2026-01-01", "2026-02-01", "2026-03-01"]

    known = role.info()[1]
    labels = dict((n, [r["label"] for r in sorted(rs, key=lambda r: r["version"])]) for n, rs in known.items())
    numbers = dict((n, [r["version"] for r in sorted(rs, key=lambda r: r["version"])]) for n, rs in known.items())
    assert labels == expected["calendar_expected"]
    assert numbers == expected["calendar_expected_versions"]
    assert set(r["status"] for rs in known.values() for r in rs) == {"valid"}
    # the copies on the host are exactly the kept versions (2 sources each)
    kept = sum(len(v) for v in expected["calendar_expected"].values()) * 2
    assert len([c for c in host.backend.copies.values() if not c.get("staged")]) == kept


def test_the_calendar_summary_of_its_last_day_names_what_was_taken(tmp_path):
    pools, days, expected = calendar()
    host = ModuleHarness(tmp_path / "state", MemoryBackend("btrfs_snapshot"), window_factory=SimpleWindow)
    for source in pools[0]["sources"]:
        host.backend.add_volume(source, size=GIB)
    role = Role(host)
    for day in ["2026-02-28", "2026-03-01"]:
        lines = role.run(pools, day)[2]
    assert lines[0].startswith("cal-daily [btrfs_snapshot]: took v2 'daily-2026-03-01' into target pool ")
    assert lines[0].endswith("; kept 2 of 7: v1 v2; pre-paired: -")
    assert lines[1] == ("cal-weekly [btrfs_snapshot]: not due: last version v1 of 2026-02-28 is in this week; "
                        "kept 1 of 4: v1; pre-paired: -")
    assert lines[2].startswith("cal-monthly [btrfs_snapshot]: took v2 'monthly-2026-03-01'")


def test_the_calendar_hourly_grid_beside_the_tiers_over_three_days(tmp_path):
    """The calendar's grid pool (policy grid, ``6h 3d``) with its tiers, the
    role run every hour of the first three days: the tiers take one version
    a day as before, the grid pool one a run, and after every run the grid
    pool keeps exactly what the grid predicts (tests/utils/grid_model.py);
    one version (the day's first) stands for an hour and a day at once."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._retention import grid_capacity, parse_grid
    from ansible_collections.pitcopy.versions.tests.unit.memory_backend import SetClock
    from ansible_collections.pitcopy.versions.tests.utils.grid_model import expected_kept

    pools, days, expected = calendar()
    grid_pool = copy.deepcopy(expected["calendar_grid_pool"])
    grid_pool["sources"] = pools[0]["sources"]
    pools = pools + [grid_pool]
    epoch = datetime.datetime.fromtimestamp(int(expected["calendar_epoch"]), tz=datetime.timezone.utc)
    clock = SetClock(epoch)
    host = ModuleHarness(tmp_path / "state", MemoryBackend("btrfs_snapshot"), window_factory=SimpleWindow,
                         clock=clock, tz=datetime.timezone.utc)
    for source in pools[0]["sources"]:
        host.backend.add_volume(source, size=GIB)
    role = Role(host)
    grid = parse_grid(grid_pool["retention"])
    taken = []
    tier_days = {}
    for hour in range(24 * int(expected["calendar_grid_days"])):
        clock.now = epoch + datetime.timedelta(hours=hour)
        defined, due, lines = role.run(pools, clock.now.date().isoformat())
        assert defined == (["cal-daily", "cal-weekly", "cal-monthly", "cal-grid"] if hour == 0 else [])
        for d in due:
            if d["due"] and d["name"] != "cal-grid":
                tier_days.setdefault(d["name"], []).append(clock.now.date().isoformat())
        assert [d["due"] for d in due if d["name"] == "cal-grid"] == [True]
        known = role.info()[1]
        grid_kept = [r["version"] for r in sorted(known["cal-grid"], key=lambda r: r["version"])]
        taken.append((max(grid_kept), clock.now))
        assert set(grid_kept) == expected_kept(grid, taken, clock.now, datetime.timezone.utc), hour
        assert len(grid_kept) <= grid_capacity(grid)
        grid_line = [line for line in lines if line.startswith("cal-grid ")][0]
        assert "kept %d of %d" % (len(grid_kept), grid_capacity(grid)) in grid_line
    assert grid_kept == expected["calendar_grid_expected_versions"]
    # the tiers beside it: one version a day, the weekly and monthly once
    assert tier_days == {"cal-daily": ["2026-01-01", "2026-01-02", "2026-01-03"], "cal-weekly": ["2026-01-01"],
                         "cal-monthly": ["2026-01-01"]}
    # the copies on the host are the kept versions of the four pools (2 sources each)
    known = role.info()[1]
    assert len([c for c in host.backend.copies.values() if not c.get("staged")]) == 2 * sum(
        len(rs) for rs in known.values())


def test_a_grid_pool_is_one_copy_pool_with_its_grid():
    (pool,) = pools_of({"name": "g", "technology": "btrfs_snapshot", "sources": ["/srv/a"], "policy": "grid",
                        "retention": "24h 7d 4w 12m"})
    assert (pool["name"], pool["retention"], pool["versions"], pool["every"]) == ("g", "24h 7d 4w 12m", 48, "run")
    assert rotation._copy_pool_options(pool)["retention"] == "24h 7d 4w 12m"
    (pool,) = pools_of({"name": "g", "technology": "btrfs_snapshot", "sources": ["/srv/a"], "policy": "grid",
                        "retention": "6h", "versions": 9})
    assert pool["versions"] == 9


@pytest.mark.parametrize("entry, words", [
    ({"policy": "grid", "retention": "24x"}, ['pool "g" has policy grid: retention \'24x\' is not accepted',
                                              "h (hours), d (days)"]),
    ({"policy": "grid"}, ['pool "g" has policy grid: retention None is not accepted']),
    ({"policy": "grid", "retention": "0h"}, ["'0h' keeps no version"]),
    ({"policy": "keep", "versions": 2, "retention": "6h"}, ['pool "g" has retention "6h" but policy "keep"']),
])
def test_a_grid_pool_without_a_good_grid_is_a_problem(entry, words):
    run = rotation.expand([dict({"name": "g", "technology": "btrfs_snapshot", "sources": ["/srv/a"]}, **entry)])
    assert len(run["problems"]) == 1 and all(w in run["problems"][0] for w in words), run["problems"]
    assert "keeps 0 versions" not in run["problems"][0]
