# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""btrfs_snapshot and btrfs_send through the record engine, on real btrfs
filesystems on loop devices (native; no VM)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import (
    BtrfsSendBackend,
    BtrfsSnapshotBackend,
    read_mark,
    subvol_info,
    write_mark,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CapacityError,
    CopyFailed,
    InvalidInput,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import Hook, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.tests.real.conftest import unique_pool_name
from ansible_collections.pitcopy.versions.tests.utils import btrfs_scenarios
from ansible_collections.pitcopy.versions.tests.utils.pool_calls import PoolCalls
from ansible_collections.pitcopy.versions.tests.utils.trees import read, write

pytestmark = pytest.mark.btrfs

BACKENDS = {"btrfs_snapshot": BtrfsSnapshotBackend, "btrfs_send": BtrfsSendBackend}


def btrfs(*args):
    proc = subprocess.run(["btrfs"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          universal_newlines=True)
    assert proc.returncode == 0, "btrfs %s: %s" % (" ".join(args), proc.stderr)
    return proc.stdout


class PoolOnBtrfs(object):
    """A copy pool of ``technology`` on real btrfs, its sources below
    ``<src>/vol``: the store under tmp_path, the engine and the backend over
    ``runner``; its name carries the run's token (conftest.unique_pool_name)."""

    def __init__(self, tmp_path, runner, src, technology, name):
        self.technology = technology
        self.name = unique_pool_name(name)
        self.store = StateStore(str(tmp_path / "state"))
        self.engine = RecordEngine(self.store, lambda tech: BACKENDS[tech](runner=runner))
        self.backend = BACKENDS[technology](runner=runner)
        os.makedirs(src.path("vol"), exist_ok=True)


class World(PoolOnBtrfs, PoolCalls):
    """A copy pool on real btrfs: sources on fs ``src``, send targets on ``dst``."""

    def __init__(self, tmp_path, runner, src, dst, technology, name="pool1"):
        PoolOnBtrfs.__init__(self, tmp_path, runner, src, technology, name)
        self.runner = runner
        self.src = src
        self.dst = dst
        self.sources = []
        self.target_pools = ()
        self.hooks = ((), ())
        self.versions = 2

    def add_source(self, name, parent="vol"):
        path = self.src.path(parent, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        btrfs("subvolume", "create", path)
        self.sources.append(path)
        return path

    def write_all(self, text):
        """New data in every source: {source: text}, as check_versions takes it."""
        return self.write_each(dict((s_, text) for s_ in self.sources))

    def write_each(self, content):
        """``content`` ({source: text}) written as each source's data."""
        for s_, text in content.items():
            write(os.path.join(s_, "data"), text)
        return content

    def scribble(self, source):
        write(os.path.join(source, "data"), "scribbled\n")
        write(os.path.join(source, "extra"), "new file\n")

    def make_writable(self, path):
        btrfs("property", "set", "-f", path, "ro", "false")

    @contextlib.contextmanager
    def bind_mounted(self, path):
        subprocess.check_call(["mount", "--bind", path, path])
        try:
            yield
        finally:
            subprocess.check_call(["umount", path])

    def tamper(self, path):
        write(os.path.join(path, "data"), "tampered\n")
        btrfs("property", "set", "-f", path, "ro", "true")
        btrfs("filesystem", "sync", path)

    def check_versions(self, expected):
        check_versions(self, expected)

    def check_restored(self, source, text):
        assert read(os.path.join(source, "data")) == text and not subvol_info(source)["readonly"]

    def make_subvolume(self, path):
        btrfs("subvolume", "create", path)

    def snapshot(self, of, at):
        btrfs("subvolume", "snapshot", of, at)

    def delete_subvolume(self, path):
        btrfs("subvolume", "delete", path)

    def three_sources_at_version_1(self):
        """Sources a, b and c holding "v1\n", two target pools of three
        targets, version 1 copied: the sources."""
        for n in ("a", "b", "c"):
            self.add_source(n)
        self.make_target_pools(count=2, per_pool=3)
        self.define()
        for s_ in self.sources:
            write(os.path.join(s_, "data"), "v1\n")
        self.copy()
        return list(self.sources)

    def a_and_b_at_version_1(self):
        """Sources a and b defined, each holding "v1", copied as version 1."""
        a, b = self.add_source("a"), self.add_source("b")
        self.define()
        for s in (a, b):
            write(os.path.join(s, "data"), "v1\n")
        self.copy()
        return a, b

    def write_owned_files(self):
        """In each source, d/data holding "v1 of <source>" with an owner,
        a mode and an extended attribute that a restore must keep."""
        for s in self.sources:
            os.makedirs(os.path.join(s, "d"))
            write(os.path.join(s, "d", "data"), "v1 of %s\n" % s)
            os.chown(os.path.join(s, "d", "data"), 1234, 4321)
            os.chmod(os.path.join(s, "d", "data"), 0o640)
            os.setxattr(os.path.join(s, "d", "data"), "user.origin", b"v1")

    def pitcopy_leftovers(self):
        """Staged copies, temporary snapshots and pending marks anywhere."""
        found = []
        for fs in (self.src, self.dst):
            for root, dirs, files in os.walk(fs.mountpoint):
                for n in dirs + files:
                    if n.startswith(".pitcopy-staging.") or n.startswith(".pitcopy-aside."):
                        found.append(os.path.join(root, n))
                    if n.startswith(".pitcopy-mark.") and ".pitcopy-staging." in n:
                        found.append(os.path.join(root, n))
                    if n.startswith(".pitcopy-mark.") and ".tmp." in n:
                        found.append(os.path.join(root, n))
                dirs[:] = [d for d in dirs if not d.startswith(".pitcopy-staging.") and not
                           (d.startswith("v") and d[1:].isdigit())]
        return found


def db_www_world(tmp_path, runner, fs_pair, technology):
    """A defined copy pool of sources db and www keeping two versions (for
    btrfs_send in two target pools of two volumes)."""
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, technology)
    w.add_source("db")
    w.add_source("www")
    w.versions = 2
    if technology == "btrfs_send":
        w.make_target_pools(count=2, per_pool=2)
    w.define()
    return w


def copy_tagged_versions(world, live):
    """Copies versions 1 and 2, every source's ``data`` holding ``v1``/``v2``
    at its version, then writes ``live`` to each; returns what each version
    holds, for check_versions."""
    expected = {}
    for v in (1, 2):
        for s_ in world.sources:
            write(os.path.join(s_, "data"), "v%d\n" % v)
        world.copy()
        expected[v] = dict((s_, "v%d\n" % v) for s_ in world.sources)
    for s_ in world.sources:
        write(os.path.join(s_, "data"), live)
    return expected


def check_versions(world, expected):
    """Every kept version holds exactly the data of its point in time."""
    state = world.state()
    kept = sorted(r.version for r in state.replication_records)
    assert kept == sorted(expected)[-len(kept):]
    for rec in state.replication_records:
        assert rec.status == "valid"
        assert sorted(p.source for p in rec.pairs) == sorted(expected[rec.version])
        for p in rec.pairs:
            path = world.copy_path(p)
            assert read(os.path.join(path, "data")) == expected[rec.version][p.source], (rec.version, p)
            info = subvol_info(path)
            assert info["readonly"], path
            mark = read_mark(path)
            assert mark["pool"] == world.name and mark["version"] == rec.version and mark["source"] == p.source
    return kept


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_versions_rotate_with_sources_added_and_removed(fs_pair, runner, tmp_path, technology):
    src, dst = fs_pair
    btrfs_scenarios.versions_rotate_with_sources_added_and_removed(World(tmp_path, runner, src, dst, technology),
                                                                   technology)


def test_source_names_are_validated(runner):
    b = BtrfsSnapshotBackend(runner=runner)
    for bad in ("relative/path", "/srv/../etc", "/srv/a b", "/srv/a;rm", "/srv/$(x)", "/srv/a\nb", "-rf",
                "/srv/-x", "/srv/.pitcopy/x", "/srv/data/", "/", "/srv//x", "/srv/./x", "/srv/`x`"):
        with pytest.raises(InvalidInput) as err:
            b.validate_source_name(bad)
        assert repr(bad) in err.value.msg and "absolute path" in err.value.msg
    b.validate_source_name("/srv/data-1_x.y@z:2")
    assert b.implied_target("p", "01", "/srv/db") == "/srv/.pitcopy/p/01/db"
    with pytest.raises(InvalidInput):
        b.implied_target("../p", "01", "/srv/db")
    with pytest.raises(InvalidInput):
        b.discover(["/srv/a b"])


def test_discovery_facts(fs_pair, runner):
    src, dst = fs_pair

    def fsid():
        return [ln for ln in btrfs("filesystem", "show", src.mountpoint).splitlines() if "uuid:" in ln][0].split(
            "uuid:")[1].strip()

    btrfs_scenarios.discovery_facts(BtrfsSendBackend(runner=runner), src, dst,
                                    lambda path: btrfs("subvolume", "create", path), fsid)


def test_foreign_target_is_never_used_or_overwritten(fs_pair, runner, tmp_path):
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, "btrfs_send")
    w.three_sources_at_version_1()
    btrfs_scenarios.foreign_target_is_never_used_or_overwritten(w)


def test_target_filesystem_too_full(loopfs_factory, runner, tmp_path):
    src = loopfs_factory("btrfs", size=512 * 1024 * 1024, name="src")
    dst = loopfs_factory("btrfs", size=256 * 1024 * 1024, name="dst")
    w = World(tmp_path, runner, src, dst, "btrfs_send")
    w.three_sources_at_version_1()
    # 240 MiB of real data in one source: more than the 256 MiB target fs has free
    with open(os.path.join(w.sources[0], "big"), "wb") as fh:
        for dummy in range(240):
            fh.write(os.urandom(1024 * 1024))
    btrfs("filesystem", "sync", src.mountpoint)
    with pytest.raises(CapacityError) as err:
        w.copy()
    msg = err.value.msg
    assert "bytes free but the new version needs" in msg and dst.path("tp2", "t1") in msg
    print(msg)
    assert w.pitcopy_leftovers() == []
    # no snapshot of the refused copy: only version 1's bases (kept for
    # the next incremental sends) and their marks
    assert sorted(os.listdir(src.path("vol", ".pitcopy", w.name, "send"))) == sorted(
        [".pitcopy-base.1." + n for n in ("a", "b", "c")] +
        [".pitcopy-mark..pitcopy-base.1.%s.json" % n for n in ("a", "b", "c")])
    state = w.state()
    assert [r.version for r in state.replication_records] == [1] and state.journal is None
    check_versions(w, {1: dict((s_, "v1\n") for s_ in w.sources)})


def test_failing_pair_removes_the_whole_version(fs_pair, runner, tmp_path):
    """The third snapshot fails inside the copy window (its directory is
    immutable): the two made before it are removed, records stay."""
    src, dst = fs_pair
    if subprocess.call(["which", "chattr"], stdout=subprocess.DEVNULL) != 0:
        pytest.fail("chattr (e2fsprogs) is needed for this test")
    w = World(tmp_path, runner, src, dst, "btrfs_snapshot")
    w.add_source("a")
    w.add_source("b")
    w.add_source("c", parent="other")
    w.define()
    for s_ in w.sources:
        write(os.path.join(s_, "data"), "v1\n")
    w.copy()
    w.copy()
    # version 3 goes to target pool 01; make c's directory there immutable
    # from a pre-copy hook (after the backend's preparations) until the post hook
    tdir = src.path("other", ".pitcopy", w.name, "01")
    w.hooks = ([Hook(argv=("chattr", "+i", tdir))], [Hook(argv=("chattr", "-i", tdir))])
    w.define()
    for s_ in w.sources:
        write(os.path.join(s_, "data"), "v3\n")
    with pytest.raises(CopyFailed) as err:
        w.copy()
    msg = err.value.msg
    print(msg)
    assert src.path("vol", "c") not in msg and w.sources[2] in msg
    assert "Operation not permitted" in msg and "the 2 snapshot(s) already made were removed" in msg
    assert err.value.details["source"] == w.sources[2]
    assert w.pitcopy_leftovers() == []
    state = w.state()
    assert [r.version for r in state.replication_records] == [1, 2] and state.journal is None
    check_versions(w, {1: dict((s_, "v1\n") for s_ in w.sources), 2: dict((s_, "v1\n") for s_ in w.sources)})
    # without the obstacle the next attempt succeeds
    w.hooks = ((), ())
    w.define()
    assert w.copy()["version"]["number"] == 3


WRITER = r"""
import os, signal, sys, time
paths = sys.argv[2:]
ack = sys.argv[1]
state = {"pause": False}
fds = [os.open(p, os.O_WRONLY | os.O_CREAT, 0o644) for p in paths]
def on_pause(signum, frame):
    state["pause"] = True
signal.signal(signal.SIGUSR1, on_pause)
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
i = 0
while True:
    i += 1
    for fd in fds:
        # same length every time, written in place: never empty or torn;
        # on disk before the next source's write. A snapshot is only
        # crash-consistent: it holds what is on disk, and the flush of dirty
        # pages the snapshot ioctl starts can miss a page the writer is
        # rewriting (seen once: one source's copy held round 1, its others
        # ~2,100). With every round on disk, the order in which the sources
        # were snapshotted is what the copies show.
        os.pwrite(fd, b"%012d\n" % i, 0)
        os.fsync(fd)
    if i == 1:
        # every source holds a number on disk before the test copies (it
        # waits for <ack>.started)
        with open(ack + ".started", "w") as fh:
            fh.write("1\n")
    if state["pause"]:
        # a consistent point: every source holds i; wait to be resumed
        with open(ack, "w") as fh:
            fh.write("%d\n" % i)
        signal.sigwait([signal.SIGUSR2])
        os.unlink(ack)
        state["pause"] = False
"""

QUIESCE = r"""
import os, signal, sys, time
pid, ack = int(sys.argv[1]), sys.argv[2]
os.kill(pid, signal.SIGUSR1)
deadline = time.time() + 30
while not os.path.exists(ack):
    if time.time() > deadline:
        sys.exit("writer did not reach a consistent point")
    time.sleep(0.001)
"""


def _wait_for(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail("waited %d s for %s" % (seconds, what))
        time.sleep(0.05)


def _seq_of_version(w, version):
    rec = w.state().replication(version)
    return dict((p.source, int(read(os.path.join(w.copy_path(p), "seq")))) for p in rec.pairs)


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_consistency_with_a_continuous_writer(fs_pair, runner, tmp_path, technology):
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, technology)
    w.versions = 2
    for n in ("a", "b", "c", "d", "e"):
        w.add_source(n)
    w.make_target_pools(count=2, per_pool=5)
    w.define()
    ack = str(tmp_path / "ack")
    seqs = [os.path.join(s_, "seq") for s_ in w.sources]
    writer = subprocess.Popen([sys.executable, "-c", WRITER, ack] + seqs)
    try:
        # the writer has started once every source holds a number on disk
        # (a Python start takes seconds inside the test VM, not the 0.3 s
        # once slept)
        _wait_for(lambda: os.path.exists(ack + ".started"), 60, "the writer to start")
        # without hooks: back-to-back snapshots, one transaction each
        w.copy()
        plain = _seq_of_version(w, 1)
        # with a pre-copy hook that brings the writer to a consistent point
        w.hooks = ([Hook(argv=(sys.executable, "-c", QUIESCE, str(writer.pid), ack), timeout=60)],
                   [Hook(argv=("kill", "-USR2", str(writer.pid)))])
        w.define()
        result = w.copy()
        hooked = _seq_of_version(w, 2)
        # the writer was resumed by the post hook: it moves on
        _wait_for(lambda: int(read(seqs[0])) > max(hooked.values()), 30, "the resumed writer to move on")
        assert writer.poll() is None
    finally:
        writer.kill()
        writer.wait()
    spread = max(plain.values()) - min(plain.values())
    print("%s without hooks: sequence numbers %s (spread %d across %d sources)" % (
        technology, [plain[s_] for s_ in w.sources], spread, len(w.sources)))
    print("%s with the quiescing hook: %s; copy window %.1f ms (hooks included)" % (
        technology, [hooked[s_] for s_ in w.sources], result["copy_window_ms"]))
    assert len(set(hooked.values())) == 1, hooked
    # every copy is a real point in time of its own source: sources are
    # snapshotted one after the other in the order the writer writes them,
    # so a later source's number is at least the earlier one's minus one
    seq = [plain[s_] for s_ in w.sources]
    assert all(b >= a - 1 for a, b in zip(seq, seq[1:])), seq


def test_refuses_freeze_consistency(fs_pair, runner, tmp_path):
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, "btrfs_snapshot")
    w.add_source("a")
    w.define()
    d = w.definition()
    frozen = PoolDefinition(name=d.name, technology=d.technology, sources=d.sources, versions=2,
                            consistency="freeze")
    b = BtrfsSnapshotBackend(runner=runner)
    with pytest.raises(InvalidInput, match="uninterruptible"):
        b.check_capacity(frozen, [], [], {})


