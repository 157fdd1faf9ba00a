# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A version dumped to media and restored from it (copy_version
state=dumped, restored with from_media; issue 17, item 6) on real btrfs, both
technologies: the medium is a directory on another (ext4) loop filesystem,
the version's copies are rotated away, the restore from the medium is
byte-identical; a corrupted stream is found by verify_media and refused."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._btrfs import subvol_info
from ansible_collections.pitcopy.versions.tests.real.test_btrfs import World, db_www_world, write
from ansible_collections.pitcopy.versions.tests.real.test_btrfs_browse import plan, refused, state_bytes
from ansible_collections.pitcopy.versions.tests.utils.trees import flip_middle_byte, tree

pytestmark = pytest.mark.btrfs


def _verify(w, verify_media=False, repair=False):
    with w.engine.session(w.name) as s:
        p = s.plan_verify(repair=repair, verify_media=verify_media)
        return p.apply() if repair else p.result


@pytest.mark.parametrize("technology", ["btrfs_snapshot", "btrfs_send"])
def test_a_version_dumped_to_media_restored_after_its_copies_are_gone(fs_pair, loopfs_factory, runner, tmp_path,
                                                                      technology):
    src = fs_pair[0]
    w = db_www_world(tmp_path, runner, fs_pair, technology)
    w.write_owned_files()
    for s in w.sources:
        with open(os.path.join(s, "big"), "wb") as fh:
            fh.write(os.urandom(3 << 20))
    expected = dict((s, tree(s)) for s in w.sources)
    w.copy()

    medium_fs = loopfs_factory(fstype="ext4", size=128 * 1024 * 1024, name="medium")
    medium = medium_fs.path("tape1")
    os.mkdir(medium, 0o700)

    # check mode: what would be written, nothing written
    p = plan(w, "plan_dump", 1, medium)
    assert p.changed and [x["source"] for x in p.result["written"]] == list(w.sources)
    assert os.listdir(medium) == []
    out = plan(w, "plan_dump", 1, medium).apply()
    dump = out["dump"]
    assert [st["source"] for st in dump["streams"]] == list(w.sources)
    for st in dump["streams"]:
        assert st["stream"].startswith("%s/v1/" % w.name) and st["size"] > 3 << 20
    assert sorted(os.listdir(os.path.join(medium, w.name, "v1"))) == sorted(
        os.path.basename(st["stream"]) for st in dump["streams"])
    # again: no change (sizes and checksums match)
    assert plan(w, "plan_dump", 1, medium).changed is False

    for tag in ("v2", "v3"):
        for s in w.sources:
            write(os.path.join(s, "d", "data"), "%s\n" % tag)
        w.copy()
    state = w.state()
    assert 1 not in [r.version for r in state.replication_records]  # v1's copies are gone
    assert [d.version for d in state.media] == [1]
    with w.engine.session(w.name) as s:
        assert s.info()["media"] == [dump]
    assert _verify(w, verify_media=True)["consistent"]

    restore_to = src.path("from-tape")
    os.makedirs(restore_to)
    p = plan(w, "plan_restore_from_media", 1, medium, restore_to)
    volumes = dict((s, os.path.join(restore_to, os.path.basename(s))) for s in w.sources)
    assert p.result["restored_to"] == [{"source": s, "volume": volumes[s]} for s in w.sources]
    assert os.listdir(restore_to) == []
    plan(w, "plan_restore_from_media", 1, medium, restore_to).apply()
    for s, v in volumes.items():
        assert tree(v) == expected[s], s  # byte-identical to version 1: checksums, modes, owners, xattrs
        assert not subvol_info(v)["readonly"]
        write(os.path.join(v, "scratch"), "writable\n")
    # nothing of ours beside them: no work directory, no mark
    assert sorted(os.listdir(restore_to)) == sorted(os.path.basename(v) for v in volumes.values())
    assert w.state().journal is None
    assert not [f for f in w.verify()["findings"] if restore_to in str(f)]

    # one byte of a stream corrupted: verify_media finds it, the restore is refused, nothing made
    bad = dump["streams"][1]
    path = os.path.join(medium, bad["stream"])
    flip_middle_byte(path)
    assert not [f for f in _verify(w)["findings"] if f["problem"].startswith("media")]  # cheap: size only
    found = _verify(w, verify_media=True)
    corrupt = [f for f in found["findings"] if f["problem"] == "media_corrupt"]
    assert not found["consistent"] and len(corrupt) == 1
    assert corrupt[0]["target"] == path and medium in corrupt[0]["action"], corrupt
    other = src.path("from-bad-tape")
    os.makedirs(other)
    before = state_bytes(w)
    msg = refused(w, "plan_restore_from_media", 1, medium, other)
    assert "cannot be restored, nothing was made" in msg and bad["stream"] in msg, msg
    assert os.listdir(other) == [] and state_bytes(w) == before
    # repair never deletes or rewrites a medium
    _verify(w, verify_media=True, repair=True)
    assert os.path.getsize(path) == bad["size"]


