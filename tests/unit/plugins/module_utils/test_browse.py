# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Browsing and file restores (issue 17 items 2 and 3), what needs no
storage: the validation of ``paths``, ``restore_to`` and mount paths, the
comparison and the copy of files (on tmp_path, with the real ``cp``), the
``mounted`` key of the state file, and the refusals a mounted version
causes. Real mounts and restores: tests/real/test_btrfs_browse.py, LVM and
ZFS in tests/real/test_lvm.py and test_zfs.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from dataclasses import replace

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _browse
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.plugins.module_utils._store import dump_state, load_state
from ansible_collections.pitcopy.versions.tests.unit.plugins.module_utils.test_holds import _copy, _env


@pytest.mark.parametrize("path,norm", [
    ("etc/app.conf", "etc/app.conf"),
    ("./home//alice/", "home/alice"),
    ("a/./b", "a/b"),
])
def test_relative_paths_are_normalized(path, norm):
    assert _browse.check_relative_path(path) == norm


@pytest.mark.parametrize("path,words", [
    ("../etc/passwd", "escapes the source with '..'"),
    ("etc/../../x", "escapes the source with '..'"),
    ("/etc/passwd", "is absolute"),
    ("", "not accepted"),
    (".", "names the whole source"),
    ("a\x00b", "NUL"),
])
def test_escaping_paths_are_refused_naming_them(path, words):
    with pytest.raises(InvalidInput) as exc:
        _browse.check_relative_path(path)
    assert words in exc.value.msg and repr(path) in exc.value.msg
    assert "relative to a source's mount point" in exc.value.msg


def test_restore_to_outside_the_sources_with_an_existing_parent(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    assert _browse.check_restore_to(str(tmp_path / "out") + "/", [str(src)]) == str(tmp_path / "out")
    for value, words in [
        ("relative/dir", "not accepted"),
        (str(src / "sub"), "inside source directory"),
        (str(src), "inside source directory"),
        (str(tmp_path / "missing" / "out"), "does not exist (is its filesystem mounted?)"),
        ("/", "root directory"),
        (str(tmp_path / "a" / ".." / "b"), "no '..'"),
    ]:
        with pytest.raises(InvalidInput) as exc:
            _browse.check_restore_to(value, [str(src)])
        assert words in exc.value.msg and repr(value) in exc.value.msg, exc.value.msg
    # a symlink into a source is inside it
    os.symlink(str(src), str(tmp_path / "link"))
    with pytest.raises(InvalidInput):
        _browse.check_restore_to(str(tmp_path / "link" / "x"), [str(src)])
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput) as exc:
        _browse.check_restore_to(str(tmp_path / "file"), [str(src)])
    assert "not a directory" in exc.value.msg


def test_symlinks_leading_out_of_the_copy_or_the_source_are_refused(tmp_path):
    copy = tmp_path / "copy"
    (copy / "d").mkdir(parents=True)
    os.symlink("/etc", str(copy / "out"))
    os.symlink("d", str(copy / "in"))
    assert _browse.resolve_in(str(copy), "in", "the copy") == str(copy / "in")
    for rel in ("out", "out/passwd"):
        with pytest.raises(InvalidInput) as exc:
            _browse.resolve_in(str(copy), rel, "the copy")
        assert "symlink" in exc.value.msg and repr(rel) in exc.value.msg
    live = tmp_path / "live"
    live.mkdir()
    os.symlink("/etc", str(live / "etc"))
    with pytest.raises(InvalidInput) as exc:
        _browse.check_destination(str(live), "etc/passwd")
    assert "outside the source" in exc.value.msg
    assert _browse.check_destination(str(live), "new/dir/file") == str(live / "new" / "dir" / "file")


def test_mount_names_and_options():
    assert _browse.mount_name("/srv/a/db", ["/srv/a/db", "/srv/a/www"]) == "db"
    assert _browse.mount_name("/srv/a/db", ["/srv/a/db", "/srv/b/db"]) == "srv_a_db"
    assert _browse.mount_name("vg0/data", ["vg0/data"]) == "data"
    assert _browse.mount_options("ext4") == "ro,noload"
    assert _browse.mount_options("xfs") == "ro,norecovery,nouuid"
    assert _browse.mount_options("vfat") == "ro"


