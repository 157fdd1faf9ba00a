# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Monitoring (issue 16 item 5): _monitor's checks of a pool on a real
StateStore with the in-memory host, the Prometheus textfile (parsed by
prometheus_client's own parser), the Nagios plugin's exit codes and output.
The plugin against real btrfs state files: tests/real/test_monitor_btrfs.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import os
import stat
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.pitcopy.versions.plugins.module_utils import _monitor
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, SetClock, make_engine

GIB = 1024 ** 3
T0 = datetime(2026, 11, 25, 0, 0, 0, tzinfo=timezone.utc)


def _world(tmp_path, pools=("P",), max_age="26h"):
    be = MemoryBackend("lvm_clone")
    clock = SetClock(T0)
    engine = make_engine(tmp_path / "state", be, clock=clock)
    for pool in pools:
        for name in (pool + "-src", pool + "-a", pool + "-b"):
            be.add_volume(name, size=GIB)
        d = PoolDefinition(name=pool, technology="lvm_clone", sources=(pool + "-src",), versions=2,
                           target_pools=(TargetPool("01", (pool + "-a",)), TargetPool("02", (pool + "-b",))),
                           max_age=max_age)
        with engine.session(pool) as s:
            s.plan_define(d).apply()
    return engine, be, clock


def _copy(engine, pool="P"):
    with engine.session(pool) as s:
        return s.plan_copy().apply()


def _families(text):
    """{metric name: {pool label or None: value}} as Prometheus reads the text."""
    out = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge" and family.documentation
        for sample in family.samples:
            out.setdefault(sample.name, {})[sample.labels.get("pool")] = sample.value
    return out


def _run(engine, argv):
    out = io.StringIO()
    code = _monitor.run(argv, engine_factory=lambda state_dir, lock_timeout: engine, out=out)
    return code, out.getvalue()


def test_a_fresh_consistent_pool_is_ok_with_its_numbers(tmp_path):
    engine, _be, clock = _world(tmp_path)
    _copy(engine)
    clock.now = T0 + timedelta(hours=2)
    [h] = _monitor.collect(engine)
    assert (h.name, h.checked, h.readable, h.consistent, h.stale) == ("P", True, True, True, False)
    assert (h.newest_valid_age, h.max_age_seconds, h.versions_kept, h.versions_held) == (7200, 93600, 1, 0)
    code, out = _monitor.nagios([h])
    assert code == _monitor.OK
    first = out.splitlines()[0]
    assert first.startswith("PITCOPY OK - 1 copy pool OK | ")
    assert "'P_age'=7200s;93600;;0" in first and "'P_kept'=1;;;0" in first and "'P_held'=0;;;0" in first


def test_past_max_age_is_warning_and_stale_in_the_textfile(tmp_path):
    engine, _be, clock = _world(tmp_path)
    _copy(engine)
    clock.now = T0 + timedelta(hours=27)
    code, out = _run(engine, [])
    assert code == _monitor.WARNING, out
    assert out.startswith("PITCOPY WARNING - P: stale") and "STALE" in out and "1d 3h old" in out
    metrics = _families(_monitor.prometheus_text(_monitor.collect(engine)))
    assert metrics["pitcopy_stale"] == {"P": 1.0}
    assert metrics["pitcopy_records_consistent"] == {"P": 1.0}
    assert metrics["pitcopy_newest_valid_version_age_seconds"] == {"P": 27 * 3600.0}


def test_no_valid_version_is_infinitely_old(tmp_path):
    engine, _be, _clock = _world(tmp_path)
    [h] = _monitor.collect(engine)
    assert h.stale is True and h.newest_valid_age is None
    metrics = _families(_monitor.prometheus_text([h]))
    assert metrics["pitcopy_newest_valid_version_age_seconds"]["P"] == float("inf")
    assert _monitor.nagios([h])[0] == _monitor.WARNING


def test_a_copy_deleted_behind_our_back_is_critical(tmp_path):
    engine, be, clock = _world(tmp_path)
    _copy(engine)
    clock.now = T0 + timedelta(hours=1)
    del be.copies["P-a"]
    code, out = _run(engine, [])
    assert code == _monitor.CRITICAL, out
    assert out.startswith("PITCOPY CRITICAL - P: records do not match the host")
    assert "copy_missing (v1 P-a)" in out
    metrics = _families(_monitor.prometheus_text(_monitor.collect(engine)))
    assert metrics["pitcopy_records_consistent"] == {"P": 0.0}
    assert metrics["pitcopy_verify_problems"] == {"P": 1.0}


def test_a_damaged_state_file_is_unknown_for_that_pool_only(tmp_path):
    engine, _be, clock = _world(tmp_path, pools=("P", "Q"))
    _copy(engine, "P")
    _copy(engine, "Q")
    clock.now = T0 + timedelta(hours=1)
    path = engine.store.path("P")
    with open(path, "a") as f:
        f.write("tampered: true\n")
    before = open(path, "rb").read()
    health = _monitor.collect(engine)
    p, q = health
    assert (p.readable, p.checked, q.checked, q.consistent) == (False, False, True, True)
    assert "P" in p.error
    code, out = _monitor.nagios(health)
    assert code == _monitor.UNKNOWN
    assert out.startswith("PITCOPY UNKNOWN - P: not checked") and "OK: Q:" in out
    metrics = _families(_monitor.prometheus_text(health))
    assert metrics["pitcopy_state_readable"] == {"P": 0.0, "Q": 1.0}
    assert "P" not in metrics["pitcopy_versions_kept"] and metrics["pitcopy_versions_kept"]["Q"] == 1.0
    assert open(path, "rb").read() == before  # monitoring never repairs nor rewrites


def test_critical_outranks_unknown_outranks_warning(tmp_path):
    engine, be, clock = _world(tmp_path, pools=("P", "Q", "R"))
    for pool in ("P", "Q", "R"):
        _copy(engine, pool)
    clock.now = T0 + timedelta(hours=30)  # all stale
    with open(engine.store.path("Q"), "w") as f:
        f.write("{not yaml")
    del be.copies["R-a"]
    code, out = _monitor.nagios(_monitor.collect(engine))
    assert code == _monitor.CRITICAL
    assert out.startswith("PITCOPY CRITICAL - R: records do not match the host; also P WARNING, Q UNKNOWN")


def test_a_pool_busy_past_the_bounded_wait_is_unknown_not_waited_for(tmp_path):
    engine, _be, _clock = _world(tmp_path, pools=("P", "Q"))
    reader = make_engine(tmp_path / "state", MemoryBackend("lvm_clone"))
    reader.store.lock_timeout = 0.2
    writer = StateStore(str(tmp_path / "state"))
    with writer.locked("P"):  # a long copy of P holds the writer's lock
        health = _monitor.collect(reader)
    p, q = health
    assert (p.busy, p.readable, p.checked) == (True, True, False) and "busy" in p.error
    assert q.checked
    metrics = _families(_monitor.prometheus_text(health))
    assert metrics["pitcopy_pool_busy"] == {"P": 1.0, "Q": 0.0}
    assert "P" not in metrics["pitcopy_state_readable"]
    assert _monitor.nagios(health)[0] == _monitor.UNKNOWN


def test_readers_do_not_wait_for_each_other(tmp_path):
    engine, _be, _clock = _world(tmp_path)
    _copy(engine)
    engine.store.lock_timeout = 0
    other = StateStore(str(tmp_path / "state"))
    with other.locked("P", shared=True):  # another monitor, or copy_pool_info
        [h] = _monitor.collect(engine)
    assert h.checked and h.consistent


def test_no_pools_is_unknown(tmp_path):
    engine = make_engine(tmp_path / "nothing", MemoryBackend("lvm_clone"))
    code, out = _run(engine, [])
    assert code == _monitor.UNKNOWN and out.startswith("PITCOPY UNKNOWN - no copy pools to check")


def test_a_pool_that_does_not_exist_is_unknown(tmp_path):
    engine, _be, _clock = _world(tmp_path)
    code, out = _run(engine, ["--pool", "nope"])
    assert code == _monitor.UNKNOWN and "nope" in out and "does not exist" in out


@pytest.mark.parametrize("argv,words", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--last-run-success", "2"], "invalid choice: '2'"),
    (["--textfile", "/tmp/pitcopy.txt"], "'/tmp/pitcopy.txt' is not accepted"),
    (["--copy-window", "P"], "--copy-window 'P' is not accepted"),
    (["--copy-window", "P=-1"], "--copy-window 'P=-1' is not accepted"),
    (["--lock-timeout", "-1"], "--lock-timeout -1.0 is not accepted"),
])
def test_bad_arguments_are_unknown_naming_the_value(argv, words, tmp_path):
    calls = []
    out = io.StringIO()
    code = _monitor.run(argv, engine_factory=lambda *a: calls.append(a), out=out)
    assert code == _monitor.UNKNOWN and out.getvalue().startswith("PITCOPY UNKNOWN - ")
    assert words in out.getvalue()
    assert not calls  # nothing was read


