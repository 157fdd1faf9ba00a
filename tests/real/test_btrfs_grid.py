# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grid retention on real btrfs (issue 16): a pool with ``retention: 6h 3d``
driven through three simulated days of hourly copies (the engine's clock is
set, nothing sleeps), across the night summer time begins in Berlin (a day
of 23 hours). At every step the versions kept are exactly what an
independent model of the grid predicts (tests/utils/grid_model.py), check
mode said so before the copy, and the snapshots on disk are those of the
records, each holding the data of its hour."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import read_mark, subvol_info
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._retention import grid_capacity, parse_grid
from ansible_collections.pitcopy.versions.tests.real.test_btrfs import BACKENDS, World, read, write
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import SetClock
from ansible_collections.pitcopy.versions.tests.utils.grid_model import expected_kept

pytestmark = pytest.mark.btrfs

try:
    from zoneinfo import ZoneInfo
    TZ = ZoneInfo("Europe/Berlin")
except Exception:  # pragma: no cover - no tz database: a fixed offset still is not UTC
    TZ = timezone(timedelta(hours=1))

GRID = "6h 3d"


class GridWorld(World):
    def definition(self):
        return replace(super(GridWorld, self).definition(), retention=GRID)


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_a_6h_3d_grid_over_three_days_of_hourly_copies(fs_pair, runner, tmp_path, technology):
    src, dst = fs_pair
    w = GridWorld(tmp_path, runner, src, dst, technology, name="grid")
    # 20:00 on 28 March 2026 in Berlin; summer time begins at 02:00 on the 29th
    start = datetime(2026, 3, 28, 20, 0, tzinfo=TZ).astimezone(timezone.utc)
    clock = SetClock(start)
    w.engine = RecordEngine(w.store, lambda tech: BACKENDS[tech](runner=runner), clock=clock, tz=TZ)
    grid = parse_grid(GRID)
    w.versions = grid_capacity(grid)  # 6 + 3 buckets and the newest: 10
    source = w.add_source("s1")
    if technology == "btrfs_send":
        w.make_target_pools(w.versions, 1)
    w.define()
    taken = []
    deleted_total = []
    for hour in range(72):
        clock.now = start + timedelta(hours=hour, minutes=7)
        write(os.path.join(source, "data"), "hour %d\n" % hour)
        with w.engine.session(w.name) as s:
            plan = s.plan_copy()
            promised = (plan.result["deleted_versions"], plan.result["replaced_version"],
                        sorted(r["version"] for r in plan.after["replication_records"]))
            result = plan.apply()
        taken.append((result["version"]["number"], clock.now))
        state = w.state()
        kept = sorted(r.version for r in state.replication_records)
        # check mode said what apply did, and the grid kept what it predicts
        assert (result["deleted_versions"], result["replaced_version"], kept) == promised, hour
        assert set(kept) == expected_kept(grid, taken, clock.now, TZ), (hour, kept)
        assert len(kept) <= grid_capacity(grid)
        deleted_total.extend(result["deleted_versions"])
        # the snapshots on disk are the records' (and nothing else of ours)
        on_disk = w.backend.list_copies(w.name, state.copy_scope())
        assert sorted(c.version for c in on_disk if not c.staged) == kept, hour
        for rec in state.replication_records:
            path = w.copy_path(rec.pairs[0])
            assert read_mark(path)["version"] == rec.version and subvol_info(path)["readonly"]
            hour_of = [v for v, _t in taken].index(rec.version)
            assert read(os.path.join(path, "data")) == "hour %d\n" % hour_of
    # the grid did drop versions along the way (not only by replacing)
    assert deleted_total
    # the end: the last 6 hours and the first copy of each of the 3 days
    final = sorted(r.version for r in w.state().replication_records)
    last = taken[-1][0]
    local_days = {}
    for v, t in taken:
        local_days.setdefault(t.astimezone(TZ).date(), v)
    firsts = sorted(local_days.values())[-3:]
    assert final == sorted(set(range(last - 5, last + 1)) | set(firsts))
    assert w.verify()["findings"] == [] and w.pitcopy_leftovers() == []
