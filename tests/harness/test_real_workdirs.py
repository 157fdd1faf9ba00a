# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The work directories of the real-storage fixtures (tests/real/conftest.py):
which ones a run releases before it starts (those of owners that are gone)
and which it leaves (a live owner's, another kernel's, a young one without an
owner file), and the per-run pool names. Plain directories here: the
release of real mounts and loop devices is shown by a btrfs run after a
killed one (see the changelog fragment of this change)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC = importlib.util.spec_from_file_location("pitcopy_real_conftest", os.path.join(HERE, "..", "real", "conftest.py"))
conftest = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(conftest)


def _dead_owner():
    """An owner line of a process of this boot that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    start = None
    while start is None and proc.poll() is None:
        start = conftest._start_time(proc.pid)
    proc.wait()
    return "%s %d %s" % (conftest.BOOT_ID, proc.pid, start or "1")


def _workdir(tmp_path, name, owner=None, age=0):
    d = tmp_path / (conftest.WORKDIR_PREFIX + name)
    (d / "fs").mkdir(parents=True)
    (d / "fs" / "disk.img").write_text("x")
    if owner is not None:
        (d / conftest.OWNER_FILE).write_text(owner + "\n")
    if age:
        then = time.time() - age
        os.utime(str(d), (then, then))
    return d


def test_only_the_directories_of_owners_that_are_gone_are_released(tmp_path):
    dead = _workdir(tmp_path, "dead", _dead_owner())
    live = _workdir(tmp_path, "live", conftest.OWNER)
    # our pid, but another start time: a pid reused after its owner died
    reused = _workdir(tmp_path, "reused", "%s %d 1" % (conftest.BOOT_ID, os.getpid()))
    other_kernel = _workdir(tmp_path, "guest", "not-this-boot %d 1" % os.getpid())
    young_legacy = _workdir(tmp_path, "young")
    old_legacy = _workdir(tmp_path, "old", age=conftest.LEGACY_AGE + 60)
    unrelated = tmp_path / "pitcopy-uml-x"
    unrelated.mkdir()

    done = conftest.sweep_stale_workdirs(str(tmp_path))

    assert sorted(done) == sorted("rm -r %s" % d for d in (dead, reused, old_legacy))
    for d in (dead, reused, old_legacy):
        assert not d.exists()
    for d in (live, other_kernel, young_legacy, unrelated):
        assert d.is_dir()


def test_owner_line_names_this_process():
    boot, pid, start = conftest.OWNER.split()
    assert (boot, int(pid)) == (conftest.BOOT_ID, os.getpid())
    assert conftest._owner_alive(conftest.OWNER) is True
    assert conftest._owner_alive("garbage") is None


def test_pool_names_carry_the_run_token_and_stay_valid():
    from ansible_collections.pitcopy.versions.plugins.module_utils._store import _POOL_NAME_RE

    name = conftest.unique_pool_name("p001")
    assert name.startswith("p001-") and name != "p001"
    assert name == conftest.unique_pool_name("p001")
    assert _POOL_NAME_RE.match(name)
    assert conftest.unique_pool_name("p002") != name
