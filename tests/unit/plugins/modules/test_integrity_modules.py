# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 12, items 1, 8 and 10 through the modules: verify_records reseal,
readers under a shared lock (with a real lock holder) and on a read-only
state_dir, the all-pool listing with a damaged pool, and post-copy hook
failures and copy warnings that must not leave the run green."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
import signal
import subprocess
import time
from unittest import mock

import pytest
from ansible.module_utils import basic

from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
from ansible_collections.pitcopy.versions.plugins.modules import copy_pool, copy_pool_info, copy_version, verify_records
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, SimpleWindow
from ansible_collections.pitcopy.versions.tests.unit.plugins.modules.utils import SNAP_POOL, ModuleHarness

GIB = 1 << 30


def _read(path):
    with open(path, "rb") as fh:
        return fh.read()


def _write(path, raw):
    with open(path, "wb") as fh:
        fh.write(raw)


@contextlib.contextmanager
def warnings_seen():
    seen = []
    with mock.patch.object(basic.AnsibleModule, "warn", lambda self, text: seen.append(text)):
        yield seen


# --------------------------------------------------------------------------
# item 1: reseal


def test_a_hand_edit_is_refused_until_resealed_after_showing_the_change(snap_host):
    snap_host.ok(copy_pool, SNAP_POOL)
    snap_host.ok(copy_version, {"pool": "web", "label": "first"})
    snap_host.ok(copy_version, {"pool": "web", "label": "second"})
    path = snap_host.state_path("web")
    prev_path = os.path.join(snap_host.state_dir, ".web.yml.prev")
    prev = _read(prev_path)
    edited = _read(path).replace(b"label: first", b"label: edited")
    _write(path, edited)

    for module, args in ((copy_pool_info, {"pool": "web"}), (verify_records, {"pool": "web"}),
                         (copy_version, {"pool": "web"})):
        result = snap_host.fail(module, args)
        assert "is refused: its seal counts" in result["msg"]  # one byte longer
        assert "reseal: true" in result["msg"] and path in result["msg"]
    assert _read(path) == edited

    before = snap_host.snapshot()
    check = snap_host.ok(verify_records, {"pool": "web", "reseal": True}, check_mode=True, diff=True)
    assert check["changed"] is True and check["resealed"] is True
    # against the previous generation (written while the second copy was committing)
    assert "replication_records[version 1].label: 'first' -> 'edited'" in check["reseal_changes"], \
        check["reseal_changes"]
    assert check["diff"]["after"]["replication_records"][0]["label"] == "edited"
    assert snap_host.snapshot() == before and _read(path) == edited and _read(prev_path) == prev

    done = snap_host.ok(verify_records, {"pool": "web", "reseal": True})
    assert done["changed"] is True and done["resealed"] is True and done["consistent"] is True
    assert _read(prev_path) == prev  # the generation before the edit is still there
    info = snap_host.ok(copy_pool_info, {"pool": "web"})
    assert info["pools"][0]["replication_records"][0]["label"] == "edited"
    again = snap_host.ok(verify_records, {"pool": "web", "reseal": True})
    assert again["changed"] is False and again["resealed"] is False


def test_reseal_refuses_an_edit_without_the_full_shape(snap_host):
    snap_host.ok(copy_pool, SNAP_POOL)
    snap_host.ok(copy_version, {"pool": "web"})
    path = snap_host.state_path("web")
    edited = _read(path).replace(b"  warnings: []\n", b"", 1)
    _write(path, edited)
    result = snap_host.fail(verify_records, {"pool": "web", "reseal": True})
    assert "replication_records[0]: missing key(s) warnings" in result["msg"]
    assert _read(path) == edited


# --------------------------------------------------------------------------
# item 10: the all-pool listing, shared locks, read-only state_dir