# a child that dumps (or restores from media) and SIGKILLs itself part way:
# after the first chunk of the stream is written (dump), or once the stream is
# received into the work directory and before its writable snapshot (restore)
_KILLED_CHILD = r"""
import os, signal, sys
from ansible_collections.pitcopy.versions.plugins.module_utils import _btrfs, _media
from ansible_collections.pitcopy.versions.plugins.module_utils._engine import RecordEngine
from ansible_collections.pitcopy.versions.plugins.module_utils._runner import SubprocessRunner
from ansible_collections.pitcopy.versions.plugins.module_utils._store import StateStore

state_dir, pool, op, medium, restore_to = sys.argv[1:6]
runner = SubprocessRunner(env={"PATH": os.environ["PATH"] + ":/usr/local/sbin:/usr/sbin:/sbin"})
backends = {"btrfs_snapshot": _btrfs.BtrfsSnapshotBackend, "btrfs_send": _btrfs.BtrfsSendBackend}
engine = RecordEngine(StateStore(state_dir), lambda tech: backends[tech](runner=runner))


def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


if op == "dump":
    write = _media.StreamWriter.write

    def write_then_die(self, chunk):
        write(self, chunk)
        os.fsync(self.fd)
        die()

    _media.StreamWriter.write = write_then_die
    with engine.session(pool) as s:
        s.plan_dump(1, medium).apply()
else:
    run = _btrfs._BtrfsBase._run

    def run_or_die(self, argv, **kw):
        if argv[:3] == ["btrfs", "subvolume", "snapshot"]:
            die()
        return run(self, argv, **kw)

    _btrfs._BtrfsBase._run = run_or_die
    with engine.session(pool) as s:
        s.plan_restore_from_media(1, medium, restore_to).apply()
"""


def _killed(w, op, medium, restore_to=""):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", _KILLED_CHILD, w.store.state_dir, w.name, op, medium, restore_to],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, env=dict(os.environ), check=False)
    assert proc.returncode == -9, proc.stderr.decode()


def test_killed_dump_and_killed_restore_from_media_are_repaired(fs_pair, loopfs_factory, runner, tmp_path):
    src, dst = fs_pair
    w = World(tmp_path, runner, src, dst, "btrfs_snapshot")
    w.add_source("db")
    w.versions = 2
    w.define()
    db = w.sources[0]
    with open(os.path.join(db, "big"), "wb") as fh:
        fh.write(os.urandom(4 << 20))
    expected = tree(db)
    w.copy()
    medium_fs = loopfs_factory(fstype="ext4", size=64 * 1024 * 1024, name="medium")
    medium = medium_fs.path("tape")
    os.mkdir(medium, 0o700)
    os.makedirs(os.path.join(medium, w.name, "v1"))
    foreign = os.path.join(medium, w.name, "v1", "notes.txt")
    write(foreign, "someone's notes\n")

    _killed(w, "dump", medium)
    vdir = os.path.join(medium, w.name, "v1")
    temps = [n for n in os.listdir(vdir) if n.startswith(".pitcopy-dump.")]
    assert len(temps) == 1 and sorted(os.listdir(vdir)) == sorted(temps + ["notes.txt"])
    found = _verify(w)
    problems = sorted(f["problem"] for f in found["findings"])
    assert problems == ["interrupted_dump", "media_leftover"], found
    assert [f["target"] for f in found["findings"] if f["problem"] == "media_leftover"] == [os.path.join(vdir, temps[0])]
    _verify(w, repair=True)
    assert os.listdir(vdir) == ["notes.txt"] and w.state().journal is None  # ours gone, nothing else
    dump = plan(w, "plan_dump", 1, medium).apply()["dump"]
    assert _verify(w, verify_media=True)["consistent"]

    restore_to = src.path("from-tape")
    os.makedirs(restore_to)
    _killed(w, "restore", medium, restore_to)
    assert [n for n in os.listdir(restore_to) if n.startswith(".pitcopy-media.")]
    found = _verify(w)
    assert sorted(f["problem"] for f in found["findings"]) == ["interrupted_restore_elsewhere", "media_leftover"]
    _verify(w, repair=True)
    assert os.listdir(restore_to) == ["db"] and w.state().journal is None
    assert tree(os.path.join(restore_to, "db")) == expected
    assert not subvol_info(os.path.join(restore_to, "db"))["readonly"]
    assert os.path.getsize(os.path.join(medium, dump["streams"][0]["stream"])) == dump["streams"][0]["size"]
