# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A version dumped to media and restored from it (copy_version
state=dumped, restored with from_media; issue 17, item 6) on real LVM, the
three technologies: each copy's blocks as a gzip image on a medium outside
the VGs, the version deleted, restored from the medium as new LVs beside
production (a thin LV in the same thin pool for lvm_thin), byte-identical;
a corrupted image found by verify_media and refused; a failed receive and
one a killed run left leave no LV."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import hashlib
import os
import subprocess
import sys

import pytest

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import CopyFailed, InvalidInput
from ansible_collections.pitcopy.versions.plugins.module_utils._lvm import dm_path
from ansible_collections.pitcopy.versions.plugins.module_utils._model import PoolDefinition
from ansible_collections.pitcopy.versions.tests.real.test_lvm import (  # pylint: disable=unused-import
    BACKENDS,
    _setup_sources,
    activate,
    exists,
    lv_tags,
    lvm_runner,  # noqa: F401 (a fixture)
    make_engine,
    read_data,
    sh,
    vgs,  # noqa: F401 (a fixture)
    write_data,
)
from ansible_collections.pitcopy.versions.tests.real.test_lvm_restore_elsewhere import (
    _clone_pool_at_version_1,
    _copies,
    _sha,
)
from ansible_collections.pitcopy.versions.tests.utils.engine_calls import copy, define
from ansible_collections.pitcopy.versions.tests.utils.trees import flip_middle_byte
from ansible_collections.pitcopy.versions.tests.utils.tools_env import MiB

pytestmark = pytest.mark.lvm


def _pool_at_version_1(vgs, lvm_runner, tmp_path, technology):  # pylint: disable=redefined-outer-name
    """Sources a, b; version 1 copied with "v1 of <source>" and 256 KiB of
    random bytes at 3 MiB into a (data that does not compress). Returns the
    engine, the pool's name, the sources' VG and version 1's {source: copy}."""
    name = "md%s" % technology[4:7]
    if technology == "lvm_clone":
        eng, vg, dummy, a, b, copies = _clone_pool_at_version_1(vgs, lvm_runner, tmp_path, name)
        # random bytes are written after the copy here: the copy holds zeros there
        return eng, name, vg, copies
    vg, sources = _setup_sources(vgs, technology)
    a, b = sources[:2]
    extra = {"snapshot_size": "4M"} if technology == "lvm_snapshot" else {}
    eng = make_engine(tmp_path / "state", lvm_runner)
    define(eng, PoolDefinition(name=name, technology=technology, sources=(a, b), versions=1, **extra))
    for s in (a, b):
        write_data(s, "v1 of %s" % s)
    fd = os.open(dm_path(a), os.O_WRONLY)
    try:
        os.pwrite(fd, os.urandom(256 * 1024), 3 * MiB)
        os.fsync(fd)
    finally:
        os.close(fd)
    copy(eng, name)
    return eng, name, vg, _copies(eng, name, 1)


def _state(eng, name):
    with open(eng.store.path(name), "rb") as fh:
        return fh.read()


def _lvs(name, field):
    return sh("lvs", "--noheadings", "-o", field, name).strip()


