# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OpenZFS backends against real zpools (inside the VM harness).

Run with ``tests/vm/run-suite.sh zfs`` or
``tests/vm/run.sh --zfs -- pytest -p no:cacheprovider -m zfs tests/real/test_zfs.py``.

Every test makes its own zpools on sparse files under /tmp and destroys them
in teardown, also when the test fails. A missing ``zfs``/``zpool`` FAILS.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CapacityError,
    CopyFailed,
    InvalidInput,
    NoEligibleTarget,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CopyPair,
    Hook,
    PoolDefinition,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.tests.utils import engine_calls
from ansible_collections.pitcopy.versions.tests.utils.backend_driver import Driver
from ansible_collections.pitcopy.versions.tests.utils.engine_calls import copy, define, findings, info
from ansible_collections.pitcopy.versions.tests.utils.tools_env import SBIN_PATH, MiB, run_tool, tool_env
from ansible_collections.pitcopy.versions.tests.utils.trees import flip_middle_byte
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import (
    ZfsSendBackend,
    ZfsSnapshotBackend,
    validate_dataset_name,
)

pytestmark = pytest.mark.zfs

SBIN = SBIN_PATH
ENV = tool_env()


def sh(*argv, **kw):
    return run_tool(ENV, *argv, **kw)


def require_zfs():
    missing = [t for t in ("zfs", "zpool", "udevadm") if not shutil.which(t, path=SBIN)]
    if missing:
        pytest.fail("ZFS tests need %s on PATH: run them inside the VM harness (tests/vm/run.sh --zfs) which "
                    "provides OpenZFS" % ", ".join(missing), pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("ZFS tests need root", pytrace=False)
    if not os.path.exists("/dev/zfs"):
        pytest.fail("/dev/zfs is missing: the zfs kernel module is not loaded (tests/vm/run.sh --zfs loads it)",
                    pytrace=False)


class Zpools:
    """Sparse-file zpools made for one test; ``destroy_all`` in teardown."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.pools = []

    def create(self, label, size=256 * MiB):
        name = "pc%s%s" % (label, uuid.uuid4().hex[:6])
        img = os.path.join(self.workdir, name + ".img")
        with open(img, "wb") as fh:
            fh.truncate(size)
        mnt = os.path.join(self.workdir, "mnt", name)
        # registered before creation so that teardown also covers a half-made pool
        self.pools.append((name, img))
        sh("zpool", "create", "-f", "-o", "cachefile=none", "-O", "compression=off", "-m", mnt, name, img)
        return name

    def destroy_all(self):
        errors = []
        for name, img in reversed(self.pools):
            if subprocess.run(["zpool", "list", name], env=ENV, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, check=False).returncode == 0:
                for dummy in range(5):
                    rc = subprocess.run(["zpool", "destroy", "-f", name], env=ENV, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, check=False)
                    if rc.returncode == 0:
                        break
                    time.sleep(1)
                else:
                    errors.append("zpool destroy %s: %s" % (name, rc.stderr.decode().strip()))
            if os.path.exists(img):
                os.unlink(img)
        self.pools = []
        return errors


@contextlib.contextmanager
def zpools_workdir():
    """Zpools on image files in a work directory of their own; every zpool
    made is destroyed at the end, and one that cannot be fails the test."""
    require_zfs()
    workdir = "/tmp/pitcopy-zfs-%s" % uuid.uuid4().hex[:8]
    os.makedirs(workdir)
    zp = Zpools(workdir)
    try:
        yield zp
    finally:
        errors = zp.destroy_all()
        shutil.rmtree(workdir, ignore_errors=True)
        assert not errors, errors


# --- data helpers --------------------------------------------------------------

_MOUNTPOINTS = {}


def mountpoint(ds):
    # cached: every zfs process is seconds in the emulated VM, and the
    # datasets of these tests keep their mountpoint (restored ones inherit
    # the same one)
    if ds not in _MOUNTPOINTS:
        _MOUNTPOINTS[ds] = sh("zfs", "get", "-H", "-o", "value", "mountpoint", ds).strip()
    return _MOUNTPOINTS[ds]


def zvol_dev(name, timeout=30.0):
    """/dev/zvol/<name> once udev made it (snapshots need snapdev=visible)."""
    path = "/dev/zvol/" + name
    deadline = time.monotonic() + timeout
    nudged = False
    while True:
        sh("udevadm", "settle", check=False)
        if os.path.exists(path):
            return path
        if time.monotonic() > deadline:
            raise AssertionError("%s did not appear within %s s (links: %s)"
                                 % (path, timeout, sh("ls", "-lR", "/dev/zvol", check=False)))
        if not nudged and time.monotonic() > deadline - timeout / 2:
            # the backend refreshes links it renamed; this only guards the test
            sh("udevadm", "trigger", "--action=change", "--subsystem-match=block", "--sysname-match=zd*",
               check=False)
            nudged = True
        time.sleep(0.2)


BLOCK = 4096


def write_data(ds, kind, text):
    """Known data: a file ``data`` (filesystem) or the first block (zvol)."""
    payload = text.encode()
    if kind == "volume":
        with open(zvol_dev(ds), "r+b") as fh:
            fh.write(payload.ljust(BLOCK, b"\0"))
            fh.flush()
            os.fsync(fh.fileno())
    else:
        path = os.path.join(mountpoint(ds), "data")
        with open(path + ".tmp", "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.rename(path + ".tmp", path)


def read_fs_or_vol(name, kind):
    if kind == "volume":
        with open(zvol_dev(name), "rb") as fh:
            return fh.read(BLOCK).rstrip(b"\0").decode()
    with open(os.path.join(mountpoint(name), "data"), "rb") as fh:
        return fh.read().decode()


def read_snapshot(snap, kind, fname="data"):
    ds, sname = snap.split("@", 1)
    if kind == "volume":
        if not os.path.exists("/dev/zvol/" + snap):
            # OpenZFS 2.1 keeps a renamed zvol snapshot's device under its old
            # name (measured; udev change events do not help): re-create the
            # snapshot minors so that the link carries the current name
            sh("zfs", "set", "snapdev=hidden", ds)
            sh("zfs", "set", "snapdev=visible", ds)
        return read_fs_or_vol(snap, kind)
    with open(os.path.join(mountpoint(ds), ".zfs", "snapshot", sname, fname), "rb") as fh:
        return fh.read().decode()


def make_sources(pool, names, zvols=()):
    kinds = {}
    for n in names:
        sh("zfs", "create", "%s/%s" % (pool, n))
        kinds["%s/%s" % (pool, n)] = "filesystem"
    for n in zvols:
        # snapdev=visible: the snapshots of the zvol get device nodes to read
        sh("zfs", "create", "-V", "16M", "-o", "snapdev=visible", "%s/%s" % (pool, n))
        kinds["%s/%s" % (pool, n)] = "volume"
    for ds, kind in kinds.items():
        write_data(ds, kind, "initial %s" % ds)
    return kinds


def exists(name):
    return subprocess.run(["zfs", "list", "-H", "-t", "all", name], env=ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False).returncode == 0


def all_names(pool):
    return set(sh("zfs", "list", "-H", "-o", "name", "-t", "all", "-r", pool).split())


def ours(name):
    """Our properties set on ``name`` and its children, and its snapshots."""
    props = sh("zfs", "get", "-H", "-r", "-s", "local,received", "-o", "name,property,value", "all", name)
    marks = sorted(tuple(ln.split("\t")) for ln in props.splitlines() if "\tpitcopy:" in ln)
    snaps = sh("zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-r", name).split()
    return marks, snaps


# --- tests ------------------------------------------------------------------------

def test_names_are_validated():
    for bad in ("tank/../x", "tank/a b", "tank/a;rm -rf /", "tank/$(id)", "-tank/a", "tank/a\nb", "tank//a",
                "tank/a@snap", "", "1tank/a", "tank/a`id`", "tank/a/", "tank/a|b"):
        with pytest.raises(InvalidInput) as exc:
            validate_dataset_name(bad)
        assert repr(bad) in exc.value.msg
        assert "expected" in exc.value.msg or "ZFS accepts" in exc.value.msg
    for good in ("tank", "tank/a", "tank/a-b_c.d:e/f"):
        validate_dataset_name(good)
    with pytest.raises(InvalidInput):
        ZfsSendBackend().validate_target_name("tank")  # a zpool root cannot be received into
    with pytest.raises(InvalidInput):
        ZfsSnapshotBackend().implied_target("bad pool", "01", "tank/a")
    # fsfreeze is not supported on ZFS (measured): 'freeze' is refused before anything is made
    frozen = PoolDefinition(name="f", technology="zfs_snapshot", sources=("tank/a",), versions=1,
                            consistency="freeze")
    for backend in (ZfsSnapshotBackend(), ZfsSendBackend()):
        with pytest.raises(InvalidInput) as exc:
            backend.create_copies(frozen, 1, [CopyPair("tank/a", "tank/a@pitcopy-f-01")], None)
        assert "'freeze'" in exc.value.msg and "Operation not supported" in exc.value.msg


def make_engine(state_dir, runner):
    backends = {"zfs_snapshot": ZfsSnapshotBackend, "zfs_send": ZfsSendBackend}
    return engine_calls.make_engine(state_dir, runner, backends)


def check_kept(engine, name, data, kinds, read_copy):
    """Every kept version holds exactly the data of its point in time."""
    pool = info(engine, name)
    for rec in pool["replication_records"]:
        for p in rec["pairs"]:
            got = read_copy(p["target"], kinds[p["source"]])
            assert got == data[rec["version"]][p["source"]], (rec["version"], p, got)
    return pool


def test_zfs_snapshot_versions_rotation_restore_verify(zpools, runner, tmp_path):
    pool = zpools.create("s", 384 * MiB)
    kinds = make_sources(pool, ["fs1", "fs2", "fs3"], zvols=["vol1"])
    src = ["%s/fs1" % pool, "%s/vol1" % pool, "%s/fs2" % pool]
    b = ZfsSnapshotBackend(runner)
    vols = b.discover(src + ["%s/nothere" % pool])
    assert set(vols) == set(src)
    assert vols["%s/vol1" % pool].kind == "volume" and vols["%s/vol1" % pool].size == 16 * MiB
    assert vols["%s/vol1" % pool].block_size > 0 and vols["%s/fs1" % pool].kind == "filesystem"
    assert vols["%s/fs1" % pool].container == pool and vols["%s/fs1" % pool].free > 0

    eng = make_engine(tmp_path / "state", runner)
    data = {}
    sources = list(src)
    windows = []
    for n in range(1, 6):
        if n == 3:
            sources.append("%s/fs3" % pool)          # a source joins
        if n == 4:
            sources.remove("%s/fs2" % pool)          # a source leaves
        define(eng, PoolDefinition(name="snaps", technology="zfs_snapshot", sources=tuple(sources), versions=3))
        if n == 2:
            with eng.session("snaps") as s:
                pre = s.plan_prepair(versions=2).apply()
            assert [r["version"] for r in pre["records"]] == [2, 3]
        for s_ in sources:
            write_data(s_, kinds[s_], "v%d %s" % (n, s_))
        data[n] = dict((s_, "v%d %s" % (n, s_)) for s_ in sources)
        res = copy(eng, "snaps")
        assert res["version"]["number"] == n and res["copy_window_ms"] > 0
        windows.append(res["copy_window_ms"])
        for s_ in sources:
            write_data(s_, kinds[s_], "after v%d %s" % (n, s_))  # changes after the point in time
        check_kept(eng, "snaps", data, kinds, read_snapshot)
    pool_info = info(eng, "snaps")
    kept = dict((r["version"], r) for r in pool_info["replication_records"])
    assert sorted(kept) == [3, 4, 5]
    listed = b.list_copies("snaps")
    assert sorted((c.target, c.version) for c in listed) == sorted(
        (p["target"], v) for v, r in kept.items() for p in r["pairs"])
    assert not any(c.staged for c in listed)
    snaps = sorted(n for n in all_names(pool) if "@" in n)
    assert all("@pitcopy-snaps-" in s_ and ".staging" not in s_ for s_ in snaps), snaps
    assert findings(eng, "snaps")["consistent"] is True

    # Restore an older version: refused, nothing changes (rollback -r would destroy v5).
    before = dict((s_, read_fs_or_vol(s_, kinds[s_])) for s_ in sources)
    with eng.session("snaps") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_restore(3, volumes=[x for x in sources if x in [p["source"] for p in kept[3]["pairs"]]]).apply()
    assert "newer snapshots" in exc.value.msg and "rollback -r" in exc.value.msg
    assert dict((s_, read_fs_or_vol(s_, kinds[s_])) for s_ in sources) == before
    assert sorted(c.target for c in b.list_copies("snaps")) == sorted(c.target for c in listed)

    # Restore the newest version: the data of its point in time is back, other versions kept.
    with eng.session("snaps") as s:
        res = s.plan_restore(5).apply()
    assert sorted(res["restored"]) == sorted(sources)
    for s_ in sources:
        assert read_fs_or_vol(s_, kinds[s_]) == data[5][s_]
    check_kept(eng, "snaps", data, kinds, read_snapshot)

    # A copy destroyed behind the tool's back: verify reports it.
    gone = kept[4]["pairs"][0]["target"]
    sh("zfs", "destroy", gone)
    f = findings(eng, "snaps")
    assert f["consistent"] is False
    assert [(x["version"], x["target"], x["problem"]) for x in f["findings"]] == [(4, gone, "copy_missing")], f

    # Ownership: a snapshot without our mark is never destroyed.
    foreign = "%s/fs1@pitcopy-snaps-09" % pool
    sh("zfs", "snapshot", foreign)
    assert b.delete_copies(PoolDefinition(name="snaps", technology="zfs_snapshot", sources=tuple(sources),
                                          versions=3), [CopyPair("%s/fs1" % pool, foreign)]) == [foreign]
    assert exists(foreign)
    # copy_version absent removes ours
    with eng.session("snaps") as s:
        s.plan_delete(5).apply()
    assert not any(exists(p["target"]) for p in kept[5]["pairs"])
    print("zfs_snapshot copy windows through the engine (ms):", ["%.1f" % w for w in windows])


def test_zfs_send_versions_rotation_restore_verify(zpools, runner, tmp_path):
    spool = zpools.create("s", 320 * MiB)
    tpool = zpools.create("t", 448 * MiB)
    kinds = make_sources(spool, ["fs1", "fs2", "fs3"], zvols=["vol1"])
    for tp in ("A", "B"):
        sh("zfs", "create", "%s/%s" % (tpool, tp))
    names = ["fs1", "vol1", "fs2", "fs3"]
    tps = tuple(TargetPool(tp, tuple("%s/%s/%s" % (tpool, tp, n) for n in names)) for tp in ("A", "B"))
    src = ["%s/%s" % (spool, n) for n in names]
    b = ZfsSendBackend(runner)
    first = b.discover([tps[0].volumes[0], "%s/nope/x" % tpool])
    assert first[tps[0].volumes[0]].kind == "new_dataset" and not first[tps[0].volumes[0]].foreign_data
    assert "%s/nope/x" % tpool not in first  # parent missing: not a possible target

    eng = make_engine(tmp_path / "state", runner)
    data = {}
    sources = list(src[:3])
    for n in range(1, 6):
        if n == 2:
            sources.append(src[3])
        if n == 4:
            sources.remove(src[2])
        define(eng, PoolDefinition(name="sends", technology="zfs_send", sources=tuple(sources), versions=2,
                                   target_pools=tps))
        for s_ in sources:
            write_data(s_, kinds[s_], "v%d %s" % (n, s_))
        data[n] = dict((s_, "v%d %s" % (n, s_)) for s_ in sources)
        res = copy(eng, "sends")
        assert res["version"]["number"] == n
        for s_ in sources:
            write_data(s_, kinds[s_], "after v%d %s" % (n, s_))
        check_kept(eng, "sends", data, kinds, read_fs_or_vol)
    kept = dict((r["version"], r) for r in info(eng, "sends")["replication_records"])
    assert sorted(kept) == [4, 5]
    copies = b.list_copies("sends")
    assert sorted((c.target, c.version, c.source) for c in copies) == sorted(
        (p["target"], v, p["source"]) for v, r in kept.items() for p in r["pairs"])
    assert all(c.valid and not c.staged for c in copies), copies
    # nothing temporary left: no staging datasets, no send snapshots on the sources
    leftovers = [n for n in all_names(spool) | all_names(tpool) if "staging" in n or ("@" in n and spool in n)]
    assert not leftovers, leftovers
    # the copies of fs2, which left the pool at version 4, went with the versions that had it
    # (by its mark: targets are chosen by selection, so A/fs2 may hold another source's copy)
    marked = sh("zfs", "get", "-H", "-r", "-o", "name,value", "-s", "local", "pitcopy:source", tpool).splitlines()
    assert not [ln for ln in marked if ln.split("\t")[1] == src[2]], marked
    # and nothing else is left in the target pools: exactly the kept versions' targets
    in_tps = set(n for n in all_names(tpool) if "@" not in n and n.count("/") == 2)
    assert in_tps == set(p["target"] for r in kept.values() for p in r["pairs"]), in_tps
    vols = b.discover([p["target"] for p in kept[5]["pairs"]])
    assert all(v.owner == "sends" and not v.foreign_data for v in vols.values())
    assert findings(eng, "sends")["consistent"] is True

    # Restore version 4 (not the newest: zfs_send copies are independent datasets).
    with eng.session("sends") as s:
        res = s.plan_restore(4).apply()
    v4 = kept[4]["pairs"]
    assert sorted(res["restored"]) == sorted(p["source"] for p in v4)
    for p in v4:
        assert read_fs_or_vol(p["source"], kinds[p["source"]]) == data[4][p["source"]]
        assert not exists("%s.pitcopy-restore" % p["source"]) and not exists("%s.pitcopy-replaced" % p["source"])
        mark = sh("zfs", "get", "-H", "-o", "value,source", "pitcopy:pool", p["source"]).split()
        assert mark[0] == "-", mark  # the restored source is the user's again
    check_kept(eng, "sends", data, kinds, read_fs_or_vol)
    # restored filesystems are writable and mounted where they were
    write_data(src[0], "filesystem", "after restore")
    assert read_fs_or_vol(src[0], "filesystem") == "after restore"
    # and the pool goes on: version 6 replaces version 4
    data[6] = dict((s_, read_fs_or_vol(s_, kinds[s_])) for s_ in sources)
    assert copy(eng, "sends")["replaced_version"] == 4
    check_kept(eng, "sends", data, kinds, read_fs_or_vol)
    kept = dict((r["version"], r) for r in info(eng, "sends")["replication_records"])

    # Version 5 (the older kept one) restored elsewhere: each source a new
    # dataset received from its copy's snapshot in the target, no clone, only
    # pitcopy:restored_from on it; again: no change. The findings below (only
    # the tampered and destroyed copies) show rotation and verify ignore them.
    sh("zfs", "create", "%s/cmp" % spool)
    with eng.session("sends") as s:
        out = s.plan_restore_elsewhere(5, "%s/cmp" % spool).apply()
    assert sorted(v["source"] for v in out["restored_to"]) == sorted(sources)
    for v in out["restored_to"]:
        new, copied = v["volume"], [p["target"] for p in kept[5]["pairs"] if p["source"] == v["source"]][0]
        assert new == "%s/cmp/%s" % (spool, v["source"].rsplit("/", 1)[1])
        assert read_fs_or_vol(new, kinds[v["source"]]) == data[5][v["source"]]
        assert ours(new) == ([(new, "pitcopy:restored_from", guid("%s@pitcopy-sends-v5" % copied))], [])
        assert sh("zfs", "get", "-H", "-o", "value", "origin", new).strip() == "-"
    with eng.session("sends") as s:
        assert s.plan_restore_elsewhere(5, "%s/cmp" % spool).changed is False

    # A copy changed behind our back is invalid; a destroyed one is missing.
    changed = [p["target"] for p in kept[6]["pairs"] if kinds[p["source"]] == "filesystem"][0]
    sh("zfs", "set", "readonly=off", changed)
    write_data(changed, "filesystem", "tampered")
    by_target = dict((c.target, c) for c in b.list_copies("sends"))
    assert not by_target[changed].valid and "written" in by_target[changed].detail
    gone = kept[5]["pairs"][0]["target"]
    sh("zfs", "destroy", "-r", gone)
    f = findings(eng, "sends")
    got = sorted((x["version"], x["target"], x["problem"]) for x in f["findings"] if x["problem"] != "base_missing")
    assert got == sorted([(6, changed, "copy_invalid"), (5, gone, "copy_missing")]), f
    # the restored sources are new datasets: the bookmarks version 5 was
    # sent from went with the datasets they replaced (a note: its next copy
    # is full)
    assert sorted(x["target"] for x in f["findings"] if x["problem"] == "base_missing") == sorted(
        p["target"] for p in kept[5]["pairs"] if p["target"] != gone), f

    # A foreign dataset at a target name is never eligible and never overwritten.
    foreign = "%s/A/foreign" % tpool
    sh("zfs", "create", foreign)
    v = b.discover([foreign])[foreign]
    assert v.foreign_data and v.owner is None
    d = PoolDefinition(name="sends", technology="zfs_send", sources=tuple(sources), versions=2, target_pools=tps)
    assert b.delete_copies(d, [CopyPair(src[0], foreign)])
    assert exists(foreign)
    with pytest.raises(CopyFailed):
        b.promote(d, 99, [CopyPair(src[0], foreign)], [CopyPair(src[0], "%s/A/x.pitcopy-staging-v99" % tpool)], [])
    assert exists(foreign)
    bad = tuple(TargetPool(t.name, (foreign,) + t.volumes[1:]) for t in tps)
    with pytest.raises(InvalidInput) as exc:
        define(eng, PoolDefinition(name="other", technology="zfs_send", sources=tuple(sources), versions=2,
                                   target_pools=bad))
    assert foreign in exc.value.msg


def test_zfs_snapshot_failure_leaves_nothing(zpools, runner):
    p1 = zpools.create("a")
    p2 = zpools.create("b")
    kinds = make_sources(p1, ["x", "y"])
    kinds.update(make_sources(p2, ["z"]))
    src = ["%s/x" % p1, "%s/y" % p1, "%s/z" % p2]
    d = PoolDefinition(name="fail", technology="zfs_snapshot", sources=tuple(src), versions=2)
    b = ZfsSnapshotBackend(runner)
    drv = Driver(b, d, runner)
    data = {}
    for n in (1, 2):
        for s in src:
            write_data(s, kinds[s], "v%d %s" % (n, s))
        data[n] = dict((s, "v%d %s" % (n, s)) for s in src)
        drv.take(src)
    before = all_names(p1) | all_names(p2)
    # The second zpool's atomic command fails after the first zpool's snapshots were made.
    sh("zfs", "destroy", "-r", "%s/z" % p2)
    pairs = [CopyPair(s, b.implied_target("fail", "01", s)) for s in src]
    with pytest.raises(CopyFailed) as exc:
        b.create_copies(d, 3, pairs, CopyWindow(d, runner))
    assert "%s/z" % p2 in exc.value.msg and "does not exist" in exc.value.msg
    assert exc.value.details["source"] == "%s/z" % p2
    after = all_names(p1) | all_names(p2)
    assert after == before - set(n for n in before if n.startswith("%s/z" % p2)), after ^ before
    # previous versions intact
    for v, (_tp, ps) in drv.records.items():
        for p in ps:
            if p.source != "%s/z" % p2:
                assert read_snapshot(p.target, "filesystem") == data[v][p.source]

    # A staging name somebody else took stops the copy before anything is made.
    foreign = ZfsSnapshotBackend.staging_name(pairs[0].target, 3)
    sh("zfs", "snapshot", foreign)
    before = all_names(p1)
    with pytest.raises(CopyFailed) as exc:
        b.create_copies(d, 3, pairs[:2], CopyWindow(d, runner))
    assert "without this copy pool's mark" in exc.value.msg
    assert all_names(p1) == before

    # A failing pre-copy hook: nothing made.
    d2 = PoolDefinition(name="fail", technology="zfs_snapshot", sources=tuple(src[:2]), versions=2,
                        pre_copy_hooks=(Hook(argv=("false",)),))
    sh("zfs", "destroy", foreign)
    before = all_names(p1)
    with pytest.raises(Exception):
        b.create_copies(d2, 3, pairs[:2], CopyWindow(d2, runner))
    assert all_names(p1) == before


def test_zfs_send_failure_target_too_full(zpools, runner):
    spool = zpools.create("s", 320 * MiB)
    tpool = zpools.create("t", 128 * MiB)
    make_sources(spool, ["small", "big"])
    with open(os.path.join(mountpoint("%s/small" % spool), "blob"), "wb") as fh:
        fh.write(os.urandom(2 * MiB))
    sh("zfs", "create", "%s/A" % tpool)
    sh("zfs", "create", "%s/B" % tpool)
    src = ["%s/small" % spool, "%s/big" % spool]
    tps = (TargetPool("A", ("%s/A/small" % tpool, "%s/A/big" % tpool)),
           TargetPool("B", ("%s/B/small" % tpool, "%s/B/big" % tpool)))
    d = PoolDefinition(name="full", technology="zfs_send", sources=tuple(src), versions=2, target_pools=tps)
    b = ZfsSendBackend(runner)
    drv = Driver(b, d, runner)
    drv.take(src)
    v1 = set(all_names(tpool))
    # Now "big" grows beyond what the target zpool can hold.
    with open(os.path.join(mountpoint("%s/big" % spool), "blob"), "wb") as fh:
        for dummy in range(110):
            fh.write(os.urandom(MiB))
    pairs = [CopyPair(s, t) for s, t in zip(src, tps[1].volumes)]
    vols = b.discover(src + list(tps[1].volumes))
    with pytest.raises(CapacityError) as exc:
        b.check_capacity(d, pairs, [], vols)
    msg = exc.value.msg
    assert "zpool %s needs" % tpool in msg and "bytes available" in msg and "%s/big" % spool in msg
    # Bypassing the check, the receive itself fails: nothing of version 2 is left.
    with pytest.raises(CopyFailed) as exc:
        b.create_copies(d, 2, pairs, CopyWindow(d, runner))
    assert exc.value.details["source"] == "%s/big" % spool
    assert all_names(tpool) == v1, all_names(tpool) ^ v1
    assert not [n for n in all_names(spool) if "@" in n]
    for p in drv.records[1][1]:
        assert read_fs_or_vol(p.target, "filesystem").startswith("initial")
    assert all(c.valid for c in b.list_copies("full"))


def test_consistency_sequence_numbers(zpools, runner, tmp_path, sequence_writer, quiesce_hooks):
    p1 = zpools.create("c")
    p2 = zpools.create("d")
    make_sources(p1, ["a", "b", "c"])
    make_sources(p2, ["e"])
    src = ["%s/a" % p1, "%s/b" % p1, "%s/c" % p1]
    paths = [os.path.join(mountpoint(s), "seq") for s in src]
    stop, pause, paused = threading.Event(), threading.Event(), threading.Event()
    counter = [0]
    t = threading.Thread(target=sequence_writer, args=(paths, stop, pause, paused, counter))
    t.start()
    b = ZfsSnapshotBackend(runner)
    try:
        while counter[0] < 50:
            time.sleep(0.01)
        # 1) One zpool, no hook: the atomic command catches the writer at one
        # instant, so the numbers read as one round: n..n, n-1..n-1 (a prefix
        # of the sources already has the next number), never a gap or a later
        # source ahead of an earlier one.
        results = []
        for v in range(1, 4):
            d = PoolDefinition(name="seq%d" % v, technology="zfs_snapshot", sources=tuple(src), versions=1)
            pairs = [CopyPair(s, b.implied_target(d.name, "01", s)) for s in src]
            out = b.create_copies(d, 1, pairs, CopyWindow(d, runner))
            b.promote(d, 1, pairs, out.staged, [])
            nums = [int(read_snapshot(p.target, "filesystem", "seq").strip() or 0) for p in pairs]
            results.append(nums)
            assert nums == sorted(nums, reverse=True) and nums[0] - nums[-1] <= 1, nums
        # 2) With a pre-copy hook that quiesces the writer (waits for it to
        # finish its round) and a post-copy hook that resumes it, every copy
        # carries the same number, across two zpools too.
        pre, post = quiesce_hooks(stop, pause, paused, ack_wait=5, hook_wait=20, timeout=30)
        src2 = src + ["%s/e" % p2]
        paths.append(os.path.join(mountpoint(src2[3]), "seq"))  # the writer now writes 4 sources
        d = PoolDefinition(name="seqhook", technology="zfs_snapshot", sources=tuple(src2), versions=1,
                           pre_copy_hooks=(pre,), post_copy_hooks=(post,))
        pairs = [CopyPair(s, b.implied_target(d.name, "01", s)) for s in src2]
        time.sleep(0.2)
        win = CopyWindow(d, runner)
        out = b.create_copies(d, 1, pairs, win)
        b.promote(d, 1, pairs, out.staged, [])
        nums = [int(read_snapshot(p.target, "filesystem", "seq").strip() or 0) for p in pairs]
        assert len(set(nums)) == 1 and nums[0] > 0, nums
        assert [h["phase"] for h in win.hooks] == ["pre", "post"] and all(h["ok"] for h in win.hooks)
        # resumed: the writer counts on. Polled, not one fixed sleep: in the
        # emulated guest under load its thread may take seconds to run again
        c0 = counter[0]
        deadline = time.monotonic() + 20
        while counter[0] <= c0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert counter[0] > c0, "the writer was not resumed by the post-copy hook (no write in 20 s)"
        print("atomic (no hook) numbers:", results, "with quiesce hook:", nums, "window ms: %.1f" % out.window_ms)
    finally:
        stop.set()
        t.join(10)


# --- identity: the records name each copy by its guid (issue 12) ---------------------
#
# What tests/real/test_btrfs_identity.py proves for btrfs (the subvolume UUID),
# here for zfs_snapshot: a snapshot destroyed and taken again under a copy's
# name, our marks copied onto it, is another snapshot (another guid).


def guid(name):
    return sh("zfs", "get", "-H", "-p", "-o", "value", "guid", name).strip()


def _snapshot_pool(zpools, tmp_path):
    pool = zpools.create("i")
    kinds = make_sources(pool, ["db"])
    source = "%s/db" % pool
    eng = make_engine(tmp_path / "state", runner=SubprocessRunner(env={"PATH": SBIN}))
    define(eng, PoolDefinition(name="ids", technology="zfs_snapshot", sources=(source,), versions=2))
    return eng, source, kinds


def _copy_data(eng, source, kinds, text):
    write_data(source, kinds[source], text)
    return copy(eng, "ids")


def test_zfs_snapshot_identity_recorded_and_learned(zpools, tmp_path):
    """Every pair of a zfs_snapshot record carries its snapshot's guid, in the
    state file too; a file written before identities were kept learns them
    at the next verify_records repair, without a finding."""
    import re

    eng, source, kinds = _snapshot_pool(zpools, tmp_path)
    _copy_data(eng, source, kinds, "v1")
    state = eng.store.load("ids")
    pair = state.replication(1).pairs[0]
    assert pair.identity == guid(pair.target) and pair.identity.isdigit()
    path = eng.store.path("ids")
    with open(path) as fh:
        text = fh.read()
    assert "%s %s" % (pair.target, pair.identity) in text
    older = re.sub(r"\n  identities: \|\n    [^\n]*", "", text)
    assert older != text
    older = re.sub(r"(?m)^# pitcopy-seal: .*\n\Z", "", older.replace("schema_version: 2\n", "schema_version: 1\n"))
    with open(path, "w") as fh:
        fh.write(older)
    assert eng.store.load("ids").replication(1).pairs[0].identity is None
    with eng.session("ids") as s:
        plan = s.plan_verify(repair=True)
        assert plan.result == {"consistent": True, "findings": []} and plan.changed
        plan.apply()
    assert eng.store.load("ids").replication(1).pairs[0].identity == pair.identity


def test_zfs_snapshot_taken_again_under_a_copys_name_is_never_destroyed(zpools, tmp_path):
    """Someone destroys the copy of version 1 and takes a snapshot of the
    same name with our marks (pitcopy:pool, pitcopy:version): verify reports
    copy_identity_mismatch, and neither rotation, restore, repair nor
    copy_version state=absent destroys or uses their snapshot."""
    eng, source, kinds = _snapshot_pool(zpools, tmp_path)
    _copy_data(eng, source, kinds, "v1")
    _copy_data(eng, source, kinds, "v2")
    target = eng.store.load("ids").replication(1).pairs[0].target
    recorded = eng.store.load("ids").replication(1).pairs[0].identity
    sh("zfs", "destroy", target)
    write_data(source, kinds[source], "theirs")
    sh("zfs", "snapshot", "-o", "pitcopy:pool=ids", "-o", "pitcopy:version=1", target)
    theirs = guid(target)
    assert theirs != recorded

    found = findings(eng, "ids")["findings"]
    assert [(f["version"], f["problem"]) for f in found] == [(1, "copy_identity_mismatch")], found
    assert "never deleted" in found[0]["action"] and theirs in found[0]["action"]

    # rotation: version 3 would replace version 1 on that name
    write_data(source, kinds[source], "v3")
    with eng.session("ids") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_copy().apply()
    assert "copy_identity_mismatch" in exc.value.msg
    assert guid(target) == theirs and read_snapshot(target, kinds[source]) == "theirs"
    assert eng.store.load("ids").last_version == 2 and eng.store.load("ids").journal is None
    assert not [n for n in all_names(source.split("/")[0]) if "staging" in n]

    # restore from it: refused (version 1 is not the newest anyway; the
    # identity check comes first and names the guid)
    with eng.session("ids") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_restore(1).apply()
    assert "copy_identity_mismatch" in exc.value.msg
    assert read_fs_or_vol(source, kinds[source]) == "v3"

    # repair marks the version invalid and keeps the record's word
    with eng.session("ids") as s:
        res = s.plan_verify(repair=True).apply()
    assert [f["problem"] for f in res["findings"]] == ["copy_identity_mismatch"]
    assert eng.store.load("ids").replication(1).status == "invalid"
    assert guid(target) == theirs

    # deleting the version removes its record, not their snapshot
    with eng.session("ids") as s:
        s.plan_delete(1).apply()
    assert eng.store.load("ids").replication(1) is None
    assert guid(target) == theirs and read_snapshot(target, kinds[source]) == "theirs"
    v2 = eng.store.load("ids").replication(2).pairs[0]
    assert guid(v2.target) == v2.identity and read_snapshot(v2.target, kinds[source]) == "v2"
    # and the backend itself, asked directly with the recorded guid, skips it
    b = ZfsSnapshotBackend(SubprocessRunner(env={"PATH": SBIN}))
    d = eng.store.load("ids").definition
    assert b.delete_copies(d, [CopyPair(source, target, recorded)]) == [target]
    assert guid(target) == theirs

    # the next copy would land on that name (its target pool is free now):
    # their snapshot, with our marks but named by no record (untracked_copy),
    # is not destroyed to make room; the copy is refused before any snapshot
    names = all_names(source.split("/")[0])
    with eng.session("ids") as s:
        with pytest.raises(NoEligibleTarget) as exc:
            s.plan_copy().apply()
    assert "%s: holds a copy with the mark of pool ids that no record of the pool has" % target in exc.value.msg
    assert guid(target) == theirs and all_names(source.split("/")[0]) == names
    assert eng.store.load("ids").last_version == 2 and eng.store.load("ids").journal is None


@pytest.mark.parametrize("technology", ["zfs_snapshot", "zfs_send"])
def test_a_held_snapshot_refuses_zfs_destroy_until_released(zpools, tmp_path, technology):
    """Holds on real ZFS: copy_version state=held puts ``zfs hold pitcopy``
    on the copy's snapshot (zfs_send: the received snapshot in the target),
    so a hand-typed ``zfs destroy`` refuses and the next copy onto its
    target pool is refused before anything is touched; released, rotation
    replaces it."""
    pool = zpools.create("h")
    make_sources(pool, ["db"])
    source = "%s/db" % pool
    extra = {}
    if technology == "zfs_send":
        sh("zfs", "create", "%s/bk" % pool)
        extra["target_pools"] = (TargetPool("01", ("%s/bk/a" % pool,)), TargetPool("02", ("%s/bk/b" % pool,)))
    eng = make_engine(tmp_path / "state", runner=SubprocessRunner(env={"PATH": SBIN}))
    define(eng, PoolDefinition(name="held", technology=technology, sources=(source,), versions=2, **extra))
    copy(eng, "held")
    copy(eng, "held")
    with eng.session("held") as s:
        held = s.plan_hold(1, held=True, reason="before the upgrade").apply()
    target = held["version"]["pairs"][0]["target"]
    snap = target if technology == "zfs_snapshot" else "%s@pitcopy-held-v1" % target
    assert "pitcopy" in sh("zfs", "holds", "-H", snap)
    out = subprocess.run(["zfs", "destroy", snap], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         check=False)
    assert out.returncode != 0 and exists(snap), out.stderr
    assert info(eng, "held")["next_version"]["held"] is True
    before = eng.store.read_raw("held")
    with pytest.raises(InvalidInput) as err:
        copy(eng, "held")
    assert "version 1 is held" in err.value.msg and "before the upgrade" in err.value.msg
    assert eng.store.read_raw("held") == before and exists(snap)
    # a hand release is a hold the storage lost: reported, and repaired
    sh("zfs", "release", "pitcopy", snap)
    assert ("hold_not_enforced", 1) in [(f["problem"], f["version"]) for f in findings(eng, "held")["findings"]]
    findings(eng, "held", repair=True)
    assert "pitcopy" in sh("zfs", "holds", "-H", snap)
    with eng.session("held") as s:
        s.plan_hold(1, held=False).apply()
    assert "pitcopy" not in sh("zfs", "holds", "-H", snap)
    assert copy(eng, "held")["replaced_version"] == 1


# --- browsing a version and restoring files (issue 17) --------------------------------


def _files_at_v1(live):
    """The files of the browse tests before version 1: keep, and lost (0604)."""
    for name, text in (("keep", "v1\n"), ("lost", "v1 lost\n")):
        with open(os.path.join(live, name), "w") as fh:
            fh.write(text)
    os.chmod(os.path.join(live, "lost"), 0o604)


def _lost_and_changed(live):
    """After version 1: lost deleted, keep changed."""
    os.unlink(os.path.join(live, "lost"))
    with open(os.path.join(live, "keep"), "w") as fh:
        fh.write("changed since\n")


def _restore_lost(session):
    """lost restored in place from version 1 (check mode lists it first)."""
    p = session.plan_restore_paths(1, ["lost"])
    assert p.result["restored_paths"][0]["changes"] == ["lost: missing"]
    p.apply()


def _lost_is_back(live):
    """lost as it was at version 1, mode included; keep, changed since, as it is."""
    assert os.stat(os.path.join(live, "lost")).st_mode & 0o777 == 0o604
    with open(os.path.join(live, "lost")) as fh:
        assert fh.read() == "v1 lost\n"
    with open(os.path.join(live, "keep")) as fh:
        assert fh.read() == "changed since\n"


@contextlib.contextmanager
def _version_1_mounted(eng, name, where):
    """Version 1 of pool ``name`` mounted under ``where``: its one source's
    copy at <where>/db, read-only (keep reads as at version 1, a write
    fails); yields (the module's result, the mount point), then unmounts
    and checks nothing is left."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._browse import mount_at

    with eng.session(name) as s:
        mounted = s.plan_mount(1, where).apply()
    mp = mounted["mounts"][0]["path"]
    try:
        assert mp == os.path.join(where, "db") and "ro" in mount_at(mp)["options"]
        with open(os.path.join(mp, "keep")) as fh:
            assert fh.read() == "v1\n"
        with pytest.raises(OSError):
            with open(os.path.join(mp, "keep"), "w") as fh:
                fh.write("x")
        yield mounted, mp
    finally:
        with eng.session(name) as s:
            s.plan_unmount(1).apply()
    assert mount_at(mp) is None and os.listdir(where) == []


def test_zfs_snapshot_browse_and_file_restore(zpools, tmp_path):
    """One compact pass (every zfs process is seconds in the emulated VM;
    measured 18.8 s there, so it runs in stage vm-zfs): a
    deleted file restored in place through .zfs/snapshot (check mode lists
    it) while its changed neighbour stays; the version mounted read-only
    with mount -t zfs (a write fails) and unmounted clean. Dataset pg
    (issue 17 item 1), a directory of the source dataset, is found through
    the dataset's mountpoint, held by the version, read in the mounted
    copy and restored by its path in the dataset."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._model import Dataset

    eng, source, kinds = _snapshot_pool(zpools, tmp_path)
    live = mountpoint(source)
    os.makedirs(os.path.join(live, "pg"))
    with open(os.path.join(live, "pg", "row"), "w") as fh:
        fh.write("row v1\n")
    out = define(eng, PoolDefinition(name="ids", technology="zfs_snapshot", sources=(source,), versions=2,
                                     datasets=(Dataset("pg", os.path.join(live, "pg")),)))
    assert out["pool"]["datasets"][0]["places"] == [{"source": source, "path": "pg", "at": ""}]
    _files_at_v1(live)
    v1 = copy(eng, "ids")
    assert v1["version"]["datasets"][0]["sources"] == [source]
    _lost_and_changed(live)
    with open(os.path.join(live, "pg", "row"), "w") as fh:
        fh.write("row changed\n")
    with eng.session("ids") as s:
        held = s.info(dataset="pg")["dataset"]
    assert [v["version"] for v in held["versions"]] == [1] and held["since"] == v1["version"]["created"]
    with eng.session("ids") as s:
        _restore_lost(s)
        s.plan_restore_paths(1, ["row"], dataset="pg").apply()
    with open(os.path.join(live, "pg", "row")) as fh:
        assert fh.read() == "row v1\n"
    _lost_is_back(live)
    with _version_1_mounted(eng, "ids", str(tmp_path / "browse")) as (mounted, mp):
        assert [(d["name"], d["path"]) for d in mounted["datasets"]] == [("pg", os.path.join(mp, "pg"))]
        with open(os.path.join(mp, "pg", "row")) as fh:
            assert fh.read() == "row v1\n"


def test_zfs_send_browse_and_file_restore(zpools, tmp_path):
    """The same for a zfs_send copy (issue 17), compact for the emulated VM:
    a deleted file restored in place from the copy's received snapshot,
    read through the copy's .zfs/snapshot (check mode lists it), while its
    changed neighbour stays; the version mounted read-only with mount -t zfs
    (a write fails) and unmounted clean; a copy written to behind our back
    refused, naming it, with the state file unchanged."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._browse import mount_at

    spool, tpool = zpools.create("s"), zpools.create("t")
    make_sources(spool, ["db"])
    source, target = "%s/db" % spool, "%s/A/db" % tpool
    sh("zfs", "create", "%s/A" % tpool)
    eng = make_engine(tmp_path / "state", runner=SubprocessRunner(env={"PATH": SBIN}))
    define(eng, PoolDefinition(name="sb", technology="zfs_send", sources=(source,), versions=1,
                               target_pools=(TargetPool("A", (target,)),)))
    live = mountpoint(source)
    _files_at_v1(live)
    copy(eng, "sb")
    _lost_and_changed(live)
    with eng.session("sb") as s:
        _restore_lost(s)
    _lost_is_back(live)
    where = str(tmp_path / "browse")
    with _version_1_mounted(eng, "sb", where) as (dummy, mp):
        assert mount_at(mp)["source"] == "%s@pitcopy-sb-v1" % target, mount_at(mp)
    # the copy written to behind our back is no longer the version: refused
    sh("zfs", "set", "readonly=off", target)
    with open(os.path.join(mountpoint(target), "keep"), "w") as fh:
        fh.write("tampered\n")
        fh.flush()
        os.fsync(fh.fileno())
    sh("zpool", "sync", tpool)  # 'written' counts what the txgs wrote out
    before = open(eng.store.path("sb"), "rb").read()
    with eng.session("sb") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_mount(1, where)
    assert target in exc.value.msg and "written to" in exc.value.msg and "nothing was changed" in exc.value.msg
    assert open(eng.store.path("sb"), "rb").read() == before and os.listdir(where) == []


# --- a version dumped to media and restored from it (issue 17, item 6) -----------------


@pytest.mark.parametrize("technology", ["zfs_snapshot", "zfs_send"])
def test_zfs_media_dump_and_restore(zpools, tmp_path, technology):
    """Version 1 dumped to a medium (a directory outside the zpools), the
    second dump no change; the copies deleted; restored from the medium as
    a new dataset beside production with its files, mode and owner as at
    version 1, none of our marks and no snapshot; restoring again refused
    (it exists). One byte of the stream changed: media_corrupt under
    verify_media, and a restore from it refused with nothing made."""
    spool = zpools.create("s")
    make_sources(spool, ["db"])
    source = "%s/db" % spool
    pools, targets = [spool], ()
    if technology == "zfs_send":
        pools.append(zpools.create("t"))
        sh("zfs", "create", "%s/A" % pools[1])
        targets = (TargetPool("A", ("%s/A/db" % pools[1],)),)
    eng = make_engine(tmp_path / "state", runner=SubprocessRunner(env={"PATH": SBIN}))
    define(eng, PoolDefinition(name="md", technology=technology, sources=(source,), versions=1,
                               target_pools=targets))
    write_data(source, "filesystem", "v1 data")
    live = mountpoint(source)
    with open(os.path.join(live, "owned"), "w") as fh:
        fh.write("owned v1\n")
    os.chown(os.path.join(live, "owned"), 1234, 4321)
    os.chmod(os.path.join(live, "owned"), 0o640)
    copy(eng, "md")
    write_data(source, "filesystem", "after v1")

    medium = str(tmp_path / "tape1")
    os.mkdir(medium, 0o700)
    with eng.session("md") as s:
        dump = s.plan_dump(1, medium).apply()["dump"]
    [stream] = dump["streams"]
    assert stream["source"] == source and stream["stream"].endswith(".zfs-stream") and stream["size"] > 0
    with eng.session("md") as s:
        assert s.plan_dump(1, medium).changed is False
    with eng.session("md") as s:
        s.plan_delete(1).apply()
    assert not [n for pool in pools for n in all_names(pool) if "pitcopy" in n]

    sh("zfs", "create", "%s/back" % spool)
    new = "%s/back/db" % spool
    with eng.session("md") as s:
        res = s.plan_restore_from_media(1, medium, "%s/back" % spool).apply()
    assert res["restored_to"] == [{"source": source, "volume": new}]
    assert read_fs_or_vol(new, "filesystem") == "v1 data"
    owned = os.path.join(mountpoint(new), "owned")
    st = os.stat(owned)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1234, 4321, 0o640)
    assert ours(new) == ([], [])
    state_before = open(eng.store.path("md"), "rb").read()
    with eng.session("md") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_restore_from_media(1, medium, "%s/back" % spool).apply()
    assert new in exc.value.msg and "never overwrites" in exc.value.msg
    assert open(eng.store.path("md"), "rb").read() == state_before

    path = os.path.join(medium, stream["stream"])
    flip_middle_byte(path)
    with eng.session("md") as s:
        found = s.plan_verify(verify_media=True).result
    assert [f["target"] for f in found["findings"] if f["problem"] == "media_corrupt"] == [path], found
    sh("zfs", "create", "%s/back2" % spool)
    with eng.session("md") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_restore_from_media(1, medium, "%s/back2" % spool).apply()
    assert "cannot be restored" in exc.value.msg and stream["stream"] in exc.value.msg, exc.value.msg
    assert not exists("%s/back2/db" % spool)
