# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grid retention (issue 16 item 1): copy_pool ``retention`` such as
``24h 7d 4w 12m 3y``. The parser and the room check refuse bad grids naming
the value; the engine, driven through random sequences of copy times on the
in-memory host, keeps exactly what an independent model of the grid
predicts (the first copy of each of the last N periods of each unit, in the
host's timezone, plus the newest), never more than the grid allows plus
one, never deletes a held version, and check mode (the plan) says what
apply does. The real tools are proven in tests/real/test_grid.py (btrfs
natively, LVM and ZFS in the VM guests)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.pitcopy.versions.plugins.module_utils._definition import check_definition
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, StateFileError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._retention import grid_capacity, grid_needs, parse_grid
from ansible_collections.pitcopy.versions.plugins.module_utils._store import dump_state, load_state
from ansible_collections.pitcopy.versions.tests.utils.grid_model import expected_kept
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, SetClock, make_engine

try:
    from zoneinfo import ZoneInfo
    BERLIN = ZoneInfo("Europe/Berlin")  # summer time: days of 23 and 25 hours
except Exception:  # pragma: no cover - no tz database: a fixed offset still proves "not UTC"
    BERLIN = timezone(timedelta(hours=1))

GIB = 1024 ** 3
UTC = timezone.utc


# --- the syntax ---------------------------------------------------------------

@pytest.mark.parametrize("text,grid", [
    ("24h 7d 4w 12m 3y", (("h", 24), ("d", 7), ("w", 4), ("m", 12), ("y", 3))),
    ("6h 3d", (("h", 6), ("d", 3))),
    ("3d 6h", (("h", 6), ("d", 3))),  # any order; shown finest first
    ("  1y ", (("y", 1),)),
    ("12m", (("m", 12),)),
])
def test_grids_are_read(text, grid):
    assert parse_grid(text) == grid


@pytest.mark.parametrize("text,why", [
    ("24x", "'24x' is not <count><unit>"),
    ("0h", "'0h' keeps no version"),
    ("-1d", "'-1d' is not <count><unit>"),
    ("24h 2h", "unit h (hours) is given twice"),
    ("", "expected one or more buckets"),
    ("   ", "expected one or more buckets"),
    (None, "expected one or more buckets"),
    ("24", "'24' is not <count><unit>"),
    ("h", "'h' is not <count><unit>"),
    ("24H", "'24H' is not <count><unit>"),
    ("1.5d", "'1.5d' is not <count><unit>"),
    ("24h,7d", "'24h,7d' is not <count><unit>"),
])
def test_a_bad_grid_is_refused_naming_it_and_what_is_accepted(text, why):
    with pytest.raises(InvalidInput) as exc:
        parse_grid(text)
    assert "retention %r is not accepted" % (text,) in exc.value.msg
    assert why in exc.value.msg
    assert "h (hours), d (days), w (weeks), m (months), y (years)" in exc.value.msg


def _definition(retention, pools=10, versions=None, technology="lvm_clone"):
    return PoolDefinition(
        name="P", technology=technology, sources=("A",), versions=versions or pools,
        target_pools=tuple(TargetPool("%02d" % (i + 1), ("t%d" % i,)) for i in range(pools))
        if technology == "lvm_clone" else (), retention=retention)


def test_a_grid_needing_more_target_pools_than_exist_is_refused():
    check_definition(_definition("6h 3d", pools=10))  # 9 buckets and the newest: exactly enough
    with pytest.raises(InvalidInput) as exc:
        check_definition(_definition("6h 3d", pools=9))
    assert exc.value.msg.startswith("retention '6h 3d' keeps up to 10 versions (9 buckets, 6h 3d, and the newest "
                                    "copy), so it needs versions of at least 10 and as many target pools; copy pool "
                                    "P has versions 9 and 9 target pools")
    # versions below the grid's room, with enough target pools, is refused too
    with pytest.raises(InvalidInput) as exc:
        check_definition(_definition("6h 3d", pools=12, versions=5))
    assert "versions 5 and 12 target pools" in exc.value.msg
    # snapshot technologies: versions is the number of target pools
    with pytest.raises(InvalidInput) as exc:
        check_definition(_definition("2h", pools=2, technology="btrfs_snapshot"))
    assert "versions of at least 3" in exc.value.msg and "add target pools" not in exc.value.msg


def test_the_store_keeps_the_grid_and_refuses_a_bad_one():
    from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolState
    state = PoolState(definition=_definition("6h 3d"))
    assert load_state(dump_state(state)).definition.retention == "6h 3d"
    with pytest.raises(StateFileError) as exc:
        dump_state(PoolState(definition=_definition("6h 0d")))
    assert "retention '6h 0d' is not accepted" in exc.value.msg


def _env(tmp_path, retention, pools, start, tz=BERLIN):
    be = MemoryBackend("lvm_clone")
    for name in ["A"] + ["t%d" % i for i in range(pools)]:
        be.add_volume(name, size=GIB)
    clock = SetClock(start)
    engine = make_engine(tmp_path / "state", be, clock=clock)
    engine.tz = tz
    with engine.session("P") as s:
        s.plan_define(_definition(retention, pools=pools)).apply()
    return engine, be, clock


def _records(engine):
    with engine.session("P", shared=True) as s:
        return dict((r["version"], r) for r in s.info()["replication_records"])


def _copy_at(engine, clock, when):
    """copy_version at ``when``: its result."""
    clock.now = when
    with engine.session("P") as s:
        return s.plan_copy().apply()


def test_the_engine_refuses_a_grid_without_room_and_changes_nothing(tmp_path):
    engine, be, clock = _env(tmp_path, "2h", 3, datetime(2026, 3, 1, tzinfo=UTC))
    before = engine.store.read_raw("P")
    with engine.session("P") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_define(_definition("2h 1d", pools=3))
    assert "retention '2h 1d' keeps up to 4 versions" in exc.value.msg
    assert engine.store.read_raw("P") == before


def test_one_copy_counts_for_every_bucket_it_falls_in(tmp_path):
    # Monday 1 January 2029, 00:10 in Berlin (23:10 UTC the day before): the
    # first copy of that hour, day, week, month and year at once
    first = datetime(2029, 1, 1, 0, 10, tzinfo=BERLIN).astimezone(UTC)
    engine, be, clock = _env(tmp_path, "1h 1d 1w 1m 1y", 6, first)
    with engine.session("P") as s:
        s.plan_copy().apply()
    clock.now = first + timedelta(minutes=20)
    with engine.session("P") as s:
        plan = s.plan_copy()
        assert plan.result["deleted_versions"] == [] and plan.result["replaced_version"] is None
        plan.apply()
    # a third copy in the same hour: version 2 (neither first of anything,
    # nor the newest any more) goes, version 1 stays for all five buckets
    clock.now = first + timedelta(minutes=40)
    with engine.session("P") as s:
        needs = s.state.grid_choice(clock.now, engine.tz)
        assert [r.version for r in needs[1]] == [2]
        result = s.plan_copy().apply()
    assert result["deleted_versions"] == [2]
    assert sorted(_records(engine)) == [1, 3]


def test_days_begin_at_the_hosts_midnight_not_utcs(tmp_path):
    # 23:30 and 00:30 Berlin time are one UTC day but two Berlin days
    t1 = datetime(2026, 6, 10, 23, 30, tzinfo=BERLIN).astimezone(UTC)
    t2 = datetime(2026, 6, 11, 0, 30, tzinfo=BERLIN).astimezone(UTC)
    t3 = datetime(2026, 6, 11, 1, 30, tzinfo=BERLIN).astimezone(UTC)
    assert t1.date() == t2.date()
    engine, be, clock = _env(tmp_path, "2d", 3, t1)
    for t in (t1, t2, t3):
        result = _copy_at(engine, clock, t)
    # Berlin: v1 first of 10 June, v2 first of 11 June, v3 the newest -> all kept
    assert result["deleted_versions"] == [] and sorted(_records(engine)) == [1, 2, 3]
    # in UTC all three share a day: only v1 would represent it
    with engine.session("P", shared=True) as s:
        records = s.state.replication_records
    assert sorted(grid_needs(parse_grid("2d"), records, t3, BERLIN)) == [1, 2]
    assert sorted(grid_needs(parse_grid("2d"), records, t3, UTC)) == [1]


def test_hourly_buckets_rotate_through_the_target_pools(tmp_path):
    t0 = datetime(2026, 2, 2, 5, 0, tzinfo=UTC)
    engine, be, clock = _env(tmp_path, "3h", 4, t0, tz=UTC)
    for i in range(10):
        result = _copy_at(engine, clock, t0 + timedelta(hours=i))
        kept = sorted(_records(engine))
        assert kept == list(range(max(1, i - 1), i + 2)), (i, kept)  # the last 3 hours' copies
    # steady state: 3 kept in 4 target pools, so an empty one is always
    # there for the new version (filled first, as without a grid) and the
    # version that left the grid is deleted
    assert result["replaced_version"] is None and result["deleted_versions"] == [7]
    assert sorted(c["version"] for c in be.copies.values()) == [8, 9, 10]


def test_only_copy_version_deletes_what_the_grid_drops_when_it_makes_room(tmp_path):
    """The contract's "deleted when room is needed": the versions a grid no
    longer needs go when copy_version makes room for a new version (at that
    copy, listed in its deleted_versions), never when the pool is redefined
    with a tighter grid, verified or read."""
    t0 = datetime(2026, 2, 2, 5, 0, tzinfo=UTC)
    engine, be, clock = _env(tmp_path, "4h", 5, t0, tz=UTC)
    for i in range(4):
        _copy_at(engine, clock, t0 + timedelta(hours=i))
    assert sorted(_records(engine)) == [1, 2, 3, 4]
    # a tighter grid needs only v3 and v4 now: defining it deletes nothing
    with engine.session("P") as s:
        s.plan_define(_definition("2h", pools=5)).apply()
    clock.now = t0 + timedelta(hours=3, minutes=30)
    with engine.session("P") as s:
        assert s.plan_verify(repair=True).apply()["findings"] == []
    with engine.session("P", shared=True) as s:
        s.info()
    assert sorted(_records(engine)) == [1, 2, 3, 4]
    assert sorted(c["version"] for c in be.copies.values()) == [1, 2, 3, 4]
    # the next copy makes room: the empty target pool takes v5, and the
    # versions the grid dropped go with that copy, which lists them
    clock.now = t0 + timedelta(hours=4)
    with engine.session("P") as s:
        plan = s.plan_copy()
        assert plan.result["deleted_versions"] == [1, 2, 3]
        result = plan.apply()
    assert result["replaced_version"] is None and result["deleted_versions"] == [1, 2, 3]
    assert sorted(_records(engine)) == [4, 5]
    assert sorted(c["version"] for c in be.copies.values()) == [4, 5]


_GRIDS = st.dictionaries(st.sampled_from("hdwmy"), st.integers(1, 3), min_size=1, max_size=3)
# gaps between copies: minutes to weeks, many short so hours and days fill
_GAPS = st.lists(st.one_of(st.integers(1, 90), st.integers(60, 60 * 30), st.integers(60 * 24, 60 * 24 * 40)),
                 min_size=1, max_size=30)


_SLOW_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=40, deadline=None, suppress_health_check=_SLOW_OK)
@given(grid=_GRIDS, gaps=_GAPS, holds=st.lists(st.integers(0, 29), max_size=2, unique=True),
       start_minute=st.integers(0, 60 * 24 * 400))
