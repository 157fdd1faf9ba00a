# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark harness: pitcopy against the bare tool loop and its peers, on the
same volumes, in the same run, as ratios (issue 15). Prints a table; asserts
nothing about timing (a method that errors is reported, and makes the exit
status 1, so that the CI smoke test catches a broken method).

    python tests/benchmarks/harness.py btrfs [--n 10 50 200] [--rounds 3]
        [--methods bare,engine,module,...] [--peer-n 10] [--json FILE] [--plot DIR]
    python tests/benchmarks/harness.py memory [--n 1000 10000]
    python tests/benchmarks/harness.py btrfs --list     # the declared methods

btrfs (natively, as root; sources are N subvolumes of 64 KiB on one
loop-backed btrfs). Every method of one run works on the same subvolumes.

  bare      a loop of N ``btrfs subvolume snapshot -r`` processes (the ratio's 1.0)
  backend   BtrfsSnapshotBackend.create_copies (ioctl snapshots, marks), discard
  engine    RecordEngine copy_version in this process (state, journal,
            discovery, capacity, copies, promotion, rotation), versions=2
  module    ``ansible-playbook`` running pitcopy.versions.copy_version against
            localhost on a pool defined by pitcopy.versions.copy_pool: wall time
            of the whole command, and the task alone (from a callback)
  send      the engine with btrfs_send into a second filesystem (not default)
  btrbk     ``btrbk snapshot`` over the N subvolumes (Debian btrbk)
  snapper   a loop of ``snapper -c NAME create`` over one config per
            subvolume (Debian snapper; at most --peer-n subvolumes)
  cg_btrfs  community.general.btrfs_subvolume (snapshot_source) in an Ansible
            loop (at most --peer-n); community.general comes from PyPI's
            ``ansible`` bundle installed into a throw-away venv under
            .cache/bench-community (only when this method runs)

memory: the engine alone on tests/unit/memory_backend.MemoryBackend
(btrfs_snapshot naming) and a real StateStore: define, then copy_version.

Columns: ``wall s`` the whole method (median of --rounds); ``task s`` for the
Ansible methods the task alone (module start to result, no playbook start-up);
``window s`` the copy window the method reports (pitcopy's copy_window_ms; a
loop's window is the loop); ``first-last s`` the spread of the snapshots'
creation times read back from btrfs (otime) and how many transactions they
span; ratios are against the bare loop at the same N. The load average is
printed with every run: on a shared machine the figures are inflated.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import cProfile
import datetime
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "real"))
sys.path.insert(0, HERE)  # plot.py

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

TOOL_ENV = dict(os.environ, PATH=conftest.SBIN_PATH, LC_ALL="C")
# the ``ansible`` community bundle that carries community.general for this
# ansible-core (2.19 -> ansible 12); only ever installed into COMMUNITY_VENV
COMMUNITY_SPEC = "ansible>=12,<13"
COMMUNITY_VENV = os.path.join(REPO, ".cache", "bench-community")


class MethodError(Exception):
    """A method could not run (tool missing, install failed, tool error): its
    row says why, never a figure."""


def sh(argv, **kw):
    proc = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, env=kw.pop("env", TOOL_ENV), check=False,
                          universal_newlines=True, **kw)
    if proc.returncode != 0:
        raise MethodError("%s failed (rc %d): %s" % (" ".join(str(a) for a in argv[:4]), proc.returncode,
                                                     (proc.stderr or proc.stdout).strip()[-600:]))
    return proc.stdout


def spread(paths):
    """(first-to-last creation time in s, distinct transactions) of snapshots,
    read from the subvolumes themselves (otime, otransid)."""
    infos = [subvol_info(p) for p in paths]
    return (max(i["otime"] for i in infos) - min(i["otime"] for i in infos),
            len(set(i["otransid"] for i in infos)))


def delete_subvolumes(paths):
    if paths:
        sh(["btrfs", "subvolume", "delete", "-c", "--"] + list(paths))


def load_average():
    return "%.2f %.2f %.2f" % os.getloadavg()


class Sample:
    """One run of one method: wall time, the task alone (Ansible methods),
    the copy window it reports, the otime spread (s, transactions)."""

    def __init__(self, wall, window=None, spread_=None, task=None):
        self.wall, self.window, self.spread, self.task = wall, window, spread_, task


