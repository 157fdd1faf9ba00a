# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crash tests of the copy method: a copy runs in a child process on a
file-backed test backend and the real state store, and is SIGKILLed at every
step (before and after every state save and every backend call, and inside
the backend between pairs). The next run must find the old or the new
records, plus the journal of the interrupted copy, and verify_records with
repair must leave a consistent pool that takes the next version."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import signal
import subprocess
import sys

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import FileBackend, make_engine

CHILD = r'''
import os, signal, sys
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import FileBackend, SimpleWindow, FakeClock
from ansible_collections.pitcopy.versions.tests.utils.kill_points import Steps

step = Steps(int(os.environ["KILL_AT"]))

class Store(StateStore):
    def save(self, state):
        step("before save %s" % (state.journal.phase if state.journal else "final"))
        super(Store, self).save(state)
        step("after save %s" % (state.journal.phase if state.journal else "final"))

class Backend(FileBackend):
    pass

for method in ("prepare", "take_point_in_time", "transfer", "undo", "release", "promote", "discard",
               "delete_copies"):
    def wrap(method=method):
        inner = getattr(FileBackend, method)
        def call(self, *a, **kw):
            step("before " + method)
            out = inner(self, *a, **kw)
            step("after " + method)
            return out
        setattr(Backend, method, call)
    wrap()

be = Backend(sys.argv[2], sys.argv[3])
be.step = step
engine = RecordEngine(Store(sys.argv[1]), lambda t: be, clock=FakeClock(step_seconds=3600 * 24),
                      window_factory=SimpleWindow)
with engine.session("P") as s:
    s.plan_copy().apply()
print("DONE")
'''


def _setup(base, technology):
    state_dir = os.path.join(str(base), "state")
    host = os.path.join(str(base), "host.json")
    be = FileBackend(host, technology)
    for name in ("vg/A", "vg/B", "vg/C"):
        be.add_volume(name)
        be.set_data(name, name + "@old")
    if technology == "lvm_clone":
        for name in ("vg/a", "vg/b", "vg/c", "vg/d", "vg/e", "vg/f"):
            be.add_volume(name)
        tps = (TargetPool("01", ("vg/a", "vg/b", "vg/c")), TargetPool("02", ("vg/d", "vg/e", "vg/f")))
    else:
        tps = ()
    engine = make_engine(state_dir, be)
    with engine.session("P") as s:
        s.plan_define(PoolDefinition("P", technology, ("vg/A", "vg/B", "vg/C"), 2, tps)).apply()
        s.plan_copy().apply()
        s.plan_copy().apply()
    be.set_data("vg/A", "vg/A@new")
    return state_dir, host


def _run_child(script, state_dir, host, technology, kill_at):
    env = dict(os.environ)
    env["KILL_AT"] = str(kill_at)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return subprocess.run([sys.executable, script, state_dir, host, technology], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120,
                          check=False)


@pytest.mark.parametrize("technology", ["lvm_clone", "lvm_thin"])
def test_sigkill_at_every_step_of_a_copy(tmp_path, technology):
    script = str(tmp_path / "child.py")
    with open(script, "w") as f:
        f.write(CHILD)
    golden = tmp_path / "golden"
    golden.mkdir()
    state_dir, host = _setup(golden, technology)
    old = make_engine(state_dir, FileBackend(host, technology)).store.load("P")
    assert old.last_version == 2 and old.journal is None

    outcomes = []
    kill_at = 0
    while True:
        kill_at += 1
        assert kill_at < 60, "the copy never finished"
        work = tmp_path / ("k%02d" % kill_at)
        shutil.copytree(str(golden), str(work), symlinks=True)
        sdir, shost = str(work / "state"), str(work / "host.json")
        proc = _run_child(script, sdir, shost, technology, kill_at)
        if proc.returncode == 0:
            assert "DONE" in proc.stdout
            break
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        last_step = proc.stdout.strip().splitlines()[-1]

        be = FileBackend(shost, technology)
        engine = make_engine(sdir, be)
        with engine.session("P") as s:
            state = s.state  # parses: the file was never torn
            if state.last_version == 2:
                # the old records, with or without the journal of the copy
                assert state.replication_records == old.replication_records, last_step
                assert state.definition == old.definition
            else:
                assert state.last_version == 3 and state.journal is None, last_step
                assert [r.version for r in state.replication_records] == [2, 3]
            journal = state.journal
            findings = s.plan_verify().result["findings"]
            if journal is not None:
                assert journal.version == 3 and journal.operation == "copy"
                assert findings[0]["problem"] == "interrupted_copy", findings
            repair = s.plan_verify(repair=True)
            repair.apply()
            assert s.state.journal is None
            after = s.plan_verify().result
            assert after == {"consistent": True, "findings": []}, (last_step, after)
            outcome = s.state.last_version
            assert outcome in (2, 3)
            assert not [c for c in be.list_copies("P") if c.staged], last_step
            # every kept version's copies hold the data of their time
            for rec in s.state.replication_records:
                for p in rec.pairs:
                    want = p.source + ("@new" if rec.version == 3 and p.source == "vg/A" else "@old")
                    assert be.copy_data(p.target) == want, (last_step, rec.version, p)
            # and the pool goes on
            nxt = s.plan_copy().apply()
            assert nxt["version"]["number"] == outcome + 1
        outcomes.append((kill_at, last_step, journal.phase if journal else None, outcome))
        shutil.rmtree(str(work))

    phases = set(o[2] for o in outcomes)
    assert {None, "copying", "copied", "committing"} <= phases, outcomes
    # killed before the first save: old records; after the final save: new
    assert outcomes[0][3] == 2 and outcomes[-1][3] == 3
    # a copy interrupted while still copying is rolled back, one that was
    # committing is finished
    assert all(o[3] == 2 for o in outcomes if o[2] == "copying")
    assert all(o[3] == 3 for o in outcomes if o[2] == "committing")
    assert len(outcomes) >= 15