def test_mountinfo_is_read_with_options(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text("36 35 98:0 /sub /mnt/with\\040space ro,relatime shared:1 - btrfs /dev/loop0 rw\n"
                    "37 35 98:1 / /srv rw - ext4 /dev/mapper/vg-lv rw\n")
    mounts = _browse.read_mounts(str(info))
    assert _browse.mount_at("/mnt/with space", mounts)["options"] == ["ro", "relatime"]
    assert _browse.mount_at("/srv", mounts)["source"] == "/dev/mapper/vg-lv"
    assert _browse.mountpoints_of_source("/dev/loop0", "btrfs", mounts) == ["/mnt/with space"]


def test_differences_and_copy_back_touch_only_the_path(tmp_path):
    copy, live = tmp_path / "copy", tmp_path / "live"
    (copy / "d" / "sub").mkdir(parents=True)
    (copy / "d" / "f").write_text("old\n")
    (copy / "d" / "sub" / "g").write_text("g\n")
    os.chmod(str(copy / "d" / "f"), 0o600)
    (live / "d").mkdir(parents=True)
    (live / "d" / "f").write_text("new, longer\n")
    (live / "d" / "extra").write_text("added since\n")
    (live / "neighbour").write_text("changed since\n")
    diffs = dict(_browse.differences(str(copy / "d"), str(live / "d"), "d"))
    assert diffs["d/f"] == "mode" and diffs["d/extra"] == "not in the version" and diffs["d/sub"] == "missing"
    runner = SubprocessRunner()
    _browse.copy_back(runner, str(copy), str(live), "d")
    assert _browse.differences(str(copy / "d"), str(live / "d"), "d") == []
    assert (live / "d" / "f").read_text() == "old\n" and oct(os.stat(str(live / "d" / "f")).st_mode & 0o777) == "0o600"
    assert not (live / "d" / "extra").exists()
    assert (live / "neighbour").read_text() == "changed since\n"
    assert sorted(os.listdir(str(live))) == ["d", "neighbour"]
    # a file whose parent directories are gone: made as the copy has them
    (copy / "x" / "y").mkdir(parents=True)
    os.chmod(str(copy / "x"), 0o750)
    (copy / "x" / "y" / "z").write_text("z\n")
    _browse.copy_back(runner, str(copy), str(live), "x/y/z")
    assert (live / "x" / "y" / "z").read_text() == "z\n" and os.stat(str(live / "x")).st_mode & 0o777 == 0o750


def test_a_mounted_version_is_stored_and_never_rotated_or_deleted(tmp_path):
    engine, be = _env(tmp_path, versions=2, pools=2)
    _copy(engine)
    _copy(engine)
    state = engine.store.load("P")
    mounted = replace(state, replication_records=tuple(replace(r, mounted="/mnt/v1") if r.version == 1 else r
                                                       for r in state.replication_records))
    assert load_state(dump_state(mounted)).replication(1).mounted == "/mnt/v1"
    engine.store.save(mounted)
    with engine.session("P") as s:
        assert s.info()["replication_records"][0]["mounted"] == "/mnt/v1"
    before = engine.store.read_raw("P")
    for call in (lambda s: s.plan_copy(), lambda s: s.plan_delete(1), lambda s: s.plan_delete(1, force=True),
                 lambda s: s.plan_remove(remove_copies=True)):
        with pytest.raises(InvalidInput) as exc:
            with engine.session("P") as s:
                call(s).apply()
        assert "version 1 is mounted at /mnt/v1" in exc.value.msg
        assert "state=unmounted version=1" in exc.value.msg
    assert engine.store.read_raw("P") == before
    with engine.session("P") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_mount(2, "/mnt/v1")
    assert "version 1 is mounted there" in exc.value.msg
    with engine.session("P") as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_unmount(1, "/mnt/elsewhere")
    assert "it is mounted at /mnt/v1" in exc.value.msg
