# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A target pool on another host (``host``) is accepted by btrfs_send only,
so far. Every other technology refuses it when the pool is defined, before
the lock and before any command runs, with a message naming the copy pool,
the target pool, the host, the technology and what accepts ``host``; no
state file is written. The real backends, with a runner that fails the
test if anything is run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._backends import backend_class
from ansible_collections.pitcopy.versions.plugins.module_utils._definition import PUSH_TECHNOLOGIES, check_definition
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition, TargetPool
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore
from ansible_collections.pitcopy.versions.plugins.module_utils._technologies import SNAPSHOT_TECHNOLOGIES, TECHNOLOGIES
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import FakeClock


class NoCommands:
    """A runner for definition checks, which must not run anything."""

    def run(self, argv, data=None, check=True):
        raise AssertionError("the definition check ran %r" % (argv,))

    def pipe(self, argvs, check=True):
        raise AssertionError("the definition check ran %r" % (argvs,))


# (technology, source, a local target, a target on the other host)
NAMES = {
    "lvm_snapshot": ("vg0/db", "vg0/local", "vg9/remote"),
    "lvm_thin": ("vg0/db", "vg0/local", "vg9/remote"),
    "lvm_clone": ("vg0/db", "vg0/local", "vg9/remote"),
    "zfs_snapshot": ("tank/db", "tank/local", "backup/remote"),
    "zfs_send": ("tank/db", "tank/local", "backup/remote"),
    "btrfs_snapshot": ("/srv/db", "/srv/backup/local", "/backup/remote"),
    "btrfs_send": ("/srv/db", "/srv/backup/local", "/backup/remote"),
}
REFUSING = [t for t in TECHNOLOGIES if t not in PUSH_TECHNOLOGIES]


def remote_definition(technology):
    source, local, remote = NAMES[technology]
    return PoolDefinition(name="offsite_db", technology=technology, sources=(source,), versions=2,
                          target_pools=(TargetPool("near", (local,)),
                                        TargetPool("far", (remote,), host="root@backup.example.com")))


def engine_for(tmp_path, technology):
    be = backend_class(technology)(runner=NoCommands())
    return RecordEngine(StateStore(str(tmp_path / "state"), lock_timeout=5), lambda t: be, clock=FakeClock())


def test_the_push_technologies_are_the_backends_with_remote_targets():
    assert list(PUSH_TECHNOLOGIES) == [t for t in TECHNOLOGIES if backend_class(t).remote_targets]
    assert PUSH_TECHNOLOGIES == ("btrfs_send",)


@pytest.mark.parametrize("technology", REFUSING)
def test_host_is_refused_when_the_pool_is_defined_naming_pool_target_pool_host_and_technology(tmp_path,
                                                                                              technology):
    engine = engine_for(tmp_path, technology)
    d = remote_definition(technology)
    # the module's precheck (before the lock) and the plan (under it) give the same refusal
    with pytest.raises(InvalidInput) as precheck:
        engine.check_definition(d)
    with engine.session("offsite_db") as s:
        with pytest.raises(InvalidInput) as planned:
            s.plan_define(d)
    msg = precheck.value.msg
    assert planned.value.msg == msg
    assert msg.startswith("copy pool offsite_db: target pool far names host root@backup.example.com, but "), msg
    assert "technology %s" % technology in msg
    assert "only btrfs_send accepts host for now" in msg
    assert engine.pool_names() == [] and not os.path.exists(engine.store.path("offsite_db"))


@pytest.mark.parametrize("technology", sorted(SNAPSHOT_TECHNOLOGIES))
def test_a_snapshot_technology_says_it_takes_no_target_pools_and_which_technology_pushes(technology):
    with pytest.raises(InvalidInput) as exc:
        check_definition(remote_definition(technology))
    assert exc.value.msg == (
        "copy pool offsite_db: target pool far names host root@backup.example.com, but technology %s keeps its "
        "copies on the managed host and names its target pools itself, so it takes neither target_pools nor host; "
        "to copy to another host use btrfs_send (only btrfs_send accepts host for now), else leave target_pools "
        "out" % technology)


@pytest.mark.parametrize("technology", ["lvm_clone", "zfs_send"])
def test_a_listed_target_technology_says_to_leave_host_out(technology):
    expected = (
        "copy pool offsite_db: target pool far names host root@backup.example.com, but copies to another host are "
        "not supported for technology %s yet (only btrfs_send accepts host for now); leave host out to keep the "
        "copies on the managed host" % technology)
    # with and without the backend: the technology decides
    for backend in (None, backend_class(technology)(runner=NoCommands())):
        with pytest.raises(InvalidInput) as exc:
            check_definition(remote_definition(technology), backend)
        assert exc.value.msg == expected


def test_btrfs_send_accepts_host():
    check_definition(remote_definition("btrfs_send"))


@pytest.mark.parametrize("technology", sorted(SNAPSHOT_TECHNOLOGIES))
def test_local_target_pools_of_a_snapshot_technology_are_named_as_given(technology):
    source, local, _remote = NAMES[technology]
    d = PoolDefinition(name="p", technology=technology, sources=(source,), versions=3,
                       target_pools=(TargetPool("mine", (local,)),))
    with pytest.raises(InvalidInput) as exc:
        check_definition(d)
    # the target pool given, not the implied 01, 02, 03
    assert exc.value.msg.startswith("technology %s names its targets itself (target pools mine given); leave "
                                    "target_pools out or use lvm_clone, zfs_send or btrfs_send" % technology)
