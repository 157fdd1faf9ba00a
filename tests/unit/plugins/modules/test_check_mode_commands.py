# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check mode cannot change the host: every module, in every state, run in
check mode with the real zfs_snapshot backend against a host that records
each command; only reading commands may reach it.

The allow-list below is this test's own, on purpose not the one of
_runner.ReadOnlyRunner: the modules run behind that guard, so a command it
let through by mistake would reach the host and fail here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from unittest import mock

import pytest

from ansible.module_utils import basic

from ansible_collections.pitcopy.versions.plugins.module_utils import _module, _runner
from ansible_collections.pitcopy.versions.plugins.modules import (
    copy_pool,
    copy_pool_info,
    copy_version,
    prepair_record,
    verify_records,
)
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import (
    _exit_json,
    _fail_json,
    run_main,
    set_module_args,
)
from ansible_collections.pitcopy.versions.tests.unit.zfs_host import ZfsHost

#: what check mode may run: reports only
READING = (("zfs", "get"), ("zfs", "list"))

POOL = {"name": "web", "technology": "zfs_snapshot", "sources": ["tank/db", "tank/www"], "versions": 2}


def run(host, module, args, state_dir, check_mode=False):
    args = dict(args, state_dir=str(state_dir))
    if check_mode:
        args["_ansible_check_mode"] = True
    with set_module_args(args), mock.patch.multiple(
        basic.AnsibleModule, exit_json=_exit_json, fail_json=_fail_json
    ), mock.patch.object(_module, "ModuleRunner", lambda ansible_module: host):
        return run_main(module)


@pytest.fixture
def host_with_versions(tmp_path):
    """Two versions of pool web taken; one source written since."""
    host = ZfsHost()
    host.add_filesystem("tank/db", data="db 1")
    host.add_filesystem("tank/www", data="www 1")
    state = tmp_path / "state"
    for module, args in ((copy_pool, POOL),
                         (copy_version, {"pool": "web", "label": "one"}),
                         (copy_version, {"pool": "web", "label": "two"})):
        result, failed = run(host, module, args, state)
        assert not failed and result["changed"], result
    host.write("tank/db", "db 2")
    return host, state


# (name, module, args, whether the run reads the host at all: the plans of
# a removal, a deletion and the listings work from the records alone)
CHECK_RUNS = [
    ("copy_pool changed", copy_pool, dict(POOL, versions=3), True),
    ("copy_pool absent", copy_pool, {"name": "web", "state": "absent", "remove_copies": True}, False),
    ("prepair_record present", prepair_record, {"pool": "web", "versions": 1}, True),
    ("copy_version present", copy_version, {"pool": "web", "label": "three"}, True),
    ("copy_version absent", copy_version, {"pool": "web", "state": "absent", "version": 1}, False),
    ("copy_version restored", copy_version, {"pool": "web", "state": "restored", "version": 2}, True),
    ("verify_records", verify_records, {"pool": "web"}, True),
    ("verify_records repair", verify_records, {"pool": "web", "repair": True}, True),
    ("copy_pool_info", copy_pool_info, {"pool": "web"}, False),
    ("copy_pool_info all", copy_pool_info, {}, False),
]


@pytest.mark.parametrize("name,module,args,reads", CHECK_RUNS, ids=[c[0] for c in CHECK_RUNS])
def test_check_mode_runs_only_reading_commands(host_with_versions, name, module, args, reads):
    host, state = host_with_versions
    before = host.state()
    host.calls[:] = []
    result, failed = run(host, module, args, state, check_mode=True)
    assert not failed, result
    assert bool(host.calls) is reads, host.calls
    mutating = [c for c in host.calls if tuple(c[:2]) not in READING]
    assert mutating == [], "check mode ran commands that may change the host: %r" % mutating
    assert host.state() == before


def test_check_mode_restore_reports_the_comparison(host_with_versions):
    """state=restored: changed from comparing each source with its copy."""
    host, state = host_with_versions
    args = {"pool": "web", "state": "restored", "version": 2}
    result, failed = run(host, copy_version, args, state, check_mode=True)
    assert not failed and result["changed"] is True and result["restored"] == ["tank/db"], result
    result, failed = run(host, copy_version, args, state)
    assert not failed and result["changed"] is True and result["restored"] == ["tank/db"], result
    assert host.ds["tank/db"]["data"] == "db 1"
    result, failed = run(host, copy_version, args, state, check_mode=True)
    assert not failed and result["changed"] is False and result["restored"] == [], result
    result, failed = run(host, copy_version, args, state)
    assert not failed and result["changed"] is False, result
    assert not [c for c in host.calls if c[:2] == ["zfs", "rollback"]][1:], "restored twice"


