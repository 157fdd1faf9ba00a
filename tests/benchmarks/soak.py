# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Soak (prints figures, no timed assertions): many versions on one copy pool
and many copy pools on one host, through the RecordEngine with a real backend
of ``--technology``, on storage it makes and removes itself (root):

* btrfs_snapshot, btrfs_send: a loop-backed btrfs, natively;
* lvm_snapshot, lvm_thin, lvm_clone: a loop-backed VG (inside the UML guest:
  ``python3 tests/uml/guest.py run -- ...`` or tests/vm/run.sh);
* zfs_snapshot, zfs_send: a zpool on a sparse file (inside the qemu guest:
  ``tests/vm/run.sh --zfs -- ...``).

    # from the repository, after tests/setup.sh (btrfs full size: ~10 min)
    PYTHONPATH=$PWD/.cache/coll-link .venv/bin/python tests/benchmarks/soak.py --technology btrfs_snapshot
    PYTHONPATH=$PWD/.cache/coll-link .venv/bin/python tests/benchmarks/soak.py --technology btrfs_send \\
        --versions 20 --pools 10
    python3 tests/uml/guest.py run -- env PYTHONPATH=$PWD/.cache/coll-link .venv/bin/python \\
        tests/benchmarks/soak.py --technology lvm_thin --versions 60 --pools 20
    tests/vm/run.sh --zfs -- python tests/benchmarks/soak.py --technology zfs_snapshot --versions 30 --pools 10

