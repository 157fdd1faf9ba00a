# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""zfs_snapshot through the engine against the simulated ZFS host
(tests/unit/zfs_host.py): rotation, restore, the refusals and the clean-up
paths, each command checked. The VM suite (tests/real/test_zfs.py) proves
the same against OpenZFS."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import CopyPair, PoolDefinition
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSnapshotBackend
from ansible_collections.pitcopy.versions.tests.unit.zfs_host import ZfsHost


def _setup(tmp_path, versions=2):
    host = ZfsHost()
    for n in ("db", "www", "logs"):
        host.add_filesystem("tank/" + n, data="%s 0" % n)
    eng = RecordEngine(StateStore(str(tmp_path / "state")), lambda tech: ZfsSnapshotBackend(runner=host))
    d = PoolDefinition(name="web", technology="zfs_snapshot", sources=("tank/db", "tank/www"), versions=versions)
    with eng.session("web") as s:
        s.plan_define(d).apply()
    return host, eng, d


def _copy(eng, host, n):
    for src in ("tank/db", "tank/www"):
        host.write(src, "%s v%d" % (src, n))
    with eng.session("web") as s:
        return s.plan_copy().apply()


def test_rotation_restore_and_refusals(tmp_path):
    host, eng, d = _setup(tmp_path)
    b = ZfsSnapshotBackend(runner=host)
    vols = b.discover(["tank/db", "tank/nothere"])
    assert list(vols) == ["tank/db"] and vols["tank/db"].kind == "filesystem" and vols["tank/db"].container == "tank"
    for n in (1, 2, 3):
        res = _copy(eng, host, n)
        assert res["version"]["number"] == n
    # one atomic snapshot command per zpool, staged names then renamed
    snaps = [c for c in host.calls if c[:2] == ["zfs", "snapshot"]]
    assert len(snaps) == 3 and all(c[-1].endswith(".staging-v%d" % (i + 1)) for i, c in enumerate(snaps))
    copies = b.list_copies("web")
    assert sorted(c.version for c in copies) == [2, 2, 3, 3] and not any(c.staged for c in copies)
    with eng.session("web") as s:
        assert s.plan_verify().result["consistent"] is True
    # the older version: a rollback would destroy the newer snapshots: refused
    host.write("tank/db", "changed")
    with eng.session("web") as s:
        with pytest.raises(InvalidInput, match="newer snapshots or bookmarks exist"):
            s.plan_restore(2, volumes=["tank/db"]).apply()
    assert host.ds["tank/db"]["data"] == "changed"
    # the newest: only the changed source is rolled back
    with eng.session("web") as s:
        res = s.plan_restore(3).apply()
    assert res["restored"] == ["tank/db"] and host.ds["tank/db"]["data"] == "tank/db v3"
    rollbacks = [c for c in host.calls if c[:2] == ["zfs", "rollback"]]
    assert len(rollbacks) == 1 and rollbacks[0][2].startswith("tank/db@pitcopy-web-")
    # deleted behind the tool's back: reported, then repaired out of the records
    victim = [c for c in copies if c.version == 2][0].target
    del host.ds[victim]
    with eng.session("web") as s:
        f = s.plan_verify().result
    assert f["consistent"] is False and [(x["version"], x["problem"]) for x in f["findings"]] == [(2, "copy_missing")]
    # a snapshot at one of our names without our mark is never destroyed
    host._add("tank/www@pitcopy-web-09", "snapshot", data="theirs")
    assert b.delete_copies(d, [CopyPair("tank/www", "tank/www@pitcopy-web-09")]) == ["tank/www@pitcopy-web-09"]
    assert "tank/www@pitcopy-web-09" in host.ds
    with eng.session("web") as s:
        s.plan_delete(3).apply()
    assert sorted(c.version for c in b.list_copies("web")) == [2]
    with eng.session("web") as s:
        s.plan_remove(remove_copies=True).apply()
    assert b.list_copies("web") == []


def test_a_failed_snapshot_leaves_nothing(tmp_path):
    host, eng, d = _setup(tmp_path)
    _copy(eng, host, 1)
    before = host.state()
    b = ZfsSnapshotBackend(runner=host)
    pairs = [CopyPair("tank/db", b.implied_target("web", "02", "tank/db")),
             CopyPair("tank/www", b.implied_target("web", "02", "tank/www"))]
    # somebody else's snapshot at the staging name: the copy does not start
    host._add(b.staging_name(pairs[0].target, 2), "snapshot", data="theirs")
    with pytest.raises(CopyFailed, match="without this copy pool's mark"):
        b.create_copies(d, 2, pairs, None)
    del host.ds[b.staging_name(pairs[0].target, 2)]
    assert host.state() == before
    # the source vanished: zfs refuses the whole atomic snapshot
    del host.ds["tank/www"]
    with pytest.raises(CopyFailed, match="one atomic zfs snapshot for zpool tank") as exc:
        b.create_copies(d, 2, pairs, None)
    assert "dataset does not exist" in exc.value.msg
    assert not [n for n in host.ds if ".staging-" in n]


