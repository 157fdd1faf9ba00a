# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fault injection shared by the technologies (issue 12).

An operation (copy, delete, restore, redefinition, pool removal, repair) runs in a child
process that SIGKILLs itself before its K-th mutating step. A step is every
``os.rename``/``os.replace``/``os.unlink`` (state file, marks), every external
command the technology counts as mutating and every pipe, plus whatever the
technology adds (btrfs: its ioctls; LVM: block writes of a restore). After
each kill at most one ``verify_records repair=true`` must leave records and
storage consistent; what "consistent" means beyond that (the data tags of
every recorded copy, the sources) is the caller's ``check``.

A test provides:

- ``tech_code``: Python run in the child after the prelude below, defining
  ``backends`` (technology -> backend class) and optionally overriding
  ``counts(argv, data)`` (is this command a mutating step?) and
  ``label(argv, data)`` (how a step is printed), and patching further functions to
  call ``step(what)``;
- ``make_world(k) -> (world, expected)``: a fresh pool for iteration ``k``;
  the world has ``name``, ``store``, ``state()`` and ``verify(repair=False)``;
- ``check(world, expected, journal, found, done)`` and ``leftovers(world, k)``;
  the checks every technology makes alike are built by ``copy_check``,
  ``delete_check`` and ``removal_check`` below, from its ``check_versions``.

``EngineCalls`` gives a world class the engine calls (``copy``, ``verify``,
``state``) from its ``engine``, ``store`` and ``name``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import subprocess
import sys
import time

from ansible_collections.pitcopy.versions.tests.utils.pool_calls import PoolCalls

CHILD_PRELUDE = r"""
import os, signal, sys, time
T0 = time.monotonic()
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.tests.utils.kill_points import Steps

state_dir, pool, op, arg, kill_at = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
step = Steps(kill_at)


for name in ("rename", "replace", "unlink"):
    def wrap(*a, _real=getattr(os, name), _name=name, **kw):
        step("%s %s" % (_name, a[0]))
        return _real(*a, **kw)
    setattr(os, name, wrap)


def counts(argv, data):
    return True


def label(argv, data):
    return " ".join(argv[:3])
"""

CHILD_MAIN = r"""

class KillingRunner(SubprocessRunner):
    def run(self, argv, *a, **kw):
        argv = [str(x) for x in argv]
        data = kw.get("data", a[0] if a else None)
        if counts(argv, data):
            step("run " + label(argv, data))
        return super(KillingRunner, self).run(argv, *a, **kw)

    def pipe(self, argvs, *a, **kw):
        step("pipe " + " | ".join(" ".join(str(y) for y in x[:2]) for x in argvs))
        return super(KillingRunner, self).pipe(argvs, *a, **kw)

    def run_from(self, argv, *a, **kw):  # a stream received from a medium
        argv = [str(x) for x in argv]
        if counts(argv, None):
            step("run " + label(argv, None))
        return super(KillingRunner, self).run_from(argv, *a, **kw)


sys.stderr.write("[child] imports %.2f s\n" % (time.monotonic() - T0))
runner = KillingRunner(env={"PATH": os.pathsep.join((os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin",
                                                       "/sbin"))})
engine = RecordEngine(StateStore(state_dir), lambda t: backends[t](runner=runner))
with engine.session(pool) as s:
    if op == "delete":
        s.plan_delete(int(arg)).apply()
    elif op == "restore":
        s.plan_restore(int(arg)).apply()
    elif op == "remove":
        s.plan_remove(remove_copies=True).apply()
    elif op == "copy":
        s.plan_copy().apply()
    elif op == "restore_paths":  # arg: {"version": V, "paths": [...], "restore_to": null or a directory}
        import json
        a = json.loads(arg)
        s.plan_restore_paths(a["version"], a["paths"], restore_to=a.get("restore_to")).apply()
    elif op == "restore_from_media":  # arg: {"version": V, "medium": M, "restore_to": R}
        import json
        a = json.loads(arg)
        s.plan_restore_from_media(a["version"], a["medium"], a["restore_to"]).apply()
    elif op == "repair":
        s.plan_verify(repair=True).apply()
    elif op == "define":  # a redefinition: arg is the new definition, as the state file holds it
        import json
        from ansible_collections.pitcopy.versions.plugins.module_utils._store import _load_definition
        s.plan_define(_load_definition(json.loads(arg))).apply()
print("DONE %d" % step.count)
"""


def child_script(tech_code):
    return CHILD_PRELUDE + tech_code + CHILD_MAIN


