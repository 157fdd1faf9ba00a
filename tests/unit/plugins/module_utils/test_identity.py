# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The records and the storage agree on identity: the record codec, the
engine's decisions (memory backend) and the LVM/ZFS parsing of the
identities (replayed tool output; those backends run only in the VM)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, StateFileError
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import LvmCloneBackend, LvmSnapshotBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    CopyPair,
    PoolDefinition,
    PoolState,
    Record,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._store import (
    StateStore,
    dump_state,
    load_state,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import FakeClock, MemoryBackend, SimpleWindow
from ansible_collections.pitcopy.versions.tests.unit.plugins.module_utils.utils import (
    repair_learns_identities,
    without_identities,
)

# --- the record codec -------------------------------------------------------


def _state(pairs):
    d = PoolDefinition(name="P", technology="lvm_clone", sources=tuple(p.source for p in pairs), versions=1,
                       target_pools=(TargetPool("01", tuple(p.target for p in pairs)),))
    rec = Record("replication", 1, "01", "2026-11-30T00:00:00Z", tuple(pairs), label=None)
    return PoolState(definition=d, replication_records=(rec,), last_version=1)


def _roundtrip(state, tmp_path):
    store = StateStore(str(tmp_path / "state"))
    store.save(state)
    text = store.read_raw("P").decode("utf-8")
    return text, store.load("P")


def test_identities_are_a_literal_block_and_read_back(tmp_path):
    pairs = (CopyPair("vg/A", "vg/a", "2mJbLZ-8B5O-rUqZ-0ckl-9GEJ-GXtF-3sRFHn"), CopyPair("vg/B", "vg/b"))
    text, back = _roundtrip(_state(pairs), tmp_path)
    assert "  identities: |\n    vg/a 2mJbLZ-8B5O-rUqZ-0ckl-9GEJ-GXtF-3sRFHn\n" in text
    assert [(p.source, p.target, p.identity) for p in back.replication_records[0].pairs] == [
        ("vg/A", "vg/a", "2mJbLZ-8B5O-rUqZ-0ckl-9GEJ-GXtF-3sRFHn"), ("vg/B", "vg/b", None)]


def test_a_file_without_identities_loads_and_stays_without(tmp_path):
    pairs = (CopyPair("vg/A", "vg/a"),)
    text, back = _roundtrip(_state(pairs), tmp_path)
    assert "identities" not in text
    assert back.replication_records[0].pairs[0].identity is None


def test_identities_that_cannot_be_a_block_are_a_mapping():
    pairs = (CopyPair("vg/A", "vg/a", "has blank"),)
    data = dump_state(_state(pairs))
    assert data["replication_records"][0]["identities"] == {"vg/a": "has blank"}
    assert load_state(data).replication_records[0].pairs[0].identity == "has blank"


@pytest.mark.parametrize("identities,problem", [
    ("vg/zz 1234\n", "not a target"),
    ("no-blank-here\n", "not of the form"),
    (17, "expected a block"),
])
def test_identities_of_a_wrong_shape_are_refused(identities, problem):
    data = dump_state(_state((CopyPair("vg/A", "vg/a", "x"),)))
    data["replication_records"][0]["identities"] = identities
    with pytest.raises(StateFileError) as exc:
        load_state(data)
    assert problem in exc.value.msg and "identities" in exc.value.msg


# --- the engine (memory backend) ------------------------------------------------


def _env(tmp_path, technology="lvm_clone"):
    be = MemoryBackend(technology)
    for n in ("vg/A", "vg/a", "vg/b"):
        be.add_volume(n)
    be.set_data("vg/A", "A@1")
    engine = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: be, clock=FakeClock(),
                          window_factory=SimpleWindow)
    d = PoolDefinition(name="P", technology=technology, sources=("vg/A",), versions=2,
                       target_pools=(TargetPool("01", ("vg/a",)), TargetPool("02", ("vg/b",))))
    with engine.session("P") as s:
        s.plan_define(d).apply()
    return be, engine


def _copy(engine, be, data, label=None):
    be.set_data("vg/A", data)
    with engine.session("P") as s:
        return s.plan_copy(label=label).apply()


def test_records_carry_the_identity_of_each_copy(tmp_path):
    be, engine = _env(tmp_path)
    _copy(engine, be, "A@1")
    pair = engine.store.load("P").replication(1).pairs[0]
    assert pair.identity == be.copies["vg/a"]["id"]


def _older_state_file_put_back(tmp_path):
    """Versions 1 to 3 copied, then the state file as it was after version 1
    put back (a restored backup): its last_version is behind the copies."""
    be, engine = _env(tmp_path)
    _copy(engine, be, "A@1")
    saved = engine.store.read_raw("P")
    _copy(engine, be, "A@2")
    _copy(engine, be, "A@3")
    with open(engine.store.path("P"), "wb") as fh:
        fh.write(saved)
    return be, engine


