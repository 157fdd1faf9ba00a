# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A file restore killed part way (issue 12 follow-up): copy_version
state=restored with ``paths`` journals its destinations and pid before it
copies, so that verify_records reports what a kill left beside them
(``.pitcopy-restore.<name>.<pid>``, ``.pitcopy-restore.old.<name>.<pid>``)
and repair removes the partial copies and puts back what was moved aside.

The engine drives the in-memory host, with a copy's data and the live data
as directories on tmp_path and the real ``cp``; a kill is a BaseException
raised at a chosen point (nothing of the run's own clean-up runs, as after
SIGKILL). Real btrfs: tests/real/test_btrfs_faults.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils import _browse
from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed, PitcopyError
from ansible_collections.pitcopy.versions.plugins.module_utils._model import (
    JOURNAL_RESTORE_PATHS,
    CopyPair,
    PoolDefinition,
    TargetPool,
)
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.plugins.module_utils._store import dump_state, load_state
from ansible_collections.pitcopy.versions.tests.unit.memory_backend import MemoryBackend, make_engine
from ansible_collections.pitcopy.versions.tests.utils.trees import read as _read, write as _write

GIB = 1024 ** 3


class Killed(BaseException):
    """SIGKILL, as far as the run can tell: no except Exception runs."""


class FilesBackend(MemoryBackend):
    """The in-memory host whose copies read as directories: version V's copy
    of source A is ``copies/V``, A's live data ``live``."""

    def __init__(self, root):
        super(FilesBackend, self).__init__("lvm_clone", runner=SubprocessRunner())
        self.root = root

    def copy_view(self, definition, version, pair):
        d = os.path.join(self.root, "copies", str(version))
        return _browse.CopyView(_browse.VIEW_DIRECTORY, d, directory=d)

    def source_directory(self, definition, source):
        return os.path.join(self.root, "live")


@pytest.fixture
def world(tmp_path):
    """Pool P on source A, version 1 taken; its copy holds ``etc/app.conf``
    (v1) and ``etc/app.d/{a,b}`` (v1); the live data changed since."""
    be = FilesBackend(str(tmp_path))
    for name in ("A", "t0", "t1"):
        be.add_volume(name, size=GIB)
    engine = make_engine(tmp_path / "state", be)
    d = PoolDefinition(name="P", technology="lvm_clone", sources=("A",), versions=2,
                       target_pools=(TargetPool("01", ("t0",)), TargetPool("02", ("t1",))))
    with engine.session("P") as s:
        s.plan_define(d).apply()
    with engine.session("P") as s:
        s.plan_copy().apply()
    for top, text in (("copies/1", "v1\n"), ("live", "live\n")):
        os.makedirs(str(tmp_path / top / "etc" / "app.d"))
        _write(str(tmp_path / top / "etc" / "app.conf"), text)
        for n in ("a", "b"):
            _write(str(tmp_path / top / "etc" / "app.d" / n), text)
    return engine, be, tmp_path


def _restore(engine, paths, **kw):
    with engine.session("P") as s:
        return s.plan_restore_paths(1, paths, **kw).apply()


def _verify(engine, repair=False):
    with engine.session("P", shared=not repair) as s:
        return s.plan_verify(repair=repair).apply()


def _killed_at(monkeypatch, when):
    """Kill the run at the ``when``-th os.rename of _browse (1: the first)."""
    real = os.rename
    count = [0]

    def rename(a, b):
        count[0] += 1
        if count[0] == when:
            raise Killed()
        return real(a, b)

    monkeypatch.setattr(_browse.os, "rename", rename)


def _names(d):
    return sorted(os.listdir(d))


