# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Datasets (issue 17 item 1): the source dataset inventory and the backup
dataset inventory per version, what needs no storage: the model and the
state file (round trip, strict loading, older files unchanged), the
backend's default ``locate_path`` on directories of tmp_path, and the
engine (resolved at definition, re-checked before each copy, which kept
versions hold a dataset). Real btrfs: tests/real/test_btrfs_browse.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
from dataclasses import replace

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, StateFileError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    Dataset,
    DatasetPlace,
    PoolDefinition,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._store import dump_state, load_state
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine

GIB = 1 << 30


def _env(tmp_path, datasets=()):
    """Sources vg/A and vg/B "mounted" at tmp_path/a and tmp_path/b."""
    be = MemoryBackend("lvm_clone")
    for name in ("vg/A", "vg/B", "vg/a", "vg/b", "vg/c", "vg/d"):
        be.add_volume(name, size=GIB)
    dirs = {"vg/A": tmp_path / "a", "vg/B": tmp_path / "b"}
    for d in dirs.values():
        d.mkdir()
    be.source_directory = lambda definition, source: str(dirs[source]) if source in dirs else None
    engine = make_engine(tmp_path / "state", be)
    return engine, be, dirs


def _definition(datasets=()):
    return PoolDefinition(name="P", technology="lvm_clone", sources=("vg/A", "vg/B"), versions=2,
                          target_pools=(TargetPool("01", ("vg/a", "vg/b")), TargetPool("02", ("vg/c", "vg/d"))),
                          datasets=tuple(Dataset(n, p) for n, p in datasets))


def _define(engine, datasets):
    with engine.session("P") as s:
        return s.plan_define(_definition(datasets)).apply()


def _copy(engine):
    with engine.session("P") as s:
        return s.plan_copy().apply()


def _info(engine, dataset=None):
    with engine.session("P", shared=True) as s:
        return s.info(dataset=dataset)


def test_the_source_dataset_inventory_is_resolved_at_definition(tmp_path):
    engine, be, dirs = _env(tmp_path)
    (dirs["vg/A"] / "pg" / "data").mkdir(parents=True)
    # dataset z spans both sources: vg/B is "mounted" below its directory (Table 3.1's Z)
    dirs["vg/B"].rmdir()
    dirs["vg/B"] = dirs["vg/A"] / "pg" / "data" / "wal"
    dirs["vg/B"].mkdir()
    result = _define(engine, [("x", str(dirs["vg/A"] / "pg") + "/"), ("z", str(dirs["vg/A"] / "pg" / "data"))])
    ds = dict((d["name"], d) for d in result["pool"]["datasets"])
    assert ds["x"]["path"] == str(dirs["vg/A"] / "pg")  # normalized
    assert ds["x"]["sources"] == ["vg/A", "vg/B"]  # vg/B lies below pg too
    assert ds["z"]["sources"] == ["vg/A", "vg/B"]
    assert ds["z"]["places"] == [{"source": "vg/A", "path": "pg/data", "at": ""},
                                 {"source": "vg/B", "path": "", "at": "wal"}]
    # the same options again: nothing changes
    with engine.session("P") as s:
        assert s.plan_define(_definition([("x", str(dirs["vg/A"] / "pg")),
                                          ("z", str(dirs["vg/A"] / "pg" / "data"))])).changed is False


@pytest.mark.parametrize("datasets, words", [
    ([("db", "relative/dir")], ["datasets[0].path", "'relative/dir'", "not an absolute path"]),
    ([("db", "/x/../etc")], ["datasets[0].path", "no '..'"]),
    ([("db", "{a}/pg"), ("db", "{a}")], ["datasets[1]", "dataset name db is used twice"]),
    ([("", "{a}")], ["datasets[0].name", "''"]),
    ([("db", "{tmp}")], ["datasets[0]", "lies on none of the source volumes", "vg/A, vg/B"]),
    ([("db", "{a}/missing")], ["datasets[0]", "not an existing directory"]),
])
def test_bad_datasets_are_refused_naming_them_and_nothing_changes(tmp_path, datasets, words):
    engine, be, dirs = _env(tmp_path)
    (dirs["vg/A"] / "pg").mkdir()
    fill = dict(a=str(dirs["vg/A"]), tmp=str(tmp_path))
    with pytest.raises(InvalidInput) as exc:
        _define(engine, [(n, p.format(**fill)) for n, p in datasets])
    for w in words:
        assert w in exc.value.msg, exc.value.msg
    assert engine.store.pool_names() == []