def test_random_copy_times_keep_exactly_what_the_grid_predicts(tmp_path_factory, grid, gaps, holds, start_minute):
    text = " ".join("%d%s" % (c, u) for u, c in grid.items())
    g = parse_grid(text)
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=start_minute)
    # room for the grid and for the held versions beside it
    engine, be, clock = _env(tmp_path_factory.mktemp("grid"), text, grid_capacity(g) + len(holds), start)
    taken = []
    held = set()
    now = start
    for step, gap in enumerate([0] + gaps):
        now = now + timedelta(minutes=gap)
        clock.now = now
        with engine.session("P") as s:
            plan = s.plan_copy()
            promised = (plan.result["deleted_versions"], plan.result["replaced_version"],
                        [r["version"] for r in plan.after["replication_records"]])
            result = plan.apply()
        records = _records(engine)
        # check mode said what apply did
        assert (result["deleted_versions"], result["replaced_version"], sorted(records)) == promised
        taken.append((result["version"]["number"], now))
        # exactly the grid's choice, held versions beside it, never one deleted
        assert set(records) == expected_kept(g, taken, now, BERLIN) | held, (text, step)
        assert held <= set(records)
        assert len(set(records) - held) <= grid_capacity(g)
        # the copies on the (in-memory) host are those of the records
        assert sorted(c["version"] for c in be.copies.values()) == sorted(records)
        if step in holds:
            with engine.session("P") as s:
                s.plan_hold(result["version"]["number"], reason="property test").apply()
            held.add(result["version"]["number"])