# --- the btrfs site: one loop-backed btrfs holding the sources -----------------

class BtrfsSite:
    """Sources s0000.. on one loop btrfs (and a second one for btrfs_send
    targets, made on demand); a token in every pool and config name, so that
    two runs never see each other's copies."""

    def __init__(self, workdir, count):
        self.workdir = workdir
        self.token = "b%s" % uuid.uuid4().hex[:6]
        self.filesystems = []
        self.src = self._fs("src", max(1024, count * 2) * 1024 * 1024)
        self.runner = SubprocessRunner(env={"PATH": conftest.SBIN_PATH})
        os.makedirs(self.src.path("vol"))
        self.sources = []
        self.rel_sources = []
        for i in range(count):
            rel = "vol/s%04d" % i
            path = self.src.path(rel)
            sh(["btrfs", "subvolume", "create", path])
            with open(os.path.join(path, "data"), "wb") as fh:
                fh.write(os.urandom(64 * 1024))
            self.sources.append(path)
            self.rel_sources.append(rel)
        sh(["btrfs", "filesystem", "sync", self.src.mountpoint])
        self._dst = None

    def _fs(self, name, size):
        fs = conftest.LoopFs.create(self.workdir, "btrfs", size, name)
        self.filesystems.append(fs)
        return fs

    def dst(self):
        if self._dst is None:
            self._dst = self._fs("dst", 1024 * 1024 * 1024)
        return self._dst

    def pool_name(self, method, n):
        return "%s-%s-%d" % (self.token, method, n)

    def destroy(self):
        for fs in reversed(self.filesystems):
            fs.destroy()


# --- methods --------------------------------------------------------------------

class Method:
    """A declared method: ``prepare(site, n)`` once per N (not timed), then
    ``once()`` per round (timed, leaves the volumes as it found them),
    ``close()`` at the end. ``peer_cap``: at most --peer-n volumes (slow
    peers); ``cheap``: run by the CI smoke test."""

    name = label = ""
    cheap = False
    peer_cap = False
    default = True
    tools = ()

    def __init__(self, site, n, args):
        self.site, self.n, self.args = site, n, args
        self.sources = site.sources[:n]

    def check(self):
        for tool in self.tools:
            if not shutil.which(tool, path=conftest.SBIN_PATH):
                raise MethodError("%s is not installed (tests/setup.sh installs it)" % tool)

    def prepare(self):
        """Set-up for this N (not timed)."""

    def once(self):
        raise NotImplementedError

    def close(self):
        """Undo prepare."""


class Bare(Method):
    name, label, cheap = "bare", "loop of `btrfs subvolume snapshot -r`", True
    tools = ("btrfs",)

    def once(self):
        outdir = os.path.join(self.site.src.mountpoint, "bare")
        os.makedirs(outdir, exist_ok=True)
        made = []
        t0 = time.monotonic()
        for s in self.sources:
            dst = os.path.join(outdir, os.path.basename(s))
            subprocess.run(["btrfs", "subvolume", "snapshot", "-r", s, dst], check=True, env=TOOL_ENV,
                           stdout=subprocess.DEVNULL)
            made.append(dst)
        total = time.monotonic() - t0
        sp = spread(made)
        delete_subvolumes(made)
        return Sample(total, total, sp)


class Backend(Method):
    name, label = "backend", "BtrfsSnapshotBackend.create_copies (ioctl), marks"
    snapshot_with = "ioctl"

    def once(self):
        b = BtrfsSnapshotBackend(runner=self.site.runner, snapshot_with=self.snapshot_with)
        pool = self.site.pool_name("be", self.n)
        d = PoolDefinition(name=pool, technology="btrfs_snapshot", sources=tuple(self.sources), versions=1)
        pairs = [CopyPair(s, b.implied_target(pool, "01", s)) for s in self.sources]
        window = CopyWindow(d, self.site.runner)
        t0 = time.monotonic()
        outcome = b.create_copies(d, 1, pairs, window)
        total = time.monotonic() - t0
        sp = spread([c.target for c in outcome.staged])
        b.discard(d, outcome.staged)
        return Sample(total, outcome.window_ms / 1000.0, sp)