def test_restore_refuses_busy_and_mountpoint_sources(fs_pair, runner, tmp_path):
    src, dst = fs_pair
    btrfs_scenarios.restore_refuses_busy_and_mountpoint_sources(World(tmp_path, runner, src, dst, "btrfs_snapshot"))


def _hold(w, version, held=True):
    with w.engine.session(w.name) as s:
        return s.plan_hold(version, held=held, reason="audit" if held else None).apply()


def test_holds_on_the_storage_and_restore_refusals_change_nothing(fs_pair, runner, tmp_path):
    """Issue 11: a restore onto a source that is a plain directory, or
    from a copy that was made writable, is refused with the reason, and
    nothing is changed. A held version's copies carry the hold in their
    marks and stay read-only; a copy made writable behind our back, or a
    mark that lost the hold, is reported (hold_not_enforced) and repair
    holds it again; a release takes the hold off."""
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, "btrfs_snapshot", name="holds")
    a, b_ = w.a_and_b_at_version_1()
    pair_a, pair_b = w.state().replication(1).pairs
    copy_a, copy_b = w.copy_path(pair_a), w.copy_path(pair_b)
    records = w.state()
    # a plain directory where source a was: never replaced by a restore
    btrfs("subvolume", "delete", a)
    os.mkdir(a)
    write(os.path.join(a, "mine"), "keep\n")
    with pytest.raises(InvalidInput) as err:
        w.restore(1, volumes=[a])
    assert "%s exists and is not a subvolume; move it away first" % a in err.value.msg
    assert "nothing was changed" in err.value.msg
    assert os.listdir(a) == ["mine"] and read(os.path.join(a, "mine")) == "keep\n"
    assert w.state() == records
    os.remove(os.path.join(a, "mine"))
    os.rmdir(a)
    assert w.restore(1, volumes=[a])["restored"] == [a]
    assert read(os.path.join(a, "data")) == "v1\n"
    # holds
    _hold(w, 1)
    assert read_mark(copy_a)["held"] is True and read_mark(copy_b)["held"] is True
    # the hold lost on the storage: copy a writable, copy b's mark without it
    btrfs("property", "set", "-t", "subvol", copy_a, "ro", "false")
    mark = read_mark(copy_b)
    del mark["held"]
    write_mark(copy_b, mark)
    found = w.verify()
    lost = dict((f["source"], f["action"]) for f in found["findings"] if f["problem"] == "hold_not_enforced")
    assert sorted(lost) == [a, b_], found
    assert "%s is no longer read-only" % copy_a in lost[a], lost
    assert "the ownership mark of %s does not carry the hold" % copy_b in lost[b_], lost
    w.verify(repair=True)
    assert subvol_info(copy_a)["readonly"] and read_mark(copy_b)["held"] is True
    assert [f for f in w.verify()["findings"] if f["problem"] == "hold_not_enforced"] == []
    _hold(w, 1, held=False)
    assert "held" not in read_mark(copy_a) and "held" not in read_mark(copy_b)
    # a copy made writable is no copy to restore from: the backend refuses
    # it too (the engine's own check of the version aside)
    write(os.path.join(b_, "data"), "later\n")
    btrfs("property", "set", "-t", "subvol", copy_b, "ro", "false")
    with pytest.raises(InvalidInput) as err:
        w.backend.restore(w.definition(), 1, [pair_b])
    assert "%s: the copy is not valid: %s is no longer read-only" % (b_, copy_b) in err.value.msg
    assert "nothing was changed" in err.value.msg
    assert read(os.path.join(b_, "data")) == "later\n"
    assert w.pitcopy_leftovers() == []


