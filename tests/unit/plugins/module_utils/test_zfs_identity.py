# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""zfs_snapshot copies are known by their guid (issue 12, "the records and
the storage agree on identity"), on a replay of the zfs commands the backend
runs: ``zfs get -H -p -o name,property,value,source`` answered in OpenZFS
2.1's format over a dict of datasets and snapshots, ``zfs snapshot -o``,
``rename`` and ``destroy`` applied to it. The real-tool proof of the same
situations is tests/real/test_zfs.py (test_zfs_snapshot_identity_*)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import itertools

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed, InvalidInput, NoEligibleTarget
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend, ZfsSnapshotBackend
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import FakeClock, SimpleWindow
from ansible_collections.pitcopy.versions.tests.unit.plugins.module_utils.utils import (
    repair_learns_identities,
    without_identities,
)

_GUIDS = itertools.count(9383620557613843627, 7919)


class ZfsReplay:
    """Datasets and snapshots as ``{name: {prop: (value, source)}}``;
    answers the zfs commands of the backends as the real tool prints them.
    Snapshots inherit user properties from their dataset (source
    ``inherited from <ds>``), as ZFS does."""

    def __init__(self):
        self.objs = {}
        self.calls = []

    def add(self, name, marks=None):
        kind = "snapshot" if "@" in name else "filesystem"
        row = {"type": (kind, "-"), "guid": (str(next(_GUIDS)), "-"), "written": ("0", "-"),
               "createtxg": (str(len(self.objs) + 1), "-"), "available": ("1073741824", "-"),
               "used": ("1048576", "-"), "referenced": ("1048576", "-"), "recordsize": ("131072", "default")}
        for k, v in (marks or {}).items():
            row[k] = (v, "local")
        self.objs[name] = row
        return row["guid"][0]

    def guid(self, name):
        return self.objs[name]["guid"][0]

    def _prop(self, name, prop):
        row = self.objs[name]
        if prop in row:
            return row[prop]
        if ":" in prop and "@" in name:
            parent = self.objs.get(name.split("@", 1)[0], {})
            if prop in parent:
                return parent[prop][0], "inherited from %s" % name.split("@", 1)[0]
        return "-", "-"

    def _get(self, argv):
        args = argv[2:]
        opts = {}
        rest = []
        i = 0
        while i < len(args):
            a = args[i]
            if a in ("-o", "-t", "-s", "-d"):
                opts[a] = args[i + 1]
                i += 2
            elif a in ("-H", "-p", "-r"):
                opts[a] = True
                i += 1
            else:
                rest.append(a)
                i += 1
        assert opts.get("-o") == "name,property,value,source" and "-H" in opts and "-p" in opts
        props = rest[0].split(",")
        names = rest[1:]
        types = opts.get("-t", "filesystem,volume,snapshot").split(",")
        sources = opts.get("-s")
        err = []
        if names:
            selected = []
            for n in names:
                if n not in self.objs:
                    err.append("cannot open '%s': dataset does not exist" % n)
                    continue
                selected.append(n)
                if "-r" in opts:
                    selected += sorted(o for o in self.objs if o.startswith(n + "@") or o.startswith(n + "/"))
        else:
            selected = sorted(self.objs)
        out = []
        for n in selected:
            if self.objs[n]["type"][0] not in types:
                continue
            for prop in props:
                value, source = self._prop(n, prop)
                shown = "none" if source == "-" else source.split(" ", 1)[0]
                if sources and shown not in sources.split(","):
                    continue
                out.append("%s\t%s\t%s\t%s" % (n, prop, value, source))
        return (1 if err else 0), "".join(ln + "\n" for ln in out), "".join(e + "\n" for e in err)

    def run(self, argv, data=None, check=True):
        self.calls.append(list(argv))
        assert argv[0] == "zfs", argv
        verb = argv[1]
        if verb == "get":
            return self._get(argv)
        if verb == "snapshot":
            marks, names = {}, []
            args = argv[2:]
            while args:
                if args[0] == "-o":
                    k, v = args[1].split("=", 1)
                    marks[k] = v
                    args = args[2:]
                else:
                    names.append(args.pop(0))
            for n in names:
                self.add(n, marks)
            return 0, "", ""
        if verb == "rename":
            self.objs[argv[3]] = self.objs.pop(argv[2])
            return 0, "", ""
        if verb == "destroy":
            del self.objs[argv[2]]
            return 0, "", ""
        if verb == "list":
            # restore's newer-snapshot listing: name, createtxg
            names = [a for a in argv[2:] if "/" in a]
            rows = sorted((n for n in self.objs if n.split("@", 1)[0] in names and "@" in n),
                          key=lambda n: int(self.objs[n]["createtxg"][0]))
            return 0, "".join("%s\t%s\n" % (n, self.objs[n]["createtxg"][0]) for n in rows), ""
        if verb == "rollback":
            return 0, "", ""
        raise AssertionError("unexpected command %r" % (argv,))

    def verbs(self):
        return [c[1] for c in self.calls]


