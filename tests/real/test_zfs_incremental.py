# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Incremental zfs_send against real zpools (inside the qemu guest).

Run with ``tests/vm/run-suite.sh zfs --parts real -- -k incremental``.

A pool of two filesystems rotates through two target pools: version 1 and 2
are sent in full, every later version incrementally from the bookmark of
the version its target pool holds (measured on the wire); the data of
every kept version is checked, the bookmarks no version needs are
released, a base destroyed by hand makes the next copy of that source full
(and verify_records says so first), and a base that no version needs is
reported and released by repair.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.tests.real.test_zfs import (
    MiB,
    all_names,
    check_kept,
    make_engine,
    mountpoint,
    read_fs_or_vol,
    sh,
    write_data,
)
from ansible_collections.pitcopy.versions.tests.utils.engine_calls import copy, define, findings, info

pytestmark = pytest.mark.zfs


BIG = 16 * MiB


def bookmarks(pool):
    return set(sh("zfs", "list", "-H", "-o", "name", "-t", "bookmark", "-r", pool).split())


def pairs_of(res):
    return dict((p["source"], p) for p in res["version"]["pairs"])


def test_zfs_send_incremental_rotation(zpools, runner, tmp_path):
    spool = zpools.create("s", 192 * MiB)
    tpool = zpools.create("t", 256 * MiB)
    src = ["%s/fs1" % spool, "%s/fs2" % spool]
    for s_ in src:
        sh("zfs", "create", "-o", "compression=off", s_)
    # fs1 holds 16 MiB that do not change: a full send carries them, an
    # incremental one only the small file written before each version
    with open(os.path.join(mountpoint(src[0]), "big"), "wb") as fh:
        fh.write(os.urandom(BIG))
        fh.flush()
        os.fsync(fh.fileno())
    for tp in ("A", "B"):
        sh("zfs", "create", "%s/%s" % (tpool, tp))
    tps = tuple(TargetPool(tp, tuple("%s/%s/%s" % (tpool, tp, n) for n in ("fs1", "fs2"))) for tp in ("A", "B"))
    kinds = dict((s_, "filesystem") for s_ in src)
    eng = make_engine(tmp_path / "state", runner)
    define(eng, PoolDefinition(name="inc", technology="zfs_send", sources=tuple(src), versions=2, target_pools=tps))

    data = {}
    held = {}  # target pool -> the version it holds
    sent = {}

    def take(n):
        for s_ in src:
            write_data(s_, "filesystem", "v%d %s" % (n, s_))
        data[n] = dict((s_, "v%d %s" % (n, s_)) for s_ in src)
        res = copy(eng, "inc")
        assert res["version"]["number"] == n
        sent[n] = pairs_of(res)
        tp = res["version"]["target_pool"]
        check_kept(eng, "inc", data, kinds, read_fs_or_vol)
        return res, tp

    for n in range(1, 5):
        res, tp = take(n)
        base = held.get(tp)
        for s_, p in sent[n].items():
            # the base is the version the target pool held, or none (full)
            assert p["base_version"] == base, (n, tp, p)
            assert p["bytes_sent"] > 0, p
        held[tp] = n
    full, inc = sent[1][src[0]]["bytes_sent"], [sent[n][src[0]]["bytes_sent"] for n in (3, 4)]
    assert full >= BIG and sent[2][src[0]]["bytes_sent"] >= BIG, sent
    # a small change: an incremental stream is a few hundred KiB at most
    assert all(b < full // 20 for b in inc), (full, inc)

    kept = dict((r["version"], r) for r in info(eng, "inc")["replication_records"])
    assert sorted(kept) == [3, 4]
    # bases: exactly the bookmarks of the kept versions, on every source
    assert bookmarks(spool) == set("%s#pitcopy-inc-v%d" % (s_, v) for s_ in src for v in (3, 4))
    # nothing temporary: no staging datasets, no snapshots on the sources,
    # and each copy holds only the snapshot it was received as
    names = all_names(spool) | all_names(tpool)
    assert not [n for n in names if "staging" in n or n.startswith(spool + "/") and "@" in n], names
    snaps = sorted(n for n in names if n.startswith(tpool + "/") and "@" in n)
    assert snaps == sorted("%s@pitcopy-inc-v%d" % (p["target"], v) for v, r in kept.items() for p in r["pairs"])

    # A base destroyed by hand: verify says that copy's next send is full;
    # the next version into that target pool sends fs1 in full, fs2 not.
    gone = "%s#pitcopy-inc-v3" % src[0]
    sh("zfs", "destroy", gone)
    found = findings(eng, "inc")
    assert found["consistent"] is True
    assert [(f["problem"], f["version"], f["source"]) for f in found["findings"]] == [
        ("base_missing", 3, src[0])], found
    res, tp = take(5)
    assert res["replaced_version"] == 3
    assert sent[5][src[0]]["base_version"] is None and sent[5][src[0]]["bytes_sent"] >= BIG, sent[5]
    assert sent[5][src[1]]["base_version"] == 3 and sent[5][src[1]]["bytes_sent"] < full // 20, sent[5]
    assert bookmarks(spool) == set("%s#pitcopy-inc-v%d" % (s_, v) for s_ in src for v in (4, 5))

    # A base of ours no version needs (left by a run killed after it made
    # it): reported, released by repair; a bookmark not in our names stays.
    sh("zfs", "snapshot", "%s@user" % src[1])
    for bm in ("pitcopy-inc-v2", "mine"):
        sh("zfs", "bookmark", "%s@user" % src[1], "%s#%s" % (src[1], bm))
    sh("zfs", "destroy", "%s@user" % src[1])
    found = findings(eng, "inc")
    assert found["consistent"] is False
    assert [(f["problem"], f["target"]) for f in found["findings"]] == [
        ("unneeded_base", "%s#pitcopy-inc-v2" % src[1])], found
    findings(eng, "inc", repair=True)
    assert bookmarks(spool) == set("%s#pitcopy-inc-v%d" % (s_, v) for s_ in src for v in (4, 5)) | {
        "%s#mine" % src[1]}
    assert findings(eng, "inc")["findings"] == []