def test_an_older_state_file_never_lowers_the_version_number(tmp_path):
    be, engine = _older_state_file_put_back(tmp_path)
    with engine.session("P") as s:
        found = s.plan_verify().result["findings"]
    assert ("last_version_behind", 3) in [(f["problem"], f["version"]) for f in found]
    result = _copy(engine, be, "X4", label="X4")
    assert result["version"]["number"] == 4
    assert "numbered 4" in result["warnings"][0]
    state = engine.store.load("P")
    assert state.last_version == 4
    assert be.copy_data(state.replication(4).pairs[0].target) == "X4"


def test_repair_raises_last_version(tmp_path):
    be, engine = _older_state_file_put_back(tmp_path)
    with engine.session("P") as s:
        result = s.plan_verify(repair=True).apply()
    assert "raised last_version from 1 to 3" in [f for f in result["findings"]
                                                 if f["problem"] == "last_version_behind"][0]["action"]
    assert engine.store.load("P").last_version == 3


def _swap(be, target):
    """Another volume takes the copy's place, under our tags (a forged or
    stale mark): only the identity tells it apart."""
    be.copies[target] = dict(be.copies[target], id="someone-else", data="theirs")


def test_rotation_refuses_a_copy_that_is_not_the_recorded_one(tmp_path):
    be, engine = _env(tmp_path)
    _copy(engine, be, "A@1")
    _copy(engine, be, "A@2")
    _swap(be, "vg/a")
    with engine.session("P") as s:
        found = s.plan_verify().result["findings"]
        assert [(f["version"], f["problem"]) for f in found] == [(1, "copy_identity_mismatch")]
        with pytest.raises(InvalidInput) as exc:
            s.plan_copy()
    assert "copy_identity_mismatch" in exc.value.msg and "nothing was changed" in exc.value.msg
    assert be.copy_data("vg/a") == "theirs"


def test_restore_refuses_and_delete_skips_a_copy_that_is_not_the_recorded_one(tmp_path):
    be, engine = _env(tmp_path)
    _copy(engine, be, "A@1")
    _swap(be, "vg/a")
    with engine.session("P") as s:
        with pytest.raises(InvalidInput):
            s.plan_restore(1)
        s.plan_verify(repair=True).apply()
        assert s.state.replication(1).status == "invalid"
        s.plan_delete(1).apply()
        assert s.state.replication(1) is None
    assert be.copy_data("vg/a") == "theirs"
    assert be.data["vg/A"] == "A@1"


def test_records_without_identities_learn_them_from_verify(tmp_path):
    be, engine = _env(tmp_path)
    _copy(engine, be, "A@1")
    state = engine.store.load("P")
    engine.store.save(without_identities(state))
    repair_learns_identities(engine)
    assert engine.store.load("P").replication(1).pairs[0].identity == be.copies["vg/a"]["id"]


# --- LVM: lv_uuid from the lvs report the backend already runs ---------------------

_LVS_ROW = {"vg_name": "vg0", "lv_attr": "-wi-a-----", "lv_size": "1073741824", "origin": "", "pool_lv": "",
            "segtype": "linear", "data_percent": "", "metadata_percent": "", "snap_percent": "",
            "lv_metadata_size": "", "lv_kernel_minor": "3", "vg_extent_size": "4194304",
            "vg_free": "5364514816", "vg_size": "10733223936"}


class FakeLvm:
    """Replays ``lvs --reportformat json`` (as lvm2 2.03 prints it) over a
    dict of rows; records the commands of the ``lvm`` shell batch."""

    def __init__(self, rows):
        self.rows = rows
        self.batches = []

    def run(self, argv, data=None, check=True):
        if argv[0] == "lvs":
            assert "lv_uuid" in argv[argv.index("-o") + 1].split(",")
            return 0, json.dumps({"report": [{"lv": list(self.rows.values())}]}, indent=2), ""
        if argv == ["lvm"]:
            script = data.decode("utf-8")
            self.batches.append(script)
            for line in script.splitlines():
                words = line.split()
                if words[:1] == ["lvremove"]:
                    self.rows.pop(words[-1], None)
                if words[:1] == ["lvchange"] and "--deltag" in words:
                    row = self.rows[words[-1]]
                    tag = words[words.index("--deltag") + 1]
                    row["lv_tags"] = ",".join(t for t in row["lv_tags"].split(",") if t != tag)
            return 0, "", ""
        raise AssertionError("unexpected command %r" % (argv,))


