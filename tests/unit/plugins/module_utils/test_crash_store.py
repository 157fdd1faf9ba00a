# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crash tests of the state write: SIGKILL a saving child process at every
step of the write; the parent must then load exactly the old or exactly the
new state (never a torn file), leftover temp files must be ignored by load()
and swept by the next save(), and the pool's lock must be free again."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import random
import signal
import time

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _store
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    RECORD_PREPAIRING,
    RECORD_REPLICATION,
    CopyPair,
    Journal,
    PoolDefinition,
    PoolState,
    Record,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._store import WRITE_STEPS, StateStore

# Steps after which the new file is in place (os.replace is the commit point).
DURABLE_FROM = WRITE_STEPS.index("replaced")


def make_state(versions, n=50, name="db"):
    srcs = tuple("vg/src%03d" % i for i in range(n))
    tps = tuple(TargetPool("tp%d" % v, tuple("vg/t%d_%03d" % (v, i) for i in range(n))) for v in range(1, 4))
    recs = tuple(Record(RECORD_REPLICATION, v, "tp%d" % ((v - 1) % 3 + 1), "2026-11-25T0%d:00:00Z" % v,
                        tuple(CopyPair(s, t) for s, t in zip(srcs, tps[(v - 1) % 3].volumes)), label="v%d" % v)
                 for v in range(1, versions + 1))
    nxt = versions + 1
    pre = (Record(RECORD_PREPAIRING, nxt, "tp%d" % ((nxt - 1) % 3 + 1), "2026-11-25T09:00:00Z",
                  recs[0].pairs if recs else ()),)
    return PoolState(PoolDefinition(name, "lvm_clone", srcs, 3, tps), recs, pre, versions)


def run_child(fn):
    """Run fn() in a forked child; return its wait status."""
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            fn()
            code = 0
        except BaseException:  # pylint: disable=broad-except
            code = 2
        finally:
            os._exit(code)
    dummy, status = os.waitpid(pid, 0)
    return pid, status


def kill_at(step):
    def fault(name):
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)
    return fault


def temps(store, name="db"):
    return sorted(e for e in os.listdir(store.state_dir) if e.startswith("." + name + ".yml.") and e.endswith(".tmp"))


def assert_killed(status):
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, "child was not SIGKILLed: %r" % status


def assert_lock_free(store, name="db"):
    with StateStore(store.state_dir, lock_timeout=0).locked(name):
        pass


@pytest.fixture
def store(tmp_path):
    return StateStore(str(tmp_path / "state"), lock_timeout=5)


@pytest.mark.parametrize("step", WRITE_STEPS)
@pytest.mark.parametrize("had_file", [True, False], ids=["replacing", "first-save"])
def test_sigkill_at_every_step_of_the_write(store, step, had_file):
    old, new = make_state(2), make_state(3)
    if had_file:
        store.save(old)
    old_raw = store.encode(old) if had_file else None
    new_raw = store.encode(new)

    dummy, status = run_child(lambda: StateStore(store.state_dir).save(new, _fault=kill_at(step)))
    assert_killed(status)

    reached_replace = WRITE_STEPS.index(step) >= DURABLE_FROM
    expected = new if reached_replace else (old if had_file else None)
    assert store.load("db") == expected
    # byte-for-byte one of the two files, never a mix
    assert store.read_raw("db") == (new_raw if reached_replace else old_raw)
    # the dead writer's temp file is there only before the rename, and is ignored
    assert len(temps(store)) == (0 if reached_replace else 1)
    assert store.pool_names() == (["db"] if (had_file or reached_replace) else [])
    assert_lock_free(store)

    # the next run saves normally and sweeps the leftovers
    newer = make_state(4)
    store.save(newer)
    assert store.load("db") == newer
    assert temps(store) == []