def _definition(versions=2):
    return PoolDefinition(name="P", technology="zfs_snapshot", sources=("tank/db",), versions=versions)


def _zfs():
    z = ZfsReplay()
    z.add("tank")
    z.add("tank/db")
    return z


# --- the backend ---------------------------------------------------------------


def test_list_copies_reports_the_guid_from_the_one_listing():
    z = _zfs()
    ours = z.add("tank/db@pitcopy-P-01", {"pitcopy:pool": "P", "pitcopy:version": "3"})
    z.add("tank/db@hourly")  # not ours: no mark
    # a user's snapshot of a dataset that carries our mark (inherited): not ours
    z.add("tank/copy", {"pitcopy:pool": "P"})
    z.add("tank/copy@pitcopy-P-02")
    copies = ZfsSnapshotBackend(runner=z).list_copies("P")
    assert [(c.target, c.version, c.staged, c.identity) for c in copies] == [("tank/db@pitcopy-P-01", 3, False, ours)]
    # one zfs process, as before identities were kept
    assert len(z.calls) == 1
    get = z.calls[0]
    assert get[get.index("-s") + 1] == "local,received,none" and "guid" in get[-1].split(",")


def test_create_copies_reports_each_staged_snapshots_guid():
    z = _zfs()
    z.add("tank/logs")
    d = PoolDefinition(name="P", technology="zfs_snapshot", sources=("tank/db", "tank/logs"), versions=2)
    b = ZfsSnapshotBackend(runner=z)
    pairs = [CopyPair(s, b.implied_target("P", "01", s)) for s in d.sources]
    outcome = b.create_copies(d, 1, pairs, SimpleWindow(d))
    assert [(s.target, s.identity) for s in outcome.staged] == [
        ("tank/db@pitcopy-P-01.staging-v1", z.guid("tank/db@pitcopy-P-01.staging-v1")),
        ("tank/logs@pitcopy-P-01.staging-v1", z.guid("tank/logs@pitcopy-P-01.staging-v1"))]
    # one zfs get for all the staged guids, after the one snapshot command
    # (with the final names: the promotion reuses it, _zfs "Views")
    after = z.calls[[c[1] for c in z.calls].index("snapshot") + 1:]
    assert [c[1] for c in after] == ["get"]
    assert after[0][-4:] == [s.target for s in outcome.staged] + [p.target for p in pairs]


@pytest.mark.parametrize("recorded,removed", [("same", True), ("9999", False), (None, True)])
def test_delete_copies_destroys_only_the_recorded_snapshot(recorded, removed):
    z = _zfs()
    guid = z.add("tank/db@pitcopy-P-01", {"pitcopy:pool": "P", "pitcopy:version": "1"})
    identity = guid if recorded == "same" else recorded
    skipped = ZfsSnapshotBackend(runner=z).delete_copies(
        _definition(), [CopyPair("tank/db", "tank/db@pitcopy-P-01", identity)])
    assert ("tank/db@pitcopy-P-01" not in z.objs) is removed
    assert skipped == ([] if removed else ["tank/db@pitcopy-P-01"])