def test_a_file_restore_killed_after_its_copy_leaves_a_journal_verify_reports_and_repair_cleans(world, monkeypatch):
    engine, be, tmp = world
    etc = str(tmp / "live" / "etc")
    _killed_at(monkeypatch, 1)  # cp done, not yet renamed into place
    with pytest.raises(Killed):
        _restore(engine, ["etc/app.conf"])
    monkeypatch.undo()
    left = os.path.join(etc, ".pitcopy-restore.app.conf.%d" % os.getpid())
    assert _read(left) == "v1\n" and _read(os.path.join(etc, "app.conf")) == "live\n"
    j = engine.store.load("P").journal
    assert j.operation == JOURNAL_RESTORE_PATHS and j.pid == os.getpid() and j.phase == "restoring"
    assert j.asides == (CopyPair("A", os.path.join(etc, "app.conf")),)
    assert j.as_dict()["destinations"] == [{"source": "A", "destination": os.path.join(etc, "app.conf")}]

    # every other run of the pool is refused until it is repaired
    with pytest.raises(PitcopyError) as exc:
        _restore(engine, ["etc/app.conf"])
    assert "unfinished restore_paths of version 1" in exc.value.msg and "repair: true" in exc.value.msg

    found = _verify(engine)
    assert found["consistent"] is False
    problems = [(f["problem"], f["source"], f["target"]) for f in found["findings"]]
    assert problems == [("interrupted_restore_paths", None, None), ("restore_leftover", "A", left)]
    action = found["findings"][1]["action"]
    assert action.startswith("none (repair: true would remove it): a partial copy of %s/app.conf" % etc), action
    assert "into %s;" % etc in found["findings"][0]["action"]
    assert os.path.exists(left)  # a report changes nothing

    repaired = _verify(engine, repair=True)
    assert repaired["findings"][1]["action"].startswith("removed: a partial copy"), repaired
    assert _names(etc) == ["app.conf", "app.d"] and _read(os.path.join(etc, "app.conf")) == "live\n"
    assert engine.store.load("P").journal is None
    assert _verify(engine) == {"consistent": True, "findings": []}
    # and the restore works again
    assert _restore(engine, ["etc/app.conf"])["restored"] == ["A"]
    assert _read(os.path.join(etc, "app.conf")) == "v1\n" and _names(etc) == ["app.conf", "app.d"]
    assert engine.store.load("P").journal is None


def test_a_directory_moved_aside_comes_back_when_the_copy_never_took_its_place(world, monkeypatch):
    engine, be, tmp = world
    etc = str(tmp / "live" / "etc")
    _killed_at(monkeypatch, 2)  # the live directory moved aside, the copy not yet renamed
    with pytest.raises(Killed):
        _restore(engine, ["etc/app.d"])
    monkeypatch.undo()
    pid = os.getpid()
    copy, aside = (os.path.join(etc, ".pitcopy-restore.app.d.%d" % pid),
                   os.path.join(etc, ".pitcopy-restore.old.app.d.%d" % pid))
    assert _names(etc) == sorted([".pitcopy-restore.app.d.%d" % pid, ".pitcopy-restore.old.app.d.%d" % pid,
                                  "app.conf"])
    found = _verify(engine)["findings"]
    assert [(f["problem"], f["target"]) for f in found] == [
        ("interrupted_restore_paths", None), ("restore_leftover", copy), ("restore_leftover", aside)]
    assert found[2]["action"].startswith("none (repair: true would move it back to %s/app.d)" % etc), found[2]
    _verify(engine, repair=True)
    assert _names(etc) == ["app.conf", "app.d"]
    assert [_read(os.path.join(etc, "app.d", n)) for n in ("a", "b")] == ["live\n", "live\n"]
    assert _verify(engine) == {"consistent": True, "findings": []}
    _restore(engine, ["etc/app.d"])
    assert [_read(os.path.join(etc, "app.d", n)) for n in ("a", "b")] == ["v1\n", "v1\n"]
    assert _names(etc) == ["app.conf", "app.d"]


def test_an_aside_the_copy_had_replaced_is_removed(world, monkeypatch):
    engine, be, tmp = world
    etc = str(tmp / "live" / "etc")
    real = os.unlink

    def unlink(path):
        raise Killed()  # the copy in place, the old directory being removed

    monkeypatch.setattr(_browse.os, "unlink", unlink)
    with pytest.raises(Killed):
        _restore(engine, ["etc/app.d"])
    monkeypatch.setattr(_browse.os, "unlink", real)
    aside = os.path.join(etc, ".pitcopy-restore.old.app.d.%d" % os.getpid())
    assert os.path.isdir(aside) and _read(os.path.join(etc, "app.d", "a")) == "v1\n"
    found = _verify(engine)["findings"]
    assert [(f["problem"], f["target"]) for f in found] == [("interrupted_restore_paths", None),
                                                            ("restore_leftover", aside)]
    assert "which had put the version's copy in its place and was removing this" in found[1]["action"]
    _verify(engine, repair=True)
    assert _names(etc) == ["app.conf", "app.d"] and _read(os.path.join(etc, "app.d", "a")) == "v1\n"
    assert _verify(engine) == {"consistent": True, "findings": []}


