# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grid retention on real storage (issue 16): the scenario of
tests/utils/grid_scenario.py (``retention: 6h 3d``) on btrfs natively, on
LVM in the UML guest (``tests/uml/run-suite.sh lvm --parts real -- -k
grid``) and on ZFS in the qemu guest (``tests/vm/run-suite.sh zfs --parts
real -- -k grid``); one world per technology says how to make its pool and
read its copies.

btrfs_snapshot and btrfs_send take the 72 hourly copies, the storage read
after each (btrfs_snapshot the EVENTS schedule below too). In the guests a copy costs seconds (ZFS is emulated), so by
default lvm_thin and zfs_snapshot take the 7 copies of ``EVENTS`` (every
event of the grid once), the storage read at 3 checkpoints; with
``--pitcopy-grid=full`` (opt-in stages vm-lvm-grid, vm-zfs-grid) every VM
technology, lvm_snapshot and zfs_send too, takes the 72 hourly copies, the
storage read after each."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import read_mark, subvol_info
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.tests.real import test_btrfs, test_lvm, test_zfs
from ansible_collections.pitcopy.versions.tests.utils.grid_scenario import EVENTS, HOURLY, grid_scenario
from ansible_collections.pitcopy.versions.tests.utils.tools_env import SBIN_PATH, MiB

NAME = "grid"


class _World:
    """What every world shares: the store, the engine, the definition."""

    backends = {}
    extra = {}

    def __init__(self, tmp_path, technology, source):
        self.technology = technology
        self.runner = SubprocessRunner(env={"PATH": SBIN_PATH})
        self.store = StateStore(str(tmp_path / "state"))
        self.backend = self.backends[technology](runner=self.runner)
        self.source = source
        self.name = NAME

    def engine_with(self, clock, tz):
        return RecordEngine(self.store, lambda tech: self.backends[tech](runner=self.runner), clock=clock, tz=tz)

    def definition(self, retention, versions):
        return PoolDefinition(name=self.name, technology=self.technology, sources=(self.source,),
                              versions=versions, retention=retention, **self.extra)

    def ours_beside_records(self):
        """Copies marked as this pool's (staged and temporary ones too) that
        no record holds."""
        recorded = set((p.target, r.version) for r in self.store.load(self.name).replication_records
                       for p in r.pairs)
        return [c for c in self.backend.list_copies(self.name) if c.staged or (c.target, c.version) not in recorded]


class BtrfsWorld(_World):
    backends = test_btrfs.BACKENDS

    def __init__(self, tmp_path, technology, fs_pair):
        src, dst = fs_pair
        # the btrfs test world makes the subvolumes and send targets
        self.w = test_btrfs.World(tmp_path, SubprocessRunner(env={"PATH": SBIN_PATH}), src, dst, technology,
                                  name=NAME)
        super(BtrfsWorld, self).__init__(tmp_path, technology, self.w.add_source("s1"))
        self.name = self.w.name
        self.store = self.w.store

    def definition(self, retention, versions):
        if self.technology == "btrfs_send":
            self.w.make_target_pools(versions, 1)
            self.extra = {"target_pools": self.w.target_pools}
        return super(BtrfsWorld, self).definition(retention, versions)

    def write(self, text):
        test_btrfs.write(os.path.join(self.source, "data"), text)

    def read_copies(self, records):
        out = {}
        for rec in records:
            path = self.w.copy_path(rec.pairs[0])
            assert read_mark(path)["version"] == rec.version and subvol_info(path)["readonly"], path
            out[rec.version] = test_btrfs.read(os.path.join(path, "data"))
        return out

    def leftovers(self):
        return self.w.pitcopy_leftovers() + self.ours_beside_records()


class LvmWorld(_World):
    backends = test_lvm.BACKENDS

    def __init__(self, tmp_path, technology, vgs):
        vg = vgs.create("g", 256 * MiB)
        thin = None
        if technology == "lvm_thin":
            thin = "tp"
            test_lvm.sh("lvcreate", "-q", "-L", "64M", "-T", "%s/%s" % (vg, thin))
        else:
            self.extra = {"snapshot_size": "4M"}
        self.vg = vg
        super(LvmWorld, self).__init__(tmp_path, technology, test_lvm.lv(vg, "s1", 8, thin_pool=thin))

    def write(self, text):
        test_lvm.write_data(self.source, text)

    def read_copies(self, records):
        targets = [p.target for rec in records for p in rec.pairs]
        test_lvm.activate(*targets)  # one lvm process for all
        return dict((rec.version, test_lvm.read_data(rec.pairs[0].target)) for rec in records)

    def leftovers(self):
        records = self.store.load(self.name).replication_records
        known = set(["s1", "tp"] + [p.target.split("/", 1)[1] for r in records for p in r.pairs])
        lvs = test_lvm.sh("lvs", "--noheadings", "-o", "lv_name", self.vg).split()
        # thin pools' hidden parts are listed in brackets only with -a
        return [n for n in lvs if n not in known] + self.ours_beside_records()