def test_promote_never_destroys_a_replaced_snapshot_taken_again_by_someone_else():
    """The copy of version 1 was destroyed and its name taken again, with our
    marks (forged or copied): promotion of version 3 onto that name is
    refused before anything changes."""
    z = _zfs()
    recorded = z.add("tank/db@pitcopy-P-01", {"pitcopy:pool": "P", "pitcopy:version": "1"})
    z.run(["zfs", "destroy", "tank/db@pitcopy-P-01"])
    theirs = z.add("tank/db@pitcopy-P-01", {"pitcopy:pool": "P", "pitcopy:version": "1"})
    b = ZfsSnapshotBackend(runner=z)
    pair = CopyPair("tank/db", "tank/db@pitcopy-P-01")
    outcome = b.create_copies(_definition(), 3, [pair], None)
    with pytest.raises(CopyFailed) as exc:
        b.promote(_definition(), 3, [pair], outcome.staged, [CopyPair("tank/db", pair.target, recorded)])
    assert "not the copy the record names" in exc.value.msg and theirs in exc.value.msg
    assert z.guid("tank/db@pitcopy-P-01") == theirs
    assert "tank/db@pitcopy-P-01.staging-v3" in z.objs


def test_promote_refuses_a_final_snapshot_of_the_same_version_that_is_not_the_staged_one():
    z = _zfs()
    b = ZfsSnapshotBackend(runner=z)
    pair = CopyPair("tank/db", "tank/db@pitcopy-P-01")
    outcome = b.create_copies(_definition(), 2, [pair], None)
    # the staged snapshot vanished, and another one numbered 2 sits at the final name
    z.run(["zfs", "destroy", outcome.staged[0].target])
    theirs = z.add(pair.target, {"pitcopy:pool": "P", "pitcopy:version": "2"})
    with pytest.raises(CopyFailed) as exc:
        b.promote(_definition(), 2, [pair], outcome.staged, [])
    assert "not the copy just made" in exc.value.msg
    assert z.guid(pair.target) == theirs


def test_promote_finishes_an_interrupted_promotion_of_the_staged_snapshot():
    """Renamed before a crash; the journal read back has no staged identity
    and the replaced record names the old snapshot: the new one stays."""
    z = _zfs()
    old = z.add("tank/db@pitcopy-P-01", {"pitcopy:pool": "P", "pitcopy:version": "1"})
    b = ZfsSnapshotBackend(runner=z)
    pair = CopyPair("tank/db", "tank/db@pitcopy-P-01")
    outcome = b.create_copies(_definition(), 3, [pair], None)
    new = outcome.staged[0].identity
    z.run(["zfs", "destroy", pair.target])
    z.run(["zfs", "rename", outcome.staged[0].target, pair.target])
    staged = [CopyPair(s.source, s.target) for s in outcome.staged]
    b.promote(_definition(), 3, [pair], staged, [CopyPair("tank/db", pair.target, old)])
    assert z.guid(pair.target) == new


def test_restore_refuses_a_snapshot_that_is_not_the_recorded_one():
    z = _zfs()
    z.add("tank/db@pitcopy-P-01", {"pitcopy:pool": "P", "pitcopy:version": "1"})
    with pytest.raises(InvalidInput) as exc:
        ZfsSnapshotBackend(runner=z).restore(_definition(), 1, [CopyPair("tank/db", "tank/db@pitcopy-P-01", "42")])
    assert "is not the copy recorded for version 1 (guid 42)" in exc.value.msg
    assert "rollback" not in z.verbs()


def test_zfs_send_delete_leaves_a_dataset_that_is_not_the_recorded_one():
    z = ZfsReplay()
    z.add("bk")
    z.add("bk/db", {"pitcopy:pool": "P", "pitcopy:version": "1", "pitcopy:source": "tank/db"})
    d = PoolDefinition(name="P", technology="zfs_send", sources=("tank/db",), versions=1)
    skipped = ZfsSendBackend(runner=z).delete_copies(d, [CopyPair("tank/db", "bk/db", "42")])
    assert "bk/db" in z.objs and len(skipped) == 1 and "not the copy the record names (guid 42)" in skipped[0]


# --- through the engine --------------------------------------------------------


def _engine(tmp_path, z):
    engine = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: ZfsSnapshotBackend(runner=z),
                          clock=FakeClock(), window_factory=SimpleWindow)
    with engine.session("P") as s:
        s.plan_define(_definition()).apply()
    return engine


def _copy(engine):
    with engine.session("P") as s:
        return s.plan_copy().apply()


def _retake(z, name, forge):
    """Someone destroys our snapshot and takes one of the same name, with
    our marks copied onto it (``forge``) or without."""
    marks = dict((k, v[0]) for k, v in z.objs[name].items() if k.startswith("pitcopy:"))
    z.run(["zfs", "destroy", name])
    return z.add(name, marks if forge else None)


