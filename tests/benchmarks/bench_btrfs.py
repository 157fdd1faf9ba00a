# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (prints figures, asserts nothing): one version of a btrfs pool
of N subvolumes (default 50) on a loop-backed btrfs, natively; the methods
this script always compared, now run by tests/benchmarks/harness.py:

    python tests/benchmarks/bench_btrfs.py [--sources 50] [--rounds 3]

is ``harness.py btrfs --n SOURCES --rounds ROUNDS --methods
bare,backend,backend-cmd,engine,send,btrbk``. The harness has the other
methods too (the module path, snapper, community.general.btrfs_subvolume),
scale curves and plots: see docs/performance.md.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402  pylint: disable=wrong-import-position


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--sources", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    return harness.main(["btrfs", "--n", str(args.sources), "--rounds", str(args.rounds),
                         "--methods", "bare,backend,backend-cmd,engine,send,btrbk"])


if __name__ == "__main__":
    sys.exit(main())