def _failed_and_killed_receives(eng, name, vg, medium, dump, lvm_runner, tmp_path):  # pylint: disable=redefined-outer-name
    """A truncated image: the receive fails naming why and its new LV is
    removed. An LV a killed receive left (both marks) is a media leftover
    and swept; one carrying only the restoring tag is not ours to remove."""
    source = dump["streams"][0]["source"]
    stream = os.path.join(medium, dump["streams"][0]["stream"])
    cut = str(tmp_path / "cut")
    with open(stream, "rb") as fh, open(cut, "wb") as out:
        out.write(fh.read()[:os.path.getsize(stream) // 2])
    backend = BACKENDS["lvm_thin"](lvm_runner)
    with eng.session(name) as s:
        definition = s.state.definition
    fd = os.open(cut, os.O_RDONLY)
    try:
        with pytest.raises(CopyFailed) as exc:
            backend.receive_stream(definition, source, fd, "%s/cut" % vg)
    finally:
        os.close(fd)
    assert "the image ends after" in exc.value.msg and "nothing was made" in exc.value.msg, exc.value.msg
    assert not exists("%s/cut" % vg)

    sh("lvcreate", "-q", "-y", "-L", "4M", "-n", "killed", "--addtag", "pitcopy_restoring",
       "--addtag", "pitcopy_restored_from=media", vg)
    sh("lvcreate", "-q", "-y", "-L", "4M", "-n", "other", "--addtag", "pitcopy_restoring", vg)
    names = ["%s/killed" % vg, "%s/other" % vg, "%s/absent" % vg]
    assert backend.media_leftovers(names) == ["%s/killed" % vg]
    backend.sweep_media_leftovers(names)
    assert not exists("%s/killed" % vg) and exists("%s/other" % vg)


@pytest.mark.parametrize("technology", ["lvm_snapshot", "lvm_thin", "lvm_clone"])
def test_lvm_media_dump_and_restore(vgs, lvm_runner, tmp_path, technology):  # pylint: disable=redefined-outer-name
    eng, name, vg, copies = _pool_at_version_1(vgs, lvm_runner, tmp_path, technology)
    sources = sorted(copies)
    activate(*copies.values())
    expected = dict((s, _sha(copies[s])) for s in sources)
    for s in sources:
        write_data(s, "after v1 %s" % s)

    medium = str(tmp_path / "tape1")
    os.mkdir(medium, 0o700)
    with eng.session(name) as s:
        dump = s.plan_dump(1, medium).apply()["dump"]
    streams = dict((st["source"], os.path.join(medium, st["stream"])) for st in dump["streams"])
    assert sorted(streams) == sources and all(p.endswith(".lvgz-stream") for p in streams.values())
    for s in sources:
        # plain gzip: what an operator restores by hand (zcat | dd) is the copy
        with gzip.open(streams[s], "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == expected[s]
        assert os.path.getsize(streams[s]) < 2 * MiB  # an 8 MiB LV, mostly zeros
    with eng.session(name) as s:
        assert s.plan_dump(1, medium).changed is False
    if technology == "lvm_thin":  # the backend's failure paths, on this medium (the code is the same for all three)
        _failed_and_killed_receives(eng, name, vg, medium, dump, lvm_runner, tmp_path)
    with eng.session(name) as s:
        s.plan_delete(1).apply()
    if technology != "lvm_clone":  # a clone's target LV stays (the pool's disk), released
        assert not [c for c in copies.values() if exists(c)]

    with eng.session(name) as s:
        res = s.plan_restore_from_media(1, medium, "m1_").apply()
    new = dict((r["source"], r["volume"]) for r in res["restored_to"])
    assert new == dict((s, "%s/m1_%s" % (vg, s.split("/")[1])) for s in sources)
    for s in sources:
        assert _sha(new[s]) == expected[s], s
        assert not [t for t in lv_tags(new[s]) if t.startswith("pitcopy_")]
        if technology == "lvm_thin":  # thin again, in the source's thin pool
            assert (_lvs(new[s], "segtype"), _lvs(new[s], "pool_lv")) == ("thin", "tp")
        else:
            assert _lvs(new[s], "segtype") == "linear"
        write_data(new[s], "scratch %s" % s)  # writable: the user's LV
        assert read_data(new[s]) == "scratch %s" % s
    for s in sources:
        assert read_data(s) == "after v1 %s" % s  # production untouched

    # never overwrites; a VG that does not exist; nothing made, the state as it was
    before = _state(eng, name)
    for restore_to, volumes, words in (("m1_", None, "never overwrites"),
                                       ("nosuchvg/x", [sources[0]], "VG nosuchvg, which does not exist")):
        with eng.session(name) as s:
            with pytest.raises(InvalidInput) as exc:
                s.plan_restore_from_media(1, medium, restore_to, volumes=volumes).apply()
        assert words in exc.value.msg, exc.value.msg
    assert _state(eng, name) == before

    # one source to a vg/lv name in another VG (a plain LV can be anywhere)
    other = vgs.create("mo", 64 * MiB)
    with eng.session(name) as s:
        s.plan_restore_from_media(1, medium, "%s/solo" % other, volumes=[sources[0]]).apply()
    assert _sha("%s/solo" % other) == expected[sources[0]]

    path = streams[sources[0]]
    flip_middle_byte(path)
    with eng.session(name) as s:
        found = s.plan_verify(verify_media=True).result
    assert [f["target"] for f in found["findings"] if f["problem"] == "media_corrupt"] == [path], found
    with eng.session(name) as s:
        with pytest.raises(InvalidInput) as exc:
            s.plan_restore_from_media(1, medium, "m2_").apply()
    assert "cannot be restored" in exc.value.msg and os.path.basename(path) in exc.value.msg, exc.value.msg
    assert not [s for s in sources if exists("%s/m2_%s" % (vg, s.split("/")[1]))]


BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "bench_lvm_clone.py")


def test_the_block_copy_benchmark_runs_every_method(vgs):  # pylint: disable=redefined-outer-name
    """tests/benchmarks/bench_lvm_clone.py at 16 MiB, one rep: every method
    (dd, sha256sum, the copy path, the engine, both dumps, the 3-pair copy
    batched and not) runs and gives a row; nothing about timing or ratios
    (issue 15)."""
    proc = subprocess.run([sys.executable, BENCH, "--mib", "16", "--reps", "1", "--pairs", "3", "--pair-mib", "4"],
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=600, check=False)
    print(proc.stdout)
    assert proc.returncode == 0, "benchmark failed (rc %d):\n%s" % (proc.returncode, proc.stdout[-3000:])
    table = proc.stdout.split("method (16 MiB)", 1)[1].splitlines()[1:9]
    assert [line[:38].strip() for line in table] == [
        "dd bs=4M oflag=direct", "dd bs=4M (page cache) + sync", "sha256sum of the source",
        "_copy_blocks, no checksum", "_copy_blocks + sha256 (lvm_clone)", "engine plan_copy (lvm_clone)",
        "dump: dd | gzip -1 > file", "dump: _lv_image.dump (zlib 1)"], proc.stdout
    dumps = [float(line.split()[-1]) for line in table[-2:]]
    assert all(0 < d < 16 for d in dumps), table  # half the LV is zeros: both streams are smaller than it
    # the N-pair part: the same copy with the batched backend and with one
    # process per command; the batched one runs fewer processes (a count)
    pairs = proc.stdout.split("engine copy, 3 pairs of 4 MiB", 1)[1].splitlines()[1:3]
    assert [line[:38].strip() for line in pairs] == ["batched (this backend)", "one process per command"], pairs
    batched, each = [int(line[38:].split()[1]) for line in pairs]
    assert 0 < batched < each, pairs
