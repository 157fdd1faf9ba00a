# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of the rotation role, as plain functions of plain data.

They run on the controller (the role's filters), on what the role already
has there: its variables and the records that copy_pool_info read on the
managed host. The calendar day is rotation_date, else today on the
controller's clock, as the role documents.

* ``expand``: rotation_pools -> one copy pool per keep or grid pool and per
  tier, with the problems argument_specs cannot express;
* ``to_define``: which copy pools copy_pool has to (re)define, by copy_pool's
  own comparison (module_utils/_pool_options.py);
* ``due``: which copy pools take a version on this day, and why;
* ``summary``: the per-host lines printed at the end of a run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re
from collections.abc import Mapping

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._pool_options import (
    ARGUMENT_SPEC,
    REQUIRED_IF,
    definition,
    stored_options,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._retention import grid_capacity, parse_grid

PERIODS = ("run", "day", "week", "month", "year")
# a tier of one of these names takes its period from the name; a version of a
# periodic pool is labelled <adjective>-YYYY-MM-DD
ADJECTIVES = {"day": "daily", "week": "weekly", "month": "monthly", "year": "yearly"}
TIER_PERIODS = dict((adjective, period) for period, adjective in ADJECTIVES.items())

DATE_MESSAGE = ("rotation_date %s is not a calendar day; use a real date as YYYY-MM-DD (for example 2026-11-25; "
                "months 01-12, days up to the month's last, 29 February only in leap years) or leave it empty for "
                "today.")
POOLS_MESSAGE = "rotation_pools does not describe a valid set of copy pools: %s."

_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_LABEL_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def calendar_day(text):
    """The datetime.date of a YYYY-MM-DD string, or None when it is not one
    (9999-99-99 would sort after every label and make every later run "not
    due"; 2026-11-31 would fail later, naming no pool)."""
    if not isinstance(text, str) or not _DAY.match(text):
        return None
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None


def run_day(rotation_date, today=None):
    """(day as YYYY-MM-DD, problem or None) of a run; an empty rotation_date
    means ``today`` (default: the controller's local date)."""
    text = "" if rotation_date is None else str(rotation_date)
    if text == "":
        return (today or datetime.date.today()).isoformat(), None
    if calendar_day(text) is None:
        return "", DATE_MESSAGE % json.dumps(text)
    return text, None


def _as_int(value):
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _grid_versions(entry):
    """The versions of a grid pool: as given, else as many as its grid can
    keep (copy_pool's rule, _retention.grid_capacity); 0 when the grid is
    not one (copy_pool's parser names the problem, see ``expand``)."""
    if entry.get("versions") is not None:
        return entry.get("versions")
    try:
        return grid_capacity(parse_grid(entry.get("retention")))
    except InvalidInput:
        return 0


def _copy_pools(entry):
    """The copy pools of one rotation_pools entry: a keep or grid pool is
    one, a tiered pool one per tier, named <name>-<tier>."""
    common = {
        "base": entry.get("name"),
        "technology": entry.get("technology", ""),
        "sources": entry.get("sources", []),
        "state": entry.get("state", "present"),
        "remove_copies": entry.get("remove_copies", False),
        "snapshot_size": entry.get("snapshot_size"),
        "consistency": entry.get("consistency"),
        "pre_copy_hooks": entry.get("pre_copy_hooks"),
        "post_copy_hooks": entry.get("post_copy_hooks"),
        "max_age": entry.get("max_age"),
        "retention": None,
        "datasets": entry.get("datasets"),
        "transfer": entry.get("transfer"),
    }
    if entry.get("policy") == "grid":
        pools = [dict(common, name=entry.get("name"), tier="", versions=_grid_versions(entry),
                      every=entry.get("every", "run"), target_pools=entry.get("target_pools", []),
                      retention=entry.get("retention"))]
    elif entry.get("policy", "keep") != "tiered":
        pools = [dict(common, name=entry.get("name"), tier="", versions=entry.get("versions", 0),
                      every=entry.get("every", "run"), target_pools=entry.get("target_pools", []))]
    else:
        pools = [dict(common, name="%s-%s" % (entry.get("name"), tier.get("name")), tier=tier.get("name"),
                      versions=tier.get("keep"), every=tier.get("every", TIER_PERIODS.get(tier.get("name"), "")),
                      target_pools=tier.get("target_pools", entry.get("target_pools", [])),
                      max_age=tier.get("max_age", entry.get("max_age")))
                 for tier in entry.get("tiers") or ()]
    # ssh reaches the target pools on another host: a copy pool (a tier)
    # whose target pools are all on the managed host does not take it
    # (copy_pool refuses ssh there); an entry whose copy pools have none at
    # all is a problem of expand
    for pool in pools:
        pool["ssh"] = entry.get("ssh") if _remote_target_pools(pool) else None
    return pools


def _remote_target_pools(pool):
    """The names of ``pool``'s target pools that name a ``host``."""
    return [tp.get("name") for tp in pool.get("target_pools") or () if isinstance(tp, Mapping) and tp.get("host")]


def expand(rotation_pools, only_pools=None, rotation_date="", today=None):
    """rotation_pools as the copy pools of this run.

    Returns ``{"today": YYYY-MM-DD, "pools": [...], "problems": [...]}``;
    a run goes on only without problems. Each pool has ``name``, ``base``
    (the rotation_pools entry), ``tier`` ("" for a keep pool), ``versions``,
    ``every`` and the options copy_pool takes."""
    only_pools = list(only_pools or ())
    rotation_pools = list(rotation_pools or ())
    day, date_problem = run_day(rotation_date, today)
    pools = []
    for entry in rotation_pools:
        if not only_pools or entry.get("name") in only_pools:
            pools.extend(_copy_pools(entry))

    found = []
    names = [p["name"] for p in pools]
    grid_derived = set(e.get("name") for e in rotation_pools if e.get("policy") == "grid" and e.get("versions") is None)
    for name in sorted(set(n for n in names if names.count(n) > 1), key=str):
        found.append("copy pool name %s is used %d times after tier expansion (a tier makes <name>-<tier>); "
                     "names must be unique" % (json.dumps(name), names.count(name)))
    for p in pools:
        if p["every"] not in PERIODS:
            found.append("copy pool %s has period %s; accepted: %s (a tier named other than %s needs every)" % (
                json.dumps(p["name"]), json.dumps(p["every"]), ", ".join(PERIODS),
                "/".join(ADJECTIVES[period] for period in PERIODS[1:])))
        versions = _as_int(p["versions"])
        # a grid pool's versions come from its grid unless given: a bad grid
        # is named below, in copy_pool's words, not as a count of 0
        if p["state"] == "present" and (versions is None or versions < 1) and p["name"] not in grid_derived:
            found.append("copy pool %s keeps %s versions; a keep pool needs versions >= 1 and a tier keep >= 1" % (
                json.dumps(p["name"]), json.dumps(p["versions"])))
    for entry in rotation_pools:
        if entry.get("policy") == "tiered" and not entry.get("tiers"):
            found.append("pool %s has policy tiered but no tiers; give tiers or use policy keep" % (
                json.dumps(entry.get("name"))))
        if entry.get("policy") == "grid" and entry.get("state", "present") == "present":
            try:
                parse_grid(entry.get("retention"))
            except InvalidInput as exc:  # copy_pool's own parser and words
                found.append("pool %s has policy grid: %s" % (json.dumps(entry.get("name")), exc.msg))
        elif entry.get("retention") is not None and entry.get("policy") != "grid":
            found.append("pool %s has retention %s but policy %s; retention is the grid of policy grid" % (
                json.dumps(entry.get("name")), json.dumps(entry.get("retention")),
                json.dumps(entry.get("policy", "keep"))))
        if entry.get("ssh") and entry.get("state", "present") == "present" and not any(
                _remote_target_pools(p) for p in _copy_pools(entry)):
            found.append("pool %s has ssh %s, which reaches target pools on another host, but none of its target "
                         "pools%s names host; leave ssh out or give a target pool a host" % (
                             json.dumps(entry.get("name")), json.dumps(entry.get("ssh"), sort_keys=True, default=str),
                             " (nor those of its tiers)" if entry.get("policy") == "tiered" else ""))
    unknown = [n for n in only_pools if n not in [e.get("name") for e in rotation_pools]]
    if unknown:
        found.append("rotation_only_pools names %s, which rotation_pools does not define (it defines: %s)" % (
            json.dumps(unknown), json.dumps([e.get("name") for e in rotation_pools])))

    problems = [date_problem] if date_problem else []
    if found:
        problems.append(POOLS_MESSAGE % "; ".join(found))
    return {"today": day, "pools": pools, "problems": problems}


def _copy_pool_options(pool):
    """The options the role passes to copy_pool for a present pool (the
    parameters of _define.yml; None stands for omit)."""
    return {
        "name": pool["name"],
        "state": "present",
        "technology": pool["technology"],
        "sources": pool["sources"],
        "versions": pool["versions"],
        "target_pools": pool["target_pools"] or None,
        "snapshot_size": pool["snapshot_size"],
        "consistency": pool["consistency"],
        "pre_copy_hooks": pool["pre_copy_hooks"],
        "post_copy_hooks": pool["post_copy_hooks"],
        "max_age": pool["max_age"],
        "retention": pool.get("retention"),
        "datasets": pool.get("datasets") or None,
        "ssh": pool.get("ssh") or None,
        "transfer": pool.get("transfer") or None,
    }


def _validated_definition(options):
    """copy_pool's ``definition`` of ``options`` after its argument spec (the
    validator AnsibleModule uses), or None when copy_pool would refuse them
    for their types, choices or missing values. None values are left out, as
    ``omit`` leaves them out of the module's arguments."""
    given = dict((key, value) for key, value in options.items() if value is not None)
    result = ArgumentSpecValidator(ARGUMENT_SPEC, required_if=REQUIRED_IF).validate(given)
    if result.error_messages:
        return None
    return definition(result.validated_parameters)


def definition_differs(options, pool):
    """Whether copy_pool with ``options`` (state=present) would change the
    definition of ``pool`` (copy_pool_info's dict of the stored pool; None:
    no such pool). Options that copy_pool would refuse count as a change, so
    that copy_pool runs and names the problem; so does a pool that
    copy_pool_info could only list with an ``error``."""
    if pool is None or pool.get("error"):
        return True
    wanted = _validated_definition(options)
    return wanted is None or wanted != _validated_definition(stored_options(pool))


def to_define(pools, info_pools):
    """Names of the copy pools copy_pool has to run for: new pools, pools
    whose definition differs from their records (copy_pool's comparison) and
    pools to remove that still have records. copy_pool is idempotent, but a
    module run per unchanged pool costs time in a run over many pools."""
    stored = dict((p.get("name"), p) for p in info_pools or ())
    out = []
    for p in pools:
        if p["state"] == "absent":
            if p["name"] in stored:
                out.append(p["name"])
        elif definition_differs(_copy_pool_options(p), stored.get(p["name"])):
            out.append(p["name"])
    return out


def period_key(period, day):
    """What has to differ between two days for a pool of ``period`` to be due
    again: the day, the ISO week, the month or the year."""
    if period == "week":
        year, week = calendar_day(day).isocalendar()[:2]
        return "%04d-W%02d" % (year, week)
    if period == "month":
        return day[:7]
    if period == "year":
        return day[:4]
    return day


def version_day(record):
    """The day of a version: the date its label ends in (what the role
    wrote, so a simulated calendar works), else the day it was created. A
    label ending in something that is not a real day carries no date."""
    found = _LABEL_DAY.search(str(record.get("label") or ""))
    if found and calendar_day(found.group(0)) is not None:
        return found.group(0)
    return str(record.get("created"))[:10]


def due(pools, records, today, label=""):
    """Which present, defined copy pools take a version on ``today``.

    A pool of period "run" is due on every run (labelled ``label``, if any).
    Otherwise a pool is due when it has no version yet, or when the period
    (day, ISO week, month, year) of ``today`` differs from that of its last
    version and lies after it; its version is labelled <adjective>-<today>.
    ``records`` maps pool names to their replication records."""
    out = []
    for p in pools:
        if p["state"] != "present" or p["name"] not in records:
            continue
        if p["every"] == "run":
            out.append({"name": p["name"], "due": True, "label": label or "", "why": "taken on every run"})
            continue
        entry = {"name": p["name"], "label": "%s-%s" % (ADJECTIVES[p["every"]], today)}
        kept = sorted(records[p["name"]] or (), key=lambda r: r["version"])
        if not kept:
            entry.update(due=True, why="no version yet")
        else:
            last = kept[-1]
            last_day = version_day(last)
            if period_key(p["every"], today) == period_key(p["every"], last_day):
                entry.update(due=False, why="last version v%s of %s is in this %s" % (
                    last["version"], last_day, p["every"]))
            elif today > last_day:
                entry.update(due=True, why="last version v%s of %s is from an earlier %s" % (
                    last["version"], last_day, p["every"]))
            else:
                entry.update(due=False, why="last version v%s of %s is later than rotation_date %s" % (
                    last["version"], last_day, today))
        out.append(entry)
    return out


def _versions(records):
    return " ".join("v%s" % r["version"] for r in records)


def _took(result, check_mode):
    v = result["version"]
    return "%s v%s%s into target pool %s (pre-copy record: %s%s%s)" % (
        "would take" if check_mode else "took", v["number"],
        " '%s'" % v["label"] if v.get("label") else "", v["target_pool"], v["pre_copy_record"],
        ", replaced v%s" % result["replaced_version"] if result.get("replaced_version") else "",
        ", %d pair(s) broken" % len(result["broken_pairs"]) if result.get("broken_pairs") else "")


def summary(pools, records, prepairing, due_pools=None, taken=None, check_mode=False, only_pools=None):
    """One line per copy pool: what the run did (or would do, in check mode)
    and which versions it keeps and has pre-paired.

    ``records``/``prepairing`` map pool names to their replication and
    pre-pairing records after the run; ``due_pools`` is ``due``'s answer;
    ``taken`` the registered loop results of copy_version."""
    taken_by = dict((r["item"]["name"], r) for r in taken or () if "version" in r)
    decided = dict((d["name"], d) for d in due_pools or ())
    lines = []
    for p in pools:
        name = p["name"]
        if p["state"] == "absent":
            if name in records:
                what = "would be removed" if check_mode else "still defined"
            else:
                what = "removed (not defined)"
            lines.append("%s: %s" % (name, what))
            continue
        if name in taken_by and taken_by[name].get("changed"):
            what = _took(taken_by[name], check_mode)
        elif name in taken_by:
            what = "version labelled '%s' already exists" % taken_by[name]["version"]["label"]
        elif name in decided and not decided[name]["due"]:
            what = "not due: " + decided[name]["why"]
        elif name in decided:
            what = "not taken (rotation_take_versions is false); due: " + decided[name]["why"]
        elif check_mode:
            what = "would be defined and take its first version"
        else:
            what = "not taken (rotation_take_versions is false)"
        kept = sorted(records.get(name) or (), key=lambda r: r["version"])
        lines.append("%s [%s]: %s; kept %d of %d: %s; pre-paired: %s" % (
            name, p["technology"], what, len(kept), int(p["versions"]), _versions(kept) or "-",
            _versions(prepairing.get(name) or ()) or "-"))
    if not lines:
        lines.append("no copy pools in rotation_pools" + (" matching rotation_only_pools" if only_pools else ""))
    return lines
