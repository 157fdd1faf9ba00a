# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ZFS backends' views (_zfs "Views"): a read reused by the reads that
follow it until any other command runs. Against the simulated host
(tests/unit/zfs_host.py): the commands of a whole zfs_snapshot version, the
same end state as without views, and a command in between that makes the
next check read again. The replay of the guest's recording
(test_replay_zfs.py) and tests/real/test_zfs*.py are the proof on OpenZFS."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSnapshotBackend
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import SimpleWindow
from ansible_collections.pitcopy.versions.tests.unit.zfs_host import ZfsHost


class Uncounted(object):
    """The simulated host behind a runner that does not count its
    processes: the backend keeps no view and reads every time."""

    def __init__(self, host):
        self.host = host

    def resolve(self, name):
        return self.host.resolve(name)

    def run(self, argv, data=None, check=True, timeout=None):
        return self.host.run(argv, data=data, check=check, timeout=timeout)


def _pool(tmp_path, n, counted=True, name="state"):
    host = ZfsHost()
    sources = tuple("tank/s%d" % i for i in range(n))
    for s in sources:
        host.add_filesystem(s, data="%s 0" % s)
    runner = host if counted else Uncounted(host)
    eng = RecordEngine(StateStore(str(tmp_path / name)), lambda tech: ZfsSnapshotBackend(runner=runner))
    d = PoolDefinition(name="db", technology="zfs_snapshot", sources=sources, versions=2)
    with eng.session("db") as s:
        s.plan_define(d).apply()
    return host, eng, sources


def _versions(host, eng, sources, count):
    """``count`` versions; the zfs subcommands (with -r where given) of each."""
    out = []
    for v in range(1, count + 1):
        for s in sources:
            host.write(s, "%s v%d" % (s, v))
        start = len(host.calls)
        with eng.session("db") as s:
            assert s.plan_copy().apply()["version"]["number"] == v
        out.append([c[1] + (" -r" if "-r" in c else "") for c in host.calls[start:]])
    return out


def test_a_steady_state_version_is_nine_processes_whatever_the_datasets(tmp_path):
    for n in (4, 20):
        host, eng, sources = _pool(tmp_path, n, name="s%d" % n)
        third = _versions(host, eng, sources, 3)[2]  # replaces version 1
        # list_copies, discovery (plan and act), the atomic snapshot, the one
        # read after it, then the promotion's batch: the stale-staging check
        # and the promotion's own reads come from the views
        assert third == ["get -r", "get -r", "get -r", "snapshot", "get -r", "destroy -r", "snapshot", "rename -r",
                         "destroy"], (n, third)


def test_views_change_only_the_number_of_reads(tmp_path):
    counted, eng, sources = _pool(tmp_path, 4, name="a")
    plain, eng2, _sources = _pool(tmp_path, 4, counted=False, name="b")
    a = _versions(counted, eng, sources, 4)
    b = _versions(plain, eng2, sources, 4)
    assert counted.state() == plain.state()
    # without views: the stale-staging check, the guid read, the promotion's
    # rows and its listing read again (12 processes)
    assert [len(x) for x in a][2:] == [9, 9] and [len(x) for x in b][2:] == [12, 12]
    assert [c for c in a[3] if not c.startswith("get")] == [c for c in b[3] if not c.startswith("get")]


def _backend_and_pairs(n=4):
    host = ZfsHost()
    sources = tuple("tank/s%d" % i for i in range(n))
    for s in sources:
        host.add_filesystem(s, data=s)
    d = PoolDefinition(name="db", technology="zfs_snapshot", sources=sources, versions=1)
    b = ZfsSnapshotBackend(runner=host)
    return host, d, b, [CopyPair(s, b.implied_target("db", "01", s)) for s in sources]


def test_the_stale_staging_check_reads_list_copies_rows_until_a_command_runs():
    host, d, b, pairs = _backend_and_pairs()
    b.list_copies("db", None)
    start = len(host.calls)
    plan = b.plan_copies(d, 1, pairs)
    assert host.calls[start:] == [] and plan.facts["stale"] == []
    # somebody's snapshot under a staging name, made by a command: the view
    # is gone and the check reads again, and refuses
    host.run(["zfs", "snapshot", "tank/s2@pitcopy-db-01.staging-v1"])
    with pytest.raises(CopyFailed, match="tank/s2@pitcopy-db-01.staging-v1 exists without this copy pool's mark"):
        b.plan_copies(d, 1, pairs)
    assert host.calls[-1][:2] == ["zfs", "get"]


def _version_two_staged():
    """Version 1 of four sources promoted, version 2 made and staged (the
    read the promotion reuses taken); its replaced pairs."""
    host, d, b, pairs = _backend_and_pairs()
    one = b.create_copies(d, 1, pairs, SimpleWindow(d))
    b.promote(d, 1, pairs, one.staged, [])
    replaced = [CopyPair(p.source, p.target, s.identity) for p, s in zip(pairs, one.staged)]
    two = b.create_copies(d, 2, pairs, SimpleWindow(d))
    return host, d, b, pairs, two.staged, replaced


def test_the_promotion_reuses_the_read_after_the_copy():
    host, d, b, pairs, staged, replaced = _version_two_staged()
    start = len(host.calls)
    b.promote(d, 2, pairs, staged, replaced)
    assert [c[1:3] for c in host.calls[start:]] == [
        ["destroy", "-r"], ["snapshot", "-o"], ["rename", "-r"], ["destroy", "tank@pitcopy-db-01"]]
    assert all(host.ds[p.target]["props"]["pitcopy:version"] == "2" for p in pairs)


def test_the_promotion_reads_again_when_a_command_ran_after_the_copy():
    host, d, b, pairs, staged, replaced = _version_two_staged()
    host.add_filesystem("tank/s0/theirs", data="theirs")
    # a command after the read the promotion would reuse: somebody's
    # snapshot of the final name below the sources' common ancestor
    host.run(["zfs", "snapshot", "tank/s0/theirs@pitcopy-db-01"])
    start = len(host.calls)
    b.promote(d, 2, pairs, staged, replaced)
    sub = [c[1] for c in host.calls[start:]]
    # read again (rows, listing), saw theirs: one command each, theirs untouched
    assert sub == ["get", "get"] + ["destroy"] * 4 + ["rename"] * 4
    assert "tank/s0/theirs@pitcopy-db-01" in host.ds
    assert all(host.ds[p.target]["props"]["pitcopy:version"] == "2" for p in pairs)
