# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The LVM backends against real LVM (inside the VM harness).

Run with ``tests/vm/run-suite.sh lvm`` or
``tests/vm/run.sh -- pytest -p no:cacheprovider -m lvm tests/real/test_lvm.py``.

Every test makes its own VG on a sparse file behind a loop device under /tmp
and removes it (LVs, VG, PV, loop device, file) in teardown, also when the
test fails. Missing LVM tools or device-mapper FAIL the test.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _lvm
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import (
    CapacityError,
    CopyFailed,
    InvalidInput,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import (
    LvmCloneBackend,
    LvmSnapshotBackend,
    LvmThinBackend,
    dm_path,
    validate_lv_name,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CopyPair,
    PoolDefinition,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.tests.utils import engine_calls, lvm_scenarios
from ansible_collections.pitcopy.versions.tests.utils.engine_calls import copy, define, findings, info
from ansible_collections.pitcopy.versions.tests.utils.tools_env import SBIN_PATH, MiB, run_tool, tool_env

pytestmark = pytest.mark.lvm

SBIN = SBIN_PATH
ENV = tool_env(LVM_SUPPRESS_FD_WARNINGS="1")
BACKENDS = {"lvm_snapshot": LvmSnapshotBackend, "lvm_thin": LvmThinBackend, "lvm_clone": LvmCloneBackend}


def sh(*argv, **kw):
    return run_tool(ENV, *argv, **kw)


def require_lvm():
    missing = [t for t in ("lvm", "lvcreate", "losetup", "fsfreeze", "mkfs.ext4") if not shutil.which(t, path=SBIN)]
    if missing:
        pytest.fail("LVM tests need %s: run them inside the VM harness (tests/vm/run.sh)" % ", ".join(missing),
                    pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("LVM tests need root", pytrace=False)
    if not os.path.exists("/dev/mapper/control"):
        pytest.fail("/dev/mapper/control is missing: no device-mapper in this kernel; run the LVM tests inside "
                    "the VM harness (tests/vm/run.sh loads dm_mod, dm_snapshot, dm_thin_pool)", pytrace=False)


class Vgs:
    """Loop-backed VGs made for one test; ``destroy_all`` in teardown."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.vgs = []
        self.loops = []
        self.mounts = []

    def create(self, tag, size=256 * MiB):
        name = "pct%s%s" % (tag, uuid.uuid4().hex[:6])
        img = os.path.join(self.workdir, name + ".img")
        with open(img, "wb") as fh:
            fh.truncate(size)
        loop = sh("losetup", "--find", "--show", img).strip()
        self.loops.append((loop, img))
        sh("pvcreate", "-q", loop)
        sh("vgcreate", "-q", "-s", "4M", name, loop)
        self.vgs.append(name)
        return name

    def mount(self, lv, mountpoint):
        os.makedirs(mountpoint, exist_ok=True)
        sh("mount", dm_path(lv), mountpoint)
        self.mounts.append(mountpoint)

    def destroy_all(self):
        errors = []
        for mp in reversed(self.mounts):
            subprocess.call(["fsfreeze", "-u", mp], stderr=subprocess.DEVNULL, env=ENV)
            if subprocess.call(["umount", mp], stderr=subprocess.DEVNULL, env=ENV) != 0:
                subprocess.call(["umount", "-l", mp], stderr=subprocess.DEVNULL, env=ENV)
        for vg in reversed(self.vgs):
            for dummy in range(3):
                if subprocess.call(["vgremove", "-ff", "-y", vg], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env=ENV) == 0:
                    break
                subprocess.call(["dmsetup", "remove_all", "--force"], stderr=subprocess.DEVNULL, env=ENV)
                time.sleep(0.5)
            else:
                errors.append("vgremove %s failed" % vg)
        for loop, img in reversed(self.loops):
            subprocess.call(["pvremove", "-ff", "-y", loop], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=ENV)
            subprocess.call(["losetup", "-d", loop], env=ENV)
            if os.path.exists(img):
                os.unlink(img)
        return errors


@pytest.fixture
def vgs():
    require_lvm()
    workdir = tempfile.mkdtemp(prefix="pitcopy-lvm-")
    v = Vgs(workdir)
    yield v
    errors = v.destroy_all()
    shutil.rmtree(workdir, ignore_errors=True)
    assert not errors, errors


@pytest.fixture
def lvm_runner():
    return SubprocessRunner(env={"PATH": SBIN})


def lv(vg, name, size_mib=8, thin_pool=None):
    if thin_pool:
        sh("lvcreate", "-q", "-V", "%dM" % size_mib, "-T", "%s/%s" % (vg, thin_pool), "-n", name)
    else:
        sh("lvcreate", "-q", "-y", "-Wy", "-Zy", "-L", "%dM" % size_mib, "-n", name, vg)
    return "%s/%s" % (vg, name)


def write_data(name, text):
    """The source's data: ``text`` at offset 0 and at 1 MiB into the LV."""
    data = text.encode("utf-8").ljust(4096, b"\0")
    fd = os.open(dm_path(name), os.O_WRONLY)
    try:
        os.pwrite(fd, data, 0)
        os.pwrite(fd, data, MiB)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_data(name):
    fd = os.open(dm_path(name), os.O_RDONLY)
    try:
        a = os.pread(fd, 4096, 0)
        b = os.pread(fd, 4096, MiB)
    finally:
        os.close(fd)
    assert a == b, (name, a[:40], b[:40])
    return a.rstrip(b"\0").decode("utf-8")


def activate(*names):
    # -y: for a classic snapshot lvchange asks whether to change the origin too
    sh("lvchange", "-ay", "-K", "-y", *names)


def exists(name):
    return subprocess.call(["lvs", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV) == 0


def lv_tags(name):
    return sh("lvs", "--noheadings", "-o", "lv_tags", name).strip().split(",")


def make_engine(state_dir, runner):
    return engine_calls.make_engine(state_dir, runner, BACKENDS)


def check_kept(engine, name, data):
    """Every kept version holds exactly the data of its point in time."""
    pool = info(engine, name)
    targets = [p["target"] for rec in pool["replication_records"] for p in rec["pairs"]]
    if targets:
        activate(*targets)  # one lvm process for all
    for rec in pool["replication_records"]:
        for p in rec["pairs"]:
            got = read_data(p["target"])
            assert got == data[rec["version"]][p["source"]], (rec["version"], p, got)
    return pool


# --- names and sizes (no volumes touched) ---------------------------------------


def test_names_and_sizes_are_validated():
    for good in ("vg0/data", "vg_a/lv.1", "v+g/l-v"):
        validate_lv_name(good)
    bad = ["vg0", "vg0/a/b", "vg0/..", "../x", "vg0/-rf", "-vg/x", "vg0/a b", "vg0/a;rm", "vg0/$(x)", "vg0/a\nb",
           "vg0/a`b`", "/dev/vg0/a", "vg0/snapshot", "vg0/x_tdata", "", None, "vg0/" + "x" * 128]
    for b in bad:
        with pytest.raises(InvalidInput) as exc:
            validate_lv_name(b, "source")
        assert repr(b) in exc.value.msg or "source" in exc.value.msg
    b = LvmSnapshotBackend()
    assert b.implied_target("db", "01", "vg0/data") == "vg0/data-pc-db-01"
    long_t = b.implied_target("db", "01", "vg0/" + "y" * 120)
    assert len(long_t.split("/")[1]) <= 127 and long_t == b.implied_target("db", "01", "vg0/" + "y" * 120)
    with pytest.raises(InvalidInput):
        b.implied_target("bad pool", "01", "vg0/data")
    assert _lvm.parse_snapshot_size("8M", 100 * MiB, 0, 4 * MiB) == 8 * MiB
    assert _lvm.parse_snapshot_size("5", 100 * MiB, 0, 4 * MiB) == 8 * MiB  # MiB, rounded up to extents
    assert _lvm.parse_snapshot_size("20%ORIGIN", 100 * MiB, 0, 4 * MiB) == 20 * MiB
    assert _lvm.parse_snapshot_size("10%VG", 0, 400 * MiB, 4 * MiB) == 40 * MiB
    for bad_size in ("20%FREE", "abc", "-1M", "0", "12X", "150%ORIGIN", "5M;ls"):
        with pytest.raises(InvalidInput) as exc:
            _lvm.parse_snapshot_size(bad_size, 100 * MiB, 100 * MiB, 4 * MiB)
        assert repr(bad_size) in exc.value.msg


# --- the point in time on this kernel ---------------------------------------------


def test_fsfreeze_then_snapshot_works_on_this_kernel(vgs, tmp_path):
    """Re-measures the fact FREEZE_THEN_SNAPSHOT records: whether LVM can
    snapshot an origin whose filesystem is frozen with fsfreeze. On Debian's
    6.1 kernel its own suspend fails with EBUSY (freeze_bdev refuses an
    already frozen filesystem), so the backend must not freeze."""
    vg = vgs.create("fz")
    src = lv(vg, "c", 16)
    sh("mkfs.ext4", "-q", dm_path(src))
    mp = str(tmp_path / "c")
    vgs.mount(src, mp)
    with open(os.path.join(mp, "f"), "w") as fh:
        fh.write("frozen")
    sh("fsfreeze", "-f", mp)
    # thaw from a timer too: should lvcreate block instead of failing, the
    # test must not hang the VM
    timer = threading.Timer(90, lambda: subprocess.call(["fsfreeze", "-u", mp], env=ENV))
    timer.start()
    try:
        proc = subprocess.run(["lvcreate", "-q", "-s", "-n", "c_s", "-L", "8M", src], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=ENV, timeout=180, check=False)
    finally:
        timer.cancel()
        subprocess.call(["fsfreeze", "-u", mp], env=ENV, stderr=subprocess.DEVNULL)
        # a failed suspend leaves LVM's devices half-done: resume them all
        for dev in sh("dmsetup", "ls").split("\n"):
            name = dev.split("\t")[0].strip()
            if name.startswith(vg.replace("-", "--") + "-"):
                subprocess.call(["dmsetup", "resume", name], env=ENV, stderr=subprocess.DEVNULL)
    err = proc.stderr.decode().strip()
    print("classic snapshot of a frozen ext4: rc=%s %s" % (proc.returncode, err))
    assert (proc.returncode == 0) == _lvm.FREEZE_THEN_SNAPSHOT, err
    if not _lvm.FREEZE_THEN_SNAPSHOT:
        assert "busy" in err.lower(), err
    # consistency freeze is refused before anything is touched
    b = LvmSnapshotBackend(SubprocessRunner(env={"PATH": SBIN}))
    d = PoolDefinition(name="fz", technology="lvm_snapshot", sources=(src,), versions=1, consistency="freeze",
                       snapshot_size="4M")
    before = sh("lvs", "--noheadings", "-o", "lv_name", vg)
    if not _lvm.FREEZE_THEN_SNAPSHOT:
        with pytest.raises(InvalidInput) as exc:
            b.create_copies(d, 1, [CopyPair(src, b.implied_target("fz", "01", src))], CopyWindow(d, b.runner))
        assert "freeze" in exc.value.msg and "hooks" in exc.value.msg
        assert sh("lvs", "--noheadings", "-o", "lv_name", vg) == before


# --- rotation, restore, verify through the record engine ---------------------------------


def _setup_sources(vgs, technology):
    vg = vgs.create(technology.split("_")[1][:2], 384 * MiB)
    thin = "tp" if technology == "lvm_thin" else None
    if thin:
        sh("lvcreate", "-q", "-L", "128M", "-T", "%s/%s" % (vg, thin))
    sources = [lv(vg, n, 8, thin_pool=thin) for n in ("a", "b", "c", "d")]
    return vg, sources


@pytest.mark.parametrize("technology", ["lvm_snapshot", "lvm_thin", "lvm_clone"])
def test_versions_rotation_restore_verify(vgs, lvm_runner, tmp_path, technology):
    vg, all_sources = _setup_sources(vgs, technology)
    b = BACKENDS[technology](lvm_runner)
    vols = b.discover(all_sources + ["%s/nothere" % vg])
    assert set(vols) == set(all_sources)
    v = vols[all_sources[0]]
    assert v.size == 8 * MiB and v.block_size in (512, 4096) and v.free > 0
    assert v.kind == ("thin_lv" if technology == "lvm_thin" else "lv")

    extra = {}
    versions = 3
    if technology == "lvm_clone":
        versions = 2
        tps = []
        for t in ("01", "02"):
            tps.append(TargetPool(name=t, volumes=tuple(lv(vg, "t%s%s" % (t, x), 8) for x in "abcd")))
        extra["target_pools"] = tuple(tps)
    if technology == "lvm_snapshot":
        extra["snapshot_size"] = "4M"

    eng = make_engine(tmp_path / "state", lvm_runner)
    data = {}
    sources = all_sources[:3]
    windows = []
    for n in range(1, 5):
        if n == 3:
            sources.append(all_sources[3])           # a source joins
        if n == 4:
            sources.remove(all_sources[1])           # a source leaves
        define(eng, PoolDefinition(name="p%s" % technology[4:], technology=technology, sources=tuple(sources),
                                   versions=versions, **extra))
        name = "p%s" % technology[4:]
        if n == 2:
            with eng.session(name) as s:
                pre = s.plan_prepair(versions=2).apply()
            assert [r["version"] for r in pre["records"]] == [2, 3]
        for s_ in sources:
            write_data(s_, "v%d %s" % (n, s_))
        data[n] = dict((s_, "v%d %s" % (n, s_)) for s_ in sources)
        res = copy(eng, name)
        assert res["version"]["number"] == n and res["copy_window_ms"] > 0
        windows.append(res["copy_window_ms"])
        for s_ in sources:
            write_data(s_, "after v%d %s" % (n, s_))  # changes after the point in time
        check_kept(eng, name, data)
    pool = info(eng, name)
    kept = dict((r["version"], r) for r in pool["replication_records"])
    assert sorted(kept) == list(range(5 - versions, 5))
    assert [p["source"] for p in kept[4]["pairs"]] == sources
    listed = b.list_copies(name)
    assert sorted((c.target, c.version) for c in listed) == sorted(
        (p["target"], ver) for ver, r in kept.items() for p in r["pairs"])
    assert not any(c.staged for c in listed)
    for c in listed:
        tags = lv_tags(c.target)
        assert "pitcopy_pool=%s" % name in tags and "pitcopy_version=%d" % c.version in tags, tags
    assert findings(eng, name)["consistent"] is True

    # Restore an older kept version while a source is mounted: refused, nothing changes.
    old = min(kept)
    src0 = kept[old]["pairs"][0]["source"]
    before = dict((s_, read_data(s_)) for s_ in sources)
    sh("mkdir", "-p", str(tmp_path / "m"))
    # a read-only open is enough to make the LV "open"
    with open(dm_path(src0), "rb") as dev:
        holder = subprocess.Popen(["sleep", "60"], stdin=dev, env=ENV)
    try:
        with eng.session(name) as s:
            with pytest.raises(InvalidInput) as exc:
                s.plan_restore(old).apply()
        assert "is open" in exc.value.msg and "nmount" in exc.value.msg, exc.value.msg
    finally:
        holder.kill()
        holder.wait()
    assert dict((s_, read_data(s_)) for s_ in sources) == before

    # Restore it: the data of the pool's current sources is back; a source
    # that left the pool since is not named, so it is left as it is (issue 12
    # item 5); every kept version is still there, intact.
    restored = [p["source"] for p in kept[old]["pairs"] if p["source"] in sources]
    departed = [p["source"] for p in kept[old]["pairs"] if p["source"] not in sources]
    assert restored and departed
    departed_before = dict((s_, read_data(s_)) for s_ in departed)
    with eng.session(name) as s:
        res = s.plan_restore(old).apply()
    assert sorted(res["restored"]) == sorted(restored)
    for s_ in restored:
        assert read_data(s_) == data[old][s_]
    assert dict((s_, read_data(s_)) for s_ in departed) == departed_before
    check_kept(eng, name, data)
    assert sorted(c.target for c in b.list_copies(name)) == sorted(c.target for c in listed)

    # Behind the tool's back.
    victim = kept[4]["pairs"][0]
    if technology == "lvm_clone":
        sh("lvchange", "-q", "-p", "rw", victim["target"])
        write_data(victim["target"], "changed by someone")
        expect = [(4, victim["target"], "copy_invalid")]
    else:
        sh("lvremove", "-y", victim["target"])
        expect = [(4, victim["target"], "copy_missing")]
    f = findings(eng, name)
    assert f["consistent"] is False
    assert [(x["version"], x["target"], x["problem"]) for x in f["findings"]] == expect, f

    if technology == "lvm_snapshot":
        # An overflowed classic snapshot (4 MiB of COW space) is invalid.
        ov = kept[3]["pairs"][1]
        fd = os.open(dm_path(ov["source"]), os.O_WRONLY)
        try:
            os.write(fd, os.urandom(8 * MiB))
            os.fsync(fd)
        finally:
            os.close(fd)
        f = findings(eng, name)
        assert (3, ov["target"], "copy_invalid") in [(x["version"], x["target"], x["problem"]) for x in f["findings"]]

    # Ownership: an LV at one of our names without our tag is never removed.
    foreign = "%s/foreign-pc-x" % vg
    lv(vg, "foreign-pc-x", 4)
    d = PoolDefinition(name=name, technology=technology, sources=tuple(sources), versions=versions, **extra)
    skipped = b.delete_copies(d, [CopyPair(sources[0], foreign)])
    assert skipped == [foreign] and exists(foreign)

    # copy_version absent removes ours (clone: only our tags, never the LV).
    with eng.session(name) as s:
        s.plan_delete(3).apply()
    for p in kept[3]["pairs"]:
        if technology == "lvm_clone":
            assert exists(p["target"])
            tags = lv_tags(p["target"])
            assert not any(t.startswith("pitcopy_version=") for t in tags), tags
        else:
            assert not exists(p["target"])
    print("%s copy windows through the engine (ms): %s" % (technology, ["%.0f" % w for w in windows]))


# --- failures leave nothing behind -------------------------------------------------------


def test_snapshot_failure_full_vg_leaves_nothing(vgs, lvm_runner, tmp_path):
    vg = vgs.create("fl", 64 * MiB)  # 15 extents of 4 MiB
    sources = [lv(vg, n, 8) for n in ("a", "b", "c")]  # 6 extents used, 9 free
    b = LvmSnapshotBackend(lvm_runner)
    eng = make_engine(tmp_path / "state", lvm_runner)
    d = PoolDefinition(name="full", technology="lvm_snapshot", sources=tuple(sources), versions=2,
                       snapshot_size="8M")
    define(eng, d)
    for s_ in sources:
        write_data(s_, "v1 %s" % s_)
    copy(eng, "full")  # 3 x 8 MiB = 6 extents: fits
    lvs_before = sorted(sh("lvs", "--noheadings", "-o", "lv_name,lv_tags", vg).split("\n"))
    # The engine refuses before any copy starts, with the numbers.
    with eng.session("full") as s:
        with pytest.raises(CapacityError) as exc:
            s.plan_copy().apply()
    msg = exc.value.msg
    assert vg in msg and "bytes" in msg and str(3 * 8 * MiB) in msg, msg
    assert sorted(sh("lvs", "--noheadings", "-o", "lv_name,lv_tags", vg).split("\n")) == lvs_before
    # The backend alone, past the capacity check: 4 MiB snapshots with 8 MiB
    # left, so the third fails in the middle of the batch; the two made are
    # removed; the error names the pair and carries LVM's words.
    filler = lv(vg, "filler", 4)
    lvs_before = sorted(sh("lvs", "--noheadings", "-o", "lv_name,lv_tags", vg).split("\n"))
    d4 = PoolDefinition(name="full", technology="lvm_snapshot", sources=tuple(sources), versions=2,
                        snapshot_size="4M")
    pairs = [CopyPair(s_, b.implied_target("full", "02", s_)) for s_ in sources]
    with pytest.raises(CopyFailed) as exc:
        b.create_copies(d4, 2, pairs, CopyWindow(d4, lvm_runner))
    assert exc.value.details.get("source") == sources[2], exc.value.msg
    assert "insufficient" in exc.value.msg.lower() or "space" in exc.value.msg.lower(), exc.value.msg
    assert sorted(sh("lvs", "--noheadings", "-o", "lv_name,lv_tags", vg).split("\n")) == lvs_before
    sh("lvremove", "-y", filler)
    # The previous version is intact and verifies.
    rec = info(eng, "full")["replication_records"]
    assert [r["version"] for r in rec] == [1]
    for p in rec[0]["pairs"]:
        assert read_data(p["target"]) == "v1 %s" % p["source"]
    assert findings(eng, "full")["consistent"] is True


def test_clone_failure_and_foreign_target(vgs, lvm_runner, tmp_path):
    vg = vgs.create("cf", 128 * MiB)
    lvm_scenarios.clone_failure_and_foreign_target(
        lvm_runner, lambda name, mib: lv(vg, name, mib), write_data, read_data,
        make_engine(tmp_path / "state", lvm_runner),
        lvs=lambda: sorted(sh("lvs", "--noheadings", "-o", "lv_name,lv_attr,lv_tags", vg).split("\n")))


def test_clone_failure_mid_copy_loses_only_the_replaced_copies_written(vgs, lvm_runner, tmp_path, monkeypatch):
    """lvm_clone writes in place (see _lvm's docstring, "Failure semantics"):
    a copy that fails half way through its second target releases both
    targets written; their copies of the replaced version are lost, the
    untouched target and the other target pool keep theirs."""
    vg = vgs.create("cm", 128 * MiB)
    sources = [lv(vg, n, 8) for n in ("a", "b", "c")]
    tp1 = [lv(vg, n, 8) for n in ("t1a", "t1b", "t1c")]
    tp2 = [lv(vg, n, 8) for n in ("t2a", "t2b", "t2c")]
    eng = make_engine(tmp_path / "state", lvm_runner)
    d = PoolDefinition(name="cm", technology="lvm_clone", sources=tuple(sources), versions=2,
                       target_pools=(TargetPool(name="01", volumes=tuple(tp1)),
                                     TargetPool(name="02", volumes=tuple(tp2))))
    define(eng, d)
    data = {}
    for v in (1, 2):
        for s_ in sources:
            write_data(s_, "v%d %s" % (v, s_))
        data[v] = dict((s_, "v%d %s" % (v, s_)) for s_ in sources)
        copy(eng, "cm")
    check_kept(eng, "cm", data)
    held = dict((p["source"], p["target"]) for r in info(eng, "cm")["replication_records"] if r["version"] == 1
                for p in r["pairs"])
    for s_ in sources:
        write_data(s_, "v3 %s" % s_)
    real_copy = _lvm._copy_blocks
    failing = held[sources[1]]

    def copy_half_then_fail(src, dst, length, **kw):
        if dst == dm_path(failing):
            real_copy(src, dst, MiB, **kw)  # the first MiB of version 3 lands on the target
            raise IOError(5, "Input/output error (injected)", dst)
        return real_copy(src, dst, length, **kw)

    monkeypatch.setattr(_lvm, "_copy_blocks", copy_half_then_fail)
    with pytest.raises(CopyFailed) as exc:
        copy(eng, "cm")
    monkeypatch.undo()
    msg = exc.value.msg
    assert "failed at %s -> %s" % (sources[1], failing) in msg, msg
    assert "released (%s, %s)" % (held[sources[0]], failing) in msg, msg
    pool = info(eng, "cm")
    assert pool["last_version"] == 2 and pool["interrupted_copy"] is None
    assert [r["version"] for r in pool["replication_records"]] == [1, 2]
    # the two targets written: released (no version, writable), still the pool's
    for t in (held[sources[0]], failing):
        tags = lv_tags(t)
        assert "pitcopy_pool=cm" in tags and not [x for x in tags if x.startswith("pitcopy_version=")], tags
        assert "pitcopy_staged" not in tags
        assert sh("lvs", "--noheadings", "-o", "lv_attr", t).strip()[1] == "w"
    assert read_data(held[sources[0]]) == "v3 %s" % sources[0]
    # the target not reached keeps version 1; version 2 is untouched; no temporary snapshot is left
    assert "pitcopy_version=1" in lv_tags(held[sources[2]])
    assert read_data(held[sources[2]]) == "v1 %s" % sources[2]
    assert not [ln for ln in sh("lvs", "--noheadings", "-o", "lv_tags", vg).split("\n") if "pitcopy_tmp" in ln]
    found = findings(eng, "cm")
    assert sorted((f["version"], f["target"], f["problem"]) for f in found["findings"]) == [
        (1, held[sources[0]], "copy_missing"), (1, failing, "copy_missing")], found
    findings(eng, "cm", repair=True)
    rec1 = [r for r in info(eng, "cm")["replication_records"] if r["version"] == 1][0]
    assert rec1["status"] == "incomplete" and [p["source"] for p in rec1["pairs"]] == [sources[2]]
    # the pool goes on: version 3 again, onto the released targets
    out = copy(eng, "cm")
    assert out["version"]["number"] == 3 and out["version"]["target_pool"] == "01"
    data[3] = dict((s_, "v3 %s" % s_) for s_ in sources)
    check_kept(eng, "cm", data)


# --- one point in time ---------------------------------------------------------------------


def _read_seq(vgs, snap, mp):
    activate(snap)
    os.makedirs(mp, exist_ok=True)
    sh("mount", "-o", "ro,noload", dm_path(snap), mp)
    try:
        with open(os.path.join(mp, "seq")) as fh:
            # the writer renames whole files into place: an empty file here
            # is a failure, never round 0
            return int(fh.read().strip())
    finally:
        sh("umount", mp)


@pytest.mark.parametrize("technology", ["lvm_snapshot", "lvm_thin"])
def test_consistency_sequence_numbers(vgs, lvm_runner, tmp_path, technology, sequence_writer, quiesce_hooks):
    vg = vgs.create("cs", 256 * MiB)
    thin = None
    if technology == "lvm_thin":
        thin = "tp"
        sh("lvcreate", "-q", "-L", "160M", "-T", "%s/tp" % vg)
    src = [lv(vg, n, 16, thin_pool=thin) for n in ("a", "b", "c")]
    paths = []
    for s_ in src:
        sh("mkfs.ext4", "-q", dm_path(s_))
        mp = str(tmp_path / ("m" + s_.split("/")[1]))
        vgs.mount(s_, mp)
        paths.append(os.path.join(mp, "seq"))
    b = BACKENDS[technology](lvm_runner)
    stop, pause, paused = threading.Event(), threading.Event(), threading.Event()
    counter = [0]
    t = threading.Thread(target=sequence_writer, args=(paths, stop, pause, paused, counter), kwargs={"fsync": True})
    t.start()
    try:
        while counter[0] < 5:
            time.sleep(0.01)
        # 1) consistency auto, no hook: nothing is frozen (this kernel cannot
        # snapshot a frozen filesystem; LVM freezes each one itself while it
        # snapshots it), all snapshots come from one lvm process back to
        # back. Each copy is a clean filesystem holding a number the writer
        # wrote; across sources they may differ (printed).
        d = PoolDefinition(name="seq", technology=technology, sources=tuple(src), versions=1, snapshot_size="8M")
        pairs = [CopyPair(s_, b.implied_target(d.name, "01", s_)) for s_ in src]
        win = CopyWindow(d, lvm_runner)
        c_before = counter[0]
        out = b.create_copies(d, 1, pairs, win)
        c_after = counter[0]
        assert out.frozen == []
        b.promote(d, 1, pairs, out.staged, [])
        nums = [_read_seq(vgs, p.target, str(tmp_path / "r")) for p in pairs]
        assert all(c_before - 1 <= n_ <= c_after + 1 for n_ in nums), (nums, c_before, c_after)
        # 2) with a pre-copy hook that quiesces the writer (waits for the end
        # of its round) and a post-copy hook that resumes it: every copy
        # carries the same number.
        pre, post = quiesce_hooks(stop, pause, paused, ack_wait=20, hook_wait=60, timeout=90)
        d2 = PoolDefinition(name="seqhook", technology=technology, sources=tuple(src), versions=1,
                            snapshot_size="8M", pre_copy_hooks=(pre,), post_copy_hooks=(post,))
        pairs = [CopyPair(s_, b.implied_target(d2.name, "01", s_)) for s_ in src]
        win = CopyWindow(d2, lvm_runner)
        out = b.create_copies(d2, 1, pairs, win)
        b.promote(d2, 1, pairs, out.staged, [])
        nums2 = [_read_seq(vgs, p.target, str(tmp_path / "r")) for p in pairs]
        assert len(set(nums2)) == 1 and nums2[0] > 0, nums2
        assert [h["phase"] for h in win.hooks] == ["pre", "post"] and all(h["ok"] for h in win.hooks)
        print("%s: freeze only %s, with quiesce hook %s, window %.0f ms" % (technology, nums, nums2, out.window_ms))
    finally:
        stop.set()
        t.join(30)


def lv_attr(name):
    return sh("lvs", "--noheadings", "-o", "lv_attr", name).strip()


@pytest.mark.parametrize("technology", ["lvm_snapshot", "lvm_thin"])
def test_a_held_version_is_tagged_read_only_and_never_rotated(vgs, lvm_runner, tmp_path, technology):
    """Holds on real LVM: the held copy gets the pitcopy_hold tag and
    permission r; a copy onto its target pool is refused before anything is
    touched, the backend refuses to remove it; a hold lost by hand (tag
    deleted, made writable) is reported and re-applied by repair; released,
    rotation replaces it."""
    vg, sources = _setup_sources(vgs, technology)
    extra = {"snapshot_size": "4M"} if technology == "lvm_snapshot" else {}
    d = PoolDefinition(name="held", technology=technology, sources=(sources[0],), versions=2, **extra)
    eng = make_engine(tmp_path / "state", lvm_runner)
    define(eng, d)
    copy(eng, "held")
    copy(eng, "held")
    with eng.session("held") as s:
        result = s.plan_hold(1, held=True, reason="before the upgrade").apply()
    assert result["version"]["held"] is True
    target = result["version"]["pairs"][0]["target"]
    assert "pitcopy_hold" in lv_tags(target) and lv_attr(target)[1] == "r"
    assert info(eng, "held")["next_version"]["held"] is True
    before = eng.store.read_raw("held")
    lvs_before = sh("lvs", "--noheadings", "-o", "lv_name,lv_tags", vg)
    with pytest.raises(InvalidInput) as err:
        copy(eng, "held")
    assert "version 1 is held" in err.value.msg and "before the upgrade" in err.value.msg
    assert eng.store.read_raw("held") == before
    assert sh("lvs", "--noheadings", "-o", "lv_name,lv_tags", vg) == lvs_before
    with pytest.raises(CopyFailed):
        BACKENDS[technology](lvm_runner).delete_copies(d, [CopyPair(sources[0], target)])
    assert exists(target)
    # the hold lost by hand
    sh("lvchange", "-q", "--deltag", "pitcopy_hold", "-p", "rw", target)
    found = [(f["problem"], f["version"]) for f in findings(eng, "held")["findings"]]
    assert ("hold_not_enforced", 1) in found
    findings(eng, "held", repair=True)
    assert "pitcopy_hold" in lv_tags(target) and lv_attr(target)[1] == "r"
    assert "hold_not_enforced" not in [f["problem"] for f in findings(eng, "held")["findings"]]
    with eng.session("held") as s:
        s.plan_hold(1, held=False).apply()
    assert "pitcopy_hold" not in lv_tags(target) and lv_attr(target)[1] == "w"
    assert copy(eng, "held")["replaced_version"] == 1


# --- browsing a version and restoring files (issue 17) --------------------------------


def test_browse_and_file_restore_of_a_thin_snapshot(vgs, lvm_runner, tmp_path):
    """lvm_thin (a thin snapshot skips activation: browsing activates it):
    a deleted file restored in place while its changed neighbour stays, a
    directory restored elsewhere identical to what it was, the version
    mounted read-only (ext4 ro,noload: a write fails) and unmounted clean."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._browse import mount_at
    from ansible_collections.pitcopy.versions.tests.utils.trees import tree

    vg, sources = _setup_sources(vgs, "lvm_thin")
    src = sources[0]
    sh("mkfs.ext4", "-q", dm_path(src))
    live = str(tmp_path / "live")
    vgs.mount(src, live)
    os.makedirs(os.path.join(live, "etc", "app"))
    for rel, text in (("etc/hosts", "v1 hosts\n"), ("etc/app/app.conf", "v1 conf\n"), ("etc/app/keep", "v1\n")):
        with open(os.path.join(live, rel), "w") as fh:
            fh.write(text)
    os.chown(os.path.join(live, "etc/app/app.conf"), 1234, 4321)
    os.chmod(os.path.join(live, "etc/app/app.conf"), 0o640)
    os.setxattr(os.path.join(live, "etc/app/app.conf"), "user.origin", b"v1")
    before = tree(os.path.join(live, "etc", "app"))
    d = PoolDefinition(name="files", technology="lvm_thin", sources=(src,), versions=2)
    eng = make_engine(tmp_path / "state", lvm_runner)
    define(eng, d)
    copy(eng, "files")
    os.unlink(os.path.join(live, "etc/hosts"))
    with open(os.path.join(live, "etc/app/keep"), "w") as fh:
        fh.write("changed since\n")
    with eng.session("files") as s:
        p = s.plan_restore_paths(1, ["etc/hosts"])
        # an LVM copy is read through a mount, which check mode does not make
        assert p.changed is True and p.result["restored_paths"][0]["changes"] is None
        out = p.apply()
    assert out["restored_paths"][0]["changes"] == ["etc/hosts: missing"]
    with open(os.path.join(live, "etc/hosts")) as fh:
        assert fh.read() == "v1 hosts\n"
    with open(os.path.join(live, "etc/app/keep")) as fh:
        assert fh.read() == "changed since\n"
    # restore_to on an ext4 of its own (the guest's /tmp may keep no user xattrs)
    cmp_lv = sources[1]
    sh("mkfs.ext4", "-q", dm_path(cmp_lv))
    cmp_fs = str(tmp_path / "cmpfs")
    vgs.mount(cmp_lv, cmp_fs)
    with eng.session("files") as s:
        assert s.plan_restore_paths(1, ["etc/app"], restore_to=cmp_fs + "/cmp").apply()["restored"] == [src]
    assert tree(cmp_fs + "/cmp/etc/app") == before
    where = str(tmp_path / "browse")
    with eng.session("files") as s:
        mounts = s.plan_mount(1, where).apply()["mounts"]
    mp = os.path.join(where, "a")
    try:
        assert mounts == [{"source": src, "path": mp}]
        assert "ro" in mount_at(mp)["options"]
        with open(os.path.join(mp, "etc/app/keep")) as fh:
            assert fh.read() == "v1\n"
        with pytest.raises(OSError):
            with open(os.path.join(mp, "etc/hosts"), "w") as fh:
                fh.write("x")
        with eng.session("files") as s:
            assert s.plan_mount(1, where).changed is False
            # a file restore reads the browsing mount: check mode can tell now
            assert s.plan_restore_paths(1, ["etc/hosts"]).changed is False
    finally:
        with eng.session("files") as s:
            s.plan_unmount(1).apply()
    assert mount_at(mp) is None and os.listdir(where) == []


def test_a_dataset_spanning_two_lvs_is_inventoried_and_restored_by_dataset_path(vgs, lvm_runner, tmp_path):
    """Issue 17 item 1 on LVM: dataset db is directory pg of source a's ext4
    and source b's ext4 mounted below it at pg/wal (Table 3.1's Z: two
    source volumes), found through /proc/self/mountinfo and the device;
    the version holds it, the info answers which versions do, and files of
    both parts come back by their path in the dataset."""
    from dataclasses import replace

    from ansible_collections.pitcopy.versions.plugins.module_utils._model import Dataset

    vg, sources = _setup_sources(vgs, "lvm_snapshot")
    a, b = sources[:2]
    for s_ in (a, b):
        sh("mkfs.ext4", "-q", dm_path(s_))
    live = str(tmp_path / "live")
    vgs.mount(a, live)
    os.makedirs(os.path.join(live, "pg", "base"))
    vgs.mount(b, os.path.join(live, "pg", "wal"))
    for rel, text in (("pg/base/1", "base v1\n"), ("pg/base/2", "neighbour v1\n"), ("pg/wal/0001", "wal v1\n")):
        with open(os.path.join(live, rel), "w") as fh:
            fh.write(text)
    d = PoolDefinition(name="ds", technology="lvm_snapshot", sources=(a, b), versions=2, snapshot_size="4M")
    eng = make_engine(tmp_path / "state", lvm_runner)
    with pytest.raises(InvalidInput) as exc:
        define(eng, replace(d, datasets=(Dataset("db", str(tmp_path)),)))
    assert "lies on none of the source volumes" in exc.value.msg
    out = define(eng, replace(d, datasets=(Dataset("db", os.path.join(live, "pg")),)))
    assert out["pool"]["datasets"][0]["places"] == [{"source": a, "path": "pg", "at": ""},
                                                    {"source": b, "path": "", "at": "wal"}]
    v1 = copy(eng, "ds")
    assert v1["version"]["datasets"][0]["sources"] == [a, b]
    for rel, text in (("pg/base/1", "base v2\n"), ("pg/base/2", "neighbour changed\n"), ("pg/wal/0001", "wal v2\n")):
        with open(os.path.join(live, rel), "w") as fh:
            fh.write(text)
    with eng.session("ds") as s:
        held = s.info(dataset="db")["dataset"]
    assert [v["version"] for v in held["versions"]] == [1] and held["since"] == v1["version"]["created"]
    with eng.session("ds") as s:
        s.plan_restore_paths(1, ["base/1", "wal/0001"], dataset="db").apply()
    for rel, text in (("pg/base/1", "base v1\n"), ("pg/base/2", "neighbour changed\n"), ("pg/wal/0001", "wal v1\n")):
        with open(os.path.join(live, rel)) as fh:
            assert fh.read() == text, rel