def test_the_textfile_is_written_atomically_and_parses(tmp_path):
    engine, _be, clock = _world(tmp_path, pools=("P", "Q"))
    _copy(engine, "P")
    clock.now = T0 + timedelta(minutes=5)
    prom_dir = tmp_path / "textfile"
    prom_dir.mkdir()
    path = prom_dir / "pitcopy.prom"
    path.write_text("old\n")
    code, out = _run(engine, ["--textfile", str(path), "--last-run-success", "0", "--copy-window", "P=1250"])
    assert code == 0, out  # the file was written, whatever the pools say
    assert out.startswith("PITCOPY WARNING - Q: stale")
    assert os.listdir(str(prom_dir)) == ["pitcopy.prom"]  # no temporary file left
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == 0o644
    metrics = _families(path.read_text())
    assert metrics["pitcopy_last_run_success"] == {None: 0.0}
    assert metrics["pitcopy_last_copy_window_seconds"] == {"P": 1.25}
    assert metrics["pitcopy_newest_valid_version_age_seconds"] == {"P": 300.0, "Q": float("inf")}
    assert metrics["pitcopy_versions_kept"] == {"P": 1.0, "Q": 0.0}
    assert metrics["pitcopy_max_age_seconds"] == {"P": 93600.0, "Q": 93600.0}
    assert metrics["pitcopy_stale"] == {"P": 0.0, "Q": 1.0}
    assert metrics["pitcopy_state_readable"] == {"P": 1.0, "Q": 1.0}
    assert set(metrics["pitcopy_monitor_timestamp_seconds"]) == {None}