class BackendCmd(Backend):
    name, label, default = "backend-cmd", "BtrfsSnapshotBackend.create_copies, snapshot_with=command", False
    snapshot_with = "command"


class Engine(Method):
    name, label, cheap = "engine", "RecordEngine copy_version, btrfs_snapshot (in-process)", True
    technology = "btrfs_snapshot"

    def prepare(self):
        self.store = StateStore(os.path.join(self.site.workdir, "state-%s-%d" % (self.name, self.n)))
        backends = {"btrfs_snapshot": BtrfsSnapshotBackend, "btrfs_send": BtrfsSendBackend}
        self.engine = RecordEngine(self.store, lambda tech: backends[tech](runner=self.site.runner))
        self.pool = self.site.pool_name(self.name, self.n)
        tps = ()
        if self.technology == "btrfs_send":
            dst = self.site.dst()
            tps = []
            for t in range(2):
                row = []
                for i in range(self.n):
                    d = dst.path("%s-%d" % (self.pool, t), "t%04d" % i)
                    os.makedirs(d)
                    row.append(d)
                tps.append(TargetPool("tp%d" % (t + 1), tuple(row)))
        d = PoolDefinition(name=self.pool, technology=self.technology, sources=tuple(self.sources), versions=2,
                           target_pools=tuple(tps))
        with self.engine.session(self.pool) as s:
            s.plan_define(d).apply()

    def once(self):
        t0 = time.monotonic()
        with self.engine.session(self.pool) as s:
            result = s.plan_copy().apply()
        total = time.monotonic() - t0
        sp = None
        if self.technology == "btrfs_snapshot":
            sp = spread([p["target"] for p in result["version"]["pairs"]])
        return Sample(total, result["copy_window_ms"] / 1000.0, sp)

    def close(self):
        with self.engine.session(self.pool) as s:
            s.plan_remove(remove_copies=True).apply()


class Send(Engine):
    name, label, default, cheap = "send", "RecordEngine copy_version, btrfs_send (full send|receive)", False, False
    technology = "btrfs_send"


TIMER_CALLBACK = '''
from __future__ import absolute_import, division, print_function
__metaclass__ = type
import json
import os
import time
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    """Writes each task's start and end (wall clock) and the copy_window_ms of
    its results to $PITCOPY_BENCH_TIMES, one JSON line per task."""
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "pitcopy_bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task = (task.get_name(), time.time())

    def _done(self, result, failed):
        with open(os.environ["PITCOPY_BENCH_TIMES"], "a") as fh:
            fh.write(json.dumps({"task": self._task[0], "start": self._task[1], "end": time.time(),
                                 "failed": failed,
                                 "copy_window_ms": result._result.get("copy_window_ms")}) + "\\n")

    def v2_runner_on_ok(self, result):
        self._done(result, False)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done(result, True)
'''


class Playbook:
    """ansible-playbook against localhost (connection local) with this
    collection (and optionally community.general) on the collections path and
    a timer callback; returns (wall s, [task timings])."""

    def __init__(self, workdir, collections_paths, python=None):
        self.workdir = workdir
        os.makedirs(os.path.join(workdir, "callback_plugins"), exist_ok=True)
        with open(os.path.join(workdir, "callback_plugins", "pitcopy_bench_timer.py"), "w") as fh:
            fh.write(TIMER_CALLBACK)
        self.times = os.path.join(workdir, "times.jsonl")
        self.env = dict(os.environ, PATH=os.pathsep.join([os.path.dirname(sys.executable), conftest.SBIN_PATH]),
                        ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(collections_paths),
                        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
                        ANSIBLE_CALLBACK_PLUGINS=os.path.join(workdir, "callback_plugins"),
                        ANSIBLE_CALLBACKS_ENABLED="pitcopy_bench_timer",
                        ANSIBLE_HOME=os.path.join(workdir, "ansible-home"),
                        ANSIBLE_LOCAL_TEMP=os.path.join(workdir, "tmp"),
                        ANSIBLE_REMOTE_TEMP=os.path.join(workdir, "tmp"),
                        ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_NOCOLOR="1",
                        ANSIBLE_PYTHON_INTERPRETER=python or sys.executable,
                        PITCOPY_BENCH_TIMES=self.times)
        self.playbook_bin = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

    def run(self, name, tasks, gather=False):
        play = [{"name": name, "hosts": "localhost", "gather_facts": gather, "tasks": tasks}]
        path = os.path.join(self.workdir, "%s.yml" % name)
        with open(path, "w") as fh:
            json.dump(play, fh)  # JSON is YAML
        if os.path.exists(self.times):
            os.unlink(self.times)
        t0 = time.monotonic()
        proc = subprocess.run([self.playbook_bin, "-i", "localhost,", "-c", "local", path], env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              universal_newlines=True, check=False)
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            tail = proc.stdout.strip()[-800:]
            raise MethodError("ansible-playbook %s failed (rc %d): %s" % (name, proc.returncode, tail))
        with open(self.times) as fh:
            return wall, [json.loads(line) for line in fh if line.strip()]