(no CI stage runs it). It runs:
  a  ``--versions`` copy versions of ONE copy pool (2 sources, versions 3, so
     it rotates; 3 target pools where the technology lists targets), each as
     copy_version does, and every ``--verify-every`` versions a
     verify_records without repair; prints per decile the median ms per
     copy and per verify, and the state file size, so that flatness (or
     growth) is visible
  b  ``--pools`` copy pools in one state_dir (1-2 sources each, ``--pool-copies``
     versions each, versions 2), then the copy_pool_info listing of all pools
     and a verify of each; prints by pool index decile the median ms to
     define a pool (copy_pool checks the other pools' targets), per copy, per
     pool listed and per verify
  c  leak checks, printed as figures: volumes of ours no record names
     (subvolumes, LVs, datasets or snapshots carrying our mark), the
     expected copy count (versions kept x sources), recorded copies missing,
     staging and temporary names, marks without their copy (btrfs), journals
     and temporary state files left, open file descriptors of this process
     (before and after the engine work), and, after the script's own
     teardown, loop devices, mounts, device-mapper devices and zpools it
     created. Any leak (or any inconsistent verify) makes the exit status 1.
"""

from __future__ import absolute_import, division, print_function

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "real"))

import conftest  # noqa: E402  (tests/real/conftest.py: loop fs helpers, import path)

from ansible_collections.pitcopy.versions.plugins.module_utils._backends import backend_class  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner  # noqa: E402
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore  # noqa: E402

TECHNOLOGIES = ("btrfs_snapshot", "btrfs_send", "lvm_snapshot", "lvm_thin", "lvm_clone", "zfs_snapshot", "zfs_send")
#: versions of the pool of phase a
KEPT = 3
ENV = dict(os.environ, LC_ALL="C", PATH=conftest.SBIN_PATH)
MiB = 1024 * 1024


def sh(argv, check=True):
    proc = subprocess.run(argv, check=False, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
                          stdin=subprocess.DEVNULL, universal_newlines=True)
    if check and proc.returncode != 0:
        raise RuntimeError("%s failed (%s): %s" % (" ".join(argv), proc.returncode, proc.stderr.strip()))
    return proc.stdout


def ms(seconds):
    return seconds * 1000.0


def open_fds():
    """{fd: what it points at} of this process."""
    out = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            out[int(name)] = os.readlink(os.path.join("/proc/self/fd", name))
        except OSError:
            pass  # the fd of the listdir itself, closed by now
    return out


def deciles(n):
    """Index ranges [lo, hi) splitting 0..n into (at most) 10 buckets."""
    k = min(10, n)
    return [(n * i // k, n * (i + 1) // k) for i in range(k)]


def med(values):
    return "%8.1f" % statistics.median(values) if values else "%8s" % "-"


# --- storage of each family --------------------------------------------------------
#
# A storage makes sources (and the target volumes of technologies that list
# them), changes a source between versions, counts what is left of ours, and
# removes everything it made.


class BtrfsStorage:
    tools = ("btrfs", "mkfs.btrfs", "losetup")
    device = "/dev/loop-control"

    def __init__(self, technology, work):
        self.technology = technology
        self.fs = conftest.LoopFs.create(work, "btrfs", 2 * 1024 * MiB, "fs")
        self.devices = {self.fs.device}
        self.made_sources = set()

    def source(self, *parts):
        path = self.fs.path("src", *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sh(["btrfs", "subvolume", "create", path])
        self.made_sources.add(path)
        self.touch(path)
        return path

    def targets(self, pool, tp, sources):
        """One directory per source in target pool ``tp`` (btrfs_send)."""
        out = []
        for i in range(len(sources)):
            d = self.fs.path("tgt", pool, tp, str(i))
            os.makedirs(d)
            out.append(d)
        return tuple(out)

    def touch(self, source):
        with open(os.path.join(source, "data"), "ab") as fh:
            fh.write(os.urandom(4096))

    def copy_path(self, pair):
        if self.technology == "btrfs_send":
            return os.path.join(pair.target, os.path.basename(pair.source))
        return pair.target

    def subvolumes(self):
        out = sh(["btrfs", "subvolume", "list", self.fs.mountpoint])
        return set(os.path.join(self.fs.mountpoint, line.split(" path ", 1)[1]) for line in out.splitlines()
                   if " path " in line)

    def leaks(self, expected_pairs, kept):
        from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import (
            MARK_PREFIX,
            MARK_SUFFIX,
            STAGING_PREFIX,
            temp_mark_owner,
        )

        figures, leaks = [], []
        expected = set(self.copy_path(p) for p in expected_pairs)
        found = self.subvolumes()
        copies = found - self.made_sources
        figures.append("subvolumes %d: sources %d, copies %d (expected versions kept x sources = %d)"
                       % (len(found), len(found & self.made_sources), len(copies), kept))
        if len(copies & expected) != kept:
            leaks.append("%d recorded copies found, expected %d" % (len(copies & expected), kept))
        leaks.extend("subvolume no record names: %s" % p for p in sorted(copies - expected))
        leaks.extend("recorded copy missing: %s" % p for p in sorted(expected - found))
        marked, transient = set(), 0
        for d, dirs, files in os.walk(self.fs.mountpoint):
            for e in dirs + files:
                path = os.path.join(d, e)
                if e.startswith((STAGING_PREFIX, ".pitcopy-aside.")):
                    transient += 1
                    leaks.append("transient name left: %s" % path)
                elif temp_mark_owner(d, e) is not None:
                    transient += 1
                    leaks.append("temporary mark left: %s" % path)
                elif e.startswith(MARK_PREFIX) and e.endswith(MARK_SUFFIX):
                    copy = os.path.join(d, e[len(MARK_PREFIX):-len(MARK_SUFFIX)])
                    marked.add(copy)
                    if copy not in found:
                        leaks.append("mark without its copy: %s" % path)
                    elif copy not in expected:
                        leaks.append("mark of a copy no record names: %s" % path)
            # copies are read-only snapshots of sources: nothing of ours inside
            dirs[:] = [e for e in dirs if os.path.join(d, e) not in found or os.path.join(d, e) in self.made_sources]
        figures.append("marks %d: of a copy %d, of none %d; copies without a mark %d; staging names and temporary "
                       "marks %d" % (len(marked), len(marked & copies), len(marked - copies), len(copies - marked),
                                     transient))
        leaks.extend("recorded copy without a mark: %s" % p for p in sorted((copies & expected) - marked))
        return figures, leaks

    def teardown(self):
        return self.fs.destroy()

    def after_teardown(self, work):
        return []


class LvmStorage:
    tools = ("lvm", "lvcreate", "losetup", "dmsetup")
    #: without it this kernel has no device-mapper (run in the UML guest)
    device = "/dev/mapper/control"

    def __init__(self, technology, work):
        self.technology = technology
        self.vg = "soak%s" % uuid.uuid4().hex[:6]
        self.loop = conftest.LoopDevice.create(work, 8 * 1024 * MiB, name="pv")
        self.devices = {self.loop.device}
        # many LVs with tags: a larger metadata area than the default 1 MiB
        sh(["pvcreate", "-q", "--metadatasize", "16m", self.loop.device])
        sh(["vgcreate", "-q", "-s", "4M", self.vg, self.loop.device])
        self.made_sources = set()
        self.made_targets = set()
        self.thin_pool = None
        if technology == "lvm_thin":
            sh(["lvcreate", "-q", "-y", "-L", "2G", "-T", "%s/tpool" % self.vg])
            self.thin_pool = "%s/tpool" % self.vg
        self.n = 0

    def _lv(self, name):
        if self.thin_pool:
            sh(["lvcreate", "-q", "-V", "8M", "-T", self.thin_pool, "-n", name])
        else:
            sh(["lvcreate", "-q", "-y", "-Wy", "-Zy", "-L", "8M", "-n", name, self.vg])
        return "%s/%s" % (self.vg, name)

    def source(self, *parts):
        self.n += 1
        name = self._lv("s%d" % self.n)
        self.made_sources.add(name)
        self.touch(name)
        return name

    def targets(self, pool, tp, sources):
        """lvm_clone: a target LV of the sources' size per source."""
        out = []
        for dummy in sources:
            self.n += 1
            name = self._lv("t%d" % self.n)
            self.made_targets.add(name)
            out.append(name)
        return tuple(out)

    def touch(self, source):
        fd = os.open("/dev/%s" % source, os.O_WRONLY)
        try:
            os.pwrite(fd, os.urandom(4096), 4096 * (self.n % 512))
            os.fsync(fd)
        finally:
            os.close(fd)

    def leaks(self, expected_pairs, kept):
        from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import TAG_POOL, TAG_STAGED, TAG_TMP

        figures, leaks = [], []
        expected = set(p.target for p in expected_pairs)
        rows = {}
        for line in sh(["lvs", "--noheadings", "--separator", "|", "-o", "lv_name,lv_tags", self.vg]).splitlines():
            name, tags = [f.strip() for f in line.split("|", 1)]
            rows["%s/%s" % (self.vg, name)] = [t for t in tags.split(",") if t]
        ours = set(n for n, tags in rows.items() if any(t.startswith(TAG_POOL) for t in tags))
        plain = set(rows) - self.made_sources - self.made_targets - set([self.thin_pool] if self.thin_pool else [])
        figures.append("LVs %d: sources %d, target LVs made %d, copies with our tags %d (expected versions kept x "
                       "sources = %d), other LVs %d" % (len(rows), len(self.made_sources & set(rows)),
                                                        len(self.made_targets & set(rows)), len(ours), kept,
                                                        len(plain - ours)))
        if len(ours & expected) != kept:
            leaks.append("%d recorded copies found, expected %d" % (len(ours & expected), kept))
        leaks.extend("LV with our tag no record names: %s" % n for n in sorted(ours - expected))
        leaks.extend("recorded copy missing: %s" % n for n in sorted(expected - set(rows)))
        leaks.extend("LV nobody made and no record names: %s" % n for n in sorted(plain - expected))
        transient = [n for n, tags in rows.items() if TAG_STAGED in tags or TAG_TMP in tags]
        figures.append("staged or temporary LVs %d" % len(transient))
        leaks.extend("staged or temporary LV left: %s" % n for n in sorted(transient))
        return figures, leaks

    def teardown(self):
        errors = []
        for dummy in range(3):
            if subprocess.call(["vgremove", "-ff", "-y", self.vg], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=ENV) == 0:
                break
            time.sleep(0.5)
        else:
            errors.append("vgremove %s failed" % self.vg)
        subprocess.call(["pvremove", "-ff", "-y", self.loop.device], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, env=ENV)
        return errors + self.loop.destroy()

    def after_teardown(self, work):
        left = [ln.split()[0] for ln in sh(["dmsetup", "ls"], check=False).splitlines()
                if ln.startswith(self.vg + "-")]
        return ["device-mapper device left: %s" % n for n in left]


class ZfsStorage:
    tools = ("zfs", "zpool")
    device = "/dev/zfs"

    def __init__(self, technology, work):
        self.technology = technology
        self.zpool = "soak%s" % uuid.uuid4().hex[:6]
        self.img = os.path.join(work, "zpool.img")
        with open(self.img, "wb") as fh:
            fh.truncate(4 * 1024 * MiB)
        self.devices = set()
        sh(["zpool", "create", "-f", "-o", "cachefile=none", "-O", "compression=off", "-m",
            os.path.join(work, "mnt"), self.zpool, self.img])
        sh(["zfs", "create", "%s/src" % self.zpool])
        sh(["zfs", "create", "%s/tgt" % self.zpool])
        self.made_sources = set()
        self.n = 0
        self.mountpoints = {}

    def source(self, *parts):
        self.n += 1
        name = "%s/src/s%d" % (self.zpool, self.n)
        sh(["zfs", "create", name])
        self.mountpoints[name] = sh(["zfs", "get", "-H", "-o", "value", "mountpoint", name]).strip()
        self.made_sources.add(name)
        self.touch(name)
        return name

    def targets(self, pool, tp, sources):
        """zfs_send: new dataset names under a parent that exists."""
        parent = "%s/tgt/%s-%s" % (self.zpool, pool.replace("/", "_"), tp)
        sh(["zfs", "create", parent])
        return tuple("%s/%d" % (parent, i) for i in range(len(sources)))

    def touch(self, source):
        with open(os.path.join(self.mountpoints[source], "data"), "ab") as fh:
            fh.write(os.urandom(4096))

    def leaks(self, expected_pairs, kept):
        figures, leaks = [], []
        expected = set(p.target for p in expected_pairs)
        names = set(sh(["zfs", "list", "-H", "-o", "name", "-t", "all", "-r", self.zpool]).split())
        marked = set(ln.split("\t")[0] for ln in sh(["zfs", "get", "-H", "-r", "-s", "local,received", "-o",
                                                     "name,value", "pitcopy:pool", self.zpool]).splitlines())
        snaps = set(n for n in names if "@" in n)
        figures.append("datasets and snapshots %d: sources %d, marked copies %d (expected versions kept x sources = "
                       "%d), snapshots %d" % (len(names), len(self.made_sources & names), len(marked), kept,
                                              len(snaps)))
        if len(marked & expected) != kept:
            leaks.append("%d recorded copies found, expected %d" % (len(marked & expected), kept))
        leaks.extend("marked copy no record names: %s" % n for n in sorted(marked - expected))
        leaks.extend("recorded copy missing: %s" % n for n in sorted(expected - names))
        transient = sorted(n for n in names if re.search(r"staging|\.pitcopy-(restore|replaced)", n)
                           or re.search(r"@pitcopy-.*-v\d+$", n) and n.split("@")[0] in self.made_sources)
        figures.append("staging names and temporary send snapshots %d" % len(transient))
        leaks.extend("staging or temporary name left: %s" % n for n in transient)
        if self.technology == "zfs_send":
            # each received copy keeps exactly its received snapshot
            extra = sorted(n for n in snaps if n.split("@")[0] not in expected)
        else:
            extra = sorted(snaps - expected)
        leaks.extend("snapshot no record accounts for: %s" % n for n in extra)
        return figures, leaks

    def teardown(self):
        errors = []
        for dummy in range(5):
            proc = subprocess.run(["zpool", "destroy", "-f", self.zpool], env=ENV, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, universal_newlines=True, check=False)
            if proc.returncode == 0:
                break
            time.sleep(1)
        else:
            errors.append("zpool destroy %s: %s" % (self.zpool, proc.stderr.strip()))
        return errors

    def after_teardown(self, work):
        if subprocess.call(["zpool", "list", self.zpool], env=ENV, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) == 0:
            return ["zpool left: %s" % self.zpool]
        return []


STORAGES = {"btrfs": BtrfsStorage, "lvm": LvmStorage, "zfs": ZfsStorage}


class Soak:
    def __init__(self, technology, storage, state_dir, runner):
        self.technology = technology
        self.storage = storage
        self.store = StateStore(state_dir)
        cls = backend_class(technology)
        self.engine = RecordEngine(self.store, lambda tech: cls(runner=runner))
        self.problems = []
        self.listed = bool(technology in ("btrfs_send", "lvm_clone", "zfs_send"))
        # copies of snapshot technologies are found host-wide by pool name: a
        # name of this run only, so that no other test's pool (another
        # state_dir, same name) sees our copies as untracked, nor we theirs
        self.prefix = "soak%d-" % os.getpid()

    def define(self, name, sources, versions):
        """copy_pool state=present of a new pool (it checks the other pools' targets)."""
        tps = ()
        if self.listed:
            tps = tuple(TargetPool("%02d" % (i + 1), self.storage.targets(name, "%02d" % (i + 1), sources))
                        for i in range(versions))
        d = PoolDefinition(name=name, technology=self.technology, sources=tuple(sources), versions=versions,
                           target_pools=tps)
        t0 = time.monotonic()
        with self.engine.session(name) as s:
            s.plan_define(d).apply()
        return time.monotonic() - t0

    def copy(self, name):
        """One copy version, as copy_version (state=present) runs it."""
        t0 = time.monotonic()
        with self.engine.session(name) as s:
            plan = s.plan_copy()
            result = plan.apply() if plan.changed else plan.result
        took = time.monotonic() - t0
        if not result.get("version"):
            self.problems.append("copy of %s made no version: %r" % (name, result))
        return took

    def verify(self, name):
        """verify_records without repair: a reader (shared lock), never applied."""
        t0 = time.monotonic()
        with self.engine.session(name, shared=True) as s:
            result = s.plan_verify(repair=False).result
        took = time.monotonic() - t0
        if not result["consistent"]:
            self.problems.append("verify of %s: %r" % (name, result["findings"]))
        return took

    def info_all(self):
        """copy_pool_info without pool: every pool's info, each under its reader's lock."""
        t0 = time.monotonic()
        per = []
        for name in self.engine.pool_names():
            t1 = time.monotonic()
            with self.engine.session(name, shared=True) as s:
                s.info()
            per.append(time.monotonic() - t1)
        return time.monotonic() - t0, per

    def state_size(self, name):
        return os.path.getsize(self.store.path(name))


def phase_a(soak, versions, verify_every):
    name = soak.prefix + "one"
    sources = [soak.storage.source("a%d" % i) for i in range(2)]
    soak.define(name, sources, KEPT)
    copies, verifies, sizes = [], {}, {}
    for v in range(versions):
        for s in sources:
            soak.storage.touch(s)
        copies.append(ms(soak.copy(name)))
        if (v + 1) % verify_every == 0:
            verifies[v] = ms(soak.verify(name))
        sizes[v] = soak.state_size(name)
    print("a) one copy pool, 2 sources, versions %d: %d copy versions, verify every %d" % (KEPT, versions, verify_every))
    print("   %-13s %8s %8s %8s %12s" % ("versions", "copy ms", "max ms", "verify ms", "state bytes"))
    for lo, hi in deciles(versions):
        verified = [verifies[v] for v in range(lo, hi) if v in verifies]
        print("   %5d-%-7d %s %8.1f %s %12d"
              % (lo + 1, hi, med(copies[lo:hi]), max(copies[lo:hi]), med(verified), sizes[hi - 1]))
    first, last = deciles(versions)[0], deciles(versions)[-1]
    full = min(KEPT, versions) - 1  # from here on every copy rotates one out
    print("   flatness: copy median last / first decile %.2f; state bytes at the end / when the pool filled (version "
          "%d) %.2f" % (statistics.median(copies[last[0]:last[1]]) / statistics.median(copies[first[0]:first[1]]),
                        full + 1, sizes[versions - 1] / sizes[full]))
    return name, sources


def phase_b(soak, pools, pool_copies):
    names = []
    defines, copies, verifies = [], [], []
    for p in range(pools):
        name = "%s%03d" % (soak.prefix, p)
        sources = [soak.storage.source("b%d" % p, "s%d" % i) for i in range(1 + p % 2)]
        defines.append(ms(soak.define(name, sources, 2)))
        copies.append([ms(soak.copy(name)) for dummy in range(pool_copies)])
        names.append(name)
    total, per_info = soak.info_all()
    for name in names:
        verifies.append(ms(soak.verify(name)))
    print("b) %d copy pools in one state_dir, 1-2 sources each, versions 2, %d copy versions each"
          % (pools, pool_copies))
    print("   copy_pool_info of all %d pools (plus pool a): %.1f ms" % (len(per_info), ms(total)))
    # per_info lists pool names sorted; pool a (<prefix>one) sorts after <prefix>000..999
    per_info = [ms(t) for t in per_info[:pools]]
    print("   %-13s %8s %8s %8s %8s" % ("pools", "define ms", "copy ms", "info ms", "verify ms"))
    for lo, hi in deciles(pools):
        flat = [c for row in copies[lo:hi] for c in row]
        print("   %5d-%-7d %s %s %s %s"
              % (lo, hi - 1, med(defines[lo:hi]), med(flat), med(per_info[lo:hi]), med(verifies[lo:hi])))


def leaks_in_state(soak, state_dir):
    """(figures, leaks, recorded pairs, copies kept) of state_dir."""
    figures, leaks, pairs, kept = [], [], [], 0
    names = soak.engine.pool_names()
    for name in names:
        state = soak.store.load(name)
        if state.journal is not None:
            leaks.append("pool %s still has a %s journal" % (name, state.journal.operation))
        kept += sum(len(r.pairs) for r in state.replication_records)
        pairs.extend(p for r in state.replication_records + state.prepairing_records for p in r.pairs)
    wanted = set()
    for name in names:
        wanted.update((name + ".yml", "." + name + ".yml.prev", "." + name + ".lock"))
    stray = sorted(set(os.listdir(state_dir)) - wanted)
    figures.append("state_dir: %d pools, %d files, %d other (temporary) files" % (len(names), len(os.listdir(state_dir)),
                                                                                  len(stray)))
    leaks.extend("state_dir file left: %s" % e for e in stray)
    return figures, leaks, pairs, kept


def ours_after_teardown(work, devices):
    """Loop devices and mounts of ours still present after teardown."""
    leaks = []
    for dev in sorted(os.listdir("/sys/block")):
        try:
            with open(os.path.join("/sys/block", dev, "loop", "backing_file")) as fh:
                backing = fh.read().strip()
        except OSError:
            continue
        if backing.startswith(work) or "/dev/" + dev in devices:
            leaks.append("loop device left: /dev/%s (%s)" % (dev, backing))
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            f = line.split(" ")
            if len(f) > 4 and (f[4] + "/").startswith(work + "/"):
                leaks.append("mount left: %s" % f[4])
    return leaks


def main(argv=None, default_technology=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--technology", choices=TECHNOLOGIES, default=default_technology,
                    required=default_technology is None, help="the backend to soak")
    ap.add_argument("--versions", type=int, default=200, help="copy versions of the one pool (phase a)")
    ap.add_argument("--verify-every", type=int, default=10, help="a verify every N versions (phase a)")
    ap.add_argument("--pools", type=int, default=100, help="copy pools on the host (phase b)")
    ap.add_argument("--pool-copies", type=int, default=3, help="copy versions of each of those pools (phase b)")
    args = ap.parse_args(argv)
    if min(args.versions, args.verify_every, args.pools, args.pool_copies) < 1:
        sys.exit("soak: --versions, --verify-every, --pools and --pool-copies must be >= 1")
    family = args.technology.split("_", 1)[0]
    storage_cls = STORAGES[family]
    missing = [t for t in storage_cls.tools if not conftest.which(t)]
    if not os.path.exists(storage_cls.device):
        missing.append(storage_cls.device)
    if missing:
        sys.exit("soak: %s is missing; %s runs %s" % (", ".join(missing), args.technology, {
            "btrfs": "natively (Debian btrfs-progs, util-linux)",
            "lvm": "in the UML guest (python3 tests/uml/guest.py run -- ...)",
            "zfs": "in the qemu guest (tests/vm/run.sh --zfs -- ...)"}[family]))
    if os.geteuid() != 0:
        sys.exit("soak: needs root (loop devices, %s)" % family)
    fds_start = open_fds()
    runner = SubprocessRunner(env={"PATH": conftest.SBIN_PATH})
    work = os.path.realpath(tempfile.mkdtemp(prefix="pitcopy-soak-%s-" % family))
    storage, devices, leaks, problems = None, set(), [], []
    t_start = time.monotonic()
    print("soak of %s: %d versions on one pool, %d pools x %d versions"
          % (args.technology, args.versions, args.pools, args.pool_copies))
    try:
        storage = storage_cls(args.technology, work)
        devices |= storage.devices
        state_dir = os.path.join(work, "state")
        soak = Soak(args.technology, storage, state_dir, runner)
        fds_before = open_fds()
        phase_a(soak, args.versions, args.verify_every)
        fds_mid = open_fds()
        phase_b(soak, args.pools, args.pool_copies)
        fds_after = open_fds()
        figures, state_leaks, pairs, kept = leaks_in_state(soak, state_dir)
        storage_figures, storage_leaks = storage.leaks(pairs, kept)
        leaks.extend(state_leaks + storage_leaks)
        problems.extend(soak.problems)
        print("c) leaks")
        for line in storage_figures + figures:
            print("   " + line)
        print("   open fds: %d before the engine work, %d after a, %d after b"
              % (len(fds_before), len(fds_mid), len(fds_after)))
        for fd in sorted(set(fds_after) - set(fds_before)):
            leaks.append("fd %d left open: %s" % (fd, fds_after[fd]))
    finally:
        if storage is not None:
            leaks.extend(storage.teardown())
        shutil.rmtree(work, ignore_errors=True)
    if storage is not None:
        leaks.extend(storage.after_teardown(work))
    leaks.extend(ours_after_teardown(work, devices))
    if os.path.exists(work):
        leaks.append("work directory (images, mountpoints) left: %s" % work)
    fds_end = open_fds()
    print("   after teardown: loop devices, mounts, dm devices and zpools of ours left %d; open fds %d at start, %d at "
          "end" % (len([e for e in leaks if e.startswith(("loop device left", "mount left", "device-mapper", "zpool "))]),
                   len(fds_start), len(fds_end)))
    for fd in sorted(set(fds_end) - set(fds_start)):
        leaks.append("fd %d left open after teardown: %s" % (fd, fds_end[fd]))
    print("   %d leak(s), %d inconsistent verify/copy problem(s); %.0f s in all"
          % (len(leaks), len(problems), time.monotonic() - t_start))
    for line in leaks:
        print("   LEAK " + line)
    for line in problems:
        print("   PROBLEM " + line)
    sys.exit(1 if leaks or problems else 0)


if __name__ == "__main__":
    main()