@pytest.mark.parametrize("night", [datetime(2026, 3, 28, 20, 7, tzinfo=BERLIN),   # 23-hour day
                                   datetime(2026, 10, 24, 20, 7, tzinfo=BERLIN)])  # 25-hour day
def test_hours_are_counted_as_instants_across_the_summer_time_change(tmp_path, night):
    # datetimes of one tzinfo subtract by wall clock: an hour skipped or
    # repeated would shift every hourly bucket; the engine counts instants
    start = night.astimezone(UTC)
    engine, be, clock = _env(tmp_path, "6h 1d", 8, start)
    taken = []
    for hour in range(12):
        result = _copy_at(engine, clock, start + timedelta(hours=hour))
        taken.append((result["version"]["number"], clock.now))
        assert set(_records(engine)) == expected_kept(parse_grid("6h 1d"), taken, clock.now, BERLIN), hour
        # the last six hours' copies are always there, whatever the clocks did
        assert set(range(max(1, len(taken) - 5), len(taken) + 1)) <= set(_records(engine))


def test_an_interrupted_grid_copy_is_finished_at_the_time_of_its_journal(tmp_path):
    # killed while promoting version 4; repaired a day later. The repair
    # drops what the interrupted copy's plan said (judged at the journal's
    # time), not what the grid would say a day later (it would drop v1 too)
    t0 = datetime(2026, 5, 4, 10, 5, tzinfo=UTC)
    engine, be, clock = _env(tmp_path, "1h", 3, t0, tz=UTC)
    for minutes in (0, 15, 35):
        _copy_at(engine, clock, t0 + timedelta(minutes=minutes))
    assert sorted(_records(engine)) == [1, 3]  # v2 went with v3
    clock.now = t0 + timedelta(minutes=45)
    with engine.session("P") as s:
        promised = s.plan_copy().result
    assert (promised["replaced_version"], promised["deleted_versions"]) == (None, [3])

    def step(seen):
        if seen == "promote:A":
            raise KeyboardInterrupt  # as if killed here
    be.step = step
    with engine.session("P") as s:
        with pytest.raises(KeyboardInterrupt):
            s.plan_copy().apply()
    be.step = None
    clock.now = t0 + timedelta(days=1)
    with engine.session("P") as s:
        assert s.state.journal is not None and s.state.journal.version == 4
        s.plan_verify(repair=True).apply()
        assert s.state.journal is None
    assert sorted(_records(engine)) == [1, 4]
    assert sorted(c["version"] for c in be.copies.values()) == [1, 4]


