# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""btrfs_send incremental (issue 14, item 3) on real btrfs: ``btrfs send -p
<base>`` from the snapshot kept beside the source that the target pool's
copy was received from; a full send when there is no such base, or it does
not match the copy; the bases released when no copy needs them; a kill
during an incremental send repaired by verify_records. Marker ``btrfs``.

The measured source: a 1 GiB file of which 64 MiB are written with random
data (the rest a hole: a sparse file costs nothing to send, so only written
data counts), 1% of the written data rewritten between versions. The bytes
counted are those of the send stream as it passed through the module's
process (_runner._Relay), not an estimate."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys
import time

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import (
    base_path,
    read_mark,
    subvol_info,
    write_mark,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import TargetPool
from ansible_collections.pitcopy.versions.tests.real.test_btrfs import PoolOnBtrfs, btrfs
from ansible_collections.pitcopy.versions.tests.utils.pool_calls import PoolCalls
from ansible_collections.pitcopy.versions.tests.utils.tools_env import sha

pytestmark = pytest.mark.btrfs

MIB = 1024 * 1024
WRITTEN = 64 * MIB   # real random data in the 1 GiB sparse file
APPARENT = 1024 * MIB
CHUNK = 64 * 1024


def fill(path):
    """1 GiB apparent, 64 MiB of random data written at its start."""
    with open(path, "wb") as fh:
        for _i in range(WRITTEN // (4 * MIB)):
            fh.write(os.urandom(4 * MIB))
        fh.truncate(APPARENT)


def change_one_percent(path, version):
    """Rewrite 1% of the written data (10 chunks of 64 KiB, spread out)."""
    count = WRITTEN // 100 // CHUNK
    with open(path, "r+b") as fh:
        for i in range(count):
            fh.seek(((version * 7 + i * 97) % (WRITTEN // CHUNK)) * CHUNK)
            fh.write(os.urandom(CHUNK))


class World(PoolOnBtrfs, PoolCalls):
    """One source, target pools of one directory each on another btrfs."""

    def __init__(self, tmp_path, runner, src, dst, pools=1, versions=1, name="incr"):
        PoolOnBtrfs.__init__(self, tmp_path, runner, src, "btrfs_send", name)
        self.runner = runner
        self.src, self.dst = src, dst
        self.source = src.path("vol", "db")
        btrfs("subvolume", "create", self.source)
        self.sources = [self.source]
        tps = []
        for i in range(pools):
            d = dst.path("tp%d" % (i + 1))
            os.makedirs(d, mode=0o700)
            tps.append(TargetPool("tp%d" % (i + 1), (d,)))
        self.target_pools = tuple(tps)
        self.hooks = ((), ())
        self.versions = versions
        self.data = os.path.join(self.source, "data")

    def base(self, version):
        return base_path(self.source, self.name, version)

    def bases(self):
        d = os.path.dirname(self.base(1))
        return sorted(n for n in os.listdir(d) if n.startswith(".pitcopy-base."))

    def pair(self, result):
        (p,) = result["version"]["pairs"]
        return p


def test_incremental_sends_only_the_change_and_full_when_the_base_is_gone_or_does_not_match(
        fs_pair, runner, tmp_path):
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst)
    w.define()
    fill(w.data)
    t0 = time.monotonic()
    first = w.pair(w.copy())
    full_seconds = time.monotonic() - t0
    # the first copy into the target pool: full, and says so
    assert first["base_version"] is None
    full = first["bytes_sent"]
    assert full >= WRITTEN, first  # the written data is all in the stream
    assert w.bases() == [".pitcopy-base.1.db"]
    for version in (2, 3):
        change_one_percent(w.data, version)
        want = sha(w.data)
        t0 = time.monotonic()
        got = w.pair(w.copy())
        seconds = time.monotonic() - t0
        # only the difference: at most 2% of the full stream on the wire
        assert got["base_version"] == version - 1, got
        assert got["bytes_sent"] <= 0.02 * full, (got, full)
        sys.stderr.write("[incremental] version %d: %d bytes of %d full (%.2f%%), %.2f s (full %.2f s)\n" % (
            version, got["bytes_sent"], full, 100.0 * got["bytes_sent"] / full, seconds, full_seconds))
        rec = w.state().replication(version)
        # recorded on the pair, as copy_version returned it
        assert rec.pairs[0].base_version == version - 1 and rec.pairs[0].bytes_sent == got["bytes_sent"]
        copy = w.copy_path(rec.pairs[0])
        assert sha(os.path.join(copy, "data")) == want
        # the copy was received from the base kept beside the source
        assert subvol_info(copy)["received_uuid"] == subvol_info(w.base(version))["uuid"]
        # the replaced version's base is released: one base per kept copy
        assert w.bases() == [".pitcopy-base.%d.db" % version]
    assert w.verify()["consistent"] is True

    # the base gone: verify_records says the next send is full (not an
    # inconsistency); the next send is full and says so
    btrfs("subvolume", "delete", w.base(3))
    found = w.verify()
    assert found["consistent"] is True
    assert [(f["problem"], f["version"]) for f in found["findings"]] == [("base_missing", 3)]
    assert "sent in full" in found["findings"][0]["action"]
    change_one_percent(w.data, 4)
    want = sha(w.data)
    got = w.pair(w.copy())
    assert got["base_version"] is None and got["bytes_sent"] >= WRITTEN, got
    assert sha(os.path.join(w.copy_path(w.state().replication(4).pairs[0]), "data")) == want

    # a base that does not match the copy (its subvolume replaced, the mark
    # rewritten to name the new one): never used as the parent, full send
    base4 = w.base(4)
    mark = read_mark(base4)
    btrfs("subvolume", "delete", base4)
    btrfs("subvolume", "snapshot", "-r", w.source, base4)
    mark["uuid"] = subvol_info(base4)["uuid"]
    mark["ctransid"] = subvol_info(base4)["ctransid"]
    write_mark(base4, mark)
    found = w.verify()
    assert [(f["problem"], f["version"]) for f in found["findings"]] == [("base_missing", 4)], found
    assert "was not received from the base" in found["findings"][0]["action"]
    change_one_percent(w.data, 5)
    got = w.pair(w.copy())
    assert got["base_version"] is None and got["bytes_sent"] >= WRITTEN, got
    # the mismatched base went with the copy it was kept for; the new one stays
    assert w.bases() == [".pitcopy-base.5.db"]
    assert w.verify()["consistent"] is True


KILLER = r"""
import os, signal, sys, threading, time
from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSendBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
state_dir, pool = sys.argv[1], sys.argv[2]
class KillingRunner(SubprocessRunner):
    def pipe(self, argvs, *a, **kw):
        meter = kw.get("meter")
        if "-p" not in argvs[0] or meter is None:
            return super(KillingRunner, self).pipe(argvs, *a, **kw)
        # SIGKILL once the incremental stream is flowing through us
        t = threading.Thread(target=super(KillingRunner, self).pipe, args=(argvs,) + a, kwargs=kw)
        t.daemon = True
        t.start()
        while not meter.get("bytes"):
            time.sleep(0.0005)
        sys.stderr.write("killed after %d bytes\n" % meter["bytes"])
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
runner = KillingRunner(env={"PATH": os.environ["PATH"] + ":/usr/sbin:/sbin"})
engine = RecordEngine(StateStore(state_dir), lambda t: BtrfsSendBackend(runner=runner))
with engine.session(pool) as s:
    s.plan_copy().apply()
sys.exit("not killed")
"""


def _no_receive_into(target, seconds=20):
    """Wait until no ``btrfs receive`` writes into ``target`` (the killed
    run's receive ends at its stream's cut)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        busy = False
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as fh:
                    argv = fh.read().split(b"\0")
            except OSError:
                continue
            if b"receive" in argv and target.encode() in argv:
                busy = True
        if not busy:
            return
        time.sleep(0.1)
    raise AssertionError("btrfs receive into %s still runs" % target)


def test_a_killed_incremental_send_is_reconciled_by_repair(fs_pair, runner, tmp_path):
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst)
    w.define()
    fill(w.data)
    w.copy()
    # a bigger change, so that the kill falls inside the stream
    with open(w.data, "r+b") as fh:
        fh.write(os.urandom(16 * MIB))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    child = subprocess.run([sys.executable, "-c", KILLER, w.store.state_dir, w.name], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False, universal_newlines=True)
    assert child.returncode == -9, child.stderr
    assert "killed after" in child.stderr
    _no_receive_into(w.target_pools[0].volumes[0])
    state = w.state()
    assert state.journal is not None and state.journal.version == 2
    found = w.verify()
    problems = [(f["problem"], f["version"]) for f in found["findings"]]
    # the interrupted copy is the only finding: its half-received copy and
    # its pending base are its own, not foreign; version 1 and its base stand
    assert problems[0] == ("interrupted_copy", 2), found
    assert all(p[1] == 2 for p in problems), found
    repaired = w.verify(repair=True)
    assert "rolled back" in repaired["findings"][0]["action"], repaired
    state = w.state()
    assert state.journal is None and [r.version for r in state.replication_records] == [1]
    assert w.bases() == [".pitcopy-base.1.db"]
    assert sorted(os.listdir(w.target_pools[0].volumes[0])) == [".pitcopy-mark.db.json", "db"]
    assert w.verify()["consistent"] is True
    # the next copy is incremental from the base that survived, and whole
    want = sha(w.data)
    got = w.pair(w.copy())
    assert got["base_version"] == 1 and got["bytes_sent"] < WRITTEN, got
    assert sha(os.path.join(w.copy_path(w.state().replication(2).pairs[0]), "data")) == want
    assert w.bases() == [".pitcopy-base.2.db"]


def _check_mode_bases(w):
    """copy_version's check mode: the plan's result as the module reads it
    in check mode (a shared lock, nothing applied), as {source:
    (base_version, bytes_sent)}."""
    with w.engine.session(w.name, shared=True) as s:
        result = s.plan_copy().result
    return dict((p["source"], (p["base_version"], p["bytes_sent"])) for p in result["version"]["pairs"])


def _storage(w):
    """What is on the storage of the world: every path below the source's
    directory and the target directories, and the records."""
    seen = []
    for top in [os.path.dirname(w.source)] + [tp.volumes[0] for tp in w.target_pools]:
        for d, dirs, files in os.walk(top):
            seen.extend(os.path.join(d, n) for n in sorted(dirs + files))
    return sorted(seen), w.state()


def test_check_mode_predicts_the_base_each_send_then_uses(fs_pair, runner, tmp_path):
    """Issue 14: before each copy, check mode says whether the version goes
    incremental (base_version: the version sent from) or full (null), by
    the same choice as the copy, reading only; the copy then sends from
    exactly that. Two target pools: versions 1 and 2 go in full (each into
    an empty target pool), 3 incrementally from 1 (tp1), 4 in full after
    the base of 2 (tp2's copy) was deleted."""
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, pools=2, versions=2, name="chk")
    w.define()
    with open(w.data, "wb") as fh:
        fh.write(os.urandom(4 * MIB))
    for version, base in ((1, None), (2, None), (3, 1), (4, None)):
        if version == 4:
            btrfs("subvolume", "delete", w.base(2))
        before = _storage(w)
        predicted = _check_mode_bases(w)
        assert _storage(w) == before  # check mode changed nothing
        assert predicted == {w.source: (base, None)}, (version, predicted)
        got = w.pair(w.copy())
        assert got["target"] == w.target_pools[(version - 1) % 2].volumes[0], got
        assert (got["base_version"], got["bytes_sent"] > 0) == (base, True), (version, got)
        with open(w.data, "r+b") as fh:
            fh.write(os.urandom(64 * 1024))
    assert w.verify()["consistent"] is True