def _lv(name, tags, uuid, attr="-wi-a-----"):
    return dict(_LVS_ROW, lv_name=name, lv_tags=tags, lv_uuid=uuid, lv_attr=attr)


def test_lvm_list_copies_reports_the_lv_uuid():
    rows = {"vg0/data": _lv("data", "", "aB3dEf-1234-5678-9abc-def0-1234-567890"),
            "vg0/data_P_01": _lv("data_P_01", "pitcopy_pool=P,pitcopy_version=3,pitcopy_source=vg0/data",
                                 "2mJbLZ-8B5O-rUqZ-0ckl-9GEJ-GXtF-3sRFHn", attr="swi-a-s---")}
    rows["vg0/data_P_01"]["origin"] = "data"
    copies = LvmSnapshotBackend(runner=FakeLvm(rows)).list_copies("P")
    assert [(c.target, c.version, c.identity) for c in copies] == [
        ("vg0/data_P_01", 3, "2mJbLZ-8B5O-rUqZ-0ckl-9GEJ-GXtF-3sRFHn")]


@pytest.mark.parametrize("recorded,removed", [
    ("2mJbLZ-8B5O-rUqZ-0ckl-9GEJ-GXtF-3sRFHn", True),
    ("zzzzzz-zzzz-zzzz-zzzz-zzzz-zzzz-zzzzzz", False),
    (None, True),
])
def test_lvm_deletes_only_the_recorded_lv(recorded, removed):
    rows = {"vg0/data_P_01": _lv("data_P_01", "pitcopy_pool=P,pitcopy_version=3,pitcopy_source=vg0/data",
                                 "2mJbLZ-8B5O-rUqZ-0ckl-9GEJ-GXtF-3sRFHn", attr="swi-a-s---")}
    fake = FakeLvm(rows)
    d = PoolDefinition(name="P", technology="lvm_snapshot", sources=("vg0/data",), versions=1)
    skipped = LvmSnapshotBackend(runner=fake).delete_copies(d, [CopyPair("vg0/data", "vg0/data_P_01", recorded)])
    assert ("vg0/data_P_01" not in fake.rows) is removed
    assert skipped == ([] if removed else ["vg0/data_P_01"])


def test_lvm_clone_keeps_the_tags_of_an_lv_that_is_not_the_recorded_one():
    tags = "pitcopy_pool=P,pitcopy_version=3,pitcopy_source=vg0/data"
    rows = {"vg0/t1": _lv("t1", tags, "2mJbLZ-8B5O-rUqZ-0ckl-9GEJ-GXtF-3sRFHn", attr="-ri-a-----")}
    fake = FakeLvm(rows)
    d = PoolDefinition(name="P", technology="lvm_clone", sources=("vg0/data",), versions=1,
                       target_pools=(TargetPool("01", ("vg0/t1",)),))
    skipped = LvmCloneBackend(runner=fake).delete_copies(d, [CopyPair("vg0/data", "vg0/t1", "other-uuid")])
    assert skipped == ["vg0/t1"] and fake.batches == [] and fake.rows["vg0/t1"]["lv_tags"] == tags


# --- ZFS: guid from the zfs get the backend already runs (zfs_send) ----------------


class FakeZfs:
    """Replays ``zfs get -H -p -o name,property,value,source`` output."""

    def __init__(self, marks, facts):
        self.marks = marks
        self.facts = facts
        self.calls = []

    def run(self, argv, data=None, check=True):
        assert argv[:2] == ["zfs", "get"]
        self.calls.append(argv)
        props = [a for a in argv if "written" in a.split(",")]
        if props:
            assert "guid" in props[0].split(",")
            return 0, self.facts, ""
        return 0, self.marks, ""


def test_zfs_send_list_copies_reports_the_guid():
    marks = ("tank/copies/db\tpitcopy:pool\tP\tlocal\n"
             "tank/copies/db\tpitcopy:version\t3\tlocal\n"
             "tank/copies/db\tpitcopy:source\ttank/db\tlocal\n")
    facts = ("tank/copies/db\ttype\tfilesystem\t-\n"
             "tank/copies/db\twritten\t0\t-\n"
             "tank/copies/db\tguid\t9383620557613843627\t-\n"
             "tank/copies/db@pitcopy-P-v3\ttype\tsnapshot\t-\n"
             "tank/copies/db@pitcopy-P-v3\twritten\t1052672\t-\n"
             "tank/copies/db@pitcopy-P-v3\tguid\t1489216370129395876\t-\n")
    copies = ZfsSendBackend(runner=FakeZfs(marks, facts)).list_copies("P")
    assert [(c.target, c.version, c.valid, c.identity) for c in copies] == [
        ("tank/copies/db", 3, True, "9383620557613843627")]