class ZfsWorld(_World):
    backends = {"zfs_snapshot": test_zfs.ZfsSnapshotBackend, "zfs_send": test_zfs.ZfsSendBackend}

    def __init__(self, tmp_path, technology, zpools):
        self.spool = zpools.create("g", 128 * MiB)
        test_zfs.make_sources(self.spool, ["s1"])
        self.tpool = None
        if technology == "zfs_send":
            self.tpool = zpools.create("t", 128 * MiB)
        super(ZfsWorld, self).__init__(tmp_path, technology, "%s/s1" % self.spool)

    def definition(self, retention, versions):
        if self.technology == "zfs_send":
            tps = []
            for i in range(1, versions + 1):
                parent = "%s/t%02d" % (self.tpool, i)
                test_zfs.sh("zfs", "create", parent)
                tps.append(TargetPool("t%02d" % i, (parent + "/s1",)))
            self.extra = {"target_pools": tuple(tps)}
        return super(ZfsWorld, self).definition(retention, versions)

    def write(self, text):
        # the text with its newline; read back the same
        test_zfs.write_data(self.source, "filesystem", text)

    def read_copies(self, records):
        read = test_zfs.read_snapshot if self.technology == "zfs_snapshot" else test_zfs.read_fs_or_vol
        return dict((rec.version, read(rec.pairs[0].target, "filesystem")) for rec in records)

    def leftovers(self):
        names = test_zfs.all_names(self.spool) | (test_zfs.all_names(self.tpool) if self.tpool else set())
        sends = self.technology == "zfs_send"
        return sorted(n for n in names if "staging" in n or ("@" in n and sends and n.startswith(self.spool + "/"))) \
            + self.ours_beside_records()


@pytest.fixture
def grid_world(request, tmp_path):
    technology, schedule = request.param
    world = _make_world(request, tmp_path, technology)
    world.schedule = schedule
    return world


def _make_world(request, tmp_path, technology):
    if technology.startswith("btrfs"):
        return BtrfsWorld(tmp_path, technology, request.getfixturevalue("fs_pair"))
    if technology.startswith("lvm"):
        return LvmWorld(tmp_path, technology, request.getfixturevalue("vgs"))
    return ZfsWorld(tmp_path, technology, request.getfixturevalue("zpools"))


vgs = test_lvm.vgs


# (technology, marker, run by default with the EVENTS schedule; btrfs_snapshot
# too, so that the guests' schedule is proven natively in every run, ~1 s)
TECHNOLOGIES = [
    ("btrfs_snapshot", pytest.mark.btrfs, True),
    ("btrfs_send", pytest.mark.btrfs, False),
    ("lvm_thin", pytest.mark.lvm, True),
    ("lvm_snapshot", pytest.mark.lvm, False),
    ("zfs_snapshot", pytest.mark.zfs, True),
    ("zfs_send", pytest.mark.zfs, False),
]


def pytest_generate_tests(metafunc):
    """btrfs always hourly, btrfs_snapshot on the EVENTS schedule too; in
    the guests lvm_thin and zfs_snapshot on the EVENTS schedule, or every
    technology hourly with --pitcopy-grid=full (what a run does not take is
    not collected: never a skip)."""
    if "grid_world" not in metafunc.fixturenames:
        return
    full = metafunc.config.getoption("--pitcopy-grid") == "full"
    params = []
    for technology, mark, events in TECHNOLOGIES:
        if technology.startswith("btrfs") or full:
            params.append(pytest.param((technology, "hourly"), marks=mark, id=technology + "-hourly"))
        if events and not full:
            params.append(pytest.param((technology, "events"), marks=mark, id=technology + "-events"))
    metafunc.parametrize("grid_world", params, indirect=True)


def test_a_6h_3d_grid_over_three_days_of_copies(grid_world):
    if grid_world.schedule == "hourly":
        seconds, reading, checks = grid_scenario(grid_world, HOURLY)
    else:
        seconds, reading, checks = grid_scenario(grid_world, EVENTS, check_at=(7, 28))
    print("%s: %s schedule of a 6h 3d grid in %.1f s, %.1f s of it reading the storage at %d checkpoints"
          % (grid_world.technology, grid_world.schedule, seconds, reading, checks))
