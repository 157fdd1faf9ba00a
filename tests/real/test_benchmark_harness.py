# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The benchmark harness (tests/benchmarks/harness.py) as a CI smoke test, in
the btrfs stage: its cheap methods at N=3, one round, on a real loop-backed
btrfs. It fails only when a method errors or gives no figure, never on
timing (figures on a shared CI machine say nothing about speed); the full
runs are on demand (docs/performance.md). The same for the replication
benchmark (tests/benchmarks/bench_btrfs_replication.py: pitcopy's push
against btrbk and the bare send | ssh receive) at 8 MiB, two versions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.btrfs

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(os.path.dirname(HERE), "benchmarks", "harness.py")
CHEAP = ["bare", "engine", "module", "btrbk"]
# methods whose copies are snapshots the harness reads back (their otime spread)
SNAPSHOTS = ["bare", "engine", "module", "btrbk"]


def _harness(tmp_path, *args):
    out = str(tmp_path / "rows.json")
    proc = subprocess.run([sys.executable, HARNESS] + list(args) + ["--json", out], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, check=False)
    print(proc.stdout)  # the table, in the test's captured output
    tail = proc.stdout[-3000:]
    assert proc.returncode == 0, "harness %s failed (rc %d):\n%s" % (" ".join(args), proc.returncode, tail)
    with open(out) as fh:
        return json.load(fh)["rows"]


def test_harness_cheap_methods_run_on_btrfs(tmp_path):
    rows = _harness(tmp_path, "btrfs", "--n", "3", "--rounds", "1", "--cheap")
    assert sorted(r["method"] for r in rows) == sorted(CHEAP)
    for r in rows:
        assert "error" not in r, r
        assert r["n"] == 3 and r["wall"] > 0, r
        if r["method"] in SNAPSHOTS:
            # (first-to-last otime in s, transactions): three snapshots read back
            assert r["spread"] is not None and r["spread"][1] >= 1, r
    module = [r for r in rows if r["method"] == "module"][0]
    assert module["task"] is not None and 0 < module["task"] <= module["wall"], module
    assert module["window"] is not None, module


def test_harness_engine_alone_on_the_memory_backend(tmp_path):
    rows = _harness(tmp_path, "memory", "--n", "10", "100", "--rounds", "1")
    assert [(r["method"], r["n"]) for r in rows] == [("engine-mem", 10), ("engine-mem", 100)]
    assert all(r["wall"] > 0 and r["define"] > 0 for r in rows), rows


REPLICATION = os.path.join(os.path.dirname(HERE), "benchmarks", "bench_btrfs_replication.py")


def test_replication_benchmark_runs_every_method(tmp_path):
    """tests/benchmarks/bench_btrfs_replication.py at 8 MiB and two versions
    (one full, one incremental) between two test hosts: every method runs
    and gives figures; nothing about timing or ratios."""
    out = str(tmp_path / "repl.json")
    proc = subprocess.run([sys.executable, REPLICATION, "--size-mib", "8", "--versions", "2", "--json", out],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300,
                          check=False)
    print(proc.stdout)
    assert proc.returncode == 0, "replication benchmark failed (rc %d):\n%s" % (proc.returncode, proc.stdout[-3000:])
    with open(out) as fh:
        rows = json.load(fh)["rows"]
    assert sorted((r["method"], r["version"]) for r in rows) == \
        sorted((m, v) for m in ("pitcopy", "btrbk", "bare") for v in (1, 2)), rows
    for r in rows:
        assert "error" not in r and r["wall"] > 0 and r["rx"] > 0, r
    assert all(r["stream"] > 0 for r in rows if r["method"] == "pitcopy"), rows