def collection_path():
    for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) + [
            os.path.join(REPO, ".cache", "coll-link")]:
        if path and os.path.isdir(os.path.join(path, "ansible_collections", "pitcopy", "versions")):
            return os.path.abspath(path)
    raise MethodError("no collection tree (ANSIBLE_COLLECTIONS_PATH or .cache/coll-link); "
                      "run tests/setup.sh --sync-only")


class Module(Method):
    name, label, cheap = "module", "ansible-playbook: pitcopy.versions.copy_version (task alone in task s)", True

    def prepare(self):
        self.pool = self.site.pool_name("mod", self.n)
        self.state_dir = os.path.join(self.site.workdir, "state-module-%d" % self.n)
        self.pb = Playbook(os.path.join(self.site.workdir, "ansible-module-%d" % self.n), [collection_path()])
        self.pb.run("define", [{"name": "define", "pitcopy.versions.copy_pool": {
            "name": self.pool, "technology": "btrfs_snapshot", "sources": self.sources, "versions": 2,
            "state_dir": self.state_dir}}])

    def once(self):
        wall, times = self.pb.run("copy", [{"name": "copy", "pitcopy.versions.copy_version": {
            "pool": self.pool, "state_dir": self.state_dir}, "register": "taken"},
            {"name": "targets", "ansible.builtin.copy": {
                "content": "{{ taken.version.pairs | map(attribute='target') | list | to_json }}",
                "dest": os.path.join(self.pb.workdir, "targets.json")}}])
        task = times[0]
        with open(os.path.join(self.pb.workdir, "targets.json")) as fh:
            targets = json.load(fh)
        return Sample(wall, task["copy_window_ms"] / 1000.0, spread(targets), task=task["end"] - task["start"])

    def close(self):
        self.pb.run("remove", [{"name": "remove", "pitcopy.versions.copy_pool": {
            "name": self.pool, "state": "absent", "remove_copies": True, "state_dir": self.state_dir}}])


class Btrbk(Method):
    name, label, cheap = "btrbk", "btrbk snapshot (Debian btrbk)", True
    tools = ("btrbk",)

    def prepare(self):
        self.conf = os.path.join(self.site.workdir, "btrbk-%d.conf" % self.n)
        self.snapdir = self.site.src.path("btrbk_snapshots")
        os.makedirs(self.snapdir, exist_ok=True)
        lines = ["snapshot_preserve_min all", "snapshot_create always", "snapshot_dir btrbk_snapshots",
                 "timestamp_format long-iso", "lockfile %s" % os.path.join(self.site.workdir, "btrbk.lock"),
                 "volume %s" % self.site.src.mountpoint]
        lines.extend("  subvolume %s" % r for r in self.site.rel_sources[:self.n])
        with open(self.conf, "w") as fh:
            fh.write("\n".join(lines) + "\n")

    def once(self):
        t0 = time.monotonic()
        sh(["btrbk", "-c", self.conf, "snapshot"])
        total = time.monotonic() - t0
        made = [os.path.join(self.snapdir, n) for n in os.listdir(self.snapdir)]
        if len(made) != self.n:
            raise MethodError("btrbk made %d snapshots, expected %d" % (len(made), self.n))
        sp = spread(made)
        delete_subvolumes(made)
        return Sample(total, None, sp)