@pytest.mark.parametrize("check_mode", [True, False], ids=["check mode", "verify without repair"])
def test_a_mutating_command_in_check_mode_is_refused_before_it_runs(host_with_versions, check_mode):
    """The guard itself: a backend that tried to destroy in check mode (here
    in verify_records' listing of the copies) gets
    an internal error naming the command, and the host never sees it. A
    run that only reads without check mode (verify_records without repair)
    gets the same guard."""
    host, state = host_with_versions
    from ansible_collections.pitcopy.versions.plugins.module_utils._zfs import ZfsSnapshotBackend

    real = ZfsSnapshotBackend.list_copies

    def careless(self, pool_name, scope=None):
        self._run("destroy", "tank/db@pitcopy-web-01")
        return real(self, pool_name, scope)

    before = host.state()
    host.calls[:] = []
    with mock.patch.object(ZfsSnapshotBackend, "list_copies", careless):
        result, failed = run(host, verify_records, {"pool": "web"}, state, check_mode=check_mode)
    assert failed
    assert "MutationRefused" in result["msg"] and "zfs destroy tank/db@pitcopy-web-01" in result["msg"]
    assert "nothing was run" in result["msg"]
    assert ["zfs", "destroy", "tank/db@pitcopy-web-01"] not in host.calls
    assert host.state() == before


@pytest.mark.parametrize("argv,data,reads", [
    (["lvs", "--reportformat", "json"], None, True),
    (["vgs"], None, True),
    (["lvm"], b"lvs -o lv_name vg\nexit\n", True),
    (["lvm"], b"lvs vg\nlvremove -y -q vg/x\nexit\n", False),
    (["lvm"], None, False),
    (["lvcreate", "-s", "vg/a"], None, False),
    (["zfs", "get", "-H", "type", "tank"], None, True),
    (["zfs", "list", "-H", "tank"], None, True),
    (["zfs", "snapshot", "tank@x"], None, False),
    (["zfs", "destroy", "tank@x"], None, False),
    (["btrfs", "subvolume", "show", "/srv"], None, True),
    (["btrfs", "subvolume", "list", "-o", "--", "/srv"], None, True),
    (["btrfs", "subvolume", "delete", "--", "/srv/x"], None, False),
    (["btrfs", "qgroup", "show", "--raw", "-r", "--", "/srv"], None, True),
    (["fsfreeze", "--freeze", "/srv"], None, False),
    (["udevadm", "trigger", "--action=change"], None, False),
    (["/usr/sbin/zfs", "list"], None, True),
])
def test_read_only_classification(argv, data, reads):
    assert _runner.is_read_only(argv, data) is reads
    guarded = _runner.ReadOnlyRunner(ZfsHost())
    if not reads:
        with pytest.raises(_runner.MutationRefused, match="nothing was run"):
            guarded.run(argv, data=data)
        assert guarded.inner.calls == []


def test_read_only_runner_refuses_hooks_and_mutating_pipes():
    guarded = _runner.ReadOnlyRunner(ZfsHost(), "a read-only run of copy_pool_info")
    with pytest.raises(_runner.MutationRefused, match="the hook true.*a read-only run of copy_pool_info"):
        guarded.run_hook(["true"], 10)
    with pytest.raises(_runner.MutationRefused):
        guarded.pipe([["zfs", "send", "tank@x"], ["zfs", "receive", "tank/y"]])
    assert guarded.inner.calls == []
    assert guarded.resolve("zfs") == "/usr/sbin/zfs"


def test_read_only_runs_work_behind_the_guard(host_with_versions):
    """verify_records without repair and copy_pool_info run with the
    read-only runner outside check mode too: they still work, also when
    verify has something to report."""
    host, state = host_with_versions
    victim = sorted(n for n in host.ds if "@pitcopy-web-" in n)[0]
    del host.ds[victim]
    before = host.state()
    host.calls[:] = []
    result, failed = run(host, verify_records, {"pool": "web"}, state)
    assert not failed and result["consistent"] is False, result
    assert [f["problem"] for f in result["findings"]] == ["copy_missing"]
    result, failed = run(host, copy_pool_info, {}, state)
    assert not failed and [p["name"] for p in result["pools"]] == ["web"], result
    assert host.calls and all(tuple(c[:2]) in READING for c in host.calls), host.calls
    assert host.state() == before