def test_interrupted_copy_is_repaired(fs_pair, runner, tmp_path):
    src, dst = fs_pair
    btrfs_scenarios.interrupted_copy_is_repaired(World(tmp_path, runner, src, dst, "btrfs_snapshot"))


@pytest.mark.parametrize("snapshot_with", ["ioctl", "command"])
def test_both_snapshot_paths_make_the_same_copies(fs_pair, runner, snapshot_with):
    """The ioctl path (default) and the ``btrfs subvolume snapshot -r``
    command path give identical, marked, read-only staged copies."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair
    from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
    src, _dst = fs_pair
    os.makedirs(src.path("vol"))
    sources = []
    for n in ("a", "b", "c"):
        path = src.path("vol", n)
        btrfs("subvolume", "create", path)
        write(os.path.join(path, "data"), n)
        sources.append(path)
    b = BtrfsSnapshotBackend(runner=runner, snapshot_with=snapshot_with)
    pool = unique_pool_name("p")
    d = PoolDefinition(name=pool, technology="btrfs_snapshot", sources=tuple(sources), versions=1)
    pairs = [CopyPair(s_, b.implied_target(pool, "01", s_)) for s_ in sources]
    window = CopyWindow(d, runner)
    outcome = b.create_copies(d, 1, pairs, window)
    assert [p.source for p in outcome.staged] == sources
    for pair, st in zip(pairs, outcome.staged):
        assert os.path.basename(st.target) == ".pitcopy-staging." + os.path.basename(pair.source)
        info = subvol_info(st.target)
        assert info["readonly"] and info["parent_uuid"] == subvol_info(pair.source)["uuid"]
        assert read_mark(st.target)["state"] == "complete"
        assert read(os.path.join(st.target, "data")) == os.path.basename(pair.source)
    assert window.window_ms > 0
    b.promote(d, 1, pairs, outcome.staged, [])
    b.promote(d, 1, pairs, outcome.staged, [])  # idempotent
    assert sorted((c.version, c.staged, c.valid) for c in b.list_copies(pool)) == [(1, False, True)] * 3
    b.delete_copies(d, pairs)
    assert b.list_copies(pool) == []
    assert sorted(os.listdir(src.path("vol", ".pitcopy", pool, "01"))) == []
    with pytest.raises(InvalidInput):
        BtrfsSnapshotBackend(runner=runner, snapshot_with="shell")


def test_list_copies_through_subvolume_mounts(fs_pair, runner, tmp_path):
    """Copies are found by one ``btrfs subvolume list`` per filesystem and
    mapped through its mounts; a second mount does not list them twice."""
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, "btrfs_snapshot")
    for n in ("a", "b"):
        w.add_source(n)
    w.define()
    w.copy()
    second = str(tmp_path / "second")
    os.makedirs(second)
    subprocess.check_call(["mount", "-o", "subvol=/", src.device, second])
    try:
        listed = sorted(c.target for c in w.backend.list_copies(w.name))
        assert listed == sorted(w.backend.implied_target(w.name, "01", s_) for s_ in w.sources)
        # the same pool defined through the second mount sees its own paths
        b2 = BtrfsSnapshotBackend(runner=runner)
        other = os.path.join(second, "vol", "a")
        vols = b2.discover([other, b2.implied_target(w.name, "01", other)])
        assert vols[other].kind == "subvolume"
        # the mark names the canonical path, so the copy is ours but listed once
        assert vols[b2.implied_target(w.name, "01", other)].owner == w.name
    finally:
        subprocess.check_call(["umount", second])


class ListingSpy(object):
    """The runner, noting every argv the backends run through it."""

    def __init__(self, runner):
        self.runner = runner
        self.argvs = []

    def run(self, argv, *a, **kw):
        self.argvs.append([str(x) for x in argv])
        return self.runner.run(argv, *a, **kw)

    def pipe(self, argvs, *a, **kw):
        self.argvs.extend([str(x) for x in argv] for argv in argvs)
        return self.runner.pipe(argvs, *a, **kw)

    def __getattr__(self, name):
        return getattr(self.runner, name)

    def filesystem_listings(self):
        """``btrfs subvolume list`` of a whole filesystem (not ``-o`` of a source)."""
        return [a for a in self.argvs if a[:3] == ["btrfs", "subvolume", "list"] and "-o" not in a]


def _listed(backend, name, scope=None):
    return sorted(backend.list_copies(name, scope), key=lambda c: (c.target, str(c.version)))


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_copies_are_looked_for_only_where_the_pool_keeps_them(fs_pair, runner, tmp_path, technology):
    """The engine lists a pool's copies only where its definition, records
    and journal say they can be (no listing of every subvolume of the
    host): the same copies as the host-wide listing, another pool's copies
    never read, and the copies of a source that left the pool (in another
    directory, so only its records lead there) still found and rotated."""
    src, dst = fs_pair
    spy = ListingSpy(runner)
    w = World(tmp_path, spy, src, dst, technology)
    hostwide = BACKENDS[technology](runner=runner)  # the listing of every filesystem, to compare
    w.add_source("a")
    w.add_source("b", parent="vol2")
    if technology == "btrfs_send":
        w.make_target_pools(count=2, per_pool=2)
    other = World(tmp_path, runner, src, dst, technology, name="decoy")
    other.add_source("c", parent="other")
    if technology == "btrfs_send":
        os.makedirs(dst.path("decoy"), exist_ok=True)
        other.target_pools = (TargetPool("d1", (dst.path("decoy"),)), TargetPool("d2", (dst.path("decoy2"),)))
        os.makedirs(dst.path("decoy2"), exist_ok=True)
    other.define()
    other.copy()
    w.define()
    del spy.argvs[:]
    w.copy()
    w.copy()
    assert w.verify()["consistent"] is True
    assert spy.filesystem_listings() == []
    scope = w.state().copy_scope()
    assert _listed(w.backend, w.name, scope) == _listed(hostwide, w.name)
    assert len(_listed(w.backend, w.name, scope)) == 4
    # b leaves the pool: its copies in vol2's .pitcopy directory are named
    # only by the records (btrfs_snapshot); they are still found, checked
    # and, when version 1 is replaced, deleted
    b = w.sources.pop()
    w.define()
    scope = w.state().copy_scope()
    listed = _listed(w.backend, w.name, scope)
    assert listed == _listed(hostwide, w.name)
    assert sorted(c.version for c in listed if c.source == b) == [1, 2]
    assert w.verify()["consistent"] is True
    v1_b = [w.copy_path(p) for p in w.state().replication(1).pairs if p.source == b]
    assert len(v1_b) == 1 and os.path.isdir(v1_b[0])
    w.copy()
    assert not os.path.exists(v1_b[0])
    listed = _listed(w.backend, w.name, w.state().copy_scope())
    assert listed == _listed(hostwide, w.name)
    assert sorted((c.version, c.source == b) for c in listed) == [(2, False), (2, True), (3, False)]
    assert w.verify()["consistent"] is True
    assert spy.filesystem_listings() == []
    # the other pool's copies are its own, untouched
    assert other.verify()["consistent"] is True
    assert [c.source for c in _listed(other.backend, other.name, other.state().copy_scope())] == other.sources


def test_mountpoint_source_is_refused_before_the_copy(fs_pair, runner, tmp_path):
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, "btrfs_snapshot")
    a = w.add_source("a")
    w.add_source("b")
    w.define()
    subprocess.check_call(["mount", "--bind", a, a])
    try:
        with pytest.raises(InvalidInput) as err:
            w.copy()
        assert "%s is the mountpoint of a filesystem" % a in err.value.msg
    finally:
        subprocess.check_call(["umount", a])
    state = w.state()
    assert state.journal is None and state.replication_records == ()
    assert w.pitcopy_leftovers() == []
    assert w.copy()["version"]["number"] == 1


KILLER = r"""
import os, signal, sys
from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSendBackend, BtrfsSnapshotBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.tests.real.conftest import unique_pool_name
state_dir, pool, words, count = sys.argv[1], sys.argv[2], sys.argv[3].split(), int(sys.argv[4])
class KillingRunner(SubprocessRunner):
    seen = 0
    def run(self, argv, *a, **kw):
        out = super(KillingRunner, self).run(argv, *a, **kw)
        if argv[:len(words)] == words:
            KillingRunner.seen += 1
            if KillingRunner.seen == count:
                os.kill(os.getpid(), signal.SIGKILL)
        return out
