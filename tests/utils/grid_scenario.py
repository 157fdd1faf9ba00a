# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grid retention on real storage (issue 16), written once for every
technology: a copy pool with ``retention: 6h 3d`` driven through three
simulated days of hourly copies (the engine's clock is set, nothing
sleeps), across the night summer time begins in Berlin (a day of 23
hours). At every step the versions kept are exactly what an independent
model of the grid predicts (tests/utils/grid_model.py), check mode said so
before the copy, and the copies on disk are those of the records, each
holding the data of its hour.

A world (tests/real/test_grid.py has one per technology) has ``name``,
``technology``, ``store``, ``backend`` (the technology's backend on the
real tool) and:

- ``engine_with(clock, tz)``: a RecordEngine over ``store`` with that clock;
- ``definition(retention, versions)``: the PoolDefinition of the pool;
- ``write(text)``: the source's data becomes ``text``;
- ``read_copies(records)``: ``{version: text}``, the data each record's copy
  holds, read from the storage (and its own checks of the copy: read-only,
  marked);
- ``leftovers()``: anything of ours on the storage besides the records'
  copies (a list, empty when clean)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time
from datetime import datetime, timedelta, timezone

from ansible_collections.pitcopy.versions.plugins.module_utils._retention import grid_capacity, parse_grid
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import SetClock
from ansible_collections.pitcopy.versions.tests.utils.grid_model import expected_kept

try:
    from zoneinfo import ZoneInfo
    TZ = ZoneInfo("Europe/Berlin")
except Exception:  # pragma: no cover - no tz database: a fixed offset still is not UTC
    TZ = timezone(timedelta(hours=1))

GRID = "6h 3d"
HOURS = 72
# 20:00 on 28 March 2026 in Berlin; summer time begins at 02:00 on the 29th
START = datetime(2026, 3, 28, 20, 0, tzinfo=TZ).astimezone(timezone.utc)


def hourly_grid_days(world, grid_text=GRID, hours=HOURS):
    """Runs the scenario on ``world``; returns the seconds it took."""
    t0 = time.monotonic()
    clock = SetClock(START)
    engine = world.engine_with(clock, TZ)
    grid = parse_grid(grid_text)
    versions = grid_capacity(grid)  # 6 + 3 buckets and the newest: 10
    with engine.session(world.name) as s:
        s.plan_define(world.definition(grid_text, versions)).apply()
    taken = []
    deleted_total = []
    for hour in range(hours):
        clock.now = START + timedelta(hours=hour, minutes=7)
        world.write("hour %d\n" % hour)
        with engine.session(world.name) as s:
            plan = s.plan_copy()
            promised = (plan.result["deleted_versions"], plan.result["replaced_version"],
                        sorted(r["version"] for r in plan.after["replication_records"]))
            result = plan.apply()
        taken.append((result["version"]["number"], clock.now))
        state = world.store.load(world.name)
        kept = sorted(r.version for r in state.replication_records)
        # check mode said what apply did, and the grid kept what it predicts
        assert (result["deleted_versions"], result["replaced_version"], kept) == promised, hour
        assert set(kept) == expected_kept(grid, taken, clock.now, TZ), (hour, kept)
        assert len(kept) <= versions
        assert all(r.status == "valid" for r in state.replication_records), hour
        deleted_total.extend(result["deleted_versions"])
        # the copies on disk are the records' (and nothing else of ours)
        on_disk = world.backend.list_copies(world.name, state.copy_scope())
        assert sorted(c.version for c in on_disk if not c.staged) == sorted(
            r.version for r in state.replication_records for _p in r.pairs), hour
        assert not [c for c in on_disk if c.staged], hour
        # each holds the data of its hour
        hour_of = dict((v, i) for i, (v, _t) in enumerate(taken))
        got = world.read_copies(state.replication_records)
        assert got == dict((v, "hour %d\n" % hour_of[v]) for v in kept), hour
    # the grid did drop versions along the way (not only by replacing)
    assert deleted_total
    # the end: the last 6 hours and the first copy of each of the 3 days
    final = sorted(r.version for r in world.store.load(world.name).replication_records)
    last = taken[-1][0]
    local_days = {}
    for v, t in taken:
        local_days.setdefault(t.astimezone(TZ).date(), v)
    firsts = sorted(local_days.values())[-3:]
    assert final == sorted(set(range(last - 5, last + 1)) | set(firsts))
    with engine.session(world.name) as s:
        assert s.plan_verify(repair=False).result["findings"] == []
    assert world.leftovers() == []
    return time.monotonic() - t0
