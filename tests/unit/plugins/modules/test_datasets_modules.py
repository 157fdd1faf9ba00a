# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Datasets through the modules (issue 17 item 1): copy_pool ``datasets``,
copy_pool_info ``dataset`` and copy_version ``dataset``'s bad input, on the
memory host whose sources are "mounted" at directories of tmp_path."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.modules import copy_pool, copy_pool_info, copy_version
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import CLONE_POOL


@pytest.fixture
def ds_host(clone_host, tmp_path):
    dirs = {"vg/A": tmp_path / "a", "vg/B": tmp_path / "b"}
    for d in dirs.values():
        (d / "pg").mkdir(parents=True)
    clone_host.backend.source_directory = lambda definition, source: str(dirs[source]) if source in dirs else None
    clone_host.dirs = dirs
    clone_host.pool = dict(CLONE_POOL, datasets=[{"name": "db", "path": str(dirs["vg/A"] / "pg")}])
    return clone_host


def test_datasets_through_copy_pool_and_copy_pool_info(ds_host):
    checked = ds_host.ok(copy_pool, ds_host.pool, check_mode=True)
    assert checked["changed"] is True and checked["pool"]["datasets"][0]["sources"] == ["vg/A"]
    assert ds_host.ok(copy_pool, ds_host.pool)["changed"] is True
    assert ds_host.ok(copy_pool, ds_host.pool)["changed"] is False
    v1 = ds_host.ok(copy_version, {"pool": "tab"})
    assert v1["version"]["datasets"][0]["places"] == [{"source": "vg/A", "path": "pg", "at": ""}]
    info = ds_host.ok(copy_pool_info, {"pool": "tab", "dataset": "db"})["pools"][0]
    assert info["dataset"]["versions"][0]["version"] == 1
    assert info["dataset"]["since"] == info["replication_records"][0]["created"]
    assert info["replication_records"][0]["datasets"][0]["name"] == "db"
    # without the option: no dataset key
    assert "dataset" not in ds_host.ok(copy_pool_info, {"pool": "tab"})["pools"][0]


@pytest.mark.parametrize("module, args, words", [
    (copy_pool_info, {"dataset": "db"}, ["dataset db", "give pool"]),
    (copy_pool_info, {"pool": "tab", "dataset": "nope"}, ["'nope'", "its datasets are: db"]),
    (copy_version, {"state": "restored", "version": 1, "paths": ["../etc"], "dataset": "db"},
     ["'../etc'", "escapes the dataset", "relative to dataset db"]),
    (copy_version, {"state": "restored", "version": 1, "paths": ["/etc/passwd"], "dataset": "db"},
     ["'/etc/passwd'", "is absolute", "relative to dataset db"]),
    (copy_version, {"state": "restored", "version": 1, "paths": ["."], "dataset": "db"},
     ["names the whole dataset"]),
    (copy_version, {"state": "restored", "version": 1, "paths": ["x"], "dataset": "nope"},
     ["'nope'", "its datasets are: db"]),
    (copy_version, {"state": "restored", "version": 1, "paths": ["x"], "dataset": "db", "volumes": ["vg/A"]},
     ["volumes", "dataset db", "do not go together"]),
    (copy_version, {"state": "restored", "version": 1, "paths": ["x"], "dataset": "www"},
     ["version 1", "does not hold dataset www", "versions holding it: 2"]),
])
def test_dataset_bad_input_changes_nothing(ds_host, module, args, words):
    ds_host.ok(copy_pool, ds_host.pool)
    ds_host.ok(copy_version, {"pool": "tab"})
    ds_host.ok(copy_pool, dict(ds_host.pool, datasets=ds_host.pool["datasets"] + [
        {"name": "www", "path": str(ds_host.dirs["vg/B"] / "pg")}]))
    ds_host.ok(copy_version, {"pool": "tab"})
    before = ds_host.snapshot()
    result = ds_host.fail(module, dict(args, pool=args.get("pool", "tab")) if "dataset" in args and
                          module is copy_version else args)
    for w in words:
        assert w in result["msg"], result["msg"]
    assert ds_host.snapshot() == before