def test_a_textfile_that_cannot_be_written_fails_and_says_why(tmp_path):
    engine, _be, _clock = _world(tmp_path)
    code, out = _run(engine, ["--textfile", str(tmp_path / "missing" / "pitcopy.prom")])
    assert code == 1 and "cannot write the textfile" in out and "missing" in out


def test_label_values_and_help_are_escaped():
    h = _monitor.PoolHealth('we"ird\\po\nol')
    h.versions_kept, h.versions_valid, h.versions_held, h.consistent = 2, 2, 1, True
    text = _monitor.prometheus_text([h], now=1.5)
    assert 'pitcopy_versions_kept{pool="we\\"ird\\\\po\\nol"} 2' in text
    metrics = _families(text)
    assert metrics["pitcopy_versions_held"] == {'we"ird\\po\nol': 1.0}
    assert metrics["pitcopy_monitor_timestamp_seconds"] == {None: 1.5}
    assert "pitcopy_last_run_success" not in metrics  # not given: not claimed


def test_held_versions_are_counted_when_records_carry_held(tmp_path):
    """Records of the holds work carry ``held``; today's do not (counted 0)."""
    rec = SimpleNamespace(version=3, status="valid", held=True, created="2026-11-25T00:00:00Z")
    free = SimpleNamespace(version=2, status="valid", held=False, created="2026-11-24T00:00:00Z")
    state = SimpleNamespace(replication_records=(free, rec), definition=SimpleNamespace(max_age=None))

    class Session:
        def __init__(self):
            self.state = state

        def info(self):
            return {}

        def plan_verify(self, repair=False):
            assert repair is False
            return SimpleNamespace(result={"consistent": True, "findings": []})

    class Engine:
        def pool_names(self):
            return ["P"]

        def clock(self):
            return T0 + timedelta(hours=1)

        def session(self, name, shared=False):
            assert shared is True
            import contextlib
            return contextlib.nullcontext(Session())

    [h] = _monitor.collect(Engine())
    assert (h.versions_kept, h.versions_held, h.newest_valid_version, h.newest_valid_age) == (2, 1, 3, 3600)
    assert h.stale is None and _monitor.nagios([h])[0] == _monitor.OK
