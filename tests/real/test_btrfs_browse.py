# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Browsing a version (state=mounted/unmounted) and restoring files from it
(state=restored with paths, restore_to) on real btrfs (issue 17, items 2
and 3): the record engine, as the module drives it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import subprocess

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._browse import mount_at
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.tests.real.test_btrfs import World, btrfs, read, write
from ansible_collections.pitcopy.versions.tests.utils.trees import tree

pytestmark = pytest.mark.btrfs


def plan(w, method, *args, **kw):
    with w.engine.session(w.name) as s:
        return getattr(s, method)(*args, **kw)


def state_bytes(w):
    with open(w.store.path(w.name), "rb") as fh:
        return fh.read()


def refused(w, method, *args, **kw):
    """The msg of an InvalidInput; the state file and the live data as before."""
    before = state_bytes(w)
    with pytest.raises(InvalidInput) as exc:
        plan(w, method, *args, **kw).apply()
    assert state_bytes(w) == before
    return exc.value.msg


def test_files_restored_in_place_and_elsewhere_and_a_version_browsed(fs_pair, runner, tmp_path):
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, "btrfs_snapshot")
    a = w.add_source("a")
    w.versions = 2
    w.define()
    os.makedirs(os.path.join(a, "etc", "app"))
    write(os.path.join(a, "etc", "app", "app.conf"), "v1 conf\n")
    write(os.path.join(a, "etc", "app", "keep.conf"), "v1 keep\n")
    write(os.path.join(a, "etc", "hosts"), "v1 hosts\n")
    os.chown(os.path.join(a, "etc", "app", "app.conf"), 1234, 4321)
    os.chmod(os.path.join(a, "etc", "app", "app.conf"), 0o640)
    os.setxattr(os.path.join(a, "etc", "app", "app.conf"), "user.origin", b"v1")
    os.symlink("/etc/passwd", os.path.join(a, "evil"))
    w.copy()
    snap = w.state().replication(1).pairs[0].target
    # since version 1: a file deleted, a neighbour changed, the directory changed
    os.unlink(os.path.join(a, "etc", "hosts"))
    write(os.path.join(a, "etc", "app", "keep.conf"), "changed since\n")
    write(os.path.join(a, "etc", "app", "new.conf"), "added since\n")

    # check mode (a plan not applied) lists what would change, changes nothing
    p = plan(w, "plan_restore_paths", 1, ["etc/hosts"])
    assert p.changed is True
    assert [i["changes"] for i in p.result["restored_paths"]] == [["etc/hosts: missing"]]
    assert not os.path.exists(os.path.join(a, "etc", "hosts"))

    # a deleted file restored in place; its changed neighbours stay as they are
    out = plan(w, "plan_restore_paths", 1, ["etc/hosts"]).apply()
    assert out["restored"] == [a]
    assert read(os.path.join(a, "etc", "hosts")) == "v1 hosts\n"
    assert read(os.path.join(a, "etc", "app", "keep.conf")) == "changed since\n"
    assert read(os.path.join(a, "etc", "app", "new.conf")) == "added since\n"
    assert not [n for n in os.listdir(os.path.join(a, "etc")) if n.startswith(".pitcopy-restore.")]
    assert plan(w, "plan_restore_paths", 1, ["etc/hosts"]).changed is False

    # a directory restored to another directory: byte-identical, owners, modes, xattrs
    restore_to = src.path("compare")
    out = plan(w, "plan_restore_paths", 1, ["etc/app"], restore_to=restore_to).apply()
    assert out["restore_to"] == restore_to
    assert tree(os.path.join(restore_to, "etc", "app")) == tree(os.path.join(snap, "etc", "app"))
    assert tree(os.path.join(restore_to, "etc", "app"))["app.conf"][2:] == (
        0o100640, 1234, 4321, {"user.origin": b"v1"})
    assert read(os.path.join(a, "etc", "app", "keep.conf")) == "changed since\n"  # production untouched
    assert plan(w, "plan_restore_paths", 1, ["etc/app"], restore_to=restore_to).changed is False

    # bad input: refused naming the value, nothing changed
    assert "'../etc'" in refused(w, "plan_restore_paths", 1, ["../etc"])
    assert "'/etc/passwd' is absolute" in refused(w, "plan_restore_paths", 1, ["/etc/passwd"])
    assert "symlink" in refused(w, "plan_restore_paths", 1, ["evil"])
    assert "inside source directory" in refused(w, "plan_restore_paths", 1, ["etc"], restore_to=os.path.join(a, "x"))
    assert "does not exist (is its filesystem mounted?)" in refused(
        w, "plan_restore_paths", 1, ["etc"], restore_to="/nonexistent-pitcopy/mnt/x")
    assert "'etc/nothing' is in no copy" in refused(w, "plan_restore_paths", 1, ["etc/nothing"])

    # browse: read-only, idempotent, one path at a time, rotation refused, unmounted clean
    where = str(tmp_path / "browse")
    out = plan(w, "plan_mount", 1, where).apply()
    try:
        assert out["mounts"] == [{"source": a, "path": os.path.join(where, "a")}]
        assert read(os.path.join(where, "a", "etc", "hosts")) == "v1 hosts\n"
        assert "ro" in mount_at(os.path.join(where, "a"))["options"]
        with pytest.raises(OSError) as err:
            write(os.path.join(where, "a", "etc", "hosts"), "x")
        assert err.value.errno == errno.EROFS
        assert plan(w, "plan_mount", 1, where).changed is False
        assert "mounted at %s already" % where in refused(w, "plan_mount", 1, str(tmp_path / "other"))
        assert "is mounted at %s" % where in refused(w, "plan_delete", 1)
        # a copy restored from while mounted reads the same
        assert plan(w, "plan_restore_paths", 1, ["etc/hosts"]).changed is False
        # an unmount behind our back: verify_records reports the stale mount
        subprocess.check_call(["umount", os.path.join(where, "a")])
        stale = [f for f in w.verify()["findings"] if f["problem"] == "stale_mount"]
        assert [(f["version"], f["target"]) for f in stale] == [(1, os.path.join(where, "a"))]
        assert plan(w, "plan_mount", 1, where).apply()["mounts"][0]["path"] == os.path.join(where, "a")
    finally:
        out = plan(w, "plan_unmount", 1).apply()
    assert mount_at(os.path.join(where, "a")) is None and os.listdir(where) == []
    assert w.state().replication(1).mounted is None
    assert plan(w, "plan_unmount", 1).changed is False
    assert not [f for f in w.verify()["findings"] if f["problem"] == "stale_mount"]

    # a version whose copies were deleted behind our back
    btrfs("property", "set", "-ts", snap, "ro", "false")
    btrfs("subvolume", "delete", snap)
    assert "deleted behind our back" in refused(w, "plan_restore_paths", 1, ["etc/hosts"])
    assert "deleted behind our back" in refused(w, "plan_mount", 1, where)


