# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (inside the VM): one copy version of 50 thin LVs.

Compares, in one run, on one thin pool in a VG on a sparse file under /tmp:

* the bare tool loop: one ``lvcreate -s`` process per thin LV (what a
  per-volume Ansible loop or a naive script does);
* the backend with ``batch = False``: the same one process per snapshot, but
  with its staging names, tags and checks (to show what batching buys);
* the backend's ``create_copies`` as shipped: every snapshot from ONE ``lvm``
  process reading the commands on stdin, inside a CopyWindow;
* the whole engine: ``plan_copy().apply()`` (discovery, capacity check,
  journal, create, promote, state save) with its copy window;
* community.general.lvol in an Ansible loop, if that collection is installed
  and ``--lvol`` is given (it takes ~10x the bare loop).

For each: median wall time of ``--reps`` runs and the copy window (for the
loop: from the start of the first to the end of the last lvcreate, i.e. how
far apart the first and last snapshot are). Prints figures and ratios;
asserts nothing.

Run: tests/vm/run.sh -- python tests/benchmarks/bench_vm_lvm.py [--lvs 50] [--reps 1] [--lvol]
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
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import LvmThinBackend  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore  # noqa: E402

ENV = dict(os.environ, LC_ALL="C", LVM_SUPPRESS_FD_WARNINGS="1",
           PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def sh(*argv, **kw):
    return subprocess.run([str(a) for a in argv], check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=ENV, **kw).stdout.decode()


def remove_lvs(names):
    if names:
        script = "".join("lvremove -y -q %s\n" % n for n in names)
        subprocess.run(["lvm"], input=script.encode(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
                       check=False)


def remove_vg(vg, loop, workdir):
    """The benchmark's VG, its PV, its loop device and its work directory."""
    subprocess.call(["vgremove", "-ff", "-y", vg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    subprocess.call(["pvremove", "-ff", "-y", loop], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    subprocess.call(["losetup", "-d", loop], env=ENV)
    shutil.rmtree(workdir, ignore_errors=True)


def bare_loop(vg, lvs, tag):
    names = []
    t0 = time.monotonic()
    first_end = last_start = None
    for lv in lvs:
        s = time.monotonic()
        sh("lvcreate", "-q", "-s", "-n", "%s-%s" % (lv, tag), "%s/%s" % (vg, lv))
        if first_end is None:
            first_end = time.monotonic()
        last_start = s
        names.append("%s/%s-%s" % (vg, lv, tag))
    total = time.monotonic() - t0
    # window: from the first snapshot's start to the last one's end
    return total, total * 1000.0, names, (last_start - t0)


def backend_once(runner, vg, lvs, batch, tag):
    b = LvmThinBackend(runner)
    b.batch = batch
    d = PoolDefinition(name="bench%s" % tag, technology="lvm_thin", sources=tuple("%s/%s" % (vg, lv) for lv in lvs),
                       versions=1, consistency="none")
    pairs = [CopyPair(s, b.implied_target(d.name, "01", s)) for s in d.sources]
    win = CopyWindow(d, runner)
    t0 = time.monotonic()
    out = b.create_copies(d, 1, pairs, win)
    total = time.monotonic() - t0
    b.discard(d, out.staged)
    return total, out.window_ms


def engine_once(runner, vg, lvs, state_dir, n):
    eng = RecordEngine(StateStore(state_dir), lambda tech: LvmThinBackend(runner=runner))
    name = "benchengine%d" % n
    d = PoolDefinition(name=name, technology="lvm_thin", sources=tuple("%s/%s" % (vg, lv) for lv in lvs), versions=1,
                       consistency="none")
    with eng.session(name) as s:
        s.plan_define(d).apply()
    t0 = time.monotonic()
    with eng.session(name) as s:
        res = s.plan_copy().apply()
    total = time.monotonic() - t0
    with eng.session(name) as s:
        s.plan_delete(res["version"]["number"]).apply()
    return total, res["copy_window_ms"]


def lvol_once(vg, lvs, workdir):
    play = os.path.join(workdir, "lvol.yml")
    with open(play, "w") as fh:
        fh.write("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                 "    - community.general.lvol:\n        vg: %s\n        lv: '{{ item }}'\n"
                 "        snapshot: '{{ item }}-lvol'\n      loop: %s\n" % (vg, list(lvs)))
    t0 = time.monotonic()
    subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", play], check=True, env=ENV,
                   stdout=subprocess.DEVNULL)
    total = time.monotonic() - t0
    remove_lvs(["%s/%s-lvol" % (vg, lv) for lv in lvs])
    return total, total * 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lvs", type=int, default=50)
    ap.add_argument("--reps", type=int, default=int(os.environ.get("PITCOPY_BENCH_N", "1")))
    ap.add_argument("--lvol", action="store_true")
    args = ap.parse_args()
    if not os.path.exists("/dev/mapper/control"):
        sys.exit("no device-mapper here: run inside the VM (tests/vm/run.sh -- python %s)" % sys.argv[0])
    workdir = tempfile.mkdtemp(prefix="pitcopy-bench-lvm-")
    vg = "pcbench%s" % uuid.uuid4().hex[:6]
    img = os.path.join(workdir, "pv.img")
    with open(img, "wb") as fh:
        fh.truncate(2 * 1024 ** 3)
    loop = sh("losetup", "--find", "--show", img).strip()
    runner = SubprocessRunner()
    results = {}
    try:
        sh("pvcreate", "-q", loop)
        sh("vgcreate", "-q", vg, loop)
        sh("lvcreate", "-q", "-L", "1G", "-T", "%s/tp" % vg)
        lvs = ["lv%02d" % i for i in range(args.lvs)]
        script = "".join("lvcreate -q -V 8M -T %s/tp -n %s\n" % (vg, lv) for lv in lvs)
        subprocess.run(["lvm"], input=script.encode(), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=ENV)
        print("pool of %d thin LVs ready in VG %s; %d rep(s) each" % (args.lvs, vg, args.reps))
        sys.stdout.flush()
        for r in range(args.reps):
            tot, win, names, spread = bare_loop(vg, lvs, "r%d" % r)
            remove_lvs(names)
            results.setdefault("bare loop of lvcreate -s", []).append((tot, win))
            print("  bare loop: %.1f s (first and last snapshot %.1f s apart)" % (tot, spread))
            sys.stdout.flush()
            results.setdefault("backend, one process per snapshot", []).append(
                backend_once(runner, vg, lvs, False, "a%d" % r))
            results.setdefault("backend create_copies (one lvm shell)", []).append(
                backend_once(runner, vg, lvs, True, "b%d" % r))
            results.setdefault("engine plan_copy().apply()", []).append(
                engine_once(runner, vg, lvs, os.path.join(workdir, "state"), r))
            if args.lvol:
                results.setdefault("community.general.lvol loop", []).append(lvol_once(vg, lvs, workdir))
    finally:
        remove_vg(vg, loop, workdir)
    base = statistics.median(tw[0] for tw in results["bare loop of lvcreate -s"])
    base_w = statistics.median(tw[1] for tw in results["bare loop of lvcreate -s"])
    print("\n%-42s %10s %14s %12s %12s"
          % ("method (%d thin LVs)" % args.lvs, "time s", "copy window s", "time ratio", "window ratio"))
    for name, vals in results.items():
        t = statistics.median(v[0] for v in vals)
        w = statistics.median(v[1] for v in vals) / 1000.0
        print("%-42s %10.2f %14.2f %11.2fx %11.2fx" % (name, t, w, t / base, w * 1000.0 / base_w))
    if not args.lvol:
        print("community.general.lvol: not run (--lvol, needs community.general; real-storage notes measured "
              "513 s for 50, ~10x the bare loop)")
    print("ratios are against the bare loop (lower is better)")


if __name__ == "__main__":
    main()
