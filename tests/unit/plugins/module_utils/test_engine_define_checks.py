# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What copy_pool refuses when the pool is defined rather than at the first
copy: targets whose type can never receive a copy, and definitions the
backend can never carry out (``validate_definition``, e.g. consistency
freeze). Each refusal names the bad value and what is accepted, and changes
nothing: no state file written, no volume touched."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _lvm
from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import BtrfsSendBackend, BtrfsSnapshotBackend
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput, NoEligibleTarget
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import (
    LvmCloneBackend,
    LvmSnapshotBackend,
    LvmThinBackend,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSendBackend, ZfsSnapshotBackend
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import FakeClock, MemoryBackend, make_engine

GIB = 1 << 30


def host(be):
    """Everything a plan could change on the memory host."""
    return dict(be.volumes), dict(be.copies), dict(be.data), list(be.calls)


def state_bytes(engine, name="P"):
    path = engine.store.path(name)
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def send_env(tmp_path):
    """btrfs_send on the memory host: subvolume sources, and targets that are
    directories or subvolumes (what BtrfsSendBackend.target_kinds says)."""
    be = MemoryBackend("btrfs_send")
    be.extra_target_kinds = {"directory"}
    for name in ("/d/s1", "/d/s2"):
        be.add_volume(name, size=GIB)
    for name in ("/b/t1", "/b/t2", "/b/t3", "/b/t4"):
        be.add_volume(name, size=2 * GIB, kind="directory")  # the memory host checks sizes
    return be, make_engine(tmp_path / "state", be)


def send_def(tp1=("/b/t1", "/b/t2"), tp2=("/b/t3", "/b/t4"), **kw):
    fields = dict(name="P", technology="btrfs_send", sources=("/d/s1", "/d/s2"), versions=2,
                  target_pools=(TargetPool("01", tuple(tp1)), TargetPool("02", tuple(tp2))))
    fields.update(kw)
    return PoolDefinition(**fields)


# --- targets of the wrong type ------------------------------------------------

def refused_at_define(tmp_path, definition, volume, **fields):
    """The msg of the InvalidInput that defining ``definition`` raises once
    ``volume`` (``fields``: its kind, ...) is on the btrfs_send memory host;
    no state file, and nothing changed on the host."""
    be, engine = send_env(tmp_path)
    be.add_volume(volume, **fields)
    before = host(be)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_define(definition)
    assert engine.pool_names() == [] and state_bytes(engine) is None
    assert host(be) == before
    return exc.value.msg


def test_regular_file_target_refused_at_define_naming_accepted_kinds(tmp_path):
    msg = refused_at_define(tmp_path, send_def(tp2=("/b/t3", "/b/file")), "/b/file", size=5, kind="file",
                            technologies=())
    assert msg == (
        "target /b/file of target pool 02 is of kind file, which can never receive a btrfs_send copy; technology "
        "btrfs_send takes targets of kind: directory, subvolume. Choose another target volume")


def test_target_outside_the_technology_refused_at_define(tmp_path):
    # a plain directory on a file system that is not btrfs: the right kind,
    # but discovery says it cannot take part in btrfs_send copies
    msg = refused_at_define(tmp_path, send_def(tp1=("/ext/dir", "/b/t2")), "/ext/dir", size=0, kind="directory",
                            technologies=())
    assert msg == (
        "target /ext/dir of target pool 01 (kind directory) cannot take part in btrfs_send copies (it supports: "
        "none); technology btrfs_send takes targets on storage that supports it. Choose another target volume")


def test_wrong_type_refused_before_foreign_data(tmp_path):
    # a snapshot LV that is not ours is both; its type is the lasting problem
    be = MemoryBackend("lvm_clone")
    for name in ("vg/A", "vg/a", "vg/b"):
        be.add_volume(name, size=GIB)
    be.add_volume("vg/snap", size=GIB, kind="snapshot", technologies=(), foreign_data=True)
    engine = make_engine(tmp_path / "state", be)
    d = PoolDefinition("P", "lvm_clone", ("vg/A",), 1, (TargetPool("01", ("vg/a", "vg/snap")),))
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="target vg/snap of target pool 01 is of kind snapshot, which can "
                                               "never receive a lvm_clone copy; technology lvm_clone takes "
                                               "targets of kind: lv"):
            s.plan_define(d)
    assert engine.pool_names() == [] and be.calls == []


def test_redefinition_with_a_wrong_target_keeps_the_state_file(tmp_path):
    be, engine = send_env(tmp_path)
    be.add_volume("/b/file", size=5, kind="file", technologies=())
    with engine.session("P") as s:
        s.plan_define(send_def()).apply()
    with engine.session("P") as s:
        s.plan_copy(label="one").apply()
    saved = state_bytes(engine)
    before = host(be)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="target /b/file of target pool 02 is of kind file"):
            s.plan_define(send_def(tp2=("/b/t3", "/b/t4", "/b/file")))
    assert state_bytes(engine) == saved
    assert host(be) == before


def test_targets_that_do_not_exist_yet_or_are_created_by_the_copy_are_accepted(tmp_path):
    # zfs_send creates a new dataset below an existing filesystem: discovery
    # reports it with kind new_dataset, which its target_kinds accept
    be = MemoryBackend("zfs_send")
    be.extra_target_kinds = {"new_dataset", "volume"}
    be.add_volume("tank/src", size=GIB)
    be.add_volume("backup/new", size=0, kind="new_dataset")
    engine = make_engine(tmp_path / "state", be)
    d = PoolDefinition("P", "zfs_send", ("tank/src",), 1,
                       (TargetPool("01", ("backup/new", "backup/later")),))
    with engine.session("P") as s:
        s.plan_define(d).apply()
        assert s.info()["target_pools"] == [{"name": "01", "volumes": ["backup/new", "backup/later"], "host": None}]
    # a missing target is left to target selection, which says why
    be.remove_volume("backup/new")
    with engine.session("P") as s:
        with pytest.raises(NoEligibleTarget, match="does not exist on this host"):
            s.plan_copy()