def test_each_version_records_the_datasets_it_holds_and_info_answers_which(tmp_path):
    engine, be, dirs = _env(tmp_path)
    (dirs["vg/A"] / "pg").mkdir()
    (dirs["vg/B"] / "www").mkdir()
    _define(engine, [("db", str(dirs["vg/A"] / "pg"))])
    v1 = _copy(engine)
    assert [d["name"] for d in v1["version"]["datasets"]] == ["db"]
    # a dataset added later is held from the next version on
    _define(engine, [("db", str(dirs["vg/A"] / "pg")), ("www", str(dirs["vg/B"] / "www"))])
    _copy(engine)
    info = _info(engine, dataset="www")
    assert [r["datasets"] for r in info["replication_records"]][0][0]["name"] == "db"
    assert [v["version"] for v in info["dataset"]["versions"]] == [2]
    created = dict((r["version"], r["created"]) for r in info["replication_records"])
    assert info["dataset"]["since"] == created[2] and info["dataset"]["defined"] is True
    db = _info(engine, dataset="db")["dataset"]
    assert [v["version"] for v in db["versions"]] == [1, 2] and db["since"] == created[1]
    assert db["versions"][0]["sources"] == ["vg/A"] and db["versions"][0]["places"][0]["path"] == "pg"
    # version 3 replaces version 1: the answer follows the kept versions
    _copy(engine)
    assert [v["version"] for v in _info(engine, dataset="db")["dataset"]["versions"]] == [2, 3]
    with pytest.raises(InvalidInput) as exc:
        _info(engine, dataset="nope")
    assert "'nope'" in exc.value.msg and "db, www" in exc.value.msg


def test_a_dataset_gone_before_a_copy_is_said_on_the_version_and_does_not_stop_it(tmp_path):
    engine, be, dirs = _env(tmp_path)
    (dirs["vg/A"] / "pg").mkdir()
    (dirs["vg/B"] / "pg2").mkdir()
    _define(engine, [("db", str(dirs["vg/A"] / "pg")), ("other", str(dirs["vg/B"] / "pg2"))])
    (dirs["vg/B"] / "pg2").rmdir()
    result = _copy(engine)
    assert [d["name"] for d in result["version"]["datasets"]] == ["db"]
    assert any("dataset other" in w and "lies on no source volume" in w for w in result["version"]["warnings"])
    assert _info(engine, dataset="other")["dataset"]["versions"] == []


def test_a_dataset_that_moved_is_held_where_it_lies_now(tmp_path):
    engine, be, dirs = _env(tmp_path)
    (dirs["vg/A"] / "pg").mkdir()
    _define(engine, [("db", str(dirs["vg/A"] / "pg"))])
    # vg/B is now "mounted" at a/pg: the dataset's directory is vg/B's root
    dirs["vg/B"] = dirs["vg/A"] / "pg"
    result = _copy(engine)
    (ds,) = result["version"]["datasets"]
    assert ds["sources"] == ["vg/B"] and ds["places"] == [{"source": "vg/B", "path": "", "at": ""}]
    assert any("lies on vg/B now, not on vg/A" in w for w in result["version"]["warnings"])


