# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (inside the VM): one copy version of 50 ZFS datasets.

Compares, in one run, on one zpool made on a sparse file under /tmp:

* the bare tool loop: 50 ``zfs snapshot`` processes, one per dataset
  (how a per-volume Ansible loop or a naive script does it);
* the bare atomic command: ONE ``zfs snapshot a@x b@x ...`` for all 50;
* the backend's ``create_copies`` (inside a CopyWindow, staged names and
  ownership properties), then ``discard``;
* the whole engine: ``plan_copy().apply()`` (discovery, capacity check,
  journal, create, promote, state save) with its copy window;
* optionally (``--send``) zfs_send: a bare loop of 50 ``zfs send | zfs
  receive`` against the engine's zfs_send version.

For each: median wall time of ``--reps`` runs, the copy window (first to
last snapshot command; for the loop, the time between its first and last
snapshot) and the number of distinct transaction groups the 50 snapshots
landed in (1 = one point in time). Prints figures and ratios; asserts
nothing.

Then two more engine versions in the steady state of a rotation (each
replaces the oldest kept version; the timed ones above start from an empty
pool, so only the last of three replaces one): their wall time and the
tool processes each phase started (the runner's count,
``SubprocessRunner.started``), by backend method.

Run: tests/vm/run.sh --zfs -- python tests/benchmarks/bench_vm_zfs.py [--datasets 50] [--reps 3] [--send]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "real"))

# tests/real/conftest.py makes the collection importable, as for bench_btrfs
import conftest  # noqa: E402,F401  pylint: disable=unused-import

from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (  # noqa: E402
    CopyPair,
    PoolDefinition,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore  # noqa: E402
from ansible_collections.pitcopy.versions.tests.utils.tools_env import SBIN_PATH as SBIN, tool_env  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import (  # noqa: E402
    ZfsSendBackend,
    ZfsSnapshotBackend,
)

ENV = tool_env()


def sh(*argv):
    proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, check=False)
    if proc.returncode != 0:
        raise SystemExit("%s failed: %s" % (" ".join(argv), proc.stderr.decode().strip()))
    return proc.stdout.decode()


def txgs(names):
    """Distinct createtxg of the snapshots ``names`` (one zfs get)."""
    out = sh("zfs", "get", "-H", "-p", "-o", "value", "createtxg", *names)
    return len(set(out.split()))


PHASES = ("discover", "list_copies", "check_capacity", "plan_copies", "prepare", "take_point_in_time", "transfer",
          "release", "undo", "promote", "delete_copies", "discard")


def _counted(fn, name, runner, tally):
    def wrapped(*args, **kwargs):
        before = runner.processes()
        try:
            return fn(*args, **kwargs)
        finally:
            tally[name] = tally.get(name, 0) + runner.processes() - before
    return wrapped