def test_a_target_holding_our_copy_is_never_refused_by_type(tmp_path):
    be, engine = send_env(tmp_path)
    with engine.session("P") as s:
        s.plan_define(send_def()).apply()
    with engine.session("P") as s:
        pairs = s.plan_copy(label="one").apply()["version"]["pairs"]
    ours = pairs[0]["target"]
    assert be.volumes[ours].owner == "P"
    # however discovery reports it now, it holds version 1 of this pool;
    # refusing it would leave a pool that can be neither redefined nor shrunk
    be.update_volume(ours, kind="file", technologies=frozenset())
    with engine.session("P") as s:
        plan = s.plan_define(send_def(consistency="none"))
        assert plan.changed
        plan.apply()
    with engine.session("P") as s:
        assert s.info()["consistency"] == "none"


# --- the backend's own definition checks (validate_definition) -----------------

def _refuse_freeze(definition):
    if definition.consistency == "freeze":
        raise InvalidInput("consistency 'freeze' is not possible for %s in this test" % definition.technology)


def test_backend_definition_check_refuses_before_anything_changes(tmp_path):
    be, engine = send_env(tmp_path)
    be.definition_check = _refuse_freeze
    before = host(be)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="consistency 'freeze' is not possible for btrfs_send"):
            s.plan_define(send_def(consistency="freeze"))
    assert engine.pool_names() == [] and host(be) == before
    with engine.session("P") as s:
        s.plan_define(send_def()).apply()
    saved = state_bytes(engine)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput, match="freeze"):
            s.plan_define(send_def(consistency="freeze"))
    assert state_bytes(engine) == saved and host(be) == before


class NoCommands:
    """A runner for definition checks, which must not run anything."""

    def run(self, argv, data=None, check=True):
        raise AssertionError("definition check ran %r" % (argv,))

    def pipe(self, argvs, check=True):
        raise AssertionError("definition check ran %r" % (argvs,))


REAL = [
    (LvmSnapshotBackend, dict(sources=("vg/db",)), "consistency freeze is not available for lvm_snapshot"),
    (LvmThinBackend, dict(sources=("vg/db",)), "consistency freeze is not available for lvm_thin"),
    (LvmCloneBackend, dict(sources=("vg/db",), target_pools=(TargetPool("01", ("vg/t",)),)),
     "consistency freeze is not available for lvm_clone"),
    (ZfsSnapshotBackend, dict(sources=("tank/db",)), "consistency 'freeze' is not possible for zfs_snapshot"),
    (ZfsSendBackend, dict(sources=("tank/db",), target_pools=(TargetPool("01", ("backup/db",)),)),
     "consistency 'freeze' is not possible for zfs_send"),
    (BtrfsSnapshotBackend, dict(sources=("/srv/db",)), "consistency 'freeze' is not possible for btrfs_snapshot"),
    (BtrfsSendBackend, dict(sources=("/srv/db",), target_pools=(TargetPool("01", ("/backup/db",)),)),
     "consistency 'freeze' is not possible for btrfs_send"),
]


@pytest.mark.parametrize("cls,fields,message", REAL, ids=[c.technology for c, _f, _m in REAL])
def test_real_backends_refuse_freeze_when_the_pool_is_defined(tmp_path, monkeypatch, cls, fields, message):
    monkeypatch.setattr(_lvm, "FREEZE_THEN_SNAPSHOT", False)  # as measured on the 6.1 kernel
    be = cls(runner=NoCommands())
    engine = RecordEngine(StateStore(str(tmp_path / "state"), lock_timeout=5), lambda technology: be,
                          clock=FakeClock())
    d = PoolDefinition(name="P", technology=cls.technology, versions=1, consistency="freeze", **fields)
    with engine.session("P") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_define(d)
    assert message in exc.value.msg
    # it says what to use instead
    assert "auto" in exc.value.msg and "hooks" in exc.value.msg
    assert engine.pool_names() == [] and state_bytes(engine) is None
    # the modes that work pass the backend's check
    for mode in ("auto", "none"):
        be.validate_definition(PoolDefinition(name="P", technology=cls.technology, versions=1, consistency=mode,
                                              **fields))


def test_lvm_definition_check_is_the_copy_time_check(monkeypatch):
    """One message, one place: the refusal at definition is the one
    create_copies would give, and it follows FREEZE_THEN_SNAPSHOT."""
    be = LvmThinBackend(runner=NoCommands())
    d = PoolDefinition(name="P", technology="lvm_thin", sources=("vg/db",), versions=1, consistency="freeze")
    monkeypatch.setattr(_lvm, "FREEZE_THEN_SNAPSHOT", False)
    with pytest.raises(InvalidInput) as at_define:
        be.validate_definition(d)
    with pytest.raises(InvalidInput) as at_copy:
        be._freeze_list(d, {}, [])
    assert at_define.value.msg == at_copy.value.msg
    monkeypatch.setattr(_lvm, "FREEZE_THEN_SNAPSHOT", True)
    be.validate_definition(d)  # a kernel that can: freeze is accepted