def test_leftovers_under_restore_to_are_found_and_look_alikes_are_never_touched(world, monkeypatch):
    engine, be, tmp = world
    out = str(tmp / "out")
    etc = str(tmp / "live" / "etc")
    # names like ours that the journal does not name: another pid, another file
    strangers = [os.path.join(etc, ".pitcopy-restore.app.conf.%d" % (os.getpid() + 1)),
                 os.path.join(etc, ".pitcopy-restore.other.%d" % os.getpid())]
    for p in strangers:
        _write(p, "not ours\n")
    _killed_at(monkeypatch, 1)
    with pytest.raises(Killed):
        _restore(engine, ["etc/app.conf"], restore_to=out)
    monkeypatch.undo()
    left = os.path.join(out, "etc", ".pitcopy-restore.app.conf.%d" % os.getpid())
    found = _verify(engine)["findings"]
    assert [(f["problem"], f["target"]) for f in found] == [("interrupted_restore_paths", None),
                                                            ("restore_leftover", left)]
    assert "into %s/etc;" % out in found[0]["action"]
    _verify(engine, repair=True)
    assert _names(os.path.join(out, "etc")) == [] and engine.store.load("P").journal is None
    assert all(_read(p) == "not ours\n" for p in strangers)
    assert _restore(engine, ["etc/app.conf"], restore_to=out)["restore_to"] == out
    assert _names(os.path.join(out, "etc")) == ["app.conf"]


def test_a_kill_before_anything_was_copied_leaves_only_the_journal(world, monkeypatch):
    engine, be, tmp = world

    def run(argv, *a, **kw):
        raise Killed()

    monkeypatch.setattr(be.runner, "run", run)
    with pytest.raises(Killed):
        _restore(engine, ["etc/app.conf"])
    monkeypatch.undo()
    found = _verify(engine)["findings"]
    assert [f["problem"] for f in found] == ["interrupted_restore_paths"]
    assert "nothing of it was left beside them" in found[0]["action"]
    _verify(engine, repair=True)
    assert _verify(engine) == {"consistent": True, "findings": []}


def test_a_failed_restore_cleans_up_and_clears_its_journal(world, monkeypatch):
    engine, be, tmp = world
    etc = str(tmp / "live" / "etc")
    real = be.runner.run

    def run(argv, *a, **kw):
        return real(["false"] if argv[0] == "cp" else argv, *a, **kw)

    monkeypatch.setattr(be.runner, "run", run)
    with pytest.raises(CopyFailed):
        _restore(engine, ["etc/app.conf"])
    assert _names(etc) == ["app.conf", "app.d"] and engine.store.load("P").journal is None
    # nothing to restore: the state file is not written at all
    monkeypatch.undo()
    _restore(engine, ["etc/app.conf"])
    before = engine.store.read_raw("P")
    _restore(engine, ["etc/app.conf"])
    assert engine.store.read_raw("P") == before


def test_the_journal_of_a_file_restore_survives_the_state_file_and_names_no_volume(world, monkeypatch):
    engine, be, tmp = world
    _killed_at(monkeypatch, 1)
    with pytest.raises(Killed):
        _restore(engine, ["etc/app.conf", "etc/app.d"])
    monkeypatch.undo()
    state = engine.store.load("P")
    assert load_state(dump_state(state)).journal == state.journal
    assert [p.target for p in state.journal.asides] == [str(tmp / "live" / "etc" / n) for n in ("app.conf", "app.d")]
    # the destinations are files, never looked for as staged copies
    assert state.copy_scope().staged == ()