def counting(backend, runner, tally):
    """``backend`` with each phase's processes added to ``tally`` (by method)."""
    for name in PHASES:
        setattr(backend, name, _counted(getattr(backend, name), name, runner, tally))
    return backend


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", type=int, default=50)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--send", action="store_true", help="also compare zfs_send with a bare send|receive loop")
    args = ap.parse_args()
    n = args.datasets
    for tool in ("zfs", "zpool"):
        if not shutil.which(tool, path=SBIN):
            raise SystemExit("%s not found: run inside tests/vm/run.sh --zfs" % tool)

    work = tempfile.mkdtemp(prefix="pitcopy-bench-zfs-", dir="/tmp")
    pool = "pb%s" % uuid.uuid4().hex[:6]
    tpool = pool + "t"
    img, timg = os.path.join(work, "p.img"), os.path.join(work, "t.img")
    for path in (img, timg):
        with open(path, "wb") as fh:
            fh.truncate(1024 * 1024 * 1024)
    runner = SubprocessRunner(env={"PATH": SBIN})
    made_pools = []
    try:
        sh("zpool", "create", "-f", "-o", "cachefile=none", "-m", os.path.join(work, "mnt"), pool, img)
        made_pools.append(pool)
        sources = ["%s/ds%02d" % (pool, i) for i in range(n)]
        t0 = time.monotonic()
        for ds in sources:
            sh("zfs", "create", ds)
            with open(os.path.join(work, "mnt", ds.split("/", 1)[1], "f"), "wb") as fh:
                fh.write(os.urandom(64 * 1024))
        print("setup: %d datasets in %.1f s" % (n, time.monotonic() - t0))

        rows = {}

        # 1. bare loop
        times, spans, groups = [], [], []
        for r in range(args.reps):
            snap = "loop%d" % r
            stamps = []
            t0 = time.monotonic()
            for ds in sources:
                stamps.append(time.monotonic())
                sh("zfs", "snapshot", "%s@%s" % (ds, snap))
            stamps.append(time.monotonic())
            times.append(time.monotonic() - t0)
            spans.append(stamps[-2] - stamps[0])
            groups.append(txgs(["%s@%s" % (ds, snap) for ds in sources]))
            sh("zfs", "destroy", "-r", "%s@%s" % (pool, snap))
        rows["bare loop of %d zfs snapshot" % n] = (median(times), median(spans), max(groups))

        # 2. one atomic command
        times, groups = [], []
        for r in range(args.reps):
            snap = "atomic%d" % r
            t0 = time.monotonic()
            sh("zfs", "snapshot", *["%s@%s" % (ds, snap) for ds in sources])
            times.append(time.monotonic() - t0)
            groups.append(txgs(["%s@%s" % (ds, snap) for ds in sources]))
            sh("zfs", "destroy", "-r", "%s@%s" % (pool, snap))
        rows["one atomic zfs snapshot (bare)"] = (median(times), median(times), max(groups))

        # 3. backend create_copies (+ discard, not timed)
        b = ZfsSnapshotBackend(runner)
        d = PoolDefinition(name="bench", technology="zfs_snapshot", sources=tuple(sources), versions=2)
        times, wins, groups = [], [], []
        for r in range(args.reps):
            pairs = [CopyPair(s, b.implied_target("bench", "01", s)) for s in sources]
            t0 = time.monotonic()
            out = b.create_copies(d, 100 + r, pairs, CopyWindow(d, runner))
            times.append(time.monotonic() - t0)
            wins.append(out.window_ms / 1000.0)
            groups.append(txgs([p.target for p in out.staged]))
            b.discard(d, out.staged)
        rows["backend create_copies"] = (median(times), median(wins), max(groups))

        # 4. whole engine: plan_copy().apply()
        state = os.path.join(work, "state")
        tally = {}
        backends = {"zfs_snapshot": counting(ZfsSnapshotBackend(runner=runner), runner, tally),
                    "zfs_send": counting(ZfsSendBackend(runner=runner), runner, tally)}
        eng = RecordEngine(StateStore(state), lambda tech: backends[tech])
        with eng.session("bench") as s:
            s.plan_define(d).apply()
        times, wins, groups, phases = [], [], [], []
        for r in range(args.reps):
            t0 = time.monotonic()
            with eng.session("bench") as s:
                plan = s.plan_copy()
                t1 = time.monotonic()
                res = plan.apply()
            times.append(time.monotonic() - t0)
            phases.append(t1 - t0)
            wins.append(res["copy_window_ms"] / 1000.0)
            groups.append(txgs([p["target"] for p in res["version"]["pairs"]]))
        rows["engine plan_copy().apply()"] = (median(times), median(wins), max(groups))

        # steady state: each version replaces one (versions=2)
        steady, counts = [], []
        for r in range(2):
            tally.clear()
            before = runner.processes()
            t0 = time.monotonic()
            with eng.session("bench") as s:
                s.plan_copy().apply()
            steady.append(time.monotonic() - t0)
            counts.append((dict(tally), runner.processes() - before))

        print()
        print("%-34s %10s %14s %6s" % ("zfs_snapshot, %d datasets" % n, "time s", "window s", "txgs"))
        for k, (t, w, g) in rows.items():
            print("%-34s %10.3f %14.3f %6d" % (k, t, w, g))
        print("  (engine: planning incl. discovery %.3f s of the total, median)" % median(phases))
        loop_t, loop_w = rows["bare loop of %d zfs snapshot" % n][:2]
        atom_t = rows["one atomic zfs snapshot (bare)"][0]
        be_t, be_w = rows["backend create_copies"][:2]
        en_t, en_w = rows["engine plan_copy().apply()"][:2]
        print()
        print("ratios:")
        print("  bare loop / one atomic command (time)      %8.1fx" % (loop_t / atom_t))
        print("  bare loop / backend create_copies (time)   %8.1fx" % (loop_t / be_t))
        print("  bare loop / whole engine version (time)    %8.1fx" % (loop_t / en_t))
        print("  loop span / engine copy window             %8.1fx" % (loop_w / en_w if en_w else float("inf")))
        print("  backend create_copies / atomic command     %8.2fx" % (be_t / atom_t))
        print("  whole engine version / atomic command      %8.2fx" % (en_t / atom_t))
        print()
        print("steady state (each version replaces one): %s s; / atomic command %s; / bare loop %s"
              % (", ".join("%.3f" % t for t in steady), ", ".join("%.2fx" % (t / atom_t) for t in steady),
                 ", ".join("%.3fx" % (t / loop_t) for t in steady)))
        tally, total = counts[-1]
        print("tool processes of the last steady-state version, %d datasets in one zpool: %d in all" % (n, total))
        for name in PHASES:
            if tally.get(name):
                print("  %-20s %4d" % (name, tally[name]))
        print("  (outside these phases: %d)" % (total - sum(tally.values())))
        print("runner total by command: %s" % ", ".join("%s %d" % kv for kv in sorted(runner.started.items())))

        if args.send:
            sh("zpool", "create", "-f", "-o", "cachefile=none", "-m", os.path.join(work, "tmnt"), tpool, timg)
            made_pools.append(tpool)
            for tp in ("A", "B", "L"):
                sh("zfs", "create", "%s/%s" % (tpool, tp))
            # bare: snapshot loop + send|receive loop
            t0 = time.monotonic()
            for ds in sources:
                sh("zfs", "snapshot", ds + "@bare")
            for ds in sources:
                send = subprocess.Popen(["zfs", "send", ds + "@bare"], stdout=subprocess.PIPE, env=ENV)
                recv = subprocess.run(["zfs", "receive", "%s/L/%s" % (tpool, ds.split("/")[1])],
                                      stdin=send.stdout, env=ENV, stdout=subprocess.DEVNULL, check=False)
                send.stdout.close()
                send.wait()
                if recv.returncode or send.returncode:
                    raise SystemExit("bare send|receive failed")
            bare = time.monotonic() - t0
            tps = tuple(TargetPool(tp, tuple("%s/%s/%s" % (tpool, tp, s.split("/")[1]) for s in sources))
                        for tp in ("A", "B"))
            ds_ = PoolDefinition(name="benchsend", technology="zfs_send", sources=tuple(sources), versions=2,
                                 target_pools=tps)
            with eng.session("benchsend") as s:
                s.plan_define(ds_).apply()
            t0 = time.monotonic()
            with eng.session("benchsend") as s:
                res = s.plan_copy().apply()
            engine_t = time.monotonic() - t0
            print()
            print("zfs_send, %d datasets: bare snapshot loop + send|receive loop %.2f s; engine version %.2f s "
                  "(window %.3f s); ratio bare/engine %.2fx"
                  % (n, bare, engine_t, res["copy_window_ms"] / 1000.0, bare / engine_t))
    finally:
        for p in reversed(made_pools):
            subprocess.run(["zpool", "destroy", "-f", p], env=ENV, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
