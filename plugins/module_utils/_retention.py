# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grid retention (copy_pool ``retention``): which kept versions a time grid
such as ``24h 7d 4w 12m 3y`` still needs, and so which target pool a new
version takes and which versions go. Plain Python, no Ansible import.

The grid's rule, the one computation of it (``grid_needs``):

* a grid is one or more buckets ``<count><unit>``, units ``h`` (hours),
  ``d`` (days), ``w`` (ISO weeks, Monday to Sunday), ``m`` (calendar
  months), ``y`` (calendar years), each unit at most once;
* ``<count><unit>`` covers the ``count`` most recent periods of that unit,
  the current one included, as the host's clock divides time: periods
  begin at the host's local midnight, on Monday, on the 1st, on 1 January
  (timestamps are compared as instants with the host's timezone stated,
  never as bare dates, so a day is the host's day and hours work);
* in each covered period the oldest valid version is its representative
  and is kept (btrbk's "first snapshot of the hour/day/..."); one version
  counts for every bucket it falls in (the first copy of a month that
  opens a week and a day represents all three);
* the newest version (the one just taken) is always kept; everything else
  the grid does not need goes, unless it is held.

So a grid keeps at most ``sum(counts) + 1`` versions (plus held ones),
which is the number of target pools it needs (``grid_capacity``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from datetime import datetime, timedelta, timezone

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput

# finest first: the order a grid is shown in
GRID_UNITS = ("h", "d", "w", "m", "y")
_UNIT_WORDS = {"h": "hours", "d": "days", "w": "weeks", "m": "months", "y": "years"}
_BUCKET_RE = re.compile(r"\A([0-9]{1,6})([a-zA-Z]*)\Z")
_ACCEPTED = ("one or more buckets <count><unit> separated by spaces, each count a whole number of at least 1 and "
             "each unit at most once, units h (hours), d (days), w (weeks), m (months), y (years); for example "
             "'24h 7d 4w 12m 3y'")


def parse_grid(text, option="retention"):
    """The grid of ``text`` as ``((unit, count), ...)`` finest unit first.
    InvalidInput names the value and what is accepted. The one parser:
    the engine's definition check, the store and the rotation role's
    filter all call it."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("%s %r is not accepted: expected %s" % (option, text, _ACCEPTED))
    counts = {}
    for word in text.split():
        m = _BUCKET_RE.match(word)
        if m is None or m.group(2) not in GRID_UNITS:
            raise InvalidInput("%s %r is not accepted: bucket %r is not <count><unit>; expected %s" % (
                option, text, word, _ACCEPTED))
        if int(m.group(1)) < 1:
            raise InvalidInput("%s %r is not accepted: bucket %r keeps no version (a count must be at least 1; "
                               "leave the unit out instead); expected %s" % (option, text, word, _ACCEPTED))
        unit = m.group(2)
        if unit in counts:
            raise InvalidInput("%s %r is not accepted: unit %s (%s) is given twice; expected %s" % (
                option, text, unit, _UNIT_WORDS[unit], _ACCEPTED))
        counts[unit] = int(m.group(1))
    return tuple((u, counts[u]) for u in GRID_UNITS if u in counts)


def grid_capacity(grid):
    """The most versions ``grid`` keeps: one per bucket, plus the newest."""
    return sum(count for _unit, count in grid) + 1


def grid_text(grid):
    return " ".join("%d%s" % (count, unit) for unit, count in grid)


def _parse_created(text):
    # a record's ``created`` (_engine_common.iso); parsed here because the
    # engine's modules import the model, which imports this one
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def local(dt, tz=None):
    """``dt`` (aware) in the host's timezone (``tz`` None: the host's own,
    with the offset in force at that instant, so summer time is right), or
    in ``tz`` (tests)."""
    return dt.astimezone(tz) if tz is not None else dt.astimezone()


def _hour_start(dt):
    # the period begins at the top of the local hour, taken as an instant
    # (UTC): datetimes of one tzinfo subtract by their wall clocks, which
    # would count the hour skipped when summer time begins
    return dt.replace(minute=0, second=0, microsecond=0).astimezone(timezone.utc)


def _week_start(dt):
    d = dt.date()
    return d - timedelta(days=d.weekday())


def periods_ago(unit, then, now):
    """How many periods of ``unit`` lie between the period of ``then`` and
    that of ``now`` (both aware, in the host's timezone): 0 for the same
    period. A time after ``now`` (a clock set back) counts as now."""
    if unit == "h":
        n = int((_hour_start(now) - _hour_start(then)).total_seconds() // 3600)
    elif unit == "d":
        n = (now.date() - then.date()).days
    elif unit == "w":
        n = (_week_start(now) - _week_start(then)).days // 7
    elif unit == "m":
        n = (now.year * 12 + now.month) - (then.year * 12 + then.month)
    else:
        n = now.year - then.year
    return max(0, n)


def grid_needs(grid, records, now, tz=None, valid=None):
    """{version: [bucket, ...]}: the versions of ``records`` (replication
    records) that ``grid`` still needs at ``now`` (aware datetime), each
    with the buckets it represents (``"3d:2"``: the day two days back).
    Only versions ``valid(record)`` says are whole represent a bucket
    (default: every record)."""
    now_l = local(now, tz)
    dated = []
    for r in records:
        if valid is not None and not valid(r):
            continue
        dated.append((local(_parse_created(r.created), tz), r.version))
    dated.sort()
    needs = {}
    for unit, count in grid:
        seen = set()
        for when, version in dated:  # oldest first: the first of a period represents it
            ago = periods_ago(unit, when, now_l)
            if ago >= count or ago in seen:
                continue
            seen.add(ago)
            needs.setdefault(version, []).append("%d%s:%d" % (count, unit, ago))
    return needs


def grid_choice(grid, records, names, now, tz=None, valid=None):
    """(target pool, versions to drop) for a new version taken at ``now``
    in a pool whose target pools are ``names`` and whose replication
    records are ``records``. The target pool: an empty one first (name
    order), else the one holding the oldest version the grid no longer
    needs, else the one holding the oldest unheld version, else the oldest
    (a held version there refuses the copy, as without a grid). Dropped:
    every unheld version the grid does not need, except the one the new
    version replaces (that one goes as the replaced version).

    The new version cannot change which older versions are needed: it is
    the newest, and a period's representative is its oldest version."""
    needs = grid_needs(grid, records, now, tz, valid)
    occupied = sorted((r.version, r.target_pool) for r in records if r.target_pool in names)
    used = set(tp for _v, tp in occupied)
    held = set(r.version for r in records if r.held)
    empty = [tp for tp in names if tp not in used]
    droppable = [r for r in records if r.version not in needs and r.version not in held]
    if empty:
        tp = empty[0]
    else:
        by_pool = {}
        for v, pool in occupied:
            by_pool.setdefault(pool, []).append(v)
        free = [(vs[0], pool) for pool, vs in by_pool.items()
                if all(v not in needs and v not in held for v in vs)]
        unheld = [(vs[0], pool) for pool, vs in by_pool.items() if not any(v in held for v in vs)]
        tp = min(free or unheld or [(vs[0], pool) for pool, vs in by_pool.items()])[1]
    replaced = [v for v, pool in occupied if pool == tp]
    replaced_version = replaced[0] if replaced else None
    dropped = sorted((r for r in droppable if r.version != replaced_version), key=lambda r: r.version)
    return tp, dropped
