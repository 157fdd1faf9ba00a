# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (inside the UML guest or the VM): block-copy throughput of
lvm_clone and of an LVM dump to media, against dd and gzip, on one source
LV of ``--mib`` MiB (default 1024) and one target LV of the same size.

Issue 15 asks for ``lvm_clone`` of a 1 GiB LV at 0.9x the throughput of
``dd bs=4M oflag=direct`` between the same devices or better, with its
validity check, and for what the sha256 costs. Each method, ``--reps``
times (median), with the page cache dropped before each run:

* ``dd if=SRC of=DST bs=4M oflag=direct``: the bare tool (the reference);
* ``dd ... bs=4M`` through the page cache, then ``sync``;
* ``sha256sum SRC``: what the checksum alone costs to read and hash;
* ``_lvm._copy_blocks`` without a digest, then with the sha256 lvm_clone
  computes while it copies (the copy path alone, no LVM command);
* the engine: ``plan_copy().apply()`` of an lvm_clone pool of that source
  and one listed target LV (discovery, capacity, journal, the copy and its
  checksum, tags, state), the previous version released first;
* the dump of a copy to media: ``dd if=SRC bs=1M | gzip -1 > FILE`` (the
  bare tools) against ``_lv_image.dump`` to a file (in-process zlib level 1),
  with the stream sizes.

With ``--pairs N`` (and ``--pair-mib``, default 8), a second part: the
engine's lvm_clone copy of a pool of N small sources onto N targets, the
backend batching its LVM commands (one ``lvm`` shell for all marks, one for
all seals and removals) against the same backend with ``batch = False``
(one process per command, as the targets were handled one by one before),
with the processes each ran: what the number of pairs costs.

The source holds incompressible data in its first half and zeros after
(``--random-percent``): a real LV is neither all random nor all zeros.
Prints MiB/s and ratios to dd direct (copies) or to dd | gzip (dumps);
asserts nothing. Figures taken while other guests run are inflated: say so.

Run: python3 tests/uml/guest.py run -- env PYTHONPATH=$PWD/.cache/coll-link \\
        .venv/bin/python tests/benchmarks/bench_lvm_clone.py [--mib 1024] [--reps 3] [--pairs 16]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import hashlib
import os
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

from ansible_collections.pitcopy.versions.plugins.module_utils import _lv_image, _lvm  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore  # noqa: E402

from bench_vm_lvm import ENV, remove_vg, sh  # noqa: E402  (this directory: the script's own)

MiB = 1024 * 1024


def drop_caches(*devices):
    os.sync()
    for dev in devices:
        subprocess.call(["blockdev", "--flushbufs", dev], env=ENV)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
    except (IOError, OSError):
        pass  # not allowed here: the figures then include cached reads


def fill(dev, size, random_percent):
    """``random_percent`` of ``size`` incompressible (one 4 MiB random block
    repeated: beyond deflate's 32 KiB window), zeros after."""
    block = os.urandom(4 * MiB)
    fd = os.open(dev, os.O_WRONLY)
    try:
        end = size * random_percent // 100
        pos = 0
        while pos < end:
            pos += os.write(fd, block[:min(len(block), end - pos)])
        zero = bytes(4 * MiB)
        while pos < size:
            pos += os.write(fd, zero[:min(len(zero), size - pos)])
        os.fsync(fd)
    finally:
        os.close(fd)


def blank(dev, size):
    """lvm_clone never overwrites a target holding data it did not write:
    the first and last MiB of ``dev`` zeroed (between timed runs)."""
    fd = os.open(dev, os.O_WRONLY)
    try:
        os.pwrite(fd, bytes(MiB), 0)
        os.pwrite(fd, bytes(MiB), size - MiB)
        os.fsync(fd)
    finally:
        os.close(fd)


class _Unbatched(_lvm.LvmCloneBackend):
    batch = False


class TimingRunner(SubprocessRunner):
    """The runner with the time its commands take (where the engine's time
    goes besides the block copy)."""

    seconds = 0.0

    def run(self, argv, *a, **kw):
        t0 = time.monotonic()
        try:
            return super(TimingRunner, self).run(argv, *a, **kw)
        finally:
            self.seconds += time.monotonic() - t0


def _size_then_remove(path):
    # the guest's /tmp is a tmpfs that also holds the VG's image
    size = os.path.getsize(path)
    os.unlink(path)
    return size


def timed(fn):
    t0 = time.monotonic()
    extra = fn()
    return time.monotonic() - t0, extra


