# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scale curves of the benchmark harness as PNG: wall time and copy window
against N, one line per method, from the harness's ``--json`` files.

    python tests/benchmarks/plot.py ROWS.json [ROWS.json ...] --out DIR [--prefix btrfs]

Needs matplotlib and nothing else (no collection import), so any Python
that has matplotlib can draw the harness's figures; matplotlib is not one of
the project's pinned test requirements (docs/performance.md).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import os
import sys

MISSING = ("plots: matplotlib is not installed in %s; draw them from the --json file with a Python that has it:"
           " python tests/benchmarks/plot.py ROWS.json --out DIR (for example from a throw-away venv:"
           " python3 -m venv .cache/bench-plot && .cache/bench-plot/bin/pip install matplotlib)")


def plot(rows, outdir, prefix, title=""):
    """Two PNGs (wall, window) into outdir; [] and a message without matplotlib."""
    try:
        import matplotlib  # pylint: disable=import-outside-toplevel
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    except ImportError:
        print(MISSING % sys.executable)
        return []
    os.makedirs(outdir, exist_ok=True)
    series = {}
    for r in rows:
        if r.get("wall") is not None and "error" not in r:
            series.setdefault(r["method"], []).append(r)
    made = []
    for key, ylabel in (("wall", "wall time of one version (s)"), ("window", "copy window (s)")):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        drawn = 0
        for method, rs in sorted(series.items()):
            pts = sorted((r["n"], r[key]) for r in rs if r.get(key) is not None)
            if len(set(p[0] for p in pts)) < 2:
                continue  # one N is a point, not a curve
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=method)
            drawn += 1
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("volumes (N)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        ax.set_title("%s %s" % (prefix, title), fontsize=9)
        path = os.path.join(outdir, "%s-%s.png" % (prefix, key))
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path)
        print("plot: %s" % path)
    return made


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("rows", nargs="+", help="--json files of tests/benchmarks/harness.py")
    ap.add_argument("--out", required=True)
    ap.add_argument("--prefix", default="btrfs")
    args = ap.parse_args(argv)
    rows, dates = [], []
    for path in args.rows:
        with open(path) as fh:
            data = json.load(fh)
        rows.extend(data["rows"])
        dates.append(data.get("date", "")[:10])
    made = plot(rows, args.out, args.prefix, title="(%s)" % ", ".join(sorted(set(dates))))
    return 0 if made else 1


if __name__ == "__main__":
    sys.exit(main())