class Snapper(Method):
    """snapper keeps one config per subvolume (create-config makes its
    .snapshots subvolume inside the source), so it runs last at each N and
    its configs are deleted again (not timed)."""
    name, label, peer_cap = "snapper", "loop of `snapper -c NAME create` (Debian snapper)", True
    tools = ("snapper",)

    def prepare(self):
        self.configs = []
        for i, src in enumerate(self.sources):
            name = "%s-%04d" % (self.site.token, i)
            sh(["snapper", "--no-dbus", "-c", name, "create-config", "-f", "btrfs", src])
            self.configs.append((name, src))

    def once(self):
        t0 = time.monotonic()
        for name, dummy in self.configs:
            subprocess.run(["snapper", "--no-dbus", "-c", name, "create", "--cleanup-algorithm", ""],
                           check=True, env=TOOL_ENV, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        total = time.monotonic() - t0
        made = []
        for name, src in self.configs:
            snaps = os.path.join(src, ".snapshots")
            for num in os.listdir(snaps):
                if os.path.isdir(os.path.join(snaps, num, "snapshot")):
                    made.append((name, num, os.path.join(snaps, num, "snapshot")))
        if len(made) != self.n:
            raise MethodError("snapper made %d snapshots, expected %d" % (len(made), self.n))
        sp = spread([m[2] for m in made])
        for name, num, dummy in made:
            sh(["snapper", "--no-dbus", "-c", name, "delete", num])
        return Sample(total, total, sp)

    def close(self):
        for name, dummy in self.configs:
            sh(["snapper", "--no-dbus", "-c", name, "delete-config"])


def community_collections():
    """The collections directory of PyPI's ``ansible`` bundle in a throw-away
    venv (installed on first use, without its ansible-core dependency: this
    venv's ansible-core runs it)."""
    site = os.path.join(COMMUNITY_VENV, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
    if not os.path.isdir(os.path.join(site, "ansible_collections", "community", "general")):
        if not os.path.exists(os.path.join(COMMUNITY_VENV, "bin", "pip")):
            sh([sys.executable, "-m", "venv", COMMUNITY_VENV])
        try:
            sh([os.path.join(COMMUNITY_VENV, "bin", "pip"), "install", "-q", "--no-deps", COMMUNITY_SPEC],
               env=dict(os.environ))
        except MethodError as exc:
            raise MethodError("community.general could not be installed from PyPI (%s into %s): %s"
                              % (COMMUNITY_SPEC, COMMUNITY_VENV, exc))
    return site


class CommunityBtrfs(Method):
    name, peer_cap = "cg_btrfs", True
    label = "community.general.btrfs_subvolume snapshot_source, Ansible loop (writable snapshots)"

    def prepare(self):
        self.pb = Playbook(os.path.join(self.site.workdir, "ansible-cg-%d" % self.n),
                           [collection_path(), community_collections()])
        os.makedirs(self.site.src.path("cg"), exist_ok=True)

    def once(self):
        items = [{"src": "/" + r, "dst": "/cg/%s" % os.path.basename(r)} for r in self.site.rel_sources[:self.n]]
        wall, times = self.pb.run("cg", [{
            "name": "cg", "community.general.btrfs_subvolume": {
                "name": "{{ item.dst }}", "snapshot_source": "{{ item.src }}", "filesystem_device":
                self.site.src.device, "automount": False},
            "loop": items}])
        made = [self.site.src.path("cg", os.path.basename(r)) for r in self.site.rel_sources[:self.n]]
        sp = spread(made)
        delete_subvolumes(made)
        task = times[0]
        return Sample(wall, task["end"] - task["start"], sp, task=task["end"] - task["start"])


METHODS = [Bare, Backend, BackendCmd, Engine, Module, Send, Btrbk, CommunityBtrfs, Snapper]
CHEAP = [m.name for m in METHODS if m.cheap]


def profiled(method, outdir):
    """One more round of ``method`` under cProfile (in this process), its
    stats into outdir/<method>-<n>.prof and the top entries printed; for the
    module path, the module itself is run in-process the way AnsiballZ runs
    it (its arguments from a file), which is the part that is ours."""
    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "%s-%d.prof" % (method.name, method.n))
    prof = cProfile.Profile()
    if isinstance(method, Module):
        argsfile = os.path.join(method.pb.workdir, "args.json")
        with open(argsfile, "w") as fh:
            json.dump({"ANSIBLE_MODULE_ARGS": {"pool": method.pool, "state_dir": method.state_dir}}, fh)
        module = os.path.join(collection_path(), "ansible_collections", "pitcopy", "versions", "plugins",
                              "modules", "copy_version.py")
        subprocess.run([sys.executable, "-m", "cProfile", "-o", path, module, argsfile], check=True,
                       stdout=subprocess.DEVNULL, env=dict(os.environ, PATH=conftest.SBIN_PATH))
    else:
        prof.enable()
        method.once()
        prof.disable()
        prof.dump_stats(path)
    print("profile %s N=%d: %s (top 25 by cumulative time)" % (method.name, method.n, path))
    pstats.Stats(path, stream=sys.stdout).sort_stats("cumulative").print_stats(25)


# --- the run and its table ------------------------------------------------------

def median_sample(samples):
    def med(attr):
        vals = [getattr(s, attr) for s in samples if getattr(s, attr) is not None]
        return statistics.median(vals) if vals else None
    sps = [s.spread for s in samples if s.spread is not None]
    sp = (statistics.median(x[0] for x in sps), max(x[1] for x in sps)) if sps else None
    return Sample(med("wall"), med("window"), sp, task=med("task"))


def run_btrfs(args):
    if os.geteuid() != 0:
        sys.exit("harness btrfs: needs root (loop devices)")
    for tool in ("btrfs", "mkfs.btrfs", "losetup"):
        if not conftest.which(tool):
            sys.exit("harness btrfs: %s is missing (Debian btrfs-progs / util-linux)" % tool)
    by_name = {m.name: m for m in METHODS}
    names = args.methods.split(",") if args.methods else [m.name for m in METHODS if m.default]
    unknown = [n for n in names if n not in by_name]
    if unknown:
        sys.exit("harness btrfs: unknown method(s) %s; declared: %s" % (", ".join(unknown), ", ".join(by_name)))
    # snapper changes the sources (a .snapshots subvolume in each): always last
    names.sort(key=lambda n: n == "snapper")
    work = tempfile.mkdtemp(prefix="pitcopy-bench-harness-")
    rows = []
    site = None
    try:
        site = BtrfsSite(work, max(args.n))
        done = set()
        for n in args.n:
            for name in names:
                cls = by_name[name]
                m_n = min(n, args.peer_n) if cls.peer_cap else n
                if (name, m_n) in done:
                    continue  # a slow peer, capped at --peer-n: measured once
                done.add((name, m_n))
                row = {"method": name, "n": m_n, "label": cls.label, "rounds": args.rounds,
                       "load": load_average()}
                method = cls(site, m_n, args)
                prepared = False
                try:
                    method.check()
                    method.prepare()
                    prepared = True
                    s = median_sample([method.once() for dummy in range(args.rounds)])
                    row.update(wall=s.wall, task=s.task, window=s.window, spread=s.spread)
                    if args.profile and name in ("engine", "module"):
                        profiled(method, args.profile)
                except (MethodError, subprocess.CalledProcessError, OSError, RuntimeError, KeyError) as exc:
                    row["error"] = "%s: %s" % (type(exc).__name__, exc)
                finally:
                    if prepared:
                        try:
                            method.close()
                        except (MethodError, subprocess.CalledProcessError, OSError, RuntimeError) as exc:
                            row["error"] = row.get("error") or "clean-up: %s" % exc
                rows.append(row)
                print_row(row, rows, header=len(rows) == 1)
    finally:
        if site is not None:
            site.destroy()
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _bare_for(rows, n):
    for r in rows:
        if r["method"] == "bare" and r["n"] == n and r.get("wall"):
            return r["wall"]
    return None


def fmt(v, spec="%.3f"):
    return spec % v if v is not None else "-"


def print_row(row, rows, header=False):
    if header:
        names = ("method", "N", "wall s", "task s", "window s", "first-last s", "wall/b", "task/b", "load avg / what")
        print("%-8s %5s %8s %8s %8s %17s %7s %7s  %s" % names)
    if "error" in row:
        print("%-8s %5d ERROR %s" % (row["method"], row["n"], row["error"]))
        sys.stdout.flush()
        return
    bare = _bare_for(rows, row["n"])
    sp = "%.3f (%d txn)" % tuple(row["spread"]) if row.get("spread") else "-"
    print("%-8s %5d %8s %8s %8s %17s %7s %7s  [%s] %s" % (
        row["method"], row["n"], fmt(row["wall"]), fmt(row["task"]), fmt(row["window"]), sp,
        fmt(row["wall"] / bare if bare else None, "%.2f"),
        fmt(row["task"] / bare if bare and row["task"] is not None else None, "%.2f"),
        row["load"], row["label"]))
    sys.stdout.flush()


# --- memory: the engine alone at scale -------------------------------------------

def run_memory(args):
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "unit"))
    from ansible_collections.pitcopy.versions.tests.unit.memory_backend import (  # pylint: disable=import-outside-toplevel
        MemoryBackend, SimpleWindow)
    rows = []
    for n in args.n:
        work = tempfile.mkdtemp(prefix="pitcopy-bench-memory-")
        try:
            be = MemoryBackend("btrfs_snapshot")
            sources = ["/srv/vol/s%05d" % i for i in range(n)]
            for s in sources:
                be.add_volume(s)
            engine = RecordEngine(StateStore(work), lambda tech: be, window_factory=SimpleWindow)
            d = PoolDefinition(name="mem", technology="btrfs_snapshot", sources=tuple(sources), versions=2)
            t0 = time.monotonic()
            with engine.session("mem") as s:
                s.plan_define(d).apply()
            define = time.monotonic() - t0
            walls = []
            for dummy in range(args.rounds):
                t0 = time.monotonic()
                with engine.session("mem") as s:
                    s.plan_copy().apply()
                walls.append(time.monotonic() - t0)
            row = {"method": "engine-mem", "n": n, "define": define, "wall": statistics.median(walls),
                   "rounds": args.rounds, "load": load_average()}
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rows.append(row)
        if len(rows) == 1:
            print("%-10s %6s %9s %10s %12s  %s" % ("method", "N", "define s", "copy s", "per volume ms", "load avg"))
        per_volume_ms = row["wall"] * 1000.0 / n
        print("%-10s %6d %9.3f %10.3f %12.3f  [%s]" % (row["method"], n, define, row["wall"], per_volume_ms, row["load"]))
        sys.stdout.flush()
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("technology", choices=["btrfs", "memory"])
    ap.add_argument("--n", type=int, nargs="+", default=None, help="volume counts (default btrfs 50, memory 10000)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--methods", default=None,
                    help="comma-separated; default: %s" % ",".join(m.name for m in METHODS if m.default))
    ap.add_argument("--cheap", action="store_true", help="only the CI smoke methods: %s" % ",".join(CHEAP))
    ap.add_argument("--peer-n", type=int, default=10, help="at most this many volumes for the slow peers")
    ap.add_argument("--json", help="write the rows to this file")
    ap.add_argument("--plot", help="write scale-curve PNGs into this directory (needs matplotlib)")
    ap.add_argument("--list", action="store_true", help="list the declared methods")
    ap.add_argument("--profile", help="after the rounds, one more engine/module version under cProfile; "
                    "stats into this directory")
    args = ap.parse_args(argv)
    if args.list:
        for m in METHODS:
            print("%-9s %-5s %-7s %s" % (m.name, "cheap" if m.cheap else "", "default" if m.default else "opt-in",
                                         m.label))
        return 0
    if args.cheap:
        args.methods = ",".join(CHEAP)
    if args.n is None:
        args.n = [10000] if args.technology == "memory" else [50]
    print("pitcopy benchmark harness: %s, N=%s, %d round(s), %s, %d cpu, %s UTC, load average %s" % (
        args.technology, ",".join(map(str, args.n)), args.rounds, platform.node(), os.cpu_count(),
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"), load_average()))
    sys.stdout.flush()
    rows = run_btrfs(args) if args.technology == "btrfs" else run_memory(args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"argv": sys.argv, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                       "cpus": os.cpu_count(), "rows": rows}, fh, indent=1)
    if args.plot:
        # matplotlib only when asked for
        import plot  # pylint: disable=import-outside-toplevel
        plot.plot(rows, args.plot, args.technology, title="(%s)" % datetime.date.today().isoformat())
    errors = [r for r in rows if "error" in r]
    if errors:
        print("%d method(s) errored: %s" % (len(errors), ", ".join("%s@%d" % (r["method"], r["n"]) for r in errors)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