@pytest.mark.parametrize("step", WRITE_STEPS)
def test_module_level_fault_hook_for_other_crash_tests(store, step):
    """Engine crash tests kill inside engine code, which calls save() without
    a _fault argument: _store._FAULT reaches it."""
    old, new = make_state(1), make_state(2)
    store.save(old)

    def child():
        _store._FAULT = kill_at(step)
        StateStore(store.state_dir).save(new)

    dummy, status = run_child(child)
    assert_killed(status)
    assert store.load("db") == (new if WRITE_STEPS.index(step) >= DURABLE_FROM else old)
    assert _store._FAULT is None  # the parent's hook was never set


def test_child_that_is_not_killed_completes_the_write(store):
    """Control: the fault hook that kills at no step lets the save finish."""
    old, new = make_state(1), make_state(2)
    store.save(old)
    seen = []
    dummy, status = run_child(lambda: StateStore(store.state_dir).save(new, _fault=kill_at("no such step")))
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert store.load("db") == new
    store.save(old, _fault=seen.append)
    assert tuple(seen) == WRITE_STEPS


def with_journal(state, pid):
    rec = state.prepairing_records[0]
    j = Journal(operation="copy", version=rec.version, target_pool=rec.target_pool, pairs=rec.pairs,
                phase="copying", started="2026-11-25T10:00:00Z", replaced_version=rec.version - 3 or None,
                label="nightly", pid=pid, staged=(CopyPair(rec.pairs[0].source, rec.pairs[0].target + ".staged"),))
    return PoolState(state.definition, state.replication_records, state.prepairing_records, state.last_version, j)


def test_a_run_killed_during_its_copy_leaves_the_journal_for_the_next_run(store):
    """The engine journals a copy before touching any volume; a run killed in
    the middle of the copy must leave that journal, complete, to the next."""
    before = make_state(3)
    store.save(before)

    def child():
        s = StateStore(store.state_dir)
        with s.locked("db"):
            s.save(with_journal(s.load("db"), os.getpid()))
            # ... the copy would start here; the run dies mid-copy:
            os.kill(os.getpid(), signal.SIGKILL)

    pid, status = run_child(child)
    assert_killed(status)
    assert_lock_free(store)
    seen = store.load("db")
    assert seen == with_journal(before, pid)
    assert seen.journal.pid == pid and seen.journal.phase == "copying"
    assert seen.journal.staged == (CopyPair("vg/src000", "vg/t1_000.staged"),)
    # the next run resolves it (e.g. verify_records repair) and clears it
    store.save(before)
    assert store.load("db").journal is None


@pytest.mark.parametrize("step", WRITE_STEPS)
def test_sigkill_while_writing_the_journal(store, step):
    before = make_state(3)
    store.save(before)

    def child():
        s = StateStore(store.state_dir)
        s.save(with_journal(before, os.getpid()), _fault=kill_at(step))

    pid, status = run_child(child)
    assert_killed(status)
    seen = store.load("db")
    if WRITE_STEPS.index(step) >= DURABLE_FROM:
        assert seen == with_journal(before, pid)
    else:
        assert seen == before and seen.journal is None


def test_sigkill_at_random_moments_of_repeated_saves(store):
    """No hooks: kill a child that saves two large states in turn at random
    moments; every time the file is exactly one of them."""
    a, b = make_state(3, n=3000), make_state(2, n=3000)
    raws = (store.encode(a), store.encode(b))
    store.save(a)
    rnd = random.Random(20261125)
    for dummy in range(12):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                s = StateStore(store.state_dir)
                os.write(w, b"go")
                while True:
                    s.save(b)
                    s.save(a)
            finally:
                os._exit(0)
        os.close(w)
        assert os.read(r, 2) == b"go"
        os.close(r)
        time.sleep(rnd.uniform(0.0, 0.4))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raw = store.read_raw("db")
        assert raw in raws
        assert store.load("db") in (a, b)
        assert_lock_free(store)
    store.save(a)
    assert temps(store) == []