def run_child(script, w, op, arg, kill_at, timeout=600):
    """Run ``op`` on ``w``'s pool in a child that kills itself before step
    ``kill_at`` (0: never). Its stdout lists the steps taken, one a line."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, "-c", script, w.store.state_dir, w.name, op, str(arg), str(kill_at)],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          universal_newlines=True, timeout=timeout)


def steps_of(child):
    """The numbered steps a child printed: [(number, what)]."""
    out = []
    for line in child.stdout.splitlines():
        head, _sep, what = line.partition(" ")
        if head.isdigit():
            out.append((int(head), what))
    return out


def repair_once(w):
    """At most one verify_records repair=true; returns (journal seen, findings)."""
    state = w.state()
    if state is None:
        return None, None  # a removal that had removed the state file
    journal = state.journal
    found = w.verify()  # a report never fails, whatever the kill left
    if journal is not None or not found["consistent"]:
        w.verify(repair=True)
    return journal, found


def consistent(w):
    state = w.state()
    assert state.journal is None, state.journal
    found = w.verify()
    assert found == {"consistent": True, "findings": []}, found


def _one_kill(script, make_world, op, arg, kill_at, check, leftovers):
    """One iteration: a fresh world, the child killed at ``kill_at``, one
    repair, the checks. Returns the step killed at, or None when the child
    finished (``kill_at`` past its last step)."""
    t0 = time.monotonic()
    w, expected = make_world(kill_at)
    t1 = time.monotonic()
    child = run_child(script, w, op, arg(w) if callable(arg) else arg, kill_at)
    t2 = time.monotonic()
    _child_times.append(child.stderr)
    if child.returncode == 0:
        assert "DONE" in child.stdout, child.stdout
        check(w, expected, None, None, done=True)
        left = leftovers(w, kill_at)
        assert left == [], "left over: %s" % left
        _timing(kill_at, "done", t0, t1, t2, t2)
        return None
    assert child.returncode == -signal.SIGKILL, child.stderr
    last = child.stdout.strip().splitlines()[-1]
    journal, found = repair_once(w)
    t3 = time.monotonic()
    try:
        check(w, expected, journal, found, done=False)
        left = leftovers(w, kill_at)
        assert left == [], "left over: %s" % left
    except AssertionError as exc:
        raise AssertionError("killed at step %s (journal %s): %s" % (last, journal, exc))
    _timing(kill_at, last, t0, t1, t2, t3)
    return last


_child_times = []


def _timing(kill_at, last, t0, t1, t2, t3):
    """Where one kill point's time went (world, child, repair, checks), on
    stderr: the figures the suites' docstrings quote."""
    imports = [line for line in _child_times[-1].splitlines() if line.startswith("[child] imports")]
    sys.stderr.write("[fault %d] world %.1f s, child %.1f s (%s), repair %.1f s, checks %.1f s: %s\n" % (
        kill_at, t1 - t0, t2 - t1, imports[0][8:] if imports else "?", t3 - t2, time.monotonic() - t3,
        last[:60]))


def kill_everywhere(script, make_world, op, check, leftovers, what, arg=1, limit=200):
    """K = 1, 2, ... until one run finishes; returns the steps killed at.
    ``arg``: the operation's argument, or a function of the world making it."""
    kill_at = 0
    points = []
    while True:
        kill_at += 1
        assert kill_at < limit, "the %s never finished" % op
        last = _one_kill(script, make_world, op, arg, kill_at, check, leftovers)
        if last is None:
            break
        points.append(last)
    sys.stderr.write("%s %s: %d kill points:\n  %s\n" % (what, op, len(points), "\n  ".join(points)))
    return points


def kill_at_sample(script, make_world, op, check, leftovers, what, select, arg=1):
    """One run that finishes (``k`` = 0: its steps, and the checks of a
    completed run), then a kill before each step ``select(steps)`` picks
    from that list: for tiers where a world costs too much for a full sweep.
    Returns (steps killed at, number of steps of a whole run)."""
    w, expected = make_world(0)
    child = run_child(script, w, op, arg(w) if callable(arg) else arg, 0)
    assert child.returncode == 0 and "DONE" in child.stdout, (child.stdout, child.stderr)
    check(w, expected, None, None, done=True)
    assert leftovers(w, 0) == []
    steps = steps_of(child)
    ks = sorted(set(select(steps)))
    assert ks and all(1 <= k <= len(steps) for k in ks), (ks, steps)
    points = []
    for k in ks:
        last = _one_kill(script, make_world, op, arg, k, check, leftovers)
        assert last is not None, "the %s finished before step %d; steps of a whole run: %s" % (op, k, steps)
        points.append(last)
    sys.stderr.write("%s %s: %d of %d steps killed at:\n  %s\n  (all steps: %s)\n" % (
        what, op, len(points), len(steps), "\n  ".join(points), "; ".join("%d %s" % s for s in steps)))
    return points, len(steps)


def sweeper(request, leftovers):
    """What a suite's ``sweep`` fixture returns: ``sweep(script, make_world,
    op, check, what, select, arg=1)`` takes every kill point
    (``--pitcopy-faults=all``: the opt-in stages vm-lvm-faults, vm-zfs-faults)
    or the steps ``select`` picks from a whole run's (the default). Returns
    the steps killed at; prints their number. ``sweep.full`` tells which."""
    full = request.config.getoption("--pitcopy-faults") == "all"

    def run(script, make_world, op, check, what, select, arg=1):
        if full:
            return kill_everywhere(script, make_world, op, check, leftovers, what, arg=arg)
        return kill_at_sample(script, make_world, op, check, leftovers, what, select, arg=arg)[0]
    run.full = full
    return run


