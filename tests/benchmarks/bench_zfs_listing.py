# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (inside the VM): what reading zfs_snapshot copies' guids costs.

zfs_snapshot's ``list_copies`` reads our marks over every snapshot of the
host (``zfs get -s local,received``). The guid, a native property (source
"-"), is not in that output. Two ways to add it, compared here on one zpool
holding ``--ours`` marked snapshots and ``--foreign`` snapshots of others:

* one call: ``zfs get -s local,received,none pitcopy:pool,pitcopy:version,guid``
  (every snapshot's guid and unset marks are printed too);
* two calls: the marks as before, then ``zfs get guid`` over ours only.

Prints the median wall time of ``--reps`` runs of each and the output
size; asserts nothing.

Run: tests/vm/run.sh --zfs -- python tests/benchmarks/bench_zfs_listing.py [--ours 30] [--foreign 300]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid


def run(argv):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True).stdout


def snapshot_many(parent, children, count, prefix, marks=()):
    """``count`` snapshots of each of ``children`` new datasets under
    ``parent``: one ``zfs snapshot -r`` per name (ZFS takes one snapshot of a
    dataset per transaction group: several names of one dataset in one
    command or channel program fail with "multiple snapshots of same fs")."""
    for i in range(children):
        run(["zfs", "create", "%s/c%d" % (parent, i)])
    opts = []
    for k, v in marks:
        opts += ["-o", "%s=%s" % (k, v)]
    names = []
    for i in range(count):
        run(["zfs", "snapshot", "-r"] + opts + ["%s@%s-%04d" % (parent, prefix, i)])
        names += ["%s/c%d@%s-%04d" % (parent, c, prefix, i) for c in range(children)]
        names.append("%s@%s-%04d" % (parent, prefix, i))
    return names


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", type=int, default=30)
    ap.add_argument("--foreign", type=int, default=300)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="pitcopy-bench-list-")
    pool = "pcl%s" % uuid.uuid4().hex[:6]
    img = os.path.join(work, "img")
    with open(img, "wb") as fh:
        fh.truncate(512 * 1024 * 1024)
    run(["zpool", "create", "-f", "-o", "cachefile=none", "-m", os.path.join(work, "mnt"), pool, img])
    try:
        run(["zfs", "create", pool + "/db"])
        run(["zfs", "create", pool + "/other"])
        # ours: pitcopy:pool set on each snapshot itself (local), as -o does
        per = max(1, args.ours // 10)
        names = snapshot_many(pool + "/db", 9, per, "pitcopy-P", (("pitcopy:pool", "P"), ("pitcopy:version", "1")))
        snapshot_many(pool + "/other", 19, max(1, args.foreign // 20), "hourly")
        base = ["zfs", "get", "-H", "-p", "-o", "name,property,value,source", "-t", "snapshot"]
        one, two, size1, size2 = [], [], 0, 0
        for dummy in range(args.reps):
            t0 = time.monotonic()
            out = run(base + ["-s", "local,received,none", "pitcopy:pool,pitcopy:version,guid"])
            one.append(time.monotonic() - t0)
            size1 = len(out)
            t0 = time.monotonic()
            out = run(base + ["-s", "local,received", "pitcopy:pool,pitcopy:version"])
            out2 = run(base + ["guid"] + names)
            two.append(time.monotonic() - t0)
            size2 = len(out) + len(out2)
        print("zfs_snapshot listing with guids: %d snapshots of ours, %d of others, %d runs"
              % (args.ours, args.foreign, args.reps))
        print("  one call  (-s local,received,none + guid): median %7.1f ms, %7d bytes of output"
              % (statistics.median(one) * 1000, size1))
        print("  two calls (marks, then guid of ours):     median %7.1f ms, %7d bytes of output"
              % (statistics.median(two) * 1000, size2))
    finally:
        run(["zpool", "destroy", "-f", pool])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
