# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The copy window on real filesystems: fsfreeze, hooks, and the watchdog.

Native: ext4/xfs on loop devices with the real fsfreeze."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import HookFailed, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._model import Hook, PoolDefinition
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow

# native like the btrfs suite (CI selects that one with -m btrfs)
pytestmark = [pytest.mark.quiesce, pytest.mark.btrfs]


def definition(pre=(), post=()):
    return PoolDefinition(name="q", technology="lvm_snapshot", sources=("vg/a",), versions=1,
                          pre_copy_hooks=tuple(pre), post_copy_hooks=tuple(post))


def start_writer(path, data="written\n"):
    """A separate process that writes and fsyncs ``path``: it blocks while
    the filesystem is frozen."""
    code = ("import os,sys\n"
            "fd=os.open(sys.argv[1], os.O_WRONLY|os.O_CREAT|os.O_TRUNC, 0o644)\n"
            "os.write(fd, sys.argv[2].encode()); os.fsync(fd); os.close(fd)\n")
    return subprocess.Popen([sys.executable, "-c", code, path, data])


def log_hook(logfile, word, **kw):
    code = "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')"
    return Hook(argv=(sys.executable, "-c", code, logfile, word), **kw)


@pytest.mark.parametrize("fstype", ["ext4", "xfs"])
def test_freeze_blocks_writes_until_thaw(loopfs_factory, runner, fstype):
    fs = loopfs_factory(fstype, size=320 * 1024 * 1024, name=fstype)
    window = CopyWindow(definition(), runner)
    target = fs.path("during-freeze")
    with window.open(freeze=[fs.mountpoint]):
        assert window.frozen == [fs.mountpoint]
        writer = start_writer(target)
        time.sleep(0.7)
        assert writer.poll() is None, "a write completed on a frozen filesystem"
    # thawed on exit: the blocked writer completes promptly
    assert writer.wait(timeout=10) == 0
    with open(target) as fh:
        assert fh.read() == "written\n"
    assert window.frozen == []
    assert window.window_ms >= 700.0
    assert window.hooks == []


def test_thaws_when_the_block_raises(ext4_fs, runner):
    window = CopyWindow(definition(), runner)
    with pytest.raises(RuntimeError, match="boom"):
        with window.open(freeze=[ext4_fs.mountpoint]):
            raise RuntimeError("boom")
    writer = start_writer(ext4_fs.path("after"))
    assert writer.wait(timeout=10) == 0


def test_refuses_to_freeze_btrfs_before_any_hook(btrfs_fs, runner, tmp_path):
    log = str(tmp_path / "log")
    window = CopyWindow(definition(pre=[log_hook(log, "pre")], post=[log_hook(log, "post")]), runner)
    with pytest.raises(InvalidInput) as err:
        with window.open(freeze=[btrfs_fs.mountpoint]):
            pytest.fail("the block must not run")
    assert "btrfs" in err.value.msg and btrfs_fs.mountpoint in err.value.msg
    assert "uninterruptible" in err.value.msg
    assert not os.path.exists(log)
    writer = start_writer(btrfs_fs.path("still-writable"))
    assert writer.wait(timeout=10) == 0


def test_refuses_a_path_that_is_not_a_mountpoint(ext4_fs, runner):
    sub = ext4_fs.path("sub")
    os.mkdir(sub)
    for bad in (sub, "relative/path", "/no/such/mount\n"):
        with pytest.raises(InvalidInput) as err:
            with CopyWindow(definition(), runner).open(freeze=[bad]):
                pytest.fail("the block must not run")
        assert repr(bad) in err.value.msg


def test_hooks_run_in_order_around_the_freeze(ext4_fs, runner, tmp_path):
    log = str(tmp_path / "log")
    window = CopyWindow(definition(pre=[log_hook(log, "pre1"), log_hook(log, "pre2")],
                                   post=[log_hook(log, "post1"), log_hook(log, "post2")]), runner)
    with window.open(freeze=[ext4_fs.mountpoint]):
        with open(log, "a") as fh:
            fh.write("copy\n")
        assert window.frozen == [ext4_fs.mountpoint]
    with open(log) as fh:
        assert fh.read().split() == ["pre1", "pre2", "copy", "post1", "post2"]
    assert [h["phase"] for h in window.hooks] == ["pre", "pre", "post", "post"]
    assert all(h["rc"] == 0 and h["ok"] and h["ms"] > 0 for h in window.hooks)
    assert window.hooks[0]["argv"][-1] == "pre1"
    assert window.quiesced_ms >= window.window_ms > 0


def test_aborting_hook_stops_before_freeze_and_post_hooks_still_run(ext4_fs, runner, tmp_path):
    log = str(tmp_path / "log")
    failing = Hook(argv=(sys.executable, "-c", "import sys; sys.stderr.write('db locked\\n'); sys.exit(3)"),
                   abort_on_failure=True)
    window = CopyWindow(definition(pre=[log_hook(log, "pre1"), failing, log_hook(log, "never")],
                                   post=[log_hook(log, "post1")]), runner)
    with pytest.raises(HookFailed) as err:
        with window.open(freeze=[ext4_fs.mountpoint]):
            pytest.fail("the block must not run")
    assert "exited with status 3: db locked" in err.value.msg
    assert "nothing was frozen" in err.value.msg
    with open(log) as fh:
        assert fh.read().split() == ["pre1", "post1"]
    assert window.frozen == []
    assert start_writer(ext4_fs.path("w")).wait(timeout=10) == 0


