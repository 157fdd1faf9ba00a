# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Freshness (issue 16 item 4): ``max_age`` on a copy pool; verify_records
reports ``stale`` when the newest valid version is older (or none is
valid), copy_pool_info returns ``newest_valid_age``. Ages come from the
records' ``created`` and the engine's clock; the storage plays no part, so
the in-memory host is the whole truth here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._definition import age_seconds
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, SetClock, make_engine

GIB = 1024 ** 3
T0 = datetime(2026, 11, 25, 0, 0, 0, tzinfo=timezone.utc)


def _env(tmp_path, max_age="26h"):
    be = MemoryBackend("lvm_clone")
    for name in ("A", "a", "b"):
        be.add_volume(name, size=GIB)
    clock = SetClock(T0)
    engine = make_engine(tmp_path / "state", be, clock=clock)
    d = PoolDefinition(name="P", technology="lvm_clone", sources=("A",), versions=2,
                       target_pools=(TargetPool("01", ("a",)), TargetPool("02", ("b",))), max_age=max_age)
    with engine.session("P") as s:
        s.plan_define(d).apply()
    return engine, be, clock


def _verify(engine, repair=False):
    with engine.session("P") as s:
        plan = s.plan_verify(repair=repair)
        return plan.changed, plan.apply()


def _info(engine):
    with engine.session("P", shared=True) as s:
        return s.info()


@pytest.mark.parametrize("text,seconds", [("40s", 40), ("30m", 1800), ("26h", 93600), ("8d", 691200),
                                          ("2w", 1209600)])
def test_ages_are_read_in_their_units(text, seconds):
    assert age_seconds(text) == seconds


@pytest.mark.parametrize("text", ["0h", "26", "h", "1.5h", "-1d", "2 days", "26H", " 26h", "1y", "", None, 26])
def test_a_bad_age_is_refused_naming_it(text):
    with pytest.raises(InvalidInput) as exc:
        age_seconds(text)
    assert repr(text) in exc.value.msg and "s, m, h, d or w" in exc.value.msg


def test_no_valid_version_is_stale_and_info_says_none(tmp_path):
    engine, _be, _clock = _env(tmp_path)
    changed, result = _verify(engine)
    assert not changed and result["consistent"] is True
    assert [(f["problem"], f["version"]) for f in result["findings"]] == [("stale", None)]
    assert "copy pool P has no valid version" in result["findings"][0]["action"]
    assert _info(engine)["newest_valid_age"] is None and _info(engine)["max_age"] == "26h"


def test_stale_once_the_newest_valid_version_is_older_than_max_age(tmp_path):
    engine, _be, clock = _env(tmp_path)
    with engine.session("P") as s:
        s.plan_copy().apply()
    clock.now = T0 + timedelta(hours=26)  # exactly max_age: still fresh
    assert _verify(engine)[1] == {"consistent": True, "findings": []}
    assert _info(engine)["newest_valid_age"] == 26 * 3600
    clock.now = T0 + timedelta(hours=27, minutes=5)
    changed, result = _verify(engine)
    assert result["consistent"] is True and not changed
    (f,) = result["findings"]
    assert (f["record"], f["version"], f["problem"]) == ("replication", 1, "stale")
    assert "version, 1, was taken at 2026-11-25T00:00:00Z, 1d 3h ago, longer than max_age 26h" in f["action"]
    # a repair cannot take copies: nothing changes, the finding stays
    before = engine.store.read_raw("P")
    changed, result = _verify(engine, repair=True)
    assert not changed and [x["problem"] for x in result["findings"]] == ["stale"]
    assert engine.store.read_raw("P") == before
    # a new copy makes the pool fresh again
    with engine.session("P") as s:
        s.plan_copy().apply()
    assert _verify(engine)[1] == {"consistent": True, "findings": []}
    assert _info(engine)["newest_valid_age"] == 0


def test_an_invalid_newer_version_does_not_count(tmp_path):
    engine, be, clock = _env(tmp_path)
    with engine.session("P") as s:
        s.plan_copy().apply()
    clock.now = T0 + timedelta(hours=20)
    with engine.session("P") as s:
        s.plan_copy().apply()
    be.invalidate("b")  # version 2's copy no longer holds its data: it is no backup
    with engine.session("P") as s:
        s.plan_verify(repair=True).apply()
    assert engine.store.load("P").replication(2).status == "invalid"
    clock.now = T0 + timedelta(hours=30)
    result = _verify(engine)[1]
    assert ("stale", 1) in [(f["problem"], f["version"]) for f in result["findings"]]
    assert _info(engine)["newest_valid_age"] == 30 * 3600


def test_without_max_age_nothing_is_reported_and_the_file_has_no_key(tmp_path):
    engine, _be, clock = _env(tmp_path, max_age=None)
    clock.now = T0 + timedelta(days=400)
    assert _verify(engine)[1] == {"consistent": True, "findings": []}
    assert b"max_age" not in engine.store.read_raw("P")


def test_max_age_is_kept_in_the_state_file_and_changes_the_definition(tmp_path):
    engine, _be, _clock = _env(tmp_path)
    assert b"max_age: 26h\n" in engine.store.read_raw("P")
    d = engine.store.load("P").definition
    assert d.max_age == "26h"
    with engine.session("P") as s:
        plan = s.plan_define(PoolDefinition(**dict(d.__dict__, max_age="8d")))
        assert plan.changed
        plan.apply()
    assert engine.store.load("P").definition.max_age == "8d"
