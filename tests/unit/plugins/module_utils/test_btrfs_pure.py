# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The btrfs backend's parts that need no btrfs: path rules, the ownership
marks (files), the namespace directories and their permission checks, and
who holds a path open. tests/real/test_btrfs*.py prove the rest on btrfs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _btrfs
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed, InvalidInput


@pytest.mark.parametrize("name,why", [
    ("", "not a non-empty string"),
    ("srv/a", "not an absolute path"),
    ("-srv", "starts with '-'"),
    ("/", "root directory"),
    ("/srv/", "trailing or doubled slash"),
    ("/srv//a", "trailing or doubled slash"),
    ("/srv/../etc", "'..' component"),
    ("/srv/-x", "starts with '-'"),
    ("/srv/.pitcopy", "pitcopy's own namespace"),
    ("/srv/" + "x" * 256, "longer than 255 bytes"),
    ("/" + "x/" * 2001 + "x", "longer than 4000 characters"),
    ("/srv/a b", "character outside"),
])
def test_paths_are_refused_with_the_reason(name, why):
    with pytest.raises(InvalidInput, match="btrfs source") as exc:
        _btrfs.validate_path(name)
    assert why in exc.value.msg and repr(name) in exc.value.msg


def test_good_paths_and_names():
    assert _btrfs.validate_path("/srv/data/db+1@x:y=z,w") == "/srv/data/db+1@x:y=z,w"
    _btrfs._validate_pool_component("web.1", "pool")
    with pytest.raises(InvalidInput, match="cannot be used in a btrfs path"):
        _btrfs._validate_pool_component("-x", "target pool")
    copy = "/srv/.pitcopy/web/01/db"
    assert _btrfs.mark_path(copy) == "/srv/.pitcopy/web/01/%sdb%s" % (_btrfs.MARK_PREFIX, _btrfs.MARK_SUFFIX)
    assert _btrfs.staged_path(copy) == "/srv/.pitcopy/web/01/%sdb" % _btrfs.STAGING_PREFIX
    assert _btrfs.pool_dir("/srv/db", "web") == "/srv/%s/web" % _btrfs.NAMESPACE
    assert _btrfs.same_subvolume("u1,received=r1", "u1,received=none") is True
    assert _btrfs.same_subvolume("u1", "u2") is False and _btrfs.same_subvolume(None, "u1") is False


def test_marks_are_written_atomically_and_read_strictly(tmp_path):
    copy = str(tmp_path / "db")
    assert _btrfs.read_mark(copy) is None
    mark = {"pitcopy": _btrfs.MARK_FORMAT, "pool": "web", "version": 3}
    _btrfs.write_mark(copy, mark)
    assert _btrfs.read_mark(copy) == mark
    _btrfs.write_mark(copy, dict(mark, version=4), durable=False)
    assert _btrfs.read_mark(copy)["version"] == 4
    assert [n for n in os.listdir(str(tmp_path)) if _btrfs.TEMP_INFIX in n] == []
    # not ours: another format, no pool, not JSON, or a symlink at the name
    for bad in ({"pitcopy": "other", "pool": "web"}, {"pitcopy": _btrfs.MARK_FORMAT}, "not json"):
        with open(_btrfs.mark_path(copy), "w") as fh:
            fh.write(bad if isinstance(bad, str) else json.dumps(bad))
        assert _btrfs.read_mark(copy) is None
    os.unlink(_btrfs.mark_path(copy))
    os.symlink(str(tmp_path / "elsewhere"), _btrfs.mark_path(copy))
    with open(str(tmp_path / "elsewhere"), "w") as fh:
        json.dump(mark, fh)
    assert _btrfs.read_mark(copy) is None
    _btrfs.remove_mark(copy)
    _btrfs.remove_mark(copy)  # gone already: fine
    assert not os.path.lexists(_btrfs.mark_path(copy))


def test_temporary_marks_of_finished_processes_are_recognised(tmp_path):
    d = str(tmp_path)
    base = _btrfs.MARK_PREFIX + "db" + _btrfs.MARK_SUFFIX + _btrfs.TEMP_INFIX
    dead = base + "999999"
    with open(os.path.join(d, dead), "w") as fh:
        json.dump({"pool": "web"}, fh)
    assert _btrfs.temp_mark_owner(d, dead) == "db"
    assert _btrfs._temp_mark_pool(os.path.join(d, dead)) == "web"
    mine = base + str(os.getpid())
    open(os.path.join(d, mine), "w").close()
    assert _btrfs.temp_mark_owner(d, mine) is None  # this process's own, in use
    assert _btrfs._temp_mark_pool(os.path.join(d, mine)) is None  # empty: cut short
    assert _btrfs.temp_mark_owner(d, "unrelated") is None
    assert _btrfs.temp_mark_owner(d, base + "123") is None  # no such file
    # a taken temporary name is never reused
    path = os.path.join(d, "m.json")
    first, fd = _btrfs._create_temp(path)
    os.close(fd)
    second, fd = _btrfs._create_temp(path)
    os.close(fd)
    assert first != second and os.path.exists(first) and os.path.exists(second)


def test_namespace_directories_are_private(tmp_path):
    base = str(tmp_path)
    target = os.path.join(base, _btrfs.NAMESPACE, "web", "01")
    old = os.umask(0)
    try:
        _btrfs._makedirs(target)
    finally:
        os.umask(old)
    for d in (os.path.join(base, _btrfs.NAMESPACE), os.path.dirname(target), target):
        assert os.stat(d).st_mode & 0o777 == 0o700
    os.chmod(target, 0o777)
    _btrfs._makedirs(target)  # made by an older version, open to others: closed
    assert os.stat(target).st_mode & 0o777 == 0o700
    with pytest.raises(CopyFailed, match="not in pitcopy's namespace"):
        _btrfs._makedirs(os.path.join(base, "elsewhere"))
    planted = os.path.join(base, "x", _btrfs.NAMESPACE)
    os.makedirs(os.path.join(base, "x"))
    os.symlink(base, planted)
    with pytest.raises(CopyFailed, match="not a directory pitcopy can use"):
        _btrfs._makedirs(os.path.join(planted, "web"))


def test_target_directory_problems(tmp_path):
    d = tmp_path / "t"
    d.mkdir()
    os.chmod(str(tmp_path), 0o755)
    os.chmod(str(d), 0o700)
    assert _btrfs.target_dir_problem(str(d)) is None
    os.chmod(str(d), 0o777)
    assert "writable by group and others" in _btrfs.target_dir_problem(str(d))
    os.chmod(str(d), 0o720)
    assert "writable by its group" in _btrfs.target_dir_problem(str(d))
    assert "cannot be examined" in _btrfs.target_dir_problem(str(tmp_path / "missing"))


def test_busy_users_finds_a_working_directory(tmp_path):
    d = str(tmp_path)
    holder = subprocess.Popen(["sleep", "30"], cwd=d)
    try:
        assert holder.pid in _btrfs.busy_users(d)
    finally:
        holder.kill()
        holder.wait()
    assert _btrfs.busy_users(str(tmp_path / "nobody-here")) == []
    assert not _btrfs._exists(str(tmp_path / "nobody-here")) and not _btrfs._is_subvolume(d)