def test_non_aborting_failure_is_recorded_and_the_copy_goes_on(runner, tmp_path):
    failing = Hook(argv=("false",), abort_on_failure=False)
    missing = Hook(argv=("/no/such/hook",), abort_on_failure=False)
    window = CopyWindow(definition(pre=[failing, missing]), runner)
    ran = []
    with window.open(freeze=[]):
        ran.append(True)
    assert ran == [True]
    assert window.hooks[0]["rc"] == 1 and not window.hooks[0]["ok"]
    assert window.hooks[1]["rc"] is None and "cannot run /no/such/hook" in window.hooks[1]["stderr"]
    assert len(window.warnings) == 2


def test_hook_timeout_kills_its_process_group(runner, tmp_path):
    pidfile = str(tmp_path / "grandchild.pid")
    # a shell, not Python: it must have started its child well within the
    # timeout, also inside the test VM where a Python start takes seconds
    code = 'sleep 60 & echo $! > "$1"; sleep 60'
    timeout = 5 if os.environ.get("PITCOPY_VM") else 1
    hook = Hook(argv=("sh", "-c", code, "hook", pidfile), timeout=timeout, abort_on_failure=True)
    window = CopyWindow(definition(pre=[hook]), runner)
    t0 = time.monotonic()
    with pytest.raises(HookFailed, match="did not finish within its timeout"):
        with window.open(freeze=[]):
            pytest.fail("the block must not run")
    assert time.monotonic() - t0 < timeout + 9
    assert window.hooks[0]["timed_out"] is True
    with open(pidfile) as fh:
        grandchild = int(fh.read())
    # the grandchild (same process group) is gone, or a zombie awaiting its reaper
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % grandchild) as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except (IOError, OSError):
            state = "gone"
        if state in ("gone", "Z"):
            break
        time.sleep(0.1)
    assert state in ("gone", "Z"), "hook's child still running (state %s)" % state


CHILD = r"""
import sys, time
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition
from ansible_collections.pitcopy.versions.plugins.module_utils._quiesce import CopyWindow
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
d = PoolDefinition(name="q", technology="lvm_snapshot", sources=("vg/a",), versions=1)
w = CopyWindow(d, SubprocessRunner())
with w.open(freeze=sys.argv[1:]):
    sys.stdout.write("FROZEN\n")
    sys.stdout.flush()
    time.sleep(120)
"""


def test_watchdog_thaws_after_sigkill(loopfs_factory):
    fs1 = loopfs_factory("ext4", size=128 * 1024 * 1024, name="a")
    fs2 = loopfs_factory("xfs", size=320 * 1024 * 1024, name="b")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    child = subprocess.Popen([sys.executable, "-c", CHILD, fs1.mountpoint, fs2.mountpoint],
                             stdout=subprocess.PIPE, env=env)
    try:
        line = child.stdout.readline()
        assert line == b"FROZEN\n", "child did not freeze: %r" % line
        w1 = start_writer(fs1.path("after-kill"))
        w2 = start_writer(fs2.path("after-kill"))
        time.sleep(0.5)
        assert w1.poll() is None and w2.poll() is None, "writes completed while frozen"
        t0 = time.monotonic()
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert w1.wait(timeout=5) == 0
        assert w2.wait(timeout=5) == 0
        elapsed = time.monotonic() - t0
        print("watchdog thawed 2 filesystems %.3f s after SIGKILL" % elapsed)
        assert elapsed < 5
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_watchdog_max_frozen_thaws_a_hung_copy(ext4_fs, runner):
    window = CopyWindow(definition(), runner, max_frozen=1.0)
    with window.open(freeze=[ext4_fs.mountpoint]):
        writer = start_writer(ext4_fs.path("w"))
        # the copy "hangs" longer than max_frozen: the watchdog thaws anyway
        assert writer.wait(timeout=10) == 0
    assert any("already thawed" in w for w in window.warnings)


def test_a_killed_watchdog_does_not_stop_the_thaw(loopfs_factory, runner):
    fs1 = loopfs_factory("ext4", size=128 * 1024 * 1024, name="a")
    fs2 = loopfs_factory("ext4", size=128 * 1024 * 1024, name="b")
    window = CopyWindow(definition(), runner)
    with window.open(freeze=[fs1.mountpoint, fs2.mountpoint]):
        watchdogs = [int(p) for p in os.listdir("/proc") if p.isdigit() and _is_watchdog(int(p))]
        assert len(watchdogs) == 1
        os.kill(watchdogs[0], signal.SIGKILL)
        time.sleep(0.2)
    assert window.was_frozen == [fs1.mountpoint, fs2.mountpoint] and window.frozen == []
    assert start_writer(fs1.path("w")).wait(timeout=10) == 0
    assert start_writer(fs2.path("w")).wait(timeout=10) == 0


def _is_watchdog(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            argv = fh.read().split(b"\0")
        with open("/proc/%d/stat" % pid) as fh:
            ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
    except (IOError, OSError, ValueError, IndexError):
        return False
    return ppid == os.getpid() and any(b"thaw_all" in a for a in argv)