def test_locate_path_counts_a_source_only_on_its_own_device(tmp_path, monkeypatch):
    engine, be, dirs = _env(tmp_path)
    (dirs["vg/A"] / "sub").mkdir()
    d = _definition()
    assert be.locate_path(d, str(dirs["vg/A"] / "sub")) == [DatasetPlace("vg/A", "sub", "")]
    assert be.locate_path(d, str(dirs["vg/A"])) == [DatasetPlace("vg/A", "", "")]
    assert be.locate_path(d, str(tmp_path)) == []
    assert be.locate_path(d, str(tmp_path / "missing")) == []
    # another filesystem (a nested subvolume, a child dataset) in between: not vg/A's
    import os
    real_stat = os.stat

    def fake_stat(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        if str(path).startswith(str(dirs["vg/A"] / "sub")):
            return os.stat_result((st.st_mode, st.st_ino, st.st_dev + 1) + tuple(st)[3:])
        return st

    monkeypatch.setattr(os, "stat", fake_stat)
    assert be.locate_path(d, str(dirs["vg/A"] / "sub")) == []


def _state(tmp_path, with_datasets=True):
    engine, be, dirs = _env(tmp_path)
    (dirs["vg/A"] / "pg").mkdir()
    _define(engine, [("db", str(dirs["vg/A"] / "pg"))] if with_datasets else [])
    _copy(engine)
    return engine.store.load("P")


def test_datasets_round_trip_through_the_state_file(tmp_path):
    state = _state(tmp_path)
    assert state.definition.datasets[0].places == (DatasetPlace("vg/A", "pg", ""),)
    assert state.replication(1).datasets == state.definition.datasets
    assert load_state(dump_state(state)) == state


def test_a_file_without_datasets_has_no_datasets_key(tmp_path):
    state = _state(tmp_path, with_datasets=False)
    raw = dump_state(state)
    assert "datasets" not in raw["definition"]
    assert all("datasets" not in r for r in raw["replication_records"])
    assert load_state(raw) == state


@pytest.mark.parametrize("edit, words", [
    (lambda raw: raw["definition"]["datasets"][0].update(path="pg"), ["definition.datasets[0]", "absolute"]),
    (lambda raw: raw["definition"]["datasets"][0].update(extra=1), ["unknown key(s) 'extra'"]),
    (lambda raw: raw["definition"]["datasets"][0].pop("places"), ["missing key(s) places"]),
    (lambda raw: raw["definition"]["datasets"][0]["places"][0].update(path="../etc"),
     ["places[0].path", "'../etc'"]),
    (lambda raw: raw["definition"].update(datasets=[]), ["definition.datasets", "empty list"]),
    (lambda raw: raw["replication_records"][0]["datasets"][0].update(name=3), ["replication_records[0].datasets[0]"]),
    (lambda raw: raw["prepairing_records"].append(dict(version=9, target_pool="01", created="x", pairs=[],
                                                       datasets=[])), ["unknown key(s) 'datasets'"]),
])
def test_damaged_datasets_are_refused_not_guessed(tmp_path, edit, words):
    raw = copy.deepcopy(dump_state(_state(tmp_path)))
    edit(raw)
    with pytest.raises(StateFileError) as exc:
        load_state(raw)
    for w in words:
        assert w in exc.value.msg, exc.value.msg


def test_a_record_of_a_repair_holds_the_source_dataset_inventory(tmp_path):
    # _commit without datasets (verify_records repair finishing a journal):
    # the inventory of the definition, limited to the sources copied
    from ansible_collections.pitcopy.versions.plugins.module_utils._engine_datasets import held_datasets
    from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair
    a = Dataset("a", "/a", (DatasetPlace("vg/A"),))
    ab = Dataset("ab", "/a/x", (DatasetPlace("vg/A", "x"), DatasetPlace("vg/B", "", "w")))
    assert held_datasets((a, ab), (CopyPair("vg/A", "vg/a"),)) == (a,)
    assert held_datasets((a, ab), (CopyPair("vg/A", "vg/a"), CopyPair("vg/B", "vg/b"))) == (a, ab)
    assert held_datasets((replace(a, places=()),), (CopyPair("vg/A", "vg/a"),)) == ()


def test_place_of_maps_dataset_paths_to_their_source():
    from ansible_collections.pitcopy.versions.plugins.module_utils._engine_datasets import place_of
    ds = Dataset("z", "/srv/pg/data", (DatasetPlace("vg/A", "pg/data"), DatasetPlace("vg/B", "", "wal")))
    assert place_of(ds, "base/1") == (ds.places[0], "pg/data/base/1")
    assert place_of(ds, "wal/0001") == (ds.places[1], "0001")
    assert place_of(ds, "walrus") == (ds.places[0], "pg/data/walrus")
