# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (prints figures, asserts nothing): one version of a btrfs pool
of N subvolumes (default 50) on a loop-backed btrfs, natively.

    python tests/benchmarks/bench_btrfs.py [--sources 50] [--rounds 3]

Compares, in one run, medians of ``--rounds``:
  bare      a loop of N ``btrfs subvolume snapshot -r`` processes
  backend   BtrfsSnapshotBackend.create_copies (window + marks), then discard,
            with the default ioctl snapshots and with snapshot_with=command
  engine    RecordEngine copy_version (state file, journal, discovery,
            capacity, copies, promotion, rotation), versions=2
  send      the same engine copy with btrfs_send into a second filesystem
  btrbk     the peer tool ``btrbk snapshot`` over the same N subvolumes,
            when btrbk is installed (Debian package btrbk)
and prints the copy window (first to last point-in-time command) and ratios.
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "real"))

import conftest  # noqa: E402  (tests/real/conftest.py: loop fs helpers, import path)

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import (  # noqa: E402
    BtrfsSendBackend,
    BtrfsSnapshotBackend,
    subvol_info,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (  # noqa: E402
    CopyPair,
    PoolDefinition,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore  # noqa: E402


def sh(argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def spread(paths):
    """(first-to-last creation time in s, distinct transactions) of snapshots,
    read from the subvolumes themselves (otime, otransid)."""
    infos = [subvol_info(p) for p in paths]
    return max(i["otime"] for i in infos) - min(i["otime"] for i in infos), len(set(i["otransid"] for i in infos))


def delete_subvolumes(paths):
    if paths:
        sh(["btrfs", "subvolume", "delete", "-c", "--"] + list(paths))


def bench_bare(sources, outdir):
    os.makedirs(outdir, exist_ok=True)
    made = []
    t0 = time.monotonic()
    for s in sources:
        dst = os.path.join(outdir, os.path.basename(s))
        subprocess.run(["btrfs", "subvolume", "snapshot", "-r", s, dst], check=True, stdout=subprocess.DEVNULL)
        made.append(dst)
    total = time.monotonic() - t0
    sp = spread(made)
    delete_subvolumes(made)
    return total, total, sp


def bench_backend(sources, runner, pool="benchb", snapshot_with="ioctl"):
    b = BtrfsSnapshotBackend(runner=runner, snapshot_with=snapshot_with)
    d = PoolDefinition(name=pool, technology="btrfs_snapshot", sources=tuple(sources), versions=1)
    pairs = [CopyPair(s, b.implied_target(pool, "01", s)) for s in sources]
    window = CopyWindow(d, runner)
    t0 = time.monotonic()
    outcome = b.create_copies(d, 1, pairs, window)
    total = time.monotonic() - t0
    sp = spread([c.target for c in outcome.staged])
    b.discard(d, outcome.staged)
    return total, outcome.window_ms / 1000.0, sp


class EngineBench:
    def __init__(self, workdir, sources, runner, technology="btrfs_snapshot", targets=None):
        self.store = StateStore(os.path.join(workdir, "state-%s" % technology))
        backends = {"btrfs_snapshot": BtrfsSnapshotBackend, "btrfs_send": BtrfsSendBackend}
        self.engine = RecordEngine(self.store, lambda tech: backends[tech](runner=runner))
        self.name = "bench-%s" % technology.replace("_", "-")
        self.technology = technology
        tps = ()
        if technology == "btrfs_send":
            tps = tuple(TargetPool("tp%d" % (i + 1), tuple(targets[i])) for i in range(2))
        d = PoolDefinition(name=self.name, technology=technology, sources=tuple(sources), versions=2,
                           target_pools=tps)
        with self.engine.session(self.name) as s:
            s.plan_define(d).apply()

    def once(self):
        t0 = time.monotonic()
        with self.engine.session(self.name) as s:
            result = s.plan_copy().apply()
        total = time.monotonic() - t0
        if self.technology == "btrfs_snapshot":
            sp = spread([p["target"] for p in result["version"]["pairs"]])
        else:
            sp = None  # received copies are made one after another, after the window
        return total, result["copy_window_ms"] / 1000.0, sp


def bench_btrbk(mountpoint, rel_sources, workdir):
    conf = os.path.join(workdir, "btrbk.conf")
    snapdir = os.path.join(mountpoint, "btrbk_snapshots")
    os.makedirs(snapdir, exist_ok=True)
    lines = ["snapshot_preserve_min all", "snapshot_create always", "snapshot_dir btrbk_snapshots",
             "timestamp_format long-iso", "lockfile %s" % os.path.join(workdir, "btrbk.lock"),
             "volume %s" % mountpoint]
    lines.extend("  subvolume %s" % r for r in rel_sources)
    with open(conf, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    t0 = time.monotonic()
    proc = subprocess.run(["btrbk", "-c", conf, "snapshot"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          universal_newlines=True)
    total = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError("btrbk failed: %s" % proc.stderr.strip())
    made = [os.path.join(snapdir, n) for n in os.listdir(snapdir)]
    if len(made) != len(rel_sources):
        raise RuntimeError("btrbk made %d snapshots, expected %d" % (len(made), len(rel_sources)))
    sp = spread(made)
    delete_subvolumes(made)
    return total, None, sp


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--sources", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for tool in ("btrfs", "mkfs.btrfs", "losetup"):
        if not conftest.which(tool):
            sys.exit("bench_btrfs: %s is missing (Debian btrfs-progs / util-linux)" % tool)
    if os.geteuid() != 0:
        sys.exit("bench_btrfs: needs root (loop devices)")
    runner = SubprocessRunner(env={"PATH": conftest.SBIN_PATH})
    work = tempfile.mkdtemp(prefix="pitcopy-bench-btrfs-")
    made = []
    try:
        src = conftest.LoopFs.create(work, "btrfs", 1024 * 1024 * 1024, "src")
        made.append(src)
        dst = conftest.LoopFs.create(work, "btrfs", 1024 * 1024 * 1024, "dst")
        made.append(dst)
        os.makedirs(src.path("vol"))
        sources = []
        for i in range(args.sources):
            s = src.path("vol", "s%02d" % i)
            sh(["btrfs", "subvolume", "create", s])
            with open(os.path.join(s, "data"), "wb") as fh:
                fh.write(os.urandom(64 * 1024))
            sources.append(s)
        targets = []
        for t in range(2):
            row = []
            for i in range(args.sources):
                d = dst.path("tp%d" % t, "t%02d" % i)
                os.makedirs(d)
                row.append(d)
            targets.append(row)
        sh(["btrfs", "filesystem", "sync", src.mountpoint])

        results = {}

        def record(name, fn, rounds=args.rounds):
            runs = [fn() for dummy in range(rounds)]
            total = statistics.median(r[0] for r in runs)
            windows = [r[1] for r in runs if r[1] is not None]
            spreads = [r[2] for r in runs if r[2] is not None]
            results[name] = (total, statistics.median(windows) if windows else None,
                             (statistics.median(x[0] for x in spreads), max(x[1] for x in spreads)) if spreads else None)

        record("bare", lambda: bench_bare(sources, src.path("bare")))
        record("backend", lambda: bench_backend(sources, runner))
        record("backend-cmd", lambda: bench_backend(sources, runner, snapshot_with="command"))
        eng = EngineBench(work, sources, runner)
        record("engine", eng.once)
        send = EngineBench(work, sources, runner, "btrfs_send", targets)
        record("send", send.once)
        btrbk = shutil.which("btrbk", path=conftest.SBIN_PATH)
        if btrbk:
            record("btrbk", lambda: bench_btrbk(src.mountpoint, ["vol/s%02d" % i for i in range(args.sources)],
                                                work))
        bare = results["bare"][0]
        print("btrfs benchmark: %d subvolumes (64 KiB each) on a loop-backed btrfs, medians of %d rounds"
              % (args.sources, args.rounds))
        print("%-11s %8s %14s %18s %11s" % ("what", "total s", "copy window s", "first-last snap s", "total/bare"))
        labels = {
            "bare": "bare loop of `btrfs subvolume snapshot -r`",
            "backend": "BtrfsSnapshotBackend.create_copies, ioctl snapshots (default), marks",
            "backend-cmd": "BtrfsSnapshotBackend.create_copies, snapshot_with=command, marks",
            "engine": "RecordEngine copy_version, btrfs_snapshot",
            "send": "RecordEngine copy_version, btrfs_send (full send|receive of 50 x 64 KiB)",
            "btrbk": "btrbk snapshot (peer tool, Debian btrbk)",
        }
        for name in ("bare", "backend", "backend-cmd", "engine", "send", "btrbk"):
            if name not in results:
                continue
            total, window, sp = results[name]
            print("%-11s %8.3f %14s %18s %11.2f   %s" % (
                name, total, "%.3f" % window if window is not None else "-",
                "%.3f (%d txns)" % sp if sp is not None else "-", total / bare, labels[name]))
        if not btrbk:
            print("btrbk   not installed: `apt-get install btrbk` to compare with the peer tool")
        if results.get("btrbk"):
            print("engine copy_version vs btrbk snapshot: %.2fx" % (results["btrbk"][0] / results["engine"][0]))
        print("copy window: engine %.3f s vs bare loop %.3f s (ratio %.2f); per snapshot %.1f ms" % (
            results["engine"][1], bare, results["engine"][1] / bare, results["engine"][1] * 1000.0 / args.sources))
    finally:
        for fs in reversed(made):
            fs.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