def test_records_carry_the_guid_and_old_records_learn_it(tmp_path):
    z = _zfs()
    engine = _engine(tmp_path, z)
    _copy(engine)
    state = engine.store.load("P")
    pair = state.replication(1).pairs[0]
    assert pair.identity == z.guid("tank/db@pitcopy-P-01")
    assert "identities: |\n    tank/db@pitcopy-P-01 %s" % pair.identity in engine.store.read_raw("P").decode()
    # a record from before identities were kept learns it at verify repair
    engine.store.save(without_identities(state))
    repair_learns_identities(engine)
    assert engine.store.load("P").replication(1).pairs[0].identity == pair.identity
    # ... and at the next copy (the record of version 1, again without)
    engine.store.save(without_identities(state))
    _copy(engine)
    assert [p.identity for r in engine.store.load("P").replication_records for p in r.pairs] == [
        pair.identity, z.guid("tank/db@pitcopy-P-02")]


@pytest.mark.parametrize("forge", [False, True], ids=["unmarked", "forged-marks"])
def test_a_snapshot_taken_again_under_a_copys_name_is_never_destroyed(tmp_path, forge):
    z = _zfs()
    engine = _engine(tmp_path, z)
    _copy(engine)
    _copy(engine)
    theirs = _retake(z, "tank/db@pitcopy-P-01", forge)
    with engine.session("P") as s:
        found = s.plan_verify().result["findings"]
    # without our marks it is not a copy of ours at all; with them, not the recorded one
    assert [(f["version"], f["problem"]) for f in found] == [
        (1, "copy_identity_mismatch" if forge else "copy_missing")]
    if forge:
        with engine.session("P") as s:
            with pytest.raises(InvalidInput) as exc:
                s.plan_copy()  # version 3 would rotate version 1 away
        assert "copy_identity_mismatch" in exc.value.msg and theirs in exc.value.msg
        with engine.session("P") as s:
            with pytest.raises(InvalidInput):
                s.plan_restore(1)
    with engine.session("P") as s:
        s.plan_verify(repair=True).apply()
    with engine.session("P") as s:
        if forge:
            assert s.state.replication(1).status == "invalid"
            s.plan_delete(1).apply()
        assert s.state.replication(1) is None
    assert z.guid("tank/db@pitcopy-P-01") == theirs
    assert engine.store.load("P").replication(2).status == "valid" and "tank/db@pitcopy-P-02" in z.objs
    # the next copy would land on that name (the freed target pool): their
    # snapshot, marks or not, is no copy any record has; the copy is refused
    # before a snapshot is taken, and theirs is left alone
    before = sorted(z.objs)
    with engine.session("P") as s:
        with pytest.raises(NoEligibleTarget) as exc:
            s.plan_copy().apply()
    assert "tank/db@pitcopy-P-01: %s" % ("holds a copy with the mark of pool P that no record of the pool has"
                                         if forge else "exists and is not a copy of pool P") in exc.value.msg
    assert z.guid("tank/db@pitcopy-P-01") == theirs and sorted(z.objs) == before
    assert engine.store.load("P").last_version == 2 and engine.store.load("P").journal is None


def test_zfs_send_target_holding_a_copy_no_record_has_is_never_overwritten(tmp_path):
    """A received dataset with our marks in a target pool, named by no
    record (a state file lost or put back, a look-alike): the copy is
    refused before anything is sent, instead of destroying it at
    promotion."""
    z = _zfs()
    z.add("bk")
    theirs = z.add("bk/db", {"pitcopy:pool": "P", "pitcopy:version": "7", "pitcopy:source": "tank/db"})
    d = PoolDefinition(name="P", technology="zfs_send", sources=("tank/db",), versions=1,
                       target_pools=(TargetPool("01", ("bk/db",)),))
    engine = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: ZfsSendBackend(runner=z),
                          clock=FakeClock(), window_factory=SimpleWindow)
    with engine.session("P") as s:
        s.plan_define(d).apply()
    before = list(z.calls)
    with engine.session("P") as s:
        with pytest.raises(NoEligibleTarget) as exc:
            s.plan_copy()
    assert "bk/db: holds a copy with the mark of pool P that no record of the pool has" in exc.value.msg
    assert [c[1] for c in z.calls[len(before):]] == ["get"] * (len(z.calls) - len(before))
    assert z.guid("bk/db") == theirs and engine.store.load("P").last_version == 0
