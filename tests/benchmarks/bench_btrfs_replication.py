# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark (prints figures, asserts nothing): incremental btrfs replication
to another host, pitcopy's btrfs_send push against btrbk and the bare
``btrfs send | ssh btrfs receive`` loop, on the same data, in the same run
(issue 14). Natively, as root:

    PYTHONPATH=$PWD/.cache/coll-link .venv/bin/python \\
        tests/benchmarks/bench_btrfs_replication.py [--size-mib 1024] \\
        [--versions 4] [--change-pct 1] [--methods pitcopy,btrbk,bare] [--json FILE]

Two test hosts (tests/real/hosts.py: network namespaces joined by a veth
pair, each with its own sshd), a loop-backed btrfs for the sources on host a
and one for the targets on host b. A seed subvolume of --size-mib MiB of
random data (files of 16 MiB) is made once; each method gets its own
source, a writable snapshot of the seed (the same data, shared extents).
Version 1 is the data as it is (a full send); before each later version
--change-pct percent of it is rewritten, in 64 KiB blocks at the same
offsets with the same bytes for every method. Per version the methods run
one after the other, in an order that rotates, each with the previous
writes synced (not timed); the seed is read once before, so every method
reads the shared data from the page cache (the loop image's).

  pitcopy  RecordEngine copy_version of a btrfs_send pool whose target pool
           is on host b (``host: root@b``, pool-level ssh settings); one
           target pool (versions=1, so version N is sent from the base of
           version N-1 that the target pool holds; with --keep 2 it is sent
           from N-2, two changes' worth); the previous copy rotated away
  btrbk    ``btrbk -c CONF run`` (Debian btrbk): snapshot_dir on the
           source fs, ``target send-receive ssh://b/DIR``,
           snapshot_preserve_min / target_preserve_min latest (the same
           retention: one copy on b, one parent on a); the test hosts'
           known_hosts through an ``ssh`` wrapper first in PATH (btrbk has no
           option for ssh -o settings)
  bare     ``btrfs subvolume snapshot -r`` + ``btrfs send [-p previous] |
           ssh b btrfs receive``, then the previous snapshot deleted here and
           on b (the same job, no bookkeeping: the lower bound)

Measured per version: wall time of the method's step; bytes on the wire,
from the counters of host b's veth interface (``ip -s link``: rx, what
reached b, ssh framing and every other ssh session of the step included);
pitcopy's own recorded ``bytes_sent`` (the send stream). The table gives
pitcopy/btrbk and pitcopy/bare for time and wire bytes, for version 1, for
the incremental versions together, and for all. Results:
docs/performance.md, "Incremental replication against btrbk".
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "real"))

import conftest  # noqa: E402  (tests/real/conftest.py: LoopFs, import path)
import hosts  # noqa: E402  (tests/real/hosts.py: HostPair)