def test_datasets_inventory_which_versions_hold_one_and_a_file_restored_by_dataset_path(fs_pair, runner, tmp_path):
    """Issue 17 item 1 on real btrfs: dataset db lies on source a (its
    directory pg/data), dataset web on source b; versions record them,
    the pool's info answers which versions hold db and since when, and a
    file comes back by its path in the dataset, in place and elsewhere."""
    from dataclasses import replace

    from ansible_collections.pitcopy.versions.plugins.module_utils._model import Dataset

    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, "btrfs_snapshot")
    a = w.add_source("a")
    b = w.add_source("b")
    data = os.path.join(a, "pg", "data")
    os.makedirs(os.path.join(data, "base"))
    os.makedirs(os.path.join(b, "www"))
    w.versions = 2

    def define(datasets):
        with w.engine.session(w.name) as s:
            return s.plan_define(replace(w.definition(), datasets=tuple(Dataset(n, p) for n, p in datasets))).apply()

    # a path on no source: the btrfs directory holding the sources, another filesystem
    for path in (src.path("vol"), str(tmp_path)):
        with pytest.raises(InvalidInput) as exc:
            define([("db", path)])
        assert "path %s of dataset db lies on none of the source volumes" % path in exc.value.msg
    assert w.store.pool_names() == []

    out = define([("db", data)])
    assert out["pool"]["datasets"] == [{"name": "db", "path": data, "sources": [a],
                                        "places": [{"source": a, "path": "pg/data", "at": ""}]}]
    write(os.path.join(data, "base", "1"), "base v1\n")
    write(os.path.join(data, "base", "2"), "neighbour v1\n")
    v1 = w.copy()
    # web is named after version 1: only version 2 holds it
    define([("db", data), ("web", os.path.join(b, "www"))])
    write(os.path.join(data, "base", "1"), "base v2\n")
    v2 = w.copy()
    assert [d["name"] for d in v1["version"]["datasets"]] == ["db"]
    assert [(d["name"], d["sources"]) for d in v2["version"]["datasets"]] == [("db", [a]), ("web", [b])]
    with w.engine.session(w.name, shared=True) as s:
        info = s.info(dataset="db")
    assert [v["version"] for v in info["dataset"]["versions"]] == [1, 2]
    assert info["dataset"]["since"] == v1["version"]["created"]
    assert info["dataset"]["versions"][1]["created"] == v2["version"]["created"]
    with w.engine.session(w.name, shared=True) as s:
        assert [v["version"] for v in s.info(dataset="web")["dataset"]["versions"]] == [2]

    # since version 1: base/1 and its neighbour base/2 changed
    write(os.path.join(data, "base", "2"), "neighbour changed since\n")
    out = plan(w, "plan_restore_paths", 1, ["base/1"], dataset="db").apply()
    assert [(i["source"], i["path"], i["dataset"], i["destination"]) for i in out["restored_paths"]] == [
        (a, "base/1", "db", os.path.join(data, "base", "1"))]
    assert read(os.path.join(data, "base", "1")) == "base v1\n"
    assert read(os.path.join(data, "base", "2")) == "neighbour changed since\n"
    assert plan(w, "plan_restore_paths", 1, ["base/1"], dataset="db").changed is False
    # to another directory, in the dataset's layout
    restore_to = src.path("compare")
    plan(w, "plan_restore_paths", 1, ["base/2"], restore_to=restore_to, dataset="db").apply()
    assert read(os.path.join(restore_to, "base", "2")) == "neighbour v1\n"
    assert read(os.path.join(data, "base", "2")) == "neighbour changed since\n"  # production untouched
    assert "'../x'" in refused(w, "plan_restore_paths", 1, ["../x"], dataset="db")
    assert "'nope'" in refused(w, "plan_restore_paths", 1, ["x"], dataset="nope")
    assert "does not hold dataset web" in refused(w, "plan_restore_paths", 1, ["x"], dataset="web")
    assert "'base/none' is not in dataset db" in refused(w, "plan_restore_paths", 1, ["base/none"], dataset="db")

    # browsing: where each dataset reads in the mounted version
    where = str(tmp_path / "browse")
    out = plan(w, "plan_mount", 2, where).apply()
    try:
        assert [(d["name"], d["path"]) for d in out["datasets"]] == [
            ("db", os.path.join(where, "a", "pg", "data")), ("web", os.path.join(where, "b", "www"))]
        assert read(os.path.join(out["datasets"][0]["path"], "base", "1")) == "base v2\n"
    finally:
        plan(w, "plan_unmount", 2).apply()