def kill_the_repair(script, make_world, op, kill_op, check, leftovers, what, ks=None, limit=200):
    """``op`` killed before its step ``kill_op`` (a journal left), then the
    repair killed before each of its steps (``ks``, or 1, 2, ... until it
    finishes); one more repair must finish it. ``check(w, expected)`` runs
    after that repair. Returns the repair steps killed at."""
    points = []
    repair_at = 0
    todo = list(ks) if ks is not None else None
    while True:
        if todo is not None:
            if not todo:
                repair_at = 0  # never killed: the repair alone finishes
            else:
                repair_at = todo.pop(0)
        else:
            repair_at += 1
            assert repair_at < limit, "the repair never finished"
        k = 1000 + (repair_at if repair_at else 999)
        w, expected = make_world(k)
        assert run_child(script, w, op, 1, kill_op).returncode == -signal.SIGKILL
        journal = w.state().journal
        assert journal is not None and journal.operation == op, journal
        child = run_child(script, w, "repair", 0, repair_at)
        if child.returncode != 0:
            assert child.returncode == -signal.SIGKILL, child.stderr
            points.append(child.stdout.strip().splitlines()[-1])
            repair_once(w)
        else:
            assert "DONE" in child.stdout, child.stdout
        try:
            consistent(w)
            check(w, expected)
            assert leftovers(w, k) == []
        except AssertionError as exc:
            raise AssertionError("repair killed at %s: %s" % (points[-1] if child.returncode else "none", exc))
        if child.returncode == 0:
            if todo is not None:
                assert not todo, "the repair finished before step %d" % todo[0]
            break
    sys.stderr.write("%s repair of a %s killed at step %d: %d kill points:\n  %s\n" % (
        what, op, kill_op, len(points), "\n  ".join(points)))
    return points


# --- what every technology's world and checks share -------------------------------


class EngineCalls(PoolCalls):
    """copy, verify and state of a world with ``engine``, ``store`` and ``name``."""


def copy_check(check_versions, live, new=3, versions=2):
    """The ``check`` of a copy of version ``new`` (the sources holding
    ``live``) over ``expected``'s versions, ``versions`` kept: the repair
    either rolled it back (the old versions kept) or finished it (``new``
    kept, the oldest gone); a journal still copying means rolled back, one
    committing means finished."""
    def check(w, expected, journal, found, done):
        consistent(w)
        kept = [r.version for r in w.state().replication_records]
        old = sorted(expected)
        if done or new in kept:
            # the new version holds what the sources held at its point in time
            expected[new] = dict((s_, live) for s_ in w.sources)
            assert kept == (old + [new])[-versions:]
        else:
            assert kept == old[-versions:]
        if journal is not None and journal.phase == "copying":
            assert new not in kept
        if journal is not None and journal.phase == "committing":
            assert new in kept
        check_versions(w, expected)
    return check


def delete_check(check_versions, listed=True):
    """The ``check`` of the delete of version 1 of versions 1 and 2: done,
    or a journal left (which the repair finishes), means version 2 alone;
    ``listed``: the backend lists copies of the kept versions only."""
    def check(w, expected, journal, found, done):
        consistent(w)
        kept = [r.version for r in w.state().replication_records]
        if done or journal is not None:
            assert kept == [2]
            if journal is not None:
                assert journal.operation == "delete" and journal.version == 1
            del expected[1]
        else:
            assert kept == [1, 2]
        check_versions(w, expected)
        if listed:
            assert sorted(set(c.version for c in w.backend.list_copies(w.name))) == kept
    return check


def removal_check(check_versions):
    """The ``check`` of a pool removal: the state file gone and no copy
    listed, or the pool as it was (never a journal: nothing to finish)."""
    def check(w, expected, journal, found, done):
        if w.store.load(w.name) is None:
            assert w.backend.list_copies(w.name) == []
            return
        assert not done and journal is None
        consistent(w)
        check_versions(w, expected)
    return check


def definition_arg(definition):
    """The child's argument for op ``define``: the definition as the state
    file holds it."""
    import json
    from ansible_collections.pitcopy.versions.plugins.module_utils._store import _dump_definition

    return json.dumps(_dump_definition(definition))


def redefine_check(check_versions, old, new):
    """The ``check`` of a redefinition from ``old`` to ``new`` (a definition
    the kept versions allow: a source or a target pool added): the records
    hold one of the two definitions whole, never a mixture, ``new`` when the
    run finished; the kept versions are untouched and valid."""
    def check(w, expected, journal, found, done):
        consistent(w)
        state = w.state()
        if done:
            assert state.definition == new, state.definition
        else:
            assert state.definition in (old, new), state.definition
        assert [r.version for r in state.replication_records] == sorted(expected)
        check_versions(w, expected)
    return check