def pairs_scaling(n, pair_mib, reps):
    """The engine's lvm_clone copy of ``n`` pairs of ``pair_mib`` MiB LVs,
    batched against one process per LVM command; prints time and processes."""
    size = pair_mib * MiB
    workdir = tempfile.mkdtemp(prefix="pitcopy-bench-pairs-")
    vg = "pcpairs%s" % uuid.uuid4().hex[:6]
    img = os.path.join(workdir, "pv.img")
    with open(img, "wb") as fh:
        fh.truncate(n * (3 * size + 8 * MiB) + 64 * MiB)  # sources, targets, temporary snapshots
    loop = sh("losetup", "--find", "--show", img).strip()
    results = {}
    try:
        sh("pvcreate", "-q", loop)
        sh("vgcreate", "-q", "-s", "4M", vg, loop)
        sources = tuple("%s/s%03d" % (vg, i) for i in range(n))
        targets = tuple("%s/t%03d" % (vg, i) for i in range(n))
        for name in sources + targets:
            sh("lvcreate", "-q", "-y", "-Wn", "-Zn", "-L", "%db" % size, "-n", name.split("/")[1], vg)
        for name in sources:
            fill(_lvm.dm_path(name), size, 50)
        print("\nVG %s: %d sources and %d targets of %d MiB; %d rep(s) each" % (vg, n, n, pair_mib, reps))
        pool, state = "pairs", StateStore(os.path.join(workdir, "state"))
        for label, cls in (("batched (this backend)", _lvm.LvmCloneBackend),
                           ("one process per command", _Unbatched)):
            # the same pool and records: only the backend's batching differs
            runner = TimingRunner()
            eng = RecordEngine(state, lambda tech, cls=cls, runner=runner: cls(runner=runner))
            if cls is _lvm.LvmCloneBackend:
                with eng.session(pool) as s:
                    s.plan_define(PoolDefinition(name=pool, technology="lvm_clone", sources=sources, versions=1,
                                                 consistency="none",
                                                 target_pools=(TargetPool("01", targets),))).apply()
            for r in range(reps):
                for name in targets:
                    blank(_lvm.dm_path(name), size)
                before = (runner.processes(), runner.seconds)
                t0 = time.monotonic()
                with eng.session(pool) as s:
                    res = s.plan_copy().apply()
                t = time.monotonic() - t0
                results.setdefault(label, []).append((t, runner.processes() - before[0], runner.seconds - before[1]))
                print("  rep %d %-30s %7.2f s, %d processes" % (r + 1, label, t, results[label][-1][1]))
                sys.stdout.flush()
                with eng.session(pool) as s:
                    s.plan_delete(res["version"]["number"]).apply()
    finally:
        remove_vg(vg, loop, workdir)
    ref = statistics.median(t for t, _n, _s in results["one process per command"])
    title = "engine copy, %d pairs of %d MiB" % (n, pair_mib)
    print("\n%-38s %9s %10s %12s %8s" % (title, "time s", "processes", "in them s", "ratio"))
    for label, vals in results.items():
        t = statistics.median(v[0] for v in vals)
        print("%-38s %9.2f %10d %12.2f %7.2fx" % (label, t, vals[-1][1], statistics.median(v[2] for v in vals),
                                                  ref / t))
    print("ratio: time of one process per command / time (higher is faster)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--reps", type=int, default=int(os.environ.get("PITCOPY_BENCH_N", "3")))
    ap.add_argument("--random-percent", type=int, default=50)
    ap.add_argument("--pairs", type=int, default=0, help="also the N-pair part (see the docstring); 0: not run")
    ap.add_argument("--pair-mib", type=int, default=8)
    ap.add_argument("--only-pairs", action="store_true", help="the N-pair part alone")
    args = ap.parse_args()
    if not os.path.exists("/dev/mapper/control"):
        sys.exit("no device-mapper here: run inside the UML guest or the VM (see the docstring)")
    if args.only_pairs:
        pairs_scaling(args.pairs or 16, args.pair_mib, args.reps)
        return
    size = args.mib * MiB
    workdir = tempfile.mkdtemp(prefix="pitcopy-bench-clone-")
    vg = "pcclone%s" % uuid.uuid4().hex[:6]
    img = os.path.join(workdir, "pv.img")
    with open(img, "wb") as fh:
        fh.truncate(2 * size + size // 4 + 64 * MiB)  # lvm_clone reads a temporary snapshot (20%ORIGIN)
    loop = sh("losetup", "--find", "--show", img).strip()
    runner = TimingRunner()
    results = {}
    engine_tools = []
    sizes = {}
    try:
        sh("pvcreate", "-q", loop)
        sh("vgcreate", "-q", "-s", "4M", vg, loop)
        src, dst = "%s/src" % vg, "%s/dst" % vg
        for name in (src, dst):
            sh("lvcreate", "-q", "-y", "-Wn", "-Zn", "-L", "%db" % size, "-n", name.split("/")[1], vg)
        sdev, ddev = _lvm.dm_path(src), _lvm.dm_path(dst)
        fill(sdev, size, args.random_percent)
        eng = RecordEngine(StateStore(os.path.join(workdir, "state")),
                           lambda tech: _lvm.LvmCloneBackend(runner=runner))
        with eng.session("bench") as s:
            s.plan_define(PoolDefinition(name="bench", technology="lvm_clone", sources=(src,), versions=1,
                                         consistency="none", target_pools=(TargetPool("01", (dst,)),))).apply()
        media = os.path.join(workdir, "media")
        os.mkdir(media)
        print("VG %s: %s and %s, %d MiB each (%d%% random); %d rep(s) each" % (
            vg, src, dst, args.mib, args.random_percent, args.reps))
        sys.stdout.flush()

        def engine_copy():
            before = (runner.processes(), runner.seconds)
            t0 = time.monotonic()
            with eng.session("bench") as s:
                res = s.plan_copy().apply()
            engine_tools.append((time.monotonic() - t0, runner.processes() - before[0], runner.seconds - before[1]))
            with eng.session("bench") as s:
                s.plan_delete(res["version"]["number"]).apply()  # the target is released for the next rep

        def bare_dump():
            out = os.path.join(media, "bare.gz")
            with open(out, "wb") as fh:
                p1 = subprocess.Popen(["dd", "if=%s" % sdev, "bs=1M", "status=none"], stdout=subprocess.PIPE)
                p2 = subprocess.Popen(["gzip", "-1"], stdin=p1.stdout, stdout=fh)
                p1.stdout.close()
                if p2.wait() != 0 or p1.wait() != 0:
                    raise RuntimeError("dd | gzip failed")
            return _size_then_remove(out)

        def our_dump():
            out = os.path.join(media, "ours.lvgz-stream")
            with open(out, "wb") as fh:
                _lv_image.dump(sdev, size, fh.write)
                fh.flush()
                os.fsync(fh.fileno())
            return _size_then_remove(out)

        dd = ["dd", "if=%s" % sdev, "of=%s" % ddev, "bs=4M", "status=none"]
        methods = [
            ("dd bs=4M oflag=direct", lambda: sh(*(dd + ["oflag=direct"]))),
            ("dd bs=4M (page cache) + sync", lambda: sh(*(dd + ["conv=fsync"]))),
            ("sha256sum of the source", lambda: sh("sha256sum", sdev)),
            ("_copy_blocks, no checksum", lambda: _lvm._copy_blocks(sdev, ddev, size)),
            ("_copy_blocks + sha256 (lvm_clone)",
             lambda: _lvm._copy_blocks(sdev, ddev, size, digest=hashlib.sha256())),
            ("engine plan_copy (lvm_clone)", engine_copy),
            ("dump: dd | gzip -1 > file", bare_dump),
            ("dump: _lv_image.dump (zlib 1)", our_dump),
        ]
        for r in range(args.reps):
            for name, fn in methods:
                if fn is engine_copy:
                    blank(ddev, size)  # after the dd rows wrote it (not timed)
                drop_caches(loop, sdev, ddev)
                t, extra = timed(fn)
                results.setdefault(name, []).append(t)
                if isinstance(extra, int):
                    sizes[name] = extra
                print("  rep %d %-36s %7.2f s" % (r + 1, name, t))
                sys.stdout.flush()
    finally:
        remove_vg(vg, loop, workdir)
    ref = statistics.median(results["dd bs=4M oflag=direct"])
    ref_dump = statistics.median(results["dump: dd | gzip -1 > file"])
    print("\n%-38s %9s %9s %12s %14s" % ("method (%d MiB)" % args.mib, "time s", "MiB/s", "throughput",
                                         "stream MiB"))
    for name, vals in results.items():
        t = statistics.median(vals)
        base = ref_dump if name.startswith("dump:") else ref
        print("%-38s %9.2f %9.1f %11.2fx %14s" % (name, t, args.mib / t, base / t,
                                                  "%.1f" % (sizes[name] / float(MiB)) if name in sizes else "-"))
    print("throughput ratios (higher is faster) against dd bs=4M oflag=direct, dumps against dd | gzip -1")
    for t, n, tools in engine_tools:
        print("engine copy alone (without the release): %.2f s, of which %d LVM/tool processes took %.2f s" % (
            t, n, tools))
    if args.pairs:
        pairs_scaling(args.pairs, args.pair_mib, args.reps)


if __name__ == "__main__":
    main()