@pytest.mark.parametrize("name,match", [
    ("-tank/x", "does not start with a zpool name"),
    ("", "not a ZFS dataset name"),
    ("tank/a b", "not a ZFS dataset name|does not accept"),
    ("tank/" + "x" * 260, "characters long"),
])
def test_dataset_names_are_validated(name, match):
    b = ZfsSnapshotBackend(runner=ZfsHost())
    with pytest.raises(InvalidInput, match=match):
        b.validate_source_name(name)


def test_consistency_freeze_and_bad_pool_names_are_refused():
    b = ZfsSnapshotBackend(runner=ZfsHost())
    with pytest.raises(InvalidInput, match="ZFS filesystems cannot be frozen"):
        b.validate_definition(PoolDefinition(name="p", technology="zfs_snapshot", sources=("tank/a",), versions=1,
                                             consistency="freeze"))
    with pytest.raises(InvalidInput, match="cannot be part of a ZFS snapshot name"):
        b.implied_target("bad name", "01", "tank/a")
    with pytest.raises(InvalidInput, match="is not a snapshot name"):
        b.validate_target_name("tank/a")


def test_dataset_names_as_the_real_suite_checks_them():
    """tests/real/test_zfs.py::test_names_are_validated (it needs no tool)."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend, validate_dataset_name

    for bad in ("tank/../x", "tank/a b", "tank/a;rm -rf /", "tank/$(id)", "-tank/a", "tank/a\nb", "tank//a",
                "tank/a@snap", "", "1tank/a", "tank/a`id`", "tank/a/", "tank/a|b", None, "tank/" + "x" * 300):
        with pytest.raises(InvalidInput) as exc:
            validate_dataset_name(bad)
        assert repr(bad) in exc.value.msg
    for good in ("tank", "tank/a", "tank/a-b_c.d:e/f"):
        validate_dataset_name(good)
    with pytest.raises(InvalidInput):
        ZfsSendBackend().validate_target_name("tank")


def test_hold_is_a_zfs_hold_and_check_mode_only_reads(tmp_path):
    """state=held runs ``zfs hold pitcopy`` on each snapshot once; its
    plan (check mode) runs only ``zfs get`` / ``zfs holds``; a held snapshot
    refuses ``zfs destroy`` (as OpenZFS does: tests/real/test_zfs.py), so
    a forced delete releases it first."""
    from ansible_collections.pitcopy.versions.plugins.module_utils._runner import is_read_only
    host, eng, d = _setup(tmp_path)
    _copy(eng, host, 1)
    host.calls[:] = []
    with eng.session("web") as s:
        plan = s.plan_hold(1, held=True, reason="audit")
    assert plan.changed and all(is_read_only(c) for c in host.calls)
    host.calls[:] = []
    plan.apply()
    holds = [c for c in host.calls if c[:2] == ["zfs", "hold"]]
    assert holds == [["zfs", "hold", "pitcopy", "tank/db@pitcopy-web-01"],
                     ["zfs", "hold", "pitcopy", "tank/www@pitcopy-web-01"]]
    host.calls[:] = []
    with eng.session("web") as s:
        assert not s.plan_hold(1, held=True, reason="audit").changed
    # the idempotence check asks the storage, reading only
    assert ["zfs", "holds", "-H", "tank/db@pitcopy-web-01", "tank/www@pitcopy-web-01"] in host.calls
    assert all(is_read_only(c) for c in host.calls)
    rc, _out, err = host.run(["zfs", "destroy", "tank/db@pitcopy-web-01"], check=False)
    assert rc == 1 and "dataset is busy" in err
    host.run(["zfs", "release", "pitcopy", "tank/db@pitcopy-web-01"])
    with eng.session("web") as s:
        found = s.plan_verify().result["findings"]
    assert [(f["problem"], f["target"]) for f in found] == [("hold_not_enforced", "tank/db@pitcopy-web-01")]
    with eng.session("web") as s:
        s.plan_verify(repair=True).apply()
    assert host.ds["tank/db@pitcopy-web-01"]["holds"] == ["pitcopy"]
    with eng.session("web") as s:
        s.plan_delete(1, force=True).apply()
    assert "tank/db@pitcopy-web-01" not in host.ds and "tank/www@pitcopy-web-01" not in host.ds