def test_held_versions_are_never_picked_even_when_the_grid_has_no_room_left(tmp_path):
    t0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    engine, be, clock = _env(tmp_path, "2h", 3, t0, tz=UTC)
    for hour in range(3):
        _copy_at(engine, clock, t0 + timedelta(hours=hour))
        if hour == 1:
            for version in (1, 2):
                with engine.session("P") as s:
                    s.plan_hold(version, reason="audit").apply()
    assert sorted(_records(engine)) == [1, 2, 3]  # v1 left the grid at 12:00 but is held
    # 13:00: v1 and v2 held (outside the grid, kept beside it), v3 needed;
    # no target pool is free, so the oldest unheld version (v3) is replaced
    result = _copy_at(engine, clock, t0 + timedelta(hours=3))
    assert (result["replaced_version"], result["deleted_versions"]) == (3, [])
    assert sorted(_records(engine)) == [1, 2, 4]
    with engine.session("P") as s:
        s.plan_hold(4, reason="audit").apply()
    # every target pool holds a held version: refused before anything changes
    before = engine.store.read_raw("P")
    clock.now = t0 + timedelta(hours=4)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_copy()
    assert "version 1 is held" in exc.value.msg and engine.store.read_raw("P") == before


def test_the_next_version_is_pre_paired_where_the_grid_sends_it(tmp_path):
    t0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    engine, be, clock = _env(tmp_path, "2h", 3, t0, tz=UTC)
    for hour in range(3):
        _copy_at(engine, clock, t0 + timedelta(hours=hour))
    # 13:00: v2 (11:00) left the grid, v3 and the new one stay; v1 went at 12:00
    clock.now = t0 + timedelta(hours=3)
    with engine.session("P") as s:
        records = dict((r.version, r.target_pool) for r in s.state.replication_records)
        record = s.plan_prepair(versions=1).apply()["records"][0]
        tp = s.state.grid_choice(clock.now, UTC)[0]
    assert sorted(records) == [2, 3]
    assert record["version"] == 4 and record["target_pool"] == tp
    assert tp != records[3]  # never the pool of a version the grid needs
    with engine.session("P") as s:
        result = s.plan_copy().apply()
    assert result["version"]["target_pool"] == tp and result["version"]["pre_copy_record"] == "prepairing"