runner = KillingRunner()
backends = {"btrfs_snapshot": BtrfsSnapshotBackend, "btrfs_send": BtrfsSendBackend}
engine = RecordEngine(StateStore(state_dir), lambda t: backends[t](runner=runner, snapshot_with="command"))
with engine.session(pool) as s:
    s.plan_copy().apply()
sys.exit("not killed")
"""


@pytest.mark.parametrize("kill_at,outcome", [
    ("btrfs subvolume snapshot:2", "rolled back"),      # inside the copy window, 2 of 3 made
    ("btrfs subvolume delete:1", "finished"),           # promotion began: replaced copies deleted
])
def test_sigkill_during_a_copy_is_repaired(fs_pair, runner, tmp_path, kill_at, outcome):
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, "btrfs_snapshot")
    for n in ("a", "b", "c"):
        w.add_source(n)
    w.define()
    expected = copy_tagged_versions(w, "v3\n")
    words, count = kill_at.split(":")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    child = subprocess.run([sys.executable, "-c", KILLER, w.store.state_dir, w.name, words, count], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False, universal_newlines=True)
    assert child.returncode == -9, child.stderr
    state = w.state()
    assert state.journal is not None and state.journal.version == 3
    found = w.verify()
    problems = [(f["problem"], f["version"]) for f in found["findings"]]
    assert problems[0] == ("interrupted_copy", 3)
    if outcome == "finished":
        # promotion had deleted the replaced version 1 before the kill
        assert sorted(problems[1:]) == [("copy_missing", 1)] * 3
    else:
        assert problems[1:] == []
    repaired = w.verify(repair=True)
    assert outcome in repaired["findings"][0]["action"], repaired
    state = w.state()
    assert state.journal is None
    if outcome == "finished":
        expected[3] = dict((s_, "v3\n") for s_ in w.sources)
        assert [r.version for r in state.replication_records] == [2, 3]
    else:
        assert [r.version for r in state.replication_records] == [1, 2]
    check_versions(w, expected)
    assert w.pitcopy_leftovers() == []
    assert w.verify()["consistent"] is True
    assert w.copy()["version"]["number"] == 4 if outcome == "finished" else 3


def test_sizes_come_from_qgroups_when_quotas_are_on(fs_pair, runner):
    src, dst = fs_pair
    os.makedirs(src.path("vol"))
    small, big = src.path("vol", "small"), src.path("vol", "big")
    btrfs("subvolume", "create", small)
    btrfs("subvolume", "create", big)
    with open(os.path.join(big, "blob"), "wb") as fh:
        fh.write(os.urandom(8 * 1024 * 1024))
    btrfs("filesystem", "sync", src.mountpoint)
    b = BtrfsSendBackend(runner=runner)
    before = b.discover([small, big])
    # without quotas both report the filesystem's used bytes (an upper bound)
    assert before[small].size == before[big].size >= 8 * 1024 * 1024
    btrfs("quota", "enable", src.mountpoint)
    btrfs("quota", "rescan", "-w", src.mountpoint)
    btrfs("filesystem", "sync", src.mountpoint)
    after = b.discover([small, big])
    print("sizes without quotas %d/%d, with qgroups %d/%d" % (
        before[small].size, before[big].size, after[small].size, after[big].size))
    assert after[small].size < 1024 * 1024
    assert 8 * 1024 * 1024 <= after[big].size < 9 * 1024 * 1024


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_restore_changed_comes_from_a_comparison(fs_pair, runner, tmp_path, technology):
    src, dst = fs_pair
    btrfs_scenarios.restore_changed_comes_from_a_comparison(World(tmp_path, runner, src, dst, technology))


@pytest.mark.parametrize("technology", ["btrfs_snapshot"])
def test_interrupted_restore_is_finished_by_repair(fs_pair, runner, tmp_path, technology):
    src, dst = fs_pair
    btrfs_scenarios.interrupted_restore_is_finished_by_repair(World(tmp_path, runner, src, dst, technology))


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_a_held_version_is_never_rotated_and_a_lost_hold_is_repaired(fs_pair, runner, tmp_path, technology):
    """Holds on real btrfs: the copy stays read-only and its mark carries the
    hold; rotation onto its target pool is refused before anything is
    touched; a copy made writable by hand is reported (hold_not_enforced)
    and made read-only again by repair; released, rotation proceeds."""
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, technology, name="held")
    w.add_source("s1")
    if technology == "btrfs_send":
        w.make_target_pools(2, 1)
    w.define()
    check_versions(w, copy_tagged_versions(w, "live\n"))
    with w.engine.session(w.name) as s:
        result = s.plan_hold(1, held=True, reason="before the upgrade").apply()
    assert result["version"]["held"] is True
    rec = w.state().replication(1)
    assert rec.held and rec.hold_reason == "before the upgrade"
    path = w.copy_path(rec.pairs[0])
    assert read_mark(path)["held"] is True and subvol_info(path)["readonly"]
    with w.engine.session(w.name) as s:
        assert s.info()["next_version"]["held"] is True
    before = w.store.read_raw(w.name)
    with pytest.raises(InvalidInput) as err:
        w.copy()
    assert "version 1 is held" in err.value.msg and "before the upgrade" in err.value.msg
    assert w.store.read_raw(w.name) == before and w.pitcopy_leftovers() == []
    assert read(os.path.join(path, "data")) == "v1\n"
    # the engine's own deletion of a held copy is refused by the mark too
    with pytest.raises(CopyFailed):
        w.backend.delete_copies(w.definition(), list(rec.pairs))
    assert os.path.isdir(path)
    # a hold the storage lost: the copy made writable by hand
    btrfs("property", "set", "-f", path, "ro", "false")
    findings = w.verify()["findings"]
    assert ("hold_not_enforced", 1) in [(f["problem"], f["version"]) for f in findings]
    w.verify(repair=True)
    assert subvol_info(path)["readonly"]
    assert "hold_not_enforced" not in [f["problem"] for f in w.verify()["findings"]]
    # released: the mark loses the hold and rotation replaces version 1
    with w.engine.session(w.name) as s:
        s.plan_hold(1, held=False).apply()
    assert "held" not in read_mark(path)
    assert w.copy()["replaced_version"] == 1
    assert read_mark(path)["version"] == 3 and "held" not in read_mark(path)