def test_the_all_pool_listing_reports_a_damaged_pool_and_lists_the_others(snap_host):
    snap_host.ok(copy_pool, SNAP_POOL)
    snap_host.ok(copy_pool, dict(SNAP_POOL, name="other", versions=1))
    path = snap_host.state_path("other")
    raw = _read(path)
    _write(path, raw[:len(raw) // 3])
    with warnings_seen() as seen:
        result = snap_host.ok(copy_pool_info, {})
    assert [p["name"] for p in result["pools"]] == ["other", "web"]
    damaged = result["pools"][0]
    assert set(damaged) == {"name", "error"} and path in damaged["error"] and "refused" in damaged["error"]
    assert result["pools"][1]["replication_records"] == []
    assert seen == ["copy pool other: %s" % damaged["error"]]
    one = snap_host.fail(copy_pool_info, {"pool": "other"})
    assert path in one["msg"]
    assert _read(path) == raw[:len(raw) // 3]


@contextlib.contextmanager
def lock_holder(lock_path, shared):
    """Another process holding the pool's lock (flock(1), as hold_lock.sh)."""
    argv = ["flock"] + (["-s"] if shared else []) + [lock_path, "sleep", "60"]
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        # held once an exclusive probe fails (it conflicts with either kind)
        while subprocess.call(["flock", "-n", lock_path, "true"]) == 0:
            assert time.monotonic() < deadline, "the holder did not take %s" % lock_path
            time.sleep(0.05)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        # flock(1) hands its descriptor to `sleep`, which may outlive flock
        # itself by a moment on a busy host: the lock is free only once the
        # probe gets it (else the next holder's probe would see the old lock)
        deadline = time.monotonic() + 10
        while subprocess.call(["flock", "-n", lock_path, "true"]) != 0:
            assert time.monotonic() < deadline, "%s was not released" % lock_path
            time.sleep(0.05)


def test_readers_share_the_lock_and_a_writer_waits(snap_host):
    snap_host.ok(copy_pool, SNAP_POOL)
    snap_host.ok(copy_version, {"pool": "web"})
    lock = os.path.join(snap_host.state_dir, ".web.lock")
    quick = {"lock_timeout": 0.3}
    with lock_holder(lock, shared=True):
        before = snap_host.snapshot()
        assert snap_host.ok(copy_pool_info, dict(quick))["pools"][0]["name"] == "web"
        assert snap_host.ok(copy_pool_info, dict(quick, pool="web"))["changed"] is False
        assert snap_host.ok(verify_records, dict(quick, pool="web"))["consistent"] is True
        assert snap_host.ok(copy_version, dict(quick, pool="web"), check_mode=True)["changed"] is True
        assert snap_host.ok(verify_records, dict(quick, pool="web", repair=True), check_mode=True)
        assert snap_host.snapshot() == before
        # a writer waits for the readers
        busy = snap_host.fail(copy_version, dict(quick, pool="web"))
        assert "is busy" in busy["msg"]
        busy = snap_host.fail(verify_records, dict(quick, pool="web", repair=True))
        assert "is busy" in busy["msg"]
        assert snap_host.snapshot() == before
    with lock_holder(lock, shared=False):
        # and a reader waits for a writer (it would read a state in the making)
        assert "is busy" in snap_host.fail(copy_pool_info, dict(quick, pool="web"))["msg"]
    assert snap_host.ok(copy_version, {"pool": "web"})["changed"] is True


@pytest.fixture
def read_only_dir(tmp_path):
    """``tmp_path/ro``: a read-only bind mount of ``tmp_path/rw`` (root only:
    chmod does not stop root writing)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root (tests/real runs this natively as root)")
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir(mode=0o700)
    ro.mkdir(mode=0o700)
    yield str(rw), str(ro)
    subprocess.call(["umount", str(ro)])


def _mount_ro(rw, ro):
    subprocess.check_call(["mount", "--bind", rw, ro])
    subprocess.check_call(["mount", "-o", "remount,bind,ro", ro])


def test_readers_work_on_a_read_only_state_dir(read_only_dir):
    rw, ro = read_only_dir
    be = MemoryBackend("btrfs_snapshot")
    for name in SNAP_POOL["sources"]:
        be.add_volume(name, size=GIB)
    writer = ModuleHarness(os.path.join(rw, "state"), be, window_factory=SimpleWindow)
    writer.ok(copy_pool, SNAP_POOL)
    writer.ok(copy_pool, dict(SNAP_POOL, name="nolock", versions=1))
    writer.ok(copy_version, {"pool": "web"})
    os.unlink(os.path.join(rw, "state", ".nolock.lock"))  # as if copied in from a backup
    _mount_ro(rw, ro)
    reader = ModuleHarness(os.path.join(ro, "state"), be, window_factory=SimpleWindow)
    with pytest.raises(OSError):
        _write(os.path.join(ro, "state", "probe"), b"")  # really read-only, also for root
    before = reader.snapshot()
    assert [p["name"] for p in reader.ok(copy_pool_info, {})["pools"]] == ["nolock", "web"]
    assert reader.ok(copy_pool_info, {"pool": "nolock"})["pools"][0]["name"] == "nolock"
    assert reader.ok(verify_records, {"pool": "web"})["consistent"] is True
    assert reader.ok(copy_version, {"pool": "web"}, check_mode=True)["changed"] is True
    assert reader.ok(copy_pool, dict(SNAP_POOL, versions=4), check_mode=True)["changed"] is True
    # a write fails cleanly, naming the file
    failed = reader.fail(copy_version, {"pool": "web"})
    assert "Read-only file system" in failed["msg"], failed["msg"]
    assert reader.snapshot() == before


# --------------------------------------------------------------------------
# item 8: nothing green that failed


def _hook_host(tmp_path, post_hooks):
    be = MemoryBackend("btrfs_snapshot")
    for name in SNAP_POOL["sources"]:
        be.add_volume(name, size=GIB)
    host = ModuleHarness(tmp_path / "state", be, window_factory=CopyWindow)
    host.ok(copy_pool, dict(SNAP_POOL, post_copy_hooks=post_hooks))
    return host


@pytest.mark.parametrize("hook,reason", [
    ({"argv": ["false"]}, "exited with status 1"),
    ({"argv": ["sleep", "10"], "timeout": 1}, "did not finish within its timeout"),
], ids=["failing", "timed-out"])
def test_a_failed_post_copy_hook_with_abort_fails_the_run_and_the_copy_is_recorded(tmp_path, hook, reason):
    host = _hook_host(tmp_path, [hook])
    with warnings_seen():
        result = host.fail(copy_version, {"pool": "web", "label": "x"})
    assert "post-copy hook" in result["msg"] and reason in result["msg"]
    assert "version 1 of copy pool web was taken and recorded" in result["msg"]
    assert result["changed"] is True
    assert result["version"]["number"] == 1 and reason in result["version"]["warnings"][0]
    record = host.ok(copy_pool_info, {"pool": "web"})["pools"][0]["replication_records"][0]
    assert record["status"] == "valid" and reason in record["warnings"][0]
    assert host.ok(verify_records, {"pool": "web"})["consistent"] is True


def test_a_failed_post_copy_hook_without_abort_is_a_warning_on_the_record_and_the_task(tmp_path):
    host = _hook_host(tmp_path, [{"argv": ["false"], "abort_on_failure": False}])
    with warnings_seen() as seen:
        result = host.ok(copy_version, {"pool": "web"})
    assert result["changed"] is True and len(result["version"]["warnings"]) == 1
    assert seen == result["version"]["warnings"]
    record = host.ok(copy_pool_info, {"pool": "web"})["pools"][0]["replication_records"][0]
    assert record["warnings"] == result["version"]["warnings"]


class ThawedEarlyWindow(SimpleWindow):
    def open(self, freeze=()):
        self.warnings = ["/srv was already thawed (by the watchdog after max_frozen=10 s?); the copy may not be "
                         "one point in time"]
        return super(ThawedEarlyWindow, self).open(freeze)


def test_copy_window_warnings_reach_the_record_and_ansible(tmp_path):
    be = MemoryBackend("btrfs_snapshot")
    for name in SNAP_POOL["sources"]:
        be.add_volume(name, size=GIB)
    host = ModuleHarness(tmp_path / "state", be, window_factory=ThawedEarlyWindow)
    host.ok(copy_pool, SNAP_POOL)
    with warnings_seen() as seen:
        result = host.ok(copy_version, {"pool": "web"})
    assert "thawed" in seen[0] and result["version"]["warnings"] == seen
    record = host.ok(copy_pool_info, {"pool": "web"})["pools"][0]["replication_records"][0]
    assert record["warnings"] == seen