from ansible_collections.pitcopy.versions.plugins.module_utils._backends import backend_class  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (  # noqa: E402
    PoolDefinition,
    SshSettings,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore  # noqa: E402

SBIN_PATH = conftest.SBIN_PATH
TOOL_ENV = dict(os.environ, PATH=SBIN_PATH, LC_ALL="C")
METHODS = ("pitcopy", "btrbk", "bare")
FILE_MIB = 16
BLOCK = 64 * 1024
MIB = 1024.0 * 1024.0


class MethodError(Exception):
    """A method failed: its row says why."""


def sh(argv, env=None, timeout=3600):
    proc = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, env=env or TOOL_ENV, check=False, universal_newlines=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise MethodError("%s failed (rc %d): %s" % (" ".join(str(a) for a in argv[:5]), proc.returncode,
                                                     (proc.stderr or proc.stdout).strip()[-800:]))
    return proc.stdout


def shpipe(left, right, env=None):
    """``left | right``, the two processes joined by the kernel (nothing
    copied through this one)."""
    p1 = subprocess.Popen([str(a) for a in left], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, env=env or TOOL_ENV)
    p2 = subprocess.Popen([str(a) for a in right], stdin=p1.stdout, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env or TOOL_ENV)
    p1.stdout.close()
    out2, err2 = p2.communicate()
    err1 = p1.stderr.read()
    p1.stderr.close()
    p1.wait()
    if p1.returncode != 0 or p2.returncode != 0:
        raise MethodError("%s (rc %s) | %s (rc %s): %s %s" % (
            " ".join(map(str, left[:4])), p1.returncode, " ".join(map(str, right[-4:])), p2.returncode,
            err1.decode("utf-8", "replace").strip()[-400:], err2.decode("utf-8", "replace").strip()[-400:]))
    return out2


def load_average():
    return "%.2f %.2f %.2f" % os.getloadavg()


def link_bytes(host):
    """(rx, tx) bytes of the host's veth interface, read in its namespace."""
    out = sh(["ip", "-n", host.netns, "-j", "-s", "link", "show", "dev", "pcv0"])
    st = json.loads(out)[0]["stats64"]
    return st["rx"]["bytes"], st["tx"]["bytes"]


# --- the site: two hosts, the source fs on a, the target fs on b --------------

class Site:
    def __init__(self, workdir, args):
        self.workdir, self.args = workdir, args
        self.filesystems = []
        self.pair = None
        size = args.size_mib * 1024 * 1024
        self.pair = hosts.HostPair.create(os.path.join(workdir, "hosts"), subnet=args.subnet)
        self.src = self._fs("src", int(size * 1.5) + 1024 * 1024 * 1024)
        # room for every method's full copy and pitcopy's capacity rule (a new
        # version needs its full size free; replaced copies do not count)
        self.dst = self._fs("dst", int(size * 2 * len(args.methods)) + 2 * 1024 * 1024 * 1024)
        self.seed = os.path.join(self.src.mountpoint, "seed")
        sh(["btrfs", "subvolume", "create", self.seed])
        # a deterministic layout: files of 16 MiB (the last one shorter)
        self.files = []
        left, i = size, 0
        while left > 0:
            n = min(left, FILE_MIB * 1024 * 1024)
            name = "f%04d" % i
            with open(os.path.join(self.seed, name), "wb") as fh:
                for dummy in range(0, n, 1024 * 1024):
                    fh.write(os.urandom(min(1024 * 1024, n - dummy)))
            self.files.append((name, n))
            left -= n
            i += 1
        sh(["btrfs", "filesystem", "sync", self.src.mountpoint])
        read_all(self.seed)
        self.size = size
        ssh = self.pair.ssh_options()
        self.ssh_argv = ["ssh", "-i", ssh["identity_file"], "-o", "BatchMode=yes"] + \
            [w for o in ssh["options"] for w in ("-o", o)]

    def _fs(self, name, size):
        fs = conftest.LoopFs.create(self.workdir, "btrfs", size, name)
        self.filesystems.append(fs)
        return fs

    def source_for(self, method):
        path = os.path.join(self.src.mountpoint, method, "data")
        os.makedirs(os.path.dirname(path))
        sh(["btrfs", "subvolume", "snapshot", self.seed, path])
        return path

    def target_dir(self, method, name="t"):
        d = os.path.join(self.dst.mountpoint, method, name)
        os.makedirs(d, mode=0o700)
        return d

    def changes(self, version):
        """The blocks rewritten before ``version``: [(file, offset, bytes)],
        the same for every method."""
        rnd = random.Random(version)
        blocks = []
        for name, n in self.files:
            blocks.extend((name, off) for off in range(0, n - BLOCK + 1, BLOCK))
        count = max(1, int(round(len(blocks) * self.args.change_pct / 100.0)))
        return [(name, off, os.urandom(BLOCK)) for name, off in sorted(rnd.sample(blocks, count))]

    def destroy(self):
        errors = []
        if self.pair is not None:
            errors.extend(self.pair.destroy())
        for fs in reversed(self.filesystems):
            try:
                errors.extend(fs.destroy() or [])
            except Exception as exc:  # pylint: disable=broad-except
                errors.append("%s: %s" % (fs.mountpoint, exc))
        return errors


def apply_changes(source, changes):
    handles = {}
    try:
        for name, off, data in changes:
            fh = handles.get(name)
            if fh is None:
                fh = handles[name] = open(os.path.join(source, name), "r+b")
            fh.seek(off)
            fh.write(data)
    finally:
        for fh in handles.values():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()


def read_all(path):
    """The seed's data read once (not timed): the loop device's image keeps
    it in the page cache, and the sources, snapshots of the seed, share its
    extents, so no method pays for reading what another one read first."""
    for name in sorted(os.listdir(path)):
        with open(os.path.join(path, name), "rb") as fh:
            while fh.read(4 * 1024 * 1024):
                pass


# --- methods --------------------------------------------------------------------

class Method:
    name = label = ""

    def __init__(self, site):
        self.site = site
        self.source = site.source_for(self.name)

    def prepare(self):
        """Set-up (not timed)."""

    def version(self, number):
        """One version, timed by the caller; returns the stream bytes it
        knows of (or None)."""
        raise NotImplementedError


class Pitcopy(Method):
    name, label = "pitcopy", "RecordEngine copy_version, btrfs_send, target pool on host b"

    def prepare(self):
        pair = self.site.pair
        self.runner = SubprocessRunner(env={"PATH": SBIN_PATH})
        self.store = StateStore(os.path.join(self.site.workdir, "state"))
        self.engine = RecordEngine(self.store, lambda tech: backend_class(tech)(runner=self.runner))
        tps = tuple(TargetPool("r%d" % (i + 1), (self.site.target_dir(self.name, "r%d" % (i + 1)),),
                               host=pair.b.destination) for i in range(self.site.args.keep))
        ssh = pair.ssh_options()
        self.pool = "bench-repl-%s" % os.urandom(3).hex()
        self.definition = PoolDefinition(
            name=self.pool, technology="btrfs_send", sources=(self.source,), versions=self.site.args.keep,
            target_pools=tps, ssh=SshSettings(identity_file=ssh["identity_file"], options=tuple(ssh["options"])))
        with self.engine.session(self.pool) as s:
            self.engine.check_definition(self.definition)
            s.plan_define(self.definition).apply()

    def version(self, number):
        with self.engine.session(self.pool) as s:
            result = s.plan_copy().apply()
        v = result["version"]
        if v["status"] != "valid":
            raise MethodError("version %d is %s" % (number, v["status"]))
        pairs = v["pairs"]
        self.base = pairs[0].get("base_version")
        want = None if number <= self.site.args.keep else number - self.site.args.keep
        if self.base != want:
            raise MethodError("version %d was sent from base %s, expected %s" % (number, self.base, want))
        return sum(p.get("bytes_sent") or 0 for p in pairs)


class Btrbk(Method):
    name, label = "btrbk", "btrbk run (Debian btrbk), target send-receive ssh://b"

    def prepare(self):
        site, pair = self.site, self.site.pair
        work = os.path.join(site.workdir, "btrbk")
        os.makedirs(work)
        # btrbk runs ``ssh``; the wrapper adds the test hosts' known_hosts
        bindir = os.path.join(work, "bin")
        os.makedirs(bindir)
        ssh = pair.ssh_options()
        wrapper = os.path.join(bindir, "ssh")
        with open(wrapper, "w") as fh:
            fh.write("#!/bin/sh\nexec /usr/bin/ssh %s \"$@\"\n" % " ".join("-o %s" % o for o in ssh["options"]))
        os.chmod(wrapper, 0o755)
        self.env = dict(TOOL_ENV, PATH=os.pathsep.join((bindir, SBIN_PATH)))
        self.target = site.target_dir(self.name)
        snapdir = os.path.join(os.path.dirname(self.source), "snapshots")
        os.makedirs(snapdir)
        self.conf = os.path.join(work, "btrbk.conf")
        lines = [
            "timestamp_format long-iso",
            "lockfile %s" % os.path.join(work, "btrbk.lock"),
            "ssh_identity %s" % ssh["identity_file"],
            "ssh_user root",
            "snapshot_preserve_min latest",
            "snapshot_preserve no",
            "target_preserve_min latest",
            "target_preserve no",
            # parents only from btrbk's own snapshot and target directories:
            # with the default (mountpoint) btrbk also takes the other
            # methods' copies of the shared seed as parents, and its first
            # version is then incremental
            "incremental_resolve directory",
            "volume %s" % site.src.mountpoint,
            "  snapshot_dir %s" % os.path.relpath(snapdir, site.src.mountpoint),
            "  subvolume %s" % os.path.relpath(self.source, site.src.mountpoint),
            "    target send-receive ssh://%s%s" % (pair.b.address, self.target),
        ]
        with open(self.conf, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        self.snapdir = snapdir

    def version(self, number):
        sh(["btrbk", "-c", self.conf, "-q", "run"], env=self.env)
        got = sh(["ls", "-A", "--", self.target]).split()
        if len(got) != 1:
            raise MethodError("version %d: %s holds %s, expected one backup" % (number, self.target, got))
        return None


class Bare(Method):
    name, label = "bare", "btrfs subvolume snapshot -r; btrfs send [-p] | ssh b btrfs receive; old deleted"

    def prepare(self):
        self.target = self.site.target_dir(self.name)
        self.snapdir = os.path.join(os.path.dirname(self.source), "snapshots")
        os.makedirs(self.snapdir)
        self.previous = None
        self.dest = self.site.pair.b.destination

    def version(self, number):
        snap = os.path.join(self.snapdir, "v%d" % number)
        sh(["btrfs", "subvolume", "snapshot", "-r", self.source, snap])
        send = ["btrfs", "send", "-q"] + (["-p", self.previous] if self.previous else []) + [snap]
        shpipe(send, self.site.ssh_argv + [self.dest, "btrfs receive %s" % self.target])
        if self.previous:
            old = os.path.basename(self.previous)
            sh(["btrfs", "subvolume", "delete", self.previous])
            sh(self.site.ssh_argv + [self.dest, "btrfs subvolume delete %s/%s" % (self.target, old)])
        self.previous = snap
        return None


CLASSES = {"pitcopy": Pitcopy, "btrbk": Btrbk, "bare": Bare}


# --- the run and its table ------------------------------------------------------

def run(args, workdir):
    site = Site(workdir, args)
    rows = []
    try:
        with site.pair.a.entered():
            methods = []
            for name in args.methods:
                m = CLASSES[name](site)
                m.prepare()
                methods.append(m)
            failed = set()
            for number in range(1, args.versions + 1):
                changes = site.changes(number) if number > 1 else []
                k = (number - 1) % len(methods)
                for m in methods[k:] + methods[:k]:
                    if m.name in failed:
                        continue
                    apply_changes(m.source, changes)
                    sh(["sync"])
                    rx0, tx0 = link_bytes(site.pair.b)
                    row = {"method": m.name, "version": number, "load": load_average()}
                    t0 = time.monotonic()
                    try:
                        stream = m.version(number)
                        row["wall"] = time.monotonic() - t0
                    except (MethodError, subprocess.SubprocessError, OSError, RuntimeError) as exc:
                        row["error"] = "%s: %s" % (type(exc).__name__, exc)
                        failed.add(m.name)
                    sh(["sync"])
                    rx1, tx1 = link_bytes(site.pair.b)
                    row.update(rx=rx1 - rx0, tx=tx1 - tx0, stream=stream if "error" not in row else None)
                    rows.append(row)
                    print_version_row(row)
    finally:
        errors = site.destroy()
        if errors:
            print("clean-up: %s" % "; ".join(errors), file=sys.stderr)
    return rows


def fmt(v, spec="%.3f"):
    return spec % v if v is not None else "-"


def print_version_row(row):
    if "error" in row:
        print("%-8s v%-3d ERROR %s" % (row["method"], row["version"], row["error"]))
    else:
        print("%-8s v%-3d %9.3f s  wire %10.3f MiB (b rx; tx %.3f MiB)  stream %s MiB  [%s]" % (
            row["method"], row["version"], row["wall"], row["rx"] / MIB, row["tx"] / MIB,
            fmt(row["stream"] / MIB if row["stream"] is not None else None), row["load"]))
    sys.stdout.flush()


def summarize(rows, methods, versions):
    """{phase: {method: {wall, rx, stream}}} for ``first`` (version 1),
    ``incremental`` (2..N) and ``total``; None where a method errored."""
    phases = {"first": [1], "incremental": list(range(2, versions + 1)), "total": list(range(1, versions + 1))}
    out = {}
    for phase, numbers in phases.items():
        out[phase] = {}
        for m in methods:
            mine = [r for r in rows if r["method"] == m and r["version"] in numbers]
            if not numbers or len(mine) != len(numbers) or any("error" in r for r in mine):
                out[phase][m] = None
                continue
            streams = [r["stream"] for r in mine]
            out[phase][m] = {"wall": sum(r["wall"] for r in mine), "rx": sum(r["rx"] for r in mine),
                             "stream": sum(streams) if all(s is not None for s in streams) else None}
    return out


def ratio(a, b):
    return a / b if a is not None and b else None


def print_summary(summary, methods):
    print()
    print("%-12s %-8s %9s %12s %12s %11s %10s %11s %10s" % (
        "phase", "method", "wall s", "wire MiB", "stream MiB", "wall/btrbk", "wall/bare", "wire/btrbk",
        "wire/bare"))
    for phase in ("first", "incremental", "total"):
        figures = summary[phase]
        for m in methods:
            f = figures.get(m)
            if f is None:
                print("%-12s %-8s %9s" % (phase, m, "-"))
                continue
            cells = []
            for key in ("wall", "rx"):
                for other in ("btrbk", "bare"):
                    o = figures.get(other)
                    cells.append(fmt(ratio(f[key], o[key]) if o else None, "%.2f"))
            print("%-12s %-8s %9.3f %12.3f %12s %11s %10s %11s %10s" % (
                phase, m, f["wall"], f["rx"] / MIB, fmt(f["stream"] / MIB if f["stream"] is not None else None),
                cells[0], cells[1], cells[2], cells[3]))
    sys.stdout.flush()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--size-mib", type=int, default=1024, help="the source's data in MiB (default 1024)")
    ap.add_argument("--versions", type=int, default=4, help="versions per method (default 4: one full, 3 incremental)")
    ap.add_argument("--change-pct", type=float, default=1.0, help="percent of the data rewritten per version")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated, of %s" % ",".join(METHODS))
    ap.add_argument("--keep", type=int, default=1,
                    help="pitcopy's versions (one target pool each; version N is sent from N-keep); default 1")
    ap.add_argument("--subnet", default="10.231.9", help="the test hosts' /30 (default 10.231.9)")
    ap.add_argument("--json", help="write the rows and the summary to this file")
    args = ap.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in args.methods if m not in CLASSES]
    if unknown or not args.methods:
        ap.error("unknown method(s) %s; declared: %s" % (", ".join(unknown), ", ".join(METHODS)))
    if args.size_mib < 1 or args.versions < 1 or not 0 < args.change_pct <= 100 or args.keep < 1:
        ap.error("--size-mib, --versions and --keep must be at least 1, --change-pct in (0, 100]")
    missing = hosts.missing_requirements()
    for tool, pkg in (("btrfs", "btrfs-progs"), ("mkfs.btrfs", "btrfs-progs"), ("losetup", "util-linux")) + \
            ((("btrbk", "btrbk"),) if "btrbk" in args.methods else ()):
        if not conftest.which(tool):
            missing.append("%s (Debian %s)" % (tool, pkg))
    if missing:
        sys.exit("bench_btrfs_replication: needs %s" % "; ".join(missing))
    # a TERM (a timeout, an operator) cleans up as an error does
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    started = datetime.datetime.now(datetime.timezone.utc)
    print("pitcopy btrfs replication benchmark: %d MiB, %d versions, %.2f%% changed per version, keep %d, "
          "methods %s; %s, %d cpu, kernel %s, %s UTC, load average %s" % (
              args.size_mib, args.versions, args.change_pct, args.keep, ",".join(args.methods), platform.node(),
              os.cpu_count(), platform.release(), started.strftime("%Y-%m-%d %H:%M"), load_average()))
    sys.stdout.flush()
    workdir = tempfile.mkdtemp(prefix=conftest.WORKDIR_PREFIX + "bench-repl-")
    with open(os.path.join(workdir, conftest.OWNER_FILE), "w") as fh:
        fh.write(conftest.OWNER + "\n")
    try:
        rows = run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    summary = summarize(rows, args.methods, args.versions)
    print_summary(summary, args.methods)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"argv": sys.argv, "date": started.isoformat(), "cpus": os.cpu_count(),
                       "kernel": platform.release(), "args": vars(args), "rows": rows, "summary": summary},
                      fh, indent=1)
    errors = [r for r in rows if "error" in r]
    if errors:
        print("%d step(s) errored: %s" % (len(errors), ", ".join("%s v%d" % (r["method"], r["version"])
                                                                 for r in errors)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
