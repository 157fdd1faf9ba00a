# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grid retention on real storage (issue 16), written once for every
technology: a copy pool with ``retention: 6h 3d`` driven through simulated
days of copies (the engine's clock is set, nothing sleeps), across the
night summer time begins in Berlin (a day of 23 hours).

After every copy the records are checked in-process: check mode said what
apply did, and the versions kept are exactly what an independent model of
the grid predicts (tests/utils/grid_model.py). At the checkpoints (every
copy, or the hours ``check_at`` names, and always the last) the storage is
read too: the copies on disk are those of the records, nothing staged, each
holding the data of its hour.

Two schedules (hours after START of the copies):

- ``HOURLY``: 72 hourly copies, three days; btrfs natively, and every VM
  technology with ``--pitcopy-grid=full`` (opt-in stages vm-lvm-grid and
  vm-zfs-grid).
- ``EVENTS``: the 7 copies that make each of the grid's events happen at
  least once, for the VM guests' default runs (a ZFS copy costs ~11 s in
  the emulated guest): the first copy of a day (0) and one more (1), copies
  on both sides of the summer-time gap (5 at 01:07, 6 at 03:07), one hour
  ages out alone (at 7, hour 1's copy goes), a day later two go at one copy
  (at 28, hours 6's and 7's), and the first day leaves the 3 days (at 51,
  hour 0's).

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
# 20:00 on 28 March 2026 in Berlin; summer time begins at 02:00 on the 29th
START = datetime(2026, 3, 28, 20, 0, tzinfo=TZ).astimezone(timezone.utc)
HOURLY = tuple(range(72))
EVENTS = (0, 1, 5, 6, 7, 28, 51)


def _check_storage(world, state, taken, hour):
    """The copies on disk are the records' (and nothing else of ours), none
    staged, each holding the data of its hour."""
    on_disk = world.backend.list_copies(world.name, state.copy_scope())
    assert sorted(c.version for c in on_disk if not c.staged) == sorted(
        r.version for r in state.replication_records for _p in r.pairs), hour
    assert not [c for c in on_disk if c.staged], hour
    hour_of = dict((v, h) for v, _t, h in taken)
    got = world.read_copies(state.replication_records)
    assert got == dict((r.version, "hour %d\n" % hour_of[r.version]) for r in state.replication_records), hour


def grid_scenario(world, hours=HOURLY, check_at=None, grid_text=GRID):
    """Runs the scenario on ``world``: a copy at 7 past each of ``hours``
    (after START); the storage read after every copy, or after those of
    ``check_at`` and the last. Returns (seconds in all, seconds reading the
    storage at the checkpoints, number of checkpoints)."""
    t0 = time.monotonic()
    clock = SetClock(START)
    engine = world.engine_with(clock, TZ)
    grid = parse_grid(grid_text)
    versions = grid_capacity(grid)  # 6 + 3 buckets and the newest: 10
    with engine.session(world.name) as s:
        s.plan_define(world.definition(grid_text, versions)).apply()
    taken = []  # (version, time, hour)
    deleted = []  # each copy's deleted_versions
    checking, checks = 0.0, 0
    for hour in hours:
        clock.now = START + timedelta(hours=hour, minutes=7)
        world.write("hour %d\n" % hour)
        with engine.session(world.name) as s:
            plan = s.plan_copy()
            promised = (plan.result["deleted_versions"], plan.result["replaced_version"],
                        sorted(r["version"] for r in plan.after["replication_records"]))
            result = plan.apply()
        taken.append((result["version"]["number"], clock.now, hour))
        state = world.store.load(world.name)
        kept = sorted(r.version for r in state.replication_records)
        # check mode said what apply did, and the grid kept what it predicts
        assert (result["deleted_versions"], result["replaced_version"], kept) == promised, hour
        assert set(kept) == expected_kept(grid, [(v, t) for v, t, _h in taken], clock.now, TZ), (hour, kept)
        assert len(kept) <= versions
        assert all(r.status == "valid" for r in state.replication_records), hour
        deleted.append(result["deleted_versions"])
        if check_at is None or hour in check_at or hour == hours[-1]:
            t1 = time.monotonic()
            _check_storage(world, state, taken, hour)
            checking += time.monotonic() - t1
            checks += 1
    # the grid dropped versions along the way, several at one copy too
    assert max(len(d) for d in deleted) >= 2, deleted
    # the end, counted apart from the model: the copies of the last 6 hours
    # and the first copy of each of the last 3 local days
    final = sorted(r.version for r in world.store.load(world.name).replication_records)
    now = taken[-1][1]
    recent = set(v for v, t, _h in taken if now - t < timedelta(hours=6))
    local_days = {}
    for v, t, _h in taken:
        local_days.setdefault(t.astimezone(TZ).date(), v)
    last_days = [now.astimezone(TZ).date() - timedelta(days=i) for i in range(3)]
    assert final == sorted(recent | set(local_days[d] for d in last_days if d in local_days)), final
    with engine.session(world.name) as s:
        assert s.plan_verify(repair=False).result["findings"] == []
    assert world.leftovers() == []
    return time.monotonic() - t0, checking, checks
