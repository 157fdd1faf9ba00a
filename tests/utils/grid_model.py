# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A model of grid retention (copy_pool ``retention``) written apart from
the engine's (plugins/module_utils/_retention.py), which the unit property
test and the real btrfs test check the engine against: the periods are
found by stepping back through the calendar in the host's timezone, and a
grid keeps the first copy ever taken in each of its periods plus the newest."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import date, datetime, time, timedelta, timezone

UTC = timezone.utc


def _period_starts(unit, count, now_local, tz):
    """The starts (aware) of the ``count`` most recent periods of ``unit``
    at ``now_local``, newest first: built by stepping back through the
    calendar, not with the engine's arithmetic."""
    starts = []
    if unit == "h":
        top = now_local.replace(minute=0, second=0, microsecond=0)
        for i in range(count):
            starts.append((top.astimezone(UTC) - timedelta(hours=i)).astimezone(tz))
        return starts
    d = now_local.date()
    if unit == "w":
        d = d - timedelta(days=d.weekday())
    elif unit == "m":
        d = d.replace(day=1)
    elif unit == "y":
        d = d.replace(month=1, day=1)
    for _i in range(count):
        starts.append(datetime.combine(d, time(0), tzinfo=tz))
        if unit == "d":
            d = d - timedelta(days=1)
        elif unit == "w":
            d = d - timedelta(days=7)
        elif unit == "m":
            d = (d - timedelta(days=1)).replace(day=1)
        else:
            d = date(d.year - 1, 1, 1)
    return starts


def expected_kept(grid, taken, now, tz):
    """{version}: the first copy ever taken in each of the grid's periods at
    ``now``, and the newest (``taken``: [(version, utc time)] in order)."""
    now_local = now.astimezone(tz)
    keep = {taken[-1][0]}
    for unit, count in grid:
        starts = _period_starts(unit, count, now_local, tz)
        for i, start in enumerate(starts):
            end = starts[i - 1] if i > 0 else None
            inside = [v for v, t in taken if t >= start and (end is None or t < end)]
            if inside:
                keep.add(inside[0])
    return keep
